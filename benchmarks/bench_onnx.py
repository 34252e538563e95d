"""What the ONNX export costs an engine: the face generator in ONNX Runtime (CPU) vs PyTorch (same
weights, inputs, threads) and, with ``--voice``, the export's voice part.

  python benchmarks/bench_onnx.py --weights digitalhuman/weights [--runs 7] [--threads 1 2] [--voice]
  python benchmarks/bench_onnx.py --weights runs/00000-face-r64/checkpoint.pt
  python benchmarks/bench_onnx.py            # no weights: default FaceGANConfig (64x64), random init

``--voice`` (the voice prior of ``--weights``' card, default the shipped one): a persona's style as
``voice_style_from_persona.py`` computes it (one chunk's style; the whole 510-row pack), and Kokoro
called as the export's manifest says (the four part packages joined, ``durations`` added, a fresh
session per thread count) on one line: session build time and synthesis time / audio duration.
The export holds no voice graph of its own, so there is no PyTorch side to compare.

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


VOICE_LINE = "The old mill by the river has been quiet since the winter storms."


def bench_voice(weights: str | None, threads: list[int], runs: int) -> dict:
    """Style arithmetic (numpy, the export's reference) and Kokoro calls as an engine would make them."""
    from digitalhuman import voice_style_from_persona as ref
    from digitalhuman.runtime import session
    from digitalhuman.voice.kokoro import HOP, SAMPLE_RATE, graph_with_durations, model_bytes
    from digitalhuman.voice.persona_voice import PersonaVoice
    from digitalhuman.voice.prior import VoicePrior
    from digitalhuman.voice.text import phonemize, symbols_to_tokens
    from digitalhuman.weights_card import read_card

    folder = weights if weights is not None and Path(weights).is_dir() else None
    entry = read_card(folder).get("voice_prior")
    if entry is None:
        raise SystemExit(f"--voice: no voice_prior in {folder or 'the shipped weights'}/card.json")
    vp = VoicePrior.load(entry.file, entry.sha256)
    prior = {"names": list(vp.names), "female": vp.female, "british": vp.british, "packs": vp.packs,
             "A_spk": vp.A_spk, "sd_spk": vp.sd_spk, "A_pro": vp.A_pro, "sd_pro": vp.sd_pro}
    rng = np.random.Generator(np.random.PCG64(0))
    params = PersonaVoice(vp).params(0.9, 35.0, rng.standard_normal(vp.k_spk), rng.standard_normal(vp.k_pro + 1))
    symbols = phonemize(VOICE_LINE, "us")[0].symbols
    w = ref.voice_weights(prior, params)
    style_t = time_calls({"style": lambda: ref.style(prior, *w, len(symbols))}, max(runs, 50))["style"]
    pack_t = time_calls({"pack": lambda: ref.voice_pack(prior, params)}, runs)["pack"]
    graph = graph_with_durations(model_bytes())
    style = ref.style(prior, *w, len(symbols))[None]
    feeds = {"tokens": np.asarray([symbols_to_tokens(symbols)], np.int64), "style": style,
             "speed": np.array([params["speed"]], np.float32)}
    rows = []
    for n in threads:
        t = time.perf_counter()
        sess = session(graph, n, arena=False)
        build = time.perf_counter() - t
        audio_s = []
        ts = time_calls({"kokoro": lambda: audio_s.append(len(sess.run(["audio"], feeds)[0].reshape(-1)))},
                        runs)["kokoro"]
        dur = audio_s[-1] / SAMPLE_RATE
        assert audio_s[-1] % HOP == 0
        rows.append({"threads": n, "session_build_s": build, "synth_median_s": statistics.median(ts),
                     "audio_s": dur, "rtf": statistics.median(ts) / dur})
    return {"voices": len(vp.names), "symbols": len(symbols), "style_median_ms": statistics.median(style_t) * 1e3,
            "pack_median_ms": statistics.median(pack_t) * 1e3, "kokoro": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights folder (card.json), face safetensors or checkpoint.pt")
    ap.add_argument("--runs", type=int, default=7, help="timed calls per case (>= 5)")
    ap.add_argument("--single-runs", type=int, default=50, help="timed calls for single-face latency (>= 5)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--voice", action="store_true", help="also time the export's voice part (style + Kokoro)")
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
    voice = bench_voice(a.weights, a.threads, a.runs) if a.voice else None
    if voice:
        print(f"voice style ({voice['voices']} stock voices, numpy): one chunk {voice['style_median_ms']:.3f} ms, "
              f"the 510-row pack {voice['pack_median_ms']:.1f} ms")
        print(f"Kokoro as the manifest says, {voice['symbols']} symbols:")
        for r in voice["kokoro"]:
            print(f"  {r['threads']} thread(s): session {r['session_build_s']:.2f} s, synthesis {r['synth_median_s']:.2f} s "
                  f"for {r['audio_s']:.2f} s of audio (x{r['rtf']:.2f})")
    print(json.dumps({"resolution": R, "weights": desc, "torch": torch.__version__, "onnxruntime": ort.__version__,
                      "cpu_count": os.cpu_count(), "loadavg_1min_end": os.getloadavg()[0],
                      "max_abs_diff": max_diff, "rows": rows, "voice": voice}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
