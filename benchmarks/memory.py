"""Peak memory (RSS high-water mark) of speaking and of batches: it must not grow with the work.

  python benchmarks/memory.py [--weights DIR|tiny] [--long-s 300]
                              [--small 10] [--large 50] [--threads 1] [--check]

Every measurement runs in a fresh process (this script with ``--child``), one at a time, and
reports the process's ``VmHWM`` (``/proc/self/status``; ``ru_maxrss`` where there is no /proc):

- ``say``: load the pipeline (voice only), make persona 1, then say lines on that one pipeline,
  each also turned into WAV bytes as the CLI does: ``short`` (one line, ~10 s of speech),
  ``one 2000-char call`` (the longest text one call accepts, ~2 min of speech) and ``long``
  (a ~25 s paragraph said again and again until ``--long-s`` = 5 min). The rows give the peak
  after loading, after the first line, half-way and at the end: a rise from half-way to the end
  of the long run is memory kept between calls (a leak), not the cost of one call.
- ``batch``: ``digitalhuman batch`` (the CLI's code, in the child) of ``--small`` vs ``--large``
  personas, with ``--no-voice`` and with one line each. The peak must not grow with the number of
  personas (verdict "flat": within max(16 MB, 5 %)).

Weights: ``--weights DIR``; by default the shipped weights if their card lists a face and a voice
model, else the tiny test weights built on the fly (``--weights tiny`` forces those). Prints a
table, then one JSON line. ``--check`` exits 1 if a batch peak grows or saying leaks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "digitalhuman" / "weights"
MB = 1024 * 1024
BATCH_LINE = "Hello there, traveller. The mines are cursed."
SHORT_TEXT = ("Welcome back, traveller. The road north is closed since the storm, and the mines past the "
              "old bridge are cursed. Take the ferry at dawn, and do not speak to the miller.")  # ~10 s
_PARAGRAPH = ("The mines are cursed, they say, ever since the lanterns went out on the third level. My father "
              "worked there for thirty-one years and never once saw a ghost, but he heard the singing. "
              "If you mean to go down, take rope, take bread, and for pity's sake take a friend. ")
MAX_TEXT = (_PARAGRAPH * (2000 // len(_PARAGRAPH) + 1))[:2000].rsplit(" ", 1)[0] + "."  # at the 2000 limit
TEXTS = {"short": SHORT_TEXT, "paragraph": _PARAGRAPH.strip(), "max": MAX_TEXT}


def peak_bytes() -> int:
    """The process's RSS high-water mark in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


# ---------------------------------------------------------------------------------------- children
def child_say(weights: str | None, seconds: float, text: str) -> dict:
    from digitalhuman.pipeline import PersonaPipeline

    t0 = time.perf_counter()
    pipe = PersonaPipeline.from_pretrained(weights, face=False)
    persona = pipe(seed=1, face=False)
    after_load = peak_bytes()
    audio_s, peaks = 0.0, []
    t1 = time.perf_counter()
    while audio_s < seconds or not peaks:
        line = pipe.say(persona, text)
        line.wav_bytes()
        audio_s += line.duration_s
        peaks.append(peak_bytes())
    wall = time.perf_counter() - t1
    return {"peak_after_load": after_load, "peak_after_first_line": peaks[0],
            "peak_at_half": peaks[(len(peaks) - 1) // 2], "peak_end": peaks[-1],
            "audio_s": round(audio_s, 1), "calls": len(peaks), "chars_per_call": len(text),
            "say_wall_s": round(wall, 1), "rtf": round(wall / audio_s, 4), "load_s": round(t1 - t0, 1)}


def child_batch(weights: str | None, n: int, lines: int) -> dict:
    from digitalhuman.cli import main

    out = Path(tempfile.mkdtemp(prefix="dh-mem-batch-"))
    try:
        argv = (["--weights", weights] if weights else []) + ["batch", "--seeds", f"0-{n - 1}", "--quiet",
                                                              "--out", str(out / "b")]
        argv += ["--say", BATCH_LINE] * lines if lines else ["--no-voice"]
        t = time.perf_counter()
        code = main(argv)
        wall = time.perf_counter() - t
        if code != 0:
            raise SystemExit(f"batch failed with exit code {code}")
        return {"peak_end": peak_bytes(), "personas": n, "lines": lines, "wall_s": round(wall, 1)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_child(args: list[str], threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--threads", str(threads), *args],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ parent
def resolve_weights(choice: str | None, tmp: Path) -> tuple[str | None, str]:
    if choice and choice != "tiny":
        return choice, choice
    if choice is None and (SHIPPED / "card.json").is_file():
        models = json.loads((SHIPPED / "card.json").read_text()).get("models", {})
        if all(m in models and (SHIPPED / models[m]["file"]).is_file() for m in ("face", "voice")):
            return None, "shipped"
    sys.path.insert(0, str(REPO))
    from tests.conftest import make_tiny_weights

    return str(make_tiny_weights(tmp / "tiny-weights")), "tiny (built on the fly)"


def flat(small: int, large: int) -> bool:
    return large - small <= max(16 * MB, 0.05 * small)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None,
                    help="weights folder, or 'tiny' (default: shipped if complete, else tiny)")
    ap.add_argument("--long-s", type=float, default=300.0, help="seconds of speech, long run (default 300)")
    ap.add_argument("--small", type=int, default=10, help="personas in the small batch (default 10)")
    ap.add_argument("--large", type=int, default=50, help="personas in the large batch (default 50)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each measured process (default 1)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a batch peak grows or saying leaks")
    ap.add_argument("--child", choices=["say", "batch"], help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--text", choices=sorted(TEXTS), help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--lines", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--child-weights", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    if a.child == "say":
        print(json.dumps(child_say(a.child_weights, a.seconds, TEXTS[a.text])))
        return 0
    if a.child == "batch":
        print(json.dumps(child_batch(a.child_weights, a.n, a.lines)))
        return 0

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dh-mem-") as tmp:
        weights, label = resolve_weights(a.weights, Path(tmp))
        wargs = ["--child-weights", weights] if weights else []
        runs = (("short", 0.0, "short"), ("one 2000-char call", 0.0, "max"), ("long", a.long_s, "paragraph"))
        say = {name: run_child(["--child", "say", "--seconds", str(s), "--text", text, *wargs], a.threads)
               for name, s, text in runs}
        batch = {}
        for lines in (0, 1):
            for n in (a.small, a.large):
                batch[f"{n}x{lines}"] = run_child(["--child", "batch", "--n", str(n), "--lines", str(lines), *wargs],
                                                  a.threads)

    leak = say["long"]["peak_end"] - say["long"]["peak_at_half"]
    say_ok = leak <= max(16 * MB, 0.05 * say["long"]["peak_at_half"])
    verdicts = {lines: flat(batch[f"{a.small}x{lines}"]["peak_end"], batch[f"{a.large}x{lines}"]["peak_end"])
                for lines in (0, 1)}

    print(f"peak RSS (VmHWM), weights: {label}, torch {torch.__version__} ({a.threads} thread(s)), "
          f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
    print(f"{'run':<40} {'audio s':>8} {'after load':>11} {'after 1st':>10} {'at half':>8} {'peak':>8} {'wall s':>7}")
    for name, r in say.items():
        label_run = "say {} ({} x {} chars)".format(name, r["calls"], r["chars_per_call"])
        print(f"{label_run:<40} {r['audio_s']:>8.1f} "
              f"{r['peak_after_load'] / MB:>9.0f}MB {r['peak_after_first_line'] / MB:>8.0f}MB "
              f"{r['peak_at_half'] / MB:>6.0f}MB {r['peak_end'] / MB:>6.0f}MB {r['say_wall_s']:>7.1f}")
    print(f"  kept between calls (long run: end - half-way): {leak / MB:+.1f} MB -> {'ok' if say_ok else 'LEAKS'}")
    print(f"{'batch (personas x lines)':<40} {'personas':>8} {'lines':>11} {'':>10} {'':>8} {'peak':>8} {'wall s':>7}")
    for key, r in batch.items():
        print(f"{'batch ' + key:<40} {r['personas']:>8} {r['lines']:>11} {'':>10} {'':>8} {r['peak_end'] / MB:>6.0f}MB "
              f"{r['wall_s']:>7.1f}")
    for lines in (0, 1):
        d = batch[f"{a.large}x{lines}"]["peak_end"] - batch[f"{a.small}x{lines}"]["peak_end"]
        print(f"  {a.large} vs {a.small} personas, {lines} line(s): {d / MB:+.1f} MB -> "
              f"{'flat' if verdicts[lines] else 'GROWS'}")
    print(json.dumps({
        "weights": label, "threads": a.threads, "cpus": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "loadavg_1min": round(os.getloadavg()[0], 2),
        "say": {k: {kk: (round(vv / MB, 1) if kk.startswith("peak") else vv) for kk, vv in v.items()}
                for k, v in say.items()},
        "say_kept_between_calls_mb": round(leak / MB, 1), "say_ok": say_ok,
        "batch": {k: {kk: (round(vv / MB, 1) if kk.startswith("peak") else vv) for kk, vv in v.items()}
                  for k, v in batch.items()},
        "batch_flat": {f"{lines}_lines": v for lines, v in verdicts.items()},
        "total_s": round(time.perf_counter() - t0, 1),
    }))
    return 1 if a.check and not (say_ok and all(verdicts.values())) else 0


if __name__ == "__main__":
    sys.exit(main())
