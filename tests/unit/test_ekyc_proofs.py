"""The authentication server's certificate (seed S22, S50): encoding and every check."""

from __future__ import annotations

import datetime as _dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.systems.ekyc.demo import demo_pki
from host.systems.ekyc.proofs import (
    EkycCertificate,
    ProofError,
    certificate_tbs,
    verify_certificate,
)

PKI = demo_pki(0)
EID = "89049032000000000000000000000163"
CAS = [PKI.ca.cert]


def _cert(eid: str = EID) -> EkycCertificate:
    serial, issued = bytes(range(16)), 1_800_000_000
    return EkycCertificate(
        eid, serial, issued, PKI.auth.sign(certificate_tbs(eid, serial, issued)), PKI.auth.der
    )


@given(
    eid=st.text("0123456789", min_size=32, max_size=32),
    serial=st.binary(min_size=1, max_size=20),
    issued=st.integers(0, 2**63 - 1),
    signature=st.binary(min_size=64, max_size=64),
    issuer=st.binary(max_size=40),
)
def test_certificate_json_round_trips(
    eid: str, serial: bytes, issued: int, signature: bytes, issuer: bytes
) -> None:
    cert = EkycCertificate(eid, serial, issued, signature, issuer)
    assert EkycCertificate.from_json(cert.to_json()) == cert


@pytest.mark.parametrize(
    "value",
    [None, [], {}, {"eid": "12"}, {**_cert().to_json(), "issued": -1},
     {**_cert().to_json(), "signature": "zz"}, {**_cert().to_json(), "eid": "X" * 32}],
)  # fmt: skip
def test_malformed_certificates_are_refused(value: object) -> None:
    with pytest.raises(ProofError) as e:
        EkycCertificate.from_json(value)
    assert e.value.reason == "malformed"


def test_a_genuine_certificate_verifies() -> None:
    issuer = verify_certificate(_cert(), CAS, eid=EID)
    assert issuer.subject == PKI.auth.cert.subject


def test_every_refusal() -> None:
    with pytest.raises(ProofError) as e:
        verify_certificate(_cert(), CAS, eid="89049032000000000000000000000999")
    assert e.value.reason == "eid"
    with pytest.raises(ProofError) as e:
        verify_certificate(_cert(), [PKI.rogue.cert], eid=EID)  # a CA the carrier does not trust
    assert e.value.reason == "issuer"
    forged = EkycCertificate(EID, bytes(16), 1, PKI.rogue.sign(certificate_tbs(EID, bytes(16), 1)),
                             PKI.auth.der)  # fmt: skip
    with pytest.raises(ProofError) as e:
        verify_certificate(forged, CAS, eid=EID)
    assert e.value.reason == "signature"
    late = _dt.datetime(2050, 1, 1, tzinfo=_dt.UTC)
    with pytest.raises(ProofError) as e:
        verify_certificate(_cert(), CAS, eid=EID, when=late)
    assert e.value.reason == "issuer" and "expired" in str(e.value)
    # The CA's own key may sign certificates, not EIDs.
    by_ca = EkycCertificate(EID, bytes(16), 1, PKI.ca.sign(certificate_tbs(EID, bytes(16), 1)),
                            PKI.ca.der)  # fmt: skip
    with pytest.raises(ProofError) as e:
        verify_certificate(by_ca, CAS, eid=EID)
    assert e.value.reason == "issuer"


def test_the_servers_tls_key_cannot_vouch_for_an_eid() -> None:
    by_tls = EkycCertificate(EID, bytes(16), 1, PKI.tls.sign(certificate_tbs(EID, bytes(16), 1)),
                             PKI.tls.der)  # fmt: skip
    with pytest.raises(ProofError) as e:
        verify_certificate(by_tls, CAS, eid=EID)
    assert e.value.reason == "issuer" and "TLS" in str(e.value)


def test_demo_keys_are_the_same_in_every_process() -> None:
    demo_pki.cache_clear()
    again = demo_pki(0)
    assert again.auth.der == PKI.auth.der and again.ca.der == PKI.ca.der
    assert demo_pki(1).auth.der != PKI.auth.der
