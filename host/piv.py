"""Host session for a PIV card (NIST SP 800-73-4 Part 2), over any reader.

`PivSession(reader)` sends the PIV commands as a PIV middleware does (command
chaining for long data, GET RESPONSE below it) and returns `cryptography` public
keys, so a caller checks what the card signed with an independent library.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from card import tlv
from card.crypto.keys import TripleDES
from host.readers.base import Reader
from host.session import AppletSession

__all__ = [
    "PIV_AID",
    "PIV_ALGORITHMS",
    "DEFAULT_MGMT_KEY",
    "PivSession",
    "piv_public_key",
]

#: SP 800-73-4 Part 1 §2.2 (the host names it; it does not import applets).
PIV_AID = bytes.fromhex("A000000308000010000100")
DEFAULT_MGMT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")
#: SP 800-78-4 Table 6-2
PIV_ALGORITHMS = {"rsa2048": 0x07, "rsa3072": 0x05, "p256": 0x11, "p384": 0x14}
_CURVES = {0x11: ec.SECP256R1(), 0x14: ec.SECP384R1()}
_MGMT = {0x03: 8, 0x08: 16, 0x0A: 16, 0x0C: 16}  # block sizes


def piv_public_key(template: bytes, algorithm: int) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The `cryptography` key of a GENERATE answer (SP 800-73-4 Part 2 §3.3.2 Table 10).

    Raises:
        ValueError: not a 7F49 template of that algorithm.
    """
    obj = tlv.Tlv.from_bytes(template)
    if obj.tag != 0x7F49:
        raise ValueError("not a 7F49 public key template")
    if algorithm in _CURVES:
        point = obj.find(0x86)
        if point is None:
            raise ValueError("an EC key template without 86")
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[algorithm], point.value)
    n, e = obj.find(0x81), obj.find(0x82)
    if n is None or e is None:
        raise ValueError("an RSA key template without 81 and 82")
    return rsa.RSAPublicNumbers(
        int.from_bytes(e.value, "big"), int.from_bytes(n.value, "big")
    ).public_key()


def _pad(pin: bytes) -> bytes:
    return pin + b"\xff" * (8 - len(pin))


def _ecb(algorithm: int, key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(
        TripleDES(key) if algorithm == 0x03 else algorithms.AES(key),
        modes.ECB(),
    )
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(block) + op.finalize()


class PivSession(AppletSession):
    """The PIV card application's commands over a reader."""

    chained = True

    def __init__(self, reader: Reader, aid: bytes = PIV_AID) -> None:
        super().__init__(reader, aid)

    def select(self) -> bytes:
        """SELECT the PIV application; the application property template."""
        return self.send(0x00, 0xA4, 0x04, 0x00, self.aid, le=0)

    # -- PIN and PUK -----------------------------------------------------------------

    def verify_pin(self, pin: bytes | None) -> None:
        """VERIFY (None: ask the state; ApduError 63Cx tells the tries left)."""
        self.send(0x00, 0x20, 0x00, 0x80, b"" if pin is None else _pad(pin))

    def change_reference(self, reference: int, old: bytes, new: bytes) -> None:
        self.send(0x00, 0x24, 0x00, reference, _pad(old) + _pad(new))

    def unblock_pin(self, puk: bytes, new_pin: bytes) -> None:
        self.send(0x00, 0x2C, 0x00, 0x80, _pad(puk) + _pad(new_pin))

    # -- the card management key -------------------------------------------------------

    def authenticate(
        self, key: bytes = DEFAULT_MGMT_KEY, algorithm: int = 0x03, *, mutual: bool = True
    ) -> None:
        """Authenticate with the card management key 9B (Part 2 Appendix A.1/A.2).

        Raises:
            ApduError: the card refused the key.
            ValueError: the card's answer to a mutual authentication is wrong.
        """
        size = _MGMT[algorithm]
        if mutual:
            first = self.send(0x00, 0x87, algorithm, 0x9B, tlv.build(0x7C, [(0x80, b"")]), le=0)
            witness = tlv.unpack(0x80, tlv.unpack(0x7C, first))
            challenge = os.urandom(size)
            body = [(0x80, _ecb(algorithm, key, witness, decrypt=True)), (0x81, challenge)]
            answer = self.send(0x00, 0x87, algorithm, 0x9B, tlv.build(0x7C, body), le=0)
            if tlv.unpack(0x82, tlv.unpack(0x7C, answer)) != _ecb(algorithm, key, challenge):
                raise ValueError("the card does not hold this management key")
            return
        first = self.send(0x00, 0x87, algorithm, 0x9B, tlv.build(0x7C, [(0x81, b"")]), le=0)
        challenge = tlv.unpack(0x81, tlv.unpack(0x7C, first))
        response = tlv.build(0x7C, [(0x82, _ecb(algorithm, key, challenge))])
        self.send(0x00, 0x87, algorithm, 0x9B, response)

    def set_management_key(self, key: bytes, algorithm: int = 0x03) -> None:
        """Yubico's SET MANAGEMENT KEY (`00 FF FF FF`)."""
        self.send(0x00, 0xFF, 0xFF, 0xFF, bytes((algorithm, 0x9B, len(key))) + key)

    # -- keys ------------------------------------------------------------------------------

    def generate(
        self, slot: int, algorithm: str | int
    ) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        alg = PIV_ALGORITHMS[algorithm] if isinstance(algorithm, str) else algorithm
        crt = tlv.build(0xAC, [(0x80, bytes((alg,)))])
        return piv_public_key(self.send(0x00, 0x47, 0x00, slot, crt, le=0), alg)

    def general_authenticate(self, slot: int, algorithm: int, tag: int, value: bytes) -> bytes:
        """`7C { 82 00, tag value }` with a slot key; the `82` of the answer."""
        body = tlv.build(0x7C, [(0x82, b""), (tag, value)])
        answer = self.send(0x00, 0x87, algorithm, slot, body, le=0)
        return tlv.unpack(0x82, tlv.unpack(0x7C, answer))

    def sign(self, slot: int, algorithm: int, data: bytes) -> bytes:
        """The field-size hash (EC: DER signature) or the padded block (RSA: m^d mod n)."""
        return self.general_authenticate(slot, algorithm, 0x81, data)

    def ecdh(self, slot: int, algorithm: int, peer_point: bytes) -> bytes:
        return self.general_authenticate(slot, algorithm, 0x85, peer_point)

    # -- data objects -----------------------------------------------------------------------

    def get_data(self, tag: int) -> bytes:
        """GET DATA of a container; its whole TLV (`53 {…}`, `7E {…}`)."""
        name = tag.to_bytes(3 if tag > 0xFFFF else (2 if tag > 0xFF else 1), "big")
        return self.send(0x00, 0xCB, 0x3F, 0xFF, tlv.build(0x5C, name), le=0)

    def put_data(self, tag: int, value: bytes) -> None:
        """PUT DATA of a container: `value` is the contents of its `53`."""
        name = tag.to_bytes(3, "big")
        self.send(0x00, 0xDB, 0x3F, 0xFF, tlv.build(0x5C, name) + tlv.build(0x53, value))
