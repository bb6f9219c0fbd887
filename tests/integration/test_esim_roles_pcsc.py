"""The consumer eSIM roles against the eUICC served through pcscd (vpcd + pyscard).

The same flow as tests/unit/test_es2plus_flow.py, with the LPA reaching the
emulated eUICC's ISD-R through the real PC/SC stack: an operator orders over
ES2+ with a confirmation code and an SM-DS event, the LPA discovers the event
(ES11), a wrong code is refused, the right one downloads, the profile is
enabled and every step reaches the operator. Then a revoked eUICC
certificate is refused by the SM-DP+. Skipped, with the reason, when pcscd,
vpcd or pyscard is missing (see conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from host.es9plus import SC_CC_REFUSED, SC_EUICC_CERT_INVALID, Es9Error
from host.lpa import ActivationCode, Es10Client, Lpa
from host.lpa.demo import demo_order
from host.pki import default_pki, issue_crl
from host.presets import PRESETS, new_card
from host.readers.pcsc import PcscReader
from host.servers.operator import Operator
from host.servers.smdpp.es2plus import Es2Client, OperatorLink
from host.servers.smdpp.saip import build_upp
from host.servers.smdpp.server import OrderState, SmdpPlus
from host.servers.smds import SmDs

pytestmark = [
    pytest.mark.pcsc,
    pytest.mark.skipif("euicc" not in PRESETS, reason="no euicc preset (applets.isdr) here"),
]

PKI = default_pki()


@pytest.fixture
def reader(serve) -> Iterator[PcscReader]:
    served = serve(new_card("euicc", rng_seed=8))
    r = PcscReader(served.reader)
    r.connect()
    yield r
    r.disconnect()


def test_es2_smds_cc_download_enable_over_pcsc(reader: PcscReader) -> None:
    with ExitStack() as stack:
        operator = Operator()
        op_port = stack.enter_context(operator.serve()).port
        smds = SmDs(PKI, address="localhost:0")
        smds.address = f"localhost:{stack.enter_context(smds.serve()).port}"
        smdp = SmdpPlus(
            PKI,
            address="localhost:0",
            operators={"OP": OperatorLink(f"localhost:{op_port}", tls=False)},
        )
        smdp.address = f"localhost:{stack.enter_context(smdp.serve()).port}"
        order = demo_order("unused")
        smdp.add_package(None, build_upp(order), profile_type="demo")
        es2 = Es2Client(smdp.address, requester="OP", ca_pem=PKI.ci.pem)
        iccid = es2.download_order(eid=PKI.eid, profile_type="demo")
        answer = es2.confirm_order(iccid, confirmation_code="2468", smds_address=smds.address)

        with Es10Client(reader) as es10:
            lpa = Lpa(es10, ca_pem=PKI.ci.pem)
            (event,) = lpa.discover(smds.address)
            assert event["eventId"] == answer["matchingId"]
            code = ActivationCode(event["rspServerAddress"], event["eventId"])
            with pytest.raises(Es9Error) as e:
                lpa.download(code, confirmation_code="1357")
            assert e.value.code == SC_CC_REFUSED
            result = lpa.download(code, confirmation_code="2468")
            assert result.installed and result.notified
            lpa.enable(result.iccid)
            assert [s["result"] for s in lpa.send_notifications()] == ["sent"]
        assert smdp.order(answer["matchingId"])["state"] == OrderState.INSTALLED
        assert smds.events.all() == []
        assert smdp.flush_progress()
        assert [r["notificationPointId"] for r in operator.reports()] == [1, 2, 1, 3, 4, 101]


def test_revoked_euicc_refused_over_pcsc(reader: PcscReader) -> None:
    crl = issue_crl(PKI.eum, [PKI.euicc.cert.serial_number])
    smdp = SmdpPlus(PKI, address="localhost:0", crls=[crl])
    smdp.add_order(demo_order("M-REV"))
    with smdp.serve() as server:
        smdp.address = f"localhost:{server.port}"
        with Es10Client(reader) as es10:
            lpa = Lpa(es10, ca_pem=PKI.ci.pem)
            with pytest.raises(Es9Error) as e:
                lpa.download(ActivationCode(smdp.address, "M-REV"))
            assert e.value.code == SC_EUICC_CERT_INVALID
            assert lpa.profiles() == []
