"""Faces v2 machinery: growing a generator, the age calibration map, age-balanced sampling and the
judge-free parts of the persona rows (detail). Tiny models, milliseconds."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from digitalhuman.checkpoint import CheckpointError, save_weights
from digitalhuman.evaluate.face_persona_rows import detail_row, laplacian_variance
from digitalhuman.face.gan import FaceGANConfig, Generator, grow_from, make_cond, map_age, parse_age_map, present_cond
from digitalhuman.face.model import FaceModel
from digitalhuman.face.train import age_weights

SMALL = FaceGANConfig(resolution=16, z_dim=16, cond_embed=4, g_channels=8, d_channels=4, max_channels=16)


@pytest.mark.parametrize("top_nearest", [False, True])
def test_grown_generator_starts_as_the_lower_one_upsampled(top_nearest):
    torch.manual_seed(0)
    lower = Generator(SMALL).eval()
    big_cfg = FaceGANConfig(resolution=32, z_dim=16, cond_embed=4, g_channels=4, d_channels=4, max_channels=16,
                            skip_rgb=True, top_nearest=top_nearest)
    big = grow_from(lower, big_cfg).eval()
    z, c = torch.randn(3, 16), make_cond(torch.tensor([0.0, 1.0, 0.5]), torch.tensor([5.0, 30.0, 80.0]),
                                         torch.tensor([0, 1, 2]))
    with torch.no_grad():
        small, large = lower(z, c), big(z, c)
    assert large.shape == (3, 3, 32, 32)
    # the new level's RGB head starts at zero: the 32 px image is the 16 px one's pre-tanh upsampled
    down = torch.nn.functional.avg_pool2d(large, 2)
    assert (down - small).abs().max() < 0.15
    with pytest.raises(AssertionError):  # channels that do not line up are refused
        grow_from(lower, FaceGANConfig(resolution=32, z_dim=16, cond_embed=4, g_channels=8, max_channels=16,
                                       skip_rgb=True))


def test_age_map_interpolates_and_holds_at_the_ends():
    am = ((0.0, 10.0, 50.0, 100.0), (1.0, 5.0, 60.0, 110.0))
    got = map_age(np.array([0, 5, 10, 30, 100, 116], np.float32), am)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [1, 3, 5, 32.5, 110, 110], rtol=1e-6)
    np.testing.assert_array_equal(map_age(np.array([7.0]), None), [7.0])
    c_map = present_cond([1.0], [30.0], [0], age_map=am)
    c_direct = present_cond([1.0], [32.5], [0])
    assert torch.equal(c_map, c_direct)


@pytest.mark.parametrize("bad", [
    {"requested": [0, 10], "condition": [1]},  # lengths differ
    {"requested": [10, 0], "condition": [1, 2]},  # not increasing
    {"requested": [0, 10], "condition": [1, 500]},  # outside 0-116
    {"requested": [0], "condition": [1]},  # one knot
])
def test_bad_age_maps_are_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        parse_age_map(json.dumps(bad))
    g = Generator(SMALL)
    save_weights(tmp_path / "f.safetensors", g.state_dict(), kind="face_generator", config=SMALL,
                 extra={"age_map": json.dumps(bad)})
    with pytest.raises(CheckpointError, match="age_map"):
        FaceModel.load(tmp_path / "f.safetensors")


def test_face_model_presents_ages_through_its_map(tmp_path):
    torch.manual_seed(1)
    g = Generator(SMALL)
    am = {"requested": [0, 100], "condition": [20, 60]}
    save_weights(tmp_path / "f.safetensors", g.state_dict(), kind="face_generator", config=SMALL,
                 extra={"age_map": json.dumps(am)})
    m = FaceModel.load(tmp_path / "f.safetensors")
    plain = FaceModel(g)
    code = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    assert np.array_equal(m.generate(code, 1.0, 50.0, "white"), plain.generate(code, 1.0, 40.0, "white"))
    assert m.age_map == ((0.0, 100.0), (20.0, 60.0)) and plain.age_map is None
    c = present_cond([1.0], [50.0], [0], m.gender_strength, m.age_strength, m.age_map)
    assert torch.equal(c, present_cond([1.0], [40.0], [0])) and not torch.equal(c, present_cond([1.0], [50.0], [0]))


def test_age_balance_weights_rare_ages_up():
    age = np.array([1.0] * 10 + [30.0] * 90)
    assert age_weights(age, 0.0) is None
    p = age_weights(age, 0.5)
    assert p.sum() == pytest.approx(1.0)
    child_share, adult_share = p[:10].sum(), p[10:].sum()
    assert child_share == pytest.approx(np.sqrt(10) / (np.sqrt(10) + np.sqrt(90)))  # sqrt balancing
    assert child_share > 0.1


def test_detail_row_tells_sharp_from_blurred():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    blurred = np.repeat(np.repeat(sharp[:, ::4, ::4], 4, axis=1), 4, axis=2)
    assert laplacian_variance(blurred) < 0.5 * laplacian_variance(sharp)
    small = sharp[:, ::2, ::2]  # 64 px: upsampled to 128 before the Laplacian
    row = detail_row(small, sharp)
    assert row["native_resolution"] == 64 and row["ratio"] < 1.0


def _noise_faces(folder, n: int, ages: list[int], seed: int):
    """A labelled face folder of ``n`` 16 px noise images, ages cycling through ``ages``."""
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    rows = ["file,age,gender,race"]
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / "images" / f"{i}.png")
        rows.append(f"{i}.png,{ages[i % len(ages)]},{i % 2},{i % 5}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_a_packed_run_resumes_in_a_new_run(tmp_path):
    from digitalhuman.checkpoint import load_weights
    from digitalhuman.face.train import FaceTrainConfig, pack_resume, train

    data = _noise_faces(tmp_path / "faces", 24, [3, 30, 80], seed=0)
    model = FaceGANConfig(resolution=16, z_dim=16, cond_embed=4, g_channels=4, d_channels=4, max_channels=8)
    cfg = FaceTrainConfig(model=model, batch=4, steps=3, threads=1, log_every=1, sample_every=100, ckpt_every=100,
                          age_balance=0.5)
    run = train(str(data), str(tmp_path / "runs"), cfg=cfg, progress=False)
    pack_resume(run, tmp_path / "resume.safetensors")
    tensors, saved, meta = load_weights(tmp_path / "resume.safetensors", kind="face_resume")
    assert meta["step"] == "3" and saved["age_balance"] == 0.5 and saved["model"]["resolution"] == 16
    run2 = train(str(data), str(tmp_path / "runs"), cfg=FaceTrainConfig(model=model, steps=5, threads=1),
                 progress=False, resume_from=str(tmp_path / "resume.safetensors"))
    assert run2 != run and json.loads((run2 / "resumed_from.json").read_text())["step"] == 3
    steps = [json.loads(line).get("step") for line in (run2 / "log.jsonl").read_text().splitlines()]
    assert steps and min(s for s in steps if s) == 4  # continued at step 4, not from 1


def test_the_latent_age_shift_moves_codes_by_age_and_is_checked(tmp_path):
    from digitalhuman.face.gan import parse_age_shift, shift_code
    from digitalhuman.face.model import FaceModel

    direction = [3.0, 4.0] + [0.0] * 126
    shift = {"requested": [20.0, 60.0], "shift": [0.0, 2.0], "direction": direction}
    req, k, d = parse_age_shift(json.dumps(shift), 128)
    assert np.isclose(np.linalg.norm(d), 1.0) and np.allclose(d[:2], [0.6, 0.8])
    z = np.zeros((3, 128), np.float32)
    moved = shift_code(z, np.array([10.0, 40.0, 90.0]), (req, k, d))
    assert np.allclose(moved[:, 0], [0.0, 0.6, 1.2]) and np.allclose(moved[:, 1], [0.0, 0.8, 1.6])  # held at the ends
    assert shift_code(z, 40.0, None) is z
    for bad in ({**shift, "direction": [0.0] * 128}, {**shift, "direction": [1.0] * 64},
                {**shift, "shift": [0.0, 9.0]}, {**shift, "requested": [60.0, 20.0]}):
        with pytest.raises(ValueError, match="age_shift"):
            parse_age_shift(json.dumps(bad), 128)

    cfg = FaceGANConfig(resolution=16, z_dim=128, cond_embed=4, g_channels=4, d_channels=4, max_channels=8)
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    plain = tmp_path / "plain.safetensors"
    save_weights(plain, g.state_dict(), kind="face_generator", config=cfg)
    shifted = tmp_path / "shifted.safetensors"
    save_weights(shifted, g.state_dict(), kind="face_generator", config=cfg, extra={"age_shift": json.dumps(shift)})
    code = np.random.default_rng(1).standard_normal((2, 128)).astype(np.float32)
    a, b = FaceModel.load(plain), FaceModel.load(shifted)
    assert np.array_equal(a.generate(code, 1.0, 18.0, 0), b.generate(code, 1.0, 18.0, 0))  # no shift below 20
    assert not np.array_equal(a.generate(code, 1.0, 70.0, 0), b.generate(code, 1.0, 70.0, 0))
    save_weights(tmp_path / "bad.safetensors", g.state_dict(), kind="face_generator", config=cfg,
                 extra={"age_shift": json.dumps({**shift, "shift": [0.0, 99.0]})})
    with pytest.raises(CheckpointError, match="bad age_shift"):
        FaceModel.load(tmp_path / "bad.safetensors")


def test_a_fresh_discriminator_warms_up_with_the_generator_held(tmp_path):
    from digitalhuman.checkpoint import load_training_checkpoint
    from digitalhuman.face.gan import Discriminator, Generator
    from digitalhuman.face.train import FaceTrainConfig, train

    data = _noise_faces(tmp_path / "faces", 16, [5, 40], seed=1)
    model = FaceGANConfig(resolution=16, z_dim=16, cond_embed=4, g_channels=4, d_channels=4, max_channels=8)
    cfg = FaceTrainConfig(model=model, batch=4, steps=4, threads=1, log_every=1, sample_every=100, ckpt_every=100,
                          d_warmup_until=3)
    torch.manual_seed(cfg.seed)  # the trainer's own start: same seed, same initial G and D
    g0, d0 = Generator(model).state_dict(), Discriminator(model).state_dict()
    run = train(str(data), str(tmp_path / "runs"), cfg=dataclasses.replace(cfg, steps=3), progress=False)
    st = load_training_checkpoint(run / "checkpoint.pt")
    weights = [k for k in g0 if "running" not in k and "num_batches" not in k]  # BN statistics do move
    assert all(torch.equal(st["G"][k], g0[k]) for k in weights)
    assert not all(torch.equal(st["D"][k], d0[k]) for k in d0)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r.get("d_warmup") for r in log)
    run = train(str(data), str(tmp_path / "runs"), resume=True, cfg=cfg, progress=False)
    st = load_training_checkpoint(run / "checkpoint.pt")
    assert st["step"] == 4 and not all(torch.equal(st["G"][k], g0[k]) for k in weights)  # step 4 trains G
