"""The internal profile format: one subscription, as exported, imported and moved.

A `Profile` holds everything of one subscription: ICCID, the authentication
keys and algorithm (K, OPc or OP, Milenage or the TS 34.108 XOR test
algorithm), the SQN state, the PINs with their counters, the whole file tree
(MF, EF.DIR, ADF.USIM, DF.TELECOM ... with every file's control parameters and
content), and the applications installed with it. `to_bytes()` is the export
format (canonical JSON, bytes as hex, a format name and a version); `from_bytes`
validates everything before a card accepts it; `describe()` is the readable
summary `cardemu card info` prints, with no secret in it.

The file tree is kept as the card's file system sees it (card.fs): one
`FileSpec` per file, in creation order (a parent before its children), which
`files_from_fs` reads from a file system and `files_to_fs` creates in one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, overload

from card.fs import FileSystem, Structure
from card.fs.files import MF_HANDLE
from card.uicc.auth import (
    ALGORITHMS,
    DEFAULT_DELTA,
    DEFAULT_IND_BITS,
    TUAK_RES_LENGTHS,
    SqnPolicy,
)
from card.uicc.ts_31_102 import (
    decode_dialling_number,
    decode_imsi,
    decode_service_table,
    decode_spn,
    service_file_mismatches,
)
from card.uicc.ts_102_221 import (
    PIN_LENGTH,
    USIM_AID_PREFIX,
    decode_dir_record,
)

FORMAT_NAME = "cardemu-profile"
FORMAT_VERSION = 1
#: Refuse imports bigger than this (an import arrives from outside the card).
MAX_PROFILE_BYTES = 1 << 20

# Where the standard files are, relative to the ADF of the USIM.
EF_IMSI = 0x6F07
EF_UST = 0x6F38
EF_SPN = 0x6F46
EF_MSISDN = 0x6F40
EF_ICCID = 0x2FE2
EF_DIR = 0x2F00


class ProfileFormatError(ValueError):
    """The bytes are not a valid profile (or a field is out of range)."""


@dataclass(frozen=True)
class FileSpec:
    """One file of the tree, as card.fs keeps it (see card.fs.files.meta_tuple)."""

    handle: str
    parent: str | None
    fdb: int
    fid: int | None
    sfi: int = 0
    name: bytes | None = None
    lcs: int = 0x05
    size: int = 0
    record_length: int = 0
    records: int = 0
    security: bytes | None = None
    flags: int = 0
    pins: tuple[tuple[int, int | None], ...] = ()
    proprietary: bytes | None = None
    total_size: int | None = None
    content: bytes | tuple[bytes, ...] | None = None
    #: a linked EF (TS 102 222 §6.3): the handle of the EF whose content it shares
    link: str | None = None

    @property
    def is_df(self) -> bool:
        return self.fdb & 0x3F == 0x38  # '39' is a BER-TLV EF (ISO 7816-4 Table 14)

    @property
    def structure(self) -> int:
        return self.fdb & 0x3F if self.fdb & 0x38 == 0x38 else self.fdb & 0x07


@dataclass(frozen=True)
class PinSpec:
    """A PIN (key reference of TS 102 221 Table 9.3) with its PUK, if it has one.

    Values are the PIN as typed (ASCII digits for PINs, up to 8 bytes); the card
    pads them with FF. `tries`/`puk_tries` are the remaining attempts.
    """

    ref: int
    value: bytes
    try_limit: int = 3
    tries: int | None = None
    enabled: bool = True
    puk: bytes | None = None
    puk_try_limit: int = 10
    puk_tries: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.ref <= 0xFF:
            raise ProfileFormatError("a key reference is one byte")
        for v in (self.value, self.puk):
            if v is not None and not 1 <= len(v) <= PIN_LENGTH:
                raise ProfileFormatError(f"a PIN or PUK has 1 to {PIN_LENGTH} bytes")
        for limit, left in ((self.try_limit, self.tries), (self.puk_try_limit, self.puk_tries)):
            if not 1 <= limit <= 15 or (left is not None and not 0 <= left <= limit):
                raise ProfileFormatError("try limits are 1..15, remaining tries 0..limit")

    @property
    def tries_left(self) -> int:
        return self.try_limit if self.tries is None else self.tries

    @property
    def puk_tries_left(self) -> int:
        return self.puk_try_limit if self.puk_tries is None else self.puk_tries

    def __repr__(self) -> str:
        return f"PinSpec(ref={self.ref:02X}, tries={self.tries_left}/{self.try_limit}, <hidden>)"


@dataclass(frozen=True)
class AuthSpec:
    """The authentication algorithm, its keys and the SQN state (TS 33.102 §6.3, Annex C)."""

    k: bytes
    opc: bytes | None = None
    op: bytes | None = None
    algorithm: str = "milenage"
    res_len: int = 8
    ind_bits: int = DEFAULT_IND_BITS
    delta: int | None = DEFAULT_DELTA
    age_limit: int | None = None
    seq: tuple[int, ...] = ()
    sqn_ms: int = 0
    #: TUAK only (TS 35.231 §6.1): how many times Keccak-f[1600] is applied.
    keccak_iterations: int = 1
    #: TUAK only (TS 35.231 §6.4): CK and IK lengths, 16 or 32 bytes.
    ck_len: int = 16
    ik_len: int = 16

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ProfileFormatError(f"unknown algorithm {self.algorithm!r}")
        tuak = self.algorithm == "tuak"
        if len(self.k) not in ((16, 32) if tuak else (16,)):
            raise ProfileFormatError("K is 16 bytes (TUAK: 16 or 32)")
        if self.algorithm != "xor" and (self.opc is None) == (self.op is None):
            raise ProfileFormatError(f"{self.algorithm} needs exactly one of OPc and OP")
        for v in (self.opc, self.op):
            if v is not None and len(v) != (32 if tuak else 16):
                raise ProfileFormatError("OP and OPc are 16 bytes (TUAK's TOP and TOPc: 32)")
        if tuak:
            if self.res_len not in TUAK_RES_LENGTHS:
                raise ProfileFormatError("TUAK's RES length is 4, 8, 16 or 32 bytes")
        elif not 4 <= self.res_len <= 16:
            raise ProfileFormatError("RES length is 4..16 bytes")
        if not 1 <= self.keccak_iterations <= 255:
            raise ProfileFormatError("the Keccak iteration count is 1..255")
        if (self.ck_len, self.ik_len) != (16, 16) and not (
            tuak and self.ck_len in (16, 32) and self.ik_len in (16, 32)
        ):
            raise ProfileFormatError("CK and IK are 16 bytes (TUAK: 16 or 32)")
        try:
            SqnPolicy(self.ind_bits, self.delta, self.age_limit)
        except ValueError as e:
            raise ProfileFormatError(str(e)) from None
        if self.seq and len(self.seq) != 1 << self.ind_bits:
            raise ProfileFormatError("the SEQ array has 2^ind_bits entries")
        if any(not 0 <= s < 1 << 48 for s in self.seq) or not 0 <= self.sqn_ms < 1 << 48:
            raise ProfileFormatError("SEQ values and SQN_MS are 48-bit numbers")

    @property
    def policy(self) -> SqnPolicy:
        return SqnPolicy(self.ind_bits, self.delta, self.age_limit)

    def __repr__(self) -> str:
        return f"AuthSpec({self.algorithm}, <K/OP/OPc hidden>, sqn_ms={self.sqn_ms:#x})"


@dataclass(frozen=True)
class AppSpec:
    """An application installed with the profile: AID, catalogue class reference, parameters."""

    aid: bytes
    class_ref: str
    params: bytes = b""

    def __post_init__(self) -> None:
        if not 5 <= len(self.aid) <= 16:
            raise ProfileFormatError("an AID has 5 to 16 bytes")


@dataclass(frozen=True)
class SdKey:
    """One key of a security domain (GPC v2.3.1 §11.8.2.3 key data; SAIP PE-SecurityDomain).

    `components` are (key type, key value): '80' DES, '88' AES, ... (GPC Table 11-16).
    """

    kvn: int
    kid: int
    usage: int
    access: int
    components: tuple[tuple[int, bytes], ...]

    def __repr__(self) -> str:
        return f"SdKey(kvn={self.kvn:02X}, kid={self.kid:02X}, <hidden>)"


@dataclass(frozen=True)
class SdSpec:
    """A security domain of the profile (the MNO-SD, or an SSD): TCA SAIP PE-SecurityDomain.

    `install_params` is the C9 system-specific parameters field (TS 102 226 §8.2.1.3:
    SCP80 parameters, ...), `toolkit_params` the UICC toolkit parameters (EA),
    `perso` the STORE DATA blocks (sdPersoData) the SD was personalised with, and
    `sequence_counter` the SCP03 counter (Amendment D §6.2.2.1) and `ota_counters`
    the SCP80 replay counter of each key version (TS 102 225 §5.1.1), which move.
    """

    aid: bytes
    package_aid: bytes
    class_aid: bytes
    privileges: bytes
    lifecycle: int
    keys: tuple[SdKey, ...] = ()
    install_params: bytes = b""
    toolkit_params: bytes | None = None
    perso: tuple[bytes, ...] = ()
    sequence_counter: int = 0
    ota_counters: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not 5 <= len(self.aid) <= 16:
            raise ProfileFormatError("an AID has 5 to 16 bytes")
        if len({(k.kvn, k.kid) for k in self.keys}) != len(self.keys):
            raise ProfileFormatError("two keys with the same version and identifier")

    def __repr__(self) -> str:
        return f"SdSpec({self.aid.hex().upper()}, {len(self.keys)} keys)"


@dataclass(frozen=True)
class RfmSpec:
    """Remote File Management parameters of one RFM instance (TCA SAIP PE-RFM; TS 102 226 §8).

    `tars` are the TARs (3 bytes each) the OTA layer routes to this instance; `msl`
    the minimum security level (TS 102 225 §5.1.1); access domains as TS 102 226
    §8.2.1.3.2.4 codes them. `adf_aid` names the ADF whose files the instance may
    manage (None: the UICC's shared files, under the MF). `sd_aid` the security
    domain whose keys protect it (None: the MNO-SD).
    """

    instance_aid: bytes
    tars: tuple[bytes, ...]
    msl: int
    uicc_access_domain: bytes
    uicc_admin_access_domain: bytes
    adf_aid: bytes | None = None
    adf_access_domain: bytes | None = None
    adf_admin_access_domain: bytes | None = None
    sd_aid: bytes | None = None

    def __post_init__(self) -> None:
        if any(len(t) != 3 for t in self.tars):
            raise ProfileFormatError("a TAR is 3 bytes")
        if not 0 <= self.msl <= 0xFF:
            raise ProfileFormatError("the minimum security level is one byte")


@dataclass(frozen=True)
class Profile:
    """One subscription (see the module docstring)."""

    iccid: str
    auth: AuthSpec
    files: tuple[FileSpec, ...]
    pins: tuple[PinSpec, ...] = ()
    name: str = ""
    provider: str = ""
    apps: tuple[AppSpec, ...] = ()
    metadata: tuple[tuple[str, str], ...] = field(default=())
    security_domains: tuple[SdSpec, ...] = ()
    rfm: tuple[RfmSpec, ...] = ()
    #: CDMA parameters (TCA SAIP PE-CDMAParameter): (field name, value), secrets included
    cdma: tuple[tuple[str, bytes], ...] = ()
    #: AKA parameters of an application with keys of its own, by its ADF's AID (an ISIM
    #: with its own K/OPc: a SAIP akaParameter for the ISIM, `auth_for`). An application
    #: not listed runs `auth` and its SQN state, as real profiles' ISIMs mostly do.
    app_auth: tuple[tuple[bytes, AuthSpec], ...] = ()

    def __post_init__(self) -> None:
        if not (self.iccid.isdigit() and self.iccid.isascii() and 1 <= len(self.iccid) <= 20):
            raise ProfileFormatError(f"an ICCID is 1 to 20 digits, not {self.iccid!r}")
        if len({p.ref for p in self.pins}) != len(self.pins):
            raise ProfileFormatError("two PINs with the same key reference")
        handles = [f.handle for f in self.files]
        if len(set(handles)) != len(handles):
            raise ProfileFormatError("two files with the same path")
        if not self.files or self.files[0].handle != MF_HANDLE:
            raise ProfileFormatError("the file tree starts with the MF")
        if len({d.aid for d in self.security_domains}) != len(self.security_domains):
            raise ProfileFormatError("two security domains with the same AID")
        adf_names = {f.name for f in self.files if f.parent == MF_HANDLE and f.name}
        if len({aid for aid, _ in self.app_auth}) != len(self.app_auth):
            raise ProfileFormatError("two sets of AKA parameters for one application")
        for aid, _ in self.app_auth:
            if aid not in adf_names or aid.startswith(USIM_AID_PREFIX):
                raise ProfileFormatError(
                    f"AKA parameters for {aid.hex().upper()}, no ADF of the profile but the USIM's"
                )
        by_handle = {f.handle: f for f in self.files}
        for f in self.files:
            if f.link is None:
                continue
            t = by_handle.get(f.link)
            if t is None or t.link is not None or t.is_df or f.is_df:
                raise ProfileFormatError(f"{f.handle}: links to no EF of the profile")
            if (t.fdb & 0x07, t.size, t.record_length) != (f.fdb & 0x07, f.size, f.record_length):
                raise ProfileFormatError(f"{f.handle}: not the same structure as {f.link}")

    def __repr__(self) -> str:
        return f"Profile(iccid={self.iccid}, name={self.name!r}, {len(self.files)} files)"

    # -- looking inside ----------------------------------------------------------------

    def file(self, handle: str) -> FileSpec | None:
        return next((f for f in self.files if f.handle == handle), None)

    def auth_for(self, aid: bytes) -> AuthSpec:
        """The AKA parameters the application `aid` runs: its own, or the profile's.

        TS 31.103 §7.1.2 runs IMS AKA on the ISIM with the algorithm of TS 33.102 and
        leaves which K the ISIM holds to the issuer. Real profiles mostly give the ISIM
        the USIM's subscription (one K, one SQN state: TS.48 and operator profiles carry
        one akaParameter); a profile may give it its own (`app_auth`).
        """
        return next((a for x, a in self.app_auth if x == aid), self.auth)

    def usim_adf(self) -> FileSpec | None:
        """The ADF of the USIM (DF name starting A0000000871002), if the profile has one."""
        return next(
            (
                f
                for f in self.files
                if f.parent == MF_HANDLE and f.name and f.name.startswith(USIM_AID_PREFIX)
            ),
            None,
        )

    def usim_file(self, fid: int) -> FileSpec | None:
        adf = self.usim_adf()
        return None if adf is None else self.file(f"{adf.handle}/{fid:04X}")

    @property
    def imsi(self) -> str | None:
        f = self.usim_file(EF_IMSI)
        try:
            return decode_imsi(f.content) if f and isinstance(f.content, bytes) else None
        except ValueError:
            return None

    @property
    def msisdn(self) -> str | None:
        f = self.usim_file(EF_MSISDN)
        if f is None or not isinstance(f.content, tuple) or not f.content:
            return None
        try:
            entry = decode_dialling_number(f.content[0])
        except ValueError:
            return None
        return entry.number if entry else None

    @property
    def spn(self) -> str | None:
        f = self.usim_file(EF_SPN)
        try:
            return decode_spn(f.content).name if f and isinstance(f.content, bytes) else None
        except ValueError:
            return None

    def services(self) -> frozenset[int]:
        f = self.usim_file(EF_UST)
        if f is None or not isinstance(f.content, bytes):
            return frozenset()
        return decode_service_table(f.content)

    def service_file_mismatches(self) -> list[str]:
        """Where EF.UST and the files of ADF.USIM disagree (ts_31_102.SERVICE_FILES)."""
        adf = self.usim_adf()
        if adf is None:
            return []
        prefix = adf.handle + "/"
        present = [f.handle[len(prefix) :] for f in self.files if f.handle.startswith(prefix)]
        return service_file_mismatches(self.services(), present)

    def applications(self) -> tuple[bytes, ...]:
        """The AIDs EF.DIR lists."""
        f = self.file(f"{MF_HANDLE}/{EF_DIR:04X}")
        out = []
        if f is not None and isinstance(f.content, tuple):
            for rec in f.content:
                try:
                    t = decode_dir_record(rec)
                except ValueError:
                    continue
                if t is not None:
                    out.append(t.aid)
        return tuple(out)

    def without_secrets(self) -> Profile:
        """The same profile with K, OP/OPc and the PIN/PUK values zeroed (for display)."""

        def hide(a: AuthSpec) -> AuthSpec:
            return replace(
                a,
                k=bytes(len(a.k)),
                opc=None if a.opc is None else bytes(len(a.opc)),
                op=None if a.op is None else bytes(len(a.op)),
            )

        auth = hide(self.auth)
        app_auth = tuple((aid, hide(a)) for aid, a in self.app_auth)
        pins = tuple(replace(p, value=b"0", puk=None if p.puk is None else b"0") for p in self.pins)
        sds = tuple(
            replace(
                d,
                keys=tuple(
                    replace(k, components=tuple((t, bytes(len(v))) for t, v in k.components))
                    for k in d.keys
                ),
            )
            for d in self.security_domains
        )
        cdma = tuple((n, bytes(len(v))) for n, v in self.cdma)
        return replace(
            self, auth=auth, app_auth=app_auth, pins=pins, security_domains=sds, cdma=cdma
        )

    def describe(self) -> dict[str, Any]:
        """A readable summary with stable keys, no secret in it."""
        adf = self.usim_adf()
        return {
            "iccid": self.iccid,
            "name": self.name,
            "provider": self.provider,
            "imsi": self.imsi,
            "msisdn": self.msisdn,
            "spn": self.spn,
            "usim_aid": adf.name.hex().upper() if adf and adf.name else None,
            "algorithm": self.auth.algorithm,
            "key_form": "OP" if self.auth.op is not None else "OPc",
            "sqn_ms": self.auth.sqn_ms,
            "own_keys": [
                {"aid": aid.hex().upper(), "algorithm": a.algorithm} for aid, a in self.app_auth
            ],
            "services": sorted(self.services()),
            "pins": {
                f"{p.ref:02X}": {"enabled": p.enabled, "tries": p.tries_left} for p in self.pins
            },
            "files": len(self.files),
            "apps": [{"aid": a.aid.hex().upper(), "class": a.class_ref} for a in self.apps],
            "security_domains": [
                {"aid": d.aid.hex().upper(), "keys": len(d.keys)} for d in self.security_domains
            ],
            "rfm": [
                {"aid": r.instance_aid.hex().upper(), "tars": [t.hex().upper() for t in r.tars]}
                for r in self.rfm
            ],
            "metadata": dict(self.metadata),
        }

    # -- the export format -----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The export format: canonical JSON (sorted keys, no spaces), UTF-8."""
        doc = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "profile": _profile_doc(self)}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Parse and validate an exported profile.

        Raises:
            ProfileFormatError: anything wrong, including a newer format version.
        """
        if len(data) > MAX_PROFILE_BYTES:
            raise ProfileFormatError("profile too large")
        try:
            doc = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ProfileFormatError(f"not a profile: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise ProfileFormatError("not a cardemu profile")
        if doc.get("version") != FORMAT_VERSION:
            raise ProfileFormatError(f"profile format version {doc.get('version')!r} unsupported")
        try:
            return _profile_from_doc(doc["profile"])
        except ProfileFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProfileFormatError(f"malformed profile: {e!r}") from None


# -- JSON mapping ---------------------------------------------------------------------------


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


@overload
def _unhex(s: Any, *, optional: Literal[False] = False) -> bytes: ...
@overload
def _unhex(s: Any, *, optional: bool) -> bytes | None: ...
def _unhex(s: Any, *, optional: bool = False) -> bytes | None:
    if s is None and optional:
        return None
    if not isinstance(s, str):
        raise ProfileFormatError(f"expected a hex string, got {type(s).__name__}")
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise ProfileFormatError(f"not hex: {s[:40]!r}") from None


@overload
def _int(v: Any, lo: int, hi: int, *, optional: Literal[False] = False) -> int: ...
@overload
def _int(v: Any, lo: int, hi: int, *, optional: bool) -> int | None: ...
def _int(v: Any, lo: int, hi: int, *, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ProfileFormatError(f"expected an integer {lo}..{hi}, got {v!r}")
    return v


def _str(v: Any, limit: int = 256) -> str:
    if not isinstance(v, str) or len(v) > limit:
        raise ProfileFormatError(f"expected a string of at most {limit} characters")
    return v


def _file_doc(f: FileSpec) -> dict[str, Any]:
    content: Any
    if f.content is None:
        content = None
    elif isinstance(f.content, bytes):
        content = f.content.hex()
    else:
        content = [r.hex() for r in f.content]
    return {
        "handle": f.handle,
        "parent": f.parent,
        "fdb": f.fdb,
        "fid": f.fid,
        "sfi": f.sfi,
        "name": _hex(f.name),
        "lcs": f.lcs,
        "size": f.size,
        "record_length": f.record_length,
        "records": f.records,
        "security": _hex(f.security),
        "flags": f.flags,
        "pins": [[r, q] for r, q in f.pins],
        "proprietary": _hex(f.proprietary),
        "total_size": f.total_size,
        "content": content,
        "link": f.link,
    }


def _file_from_doc(d: dict[str, Any]) -> FileSpec:
    content = d["content"]
    if content is None:
        c: bytes | tuple[bytes, ...] | None = None
    elif isinstance(content, list):
        c = tuple(_unhex(r) for r in content)
    else:
        c = _unhex(content)
    parent = d["parent"]
    if parent is not None:
        parent = _str(parent, 200)
    return FileSpec(
        handle=_str(d["handle"], 200),
        parent=parent,
        fdb=_int(d["fdb"], 0, 0xFF),
        fid=_int(d["fid"], 0, 0xFFFF, optional=True),
        sfi=_int(d["sfi"], 0, 30),
        name=_unhex(d["name"], optional=True),
        lcs=_int(d["lcs"], 0, 0xFF),
        size=_int(d["size"], 0, 0x7FFF),
        record_length=_int(d["record_length"], 0, 255),
        records=_int(d["records"], 0, 254),
        security=_unhex(d["security"], optional=True),
        flags=_int(d["flags"], 0, 0xFF),
        pins=tuple((_int(r, 0, 0xFF), _int(q, 0, 0xFF, optional=True)) for r, q in d["pins"]),
        proprietary=_unhex(d["proprietary"], optional=True),
        total_size=_int(d["total_size"], 0, 0xFFFFFFFF, optional=True),
        content=c,
        link=None if d.get("link") is None else _str(d["link"], 200),
    )


def _auth_doc(a: AuthSpec) -> dict[str, Any]:
    return {
        "algorithm": a.algorithm,
        "k": a.k.hex(),
        "opc": _hex(a.opc),
        "op": _hex(a.op),
        "res_len": a.res_len,
        "keccak_iterations": a.keccak_iterations,
        "ck_len": a.ck_len,
        "ik_len": a.ik_len,
        "ind_bits": a.ind_bits,
        "delta": a.delta,
        "age_limit": a.age_limit,
        "seq": list(a.seq),
        "sqn_ms": a.sqn_ms,
    }


def _auth_from_doc(a: dict[str, Any]) -> AuthSpec:
    return AuthSpec(
        k=_unhex(a["k"]),
        opc=_unhex(a["opc"], optional=True),
        op=_unhex(a["op"], optional=True),
        algorithm=_str(a["algorithm"], 16),
        res_len=_int(a["res_len"], 4, 32),
        keccak_iterations=_int(a.get("keccak_iterations", 1), 1, 255),
        ck_len=_int(a.get("ck_len", 16), 16, 32),
        ik_len=_int(a.get("ik_len", 16), 16, 32),
        ind_bits=_int(a["ind_bits"], 0, 10),
        delta=_int(a["delta"], 1, 1 << 48, optional=True),
        age_limit=_int(a["age_limit"], 1, 1 << 48, optional=True),
        seq=tuple(_int(s, 0, (1 << 48) - 1) for s in a["seq"]),
        sqn_ms=_int(a["sqn_ms"], 0, (1 << 48) - 1),
    )


def _profile_doc(p: Profile) -> dict[str, Any]:
    return {
        "iccid": p.iccid,
        "name": p.name,
        "provider": p.provider,
        "metadata": [[k, v] for k, v in p.metadata],
        "auth": _auth_doc(p.auth),
        "app_auth": [{"aid": aid.hex(), "auth": _auth_doc(a)} for aid, a in p.app_auth],
        "pins": [
            {
                "ref": q.ref,
                "value": q.value.hex(),
                "try_limit": q.try_limit,
                "tries": q.tries,
                "enabled": q.enabled,
                "puk": _hex(q.puk),
                "puk_try_limit": q.puk_try_limit,
                "puk_tries": q.puk_tries,
            }
            for q in p.pins
        ],
        "files": [_file_doc(f) for f in p.files],
        "apps": [
            {"aid": x.aid.hex(), "class": x.class_ref, "params": x.params.hex()} for x in p.apps
        ],
        "security_domains": [_sd_doc(x) for x in p.security_domains],
        "rfm": [_rfm_doc(x) for x in p.rfm],
        "cdma": [[n, v.hex()] for n, v in p.cdma],
    }


def _sd_doc(d: SdSpec) -> dict[str, Any]:
    return {
        "aid": d.aid.hex(),
        "package_aid": d.package_aid.hex(),
        "class_aid": d.class_aid.hex(),
        "privileges": d.privileges.hex(),
        "lifecycle": d.lifecycle,
        "keys": [
            {
                "kvn": k.kvn,
                "kid": k.kid,
                "usage": k.usage,
                "access": k.access,
                "components": [[t, v.hex()] for t, v in k.components],
            }
            for k in d.keys
        ],
        "install_params": d.install_params.hex(),
        "toolkit_params": _hex(d.toolkit_params),
        "perso": [b.hex() for b in d.perso],
        "sequence_counter": d.sequence_counter,
        "ota_counters": [[k, c] for k, c in d.ota_counters],
    }


def _sd_from_doc(d: dict[str, Any]) -> SdSpec:
    return SdSpec(
        aid=_unhex(d["aid"]),
        package_aid=_unhex(d["package_aid"]),
        class_aid=_unhex(d["class_aid"]),
        privileges=_unhex(d["privileges"]),
        lifecycle=_int(d["lifecycle"], 0, 0xFF),
        keys=tuple(
            SdKey(
                _int(k["kvn"], 0, 0xFF),
                _int(k["kid"], 0, 0xFF),
                _int(k["usage"], 0, 0xFF),
                _int(k["access"], 0, 0xFF),
                tuple((_int(t, 0, 0xFF), _unhex(v)) for t, v in k["components"]),
            )
            for k in d["keys"]
        ),
        install_params=_unhex(d["install_params"]),
        toolkit_params=_unhex(d["toolkit_params"], optional=True),
        perso=tuple(_unhex(b) for b in d["perso"]),
        sequence_counter=_int(d["sequence_counter"], 0, 0xFFFFFF),
        ota_counters=tuple(
            (_int(k, 0, 0xFF), _int(c, 0, (1 << 40) - 1)) for k, c in d.get("ota_counters", ())
        ),
    )


def _rfm_doc(r: RfmSpec) -> dict[str, Any]:
    return {
        "instance_aid": r.instance_aid.hex(),
        "tars": [t.hex() for t in r.tars],
        "msl": r.msl,
        "uicc_access_domain": r.uicc_access_domain.hex(),
        "uicc_admin_access_domain": r.uicc_admin_access_domain.hex(),
        "adf_aid": _hex(r.adf_aid),
        "adf_access_domain": _hex(r.adf_access_domain),
        "adf_admin_access_domain": _hex(r.adf_admin_access_domain),
        "sd_aid": _hex(r.sd_aid),
    }


def _rfm_from_doc(d: dict[str, Any]) -> RfmSpec:
    return RfmSpec(
        instance_aid=_unhex(d["instance_aid"]),
        tars=tuple(_unhex(t) for t in d["tars"]),
        msl=_int(d["msl"], 0, 0xFF),
        uicc_access_domain=_unhex(d["uicc_access_domain"]),
        uicc_admin_access_domain=_unhex(d["uicc_admin_access_domain"]),
        adf_aid=_unhex(d["adf_aid"], optional=True),
        adf_access_domain=_unhex(d["adf_access_domain"], optional=True),
        adf_admin_access_domain=_unhex(d["adf_admin_access_domain"], optional=True),
        sd_aid=_unhex(d["sd_aid"], optional=True),
    )


def _profile_from_doc(d: dict[str, Any]) -> Profile:
    auth = _auth_from_doc(d["auth"])
    pins = []
    for q in d["pins"]:
        if not isinstance(q["enabled"], bool):
            raise ProfileFormatError("a PIN's enabled flag is true or false")
        pins.append(
            PinSpec(
                ref=_int(q["ref"], 0, 0xFF),
                value=_unhex(q["value"]),
                try_limit=_int(q["try_limit"], 1, 15),
                tries=_int(q["tries"], 0, 15, optional=True),
                enabled=q["enabled"],
                puk=_unhex(q["puk"], optional=True),
                puk_try_limit=_int(q["puk_try_limit"], 1, 15),
                puk_tries=_int(q["puk_tries"], 0, 15, optional=True),
            )
        )
    return Profile(
        iccid=_str(d["iccid"], 20),
        auth=auth,
        files=tuple(_file_from_doc(f) for f in d["files"]),
        pins=tuple(pins),
        name=_str(d["name"]),
        provider=_str(d["provider"]),
        apps=tuple(
            AppSpec(_unhex(x["aid"]), _str(x["class"]), _unhex(x["params"])) for x in d["apps"]
        ),
        metadata=tuple((_str(k), _str(v, 4096)) for k, v in d["metadata"]),
        security_domains=tuple(_sd_from_doc(x) for x in d.get("security_domains", ())),
        rfm=tuple(_rfm_from_doc(x) for x in d.get("rfm", ())),
        cdma=tuple((_str(n, 64), _unhex(v)) for n, v in d.get("cdma", ())),
        app_auth=tuple(
            (_unhex(x["aid"]), _auth_from_doc(x["auth"])) for x in d.get("app_auth", ())
        ),
    )


# -- The file tree and card.fs -----------------------------------------------------------------


def _walk(fs: FileSystem, handle: str) -> Iterator[str]:
    yield handle
    for child in fs.children(handle):
        yield from _walk(fs, child)


def files_from_fs(fs: FileSystem) -> tuple[FileSpec, ...]:
    """Every file of a file system, parents first: the MF tree, then each ADF's tree."""
    handles = list(_walk(fs, MF_HANDLE)) if fs.exists() else []
    for _name, h in fs.applications():
        info = fs.info(h)
        if info is not None and info.is_adf:
            handles.extend(_walk(fs, h))
    link_of = getattr(fs.store, "link_of", None)
    out = []
    for h in handles:
        info = fs.info(h)
        if info is None:
            continue
        out.append(
            FileSpec(
                handle=info.handle,
                parent=info.parent,
                fdb=info.fdb,
                fid=info.fid,
                sfi=info.sfi,
                name=info.name,
                lcs=info.lcs,
                size=info.size,
                record_length=info.record_length,
                records=info.records,
                security=info.security,
                flags=info.flags,
                pins=info.pins,
                proprietary=info.proprietary,
                total_size=info.total_size,
                content=None if info.is_df else fs.read(h),
                link=None if link_of is None or info.is_df else link_of(h),
            )
        )
    return tuple(out)


def files_to_fs(fs: FileSystem, files: tuple[FileSpec, ...]) -> None:
    """Create the files in an empty file system, in the order given.

    Raises:
        ProfileFormatError: a file that card.fs refuses (its reason in the message).
    """
    from card.sw import CardError

    for f in files:
        try:
            _create(fs, f)
        except (ValueError, TypeError, CardError) as e:
            raise ProfileFormatError(f"file {f.handle}: {e}") from None
    links = [f for f in files if f.link is not None]
    if links:
        set_link = getattr(fs.store, "set_link", None)
        if set_link is None:
            raise ProfileFormatError("this file system keeps no linked files")
        for f in links:
            set_link(f.handle, f.link)


def _create(fs: FileSystem, f: FileSpec) -> None:
    common: dict[str, Any] = {"security": f.security, "lcs": f.lcs}
    if f.is_df:
        extra: dict[str, Any] = {
            "pins": f.pins,
            "proprietary": f.proprietary,
            "total_size": f.total_size,
        }
        if f.handle == MF_HANDLE:
            if f.parent is not None:
                raise ValueError("the MF has no parent")
            fs.create_mf(**common, **extra)
            return
        if f.parent is None:
            raise ValueError("a DF needs a parent")
        if f.handle.startswith("ADF.") and "/" not in f.handle:  # an ADF, not a DF inside one
            if f.name is None or f.parent != MF_HANDLE:
                raise ValueError("an ADF has a DF name and the MF as its parent")
            h = fs.create_adf(f.name, fid=f.fid, **common, **extra)
        else:
            if f.fid is None:
                raise ValueError("a DF needs a file identifier")
            h = fs.create_df(
                f.parent, f.fid, name=f.name, shareable=bool(f.fdb & 0x40), **common, **extra
            )
    else:
        if f.parent is None or f.fid is None:
            raise ValueError("an EF needs a parent and a file identifier")
        structure = Structure(f.structure)
        if structure not in (
            Structure.TRANSPARENT,
            Structure.LINEAR_FIXED,
            Structure.CYCLIC,
            Structure.BER_TLV,
        ):
            raise ValueError(f"EF structure {structure!r} is not supported")
        data = f.content
        if structure == Structure.BER_TLV:
            if not isinstance(data, bytes) or len(data) > f.size:
                raise ValueError("a BER-TLV EF's content is at most `size` bytes")
            h = fs.create_ef(
                f.parent,
                f.fid,
                structure,
                size=f.size,
                data=data,
                sfi=f.sfi or None,
                shareable=bool(f.fdb & 0x40),
                **common,
            )
        elif structure == Structure.TRANSPARENT:
            if not isinstance(data, bytes) or len(data) != f.size:
                raise ValueError("a transparent EF's content is `size` bytes")
            h = fs.create_ef(
                f.parent,
                f.fid,
                structure,
                size=f.size,
                data=data,
                sfi=f.sfi or None,
                increase=bool(f.flags & 0x01),
                usable_deactivated=bool(f.flags & 0x02),
                shareable=bool(f.fdb & 0x40),
                **common,
            )
        else:
            if not isinstance(data, tuple) or len(data) != f.records:
                raise ValueError("a record EF's content is `records` records")
            if any(len(r) != f.record_length for r in data):
                raise ValueError("every record is `record_length` bytes")
            h = fs.create_ef(
                f.parent,
                f.fid,
                structure,
                record_length=f.record_length,
                records=f.records,
                data=data,
                sfi=f.sfi or None,
                increase=bool(f.flags & 0x01),
                usable_deactivated=bool(f.flags & 0x02),
                shareable=bool(f.fdb & 0x40),
                **common,
            )
    if h != f.handle:
        raise ValueError(f"the file lands at {h}, not {f.handle}")


class DictStore:
    """A plain dict as a card.fs store: to build or inspect a file tree off-card."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
