"""Small SGP.22 value codings shared by the eUICC and the host (GSMA SGP.22 v2.x Annex H).

- ICCIDs: `Iccid` (tag 5A) is coded as in EF.ICCID (ETSI TS 102 221 §13.2:
  BCD with swapped nibbles, padded with F to 10 bytes).
- EIDs: 32 decimal digits as 16 BCD bytes, in reading order.
- NotificationEvent / PprIds / RspCapability...: BIT STRINGs with named bits,
  in asn1tools' (bytes, number of bits) form, DER-minimal (trailing zero bits
  dropped, X.690 §11.2.2).
- Raw sub-fields of a received structure: SGP.22 signs DER sub-fields
  (serverSigned1, smdpSigned2, ...) and a verifier must check the bytes as
  received, so `raw_fields` returns the children of a TLV as they were sent.
"""

from __future__ import annotations

from enum import IntEnum

from card.tlv import TlvError, decode_length, decode_tag

__all__ = [
    "NotificationEvent",
    "bits_from_names",
    "bits_to_set",
    "eid_from_bytes",
    "eid_to_bytes",
    "iccid_from_bytes",
    "iccid_to_bytes",
    "raw_fields",
    "raw_tlv",
]


class NotificationEvent(IntEnum):
    """Bits of NotificationEvent (SGP.22 Annex H, §5.7.10)."""

    INSTALL = 0
    ENABLE = 1
    DISABLE = 2
    DELETE = 3


def iccid_to_bytes(iccid: str) -> bytes:
    """An ICCID string as the 10 bytes of `Iccid` (swapped BCD, F padding)."""
    if not (iccid.isdigit() and iccid.isascii() and 1 <= len(iccid) <= 20):
        raise ValueError(f"an ICCID is 1 to 20 digits, not {iccid!r}")
    digits = (iccid + "F" * 20)[:20]
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, 20, 2))


def iccid_from_bytes(data: bytes) -> str:
    """The digits of an `Iccid` (swapped BCD), F padding removed.

    Raises:
        ValueError: a nibble that is neither a digit nor trailing padding.
    """
    s = "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in bytes(data)).rstrip("F")
    if not s.isdigit():
        raise ValueError(f"ICCID {bytes(data).hex()} is not BCD")
    return s


def eid_to_bytes(eid: str) -> bytes:
    if len(eid) != 32 or not eid.isdigit():
        raise ValueError("an EID has 32 digits")
    return bytes.fromhex(eid)


def eid_from_bytes(data: bytes) -> str:
    return bytes(data).hex()


def bits_from_names(*positions: int) -> tuple[bytes, int]:
    """A named-bit BIT STRING with these bit positions set, DER-minimal."""
    if not positions:
        return b"", 0
    n = max(positions) + 1
    value = 0
    for p in positions:
        value |= 1 << (8 * ((n + 7) // 8) - 1 - p)
    return value.to_bytes((n + 7) // 8, "big"), n


def bits_to_set(value: tuple[bytes, int]) -> frozenset[int]:
    """The positions set in an asn1tools BIT STRING value."""
    data, n = value
    return frozenset(i for i in range(min(n, 8 * len(data))) if data[i // 8] >> (7 - i % 8) & 1)


def raw_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """The TLV at `offset` as received: (tag, its whole bytes, offset after it).

    Raises:
        ValueError: malformed or truncated.
    """
    try:
        tag, p = decode_tag(data, offset)
        n, p = decode_length(data, p)
    except TlvError as e:
        raise ValueError(str(e)) from None
    if p + n > len(data):
        raise ValueError(f"tag {tag:X}: value runs past the data")
    return tag, bytes(data[offset : p + n]), p + n


def raw_fields(data: bytes) -> list[tuple[int, bytes]]:
    """The children of the single TLV `data`, each as (tag, the bytes received).

    Raises:
        ValueError: not exactly one well-formed TLV of well-formed children.
    """
    data = bytes(data)
    try:
        _, p = decode_tag(data, 0)
        n, p = decode_length(data, p)
    except TlvError as e:
        raise ValueError(str(e)) from None
    if p + n != len(data):
        raise ValueError("bytes before or after the TLV")
    out = []
    while p < len(data):
        tag, raw, p = raw_tlv(data, p)
        out.append((tag, raw))
    return out
