"""What a spec module names besides its commands: the applet it belongs to
(`AppletContext`, by AID) and its test vectors (`Vector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AppletContext:
    """An applet whose proprietary commands a spec module describes, named by AID(s).

    A selected AID matches when it starts with one of `aids` (an instance AID
    extending the package AID), or is a right-truncated form of one (a partial
    SELECT by DF name).
    """

    name: str
    aids: tuple[bytes, ...]

    def matches(self, aid: bytes) -> bool:
        return any(aid.startswith(a) or (aid and a.startswith(aid)) for a in self.aids)


@dataclass(frozen=True)
class Vector:
    """A known command (and optionally its response) with the expected decoding.

    `expect` / `response_expect` are subsets of `Decoded.to_json()["fields"]`
    (nested dicts match key by key, lists element by element). Hex here is at
    the edge: spec files write bytes as hex.
    """

    command: str
    summary: str | None = None
    expect: Mapping[str, Any] = field(default_factory=dict)
    response: str | None = None
    response_summary: str | None = None
    response_expect: Mapping[str, Any] = field(default_factory=dict)
    context: bytes | None = None
    source: str = ""

    @property
    def command_bytes(self) -> bytes:
        return bytes.fromhex(self.command.replace(" ", ""))

    @property
    def response_bytes(self) -> bytes | None:
        return None if self.response is None else bytes.fromhex(self.response.replace(" ", ""))
