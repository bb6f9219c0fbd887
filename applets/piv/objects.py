"""PIV data objects: their tags, who may read them, and a new card's first contents.

NIST SP 800-73-4 Part 1 §3 and Appendix A (Table 3 and the object tables): every
container is read with GET DATA and written with PUT DATA by its BER-TLV tag
(`5FC1xx`, or `7E` discovery, `7F61` BIT group template). An object is stored as
the whole TLV the client wrote (`53 {…}`, `7E {…}`, `7F61 {…}`), so a read gives
back exactly what was put.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from card import tlv

__all__ = [
    "PIV_AID",
    "PivObject",
    "OBJECTS",
    "object_for_tag",
    "fasc_n",
    "parse_fasc_n",
    "chuid",
    "ccc",
    "discovery",
    "application_property_template",
]

#: SP 800-73-4 Part 1 §2.2: RID A000000308, PIX 00001000 0100 (version 01 00).
PIV_AID = bytes.fromhex("A000000308000010000100")

TAG_DISCOVERY = 0x7E
TAG_BITGT = 0x7F61
TAG_CHUID = 0x5FC102
TAG_CCC = 0x5FC107
TAG_KEY_HISTORY = 0x5FC10C
TAG_PRINTED = 0x5FC109
TAG_SM_SIGNER = 0x5FC122
TAG_PAIRING_CODE = 0x5FC123


@dataclass(frozen=True)
class PivObject:
    """A PIV container: its tag, its name, whether reading it needs the PIN (or OCC)."""

    tag: int
    name: str
    pin_to_read: bool = False
    #: the outer tag of the stored value: 53, or the object's own tag (7E, 7F61)
    outer: int = 0x53


_FIXED = (
    PivObject(0x5FC107, "Card Capability Container"),
    PivObject(0x5FC102, "Card Holder Unique Identifier"),
    PivObject(0x5FC105, "X.509 Certificate for PIV Authentication"),
    PivObject(0x5FC103, "Cardholder Fingerprints", pin_to_read=True),
    PivObject(0x5FC106, "Security Object"),
    PivObject(0x5FC108, "Cardholder Facial Image", pin_to_read=True),
    PivObject(0x5FC101, "X.509 Certificate for Card Authentication"),
    PivObject(0x5FC10A, "X.509 Certificate for Digital Signature"),
    PivObject(0x5FC10B, "X.509 Certificate for Key Management"),
    PivObject(0x5FC109, "Printed Information", pin_to_read=True),
    PivObject(0x7E, "Discovery Object", outer=0x7E),
    PivObject(0x5FC10C, "Key History Object"),
    PivObject(0x5FC121, "Cardholder Iris Images", pin_to_read=True),
    PivObject(0x7F61, "Biometric Information Templates Group Template", outer=0x7F61),
    PivObject(0x5FC122, "Secure Messaging Certificate Signer"),
    PivObject(0x5FC123, "Pairing Code Reference Data Container", pin_to_read=True),
)
# Retired X.509 certificates 1-20 (Table 3, 5FC10D..5FC120), for keys 82..95.
_RETIRED = tuple(
    PivObject(0x5FC10D + i, f"Retired X.509 Certificate for Key Management {i + 1}")
    for i in range(20)
)

OBJECTS: dict[int, PivObject] = {o.tag: o for o in _FIXED + _RETIRED}

#: The certificate container of each key reference (SP 800-73-4 Part 1 Table 4b).
CERTIFICATE_OF_KEY: dict[int, int] = {
    0x9A: 0x5FC105,
    0x9C: 0x5FC10A,
    0x9D: 0x5FC10B,
    0x9E: 0x5FC101,
    **{0x82 + i: 0x5FC10D + i for i in range(20)},
}


def object_for_tag(tag_bytes: bytes) -> PivObject | None:
    """The container named by a tag list's value (`5C` of GET/PUT DATA), or None."""
    if not 1 <= len(tag_bytes) <= 3:
        return None
    return OBJECTS.get(int.from_bytes(tag_bytes, "big"))


# -- FASC-N (SP 800-73-4 Part 1 §3.1.2; TIG SCEPACS v2.3 §6.6) ------------------------

_SS, _FS, _ES = 0xB, 0xD, 0xF


def _five_bits(value: int) -> str:
    bits = [(value >> i) & 1 for i in range(4)]  # b1..b4, least significant first
    bits.append(1 - sum(bits) % 2)  # odd parity
    return "".join(str(b) for b in bits)


def fasc_n(
    agency: str = "9999",
    system: str = "9999",
    credential: str = "999999",
    series: str = "0",
    ici: str = "1",
    person: str = "0000000000",
    org_category: str = "3",
    org: str = "0000",
    association: str = "1",
) -> bytes:
    """The 25-byte FASC-N: 40 characters of 4 BCD bits and odd parity, SS … ES LRC.

    The defaults are the non-federal issuer's FASC-N (agency, system and credential
    all 9s), as a PIV-Interoperable card carries (SP 800-73-4 Part 1 §3.1.2).
    """
    fields = (agency, system, credential, series, ici)
    chars = [_SS]
    for f in fields:
        chars += [int(c) for c in f]
        chars.append(_FS)
    chars += [int(c) for c in person + org_category + org + association]
    chars.append(_ES)
    lrc = 0
    for c in chars:
        lrc ^= c
    chars.append(lrc)
    if len(chars) != 40:
        raise ValueError("a FASC-N field has the wrong number of digits")
    bits = "".join(_five_bits(c) for c in chars)
    return int(bits, 2).to_bytes(25, "big")


_FIELDS = ("agency", "system", "credential", "series", "ici")
_TAIL = (("person", 10), ("org_category", 1), ("org", 4), ("association", 1))


def parse_fasc_n(value: bytes) -> dict[str, str]:
    """The fields of a 25-byte FASC-N (the inverse of `fasc_n`).

    Raises:
        ValueError: not 25 bytes, a parity, separator or LRC error, or a non-digit.
    """
    if len(value) != 25:
        raise ValueError("a FASC-N is 25 bytes")
    bits = bin(int.from_bytes(value, "big"))[2:].zfill(200)
    chars = []
    for i in range(40):
        five = bits[5 * i : 5 * i + 5]
        if five.count("1") % 2 != 1:
            raise ValueError(f"parity error in character {i}")
        chars.append(sum(int(five[j]) << j for j in range(4)))
    lrc = 0
    for c in chars[:-1]:
        lrc ^= c
    if chars[-1] != lrc or chars[0] != _SS or chars[38] != _ES:
        raise ValueError("a FASC-N framing or LRC error")
    out: dict[str, str] = {}
    pos = 1
    for name, size in zip(_FIELDS, (4, 4, 6, 1, 1), strict=True):
        digits, sep = chars[pos : pos + size], chars[pos + size]
        if sep != _FS:
            raise ValueError(f"no field separator after {name}")
        out[name] = _digits(digits)
        pos += size + 1
    for name, size in _TAIL:
        out[name] = _digits(chars[pos : pos + size])
        pos += size
    return out


def _digits(chars: list[int]) -> str:
    if any(c > 9 for c in chars):
        raise ValueError("a FASC-N digit above 9")
    return "".join(str(c) for c in chars)


# -- first contents of a new card ---------------------------------------------------


def chuid(guid: bytes, expiry: bytes = b"20301231") -> bytes:
    """The CHUID container (Part 1 §3.1.2, Table 9): FASC-N, GUID, expiry, an empty signature.

    The issuer asymmetric signature (3E) is empty: an unsigned CHUID, as on a card
    that no issuer has personalised.
    """
    return tlv.build(
        0x53,
        [
            (0x30, fasc_n()),
            (0x34, guid),
            (0x35, expiry),
            (0x3E, b""),
            (0xFE, b""),
        ],
    )


def ccc(card_identifier: bytes) -> bytes:
    """The Card Capability Container (Part 1 §3.1.1, Table 8), for a PIV-only card."""
    return tlv.build(
        0x53,
        [
            (0xF0, bytes.fromhex("A000000116FF02") + card_identifier),
            (0xF1, b"\x21"),
            (0xF2, b"\x21"),
            (0xF3, b""),
            (0xF4, b"\x00"),
            (0xF5, b"\x10"),
            (0xF6, b""),
            (0xF7, b""),
            (0xFA, b""),
            (0xFB, b""),
            (0xFC, b""),
            (0xFD, b""),
            (0xFE, b""),
        ],
    )


#: PIN usage policy byte 1 (Part 1 §3.3.2): b7 the PIV Card Application PIN satisfies
#: the PIV access rules; b5 OCC satisfies them too; b4 the virtual contact interface is
#: implemented; b3 VCI needs no pairing code (not set here: it does).
POLICY_PIV_PIN = 0x40
POLICY_OCC = 0x10
POLICY_VCI = 0x08


def discovery(occ: bool = False, vci: bool = False) -> bytes:
    """The Discovery Object (Part 1 §3.3.2, Table 18): the AID and the PIN usage policy."""
    first = POLICY_PIV_PIN | (POLICY_OCC if occ else 0) | (POLICY_VCI if vci else 0)
    return tlv.build(0x7E, [(0x4F, PIV_AID), (0x5F2F, bytes((first, 0x00)))])


def certificate_object(cert_der: bytes) -> bytes:
    """A certificate container (Part 1 Table 15 and 39): 70 the certificate, 71 00 uncompressed."""
    return tlv.build(0x53, [(0x70, cert_der), (0x71, b"\x00"), (0xFE, b"")])


def pairing_code(code: bytes) -> bytes:
    """The Pairing Code Reference Data Container (Part 1 Table 40): 99 the code (8 digits)."""
    return tlv.build(0x53, [(0x99, code), (0xFE, b"")])


def pairing_code_value(container: bytes) -> bytes | None:
    """The code a pairing code container holds, or None."""
    try:
        outer = tlv.Tlv.from_bytes(container, allow_padding=False)
        inner = tlv.parse(outer.value, allow_padding=False)  # 53 is primitive: its value is TLVs
    except (tlv.TlvError, ValueError):
        return None
    return next((t.value for t in inner if t.tag == 0x99), None)


@functools.lru_cache(maxsize=16)
def application_property_template(algorithms: tuple[int, ...]) -> bytes:
    """The answer to SELECT (Part 2 §3.1.1, Table 3): PIX, tag allocation authority, algorithms.

    `AC` lists each cryptographic algorithm identifier (SP 800-78-4 Table 6-2) in an
    `80`, closed by an empty `06`. Built once for each list of algorithms (every
    SELECT answers it).
    """
    algs: list[tuple[int, bytes]] = [(0x80, bytes((a,))) for a in algorithms]
    algs.append((0x06, b""))
    return tlv.build(
        0x61,
        [
            (0x4F, PIV_AID[5:]),
            (0x79, [(0x4F, PIV_AID[:5])]),
            (0x50, b"cardemu PIV"),
            (0xAC, algs),
        ],
    )
