"""An operator, an SM-DP+, an SM-DS and the emulated eUICC over loopback (GSMA SGP.22 v2.x).

The full consumer flow: the operator orders with ES2+ (a confirmation code,
an SM-DS event), the LPA finds the event with ES11, downloads with the code,
enables the profile; every step reaches the operator as
HandleDownloadProgressInfo. Then each refusal on the way: wrong and missing
confirmation codes and their retry limit, the default SM-DP+, ES2+ state
errors, and revoked certificates.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures
from rsp_soft_euicc import SoftEuicc
from sgp22_helpers import euicc_card

from host.es9plus import (
    SC_BAD_REQUEST,
    SC_CC_MISSING,
    SC_CC_REFUSED,
    SC_CC_RETRIES_EXCEEDED,
    SC_CONDITION_MISSING,
    SC_EID_MISSING,
    SC_EID_OTHER_ASSOCIATED,
    SC_EID_REFUSED,
    SC_EUICC_CERT_INVALID,
    SC_FIELD_MISSING,
    SC_ICCID_IN_USE,
    SC_ICCID_UNKNOWN,
    SC_MATCHING_ID_IN_USE,
    SC_MATCHING_ID_OTHER_ASSOCIATED,
    SC_MATCHING_ID_REFUSED,
    SC_ORDER_STATE_REFUSED,
    SC_PROFILE_TYPE_EXHAUSTED,
    SC_PROFILE_TYPE_UNKNOWN,
    SC_SMDS_INACCESSIBLE,
    Es9Error,
)
from host.lpa import ActivationCode, Es10Client, Lpa, LpaError
from host.lpa.demo import demo_order
from host.pki import create_pki, default_pki, issue_crl, make_eid
from host.presets import PRESETS, new_card
from host.readers.inprocess import InProcessReader
from host.servers.operator import Operator
from host.servers.smdpp.es2plus import Es2Client, OperatorLink
from host.servers.smdpp.saip import ProfileOrder, build_upp
from host.servers.smdpp.server import (
    POINT_BPP_DOWNLOAD,
    POINT_BPP_INSTALLATION,
    POINT_CONFIRMATION_FAILURE,
    POINT_ELIGIBILITY,
    POINT_ENABLED,
    OrderState,
    SmdpPlus,
    cc_hash_of,
)
from host.servers.smds import SmDs

pytestmark = pytest.mark.skipif("euicc" not in PRESETS, reason="no euicc preset here")

PKI = default_pki()
EID = PKI.eid
OP = "OPERATOR-1"
K = bytes(range(16))


def refused(code: tuple[str, str], fn, *args, **kw) -> Es9Error:
    with pytest.raises(Es9Error) as e:
        fn(*args, **kw)
    assert e.value.code == code, str(e.value)
    return e.value


def pool_upp(n: int) -> bytes:
    iccid = f"89882110000000001{n:02d}"
    return build_upp(ProfileOrder("x", iccid, f"0010100000001{n:02d}", K, algorithm="xor"))


class World:
    """The three servers on loopback ports and a fresh emulated eUICC."""

    def __init__(self, stack, pki=PKI, **smdp_kw) -> None:
        self.operator = Operator()
        self.op_server = stack.enter_context(self.operator.serve())
        self.smds = SmDs(pki, address="localhost:0")
        ds_server = stack.enter_context(self.smds.serve())
        self.smds.address = f"localhost:{ds_server.port}"
        self.smdp = SmdpPlus(
            pki,
            address="localhost:0",
            operators={OP: OperatorLink(f"localhost:{self.op_server.port}", tls=False)},
            **smdp_kw,
        )
        dp_server = stack.enter_context(self.smdp.serve())
        self.smdp.address = f"localhost:{dp_server.port}"
        self.es2 = Es2Client(self.smdp.address, requester=OP, ca_pem=pki.ci.pem)
        self.pki = pki

    def lpa(self, rt=None) -> Lpa:
        self.rt = rt or new_card("euicc")
        es10 = Es10Client(InProcessReader(self.rt)).open()
        return Lpa(es10, ca_pem=self.pki.ci.pem)

    def points(self) -> list[tuple[int, str]]:
        assert self.smdp.flush_progress()
        return [
            (r["notificationPointId"], r["notificationPointStatus"]["status"])
            for r in self.operator.reports()
        ]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request):
    """The servers with the SM-DP+ on SQLite and on PostgreSQL (skipped where it is absent)."""
    from contextlib import ExitStack

    kw = {"store": request.getfixturevalue("pg_url")} if request.param == "postgresql" else {}
    with ExitStack() as stack:
        w = World(stack, **kw)
        yield w
        w.smdp.store.close()


def order_with_cc(world: World, cc: str | None = "1234", smds: bool = True) -> tuple[str, str]:
    world.smdp.add_package(None, pool_upp(1), profile_type="cardemu")
    iccid = world.es2.download_order(eid=EID, profile_type="cardemu")
    answer = world.es2.confirm_order(
        iccid,
        confirmation_code=cc,
        smds_address=world.smds.address if smds else None,
        release=True,
    )
    return iccid, answer["matchingId"]


# -- the whole flow ------------------------------------------------------------------------


def test_full_flow_es2_smds_cc_enable(world) -> None:
    iccid, matching_id = order_with_cc(world)
    assert world.smdp.order(matching_id)["state"] == OrderState.RELEASED
    assert [(e.eid, e.event_id) for e in world.smds.events.all()] == [(EID, matching_id)]

    lpa = world.lpa()
    events = lpa.discover(world.smds.address)
    assert [(e["eventId"], e["rspServerAddress"]) for e in events] == [
        (matching_id, world.smdp.address)
    ]
    code = ActivationCode(events[0]["rspServerAddress"], events[0]["eventId"])

    # A wrong code: refused, nothing installed, the order still downloadable.
    refused(SC_CC_REFUSED, lpa.download, code, confirmation_code="9999")
    assert lpa.profiles() == []
    assert world.smdp.order(matching_id)["cc_failures"] == 1

    result = lpa.download(code, confirmation_code="1234")
    assert result.installed and result.notified and result.iccid.startswith(iccid[:18])
    assert world.smdp.order(matching_id)["state"] == OrderState.INSTALLED
    assert world.smds.events.all() == []  # the SM-DP+ deleted its event

    lpa.enable(result.iccid)
    sent = lpa.send_notifications()
    assert [s["result"] for s in sent] == ["sent"]
    assert world.points() == [
        (POINT_ELIGIBILITY, "Executed-Success"),
        (POINT_CONFIRMATION_FAILURE, "Failed"),
        (POINT_ELIGIBILITY, "Executed-Success"),
        (POINT_BPP_DOWNLOAD, "Executed-Success"),
        (POINT_BPP_INSTALLATION, "Executed-Success"),
        (POINT_ENABLED, "Executed-Success"),
    ]
    install = world.operator.reports()[4]  # (points() flushed the reports)
    assert install["eid"] == EID and install["iccid"] == iccid and "resultData" in install


# -- confirmation codes ------------------------------------------------------------------


def test_cc_retries_are_limited() -> None:
    from contextlib import ExitStack

    with ExitStack() as stack:
        world = World(stack, cc_attempts=2)
        _, matching_id = order_with_cc(world, smds=False)
        lpa = world.lpa()
        code = ActivationCode(world.smdp.address, matching_id)
        refused(SC_CC_REFUSED, lpa.download, code, confirmation_code="0000")
        refused(SC_CC_RETRIES_EXCEEDED, lpa.download, code, confirmation_code="0001")
        assert world.smdp.order(matching_id)["state"] == OrderState.ERROR
        # Not even the right code opens it now.
        refused(SC_MATCHING_ID_REFUSED, lpa.download, code, confirmation_code="1234")
        assert lpa.profiles() == []


def test_lpa_without_the_code_cancels(world) -> None:
    _, matching_id = order_with_cc(world, smds=False)
    lpa = world.lpa()
    with pytest.raises(LpaError):
        lpa.download(ActivationCode(world.smdp.address, matching_id))
    assert world.smdp.order(matching_id)["state"] == OrderState.RELEASED


def test_smdp_refuses_a_missing_hash_cc() -> None:
    """An eUICC that answers PrepareDownload without hashCc (the card itself would not)."""
    smdp = SmdpPlus(PKI, address="localhost")
    smdp.add_package("M1", pool_upp(2), confirmation_code="1234")
    soft = SoftEuicc(PKI)
    import base64

    r1 = smdp.initiate_authentication(soft.initiate_body("localhost"))
    asr = soft.authenticate_server(r1, "M1")
    r2 = smdp.authenticate_client(
        {
            "transactionId": r1["transactionId"],
            "authenticateServerResponse": base64.b64encode(asr).decode(),
        }
    )
    pdr = soft.prepare_download(r2)
    refused(
        SC_CC_MISSING,
        smdp.get_bound_profile_package,
        {
            "transactionId": r1["transactionId"],
            "prepareDownloadResponse": base64.b64encode(pdr).decode(),
        },
    )


@settings(max_examples=50, deadline=None)
@given(cc=st.text(min_size=1, max_size=16), tid=st.binary(min_size=16, max_size=16))
def test_cc_hash_matches_what_the_lpa_sends(cc: str, tid: bytes) -> None:
    """SGP.22 §3.1.3.4 on both sides: the SM-DP+'s stored SHA-256(CC) with the
    TransactionID gives the LPA's hashCc, and another code never does."""
    lpa_side = hashlib.sha256(hashlib.sha256(cc.encode()).digest() + tid).digest()
    stored = cc_hash_of(cc)
    assert stored is not None
    assert hashlib.sha256(stored + tid).digest() == lpa_side
    assert hashlib.sha256(cc_hash_of(cc + "0") + tid).digest() != lpa_side


# -- the default SM-DP+ ------------------------------------------------------------------


def test_default_smdp_empty_matching_id(world) -> None:
    world.smdp.add_package(None, pool_upp(3), profile_type="cardemu")
    iccid = world.es2.download_order(eid=EID, profile_type="cardemu")
    answer = world.es2.confirm_order(iccid, matching_id="", release=True)
    assert answer["matchingId"] == "" and answer["eid"] == EID
    lpa = world.lpa()
    result = lpa.download(ActivationCode(world.smdp.address, ""))
    assert result.installed


def test_default_smdp_with_nothing_for_this_eid(world) -> None:
    world.smdp.add_package("M-OTHER", pool_upp(4), eid=make_eid(serial=9))
    lpa = world.lpa()
    refused(SC_MATCHING_ID_REFUSED, lpa.download, ActivationCode(world.smdp.address, ""))


def test_eid_bound_order_refused_to_another_euicc(world) -> None:
    world.smdp.add_package(None, pool_upp(5), profile_type="cardemu")
    iccid = world.es2.download_order(eid=make_eid(serial=9), profile_type="cardemu")
    world.es2.confirm_order(iccid, matching_id="M-BOUND")
    lpa = world.lpa()
    refused(SC_EID_REFUSED, lpa.download, ActivationCode(world.smdp.address, "M-BOUND"))
    # The operator hears that its profile was refused to another eUICC.
    assert world.points() == [(POINT_ELIGIBILITY, "Failed")]
    assert world.smdp.order("M-BOUND")["state"] == OrderState.RELEASED


# -- ES2+ refusals ------------------------------------------------------------------------


def test_es2_refusals(world) -> None:
    es2 = world.es2
    world.smdp.add_package(None, pool_upp(6), profile_type="cardemu")
    refused(SC_ICCID_UNKNOWN, es2.download_order, iccid="8988211000000000999")
    refused(SC_PROFILE_TYPE_UNKNOWN, es2.download_order, profile_type="gold")
    refused(SC_CONDITION_MISSING, es2.download_order)  # neither iccid nor profileType
    iccid = es2.download_order(profile_type="cardemu")
    refused(SC_ICCID_IN_USE, es2.download_order, iccid=iccid)
    refused(SC_ORDER_STATE_REFUSED, es2.release_profile, iccid)  # allocated, not confirmed
    # Another operator sees no such profile.
    other = Es2Client(world.smdp.address, requester="OPERATOR-2", ca_pem=PKI.ci.pem)
    refused(SC_ICCID_UNKNOWN, other.confirm_order, iccid)
    # An SM-DS event needs the EID (8.1.1/2.2), and so does the default SM-DP+ flow.
    refused(SC_EID_MISSING, es2.confirm_order, iccid, smds_address=world.smds.address)
    refused(SC_EID_MISSING, es2.confirm_order, iccid, matching_id="")
    es2.confirm_order(iccid, matching_id="MINE", release=False)
    refused(SC_ORDER_STATE_REFUSED, es2.confirm_order, iccid)  # confirmed already
    # A confirmed order is not downloadable before ReleaseProfile.
    lpa = world.lpa()
    refused(SC_MATCHING_ID_REFUSED, lpa.download, ActivationCode(world.smdp.address, "MINE"))
    es2.release_profile(iccid)
    # The matching ID is taken by this order now.
    world.smdp.add_package(None, pool_upp(7), profile_type="cardemu")
    iccid2 = es2.download_order(profile_type="cardemu")
    refused(SC_MATCHING_ID_IN_USE, es2.confirm_order, iccid2, matching_id="MINE")
    assert lpa.download(ActivationCode(world.smdp.address, "MINE")).installed
    refused(SC_ORDER_STATE_REFUSED, es2.cancel_order, iccid)  # installed


def test_cancel_order_returns_it_to_the_pool_and_deletes_the_event(world) -> None:
    iccid, matching_id = order_with_cc(world)
    assert world.smds.events.all() != []
    world.es2.cancel_order(iccid, available=True)
    assert world.smds.events.all() == []
    assert world.smdp.order(matching_id) is None
    lpa = world.lpa()
    refused(SC_MATCHING_ID_REFUSED, lpa.download, ActivationCode(world.smdp.address, matching_id))
    # Back in the pool: it can be ordered again.
    assert world.es2.download_order(profile_type="cardemu") == iccid


def test_smds_down_at_confirm_keeps_the_order_allocated(world) -> None:
    world.smdp.add_package(None, pool_upp(8), profile_type="cardemu")
    iccid = world.es2.download_order(eid=EID, profile_type="cardemu")
    refused(
        SC_SMDS_INACCESSIBLE,
        world.es2.confirm_order,
        iccid,
        smds_address="localhost:9",
        matching_id="M8",
        release=True,
    )
    row = world.smdp.store.query_one("SELECT state FROM orders WHERE iccid = ?", (iccid,))
    assert row["state"] == OrderState.ALLOCATED


# -- revocation ---------------------------------------------------------------------------


def test_revoked_euicc_certificate_refused_by_smdp() -> None:
    pki = create_pki(seed=b"revoked euicc")
    crl = issue_crl(pki.eum, [pki.euicc.cert.serial_number])
    from contextlib import ExitStack

    with ExitStack() as stack:
        world = World(stack, pki=pki, crls=[crl])
        world.smdp.add_order(demo_order("M-REV"))
        lpa = world.lpa(euicc_card(pki))
        refused(SC_EUICC_CERT_INVALID, lpa.download, ActivationCode(world.smdp.address, "M-REV"))
        assert lpa.profiles() == []
        assert world.smdp.order("M-REV")["state"] == OrderState.RELEASED
        # Another eUICC of the same EUM, not revoked, downloads.
        world.smdp.crls = [issue_crl(pki.eum, [12345])]
        assert lpa.download(ActivationCode(world.smdp.address, "M-REV")).installed


def test_revoked_eum_certificate_refused_by_smdp() -> None:
    pki = create_pki(seed=b"revoked eum")
    crl = issue_crl(pki.ci, [pki.eum.cert.serial_number])
    from contextlib import ExitStack

    with ExitStack() as stack:
        world = World(stack, pki=pki, crls=[crl])
        world.smdp.add_order(demo_order("M-REV"))
        lpa = world.lpa(euicc_card(pki))
        e = refused(("8.1.2", "6.1"), lpa.download, ActivationCode(world.smdp.address, "M-REV"))
        assert "revoked" in e.message


def test_a_crl_not_signed_by_the_issuer_revokes_nothing() -> None:
    pki = create_pki(seed=b"forged crl")
    other = create_pki(seed=b"forger", eum_org=pki.eum_org)
    forged = issue_crl(other.eum, [pki.euicc.cert.serial_number])
    from contextlib import ExitStack

    with ExitStack() as stack:
        world = World(stack, pki=pki, crls=[forged])
        world.smdp.add_order(demo_order("M-OK"))
        lpa = world.lpa(euicc_card(pki))
        assert lpa.download(ActivationCode(world.smdp.address, "M-OK")).installed


# -- the command line ----------------------------------------------------------------------


def test_cli_order_upp_with_cc_and_default_smdp(tmp_path, capsys) -> None:
    from host.cli import main

    db = str(tmp_path / "dp.sqlite")
    upp = tmp_path / "profile.der"
    upp.write_bytes(pool_upp(9))
    assert main(["smdpp", "order", "--db", db, "--upp", str(upp), "--cc", "1234", "M9"]) == 0
    out = capsys.readouterr().out
    assert "LPA:1$localhost:8443$M9$$1" in out
    # The same package again: its ICCID is taken (refused, nothing changed).
    assert main(["smdpp", "order", "--db", db, "--upp", str(upp), "M10"]) == 1
    # The default SM-DP+ needs the EID.
    upp.write_bytes(pool_upp(10))
    assert main(["smdpp", "order", "--db", db, "--upp", str(upp), ""]) == 1
    assert main(["smdpp", "order", "--db", db, "--upp", str(upp), "--eid", EID, ""]) == 0
    smdp = SmdpPlus(PKI, address="localhost", store=db)
    rows = {r["matching_id"]: r for r in smdp.orders()}
    assert rows["M9"]["state"] == OrderState.RELEASED
    assert smdp.order("M9")["cc_hash"] == cc_hash_of("1234")
    assert [r["eid"] for r in rows.values() if r["matching_id"] != "M9"] == [EID]


def test_es2_malformed_requests(world) -> None:
    from host.es9plus import SC_EID_INVALID
    from host.lpa.es9 import Es9Client
    from host.servers.smdpp.es2plus import ES2P_PATHS

    world.smdp.add_package(None, pool_upp(11), profile_type="cardemu")
    refused(SC_EID_INVALID, world.es2.download_order, eid="1234", profile_type="cardemu")
    iccid = world.es2.download_order(profile_type="cardemu")
    refused(SC_FIELD_MISSING, world.es2.call, "cancelOrder", {"iccid": iccid})  # no final state
    refused(
        SC_BAD_REQUEST,
        world.es2.call,
        "cancelOrder",
        {"iccid": iccid, "finalProfileStatusIndicator": "Gone"},
    )
    refused(SC_FIELD_MISSING, world.es2.call, "confirmOrder", {"iccid": iccid})  # no releaseFlag
    refused(SC_FIELD_MISSING, world.es2.call, "releaseProfile", {})  # no iccid
    refused(
        SC_BAD_REQUEST,
        world.es2.call,
        "confirmOrder",
        {"iccid": iccid, "releaseFlag": "yes"},
    )
    refused(SC_BAD_REQUEST, world.es2.call, "releaseProfile", {"iccid": "12AB"})
    # No request header: no requester, nothing done.
    bare = Es9Client(world.smdp.address, ca_pem=PKI.ci.pem, paths=ES2P_PATHS)
    refused(SC_FIELD_MISSING, bare.call, "cancelOrder", {"iccid": iccid})
    row = world.smdp.store.query_one("SELECT state FROM orders WHERE iccid = ?", (iccid,))
    assert row["state"] == OrderState.ALLOCATED


def test_cancel_unavailable_takes_it_out_of_use(world) -> None:
    world.smdp.add_package(None, pool_upp(12), profile_type="cardemu")
    iccid = world.es2.download_order(profile_type="cardemu")
    world.es2.cancel_order(iccid, available=False)
    refused(SC_ICCID_IN_USE, world.es2.download_order, iccid=iccid)
    # The SM-DP+ knows the type, but has no profile of it left: 8.2.5/3.7, not "unknown".
    refused(SC_PROFILE_TYPE_EXHAUSTED, world.es2.download_order, profile_type="cardemu")
    refused(SC_PROFILE_TYPE_UNKNOWN, world.es2.download_order, profile_type="gold")


def test_es2_order_linked_to_another_eid_or_matching_id(world) -> None:
    """An order linked to an EID or a matching ID refuses another one (SGP.22 §5.3.2/§5.3.3):
    8.1.1/3.10 "a different EID is already associated", 8.2.6/3.10 "a different MatchingID
    is associated with this ICCID"; nothing changes."""
    world.smdp.add_package(None, pool_upp(13), profile_type="cardemu")
    other_eid = make_eid(serial=424242)
    iccid = world.es2.download_order(eid=EID, profile_type="cardemu")
    refused(SC_EID_OTHER_ASSOCIATED, world.es2.confirm_order, iccid, eid=other_eid)
    world.es2.confirm_order(iccid, matching_id="LINKED", release=False)
    refused(SC_EID_OTHER_ASSOCIATED, world.es2.cancel_order, iccid, eid=other_eid)
    refused(
        SC_MATCHING_ID_OTHER_ASSOCIATED,
        world.es2.call,
        "cancelOrder",
        {"iccid": iccid, "matchingId": "OTHER", "finalProfileStatusIndicator": "Available"},
    )
    row = world.smdp.store.query_one("SELECT * FROM orders WHERE iccid = ?", (iccid,))
    assert (row["state"], row["eid"], row["matching_id"]) == (OrderState.CONFIRMED, EID, "LINKED")


def test_cli_notifications_send_no_tls_memory_reset_default_dp(tmp_path, capsys) -> None:
    from host.cli import main

    smdp = SmdpPlus(PKI, address="localhost:0")
    smdp.add_order(demo_order("M-CLI"))
    with smdp.serve(tls=False) as server:
        smdp.address = f"localhost:{server.port}"
        card = str(tmp_path / "my.card")
        assert main(["card", "new", "--preset", "euicc", card]) == 0
        code = f"LPA:1${smdp.address}$M-CLI"
        assert main(["lpa", "download", "--card", card, "--no-tls", code]) == 0
        iccid = demo_order().full_iccid
        assert main(["lpa", "enable", "--card", card, iccid]) == 0
        # Over TLS the plain-HTTP SM-DP+ is unreachable: kept, exit 0 with "not sent".
        capsys.readouterr()
        assert main(["lpa", "notifications", "--card", card, "--send"]) == 0
        assert "not sent" in capsys.readouterr().out
        assert main(["lpa", "notifications", "--card", card, "--send", "--no-tls"]) == 0
        assert "sent" in capsys.readouterr().out
        assert [n["operation"] for n in smdp.notifications()][-1] == "enable"
    assert main(["lpa", "default-dp", "--card", card, "localhost:8443"]) == 0
    capsys.readouterr()
    assert main(["lpa", "default-dp", "--card", card, "--json"]) == 0
    assert '"defaultDpAddress": "localhost:8443"' in capsys.readouterr().out
    assert main(["lpa", "disable", "--card", card, iccid]) == 0
    assert main(["lpa", "memory-reset", "--card", card, "--default-address"]) == 0
    capsys.readouterr()
    assert main(["lpa", "list", "--card", card]) == 0
    assert capsys.readouterr().out.strip() == "no profile"
    assert main(["lpa", "default-dp", "--card", card]) == 0
    assert "no default" in capsys.readouterr().out
    assert main(["lpa", "memory-reset", "--card", card]) == 0
    assert "nothing to delete" in capsys.readouterr().out


def test_add_order_with_cc_and_smds_in_python(world) -> None:
    """The Python API a role built on these servers uses: no ES2+ in between."""
    order = ProfileOrder(
        "PY-1", "8988211000000000198", "001010000000019", K, algorithm="xor", eid=EID
    )
    world.smdp.add_order(order, confirmation_code="42", smds_address=world.smds.address)
    assert [e.event_id for e in world.smds.events.all()] == ["PY-1"]
    lpa = world.lpa()
    (event,) = lpa.discover(world.smds.address)
    code = ActivationCode(event["rspServerAddress"], event["eventId"])
    assert lpa.download(code, confirmation_code="42").installed
    assert world.smds.events.all() == []
    # An event without an EID, or an SM-DS that is not there: nothing ordered.
    with pytest.raises(ValueError):
        world.smdp.add_order(
            ProfileOrder("PY-2", "8988211000000000206", "001010000000020", K, algorithm="xor"),
            smds_address=world.smds.address,
        )
    refused(
        SC_SMDS_INACCESSIBLE,
        world.smdp.add_order,
        ProfileOrder("PY-3", "8988211000000000214", "001010000000021", K, algorithm="xor", eid=EID),
        smds_address="localhost:9",
    )
    assert world.smdp.order("PY-2") is None and world.smdp.order("PY-3") is None


def test_es2_cannot_touch_orders_it_did_not_make(world) -> None:
    world.smdp.add_order(demo_order("ADMIN-1"))
    iccid = world.smdp.order("ADMIN-1")["iccid"]
    refused(SC_ICCID_UNKNOWN, world.es2.cancel_order, iccid)
    refused(SC_ICCID_UNKNOWN, world.es2.release_profile, iccid)
    assert world.smdp.order("ADMIN-1")["state"] == OrderState.RELEASED


@settings(max_examples=60, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=18, max_size=20),
    pad=st.sampled_from(["", "F", "f"]),
)
def test_es2_iccid_field_round_trip(digits: str, pad: str) -> None:
    """An ES2+ ICCID (§5.3: 19 or 20 digits, an F pad allowed) reads back as its digits."""
    from host.servers.smdpp.es2plus import _iccid

    value = digits + pad if len(digits) < 20 else digits
    assert _iccid({"iccid": value}) == digits


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=24).filter(lambda v: not v.rstrip("Ff").isdigit() or len(v) < 18))
def test_es2_iccid_field_refuses_the_rest(value: str) -> None:
    from host.servers.smdpp.es2plus import _iccid

    refused(SC_FIELD_MISSING if not value else SC_BAD_REQUEST, _iccid, {"iccid": value})
