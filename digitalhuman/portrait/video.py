"""The talking portrait as a video: the atlas frames switched by a line's viseme track, with blinks,
and the line's audio, encoded by FFmpeg through PyAV (H.264 + AAC in MP4, or VP9 + Opus in WebM).

Timing: a video frame shown over ``[i / fps, (i + 1) / fps)`` shows, at its middle ``t``, the
shapes of the co-articulated viseme weights at ``t``
(``lipsync.weights.viseme_weights``: a shape starts forming 80 ms before its segment and lets go
over 50 ms after it), summed per Rhubarb shape; the two strongest shapes are cross-faded by their
weights. The jaw of the open shapes follows the line's loudness (the viseme picks the shape, the
sound how wide it opens: ``JAW``). Blinks come at times drawn from ``seed`` (first 0.4-2 s in, then every 2.5-5 s), three
frames each (half, shut, half), laid over whatever the mouth does.

Deterministic: single-threaded encoders with FFmpeg's bit-exact flags, so the same atlas, audio,
track and seed give the same bytes (for one PyAV / FFmpeg build).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np

from .atlas import FRAMES, SHAPES, VISEME_TO_SHAPE, Atlas

FPS = 25
FORMATS = {"mp4": ("libx264", "aac", "mp4"), "webm": ("libvpx-vp9", "libopus", "webm")}
BLINK_FIRST_S, BLINK_GAP_S = (0.4, 2.0), (2.5, 5.0)
BLINK_PROFILE = ("blink_half", "blink", "blink_half")
JAW, JAW_STEP = (0.5, 1.3), 0.1  # gap factor of the open shapes at silence and at the line's loud vowels


def blink_times(duration: float, seed: int) -> list[float]:
    """Start times (s) of blinks within ``duration``, drawn from ``seed``."""
    rng = np.random.Generator(np.random.PCG64([int(seed) & 0xFFFFFFFF, 0xB11C]))
    out, t = [], float(rng.uniform(*BLINK_FIRST_S))
    while t < duration - 0.1:
        out.append(round(t, 3))
        t += float(rng.uniform(*BLINK_GAP_S))
    return out


def shape_weights(visemes: Sequence[dict], times: np.ndarray) -> np.ndarray:
    """(T,) times -> (T, 9) co-articulated weights of ``SHAPES`` (rows sum to 1)."""
    from ..lipsync.weights import viseme_weights
    from ..voice.visemes import VISEMES

    w = viseme_weights(list(visemes), np.asarray(times, np.float64))  # (T, 15)
    M = np.zeros((len(VISEMES), len(SHAPES)))
    for i, v in enumerate(VISEMES):
        M[i, SHAPES.index(VISEME_TO_SHAPE[v])] = 1.0
    return w @ M


def loudness(audio: np.ndarray, sample_rate: int, times: np.ndarray, window: float = 0.04) -> np.ndarray:
    """(T,) RMS of ``audio`` in ``window`` s around each time, over the line's 95th percentile of
    those values, clipped to [0, 1.2]: how far the jaw opens at each video frame."""
    h = max(int(window * sample_rate / 2), 1)
    a = np.asarray(audio, np.float64)
    rms = np.array([np.sqrt(np.mean(a[max(c - h, 0):c + h] ** 2)) if c - h < len(a) else 0.0
                    for c in np.rint(np.asarray(times) * sample_rate).astype(int)])
    ref = float(np.percentile(rms, 95)) if len(rms) else 0.0
    return np.clip(rms / ref, 0.0, 1.2) if ref > 0 else np.zeros_like(rms)


def render_frames(atlas: Atlas, visemes: Sequence[dict], duration: float, seed: int, fps: int = FPS,
                  audio: np.ndarray | None = None, sample_rate: int | None = None, jaw: bool = True) -> np.ndarray:
    """uint8 (T, R, R, 3) frames of the talking portrait, T = ceil(duration * fps).

    With ``audio`` (and ``jaw``, and an atlas made in this process: ``atlas.geometry``), the open
    shapes' jaw follows the line's loudness: each shape's inner-lip gap is scaled by
    ``JAW[0] + (JAW[1] - JAW[0]) * loudness`` (quantised to ``JAW_STEP``) with the same warp that
    made it; the closed shapes stay closed (their gap is nothing to scale)."""
    from .atlas import SHAPE_PARAMS, _u8, mouth_warp

    T = max(int(np.ceil(duration * fps - 1e-9)), 1)
    times = (np.arange(T) + 0.5) / fps  # the middle of the time each frame is on screen
    sw = shape_weights(visemes, times)
    shapes = np.stack([atlas.frame(s) for s in SHAPES]).astype(np.float32)
    rest = atlas.frame("X").astype(np.float32)
    deltas = {n: atlas.frame(n).astype(np.float32) - rest for n in ("blink_half", "blink")}
    geo = atlas.geometry
    jaw_k = None
    if jaw and audio is not None and geo is not None:
        jaw_k = np.round((JAW[0] + (JAW[1] - JAW[0]) * loudness(audio, int(sample_rate), times)) / JAW_STEP) * JAW_STEP
    cache: dict[tuple[int, float], np.ndarray] = {}

    def shape_img(j: int, k: float) -> np.ndarray:
        name = SHAPES[j]
        if jaw_k is None or SHAPE_PARAMS[name][0] == "closed" or abs(k - 1.0) < 1e-9:
            return shapes[j]
        key = (j, round(float(k), 4))
        if key not in cache:
            out = mouth_warp(shapes[j].astype(np.float64), geo["landmarks"][name], geo["mouth"], float(k), 1.0)
            cache[key] = _u8(out).astype(np.float32)
        return cache[key]

    eye_at = {}
    for t0 in blink_times(duration, seed):
        f0 = int(round(t0 * fps))
        for j, name in enumerate(BLINK_PROFILE):
            if 0 <= f0 + j < T:
                eye_at[f0 + j] = name
    out = np.empty((T,) + atlas.frames.shape[1:], np.uint8)
    for i in range(T):
        top = np.argsort(-sw[i], kind="stable")[:2]
        w = sw[i, top] / max(sw[i, top].sum(), 1e-9)
        k = 1.0 if jaw_k is None else float(jaw_k[i])
        img = shape_img(top[0], k) * w[0] + shape_img(top[1], k) * w[1]
        if i in eye_at:
            img = img + deltas[eye_at[i]]
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def render_video(atlas: Atlas, audio: np.ndarray, sample_rate: int, visemes: Sequence[dict], seed: int,
                 fps: int = FPS, fmt: str = "mp4", scale: int = 2, crf: int = 20, jaw: bool = True) -> bytes:
    """The talking portrait of one line as video file bytes.

    ``audio`` mono float in [-1, 1] (or int16), ``visemes`` the line's track (``{"t_start",
    "t_end", "viseme"}``, seconds), ``seed`` places the blinks (the pipeline passes one derived from
    the persona and the text), ``fmt`` ``"mp4"`` (H.264 + AAC) or ``"webm"`` (VP9 + Opus), frames
    upscaled ``scale`` times (Lanczos); ``jaw``: the open shapes' jaw follows the loudness
    (``render_frames``)."""
    import av
    from PIL import Image

    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    vcodec, acodec, container_fmt = FORMATS[fmt]
    audio = np.asarray(audio)
    if audio.dtype.kind == "i":
        audio = audio.astype(np.float32) / 32768.0
    audio = np.clip(np.asarray(audio, np.float32).reshape(-1), -1, 1)
    duration = len(audio) / float(sample_rate)
    frames = render_frames(atlas, visemes, duration, seed, fps, audio, sample_rate, jaw)
    size = atlas.size * scale
    fd, path = tempfile.mkstemp(suffix="." + container_fmt)
    os.close(fd)
    try:
        with av.open(path, mode="w", format=container_fmt, options={"fflags": "+bitexact"}) as out:
            vs = out.add_stream(vcodec, rate=fps)
            vs.width = vs.height = size
            vs.pix_fmt = "yuv420p"
            vs.thread_count = 1
            vs.codec_context.flags |= av.codec.context.Flags.bitexact if hasattr(av.codec.context, "Flags") else 0
            if vcodec == "libx264":
                vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "tune": "stillimage"}
            else:
                vs.options = {"crf": str(crf + 12), "b": "0", "threads": "1", "row-mt": "0", "deadline": "good",
                              "cpu-used": "5"}
            a_rate = sample_rate if acodec == "aac" else 48000
            as_ = out.add_stream(acodec, rate=a_rate)
            as_.layout = "mono"
            as_.thread_count = 1
            as_.bit_rate = 64000
            for i, fr in enumerate(frames):
                img = fr if scale == 1 else np.asarray(Image.fromarray(fr).resize((size, size), Image.LANCZOS))
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                vf.pts = i
                for p in vs.encode(vf):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
            pcm = audio
            if a_rate != sample_rate:
                import librosa

                pcm = librosa.resample(audio, orig_sr=sample_rate, target_sr=a_rate).astype(np.float32)
            n = 1024 if acodec == "aac" else 960
            for k, i in enumerate(range(0, len(pcm), n)):
                chunk = np.zeros(n, np.float32)
                seg = pcm[i:i + n]
                chunk[:len(seg)] = seg
                af = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                af.sample_rate = a_rate
                af.pts = i
                for p in as_.encode(af):
                    out.mux(p)
            for p in as_.encode():
                out.mux(p)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def decode_video(data: bytes) -> tuple[np.ndarray, float, np.ndarray, int]:
    """``(frames uint8 (T, H, W, 3), fps, audio float32 (N,), sample_rate)`` of a video's bytes."""
    import io

    import av

    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        fps = float(v.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(io.BytesIO(data)) as c:
        a = c.streams.audio[0]
        sr = a.rate
        chunks = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
    return np.stack(frames), fps, np.concatenate(chunks).astype(np.float32), int(sr)
