"""A tiny, randomly initialised speech VAE with plausible feature statistics, and a tiny voice prior
(eight of the shipped stock voices, two per gender and accent, three speaker and two prosody
directions), for fast tests."""

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


TINY_PRIOR_VOICES = ("af_heart", "af_bella", "am_adam", "am_michael", "bf_emma", "bf_alice", "bm_george", "bm_lewis")


def write_tiny_prior(folder: Path) -> str:
    from digitalhuman.voice.prior import VoicePrior, write_prior
    from digitalhuman.weights_card import WEIGHTS_DIR

    shipped = VoicePrior.load(WEIGHTS_DIR / "voice_prior.safetensors")
    packs = np.stack([shipped.packs[shipped.names.index(n)] for n in TINY_PRIOR_VOICES])
    rng = np.random.default_rng(2)
    coef = rng.normal(0, 0.3, (36, 3))
    write_prior(folder / "voice_prior.safetensors", list(TINY_PRIOR_VOICES), packs, k_spk=3, k_pro=2,
                gender_dir=np.array([1.0, 0.0, 0.0]), gender_floor=0.5, age_dir=np.array([0.0, 1.0, 0.0]), age_gain=0.1,
                features=(np.zeros(36), np.ones(36), coef, np.zeros(3)))
    return "voice_prior.safetensors"
