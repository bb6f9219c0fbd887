"""ISO/IEC 7816-4 §10 secure messaging: protect and check commands and responses.

The data objects (ISO/IEC 7816-4:2013 §10.2, Table 52):

- `87` padding-content indicator (01: padding method 2) || cryptogram, for an
  even INS; `85` cryptogram alone, for an odd INS (BER-TLV data in clear);
- `97` Le (one byte, 00 for 256; two bytes for extended length);
- `99` the processing status SW1-SW2 (responses);
- `8E` the cryptographic checksum, 8 bytes.

A protected command is CLA' INS P1 P2 Lc' [87|85] [97] 8E Le' with CLA' = CLA
with b4-b3 = 11 (header authenticated) and Le' = 00 (ICAO Doc 9303 Part 11
§9.8.4). The MAC covers pad(SSC || pad(CLA' INS P1 P2) || 87/85 || 97) for a
command and pad(SSC || 87/85 || 99) for a response. The send sequence counter
(SSC) goes up by one before each command is protected and again before each
response is protected (§9.8.3): both ends keep the same count, so a replayed or
reordered message fails its MAC.

The two suites (ICAO 9303-11 §9.8.6, BSI TR-03110-3 §F):

- `Des3Suite`: two-key 3DES-CBC with a zero IV; ISO/IEC 9797-1 MAC algorithm 3
  (the retail MAC: single-DES CBC under Ka, then decrypt under Kb and encrypt
  under Ka); an 8-byte SSC.
- `AesSuite`: AES-CBC with IV = AES-ECB(KSenc, SSC); AES-CMAC cut to 8 bytes; a
  16-byte SSC.

`SmSession` is direction-neutral: a host calls `wrap_command` and
`unwrap_response`, a card `unwrap_command` and `protect_response`. Any failure
raises `SmError` (a `CardError`: 6987 for a missing object, 6988 for a wrong one),
and the caller must then end the session.
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod

from cryptography.hazmat.primitives.ciphers import Cipher, modes

from card import tlv
from card.apdu import CommandApdu
from card.crypto.cmac import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    aes_ecb_encrypt,
    pad80,
    unpad80,
)
from card.sw import SW, CardError

try:  # cryptography >= 43 keeps 3DES in `decrepit`.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore[attr-defined,no-redef,unused-ignore]

__all__ = [
    "TAG_CRYPTOGRAM_PI",
    "TAG_CRYPTOGRAM",
    "TAG_LE",
    "TAG_STATUS",
    "TAG_MAC",
    "SmError",
    "SmSuite",
    "Des3Suite",
    "AesSuite",
    "SmSession",
    "is_sm_cla",
    "retail_mac",
]

TAG_CRYPTOGRAM_PI = 0x87
TAG_CRYPTOGRAM = 0x85
TAG_LE = 0x97
TAG_STATUS = 0x99
TAG_MAC = 0x8E
MAC_SIZE = 8
_PI_PADDED = 0x01  # ISO 7816-4 Table 52: padding method 2 (80 00..)


class SmError(CardError):
    """A secure messaging failure: a missing, malformed or wrong data object or MAC.

    A `CardError`, so a card can answer its status word (6987 missing objects,
    6988 incorrect objects, ISO/IEC 7816-4 §5.6 Table 6).
    """

    def __init__(self, sw: int = SW.SM_DATA_OBJECTS_INCORRECT, reason: str = "") -> None:
        super().__init__(sw)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason or f"secure messaging error {self.sw:04X}"


def is_sm_cla(cla: int) -> bool:
    """Does an interindustry CLA announce ISO secure messaging (§5.4.1)?

    First interindustry class: b4-b3 = 10 or 11; further class: b6 = 1.
    """
    if cla & 0x80:
        return False
    if cla & 0x40:
        return bool(cla & 0x20)
    return cla & 0x08 == 0x08


def _header_authenticated(cla: int) -> bool:
    # First interindustry class b4-b3 = 11: header authenticated; further classes
    # (b6) and b4-b3 = 10: command header not processed (ISO 7816-4 §5.4.1).
    return not cla & 0x40 and cla & 0x0C == 0x0C


def _plain_cla(cla: int) -> int:
    return cla & ~0x20 & 0xFF if cla & 0x40 else cla & ~0x0C & 0xFF


def _des3(key16: bytes) -> TripleDES:
    # K1 K2 K1: cryptography deprecates 16-byte (two-key) TripleDES keys.
    return TripleDES(key16 + key16[:8] if len(key16) == 16 else key16)


def des_cbc(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    c = Cipher(_des3(key), modes.CBC(bytes(8)))
    ctx = c.decryptor() if decrypt else c.encryptor()
    return ctx.update(data) + ctx.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (the retail MAC), data already padded.

    Single-DES CBC under Ka over every block, then the last block is decrypted
    under Kb and encrypted under Ka (ICAO 9303-11 §9.8.6.1).

    Args:
        key: Ka || Kb, 16 bytes.
        data: whole 8-byte blocks.
    """
    if len(key) != 16 or len(data) % 8 or not data:
        raise ValueError("retail MAC: a 16-byte key and whole 8-byte blocks")
    ka, kb = key[:8], key[8:]
    h = des_cbc(ka * 2, data)[-8:]  # single DES: K1 = K2 = K3
    h = des_cbc(kb * 2, h, decrypt=True)
    return des_cbc(ka * 2, h)


class SmSuite(ABC):
    """A cipher suite for secure messaging: block size, SSC size, cipher and MAC."""

    block: int
    ssc_size: int

    def __init__(self, k_enc: bytes, k_mac: bytes) -> None:
        self._k_enc = bytes(k_enc)
        self._k_mac = bytes(k_mac)

    @abstractmethod
    def encrypt(self, ssc: bytes, padded: bytes) -> bytes:
        """Encrypt whole blocks for the message whose counter is `ssc`."""

    @abstractmethod
    def decrypt(self, ssc: bytes, cryptogram: bytes) -> bytes:
        """Decrypt whole blocks for the message whose counter is `ssc`."""

    @abstractmethod
    def mac(self, padded: bytes) -> bytes:
        """The 8-byte cryptographic checksum of padded data."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<keys hidden>)"


class Des3Suite(SmSuite):
    """3DES secure messaging (ICAO 9303-11 §9.8.6.1): CBC with a zero IV, retail MAC."""

    block = 8
    ssc_size = 8

    def __init__(self, k_enc: bytes, k_mac: bytes) -> None:
        if len(k_enc) != 16 or len(k_mac) != 16:
            raise ValueError("3DES SM keys are 16 bytes each")
        super().__init__(k_enc, k_mac)

    def encrypt(self, ssc: bytes, padded: bytes) -> bytes:
        return des_cbc(self._k_enc, padded)

    def decrypt(self, ssc: bytes, cryptogram: bytes) -> bytes:
        if not cryptogram or len(cryptogram) % 8:
            raise ValueError("cryptogram is not whole blocks")
        return des_cbc(self._k_enc, cryptogram, decrypt=True)

    def mac(self, padded: bytes) -> bytes:
        return retail_mac(self._k_mac, padded)


class AesSuite(SmSuite):
    """AES secure messaging (ICAO 9303-11 §9.8.6.2, TR-03110-3 §F.2): IV = E(KSenc, SSC), CMAC/8."""

    block = 16
    ssc_size = 16

    def __init__(self, k_enc: bytes, k_mac: bytes) -> None:
        if len(k_enc) not in (16, 24, 32) or len(k_mac) != len(k_enc):
            raise ValueError("AES SM keys are 16, 24 or 32 bytes, both the same size")
        super().__init__(k_enc, k_mac)

    def _iv(self, ssc: bytes) -> bytes:
        return aes_ecb_encrypt(self._k_enc, ssc)

    def encrypt(self, ssc: bytes, padded: bytes) -> bytes:
        return aes_cbc_encrypt(self._k_enc, self._iv(ssc), padded)

    def decrypt(self, ssc: bytes, cryptogram: bytes) -> bytes:
        if not cryptogram:
            raise ValueError("empty cryptogram")
        return aes_cbc_decrypt(self._k_enc, self._iv(ssc), cryptogram)

    def mac(self, padded: bytes) -> bytes:
        return aes_cmac(self._k_mac, padded)[:MAC_SIZE]


def _encode_le(le: int | None, extended: bool) -> bytes:
    if le is None:
        return b""
    if extended or le > 256:
        return tlv.build(TAG_LE, (le & 0xFFFF).to_bytes(2, "big"))
    return tlv.build(TAG_LE, bytes((le & 0xFF,)))


def _decode_le(value: bytes) -> int | None:
    if len(value) == 1:
        return value[0] or 256
    if len(value) == 2:
        return int.from_bytes(value, "big") or 65536
    if not value:
        return None
    raise SmError(reason=f"DO97 of {len(value)} bytes")


def _split_dos(data: bytes, allowed: tuple[int, ...]) -> tuple[dict[int, tlv.Tlv], bytes, bytes]:
    """The SM data objects in order: {tag: object}, the MAC input part, the MAC.

    `allowed` lists the tags that may precede 8E: a cryptogram first, then 97 or 99.

    Raises:
        SmError: 6987 when 8E is missing; 6988 for an unknown, repeated or
            misplaced object or malformed BER-TLV.
    """
    try:
        objects = tlv.parse(data, allow_padding=False)
    except (tlv.TlvError, ValueError):
        raise SmError(reason="SM data objects are not BER-TLV") from None
    found: dict[int, tlv.Tlv] = {}
    covered = b""
    rank = -1
    for i, obj in enumerate(objects):
        if obj.tag == TAG_MAC:
            if i != len(objects) - 1:
                raise SmError(reason="data after the cryptographic checksum")
            if len(obj.value) != MAC_SIZE:
                raise SmError(reason=f"8E of {len(obj.value)} bytes")
            return found, covered, obj.value
        if obj.tag not in allowed:
            raise SmError(reason=f"unexpected SM data object {obj.tag:02X}")
        # At most one cryptogram (87 or 85), then at most one 97 or 99.
        r = 0 if obj.tag in (TAG_CRYPTOGRAM_PI, TAG_CRYPTOGRAM) else 1
        if r <= rank:
            raise SmError(reason=f"SM data object {obj.tag:02X} out of order or repeated")
        rank = r
        found[obj.tag] = obj
        covered += obj.to_bytes()
    raise SmError(SW.SM_DATA_OBJECTS_MISSING, "no cryptographic checksum (8E)")


class SmSession:
    """One secure messaging session: a suite with its keys, and the send sequence counter.

    Args:
        suite: `Des3Suite` or `AesSuite` with the session keys.
        ssc: the initial send sequence counter (`suite.ssc_size` bytes; zero if None).
    """

    __slots__ = ("suite", "_ssc", "_open")

    def __init__(self, suite: SmSuite, ssc: bytes | None = None) -> None:
        if ssc is None:
            ssc = bytes(suite.ssc_size)
        if len(ssc) != suite.ssc_size:
            raise ValueError(f"SSC must be {suite.ssc_size} bytes")
        self.suite = suite
        self._ssc = int.from_bytes(ssc, "big")
        self._open = True

    @classmethod
    def des3(cls, k_enc: bytes, k_mac: bytes, ssc: bytes) -> SmSession:
        return cls(Des3Suite(k_enc, k_mac), ssc)

    @classmethod
    def aes(cls, k_enc: bytes, k_mac: bytes, ssc: bytes | None = None) -> SmSession:
        return cls(AesSuite(k_enc, k_mac), ssc)

    # -- state ---------------------------------------------------------------

    @property
    def ssc(self) -> bytes:
        """The current send sequence counter."""
        return self._ssc.to_bytes(self.suite.ssc_size, "big")

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        """End the session: every later wrap or unwrap fails."""
        self._open = False

    def _next(self) -> bytes:
        if not self._open:
            raise SmError(SW.CONDITIONS_NOT_SATISFIED, "the SM session is closed")
        self._ssc = (self._ssc + 1) % (1 << (8 * self.suite.ssc_size))
        return self.ssc

    def _pad(self, data: bytes) -> bytes:
        return pad80(data, self.suite.block)

    def _cryptogram(self, ssc: bytes, data: bytes, odd_ins: bool) -> bytes:
        if not data:
            return b""
        enc = self.suite.encrypt(ssc, self._pad(data))
        if odd_ins:
            return tlv.build(TAG_CRYPTOGRAM, enc)
        return tlv.build(TAG_CRYPTOGRAM_PI, bytes((_PI_PADDED,)) + enc)

    def _plain(self, ssc: bytes, dos: dict[int, tlv.Tlv]) -> bytes:
        obj = dos.get(TAG_CRYPTOGRAM_PI) or dos.get(TAG_CRYPTOGRAM)
        if obj is None:
            return b""
        value = obj.value
        if obj.tag == TAG_CRYPTOGRAM_PI:
            if not value or value[0] != _PI_PADDED:
                raise SmError(reason="padding-content indicator is not 01")
            value = value[1:]
        try:
            return unpad80(self.suite.decrypt(ssc, value), self.suite.block)
        except ValueError:
            raise SmError(reason="cryptogram: bad length or padding") from None

    def _check_mac(self, covered: bytes, mac: bytes) -> None:
        if not hmac.compare_digest(self.suite.mac(self._pad(covered)), mac):
            raise SmError(reason="cryptographic checksum mismatch")

    # -- the host's side -------------------------------------------------------

    def wrap_command(self, apdu: bytes | CommandApdu) -> bytes:
        """Protect a plain command (ICAO 9303-11 §9.8.4): the bytes to send.

        Raises:
            SmError: the session is closed.
            ValueError: the CLA is proprietary (no ISO secure messaging there).
        """
        cmd = apdu if isinstance(apdu, CommandApdu) else CommandApdu.from_bytes(bytes(apdu))
        if cmd.cla & 0x80:
            raise ValueError(f"CLA {cmd.cla:02X} is proprietary: no ISO secure messaging")
        cla = (cmd.cla | 0x20) if cmd.cla & 0x40 else (cmd.cla | 0x0C)
        ssc = self._next()
        body = self._cryptogram(ssc, cmd.data, bool(cmd.ins & 1)) + _encode_le(cmd.le, cmd.extended)
        header = bytes((cla, cmd.ins, cmd.p1, cmd.p2))
        mac_input = ssc + (self._pad(header) if _header_authenticated(cla) else b"") + body
        body += tlv.build(TAG_MAC, self.suite.mac(self._pad(mac_input)))
        extended = len(body) > 255 or cmd.extended
        le = 65536 if extended else 256
        return CommandApdu(cla, cmd.ins, cmd.p1, cmd.p2, body, le, extended).to_bytes()

    def unwrap_response(self, response: bytes) -> bytes:
        """Check and decrypt a protected response: the plain data || SW1 SW2.

        A response of a status word alone is an unprotected error (ICAO 9303-11
        §9.8.6: a card reports SM errors in clear); it comes back unchanged, with
        the counter counted, and an unprotected 9000 is refused.

        Raises:
            SmError: a missing or wrong MAC, DO99 disagreeing with SW1-SW2,
                a bad cryptogram, an unprotected 9000, a closed session.
        """
        if len(response) < 2:
            raise SmError(reason="response shorter than a status word")
        ssc = self._next()
        data, sw = response[:-2], response[-2:]
        if not data:
            if sw == b"\x90\x00" or sw[0] in (0x61, 0x62, 0x63):
                raise SmError(SW.SM_DATA_OBJECTS_MISSING, f"unprotected {sw.hex().upper()}")
            return bytes(sw)
        dos, covered, mac = _split_dos(data, (TAG_CRYPTOGRAM_PI, TAG_CRYPTOGRAM, TAG_STATUS))
        status = dos.get(TAG_STATUS)
        if status is None:
            raise SmError(SW.SM_DATA_OBJECTS_MISSING, "no processing status (99)")
        self._check_mac(ssc + covered, mac)
        if status.value != sw:
            raise SmError(reason=f"99 says {status.value.hex()}, SW1-SW2 {sw.hex()}")
        return self._plain(ssc, dos) + bytes(sw)

    # -- the card's side ---------------------------------------------------------

    def unwrap_command(self, cmd: CommandApdu) -> CommandApdu:
        """Check and decrypt a protected command: the plain command the applet runs.

        Raises:
            SmError: 6987 when 8E is missing; 6988 for a wrong MAC (a wrong counter
                shows as one), padding, indicator, order of objects, or CLA.
        """
        if not is_sm_cla(cmd.cla):
            raise SmError(SW.SM_DATA_OBJECTS_MISSING, "CLA announces no secure messaging")
        ssc = self._next()
        allowed = (TAG_CRYPTOGRAM, TAG_LE) if cmd.ins & 1 else (TAG_CRYPTOGRAM_PI, TAG_LE)
        dos, covered, mac = _split_dos(cmd.data, allowed)
        header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2))
        auth = self._pad(header) if _header_authenticated(cmd.cla) else b""
        self._check_mac(ssc + auth + covered, mac)
        data = self._plain(ssc, dos)
        le_obj = dos.get(TAG_LE)
        le = _decode_le(le_obj.value) if le_obj is not None else None
        try:
            return CommandApdu(_plain_cla(cmd.cla), cmd.ins, cmd.p1, cmd.p2, data, le)
        except ValueError as e:
            raise SmError(reason=str(e)) from None

    def protect_response(self, data: bytes, sw: int, *, odd_ins: bool = False) -> bytes:
        """The data field of a protected response: [87|85] 99 8E (ICAO 9303-11 §9.8.5).

        The caller answers it with the same SW1-SW2 as `sw`.
        """
        ssc = self._next()
        body = self._cryptogram(ssc, bytes(data), odd_ins)
        body += tlv.build(TAG_STATUS, (sw & 0xFFFF).to_bytes(2, "big"))
        return body + tlv.build(TAG_MAC, self.suite.mac(self._pad(ssc + body)))

    def skip_response(self) -> None:
        """Count a response sent in clear (an error status word), as the host will."""
        self._next()

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"SmSession({type(self.suite).__name__}, {state})"
