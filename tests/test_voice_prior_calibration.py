"""The voice prior's per-gender calibrations (``spread_gender``, ``gender_floors``, ``centre_weights``
in its config): absent, a voice is what it was; present, each moves what it says and nothing else."""

import dataclasses

import numpy as np
import pytest

CODE, STYLE = np.linspace(-1.5, 1.5, 16), np.linspace(1, -1, 12)


@pytest.fixture(scope="module")
def vm(tiny_weights):
    from digitalhuman.pipeline import PersonaPipeline

    return PersonaPipeline.from_pretrained(tiny_weights, face=False).voice


def with_config(vm, **config):
    from digitalhuman.voice.persona_voice import PersonaVoice

    prior = dataclasses.replace(vm.prior, config={**vm.prior.config, **config})
    return PersonaVoice(prior, vm.vae, threads=1)


def z(params, k=3):
    return np.array([params[f"s{i:02d}"] for i in range(k)])


def test_defaults_change_nothing(vm):
    same = with_config(vm, spread_gender=[1.0, 1.0], gender_floors=[vm.prior.gender_floor] * 2,
                       centre_weights=[1.0] * len(vm.prior.names))
    for female in (0.0, 1.0):
        assert same.params(female, 30, CODE, STYLE) == vm.params(female, 30, CODE, STYLE)
        assert np.array_equal(same.prior.group_weights(female, 0.0), vm.prior.group_weights(female, 0.0))


def test_spread_per_gender(vm):
    wide_men = with_config(vm, spread_gender=[1.0, 1.5], gender_floors=[9.0, 9.0], quality_min=0.0)
    base = with_config(vm, gender_floors=[9.0, 9.0], quality_min=0.0)
    assert np.allclose(z(wide_men.params(0.0, 35, CODE, STYLE)), 1.5 * z(base.params(0.0, 35, CODE, STYLE)), atol=2e-4)
    assert wide_men.params(1.0, 35, CODE, STYLE) == base.params(1.0, 35, CODE, STYLE)
    # --from-voice inverts the man's wider spread
    feats = np.linspace(-1, 1, 36)
    assert np.allclose(wide_men.voice_code_of(feats, 0.0), np.clip(base.voice_code_of(feats, 0.0) / 1.5, -4, 4))


def test_floor_per_gender(vm):
    d = vm.prior.gender_dir
    toward_men = -3.0 * d / np.abs(d).max()  # a woman's code far on the men's side
    for floor in (1.0, -0.5):  # -0.5: she must stay half a unit on her own side
        v = with_config(vm, gender_floors=[floor, 9.0], quality_min=0.0, age_gain=0.0)
        got = z(v.params(1.0, 35, toward_men, STYLE)) @ d
        assert got == pytest.approx(-floor, abs=1e-3)
        man = with_config(vm, gender_floors=[floor, 9.0], quality_min=0.0)
        assert man.params(0.0, 35, toward_men, STYLE) == with_config(vm, gender_floors=[9.0, 9.0], quality_min=0.0).params(
            0.0, 35, toward_men, STYLE)  # the men's floor (9) leaves a man alone


def test_centre_weights_weigh_the_group(vm):
    names = vm.prior.names
    cw = [0.0 if n == "af_bella" else 1.0 for n in names]  # one American woman out of her group's centre
    w = with_config(vm, centre_weights=cw).prior.group_weights(1.0, 0.0)
    assert w[names.index("af_bella")] == 0.0 and w[names.index("af_heart")] == pytest.approx(1.0)
    assert w.sum() == pytest.approx(1.0)


def anchored(vm, **config):
    proj = np.random.default_rng(0).standard_normal((3, len(vm.prior.names))).tolist()
    return with_config(vm, anchor={"proj": proj, "temperature": 0.3, "top": 2, "spread": 0.5, "power": 1.0}, **config)


def test_anchored_voices_pick_stock_voices_of_their_group(vm):
    v = anchored(vm)
    names = v.prior.names
    for female, accent, prefix in ((1.0, "us", "af_"), (0.0, "gb", "bm_")):
        p = v.params(female, 35, CODE, STYLE, accent=accent)
        mix = {k[4:]: w for k, w in p.items() if k.startswith("mix_")}
        assert 1 <= len(mix) <= 2 and all(n.startswith(prefix) and n in names for n in mix)
        assert sum(mix.values()) == pytest.approx(1.0, abs=1e-3)
        assert p == v.params(female, 35, CODE, STYLE, accent=accent)  # deterministic
    # the deviation around the anchors is the spread's share of the unanchored one
    free = dict(gender_floors=[9.0, 9.0], quality_min=0.0, age_gain=0.0)
    assert np.allclose(z(anchored(vm, **free).params(1.0, 35, CODE, STYLE)),
                       0.5 * z(with_config(vm, **free).params(1.0, 35, CODE, STYLE)), atol=2e-4)
    # other codes pick other voices; a cast voice (voice_like) is not anchored
    def heaviest(p):
        return max((w, k) for k, w in p.items() if k.startswith("mix_"))[1]

    assert len({heaviest(v.params(1.0, 35, c, STYLE)) for c in np.random.default_rng(1).standard_normal((12, 16))}) == 2
    cast = v.params(1.0, 35, CODE, STYLE, like={"bf_emma": 1.0})
    assert [k for k in cast if k.startswith("mix_")] == ["mix_bf_emma"]
    # a young boy's anchors are partly girls'
    boy = v.params(0.0, 8, CODE, STYLE)
    assert any(k.startswith("mix_af_") for k in boy), boy


def test_old_age_gain_moves_only_voices_above_35(vm):
    free = dict(gender_floors=[9.0, 9.0], quality_min=0.0)
    base, old = with_config(vm, **free), with_config(vm, age_gain_old=1.0, **free)
    d = vm.prior.age_dir
    for age in (18, 30, 35):  # the young side and the centre keep their voice
        assert old.params(1.0, age, CODE, STYLE) == base.params(1.0, age, CODE, STYLE)
    for age in (36, 65, 85):
        moved = (z(old.params(0.0, age, CODE, STYLE)) - z(base.params(0.0, age, CODE, STYLE))) @ d
        assert moved == pytest.approx((1.0 - vm.prior.age_gain) * (age - 35) / 10, abs=1e-3)
    # continuous at the centre: a year over it moves the voice by a tenth of the old gain
    step = z(old.params(1.0, 36, CODE, STYLE)) - z(old.params(1.0, 35, CODE, STYLE))
    assert np.linalg.norm(step) == pytest.approx(0.1, abs=1e-3)


def test_men_guard_caps_men_only(vm):
    d = np.array([0.6, 0.0, 0.8])
    free = dict(gender_floors=[9.0, 9.0], quality_min=0.0)
    guarded, base = with_config(vm, men_guard={"dir": d.tolist(), "max": 0.2}, **free), with_config(vm, **free)
    far = 2.0 * d / np.abs(d).max()
    man = z(guarded.params(0.0, 35, far, STYLE))
    assert man @ d == pytest.approx(0.2, abs=1e-3)
    assert z(base.params(0.0, 35, far, STYLE)) @ d > 0.5  # unguarded, the same code goes further
    assert guarded.params(1.0, 35, far, STYLE) == base.params(1.0, 35, far, STYLE)  # women untouched
    near = -far  # a man already on the safe side stays as drawn
    assert guarded.params(0.0, 35, near, STYLE) == base.params(0.0, 35, near, STYLE)
    # a cast voice (voice_like) is the user's choice: not guarded
    like = {"am_adam": 1.0}
    assert guarded.params(0.0, 35, far, STYLE, like=like) == base.params(0.0, 35, far, STYLE, like=like)
