"""Pure figures of the fusion evaluation (agreement, match rates, Spearman, family and blend
counting, stranger and sample choice), its constants and its check table: no judges, no models."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .common import unit_rows

try:
    from ..eval_lines import EVAL_LINES

    LINES: tuple[str, ...] = (EVAL_LINES[6], EVAL_LINES[16])  # short, neutral, well voiced
except ImportError:  # the held-out line list is not shipped: two neutral lines of our own
    LINES = ("The lamps in the market square are lit at sundown.", "Nobody has crossed the old bridge since spring.")

BLEND_T: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
CONSTRAINED_AGES = (25.0, 70.0)
AGED_YEARS = 25.0
AGED_FROM = (18.0, 60.0)  # ages of the personas that are aged (so +25 stays within the data)

# (key, label, op, bar, goal): the acceptance
CHECKS = (
    ("gender_agreement", "face gender = voice gender", ">=", 0.80, 0.85),
    ("age_spearman", "face age ~ voice age (rho)", ">=", 0.20, None),
    ("constrained_face_gender", "constrained: face gender", ">=", 0.90, None),
    ("constrained_voice_gender", "constrained: voice gender", ">=", 0.90, None),
    ("face_to_voice_gender", "real face -> voice gender", ">=", 0.85, None),
    ("voice_to_face_gender", "real voice -> face gender", ">=", 0.85, None),
    ("voice_to_face_age_spearman", "real voice -> persona age (rho)", ">=", None, None),  # reported, no bar
    ("siblings_closer", "sibling closer, face & voice", ">=", 0.95, None),
    ("siblings_closer_cross_gender", "other-gender sibling closer", ">=", None, None),  # reported, no bar
    ("blend_monotone", "blend distance rises", ">=", 0.90, None),
    ("aged_face_older", f"aged +{AGED_YEARS:.0f} y: face older", ">=", None, None),  # reported, no bar
    ("aged_voice_older", f"aged +{AGED_YEARS:.0f} y: voice older", ">=", None, None),  # reported, no bar
)


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


def fmt(v, nd: int = 3) -> str:
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
        out.append(f"{c['label']:<30} {fmt(c['value']):>7} {fmt(c['n']):>5} {bar:>7} "
                   f"{fmt(c['goal'], 2):>5} {fmt(c['pass']):>5}")
    out.append("")
    out += [f"  {k}: {v}" for k, v in res.get("notes", {}).items()]
    return "\n".join(out)

