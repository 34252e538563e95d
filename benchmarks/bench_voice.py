"""Warm speed of a persona's voice against the bare base voice, on the same held-out lines.

  python benchmarks/bench_voice.py [--weights DIR] [--seeds 0,1] [--lines 8] [--runs 5] [--threads 1]

After loading the pipeline once (voice only), each timed run says every line of
``eval_lines.EVAL_LINES[:--lines]``:

- ``joe``: the bare Piper joe voice (``BaseVoice.synthesize``, default speaking rate, no
  renderer), once per line;
- ``persona``: the full voice path ``pipe.say(persona, line)`` (base synthesis at the persona's
  rate, TD-PSOLA pitch/formant change, envelope filter, loudness, visemes), for every persona;
- ``renderer``: ``PersonaVoice.render`` alone on the joe audio of each line, for every persona.

The real-time factor of a run is its wall time over the audio it produced (for ``renderer``,
the joe audio it processed). Both paths run in the same process on the same ONNX session,
alternating within every run, after one warm-up run; the table gives the median (min, max) over
``--runs`` runs and the ratio persona / joe of the medians. Prints a table, then one JSON line.
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
from digitalhuman.evaluate.voices import joe_rng
from digitalhuman.pipeline import PersonaPipeline


def _one_run(pipe, personas, lines, joe_audio) -> dict[str, tuple[float, float]]:
    """{path: (seconds, audio seconds)} for one pass of each path."""
    base, vm = pipe.voice.base, pipe.voice
    out = {}
    t, dur = time.perf_counter(), 0.0
    for text in lines:
        dur += base.synthesize(text, rng=joe_rng(text)).duration
    out["joe"] = (time.perf_counter() - t, dur)
    t, dur = time.perf_counter(), 0.0
    for p in personas:
        for text in lines:
            dur += pipe.say(p, text).duration_s
    out["persona"] = (time.perf_counter() - t, dur)
    t, dur = time.perf_counter(), 0.0
    for p in personas:
        for x, sr in joe_audio:
            vm.render(x, sr, p.voice)
            dur += len(x) / sr
    out["renderer"] = (time.perf_counter() - t, dur)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated persona seeds (default 0,1)")
    ap.add_argument("--lines", type=int, default=8, help=f"first N of the {len(EVAL_LINES)} held-out lines (default 8)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (>= 5)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    a = ap.parse_args(argv)
    if a.runs < 5:
        ap.error("--runs must be at least 5")
    if not 1 <= a.lines <= len(EVAL_LINES):
        ap.error(f"--lines must be within 1..{len(EVAL_LINES)}")
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    lines = list(EVAL_LINES[: a.lines])

    t = time.perf_counter()
    pipe = PersonaPipeline.from_pretrained(a.weights, face=False)
    load_s = time.perf_counter() - t
    personas = [pipe(s, face=False) for s in seeds]
    joe_audio = []
    for text in lines:
        sp = pipe.voice.base.synthesize(text, rng=joe_rng(text))
        joe_audio.append((sp.audio, sp.sample_rate))

    _one_run(pipe, personas, lines, joe_audio)  # warm-up (numba JIT, filter caches, ONNX arenas)
    runs = [_one_run(pipe, personas, lines, joe_audio) for _ in range(a.runs)]
    rows = {}
    for path in ("joe", "persona", "renderer"):
        rtf = [r[path][0] / r[path][1] for r in runs]
        rows[path] = {"rtf_median": statistics.median(rtf), "rtf_min": min(rtf), "rtf_max": max(rtf),
                      "audio_s_per_run": runs[0][path][1]}
    ratio = rows["persona"]["rtf_median"] / rows["joe"]["rtf_median"]

    print(f"voice path vs bare joe: {len(seeds)} personas x {len(lines)} lines, {a.runs} runs after 1 warm-up, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), pipeline load {load_s:.1f} s "
          f"(load avg at end: {os.getloadavg()[0]:.2f})")
    print(f"{'path':<10} {'audio s/run':>11} {'RTF median':>11} {'min':>7} {'max':>7}")
    for name, r in rows.items():
        print(f"{name:<10} {r['audio_s_per_run']:>11.1f} {r['rtf_median']:>11.4f} {r['rtf_min']:>7.4f} "
              f"{r['rtf_max']:>7.4f}")
    print(f"persona / joe RTF ratio: {ratio:.2f}")
    print(json.dumps({
        "weights": a.weights or "package", "seeds": seeds, "lines": len(lines), "runs": a.runs,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(), "pipeline_load_s": round(load_s, 2),
        "rtf_joe": round(rows["joe"]["rtf_median"], 4), "rtf_persona": round(rows["persona"]["rtf_median"], 4),
        "rtf_renderer_only": round(rows["renderer"]["rtf_median"], 4), "ratio_persona_vs_joe": round(ratio, 3),
        "paths": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in rows.items()},
        "voice": {str(p.seed): {k: p.voice[k] for k in ("f0_hz", "formant", "rate")} for p in personas},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
