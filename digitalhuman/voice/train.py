"""Train the speech VAE on per-clip voice features of real speakers, then evaluate and export it.

A run lives in a numbered folder ``OUT/00002-voice`` holding ``config.json`` (resolved options),
``log.jsonl`` (losses and held-out figures), ``checkpoint.pt`` (resumable; read with
``weights_only=True``), ``eval.json`` (the final held-out report) and ``voice_vae.safetensors``
(the inference weights). 10% of the *speakers* (fixed by a hash of ``speaker_id``) are never
trained on. With ``split="dev"`` those speakers are left out altogether and another 10% of the
rest is used for evaluation, so options can be tuned without looking at the test speakers.

Under ``torchrun --nproc_per_node N`` each process trains on its own shard of the training clips
with DistributedDataParallel (gloo on CPU); the global batch and the number of steps per epoch stay
those of one process, and rank 0 alone logs, checkpoints, evaluates and exports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from ..checkpoint import load_training_checkpoint, save_training_checkpoint, save_weights
from ..runs import latest_run_dir
from .features import ENV_SLICE, extract_dataset
from .vae import KIND, VoiceVAE, VoiceVAEConfig, load_voice_vae

__all__ = ["VoiceTrainConfig", "train_voice", "evaluate", "load_voice_vae", "is_holdout_speaker"]

DEFAULT_CACHE = str(Path.home() / ".cache" / "digitalhuman")  # extracted features, never the data
KEY_FEATURES = ("log_f0_median", "f0_range_st", "breathiness", "spectral_tilt")
TRAINED_ON = ("Common Voice 6.1 (CC0): 1,745 read-speech clips of 1,406 speakers in 58 languages "
              "(commonvoice61 sample), self-reported gender/age labels; 10% of speakers held out")


@dataclass(frozen=True)
class VoiceTrainConfig:
    model: VoiceVAEConfig = field(default_factory=VoiceVAEConfig)
    epochs: int = 300
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    beta: float = 1.0  # final KL weight
    kl_warmup_epochs: int = 100  # beta rises linearly from 0 over these epochs
    key_weight: float = 3.0  # likelihood weight of the KEY_FEATURES (envelope bands weigh 1)
    split: str = "test"  # "test": evaluate on the held-out speakers; "dev": tune without them
    seed: int = 0
    threads: int = 1
    log_every: int = 25
    ckpt_every: int = 100


def is_holdout_speaker(speaker_id: str, salt: str = "", mod: int = 10) -> bool:
    """True for the fixed 1-in-``mod`` speakers never trained on (by sha1 of ``salt + speaker_id``)."""
    return int(hashlib.sha1((salt + speaker_id).encode()).hexdigest(), 16) % mod == 0


def _split(speakers: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    test = np.array([is_holdout_speaker(s) for s in speakers])
    if split == "test":
        return ~test, test
    if split == "dev":
        dev = np.array([is_holdout_speaker(s, salt="dev:") for s in speakers]) & ~test
        return ~test & ~dev, dev
    raise ValueError(f"split must be 'test' or 'dev', not {split!r}")


def _female_input(gender: np.ndarray) -> np.ndarray:
    """Gender codes (1 female, 0 male, -1 other/unknown) -> prior input in [0,1] (other: 0.5)."""
    return np.where(gender < 0, 0.5, gender).astype(np.float32)


def _trait_counts(gender: np.ndarray, age: np.ndarray, grid: tuple[float, ...]) -> np.ndarray:
    counts = np.full((2, len(grid)), 0.5)  # +0.5 smoothing
    cell = np.abs(age[:, None] - np.asarray(grid)[None]).argmin(1)
    for g, a in zip(gender, cell):
        if g in (0, 1):
            counts[g, a] += 1
    return counts / counts.sum()


def train_voice(data_dir: str | Path, out: str | Path, resume: bool = False, cfg: VoiceTrainConfig | None = None,
                cache_dir: str | Path | None = DEFAULT_CACHE, progress: bool = True,
                epochs: int | None = None) -> Path:
    """Train (or resume the newest ``voice`` run in ``out``); returns the run folder.

    ``epochs`` overrides the configured (or, on resume, the run's) number of epochs.

    Voice features are extracted once into ``cache_dir/voice_features.npz`` (None: the default).
    """
    ddp, rank, world = distributed.setup()
    progress = progress and rank == 0
    if resume:
        run = latest_run_dir(out, "voice")
        if run is None:
            raise FileNotFoundError(f"resume: no voice run in {out}")
        cfg = _config_from_dict(json.loads((run / "config.json").read_text()))
    else:
        cfg = cfg or VoiceTrainConfig()
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    if not resume:
        run = distributed.new_run(out, "voice" if cfg.split == "test" else f"voice-{cfg.split}",
                                  dataclasses.asdict(cfg))
    torch.set_num_threads(max(1, cfg.threads // world))

    cache = Path(cache_dir or DEFAULT_CACHE) / "voice_features.npz"
    if rank == 0:  # one process extracts the features; the others read its cache
        d = extract_dataset(data_dir, cache, progress=progress)
    if ddp:
        distributed.barrier()
        if rank != 0:
            d = extract_dataset(data_dir, cache, progress=False)
    if tuple(d["feature_names"]) != cfg.model.feature_names:
        raise ValueError("cached features do not match the model's feature names; delete the cache")
    tr, ev = _split(d["speaker_id"], cfg.split)
    x_all = torch.from_numpy(d["features"])
    c_female, c_age = _female_input(d["gender"]), d["age"]

    torch.manual_seed(cfg.seed)
    model = VoiceVAE(cfg.model)
    model.set_stats(x_all[tr].mean(0), x_all[tr].std(0),
                    torch.from_numpy(_trait_counts(d["gender"][tr], d["age"][tr], cfg.model.age_grid)))
    x_tr = model.standardize(x_all[tr])
    c_tr = model.make_cond(c_female[tr], c_age[tr])
    weight = torch.ones(cfg.model.feat_dim)
    for n in KEY_FEATURES:
        if n in cfg.model.feature_names:
            weight[cfg.model.feature_names.index(n)] = cfg.key_weight
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_global = len(x_tr)
    if ddp:  # each rank its own shard; every rank takes the same number of steps (DDP needs it)
        x_tr, c_tr = x_tr[rank::world], c_tr[rank::world]
        per_rank = max(1, cfg.batch // world)
        steps_per_epoch = -(-n_global // cfg.batch)
        loss_step = torch.nn.parallel.DistributedDataParallel(_LossStep(model))
    else:
        loss_step = _LossStep(model)
    epoch, secs = 0, 0.0
    ckpt = run / "checkpoint.pt"
    if resume and ckpt.is_file():
        st = load_training_checkpoint(ckpt)
        model.load_state_dict(st["model"]), opt.load_state_dict(st["opt"])
        epoch, secs = int(st["epoch"]), float(st["train_seconds"])
        if rank == 0:
            _truncate_log(run / "log.jsonl", epoch)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=epoch, desc="voice VAE", unit="epoch", mininterval=5)
    t_seg = time.time()
    log = open(run / "log.jsonl", "a") if rank == 0 else None
    try:
        while epoch < cfg.epochs:
            model.train()
            beta = cfg.beta * min(1.0, (epoch + 1) / max(1, cfg.kl_warmup_epochs))
            if ddp:
                perm = np.random.default_rng([cfg.seed, epoch, rank]).permutation(len(x_tr))
                perm = torch.from_numpy(np.resize(perm, steps_per_epoch * per_rank))  # wraps a short shard
                batches = [perm[i : i + per_rank] for i in range(0, len(perm), per_rank)]
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 7919 * rank)
            else:
                perm = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(len(x_tr)))
                batches = [perm[i : i + cfg.batch] for i in range(0, len(perm), cfg.batch)]
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            tot = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
            for idx in batches:
                out = loss_step(x_tr[idx], c_tr[idx], beta, weight, gen)
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()
                for k in tot:
                    tot[k] += out[k].item() * len(idx) / len(perm)
            epoch += 1
            if bar:
                bar.update(1)
            if rank == 0 and (epoch % cfg.log_every == 0 or epoch == cfg.epochs):
                rec = {"epoch": epoch, "beta": round(beta, 4), **{k: round(v, 4) for k, v in tot.items()},
                       "eval_mse": round(_recon_mse(model, model.standardize(x_all[ev])), 4),
                       "train_seconds": round(secs + time.time() - t_seg, 1)}
                log.write(json.dumps(rec) + "\n")
                log.flush()
            if rank == 0 and (epoch % cfg.ckpt_every == 0 or epoch == cfg.epochs):
                secs += time.time() - t_seg
                t_seg = time.time()
                save_training_checkpoint(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(),
                                                "epoch": epoch, "train_seconds": secs})
    finally:
        if log:
            log.close()
    secs += time.time() - t_seg
    if bar:
        bar.close()
    if ddp:
        distributed.teardown()
        if rank != 0:
            return run

    model.eval()
    report = evaluate(model, d, tr, ev)
    report.update({"split": cfg.split, "epochs": epoch, "train_seconds": round(secs, 1),
                   "n_train_clips": int(tr.sum()), "n_eval_clips": int(ev.sum()),
                   "n_train_speakers": len(set(d["speaker_id"][tr])), "n_eval_speakers": len(set(d["speaker_id"][ev]))})
    (run / "eval.json").write_text(json.dumps(report, indent=2))
    extra = {"trained_on": TRAINED_ON, "epochs": str(epoch), "train_seconds": f"{secs:.0f}",
             "eval": json.dumps({k: report[k] for k in ("recon_mse", "baseline_mse", "gender_acc", "age_spearman")})}
    save_weights(run / "voice_vae.safetensors", model.state_dict(), kind=KIND, config=cfg.model, extra=extra)
    return run


class _LossStep(torch.nn.Module):
    """``model.loss`` as a forward pass, so that DistributedDataParallel can wrap it."""

    def __init__(self, model: VoiceVAE):
        super().__init__()
        self.model = model

    def forward(self, x, c, beta, weight, generator):
        return self.model.loss(x, c, beta, weight, generator)


def _truncate_log(path: Path, epoch: int) -> None:
    """Drop log lines written after the checkpoint a resumed run restarts from."""
    if path.is_file():
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= epoch]
        path.write_text("".join(ln + "\n" for ln in keep))


@torch.no_grad()
def _recon_mse(model: VoiceVAE, x: torch.Tensor) -> float:
    was = model.training
    model.eval()
    mse = ((model.decode(model.encode(x)[0]) - x) ** 2).mean().item()
    model.train(was)
    return mse


@torch.no_grad()
def evaluate(model: VoiceVAE, d: dict[str, np.ndarray], tr: np.ndarray, ev: np.ndarray,
             n_prior: int = 200, seed: int = 0) -> dict:
    """Held-out figures: reconstruction vs predicting the mean, variance explained per key feature,
    gender/age from ``infer_traits``, and prior samples (F0 per gender, diversity, novelty)."""
    from scipy.stats import spearmanr

    names = list(model.cfg.feature_names)
    x_tr_raw, x_ev_raw = d["features"][tr], d["features"][ev]
    xs_ev = model.standardize(torch.from_numpy(x_ev_raw))
    mu, logvar = model.encode(xs_ev)
    xhat_raw = model.unstandardize(model.decode(mu)).numpy()
    r = {"recon_mse": float(((model.standardize(torch.from_numpy(xhat_raw)) - xs_ev) ** 2).mean()),
         "baseline_mse": float((xs_ev**2).mean())}  # predicting the training mean (0 after standardising)
    r2 = lambda j: float(1 - ((xhat_raw[:, j] - x_ev_raw[:, j]) ** 2).mean() / x_ev_raw[:, j].var())  # noqa: E731
    r["r2"] = {n: round(r2(names.index(n)), 3) for n in KEY_FEATURES}
    env_idx = range(ENV_SLICE.start, ENV_SLICE.stop)
    r["r2"]["env_mean_over_bands"] = round(float(np.mean([r2(j) for j in env_idx])), 3)
    r["r2"]["env_min_over_bands"] = round(float(np.min([r2(j) for j in env_idx])), 3)
    mu_p, logvar_p = model.prior(model.make_cond(_female_input(d["gender"][ev]), d["age"][ev]))
    from .vae import gaussian_kl

    kl_dim = gaussian_kl(mu[..., None], logvar[..., None], mu_p[..., None], logvar_p[..., None]).mean(0)
    r["active_latent_dims"] = int((kl_dim > 0.05).sum())
    r["eval_kl_per_dim"] = [round(float(k), 3) for k in kl_dim]

    g, age = d["gender"][ev], d["age"][ev]
    known = g >= 0
    for tag, uni in (("", False), ("_uniform_prior", True)):
        pf, ea = model.infer_traits(x_ev_raw, uniform_prior=uni)
        pred = (pf > 0.5).astype(int)
        r[f"gender_acc{tag}"] = round(float((pred[known] == g[known]).mean()), 4)
        r[f"gender_balanced_acc{tag}"] = round(float(np.mean([(pred[known & (g == k)] == k).mean() for k in (0, 1)])), 4)
        r[f"age_spearman{tag}"] = round(float(spearmanr(ea, age).statistic), 4)
        r[f"age_spearman_by_gender{tag}"] = {k: round(float(spearmanr(ea[g == i], age[g == i]).statistic), 3)
                                             for i, k in ((0, "male"), (1, "female"))}
        r[f"age_mae_years{tag}"] = round(float(np.abs(ea - age).mean()), 2)
    # context: the best single F0 threshold (chosen on the training clips)
    jf = names.index("log_f0_median")
    gt = d["gender"][tr]
    ths = np.quantile(x_tr_raw[:, jf], np.linspace(0.05, 0.95, 181))
    best = max(ths, key=lambda t: ((x_tr_raw[gt >= 0, jf] > t) == gt[gt >= 0]).mean())
    r["gender_acc_f0_threshold_baseline"] = round(float(((x_ev_raw[known, jf] > best) == g[known]).mean()), 4)
    r["age_spearman_f0_baseline"] = {k: round(float(spearmanr(x_ev_raw[g == i, jf], age[g == i]).statistic), 3)
                                     for i, k in ((0, "male"), (1, "female"))}

    # prior samples: F0 per gender, diversity vs real speakers, novelty vs held-out speakers
    rng = np.random.default_rng(seed)
    r["prior"] = {}
    s_all = []
    key_idx = [names.index(n) for n in KEY_FEATURES]
    for gi, gname in ((1, "female"), (0, "male")):
        ages = rng.choice(d["age"][tr][gt == gi], n_prior)
        eps = rng.standard_normal((n_prior, model.cfg.latent_dim)).astype(np.float32)
        s = model.sample_voice(float(gi), ages, eps)
        s_all.append(s)
        real = x_tr_raw[gt == gi]
        ratio = s.std(0) / real.std(0)
        r["prior"][gname] = {
            "median_f0_hz_samples": round(float(np.exp(np.median(s[:, jf]))), 1),
            "median_f0_hz_real_train": round(float(np.exp(np.median(real[:, jf]))), 1),
            "std_ratio_samples_vs_real": {n: round(float(ratio[j]), 3) for n, j in zip(KEY_FEATURES, key_idx)},
            "std_ratio_env_mean": round(float(ratio[ENV_SLICE].mean()), 3),
            "median_f0_hz_age20_vs_70": [round(float(np.exp(np.median(model.sample_voice(float(gi), a, eps)[:, jf]))), 1)
                                         for a in (20.0, 70.0)],
        }
    s_all = np.concatenate(s_all)
    z = lambda a: model.standardize(torch.from_numpy(np.asarray(a, np.float32)))  # noqa: E731
    r["nn_dist_to_train_median"] = {
        "prior_samples": round(float(torch.cdist(z(s_all), z(x_tr_raw)).min(1).values.median()), 3),
        "heldout_real": round(float(torch.cdist(z(x_ev_raw), z(x_tr_raw)).min(1).values.median()), 3),
        "heldout_reconstructed": round(float(torch.cdist(z(xhat_raw), z(x_tr_raw)).min(1).values.median()), 3),
    }
    return r


def _config_from_dict(d: dict) -> VoiceTrainConfig:
    d = dict(d)
    d["model"] = VoiceVAEConfig.from_dict(d["model"])
    return VoiceTrainConfig(**d)
