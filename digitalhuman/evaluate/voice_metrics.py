"""Pure figures of the voice evaluation: the WER text normalisation, speaker-similarity statistics,
gender accuracy, line assignment and the acceptance checks (no judges, no models).

Text normalisation for the WER (``normalize_text``, applied to reference and transcript alike):
lowercase; thousands separators dropped; ``%`` -> "percent"; digits -> words with num2words
(``3`` -> "three", ``7th`` -> "seventh", ``2.5`` -> "two point five"); hyphens -> spaces;
apostrophes dropped ("don't" -> "dont", so "island's" == "islands"); everything but letters
removed; "and" dropped between a "hundred" / "thousand" / "million" and a following number word,
so "two hundred and fifty" == "two hundred fifty". Contractions are not expanded ("I'll" != "I
will").
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from ..eval_lines import EVAL_LINES
from .common import unit_rows

SAME_SPEAKER = 0.9  # cosine above which two lines "sound like one speaker"

# (key, label, direction, bar): the acceptance of issue "voices v3" (#25); "voices v2" had WER <= 0.05,
# DNSMOS means >= 3.05 and minimum >= 2.7, cosine to joe <= 0.65 mean, Frechet <= 0.15, gender >= 0.95
CHECKS = (
    ("wer", "Whisper tiny.en WER", "<=", 0.04),
    ("dnsmos_ovrl_mean_female", "DNSMOS OVRL mean, women", ">=", 3.25),
    ("dnsmos_ovrl_mean_male", "DNSMOS OVRL mean, men", ">=", 3.25),
    ("dnsmos_ovrl_min", "DNSMOS OVRL minimum", ">=", 2.9),
    ("same_persona_cos", "same persona cosine", ">=", 0.85),
    ("diff_persona_cos_female", "diff. personas cos, women", "<=", 0.65),
    ("diff_persona_cos_male", "diff. personas cos, men", "<=", 0.65),
    ("nearest_stock_cos", "nearest stock voice cos, mean", "<=", 0.85),
    ("cos_to_joe_same_text", "cosine to joe, mean", "<=", 0.55),
    ("cos_to_joe_same_text_max", "cosine to joe, max", "<=", 0.80),
    ("frechet_top16", "Frechet to real (16 PCs), report", "report", None),
    ("gender_match", "judged gender = persona", ">=", 0.97),
    ("ages_distinct_min", "voices at 7 ages (of 7)", ">=", 7),
    ("voice_age_spearman", "judged voice age rho", ">=", 0.5),
    ("rtf_excl_load", "synthesis time / audio", "<=", 0.35),
    ("deterministic", "two processes (1, 2 threads) identical", "==", True),
)


# ---------------------------------------------------------------------------- text and WER
_NUMBER = re.compile(r"\d+(?:st|nd|rd|th)\b|\d+\.\d+|\d+")
_SCALES = ("hundred", "thousand", "million", "billion")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion".split())


def _number_words(m: re.Match) -> str:
    from num2words import num2words  # a dependency of gruut (the phonemiser), so always present

    s = m.group(0)
    if s[-2:] in ("st", "nd", "rd", "th"):
        return f" {num2words(int(s[:-2]), to='ordinal')} "
    if "." in s:
        return f" {num2words(float(s))} "
    return f" {num2words(int(s))} "


def normalize_text(text: str) -> list[str]:
    """Words of ``text`` for the WER: lowercase, numbers as words, no punctuation (module doc)."""
    s = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"(\d)\s*%", r"\1 percent", s)
    s = _NUMBER.sub(_number_words, s)
    s = s.replace("-", " ").replace("'", "")
    words = re.sub(r"[^a-z ]", " ", s).split()
    out: list[str] = []
    for i, w in enumerate(words):
        if (w == "and" and out and out[-1] in _SCALES and i + 1 < len(words)
                and words[i + 1] in _NUMBER_WORDS and words[i + 1] not in _SCALES):
            continue
        out.append(w)
    return out


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions)."""
    d = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(hyp) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(hyp)]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """``(word edits, reference words)`` after ``normalize_text`` on both sides."""
    r, h = normalize_text(ref), normalize_text(hyp)
    return edit_distance(r, h), len(r)


def wer(ref: str, hyp: str) -> float:
    e, n = word_errors(ref, hyp)
    return e / max(1, n)


def similarity_stats(emb: np.ndarray, ids: Sequence, groups: Sequence | None = None,
                     texts: Sequence | None = None, threshold: float = SAME_SPEAKER) -> dict:
    """Cosine statistics of speaker embeddings ``emb`` (N, D) of utterances by speakers ``ids`` (N,).

    ``same_persona_cos``: for each speaker with >= 2 utterances, the mean cosine over its
    utterance pairs; the mean (and ``_min``) over those speakers. ``diff_persona_cos``: mean over
    every pair of utterances by two different speakers (line level), ``diff_persona_above_0.9``
    the fraction of those above ``threshold``; at speaker level, the fraction of speaker pairs
    whose mean cross cosine exceeds it. With ``groups`` (N,) (e.g. gender), the different-speaker
    mean is also split into same-group and cross-group pairs; with ``texts`` (N,), into pairs
    saying the same text and different texts. Rows with NaN are ignored.
    """
    emb = np.asarray(emb, np.float64)
    assert emb.ndim == 2 and len(emb) == len(ids), (emb.shape, len(ids))
    ok = np.isfinite(emb).all(1)
    e, ids = unit_rows(emb[ok]), np.asarray(ids)[ok]
    g = np.asarray(groups)[ok] if groups is not None else None
    tx = np.asarray(texts)[ok] if texts is not None else None
    C = e @ e.T
    iu = np.triu_indices(len(e), 1)
    c = C[iu]
    same = ids[iu[0]] == ids[iu[1]]
    nan = float("nan")
    speakers = list(dict.fromkeys(ids.tolist()))
    per = [float(C[np.ix_(ids == s, ids == s)][np.triu_indices(int((ids == s).sum()), 1)].mean())
           for s in speakers if (ids == s).sum() >= 2]
    diff = c[~same]
    out = {
        "same_persona_cos": float(np.mean(per)) if per else nan,
        "same_persona_cos_min": float(np.min(per)) if per else nan,
        "diff_persona_cos": float(diff.mean()) if len(diff) else nan,
        "diff_persona_cos_max": float(diff.max()) if len(diff) else nan,
        "diff_persona_above_0.9": float((diff > threshold).mean()) if len(diff) else nan,
        "n_same_pairs": int(same.sum()), "n_diff_pairs": int(len(diff)), "n_speakers": len(speakers),
    }
    if len(speakers) >= 2:
        idx = {s: i for i, s in enumerate(speakers)}
        k = np.array([idx[s] for s in ids.tolist()])
        S, W = np.zeros((len(speakers),) * 2), np.zeros((len(speakers),) * 2)
        np.add.at(S, (k[iu[0]][~same], k[iu[1]][~same]), diff)
        np.add.at(W, (k[iu[0]][~same], k[iu[1]][~same]), 1)
        S, W = S + S.T, W + W.T
        pu = np.triu_indices(len(speakers), 1)
        m = S[pu] / np.maximum(W[pu], 1)
        out["diff_persona_pairs_above_0.9_persona_level"] = float((m[W[pu] > 0] > threshold).mean())
    if g is not None:
        sg = (g[iu[0]] == g[iu[1]])[~same]
        out["diff_persona_cos_same_gender"] = float(diff[sg].mean()) if sg.any() else nan
        out["diff_persona_cos_cross_gender"] = float(diff[~sg].mean()) if (~sg).any() else nan
    if tx is not None:
        st = (tx[iu[0]] == tx[iu[1]])[~same]
        out["diff_persona_cos_same_text"] = float(diff[st].mean()) if st.any() else nan
        out["diff_persona_cos_different_text"] = float(diff[~st].mean()) if (~st).any() else nan
    return out


def nearest_stock(p_emb: np.ndarray, line_seeds: Sequence, stock: dict[str, np.ndarray]) -> dict:
    """Each persona's mean embedding (over its lines) against each stock voice's: the cosine to the
    nearest stock voice, its mean over personas and the nearest voice's name per persona."""
    names = list(stock)
    S = np.stack([stock[n] for n in names])
    seeds = list(dict.fromkeys(line_seeds))
    ls = np.asarray(line_seeds)
    P = np.stack([unit_rows(np.nanmean(unit_rows(p_emb[ls == s]), 0)) for s in seeds])
    cos = P @ S.T
    best = cos.argmax(1)
    return {"nearest_stock_cos": float(np.mean(cos.max(1))), "nearest_stock_cos_max": float(np.max(cos.max(1))),
            "nearest_stock_per_persona": [{"voice": names[int(j)], "cos": float(c)} for j, c in zip(best, cos.max(1))]}


def gender_accuracy(p_female: np.ndarray, female: np.ndarray) -> dict:
    """Accuracy and class-balanced accuracy of ``P(female) > 0.5`` (NaN scores ignored)."""
    p, f = np.asarray(p_female, np.float64), np.asarray(female).astype(int)
    ok = np.isfinite(p)
    pred, f = (p[ok] > 0.5).astype(int), f[ok]
    per = [float((pred[f == k] == k).mean()) for k in (0, 1) if (f == k).any()]
    return {"accuracy": float((pred == f).mean()) if len(f) else float("nan"),
            "balanced_accuracy": float(np.mean(per)) if per else float("nan"), "n": int(len(f))}


# ---------------------------------------------------------------------------- lines and checks
def assign_lines(n_personas: int, n_lines: int, n_available: int = len(EVAL_LINES)) -> np.ndarray:
    """(n_personas, n_lines) indices into the line list: persona k says k*n_lines + j (mod n_available)."""
    if n_personas < 1 or n_lines < 1:
        raise ValueError("need at least one persona and one line")
    if n_lines > n_available:
        raise ValueError(f"{n_lines} lines asked for, only {n_available} held-out lines exist")
    return (np.arange(n_personas)[:, None] * n_lines + np.arange(n_lines)[None]) % n_available


def check_rows(figures: dict) -> list[dict]:
    """The acceptance checks of the issue against ``figures`` (a persona row)."""
    rows = []
    for key, label, op, bar in CHECKS:
        v = figures.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            ok = None
        elif op == "report":
            ok = None
        elif op == "==":
            ok = v == bar
        else:
            ok = bool(v <= bar) if op == "<=" else bool(v >= bar)
        rows.append({"check": key, "label": label, "value": v, "op": op, "bar": bar, "pass": ok})
    return rows


def line_quality(rows: list[dict]) -> dict:
    ovrl = np.array([r["dnsmos_ovrl"] for r in rows])
    return {
        "lines_judged": len(rows),
        "wer": sum(r["word_edits"] for r in rows) / max(1, sum(r["words"] for r in rows)),
        "wer_line_mean": float(np.mean([r["wer"] for r in rows])),
        "wer_line_max": float(np.max([r["wer"] for r in rows])),
        "lines_with_errors": int(sum(r["word_edits"] > 0 for r in rows)),
        "dnsmos_ovrl_mean": float(ovrl.mean()), "dnsmos_ovrl_min": float(ovrl.min()),
        "dnsmos_sig_mean": float(np.mean([r["dnsmos_sig"] for r in rows])),
        "dnsmos_bak_mean": float(np.mean([r["dnsmos_bak"] for r in rows])),
        "audio_s": float(sum(r["duration_s"] for r in rows)),
    }
