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


_PROJECT = ("card", "applets", "apdu_specs", "host")


def _absolute_module(root: Path, path: Path, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, a relative one (`from . import x`) resolved."""
    if node.level == 0:
        return node.module or ""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])  # an __init__'s too
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _private_uses(root: Path, path: Path) -> set[str]:
    """The other project modules' private names `path` reaches, dotted.

    `from project.module import _name` (relative imports too), and attribute access
    through a name an import of the project binds: `import host.b as v` or
    `from host import b as v` (a module), `from host.b import Thing` (a name of one),
    then `v._helper`, `Thing._private`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound: dict[str, str] = {}
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if top in _PROJECT:
                    bound[a.asname or top] = a.name if a.asname else top
        elif isinstance(node, ast.ImportFrom):
            module = _absolute_module(root, path, node)
            if module.split(".")[0] not in _PROJECT:
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    out.add(f"{module}.{a.name}")
                bound[a.asname or a.name] = f"{module}.{a.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        chain: list[str] = []
        value = node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in bound:
            out.add(".".join([bound[value.id], *reversed(chain), node.attr]))
    return out


def _private_imports(root: Path) -> set[tuple[str, str]]:
    """Another project module's private name reached anywhere in the project's code
    (tests excluded): imported (`from project.module import _name`, relative imports
    included) or reached through an imported module or name (`mod._name`,
    `_private_uses`).

    A name with a leading underscore is its module's own business; another module that
    needs it needs a public name for it, so that renaming a private helper never breaks
    a module elsewhere.
    """
    found = set()
    for base in _PROJECT:
        for path in sorted((root / base).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            found.update((rel, name) for name in _private_uses(root, path))
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


def test_a_private_name_reached_through_its_module_is_reported(tmp_path: Path) -> None:
    """Regression (review G): the rule saw only `from m import _x`; `from pkg import m`
    then `m._x` passed it (host/bench_table.py used `v._vicc_card` of host.bench_vicc)."""
    (tmp_path / "host" / "sub").mkdir(parents=True)
    (tmp_path / "host" / "a.py").write_text(
        "from __future__ import annotations\n"
        "from host import b as v\n"
        "import host.c\n"
        "import host.d as d\n"
        "from host.e import Thing\n"
        "import os\n"
        "\n"
        "v._helper()\n"
        "host.c._x\n"
        "d._y\n"
        "Thing._z\n"
        "v.__name__\n"
        "os._exit\n"
        "v.public\n"
    )
    (tmp_path / "host" / "sub" / "f.py").write_text(
        "from . import g\nfrom .. import h\nfrom .i import _j\n\ng._k\nh._m\n"
    )
    assert _private_imports(tmp_path) == {
        ("host/a.py", "host.b._helper"),
        ("host/a.py", "host.c._x"),
        ("host/a.py", "host.d._y"),
        ("host/a.py", "host.e.Thing._z"),
        ("host/sub/f.py", "host.sub.g._k"),
        ("host/sub/f.py", "host.h._m"),
        ("host/sub/f.py", "host.sub.i._j"),
    }
