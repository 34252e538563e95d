"""ASGI plumbing of the service: JSON errors, the body limit, HEAD, strict query strings, and
uvicorn's protocol with a deadline for request heads."""

import asyncio
import logging
from http import HTTPStatus
from typing import Any

import h11
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ApiError", "error_response", "validation_error", "BodyLimit", "HeadWithoutBody", "strict_query",
           "install_error_handlers", "HeadTimeoutH11Protocol", "HEAD_TIMEOUT_S", "BODY_TIMEOUT_S"]

log = logging.getLogger("digitalhuman.service")

HEAD_TIMEOUT_S = 10.0  # a client must send its request line and headers within this time
BODY_TIMEOUT_S = 30.0  # ... and its body within this time, or get 408
# FastAPI answers 400 with this detail when a body cannot be decoded at all (e.g. not UTF-8); it is
# invalid input like any other, so it is answered 422 as docs/http.md says.
_UNDECODABLE = "There was an error parsing the body"


# -------------------------------------------------------------------------------------- errors
class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def error_response(status: int, error: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    detail = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        if e.get("type") == "json_invalid":  # loc is ("body", character position)
            msg = f"not valid JSON: {(e.get('ctx') or {}).get('error', 'decode error')} at character {loc[-1]}"
            loc = ["body"]
        elif e.get("type") == "string_pattern_mismatch":  # the only pattern: the text must have a letter
            msg = "nothing speakable: the text needs at least one letter A-Z"
        elif e.get("type") == "model_attributes_type" and loc == ["body"]:
            msg = "the body must be a JSON object sent as Content-Type: application/json"
        else:
            msg = str(e.get("msg", "invalid"))
        detail.append({"loc": loc, "msg": msg, "type": e.get("type")})
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"])
    return error_response(422, f"invalid request: {where + ': ' if where else ''}{first['msg']}", detail)


def _unparsable(cause: BaseException | None) -> tuple[str, str]:
    """Why a body that FastAPI could not parse was refused: ``(message, type)``. Python's JSON reader
    refuses some valid JSON too (numbers of over 4,300 digits, nesting deeper than its recursion)."""
    if isinstance(cause, RecursionError):
        return "JSON nested too deeply (a request is a flat object; see docs/http.md)", "json_too_deep"
    if isinstance(cause, ValueError) and not isinstance(cause, UnicodeError) and "digits" in str(cause):
        return ("a number has too many digits (over 4,300; a seed is at most 18446744073709551615)",
                "json_number_too_long")
    return "not valid JSON (the bytes cannot be decoded)", "json_invalid"


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
                return await error_response(400, "bad request", "invalid Content-Length")(scope, receive, send)
            if declared > self.max_body:
                return await self._too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                return await error_response(408, "request timeout",
                                            f"the body must arrive within {self.body_timeout:g} s",
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
        response = error_response(413, "request body too large", f"the limit is {self.max_body} bytes",
                          headers={"Connection": "close"})
        await response(scope, receive, send)


class HeadWithoutBody:
    """ASGI middleware: a ``HEAD`` request gets the headers its ``GET`` would (length, ETag ...) and
    no body, whatever the server under it does with bodies of HEAD responses."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def send_no_body(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        return await self.app(scope, receive, send_no_body)


def _query_names(dependant) -> set[str]:
    """The query parameters of a route and of its dependencies (``persona_key``)."""
    out = {p.alias for p in dependant.query_params}
    for d in dependant.dependencies:
        out |= _query_names(d)
    return out


async def strict_query(request: Request) -> None:
    """App-wide dependency: a query parameter the route does not declare is refused (422), as POST
    bodies refuse unknown fields, so ``?gendr=male`` does not silently give another persona; so is
    one given twice (``?gender=male&gender=female``)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    allowed = _query_names(dependant) if dependant is not None else set()
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in allowed]
    repeated = [k for k in dict.fromkeys(request.query_params.keys())
                if k in allowed and len(request.query_params.getlist(k)) > 1]
    if repeated:  # ?gender=male&gender=female: which one was meant? (the last one used to win, silently)
        raise RequestValidationError([{"type": "repeated_parameter", "loc": ("query", k),
                                       "msg": "given more than once; give each query parameter once",
                                       "input": request.query_params.getlist(k)} for k in repeated])
    if unknown:
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", k),
                                       "msg": "unknown query parameter" + (
                                           f"; this endpoint takes {', '.join(sorted(allowed))}" if allowed
                                           else "; this endpoint takes none"),
                                       "input": request.query_params.get(k)} for k in unknown])


def install_error_handlers(app: FastAPI) -> None:
    """Every error answered as JSON ``{error, detail}``; never a traceback."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == _UNDECODABLE:
            why, kind = _unparsable(exc.__cause__)
            return error_response(422, f"invalid request: body: {why}", [{"loc": ["body"], "msg": why, "type": kind}])
        try:
            phrase = HTTPStatus(exc.status_code).phrase.lower()
        except ValueError:
            phrase = "error"
        detail = f"no route {request.method} {request.url.path}" if exc.status_code == 404 else exc.detail
        return error_response(exc.status_code, phrase, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error", "see the server log")


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
