"""``create_app`` (the FastAPI app) and ``serve`` (uvicorn, loopback by default)."""

import ipaddress
import json
import logging
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI

from .. import __version__
from ..persona import MAX_SEED
from ..pipeline import PersonaPipeline
from ..voice.limits import MAX_TEXT_CHARS
from .core import PersonaService
from .middleware import (BODY_TIMEOUT_S, BodyLimit, HeadTimeoutH11Protocol, HeadWithoutBody, install_error_handlers,
                         strict_query)
from .auth import TOKEN_ENV, TokenAuth, check_token
from .models import ErrorResponse, persona_request_model
from .pages import add_pages
from .routes import add_routes

__all__ = ["create_app", "serve", "is_loopback", "DEFAULT_MAX_BODY", "DEFAULT_MAX_LINES", "DEFAULT_MAX_PENDING",
           "CONFIG_ENV", "ServeError"]

log = logging.getLogger("digitalhuman.service")

DEFAULT_MAX_BODY = 64 * 1024  # bytes of request body
DEFAULT_MAX_LINES = 8  # lines of dialogue per POST /personas
DEFAULT_MAX_PENDING = 64  # generations allowed to wait for the inference threads
CONFIG_ENV = "DIGITALHUMAN_SERVER_CONFIG"  # create_app kwargs (JSON) for uvicorn worker processes


def create_app(pipeline_or_weights_dir: PersonaPipeline | str | os.PathLike | None = None, *,
               max_body: int = DEFAULT_MAX_BODY, max_lines: int = DEFAULT_MAX_LINES,
               inference_threads: int = 1, max_pending: int = DEFAULT_MAX_PENDING, cache_size: int = 128,
               warm_up: bool = True, body_timeout: float = BODY_TIMEOUT_S, token: str | None = None) -> FastAPI:
    """Build the FastAPI app. Models load here (``PersonaPipeline.from_pretrained``) unless a
    pipeline is given; every request shares them.

    ``inference_threads``: generations that may run at once (the pipeline was measured thread-safe,
    but on a 2-core CPU one at a time is as fast). ``max_pending``: requests that may wait for a
    thread before the service answers 503. ``cache_size``: recent personas and lines kept (LRU).
    ``warm_up``: run one small generation at startup so the first request is not slow.
    ``body_timeout``: seconds a client may take to send a request body before it gets 408.
    ``token``: an access token every request but ``/health`` must carry (``auth``), else 401.
    """
    if token is not None:
        check_token(token)
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

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up:
            svc.executor.submit(svc.warm_up)  # not awaited: /health answers meanwhile
        yield
        svc.executor.shutdown(wait=False, cancel_futures=True)

    errors = {422: {"model": ErrorResponse, "description": "invalid input"},
              503: {"model": ErrorResponse, "description": "model not available, or busy"}}
    app = FastAPI(title="digitalhuman", version=__version__, lifespan=lifespan, responses=errors,
                  dependencies=[Depends(strict_query)],
                  description="Seeded NPC personas: a face and a matching voice. Same seed and constraints, "
                              "same bytes. Errors are JSON {error, detail}.")
    app.state.service = svc
    app.add_middleware(BodyLimit, max_body=max_body, body_timeout=float(body_timeout))
    app.add_middleware(HeadWithoutBody)
    if token is not None:
        app.add_middleware(TokenAuth, token=token)  # outermost: nothing runs before the token is checked
    install_error_handlers(app)
    limits = {"max_body_bytes": max_body, "max_lines": max_lines, "max_text_chars": MAX_TEXT_CHARS,
              "max_pending": max_pending, "inference_threads": inference_threads}
    add_routes(app, svc, persona_request_model(max_lines), limits)
    add_pages(app)
    app.openapi = _openapi_with_exact_bounds(app)  # type: ignore[method-assign]
    return app


def _exact_integer_bounds(node, exact: tuple[int, ...] = (MAX_SEED,)):
    """FastAPI's OpenAPI model holds ``minimum``/``maximum`` as floats: 2**64-1 became 2**64 (a bound
    the schema then allowed and the service refused). Integer schemas get integer bounds back."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                v = node.get(k)
                if isinstance(v, float) and v.is_integer():
                    node[k] = next((e for e in exact if float(e) == v), int(v))
        for v in node.values():
            _exact_integer_bounds(v, exact)
    elif isinstance(node, list):
        for v in node:
            _exact_integer_bounds(v, exact)
    return node


def _openapi_with_exact_bounds(app: FastAPI):
    plain = app.openapi

    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = _exact_integer_bounds(plain())
        return app.openapi_schema

    return openapi


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


class ServeError(ValueError):
    """The service cannot start as asked (one line for the user)."""


def serve(host: str = "127.0.0.1", port: int = 8080, weights: str | os.PathLike | None = None, workers: int = 1, *,
          max_body: int = DEFAULT_MAX_BODY, max_lines: int = DEFAULT_MAX_LINES, inference_threads: int = 1,
          max_pending: int = DEFAULT_MAX_PENDING, body_timeout: float = BODY_TIMEOUT_S,
          log_level: str = "info", token: str | None = None) -> None:
    """Run the service with uvicorn (blocks). Loopback by default; each worker process loads the models once.

    ``token`` (or the environment variable ``DIGITALHUMAN_TOKEN``): an access token every request but
    ``/health`` must carry. Binding anything but loopback without one raises ``ServeError``."""
    import uvicorn

    if not 0 <= port <= 65535:
        raise ValueError(f"port must be within 0..65535, got {port}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    if token is not None:
        try:
            check_token(token)
        except ValueError as e:
            raise ServeError(str(e)) from None
    if not is_loopback(host) and token is None:
        raise ServeError(f"serving on {host} (not loopback) needs an access token: give --token TOKEN or set "
                         f"{TOKEN_ENV} (make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if token is not None:
        print(f"digitalhuman: an access token is required on {host}:{port}: API clients send 'Authorization: Bearer "
              f"<token>'; browsers open http://{host}:{port}/studio/?token=<token> once (/health is open)",
              file=sys.stderr)
    kw = dict(max_body=max_body, max_lines=max_lines, inference_threads=inference_threads, max_pending=max_pending,
              body_timeout=body_timeout, token=token)
    if workers == 1:
        app = create_app(weights, **kw)  # load (and verify) the models before binding the port
        uvicorn.run(app, host=host, port=port, log_level=log_level, http=HeadTimeoutH11Protocol)
    else:
        os.environ[CONFIG_ENV] = json.dumps({"weights": str(Path(weights).resolve()) if weights else None, **kw})
        uvicorn.run("digitalhuman.service.app:_app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, http=HeadTimeoutH11Protocol)
