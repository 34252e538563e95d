"""Voice features and the speech VAE: synthetic audio, a tiny random-init model, round trips."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from digitalhuman.checkpoint import CheckpointError, load_training_checkpoint, save_weights
from digitalhuman.voice.features import ENV_SLICE, FEATURE_NAMES, FeatureError, load_audio, voice_features
from digitalhuman.voice.vae import VoiceVAE, VoiceVAEConfig, load_voice_vae

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "commonvoice61"
SHIPPED = Path(__file__).resolve().parents[1] / "digitalhuman" / "weights" / "voice_vae.safetensors"
F = len(FEATURE_NAMES)


def harmonic_tone(f0: float, snr_db: float, sr: int = 24_000, seconds: float = 1.2, seed: int = 0) -> np.ndarray:
    """A sawtooth-like voice with slight vibrato plus white noise at ``snr_db``: ``(N,)`` float32."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * f0 * (t + 0.001 * np.sin(2 * np.pi * 4 * t))
    x = sum(np.sin(k * phase) / k for k in range(1, 40) if k * f0 < sr / 2)
    n = np.random.default_rng(seed).standard_normal(len(t))
    n *= np.sqrt((x**2).mean() / (n**2).mean()) * 10 ** (-snr_db / 20)
    return (0.3 * (x + n)).astype(np.float32)


def tiny(seed: int = 0) -> VoiceVAE:
    torch.manual_seed(seed)
    return VoiceVAE(VoiceVAEConfig(latent_dim=4, hidden=16, prior_hidden=8)).eval()


# ----------------------------------------------------------------------------- features
@pytest.mark.parametrize("f0", [120.0, 220.0])
def test_features_find_f0(f0):
    v = voice_features(harmonic_tone(f0, 30), 24_000)
    assert v.shape == (F,) and v.dtype == np.float32 and np.isfinite(v).all()
    assert abs(np.exp(v[FEATURE_NAMES.index("log_f0_median")]) / f0 - 1) < 0.05
    assert v[FEATURE_NAMES.index("f0_range_st")] < 1.0  # vibrato of +-0.4 semitones
    assert abs(v[ENV_SLICE].mean()) < 1e-4  # level-normalised envelope


def test_breathiness_grows_with_noise_and_ignores_gain():
    b = FEATURE_NAMES.index("breathiness")
    clean, noisy = voice_features(harmonic_tone(150, 35), 16_000), voice_features(harmonic_tone(150, 5), 16_000)
    assert 0 <= clean[b] < noisy[b] <= 1
    quiet = voice_features(0.05 * harmonic_tone(150, 35), 16_000)
    np.testing.assert_allclose(quiet, clean, atol=1e-3)


def test_feature_errors():
    with pytest.raises(FeatureError, match="silent"):
        voice_features(np.zeros(16_000, np.float32), 16_000)
    with pytest.raises(FeatureError, match="short"):
        voice_features(harmonic_tone(150, 30, seconds=0.1), 24_000)
    with pytest.raises(FeatureError, match="mono"):
        voice_features(np.zeros((2, 16_000), np.float32), 16_000)


# ----------------------------------------------------------------------------- model
def test_shapes_and_loss():
    m = tiny()
    x = torch.randn(5, F)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (5, 4)
    assert m.decode(mu).shape == (5, F)
    c = m.make_cond([1, 0, 1, 0, 0.5], 30.0)
    assert c.shape == (5, 2)
    mu_p, lv_p = m.prior(c)
    assert mu_p.shape == lv_p.shape == (5, 4)
    out = m.loss(x, c, beta=0.5, generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["kl"] >= 0
    with pytest.raises(AssertionError):
        m.encode(torch.randn(5, F + 1))


def test_sample_voice_is_deterministic_and_latent_matters():
    m = tiny()
    eps = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    before = torch.random.get_rng_state()
    a, b = m.sample_voice(1.0, 40.0, eps), m.sample_voice(1.0, 40.0, eps.copy())
    assert torch.equal(before, torch.random.get_rng_state())  # no global RNG use
    assert a.shape == (3, F) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[0] - a[1]).max() > 1e-4  # different eps, different voice
    assert np.abs(m.sample_voice(0.0, 40.0, eps) - a).max() > 1e-4  # the traits matter too
    assert set(m.features_as_dict(a)) == set(FEATURE_NAMES)


def test_infer_traits_shapes_and_determinism():
    m = tiny()
    x = m.sample_voice(1.0, 30.0, np.random.default_rng(2).standard_normal((6, 4)))
    pf, age = m.infer_traits(x, n_samples=32)
    assert pf.shape == age.shape == (6,)
    assert ((pf >= 0) & (pf <= 1)).all() and ((age >= 16) & (age <= 85)).all()
    np.testing.assert_array_equal(pf, m.infer_traits(x, n_samples=32)[0])
    post = m.trait_posterior(x, n_samples=32, uniform_prior=True)
    assert post.shape == (6, 2, 8)
    np.testing.assert_allclose(post.sum((1, 2)), 1, rtol=1e-5)


def test_save_load_round_trip(tmp_path):
    m = tiny()
    m.set_stats(torch.linspace(-1, 1, F), torch.linspace(0.5, 2, F))
    path = tmp_path / "v.safetensors"
    sha = save_weights(path, m.state_dict(), kind="voice_vae", config=m.cfg)
    m2 = load_voice_vae(path, expected_sha256=sha)
    assert m2.cfg == m.cfg
    eps = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(m.sample_voice(0.3, 50.0, eps), m2.sample_voice(0.3, 50.0, eps))
    with pytest.raises(CheckpointError, match="sha256"):
        load_voice_vae(path, expected_sha256="0" * 64)
    save_weights(tmp_path / "f.safetensors", m.state_dict(), kind="face_generator", config=m.cfg)
    with pytest.raises(CheckpointError, match="expected 'voice_vae'"):
        load_voice_vae(tmp_path / "f.safetensors")


# ----------------------------------------------------------------------------- trainer (fake cached features)
def _fake_dataset(tmp_path: Path, n: int = 240) -> tuple[Path, Path]:
    """A clips.csv plus a matching feature cache (no audio needed): F0 depends on gender."""
    rng = np.random.default_rng(0)
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir(), cache.mkdir()
    gender = rng.integers(0, 2, n)
    ages = rng.choice(["teens", "twenties", "thirties", "fifties", "seventies"], n)
    feats = rng.standard_normal((n, F)).astype(np.float32) * 0.3
    feats[:, 0] = np.log(np.where(gender == 1, 210.0, 115.0)) + 0.1 * rng.standard_normal(n)
    files = [f"audio/{i}.ogg" for i in range(n)]
    with open(data / "clips.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "speaker_id", "gender", "age"])
        for i in range(n):
            w.writerow([files[i], f"spk{i:04d}", ["male", "female"][gender[i]], ages[i]])
    from digitalhuman.voice.features import AGE_YEARS, FEATURES_VERSION

    np.savez(cache / "voice_features.npz", version=np.array(FEATURES_VERSION), feature_names=np.array(FEATURE_NAMES),
             features=feats, clip_file=np.array(files), speaker_id=np.array([f"spk{i:04d}" for i in range(n)]),
             lang=np.array(["en"] * n), gender=gender.astype(np.int8),
             age=np.array([AGE_YEARS[a] for a in ages], np.float32),
             failed_clip_file=np.array([], dtype="<U1"), failed_reason=np.array([], dtype="<U1"))
    return data, cache


def test_train_resume_is_exact(tmp_path):
    from digitalhuman.voice.train import VoiceTrainConfig, train_voice

    data, cache = _fake_dataset(tmp_path)
    cfg = VoiceTrainConfig(model=VoiceVAEConfig(latent_dim=4, hidden=16, prior_hidden=8), epochs=4, batch=64,
                           kl_warmup_epochs=2, log_every=1, ckpt_every=2)
    full = train_voice(data, tmp_path / "runs", cfg=cfg, cache_dir=cache, progress=False)
    # an interrupted run: stop after 2 epochs, then raise the target to 4 and resume
    part = train_voice(data, tmp_path / "runs", cfg=cfg.__class__(**{**cfg.__dict__, "epochs": 2}),
                       cache_dir=cache, progress=False)
    conf = json.loads((part / "config.json").read_text())
    conf["epochs"] = 4
    (part / "config.json").write_text(json.dumps(conf))
    with open(part / "log.jsonl", "a") as f:  # as if killed after logging epoch 3 but before its checkpoint
        f.write(json.dumps({"epoch": 3, "loss": 0.0}) + "\n")
    assert train_voice(data, tmp_path / "runs", resume=True, cache_dir=cache, progress=False) == part
    st_full, st_part = load_training_checkpoint(full / "checkpoint.pt"), load_training_checkpoint(part / "checkpoint.pt")
    assert st_full["epoch"] == st_part["epoch"] == 4
    for k, v in st_full["model"].items():
        torch.testing.assert_close(v, st_part["model"][k], rtol=0, atol=0)
    epochs = lambda run: [json.loads(ln)["epoch"] for ln in (run / "log.jsonl").read_text().splitlines()]  # noqa: E731
    assert epochs(part) == epochs(full) == [1, 2, 3, 4]  # lines after the checkpoint are not repeated
    report = json.loads((full / "eval.json").read_text())
    assert report["n_eval_speakers"] > 0 and 0 <= report["gender_acc"] <= 1
    assert load_voice_vae(full / "voice_vae.safetensors").cfg == cfg.model


def test_ddp_two_processes_train_and_export(tmp_path):
    """``torchrun --nproc_per_node 2 -m digitalhuman train voice``: each rank on its own shard, rank 0
    alone writes the run; the exported VAE loads, and its log has every epoch once."""
    import os
    import subprocess
    import sys

    data, cache = _fake_dataset(tmp_path)
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "digitalhuman", "train", "voice", "--data", str(data),
                        "--cache", str(cache), "--out", str(out), "--epochs", "3"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list(out.iterdir())
    assert len(runs) == 1, runs
    st = load_training_checkpoint(runs[0] / "checkpoint.pt")
    assert st["epoch"] == 3
    m = load_voice_vae(runs[0] / "voice_vae.safetensors")
    for k, v in m.state_dict().items():  # the exported weights are the trained ones (fp32 here)
        torch.testing.assert_close(v.float(), st["model"][k].float())
    assert [json.loads(ln)["epoch"] for ln in (runs[0] / "log.jsonl").read_text().splitlines()] == [3]
    assert json.loads((runs[0] / "eval.json").read_text())["epochs"] == 3


# ----------------------------------------------------------------------------- real data and shipped weights
@pytest.mark.skipif(not (DATA / "clips.csv").is_file(), reason=f"Common Voice sample not found at {DATA}")
def test_real_clips_give_finite_features():
    with open(DATA / "clips.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:5]
    ok = 0
    for r in rows:
        y, sr = load_audio(DATA / r["file"])
        try:
            v = voice_features(y[: 2 * sr], sr)  # the first 2 s keep the test fast
        except FeatureError:  # about 2% of the clips have no usable voicing
            continue
        assert v.shape == (F,) and np.isfinite(v).all() and 50 <= np.exp(v[0]) <= 500
        ok += 1
    assert ok >= 4


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped voice_vae.safetensors yet (train with digitalhuman.voice.train)")
def test_shipped_weights_sample_gendered_pitch():
    m = load_voice_vae(SHIPPED)
    eps = np.random.default_rng(0).standard_normal((64, m.cfg.latent_dim)).astype(np.float32)
    f0_f = np.exp(np.median(m.sample_voice(1.0, 30.0, eps)[:, 0]))
    f0_m = np.exp(np.median(m.sample_voice(0.0, 30.0, eps)[:, 0]))
    assert 150 < f0_f < 300 and 80 < f0_m < 150
    pf, _ = m.infer_traits(np.concatenate([m.sample_voice(1.0, 30.0, eps[:8]), m.sample_voice(0.0, 30.0, eps[:8])]))
    assert pf[:8].mean() > 0.7 and pf[8:].mean() < 0.3


def test_age_strength_travels_with_the_weights(tmp_path):
    """``age_strength`` in the weights' metadata moves the age the prior is asked for away from the
    centre, brought smoothly inside the training speakers' ages (16-85); nothing else changes."""
    m = tiny(1)
    plain, strong, bad = (tmp_path / f"{n}.safetensors" for n in ("plain", "strong", "bad"))
    save_weights(plain, m.state_dict(), kind="voice_vae", config=m.cfg)
    save_weights(strong, m.state_dict(), kind="voice_vae", config=m.cfg, extra={"age_strength": "2"})
    a, b = load_voice_vae(plain), load_voice_vae(strong)
    assert a.age_strength == 1.0 and b.age_strength == 2.0
    ctr, top = a.cfg.age_center, max(a.cfg.age_grid)
    with torch.no_grad():
        for age in (20.0, 50.0, 75.0):
            assert torch.equal(a.presented_prior(a.make_cond(1.0, age))[0], a.prior(a.make_cond(1.0, age))[0])
        shown = lambda age: b.presented_prior(b.make_cond(0.0, age))[0]  # noqa: E731
        lo = min(a.cfg.age_grid)
        asked = lambda x: (lo + top) / 2 + (top - lo) / 2 * math.tanh((x - (lo + top) / 2) / ((top - lo) / 2))  # noqa: E731
        assert torch.allclose(shown(50.0), a.prior(a.make_cond(0.0, asked(55.0)))[0], atol=1e-5)  # 45 + 2 * 5
        assert abs(asked(55.0) - 55.0) < 0.1 and abs(asked(ctr) - ctr) < 0.1  # near the centre: as linear
        assert torch.allclose(shown(ctr), a.prior(a.make_cond(0.0, asked(ctr)))[0], atol=1e-5)
        assert torch.allclose(shown(75.0), a.prior(a.make_cond(0.0, asked(105.0)))[0], atol=1e-5)
        assert ctr < asked(105.0) < top  # kept within the data, smoothly
    eps = np.random.Generator(np.random.PCG64(0)).standard_normal((1, m.cfg.latent_dim))
    assert not np.allclose(a.sample_voice(1.0, 60.0, eps), b.sample_voice(1.0, 60.0, eps))
    assert np.allclose(a.sample_voice(1.0, ctr, eps), b.sample_voice(1.0, ctr, eps), atol=0.05)
    save_weights(bad, m.state_dict(), kind="voice_vae", config=m.cfg, extra={"age_strength": "-3"})
    with pytest.raises(CheckpointError, match="age_strength"):
        load_voice_vae(bad)
