"""Continue training the shipped 64 px face generator (issue "faces v2"), with a fresh discriminator.

    python scripts/continue_face64.py --out RUNS/ [--minutes 90] [--threads 2]   # start
    python scripts/continue_face64.py --out RUNS/ --resume [--minutes 90]        # go on

The shipped file holds only the generator (its EMA, batch norm recalibrated) and, in its metadata,
the steps and seconds it trained (0.4.x: 5,583 steps in 3.0 h; 0.5.0: 9,500). A new run starts
from it at that step with a new D that trains alone for ``D_WARMUP`` = 100 steps
(``d_warmup_until``) and then against G at lr 1e-4 (D 2e-4), without DiffAugment: with the
trainer's augmentation a fresh D stays blind for about 150 steps and a continuation of 2026-11-28
had D at chance 50 steps after G resumed (docs/evaluation.md, "Findings of earlier probes"). Age balance 0.5
(children and the old drawn more often). The run's ``face_generator.safetensors`` is 64 px only:
before it can be shipped, the refiner, the age map and shift and the strengths have to be re-fitted
on it (``scripts/train_refiner.py``, ``scripts/tune_strengths.py``, ``scripts/ship_weights.py``).
"""

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitalhuman.checkpoint import load_weights  # noqa: E402
from digitalhuman.face.gan import Discriminator, FaceGANConfig, Generator  # noqa: E402
from digitalhuman.face.train import FaceTrainConfig, save_resume, train  # noqa: E402

SHIPPED = ROOT / "digitalhuman" / "weights" / "face_generator.safetensors"
D_WARMUP = 100  # steps the fresh D trains alone


CONFIG = FaceTrainConfig(model=FaceGANConfig(), lr_g=1e-4, lr_d=2e-4, augment=(), age_balance=0.5, ckpt_every=100,
                         sample_every=250)


def start_point(out: Path, cfg: FaceTrainConfig) -> tuple[Path, FaceTrainConfig]:
    """A resume file (``train(resume_from=...)``) holding the shipped G (64 px layers) and a new D,
    at the shipped generator's step and seconds (its metadata); and ``cfg`` with the D warm-up after it."""
    import torch

    tensors, _, meta = load_weights(SHIPPED, kind="face_generator")
    step, seconds = int(meta["steps"]), float(meta["train_seconds"])
    cfg = dataclasses.replace(cfg, d_warmup_until=step + D_WARMUP)
    g = Generator(cfg.model)
    g.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("refiner.")})
    torch.manual_seed(cfg.seed)
    d = Discriminator(cfg.model)
    path = out / "shipped-64px-start.safetensors"
    save_resume(path, g.state_dict(), d.state_dict(), dataclasses.asdict(cfg), step, seconds, "shipped", half=False)
    return path, cfg


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="parent folder of the numbered run folders (outside the repo)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "utkface128"))
    ap.add_argument("--cache", default=None, help="folder to cache decoded images in")
    ap.add_argument("--resume", action="store_true", help="go on with the newest run in --out")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this wall time (0: until stopped)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(CONFIG, minutes=a.minutes, threads=a.threads)
    if a.resume:
        print(train(a.data, str(a.out), resume=True, cfg=cfg, cache_dir=a.cache))
    else:
        start, cfg = start_point(a.out, cfg)
        print(train(a.data, str(a.out), cfg=cfg, cache_dir=a.cache, resume_from=str(start)))
