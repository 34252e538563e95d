"""Conditional face GAN: generator, projection discriminator, and their config.

Conditioning vector ``c`` (``COND_DIM`` = 8): ``[male, female, age_n, white, black, asian, indian, other]``
where ``age_n = log1p(age) / log1p(100) * 2 - 1`` (so 0 years -> -1, 100 years -> 1).
Gender may be a soft presentation value in [0, 1] (female weight); the same vector feeds the
generator (through a learned embedding) and the discriminator (projection term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

COND_DIM = 8
RACES = ("white", "black", "asian", "indian", "other")


@dataclass(frozen=True)
class FaceGANConfig:
    resolution: int = 64
    z_dim: int = 128
    cond_embed: int = 64
    g_channels: int = 32  # channels at the highest resolution; doubles per level down to 4x4 (capped)
    d_channels: int = 32
    max_channels: int = 512
    extra_levels: int = 1  # levels (from 8x8 up) that get a second 3x3 conv
    d_spectral_norm: bool = False  # spectral norm in D (training only; the shipped G does not use it)
    skip_rgb: bool = False  # G adds the upsampled RGB of the level below (grown from a lower-resolution G)
    top_nearest: bool = False  # the top level upsamples by nearest neighbour + 3x3 conv (no transposed-conv checkerboard)
    refine_channels: int = 0  # > 0: a learned 2x top level (``refine.Refiner``) above the image; output at 2x resolution
    refine_blocks: int = 4
    refine_noise: int = 0  # fixed noise maps of the refiner
    refine_sharpen: float = 0.0  # unsharp mask of the refiner's 2x band (``RefinerConfig.sharpen``)

    @property
    def out_resolution(self) -> int:
        """Side of the images G returns: ``resolution``, or twice it with a refiner."""
        return self.resolution * (2 if self.refine_channels else 1)

    def levels(self) -> int:
        return int(math.log2(self.resolution)) - 2  # number of 2x upsamplings from 4x4

    def g_ch(self, level: int) -> int:
        """Channels at ``level`` (0 = 4x4 ... levels() = full resolution)."""
        return min(self.g_channels * 2 ** (self.levels() - level), self.max_channels)

    def d_ch(self, level: int) -> int:
        return min(self.d_channels * 2 ** (self.levels() - level), self.max_channels)


def age_to_unit(age: torch.Tensor | float) -> torch.Tensor:
    age = torch.as_tensor(age, dtype=torch.float32).clamp(0, 116)
    return torch.log1p(age) / math.log1p(100.0) * 2 - 1


def present_gender(female: torch.Tensor | np.ndarray | float, strength: float):
    """The ``female`` value the generator is conditioned on for a persona's ``female`` in [0, 1].

    ``strength`` 1 conditions on the value as trained; above 1 it extrapolates away from the
    undecided 0.5 (``0.5 + strength * (female - 0.5)``), like a guidance scale: the generator's
    gender cues get stronger. The value chosen for shipped weights is in their metadata
    (``gender_strength``; the card says how it was measured).
    """
    return 0.5 + strength * (female - 0.5)


AGE_CENTER = 34.0  # median age of the adults in the face data


AgeMap = tuple[tuple[float, ...], tuple[float, ...]]


def map_age(age, age_map: AgeMap | None) -> np.ndarray:
    """Requested age (years) -> the age the generator is conditioned on, float32.

    ``age_map = (requested, condition)``: knots of a calibration measured on the generator (the
    age an outside judge reads from faces made at each conditioning age, inverted), linear between
    knots and held at the ends. ``None`` conditions on the requested age itself.
    """
    age = np.asarray(age, np.float32)
    if age_map is None:
        return age
    return np.interp(age.astype(np.float64), age_map[0], age_map[1]).astype(np.float32)


def parse_age_map(text: str | None) -> AgeMap | None:
    """The ``age_map`` of face weights' metadata (JSON ``{"requested": [...], "condition": [...]}``), checked."""
    if not text:
        return None
    import json

    d = json.loads(text)
    req, cond = _knots("age_map", d["requested"], d["condition"], "condition")
    if not all(0.0 <= x <= 116.0 for x in cond):
        raise ValueError("age_map: ages must lie within 0-116")
    return req, cond


def _knots(name: str, requested, values, what: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(requested ages, values)`` as float tuples: at least two increasing ages within 0-116, one value each."""
    req, vals = tuple(float(x) for x in requested), tuple(float(x) for x in values)
    if len(req) != len(vals) or len(req) < 2 or any(b <= a for a, b in zip(req, req[1:])):
        raise ValueError(f"{name}: requested ages must be at least two, increasing, one {what} each")
    if not all(0.0 <= x <= 116.0 for x in req):
        raise ValueError(f"{name}: ages must lie within 0-116")
    return req, vals


AgeShift = tuple[tuple[float, ...], tuple[float, ...], np.ndarray]  # (requested ages, shifts, unit direction)


def parse_age_shift(text: str | None, z_dim: int) -> AgeShift | None:
    """The ``age_shift`` of face weights' metadata (JSON ``{"requested": [...], "shift": [...],
    "direction": [z_dim floats]}``), checked; the direction is returned as a unit float32 vector."""
    if not text:
        return None
    import json

    d = json.loads(text)
    req, shift = _knots("age_shift", d["requested"], d["shift"], "shift")
    direction = np.asarray(d["direction"], np.float64)
    if not all(abs(x) <= 6.0 for x in shift):
        raise ValueError("age_shift: shifts must lie within +-6")
    norm = float(np.linalg.norm(direction)) if direction.shape == (z_dim,) else 0.0
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"age_shift: direction must be {z_dim} finite numbers, not all zero")
    return req, shift, (direction / norm).astype(np.float32)


def shift_code(z: np.ndarray, age, age_shift: AgeShift | None) -> np.ndarray:
    """Face codes ``z`` (B, z_dim) float32 moved along the age direction of the latent space by the
    shift calibrated for each requested age (linear between knots, held at the ends): the part of
    looking one's age that the generator keeps in its latent code rather than its age condition
    (InterFaceGAN-style, Shen et al. 2020). ``None`` leaves ``z`` as it is."""
    if age_shift is None:
        return z
    req, shift, direction = age_shift
    k = np.interp(np.broadcast_to(np.asarray(age, np.float64), (len(z),)), req, shift).astype(np.float32)
    return (z + k[:, None] * direction[None, :]).astype(np.float32)


def present_cond(female, age, race, gender_strength: float = 1.0, age_strength: float = 1.0,
                 age_map: AgeMap | None = None) -> torch.Tensor:
    """``make_cond`` for a persona as the shipped generator presents it: gender through
    ``present_gender``; the requested age through the calibration ``age_map`` (``map_age``), then
    the age code moved ``age_strength`` times as far from ``AGE_CENTER``'s, kept within the code of
    ages 0-100 (the data's range)."""
    female = torch.as_tensor(np.asarray(female, np.float32))
    c = make_cond(present_gender(female, gender_strength), torch.as_tensor(map_age(age, age_map)),
                  torch.as_tensor(race))
    if age_strength != 1.0:
        centre = float(age_to_unit(AGE_CENTER))
        c[:, 2] = (centre + age_strength * (c[:, 2] - centre)).clamp(-1.0, 1.0)
    return c


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """Generator images (B, 3, R, R) in [-1, 1] -> uint8 RGB (B, R, R, 3): ``round((clamp(x) + 1) * 127.5)``."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_cond(female: torch.Tensor, age: torch.Tensor, race: torch.Tensor) -> torch.Tensor:
    """``female`` (B,) in [0,1], ``age`` (B,) years, ``race`` (B,) int in 0..4 or (B,5) weights -> (B, 8)."""
    female = torch.as_tensor(female, dtype=torch.float32)
    race = torch.as_tensor(race)
    if race.dim() == 1:
        race = F.one_hot(race.long(), len(RACES)).float()
    return torch.cat([(1 - female)[:, None], female[:, None], age_to_unit(age)[:, None], race.float()], dim=1)


class GBlock(nn.Module):
    """2x upsampling (transposed conv 4x4, or ``nearest``: nearest neighbour + 3x3 conv) + BN + ReLU,
    optionally one more 3x3 conv (``extra``)."""

    def __init__(self, cin: int, cout: int, extra: bool, nearest: bool = False):
        super().__init__()
        self.up = (nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1, bias=False))
                   if nearest else nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False))
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False) if extra else None
        self.bn2 = nn.BatchNorm2d(cout) if extra else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.up(x)))
        if self.conv2 is not None:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class Generator(nn.Module):
    """``(z (B, z_dim), c (B, 8)) -> image (B, 3, R, R)`` in [-1, 1] (``R = cfg.out_resolution``)."""

    def __init__(self, cfg: FaceGANConfig):
        super().__init__()
        self.cfg = cfg
        c0 = cfg.g_ch(0)
        self.embed = nn.Linear(COND_DIM, cfg.cond_embed)
        self.fc = nn.Linear(cfg.z_dim + cfg.cond_embed, c0 * 16, bias=False)
        self.bn0 = nn.BatchNorm1d(c0 * 16)
        self.blocks = nn.ModuleList(
            GBlock(cfg.g_ch(i), cfg.g_ch(i + 1), extra=i + 1 <= cfg.extra_levels,
                   nearest=cfg.top_nearest and i == cfg.levels() - 1) for i in range(cfg.levels())
        )
        self.to_rgb = nn.Conv2d(cfg.g_ch(cfg.levels()), 3, 3, padding=1)
        # skip_rgb: the level below keeps its own RGB head, upsampled and added (a G grown from a
        # lower-resolution one starts as that G's image, the new level adding detail)
        self.to_rgb_lo = nn.Conv2d(cfg.g_ch(cfg.levels() - 1), 3, 3, padding=1) if cfg.skip_rgb else None
        self.refiner = None
        if cfg.refine_channels:
            from .refine import Refiner, RefinerConfig

            # float64 in PyTorch, the reference the ONNX graph (float32, what personas are made with:
            # face.model.OnnxFace) is checked against; PyTorch's float32 convolutions round differently
            # with the thread count and batch, its float64 ones do not
            self.refiner = Refiner(RefinerConfig(cfg.refine_channels, cfg.refine_blocks, cfg.refine_noise,
                                                  cfg.refine_sharpen)).double()

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.cfg.z_dim, z.shape
        assert c.shape == (z.shape[0], COND_DIM), c.shape
        h = torch.cat([z, self.embed(c)], dim=1)
        h = F.relu(self.bn0(self.fc(h))).view(z.shape[0], -1, 4, 4)
        for b in self.blocks[:-1]:
            h = b(h)
        out = self.to_rgb(self.blocks[-1](h))
        if self.to_rgb_lo is not None:
            out = out + F.interpolate(self.to_rgb_lo(h), scale_factor=2.0, mode="bilinear", align_corners=False)
        if self.refiner is not None:
            img = torch.tanh(out).to(self.refiner.head.weight.dtype)  # float64 (float32 in the ONNX graph)
            return self.refiner(img).float().clamp(-1.0, 1.0)
        return torch.tanh(out)


def grow_from(lower: "Generator", cfg: FaceGANConfig) -> "Generator":
    """A ``skip_rgb`` generator at twice ``lower``'s resolution that starts as ``lower`` upsampled.

    Every layer of ``lower`` keeps its weights (``cfg`` must give the same channels at those
    levels: half of ``lower``'s ``g_channels``); its RGB head becomes ``to_rgb_lo`` and the new
    top level's RGB head starts at zero, so training begins from the lower generator's faces.
    """
    assert cfg.skip_rgb and cfg.resolution == 2 * lower.cfg.resolution, (cfg, lower.cfg)
    g = Generator(cfg)
    own = g.state_dict()
    for k, v in lower.state_dict().items():
        k_new = k.replace("to_rgb.", "to_rgb_lo.")
        assert own[k_new].shape == v.shape, (k, v.shape, own[k_new].shape)
        own[k_new] = v.clone()
    own["to_rgb.weight"].zero_()
    own["to_rgb.bias"].zero_()
    g.load_state_dict(own)
    return g


def _sn(m: nn.Module, on: bool = True) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(m) if on else m


class DBlock(nn.Module):
    """Strided 4x4 conv (2x down), optionally preceded by a 3x3 conv (``extra``)."""

    def __init__(self, cin: int, cout: int, extra: bool, sn: bool):
        super().__init__()
        self.conv1 = _sn(nn.Conv2d(cin, cin, 3, padding=1), sn) if extra else None
        self.down = _sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1 is not None:
            x = F.leaky_relu(self.conv1(x), 0.2)
        return F.leaky_relu(self.down(x), 0.2)


class Discriminator(nn.Module):
    """Projection discriminator: ``(image (B,3,R,R), c (B,8)) -> logit (B,)``."""

    def __init__(self, cfg: FaceGANConfig):
        super().__init__()
        self.cfg = cfg
        L, sn = cfg.levels(), cfg.d_spectral_norm
        self.from_rgb = _sn(nn.Conv2d(3, cfg.d_ch(L), 3, padding=1), sn)
        self.blocks = nn.ModuleList(DBlock(cfg.d_ch(i), cfg.d_ch(i - 1), extra=i <= cfg.extra_levels, sn=sn)
                                    for i in range(L, 0, -1))
        c0 = cfg.d_ch(0)
        self.final = _sn(nn.Conv2d(c0, c0, 4), sn)  # 4x4 -> 1x1
        self.out = _sn(nn.Linear(c0, 1), sn)
        self.proj = _sn(nn.Linear(COND_DIM, c0, bias=False), sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.from_rgb(x), 0.2)
        for b in self.blocks:
            h = b(h)
        h = F.leaky_relu(self.final(h), 0.2).flatten(1)
        return self.out(h).squeeze(1) + (self.proj(c) * h).sum(1)


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation toward the mean of the N(0, I) prior: ``psi=1`` is untruncated."""
    return z * psi
