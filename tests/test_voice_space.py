"""The speaker-space figures of evaluate voices (issue "voices v2"), on synthetic embeddings."""

import numpy as np
import pytest

from digitalhuman.evaluate.voice_space import (by_gender, frechet_top_pcs, nearest_cosines, real_floor,
                                               speaker_means, speaker_space)


def _cloud(rng, n, centre, spread):
    return centre + spread * rng.standard_normal((n, len(centre)))


def test_frechet_separates_a_tight_cluster_from_real_spread():
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(32)
    fit = _cloud(rng, 300, centre, 1.0)
    real = _cloud(rng, 200, centre, 1.0)
    alike = _cloud(rng, 200, centre, 1.0)
    tight = _cloud(rng, 200, centre + 0.5, 0.2)  # all personas near one voice
    assert frechet_top_pcs(alike, real, fit, k=8) < 0.5 * frechet_top_pcs(tight, real, fit, k=8)
    assert real_floor(real, fit, k=8) < frechet_top_pcs(tight, real, fit, k=8)


def test_speaker_means_and_neighbours():
    emb = np.array([[1, 0], [1, 0.1], [0, 1], [np.nan, 0]], float)
    means, ids = speaker_means(emb, ["a", "a", "b", "c"])
    assert ids == ["a", "b"] and np.allclose(np.linalg.norm(means, axis=1), 1)  # NaN rows skipped
    near = nearest_cosines(np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert near == pytest.approx([1.0, 0.8])
    bg = by_gender(np.array([[1, 0], [0.8, 0.6], [0, 1.0]]), ["female", "female", "male"])
    assert bg["female"] == pytest.approx(0.8) and np.isnan(bg["male"])


def test_speaker_space_end_to_end_shapes():
    rng = np.random.default_rng(1)
    r_emb = rng.standard_normal((120, 16))
    r_ids = np.repeat(np.arange(60).astype(str), 2)
    r_female = np.repeat(np.arange(60) % 2, 2)
    r_hold = np.repeat(np.arange(60) % 4 == 0, 2)
    p_emb = rng.standard_normal((24, 16))
    out = speaker_space(p_emb, np.repeat(np.arange(6), 4), np.repeat(["female", "male"] * 3, 4), r_emb, r_ids,
                        r_female, r_hold, k=4)
    assert out["n_generated"] == 6 and out["n_holdout_speakers"] == 15 and out["n_train_speakers"] == 45
    assert out["frechet_top16"] > 0 and out["nearest_train_cos"]["generated"]["n"] == 6
