"""Seed 003's wire formats and crypto, shared by the eSE's move agent and the host.

JP 6820082 B2 (profile move between embedded secure elements) leaves the
algorithms open; the choices here are what an eUICC deployment uses today:

- **Profile encryption** (seed step 203/535, "a symmetric key the eSE makes
  encrypts the profile; the provider certificate's public key encrypts that
  key"): ECIES on NIST P-256. A fresh 32-byte content key (AES-128 Kenc ||
  AES-128 Kmac) from the card RNG encrypts the profile with AES-CBC (ISO/IEC
  9797-1 method 2 padding) and authenticates header || IV || ciphertext with
  AES-CMAC (encrypt-then-MAC, as SGP.22's SCP03t does). The content key is
  wrapped (RFC 3394 AES key wrap) under a KEK from an ephemeral-static ECDH
  with the recipient's key and the ANSI X9.63 KDF (SHA-256; BSI TR-03111
  §4.3.3). ECDH rather than RSA-OAEP: the eUICC ecosystem (SGP.22 certificates,
  the ECASD) is P-256 throughout, a card does ECDH with 32-byte keys far faster
  than RSA-2048 decryption, and ephemeral keys give each backup its own KEK.
- **Binding signature** (FIG. 3, formulas 1-3): the seed writes
  RSAwithSHA1(Profile ID | eSE ID | IMSI). SHA-1 signatures are disallowed
  (NIST SP 800-131A Rev. 2 §3), so the provider signs with ECDSA P-256 /
  SHA-256. "|" is concatenation; the fields here are TLV-encoded (C1, C7, C8)
  so that no two different triples concatenate to the same bytes.
- The three variants (formula 1 full, 2 without IMSI, 3 without eSE ID) are
  the eSE's *policy*, set at personalisation, never read from the profile: a
  profile cannot talk the eSE down to a weaker check.
- **Certificates**: X.509 (ECDSA P-256), issued by one root the eSEs trust.
  A provider certificate's subject holds its MNO in organizationName (seed
  step 525: "the provider's certificate carries the MNO identifier in one
  field") and OU "profile provider"; an eSE certificate's CN is its eSE ID in
  hex, OU "eSE". The card checks signatures only: it has no clock, so validity
  dates are the host's business.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from card import tlv
from card.crypto.cmac import aes_cbc_decrypt, aes_cbc_encrypt, aes_cmac, pad80, unpad80
from card.crypto.kdf import x963_kdf
from card.crypto.keys import P256, EcKeyPair, EcPublicKey
from card.crypto.rng import CardRng
from card.profile_binding import (
    META_ESE_ID,
    META_PROFILE_ID,
    META_PROVIDER_CERT,
    META_SIGNATURE,
    PROVIDER_OU,
    CertError,
    Certified,
    Variant,
    binding_data,
    check_certificate,
)
from card.profiles import MOVE_AGENT_AID as _MOVE_AGENT_AID

__all__ = [
    "MOVE_AGENT_AID",
    "Ins",
    "Parts",
    "Variant",
    "SealError",
    "CertError",
    "Certified",
    "seal",
    "unseal",
    "binding_data",
    "delete_order_data",
    "install_signed_data",
    "check_certificate",
    "META_PROFILE_ID",
    "META_ESE_ID",
    "META_SIGNATURE",
    "META_PROVIDER_CERT",
    "PROVIDER_OU",
]

#: The move agent: the "CARDEMU" proprietary RID family, PIX "MV".
MOVE_AGENT_AID = _MOVE_AGENT_AID

# Tags (context-specific, private to this applet).
TAG_MOVE_ID = 0xC1
TAG_PARTS = 0xC2
TAG_VARIANT = 0xC3
TAG_DISCARD = 0xC4
TAG_ESE_ID = 0xC7
TAG_IMSI = 0xC8
TAG_PURPOSE = 0xC9
TAG_ICCID = 0x5A
TAG_ENABLED = 0x80
TAG_CERT = 0xD0
TAG_SIGNATURE = 0xD1
TAG_PRIVATE = 0xD2
TAG_PACKAGE = 0xD3
TAG_ROOT = 0x86
TAG_PROFILE = 0xE0
# Inside a sealed box.
TAG_EPHEMERAL = 0x86
TAG_WRAPPED = 0xC5
TAG_IV = 0xC6
TAG_CIPHERTEXT = 0xCA
TAG_MAC = 0x8E

MOVE_ID_SIZE = 16
ESE_ID_SIZE = 16

# The binding (FIG. 3: 304 Profile ID, 305 eSE ID, 306 signature), its metadata keys and its
# check live in card.profile_binding, shared with the ISD-R's EnableProfile.
ESE_OU = "eSE"

_KDF_INFO = b"cardemu profile move v1"


class Ins(IntEnum):
    """The move agent's instructions (CLA 80)."""

    BACKUP = 0xE1
    INSTALL = 0xE2
    DELETE = 0xE3
    ACTIVATE = 0xE4
    STATUS = 0xE5


class Parts(IntEnum):
    """What a backup carries besides the subscription's skeleton (seed step 203)."""

    KEYS = 0x01  # K and OPc/OP ("K can be left out")
    APPLICATIONS = 0x02  # applications installed with the profile
    USER_DATA = 0x04  # DF.TELECOM: phone book, SMS
    ALL = 0x07


class SealError(ValueError):
    """A sealed box that does not open (wrong key, header or MAC, or malformed)."""


def seal(recipient: EcPublicKey, plaintext: bytes, header: bytes, rng: CardRng) -> bytes:
    """Encrypt `plaintext` for `recipient`, binding `header` (see the module docstring)."""
    ephemeral = EcKeyPair.generate(P256, rng)
    point = ephemeral.public.to_point()
    kek = x963_kdf(ephemeral.ecdh(recipient), _KDF_INFO + point, 16)
    content = rng.random(32)
    iv = rng.random(16)
    ciphertext = aes_cbc_encrypt(content[:16], iv, pad80(plaintext))
    mac = aes_cmac(content[16:], header + iv + ciphertext)
    return (
        tlv.build(TAG_EPHEMERAL, point)
        + tlv.build(TAG_WRAPPED, aes_key_wrap(kek, content))
        + tlv.build(TAG_IV, iv)
        + tlv.build(TAG_CIPHERTEXT, ciphertext)
        + tlv.build(TAG_MAC, mac)
    )


def unseal(key: EcKeyPair, box: bytes, header: bytes) -> bytes:
    """Open a sealed box addressed to `key` under `header`.

    Raises:
        SealError: anything wrong (nothing of the plaintext is released then).
    """
    try:
        objs = {o.tag: o.value for o in tlv.parse(box)}
        point, wrapped = objs[TAG_EPHEMERAL], objs[TAG_WRAPPED]
        iv, ciphertext, mac = objs[TAG_IV], objs[TAG_CIPHERTEXT], objs[TAG_MAC]
        kek = x963_kdf(key.ecdh(point), _KDF_INFO + point, 16)
        content = aes_key_unwrap(kek, wrapped)
    except (KeyError, ValueError, InvalidUnwrap) as e:
        raise SealError(f"sealed box does not open: {type(e).__name__}") from None
    if len(content) != 32 or len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
        raise SealError("sealed box malformed")
    import hmac

    if not hmac.compare_digest(aes_cmac(content[16:], header + iv + ciphertext), mac):
        raise SealError("sealed box MAC does not verify")
    try:
        return unpad80(aes_cbc_decrypt(content[:16], iv, ciphertext))
    except ValueError:
        raise SealError("sealed box padding") from None


def delete_order_data(move_id: bytes, ese_id: bytes, iccid: str) -> bytes:
    """What the provider signs to order a deletion (seed steps 207, 208, 575)."""
    return (
        tlv.build(TAG_PURPOSE, b"\x01")
        + tlv.build(TAG_MOVE_ID, move_id)
        + tlv.build(TAG_ESE_ID, ese_id)
        + tlv.build(TAG_ICCID, iccid.encode())
    )


def install_signed_data(move_id: bytes, ese_id: bytes, package: bytes) -> bytes:
    """What the provider signs over an install package (step 560): the eSE knows its author."""
    return (
        tlv.build(TAG_PURPOSE, b"\x02")
        + tlv.build(TAG_MOVE_ID, move_id)
        + tlv.build(TAG_ESE_ID, ese_id)
        + hashlib.sha256(package).digest()
    )
