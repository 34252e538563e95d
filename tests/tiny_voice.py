"""A tiny, randomly initialised speech VAE with plausible feature statistics, for fast tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from digitalhuman.checkpoint import save_weights
from digitalhuman.voice.features import ENV_SLICE, FEATURE_NAMES
from digitalhuman.voice.vae import KIND, VoiceVAE, VoiceVAEConfig

TINY_VAE = VoiceVAEConfig(hidden=8, prior_hidden=8)


def write_tiny_voice(folder: Path) -> str:
    torch.manual_seed(1)
    vae = VoiceVAE(TINY_VAE)
    mean = np.zeros(len(FEATURE_NAMES), np.float32)
    std = np.full(len(FEATURE_NAMES), 0.5, np.float32)
    mean[0], std[0] = np.log(150.0), 0.3  # F0 around 150 Hz
    mean[1], std[1] = 2.5, 0.5
    mean[2], std[2] = 0.3, 0.05
    mean[3], std[3] = -8.0, 2.0
    env = np.linspace(10, -10, ENV_SLICE.stop - ENV_SLICE.start)
    mean[ENV_SLICE], std[ENV_SLICE] = env, 1.5
    vae.set_stats(torch.from_numpy(mean), torch.from_numpy(std))
    save_weights(folder / "voice.safetensors", vae.state_dict(), kind=KIND, config=TINY_VAE)
    return "voice.safetensors"
