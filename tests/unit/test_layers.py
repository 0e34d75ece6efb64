"""The source tree is a stack of layers (tests/support/layers.py): no module imports a layer above
its own. These tests run the check on the real tree, and show it fails on a deliberate violation."""

from __future__ import annotations

from pathlib import Path

from tests.support.layers import KNOWN, MAY_IMPORT, Edge, import_edges, layer_of, violations

SRC = Path(__file__).resolve().parents[2] / "src"


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = violations(import_edges(SRC))
    assert found == [], "imports against the layer rule:\n" + "\n".join(found)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "restcomm" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_leaf_importing_the_api_fails(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "store/__init__.py": "",
        "store/db.py": "from restcomm.api.framework import operation\n",
        "api/__init__.py": "",
        "api/framework.py": "from restcomm.store import db\n",  # downward: fine
    })
    found = violations(import_edges(src))
    assert len(found) == 1
    assert "restcomm.store.db (leaf) imports restcomm.api.framework (api)" in found[0]
    assert found[0].endswith("a layer it may not use")


def test_relative_and_type_only_imports_count(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "sip/__init__.py": "",
        "sip/ua.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..voice import calls\n",
        "media/__init__.py": "",
        "media/endpoint.py": "def f():\n    from restcomm import messaging\n",
        "voice/__init__.py": "",
        "voice/calls.py": "from restcomm.sip import ua\nfrom restcomm.media import endpoint\n",
        "messaging/__init__.py": "",
    })
    found = violations(import_edges(src))
    assert len(found) == 2
    assert any("restcomm.sip.ua (sip) imports restcomm.voice.calls (voice)" in f for f in found)
    assert any("restcomm.media.endpoint (media) imports restcomm.messaging (messaging)" in f for f in found)


def test_an_unplaced_package_fails() -> None:
    edge = Edge("restcomm.newthing.x", "restcomm.util", "newthing/x.py", 3)
    assert violations([edge]) == ["newthing/x.py:3: restcomm.newthing.x is in no layer (add its package to "
                                  "COMPONENT_LAYER)"]


def test_the_rule_table_is_a_stack() -> None:
    """No two layers may import each other, and sip/media/rcml stay below voice and messaging."""
    for upper, allowed in MAY_IMPORT.items():
        for lower in allowed:
            assert upper not in MAY_IMPORT[lower], (upper, lower)
    assert MAY_IMPORT["sip"] == MAY_IMPORT["media"] == {"leaf"}
    assert not {"messaging", "voice", "sip", "media"} & MAY_IMPORT["rcml"]
    assert layer_of("restcomm.voice.session") == "voice" and layer_of("restcomm.rcml.verbs.say") == "rcml"


def test_tolerated_imports_are_few_explained_and_still_needed() -> None:
    assert len(KNOWN) <= 2
    assert all(reason for reason in KNOWN.values())
    present = {(e.importer, e.imported) for e in import_edges(SRC)}
    assert [pair for pair in KNOWN if pair not in present] == [], "drop the entries that no longer occur"


def test_tests_import_helpers_only_from_support_and_peers() -> None:
    """A test module is not a library: shared helpers live in tests/support (and peers in tests/peers)."""
    import ast

    tests = SRC.parent / "tests"
    found = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("tests.") and not name.startswith(("tests.support", "tests.peers")):
                    found.append(f"{path.relative_to(tests)}:{node.lineno}: {name}")
    assert found == []
