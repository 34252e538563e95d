"""Does a trainer learn the same way under torchrun (2 processes, gloo) as in 1 process?

Runs ``digitalhuman train face`` (or ``voice``) twice with the same global batch -- once as one
process, once under ``torchrun --nproc_per_node 2`` (each rank on its own shard of the data) --
then compares the two ``log.jsonl`` curves: both smoothed over a window of log points, their
Pearson correlation, the mean absolute difference and the means over the last quarter of the run.
Rank 0 logs the losses of its own shard, so the 2-process curve is noisier point by point; the
smoothed shapes are what should agree. For the voice, the held-out figures of both runs'
``eval.json`` are printed side by side too.

    python benchmarks/ddp_loss_curve.py --data ../shared/data/utkface128 --out /tmp/ddp --steps 3000
    python benchmarks/ddp_loss_curve.py --model voice --data ../shared/data/commonvoice61 --out /tmp/vddp

``--one RUN --two RUN`` compares two existing run folders instead of training.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

KEYS = {"face": ("step", ("loss_d", "loss_g", "d_real", "d_fake")),
        "voice": ("epoch", ("loss", "recon", "kl", "eval_mse"))}
EVAL_KEYS = ("recon_mse", "gender_acc", "age_spearman", "active_latent_dims")


def read_log(run: Path, model: str) -> dict[str, np.ndarray]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{run}/log.jsonl has no rows")
    x, keys = KEYS[model]
    return {"step": np.array([r[x] for r in rows], float),
            **{k: np.array([r[k] for r in rows], float) for k in ("train_seconds", *keys)}}


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    if len(x) < window:
        return x.copy()
    return np.convolve(x, np.ones(window) / window, mode="valid")


def compare(one: dict, two: dict, window: int, model: str) -> dict:
    common = np.intersect1d(one["step"], two["step"])
    if len(common) < 2 * window:
        raise SystemExit(f"only {len(common)} common log points; run longer or lower --window")
    i1 = np.searchsorted(one["step"], common)
    i2 = np.searchsorted(two["step"], common)
    out: dict = {"log_points": int(len(common)), "last_step": int(common[-1]), "window": window}
    q = len(common) * 3 // 4
    for k in KEYS[model][1]:
        a, b = one[k][i1], two[k][i2]
        sa, sb = smooth(a, window), smooth(b, window)
        out[k] = {
            "pearson_smoothed": round(float(np.corrcoef(sa, sb)[0, 1]), 3),
            "mean_abs_diff_smoothed": round(float(np.abs(sa - sb).mean()), 4),
            "last_quarter_mean_1proc": round(float(a[q:].mean()), 4),
            "last_quarter_mean_2proc": round(float(b[q:].mean()), 4),
            "last_quarter_std_1proc": round(float(a[q:].std()), 4),
            "last_quarter_std_2proc": round(float(b[q:].std()), 4),
        }
    for name, log in (("1proc", one), ("2proc", two)):
        out[f"seconds_per_{KEYS[model][0]}_{name}"] = round(float(log["train_seconds"][-1] / log["step"][-1]), 4)
    return out


def newest_run(parent: Path) -> Path:
    runs = sorted(p for p in parent.iterdir() if p.is_dir() and (p / "log.jsonl").is_file())
    if not runs:
        raise SystemExit(f"no run with a log.jsonl in {parent}")
    return runs[-1]


def train(args, parent: Path, procs: int) -> Path:
    if args.model == "face":
        common = ["face", "--data", args.data, "--out", str(parent), "--resolution", str(args.resolution),
                  "--batch", str(args.batch), "--steps", str(args.steps), "--threads", "2"]
    else:
        common = ["voice", "--data", args.data, "--out", str(parent), "--epochs", str(args.epochs)]
    if args.cache:
        common += ["--cache", args.cache]
    if procs == 1:
        cmd = [sys.executable, "-m", "digitalhuman", "train", *common]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
        if torchrun is None:
            raise SystemExit("torchrun not found next to this python")
        cmd = [torchrun, "--standalone", "--nproc_per_node", str(procs), "-m", "digitalhuman", "train", *common]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(f"{procs} process(es): {time.monotonic() - t0:.0f} s wall", file=sys.stderr)
    return newest_run(parent)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(KEYS), default="face")
    ap.add_argument("--data", help="face folder (images/ + labels.csv) or voice folder (clips.csv + audio/)")
    ap.add_argument("--out", help="parent folder for the two runs (one/, two/)")
    ap.add_argument("--steps", type=int, default=3000, help="face steps")
    ap.add_argument("--epochs", type=int, default=300, help="voice epochs")
    ap.add_argument("--batch", type=int, default=32, help="face global batch, the same for both runs")
    ap.add_argument("--resolution", type=int, default=32, choices=[32, 64, 128])
    ap.add_argument("--cache")
    ap.add_argument("--one", type=Path, help="existing 1-process run folder (skip training)")
    ap.add_argument("--two", type=Path, help="existing 2-process run folder (skip training)")
    ap.add_argument("--window", type=int, default=3, help="log points per smoothing window")
    ap.add_argument("--out-json", type=Path)
    args = ap.parse_args(argv)
    if args.one and args.two:
        one, two = args.one, args.two
    else:
        if not (args.data and args.out):
            ap.error("give --data and --out to train, or --one and --two to compare existing runs")
        out = Path(args.out)
        one = train(args, out / "one", 1)
        two = train(args, out / "two", 2)
    result = {"model": args.model, "one": str(one), "two": str(two),
              **compare(read_log(one, args.model), read_log(two, args.model), args.window, args.model)}
    if all((r / "eval.json").is_file() for r in (one, two)):
        evals = [json.loads((r / "eval.json").read_text()) for r in (one, two)]
        result["held_out"] = {k: {"1proc": evals[0].get(k), "2proc": evals[1].get(k)} for k in EVAL_KEYS}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out_json:
        args.out_json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
