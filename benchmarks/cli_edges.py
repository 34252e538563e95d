"""Wall time of a successful `digitalhuman create` vs the cheap errors that must answer before any
model loads (issue 15: each under 0.3x the time of a successful create), plus `info`'s size.

Issue 28's errors at the door (``door_cases`` of ``tests/test_cli_edges.py``, the table its test
checks) have a budget of their own: each within ``DOOR_BUDGET_S`` (1 s), median of the runs. The
script exits 1 when one is over it.

    python benchmarks/cli_edges.py [--repeats 5] [--out-json cli_edges.json]
    python benchmarks/cli_edges.py --door-only --repeats 3      # the budget alone, no create

Every run is a fresh process (`python -m digitalhuman ...`, shipped weights), as a user would
start it; medians over ``--repeats`` runs, runs interleaved so a busy machine slows all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOOR_BUDGET_S = 1.0  # issue 28: one clear error line within a second, before any model loads


def door(tmp: Path) -> dict[str, list[str]]:
    """Issue 28's cases, from the table the test checks (``tests/test_cli_edges.py``)."""
    sys.path.insert(0, str(REPO))
    from tests.test_cli_edges import door_cases, door_files

    (tmp / "door").mkdir()
    door_files(tmp / "door")
    return {f"door: {name}": argv for name, argv, _, _ in door_cases(str(tmp / "door"))}


def cases(tmp: Path) -> dict[str, list[str]]:
    (tmp / "afile").write_text("x")
    (tmp / "junk").mkdir(exist_ok=True)
    (tmp / "junk" / "f.txt").write_text("mine")
    (tmp / "notimage.png").write_text("not an image")
    (tmp / "notwav.wav").write_text("not audio")
    (tmp / "persona").mkdir(exist_ok=True)
    t = str(tmp)
    return {
        "--out is a file": ["create", "--seed", "1", "--out", f"{t}/afile"],
        "non-empty unrelated --out (create)": ["create", "--seed", "1", "--out", f"{t}/junk"],
        "non-empty unrelated --out (batch)": ["batch", "--seeds", "0-3", "--out", f"{t}/junk"],
        "emoji-only text": ["create", "--seed", "1", "--say", "\U0001F600\U0001F600", "--out", f"{t}/new"],
        "no --seed": ["create", "--out", f"{t}/new"],
        "--keep-face without --from-face": ["create", "--seed", "1", "--keep-face", "--out", f"{t}/new"],
        "missing --from-face": ["create", "--from-face", f"{t}/missing.png", "--out", f"{t}/new"],
        "non-image --from-face": ["create", "--from-face", f"{t}/notimage.png", "--out", f"{t}/new"],
        "non-WAV --from-voice": ["create", "--from-voice", f"{t}/notwav.wav", "--out", f"{t}/new"],
        "say --out a folder": ["say", "--persona", f"{t}/persona", "--text", "Hi.", "--out", f"{t}/junk"],
        "--aged 500": ["create", "--seed", "1", "--aged", "500", "--out", f"{t}/new"],
        "--aged -50 (needs the trait prior)": ["create", "--seed", "1", "--aged", "-50", "--out", f"{t}/new"],
        "batch --no-voice --say": ["batch", "--seeds", "0-1", "--no-voice", "--say", "Hi", "--out", f"{t}/nv"],
        "create onto an existing persona": ["create", "--seed", "2", "--out", f"{t}/made"],
    }


def run(argv: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "digitalhuman", *argv], capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0, r.returncode, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--door-only", action="store_true", help="only issue 28's cases and their budget (no create)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cli_edges."))
    try:
        errors = ({} if a.door_only else cases(tmp)) | door(tmp)
        ok_argv = ["create", "--seed", "42", "--say", "The mines are cursed.", "--out"]
        if not a.door_only:
            assert run(ok_argv + [str(tmp / "made")])[1] == 0  # also the persona that one case must not replace
        before = sorted(p.name for p in tmp.iterdir())
        times: dict[str, list[float]] = {**({} if a.door_only else {"create (success)": []}), **{k: [] for k in errors}}
        last: dict[str, tuple[int, str]] = {}
        for i in range(a.repeats):
            if not a.door_only:
                s, code, _ = run(ok_argv + [str(tmp / f"ok{i}")])
                assert code == 0
                times["create (success)"].append(s)
                shutil.rmtree(tmp / f"ok{i}")
            for name, argv in errors.items():
                s, code, err = run(argv)
                assert code != 0, (name, err)
                times[name].append(s)
                last[name] = (code, err)
        assert sorted(p.name for p in tmp.iterdir()) == before, "an error wrote something"
        ok = statistics.median(times["create (success)"]) if not a.door_only else float("nan")
        rows = {k: {"median_s": round(statistics.median(v), 3),
                    "ratio_to_create": None if a.door_only else round(statistics.median(v) / ok, 3),
                    "exit": last.get(k, (0, ""))[0], "message": last.get(k, (0, ""))[1]} for k, v in times.items()}
        for k, r in rows.items():
            if k.startswith("door: "):
                r["budget_s"] = DOOR_BUDGET_S
                r["within_budget"] = r["median_s"] <= DOOR_BUDGET_S
        info = subprocess.run([sys.executable, "-m", "digitalhuman", "info"], capture_output=True, text=True).stdout
        lines = info.splitlines()
        res = {"rows": rows, "info_lines": len(lines), "info_max_width": max(map(len, lines)),
               "repeats": a.repeats, "python": platform.python_version(), "cpus": os.cpu_count(),
               "loadavg_1min": round(os.getloadavg()[0], 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(map(len, rows))
    for k, r in rows.items():
        verdict = ("" if "budget_s" not in r else
                   f"  {'within' if r['within_budget'] else 'OVER'} {r['budget_s']:g} s")
        ratio = "" if r["ratio_to_create"] is None else f"  {r['ratio_to_create']:5.2f}x"
        print(f"{k:<{width}}  {r['median_s']:6.2f} s{ratio}  exit {r['exit']}{verdict}")
    print(f"info: {res['info_lines']} lines, widest {res['info_max_width']} characters; load average "
          f"{res['loadavg_1min']} on {res['cpus']} CPUs")
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(res, indent=2) + "\n")
    over = [k for k, r in rows.items() if r.get("within_budget") is False]
    if over:
        print(f"over the {DOOR_BUDGET_S:g} s budget: {', '.join(over)}", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
