"""Choose the face generator's ``gender_strength`` / ``age_strength`` (and see the voice's
``age_strength``) on personas that no evaluation uses, with the outside judges.

    python scripts/tune_strengths.py face --weights RUN/face_generator.safetensors \
        [--gender 1,1.5,2,2.5] [--age 1,1.5,2] [--n 200]
    python scripts/tune_strengths.py face-age-map --weights W [--up-to 15] [--n 40] [--out F]
    python scripts/tune_strengths.py face-age-shift --weights W [--haar-weight 0.3] [--fit-max-age 80] [--scale 0.8] [--out F]
    python scripts/tune_strengths.py refiner-sharpen [--weights W] [--amounts 0,0.2,0.3,0.4,0.5,0.6] [--n 500]
    python scripts/tune_strengths.py voice [--weights DIR] [--age 1,2,3] [--n 40]

Face: ``n`` adults (ages uniform 18-80, half women, groups at random, psi 0.8, seed 12345), for each
pair of strengths: judged gender = requested, Spearman rho of requested vs judged age, mean judged
age. Voice: ``n`` personas (ages uniform 20-75, seeds 1000..), the fitted voice-age judge of
``evaluate fusion``: Spearman rho of requested vs judged age and the median F0 by age. Needs the
judges (``scripts/install-judges.sh``). Prints one line per setting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",")]


def tune_face(a) -> None:
    import torch
    from scipy.stats import spearmanr

    from digitalhuman.evaluate.face_judges import FaceJudges, to_judge_size
    from digitalhuman.evaluate.faces import generator_from_weights

    judges = FaceJudges()
    rng = np.random.Generator(np.random.PCG64(12345))
    age = rng.uniform(18, 80, a.n).astype(np.float32)
    female = (np.arange(a.n) % 2).astype(np.float32)
    race = rng.integers(0, 5, a.n)
    for gs in floats(a.gender):
        for ags in floats(a.age):
            gen = generator_from_weights(a.weights, psi=0.8, gender_strength=gs, age_strength=ags)
            with torch.inference_mode():
                imgs = gen(female, age, race, seed=12345)
            pf, ja = judges.judge_age_gender(to_judge_size(imgs))
            ok = np.isfinite(pf)
            right = (pf[ok] >= 0.5) == (female[ok] == 1)
            print(f"face gender_strength {gs:g} age_strength {ags:g}: gender {right.mean():.3f} "
                  f"(women {right[female[ok] == 1].mean():.3f}, men {right[female[ok] == 0].mean():.3f}), "
                  f"age rho {spearmanr(age, ja, nan_policy='omit').statistic:.3f}, judged age mean "
                  f"{np.nanmean(ja):.1f}", flush=True)
    judges.close()


SHIFT_AGES = (18, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 100)
SHIFT_GRID = tuple(np.round(np.arange(-1.0, 4.01, 0.5), 2))


def face_age_shift(a) -> None:
    """The latent age shift (``gan.shift_code``). Direction: ``n_fit`` faces of adults 20-60 (seed
    90777; weights' own presentation) judged by the shipped attribute CNN (trained on the training
    split), ridge regression of log(1 + judged age) - log(1 + requested age) on the face code: the
    age the code adds beyond the condition. Shift: for each requested age of ``SHIFT_AGES``, ``n``
    faces (seed 31000 + age: no evaluation uses them) at each shift of ``SHIFT_GRID``, judged by the
    outside age judge; the shift whose median is nearest the requested age (in log years), made
    non-decreasing with age (isotonic regression) and at least 0, times ``scale``; 0 below the
    first knot (children are the age condition's). With ``haar_weight`` b > 0, the Haar detector's confidence
    (``FaceJudges.haar_confidence``, capped at its 90th percentile) is regressed on the same codes
    too, and the direction is the age direction with that Haar direction projected out, plus b
    times it: ageing along the plain direction brings glasses and shading that the Haar cascade
    misses (old faces found 0.86 vs 0.975 for real ones). Faces are made at the pipeline's psi.
    Prints the table and the ``age_shift`` JSON that ``scripts/ship_weights.py --face-age-shift``
    stores."""
    import json

    import torch

    from digitalhuman.evaluate.face_judges import FaceJudges, to_judge_size
    from digitalhuman.evaluate.faces import generator_from_weights
    from digitalhuman.face.attributes import load_attributes

    from scipy.optimize import isotonic_regression

    from digitalhuman.pipeline import DEFAULT_PSI

    gen = generator_from_weights(a.weights, psi=DEFAULT_PSI, age_shift=None)
    attrs = load_attributes(a.attributes)
    rng = np.random.Generator(np.random.PCG64(90777))
    female = (rng.random(a.n_fit) < 0.5).astype(np.float32)
    age = rng.uniform(20, a.fit_max_age, a.n_fit).astype(np.float32)
    # the codes generate() draws for seed 90777 (its contract), truncated by psi
    z = (np.random.Generator(np.random.PCG64(90777)).standard_normal((a.n_fit, gen.z_dim), dtype=np.float32)
         * np.float32(DEFAULT_PSI))
    with torch.inference_mode():
        imgs = gen(female, age, rng.integers(0, 5, a.n_fit), seed=90777)
    fit, test = slice(0, a.n_fit * 4 // 5), slice(a.n_fit * 4 // 5, a.n_fit)

    def unit_ridge(y: np.ndarray, what: str) -> np.ndarray:
        y = y - y.mean()
        w = np.linalg.solve(z[fit].T @ z[fit] + 50.0 * np.eye(z.shape[1]), z[fit].T @ y[fit])
        print(f"{what} direction: held-out r {float(np.corrcoef(z[test] @ w, y[test])[0, 1]):.3f} "
              f"({a.n_fit} faces)", flush=True)
        return w / np.linalg.norm(w)

    direction = unit_ridge(np.log1p(attrs.predict(imgs)["age"]) - np.log1p(age), "age (log-age residual)")
    judges = FaceJudges()
    if a.haar_weight > 0:
        conf = judges.haar_confidence(to_judge_size(imgs))
        haar = unit_ridge(np.minimum(conf, np.percentile(conf, 90)), "Haar confidence")
        print(f"cos(age, Haar) {float(direction @ haar):.3f}", flush=True)
        direction = direction - (direction @ haar) * haar + a.haar_weight * haar
        direction = direction / np.linalg.norm(direction)
    direction = direction.astype(np.float32)

    shifted = {k: generator_from_weights(a.weights, psi=DEFAULT_PSI, age_shift=((0.0, 116.0), (float(k), float(k)), direction))
               for k in SHIFT_GRID}
    chosen, table = [], {}
    for req in SHIFT_AGES:
        rng = np.random.Generator(np.random.PCG64(31000 + req))
        fem = (np.arange(a.n) % 2).astype(np.float32)
        race = rng.integers(0, 5, a.n)
        meds = []
        for k in SHIFT_GRID:
            with torch.inference_mode():
                imgs = shifted[k](fem, np.full(a.n, req, np.float32), race, seed=31000 + req)
            _, ja = judges.judge_age_gender(to_judge_size(imgs))
            meds.append(float(np.nanmedian(ja)))
        best = float(SHIFT_GRID[int(np.argmin(np.abs(np.log1p(meds) - np.log1p(req))))])
        chosen.append(best)
        table[req] = meds
        print(f"requested {req:5.1f}: judged medians " + " ".join(f"{k:+.1f}:{m:.0f}" for k, m in zip(SHIFT_GRID, meds))
              + f" -> shift {best:+.1f}", flush=True)
    judges.close()
    # the nearest monotone sequence (the per-age picks are noisy), children's 0 onward: never younger
    shifts = np.round(np.maximum(isotonic_regression(chosen).x, 0.0) * a.scale, 3)
    req = [0.0, SHIFT_AGES[0] - 3.0] + [float(x) for x in SHIFT_AGES]
    age_shift = {"requested": req, "shift": [0.0, 0.0] + [float(x) for x in shifts],
                 "direction": [float(x) for x in direction]}
    print(json.dumps({k: v for k, v in age_shift.items() if k != "direction"}))
    if a.out:
        Path(a.out).write_text(json.dumps({"age_shift": age_shift, "haar_weight": a.haar_weight, "grid": list(SHIFT_GRID),
                                           "judged_median": {str(k): v for k, v in table.items()},
                                           "n_per_cell": a.n, "scale": a.scale, "weights": str(a.weights)}, indent=1) + "\n")


def refiner_sharpen(a) -> None:
    """The refiner's unsharp mask (``refine.RefinerConfig.sharpen``): the detail ratio (the
    evaluation's ``laplacian_variance``) of ``n`` refined faces against ``n_real`` real 128 px
    training faces (not the hold-out faces the evaluation divides by), for each amount. The faces are made
    as the refiner's training pool is (``make_pool``: the 64 px generator, age-balanced, seed 1234)."""
    import dataclasses

    import torch

    from digitalhuman.evaluate.face_persona_rows import laplacian_variance
    from digitalhuman.face.data import load_split
    from digitalhuman.face.gan import to_pixels
    from digitalhuman.face.model import load_generator
    from digitalhuman.face.refine import Refiner
    from digitalhuman.face.train_refiner import make_pool

    real, _, age, _, _ = load_split(a.data, 128, "train", a.cache_dir)
    real = real[np.random.default_rng(0).choice(len(real), a.n_real, replace=False)]
    pool = make_pool(a.weights, a.n, age, 1234, log=lambda *_: None)
    g, _ = load_generator(a.weights)
    if g.refiner is None:
        raise SystemExit(f"{a.weights}: no refiner")
    x = torch.from_numpy(pool).permute(0, 3, 1, 2).double().div(127.5).sub(1.0)
    ref = laplacian_variance(real)
    for amount in floats(a.amounts):
        r = Refiner(dataclasses.replace(g.refiner.cfg, sharpen=amount)).double().eval()
        r.load_state_dict(g.refiner.state_dict())
        with torch.no_grad():
            y = to_pixels(r(x))
        print(f"sharpen {amount:g}: detail ratio {laplacian_variance(y) / ref:.3f}", flush=True)


AGE_GRID = (1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18, 21, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 110)
MAP_KNOTS = (0, 2, 4, 6, 8, 10, 12, 15, 18, 21, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100)


def face_age_map(a) -> None:
    """Measure the judged age of faces made at each conditioning age of ``AGE_GRID`` (``n`` faces
    each: half women, groups at random, the pipeline's psi, seed 24680 + k: no evaluation uses them),
    make the medians monotone (running maximum) and invert them at ``MAP_KNOTS``: the conditioning
    age whose faces are judged the requested age. The map is applied before the age strength
    (``gan.present_cond``), so the faces are made with the weights' own strengths (``--age-strength
    1`` for a run's own conditioning) but no age shift: the shift is keyed on the requested age,
    unknown here, and is zero below its first knot, so keep ``--up-to`` at or below that. With
    ``--up-to A`` only requested ages below ``A`` are mapped and ``A`` onward keep their age (children only; adults stay with the
    strength and shift fitted for them). Prints the table and the ``age_map`` JSON that
    ``scripts/ship_weights.py --face-age-map`` stores in the weights' metadata."""
    import json

    import torch

    from digitalhuman.evaluate.face_judges import FaceJudges, to_judge_size
    from digitalhuman.evaluate.faces import generator_from_weights

    from digitalhuman.pipeline import DEFAULT_PSI

    judges = FaceJudges()
    gen = generator_from_weights(a.weights, psi=DEFAULT_PSI, gender_strength=a.gender_strength,
                                 age_strength=a.age_strength, age_map=None, age_shift=None)
    # with --up-to, conditions a little past it suffice (the strength pulls young conditions younger)
    grid = [c for c in AGE_GRID if a.up_to is None or c <= a.up_to + 15]
    medians = []
    for k, c in enumerate(grid):
        rng = np.random.Generator(np.random.PCG64(24680 + k))
        female = (np.arange(a.n) % 2).astype(np.float32)
        with torch.inference_mode():
            imgs = gen(female, np.full(a.n, c, np.float32), rng.integers(0, 5, a.n), seed=24680 + k)
        _, ja = judges.judge_age_gender(to_judge_size(imgs))
        medians.append(float(np.nanmedian(ja)))
        print(f"condition age {c:5.1f}: judged median {medians[-1]:5.1f} (q25 {np.nanpercentile(ja, 25):.1f}, "
              f"q75 {np.nanpercentile(ja, 75):.1f})", flush=True)
    judges.close()
    mono = np.maximum.accumulate(np.array(medians)) + np.arange(len(medians)) * 1e-3  # strictly increasing
    knots = [x for x in MAP_KNOTS if a.up_to is None or x < a.up_to]
    cond = np.interp(knots, mono, grid)  # held at the grid's ends outside the judged range
    if a.up_to is not None:  # from up_to on, the requested age itself
        knots, cond = knots + [a.up_to, 116.0], list(cond) + [a.up_to, 116.0]
    age_map = {"requested": [float(x) for x in knots], "condition": [round(float(x), 2) for x in cond]}
    for r, c in zip(knots, cond):
        print(f"requested {r:5.1f} -> condition {c:6.2f}")
    print(json.dumps(age_map))
    if a.out:
        Path(a.out).write_text(json.dumps({"age_map": age_map, "grid": grid, "judged_median": medians,
                                           "n_per_age": a.n, "weights": str(a.weights)}, indent=1) + "\n")


def tune_voice(a) -> None:
    from scipy.stats import spearmanr

    from digitalhuman.evaluate.fusion import fit_voice_judges
    from digitalhuman.evaluate.fusion_figures import LINES, mean_embedding
    from digitalhuman.evaluate.voice_judges import VoiceJudges, log_f0
    from digitalhuman.pipeline import PersonaPipeline

    _, age_judge, fig = fit_voice_judges(a.data, a.cache_dir)
    print(f"voice age judge, held-out speakers: rho {fig['age_judge_holdout_spearman']:.3f}", flush=True)
    vj = VoiceJudges(1)
    pipe = PersonaPipeline.from_pretrained(a.weights, face=False)
    rng = np.random.Generator(np.random.PCG64(3))
    ages = rng.uniform(20, 75, a.n)
    women = np.arange(a.n) % 2 == 1
    for k in floats(a.age):
        pipe.voice.vae.age_strength = k
        judged, f0 = [], []
        for i in range(a.n):
            p = pipe(1000 + i, gender="female" if women[i] else "male", age=float(ages[i]), lines=LINES, face=False)
            emb = np.stack([vj.embed(ln.audio, ln.sample_rate) for ln in p.lines])
            lf = np.nanmean([log_f0(ln.audio, ln.sample_rate) for ln in p.lines])
            judged.append(float(age_judge.years(mean_embedding(emb)[None], np.array([lf]))[0]))
            f0.append(p.voice["f0_hz"])
        judged, f0 = np.array(judged), np.array(f0)
        rho = lambda m: spearmanr(ages[m], judged[m]).statistic  # noqa: E731
        young, old = ages < 40, ages > 60
        print(f"voice age_strength {k:g}: age rho {rho(np.ones(a.n, bool)):.3f} (men {rho(~women):.3f}, "
              f"women {rho(women):.3f}); median F0 women <40/>60 {np.median(f0[women & young]):.0f}/"
              f"{np.median(f0[women & old]):.0f} Hz, men {np.median(f0[~women & young]):.0f}/"
              f"{np.median(f0[~women & old]):.0f} Hz", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("face")
    f.add_argument("--weights", required=True, help="face_generator.safetensors, a weights folder or checkpoint.pt")
    f.add_argument("--gender", default="1,1.5,2,2.5")
    f.add_argument("--age", default="1,1.5,2")
    f.add_argument("--n", type=int, default=200)
    m = sub.add_parser("face-age-map", help="calibrate requested -> conditioning age with the age judge")
    m.add_argument("--weights", required=True, help="face_generator.safetensors, a weights folder or checkpoint.pt")
    m.add_argument("--gender-strength", type=float, default=None, help="default: the weights' own")
    m.add_argument("--age-strength", type=float, default=None, help="default: the weights' own")
    m.add_argument("--up-to", type=float, default=None,
                   help="map only requested ages below this; from it on, the requested age (default: all)")
    m.add_argument("--n", type=int, default=40, help="faces per conditioning age (default 40)")
    m.add_argument("--out", default=None, help="write the measured table and age_map as JSON here")
    sh = sub.add_parser("face-age-shift", help="fit the latent age direction and calibrate its shift per age")
    sh.add_argument("--weights", required=True, help="face_generator.safetensors (its own strengths and age_map apply)")
    sh.add_argument("--attributes", default=str(ROOT / "digitalhuman" / "weights" / "face_attributes.safetensors"))
    sh.add_argument("--n-fit", type=int, default=3000, help="faces the direction is fitted on (default 3000)")
    sh.add_argument("--n", type=int, default=40, help="faces per requested age and shift (default 40)")
    sh.add_argument("--scale", type=float, default=1.0,
                    help="multiply the calibrated shifts (below 1: ageing keeps more of the face; default 1)")
    sh.add_argument("--haar-weight", type=float, default=0.0,
                    help="age along the direction with the Haar-confidence direction projected out, plus this "
                         "much of it (0: the plain age direction; default 0)")
    sh.add_argument("--fit-max-age", type=float, default=60.0, help="direction fitted on ages 20 to this (default 60)")
    sh.add_argument("--out", default=None, help="write the measured table and age_shift as JSON here")
    rs = sub.add_parser("refiner-sharpen", help="detail ratio of refined faces by unsharp-mask amount")
    rs.add_argument("--weights", default=str(ROOT / "digitalhuman" / "weights" / "face_generator.safetensors"))
    rs.add_argument("--amounts", default="0,0.2,0.3,0.4,0.5,0.6")
    rs.add_argument("--n", type=int, default=500, help="refined faces (default 500)")
    rs.add_argument("--n-real", type=int, default=2000, help="real training faces (default 2000)")
    rs.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "utkface128"))
    rs.add_argument("--cache-dir", default=None)
    v = sub.add_parser("voice")
    v.add_argument("--weights", default=None, help="weights folder (default: the shipped weights)")
    v.add_argument("--age", default="1,2,3")
    v.add_argument("--n", type=int, default=40)
    v.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "commonvoice61"))
    v.add_argument("--cache-dir", default=None)
    a = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    {"face": tune_face, "face-age-map": face_age_map, "face-age-shift": face_age_shift, "refiner-sharpen": refiner_sharpen,
     "voice": tune_voice}[a.what](a)


if __name__ == "__main__":
    main()
