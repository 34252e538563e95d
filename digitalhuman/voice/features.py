"""What defines a voice, as one fixed-length vector per clip.

``voice_features(audio, sr)`` returns ``F = 36`` numbers (names in ``FEATURE_NAMES``), chosen to
describe the speaker rather than the sentence:

- ``log_f0_median``: natural log of the median F0 in Hz over voiced frames. F0 is tracked with
  pYIN at 16 kHz (frame 1024, hop 256) in two passes: a wide pass (50-500 Hz) gives a first
  median ``m``; a second pass restricted to ``m/1.8 .. 1.8 m`` (clipped to 50-500 Hz) removes the
  octave jumps that a wide search range invites on low voices. Mains hum (50/60 Hz, common on
  crowd-sourced microphones) is removed first: pYIN otherwise locks onto it.
- ``f0_range_st``: standard deviation of F0 in semitones over voiced frames (second pass).
- ``breathiness``: median over voiced frames of ``1 - h``, where ``h`` is the harmonic share of
  the band from 5 to 25 times F0 (at most 7 kHz; about 0.6-3 kHz for a 120 Hz voice, 1-5 kHz
  for a 210 Hz voice): the normalised autocorrelation of that band at the pYIN period (window-
  corrected as in Boersma 1993, Hann window of 4.5 periods, peak searched within +-15% of the
  period). ``h`` is that correlation (HNR = h / (1 - h)), so ``1 - h`` is the noise share of the band energy:
  near 0 for a clean periodic voice, higher for breathy or hoarse voices, and also raised by
  jitter, fast pitch glides and microphone noise/codec artefacts. Defining the band in harmonic
  numbers makes equal relative jitter cost the same at any pitch (a fixed 1-5 kHz band made low
  voices look breathier than high ones).
- ``spectral_tilt``: slope of the envelope below, in dB per octave, over bands centred in
  100-5000 Hz.
- ``env_0 .. env_31``: long-term average spectrum of the voiced frames as 32 log-mel band
  energies in dB (16 kHz, n_fft 1024, mel 60-7600 Hz, power averaged over frames before the log),
  minus their mean over bands, so loudness and microphone gain do not count (microphone colour
  still does).

Silent, too short or unvoiced clips raise ``FeatureError``. ``extract_dataset`` computes the
features of every clip of a Common Voice-style folder (``clips.csv`` + ``audio/``) and caches them.
"""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

SR = 16_000
N_FFT = 1024
HOP = 256
FMIN, FMAX = 50.0, 500.0
N_ENV = 32
MEL_FMIN, MEL_FMAX = 60.0, 7600.0
BREATH_HARMONICS = (5.0, 25.0)  # breathiness band, in multiples of F0 ...
BREATH_MAX_HZ = 7000.0  # ... and at most this
HIGHPASS_HZ, HIGHPASS_ORDER = 65.0, 6
HUM_HZ = (50.0, 60.0, 100.0, 120.0, 150.0, 180.0)
SECOND_PASS_RATIO = 1.8  # second pYIN pass searches median/1.8 .. median*1.8 (+-10 semitones)
MIN_VOICED_FRAMES = 8  # about 0.13 s of voicing
FEATURES_VERSION = 2  # bump when a feature's definition changes (invalidates caches)

FEATURE_NAMES: tuple[str, ...] = (
    "log_f0_median",
    "f0_range_st",
    "breathiness",
    "spectral_tilt",
    *(f"env_{i}" for i in range(N_ENV)),
)
ENV_SLICE = slice(4, 4 + N_ENV)

GENDER_CODE = {"female": 1, "male": 0}  # anything else (other, empty) -> -1
AGE_YEARS = {"teens": 16.0, "twenties": 25.0, "thirties": 35.0, "fourties": 45.0, "forties": 45.0,
             "fifties": 55.0, "sixties": 65.0, "seventies": 75.0, "eighties": 85.0, "nineties": 95.0}


class FeatureError(ValueError):
    """Audio from which no voice description can be computed (silent, too short, unvoiced)."""


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_ENV, fmin=MEL_FMIN, fmax=MEL_FMAX)  # (32, 513)


@lru_cache(maxsize=1)
def mel_centers_hz() -> np.ndarray:
    """Centre frequency (Hz) of each envelope band, shape ``(N_ENV,)``."""
    import librosa

    return librosa.mel_frequencies(n_mels=N_ENV + 2, fmin=MEL_FMIN, fmax=MEL_FMAX)[1:-1]


@lru_cache(maxsize=64)
def _window_acf(length: int, n: int, up: int) -> np.ndarray:
    w = np.hanning(length)
    r = np.fft.irfft(np.abs(np.fft.rfft(w, n)) ** 2, n * up)
    return r / r[0]


def _harmonic_fraction(y: np.ndarray, center: int, f0: float) -> float | None:
    """Harmonic share ``h`` of the band ``5 f0 .. 25 f0`` of ``y`` around sample ``center`` (pitch ``f0``)."""
    period = SR / f0
    L = int(np.clip(round(4.5 * period), 160, N_FFT))
    start = center - L // 2
    if start < 0 or start + L > len(y):
        return None
    seg = y[start : start + L] - y[start : start + L].mean()
    n, up = 2048, 4  # zero-padded FFT (no circular wrap) and 4x sinc-interpolated lags
    spec = np.abs(np.fft.rfft(seg * np.hanning(L), n)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spec[(freqs < BREATH_HARMONICS[0] * f0) | (freqs > min(BREATH_HARMONICS[1] * f0, BREATH_MAX_HZ))] = 0.0
    r = np.fft.irfft(spec, n * up)
    if r[0] <= 1e-12:
        return None
    rw = _window_acf(L, n, up)
    lo, hi = int(period / 1.15 * up), int(np.ceil(period * 1.15 * up))
    hi = min(hi, int(0.8 * L * up))  # the window correction is unreliable at long lags
    if hi <= lo:
        return None
    ratio = r[lo : hi + 1] / r[0] / np.maximum(rw[lo : hi + 1], 1e-3)
    return float(np.clip(ratio.max(), 0.0, 1.0))


@lru_cache(maxsize=1)
def _hum_filter() -> np.ndarray:
    import scipy.signal as ss

    sos = [ss.butter(HIGHPASS_ORDER, HIGHPASS_HZ, "highpass", fs=SR, output="sos")]
    for f in HUM_HZ:
        sos.append(ss.tf2sos(*ss.iirnotch(f, 20.0, fs=SR)))
    return np.concatenate(sos)


def remove_hum(y16: np.ndarray) -> np.ndarray:
    """High-pass (6th order, 65 Hz) plus notches at 50/60 Hz mains hum and its harmonics: ``(N,) -> (N,)``.

    Crowd-sourced microphones often carry mains hum 20-40 dB above the floor; pYIN locks onto
    it (medians of exactly 50 or 60 Hz for voices near 100-170 Hz) unless it is removed.
    """
    import scipy.signal as ss

    return ss.sosfiltfilt(_hum_filter(), y16).astype(np.float32)


def track_f0(y16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-pass pYIN on hum-free 16 kHz audio ``(N,)`` -> ``(f0 Hz, NaN when unvoiced; voiced flag)``, each ``(T,)``.

    The second pass searches ``m/1.8 .. 1.8 m`` (about +-10 semitones) around the first pass's
    median ``m``, which removes the octave jumps that a 50-500 Hz search invites.
    """
    import librosa

    kw = dict(sr=SR, frame_length=N_FFT, hop_length=HOP)
    f0, voiced, _ = librosa.pyin(y16, fmin=FMIN, fmax=FMAX, **kw)
    voiced &= np.isfinite(f0)
    if voiced.sum() < MIN_VOICED_FRAMES:
        raise FeatureError(f"only {int(voiced.sum())} voiced frames found (need {MIN_VOICED_FRAMES})")
    m = float(np.median(f0[voiced]))
    lo, hi = max(FMIN, m / SECOND_PASS_RATIO), min(FMAX, m * SECOND_PASS_RATIO)
    f0b, voiced_b, _ = librosa.pyin(y16, fmin=lo, fmax=hi, **kw)
    voiced_b &= np.isfinite(f0b)
    if voiced_b.sum() >= MIN_VOICED_FRAMES:
        f0, voiced = f0b, voiced_b
    return f0, voiced


def voice_features(audio: np.ndarray, sr: int) -> np.ndarray:
    """Describe the voice in ``audio`` (float mono ``(N,)`` at ``sr`` Hz) as a ``(F,)`` float32 vector.

    The order of the entries is ``FEATURE_NAMES``. Raises ``FeatureError`` for audio that is not
    mono, not finite, shorter than 0.25 s, silent, or has too little voicing.
    """
    import librosa

    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise FeatureError(f"expected mono audio of shape (N,), got {audio.shape}")
    if len(audio) < 0.25 * sr:
        raise FeatureError(f"clip too short: {len(audio) / sr:.3f} s (need 0.25 s)")
    if not np.isfinite(audio).all():
        raise FeatureError("audio holds NaN or inf")
    y = audio.astype(np.float32)
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    peak = float(np.abs(y).max())
    if peak < 1e-4:
        raise FeatureError(f"clip is silent (peak {peak:.2e})")
    y = remove_hum(y / peak)

    f0, voiced = track_f0(y)
    f0v = f0[voiced]
    st = 12.0 * np.log2(f0v)

    # long-term average spectrum of voiced, non-silent frames (framed like pYIN: centred)
    S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=True)) ** 2  # (513, T)
    T = min(S.shape[1], len(voiced))
    frame_db = 10 * np.log10(S[:, :T].sum(0) + 1e-12)
    use = voiced[:T] & (frame_db > frame_db.max() - 50.0)
    if use.sum() < MIN_VOICED_FRAMES:
        raise FeatureError("too few voiced frames above the noise floor")
    mel = _mel_basis() @ S[:, :T][:, use].mean(axis=1)  # (32,)
    env = 10.0 * np.log10(mel + 1e-10)
    fc = mel_centers_hz()
    sel = (fc >= 100) & (fc <= 5000)
    tilt = float(np.polyfit(np.log2(fc[sel]), env[sel], 1)[0])
    env = env - env.mean()

    # breathiness: noise share of the 5-25 x F0 band, per voiced frame, median over frames
    ypad = np.pad(y, N_FFT // 2)  # frame t is centred on sample t*HOP of y, i.e. t*HOP + N_FFT//2 of ypad
    hs = []
    for t in np.flatnonzero(use):
        h = _harmonic_fraction(ypad, t * HOP + N_FFT // 2, float(f0[t]))
        if h is not None:
            hs.append(h)
    if len(hs) < MIN_VOICED_FRAMES // 2:
        raise FeatureError("too few frames for the breathiness measure")
    breath = 1.0 - float(np.median(hs))

    out = np.concatenate([[np.log(np.median(f0v)), st.std(), breath, tilt], env]).astype(np.float32)
    if not np.isfinite(out).all():
        raise FeatureError("non-finite feature values")
    return out


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono ``(N,)`` and its sample rate."""
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return y.mean(axis=1), int(sr)


def _one(path: str) -> tuple[np.ndarray | None, str]:
    try:
        return voice_features(*load_audio(path)), ""
    except FeatureError as e:
        return None, str(e)


def _init_worker() -> None:
    """Each worker process uses one thread (BLAS), so ``workers`` is the number of cores used."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def extract_dataset(data_dir: str | os.PathLike, out_npz: str | os.PathLike = Path.home() / ".cache" / "digitalhuman" / "voice_features.npz",
                    workers: int = 1, progress: bool = True) -> dict[str, np.ndarray]:
    """Features of every clip listed in ``data_dir/clips.csv``, cached in ``out_npz``.

    Returns arrays: ``features (N,F) float32``, ``feature_names (F,)``, ``speaker_id``,
    ``lang`` ``(N,)`` str, ``gender (N,)`` int8 (female 1, male 0, other/unknown -1), ``age (N,)``
    float32 years (bucket middle; NaN when unknown), ``clip_file (N,)`` (the ``file`` column; ``np.savez``
    reserves the name ``file``), and ``failed_clip_file``/``failed_reason`` for clips
    that raised ``FeatureError``. The cache is reused when it was made from the same clip list
    with the same ``FEATURES_VERSION``.
    """
    data_dir = Path(data_dir)
    with open(data_dir / "clips.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    files = np.array([r["file"] for r in rows])
    out_npz = Path(out_npz)
    if out_npz.is_file():
        d = dict(np.load(out_npz, allow_pickle=False))
        same = int(d.get("version", -1)) == FEATURES_VERSION and tuple(d["feature_names"]) == FEATURE_NAMES
        if same and sorted(map(str, [*d["clip_file"], *d["failed_clip_file"]])) == sorted(files.tolist()):
            return d

    paths = [str(data_dir / r["file"]) for r in rows]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            it = pool.imap(_one, paths, chunksize=4)
            results = _progress(it, len(paths), progress)
    else:
        results = _progress(map(_one, paths), len(paths), progress)

    keep = [i for i, (v, _) in enumerate(results) if v is not None]
    bad = [i for i, (v, _) in enumerate(results) if v is None]
    d = {
        "version": np.array(FEATURES_VERSION),
        "feature_names": np.array(FEATURE_NAMES),
        "features": np.stack([results[i][0] for i in keep]).astype(np.float32),
        "clip_file": files[keep],
        "speaker_id": np.array([rows[i]["speaker_id"] for i in keep]),
        "lang": np.array([rows[i].get("lang", "") for i in keep]),
        "gender": np.array([GENDER_CODE.get(rows[i]["gender"], -1) for i in keep], np.int8),
        "age": np.array([AGE_YEARS.get(rows[i]["age"], np.nan) for i in keep], np.float32),
        "failed_clip_file": files[bad] if bad else np.array([], dtype="<U1"),
        "failed_reason": np.array([results[i][1] for i in bad]) if bad else np.array([], dtype="<U1"),
    }
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_npz.with_name(f".{out_npz.stem}.tmp.npz")
    np.savez(tmp, **d)
    os.replace(tmp, out_npz)
    return d


def _progress(it, total: int, show: bool) -> list:
    if not show:
        return list(it)
    from tqdm import tqdm

    return list(tqdm(it, total=total, desc="voice features", unit="clip", mininterval=5))
