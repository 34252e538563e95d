"""The face generator's learned 2x top level: 64 px face -> 128 px face (a refiner).

The shipped face generator makes the persona's face at 64 px: its identity, age, gender and the
calibrated age shift all live there. The refiner is the 128 px level above it, trained separately
(``train_refiner``) on the 128 px faces of the training split with the 64 px generator frozen:

- it adds detail (a residual on the bilinear 2x upsampling, from a small residual network that
  works at 64 px and rearranges to 128 px by pixel shuffle, ESPCN-style: Shi et al. 2016);
- its adversary judges the high-frequency layer of faces (``high_pass``), real 128 px faces against
  refined ones, with the rest of the image only as context, so it cannot pull the refiner away
  from the 64 px face's content; a loss on the local energy of that layer (against the real 128 px
  face of a downscaled training face) says how much detail belongs where;
- a consistency loss keeps the refined face, brought back down, equal to the 64 px face, so every
  calibration made on the 64 px generator (age map, age shift, strengths) holds at 128 px;
- ``sharpen`` (set when the refiner is shipped, not in training) amplifies the detail it made: an
  unsharp mask of the 2x band. It makes edges crisper; it does not add texture the network lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class RefinerConfig:
    channels: int = 24
    blocks: int = 4  # residual blocks at the input resolution
    noise: int = 0  # fixed noise maps fed beside the image (grain the network shapes per face)
    sharpen: float = 0.0  # the output's detail layer (``high_pass``) is amplified by 1 + sharpen (unsharp mask)


class _Res(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.relu(self.a(x)))


class Refiner(nn.Module):
    """``image (B, 3, R, R)`` in [-1, 1] -> ``image (B, 3, 2R, 2R)`` (unclamped; the caller clamps)."""

    def __init__(self, cfg: RefinerConfig = RefinerConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        # fixed noise (a seeded draw, saved with the weights): the raw material for photo grain and
        # fine texture, which a deterministic network cannot invent from a smooth 64 px face
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("noise", torch.randn(1, cfg.noise, 64, 64, generator=g) if cfg.noise else None)
        self.head = nn.Conv2d(3 + cfg.noise, c, 3, padding=1)
        self.body = nn.Sequential(*[_Res(c) for _ in range(cfg.blocks)])
        self.up = nn.Conv2d(c, 3 * 4, 3, padding=1)
        nn.init.zeros_(self.up.weight)  # starts as the bilinear upsampling
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = x
        if self.noise is not None:
            assert x.shape[-2:] == self.noise.shape[-2:], (x.shape, self.noise.shape)
            inp = torch.cat([x, self.noise.expand(x.shape[0], -1, -1, -1)], dim=1)
        h = self.body(F.relu(self.head(inp)))
        y = upsample(x) + F.pixel_shuffle(self.up(h), 2)
        if self.cfg.sharpen:
            y = y + self.cfg.sharpen * high_pass(y)
        return y


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def high_pass(x: torch.Tensor) -> torch.Tensor:
    """What a 2x box downsampling loses: ``x`` minus its own 2x-down-and-up."""
    return x - upsample(F.avg_pool2d(x, 2))
