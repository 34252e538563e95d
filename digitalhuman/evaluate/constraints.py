"""The same person under one constraint: what fixing a trait keeps (issue 28).

========================  ===================================================================
figure                    what is measured (bar)
========================  ===================================================================
age_keeps_gender          ``--seeds`` personas, each also made with ``--age A`` for A in
age_keeps_race            ``AGES`` (8-80): fraction of the (seed, A) cases whose gender (group)
                          is the unconstrained persona's (>= 0.95 each); also per age
gender_keeps_race         the same seeds with ``--gender`` the other one than their own: fraction
                          whose group is kept (>= 0.95); ``gender_keeps_age`` the same for the age
age_keeps_identity        the same seeds with ``--age A``, A = the persona's own age plus one of
                          ``AGE_OFFSETS`` (in turn, within 0-100): fraction whose face is the same
                          person for dlib (identity distance < 0.6) as the unconstrained face
                          (>= 0.80); the face judges are an optional extra
                          (``scripts/install-judges.sh``)
========================  ===================================================================

The trait figures need only the trait prior (no model, a second); the identity figure renders
two faces a seed (about 0.1 s each on one thread) and embeds them with dlib. Seeds 1000-1199 by
default: ``fusion.KEEP_RATIO`` was chosen from the prior's table alone, no seed was tuned on.

  digitalhuman evaluate constraints --out-json constraints.json
  digitalhuman evaluate constraints --seeds 0-49 --no-identity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

AGES = (8.0, 26.0, 44.0, 62.0, 80.0)
AGE_OFFSETS = (-10.0, -5.0, 5.0, 10.0)
SAME_IDENTITY = 0.6  # dlib's own threshold for "same person"
BARS = {"age_keeps_gender": 0.95, "age_keeps_race": 0.95, "gender_keeps_race": 0.95, "age_keeps_identity": 0.80}
DEFAULT_SEEDS = "1000-1199"


def trait_figures(prior, seeds, ages=AGES) -> dict:
    """What fixing the age (each of ``ages``) or the gender (the other one) keeps of each seed's traits."""
    from ..fusion import fuse
    from ..persona import persona_latent

    latents = [persona_latent(s) for s in seeds]
    free = [fuse(prior, z).traits for z in latents]
    per_age = {}
    kept_g, kept_r = [], []
    for a in ages:
        t = [fuse(prior, z, age=a).traits for z in latents]
        g = [x["gender"] == f["gender"] for x, f in zip(t, free)]
        r = [x["race"] == f["race"] for x, f in zip(t, free)]
        per_age[f"{a:g}"] = {"gender": float(np.mean(g)), "race": float(np.mean(r))}
        kept_g += g
        kept_r += r
    flipped = [fuse(prior, z, gender="male" if f["gender"] == "female" else "female").traits
               for z, f in zip(latents, free)]
    return {"age_keeps_gender": float(np.mean(kept_g)), "age_keeps_race": float(np.mean(kept_r)),
            "age_cases": len(kept_g), "per_age": per_age,
            "gender_keeps_race": float(np.mean([x["race"] == f["race"] for x, f in zip(flipped, free)])),
            "gender_keeps_age": float(np.mean([x["age"] == f["age"] for x, f in zip(flipped, free)])),
            "gender_cases": len(flipped)}


def identity_pairs(pipe, seeds, offsets=AGE_OFFSETS) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Faces ``(N, R, R, 3)`` of each seed unconstrained and with ``age`` = its own age + an offset."""
    from ..pipeline import AGE_RANGE

    free, fixed, rows = [], [], []
    for i, s in enumerate(seeds):
        p = pipe(seed=s, voice=False)
        age = float(np.clip(round(p.traits["age"]) + offsets[i % len(offsets)], *AGE_RANGE))
        q = pipe(seed=s, age=age, voice=False)
        free.append(p.face)
        fixed.append(q.face)
        rows.append({"seed": int(s), "age": p.traits["age"], "asked_age": age,
                     "same_traits": all(p.traits[k] == q.traits[k] for k in ("gender", "race", "female"))})
    return np.stack(free), np.stack(fixed), rows


def identity_figures(pipe, judges, seeds, offsets=AGE_OFFSETS) -> dict:
    from .face_judges import to_judge_size

    a, b, rows = identity_pairs(pipe, seeds, offsets)
    d = np.linalg.norm(judges.embed(to_judge_size(a)) - judges.embed(to_judge_size(b)), axis=1)
    for r, x in zip(rows, d):
        r["distance"] = round(float(x), 4)
    return {"age_keeps_identity": float((d < SAME_IDENTITY).mean()), "identity_cases": len(d),
            "identity_distance_median": float(np.median(d)), "identity_distance_p90": float(np.quantile(d, 0.9)),
            "details": rows}


def parse_seeds(text: str) -> list[int]:
    from ..batch import parse_seeds as parse

    return list(parse(text))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="digitalhuman evaluate constraints",
                                 description=__doc__.split("\n\n")[0] + " Prints the figures, then writes JSON.",
                                 epilog="examples:\n  digitalhuman evaluate constraints --out-json constraints.json\n"
                                        "  digitalhuman evaluate constraints --seeds 0-49 --no-identity",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"persona seeds (default {DEFAULT_SEEDS})")
    ap.add_argument("--no-identity", action="store_true", help="trait figures only (no face model, no judge)")
    ap.add_argument("--out-json", default=None)
    a = ap.parse_args(argv)
    from ..pipeline import PersonaPipeline

    seeds = parse_seeds(a.seeds)
    pipe = PersonaPipeline.from_pretrained(a.weights, face=not a.no_identity, voice=False)
    res = {"seeds": a.seeds, "ages": list(AGES), "bars": BARS, **trait_figures(pipe._need("fusion"), seeds)}
    if not a.no_identity:
        from .face_judges import FaceJudges

        judges = FaceJudges()
        try:
            res.update(identity_figures(pipe, judges, seeds))
        finally:
            judges.close()
    for k, bar in BARS.items():
        if k in res:
            print(f"{k:<20} {res[k]:.3f}  (bar >= {bar:.2f}: {'met' if res[k] >= bar else 'NOT met'})")
    print("per age (gender, group kept): " + ", ".join(f"{k}: {v['gender']:.3f}, {v['race']:.3f}"
                                                      for k, v in res["per_age"].items()))
    if "identity_distance_median" in res:
        print(f"identity distance median {res['identity_distance_median']:.3f}, 90th percentile "
              f"{res['identity_distance_p90']:.3f} over {res['identity_cases']} pairs")
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(res, indent=1) + "\n")
    return 0
