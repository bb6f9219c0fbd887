"""The system's demo set-up, derived from a seed: the eKYC CA, the authentication server's
key and certificate, the carriers, and the user with their identity document.

`cardemu server ekyc-*` and the scenario derive the same keys from the same
seed, so the roles can run as separate processes without a key exchange of
their own. A real deployment gives the authentication server a key in an HSM,
certified by a CA the carriers agree on; these are test keys and nothing else.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import ipaddress
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from host.pki import Credential

__all__ = [
    "CARRIERS",
    "Carrier",
    "DemoPki",
    "Person",
    "demo_pki",
    "person",
]

_NOT_BEFORE = _dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)
_NOT_AFTER = _dt.datetime(2045, 1, 1, tzinfo=_dt.UTC)
#: The face-feature vector's size (an eKYC vendor's embeddings are 128-512; 32 keeps JSON small).
FACE_DIMENSIONS = 32


def _key(seed: int, label: str) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha256(f"seed000/{seed}/{label}".encode()).digest()
    value = int.from_bytes(digest, "big") % (2**256 - 2**224) + 1  # below the P-256 order
    return ec.derive_private_key(value, ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardemu eKYC test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    serial: int,
    *,
    ca: bool,
    tls: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if tls:  # the server's HTTPS certificate on loopback
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256(), ecdsa_deterministic=True)


@dataclass(frozen=True)
class DemoPki:
    """The eKYC CA (the carriers' trust anchor) and the authentication server's credentials:
    its signing key (certificates over EIDs) and its HTTPS key, both certified by the CA."""

    ca: Credential
    auth: Credential
    #: an authentication server no trusted CA certified (for the refusal tests)
    rogue: Credential
    #: the authentication server's HTTPS certificate (localhost, 127.0.0.1)
    tls: Credential


@lru_cache(maxsize=4)
def demo_pki(seed: int = 0) -> DemoPki:
    """The demo PKI of `seed` (the same keys and certificates in every process)."""
    ca_key, auth_key, rogue_key, tls_key = (_key(seed, n) for n in ("ca", "auth", "rogue", "tls"))
    ca = _cert("eKYC CA", ca_key, "eKYC CA", ca_key, 1, ca=True)
    auth = _cert("eKYC authentication server", auth_key, "eKYC CA", ca_key, 2, ca=False)
    rogue = _cert("eKYC CA", rogue_key, "eKYC CA", rogue_key, 3, ca=False)
    tls = _cert("localhost", tls_key, "eKYC CA", ca_key, 4, ca=False, tls=True)
    return DemoPki(
        Credential(ca, ca_key),
        Credential(auth, auth_key),
        Credential(rogue, rogue_key),
        Credential(tls, tls_key),
    )


@dataclass(frozen=True)
class Carrier:
    """A carrier: its name, the PLMN its IMSIs start with, the ICCID issuer digits, its key.

    `secret` diversifies each subscriber's K and OPc from the ICCID (the way SIM
    vendors derive card keys from a master key), so its AuC finds them again and
    a profile generated twice for one contract is the same profile.
    """

    name: str
    plmn: str
    issuer: str
    secret: bytes

    def subscriber_keys(self, iccid: str) -> tuple[bytes, bytes]:
        """(K, OPc) of the subscription with this ICCID."""
        k = hmac.new(self.secret, b"K" + iccid.encode(), hashlib.sha256).digest()[:16]
        opc = hmac.new(self.secret, b"OPc" + iccid.encode(), hashlib.sha256).digest()[:16]
        return k, opc


CARRIERS: dict[str, Carrier] = {
    "carrier1": Carrier("carrier1", "00101", "8900101", b"seed000 carrier1 master key"),
    "carrier2": Carrier("carrier2", "00102", "8900102", b"seed000 carrier2 master key"),
}


def _unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(FACE_DIMENSIONS)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


@dataclass(frozen=True)
class Person:
    """A user: their identity document record (with the face vector the vendor took from its
    photo) and their real face, which the phone's camera sees."""

    document: dict[str, Any]
    face: tuple[float, ...]


def person(seed: int = 0, *, name: str = "Hanako Sato") -> Person:
    """A synthetic user: the document's face vector and the live face are two noisy views
    of one face (as a photo on a licence and a selfie are)."""
    rng = random.Random(f"seed000-person/{seed}/{name}")
    face = _unit(rng)
    noisy = [x + rng.gauss(0.0, 0.05) for x in face]
    n = sum(x * x for x in noisy) ** 0.5
    document = {
        "type": "driving-licence",
        "number": f"DL{rng.randrange(10**11):011d}",
        "name": name,
        "born": "1990-04-01",
        "address": "1-1 Chiyoda, Tokyo",
        "face": [round(x / n, 6) for x in noisy],
    }
    return Person(document, tuple(face))
