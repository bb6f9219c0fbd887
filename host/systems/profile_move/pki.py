"""Seed 003's demo PKI: one root, the profile providers' and the eSEs' certificates (test keys).

Every key is derived from a seed and a label (SHA-256), so every process of a
run (the scenario, each `cardemu server move-*`) has the same keys without
sharing files. Test keys only: a deployment issues its own.

- root: the authority every eSE trusts (in a deployment, the GSMA CI or the
  eSE maker's CA);
- provider: the profile provider of MNO `DEMO_MNO` (subject O = the MNO,
  OU "profile provider"), and one of another MNO for the refusal tests;
- eSEs: `ese_key(n)` and `ese_certificate(n)` (CN = the eSE ID in hex, OU "eSE");
- K4: the transport key provider and AuC share to carry K wrapped (RFC 3394),
  as operators carry Ki from a SIM vendor to the HLR/AuC;
- the eSEs as eUICCs (`euicc_pki`): an SGP.22 test PKI whose EUM certifies one
  EID per eSE, for the ECASD beside the ISD-R through which a phone's LPA enables
  a profile (ES10c).
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from applets.profile_move.wire import ESE_OU, PROVIDER_OU
from card.crypto.keys import P256, EcKeyPair

if TYPE_CHECKING:
    from host.pki import TestPki

__all__ = [
    "DEMO_MNO",
    "OTHER_MNO",
    "ESE_COUNT",
    "MovePki",
    "demo_pki",
    "eid_of",
    "ese_id_of",
    "euicc_pki",
]

#: eSEs 1..ESE_COUNT have an EID in `euicc_pki` (the scenario uses two; tests a third).
ESE_COUNT = 8

DEMO_MNO = "cardemu"
OTHER_MNO = "other-mno"
_NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC)


def _key(seed: int, label: str) -> EcKeyPair:
    d = int.from_bytes(hashlib.sha256(f"cardemu-move/{seed}/{label}".encode()).digest(), "big")
    return EcKeyPair.from_private_value(P256, d % (P256.order - 1) + 1, deterministic=True)


def ese_id_of(n: int) -> bytes:
    """The demo eSE ID of eSE n: 16 bytes, like an EID."""
    return bytes.fromhex("89049032") + n.to_bytes(12, "big")


def _name(cn: str, o: str, ou: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        ]
    )


@dataclass(frozen=True)
class MovePki:
    """The demo keys and certificates (see the module docstring)."""

    seed: int
    root: EcKeyPair
    provider: EcKeyPair
    provider_cert: bytes
    other_provider: EcKeyPair
    other_provider_cert: bytes
    k4: bytes

    def issue(self, key: EcKeyPair, cn: str, o: str, ou: str, serial: int) -> bytes:
        """An X.509 certificate the root signs (ECDSA P-256 / SHA-256)."""
        root_name = _name("cardemu move root", "cardemu", "root")
        from cryptography.hazmat.primitives import serialization

        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, o, ou))
            .issuer_name(root_name)
            .public_key(key.public.cryptography_key)
            .serial_number(serial)
            .not_valid_before(_NOT_BEFORE)
            .not_valid_after(_NOT_AFTER)
            .sign(self.root.cryptography_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.DER)

    def ese_key(self, n: int) -> EcKeyPair:
        return _key(self.seed, f"ese/{n}")

    def ese_certificate(self, n: int) -> bytes:
        return _ese_cert(self, n)


@lru_cache(maxsize=64)
def _ese_cert(pki: MovePki, n: int) -> bytes:
    return pki.issue(pki.ese_key(n), ese_id_of(n).hex().upper(), "eSE maker", ESE_OU, 1000 + n)


@lru_cache(maxsize=4)
def demo_pki(seed: int = 0) -> MovePki:
    """The demo PKI of `seed` (the same in every process)."""
    root = _key(seed, "root")
    provider = _key(seed, "provider")
    other = _key(seed, "other-provider")
    k4 = hashlib.sha256(f"cardemu-move/{seed}/k4".encode()).digest()[:16]
    pki = MovePki(seed, root, provider, b"", other, b"", k4)
    provider_cert = pki.issue(provider, "profile provider", DEMO_MNO, PROVIDER_OU, 1)
    other_cert = pki.issue(other, "profile provider", OTHER_MNO, PROVIDER_OU, 2)
    return MovePki(seed, root, provider, provider_cert, other, other_cert, k4)


@lru_cache(maxsize=4)
def euicc_pki(seed: int = 0) -> TestPki:
    """The SGP.22 test PKI (CI, EUM, eUICC credentials) of the demo eSEs of `seed`.

    eSE n is the eUICC whose EID is `eid_of(n)` (n from 1 to `ESE_COUNT`): an EID is
    a GSMA identifier with check digits (SGP.02 §2.2.2), so it is kept apart from
    the seed's eSE ID (`ese_id_of`), which the profile binding names. Every process
    of a run builds the same keys from the seed.
    """
    from host.pki import create_pki

    eids = [eid_of(n) for n in range(1, ESE_COUNT + 1)]
    return create_pki(eids=eids, seed=f"cardemu-move/{seed}/euicc")


def eid_of(n: int) -> str:
    """The EID of demo eSE n (in `euicc_pki` of any seed).

    Raises:
        ValueError: n outside 1..ESE_COUNT.
    """
    from host.pki import DEFAULT_EIN, make_eid

    if not 1 <= n <= ESE_COUNT:
        raise ValueError(f"demo eSE {n}: only eSEs 1 to {ESE_COUNT} have an EID")
    return make_eid(DEFAULT_EIN, n)
