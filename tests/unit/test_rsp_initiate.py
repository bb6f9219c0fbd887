"""InitiateAuthentication's refusals, the same on the SM-DP+ (ES9+) and the SM-DS (ES11).

SGP.22 §5.6.1 and §5.9.1: both servers run `host.servers.rsp_common.initiate_authentication`;
each refusal is asserted with its status code on both, and that no session was opened.
The requests come from `rsp_soft_euicc.SoftEuicc`, an eUICC in software.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rsp_soft_euicc import SoftEuicc

from card.sgp22 import asn1
from host.es9plus import (
    SC_BAD_REQUEST,
    SC_FIELD_MISSING,
    SC_SECURITY_CONFIG_UNSUPPORTED,
    SC_SMDP_ADDRESS_REFUSED,
    SC_SMDP_CERT_UNAVAILABLE,
    SC_SMDS_ADDRESS_REFUSED,
    SC_SMDS_CERT_UNAVAILABLE,
    SC_SMDS_SECURITY_CONFIG_UNSUPPORTED,
    SC_SMDS_SVN_UNSUPPORTED,
    SC_SVN_UNSUPPORTED,
    Es9Error,
)
from host.pki import create_pki
from host.servers.smdpp.server import SmdpPlus
from host.servers.smds import SmDs

PKI = create_pki(seed=b"rsp initiate tests")
STRANGER = create_pki(seed=b"another CI")
ADDRESS = "localhost:8443"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(params=["smdp", "smds"])
def server(request) -> Any:
    """The SM-DP+ or the SM-DS, in-process on an in-memory store."""
    if request.param == "smdp":
        s: Any = SmdpPlus(PKI, address=ADDRESS)
        s.address_field, s.address_refused = "smdpAddress", SC_SMDP_ADDRESS_REFUSED
        # The SM-DP+'s refusals are 8.8.x (SGP.22 §5.6.1) ...
        s.svn_refused, s.cert_refused = SC_SVN_UNSUPPORTED, SC_SMDP_CERT_UNAVAILABLE
        s.ci_refused = SC_SECURITY_CONFIG_UNSUPPORTED
    else:
        s = SmDs(PKI, address=ADDRESS)
        s.address_field, s.address_refused = "smdsAddress", SC_SMDS_ADDRESS_REFUSED
        # ... the SM-DS's the same under 8.9.x (§5.9.1).
        s.svn_refused, s.cert_refused = SC_SMDS_SVN_UNSUPPORTED, SC_SMDS_CERT_UNAVAILABLE
        s.ci_refused = SC_SMDS_SECURITY_CONFIG_UNSUPPORTED
    yield s
    s.store.close()


def body_for(server: Any, euicc: SoftEuicc, **info1: Any) -> dict[str, str]:
    """An InitiateAuthentication request to `server`, euiccInfo1 fields replaced by `info1`."""
    body = euicc.initiate_body(ADDRESS)
    body[server.address_field] = body.pop("smdpAddress")
    if info1:
        fields = asn1.decode("EUICCInfo1", euicc.info1())
        body["euiccInfo1"] = b64(asn1.encode("EUICCInfo1", {**fields, **info1}))
    return body


def refused(code: tuple[str, str], server: Any, body: dict[str, str]) -> None:
    with pytest.raises(Es9Error) as e:
        server.initiate_authentication(body)
    assert e.value.code == code, str(e.value)
    assert server.store.query("SELECT * FROM sessions") == []


def test_accepted(server) -> None:
    r1 = server.initiate_authentication(body_for(server, SoftEuicc(PKI)))
    assert server.session_state(r1["transactionId"]) == "initiated"
    assert base64.b64decode(r1["euiccCiPKIdToBeUsed"]) == b"\x04\x14" + PKI.ci.ski


def test_wrong_address(server) -> None:
    body = body_for(server, SoftEuicc(PKI))
    body[server.address_field] = "other.example.com"
    refused(server.address_refused, server, body)


def test_svn_not_2(server) -> None:
    refused(server.svn_refused, server, body_for(server, SoftEuicc(PKI), svn=b"\x03\x00\x00"))


def test_euicc_challenge_not_16_bytes(server) -> None:
    body = body_for(server, SoftEuicc(PKI))
    body["euiccChallenge"] = b64(b"\x00" * 15)
    refused(SC_BAD_REQUEST, server, body)


@pytest.mark.parametrize("name", ["euiccChallenge", "euiccInfo1", "address"])
def test_field_missing(server, name: str) -> None:
    body = body_for(server, SoftEuicc(PKI))
    del body[server.address_field if name == "address" else name]
    refused(SC_FIELD_MISSING, server, body)


def test_no_certificate_under_a_ci_the_euicc_verifies(server) -> None:
    refused(server.cert_refused, server, body_for(server, SoftEuicc(STRANGER)))


def test_no_ci_the_euicc_signs_under(server) -> None:
    body = body_for(
        server,
        SoftEuicc(PKI),
        euiccCiPKIdListForVerification=[PKI.ci.ski],
        euiccCiPKIdListForSigning=[STRANGER.ci.ski],
    )
    refused(server.ci_refused, server, body)
