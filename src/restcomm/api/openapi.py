"""The OpenAPI 3 description, generated from the registered operations (routes, parameters and
wire shapes are the ones the server itself uses)."""

from __future__ import annotations

import re
from typing import Any

from restcomm import __version__
from restcomm.api.framework import Operation
from restcomm.api.shapes import json_schema

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string"},
        "status": {"type": "integer"},
    },
    "required": ["code", "message", "status"],
}

PAGE_FIELDS = {
    "page": {"type": "integer"},
    "num_pages": {"type": "integer"},
    "page_size": {"type": "integer"},
    "total": {"type": "integer"},
    "start": {"type": "string"},
    "end": {"type": "string"},
    "uri": {"type": "string"},
    "first_page_uri": {"type": "string"},
    "previous_page_uri": {"type": "string", "nullable": True},
    "next_page_uri": {"type": "string", "nullable": True},
    "last_page_uri": {"type": "string"},
}

_PARAM = re.compile(r"{([A-Za-z]+)}")


def _response_schema(op: Operation) -> dict[str, Any] | None:
    if op.answer is not None:
        return op.answer
    if op.shape is None or op.kind == "empty":
        return None
    item = json_schema(op.shape)
    if op.kind == "list":
        return {"type": "array", "items": item}
    if op.kind == "page":
        props = dict(PAGE_FIELDS)
        props[op.shape.items_key] = {"type": "array", "items": item}
        return {"type": "object", "properties": props, "required": list(props)}
    return item


def build_openapi(operations: list[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = op.full_path + (".json" if op.root.startswith("/restcomm") and not op.media else "")
        spec: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z]', '', op.path.title())}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 320}}
                for name in _PARAM.findall(op.path)
            ]
            + [
                {"name": p.name, "in": "query", "required": p.required, "schema": p.openapi_schema(),
                 "description": p.description}
                for p in op.query
            ]
            + [
                {"name": p.name, "in": "header", "required": p.required, "schema": p.openapi_schema(),
                 "description": p.description}
                for p in op.headers
            ],
            "responses": {
                "400": {"description": "invalid parameter", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "401": {"description": "authentication failed",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "403": {"description": "forbidden", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "404": {"description": "not found", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
        }
        if op.auth:
            spec["security"] = [{"basic": []}]
        ok = _response_schema(op)
        ok_status = str(op.status)
        if ok is None:
            spec["responses"][ok_status] = {"description": "done"}
        else:
            spec["responses"][ok_status] = {"description": "success",
                                            "content": {op.media or "application/json": {"schema": ok}}}
        for status, text in op.responses.items():
            spec["responses"].setdefault(
                str(status), {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            )
        if op.form:
            props = {p.name: {**p.openapi_schema(), "description": p.description} for p in op.form}
            required = [p.name for p in op.form if p.required]
            body_schema: dict[str, Any] = {"type": "object", "properties": props}
            if required:
                body_schema["required"] = required
            spec["requestBody"] = {
                "required": bool(required),
                "content": {"application/x-www-form-urlencoded": {"schema": body_schema}},
            }
        if op.body is not None:
            spec["requestBody"] = {
                "required": True,
                "content": {media: {"schema": op.body} for media in ("application/json", "application/instance+json")},
            }
        paths.setdefault(path, {})[op.method.lower()] = spec
    return {
        "openapi": "3.0.3",
        "info": {"title": "Restcomm-compatible API", "version": __version__},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "paths": paths,
    }
