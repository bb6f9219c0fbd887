"""Constructs shared by the spec modules: BER-TLV with named tags, file identifiers, paths.

`BerTlv(tags)` is a construct for a series of BER-TLV data objects (ISO/IEC
7816-4 §6.3, X.690 §8.1) on top of `card.tlv`. It parses into a list of
entries, each a dict:

    {"tag": HexInt, "name": str,            # name only when the table knows the tag
     "value": bytes, "decoded": Any}        # primitive ("decoded" when the tag has a decoder)
    {"tag": HexInt, "name": str, "children": [entries]}   # constructed

and builds from the same shape ("name" and "decoded" are derived and ignored
when building; a constructed entry may carry "value" instead of "children").
A constructed object whose value is not BER-TLV keeps its "value" and gets an
"error". The tables (`TagInfo` per tag) say what a tag is called, how to read
its value, which tags live inside a template, and how long generated values
are. Padding bytes 00/FF (ISO 7816-4 §5.2.2 of the 2005 edition) are refused:
a spec decoder reports them rather than silently dropping bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import construct as c

from apdu_specs.generate import Draw
from apdu_specs.values import HexInt
from card import tlv

MAX_DEPTH = 8


@dataclass(frozen=True)
class TagInfo:
    """What a spec knows about one BER-TLV tag.

    Attributes:
        name: what the data object is called.
        decode: a readable form of a primitive value (derived, never built from);
            it must accept any bytes.
        children: the tags inside a constructed object (None: unnamed children).
            A table given here also makes a tag with the primitive bit a template
            (ETSI's PIN status template C6 is coded so).
        size: length range of generated primitive values.
        gen: a generator for primitive values (overrides `size`).
    """

    name: str
    decode: Callable[[bytes], Any] | None = None
    children: Mapping[int, TagInfo] | None = None
    size: tuple[int, int] = (0, 8)
    gen: Callable[[Draw], bytes] | None = None


TagTable = Mapping[int, TagInfo]

# Primitive context-specific tags to fill templates the tables leave open.
_FILLER_TAGS = tuple(range(0x80, 0x9F))


def parse_tlvs(data: bytes, tags: TagTable, depth: int = 0) -> list[dict[str, Any]]:
    """Parse a series of data objects into entries, naming tags from `tags`.

    Raises:
        card.tlv.TlvError: the top level is not BER-TLV.
    """
    out: list[dict[str, Any]] = []
    for t in tlv.parse(data, allow_padding=False):
        tag = t.tag
        info = tags.get(tag)
        entry: dict[str, Any] = {"tag": HexInt(tag, 2 * (((tag.bit_length() + 7) >> 3) or 1))}
        if info is not None:
            entry["name"] = info.name
        if (tlv.is_constructed(tag) or (info is not None and info.children is not None)) and (
            depth < MAX_DEPTH
        ):
            inner = info.children if info is not None and info.children is not None else {}
            try:
                entry["children"] = parse_tlvs(t.value, inner, depth + 1)
            except tlv.TlvError as e:
                entry["value"] = t.value
                entry["error"] = f"constructed value is not BER-TLV: {e}"
        else:
            entry["value"] = t.value
            if info is not None and info.decode is not None:
                try:
                    entry["decoded"] = info.decode(t.value)
                except (ValueError, IndexError, KeyError) as e:
                    entry["error"] = f"cannot read the value: {e}"
        out.append(entry)
    return out


def build_tlvs(entries: Iterable[Any]) -> bytes:
    """Encode entries (dicts as `parse_tlvs` returns, or (tag, value) pairs)."""
    parts: list[bytes] = []
    for e in entries:
        if isinstance(e, tuple):
            tag, value = e
            parts.append(tlv.build(int(tag), value))
            continue
        tag = int(e["tag"])
        if "children" in e:
            value = build_tlvs(e["children"])
        else:
            value = bytes(e.get("value", b""))
        parts.append(tlv.build(tag, value))
    return b"".join(parts)


def find_entry(entries: Iterable[dict[str, Any]], tag: int) -> dict[str, Any] | None:
    """The first entry with `tag`, searching templates depth first."""
    for e in entries:
        if int(e["tag"]) == tag:
            return e
        found = find_entry(e.get("children", ()), tag)
        if found is not None:
            return found
    return None


def tlv_summary(entries: Iterable[dict[str, Any]], limit: int = 16) -> str:
    """A one-line reading: names (or tags) with short values, templates in brackets."""
    parts = []
    for e in entries:
        label = e.get("name") or f"{e['tag']}"
        if "children" in e:
            parts.append(f"{label} [{tlv_summary(e['children'], limit)}]")
        elif "decoded" in e and isinstance(e["decoded"], str | int):
            parts.append(f"{label} {e['decoded']}")
        else:
            v = e.get("value", b"")
            text = v.hex().upper() if len(v) <= limit else f"{len(v)} bytes"
            parts.append(f"{label} {text}" if v else label)
    return ", ".join(parts)


class BerTlv(c.Construct):
    """A series of BER-TLV data objects, tags named from a table.

    Args:
        tags: names, decoders and child tables, by tag.
        required: tags that must be present (parsing fails without them);
            generated values start with them.
        max_items: how many more data objects generated values hold at most.
        open: whether generated values may also use tags the table leaves out.
    """

    def __init__(
        self,
        tags: TagTable | None = None,
        *,
        required: tuple[int, ...] = (),
        max_items: int = 4,
        open: bool = False,
    ) -> None:
        super().__init__()
        self.tags: TagTable = tags or {}
        self.required = required
        self.max_items = max_items
        self.open = open

    def _parse(self, stream: Any, context: Any, path: str) -> list[dict[str, Any]]:
        data = c.stream_read_entire(stream, path)
        try:
            entries = parse_tlvs(data, self.tags)
        except tlv.TlvError as e:
            raise c.ConstructError(f"not BER-TLV: {e}", path=path) from None
        present = {int(e["tag"]) for e in entries}
        missing = [f"{t:02X}" for t in self.required if t not in present]
        if missing:
            raise c.ConstructError(f"data object(s) {', '.join(missing)} missing", path=path)
        return entries

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        data = build_tlvs(obj)
        c.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise c.SizeofError("BER-TLV has no fixed size", path=path)

    def generate(
        self, draw: Draw, size: tuple[int, int] | None = None, depth: int = 0
    ) -> list[dict[str, Any]]:
        pool = sorted(self.tags)
        if self.open or not pool:
            pool = pool + [t for t in _FILLER_TAGS if t not in self.tags]
        lo = 1 if size is not None and size[0] > 0 and not self.required else 0
        count = draw.integer(lo, max(lo, self.max_items))
        chosen = list(self.required) + [draw.choice(pool) for _ in range(count)]
        out: list[dict[str, Any]] = []
        for tag in chosen:
            info = self.tags.get(tag)
            if tlv.is_constructed(tag) or (info is not None and info.children is not None):
                inner = BerTlv(
                    info.children if info is not None and info.children is not None else {},
                    max_items=2 if depth < 1 else 0,
                )
                out.append({"tag": tag, "children": inner.generate(draw, None, depth + 1)})
            elif info is not None and info.gen is not None:
                out.append({"tag": tag, "value": info.gen(draw)})
            else:
                lo_v, hi_v = info.size if info is not None else (0, 8)
                out.append({"tag": tag, "value": draw.binary(lo_v, hi_v)})
        return out


# -- Small fixed-layout fields ------------------------------------------------------

#: A file identifier (ISO/IEC 7816-4 §7.3.2 of the 2020 edition; 2005 §5.3.1.1).
FID = c.Bytes(2)
#: A path: file identifiers from the MF or from the current DF, without the start.
PATH = c.GreedyRange(c.Bytes(2))


def int_be(b: bytes) -> int:
    """An unsigned big-endian integer (a counter, a try count)."""
    return int.from_bytes(b, "big")


def ascii_text(b: bytes) -> str:
    """A printable identifier (an identity, an IMEI...); a byte outside ASCII reads as U+FFFD."""
    return b.decode("ascii", "replace")


# -- Secure messaging data objects (ISO/IEC 7816-4:2013 clause 10, 2005 clause 6) -----

SM_TAGS: dict[int, TagInfo] = {
    0x80: TagInfo("plain value"),
    0x81: TagInfo("plain value"),
    0x84: TagInfo("cryptogram"),
    0x85: TagInfo("cryptogram"),
    0x86: TagInfo("padding-content indicator and cryptogram"),
    0x87: TagInfo("padding-content indicator and cryptogram"),
    0x8E: TagInfo("cryptographic checksum", size=(4, 8)),
    0x96: TagInfo("Ne", decode=int_be, size=(1, 2)),
    0x97: TagInfo("Ne", decode=int_be, size=(1, 2)),
    0x99: TagInfo("processing status", size=(2, 2)),
}
SM_DATA = BerTlv(SM_TAGS)
