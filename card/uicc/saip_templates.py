"""File templates of the eUICC Profile Package (TCA Interoperable Format v2.3+ §9, Annex A).

A template PE (mf, usim, gsm-access, ...) names files by their ASN.1 field
("ef-imsi"); the template gives what the PE may leave out: the file
identifier, structure, size, SFI, the EF.ARR record of its access rules and
the default content. Only the templates the TS.48 test profiles rely on for
defaults are tabled here (MF, ADF.USIM mandatory files, DF.GSM-ACCESS); for the
others every file must come with its descriptor.

Facts from the specification's tables: (field, FID, type, records, size or
record length, ARR record, SFI, default content). Types: TR transparent, LF
linear fixed, CY cyclic. A default is `None` (FF), a hex string of the whole
content, or (head, fill byte, tail) for the "07FF...FF" style patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

Default = None | bytes | tuple[bytes, int, bytes]


@dataclass(frozen=True)
class FileTemplate:
    """One file of a template (see the module docstring)."""

    field: str
    fid: int
    kind: str  # "TR", "LF", "CY"
    records: int | None
    size: int | None  # transparent size, or record length
    arr: int
    sfi: int | None
    default: Default = None

    def content(self, total: int) -> bytes:
        """The default content of a file of `total` bytes."""
        d = self.default
        if d is None:
            return b"\xff" * total
        if isinstance(d, bytes):
            return (d + b"\xff" * total)[:total]
        head, fill, tail = d
        mid = max(0, total - len(head) - len(tail))
        return (head + bytes((fill,)) * mid + tail)[:total]


@dataclass(frozen=True)
class DfTemplate:
    """The DF (or ADF) a template PE creates, and the EFs it creates by default."""

    oid_prefix: str
    df_field: str
    df_fid: int | None  # None: an ADF, named by dfName
    parent: str  # "MF", "ADF.USIM", ...
    files: tuple[FileTemplate, ...] = ()
    created_by_default: bool = False


_FF = None
h = bytes.fromhex

# TCA §9.2: files at the MF.
MF = DfTemplate(
    "2.23.143.1.2.1",
    "mf",
    0x3F00,
    "",
    (
        FileTemplate("ef-pl", 0x2F05, "TR", None, 2, 1, 0x05, _FF),
        FileTemplate("ef-iccid", 0x2FE2, "TR", None, 10, 11, None, _FF),
        FileTemplate("ef-dir", 0x2F00, "LF", None, None, 10, 0x1E, _FF),
        FileTemplate("ef-arr", 0x2F06, "LF", None, None, 10, None, _FF),
        FileTemplate("ef-umpc", 0x2F08, "TR", None, 5, 10, 0x08, _FF),
    ),
    created_by_default=True,
)

# TCA §9.5.1: mandatory files of ADF.USIM (created by default).
USIM = DfTemplate(
    "2.23.143.1.2.4",
    "adf-usim",
    None,
    "MF",
    (
        FileTemplate("ef-imsi", 0x6F07, "TR", None, 9, 2, 0x07, _FF),
        FileTemplate("ef-arr", 0x6F06, "LF", None, None, 10, 0x17, _FF),
        FileTemplate("ef-keys", 0x6F08, "TR", None, 33, 5, 0x08, (b"\x07", 0xFF, b"")),
        FileTemplate("ef-keysPS", 0x6F09, "TR", None, 33, 5, 0x09, (b"\x07", 0xFF, b"")),
        FileTemplate("ef-hpplmn", 0x6F31, "TR", None, 1, 2, 0x12, h("0A")),
        FileTemplate("ef-ust", 0x6F38, "TR", None, 14, 2, 0x04, _FF),
        FileTemplate("ef-fdn", 0x6F3B, "LF", 20, 26, 8, None, _FF),
        FileTemplate("ef-sms", 0x6F3C, "LF", 10, 176, 5, None, (b"\x00", 0xFF, b"")),
        FileTemplate("ef-smsp", 0x6F42, "LF", 1, 38, 5, None, _FF),
        FileTemplate("ef-smss", 0x6F43, "TR", None, 2, 5, None, h("FFFF")),
        FileTemplate("ef-spn", 0x6F46, "TR", None, 17, 10, None, _FF),
        FileTemplate("ef-est", 0x6F56, "TR", None, 1, 8, 0x05, _FF),
        FileTemplate("ef-start-hfn", 0x6F5B, "TR", None, 6, 5, 0x0F, h("F00000F00000")),
        FileTemplate("ef-threshold", 0x6F5C, "TR", None, 3, 2, 0x10, h("FFFFFF")),
        FileTemplate(
            "ef-psloci", 0x6F73, "TR", None, 14, 5, 0x0C, h("FFFFFFFFFFFFFFFFFFFF0000FF01")
        ),
        FileTemplate("ef-acc", 0x6F78, "TR", None, 2, 2, 0x06, _FF),
        FileTemplate("ef-fplmn", 0x6F7B, "TR", None, 12, 5, 0x0D, _FF),
        FileTemplate("ef-loci", 0x6F7E, "TR", None, 11, 5, 0x0B, h("FFFFFFFFFFFFFF0000FF01")),
        FileTemplate("ef-ad", 0x6FAD, "TR", None, 4, 10, 0x03, h("00000002")),
        FileTemplate("ef-ecc", 0x6FB7, "LF", 1, 4, 10, 0x01, _FF),
        FileTemplate("ef-netpar", 0x6FC4, "TR", None, 128, 5, None, _FF),
        FileTemplate(
            "ef-epsloci", 0x6FE3, "TR", None, 18, 5, 0x1E, h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000001")
        ),
        FileTemplate("ef-epsnsc", 0x6FE4, "LF", 1, 80, 5, 0x18, _FF),
    ),
    created_by_default=True,
)

# TCA §9.5.4: DF.GSM-ACCESS under ADF.USIM.
GSM_ACCESS = DfTemplate(
    "2.23.143.1.2.7",
    "df-gsm-access",
    0x5F3B,
    "ADF.USIM",
    (
        FileTemplate("ef-kc", 0x4F20, "TR", None, 9, 5, 0x01, (b"", 0xFF, b"\x07")),
        FileTemplate("ef-kcgprs", 0x4F52, "TR", None, 9, 5, 0x02, (b"", 0xFF, b"\x07")),
        FileTemplate("ef-cpbcch", 0x4F63, "TR", None, 10, 5, None, _FF),
        FileTemplate("ef-invscan", 0x4F64, "TR", None, 1, 2, None, h("00")),
    ),
)

#: The DF each template PE creates (or, for an "opt-" PE, extends) and where it hangs.
#: FIDs of TCA §9 (and TS 31.102 §4.4 / TS 102 221 §13); None: an ADF named by dfName.
PE_DFS: dict[str, tuple[str, int | None, str]] = {
    "mf": ("mf", 0x3F00, ""),
    "cd": ("df-cd", 0x7F11, "MF"),
    "telecom": ("df-telecom", 0x7F10, "MF"),
    "usim": ("adf-usim", None, "MF"),
    "opt-usim": ("", None, "ADF.USIM"),
    "isim": ("adf-isim", None, "MF"),
    "opt-isim": ("", None, "ADF.ISIM"),
    "csim": ("adf-csim", None, "MF"),
    "opt-csim": ("", None, "ADF.CSIM"),
    "phonebook": ("df-phonebook", 0x5F3A, "ADF.USIM"),
    "gsm-access": ("df-gsm-access", 0x5F3B, "ADF.USIM"),
    "df-5gs": ("df-df-5gs", 0x5FC0, "ADF.USIM"),
    "df-saip": ("df-df-saip", 0x5FD0, "ADF.USIM"),
    "df-snpn": ("df-df-snpn", 0x5FE0, "ADF.USIM"),
    "df-5gprose": ("df-df-5gprose", 0x5FF0, "ADF.USIM"),
    "eap": ("df-eap", 0x7F20, "MF"),
}

#: Sub-DFs inside template PEs, by field, when the PE omits their file identifier.
SUB_DF_FIDS: dict[str, int] = {
    "df-graphics": 0x5F50,
    "df-phonebook": 0x5F3A,
    "df-multimedia": 0x5F3B,
    "df-mmss": 0x5F3C,
    "df-mcs": 0x5F3D,
    "df-v2x": 0x5F3E,
}

TEMPLATES: dict[str, DfTemplate] = {"mf": MF, "usim": USIM, "gsm-access": GSM_ACCESS}
