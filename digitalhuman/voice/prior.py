"""The voice prior: where in Kokoro's style space a persona's voice lies.

A Kokoro voice is a style pack ``(510, 256)``: row ``n - 1`` is the style of an utterance of ``n``
phonemes; the first 128 numbers carry who speaks, the last 128 the prosody. The prior is fitted on
the 29 English stock packs of Kokoro v1.0 (American / British, women / men) by
``scripts/fit_voice_prior.py`` and shipped in ``voice_prior.safetensors`` with those packs:

* every pack is a weighted sum of the stock packs, ``pack = sum_v w_v P_v`` (one weight vector for
  the speaker half, one for the prosody half), so a persona's voice is a few numbers and every row
  (every utterance length) follows from them;
* the mean of each (gender, accent) group of stock voices is the centre; the principal directions
  of the voices around their group's centre (pooled over the four groups, ``A_spk`` / ``A_pro``:
  ``(K, V)`` weights, standard deviations ``sd_spk`` / ``sd_pro``) span the variation;
* a persona's coefficients ``z`` (its latent voice code, N(0, 1)) are scaled by a spread per
  direction that the fit chose with judges on rendered samples: wide along the directions that make
  speakers distinct, narrow along those that cost quality or gender; ``gender_dir`` bounds how far a
  voice may move towards the other gender's voices; ``age_dir`` is the direction in ``z`` along which
  the outside age judge heard rendered voices older: an adult moves along it by ``age_gain`` per
  decade below 35 and ``age_gain_old`` above (``scripts/fit_voice_prior.py calibrate-age``; the
  young side is kept small: further there, some voices lost quality and little judged age was won);
  ``men_guard`` keeps men's voices out of the direction along which the gender judge heard rendered
  men's voices as women's (a ridge fit of its logit on ``z`` of judged men).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint import load_weights

__all__ = ["VoicePrior", "KIND", "GROUPS", "principal_weights", "write_prior"]

KIND = "voice_prior"
GROUPS = ("us_male", "gb_male", "us_female", "gb_female")  # index = 2 * female + british


@dataclass(frozen=True)
class VoicePrior:
    names: tuple[str, ...]  # stock voice names, e.g. "af_heart"
    packs: np.ndarray  # (V, 510, 256) float32
    female: np.ndarray  # (V,) bool
    british: np.ndarray  # (V,) bool
    A_spk: np.ndarray  # (K_S, V) float64: principal directions of the speaker half, as voice weights
    sd_spk: np.ndarray  # (K_S,)
    A_pro: np.ndarray  # (K_P, V)
    sd_pro: np.ndarray  # (K_P,)
    spread_spk: np.ndarray  # (K_S,) spread per direction (multiplies sd)
    spread_pro: np.ndarray  # (K_P,)
    gender_dir: np.ndarray  # (K_S,) unit direction in z towards the *female* voices
    gender_floor: float  # a woman's z . gender_dir >= -floor, a man's <= +floor
    age_dir: np.ndarray  # (K_S,) unit direction in z that the age judge hears as older
    age_gain: float  # z units per 10 years of age above AGE_CENTER (adults)
    feat_mean: np.ndarray  # (F,) voice features -> z (for --from-voice): ridge on rendered samples
    feat_std: np.ndarray  # (F,)
    feat_coef: np.ndarray  # (F, K_S)
    feat_intercept: np.ndarray  # (K_S,)
    q_lin: np.ndarray  # (K_S,) quality guard: predicted DNSMOS = intercept + q_lin.z + q_quad.z^2 + q_quad_pro.zp^2
    q_quad: np.ndarray  # (K_S,) (<= 0)
    q_quad_pro: np.ndarray  # (K_P,) (<= 0)
    config: dict

    AGE_CENTER = 35.0

    @property
    def k_spk(self) -> int:
        return len(self.sd_spk)

    @property
    def k_pro(self) -> int:
        return len(self.sd_pro)

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None) -> "VoicePrior":
        from ..checkpoint import CheckpointError

        t, config, _ = load_weights(path, kind=KIND, expected_sha256=expected_sha256, framework="np")
        missing = sorted({"packs", "A_spk", "sd_spk", "A_pro", "sd_pro", "q_lin", "q_quad", "q_quad_pro"} - set(t))
        if missing or not isinstance(config.get("names"), list) or len(config["names"]) != len(t["packs"]):
            raise CheckpointError(f"{Path(path).name}: not a complete voice prior (missing {', '.join(missing) or 'names'}); "
                                  "refit it with scripts/fit_voice_prior.py")
        names = tuple(config["names"])
        f64 = lambda k: np.asarray(t[k], np.float64)  # noqa: E731
        return cls(names=names, packs=np.asarray(t["packs"], np.float32), female=np.asarray(t["female"]) > 0.5,
                   british=np.asarray(t["british"]) > 0.5, A_spk=f64("A_spk"), sd_spk=f64("sd_spk"),
                   A_pro=f64("A_pro"), sd_pro=f64("sd_pro"), spread_spk=f64("spread_spk"),
                   spread_pro=f64("spread_pro"), gender_dir=f64("gender_dir"),
                   gender_floor=float(config["gender_floor"]), age_dir=f64("age_dir"),
                   age_gain=float(config["age_gain"]), feat_mean=f64("feat_mean"), feat_std=f64("feat_std"),
                   feat_coef=f64("feat_coef"), feat_intercept=f64("feat_intercept"),
                   q_lin=f64("q_lin"), q_quad=f64("q_quad"), q_quad_pro=f64("q_quad_pro"), config=dict(config))

    # ------------------------------------------------------------------------------ weights
    @property
    def centre_weights(self) -> np.ndarray:
        """(V,) weight of each stock voice in its group's centre (``centre_weights`` in the config:
        how surely a gender judge hears the voice as its gender; all 1 when absent)."""
        return np.asarray(self.config.get("centre_weights", np.ones(len(self.names))), np.float64)

    def _mix_groups(self, female: float, british: float, within: np.ndarray) -> np.ndarray:
        """(V,) the bilinear mix of the four gender x accent groups (``female``, ``british`` in [0, 1]),
        each group's voices weighted by ``within`` (V,) normalised inside the group."""
        w = np.zeros(len(self.names))
        for f_on, fw in ((True, female), (False, 1.0 - female)):
            for b_on, bw in ((True, british), (False, 1.0 - british)):
                m = (self.female == f_on) & (self.british == b_on)
                if fw * bw > 0 and m.any():
                    w[m] += fw * bw * within[m] / within[m].sum()
        return w

    def group_weights(self, female: float, british: float) -> np.ndarray:
        """(V,) weights of the centre for a gender / accent mix (each in [0, 1]): the bilinear mix
        of the four groups' weighted means."""
        return self._mix_groups(female, british, self.centre_weights)

    def anchor_mix(self, female: float, british: float, voice_code: np.ndarray) -> dict[str, float]:
        """The stock voices a persona's voice is anchored on (the ``anchor`` entry of the config):
        within each gender x accent group, a softmax over the group's voices of ``voice_code @ proj``
        (a fixed projection, so related codes pick related voices) plus ``power * log(centre_weights)``
        (voices a judge hears surely as their gender weigh more), at ``temperature``; the groups mixed
        as ``group_weights`` mixes them; the ``top`` heaviest voices kept, renormalised."""
        a = self.config["anchor"]
        proj = np.asarray(a["proj"], np.float64)  # (K, V)
        code = np.asarray(voice_code, np.float64)[: proj.shape[0]]
        score = (code @ proj + float(a.get("power", 0.0)) * np.log(np.maximum(self.centre_weights, 1e-6)))
        score = score / float(a["temperature"])
        w = np.zeros(len(self.names))
        for f_on in (True, False):  # softmax within each gender x accent group
            for b_on in (True, False):
                m = (self.female == f_on) & (self.british == b_on)
                if m.any():
                    w[m] = np.exp(score[m] - score[m].max())
        w = self._mix_groups(female, british, w)
        keep = np.argsort(-w, kind="stable")[: int(a["top"])]
        total = float(w[keep].sum())
        mix = {self.names[v]: round(float(w[v]) / total, 4) for v in sorted(keep)}
        return {name: x for name, x in mix.items() if x > 0}

    def stock_weights(self, mix: dict[str, float]) -> np.ndarray:
        """(V,) weights of a named mix of stock voices (normalised to sum 1)."""
        w = np.zeros(len(self.names))
        for name, x in mix.items():
            w[self.names.index(name)] += float(x)
        return w / w.sum()

    def voice_weights(self, centre: np.ndarray, z_spk: np.ndarray, z_pro: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights of the speaker half and the prosody half for coefficients in sd units."""
        w_spk = centre + (np.asarray(z_spk, np.float64) * self.sd_spk) @ self.A_spk
        w_pro = centre + (np.asarray(z_pro, np.float64) * self.sd_pro) @ self.A_pro
        return w_spk, w_pro

    def style(self, w_spk: np.ndarray, w_pro: np.ndarray, n_symbols: int) -> np.ndarray:
        """The (256,) float32 style for an utterance of ``n_symbols`` phonemes."""
        row = self.packs[:, min(max(n_symbols, 1), self.packs.shape[1]) - 1, :].astype(np.float64)  # (V, 256)
        return np.concatenate([w_spk @ row[:, :128], w_pro @ row[:, 128:]]).astype(np.float32)

    def spread_of(self, woman: bool) -> np.ndarray:
        """(K_S,) spread of the speaker directions for a woman's or a man's voice (``spread_gender``
        in the config scales ``spread_spk`` per gender; 1 and 1 when absent)."""
        f, m = self.config.get("spread_gender", (1.0, 1.0))
        return self.spread_spk * float(f if woman else m)

    def age_gain_at(self, age: float) -> float:
        """z units per decade along ``age_dir`` for an adult of ``age``: ``age_gain`` below
        ``AGE_CENTER``, ``age_gain_old`` in the config (else the same) above it."""
        return self.age_gain if age <= self.AGE_CENTER else float(self.config.get("age_gain_old", self.age_gain))

    def guard_men(self, z: np.ndarray) -> np.ndarray:
        """A man's coefficients kept at most ``max`` along ``dir`` (``men_guard`` in the config: the
        direction in which a gender judge heard rendered men's voices more female); as drawn when absent."""
        g = self.config.get("men_guard")
        if not g:
            return z
        d = np.asarray(g["dir"], np.float64)
        over = float(z @ d) - float(g["max"])
        return z - over * d if over > 0 else z

    def floor_of(self, woman: bool) -> float:
        """How far along ``gender_dir`` a woman's voice may go towards the men's (``z . gender_dir >=
        -floor``; a man's mirrored): ``gender_floors`` [female, male] in the config, else ``gender_floor``.
        A negative floor keeps a voice that far on its own gender's side."""
        f, m = self.config.get("gender_floors", (self.gender_floor, self.gender_floor))
        return float(f if woman else m)

    def predicted_quality(self, z: np.ndarray, zp: np.ndarray) -> float:
        """DNSMOS that the quality model fitted on judged renderings predicts for coefficients ``z``, ``zp``."""
        return float(self.config.get("quality_intercept", 5.0) + self.q_lin @ z + self.q_quad @ (z * z)
                     + self.q_quad_pro @ (zp * zp))

    def guard_quality(self, z: np.ndarray, zp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pull the coefficients that cost quality towards the centre (one common factor, found by
        bisection) until the predicted DNSMOS reaches ``quality_min``; the others stay as drawn."""
        q_min = float(self.config.get("quality_min", 0.0))
        if self.predicted_quality(z, zp) >= q_min:
            return z, zp
        bad = self.q_lin * z + self.q_quad * z * z < 0
        bad_p = self.q_quad_pro * zp * zp < 0
        lo, hi = 0.0, 1.0  # factor on the costly coefficients: lo meets the bar (or is 0), hi does not
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            zm, zpm = np.where(bad, z * mid, z), np.where(bad_p, zp * mid, zp)
            if self.predicted_quality(zm, zpm) >= q_min:
                lo = mid
            else:
                hi = mid
        return np.where(bad, z * lo, z), np.where(bad_p, zp * lo, zp)

    def z_from_features(self, features: np.ndarray) -> np.ndarray:
        """Speaker coefficients whose rendering has voice features nearest ``features`` (36,)."""
        x = (np.asarray(features, np.float64) - self.feat_mean) / self.feat_std
        return np.clip(x @ self.feat_coef + self.feat_intercept, -3.0, 3.0)


def principal_weights(packs: np.ndarray, groups: np.ndarray, half: slice, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(k, V)`` weights whose combination of the packs' ``half`` (``packs`` (V, 510, 256)) is a unit
    principal direction of the voices around their group's mean, and the ``(k,)`` standard
    deviations along them (pooled over the groups)."""
    V = len(packs)
    X = np.asarray(packs, np.float64)[:, :, half].reshape(V, -1)
    M = np.zeros((V, V))
    for g in np.unique(groups):
        idx = np.where(groups == g)[0]
        M[np.ix_(idx, idx)] = 1.0 / len(idx)
    R = np.eye(V) - M
    U, S, _ = np.linalg.svd(R @ X, full_matrices=False)
    A = (U.T @ R) / np.maximum(S[:, None], 1e-12)
    dof = max(V - len(np.unique(groups)), 1)
    return A[:k], S[:k] / np.sqrt(dof)


def write_prior(path: str | Path, names: list[str], packs: np.ndarray, *, k_spk: int, k_pro: int,
                spread_spk: np.ndarray | None = None, spread_pro: np.ndarray | None = None,
                gender_dir: np.ndarray | None = None, gender_floor: float = 1.0, age_dir: np.ndarray | None = None,
                age_gain: float = 0.0, features: tuple[np.ndarray, ...] | None = None,
                quality: tuple[np.ndarray, ...] | None = None, config: dict | None = None) -> str:
    """Write a voice prior file (the packs as float16); directions fitted here from ``packs``;
    calibrations given (defaults: the stock spread, no gender or age direction, no feature map).
    ``features``: ``(mean (F,), std (F,), coef (F, K), intercept (K,))``; ``quality``: ``(q_lin, q_quad,
    q_quad_pro)`` (with ``config`` ``quality_intercept`` / ``quality_min``). Returns the sha256."""
    import torch

    from ..checkpoint import save_weights

    female = np.array([n[1] == "f" for n in names])
    british = np.array([n[0] == "b" for n in names])
    groups = 2 * female + british
    A_s, sd_s = principal_weights(packs, groups, slice(0, 128), k_spk)
    A_p, sd_p = principal_weights(packs, groups, slice(128, 256), k_pro)
    k_spk, k_pro = len(sd_s), len(sd_p)
    if features is None:
        features = (np.zeros(36), np.ones(36), np.zeros((36, k_spk)), np.zeros(k_spk))
    t = lambda x: torch.from_numpy(np.asarray(x, np.float64)).float()  # noqa: E731
    tensors = {
        "packs": torch.from_numpy(np.asarray(packs, np.float32)).half(), "female": t(female), "british": t(british),
        "A_spk": t(A_s), "sd_spk": t(sd_s), "A_pro": t(A_p), "sd_pro": t(sd_p),
        "spread_spk": t(np.ones(k_spk) if spread_spk is None else spread_spk),
        "spread_pro": t(np.ones(k_pro) if spread_pro is None else spread_pro),
        "gender_dir": t(np.zeros(k_spk) if gender_dir is None else gender_dir),
        "age_dir": t(np.zeros(k_spk) if age_dir is None else age_dir),
        "feat_mean": t(features[0]), "feat_std": t(features[1]), "feat_coef": t(features[2]),
        "feat_intercept": t(features[3]),
        "q_lin": t(np.zeros(k_spk) if quality is None else quality[0]),
        "q_quad": t(np.zeros(k_spk) if quality is None else quality[1]),
        "q_quad_pro": t(np.zeros(k_pro) if quality is None else quality[2]),
    }
    cfg = {"names": list(names), "gender_floor": float(gender_floor), "age_gain": float(age_gain),
           "k_spk": k_spk, "k_pro": k_pro, **(config or {})}
    return save_weights(path, tensors, kind=KIND, config=cfg)
