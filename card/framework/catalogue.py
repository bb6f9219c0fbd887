"""The applet catalogue: the only applet classes a card may instantiate.

A card never runs code that arrives in APDUs. What it can instantiate is the
built-in `applets` package and third-party applets registered under the
`cardemu.applets` entry-point group; a card image names its applets by reference
("module:QualName") and is refused if it names anything else.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from card.framework.applet import Applet

ENTRY_POINT_GROUP = "cardemu.applets"


class CatalogueError(Exception):
    """An applet class is not in the catalogue, or cannot be loaded."""


def class_ref(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@lru_cache(maxsize=1)
def entry_point_names() -> tuple[tuple[str, str], ...]:
    """(entry-point name, class reference) of the installed `cardemu.applets` group.

    Scanned once per process: the installed distributions do not change while it
    runs, and the scan was half the time of creating a card. The answer is a tuple
    of tuples (immutable); each Catalogue copies it into its own dict. Tests that
    install entry points call `entry_point_names.cache_clear()`.
    """
    return tuple(
        (ep.name, ep.value.replace(" ", "")) for ep in entry_points(group=ENTRY_POINT_GROUP)
    )


class Catalogue:
    """Applet classes by reference: entry points plus explicitly added classes."""

    def __init__(self, extra: Iterable[type[Applet]] = ()) -> None:
        self._classes: dict[str, type[Applet]] = {class_ref(c): c for c in extra}
        self._names: dict[str, str] = dict(entry_point_names())

    def add(self, cls: type[Applet]) -> None:
        self._classes[class_ref(cls)] = cls

    def names(self) -> dict[str, str]:
        """Entry-point name -> class reference."""
        return dict(self._names)

    def refs(self) -> set[str]:
        return set(self._names.values()) | set(self._classes)

    def __contains__(self, ref: str) -> bool:
        return ref in self._classes or ref in self._names.values()

    def resolve(self, ref: str) -> type[Applet]:
        """The class for a reference or an entry-point name, if catalogued."""
        from card.framework.applet import Applet

        ref = self._names.get(ref, ref)
        cls = self._classes.get(ref)
        if cls is not None:
            return cls
        if ref not in self._names.values():
            raise CatalogueError(f"applet class {ref} is not in the catalogue")
        module_name, _, qualname = ref.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise CatalogueError(f"applet class {ref} cannot be loaded: {e}") from None
        if not (isinstance(obj, type) and issubclass(obj, Applet)):
            raise CatalogueError(f"{ref} is not an Applet class")
        self._classes[ref] = obj
        return obj
