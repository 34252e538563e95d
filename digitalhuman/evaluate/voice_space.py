"""Where generated voices sit among real speakers, in the speaker judge's space (issue "voices v2").

Every figure works on speaker means: the unit resemblyzer embeddings of one persona's (or one real
speaker's) lines averaged and normalised again.

- ``frechet_top_pcs``: Fréchet distance between two sets of speaker means after projecting both on
  the top ``k`` principal components of a fitting set (real training speakers): how far the
  generated voices' distribution is from real speakers'. Beside it the same between two halves
  of the held-out real speakers (the real-vs-real floor).
- ``nearest_cosines``: each speaker's highest cosine to any training speaker. Generated voices that
  copied a training speaker would sit near the top; the held-out real speakers' values are the
  reference distribution.
- ``by_gender``: the mean cosine between different speakers of the same gender, per gender.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .common import unit_rows as unit


def speaker_means(emb: np.ndarray, ids: Sequence) -> tuple[np.ndarray, list]:
    """``(means (S, D) unit, ids (S,))`` in first-seen order; rows with NaN are skipped."""
    order, groups = [], {}
    for e, i in zip(np.asarray(emb, np.float64), ids):
        if not np.isfinite(e).all():
            continue
        if i not in groups:
            groups[i] = []
            order.append(i)
        groups[i].append(unit(e))
    return (unit(np.stack([np.mean(groups[i], 0) for i in order])) if order else np.zeros((0, np.shape(emb)[1])),
            order)


def frechet_top_pcs(gen: np.ndarray, real: np.ndarray, fit: np.ndarray, k: int = 16) -> float:
    """Fréchet distance of ``gen`` vs ``real`` (speaker means) in the top ``k`` PCs of ``fit``."""
    mu = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mu, full_matrices=False)
    basis = vt[:k].T
    from .faces import frechet_distance  # the face evaluation's, on identity embeddings

    return frechet_distance((gen - mu) @ basis, (real - mu) @ basis)


def real_floor(real: np.ndarray, fit: np.ndarray, k: int = 16, splits: int = 20, seed: int = 0) -> float:
    """Median Fréchet distance between random halves of ``real`` (the real-vs-real figure)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out = []
    for _ in range(splits):
        p = rng.permutation(len(real))
        h = len(real) // 2
        out.append(frechet_top_pcs(real[p[:h]], real[p[h:2 * h]], fit, k))
    return float(np.median(out))


def nearest_cosines(query: np.ndarray, train: np.ndarray) -> np.ndarray:
    """(Q,) highest cosine of each query speaker mean to any training speaker mean."""
    return (unit(query) @ unit(train).T).max(1)


def summary(x: np.ndarray) -> dict:
    x = np.asarray(x, np.float64)
    return {"median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "max": float(x.max()), "n": int(len(x))}


def by_gender(means: np.ndarray, genders: Sequence[str]) -> dict:
    """Mean cosine between different speakers of the same gender, per gender (NaN with < 2)."""
    out = {}
    g = np.asarray(genders)
    for name in ("female", "male"):
        m = unit(means[g == name])
        if len(m) < 2:
            out[name] = float("nan")
            continue
        c = m @ m.T
        out[name] = float(c[np.triu_indices(len(m), 1)].mean())
    return out


def speaker_space(p_emb: np.ndarray, p_ids: Sequence, p_genders: Sequence[str], r_emb: np.ndarray,
                  r_ids: Sequence, r_female: np.ndarray, r_holdout: np.ndarray, k: int = 16) -> dict:
    """The figures of this module for personas vs real speakers (``r_holdout`` marks held-out clips)."""
    gen, gen_ids = speaker_means(p_emb, p_ids)
    gmap = dict(zip(p_ids, p_genders))
    tr, tr_ids = speaker_means(r_emb[~r_holdout], np.asarray(r_ids)[~r_holdout])
    ho, ho_ids = speaker_means(r_emb[r_holdout], np.asarray(r_ids)[r_holdout])
    fem = dict(zip(r_ids, r_female))
    return {
        "frechet_top16": frechet_top_pcs(gen, ho, tr, k),
        "frechet_top16_real_vs_real": real_floor(ho, tr, k),
        "nearest_train_cos": {"generated": summary(nearest_cosines(gen, tr)),
                              "real_holdout": summary(nearest_cosines(ho, tr))},
        "same_gender_cos": {"generated": by_gender(gen, [gmap[i] for i in gen_ids]),
                            "real_holdout": by_gender(ho, ["female" if fem[i] == 1 else "male" for i in ho_ids])},
        "pcs": k, "n_generated": len(gen), "n_train_speakers": len(tr), "n_holdout_speakers": len(ho),
    }
