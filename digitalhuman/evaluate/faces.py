"""Face quality checks by external judges (tools nobody on this project wrote).

``evaluate_faces(generate, n)`` asks ``generate`` for ``n`` faces whose conditions (gender,
age, appearance group) are drawn from the labels of the held-out faces, runs the judges on
them, and runs the same judges on held-out real faces in the same call as a reference:

========================  ==============================================================
figure                    what it is
========================  ==============================================================
``mediapipe_rate``        MediaPipe (legacy, short-range, confidence >= 0.5) face detection rate
``mediapipe_score_mean``  its mean best detection score (0 where none): real faces score high,
                          face-like blobs pass the rate at ~0.65 (seen on an early checkpoint)
``haar_rate``             OpenCV Haar frontal-face detection rate
``fd_dlib``               Frechet distance in dlib's 128-D identity space vs held-out faces
``kid_dlib``              KID (cubic kernel MMD^2, unbiased) in the same space
``identity_diversity``    mean pairwise identity distance (dlib: < 0.6 = same person)
``same_identity_pairs``   fraction of pairs closer than 0.6
``memorised_rate``        fraction of faces within 0.25 identity distance of a training face
``nn_train_median``       median identity distance to the nearest training face (searched)
``gender_match_adult``    judged gender == requested gender, faces asked for age 18-80
``age_spearman``          Spearman rho between requested and judged age (all faces)
========================  ==============================================================

Protocol (as ``../shared/evaluators/face_eval.py``): every image, generated or real, is taken at
the generator's native resolution ``R`` (real faces are resized to ``R`` first, so both sides
carry the same blur), resized to 128 px (Lanczos); detectors see it padded by 32 px of edge
colour, identity embeddings and the age/gender judge see the unpadded 128 px crop.

Real reference: the fixed hold-out split (``face.data.is_holdout``, never trained on) is
shuffled with the seed and cut in two: ``A`` (``min(n, H // 2)`` faces) is the real row of the
report and lends its labels to the first generated faces; ``B`` (the rest) is the reference
set that both rows' FD/KID are measured against, so both are measured at the same sample size.

Memorisation: an exhaustive identity search over the ~20k training faces costs ~30 minutes of
dlib time, so the training faces searched are (i) a fixed random subset (``train_subset``,
default 1,000, PCG64 seed 0) and (ii) for every judged face, the ``nn_candidates`` (default 3)
training faces nearest to it or its mirror image in 16x16 colour-thumbnail space, where a
copied training image cannot hide. Embeddings of real faces are cached per data folder and
resolution in ``cache_dir`` when one is given.

The judges are an optional extra: install them with ``scripts/install-judges.sh``.

  python -m digitalhuman.evaluate.faces --weights runs/00000-face-r64/checkpoint.pt \\
      --real ../shared/data/utkface128 --n 500 --out-json face_eval.json --cache-dir cache/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..face.data import DEFAULT_FACE_DATA, is_holdout, load_split, read_labels
from .common import jsonable
from .face_judges import DETECT_PAD, INSTALL_HINT, JUDGE_SIZE, FaceJudges, EmbeddingCache, judges_missing, to_judge_size

GenerateFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]

SAME_IDENTITY = 0.6  # dlib's own threshold for "same person"
MEMORISED = 0.25  # identity distance under which a face counts as a copy of a training face
ADULT_AGES = (18, 80)  # requested ages for which the gender check is made


# ---------------------------------------------------------------------------- pure numerics
def frechet_distance(x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to ``x`` (N, D) and ``y`` (M, D)."""
    assert x.ndim == 2 and y.ndim == 2 and x.shape[1] == y.shape[1], (x.shape, y.shape)
    assert len(x) >= 2 and len(y) >= 2, "need at least two samples on each side"
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return frechet_distance_from_stats(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False), eps)


def frechet_distance_from_stats(mu1, s1, mu2, s2, eps: float = 1e-6) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``; regularised when ``S1 S2`` is singular."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(s1), np.atleast_2d(s2)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # N < D makes the covariances singular
        off = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean.real))


def kid(x: np.ndarray, y: np.ndarray, n_subsets: int = 50, subset_size: int = 100, seed: int = 0) -> float:
    """Kernel Inception Distance estimator (unbiased MMD^2, cubic polynomial kernel) over subsets."""
    rng = np.random.Generator(np.random.PCG64(seed))
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
    if m < 2:
        return float("nan")
    vals = []
    for _ in range(n_subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    return float(np.mean(vals))


def pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances (N, M) between rows of ``x`` (N, D) and ``y`` (M, D)."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T
    return np.sqrt(np.maximum(d2, 0))


def diversity(emb: np.ndarray, max_n: int = 1000) -> tuple[float, float]:
    """``(mean pairwise identity distance, fraction of pairs under SAME_IDENTITY)`` of the first ``max_n``."""
    s = emb[:max_n]
    iu = np.triu_indices(len(s), 1)
    dd = pairwise_distances(s, s)[iu]
    return float(dd.mean()), float((dd < SAME_IDENTITY).mean())


def split_holdout(n_holdout: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into the hold-out labels: ``(cond_idx (n,), real_idx, ref_idx)``.

    ``real_idx`` (A, ``min(n, H // 2)`` faces) and ``ref_idx`` (B, the rest) partition the hold-out
    set. Generated face ``i`` gets the labels of ``cond_idx[i]``: A's faces in order, then (when
    ``n`` exceeds A) draws with replacement from the whole hold-out set.
    """
    if n_holdout < 4:
        raise ValueError(f"need at least 4 held-out faces, got {n_holdout}")
    rng = np.random.Generator(np.random.PCG64(seed))
    perm = rng.permutation(n_holdout)
    n_real = min(n, n_holdout // 2)
    real_idx, ref_idx = perm[:n_real], perm[n_real:]
    cond_idx = np.concatenate([real_idx, rng.integers(0, n_holdout, n - n_real)])
    return cond_idx, real_idx, ref_idx


def label_agreement(req_female, req_age, judged_female, judged_age) -> dict:
    """Gender match over requested adults and Spearman rho of requested vs judged age."""
    from scipy.stats import spearmanr

    req_female, req_age = np.asarray(req_female, np.float64), np.asarray(req_age, np.float64)
    judged_female, judged_age = np.asarray(judged_female, np.float64), np.asarray(judged_age, np.float64)
    ok = np.isfinite(judged_female) & np.isfinite(judged_age)  # the judge failed on NaN rows
    adult = ok & (req_age >= ADULT_AGES[0]) & (req_age <= ADULT_AGES[1])
    match = (judged_female[adult] >= 0.5) == (req_female[adult] >= 0.5)
    rho = float("nan")
    if ok.sum() >= 3 and np.ptp(req_age[ok]) > 0 and np.ptp(judged_age[ok]) > 0:
        rho = float(spearmanr(req_age[ok], judged_age[ok]).statistic)
    return {"gender_match_adult": float(match.mean()) if adult.any() else float("nan"),
            "n_adult": int(adult.sum()), "n_judged": int(ok.sum()), "age_spearman": rho,
            "judged_age_mean": float(judged_age[ok].mean()) if ok.any() else float("nan")}


def thumbnails(images: np.ndarray, size: int = 16, chunk: int = 2048) -> np.ndarray:
    """uint8 (N, R, R, 3) -> float32 (N, size, size, 3) block means (R a multiple of size)."""
    N, R = images.shape[0], images.shape[1]
    if R % size:
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BOX), np.float32) for im in images])
    f = R // size
    out = np.empty((N, size, size, 3), np.float32)
    for s in range(0, N, chunk):
        out[s : s + chunk] = images[s : s + chunk].reshape(-1, size, f, size, f, 3).mean((2, 4), dtype=np.float32)
    return out


def pixel_candidates(queries: np.ndarray, pool: np.ndarray, k: int = 3, size: int = 16) -> np.ndarray:
    """Indices into ``pool`` of the ``k`` images nearest each query or its mirror image (thumbnail L2)."""
    if k <= 0 or len(pool) == 0:
        return np.zeros(0, np.int64)
    k = min(k, len(pool))
    q = thumbnails(queries, size)
    q = np.concatenate([q, q[:, :, ::-1]]).reshape(2 * len(queries), -1)  # mirror thumbnails = thumbnails of mirrors
    p = thumbnails(pool, size).reshape(len(pool), -1)
    pn = (p * p).sum(1)
    out = []
    for s in range(0, len(q), 256):
        qq = q[s : s + 256]
        d = pn[None] - 2 * qq @ p.T  # |q|^2 is constant per row
        out.append(np.argpartition(d, k - 1, axis=1)[:, :k])
    return np.unique(np.concatenate(out).ravel())

# ---------------------------------------------------------------------------- evaluation
def evaluate_faces(
    generate: GenerateFn,
    n: int = 500,
    real_dir: str | Path = DEFAULT_FACE_DATA,
    train_dir: str | Path | None = None,
    seed: int = 0,
    out_json: str | Path | None = None,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    train_subset: int = 1000,
    nn_candidates: int = 3,
) -> dict:
    """Judge ``n`` generated faces against held-out real faces; returns (and optionally writes) a dict.

    ``generate(female (n,), age (n,), race (n,) int, seed) -> uint8 (n, R, R, 3)``. ``train_dir``
    (default ``real_dir``) gives the training split searched for memorised faces. Result:
    ``{"generated": figures, "real_holdout": figures, "setup": ..., "seconds": ...}``.
    """
    t_all = time.perf_counter()
    secs: dict[str, float] = {}
    log = (lambda m: print(f"[evaluate_faces] {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)

    judges = FaceJudges()  # fail early, before any generation
    recs = [r for r in read_labels(real_dir) if is_holdout(r.file)]
    h_female = np.array([r.female for r in recs], np.float32)
    h_age = np.array([r.age for r in recs], np.float32)
    h_race = np.array([r.race for r in recs], np.int64)
    cond_idx, real_idx, ref_idx = split_holdout(len(recs), n, seed)
    female, age, race = h_female[cond_idx], h_age[cond_idx], h_race[cond_idx]

    log(f"generating {n} faces (seed {seed})")
    t = time.perf_counter()
    gen = np.asarray(generate(female, age, race, seed))
    secs["generate"] = time.perf_counter() - t
    assert gen.dtype == np.uint8 and gen.ndim == 4 and gen.shape[0] == n and gen.shape[3] == 3, (gen.dtype, gen.shape)
    R = gen.shape[1]

    log(f"loading real faces at {R} px")
    t = time.perf_counter()
    h_imgs, _, _, _, h_files = load_split(real_dir, R, "holdout", cache_dir)
    assert h_files == [r.file for r in recs]
    train_dir = Path(train_dir) if train_dir is not None else Path(real_dir)
    tr_imgs, _, _, _, tr_files = load_split(train_dir, R, "train", cache_dir)
    secs["load_real"] = time.perf_counter() - t

    real = h_imgs[real_idx]
    gen128, real128 = to_judge_size(gen), to_judge_size(real)

    log("detectors (MediaPipe, Haar)")
    t = time.perf_counter()
    det = {"generated": judges.detect(gen128), "real_holdout": judges.detect(real128)}
    secs["detect"] = time.perf_counter() - t

    log("age and gender judge")
    t = time.perf_counter()
    ag = {"generated": judges.judge_age_gender(gen128), "real_holdout": judges.judge_age_gender(real128)}
    secs["age_gender"] = time.perf_counter() - t

    log("dlib identity embeddings")
    t = time.perf_counter()
    h_cache = EmbeddingCache(cache_dir, real_dir, R)
    same_dir = Path(train_dir).resolve() == Path(real_dir).resolve()
    tr_cache = h_cache if same_dir else EmbeddingCache(cache_dir, train_dir, R)  # one file per folder
    emb_gen = judges.embed(gen128, progress, "dlib generated")
    emb_real = h_cache.get(judges, [h_files[i] for i in real_idx], h_imgs[real_idx], progress, "dlib holdout A")
    emb_ref = h_cache.get(judges, [h_files[i] for i in ref_idx], h_imgs[ref_idx], progress, "dlib holdout B")
    secs["embed_eval"] = time.perf_counter() - t

    log("training faces for the memorisation search")
    t = time.perf_counter()
    sub = np.sort(np.random.Generator(np.random.PCG64(0)).choice(len(tr_files), min(train_subset, len(tr_files)), replace=False))
    # each row is searched in the subset plus its own candidates: the real row's figures do not move with the generator
    searched = {"generated": np.union1d(sub, pixel_candidates(gen, tr_imgs, nn_candidates)),
                "real_holdout": np.union1d(sub, pixel_candidates(real, tr_imgs, nn_candidates))}
    search = np.union1d(searched["generated"], searched["real_holdout"])
    emb_search = tr_cache.get(judges, [tr_files[i] for i in search], tr_imgs[search], progress, "dlib train")
    secs["embed_train"] = time.perf_counter() - t
    judges.close()

    rows = {}
    for name, emb, req in (("generated", emb_gen, (female, age)),
                           ("real_holdout", emb_real, (h_female[real_idx], h_age[real_idx]))):
        mp_score, haar_hit = det[name]
        div, same = diversity(emb)
        nn = pairwise_distances(emb, emb_search[np.searchsorted(search, searched[name])]).min(1)
        rows[name] = {
            "n": int(len(emb)),
            "mediapipe_rate": float((mp_score > 0).mean()),
            "mediapipe_score_mean": float(mp_score.mean()),
            "haar_rate": float(haar_hit.mean()),
            "fd_dlib": frechet_distance(emb, emb_ref),
            "kid_dlib": kid(emb, emb_ref),
            "identity_diversity": div,
            "same_identity_pairs": same,
            "memorised_rate": float((nn < MEMORISED).mean()),
            "nn_train_median": float(np.median(nn)),
            "n_train_searched": int(len(searched[name])),
            **label_agreement(req[0], req[1], *ag[name]),
        }
    secs["total"] = time.perf_counter() - t_all
    result = jsonable({
        **rows,
        "setup": {
            "n": n, "seed": seed, "resolution": R, "judge_size": JUDGE_SIZE, "detect_pad": DETECT_PAD,
            "real_dir": str(real_dir), "train_dir": str(train_dir), "holdout_faces": len(recs),
            "real_row_faces": int(len(real_idx)), "fd_reference_faces": int(len(ref_idx)),
            "train_faces": len(tr_files),
            "train_subset": int(len(sub)), "nn_candidates": nn_candidates,
            "memorised_threshold": MEMORISED, "same_identity_threshold": SAME_IDENTITY, "adult_ages": list(ADULT_AGES),
        },
        "seconds": {k: round(v, 1) for k, v in secs.items()},
    })
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------- generator loading
def generator_from_weights(path: str | Path, psi: float = 1.0, batch: int = 256,
                           gender_strength: float | None = None, age_strength: float | None = None,
                           age_map="weights", age_shift="weights") -> GenerateFn:
    """A ``generate`` function from a shipped ``face_generator.safetensors`` or a training ``checkpoint.pt``.

    A training checkpoint uses its EMA generator and the model config in the ``config.json``
    beside it. Faces are made by onnxruntime, as the pipeline makes them (``face.model.OnnxFace``).
    Face ``i`` of a call gets row ``i`` of ``PCG64(seed).standard_normal((n, z_dim))``
    (times ``psi``), so images do not depend on ``batch``. The requested gender and age are presented
    with ``gender_strength`` and ``age_strength`` (default: the weights' own, as the pipeline does;
    1 for checkpoints).
    """
    import torch

    from ..face.gan import present_cond, shift_code, to_pixels, truncate
    from ..face.model import OnnxFace, load_generator

    G, info = load_generator(path)
    net = OnnxFace(G)  # as the pipeline makes faces
    gs = info["gender_strength"] if gender_strength is None else float(gender_strength)
    ags = info["age_strength"] if age_strength is None else float(age_strength)
    amap = info["age_map"] if age_map == "weights" else age_map  # None: condition on the requested age
    ashift = info["age_shift"] if age_shift == "weights" else age_shift  # None: codes as drawn

    @torch.inference_mode()
    def generate(female: np.ndarray, age: np.ndarray, race: np.ndarray, seed: int) -> np.ndarray:
        n = len(female)
        z = np.random.Generator(np.random.PCG64(seed)).standard_normal((n, G.cfg.z_dim), dtype=np.float32)
        c = present_cond(female, age, np.asarray(race, np.int64), gs, ags, amap)
        zt = truncate(torch.from_numpy(z), psi)
        if ashift is not None:
            zt = torch.from_numpy(shift_code(zt.numpy(), np.asarray(age, np.float32), ashift))
        out = [net(zt[s : s + batch], c[s : s + batch]) for s in range(0, n, batch)]
        x = torch.cat(out) if out else torch.zeros(0, 3, G.cfg.out_resolution, G.cfg.out_resolution)
        return to_pixels(x)

    generate.resolution, generate.z_dim = G.cfg.out_resolution, G.cfg.z_dim
    generate.step = info["step"]  # training steps behind these weights, if recorded
    generate.gender_strength, generate.age_strength, generate.age_map = gs, ags, amap
    generate.age_shift = ashift
    return generate


def pipeline_for(weights: str | Path, psi: float):
    """A face-only ``PersonaPipeline`` around ``weights`` (a weights folder, or a face generator file
    beside the shipped trait prior) for the persona rows (ageing, families)."""
    from ..face.model import FaceModel
    from ..pipeline import PersonaPipeline
    from ..weights_card import WEIGHTS_DIR

    weights = Path(weights)
    if weights.is_dir():
        pipe = PersonaPipeline.from_pretrained(weights, voice=False)
    else:  # the shipped trait prior only: the face model is the one given
        pipe = PersonaPipeline.from_pretrained(WEIGHTS_DIR, face=False, voice=False)
        if weights.suffix == ".safetensors":
            pipe.face = FaceModel.load(weights)
        else:  # a training checkpoint: its EMA generator, presented as trained
            from ..face.model import load_generator

            pipe.face = FaceModel(load_generator(weights)[0])
    pipe.psi = psi
    return pipe


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="digitalhuman evaluate faces",
        description="Judge generated faces against held-out real faces (detection, identity FD, "
                    "diversity, memorisation, gender/age agreement) and print one JSON object.",
        epilog="example: python -m digitalhuman.evaluate.faces --weights runs/00000-face-r64/checkpoint.pt "
               "--real ../shared/data/utkface128 --n 500 --out-json face_eval.json --cache-dir cache/",
    )
    ap.add_argument("--weights", default=None,
                    help="face_generator.safetensors, a weights folder or a training checkpoint.pt (default: the shipped weights)")
    ap.add_argument("--real", default=str(DEFAULT_FACE_DATA), help="labelled face folder (hold-out split = real reference)")
    ap.add_argument("--train", default=None, help="face folder whose train split is searched for copies (default: --real)")
    ap.add_argument("--n", type=int, default=500, help="generated faces (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--psi", type=float, default=None, help="truncation (1 = none; default: the pipeline's, digitalhuman.pipeline.DEFAULT_PSI)")
    ap.add_argument("--gender-strength", type=float, default=None,
                    help="present the requested gender with this strength (default: the weights' own, as the pipeline)")
    ap.add_argument("--age-strength", type=float, default=None,
                    help="present the requested age with this strength (default: the weights' own, as the pipeline)")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--cache-dir", default=None, help="cache real-face arrays and embeddings here")
    ap.add_argument("--train-subset", type=int, default=1000, help="random training faces searched (default 1000)")
    ap.add_argument("--nn-candidates", type=int, default=3, help="pixel-nearest training faces searched per face")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--no-persona-rows", action="store_true",
                    help="skip the age ladder, ageing, family and detail rows (face_persona_rows)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    from ..pipeline import DEFAULT_PSI
    from ..weights_card import WEIGHTS_DIR
    from .common import prepare

    code = prepare(a.threads, judges_missing(), INSTALL_HINT)
    if code is not None:
        return code

    a.weights = a.weights or str(WEIGHTS_DIR)
    a.psi = DEFAULT_PSI if a.psi is None else a.psi
    gen = generator_from_weights(a.weights, psi=a.psi, gender_strength=a.gender_strength, age_strength=a.age_strength)
    res = evaluate_faces(gen, n=a.n, real_dir=a.real, train_dir=a.train, seed=a.seed, out_json=a.out_json,
                         progress=not a.quiet, cache_dir=a.cache_dir, train_subset=a.train_subset,
                         nn_candidates=a.nn_candidates)
    res["setup"].update(weights=str(a.weights), weights_step=gen.step, psi=a.psi, gender_strength=gen.gender_strength,
                        age_strength=gen.age_strength, age_map=gen.age_map,
                        age_shift=None if gen.age_shift is None else {"requested": gen.age_shift[0], "shift": gen.age_shift[1]})
    if not a.no_persona_rows:
        from .face_judges import FaceJudges
        from .face_persona_rows import persona_rows

        judges = FaceJudges()
        log = (lambda m: print(f"[evaluate_faces] {m}", file=sys.stderr, flush=True)) if not a.quiet else (lambda m: None)
        res["persona_rows"] = jsonable(persona_rows(pipeline_for(a.weights, a.psi), gen, judges, a.real,
                                                    a.cache_dir, log=log, seed_offset=a.seed * 100_000))
        judges.close()
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
