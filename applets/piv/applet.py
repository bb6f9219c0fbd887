"""The PIV Card Application (NIST SP 800-73-4 Parts 1 and 2, SP 800-78-4 algorithms).

Commands (SP 800-73-4 Part 2 §3):

- SELECT `00 A4 04 00 A0000003080000100001 00` (or the truncated `A000000308`):
  the application property template `61 { 4F PIX, 79 { 4F RID }, 50, AC }` (§3.1.1).
- GET DATA `00 CB 3F FF 5C {tag}` (§3.1.2): a container as it was put; printed
  information, biometrics and the pairing code need the PIN (or OCC); an empty
  container answers 6A82.
- VERIFY `00 20 00|FF 80 [8 bytes]` (§3.2.1): the PIN, 6-8 digits padded with FF.
  No data: 9000 when verified, else 63Cx; P1 FF resets the verification. OwnerPIN,
  3 tries, decremented before the comparison. P2 96/97 (on-card comparison): the
  match-on-card applet named at install compares the `7F2E` template through
  `SharedBioTemplate.match`, and its verification satisfies the PIN's access rules
  (the discovery object says so); GET DATA 7F61 answers its BIT group.
- CHANGE REFERENCE DATA `00 24 00 80|81 old‖new` (§3.2.2): PIN or PUK.
- RESET RETRY COUNTER `00 2C 00 80 PUK‖new PIN` (§3.2.3).
- GENERAL AUTHENTICATE `00 87 alg key 7C {…}` (§3.2.4): with the card
  management key (9B) the mutual (`80 00`, then `80 witness 81 challenge`) and
  external (`81 00`, then `82 response`) authentications, 3DES (03, or 00) or
  AES-128/192/256 (08/0A/0C); with a slot key (9A, 9C, 9D, 9E, 82-95) a
  signature or RSA decipherment (`82 00, 81 input`: the RSA private operation on
  the client's padded block, or ECDSA on the field-size hash, DER-encoded), or
  ECDH (`82 00, 85 point`).
- GENERATE ASYMMETRIC KEY PAIR `00 47 00 key AC { 80 alg }` (§3.3.2): RSA-2048
  (07), RSA-3072 (05), P-256 (11), P-384 (14), from the card RNG, after the
  management key; answers `7F49 { 81 n, 82 e }` or `7F49 { 86 point }`.
- PUT DATA `00 DB 3F FF 5C {tag} 53 {…}` (or `7E {…}`, `7F61 {…}`) (§3.3.1),
  after the management key.
- Secure messaging (Part 2 §4, `card.sm.piv`): GENERAL AUTHENTICATE `00 87 27 04
  7C { 81 CB_H‖ID_sH‖Q_eH, 82 }` establishes the session keys with the card's
  secure messaging key 04 (cipher suite CS2, or CS7 when installed so) and answers
  `7C { 82 CB_ICC‖N_ICC‖AuthCryptogram‖CVC }`; every later command on the channel
  comes under SM, and every answer goes back protected (DO99 carries its status).
  The CVC is signed by the SM certificate signer whose X.509 certificate is the
  object 5FC122. VERIFY `00 20 00 98` takes the pairing code (object 5FC123) under
  SM only: the virtual contact interface's step (Part 2 §4.4). SELECT lists the
  suite in `AC`; the discovery object says VCI is implemented.
- Yubico's SET MANAGEMENT KEY `00 FF FF FF|FE { alg 9B len key }`: not part of
  SP 800-73 (which leaves changing the management key to the issuer), answered as
  Yubico's PIV applet does so that `yubico-piv-tool -a set-mgm-key` works; the
  touch policy (P2 FE) is refused, there is no button.

Key access rules (Part 1 §3.5): 9A, 9D and 82-95 need the PIN (or OCC); 9C needs it
verified just before each use ("PIN always"); 9E none. Defaults (documented in the
README; SP 800-73 names none): PIN 123456, PUK 12345678, management key 3DES
010203040506070801020304050607080102030405060708, the value every PIV middleware
and YubiKey before firmware 5.7 ship with.

No command answers with a private key part; the key records stay in the applet's
persistent segment (`card.crypto.keypairs`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from applets.piv import objects
from card import tlv
from card.crypto.keypairs import ALGORITHMS, Algorithm, KeyRecord, generate
from card.crypto.keys import EcKeyPair, TripleDES
from card.framework import APDU, SW, CardError, OwnerPIN, persistent
from card.sm import piv as pivsm
from card.sm.applet import SmApplet
from card.sw import sw_retries

__all__ = [
    "PivApplet",
    "DEFAULT_PIN",
    "DEFAULT_PUK",
    "DEFAULT_MGMT_KEY",
    "MGMT_ALGORITHMS",
]

DEFAULT_PIN = b"123456"
DEFAULT_PUK = b"12345678"
DEFAULT_MGMT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

#: SP 800-78-4 Table 6-2: the card management key's algorithms, with the key size.
MGMT_ALGORITHMS: dict[int, tuple[str, int]] = {
    0x03: ("DES3", 24),
    0x08: ("AES", 16),
    0x0A: ("AES", 24),
    0x0C: ("AES", 32),
}
#: The asymmetric algorithms PIV generates (SP 800-78-4 Table 6-2; 05 is SP 800-78-5's).
PIV_KEY_ALGORITHMS = (0x07, 0x05, 0x11, 0x14)

KEY_PIN = 0x80
KEY_PUK = 0x81
KEY_OCC = (0x96, 0x97)
KEY_MGMT = 0x9B
KEY_PIV_AUTH = 0x9A
KEY_SIGNATURE = 0x9C
KEY_MANAGEMENT = 0x9D
KEY_CARD_AUTH = 0x9E
KEY_SM = pivsm.KEY_SM
KEY_PAIRING = 0x98
RETIRED_KEYS = range(0x82, 0x96)
SLOT_KEYS = frozenset({0x9A, 0x9C, 0x9D, 0x9E, *RETIRED_KEYS})

#: access rule of a slot key, stored as the record's policy
RULE_NONE = 0x00
RULE_PIN = 0x01
RULE_PIN_ALWAYS = 0x02

INS_VERIFY = 0x20
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_GENERATE = 0x47
INS_GENERAL_AUTHENTICATE = 0x87
INS_GET_DATA = 0xCB
INS_PUT_DATA = 0xDB
INS_YK_SET_MGMT_KEY = 0xFF

TAG_DYNAMIC = 0x7C
TAG_WITNESS = 0x80
TAG_CHALLENGE = 0x81
TAG_RESPONSE = 0x82
TAG_EXPONENTIATION = 0x85

#: the largest container PUT DATA takes (a certificate with room to spare)
MAX_OBJECT = 4096

_SM_CVC = "sm.cvc"
_VCI = "piv.vci"
_MGMT_OK = "piv.mgmt"
_MGMT_PENDING = "piv.mgmt.pending"


def _key_name(ref: int) -> str:
    return f"key.{ref:02X}"


def _object_name(tag: int) -> str:
    return f"do.{tag:06X}"


def default_rule(ref: int) -> int:
    """The access rule of a key reference (SP 800-73-4 Part 1 §3.5, Table 4b)."""
    if ref == KEY_CARD_AUTH:
        return RULE_NONE
    if ref == KEY_SIGNATURE:
        return RULE_PIN_ALWAYS
    return RULE_PIN


def valid_pin(value: bytes) -> bool:
    """A PIN reference value: 6-8 ASCII digits padded with FF to 8 bytes (Part 2 §2.4.3)."""
    if len(value) != 8:
        return False
    digits = value.rstrip(b"\xff")
    return 6 <= len(digits) <= 8 and all(0x30 <= b <= 0x39 for b in digits)


def pad_pin(pin: bytes) -> bytes:
    """A PIN padded with FF to 8 bytes."""
    return pin + b"\xff" * (8 - len(pin))


def _block_cipher(algorithm: int, key: bytes) -> Cipher[modes.ECB]:
    kind, _size = MGMT_ALGORITHMS[algorithm]
    if kind == "AES":
        return Cipher(algorithms.AES(key), modes.ECB())
    return Cipher(TripleDES(key), modes.ECB())


def _block_size(algorithm: int) -> int:
    return 16 if MGMT_ALGORITHMS[algorithm][0] == "AES" else 8


class PivApplet(SmApplet):
    """The PIV Card Application (see the module docstring)."""

    multiselectable = True

    pin = OwnerPIN.field(try_limit=3, max_length=8)
    puk = OwnerPIN.field(try_limit=3, max_length=8)
    #: (algorithm, key) of the card management key 9B
    mgmt_key = persistent((0x03, DEFAULT_MGMT_KEY))
    #: the match-on-card applet that performs on-card comparison (VERIFY 96/97)
    bio_aid = persistent(None)
    #: the secure messaging cipher suite (27 CS2, 2E CS7; Part 2 Table 14)
    sm_suite = persistent(pivsm.CS2.ident)

    def on_install(self, params: bytes) -> None:
        """Install parameters (all optional): `81` PIN, `82` PUK, `83` alg‖management key,
        `84` AID of the match-on-card applet (its presence sets OCC in the discovery object),
        `85` the SM cipher suite (27 CS2, the default, or 2E CS7).

        The issuer's part of secure messaging is done here too, from the card RNG: the
        SM key 04, an SM certificate signer key with its self-signed certificate (object
        5FC122; a real issuer keeps that key in its HSM), the card's CVC over key 04
        signed by it (subject: the CHUID's GUID), and a random 8-digit pairing code
        (object 5FC123).
        """
        pin, puk, mgmt = DEFAULT_PIN, DEFAULT_PUK, (0x03, DEFAULT_MGMT_KEY)
        if params:
            try:
                objs = {o.tag: o.value for o in tlv.parse(params, allow_padding=False)}
            except (tlv.TlvError, ValueError):
                raise CardError(SW.WRONG_DATA) from None
            pin = objs.get(0x81, pin)
            puk = objs.get(0x82, puk)
            if 0x83 in objs:
                value = objs[0x83]
                if not value or MGMT_ALGORITHMS.get(value[0], ("", -1))[1] != len(value) - 1:
                    raise CardError(SW.WRONG_DATA)
                mgmt = (value[0], value[1:])
            if 0x84 in objs:
                self.bio_aid = objs[0x84]
            if 0x85 in objs:
                value = objs[0x85]
                if len(value) != 1 or value[0] not in pivsm.SUITES:
                    raise CardError(SW.WRONG_DATA)
                self.sm_suite = value[0]
        if not valid_pin(pad_pin(pin)) or len(puk) != 8:
            raise CardError(SW.WRONG_DATA)
        self.pin.update(pad_pin(pin))
        self.puk.update(puk)
        self.mgmt_key = mgmt
        rng = self.system.rng
        store = self.system.store
        # Installation is one transaction already (the runtime's).
        guid = rng.random(16)
        store.set(_object_name(objects.TAG_CHUID), objects.chuid(guid))
        store.set(_object_name(objects.TAG_CCC), objects.ccc(rng.random(14)))
        store.set(
            _object_name(objects.TAG_DISCOVERY),
            objects.discovery(occ=self.bio_aid is not None, vci=True),
        )
        self._personalise_sm(guid)

    def _personalise_sm(self, guid: bytes) -> None:
        """The SM key 04, its CVC, the signer's certificate and the pairing code."""
        suite = pivsm.SUITES[self.sm_suite]
        rng, store = self.system.rng, self.system.store
        record = generate(ALGORITHMS[0x11 if suite is pivsm.CS2 else 0x14], rng, RULE_NONE)
        store.set(_key_name(KEY_SM), record.to_value())
        signer = EcKeyPair.generate(suite.curve, rng)
        serial = int.from_bytes(rng.random(8), "big") >> 1 | 1
        cert = pivsm.signer_certificate(signer, suite, serial, "cardemu PIV SM certificate signer")
        issuer = hashlib.sha256(signer.public.to_point()).digest()[:8]
        cvc = pivsm.build_cvc(
            suite, record.ec_key().public, signer, issuer_id=issuer, subject_id=guid
        )
        store.set(_SM_CVC, cvc)
        store.set(_object_name(objects.TAG_SM_SIGNER), objects.certificate_object(cert))
        code = bytes(0x30 + b % 10 for b in rng.random(8))
        store.set(_object_name(objects.TAG_PAIRING_CODE), objects.pairing_code(code))

    def deselect(self) -> None:
        self.pin.reset()
        self.puk.reset()
        bio = self._bio()
        if bio is not None:
            for ref in KEY_OCC:
                bio.reset_validation(ref)

    def select_response(self, apdu: APDU) -> bytes | None:
        """The application property template (none when P2 asks for no response data)."""
        if apdu.p2 & 0x0C == 0x0C:
            return None
        return objects.application_property_template(
            (*MGMT_ALGORITHMS, *PIV_KEY_ALGORITHMS, self.sm_suite)
        )

    # -- dispatch ----------------------------------------------------------------------

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        if apdu.cla & 0x80:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        handler = _HANDLERS.get(apdu.ins)
        if apdu.ins == 0xA4:
            raise CardError(SW.FILE_NOT_FOUND)  # a SELECT of no applet on this card
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return handler(self, apdu)

    # -- PIN, PUK, OCC -------------------------------------------------------------------

    def _pin_of(self, ref: int) -> OwnerPIN:
        if ref == KEY_PIN:
            return self.pin
        if ref == KEY_PUK:
            return self.puk
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)

    def _bio(self) -> Any:
        aid = self.bio_aid
        return None if aid is None else self.system.get_shareable(aid)

    def _holder_verified(self) -> bool:
        if self.pin.is_validated():
            return True
        bio = self._bio()
        return bool(bio is not None and bio.is_validated())

    def _verify(self, apdu: APDU) -> None:
        """VERIFY (Part 2 §3.2.1)."""
        ref = apdu.p2
        if apdu.p1 not in (0x00, 0xFF):
            raise CardError(SW.INCORRECT_P1P2)
        if ref in KEY_OCC:
            # On-card comparison (SP 800-73-4 Part 2 §3.2.1, SP 800-76-2 §7.4): the
            # match-on-card applet compares the 7F2E template, through the firewall.
            bio = self._bio()
            if bio is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            if apdu.p1 == 0xFF:
                if apdu.data:
                    raise CardError(SW.WRONG_LENGTH)
                bio.reset_validation(ref)
                return None
            sw = bio.match(ref, apdu.data)
            if sw != SW.SUCCESS:
                raise CardError(sw)
            return None
        if ref == KEY_PAIRING:
            return self._verify_pairing_code(apdu)
        if ref != KEY_PIN:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        pin = self.pin
        if apdu.p1 == 0xFF:
            if apdu.data:
                raise CardError(SW.WRONG_LENGTH)
            pin.reset()
            return None
        if not apdu.data:
            if pin.is_validated():
                return None
            tries = pin.tries_remaining
            raise CardError(SW.AUTH_METHOD_BLOCKED if tries == 0 else sw_retries(tries))
        if len(apdu.data) != 8:
            raise CardError(SW.WRONG_DATA)
        if pin.blocked:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if not pin.check(apdu.data):
            raise CardError(sw_retries(pin.tries_remaining))
        return None

    def _verify_pairing_code(self, apdu: APDU) -> None:
        """VERIFY 98, the pairing code (Part 2 §3.2.1, §4.4): under secure messaging only.

        It has no retry counter of its own (Part 1 §2.4.3.1 leaves it to the PIN's
        protection of the container); a wrong code answers 6982 and clears VCI.
        """
        state = self.system.channel_state
        if self.sm_session is None:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.p1 != 0x00 or len(apdu.data) != 8:
            raise CardError(SW.WRONG_DATA if apdu.p1 == 0x00 else SW.INCORRECT_P1P2)
        stored = self.system.store.get(_object_name(objects.TAG_PAIRING_CODE))
        code = objects.pairing_code_value(stored) if stored else None
        if code is None or not hmac.compare_digest(code, bytes(apdu.data)):
            state.pop(_VCI, None)
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        state[_VCI] = True
        return None

    def _change_reference(self, apdu: APDU) -> None:
        """CHANGE REFERENCE DATA (Part 2 §3.2.2): old value ‖ new value, 8 bytes each."""
        if apdu.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        target = self._pin_of(apdu.p2)
        if len(apdu.data) != 16:
            raise CardError(SW.WRONG_DATA)
        old, new = apdu.data[:8], apdu.data[8:]
        if apdu.p2 == KEY_PIN and not valid_pin(new):
            raise CardError(SW.WRONG_DATA)
        if target.blocked:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if not target.check(old):
            raise CardError(sw_retries(target.tries_remaining))
        # One write; as Java Card's OwnerPIN.update, the new value starts unverified
        # (verifying it here would cost a write that a tear could leave as a lost try).
        target.update(new)
        return None

    def _reset_retry(self, apdu: APDU) -> None:
        """RESET RETRY COUNTER (Part 2 §3.2.3): PUK ‖ new PIN unblocks the PIN."""
        if apdu.p1 != 0x00 or apdu.p2 != KEY_PIN:
            raise CardError(SW.INCORRECT_P1P2 if apdu.p1 else SW.REFERENCED_DATA_NOT_FOUND)
        if len(apdu.data) != 16:
            raise CardError(SW.WRONG_DATA)
        puk, new = apdu.data[:8], apdu.data[8:]
        if not valid_pin(new):
            raise CardError(SW.WRONG_DATA)
        if self.puk.blocked:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if not self.puk.check(puk):
            raise CardError(sw_retries(self.puk.tries_remaining))
        self.pin.update(new)
        self.puk.reset()
        return None

    # -- the card management key -----------------------------------------------------------

    def _mgmt_authenticated(self) -> bool:
        return bool(self.system.channel_state.get(_MGMT_OK))

    def _require_mgmt(self) -> None:
        if not self._mgmt_authenticated():
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)

    def _authenticate_mgmt(self, apdu: APDU, items: dict[int, bytes]) -> bytes | None:
        alg, key = self.mgmt_key
        p1 = 0x03 if apdu.p1 == 0x00 else apdu.p1  # 00: 3DES, the old identifier
        if p1 != alg:
            raise CardError(SW.INCORRECT_P1P2)
        size = _block_size(alg)
        state = self.system.channel_state
        pending: tuple[str, bytes] | None = state.pop(_MGMT_PENDING, None)
        state.pop(_MGMT_OK, None)
        cipher = _block_cipher(alg, key)
        witness, challenge, response = (
            items.get(TAG_WITNESS),
            items.get(TAG_CHALLENGE),
            items.get(TAG_RESPONSE),
        )
        if witness == b"" and challenge is None and response is None:
            # Mutual authentication, step 1: the card's witness, encrypted.
            plain = self.system.rng.random(size)
            state[_MGMT_PENDING] = ("witness", plain)
            enc = cipher.encryptor().update(plain)
            return tlv.build(TAG_DYNAMIC, [(TAG_WITNESS, enc)])
        if witness and challenge is not None and response is None:
            # Step 2: the decrypted witness proves the client; the card answers its challenge.
            if len(witness) != size or len(challenge) != size:
                raise CardError(SW.WRONG_DATA)
            if pending is None or pending[0] != "witness":
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            if not hmac.compare_digest(pending[1], witness):
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            state[_MGMT_OK] = True
            return tlv.build(TAG_DYNAMIC, [(TAG_RESPONSE, cipher.encryptor().update(challenge))])
        if challenge == b"" and witness is None and response is None:
            # External authentication, step 1: a plain challenge.
            plain = self.system.rng.random(size)
            state[_MGMT_PENDING] = ("challenge", plain)
            return tlv.build(TAG_DYNAMIC, [(TAG_CHALLENGE, plain)])
        if response and witness is None and challenge is None:
            if len(response) != size:
                raise CardError(SW.WRONG_DATA)
            if pending is None or pending[0] != "challenge":
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            expected = cipher.encryptor().update(pending[1])
            if not hmac.compare_digest(expected, response):
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            state[_MGMT_OK] = True
            return None
        raise CardError(SW.WRONG_DATA)

    def _set_mgmt_key(self, apdu: APDU) -> None:
        """Yubico's SET MANAGEMENT KEY: `00 FF FF FF { alg 9B len key }`."""
        if apdu.p1 != 0xFF or apdu.p2 not in (0xFF, 0xFE):
            raise CardError(SW.INCORRECT_P1P2)
        if apdu.p2 == 0xFE:
            raise CardError(SW.FUNCTION_NOT_SUPPORTED)  # touch policy: no button here
        self._require_mgmt()
        data = apdu.data
        if len(data) < 3 or data[1] != KEY_MGMT or data[2] != len(data) - 3:
            raise CardError(SW.WRONG_DATA)
        alg, key = data[0], data[3:]
        spec = MGMT_ALGORITHMS.get(alg)
        if spec is None or spec[1] != len(key):
            raise CardError(SW.WRONG_DATA)
        self.mgmt_key = (alg, key)
        return None

    # -- key pairs ---------------------------------------------------------------------------

    def _record(self, ref: int) -> KeyRecord | None:
        value = self.system.store.get(_key_name(ref))
        if value is None:
            return None
        cache: dict[tuple[bytes, ...], Any] | None = self.__dict__.get("_key_cache")
        if cache is None:
            cache = {}
            self._key_cache = cache
        return KeyRecord.from_value(value, cache)

    def _generate(self, apdu: APDU) -> bytes:
        """GENERATE ASYMMETRIC KEY PAIR (Part 2 §3.3.2)."""
        if apdu.p1 != 0x00 or apdu.p2 not in SLOT_KEYS:
            raise CardError(SW.INCORRECT_P1P2)
        algorithm = self._parse_crt(apdu.data)
        self._require_mgmt()
        ref = apdu.p2
        record = generate(algorithm, self.system.rng, default_rule(ref))
        self.system.store.set(_key_name(ref), record.to_value())  # one atomic write
        return record.piv_public()

    @staticmethod
    def _parse_crt(data: bytes) -> Algorithm:
        try:
            crt = tlv.Tlv.from_bytes(data, allow_padding=False)
            if crt.tag != 0xAC:
                raise ValueError("not AC")
            children = crt.children
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        alg = [c for c in children if c.tag == 0x80]
        if len(alg) != 1 or len(alg[0].value) != 1 or len(children) != 1:
            raise CardError(SW.WRONG_DATA)
        ident = alg[0].value[0]
        if ident not in PIV_KEY_ALGORITHMS:
            raise CardError(SW.WRONG_DATA)
        return ALGORITHMS[ident]

    def _use_key(self, ref: int, p1: int) -> KeyRecord:
        if ref not in SLOT_KEYS:
            raise CardError(SW.INCORRECT_P1P2)
        record = self._record(ref)
        if record is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if record.algorithm != p1:
            raise CardError(SW.INCORRECT_P1P2)
        if record.policy != RULE_NONE and not self._holder_verified():
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return record

    def _after_use(self, record: KeyRecord) -> None:
        if record.policy == RULE_PIN_ALWAYS:
            self.pin.reset()  # "PIN always": the next use needs a new VERIFY

    def _general_authenticate(self, apdu: APDU) -> bytes | None:
        """GENERAL AUTHENTICATE (Part 2 §3.2.4)."""
        try:
            template = tlv.Tlv.from_bytes(apdu.data, allow_padding=False)
            if template.tag != TAG_DYNAMIC:
                raise ValueError("not 7C")
            children = template.children
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        items: dict[int, bytes] = {}
        for child in children:
            if child.tag in items or child.tag not in (0x80, 0x81, 0x82, 0x85):
                raise CardError(SW.WRONG_DATA)
            items[child.tag] = child.value
        if apdu.p2 == KEY_MGMT:
            return self._authenticate_mgmt(apdu, items)
        if apdu.p2 == KEY_SM:
            return self._establish_sm(apdu, items)
        if items.get(TAG_RESPONSE) != b"" or TAG_WITNESS in items:
            raise CardError(SW.WRONG_DATA)
        challenge, point = items.get(TAG_CHALLENGE), items.get(TAG_EXPONENTIATION)
        if (challenge is None) == (point is None):
            raise CardError(SW.WRONG_DATA)
        record = self._use_key(apdu.p2, apdu.p1)
        try:
            if challenge is not None:
                if record.alg.is_ec:
                    result = record.sign_der(challenge)
                else:
                    result = record.rsa_raw(challenge)
            else:
                assert point is not None
                if not record.alg.is_ec:
                    raise CardError(SW.WRONG_DATA)
                result = record.agree(point)
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        self._after_use(record)
        return tlv.build(TAG_DYNAMIC, [(TAG_RESPONSE, result)])

    def _establish_sm(self, apdu: APDU, items: dict[int, bytes]) -> bytes:
        """Key establishment (Part 2 §4.1.7, the card's steps C1-C12), then SM on the channel."""
        suite = pivsm.SUITES[self.sm_suite]
        if apdu.p1 != suite.ident:
            raise CardError(SW.INCORRECT_P1P2)
        data = items.get(TAG_CHALLENGE)
        if set(items) != {TAG_CHALLENGE, TAG_RESPONSE} or items[TAG_RESPONSE] or data is None:
            raise CardError(SW.WRONG_DATA)
        if len(data) != 1 + pivsm.ID_SIZE + 1 + 2 * suite.coordinate or data[0] != pivsm.CB_ZERO:
            raise CardError(SW.WRONG_DATA)  # C1: CB_H must be 00 (no persistent binding)
        id_h, q_eh = data[1 : 1 + pivsm.ID_SIZE], data[1 + pivsm.ID_SIZE :]
        record = self._record(KEY_SM)
        cvc = self.system.store.get(_SM_CVC)
        if record is None or cvc is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        try:
            z = record.agree(q_eh)  # C2-C3: Q_eH validated on the curve, then Z
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        n_icc = self.system.rng.random(suite.nonce_size)
        id_sicc = pivsm.id_icc(cvc)
        info = pivsm.other_info(suite, id_h, pivsm.CB_ZERO, q_eh, id_sicc, n_icc, pivsm.CB_ZERO)
        keys = pivsm.derive_keys(suite, z, info)
        cryptogram = pivsm.auth_cryptogram(keys, suite, id_sicc, id_h, q_eh)
        if self.sm_session is not None:
            self.end_sm()  # a new key establishment replaces the session
        self.system.channel_state.pop(_VCI, None)
        # SK_CFRM is used once, for the cryptogram, and not kept (C10).
        self.start_sm(pivsm.PivSmSession(pivsm.SessionKeys(b"", keys.mac, keys.enc, keys.rmac)))
        body = bytes((pivsm.CB_ZERO,)) + n_icc + cryptogram + cvc
        return tlv.build(TAG_DYNAMIC, [(TAG_RESPONSE, body)])

    # -- data objects ----------------------------------------------------------------------

    def _tag_list(self, data: bytes) -> tuple[objects.PivObject, bytes]:
        """The container a `5C` tag list names, and the data after it."""
        try:
            first, end = tlv.parse_one(data, allow_padding=False)
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        if first.tag != 0x5C:
            raise CardError(SW.WRONG_DATA)
        obj = objects.object_for_tag(first.value)
        if obj is None:
            raise CardError(SW.FILE_NOT_FOUND)
        return obj, data[end:]

    def _get_data(self, apdu: APDU) -> bytes:
        """GET DATA (Part 2 §3.1.2)."""
        if apdu.p1p2 != 0x3FFF:
            raise CardError(SW.INCORRECT_P1P2)
        obj, rest = self._tag_list(apdu.data)
        if rest:
            raise CardError(SW.WRONG_DATA)
        if obj.pin_to_read and not self._holder_verified():
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        value: bytes | None = self.system.store.get(_object_name(obj.tag))
        if value is None and obj.tag == objects.TAG_BITGT:
            bio = self._bio()  # the match-on-card applet's enrolled fingers
            if bio is not None:
                return bytes(bio.bit_group())
        if value is None:
            raise CardError(SW.FILE_NOT_FOUND)
        return value

    def _put_data(self, apdu: APDU) -> None:
        """PUT DATA (Part 2 §3.3.1): `5C tag 53 {…}`, or the discovery or BIT group object."""
        if apdu.p1p2 != 0x3FFF:
            raise CardError(SW.INCORRECT_P1P2)
        data = apdu.data
        if data[:1] == b"\x7e" or data[:2] == b"\x7f\x61":
            obj = objects.OBJECTS[0x7E if data[0] == 0x7E else 0x7F61]
            body = data
        else:
            obj, body = self._tag_list(data)
            if obj.outer != 0x53:
                raise CardError(SW.WRONG_DATA)
        try:
            value = tlv.Tlv.from_bytes(body, allow_padding=False)
        except (tlv.TlvError, ValueError):
            raise CardError(SW.WRONG_DATA) from None
        if value.tag != obj.outer:
            raise CardError(SW.WRONG_DATA)
        if len(body) > MAX_OBJECT:
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        self._require_mgmt()
        store = self.system.store
        if not value.value:
            store.delete(_object_name(obj.tag))  # an empty container is no container
        else:
            store.set(_object_name(obj.tag), body)
        return None


_HANDLERS: dict[int, Any] = {
    INS_VERIFY: PivApplet._verify,
    INS_CHANGE_REFERENCE: PivApplet._change_reference,
    INS_RESET_RETRY: PivApplet._reset_retry,
    INS_GENERATE: PivApplet._generate,
    INS_GENERAL_AUTHENTICATE: PivApplet._general_authenticate,
    INS_GET_DATA: PivApplet._get_data,
    INS_PUT_DATA: PivApplet._put_data,
    INS_YK_SET_MGMT_KEY: PivApplet._set_mgmt_key,
}
