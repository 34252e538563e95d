"""Fit the portrait directions and landmark regressor from the outside judge's landmarks.

Training-side code (needs the face judges: MediaPipe Face Mesh); inference only reads the shipped
``portrait_directions.safetensors`` (``directions.py``).

    OMP_NUM_THREADS=1 python -m digitalhuman.portrait.fit --seeds 900000-901999 --out /work/runs/portrait
    python scripts/ship_weights.py --portrait /work/runs/portrait/portrait_directions.safetensors \
        [--portrait-eval eval_seed0.json eval_seed1.json]   # copies it and writes its card entry

About a minute on one core (2,000 faces, Face Mesh on each). Re-fit whenever the face generator
changes: the direction and the landmark positions are the generator's. The shipped fit: held-out
opening r 0.73, landmark error median 1.4 px, 90th percentile 3.2 px (a mean template: 2.5 px).

1. ``collect``: personas of the tuning seeds (never used by ``evaluate portraits``) -> their faces at
   the pipeline's psi -> Face Mesh landmarks (128 px coordinates). Saved to ``collect.npz`` (resumes).
2. ``fit``: a ridge direction in the face code for the mouth opening (inner-lip gap / face height),
   and a ridge regressor from (face code, gender, age, group) to the landmarks ``directions.py``
   uses, with its held-out error in px.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .directions import LANDMARKS, features, mouth_opening_of

PAD = 32


def face_mesh():
    import mediapipe as mp

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                           min_detection_confidence=0.3)


def mesh_landmarks(fm, imgs: np.ndarray) -> np.ndarray:
    """uint8 (N, 128, 128, 3) -> (N, 478, 2) float32 px in the 128 px frame; NaN where no face."""
    out = np.full((len(imgs), 478, 2), np.nan, np.float32)
    for i, im in enumerate(imgs):
        p = np.ascontiguousarray(np.pad(im, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="edge"))
        r = fm.process(p)
        if r.multi_face_landmarks:
            lm = r.multi_face_landmarks[0].landmark
            H, W = p.shape[:2]
            out[i] = np.array([(q.x * W - PAD, q.y * H - PAD) for q in lm], np.float32)
    return out


def persona_inputs(prior, seeds):
    from ..fusion import RACES, SL_FACE, fuse
    from ..persona import persona_latent

    lat = [persona_latent(int(s)) for s in seeds]
    tr = [fuse(prior, x).traits for x in lat]
    codes = np.stack([x[SL_FACE] for x in lat]).astype(np.float32)
    female = np.array([t["female"] for t in tr], np.float32)
    age = np.array([t["age"] for t in tr], np.float32)
    race = np.array([RACES.index(t["race"]) for t in tr], np.int64)
    return codes, female, age, race


def collect(seeds: np.ndarray, out: Path, batch: int = 64) -> dict:
    import torch

    from ..pipeline import DEFAULT_PSI, PersonaPipeline

    torch.set_num_threads(1)
    path = out / "collect.npz"
    if path.is_file():
        d = dict(np.load(path))
        if len(d["seeds"]) == len(seeds) and np.all(d["seeds"] == seeds):
            return d
    pipe = PersonaPipeline.from_pretrained(voice=False)
    codes, female, age, race = persona_inputs(pipe.prior, seeds)
    fm = face_mesh()
    imgs, lms = [], []
    t0 = time.time()
    for i in range(0, len(seeds), batch):
        sl = slice(i, i + batch)
        im = pipe.face.generate(codes[sl], female[sl], age[sl], race[sl], psi=DEFAULT_PSI)
        imgs.append(im)
        lms.append(mesh_landmarks(fm, im))
        print(f"collect {i + len(im)}/{len(seeds)} {time.time() - t0:.0f}s", flush=True)
    d = {"seeds": seeds, "codes": codes, "female": female, "age": age, "race": race,
         "images": np.concatenate(imgs), "landmarks": np.concatenate(lms)}
    out.mkdir(parents=True, exist_ok=True)
    np.savez(path, **d)
    return d


def ridge(X: np.ndarray, Y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an unpenalised intercept: ``Y ~ X @ W + b``."""
    mx, my = X.mean(0), Y.mean(0)
    Xc, Yc = X - mx, Y - my
    W = np.linalg.solve(Xc.T @ Xc + lam * np.eye(X.shape[1]), Xc.T @ Yc)
    return W, my - mx @ W


def fit(d: dict, lam_open: float = 30.0, lam_lm: float = 10.0) -> tuple[dict, dict]:
    ok = np.isfinite(d["landmarks"]).all((1, 2))
    X = features(d["codes"], d["female"], d["age"], d["race"])[ok]
    lm = d["landmarks"][ok][:, LANDMARKS]  # (N, K, 2)
    opening = mouth_opening_of(d["landmarks"][ok])
    n = len(X)
    tr = np.arange(n) < int(0.8 * n)
    report = {"faces": int(len(ok)), "found": int(ok.sum())}
    # mouth opening direction: ridge on the face code alone
    Zc = d["codes"][ok]
    w, b = ridge(Zc[tr], opening[tr, None], lam_open)
    pred = (Zc[~tr] @ w + b)[:, 0]
    report["opening_heldout_r"] = float(np.corrcoef(pred, opening[~tr])[0, 1])
    w_all, b_all = ridge(Zc, opening[:, None], lam_open)
    gain = float(np.linalg.norm(w_all))
    u = (w_all[:, 0] / gain).astype(np.float32)
    # landmark regressor
    Y = lm.reshape(n, -1)
    W, c = ridge(X[tr], Y[tr], lam_lm)
    err = np.linalg.norm(((X[~tr] @ W + c) - Y[~tr]).reshape(-1, len(LANDMARKS), 2), axis=-1)
    mean_err = np.linalg.norm((Y[~tr].mean(0) * 0 + Y[tr].mean(0) - Y[~tr]).reshape(-1, len(LANDMARKS), 2), axis=-1)
    report["landmark_heldout_px"] = {"median": float(np.median(err)), "p90": float(np.percentile(err, 90)),
                                     "mean_template_median": float(np.median(mean_err))}
    W, c = ridge(X, Y, lam_lm)
    tensors = {"open_direction": u, "open_gain": np.array([gain], np.float32),
               "open_bias": np.array([float(b_all[0])], np.float32),
               "landmark_W": W.astype(np.float32), "landmark_b": c.astype(np.float32),
               "landmark_ids": np.array(LANDMARKS, np.int64)}
    report["opening_quantiles"] = [float(q) for q in np.percentile(opening, [5, 25, 50, 75, 95])]
    return tensors, report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="900000-901999", help="tuning persona seeds, a-b")
    ap.add_argument("--out", default="/work/runs/portrait")
    ap.add_argument("--ship", default=None, help="write the fitted file here (e.g. digitalhuman/weights/)")
    a = ap.parse_args(argv)
    lo, hi = (int(x) for x in a.seeds.split("-"))
    out = Path(a.out)
    d = collect(np.arange(lo, hi + 1), out)
    tensors, report = fit(d)
    report["seeds"] = a.seeds
    print(json.dumps(report, indent=1))
    from .directions import save_directions

    save_directions(out / "portrait_directions.safetensors", tensors, report)
    (out / "fit_report.json").write_text(json.dumps(report, indent=1))
    if a.ship:
        save_directions(Path(a.ship) / "portrait_directions.safetensors", tensors, report)


if __name__ == "__main__":
    main()
