"""card.sgp22.asn1: the SGP.22 and TCA modules compile, encode and decode strictly."""

from __future__ import annotations

import pytest

from card.sgp22 import asn1
from card.sgp22.asn1 import Asn1Error


def test_compiled_once_per_process() -> None:
    assert asn1.rsp() is asn1.rsp()
    assert asn1.saip() is asn1.saip()


def test_known_encoding_get_euicc_challenge() -> None:
    # SGP.22 §5.7.7: GetEuiccChallengeResponse is BF2E { 80 euiccChallenge }.
    der = asn1.encode("GetEuiccChallengeResponse", {"euiccChallenge": bytes(range(16))})
    assert der == bytes.fromhex("bf2e1280") + b"\x10" + bytes(range(16))
    assert asn1.decode("GetEuiccChallengeResponse", der) == {"euiccChallenge": bytes(range(16))}


def test_strict_decoding() -> None:
    der = asn1.encode("GetEuiccChallengeResponse", {"euiccChallenge": bytes(16)})
    with pytest.raises(Asn1Error):
        asn1.decode("GetEuiccChallengeResponse", der + b"\x00")
    with pytest.raises(Asn1Error):
        asn1.decode("GetEuiccChallengeResponse", der[:-1])
    with pytest.raises(Asn1Error):  # SIZE(16) is checked
        asn1.encode("GetEuiccChallengeResponse", {"euiccChallenge": bytes(15)})


@pytest.mark.parametrize(
    "oid", ["2.999.10", "2.23.146.1.2.1.4", "1.2.840.10045.2.1", "0.9.2342", "1.39.5"]
)
def test_object_identifiers_round_trip(oid: str) -> None:
    # asn1tools alone decodes 2.999.10 (first subidentifier 1079) as 26.39.10.
    der = asn1.encode(
        "EuiccCancelSessionSigned", {"transactionId": b"\x01", "smdpOid": oid, "reason": 0}
    )
    assert asn1.decode("EuiccCancelSessionSigned", der)["smdpOid"] == oid
    if oid == "2.999.10":
        # X.690 §8.19: 2*40+999 = 1079 = 88 37 (implicitly tagged [1] by AUTOMATIC TAGS)
        assert bytes.fromhex("810388370a") in der
