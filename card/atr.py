"""Answer-to-Reset: ISO/IEC 7816-3 §8, with historical bytes per ISO/IEC 7816-4 §8.1.1.

Clause numbers for 7816-4 are those of the 2005 edition (historical bytes moved
to §12.1.1 in 2013).

An ATR is TS, T0 (Y1 in b8-b5, K historical bytes in b4-b1), the interface
bytes TAi/TBi/TCi/TDi (TDi's b8-b5 are the map Y(i+1) of the next group, its
b4-b1 the protocol T it announces), K historical bytes, and TCK, the byte that
makes T0..TCK XOR to zero. TCK is there unless T=0 is the only protocol
indicated (§8.2.5); T=15 (global interface bytes) counts as indicated.

`Atr` holds the structure and derives the parameters a transport needs
(`protocols`, `fi`/`di`, `ifsc`, `bwi`/`cwi`, `t1_edc`, ...). `build_atr` writes
a consistent ATR from those parameters. `HistoricalBytes` and
`CardCapabilities` read and write the COMPACT-TLV historical bytes, whose
card capabilities (tag 7) tell a terminal whether extended Lc/Le are supported.

`AtrError` (a `ValueError`) carries the offset of the byte or field at fault:
for a missing field, the position where it should have started.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from card.errors import OffsetError

TS_DIRECT = 0x3B
TS_INVERSE = 0x3F
MAX_HISTORICAL = 15
MAX_ATR_LENGTH = 33  # TS plus at most 32 characters (§8.2.1)

# ISO 7816-3 §8.3, Table 7: Fi and f(max) in MHz by the b8-b5 nibble of TA1 (None: RFU).
FI_TABLE: tuple[int | None, ...] = (
    372, 372, 558, 744, 1116, 1488, 1860, None, None, 512, 768, 1024, 1536, 2048, None, None,
)  # fmt: skip
FMAX_TABLE: tuple[float | None, ...] = (
    4, 5, 6, 8, 12, 16, 20, None, None, 5, 7.5, 10, 15, 20, None, None,
)  # fmt: skip
# ISO 7816-3 §8.3, Table 8: Di by the b4-b1 nibble of TA1.
DI_TABLE: tuple[int | None, ...] = (
    None, 1, 2, 4, 8, 16, 32, 64, 12, 20, None, None, None, None, None, None,
)  # fmt: skip

# Defaults when the bytes are absent (ISO 7816-3 §8.3, §10.2, §11.4).
DEFAULT_TA1 = 0x11
DEFAULT_WI = 10
DEFAULT_IFSC = 32
DEFAULT_BWI = 4
DEFAULT_CWI = 13

# COMPACT-TLV tags in the historical bytes (ISO 7816-4 §8.1.1.2).
CTAG_COUNTRY = 0x1
CTAG_ISSUER = 0x2
CTAG_CARD_SERVICE = 0x3
CTAG_INITIAL_ACCESS = 0x4
CTAG_ISSUER_DATA = 0x5
CTAG_PRE_ISSUING = 0x6
CTAG_CARD_CAPABILITIES = 0x7
CTAG_STATUS = 0x8
CTAG_AID = 0xF


class AtrError(OffsetError):
    """A malformed ATR or historical bytes. (`.message`, `.offset`)."""


class Edc(Enum):
    """T=1 error detection code, b1 of the first TCi for T=1 (ISO 7816-3 §11.4.4)."""

    LRC = 0
    CRC = 1


class InterfaceBytes(NamedTuple):
    """One group of interface bytes TAi, TBi, TCi, TDi (None when absent)."""

    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None

    @property
    def presence(self) -> int:
        """The Y map that announces this group: b1 TA, b2 TB, b3 TC, b4 TD."""
        return (
            (self.ta is not None)
            | (self.tb is not None) << 1
            | (self.tc is not None) << 2
            | (self.td is not None) << 3
        )


class SpecificMode(NamedTuple):
    """TA2 (ISO 7816-3 §8.3): the card is in specific mode with this protocol."""

    protocol: int
    changeable: bool  # b8 = 0: the card can change to negotiable mode
    implicit: bool  # b5 = 1: transmission parameters defined implicitly, not by TA1


def _xor(data: Iterable[int]) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


@dataclass(frozen=True)
class Atr:
    """An ATR: TS, the interface byte groups (group i at index i-1), the historical bytes.

    T0, the TDi maps and TCK are derived from the structure, so any `Atr`
    encodes to a consistent ATR. Build one with `from_bytes`, `from_levels`
    or `build_atr`.
    """

    ts: int
    interface: tuple[InterfaceBytes, ...] = (InterfaceBytes(),)
    historical: bytes = b""

    def __post_init__(self) -> None:
        if self.ts not in (TS_DIRECT, TS_INVERSE):
            raise ValueError(f"TS {self.ts:#04x} is neither 3B nor 3F")
        groups = tuple(InterfaceBytes(*g) for g in self.interface)
        object.__setattr__(self, "interface", groups)
        object.__setattr__(self, "historical", bytes(self.historical))
        if not groups:
            raise ValueError("an ATR has at least the first group of interface bytes (maybe empty)")
        if len(self.historical) > MAX_HISTORICAL:
            raise ValueError(f"{len(self.historical)} historical bytes, at most 15")
        for i, g in enumerate(groups, 1):
            for v in g:
                if v is not None and not 0 <= v <= 0xFF:
                    raise ValueError(f"interface byte {v} of group {i} is not a byte")
            last = i == len(groups)
            if last and g.td is not None:
                raise ValueError(f"TD{i} present but no group {i + 1} follows")
            if not last:
                if g.td is None:
                    raise ValueError(f"group {i + 1} present but TD{i} absent")
                if g.td >> 4 != groups[i].presence:
                    raise ValueError(
                        f"TD{i}={g.td:02X} announces {g.td >> 4:X}, group {i + 1} has "
                        f"{groups[i].presence:X}"
                    )

    # -- construction -------------------------------------------------------

    @classmethod
    def from_levels(
        cls,
        levels: Sequence[tuple[int | None, int | None, int | None, int | None]],
        historical: bytes = b"",
        ts: int = TS_DIRECT,
    ) -> Atr:
        """Assemble an ATR from groups (TAi, TBi, TCi, T announced by TDi or None).

        The TDi bytes get their Y maps from the groups that follow; a group
        announcing a T with nothing after it is followed by an empty group.
        """
        rows = [tuple(lv) for lv in levels] or [(None, None, None, None)]
        if rows[-1][3] is not None:
            rows.append((None, None, None, None))
        groups: list[InterfaceBytes] = []
        for i, (ta, tb, tc, t) in enumerate(rows):
            td = None
            if i + 1 < len(rows):
                if t is None or not 0 <= t <= 15:
                    raise ValueError(f"group {i + 1} is followed by another: it needs a T (0..15)")
                ta2, tb2, tc2, t2 = rows[i + 1]
                td = InterfaceBytes(ta2, tb2, tc2, None if t2 is None else 0).presence << 4 | t
            groups.append(InterfaceBytes(ta, tb, tc, td))
        return cls(ts, tuple(groups), bytes(historical))

    @classmethod
    def from_bytes(cls, data: bytes) -> Atr:
        """Parse an ATR (ISO 7816-3 §8.2), checking TCK.

        Raises:
            AtrError: bad TS, truncation, wrong TCK, or bytes after the ATR.
        """
        n = len(data)
        if n == 0:
            raise AtrError("empty ATR: TS missing", 0)
        ts = data[0]
        if ts not in (TS_DIRECT, TS_INVERSE):
            raise AtrError(f"TS {ts:02X} is neither 3B (direct) nor 3F (inverse)", 0)
        if n < 2:
            raise AtrError("truncated: T0 missing", 1)
        y = data[1] >> 4
        k = data[1] & 0x0F
        pos = 2
        groups: list[InterfaceBytes] = []
        while True:
            i = len(groups) + 1
            vals: list[int | None] = []
            for bit, name in ((1, "TA"), (2, "TB"), (4, "TC"), (8, "TD")):
                if y & bit:
                    if pos >= n:
                        raise AtrError(f"truncated: {name}{i} missing", pos)
                    vals.append(data[pos])
                    pos += 1
                else:
                    vals.append(None)
            g = InterfaceBytes(*vals)
            groups.append(g)
            if g.td is None:
                break
            y = g.td >> 4
        if pos + k > n:
            raise AtrError(f"truncated: {k} historical bytes announced, {n - pos} present", pos)
        atr = cls(ts, tuple(groups), bytes(data[pos : pos + k]))
        pos += k
        if atr.tck_present:
            if pos >= n:
                raise AtrError("truncated: TCK missing", pos)
            if _xor(data[1 : pos + 1]):
                expected = _xor(data[1:pos])
                raise AtrError(f"TCK is {data[pos]:02X}, expected {expected:02X}", pos)
            pos += 1
        if pos < n:
            raise AtrError(f"{n - pos} unexpected byte(s) after the ATR", pos)
        return atr

    def to_bytes(self) -> bytes:
        out = bytearray((self.ts, self.t0))
        for g in self.interface:
            out.extend(v for v in g if v is not None)
        out += self.historical
        if self.tck_present:
            out.append(_xor(out[1:]))
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def __str__(self) -> str:
        return self.to_bytes().hex(" ").upper()

    # -- structure ----------------------------------------------------------

    @property
    def t0(self) -> int:
        return self.interface[0].presence << 4 | len(self.historical)

    @property
    def inverse(self) -> bool:
        """TS 3F: inverse convention (§8.1)."""
        return self.ts == TS_INVERSE

    @property
    def tck_present(self) -> bool:
        """TCK is present unless T=0 alone is indicated (§8.2.5)."""
        return any(g.td is not None and g.td & 0x0F for g in self.interface)

    @property
    def tck(self) -> int | None:
        if not self.tck_present:
            return None
        return self.to_bytes()[-1]

    def _indicated(self) -> list[int]:
        return [g.td & 0x0F for g in self.interface if g.td is not None]

    def groups_for(self, t: int) -> Iterator[InterfaceBytes]:
        """The groups i > 2 that follow a TD(i-1) announcing T=t: where its specific bytes are."""
        for i in range(2, len(self.interface)):
            td = self.interface[i - 1].td
            if td is not None and td & 0x0F == t:
                yield self.interface[i]

    def _first(self, t: int, field: str) -> int | None:
        for g in self.groups_for(t):
            v = getattr(g, field)
            if v is not None:
                return v
        return None

    # -- global parameters (ISO 7816-3 §8.3) -----------------------------------

    @property
    def protocols(self) -> frozenset[int]:
        """The protocols T offered; T=0 alone when there is no TD1. T=15 is not a protocol."""
        offered = frozenset(t for t in self._indicated() if t != 15)
        return offered or frozenset((0,))

    @property
    def default_protocol(self) -> int:
        """The first offered protocol (TD1's T, or T=0), used when no PPS is exchanged."""
        ts = [t for t in self._indicated() if t != 15]
        return ts[0] if ts else 0

    @property
    def ta1(self) -> int:
        """TA1, or its default 11 (Fi 372, Di 1) when absent."""
        ta1 = self.interface[0].ta
        return DEFAULT_TA1 if ta1 is None else ta1

    @property
    def fi(self) -> int | None:
        """Clock rate conversion integer Fi (Table 7); None for an RFU value."""
        return FI_TABLE[self.ta1 >> 4]

    @property
    def f_max(self) -> float | None:
        """Maximum clock frequency in MHz that goes with Fi (Table 7)."""
        return FMAX_TABLE[self.ta1 >> 4]

    @property
    def di(self) -> int | None:
        """Baud rate adjustment integer Di (Table 8); None for an RFU value."""
        return DI_TABLE[self.ta1 & 0x0F]

    @property
    def extra_guard_time(self) -> int:
        """N from TC1 (0 when absent); 255 means the minimum character guard time."""
        tc1 = self.interface[0].tc
        return 0 if tc1 is None else tc1

    @property
    def wi(self) -> int:
        """T=0 waiting time integer from TC2 (§10.2), 10 when absent."""
        tc2 = self.interface[1].tc if len(self.interface) > 1 else None
        return DEFAULT_WI if tc2 is None else tc2

    @property
    def specific_mode(self) -> SpecificMode | None:
        """TA2 present: the card is in specific mode (§8.3); None: negotiable mode."""
        ta2 = self.interface[1].ta if len(self.interface) > 1 else None
        if ta2 is None:
            return None
        return SpecificMode(ta2 & 0x0F, not ta2 & 0x80, bool(ta2 & 0x10))

    @property
    def class_indicator(self) -> int | None:
        """The first TAi for T=15 (clock stop b8-b7, classes b6-b1), or None."""
        return self._first(15, "ta")

    # -- T=1 parameters (ISO 7816-3 §11.4) --------------------------------------

    @property
    def ifsc(self) -> int:
        """Information field size of the card: first TAi (i > 2) for T=1, else 32."""
        v = self._first(1, "ta")
        return DEFAULT_IFSC if v is None else v

    @property
    def bwi(self) -> int:
        """Block waiting time integer: b8-b5 of the first TBi for T=1, else 4."""
        v = self._first(1, "tb")
        return DEFAULT_BWI if v is None else v >> 4

    @property
    def cwi(self) -> int:
        """Character waiting time integer: b4-b1 of the first TBi for T=1, else 13."""
        v = self._first(1, "tb")
        return DEFAULT_CWI if v is None else v & 0x0F

    @property
    def t1_edc(self) -> Edc:
        """Error detection code for T=1: b1 of the first TCi for T=1 (LRC when absent)."""
        v = self._first(1, "tc")
        return Edc.CRC if v is not None and v & 1 else Edc.LRC

    # -- historical bytes (ISO 7816-4 §8.1.1) ------------------------------------

    @property
    def historical_info(self) -> HistoricalBytes:
        """The historical bytes decoded.

        Raises:
            AtrError: malformed COMPACT-TLV (offset within the historical bytes).
        """
        return HistoricalBytes.from_bytes(self.historical)

    @property
    def card_capabilities(self) -> CardCapabilities | None:
        """Card capabilities from the historical bytes; None if absent or unreadable."""
        try:
            return self.historical_info.card_capabilities
        except AtrError:
            return None

    @property
    def extended_length(self) -> bool:
        """Whether the historical bytes announce extended Lc and Le (third table, b7).

        A card may announce it in EF.ATR/INFO instead; this looks at the ATR only.
        """
        caps = self.card_capabilities
        return caps is not None and caps.extended_length


# -- Historical bytes and COMPACT-TLV (ISO 7816-4 §8.1.1) -------------------------


def parse_compact_tlv(data: bytes, offset: int = 0) -> list[tuple[int, bytes]]:
    """Parse COMPACT-TLV objects (one byte: tag b8-b5, length b4-b1; then the value).

    Args:
        data: the bytes.
        offset: added to positions in errors, for data cut out of a larger buffer.

    Raises:
        AtrError: a value runs past the data.
    """
    out: list[tuple[int, bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        tag, n = data[pos] >> 4, data[pos] & 0x0F
        if pos + 1 + n > end:
            raise AtrError(
                f"COMPACT-TLV {data[pos]:02X}: {n} bytes announced, {end - pos - 1} left",
                offset + pos,
            )
        out.append((tag, bytes(data[pos + 1 : pos + 1 + n])))
        pos += 1 + n
    return out


def build_compact_tlv(objects: Iterable[tuple[int, bytes]]) -> bytes:
    """Encode (tag, value) pairs as COMPACT-TLV.

    Raises:
        ValueError: a tag outside 0..15 or a value over 15 bytes.
    """
    out = bytearray()
    for tag, value in objects:
        if not 0 <= tag <= 0x0F:
            raise ValueError(f"COMPACT-TLV tag {tag} out of range 0..15")
        if len(value) > 0x0F:
            raise ValueError(f"COMPACT-TLV value of {len(value)} bytes, at most 15")
        out.append(tag << 4 | len(value))
        out += value
    return bytes(out)


@dataclass(frozen=True)
class CardCapabilities:
    """Card capabilities, COMPACT-TLV tag 7 (ISO 7816-4 §8.1.1.2.7).

    The three software function tables; `to_bytes` always writes all three.
    Reading an object of one or two bytes leaves the later tables at "nothing
    announced" (data coding 00, no chaining, no extended length, one channel).
    """

    # First table: DF selection (b8 full name, b7 partial name, b6 path, b5 file
    # identifier, b4 implicit), b3 short EF identifier, b2 record number, b1 record identifier.
    selection_methods: int = 0xF6
    # Second table, the data coding byte: b8 EFs of TLV structure, b7-b6 write
    # behaviour, b5 'FF' valid as first tag byte, b4-b1 data unit size (01: one byte).
    data_coding: int = 0x21
    # Third table.
    chaining: bool = True  # b8
    extended_length: bool = True  # b7: extended Lc and Le fields
    extended_length_info: bool = False  # b6: extended length information in EF.ATR/INFO
    channel_assignment_by_card: bool = True  # b5
    channel_assignment_by_ifd: bool = True  # b4
    max_channels: int = 4  # b3-b1 + 1; 8 means "eight or more"

    def __post_init__(self) -> None:
        for name in ("selection_methods", "data_coding"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} is not a byte")
        if not 1 <= self.max_channels <= 8:
            raise ValueError(f"max_channels {self.max_channels} out of range 1..8")

    @classmethod
    def from_bytes(cls, value: bytes) -> CardCapabilities:
        """Decode the value of a card capabilities object (1 to 3 bytes).

        Raises:
            AtrError: empty or longer than 3 bytes.
        """
        if not 1 <= len(value) <= 3:
            raise AtrError(f"card capabilities of {len(value)} bytes, expected 1 to 3", 0)
        t3 = value[2] if len(value) == 3 else 0
        return cls(
            selection_methods=value[0],
            data_coding=value[1] if len(value) >= 2 else 0,
            chaining=bool(t3 & 0x80),
            extended_length=bool(t3 & 0x40),
            extended_length_info=bool(t3 & 0x20),
            channel_assignment_by_card=bool(t3 & 0x10),
            channel_assignment_by_ifd=bool(t3 & 0x08),
            max_channels=(t3 & 0x07) + 1,
        )

    def to_bytes(self) -> bytes:
        t3 = (
            self.chaining << 7
            | self.extended_length << 6
            | self.extended_length_info << 5
            | self.channel_assignment_by_card << 4
            | self.channel_assignment_by_ifd << 3
            | (self.max_channels - 1)
        )
        return bytes((self.selection_methods, self.data_coding, t3))


@dataclass(frozen=True)
class HistoricalBytes:
    """Historical bytes by category indicator (ISO 7816-4 §8.1.1.1).

    Category 00: COMPACT-TLV objects, then a 3-byte status indicator in `rest`.
    Category 80: COMPACT-TLV objects (a status indicator may be tag 8).
    Category 10: `rest` holds the DIR data reference. Any other first byte is
    proprietary: `rest` holds what follows it. Empty historical bytes have
    category None.
    """

    category: int | None
    objects: tuple[tuple[int, bytes], ...] = ()
    rest: bytes = b""

    @classmethod
    def from_bytes(cls, data: bytes) -> HistoricalBytes:
        """Decode historical bytes.

        Raises:
            AtrError: malformed COMPACT-TLV, or category 00 without its status indicator.
        """
        if not data:
            return cls(None)
        category = data[0]
        if category == 0x00:
            if len(data) < 4:
                raise AtrError("category 00 ends with a 3-byte status indicator", len(data))
            objs = parse_compact_tlv(data[1:-3], offset=1)
            return cls(category, tuple(objs), bytes(data[-3:]))
        if category == 0x80:
            return cls(category, tuple(parse_compact_tlv(data[1:], offset=1)))
        return cls(category, (), bytes(data[1:]))

    def to_bytes(self) -> bytes:
        if self.category is None:
            return b""
        return bytes((self.category,)) + build_compact_tlv(self.objects) + self.rest

    def get(self, tag: int) -> bytes | None:
        """The value of the first COMPACT-TLV object with this tag, or None."""
        for t, v in self.objects:
            if t == tag:
                return v
        return None

    @property
    def status_indicator(self) -> bytes | None:
        """LCS and/or SW1-SW2 (1 to 3 bytes), from the trailer (00) or tag 8 (80)."""
        if self.category == 0x00:
            return self.rest
        return self.get(CTAG_STATUS)

    @property
    def card_capabilities(self) -> CardCapabilities | None:
        """Card capabilities (tag 7), or None when absent.

        Raises:
            AtrError: the object is empty or longer than 3 bytes.
        """
        v = self.get(CTAG_CARD_CAPABILITIES)
        return None if v is None else CardCapabilities.from_bytes(v)


def build_historical(
    objects: Iterable[tuple[int, bytes]] = (),
    *,
    capabilities: CardCapabilities | None = None,
    status: bytes | None = None,
) -> bytes:
    """Category 80 historical bytes: the objects, then card capabilities, then status.

    Args:
        objects: COMPACT-TLV (tag, value) pairs, written first and in order.
        capabilities: written as tag 7.
        status: status indicator (LCS, SW1-SW2 or both), written last as tag 8.

    Raises:
        ValueError: more than 15 bytes in all, or an invalid object.
    """
    objs = list(objects)
    if capabilities is not None:
        objs.append((CTAG_CARD_CAPABILITIES, capabilities.to_bytes()))
    if status is not None:
        if not 1 <= len(status) <= 3:
            raise ValueError("a status indicator has 1 to 3 bytes")
        objs.append((CTAG_STATUS, bytes(status)))
    out = b"\x80" + build_compact_tlv(objs)
    if len(out) > MAX_HISTORICAL:
        raise ValueError(f"historical bytes of {len(out)} bytes, at most 15")
    return out


# -- Building an ATR -----------------------------------------------------------------


def _fi_index(fi: int) -> int:
    if fi == 372:
        return 1  # 372 with f(max) 5 MHz: the default TA1 = 11
    try:
        return FI_TABLE.index(fi)
    except ValueError:
        raise ValueError(f"Fi {fi} is not in ISO 7816-3 Table 7") from None


def _di_index(di: int) -> int:
    try:
        return DI_TABLE.index(di)
    except ValueError:
        raise ValueError(f"Di {di} is not in ISO 7816-3 Table 8") from None


def _check_byte(name: str, v: int | None) -> None:
    if v is not None and not 0 <= v <= 0xFF:
        raise ValueError(f"{name} {v} is not a byte")


_Group = tuple[int | None, int | None, int | None]  # TAi, TBi, TCi
_NO_GROUP: _Group = (None, None, None)


def _offered(
    protocols: Iterable[int], *, t1_params: tuple[object, ...], wi: int | None
) -> list[int]:
    """The protocols in ascending T, checked against the parameters given for them."""
    offered = sorted(set(protocols))
    if not offered or not all(0 <= t <= 14 for t in offered):
        raise ValueError(f"protocols {offered}: give one or more of T=0..14")
    if 1 not in offered and any(v is not None for v in t1_params):
        raise ValueError("ifsc, bwi, cwi and crc are T=1 parameters but T=1 is not offered")
    if wi is not None and offered[0] != 0:
        raise ValueError("TC2 (WI) needs T=0 announced in TD1")
    return offered


def _t1_group(ifsc: int | None, bwi: int | None, cwi: int | None, crc: bool | None) -> _Group:
    """TA/TB/TC of the first T=1 group (ISO 7816-3 §11.4): only bytes off their defaults."""
    ifsc = 254 if ifsc is None else ifsc
    bwi = DEFAULT_BWI if bwi is None else bwi
    cwi = DEFAULT_CWI if cwi is None else cwi
    if not 1 <= ifsc <= 254:
        raise ValueError(f"IFSC {ifsc} out of range 1..254")
    if not 0 <= bwi <= 9 or not 0 <= cwi <= 15:
        raise ValueError(f"BWI {bwi} (0..9) or CWI {cwi} (0..15) out of range")
    return (
        None if ifsc == DEFAULT_IFSC else ifsc,
        None if (bwi, cwi) == (DEFAULT_BWI, DEFAULT_CWI) else bwi << 4 | cwi,
        0x01 if crc else None,
    )


def _announced(offered: list[int], t1_group: _Group, group2: _Group, t15: bool) -> list[int]:
    """The T announced by each TD, in order (group i+1 follows TDi; §8.2.3)."""
    announced = list(offered)
    if offered[0] == 1 and t1_group != _NO_GROUP:
        announced.insert(0, 1)  # T=1 bytes only count from group 3 on
    if t15:
        announced.append(15)
    if announced == [0] and group2 == _NO_GROUP:
        return []  # T=0 alone: no TD1 needed
    return announced


def _interface_rows(
    announced: list[int],
    *,
    group1: _Group,
    group2: _Group,
    t1_group: _Group,
    class_indicator: int | None,
) -> list[tuple[int | None, int | None, int | None, int | None]]:
    """(TAi, TBi, TCi, TDi) for each group: the global bytes, then per announced T."""
    rows: list[list[int | None]] = [[None, None, None, None] for _ in range(len(announced) + 1)]
    rows[0][:3] = group1
    if len(rows) > 1:
        rows[1][:3] = group2
    elif group2 != _NO_GROUP:
        raise ValueError("TA2 or TC2 given but nothing announced in TD1")
    for i, t in enumerate(announced):
        rows[i][3] = t
        group = rows[i + 1]
        if i >= 1 and t == 1 and t1_group != _NO_GROUP:
            group[:3] = t1_group
            t1_group = _NO_GROUP  # only the first T=1 group carries them
        elif t == 15:
            group[0] = class_indicator
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _historical_bytes(
    historical: bytes | None, extended_length: bool | None, max_channels: int | None
) -> bytes:
    """The historical bytes given, or category 80 with card capabilities (7816-4 §12.1.1)."""
    if historical is None:
        caps = CardCapabilities(
            extended_length=True if extended_length is None else extended_length,
            max_channels=4 if max_channels is None else max_channels,
        )
        return build_historical(capabilities=caps)
    if extended_length is not None or max_channels is not None:
        raise ValueError("give either historical bytes or extended_length/max_channels")
    return historical


def build_atr(
    protocols: Iterable[int] = (0, 1),
    *,
    fi: int = 372,
    di: int = 1,
    ta1: int | None = None,
    extra_guard_time: int = 0,
    wi: int | None = None,
    ta2: int | None = None,
    ifsc: int | None = None,
    bwi: int | None = None,
    cwi: int | None = None,
    crc: bool | None = None,
    class_indicator: int | None = None,
    historical: bytes | None = None,
    extended_length: bool | None = None,
    max_channels: int | None = None,
    inverse: bool = False,
) -> Atr:
    """Build a consistent ATR (ISO 7816-3 §8.2-8.3), writing only bytes that differ from defaults.

    Protocols are announced in ascending order of T. The T=1 bytes go in the
    group after a TD announcing T=1 at i >= 2 (a second TD for T=1 is added when
    T=1 comes first), then a TD for T=15 if `class_indicator` is given.

    Args:
        protocols: the offered T values (0..14).
        fi, di: transmission factors by value (Tables 7, 8); `ta1` overrides them.
        extra_guard_time: TC1.
        wi: T=0 waiting time integer (TC2), default 10.
        ta2: TA2, specific mode (raw byte).
        ifsc: T=1 IFSC (1..254), default 254.
        bwi, cwi: T=1 waiting time integers, defaults 4 and 13.
        crc: T=1 error detection by CRC instead of LRC.
        class_indicator: TAi for T=15 (clock stop and voltage classes).
        historical: the historical bytes as they are; when None, category 80
            bytes carrying card capabilities built from `extended_length`
            (default True) and `max_channels` (default 4).
        inverse: TS 3F instead of 3B.

    Raises:
        ValueError: inconsistent or out-of-range parameters, or an ATR over 33 bytes.
    """
    offered = _offered(protocols, t1_params=(ifsc, bwi, cwi, crc), wi=wi)
    if ta1 is None:
        ta1 = _fi_index(fi) << 4 | _di_index(di)
    for name, v in (("ta1", ta1), ("extra_guard_time", extra_guard_time), ("wi", wi),
                    ("ta2", ta2), ("class_indicator", class_indicator)):  # fmt: skip
        _check_byte(name, v)
    if wi == 0:
        raise ValueError("WI 0 is reserved")
    t1_group = _t1_group(ifsc, bwi, cwi, crc) if 1 in offered else _NO_GROUP
    group2 = (ta2, None, None if wi is None or wi == DEFAULT_WI else wi)
    announced = _announced(offered, t1_group, group2, class_indicator is not None)
    rows = _interface_rows(
        announced,
        group1=(None if ta1 == DEFAULT_TA1 else ta1, None, extra_guard_time or None),
        group2=group2,
        t1_group=t1_group,
        class_indicator=class_indicator,
    )
    historical = _historical_bytes(historical, extended_length, max_channels)
    atr = Atr.from_levels(
        rows,
        historical,
        TS_INVERSE if inverse else TS_DIRECT,
    )
    if len(atr.to_bytes()) > MAX_ATR_LENGTH:
        raise ValueError(f"ATR of {len(atr.to_bytes())} bytes, at most {MAX_ATR_LENGTH}")
    return atr
