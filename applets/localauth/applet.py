"""Local authentication for eKYC-backed profile acquisition (seed 000, JP 7639532 B2, S1-S9).

The user registers local-authentication data once (the terminal's first
start, S1-S4): a PIN, or a finger enrolled in the match-on-card applet. On
each contract the terminal verifies the user (S7-S9) and asks for a *local
authentication result* over the management server's challenge: the ECASD
signs it with SK.EUICC.ECDSA (`card.sgp22.localauth`), so the management
server can tell a real result from a forged or replayed one (S13, S49).

Commands (proprietary CLA 80 unless noted):

- `80 10 01 00 <PIN>` REGISTER a PIN (4-12 bytes), or `80 10 02 00 <qq>` a finger: qq is
  the reference of a finger enrolled in the match-on-card applet. Once only:
  6985 when something is registered; 6A88 for a finger with no match-on-card
  applet on the card.
- `00 20 00 81 <PIN>` VERIFY the PIN (ISO/IEC 7816-4 §11.5.6): 9000, 63Cx (x tries
  left; 63C0 for the try that used the last one), 6983 blocked (no comparison).
  `00 20 00 82 <7F2E>` VERIFY a finger: the biometric data template goes to the
  match-on-card applet (`SharedBioTemplate.match`), whose try counter and
  lock-out apply; its status word comes back. No data: 9000 when verified on
  this channel, else 63Cx / 6983. A comparison, matched or not, leaves the
  outcome on this channel for the next result (any VERIFY with data first
  clears the one before).
- `80 12 00 00 <challenge 16-32> 00` LOCAL AUTHENTICATION RESULT: `E5 {5A EID, 80
  challenge, 81 outcome, 82 method} 5F37 <r || s>`, signed by the ECASD.
  Needs an outcome on this channel (6985 otherwise); each outcome gives one
  result, so a verification cannot be signed over two challenges.
- `80 14 00 00 00` GET CERTIFICATES: `A0 <CERT.EUICC> A1 <CERT.EUM>` (what the server
  verifies the result with).
- `80 16 00 00 00` GET STATUS: `81 method (00 none, 01 PIN, 02 finger) 82 PIN tries
  left 83 PIN try limit`: how the terminal knows whether to ask for registration (S1).

Install parameters: optional `82 <AID>` of the match-on-card applet (default
the built-in one's). The PIN allows 3 tries, as a SIM's PIN1 does (ETSI TS 102 221
§9.4.3); a finger follows the match-on-card applet's own retry limit.

The PIN is an `OwnerPIN`: its counter is written before the comparison, so a
tear cannot buy a free guess, and it compares in constant time.
"""

from __future__ import annotations

from typing import Any

from card import tlv
from card.framework import AID, APDU, SW, Applet, CardError, OwnerPIN, persistent
from card.sgp22.ecasd import ECASD_AID
from card.sgp22.localauth import (
    CHALLENGE_MAX,
    CHALLENGE_MIN,
    LOCAL_AUTH_PARAMETER,
    METHOD_FINGERPRINT,
    METHOD_PIN,
    OUTCOME_FAILED,
    OUTCOME_SUCCESS,
)
from card.sw import sw_retries

__all__ = ["LocalAuthApplet", "DEFAULT_BIO_AID"]

#: The built-in match-on-card applet (applets.biometric.BIO_AID), named here, not imported.
DEFAULT_BIO_AID = bytes.fromhex("F043415244454D55B1")

INS_REGISTER = 0x10
INS_RESULT = 0x12
INS_CERTIFICATES = 0x14
INS_STATUS = 0x16
INS_VERIFY = 0x20
P2_PIN = 0x81
P2_FINGER = 0x82
PIN_MIN, PIN_MAX = 4, 12
TRY_LIMIT = 3

_OUTCOME = "localauth.outcome"


class LocalAuthApplet(Applet):
    """The local-authentication applet (see the module docstring)."""

    multiselectable = True

    #: 0 until registered, then METHOD_PIN or METHOD_FINGERPRINT
    method = persistent(0)
    #: the finger's reference at the match-on-card applet
    finger = persistent(0)
    bio_aid = persistent(DEFAULT_BIO_AID)
    pin = OwnerPIN.field(try_limit=TRY_LIMIT, max_length=PIN_MAX)

    def on_install(self, params: bytes) -> None:
        if not params:
            return
        try:
            objs = {o.tag: o.value for o in tlv.parse(params)}
        except tlv.TlvError as e:
            raise CardError(SW.WRONG_DATA) from e
        if 0x82 in objs:
            if not 5 <= len(objs[0x82]) <= 16:
                raise CardError(SW.WRONG_DATA)
            self.bio_aid = bytes(objs[0x82])

    # -- dispatch ----------------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        ins = apdu.ins
        if not apdu.cla & 0x80:
            if ins == INS_VERIFY:
                self._verify(apdu)
                return None
            raise CardError(SW.INS_NOT_SUPPORTED)
        if ins == INS_REGISTER:
            self._register(apdu)
            return None
        if ins == INS_RESULT:
            return self._result(apdu)
        if ins == INS_CERTIFICATES:
            self._no_p1p2(apdu)
            euicc, eum = self._signer().certificates()
            return tlv.build(0xA0, bytes(euicc)) + tlv.build(0xA1, bytes(eum))
        if ins == INS_STATUS:
            self._no_p1p2(apdu)
            return (
                tlv.build(0x81, bytes((self.method,)))
                + tlv.build(0x82, bytes((self._tries_left(),)))
                + tlv.build(0x83, bytes((TRY_LIMIT,)))
            )
        raise CardError(SW.INS_NOT_SUPPORTED)

    @staticmethod
    def _no_p1p2(apdu: APDU) -> None:
        if apdu.p1 or apdu.p2:
            raise CardError(SW.INCORRECT_P1P2)

    def _signer(self) -> Any:
        signer = self.system.get_shareable(ECASD_AID, LOCAL_AUTH_PARAMETER)
        if signer is None:  # no ECASD on this card, or it refuses this applet
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return signer

    def _bio(self) -> Any:
        return self.system.get_shareable(bytes(self.bio_aid))

    # -- registration (S1-S4) -----------------------------------------------------------

    def _register(self, apdu: APDU) -> None:
        if apdu.p2:
            raise CardError(SW.INCORRECT_P1P2)
        if self.method:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if apdu.p1 == METHOD_PIN:
            if not PIN_MIN <= len(apdu.data) <= PIN_MAX:
                raise CardError(SW.WRONG_LENGTH)
            with self.system.transaction():
                self.pin.update(apdu.data)
                self.method = METHOD_PIN
            return
        if apdu.p1 == METHOD_FINGERPRINT:
            if len(apdu.data) != 1:
                raise CardError(SW.WRONG_LENGTH)
            if self._bio() is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            with self.system.transaction():
                self.finger = apdu.data[0]
                self.method = METHOD_FINGERPRINT
            return
        raise CardError(SW.INCORRECT_P1P2)

    def _tries_left(self) -> int:
        if self.method == METHOD_PIN:
            return int(self.pin.tries_remaining)
        return 0 if not self.method else TRY_LIMIT

    # -- verification (S7-S9) -------------------------------------------------------------

    def _verify(self, apdu: APDU) -> None:
        if apdu.p1:
            raise CardError(SW.INCORRECT_P1P2)
        state = self.system.channel_state
        if apdu.data:
            state.pop(_OUTCOME, None)  # the outcome is the latest comparison's, or none
        if apdu.p2 == P2_PIN:
            if self.method != METHOD_PIN:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            pin = self.pin
            if not apdu.data:
                if pin.is_validated():
                    return
                tries = pin.tries_remaining
                raise CardError(SW.AUTH_METHOD_BLOCKED if tries == 0 else sw_retries(tries))
            if pin.blocked:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            if len(apdu.data) > PIN_MAX:
                raise CardError(SW.WRONG_LENGTH)
            ok = pin.check(apdu.data)
            state[_OUTCOME] = (METHOD_PIN, OUTCOME_SUCCESS if ok else OUTCOME_FAILED)
            if not ok:  # 63C0 for the try that used the last one; 6983 from then on
                raise CardError(sw_retries(pin.tries_remaining))
            return
        if apdu.p2 == P2_FINGER:
            if self.method != METHOD_FINGERPRINT:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            bio = self._bio()
            if bio is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            if not apdu.data:
                if bio.is_validated():
                    return
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            sw = int(bio.match(self.finger, apdu.data))
            if sw == SW.SUCCESS:
                state[_OUTCOME] = (METHOD_FINGERPRINT, OUTCOME_SUCCESS)
                return
            if sw & 0xFFF0 == 0x63C0:  # a comparison that did not match
                state[_OUTCOME] = (METHOD_FINGERPRINT, OUTCOME_FAILED)
            raise CardError(sw)
        raise CardError(SW.INCORRECT_P1P2)

    # -- the signed result (S9 → S12) -------------------------------------------------------

    def _result(self, apdu: APDU) -> bytes:
        self._no_p1p2(apdu)
        challenge = bytes(apdu.data)
        if not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
            raise CardError(SW.WRONG_LENGTH)
        state = self.system.channel_state
        outcome = state.pop(_OUTCOME, None)  # one result per verification
        if outcome is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        method, result = outcome
        signed, signature = self._signer().sign_local_auth(challenge, result, method)
        return bytes(signed) + tlv.build(0x5F37, bytes(signature))

    def get_shareable_interface_object(self, client_aid: AID, parameter: int) -> None:
        return None
