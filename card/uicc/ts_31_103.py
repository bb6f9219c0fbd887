"""ISIM file contents: 3GPP TS 31.103 §4.2 (ADF.ISIM), encoders and decoders.

- EF.IMPI (6F02, §4.2.2) and EF.DOMAIN (6F03, §4.2.3): one NAI / domain name as
  a TLV, tag '80', UTF-8, padded with FF.
- EF.IMPU (6F04, §4.2.4): one public user identity (a SIP or tel URI) per record,
  the same TLV.
- EF.AD (6FAD, §4.2.5): UE operation mode, 2 bytes of additional information.
- EF.IST (6F07, §4.2.7): the ISIM service table, coded as EF.UST.
- EF.P-CSCF (6F09, §4.2.8): one P-CSCF address per record: tag '80', length,
  the address type (00 FQDN, 01 IPv4, 02 IPv6) and the address (UTF-8 for an
  FQDN, the raw 4 or 16 bytes for an IP address).

Every encoder has a decoder, and `decode(encode(x)) == x` for every valid x.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from card.uicc.filedef import FileDef, vec
from card.uicc.ts_31_102 import decode_service_table, encode_service_table

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

#: TS 101 220 Annex E: RID 3GPP, application code 1004 (ISIM).
ISIM_AID_PREFIX = bytes.fromhex("A0000000871004")
#: An ISIM AID as cards carry it (country/provider FF, as the USIM's default).
DEFAULT_ISIM_AID = bytes.fromhex("A0000000871004FFFFFFFF8907090000")

EF_IMPI = 0x6F02
EF_DOMAIN = 0x6F03
EF_IMPU = 0x6F04
EF_ARR = 0x6F06
EF_IST = 0x6F07
EF_PCSCF = 0x6F09
EF_AD = 0x6FAD

#: TS 31.103 §4.2.7: P-CSCF address (n°1), GBA (n°2), ... the ones a profile here uses.
SERVICE_PCSCF = 1

_TAG = 0x80
ADDR_FQDN = 0x00
ADDR_IPV4 = 0x01
ADDR_IPV6 = 0x02


def _tlv(value: bytes, size: int) -> bytes:
    if len(value) > 0x7F:
        raise ValueError("a value of at most 127 bytes")
    out = bytes((_TAG, len(value))) + value
    if len(out) > size:
        raise ValueError(f"{len(out)} bytes do not fit in {size}")
    return out + b"\xff" * (size - len(out))


def _untlv(data: bytes) -> bytes | None:
    """The value of the '80' TLV, None for an empty (FF) record."""
    if not data or data[0] == 0xFF:
        return None
    if data[0] != _TAG or len(data) < 2 or data[1] > 0x7F or 2 + data[1] > len(data):
        raise ValueError("not a '80' TLV")
    return data[2 : 2 + data[1]]


def encode_uri(text: str, size: int) -> bytes:
    """EF.IMPI / EF.DOMAIN content or one EF.IMPU record: '80' L UTF-8, FF-padded."""
    if not text:
        raise ValueError("an empty identity")
    return _tlv(text.encode(), size)


def decode_uri(data: bytes) -> str | None:
    """Raises: ValueError: not a '80' TLV of UTF-8."""
    v = _untlv(data)
    if v is None:
        return None
    try:
        return v.decode()
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None


@dataclass(frozen=True)
class PcscfAddress:
    """One EF.P-CSCF record: an FQDN, or an IPv4 / IPv6 address in text form."""

    address: str
    kind: int = ADDR_FQDN

    def __post_init__(self) -> None:
        if self.kind == ADDR_IPV4:
            ipaddress.IPv4Address(self.address)
        elif self.kind == ADDR_IPV6:
            if str(ipaddress.IPv6Address(self.address)) != self.address:
                raise ValueError("an IPv6 address in its compressed form")
        elif self.kind != ADDR_FQDN or not self.address:
            raise ValueError("a P-CSCF address is an FQDN (00), IPv4 (01) or IPv6 (02)")


def encode_pcscf(entry: PcscfAddress | None, size: int) -> bytes:
    """One EF.P-CSCF record (TS 31.103 §4.2.8)."""
    if entry is None:
        return b"\xff" * size
    if entry.kind == ADDR_FQDN:
        raw = entry.address.encode()
    else:
        raw = ipaddress.ip_address(entry.address).packed
    return _tlv(bytes((entry.kind,)) + raw, size)


def decode_pcscf(data: bytes) -> PcscfAddress | None:
    """Raises: ValueError: not the coding of §4.2.8."""
    v = _untlv(data)
    if v is None:
        return None
    if not v:
        raise ValueError("a P-CSCF record without an address type")
    kind, raw = v[0], v[1:]
    if kind == ADDR_FQDN:
        try:
            return PcscfAddress(raw.decode(), kind)
        except UnicodeDecodeError:
            raise ValueError("an FQDN that is not UTF-8") from None
    if kind == ADDR_IPV4 and len(raw) == 4:
        return PcscfAddress(str(ipaddress.IPv4Address(raw)), kind)
    if kind == ADDR_IPV6 and len(raw) == 16:
        return PcscfAddress(str(ipaddress.IPv6Address(raw)), kind)
    raise ValueError("an unknown address type or a wrong address length")


def encode_isim_ad(ue_operation_mode: int = 0, additional_info: int = 0) -> bytes:
    """EF.AD of the ISIM (§4.2.5): 3 bytes."""
    if not 0 <= ue_operation_mode <= 0xFF or not 0 <= additional_info <= 0xFFFF:
        raise ValueError("UE operation mode is 1 byte, additional information 2")
    return bytes((ue_operation_mode,)) + additional_info.to_bytes(2, "big")


def decode_isim_ad(data: bytes) -> tuple[int, int]:
    """Raises: ValueError: fewer than 3 bytes."""
    if len(data) < 3:
        raise ValueError("the ISIM's EF.AD has at least 3 bytes")
    return data[0], int.from_bytes(data[1:3], "big")


# -- File definitions with their vectors (walked by tests/unit/test_uicc_filedefs.py) ----------

PYSIM = "pySim ts_31_103.py _test_de_encode (osmocom)"
IMPI_SIZE = 51  # the sizes of pySim's vectors, which carry no padding
DOMAIN_SIZE = 35
IMPU_RECORD_LENGTH = 55
PCSCF_RECORD_LENGTH = 46
IST_SIZE = 1
_IMPI = "738006000000101@ims.mnc000.mcc738.3gppnetwork.org"
_DOMAIN = "ims.mnc000.mcc738.3gppnetwork.org"
_PCSCF_FQDN = "pcscf.ims.mnc000.mcc738.pub.3gppnetwork.org"
_URI_MALFORMED = (
    bytes.fromhex("8103616263"),  # not tag '80'
    bytes.fromhex("8002c328"),  # not UTF-8
    bytes.fromhex("8005616263"),  # a length beyond the file
)


def _st_uri(size: int) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    text = st.text(
        alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=(size - 2) // 4
    )
    return text


def _st_impi() -> SearchStrategy[Any]:
    return _st_uri(IMPI_SIZE)


def _st_domain() -> SearchStrategy[Any]:
    return _st_uri(DOMAIN_SIZE)


def _st_impu() -> SearchStrategy[Any]:
    return _st_uri(IMPU_RECORD_LENGTH)


def _st_pcscf() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    fqdn = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=40)
    v4 = st.ip_addresses(v=4).map(lambda a: PcscfAddress(str(a), ADDR_IPV4))
    v6 = st.ip_addresses(v=6).map(lambda a: PcscfAddress(str(a), ADDR_IPV6))
    return st.one_of(st.none(), fqdn.map(PcscfAddress), v4, v6)


def _st_ist() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.frozensets(st.integers(1, 8 * IST_SIZE))


def _st_isim_ad() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF))


FILE_DEFS: tuple[FileDef, ...] = (
    FileDef(
        "EF.IMPI",
        EF_IMPI,
        "ADF.ISIM",
        "TS 31.103 §4.2.2",
        lambda text: encode_uri(text, IMPI_SIZE),
        decode_uri,
        (
            vec(_IMPI, "8031" + _IMPI.encode().hex(), PYSIM),
            # By hand: '80' 03 "a@b", FF to the file size.
            vec("a@b", "8003614062" + "ff" * (IMPI_SIZE - 5), "§4.2.2, worked by hand"),
        ),
        _URI_MALFORMED,
        _st_impi,
        size=IMPI_SIZE,
    ),
    FileDef(
        "EF.DOMAIN",
        EF_DOMAIN,
        "ADF.ISIM",
        "TS 31.103 §4.2.3",
        lambda text: encode_uri(text, DOMAIN_SIZE),
        decode_uri,
        (vec(_DOMAIN, "8021" + _DOMAIN.encode().hex(), PYSIM),),
        _URI_MALFORMED,
        _st_domain,
        size=DOMAIN_SIZE,
    ),
    FileDef(
        "EF.IMPU",
        EF_IMPU,
        "ADF.ISIM",
        "TS 31.103 §4.2.4",
        lambda text: encode_uri(text, IMPU_RECORD_LENGTH),
        decode_uri,
        (vec("sip:" + _IMPI, "8035" + ("sip:" + _IMPI).encode().hex(), PYSIM),),
        _URI_MALFORMED,
        _st_impu,
        size=IMPU_RECORD_LENGTH,
    ),
    FileDef(
        "EF.AD",
        EF_AD,
        "ADF.ISIM",
        "TS 31.103 §4.2.5",
        lambda v: encode_isim_ad(*v),
        decode_isim_ad,
        (
            vec((0x00, 0x0000), "000000", "§4.2.5: normal operation"),
            # By hand: type approval 80, additional information 0001.
            vec((0x80, 0x0001), "800001", "§4.2.5, worked by hand"),
        ),
        (bytes(2),),
        _st_isim_ad,
        size=3,
    ),
    FileDef(
        "EF.IST",
        EF_IST,
        "ADF.ISIM",
        "TS 31.103 §4.2.7",
        lambda services: encode_service_table(services, IST_SIZE),
        decode_service_table,
        (
            # By hand: P-CSCF address (n°1) b1, GBA (n°2) b2 -> 03.
            vec(frozenset({SERVICE_PCSCF, 2}), "03", "§4.2.7, worked by hand"),
            vec(frozenset(), "00", "§4.2.7: no service"),
        ),
        strategy=_st_ist,
        size=IST_SIZE,
    ),
    FileDef(
        "EF.P-CSCF",
        EF_PCSCF,
        "ADF.ISIM",
        "TS 31.103 §4.2.8",
        lambda entry: encode_pcscf(entry, PCSCF_RECORD_LENGTH),
        decode_pcscf,
        (
            vec(PcscfAddress(_PCSCF_FQDN), "802c00" + _PCSCF_FQDN.encode().hex(), PYSIM),
            vec(
                PcscfAddress("192.168.12.34", ADDR_IPV4),
                "800501c0a80c22" + "ff" * (PCSCF_RECORD_LENGTH - 7),
                PYSIM + ", FF to the record length",
            ),
            vec(
                PcscfAddress("fe80::42:d7ff:fe53:335", ADDR_IPV6),
                "801102fe800000000000000042d7fffe530335" + "ff" * (PCSCF_RECORD_LENGTH - 19),
                PYSIM + ", FF to the record length",
            ),
            vec(None, "ff" * PCSCF_RECORD_LENGTH, "§4.2.8: an empty record"),
        ),
        (
            bytes.fromhex("800401c0a80c"),  # an IPv4 address of 3 bytes
            bytes.fromhex("800303c0a8"),  # address type 03
            bytes.fromhex("800100"),  # an empty FQDN
            bytes.fromhex("8000"),  # no address type
        ),
        _st_pcscf,
        size=PCSCF_RECORD_LENGTH,
    ),
)
