"""Seed 001's application management server: who may ask, whom it installs on, what it logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from card import tlv
from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from host.errors import ApduError
from host.readers.inprocess import InProcessReader
from host.servers.web import RoleServer
from host.systems.doorlock.ams import AppManagementServer, Refused, create_app
from host.systems.doorlock.card import DoorLockCard, Identifiers, SimIdentity, make_sim
from host.systems.doorlock.delivery import DirectGpDelivery
from host.systems.repository.terminal import JsonClient, ServerRefused
from tests.unit.doorlock_cards import issuer, lock_sim, session

LOCK_MAC = bytes.fromhex("02CA4DE0D001")
LOCK = SimIdentity("89882100000000001006", "001010000000100", "+0010100100")
PHONE2 = SimIdentity("89882100000000002020", "001010000000202", "+0010100202")
PHONE3 = SimIdentity("89882100000000002038", "001010000000203", "+0010100203")
IMEI2, IMEI3 = "356938035643817", "356938035643825"


class World:
    """Two SIMs of phones, a lock's SIM, the server (in memory) and its clock."""

    def __init__(
        self, combination: str = "B", sim_ids: int = 0x82, store: str = ":memory:"
    ) -> None:
        self.now = datetime(2026, 12, 7, 2, 0)
        self.sims: dict[str, CardRuntime] = {
            "lock-1": make_sim(LOCK, rng_seed=1),
            "phone-2": make_sim(PHONE2, rng_seed=2),
            "phone-3": make_sim(PHONE3, rng_seed=3),
        }
        self.delivered: list[str] = []

        def route(name: str) -> Any:
            def reader() -> InProcessReader:
                self.delivered.append(name)
                return InProcessReader(self.sims[name])

            return reader

        delivery = DirectGpDelivery({n: route(n) for n in self.sims})
        self.ams = AppManagementServer(store, delivery, rng=CardRng(5), clock=lambda: self.now)
        self.ams.register_lock(
            "lock-1", mac=LOCK_MAC, sim=LOCK, combination=combination, sim_ids=sim_ids
        )
        self.ams.register_phone("phone-2", imei=IMEI2, sim=PHONE2)
        self.ams.register_phone("phone-3", imei=IMEI3, sim=PHONE3)
        assert self.ams.provision_lock("lock-1").receipt.ok
        self.delivered.clear()
        self.lock = session(self.sims["lock-1"])

    def request(self, ids: Identifiers) -> bytes:
        self.lock.challenge(1)
        return self.lock.download_request(ids.tlvs())

    def has_applet(self, name: str) -> bool:
        try:
            DoorLockCard(InProcessReader(self.sims[name])).select()
        except ApduError as e:
            assert e.sw == 0x6A82
            return False
        return True


@pytest.fixture
def world() -> World:
    return World()


def test_a_registered_locks_request_installs_on_the_named_phone(world: World) -> None:
    check_request_installs(world)


def check_request_installs(world: World) -> None:
    """A lock's download request installs on the named phone (also run on PostgreSQL)."""
    result = world.ams.download(world.request(Identifiers(imei=IMEI2, sim=PHONE2)))
    assert result.receipt.ok and result.device_id == "phone-2"
    assert world.delivered == ["phone-2"] and not world.has_applet("phone-3")
    phone = session(world.sims["phone-2"])
    assert world.lock.collate(1, phone.answer(1, world.lock.challenge(1))).unlock
    assert world.lock.collate(2, phone.answer(2, world.lock.challenge(2))).unlock
    log = world.ams.downloads()
    assert [(r["trigger"], r["requester"], r["device_id"], r["outcome"]) for r in log] == [
        ("provision", None, "lock-1", "installed"),
        ("lock-request", "lock-1", "phone-2", "installed"),
    ]


def test_an_unregistered_locks_request_is_refused(world: World) -> None:
    """A lock chip the server never registered (another issuer's), with its own identifiers."""
    stranger = session(lock_sim(issuer(99)))
    stranger.challenge(1)
    request = stranger.download_request(Identifiers(imei=IMEI2, sim=PHONE2).tlvs())
    with pytest.raises(Refused) as e:
        world.ams.download(request)
    assert e.value.status == 403
    assert world.delivered == [] and len(world.ams.downloads()) == 1


def test_a_chip_claiming_a_registered_locks_identifiers_is_refused() -> None:
    """An impostor chip personalised with lock-1's identifiers but not lock-1's key."""
    world = World(combination="D")
    from applets.doorlock.protocol import ROLE_LOCK
    from card.crypto.keys import P256, EcKeyPair
    from host.systems.doorlock.card import personalisation
    from tests.unit.doorlock_cards import install

    fake = make_sim(LOCK, rng_seed=9)
    perso = personalisation(
        role=ROLE_LOCK,
        methods=1,
        identity=b"lock-1",  # the registered lock's identity, and (D) its SIM's identifiers
        shared_key=bytes(16),
        key=EcKeyPair.generate(P256, CardRng(77)),
        lock_ids=Identifiers(mac=LOCK_MAC, sim=LOCK),
        combination="D",
    )
    install(fake, perso)
    card = session(fake)
    card.challenge(1)
    request = card.download_request(Identifiers(imei=IMEI2, sim=PHONE2).tlvs())
    with pytest.raises(Refused) as e:
        world.ams.download(request)
    assert e.value.status == 403 and "not signed" in str(e.value)
    assert world.delivered == []


def test_a_tampered_request_is_refused(world: World) -> None:
    request = world.request(Identifiers(imei=IMEI2, sim=PHONE2))
    forged = request.replace(PHONE2.iccid.encode(), PHONE3.iccid.encode())
    forged = forged.replace(PHONE2.imsi.encode(), PHONE3.imsi.encode())
    forged = forged.replace(PHONE2.msisdn.encode(), PHONE3.msisdn.encode())
    assert forged != request
    with pytest.raises(Refused) as e:
        world.ams.download(forged)
    assert e.value.status == 403 and world.delivered == []


def test_a_replayed_request_is_refused(world: World) -> None:
    request = world.request(Identifiers(imei=IMEI2, sim=PHONE2))
    assert world.ams.download(request).receipt.ok
    with pytest.raises(Refused) as e:
        world.ams.download(request)
    assert e.value.status == 409 and world.delivered == ["phone-2"]


def test_identifiers_naming_two_phones_install_nothing() -> None:
    """The request names phone-2's ICCID with phone-3's IMSI: no phone is 'the' phone."""
    world = World(sim_ids=0xFF)  # a lock whose requests carry all of a SIM's identifiers
    mixed = Identifiers(sim=SimIdentity(PHONE2.iccid, PHONE3.imsi, PHONE2.msisdn))
    with pytest.raises(Refused) as e:
        world.ams.download(world.request(mixed))
    assert e.value.status == 409
    assert world.delivered == [] and not world.has_applet("phone-2")
    assert not world.has_applet("phone-3")


def test_a_phone_nobody_registered_gets_nothing(world: World) -> None:
    unknown = SimIdentity("89882100000000009991", "001010000009999", "+0010109999")
    with pytest.raises(Refused) as e:
        world.ams.download(world.request(Identifiers(sim=unknown)))
    assert e.value.status == 404 and world.delivered == []


def test_malformed_requests_are_refused(world: World) -> None:
    for bad in (b"", b"\xe1\x00", tlv.build(0xE1, [(0x80, b"Z")])):
        with pytest.raises(Refused) as e:
            world.ams.download(bad)
        assert e.value.status == 400


def test_pre_provisioning_waits_for_the_night(world: World) -> None:
    world.now = datetime(2026, 12, 7, 14, 0)
    with pytest.raises(Refused) as e:
        world.ams.provision_lock("lock-1")
    assert e.value.status == 409 and world.delivered == []
    world.now = datetime(2026, 12, 7, 23, 30)
    world.sims["lock-1"].power_off()  # at night the controller is idle: nothing selected
    world.sims["lock-1"].power_on()
    # Again at night: the script deletes and reinstalls (the lock keeps working).
    assert world.ams.provision_lock("lock-1").receipt.ok
    lock = session(world.sims["lock-1"])
    assert lock.status()["role"] == "lock" and lock.status()["counter"] == 0


def test_a_tear_at_every_nvm_write_of_the_install(world: World) -> None:
    """Phone-2's SIM loses power at each NVM write of its install in turn: afterwards it has
    no applet (a lock sees 6A82) or a working one; and a new request then installs it."""
    rt = world.sims["phone-2"]
    ids = Identifiers(imei=IMEI2, sim=PHONE2)
    probe = World()
    before = probe.sims["phone-2"].nvm.total_writes
    assert probe.ams.download(probe.request(ids)).receipt.ok
    writes = probe.sims["phone-2"].nvm.total_writes - before
    assert writes > 5
    outcomes = set()
    for n in range(1, writes + 1):
        rt.nvm.tear_after(n - 1)
        result = world.ams.download(world.request(ids))
        rt.nvm.tear_after(None)
        rt.power_off()
        rt.power_on()
        if world.has_applet("phone-2"):
            phone = session(rt)
            assert world.lock.collate(1, phone.answer(1, world.lock.challenge(1))).unlock, n
            outcomes.add("working")
        else:
            outcomes.add("absent")
            assert not result.receipt.ok
    # The script's last write makes the applet selectable: a torn install is never visible.
    assert outcomes == {"absent"}
    assert world.ams.download(world.request(ids)).receipt.ok
    phone = session(rt)
    assert world.lock.collate(2, phone.answer(2, world.lock.challenge(2))).unlock


def test_the_http_routes(world: World) -> None:
    with RoleServer(create_app(world.ams), name="ams") as server:
        client = JsonClient(server.url)
        request = world.request(Identifiers(imei=IMEI2, sim=PHONE2))
        answer = client.request("POST", "/download-requests", {"request": request.hex()})
        assert answer["outcome"] == "installed" and answer["device_id"] == "phone-2"
        with pytest.raises(ServerRefused) as e:
            client.request("POST", "/download-requests", {"request": request.hex()})
        assert e.value.status == 409
        with pytest.raises(ServerRefused) as e:
            client.request("POST", "/download-requests", {"request": "zz"})
        assert e.value.status == 400
        client.request(
            "POST",
            "/phones",
            {"device_id": "phone-9", "imei": "1", "iccid": "2", "imsi": "3", "msisdn": "4"},
        )
        with pytest.raises(ServerRefused) as e:
            client.request(
                "POST",
                "/phones",
                {"device_id": "phone-9", "imei": "5", "iccid": "6", "imsi": "7", "msisdn": "8"},
            )
        assert e.value.status == 409
        log = client.request("GET", "/downloads")["downloads"]
        assert [r["outcome"] for r in log] == ["installed", "installed"]


def test_cardemu_server_doorlock_ams_runs_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The role as its own process: HTTPS with the demo certificate, a registry, no SIM path."""
    from host.systems.repository.demo import demo_tls
    from host.systems.servers import ServerProcess

    with ServerProcess("doorlock-ams", ["--db", str(tmp_path / "ams.sqlite")]) as proc:
        assert proc.url.startswith("https://")
        client = JsonClient(proc.url, ca_pem=demo_tls().ca_pem)
        lock = {"device_id": "lock-1", "mac": LOCK_MAC.hex(), "iccid": LOCK.iccid}
        client.request("POST", "/locks", {**lock, "imsi": LOCK.imsi, "msisdn": LOCK.msisdn})
        with pytest.raises(ServerRefused) as e:  # alone it reaches no SIM
            client.request("POST", "/locks/lock-1/provision", {"force": True})
        assert e.value.status == 503
        assert client.request("GET", "/downloads") == {"downloads": []}


def test_the_personalisation_travels_encrypted() -> None:
    """The door key and the chip key go to the SIM under SCP03 C-DECRYPTION, never in clear."""
    from card.crypto.keys import P256, EcKeyPair
    from host.readers.base import Reader
    from host.systems.doorlock.card import install_script
    from tests.unit.doorlock_cards import DOOR_KEY, issuer, lock_perso

    class Recording(Reader):
        def __init__(self, inner: Reader) -> None:
            self.inner, self.seen = inner, bytearray()

        def transmit(self, apdu: bytes) -> bytes:
            resp = self.inner.transmit(apdu)
            self.seen += apdu + resp
            return resp

    rt = make_sim(LOCK, rng_seed=1)
    wire = Recording(InProcessReader(rt))
    receipt = DirectGpDelivery({"lock": lambda: wire}).deliver(
        "lock", install_script(lock_perso(issuer()))
    )
    assert receipt.ok
    chip_key = EcKeyPair.generate(P256, CardRng(11)).private_bytes()  # lock_perso's key_seed
    assert DOOR_KEY not in wire.seen and chip_key not in wire.seen
    assert session(rt).status()["role"] == "lock"
