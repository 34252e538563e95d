"""Argument checks of the public API (``PersonaPipeline``) and of the CLI's inputs, before any model runs.

Each check raises :class:`~digitalhuman.persona.PersonaError` with one line saying what was wrong
and what is accepted, so a mistake in a call never surfaces as numpy's, torch's or Python's own
error from deep inside a model. They import nothing heavy (no torch, no voice model): the CLI
calls the same checks before it loads anything.
"""

from __future__ import annotations

import math
import numbers
import os
import unicodedata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .persona import PersonaError
from .voice.features import FeatureError

__all__ = ["ClipError", "check_number", "check_int", "check_text", "check_lines", "check_persona", "check_clip",
           "check_image", "check_flags", "check_weights", "check_voice_params", "check_writable",
           "clean_text_problem", "MIN_CLIP_S", "MAX_CLIP_S", "SAMPLE_RATES", "MIN_IMAGE_PX", "MAX_IMAGE_PX",
           "VOICE_PARAM_BOUNDS", "call_args", "blend_args", "sibling_args", "from_voice_args", "from_face_args",
           "aged_args", "say_args", "pretrained_args"]

MIN_CLIP_S, MAX_CLIP_S = 0.25, 120.0  # a voice clip: what the voice features need, and the CLI's limit
SAMPLE_RATES = (8_000, 192_000)  # Hz a clip may have
SILENT_PEAK = 1e-4  # a clip whose peak is below this is silent (as voice.features says)
MIN_IMAGE_PX, MAX_IMAGE_PX = 16, 4096  # sides of a face image
AGE_RANGE = (0, 100)  # years a persona may be asked for: pipeline.AGE_RANGE (which imports this module)
# Bounds of the voice parameters the renderer takes from a persona.json (voice.persona_voice.PARAM_BOUNDS,
# repeated here so that checking a file needs no torch; tests/test_cli_edges.py holds them equal).
# Only the parameters a file has are checked here; the voice checks that none is missing.
VOICE_PARAM_BOUNDS = {"speed": (0.5, 2.0), "pitch_st": (-12.0, 12.0), "child": (0.0, 1.0), "f0_hz": (0.0, 500.0),
                      "formant": (0.7, 1.5), "female": (0.0, 1.0), "british": (0.0, 1.0)}
MAX_VOICE_PARAM = 1e3  # any other voice parameter (EQ gains in dB, ...): finite and at most this in size
_KEEP_CONTROLS = "\t\n\r"  # white space: spoken as a pause, kept


def _shown(value: Any, limit: int = 40) -> str:
    """``repr`` of a value, bounded to one short line (a 5,000-digit number is not echoed back)."""
    text = repr(value) if not isinstance(value, (int, np.integer)) or abs(int(value)) < 10**30 else \
        f"an integer of {len(str(abs(int(value))))} digits"
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_number(name: str, value: Any, lo: float, hi: float, unit: str = "") -> float:
    """A real number (not a bool, not a string) within ``[lo, hi]`` -> float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise PersonaError(f"{name} must be a number{unit and ' of ' + unit} between {lo:g} and {hi:g}, "
                           f"got {type(value).__name__} {_shown(value)}")
    x = float(value)
    if not lo <= x <= hi:  # also NaN
        raise PersonaError(f"{name} must be between {lo:g} and {hi:g}{unit and ' ' + unit}, got {_shown(value)}")
    return x


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """An integer (Python or numpy; not a bool, a float or a string) within ``[lo, hi]`` -> int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise PersonaError(f"{name} must be an integer from {lo} to {hi}, got {type(value).__name__} {_shown(value)}")
    if not lo <= int(value) <= hi:
        raise PersonaError(f"{name} must be from {lo} to {hi}, got {_shown(value)}")
    return int(value)


def clean_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a line of dialogue as given (None: it can): empty, or holding control
    characters (escape sequences, bells ...: they would be spoken as noise and stored in persona.json).
    Tabs and line breaks are white space and allowed."""
    if not text.strip():
        return "text is empty"
    bad = sorted({c for c in text if unicodedata.category(c) == "Cc" and c not in _KEEP_CONTROLS})
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
        return f"text holds control characters ({shown}); remove them"
    return None


def check_text(text: Any, name: str = "text") -> str:
    """A line of dialogue: a non-empty ``str`` within ``MAX_TEXT_CHARS``, no control characters."""
    from .voice.limits import MAX_TEXT_CHARS

    if not isinstance(text, str):
        raise PersonaError(f"{name} must be a str, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise PersonaError(f"{name} is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    problem = clean_text_problem(text)
    if problem:
        raise PersonaError(f"{name}: {problem}" if name != "text" else problem)
    return text


def check_lines(lines: Any) -> list[str]:
    """Lines of dialogue: a list (or tuple ...) of strings. A bare ``str`` is refused: iterating it
    would speak each character as a line."""
    if isinstance(lines, (str, bytes)):
        raise PersonaError(f"lines must be a list of strings, got a {type(lines).__name__}: "
                           f"write lines=[{_shown(lines, 30)}] for one line")
    if not isinstance(lines, Sequence):
        raise PersonaError(f"lines must be a list of strings, got {type(lines).__name__}")
    return [check_text(t, f"lines[{i}]") for i, t in enumerate(lines)]


def check_persona(persona: Any, name: str = "persona", docs: bool = False) -> None:
    """A :class:`Persona` (or, with ``docs``, also a loaded ``persona.json`` document)."""
    from .persona import Persona, PersonaDoc

    kinds = (Persona, PersonaDoc) if docs else (Persona,)
    if not isinstance(persona, kinds):
        want = "a Persona or a PersonaDoc (load_persona_doc)" if docs else "a Persona (made by the pipeline)"
        raise PersonaError(f"{name} must be {want}, got {type(persona).__name__}")


def check_flags(**flags: Any) -> None:
    """Keyword switches (``face=``, ``voice=``, ``keep_face=`` ...) must be True or False."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise PersonaError(f"{name} must be True or False, got {type(value).__name__} {_shown(value)}")


class ClipError(PersonaError, FeatureError):
    """A voice clip that cannot be used: a PersonaError, and the ``FeatureError`` the voice features
    raise for such clips (code that skips unusable clips by catching that keeps working)."""


def check_clip(audio: Any, sample_rate: Any) -> tuple[np.ndarray, int]:
    """A voice clip: mono float samples ``(N,)``, ``MIN_CLIP_S``-``MAX_CLIP_S`` long at a sample rate
    within ``SAMPLE_RATES``, finite and not silent -> ``(float32 (N,), int rate)``; else ``ClipError``."""
    try:
        sr = check_int("sample_rate", sample_rate, *SAMPLE_RATES)
    except PersonaError as e:
        raise ClipError(str(e)) from None
    try:
        x = np.asarray(audio)
    except (TypeError, ValueError) as e:
        raise ClipError(f"audio must be an array of samples (N,), got {type(audio).__name__} ({e})") from None
    if x.ndim != 1 or x.dtype.kind not in "fiu":
        raise ClipError(f"audio must be mono samples of shape (N,) (float in [-1, 1]), got {x.dtype} {x.shape}")
    seconds = len(x) / sr
    if seconds < MIN_CLIP_S:
        raise ClipError(f"the clip is {seconds:.3f} s long; a voice needs at least {MIN_CLIP_S} s")
    if seconds > MAX_CLIP_S:
        raise ClipError(f"the clip is {seconds:.0f} s long; give at most {MAX_CLIP_S:.0f} s of the voice")
    x = x.astype(np.float32) if x.dtype.kind == "f" else (x / max(float(np.iinfo(x.dtype).max), 1.0)).astype(np.float32)
    if not np.isfinite(x).all():
        raise ClipError("the clip holds NaN or infinite samples")
    peak = float(np.abs(x).max())
    if peak < SILENT_PEAK:
        raise ClipError(f"the clip is silent (peak {peak:.1e}); give a recording of someone speaking")
    return x, sr


def check_image(image: Any) -> np.ndarray:
    """An RGB face image: uint8 ``(H, W, 3)``, sides ``MIN_IMAGE_PX``-``MAX_IMAGE_PX``."""
    try:
        img = np.asarray(image)
    except (TypeError, ValueError):
        img = np.zeros(0)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise PersonaError(f"expected an RGB face image, uint8 (H, W, 3), got {img.dtype} {img.shape}")
    if min(img.shape[:2]) < MIN_IMAGE_PX or max(img.shape[:2]) > MAX_IMAGE_PX:
        raise PersonaError(f"the face image is {img.shape[1]}x{img.shape[0]} px; give {MIN_IMAGE_PX} to "
                           f"{MAX_IMAGE_PX} px a side (a face crop)")
    return img


def check_voice_params(params: dict[str, Any]) -> None:
    """The voice parameters of a persona.json, before any model loads: finite, and the renderer's
    own within ``VOICE_PARAM_BOUNDS``."""
    for key, v in params.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise PersonaError(f"persona.json: voice parameter {key}={_shown(v)} is not a finite number")
        lo, hi = VOICE_PARAM_BOUNDS.get(key, (-MAX_VOICE_PARAM, MAX_VOICE_PARAM))
        if not lo <= float(v) <= hi:
            raise PersonaError(f"persona.json: voice parameter {key}={_shown(v)} is outside {lo:g}..{hi:g}; "
                               "recreate the persona")


def check_weights(path: str | os.PathLike | None) -> None:
    """A weights folder given by the user must exist (None: the weights shipped in the package). A
    folder without ``card.json`` is a folder of no models: asking for one says so (``ModelNotAvailable``)."""
    if path is None:
        return
    if not isinstance(path, (str, os.PathLike)):
        raise PersonaError(f"the weights path must be a folder path, got {type(path).__name__}")
    folder = Path(path)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise PersonaError(f"weights folder {_shown(str(folder), 200)} {what}; give a folder with card.json "
                           "(or no --weights for the shipped weights)")


def check_writable(path: str | os.PathLike, what: str = "--out", renamed: bool = False) -> None:
    """The nearest existing folder above ``path`` must let us create ``path`` there: probed by making
    and removing an empty temporary folder, so nothing is left behind. ``renamed``: ``path`` is a
    folder written whole and renamed into place (a persona folder), so it needs a name of its own."""
    import shutil
    import tempfile

    if not str(path).strip():
        raise PersonaError(f"{what} is empty; give a folder or file name")
    path = Path(path)
    if renamed and path.name in ("", ".", ".."):  # Path("x/..").name is "..", Path(".").name is ""
        raise PersonaError(f"{what} {str(path)!r} names no folder of its own; give a name such as npc42/")
    for parent in [path.parent.absolute(), *path.parent.absolute().parents]:
        if parent.exists():
            break
    else:  # pragma: no cover - the root exists
        return
    if not parent.is_dir():
        raise PersonaError(f"{what} {path}: {parent} is not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".digitalhuman-probe-", dir=parent)
    except OSError as e:
        raise PersonaError(f"{what} {path}: cannot write in {parent} ({e.strerror or e})") from None
    shutil.rmtree(probe, ignore_errors=True)


# ------------------------------------------------------------------ PersonaPipeline's methods, one call each
def _seed(seed: Any) -> None:
    from .persona import check_seed

    check_seed(seed)


def call_args(seed: Any, gender: Any, age: Any, race: Any, lines: Any, face: Any, voice: Any) -> None:
    """``PersonaPipeline.__call__``."""
    from .fusion import RACES

    _seed(seed)
    if gender is not None and gender not in ("female", "male"):
        raise PersonaError(f"gender must be 'female' or 'male' (or None), got {_shown(gender)}")
    if age is not None:
        check_number("age", age, AGE_RANGE[0], AGE_RANGE[1], "years")
    if race is not None and (not isinstance(race, str) or race not in RACES):
        raise PersonaError(f"race must be one of {', '.join(RACES)} (or None), got {_shown(race)}")
    check_lines(lines)
    check_flags(face=face, voice=voice)


def blend_args(a: Any, b: Any, t: Any, lines: Any) -> None:
    """``PersonaPipeline.blend``."""
    check_persona(a, "a")
    check_persona(b, "b")
    check_number("t", t, 0.0, 1.0)
    check_lines(lines)


MAX_SIBLING = 2**32 - 1


def sibling_args(persona: Any, k: Any, lines: Any, resemblance: Any, face: Any, voice: Any) -> None:
    """``PersonaPipeline.sibling`` (its ``gender`` is checked in the method)."""
    check_persona(persona)
    check_int("k (the family member)", k, 1, MAX_SIBLING)
    if resemblance is not None:
        check_number("resemblance", resemblance, 0.0, 1.0)
    check_lines(lines)
    check_flags(face=face, voice=voice)


def from_voice_args(audio: Any, sample_rate: Any, seed: Any, lines: Any, face: Any) -> None:
    """``PersonaPipeline.from_voice``: a float clip (the CLI reads files as float32)."""
    _seed(seed)
    if isinstance(audio, np.ndarray) and audio.dtype.kind != "f":
        raise ClipError(f"audio must be float samples in [-1, 1], got {audio.dtype}; divide integer PCM by "
                           "its full scale (32768 for int16)")
    check_clip(audio, sample_rate)
    check_lines(lines)
    check_flags(face=face)


def from_face_args(image: Any, seed: Any, lines: Any, keep_face: Any, voice: Any) -> None:
    """``PersonaPipeline.from_face``."""
    check_image(image)
    _seed(seed)
    check_lines(lines)
    check_flags(keep_face=keep_face, voice=voice)


def aged_args(persona: Any, years: Any, lines: Any, face: Any, voice: Any) -> None:
    """``PersonaPipeline.aged`` (the range of ``years`` for this persona is checked in the method)."""
    check_persona(persona)
    if isinstance(years, (bool, np.bool_)) or not isinstance(years, numbers.Real):
        raise PersonaError(f"years must be a number, got {type(years).__name__} {_shown(years)}")
    check_lines(lines)
    check_flags(face=face, voice=voice)


def say_args(persona: Any, text: Any) -> None:
    """``PersonaPipeline.say`` and ``stream``."""
    check_persona(persona, docs=True)
    check_text(text)


def pretrained_args(path: Any, face: Any, voice: Any, verify: Any) -> None:
    """``PersonaPipeline.from_pretrained``."""
    check_weights(path)
    check_flags(face=face, voice=voice, verify=verify)
