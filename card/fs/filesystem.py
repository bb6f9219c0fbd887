"""The ISO/IEC 7816-4 file system: selection, data access and access control.

Commands (ISO 7816-4 §11.1-11.4, with the choices of ETSI TS 102 221 §11.1):
SELECT (A4), STATUS (F2), READ / UPDATE BINARY (B0 / D6), READ / UPDATE RECORD
(B2 / DC), SEARCH RECORD (A2), INCREASE (32), DEACTIVATE / ACTIVATE FILE
(04 / 44). `FileSystem.process` dispatches a command to them; applets call it
for the instructions they leave to the file system.

State contract:

* Everything persistent is in the injected store (`get(key, default)`,
  `set(key, value)`), one immutable value per key, and every change of a file
  is a single `set`: the whole content of a transparent EF, the whole tuple of
  records of a record EF (so a cyclic write that turns the ring is atomic), the
  whole metadata tuple for a life-cycle change.
* The selection state of a logical channel (current DF, current EF, current
  record, current application) lives in a plain dict the caller passes with
  every command; the framework clears it on reset and deselect.
* The access conditions are evaluated against a `SecurityEnvironment` for the
  channel of the command (`is_verified(key_ref)`).
* Caches hold only views derived from stored values and are checked against
  the stored value (by identity, then by equality) at every use, so a write
  or a rollback after a tear can never be hidden by a cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from card.fs.fcp import SHAREABLE, Compact, Expanded, Referenced, Structure, security_from_tlv
from card.fs.files import (
    CURRENT_ADF_FID,
    FLAG_INCREASE,
    FLAG_USABLE_DEACTIVATED,
    M_LCS,
    MF_FID,
    MF_HANDLE,
    RESERVED_FIDS,
    FileInfo,
    Meta,
    adf_handle,
    child_handle,
    meta_tuple,
)
from card.fs.security import (
    INS_INCREASE,
    AccessRules,
    Op,
    SecurityEnvironment,
    parse_arr_record,
)
from card.sw import SW, CardError
from card.tlv import TlvError, decode_length, decode_tag

SecuritySpec = Compact | Expanded | Referenced | bytes | None

#: Ne values that mean "as many as there are" (a short or an extended Le of zeros).
_NE_MAX = (256, 65536)
_DENY_ALL = AccessRules()
_CACHE_LIMIT = 4096

SW_MORE_DATA = 0x62F1  # TS 102 221 §10.2.1.1: more data available
SW_INCREASE_MAX = 0x9850  # TS 102 221 §10.2.1.5: INCREASE cannot be performed, max value reached


class Store(Protocol):
    """The persistent key-value store the file system is given."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class Command(Protocol):
    """What `FileSystem.process` reads from a command (card.framework.APDU has it)."""

    ins: int
    p1: int
    p2: int
    data: bytes
    ne: int | None


class FileSystem:
    """One file tree in one store. Cheap to create; holds no state but caches.

    Args:
        store: the persistent key-value store.
        prefix: prefix of every key the file system uses in the store and in
            the channel state dict, so one applet can hold several trees.
    """

    def __init__(self, store: Store, prefix: str = "fs.") -> None:
        self.store = store
        self.prefix = prefix
        self._get = store.get
        self._km = prefix + "m."  # metadata tuple per file
        self._kd = prefix + "d."  # content per EF
        self._kc = prefix + "c."  # directory per DF: ((fid, sfi, handle), ...)
        self._kn = prefix + "names"  # ((df_name, handle), ...) in creation order
        self._s_df = prefix + "df"
        self._s_ef = prefix + "ef"
        self._s_rec = prefix + "rec"
        self._s_app = prefix + "app"
        self._s_quick = prefix + "rrq"
        self._infos: dict[str, tuple[Meta, FileInfo]] = {}
        self._dirs: dict[str, tuple[tuple, dict[int, str], dict[int, str]]] = {}
        self._arr: dict[bytes, AccessRules] = {}
        #: (file, EF.ARR FID, record) -> (the stored values the resolution read, its rules)
        self._arr_of: dict[
            tuple[str, int, int], tuple[tuple[tuple[str, Any], ...], AccessRules]
        ] = {}
        #: a value that changes whenever anything stored may have (the card's
        #: `nvm_version`, when the store offers it as `version`): what `check_access`
        #: has granted is kept while it stays equal
        self._version: Callable[[], object] | None = getattr(store, "version", None)
        #: (file, op, ins, the environment's cache_key) granted at `_granted_at`
        self._granted: set[tuple[str, int, int | None, Hashable]] = set()
        self._granted_at: object = None
        #: READ RECORD's current EF: (its handle, the version, its FileInfo, its records)
        self._rr_memo: tuple[str | None, object, Any, Any] = (None, None, None, None)
        self._handlers: dict[int, Callable[[dict, SecurityEnvironment, Command], bytes]] = {
            0xA4: self._cmd_select,
            0xF2: self._cmd_status,
            0xB0: self._cmd_read_binary,
            0xD6: self._cmd_update_binary,
            0xB2: self._cmd_read_record,
            0xDC: self._cmd_update_record,
            0xA2: self._cmd_search_record,
            0x32: self._cmd_increase,
            0x04: self._cmd_deactivate,
            0x44: self._cmd_activate,
            0xCB: self._cmd_retrieve_data,
            0xDB: self._cmd_set_data,
        }

    #: Instructions `process` handles.
    INSTRUCTIONS = frozenset(
        {0xA4, 0xF2, 0xB0, 0xD6, 0xB2, 0xDC, 0xA2, 0x32, 0x04, 0x44, 0xCB, 0xDB}
    )

    # == Lookups =========================================================================

    def info(self, handle: str) -> FileInfo | None:
        """The decoded metadata of a file, or None if there is no such file."""
        meta = self._get(self._km + handle)
        if meta is None:
            return None
        c = self._infos.get(handle)
        if c is not None and (c[0] is meta or c[0] == meta):
            return c[1]
        info = FileInfo(meta)
        if len(self._infos) > _CACHE_LIMIT:
            self._infos.clear()
        self._infos[handle] = (meta, info)
        return info

    def _info_or_raise(self, handle: str) -> FileInfo:
        info = self.info(handle)
        if info is None:
            raise CardError(SW.FILE_NOT_FOUND)
        return info

    def _dir(self, handle: str) -> tuple[dict[int, str], dict[int, str]]:
        """(children by FID, EFs by SFI) of a DF, derived from its stored directory."""
        d = self._get(self._kc + handle, ())
        c = self._dirs.get(handle)
        if c is not None and (c[0] is d or c[0] == d):
            return c[1], c[2]
        by_fid = {fid: h for fid, _, h in d}
        by_sfi = {sfi: h for _, sfi, h in d if sfi}
        if len(self._dirs) > _CACHE_LIMIT:
            self._dirs.clear()
        self._dirs[handle] = (d, by_fid, by_sfi)
        return by_fid, by_sfi

    def children(self, handle: str) -> tuple[str, ...]:
        """Handles of a DF's children, in creation order."""
        return tuple(h for _, _, h in self._get(self._kc + handle, ()))

    def child(self, parent: str, fid: int) -> str | None:
        """The handle of the child with this FID, or None."""
        return self._dir(parent)[0].get(fid)

    def applications(self) -> tuple[tuple[bytes, str], ...]:
        """(DF name, handle) of every named DF and ADF, in creation order."""
        return self._get(self._kn, ())

    def find(self, path: Sequence[int], start: str = MF_HANDLE) -> str | None:
        """The handle reached from `start` through the FIDs of `path`, or None."""
        h = start
        for fid in path:
            nxt = self._dir(h)[0].get(fid)
            if nxt is None:
                return None
            h = nxt
        return h

    def exists(self) -> bool:
        """Whether the MF has been created."""
        return self._get(self._km + MF_HANDLE) is not None

    # == Content, for the card itself (no access conditions) ===============================

    def read(self, handle: str) -> bytes | tuple[bytes, ...]:
        """The whole content of an EF: bytes, or the tuple of records (record 1 first)."""
        info = self._info_or_raise(handle)
        if info.is_df:
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        return self._get(self._kd + handle)

    def write(self, handle: str, content: bytes | Sequence[bytes]) -> None:
        """Replace the whole content of an EF in one write (sizes must match)."""
        info = self._info_or_raise(handle)
        self.store.set(self._kd + handle, self._check_content(info, content))

    def record(self, handle: str, number: int) -> bytes:
        """Record `number` (1-based) of a record EF."""
        recs = self.read(handle)
        if not isinstance(recs, tuple) or not 1 <= number <= len(recs):
            raise CardError(SW.RECORD_NOT_FOUND)
        return recs[number - 1]

    @staticmethod
    def _check_content(info: FileInfo, content: bytes | Sequence[bytes]) -> bytes | tuple:
        if info.is_transparent:
            if not isinstance(content, (bytes, bytearray)) or len(content) != info.size:
                raise ValueError(f"{info.handle}: content must be {info.size} bytes")
            return bytes(content)
        if info.is_record:
            recs = tuple(bytes(r) for r in content)
            if len(recs) != info.records or any(len(r) != info.record_length for r in recs):
                raise ValueError(
                    f"{info.handle}: content must be {info.records} records of "
                    f"{info.record_length} bytes"
                )
            return recs
        if info.is_bertlv:
            if not isinstance(content, (bytes, bytearray)) or len(content) > info.size:
                raise ValueError(f"{info.handle}: at most {info.size} bytes of data objects")
            _split_objects(bytes(content))
            return bytes(content)
        raise ValueError(f"{info.handle} is a DF")

    # == Building the tree (personalisation) ===============================================
    #
    # Each creation writes the content, then the metadata, then the entry in the
    # parent's directory, which is what makes the file reachable: a tear in
    # between leaves an unreachable orphan, never a half-made file. To make the
    # creation of a whole tree all-or-nothing, run it in a transaction.

    def create_mf(
        self,
        *,
        security: SecuritySpec = None,
        pins: Sequence[int | tuple[int, int | None]] = (),
        proprietary: bytes | None = None,
        total_size: int | None = None,
        lcs: int = 0x05,
    ) -> str:
        """Create the MF (3F00). Returns its handle."""
        if self.exists():
            raise CardError(SW.FILE_ALREADY_EXISTS)
        meta = meta_tuple(
            handle=MF_HANDLE,
            parent=None,
            fdb=SHAREABLE | Structure.DF,
            fid=MF_FID,
            lcs=lcs,
            security=_security_bytes(security),
            pins=_pins(pins),
            proprietary=proprietary,
            total_size=total_size,
        )
        self.store.set(self._km + MF_HANDLE, meta)
        return MF_HANDLE

    def create_df(
        self,
        parent: str,
        fid: int,
        *,
        name: bytes | None = None,
        security: SecuritySpec = None,
        pins: Sequence[int | tuple[int, int | None]] = (),
        proprietary: bytes | None = None,
        total_size: int | None = None,
        lcs: int = 0x05,
        shareable: bool = True,
    ) -> str:
        """Create a DF under `parent`, optionally with a DF name. Returns its handle."""
        p = self._parent_df(parent)
        self._check_new_fid(p, fid)
        if name is not None:
            self._check_new_name(name)
        h = child_handle(parent, fid)
        meta = meta_tuple(
            handle=h,
            parent=parent,
            fdb=(SHAREABLE if shareable else 0) | Structure.DF,
            fid=fid,
            name=name,
            lcs=lcs,
            security=_security_bytes(security),
            pins=_pins(pins),
            proprietary=proprietary,
            total_size=total_size,
        )
        self.store.set(self._km + h, meta)
        self._link(parent, fid, 0, h)
        if name is not None:
            self.store.set(self._kn, self.applications() + ((bytes(name), h),))
        return h

    def create_adf(
        self,
        name: bytes,
        *,
        fid: int | None = None,
        security: SecuritySpec = None,
        pins: Sequence[int | tuple[int, int | None]] = (),
        proprietary: bytes | None = None,
        total_size: int | None = None,
        lcs: int = 0x05,
    ) -> str:
        """Create an ADF, selected by its DF name (AID) or through 7FFF (TS 102 221 §8.3).

        Its parent, for SELECT parent and for the EF.ARR search, is the MF, but
        it is not in the MF's directory. Returns its handle ("ADF." + AID).
        """
        if not self.exists():
            raise CardError(SW.FILE_NOT_FOUND)
        if not 1 <= len(name) <= 16:
            raise ValueError("a DF name has 1 to 16 bytes")
        self._check_new_name(name)
        h = adf_handle(name)
        meta = meta_tuple(
            handle=h,
            parent=MF_HANDLE,
            fdb=SHAREABLE | Structure.DF,
            fid=fid,
            name=bytes(name),
            lcs=lcs,
            security=_security_bytes(security),
            pins=_pins(pins),
            proprietary=proprietary,
            total_size=total_size,
        )
        self.store.set(self._km + h, meta)
        self.store.set(self._kn, self.applications() + ((bytes(name), h),))
        return h

    def create_ef(
        self,
        parent: str,
        fid: int,
        structure: Structure = Structure.TRANSPARENT,
        *,
        size: int | None = None,
        record_length: int | None = None,
        records: int | None = None,
        sfi: int | None = None,
        data: bytes | Sequence[bytes] | None = None,
        fill: int = 0xFF,
        security: SecuritySpec = None,
        increase: bool = False,
        usable_deactivated: bool = False,
        lcs: int = 0x05,
        shareable: bool = True,
    ) -> str:
        """Create an EF under `parent`. Returns its handle.

        A transparent EF takes `size` (or the length of `data`); a record EF takes
        `record_length` and `records` (or the records in `data`, each padded with
        `fill`). For a cyclic EF, `data[0]` is record 1, the newest.
        """
        p = self._parent_df(parent)
        self._check_new_fid(p, fid)
        if sfi is not None:
            if not 1 <= sfi <= 30:
                raise ValueError(f"SFI {sfi} out of range 1..30")
            if sfi in self._dir(parent)[1]:
                raise CardError(SW.FILE_ALREADY_EXISTS)
        content: bytes | tuple[bytes, ...]
        if structure == Structure.TRANSPARENT:
            if data is not None and not isinstance(data, (bytes, bytearray)):
                raise TypeError("the data of a transparent EF is bytes")
            if size is None:
                size = len(data) if data is not None else 0
            content = bytes(data or b"")
            if len(content) > size:
                raise ValueError(f"{len(content)} bytes of data for a {size}-byte EF")
            content += bytes((fill,)) * (size - len(content))
            record_length = records = 0
        elif structure in (Structure.LINEAR_FIXED, Structure.CYCLIC):
            recs: list[bytes] = []
            if data is not None:
                recs = [data] if isinstance(data, (bytes, bytearray)) else list(data)
            if record_length is None:
                if not recs:
                    raise ValueError("a record EF needs record_length or data")
                record_length = max(len(r) for r in recs)
            if records is None:
                records = len(recs)
            if len(recs) > records or any(len(r) > record_length for r in recs):
                raise ValueError("more or longer records than the EF holds")
            pad = bytes((fill,))
            content = tuple(bytes(r) + pad * (record_length - len(r)) for r in recs) + (
                pad * record_length,
            ) * (records - len(recs))
            size = record_length * records
        elif structure == Structure.BER_TLV:
            # TS 102 221 §11.3: data objects back to back; `size` is the memory reserved.
            if data is not None and not isinstance(data, (bytes, bytearray)):
                raise TypeError("the data of a BER-TLV EF is bytes (its data objects)")
            content = bytes(data or b"")
            _split_objects(content)
            if size is None:
                size = len(content)
            if len(content) > size:
                raise ValueError(f"{len(content)} bytes of data objects for a {size}-byte EF")
            record_length = records = 0
        else:
            raise ValueError(f"cannot create an EF of structure {structure!r}")
        h = child_handle(parent, fid)
        flags = (FLAG_INCREASE if increase else 0) | (
            FLAG_USABLE_DEACTIVATED if usable_deactivated else 0
        )
        if increase and structure != Structure.CYCLIC:
            raise ValueError("INCREASE applies to cyclic EFs only")
        meta = meta_tuple(
            handle=h,
            parent=parent,
            fdb=(SHAREABLE if shareable else 0) | structure,
            fid=fid,
            sfi=sfi or 0,
            lcs=lcs,
            size=size,
            record_length=record_length,
            records=records,
            security=_security_bytes(security),
            flags=flags,
        )
        self.store.set(self._kd + h, content)
        self.store.set(self._km + h, meta)
        self._link(parent, fid, sfi or 0, h)
        return h

    def delete(self, handle: str) -> None:
        """Delete a file and, for a DF, everything under it (ISO 7816-9 DELETE FILE).

        Unlinking from the parent (or from the name index, for an ADF) comes
        first: after a tear the rest is unreachable garbage, never a dangling link.
        """
        info = self._info_or_raise(handle)
        if handle == MF_HANDLE:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if info.parent is not None and not info.is_adf:
            d = self._get(self._kc + info.parent, ())
            self.store.set(self._kc + info.parent, tuple(e for e in d if e[2] != handle))
        if info.name is not None:
            self.store.set(self._kn, tuple(e for e in self.applications() if e[1] != handle))
        self._erase(handle)

    def _erase(self, handle: str) -> None:
        for ch in self.children(handle):
            self._erase(ch)
        for k in (self._kc, self._kd, self._km):
            if self._get(k + handle) is not None:
                self.store.set(k + handle, None)
        self._infos.pop(handle, None)
        self._dirs.pop(handle, None)

    def _parent_df(self, parent: str) -> FileInfo:
        p = self._info_or_raise(parent)
        if not p.is_df:
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        return p

    def _check_new_fid(self, parent: FileInfo, fid: int) -> None:
        if not 0 <= fid <= 0xFFFF or fid in RESERVED_FIDS:
            raise ValueError(f"file identifier {fid:04X} is reserved")
        # ISO 7816-4 §7.1.1: unique among the children and different from the parent.
        if fid == parent.fid or fid in self._dir(parent.handle)[0]:
            raise CardError(SW.FILE_ALREADY_EXISTS)

    def _check_new_name(self, name: bytes) -> None:
        if any(n == name for n, _ in self.applications()):
            raise CardError(SW.DF_NAME_ALREADY_EXISTS)

    def _link(self, parent: str, fid: int, sfi: int, handle: str) -> None:
        d = self._get(self._kc + parent, ())
        self.store.set(self._kc + parent, d + ((fid, sfi, handle),))

    # == Channel state ====================================================================

    def current_df(self, state: dict) -> FileInfo:
        """The current DF of a channel (the MF when nothing is selected yet)."""
        h = state.get(self._s_df)
        if h is not None:
            info = self.info(h)
            if info is not None:
                return info
        # Nothing selected yet (ISO 7816-4 §7.1.1: the MF is implicitly
        # selected after reset), or the file vanished in a rollback.
        info = self._info_or_raise(MF_HANDLE)
        state[self._s_df] = MF_HANDLE
        state[self._s_ef] = None
        state[self._s_rec] = 0
        return info

    def current_ef(self, state: dict) -> FileInfo:
        """The current EF of a channel.

        Raises:
            CardError: 6986 when there is none.
        """
        h = state.get(self._s_ef)
        if h is not None:
            info = self.info(h)
            if info is not None:
                return info
        raise CardError(SW.COMMAND_NOT_ALLOWED_NO_EF)

    def current_application(self, state: dict) -> FileInfo | None:
        h = state.get(self._s_app)
        return None if h is None else self.info(h)

    def current_record(self, state: dict) -> int:
        """The current record number of the channel (0: none)."""
        return state.get(self._s_rec, 0)

    def select_file(self, state: dict, handle: str) -> FileInfo:
        """Make a file current on a channel, as a successful SELECT does."""
        info = self._info_or_raise(handle)
        if info.is_df:
            state[self._s_df] = handle
            state[self._s_ef] = None
            if info.is_adf:
                state[self._s_app] = handle
        else:
            state[self._s_df] = info.parent
            state[self._s_ef] = handle
        state[self._s_rec] = 0
        return info

    def _ef_by_sfi(self, state: dict, sfi: int) -> FileInfo:
        # ISO 7816-4 §7.2.2: a command naming an EF by SFI makes it the current EF.
        df = self.current_df(state)
        h = self._dir(df.handle)[1].get(sfi)
        if h is None:
            raise CardError(SW.FILE_NOT_FOUND)
        if state.get(self._s_ef) != h:
            state[self._s_ef] = h
            state[self._s_rec] = 0
        return self._info_or_raise(h)

    # == Access control ===================================================================

    def check_access(
        self, info: FileInfo, op: int, env: SecurityEnvironment, ins: int | None = None
    ) -> None:
        """Raise 6982 unless the access rule of `op` (or of `ins`) is satisfied."""
        rules = info.rules
        # free_ops is 0 without static rules (an EF.ARR reference is resolved below).
        if info.free_ops & op and (ins is None or rules is None or ins not in rules.by_ins):
            return
        # An environment whose `cache_key` (hashable) determines its every answer,
        # together with what is stored, may have a grant kept: READ RECORD and the
        # like then skip the EF.ARR lookup and the rule walk. Any write, delete or
        # rollback (the version), or a changed security state (the key), is a miss.
        version = self._version
        env_key = getattr(env, "cache_key", None)
        key = None
        if version is not None and env_key is not None:
            now = version()
            granted = self._granted
            if now != self._granted_at or len(granted) > _CACHE_LIMIT:
                granted.clear()
                self._granted_at = now
            key = (info.handle, op, ins, env_key)
            if key in granted:
                return
        if rules is None:
            rules = self._arr_rules(info, getattr(env, "se", 0))
        if not rules.allows(op, env.is_verified, ins):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if key is not None:
            self._granted.add(key)

    def access_rules(self, info: FileInfo, se: int = 0) -> AccessRules:
        """The access rules of a file, resolving an EF.ARR reference."""
        return info.rules if info.rules is not None else self._arr_rules(info, se)

    def _arr_rules(self, info: FileInfo, se: int) -> AccessRules:
        """Rules from EF.ARR (TS 102 221 §9.2.7; TS 31.102 §4.2.55).

        The EF.ARR named by the reference is looked for in the DF holding the
        file (a DF's own directory for a DF), then in each parent up to the MF
        (an ADF's parent being the MF). When it or the record cannot be read,
        access is not granted.
        """
        ref = info.reference
        if ref is None or ref.arr_fid is None:
            return _DENY_ALL
        number = ref.record_for(se)
        # READ RECORD and the like resolve the same reference on every command: the
        # resolution is kept per file and record, valid while every stored value it
        # read (the directories walked, EF.ARR's records) is the same object. Stored
        # values are immutable and every write stores a new one, so a changed EF.ARR,
        # a file created or deleted on the way, or a rollback, is a miss.
        key = (info.handle, ref.arr_fid, number)
        hit = self._arr_of.get(key)
        if hit is not None:
            get = self._get
            for k, v in hit[0]:
                if get(k) is not v:
                    break
            else:
                return hit[1]
        seen: list[tuple[str, Any]] = []
        rules = self._resolve_arr(info, ref.arr_fid, number, seen)
        if len(self._arr_of) > _CACHE_LIMIT:
            self._arr_of.clear()
        self._arr_of[key] = (tuple(seen), rules)
        return rules

    def _resolve_arr(
        self, info: FileInfo, arr_fid: int, number: int, seen: list[tuple[str, Any]]
    ) -> AccessRules:
        h = info.handle if info.is_df else info.parent
        while h is not None:
            kc = self._kc + h
            seen.append((kc, self._get(kc)))
            arr = self._dir(h)[0].get(arr_fid)
            if arr is not None:
                kd = self._kd + arr
                recs = self._get(kd)
                seen.append((kd, recs))
                if not isinstance(recs, tuple) or not 1 <= number <= len(recs):
                    return _DENY_ALL
                record = recs[number - 1]
                rules = self._arr.get(record)
                if rules is None:
                    try:
                        rules = parse_arr_record(record)
                    except ValueError:
                        rules = _DENY_ALL
                    if len(self._arr) > _CACHE_LIMIT:
                        self._arr.clear()
                    self._arr[record] = rules
                return rules
            km = self._km + h
            seen.append((km, self._get(km)))
            parent = self.info(h)
            h = parent.parent if parent is not None else None
        return _DENY_ALL

    @staticmethod
    def _check_usable(info: FileInfo) -> None:
        """Data access needs an activated file (ISO 7816-4 §7.4.10)."""
        lcs = info.lcs
        if lcs & 0xFD == 0x05:
            return
        if lcs & 0xFC == 0x0C:
            raise CardError(SW.FILE_TERMINATED)
        if lcs & 0xFD == 0x04 and not info.flags & FLAG_USABLE_DEACTIVATED:
            raise CardError(SW.FILE_DEACTIVATED)

    # == Commands ==========================================================================

    def process(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        """Execute one file-system command; returns the response data.

        Raises:
            CardError: the status word (warnings 6282/6283/6285 carry their data).
        """
        handler = self._handlers.get(cmd.ins)
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return handler(state, env, cmd)

    # -- SELECT (ISO 7816-4 §11.2.2; TS 102 221 §11.1.1) -----------------------------------

    def select(
        self,
        state: dict,
        p1: int,
        p2: int,
        data: bytes,
        env: SecurityEnvironment | None = None,
    ) -> bytes:
        """SELECT: P1 the selection mode, P2 the response and the occurrence.

        P1: 00 MF/DF/EF by FID (or the MF with no data), 01 child DF, 02 EF of
        the current DF, 03 parent DF, 04 by DF name, 08 path from the MF, 09
        path from the current DF. P2 b4-b3: 00 FCI, 01 FCP, 10 FMD, 11 no
        data; b2-b1 (P1 = 04 only): first, last, next, previous occurrence.
        """
        if p2 & 0xF0 or (p2 & 0x03 and p1 != 0x04):
            raise CardError(SW.INCORRECT_P1P2)
        if p1 == 0x04:
            h = self._by_name(state, data, p2 & 0x03)
        else:
            h = self._resolve(state, p1, data)
        info = self.select_file(state, h)
        return self._select_response(info, p2 & 0x0C, env)

    def _cmd_select(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.select(state, cmd.p1, cmd.p2, cmd.data, env)

    def _select_response(self, info: FileInfo, what: int, env: SecurityEnvironment | None) -> bytes:
        if what == 0x04:
            out = info.fcp(self._pin_flags(info, env))
        elif what == 0x0C:
            out = b""
        elif what == 0x00:
            out = info.fci(self._pin_flags(info, env))
        else:
            out = info.fmd()
        lcs = info.lcs
        if lcs & 0xFD != 0x05:
            if lcs & 0xFD == 0x04:
                raise CardError(SW.FILE_DEACTIVATED, out)
            if lcs & 0xFC == 0x0C:
                raise CardError(SW.FILE_TERMINATED, out)
        return out

    @staticmethod
    def _pin_flags(info: FileInfo, env: SecurityEnvironment | None) -> tuple[bool, ...]:
        if not info.pins:
            return ()
        enabled = getattr(env, "pin_enabled", None)
        if enabled is None:
            return ()
        return tuple(bool(enabled(r)) for r, _ in info.pins)

    def _resolve(self, state: dict, p1: int, data: bytes) -> str:
        """The handle a SELECT-style P1 and data field designate (all but P1 = 04)."""
        n = len(data)
        if p1 == 0x00:
            if n == 0:
                return MF_HANDLE
            if n != 2:
                raise CardError(SW.WRONG_LENGTH)
            fid = (data[0] << 8) | data[1]
            if fid == MF_FID:
                self._info_or_raise(MF_HANDLE)
                return MF_HANDLE
            if fid == CURRENT_ADF_FID:
                return self._current_adf(state)
            return self._by_fid(state, fid)
        if p1 == 0x01 or p1 == 0x02:
            if n != 2:
                raise CardError(SW.WRONG_LENGTH)
            df = self.current_df(state)
            h = self._dir(df.handle)[0].get((data[0] << 8) | data[1])
            if h is None or self._info_or_raise(h).is_df != (p1 == 0x01):
                raise CardError(SW.FILE_NOT_FOUND)
            return h
        if p1 == 0x03:
            if n:
                raise CardError(SW.WRONG_LENGTH)
            df = self.current_df(state)
            if df.parent is None:
                raise CardError(SW.FILE_NOT_FOUND)
            return df.parent
        if p1 == 0x08 or p1 == 0x09:
            if n == 0 or n & 1:
                raise CardError(SW.WRONG_LENGTH)
            start = MF_HANDLE if p1 == 0x08 else self.current_df(state).handle
            return self._walk(state, start, data)
        raise CardError(SW.INCORRECT_P1P2)

    def _current_adf(self, state: dict) -> str:
        h = state.get(self._s_app)
        if h is None or self.info(h) is None:
            raise CardError(SW.FILE_NOT_FOUND)
        return h

    def _by_fid(self, state: dict, fid: int) -> str:
        """P1 = 00: TS 102 221 §8.4.1 / ISO 7816-4 §7.1.1 selection by FID.

        In this order: the current DF itself, a child of the current DF, the
        parent DF, a DF that is a child of the parent (a sibling).
        """
        df = self.current_df(state)
        if fid == df.fid:
            return df.handle
        h = self._dir(df.handle)[0].get(fid)
        if h is not None:
            return h
        if df.parent is not None:
            parent = self._info_or_raise(df.parent)
            if fid == parent.fid:
                return parent.handle
            h = self._dir(parent.handle)[0].get(fid)
            if h is not None and self._info_or_raise(h).is_df:
                return h
        raise CardError(SW.FILE_NOT_FOUND)

    def _walk(self, state: dict, start: str, path: bytes) -> str:
        h = start
        for i in range(0, len(path), 2):
            fid = (path[i] << 8) | path[i + 1]
            if i == 0 and fid == CURRENT_ADF_FID:
                h = self._current_adf(state)
                continue
            if i and not self._info_or_raise(h).is_df:
                raise CardError(SW.FILE_NOT_FOUND)
            nxt = self._dir(h)[0].get(fid)
            if nxt is None:
                raise CardError(SW.FILE_NOT_FOUND)
            h = nxt
        return h

    def _by_name(self, state: dict, name: bytes, occurrence: int) -> str:
        """P1 = 04: by DF name, right-truncated names allowed (ISO 7816-4 §7.1.1).

        Occurrence (P2 b2-b1): 00 first, 01 last, 10 next, 11 previous, in
        creation order and relative to the current DF.
        """
        if not 1 <= len(name) <= 16:
            raise CardError(SW.WRONG_LENGTH)
        matches = [h for n, h in self.applications() if n.startswith(name)]
        if not matches:
            raise CardError(SW.FILE_NOT_FOUND)
        if occurrence == 0:
            return matches[0]
        if occurrence == 1:
            return matches[-1]
        cur = state.get(self._s_df)
        if cur not in matches:
            return matches[0] if occurrence == 2 else matches[-1]
        i = matches.index(cur) + (1 if occurrence == 2 else -1)
        if not 0 <= i < len(matches):
            raise CardError(SW.FILE_NOT_FOUND)
        return matches[i]

    # -- STATUS (TS 102 221 §11.1.2) ---------------------------------------------------------

    def status(self, state: dict, p2: int, env: SecurityEnvironment | None = None) -> bytes:
        """STATUS: P2 00 the FCP of the current DF, 01 the DF name of the application, 0C none."""
        df = self.current_df(state)
        if p2 == 0x00:
            return df.fcp(self._pin_flags(df, env))
        if p2 == 0x01:
            app = self.current_application(state)
            if app is None or app.name is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            return bytes((0x84, len(app.name))) + app.name
        if p2 == 0x0C:
            return b""
        raise CardError(SW.INCORRECT_P1P2)

    def _cmd_status(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.status(state, cmd.p2, env)

    # -- READ / UPDATE BINARY (ISO 7816-4 §11.3.3, §11.3.5; TS 102 221 §11.1.3-4) -----------

    def _binary_target(self, state: dict, p1: int, p2: int) -> tuple[FileInfo, int]:
        if p1 & 0x80:
            # b8 = 1: b7-b6 = 00 and b5-b1 the SFI; P2 is the offset.
            if p1 & 0x60 or not p1 & 0x1F:
                raise CardError(SW.INCORRECT_P1P2)
            info = self._ef_by_sfi(state, p1 & 0x1F)
            offset = p2
        else:
            info = self.current_ef(state)
            offset = (p1 << 8) | p2
        if not info.is_transparent:
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        return info, offset

    def read_binary(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, ne: int | None
    ) -> bytes:
        """READ BINARY at a 15-bit offset, or at an 8-bit offset of an EF named by SFI.

        An offset past the end is 6B00. Fewer bytes than Ne left: those bytes
        with 6282, unless Le was 00 ("as many as available", ISO 7816-4 §5.1).
        """
        info, offset = self._binary_target(state, p1, p2)
        self._check_usable(info)
        if not info.free_ops & Op.READ:
            self.check_access(info, Op.READ, env)
        content = self._get(self._kd + info.handle)
        size = len(content)
        if offset >= size:
            raise CardError(SW.WRONG_P1P2)
        if ne is None or ne in _NE_MAX:
            n = 256 if ne is None else ne
            return content[offset : offset + n]
        end = offset + ne
        if end > size:
            raise CardError(SW.END_OF_FILE, content[offset:])
        return content[offset:end]

    def _cmd_read_binary(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.read_binary(state, env, cmd.p1, cmd.p2, cmd.ne)

    def update_binary(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, data: bytes
    ) -> None:
        """UPDATE BINARY: one write of the whole new content.

        An offset past the end is 6B00, data running past the end 6700.
        """
        info, offset = self._binary_target(state, p1, p2)
        self._check_usable(info)
        self.check_access(info, Op.UPDATE, env)
        if not data:
            raise CardError(SW.WRONG_LENGTH)
        content = self._get(self._kd + info.handle)
        size = len(content)
        if offset >= size:
            raise CardError(SW.WRONG_P1P2)
        end = offset + len(data)
        if end > size:
            raise CardError(SW.WRONG_LENGTH)
        self.store.set(self._kd + info.handle, content[:offset] + bytes(data) + content[end:])

    def _cmd_update_binary(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        self.update_binary(state, env, cmd.p1, cmd.p2, cmd.data)
        return b""

    # -- RETRIEVE DATA / SET DATA (ETSI TS 102 221 §11.3.1-2): BER-TLV EFs ------------------

    def _bertlv_target(self, state: dict, p1: int) -> FileInfo:
        if p1 & 0x80:
            # b8 = 1: b5-b1 name the EF by SFI (TS 102 221 §11.3.1.1).
            if p1 & 0x60 or not p1 & 0x1F:
                raise CardError(SW.INCORRECT_P1P2)
            info = self._ef_by_sfi(state, p1 & 0x1F)
        elif p1:
            raise CardError(SW.INCORRECT_P1P2)
        else:
            info = self.current_ef(state)
        if not info.is_bertlv:
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        return info

    def retrieve_data(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, data: bytes, ne: int | None
    ) -> bytes:
        """RETRIEVE DATA: P2 80 the first block (data: the tag), 00 the next one.

        The blocks carry the whole data object (tag, length, value); a block with
        more to come answers 62F1 (TS 102 221 §10.2.1.1). A tag the EF lacks is 6A88.
        """
        key = self.prefix + "retrieve"
        if p2 == 0x80:
            info = self._bertlv_target(state, p1)
            self._check_usable(info)
            self.check_access(info, Op.READ, env)
            try:
                tag, end = decode_tag(bytes(data), 0)
            except TlvError:
                raise CardError(SW.WRONG_DATA) from None
            if end != len(data):
                raise CardError(SW.WRONG_DATA)
            objects = dict(_split_objects(self._bertlv_content(info)))
            if tag not in objects:
                state.pop(key, None)
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            pending = objects[tag]
        elif p2 == 0x00:
            if p1 or data:
                raise CardError(SW.INCORRECT_P1P2)
            pending = state.get(key) or b""
            if not pending:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        else:
            raise CardError(SW.INCORRECT_P1P2)
        n = 256 if ne is None or ne in _NE_MAX else ne
        block, rest = pending[:n], pending[n:]
        state[key] = rest
        if rest:
            raise CardError(SW_MORE_DATA, block)
        return block

    def _cmd_retrieve_data(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.retrieve_data(state, env, cmd.p1, cmd.p2, cmd.data, cmd.ne)

    def set_data(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, data: bytes
    ) -> None:
        """SET DATA: P2 80 the first block (tag, length, value start; a tag alone deletes
        that data object), 00 the next one. The object is written when it is whole, in
        one write; the EF's reserved size bounds its content (6A84).
        """
        key = self.prefix + "set"
        data = bytes(data)
        if p2 == 0x80:
            info = self._bertlv_target(state, p1)
            self._check_usable(info)
            self.check_access(info, Op.UPDATE, env)
            state.pop(key, None)
            try:
                tag, pos = decode_tag(data, 0)
                if pos == len(data):
                    self._store_object(info, tag, None)
                    return
                length, pos = decode_length(data, pos)
            except TlvError:
                raise CardError(SW.WRONG_DATA) from None
            pending = (info.handle, tag, length, data[:pos], data[pos:])
        elif p2 == 0x00:
            if p1:
                raise CardError(SW.INCORRECT_P1P2)
            prev = state.get(key)
            if prev is None:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            handle, tag, length, head, value = prev
            pending = (handle, tag, length, head, value + data)
            info = self._info_or_raise(handle)
        else:
            raise CardError(SW.INCORRECT_P1P2)
        handle, tag, length, head, value = pending
        if len(value) > length:
            state.pop(key, None)
            raise CardError(SW.WRONG_LENGTH)
        if len(value) < length:
            state[key] = pending
            return
        state.pop(key, None)
        self._store_object(info, tag, head + value)

    def _store_object(self, info: FileInfo, tag: int, tlv: bytes | None) -> None:
        objects = [(t, o) for t, o in _split_objects(self._bertlv_content(info)) if t != tag]
        if tlv is not None:
            objects.append((tag, tlv))
        content = b"".join(o for _, o in objects)
        if len(content) > info.size:
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        self.store.set(self._kd + info.handle, content)

    def _bertlv_content(self, info: FileInfo) -> bytes:
        content = self._get(self._kd + info.handle)
        if not isinstance(content, bytes):  # the store broke card.fs's contract: a bug
            raise TypeError(f"{info.handle}: BER-TLV content is not bytes")
        return content

    def _cmd_set_data(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        self.set_data(state, env, cmd.p1, cmd.p2, cmd.data)
        return b""

    # -- Records (ISO 7816-4 §11.4; TS 102 221 §11.1.5-8) -----------------------------------

    def _record_target(self, state: dict, p2: int) -> FileInfo:
        sfi = p2 >> 3
        if sfi == 0x1F:
            raise CardError(SW.INCORRECT_P1P2)
        info = self._ef_by_sfi(state, sfi) if sfi else self.current_ef(state)
        if not info.is_record:
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        return info

    def read_record(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, ne: int | None
    ) -> bytes:
        """READ RECORD; P2 b8-b4 an SFI (0: current EF), b3-b1 the mode.

        Modes: 100 absolute (P1 the record, P1 = 00 the current record; the
        record pointer does not move), 010 next, 011 previous (the pointer
        moves; on a cyclic EF it wraps, on a linear fixed EF running off the
        end is 6A83). The pointer is unchanged when the command fails.
        """
        # The current EF (P2 b8-b4 zero) resolved with its records is kept while the
        # stored state is the same (the version): READ RECORD after READ RECORD.
        version = self._version
        now = None
        memo = self._rr_memo
        if p2 & 0xF8 == 0 and version is not None:
            now = version()
            h = state.get(self._s_ef)
            if h is not None and memo[0] == h and memo[1] == now:
                info, recs = memo[2], memo[3]
            else:
                info = self._record_target(state, p2)
                recs = self._get(self._kd + info.handle)
                self._rr_memo = (h, now, info, recs)
        else:
            info = self._record_target(state, p2)
            recs = self._get(self._kd + info.handle)
        self._check_usable(info)
        if not info.free_ops & Op.READ:
            self.check_access(info, Op.READ, env)
        number = self._navigate(state, info, p1, p2 & 0x07, len(recs))
        record = recs[number - 1]
        rl = len(record)
        if ne is not None and ne < rl:
            raise CardError(0x6C00 | (rl & 0xFF))
        if p2 & 0x07 != 0x04:
            state[self._s_rec] = number
        if ne is not None and ne > rl and ne not in _NE_MAX:
            raise CardError(SW.END_OF_FILE, record)
        if p2 == 0x04 and now is not None:
            # What this read found out (the current EF is a usable record EF the
            # environment may read) holds while the version, the environment and
            # the current EF stay: `read_record_prepared` answers the next ones.
            env_key = getattr(env, "cache_key", None)
            if env_key is not None:
                state[self._s_quick] = (
                    version,
                    now,
                    env_key,
                    state[self._s_ef],
                    self._kd + info.handle,
                )
        return record

    def read_record_prepared(
        self, state: dict, env_key: Hashable, p1: int, ne: int
    ) -> bytes | None:
        """READ RECORD of the current EF in absolute mode (P2 04), as the one before it.

        After a `read_record` with P2 04 succeeded on a channel, the next such
        command on it needs neither the EF's resolution nor its access decision
        again while nothing they depend on changed: the store's version (every
        write, delete and rollback: the file's metadata, EF.ARR, the PIN states),
        the security environment (`env_key`, its `cache_key`, compared by identity)
        and the channel's current EF (any SELECT). The record itself is read from
        the store every time. Returns the record (P1, or the current record for
        P1 00) when that is the whole answer: Ne equal to its length or "all";
        None otherwise (a changed state, no such record, another Ne: 6A83, 6Cxx and
        6282 are `read_record`'s), having changed nothing.
        """
        prepared = state.get(self._s_quick)
        if prepared is None:
            return None
        version, at, key, handle, kd = prepared
        if key is not env_key or version() != at or state.get(self._s_ef) != handle:
            return None
        recs = self._get(kd)
        number = p1 or state.get(self._s_rec, 0)
        if not 0 < number <= len(recs):
            return None
        record: bytes = recs[number - 1]
        if ne != len(record) and ne not in _NE_MAX:
            return None
        return record

    def _navigate(self, state: dict, info: FileInfo, p1: int, mode: int, n: int) -> int:
        cur = state.get(self._s_rec, 0)
        if mode == 0x04:
            number = p1 or cur
            if not 1 <= number <= n:
                raise CardError(SW.RECORD_NOT_FOUND)
            return number
        if mode == 0x02:
            if cur == 0:
                return 1
            if cur >= n:
                if info.is_cyclic:
                    return 1
                raise CardError(SW.RECORD_NOT_FOUND)
            return cur + 1
        if mode == 0x03:
            if cur == 0:
                return n
            if cur <= 1:
                if info.is_cyclic:
                    return n
                raise CardError(SW.RECORD_NOT_FOUND)
            return cur - 1
        raise CardError(SW.INCORRECT_P1P2)

    def _cmd_read_record(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.read_record(state, env, cmd.p1, cmd.p2, cmd.ne)

    def update_record(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, data: bytes
    ) -> None:
        """UPDATE RECORD; modes as READ RECORD. The data must fill the record (6700).

        On a cyclic EF only previous (011) is allowed: the oldest record is
        overwritten and becomes record 1, the current record (TS 102 221 §11.1.6).
        """
        info = self._record_target(state, p2)
        self._check_usable(info)
        self.check_access(info, Op.UPDATE, env)
        if len(data) != info.record_length:
            raise CardError(SW.WRONG_LENGTH)
        recs = self._get(self._kd + info.handle)
        mode = p2 & 0x07
        key = self._kd + info.handle
        if info.is_cyclic:
            if mode != 0x03:
                raise CardError(SW.INCORRECT_P1P2)
            self.store.set(key, (bytes(data),) + recs[:-1])
            state[self._s_rec] = 1
            return
        number = self._navigate(state, info, p1, mode, len(recs))
        self.store.set(key, recs[: number - 1] + (bytes(data),) + recs[number:])
        if mode != 0x04:
            state[self._s_rec] = number

    def _cmd_update_record(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        self.update_record(state, env, cmd.p1, cmd.p2, cmd.data)
        return b""

    def search_record(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, data: bytes
    ) -> bytes:
        """SEARCH RECORD (TS 102 221 §11.1.7): the numbers of the records holding a pattern.

        P2 b3-b1: 100 simple search forward from record P1, 101 backward from
        P1 (P1 = 00: the current record, or the first / last record when there
        is none), 110 enhanced search, whose data field starts with two bytes
        of search indication: b3 of the first byte 0 search from an offset, 1
        from the first occurrence of a byte value (the second byte); b2-b1 00
        forward from P1, 01 backward from P1, 10 forward from the record after
        the current one, 11 backward from the one before. The pattern may be
        anywhere from the start position of a record. The record pointer moves
        to the first record found; no match is 6282 with no data.
        """
        info = self._record_target(state, p2)
        self._check_usable(info)
        if not info.free_ops & Op.READ:
            self.check_access(info, Op.READ, env)
        recs = self._get(self._kd + info.handle)
        n = len(recs)
        cur = state.get(self._s_rec, 0)
        mode = p2 & 0x07
        by_value = False
        offset = 0
        if mode in (0x04, 0x05):
            pattern = data
            backward = mode == 0x05
            start = p1 or cur or (n if backward else 1)
        elif mode == 0x06:
            if len(data) < 3:
                raise CardError(SW.WRONG_LENGTH)
            indication, offset, pattern = data[0], data[1], data[2:]
            by_value = bool(indication & 0x04)
            how = indication & 0x03
            backward = bool(how & 0x01)
            if how < 2:
                start = p1 or cur or (n if backward else 1)
            else:
                start = (cur or (0 if not backward else n + 1)) + (-1 if backward else 1)
                if not 1 <= start <= n:
                    raise CardError(SW.RECORD_NOT_FOUND)
        else:
            raise CardError(SW.INCORRECT_P1P2)
        if not pattern or len(pattern) > info.record_length:
            raise CardError(SW.WRONG_LENGTH)
        if not 1 <= start <= n:
            raise CardError(SW.RECORD_NOT_FOUND)
        numbers = range(start, 0, -1) if backward else range(start, n + 1)
        found = bytearray()
        for number in numbers:
            rec = recs[number - 1]
            pos = offset
            if by_value:
                pos = rec.find(bytes((offset,)))
                if pos < 0:
                    continue
            if rec.find(pattern, pos) >= 0:
                found.append(number)
        if not found:
            raise CardError(SW.END_OF_FILE)
        state[self._s_rec] = found[0]
        return bytes(found)

    def _cmd_search_record(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.search_record(state, env, cmd.p1, cmd.p2, cmd.data)

    def increase(
        self, state: dict, env: SecurityEnvironment, p1: int, p2: int, data: bytes
    ) -> bytes:
        """INCREASE (TS 102 221 §11.1.8) on the current cyclic EF.

        Adds the value (big-endian, right-aligned, at most a record long) to
        record 1 and writes the sum as the new record 1 in the place of the
        oldest record. Returns the new record followed by the value added; an
        overflow is 9850. The access rule is AM DO '84' '32' if the file has
        one, else its UPDATE rule; the file must allow INCREASE.
        """
        if p1 or p2:
            raise CardError(SW.INCORRECT_P1P2)
        info = self.current_ef(state)
        if not info.is_cyclic or not info.flags & FLAG_INCREASE:
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        self._check_usable(info)
        self.check_access(info, Op.UPDATE, env, INS_INCREASE)
        rl = info.record_length
        if not 1 <= len(data) <= rl:
            raise CardError(SW.WRONG_LENGTH)
        recs = self._get(self._kd + info.handle)
        total = int.from_bytes(recs[0], "big") + int.from_bytes(data, "big")
        if total >> (8 * rl):
            raise CardError(SW_INCREASE_MAX)
        new = total.to_bytes(rl, "big")
        self.store.set(self._kd + info.handle, (new,) + recs[:-1])
        state[self._s_rec] = 1
        return new + bytes(data)

    def _cmd_increase(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        return self.increase(state, env, cmd.p1, cmd.p2, cmd.data)

    # -- DEACTIVATE / ACTIVATE FILE (ISO 7816-9 §8.3-8.4; TS 102 221 §11.1.14-15) ----------

    def set_activation(
        self,
        state: dict,
        env: SecurityEnvironment,
        p1: int,
        p2: int,
        data: bytes,
        activate: bool,
    ) -> None:
        """DEACTIVATE / ACTIVATE FILE: of the current EF (no data), or of the file
        the data field designates as SELECT would with that P1, which becomes current."""
        if p2:
            raise CardError(SW.INCORRECT_P1P2)
        if data:
            if p1 == 0x04:
                raise CardError(SW.INCORRECT_P1P2)
            info = self.select_file(state, self._resolve(state, p1, data))
        else:
            if p1:
                raise CardError(SW.INCORRECT_P1P2)
            info = self.current_ef(state)
        if info.lcs & 0xFC == 0x0C:
            raise CardError(SW.FILE_TERMINATED)
        self.check_access(info, Op.ACTIVATE if activate else Op.DEACTIVATE, env)
        lcs = 0x05 if activate else 0x04
        if info.lcs != lcs:
            meta = info.meta
            self.store.set(self._km + info.handle, meta[:M_LCS] + (lcs,) + meta[M_LCS + 1 :])

    def _cmd_deactivate(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        self.set_activation(state, env, cmd.p1, cmd.p2, cmd.data, False)
        return b""

    def _cmd_activate(self, state: dict, env: SecurityEnvironment, cmd: Command) -> bytes:
        self.set_activation(state, env, cmd.p1, cmd.p2, cmd.data, True)
        return b""


def _split_objects(content: bytes) -> list[tuple[int, bytes]]:
    """The (tag, whole TLV) of each data object of a BER-TLV EF's content.

    Raises:
        ValueError: the content is not BER-TLV objects back to back.
    """
    out: list[tuple[int, bytes]] = []
    pos = 0
    try:
        while pos < len(content):
            tag, p = decode_tag(content, pos)
            n, p = decode_length(content, p)
            if p + n > len(content):
                raise ValueError("a data object runs past the end")
            out.append((tag, content[pos : p + n]))
            pos = p + n
    except TlvError as e:
        raise ValueError(f"not BER-TLV data objects: {e}") from None
    return out


def _security_bytes(spec: SecuritySpec) -> bytes | None:
    if spec is None:
        return None
    if isinstance(spec, (bytes, bytearray)):
        security_from_tlv(bytes(spec))  # validates
        return bytes(spec)
    return spec.to_bytes()


def _pins(pins: Sequence[int | tuple[int, int | None]]) -> tuple[tuple[int, int | None], ...]:
    out = []
    for p in pins:
        if isinstance(p, tuple):
            out.append((int(p[0]), None if p[1] is None else int(p[1])))
        else:
            out.append((int(p), None))
    return tuple(out)
