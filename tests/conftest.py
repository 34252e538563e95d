"""Shared fixtures: a tiny, randomly initialised model set written like the shipped one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from digitalhuman.checkpoint import save_weights
from digitalhuman.face.gan import FaceGANConfig, Generator
from digitalhuman.fusion import TraitPrior
from digitalhuman.weights_card import write_card

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_FACE = FaceGANConfig(resolution=16, z_dim=128, cond_embed=8, g_channels=4, d_channels=4, max_channels=16,
                          extra_levels=1)
# the 128 px generator's layout (skip_rgb: the level below's RGB, upsampled, is added), tiny
TINY_FACE_SKIP = FaceGANConfig(resolution=32, z_dim=128, cond_embed=8, g_channels=4, d_channels=4, max_channels=16,
                               extra_levels=1, skip_rgb=True)
# the shipped 128 px layout: a 64 px-style generator with a learned 2x top level (face/refine.py), tiny
TINY_FACE_REFINED = FaceGANConfig(resolution=16, z_dim=128, cond_embed=8, g_channels=4, d_channels=4, max_channels=16,
                                  extra_levels=1, refine_channels=4, refine_blocks=1)


def make_tiny_weights(folder: Path, voice: bool = True, face: FaceGANConfig = TINY_FACE,
                      face_meta: dict[str, str] | None = None) -> Path:
    """``face``/``face_meta``: another generator config (e.g. ``TINY_FACE_SKIP``) and its metadata
    (``gender_strength``, ``age_strength``), as the shipped weights carry them."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    g = Generator(face).eval()
    if g.refiner is not None:  # a new refiner is exactly the bilinear upsampling: give it detail to add
        torch.nn.init.normal_(g.refiner.up.weight, std=0.05)
    save_weights(folder / "face.safetensors", g.state_dict(), kind="face_generator", config=face, extra=face_meta)
    rng = np.random.default_rng(0)
    prior = TraitPrior.fit(rng.integers(0, 2, 500), rng.integers(0, 5, 500), rng.uniform(1, 90, 500))
    save_weights(folder / "fusion.safetensors", {"trait_counts": torch.from_numpy(prior.counts)}, kind="fusion",
                 config={})
    from digitalhuman.face.attributes import KIND as ATTR_KIND, AttributeConfig, FaceAttributes

    acfg = AttributeConfig(resolution=16, channels=4)
    save_weights(folder / "attributes.safetensors", FaceAttributes(acfg).state_dict(), kind=ATTR_KIND, config=acfg)
    models = {
        "face_attributes": {"id": "tiny-attributes", "file": "attributes.safetensors"},
        "face": {"id": "tiny-face", "file": "face.safetensors"},
        "fusion": {"id": "tiny-fusion", "file": "fusion.safetensors"},
    }
    if voice:
        from tests.tiny_voice import write_tiny_prior, write_tiny_voice

        models["voice"] = {"id": "tiny-voice", "file": write_tiny_voice(folder)}
        models["voice_prior"] = {"id": "tiny-voice-prior", "file": write_tiny_prior(folder)}
    write_card(folder, models)
    return folder


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return make_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def tiny_weights_no_voice(tmp_path_factory) -> Path:
    return make_tiny_weights(tmp_path_factory.mktemp("weights_nv"), voice=False)
