"""Talking-portrait speed: the mouth-shape atlas per persona (warm) and the video encode vs real time.

  python benchmarks/bench_portrait.py [--personas 20] [--threads 2] [--seconds 5]

Atlas: ``make_atlas`` for ``--personas`` personas (seeds 0..), after one warm-up call, with the
face model's onnxruntime session and torch on ``--threads`` threads; median / min / max seconds.
Video: ``render_video`` (H.264 + AAC MP4, and VP9 + Opus WebM) of a synthetic ``--seconds`` line
(a tone gated by a viseme track cycling through all 15 visemes, 120 ms segments) on the first
atlas; audio seconds per encode second, median of 3. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def synthetic_line(seconds: float, sr: int = 24000) -> tuple[np.ndarray, list[dict]]:
    from digitalhuman.voice.visemes import VISEMES

    t = np.arange(int(seconds * sr)) / sr
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    edges = np.round(np.arange(0, seconds + 1e-9, 0.12), 3)
    edges[-1] = round(seconds, 3)
    track = [{"t_start": float(a), "t_end": float(b), "viseme": VISEMES[i % len(VISEMES)]}
             for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]
    return audio, track


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--personas", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)  # before the face model builds its onnxruntime session
    from digitalhuman.fusion import fuse
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import PersonaPipeline
    from digitalhuman.portrait import load_directions, make_atlas, render_video

    pipe = PersonaPipeline.from_pretrained(voice=False)
    directions = load_directions()
    inputs = [(persona_latent(s), fuse(pipe.prior, persona_latent(s)).traits) for s in range(a.personas + 1)]
    make_atlas(pipe.face, directions, *inputs[0], pipe.psi)  # warm-up
    secs = []
    for lat, traits in inputs[1:]:
        t = time.perf_counter()
        atlas = make_atlas(pipe.face, directions, lat, traits, pipe.psi)
        secs.append(time.perf_counter() - t)
    audio, track = synthetic_line(a.seconds)
    rt = {}
    for fmt in ("mp4", "webm"):
        runs = []
        for i in range(3):
            t = time.perf_counter()
            render_video(atlas, audio, 24000, track, seed=i, fmt=fmt)
            runs.append(a.seconds / (time.perf_counter() - t))
        rt[fmt] = statistics.median(runs)
    res = {"atlas_seconds_median": statistics.median(secs), "atlas_seconds_min": min(secs),
           "atlas_seconds_max": max(secs), "personas": len(secs), "threads": a.threads,
           "video_realtime_mp4": rt["mp4"], "video_realtime_webm": rt["webm"], "line_seconds": a.seconds,
           "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    print(f"atlas per persona (warm, {a.threads} threads): median {res['atlas_seconds_median']:.3f} s "
          f"(min {res['atlas_seconds_min']:.3f}, max {res['atlas_seconds_max']:.3f}, {len(secs)} personas)")
    print(f"video encode, {a.seconds:g} s line: MP4 {rt['mp4']:.1f}x real time, WebM {rt['webm']:.1f}x")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
