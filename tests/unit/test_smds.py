"""The SM-DS (host.servers.smds): ES12 event records, ES11 retrieval with the eUICC's signature.

The eUICC is the emulated one (the "euicc" preset: ISD-R, ECASD, the built-in
test PKI) reached through the LPA (`Lpa.discover`: ES11 over HTTPS + ES10b);
ES12 goes over HTTPS with `Es12Client`, as an SM-DP+ sends it. Every refusal
asserts the SGP.22 status code and that no event record changed.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures
from rsp_soft_euicc import SoftEuicc
from sgp22_helpers import euicc_card

from host.cli import main
from host.es9plus import (
    SC_BAD_REQUEST,
    SC_EID_INVALID,
    SC_EUICC_CERT_INVALID,
    SC_EVENT_ID_IN_USE,
    SC_EVENT_ID_UNKNOWN,
    SC_FIELD_MISSING,
    SC_SMDS_ADDRESS_REFUSED,
    SC_SMDS_ERROR,
    SC_SMDS_INACCESSIBLE,
    SC_TRANSACTION_UNKNOWN,
    Es9Error,
)
from host.lpa import Es10Client, Lpa
from host.pki import create_pki, default_pki, issue_crl, make_eid
from host.presets import PRESETS, new_card
from host.readers.inprocess import InProcessReader
from host.servers.smds import Es12Client, EventStore, SmDs
from host.servers.smds.app import create_app


class SoftEs11:
    """ES11 requests from `rsp_soft_euicc.SoftEuicc` (an independent eUICC, in software)."""

    def __init__(self, pki) -> None:
        self.euicc = SoftEuicc(pki)

    def initiate(self, address: str) -> dict:
        body = self.euicc.initiate_body(address)
        body["smdsAddress"] = body.pop("smdpAddress")
        return body

    def authenticate(self, r1: dict, matching_id: str) -> dict:
        asr = self.euicc.authenticate_server(r1, matching_id or None)
        return {
            "transactionId": r1["transactionId"],
            "authenticateServerResponse": base64.b64encode(asr).decode(),
        }


pytestmark = pytest.mark.skipif("euicc" not in PRESETS, reason="no euicc preset here")

PKI = default_pki()
EID = PKI.eid
OTHER_EID = make_eid(serial=77)
DP = "localhost:8443"


def refused(code: tuple[str, str], fn, *args, **kw) -> Es9Error:
    with pytest.raises(Es9Error) as e:
        fn(*args, **kw)
    assert e.value.code == code, str(e.value)
    return e.value


@pytest.fixture(params=["sqlite", "postgresql"])
def smds(request):
    """The SM-DS on SQLite (in memory) and on PostgreSQL (skipped where it is absent)."""
    store = request.getfixturevalue("pg_url") if request.param == "postgresql" else ":memory:"
    ds = SmDs(PKI, address="localhost:0", store=store)
    with ds.serve() as server:
        ds.address = f"localhost:{server.port}"
        yield ds
    ds.events.store.close()


def es12(ds: SmDs) -> Es12Client:
    return Es12Client(ds.address, requester="test-smdp", ca_pem=PKI.ci.pem)


def lpa_for(rt) -> tuple[Es10Client, Lpa]:
    es10 = Es10Client(InProcessReader(rt)).open()
    return es10, Lpa(es10, ca_pem=PKI.ci.pem)


# -- ES12 --------------------------------------------------------------------------------


def test_register_and_delete_over_https(smds) -> None:
    client = es12(smds)
    client.register_event(EID, "EVT-1", DP)
    assert [(e.eid, e.event_id, e.address) for e in smds.events.all()] == [(EID, "EVT-1", DP)]
    client.delete_event(EID, "EVT-1")
    assert smds.events.all() == []


def test_register_refusals_change_nothing(smds) -> None:
    client = es12(smds)
    client.register_event(EID, "EVT-1", DP)
    refused(SC_EVENT_ID_IN_USE, client.register_event, EID, "EVT-1", "elsewhere:1")
    refused(SC_EID_INVALID, client.register_event, "8904903200000000000000000000015X", "E", DP)
    refused(SC_EID_INVALID, client.register_event, EID[:-1] + "0", "E", DP)  # check digits
    refused(SC_BAD_REQUEST, client.register_event, EID, "", DP)
    refused(SC_BAD_REQUEST, client.register_event, EID, "E" * 256, DP)
    refused(SC_BAD_REQUEST, client.register_event, EID, "E", "")
    assert [(e.event_id, e.address) for e in smds.events.all()] == [("EVT-1", DP)]


def test_register_malformed_fields_refused(smds) -> None:
    body = {"eid": EID, "eventId": "E", "rspServerAddress": DP, "forwardingIndicator": "yes"}
    refused(SC_BAD_REQUEST, smds.register_event, body)
    refused(SC_BAD_REQUEST, smds.register_event, {**body, "forwardingIndicator": False, "eid": 5})
    refused(SC_FIELD_MISSING, smds.register_event, {"eid": EID, "eventId": "E"})
    assert smds.events.all() == []


def test_delete_unknown_event_refused(smds) -> None:
    refused(SC_EVENT_ID_UNKNOWN, es12(smds).delete_event, EID, "NOPE")


def test_same_event_id_for_two_eids(smds) -> None:
    client = es12(smds)
    client.register_event(EID, "EVT-1", DP)
    client.register_event(OTHER_EID, "EVT-1", DP)
    assert len(smds.events.all()) == 2


def test_alternative_smds_forwards_to_root_and_deletes_there() -> None:
    root = SmDs(PKI, address="localhost:0")
    with root.serve() as rs:
        root.address = f"localhost:{rs.port}"
        alt = SmDs(
            PKI,
            address="localhost:0",
            root=Es12Client(root.address, requester="alt", ca_pem=PKI.ci.pem),
        )
        with alt.serve() as als:
            alt.address = f"localhost:{als.port}"
            es12(alt).register_event(EID, "EVT-9", DP, forwarding=True)
            assert [(e.event_id, e.address) for e in root.events.all()] == [("EVT-9", alt.address)]
            assert alt.events.get(EID, "EVT-9").forwarded_to == root.address
            # The LPA asks the root and is sent on to the alternative SM-DS, then the SM-DP+.
            es10, lpa = lpa_for(new_card("euicc"))
            with es10:
                found = lpa.discover(root.address)
            assert found == [
                {"eventId": "EVT-9", "rspServerAddress": DP, "via": [root.address, alt.address]}
            ]
            es12(alt).delete_event(EID, "EVT-9")
            assert root.events.all() == [] and alt.events.all() == []


def test_root_unreachable_refuses_and_records_nothing() -> None:
    alt = SmDs(
        PKI,
        address="localhost:1",
        root=Es12Client("localhost:9", requester="alt", ca_pem=PKI.ci.pem, timeout=2),
    )
    refused(SC_SMDS_INACCESSIBLE, alt.register, EID, "E", DP, forward=True)
    assert alt.events.all() == []


def test_root_refusal_is_a_cascade_error_and_records_nothing() -> None:
    """The root SM-DS refuses the forwarded event: 8.9/4.2 "the (root) SM-DS raised an
    error" (lpac's es9p_errors.c), not the root's own code as if it were this SM-DS's."""
    root = SmDs(PKI, address="localhost:0")
    with root.serve() as rs:
        root.address = f"localhost:{rs.port}"
        root.register(EID, "E", "someone.else:1")  # the root has the event already
        alt = SmDs(
            PKI,
            address="localhost:1",
            root=Es12Client(root.address, requester="alt", ca_pem=PKI.ci.pem),
        )
        e = refused(SC_SMDS_ERROR, alt.register, EID, "E", DP, forward=True)
        assert "8.9.5/3.3" in str(e)  # the root's reason, for the operator to read
        assert alt.events.all() == []


# -- ES11 --------------------------------------------------------------------------------


def test_discover_returns_this_euiccs_events_only(smds) -> None:
    smds.register(EID, "EVT-1", DP)
    smds.register(EID, "EVT-2", "other.example:443")
    smds.register(OTHER_EID, "EVT-3", DP)
    rt = new_card("euicc")
    es10, lpa = lpa_for(rt)
    with es10:
        # The root SM-DS the card is configured with is not this one: name it.
        events = lpa.discover(smds.address, follow=False)
    assert [(e["eventId"], e["rspServerAddress"]) for e in events] == [
        ("EVT-1", DP),
        ("EVT-2", "other.example:443"),
    ]


def test_discover_with_no_event(smds) -> None:
    es10, lpa = lpa_for(new_card("euicc"))
    with es10:
        assert lpa.discover(smds.address) == []


def test_es11_refusals(smds) -> None:
    soft = SoftEs11(PKI)
    refused(SC_SMDS_ADDRESS_REFUSED, smds.initiate_authentication, soft.initiate("wrong:1"))
    refused(
        SC_TRANSACTION_UNKNOWN,
        smds.authenticate_client,
        {"transactionId": "00" * 16, "authenticateServerResponse": ""},
    )
    r1 = smds.initiate_authentication(soft.initiate(smds.address))
    # An EventID the eUICC names that this SM-DS does not hold for it.
    refused(SC_EVENT_ID_UNKNOWN, smds.authenticate_client, soft.authenticate(r1, "NOPE"))
    assert smds.session_state(r1["transactionId"]) == "failed"
    # The session is over: the same answer again is refused.
    refused(SC_TRANSACTION_UNKNOWN, smds.authenticate_client, soft.authenticate(r1, ""))


def test_es11_refuses_a_revoked_euicc_certificate() -> None:
    pki = create_pki(seed=b"smds revoked")
    ds = SmDs(pki, address="localhost:0", crls=[issue_crl(pki.eum, [pki.euicc.cert.serial_number])])
    ds.register(pki.eid, "EVT-1", DP)
    soft = SoftEs11(pki)
    r1 = ds.initiate_authentication(soft.initiate(ds.address))
    refused(SC_EUICC_CERT_INVALID, ds.authenticate_client, soft.authenticate(r1, ""))


def test_es11_names_one_event(smds) -> None:
    smds.register(EID, "EVT-1", DP)
    smds.register(EID, "EVT-2", DP)
    soft = SoftEs11(PKI)
    r1 = smds.initiate_authentication(soft.initiate(smds.address))
    r2 = smds.authenticate_client(soft.authenticate(r1, "EVT-2"))
    assert r2["eventEntries"] == [{"eventId": "EVT-2", "rspServerAddress": DP}]


def test_the_card_refuses_an_smds_of_another_ci(smds) -> None:
    rt = euicc_card(create_pki(seed=b"another CI"))
    es10, lpa = lpa_for(rt)
    with es10, pytest.raises(Es9Error):
        # The eUICC trusts only `other`'s CI: no CERT.DSauth it can verify.
        lpa.discover(smds.address)


# -- the store and the app, as a role built on the SM-DS extends them ------------------


def test_event_store_extends_with_a_table_and_routes(tmp_path) -> None:
    import httpx
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from host.servers.web import RoleServer

    store = EventStore(
        tmp_path / "ds.sqlite", extra_schema="CREATE TABLE IF NOT EXISTS certs (k TEXT)"
    )
    with store.store.transaction() as c:
        c.execute("INSERT INTO certs VALUES ('x')")
    ds = SmDs(PKI, address="localhost", store=store)

    async def hello(request):
        return JSONResponse({"certs": len(ds.store.query("SELECT * FROM certs"))})

    app = create_app(ds, extra=[Route("/relay/hello", hello)])
    with RoleServer(app) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/relay/hello").json() == {"certs": 1}
        r = client.post(
            "/gsma/rsp2/es12/registerEvent",
            json={"header": {}, "eid": EID, "eventId": "E1", "rspServerAddress": DP},
        )
        assert r.json()["header"]["functionExecutionStatus"]["status"] == "Executed-Success"
    assert [e.event_id for e in EventStore(tmp_path / "ds.sqlite").for_eid(EID)] == ["E1"]


@settings(max_examples=30, deadline=None)
@given(
    events=st.dictionaries(
        st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s),
        st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s),
        max_size=5,
    )
)
def test_es12_json_round_trip(events: dict[str, str]) -> None:
    """What ES12.RegisterEvent carries comes back from ES11 as eventEntries, unchanged."""
    ds = SmDs(PKI, address="localhost")
    for event_id, address in events.items():
        ds.register_event(
            {
                "eid": EID,
                "eventId": event_id,
                "rspServerAddress": address,
                "forwardingIndicator": False,
            }
        )
    entries = [e.to_json() for e in ds.events.for_eid(EID)]
    assert sorted((e["eventId"], e["rspServerAddress"]) for e in entries) == sorted(events.items())
    for event_id in events:
        ds.delete_event({"eid": EID, "eventId": event_id})
    assert ds.events.all() == []


# -- the command line ----------------------------------------------------------------------


def test_cli_register_events_delete(tmp_path, capsys) -> None:
    db = str(tmp_path / "ds.sqlite")
    assert main(["smds", "register", "--db", db, EID, "EVT-1", DP]) == 0
    assert main(["smds", "events", "--db", db, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"eventId": "EVT-1"' in out
    assert main(["smds", "register", "--db", db, EID, "EVT-1", DP]) == 1
    assert main(["smds", "delete", "--db", db, EID, "EVT-1"]) == 0
    assert main(["smds", "delete", "--db", db, EID, "EVT-1"]) == 1


def test_cli_lpa_discover(smds, tmp_path, capsys) -> None:
    card = str(tmp_path / "my.card")
    assert main(["card", "new", "--preset", "euicc", card]) == 0
    smds.register(EID, "EVT-1", DP)
    capsys.readouterr()
    assert main(["lpa", "discover", "--card", card, "--smds", smds.address]) == 0
    assert "EVT-1" in capsys.readouterr().out


def test_a_subclass_relays_more_beside_each_event() -> None:
    class Relay(SmDs):
        def event_entries(self, client, events):
            return [{**e.to_json(), "relayed": client.eid} for e in events]

    ds = Relay(PKI, address="localhost")
    ds.register(EID, "EVT-1", DP)
    soft = SoftEs11(PKI)
    r1 = ds.initiate_authentication(soft.initiate(ds.address))
    r2 = ds.authenticate_client(soft.authenticate(r1, ""))
    assert r2["eventEntries"] == [{"eventId": "EVT-1", "rspServerAddress": DP, "relayed": EID}]
