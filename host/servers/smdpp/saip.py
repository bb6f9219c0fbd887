"""Unprotected profile packages (TCA eUICC Profile Package v3.3.1, "SAIP") built from a few fields.

`build_upp(order)` gives the DER of the profile elements an SM-DP+ binds into a
BPP (SGP.22 §2.5.2): header, MF, PUK codes, PIN codes, USIM, optional USIM
files, the USIM's local PIN, the AKA parameters, end. The file contents come
from the emulator's USIM profile builder (`card.uicc.builder.build_profile`:
EF.IMSI, EF.AD, EF.UST, EF.ARR rules, ...), used only for its data: each file
becomes a templated file of the PE (TCA v3.3.1 §8.3) with an explicit FCP
(file descriptor, file ID, size, SFI, access rule) and its content, so a
reader of the package needs no template tables to rebuild the file system.

The elements are encoded with the TCA PEDefinitions ASN.1 module
(`card.sgp22.asn1`), never by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from card.sgp22 import asn1
from card.uicc.builder import IsimSetup, SuciSetup, build_profile
from card.uicc.profile import FileSpec, Profile
from card.uicc.ts_102_221 import luhn_digit

__all__ = [
    "ProfileOrder",
    "build_upp",
    "upp_iccid",
    "iccid_to_header",
    "iccid_to_ef",
    "TEMPLATE_MF",
    "TEMPLATE_USIM",
    "TEMPLATE_OPT_USIM",
]

# TCA eUICC Profile Package v3.3.1 Annex A: file system templates (id-tca 2.23.143 ...).
TEMPLATE_MF = "2.23.143.1.2.1"
TEMPLATE_USIM = "2.23.143.1.2.4"
TEMPLATE_OPT_USIM = "2.23.143.1.2.5"
# DF.GSM-ACCESS, DF.5GS and DF.SAIP under ADF.USIM (PE-GSM-ACCESS, PE-DF-5GS, PE-DF-SAIP).
TEMPLATE_GSM_ACCESS = "2.23.143.1.2.7"
TEMPLATE_DF_5GS = "2.23.143.1.2.13"
TEMPLATE_DF_SAIP = "2.23.143.1.2.14"

# TCA v3.3.1 §8.7 (AlgoParameter.algorithmID).
_ALGORITHM_ID = {"milenage": 1, "tuak": 2, "xor": 3}

TEMPLATE_ISIM = "2.23.143.1.2.8"
TEMPLATE_OPT_ISIM = "2.23.143.1.2.9"
_ISIM_SLOTS = {
    0x6F02: "ef-impi",
    0x6F04: "ef-impu",
    0x6F03: "ef-domain",
    0x6F07: "ef-ist",
    0x6FAD: "ef-ad",
    0x6F06: "ef-arr",
}
_OPT_ISIM_SLOTS = {0x6F09: "ef-pcscf"}

# TCA v3.3.1 §8.1 ServicesList: the algorithm the eUICC must support.
_SERVICE = {"milenage": "milenage", "xor": "usim-test-algorithm"}

# Which PE slot holds which file (TCA v3.3.1 §8.3.x PE-MF / PE-USIM / PE-OPT-USIM).
_MF_SLOTS = {0x2F05: "ef-pl", 0x2FE2: "ef-iccid", 0x2F00: "ef-dir", 0x2F06: "ef-arr"}
_USIM_SLOTS = {
    0x6F07: "ef-imsi",
    0x6F06: "ef-arr",
    0x6F08: "ef-keys",
    0x6F09: "ef-keysPS",
    0x6F31: "ef-hpplmn",
    0x6F38: "ef-ust",
    0x6F3B: "ef-fdn",
    0x6F3C: "ef-sms",
    0x6F42: "ef-smsp",
    0x6F43: "ef-smss",
    0x6F46: "ef-spn",
    0x6F56: "ef-est",
    0x6F5B: "ef-start-hfn",
    0x6F5C: "ef-threshold",
    0x6F73: "ef-psloci",
    0x6F78: "ef-acc",
    0x6F7B: "ef-fplmn",
    0x6F7E: "ef-loci",
    0x6FAD: "ef-ad",
    0x6FB7: "ef-ecc",
}
_GSM_ACCESS_SLOTS = {0x4F20: "ef-kc", 0x4F52: "ef-kcgprs"}
_DF_5GS_SLOTS = {
    0x4F01: "ef-5gs3gpploci",
    0x4F02: "ef-5gsn3gpploci",
    0x4F03: "ef-5gs3gppnsc",
    0x4F04: "ef-5gsn3gppnsc",
    0x4F05: "ef-5gauthkeys",
    0x4F06: "ef-uac-aic",
    0x4F07: "ef-suci-calc-info",
    0x4F08: "ef-opl5g",
    0x4F0A: "ef-routing-indicator",
}
_DF_SAIP_SLOTS = {0x4F01: "ef-suci-calc-info-usim"}
_OPT_USIM_SLOTS = {
    0x6F05: "ef-li",
    0x6F40: "ef-msisdn",
    0x6F60: "ef-plmnwact",
    0x6F61: "ef-oplmnwact",
    0x6F62: "ef-hplmnwact",
}
# Files the USIM template creates by default (TCA v3.3.1 Annex A) that the builder's
# profile does not have: the package says doNotCreate for them.
_USIM_DEFAULT_ONLY = ("ef-fdn", "ef-smss", "ef-netpar", "ef-epsloci", "ef-epsnsc")
# The temporary file ID of the ADF inside the package (TCA v3.3.1 §8.3.5: unique in the profile).
_ADF_TEMP_FID = b"\x7f\xd0"
_ISIM_TEMP_FID = b"\x7f\xd1"
_ISIM_RID = bytes.fromhex("A0000000871004")  # TS 101 220 Annex E: 3GPP, ISIM


@dataclass(frozen=True, repr=False)
class ProfileOrder:
    """What the operator orders: one subscription, downloadable with a matching ID.

    Attributes:
        matching_id: the activation code token (SGP.22 §4.1).
        iccid: 18-19 digits; the Luhn check digit is added to 18/19-digit bodies
            when `add_check_digit` is true.
        imsi, k, opc: the subscription; `opc` is TOPc (32 bytes) for TUAK, whose K
            is 16 or 32 bytes, and is ignored for the XOR test algorithm.
        algorithm: "milenage", "tuak" (TS 35.231) or "xor" (3GPP TS 34.108 §8.1.2).
        keccak_iterations: TUAK only: how many times Keccak-f[1600] is applied
            (TS 35.231 §7.2, 1..255), carried as the AlgoParameter's numberOfKeccak.
        eid: the only eUICC allowed to download it, or None for any.
        spn, name: service provider name and profile name (metadata).
        profile_class: "test", "provisioning" or "operational".
        suci: 5G subscription identifier privacy (DF.5GS, DF.SAIP, services 124/125).
        isim: an ISIM beside the USIM (PE-ISIM, PE-OPT-ISIM).
    """

    matching_id: str
    iccid: str
    imsi: str
    k: bytes
    opc: bytes = bytes(16)
    algorithm: str = "milenage"
    keccak_iterations: int = 1
    eid: str | None = None
    spn: str = "cardemu"
    name: str = "cardemu test profile"
    profile_class: str = "operational"
    msisdn: str | None = None
    pin1: str = "1234"
    puk1: str = "11111111"
    pin2: str = "5678"
    puk2: str = "22222222"
    adm1: str = "12345678"
    add_check_digit: bool = False
    suci: SuciSetup | None = None
    isim: IsimSetup | None = None

    def __post_init__(self) -> None:
        if not self.matching_id or len(self.matching_id) > 255:
            raise ValueError("a matching ID has 1 to 255 characters")
        if self.algorithm not in _ALGORITHM_ID:
            raise ValueError(f"unknown algorithm {self.algorithm!r}: milenage, tuak or xor")
        if self.algorithm == "tuak":
            if len(self.k) not in (16, 32) or len(self.opc) != 32:
                raise ValueError("TUAK's K is 16 or 32 bytes, its TOPc 32")
            if not 1 <= self.keccak_iterations <= 255:
                raise ValueError("TUAK's Keccak iteration count is 1..255")
        elif self.keccak_iterations != 1:
            raise ValueError("a Keccak iteration count is TUAK's only")
        elif len(self.k) != 16 or len(self.opc) != 16:
            raise ValueError("K and OPc are 16 bytes")
        isim_auth = self.isim.auth if self.isim is not None else None
        if isim_auth is not None and isim_auth.op is not None:
            raise ValueError("the ISIM's own keys go into a package with OPc, not OP")
        if self.profile_class not in ("test", "provisioning", "operational"):
            raise ValueError(f"unknown profile class {self.profile_class!r}")
        if not (self.full_iccid.isdigit() and 18 <= len(self.full_iccid) <= 20):
            raise ValueError(f"an ICCID has 18 to 20 digits, not {self.full_iccid!r}")
        # TS 23.003 2.2: MCC (3) + MNC (2-3) + MSIN, at most 15 digits in all.
        if not (self.imsi.isdigit() and 6 <= len(self.imsi) <= 15):
            raise ValueError(f"an IMSI has 6 to 15 digits, not {self.imsi!r}")

    @property
    def full_iccid(self) -> str:
        """The ICCID with its check digit when `add_check_digit` asks for one."""
        return self.iccid + luhn_digit(self.iccid) if self.add_check_digit else self.iccid

    def __repr__(self) -> str:
        return f"ProfileOrder({self.matching_id!r}, iccid={self.full_iccid}, <keys hidden>)"


def iccid_to_ef(iccid: str) -> bytes:
    """The ICCID as EF.ICCID and SGP.22's Iccid (tag 5A) hold it: swapped BCD, F-padded."""
    digits = iccid + "F" * (20 - len(iccid))
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, 20, 2)))


def iccid_to_header(iccid: str) -> bytes:
    """The ICCID as the SAIP ProfileHeader holds it: plain BCD, F-padded (TCA v3.3.1 §8.2)."""
    return bytes.fromhex(iccid + "F" * (20 - len(iccid)))


def _size(n: int) -> bytes:
    # TCA v3.3.1 §8.3.2: efFileSize on the minimum number of octets.
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def _fcp(f: FileSpec, adf_fid: bytes = _ADF_TEMP_FID) -> dict[str, Any]:
    fcp: dict[str, Any] = {"fileID": f.fid.to_bytes(2, "big") if f.fid is not None else None}
    if f.security is not None and len(f.security) == 5:
        # The value of the '8B' data object: EF.ARR file ID and record number.
        fcp["securityAttributesReferenced"] = f.security[2:]
    if f.is_df:
        fcp["pinStatusTemplateDO"] = bytes(ref for ref, _ in f.pins)
        if f.name is not None:
            fcp["dfName"] = f.name
            fcp["fileID"] = adf_fid
        return {k: v for k, v in fcp.items() if v is not None}
    if f.record_length:
        fcp["fileDescriptor"] = bytes((f.fdb, 0x21)) + f.record_length.to_bytes(2, "big")
        fcp["efFileSize"] = _size(f.record_length * f.records)
    else:
        fcp["fileDescriptor"] = bytes((f.fdb, 0x21))
        fcp["efFileSize"] = _size(f.size)
    # An empty shortEFID means "no SFI" (TCA v3.3.1 §8.3.2); otherwise b8..b4 hold the SFI.
    fcp["shortEFID"] = bytes((f.sfi << 3,)) if f.sfi else b""
    return fcp


def _content(f: FileSpec) -> bytes:
    if f.content is None:
        return b""
    if isinstance(f.content, bytes):
        return f.content
    return b"".join(r.ljust(f.record_length, b"\xff") for r in f.content)


def _file(f: FileSpec, adf_fid: bytes = _ADF_TEMP_FID) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("fileDescriptor", _fcp(f, adf_fid))]
    data = _content(f)
    if data:
        out.append(("fillFileContent", data))
    return out


def _header(ident: int) -> dict[str, Any]:
    return {"mandated": None, "identification": ident}


def _pin(value: str) -> bytes:
    return value.encode().ljust(8, b"\xff")


def _profile(order: ProfileOrder) -> Profile:
    return build_profile(
        order.full_iccid,
        order.imsi,
        order.k,
        order.opc if order.algorithm != "xor" else None,
        msisdn=order.msisdn,
        spn=order.spn,
        algorithm=order.algorithm,
        pin1=order.pin1,
        puk1=order.puk1,
        pin2=order.pin2,
        puk2=order.puk2,
        adm1=order.adm1,
        name=order.name,
        suci=order.suci,
        isim=order.isim,
    )


def _elements(order: ProfileOrder) -> list[tuple[str, dict[str, Any]]]:
    profile = _profile(order)
    by_parent: dict[str | None, list[FileSpec]] = {}
    for f in profile.files:
        by_parent.setdefault(f.parent, []).append(f)
    mf = profile.files[0]
    adf = profile.usim_adf()
    if adf is None:
        raise ValueError("the profile has no USIM")

    ident = iter(range(1, 100))
    services: dict[str, None] = {"usim": None}
    services[
        _SERVICE[order.algorithm] if order.algorithm != "tuak" else f"tuak{len(order.k) * 8}"
    ] = None
    gfste = [TEMPLATE_MF, TEMPLATE_USIM, TEMPLATE_OPT_USIM]
    pes: list[tuple[str, dict[str, Any]]] = [
        (
            "header",
            {
                "major-version": 2,
                "minor-version": 3,
                "profileType": order.name[:100] or "cardemu",
                "iccid": iccid_to_header(order.full_iccid),
                "eUICC-Mandatory-services": services,
                "eUICC-Mandatory-GFSTEList": gfste,
            },
        )
    ]
    mf_pe: dict[str, Any] = {
        "mf-header": _header(next(ident)),
        "templateID": TEMPLATE_MF,
        "mf": _file(mf),
    }
    for f in by_parent.get(mf.handle, []):
        slot = _MF_SLOTS.get(f.fid or 0)
        if slot:
            mf_pe[slot] = _file(f)
    pes.append(("mf", mf_pe))
    pes.append(
        (
            "pukCodes",
            {
                "puk-Header": _header(next(ident)),
                "pukCodes": [
                    {
                        "keyReference": 1,
                        "pukValue": _pin(order.puk1),
                        "maxNumOfAttemps-retryNumLeft": 0xAA,
                    },
                    {
                        "keyReference": 129,
                        "pukValue": _pin(order.puk2),
                        "maxNumOfAttemps-retryNumLeft": 0xAA,
                    },
                ],
            },
        )
    )
    pes.append(
        (
            "pinCodes",
            {
                "pin-Header": _header(next(ident)),
                "pinCodes": (
                    "pinconfig",
                    [
                        # pinAttributes 6: PIN1 disabled, may be enabled (TCA v3.3.1 §8.6.1).
                        {
                            "keyReference": 1,
                            "pinValue": _pin(order.pin1),
                            "unblockingPINReference": 1,
                            "pinAttributes": 6,
                            "maxNumOfAttemps-retryNumLeft": 0x33,
                        },
                        {
                            "keyReference": 10,
                            "pinValue": _pin(order.adm1),
                            "pinAttributes": 3,
                            "maxNumOfAttemps-retryNumLeft": 0xAA,
                        },
                    ],
                ),
            },
        )
    )
    usim: dict[str, Any] = {
        "usim-header": _header(next(ident)),
        "templateID": TEMPLATE_USIM,
        "adf-usim": _file(adf),
    }
    opt: dict[str, Any] = {"optusim-header": None, "templateID": TEMPLATE_OPT_USIM}
    for f in by_parent.get(adf.handle, []):
        fid = f.fid or 0
        if fid in _USIM_SLOTS:
            usim[_USIM_SLOTS[fid]] = _file(f)
        elif fid in _OPT_USIM_SLOTS:
            opt[_OPT_USIM_SLOTS[fid]] = _file(f)
    for slot in _USIM_DEFAULT_ONLY:
        usim.setdefault(slot, [("doNotCreate", None)])
    pes.append(("usim", usim))
    opt["optusim-header"] = _header(next(ident))
    pes.append(("opt-usim", opt))
    for pe, fid, tpl, slots in (
        ("gsm-access", 0x5F3B, TEMPLATE_GSM_ACCESS, _GSM_ACCESS_SLOTS),
        ("df-5gs", 0x5FC0, TEMPLATE_DF_5GS, _DF_5GS_SLOTS),
        ("df-saip", 0x5FD0, TEMPLATE_DF_SAIP, _DF_SAIP_SLOTS),
    ):
        df = next((f for f in by_parent.get(adf.handle, []) if f.fid == fid and f.is_df), None)
        if df is None:
            continue
        value: dict[str, Any] = {
            f"{pe}-header": _header(next(ident)),
            "templateID": tpl,
            f"df-{pe}": _file(df),
        }
        for f in by_parent.get(df.handle, []):
            if (f.fid or 0) in slots:
                value[slots[f.fid or 0]] = _file(f)
        pes.append((pe, value))
        gfste.append(tpl)
    isim = next(
        (f for f in profile.files if f.parent == mf.handle and (f.name or b"")[:7] == _ISIM_RID),
        None,
    )
    if isim is not None:
        # The USIM's AKA parameters in the USIM's context: before PE-ISIM (an akaParameter
        # belongs to the NAA whose ADF the PEs before it created last).
        pes.append(
            _aka_pe(next(ident), order.algorithm, order.k, order.opc, order.keccak_iterations)
        )
        services["isim"] = None
        isim_pe: dict[str, Any] = {
            "isim-header": _header(next(ident)),
            "templateID": TEMPLATE_ISIM,
            "adf-isim": _file(isim, _ISIM_TEMP_FID),
        }
        opt_isim: dict[str, Any] = {
            "optisim-header": _header(next(ident)),
            "templateID": TEMPLATE_OPT_ISIM,
        }
        for f in by_parent.get(isim.handle, []):
            fid = f.fid or 0
            if fid in _ISIM_SLOTS:
                isim_pe[_ISIM_SLOTS[fid]] = _file(f)
            elif fid in _OPT_ISIM_SLOTS:
                opt_isim[_OPT_ISIM_SLOTS[fid]] = _file(f)
        pes.append(("isim", isim_pe))
        pes.append(("opt-isim", opt_isim))
        gfste.extend((TEMPLATE_ISIM, TEMPLATE_OPT_ISIM))
    pes.append(
        (
            "pinCodes",
            {
                "pin-Header": _header(next(ident)),
                "pinCodes": (
                    "pinconfig",
                    [
                        {
                            "keyReference": 129,
                            "pinValue": _pin(order.pin2),
                            "unblockingPINReference": 129,
                            "pinAttributes": 3,
                            "maxNumOfAttemps-retryNumLeft": 0x33,
                        }
                    ],
                ),
            },
        )
    )
    if isim is None:
        pes.append(
            _aka_pe(next(ident), order.algorithm, order.k, order.opc, order.keccak_iterations)
        )
    elif order.isim is not None and order.isim.auth is not None:
        # The ISIM's own keys: an akaParameter in the ISIM's context (after the PE that
        # created ADF.ISIM, TCA SAIP §"PE-AKAParameter").
        a = order.isim.auth
        opc = a.opc if a.opc is not None else bytes(16)
        pes.append(_aka_pe(next(ident), a.algorithm, a.k, opc, a.keccak_iterations))
    pes.append(("end", {"end-header": _header(next(ident))}))
    return pes


def _aka_pe(ident: int, algorithm: str, k: bytes, opc: bytes, keccak: int) -> tuple[str, Any]:
    """PE-AKAParameter with an algoParameter (TCA SAIP): Milenage, TUAK or XOR."""
    algo: dict[str, Any] = {
        "algorithmID": _ALGORITHM_ID[algorithm],
        "algorithmOptions": b"\x02",
        "key": k,
        "opc": opc if algorithm != "xor" else bytes(16),
    }
    if algorithm == "tuak" and keccak != 1:
        # TCA SAIP AlgoParameter: numberOfKeccak (TS 35.231 §7.2), DEFAULT 1 (DER omits it).
        algo["numberOfKeccak"] = keccak
    return (
        "akaParameter",
        {"aka-header": _header(ident), "algoConfiguration": ("algoParameter", algo)},
    )


def build_upp(order: ProfileOrder) -> bytes:
    """The unprotected profile package (profile elements back to back, DER) for `order`."""
    return b"".join(asn1.encode_pe(pe) for pe in _elements(order))


def upp_iccid(upp: bytes) -> str:
    """The ICCID a profile package's header names (digits, F padding removed).

    Raises:
        card.sgp22.asn1.Asn1Error: not a profile package starting with its header.
        ValueError: the first element is not the header.
    """
    elements: Sequence[tuple[str, Any]] = asn1.decode_pe_sequence(upp)
    if not elements or elements[0][0] != "header":
        raise ValueError("a profile package starts with its header element")
    return elements[0][1]["iccid"].hex().upper().rstrip("F")
