"""ETSI TS 102 225 secured packets (SCP80), with the SMS specifics of 3GPP TS 31.115.

Command packet (TS 102 225 §5.1.1, Table 1)::

    CPL(2) CHL(1) SPI(2) KIc(1) KID(1) TAR(3) CNTR(5) PCNTR(1) RC/CC/DS(0,2,4,8) data [padding]

CHL counts SPI..RC/CC/DS (13 + checksum), CPL counts CHL..end. With ciphering
(SPI b3) CNTR..end is enciphered, padded with zeros to the block and PCNTR says
how many; the RC/CC/DS is computed in clear over CPL..end (padding included,
the checksum field itself left out), with a `prefix` before it for bearers
whose header takes part (none for a command packet in an SMS, TS 31.115 §6.2).

Response packet (§5.2.1, Table 4)::

    RPL(2) RHL(1) TAR(3) CNTR(5) PCNTR(1) RSC(1) RC/CC/DS data [padding]

RHL counts TAR..RC/CC/DS. CNTR is the command's. In an SMS the UDH
`02 71 00` precedes RPL and takes part in the checksum (TS 31.115 §7.1.3).

SPI (§5.1.1 Table 2, first and second byte), KIc (Table 3), KID: see `Spi`,
`kic_byte`, `kid_byte`. Algorithms: DES-CBC, 3DES-CBC with 2 or 3 keys and
AES-CBC for ciphering, all with a zero ICV; DES/3DES CBC-MAC (the last block)
and AES-CMAC (NIST SP 800-38B, the 8 most significant bytes) for the CC;
CRC-16 (ISO/IEC 13239) and CRC-32 (ISO/IEC 13239) for the RC. DS is not offered
(RSC 06 "unidentified security error").

The counter (§5.1.1, SPI b5-b4): 00 none, 01 present but not checked, 10 must
be higher than the card's, 11 must be exactly one higher. The card's counter
then takes the packet's value, before any command of the packet runs, so a
packet can never be replayed even if its commands are torn.
"""

from __future__ import annotations

import hmac
import zlib
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from card.crypto.cmac import aes_cbc_decrypt, aes_cbc_encrypt, aes_cmac

#: The largest counter (5 bytes); a card counter there is blocked (RSC 04).
COUNTER_MAX = (1 << 40) - 1
#: TS 31.115 §7.1.3: UDHL, IEI 71 (response packet), IEIDL 00 before a response packet.
SMS_RESPONSE_PREFIX = b"\x02\x71\x00"


class ResponseStatus(IntEnum):
    """Response Status Codes of the proof of receipt (TS 102 225 §5.2.2, Table 5).

    0B and 0C are the two 3GPP TS 31.115 §7 adds for the SMS bearer. Checked against
    osmocom pySim's pySim/ota.py `ResponseStatus` ("ETSI TS 102 225 Table 5 + 3GPP
    TS 31.115 Section 7"), which gives every code the same meaning; the ETSI table
    itself could not be retrieved (tests/unit/test_status_codes.py pins the values).
    """

    POR_OK = 0x00
    RC_CC_DS_FAILED = 0x01
    CNTR_LOW = 0x02
    CNTR_HIGH = 0x03
    CNTR_BLOCKED = 0x04
    CIPHERING_ERROR = 0x05
    UNIDENTIFIED_SECURITY_ERROR = 0x06
    INSUFFICIENT_MEMORY = 0x07
    MORE_TIME = 0x08
    TAR_UNKNOWN = 0x09
    INSUFFICIENT_SECURITY_LEVEL = 0x0A
    RESPONSE_BY_SMS_SUBMIT = 0x0B  # reserved for 3GPP (TS 31.115)
    RESPONSE_BY_USSD = 0x0C  # reserved for 3GPP (TS 31.115)

    @property
    def description(self) -> str:
        return _RSC_TEXT[self]


_RSC_TEXT = {
    ResponseStatus.POR_OK: "PoR OK",
    ResponseStatus.RC_CC_DS_FAILED: "RC/CC/DS failed",
    ResponseStatus.CNTR_LOW: "CNTR low",
    ResponseStatus.CNTR_HIGH: "CNTR high",
    ResponseStatus.CNTR_BLOCKED: "CNTR blocked",
    ResponseStatus.CIPHERING_ERROR: "ciphering error",
    ResponseStatus.UNIDENTIFIED_SECURITY_ERROR: "unidentified security error",
    ResponseStatus.INSUFFICIENT_MEMORY: "insufficient memory to process incoming message",
    ResponseStatus.MORE_TIME: "more time needed",
    ResponseStatus.TAR_UNKNOWN: "TAR unknown",
    ResponseStatus.INSUFFICIENT_SECURITY_LEVEL: "insufficient security level",
    ResponseStatus.RESPONSE_BY_SMS_SUBMIT: "actual response data sent by SMS-SUBMIT",
    ResponseStatus.RESPONSE_BY_USSD: "actual response data sent by USSD",
}


class Checksum(IntEnum):
    """SPI b2-b1 (and second byte b4-b3 for the PoR): the integrity mechanism."""

    NONE = 0
    RC = 1
    CC = 2
    DS = 3


class CounterMode(IntEnum):
    """SPI b5-b4."""

    NONE = 0
    NO_CHECK = 1
    HIGHER = 2
    ONE_HIGHER = 3


class PorMode(IntEnum):
    """SPI second byte b2-b1."""

    NONE = 0
    ALWAYS = 1
    ON_ERROR = 2


class PacketError(ValueError):
    """A packet whose format is wrong (too short, lengths that disagree)."""


class SecurityError(Exception):
    """A packet the receiving entity refuses; `status` is the PoR's RSC."""

    def __init__(self, status: ResponseStatus, message: str = "") -> None:
        super().__init__(message or status.description)
        self.status = status


@dataclass(frozen=True)
class Spi:
    """The Security Parameter Indicator (TS 102 225 §5.1.1, Table 2)."""

    checksum: Checksum = Checksum.CC
    ciphered: bool = True
    counter: CounterMode = CounterMode.HIGHER
    por: PorMode = PorMode.ALWAYS
    por_checksum: Checksum = Checksum.CC
    por_ciphered: bool = True
    por_by_submit: bool = False  # b6: 0 SMS-DELIVER-REPORT, 1 SMS-SUBMIT

    def to_bytes(self) -> bytes:
        first = int(self.checksum) | int(self.ciphered) << 2 | int(self.counter) << 3
        second = (
            int(self.por)
            | int(self.por_checksum) << 2
            | int(self.por_ciphered) << 4
            | int(self.por_by_submit) << 5
        )
        return bytes((first, second))

    @classmethod
    def from_bytes(cls, b: bytes) -> Spi:
        """Decode two bytes; reserved bits are ignored, reserved codes refused.

        Raises:
            PacketError: not two bytes, or PoR mode 11 (reserved).
        """
        if len(b) != 2:
            raise PacketError("SPI is two bytes")
        first, second = b
        if second & 0x03 == 0x03:
            raise PacketError("SPI: PoR mode 11 is reserved")
        return cls(
            Checksum(first & 0x03),
            bool(first & 0x04),
            CounterMode(first >> 3 & 0x03),
            PorMode(second & 0x03),
            Checksum(second >> 2 & 0x03),
            bool(second & 0x10),
            bool(second & 0x20),
        )

    @property
    def level(self) -> int:
        """SPI byte 1's security bits, comparable with an MSL (TS 102 226 §8.2.1.3.2.4.2)."""
        return self.to_bytes()[0] & 0x1F


def meets_msl(spi: Spi, msl: int) -> bool:
    """Whether a packet's security reaches a minimum security level (TS 102 226 §8.2.1.3.2.4.2).

    The MSL is coded as the first SPI byte: b2-b1 the least integrity
    (RC < CC < DS), b3 ciphering required, b5-b4 the least counter mode.
    """
    if int(spi.checksum) < msl & 0x03:
        return False
    if msl & 0x04 and not spi.ciphered:
        return False
    return int(spi.counter) >= msl >> 3 & 0x03


# -- algorithms (KIc Table 3, KID) ------------------------------------------------------------

ALG_IMPLICIT = 0x0
ALG_DES = 0x1  # b2-b1 = 01: DES family, b4-b3 the mode
ALG_AES = 0x2  # b2-b1 = 10: AES, b4-b3 = 00 (CBC for KIc, CMAC for KID)
DES_CBC = 0x1
TDES_2KEY = 0x5
TDES_3KEY = 0x9
DES_ECB = 0xD  # KIc only, not offered
CRC16 = 0x1  # KID for an RC: b2-b1 = 01, b4-b3 = 00 CRC-16, 01 CRC-32
CRC32 = 0x5


def algorithm_for_key(key: bytes, aes: bool) -> int:
    """The KIc/KID low nibble for a key: AES, or DES / 3DES by the key's length."""
    if aes:
        if len(key) not in (16, 24, 32):
            raise ValueError("an AES key is 16, 24 or 32 bytes")
        return ALG_AES
    try:
        return {8: DES_CBC, 16: TDES_2KEY, 24: TDES_3KEY}[len(key)]
    except KeyError:
        raise ValueError("a DES key is 8, 16 or 24 bytes") from None


def kic_byte(kvn: int, key: bytes, aes: bool) -> int:
    """KIc: b8-b5 the key set version, b4-b1 the algorithm."""
    return (kvn & 0x0F) << 4 | algorithm_for_key(key, aes)


kid_byte = kic_byte


def block_size(alg: int) -> int:
    return 16 if alg & 0x3 == ALG_AES else 8


def _des(key: bytes) -> TripleDES:
    # cryptography wants three keys: K (single DES) is K K K, K1 K2 is K1 K2 K1.
    if len(key) == 8:
        key = key * 3
    elif len(key) == 16:
        key = key + key[:8]
    return TripleDES(key)


def _check_key(alg: int, key: bytes) -> None:
    want = {DES_CBC: (8,), TDES_2KEY: (16,), TDES_3KEY: (24,), ALG_AES: (16, 24, 32)}.get(alg)
    if want is None or len(key) not in want:
        raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "algorithm and key differ")


def encipher(alg: int, key: bytes, data: bytes) -> bytes:
    """CBC with a zero ICV (TS 102 225 §5.1.2); `data` is already whole blocks."""
    _check_key(alg, key)
    if alg == ALG_AES:
        return aes_cbc_encrypt(key, bytes(16), data)
    enc = Cipher(_des(key), modes.CBC(bytes(8))).encryptor()
    return enc.update(data) + enc.finalize()


def decipher(alg: int, key: bytes, data: bytes) -> bytes:
    """Undo `encipher`.

    Raises:
        SecurityError: CIPHERING_ERROR for data that is not whole blocks.
    """
    _check_key(alg, key)
    if not data or len(data) % block_size(alg):
        raise SecurityError(ResponseStatus.CIPHERING_ERROR, "ciphered data is not whole blocks")
    if alg == ALG_AES:
        return aes_cbc_decrypt(key, bytes(16), data)
    dec = Cipher(_des(key), modes.CBC(bytes(8))).decryptor()
    return dec.update(data) + dec.finalize()


def cryptographic_checksum(alg: int, key: bytes, data: bytes) -> bytes:
    """The 8-byte CC (TS 102 225 §5.1.3).

    DES/3DES: CBC-MAC, zero ICV, the data zero-padded to whole blocks, the last
    block. AES: CMAC (which pads itself), the first 8 bytes.
    """
    _check_key(alg, key)
    if alg == ALG_AES:
        return aes_cmac(key, data)[:8]
    if len(data) % 8 or not data:
        data = data + bytes(8 - len(data) % 8)
    enc = Cipher(_des(key), modes.CBC(bytes(8))).encryptor()
    return (enc.update(data) + enc.finalize())[-8:]


def crc16(data: bytes) -> int:
    """CRC-16 of ISO/IEC 13239 (X.25): reflected 0x1021, init and final XOR FFFF."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def redundancy_check(alg: int, data: bytes) -> bytes:
    """The RC: CRC-16 (KID 1) or CRC-32 (KID 5)."""
    if alg == CRC16:
        return crc16(data).to_bytes(2, "big")
    if alg == CRC32:
        return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "unknown RC algorithm")


def checksum_length(kind: Checksum, kid: int) -> int:
    if kind == Checksum.NONE:
        return 0
    if kind == Checksum.CC:
        return 8
    if kind == Checksum.RC:
        return 2 if kid & 0x0F == CRC16 else 4
    raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "DS is not supported")


# -- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OtaKeyset:
    """One SCP80 key set: KIc (key 01), KID (key 02) and DEK (key 03) under one version.

    `aes` picks the family (GP key type 88 AES, else 80 DES); DES keys of 8, 16
    or 24 bytes are DES, 2-key and 3-key 3DES. Key versions 01-0F are SCP80's:
    KIc/KID carry the version in four bits (TS 102 225 §5.1.2).
    """

    kvn: int
    kic: bytes
    kid: bytes
    dek: bytes = b""
    aes: bool = True

    def __post_init__(self) -> None:
        if not 0x01 <= self.kvn <= 0x0F:
            raise ValueError("SCP80 key versions are 01..0F")
        algorithm_for_key(self.kic, self.aes)
        algorithm_for_key(self.kid, self.aes)
        if self.dek:
            algorithm_for_key(self.dek, self.aes)

    @property
    def kic_byte(self) -> int:
        return kic_byte(self.kvn, self.kic, self.aes)

    @property
    def kid_byte(self) -> int:
        return kid_byte(self.kvn, self.kid, self.aes)

    def __repr__(self) -> str:  # never the keys
        return f"OtaKeyset(kvn={self.kvn}, {'AES' if self.aes else 'DES'}-{len(self.kic) * 8})"


# -- command packets --------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandHeader:
    """The part of a command packet in clear: SPI, KIc, KID, TAR."""

    spi: Spi
    kic: int
    kid: int
    tar: bytes

    @property
    def kic_kvn(self) -> int:
        return self.kic >> 4

    @property
    def kid_kvn(self) -> int:
        return self.kid >> 4


@dataclass(frozen=True)
class CommandPacket:
    """A command packet opened (deciphered and checked): what the receiving entity acts on."""

    header: CommandHeader
    counter: int
    data: bytes


def _pad(n: int, block: int) -> int:
    return (-n) % block


def build_command_packet(
    data: bytes,
    *,
    spi: Spi,
    tar: bytes,
    counter: int,
    keyset: OtaKeyset | None,
    kic: int | None = None,
    kid: int | None = None,
    prefix: bytes = b"",
) -> bytes:
    """Secure `data` (the secured data: a RAM/RFM script) as a command packet.

    Args:
        keyset: the keys for ciphering and the CC; None only when the SPI asks
            for neither.
        kic, kid: override the KIc/KID bytes (default: the keyset's).
        prefix: bytes that take part in the RC/CC/DS before CPL (none for SMS).

    Returns:
        CPL..end.
    """
    if len(tar) != 3 or not 0 <= counter <= COUNTER_MAX:
        raise ValueError("TAR is 3 bytes, CNTR 0..2^40-1")
    if keyset is None and (spi.ciphered or spi.checksum == Checksum.CC):
        raise ValueError("ciphering and CC need a key set")
    kic_b = kic if kic is not None else (keyset.kic_byte if keyset else 0)
    kid_b = kid if kid is not None else (keyset.kid_byte if keyset else 0)
    if spi.checksum == Checksum.RC and kid is None:
        kid_b = CRC32
    cc_len = checksum_length(spi.checksum, kid_b)
    pad = 0
    if spi.ciphered:
        pad = _pad(6 + cc_len + len(data), block_size(kic_b))
    body = data + bytes(pad)
    chl = 13 + cc_len
    cpl = 1 + chl + len(body)
    head = cpl.to_bytes(2, "big") + bytes((chl,)) + spi.to_bytes() + bytes((kic_b, kid_b)) + tar
    cntr = counter.to_bytes(5, "big") + bytes((pad,))
    signed = prefix + head + cntr + body
    if spi.checksum == Checksum.CC:
        assert keyset is not None
        check = cryptographic_checksum(kid_b & 0x0F, keyset.kid, signed)
    elif spi.checksum == Checksum.RC:
        check = redundancy_check(kid_b & 0x0F, signed)
    else:
        check = b""
    tail = cntr + check + body
    if spi.ciphered:
        assert keyset is not None
        tail = encipher(kic_b & 0x0F, keyset.kic, tail)
    return head + tail


def parse_command_header(packet: bytes) -> tuple[CommandHeader, int]:
    """The clear header of a command packet and its CHL.

    Raises:
        PacketError: too short, or CPL/CHL that do not fit the packet.
    """
    if len(packet) < 2 + 1 + 13:
        raise PacketError("command packet shorter than its header")
    cpl = int.from_bytes(packet[:2], "big")
    chl = packet[2]
    if cpl != len(packet) - 2:
        raise PacketError(f"CPL {cpl} but {len(packet) - 2} bytes follow it")
    if chl < 13 or 3 + chl > len(packet):
        raise PacketError(f"CHL {chl} does not fit")
    spi = Spi.from_bytes(packet[3:5])
    return CommandHeader(spi, packet[5], packet[6], bytes(packet[7:10])), chl


def open_command_packet(
    packet: bytes, keyset: OtaKeyset | None, *, prefix: bytes = b""
) -> CommandPacket:
    """Decipher a command packet and check its RC/CC (the counter is the caller's).

    Raises:
        PacketError: a malformed packet.
        SecurityError: UNIDENTIFIED_SECURITY_ERROR (no key set, algorithm and
            key set disagree, DS), CIPHERING_ERROR (bad block length or
            padding counter), RC_CC_DS_FAILED.
    """
    header, chl = parse_command_header(packet)
    spi = header.spi
    needs_key = spi.ciphered or spi.checksum == Checksum.CC
    if needs_key and keyset is None:
        raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "no such key set")
    cc_len = checksum_length(spi.checksum, header.kid)
    if chl != 13 + cc_len:
        raise PacketError("CHL does not match the SPI's RC/CC/DS")
    tail = bytes(packet[10:])
    if spi.ciphered:
        assert keyset is not None
        alg = header.kic & 0x0F
        if alg not in _KEYSET_ALGS[keyset.aes]:
            raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "KIc algorithm")
        tail = decipher(alg, keyset.kic, tail)
    if len(tail) < 6 + cc_len:
        raise SecurityError(ResponseStatus.CIPHERING_ERROR, "packet too short")
    cntr, pcntr = tail[:5], tail[5]
    check, body = tail[6 : 6 + cc_len], tail[6 + cc_len :]
    # The checksum covers the padding too, so it is checked first: wrong keys are
    # "RC/CC/DS failed" whatever padding counter the garbage shows.
    signed = prefix + packet[:10] + tail[:6] + body
    if spi.checksum == Checksum.CC:
        assert keyset is not None
        alg = header.kid & 0x0F
        if alg not in _KEYSET_ALGS[keyset.aes]:
            raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "KID algorithm")
        if not hmac.compare_digest(check, cryptographic_checksum(alg, keyset.kid, signed)):
            raise SecurityError(ResponseStatus.RC_CC_DS_FAILED)
    elif spi.checksum == Checksum.RC:
        if not hmac.compare_digest(check, redundancy_check(header.kid & 0x0F, signed)):
            raise SecurityError(ResponseStatus.RC_CC_DS_FAILED)
    if pcntr > len(body) or (not spi.ciphered and pcntr):
        raise SecurityError(ResponseStatus.CIPHERING_ERROR, "padding counter")
    data = body[: len(body) - pcntr]
    return CommandPacket(header, int.from_bytes(cntr, "big"), data)


_KEYSET_ALGS = {True: (ALG_AES,), False: (DES_CBC, TDES_2KEY, TDES_3KEY)}


def check_counter(mode: CounterMode, received: int, stored: int) -> None:
    """The replay check of TS 102 225 §5.1.1 (CNTR) for SPI b5-b4.

    Raises:
        SecurityError: CNTR_BLOCKED (the card's counter is at its end), CNTR_LOW,
            CNTR_HIGH (mode 11: more than one higher).
    """
    if mode in (CounterMode.NONE, CounterMode.NO_CHECK):
        return
    if stored >= COUNTER_MAX:
        raise SecurityError(ResponseStatus.CNTR_BLOCKED)
    if received <= stored:
        raise SecurityError(ResponseStatus.CNTR_LOW)
    if mode == CounterMode.ONE_HIGHER and received != stored + 1:
        raise SecurityError(ResponseStatus.CNTR_HIGH)


# -- response packets -------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsePacket:
    """A proof of receipt (TS 102 225 §5.2)."""

    tar: bytes
    counter: int
    status: ResponseStatus | int
    data: bytes
    secured: bool = True

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.POR_OK


def build_response_packet(
    *,
    tar: bytes,
    counter: int,
    status: int,
    data: bytes,
    spi: Spi | None,
    kic: int = 0,
    kid: int = 0,
    keyset: OtaKeyset | None = None,
    prefix: bytes = SMS_RESPONSE_PREFIX,
) -> bytes:
    """Build RPL..end, secured as the command's SPI second byte asks.

    `spi` None (or no `keyset` where one is needed) builds an unsecured PoR:
    the card answers so for packets it could not authenticate.
    """
    check_kind = spi.por_checksum if spi is not None else Checksum.NONE
    ciphered = spi is not None and spi.por_ciphered
    if keyset is None and (ciphered or check_kind == Checksum.CC):
        check_kind, ciphered = Checksum.NONE, False
    if check_kind == Checksum.RC and not kid & 0x0F:
        kid = CRC32
    cc_len = checksum_length(check_kind, kid)
    pad = _pad(7 + cc_len + len(data), block_size(kic)) if ciphered else 0
    body = data + bytes(pad)
    rhl = 10 + cc_len
    rpl = 1 + rhl + len(body)
    head = rpl.to_bytes(2, "big") + bytes((rhl,)) + tar
    mid = counter.to_bytes(5, "big") + bytes((pad, status))
    signed = prefix + head + mid + body
    if check_kind == Checksum.CC:
        assert keyset is not None
        check = cryptographic_checksum(kid & 0x0F, keyset.kid, signed)
    elif check_kind == Checksum.RC:
        check = redundancy_check(kid & 0x0F, signed)
    else:
        check = b""
    tail = mid + check + body
    if ciphered:
        assert keyset is not None
        tail = encipher(kic & 0x0F, keyset.kic, tail)
    return head + tail


def open_response_packet(
    packet: bytes,
    *,
    spi: Spi,
    kic: int,
    kid: int,
    keyset: OtaKeyset | None,
    prefix: bytes = SMS_RESPONSE_PREFIX,
) -> ResponsePacket:
    """Check and decode a response packet for a command sent with `spi`, `kic`, `kid`.

    A PoR without the asked-for security is accepted only when it reports an
    error (the card could not authenticate the command, so it cannot secure
    the answer); it comes back with `secured=False`.

    Raises:
        PacketError: malformed.
        SecurityError: RC_CC_DS_FAILED or CIPHERING_ERROR for a PoR that does
            not verify, or an unsecured PoR claiming success.
    """
    if len(packet) < 13:
        raise PacketError("response packet shorter than its header")
    rpl, rhl = int.from_bytes(packet[:2], "big"), packet[2]
    if rpl != len(packet) - 2 or rhl < 10 or 3 + rhl > len(packet):
        raise PacketError("RPL/RHL do not fit the packet")
    tar = bytes(packet[3:6])
    want = checksum_length(spi.por_checksum, kid or CRC32)
    secured = spi.por_checksum != Checksum.NONE or spi.por_ciphered
    tail = bytes(packet[6:])
    if secured and want and rhl == 10:
        secured = False  # no checksum where one was asked for: an unsecured error PoR
    elif secured and not want and len(tail) % block_size(kic):
        secured = False  # not whole blocks where ciphering was asked for: the same
    if secured and rhl != 10 + want:
        raise PacketError("RHL does not match the PoR security asked for")
    if secured and spi.por_ciphered:
        if keyset is None:
            raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "no key set")
        tail = decipher(kic & 0x0F, keyset.kic, tail)
    cc_len = rhl - 10
    mid, check, body = tail[:7], tail[7 : 7 + cc_len], tail[7 + cc_len :]
    if len(mid) < 7:
        raise PacketError("response packet too short")
    pcntr, status = mid[5], mid[6]
    if pcntr > len(body):
        raise SecurityError(ResponseStatus.CIPHERING_ERROR, "padding counter")
    signed = prefix + packet[:6] + mid + body
    if secured and spi.por_checksum == Checksum.CC:
        if keyset is None:
            raise SecurityError(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, "no key set")
        if not hmac.compare_digest(check, cryptographic_checksum(kid & 0x0F, keyset.kid, signed)):
            raise SecurityError(ResponseStatus.RC_CC_DS_FAILED, "the PoR's CC does not verify")
    elif secured and spi.por_checksum == Checksum.RC:
        if not hmac.compare_digest(check, redundancy_check(kid & 0x0F or CRC32, signed)):
            raise SecurityError(ResponseStatus.RC_CC_DS_FAILED, "the PoR's RC does not verify")
    if not secured and status == ResponseStatus.POR_OK and spi.por != PorMode.NONE:
        if spi.por_checksum != Checksum.NONE or spi.por_ciphered:
            raise SecurityError(ResponseStatus.RC_CC_DS_FAILED, "an unsecured PoR claims success")
    try:
        rsc: ResponseStatus | int = ResponseStatus(status)
    except ValueError:
        rsc = status
    return ResponsePacket(
        tar, int.from_bytes(mid[:5], "big"), rsc, body[: len(body) - pcntr], secured
    )
