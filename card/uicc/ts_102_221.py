"""UICC-level file contents and constants: ETSI TS 102 221.

- EF.ICCID (§13.2): the ICCID in BCD, nibbles swapped, padded with F.
- EF.DIR (§13.1): one application template '61' { '4F' AID, '50' label } per record.
- EF.PL (§13.3) and, with the same coding, EF.LI of TS 31.102 §4.2.1: language
  codes of ISO 639 as two bytes each, unused entries FF FF.
- PIN coding (§9.5.1) and the key references of Table 9.3.
- The access-rule records this project puts in EF.ARR (§9.2.7, in the style of
  the examples of Annex G).

Every encoder has a decoder, and `decode(encode(x)) == x` for every valid x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from card import tlv
from card.fs import ADM1, ALW, NEV, PIN1, PIN2
from card.fs.security import encode_rules
from card.uicc.filedef import FileDef, vec

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "FILE_DEFS",
    "ADM1",
    "ARR_ADM",
    "ARR_DF",
    "ARR_PIN1",
    "ARR_PIN1_READ_ADM_UPDATE",
    "ARR_PIN1_READ_PIN2_UPDATE",
    "ARR_READ_ALW_PIN1_UPDATE",
    "ARR_READ_ALW_UPDATE_NEV",
    "ARR_RECORDS",
    "ARR_ADM_ONLY",
    "ARR_RECORD_LENGTH",
    "ApplicationTemplate",
    "PIN1",
    "PIN2",
    "PIN_LENGTH",
    "USIM_AID_PREFIX",
    "decode_dir_record",
    "decode_iccid",
    "decode_languages",
    "encode_dir_record",
    "encode_iccid",
    "encode_languages",
    "luhn_digit",
    "pad_pin",
    "unpad_pin",
]

#: TS 101 220 Annex E / TS 31.102 §4.1: RID A000000087 (3GPP), application code 1002 (USIM).
USIM_AID_PREFIX = bytes.fromhex("A0000000871002")

#: TS 102 221 §9.5.1: a PIN (and a PUK, and ADM here) is 8 bytes, unused bytes FF.
PIN_LENGTH = 8

ICCID_BYTES = 10
DIR_TAG_TEMPLATE = 0x61
DIR_TAG_AID = 0x4F
DIR_TAG_LABEL = 0x50

# -- EF.ARR records (TS 102 221 §9.2.7). The numbers are what files refer to with '8B'.
#    Access conditions follow the file descriptions of TS 31.102 §4.2 and TS 102 221 §13.
ARR_ADM = 1  # read ALW, update ADM (EF.DIR, EF.ARR, EF.AD, EF.SPN, EF.ECC)
ARR_PIN1_READ_ADM_UPDATE = 2  # read PIN, update ADM (EF.IMSI, EF.UST, EF.ACC, EF.HPPLMN)
ARR_PIN1 = 3  # read PIN, update PIN (EF.LOCI, EF.KEYS, EF.FPLMN, EF.SMS, EF.ADN ...)
ARR_PIN1_READ_PIN2_UPDATE = 4  # read PIN, update PIN2 (EF.EST)
ARR_READ_ALW_PIN1_UPDATE = 5  # read ALW, update PIN (EF.PL, TS 102 221 §13.3)
ARR_READ_ALW_UPDATE_NEV = 6  # read ALW, update NEV (EF.ICCID)
ARR_DF = 7  # DFs and ADFs: activate/deactivate ADM, no creation or deletion over the air
ARR_ADM_ONLY = 8  # read ADM, update ADM (DF.SAIP/EF.SUCI_Calc_Info_USIM: for the USIM only)

ARR_RECORDS: tuple[bytes, ...] = (
    encode_rules(read=ALW, update=ADM1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=PIN1, update=ADM1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=PIN1, update=PIN1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=PIN1, update=PIN2, activate=ADM1, deactivate=ADM1),
    encode_rules(read=ALW, update=PIN1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=ALW, update=NEV, activate=ADM1, deactivate=ADM1),
    encode_rules(activate=ADM1, deactivate=ADM1, delete=NEV, terminate=NEV),
    encode_rules(read=ADM1, update=ADM1, activate=ADM1, deactivate=ADM1),
)
ARR_RECORD_LENGTH = max(len(r) for r in ARR_RECORDS)


# -- PINs (§9.5.1) ---------------------------------------------------------------------


def pad_pin(pin: bytes | str) -> bytes:
    """A PIN as the card compares it: the given bytes (ASCII digits), FF up to 8 bytes.

    Raises:
        ValueError: an empty PIN or one of more than 8 bytes.
    """
    raw = pin.encode("ascii") if isinstance(pin, str) else bytes(pin)
    if not 1 <= len(raw) <= PIN_LENGTH:
        raise ValueError(f"a PIN has 1 to {PIN_LENGTH} bytes, got {len(raw)}")
    return raw + b"\xff" * (PIN_LENGTH - len(raw))


def unpad_pin(padded: bytes) -> bytes:
    """The PIN without its FF padding (inverse of `pad_pin`)."""
    return bytes(padded).rstrip(b"\xff")


# -- BCD with swapped nibbles (§13.2; the same coding TS 24.008 uses for digits) ------------


def swapped_bcd(digits: str, size: int) -> bytes:
    """Digits (0-9 and the extra BCD values A-F given as hex letters), two per byte,
    first digit in the low nibble, padded with F to `size` bytes."""
    if len(digits) > 2 * size:
        raise ValueError(f"{len(digits)} digits do not fit in {size} bytes")
    s = digits.upper() + "F" * (2 * size - len(digits))
    try:
        return bytes(int(s[i + 1] + s[i], 16) for i in range(0, len(s), 2))
    except ValueError:
        raise ValueError(f"not BCD digits: {digits!r}") from None


def unswap_bcd(data: bytes) -> str:
    """The digits of swapped BCD, stopping at the first F nibble (upper-case hex letters
    stand for the BCD values A-E)."""
    out: list[str] = []
    for b in data:
        for nibble in (b & 0x0F, b >> 4):
            if nibble == 0x0F:
                return "".join(out)
            out.append("0123456789ABCDE"[nibble])
    return "".join(out)


# -- EF.ICCID (§13.2) -----------------------------------------------------------------------


def luhn_digit(digits: str) -> str:
    """The Luhn check digit ISO/IEC 7812-1 Annex B puts at the end of an ICCID."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def encode_iccid(iccid: str) -> bytes:
    """EF.ICCID: up to 20 decimal digits, swapped BCD, padded with F (10 bytes).

    Raises:
        ValueError: not 1 to 20 decimal digits.
    """
    if not (iccid.isdigit() and iccid.isascii() and 1 <= len(iccid) <= 2 * ICCID_BYTES):
        raise ValueError(f"an ICCID is 1 to 20 decimal digits, not {iccid!r}")
    return swapped_bcd(iccid, ICCID_BYTES)


def decode_iccid(data: bytes) -> str:
    """The ICCID digits of EF.ICCID."""
    return unswap_bcd(data)


# -- EF.DIR (§13.1) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplicationTemplate:
    """One EF.DIR record: an application's AID and (optional) label."""

    aid: bytes
    label: str = ""


def encode_dir_record(app: ApplicationTemplate, record_length: int) -> bytes:
    """'61' { '4F' AID, '50' label } padded with FF to the record length.

    Raises:
        ValueError: an AID that is not 1..16 bytes, or a template longer than the record.
    """
    if not 1 <= len(app.aid) <= 16:
        raise ValueError("an AID has 1 to 16 bytes")
    inner = tlv.build(DIR_TAG_AID, app.aid)
    if app.label:
        inner += tlv.build(DIR_TAG_LABEL, app.label.encode("utf-8"))
    rec = tlv.build(DIR_TAG_TEMPLATE, inner)
    if len(rec) > record_length:
        raise ValueError(
            f"application template of {len(rec)} bytes in a {record_length}-byte record"
        )
    return rec + b"\xff" * (record_length - len(rec))


def decode_dir_record(record: bytes) -> ApplicationTemplate | None:
    """The application template of an EF.DIR record; None for an empty (FF) record.

    Raises:
        ValueError: the record holds something other than an application template.
    """
    if not record.strip(b"\xff"):
        return None
    objs = tlv.parse(record)
    if len(objs) != 1 or objs[0].tag != DIR_TAG_TEMPLATE:
        raise ValueError("EF.DIR record without an application template '61'")
    aid = objs[0].find(DIR_TAG_AID)
    if aid is None:
        raise ValueError("application template without an AID '4F'")
    label = objs[0].find(DIR_TAG_LABEL)
    return ApplicationTemplate(aid.value, label.value.decode("utf-8", "replace") if label else "")


# -- EF.PL (§13.3) and EF.LI (TS 31.102 §4.2.1) ------------------------------------------------


def encode_languages(codes: list[str] | tuple[str, ...], size: int) -> bytes:
    """ISO 639 alpha-2 codes ("en", "de"), two bytes each, FF FF for unused entries.

    Raises:
        ValueError: a code that is not two ASCII letters, or too many for `size`.
    """
    out = bytearray()
    for c in codes:
        if len(c) != 2 or not c.isascii() or not c.isalpha():
            raise ValueError(f"a language code is two letters, not {c!r}")
        out += c.lower().encode("ascii")
    if len(out) > size:
        raise ValueError(f"{len(codes)} language codes do not fit in {size} bytes")
    return bytes(out) + b"\xff" * (size - len(out))


def decode_languages(data: bytes) -> tuple[str, ...]:
    """The language codes of EF.PL / EF.LI, unused (FF FF) entries left out."""
    out = []
    for i in range(0, len(data) - 1, 2):
        pair = data[i : i + 2]
        if pair == b"\xff\xff":
            continue
        out.append(pair.decode("latin-1"))
    return tuple(out)


# -- File definitions with their vectors (walked by tests/unit/test_uicc_filedefs.py) ----------

PYSIM = "pySim ts_102_221.py / ts_51_011.py _test_de_encode (osmocom)"
DIR_RECORD_LENGTH = 27
PL_SIZE = 10


def _st_iccid() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.text(alphabet="0123456789", min_size=1, max_size=20)


def _st_dir() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    label = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", max_size=5)
    return st.builds(ApplicationTemplate, st.binary(min_size=1, max_size=16), label)


def _st_languages() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    code = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=2)
    return st.lists(code, max_size=PL_SIZE // 2).map(tuple)


FILE_DEFS: tuple[FileDef, ...] = (
    FileDef(
        "EF.ICCID",
        0x2FE2,
        "MF",
        "TS 102 221 §13.2",
        encode_iccid,
        decode_iccid,
        (
            vec("8988211000000430010", "988812010000400310f0", PYSIM),
            # By hand (§13.2): digit pairs swapped, 20 digits fill the 10 bytes.
            # 89 86 00 12 34 56 78 90 12 34 -> 98 68 00 21 43 65 87 09 21 43
            vec("89860012345678901234", "98680021436587092143", "§13.2, worked by hand"),
        ),
        strategy=_st_iccid,
        size=ICCID_BYTES,
    ),
    FileDef(
        "EF.DIR",
        0x2F00,
        "MF",
        "TS 102 221 §13.1",
        lambda app: encode_dir_record(app, DIR_RECORD_LENGTH),
        decode_dir_record,
        (
            vec(
                ApplicationTemplate(bytes.fromhex("a0000000871004ffffffff8907090000"), "ISim1"),
                "61194f10a0000000871004ffffffff890709000050054953696d31",
                PYSIM,
            ),
            # By hand: '61' L=12 { '4F' 10 AID }, no label, FF to 27 bytes.
            vec(
                ApplicationTemplate(bytes.fromhex("a0000000871002ffffffff8907090000")),
                "61124f10a0000000871002ffffffff8907090000" + "ff" * 7,
                "§13.1, worked by hand",
            ),
        ),
        malformed=(
            bytes.fromhex("6103500141") + b"\xff" * 22,  # a template without '4F'
            bytes.fromhex("611a4f10a0000000871004"),  # a template longer than the record
            bytes.fromhex("4f10a0000000871004ffffffff8907090000") + b"\xff" * 9,  # no '61'
        ),
        strategy=_st_dir,
        size=DIR_RECORD_LENGTH,
    ),
    FileDef(
        "EF.PL",
        0x2F05,
        "MF",
        "TS 102 221 §13.3",
        lambda codes: encode_languages(codes, PL_SIZE),
        decode_languages,
        (
            vec(("en", "de", "ru"), "656e64657275ffffffff", PYSIM),
            vec((), "ff" * PL_SIZE, "§13.3: unused entries are FF FF"),
        ),
        strategy=_st_languages,
        size=PL_SIZE,
    ),
)
