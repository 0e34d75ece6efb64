"""Public pages: the OpenAPI document and the explanation of each error code."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response


class OpenApiPage:
    """The OpenAPI document, built on first use, then served as is (it is public and ~250 KB)."""

    def __init__(self) -> None:
        self.body: bytes | None = None

    async def respond(self, request: Request) -> Response:
        if self.body is None:
            from restcomm.api.framework import REGISTRY
            from restcomm.api.openapi import build_openapi

            self.body = JSONResponse(build_openapi(REGISTRY)).body
        return Response(self.body, media_type="application/json")


async def error_page(request: Request) -> Response:
    """/restcomm/errors/{code}.html, the page every error's ``more_info`` links to."""
    code = request.path_params["code"]
    from restcomm.codes import ERRORS

    try:
        number = int(code.removesuffix(".html"))
    except ValueError:
        return HTMLResponse("<h1>Unknown error code</h1>", 404)
    entry = ERRORS.get(number)
    if entry is None:
        return HTMLResponse("<h1>Unknown error code</h1>", 404)
    title, text = entry.title, entry.explanation
    return HTMLResponse(f"<h1>{number}: {escape(title)}</h1><p>{escape(text)}</p>")


class HomePage:
    """``GET /``: a small index of where things are (API, OpenAPI, errors, probes)."""

    def __init__(self, settings: object) -> None:
        self.settings = settings

    async def respond(self, request: Request) -> Response:
        from restcomm.welcome import index

        return JSONResponse(index(self.settings))  # type: ignore[arg-type]
