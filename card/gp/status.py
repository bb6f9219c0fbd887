"""GET STATUS: the Registry as the card reports it (GPC v2.3.1 §11.4).

P1 (Table 11-33) picks the subset: 80 the ISD, 40 applications and SDs, 20
Executable Load Files, 10 Executable Load Files and their Executable Modules.
P2 (Table 11-34): b2 = 1 asks for the TLV format (Table 11-36), b2 = 0 for the
deprecated one (Tables 11-37/11-38); b1 = 1 asks for the next occurrences after
a 6310 ("more data available").

The data field holds search criteria (Table 11-35): `4F` with an AID or the
beginning of one (empty matches everything), and an optional tag list `5C`
naming the objects the host wants in each entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from card import tlv
from card.gp.lifecycle import LOADED
from card.gp.registry import Registry, privileges_bytes
from card.sw import SW, CardError

SUBSET_ISD = 0x80
SUBSET_APPS = 0x40
SUBSET_LOAD_FILES = 0x20
SUBSET_LOAD_FILES_AND_MODULES = 0x10

P2_NEXT = 0x01
P2_TLV = 0x02

# Table 11-36 in its order.
_T_AID, _T_LC, _T_PRIV, _T_ELF, _T_VERSION, _T_MODULE, _T_SD = (
    0x4F,
    0x9F70,
    0xC5,
    0xC4,
    0xCE,
    0x84,
    0xCC,
)
_ALL_TAGS = (_T_AID, _T_LC, _T_PRIV, _T_ELF, _T_VERSION, _T_MODULE, _T_SD)


@dataclass(frozen=True)
class StatusQuery:
    """A parsed GET STATUS command."""

    subset: int
    tlv_format: bool
    next: bool
    aid_prefix: bytes
    tags: tuple[int, ...] | None


def parse_query(p1: int, p2: int, data: bytes) -> StatusQuery:
    """Check P1, P2 and the search criteria.

    Raises:
        CardError: 6A86 for P1/P2, 6A80 for the data field.
    """
    if p1 not in (SUBSET_ISD, SUBSET_APPS, SUBSET_LOAD_FILES, SUBSET_LOAD_FILES_AND_MODULES):
        raise CardError(SW.INCORRECT_P1P2)
    if p2 & ~(P2_NEXT | P2_TLV):
        raise CardError(SW.INCORRECT_P1P2)
    try:
        items = tlv.parse(data, allow_padding=False)
    except tlv.TlvError:
        raise CardError(SW.WRONG_DATA) from None
    aid = b""
    tags: tuple[int, ...] | None = None
    seen: set[int] = set()
    for item in items:
        if item.tag in seen:
            raise CardError(SW.WRONG_DATA)
        seen.add(item.tag)
        if item.tag == 0x4F:
            aid = item.value
        elif item.tag == 0x5C:
            tags = _parse_tag_list(item.value)
        else:
            raise CardError(SW.WRONG_DATA)
    if 0x4F not in seen or len(aid) > 16:
        raise CardError(SW.WRONG_DATA)
    return StatusQuery(p1, bool(p2 & P2_TLV), bool(p2 & P2_NEXT), aid, tags)


def _parse_tag_list(data: bytes) -> tuple[int, ...]:
    out = []
    pos = 0
    try:
        while pos < len(data):
            tag, pos = tlv.decode_tag(data, pos)
            out.append(tag)
    except tlv.TlvError:
        raise CardError(SW.WRONG_DATA) from None
    return tuple(out)


def _entry(objects: list[tuple[int, bytes]], tags: tuple[int, ...] | None) -> bytes:
    if tags is not None:
        objects = [(t, v) for t, v in objects if t in tags]
    return tlv.build(0xE3, objects)


def entries(
    query: StatusQuery, registry: Registry, card_state: int, isd_privileges: int
) -> list[bytes]:
    """The encoded entries that match the query, in Registry order.

    Raises:
        CardError: 6A88 when nothing matches (§11.4.3).
    """
    prefix = query.aid_prefix
    out: list[bytes] = []
    if query.subset == SUBSET_ISD:
        if registry.isd_aid.startswith(prefix):
            out.append(_isd_entry(query, registry, card_state, isd_privileges))
    elif query.subset == SUBSET_APPS:
        for app in registry.applications():
            if not app.aid.startswith(prefix):
                continue
            if query.tlv_format:
                objs = [
                    (_T_AID, app.aid),
                    (_T_LC, bytes((app.lifecycle,))),
                    (_T_PRIV, privileges_bytes(app.privileges)),
                ]
                if app.elf_aid is not None:
                    objs.append((_T_ELF, app.elf_aid))
                objs.append((_T_SD, app.sd_aid))
                out.append(_entry(objs, query.tags))
            else:
                out.append(_legacy(app.aid, app.lifecycle, app.privileges >> 16))
    else:
        with_modules = query.subset == SUBSET_LOAD_FILES_AND_MODULES
        for elf in registry.load_files:
            if not elf.aid.startswith(prefix):
                continue
            if query.tlv_format:
                objs = [(_T_AID, elf.aid), (_T_LC, bytes((LOADED,)))]
                objs.append((_T_VERSION, bytes(elf.version)))
                if with_modules:
                    objs += [(_T_MODULE, m.aid) for m in elf.modules]
                objs.append((_T_SD, elf.sd_aid))
                out.append(_entry(objs, query.tags))
            else:
                item = _legacy(elf.aid, LOADED, 0)
                if with_modules:
                    item += bytes((len(elf.modules),))
                    item += b"".join(bytes((len(m.aid),)) + m.aid for m in elf.modules)
                out.append(item)
    if not out:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    return out


def _isd_entry(
    query: StatusQuery, registry: Registry, card_state: int, isd_privileges: int
) -> bytes:
    if not query.tlv_format:
        return _legacy(registry.isd_aid, card_state, isd_privileges >> 16)
    objs = [
        (_T_AID, registry.isd_aid),
        (_T_LC, bytes((card_state,))),
        (_T_PRIV, privileges_bytes(isd_privileges)),
    ]
    return _entry(objs, query.tags)


def _legacy(aid: bytes, lifecycle: int, privilege_byte: int) -> bytes:
    # Table 11-37: AID length, AID, life cycle state, one privilege byte.
    return bytes((len(aid),)) + aid + bytes((lifecycle, privilege_byte & 0xFF))


def page(items: list[bytes], start: int, limit: int) -> tuple[bytes, int]:
    """As many whole entries from `start` as fit in `limit` bytes (at least one).

    Returns:
        (the response data, the index of the first entry left for "next").
    """
    out = b""
    i = start
    while i < len(items) and (not out or len(out) + len(items[i]) <= limit):
        out += items[i]
        i += 1
    return out, i
