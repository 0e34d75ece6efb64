"""The URL router: which endpoint serves a path and method."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from restcomm.util import API_VERSION
from restcomm.web.errors import method_not_allowed, not_found

_BARE_API = f"/{API_VERSION}/"  # resource `uri` fields are relative to /restcomm, as Restcomm's are


class Router:
    """Routing by path segments: a trie walked once per request, whatever the number of routes.

    Literal segments are tried before parameters (``/IncomingPhoneNumbers/Local`` before
    ``/IncomingPhoneNumbers/{Sid}``), with backtracking; a parameter matches one non-empty segment,
    as Starlette's ``{name}`` does. A path that matches with another method is 405 with Allow.
    """

    class Node:
        __slots__ = ("literal", "param", "methods")

        def __init__(self) -> None:
            self.literal: dict[str, Router.Node] = {}
            self.param: Router.Node | None = None
            self.methods: dict[str, tuple[Route, tuple[str, ...]]] = {}

    def __init__(self, routes: list[Route]):
        self.root = Router.Node()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        node, names = self.root, []
        for seg in route.path.split("/")[1:]:
            if seg.startswith("{") and seg.endswith("}"):
                names.append(seg[1:-1].split(":", 1)[0])
                if node.param is None:
                    node.param = Router.Node()
                node = node.param
            else:
                node = node.literal.setdefault(seg, Router.Node())
        for method in route.methods or ("GET",):
            node.methods.setdefault(method, (route, tuple(names)))

    def match(self, path: str, method: str) -> tuple[Route, dict[str, str]] | tuple[None, Node | None]:
        segments = path.split("/")[1:]
        values: list[str] = []
        fallback: list[Router.Node] = []
        found = self._walk(self.root, segments, 0, method, values, fallback)
        if found is None:
            return None, (fallback[0] if fallback else None)
        route, names = found
        return route, dict(zip(names, values, strict=True))

    # A method, not a closure: a recursive closure is a reference cycle per request, garbage that only
    # the cycle collector frees (and its full passes over a large heap showed up as p99 latency).
    def _walk(self, node: Node, segments: list[str], i: int, method: str, values: list[str],
              fallback: list[Node]) -> tuple[Route, tuple[str, ...]] | None:
        if i == len(segments):
            if node.methods:
                found = node.methods.get(method)
                if found is not None:
                    return found
                fallback.append(node)
            return None
        seg = segments[i]
        child = node.literal.get(seg)
        if child is not None:
            found = self._walk(child, segments, i + 1, method, values, fallback)
            if found is not None:
                return found
        if node.param is not None and seg:
            values.append(seg)
            found = self._walk(node.param, segments, i + 1, method, values, fallback)
            if found is not None:
                return found
            values.pop()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, params = self.match(scope["path"], scope["method"])
        if route is None and scope["path"].startswith(_BARE_API):  # a `uri` field as given: no /restcomm
            route, params = self.match("/restcomm" + scope["path"], scope["method"])
        if route is None:  # answered here, inside any CORS layer, so browsers can read the error
            request = Request(scope, receive)
            if params is None:
                response = await not_found(request, HTTPException(404))
            else:
                allow = {"Allow": ", ".join(sorted(params.methods))}  # type: ignore[union-attr]
                response = await method_not_allowed(request, HTTPException(405, headers=allow))
            await response(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        await route.app(scope, receive, send)
