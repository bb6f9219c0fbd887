"""File control parameters: the FCP template '62' of ISO/IEC 7816-4 §7.4.3 (Table 12).

The data objects and their order follow ETSI TS 102 221 §11.1.1.3-11.1.1.4,
which fixes what ISO 7816-4 leaves open:

    82 file descriptor: descriptor byte, data coding byte 21, and for record
       EFs the record length (2 bytes) and the number of records (1 byte)
    83 file identifier            84 DF name (AID of an ADF)
    A5 proprietary information    8A life cycle status integer
    8C compact / AB expanded / 8B referenced security attributes
    C6 PIN status template (DFs)  80 file size / 81 total file size
    88 short EF identifier (b8-b4; an empty 88 says "no SFI")

`Fcp.to_bytes()` writes exactly this order; `Fcp.from_bytes()` accepts any
order and keeps data objects it does not know in `extra`, so an FCP produced by
this module parses and rebuilds byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from card import tlv

TAG_FCP = 0x62
TAG_FCI = 0x6F
TAG_FMD = 0x64

TAG_FILE_SIZE = 0x80
TAG_TOTAL_SIZE = 0x81
TAG_DESCRIPTOR = 0x82
TAG_FID = 0x83
TAG_DF_NAME = 0x84
TAG_SFI = 0x88
TAG_LCS = 0x8A
TAG_SEC_REFERENCED = 0x8B
TAG_SEC_COMPACT = 0x8C
TAG_PROPRIETARY = 0xA5
TAG_SEC_EXPANDED = 0xAB
TAG_PIN_STATUS = 0xC6

#: Data coding byte TS 102 221 §11.1.1.4.3 mandates: one-byte data units, ...
DATA_CODING_DEFAULT = 0x21


class Structure(IntEnum):
    """File descriptor byte without the shareable bit (ISO 7816-4 Table 14)."""

    NO_INFO = 0x00
    TRANSPARENT = 0x01
    LINEAR_FIXED = 0x02
    LINEAR_FIXED_TLV = 0x03
    LINEAR_VARIABLE = 0x04
    LINEAR_VARIABLE_TLV = 0x05
    CYCLIC = 0x06
    CYCLIC_TLV = 0x07
    DF = 0x38
    BER_TLV = 0x39


#: b7 of the file descriptor byte (ISO 7816-4 Table 14).
SHAREABLE = 0x40

RECORD_STRUCTURES = frozenset(
    {
        Structure.LINEAR_FIXED,
        Structure.LINEAR_FIXED_TLV,
        Structure.LINEAR_VARIABLE,
        Structure.LINEAR_VARIABLE_TLV,
        Structure.CYCLIC,
        Structure.CYCLIC_TLV,
    }
)


class LifeCycle(IntEnum):
    """Life cycle status integer, tag 8A (ISO 7816-4 §7.4.10, Table 15)."""

    NO_INFO = 0x00
    CREATION = 0x01
    INITIALISATION = 0x03
    DEACTIVATED = 0x04
    ACTIVATED = 0x05
    TERMINATED = 0x0C


def lcs_activated(lcs: int) -> bool:
    """Operational state, activated: 0000 01x1 (05 or 07)."""
    return lcs & 0xFD == 0x05


def lcs_deactivated(lcs: int) -> bool:
    """Operational state, deactivated: 0000 01x0 (04 or 06)."""
    return lcs & 0xFD == 0x04


def lcs_terminated(lcs: int) -> bool:
    """Termination state: 0000 11xx."""
    return lcs & 0xFC == 0x0C


# -- Security attributes (ISO 7816-4 §9.3 / TS 102 221 §11.1.1.4.7) ---------------


@dataclass(frozen=True)
class Compact:
    """'8C': an access mode byte and one security condition byte per bit b7..b1 set.

    `sc` holds the SC bytes in the order of the AM bits, b7 first.
    """

    am: int
    sc: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.am <= 0xFF or any(not 0 <= b <= 0xFF for b in self.sc):
            raise ValueError("AM and SC values are bytes")

    @property
    def tag(self) -> int:
        return TAG_SEC_COMPACT

    @property
    def value(self) -> bytes:
        return bytes((self.am, *self.sc))

    def to_bytes(self) -> bytes:
        return tlv.build(TAG_SEC_COMPACT, self.value)


@dataclass(frozen=True)
class Expanded:
    """'AB': the access rules as AM DO / SC DO pairs (parsed by card.fs.security)."""

    rules: bytes

    @property
    def tag(self) -> int:
        return TAG_SEC_EXPANDED

    @property
    def value(self) -> bytes:
        return self.rules

    def to_bytes(self) -> bytes:
        return tlv.build(TAG_SEC_EXPANDED, self.rules)


@dataclass(frozen=True)
class Referenced:
    """'8B': a reference to a record of EF.ARR (TS 102 221 §11.1.1.4.7.3).

    Three forms: the record number alone (EF.ARR implied, ISO 7816-4), the
    EF.ARR file identifier and one record number, or the file identifier and
    (SE number, record number) pairs (`se_records`, TS 102 221 §9.2.7).
    """

    arr_fid: int | None
    record: int | None = None
    se_records: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.arr_fid is None:
            if self.record is None or self.se_records:
                raise ValueError("without an EF.ARR identifier, give exactly one record number")
        elif (self.record is None) == (not self.se_records):
            raise ValueError("give either one record number or (SE, record) pairs")
        if self.record is not None and not 1 <= self.record <= 0xFE:
            raise ValueError(f"ARR record number {self.record} out of range 1..254")

    @property
    def tag(self) -> int:
        return TAG_SEC_REFERENCED

    @property
    def value(self) -> bytes:
        if self.arr_fid is None:
            assert self.record is not None  # __post_init__
            return bytes((self.record,))
        fid = self.arr_fid.to_bytes(2, "big")
        if self.record is not None:
            return fid + bytes((self.record,))
        return fid + b"".join(bytes(p) for p in self.se_records)

    def record_for(self, se: int = 0) -> int:
        """The ARR record that applies in security environment `se`.

        A single reference applies in every SE; with pairs, the pair for `se`,
        else the first pair.
        """
        if self.record is not None:
            return self.record
        for seid, rec in self.se_records:
            if seid == se:
                return rec
        return self.se_records[0][1]

    def to_bytes(self) -> bytes:
        return tlv.build(TAG_SEC_REFERENCED, self.value)


SecurityAttributes = Compact | Expanded | Referenced


def parse_security(tag: int, value: bytes) -> SecurityAttributes:
    """Decode the value of an 8C, AB or 8B data object.

    Raises:
        ValueError: another tag, or a value of an impossible length.
    """
    if tag == TAG_SEC_COMPACT:
        if not value:
            raise ValueError("empty compact security attributes")
        return Compact(value[0], tuple(value[1:]))
    if tag == TAG_SEC_EXPANDED:
        return Expanded(bytes(value))
    if tag == TAG_SEC_REFERENCED:
        n = len(value)
        if n == 1:
            return Referenced(None, value[0])
        if n == 3:
            return Referenced(int.from_bytes(value[:2], "big"), value[2])
        if n >= 4 and n % 2 == 0:
            pairs = tuple((value[i], value[i + 1]) for i in range(2, n, 2))
            return Referenced(int.from_bytes(value[:2], "big"), None, pairs)
        raise ValueError(f"referenced security attributes of {n} bytes")
    raise ValueError(f"tag {tag:02X} is not a security attribute")


def security_from_tlv(data: bytes) -> SecurityAttributes:
    """Decode one complete 8C / AB / 8B data object."""
    t = tlv.Tlv.from_bytes(data, allow_padding=False)
    return parse_security(t.tag, t.value)


# -- PIN status template (TS 102 221 §9.5.2) ----------------------------------------


@dataclass(frozen=True)
class PinRef:
    """One key reference of a PIN status template, and whether its PIN is enabled."""

    key_ref: int
    enabled: bool = True
    #: the usage qualifier DO '95' preceding the key reference (08: universal PIN use)
    usage_qualifier: int | None = None


@dataclass(frozen=True)
class PinStatus:
    """'C6': PS_DO '90' (one bit per key reference, b8 of byte 1 first), then the references."""

    refs: tuple[PinRef, ...] = ()

    def to_value(self) -> bytes:
        n = max(1, (len(self.refs) + 7) // 8)
        bits = 0
        for i, r in enumerate(self.refs):
            if r.enabled:
                bits |= 1 << (8 * n - 1 - i)
        out = [tlv.build(0x90, bits.to_bytes(n, "big"))]
        for r in self.refs:
            if r.usage_qualifier is not None:
                out.append(bytes((0x95, 1, r.usage_qualifier)))
            out.append(bytes((0x83, 1, r.key_ref)))
        return b"".join(out)

    @classmethod
    def from_value(cls, value: bytes) -> PinStatus:
        """Decode the value of a C6 template.

        Raises:
            ValueError: no PS_DO first, or a key reference that is not one byte.
        """
        dos = tlv.parse(value, allow_padding=False)
        if not dos or dos[0].tag != 0x90:
            raise ValueError("PIN status template without a leading PS_DO (90)")
        ps = int.from_bytes(dos[0].value, "big")
        nbits = 8 * len(dos[0].value)
        refs: list[PinRef] = []
        qualifier: int | None = None
        for d in dos[1:]:
            if d.tag == 0x95:
                if len(d.value) != 1:
                    raise ValueError("usage qualifier DO of more than one byte")
                qualifier = d.value[0]
            elif d.tag == 0x83:
                if len(d.value) != 1:
                    raise ValueError("key reference DO of more than one byte")
                i = len(refs)
                enabled = i < nbits and bool(ps >> (nbits - 1 - i) & 1)
                refs.append(PinRef(d.value[0], enabled, qualifier))
                qualifier = None
            else:
                raise ValueError(f"unexpected tag {d.tag:02X} in a PIN status template")
        return cls(tuple(refs))


# -- The FCP template -----------------------------------------------------------------


@dataclass(frozen=True)
class Fcp:
    """The file control parameters of one file.

    `sfi` is None when 88 is absent (TS 102 221: the SFI is then b5-b1 of the
    FID), 0 for an empty 88 (no SFI), else 1..30. `extra` keeps unknown data
    objects as (tag, value) pairs; they are written last.
    """

    descriptor: int
    data_coding: int | None = DATA_CODING_DEFAULT
    record_length: int | None = None
    record_count: int | None = None
    fid: int | None = None
    df_name: bytes | None = None
    proprietary: bytes | None = None
    lcs: int | None = None
    security: SecurityAttributes | None = None
    pin_status: PinStatus | None = None
    file_size: int | None = None
    total_size: int | None = None
    sfi: int | None = None
    extra: tuple[tuple[int, bytes], ...] = field(default=())

    @property
    def structure(self) -> int:
        """The structure bits: b3-b1, or b6-b1 for a DF (38) or a BER-TLV EF (39)."""
        d = self.descriptor
        return d & 0x3F if d & 0x38 == 0x38 else d & 0x07

    @property
    def is_df(self) -> bool:
        return self.descriptor & 0xBF == Structure.DF

    @property
    def shareable(self) -> bool:
        return bool(self.descriptor & SHAREABLE)

    def to_bytes(self) -> bytes:
        return build_fcp(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Fcp:
        return parse_fcp(data)


def _int_field(n: int, minimum: int) -> bytes:
    return n.to_bytes(max(minimum, (n.bit_length() + 7) // 8), "big")


def build_descriptor(
    descriptor: int,
    data_coding: int | None = DATA_CODING_DEFAULT,
    record_length: int | None = None,
    record_count: int | None = None,
) -> bytes:
    """The value of the file descriptor DO '82' (TS 102 221 §11.1.1.4.3)."""
    out = bytes((descriptor,))
    if data_coding is not None:
        out += bytes((data_coding,))
        if record_length is not None:
            out += record_length.to_bytes(2, "big")
            if record_count is not None:
                out += record_count.to_bytes(1 if record_count < 256 else 2, "big")
    return out


def fcp_parts(f: Fcp) -> tuple[bytes, bytes, bytes]:
    """The FCP data objects in three parts: before C6, C6, after C6 (no '62' header).

    The file system encodes the first and last once per file and only the PIN
    status template per SELECT.
    """
    parts = [
        tlv.build(
            TAG_DESCRIPTOR,
            build_descriptor(f.descriptor, f.data_coding, f.record_length, f.record_count),
        )
    ]
    if f.fid is not None:
        parts.append(tlv.build(TAG_FID, f.fid.to_bytes(2, "big")))
    if f.df_name is not None:
        parts.append(tlv.build(TAG_DF_NAME, f.df_name))
    if f.proprietary is not None:
        parts.append(tlv.build(TAG_PROPRIETARY, f.proprietary))
    if f.lcs is not None:
        parts.append(tlv.build(TAG_LCS, bytes((f.lcs,))))
    if f.security is not None:
        parts.append(f.security.to_bytes())
    c6 = b""
    if f.pin_status is not None:
        c6 = tlv.build(TAG_PIN_STATUS, f.pin_status.to_value())
    tail = []
    if f.file_size is not None:
        # TS 102 221 §11.1.1.4.1: at least two bytes
        tail.append(tlv.build(TAG_FILE_SIZE, _int_field(f.file_size, 2)))
    if f.total_size is not None:
        tail.append(tlv.build(TAG_TOTAL_SIZE, _int_field(f.total_size, 2)))
    if f.sfi is not None:
        tail.append(tlv.build(TAG_SFI, bytes((f.sfi << 3,)) if f.sfi else b""))
    for tag, value in f.extra:
        tail.append(tlv.build(tag, value))
    return b"".join(parts), c6, b"".join(tail)


def fcp_body(f: Fcp) -> bytes:
    """The data objects of an FCP, without the '62' tag and length."""
    return b"".join(fcp_parts(f))


def build_fcp(f: Fcp) -> bytes:
    """Encode an FCP template '62' (ISO 7816-4 §7.4.3, order of TS 102 221 §11.1.1.3)."""
    return tlv.build(TAG_FCP, fcp_body(f))


def parse_fcp(data: bytes) -> Fcp:
    """Decode an FCP template '62' (an FCI template '6F' is accepted too).

    Raises:
        ValueError: malformed TLV (card.tlv.TlvError), a missing file
            descriptor, or a data object of an impossible length.
    """
    outer = tlv.Tlv.from_bytes(data, allow_padding=False)
    if outer.tag not in (TAG_FCP, TAG_FCI):
        raise ValueError(f"expected an FCP template 62, found tag {outer.tag:02X}")
    kw: dict[str, Any] = {}
    extra: list[tuple[int, bytes]] = []
    for d in tlv.parse(outer.value, allow_padding=False):
        v = d.value
        tag = d.tag
        if tag == TAG_DESCRIPTOR:
            if not 1 <= len(v) <= 6:
                raise ValueError(f"file descriptor of {len(v)} bytes")
            kw["descriptor"] = v[0]
            kw["data_coding"] = v[1] if len(v) > 1 else None
            if len(v) == 3:  # ISO 7816-4 Table 12: a one-byte maximum record size
                kw["record_length"] = v[2]
            elif len(v) >= 4:
                kw["record_length"] = int.from_bytes(v[2:4], "big")
            if len(v) >= 5:
                kw["record_count"] = int.from_bytes(v[4:], "big")
        elif tag == TAG_FID:
            if len(v) != 2:
                raise ValueError(f"file identifier of {len(v)} bytes")
            kw["fid"] = int.from_bytes(v, "big")
        elif tag == TAG_DF_NAME:
            kw["df_name"] = bytes(v)
        elif tag == TAG_PROPRIETARY:
            kw["proprietary"] = bytes(v)
        elif tag == TAG_LCS:
            if len(v) != 1:
                raise ValueError(f"life cycle status of {len(v)} bytes")
            kw["lcs"] = v[0]
        elif tag in (TAG_SEC_COMPACT, TAG_SEC_EXPANDED, TAG_SEC_REFERENCED):
            kw["security"] = parse_security(tag, v)
        elif tag == TAG_PIN_STATUS:
            kw["pin_status"] = PinStatus.from_value(v)
        elif tag == TAG_FILE_SIZE:
            kw["file_size"] = int.from_bytes(v, "big")
        elif tag == TAG_TOTAL_SIZE:
            kw["total_size"] = int.from_bytes(v, "big")
        elif tag == TAG_SFI:
            if len(v) > 1:
                raise ValueError(f"short EF identifier of {len(v)} bytes")
            kw["sfi"] = v[0] >> 3 if v else 0
        else:
            extra.append((tag, bytes(v)))
    if "descriptor" not in kw:
        raise ValueError("FCP without a file descriptor (82)")
    if extra:
        kw["extra"] = tuple(extra)
    return Fcp(**kw)
