"""A persona: seed -> latent -> traits, its face and voice lines, and ``persona.json``.

``persona.json`` is validated on load (pydantic). File names inside it are plain names in the
persona folder: anything with a path separator, ``..`` or a drive is refused, so a hostile file can
never make the tool read or write outside its folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .voice.visemes import LIPSYNC_FORMATS  # re-exported: the lip-sync files a line can name

SCHEMA_VERSION = 3  # 2: lines have word timings (`words`) and may name lip-sync files (`lipsync`);
# 3: the voice is Kokoro's (`voice` holds the voice prior's numbers, `traits.accent` us / gb)
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)
MAX_SEED = 2**64 - 1
LATENT_DIM = 160
VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class PersonaError(ValueError):
    """A persona file or folder that cannot be used (clear message, no traceback needed)."""


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise PersonaError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise PersonaError(f"seed must be between 0 and 2**64-1, got {seed}")
    return seed


def persona_latent(seed: int) -> np.ndarray:
    """The persona latent ``(LATENT_DIM,)`` float64 ~ N(0, I), from numpy's PCG64 (platform-stable)."""
    rng = np.random.Generator(np.random.PCG64(check_seed(seed)))
    return rng.standard_normal(LATENT_DIM)


def safe_file_name(name: str) -> str:
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"unsafe file name {str(name)[:60]!r}: must be a plain file name inside the persona folder")
    return name


# ------------------------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelRef(_Strict):
    id: str = Field(max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Traits(_Strict):
    gender: Literal["female", "male"]
    female: float = Field(ge=0.0, le=1.0, description="continuous gender presentation, 1 = female")
    age: float = Field(ge=0.0, le=120.0)
    race: Literal["white", "black", "asian", "indian", "other"] | None = None
    accent: Literal["us", "gb"] | None = Field(default=None, description="American or British English (schema 3)")


class Viseme(_Strict):
    t_start: float = Field(ge=0.0)
    t_end: float = Field(ge=0.0)
    viseme: Literal[VISEMES]  # type: ignore[valid-type]


class Word(_Strict):
    word: str = Field(max_length=200)
    t_start: float = Field(ge=0.0)
    t_end: float = Field(ge=0.0)


class Line(_Strict):
    text: str = Field(min_length=1, max_length=2000)
    audio: str
    sample_rate: int = Field(gt=0, le=192000)
    duration_s: float = Field(ge=0.0)
    visemes: list[Viseme]
    words: list[Word] = Field(default_factory=list, description="spoken words with their times (schema 2)")
    lipsync: dict[Literal[LIPSYNC_FORMATS], str] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="lip-sync files of this line beside its WAV, by format (schema 2)")

    @field_validator("audio")
    @classmethod
    def _plain_audio_name(cls, v: str) -> str:
        return safe_file_name(v)

    @field_validator("lipsync")
    @classmethod
    def _plain_lipsync_names(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: safe_file_name(name) for k, name in v.items()}


class PersonaDoc(_Strict):
    schema_version: int
    package_version: str = Field(max_length=50)
    seed: int = Field(ge=0, le=MAX_SEED)
    models: dict[str, ModelRef]
    latent: list[float] = Field(min_length=LATENT_DIM, max_length=LATENT_DIM)
    traits: Traits
    voice: dict[str, float] = Field(default_factory=dict, max_length=64)
    origin: dict[str, Any] = Field(default_factory=dict, max_length=16)
    face: str | None
    mouths: str | None = Field(default=None, description="the mouth-shape atlas' description, mouths.json (schema 3)")
    lines: list[Line] = Field(max_length=1000)

    @field_validator("face", "mouths")
    @classmethod
    def _plain_face_name(cls, v: str | None) -> str | None:
        return v if v is None else safe_file_name(v)


def parse_persona_json(text: str | bytes) -> PersonaDoc:
    """Validate a ``persona.json`` document; raise PersonaError with a one-line reason."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: also ints over 4300 digits
        raise PersonaError(f"persona.json is not valid JSON ({str(e)[:120]})") from None
    if not isinstance(data, dict):
        raise PersonaError("persona.json must hold a JSON object")
    version = data.get("schema_version")
    if isinstance(version, bool) or version not in SUPPORTED_SCHEMA_VERSIONS:  # True == 1 in Python
        shown = repr(version).encode("unicode_escape").decode("ascii")  # a hostile file: one bounded line
        raise PersonaError(
            f"persona.json schema_version {shown[:60] + '...' if len(shown) > 60 else shown} is not supported "
            f"(this digitalhuman reads "
            f"{list(SUPPORTED_SCHEMA_VERSIONS)}); recreate the persona with this version"
        )
    try:
        return PersonaDoc.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]).encode("unicode_escape").decode("ascii")[:200]
        msg = str(err["msg"]).encode("unicode_escape").decode("ascii")[:300]
        raise PersonaError(f"persona.json is invalid at {where or 'top level'}: {msg}") from None


# ------------------------------------------------------------------------------------------ persona
def pcm16(audio: np.ndarray) -> np.ndarray:
    """float audio in [-1, 1] -> int16 samples, sample by sample (so chunks convert like the whole)."""
    return np.clip(np.round(np.asarray(audio, np.float64) * 32767.0), -32768, 32767).astype(np.int16)


@dataclass
class SpokenLine:
    text: str
    audio: np.ndarray  # (N,) float32 in [-1, 1]
    sample_rate: int
    visemes: list[dict]
    words: list[dict] = field(default_factory=list)  # [{word, t_start, t_end}] seconds
    chunk_starts: list[int] = field(default_factory=list)  # first sample of each rendered chunk

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    def wav_bytes(self) -> bytes:
        """Mono PCM 16-bit WAV bytes (deterministic)."""
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, pcm16(self.audio), self.sample_rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    def lipsync_files(self, stem: str, formats: tuple[str, ...] | list[str]) -> dict[str, tuple[str, bytes]]:
        """``{format: (file name, bytes)}`` of this line's lip-sync files, named ``<stem>.<format>.<ext>``."""
        from .lipsync import lipsync_files

        return lipsync_files(self, stem, formats)

    def save(self, path: str | os.PathLike, *, visemes: bool = True, lipsync: Sequence[str] = (),
             overwrite: bool = False) -> Path:
        """Write the line as a WAV file (mono PCM 16-bit) and, with ``visemes``, its viseme track and
        word timings beside it (``hello.wav`` -> ``hello.visemes.json``), plus the ``lipsync`` files
        (``hello.arkit.csv`` ...). Each file is written atomically (temporary file + rename);
        existing files are refused unless ``overwrite``. -> the WAV path."""
        from .checkpoint import atomic_write_bytes
        from .lipsync import say_sidecars

        path = Path(path)
        check_line_out(path, overwrite, visemes)
        sidecars, doc = say_sidecars(self, path.name, lipsync)
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic writes replace a planted symlink instead of writing through it
        atomic_write_bytes(path, self.wav_bytes())
        for name, data in sidecars.items():
            atomic_write_bytes(path.with_name(name), data)
        if visemes:
            atomic_write_bytes(visemes_path(path), json.dumps(doc, indent=1).encode())
        return path


def visemes_path(wav: Path) -> Path:
    """``hello.wav`` -> ``hello.visemes.json``."""
    return Path(wav).with_suffix(".visemes.json")


def check_line_out(path: str | os.PathLike, overwrite: bool = False, visemes: bool = True) -> None:
    """Refuse a WAV path that is not ``*.wav``, is a folder, or (without ``overwrite``) exists."""
    path = Path(path)
    if path.is_dir():
        raise PersonaError(f"{path} is a folder; give the path of a .wav file to write")
    if path.suffix.lower() != ".wav":
        raise PersonaError(f"{path}: the output must be a .wav file")
    for p in [path] + ([visemes_path(path)] if visemes else []):
        if p.is_dir():
            raise PersonaError(f"{p} is a folder; give the path of a .wav file to write")
        if (p.exists() or p.is_symlink()) and not overwrite:
            raise PersonaError(f"{p} exists; add --overwrite to replace it (or choose another file)")
    _check_parents(path)


def _check_parents(path: Path) -> None:
    for parent in path.parents:  # the nearest existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise PersonaError(f"{path}: {parent} is not a folder")
            return


@dataclass
class Persona:
    seed: int
    latent: np.ndarray
    traits: dict[str, Any]
    voice: dict[str, float]
    models: dict[str, dict[str, str]]
    face: np.ndarray | None = None  # (R, R, 3) uint8
    lines: list[SpokenLine] = field(default_factory=list)
    origin: dict[str, Any] = field(default_factory=dict)
    atlas: Any = None  # portrait.Atlas: the mouth-shape and blink frames of the face (mouths.png + mouths.json)

    def face_png_bytes(self) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.face).save(buf, format="PNG", optimize=False, compress_level=6)
        return buf.getvalue()

    def to_doc(self, lipsync: tuple[str, ...] | list[str] = ()) -> PersonaDoc:
        """The ``persona.json`` document; ``lipsync``: formats whose files are named in each line."""
        from . import __version__
        from .lipsync import file_names

        return PersonaDoc(
            schema_version=SCHEMA_VERSION,
            package_version=__version__,
            seed=self.seed,
            models={k: ModelRef(**v) for k, v in self.models.items()},
            latent=[float(x) for x in self.latent],
            traits=Traits(**self.traits),
            voice={k: float(v) for k, v in self.voice.items()},
            origin=self.origin,
            face="face.png" if self.face is not None else None,
            mouths="mouths.json" if self.atlas is not None else None,
            lines=[
                Line(text=ln.text, audio=f"voice_{i:02d}.wav", sample_rate=ln.sample_rate,
                     duration_s=round(ln.duration_s, 4), visemes=[Viseme(**v) for v in ln.visemes],
                     words=[Word(**w) for w in ln.words], lipsync=file_names(f"voice_{i:02d}", lipsync))
                for i, ln in enumerate(self.lines)
            ],
        )

    def files(self, lipsync: tuple[str, ...] | list[str] = (), extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
        """Every file of the persona folder, name -> bytes (persona.json last). ``lipsync``: formats
        of ``LIPSYNC_FORMATS`` to write beside each WAV (``voice_00.arkit.csv`` ...); ``extra``: more
        files by plain name (the talking-portrait videos ``voice_00.mp4`` ...)."""
        out: dict[str, bytes] = {safe_file_name(k): v for k, v in (extra or {}).items()}
        if self.face is not None:
            out["face.png"] = self.face_png_bytes()
        if self.atlas is not None:
            out["mouths.png"], out["mouths.json"] = self.atlas.png_bytes(), self.atlas.json_bytes()
        for i, ln in enumerate(self.lines):
            out[f"voice_{i:02d}.wav"] = ln.wav_bytes()
            out.update(ln.lipsync_files(f"voice_{i:02d}", lipsync).values())
        out["persona.json"] = (self.to_doc(lipsync).model_dump_json(indent=2) + "\n").encode()
        return out

    def save(self, folder: str | os.PathLike, lipsync: tuple[str, ...] | list[str] = (), *,
             overwrite: bool = True, extra: dict[str, bytes] | None = None) -> Path:
        """Write the persona folder atomically: built under a temporary name, then renamed.

        An existing folder is replaced only if it is a previous persona folder (holds persona.json)
        and ``overwrite`` is true (the default); never a folder holding anything else.
        """
        folder = Path(folder)
        write_persona_folder(folder, self.files(lipsync, extra), overwrite=overwrite)
        return folder


def check_persona_out(folder: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse an output folder that is a file, holds other files, or (without ``overwrite``) holds
    a persona already. An empty or missing folder is fine. Writes nothing."""
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise PersonaError(f"{folder} exists and is not a folder")
        if any(folder.iterdir()):
            if not (folder / "persona.json").is_file():
                raise PersonaError(f"{folder} is not empty and is not a persona folder; choose another --out")
            if not overwrite:
                raise PersonaError(f"{folder} holds a persona already; add --overwrite to replace it "
                                   "(or choose another --out)")
    _check_parents(folder)


def write_persona_folder(folder: Path, files: dict[str, bytes], overwrite: bool = True) -> None:
    folder = Path(folder)
    check_persona_out(folder, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        for name, data in files.items():
            with open(tmp / safe_file_name(name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_persona_doc(folder: str | os.PathLike, max_bytes: int = 5_000_000) -> PersonaDoc:
    path = Path(folder) / "persona.json"
    if not path.is_file():
        raise PersonaError(f"{path} not found")
    if path.stat().st_size > max_bytes:
        raise PersonaError(f"{path} is larger than {max_bytes} bytes")
    return parse_persona_json(path.read_bytes())
