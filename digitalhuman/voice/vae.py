"""Speech VAE over speaker timbre: a latent ``z`` that decodes to a voice description.

The features (``digitalhuman.voice.features.FEATURE_NAMES``: F0 level and range, breathiness,
spectral tilt, long-term spectral envelope) are standardised with mean/std buffers stored in the
module, so a shipped file is self-contained. Shapes: ``B`` batch, ``F`` features, ``Z`` latent,
``C = 2 * len(age_grid)`` trait cells.

- posterior ``q(z|x) = N(mu, exp(logvar))`` from the encoder,
- likelihood ``p(x|z) = N(decode(z), sigma^2)`` with a learned per-feature ``sigma``,
- learned prior ``p(z|c) = N(mu_p(c), exp(logvar_p(c)))``, ``c = (female in [0,1], age in years)``.

New voices are samples from the prior (``sample_voice``); the reverse direction (voice ->
traits) is Bayes over a grid of traits (``infer_traits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import CheckpointError, load_weights, meta_float
from .features import FEATURE_NAMES

KIND = "voice_vae"


@dataclass(frozen=True)
class VoiceVAEConfig:
    feat_dim: int = len(FEATURE_NAMES)
    latent_dim: int = 16
    hidden: int = 128
    prior_hidden: int = 64
    feature_names: tuple[str, ...] = FEATURE_NAMES
    age_center: float = 45.0  # age_n = (age - age_center) / age_scale
    age_scale: float = 20.0
    age_grid: tuple[float, ...] = (16.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0, 85.0)  # for infer_traits
    min_log_sigma: float = -3.0  # floor of the decoder's noise (standardised units)

    def __post_init__(self) -> None:
        if len(self.feature_names) != self.feat_dim:
            raise ValueError(f"feat_dim {self.feat_dim} != {len(self.feature_names)} feature names")

    @staticmethod
    def from_dict(d: dict) -> "VoiceVAEConfig":
        d = dict(d)
        d["feature_names"] = tuple(d["feature_names"])
        d["age_grid"] = tuple(float(a) for a in d["age_grid"])
        return VoiceVAEConfig(**d)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, n_out))


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p))`` summed over the last axis: ``(..., Z) -> (...)``."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1).sum(-1)


def _as_batch(v, n: int | None = None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(-1)
    return t.expand(n) if n is not None and t.numel() == 1 else t


class VoiceVAE(nn.Module):
    def __init__(self, cfg: VoiceVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        Fd, Z = cfg.feat_dim, cfg.latent_dim
        self.encoder = _mlp(Fd, cfg.hidden, 2 * Z)
        self.decoder = _mlp(Z, cfg.hidden, Fd)
        self.prior_net = _mlp(2, cfg.prior_hidden, 2 * Z)
        self.log_sigma = nn.Parameter(torch.full((Fd,), -0.5))
        self.register_buffer("feat_mean", torch.zeros(Fd))
        self.register_buffer("feat_std", torch.ones(Fd))
        A = len(cfg.age_grid)
        self.register_buffer("trait_prior", torch.full((2, A), 1.0 / (2 * A)))  # p(male/female, age cell)
        # Not a weight: how strongly a persona's age is presented (``presented_prior``); shipped
        # weights carry their value in the metadata (``load_voice_vae``).
        self.age_strength = 1.0
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor, trait_prior: torch.Tensor | None = None) -> None:
        """Store feature mean/std ``(F,)`` (and optionally the trait frequencies ``(2, A)``)."""
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))
        if trait_prior is not None:
            tp = torch.as_tensor(trait_prior, dtype=torch.float32)
            self.trait_prior.copy_(tp / tp.sum())

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.feat_mean) / self.feat_std

    def unstandardize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.feat_std + self.feat_mean

    # ------------------------------------------------------------------ the three networks
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised features ``(B,F)`` -> posterior ``(mu, logvar)``, each ``(B,Z)``."""
        assert x.ndim == 2 and x.shape[1] == self.cfg.feat_dim, f"expected (B,{self.cfg.feat_dim}), got {tuple(x.shape)}"
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12, 6)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B,Z)`` -> standardised features ``(B,F)`` (the mean of ``p(x|z)``)."""
        assert z.ndim == 2 and z.shape[1] == self.cfg.latent_dim, f"expected (B,{self.cfg.latent_dim}), got {tuple(z.shape)}"
        return self.decoder(z)

    def make_cond(self, female, age) -> torch.Tensor:
        """Traits -> prior input ``(B,2)``: ``[female in [0,1], normalised age]`` (scalars broadcast)."""
        n = max(_as_batch(female).numel(), _as_batch(age).numel())
        f, a = _as_batch(female, n), _as_batch(age, n)
        assert f.shape == a.shape, f"female {tuple(f.shape)} and age {tuple(a.shape)} do not match"
        return torch.stack([f, (a - self.cfg.age_center) / self.cfg.age_scale], dim=-1).to(self.feat_mean.device)

    def prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional prior: ``c (B,2)`` from ``make_cond`` -> ``(mu_p, logvar_p)``, each ``(B,Z)``."""
        assert c.ndim == 2 and c.shape[1] == 2, f"expected (B,2), got {tuple(c.shape)}"
        mu, logvar = self.prior_net(c).chunk(2, dim=-1)
        return mu, logvar.clamp(-8, 4)

    def presented_prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior as personas use it: with ``age_strength`` k the prior is asked for the age
        ``age_center + k * (age - age_center)``, brought smoothly inside the ages of the training
        speakers (``cfg.age_grid``) by a tanh, so the age trends learned from the data are heard
        more clearly (k = 1 is ``prior``) and every age still asks for its own voice (a hard clamp
        gave every age under 30.5 one voice at k = 2). Works on ``make_cond`` rows, so an
        exported graph can do the same."""
        if self.age_strength != 1.0:
            lo = (min(self.cfg.age_grid) - self.cfg.age_center) / self.cfg.age_scale
            hi = (max(self.cfg.age_grid) - self.cfg.age_center) / self.cfg.age_scale
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            c = torch.stack([c[:, 0], mid + half * torch.tanh((self.age_strength * c[:, 1] - mid) / half)], dim=1)
        return self.prior(c)

    def sigma(self) -> torch.Tensor:
        """Decoder noise std ``(F,)`` in standardised units."""
        return self.log_sigma.clamp_min(self.cfg.min_log_sigma).exp()

    def log_likelihood(self, x: torch.Tensor, x_hat: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``log N(x; x_hat, sigma^2)`` summed over features (optionally weighted): ``(...,F) -> (...)``."""
        ls = self.log_sigma.clamp_min(self.cfg.min_log_sigma)
        ll = -0.5 * ((x - x_hat) / ls.exp()) ** 2 - ls - 0.5 * math.log(2 * math.pi)
        return (ll * weight if weight is not None else ll).sum(-1)

    # ------------------------------------------------------------------ training objective
    def loss(self, x: torch.Tensor, c: torch.Tensor, beta: float = 1.0, weight: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Negative ELBO with ``beta``-weighted KL to the conditional prior, averaged over the batch.

        ``x (B,F)`` standardised, ``c (B,2)`` from ``make_cond``; ``weight (F,)`` optional.
        """
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + (0.5 * logvar).exp() * eps
        recon = -self.log_likelihood(x, self.decode(z), weight).mean()
        kl = gaussian_kl(mu, logvar, *self.prior(c)).mean()
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}

    # ------------------------------------------------------------------ inference API
    @torch.no_grad()
    def sample_voice(self, female, age, eps) -> np.ndarray:
        """A new voice: ``decode(mu_p + exp(logvar_p / 2) * eps)`` in original feature units, with
        the prior of ``presented_prior``.

        ``female`` in [0,1] and ``age`` in years are scalars or ``(B,)``; ``eps`` is ``(B,Z)``
        standard normal noise owned by the caller (no global RNG is used). Returns ``(B,F)``
        float32 with columns ``cfg.feature_names`` (``features_as_dict`` names them).
        """
        eps = torch.as_tensor(np.asarray(eps, dtype=np.float32))
        if eps.ndim == 1:
            eps = eps[None]
        assert eps.ndim == 2 and eps.shape[1] == self.cfg.latent_dim, f"eps must be (B,{self.cfg.latent_dim})"
        c = self.make_cond(_as_batch(female, eps.shape[0]), _as_batch(age, eps.shape[0]))
        assert c.shape[0] == eps.shape[0], "female/age must be scalars or have B entries"
        mu_p, logvar_p = self.presented_prior(c)
        return self.unstandardize(self.decode(mu_p + (0.5 * logvar_p).exp() * eps)).numpy()

    def features_as_dict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """``(B,F)`` -> ``{feature name: (B,)}``."""
        return {n: features[:, i] for i, n in enumerate(self.cfg.feature_names)}

    @torch.no_grad()
    def trait_posterior(self, x, n_samples: int = 256, uniform_prior: bool = False, seed: int = 0) -> np.ndarray:
        """``p(female, age cell | x)`` for raw features ``x (B,F)`` -> ``(B, 2, A)`` (axis 1: male, female).

        ``p(x|c)`` is estimated by importance sampling with ``q(z|x)`` as proposal
        (``n_samples`` draws from a private generator seeded with ``seed``, so results are
        deterministic). The trait prior is the training frequency, or uniform.
        """
        x = self.standardize(torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, self.cfg.feat_dim))
        B, Z, K = x.shape[0], self.cfg.latent_dim, n_samples
        grid_f = torch.tensor([0.0, 1.0]).repeat_interleave(len(self.cfg.age_grid))
        grid_a = torch.tensor(self.cfg.age_grid).repeat(2)
        mu_p, logvar_p = self.prior(self.make_cond(grid_f, grid_a))  # (C,Z)
        mu, logvar = self.encode(x)
        eps = torch.randn(B, K, Z, generator=torch.Generator().manual_seed(seed))
        z = mu[:, None] + (0.5 * logvar[:, None]).exp() * eps  # (B,K,Z)
        log_q = (-0.5 * eps**2 - 0.5 * logvar[:, None] - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_px = self.log_likelihood(x[:, None], self.decode(z.reshape(B * K, Z)).reshape(B, K, -1))
        zc = z[:, :, None]  # (B,K,1,Z) against (C,Z)
        log_pz = (-0.5 * (zc - mu_p) ** 2 / logvar_p.exp() - 0.5 * logvar_p - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_pxc = torch.logsumexp((log_px - log_q)[:, :, None] + log_pz, dim=1)  # (B,C)
        prior = torch.full_like(self.trait_prior, 1.0 / self.trait_prior.numel()) if uniform_prior else self.trait_prior
        post = F.softmax(log_pxc + prior.reshape(-1).clamp_min(1e-12).log(), dim=-1)
        return post.reshape(B, 2, -1).numpy()

    def infer_traits(self, x, n_samples: int = 256, uniform_prior: bool = False,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Voice -> traits: raw features ``x (B,F)`` -> ``(P(female) (B,), expected age in years (B,))``."""
        post = self.trait_posterior(x, n_samples, uniform_prior, seed)
        age = np.asarray(self.cfg.age_grid, dtype=np.float32)
        return post[:, 1].sum(-1), post.sum(1) @ age


def load_voice_vae(path: str | Path, expected_sha256: str | None = None) -> VoiceVAE:
    """Rebuild a ``VoiceVAE`` from a ``voice_vae`` safetensors file (config in its metadata)."""
    tensors, config, meta = load_weights(path, kind=KIND, expected_sha256=expected_sha256)
    age_strength = meta_float(meta, "age_strength", path)
    try:
        cfg = VoiceVAEConfig.from_dict(config)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{Path(path).name}: config does not fit this VoiceVAE ({e}); re-export the weights") from None
    model = VoiceVAE(cfg)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{Path(path).name}: weights do not fit the config ({str(e)[:200]})") from None
    model.age_strength = age_strength
    return model.eval()
