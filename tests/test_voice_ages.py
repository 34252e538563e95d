"""Voices across ages: every age asks the speech VAE's prior for its own voice (no plateau; the VAE
reads a clip's age for --from-voice), and children and the old get their own cues."""

import numpy as np
import pytest
import torch

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
def test_child_and_old_cues_follow_the_age(tiny_weights, female):
    from digitalhuman.pipeline import PersonaPipeline
    from digitalhuman.voice.persona_voice import CHILD_AGE

    vm = PersonaPipeline.from_pretrained(tiny_weights, face=False).voice
    code, style = np.linspace(-1, 1, 16), np.linspace(1, -1, 12)
    v = {a: vm.params(female, a, code, style) for a in (6, 10, 14, CHILD_AGE, 30, 60, 80)}
    assert v[6]["child"] == 1.0 and v[6]["f0_hz"] > 250 and v[6]["formant"] > 1.1  # a child: high, small
    assert v[6]["formant"] > v[10]["formant"] > v[14]["formant"] > 1.0
    assert v[14]["child"] > 0 and v[CHILD_AGE]["child"] == 0 and v[CHILD_AGE]["formant"] == 1.0  # grown up at 16
    assert v[6]["speed"] < v[30]["speed"]  # children speak more slowly
    if not female:
        assert v[14]["f0_hz"] < 200 and v[6]["female"] > 0.5  # boys' voices break; before, they sound like girls
    if female:  # the pitch map raises women's Kokoro pitch towards real women's (some 3 semitones)
        assert 1.5 < v[30]["pitch_st"] < 5 and 1.5 < v[60]["pitch_st"] < 5
        assert v[80]["pitch_st"] < v[60]["pitch_st"] - 1  # old: F0 falls
    else:  # men keep Kokoro's pitch until 60, then it rises
        assert v[30]["pitch_st"] == 0 and v[60]["pitch_st"] == 0 and v[80]["pitch_st"] > 0
    assert v[6]["pitch_st"] == 0 and v[80]["speed"] < v[30]["speed"]  # a child's pitch is its curves'; old: slower
    assert len({tuple(sorted(x.items())) for x in v.values()}) == len(v)  # every age its own voice


def test_pitch_map_places_a_womans_voice_among_real_womens_and_spares_cast_voices(tiny_weights):
    from digitalhuman.pipeline import PersonaPipeline
    from digitalhuman.voice import persona_voice as pv

    vm = PersonaPipeline.from_pretrained(tiny_weights, face=False).voice
    codes = [np.random.default_rng(s).normal(size=16) for s in range(4)]
    style = np.zeros(12)
    shifts = [vm.params(1.0, 35, c, style)["pitch_st"] for c in codes]
    own = [vm.own_f0(vm.params(1.0, 35, c, style)) for c in codes]
    (mk, sk), (mr, sr) = pv.PITCH_MAP["female"]["kokoro"], pv.PITCH_MAP["female"]["real"]
    for s, f in zip(shifts, own):  # own pitch before the map -> the same rank among real women
        target = min(mr + (np.log(f) - mk) * sr / sk, pv.PITCH_MAP["female"]["max"])
        expected = 12 * (target - np.log(f)) / np.log(2)
        assert abs(s - expected) < 0.01
    assert all(0 < s <= pv.PITCH_MAP_MAX_ST for s in shifts)
    assert vm.params(1.0, 35, codes[0], style, like={"af_heart": 1.0})["pitch_st"] == 0  # a cast voice keeps its pitch
    assert vm.params(1.0, 35, codes[0], style, pitch=2.0)["pitch_st"] == pytest.approx(shifts[0] + 2.0, abs=0.002)
