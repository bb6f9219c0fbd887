"""The system's demo set-up: one root certifying card, HSM and repository, derived from a seed.

`cardemu server repository|registration --demo-seed N` and the scenario derive
the same keys from the same seed, so the roles can run as separate processes
without a key exchange of their own. A real deployment gives each role its own
key and certificate; these are test keys and nothing else.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.sm.cvc import issue_cvc
from host.servers.web import TlsFiles

__all__ = ["DemoPki", "DemoTls", "demo_pki", "demo_tls", "DEMO_CREDENTIAL", "TERMINAL_ID"]

TERMINAL_ID = "counter-1"
#: What the holder's repository holds for the scenario's read.
DEMO_CREDENTIAL = b'{"qualification": "account opening", "holder": "H. Sato", "born": 1950}'


@dataclass(frozen=True)
class DemoPki:
    """The root and the keys of the parties it certifies (CV certificates, card.sm.cvc)."""

    root: EcKeyPair
    hsm: EcKeyPair
    hsm_cert: bytes
    repository: EcKeyPair
    repository_cert: bytes
    terminal: EcKeyPair


def demo_pki(seed: int = 0) -> DemoPki:
    """The demo PKI of `seed` (the same keys in every process)."""
    rng = CardRng(b"seed002-pki" + seed.to_bytes(8, "big", signed=True))
    root, hsm, repo, terminal = (EcKeyPair.generate(P256, rng) for _ in range(4))
    return DemoPki(
        root,
        hsm,
        issue_cvc(root.cryptography_key, b"ROOT", b"HSM-01", hsm.public),
        repo,
        issue_cvc(root.cryptography_key, b"ROOT", b"REP-01", repo.public),
        terminal,
    )


@dataclass(frozen=True)
class DemoTls:
    """The roles' HTTPS: a demo CA (what terminals trust) and the loopback server certificate."""

    ca_pem: bytes
    server: TlsFiles


def _tls_key(seed: int, label: str) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha512(f"seed002-tls {seed} {label}".encode()).digest()
    # 512 bits reduced mod n - 1: bias 2^-256 (FIPS 186-4 B.4.1); the same key in every process.
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(int.from_bytes(digest, "big") % (n - 1) + 1, ec.SECP256R1())


@functools.lru_cache(maxsize=4)
def demo_tls(seed: int = 0) -> DemoTls:
    """The demo TLS of `seed`: a CA and a server certificate for localhost, 127.0.0.1, ::1.

    The repository URL the HSM signs is an https:// URL, as a real deployment's
    would be; the counter terminal trusts this CA only (no system trust store
    for a demo). Keys derive from the seed, so separate processes of one demo
    (`cardemu server repository|registration`) serve certificates that chain to
    the same CA key; certificates are valid 2024-2049. Test keys, nothing else.
    """
    ca_key, key = _tls_key(seed, "ca"), _tls_key(seed, "server")
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardemu"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"seed 002 demo TLS CA {seed}"),
        ]
    )
    start = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC)
    end = _dt.datetime(2049, 12, 31, tzinfo=_dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return DemoTls(ca.public_bytes(pem), TlsFiles(cert.public_bytes(pem), key_pem))
