"""The SM-DP+ (host.servers.smdpp): ES9+ over HTTPS, the BPP it binds, and its refusals.

The eUICC side is `rsp_soft_euicc.SoftEuicc`, an independent reading of
SGP.22 §5.7: it checks the server's signatures and opens the BPP itself.
Every refusal test asserts the SGP.22 status code and that the order did
not move (nothing handed out, nothing marked installed).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures
from rsp_soft_euicc import SoftEuicc, b64d

from card.sgp22 import asn1
from card.uicc.saip import profile_from_package
from host.es9plus import (
    ADMIN_PROTOCOL,
    ES9_PATHS,
    SC_BAD_REQUEST,
    SC_CI_KEY_UNKNOWN,
    SC_EID_REFUSED,
    SC_EUICC_CERT_INVALID,
    SC_EUICC_SIGNATURE_INVALID,
    SC_FIELD_MISSING,
    SC_MATCHING_ID_REFUSED,
    SC_SECURITY_CONFIG_UNSUPPORTED,
    SC_SMDP_ADDRESS_REFUSED,
    SC_SMDP_CERT_UNAVAILABLE,
    SC_SMDP_OID_INVALID,
    SC_TRANSACTION_UNKNOWN,
    Es9Error,
)
from host.lpa.es9 import Es9Client, Es9TransportError
from host.pki import create_pki, make_eid
from host.servers.smdpp.saip import ProfileOrder, build_upp, iccid_to_ef, iccid_to_header, upp_iccid
from host.servers.smdpp.server import OrderState, SessionState, SmdpPlus

K = bytes(range(16))
OPC = bytes(range(16, 32))
ICCID = "8988211000000000016"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def pki():
    return create_pki(seed=b"smdpp tests")


def order(mid: str = "M1", iccid: str = ICCID, eid: str | None = None) -> ProfileOrder:
    return ProfileOrder(mid, iccid, "001010000000001", K, OPC, eid=eid, name="Test profile")


@pytest.fixture(params=["sqlite", "postgresql"])
def smdp(request, pki):
    """The SM-DP+ on SQLite (in memory) and on PostgreSQL (skipped where it is absent)."""
    store = request.getfixturevalue("pg_url") if request.param == "postgresql" else ":memory:"
    s = SmdpPlus(pki, address="localhost", store=store)
    s.add_order(order())
    yield s
    s.store.close()


class Flow:
    """The download steps against an SmdpPlus, in-process (the JSON objects of ES9+)."""

    def __init__(self, smdp: SmdpPlus, euicc: SoftEuicc, matching_id: str = "M1") -> None:
        self.smdp, self.euicc, self.mid = smdp, euicc, matching_id
        self.r1 = self.r2 = self.r3 = None

    @property
    def tid(self) -> str:
        return self.r1["transactionId"]

    def initiate(self) -> dict:
        self.r1 = self.smdp.initiate_authentication(self.euicc.initiate_body(self.smdp.address))
        return self.r1

    def authenticate(self, **kw) -> dict:
        asr = self.euicc.authenticate_server(self.r1, self.mid, **kw)
        self.r2 = self.smdp.authenticate_client(
            {"transactionId": self.tid, "authenticateServerResponse": b64(asr)}
        )
        return self.r2

    def bpp(self, **kw) -> dict:
        pdr = self.euicc.prepare_download(self.r2, **kw)
        self.r3 = self.smdp.get_bound_profile_package(
            {"transactionId": self.tid, "prepareDownloadResponse": b64(pdr)}
        )
        return self.r3

    def all(self) -> tuple[bytes, bytes, bytes]:
        self.initiate()
        self.authenticate()
        self.bpp()
        return self.euicc.open_bpp(
            b64d(self.r3["boundProfilePackage"]), self.smdp.credentials[0].dppb.cert
        )


def refused(code: tuple[str, str], fn, *args, **kw) -> Es9Error:
    with pytest.raises(Es9Error) as e:
        fn(*args, **kw)
    assert e.value.code == code, str(e.value)
    return e.value


# -- The happy path ------------------------------------------------------------------------


def test_full_download_in_process(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    tid, metadata, upp = f.all()
    assert tid.hex().upper() == f.tid
    # The BPP carries exactly the ordered package, bound to this eUICC's session keys.
    assert upp == build_upp(order())
    md = asn1.decode("StoreMetadataRequest", metadata)
    assert md["iccid"] == iccid_to_ef(ICCID) and md["profileName"] == "Test profile"
    # profileMetadata of authenticateClient is the same StoreMetadataRequest.
    assert b64d(f.r2["profileMetadata"]) == metadata
    assert smdp.order_state("M1") == OrderState.DOWNLOADED
    assert smdp.session_state(f.tid) == SessionState.BOUND
    smdp.handle_notification({"pendingNotification": b64(f.euicc.installation_result(tid))})
    assert smdp.order_state("M1") == OrderState.INSTALLED
    assert smdp.session_state(f.tid) == SessionState.DONE
    (note,) = smdp.notifications()
    assert (note["kind"], note["result"], note["iccid"], note["eid"]) == (
        "install",
        "installed",
        ICCID,
        pki.eid,
    )
    # An installed profile is not handed out again.
    again = Flow(smdp, SoftEuicc(pki))
    again.initiate()
    refused(SC_MATCHING_ID_REFUSED, again.authenticate)


def test_the_upp_installs_into_the_profile_store() -> None:
    """The card's SAIP reader rebuilds the subscription the order describes."""
    profile = profile_from_package(build_upp(order())).profile
    assert profile.iccid == ICCID and profile.imsi == "001010000000001"
    assert profile.auth.k == K and profile.auth.opc == OPC and profile.auth.algorithm == "milenage"
    xor = profile_from_package(
        build_upp(ProfileOrder("X", ICCID, "001010000000002", K, algorithm="xor"))
    ).profile
    assert xor.auth.algorithm == "xor" and xor.imsi == "001010000000002"


@settings(max_examples=25, deadline=None)
@given(
    body=st.text(alphabet="0123456789", min_size=18, max_size=19),
    imsi_tail=st.text("0123456789", min_size=10, max_size=10),
)
def test_upp_header_iccid_round_trip(body: str, imsi_tail: str) -> None:
    upp = build_upp(ProfileOrder("P", body, "00101" + imsi_tail, K, OPC))
    assert upp_iccid(upp) == body
    header = asn1.decode_pe_sequence(upp)[0][1]
    assert header["iccid"] == iccid_to_header(body)


def test_failed_installation_releases_the_order(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    tid, _, _ = f.all()
    smdp.handle_notification(
        {"pendingNotification": b64(f.euicc.installation_result(tid, ok=False))}
    )
    assert smdp.order_state("M1") == OrderState.RELEASED
    assert "error" in smdp.notifications()[0]["result"]
    # A new download works.
    g = Flow(smdp, SoftEuicc(pki))
    assert g.all()[2] == build_upp(order())


def test_interrupted_download_can_start_again(smdp, pki) -> None:
    """A BPP handed out but never installed (cut off mid-way): a new session gets the profile."""
    Flow(smdp, SoftEuicc(pki)).all()
    assert smdp.order_state("M1") == OrderState.DOWNLOADED
    assert Flow(smdp, SoftEuicc(pki)).all()[2] == build_upp(order())


def test_brainpool_and_two_cis(pki) -> None:
    brp = create_pki(curve="brainpool", seed=b"smdpp tests")
    from host.servers.smdpp.server import SmdpCredentials

    s = SmdpPlus(
        [SmdpCredentials.from_pki(pki), SmdpCredentials.from_pki(brp)], address="localhost"
    )
    s.add_order(order())
    f = Flow(s, SoftEuicc(brp))
    f.initiate()
    assert b64d(f.r1["euiccCiPKIdToBeUsed"]) == b"\x04\x14" + brp.ci.ski
    f.authenticate()
    f.bpp()
    _, _, upp = f.euicc.open_bpp(b64d(f.r3["boundProfilePackage"]), brp.dppb.cert)
    assert upp == build_upp(order())


# -- Refusals: each its SGP.22 status code, and the order untouched -----------------------


def test_wrong_smdp_address(smdp, pki) -> None:
    body = SoftEuicc(pki).initiate_body("other.example.com")
    refused(SC_SMDP_ADDRESS_REFUSED, smdp.initiate_authentication, body)
    # Case does not matter (SGP.22 §5.6.1).
    assert smdp.initiate_authentication(SoftEuicc(pki).initiate_body("LOCALHOST"))["transactionId"]


def test_unknown_ci(smdp, pki) -> None:
    """An eUICC whose CI the SM-DP+ has no certificate under."""
    stranger = create_pki(seed=b"another CI")
    e = SoftEuicc(stranger)
    refused(SC_SMDP_CERT_UNAVAILABLE, smdp.initiate_authentication, e.initiate_body("localhost"))
    # It can verify our certificates but signs under another CI only.
    body = e.initiate_body("localhost")
    body["euiccInfo1"] = b64(
        asn1.encode(
            "EUICCInfo1",
            {
                "svn": b"\x02\x02\x00",
                "euiccCiPKIdListForVerification": [pki.ci.ski],
                "euiccCiPKIdListForSigning": [stranger.ci.ski],
            },
        )
    )
    refused(SC_SECURITY_CONFIG_UNSUPPORTED, smdp.initiate_authentication, body)
    assert smdp.orders()[0]["state"] == OrderState.RELEASED


def test_euicc_chain_from_unknown_ci(smdp, pki) -> None:
    """The eUICC names our CI but presents an EUM and eUICC certificate from another one."""
    stranger = create_pki(seed=b"another CI")
    f = Flow(smdp, SoftEuicc(pki, euicc=stranger.euicc, eum=stranger.eum))
    f.initiate()
    refused(SC_CI_KEY_UNKNOWN, f.authenticate)
    assert smdp.session_state(f.tid) == SessionState.FAILED
    assert smdp.order_state("M1") == OrderState.RELEASED


def test_bad_euicc_signature1(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    refused(SC_EUICC_SIGNATURE_INVALID, f.authenticate, tamper_signature=True)
    assert smdp.order_state("M1") == OrderState.RELEASED
    # The session is over: even a correct retry of the step is refused.
    refused(SC_TRANSACTION_UNKNOWN, f.authenticate)


def test_bad_euicc_signature2(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    f.authenticate()
    refused(SC_EUICC_SIGNATURE_INVALID, f.bpp, tamper_signature=True)
    assert smdp.order_state("M1") == OrderState.RELEASED
    assert smdp.session_state(f.tid) == SessionState.FAILED


def test_eid_outside_the_eum_range(smdp, pki) -> None:
    outside = pki.issue_euicc(make_eid("89049099", 7), seed=1)
    f = Flow(smdp, SoftEuicc(pki, euicc=outside))
    f.initiate()
    err = refused(SC_EUICC_CERT_INVALID, f.authenticate)
    assert "range" in err.message
    assert smdp.order_state("M1") == OrderState.RELEASED


def test_eid_bound_order(pki) -> None:
    s = SmdpPlus(pki, address="localhost")
    other = make_eid("89049032", 99)
    s.add_order(order(eid=other))
    f = Flow(s, SoftEuicc(pki))
    f.initiate()
    refused(SC_EID_REFUSED, f.authenticate)
    assert s.order_state("M1") == OrderState.RELEASED


def test_unknown_matching_id(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki), matching_id="NOPE")
    f.initiate()
    refused(SC_MATCHING_ID_REFUSED, f.authenticate)
    g = Flow(smdp, SoftEuicc(pki), matching_id=None)
    g.initiate()
    refused(SC_MATCHING_ID_REFUSED, g.authenticate)


def test_wrong_transaction_id(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    asr = f.euicc.authenticate_server(f.r1, "M1")
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.authenticate_client,
        {"transactionId": "00" * 16, "authenticateServerResponse": b64(asr)},
    )
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.authenticate_client,
        {"transactionId": "xyz", "authenticateServerResponse": b64(asr)},
    )
    # The session itself is intact: the right transaction ID still works.
    f.r2 = smdp.authenticate_client(
        {"transactionId": f.tid, "authenticateServerResponse": b64(asr)}
    )
    # euiccSigned2 naming another transaction than the request's.
    pdr = f.euicc.prepare_download(f.r2, tid=bytes(16))
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.get_bound_profile_package,
        {"transactionId": f.tid, "prepareDownloadResponse": b64(pdr)},
    )
    assert smdp.order_state("M1") == OrderState.RELEASED


def test_replayed_and_reordered_steps(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    # getBoundProfilePackage before authenticateClient.
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.get_bound_profile_package,
        {"transactionId": f.tid, "prepareDownloadResponse": b64(b"\xbf\x21\x00")},
    )
    f.authenticate()
    asr = f.euicc.authenticate_server(f.r1, "M1")
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.authenticate_client,
        {"transactionId": f.tid, "authenticateServerResponse": b64(asr)},
    )
    f.bpp()
    pdr = f.euicc.prepare_download(f.r2)
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.get_bound_profile_package,
        {"transactionId": f.tid, "prepareDownloadResponse": b64(pdr)},
    )
    assert smdp.order_state("M1") == OrderState.DOWNLOADED


def test_notification_with_bad_signature_is_ignored(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    tid, _, _ = f.all()
    smdp.handle_notification(
        {"pendingNotification": b64(f.euicc.installation_result(tid, tamper=True))}
    )
    assert smdp.order_state("M1") == OrderState.DOWNLOADED and smdp.notifications() == []
    # A result for a transaction the server never bound is ignored too.
    smdp.handle_notification({"pendingNotification": b64(f.euicc.installation_result(bytes(16)))})
    assert smdp.notifications() == []


def test_other_notifications(smdp, pki) -> None:
    e = SoftEuicc(pki)
    smdp.handle_notification(
        {"pendingNotification": b64(e.other_notification(0x40, iccid_to_ef(ICCID)))}
    )
    smdp.handle_notification(
        {"pendingNotification": b64(e.other_notification(0x10, iccid_to_ef(ICCID), tamper=True))}
    )
    stranger = create_pki(seed=b"another CI")
    smdp.handle_notification(
        {
            "pendingNotification": b64(
                SoftEuicc(stranger).other_notification(0x20, iccid_to_ef(ICCID))
            )
        }
    )
    (note,) = smdp.notifications()
    assert (note["kind"], note["operation"], note["iccid"], note["eid"]) == (
        "other",
        "enable",
        ICCID,
        pki.eid,
    )


def test_cancel_session(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    f.authenticate()
    f.bpp()
    tid = bytes.fromhex(f.tid)
    refused(
        SC_SMDP_OID_INVALID,
        smdp.cancel_session,
        {"transactionId": f.tid, "cancelSessionResponse": b64(f.euicc.cancel(tid, "2.999.77"))},
    )
    assert smdp.cancel_session(
        {"transactionId": f.tid, "cancelSessionResponse": b64(f.euicc.cancel(tid, pki.smdp_oid))}
    ) == {"transactionId": f.tid}
    assert smdp.session_state(f.tid) == SessionState.CANCELLED
    assert smdp.order_state("M1") == OrderState.RELEASED
    refused(
        SC_TRANSACTION_UNKNOWN,
        smdp.cancel_session,
        {"transactionId": f.tid, "cancelSessionResponse": b64(f.euicc.cancel(tid, pki.smdp_oid))},
    )


def test_malformed_requests(smdp, pki) -> None:
    # Mandatory fields missing: 1.6/2.2; present but malformed: 1.6/2.1.
    refused(SC_FIELD_MISSING, smdp.initiate_authentication, {"smdpAddress": "localhost"})
    body = SoftEuicc(pki).initiate_body("localhost")
    body["euiccInfo1"] = "!!!"
    refused(SC_BAD_REQUEST, smdp.initiate_authentication, body)
    body["euiccInfo1"] = b64(b"\xbf\x20\x01\x00")
    refused(SC_BAD_REQUEST, smdp.initiate_authentication, body)
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    refused(
        SC_BAD_REQUEST,
        smdp.authenticate_client,
        {"transactionId": f.tid, "authenticateServerResponse": b64(b"\x30\x00")},
    )


def test_orders(pki, tmp_path) -> None:
    db = tmp_path / "smdp.sqlite"
    s = SmdpPlus(pki, address="localhost", store=db)
    s.add_order(order())
    with pytest.raises(ValueError, match="already ordered"):
        s.add_order(order())
    with pytest.raises(ValueError, match="already ordered"):
        s.add_order(order("M2"))  # same ICCID under another matching ID
    s.store.close()
    # The orders survive a restart (the SQLite file).
    t = SmdpPlus(pki, address="localhost", store=db)
    assert t.orders() == [{"matching_id": "M1", "iccid": ICCID, "eid": None, "state": "released"}]
    with pytest.raises(ValueError):
        ProfileOrder("", ICCID, "001010000000001", K)
    with pytest.raises(ValueError):
        ProfileOrder("X", "12", "001010000000001", K)
    with pytest.raises(ValueError):
        ProfileOrder("X", ICCID, "001010000000001", K, algorithm="comp128")
    # TUAK's Keccak iteration count (numberOfKeccak, TS 35.231 §7.2) is 1..255, and TUAK's.
    topc = bytes(32)
    for bad in (0, 256):
        with pytest.raises(ValueError, match="iteration"):
            ProfileOrder("X", ICCID, "001010000000001", K, topc, "tuak", keccak_iterations=bad)
    with pytest.raises(ValueError, match="TUAK's only"):
        ProfileOrder("X", ICCID, "001010000000001", K, keccak_iterations=2)


# -- Over HTTPS ------------------------------------------------------------------------


def test_es9_over_https(smdp, pki) -> None:
    with smdp.serve() as server:
        smdp.address = f"localhost:{server.port}"
        es9 = Es9Client(smdp.address, ca_pem=pki.ci.pem)
        e = SoftEuicc(pki)
        r1 = es9.require("initiateAuthentication", e.initiate_body(smdp.address), "transactionId")
        asr = e.authenticate_server(r1, "M1")
        r2 = es9.call(
            "authenticateClient",
            {"transactionId": r1["transactionId"], "authenticateServerResponse": b64(asr)},
        )
        pdr = e.prepare_download(r2)
        r3 = es9.call(
            "getBoundProfilePackage",
            {"transactionId": r1["transactionId"], "prepareDownloadResponse": b64(pdr)},
        )
        tid, _, upp = e.open_bpp(b64d(r3["boundProfilePackage"]), pki.dppb.cert)
        assert upp == build_upp(order())
        assert (
            es9.call("handleNotification", {"pendingNotification": b64(e.installation_result(tid))})
            is None
        )
        assert smdp.order_state("M1") == OrderState.INSTALLED
        # An ES9+ failure arrives as an Es9Error with the status codes.
        with pytest.raises(Es9Error) as err:
            es9.call(
                "authenticateClient",
                {"transactionId": r1["transactionId"], "authenticateServerResponse": b64(asr)},
            )
        assert (
            err.value.code == SC_TRANSACTION_UNKNOWN and err.value.function == "authenticateClient"
        )
        # TLS: a client trusting another CI refuses the server.
        with pytest.raises(Es9TransportError, match="certificate"):
            Es9Client(smdp.address, ca_pem=create_pki(seed=b"x").ci.pem).call(
                "initiateAuthentication", {}
            )


def test_http_binding_details(smdp, pki) -> None:
    with smdp.serve() as server:
        ctx = ssl.create_default_context(cadata=pki.ci.pem.decode())

        def post(
            path: str, body: bytes, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            conn = http.client.HTTPSConnection("localhost", server.port, context=ctx, timeout=10)
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            conn.close()
            return out

        json_headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "X-Admin-Protocol": ADMIN_PROTOCOL,
        }
        status, headers, body = post(ES9_PATHS["initiateAuthentication"], b"{}", json_headers)
        answer = json.loads(body)
        assert status == 200 and headers["x-admin-protocol"].startswith("gsma/rsp/v2")
        assert answer["header"]["functionExecutionStatus"]["status"] == "Failed"
        assert (
            answer["header"]["functionExecutionStatus"]["statusCodeData"]["subjectCode"]
            == SC_BAD_REQUEST[0]
        )
        assert post(ES9_PATHS["initiateAuthentication"], b"{", json_headers)[0] == 400
        assert (
            post(ES9_PATHS["initiateAuthentication"], b"{}", {"Content-Type": "text/plain"})[0]
            == 415
        )
        assert post("/gsma/rsp2/es9plus/nothing", b"{}", json_headers)[0] == 404
        v3 = {**json_headers, "X-Admin-Protocol": "gsma/rsp/v3.0.0"}
        assert post(ES9_PATHS["initiateAuthentication"], b"{}", v3)[0] == 400


def test_smdp_certificates_are_the_configured_ones(smdp, pki) -> None:
    f = Flow(smdp, SoftEuicc(pki))
    f.initiate()
    assert x509.load_der_x509_certificate(b64d(f.r1["serverCertificate"])) == pki.dpauth.cert
    f.authenticate()
    assert x509.load_der_x509_certificate(b64d(f.r2["smdpCertificate"])) == pki.dppb.cert


# -- The CLI ---------------------------------------------------------------------------


def test_cli_orders(tmp_path, capsys) -> None:
    from host.cli import main

    db = str(tmp_path / "o.sqlite")
    args = ["smdpp", "order", "--db", db, "MY-1", "--iccid", ICCID, "--imsi", "001010000000001"]
    assert main([*args, "--k", K.hex(), "--opc", OPC.hex()]) == 0
    assert main([*args, "--k", K.hex(), "--opc", OPC.hex()]) == 1  # already ordered
    assert (
        main(
            [
                *args[:4],
                "MY-2",
                "--iccid",
                "8988211000000000024",
                "--imsi",
                "001010000000002",
                "--k",
                K.hex(),
                "--xor",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                *args[:4],
                "MY-3",
                "--iccid",
                "8988211000000000032",
                "--imsi",
                "001010000000003",
                "--k",
                K.hex(),
            ]
        )
        == 2
    )
    capsys.readouterr()
    assert main(["smdpp", "orders", "--db", db, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["matching_id"], r["state"]) for r in rows] == [
        ("MY-1", "released"),
        ("MY-2", "released"),
    ]


def test_cli_serve_runs_alone(tmp_path) -> None:
    """`cardemu smdpp serve` in its own process answers ES9+ over HTTPS, then stops on SIGTERM."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from host.lpa.demo import DEMO_MATCHING_ID
    from host.pki import default_pki

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "host.cli",
            "smdpp",
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "s.sqlite"),
            "--demo-order",
        ],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "serving ES9+" in line or not line:
                break
        m = re.search(r"SM-DP\+ (localhost:\d+) serving", line)
        assert m, f"no start line: {line!r}"
        address = m.group(1)
        assert f"LPA:1${address}${DEMO_MATCHING_ID}" in proc.stderr.readline()
        pki = default_pki()
        r = Es9Client(address, ca_pem=pki.ci.pem).call(
            "initiateAuthentication", SoftEuicc(pki).initiate_body(address)
        )
        assert len(bytes.fromhex(r["transactionId"])) == 16
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
