"""The layer rule of the source tree, and a checker over the import graph (read from the AST).

Layers, top to bottom (a module may import its own layer and the layers it is allowed below it,
never one above)::

    cli            restcomm.cli, restcomm.__main__, restcomm.admin
    wiring         restcomm.app, restcomm.web, restcomm.background, restcomm.workers
    api            restcomm.api
    voice          restcomm.voice          (glues sip + media + rcml + store)
    smpp           restcomm.smpp           (a channel of messaging: it delivers into it)
    messaging      restcomm.messaging      (runs RCML applications, posts webhooks)
    rcml           restcomm.rcml           (the interpreter fetches documents: webhooks)
    webhooks       restcomm.webhooks       (the outbound HTTP client)
    sip, media     restcomm.sip, restcomm.media: leaves only (no accounts, RCML or database)
    leaf           store, config, codes, observability, phone, security, util, the container,
                   encoding, notify, routing, limits, httpguard, ops, audit, polling

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a
type-only import is still a dependency a reader has to follow. A package that is not in the table
fails the check, so a new package is placed deliberately.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT_PACKAGE = "restcomm"

#: First component under ``restcomm`` -> its layer.
COMPONENT_LAYER: Mapping[str, str] = {
    "__main__": "cli", "cli": "cli", "admin": "cli", "sample_app": "cli", "phone_cli": "cli",
    "app": "wiring", "web": "wiring", "background": "wiring", "workers": "wiring", "welcome": "wiring",
    "api": "api",
    "voice": "voice",
    "smpp": "smpp",
    "messaging": "messaging",
    "rcml": "rcml",
    "webhooks": "webhooks",
    "sip": "sip",
    "media": "media",
    **{name: "leaf" for name in (
        "store", "config", "codes", "observability", "phone", "security", "util", "container",
        "encoding", "notify", "routing", "limits", "httpguard", "ops", "audit", "polling", "weburl", "profiles", "runtime",
    )},
}

#: Modules placed lower than their package: rcml.errors is the table of notification codes, with no
#: import of the project at all (codes.py and the callback outbox read it).
MODULE_LAYER: Mapping[str, str] = {
    "restcomm.rcml.errors": "leaf",
    # The seam between the Calls API and the voice engine: Protocols and a dataclass, no imports of
    # the project; the container types its voice slots with them.
    "restcomm.voice.ports": "leaf",
}

_ALL = frozenset({"wiring", "api", "voice", "smpp", "messaging", "rcml", "webhooks", "sip", "media", "leaf"})

#: Layer -> the layers it may import (besides itself).
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "cli": _ALL,
    "wiring": _ALL - {"wiring"},
    "api": frozenset({"voice", "smpp", "messaging", "rcml", "webhooks", "sip", "media", "leaf"}),
    "voice": frozenset({"sip", "media", "rcml", "webhooks", "messaging", "leaf"}),
    "smpp": frozenset({"messaging", "leaf"}),
    "messaging": frozenset({"rcml", "webhooks", "leaf"}),
    "rcml": frozenset({"webhooks", "leaf"}),
    "webhooks": frozenset({"leaf"}),
    "sip": frozenset({"leaf"}),
    "media": frozenset({"leaf"}),
    "leaf": frozenset(),
}

#: Imports that break the rule today, each with the reason it is tolerated and what removes it.
#: (importer, imported) by module name. An entry that no longer occurs fails the check: remove it.
KNOWN: Mapping[tuple[str, str], str] = {
    ("restcomm.webhooks.fetch", "restcomm.rcml.parser"): "the fetch limit MAX_DOCUMENT_BYTES is defined by "
    "the parser; it belongs in webhooks",
}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: str
    line: int


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_edges(src: Path, package: str = ROOT_PACKAGE) -> list[Edge]:
    """Every import of ``package`` by a module under ``src/package`` (absolute and relative)."""
    root = src / package
    modules = {module_name(p, src) for p in root.rglob("*.py")}
    edges: list[Edge] = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, src)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    drop = node.level - 1 if is_package else node.level
                    anchor = anchor[:len(anchor) - drop] if drop else anchor
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:  # `from restcomm import observability` names a module
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if target == package or target.startswith(package + "."):
                    edges.append(Edge(name, target, str(path), node.lineno))
    return edges


def layer_of(module: str) -> str | None:
    if module in MODULE_LAYER:
        return MODULE_LAYER[module]
    parts = module.split(".")
    if len(parts) < 2:
        return "leaf"  # the package itself (restcomm/__init__.py)
    return COMPONENT_LAYER.get(parts[1])


def violations(edges: Iterable[Edge], known: Mapping[tuple[str, str], str] = KNOWN) -> list[str]:
    """One line per import that points up (or into a package the table does not place)."""
    out: list[str] = []
    for e in edges:
        src, dst = layer_of(e.importer), layer_of(e.imported)
        if src is None or dst is None:
            unplaced = e.importer if src is None else e.imported
            out.append(f"{e.path}:{e.line}: {unplaced} is in no layer (add its package to COMPONENT_LAYER)")
            continue
        if src == dst or dst in MAY_IMPORT[src]:
            continue
        if (e.importer, e.imported) in known:
            continue
        out.append(f"{e.path}:{e.line}: {e.importer} ({src}) imports {e.imported} ({dst}), a layer it may not use")
    return out
