"""A persona's voice: the speech VAE's sampled timbre imposed on the Piper base speech.

``params(female, age, voice_code, style_code)`` decodes a voice from the VAE prior (F0 level and
range, breathiness, spectral envelope) and turns it into renderer settings, all stored in
``persona.json``:

- ``f0_hz``, ``f0_range_st``: target F0 median and spread (TD-PSOLA, per pitch period);
- ``formant``: the vocal-tract scale ``beta`` whose warp of the base speaker's envelope best
  matches the decoded envelope (least squares over a grid);
- ``eq_00..eq_31``: what is left of the envelope difference after the warp, as a static
  linear-phase filter (dB per mel band, smoothed and clipped);
- ``rate``: Piper's length scale (speaking rate) from the persona's delivery code.

``speak_chunks(text, params, rng_for)`` cuts the line into chunks (``stream.plan_chunks``) and, per
chunk, synthesises the base speech with the chunk's generator, changes pitch and formants with
TD-PSOLA + resampling (no vocoder round trip, which is where WORLD lost quality here), applies the
envelope filter and normalises loudness. ``speak`` joins them: a streamed line and a whole one are
the same samples. Durations are unchanged, so the viseme track from Piper's durations stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import dsp
from .base import SENTENCE_PAUSE_S, BaseVoice
from .features import ENV_SLICE, FEATURE_NAMES, N_ENV, voice_features
from .stream import SpeechChunk, chunk_visemes, join_tracks, plan_chunks
from .text import phonemize
from .vae import VoiceVAE, load_voice_vae

REFERENCE_TEXT = (
    "The old mill by the river has been closed for twenty years. "
    "Bring me three barrels of salted fish before the winter comes, and I will pay you well."
)
BETA_GRID = np.round(np.arange(0.84, 1.301, 0.01), 3)
# Vocal-tract scale relative to the (male) base speaker: formants of women are ~15-20% higher than
# men's (Peterson & Barney 1952). The decoded envelope moves beta within +-8% of this anchor; a
# free fit on crowd-sourced envelopes (microphone colour included) swung it across genders.
BETA_FEMALE = 1.17
BETA_SPAN = 0.08
VOICE_PSI = 0.8  # truncation of the voice prior draw: more typical voices (the face GAN has its own, pipeline.DEFAULT_PSI)
F0_BOUNDS = {"female": (160.0, 320.0), "male": (75.0, 155.0)}  # presentation bounds on the median F0
EQ_CLIP_DB = 9.0
CHILD_AGE = 16.0  # the youngest speakers of the voice data: below, child_voice
CHILD_CURVE_AGES = (4.0, 8.0, 10.0, 12.0, 13.5, 15.0, 16.0)
CHILD_F0_GIRL = (275.0, 260.0, 250.0, 240.0, 232.0, 225.0, 220.0)
CHILD_F0_BOY = (275.0, 260.0, 245.0, 230.0, 190.0, 150.0, 130.0)
CHILD_FORMANT_GIRL = (1.38, 1.32, 1.28, 1.24, 1.21, 1.19, 1.17)
CHILD_FORMANT_BOY = (1.38, 1.32, 1.27, 1.21, 1.13, 1.05, 1.0)
CHILD_WEIGHT = (1.0, 1.0, 1.0, 0.95, 0.85, 0.55, 0.0)  # 1: the child curves; 0: the persona's own at 16
TARGET_RMS_DB = -20.0


def warp_env(env: np.ndarray, beta: float) -> np.ndarray:
    """Envelope (K,) on the mel bands after scaling every frequency by ``beta`` (mean-removed)."""
    from .features import mel_centers_hz

    fc = mel_centers_hz()
    out = np.interp(np.log(fc / beta), np.log(fc), env, left=env[0], right=env[-1])
    return out - out.mean()


def reference_features(base: BaseVoice) -> dict[str, np.ndarray | float]:
    """The base speaker's own voice description (fixed text, fixed generator): what the renderer
    changes *from*. Computed once when the voice weights are exported (``save_renderer``)."""
    sp = base.synthesize(REFERENCE_TEXT, rng=np.random.Generator(np.random.PCG64(0)))
    f = voice_features(sp.audio, sp.sample_rate)
    return {"log_f0": float(f[0]), "range": float(f[1]), "env": f[ENV_SLICE].astype(np.float64)}


def save_renderer(path: str | Path, ref: dict[str, np.ndarray | float]) -> str:
    import torch

    from ..checkpoint import save_weights

    return save_weights(path, {"base_env": torch.from_numpy(np.asarray(ref["env"], np.float32))},
                        kind="voice_renderer",
                        config={"base_voice": "en_US-joe-medium", "reference_text": REFERENCE_TEXT,
                                "base_log_f0": float(ref["log_f0"]), "base_range_st": float(ref["range"])})


def load_renderer(path: str | Path, expected_sha256: str | None = None) -> dict[str, np.ndarray | float]:
    from ..checkpoint import load_weights

    tensors, config, _ = load_weights(path, kind="voice_renderer", expected_sha256=expected_sha256)
    return {"log_f0": config["base_log_f0"], "range": config["base_range_st"],
            "env": tensors["base_env"].double().numpy()}


class PersonaVoice:
    def __init__(self, vae: VoiceVAE, base: BaseVoice, ref: dict[str, np.ndarray | float] | None = None):
        self.vae = vae.eval()
        self.base = base
        self.ref = ref if ref is not None else reference_features(base)

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None, renderer: str | Path | None = None,
             renderer_sha256: str | None = None) -> "PersonaVoice":
        ref = load_renderer(renderer, renderer_sha256) if renderer is not None else None
        return cls(load_voice_vae(path, expected_sha256), _base_voice(), ref)

    # ------------------------------------------------------------------------------- parameters
    def params(self, female: float, age: float, voice_code: np.ndarray, style_code: np.ndarray) -> dict[str, float]:
        eps = VOICE_PSI * np.asarray(voice_code, np.float32)[: self.vae.cfg.latent_dim][None]
        feats = self.vae.sample_voice(float(female), float(max(age, 16.0)), eps)[0].astype(np.float64)
        names = list(self.vae.cfg.feature_names)
        assert names[: len(FEATURE_NAMES)] == list(FEATURE_NAMES)
        env_t = feats[ENV_SLICE] - feats[ENV_SLICE].mean()
        # anchored on the presented gender: a presentation-weighted anchor let women land at ~1.05,
        # which the speaker judge heard as the base (male) voice pitched up (judged gender 0.83)
        anchor = BETA_FEMALE if female >= 0.5 else 1.0
        lo_span = BETA_SPAN / 2 if female >= 0.5 else BETA_SPAN
        ratio = np.log(BETA_GRID / anchor)
        grid = BETA_GRID[(ratio >= -lo_span - 1e-9) & (ratio <= BETA_SPAN + 1e-9)]
        errs = [np.sum((env_t - warp_env(self.ref["env"], b)) ** 2) for b in grid]
        beta = float(grid[int(np.argmin(errs))])
        lo, hi = F0_BOUNDS["female" if female >= 0.5 else "male"]
        resid = env_t - warp_env(self.ref["env"], beta)
        resid = np.convolve(np.pad(resid, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
        eq = np.clip(resid - resid.mean(), -EQ_CLIP_DB, EQ_CLIP_DB)
        style = np.asarray(style_code, np.float64)
        f0 = float(np.clip(np.exp(feats[0]), lo, hi))
        rate = float(np.clip(math.exp(0.07 * style[0]), 0.85, 1.18))
        if age < CHILD_AGE:
            f0, beta, rate = child_voice(age, female, f0, beta, rate)
        out = {
            "f0_hz": round(f0, 3),
            "f0_range_st": round(float(np.clip(feats[1], 0.5, 6.0)), 3),
            "breathiness": round(float(feats[2]), 4),
            "formant": round(beta, 3),
            "rate": round(rate, 4),
        }
        out.update({f"eq_{i:02d}": round(float(g), 3) for i, g in enumerate(eq)})
        return out

    def voice_code_of(self, features: np.ndarray, female: float, age: float) -> np.ndarray:
        """The voice code (prior eps) whose decoded voice is closest to a clip's: the posterior
        mean of the clip's features, expressed relative to the prior for the given traits."""
        import torch

        with torch.no_grad():
            x = self.vae.standardize(torch.as_tensor(np.asarray(features, np.float32))[None])
            mu, _ = self.vae.encode(x)
            mu_p, logvar_p = self.vae.presented_prior(self.vae.make_cond(float(female), float(max(age, 16.0))))
            eps = (mu - mu_p) / (0.5 * logvar_p).exp()
        return eps[0].double().numpy().clip(-4, 4)

    # ---------------------------------------------------------------------------------- speech
    def speak_chunks(self, text: str, params: dict[str, float],
                     rng_for: Callable[[int], np.random.Generator]) -> Iterator[SpeechChunk]:
        """Render ``text`` chunk by chunk (``voice.stream``), yielding each as soon as it is done.

        Chunk ``i`` draws only from ``rng_for(i)`` and is normalised on its own, so it does not
        depend on the chunks after it. A chunk that starts a new sentence begins with
        ``SENTENCE_PAUSE_S`` of silence."""
        check_params(params)
        plan = plan_chunks(phonemize(text, self.base.id_map))
        sr = self.base.sample_rate
        pause = int(round(SENTENCE_PAUSE_S * sr))
        start = 0
        for i, (chunk, new_sentence) in enumerate(plan):
            sp = self.base.synthesize([chunk], rng=rng_for(i), length_scale=float(params.get("rate", 1.0)))
            y = self.render(sp.audio, sr, params)
            lead = pause if i > 0 and new_sentence else 0
            phonemes = list(sp.phonemes)
            if lead:
                y = np.concatenate([np.zeros(lead, np.float32), y])
                phonemes = [("sil", 0.0, lead / sr)] + [(s, a + lead / sr, b + lead / sr) for s, a, b in phonemes]
            t0 = (start + lead) / sr
            yield SpeechChunk(index=i, start=start, audio=y, sample_rate=sr,
                              visemes=chunk_visemes(phonemes, start, start + len(y), sr),
                              words=[(w, t0 + a, t0 + b) for w, a, b in sp.words])
            start += len(y)

    def speak(self, text: str, params: dict[str, float], rng_for: Callable[[int], np.random.Generator]):
        """-> ``(audio float32 (N,), sample_rate, visemes, words, chunk starts)``: the joined chunks."""
        chunks = list(self.speak_chunks(text, params, rng_for))
        audio = np.concatenate([c.audio for c in chunks])
        return (audio, self.base.sample_rate, join_tracks(c.visemes for c in chunks),
                [w for c in chunks for w in c.words], [c.start for c in chunks])

    def render(self, x: np.ndarray, sr: int, params: dict[str, float]) -> np.ndarray:
        check_params(params)
        target = float(params["f0_hz"])
        gamma = float(np.clip(params["f0_range_st"] / max(self.ref["range"], 0.3), 0.5, 2.0))
        beta = float(params["formant"])

        def pitch_fn(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
            if not voiced.any():
                return np.ones_like(f0)
            med = float(np.exp(np.median(np.log(f0[voiced]))))
            goal = target * (f0 / med) ** gamma
            return goal / f0

        y = dsp.change_voice(x, sr, pitch_fn, beta)
        eq = np.array([params.get(f"eq_{i:02d}", 0.0) for i in range(N_ENV)], np.float64)
        if np.any(eq != 0):
            y = dsp.apply_fir(y, _eq_filter(tuple(np.round(eq, 3)), sr))
        return _normalise(y)


def child_voice(age: float, female: float, f0: float, formant: float, rate: float) -> tuple[float, float, float]:
    """F0, vocal-tract scale and speaking rate of a child of ``age`` (< ``CHILD_AGE``), from the
    persona's own voice at 16 (the youngest speakers of the voice data: it has no children). The
    curves are published averages: F0 about 250-275 Hz at 4-10 in both sexes, boys' voices
    breaking at 12-15 (``CHILD_F0_*``); formants 25-38% above adult men's at 4-10
    (``CHILD_FORMANT_*``, Lee, Potamianos & Narayanan 1999); children speak more slowly. The
    persona's own values are blended in from 12 on (``CHILD_WEIGHT``), so a child grows into its
    persona's adult voice."""
    girl = female >= 0.5
    w = float(np.interp(age, CHILD_CURVE_AGES, CHILD_WEIGHT))
    f0_child = float(np.interp(age, CHILD_CURVE_AGES, CHILD_F0_GIRL if girl else CHILD_F0_BOY))
    a_child = float(np.interp(age, CHILD_CURVE_AGES, CHILD_FORMANT_GIRL if girl else CHILD_FORMANT_BOY))
    anchor = BETA_FEMALE if girl else 1.0
    f0_out = math.exp(w * math.log(f0_child) + (1 - w) * math.log(f0))
    formant_out = float(np.clip(formant * (a_child / anchor) ** w, 0.8, 1.45))
    return f0_out, formant_out, rate * (1 + 0.012 * (CHILD_AGE - max(age, 4.0)))


PARAM_BOUNDS = {"f0_hz": (50.0, 500.0), "f0_range_st": (0.0, 12.0), "formant": (0.7, 1.5), "rate": (0.5, 2.0)}


def check_params(params: dict[str, float]) -> None:
    """Voice parameters come from persona.json, i.e. from outside: refuse what the renderer can't use."""
    from ..persona import PersonaError

    for key, (lo, hi) in PARAM_BOUNDS.items():
        v = params.get(key, 1.0 if key == "rate" else None)
        if v is None:
            raise PersonaError(f"voice parameter {key!r} is missing from the persona")
        if not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            raise PersonaError(f"voice parameter {key}={v!r} is outside {lo}..{hi}")
    for i in range(N_ENV):
        v = params.get(f"eq_{i:02d}", 0.0)
        if not isinstance(v, (int, float)) or not -24.0 <= float(v) <= 24.0:
            raise PersonaError(f"voice parameter eq_{i:02d}={v!r} is outside -24..24 dB")


def _normalise(y: np.ndarray) -> np.ndarray:
    """Loudness to ``TARGET_RMS_DB`` over the active part, peaks kept below -1 dBFS."""
    y = y.astype(np.float64)
    act = np.abs(y) > 1e-3
    rms = math.sqrt(float(np.mean(y[act] ** 2))) if act.any() else 0.0
    if rms > 0:
        y = y * (10 ** (TARGET_RMS_DB / 20) / rms)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.891:
        y = y * (0.891 / peak)
    return y.astype(np.float32)


@lru_cache(maxsize=256)
def _eq_filter(eq: tuple[float, ...], sr: int) -> np.ndarray:
    return dsp.mel_band_gains_filter(np.array(eq), sr)


@lru_cache(maxsize=1)
def _base_voice() -> BaseVoice:
    return BaseVoice.load()
