"""Biometric information templates (ISO/IEC 7816-11 §7 and Annex C): what a terminal reads
to know which reference to name in VERIFY and what data to send.

    7F61                  biometric information template group
      02 01 n             number of BITs
      7F60                one BIT per enrolled finger
        83 01 qualifier   reference data qualifier: the P2 of VERIFY
        A1                biometric header template (BHT)
          81 01 08        biometric type: fingerprint
          82 01 ss        biometric subtype: the finger
          87 02 0101      format owner: ISO/IEC JTC 1 SC 37
          88 02 tttt      format type: compact-size finger minutiae card format
          B1              biometric matching algorithm parameters
            81 02 min max minimum and maximum number of minutiae
            82 01 oo      minutiae order (00: any order)
            83 01 ff      feature handling indicator (00: minutiae only)

This is the layout NIST's MINEX II test reads from on-card comparison cards
(B1 inside the BHT, as ISO/IEC 19794-2:2005 §8.3 places the card's matching
parameters). The parser also accepts B1 as a direct child of 7F60, which some
profiles show, and ignores objects it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from card import tlv

TAG_BIT_GROUP = 0x7F61
TAG_BIT = 0x7F60
TAG_COUNT = 0x02
TAG_REFERENCE = 0x83
TAG_BHT = 0xA1
TAG_TYPE = 0x81
TAG_SUBTYPE = 0x82
TAG_FORMAT_OWNER = 0x87
TAG_FORMAT_TYPE = 0x88
TAG_ALGORITHM_PARAMETERS = 0xB1
TAG_MINUTIAE_RANGE = 0x81
TAG_MINUTIAE_ORDER = 0x82
TAG_FEATURE_HANDLING = 0x83

#: Biometric type "fingerprint" (ISO/IEC 7816-11 Table C.2, CBEFF).
BIOMETRIC_TYPE_FINGERPRINT = 0x08
#: CBEFF format owner ISO/IEC JTC 1 SC 37.
FORMAT_OWNER_SC37 = 0x0101
#: CBEFF format type announced for the compact-size card format (ISO/IEC 19794-2
#: §8.2). Our reading of SC 37's registrations; a terminal compares it with what it
#: can produce, so a profile that numbers it otherwise changes this one constant.
FORMAT_TYPE_COMPACT_CARD = 0x0006
#: Minutiae order "no ordering required" (ISO/IEC 19794-2:2005 §8.3.2).
ORDER_NONE = 0x00

# Biometric subtype for fingers (ISO/IEC 7816-11 Table C.3): b2-b1 the hand, b5-b3 the finger.
RIGHT, LEFT = 0x01, 0x02
THUMB, INDEX, MIDDLE, RING, LITTLE = 0x04, 0x08, 0x0C, 0x10, 0x14
_FINGER_NAMES = {THUMB: "thumb", INDEX: "index", MIDDLE: "middle", RING: "ring", LITTLE: "little"}


class BitError(ValueError):
    """Bytes that are not a well-formed biometric information template (group)."""


def finger_subtype(hand: int, finger: int) -> int:
    """The subtype byte of a finger: `finger_subtype(RIGHT, INDEX)` is 09."""
    if hand not in (RIGHT, LEFT) or finger not in _FINGER_NAMES:
        raise ValueError("hand must be RIGHT or LEFT and finger one of THUMB..LITTLE")
    return hand | finger


def describe_subtype(subtype: int) -> str:
    """'right index', 'left thumb', or 'unspecified'."""
    hand = {RIGHT: "right", LEFT: "left"}.get(subtype & 0x03)
    finger = _FINGER_NAMES.get(subtype & 0x1C)
    if hand is None and finger is None:
        return "unspecified"
    return " ".join(p for p in (hand, finger) if p)


@dataclass(frozen=True)
class BiometricInfo:
    """One BIT: a reference the card can verify, and what it expects to be sent."""

    reference: int
    subtype: int = 0
    min_minutiae: int = 12
    max_minutiae: int = 60
    order: int = ORDER_NONE
    feature_handling: int | None = 0x00
    biometric_type: int = BIOMETRIC_TYPE_FINGERPRINT
    format_owner: int = FORMAT_OWNER_SC37
    format_type: int = FORMAT_TYPE_COMPACT_CARD

    def __post_init__(self) -> None:
        for name in ("reference", "subtype", "min_minutiae", "max_minutiae", "order"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} must be one byte")
        if self.min_minutiae > self.max_minutiae:
            raise ValueError("min_minutiae exceeds max_minutiae")

    def to_bytes(self) -> bytes:
        params = [(TAG_MINUTIAE_RANGE, bytes((self.min_minutiae, self.max_minutiae)))]
        params.append((TAG_MINUTIAE_ORDER, bytes((self.order,))))
        if self.feature_handling is not None:
            params.append((TAG_FEATURE_HANDLING, bytes((self.feature_handling,))))
        bht = [
            (TAG_TYPE, bytes((self.biometric_type,))),
            (TAG_SUBTYPE, bytes((self.subtype,))),
            (TAG_FORMAT_OWNER, self.format_owner.to_bytes(2, "big")),
            (TAG_FORMAT_TYPE, self.format_type.to_bytes(2, "big")),
            (TAG_ALGORITHM_PARAMETERS, params),
        ]
        return tlv.build(TAG_BIT, [(TAG_REFERENCE, bytes((self.reference,))), (TAG_BHT, bht)])

    @classmethod
    def from_tlv(cls, obj: tlv.Tlv) -> BiometricInfo:
        """Read one 7F60 object.

        Raises:
            BitError: another tag, or a required object missing or of the wrong size.
        """
        if obj.tag != TAG_BIT:
            raise BitError(f"expected a BIT (7F60), found {obj.tag:02X}")
        try:
            ref = _byte(obj.find(TAG_REFERENCE), "reference data qualifier (83)")
            bht = obj.find(TAG_BHT)
            if bht is None:
                raise BitError("BIT without a biometric header template (A1)")
            params = bht.find(TAG_ALGORITHM_PARAMETERS) or obj.find(TAG_ALGORITHM_PARAMETERS)
            kw: dict[str, Any] = {}
            t = bht.find(TAG_TYPE)
            if t is not None:
                kw["biometric_type"] = _byte(t, "biometric type (81)")
            s = bht.find(TAG_SUBTYPE)
            if s is not None:
                kw["subtype"] = _byte(s, "biometric subtype (82)")
            kw["format_owner"] = _word(bht.find(TAG_FORMAT_OWNER), "format owner (87)")
            kw["format_type"] = _word(bht.find(TAG_FORMAT_TYPE), "format type (88)")
            if params is not None:
                rng = params.find(TAG_MINUTIAE_RANGE)
                if rng is None or len(rng.value) != 2:
                    raise BitError("B1 without a two-byte minutiae range (81)")
                kw["min_minutiae"], kw["max_minutiae"] = rng.value[0], rng.value[1]
                kw["order"] = _byte(params.find(TAG_MINUTIAE_ORDER), "minutiae order (82)")
                fh = params.find(TAG_FEATURE_HANDLING)
                kw["feature_handling"] = None if fh is None else _byte(fh, "feature handling (83)")
            return cls(ref, **kw)
        except tlv.TlvError as e:
            raise BitError(f"malformed BIT: {e}") from None
        except ValueError as e:
            if isinstance(e, BitError):
                raise
            raise BitError(str(e)) from None


def _byte(obj: tlv.Tlv | None, what: str) -> int:
    if obj is None or len(obj.value) != 1:
        raise BitError(f"{what} missing or not one byte")
    return obj.value[0]


def _word(obj: tlv.Tlv | None, what: str) -> int:
    if obj is None or len(obj.value) != 2:
        raise BitError(f"{what} missing or not two bytes")
    return int.from_bytes(obj.value, "big")


def build_group(infos: Iterable[BiometricInfo]) -> bytes:
    """The biometric information template group `7F61 { 02 n, 7F60 ... }`."""
    items = list(infos)
    if len(items) > 0xFF:
        raise ValueError("at most 255 BITs")
    return tlv.build(
        TAG_BIT_GROUP, [(TAG_COUNT, bytes((len(items),)))] + [i.to_bytes() for i in items]
    )


def parse_group(data: bytes) -> tuple[BiometricInfo, ...]:
    """The BITs of a 7F61 group, checked against its count.

    Raises:
        BitError: malformed, a count that disagrees with the BITs, or a bad BIT.
    """
    try:
        group = tlv.Tlv.from_bytes(data)
        if group.tag != TAG_BIT_GROUP:
            raise BitError(f"expected a BIT group (7F61), found {group.tag:02X}")
        children: Sequence[tlv.Tlv] = group.children
    except tlv.TlvError as e:
        raise BitError(f"malformed BIT group: {e}") from None
    count = next((c for c in children if c.tag == TAG_COUNT), None)
    bits = [BiometricInfo.from_tlv(c) for c in children if c.tag == TAG_BIT]
    if count is None or len(count.value) != 1:
        raise BitError("BIT group without a one-byte count (02)")
    if count.value[0] != len(bits):
        raise BitError(f"BIT group announces {count.value[0]} BITs and holds {len(bits)}")
    return tuple(bits)
