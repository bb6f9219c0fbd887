"""The card of seed 002: it unlocks the holder's personal information repository.

The card holds no personal data. It proves its holder by fingerprint (the
match-on-card applet, asked through `SharedBioTemplate`), carries the
repository's URL with the HSM's signature over the card's public key and the
URL, and lets every disclosure pass through it under secure messaging and a
one-time token (JP 2023-044038 A, ST11-ST22, ST31-ST65, ST71-ST83).

Secure messaging is `card.sm.auth` (certificates from one root, ephemeral ECDH,
AES SM); the peer's role is the start of its certificate holder reference
(CHR): ``HSM`` for the registration device's HSM, ``REP`` for a repository.

Commands (CLA 00, 0C once a session runs on the channel):

Personalisation, in clear, until the root is set:

- `00 47 80 81 [AC { 80 11 }]` GENERATE ASYMMETRIC KEY PAIR (ISO/IEC 7816-8
  §5.1): the card authentication key of secure messaging (P-256), `7F49`.
- `00 DB 3F FF { 7F49 root, 7F21 card CVC, 7F2E holder template [, 4F bio AID] }`
  PUT DATA: the root that certifies card and peers, the card's certificate
  (of key 81), and the copy of the holder's fingerprint template that issuance
  sends to the HSM (seed ST12, the "memory area 24a"); it is erased once issued.

Secure messaging set-up (`card.sm.auth`): `00 2A 00 BE <7F21>`, `00 84 00 00 08`,
`00 86 00 00 7C { 80, 81 }`.

Issuance, protected, with an ``HSM`` peer, while no URL is stored:

- `00 CA 7F 2E` GET DATA: the holder's fingerprint template (ST12).
- `00 DB 3F FF { 7F49 HSM key }`: the HSM matched the finger (ST14) and gives
  its public key (ST19); kept for this session.
- `00 47 80 01 [AC { 80 11 }]`: the card's key pair (ST17-ST18), answering
  `7F49` and `C0` key ID (ST19). Only after the HSM key came in this session.
- `00 DB 3F FF { 5F50 URL, 5F37 signature }` (ST21): the card checks the HSM's
  ECDSA signature over `7F49 card key || 5F50 URL` with the HSM key of this
  session, then stores URL, signature and HSM key and erases the template copy
  in one transaction (ST22). A signature that fails: 6982, nothing stored.

Use, with the holder's finger matched in this card session (else 6982):

- `00 CA 5F 50` GET DATA, in clear: `5F50 URL || 7F49 card key || 5F37
  signature || C0 HSM key ID` (ST35) — the terminal checks the signature with
  the HSM key the registration device publishes under that ID.
- Protected, with a ``REP`` peer: `00 47 80 02` a fresh key pair for the
  repository (ST43-ST45; `7F49`, `C0` key ID = RFC 7093 method 1), replacing
  the previous one in one transaction; `00 2A 9E 9A <credential>` PSO COMPUTE
  DIGITAL SIGNATURE with it (ST55: ECDSA-SHA-256 of the data, plain r || s);
  `00 DB 3F FF { DF20 token }` a one-time token (ST57: SM decrypts it and
  checks its MAC, ST58-ST59).
- `00 CA DF 20` GET DATA, in clear on another logical channel: the token,
  released once (ST60), then forgotten.

Randomness comes from the card RNG only. No command answers with a private key.
"""

from __future__ import annotations

import hashlib
from typing import Any

from card import tlv
from card.crypto.keys import P256, EcKeyPair
from card.framework import APDU, CLEAR_ON_DESELECT, SW, CardError, persistent, transient
from card.sm.applet import SmApplet
from card.sm.auth import AuthError, card_authenticate
from card.sm.cvc import Cvc, ec_sign, ec_verify, parse_public_key_template, public_key_template

__all__ = [
    "REPOSITORY_AID",
    "RepositoryCardApplet",
    "signed_url_data",
    "key_identifier",
    "ROLE_HSM",
    "ROLE_REPOSITORY",
]

REPOSITORY_AID = bytes.fromhex("F043415244454D555250")
#: The built-in match-on-card applet (applets.biometric.BIO_AID), named, not imported.
DEFAULT_BIO_AID = bytes.fromhex("F043415244454D55B1")

ROLE_HSM = b"HSM"
ROLE_REPOSITORY = b"REP"

CARD_AUTH_KEY = 0x81
ISSUED_KEY = 0x01
SESSION_KEY = 0x02

INS_PSO = 0x2A
INS_GENERATE = 0x47
INS_GET_CHALLENGE = 0x84
INS_GENERAL_AUTHENTICATE = 0x86
INS_GET_DATA = 0xCA
INS_PUT_DATA = 0xDB

TAG_CRT = 0xAC
TAG_ALGORITHM = 0x80
TAG_KEY_ID = 0xC0
TAG_PUBLIC_KEY = 0x7F49
TAG_CVC = 0x7F21
TAG_TEMPLATE = 0x7F2E
TAG_AID = 0x4F
TAG_URL = 0x5F50
TAG_SIGNATURE = 0x5F37
TAG_TOKEN = 0xDF20
TAG_DYNAMIC = 0x7C
ALG_P256 = 0x11

MAX_URL = 512
MAX_TOKEN = 64

_PEER_KEY = "rp.peer_key"
_PEER_ROLE = "rp.peer_role"
_HSM_KEY = "rp.hsm_key"
_TOKEN = "rp.token"


def key_identifier(public_template: bytes) -> bytes:
    """RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the EC point."""
    point = tlv.Tlv.from_bytes(public_template).find(0x86)
    if point is None:
        raise ValueError("not an EC public key template")
    return hashlib.sha256(point.value).digest()[:20]


def signed_url_data(card_public: bytes, url: bytes) -> bytes:
    """What the HSM signs (ST20): the card's `7F49` template, then `5F50 URL`."""
    return card_public + tlv.build(TAG_URL, url)


class RepositoryCardApplet(SmApplet):
    """Seed 002's repository card (see the module docstring)."""

    multiselectable = True

    bio_aid = persistent(DEFAULT_BIO_AID)
    #: root public key template (7F49) certifying the card and its peers
    root = persistent(None)
    card_certificate = persistent(None)
    #: (private scalar, 7F49[, True when a seeded RNG drew it]) of key 81, of the issued key 01,
    #: of the session key 02
    auth_key = persistent(None)
    issued_key = persistent(None)
    session_key = persistent(None)
    #: the copy of the holder's template that issuance sends to the HSM (erased once issued)
    template = persistent(None)
    url = persistent(None)
    url_signature = persistent(None)
    hsm_key = persistent(None)
    #: RAM only: (the stored session-key record, its key built from it); see `_signing_key`
    session_signer = transient(None, CLEAR_ON_DESELECT)

    # -- dispatch ------------------------------------------------------------------

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        if apdu.cla & 0x80:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        ins = apdu.ins
        if ins == INS_GET_DATA:
            return self._get_data(apdu, protected)
        if ins == INS_PUT_DATA:
            self._put_data(apdu, protected)
            return None
        if ins == INS_GENERATE:
            return self._generate(apdu, protected)
        if ins == INS_PSO:
            return self._pso(apdu, protected)
        if ins == INS_GET_CHALLENGE:
            return self.get_challenge(apdu)
        if ins == INS_GENERAL_AUTHENTICATE:
            return self._open_sm(apdu, protected)
        if ins == 0xA4:
            raise CardError(SW.FILE_NOT_FOUND)
        raise CardError(SW.INS_NOT_SUPPORTED)

    # -- conditions -------------------------------------------------------------------

    def _holder_verified(self) -> bool:
        iface = self.system.get_shareable(self.bio_aid)
        return bool(iface is not None and iface.is_validated())

    def _require_holder(self) -> None:
        if not self._holder_verified():
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)

    def _require_peer(self, protected: bool, role: bytes) -> None:
        if not protected or self.system.channel_state.get(_PEER_ROLE) != role:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)

    @property
    def issued(self) -> bool:
        return self.url is not None

    @staticmethod
    def _key(record: tuple[Any, ...]) -> EcKeyPair:
        """The key of a stored (d, 7F49[, seeded]) record; a two-item record is not seeded.

        Only a key the card drew from a seeded RNG goes into the process-wide EC memo.
        """
        seeded = len(record) > 2 and record[2] is True
        return EcKeyPair.from_private_value(P256, record[0], deterministic=True, seeded=seeded)

    # -- GET DATA ---------------------------------------------------------------------

    def _get_data(self, apdu: APDU, protected: bool) -> bytes:
        if apdu.data:
            raise CardError(SW.WRONG_LENGTH)
        tag = apdu.p1p2
        if tag == TAG_TEMPLATE:  # ST12
            self._require_peer(protected, ROLE_HSM)
            if self.issued or self.template is None:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            return bytes(self.template)
        if tag == TAG_URL:  # ST35
            self._require_holder()
            if not self.issued or self.issued_key is None:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            return (
                tlv.build(TAG_URL, self.url)
                + self.issued_key[1]
                + tlv.build(TAG_SIGNATURE, self.url_signature)
                + tlv.build(TAG_KEY_ID, key_identifier(self.hsm_key))
            )
        if tag == TAG_TOKEN:  # ST60
            self._require_holder()
            return tlv.build(TAG_TOKEN, self._take_token())
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)

    def _take_token(self) -> bytes:
        # The token came in on the repository's SM channel; the terminal reads it on its
        # own channel. Released once: it is gone from the card after this answer.
        for state in self._ctx.channel_states.values():
            token = state.pop(_TOKEN, None)
            if token is not None:
                return bytes(token)
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)

    # -- PUT DATA ---------------------------------------------------------------------

    def _put_data(self, apdu: APDU, protected: bool) -> None:
        if apdu.p1p2 != 0x3FFF:
            raise CardError(SW.INCORRECT_P1P2)
        try:
            objs = {o.tag: o for o in tlv.parse(apdu.data, allow_padding=False)}
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        if not objs:
            raise CardError(SW.WRONG_DATA)
        if not protected:
            self._personalise(objs)
            return None
        role = self.system.channel_state.get(_PEER_ROLE)
        if role == ROLE_HSM and set(objs) == {TAG_PUBLIC_KEY}:
            self._receive_hsm_key(objs[TAG_PUBLIC_KEY].to_bytes())
        elif role == ROLE_HSM and set(objs) == {TAG_URL, TAG_SIGNATURE}:
            self._store_url(objs[TAG_URL].value, objs[TAG_SIGNATURE].value)
        elif role == ROLE_REPOSITORY and set(objs) == {TAG_TOKEN}:
            self._receive_token(objs[TAG_TOKEN].value)
        elif role in (ROLE_HSM, ROLE_REPOSITORY):
            raise CardError(SW.WRONG_DATA)
        else:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return None

    def _personalise(self, objs: dict[int, tlv.Tlv]) -> None:
        if self.root is not None:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)  # personalised once
        if not {TAG_PUBLIC_KEY, TAG_CVC, TAG_TEMPLATE} <= set(objs) or set(objs) - {
            TAG_PUBLIC_KEY,
            TAG_CVC,
            TAG_TEMPLATE,
            TAG_AID,
        }:
            raise CardError(SW.WRONG_DATA)
        if self.auth_key is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        try:
            root = parse_public_key_template(objs[TAG_PUBLIC_KEY].to_bytes())
            cvc = Cvc.from_bytes(objs[TAG_CVC].to_bytes())
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        if not cvc.verify(root) or public_key_template(cvc.public) != self.auth_key[1]:
            raise CardError(SW.WRONG_DATA)
        aid = objs.get(TAG_AID)
        if aid is not None and not 5 <= len(aid.value) <= 16:
            raise CardError(SW.WRONG_DATA)
        with self.system.transaction():
            if aid is not None:
                self.bio_aid = aid.value
            self.template = objs[TAG_TEMPLATE].to_bytes()
            self.card_certificate = objs[TAG_CVC].to_bytes()
            self.root = public_key_template(root)

    def _receive_hsm_key(self, template: bytes) -> None:
        if self.issued:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        try:
            key = parse_public_key_template(template)
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        self.system.channel_state[_HSM_KEY] = public_key_template(key)

    def _store_url(self, url: bytes, signature: bytes) -> None:
        hsm = self.system.channel_state.get(_HSM_KEY)
        if self.issued or hsm is None or self.issued_key is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if not url or len(url) > MAX_URL:
            raise CardError(SW.WRONG_DATA)
        data = signed_url_data(self.issued_key[1], url)
        if not ec_verify(parse_public_key_template(hsm), data, signature):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        with self.system.transaction():  # ST22: all of it, or none
            self.url = bytes(url)
            self.url_signature = bytes(signature)
            self.hsm_key = hsm
            self.template = None

    def _receive_token(self, token: bytes) -> None:
        if not self.issued:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if not 8 <= len(token) <= MAX_TOKEN:
            raise CardError(SW.WRONG_DATA)
        self.system.channel_state[_TOKEN] = bytes(token)

    # -- GENERATE ASYMMETRIC KEY PAIR -----------------------------------------------

    def _generate(self, apdu: APDU, protected: bool) -> bytes:
        if apdu.p1 not in (0x00, 0x80):
            raise CardError(SW.INCORRECT_P1P2)
        if apdu.data:
            try:
                crt = tlv.Tlv.from_bytes(apdu.data, allow_padding=False)
                alg = crt.find(TAG_ALGORITHM) if crt.tag == TAG_CRT else None
            except (tlv.TlvError, ValueError):
                raise CardError(SW.WRONG_DATA) from None
            if alg is None or alg.value != bytes((ALG_P256,)):
                raise CardError(SW.FUNCTION_NOT_SUPPORTED)
        ref = apdu.p2
        if ref == CARD_AUTH_KEY:
            if protected or self.root is not None:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            record = self._new_key()
            self.auth_key = record
            return record[1]
        if ref == ISSUED_KEY:  # ST17-ST19
            self._require_peer(protected, ROLE_HSM)
            if self.issued or _HSM_KEY not in self.system.channel_state:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            record = self._new_key()
            self.issued_key = record
        elif ref == SESSION_KEY:  # ST43-ST45
            self._require_peer(protected, ROLE_REPOSITORY)
            self._require_holder()
            if not self.issued:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            record = self._new_key()
            self.session_key = record
            self.session_signer = None  # the old key leaves RAM with its record
        else:
            raise CardError(SW.INCORRECT_P1P2)
        return record[1] + tlv.build(TAG_KEY_ID, key_identifier(record[1]))

    def _new_key(self) -> tuple[Any, ...]:
        # One persistent tuple, one atomic write: a tear leaves the old key or the new one.
        rng = self.system.rng
        key = EcKeyPair.generate(P256, rng)
        record = (key.private_bytes(), public_key_template(key.public))
        return (*record, True) if rng.seeded else record

    # -- PSO ------------------------------------------------------------------------

    def _pso(self, apdu: APDU, protected: bool) -> bytes | None:
        if apdu.p1p2 == 0x00BE:
            self._verify_certificate(apdu, protected)
            return None
        if apdu.p1p2 != 0x9E9A:
            raise CardError(SW.INCORRECT_P1P2)
        self._require_peer(protected, ROLE_REPOSITORY)  # ST55
        self._require_holder()
        record = self.session_key
        if record is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if not apdu.data:
            raise CardError(SW.WRONG_LENGTH)
        key = self._signing_key(record)
        return ec_sign(key.cryptography_key, key.curve, apdu.data)

    def _signing_key(self, record: tuple[Any, ...]) -> EcKeyPair:
        """The session key of the stored `record`, built once and kept in RAM.

        Building the key from its scalar costs about as much as the signature
        (d x G: ~50 us for a key from OS randomness), and a repository may have
        many credentials signed in one session (ST55). The key is kept in a
        transient field (CLEAR_ON_DESELECT: gone when the applet is deselected on
        every channel, and at reset or power loss, as Java Card's transient key
        objects) beside the very record object it was built from: persistent values
        are immutable, so a new key (a new record) or a deleted one no longer is
        that object, and the key is built again or refused; a rollback that brings
        an old record back brings back an object the cache does not hold either.
        """
        cached = self.session_signer
        if cached is not None and cached[0] is record:
            key: EcKeyPair = cached[1]
            return key
        key = self._key(record)
        self.session_signer = (record, key)
        return key

    # -- secure messaging set-up (card.sm.auth) -----------------------------------

    def _verify_certificate(self, apdu: APDU, protected: bool) -> None:
        root = self.root
        state = self.system.channel_state
        state.pop(_PEER_KEY, None)
        state.pop(_PEER_ROLE, None)
        if root is None or protected:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        try:
            cvc = Cvc.from_bytes(apdu.data)
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        if not cvc.verify(parse_public_key_template(root)):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        role = next((r for r in (ROLE_HSM, ROLE_REPOSITORY) if cvc.chr.startswith(r)), None)
        if role is None:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        state[_PEER_KEY] = (public_key_template(cvc.public), role)
        return None

    def _open_sm(self, apdu: APDU, protected: bool) -> bytes:
        if apdu.p1p2 != 0x0000:
            raise CardError(SW.INCORRECT_P1P2)
        state = self.system.channel_state
        peer: Any = state.pop(_PEER_KEY, None)
        r_card = self.take_challenge()
        record, cert = self.auth_key, self.card_certificate
        if protected or peer is None or r_card is None or record is None or cert is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        terminal, role = peer
        try:
            result = card_authenticate(
                apdu.data,
                terminal=parse_public_key_template(terminal),
                r_card=r_card,
                card_key=self._key(record),
                card_certificate=cert,
                rng=self.system.rng,
            )
        except AuthError:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        state.pop(_HSM_KEY, None)
        state.pop(_TOKEN, None)
        state[_PEER_ROLE] = role
        self.start_sm(result.session)
        return result.response
