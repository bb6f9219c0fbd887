"""The layers of ARCHITECTURE.md, checked on the source: what may import what."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Imports that break a rule today, each with why and where it should go; a listed
#: import that is gone fails the test too, so the list only shrinks.
KNOWN: dict[tuple[str, str], str] = {}

#: Applet packages whose internals host code may not import: only these names, from
#: the package itself. Their codecs live in a card library (card.uicc) instead.
HOST_MAY_IMPORT: dict[str, frozenset[str]] = {
    "applets.usim": frozenset({"UiccApplet", "UICC_AID"}),
}


def _imports(path: Path) -> set[str]:
    return {module for module, _ in _imported_names(path)}


def _imported_names(path: Path) -> set[tuple[str, str | None]]:
    """(module, name) for each `from module import name`; (module, None) for `import module`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update((a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.update((node.module, a.name) for a in node.names)
    return out


def _host_violations(root: Path) -> set[tuple[str, str]]:
    """Host modules that reach into an applet package of HOST_MAY_IMPORT."""
    found = set()
    for path in sorted((root / "host").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for module, name in _imported_names(path):
            for package, allowed in HOST_MAY_IMPORT.items():
                if module == package and name in allowed:
                    continue
                if module == package or module.startswith(package + "."):
                    found.add((rel, f"{module}.{name}" if name else module))
    return found


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
    return found | _host_violations(ROOT)


def test_each_layer_imports_only_what_it_may() -> None:
    found = _violations()
    assert sorted(found - set(KNOWN)) == []
    assert sorted(set(KNOWN) - found) == []  # fixed: take it off the list


def test_host_imports_no_usim_internals(tmp_path: Path) -> None:
    """The rule bites: a host module importing a codec from applets.usim is reported."""
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "ok.py").write_text(
        "from applets.usim import UICC_AID, UiccApplet\nfrom card.uicc import ts_31_102\n"
    )
    (tmp_path / "host" / "bad.py").write_text(
        "from applets.usim.ts_31_102 import encode_imsi\n"
        "from applets.usim import Profile\n"
        "import applets.usim.store\n"
        "import applets.usim\n"
    )
    assert _host_violations(tmp_path) == {
        ("host/bad.py", "applets.usim.ts_31_102.encode_imsi"),
        ("host/bad.py", "applets.usim.Profile"),
        ("host/bad.py", "applets.usim.store"),
        ("host/bad.py", "applets.usim"),
    }


def _private_imports(root: Path) -> set[tuple[str, str]]:
    """`from project.module import _name` anywhere in the project's code (tests excluded).

    A name with a leading underscore is its module's own business; another module that
    needs it needs a public name for it, so that renaming a private helper never breaks
    a module elsewhere.
    """
    found = set()
    for base in ("card", "applets", "apdu_specs", "host"):
        for path in sorted((root / base).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for module, name in _imported_names(path):
                if name is None or not name.startswith("_") or name.startswith("__"):
                    continue
                if module.split(".")[0] in ("card", "applets", "apdu_specs", "host"):
                    found.add((rel, f"{module}.{name}"))
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    assert sorted(_private_imports(ROOT)) == []


def test_a_private_import_is_reported(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "a.py").write_text(
        "from __future__ import annotations\nfrom host.b import _helper, public\n"
        "from os import _exit\n"
    )
    assert _private_imports(tmp_path) == {("host/a.py", "host.b._helper")}
