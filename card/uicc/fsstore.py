"""How a profile's file tree is kept in persistent memory: compactly, with linked files.

card.fs keeps a file as a metadata tuple, a content value and, for a DF, a
directory tuple, and asks nothing of how the store keeps them. A profile holds
about 200 files, most of them empty (filled with 'FF') and most of their
metadata fields at a default, so `CompactFsStore` stands between card.fs and
the applet's store and keeps each value in the least memory that gives the
same value back:

- metadata: packed bytes (`_pack_meta`), the file's path and its parent being
  implied by the key (a tuple that does not fit is kept as it is);
- content: a transparent EF without its trailing 'FF' bytes, a record EF without
  its trailing 'FF' records and each record without its trailing 'FF' bytes (the
  fill TS 102 222 §6.3 gives new files; the size comes back from the metadata).
  Content written before the metadata it depends on (card.fs writes a new EF's
  content first) is kept whole under "d." and packed under "z." when the
  metadata arrives; a BER-TLV EF's data objects are kept whole;
- a DF's directory: its children's FIDs and SFIs, 3 bytes each;
- linked files (TS 102 222 §6.3 "link", SAIP `linkPath`): an EF that shares
  another EF's content keeps its own metadata and a reference "l.<handle>" to
  the file that holds the content; reads and writes of either reach the same
  bytes.

Values read back are cached per key against the stored value's identity, so
card.fs sees the same tuple for the same stored value (its caches compare by
identity first). A stored value that does not decode (damaged memory) raises
`DamagedRecord`, naming the key and never the value, so that the applet answers
it as a memory problem rather than as a fault of its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Protocol

from card.fs.files import (
    M_FDB,
    M_FID,
    M_FLAGS,
    M_HANDLE,
    M_LCS,
    M_NAME,
    M_NREC,
    M_PARENT,
    M_PINS,
    M_PROPRIETARY,
    M_RECLEN,
    M_SECURITY,
    M_SFI,
    M_SIZE,
    M_TOTAL,
    M_VERSION,
    META_LEN,
    META_VERSION,
    MF_HANDLE,
    child_handle,
)

__all__ = ["CompactFsStore", "DamagedRecord"]

_FILL = 0xFF
_FILL_BYTE = b"\xff"
_HEAD = struct.Struct(">BBHBBIBBB")  # presence bits, fdb, fid, sfi, lcs, size, reclen, nrec, flags
_CACHE_LIMIT = 8192

# presence bits of the packed metadata
_HAS_FID = 0x01
_HAS_NAME = 0x02
_HAS_SECURITY = 0x04
_HAS_PINS = 0x08
_HAS_PROPRIETARY = 0x10
_HAS_TOTAL = 0x20


class Store(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class DamagedRecord(Exception):
    """A stored record of the file system does not decode (its key, never its value).

    Raised by `CompactFsStore` reads; the UICC applet answers it 6581, "memory
    problem" (TS 102 221 §10.2.1.3).
    """


def _parent_of(handle: str) -> str | None:
    if handle == MF_HANDLE:
        return None
    if "/" not in handle:
        return MF_HANDLE  # an ADF: its parent is the MF
    return handle.rsplit("/", 1)[0]


def _pack_meta(handle: str, meta: tuple[Any, ...]) -> bytes | None:
    """The metadata tuple as bytes, or None when it does not fit the packed form."""
    if len(meta) != META_LEN or meta[0] != META_VERSION or meta[1] != handle:
        return None
    _v, _h, parent, fdb, fid, sfi, name, lcs, size, reclen, nrec, sec, flags, pins, prop, total = (
        meta
    )
    if parent != _parent_of(handle):
        return None
    try:
        bits = 0
        tail = b""
        if fid is not None:
            bits |= _HAS_FID
        for bit, value in ((_HAS_NAME, name), (_HAS_SECURITY, sec), (_HAS_PROPRIETARY, prop)):
            if value is not None:
                if len(value) > 255:
                    return None
                bits |= bit
                tail += bytes((len(value),)) + value
        if pins:
            bits |= _HAS_PINS
            body = b"".join(
                bytes((r, 0 if q is None else 1, 0 if q is None else q)) for r, q in pins
            )
            tail += bytes((len(pins),)) + body
        if total is not None:
            bits |= _HAS_TOTAL
            tail += total.to_bytes(4, "big")
        head = _HEAD.pack(bits, fdb, fid or 0, sfi, lcs, size, reclen, nrec, flags)
    except (struct.error, OverflowError, ValueError, TypeError):
        return None
    return head + tail


def _unpack_meta(handle: str, raw: bytes) -> tuple[Any, ...]:
    bits, fdb, fid, sfi, lcs, size, reclen, nrec, flags = _HEAD.unpack_from(raw, 0)
    pos = _HEAD.size
    fields: dict[int, bytes | None] = {}
    for bit in (_HAS_NAME, _HAS_SECURITY, _HAS_PROPRIETARY):
        if bits & bit:
            n = raw[pos]
            fields[bit] = raw[pos + 1 : pos + 1 + n]
            pos += 1 + n
        else:
            fields[bit] = None
    pins: tuple[tuple[int, int | None], ...] = ()
    if bits & _HAS_PINS:
        n = raw[pos]
        body = raw[pos + 1 : pos + 1 + 3 * n]
        pins = tuple(
            (body[i], body[i + 2] if body[i + 1] else None) for i in range(0, len(body), 3)
        )
        pos += 1 + 3 * n
    total = int.from_bytes(raw[pos : pos + 4], "big") if bits & _HAS_TOTAL else None
    return (
        META_VERSION,
        handle,
        _parent_of(handle),
        fdb,
        fid if bits & _HAS_FID else None,
        sfi,
        fields[_HAS_NAME],
        lcs,
        size,
        reclen,
        nrec,
        fields[_HAS_SECURITY],
        flags,
        pins,
        fields[_HAS_PROPRIETARY],
        total,
    )


def _is_record(fdb: int) -> bool:
    return fdb & 0x38 != 0x38 and fdb & 0x07 not in (0, 1)


def _is_transparent(fdb: int) -> bool:
    return fdb & 0x38 != 0x38 and fdb & 0x07 == 1


def _pack_content(meta: tuple[Any, ...], content: Any) -> Any:
    fdb = meta[M_FDB]
    if _is_transparent(fdb) and isinstance(content, bytes):
        return content.rstrip(_FILL_BYTE)
    if _is_record(fdb) and isinstance(content, tuple):
        recs = [r.rstrip(_FILL_BYTE) for r in content]
        while recs and not recs[-1]:
            recs.pop()
        return tuple(recs)
    return None  # kept whole


def _unpack_content(meta: tuple[Any, ...], packed: Any) -> Any:
    """Raises TypeError for a packed value of another type than `_pack_content` gives."""
    fdb = meta[M_FDB]
    if _is_transparent(fdb):
        if type(packed) is not bytes:
            raise TypeError("transparent content")
        return packed + _FILL_BYTE * (meta[M_SIZE] - len(packed))
    if type(packed) is not tuple or not all(type(r) is bytes for r in packed):
        raise TypeError("record content")
    reclen, nrec = meta[M_RECLEN], meta[M_NREC]
    full = _FILL_BYTE * reclen
    return tuple(r + _FILL_BYTE * (reclen - len(r)) for r in packed) + (full,) * (
        nrec - len(packed)
    )


def _directory(parent: str, raw: bytes) -> tuple[tuple[int, int, str], ...]:
    """A DF's packed directory: (FID, SFI, handle) per child, 3 bytes each."""
    if len(raw) % 3:
        raise ValueError("a directory of 3-byte entries")
    return tuple(
        (fid, raw[i + 2], child_handle(parent, fid))
        for i in range(0, len(raw), 3)
        for fid in (int.from_bytes(raw[i : i + 2], "big"),)
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _is_opt(kind: type, value: Any) -> bool:
    return value is None or isinstance(value, kind)


def _checked_meta(meta: Any) -> tuple[Any, ...]:
    """A metadata tuple kept whole, returned if it has card.fs's layout (`Meta`: length,
    version, each field's type); else ValueError, which `FileInfo` would raise later
    (or a TypeError further on) and the card answer 6F00 instead of 6581."""
    if type(meta) is not tuple or len(meta) != META_LEN or meta[M_VERSION] != META_VERSION:
        raise ValueError("file metadata layout")
    m = meta
    ok = (
        type(m[M_HANDLE]) is str
        and _is_opt(str, m[M_PARENT])
        and all(_is_int(m[i]) for i in (M_FDB, M_SFI, M_LCS, M_SIZE, M_RECLEN, M_NREC, M_FLAGS))
        and _is_opt(int, m[M_FID])
        and _is_opt(int, m[M_TOTAL])
        and all(_is_opt(bytes, m[i]) for i in (M_NAME, M_SECURITY, M_PROPRIETARY))
        and type(m[M_PINS]) is tuple
        and all(
            type(p) is tuple and len(p) == 2 and _is_int(p[0]) and _is_opt(int, p[1])
            for p in m[M_PINS]
        )
    )
    if not ok:
        raise TypeError("file metadata field")
    return meta


def _checked_directory(entries: Any) -> tuple[tuple[int, int, str], ...]:
    """A directory kept whole (`CompactFsStore.set`: a child whose handle is not the one
    `child_handle` gives), returned if it is the tuple of (FID, SFI, handle) card.fs
    wrote; else TypeError."""
    if type(entries) is not tuple or not all(
        type(e) is tuple and len(e) == 3 and _is_int(e[0]) and _is_int(e[1]) and type(e[2]) is str
        for e in entries
    ):
        raise TypeError("directory")
    return entries


def _decoded(key: str, decode: Callable[..., Any], *args: Any) -> Any:
    """`decode(*args)`, its failure on a damaged stored value raised as `DamagedRecord`."""
    try:
        return decode(*args)
    except (struct.error, IndexError, TypeError, ValueError, OverflowError):
        raise DamagedRecord(f"the stored record {key} does not decode") from None


class CompactFsStore:
    """A card.fs store over `store` for the file system under `prefix` (module docstring)."""

    __slots__ = (
        "store",
        "_km",
        "_kd",
        "_kz",
        "_kc",
        "_kl",
        "_cache",
        "_version",
        "version",
        "_seen",
        "_seen_at",
    )

    def __init__(
        self, store: Store, prefix: str, version: Callable[[], object] | None = None
    ) -> None:
        """`version`: a value that changes whenever anything stored may have (the card's
        `nvm_version`); while it stays equal, `get` answers a key again from what it
        answered before (READ RECORD and the like read the same four keys each time)."""
        self.store = store
        self._km = prefix + "m."
        self._kd = prefix + "d."
        self._kz = prefix + "z."
        self._kc = prefix + "c."
        self._kl = prefix + "l."
        self._cache: dict[str, tuple[Any, Any]] = {}
        self._version = version
        #: the same, for the file system's own caches (`FileSystem.check_access`)
        self.version = version
        self._seen: dict[str, Any] = {}
        self._seen_at: object = None

    # -- linked files ------------------------------------------------------------------

    def link_of(self, handle: str) -> str | None:
        """The file whose content `handle` shares, or None."""
        return self.store.get(self._kl + handle)

    def set_link(self, handle: str, target: str) -> None:
        """Make `handle` share the content of `target` (its own content is dropped)."""
        if self.link_of(target) is not None:
            target = self.link_of(target) or target
        for k in (self._kd, self._kz):
            if self.store.get(k + handle) is not None:
                self.store.delete(k + handle)
        self.store.set(self._kl + handle, target)

    # -- the store protocol --------------------------------------------------------------

    def _cached(self, key: str, raw: Any, decode: Any) -> Any:
        c = self._cache.get(key)
        if c is not None and c[0] is raw:
            return c[1]
        value = decode()
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (raw, value)
        return value

    def _meta(self, handle: str) -> tuple[Any, ...] | None:
        key = self._km + handle
        raw = self.store.get(key)
        if raw is None:
            return None
        c = self._cache.get(key)
        if c is not None and c[0] is raw:  # `_cached`, inline: no closure per read
            meta: tuple[Any, ...] = c[1]
            return meta
        if isinstance(raw, tuple):  # kept whole (`_pack_meta` gave None): checked once
            return self._cached(key, raw, lambda: _decoded(key, _checked_meta, raw))
        return self._cached(key, raw, lambda: _decoded(key, _unpack_meta, handle, raw))

    def get(self, key: str, default: Any = None) -> Any:
        version = self._version
        if version is None:
            value = self._get(key)
            return default if value is None else value
        now = version()
        seen = self._seen
        if now != self._seen_at or len(seen) > _CACHE_LIMIT:
            seen.clear()
            self._seen_at = now
        elif key in seen:
            value = seen[key]
            return default if value is None else value
        value = seen[key] = self._get(key)
        return default if value is None else value

    def _get(self, key: str) -> Any:
        if key.startswith(self._km):
            value = self._meta(key[len(self._km) :])
        elif key.startswith(self._kd):
            value = self._content(key[len(self._kd) :])
        elif key.startswith(self._kc):
            raw = self.store.get(key)
            if raw is None:
                value = None
            elif isinstance(raw, bytes):
                parent = key[len(self._kc) :]
                value = self._cached(key, raw, lambda: _decoded(key, _directory, parent, raw))
            else:  # kept whole (`set`): checked once
                value = self._cached(key, raw, lambda: _decoded(key, _checked_directory, raw))
        else:
            value = self.store.get(key)
        return value

    def _content(self, handle: str) -> Any:
        handle = self.link_of(handle) or handle
        raw = self.store.get(self._kz + handle)
        if raw is None:
            return self.store.get(self._kd + handle)
        meta = self._meta(handle)
        if meta is None:
            return None
        key = self._kz + handle
        c = self._cache.get(key)
        if c is not None and c[0] is raw and c[1][0] is meta:
            return c[1][1]
        value = _decoded(key, _unpack_content, meta, raw)
        self._cache[key] = (raw, (meta, value))
        return value

    def set(self, key: str, value: Any) -> None:
        if value is None:
            self.delete(key)
            return
        if key.startswith(self._km):
            handle = key[len(self._km) :]
            packed = _pack_meta(handle, value) if isinstance(value, tuple) else None
            self.store.set(key, value if packed is None else packed)
            whole = self.store.get(self._kd + handle)
            if whole is not None:  # content that came before its metadata: pack it now
                self._put_content(handle, whole)
        elif key.startswith(self._kd):
            handle = key[len(self._kd) :]
            self._put_content(self.link_of(handle) or handle, value)
        elif key.startswith(self._kc) and isinstance(value, tuple):
            parent = key[len(self._kc) :]
            if all(h == child_handle(parent, fid) and 0 <= fid <= 0xFFFF for fid, _s, h in value):
                packed = b"".join(fid.to_bytes(2, "big") + bytes((s,)) for fid, s, _h in value)
                self.store.set(key, packed)
            else:
                self.store.set(key, value)
        else:
            self.store.set(key, value)

    def _put_content(self, handle: str, value: Any) -> None:
        meta = self._meta(handle)
        packed = None if meta is None else _pack_content(meta, value)
        if packed is None:
            if self.store.get(self._kz + handle) is not None:
                self.store.delete(self._kz + handle)
            self.store.set(self._kd + handle, value)
            return
        self.store.set(self._kz + handle, packed)
        if self.store.get(self._kd + handle) is not None:
            self.store.delete(self._kd + handle)

    def delete(self, key: str) -> None:
        if key.startswith(self._kd):
            handle = key[len(self._kd) :]
            if self.link_of(handle) is not None:
                self.store.delete(self._kl + handle)  # the link goes, the target stays
                return
            for k in (self._kd, self._kz):
                if self.store.get(k + handle) is not None:
                    self.store.delete(k + handle)
            return
        if self.store.get(key) is not None:
            self.store.delete(key)
