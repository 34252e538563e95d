"""Warm speed of the voice: synthesis time over audio time, and a streamed line's first chunk.

  python benchmarks/bench_voice.py [--weights DIR] [--seeds 0,1] [--lines 8] [--runs 5] [--threads 2]

After loading the pipeline once (voice only), each timed run says every line of
``eval_lines.EVAL_LINES[:--lines]``:

- ``kokoro``: bare Kokoro (``Kokoro.synthesize``) with one stock voice's style, no age cues, no
  loudness, no visemes: what the model alone costs;
- ``persona``: the full voice path ``pipe.say(persona, line)`` (text front end, style from the voice
  prior, Kokoro, age cues where the persona has them, loudness, visemes and words), every persona;
- ``stream``: ``pipe.stream`` of a three-sentence line made of three held-out lines: time to the
  first chunk over the time of the whole call (the issue's bar: <= 0.35).

The real-time factor of a run is its wall time over the audio it produced. The table gives the
median (min, max) over ``--runs`` runs after one warm-up run. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from digitalhuman.eval_lines import EVAL_LINES
from digitalhuman.pipeline import PersonaPipeline

STREAM_LINE = " ".join(EVAL_LINES[i] for i in (2, 6, 11))  # three sentences


def _one_run(pipe, personas, lines) -> dict[str, tuple[float, float]]:
    """{path: (seconds, audio seconds or whole-call seconds)} for one pass of each path."""
    from digitalhuman.voice.text import phonemize, symbols_to_tokens

    vm = pipe.voice
    prior = vm.prior
    out = {}
    t, dur = time.perf_counter(), 0.0
    for text in lines:
        for ch in phonemize(text):
            w = prior.stock_weights({prior.names[0]: 1.0})
            sp = vm.kokoro.synthesize(symbols_to_tokens(ch.symbols), prior.style(w, w, len(ch.symbols)))
            dur += len(sp.audio) / vm.sample_rate
    out["kokoro"] = (time.perf_counter() - t, dur)
    t, dur = time.perf_counter(), 0.0
    for p in personas:
        for text in lines:
            dur += pipe.say(p, text).duration_s
    out["persona"] = (time.perf_counter() - t, dur)
    t = time.perf_counter()
    it = pipe.stream(personas[0], STREAM_LINE)
    next(it)
    first = time.perf_counter() - t
    for _ in it:
        pass
    out["stream"] = (first, time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated persona seeds (default 0,1)")
    ap.add_argument("--lines", type=int, default=8, help=f"first N of the {len(EVAL_LINES)} held-out lines (default 8)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (>= 5)")
    ap.add_argument("--threads", type=int, default=2, help="threads of torch and Kokoro's session (default 2)")
    a = ap.parse_args(argv)
    if a.runs < 5:
        ap.error("--runs must be at least 5")
    if not 1 <= a.lines <= len(EVAL_LINES):
        ap.error(f"--lines must be within 1..{len(EVAL_LINES)}")
    import torch

    torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    lines = list(EVAL_LINES[: a.lines])

    t = time.perf_counter()
    pipe = PersonaPipeline.from_pretrained(a.weights, face=False)
    pipe.voice.kokoro  # noqa: B018  (the session is part of the load)
    load_s = time.perf_counter() - t
    personas = [pipe(s, face=False) for s in seeds]

    _one_run(pipe, personas, lines)  # warm-up
    runs = [_one_run(pipe, personas, lines) for _ in range(a.runs)]
    rows = {}
    for path in ("kokoro", "persona", "stream"):
        rtf = [r[path][0] / r[path][1] for r in runs]
        rows[path] = {"median": statistics.median(rtf), "min": min(rtf), "max": max(rtf),
                      "audio_s_per_run": runs[0][path][1]}

    print(f"voice speed: {len(seeds)} personas x {len(lines)} lines, {a.runs} runs after 1 warm-up, "
          f"{a.threads} threads, pipeline load {load_s:.1f} s (load avg at end: {os.getloadavg()[0]:.2f})")
    print(f"{'path':<8} {'per run':>9} {'median':>8} {'min':>7} {'max':>7}")
    for name, r in rows.items():
        what = "first chunk / whole call" if name == "stream" else "synthesis s / audio s"
        print(f"{name:<8} {r['audio_s_per_run']:>8.1f}s {r['median']:>8.4f} {r['min']:>7.4f} {r['max']:>7.4f}  {what}")
    print(json.dumps({
        "weights": a.weights or "package", "seeds": seeds, "lines": len(lines), "runs": a.runs, "threads": a.threads,
        "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "pipeline_load_s": round(load_s, 2), "rtf_kokoro": round(rows["kokoro"]["median"], 4),
        "rtf_persona": round(rows["persona"]["median"], 4),
        "stream_first_chunk_fraction": round(rows["stream"]["median"], 4),
        "paths": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in rows.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
