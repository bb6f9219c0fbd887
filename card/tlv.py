"""BER-TLV data objects: ITU-T X.690 §8.1.2-8.1.3 as ISO/IEC 7816-4 §5.2 uses them.

A tag is an `int` whose big-endian bytes are the tag field exactly as it is
written (0x84, 0x5F2D, 0x7F2E, 0x9F7F, 0xBF2E, 0x9F8101), so any tag read can be
written back byte for byte. Lengths use the short form (00-7F) or the long
forms 81-84; building always writes the shortest form, parsing tolerates longer
ones (ISO 7816-4 §5.2.2.2 allows them) but refuses the indefinite form 80 and
85 and above.

ISO 7816-4 §5.2.2 lets '00' and 'FF' bytes stand before, between and after
data objects (erased or rewritten TLV data). With `allow_padding=True`, the
default, they are skipped wherever a tag could start, so in that mode a tag
never begins with 00 or FF. Pass `allow_padding=False` for plain X.690.

Errors in the bytes raise `TlvError` (a `ValueError`) whose `offset` is the
position of the field at fault: the first byte of the tag or of the length
field that is truncated, too long, indefinite or runs past the data. Offsets
are counted from the start of the buffer given to the function (for
`Tlv.children`, from the start of the parent's value).

SIMPLE-TLV (ISO 7816-4 §5.2.1) is covered by `build_simple` / `parse_simple`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

from card.errors import OffsetError

MAX_TAG_BYTES = 4  # ISO 7816-4 §5.2.2.1 uses up to three; X.690 allows more
MAX_LENGTH_BYTES = 4  # 84 xx xx xx xx; ISO 7816-4 §5.2.2.2 stops at 84
MAX_LENGTH = 0xFFFFFFFF

_BYTES_LIKE = (bytes, bytearray, memoryview)

# What `build` accepts as the value: raw bytes, or children (Tlv objects,
# already encoded TLVs, or (tag, value_or_children) pairs).
ValueOrChildren = bytes | bytearray | memoryview | Iterable[object]


class TlvError(OffsetError):
    """Malformed BER-TLV bytes. (`.message`, `.offset`)."""


class TagClass(IntEnum):
    """Bits b8-b7 of the first tag byte (X.690 §8.1.2.2, Table 1)."""

    UNIVERSAL = 0
    APPLICATION = 1
    CONTEXT = 2
    PRIVATE = 3


# -- Tags (X.690 §8.1.2) ---------------------------------------------------------


def _tag_size(tag: int) -> int:
    return ((tag.bit_length() + 7) >> 3) or 1


def _first_tag_byte(tag: int) -> int:
    return tag >> ((_tag_size(tag) - 1) << 3)


def tag_class(tag: int) -> TagClass:
    """The class of a tag: universal, application, context-specific or private."""
    return TagClass(_first_tag_byte(tag) >> 6)


def is_constructed(tag: int) -> bool:
    """Bit b6 of the first tag byte: the value is itself a series of data objects."""
    return bool(_first_tag_byte(tag) & 0x20)


def tag_number(tag: int) -> int:
    """The tag number: b5-b1 of a one-byte tag, else the subsequent bytes in base 128.

    X.690 §8.1.2.4.
    """
    raw = encode_tag(tag)
    if len(raw) == 1:
        return raw[0] & 0x1F
    n = 0
    for b in raw[1:]:
        n = (n << 7) | (b & 0x7F)
    return n


def encode_tag(tag: int) -> bytes:
    """The bytes of a tag field, checking that they form one well-delimited tag.

    Raises:
        ValueError: the int is negative, too long, or its bytes would not parse
            back as exactly this tag.
    """
    if tag < 0:
        raise ValueError(f"tag {tag} is negative")
    n = _tag_size(tag)
    if n > MAX_TAG_BYTES:
        raise ValueError(f"tag {tag:02X} is longer than {MAX_TAG_BYTES} bytes")
    raw = tag.to_bytes(n, "big")
    if n == 1:
        if raw[0] & 0x1F == 0x1F:
            raise ValueError(f"tag {tag:02X} announces subsequent tag bytes that are missing")
        return raw
    if raw[0] & 0x1F != 0x1F:
        raise ValueError(f"tag {tag:02X}: a multi-byte tag starts with b5-b1 = 11111")
    for b in raw[1:-1]:
        if not b & 0x80:
            raise ValueError(f"tag {tag:02X}: a subsequent byte other than the last lacks b8")
    if raw[-1] & 0x80:
        raise ValueError(f"tag {tag:02X}: its last byte has b8 set, so the tag goes on")
    return raw


def _tag_tail(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Read a multi-byte tag whose first byte at `start` has b5-b1 = 11111."""
    tag = data[start]
    p = start + 1
    while True:
        if p >= end:
            raise TlvError(f"truncated tag {data[start:p].hex().upper()}", start)
        b = data[p]
        tag = (tag << 8) | b
        p += 1
        if not b & 0x80:
            return tag, p
        if p - start >= MAX_TAG_BYTES:
            raise TlvError(f"tag longer than {MAX_TAG_BYTES} bytes", start)


def decode_tag(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Read the tag field at `offset`.

    Returns:
        (tag, offset of the byte after the tag).

    Raises:
        TlvError: no byte, a truncated multi-byte tag, or a tag over 4 bytes.
    """
    if offset >= len(data):
        raise TlvError("truncated tag: no tag byte", offset)
    tag = data[offset]
    if tag & 0x1F != 0x1F:
        return tag, offset + 1
    return _tag_tail(data, offset, len(data))


# -- Lengths (X.690 §8.1.3) ------------------------------------------------------


def encode_length(length: int) -> bytes:
    """The shortest length field for `length` (ISO 7816-4 §5.2.2.2).

    Raises:
        ValueError: negative, or above 2**32 - 1.
    """
    if 0 <= length < 0x80:
        return bytes((length,))
    if length < 0 or length > MAX_LENGTH:
        raise ValueError(f"length {length} out of range 0..{MAX_LENGTH}")
    k = (length.bit_length() + 7) >> 3
    return bytes((0x80 | k,)) + length.to_bytes(k, "big")


def _long_length(data: bytes, p: int, end: int) -> tuple[int, int]:
    """Read a length field at `p` whose first byte is 80 or more."""
    first = data[p]
    if first == 0x80:
        raise TlvError("indefinite length (80) is not allowed", p)
    k = first & 0x7F
    if k > MAX_LENGTH_BYTES:
        raise TlvError(f"length field {first:02X} announces {k} length bytes, at most 4", p)
    if p + 1 + k > end:
        raise TlvError(
            f"truncated length: {first:02X} announces {k} bytes, {end - p - 1} present", p
        )
    # Non-minimal forms (81 05, 82 00 10) are read as they are: §5.2.2.2 permits them.
    return int.from_bytes(data[p + 1 : p + 1 + k], "big"), p + 1 + k


def decode_length(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Read the length field at `offset`.

    Returns:
        (length, offset of the first value byte).

    Raises:
        TlvError: missing or truncated field, indefinite form, more than 4 length bytes.
    """
    if offset >= len(data):
        raise TlvError("truncated length: no length byte", offset)
    n = data[offset]
    if n < 0x80:
        return n, offset + 1
    return _long_length(data, offset, len(data))


# -- Data objects ----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Tlv:
    """One BER-TLV data object: a tag and its value bytes.

    `children` parses the value of a constructed object on first use and keeps
    the result; `parse_tree` fills it in eagerly.
    """

    tag: int
    value: bytes = b""

    def __post_init__(self) -> None:
        encode_tag(self.tag)
        if not isinstance(self.value, bytes):
            if not isinstance(self.value, _BYTES_LIKE):
                raise TypeError(f"Tlv value must be bytes, not {type(self.value).__name__}")
            object.__setattr__(self, "value", bytes(self.value))
        if len(self.value) > MAX_LENGTH:
            raise ValueError(f"value of {len(self.value)} bytes is too long")

    @classmethod
    def from_bytes(cls, data: bytes, *, allow_padding: bool = True) -> Tlv:
        """Parse bytes holding exactly one data object (and possibly padding).

        Raises:
            TlvError: malformed, empty, or followed by another data object.
        """
        data = bytes(data)
        tlv, end = parse_one(data, 0, allow_padding=allow_padding)
        _expect_end(data, end, allow_padding)
        return tlv

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    @property
    def tag_class(self) -> TagClass:
        return tag_class(self.tag)

    @cached_property
    def children(self) -> tuple[Tlv, ...]:
        """The data objects inside a constructed object (padding skipped).

        Raises:
            ValueError: the object is primitive.
            TlvError: the value is not a series of data objects; offsets are
                relative to the start of the value.
        """
        if not self.constructed:
            raise ValueError(f"tag {self.tag:02X} is primitive: it has no children")
        return tuple(_parse_range(self.value, 0, len(self.value), True, False))

    def find(self, tag: int, *, recursive: bool = False) -> Tlv | None:
        """The first child (or descendant) with this tag, or None."""
        for t in _walk(self.children, recursive):
            if t.tag == tag:
                return t
        return None

    def find_all(self, tag: int, *, recursive: bool = False) -> list[Tlv]:
        """All children (or descendants, in document order) with this tag."""
        return [t for t in _walk(self.children, recursive) if t.tag == tag]

    def to_bytes(self) -> bytes:
        return encode_tag(self.tag) + encode_length(len(self.value)) + self.value

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def __repr__(self) -> str:
        return f"Tlv(tag=0x{self.tag:02X}, value=bytes.fromhex('{self.value.hex()}'))"


def _new_tlv(tag: int, value: bytes) -> Tlv:
    # Parsed tags and values are valid by construction: skip __post_init__.
    t = object.__new__(Tlv)
    d = t.__dict__
    d["tag"] = tag
    d["value"] = value
    return t


def _parse_range(data: bytes, pos: int, end: int, padding: bool, tree: bool) -> list[Tlv]:
    """Parse data[pos:end] as a series of data objects, offsets absolute in `data`."""
    out: list[Tlv] = []
    while pos < end:
        first = data[pos]
        if padding and (first == 0x00 or first == 0xFF):
            pos += 1
            continue
        if first & 0x1F == 0x1F:
            tag, pos = _tag_tail(data, pos, end)
        else:
            tag = first
            pos += 1
        if pos >= end:
            raise TlvError(f"truncated length: nothing after tag {tag:02X}", pos)
        length_at = pos
        n = data[pos]
        if n < 0x80:
            pos += 1
        else:
            n, pos = _long_length(data, pos, end)
        vend = pos + n
        if vend > end:
            raise TlvError(
                f"tag {tag:02X}: length {n} runs past the data ({end - pos} byte(s) left)",
                length_at,
            )
        t = _new_tlv(tag, data[pos:vend])
        if tree and first & 0x20:
            t.__dict__["children"] = tuple(_parse_range(data, pos, vend, padding, True))
        out.append(t)
        pos = vend
    return out


def _skip_padding(data: bytes, pos: int, end: int) -> int:
    while pos < end and data[pos] in (0x00, 0xFF):
        pos += 1
    return pos


def _expect_end(data: bytes, pos: int, padding: bool) -> None:
    if padding:
        pos = _skip_padding(data, pos, len(data))
    if pos < len(data):
        raise TlvError(f"{len(data) - pos} unexpected bytes after the data object", pos)


def parse(data: bytes, *, allow_padding: bool = True) -> list[Tlv]:
    """Parse a series of data objects (top level only; see `parse_tree`).

    Raises:
        TlvError: malformed input.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    return _parse_range(data, 0, len(data), allow_padding, False)


def parse_tree(data: bytes, *, allow_padding: bool = True) -> list[Tlv]:
    """Parse a series of data objects and, recursively, every constructed value.

    Every `children` is filled in, and an error anywhere in the tree is raised
    at once with its offset counted from the start of `data`.

    Raises:
        TlvError: malformed input at any depth.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    return _parse_range(data, 0, len(data), allow_padding, True)


def parse_one(data: bytes, offset: int = 0, *, allow_padding: bool = True) -> tuple[Tlv, int]:
    """Parse the one data object at `offset` (after any padding).

    Returns:
        (the object, offset of the byte after it).

    Raises:
        TlvError: malformed input, or nothing but padding left.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data)
    pos = _skip_padding(data, offset, end) if allow_padding else offset
    if pos >= end:
        raise TlvError("no data object", pos)
    tag, length_at = decode_tag(data, pos)
    n, p = decode_length(data, length_at)
    if p + n > end:
        raise TlvError(
            f"tag {tag:02X}: length {n} runs past the data ({end - p} byte(s) left)", length_at
        )
    return _new_tlv(tag, data[p : p + n]), p + n


def unpack(tag: int, data: bytes, *, allow_padding: bool = True) -> bytes:
    """The value of `data` when it is exactly one data object with this tag.

    Raises:
        TlvError: malformed, another tag, or bytes left after the object.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    start = _skip_padding(data, 0, len(data)) if allow_padding else 0
    tlv, end = parse_one(data, start, allow_padding=False)
    if tlv.tag != tag:
        raise TlvError(f"expected tag {tag:02X}, found {tlv.tag:02X}", start)
    _expect_end(data, end, allow_padding)
    return tlv.value


def _walk(tlvs: Iterable[Tlv], recursive: bool) -> Iterator[Tlv]:
    for t in tlvs:
        yield t
        if recursive and t.constructed:
            yield from _walk(t.children, True)


def find(
    data: bytes, tag: int, *, recursive: bool = False, allow_padding: bool = True
) -> Tlv | None:
    """The first data object with this tag, at the top level or (recursive) at any depth.

    Raises:
        TlvError: malformed input (in a searched constructed value too).
    """
    for t in _walk(parse(data, allow_padding=allow_padding), recursive):
        if t.tag == tag:
            return t
    return None


def find_all(
    data: bytes, tag: int, *, recursive: bool = False, allow_padding: bool = True
) -> list[Tlv]:
    """Every data object with this tag, in document order (depth first when recursive)."""
    return [t for t in _walk(parse(data, allow_padding=allow_padding), recursive) if t.tag == tag]


def _value_of(value_or_children: ValueOrChildren) -> bytes:
    if isinstance(value_or_children, _BYTES_LIKE):
        return bytes(value_or_children)
    if isinstance(value_or_children, str):
        raise TypeError("a TLV value is bytes, not str (hex belongs at the edges)")
    parts = []
    for child in value_or_children:
        if isinstance(child, Tlv):
            parts.append(child.to_bytes())
        elif isinstance(child, _BYTES_LIKE):
            parts.append(bytes(child))  # an already encoded data object
        elif isinstance(child, tuple) and len(child) == 2:
            parts.append(build(child[0], child[1]))
        else:
            raise TypeError(f"cannot use {type(child).__name__} as a TLV child")
    return b"".join(parts)


def build(tag: int, value_or_children: ValueOrChildren = b"") -> bytes:
    """Encode one data object with the shortest length field.

    Args:
        tag: the tag as an int (0x9F7F).
        value_or_children: the value bytes, or an iterable of children, each a
            `Tlv`, encoded TLV bytes, or a `(tag, value_or_children)` pair.

    Raises:
        ValueError: an invalid tag or a value too long.
    """
    value = _value_of(value_or_children)
    return encode_tag(tag) + encode_length(len(value)) + value


# -- SIMPLE-TLV (ISO 7816-4 §5.2.1) -----------------------------------------------


def build_simple(tag: int, value: bytes) -> bytes:
    """One SIMPLE-TLV data object: tag 01-FE, length 00-FE or FF + two bytes."""
    if not 0x01 <= tag <= 0xFE:
        raise ValueError(f"SIMPLE-TLV tag {tag:#x} out of range 01..FE")
    n = len(value)
    if n < 0xFF:
        return bytes((tag, n)) + bytes(value)
    if n > 0xFFFF:
        raise ValueError(f"SIMPLE-TLV value of {n} bytes exceeds 65535")
    return bytes((tag, 0xFF)) + n.to_bytes(2, "big") + bytes(value)


def parse_simple(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a series of SIMPLE-TLV data objects into (tag, value) pairs.

    Raises:
        TlvError: tag 00 or FF, truncated length, or a value past the data.
    """
    out: list[tuple[int, bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        tag = data[pos]
        if tag in (0x00, 0xFF):
            raise TlvError(f"SIMPLE-TLV tag {tag:02X} is invalid", pos)
        p = pos + 1
        if p >= end:
            raise TlvError("truncated length: no length byte", p)
        n = data[p]
        if n == 0xFF:
            if p + 3 > end:
                raise TlvError("truncated length: FF announces two length bytes", p)
            n = (data[p + 1] << 8) | data[p + 2]
            v = p + 3
        else:
            v = p + 1
        if v + n > end:
            raise TlvError(f"tag {tag:02X}: length {n} runs past the data", p)
        out.append((tag, bytes(data[v : v + n])))
        pos = v + n
    return out
