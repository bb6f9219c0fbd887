"""Host session for a PIV card (NIST SP 800-73-4 Part 2), over any reader.

`PivSession(reader)` sends the PIV commands as a PIV middleware does (command
chaining for long data, GET RESPONSE below it) and returns `cryptography` public
keys, so a caller checks what the card signed with an independent library.

`PivSession.open_secure_messaging()` runs the client's side of the key
establishment (SP 800-73-4 Part 2 §4.1.6, steps H1-H12: the card's CVC checked
against the SM certificate signer, the key confirmation checked) and sends
every later command under PIV secure messaging (`card.sm.piv`).
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from card import tlv
from card.crypto.keys import TripleDES
from card.sm import piv as pivsm
from host.errors import SecureChannelError
from host.readers.base import Reader
from host.readers.sm import SmReader
from host.readers.wrappers import GetResponseReader
from host.session import AppletSession, encode_command

__all__ = [
    "PIV_AID",
    "PIV_ALGORITHMS",
    "DEFAULT_MGMT_KEY",
    "PivSession",
    "PivSecureMessaging",
    "piv_public_key",
    "sm_suites",
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


def sm_suites(template: bytes) -> list[int]:
    """The SM cipher suites (27, 2E) an application property template lists in `AC`."""
    try:
        apt = tlv.Tlv.from_bytes(template)
    except (tlv.TlvError, ValueError):
        return []
    return [
        e.value[0]
        for ac in apt.find_all(0xAC)
        for e in ac.children
        if e.tag == 0x80 and len(e.value) == 1 and e.value[0] in pivsm.SUITES
    ]


@dataclass(frozen=True)
class PivSecureMessaging:
    """What the key establishment showed: the suite, the card's CVC, its signer."""

    suite: pivsm.CipherSuite
    cvc: pivsm.PivCvc
    signer: x509.Certificate


class PivSession(AppletSession):
    """The PIV card application's commands over a reader."""

    chained = True

    def __init__(self, reader: Reader, aid: bytes = PIV_AID) -> None:
        super().__init__(reader, aid)
        self._sm: SmReader | None = None

    def send(
        self,
        cla: int,
        ins: int,
        p1: int,
        p2: int,
        data: bytes = b"",
        le: int | None = None,
        *,
        what: str = "",
    ) -> bytes:
        """One command; under SM the whole command is protected, then sent extended if long."""
        if self._sm is not None:
            return self.send_apdu(encode_command(cla, ins, p1, p2, data, le), what or f"{ins:02X}")
        return super().send(cla, ins, p1, p2, data, le, what=what)

    def open_secure_messaging(self, signer: x509.Certificate | None = None) -> PivSecureMessaging:
        """Key establishment (Part 2 §4.1.6), then every command under SM.

        Args:
            signer: the SM certificate signer to trust; None reads it from the
                card (object 5FC122) — trust on first use, as for a self-issued card.

        Raises:
            ApduError: the card refused a step.
            SecureChannelError: no suite offered, a CVC that does not verify, or a
                key confirmation that fails.
        """
        self.close_secure_messaging()
        suites = sm_suites(self.select())
        if not suites:
            raise SecureChannelError("the PIV application offers no secure messaging suite")
        suite = pivsm.SUITES[suites[0]]
        if signer is None:
            obj = tlv.Tlv.from_bytes(self.get_data(0x5FC122))  # 53 is primitive: parse its value
            cert = next((t for t in tlv.parse(obj.value) if t.tag == 0x70), None)
            if cert is None:
                raise SecureChannelError("no SM certificate signer on the card (5FC122)")
            signer = x509.load_der_x509_certificate(cert.value)
        eph = ec.generate_private_key(suite.curve.ec_curve())
        q_eh = eph.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        id_h = os.urandom(pivsm.ID_SIZE)
        body = tlv.build(0x7C, [(0x81, bytes((pivsm.CB_ZERO,)) + id_h + q_eh), (0x82, b"")])
        answer = tlv.unpack(
            0x82, tlv.unpack(0x7C, self.send(0x00, 0x87, suite.ident, 0x04, body, le=0))
        )
        n = suite.nonce_size
        if len(answer) < 1 + n + 16 or answer[0] != pivsm.CB_ZERO:
            raise SecureChannelError("the card's key establishment answer is malformed")
        n_icc, cryptogram, cvc_der = answer[1 : 1 + n], answer[1 + n : 17 + n], answer[17 + n :]
        try:
            cvc = pivsm.parse_cvc(cvc_der)
        except ValueError as e:
            raise SecureChannelError(str(e)) from None
        key = signer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not cvc.verify(key, suite):
            raise SecureChannelError("the card's CVC is not signed by the SM certificate signer")
        if cvc.curve_oid != suite.curve_oid:
            raise SecureChannelError("the card's CVC is not on the suite's curve")
        card_key = ec.EllipticCurvePublicKey.from_encoded_point(suite.curve.ec_curve(), cvc.point)
        z = eph.exchange(ec.ECDH(), card_key)
        id_sicc = pivsm.id_icc(cvc_der)
        info = pivsm.other_info(suite, id_h, pivsm.CB_ZERO, q_eh, id_sicc, n_icc, pivsm.CB_ZERO)
        keys = pivsm.derive_keys(suite, z, info)
        expected = pivsm.auth_cryptogram(keys, suite, id_sicc, id_h, q_eh)
        if not hmac.compare_digest(expected, cryptogram):
            raise SecureChannelError("the card's key confirmation (AuthCryptogram) fails")
        session = pivsm.PivSmSession(pivsm.SessionKeys(b"", keys.mac, keys.enc, keys.rmac))
        self._sm = SmReader(self.reader, session)
        self._plain_reader, self.reader = self.reader, GetResponseReader(self._sm)
        return PivSecureMessaging(suite, cvc, signer)

    def close_secure_messaging(self) -> None:
        """Back to plain commands (the card ends its session at the next plain one)."""
        if self._sm is not None:
            self._sm.close()
            self.reader = self._plain_reader
            self._sm = None

    def verify_pairing_code(self, code: bytes) -> None:
        """VERIFY 98: the pairing code of the virtual contact interface (under SM)."""
        self.send(0x00, 0x20, 0x00, 0x98, code)

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
