"""A persona's voice: a point of Kokoro-82M's style space chosen by the voice prior, plus age cues.

``params(female, age, voice_code, style_code, accent, ...)`` turns the persona's latent voice code into
numbers stored in ``persona.json`` (``voice``), from which every line is rendered:

- ``female``, ``british``: the centre of the voice (the mean of the stock voices of that gender and
  accent; fractional for blends); ``mix_<name>``: a named mix of stock voices as the centre instead;
- ``s00``..: the speaker coefficients (the voice prior's directions, in standard deviations, spread
  and age already applied); ``p00``..: the prosody coefficients;
- ``speed``: Kokoro's speaking rate; ``pitch_st``: a pitch change in semitones: the voice's pitch
  placed among real speakers' (``PITCH_MAP``), the pitch of old age and a user's nudge; Kokoro
  applies it to its own F0 curve (``f0_scale``); ``child``: 0-1, how far the child curves take over;
  ``f0_hz`` and ``formant``: the child's F0 and vocal-tract scale (TD-PSOLA + resampling after
  Kokoro, which then carries the pitch change too).

Age: an adult's speaker coefficients move along the prior's ``age_dir`` (where the age judge
heard rendered voices older), gently below 35 and ~8x faster above (``VoicePrior.age_gain_at``);
from 60 the pitch and the pace change too (``OLD_*``); below 16 the child curves take over.

The pitch map: Kokoro's voices are pitched narrower and closer together than people (women's
median 170 Hz, men's 122 Hz, measured on the audio of 48 personas each), and a judge of real
speakers hears pitch: a woman's voice at 140 Hz is heard as a man's. Each adult voice's own pitch
(the median of Kokoro's predicted F0 on ``PITCH_LINES``, before rendering) keeps its rank among
the personas of its gender and is moved to the same place among real speakers of that gender
(log F0 median and spread of the Common Voice training speakers), no higher than real women's
90th percentile: ``scripts/fit_voice_pitch.py``.

``speak_chunks(text, params)`` cuts the line into chunks (``stream.plan_chunks``); each chunk is
synthesised by Kokoro with the style of its length, given the age cues and normalised on its own,
so a streamed line and a whole one are the same samples. Durations are Kokoro's own (600 samples a
frame), which time the visemes and the words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from . import dsp
from .kokoro import HOP, Kokoro, shared_kokoro
from .prior import VoicePrior
from .stream import SpeechChunk, chunk_visemes, join_tracks, plan_chunks
from .text import phonemize, symbols_to_tokens
from .vae import VoiceVAE, load_voice_vae

SENTENCE_PAUSE_S = 0.15
TARGET_RMS_DB = -20.0
VOICE_PSI = 0.9  # truncation of the voice code: a little more typical voices (the face has its own)
CHILD_AGE = 16.0  # no stock voice is a child: below this, child F0 and formant curves take over
CHILD_CURVE_AGES = (4.0, 8.0, 10.0, 12.0, 13.5, 15.0, 16.0)
CHILD_F0_GIRL = (275.0, 260.0, 250.0, 240.0, 232.0, 225.0, 220.0)
CHILD_F0_BOY = (275.0, 260.0, 245.0, 230.0, 190.0, 150.0, 130.0)
# vocal-tract scale relative to an adult of the same sex (Lee, Potamianos & Narayanan 1999: formants
# 25-38% above adult men's and ~15% above adult women's at 4-10)
CHILD_FORMANT_GIRL = (1.18, 1.13, 1.10, 1.07, 1.04, 1.02, 1.0)
CHILD_FORMANT_BOY = (1.18, 1.13, 1.10, 1.07, 1.04, 1.02, 1.0)
CHILD_WEIGHT = (1.0, 1.0, 1.0, 0.95, 0.85, 0.55, 0.0)  # 1: the child curves; 0: the persona's own at 16
# Pre-pubertal boys sound like girls: a boy's voice centre moves towards the women's by this x weight
BOY_TO_FEMALE = 0.75
OLD_AGE = 60.0  # from here: women's F0 falls, men's rises (semitones per decade), speech slows
OLD_PITCH_ST_PER_DECADE = {"female": -1.0, "male": 0.6}
OLD_SPEED_PER_DECADE = -0.04
ACCENT_BRITISH_SHARE = 0.3  # share of British-English personas when the accent is drawn
PARAM_BOUNDS = {"speed": (0.5, 2.0), "pitch_st": (-12.0, 12.0), "child": (0.0, 1.0), "f0_hz": (0.0, 500.0),
                "formant": (0.7, 1.5), "female": (0.0, 1.0), "british": (0.0, 1.0)}
COEF_BOUND = 8.0
MAX_MIX = 4
# The pitch map (scripts/fit_voice_pitch.py --n 100): log F0 mean and sd of 100 personas' predicted
# pitch (Kokoro side; women's median 171 Hz) and median and robust sd of 320 real women's (Common
# Voice training speakers, one median per speaker: 207 Hz). Men are left as Kokoro pitches them:
# their median (116 Hz predicted, 122 Hz measured on the audio) is real men's (123 Hz measured), and
# real men's spread (robust sd 0.17, 1.7x the personas') would push the highest men's voices
# towards women's pitch, which is where the judges already mishear some.
PITCH_LINES = ("The old mill by the river has been closed for twenty years.",
               "So you want to learn the old songs? Sit by the fire and listen.")
# A woman's voice goes no higher than real women's 90th percentile (246 Hz): above it Kokoro's
# quality drops and the gender judge hears very high voices as less female (the 8 highest tuning
# women, 231-256 Hz: 1 / 2 semitones less gave DNSMOS 3.275 -> 3.307 / 3.350).
PITCH_MAP = {"female": {"kokoro": (5.1452, 0.1014), "real": (5.3344, 0.1271), "max": 5.5053},
             "male": {"kokoro": (4.7615, 0.1042), "real": (4.7615, 0.1042)}}
PITCH_MAP_MAX_ST = 6.0


def child_weight(age: float) -> float:
    """How much of the child curves a voice of ``age`` takes (1 for young children, 0 from CHILD_AGE)."""
    if age >= CHILD_AGE:
        return 0.0
    return float(np.interp(max(float(age), CHILD_CURVE_AGES[0]), CHILD_CURVE_AGES, CHILD_WEIGHT))


class PersonaVoice:
    def __init__(self, prior: VoicePrior, vae: VoiceVAE | None = None, threads: int | None = None):
        self.prior = prior
        self.vae = vae.eval() if vae is not None else None
        self.threads = threads
        self.sample_rate = 24_000

    @classmethod
    def load(cls, prior: str | Path, prior_sha256: str | None = None, vae: str | Path | None = None,
             vae_sha256: str | None = None, threads: int | None = None) -> "PersonaVoice":
        return cls(VoicePrior.load(prior, prior_sha256), load_voice_vae(vae, vae_sha256) if vae else None, threads)

    @property
    def kokoro(self) -> Kokoro:
        """Kokoro's session on ``threads`` (default: torch's thread count when first used); any
        thread count gives the same samples."""
        if self.threads is None:
            import torch

            self.threads = torch.get_num_threads()
        return shared_kokoro(self.threads)

    # ------------------------------------------------------------------------------- parameters
    def params(self, female: float, age: float, voice_code: np.ndarray, style_code: np.ndarray, *,
               accent: str = "us", like: dict[str, float] | None = None, near: float = 0.4,
               pitch: float = 0.0, pace: float = 1.0) -> dict[str, float]:
        """The voice of a persona (see the module docstring for the keys).

        ``voice_code`` (>= K_S,) and ``style_code`` (>= K_P + 1,) are N(0, 1) slices of the latent.
        ``like``: a mix of stock voices ``{name: weight}`` as the centre; the persona keeps ``near``
        of its own deviation around it. ``pitch`` (semitones) and ``pace`` (x speaking rate) nudge it."""
        pr = self.prior
        woman = female >= 0.5
        anchored = not like and "anchor" in pr.config  # the centre: stock voices picked by the code
        z = VOICE_PSI * np.asarray(voice_code, np.float64)[: pr.k_spk] * pr.spread_of(woman)
        if anchored:
            z = z * float(pr.config["anchor"]["spread"])
        zp = VOICE_PSI * np.asarray(style_code, np.float64)[: pr.k_pro] * pr.spread_pro
        # keep the voice on its gender's side of the stock voices
        g = float(z @ pr.gender_dir)
        sign, floor = (1.0 if woman else -1.0), pr.floor_of(woman)
        if sign * g < -floor:
            z = z + (-floor - sign * g) * sign * pr.gender_dir
        adult_age = float(np.clip(age, 18.0, 85.0))
        if pr.config.get("age_replace"):  # the coordinate the age judge reads is the age's alone
            z = z - float(z @ pr.age_dir) * pr.age_dir
        z = z + pr.age_gain_at(adult_age) * (adult_age - pr.AGE_CENTER) / 10.0 * pr.age_dir
        if not woman and not like:  # where the gender judge hears men's voices as women's, keep out
            z = pr.guard_men(z)
        z, zp = pr.guard_quality(z, zp)  # where the judged renderings say quality drops, pull in
        z = np.clip(z, -COEF_BOUND, COEF_BOUND)  # a far age shift stays within what persona.json may hold
        if like:
            z, zp = near * z, near * zp
        speed = float(np.clip(math.exp(0.05 * float(style_code[pr.k_pro])), 0.92, 1.09)) * float(pace)
        # the centre's gender: the voices of the persona's gender (presentation 0.7+ or 0.3-), a mix
        # between (blends of a woman and a man)
        out: dict[str, float] = {"female": round(float(np.clip((female - 0.3) / 0.4, 0.0, 1.0)), 4),
                                 "british": 1.0 if accent == "gb" else 0.0}
        if like:
            total = sum(like.values())
            out.update({f"mix_{name}": round(float(w) / total, 4) for name, w in sorted(like.items())})
        elif anchored:  # before the voice breaks, a boy's anchors are partly a girl's
            f_eff = out["female"] if woman else max(out["female"], BOY_TO_FEMALE * child_weight(age))
            mix = pr.anchor_mix(f_eff, out["british"], voice_code)
            out.update({f"mix_{name}": w for name, w in mix.items()})
        out.update({f"s{i:02d}": round(float(v), 4) for i, v in enumerate(z)})
        out.update({f"p{i:02d}": round(float(v), 4) for i, v in enumerate(zp)})
        pitch_st = float(pitch)
        if age >= OLD_AGE:
            pitch_st += OLD_PITCH_ST_PER_DECADE["female" if woman else "male"] * (min(age, 95.0) - OLD_AGE) / 10.0
            speed *= 1.0 + OLD_SPEED_PER_DECADE * (min(age, 95.0) - OLD_AGE) / 10.0
        child = f0 = 0.0
        formant = 1.0
        if age < CHILD_AGE:
            a = max(float(age), CHILD_CURVE_AGES[0])
            child = child_weight(age)
            f0 = float(np.interp(a, CHILD_CURVE_AGES, CHILD_F0_GIRL if woman else CHILD_F0_BOY))
            formant = float(np.interp(a, CHILD_CURVE_AGES, CHILD_FORMANT_GIRL if woman else CHILD_FORMANT_BOY))
            speed *= 1.0 - 0.01 * (CHILD_AGE - a)  # children speak more slowly
            if not woman and not like:  # before the voice breaks, a boy's voice centre is a girl's
                out["female"] = round(max(out["female"], BOY_TO_FEMALE * child), 4)
        out.update({"speed": round(float(np.clip(speed, 0.5, 2.0)), 4), "pitch_st": round(pitch_st, 3),
                    "child": round(child, 4), "f0_hz": round(f0, 2), "formant": round(formant, 4)})
        if not like and child == 0.0:  # a cast stock voice keeps its pitch; a child's comes from its curves
            out["pitch_st"] = round(float(np.clip(pitch_st + self.pitch_map_st(out, woman), -12.0, 12.0)), 3)
        return out

    def own_f0(self, params: dict[str, float]) -> float:
        """The voice's own pitch (Hz): Kokoro's predicted F0 on ``PITCH_LINES``, geometric mean of the
        lines' medians (no pitch change, no age cues)."""
        w_spk, w_pro = self.weights(params)
        accent = "gb" if params["british"] >= 0.5 else "us"
        logs = []
        for line in PITCH_LINES:
            for ch in phonemize(line, accent):
                f = self.kokoro.predicted_f0(symbols_to_tokens(ch.symbols), self.prior.style(w_spk, w_pro, len(ch.symbols)))
                if np.isfinite(f):
                    logs.append(math.log(f))
        return math.exp(float(np.mean(logs))) if logs else float("nan")

    def pitch_map_st(self, params: dict[str, float], woman: bool) -> float:
        """Semitones that move this voice's pitch from its place among the personas of its gender to
        the same place among real speakers (``PITCH_MAP``; no higher than its ``max``), within
        +-``PITCH_MAP_MAX_ST``."""
        m = PITCH_MAP["female" if woman else "male"]
        if m["kokoro"] == m["real"] and "max" not in m:  # an identity map (men's): no predictor run
            return 0.0
        own = self.own_f0({**params, "pitch_st": 0.0})
        if not np.isfinite(own):
            return 0.0
        (mk, sk), (mr, sr) = m["kokoro"], m["real"]
        target = min(mr + (math.log(own) - mk) * sr / sk, m.get("max", math.inf))
        return float(np.clip(12.0 * (target - math.log(own)) / math.log(2.0), -PITCH_MAP_MAX_ST, PITCH_MAP_MAX_ST))

    def voice_code_of(self, features: np.ndarray, female: float) -> np.ndarray:
        """The voice code (in N(0, 1) units, before spread) of a clip's voice features: the prior's
        regression from features to the speaker coefficients of rendered voices."""
        pr = self.prior
        z = pr.z_from_features(features)
        scale = float(pr.config["anchor"]["spread"]) if "anchor" in pr.config else 1.0
        return np.clip(z / (VOICE_PSI * scale * pr.spread_of(female >= 0.5)), -4, 4)

    def weights(self, params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        check_params(params, self.prior)
        pr = self.prior
        mix = {k[4:]: v for k, v in params.items() if k.startswith("mix_")}
        centre = pr.stock_weights(mix) if mix else pr.group_weights(params["female"], params["british"])
        z = np.array([params.get(f"s{i:02d}", 0.0) for i in range(pr.k_spk)])
        zp = np.array([params.get(f"p{i:02d}", 0.0) for i in range(pr.k_pro)])
        return pr.voice_weights(centre, z, zp)

    # ---------------------------------------------------------------------------------- speech
    def speak_chunks(self, text: str, params: dict[str, float],
                     rng_for: Callable[[int], np.random.Generator] | None = None) -> Iterator[SpeechChunk]:
        """Render ``text`` chunk by chunk (``voice.stream``), yielding each as soon as it is done.

        Kokoro draws no noise, so ``rng_for`` is not used (kept for the callers' signature). A chunk
        that starts a new sentence begins with ``SENTENCE_PAUSE_S`` of silence."""
        w_spk, w_pro = self.weights(params)
        accent = "gb" if params["british"] >= 0.5 else "us"
        plan = plan_chunks(phonemize(text, accent))
        sr = self.sample_rate
        pause = int(round(SENTENCE_PAUSE_S * sr))
        start = 0
        for i, (chunk, new_sentence) in enumerate(plan):
            style = self.prior.style(w_spk, w_pro, len(chunk.symbols))
            sp = self.kokoro.synthesize(symbols_to_tokens(chunk.symbols), style, float(params["speed"]),
                                        f0_scale=self.model_pitch(params))
            y = self.render(sp.audio, params)
            lead = pause if i > 0 and new_sentence else 0
            phonemes, words = _timings(chunk, sp.durations, sr)
            if lead:
                y = np.concatenate([np.zeros(lead, np.float32), y])
                phonemes = [("sil", 0.0, lead / sr)] + [(s, a + lead / sr, b + lead / sr) for s, a, b in phonemes]
            t0 = (start + lead) / sr
            yield SpeechChunk(index=i, start=start, audio=y, sample_rate=sr,
                              visemes=chunk_visemes(phonemes, start, start + len(y), sr),
                              words=[(w, t0 + a, t0 + b) for w, a, b in words])
            start += len(y)

    def speak(self, text: str, params: dict[str, float], rng_for: Callable[[int], np.random.Generator] | None = None):
        """-> ``(audio float32 (N,), sample_rate, visemes, words, chunk starts)``: the joined chunks."""
        chunks = list(self.speak_chunks(text, params, rng_for))
        audio = np.concatenate([c.audio for c in chunks])
        return (audio, self.sample_rate, join_tracks(c.visemes for c in chunks),
                [w for c in chunks for w in c.words], [c.start for c in chunks])

    @staticmethod
    def model_pitch(params: dict[str, float]) -> float:
        """Kokoro's ``f0_scale``: an adult's pitch change (a child's goes with the child curves, after)."""
        if float(params.get("child", 0.0)) > 0:
            return 1.0
        return float(2.0 ** (float(params.get("pitch_st", 0.0)) / 12.0))

    def render(self, x: np.ndarray, params: dict[str, float]) -> np.ndarray:
        """A child's age cues (with any pitch change) on Kokoro's speech, then loudness."""
        child, shift = float(params.get("child", 0.0)), float(params.get("pitch_st", 0.0))
        formant = float(params.get("formant", 1.0)) if child > 0 else 1.0
        if child > 0:
            target = float(params.get("f0_hz", 0.0))
            ratio = 2.0 ** (shift / 12.0)

            def pitch_fn(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
                if not voiced.any():
                    return np.ones_like(f0)
                med = float(np.exp(np.median(np.log(f0[voiced]))))
                goal_med = math.exp(child * math.log(target) + (1 - child) * math.log(med)) if child > 0 else med
                return np.full_like(f0, ratio * goal_med / med)

            x = dsp.change_voice(np.asarray(x, np.float64), self.sample_rate, pitch_fn, formant)
        return _normalise(x)


def _timings(chunk, durations: np.ndarray, sr: int):
    """Phonemes ``(symbol, t0, t1)`` (pads as silence) and words ``(text, t0, t1)`` of one chunk
    from Kokoro's frames per token (``durations``: (n + 2,), the pads included)."""
    edges = np.concatenate([[0], np.cumsum(durations)]) * HOP / sr
    phonemes = [("sil", float(edges[0]), float(edges[1]))]
    for j, s in enumerate(chunk.symbols):
        phonemes.append((s, float(edges[j + 1]), float(edges[j + 2])))
    phonemes.append(("sil", float(edges[-2]), float(edges[-1])))
    words = [(text, float(edges[a + 1]), float(edges[b + 1])) for text, a, b in chunk.words if b > a]
    return phonemes, words


def check_params(params: dict[str, float], prior: VoicePrior | None = None) -> None:
    """Voice parameters come from persona.json, i.e. from outside: refuse what the renderer can't use."""
    from ..persona import PersonaError

    if "s00" not in params or "speed" not in params:
        raise PersonaError("this persona's voice was made by an earlier digitalhuman (before voices v3): "
                           "recreate the persona with this version")
    for key, (lo, hi) in PARAM_BOUNDS.items():
        v = params.get(key)
        if v is None:
            raise PersonaError(f"voice parameter {key!r} is missing from the persona")
        if not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            raise PersonaError(f"voice parameter {key}={v!r} is outside {lo}..{hi}")
    if float(params["child"]) > 0 and float(params["f0_hz"]) < 50:
        raise PersonaError("voice parameter f0_hz must be 50..500 for a child's voice")
    mix = {k[4:]: v for k, v in params.items() if k.startswith("mix_")}
    for key, v in params.items():
        if key[:1] in "sp" and key[1:].isdigit() and (not isinstance(v, (int, float)) or abs(float(v)) > COEF_BOUND):
            raise PersonaError(f"voice parameter {key}={v!r} is outside -{COEF_BOUND:g}..{COEF_BOUND:g}")
    if mix:
        if len(mix) > MAX_MIX or any(not isinstance(v, (int, float)) or not 0 < float(v) <= 1 for v in mix.values()):
            raise PersonaError(f"a voice mix holds 1-{MAX_MIX} stock voices with weights in (0, 1]")
        if prior is not None and (unknown := sorted(set(mix) - set(prior.names))):
            raise PersonaError(f"unknown stock voice(s) {', '.join(unknown)}; known: {', '.join(prior.names)}")
    known = set(PARAM_BOUNDS) | {f"s{i:02d}" for i in range(64)} | {f"p{i:02d}" for i in range(64)}
    extra = sorted(k for k in params if k not in known and not k.startswith("mix_"))
    if extra:
        raise PersonaError(f"unknown voice parameter(s): {', '.join(extra[:5])}")


def _normalise(y: np.ndarray) -> np.ndarray:
    """Loudness to ``TARGET_RMS_DB`` over the active part, peaks kept below -1 dBFS."""
    y = np.asarray(y, np.float64)
    act = np.abs(y) > 1e-3
    rms = math.sqrt(float(np.mean(y[act] ** 2))) if act.any() else 0.0
    if rms > 0:
        y = y * (10 ** (TARGET_RMS_DB / 20) / rms)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.891:
        y = y * (0.891 / peak)
    return y.astype(np.float32)


__all__ = ["PersonaVoice", "check_params", "SENTENCE_PAUSE_S", "ACCENT_BRITISH_SHARE"]

