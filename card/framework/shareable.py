"""Shareable interfaces: the only way through the firewall (Java Card 3.0 RE §6.2.4).

A server applet declares an interface as a subclass of `Shareable` and hands an
object implementing it to clients from `get_shareable_interface_object`. The
client receives a proxy that exposes only the interface's methods and runs each
call in the server's context, as the Java Card RE's context switch does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from card.framework.exceptions import SecurityException

if TYPE_CHECKING:
    from card.framework.system import Context


class Shareable:
    """Marker base class of shareable interfaces."""


@lru_cache(maxsize=256)
def interface_methods(cls: type) -> frozenset[str]:
    """Public methods declared by the Shareable interfaces a class implements."""
    from card.framework.applet import Applet

    names: set[str] = set()
    for base in cls.__mro__:
        if base is Shareable or not issubclass(base, Shareable) or issubclass(base, Applet):
            continue
        for name, value in vars(base).items():
            if not name.startswith("_") and callable(value):
                names.add(name)
    return frozenset(names)


class ShareableProxy:
    """What a client holds: the interface's methods, each run in the server's context."""

    __slots__ = ("_target", "_server", "_methods")

    def __init__(self, target: Shareable, server: Context) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_server", server)
        # As `type`: mypy checks type[Shareable] against Hashable with the instances' __hash__.
        cls: type = type(target)
        object.__setattr__(self, "_methods", interface_methods(cls))

    def __getattr__(self, name: str) -> Any:
        if name not in self._methods:
            raise SecurityException(
                f"{name!r} is not part of a Shareable interface of {self._server.aid}"
            )
        method = getattr(self._target, name)
        server = self._server

        def call(*args: Any, **kwargs: Any) -> Any:
            runtime = server.runtime
            # A proxy kept from before its server was LOCKED, deleted or its selection
            # gate closed (a profile's applet, the profile found damaged) reaches it no
            # more than a new lookup would (CardRuntime.get_shareable answers None):
            # the call is refused (CardRuntime.serves_shareable).
            if not runtime.serves_shareable(server):
                raise SecurityException(f"{server.aid} is not available now")
            return runtime.call_in_context(server, method, *args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        raise SecurityException("a Shareable interface object cannot be written through")

    def __repr__(self) -> str:
        return f"<Shareable of {self._server.aid}: {sorted(self._methods)}>"
