"""Key pairs generated and used inside the card (ISO/IEC 7816-8), under PIN, biometry and SM.

Commands (CLA 00, or 0C under secure messaging once a session runs):

- `00 20 00 81 [PIN]` VERIFY (ISO/IEC 7816-4 §11.5.6): the applet PIN (OwnerPIN,
  3 tries, decremented before the comparison). No data: 9000 or 63Cx.
- `00 47 P1 P2 [AC { 80 algorithm [, C1 policy] }]` GENERATE ASYMMETRIC KEY PAIR
  (ISO/IEC 7816-8 §5.1): P1 00 or 80 generates into key reference P2 (01-10, or
  81 the card authentication key of secure messaging), P1 81 reads a public key
  back. Algorithms (NIST SP 800-78-4 Table 6-2): 07 RSA-2048, 05 RSA-3072,
  11 P-256, 14 P-384; B1 brainpoolP256r1, B2 brainpoolP384r1 (proprietary).
  The answer: `7F49 { 81 n, 82 e }` or `7F49 { 06 curve OID, 86 point }`, then
  `C0` the key identifier (RFC 7093 method 1, 20 bytes) and `C1` the key's
  usage counter (4 bytes). Generating needs the holder verified (PIN or
  finger); the new key replaces the old one in one transaction, with its
  usage counter at zero, so a tear leaves either key whole.
  Policy (C1): b1 PIN, b2 biometric verification (either satisfies it when
  both are set), b5 secure messaging required; default 01.
- `00 22 41 B6|B8|A6 { 84 key reference }` MANAGE SECURITY ENVIRONMENT SET
  (ISO/IEC 7816-4 §11.5.11): the key for signing (DST), deciphering (CT) or key
  agreement (KAT) on this channel. Key 81 is refused (6985): it signs only the
  card's own secure messaging set-up.
- `00 2A 9E 9A <hash>` PSO COMPUTE DIGITAL SIGNATURE (ISO/IEC 7816-8 §5.4): the
  hash (32, 48 or 64 bytes: SHA-256/384/512) signed with the DST key, ECDSA
  plain r || s (BSI TR-03111 §5.2.1) or RSASSA-PKCS1-v1_5.
- `00 2A 80 86 00 <cryptogram>` PSO DECIPHER (ISO/IEC 7816-8 §5.9): RSAES-OAEP
  (SHA-256) with the CT key; a cryptogram that does not decrypt answers 6300
  (the use is counted, so the status word says NVM changed).
- `00 86 00 P2 7C { 85 point }` GENERAL AUTHENTICATE (ISO/IEC 7816-4 §11.5.5),
  key agreement: ECDH with key P2 (or the KAT key when P2 = 00), answering
  `7C { 82 shared secret }`.
- Each use of a key counts one in its usage counter, written before the
  operation (as OwnerPIN's try counter), so no tear yields an uncounted use.
- `00 DB 3F FF { 7F49 root key | 7F21 card certificate }` PUT DATA:
  personalisation of secure messaging (holder verified, before the root is set;
  the certificate must certify key 81 and verify under the root).
- Secure messaging (`card.sm.auth`): `00 2A 00 BE <7F21>` PSO VERIFY CERTIFICATE
  of the terminal, `00 84 00 00 08` GET CHALLENGE, `00 86 00 00 7C { 80, 81 }`
  GENERAL AUTHENTICATE; from the next command on, every command must be
  protected (`card.sm.applet.SmApplet`).

Install parameters: optional `81 PIN` (default 123456) and `82 AID` of the
biometric applet to ask (default the built-in match-on-card applet's AID; the
applet is reached through `SharedBioTemplate`, never imported).

No command answers with a private key part; the records stay in the applet's
persistent segment.
"""

from __future__ import annotations

from typing import Any

from card import tlv
from card.crypto.keypairs import ALGORITHMS, KeyRecord, generate, key_identifier
from card.crypto.keys import EcPublicKey
from card.framework import APDU, SW, CardError, OwnerPIN, persistent
from card.sm.applet import SmApplet
from card.sm.auth import AuthError, card_authenticate
from card.sm.cvc import Cvc, parse_public_key_template, public_key_template
from card.sw import sw_retries

KEYPAIR_AID = bytes.fromhex("F043415244454D554B50")
#: The built-in match-on-card applet (applets.biometric.BIO_AID), named here, not imported.
DEFAULT_BIO_AID = bytes.fromhex("F043415244454D55B1")
DEFAULT_PIN = b"123456"

PIN_REFERENCE = 0x81
CARD_AUTH_KEY = 0x81
USER_KEYS = range(0x01, 0x11)

POLICY_PIN = 0x01
POLICY_BIO = 0x02
POLICY_SM = 0x10
DEFAULT_POLICY = POLICY_PIN

INS_VERIFY = 0x20
INS_MSE = 0x22
INS_PSO = 0x2A
INS_GENERATE = 0x47
INS_GET_CHALLENGE = 0x84
INS_GENERAL_AUTHENTICATE = 0x86
INS_PUT_DATA = 0xDB

TAG_CRT = 0xAC
TAG_ALGORITHM = 0x80
TAG_POLICY = 0xC1
TAG_KEY_ID = 0xC0
TAG_COUNTER = 0xC1
TAG_KEY_REF = 0x84
TAG_DYNAMIC = 0x7C

_SE = "kp.se"
_TERMINAL = "kp.terminal"


def _key_name(ref: int) -> str:
    return f"key.{ref:02X}"


def _counter_name(ref: int) -> str:
    return f"use.{ref:02X}"


class KeyPairApplet(SmApplet):
    """ISO/IEC 7816-8 key pair generation and use (see the module docstring)."""

    multiselectable = True

    pin = OwnerPIN.field(try_limit=3, max_length=8)
    bio_aid = persistent(DEFAULT_BIO_AID)
    #: the root public key template (7F49) that certifies card and terminals
    root = persistent(None)
    #: the CV certificate of key 81
    card_certificate = persistent(None)

    def on_install(self, params: bytes) -> None:
        pin = DEFAULT_PIN
        if params:
            try:
                objs = {o.tag: o.value for o in tlv.parse(params)}
            except (tlv.TlvError, ValueError):
                raise CardError(SW.WRONG_DATA) from None
            pin = objs.get(0x81, pin)
            if 0x82 in objs:
                self.bio_aid = objs[0x82]
        self.pin.update(pin)

    def deselect(self) -> None:
        self.pin.reset()

    # -- dispatch ------------------------------------------------------------------

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        ins = apdu.ins
        if apdu.cla & 0x80:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        if ins == INS_VERIFY:
            self._verify(apdu)
            return None
        if ins == INS_GENERATE:
            return self._generate(apdu, protected)
        if ins == INS_MSE:
            self._mse(apdu)
            return None
        if ins == INS_PSO:
            return self._pso(apdu, protected)
        if ins == INS_GENERAL_AUTHENTICATE:
            return self._general_authenticate(apdu, protected)
        if ins == INS_GET_CHALLENGE:
            return self.get_challenge(apdu)
        if ins == INS_PUT_DATA:
            self._put_data(apdu)
            return None
        if ins == 0xA4:
            raise CardError(SW.FILE_NOT_FOUND)
        raise CardError(SW.INS_NOT_SUPPORTED)

    # -- holder verification ---------------------------------------------------------

    def _verify(self, apdu: APDU) -> None:
        if apdu.p1 != 0x00 or apdu.p2 != PIN_REFERENCE:
            raise CardError(SW.INCORRECT_P1P2 if apdu.p1 else SW.REFERENCED_DATA_NOT_FOUND)
        pin = self.pin
        if not apdu.data:
            if pin.is_validated():
                return None
            tries = pin.tries_remaining
            raise CardError(SW.AUTH_METHOD_BLOCKED if tries == 0 else sw_retries(tries))
        if pin.blocked:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if not pin.check(apdu.data):
            raise CardError(sw_retries(pin.tries_remaining))
        return None

    def _bio_validated(self) -> bool:
        iface = self.system.get_shareable(self.bio_aid)
        return bool(iface is not None and iface.is_validated())

    def _holder_verified(self, policy: int) -> bool:
        if policy & POLICY_PIN and self.pin.is_validated():
            return True
        return bool(policy & POLICY_BIO and self._bio_validated())

    def _authorise(self, record: KeyRecord, protected: bool) -> None:
        if record.policy & POLICY_SM and not protected:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if not self._holder_verified(record.policy):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)

    # -- key records -------------------------------------------------------------------

    def _record(self, ref: int) -> KeyRecord | None:
        value = self.system.store.get(_key_name(ref))
        if value is None:
            return None
        cache: dict[tuple[bytes, ...], Any] | None = self.__dict__.get("_key_cache")
        if cache is None:
            cache = {}
            self._key_cache = cache
        return KeyRecord.from_value(value, cache)

    def _record_or_fail(self, ref: int | None) -> KeyRecord:
        if ref is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        record = self._record(ref)
        if record is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        return record

    def _count_use(self, ref: int) -> None:
        store = self.system.store
        store.set(_counter_name(ref), (store.get(_counter_name(ref)) or 0) + 1)

    def _public_answer(self, ref: int, record: KeyRecord) -> bytes:
        count = self.system.store.get(_counter_name(ref)) or 0
        return (
            record.public
            + tlv.build(TAG_KEY_ID, key_identifier(record.public))
            + tlv.build(TAG_COUNTER, count.to_bytes(4, "big"))
        )

    # -- GENERATE ASYMMETRIC KEY PAIR ----------------------------------------------------

    def _generate(self, apdu: APDU, protected: bool) -> bytes:
        ref = apdu.p2
        if ref not in USER_KEYS and ref != CARD_AUTH_KEY:
            raise CardError(SW.INCORRECT_P1P2)
        if apdu.p1 == 0x81:
            if apdu.data:
                raise CardError(SW.WRONG_LENGTH)
            return self._public_answer(ref, self._record_or_fail(ref))
        if apdu.p1 not in (0x00, 0x80):
            raise CardError(SW.INCORRECT_P1P2)
        algorithm, policy = self._parse_crt(apdu.data)
        if not self._holder_verified(POLICY_PIN | POLICY_BIO):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        old = self._record(ref)
        if old is not None and old.policy & POLICY_SM and not protected:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if ref == CARD_AUTH_KEY and (self.root is not None or not algorithm.is_ec):
            # The certified key cannot change under its certificate; it must be EC.
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        record = generate(algorithm, self.system.rng, policy)
        with self.system.transaction():
            self.system.store.set(_key_name(ref), record.to_value())
            self.system.store.set(_counter_name(ref), 0)
        return self._public_answer(ref, record)

    @staticmethod
    def _parse_crt(data: bytes) -> tuple[Any, int]:
        try:
            crt = tlv.Tlv.from_bytes(data, allow_padding=False)
            if crt.tag != TAG_CRT:
                raise ValueError("not AC")
            alg = crt.find(TAG_ALGORITHM)
            pol = crt.find(TAG_POLICY)
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        if alg is None or len(alg.value) != 1:
            raise CardError(SW.WRONG_DATA)
        algorithm = ALGORITHMS.get(alg.value[0])
        if algorithm is None:
            raise CardError(SW.FUNCTION_NOT_SUPPORTED)
        policy = DEFAULT_POLICY
        if pol is not None:
            if len(pol.value) != 1 or pol.value[0] & ~(POLICY_PIN | POLICY_BIO | POLICY_SM):
                raise CardError(SW.WRONG_DATA)
            policy = pol.value[0]
            if not policy & (POLICY_PIN | POLICY_BIO):
                raise CardError(SW.WRONG_DATA)  # a key nobody has to be verified for
        return algorithm, policy

    # -- MANAGE SECURITY ENVIRONMENT --------------------------------------------------

    def _mse(self, apdu: APDU) -> None:
        if apdu.p1 != 0x41 or apdu.p2 not in (0xB6, 0xB8, 0xA6):
            raise CardError(SW.INCORRECT_P1P2)
        try:
            ref_obj = tlv.find(apdu.data, TAG_KEY_REF, allow_padding=False)
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        if ref_obj is None or len(ref_obj.value) != 1:
            raise CardError(SW.WRONG_DATA)
        ref = ref_obj.value[0]
        if ref == CARD_AUTH_KEY:
            # The card authentication key signs only the card's own SM set-up answers: a
            # signature on any hash would let a holder of the PIN forge them.
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if self._record(ref) is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        se = dict(self.system.channel_state.get(_SE, {}))
        se[apdu.p2] = ref
        self.system.channel_state[_SE] = se
        return None

    def _se_key(self, crt: int) -> int | None:
        return self.system.channel_state.get(_SE, {}).get(crt)

    # -- PERFORM SECURITY OPERATION ----------------------------------------------------

    def _pso(self, apdu: APDU, protected: bool) -> bytes | None:
        p1p2 = apdu.p1p2
        if p1p2 == 0x00BE:
            self._verify_certificate(apdu)
            return None
        if p1p2 == 0x9E9A:
            ref = self._se_key(0xB6)
            record = self._record_or_fail(ref)
            self._authorise(record, protected)
            if len(apdu.data) not in (32, 48, 64):
                raise CardError(SW.WRONG_LENGTH)
            assert ref is not None
            self._count_use(ref)
            return record.sign_digest(apdu.data)
        if p1p2 == 0x8086:
            ref = self._se_key(0xB8)
            record = self._record_or_fail(ref)
            if record.alg.is_ec:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            self._authorise(record, protected)
            if len(apdu.data) < 2 or apdu.data[0] != 0x00:
                raise CardError(SW.WRONG_DATA)
            if len(apdu.data) - 1 != record.alg.rsa_bits // 8:
                raise CardError(SW.WRONG_LENGTH)
            assert ref is not None
            self._count_use(ref)
            try:
                return record.decipher(apdu.data[1:])
            except ValueError:
                # The use is counted (a failed decryption is a use of the key): 6300,
                # "NVM changed, verification failed" (ISO/IEC 7816-4 §5.6 Table 6).
                raise CardError(SW.WARNING_NVM_CHANGED) from None
        raise CardError(SW.INCORRECT_P1P2)

    # -- GENERAL AUTHENTICATE: key agreement, or the SM mutual authentication ---------

    def _general_authenticate(self, apdu: APDU, protected: bool) -> bytes:
        try:
            template = tlv.Tlv.from_bytes(apdu.data, allow_padding=False)
            if template.tag != TAG_DYNAMIC:
                raise ValueError("not 7C")
            peer = template.find(0x85)
            sm_auth = template.find(0x80)
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        if apdu.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        if peer is not None:
            ref = apdu.p2 or self._se_key(0xA6)
            if ref == CARD_AUTH_KEY:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            record = self._record_or_fail(ref)
            if not record.alg.is_ec:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            self._authorise(record, protected)
            curve = record.alg.curve
            assert ref is not None and curve is not None
            try:
                EcPublicKey.from_point(curve, peer.value)  # a bad point costs no use
            except ValueError:
                raise CardError(SW.WRONG_DATA) from None
            self._count_use(ref)
            return tlv.build(TAG_DYNAMIC, [(0x82, record.agree(peer.value))])
        if sm_auth is not None and apdu.p2 == 0x00:
            return self._open_sm(apdu.data, protected)
        raise CardError(SW.WRONG_DATA)

    def _open_sm(self, data: bytes, protected: bool) -> bytes:
        state = self.system.channel_state
        terminal = state.pop(_TERMINAL, None)
        r_card = self.take_challenge()
        record = self._record(CARD_AUTH_KEY)
        cert = self.card_certificate
        if protected or terminal is None or r_card is None or record is None or cert is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        card_key = record.ec_key()
        try:
            result = card_authenticate(
                data,
                terminal=parse_public_key_template(terminal),
                r_card=r_card,
                card_key=card_key,
                card_certificate=cert,
                rng=self.system.rng,
            )
        except AuthError:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        self.start_sm(result.session)
        return result.response

    def _verify_certificate(self, apdu: APDU) -> None:
        root = self.root
        if root is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        state = self.system.channel_state
        state.pop(_TERMINAL, None)
        try:
            cvc = Cvc.from_bytes(apdu.data)
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        if not cvc.verify(parse_public_key_template(root)):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        state[_TERMINAL] = public_key_template(cvc.public)
        return None

    # -- PUT DATA: personalisation of secure messaging ------------------------------------

    def _put_data(self, apdu: APDU) -> None:
        if apdu.p1p2 != 0x3FFF:
            raise CardError(SW.INCORRECT_P1P2)
        if not self._holder_verified(POLICY_PIN):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        try:
            objs = tlv.parse(apdu.data, allow_padding=False)
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        root = next((o.to_bytes() for o in objs if o.tag == 0x7F49), None)
        cert = next((o.to_bytes() for o in objs if o.tag == 0x7F21), None)
        if not objs or root is None and cert is None or len(objs) > 2:
            raise CardError(SW.WRONG_DATA)
        if self.root is not None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # personalised once
        card_key = self._record(CARD_AUTH_KEY)
        if root is None or cert is None or card_key is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        try:
            root_key = parse_public_key_template(root)
            cvc = Cvc.from_bytes(cert)
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        if not cvc.verify(root_key) or parse_public_key_template(card_key.public) != cvc.public:
            raise CardError(SW.WRONG_DATA)
        with self.system.transaction():
            self.card_certificate = cert
            self.root = root
        return None
