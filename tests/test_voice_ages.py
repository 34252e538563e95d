"""Voices across ages: every age asks the speech VAE's prior for its own voice (no plateau), and
children get child voices (the data has no speakers under 16)."""

import numpy as np
import pytest
import torch

from digitalhuman.voice.persona_voice import CHILD_AGE, child_voice
from digitalhuman.voice.vae import VoiceVAE, VoiceVAEConfig


def test_presented_prior_age_is_strictly_increasing_and_inside_the_speakers_ages():
    vae = VoiceVAE(VoiceVAEConfig()).eval()
    vae.age_strength = 2.0
    ages = np.arange(0.0, 101.0, 1.0)
    c = vae.make_cond(np.full(len(ages), 0.5, np.float32), ages.astype(np.float32))
    seen = []

    def spy(cond):
        seen.append(cond.clone())
        return torch.zeros(len(cond), 16), torch.zeros(len(cond), 16)

    vae.prior = spy
    vae.presented_prior(c)
    asked = seen[0][:, 1].numpy() * vae.cfg.age_scale + vae.cfg.age_center  # years asked of the prior
    assert np.all(np.diff(asked[16:]) > 0)  # 16 and up: a different voice for every age (was flat to 30.5)
    assert asked.min() >= min(vae.cfg.age_grid) - 1e-4 and asked.max() <= max(vae.cfg.age_grid) + 1e-4
    assert abs(asked[45] - 45) < 0.5  # the centre stays where it was
    vae.age_strength = 1.0
    seen.clear()
    vae.presented_prior(c)
    assert torch.equal(seen[0], c)  # k = 1: the prior as trained


@pytest.mark.parametrize("female", [0.0, 1.0])
def test_child_voices_are_higher_and_grow_into_the_persona(female):
    own_f0, own_formant = (210.0, 1.2) if female else (120.0, 1.0)
    f0_8, formant_8, rate_8 = child_voice(8, female, own_f0, own_formant, 1.0)
    f0_14, formant_14, _ = child_voice(14, female, own_f0, own_formant, 1.0)
    assert f0_8 > 240 and formant_8 > own_formant + 0.1 and rate_8 > 1.0  # a child: high, small, slower
    assert f0_8 > f0_14 > own_f0 and formant_8 > formant_14 > own_formant
    f0_16, formant_16, rate_16 = child_voice(CHILD_AGE, female, own_f0, own_formant, 1.0)
    assert (f0_16, formant_16, rate_16) == pytest.approx((own_f0, own_formant, 1.0))  # continuous at 16
    if not female:
        assert f0_14 < 200  # boys' voices break at 12-15
