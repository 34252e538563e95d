"""The command line's argument types and input files: everything checked before a model loads.

Each type raises ``argparse.ArgumentTypeError`` (argparse prints usage and exits 2); the readers
raise :class:`CLIError` (one ``digitalhuman: error:`` line, exit 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path


class CLIError(Exception):
    pass


def age_arg(value: str) -> float:
    try:
        age = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"age must be a number of years, got {value!r}") from None
    if not 0 <= age <= 100:
        raise argparse.ArgumentTypeError(f"age must be between 0 and 100 years, got {value!r}")
    return age


def seed_arg(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {value!r}")
    seed = int(value)
    if seed > 2**64 - 1:
        raise argparse.ArgumentTypeError("seed must be at most 2**64-1")
    return seed


def aged_arg(value: str) -> float:
    """``--aged YEARS``: a finite number within +-100 (the persona's own age narrows it further)."""
    try:
        years = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--aged must be a number of years, got {value!r}") from None
    if not -100 <= years <= 100:
        raise argparse.ArgumentTypeError(f"--aged must be between -100 and 100 years (the new age 0-100), got {value!r}")
    return years


def text_arg(value: str) -> str:
    """A line of dialogue: not empty, within the limit, and with something the voice can say
    (the same phonemiser as the voice, no model: emoji-only or punctuation-only text is refused)."""
    from .voice.limits import MAX_TEXT_CHARS

    if not value.strip():
        raise argparse.ArgumentTypeError("text is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise argparse.ArgumentTypeError(f"text is {len(value)} characters; the limit is {MAX_TEXT_CHARS}")
    from .voice.text import TextError, phonemize

    try:
        phonemize(value)
    except TextError as e:
        raise argparse.ArgumentTypeError(f"cannot be spoken: {e}") from None
    return value


def port_arg(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value!r}")
    return int(value)


def positive_int(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def train_seed_arg(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) >= 2**31:
        raise argparse.ArgumentTypeError(f"expected a seed 0 to 2147483647, got {value!r}")
    return int(value)


def default_data(name: str) -> Path | None:
    """``../shared/data/NAME`` from the working folder or the source tree, where it exists."""
    for base in (Path.cwd() / ".." / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"):
        if (base / name).is_dir():
            return (base / name).resolve()
    return None


MAX_INPUT_BYTES = 50_000_000


def read_image(path: Path):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise CLIError(f"{path}: no such image file")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise CLIError(f"{path}: larger than {MAX_INPUT_BYTES // 1_000_000} MB")
    try:
        with Image.open(path) as im:
            if im.width * im.height > 4096 * 4096:
                raise CLIError(f"{path}: image larger than 4096x4096")
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise CLIError(f"{path}: not a readable image ({e})") from None


def read_audio(path: Path):
    import numpy as np
    import soundfile as sf

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
    return np.ascontiguousarray(audio.mean(axis=1)), int(sr)
