"""Seed 001 over the air: the lock's chip asks by SMS, the applet arrives by SMS-PP (TS 102 226)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from card.crypto.rng import CardRng
from host.ota import ToolkitTerminal
from host.presets import ota_test_keysets
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.servers.smsc import Smsc, SmscClient, create_app
from host.servers.web import RoleServer
from host.systems.doorlock.ams import AppManagementServer
from host.systems.doorlock.card import DoorLockCard, Identifiers, SimIdentity, make_sim
from host.systems.doorlock.ota import AMS_ADDRESS, OtaDelivery, SmsGateway
from host.systems.repository.card import ChannelReader, open_channel

LOCK = SimIdentity("89882100000000001006", "001010000000100", "+0010100100")
PHONE = SimIdentity("89882100000000002020", "001010000000202", "+0010100202")
IMEI = "356938035643817"


class Recording(Reader):
    """A reader that keeps every byte that passed (the wire between modem and SIM)."""

    def __init__(self, inner: Reader) -> None:
        self.inner, self.seen = inner, bytearray()

    def transmit(self, apdu: bytes) -> bytes:
        resp = self.inner.transmit(apdu)
        self.seen += apdu + resp
        return resp


@pytest.fixture
def smsc_url() -> Iterator[str]:
    with RoleServer(create_app(Smsc()), name="smsc") as server:
        yield server.url


def test_a_missing_applet_arrives_over_the_air(smsc_url: str) -> None:
    sims = {"lock-1": make_sim(LOCK, rng_seed=1), "phone-2": make_sim(PHONE, rng_seed=2)}
    msisdns = {"lock-1": LOCK.msisdn, "phone-2": PHONE.msisdn}
    wires = {name: Recording(InProcessReader(rt)) for name, rt in sims.items()}
    terminals = {
        name: ToolkitTerminal(wires[name], msisdn=msisdns[name], smsc=SmscClient(smsc_url))
        for name in sims
    }
    for t in terminals.values():
        t.start()
    gateway = SmsGateway(SmscClient(smsc_url))
    delivery = OtaDelivery(
        gateway,
        msisdn_of=lambda d: msisdns[d],
        keyset_of=lambda d: ota_test_keysets()[0],
        page=lambda d: terminals[d].poll_smsc() and None,
    )
    ams = AppManagementServer(
        ":memory:", delivery, rng=CardRng(5), clock=lambda: datetime(2026, 12, 7, 2, 0),
        sms_address=AMS_ADDRESS,
    )  # fmt: skip
    ams.register_lock("lock-1", mac=bytes(6), sim=LOCK, combination="D")
    ams.register_phone("phone-2", imei=IMEI, sim=PHONE)
    result = ams.provision_lock("lock-1")
    assert result.receipt.ok and result.receipt.path == "ota-sms-pp", result.receipt
    # The lock's chip asks by SMS itself, through its terminal's SEND SHORT MESSAGE.
    reader = terminals["lock-1"].as_reader()
    lock = DoorLockCard(ChannelReader(reader, open_channel(reader)))
    lock.select()
    lock.challenge(1)
    lock.send_download_request(Identifiers(imei=IMEI, sim=PHONE).tlvs())
    (got,) = ams.poll_sms(gateway)
    assert not isinstance(got, Exception), got
    assert got.receipt.ok and got.device_id == "phone-2"
    phone = DoorLockCard(InProcessReader(sims["phone-2"]))
    phone.select()
    assert lock.collate(1, phone.answer(1, lock.challenge(1))).unlock
    # The door key went to both SIMs inside ciphered secured packets (KIc), never in clear.
    door_key = ams.device("lock-1")["door_key"]  # type: ignore[index]
    assert all(door_key not in w.seen for w in wires.values())
    log = ams.downloads()
    assert [(r["trigger"], r["path"], r["outcome"]) for r in log] == [
        ("provision", "ota-sms-pp", "installed"),
        ("lock-request", "ota-sms-pp", "installed"),
    ]


def test_the_roles_as_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`cardemu server smsc` and `cardemu server doorlock-ams --smsc`: a lock provisioned
    over the air while its modem polls the SMS centre."""
    import threading
    import time

    from host.systems.repository.demo import demo_tls
    from host.systems.repository.terminal import JsonClient
    from host.systems.servers import ServerProcess

    with ServerProcess("smsc", ["--db", str(tmp_path / "smsc.sqlite")]) as smsc:
        args = ["--db", str(tmp_path / "ams.sqlite"), "--smsc", smsc.url]
        with ServerProcess("doorlock-ams", args) as ams:
            client = JsonClient(ams.url, ca_pem=demo_tls().ca_pem, timeout=60)
            body = {"device_id": "lock-1", "mac": "02CA4DE0D001", "iccid": LOCK.iccid}
            client.request("POST", "/locks", {**body, "imsi": LOCK.imsi, "msisdn": LOCK.msisdn})
            rt = make_sim(LOCK, rng_seed=1)
            modem = ToolkitTerminal(
                InProcessReader(rt), msisdn=LOCK.msisdn, smsc=SmscClient(smsc.url)
            )
            modem.start()
            answer: dict[str, object] = {}

            def provision() -> None:
                answer.update(client.request("POST", "/locks/lock-1/provision", {"force": True}))

            worker = threading.Thread(target=provision)
            worker.start()
            deadline = time.monotonic() + 60
            while worker.is_alive() and time.monotonic() < deadline:
                modem.poll_smsc()  # the modem's side of the network
                time.sleep(0.05)
            worker.join(timeout=5)
    assert answer.get("outcome") == "installed", answer
    lock = DoorLockCard(InProcessReader(rt))
    lock.select()
    assert lock.status()["role"] == "lock"


def test_a_tear_at_every_nvm_write_of_the_remote_install(smsc_url: str) -> None:
    """The phone's SIM loses power at each NVM write of its install over the air in turn:
    afterwards a lock finds no applet, or a working one; a new request then installs it."""
    from card.nvm import PowerLoss
    from host.readers.base import ReaderError

    lock_rt, phone_rt = make_sim(LOCK, rng_seed=1), make_sim(PHONE, rng_seed=2)
    modems = {
        "lock-1": ToolkitTerminal(
            InProcessReader(lock_rt), msisdn=LOCK.msisdn, smsc=SmscClient(smsc_url)
        ),
        "phone-2": ToolkitTerminal(
            InProcessReader(phone_rt), msisdn=PHONE.msisdn, smsc=SmscClient(smsc_url)
        ),
    }
    for m in modems.values():
        m.start()
    gateway = SmsGateway(SmscClient(smsc_url))
    msisdns = {"lock-1": LOCK.msisdn, "phone-2": PHONE.msisdn}
    delivery = OtaDelivery(
        gateway,
        msisdn_of=lambda d: msisdns[d],
        keyset_of=lambda d: ota_test_keysets()[0],
        page=lambda d: modems[d].poll_smsc() and None,
        timeout=0.2,
    )
    ams = AppManagementServer(
        ":memory:", delivery, rng=CardRng(5), clock=lambda: datetime(2026, 12, 7, 2, 0),
        sms_address=AMS_ADDRESS,
    )  # fmt: skip
    ams.register_lock("lock-1", mac=bytes(6), sim=LOCK)
    ams.register_phone("phone-2", imei=IMEI, sim=PHONE)
    assert ams.provision_lock("lock-1").receipt.ok
    reader = modems["lock-1"].as_reader()
    lock = DoorLockCard(ChannelReader(reader, open_channel(reader)))
    lock.select()
    ids = Identifiers(imei=IMEI, sim=PHONE).tlvs()

    def request() -> object:
        lock.challenge(1)
        lock.send_download_request(ids)
        (got,) = ams.poll_sms(gateway)
        return got

    def working() -> bool:
        phone = DoorLockCard(InProcessReader(phone_rt))
        try:
            phone.select()
        except Exception:  # noqa: BLE001 - 6A82: no applet
            return False
        return lock.collate(1, phone.answer(1, lock.challenge(1))).unlock

    before = phone_rt.nvm.total_writes
    outcomes: list[str] = []
    n = 1
    while True:
        phone_rt.nvm.tear_after(n - 1)
        try:
            got = request()
        except (ReaderError, PowerLoss):
            got = None
        torn = not phone_rt.nvm.tear_armed
        phone_rt.nvm.tear_after(None)
        phone_rt.power_off()
        phone_rt.power_on()
        modems["phone-2"].start()
        ok = working()
        if not torn:  # the install finished before the n-th write: every write was walked
            assert ok and got is not None
            break
        outcomes.append("working" if ok else "absent")
        if ok:
            break  # torn after the applet became usable (its last write is make selectable)
        n += 1
    assert n > 5 and phone_rt.nvm.total_writes > before
    # The script's last write makes the applet selectable: a torn install is never visible.
    assert outcomes == ["absent"] * (n - 1)


def test_a_restarted_server_goes_on_above_its_counters(smsc_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The SCP80 counters live in the server's store: after a restart it still reaches the
    SIM; a server that forgot them (counting from 0 again) is refused as a replay."""
    from host.servers.web import Store
    from host.systems.doorlock.ams import SCHEMA
    from host.systems.doorlock.ota import StoredCounters

    rt = make_sim(PHONE, rng_seed=2)
    modem = ToolkitTerminal(InProcessReader(rt), msisdn=PHONE.msisdn, smsc=SmscClient(smsc_url))
    modem.start()
    db = str(tmp_path / "ams.sqlite")

    def incarnation(keep_counters: bool) -> AppManagementServer:
        store = Store(db, SCHEMA)
        delivery = OtaDelivery(
            SmsGateway(SmscClient(smsc_url)),
            msisdn_of=lambda d: PHONE.msisdn,
            keyset_of=lambda d: ota_test_keysets()[0],
            page=lambda d: modem.poll_smsc() and None,
            timeout=1.0,
            counters=StoredCounters(store) if keep_counters else None,
        )
        return AppManagementServer(
            store, delivery, rng=CardRng(5), clock=lambda: datetime(2026, 12, 7, 2, 0)
        )

    first = incarnation(True)
    first.register_lock("lock-1", mac=bytes(6), sim=LOCK)
    first.register_phone("phone-2", imei=IMEI, sim=PHONE)
    assert first.enrol_phone("phone-2", "lock-1").receipt.ok
    first.close()
    forgetful = incarnation(False)
    refused = forgetful.enrol_phone("phone-2", "lock-1").receipt
    assert not refused.ok and refused.statuses == (), refused
    forgetful.close()
    again = incarnation(True)
    result = again.enrol_phone("phone-2", "lock-1")
    assert result.receipt.ok, result.receipt
    again.close()
