"""Train the conditional face GAN (non-saturating loss + lazy R1, projection D, DiffAugment, EMA).

A first run with hinge loss and a spectral-norm D (lr 2e-4, betas 0.5/0.999) stalled here: from
step ~250 the discriminator's outputs sat at 0 for real and fake alike while the generator made
texture; the logistic loss with an R1 penalty (StyleGAN2's recipe) is the default since.

A run lives in a numbered folder ``OUT/00003-face-r64`` holding ``config.json`` (resolved
options), ``log.jsonl`` (losses), ``samples/`` (grids) and ``checkpoint.pt`` (resumable; read
with ``weights_only=True``). ``--resume`` continues the newest run in ``OUT``. Under ``torchrun``
each process trains on its own shard with DistributedDataParallel (gloo on CPU).
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
import torch.nn.functional as F

from .. import distributed
from ..checkpoint import load_training_checkpoint, save_training_checkpoint, save_weights
from ..runs import latest_run_dir
from .data import load_split
from .gan import Discriminator, FaceGANConfig, Generator, make_cond, to_pixels


@dataclass(frozen=True)
class FaceTrainConfig:
    model: FaceGANConfig = field(default_factory=FaceGANConfig)
    batch: int = 64  # global batch (split across DDP processes)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.99)
    loss: str = "logistic"  # "logistic" (non-saturating) or "hinge"
    r1_gamma: float = 0.1
    r1_every: int = 4
    ema_decay: float = 0.999
    ema_start: int = 500
    steps: int = 200_000
    minutes: float = 0.0  # stop after this wall time (0 = no limit)
    log_every: int = 50
    sample_every: int = 250
    ckpt_every: int = 200
    seed: int = 0
    threads: int = 2
    augment: tuple[str, ...] = ("color", "translation")
    grow_from: str = ""  # a lower-resolution face_generator.safetensors the new run's G starts from
    age_balance: float = 0.0  # sample faces (and fake conditions) with weight count(age bin)^-age_balance
    d_warmup_until: int = 0  # G is held (D steps only) until this step: a fresh D warming up on a trained G


# ---------------------------------------------------------------- DiffAugment (Zhao et al. 2020)
def diff_augment(x: torch.Tensor, policy: tuple[str, ...], g: torch.Generator) -> torch.Tensor:
    B = x.shape[0]
    if "color" in policy:
        x = x + (torch.rand(B, 1, 1, 1, generator=g) - 0.5) * 0.5  # brightness (in [-1,1] units)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(B, 1, 1, 1, generator=g) * 0.6 + 0.7) + mean  # saturation
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        x = (x - mean) * (torch.rand(B, 1, 1, 1, generator=g) * 0.5 + 0.75) + mean  # contrast
    if "translation" in policy:
        R = x.shape[-1]
        s = R // 8
        pad = F.pad(x, (s, s, s, s), mode="reflect")
        dx = torch.randint(0, 2 * s + 1, (B,), generator=g)
        dy = torch.randint(0, 2 * s + 1, (B,), generator=g)
        idx = torch.arange(R)
        rows = (dy[:, None] + idx[None]).view(B, 1, R, 1).expand(B, 3, R, R + 2 * s)
        x = pad.gather(2, rows)
        cols = (dx[:, None] + idx[None]).view(B, 1, 1, R).expand(B, 3, R, R)
        x = x.gather(3, cols)
    if "cutout" in policy:
        R = x.shape[-1]
        s = R // 4
        cy = torch.randint(0, R, (B, 1, 1), generator=g)
        cx = torch.randint(0, R, (B, 1, 1), generator=g)
        yy = torch.arange(R).view(1, R, 1)
        xx = torch.arange(R).view(1, 1, R)
        keep = ~(((yy - cy).abs() < s // 2 + 1) & ((xx - cx).abs() < s // 2 + 1))
        x = x * keep[:, None].float()
    return x


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    from PIL import Image

    x = to_pixels(images)
    n, h, w, _ = x.shape
    rows = (n + nrow - 1) // nrow
    grid = np.zeros((rows * h, nrow * w, 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = x[i]
    Image.fromarray(grid).save(path)


AGE_BINS = (0, 3, 6, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 80, 90)


def age_weights(age: np.ndarray, balance: float) -> np.ndarray | None:
    """Sampling probabilities ``(N,)`` of faces: ``count(age bin)^-balance``, normalised (``None``
    for 0: uniform). 0.5 draws a bin of 500 faces (children, the old) 2.2x as often per face as a
    bin of 2,500 relative to its size, so both networks see more of the ages the data has few of."""
    if not balance:
        return None
    b = np.digitize(age, AGE_BINS)
    counts = np.bincount(b, minlength=len(AGE_BINS) + 1).astype(np.float64)
    w = counts[b] ** -float(balance)
    return w / w.sum()


def _draw(n: int, size: int, rng: np.random.Generator, p: np.ndarray | None) -> np.ndarray:
    return rng.integers(0, size, n) if p is None else rng.choice(size, n, p=p)


def _sample_conds(n: int, female: np.ndarray, age: np.ndarray, race: np.ndarray, rng: np.random.Generator,
                  p: np.ndarray | None = None):
    """Conditions for fake images: drawn like the real faces (so D sees matched marginals)."""
    idx = _draw(n, len(female), rng, p)
    return make_cond(torch.from_numpy(female[idx]), torch.from_numpy(age[idx]), torch.from_numpy(race[idx]))


def fixed_sample_conds(n: int = 32) -> torch.Tensor:
    female = torch.tensor([i % 2 for i in range(n)], dtype=torch.float32)
    age = torch.tensor([[4, 20, 30, 45, 60, 80][(i // 2) % 6] for i in range(n)], dtype=torch.float32)
    race = torch.tensor([(i // 12) % 5 for i in range(n)])
    return make_cond(female, age, race)


@torch.no_grad()
def recalibrate_bn(g: Generator, female: np.ndarray, age: np.ndarray, race: np.ndarray, batches: int = 40,
                   batch: int = 64, seed: int = 0) -> Generator:
    """Recompute the batch-norm statistics of (a copy of) ``g`` for its own weights.

    The EMA generator's weights are an average, but the running statistics copied from the live
    generator belong to other weights: sampled as is, the EMA faces came out grey and washed out
    (step 1400). Conditions follow the label distribution; deterministic given ``seed``.
    """
    g = copy.deepcopy(g)
    for m in g.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    g.train()
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # multi-threaded reductions vary in the last bits: keep exports reproducible
    try:
        for _ in range(batches):
            idx = rng.integers(0, len(female), batch)
            g(torch.randn(batch, g.cfg.z_dim, generator=gen),
              make_cond(torch.from_numpy(female[idx]), torch.from_numpy(age[idx]), torch.from_numpy(race[idx])))
    finally:
        torch.set_num_threads(threads)
    for m in g.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.momentum = 0.1
    return g.eval()


def export_generator(g_ema: Generator, cfg: FaceGANConfig, path: Path, extra: dict[str, str]) -> str:
    return save_weights(path, g_ema.state_dict(), kind="face_generator", config=cfg, half=True, extra=extra)


RESUME_KIND = "face_resume"


def pack_resume(run: str | Path, out: str | Path) -> str:
    """A compact resume point of a face run: the EMA generator and the discriminator in fp16 with
    the run's config, step and training seconds (no optimiser state; ~1/7 of ``checkpoint.pt``).
    For carrying a long CPU run from one machine or session to the next: ``train(resume_from=out)``
    starts a new run folder from it (G and its EMA both from the EMA weights, Adam restarted)."""
    run = Path(run)
    st = load_training_checkpoint(run / "checkpoint.pt")
    cfg = json.loads((run / "config.json").read_text())
    resumes = run / "resumes.jsonl"
    if resumes.is_file():  # the age balance of the run's last stretch
        lines = [json.loads(x) for x in resumes.read_text().splitlines() if x.strip()]
        if lines and "age_balance" in lines[-1]:
            cfg["age_balance"] = float(lines[-1]["age_balance"])
    return save_resume(out, st["G_ema"], st["D"], cfg, int(st["step"]), float(st["train_seconds"]), run.name)


def save_resume(out: str | Path, g_state: dict, d_state: dict, config: dict, step: int, train_seconds: float,
                run: str, half: bool = True) -> str:
    """Write a resume point (``_unpack_resume`` reads it): G (as its EMA) and D with the run's config
    (``FaceTrainConfig`` as a dict), step and training seconds; returns the file's sha256."""
    tensors = {f"G_ema.{k}": v for k, v in g_state.items()} | {f"D.{k}": v for k, v in d_state.items()}
    return save_weights(out, tensors, kind=RESUME_KIND, config=config, half=half,
                        extra={"step": str(int(step)), "train_seconds": f"{float(train_seconds):.0f}", "run": run})


def _unpack_resume(path: str | Path) -> tuple[FaceTrainConfig, dict, dict, int, float]:
    from ..checkpoint import load_weights

    tensors, config, meta = load_weights(path, kind=RESUME_KIND)
    g = {k[len("G_ema."):]: v for k, v in tensors.items() if k.startswith("G_ema.")}
    d = {k[len("D."):]: v for k, v in tensors.items() if k.startswith("D.")}
    return _config_from_dict(config), g, d, int(meta["step"]), float(meta["train_seconds"])


def _continued(saved: FaceTrainConfig, asked: FaceTrainConfig | None) -> FaceTrainConfig:
    """The config of a continued run: architecture and optimiser as saved; the stopping rule,
    threads and (when asked for) the age balance from ``asked``."""
    if asked is None:
        return saved
    return dataclasses.replace(saved, minutes=asked.minutes, steps=asked.steps, threads=asked.threads,
                               age_balance=asked.age_balance or saved.age_balance)


def train(data_dir: str, out: str, resume: bool = False, cfg: FaceTrainConfig | None = None,
          cache_dir: str | None = None, progress: bool = True, resume_from: str | None = None) -> Path:
    """Train (or ``resume`` the newest run in ``out``, or start a new run from a ``pack_resume``
    file ``resume_from``); returns the run folder."""
    ddp, rank, world = distributed.setup()
    packed = None
    if resume_from:
        saved, g_state, d_state, step0, secs0 = _unpack_resume(resume_from)
        cfg = dataclasses.replace(_continued(saved, cfg), grow_from="")
        packed = (g_state, d_state, step0, secs0)
        resume = False
    if resume:
        run = latest_run_dir(out, "face")
        if run is None:
            raise FileNotFoundError(f"--resume: no face run in {out}")
        cfg = _continued(_config_from_dict(json.loads((run / "config.json").read_text())), cfg)
    else:
        cfg = cfg or FaceTrainConfig()
        run = distributed.new_run(out, f"face-r{cfg.model.resolution}", dataclasses.asdict(cfg))
    torch.set_num_threads(max(1, cfg.threads // world))
    (run / "samples").mkdir(exist_ok=True)

    imgs, female, age, race, _ = load_split(data_dir, cfg.model.resolution, "train", cache_dir)
    if ddp:  # each rank trains on its own shard
        sl = slice(rank, None, world)
        imgs, female, age, race = imgs[sl], female[sl], age[sl], race[sl]
    data = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()  # uint8 (N,3,R,R)
    cond_all = make_cond(torch.from_numpy(female), torch.from_numpy(age), torch.from_numpy(race))

    torch.manual_seed(cfg.seed + rank)
    G, D = Generator(cfg.model), Discriminator(cfg.model)
    if cfg.grow_from and not resume:
        from .gan import grow_from
        from .model import load_generator

        G = grow_from(load_generator(cfg.grow_from)[0], cfg.model)
    # channels-last: a 128 px training step is ~1.25x faster on CPU here (oneDNN); weights are saved contiguous
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval()
    for p in G_ema.parameters():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    step, cpu_seconds = 0, 0.0
    if packed is not None:
        g_state, d_state, step, cpu_seconds = packed
        G.load_state_dict(g_state), G_ema.load_state_dict(g_state), D.load_state_dict(d_state)
        if rank == 0:
            (run / "resumed_from.json").write_text(json.dumps({"file": str(resume_from), "step": step}) + "\n")
    ckpt_path = run / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        st = load_training_checkpoint(ckpt_path)
        G.load_state_dict(st["G"]), D.load_state_dict(st["D"]), G_ema.load_state_dict(st["G_ema"])
        opt_g.load_state_dict(st["opt_g"]), opt_d.load_state_dict(st["opt_d"])
        step, cpu_seconds = int(st["step"]), float(st["train_seconds"])
    if ddp:
        G_t = torch.nn.parallel.DistributedDataParallel(G)
        D_t = torch.nn.parallel.DistributedDataParallel(D, broadcast_buffers=False)
    else:
        G_t, D_t = G, D

    p_face = age_weights(age, cfg.age_balance)
    rng = np.random.default_rng([cfg.seed, rank, step])
    aug_g = torch.Generator().manual_seed(cfg.seed * 1000 + rank * 7 + step)
    fixed_z = torch.randn(32, cfg.model.z_dim, generator=torch.Generator().manual_seed(1234))
    fixed_c = fixed_sample_conds(32)
    per_rank = cfg.batch // world
    t0 = time.time()
    t_seg = time.time()
    log = open(run / "log.jsonl", "a") if rank == 0 else None
    if rank == 0 and resume:  # what this stretch of the run trained with (config.json holds the start)
        with open(run / "resumes.jsonl", "a") as f:
            f.write(json.dumps({"resumed_at": step, "threads": cfg.threads, "age_balance": cfg.age_balance}) + "\n")
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="face GAN", unit="step", mininterval=5)
    import signal

    stop = {"now": False}

    def _on_term(signum, frame):  # finish the step, checkpoint, export, exit cleanly
        stop["now"] = True

    old_term = signal.signal(signal.SIGTERM, _on_term) if rank == 0 and _main_thread() else None
    while step < cfg.steps and not stop["now"]:
        if cfg.minutes and time.time() - t0 > cfg.minutes * 60:
            break
        idx = torch.from_numpy(_draw(per_rank, len(data), rng, p_face))
        real = (data[idx].float() / 127.5 - 1).contiguous(memory_format=torch.channels_last)
        flip = torch.from_numpy(rng.random(per_rank) < 0.5)
        real = torch.where(flip[:, None, None, None], real.flip(3), real)
        c_real = cond_all[idx]
        z = torch.randn(per_rank, cfg.model.z_dim)
        c_fake = _sample_conds(per_rank, female, age, race, rng, p_face)

        # D step
        with torch.no_grad():
            fake = G_t(z, c_fake)
        r1_step = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
        real_in = diff_augment(real, cfg.augment, aug_g).detach().requires_grad_(r1_step)
        d_real = D_t(real_in, c_real)
        d_fake = D_t(diff_augment(fake, cfg.augment, aug_g), c_fake)
        if cfg.loss == "hinge":
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        else:
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if r1_step:
            (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
            loss_d = loss_d + 0.5 * cfg.r1_gamma * cfg.r1_every * grad.pow(2).sum((1, 2, 3)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # G step (held while a fresh D warms up on a trained G)
        if step < cfg.d_warmup_until:
            step += 1
            if bar:
                bar.update(1)
            if rank == 0 and step % cfg.log_every == 0:
                log.write(json.dumps({"step": step, "loss_d": round(loss_d.item(), 4), "d_warmup": True}) + "\n")
                log.flush()
            continue
        z = torch.randn(per_rank, cfg.model.z_dim)
        c_fake = _sample_conds(per_rank, female, age, race, rng, p_face)
        fake = G_t(z, c_fake)
        d_gen = D_t(diff_augment(fake, cfg.augment, aug_g), c_fake)
        loss_g = -d_gen.mean() if cfg.loss == "hinge" else F.softplus(-d_gen).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        # EMA (plain copy before ema_start so early EMA is not stuck at init)
        decay = cfg.ema_decay if step >= cfg.ema_start else 0.0
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
        step += 1
        if bar:
            bar.update(1)

        if rank == 0 and step % cfg.log_every == 0:
            log.write(json.dumps({"step": step, "loss_d": round(loss_d.item(), 4), "loss_g": round(loss_g.item(), 4),
                                  "d_real": round(d_real.mean().item(), 3), "d_fake": round(d_fake.mean().item(), 3),
                                  "train_seconds": round(cpu_seconds + time.time() - t_seg, 1)}) + "\n")
            log.flush()
        if rank == 0 and (step % cfg.sample_every == 0 or step == cfg.steps):
            with torch.no_grad():
                g_cal = recalibrate_bn(G_ema, female, age, race, batches=10)
                save_grid(g_cal(fixed_z, fixed_c), run / "samples" / f"{step:07d}.png")
        if rank == 0 and (step % cfg.ckpt_every == 0 or step == cfg.steps):
            cpu_seconds += time.time() - t_seg
            t_seg = time.time()
            _save(ckpt_path, G, D, G_ema, opt_g, opt_d, step, cpu_seconds)
    if rank == 0:
        cpu_seconds += time.time() - t_seg
        _save(ckpt_path, G, D, G_ema, opt_g, opt_d, step, cpu_seconds)
        g_cal = recalibrate_bn(G_ema, female, age, race)
        with torch.no_grad():
            save_grid(g_cal(fixed_z, fixed_c), run / "samples" / f"{step:07d}.png")
        export_generator(g_cal, cfg.model, run / "face_generator.safetensors",
                         {"steps": str(step), "train_seconds": f"{cpu_seconds:.0f}"})
        if bar:
            bar.close()
        log.close()
    if old_term is not None:
        signal.signal(signal.SIGTERM, old_term)
    if ddp:
        distributed.teardown()
    return run


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _save(path, G, D, G_ema, opt_g, opt_d, step, secs):
    save_training_checkpoint(path, {"G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                                    "step": step, "train_seconds": secs})


def _config_from_dict(d: dict) -> FaceTrainConfig:
    d = dict(d)
    d["model"] = FaceGANConfig(**d["model"])
    d["betas"] = tuple(d["betas"])
    d["augment"] = tuple(d["augment"])
    return FaceTrainConfig(**d)
