"""Request and response types of the HTTP service (pydantic; they are the OpenAPI schema)."""

# No `from __future__ import annotations`: FastAPI must see the request model built inside create_app.
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlencode

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ..fusion import RACES
from ..persona import LIPSYNC_FORMATS, MAX_SEED, PersonaDoc, Viseme, Word
from ..voice.limits import MAX_TEXT_CHARS
from .middleware import ApiError

__all__ = ["TEXT_PATTERN", "TEXT_DOC", "no_controls", "path_seed", "Gender", "Race", "Seed", "Age", "Text", "LipsyncFormat",
           "SayRequest", "SayJSONRequest", "SpokenLineJSON", "PersonaResponse", "ErrorResponse", "HealthResponse", "InfoResponse",
           "persona_request_model", "PersonaKey", "make_key", "key_of", "SHAPE_FIELDS",
           "Accent", "VideoRequest", "ExportRequest", "MAX_VIDEO_CHARS",
           "MAX_EXPORT", "MAX_EXPORT_LINES"]


def _seed(v):
    """A seed is a JSON integer within 0..2**64-1, with the exact bound in the message (pydantic's
    own writes it as a float, 18446744073709552000). A number written with a fraction or exponent
    (2.0, 1e19) is refused: above 2**53 a float is not the seed the client meant."""
    if isinstance(v, float):
        raise PydanticCustomError("int_type", "seed must be a JSON integer written without a decimal point or "
                                  "exponent (e.g. 42), got {value}", {"value": repr(v)})
    if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= MAX_SEED:
        raise PydanticCustomError("seed_range", f"seed must be from 0 to {MAX_SEED} (2**64-1)")
    return v


def path_seed(v):
    """The seed of a URL: digits of any length answered with the exact bound (pydantic's own says
    "exceeded maximum size" past 4,300 digits)."""
    if isinstance(v, str) and v.isascii() and v.isdigit() and len(v.lstrip("0")) > len(str(MAX_SEED)):
        raise PydanticCustomError("seed_range", f"seed must be from 0 to {MAX_SEED} (2**64-1)")
    return v


def no_controls(text: str) -> str:
    """Control characters (escape sequences, bells ...) would be spoken as noise and stored: refused."""
    from ..api_checks import clean_text_problem

    problem = clean_text_problem(text) if isinstance(text, str) else None
    if problem:
        raise PydanticCustomError("text_controls", problem)
    return text


Gender = Literal["female", "male"]
Race = Literal[RACES]  # type: ignore[valid-type]
LipsyncFormat = Literal[LIPSYNC_FORMATS]  # type: ignore[valid-type]
SEED_DOC = "persona seed, 0 .. 2**64-1"
# pydantic writes the bounds of a strict int as floats (2**64-1 -> 1.8446744073709552e+19, which is
# 2**64 and refuses a value the schema allows); json_schema_extra puts the exact integers back.
Seed = Annotated[int, BeforeValidator(lambda v: _seed(v)),
                 Field(strict=True, ge=0, le=MAX_SEED, description=SEED_DOC,
                       json_schema_extra={"minimum": 0, "maximum": MAX_SEED})]
Age = Annotated[float, Field(strict=True, ge=0, le=100, description="age in years (0-100)")]
# Something to say: at least one Latin letter (text made only of symbols has nothing speakable, so
# the schema says so instead of the service refusing text the schema allowed).
TEXT_PATTERN = "[A-Za-z]"
TEXT_DOC = (f"a line of English dialogue: 1-{MAX_TEXT_CHARS} characters with at least one letter A-Z and no "
            "control characters (tabs and line breaks are allowed)")
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN, description=TEXT_DOC),
                 AfterValidator(no_controls)]
Lipsync = Annotated[list[LipsyncFormat], Field(max_length=len(LIPSYNC_FORMATS),
                                               description="lip-sync formats to make for each line")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Accent = Literal["us", "gb"]
VoiceLike = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z]{2}_[a-z]+(:[0-9.]+)?(,[a-z]{2}_[a-z]+(:[0-9.]+)?)*$",
                                 description="a stock voice (af_heart) or a weighted mix (af_heart:0.7,bf_emma:0.3)")]
Pitch = Annotated[float, Field(strict=True, ge=-6, le=6, description="voice pitch nudge in semitones (-6..6)")]
Pace = Annotated[float, Field(strict=True, ge=0.7, le=1.4, description="speaking rate (0.7-1.4 x)")]
BlendT = Annotated[float, Field(strict=True, ge=0, le=1, description="blend weight of the second seed (0-1)")]
Family = Annotated[int, Field(strict=True, ge=1, le=99, description="family member k (1, 2, ...) of the persona")]
Aged = Annotated[float, Field(strict=True, ge=-100, le=100, description="the persona this many years older "
                                                                      "(negative: younger); the new age must be 0-100")]
SHAPE_FIELDS = ("gender", "age", "race", "accent", "voice_like", "pitch", "pace", "blend", "blend_t", "family", "aged")


class _Shape(_Request):
    """Who the persona is: the seed's persona with these constraints, voice casting and shaping
    (applied in this order: blend with seed ``blend`` at ``blend_t``, family member ``family``, ``aged``)."""

    gender: Gender | None = None
    age: Age | None = None
    race: Race | None = Field(None, description="appearance group of the face")
    accent: Accent | None = None
    voice_like: VoiceLike | None = None
    pitch: Pitch | None = None
    pace: Pace | None = None
    blend: Seed | None = Field(None, description="a second seed to blend with (face and voice together)")
    blend_t: BlendT | None = Field(None, description="blend weight of the second seed (default 0.5 with blend)")
    family: Family | None = None
    aged: Aged | None = None


class SayRequest(_Shape):
    """A new line in the voice of persona ``{seed}`` (give the same constraints it was created with)."""

    text: Text


class SayJSONRequest(SayRequest):
    """``SayRequest`` plus the lip-sync files to return with the line."""

    lipsync: Lipsync = Field(default_factory=list, max_length=len(LIPSYNC_FORMATS))


def persona_request_model(max_lines: int) -> type[BaseModel]:
    class PersonaRequest(_Shape):
        """A persona: the seed decides everything the constraints leave open."""

        seed: Seed
        lines: list[Text] = Field(default_factory=list, max_length=max_lines,
                                  description=f"lines of dialogue to render (at most {max_lines})")
        lipsync: Lipsync = Field(default_factory=list, max_length=len(LIPSYNC_FORMATS))

    return PersonaRequest


class SpokenLineJSON(BaseModel):
    text: str
    sample_rate: int
    duration_s: float
    visemes: list[Viseme] = Field(description="the Oculus viseme track, contiguous from 0 to duration_s")
    words: list[Word] = Field(description="the spoken words with their times (s)")
    audio_base64: str = Field(description="the WAV file (mono PCM 16-bit), base64")
    lipsync: dict[LipsyncFormat, str] = Field(description="the lip-sync files asked for, by format (file text)")


class PersonaResponse(BaseModel):
    persona: PersonaDoc = Field(description="the persona.json document (as `digitalhuman create` writes it)")
    face_url: str | None = Field(description="GET it for face.png (null without a face model)")
    audio_urls: list[str] = Field(description="GET each for the WAV of persona.lines[i]")
    lipsync_urls: list[dict[LipsyncFormat, str]] = Field(
        description="per line: GET each for the lip-sync file named in persona.lines[i].lipsync")


class ErrorResponse(BaseModel):
    error: str
    detail: Any = None


class HealthResponse(BaseModel):
    status: Literal["ok"]


class Limits(BaseModel):
    max_body_bytes: int
    max_lines: int
    max_text_chars: int
    max_pending: int
    inference_threads: int


class InfoResponse(BaseModel):
    package_version: str
    models: dict[str, dict[str, Any]] = Field(description="card.json entries of the loaded weights, by model")
    limits: Limits
    available: dict[Literal["face", "voice", "fusion"], bool]
    lipsync_formats: list[LipsyncFormat]


class PersonaKey(NamedTuple):
    seed: int
    gender: str | None
    age: float | None
    race: str | None
    accent: str | None = None
    voice_like: str | None = None
    pitch: float | None = None
    pace: float | None = None
    blend: int | None = None
    blend_t: float | None = None
    family: int | None = None
    aged: float | None = None

    def query(self, **extra: str) -> str:
        q = {k: _fmt_num(v) if isinstance(v, float) else str(v)
             for k, v in zip(self._fields[1:], self[1:]) if v is not None}
        q.update(extra)
        return "?" + urlencode(q) if q else ""

    def shape(self) -> dict[str, Any]:
        """The non-default fields besides the seed (what a request body would carry)."""
        return {k: v for k, v in zip(self._fields[1:], self[1:]) if v is not None}


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _float(x: float | None) -> float | None:
    return None if x is None else float(x)


def make_key(seed: int, gender: str | None = None, age: float | None = None, race: str | None = None, *,
             accent: str | None = None, voice_like: str | None = None, pitch: float | None = None,
             pace: float | None = None, blend: int | None = None, blend_t: float | None = None,
             family: int | None = None, aged: float | None = None) -> PersonaKey:
    # numbers are floats everywhere (as in the CLI), so 60 and 60.0 are the same persona and persona.json;
    # a blend weight without a second seed means nothing (refused), a second seed without one is 0.5
    if blend_t is not None and blend is None:
        raise ApiError(422, "invalid request: blend_t needs blend (the second seed)", None)
    if blend is not None and blend_t is None:
        blend_t = 0.5
    return PersonaKey(seed, gender, _float(age), race, accent, voice_like, _float(pitch), _float(pace), blend,
                      _float(blend_t), family, _float(aged))


def key_of(seed: int, req: BaseModel) -> PersonaKey:
    """The persona of a request body (``_Shape`` fields)."""
    return make_key(seed, **{k: getattr(req, k) for k in SHAPE_FIELDS})


VideoFormat = Literal["mp4", "webm"]
MAX_EXPORT = 32  # personas per export zip
MAX_EXPORT_LINES = 32  # lines of dialogue per export zip, all personas together
MAX_VIDEO_CHARS = 500  # a video's line (~30 s): a VP9 encode runs near real time on one core
VideoText = Annotated[str, Field(min_length=1, max_length=MAX_VIDEO_CHARS, pattern=TEXT_PATTERN,
                                 description=f"a line of English dialogue, 1-{MAX_VIDEO_CHARS} characters (else as "
                                             "for say)"), AfterValidator(no_controls)]


class VideoRequest(SayRequest):
    """A line's talking portrait: ``SayRequest`` plus the container."""

    text: VideoText
    format: VideoFormat = Field("mp4", description="mp4 (H.264 + AAC) or webm (VP9 + Opus)")


class ExportPersona(_Shape):
    """One persona of an export: its seed, shape and the lines to render into its folder."""

    seed: Seed
    lines: list[Text] = Field(default_factory=list, max_length=8, description="lines of dialogue (at most 8)")


class ExportRequest(_Request):
    """Personas to export as one zip in the ``batch`` layout."""

    personas: list[ExportPersona] = Field(min_length=1, max_length=MAX_EXPORT,
                                          description=f"1-{MAX_EXPORT} personas (a studio shortlist), at most "
                                                      f"{MAX_EXPORT_LINES} lines in all")

    @model_validator(mode="after")
    def _few_lines(self):
        if (n := sum(len(p.lines) for p in self.personas)) > MAX_EXPORT_LINES:
            raise ValueError(f"at most {MAX_EXPORT_LINES} lines in one export, got {n}")
        return self
