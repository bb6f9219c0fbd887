"""The spec framework: `CommandSpec`, the registry, and the command/response decoders.

A `CommandSpec` declares one command (or one variant of it, e.g. SELECT by DF
name): its CLA class, INS, the P1-P2 values it applies to, the meaning of the
P1-P2 bit fields (`Field`, with enumerated values and ranges), the command and
response data as `construct` constructs, the Lc/Le rules, the status words it
may return, the clause it comes from, and its own test vectors.

P1 and P2 are read as one 16-bit word P1-P2 (P1 in the high byte), so a field
can sit in P1 (`p1(...)`), in P2 (`p2(...)`) or across both (`p1p2(...)`, e.g.
a 15-bit offset or a tag). Bits that neither the match nor a field covers are
RFU: a decoder reports them when set, and generators leave them 0.

A `Registry` indexes specs by INS and picks the most specific match by CLA and
P1-P2 (the number of bits a spec fixes); a spec bound to an applet
(`AppletContext`, by AID) wins when the decoder knows that applet is selected,
and is left out when another applet is. The default registry holds every
module of this package that defines `SPECS`.

Decoding never raises on odd input: malformed APDUs, RFU values, data that does
not parse and unexpected status words all come back as `Decoded.issues`.
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import pkgutil
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import construct as c

from apdu_specs.constructs import SM_DATA, tlv_summary
from apdu_specs.generate import Draw, RandomDraw, encodable_range, value_for
from apdu_specs.values import HexInt, Named, to_json
from card.apdu import (
    ApduFormatError,
    CommandApdu,
    cla_chained,
    cla_channel,
    cla_secure_messaging,
    cla_with_channel,
)
from card.sw import describe

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

log = logging.getLogger("cardemu.apdu_specs")

# -- Status words ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwPattern:
    """A status word or a range of them: `sw & mask == value` (63Cx: 63C0/FFF0)."""

    value: int
    mask: int = 0xFFFF

    def matches(self, sw: int) -> bool:
        return sw & self.mask == self.value

    def __str__(self) -> str:
        out = []
        for shift in (12, 8, 4, 0):
            nibble_mask = (self.mask >> shift) & 0xF
            out.append(f"{(self.value >> shift) & 0xF:X}" if nibble_mask else "x")
        return "".join(out)


def sws(text: str) -> tuple[SwPattern, ...]:
    """Status words from spec text: "9000 6282 63Cx 6A82" (x: any nibble)."""
    out = []
    for word in text.split():
        if len(word) != 4:
            raise ValueError(f"status word {word!r} is not four hex digits")
        value = mask = 0
        for ch in word:
            value <<= 4
            mask <<= 4
            if ch in "xX":
                continue
            value |= int(ch, 16)
            mask |= 0xF
        out.append(SwPattern(value, mask))
    return tuple(out)


#: Status words any command may get: response chaining (61xx, and 91xx, the
#: proactive command pending of ETSI TS 102 221 §10.2.1.1), wrong Le (6Cxx),
#: and the checking errors about the header or the card's state (ISO/IEC
#: 7816-4 §5.6, Tables 5 and 6).
ANY_COMMAND_SWS = sws("61xx 91xx 6Cxx 6700 6800 6881 6882 6883 6884 6B00 6D00 6E00 6F00")


# -- P1-P2 fields ---------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A bit field of P1-P2 (P1 in bits 15-8, P2 in bits 7-0).

    Attributes:
        name: the key in `Decoded.params`.
        mask: its bits in P1-P2 (contiguous).
        values: the defined values (shifted down) and their meanings; any other
            value is RFU. None: every value in lo..hi is valid.
        lo, hi: the valid range when `values` is None (hi defaults to all ones).
        hex: show the value in hex (a tag, a file identifier).
    """

    name: str
    mask: int
    values: Mapping[int, str] | None = None
    lo: int = 0
    hi: int | None = None
    hex: bool = False
    shift: int = field(init=False, repr=False)
    digits: int = field(init=False, repr=False)
    _named: Mapping[int, Named] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.mask <= 0xFFFF:
            raise ValueError(f"field {self.name}: mask {self.mask:#x} is not within P1-P2")
        shift = (self.mask & -self.mask).bit_length() - 1
        top = self.mask >> shift
        if top & (top + 1):
            raise ValueError(f"field {self.name}: mask {self.mask:#06x} is not contiguous")
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "digits", max(1, (top.bit_length() + 3) // 4))
        if self.hi is None:
            object.__setattr__(self, "hi", top)
        # Decoding wraps a value on every APDU: share one Named per defined value.
        named = {v: Named(v, m) for v, m in (self.values or {}).items()}
        object.__setattr__(self, "_named", named)

    @property
    def top(self) -> int:
        return self.mask >> self.shift

    @property
    def where(self) -> str:
        """Where the field sits: P1, P2, P1-P2, or e.g. "P1 b5-b1" for part of a byte."""
        if self.mask & 0xFF00 and self.mask & 0x00FF:
            return "P1-P2"
        byte_mask, name = (self.mask >> 8, "P1") if self.mask & 0xFF00 else (self.mask, "P2")
        if byte_mask == 0xFF:
            return name
        hi_bit = byte_mask.bit_length()
        lo_bit = (byte_mask & -byte_mask).bit_length()
        return f"{name} b{hi_bit}" if hi_bit == lo_bit else f"{name} b{hi_bit}-b{lo_bit}"

    def get(self, p1p2: int) -> int:
        return (p1p2 & self.mask) >> self.shift

    def is_valid(self, value: int) -> bool:
        if self.values is not None:
            return value in self.values
        assert self.hi is not None
        return self.lo <= value <= self.hi

    def wrap(self, value: int) -> Any:
        """The value as `Decoded.params` holds it: Named, HexInt or int."""
        if self.values is not None:
            named = self._named.get(value)
            return named if named is not None else Named(value, f"RFU {value:02X}")
        if self.hex:
            return HexInt(value, self.digits)
        return value


def p1(name: str, values: Mapping[int, str] | None = None, *, mask: int = 0xFF, **kw: Any) -> Field:
    """A field of P1 (`mask` over P1 alone)."""
    return Field(name, mask << 8, values, **kw)


def p2(name: str, values: Mapping[int, str] | None = None, *, mask: int = 0xFF, **kw: Any) -> Field:
    """A field of P2."""
    return Field(name, mask, values, **kw)


def p1p2(
    name: str, values: Mapping[int, str] | None = None, *, mask: int = 0xFFFF, **kw: Any
) -> Field:
    """A field across P1-P2 (an offset, a tag)."""
    return Field(name, mask, values, **kw)


class Le(Enum):
    """Whether the Le field is absent, optional or required."""

    ABSENT = "absent"
    OPTIONAL = "optional"
    REQUIRED = "required"


# -- Contexts and vectors ---------------------------------------------------------------


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


# -- Decoded --------------------------------------------------------------------------


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


def _template_view(d: Decoded) -> _View:
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


def _short(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return value.hex().upper() if len(value) <= 16 else f"{len(value)} bytes"
    if isinstance(value, list) and value and isinstance(value[0], Mapping) and "tag" in value[0]:
        return tlv_summary(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items() if not str(k).startswith("_"))
    if isinstance(value, list):
        return " ".join(_short(v) for v in value)
    return str(value)


def default_summary(d: Decoded) -> str:
    """Name, variant, every parameter, the data (short) and Ne."""
    parts = [d.name]
    if d.spec is not None and d.spec.variant:
        parts[0] += f" {d.spec.variant}"
    parts += [f"{k} {v}" for k, v in d.params.items()]
    data = d.fields.get("data")
    if data is not None and data != b"":
        parts.append(_short(data))
    ne = d.fields.get("ne")
    if ne is not None:
        parts.append(f"Ne {ne}")
    return ", ".join(parts)


_SM_MEANING = (
    Named(0, "none"),
    Named(1, "proprietary"),
    Named(2, "ISO, header not authenticated"),
    Named(3, "ISO, header authenticated"),
)
_HEX2 = tuple(HexInt(b) for b in range(256))


def _error_text(e: Exception) -> str:
    """construct's "Error in path (parsing) -> b" line, then the reason, as one line."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if lines[0].startswith("Error in path") and len(lines) > 1:
        where = lines[0].partition("->")[2].strip()
        return f"{lines[-1]} (at {where})" if where else lines[-1]
    return " ".join(lines)


def _parse(
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


# -- CommandSpec ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CommandSpec:
    """One command, or one variant of it, as a standard or an applet defines it.

    Attributes:
        name: the command ("SELECT").
        ins: the INS byte.
        clause: where it is defined ("ISO/IEC 7816-4:2013 §11.1.1").
        variant: what distinguishes this spec among those of the same name.
        cla, cla_mask: the class; a CLA matches when `cla & cla_mask` equals
            `self.cla & cla_mask` (80 / 80: any proprietary class). `cla` is
            also the class generated commands use (on every logical channel).
        p1, p2: the exact P1 / P2 this spec applies to, if any.
        match: further (mask, value) over P1-P2 this spec applies to.
        fields: the meaning of the other P1-P2 bits.
        data: the command data construct (None: no data field).
        nc: allowed data length (default 1..65535 with data, else 0..0).
        le: whether the Le field is absent, optional or required.
        ne: allowed Ne.
        response: the response data construct (None: no response data).
        sws: status words this command may return, besides `ANY_COMMAND_SWS`.
        summary: a template ("READ BINARY offset 0x{offset:04X}{le}") or a
            function of the `Decoded`; default: `default_summary`.
        response_summary: a function of the decoded response (its data part).
        context: the applet these semantics belong to (None: any).
        fallback: a catch-all for P1-P2 values no other spec defines; not used
            to generate valid commands.
        vectors: known commands/responses with their expected decoding.
        doc: notes (e.g. what the data field holds).
    """

    name: str
    ins: int
    clause: str
    variant: str = ""
    cla: int = 0x00
    cla_mask: int = 0x80
    p1: int | None = None
    p2: int | None = None
    match: tuple[int, int] = (0, 0)
    fields: tuple[Field, ...] = ()
    data: c.Construct | None = None
    nc: tuple[int, int] | None = None
    le: Le = Le.ABSENT
    ne: tuple[int, int] = (1, 65536)
    response: c.Construct | None = None
    sws: tuple[SwPattern, ...] = ()
    summary: str | Callable[[Decoded], str] | None = None
    response_summary: Callable[[Decoded], str] | None = None
    context: AppletContext | None = None
    fallback: bool = False
    vectors: tuple[Vector, ...] = ()
    doc: str = ""

    # Derived in __post_init__.
    match_mask: int = field(init=False, repr=False)
    match_value: int = field(init=False, repr=False)
    reserved_mask: int = field(init=False, repr=False)
    specificity: int = field(init=False, repr=False)
    nc_range: tuple[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mask, value = self.match
        if self.p1 is not None:
            mask |= 0xFF00
            value |= self.p1 << 8
        if self.p2 is not None:
            mask |= 0x00FF
            value |= self.p2
        if value & ~mask:
            raise ValueError(f"{self.name}: match value {value:04X} has bits outside {mask:04X}")
        used = mask
        for f in self.fields:
            if f.mask & used:
                raise ValueError(f"{self.name}: field {f.name} overlaps other P1-P2 bits")
            used |= f.mask
        nc = self.nc
        if nc is None:
            nc = (1, 65535) if self.data is not None else (0, 0)
        if self.data is None and nc != (0, 0):
            raise ValueError(f"{self.name}: Nc {nc} given but no data construct")
        set_ = object.__setattr__
        set_(self, "match_mask", mask)
        set_(self, "match_value", value)
        set_(self, "reserved_mask", 0 if self.fallback else 0xFFFF & ~used)
        set_(self, "specificity", bin(self.cla_mask).count("1") + bin(mask).count("1"))
        set_(self, "nc_range", nc)

    @property
    def id(self) -> str:
        """A unique label: name, variant and applet."""
        out = self.name
        if self.variant:
            out += f" ({self.variant})"
        if self.context is not None:
            out += f" [{self.context.name}]"
        return out

    def __repr__(self) -> str:
        return f"CommandSpec({self.id!r}, ins=0x{self.ins:02X})"

    def applies_to(self, cla: int, ins: int, p1p2: int) -> bool:
        return (
            ins == self.ins
            and cla & self.cla_mask == self.cla & self.cla_mask
            and p1p2 & self.match_mask == self.match_value
        )

    def sw_expected(self, sw: int) -> bool:
        """Whether this command may return `sw` (9000 always may)."""
        if sw == 0x9000:
            return True
        return any(p.matches(sw) for p in self.sws) or any(p.matches(sw) for p in ANY_COMMAND_SWS)

    # -- decoding -----------------------------------------------------------------------

    def decode(self, apdu: CommandApdu, raw: bytes | None = None) -> Decoded:
        """Decode a command APDU this spec applies to (see `Decoded` for the fields)."""
        issues: list[str] = []
        cla = apdu.cla
        p1p2_word = (apdu.p1 << 8) | apdu.p2
        params: dict[str, Any] = {}
        for f in self.fields:
            v = (p1p2_word & f.mask) >> f.shift
            params[f.name] = f.wrap(v)
            if not f.is_valid(v):
                issues.append(f"{f.where} {f.name} = {v:#04x} is not a defined value")
        rfu = p1p2_word & self.reserved_mask
        if rfu:
            issues.append(f"P1-P2 bits {rfu:04X} are RFU and should be 0")
        interindustry = cla & 0x80 == 0
        if interindustry and cla & 0xE0 == 0x20:
            issues.append(f"CLA {cla:02X} is RFU")
        chained = cla_chained(cla)
        sm = cla_secure_messaging(cla)
        iso_sm = interindustry and sm >= 2
        data_in = apdu.data
        nc = len(data_in)
        data: Any = None
        if nc:
            if iso_sm:
                data = _parse(SM_DATA, data_in, params, issues, "secure messaging data")
            elif self.data is None:
                issues.append(f"{self.name} takes no command data")
                data = data_in
            elif chained:
                data = data_in  # one part of a chain: only the whole is meant to parse
            else:
                data = _parse(self.data, data_in, params, issues, "command data")
        if not iso_sm:
            lo, hi = self.nc_range
            if not chained and not lo <= nc <= hi:
                issues.append(
                    f"Nc = {nc}, expected {lo}..{hi}" if hi else f"Nc = {nc}, expected no data"
                )
            if apdu.le is None:
                if self.le is Le.REQUIRED:
                    issues.append("Le field missing")
            elif self.le is Le.ABSENT:
                issues.append(f"Le field present (Ne = {apdu.le}) but no response data is defined")
            elif not self.ne[0] <= apdu.le <= self.ne[1]:
                issues.append(f"Ne = {apdu.le}, expected {self.ne[0]}..{self.ne[1]}")
        fields = {
            "cla": _HEX2[cla],
            "ins": _HEX2[apdu.ins],
            "p1": _HEX2[apdu.p1],
            "p2": _HEX2[apdu.p2],
            "channel": cla_channel(cla),
            "chained": chained,
            "secure_messaging": _SM_MEANING[sm],
            "case": apdu.case,
            "extended": apdu.extended,
            "params": params,
            "nc": nc,
            "data": data,
            "ne": apdu.le,
        }
        d = Decoded(
            "command",
            raw if raw is not None else apdu.to_bytes(),
            self.name,
            fields=fields,
            spec=self,
            issues=issues,
            context=self.context.name if self.context is not None else None,
        )
        d.summary = self._summarize(d)
        return d

    def _summarize(self, d: Decoded) -> str:
        data = d.fields.get("data")
        if int(d.fields.get("secure_messaging", 0)) >= 2 and isinstance(data, list):
            # ISO/IEC 7816-4 §10: the data field holds SM data objects, not the command's
            # own data, which the spec's summary would misread.
            return f"{self.name} under secure messaging: {tlv_summary(data)}"
        s = self.summary
        if s is None:
            return default_summary(d)
        try:
            if isinstance(s, str):
                return s.format_map(_template_view(d))
            return s(d)
        # A summary must not take the decoder down; the failure lands in `issues`,
        # which the tests check.
        except Exception as e:  # noqa: BLE001
            d.issues.append(f"summary failed: {type(e).__name__}: {e}")
            return default_summary(d)

    def decode_response(self, raw: bytes, command: Decoded | None = None) -> Decoded:
        """Decode a response APDU (data + SW1-SW2) to this command."""
        return decode_response(self, raw, command)

    # -- building and generating -------------------------------------------------------

    def params_from(self, p1p2_word: int) -> dict[str, Any]:
        return {f.name: f.wrap(f.get(p1p2_word)) for f in self.fields}

    def build_data(self, value: Any, params: Mapping[str, Any] | None = None) -> bytes:
        """Encode a command data value with `data` (bytes pass through GreedyBytes)."""
        if self.data is None:
            raise ValueError(f"{self.name} takes no command data")
        return self.data.build(value, params=dict(params or {}))

    def build(
        self,
        params: Mapping[str, int] | None = None,
        data: Any = None,
        *,
        raw_data: bytes | None = None,
        ne: int | None = None,
        cla: int | None = None,
        extended: bool = False,
    ) -> bytes:
        """Encode a command APDU from field values and a data value.

        Args:
            params: P1-P2 field values by name (missing fields are 0).
            data: the value to encode with the data construct (None: no data).
            raw_data: data bytes to send as they are (instead of `data`).
            ne: Ne, or None for no Le field.
            cla: the class byte (default: the spec's).
            extended: use extended length fields.

        Raises:
            ValueError: an unknown field, a value too wide for its field, or
                data for a command that takes none.
        """
        params = dict(params or {})
        names = {f.name for f in self.fields}
        unknown = set(params) - names
        if unknown:
            raise ValueError(f"{self.name} has no field(s) {sorted(unknown)}")
        word = self.match_value
        for f in self.fields:
            v = int(params.get(f.name, 0))
            if not 0 <= v <= f.top:
                raise ValueError(f"{self.name}: {f.name} = {v} does not fit {f.where}")
            word |= v << f.shift
        if raw_data is not None:
            body = bytes(raw_data)
        elif data is None:
            body = b""
        else:
            body = self.build_data(data, self.params_from(word))
        apdu = CommandApdu(
            self.cla if cla is None else cla, self.ins, word >> 8, word & 0xFF, body, ne, extended
        )
        return apdu.to_bytes()

    def cla_values(self) -> tuple[int, ...]:
        """The spec's class, then the same class on the other logical channels (1-19)
        that its `cla_mask` admits (none for a fixed class such as GSM's A0)."""
        out: list[int] = [self.cla]
        for ch in range(1, 20):
            cla = cla_with_channel(self.cla, ch)
            if cla & self.cla_mask == self.cla & self.cla_mask and cla != 0xFF and cla not in out:
                out.append(cla)
        return tuple(out)

    def generate(self, draw: Draw) -> bytes:
        """A valid command APDU: defined field values, RFU bits 0, data per the construct.

        The same code drives `examples` (random.Random, boundary-biased) and the
        hypothesis strategy in `apdu_specs.strategies`.
        """
        cla = draw.choice(self.cla_values())
        word = self.match_value
        for f in self.fields:
            if f.values is not None:
                v = draw.choice(sorted(f.values))
            else:
                assert f.hi is not None
                v = draw.integer(f.lo, f.hi)
            word |= v << f.shift
        body = b""
        lo, hi = encodable_range(*self.nc_range)
        if self.data is not None and hi > 0 and (lo > 0 or draw.integer(0, 3)):
            value = value_for(self.data, draw, (max(lo, 1), hi))
            body = self.build_data(value, self.params_from(word))
        ne: int | None = None
        if self.le is Le.REQUIRED or (self.le is Le.OPTIONAL and draw.boolean()):
            ne = draw.integer(*self.ne)
        extended = draw.boolean() if (body or ne is not None) else False
        return CommandApdu(cla, self.ins, word >> 8, word & 0xFF, body, ne, extended).to_bytes()

    def generate_response_data(self, draw: Draw) -> bytes:
        """Response data the response construct accepts (empty when there is none)."""
        if self.response is None:
            return b""
        value = value_for(self.response, draw, (0, 256))
        return self.response.build(value, params={})

    def examples(self, rng: random.Random | int | None = None, n: int = 10) -> list[bytes]:
        """`n` valid command APDUs, leaning towards boundary values (for fuzzing).

        Args:
            rng: a random.Random, or a seed.
            n: how many.
        """
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        draw = RandomDraw(rng)
        return [self.generate(draw) for _ in range(n)]

    def strategy(self) -> SearchStrategy[bytes]:
        """A hypothesis strategy for valid commands (imports hypothesis)."""
        from apdu_specs.strategies import commands

        return commands(self)


# -- Responses ------------------------------------------------------------------------


def _response_body(d: Decoded, spec: CommandSpec | None) -> str:
    value = d.fields.get("data")
    if value is None or value == b"":
        return ""
    if spec is not None and spec.response_summary is not None:
        try:
            return spec.response_summary(d)
        # As for command summaries: report, do not raise.
        except Exception as e:  # noqa: BLE001
            d.issues.append(f"response summary failed: {type(e).__name__}: {e}")
    if isinstance(value, bytes | bytearray) and len(value) > 16:
        return f"{len(value)} bytes"
    return _short(value)


def decode_response(
    spec: CommandSpec | None,
    raw_response: bytes,
    command: Decoded | bytes | None = None,
) -> Decoded:
    """Decode a response APDU to a command `spec` applies to.

    Args:
        spec: the command's spec (None: unknown command; only the SW is read).
        raw_response: response data followed by SW1-SW2.
        command: the decoded command (or its bytes), for P1-P2-dependent
            response constructs and secure messaging.

    Returns:
        A `Decoded` of kind "response"; never raises on odd bytes.
    """
    raw = bytes(raw_response)
    if isinstance(command, bytes | bytearray):
        command = decode_command(bytes(command)) if spec is None else _decode_with(spec, command)
    name = spec.name if spec is not None else (command.name if command is not None else "?")
    context = spec.context.name if spec is not None and spec.context is not None else None
    if len(raw) < 2:
        return Decoded(
            "response",
            raw,
            name,
            f"malformed response: {len(raw)} byte(s), no SW1-SW2",
            {"data": raw},
            spec,
            ["a response has at least SW1-SW2"],
            context=context,
        )
    sw = (raw[-2] << 8) | raw[-1]
    sw1, sw2 = sw >> 8, sw & 0xFF
    body = raw[:-2]
    issues: list[str] = []
    fields: dict[str, Any] = {"sw": HexInt(sw, 4), "sw_meaning": describe(sw)}
    if spec is not None and not spec.sw_expected(sw):
        issues.append(f"{sw:04X} is not a status word {spec.name} is specified to return")
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        fields["retries"] = sw2 & 0x0F
    elif sw1 == 0x61:
        fields["available"] = sw2 or 256
    elif sw1 == 0x6C:
        fields["exact_ne"] = sw2 or 256
    value: Any = None
    if body:
        params = command.params if command is not None else {}
        sm = (
            command is not None
            and command.fields.get("cla", 0x80) & 0x80 == 0
            and int(command.fields.get("secure_messaging", 0)) >= 2
        )
        complete = sw == 0x9000 or sw1 in (0x62, 0x63, 0x91)
        if sw1 == 0x61:
            value = body  # the first part; GET RESPONSE fetches the rest
        elif not complete:
            issues.append(
                f"response data with {sw:04X}: ISO 7816-4 sends data only on success or a warning"
            )
            value = body
        elif sm:
            value = _parse(SM_DATA, body, params, issues, "secure messaging data")
        elif spec is None:
            value = body
        elif spec.response is None:
            issues.append(f"{spec.name} is not specified to return data")
            value = body
        else:
            value = _parse(spec.response, body, params, issues, "response data")
    fields["data"] = value
    fields["nr"] = len(body)
    d = Decoded("response", raw, name, fields=fields, spec=spec, issues=issues, context=context)
    text = _response_body(d, spec)
    status = f"{sw:04X} ({fields['sw_meaning']})"
    d.summary = f"{status}: {text}" if text else status
    return d


def _decode_with(spec: CommandSpec, raw: bytes) -> Decoded | None:
    try:
        return spec.decode(CommandApdu.from_bytes(raw), raw)
    except ApduFormatError:
        return None


# -- Registry ---------------------------------------------------------------------------


#: How many other readings `decode_command` tries when the best one has issues.
_RETRIES = 3


class Registry:
    """Specs indexed by INS, matched most specific first.

    Args:
        specs: the specs; their ids must be unique.
        strict: raise on a duplicate id (else leave it out and note it in `problems`).

    Raises:
        ValueError: two specs with the same id (strict).
    """

    def __init__(self, specs: Iterable[CommandSpec], *, strict: bool = True) -> None:
        #: What was left out (strict=False): duplicate ids, modules that failed to import.
        self.problems: list[str] = []
        kept: list[CommandSpec] = []
        seen: set[str] = set()
        for s in specs:
            if s.id in seen:
                if strict:
                    raise ValueError(f"two specs are both {s.id!r}")
                self.problems.append(f"two specs are both {s.id!r}: the second is left out")
                continue
            seen.add(s.id)
            kept.append(s)
        self._specs = tuple(kept)
        order = {id(s): i for i, s in enumerate(self._specs)}
        by_ins: dict[int, list[CommandSpec]] = {}
        for s in self._specs:
            by_ins.setdefault(s.ins, []).append(s)
        self._by_ins = {
            ins: tuple(
                sorted(group, key=lambda s: (-s.specificity, s.context is not None, order[id(s)]))
            )
            for ins, group in by_ins.items()
        }

    @property
    def specs(self) -> tuple[CommandSpec, ...]:
        return self._specs

    @property
    def contexts(self) -> tuple[AppletContext, ...]:
        out: list[AppletContext] = []
        for s in self._specs:
            if s.context is not None and s.context not in out:
                out.append(s.context)
        return tuple(out)

    def context_for(self, aid: bytes) -> AppletContext | None:
        """The applet context a selected AID belongs to, if any."""
        return next((ctx for ctx in self.contexts if ctx.matches(aid)), None)

    def find(self, name: str) -> list[CommandSpec]:
        """Specs whose name (or id) is `name`, case-insensitively."""
        key = name.upper()
        return [s for s in self._specs if s.name.upper() == key or s.id.upper() == key]

    def match(
        self, command: bytes | CommandApdu, *, context: bytes | None = None
    ) -> list[CommandSpec]:
        """Specs that apply to a command, best first.

        Order: with a known `context` (the AID selected on the command's
        channel), specs of that applet first, then specs of no applet, and
        specs of other applets left out; with no context, specs of no applet
        (standards) first, then applet specs. Within each group the most
        specific first (most CLA and P1-P2 bits fixed), then registration order.
        """
        if isinstance(command, CommandApdu):
            cla, ins, word = command.cla, command.ins, (command.p1 << 8) | command.p2
        else:
            if len(command) < 4:
                return []
            cla, ins, word = command[0], command[1], (command[2] << 8) | command[3]
        out = [
            s
            for s in self._by_ins.get(ins, ())
            if cla & s.cla_mask == s.cla & s.cla_mask and word & s.match_mask == s.match_value
        ]
        if context is not None:
            mine = [s for s in out if s.context is not None and s.context.matches(context)]
            return mine + [s for s in out if s.context is None]
        return [s for s in out if s.context is None] + [s for s in out if s.context is not None]

    def decode_command(self, raw: bytes, *, context: bytes | None = None) -> Decoded:
        """Decode a command APDU with the best matching spec (see `match`)."""
        raw = bytes(raw)
        try:
            apdu = CommandApdu.from_bytes(raw)
        except ApduFormatError as e:
            return Decoded(
                "command",
                raw,
                "?",
                f"malformed command APDU: {e.reason}",
                {"data": raw},
                issues=[e.reason],
            )
        if apdu.cla == 0xFF:
            return _unknown_command(
                apdu, raw, "CLA FF is invalid (it starts a PPS, ISO/IEC 7816-3 §9)"
            )
        specs = self.match(apdu, context=context)
        if not specs:
            return _unknown_command(apdu, raw, None)
        best = specs[0]
        d = best.decode(apdu, raw)
        # Other readings: another command (or another applet's) for the same
        # header, not a variant or fallback of the same one.
        others = [
            s
            for s in specs[1:]
            if not s.fallback and (s.name != best.name or s.context != best.context)
        ]
        if d.issues:
            # When the best guess does not fit the bytes, prefer a reading that does
            # (80 50 00 00 04 is the purse's GET BALANCE, not an INITIALIZE UPDATE).
            for s in others[:_RETRIES]:
                alt = s.decode(apdu, raw)
                if not alt.issues:
                    others = [best, *[o for o in others if o is not s]]
                    best, d = s, alt
                    break
        d.alternatives = tuple(s.id for s in others)
        return d

    def session(self) -> DecodeSession:
        return DecodeSession(self)


def _unknown_command(apdu: CommandApdu, raw: bytes, issue: str | None) -> Decoded:
    cla = apdu.cla
    fields = {
        "cla": _HEX2[cla],
        "ins": _HEX2[apdu.ins],
        "p1": _HEX2[apdu.p1],
        "p2": _HEX2[apdu.p2],
        "channel": cla_channel(cla),
        "case": apdu.case,
        "extended": apdu.extended,
        "nc": len(apdu.data),
        "data": apdu.data if apdu.data else None,
        "ne": apdu.le,
    }
    text = f"unknown command: CLA {cla:02X} INS {apdu.ins:02X} P1 {apdu.p1:02X} P2 {apdu.p2:02X}"
    if apdu.data:
        text += f", {len(apdu.data)} byte(s) of data"
    if apdu.le is not None:
        text += f", Ne {apdu.le}"
    d = Decoded("command", raw, f"INS {apdu.ins:02X}", text, fields)
    if issue:
        d.issues.append(issue)
    return d


_INFRASTRUCTURE = frozenset({"base", "constructs", "generate", "strategies", "values"})


def spec_modules() -> list[str]:
    """Names of this package's spec modules (those besides the framework's own)."""
    import apdu_specs

    return sorted(
        f"apdu_specs.{m.name}"
        for m in pkgutil.iter_modules(apdu_specs.__path__)
        if not m.name.startswith("_") and m.name not in _INFRASTRUCTURE
    )


@functools.cache
def default_registry() -> Registry:
    """Every spec of every module in this package that defines `SPECS` (built once).

    A module that fails to import, or a spec whose id is taken, is left out and
    logged (and listed in `problems`, which the tests require empty): one broken
    module must not stop every trace from being decoded.
    """
    specs: list[CommandSpec] = []
    problems: list[str] = []
    for name in spec_modules():
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - see the docstring
            problems.append(f"{name} does not import: {type(e).__name__}: {e}")
            continue
        specs.extend(getattr(module, "SPECS", ()))
    registry = Registry(specs, strict=False)
    registry.problems[:0] = problems
    for problem in registry.problems:
        log.warning("apdu_specs: %s", problem)
    return registry


def all_specs() -> tuple[CommandSpec, ...]:
    """Every registered spec."""
    return default_registry().specs


def match(command: bytes, *, context: bytes | None = None) -> list[CommandSpec]:
    """Specs applying to a command, best first (see `Registry.match`)."""
    return default_registry().match(command, context=context)


def decode_command(raw: bytes, *, context: bytes | None = None) -> Decoded:
    """Decode a command APDU with the default registry.

    Args:
        raw: the command APDU.
        context: the AID selected on the command's logical channel, if known.
    """
    return default_registry().decode_command(raw, context=context)


# -- A decoding session ----------------------------------------------------------------


_SUCCESS_SW1 = (0x61, 0x62, 0x63, 0x90, 0x91)


class DecodeSession:
    """Decodes a stream of exchanges, following what each logical channel selected.

    It tracks SELECT by DF name and MANAGE CHANNEL to know the selected AID on
    each channel (so applet specs win there), and reassembles responses
    fetched with GET RESPONSE: the final response's `assembled` is the whole
    response decoded with the spec of the command that started it.

    Args:
        registry: the specs (default: `default_registry()`).
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.selected: dict[int, bytes] = {}
        self._last: Decoded | None = None
        self._pending: dict[int, tuple[Decoded, bytearray]] = {}

    def reset(self) -> None:
        """A card reset: nothing is selected, nothing pending."""
        self.selected.clear()
        self._pending.clear()
        self._last = None

    def command(self, raw: bytes) -> Decoded:
        channel = cla_channel(raw[0]) if raw else 0
        d = self.registry.decode_command(raw, context=self.selected.get(channel))
        self._last = d
        return d

    def response(self, raw: bytes) -> Decoded:
        """Decode the response to the last command given to `command`."""
        cmd = self._last
        spec = cmd.spec if cmd is not None else None
        r = decode_response(spec, raw, cmd)
        if cmd is not None and len(raw) >= 2:
            self._track(cmd, r, raw)
        return r

    def exchange(self, command: bytes, response: bytes) -> tuple[Decoded, Decoded]:
        return self.command(command), self.response(response)

    def _track(self, cmd: Decoded, r: Decoded, raw: bytes) -> None:
        f = cmd.fields
        if "ins" not in f:
            return
        channel = f["channel"]
        sw = (raw[-2] << 8) | raw[-1]
        ok = sw >> 8 in _SUCCESS_SW1
        ins, interindustry = int(f["ins"]), int(f["cla"]) & 0x80 == 0
        pending = self._pending.pop(channel, None)
        if interindustry and ins == 0xC0 and pending is not None:
            origin, buf = pending
            buf += raw[:-2]
            if sw >> 8 == 0x61:
                self._pending[channel] = (origin, buf)
            else:
                whole = decode_response(origin.spec, bytes(buf) + raw[-2:], origin)
                r.assembled = whole
                r.summary += f"; {origin.name} response: {whole.summary}"
        elif sw >> 8 == 0x61:
            self._pending[channel] = (cmd, bytearray(raw[:-2]))
        if not ok or not interindustry:
            return
        if ins == 0xA4 and f["p1"] == 0x04 and not cmd.fields.get("chained"):
            self._selected_by_name(channel, cmd, r)
        elif ins == 0x70:
            self._manage_channel(channel, cmd, raw)

    def _selected_by_name(self, channel: int, cmd: Decoded, r: Decoded) -> None:
        from apdu_specs.constructs import find_entry

        name = cmd.fields.get("data")
        data = r.fields.get("data")
        if isinstance(data, list):
            df_name = find_entry(data, 0x84)
            if df_name is not None and "value" in df_name:
                name = df_name["value"]
        if isinstance(name, bytes) and name:
            self.selected[channel] = name
        else:
            self.selected.pop(channel, None)  # the default application: not known here

    def _manage_channel(self, channel: int, cmd: Decoded, raw: bytes) -> None:
        p1, p2 = int(cmd.fields["p1"]), int(cmd.fields["p2"])
        if p1 == 0x00:
            new = p2 if p2 else (raw[0] if len(raw) == 3 else None)
            if new is None:
                return
            # Java Card RE §4.2: a channel opened from channel 0 gets the default
            # applet, from another channel that channel's applet.
            if channel != 0 and channel in self.selected:
                self.selected[new] = self.selected[channel]
            else:
                self.selected.pop(new, None)
        elif p1 == 0x80:
            self.selected.pop(p2 if p2 else channel, None)
            self._pending.pop(p2 if p2 else channel, None)


__all__ = [
    "ANY_COMMAND_SWS",
    "AppletContext",
    "CommandSpec",
    "DecodeSession",
    "Decoded",
    "Field",
    "Le",
    "Registry",
    "SwPattern",
    "Vector",
    "all_specs",
    "count_bytes",
    "decode_command",
    "decode_response",
    "default_registry",
    "default_summary",
    "match",
    "p1",
    "p1p2",
    "p2",
    "spec_modules",
    "sws",
]
