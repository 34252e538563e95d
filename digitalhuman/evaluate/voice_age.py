"""Voice -> age: does the age ``from_voice`` reads from a real voice follow the speaker's age?

No outside judge is needed, only the package and the data: one clip per Common Voice hold-out
speaker labelled female or male (the voice trainer's split, ``voice.train.is_holdout_speaker``;
the first clip with usable features, as ``evaluate fusion`` takes them) goes through
``PersonaPipeline.from_voice``; the persona's age is compared with the speaker's age bucket in
years (``voice.features.AGE_YEARS``: teens = 16, twenties = 25, ...). ``evaluate fusion`` reports
the same figure (``voice_to_face_age_spearman``) next to the judged face gender.

  digitalhuman evaluate voice_age [--weights DIR] [--data DIR] [--out-json voice_age.json]

The persona side of voice age (one persona at seven ages; random personas for the judged voice age)
is rendered here too (``age_steps``, ``render_age_personas``) and judged by ``evaluate voices``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..eval_lines import EVAL_LINES
from .common import DEFAULT_VOICE_DATA, jsonable
from .fusion_figures import spearman


# ---------------------------------------------------------------------------- persona rows of evaluate voices
AGE_STEPS = (10.0, 14.0, 20.0, 30.0, 45.0, 60.0, 75.0)  # "one persona at seven ages: seven voices"
AGE_PERSONAS = 48  # random personas whose judged voice age is compared with their age


def age_steps(pipe, seed: int, gender: str, text: str) -> dict:
    """Persona ``seed`` constrained to ``gender`` at each age of ``AGE_STEPS`` saying ``text``: how
    many different WAVs (sha256) the seven ages give."""
    hashes = [hashlib.sha256(pipe(seed, gender=gender, age=a, lines=[text], face=False).lines[0].wav_bytes()).hexdigest()
              for a in AGE_STEPS]
    return {"seed": seed, "gender": gender, "ages": list(AGE_STEPS), "distinct": len(set(hashes)), "text": text}


def render_age_personas(pipe, seed: int, n: int = AGE_PERSONAS):
    """Personas ``seed + 1000 .. + n - 1`` (traits as sampled), one held-out line each -> [(age, female, line)]."""
    out = []
    for k in range(n):
        p = pipe(seed + 1000 + k, lines=[EVAL_LINES[k % len(EVAL_LINES)]], face=False)
        out.append((float(p.traits["age"]), p.traits["gender"] == "female", p.lines[0]))
    return out


def age_agreement(inferred: Sequence[float], labelled: Sequence[float], female: Sequence[bool]) -> dict:
    """Inferred vs labelled ages: Spearman rho (all, and per gender), mean absolute error, and the
    mean inferred age per labelled age. NaN pairs are left out."""
    x, y = np.asarray(inferred, np.float64), np.asarray(labelled, np.float64)
    f = np.asarray(female, bool)
    ok = np.isfinite(x) & np.isfinite(y)
    by_label = {f"{a:g}": {"n": int((ok & (y == a)).sum()), "inferred_mean": float(x[ok & (y == a)].mean())}
                for a in np.unique(y[ok])}
    return {"spearman": spearman(x, y)["rho"], "n": int(ok.sum()),
            "spearman_female": spearman(x[f], y[f])["rho"], "spearman_male": spearman(x[~f], y[~f])["rho"],
            "mae_years": float(np.abs(x[ok] - y[ok]).mean()) if ok.any() else float("nan"),
            "by_labelled_age": by_label}


def evaluate_voice_age(weights: str | Path | None = None, data: str | Path = DEFAULT_VOICE_DATA, seed: int = 0,
                       out_json: str | Path | None = None, progress: bool = True) -> dict:
    """Run ``from_voice`` on every held-out speaker's clip; returns (and optionally writes) the figures
    of ``age_agreement`` plus one record per speaker."""
    from ..pipeline import PersonaPipeline
    from ..voice.features import AGE_YEARS, FeatureError, load_audio
    from .fusion_tasks import real_speakers

    if not (Path(data) / "clips.csv").is_file():
        raise FileNotFoundError(f"{data}: no clips.csv (a Common Voice-style folder is needed)")
    t0 = time.perf_counter()
    pipe = PersonaPipeline.from_pretrained(weights, face=False)
    rows = []
    for k, s in enumerate(real_speakers(data, 0, seed)):
        row = {"speaker": s["speaker"], "female": s["female"], "age_bucket": s["age"],
               "age": AGE_YEARS.get(s["age"], float("nan")), "clip": None}
        for clip in s["clips"]:
            try:
                p = pipe.from_voice(*load_audio(clip), seed=seed, face=False)
            except FeatureError:
                continue
            row.update(clip=Path(clip).name, inferred_age=p.traits["age"], inferred_female=p.traits["female"],
                       vae_age=p.origin["from_voice"]["age"])
            break
        rows.append(row)
        if progress and (k + 1) % 20 == 0:
            print(f"[voice_age] {k + 1} speakers", file=sys.stderr, flush=True)
    used = [r for r in rows if r["clip"] is not None]
    res = jsonable({
        **age_agreement([r["inferred_age"] for r in used], [r["age"] for r in used], [r["female"] for r in used]),
        "speakers": len(rows), "without_usable_clip": len(rows) - len(used),
        "setup": {"weights": str(weights) if weights is not None else "package", "data": str(data), "seed": seed,
                  "models": {k: v.id for k, v in pipe.models.items()}},
        "seconds": round(time.perf_counter() - t0, 1),
        "details": rows,
    })
    if out_json is not None:
        Path(out_json).write_text(json.dumps(res, indent=2) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="digitalhuman evaluate voice_age",
                                 description="Spearman rho between the age from_voice reads from held-out real "
                                             "speakers and their labelled age (no outside judges needed).")
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--data", default=str(DEFAULT_VOICE_DATA), help="Common Voice-style folder (clips.csv + audio/)")
    ap.add_argument("--seed", type=int, default=0, help="persona seed given to from_voice")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    from ..pipeline import ModelNotAvailable

    try:
        res = evaluate_voice_age(a.weights, a.data, a.seed, a.out_json, not a.quiet)
    except (ModelNotAvailable, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by = ", ".join(f"{k}: {v['inferred_mean']:.1f} (n={v['n']})" for k, v in res["by_labelled_age"].items())
    print(f"{res['n']} held-out speakers: Spearman rho {res['spearman']:.3f} (female {res['spearman_female']:.3f}, "
          f"male {res['spearman_male']:.3f}), MAE {res['mae_years']:.1f} years\nmean persona age by labelled age: {by}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
