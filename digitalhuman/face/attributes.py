"""Face attribute encoder: a face crop -> gender presentation, age, appearance group.

Used by fusion to go from a face to a matching voice (``create --from-face``). A small CNN trained
on the labelled faces' training split; the hold-out split measures it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import load_weights, save_weights
from .gan import RACES

KIND = "face_attributes"


@dataclass(frozen=True)
class AttributeConfig:
    resolution: int = 64
    channels: int = 32


class FaceAttributes(nn.Module):
    """``(B, 3, R, R)`` in [-1, 1] -> ``(female logit (B,), log1p(age) (B,), group logits (B, 5))``."""

    def __init__(self, cfg: AttributeConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        layers, cin = [], 3
        for i, cout in enumerate([c, 2 * c, 4 * c, 8 * c]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.Conv2d(cout, cout, 3, padding=1, stride=2), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 2 + len(RACES))

    def forward(self, x: torch.Tensor):
        assert x.dim() == 4 and x.shape[1] == 3, x.shape
        h = self.features(x).mean((2, 3))
        out = self.head(h)
        return out[:, 0], out[:, 1], out[:, 2:]

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 ``(B, H, W, 3)`` (any size; resized) -> ``{female (B,) prob, age (B,) years, race (B,) index}``."""
        x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2).float() / 127.5 - 1
        R = self.cfg.resolution
        if x.shape[-1] != R or x.shape[-2] != R:
            x = F.interpolate(x, size=(R, R), mode="bilinear", antialias=True, align_corners=False)
        g, a, r = self.eval()(x)
        return {"female": torch.sigmoid(g).numpy(), "age": torch.expm1(a).clamp(0, 116).numpy(),
                "race": r.argmax(1).numpy()}


def load_attributes(path: str | Path, expected_sha256: str | None = None) -> FaceAttributes:
    tensors, config, _ = load_weights(path, kind=KIND, expected_sha256=expected_sha256)
    m = FaceAttributes(AttributeConfig(**config))
    m.load_state_dict(tensors)
    return m.eval()


def train_attributes(data_dir: str | Path, out_file: str | Path, epochs: int = 4, batch: int = 64,
                     cache_dir: str | Path | None = None, seed: int = 0, progress: bool = True,
                     cfg: AttributeConfig | None = None) -> dict:
    """Train on the training split, measure on the hold-out split, save to ``out_file``."""
    from .data import load_split

    cfg = cfg or AttributeConfig()
    imgs, female, age, race, _ = load_split(data_dir, cfg.resolution, "train", cache_dir)
    h_imgs, h_female, h_age, h_race, _ = load_split(data_dir, cfg.resolution, "holdout", cache_dir)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FaceAttributes(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(imgs) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    x_all = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    t0 = time.time()
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="face attributes", disable=not progress, mininterval=5)
    model.train()
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(imgs), batch))
        x = x_all[idx].float() / 127.5 - 1
        if rng.random() < 0.5:
            x = x.flip(3)
        g, a, r = model(x)
        loss = (F.binary_cross_entropy_with_logits(g, torch.from_numpy(female[idx.numpy()]))
                + F.smooth_l1_loss(a, torch.log1p(torch.from_numpy(age[idx.numpy()])))
                + 0.5 * F.cross_entropy(r, torch.from_numpy(race[idx.numpy()])))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update(1)
    bar.close()
    model.eval()
    pred = {k: [] for k in ("female", "age", "race")}
    for i in range(0, len(h_imgs), 256):
        p = model.predict(h_imgs[i : i + 256])
        for k in pred:
            pred[k].append(p[k])
    pred = {k: np.concatenate(v) for k, v in pred.items()}
    from scipy.stats import spearmanr

    adult = h_age >= 18
    metrics = {
        "holdout_n": int(len(h_imgs)),
        "gender_accuracy": float(((pred["female"] > 0.5) == (h_female > 0.5)).mean()),
        "gender_accuracy_adults": float(((pred["female"] > 0.5) == (h_female > 0.5))[adult].mean()),
        "age_mae_years": float(np.abs(pred["age"] - h_age).mean()),
        "age_spearman": float(spearmanr(pred["age"], h_age).statistic),
        "group_accuracy": float((pred["race"] == h_race).mean()),
        "train_seconds": round(time.time() - t0, 1),
        "steps": steps,
        "batch": batch,
    }
    save_weights(out_file, model.state_dict(), kind=KIND, config=asdict(cfg), half=True,
                 extra={k: str(v) for k, v in metrics.items()})
    return metrics
