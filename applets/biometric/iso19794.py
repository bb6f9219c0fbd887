"""Compact-size finger minutiae: ISO/IEC 19794-2:2005 §8.2, in the ISO/IEC 7816-11 data object.

Each minutia is three bytes (ISO/IEC 19794-2:2005 §8.2, the card format "compact size"):

    byte 0  X, in units of 0.1 mm (0..255: 0 to 25.5 mm)
    byte 1  Y, in units of 0.1 mm
    byte 2  b8-b7 the minutia type (00 other, 01 ridge ending, 10 ridge bifurcation,
            11 reserved), b6-b1 the angle in units of 360/64 = 5.625 degrees

The origin is the upper left corner of the image, X grows to the right and Y
downwards; the angle is counted anticlockwise from the horizontal axis pointing
right (ISO/IEC 19794-2:2005 §6.4).

On the card the minutiae travel in the biometric data template of ISO/IEC
7816-11 §6.2, `7F2E { 81 <minutiae> }`, the form NIST's MINEX II on-card
comparison test sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from card import tlv

#: The biometric data template (ISO/IEC 7816-11 §6.2, Table 3).
TAG_BIOMETRIC_DATA_TEMPLATE = 0x7F2E
#: Finger minutiae data in the compact card format, inside 7F2E.
TAG_FINGER_MINUTIAE = 0x81

MINUTIA_SIZE = 3
UNIT_MM = 0.1  # one coordinate step
ANGLE_STEPS = 64  # one angle step is 360/64 degrees
ANGLE_STEP_DEG = 360.0 / ANGLE_STEPS
MAX_COORDINATE = 255


class MinutiaType(IntEnum):
    """The two type bits (ISO/IEC 19794-2:2005 §6.4.1); 11 is reserved."""

    OTHER = 0
    RIDGE_ENDING = 1
    BIFURCATION = 2


class MalformedBiometricData(ValueError):
    """The bytes are not a 7F2E { 81 ... } object, or not a whole number of minutiae."""


class MinutiaOutOfRange(ValueError):
    """A minutia whose fields are outside what the format allows (a reserved type)."""


@dataclass(frozen=True, slots=True)
class Minutia:
    """One compact-card minutia, in the format's own units."""

    x: int  # 0.1 mm
    y: int  # 0.1 mm
    kind: int  # MinutiaType value (0..2; 3 is reserved)
    angle: int  # 5.625 degree steps, 0..63

    def __post_init__(self) -> None:
        if not (0 <= self.x <= MAX_COORDINATE and 0 <= self.y <= MAX_COORDINATE):
            raise MinutiaOutOfRange(f"coordinates ({self.x}, {self.y}) outside 0..255")
        if not 0 <= self.angle < ANGLE_STEPS:
            raise MinutiaOutOfRange(f"angle {self.angle} outside 0..63")
        if not 0 <= self.kind <= 2:
            raise MinutiaOutOfRange(f"minutia type {self.kind} is reserved")

    @property
    def x_mm(self) -> float:
        return self.x * UNIT_MM

    @property
    def y_mm(self) -> float:
        return self.y * UNIT_MM

    @property
    def angle_deg(self) -> float:
        return self.angle * ANGLE_STEP_DEG

    def to_bytes(self) -> bytes:
        return bytes((self.x, self.y, (self.kind << 6) | self.angle))


def encode_minutiae(minutiae: Iterable[Minutia]) -> bytes:
    """The compact-card bytes of a minutiae set (three bytes each, in the given order)."""
    return b"".join(m.to_bytes() for m in minutiae)


def decode_minutiae(data: bytes) -> tuple[Minutia, ...]:
    """Minutiae from compact-card bytes.

    Raises:
        MalformedBiometricData: the length is not a multiple of three.
        MinutiaOutOfRange: a minutia has the reserved type 11.
    """
    if len(data) % MINUTIA_SIZE:
        raise MalformedBiometricData(f"{len(data)} bytes is not a whole number of minutiae")
    out = []
    for i in range(0, len(data), MINUTIA_SIZE):
        b = data[i + 2]
        out.append(Minutia(data[i], data[i + 1], b >> 6, b & 0x3F))
    return tuple(out)


def check_minutiae(data: bytes) -> int:
    """Validate compact-card bytes without building objects; returns the minutiae count.

    Raises:
        MalformedBiometricData: the length is not a multiple of three.
        MinutiaOutOfRange: a minutia has the reserved type 11.
    """
    if len(data) % MINUTIA_SIZE:
        raise MalformedBiometricData(f"{len(data)} bytes is not a whole number of minutiae")
    for i in range(2, len(data), MINUTIA_SIZE):
        if data[i] >> 6 == 3:
            raise MinutiaOutOfRange(f"minutia {i // MINUTIA_SIZE}: type 11 is reserved")
    return len(data) // MINUTIA_SIZE


def build_biometric_data(minutiae: Iterable[Minutia] | bytes) -> bytes:
    """The biometric data template `7F2E { 81 <minutiae> }` (ISO/IEC 7816-11 §6.2)."""
    raw = bytes(minutiae) if isinstance(minutiae, bytes | bytearray) else encode_minutiae(minutiae)
    return tlv.build(TAG_BIOMETRIC_DATA_TEMPLATE, [(TAG_FINGER_MINUTIAE, raw)])


def parse_biometric_data(data: bytes) -> bytes:
    """The compact-card minutiae bytes of exactly one `7F2E { 81 ... }` object.

    The template must hold one finger minutiae object and nothing else: a card
    that silently ignored extra objects would let a terminal believe it sent
    features (ridge counts, cores) that the matcher never used.

    Raises:
        MalformedBiometricData: not BER-TLV, another tag, 81 missing or repeated,
            extra objects or bytes, or a length that is not a multiple of three.
    """
    try:
        outer = tlv.Tlv.from_bytes(data, allow_padding=False)
        if outer.tag != TAG_BIOMETRIC_DATA_TEMPLATE:
            raise MalformedBiometricData(f"expected tag 7F2E, found {outer.tag:02X}")
        children = tlv.parse(outer.value, allow_padding=False)
    except tlv.TlvError as e:
        raise MalformedBiometricData(str(e)) from None
    if len(children) != 1 or children[0].tag != TAG_FINGER_MINUTIAE:
        raise MalformedBiometricData("7F2E must hold exactly one 81 (finger minutiae) object")
    raw = children[0].value
    if len(raw) % MINUTIA_SIZE:
        raise MalformedBiometricData(f"{len(raw)} bytes is not a whole number of minutiae")
    return raw
