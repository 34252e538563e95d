"""The endpoints (``docs/http.md`` has the details and curl examples)."""

# No `from __future__ import annotations`: FastAPI must see the request model built inside create_app.
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BeforeValidator

from ..lipsync import MEDIA_TYPES
from ..persona import LIPSYNC_FORMATS, MAX_SEED
from ..voice.limits import MAX_TEXT_CHARS
from .core import PersonaService
from .core import VIDEO_TYPES
from .models import (SEED_DOC, TEXT_DOC, TEXT_PATTERN, Accent, ExportRequest, Gender, HealthResponse, InfoResponse,
                     LipsyncFormat, PersonaKey, PersonaResponse, Race, SayJSONRequest, SayRequest, SpokenLineJSON,
                     MAX_VIDEO_CHARS, VideoFormat, VideoRequest, key_of, make_key, no_controls, path_seed)
from .streaming import NDJSON, stream_response

__all__ = ["add_routes", "CACHE_CONTROL"]

CACHE_CONTROL = "public, max-age=86400"  # same URL, same bytes (for one version and weights); ETag revalidates
SeedPath = Annotated[int, PathParam(ge=0, le=MAX_SEED, description=SEED_DOC), BeforeValidator(path_seed)]
AgeQuery = Annotated[float | None, Query(ge=0, le=100, description="age in years (0-100)")]
TextQuery = Annotated[str, Query(min_length=1, max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN, description=TEXT_DOC),
                      AfterValidator(no_controls)]
SeedQuery = Annotated[int | None, Query(ge=0, le=MAX_SEED, description="a second seed to blend with"),
                      BeforeValidator(path_seed)]


def persona_key(seed: SeedPath, gender: Gender | None = None, age: AgeQuery = None, race: Race | None = None,
                accent: Annotated[Accent | None, Query(description="us or gb")] = None,
                voice_like: Annotated[str | None, Query(min_length=1, max_length=200,
                                                        pattern=r"^[a-z]{2}_[a-z]+(:[0-9.]+)?(,[a-z]{2}_[a-z]+(:[0-9.]+)?)*$",
                                                        description="a stock voice or a mix (af_heart:0.7,bf_emma:0.3)")] = None,
                pitch: Annotated[float | None, Query(ge=-6, le=6, description="semitones")] = None,
                pace: Annotated[float | None, Query(ge=0.7, le=1.4, description="x speaking rate")] = None,
                blend: SeedQuery = None,
                blend_t: Annotated[float | None, Query(ge=0, le=1, description="weight of the second seed")] = None,
                family: Annotated[int | None, Query(ge=1, le=99, description="family member k")] = None,
                aged: Annotated[float | None, Query(ge=-100, le=100, description="years older (negative: younger)")] = None
                ) -> PersonaKey:
    """The persona of a GET: the seed plus the same shape fields as the POST bodies."""
    return make_key(seed, gender, age, race, accent=accent, voice_like=voice_like, pitch=pitch, pace=pace,
                    blend=blend, blend_t=blend_t, family=family, aged=aged)


Key = Annotated[PersonaKey, Depends(persona_key)]
VideoTextQuery = Annotated[str, Query(min_length=1, max_length=MAX_VIDEO_CHARS, pattern=TEXT_PATTERN,
                                      description=f"the line, 1-{MAX_VIDEO_CHARS} characters"),
                          AfterValidator(no_controls)]
NOT_MODIFIED = {304: {"description": "not modified (If-None-Match matched the ETag)"}}
HEADERS_DOC = {"ETag": {"description": "strong tag of the bytes", "schema": {"type": "string"}},
               "Cache-Control": {"description": CACHE_CONTROL, "schema": {"type": "string"}}}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def _conditional(request: Request, svc: PersonaService, etag: str, media_type: str, fn, *args) -> Response:
    """A deterministic resource: 304 when the client holds the same tag (nothing is generated)."""
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    out = await svc.run(fn, *args)
    body, media_type = out if isinstance(out, tuple) else (out, media_type)
    return Response(body, media_type=media_type, headers=headers)


def _get_and_head(app: FastAPI, path: str, endpoint, *, summary: str, name: str, content: dict[str, Any],
                  conditional: bool, response_model=None) -> None:
    """``GET path`` and ``HEAD path`` (the same headers, no body), both in the OpenAPI schema."""
    ok: dict[str, Any] = {"description": "OK"} if response_model else {"description": "OK", "content": content}
    if conditional:
        ok["headers"] = HEADERS_DOC
    responses: dict[int | str, Any] = {200: ok, **(NOT_MODIFIED if conditional else {})}
    app.add_api_route(path, endpoint, methods=["GET"], summary=summary, name=name, operation_id=name,
                      response_class=JSONResponse if response_model else Response, responses=responses,
                      response_model=response_model)
    head_ok: dict[str, Any] = {"description": "the headers of the GET, no body"}
    if conditional:
        head_ok["headers"] = HEADERS_DOC
    app.add_api_route(path, endpoint, methods=["HEAD"], summary=summary + " (headers only)", name=name + "_head",
                      operation_id=name + "_head", response_class=Response,
                      responses={200: head_ok, **(NOT_MODIFIED if conditional else {})})


def add_routes(app: FastAPI, svc: PersonaService, PersonaRequest, limits: dict[str, int]) -> None:  # noqa: N803
    pipe = svc.pipe

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.post("/personas", response_model=PersonaResponse, summary="Create a persona (JSON + links)")
    async def create_persona(req: PersonaRequest, request: Request):  # type: ignore[valid-type]
        key = key_of(req.seed, req)
        doc = await svc.run(svc.persona_doc, key, list(req.lines), list(req.lipsync))
        root = f"{base(request)}/personas/{key.seed}"
        return {"persona": doc,
                "face_url": f"{root}/face.png{key.query()}" if pipe.face is not None else None,
                "audio_urls": [f"{root}/say.wav{key.query(text=t)}" for t in req.lines],
                "lipsync_urls": [{f: f"{root}/lipsync/{f}{key.query(text=t)}" for f in LIPSYNC_FORMATS
                                  if f in req.lipsync} for t in req.lines]}

    async def face_png(request: Request, key: Key):
        return await _conditional(request, svc, svc.etag("face", key), "image/png", svc.face_png, key)

    _get_and_head(app, "/personas/{seed}/face.png", face_png, summary="The persona's face (PNG)", name="face_png",
                  content={"image/png": {}}, conditional=True)

    @app.post("/personas/{seed}/say", response_class=Response, summary="A new line in the persona's voice (WAV)",
              responses={200: {"content": {"audio/wav": {}}}})
    async def say(seed: SeedPath, req: SayRequest):
        wav = await svc.run(svc.wav, key_of(seed, req), req.text)
        return Response(wav, media_type="audio/wav")

    @app.post("/personas/{seed}/say.json", response_model=SpokenLineJSON,
              summary="A new line: WAV as base64, the viseme track, word timings and lip-sync files")
    async def say_json(seed: SeedPath, req: SayJSONRequest):
        return await svc.run(svc.say_json, key_of(seed, req), req.text, list(req.lipsync))

    @app.post("/personas/{seed}/say/stream", response_class=Response,
              summary="A new line, streamed as it is rendered (NDJSON: one object per chunk, then done)",
              responses={200: {"description": "one JSON object per line: {chunk, t_start, sample_rate, pcm16 "
                                              "(base64 little-endian mono PCM16), visemes, words} per chunk, "
                                              "then {done, duration_s, chunks}; times from the line's start",
                               "content": {NDJSON: {}}}})
    async def say_stream(seed: SeedPath, req: SayRequest):
        return await stream_response(svc, key_of(seed, req), req.text)

    async def say_wav(request: Request, key: Key, text: TextQuery):
        return await _conditional(request, svc, svc.etag("wav", key, text), "audio/wav", svc.wav, key, text)

    _get_and_head(app, "/personas/{seed}/say.wav", say_wav, summary="A line as a URL (WAV)", name="say_wav",
                  content={"audio/wav": {}}, conditional=True)

    async def lipsync_file(request: Request, key: Key, fmt: Annotated[LipsyncFormat, PathParam()], text: TextQuery):
        return await _conditional(request, svc, svc.etag("lipsync", fmt, key, text), MEDIA_TYPES[fmt],
                                  svc.lipsync_file, key, text, fmt)

    _get_and_head(app, "/personas/{seed}/lipsync/{fmt}", lipsync_file, name="lipsync_file",
                  summary="A line's lip-sync file (oculus/vrm JSON, arkit CSV, rhubarb TSV)",
                  content={t: {} for t in sorted(set(MEDIA_TYPES.values()))}, conditional=True)

    async def mouths_png(request: Request, key: Key):
        return await _conditional(request, svc, svc.etag("mouths.png", key), "image/png", svc.mouths_png, key)

    _get_and_head(app, "/personas/{seed}/mouths.png", mouths_png, name="mouths_png", conditional=True,
                  summary="The mouth-shape atlas (PNG: the frames side by side; mouths.json says which is which)",
                  content={"image/png": {}})

    async def mouths_json(request: Request, key: Key):
        return await _conditional(request, svc, svc.etag("mouths.json", key), "application/json", svc.mouths_json, key)

    _get_and_head(app, "/personas/{seed}/mouths.json", mouths_json, name="mouths_json", conditional=True,
                  summary="The atlas's frame table, viseme -> frame map, blink and rest frames (JSON)",
                  content={"application/json": {}})

    async def video_file(request: Request, key: Key, fmt: Annotated[VideoFormat, PathParam()], text: VideoTextQuery):
        return await _conditional(request, svc, svc.etag("video", fmt, key, text), VIDEO_TYPES[fmt], svc.video,
                                  key, text, fmt)

    _get_and_head(app, "/personas/{seed}/video/{fmt}", video_file, name="video_file", conditional=True,
                  summary="A line's talking portrait (mp4: H.264 + AAC, webm: VP9 + Opus)",
                  content={t: {} for t in VIDEO_TYPES.values()})

    @app.post("/personas/{seed}/video", response_class=Response, summary="A line's talking portrait (MP4 or WebM)",
              responses={200: {"content": {t: {} for t in VIDEO_TYPES.values()}}})
    async def video(seed: SeedPath, req: VideoRequest):
        body, media_type = await svc.run(svc.video, key_of(seed, req), req.text, req.format)
        return Response(body, media_type=media_type)

    @app.post("/export.zip", response_class=Response, summary="Personas as one zip in the batch layout",
              responses={200: {"content": {"application/zip": {}}}})
    async def export_zip(req: ExportRequest):
        items = [(key_of(p.seed, p), list(p.lines)) for p in req.personas]
        body = await svc.run(svc.export_zip, items)
        return Response(body, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="personas.zip"',
                                 "Cache-Control": "no-store"})

    async def health():
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    _get_and_head(app, "/health", health, summary="Liveness (never waits for a generation)", name="health",
                  content={"application/json": {}}, conditional=False, response_model=HealthResponse)

    async def info():
        out = pipe.info()
        out["limits"] = dict(limits)
        out["available"] = {"face": pipe.face is not None, "voice": pipe.voice is not None,
                            "fusion": pipe.prior is not None}
        out["lipsync_formats"] = list(LIPSYNC_FORMATS)
        return JSONResponse(InfoResponse(**out).model_dump(mode="json"), headers={"Cache-Control": "no-cache"})

    _get_and_head(app, "/info", info, summary="Package version, models and limits", name="info",
                  content={"application/json": {}}, conditional=False, response_model=InfoResponse)
