"""Host session for the keypair applet: generate, sign, decipher, agree, over any reader.

`KeyPairSession(reader)` speaks the applet's ISO/IEC 7816-8 commands
(`applets.keypair.applet` documents them) and returns `cryptography` public
keys, so a caller verifies what the card signed with an independent library.
Stack an `SmReader` under it for secure messaging.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from card import tlv
from card.sm.cvc import CURVE_OIDS
from host.readers.base import Reader
from host.session import AppletSession

__all__ = ["KEYPAIR_AID", "ALGORITHM_IDS", "GeneratedKey", "KeyPairSession", "public_key_of"]

#: applets.keypair.KEYPAIR_AID (the host names it; it does not import applets).
KEYPAIR_AID = bytes.fromhex("F043415244454D554B50")
#: Algorithm identifiers: NIST SP 800-78-4 Table 6-2, brainpool proprietary (B1, B2).
ALGORITHM_IDS = {
    "rsa2048": 0x07,
    "rsa3072": 0x05,
    "p256": 0x11,
    "p384": 0x14,
    "bp256": 0xB1,
    "bp384": 0xB2,
}
_CURVES_BY_OID = {
    CURVE_OIDS["P-256"]: ec.SECP256R1(),
    CURVE_OIDS["P-384"]: ec.SECP384R1(),
    CURVE_OIDS["brainpoolP256r1"]: ec.BrainpoolP256R1(),
    CURVE_OIDS["brainpoolP384r1"]: ec.BrainpoolP384R1(),
}


def public_key_of(template: bytes) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The `cryptography` public key of a 7F49 template (ISO/IEC 7816-8 §5.1 Table 3).

    Raises:
        ValueError: not a template this applet returns.
    """
    obj = tlv.Tlv.from_bytes(template)
    if obj.tag != 0x7F49:
        raise ValueError("not a 7F49 public key template")
    point, oid = obj.find(0x86), obj.find(0x06)
    if point is not None and oid is not None and oid.value in _CURVES_BY_OID:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES_BY_OID[oid.value], point.value)
    n, e = obj.find(0x81), obj.find(0x82)
    if n is None or e is None:
        raise ValueError("7F49 holds neither 06/86 nor 81/82")
    return rsa.RSAPublicNumbers(
        int.from_bytes(e.value, "big"), int.from_bytes(n.value, "big")
    ).public_key()


@dataclass(frozen=True)
class GeneratedKey:
    """What GENERATE ASYMMETRIC KEY PAIR returned."""

    reference: int
    template: bytes
    key_id: bytes
    usage_counter: int

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        return public_key_of(self.template)

    @classmethod
    def from_response(cls, reference: int, data: bytes) -> GeneratedKey:
        objs = tlv.parse(data)
        by_tag = {o.tag: o for o in objs}
        if 0x7F49 not in by_tag or 0xC0 not in by_tag or 0xC1 not in by_tag:
            raise ValueError("GENERATE answer needs 7F49, C0 and C1")
        return cls(
            reference,
            by_tag[0x7F49].to_bytes(),
            by_tag[0xC0].value,
            int.from_bytes(by_tag[0xC1].value, "big"),
        )


class KeyPairSession(AppletSession):
    """The keypair applet's commands over a reader (an `SmReader` for secure messaging)."""

    def __init__(self, reader: Reader, aid: bytes = KEYPAIR_AID) -> None:
        super().__init__(reader, aid)

    def select(self) -> None:
        self.send(0x00, 0xA4, 0x04, 0x0C, self.aid)

    def verify_pin(self, pin: bytes) -> None:
        self.send(0x00, 0x20, 0x00, 0x81, pin)

    def generate(
        self, reference: int, algorithm: str | int, policy: int | None = None
    ) -> GeneratedKey:
        alg = ALGORITHM_IDS[algorithm] if isinstance(algorithm, str) else algorithm
        crt = [(0x80, bytes((alg,)))]
        if policy is not None:
            crt.append((0xC1, bytes((policy,))))
        data = self.send(0x00, 0x47, 0x00, reference, tlv.build(0xAC, crt), le=0)
        return GeneratedKey.from_response(reference, data)

    def read_public(self, reference: int) -> GeneratedKey:
        return GeneratedKey.from_response(reference, self.send(0x00, 0x47, 0x81, reference, le=0))

    def set_key(self, crt: int, reference: int) -> None:
        """MANAGE SECURITY ENVIRONMENT SET: B6 signing, B8 deciphering, A6 key agreement."""
        self.send(0x00, 0x22, 0x41, crt, tlv.build(0x84, bytes((reference,))))

    def sign(self, reference: int, digest: bytes) -> bytes:
        self.set_key(0xB6, reference)
        return self.send(0x00, 0x2A, 0x9E, 0x9A, digest, le=0)

    def decipher(self, reference: int, cryptogram: bytes) -> bytes:
        self.set_key(0xB8, reference)
        return self.send(0x00, 0x2A, 0x80, 0x86, b"\x00" + cryptogram, le=0)

    def agree(self, reference: int, peer_point: bytes) -> bytes:
        data = self.send(0x00, 0x86, 0x00, reference, tlv.build(0x7C, [(0x85, peer_point)]), le=0)
        z = tlv.Tlv.from_bytes(data).find(0x82)
        if z is None:
            raise ValueError("key agreement answer without 82")
        return z.value

    def personalise(self, root_template: bytes, card_certificate: bytes) -> None:
        """PUT DATA: the root key and key 81's certificate (once)."""
        self.send(0x00, 0xDB, 0x3F, 0xFF, root_template + card_certificate)
