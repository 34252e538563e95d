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
covers by default. Constraints override a drawn trait and the others are drawn *given* it, so the
persona stays coherent (``--age 80`` draws gender and group from their distribution at 80).
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
    ) -> dict[str, Any]:
        """Draw traits from 4 uniforms ``u`` (gender, age, group, presentation), honouring constraints."""
        p = self.counts.copy()
        if age is None:  # restrict to the allowed age range (partial bins weighted by overlap)
            lo, hi = age_range
            overlap = np.clip(np.minimum(AGE_EDGES[1:], hi) - np.maximum(AGE_EDGES[:-1], lo), 0, None)
            p = p * (overlap / np.diff(AGE_EDGES))[None, None, :]
        else:
            a = int(np.clip(np.searchsorted(AGE_EDGES, age, side="right") - 1, 0, len(AGE_EDGES) - 2))
            mask = np.zeros(p.shape[2])
            mask[a] = 1
            p = p * mask[None, None, :]
        if gender is not None:
            p[1 - int(gender == "female")] = 0
        if race is not None:
            keep = np.zeros(5)
            keep[RACES.index(race)] = 1
            p = p * keep[None, :, None]
        # sequential inverse-CDF draws: gender, then group | gender, then age bin | gender, group
        pg = p.sum((1, 2))
        g = int(np.searchsorted(np.cumsum(pg) / pg.sum(), u[0]))
        pr = p[g].sum(1)
        r = int(np.searchsorted(np.cumsum(pr) / pr.sum(), u[2]))
        if age is None:
            pa = p[g, r]
            cdf = np.cumsum(pa) / pa.sum()
            b = int(np.searchsorted(cdf, u[1]))
            lo_cdf = cdf[b - 1] if b > 0 else 0.0
            frac = (u[1] - lo_cdf) / max(cdf[b] - lo_cdf, 1e-12)
            lo = max(AGE_EDGES[b], age_range[0])
            hi = min(AGE_EDGES[b + 1], age_range[1])
            age = float(lo + frac * (hi - lo))
        presentation = 0.8 + 0.2 * float(u[3])  # strength of gender presentation in [0.8, 1]
        female = presentation if g == 1 else 1 - presentation
        return {"gender": "female" if g == 1 else "male", "female": round(female, 4),
                "age": round(float(age), 2), "race": RACES[r]}


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
    traits = prior.sample(_phi(latent[SL_TRAITS]), **constraints)
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
