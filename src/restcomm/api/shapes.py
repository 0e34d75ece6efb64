"""A resource's wire shape, declared once and rendered to JSON, to XML and to an OpenAPI schema.

JSON keys are snake_case, XML elements PascalCase inside <RestcommResponse>. Restcomm omits null
keys from JSON on most resources and writes explicit nulls on a few (IncomingPhoneNumbers);
``Shape.json_nulls`` says which. ``uri`` fields get a ``.json`` suffix in JSON, as Restcomm's do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Field:
    json: str
    xml: str
    value: Callable[[Row], Any]
    type: str = "string"  # string | integer | boolean | object | array
    # XML: write <X/> for a null instead of omitting the element.
    xml_empty_when_null: bool = False
    # A uri that gets ".json" appended in JSON responses.
    is_uri: bool = False
    nested: Shape | None = None  # object fields: value() returns a Row for this shape
    item: Shape | None = None  # array fields: value() returns rows of this shape
    description: str = ""
    # JSON: leave the key out when null even in a json_nulls shape (Restcomm's *_application_name).
    omit_null: bool = False


@dataclass(frozen=True)
class Shape:
    name: str  # XML element of one item, e.g. "Account"
    list_name: str  # XML element of a list, e.g. "Accounts"
    items_key: str  # JSON key of the items in a paged list
    fields: tuple[Field, ...]
    json_nulls: bool = False
    extra_schema: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Rendering runs on every response: flatten each field into a tuple once.
        plan = []
        for f in self.fields:
            kind = 2 if f.nested is not None else 3 if f.item is not None else 1 if f.is_uri else 0
            plan.append((f.json, f.value, kind, f.nested or f.item, self.json_nulls and not f.omit_null))
        object.__setattr__(self, "_plan", tuple(plan))


def col(json: str, xml: str, type: str = "string", column: str | None = None, **kw: Any) -> Field:
    """A field read straight from a column (named like the JSON key unless told otherwise)."""
    key = column or json
    return Field(json, xml, lambda r: r.get(key), type=type, **kw)


def computed(json: str, xml: str, fn: Callable[[Row], Any], type: str = "string", **kw: Any) -> Field:
    return Field(json, xml, fn, type=type, **kw)


# ---------------------------------------------------------------------------------------------
# JSON


def to_json_obj(shape: Shape, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value, kind, sub, write_null in shape._plan:  # type: ignore[attr-defined]
        v = value(row)
        if v is None:
            if write_null:
                out[key] = None
        elif kind == 0:
            out[key] = v
        elif kind == 1:
            out[key] = v + ".json"
        elif kind == 2:
            out[key] = to_json_obj(sub, v)
        else:
            out[key] = [to_json_obj(sub, x) for x in v]
    return out


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# ---------------------------------------------------------------------------------------------
# XML


def _xml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return escape(str(v))


def to_xml(shape: Shape, row: Row, element: str | None = None) -> str:
    parts = [f"<{element or shape.name}>"]
    for f in shape.fields:
        v = f.value(row)
        if v is None:
            if f.xml_empty_when_null:
                parts.append(f"<{f.xml}/>")
            continue
        if f.nested is not None:
            parts.append(to_xml(f.nested, v, f.xml))
        elif f.item is not None:
            parts.append(f"<{f.xml}>" + "".join(to_xml(f.item, x) for x in v) + f"</{f.xml}>")
        elif v == "":
            parts.append(f"<{f.xml}/>")
        else:
            parts.append(f"<{f.xml}>{_xml_value(v)}</{f.xml}>")
    parts.append(f"</{element or shape.name}>")
    return "".join(parts)


def xml_document(inner: str) -> bytes:
    return f"<RestcommResponse>{inner}</RestcommResponse>".encode()


def xml_list(shape: Shape, rows: Iterable[Row], attrs: Mapping[str, Any] | None = None) -> str:
    attr_text = ""
    if attrs:
        attr_text = "".join(f" {k}={quoteattr('' if v is None else str(v))}" for k, v in attrs.items())
    body = "".join(to_xml(shape, r) for r in rows)
    if not body:
        return f"<{shape.list_name}{attr_text}/>"
    return f"<{shape.list_name}{attr_text}>{body}</{shape.list_name}>"


# ---------------------------------------------------------------------------------------------
# OpenAPI


def json_schema(shape: Shape) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in shape.fields:
        if f.nested is not None:
            s: dict[str, Any] = json_schema(f.nested)
        elif f.item is not None:
            s = {"type": "array", "items": json_schema(f.item)}
        else:
            s = {"type": f.type}
        if shape.json_nulls:
            s = {**s, "nullable": True} if "type" in s else s
        if f.description:
            s["description"] = f.description
        props[f.json] = s
    schema: dict[str, Any] = {"type": "object", "properties": props}
    schema.update(shape.extra_schema)
    return schema
