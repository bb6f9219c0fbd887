"""From an eUICC Profile Package (TCA/SIMalliance Interoperable Format) to a `Profile`.

The profile package of GSMA SGP.22 §2.5.2 (the unprotected profile package) is
a series of profile elements (PEs), each a DER ProfileElement of the
PEDefinitions ASN.1 module (card.sgp22.asn1.saip). `profile_from_package`
turns one into the store's internal `Profile`:

- header: the ICCID (plain BCD, F-padded), the format version (major 1-3);
- file system PEs (mf, telecom, usim, opt-usim, isim, opt-isim, csim, opt-csim,
  gsm-access, phonebook, df-5gs, df-saip, ...): each field is one file, created
  from its Fcp (TS 102 222 coding: file descriptor, FID, DF name, life cycle,
  referenced access rules, size, SFI, fill/repeat pattern), with the template's
  defaults (card.uicc.saip_templates) for what the PE leaves out, then
  fillFileOffset / fillFileContent over the file's bytes (records back to back);
  the files of a "created by default" template (MF, ADF.USIM) that the PE does
  not list are created with their default content;
- genericFileManagement: filePath (from the MF, ADFs by their temporary FID),
  createFCP (a created DF becomes the current DF, as TS 102 222 CREATE FILE),
  fillFileOffset / fillFileContent on the file created last;
- pinCodes / pukCodes: the PINs with their PUKs (one PIN per key reference in a
  profile: a second, different definition of a reference is refused);
  pinAttributes b1 set means the PIN is enabled (TS.48 ships PIN1 with 06:
  disabled); tries in the nibbles of maxNumOfAttemps-retryNumLeft;
- akaParameter: Milenage (algorithmID 1, K and OPc, standard constants only),
  TUAK (2, K and TOPc, numberOfKeccak) or the TS 34.108 XOR test algorithm (3);
  sqnDelta / sqnAgeLimit / sqnInit set the SQN policy (TS 33.102 Annex C). An
  akaParameter belongs to the NAA whose ADF the PEs before it created last (TCA
  SAIP's ordering rules): the USIM's set is the profile's (and the ISIM's when the
  ISIM has none or the same, as TS.48 gives it); an ISIM's different set is its own
  (`Profile.app_auth`); two different sets for one NAA are refused.
  A mappingParameter is taken where it maps an ISIM onto the USIM (shared keys,
  what real profiles mostly do: one akaParameter); other mappings are refused;
- BER-TLV EFs (fileDescriptor '39', TS 102 221 §11.3) and linked EFs (linkPath:
  the EF shares the content of the EF it names, TS 102 222 §6.3) are files like
  the others; a linked DF is refused (dfLink is not supported);
- securityDomain: the SD's identity, privileges, install parameters, keys (DES
  '80' and AES '88' key types) and perso data (sdPersoData) become an `SdSpec`,
  which the store makes a GlobalPlatform SD of the profile (applets.usim.sd);
  an SD of another load file than the GP SD package is refused;
- rfm: the RFM instance's TARs, minimum security level and access domains become
  an `RfmSpec` (read back with `Slot.rfm()` / `ProfileSdInterface.rfm_parameters`);
- cdmaParameter: kept as it is (`Profile.cdma`): CAVE is not run, nor claimed;
- application: instances of catalogued applet classes, found by their load-file
  and class AIDs (`apps` resolver); a load block (code) or an unknown class is
  refused;
- header: a mandated service (eUICC-Mandatory-services) outside
  `SUPPORTED_SERVICES` is refused;
- nonStandard: ignored (TCA: content for an issuer this eUICC does not know),
  listed in `SaipResult.ignored`; reserved (rfu) PEs and file-system PEs with no
  template here are refused;
- end: must close the package.

Nothing is dropped: what cannot be honoured is a `SaipError` carrying the PE's
identification and a PEStatus code (PEDefinitions EUICCResponse), so the ISD-R
can report it in the ProfileInstallationResult, and nothing is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from card.fs import FileSystem, Structure
from card.fs.fcp import Referenced
from card.fs.files import MF_HANDLE, adf_handle, child_handle
from card.sgp22.asn1 import Asn1Error, decode_pe_sequence
from card.sw import CardError
from card.uicc.auth import DEFAULT_IND_BITS
from card.uicc.fsstore import CompactFsStore
from card.uicc.profile import (
    AppSpec,
    AuthSpec,
    DictStore,
    PinSpec,
    Profile,
    ProfileFormatError,
    RfmSpec,
    SdKey,
    SdSpec,
    files_from_fs,
)
from card.uicc.saip_templates import PE_DFS, SUB_DF_FIDS, TEMPLATES, DfTemplate, FileTemplate
from card.uicc.ts_31_103 import ISIM_AID_PREFIX
from card.uicc.ts_102_221 import USIM_AID_PREFIX

__all__ = ["PeStatus", "SaipError", "SaipResult", "profile_from_package"]

MAX_PACKAGE_BYTES = 1 << 20

# Milenage defaults of the AlgoParameter type (3GPP TS 35.206 §4.1 r1..r5, c1..c5).
_MILENAGE_R = bytes.fromhex("4000204060")
_MILENAGE_C = (
    bytes(15)
    + b"\x00"
    + bytes(15)
    + b"\x01"
    + bytes(15)
    + b"\x02"
    + bytes(15)
    + b"\x04"
    + bytes(15)
    + b"\x08"
)

#: UICCCapability bit (SGP.22 Annex H, derived from ServicesList) of each supported service.
#: Bit 8 is rfu1 in SGP.22 and usimTestAlgorithm in the TCA module; 19-24 came with
#: SGP.22 v2.3 (berTlvFileSupport, dfLinkSupport, catTp, getIdentity, profile-a-x25519,
#: profile-b-p256). `csim`: the CSIM's files (CAVE, bit 5, is not run: not claimed).
CAPABILITY_BITS = {
    "usim": 1,
    "isim": 2,
    "csim": 3,
    "milenage": 4,
    "tuak128": 6,
    "tuak256": 7,
    "usim-test-algorithm": 8,
    "javacard": 14,
    "ber-tlv": 19,
    "get-identity": 22,
    "profile-a-x25519": 23,
    "profile-b-p256": 24,
}
#: ServicesList entries (TCA PEDefinitions) this store honours: a header that mandates any
#: other service is refused. `javacard`: applications are instances of catalogued applet
#: classes (the card loads no code), which a package names by load-file and class AIDs.
SUPPORTED_SERVICES = frozenset(CAPABILITY_BITS)
#: The GlobalPlatform security domain load file and its SD class (GPC v2.3.1 §H.1.3).
GP_SD_PACKAGE_AID = bytes.fromhex("A0000001515350")
GP_SD_CLASS_AID = bytes.fromhex("A000000151535041")
_KEY_TYPES = frozenset({0x80, 0x88})  # DES (3DES two-key), AES (GPC v2.3.1 Table 11-16)

#: File-system PEs of PEDefinitions with no template here: refused (TEMPLATE_NOT_SUPPORTED).
PE_FS_UNSUPPORTED = frozenset({"iot", "opt-iot"})
#: Resolves (load package AID, class AID) to a catalogued applet class reference, or None.
AppResolver = Callable[[bytes, bytes], "str | None"]
_ARR_MF = 0x2F06
_ARR_OTHER = 0x6F06


class PeStatus:
    """PEStatus codes (PEDefinitions EUICCResponse)."""

    OK = 0
    PE_NOT_SUPPORTED = 1
    BAD_VALUES = 3
    RUNTIME_NOT_SUPPORTED = 7
    LIB_NOT_SUPPORTED = 8
    TEMPLATE_NOT_SUPPORTED = 9
    NOT_ENOUGH_MEMORY = 4
    INVALID_REQUEST_FORMAT = 5
    INVALID_PARAMETER = 6
    FEATURE_NOT_SUPPORTED = 10
    UNSUPPORTED_PROFILE_VERSION = 31
    #: ISO 7816 status words map onto 0x6000-0x6FFF: '6A89' file already exists.
    FILE_EXISTS = 0x6A89


class SaipError(ValueError):
    """A profile package the store cannot install.

    Attributes:
        status: a `PeStatus` code.
        pe_id: the identification of the PE at fault (its PEHeader), if known.
    """

    def __init__(
        self, message: str, status: int = PeStatus.BAD_VALUES, pe_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.pe_id = pe_id


@dataclass(frozen=True)
class SaipResult:
    """The converted profile and the PEs it ignored (nonStandard PEs of unknown issuers)."""

    profile: Profile
    pe_ids: tuple[int, ...]
    ignored: tuple[str, ...] = ()


@dataclass
class _File:
    handle: str
    parent: str | None
    fid: int | None
    is_df: bool
    is_adf: bool = False
    kind: Structure | None = None
    name: bytes | None = None
    lcs: int = 0x05
    sfi: int | None = None
    record_length: int = 0
    records: int = 0
    size: int = 0
    security: Referenced | None = None
    pins: tuple[int, ...] = ()
    content: bytearray = field(default_factory=bytearray)
    link: bytes | None = None
    pe_id: int | None = None


def _pe_header(value: Any) -> int | None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith(("-header", "-Header")) and isinstance(v, dict):
                return v.get("identification")
    return None


def _bcd_plain(data: bytes) -> str:
    return data.hex().upper().rstrip("F")


def _uint(b: bytes) -> int:
    return int.from_bytes(b, "big")


class _Builder:
    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.order: list[str] = []
        self.sfis: dict[str, set[int]] = {}
        self.adf_by_tmp: dict[int, str] = {}
        self.adf_by_kind: dict[str, str] = {}
        self.pe_id: int | None = None

    def fail(self, message: str, status: int = PeStatus.BAD_VALUES) -> SaipError:
        return SaipError(message, status, self.pe_id)

    # -- files ---------------------------------------------------------------------------

    def add(self, f: _File) -> None:
        if f.handle in self.files:
            raise self.fail(f"file {f.handle} is created twice", PeStatus.FILE_EXISTS)
        if f.parent is not None and f.parent not in self.files and f.handle != MF_HANDLE:
            raise self.fail(
                f"file {f.handle}: its parent does not exist", PeStatus.INVALID_PARAMETER
            )
        if f.sfi is not None and f.parent is not None:
            used = self.sfis.setdefault(f.parent, set())
            if f.sfi in used:
                f.sfi = None  # an SFI clash: the file stays reachable by FID
            else:
                used.add(f.sfi)
        f.pe_id = self.pe_id
        self.files[f.handle] = f
        self.order.append(f.handle)

    def arr_for(
        self, parent: str | None, handle: str, value: bytes | None, default_rec: int | None
    ) -> Referenced | None:
        # PEDefinitions Fcp: one byte is the record of the implicit EF.ARR: 2F06 for the
        # MF, ADFs and files right under the MF; 6F06 for any other file.
        implicit = _ARR_MF if parent in (MF_HANDLE, None) else _ARR_OTHER
        if value is None:
            return None if default_rec is None else Referenced(implicit, default_rec)
        if len(value) == 1:
            return Referenced(implicit, value[0])
        if len(value) == 3:
            return Referenced(_uint(value[:2]), value[2])
        if len(value) > 3 and len(value) % 2 == 0:
            pairs = value[2:]
            return Referenced(
                _uint(value[:2]),
                None,
                tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)),
            )
        raise self.fail(
            "securityAttributesReferenced of a wrong length", PeStatus.INVALID_PARAMETER
        )

    def make_df(
        self, parent: str | None, fcp: dict[str, Any] | None, fid: int | None, kind_adf: bool
    ) -> _File:
        fcp = fcp or {}
        if fcp.get("linkPath"):
            raise self.fail(
                "a linked DF (linkPath on a DF) is not supported", PeStatus.FEATURE_NOT_SUPPORTED
            )
        if "fileID" in fcp:
            fid = _uint(fcp["fileID"])
        name = fcp.get("dfName")
        if kind_adf:
            if name is None:
                raise self.fail("an ADF without dfName", PeStatus.INVALID_PARAMETER)
            handle, parent = adf_handle(bytes(name)), MF_HANDLE
        elif parent is None:
            handle = MF_HANDLE
        else:
            if fid is None:
                raise self.fail("a DF without file identifier", PeStatus.INVALID_PARAMETER)
            handle = child_handle(parent, fid)
        pins = tuple(fcp.get("pinStatusTemplateDO", b""))
        f = _File(
            handle=handle,
            parent=parent,
            fid=0x3F00 if handle == MF_HANDLE else fid,
            is_df=True,
            is_adf=kind_adf,
            name=None if name is None else bytes(name),
            lcs=fcp.get("lcsi", b"\x05")[0],
            security=self.arr_for(parent, handle, fcp.get("securityAttributesReferenced"), None),
            pins=pins,
        )
        self.add(f)
        if kind_adf and fid is not None:
            self.adf_by_tmp[fid] = handle
        return f

    def make_ef(
        self, parent: str, fcp: dict[str, Any], tpl: FileTemplate | None, from_gfm: bool
    ) -> _File | None:
        link = bytes(fcp["linkPath"]) if fcp.get("linkPath") else None
        fid = _uint(fcp["fileID"]) if "fileID" in fcp else (tpl.fid if tpl else None)
        if fid is None:
            raise self.fail("an EF without file identifier", PeStatus.INVALID_PARAMETER)
        handle = child_handle(parent, fid)
        fd = fcp.get("fileDescriptor")
        rec_len = 0
        if fd is not None:
            fdb = fd[0]
            if fdb & 0x38 == 0x38:
                if fdb & 0x3F == 0x39:
                    return self._bertlv_ef(parent, handle, fid, fcp, link)
                raise self.fail(
                    f"{handle}: a DF descriptor where an EF is expected", PeStatus.INVALID_PARAMETER
                )
            structure = fdb & 0x07
            if len(fd) >= 4:
                rec_len = _uint(fd[2:4])
        elif tpl is not None:
            structure = {"TR": 1, "LF": 2, "CY": 6}[tpl.kind]
        else:
            raise self.fail(f"{handle}: no file descriptor", PeStatus.INVALID_PARAMETER)
        if structure not in (1, 2, 6):
            raise self.fail(
                f"{handle}: EF structure {structure} is not supported",
                PeStatus.FEATURE_NOT_SUPPORTED,
            )
        kind = Structure(structure)
        if kind != Structure.TRANSPARENT and not rec_len:
            rec_len = tpl.size if tpl and tpl.size else 0
            if not rec_len:
                raise self.fail(
                    f"{handle}: record EF without record length", PeStatus.INVALID_PARAMETER
                )
        if "efFileSize" in fcp:
            size = _uint(fcp["efFileSize"])
        elif tpl is not None and tpl.size is not None:
            size = tpl.size if kind == Structure.TRANSPARENT else tpl.size * (tpl.records or 1)
        else:
            size = -1  # from the content, below
        sfi: int | None
        if "shortEFID" in fcp:
            raw = fcp["shortEFID"]
            sfi = (raw[0] >> 3) or None if raw else None
        elif tpl is not None:
            sfi = tpl.sfi
        elif from_gfm:
            sfi = (fid & 0x1F) or None  # TS 102 222: no tag 88, SFI from the FID
        else:
            sfi = None
        prop = fcp.get("proprietaryEFInfo") or {}
        f = _File(
            handle=handle,
            parent=parent,
            fid=fid,
            is_df=False,
            kind=kind,
            lcs=fcp.get("lcsi", b"\x05")[0],
            sfi=sfi,
            record_length=rec_len if kind != Structure.TRANSPARENT else 0,
            security=self.arr_for(
                parent, handle, fcp.get("securityAttributesReferenced"), tpl.arr if tpl else None
            ),
        )
        f.size = size
        f.link = link
        self._initial_content(f, tpl, prop)
        self.add(f)
        return f

    def _bertlv_ef(
        self, parent: str, handle: str, fid: int, fcp: dict[str, Any], link: bytes | None
    ) -> _File:
        """A BER-TLV EF (TS 102 222 §6.3, TS 102 221 §11.3): empty, `efFileSize` reserved."""
        if "efFileSize" not in fcp:
            raise self.fail(f"{handle}: a BER-TLV EF without its size", PeStatus.INVALID_PARAMETER)
        raw = fcp.get("shortEFID")
        sfi = ((raw[0] >> 3) or None if raw else None) if "shortEFID" in fcp else None
        f = _File(
            handle=handle,
            parent=parent,
            fid=fid,
            is_df=False,
            kind=Structure.BER_TLV,
            lcs=fcp.get("lcsi", b"\x05")[0],
            sfi=sfi,
            size=_uint(fcp["efFileSize"]),
            security=self.arr_for(parent, handle, fcp.get("securityAttributesReferenced"), None),
            link=link,
        )
        self.add(f)
        return f

    def _initial_content(self, f: _File, tpl: FileTemplate | None, prop: dict[str, Any]) -> None:
        if f.size < 0:
            f.content = bytearray()  # sized by the fills that follow
            f.size = -1
            return
        unit = f.record_length or f.size
        if f.record_length and f.size % f.record_length:
            raise self.fail(
                f"{f.handle}: size {f.size} is not whole records", PeStatus.INVALID_PARAMETER
            )
        if "fillPattern" in prop or "repeatPattern" in prop:
            # TS 102 222 §6.3: a fill pattern's last byte repeats; a repeat pattern repeats whole.
            if "fillPattern" in prop:
                pat = bytes(prop["fillPattern"])
                one = (pat + pat[-1:] * unit)[:unit]
            else:
                pat = bytes(prop["repeatPattern"])
                one = (pat * (unit // len(pat) + 1))[:unit]
            data = one * (f.size // unit if unit else 0)
        elif tpl is not None:
            data = tpl.content(unit) * (f.size // unit if unit else 0)
        else:
            data = b"\xff" * f.size
        f.content = bytearray(data)

    # -- file contents ---------------------------------------------------------------------

    def fill(self, f: _File | None, pos: int, data: bytes | None, skip: int) -> int:
        if f is None or f.is_df:
            return pos + skip + (len(data) if data else 0)
        if f.kind == Structure.BER_TLV:
            # TS 102 222: the content of a BER-TLV EF is its data objects, written in order.
            if skip or pos != len(f.content):
                raise self.fail(f"{f.handle}: an offset into a BER-TLV EF", PeStatus.BAD_VALUES)
            if data:
                if len(f.content) + len(data) > f.size:
                    raise self.fail(
                        f"{f.handle}: data objects beyond its size", PeStatus.BAD_VALUES
                    )
                f.content.extend(data)
            return len(f.content)
        pos += skip
        if data is not None:
            end = pos + len(data)
            if f.size < 0:
                if len(f.content) < end:
                    f.content.extend(b"\xff" * (end - len(f.content)))
            elif end > f.size:
                raise self.fail(
                    f"{f.handle}: content beyond the file's {f.size} bytes", PeStatus.BAD_VALUES
                )
            f.content[pos:end] = data
            pos = end
        elif f.size < 0 and len(f.content) < pos:
            f.content.extend(b"\xff" * (pos - len(f.content)))
        return pos

    # -- PEs ---------------------------------------------------------------------------------

    def template_pe(self, pe: str, value: dict[str, Any]) -> None:
        df_field, df_fid, parent_kind = PE_DFS[pe]
        tpl: DfTemplate | None = TEMPLATES.get(pe)
        by_field = {t.field: t for t in tpl.files} if tpl else {}
        parent = self._resolve_kind(parent_kind)
        base: str | None = None
        current: str | None = None
        seen: set[str] = set()
        if not df_field:  # an "opt-" PE adds to its NAA's ADF
            base = current = parent
        for key, items in value.items():
            if (
                key.endswith(("-header", "-Header"))
                or key == "templateID"
                or not isinstance(items, list)
            ):
                continue
            seen.add(key)
            if any(x[0] == "doNotCreate" for x in items):
                continue
            fcp = next((x[1] for x in items if x[0] == "fileDescriptor"), None)
            if key == df_field or (base is None and key.startswith(("df-", "adf-", "mf"))):
                is_adf = key.startswith("adf-")
                f = self.make_df(None if pe == "mf" else parent, fcp, df_fid, is_adf)
                if is_adf:
                    self.adf_by_kind.setdefault(key[4:].upper(), f.handle)
                base = current = f.handle
                continue
            if base is None:
                raise self.fail(f"{pe}: {key} before the PE's DF", PeStatus.INVALID_REQUEST_FORMAT)
            if key.startswith("df-"):
                f = self.make_df(base, fcp, SUB_DF_FIDS.get(key), False)
                current = f.handle
                continue
            ef = self.make_ef(current or base, fcp or {}, by_field.get(key), from_gfm=False)
            pos = 0
            for kind, v in items:
                if kind == "fillFileOffset":
                    pos = self.fill(ef, pos, None, v)
                elif kind == "fillFileContent":
                    pos = self.fill(ef, pos, bytes(v), 0)
        if tpl is not None and tpl.created_by_default and base is not None:
            for t in tpl.files:
                if t.field not in seen and t.size is not None:
                    self.make_ef(base, {}, t, from_gfm=False)

    def _resolve_kind(self, kind: str) -> str:
        if kind in ("", "MF"):
            return MF_HANDLE
        adf = self.adf_by_kind.get(kind.split(".", 1)[1])
        if adf is None:
            raise self.fail(f"no {kind} for this PE", PeStatus.INVALID_REQUEST_FORMAT)
        return adf

    def path(self, raw: bytes) -> str:
        if len(raw) % 2:
            raise self.fail("a file path of an odd length", PeStatus.INVALID_PARAMETER)
        h = MF_HANDLE
        for i in range(0, len(raw), 2):
            fid = _uint(raw[i : i + 2])
            if i == 0 and fid in self.adf_by_tmp:
                h = self.adf_by_tmp[fid]
                continue
            if fid == 0x3F00 and i == 0:
                continue
            h = child_handle(h, fid)
            f = self.files.get(h)
            if f is None or not f.is_df:
                raise self.fail(
                    f"file path {raw.hex().upper()}: no such DF", PeStatus.INVALID_PARAMETER
                )
        return h

    def gfm_pe(self, value: dict[str, Any]) -> None:
        for cmds in value.get("fileManagementCMD", ()):
            current = MF_HANDLE
            ef: _File | None = None
            pos = 0
            for kind, v in cmds:
                if kind == "filePath":
                    current, ef, pos = self.path(bytes(v)), None, 0
                elif kind == "createFCP":
                    fd = v.get("fileDescriptor")
                    if fd is not None and fd[0] & 0x38 == 0x38 and fd[0] & 0x3F != 0x39:
                        f = self.make_df(current, v, None, "dfName" in v)
                        current, ef, pos = f.handle, None, 0
                    else:
                        ef, pos = self.make_ef(current, v, None, from_gfm=True), 0
                elif kind == "fillFileOffset":
                    pos = self.fill(ef, pos, None, v)
                elif kind == "fillFileContent":
                    pos = self.fill(ef, pos, bytes(v), 0)

    # -- the file tree ---------------------------------------------------------------------------

    def adf_names(self) -> list[bytes]:
        """The DF names of the ADFs created so far, in creation order."""
        return [f.name for h in self.order if (f := self.files[h]).is_adf and f.name]

    def last_adf_name(self) -> bytes | None:
        """The ADF created last: the NAA a following akaParameter belongs to (TCA SAIP
        orders each NAA's PEs after the PE that creates its ADF)."""
        names = self.adf_names()
        return names[-1] if names else None

    def link_target(self, f: _File) -> _File:
        """The EF a linked EF's linkPath names (from the MF; ADFs by their temporary FID)."""
        raw = f.link or b""
        h = MF_HANDLE
        for i in range(0, len(raw) - len(raw) % 2, 2):
            fid = _uint(raw[i : i + 2])
            if i == 0 and fid in self.adf_by_tmp:
                h = self.adf_by_tmp[fid]
            elif not (i == 0 and fid == 0x3F00):
                h = child_handle(h, fid)
        t = self.files.get(h)
        if len(raw) % 2 or t is None or t.is_df or t.link is not None:
            raise SaipError(
                f"{f.handle}: linkPath {raw.hex().upper()} names no EF of the profile",
                PeStatus.INVALID_PARAMETER,
            )
        return t

    def build_files(self) -> tuple[Any, ...]:
        fs = FileSystem(CompactFsStore(DictStore(), ""), "")
        links: list[tuple[str, str]] = []
        for h in self.order:
            f = self.files[h]
            try:
                if f.is_df:
                    if h == MF_HANDLE:
                        fs.create_mf(security=f.security, pins=f.pins, lcs=f.lcs)
                    elif f.is_adf:
                        fs.create_adf(
                            f.name or b"", fid=f.fid, security=f.security, pins=f.pins, lcs=f.lcs
                        )
                    else:
                        fs.create_df(
                            f.parent or MF_HANDLE,
                            f.fid or 0,
                            name=f.name,
                            security=f.security,
                            pins=f.pins,
                            lcs=f.lcs,
                        )
                    continue
                if f.link is not None:
                    # TS 102 222 §6.3: a linked EF has the structure and the content of
                    # the EF it names; its own FCP gives its FID, SFI and access rules.
                    t = self.link_target(f)
                    # The target's record length wins where the link's FCP differs (TS.48 v5
                    # links DF.TELECOM's EF.MSISDN, 28-byte records, to ADF.USIM's 39-byte one).
                    if t.kind != f.kind:
                        raise SaipError(
                            f"{h}: linked to {t.handle}, an EF of another structure",
                            PeStatus.INVALID_PARAMETER,
                        )
                    if t.size < 0:
                        self._size_from_content(t)
                    f.size, f.record_length, f.content = t.size, t.record_length, t.content
                    links.append((h, t.handle))
                if f.kind == Structure.BER_TLV:
                    fs.create_ef(
                        f.parent or MF_HANDLE,
                        f.fid or 0,
                        Structure.BER_TLV,
                        size=f.size,
                        data=bytes(f.content),
                        sfi=f.sfi,
                        security=f.security,
                        lcs=f.lcs,
                    )
                    continue
                if f.size < 0:
                    self._size_from_content(f)
                data = bytes(f.content)
                if f.kind == Structure.TRANSPARENT:
                    fs.create_ef(
                        f.parent or MF_HANDLE,
                        f.fid or 0,
                        f.kind,
                        size=f.size,
                        data=data,
                        sfi=f.sfi,
                        security=f.security,
                        lcs=f.lcs,
                    )
                else:
                    n = f.record_length
                    if f.size % n:
                        raise self.fail(f"{h}: content is not whole records", PeStatus.BAD_VALUES)
                    recs = [data[i : i + n] for i in range(0, f.size, n)]
                    fs.create_ef(
                        f.parent or MF_HANDLE,
                        f.fid or 0,
                        f.kind or Structure.LINEAR_FIXED,
                        record_length=n,
                        records=len(recs),
                        data=recs,
                        sfi=f.sfi,
                        security=f.security,
                        lcs=f.lcs,
                    )
            except SaipError as e:
                e.pe_id = f.pe_id if e.pe_id is None else e.pe_id
                raise
            except (CardError, ValueError, TypeError) as e:
                raise SaipError(f"file {h}: {e}", PeStatus.BAD_VALUES, f.pe_id) from None
        store = fs.store
        assert isinstance(store, CompactFsStore)
        for h, target in links:
            store.set_link(h, target)
        return files_from_fs(fs)

    @staticmethod
    def _size_from_content(f: _File) -> None:
        # No size from the PE nor a template: what the content fills, at least one
        # record (TCA leaves such sizes to the template tables).
        n = f.record_length
        size = -(-len(f.content) // n) * n if n else len(f.content)
        f.size = max(size, n)
        f.content.extend(b"\xff" * (f.size - len(f.content)))


def _pins(
    pin_pes: list[tuple[int | None, Any]], puks: dict[int, tuple[bytes, int, int]]
) -> tuple[PinSpec, ...]:
    out: dict[int, PinSpec] = {}
    for pe_id, codes in pin_pes:
        kind, entries = codes
        if kind != "pinconfig":
            continue  # a PIN shared with another DF: already defined there
        for e in entries:
            ref = e["keyReference"]
            if ref in out:
                same = (
                    bytes(e["pinValue"]).rstrip(b"\xff") == out[ref].value
                    and e.get("maxNumOfAttemps-retryNumLeft", 0x33) >> 4 == out[ref].try_limit
                )
                if not same:
                    raise SaipError(
                        f"PIN {ref:02X} defined twice, differently",
                        PeStatus.FEATURE_NOT_SUPPORTED,
                        pe_id,
                    )
                continue
            attempts = e.get("maxNumOfAttemps-retryNumLeft", 0x33)
            attrs = e.get("pinAttributes", 7)
            puk = puks.get(e["unblockingPINReference"]) if "unblockingPINReference" in e else None
            try:
                out[ref] = PinSpec(
                    ref,
                    bytes(e["pinValue"]).rstrip(b"\xff") or b"\xff",
                    attempts >> 4,
                    attempts & 0x0F,
                    bool(attrs & 0x01),
                    None if puk is None else puk[0],
                    10 if puk is None else puk[1],
                    None if puk is None else puk[2],
                )
            except ProfileFormatError as err:
                raise SaipError(f"PIN {ref:02X}: {err}", PeStatus.BAD_VALUES, pe_id) from None
    return tuple(out.values())


def _auth(pe_id: int | None, value: dict[str, Any]) -> AuthSpec:
    kind, algo = value["algoConfiguration"]
    if kind != "algoParameter":
        raise SaipError(
            "an AKA mapping parameter without an algorithm to map",
            PeStatus.FEATURE_NOT_SUPPORTED,
            pe_id,
        )
    alg_id = algo["algorithmID"]
    delta = _uint(value.get("sqnDelta", bytes.fromhex("000010000000")))
    age = _uint(value.get("sqnAgeLimit", bytes.fromhex("000010000000")))
    seq_raw = value.get("sqnInit")
    seq: tuple[int, ...] = ()
    if isinstance(seq_raw, list) and len(seq_raw) == 1 << DEFAULT_IND_BITS:
        seq = tuple(_uint(s) for s in seq_raw)
        if not any(seq):
            seq = ()
    try:
        if alg_id == 1:
            if (
                algo.get("rotationConstants", _MILENAGE_R) != _MILENAGE_R
                or algo.get("xoringConstants", _MILENAGE_C) != _MILENAGE_C
            ):
                raise SaipError(
                    "Milenage with non-standard constants", PeStatus.FEATURE_NOT_SUPPORTED, pe_id
                )
            return AuthSpec(
                k=bytes(algo["key"]),
                opc=bytes(algo["opc"]),
                algorithm="milenage",
                delta=delta or None,
                age_limit=age or None,
                seq=seq,
            )
        if alg_id == 2:
            # TUAK (TS 35.231): `opc` carries TOPc (SAIP's comment on AlgoParameter);
            # `numberOfKeccak` the iterations (TS 35.231 §7.2, DEFAULT 1). The output
            # lengths stay TUAK's defaults (64-bit MAC and RES, 128-bit CK and IK): the
            # one-byte algorithmOptions is read by no algorithm here (TS.48 packages set
            # '02' for every algorithm) and its TUAK coding is not taken as a length.
            return AuthSpec(
                k=bytes(algo["key"]),
                opc=bytes(algo["opc"]),
                algorithm="tuak",
                keccak_iterations=int(algo.get("numberOfKeccak", 1)),
                delta=delta or None,
                age_limit=age or None,
                seq=seq,
            )
        if alg_id == 3:
            return AuthSpec(
                k=bytes(algo["key"]),
                algorithm="xor",
                delta=delta or None,
                age_limit=age or None,
                seq=seq,
            )
    except ProfileFormatError as e:
        raise SaipError(f"AKA parameters: {e}", PeStatus.BAD_VALUES, pe_id) from None
    raise SaipError(
        f"AKA algorithm {alg_id} is not supported", PeStatus.FEATURE_NOT_SUPPORTED, pe_id
    )


def _aid(value: Any) -> bytes:
    return bytes(value)


def _security_domain(pe_id: int | None, value: dict[str, Any]) -> SdSpec:
    """PE-SecurityDomain (TCA §8.6): a GlobalPlatform SD with its keys and perso data."""

    def refuse(what: str, status: int = PeStatus.FEATURE_NOT_SUPPORTED) -> SaipError:
        return SaipError(f"security domain: {what}", status, pe_id)

    inst = value["instance"]
    if (_aid(inst["applicationLoadPackageAID"]), _aid(inst["classAID"])) != (
        GP_SD_PACKAGE_AID,
        GP_SD_CLASS_AID,
    ):
        raise refuse(
            f"load file {_aid(inst['applicationLoadPackageAID']).hex().upper()} / class "
            f"{_aid(inst['classAID']).hex().upper()} is not the GlobalPlatform SD",
            PeStatus.LIB_NOT_SUPPORTED,
        )
    for unsupported in (
        "extraditeSecurityDomainAID",
        "systemSpecificParameters",
        "controlReferenceTemplate",
    ):
        if unsupported in inst:
            raise refuse(f"{unsupported} is not supported")
    for unsupported in ("openPersoData", "catTpParameters"):
        if unsupported in value:
            raise refuse(f"{unsupported} is not supported")
    keys = []
    for k in value.get("keyList", ()):
        if "keyCounterValue" in k:
            raise refuse("keyCounterValue is not supported")
        comps = tuple((_uint(c["keyType"]), bytes(c["keyData"])) for c in k["keyComponents"])
        for t, data in comps:
            if t not in _KEY_TYPES or len(data) not in (16, 24, 32):
                raise refuse(f"key type {t:02X} of {len(data)} bytes is not supported")
        keys.append(
            SdKey(
                _uint(k["keyVersionNumber"]),
                _uint(k["keyIdentifier"]),
                _uint(k.get("keyUsageQualifier", b"\x00")),
                _uint(k.get("keyAccess", b"\x00")),
                comps,
            )
        )
    params = inst.get("applicationParameters") or {}
    toolkit = params.get("uiccToolkitApplicationSpecificParametersField")
    other = set(params) - {"uiccToolkitApplicationSpecificParametersField"}
    if other:
        raise refuse(f"application parameters {sorted(other)} are not supported")
    perso = tuple(bytes(b) for b in value.get("sdPersoData", ())) + tuple(
        bytes(b) for b in inst.get("processData", ())
    )
    try:
        return SdSpec(
            aid=_aid(inst["instanceAID"]),
            package_aid=GP_SD_PACKAGE_AID,
            class_aid=GP_SD_CLASS_AID,
            privileges=bytes(inst["applicationPrivileges"]),
            lifecycle=_uint(inst.get("lifeCycleState", b"\x07")),
            keys=tuple(keys),
            install_params=bytes(inst.get("applicationSpecificParametersC9", b"")),
            toolkit_params=None if toolkit is None else bytes(toolkit),
            perso=perso,
        )
    except ProfileFormatError as e:
        raise refuse(str(e), PeStatus.BAD_VALUES) from None


def _rfm(pe_id: int | None, value: dict[str, Any]) -> RfmSpec:
    """PE-RFM (TCA §8.8): the parameters of one RFM instance (TS 102 226 §8)."""
    adf = value.get("adfRFMAccess")
    try:
        return RfmSpec(
            instance_aid=_aid(value["instanceAID"]),
            tars=tuple(bytes(t) for t in value.get("tarList", ())),
            msl=_uint(value["minimumSecurityLevel"]),
            uicc_access_domain=bytes(value["uiccAccessDomain"]),
            uicc_admin_access_domain=bytes(value["uiccAdminAccessDomain"]),
            adf_aid=None if adf is None else _aid(adf["adfAID"]),
            adf_access_domain=None if adf is None else bytes(adf["adfAccessDomain"]),
            adf_admin_access_domain=None if adf is None else bytes(adf["adfAdminAccessDomain"]),
            sd_aid=_aid(value["securityDomainAID"]) if "securityDomainAID" in value else None,
        )
    except ProfileFormatError as e:
        raise SaipError(f"RFM: {e}", PeStatus.BAD_VALUES, pe_id) from None


def _applications(
    pe_id: int | None, value: dict[str, Any], resolve: AppResolver | None
) -> list[AppSpec]:
    """PE-Application (TCA §8.7): instances of catalogued classes; code is never loaded."""
    if "loadBlock" in value:
        # A load block is executable code (a CAP file): this card runs catalogued classes
        # only, and bytes from a card command are never executed.
        raise SaipError(
            "application: a load block (code) cannot be loaded here",
            PeStatus.RUNTIME_NOT_SUPPORTED,
            pe_id,
        )
    out = []
    for inst in value.get("instanceList", ()):
        package, cls = _aid(inst["applicationLoadPackageAID"]), _aid(inst["classAID"])
        ref = resolve(package, cls) if resolve is not None else None
        if ref is None:
            raise SaipError(
                f"application: load file {package.hex().upper()} / class "
                f"{cls.hex().upper()} is not in this card's catalogue",
                PeStatus.LIB_NOT_SUPPORTED,
                pe_id,
            )
        extra = set(inst) - {
            "applicationLoadPackageAID",
            "classAID",
            "instanceAID",
            "applicationPrivileges",
            "lifeCycleState",
            "applicationSpecificParametersC9",
        }
        if extra:
            raise SaipError(
                f"application: {sorted(extra)} are not supported",
                PeStatus.FEATURE_NOT_SUPPORTED,
                pe_id,
            )
        params = bytes(inst.get("applicationSpecificParametersC9", b""))
        try:
            out.append(AppSpec(_aid(inst["instanceAID"]), ref, params))
        except ProfileFormatError as e:
            raise SaipError(f"application: {e}", PeStatus.BAD_VALUES, pe_id) from None
    return out


def profile_from_package(
    package: bytes, *, name: str = "", provider: str = "", apps: AppResolver | None = None
) -> SaipResult:
    """Convert an unprotected profile package into a `Profile` (see the module docstring).

    Args:
        package: the profile elements, DER, back to back.
        name / provider: the profile name and service provider name (SGP.22 metadata).
        apps: finds the catalogued class of an application PE's instance (None: the
            package may have no application PE).

    Raises:
        SaipError: the package cannot become a profile here.
    """
    if len(package) > MAX_PACKAGE_BYTES:
        raise SaipError("profile package too large", PeStatus.NOT_ENOUGH_MEMORY)
    try:
        pes = decode_pe_sequence(package)
    except Asn1Error as e:
        raise SaipError(str(e), PeStatus.INVALID_REQUEST_FORMAT) from None
    if not pes or pes[0][0] != "header":
        raise SaipError(
            "the package does not start with a header PE", PeStatus.INVALID_REQUEST_FORMAT
        )
    if pes[-1][0] != "end" or any(n == "end" for n, _ in pes[:-1]):
        raise SaipError(
            "the package does not close with one end PE", PeStatus.INVALID_REQUEST_FORMAT
        )
    header = pes[0][1]
    if not 1 <= header["major-version"] <= 3:
        raise SaipError(
            f"profile package version {header['major-version']}",
            PeStatus.UNSUPPORTED_PROFILE_VERSION,
        )
    iccid = _bcd_plain(bytes(header["iccid"]))
    if not iccid.isdigit():
        raise SaipError(
            f"header ICCID {bytes(header['iccid']).hex()} is not BCD", PeStatus.BAD_VALUES
        )

    mandated = set(header.get("eUICC-Mandatory-services") or ()) - SUPPORTED_SERVICES
    if mandated:
        raise SaipError(
            f"the package mandates services this card lacks: {sorted(mandated)}",
            PeStatus.FEATURE_NOT_SUPPORTED,
            _pe_header(header),
        )

    b = _Builder()
    sds: list[SdSpec] = []
    rfms: list[RfmSpec] = []
    app_specs: list[AppSpec] = []
    cdma: tuple[tuple[str, bytes], ...] = ()
    pin_pes: list[tuple[int | None, Any]] = []
    puks: dict[int, tuple[bytes, int, int]] = {}
    aka_sets: dict[bytes, AuthSpec] = {}  # by NAA context: b"" the USIM's, else an ISIM AID
    ignored: list[str] = []
    ids: list[int] = []
    for pe, value in pes:
        b.pe_id = _pe_header(value)
        if b.pe_id is not None:
            ids.append(b.pe_id)
        if pe in ("header", "end"):
            continue
        if pe in PE_DFS:
            if pe != "mf" and MF_HANDLE not in b.files:
                raise b.fail(f"{pe} before the MF", PeStatus.INVALID_REQUEST_FORMAT)
            b.template_pe(pe, value)
        elif pe == "genericFileManagement":
            if MF_HANDLE not in b.files:
                raise b.fail("file management before the MF", PeStatus.INVALID_REQUEST_FORMAT)
            b.gfm_pe(value)
        elif pe == "pinCodes":
            pin_pes.append((b.pe_id, value["pinCodes"]))
        elif pe == "pukCodes":
            for puk in value["pukCodes"]:
                tries = puk.get("maxNumOfAttemps-retryNumLeft", 0xAA)
                puks.setdefault(
                    puk["keyReference"],
                    (bytes(puk["pukValue"]).rstrip(b"\xff"), tries >> 4, tries & 0x0F),
                )
        elif pe == "akaParameter":
            naa = b.last_adf_name()
            kind, algo = value["algoConfiguration"]
            if kind == "mappingParameter":
                # The NAA shares another application's AKA parameters: here only an
                # ISIM sharing the USIM's (what the ISIM does without a PE anyway).
                source = bytes(algo["mappingSource"])
                if not (
                    naa is not None
                    and naa.startswith(ISIM_AID_PREFIX)
                    and source.startswith(USIM_AID_PREFIX)
                    and source in b.adf_names()
                ):
                    raise b.fail(
                        "an AKA mapping parameter other than an ISIM's onto the USIM",
                        PeStatus.FEATURE_NOT_SUPPORTED,
                    )
                continue
            this = _auth(b.pe_id, value)
            # TCA SAIP: an akaParameter is given in the context of the NAA whose ADF the
            # PEs before it created last; several different sets for one NAA leave the
            # one it uses undefined: refused here.
            ctx = naa if naa is not None and naa.startswith(ISIM_AID_PREFIX) else b""
            if aka_sets.setdefault(ctx, this) != this:
                raise b.fail(
                    "a second, different set of AKA parameters", PeStatus.FEATURE_NOT_SUPPORTED
                )
        elif pe == "securityDomain":
            sds.append(_security_domain(b.pe_id, value))
        elif pe == "rfm":
            rfms.append(_rfm(b.pe_id, value))
        elif pe == "cdmaParameter":
            if cdma:
                raise b.fail("a second cdmaParameter", PeStatus.INVALID_REQUEST_FORMAT)
            cdma = tuple(
                (k, bytes(v)) for k, v in value.items() if k != "cdma-header" and v is not None
            )
        elif pe == "application":
            app_specs.extend(_applications(b.pe_id, value, apps))
        elif pe == "nonStandard":
            # TCA §8.13: content for the issuer named by issuerID; an eUICC that does not
            # know the issuer ignores it (this card knows none).
            ignored.append(pe)
        elif pe in PE_FS_UNSUPPORTED:
            raise b.fail(f"template PE {pe} is not supported", PeStatus.TEMPLATE_NOT_SUPPORTED)
        else:
            raise b.fail(f"profile element {pe} is not supported", PeStatus.PE_NOT_SUPPORTED)
    b.pe_id = None
    if MF_HANDLE not in b.files:
        raise SaipError("the package creates no MF", PeStatus.INVALID_REQUEST_FORMAT)
    # The USIM's set is the profile's; without one, the first ISIM's (a package that gives
    # its one set in the ISIM's context). An ISIM whose set differs has keys of its own.
    auth = aka_sets.get(b"", next(iter(aka_sets.values()), None))
    if auth is None:
        raise SaipError("the package has no AKA parameters", PeStatus.INVALID_REQUEST_FORMAT)
    app_auth = {aid: a for aid, a in aka_sets.items() if aid and a != auth}
    files = b.build_files()
    try:
        profile = Profile(
            iccid=iccid,
            auth=auth,
            files=files,
            pins=_pins(pin_pes, puks),
            name=name,
            provider=provider,
            metadata=(("source", "saip"), ("profile_type", str(header.get("profileType", "")))),
            apps=tuple(app_specs),
            security_domains=tuple(sds),
            rfm=tuple(rfms),
            cdma=cdma,
            app_auth=tuple(app_auth.items()),
        )
    except ProfileFormatError as e:
        raise SaipError(str(e), PeStatus.BAD_VALUES) from None
    return SaipResult(profile, tuple(ids), tuple(ignored))
