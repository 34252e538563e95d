"""The command line's argument types and input files: everything checked before a model loads.

Each type raises ``argparse.ArgumentTypeError`` (argparse prints usage and exits 2); the readers
raise :class:`CLIError` (one ``digitalhuman: error:`` line, exit 1).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path


class CLIError(Exception):
    pass


def age_arg(value: str) -> float:
    try:
        age = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"age must be a number of years, got {_shown(value)}") from None
    if not 0 <= age <= 100:
        raise argparse.ArgumentTypeError(f"age must be between 0 and 100 years, got {_shown(value)}")
    return age


def _shown(value: str, limit: int = 40) -> str:
    """A user's value in a message: one bounded line (a 5,000-character argument is not echoed)."""
    text = repr(value).encode("unicode_escape").decode("ascii") if not value.isprintable() else repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def seed_arg(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {_shown(value)}")
    digits = value.lstrip("0") or "0"  # int() refuses strings of over 4,300 digits, zeros included
    if len(digits) > 20 or int(digits) > 2**64 - 1:
        raise argparse.ArgumentTypeError("seed must be at most 2**64-1")
    return int(digits)


def out_arg(value: str) -> Path:
    """An output path: not empty (``--out ''`` would be the working folder)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("the output path is empty; give a folder or file name")
    if "\0" in value:
        raise argparse.ArgumentTypeError(f"the output path holds a NUL character: {_shown(value)}")
    return Path(value)


def unit_arg(value: str) -> float:
    """A number (``blend --t``; its range 0-1 is checked by the command), the value echoed briefly."""
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {_shown(value)}") from None


def lipsync_arg(value: str) -> tuple[str, ...]:
    """``--lipsync FORMATS``: at least one format (``--lipsync ''`` would ask for none and write none)."""
    from .lipsync import lipsync_arg as formats

    if not value.strip(" ,"):
        from .lipsync import LIPSYNC_FORMATS

        raise argparse.ArgumentTypeError(f"no format given; name one or more of {','.join(LIPSYNC_FORMATS)} or all")
    return formats(value)


def aged_arg(value: str) -> float:
    """``--aged YEARS``: a finite number within +-100 (the persona's own age narrows it further)."""
    try:
        years = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--aged must be a number of years, got {_shown(value)}") from None
    if not -100 <= years <= 100:
        raise argparse.ArgumentTypeError(f"--aged must be between -100 and 100 years (the new age 0-100), "
                                         f"got {_shown(value)}")
    return years


def text_arg(value: str) -> str:
    """A line of dialogue: not empty, within the limit, no control characters (escape sequences,
    bells: they would be spoken and stored), and with something the voice can say (the same
    phonemiser as the voice, no model: emoji-only or punctuation-only text is refused)."""
    from .api_checks import clean_text_problem
    from .voice.limits import MAX_TEXT_CHARS

    problem = clean_text_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    if len(value) > MAX_TEXT_CHARS:
        raise argparse.ArgumentTypeError(f"text is {len(value)} characters; the limit is {MAX_TEXT_CHARS}")
    if _PLAIN_TEXT.fullmatch(value) and _LETTER.search(value):
        return value  # plain English words: speakable without asking the phonemiser (a second to import)
    from .voice.text import TextError, phonemize

    try:
        phonemize(value)
    except TextError as e:
        raise argparse.ArgumentTypeError(f"cannot be spoken: {e}") from None
    return value


_PLAIN_TEXT = re.compile(r"[A-Za-z .,;:!?'\"()\-\t\n\r]+")
_LETTER = re.compile(r"[A-Za-z]")


def port_arg(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 5 or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {_shown(value)}")
    return int(value)


def positive_int(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 12 or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (at most 12 digits), got {_shown(value)}")
    return int(value)


def train_seed_arg(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 10 or int(value) >= 2**31:
        raise argparse.ArgumentTypeError(f"expected a seed 0 to 2147483647, got {_shown(value)}")
    return int(value)


def check_writable(path: Path, renamed: bool = False) -> None:
    """``api_checks.check_writable`` (imported when used: the CLI starts without numpy or pydantic)."""
    from .api_checks import check_writable as check

    check(path, renamed=renamed)


def default_data(name: str) -> Path | None:
    """``../shared/data/NAME`` from the working folder or the source tree, where it exists."""
    for base in (Path.cwd() / ".." / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"):
        if (base / name).is_dir():
            return (base / name).resolve()
    return None


MAX_INPUT_BYTES = 50_000_000


def read_image(path: Path):
    """An RGB face image from a file, checked as the API checks it (``api_checks.check_image``)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from .api_checks import check_image
    from .persona import PersonaError

    if not path.is_file():
        raise CLIError(f"{path}: no such image file")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise CLIError(f"{path}: larger than {MAX_INPUT_BYTES // 1_000_000} MB")
    try:
        with Image.open(path) as im:
            if im.width * im.height > 4096 * 4096:
                raise CLIError(f"{path}: image larger than 4096x4096")
            image = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise CLIError(f"{path}: not a readable image ({e})") from None
    try:
        return check_image(image)
    except PersonaError as e:
        raise CLIError(f"{path}: {e}") from None


def read_audio(path: Path):
    """A voice clip from a file -> ``(mono float32 (N,), sample rate)``, checked as the API checks it
    (``api_checks.check_clip``: long enough, not silent ...) before any model loads."""
    import numpy as np
    import soundfile as sf

    from .api_checks import check_clip
    from .persona import PersonaError

    if not path.is_file():
        raise CLIError(f"{path}: no such audio file")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise CLIError(f"{path}: larger than {MAX_INPUT_BYTES // 1_000_000} MB")
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise CLIError(f"{path}: not a readable audio file ({e})") from None
    if len(audio) > 120 * sr:
        raise CLIError(f"{path}: longer than 120 s; give a short clip of the voice")
    try:
        return check_clip(np.ascontiguousarray(audio.mean(axis=1)), int(sr))
    except PersonaError as e:
        raise CLIError(f"{path}: {e}") from None
