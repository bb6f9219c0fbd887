"""The local-authentication applet beside the ISD-R (seed 000, S1-S9): registration, PIN and
finger verification with their try counters, and the result the ECASD signs."""

from __future__ import annotations

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from applets.biometric import BIO_AID, BiometricApplet
from card.sgp22.ecasd import ECASD_AID
from card.sgp22.localauth import (
    LOCAL_AUTH_AID,
    LOCAL_AUTH_PARAMETER,
    METHOD_FINGERPRINT,
    METHOD_PIN,
    OUTCOME_FAILED,
    OUTCOME_SUCCESS,
    local_auth_signed,
)
from host.bio.session import BioSession
from host.bio.synthetic import make_dataset
from host.errors import ApduError
from host.pki import default_pki, eid_of
from host.presets import new_card
from host.readers.inprocess import InProcessReader
from host.systems.ekyc.card import LocalAuthError, LocalAuthSession
from host.systems.ekyc.proofs import LocalAuthResult, ProofError, verify_local_auth

CHALLENGE = bytes(range(16))
TRUSTED = [default_pki().ci.cert]


def _session(card: object) -> LocalAuthSession:
    return LocalAuthSession(InProcessReader(card)).open()  # type: ignore[arg-type]


def test_the_euicc_preset_has_it_beside_the_isdr() -> None:
    la = _session(new_card("euicc"))
    assert la.status().method == 0
    euicc, eum = la.certificates()
    assert eid_of(x509.load_der_x509_certificate(euicc))


def test_pin_registered_once_verified_and_the_result_verifies() -> None:
    la = _session(new_card("euicc"))
    la.register_pin(b"2468")
    with pytest.raises(ApduError) as e:
        la.register_pin(b"1357")  # once only: no silent reset of the user's PIN
    assert e.value.sw == 0x6985
    la.verify_pin(b"2468")
    result = la.result(CHALLENGE)
    euicc, eum = la.certificates()
    parsed = verify_local_auth(result, CHALLENGE, euicc, eum, TRUSTED)
    assert (parsed.outcome, parsed.method) == (OUTCOME_SUCCESS, METHOD_PIN)
    assert parsed.eid == eid_of(x509.load_der_x509_certificate(euicc))


def test_one_result_per_verification() -> None:
    la = _session(new_card("euicc"))
    la.register_pin(b"2468")
    with pytest.raises(ApduError) as e:
        la.result(CHALLENGE)  # no verification yet
    assert e.value.sw == 0x6985
    la.verify_pin(b"2468")
    la.result(CHALLENGE)
    with pytest.raises(ApduError) as e:
        la.result(bytes(16))  # the same verification over a second challenge
    assert e.value.sw == 0x6985


def test_wrong_pin_counts_down_then_locks_out_and_the_failure_is_signed() -> None:
    la = _session(new_card("euicc"))
    la.register_pin(b"2468")
    with pytest.raises(LocalAuthError) as e:
        la.verify_pin(b"0000")
    assert e.value.tries_left == 2
    failed = LocalAuthResult.from_bytes(la.result(CHALLENGE))
    assert failed.outcome == OUTCOME_FAILED  # a failure can be proved, never turned into success
    euicc, eum = la.certificates()
    with pytest.raises(ProofError) as p:
        verify_local_auth(failed.to_bytes(), CHALLENGE, euicc, eum, TRUSTED)
    assert p.value.reason == "failed"
    for left in (1, 0):
        with pytest.raises(LocalAuthError) as e:
            la.verify_pin(b"0000")
        assert e.value.tries_left == left
    with pytest.raises(LocalAuthError) as e:
        la.verify_pin(b"2468")  # locked out: the right PIN no longer helps
    assert e.value.tries_left == 0 and e.value.sw == 0x6983
    with pytest.raises(ApduError):
        la.result(CHALLENGE)
    assert la.status().tries_left == 0


def test_a_tampered_result_does_not_verify() -> None:
    la = _session(new_card("euicc"))
    la.register_pin(b"2468")
    la.verify_pin(b"2468")
    result = bytearray(la.result(CHALLENGE))
    euicc, eum = la.certificates()
    outcome_at = bytes(result).index(bytes((0x81, 0x01, 0x00)))
    for where in (outcome_at + 2, len(result) - 1):
        forged = bytearray(result)
        forged[where] ^= 0x01
        with pytest.raises(ProofError) as p:
            verify_local_auth(bytes(forged), CHALLENGE, euicc, eum, TRUSTED)
        assert p.value.reason == "signature"


def test_a_result_for_another_challenge_is_a_replay() -> None:
    la = _session(new_card("euicc"))
    la.register_pin(b"2468")
    la.verify_pin(b"2468")
    result = la.result(CHALLENGE)
    euicc, eum = la.certificates()
    with pytest.raises(ProofError) as p:
        verify_local_auth(result, bytes(16), euicc, eum, TRUSTED)
    assert p.value.reason == "challenge"


def test_only_the_local_auth_applet_gets_the_narrow_signer() -> None:
    card = new_card("euicc")
    ecasd = card._entries[ECASD_AID].ctx.applet
    from card.framework import AID

    assert ecasd.get_shareable_interface_object(AID(BIO_AID), LOCAL_AUTH_PARAMETER) is None
    grant = ecasd.get_shareable_interface_object(AID(LOCAL_AUTH_AID), LOCAL_AUTH_PARAMETER)
    assert grant is not None and grant is not ecasd
    from card.framework.shareable import interface_methods

    # The grant exposes no general-purpose signing (EcasdInterface.sign).
    assert interface_methods(type(grant)) == {"eid", "certificates", "sign_local_auth"}


@given(
    eid=st.binary(min_size=16, max_size=16),
    challenge=st.binary(min_size=16, max_size=32),
    outcome=st.integers(0, 255),
    method=st.integers(0, 255),
    signature=st.binary(min_size=64, max_size=64),
)
def test_result_encoding_round_trips(
    eid: bytes, challenge: bytes, outcome: int, method: int, signature: bytes
) -> None:
    signed = local_auth_signed(eid, challenge, outcome, method)
    from card import tlv

    parsed = LocalAuthResult.from_bytes(signed + tlv.build(0x5F37, signature))
    assert (parsed.eid, parsed.challenge, parsed.outcome, parsed.method) == (
        eid.hex().upper(),
        challenge,
        outcome,
        method,
    )
    assert parsed.to_bytes() == signed + tlv.build(0x5F37, signature)
    assert parsed.signed[0] == 0xE5  # never an SGP.22 object ('30', 'BF27', 'BF2F')


@given(st.binary(max_size=200))
def test_result_decoding_refuses_garbage_cleanly(data: bytes) -> None:
    try:
        LocalAuthResult.from_bytes(data)
    except ProofError as e:
        assert e.reason == "malformed"


# -- a finger, matched by the match-on-card applet ------------------------------------------

FINGERS = make_dataset(2, 3, seed=7)


def _bio_card() -> object:
    card = new_card("euicc")
    card.install(BiometricApplet, BIO_AID)
    bio = BioSession(InProcessReader(card))
    bio.select()
    bio.authenticate_admin(bytes(range(0x40, 0x50)))
    bio.enrol(0x96, FINGERS.impressions[0][0])
    card.reset()
    return card


def test_finger_registered_matched_on_card_and_signed() -> None:
    from applets.biometric.iso19794 import build_biometric_data

    la = _session(_bio_card())
    la.register_finger(0x96)
    assert la.status().method == METHOD_FINGERPRINT
    la.verify_finger(build_biometric_data(FINGERS.impressions[0][1]))
    parsed = LocalAuthResult.from_bytes(la.result(CHALLENGE))
    assert (parsed.outcome, parsed.method) == (OUTCOME_SUCCESS, METHOD_FINGERPRINT)


def test_wrong_finger_uses_the_match_on_card_counter() -> None:
    from applets.biometric.iso19794 import build_biometric_data

    la = _session(_bio_card())
    la.register_finger(0x96)
    with pytest.raises(LocalAuthError) as e:
        la.verify_finger(build_biometric_data(FINGERS.impressions[1][0]))
    assert e.value.tries_left == 4  # the match-on-card applet's own limit (5)
    assert LocalAuthResult.from_bytes(la.result(CHALLENGE)).outcome == OUTCOME_FAILED


def test_no_finger_without_a_match_on_card_applet() -> None:
    la = _session(new_card("euicc"))
    with pytest.raises(ApduError) as e:
        la.register_finger(0x96)
    assert e.value.sw == 0x6A88


# -- stateful: the PIN's counter never gives a free try --------------------------------------


class PinMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.la = _session(new_card("euicc"))
        self.la.register_pin(b"2468")
        self.tries = 3

    @precondition(lambda self: self.tries > 0)
    @rule()
    def right(self) -> None:
        self.la.verify_pin(b"2468")
        self.tries = 3

    @rule(pin=st.binary(min_size=4, max_size=12).filter(lambda p: p != b"2468"))
    def wrong(self, pin: bytes) -> None:
        with pytest.raises(LocalAuthError) as e:
            self.la.verify_pin(pin)
        self.tries = max(0, self.tries - 1)
        assert e.value.tries_left == self.tries

    @precondition(lambda self: self.tries == 0)
    @rule()
    def locked(self) -> None:
        with pytest.raises(LocalAuthError):
            self.la.verify_pin(b"2468")

    @invariant()
    def counter(self) -> None:
        assert self.la.status().tries_left == self.tries


PinMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=10, deadline=None)
TestPinMachine = PinMachine.TestCase


def test_the_apdu_spec_names_the_applets_aid() -> None:
    from apdu_specs.seed000_localauth import LOCAL_AUTH

    assert LOCAL_AUTH.aids == (LOCAL_AUTH_AID,)
