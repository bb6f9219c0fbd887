"""The layers of ARCHITECTURE.md, checked on the source: what may import what."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Imports that break a rule today, each with why and where it should go; a listed
#: import that is gone fails the test too, so the list only shrinks.
KNOWN: dict[tuple[str, str], str] = {
    ("applets/profile_move/applet.py", "applets.usim.profile"): (
        "seed 003's applet decodes a profile with the USIM applet's codec; the codec "
        "belongs in a card library (card.profiles) that both can import"
    ),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _violations() -> set[tuple[str, str]]:
    found = set()
    for base, forbidden in (
        ("card", ("host", "applets", "apdu_specs")),
        ("applets", ("host", "apdu_specs")),
        ("apdu_specs", ("host", "applets")),
    ):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] in forbidden:
                    found.add((rel, name))
                # An applet never imports another applet (they share through Shareables).
                if base == "applets" and parts[0] == "applets" and len(parts) > 1:
                    if parts[1] != path.relative_to(ROOT / "applets").parts[0]:
                        found.add((rel, name))
    return found


def test_each_layer_imports_only_what_it_may() -> None:
    found = _violations()
    assert sorted(found - set(KNOWN)) == []
    assert sorted(set(KNOWN) - found) == []  # fixed: take it off the list
