"""`CommandSpec`: one command (or one variant of it) declared, decoded, built, generated."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import construct as c

from apdu_specs.constructs import SM_DATA, tlv_summary
from apdu_specs.framework.decoded import (
    HEX2,
    SM_MEANING,
    Decoded,
    default_summary,
    parse_data,
    template_view,
)
from apdu_specs.framework.fields import Field, Le
from apdu_specs.framework.patterns import ANY_COMMAND_SWS, SwPattern
from apdu_specs.framework.response import decode_response
from apdu_specs.framework.vectors import AppletContext, Vector
from apdu_specs.generate import Draw, RandomDraw, encodable_range, value_for
from card.apdu import (
    CommandApdu,
    cla_chained,
    cla_channel,
    cla_secure_messaging,
    cla_with_channel,
)

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy


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
                data = parse_data(SM_DATA, data_in, params, issues, "secure messaging data")
            elif self.data is None:
                issues.append(f"{self.name} takes no command data")
                data = data_in
            elif chained:
                data = data_in  # one part of a chain: only the whole is meant to parse
            else:
                data = parse_data(self.data, data_in, params, issues, "command data")
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
            "cla": HEX2[cla],
            "ins": HEX2[apdu.ins],
            "p1": HEX2[apdu.p1],
            "p2": HEX2[apdu.p2],
            "channel": cla_channel(cla),
            "chained": chained,
            "secure_messaging": SM_MEANING[sm],
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
                return s.format_map(template_view(d))
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
        return self._cla_values

    @cached_property
    def _cla_values(self) -> tuple[int, ...]:
        # Once per spec: the fuzzer asks for every command it generates.
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
