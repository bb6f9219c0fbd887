"""Where the HSM keeps its keys: its own SQLite store, or a PKCS#11 token (SoftHSM2).

Both give the same two calls: `generate(label) -> 7F49` (a P-256 key pair,
the private key kept inside) and `sign(key_id, data) -> r || s`
(ECDSA-SHA-256, plain r || s as BSI TR-03111 §5.2.1 and PKCS#11 v2.40
§2.3.6 CKM_ECDSA both give it; the hash is taken outside the token). Key IDs
are RFC 7093 method 1 over the public point (`key_id_of`).

`Pkcs11KeyStore` needs the optional `python-pkcs11` package and a PKCS#11
module (Debian's `softhsm2`: /usr/lib/softhsm/libsofthsm2.so); the private
key never leaves the token (CKA_SENSITIVE, not extractable).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Protocol

from card.crypto.keys import P256, EcKeyPair, EcPublicKey
from card.sm.cvc import ec_sign, public_key_template
from host.servers.web import Store

__all__ = ["KeyStore", "SqliteKeyStore", "Pkcs11KeyStore", "SOFTHSM_MODULE"]

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hsm_private (key_id TEXT PRIMARY KEY, label TEXT NOT NULL,
    private BLOB NOT NULL, at REAL NOT NULL)
"""


class KeyStore(Protocol):
    """The HSM's key store."""

    def generate(self, label: str) -> bytes:
        """A new P-256 key pair kept inside; its public key template (7F49)."""
        ...

    def sign(self, key_id: str, data: bytes) -> bytes:
        """ECDSA-SHA-256 over `data` with the key `key_id`, plain r || s.

        Raises:
            KeyError: no such key.
        """
        ...


def _key_id(template: bytes) -> str:
    from host.systems.repository.server import key_id_of

    return key_id_of(template).hex()


class SqliteKeyStore:
    """Keys in the HSM's own SQLite store (a software HSM)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.apply_schema(_SCHEMA)  # its types mapped on PostgreSQL

    def generate(self, label: str) -> bytes:
        key = EcKeyPair.generate(P256)
        template = public_key_template(key.public)
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO hsm_private VALUES (?, ?, ?, ?)",
                (_key_id(template), label, key.private_bytes(), time.time()),
            )
        return template

    def sign(self, key_id: str, data: bytes) -> bytes:
        row = self.store.query_one("SELECT private FROM hsm_private WHERE key_id = ?", (key_id,))
        if row is None:
            raise KeyError(key_id)
        key = EcKeyPair.from_private_value(P256, bytes(row["private"]))
        return ec_sign(key.cryptography_key, P256, data)


def _octet_string(der: bytes) -> bytes:
    """The value of a DER OCTET STRING (CKA_EC_POINT is one, PKCS#11 v2.40 §2.3.3)."""
    if len(der) < 2 or der[0] != 0x04:
        raise ValueError("CKA_EC_POINT is not an OCTET STRING")
    n, i = der[1], 2
    if n & 0x80:
        size = n & 0x7F
        n, i = int.from_bytes(der[2 : 2 + size], "big"), 2 + size
    if len(der) != i + n:
        raise ValueError("CKA_EC_POINT has a wrong length")
    return der[i:]


class Pkcs11KeyStore:
    """Keys on a PKCS#11 token (SoftHSM2 or a real HSM), through python-pkcs11.

    Args:
        module: the PKCS#11 library.
        token_label: the token's label.
        pin: the user PIN (never logged).

    Raises:
        ImportError: python-pkcs11 is not installed.
    """

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        import pkcs11

        self._pkcs11: Any = pkcs11
        self._token = pkcs11.lib(module).get_token(token_label=token_label)
        self._pin = pin
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({self._token.label!r}, <pin hidden>)"

    def generate(self, label: str) -> bytes:
        p = self._pkcs11
        from pkcs11.util.ec import encode_named_curve_parameters

        with self._lock, self._token.open(user_pin=self._pin, rw=True) as session:
            params = session.create_domain_parameters(
                p.KeyType.EC,
                {p.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            pub, priv = params.generate_keypair(store=True, label=label)
            point = _octet_string(bytes(pub[p.Attribute.EC_POINT]))
            template = public_key_template(EcPublicKey.from_point(P256, point))
            key_id = bytes.fromhex(_key_id(template))
            pub[p.Attribute.ID] = key_id
            priv[p.Attribute.ID] = key_id
        return template

    def sign(self, key_id: str, data: bytes) -> bytes:
        p = self._pkcs11
        with self._lock, self._token.open(user_pin=self._pin) as session:
            try:
                key: Any = session.get_key(
                    object_class=p.ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key_id)
                )
            except (p.NoSuchKey, p.MultipleObjectsReturned):
                raise KeyError(key_id) from None
            # CKM_ECDSA over our SHA-256 (SoftHSM2 2.6 has no CKM_ECDSA_SHA256).
            digest = hashlib.sha256(data).digest()
            return bytes(key.sign(digest, mechanism=p.Mechanism.ECDSA))
