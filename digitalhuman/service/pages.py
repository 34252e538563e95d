"""The Persona Studio page (``/studio/``): static HTML, CSS and JavaScript from ``studio/`` in the
package, an ordinary client of the HTTP API. Nothing is loaded from another host (the
Content-Security-Policy says so to the browser too)."""

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

__all__ = ["add_pages", "STUDIO_DIR", "CSP"]

STUDIO_DIR = Path(__file__).with_name("studio")
FILES = {"index.html": "text/html; charset=utf-8", "studio.css": "text/css; charset=utf-8",
         "studio.js": "text/javascript; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def add_pages(app: FastAPI) -> None:
    def page(name: str) -> Response:
        path = STUDIO_DIR / name
        if name not in FILES or not path.is_file():
            raise HTTPException(404)
        return Response(path.read_bytes(), media_type=FILES[name],
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    get_head = dict(methods=["GET", "HEAD"], include_in_schema=False)  # HEAD: link checkers, curl -I

    @app.api_route("/", **get_head)
    @app.api_route("/studio", **get_head)
    async def to_studio(request: Request):
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/studio/", status_code=307)

    @app.api_route("/studio/", **get_head)
    async def studio_index():
        return page("index.html")

    @app.api_route("/studio/{name}", **get_head)
    async def studio_file(name: str):
        return page(name)
