"""A profile download through the real PC/SC stack: pcscd + vpcd + pyscard.

The emulated eUICC (the "euicc" preset) sits in vpcd's first slot; the LPA
reaches its ISD-R through `PcscReader` exactly as it would a real eUICC in a
real reader (a logical channel, CLA 81, 61xx answered with GET RESPONSE over
T=1 or T=0), and the built-in SM-DP+ over HTTPS on loopback. Then the new
profile is enabled and answers AUTHENTICATE over PC/SC too. Skipped, with the
reason, when pcscd, vpcd or pyscard is missing (see conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from card.crypto.milenage import Milenage, generate_auth_vector
from host.lpa import Es10Client, Lpa, Step
from host.lpa.demo import demo_order
from host.pki import default_pki
from host.presets import PRESETS, new_card
from host.readers.pcsc import PcscReader
from host.servers.smdpp.server import OrderState, SmdpPlus
from host.usim import UsimSession, check_auth

pytestmark = [
    pytest.mark.pcsc,
    pytest.mark.skipif("euicc" not in PRESETS, reason="no euicc preset (applets.isdr) here"),
]


@pytest.fixture
def reader(serve) -> Iterator[PcscReader]:
    served = serve(new_card("euicc", rng_seed=6))
    r = PcscReader(served.reader)
    r.connect()
    yield r
    r.disconnect()


@pytest.fixture
def smdp() -> Iterator[SmdpPlus]:
    s = SmdpPlus(default_pki(), address="localhost")
    s.add_order(demo_order())
    with s.serve() as server:
        s.address = f"localhost:{server.port}"
        yield s


def test_download_over_pcsc(reader: PcscReader, smdp: SmdpPlus) -> None:
    pki = default_pki()
    order = demo_order()
    steps: list[Step] = []
    with Es10Client(reader) as es10:
        assert es10.channel == 1
        lpa = Lpa(es10, ca_pem=pki.ci.pem, on_step=steps.append)
        assert lpa.eid() == pki.eid
        result = lpa.download(f"LPA:1${smdp.address}${order.matching_id}")
        assert result.installed and result.notified
        assert [s.function for s in steps][-3:] == [
            "LoadBoundProfilePackage",
            "HandleNotification",
            "RemoveNotificationFromList",
        ]
        lpa.enable(result.iccid)
        (profile,) = lpa.profiles()
        assert (profile["iccid"], profile["state"]) == (order.full_iccid, "enabled")
    assert smdp.order_state(order.matching_id) == OrderState.INSTALLED

    usim = UsimSession(reader)
    usim.select_usim()
    alg = Milenage(order.k, order.opc)
    rand = os.urandom(16)
    res = usim.authenticate(
        rand, generate_auth_vector(alg, rand, (0x20).to_bytes(6, "big"), b"\x80\x00").autn
    )
    assert check_auth(res, alg, rand).ok
