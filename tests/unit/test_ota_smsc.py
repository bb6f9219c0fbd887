"""The SMS-centre stand-in: submit, poll per MSISDN, and OTA through it end to end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from card.ota import sms
from host.ota import OtaSender, RamScript, ToolkitTerminal
from host.presets import new_card, ota_test_keysets
from host.readers.inprocess import InProcessReader
from host.servers.smsc import SCHEMA, Smsc, SmscClient, SmscError, create_app
from host.servers.web import RoleServer, Store

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+491701234567"
OTA_PLATFORM = "12345"


@pytest.fixture
def smsc_url() -> object:
    with RoleServer(create_app(Smsc()), name="smsc") as server:
        yield server.url


def test_submit_then_inbox_once(smsc_url: str) -> None:
    with SmscClient(smsc_url) as client:
        n = client.submit(OTA_PLATFORM, PHONE, b"\x02\x70\x00abc")
        assert n >= 1
        got = client.inbox(PHONE)
        assert len(got) == 1
        sender, tpdu = got[0]
        deliver = sms.SmsDeliver.from_bytes(tpdu)
        assert sender == OTA_PLATFORM and deliver.originator.digits == OTA_PLATFORM
        assert deliver.user_data == b"\x02\x70\x00abc" and deliver.pid == 0x7F
        assert client.inbox(PHONE) == []  # delivered once


def test_submit_tpdu_goes_to_its_destination(smsc_url: str) -> None:
    tpdu = sms.SmsSubmit(sms.Address("12345", 0x81), b"\x02\x71\x00xyz").to_bytes()
    with SmscClient(smsc_url) as client:
        client.submit_tpdu(PHONE, tpdu)
        ((sender, delivered),) = client.inbox("12345")
        assert sender == PHONE
        assert sms.SmsDeliver.from_bytes(delivered).user_data == b"\x02\x71\x00xyz"


def test_refusals(smsc_url: str) -> None:
    with pytest.raises(SmscError):
        Smsc().submit("not a number", PHONE, b"")
    with pytest.raises(SmscError):
        Smsc().submit(OTA_PLATFORM, PHONE, bytes(141))
    r = httpx.post(
        smsc_url + "/submit", json={"from": OTA_PLATFORM, "to": PHONE, "user_data": "zz"}
    )
    assert r.status_code == 400
    r = httpx.post(smsc_url + "/submit-tpdu", json={"from": PHONE, "tpdu": "00"})
    assert r.status_code == 400
    assert httpx.get(smsc_url + "/inbox/abc").status_code == 400


def test_remote_management_through_the_smsc(smsc_url: str) -> None:
    """Server -> SMSC -> phone's terminal -> SIM; the PoR back by SMS-SUBMIT -> SMSC -> server."""
    from card.ota.scp80 import Spi

    rt = new_card("usim-ota", rng_seed=4)
    reader = InProcessReader(rt)
    reader.connect()
    with SmscClient(smsc_url) as phone_link, SmscClient(smsc_url) as server_link:
        terminal = ToolkitTerminal(reader, msisdn=PHONE, smsc=phone_link)
        terminal.start()
        sender = OtaSender(ota_test_keysets()[0], spi=Spi(por_by_submit=True))
        msg = sender.secure(RamScript().get_status(0x80).expanded())
        for tpdu in msg.tpdus:
            deliver = sms.SmsDeliver.from_bytes(tpdu)
            server_link.submit(OTA_PLATFORM, PHONE, deliver.user_data)
        results = terminal.poll_smsc()
        assert [r.acknowledged for r in results] == [True] * len(msg.tpdus)
        ((_, por_tpdu),) = server_link.inbox(OTA_PLATFORM)
        por = sender.open_por(sms.SmsDeliver.from_bytes(por_tpdu).user_data)
        assert por.ok


def test_cardemu_server_smsc_runs_alone(tmp_path: Path) -> None:
    db = tmp_path / "smsc.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "server", "smsc", "--port", "0", "--db", str(db)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stderr.readline()
        m = re.search(r"smsc: serving on (http://127\.0\.0\.1:\d+)", line)
        assert m, f"no start line: {line!r}"
        with SmscClient(m.group(1)) as client:
            client.submit(OTA_PLATFORM, PHONE, b"hello", udhi=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
    rows = Smsc(Store(db, SCHEMA)).take_inbox(PHONE)
    assert [m.user_data for m in rows] == [b"hello"]
