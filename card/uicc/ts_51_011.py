"""The GSM class (CLA A0) view of the card: 3GPP TS 51.011 (GSM 11.11) §9 and §10.

A SIM tool probing a card sends SELECT and GET RESPONSE with CLA A0; a UICC
that answers them gives the SELECT response of TS 51.011 §9.2.1 (not an FCP),
announced with 9Fxx, and uses the GSM status words of §9.4.

DF.GSM (7F20, §10.7) holds the SIM's files. Those whose file identifier and
coding TS 51.011 §10.3 and TS 31.102 §4.2 share (`SHARED_WITH_USIM`: IMSI,
HPPLMN, SPN, ACC, FPLMN, LOCI, AD) are one subscription's data seen twice: the
card keeps the two copies equal (a write through either updates both). EF.SST,
EF.PLMNsel, EF.Kc, EF.BCCH and EF.PHASE are the SIM's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from card.fs import FileInfo
from card.fs.security import ALWAYS, NEVER, AccessRules, Op
from card.uicc import ts_31_102 as usim
from card.uicc.filedef import FileDef, vec

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

# TS 51.011 §10.7: DF.GSM and its EFs (§10.3.x).
DF_GSM = 0x7F20
EF_IMSI = 0x6F07  # §10.3.2
EF_KC = 0x6F20  # §10.3.3
EF_PLMNSEL = 0x6F30  # §10.3.4
EF_HPPLMN = 0x6F31  # §10.3.5
EF_SST = 0x6F38  # §10.3.7
EF_SPN = 0x6F46  # §10.3.11
EF_BCCH = 0x6F74  # §10.3.14
EF_ACC = 0x6F78  # §10.3.15
EF_FPLMN = 0x6F7B  # §10.3.16
EF_LOCI = 0x6F7E  # §10.3.17
EF_AD = 0x6FAD  # §10.3.18
EF_PHASE = 0x6FAE  # §10.3.19

# TS 51.011 §10.5: DF.TELECOM (7F10) and its EFs.
EF_ADN = 0x6F3A  # §10.5.1
EF_SMS = 0x6F3C  # §10.5.3
EF_MSISDN = 0x6F40  # §10.5.5
EF_SMSP = 0x6F42  # §10.5.6
EF_SMSS = 0x6F43  # §10.5.7
EF_EXT1 = 0x6F4A  # §10.5.10

#: EFs of DF.GSM that are the same file as the EF with the same identifier in ADF.USIM
#: (same coding in TS 51.011 §10.3 and TS 31.102 §4.2): the card keeps the two equal.
SHARED_WITH_USIM = frozenset({EF_IMSI, EF_HPPLMN, EF_SPN, EF_ACC, EF_FPLMN, EF_LOCI, EF_AD})

KC_SIZE = 9  # Kc (8 bytes) and the ciphering key sequence number
CKSN_NO_KEY = 0x07  # §10.3.3: no key available
BCCH_SIZE = 16
PLMNSEL_SIZE = 24  # §10.3.4: at least 8 PLMNs of 3 bytes
PHASE_2 = 0x02  # §10.3.19: phase 2 (no PROFILE DOWNLOAD needed)

# §10.3.7: the SIM service table's service numbers this card's DF.GSM can offer.
SST_CHV1_DISABLE = 1
SST_ADN = 2
SST_SMS = 4
SST_PLMN_SELECTOR = 7
SST_MSISDN = 9
SST_EXT1 = 10
SST_SMSP = 12
SST_SPN = 17

# §9.2.9-13: CHV numbers in P2 (UNBLOCK CHV codes CHV1 as 00).
CHV1 = 0x01
CHV2 = 0x02
UNBLOCK_CHV1 = 0x00
CHV_LENGTH = 8  # §9.3: a CHV or an UNBLOCK CHV is 8 bytes, digits padded with FF
RUN_GSM_RAND_LENGTH = 16  # §9.2.16
RUN_GSM_RESPONSE_LENGTH = 12  # SRES (4) || Kc (8)

# TS 51.011 §9.3: type of file.
TYPE_MF = 0x01
TYPE_DF = 0x02
TYPE_EF = 0x04

# TS 51.011 §9.3: structure of file.
STRUCT_TRANSPARENT = 0x00
STRUCT_LINEAR_FIXED = 0x01
STRUCT_CYCLIC = 0x03

# TS 51.011 §9.3: access condition levels.
AC_ALW = 0x0
AC_CHV1 = 0x1
AC_CHV2 = 0x2
AC_ADM = 0xA  # ADM levels are 4..E, their meaning is the administrator's
AC_NEV = 0xF

# TS 51.011 §9.4: status words.
SW_NO_EF_SELECTED = 0x9400
SW_OUT_OF_RANGE = 0x9402
SW_FILE_NOT_FOUND = 0x9404
SW_FILE_INCONSISTENT = 0x9408
SW_NO_CHV = 0x9802
SW_ACCESS_NOT_FULFILLED = 0x9804
SW_CHV_CONTRADICTION = 0x9808
SW_CHV_BLOCKED = 0x9840
SW_INCORRECT_P3 = 0x6700
SW_INCORRECT_P1P2 = 0x6B00
SW_UNKNOWN_INS = 0x6D00
SW_WRONG_CLASS = 0x6E00
SW_TECHNICAL_PROBLEM = 0x6F00

_ISO_TO_GSM = {
    0x6A82: SW_FILE_NOT_FOUND,
    0x6982: SW_ACCESS_NOT_FULFILLED,
    0x6986: SW_NO_EF_SELECTED,
    0x6981: SW_FILE_INCONSISTENT,
    0x6A83: SW_OUT_OF_RANGE,
    0x6B00: SW_OUT_OF_RANGE,
    0x6A86: SW_INCORRECT_P1P2,
    0x6A88: SW_NO_CHV,
    0x6983: SW_CHV_BLOCKED,
    0x6985: SW_CHV_CONTRADICTION,
    0x6282: SW_INCORRECT_P3,
    0x6283: SW_FILE_INCONSISTENT,
    0x6700: SW_INCORRECT_P3,
}


def gsm_status(iso_sw: int) -> int:
    """The TS 51.011 §9.4 status word for an ISO 7816-4 one.

    63Cx with attempts left is 9804 (unsuccessful CHV verification, at least one
    attempt left), 63C0 and 6983 are 9840 (no attempt left, blocked), 6Cxx is 67xx.
    """
    if iso_sw >> 4 == 0x63C:
        return SW_ACCESS_NOT_FULFILLED if iso_sw & 0x0F else SW_CHV_BLOCKED
    if iso_sw >> 8 == 0x6C:
        return 0x6700 | (iso_sw & 0xFF)
    return _ISO_TO_GSM.get(iso_sw, iso_sw)


@dataclass(frozen=True)
class ChvStatus:
    """One byte of §9.2.1 bytes 19-22: b8 secret code initialised, b4-b1 attempts left."""

    initialised: bool
    tries: int

    def to_byte(self) -> int:
        return (0x80 if self.initialised else 0) | (self.tries & 0x0F)


def access_level(rules: AccessRules, op: int) -> int:
    """One nibble of §9.3 for an operation: ALW, CHV1, CHV2, ADM or NEV."""
    alts = rules.alternatives(op)
    if alts == ALWAYS:
        return AC_ALW
    if alts == NEVER:
        return AC_NEV
    refs = min((sorted(a) for a in alts), key=len)
    if refs == [0x01]:
        return AC_CHV1
    if refs == [0x81]:
        return AC_CHV2
    return AC_ADM


def df_response(
    info: FileInfo,
    *,
    children_df: int,
    children_ef: int,
    chv1: ChvStatus,
    puk1: ChvStatus,
    chv2: ChvStatus,
    puk2: ChvStatus,
    chv1_enabled: bool,
    free_memory: int = 0,
) -> bytes:
    """SELECT response for the MF or a DF (§9.2.1), 22 bytes."""
    characteristics = 0x31  # clock stop allowed, 3 V and 1.8 V technology
    if not chv1_enabled:
        characteristics |= 0x80  # b8: CHV1 disabled
    return (
        b"\x00\x00"
        + min(free_memory, 0xFFFF).to_bytes(2, "big")
        + (info.fid or 0).to_bytes(2, "big")
        + bytes((TYPE_MF if info.parent is None else TYPE_DF,))
        + bytes(5)
        + bytes((9, characteristics, children_df & 0xFF, children_ef & 0xFF, 4, 0))
        + bytes((chv1.to_byte(), puk1.to_byte(), chv2.to_byte(), puk2.to_byte()))
    )


def ef_response(info: FileInfo, rules: AccessRules) -> bytes:
    """SELECT response for an EF (§9.2.1), 15 bytes."""
    if info.is_transparent:
        structure, size, reclen = STRUCT_TRANSPARENT, info.size, 0
    elif info.is_cyclic:
        structure, size, reclen = STRUCT_CYCLIC, info.size, info.record_length
    else:
        structure, size, reclen = STRUCT_LINEAR_FIXED, info.size, info.record_length
    byte8 = 0x40 if info.is_cyclic and info.increase_allowed else 0x00
    read, update = access_level(rules, Op.READ), access_level(rules, Op.UPDATE)
    increase = update if info.is_cyclic and info.increase_allowed else AC_NEV
    rehab, inval = access_level(rules, Op.ACTIVATE), access_level(rules, Op.DEACTIVATE)
    status = 0x01 if info.lcs & 0xFD == 0x05 else 0x00
    return (
        b"\x00\x00"
        + size.to_bytes(2, "big")
        + (info.fid or 0).to_bytes(2, "big")
        + bytes((TYPE_EF, byte8, read << 4 | update, increase << 4 | 0x0, rehab << 4 | inval))
        + bytes((status, 2, structure, reclen))
    )


def encode_sst(services: Iterable[int], size: int) -> bytes:
    """EF.SST (§10.3.7): two bits a service, b1 allocated and b2 activated; service 1 in b1-b2.

    Every service given is allocated and activated.

    Raises:
        ValueError: a service number below 1 or beyond `size` bytes.
    """
    out = bytearray(size)
    for n in services:
        if not 1 <= n <= 4 * size:
            raise ValueError(f"service {n} does not fit in a {size}-byte SIM service table")
        out[(n - 1) // 4] |= 0b11 << (2 * ((n - 1) % 4))
    return bytes(out)


def decode_sst(data: bytes) -> frozenset[int]:
    """The services of EF.SST that are both allocated and activated."""
    return frozenset(
        4 * i + j + 1 for i, b in enumerate(data) for j in range(4) if (b >> (2 * j)) & 0b11 == 0b11
    )


def encode_kc(kc: bytes | None = None, cksn: int = CKSN_NO_KEY) -> bytes:
    """EF.Kc (§10.3.3): Kc and its sequence number; no Kc is FF x 8 with CKSN 07."""
    if kc is not None and len(kc) != 8:
        raise ValueError("Kc is 8 bytes")
    if not 0 <= cksn <= 0x07:
        raise ValueError("CKSN is 0..7")
    return (b"\xff" * 8 if kc is None else bytes(kc)) + bytes((cksn,))


def decode_kc(data: bytes) -> tuple[bytes | None, int]:
    """(Kc, CKSN) of EF.Kc (§10.3.3); Kc None when CKSN is 07 and Kc is all FF (no key).

    Raises:
        ValueError: not 9 bytes, or a CKSN above 07.
    """
    if len(data) != KC_SIZE:
        raise ValueError("EF.Kc is 9 bytes")
    kc, cksn = data[:8], data[8]
    if cksn > 0x07:
        raise ValueError("CKSN is 0..7")
    return (None if cksn == CKSN_NO_KEY and kc == b"\xff" * 8 else kc), cksn


# -- File definitions with their vectors (walked by tests/unit/test_uicc_filedefs.py) ----------

PYSIM = "pySim ts_51_011.py _test_de_encode (osmocom)"
SST_SIZE = 5
FPLMN_SIZE = 12
TELECOM_DN_RECORD_LENGTH = 30  # a 16-byte alpha identifier
SMSP_RECORD_LENGTH = 44


def _st_kc() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    key = st.binary(min_size=8, max_size=8).filter(lambda k: k != b"\xff" * 8)
    return st.one_of(
        st.tuples(key, st.integers(0, 7)),
        st.integers(0, 6).map(lambda n: (b"\xff" * 8, n)),
        st.just((None, CKSN_NO_KEY)),
    )


def _st_sst() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.frozensets(st.integers(1, 4 * SST_SIZE))


def _st_plmnsel() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    plmn = st.builds(
        usim.Plmn,
        st.text(alphabet="0123456789", min_size=3, max_size=3),
        st.text(alphabet="0123456789", min_size=2, max_size=3),
    )
    return st.lists(plmn, max_size=PLMNSEL_SIZE // 3).map(tuple)


def _st_adn() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.builds(
        usim.DiallingNumber,
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ abc0123456789", max_size=16),
        st.text(alphabet="0123456789*#", min_size=1, max_size=20),
        st.integers(0, 255),
        st.integers(0, 255),
    )


_KC_VECTORS = (
    vec((bytes.fromhex("837d783609a3858f"), 5), "837d783609a3858f05", PYSIM),
    vec((None, CKSN_NO_KEY), "ffffffffffffffff07", "§10.3.3: no key available"),
)
_KC_MALFORMED = (bytes(8), bytes.fromhex("837d783609a3858f08"))


def _shared(d: FileDef, name: str, fid: int, df: str, clause: str) -> FileDef:
    """The same codec and vectors as `d` for a file with the same coding elsewhere."""
    return FileDef(
        name, fid, df, clause, d.encode, d.decode, d.vectors, d.malformed, d.strategy, size=d.size
    )


_USIM = {d.name: d for d in usim.FILE_DEFS}

FILE_DEFS: tuple[FileDef, ...] = (
    # DF.GSM's files shared with ADF.USIM (`SHARED_WITH_USIM`): the same coding.
    _shared(_USIM["EF.IMSI"], "EF.IMSI", EF_IMSI, "DF.GSM", "TS 51.011 §10.3.2"),
    _shared(_USIM["EF.SPN"], "EF.SPN", EF_SPN, "DF.GSM", "TS 51.011 §10.3.11"),
    _shared(_USIM["EF.ACC"], "EF.ACC", EF_ACC, "DF.GSM", "TS 51.011 §10.3.15"),
    _shared(_USIM["EF.FPLMN"], "EF.FPLMN", EF_FPLMN, "DF.GSM", "TS 51.011 §10.3.16"),
    _shared(_USIM["EF.AD"], "EF.AD", EF_AD, "DF.GSM", "TS 51.011 §10.3.18 (4-byte form)"),
    FileDef(
        "EF.LOCI",
        EF_LOCI,
        "DF.GSM",
        "TS 51.011 §10.3.17",
        usim.encode_loci,
        usim.decode_loci,
        (
            vec(
                usim.Loci(bytes.fromhex("78025702"), bytes.fromhex("22f810"), 0x0978, 0x00, 0),
                "7802570222f81009780000",
                PYSIM,
            ),
        )
        + _USIM["EF.LOCI"].vectors,
        _USIM["EF.LOCI"].malformed,
        _USIM["EF.LOCI"].strategy,
        size=11,
    ),
    FileDef(
        "EF.Kc",
        EF_KC,
        "DF.GSM",
        "TS 51.011 §10.3.3",
        lambda v: encode_kc(*v),
        decode_kc,
        _KC_VECTORS,
        _KC_MALFORMED,
        _st_kc,
        size=KC_SIZE,
    ),
    FileDef(
        "EF.PLMNsel",
        EF_PLMNSEL,
        "DF.GSM",
        "TS 51.011 §10.3.4",
        lambda plmns: usim.encode_plmn_list(plmns, PLMNSEL_SIZE),
        usim.decode_plmn_list,
        (
            vec(
                (usim.Plmn("228", "06"), usim.Plmn("334", "020")),
                "22f860330420" + "ff" * 18,
                PYSIM + ", FF to 24 bytes",
            ),
        ),
        (bytes.fromhex("4af618") + b"\xff" * 21,),
        _st_plmnsel,
        size=PLMNSEL_SIZE,
    ),
    FileDef(
        "EF.SST",
        EF_SST,
        "DF.GSM",
        "TS 51.011 §10.3.7",
        lambda services: encode_sst(services, SST_SIZE),
        decode_sst,
        (
            # By hand: two bits a service (allocated b1, activated b2), 4 services a byte.
            # 1, 2, 4: 03 | 0C | C0 = CF; 7: byte 2 b5-b6 = 30; 9, 10, 12: CF; 17: byte 5 = 03.
            vec(frozenset({1, 2, 4, 7, 9, 10, 12, 17}), "cf30cf0003", "§10.3.7, worked by hand"),
        ),
        strategy=_st_sst,
        size=SST_SIZE,
    ),
    # DF.GSM-ACCESS (TS 31.102 §4.4.5): EF.Kc coded as TS 51.011 §10.3.3.
    FileDef(
        "EF.Kc",
        0x4F20,
        "DF.GSM-ACCESS",
        "TS 31.102 §4.4.5.1 (coding of TS 51.011 §10.3.3)",
        lambda v: encode_kc(*v),
        decode_kc,
        _KC_VECTORS,
        _KC_MALFORMED,
        _st_kc,
        size=KC_SIZE,
    ),
    FileDef(
        "EF.KcGPRS",
        0x4F52,
        "DF.GSM-ACCESS",
        "TS 31.102 §4.4.5.2 (Kc GPRS and its CKSN, coded as TS 51.011 §10.3.3)",
        lambda v: encode_kc(*v),
        decode_kc,
        _KC_VECTORS,
        _KC_MALFORMED,
        _st_kc,
        size=KC_SIZE,
    ),
    # DF.TELECOM (§10.5).
    FileDef(
        "EF.ADN",
        EF_ADN,
        "DF.TELECOM",
        "TS 51.011 §10.5.1, TS 31.102 §4.4.2.3",
        lambda entry: usim.encode_dialling_number(entry, TELECOM_DN_RECORD_LENGTH),
        usim.decode_dialling_number,
        (
            vec(
                usim.DiallingNumber("B HA 1 Sic", "6082658001"),
                "42204841203120536963ffffffffffff06810628560810ffffffffffffff",
                PYSIM,
            ),
            vec(
                usim.DiallingNumber("Kundenbetreuung", "+491721217212"),
                "4b756e64656e626574726575756e67ff0791947112122721ffffffffffff",
                PYSIM,
            ),
            vec(None, "ff" * TELECOM_DN_RECORD_LENGTH, "§10.5.1: an empty record"),
        ),
        (b"\xff" * 13,),
        _st_adn,
        size=TELECOM_DN_RECORD_LENGTH,
    ),
    _shared(_USIM["EF.MSISDN"], "EF.MSISDN", EF_MSISDN, "DF.TELECOM", "TS 51.011 §10.5.5"),
    _shared(_USIM["EF.SMS"], "EF.SMS", EF_SMS, "DF.TELECOM", "TS 51.011 §10.5.3"),
    _shared(_USIM["EF.SMSP"], "EF.SMSP", EF_SMSP, "DF.TELECOM", "TS 51.011 §10.5.6"),
)
