"""HTTP service: personas, faces and new lines of dialogue over JSON, PNG and WAV.

>>> app = create_app("path/to/weights")          # models load here, once per process
>>> serve(port=8080)                             # uvicorn on 127.0.0.1:8080 (the shipped weights)

Endpoints (``docs/http.md`` has the details and curl examples; ``/docs`` the OpenAPI page):

- ``POST /personas``                 {seed, gender?, age?, race?, lines?} -> persona.json + links
- ``GET  /personas/{seed}/face.png`` ?gender&age&race -> image/png
- ``POST /personas/{seed}/say``      {text, gender?, age?, race?} -> audio/wav
- ``POST /personas/{seed}/say.json`` same body -> {text, sample_rate, duration_s, visemes, audio_base64}
- ``GET  /personas/{seed}/say.wav``  ?text&gender&age&race -> audio/wav (what ``audio_urls`` point to)
- ``GET  /health``, ``GET /info``

Everything is stateless: a persona is its seed plus constraints, so every URL regenerates the same
bytes (a small LRU cache only saves the work). Generation runs on a dedicated thread pool
(``inference_threads``, default 1: one generation at a time) so the event loop, and ``/health``,
stay responsive; at most ``max_pending`` generations may wait, beyond that the answer is 503 with
``Retry-After``. Errors are JSON ``{"error": "...", "detail": ...}``: 422 invalid input, 404 unknown
route, 413 body over ``max_body`` bytes, 503 model not available or busy, 500 without a traceback
(the traceback goes to the server log).
"""

# No `from __future__ import annotations`: FastAPI must see the request model built inside create_app.
import asyncio
import base64
import dataclasses
import ipaddress
import json
import logging
import os
import sys
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, NamedTuple
from urllib.parse import urlencode

import h11
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import __version__
from .fusion import RACES
from .persona import MAX_SEED, Persona, PersonaError, SpokenLine
from .pipeline import ModelNotAvailable, PersonaPipeline
from .voice.limits import MAX_TEXT_CHARS
from .voice.text import TextError

__all__ = ["create_app", "serve", "DEFAULT_MAX_BODY", "DEFAULT_MAX_LINES"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024  # bytes of request body
HEAD_TIMEOUT_S = 10.0  # a client must send its request line and headers within this time
BODY_TIMEOUT_S = 30.0  # ... and its body within this time, or get 408
DEFAULT_MAX_LINES = 8  # lines of dialogue per POST /personas
DEFAULT_MAX_PENDING = 64  # generations allowed to wait for the inference threads
LINE_CACHE_BYTES = 64 * 2**20  # audio kept in the cache of recent lines (a 2000-character line is minutes)
CONFIG_ENV = "DIGITALHUMAN_SERVER_CONFIG"  # create_app kwargs (JSON) for uvicorn worker processes

Gender = Literal["female", "male"]
Race = Literal[RACES]  # type: ignore[valid-type]
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED, description="persona seed, 0 .. 2**64-1")]
Age = Annotated[float, Field(strict=True, ge=0, le=100, description="age in years (0-100)")]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS,
                            description=f"a line of English dialogue, at most {MAX_TEXT_CHARS} characters")]
SEED_PATH = PathParam(ge=0, le=MAX_SEED, description="persona seed, 0 .. 2**64-1")


# ------------------------------------------------------------------------------------- schemas
class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SayRequest(_Request):
    """A new line in the voice of persona ``{seed}`` (give the same constraints it was created with)."""

    text: Text
    gender: Gender | None = None
    age: Age | None = None
    race: Race | None = None


class SpokenLineJSON(BaseModel):
    text: str
    sample_rate: int
    duration_s: float
    visemes: list[dict[str, Any]] = Field(description="[{t_start, t_end, viseme}] in seconds, Oculus viseme set")
    audio_base64: str = Field(description="the WAV file (mono PCM 16-bit), base64")


class PersonaResponse(BaseModel):
    persona: dict[str, Any] = Field(description="the persona.json document (as `digitalhuman create` writes it)")
    face_url: str | None = Field(description="GET it for face.png (null without a face model)")
    audio_urls: list[str] = Field(description="GET each for the WAV of persona.lines[i]")


class ErrorResponse(BaseModel):
    error: str
    detail: Any = None


def _persona_request_model(max_lines: int) -> type[BaseModel]:
    class PersonaRequest(_Request):
        """A persona: the seed decides everything the constraints leave open."""

        seed: Seed
        gender: Gender | None = None
        age: Age | None = None
        race: Race | None = Field(None, description="appearance group of the face")
        lines: list[Text] = Field(default_factory=list, max_length=max_lines,
                                  description=f"lines of dialogue to render (at most {max_lines})")

    return PersonaRequest


class PersonaKey(NamedTuple):
    seed: int
    gender: str | None
    age: float | None
    race: str | None

    def query(self, **extra: str) -> str:
        pairs = (("gender", self.gender), ("age", _fmt_age(self.age)), ("race", self.race))
        q = {k: v for k, v in pairs if v is not None}
        q.update(extra)
        return "?" + urlencode(q) if q else ""


def _fmt_age(age: float | None) -> str | None:
    if age is None:
        return None
    return str(int(age)) if float(age).is_integer() else repr(float(age))


def _key(seed: int, gender: str | None, age: float | None, race: str | None) -> PersonaKey:
    # ages are floats everywhere (as in the CLI), so 60 and 60.0 are the same persona and persona.json
    return PersonaKey(seed, gender, None if age is None else float(age), race)


# -------------------------------------------------------------------------------------- errors
class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def _error(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    detail = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        if e.get("type") == "json_invalid":  # loc is ("body", character position)
            msg = f"not valid JSON: {(e.get('ctx') or {}).get('error', 'decode error')} at character {loc[-1]}"
            loc = ["body"]
        elif e.get("type") == "model_attributes_type" and loc == ["body"]:
            msg = "the body must be a JSON object sent as Content-Type: application/json"
        else:
            msg = str(e.get("msg", "invalid"))
        detail.append({"loc": loc, "msg": msg, "type": e.get("type")})
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"])
    return _error(422, f"invalid request: {where + ': ' if where else ''}{first['msg']}", detail)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_body`` bytes with 413 before anything parses them.

    A ``Content-Length`` over the limit is refused at once; otherwise the body is read (bounded) into
    memory and replayed to the app, so chunked uploads are counted too. A body that takes longer than
    ``body_timeout`` seconds to arrive (a slow client) is answered 408 and the connection closed.
    """

    def __init__(self, app, max_body: int, body_timeout: float = BODY_TIMEOUT_S):
        self.app, self.max_body, self.body_timeout = app, max_body, body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _error(400, "bad request", "invalid Content-Length")(scope, receive, send)
            if declared > self.max_body:
                return await self._too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                return await _error(408, "request timeout", f"the body must arrive within {self.body_timeout:g} s",
                                    headers={"Connection": "close"})(scope, receive, send)
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await self._too_large(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        response = _error(413, "request body too large", f"the limit is {self.max_body} bytes",
                          headers={"Connection": "close"})
        await response(scope, receive, send)


# ------------------------------------------------------------------------------------- service
class _LRU:
    """At most ``size`` entries and ``max_bytes`` of ``weight(value)``; not thread-safe on its own."""

    def __init__(self, size: int, max_bytes: int = 0, weight: Callable[[Any], int] = lambda v: 0):
        self.size, self.max_bytes, self.weight = size, max_bytes, weight
        self.data: OrderedDict = OrderedDict()
        self.bytes = 0

    def get(self, key):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        return None

    def put(self, key, value):
        w = self.weight(value)
        if self.size <= 0 or key in self.data or (self.max_bytes and w > self.max_bytes):
            return
        self.data[key] = value
        self.bytes += w
        while len(self.data) > self.size or (self.max_bytes and self.bytes > self.max_bytes):
            self.bytes -= self.weight(self.data.popitem(last=False)[1])


class PersonaService:
    """The shared pipeline, its inference threads and caches (one per process)."""

    def __init__(self, pipe: PersonaPipeline, inference_threads: int, max_pending: int, cache_size: int):
        import threading

        self.pipe = pipe
        self.inference_threads = inference_threads
        self.executor = ThreadPoolExecutor(max_workers=inference_threads, thread_name_prefix="digitalhuman-infer")
        self.max_pending = max_pending
        self.pending = 0  # touched only on the event loop thread
        self._lock = threading.Lock()  # guards the caches (worker threads)
        self._personas = _LRU(cache_size)
        self._lines = _LRU(cache_size, LINE_CACHE_BYTES, lambda ln: ln.audio.nbytes)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pending >= self.max_pending:
            raise ApiError(503, "busy", f"{self.pending} requests are waiting; retry shortly", {"Retry-After": "1"})
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._guard, fn, args)
        finally:
            self.pending -= 1

    @staticmethod
    def _guard(fn, args):
        try:
            return fn(*args)
        except ModelNotAvailable as e:
            raise ApiError(503, "model not available", str(e)) from None
        except (PersonaError, TextError) as e:
            raise ApiError(422, f"invalid request: {e}", str(e)) from None
        except ApiError:
            raise
        except Exception:
            log.exception("generation failed")
            raise ApiError(500, "internal error", "generation failed; see the server log") from None

    # The methods below run on the inference threads.
    def persona(self, key: PersonaKey) -> Persona:
        with self._lock:
            p = self._personas.get(key)
        if p is None:
            p = self.pipe(seed=key.seed, gender=key.gender, age=key.age, race=key.race,
                          face=self.pipe.face is not None, voice=self.pipe.voice is not None)
            with self._lock:
                self._personas.put(key, p)
        return p

    def line(self, key: PersonaKey, text: str) -> SpokenLine:
        if self.pipe.voice is None:
            raise ModelNotAvailable("no voice model in the weights folder; this service makes faces only")
        with self._lock:
            ln = self._lines.get((key, text))
        if ln is None:
            ln = self.pipe.say(self.persona(key), text)
            with self._lock:
                self._lines.put((key, text), ln)
        return ln

    def persona_doc(self, key: PersonaKey, lines: list[str]) -> dict[str, Any]:
        if lines and self.pipe.voice is None:
            raise ModelNotAvailable("no voice model in the weights folder; ask without lines")
        p = self.persona(key)
        spoken = [self.line(key, t) for t in lines]
        return dataclasses.replace(p, lines=spoken).to_doc().model_dump(mode="json")

    def face_png(self, key: PersonaKey) -> bytes:
        if self.pipe.face is None:
            raise ModelNotAvailable("no face model in the weights folder")
        return self.persona(key).face_png_bytes()

    def wav(self, key: PersonaKey, text: str) -> bytes:
        return self.line(key, text).wav_bytes()

    def say_json(self, key: PersonaKey, text: str) -> dict[str, Any]:
        ln = self.line(key, text)
        return {"text": ln.text, "sample_rate": ln.sample_rate, "duration_s": round(ln.duration_s, 4),
                "visemes": ln.visemes, "audio_base64": base64.b64encode(ln.wav_bytes()).decode("ascii")}

    def warm_up(self) -> None:
        """Load lazily built state (gruut's lexicon, per thread) before the first request."""
        try:
            if self.pipe.prior is not None and self.pipe.voice is not None:
                self.pipe.say(self.pipe(seed=0, face=False), "Hello.")
        except Exception:  # noqa: BLE001 - a warm-up failure shows up again on the first real request
            log.warning("warm-up failed", exc_info=True)


# ------------------------------------------------------------------------------------------ app
def create_app(pipeline_or_weights_dir: PersonaPipeline | str | os.PathLike | None = None, *,
               max_body: int = DEFAULT_MAX_BODY, max_lines: int = DEFAULT_MAX_LINES,
               inference_threads: int = 1, max_pending: int = DEFAULT_MAX_PENDING, cache_size: int = 128,
               warm_up: bool = True, body_timeout: float = BODY_TIMEOUT_S) -> FastAPI:
    """Build the FastAPI app. Models load here (``PersonaPipeline.from_pretrained``) unless a
    pipeline is given; every request shares them.

    ``inference_threads``: generations that may run at once (the pipeline was measured thread-safe,
    but on a 2-core CPU one at a time is as fast). ``max_pending``: requests that may wait for a
    thread before the service answers 503. ``cache_size``: recent personas and lines kept (LRU).
    ``warm_up``: run one small generation at startup so the first request is not slow.
    ``body_timeout``: seconds a client may take to send a request body before it gets 408.
    """
    for name, v, lo in (("max_body", max_body, 1), ("max_lines", max_lines, 0),
                        ("inference_threads", inference_threads, 1), ("max_pending", max_pending, 1),
                        ("cache_size", cache_size, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if isinstance(body_timeout, bool) or not isinstance(body_timeout, (int, float)) or not 0 < body_timeout <= 3600:
        raise ValueError(f"body_timeout must be within (0, 3600] seconds, got {body_timeout!r}")
    if isinstance(pipeline_or_weights_dir, PersonaPipeline):
        pipe = pipeline_or_weights_dir
    else:
        pipe = PersonaPipeline.from_pretrained(pipeline_or_weights_dir)
    svc = PersonaService(pipe, inference_threads, max_pending, cache_size)
    PersonaRequest = _persona_request_model(max_lines)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up:
            svc.executor.submit(svc.warm_up)  # not awaited: /health answers meanwhile
        yield
        svc.executor.shutdown(wait=False, cancel_futures=True)

    errors = {422: {"model": ErrorResponse, "description": "invalid input"},
              503: {"model": ErrorResponse, "description": "model not available, or busy"}}
    app = FastAPI(title="digitalhuman", version=__version__, lifespan=lifespan, responses=errors,
                  description="Seeded NPC personas: a face and a matching voice. Same seed and constraints, "
                              "same bytes. Errors are JSON {error, detail}.")
    app.state.service = svc
    app.add_middleware(BodyLimit, max_body=max_body, body_timeout=float(body_timeout))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        try:
            phrase = HTTPStatus(exc.status_code).phrase.lower()
        except ValueError:
            phrase = "error"
        detail = f"no route {request.method} {request.url.path}" if exc.status_code == 404 else exc.detail
        return _error(exc.status_code, phrase, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error", "see the server log")

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.post("/personas", response_model=PersonaResponse, summary="Create a persona (JSON + links)")
    async def create_persona(req: PersonaRequest, request: Request):  # type: ignore[valid-type]
        key = _key(req.seed, req.gender, req.age, req.race)
        doc = await svc.run(svc.persona_doc, key, list(req.lines))
        root = f"{base(request)}/personas/{key.seed}"
        return {"persona": doc,
                "face_url": f"{root}/face.png{key.query()}" if pipe.face is not None else None,
                "audio_urls": [f"{root}/say.wav{key.query(text=t)}" for t in req.lines]}

    @app.get("/personas/{seed}/face.png", response_class=Response, summary="The persona's face (PNG)",
             responses={200: {"content": {"image/png": {}}}})
    async def face_png(seed: Annotated[int, SEED_PATH], gender: Gender | None = None,
                       age: Annotated[float | None, Query(ge=0, le=100)] = None, race: Race | None = None):
        png = await svc.run(svc.face_png, _key(seed, gender, age, race))
        return Response(png, media_type="image/png")

    @app.post("/personas/{seed}/say", response_class=Response, summary="A new line in the persona's voice (WAV)",
              responses={200: {"content": {"audio/wav": {}}}})
    async def say(seed: Annotated[int, SEED_PATH], req: SayRequest):
        wav = await svc.run(svc.wav, _key(seed, req.gender, req.age, req.race), req.text)
        return Response(wav, media_type="audio/wav")

    @app.post("/personas/{seed}/say.json", response_model=SpokenLineJSON,
              summary="A new line: WAV as base64 plus the viseme track")
    async def say_json(seed: Annotated[int, SEED_PATH], req: SayRequest):
        return await svc.run(svc.say_json, _key(seed, req.gender, req.age, req.race), req.text)

    @app.get("/personas/{seed}/say.wav", response_class=Response, summary="A line as a URL (WAV)",
             responses={200: {"content": {"audio/wav": {}}}})
    async def say_wav(seed: Annotated[int, SEED_PATH],
                      text: Annotated[str, Query(min_length=1, max_length=MAX_TEXT_CHARS)],
                      gender: Gender | None = None, age: Annotated[float | None, Query(ge=0, le=100)] = None,
                      race: Race | None = None):
        wav = await svc.run(svc.wav, _key(seed, gender, age, race), text)
        return Response(wav, media_type="audio/wav")

    @app.get("/health", summary="Liveness (never waits for a generation)")
    async def health():
        return {"status": "ok"}

    @app.get("/info", summary="Package version, models and limits")
    async def info():
        out = pipe.info()
        out["limits"] = {"max_body_bytes": max_body, "max_lines": max_lines, "max_text_chars": MAX_TEXT_CHARS,
                         "max_pending": max_pending, "inference_threads": inference_threads}
        out["available"] = {"face": pipe.face is not None, "voice": pipe.voice is not None,
                            "fusion": pipe.prior is not None}
        return out

    return app


# ---------------------------------------------------------------------------------------- serve
def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _app_from_env() -> FastAPI:
    """uvicorn factory for worker processes (``workers > 1``): create_app kwargs from the environment."""
    cfg = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    weights = cfg.pop("weights", None)
    return create_app(weights, **cfg)


class HeadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head (request line and headers).

    uvicorn closes idle keep-alive connections, but a client that connects and then sends nothing,
    or trickles its headers a byte at a time, holds its connection for ever; enough of them exhaust
    the process's file descriptors. This protocol closes such a connection ``timeout`` seconds
    after it opened (or after its previous response) unless a whole request head has arrived.
    """

    timeout = HEAD_TIMEOUT_S
    _head_timer = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection whose request head did not arrive within %g s", self.timeout)
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def serve(host: str = "127.0.0.1", port: int = 8080, weights: str | os.PathLike | None = None, workers: int = 1, *,
          max_body: int = DEFAULT_MAX_BODY, max_lines: int = DEFAULT_MAX_LINES, inference_threads: int = 1,
          max_pending: int = DEFAULT_MAX_PENDING, body_timeout: float = BODY_TIMEOUT_S,
          log_level: str = "info") -> None:
    """Run the service with uvicorn (blocks). Loopback by default; each worker process loads the models once."""
    import uvicorn

    if not 0 <= port <= 65535:
        raise ValueError(f"port must be within 0..65535, got {port}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not is_loopback(host):
        print(f"digitalhuman: warning: serving on {host}, not loopback: anyone who can reach port {port} can use "
              "this service (there is no authentication); put it behind a proxy you control", file=sys.stderr)
    kw = dict(max_body=max_body, max_lines=max_lines, inference_threads=inference_threads, max_pending=max_pending,
              body_timeout=body_timeout)
    if workers == 1:
        app = create_app(weights, **kw)  # load (and verify) the models before binding the port
        uvicorn.run(app, host=host, port=port, log_level=log_level, http=HeadTimeoutH11Protocol)
    else:
        os.environ[CONFIG_ENV] = json.dumps({"weights": str(Path(weights).resolve()) if weights else None, **kw})
        uvicorn.run("digitalhuman.server:_app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, http=HeadTimeoutH11Protocol)
