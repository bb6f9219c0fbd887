"""USIM file contents: 3GPP TS 31.102 §4.2 (ADF.USIM) and §4.4 (DF.TELECOM), encoders and decoders.

Codings used across the files:

- PLMN (TS 24.008 §10.5.1.3): MCC digit 2 | MCC digit 1, MNC digit 3 | MCC
  digit 3, MNC digit 2 | MNC digit 1; a two-digit MNC has F as its third digit;
  FF FF FF is an unused entry.
- Service tables (EF.UST §4.2.8, EF.EST §4.2.47): service n is bit (n-1) mod 8
  of byte (n-1) div 8, b1 first.
- Alpha identifiers (TS 31.102 Annex A, TS 102 221 Annex A): the SMS default
  7-bit alphabet of TS 23.038 §6.2.1 one character per byte with b8 = 0, or UCS2
  after an '80' byte ('81' and '82' forms are decoded too); padded with FF.
- Dialling numbers (§4.2.26, §4.4.2.3; TS 24.008 §10.5.4.7): a length byte
  (TON/NPI plus the BCD bytes), TON/NPI, 10 bytes of swapped BCD where A-E
  stand for *, #, DTMF pause, wild value and expansion.

Every encoder has a decoder, and `decode(encode(x)) == x` for every valid x.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from card.uicc.filedef import FileDef, vec
from card.uicc.ts_102_221 import decode_languages, encode_languages, swapped_bcd, unswap_bcd

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

# -- TS 31.102 §4.2.8: the USIM service table ------------------------------------------------

#: Service names of EF.UST (TS 31.102 §4.2.8), the ones a profile here may use.
UST_SERVICES: dict[int, str] = {
    1: "Local Phone Book",
    2: "Fixed Dialling Numbers (FDN)",
    3: "Extension 2",
    4: "Service Dialling Numbers (SDN)",
    5: "Extension 3",
    6: "Barred Dialling Numbers (BDN)",
    7: "Extension 4",
    8: "Outgoing Call Information (OCI and OCT)",
    9: "Incoming Call Information (ICI and ICT)",
    10: "Short Message Storage (SMS)",
    11: "Short Message Status Reports (SMSR)",
    12: "Short Message Service Parameters (SMSP)",
    13: "Advice of Charge (AoC)",
    14: "Capability Configuration Parameters 2 (CCP2)",
    15: "Cell Broadcast Message Identifier",
    16: "Cell Broadcast Message Identifier Ranges",
    17: "Group Identifier Level 1",
    18: "Group Identifier Level 2",
    19: "Service Provider Name",
    20: "User controlled PLMN selector with Access Technology",
    21: "MSISDN",
    22: "Image (IMG)",
    23: "Support of Localised Service Areas (SoLSA)",
    24: "Enhanced Multi-Level Precedence and Pre-emption Service",
    25: "Automatic Answer for eMLPP",
    26: "RFU",
    27: "GSM Access",
    28: "Data download via SMS-PP",
    29: "Data download via SMS-CB",
    30: "Call Control by USIM",
    31: "MO-SMS Control by USIM",
    32: "RUN AT COMMAND command",
    33: "shall be set to 1",
    34: "Enabled Services Table",
    35: "APN Control List (ACL)",
    36: "Depersonalisation Control Keys",
    37: "Co-operative Network List",
    38: "GSM security context",
    39: "CPBCCH Information",
    40: "Investigation Scan",
    41: "MExE",
    42: "Operator controlled PLMN selector with Access Technology",
    43: "HPLMN selector with Access Technology",
    44: "Extension 5",
    45: "PLMN Network Name",
    46: "Operator PLMN List",
    47: "Mailbox Dialling Numbers",
    48: "Message Waiting Indication Status",
    49: "Call Forwarding Indication Status",
    51: "Service Provider Display Information",
    52: "Multimedia Messaging Service (MMS)",
    71: "Equivalent HPLMN",
    85: "EPS Mobility Management Information",
}

#: Service names of EF.EST (TS 31.102 §4.2.47).
EST_SERVICES: dict[int, str] = {
    1: "Fixed Dialling Numbers (FDN)",
    2: "Barred Dialling Numbers (BDN)",
    3: "APN Control List (ACL)",
}

# Services numbers the applet itself consults.
SERVICE_GSM_ACCESS = 27  # §7.1.2.1: Kc in the 3G AUTHENTICATE response
SERVICE_GSM_SECURITY_CONTEXT = 38  # §7.1.2.1: AUTHENTICATE in the GSM context


def encode_service_table(services: Iterable[int], size: int) -> bytes:
    """EF.UST / EF.EST: one bit per service, service 1 in b1 of the first byte.

    Raises:
        ValueError: a service number below 1 or beyond `size` bytes.
    """
    out = bytearray(size)
    for n in services:
        if not 1 <= n <= 8 * size:
            raise ValueError(f"service {n} does not fit in a {size}-byte service table")
        out[(n - 1) // 8] |= 1 << ((n - 1) % 8)
    return bytes(out)


def decode_service_table(data: bytes) -> frozenset[int]:
    """The numbers of the services marked available.

    Cached by content (bytes in, a frozenset out: both immutable), so AUTHENTICATE
    does not decode EF.UST again on every call and an updated EF.UST is a new key.
    """
    return _decode_service_table(bytes(data))


@lru_cache(maxsize=64)
def _decode_service_table(data: bytes) -> frozenset[int]:
    return frozenset(
        8 * i + bit + 1 for i, b in enumerate(data) for bit in range(8) if b >> bit & 1
    )


# -- EF.IMSI (§4.2.2; TS 24.008 §10.5.1.4) -----------------------------------------------------

IMSI_SIZE = 9


def encode_imsi(imsi: str) -> bytes:
    """EF.IMSI: length byte, then the digits with the parity nibble first.

    The first byte after the length holds digit 1 in its high nibble and, in its
    low nibble, the odd/even indicator (b4, 1 for an odd number of digits) and
    the type of identity 001 (IMSI). Unused bytes are FF.

    Raises:
        ValueError: not 6 to 15 decimal digits.
    """
    if not (imsi.isdigit() and imsi.isascii() and 6 <= len(imsi) <= 15):
        raise ValueError(f"an IMSI is 6 to 15 decimal digits, not {imsi!r}")
    parity = 0x9 if len(imsi) % 2 else 0x1
    nibbles = [parity] + [int(d) for d in imsi]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    body = bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))
    return bytes((len(body),)) + body + b"\xff" * (IMSI_SIZE - 1 - len(body))


def decode_imsi(data: bytes) -> str:
    """The IMSI digits of EF.IMSI.

    Raises:
        ValueError: an impossible length byte, or a type of identity other than IMSI.
    """
    if not data:
        raise ValueError("empty EF.IMSI")
    n = data[0]
    if not 1 <= n <= len(data) - 1:
        raise ValueError(f"EF.IMSI length byte {n} does not fit the file")
    body = data[1 : 1 + n]
    if body[0] & 0x07 != 0x01:
        raise ValueError("EF.IMSI does not hold an IMSI (type of identity)")
    odd = bool(body[0] & 0x08)
    digits = [body[0] >> 4] + [x for b in body[1:] for x in (b & 0x0F, b >> 4)]
    if not odd:
        if digits[-1] != 0xF:
            raise ValueError("EF.IMSI: an even IMSI must end with a filler nibble")
        digits = digits[:-1]
    if any(d > 9 for d in digits):
        raise ValueError("EF.IMSI: a digit that is not decimal")
    return "".join(str(d) for d in digits)


# -- PLMN (TS 24.008 §10.5.1.3) ---------------------------------------------------------------


@dataclass(frozen=True)
class Plmn:
    """A PLMN identity: MCC (3 digits) and MNC (2 or 3 digits)."""

    mcc: str
    mnc: str

    def __post_init__(self) -> None:
        if not (self.mcc.isdigit() and self.mcc.isascii() and len(self.mcc) == 3):
            raise ValueError(f"an MCC is 3 digits, not {self.mcc!r}")
        if not (self.mnc.isdigit() and self.mnc.isascii() and len(self.mnc) in (2, 3)):
            raise ValueError(f"an MNC is 2 or 3 digits, not {self.mnc!r}")

    @classmethod
    def from_imsi(cls, imsi: str, mnc_length: int = 2) -> Plmn:
        return cls(imsi[:3], imsi[3 : 3 + mnc_length])

    def __str__(self) -> str:
        return f"{self.mcc}-{self.mnc}"


def encode_plmn(plmn: Plmn) -> bytes:
    """Three bytes of TS 24.008 §10.5.1.3."""
    d = [int(c) for c in plmn.mcc] + [int(c) for c in plmn.mnc]
    mnc3 = d[5] if len(d) == 6 else 0xF
    return bytes((d[1] << 4 | d[0], mnc3 << 4 | d[2], d[4] << 4 | d[3]))


def decode_plmn(data: bytes) -> Plmn | None:
    """A PLMN from three bytes; None for an unused entry (FF FF FF).

    Raises:
        ValueError: not three bytes, or digits that are not decimal.
    """
    if len(data) != 3:
        raise ValueError("a PLMN is 3 bytes")
    if data == b"\xff\xff\xff":
        return None
    mcc = [data[0] & 0x0F, data[0] >> 4, data[1] & 0x0F]
    mnc = [data[2] & 0x0F, data[2] >> 4]
    if data[1] >> 4 != 0xF:
        mnc.append(data[1] >> 4)
    if any(x > 9 for x in mcc + mnc):
        raise ValueError(f"PLMN {data.hex()} has a digit that is not decimal")
    return Plmn("".join(map(str, mcc)), "".join(map(str, mnc)))


def encode_plmn_list(plmns: Iterable[Plmn], size: int) -> bytes:
    """EF.FPLMN (§4.2.16) and other PLMN lists: 3 bytes per entry, FF FF FF unused.

    Raises:
        ValueError: more entries than `size` holds.
    """
    out = b"".join(encode_plmn(p) for p in plmns)
    if len(out) > size:
        raise ValueError(f"{len(out) // 3} PLMNs do not fit in {size} bytes")
    return out + b"\xff" * (size - len(out))


def decode_plmn_list(data: bytes) -> tuple[Plmn, ...]:
    """The used entries of a PLMN list, in order."""
    out = []
    for i in range(0, len(data) - 2, 3):
        p = decode_plmn(data[i : i + 3])
        if p is not None:
            out.append(p)
    return tuple(out)


#: Access technology identifier bits of the PLMN selector files (TS 31.102 §4.2.5).
ACT_UTRAN = 0x8000
ACT_EUTRAN = 0x4000
ACT_NGRAN = 0x0800
ACT_GSM = 0x0080
ACT_ALL = ACT_UTRAN | ACT_EUTRAN | ACT_GSM


def encode_plmn_act_list(entries: Iterable[tuple[Plmn, int]], size: int) -> bytes:
    """EF.PLMNwAcT / EF.OPLMNwAcT / EF.HPLMNwAcT (§4.2.5, §4.2.53, §4.2.54): 5 bytes an entry,
    PLMN then the 2-byte access technology identifier; unused entries are FF FF FF 00 00."""
    out = bytearray()
    for plmn, act in entries:
        if not 0 <= act <= 0xFFFF:
            raise ValueError("an access technology identifier is 2 bytes")
        out += encode_plmn(plmn) + act.to_bytes(2, "big")
    if len(out) > size or size % 5:
        raise ValueError(f"PLMN/AcT entries do not fit in {size} bytes")
    while len(out) < size:
        out += b"\xff\xff\xff\x00\x00"
    return bytes(out)


def decode_plmn_act_list(data: bytes) -> tuple[tuple[Plmn, int], ...]:
    out = []
    for i in range(0, len(data) - 4, 5):
        p = decode_plmn(data[i : i + 3])
        if p is not None:
            out.append((p, int.from_bytes(data[i + 3 : i + 5], "big")))
    return tuple(out)


# -- EF.AD (§4.2.18) ------------------------------------------------------------------------


@dataclass(frozen=True)
class AdministrativeData:
    """EF.AD: UE operation mode, additional information (2 bytes), length of the MNC."""

    ue_operation_mode: int = 0x00  # 00: normal operation
    additional_info: int = 0x0000
    mnc_length: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.ue_operation_mode <= 0xFF or not 0 <= self.additional_info <= 0xFFFF:
            raise ValueError("UE operation mode is 1 byte, additional information 2")
        if self.mnc_length not in (2, 3):
            raise ValueError("the MNC has 2 or 3 digits")


def encode_ad(ad: AdministrativeData) -> bytes:
    return (
        bytes((ad.ue_operation_mode,))
        + ad.additional_info.to_bytes(2, "big")
        + bytes((ad.mnc_length,))
    )


def decode_ad(data: bytes) -> AdministrativeData:
    """Raises: ValueError: fewer than 4 bytes, or an MNC length other than 2 or 3."""
    if len(data) < 4:
        raise ValueError("EF.AD has at least 4 bytes")
    return AdministrativeData(data[0], int.from_bytes(data[1:3], "big"), data[3] & 0x0F)


# -- EF.ACC (§4.2.15) ----------------------------------------------------------------------


def encode_acc(classes: Iterable[int]) -> bytes:
    """EF.ACC: access class n (0-15) is bit n of the 2-byte value (class 0 in b1 of byte 2)."""
    v = 0
    for c in classes:
        if not 0 <= c <= 15:
            raise ValueError(f"access class {c} is not 0..15")
        v |= 1 << c
    return v.to_bytes(2, "big")


def decode_acc(data: bytes) -> frozenset[int]:
    v = int.from_bytes(data[:2], "big")
    return frozenset(c for c in range(16) if v >> c & 1)


def acc_for_imsi(imsi: str) -> frozenset[int]:
    """The access class TS 22.011 §4.2 gives a subscriber: the last digit of the IMSI."""
    return frozenset((int(imsi[-1]),))


# -- EF.LOCI (§4.2.17) and EF.PSLOCI (§4.2.23) ------------------------------------------------

LU_UPDATED = 0x00
LU_NOT_UPDATED = 0x01


@dataclass(frozen=True)
class Loci:
    """EF.LOCI: TMSI, LAI (PLMN + LAC), RFU byte, location update status."""

    tmsi: bytes = b"\xff" * 4
    plmn: bytes = b"\xff\xff\xff"
    lac: int = 0xFFFE
    rfu: int = 0xFF
    status: int = LU_NOT_UPDATED

    def __post_init__(self) -> None:
        if len(self.tmsi) != 4 or len(self.plmn) != 3:
            raise ValueError("TMSI is 4 bytes, PLMN 3")
        if not 0 <= self.lac <= 0xFFFF or not 0 <= self.rfu <= 0xFF or not 0 <= self.status <= 0xFF:
            raise ValueError("LAC is 2 bytes, RFU and status 1")


def encode_loci(loci: Loci) -> bytes:
    return loci.tmsi + loci.plmn + loci.lac.to_bytes(2, "big") + bytes((loci.rfu, loci.status))


def decode_loci(data: bytes) -> Loci:
    if len(data) != 11:
        raise ValueError("EF.LOCI is 11 bytes")
    return Loci(data[:4], data[4:7], int.from_bytes(data[7:9], "big"), data[9], data[10])


@dataclass(frozen=True)
class PsLoci:
    """EF.PSLOCI: P-TMSI, P-TMSI signature, RAI (PLMN + LAC + RAC), routing area update status."""

    ptmsi: bytes = b"\xff" * 4
    ptmsi_signature: bytes = b"\xff" * 3
    plmn: bytes = b"\xff\xff\xff"
    lac: int = 0xFFFE
    rac: int = 0xFF
    status: int = LU_NOT_UPDATED

    def __post_init__(self) -> None:
        if len(self.ptmsi) != 4 or len(self.ptmsi_signature) != 3 or len(self.plmn) != 3:
            raise ValueError("P-TMSI is 4 bytes, its signature 3, PLMN 3")
        if not 0 <= self.lac <= 0xFFFF or not 0 <= self.rac <= 0xFF or not 0 <= self.status <= 0xFF:
            raise ValueError("LAC is 2 bytes, RAC and status 1")


def encode_psloci(p: PsLoci) -> bytes:
    return (
        p.ptmsi + p.ptmsi_signature + p.plmn + p.lac.to_bytes(2, "big") + bytes((p.rac, p.status))
    )


def decode_psloci(data: bytes) -> PsLoci:
    if len(data) != 14:
        raise ValueError("EF.PSLOCI is 14 bytes")
    return PsLoci(
        data[:4], data[4:7], data[7:10], int.from_bytes(data[10:12], "big"), data[12], data[13]
    )


# -- EF.KEYS (§4.2.4) and EF.KEYSPS (§4.2.5) -----------------------------------------------

KSI_NO_KEY = 0x07


@dataclass(frozen=True)
class Keys:
    """EF.KEYS / EF.KEYSPS: key set identifier, CK, IK."""

    ksi: int = KSI_NO_KEY
    ck: bytes = b"\xff" * 16
    ik: bytes = b"\xff" * 16

    def __post_init__(self) -> None:
        if not 0 <= self.ksi <= 0xFF or len(self.ck) != 16 or len(self.ik) != 16:
            raise ValueError("KSI is 1 byte, CK and IK 16")

    def __repr__(self) -> str:
        return f"Keys(ksi={self.ksi}, <CK/IK hidden>)"


def encode_keys(k: Keys) -> bytes:
    return bytes((k.ksi,)) + k.ck + k.ik


def decode_keys(data: bytes) -> Keys:
    if len(data) != 33:
        raise ValueError("EF.KEYS is 33 bytes")
    return Keys(data[0], data[1:17], data[17:33])


# -- Alpha identifiers (TS 31.102 Annex A; TS 23.038 §6.2.1) -----------------------------------

#: The SMS default 7-bit alphabet, TS 23.038 §6.2.1 (index = code; 1B is the escape).
GSM_DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_INDEX = {ch: i for i, ch in enumerate(GSM_DEFAULT_ALPHABET) if i != 0x1B}


def encode_alpha(text: str, size: int) -> bytes:
    """An alpha identifier of `size` bytes: default alphabet if every character has a
    code there, else '80' and UCS2; padded with FF.

    Raises:
        ValueError: the text does not fit.
    """
    if all(ch in _GSM_INDEX for ch in text):
        raw = bytes(_GSM_INDEX[ch] for ch in text)
    else:
        try:
            raw = b"\x80" + text.encode("utf-16-be")
        except UnicodeEncodeError:
            raise ValueError(f"{text!r} cannot be coded in UCS2") from None
        if len(raw) % 2 == 0 or any(ord(ch) >= 0xFFFF for ch in text):
            raise ValueError(f"{text!r} has characters outside UCS2")
    if len(raw) > size:
        raise ValueError(f"alpha identifier {text!r} needs {len(raw)} bytes, has {size}")
    return raw + b"\xff" * (size - len(raw))


def decode_alpha(data: bytes) -> str:
    """The text of an alpha identifier in any of the codings of TS 102 221 Annex A."""
    if not data:
        return ""
    first = data[0]
    if first == 0x80:
        body = data[1:]
        # Trailing FF FF pairs are padding; an odd FF is not a UCS2 character either.
        end = len(body) - len(body) % 2
        chars = []
        for i in range(0, end, 2):
            pair = body[i : i + 2]
            if pair == b"\xff\xff":
                break
            chars.append(pair.decode("utf-16-be", "replace"))
        return "".join(chars)
    if first in (0x81, 0x82):
        if len(data) < 3:
            return ""
        n = data[1]
        if first == 0x81:
            base, pos = data[2] << 7, 3
        else:
            if len(data) < 4:
                return ""
            base, pos = int.from_bytes(data[2:4], "big"), 4
        out = []
        for b in data[pos : pos + n]:
            out.append(chr(base + (b & 0x7F)) if b & 0x80 else GSM_DEFAULT_ALPHABET[b])
        return "".join(out)
    out = []
    for b in data:
        if b == 0xFF:
            break
        out.append(GSM_DEFAULT_ALPHABET[b & 0x7F])
    return "".join(out)


# -- EF.SPN (§4.2.12) ------------------------------------------------------------------------

SPN_SIZE = 17


@dataclass(frozen=True)
class Spn:
    """EF.SPN: display condition byte, then the service provider name (16 bytes)."""

    name: str
    display_condition: int = 0x01  # b1: display the registered PLMN name too

    def __post_init__(self) -> None:
        if not 0 <= self.display_condition <= 0xFF:
            raise ValueError("the display condition is 1 byte")


def encode_spn(spn: Spn) -> bytes:
    return bytes((spn.display_condition,)) + encode_alpha(spn.name, SPN_SIZE - 1)


def decode_spn(data: bytes) -> Spn:
    if not data:
        raise ValueError("empty EF.SPN")
    return Spn(decode_alpha(data[1:]), data[0])


# -- Dialling numbers: EF.MSISDN (§4.2.26), EF.ADN (§4.4.2.3), EF.SMSP addresses ----------------

#: Extended BCD of TS 24.008 Table 10.5.118 / TS 31.102 §4.4.2.3: A-E in the nibbles.
_DIAL_TO_BCD = {"*": "A", "#": "B", "p": "C", "w": "D", "e": "E"}
_BCD_TO_DIAL = {v: k for k, v in _DIAL_TO_BCD.items()}
TON_INTERNATIONAL_ISDN = 0x91
TON_UNKNOWN_ISDN = 0x81
DIALLING_NUMBER_BYTES = 10


def encode_number(number: str, size: int = DIALLING_NUMBER_BYTES) -> tuple[int, bytes]:
    """(TON/NPI, BCD bytes) for a number such as "+4915112345678" or "*100#".

    A leading "+" means an international number (TON/NPI 91), anything else
    unknown/ISDN (81).

    Raises:
        ValueError: characters outside 0-9 * # p w e, or too many digits.
    """
    ton = TON_INTERNATIONAL_ISDN if number.startswith("+") else TON_UNKNOWN_ISDN
    digits = number[1:] if number.startswith("+") else number
    out = []
    for ch in digits:
        if ch.isdigit() and ch.isascii():
            out.append(ch)
        elif ch in _DIAL_TO_BCD:
            out.append(_DIAL_TO_BCD[ch])
        else:
            raise ValueError(f"{ch!r} cannot be dialled")
    return ton, swapped_bcd("".join(out), size)


def decode_number(ton_npi: int, bcd: bytes) -> str:
    """The number as text, with "+" for an international TON (inverse of `encode_number`)."""
    digits = "".join(_BCD_TO_DIAL.get(d, d) for d in unswap_bcd(bcd))
    return ("+" if ton_npi & 0x70 == 0x10 else "") + digits


@dataclass(frozen=True)
class DiallingNumber:
    """One record of EF.ADN, EF.MSISDN (and the other dialling-number files)."""

    alpha: str = ""
    number: str = ""
    ccp: int = 0xFF  # capability/configuration identifier, FF: none
    ext: int = 0xFF  # extension record identifier, FF: none


def dialling_record_length(alpha_size: int) -> int:
    """X + 14 bytes (§4.4.2.3)."""
    return alpha_size + 14


def encode_dialling_number(entry: DiallingNumber | None, record_length: int) -> bytes:
    """One record: alpha identifier (record length - 14 bytes), length, TON/NPI, 10 BCD bytes,
    CCP identifier, extension identifier. None is an empty record (all FF).

    Raises:
        ValueError: a record shorter than 14 bytes, or fields that do not fit.
    """
    if record_length < 14:
        raise ValueError("a dialling-number record has at least 14 bytes")
    if entry is None:
        return b"\xff" * record_length
    alpha = encode_alpha(entry.alpha, record_length - 14)
    if entry.number:
        ton, bcd = encode_number(entry.number)
        used = (len(unswap_bcd(bcd)) + 1) // 2
        number = bytes((used + 1, ton)) + bcd
    else:
        number = b"\xff" * 12
    return alpha + number + bytes((entry.ccp, entry.ext))


def decode_dialling_number(record: bytes) -> DiallingNumber | None:
    """The entry of a record, or None for an empty record.

    Raises:
        ValueError: a record shorter than 14 bytes.
    """
    if len(record) < 14:
        raise ValueError("a dialling-number record has at least 14 bytes")
    if not record.strip(b"\xff"):
        return None
    x = len(record) - 14
    alpha = decode_alpha(record[:x])
    n, ton = record[x], record[x + 1]
    number = ""
    if n != 0xFF and n >= 1:
        used = min(n - 1, DIALLING_NUMBER_BYTES)
        number = decode_number(ton, record[x + 2 : x + 2 + used])
    return DiallingNumber(alpha, number, record[x + 12], record[x + 13])


# -- EF.ECC (§4.2.21) -----------------------------------------------------------------------


@dataclass(frozen=True)
class EmergencyCallCode:
    """One record of EF.ECC: the code (up to 6 digits), alpha identifier, service category."""

    code: str
    alpha: str = ""
    category: int = 0x00

    def __post_init__(self) -> None:
        if not (self.code.isdigit() and self.code.isascii() and 1 <= len(self.code) <= 6):
            raise ValueError(f"an emergency call code is 1 to 6 digits, not {self.code!r}")
        if not 0 <= self.category <= 0xFF:
            raise ValueError("the service category is 1 byte")


def encode_ecc(entry: EmergencyCallCode | None, record_length: int) -> bytes:
    """3 bytes of swapped BCD, the alpha identifier (record length - 4 bytes), the category."""
    if record_length < 4:
        raise ValueError("an EF.ECC record has at least 4 bytes")
    if entry is None:
        return b"\xff" * record_length
    return (
        swapped_bcd(entry.code, 3)
        + encode_alpha(entry.alpha, record_length - 4)
        + bytes((entry.category,))
    )


def decode_ecc(record: bytes) -> EmergencyCallCode | None:
    if len(record) < 4:
        raise ValueError("an EF.ECC record has at least 4 bytes")
    code = unswap_bcd(record[:3])
    if not code:
        return None
    return EmergencyCallCode(code, decode_alpha(record[3:-1]), record[-1])


# -- EF.SMS (§4.2.25) and EF.SMSP (§4.2.27) ---------------------------------------------------

SMS_RECORD_LENGTH = 176
SMS_FREE = 0x00


@dataclass(frozen=True)
class SmsRecord:
    """EF.SMS: status byte (00 free, 01 read, 03 to be read, 05/07 sent/to be sent) + 175 bytes."""

    status: int = SMS_FREE
    body: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.status <= 0xFF or len(self.body) > SMS_RECORD_LENGTH - 1:
            raise ValueError("status is 1 byte, the body at most 175")


def encode_sms(sms: SmsRecord) -> bytes:
    return bytes((sms.status,)) + sms.body + b"\xff" * (SMS_RECORD_LENGTH - 1 - len(sms.body))


def decode_sms(record: bytes) -> SmsRecord:
    """The status and the body with its FF padding removed."""
    if len(record) != SMS_RECORD_LENGTH:
        raise ValueError("an EF.SMS record is 176 bytes")
    return SmsRecord(record[0], record[1:].rstrip(b"\xff"))


SMSP_FIXED = 28
ADDRESS_BYTES = 12


@dataclass(frozen=True)
class SmsParameters:
    """One EF.SMSP record. None fields are absent (their indicator bit set, bytes FF)."""

    alpha: str = ""
    destination: str | None = None
    service_centre: str | None = None
    protocol_id: int | None = None
    coding_scheme: int | None = None
    validity_period: int | None = None


def _address_sc(number: str) -> bytes:
    # TS 24.011 §8.2.5.1: length in bytes of TON/NPI + BCD.
    ton, bcd = encode_number(number)
    used = (len(unswap_bcd(bcd)) + 1) // 2
    return bytes((used + 1, ton)) + bcd


def _address_tp(number: str) -> bytes:
    # TS 23.040 §9.1.2.5: length in useful semi-octets (digits).
    ton, bcd = encode_number(number)
    return bytes((len(unswap_bcd(bcd)), ton)) + bcd


def encode_smsp(p: SmsParameters, record_length: int) -> bytes:
    """Alpha identifier (record length - 28), parameter indicators (b1 destination, b2 service
    centre, b3 PID, b4 DCS, b5 validity period; 0 = present), then the fields."""
    if record_length < SMSP_FIXED:
        raise ValueError("an EF.SMSP record has at least 28 bytes")
    ind = 0xFF
    dest = sc = b"\xff" * ADDRESS_BYTES
    if p.destination is not None:
        ind &= ~0x01
        dest = _address_tp(p.destination)
    if p.service_centre is not None:
        ind &= ~0x02
        sc = _address_sc(p.service_centre)
    rest = bytearray(b"\xff\xff\xff")
    for i, (bit, v) in enumerate(
        ((0x04, p.protocol_id), (0x08, p.coding_scheme), (0x10, p.validity_period))
    ):
        if v is not None:
            if not 0 <= v <= 0xFF:
                raise ValueError("PID, DCS and VP are one byte each")
            ind &= ~bit
            rest[i] = v
    alpha = encode_alpha(p.alpha, record_length - SMSP_FIXED)
    return alpha + bytes((ind & 0xFF,)) + dest + sc + bytes(rest)


def decode_smsp(record: bytes) -> SmsParameters:
    if len(record) < SMSP_FIXED:
        raise ValueError("an EF.SMSP record has at least 28 bytes")
    y = len(record) - SMSP_FIXED
    ind = record[y]
    dest_raw = record[y + 1 : y + 13]
    sc_raw = record[y + 13 : y + 25]
    pid, dcs, vp = record[y + 25], record[y + 26], record[y + 27]
    dest = None if ind & 0x01 else decode_number(dest_raw[1], dest_raw[2:])
    sc = None if ind & 0x02 else decode_number(sc_raw[1], sc_raw[2:])
    return SmsParameters(
        decode_alpha(record[:y]),
        dest,
        sc,
        None if ind & 0x04 else pid,
        None if ind & 0x08 else dcs,
        None if ind & 0x10 else vp,
    )


# -- 5G: EF.SUCI_Calc_Info (§4.4.11.8) and EF.Routing_Indicator (§4.4.11.11) -------------------

#: TS 31.102 §4.2.8: subscription identifier privacy support; SUCI calculation by the USIM.
SERVICE_SUPI_PRIVACY = 124
SERVICE_SUCI_BY_USIM = 125
DF_5GS = 0x5FC0
#: TS 31.102 §4.4.11.1: EFs of DF.5GS used here.
EF_SUCI_CALC_INFO = 0x4F07
EF_ROUTING_INDICATOR = 0x4F0A
#: TS 31.102 §4.2.8: 5GS mobility management information (EF.5GS3GPPLOCI, EF.5GSN3GPPLOCI,
#: EF.5GS3GPPNSC, EF.5GSN3GPPNSC), 5G security parameters (EF.5GAUTHKEYS), UAC access
#: identities (EF.UAC_AIC), 5GS operator PLMN list (EF.OPL5G), SUPI of type NSI/GLI/GCI.
SERVICE_5GS_MM = 122
SERVICE_5G_SECURITY = 123
SERVICE_UAC = 126
SERVICE_OPL5G = 129
SERVICE_SUPI_NAI = 130
#: TS 31.102 §4.4.11.1: the EFs of DF.5GS and their SFIs (the SFI is the FID's low byte).
EF_5GS3GPPLOCI = 0x4F01
EF_5GSN3GPPLOCI = 0x4F02
EF_5GS3GPPNSC = 0x4F03
EF_5GSN3GPPNSC = 0x4F04
EF_5GAUTHKEYS = 0x4F05
EF_UAC_AIC = 0x4F06
EF_OPL5G = 0x4F08
EF_SUPI_NAI = 0x4F09
#: §4.4.11.4: a NAS security context record, at least 57 bytes.
NSC_RECORD_LENGTH = 57
#: §4.4.11.9: an EF.OPL5G record: TAI range (PLMN, TAC low, TAC high) and PNN record.
OPL5G_RECORD_LENGTH = 10
#: The TCA profile package's DF.SAIP (PE-DF-SAIP) holds EF.SUCI_Calc_Info_USIM, the
#: SUCI calculation information only the USIM reads (calculation by the USIM).
DF_SAIP = 0x5FD0
EF_SUCI_CALC_INFO_USIM = 0x4F01
ROUTING_INDICATOR_SIZE = 4


def encode_5gs_loci(plmn: bytes | None = None) -> bytes:
    """EF.5GS3GPPLOCI / EF.5GSN3GPPLOCI (§4.4.11.2-3), 20 bytes: no 5G-GUTI yet ('FF'),
    the last visited TAI (PLMN, TAC 000000; PLMN 'FFFFFF' when none) and the 5GS update
    status 01, "not updated" (TS 24.501 §5.1.3.2.2)."""
    tai = (plmn if plmn is not None else b"\xff\xff\xff") + bytes(3)
    return b"\xff" * 13 + tai + b"\x01"


def decode_5gs_loci(data: bytes) -> bytes | None:
    """The PLMN of the last visited registered TAI of EF.5GS3GPPLOCI / EF.5GSN3GPPLOCI
    (§4.4.11.2-3): bytes 14-16; None when it is 'FFFFFF' (no TAI yet).

    Raises:
        ValueError: not 20 bytes.
    """
    if len(data) != 20:
        raise ValueError("EF.5GS3GPPLOCI is 20 bytes")
    plmn = data[13:16]
    return None if plmn == b"\xff\xff\xff" else plmn


def encode_5gs_nsc(record_length: int = NSC_RECORD_LENGTH) -> bytes:
    """An EF.5GS3GPPNSC / EF.5GSN3GPPNSC record (§4.4.11.4-5) with no NAS security
    context: template 'A0' holding ngKSI '07' ("no key is available", TS 24.501
    §9.11.3.32), padded with 'FF'."""
    body = bytes.fromhex("A003800107")
    if record_length < len(body):
        raise ValueError("an NSC record is at least 5 bytes")
    return body + b"\xff" * (record_length - len(body))


def encode_5g_auth_keys() -> bytes:
    """EF.5GAUTHKEYS (§4.4.11.6), 68 bytes: K_AUSF (tag 80) and K_SEAF (tag 81), none yet."""
    return b"\x80\x20" + b"\xff" * 32 + b"\x81\x20" + b"\xff" * 32


#: §4.4.11.7, byte 1: b1 access identity 1 (MPS), b2 access identity 2 (MCS).
UAC_MPS = 0x01
UAC_MCS = 0x02


def encode_uac_aic(identities: int = 0) -> bytes:
    """EF.UAC_AIC (§4.4.11.7), 4 bytes: byte 1 b1 the UE is configured for access identity 1
    (multimedia priority service), b2 for access identity 2 (mission critical service,
    TS 24.501 §4.5.2); b3-b8 and bytes 2-4 are RFU (00). 0: none (a plain subscription).

    Raises:
        ValueError: bits other than `UAC_MPS` and `UAC_MCS`.
    """
    if not 0 <= identities <= UAC_MPS | UAC_MCS:
        raise ValueError("EF.UAC_AIC configures access identities 1 (MPS) and 2 (MCS) only")
    return bytes((identities,)) + bytes(3)


def decode_uac_aic(data: bytes) -> int:
    """The access identities of EF.UAC_AIC (`UAC_MPS` | `UAC_MCS`), RFU bits ignored.

    Raises:
        ValueError: not 4 bytes.
    """
    if len(data) != 4:
        raise ValueError("EF.UAC_AIC is 4 bytes")
    return data[0] & (UAC_MPS | UAC_MCS)


_TAG_PSI_LIST = 0xA0
_TAG_KEY_LIST = 0xA1
_TAG_KEY_ID = 0x80
_TAG_KEY = 0x81


@dataclass(frozen=True)
class SuciCalcInfo:
    """EF.SUCI_Calc_Info (§4.4.11.8): protection schemes in priority order, each with the
    index (1-based, 0 for the null scheme) of its key in `keys`; `keys` are (home network
    public key identifier, public key)."""

    schemes: tuple[tuple[int, int], ...]
    keys: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        for psi, index in self.schemes:
            if not 0 <= psi <= 0xFF or not 0 <= index <= len(self.keys):
                raise ValueError("a scheme is (identifier 0..255, key index 0..number of keys)")
        for key_id, key in self.keys:
            if not 0 <= key_id <= 0xFF or not 1 <= len(key) <= 0x7F:
                raise ValueError("a key is (identifier 0..255, 1..127 bytes)")


def _tlv(tag: int, value: bytes) -> bytes:
    if len(value) > 0xFF:
        raise ValueError("a value of at most 255 bytes")
    return bytes((tag,)) + (b"\x81" if len(value) > 0x7F else b"") + bytes((len(value),)) + value


def _tlvs(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data) and data[pos] != 0xFF:
        if pos + 2 > len(data):
            raise ValueError("a truncated TLV")
        tag, n = data[pos], data[pos + 1]
        pos += 2
        if n == 0x81:
            if pos >= len(data):
                raise ValueError("a truncated TLV")
            n, pos = data[pos], pos + 1
        elif n > 0x7F:
            raise ValueError("a TLV length over 255")
        if pos + n > len(data):
            raise ValueError("a truncated TLV")
        out.append((tag, data[pos : pos + n]))
        pos += n
    return out


def encode_suci_calc_info(info: SuciCalcInfo) -> bytes:
    """'A0' L (scheme, key index)... ['A1' L ('80' 01 id '81' L key)...] (§4.4.11.8)."""
    out = _tlv(_TAG_PSI_LIST, b"".join(bytes(p) for p in info.schemes))
    if info.keys:
        keys = b"".join(_tlv(_TAG_KEY_ID, bytes((i,))) + _tlv(_TAG_KEY, k) for i, k in info.keys)
        out += _tlv(_TAG_KEY_LIST, keys)
    return out


def decode_suci_calc_info(data: bytes) -> SuciCalcInfo:
    """Raises: ValueError: not the coding of §4.4.11.8 (trailing FF padding is allowed)."""
    objs = dict(_tlvs(data))
    psi = objs.get(_TAG_PSI_LIST)
    if psi is None or len(psi) % 2:
        raise ValueError("no protection scheme identifier list")
    keys: list[tuple[int, bytes]] = []
    items = _tlvs(objs.get(_TAG_KEY_LIST, b""))
    if len(items) % 2:
        raise ValueError("a key identifier without its key")
    for (t1, v1), (t2, v2) in zip(items[::2], items[1::2], strict=True):
        if t1 != _TAG_KEY_ID or t2 != _TAG_KEY or len(v1) != 1:
            raise ValueError("the home network public key list is '80' id '81' key pairs")
        keys.append((v1[0], v2))
    schemes = tuple((psi[i], psi[i + 1]) for i in range(0, len(psi), 2))
    return SuciCalcInfo(schemes, tuple(keys))


def encode_routing_indicator(ri: str) -> bytes:
    """EF.Routing_Indicator (§4.4.11.11): 1-4 digits, BCD low nibble first, F-padded, and
    two RFU bytes."""
    if not (ri.isdigit() and 1 <= len(ri) <= 4):
        raise ValueError("a routing indicator is 1..4 digits")
    d = ri.ljust(4, "F")
    return bytes((int(d[1], 16) << 4 | int(d[0], 16), int(d[3], 16) << 4 | int(d[2], 16))) + (
        b"\xff\xff"
    )


def decode_routing_indicator(data: bytes) -> str:
    """Raises: ValueError: fewer than 2 bytes, or not BCD digits then F padding."""
    if len(data) < 2:
        raise ValueError("EF.Routing_Indicator has at least 2 bytes")
    nibbles = "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in data[:2])
    digits = nibbles.rstrip("F")
    if not digits.isdigit():
        raise ValueError("a routing indicator is BCD digits padded with F")
    return digits


# -- Which files a service brings (TS 31.102 §4.2.8 and the clauses of each EF) ----------------

#: Files under ADF.USIM that exist exactly when the service is available: "FID" or
#: "DF/EF" paths (hex, as child handles). Services whose files are optional whatever the
#: UST says (n°33, n°38 ...) are not listed.
SERVICE_FILES: dict[int, tuple[str, ...]] = {
    2: ("6F3B",),  # FDN
    4: ("6F49",),  # SDN
    10: ("6F3C", "6F43"),  # SMS, SMSS
    11: ("6F47",),  # SMSR
    12: ("6F42",),  # SMSP
    15: ("6F45",),  # CBMI
    16: ("6F50",),  # CBMIR
    17: ("6F3E",),  # GID1
    18: ("6F3F",),  # GID2
    19: ("6F46",),  # SPN
    20: ("6F60",),  # PLMNwAcT
    21: ("6F40",),  # MSISDN
    27: ("5F3B", "5F3B/4F20", "5F3B/4F52"),  # DF.GSM-ACCESS, EF.Kc, EF.KcGPRS (§4.4.5)
    34: ("6F56",),  # EST
    42: ("6F61",),  # OPLMNwAcT
    43: ("6F62",),  # HPLMNwAcT
    45: ("6FC5",),  # PNN
    46: ("6FC6",),  # OPL
    47: ("6FC7",),  # MBDN
    48: ("6FCA",),  # MWIS
    49: ("6FCB",),  # CFIS
    51: ("6FCD",),  # SPDI
    # DF.5GS (§4.4.11): each EF by the service that brings it (§4.4.11.1).
    122: ("5FC0/4F01", "5FC0/4F02", "5FC0/4F03", "5FC0/4F04"),  # 5GS(N)3GPPLOCI, -NSC
    123: ("5FC0/4F05",),  # 5GAUTHKEYS
    124: ("5FC0/4F0A",),  # Routing_Indicator (§4.4.11.11)
    126: ("5FC0/4F06",),  # UAC_AIC
    129: ("5FC0/4F08",),  # OPL5G
}
#: Files a service needs, which may also be there with the service off (the GSMA TS.48
#: SUCI test profile carries DF.SAIP with n°125 off).
SERVICE_NEEDS: dict[int, tuple[str, ...]] = {
    125: ("5FD0", "5FD0/4F01"),  # DF.SAIP, EF.SUCI_Calc_Info_USIM (TCA PE-DF-SAIP)
    # DF.5GS, which any of the 5G services needs.
    **{n: ("5FC0",) for n in (122, 123, 124, 126, 129)},
    # EF.SUPI_NAI: TS.48 v2 carries it with n°130 off.
    130: ("5FC0", "5FC0/4F09"),
}


def service_file_mismatches(services: Iterable[int], present: Iterable[str]) -> list[str]:
    """What breaks "a service is on if and only if its files are there".

    Args:
        services: the services EF.UST marks available.
        present: the paths of the files under ADF.USIM ("6F3C", "5FC0/4F0A").

    Returns:
        One line per service whose files are missing, or whose files are there
        while the service is off; empty when the profile is consistent.
    """
    on, have = set(services), set(present)
    out = []
    for n, paths in sorted(SERVICE_FILES.items()):
        missing = [p for p in paths if p not in have]
        if n in on and missing:
            out.append(f"service {n} on, {', '.join(missing)} missing")
        elif n not in on and len(missing) < len(paths):
            there = [p for p in paths if p in have]
            out.append(f"service {n} off, {', '.join(there)} present")
    for n, paths in sorted(SERVICE_NEEDS.items()):
        missing = [p for p in paths if p not in have]
        if n in on and missing:
            out.append(f"service {n} on, {', '.join(missing)} missing")
    if 124 in on and 125 not in on and "5FC0/4F07" not in have:
        out.append("service 124 on without 125, 5FC0/4F07 (EF.SUCI_Calc_Info) missing")
    return out


# -- File definitions with their vectors (walked by tests/unit/test_uicc_filedefs.py) ----------

PYSIM = "pySim ts_31_102.py _test_de_encode (osmocom)"
PYSIM_51 = "pySim ts_51_011.py _test_de_encode (osmocom), the same coding"
PYSIM_UTILS = "pySim tests/unittests/test_utils.py test_enc_plmn (osmocom)"
SPEC_PLMN = "TS 24.008 §10.5.1.3 example: MCC 246, MNC 81 is 42 F6 18"
UST_SIZE = 5
EST_SIZE = 1
FPLMN_SIZE = 12
PLMN_ACT_SIZE = 10
LI_SIZE = 10
ADF_DN_RECORD_LENGTH = 34  # EF.MSISDN: a 20-byte alpha identifier
ECC_RECORD_LENGTH = 4
SMSP_RECORD_LENGTH = 44  # a 16-byte alpha identifier

_K0 = bytes(range(16))
_K1 = bytes(range(16, 32))
_SUCI_KEY_A = bytes.fromhex("4e858c4d49d1343e6181284c47ca721730c98742cb7c6182d2e8126e08088d36")
_SUCI_KEY_B = bytes.fromhex("d1bc365f4997d17ce4374e72181431cbfeba9e1b98d7618f79d48561b144672a")
_SUCI_PYSIM = SuciCalcInfo(((1, 1), (0, 0)), ((10, _SUCI_KEY_A), (11, _SUCI_KEY_B)))
_SUCI_PYSIM_HEX = (
    "A00401010000A14A80010A8120" + _SUCI_KEY_A.hex() + "80010B8120" + _SUCI_KEY_B.hex()
)


def _st_digits(lo: int, hi: int) -> SearchStrategy[str]:
    from hypothesis import strategies as st

    return st.text(alphabet="0123456789", min_size=lo, max_size=hi)


def _st_imsi() -> SearchStrategy[Any]:
    return _st_digits(6, 15)


def _st_plmn() -> SearchStrategy[Plmn]:
    from hypothesis import strategies as st

    return st.builds(Plmn, _st_digits(3, 3), _st_digits(2, 3))


def _st_plmn_list() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.lists(_st_plmn(), max_size=FPLMN_SIZE // 3).map(tuple)


def _st_plmn_act_list() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    entry = st.tuples(_st_plmn(), st.integers(0, 0xFFFF))
    return st.lists(entry, max_size=PLMN_ACT_SIZE // 5).map(tuple)


def _st_services(size: int) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.frozensets(st.integers(1, 8 * size))


def _st_ust() -> SearchStrategy[Any]:
    return _st_services(UST_SIZE)


def _st_est() -> SearchStrategy[Any]:
    return _st_services(EST_SIZE)


def _st_ad() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.builds(
        AdministrativeData, st.integers(0, 255), st.integers(0, 0xFFFF), st.sampled_from([2, 3])
    )


def _st_acc() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.frozensets(st.integers(0, 15))


def _st_loci() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    b = st.binary
    i = st.integers
    return st.builds(
        Loci,
        b(min_size=4, max_size=4),
        b(min_size=3, max_size=3),
        i(0, 0xFFFF),
        i(0, 255),
        i(0, 255),
    )


def _st_psloci() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    b = st.binary
    i = st.integers
    return st.builds(
        PsLoci,
        b(min_size=4, max_size=4),
        b(min_size=3, max_size=3),
        b(min_size=3, max_size=3),
        i(0, 0xFFFF),
        i(0, 255),
        i(0, 255),
    )


def _st_keys() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    key = st.binary(min_size=16, max_size=16)
    return st.builds(Keys, st.integers(0, 255), key, key)


def _st_alpha(max_gsm: int, max_ucs2: int) -> SearchStrategy[str]:
    from hypothesis import strategies as st

    gsm = st.text(alphabet=GSM_DEFAULT_ALPHABET.replace("\x1b", ""), max_size=max_gsm)
    ucs2 = st.text(
        alphabet=st.characters(
            min_codepoint=0x100, max_codepoint=0xFFFE, exclude_categories=["Cs"]
        ),
        min_size=1,
        max_size=max_ucs2,
    )
    return st.one_of(gsm, ucs2)


def _st_spn() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.builds(Spn, _st_alpha(SPN_SIZE - 1, 7), st.integers(0, 255))


def _st_number() -> SearchStrategy[str]:
    from hypothesis import strategies as st

    dial = st.text(alphabet="0123456789*#pwe", min_size=1, max_size=20)
    return st.one_of(dial, dial.map(lambda s: "+" + s))


def _st_dialling_number(alpha_size: int) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.builds(
        DiallingNumber,
        _st_alpha(alpha_size, (alpha_size - 1) // 2),
        _st_number(),
        st.integers(0, 255),
        st.integers(0, 255),
    )


def _st_msisdn() -> SearchStrategy[Any]:
    return _st_dialling_number(ADF_DN_RECORD_LENGTH - 14)


def _st_ecc() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.builds(EmergencyCallCode, _st_digits(1, 6), st.just(""), st.integers(0, 255))


def _st_sms() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    body = st.binary(max_size=SMS_RECORD_LENGTH - 1).map(lambda b: b.rstrip(b"\xff"))
    return st.builds(SmsRecord, st.integers(0, 255), body)


def _st_smsp() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    byte = st.one_of(st.none(), st.integers(0, 255))
    number = st.one_of(st.none(), _st_number())
    alpha = _st_alpha(SMSP_RECORD_LENGTH - SMSP_FIXED, (SMSP_RECORD_LENGTH - SMSP_FIXED - 1) // 2)
    return st.builds(SmsParameters, alpha, number, number, byte, byte, byte)


def _st_suci() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    keys = st.lists(
        st.tuples(st.integers(0, 255), st.binary(min_size=1, max_size=65)), max_size=3
    ).map(tuple)

    def with_schemes(ks: tuple[tuple[int, bytes], ...]) -> SearchStrategy[SuciCalcInfo]:
        scheme = st.tuples(st.integers(0, 255), st.integers(0, len(ks)))
        return st.lists(scheme, max_size=4).map(lambda s: SuciCalcInfo(tuple(s), ks))

    return keys.flatmap(with_schemes)


def _st_routing_indicator() -> SearchStrategy[Any]:
    return _st_digits(1, 4)


def _st_languages() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    code = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=2)
    return st.lists(code, max_size=LI_SIZE // 2).map(tuple)


def _st_5gs_loci() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.one_of(st.none(), _st_plmn().map(encode_plmn))


def _st_uac_aic() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.integers(0, UAC_MPS | UAC_MCS)


_IMSI_VECTORS = (
    vec("228062800000208", "082982608200002080", PYSIM_51),
    vec("262011106487504", "082926101160845740", PYSIM_51),
    # By hand (TS 24.008 §10.5.1.4): 14 digits, even: length 08, then 0|1 (digit 1, even,
    # type IMSI 001), digit pairs swapped, a final F filler: 01 10 10 21 43 65 87 F9.
    vec("00101123456789", "0801101021436587f9", "TS 24.008 §10.5.1.4, worked by hand"),
)
_IMSI_MALFORMED = (
    b"",
    bytes.fromhex("092982608200002080"),  # length byte beyond the file
    bytes.fromhex("082a82608200002080"),  # type of identity 010 (IMEI), not IMSI
    bytes.fromhex("0829a2608200002080"),  # a digit A
    bytes.fromhex("082182608200002080"),  # even (b4 = 0) but no F filler at the end
)
_PLMN_LIST_VECTORS = (
    vec((Plmn("246", "81"),), "42f618" + "ff" * 9, SPEC_PLMN),
    vec((Plmn("228", "06"), Plmn("334", "020")), "22f860330420" + "ff" * 6, PYSIM_51),
    vec(
        (Plmn("001", "01"), Plmn("295", "10"), Plmn("302", "361"), Plmn("001", "001")),
        "00f11092f501031263001100",
        PYSIM_UTILS,
    ),
    vec((), "ff" * FPLMN_SIZE, "§4.2.16: an unused entry is FF FF FF"),
)
_PLMN_LIST_MALFORMED = (bytes.fromhex("4af618") + b"\xff" * 9,)  # MCC digit A
_PLMN_ACT_MALFORMED = (bytes.fromhex("62f21a4000ffffff0000"),)  # MNC digit A
_AD_VECTORS = (
    vec(AdministrativeData(0x00, 0x0000, 2), "00000002", PYSIM),
    vec(AdministrativeData(0x01, 0x0001, 2), "01000102", PYSIM),
    # By hand (§4.2.18): type approval (80), no additional info, a 3-digit MNC in byte 4.
    vec(AdministrativeData(0x80, 0x0000, 3), "80000003", "§4.2.18, worked by hand"),
)
_AD_MALFORMED = (bytes.fromhex("000000"), bytes.fromhex("00000004"))
_ACC_VECTORS = (
    vec(frozenset(), "0000", PYSIM_51),
    vec(frozenset({0}), "0001", PYSIM_51),
    vec(frozenset({1}), "0002", PYSIM_51),
    vec(frozenset({8}), "0100", PYSIM_51),
    vec(frozenset({15}), "8000", PYSIM_51),
    vec(frozenset({0, 1, 3, 5, 15}), "802b", PYSIM_51),
)
_LOCI_VECTORS = (
    vec(
        Loci(bytes.fromhex("47d1264a"), bytes.fromhex("62f210"), 0x3721, 0x1E, LU_UPDATED),
        "47d1264a62f21037211e00",
        PYSIM,
    ),
    vec(
        Loci(b"\xff" * 4, bytes.fromhex("62f220"), 0x0000, 0xFF, LU_NOT_UPDATED),
        "ffffffff62f2200000ff01",
        PYSIM,
    ),
)
_KEYS_VECTORS = (
    # By hand (§4.2.4): KSI 07 "no key available", CK and IK all FF.
    vec(Keys(), "07" + "ff" * 32, "§4.2.4, worked by hand"),
    vec(Keys(1, _K0, _K1), "01" + _K0.hex() + _K1.hex(), "§4.2.4, worked by hand"),
)
_SMS_VECTORS = (
    # By hand (§4.2.25): status 00 "free", the rest FF.
    vec(SmsRecord(), "00" + "ff" * 175, "§4.2.25, worked by hand"),
    vec(SmsRecord(0x03, b"\x00\x11"), "030011" + "ff" * 173, "§4.2.25, worked by hand"),
)
_SMSP_VECTORS = (
    vec(
        SmsParameters("SMSC", None, "+4915790109999", 0x00, 0x00, 0xA9),
        "534d5343ffffffffffffffffffffffffe1ffffffffffffffffffffffff0891945197109099f9ffffff0000a9",
        PYSIM_51,
    ),
)
_SUCI_VECTORS = (
    vec(_SUCI_PYSIM, _SUCI_PYSIM_HEX, PYSIM),
    # By hand (§4.4.11.8): the null scheme only: 'A0' 02 { 00 (null) 00 (no key) }, no 'A1'.
    vec(SuciCalcInfo(((0, 0),)), "a0020000", "§4.4.11.8, worked by hand"),
)
_SUCI_MALFORMED = (
    bytes.fromhex("a003000000"),  # an odd scheme list
    bytes.fromhex("a00401010000"),  # key index 1 with no key
    bytes.fromhex("a0040101"),  # truncated
    bytes.fromhex("a0020101a1058001"),  # a key list cut short
    bytes.fromhex("ff"),  # no scheme list
)

FILE_DEFS: tuple[FileDef, ...] = (
    FileDef(
        "EF.LI",
        0x6F05,
        "ADF.USIM",
        "TS 31.102 §4.2.1 (coding of TS 102 221 §13.3)",
        lambda codes: encode_languages(codes, LI_SIZE),
        decode_languages,
        (vec(("en", "de", "ru"), "656e64657275ffffffff", "pySim ts_51_011.py EF_PL"),),
        strategy=_st_languages,
        size=LI_SIZE,
    ),
    FileDef(
        "EF.IMSI",
        0x6F07,
        "ADF.USIM",
        "TS 31.102 §4.2.2",
        encode_imsi,
        decode_imsi,
        _IMSI_VECTORS,
        _IMSI_MALFORMED,
        _st_imsi,
        size=IMSI_SIZE,
    ),
    FileDef(
        "EF.Keys",
        0x6F08,
        "ADF.USIM",
        "TS 31.102 §4.2.4",
        encode_keys,
        decode_keys,
        _KEYS_VECTORS,
        (b"\x07" + b"\xff" * 31,),
        _st_keys,
        size=33,
    ),
    FileDef(
        "EF.KeysPS",
        0x6F09,
        "ADF.USIM",
        "TS 31.102 §4.2.5",
        encode_keys,
        decode_keys,
        _KEYS_VECTORS,
        (b"\x07" + b"\xff" * 33,),
        _st_keys,
        size=33,
    ),
    FileDef(
        "EF.UST",
        0x6F38,
        "ADF.USIM",
        "TS 31.102 §4.2.8",
        lambda services: encode_service_table(services, UST_SIZE),
        decode_service_table,
        (
            # By hand: service n is bit (n-1) mod 8 of byte (n-1) div 8. 1-5: byte 1 = 1F;
            # 10: byte 2 b2 = 02; 27: byte 4 b3 = 04; 38: byte 5 b6 = 20.
            vec(frozenset({1, 2, 3, 4, 5, 10, 27, 38}), "1f02000420", "§4.2.8, worked by hand"),
            vec(frozenset(), "0000000000", "§4.2.8: no service available"),
        ),
        strategy=_st_ust,
        size=UST_SIZE,
    ),
    FileDef(
        "EF.EST",
        0x6F56,
        "ADF.USIM",
        "TS 31.102 §4.2.47",
        lambda services: encode_service_table(services, EST_SIZE),
        decode_service_table,
        (
            vec(frozenset(), "00", "§4.2.47: FDN, BDN, ACL all off"),
            # By hand: FDN (1) b1, BDN (2) b2, ACL (3) b3 -> 07.
            vec(frozenset({1, 2, 3}), "07", "§4.2.47, worked by hand"),
        ),
        strategy=_st_est,
        size=EST_SIZE,
    ),
    FileDef(
        "EF.FPLMN",
        0x6F7B,
        "ADF.USIM",
        "TS 31.102 §4.2.16 (PLMN of TS 24.008 §10.5.1.3)",
        lambda plmns: encode_plmn_list(plmns, FPLMN_SIZE),
        decode_plmn_list,
        _PLMN_LIST_VECTORS,
        _PLMN_LIST_MALFORMED,
        _st_plmn_list,
        size=FPLMN_SIZE,
    ),
    FileDef(
        "EF.PLMNwAcT",
        0x6F60,
        "ADF.USIM",
        "TS 31.102 §4.2.5",
        lambda entries: encode_plmn_act_list(entries, PLMN_ACT_SIZE),
        decode_plmn_act_list,
        (
            vec(((Plmn("262", "01"), ACT_EUTRAN),), "62f2104000ffffff0000", "pySim EF_xPLMNwAcT"),
            vec(((Plmn("262", "01"), ACT_UTRAN),), "62f2108000ffffff0000", "pySim EF_xPLMNwAcT"),
        ),
        _PLMN_ACT_MALFORMED,
        _st_plmn_act_list,
        size=PLMN_ACT_SIZE,
    ),
    FileDef(
        "EF.OPLMNwAcT",
        0x6F61,
        "ADF.USIM",
        "TS 31.102 §4.2.53",
        lambda entries: encode_plmn_act_list(entries, PLMN_ACT_SIZE),
        decode_plmn_act_list,
        (
            vec(
                ((Plmn("262", "01"), ACT_UTRAN), (Plmn("262", "02"), 0x488C)),
                "62f210800062f220488c",
                "pySim EF_xPLMNwAcT",
            ),
        ),
        _PLMN_ACT_MALFORMED,
        _st_plmn_act_list,
        size=PLMN_ACT_SIZE,
    ),
    FileDef(
        "EF.HPLMNwAcT",
        0x6F62,
        "ADF.USIM",
        "TS 31.102 §4.2.54",
        lambda entries: encode_plmn_act_list(entries, PLMN_ACT_SIZE),
        decode_plmn_act_list,
        (
            # By hand: 246-81 is 42 F6 18 (TS 24.008 example); UTRAN 8000 | E-UTRAN 4000 |
            # GSM 0080 = C080; the second entry unused: FF FF FF 00 00.
            vec(((Plmn("246", "81"), ACT_ALL),), "42f618c080ffffff0000", "§4.2.54, worked by hand"),
        ),
        _PLMN_ACT_MALFORMED,
        _st_plmn_act_list,
        size=PLMN_ACT_SIZE,
    ),
    FileDef(
        "EF.AD",
        0x6FAD,
        "ADF.USIM",
        "TS 31.102 §4.2.18",
        encode_ad,
        decode_ad,
        _AD_VECTORS,
        _AD_MALFORMED,
        _st_ad,
        size=4,
    ),
    FileDef(
        "EF.ACC",
        0x6F78,
        "ADF.USIM",
        "TS 31.102 §4.2.15",
        encode_acc,
        decode_acc,
        _ACC_VECTORS,
        strategy=_st_acc,
        size=2,
    ),
    FileDef(
        "EF.LOCI",
        0x6F7E,
        "ADF.USIM",
        "TS 31.102 §4.2.17",
        encode_loci,
        decode_loci,
        _LOCI_VECTORS,
        (bytes(10), bytes(12)),
        _st_loci,
        size=11,
    ),
    FileDef(
        "EF.PSLOCI",
        0x6F73,
        "ADF.USIM",
        "TS 31.102 §4.2.23",
        encode_psloci,
        decode_psloci,
        (
            vec(
                PsLoci(b"\xff" * 4, b"\xff" * 3, bytes.fromhex("22f899"), 0x0000, 0xFF, 1),
                "ffffffffffffff22f8990000ff01",
                "pySim ts_51_011.py EF_LOCIGPRS, the same coding",
            ),
        ),
        (bytes(13),),
        _st_psloci,
        size=14,
    ),
    FileDef(
        "EF.SPN",
        0x6F46,
        "ADF.USIM",
        "TS 31.102 §4.2.12 (alpha of Annex A)",
        encode_spn,
        decode_spn,
        (
            vec(Spn("GSM-R CH", 0x01), "0147534d2d52204348" + "ff" * 8, PYSIM_51),
            # By hand: Ω has a default-alphabet code, € has none: UCS2 '80' 03A9 20AC, FF to 16.
            vec(Spn("Ω€", 0x00), "008003a920ac" + "ff" * 11, "Annex A, worked by hand"),
        ),
        (b"",),
        _st_spn,
        size=SPN_SIZE,
    ),
    FileDef(
        "EF.MSISDN",
        0x6F40,
        "ADF.USIM",
        "TS 31.102 §4.2.26",
        lambda entry: encode_dialling_number(entry, ADF_DN_RECORD_LENGTH),
        decode_dialling_number,
        (
            vec(
                DiallingNumber("Eigene Rufnummer", "+4917279119183"),
                "456967656e65205275666e756d6d6572ffffffff0891947172199181f3ffffffffff",
                "pySim ts_51_011.py EF_MSISDN",
            ),
            vec(None, "ff" * ADF_DN_RECORD_LENGTH, "§4.2.26: an empty record"),
        ),
        (b"\xff" * 13,),
        _st_msisdn,
        size=ADF_DN_RECORD_LENGTH,
    ),
    FileDef(
        "EF.ECC",
        0x6FB7,
        "ADF.USIM",
        "TS 31.102 §4.2.21",
        lambda entry: encode_ecc(entry, ECC_RECORD_LENGTH),
        decode_ecc,
        (
            vec(EmergencyCallCode("911", "", 0x01), "19f1ff01", PYSIM),
            vec(EmergencyCallCode("913", "", 0x02), "19f3ff02", PYSIM),
            vec(None, "ffffffff", "§4.2.21: an empty record"),
        ),
        (bytes.fromhex("19f1ff"), bytes.fromhex("1affff01")),
        _st_ecc,
        size=ECC_RECORD_LENGTH,
    ),
    FileDef(
        "EF.SMS",
        0x6F3C,
        "ADF.USIM",
        "TS 31.102 §4.2.25",
        encode_sms,
        decode_sms,
        _SMS_VECTORS,
        (bytes(SMS_RECORD_LENGTH - 1),),
        _st_sms,
        size=SMS_RECORD_LENGTH,
    ),
    FileDef(
        "EF.SMSP",
        0x6F42,
        "ADF.USIM",
        "TS 31.102 §4.2.27",
        lambda p: encode_smsp(p, SMSP_RECORD_LENGTH),
        decode_smsp,
        _SMSP_VECTORS,
        (b"\xff" * (SMSP_FIXED - 1),),
        _st_smsp,
        size=SMSP_RECORD_LENGTH,
    ),
    FileDef(
        "EF.5GS3GPPLOCI",
        EF_5GS3GPPLOCI,
        "DF.5GS",
        "TS 31.102 §4.4.11.2",
        encode_5gs_loci,
        decode_5gs_loci,
        (
            # By hand: 5G-GUTI FF x 13, TAI = PLMN 42F618 + TAC 000000, status 01.
            vec(bytes.fromhex("42f618"), "ff" * 13 + "42f61800000001", "§4.4.11.2, by hand"),
            vec(None, "ff" * 16 + "00000001", "§4.4.11.2, worked by hand"),
        ),
        (bytes(19),),
        _st_5gs_loci,
        size=20,
    ),
    FileDef(
        "EF.5GSN3GPPLOCI",
        EF_5GSN3GPPLOCI,
        "DF.5GS",
        "TS 31.102 §4.4.11.3",
        encode_5gs_loci,
        decode_5gs_loci,
        (vec(None, "ff" * 16 + "00000001", "§4.4.11.3, worked by hand"),),
        (bytes(21),),
        _st_5gs_loci,
        size=20,
    ),
    FileDef(
        "EF.5GS3GPPNSC",
        EF_5GS3GPPNSC,
        "DF.5GS",
        "TS 31.102 §4.4.11.4",
        lambda _: encode_5gs_nsc(),
        None,
        # By hand: 'A0' 03 { '80' 01 07 } (ngKSI 7, no key), FF to 57 bytes.
        (vec(None, "a003800107" + "ff" * 52, "§4.4.11.4, worked by hand"),),
    ),
    FileDef(
        "EF.5GSN3GPPNSC",
        EF_5GSN3GPPNSC,
        "DF.5GS",
        "TS 31.102 §4.4.11.5",
        lambda _: encode_5gs_nsc(),
        None,
        (vec(None, "a003800107" + "ff" * 52, "§4.4.11.5, worked by hand"),),
    ),
    FileDef(
        "EF.5GAUTHKEYS",
        EF_5GAUTHKEYS,
        "DF.5GS",
        "TS 31.102 §4.4.11.6",
        lambda _: encode_5g_auth_keys(),
        None,
        # By hand: '80' 20 K_AUSF (FF x 32), '81' 20 K_SEAF (FF x 32).
        (vec(None, "8020" + "ff" * 32 + "8120" + "ff" * 32, "§4.4.11.6, worked by hand"),),
    ),
    FileDef(
        "EF.UAC_AIC",
        EF_UAC_AIC,
        "DF.5GS",
        "TS 31.102 §4.4.11.7",
        encode_uac_aic,
        decode_uac_aic,
        (
            vec(0, "00000000", "§4.4.11.7: no access identity configured"),
            # Byte 1 b1 MPS, b2 MCS, bytes 2-4 RFU; pySim's EF_UAC_AIC decodes '03' as both.
            vec(UAC_MPS | UAC_MCS, "03000000", "§4.4.11.7 with pySim EF_UAC_AIC"),
            vec(UAC_MCS, "02000000", "§4.4.11.7, worked by hand"),
        ),
        (bytes(3), bytes(5)),
        _st_uac_aic,
        size=4,
    ),
    FileDef(
        "EF.SUCI_Calc_Info",
        EF_SUCI_CALC_INFO,
        "DF.5GS",
        "TS 31.102 §4.4.11.8",
        encode_suci_calc_info,
        decode_suci_calc_info,
        _SUCI_VECTORS,
        _SUCI_MALFORMED,
        _st_suci,
    ),
    FileDef(
        "EF.Routing_Indicator",
        EF_ROUTING_INDICATOR,
        "DF.5GS",
        "TS 31.102 §4.4.11.11 (TS 24.501 Table 9.11.3.4.1)",
        encode_routing_indicator,
        decode_routing_indicator,
        (
            # By hand: BCD, digit 1 in the low nibble, unused digits F, then 2 RFU bytes FF.
            vec("1234", "2143ffff", "§4.4.11.11, worked by hand"),
            vec("17", "71ffffff", "§4.4.11.11, worked by hand"),
            vec("0", "f0ffffff", "§4.4.11.11, worked by hand"),
        ),
        (bytes.fromhex("1affffff"), bytes.fromhex("21")),
        _st_routing_indicator,
        size=4,
    ),
    FileDef(
        "EF.SUCI_Calc_Info_USIM",
        EF_SUCI_CALC_INFO_USIM,
        "DF.SAIP",
        "TCA eUICC Profile Package PE-DF-SAIP, coding of TS 31.102 §4.4.11.8",
        encode_suci_calc_info,
        decode_suci_calc_info,
        _SUCI_VECTORS,
        _SUCI_MALFORMED,
        _st_suci,
    ),
)
