"""`Decoded`: one decoded command or response, its summary text and JSON view.

Decoding never raises on odd input: problems come back as `Decoded.issues`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import construct as c

from apdu_specs.constructs import tlv_summary
from apdu_specs.values import HexInt, Named, to_json

if TYPE_CHECKING:
    from apdu_specs.framework.spec import CommandSpec


@dataclass(slots=True, eq=False)
class Decoded:
    """A decoded command or response.

    `fields` holds Python values (bytes stay bytes); `to_json()` is the edge
    where they become hex. Command fields: cla, ins, p1, p2, channel, chained,
    secure_messaging, case, extended, params (field name -> value), nc, data
    (parsed, or the raw bytes when it does not parse), ne (Ne, None without Le).
    Response fields: sw, sw_meaning, data, nr, and retries (63Cx), available
    (61xx) or exact_ne (6Cxx) when they apply.
    """

    kind: str
    raw: bytes
    name: str
    summary: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    spec: CommandSpec | None = None
    issues: list[str] = field(default_factory=list)
    alternatives: tuple[str, ...] = ()
    context: str | None = None
    assembled: Decoded | None = None

    @property
    def ok(self) -> bool:
        """No issue: well formed, defined values only, data parsed, SW expected."""
        return not self.issues

    @property
    def params(self) -> dict[str, Any]:
        return self.fields.get("params", {})

    @property
    def data(self) -> Any:
        return self.fields.get("data")

    @property
    def sw(self) -> int | None:
        return self.fields.get("sw")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form with stable keys; bytes as upper-case hex."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "spec": self.spec.id if self.spec is not None else None,
            "summary": self.summary,
            "raw": self.raw.hex().upper(),
            "fields": to_json(self.fields),
            "issues": list(self.issues),
        }
        if self.context is not None:
            out["context"] = self.context
        if self.alternatives:
            out["alternatives"] = list(self.alternatives)
        if self.assembled is not None:
            out["assembled"] = self.assembled.to_json()
        return out


class _Hex(bytes):
    def __format__(self, spec: str) -> str:
        return self.hex().upper()


class _View(dict):
    """Template namespace: bytes format as hex, a missing key as '?'."""

    def __missing__(self, key: str) -> str:
        return "?"


def _view_value(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return _Hex(v)
    if isinstance(v, Mapping):
        return _View({k: _view_value(x) for k, x in v.items()})
    return v


def count_bytes(n: int) -> str:
    """A byte count with its noun: 1 byte, 5 bytes."""
    return f"{n} byte" if n == 1 else f"{n} bytes"


def template_view(d: Decoded) -> _View:
    view = _View({k: _view_value(v) for k, v in d.params.items()})
    ne = d.fields.get("ne")
    data = d.fields.get("data")
    view.update(
        name=d.name,
        data=_view_value(data) if data is not None else "",
        nc=d.fields.get("nc", 0),
        bytes=count_bytes(d.fields.get("nc", 0)),
        ne=ne if ne is not None else "",
        le=f", Ne {ne}" if ne is not None else "",
    )
    return view


def short_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return value.hex().upper() if len(value) <= 16 else f"{len(value)} bytes"
    if isinstance(value, list) and value and isinstance(value[0], Mapping) and "tag" in value[0]:
        return tlv_summary(value)
    if isinstance(value, Mapping):
        return ", ".join(
            f"{k} {short_text(v)}" for k, v in value.items() if not str(k).startswith("_")
        )
    if isinstance(value, list):
        return " ".join(short_text(v) for v in value)
    return str(value)


def default_summary(d: Decoded) -> str:
    """Name, variant, every parameter, the data (short) and Ne."""
    parts = [d.name]
    if d.spec is not None and d.spec.variant:
        parts[0] += f" {d.spec.variant}"
    parts += [f"{k} {v}" for k, v in d.params.items()]
    data = d.fields.get("data")
    if data is not None and data != b"":
        parts.append(short_text(data))
    ne = d.fields.get("ne")
    if ne is not None:
        parts.append(f"Ne {ne}")
    return ", ".join(parts)


SM_MEANING = (
    Named(0, "none"),
    Named(1, "proprietary"),
    Named(2, "ISO, header not authenticated"),
    Named(3, "ISO, header authenticated"),
)
HEX2 = tuple(HexInt(b) for b in range(256))


def _error_text(e: Exception) -> str:
    """construct's "Error in path (parsing) -> b" line, then the reason, as one line."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if lines[0].startswith("Error in path") and len(lines) > 1:
        where = lines[0].partition("->")[2].strip()
        return f"{lines[-1]} (at {where})" if where else lines[-1]
    return " ".join(lines)


def parse_data(
    con: c.Construct, data: bytes, params: Mapping[str, Any], issues: list[str], what: str
) -> Any:
    if con is c.GreedyBytes:
        return data
    stream = io.BytesIO(data)
    try:
        value = con.parse_stream(stream, params=params)
    # Decoding annotates every traced APDU, so a construct or decoder failing on
    # odd bytes must turn into an issue, whatever it raises.
    except Exception as e:  # noqa: BLE001
        issues.append(f"{what} does not parse: {_error_text(e)}")
        return data
    left = len(data) - stream.tell()
    if left:
        issues.append(f"{left} unexpected byte(s) after the {what}")
        return data
    return value
