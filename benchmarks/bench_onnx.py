"""Face generator speed: ONNX Runtime (CPU) vs PyTorch, same weights, same inputs, same threads.

  python benchmarks/bench_onnx.py --weights digitalhuman/weights [--runs 7] [--threads 1 2]
  python benchmarks/bench_onnx.py --weights runs/00000-face-r64/checkpoint.pt
  python benchmarks/bench_onnx.py            # no weights: default FaceGANConfig (64x64), random init

``--weights``: a folder with ``card.json``, a ``face_generator`` safetensors file, or a training
``checkpoint.pt`` (its EMA generator, config from the ``config.json`` beside it). Speed depends on
the architecture, not on the values of the weights, so random init is a fair stand-in.

Times the network call only (``z``, ``cond`` float32 in, float32 image out): faces/s at batch 64
and single-face latency, median (and min/max) of ``--runs`` timed calls after one warm-up call (the engines alternate),
for each thread count (torch ``set_num_threads`` = onnxruntime ``intra_op_num_threads``,
``inter_op_num_threads`` 1, sequential). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from digitalhuman.export import face_generator_onnx
from digitalhuman.face.gan import RACES, FaceGANConfig, Generator, make_cond


def load_generator(weights: str | None) -> tuple[Generator, str]:
    if weights is None:
        torch.manual_seed(0)
        return Generator(FaceGANConfig()).eval(), "random init, default FaceGANConfig"
    from digitalhuman.face.model import load_generator as load

    g, info = load(weights)
    return g, info["source"] + ("" if info["step"] is None else f" (step {info['step']})")


def inputs(batch: int, z_dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(batch))
    z = rng.standard_normal((batch, z_dim), dtype=np.float32)
    c = make_cond(torch.from_numpy(rng.random(batch, dtype=np.float32)),
                  torch.from_numpy(rng.uniform(1, 90, batch).astype(np.float32)),
                  torch.from_numpy(rng.integers(0, len(RACES), batch))).numpy()
    return z, c


def time_calls(fns: dict, runs: int) -> dict[str, list[float]]:
    """One warm-up call each, then ``runs`` rounds calling every function once (interleaved, so a
    change in background load hits both engines alike)."""
    for fn in fns.values():
        fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights folder (card.json), face safetensors or checkpoint.pt")
    ap.add_argument("--runs", type=int, default=7, help="timed calls per case (>= 5)")
    ap.add_argument("--single-runs", type=int, default=50, help="timed calls for single-face latency (>= 5)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args(argv)
    if a.runs < 5 or a.single_runs < 5:
        ap.error("--runs and --single-runs must be at least 5")

    g, desc = load_generator(a.weights)
    onnx_bytes = face_generator_onnx(g)
    R, Z = g.cfg.out_resolution, g.cfg.z_dim
    cases = {"batch": inputs(a.batch, Z), "single": inputs(1, Z)}

    rows = []
    max_diff = 0.0
    for threads in a.threads:
        torch.set_num_threads(threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        for case, (z, c) in cases.items():
            zt, ct = torch.from_numpy(z), torch.from_numpy(c)
            runs = a.runs if case == "batch" else a.single_runs

            def run_torch():
                with torch.inference_mode():
                    return g(zt, ct).numpy()

            def run_ort():
                return sess.run(["image"], {"z": z, "cond": c})[0]

            max_diff = max(max_diff, float(np.abs(run_torch() - run_ort()).max()))
            for engine, ts in time_calls({"pytorch": run_torch, "onnxruntime": run_ort}, runs).items():
                med = statistics.median(ts)
                rows.append({"engine": engine, "threads": threads, "case": case, "batch": len(z), "runs": runs,
                             "median_s": med, "min_s": min(ts), "max_s": max(ts), "faces_per_s": len(z) / med})

    print(f"face generator {R}x{R}, weights: {desc}")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end; max |ORT - torch| {max_diff:.2e}")
    print(f"{'threads':>7} {'engine':>12} | {'batch ' + str(a.batch) + ' faces/s':>18} | {'single latency ms':>17}")
    for threads in a.threads:
        for engine in ("pytorch", "onnxruntime"):
            b = next(r for r in rows if r["threads"] == threads and r["engine"] == engine and r["case"] == "batch")
            s = next(r for r in rows if r["threads"] == threads and r["engine"] == engine and r["case"] == "single")
            print(f"{threads:>7} {engine:>12} | {b['faces_per_s']:>18.1f} | {s['median_s'] * 1e3:>17.2f}")
    print(json.dumps({"resolution": R, "weights": desc, "torch": torch.__version__, "onnxruntime": ort.__version__,
                      "cpu_count": os.cpu_count(), "loadavg_1min_end": os.getloadavg()[0],
                      "max_abs_diff": max_diff, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
