"""Face checks of whole personas (issue "faces v2"): age across the range, ageing, families, detail.

Each check uses the outside judges of ``face_judges`` on faces made the way users get them:

==================  ====================================================================
row                 what it is
==================  ====================================================================
``age_ladder``      ``per_age`` faces at each requested age of ``LADDER_AGES`` (half women,
                    groups at random, the weights' presentation): the median judged age per
                    step, whether it rises with every step, and the mean absolute error of
                    judged vs requested age. Beside it the same judge on real hold-out faces
                    of those ages (within +-2 years; up to ``per_age`` each).
``aged``            ``n`` random personas of ages 20-52 and ``PersonaPipeline.aged(p, years)``
                    of each: median judged age gain, and the share whose two faces stay one
                    identity for dlib (distance < 0.6).
``families``        ``n`` personas with 3 siblings each (``PersonaPipeline.sibling``): share of
                    the 6 in-family pairs closer than ``NEAR_COPY`` (near copies), median
                    in-family distance, and the share of families whose persona is closer to
                    its own siblings than to the siblings of the other families (strangers of
                    the same gender).
``detail``          mean variance of the Laplacian of the grey image at 128 px (faces under
                    128 px are upsampled bilinearly first), generated / real hold-out.
==================  ====================================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LADDER_AGES = (8, 15, 25, 40, 60, 80)
NEAR_COPY = 0.35  # dlib distance under which two relatives look like one person
SAME_IDENTITY = 0.6
AGED_RANGE = (20.0, 52.0)


def judged_ages(judges, imgs: np.ndarray) -> np.ndarray:
    from .face_judges import to_judge_size

    return judges.judge_age_gender(to_judge_size(imgs))[1]


def age_ladder(generate, judges, real: tuple[np.ndarray, np.ndarray] | None = None, per_age: int = 30,
               seed: int = 777) -> dict:
    """``generate(female, age, race, seed) -> uint8 faces``; ``real`` = (hold-out images, their ages)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out: dict = {"ages": list(LADDER_AGES), "per_age": per_age}
    medians, errors = [], []
    for k, a in enumerate(LADDER_AGES):
        female = (np.arange(per_age) % 2).astype(np.float32)
        race = rng.integers(0, 5, per_age)
        imgs = generate(female, np.full(per_age, a, np.float32), race, seed + k)
        j = judged_ages(judges, imgs)
        medians.append(float(np.nanmedian(j)))
        errors.append(np.abs(j[np.isfinite(j)] - a))
    out["median_judged"] = medians
    out["increasing"] = bool(all(b > a for a, b in zip(medians, medians[1:])))
    out["mae"] = float(np.mean(np.concatenate(errors)))
    if real is not None:
        imgs, ages = real
        r_med, r_err = [], []
        for a in LADDER_AGES:
            idx = np.flatnonzero(np.abs(ages - a) <= 2)[:per_age]
            j = judged_ages(judges, imgs[idx]) if len(idx) else np.array([np.nan])
            r_med.append(float(np.nanmedian(j)))
            r_err.append(np.abs(j[np.isfinite(j)] - ages[idx][np.isfinite(j)]))
        out["real_median_judged"] = r_med
        out["real_mae"] = float(np.mean(np.concatenate(r_err)))
    return out


def _dist(judges, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from .face_judges import to_judge_size

    ea, eb = judges.embed(to_judge_size(a)), judges.embed(to_judge_size(b))
    return np.linalg.norm(ea - eb, axis=1)


def aged_row(pipe, judges, n: int = 40, years: float = 25.0, seed: int = 5000) -> dict:
    rng = np.random.Generator(np.random.PCG64(seed))
    ages = rng.uniform(*AGED_RANGE, n)
    young, old = [], []
    for i in range(n):
        p = pipe(seed + i, age=float(ages[i]), voice=False)
        young.append(p.face)
        old.append(pipe.aged(p, years, voice=False).face)
    young, old = np.stack(young), np.stack(old)
    gain = judged_ages(judges, old) - judged_ages(judges, young)
    d = _dist(judges, young, old)
    return {"n": n, "years": years, "median_gain": float(np.nanmedian(gain)), "mean_gain": float(np.nanmean(gain)),
            "identity_kept": float(np.mean(d < SAME_IDENTITY)), "median_identity_distance": float(np.median(d))}


def families_row(pipe, judges, n: int = 30, members: int = 3, seed: int = 6000) -> dict:
    from .face_judges import to_judge_size

    faces, genders = [], []
    for i in range(n):
        p = pipe(seed + i, voice=False)
        fam = [p.face] + [pipe.sibling(p, k, voice=False).face for k in range(1, members + 1)]
        faces.append(np.stack(fam))
        genders.append(p.traits["gender"])
    emb = judges.embed(to_judge_size(np.concatenate(faces))).reshape(n, members + 1, -1)
    pairs, closer = [], []
    for f in range(n):
        e = emb[f]
        for a in range(members + 1):
            for b in range(a + 1, members + 1):
                pairs.append(float(np.linalg.norm(e[a] - e[b])))
        own = np.linalg.norm(e[1:] - e[0], axis=1).mean()
        others = [g for g in range(n) if g != f and genders[g] == genders[f]]
        if others:
            strangers = np.linalg.norm(emb[others][:, 1:].reshape(-1, emb.shape[2]) - e[0], axis=1).mean()
            closer.append(own < strangers)
    pairs = np.array(pairs)
    return {"families": n, "members": members + 1, "near_copy_pairs": float(np.mean(pairs < NEAR_COPY)),
            "median_pair_distance": float(np.median(pairs)), "closer_than_strangers": float(np.mean(closer)),
            "near_copy_threshold": NEAR_COPY}


def laplacian_variance(imgs: np.ndarray, size: int = 128) -> float:
    """Mean over faces of the variance of the Laplacian of the grey image at ``size`` px."""
    import torch
    import torch.nn.functional as F
    from scipy.ndimage import laplace

    x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float()
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).numpy()
    return float(np.mean([laplace(g).var() for g in grey]))


def detail_row(generated: np.ndarray, real: np.ndarray) -> dict:
    g, r = laplacian_variance(generated), laplacian_variance(real)
    return {"generated": g, "real_holdout": r, "ratio": g / r, "native_resolution": int(generated.shape[1])}


def persona_rows(pipe, generate, judges, real_dir: str | Path, cache_dir=None, n_detail: int = 200,
                 per_age: int = 30, n_aged: int = 40, n_families: int = 30, log=lambda m: None,
                 seed_offset: int = 0) -> dict:
    """Every row above. ``generate`` as ``evaluate_faces`` takes it; ``pipe`` a ``PersonaPipeline``
    with the same face model (for ageing and families). ``seed_offset`` moves every row to other
    personas (``evaluate faces --seed S`` uses ``S * 100000``)."""
    from ..face.data import load_split

    h_imgs, h_female, h_age, h_race, _ = load_split(real_dir, 128, "holdout", cache_dir)
    rows = {}
    log("detail")
    n_detail = min(n_detail, len(h_imgs))
    rows["detail"] = detail_row(generate(h_female[:n_detail], h_age[:n_detail], h_race[:n_detail], 4242 + seed_offset),
                                h_imgs[:n_detail])
    log("age ladder")
    rows["age_ladder"] = age_ladder(generate, judges, (h_imgs, h_age), per_age=per_age, seed=777 + seed_offset)
    log("aged")
    rows["aged"] = aged_row(pipe, judges, n=n_aged, seed=5000 + seed_offset)
    log("families")
    rows["families"] = families_row(pipe, judges, n=n_families, seed=6000 + seed_offset)
    return rows
