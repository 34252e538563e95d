"""Train (or resume) the face generator's learned 2x top level (``face/train_refiner.py``) with
the settings of the run shipped in 0.4.0 (r5, 2026-11-28), then ship it with
``scripts/ship_weights.py --face-refiner RUN --face-refiner-weights live``.

    python scripts/train_refiner.py --run RUNS/refiner [--minutes 60] [--threads 2]
        [--data ../shared/data/utkface128] [--cache DIR] [--face-weights digitalhuman/weights/face_generator.safetensors]

Calling it again on the same ``--run`` resumes from its ``checkpoint.pt``. The pool of generated
64 px faces (12,000, seed 1234, psi 0.8) is drawn once into ``RUN/pool.npy``; it is made by the 64 px
generator alone (``make_pool`` leaves out a refiner already in the weights). r5's pool came from the
0.4.x generator (step 5,583); since 0.5.0 the shipped generator is a continuation of it and the refiner
was kept, not retrained.

What the other settings gave (200-400 steps each, detail ratio of 200 faces vs 200 hold-out faces):
L1 weight 1 with adversarial weight 0.05, detail fell to 0.20 (L1 blurs); L1 weight 0.1 without
the energy loss, detail 1.1 at step 50 then 0.18 (the discriminator found the texture wrong and
no texture was the easy way out); the same with 4 fixed noise maps as input, 0.20. Shipped: 0.36
(live weights; the EMA's 0.25). Resumed from the shipped step 400 (2026-11-28, 1 thread): feature
matching on the discriminator's activations (``w_fm`` 2) gave 0.32 at step 500, and an unpaired loss
on the mean detail-energy map of generated faces (weight 1) 0.34: neither raised the detail.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from digitalhuman.face.data import DEFAULT_FACE_DATA, load_split  # noqa: E402
from digitalhuman.face.refine import RefinerConfig  # noqa: E402
from digitalhuman.face.train_refiner import RefinerTrainConfig, make_pool, train_refiner  # noqa: E402

POOL_PSI = 0.8  # the pipeline's truncation when r5 was trained (0.9 since 0.5.0); its pool is rebuilt with it
SHIPPED = RefinerTrainConfig(model=RefinerConfig(channels=24, blocks=4), w_adv=0.3, w_l1=0.1, w_energy=0.2,
                             r1_gamma=0.1, lr_d=4e-4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder (created, or resumed)")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DEFAULT_FACE_DATA)
    ap.add_argument("--cache", type=Path, default=None, help="cache decoded face arrays here")
    ap.add_argument("--face-weights", type=Path, default=ROOT / "digitalhuman" / "weights" / "face_generator.safetensors")
    args = ap.parse_args()
    import dataclasses

    import torch

    torch.set_num_threads(args.threads)
    i128, _, age, _, _ = load_split(args.data, 128, "train", args.cache)
    i64 = load_split(args.data, 64, "train", args.cache)[0]
    args.run.mkdir(parents=True, exist_ok=True)
    pool_file = args.run / "pool.npy"
    if not pool_file.is_file():
        pool = make_pool(args.face_weights, SHIPPED.pool, age, 1234, psi=POOL_PSI)
        tmp = args.run / ".pool.tmp.npy"
        np.save(tmp, pool)
        tmp.replace(pool_file)
    cfg = dataclasses.replace(SHIPPED, minutes=args.minutes, threads=args.threads)
    train_refiner(args.run, i128, i64, np.load(pool_file), cfg)


if __name__ == "__main__":
    main()
