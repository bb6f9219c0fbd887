"""How an installed profile is kept in the applet's persistent store.

Profile n lives under the keys "p<n>." of the applet's store:

    p<n>.meta        (iccid, name, provider, metadata, apps, pin refs, SD AIDs,
                      own-key app AIDs, seal)
    p<n>.auth        (algorithm, K, OPc, OP, RES length, IND bits, delta, L)
    p<n>.sqn         (SEQ_MS array, SQN_MS)        -- changed by AUTHENTICATE
    p<n>.auth.<AID>  the same two for an application with keys of its own
    p<n>.sqn.<AID>   (an ISIM with its own K, Profile.app_auth)
    p<n>.pin.<ref>   (PIN, limit, tries, enabled, PUK, PUK limit, PUK tries)
    p<n>.sd.<AID>    a security domain: identity, keys, perso data, SCP03 counter
    p<n>.rfm         the RFM instances' parameters (TARs, MSL, access domains)
    p<n>.cdma        the CDMA parameters
    p<n>.fs.*        the file tree (card.fs, kept compactly: card.uicc.fsstore)

Every value a command changes is one key, so each change is one atomic write: a
PIN try (PIN and PUK counters share one tuple), the SQN state, a file's content.
Installing and erasing a profile are many writes; the caller runs them in a
transaction.

The seal (`Slot.check`): the records written at install and never again (meta,
the AKA keys, RFM, CDMA) are sealed by a check value stored in meta, the install's
last write; the records commands change (SQN, PINs, security domains, the file
tree) are checked for their stored shape. A profile stored before seals existed
(meta of at most eight items) is checked by reading it back whole.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from card.crypto.milenage import AkaAlgorithm
from card.framework.system import Store as SystemStore
from card.fs import FileSystem
from card.fs.files import MF_HANDLE
from card.nvm import NVM, stored_form
from card.uicc.auth import SqnPolicy, SqnState, make_algorithm
from card.uicc.fsstore import CompactFsStore
from card.uicc.profile import (
    AppSpec,
    AuthSpec,
    FileSpec,
    PinSpec,
    Profile,
    RfmSpec,
    SdKey,
    SdSpec,
    files_from_fs,
    files_to_fs,
)
from card.uicc.ts_102_221 import pad_pin, unpad_pin


class Store(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> list[str]: ...


@dataclass(frozen=True)
class PinRecord:
    """The stored state of one PIN and its PUK (values padded to 8 bytes)."""

    value: bytes
    limit: int
    tries: int
    enabled: bool
    puk: bytes | None
    puk_limit: int
    puk_tries: int

    def to_value(self) -> tuple[Any, ...]:
        return (
            self.value,
            self.limit,
            self.tries,
            self.enabled,
            self.puk,
            self.puk_limit,
            self.puk_tries,
        )

    @classmethod
    def from_value(cls, v: tuple[Any, ...]) -> PinRecord:
        return cls(*v)

    def __repr__(self) -> str:
        return f"PinRecord(tries={self.tries}/{self.limit}, enabled={self.enabled}, <hidden>)"


#: What a build into an empty part of the store leaves there, per key (`build_once`):
#: the object the key stands for (kept, so an id stays its own) and the values.
_BUILT: dict[Any, tuple[Any, tuple[tuple[str, Any], ...]]] = {}
_BUILT_LIMIT = 8


def build_once(
    store: Store, prefix: str, key: Any, of: Any, build: Callable[[Store], None]
) -> None:
    """What `build(store)` leaves in the empty `prefix` part of `store`, stored key by key.

    `build` must read no key outside `prefix` and leave the same for the same `key`
    (`of` is the object the key names, compared by identity). It runs once per
    process, into a scratch NVM of its own; every card then stores the values it
    left, one write per key in the order the keys were left: the same writes on
    the first card of a process as on the next (a tear at write N means the same
    everywhere, so a fuzz finding replays), and fewer than a build into the card
    makes (card.fs rewrites a directory for each child, stores new content whole
    and then packed). The callers run inside a transaction (a profile's install,
    the applet's INSTALL), so no state in between is ever seen; what is stored,
    and the memory it takes, are the build's. Memory is checked against what the
    build leaves, not against the peak of a build's intermediate writes. The
    values are immutable and shared by every card that stores them, until one
    writes its own. A part of the store that holds keys already is built into
    directly.
    """
    if any(k.startswith(prefix) for k in store.keys()):
        build(store)
        return
    hit = _BUILT.get(key)
    if hit is None or hit[0] is not of:
        scratch = NVM(None, capacity=1 << 40)
        build(SystemStore(scratch, "build"))
        values = tuple(scratch.segment("build").items())
        if len(_BUILT) >= _BUILT_LIMIT:
            _BUILT.clear()
        hit = _BUILT[key] = (of, values)
    for k, value in hit[1]:
        store.set(k, value)


class DamagedProfile(Exception):
    """A stored profile fails its integrity check (`Slot.check`)."""


_SEAL_LABEL = b"cardemu profile seal v1"
_SEAL_INDEX = 8  # meta[8]; meta[:8] is what it seals, with the records below


def _canonical(value: Any, out: list[bytes]) -> None:
    """A stored value as unambiguous bytes: type-tagged and length-prefixed.

    Raises:
        TypeError: a value of a type NVM does not store (a damaged record).
    """
    t = type(value)
    if value is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"T" if value else b"F")
    elif t is int:
        out.append(b"I%d;" % value)
    elif t is str:
        raw = value.encode("utf-8", "surrogatepass")
        out.append(b"S%d:" % len(raw) + raw)
    elif t is bytes:
        out.append(b"B%d:" % len(value) + value)
    elif t is tuple:
        out.append(b"L%d:" % len(value))
        for v in value:
            _canonical(v, out)
    else:
        raise TypeError(f"a stored {t.__name__}")


def _is_iccid(value: str) -> bool:
    return value.isdigit() and value.isascii() and 1 <= len(value) <= 20


def _all(items: Any, ok: Callable[[Any], bool]) -> bool:
    return type(items) is tuple and all(ok(x) for x in items)


def _meta_shape_ok(meta: Any) -> bool:
    """Whether a stored metadata record has the shape `Slot.write` gives it: (iccid,
    name, provider, metadata pairs, application triples, PIN references[, SD AIDs[,
    own-key application AIDs[, seal]]]); records stored before the later items existed
    have six or seven."""
    if type(meta) is not tuple or len(meta) < 6:
        return False
    iccid, name, provider, metadata, apps, refs = meta[:6]
    return (
        type(iccid) is str
        and _is_iccid(iccid)
        and type(name) is str
        and type(provider) is str
        and _all(metadata, lambda kv: _all(kv, lambda x: type(x) is str) and len(kv) == 2)
        and _all(
            apps,
            lambda a: (
                type(a) is tuple
                and len(a) == 3
                and type(a[0]) is bytes
                and 5 <= len(a[0]) <= 16
                and type(a[1]) is str
                and type(a[2]) is bytes
            ),
        )
        and _all(refs, lambda r: type(r) is int)
        and all(_all(aids, lambda a: type(a) is bytes) for aids in meta[6:8])
    )


class Slot:
    """One installed profile: typed access to its keys."""

    __slots__ = (
        "store",
        "number",
        "prefix",
        "_meta_key",
        "fs",
        "_alg",
        "_pins",
        "_pin_values",
        "_sealed",
        "_listed",
    )

    _alg: dict[str, tuple[Any, AkaAlgorithm]]

    def __init__(
        self, store: Store, number: int, version: Callable[[], object] | None = None
    ) -> None:
        """`version`: the card's `nvm_version`, for the file system's reads (CompactFsStore)."""
        self.store = store
        self.number = number
        self.prefix = f"p{number}."
        self._meta_key = self.prefix + "meta"
        fs_prefix = self.prefix + "fs."
        self.fs = FileSystem(CompactFsStore(store, fs_prefix, version), fs_prefix)
        self._alg = {}
        #: per PIN reference: its key, and the last record read or written with its value
        self._pins: dict[int, tuple[str, Any, PinRecord | None]] = {}
        #: per PIN reference: the record last stored and its two stored tuples, as it is
        #: and with the counter one lower (VERIFY writes these again and again: the same
        #: objects are not rebuilt, and NVM does not check them again)
        self._pin_values: dict[int, tuple[PinRecord, tuple[Any, ...], int, tuple[Any, ...]]] = {}
        #: the sealed records (the stored objects themselves) last found to match the seal
        self._sealed: tuple[Any, ...] = ()
        #: the metadata record last found readable (`readable`)
        self._listed: Any = None

    # -- metadata and keys ---------------------------------------------------------

    @property
    def meta(self) -> tuple[Any, ...]:
        return self.store.get(self._meta_key)

    @property
    def iccid(self) -> str:
        return self.meta[0]

    @property
    def stored_iccid(self) -> str | None:
        """The ICCID the metadata record holds; None when the record is too damaged to
        name one (gone, not a tuple, or its first item not 1 to 20 digits)."""
        meta = self.meta
        if type(meta) is tuple and meta and type(meta[0]) is str and _is_iccid(meta[0]):
            return meta[0]
        return None

    def readable(self) -> bool:
        """Whether the metadata record has its stored shape: what listing the profile and
        finding its applications and security domains read (`list_profiles`, `apps`,
        `security_domains`). Not the seal: `check` is the whole integrity check. Asked at
        every command of the enabled profile: one read and an identity test."""
        meta = self.store.get(self._meta_key)
        if meta is self._listed and meta is not None:
            return True
        if not _meta_shape_ok(meta):
            return False
        self._listed = meta
        return True

    def apps(self) -> tuple[AppSpec, ...]:
        return tuple(AppSpec(aid, ref, params) for aid, ref, params in self.meta[4])

    def app_aids(self) -> tuple[bytes, ...]:
        """The AIDs of the profile's Java Card applications, none decoded: what a disable
        and a delete need (damage hides no instance).

        The metadata lists them; when the metadata record is damaged (`readable`),
        the slot's application records still name them, each stored under its AID
        ("p<n>.app.<AID>", as the SD records are), so the instances of a damaged
        profile can still be locked and deleted with it. A profile stored before these
        records existed has none: with its metadata damaged, its applications are
        not found.
        """
        if self.readable():
            return tuple(a[0] for a in self.meta[4])
        return self._aids_under(self.prefix + "app.")

    def _aids_under(self, prefix: str) -> tuple[bytes, ...]:
        """The AIDs that name the slot's keys "<prefix><AID hex>", in key order."""
        out = []
        for key in sorted(self.store.keys()):
            if key.startswith(prefix):
                try:
                    out.append(bytes.fromhex(key[len(prefix) :]))
                except ValueError:
                    continue  # not a key this store writes
        return tuple(out)

    def own_auth_aids(self) -> tuple[bytes, ...]:
        """The applications with AKA keys of their own (Profile.app_auth)."""
        return tuple(self.meta[7]) if len(self.meta) > 7 else ()

    def _suffix(self, aid: bytes | None) -> str:
        """The key suffix of the AKA state `aid` runs: its own, or the profile's ("")."""
        if aid is not None and aid in self.own_auth_aids():
            return "." + aid.hex().upper()
        return ""

    def algorithm(self, aid: bytes | None = None) -> AkaAlgorithm:
        """The AKA algorithm application `aid` runs (None: the USIM's, the profile's keys),
        rebuilt only when the keys change."""
        suffix = self._suffix(aid)
        auth = self.store.get(self.prefix + "auth" + suffix)
        cached = self._alg.get(suffix)
        if cached is not None and cached[0] == auth:
            return cached[1]
        name, k, opc, op, res_len = auth[:5]
        alg = make_algorithm(name, k, opc, op, res_len, *_tuak_options(auth))
        self._alg[suffix] = (auth, alg)
        return alg

    def sqn_policy(self, aid: bytes | None = None) -> SqnPolicy:
        auth = self.store.get(self.prefix + "auth" + self._suffix(aid))
        return SqnPolicy(auth[5], auth[6], auth[7])

    def sqn_state(self, aid: bytes | None = None) -> SqnState:
        seq, sqn_ms = self.store.get(self.prefix + "sqn" + self._suffix(aid))
        return SqnState(seq, sqn_ms)

    def set_sqn_state(self, state: SqnState, aid: bytes | None = None) -> None:
        self.store.set(self.prefix + "sqn" + self._suffix(aid), (state.seq, state.sqn_ms))

    def _pin_key(self, ref: int) -> tuple[str, Any, PinRecord | None]:
        entry = self._pins.get(ref)
        if entry is None:
            entry = self._pins[ref] = (f"{self.prefix}pin.{ref:02X}", None, None)
        return entry

    def pin(self, ref: int) -> PinRecord | None:
        # VERIFY reads the record it wrote last: the stored tuple is that very object
        # (NVM keeps a flat tuple as given), so the record is not rebuilt.
        key, raw, rec = self._pins.get(ref) or self._pin_key(ref)
        v = self.store.get(key)
        if v is None:
            return None
        if v is not raw or rec is None:
            rec = PinRecord.from_value(v)
            self._pins[ref] = (key, v, rec)
        return rec

    def set_pin_tries(self, ref: int, rec: PinRecord, tries: int) -> None:
        """Store `rec` with `tries` tries left (VERIFY's decrement: no record built)."""
        key = (self._pins.get(ref) or self._pin_key(ref))[0]
        memo = self._pin_values.get(ref)
        if memo is not None and memo[0] is rec and memo[2] == tries:
            value = memo[3]
        else:
            value = (
                rec.value,
                rec.limit,
                tries,
                rec.enabled,
                rec.puk,
                rec.puk_limit,
                rec.puk_tries,
            )
            if memo is not None and memo[0] is rec:
                self._pin_values[ref] = (rec, memo[1], tries, value)
        self.store.set(key, value)
        self._pins[ref] = (key, value, None)

    def set_pin(self, ref: int, rec: PinRecord) -> None:
        key = (self._pins.get(ref) or self._pin_key(ref))[0]
        memo = self._pin_values.get(ref)
        if memo is not None and memo[0] is rec:
            value = memo[1]
        else:
            value = rec.to_value()
            self._pin_values[ref] = (rec, value, -1, ())
        self.store.set(key, value)
        self._pins[ref] = (key, value, rec)

    # -- security domains, RFM, CDMA ----------------------------------------------------

    def security_domains(self) -> tuple[SdSpec, ...]:
        """The profile's security domains (the MNO-SD first), with their keys as they are now;
        one whose record is damaged is left out (`security_domain`)."""
        out = []
        for aid in self.sd_aids():
            sd = self.security_domain(aid)
            if sd is not None:
                out.append(sd)
        return tuple(out)

    def sd_aids(self) -> tuple[bytes, ...]:
        """The AIDs of the profile's security domains, no SD record decoded: what a delete
        and a switch need (a damaged SD record hides no instance).

        The metadata lists them; when the metadata record is damaged (`readable`), the
        slot's SD records still name them, each stored under its AID ("p<n>.sd.<AID>"),
        so the instances of a damaged profile can still be locked and deleted with it.
        """
        if self.readable():
            meta = self.meta
            return tuple(meta[6]) if len(meta) > 6 else ()
        return self._aids_under(self.prefix + "sd.")

    def security_domain(self, aid: bytes) -> SdSpec | None:
        """The security domain `aid` as stored; None if the slot has none, or a damaged
        record (one that does not unpack into an SdSpec: `check` finds it so)."""
        v = self.store.get(f"{self.prefix}sd.{aid.hex().upper()}")
        return None if v is None else _sd_from_value(v)

    def set_security_domain(self, sd: SdSpec) -> None:
        self.store.set(f"{self.prefix}sd.{sd.aid.hex().upper()}", _sd_to_value(sd))

    def rfm(self) -> tuple[RfmSpec, ...]:
        """The parameters of the profile's RFM instances (TCA SAIP PE-RFM)."""
        return tuple(RfmSpec(*v) for v in self.store.get(self.prefix + "rfm", ()))

    def cdma(self) -> tuple[tuple[str, bytes], ...]:
        return tuple(self.store.get(self.prefix + "cdma", ()))

    # -- install, export, erase ------------------------------------------------------

    def write(self, profile: Profile) -> None:
        """Store a whole profile in this (empty) slot."""
        self._write_files(profile.files)
        self._write_auth("", profile.auth)
        for aid, a in profile.app_auth:
            self._write_auth("." + aid.hex().upper(), a)
        for p in profile.pins:
            self.set_pin(
                p.ref,
                PinRecord(
                    pad_pin(p.value),
                    p.try_limit,
                    p.tries_left,
                    p.enabled,
                    None if p.puk is None else pad_pin(p.puk),
                    p.puk_try_limit,
                    p.puk_tries_left,
                ),
            )
        for sd in profile.security_domains:
            self.set_security_domain(sd)
        for app in profile.apps:  # (`app_aids`: found also with the metadata damaged)
            self.store.set(f"{self.prefix}app.{app.aid.hex().upper()}", True)
        if profile.rfm:
            self.store.set(
                self.prefix + "rfm",
                tuple(
                    (
                        r.instance_aid,
                        r.tars,
                        r.msl,
                        r.uicc_access_domain,
                        r.uicc_admin_access_domain,
                        r.adf_aid,
                        r.adf_access_domain,
                        r.adf_admin_access_domain,
                        r.sd_aid,
                    )
                    for r in profile.rfm
                ),
            )
        if profile.cdma:
            self.store.set(self.prefix + "cdma", profile.cdma)
        meta = (
            profile.iccid,
            profile.name,
            profile.provider,
            profile.metadata,
            tuple((x.aid, x.class_ref, x.params) for x in profile.apps),
            tuple(p.ref for p in profile.pins),
            tuple(sd.aid for sd in profile.security_domains),
            tuple(aid for aid, _ in profile.app_auth),
        )
        # The metadata goes last, sealed: a slot without it is not a profile yet.
        self.store.set(self.prefix + "meta", (*meta, self._seal(meta)))

    def _sealed_records(self, meta: tuple[Any, ...]) -> tuple[Any, ...]:
        """The stored objects the seal covers: meta, the AKA keys, RFM, CDMA."""
        store, prefix = self.store, self.prefix
        auths = tuple(store.get(f"{prefix}auth.{aid.hex().upper()}") for aid in meta[7])
        return (
            meta,
            store.get(prefix + "auth"),
            *auths,
            store.get(prefix + "rfm"),
            store.get(prefix + "cdma"),
        )

    def _seal(self, meta: tuple[Any, ...]) -> bytes:
        """The check value of the install-time records: meta[:8], the AKA keys, RFM, CDMA.

        None of them changes after the install, so one value written with the
        profile covers them for its life. 16 bytes of SHA-256 over a canonical
        encoding: an integrity check against damaged memory, not a MAC (whoever
        can write the store can write the seal too). Computed over the records'
        stored form (`card.nvm.stored_form`: what a read gives back), so the seal
        `write` makes from the metadata in memory is the one `check` recomputes from
        the stored metadata, whatever sequence types the metadata was built with.

        Raises:
            TypeError, ValueError, IndexError: a record of the wrong shape.
        """
        records = self._sealed_records(meta)
        out = [_SEAL_LABEL]
        _canonical(stored_form((records[0][:_SEAL_INDEX], *records[1:])), out)
        return hashlib.sha256(b"".join(out)).digest()[:16]

    def _seal_holds(self, meta: tuple[Any, ...]) -> bool:
        """Whether meta's seal matches; the very objects last found to match are not hashed
        again (stored values are immutable, and the memo holds them, so none is reused)."""
        records = self._sealed_records(meta)
        memo = self._sealed
        if len(memo) == len(records) and all(a is b for a, b in zip(memo, records, strict=True)):
            return True
        if not hmac.compare_digest(meta[_SEAL_INDEX], self._seal(meta)):
            return False
        self._sealed = records
        return True

    def check(self) -> None:
        """Whether the stored profile can be used: its seal, and the shape of what changes.

        Cheap (a few records, no file content read, nothing decoded whole): the
        records sealed at install must match their seal; each SQN state, PIN record
        and security domain the metadata names must be there and unpack; the MF's
        and every ADF's metadata and directory must unpack. A file deeper in the
        tree that is damaged shows when it is read, as on a card whose memory
        fails a read. A profile stored before seals existed is read back whole.

        Raises:
            DamagedProfile: the profile fails one of these.
        """
        try:
            meta = self.meta
            if len(meta) <= _SEAL_INDEX:
                self.read()
                return
            if not self._seal_holds(meta):
                raise DamagedProfile(f"profile {meta[0]}: the seal does not match")
            for aid in (None, *meta[7]):
                seq, sqn_ms = self.store.get(self.prefix + "sqn" + self._suffix(aid))
                if not (isinstance(seq, tuple) and isinstance(sqn_ms, int)):
                    raise DamagedProfile(f"profile {meta[0]}: SQN state")
            for ref in meta[5]:
                rec = self.pin(ref)
                if rec is None or not isinstance(rec.value, bytes):
                    raise DamagedProfile(f"profile {meta[0]}: PIN {ref:02X}")
            for aid in meta[6]:
                if self.security_domain(aid) is None:
                    raise DamagedProfile(f"profile {meta[0]}: security domain {aid.hex()}")
            fs = self.fs
            for handle in (MF_HANDLE, *(h for _name, h in fs.applications())):
                if fs.info(handle) is None:
                    raise DamagedProfile(f"profile {meta[0]}: file {handle}")
                fs.child(handle, 0x3F00)  # no DF has the MF as a child: decodes the directory
        except DamagedProfile:
            raise
        except Exception as e:  # whatever a damaged record makes a read raise
            raise DamagedProfile(f"profile {self.number}: {type(e).__name__}") from None

    def _write_auth(self, suffix: str, a: AuthSpec) -> None:
        seq = SqnState.initial(a.policy, a.sqn_ms, a.seq).seq
        self.store.set(
            self.prefix + "auth" + suffix,
            (
                a.algorithm,
                a.k,
                a.opc,
                a.op,
                a.res_len,
                a.ind_bits,
                a.delta,
                a.age_limit,
                (a.keccak_iterations, a.ck_len, a.ik_len),
            ),
        )
        self.store.set(self.prefix + "sqn" + suffix, (seq, a.sqn_ms))

    def _read_auth(self, aid: bytes | None) -> AuthSpec:
        auth = self.store.get(self.prefix + "auth" + self._suffix(aid))
        algorithm, k, opc, op, res_len, ind_bits, delta, age_limit = auth[:8]
        state = self.sqn_state(aid)
        iterations, ck_len, ik_len = _tuak_options(auth)
        return AuthSpec(
            k=k,
            opc=opc,
            op=op,
            algorithm=algorithm,
            res_len=res_len,
            ind_bits=ind_bits,
            delta=delta,
            age_limit=age_limit,
            keccak_iterations=iterations,
            ck_len=ck_len,
            ik_len=ik_len,
            seq=state.seq,
            sqn_ms=state.sqn_ms,
        )

    def _write_files(self, files: tuple[FileSpec, ...]) -> None:
        """`files_to_fs` into this slot's file system, built once per tree (`build_once`)."""
        prefix = self.prefix + "fs."

        def build(store: Store) -> None:
            files_to_fs(FileSystem(CompactFsStore(store, prefix), prefix), files)

        build_once(self.store, prefix, ("files", id(files), prefix), files, build)

    def read(self) -> Profile:
        """The profile as it is now (files, counters and SQN state included)."""
        iccid, name, provider, metadata, apps, refs = self.meta[:6]
        pins = []
        for ref in refs:
            r = self.pin(ref)
            if r is None:
                continue
            pins.append(
                PinSpec(
                    ref,
                    unpad_pin(r.value),
                    r.limit,
                    r.tries,
                    r.enabled,
                    None if r.puk is None else unpad_pin(r.puk),
                    r.puk_limit,
                    r.puk_tries,
                )
            )
        return Profile(
            iccid=iccid,
            auth=self._read_auth(None),
            app_auth=tuple((aid, self._read_auth(aid)) for aid in self.own_auth_aids()),
            files=files_from_fs(self.fs),
            pins=tuple(pins),
            name=name,
            provider=provider,
            apps=tuple(AppSpec(aid, ref, params) for aid, ref, params in apps),
            metadata=metadata,
            security_domains=self.security_domains(),
            rfm=self.rfm(),
            cdma=self.cdma(),
        )

    def erase(self) -> None:
        """Delete every key of the slot (the metadata first: the slot stops being a profile)."""
        self.store.delete(self.prefix + "meta")
        for key in self.store.keys():
            if key.startswith(self.prefix):
                self.store.delete(key)


def _sd_to_value(sd: SdSpec) -> tuple[Any, ...]:
    return (
        sd.aid,
        sd.package_aid,
        sd.class_aid,
        sd.privileges,
        sd.lifecycle,
        tuple((k.kvn, k.kid, k.usage, k.access, k.components) for k in sd.keys),
        sd.install_params,
        sd.toolkit_params,
        sd.perso,
        sd.sequence_counter,
        sd.ota_counters,
    )


def _is_int(x: Any) -> bool:
    return type(x) is int


def _is_bytes(x: Any) -> bool:
    return type(x) is bytes


def _sd_key_shape_ok(k: Any) -> bool:
    """(KVN, KID, usage, access, ((key type, value), ...)) as `_sd_to_value` stores a key."""
    return (
        type(k) is tuple
        and len(k) == 5
        and all(_is_int(x) for x in k[:4])
        and _all(
            k[4], lambda c: type(c) is tuple and len(c) == 2 and _is_int(c[0]) and _is_bytes(c[1])
        )
    )


def _sd_shape_ok(v: Any) -> bool:
    """Whether a stored SD record has the shape and field types `_sd_to_value` gives it
    (as `_meta_shape_ok` for the metadata): a record of the right length with a field
    of another type would pass an unpacking and fail later, in the SD's own commands
    (INITIALIZE UPDATE reading a key). Records stored before the OTA counters have 10."""
    if type(v) is not tuple or len(v) not in (10, 11):
        return False
    aid, package, cls, priv, lcs, keys, params, toolkit, perso, counter = v[:10]
    return (
        all(_is_bytes(x) for x in (aid, package, cls, priv, params))
        and _is_int(lcs)
        and _all(keys, _sd_key_shape_ok)
        and (toolkit is None or _is_bytes(toolkit))
        and _all(perso, _is_bytes)
        and _is_int(counter)
        and (
            len(v) == 10
            or _all(v[10], lambda c: type(c) is tuple and len(c) == 2 and all(map(_is_int, c)))
        )
    )


def _sd_from_value(v: Any) -> SdSpec | None:
    """The SdSpec a stored SD record holds; None for a record of another shape or with a
    field of another type (`_sd_shape_ok`: damaged), which `check` finds so.

    The unpacking is guarded too (ValueError: an AID of the wrong length, two keys
    with one identifier): a record is data, and a damaged one is an answer, not a
    fault.
    """
    if not _sd_shape_ok(v):
        return None
    try:
        aid, package, cls, priv, lcs, keys, params, toolkit, perso, counter = v[:10]
        return SdSpec(
            aid,
            package,
            cls,
            priv,
            lcs,
            tuple(SdKey(*k) for k in keys),
            params,
            toolkit,
            perso,
            counter,
            v[10] if len(v) > 10 else (),
        )
    except (TypeError, ValueError):
        return None


def _tuak_options(auth: tuple[Any, ...]) -> tuple[int, int, int]:
    """TUAK's (Keccak iterations, CK length, IK length); images written before TUAK
    hold 8 fields."""
    if len(auth) > 8:
        iterations, ck_len, ik_len = auth[8]
        return int(iterations), int(ck_len), int(ik_len)
    return 1, 16, 16
