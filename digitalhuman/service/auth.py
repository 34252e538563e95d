"""The access token of a service shared on a LAN (``serve --token`` / ``DIGITALHUMAN_TOKEN``).

Every request but ``GET /health`` must carry the token, else 401 and nothing runs:

- API clients: ``Authorization: Bearer <token>``;
- a browser: open ``/studio/?token=<token>`` once; the answer is a redirect to the same URL without
  the token that sets it as a cookie (``HttpOnly; SameSite=Strict``), which the page's own requests
  then carry.

Compared with ``hmac.compare_digest`` (constant time). A token in any other query string is refused
with the same 401 as a wrong one.
"""

import hmac
import json
import re
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

__all__ = ["TokenAuth", "TOKEN_ENV", "COOKIE", "check_token", "OPEN_PATHS"]

TOKEN_ENV = "DIGITALHUMAN_TOKEN"
COOKIE = "digitalhuman_token"
OPEN_PATHS = frozenset({"/health"})
TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")


def check_token(token: str) -> str:
    """A usable token (16-256 URL- and cookie-safe characters), else ValueError saying how to make one."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ValueError("the access token must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = - (make one with: "
                         "python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    return token


class TokenAuth:
    """ASGI middleware: 401 for every HTTP request without the token (``/health`` aside)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, check_token(token).encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].removeprefix(scope.get("root_path", "").rstrip("/")) or "/"
        if path in OPEN_PATHS and scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given:  # a browser's first visit: the token in the URL, once, becomes a cookie
            if len(given) == 1 and self._ok(given[0]) and scope["method"] in ("GET", "HEAD"):
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                location = scope.get("root_path", "") + scope["path"] + ("?" + rest if rest else "")
                return await _answer(send, 303, b"", [(b"location", location.encode("latin-1")), (
                    b"set-cookie", f"{COOKIE}={given[0]}; Path=/; HttpOnly; SameSite=Strict".encode()),
                    (b"cache-control", b"no-store")])
            return await _unauthorized(send, "wrong access token")
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        cookie = None
        if "cookie" in headers:
            try:
                jar = SimpleCookie(headers["cookie"])
                cookie = jar[COOKIE].value if COOKIE in jar else None
            except Exception:  # noqa: BLE001 - an unreadable cookie header is no token
                cookie = None
        if self._ok(bearer) or self._ok(cookie):
            return await self.app(scope, receive, send)
        return await _unauthorized(send, "wrong access token" if (bearer or cookie) else "access token required")


async def _answer(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send, error: str):
    body = json.dumps({"error": error, "detail": "send 'Authorization: Bearer <token>', or open "
                                                 "/studio/?token=<token> once in a browser"}).encode()
    await _answer(send, 401, body, [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                    (b"cache-control", b"no-store")])
