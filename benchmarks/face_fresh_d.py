"""How fast does a fresh discriminator learn to tell the shipped 64 px generator's faces from real ones? (issue "faces v2")

The shipped weights hold the generator only, so continuing its training starts a new D. This probe
trains D alone (G frozen, its batch norm in training mode as in the trainer) with the trainer's loss
and lazy R1, and prints every 25 steps the mean loss and the gap between D's mean logit on real and
on generated faces (0: D cannot tell them apart). 1 thread.

    python benchmarks/face_fresh_d.py [--r1 0.1] [--augment color,translation] [--lr 2e-4] [--steps 200]

Measured here (2026-11-28, 1 thread, about 2 s per step):

| augmentation | R1 gamma | lr | loss / gap at step 50 | step 100 | step 200 |
|---|---|---|---|---|---|
| color, translation (the trainer's) | 0.1 | 2e-4 | 1.406 / 0.000 | 1.423 / 0.019 | 1.355 / 0.196 |
| color, translation | 0 | 2e-4 | 1.403 / 0.005 | 1.413 / 0.008 | 1.363 / 0.091 |
| color, translation | 0.1 | 1e-3 | 1.388 / 0.004 | 1.386 / 0.006 | - |
| none | 0.1 | 2e-4 | 1.242 / 0.757 | 0.582 / 3.260 | - |

With DiffAugment on both sides a new D is blind for 150 steps, not because of R1; without it, it
separates them within 75. A continued run that kept the augmentation (2026-11-28) showed it: after a
300-step warm-up, 50 steps of G updates put D back at chance (d_real 0.01, d_fake 0.013); the same
continuation without augmentation keeps a gap (d_real -0.22 vs d_fake -0.73 at step 6,100).
20,638 training faces are not the few-thousand-image regime DiffAugment was made for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--r1", type=float, default=0.1)
    ap.add_argument("--augment", default="color,translation", help="DiffAugment policy ('' for none)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "utkface128"))
    ap.add_argument("--cache", default=None)
    a = ap.parse_args()
    import torch
    import torch.nn.functional as F

    from digitalhuman.checkpoint import load_weights
    from digitalhuman.face.data import load_split
    from digitalhuman.face.gan import Discriminator, FaceGANConfig, Generator, make_cond
    from digitalhuman.face.train import _draw, _sample_conds, age_weights, diff_augment

    torch.set_num_threads(1)
    tensors, _, _ = load_weights(ROOT / "digitalhuman" / "weights" / "face_generator.safetensors", kind="face_generator")
    model = FaceGANConfig()
    G = Generator(model)
    G.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("refiner.")})
    G.train()  # as in the trainer: batch statistics
    G.requires_grad_(False)
    torch.manual_seed(0)
    D = Discriminator(model)
    opt = torch.optim.Adam(D.parameters(), lr=a.lr, betas=(0.0, 0.99))
    imgs, female, age, race, _ = load_split(a.data, model.resolution, "train", a.cache)
    data = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    cond = make_cond(torch.from_numpy(female), torch.from_numpy(age), torch.from_numpy(race))
    rng, gen, p_face = np.random.default_rng(0), torch.Generator().manual_seed(0), age_weights(age, 0.5)
    policy = tuple(x for x in a.augment.split(",") if x)
    hist = []
    for step in range(a.steps):
        idx = torch.from_numpy(_draw(64, len(data), rng, p_face))
        real = data[idx].float() / 127.5 - 1
        c_fake = _sample_conds(64, female, age, race, rng, p_face)
        with torch.no_grad():
            fake = G(torch.randn(64, model.z_dim), c_fake)
        r1_step = a.r1 > 0 and step % 4 == 0
        real_in = diff_augment(real, policy, gen).detach().requires_grad_(r1_step)
        d_real, d_fake = D(real_in, cond[idx]), D(diff_augment(fake, policy, gen), c_fake)
        gan = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        loss = gan
        if r1_step:
            (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
            loss = loss + 0.5 * a.r1 * 4 * grad.pow(2).sum((1, 2, 3)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append((gan.item(), (d_real.mean() - d_fake.mean()).item()))
        if (step + 1) % 25 == 0:
            h = np.array(hist[-25:])
            print(f"step {step + 1}: loss {h[:, 0].mean():.3f}, gap {h[:, 1].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
