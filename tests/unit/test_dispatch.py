"""The segment-trie dispatch routes every path exactly where Starlette's linear router would, so
replacing it changed no behaviour; literal segments win over parameters."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Match

from restcomm.app import build_app
from restcomm.config import load_settings
from restcomm.web.router import Router


def _routes(tmp_path: Path) -> list:
    edge = build_app(load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)}))
    return list(edge.app.router.routes)


def _starlette(routes: list, path: str, method: str) -> tuple[object | None, dict | None, bool]:
    """(route, params) of the first full match; whether some route matched the path at all."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    partial = False
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child["path_params"], True
        partial = partial or match is Match.PARTIAL
    return None, None, partial


def test_dispatch_agrees_with_starlette_on_every_route(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    dispatch = Router(routes)
    literals = sorted({seg for r in routes for seg in r.path.split("/") if seg and not seg.startswith("{")})
    checked = 0
    for route in routes:
        segments = route.path.split("/")
        params = [i for i, seg in enumerate(segments) if seg.startswith("{")]
        variants = [["zz"] * len(params)]
        for k in range(len(params)):  # each parameter in turn takes every literal of the API
            variants += [["zz"] * k + [lit] + ["zz"] * (len(params) - k - 1) for lit in literals]
        for values in variants:
            concrete = list(segments)
            for i, v in zip(params, values, strict=True):
                concrete[i] = v
            path = "/".join(concrete)
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                expected, expected_params, any_match = _starlette(routes, path, method)
                got, got_params = dispatch.match(path, method)
                if expected is not None:
                    assert got is expected and got_params == expected_params, (path, method, got, expected)
                else:
                    assert got is None and (got_params is not None) == any_match, (path, method)
                checked += 1
    assert checked > 1000


def test_unknown_and_malformed_paths(tmp_path: Path) -> None:
    dispatch = Router(_routes(tmp_path))
    assert dispatch.match("/nope", "GET") == (None, None)  # "/" is the index
    assert dispatch.match("/restcomm/2012-04-24/Nope", "GET") == (None, None)
    assert dispatch.match("/restcomm/2012-04-24/Accounts//Clients", "GET") == (None, None)  # empty parameter
    route, node = dispatch.match("/health", "DELETE")
    assert route is None and node is not None and {"GET", "HEAD"} <= set(node.methods)  # 405, with Allow
    route, params = dispatch.match("/restcomm/2012-04-24/Accounts/AC1/Clients/CL2", "HEAD")
    assert route is not None and params == {"AccountSid": "AC1", "ClientSid": "CL2"}
