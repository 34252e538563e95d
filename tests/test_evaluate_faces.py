"""Fast tests of the face evaluation: numerics, condition sampling, generator loading; the judges
(an optional extra, scripts/install-judges.sh) only in the last test, which skips without them."""

import dataclasses
import json
import sys

import numpy as np
import pytest

from digitalhuman.evaluate.face_judges import INSTALL_HINT, FaceJudges, judges_missing
from digitalhuman.evaluate.faces import (
    diversity,
    frechet_distance,
    frechet_distance_from_stats,
    generator_from_weights,
    kid,
    label_agreement,
    pixel_candidates,
    split_holdout,
)


# ------------------------------------------------------------------------------ Frechet distance
def test_frechet_from_stats_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    want = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()  # = 5 + (1 + 1 + 0) = 7
    assert frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want, abs=1e-9)
    assert want == pytest.approx(7.0)


def test_frechet_distance_on_samples_of_known_gaussians():
    rng = np.random.Generator(np.random.PCG64(0))
    x = rng.standard_normal((20000, 4))
    y = rng.standard_normal((20000, 4)) * np.array([1.0, 2.0, 1.0, 1.0]) + np.array([0.5, 0.0, 0.0, 0.0])
    # closed form: 0.5^2 + (1 + 4 - 2 * 2) = 0.25 + 1 = 1.25
    assert frechet_distance(x, y) == pytest.approx(1.25, abs=0.06)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_stays_finite_with_fewer_samples_than_dimensions():
    rng = np.random.Generator(np.random.PCG64(1))
    x, y = rng.standard_normal((20, 128)), rng.standard_normal((30, 128)) + 0.1
    fd = frechet_distance(x, y)
    assert np.isfinite(fd) and fd > 0


def test_kid_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.Generator(np.random.PCG64(2))
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    same, shifted = kid(a, b), kid(a, b + 1.0)
    assert abs(same) < 0.02
    assert shifted > 10 * max(abs(same), 1e-3)


def test_diversity_of_identical_and_spread_embeddings():
    same = np.ones((10, 128), np.float32)
    assert diversity(same) == (pytest.approx(0.0, abs=1e-3), 1.0)
    spread = np.eye(10, 128, dtype=np.float32) * 2  # every pair at distance 2*sqrt(2)
    mean, frac = diversity(spread)
    assert mean == pytest.approx(2 * np.sqrt(2), rel=1e-5) and frac == 0.0


# ------------------------------------------------------------------------------ conditions
def test_split_holdout_is_seeded_and_partitions_the_holdout():
    cond, real, ref = split_holdout(100, 30, seed=5)
    cond2, real2, ref2 = split_holdout(100, 30, seed=5)
    assert np.array_equal(cond, cond2) and np.array_equal(real, real2) and np.array_equal(ref, ref2)
    assert not np.array_equal(split_holdout(100, 30, seed=6)[1], real)
    assert len(real) == 30 and len(ref) == 70
    assert np.array_equal(np.sort(np.concatenate([real, ref])), np.arange(100))
    assert np.array_equal(cond, real)  # generated faces get exactly the real row's labels


def test_split_holdout_more_faces_than_half_the_holdout():
    cond, real, ref = split_holdout(100, 80, seed=0)
    assert len(real) == 50 and len(ref) == 50 and len(cond) == 80
    assert np.array_equal(cond[:50], real)
    assert cond.min() >= 0 and cond.max() < 100


def test_label_agreement_counts_adults_only_for_gender():
    req_f = np.array([1, 0, 1, 0, 1], np.float32)
    req_age = np.array([5, 20, 30, 40, 90], np.float32)  # ages 5 and 90 are outside 18-80
    judged_f = np.array([0.0, 0.1, 0.9, 0.8, 0.0])  # adults: right, right, wrong
    judged_age = np.array([8, 25, 50, 33, 70], np.float64)  # ranks 1 2 4 3 5: one adjacent swap
    r = label_agreement(req_f, req_age, judged_f, judged_age)
    assert r["n_adult"] == 3 and r["gender_match_adult"] == pytest.approx(2 / 3)
    assert r["age_spearman"] == pytest.approx(0.9)  # 1 - 6 * 2 / (5 * 24)


def test_label_agreement_ignores_faces_the_judge_failed_on():
    r = label_agreement([1, 0, 1], [20, 30, 40], [np.nan, 0.0, 1.0], [np.nan, 30, 41])
    assert r["n_judged"] == 2 and r["n_adult"] == 2 and r["gender_match_adult"] == 1.0


def test_pixel_candidates_find_copies_and_mirrored_copies():
    rng = np.random.Generator(np.random.PCG64(3))
    pool = rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    q = np.stack([pool[7], pool[21][:, ::-1]])  # a copy, and a mirror image
    got = pixel_candidates(q, pool, k=1)
    assert {7, 21} <= set(got.tolist())


# ------------------------------------------------------------------------------ generator loading
def _tiny_generator_files(tmp_path):
    import torch

    from digitalhuman.checkpoint import save_training_checkpoint, save_weights
    from digitalhuman.face.gan import FaceGANConfig, Generator

    cfg = FaceGANConfig(resolution=16, z_dim=8, cond_embed=4, g_channels=4, d_channels=4, max_channels=8)
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    st = tmp_path / "face_generator.safetensors"
    save_weights(st, g.state_dict(), kind="face_generator", config=cfg)
    run = tmp_path / "run"
    run.mkdir()
    save_training_checkpoint(run / "checkpoint.pt", {"G_ema": g.state_dict(), "step": 1})
    (run / "config.json").write_text(json.dumps({"model": dataclasses.asdict(cfg)}))
    return st, run / "checkpoint.pt"


def test_generator_from_weights_both_formats_agree_and_are_seeded(tmp_path):
    st, ckpt = _tiny_generator_files(tmp_path)
    female, age, race = np.array([0, 1, 1], np.float32), np.array([20, 40, 70], np.float32), np.array([0, 2, 4])
    a = generator_from_weights(st)(female, age, race, 3)
    b = generator_from_weights(ckpt)(female, age, race, 3)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert generator_from_weights(ckpt).step == 1 and generator_from_weights(st).resolution == 16
    assert np.array_equal(a, generator_from_weights(st)(female, age, race, 3))
    assert not np.array_equal(a, generator_from_weights(st)(female, age, race, 4))
    # batch size does not change a face; psi=0 gives every face the same z
    assert np.array_equal(a, generator_from_weights(st, batch=1)(female, age, race, 3))
    z0 = generator_from_weights(st, psi=0.0)(np.zeros(2, np.float32), np.full(2, 30, np.float32), np.zeros(2), 9)
    assert np.array_equal(z0[0], z0[1])


def test_generator_from_checkpoint_without_config_is_refused(tmp_path):
    from digitalhuman.checkpoint import CheckpointError

    _, ckpt = _tiny_generator_files(tmp_path)
    (ckpt.parent / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        generator_from_weights(ckpt)


# ------------------------------------------------------------------------------ judges
def test_missing_judges_give_an_error_naming_the_install_script(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail
    assert "mediapipe" in judges_missing()
    with pytest.raises(ImportError, match="install-judges.sh"):
        FaceJudges()
    assert "install-judges.sh" in INSTALL_HINT


def _fake_face_folder(root, n_holdout=10, n_train=10):
    """A labelled folder of smooth random 'faces' with enough hold-out and training files."""
    from PIL import Image

    from digitalhuman.face.data import is_holdout

    rng = np.random.Generator(np.random.PCG64(4))
    (root / "images").mkdir(parents=True)
    rows, h, t, i = [], 0, 0, 0
    while h < n_holdout or t < n_train:
        age, female, race = 10 + i % 60, i % 2, i % 5
        name = f"{age}_{female}_{race}_{i:06d}.jpg"
        i += 1
        if is_holdout(name):
            if h >= n_holdout:
                continue
            h += 1
        else:
            if t >= n_train:
                continue
            t += 1
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.BILINEAR).save(root / "images" / name)
        rows.append(f"{name},{age},{female},x,{race},x,{name}")
    (root / "labels.csv").write_text("file,age,gender,gender_name,race,race_name,original_file\n" + "\n".join(rows) + "\n")


def test_evaluate_faces_end_to_end_with_the_judges(tmp_path):
    missing = judges_missing()
    if missing:
        pytest.skip(f"face judges not installed ({', '.join(missing)}): run scripts/install-judges.sh")
    from digitalhuman.evaluate.faces import evaluate_faces

    data = tmp_path / "faces"
    _fake_face_folder(data)

    def generate(female, age, race, seed):
        rng = np.random.Generator(np.random.PCG64(seed))
        return rng.integers(0, 256, (len(female), 32, 32, 3), dtype=np.uint8)

    out = tmp_path / "eval.json"
    r = evaluate_faces(generate, n=4, real_dir=data, seed=0, out_json=out, progress=False,
                       cache_dir=tmp_path / "cache", train_subset=3, nn_candidates=1)
    assert json.loads(out.read_text()) == json.loads(json.dumps(r))
    for row in ("generated", "real_holdout"):
        for key in ("mediapipe_rate", "haar_rate", "memorised_rate", "same_identity_pairs"):
            assert 0.0 <= r[row][key] <= 1.0, (row, key)
        assert r[row]["fd_dlib"] >= 0 and r[row]["identity_diversity"] >= 0
    assert r["generated"]["n"] == 4 and r["real_holdout"]["n"] == 4 and r["setup"]["resolution"] == 32
    assert r["setup"]["fd_reference_faces"] == 6
    # a generator that returns training images is caught copying all of them (found by the pixel
    # search, not the 3-face subset); the real row, its embeddings now from the cache, is unchanged
    from digitalhuman.face.data import load_split

    train_imgs = load_split(data, 32, "train")[0]  # the resolution of the first run
    r2 = evaluate_faces(lambda f, a, r, s: train_imgs[3 : 3 + len(f)], n=4, real_dir=data, seed=0, progress=False,
                        cache_dir=tmp_path / "cache", train_subset=3, nn_candidates=1)
    assert r2["generated"]["memorised_rate"] == 1.0 and r2["generated"]["nn_train_median"] < 1e-3
    assert r2["real_holdout"] == r["real_holdout"]


def test_haar_confidence_is_positive_exactly_where_haar_finds_a_face():
    missing = judges_missing()
    if missing:
        pytest.skip(f"face judges not installed ({', '.join(missing)}): run scripts/install-judges.sh")
    from digitalhuman.face.data import DEFAULT_FACE_DATA, is_holdout

    files = sorted(f for f in (DEFAULT_FACE_DATA / "images").glob("*.jpg") if is_holdout(f.name))[:12]
    if not files:
        pytest.skip(f"no face data at {DEFAULT_FACE_DATA}")
    from PIL import Image

    real = np.stack([np.asarray(Image.open(f).convert("RGB").resize((128, 128))) for f in files])
    flat = np.full((2, 128, 128, 3), 128, np.uint8)
    judges = FaceJudges()
    _, hit = judges.detect(np.concatenate([real, flat]))
    conf = judges.haar_confidence(np.concatenate([real, flat]))
    judges.close()
    assert hit[:12].sum() >= 10 and not hit[12:].any()  # real faces are found, grey squares are not
    assert np.array_equal(conf > 0, hit)


def test_gender_strength_travels_with_the_weights(tmp_path):
    """``gender_strength`` in the weights' metadata is what FaceModel and the evaluator both present."""
    import torch

    from digitalhuman.checkpoint import CheckpointError, load_weights, save_weights
    from digitalhuman.face.gan import AGE_CENTER, FaceGANConfig, present_cond, present_gender
    from digitalhuman.face.model import FaceModel, load_generator

    src, _ = _tiny_generator_files(tmp_path)
    state, cfg, _ = load_weights(src, kind="face_generator")
    state["embed.weight"] = state["embed.weight"] * 50  # a random tiny G barely listens to its condition
    st, strong = tmp_path / "plain.safetensors", tmp_path / "strong.safetensors"
    save_weights(st, state, kind="face_generator", config=FaceGANConfig(**cfg))
    save_weights(strong, state, kind="face_generator", config=FaceGANConfig(**cfg),
                 extra={"gender_strength": "2", "age_strength": "1.5"})
    info = load_generator(strong)[1]
    assert (info["gender_strength"], info["age_strength"]) == (2.0, 1.5)
    assert load_generator(st)[1]["gender_strength"] == load_generator(st)[1]["age_strength"] == 1.0
    assert present_gender(np.array([0.0, 0.5, 1.0]), 2.0).tolist() == [-0.5, 0.5, 1.5]
    c1 = present_cond(np.ones(3), np.array([AGE_CENTER, 55.0, 100.0]), np.zeros(3, np.int64))
    c2 = present_cond(np.ones(3), np.array([AGE_CENTER, 55.0, 100.0]), np.zeros(3, np.int64), 2.0, 1.5)
    assert torch.equal(c1[:, 3:], c2[:, 3:]) and c2[:, 1].tolist() == [1.5] * 3 and c2[:, 0].tolist() == [-0.5] * 3
    assert abs(float(c2[0, 2] - c1[0, 2])) < 1e-6  # the centre stays
    assert c1[1, 2] < c2[1, 2] < 1.0 and c2[2, 2] == 1.0  # older, within the code of age 100

    female, age, race = np.array([0, 0.5, 1], np.float32), np.full(3, AGE_CENTER, np.float32), np.zeros(3, np.int64)
    plain, boosted = generator_from_weights(st), generator_from_weights(strong)
    a, b = plain(female, age, race, 5), boosted(female, age, race, 5)
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[0], b[0]) and not np.array_equal(a[2], b[2])
    # the strengths on the plain weights are the same as the weights that carry them
    assert np.array_equal(b, generator_from_weights(st, gender_strength=2.0, age_strength=1.5)(female, age, race, 5))
    # and the pipeline's FaceModel presents it the same way
    z = np.random.Generator(np.random.PCG64(5)).standard_normal((3, 8), dtype=np.float32)
    m = FaceModel.load(strong)
    assert (m.gender_strength, m.age_strength) == (2.0, 1.5)
    assert np.array_equal(m.generate(z, female, age, race), b)

    bad = tmp_path / "bad.safetensors"
    save_weights(bad, state, kind="face_generator", config=FaceGANConfig(**cfg), extra={"gender_strength": "nan"})
    with pytest.raises(CheckpointError, match="gender_strength"):
        FaceModel.load(bad)
    torch.manual_seed(0)
