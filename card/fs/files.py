"""Files of the ISO/IEC 7816-4 file system (§7.1): MF, DF, ADF, transparent and record EFs.

A file lives in the store as one immutable tuple, its *metadata* (`meta_tuple`),
plus, for an EF, one content value: `bytes` for a transparent EF, a tuple of
`bytes` records for a record EF (record 1 first; for a cyclic EF record 1 is
the newest). `FileInfo` is the decoded, read-only view of a metadata tuple; the
file system memoizes it per stored tuple, never per file, so a write or a
rollback of the metadata can never leave a stale view behind.

A file's *handle* is its path of FIDs from the MF in hex ("3F00/7F10/6F3A");
an ADF's path starts with "ADF." and its DF name ("ADF.A0000000871002/6F07").
"""

from __future__ import annotations

from typing import Any

from card.fs.fcp import (
    RECORD_STRUCTURES,
    SHAREABLE,
    TAG_FCI,
    TAG_FCP,
    TAG_FMD,
    Fcp,
    PinRef,
    PinStatus,
    Referenced,
    Structure,
    fcp_parts,
    security_from_tlv,
)
from card.fs.security import UNRESTRICTED, AccessRules, parse_compact, parse_expanded
from card.tlv import build, encode_length

MF_FID = 0x3F00
MF_HANDLE = "3F00"
ADF_PREFIX = "ADF."
#: TS 102 221 §8.2: 7FFF is the current ADF; 3FFF and FFFF are reserved (ISO 7816-4 §7.1.1).
CURRENT_ADF_FID = 0x7FFF
RESERVED_FIDS = frozenset({0x3F00, 0x3FFF, 0x7FFF, 0xFFFF})

META_VERSION = 1

# Positions in the metadata tuple.
M_VERSION = 0
M_HANDLE = 1
M_PARENT = 2
M_FDB = 3
M_FID = 4
M_SFI = 5
M_NAME = 6
M_LCS = 7
M_SIZE = 8
M_RECLEN = 9
M_NREC = 10
M_SECURITY = 11
M_FLAGS = 12
M_PINS = 13
M_PROPRIETARY = 14
M_TOTAL = 15
META_LEN = 16

#: flags: INCREASE is allowed on this cyclic EF (GSM 11.11 §9.3 "increase" attribute).
FLAG_INCREASE = 0x01
#: flags: readable and updatable while deactivated (TS 102 222 §6.3, tag C0 b7).
FLAG_USABLE_DEACTIVATED = 0x02

Meta = tuple[Any, ...]


def child_handle(parent: str, fid: int) -> str:
    return f"{parent}/{fid:04X}"


def adf_handle(name: bytes) -> str:
    return ADF_PREFIX + name.hex().upper()


def meta_tuple(
    *,
    handle: str,
    parent: str | None,
    fdb: int,
    fid: int | None,
    sfi: int = 0,
    name: bytes | None = None,
    lcs: int = 0x05,
    size: int = 0,
    record_length: int = 0,
    records: int = 0,
    security: bytes | None = None,
    flags: int = 0,
    pins: tuple[tuple[int, int | None], ...] = (),
    proprietary: bytes | None = None,
    total_size: int | None = None,
) -> Meta:
    """The stored metadata of one file (validated by building its `FileInfo`)."""
    meta = (
        META_VERSION,
        handle,
        parent,
        fdb,
        fid,
        sfi,
        name,
        lcs,
        size,
        record_length,
        records,
        security,
        flags,
        pins,
        proprietary,
        total_size,
    )
    FileInfo(meta)
    return meta


class FileInfo:
    """Read-only view of one file's metadata tuple, with its FCP and access rules."""

    __slots__ = (
        "meta",
        "handle",
        "parent",
        "fdb",
        "fid",
        "sfi",
        "name",
        "lcs",
        "size",
        "record_length",
        "records",
        "security",
        "flags",
        "pins",
        "proprietary",
        "total_size",
        "structure",
        "is_df",
        "is_adf",
        "is_record",
        "is_cyclic",
        "is_transparent",
        "is_bertlv",
        "rules",
        "reference",
        "free_ops",
        "_fcp_head",
        "_fcp_tail",
        "_fcp_cache",
    )

    def __init__(self, meta: Meta) -> None:
        if len(meta) != META_LEN or meta[M_VERSION] != META_VERSION:
            raise ValueError(f"unknown file metadata layout: {meta!r}")
        self.meta = meta
        self.handle: str = meta[M_HANDLE]
        self.parent: str | None = meta[M_PARENT]
        self.fdb: int = meta[M_FDB]
        self.fid: int | None = meta[M_FID]
        self.sfi: int = meta[M_SFI]
        self.name: bytes | None = meta[M_NAME]
        self.lcs: int = meta[M_LCS]
        self.size: int = meta[M_SIZE]
        self.record_length: int = meta[M_RECLEN]
        self.records: int = meta[M_NREC]
        self.security: bytes | None = meta[M_SECURITY]
        self.flags: int = meta[M_FLAGS]
        self.pins: tuple[tuple[int, int | None], ...] = meta[M_PINS]
        self.proprietary: bytes | None = meta[M_PROPRIETARY]
        self.total_size: int | None = meta[M_TOTAL]
        d = self.fdb
        self.structure = d & 0x3F if d & 0x38 == 0x38 else d & 0x07
        self.is_df = self.structure == Structure.DF
        self.is_adf = self.handle.startswith(ADF_PREFIX) and self.parent == MF_HANDLE and self.is_df
        self.is_record = not self.is_df and self.structure in RECORD_STRUCTURES
        self.is_cyclic = self.structure in (Structure.CYCLIC, Structure.CYCLIC_TLV)
        self.is_transparent = self.structure == Structure.TRANSPARENT
        self.is_bertlv = self.structure == Structure.BER_TLV
        if not self.is_df and not self.is_record and not self.is_transparent and not self.is_bertlv:
            raise ValueError(f"unsupported file descriptor byte {d:02X}")
        if self.sfi and not 1 <= self.sfi <= 30:
            raise ValueError(f"SFI {self.sfi} out of range 1..30")
        if self.is_record and (not 1 <= self.record_length <= 255 or not 1 <= self.records <= 254):
            raise ValueError("a record EF needs 1..255-byte records and 1..254 records")
        # Access rules: static ones are decoded once; an EF.ARR reference is
        # resolved at each access because the ARR record can change.
        self.reference: Referenced | None = None
        if self.security is None:
            self.rules: AccessRules | None = UNRESTRICTED
        else:
            sec = security_from_tlv(self.security)
            if isinstance(sec, Referenced):
                self.reference = sec
                self.rules = None
            else:
                self.rules = (
                    parse_compact(sec.value) if sec.tag == 0x8C else parse_expanded(sec.value)
                )
        free = 0
        if self.rules is not None:
            for bit, alts in self.rules.by_bit.items():
                if frozenset() in alts:
                    free |= bit
        self.free_ops = free
        self._fcp_head, self._fcp_tail = self._fcp_parts()
        self._fcp_cache: dict[object, bytes] = {}

    @property
    def shareable(self) -> bool:
        return bool(self.fdb & SHAREABLE)

    @property
    def increase_allowed(self) -> bool:
        return bool(self.flags & FLAG_INCREASE)

    def to_fcp(self, pin_enabled: tuple[bool, ...] | None = None) -> Fcp:
        """The FCP of this file as a dataclass (PINs shown enabled unless told)."""
        sec = None if self.security is None else security_from_tlv(self.security)
        pin_status = None
        if self.is_df and self.pins:
            en = pin_enabled or (True,) * len(self.pins)
            pin_status = PinStatus(
                tuple(PinRef(r, e, q) for (r, q), e in zip(self.pins, en, strict=False))
            )
        return Fcp(
            descriptor=self.fdb,
            record_length=self.record_length if self.is_record else None,
            record_count=self.records if self.is_record else None,
            fid=self.fid,
            df_name=self.name,
            proprietary=self.proprietary,
            lcs=self.lcs,
            security=sec,
            pin_status=pin_status,
            file_size=None if self.is_df else self.size,
            total_size=self.total_size,
            sfi=None if self.is_df else self.sfi,
        )

    def _fcp_parts(self) -> tuple[bytes, bytes]:
        head, _, tail = fcp_parts(self.to_fcp())
        return head, tail

    def fcp_body(self, pin_enabled: tuple[bool, ...] = ()) -> bytes:
        """The FCP data objects (no 62 tag), the PIN status template showing `pin_enabled`."""
        if not self.pins:
            return self._fcp_head + self._fcp_tail
        body = self._fcp_cache.get(pin_enabled)
        if body is None:
            en = pin_enabled or (True,) * len(self.pins)
            ps = PinStatus(tuple(PinRef(r, e, q) for (r, q), e in zip(self.pins, en, strict=False)))
            c6 = build(0xC6, ps.to_value())
            body = self._fcp_cache[pin_enabled] = self._fcp_head + c6 + self._fcp_tail
        return body

    def fcp(self, pin_enabled: tuple[bool, ...] = ()) -> bytes:
        """The FCP template '62' (ISO 7816-4 §7.4.3; TS 102 221 §11.1.1.3)."""
        key = (TAG_FCP, pin_enabled)
        out = self._fcp_cache.get(key)
        if out is None:
            body = self.fcp_body(pin_enabled)
            out = self._fcp_cache[key] = bytes((TAG_FCP,)) + encode_length(len(body)) + body
        return out

    def fci(self, pin_enabled: tuple[bool, ...] = ()) -> bytes:
        """The FCI template '6F': here the FCP data objects (ISO 7816-4 §7.4.1)."""
        key = (TAG_FCI, pin_enabled)
        out = self._fcp_cache.get(key)
        if out is None:
            body = self.fcp_body(pin_enabled)
            out = self._fcp_cache[key] = bytes((TAG_FCI,)) + encode_length(len(body)) + body
        return out

    def fmd(self) -> bytes:
        """The FMD template '64': the DF name of a named DF, else empty."""
        return build(TAG_FMD, build(0x84, self.name) if self.name else b"")

    def __repr__(self) -> str:
        return f"<FileInfo {self.handle} fdb={self.fdb:02X}>"
