"""Train the face refiner (``refine.Refiner``): the 128 px level above the frozen 64 px generator.

Each step takes a batch of real 128 px training faces (flipped at random) with their 64 px
versions, and a batch of 64 px faces made by the shipped generator (a fixed pool, drawn once with
age-balanced conditions and the weights' presentation, so the refiner learns on what it will see).

- refiner loss: L1 of refined real 64 px faces against their 128 px originals (``w_l1``), and of
  their local detail energy (``detail_energy``, ``w_energy``);
  consistency of every refined face brought down to 32 px against its input brought down to 32 px
  (``w_cons``); non-saturating adversarial loss (``w_adv``) from the discriminator;
- discriminator: a patch discriminator on ``d_input``: the detail (``high_pass``) of real 128 px
  faces against refined ones (real-pair and generated alike), with the rest of the image as
  context it cannot change; logistic loss with lazy R1.

A run folder holds ``config.json``, ``log.jsonl``, ``samples/`` and ``checkpoint.pt`` (saved
atomically every ``ckpt_every`` steps, read with ``weights_only=True``); calling ``train_refiner``
again on the folder resumes it. ``export_refiner`` writes the EMA refiner as fp16 safetensors.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import load_training_checkpoint, save_training_checkpoint, save_weights
from .refine import Refiner, RefinerConfig, high_pass

KIND = "face_refiner"


@dataclass(frozen=True)
class RefinerTrainConfig:
    model: RefinerConfig = field(default_factory=RefinerConfig)
    batch: int = 16  # real pairs per step; as many generated faces
    lr: float = 2e-4
    lr_d: float = 2e-4
    w_l1: float = 1.0
    w_cons: float = 5.0
    w_adv: float = 0.05
    w_energy: float = 0.0
    w_fm: float = 0.0  # feature matching: discriminator features of refined real faces vs their originals
    r1_gamma: float = 1.0
    r1_every: int = 4
    ema_decay: float = 0.995
    ema_start: int = 200
    pool: int = 12_000  # generated 64 px faces drawn once
    steps: int = 100_000
    minutes: float = 0.0
    log_every: int = 50
    sample_every: int = 250
    ckpt_every: int = 100
    seed: int = 0
    threads: int = 2


class PatchD(nn.Module):
    """Logits for overlapping patches (about 46 px) of an image's high-frequency layer, seen with
    its low-frequency rest as context (``d_input``): where there is hair, skin or background."""

    def __init__(self, ch: int = 48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(6, ch, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * ch, 4 * ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * ch, 4 * ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * ch, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).mean(1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each hidden layer (for feature matching, pix2pixHD-style)."""
        out = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                out.append(x)
        return out


def d_input(x: torch.Tensor) -> torch.Tensor:
    """The discriminator's view of a 128 px face: its detail (``high_pass``, x4) beside its
    low-frequency rest, detached, so the refiner is judged on, and changes, the detail only."""
    hp = high_pass(x)
    return torch.cat([hp * 4.0, (x - hp).detach()], dim=1)


def detail_energy(x: torch.Tensor) -> torch.Tensor:
    """Log of the local energy of an image's detail (``high_pass`` squared, averaged over 4x4
    blocks and colours): how much detail there is where, whatever its exact phase (which L1 on
    pixels averages away)."""
    return torch.log(F.avg_pool2d(high_pass(x).pow(2).mean(1, keepdim=True), 4) + 1e-4)


def make_pool(face_weights: str | Path, n: int, age: np.ndarray, seed: int,
              psi: float | None = None, log=print) -> np.ndarray:
    """``n`` faces (uint8 N,64,64,3) from the 64 px face generator as personas get them: random
    codes at the pipeline's truncation ``psi``, gender 0/1, ages drawn from the training ages with
    age-balanced weights, random groups."""
    from ..pipeline import DEFAULT_PSI

    from .model import FaceModel
    from .train import age_weights

    fm = FaceModel.load(face_weights, runtime="torch")  # PyTorch: the pool of the shipped run (0.4.0)
    fm.g.refiner = None  # the pool is the 64 px generator's own faces, whatever top level the weights carry
    rng = np.random.default_rng(seed)
    ages = age[rng.choice(len(age), n, p=age_weights(age, 0.5))].astype(np.float32)
    ages = np.clip(ages + rng.uniform(-0.5, 0.5, n).astype(np.float32), 1, 100)
    fem = rng.integers(0, 2, n).astype(np.float32)
    race = rng.integers(0, 5, n)
    codes = rng.standard_normal((n, fm.cfg.z_dim)).astype(np.float32)
    out = np.empty((n, fm.cfg.resolution, fm.cfg.resolution, 3), np.uint8)
    for i in range(0, n, 256):
        out[i:i + 256] = fm.generate(codes[i:i + 256], fem[i:i + 256], ages[i:i + 256], race[i:i + 256],
                                     psi=DEFAULT_PSI if psi is None else psi)
        if i % 2560 == 0:
            log(f"pool {i}/{n}")
    return out


def _t(imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _detail(x: torch.Tensor) -> float:
    """The evaluation's detail measure (``face_persona_rows.laplacian_variance``) of images in [-1, 1]."""
    from ..evaluate.face_persona_rows import laplacian_variance
    from .gan import to_pixels

    return laplacian_variance(to_pixels(x))


def _config_from_dict(d: dict) -> RefinerTrainConfig:
    d = dict(d)
    d["model"] = RefinerConfig(**d["model"])
    return RefinerTrainConfig(**d)


def train_refiner(run: str | Path, data_128: np.ndarray, data_64: np.ndarray, pool: np.ndarray,
                  cfg: RefinerTrainConfig, log=print) -> Path:
    """Train (or resume, if ``run`` holds a checkpoint) a refiner; returns the run folder."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    (run / "samples").mkdir(exist_ok=True)
    ckpt_path = run / "checkpoint.pt"
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    R, D = Refiner(cfg.model), PatchD()
    R_ema = copy.deepcopy(R).eval()
    opt_r = torch.optim.Adam(R.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.0, 0.99))
    step, seconds = 0, 0.0

    def state() -> dict:
        return {"R": R.state_dict(), "R_ema": R_ema.state_dict(), "D": D.state_dict(), "opt_r": opt_r.state_dict(),
                "opt_d": opt_d.state_dict(), "step": step, "train_seconds": seconds}

    if ckpt_path.is_file():
        st = load_training_checkpoint(ckpt_path)
        R.load_state_dict(st["R"]), R_ema.load_state_dict(st["R_ema"]), D.load_state_dict(st["D"])
        opt_r.load_state_dict(st["opt_r"]), opt_d.load_state_dict(st["opt_d"])
        step, seconds = int(st["step"]), float(st["train_seconds"])
        log(f"resumed at step {step}")
    else:
        (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    rng = np.random.default_rng(cfg.seed + step)
    fixed = _t(pool[:16])
    fixed_real = _t(data_128[:64])
    real_detail = _detail(fixed_real)
    t0, t_last = time.time(), time.time()
    B = cfg.batch
    with open(run / "log.jsonl", "a") as logf:
        while step < cfg.steps and not (cfg.minutes and time.time() - t0 > cfg.minutes * 60):
            i_r, i_g = rng.integers(0, len(data_128), B), rng.integers(0, len(pool), B)
            flip = rng.random(B) < 0.5
            r128, r64 = data_128[i_r].copy(), data_64[i_r].copy()
            r128[flip], r64[flip] = r128[flip, :, ::-1], r64[flip, :, ::-1]
            r128, r64, g64 = _t(r128), _t(r64), _t(pool[i_g])

            # discriminator
            with torch.no_grad():
                fake = torch.cat([R(r64), R(g64)])
            d_loss = F.softplus(D(d_input(fake))).mean() + F.softplus(-D(d_input(r128))).mean()
            if step % cfg.r1_every == 0:
                inp = d_input(r128).requires_grad_(True)
                (grad,) = torch.autograd.grad(D(inp).sum(), inp, create_graph=True)
                d_loss = d_loss + cfg.r1_gamma / 2 * grad.pow(2).sum([1, 2, 3]).mean() * cfg.r1_every
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

            # refiner
            y_r, y_g = R(r64), R(g64)
            l1 = (y_r - r128).abs().mean()
            cons = ((F.avg_pool2d(y_g, 4) - F.avg_pool2d(g64, 2)).abs().mean()
                    + (F.avg_pool2d(y_r, 4) - F.avg_pool2d(r64, 2)).abs().mean()) / 2
            adv = F.softplus(-D(d_input(torch.cat([y_r, y_g])))).mean()
            energy = (detail_energy(y_r) - detail_energy(r128)).abs().mean()
            loss = cfg.w_l1 * l1 + cfg.w_cons * cons + cfg.w_adv * adv + cfg.w_energy * energy
            fm = torch.zeros(())
            if cfg.w_fm:
                with torch.no_grad():
                    target = D.features(d_input(r128))
                fm = sum((a - b).abs().mean() for a, b in zip(D.features(d_input(y_r)), target)) / len(target)
                loss = loss + cfg.w_fm * fm
            opt_r.zero_grad(set_to_none=True)
            loss.backward()
            opt_r.step()
            step += 1
            decay = 0.0 if step < cfg.ema_start else cfg.ema_decay
            with torch.no_grad():
                for pe, p in zip(R_ema.parameters(), R.parameters()):
                    pe.lerp_(p, 1 - decay)

            now = time.time()
            seconds += now - t_last
            t_last = now
            if step % cfg.log_every == 0:
                with torch.no_grad():
                    detail = _detail(R_ema(_t(pool[-64:]))) / real_detail
                rec = {"step": step, "d": round(d_loss.item(), 4), "l1": round(l1.item(), 4),
                       "cons": round(cons.item(), 4), "adv": round(adv.item(), 4), "energy": round(energy.item(), 4),
                       "fm": round(fm.item(), 4),
                       "detail_ratio": round(detail, 3), "sec": round(seconds)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log(json.dumps(rec))
            if step % cfg.sample_every == 0:
                _save_samples(run / "samples" / f"{step:06d}.png", fixed, R_ema)
            if step % cfg.ckpt_every == 0:
                save_training_checkpoint(ckpt_path, state())
    save_training_checkpoint(ckpt_path, state())
    return run


@torch.no_grad()
def _save_samples(path: Path, x64: torch.Tensor, R: Refiner) -> None:
    from .refine import upsample
    from .train import save_grid

    y = R(x64)
    save_grid(torch.cat([upsample(x64), y]), path, nrow=len(x64))


def load_run(run: str | Path, which: str = "ema") -> tuple[dict, RefinerTrainConfig, int, float]:
    """``(refiner weights, training config, step, training seconds)`` of a run's checkpoint:
    its EMA weights (``which="ema"``) or its live ones (``"live"``)."""
    run = Path(run)
    st = load_training_checkpoint(run / "checkpoint.pt")
    cfg = _config_from_dict(json.loads((run / "config.json").read_text()))
    return st["R_ema" if which == "ema" else "R"], cfg, int(st["step"]), float(st["train_seconds"])


def export_refiner(run: str | Path, out: str | Path, extra: dict[str, str] | None = None) -> str:
    """The EMA refiner of ``run`` as fp16 safetensors (kind ``face_refiner``); returns its sha256."""
    weights, cfg, step, seconds = load_run(run)
    meta = {"steps": str(step), "train_seconds": f"{seconds:.0f}"} | (extra or {})
    return save_weights(out, weights, kind=KIND, config=cfg.model, half=True, extra=meta)
