"""Fusion: one persona latent -> shared traits + a face code + a voice code.

Latent layout (``LATENT_DIM`` = 160, all N(0, 1)):

====================  =========================================================
``[0:4]``             trait draws: gender, age, appearance group, presentation
``[4:132]``           face code (the face GAN's z, 128-D)
``[132:148]``         voice code (the speech VAE prior's eps, 16-D)
``[148:160]``         delivery: speaking rate, intonation, ... (renderer)
====================  =========================================================

Traits follow the real joint distribution of (gender, appearance group, age) learned from the
labelled faces (a count table, ``TraitPrior``), restricted to the adult range the voice data
covers by default. Constraints override a drawn trait and leave the others where the seed put them
unless the data says they must move (``keep_or_move``): ``--age 60`` is the same woman of the same
group as the unconstrained seed, only older, while a value that is rare under the constraint (in
the data) moves to a more common one. The face code is never re-drawn, so the face keeps its identity.
Both modalities read the same traits, which is what makes face and voice agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .persona import LATENT_DIM

RACES = ("white", "black", "asian", "indian", "other")
AGE_EDGES = np.array([0, 3, 8, 13, 18, 23, 28, 33, 38, 43, 48, 53, 58, 63, 68, 73, 78, 85, 95, 117], float)
DEFAULT_AGE_RANGE = (18.0, 90.0)
SL_TRAITS, SL_FACE, SL_VOICE, SL_STYLE = slice(0, 4), slice(4, 132), slice(132, 148), slice(148, 160)
assert SL_STYLE.stop == LATENT_DIM


def _phi(x: np.ndarray | float) -> np.ndarray:
    """Standard normal CDF (maps a latent draw to a uniform in (0, 1))."""
    from scipy.special import ndtr

    return np.clip(ndtr(x), 1e-9, 1 - 1e-9)


@dataclass(frozen=True)
class TraitPrior:
    """Joint counts over (gender 2, appearance group 5, age bin len(AGE_EDGES)-1) from labelled data."""

    counts: np.ndarray  # (2, 5, A) float64, gender 0 = male, 1 = female

    @classmethod
    def load(cls, path, expected_sha256: str | None = None) -> "TraitPrior":
        """From a ``fusion.safetensors`` (sha256 checked when given); needs no torch, so the CLI can
        read a persona's traits before it loads any model."""
        from .checkpoint import load_weights

        tensors, _, _ = load_weights(path, kind="fusion", expected_sha256=expected_sha256, framework="np")
        return cls(np.asarray(tensors["trait_counts"], np.float64))

    @classmethod
    def fit(cls, female: np.ndarray, race: np.ndarray, age: np.ndarray, smoothing: float = 0.5) -> "TraitPrior":
        a = np.clip(np.searchsorted(AGE_EDGES, age, side="right") - 1, 0, len(AGE_EDGES) - 2)
        counts = np.full((2, 5, len(AGE_EDGES) - 1), smoothing)
        np.add.at(counts, (female.astype(int), race.astype(int), a), 1.0)
        return cls(counts)

    def sample(
        self,
        u: np.ndarray,
        gender: str | None = None,
        age: float | None = None,
        race: str | None = None,
        age_range: tuple[float, float] = DEFAULT_AGE_RANGE,
        v: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Draw traits from 4 uniforms ``u`` (gender, age, group, presentation), honouring constraints.

        Without constraints: sequential inverse-CDF draws from the joint (gender, then group | gender,
        then age | both). With constraints, each unconstrained trait keeps its unconstrained value
        (``keep_or_move``) unless the data says it must move; ``v``: 6 more uniforms for those
        decisions (default: derived from ``u``; ``fuse`` derives them from the latent).
        """
        free = self.joint(age_range)
        g0, r0, b0, age0 = self._draw_free(free, u, age_range)
        presentation = 0.8 + 0.2 * float(u[3])  # strength of gender presentation in [0.8, 1]
        if gender is None and age is None and race is None:
            return _traits(g0, r0, age0, presentation)
        v = _extra_uniforms(u) if v is None else np.asarray(v, np.float64)
        p = self.counts.copy()  # the joint the constraints leave
        if age is None:
            p = p * self._overlap(age_range)[None, None, :]
        else:
            mask = np.zeros(p.shape[2])
            mask[_age_bin(age)] = 1
            p = p * mask[None, None, :]
        if gender is not None:
            p[1 - int(gender == "female")] = 0
        if race is not None:
            keep = np.zeros(5)
            keep[RACES.index(race)] = 1
            p = p * keep[None, :, None]
        # in the order of the free draw; each trait compares the distribution it was drawn from
        # with the one the constraints (and the traits before it) leave
        g = int(gender == "female") if gender is not None else keep_or_move(
            g0, free.sum((1, 2)), p.sum((1, 2)), v[0], v[1])
        r = RACES.index(race) if race is not None else keep_or_move(r0, free[g0].sum(1), p[g].sum(1), v[2], v[3])
        if age is None:
            b = keep_or_move(b0, free[g0, r0], p[g, r], v[4], v[5])
            if b != b0:  # the same place within the new bin
                cdf = np.cumsum(free[g0, r0]) / free[g0, r0].sum()
                lo_cdf = cdf[b0 - 1] if b0 > 0 else 0.0
                frac = float(np.clip((u[1] - lo_cdf) / max(cdf[b0] - lo_cdf, 1e-12), 0, 1))
                lo, hi = max(AGE_EDGES[b], age_range[0]), min(AGE_EDGES[b + 1], age_range[1])
                age0 = float(lo + frac * (hi - lo))
            age = age0
        return _traits(g, r, age, presentation)

    def joint(self, age_range: tuple[float, float] = DEFAULT_AGE_RANGE) -> np.ndarray:
        """(2, 5, A) counts of the unconstrained draw: ages within ``age_range`` (partial bins by overlap)."""
        return self.counts * self._overlap(age_range)[None, None, :]

    @staticmethod
    def _overlap(age_range: tuple[float, float]) -> np.ndarray:
        lo, hi = age_range
        overlap = np.clip(np.minimum(AGE_EDGES[1:], hi) - np.maximum(AGE_EDGES[:-1], lo), 0, None)
        return overlap / np.diff(AGE_EDGES)

    @staticmethod
    def _draw_free(p: np.ndarray, u: np.ndarray, age_range: tuple[float, float]) -> tuple[int, int, int, float]:
        """Sequential inverse-CDF draws: gender, then group | gender, then age | gender, group."""
        pg = p.sum((1, 2))
        g = int(np.searchsorted(np.cumsum(pg) / pg.sum(), u[0]))
        pr = p[g].sum(1)
        r = int(np.searchsorted(np.cumsum(pr) / pr.sum(), u[2]))
        pa = p[g, r]
        cdf = np.cumsum(pa) / pa.sum()
        b = int(np.searchsorted(cdf, u[1]))
        lo_cdf = cdf[b - 1] if b > 0 else 0.0
        frac = (u[1] - lo_cdf) / max(cdf[b] - lo_cdf, 1e-12)
        lo = max(AGE_EDGES[b], age_range[0])
        hi = min(AGE_EDGES[b + 1], age_range[1])
        return g, r, b, float(lo + frac * (hi - lo))


# A constrained persona keeps an unconstrained trait's value x with probability
# min(1, c(x) / (KEEP_RATIO * s(x))): s is the distribution x was drawn from, c the one the
# constraint leaves. So a value at least KEEP_RATIO as common under the constraint as where it was
# drawn is always kept; a rarer one moves, the rarer the likelier. KEEP_RATIO = 1 would give the
# data's conditional exactly (the maximal coupling of s and c), but then fixing the age alone moves
# the group of 12-38% of personas at 8 or 80 (UTKFace's groups differ that much with age) and their
# gender of up to 18%; at 0.15 every value is kept at ages 8-62 and 96% of groups at 80, computed from
# the table (no seeds), which is then measured on seeds 1000-1199 by ``evaluate constraints``.
KEEP_RATIO = 0.15


def keep_or_move(x: int, s: np.ndarray, c: np.ndarray, u_keep: float, u_move: float,
                 keep_ratio: float = KEEP_RATIO) -> int:
    """Index ``x`` drawn from ``s`` (unnormalised), kept or moved for the distribution ``c``.

    Kept with probability ``min(1, c[x] / (keep_ratio * s[x]))`` (``u_keep``); otherwise re-drawn
    (``u_move``) where ``c`` has more mass than the kept draws give it, so the result follows ``c``
    as closely as keeping allows.
    """
    s = np.asarray(s, np.float64) / max(float(np.sum(s)), 1e-300)
    c = np.asarray(c, np.float64) / max(float(np.sum(c)), 1e-300)
    if s[x] > 0 and u_keep < min(1.0, c[x] / (keep_ratio * s[x])):
        return int(x)
    d = np.clip(c - np.minimum(s, c / keep_ratio), 0, None)
    d[x] = 0.0
    if d.sum() <= 0:  # c is all where the kept draws are: any other value c allows
        d = c.copy()
        d[x] = 0.0
        if d.sum() <= 0:
            return int(x)
    return int(min(np.searchsorted(np.cumsum(d) / d.sum(), u_move), len(d) - 1))


def _age_bin(age: float) -> int:
    return int(np.clip(np.searchsorted(AGE_EDGES, age, side="right") - 1, 0, len(AGE_EDGES) - 2))


def _traits(g: int, r: int, age: float, presentation: float) -> dict[str, Any]:
    female = presentation if g == 1 else 1 - presentation
    return {"gender": "female" if g == 1 else "male", "female": round(female, 4),
            "age": round(float(age), 2), "race": RACES[r]}


def _extra_uniforms(key: np.ndarray) -> np.ndarray:
    """6 uniforms owned by ``key`` (bytes of float64): the keep / move decisions of a constrained draw."""
    return np.random.Generator(np.random.PCG64(hash_latent(key))).random(6)


@dataclass(frozen=True)
class Codes:
    traits: dict[str, Any]
    face: np.ndarray  # (128,) face GAN z
    voice: np.ndarray  # (16,) speech VAE prior eps
    style: np.ndarray  # (12,) delivery


def fuse(prior: TraitPrior, latent: np.ndarray, **constraints: Any) -> Codes:
    """Map a persona latent ``(LATENT_DIM,)`` to traits and per-modality codes."""
    latent = np.asarray(latent, np.float64)
    assert latent.shape == (LATENT_DIM,), latent.shape
    traits = prior.sample(_phi(latent[SL_TRAITS]), v=_extra_uniforms(latent[SL_TRAITS]), **constraints)
    return Codes(traits, latent[SL_FACE].copy(), latent[SL_VOICE].copy(), latent[SL_STYLE].copy())


SIBLING_RESEMBLANCE = 0.8  # share of the voice (and delivery) code variance relatives have in common
# ... and of the face code: at 0.8 the dlib judge read 35% of sibling pairs as one person (< 0.35);
# at 0.6 / 0.5 / 0.4, 11% / 3.9% / 2.2%, siblings still closer than strangers in 30 of 30 families
# (30 tuning families, seeds 9100.., the shipped 64 px generator). With the latent age shift of 0.3.1
# (older faces converge on grey hair and wrinkles) 0.5 gave 11.1% / 4.4% / 4.4% near copies on the
# `evaluate faces` families of seeds 0 / 3 / 7; 0.4 gave 6.1% / 2.2% / 3.3% but dropped `evaluate
# fusion`'s siblings closer than same-gender, same-group strangers (face and voice) to 0.920
SIBLING_FACE_RESEMBLANCE = 0.5


def sibling_latent(latent: np.ndarray, k: int, resemblance: float = SIBLING_RESEMBLANCE,
                   face_resemblance: float = SIBLING_FACE_RESEMBLANCE) -> np.ndarray:
    """Latent of family member ``k``: shares ``resemblance`` of the variance of the voice and
    delivery codes and ``face_resemblance`` of the face code's.

    Trait draws (gender, age, presentation) are fresh, the appearance group draw is kept
    (``PersonaPipeline.sibling`` constrains gender and age around the persona's).
    """
    rng = np.random.Generator(np.random.PCG64([int(abs(hash_latent(latent))), k]))
    fresh = rng.standard_normal(LATENT_DIM)
    out = fresh.copy()
    for sl, r in ((SL_FACE, face_resemblance), (SL_VOICE, resemblance), (SL_STYLE, resemblance)):
        out[sl] = math.sqrt(r) * latent[sl] + math.sqrt(1 - r) * fresh[sl]
    out[2] = latent[2]  # same appearance group draw
    return out


def blend_latent(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Variance-preserving interpolation between two latents (t=0 -> a, t=1 -> b)."""
    t = float(np.clip(t, 0, 1))
    return (math.cos(t * math.pi / 2) * np.asarray(a)) + (math.sin(t * math.pi / 2) * np.asarray(b))


def hash_latent(latent: np.ndarray) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(np.asarray(latent, np.float64).tobytes()).digest()[:8], "little")
