"""Warm face generation speed at the generator's native resolution.

  python benchmarks/bench_faces.py --weights runs/00000-face-r64/checkpoint.pt [--runs 7] [--threads 2]

Times the whole ``generate`` call (seeded z draw, conditions, network, uint8 conversion):
faces/s for batches of 64 and 256, and single-face latency; median (and min/max) over ``--runs``
timed calls after one warm-up call each. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from digitalhuman.evaluate.faces import generator_from_weights


def _time_calls(generate, batch: int, runs: int) -> list[float]:
    rng = np.random.Generator(np.random.PCG64(batch))
    female = rng.random(batch).astype(np.float32)
    age = rng.uniform(1, 90, batch).astype(np.float32)
    race = rng.integers(0, 5, batch)
    generate(female, age, race, 0)  # warm-up
    out = []
    for i in range(runs):
        t = time.perf_counter()
        imgs = generate(female, age, race, i + 1)
        out.append(time.perf_counter() - t)
        assert imgs.shape[0] == batch and imgs.dtype == np.uint8
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="face_generator.safetensors or a training checkpoint.pt")
    ap.add_argument("--runs", type=int, default=7, help="timed calls per case (>= 5)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--psi", type=float, default=1.0)
    a = ap.parse_args(argv)
    if a.runs < 5:
        ap.error("--runs must be at least 5")
    if a.threads:
        torch.set_num_threads(a.threads)
    generate = generator_from_weights(a.weights, psi=a.psi)
    R = generate.resolution

    rows = {}
    for name, batch in (("batch_64", 64), ("batch_256", 256), ("single", 1)):
        ts = _time_calls(generate, batch, a.runs)
        med = statistics.median(ts)
        rows[name] = {"batch": batch, "median_s": med, "min_s": min(ts), "max_s": max(ts), "faces_per_s": batch / med}

    print(f"face generator {R}x{R}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{a.runs} runs each (load avg at end: {os.getloadavg()[0]:.2f})")
    print(f"{'case':<10} {'batch':>5} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'faces/s':>9}")
    for name, r in rows.items():
        print(f"{name:<10} {r['batch']:>5} {r['median_s'] * 1e3:>10.2f} {r['min_s'] * 1e3:>8.2f} "
              f"{r['max_s'] * 1e3:>8.2f} {r['faces_per_s']:>9.1f}")
    print(json.dumps({
        "resolution": R, "weights": a.weights, "psi": a.psi, "runs": a.runs, "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2), "torch": torch.__version__,
        "python": platform.python_version(),
        "faces_per_s_batch64": round(rows["batch_64"]["faces_per_s"], 1),
        "faces_per_s_batch256": round(rows["batch_256"]["faces_per_s"], 1),
        "single_face_latency_ms": round(rows["single"]["median_s"] * 1e3, 2),
        "cases": {k: {kk: round(vv, 5) if isinstance(vv, float) else vv for kk, vv in v.items()} for k, v in rows.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
