"""Start (or continue) the 128 px face run of issue "faces v2": the shipped 64 px generator grown
to 128 px (``gan.grow_from``), with the settings the first attempt taught.

    python scripts/train_face128.py --out RUNS/ [--data ../shared/data/utkface128] [--cache DIR]
    python scripts/train_face128.py --out RUNS/ --resume-from face-r128-resume.safetensors

First attempt (2026-11-27, run 00000-face-r128): transposed conv at the new level, G and D at
lr 2e-4, D channels 16, R1 gamma 0.2. By step 1,507 the faces showed a checkerboard and stripes and
the age conditioning had washed out (judged age 14 at condition 1, 40.5 at 110). Hence: nearest
upsampling + 3x3 conv at the top (``top_nearest``), a gentle G (lr 5e-5) while the new D (24
channels) warms up, R1 gamma 0.1, and age balance 0.5 (children and the old drawn more often).
One thread, so the other core stays free. Pack it at the end of a session
(``scripts/pack_face_resume.py RUN OUT``): run folders have not always outlived one here.

Second attempt (run 00000-face-r128 of the second runs folder): clean to step ~760 by 2026-11-28
(detail ratio 0.10-0.13, judged ages 18-37 for requested 8-80: the 64 px G's weak age condition
carried over). Forks of it with an age/gender head on D and with a frozen attribute-CNN guide on
G failed and were reverted (the commit messages say how).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitalhuman.face.gan import FaceGANConfig  # noqa: E402
from digitalhuman.face.train import FaceTrainConfig, train  # noqa: E402

MODEL = FaceGANConfig(resolution=128, g_channels=16, d_channels=24, skip_rgb=True, top_nearest=True)
CONFIG = FaceTrainConfig(model=MODEL, batch=32, lr_g=5e-5, lr_d=2e-4, r1_gamma=0.1, ema_start=0, ckpt_every=50,
                         sample_every=100, threads=1, age_balance=0.5, steps=200_000,
                         grow_from=str(ROOT / "digitalhuman" / "weights" / "face_generator.safetensors"))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="parent folder of the numbered run folders (outside the repo)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "utkface128"))
    ap.add_argument("--cache", default=None, help="folder to cache decoded images in")
    ap.add_argument("--resume-from", default=None, help="a pack_face_resume.py file to continue from")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this wall time (0: until stopped)")
    a = ap.parse_args()
    import dataclasses

    cfg = dataclasses.replace(CONFIG, minutes=a.minutes)
    print(train(a.data, a.out, cfg=cfg, cache_dir=a.cache, resume_from=a.resume_from))
