"""Seed 000 end to end in-process: every refusal, each with nothing issued and a clear error.

The four servers run on the common web stack over real loopback HTTP (the
management servers over HTTPS with CERT.DPtls), the eUICC is an emulated
"euicc" card. Each refusal asserts what was *not* issued or stored: no
certificate at the authentication server, no order at the SM-DP+, no event at
the relay, no certificate on the phone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from host.pki import default_pki
from host.presets import new_card
from host.readers.inprocess import InProcessReader
from host.systems.ekyc.auth import AuthServer
from host.systems.ekyc.card import LocalAuthError, LocalAuthSession
from host.systems.ekyc.demo import CARRIERS, demo_pki, person
from host.systems.ekyc.http import JsonClient, Refused
from host.systems.ekyc.proofs import EkycCertificate, certificate_tbs
from host.systems.ekyc.roles import (
    InProcessRole,
    auth_role,
    auth_tls,
    mgmt_role,
    mgmt_tls,
    relay_role,
    relay_tls,
)
from host.systems.ekyc.terminal import PhoneStorage, Terminal, User, make_dak
from host.systems.ekyc.verifier import capture, still_capture

GSMA = default_pki()
WHO = person(0)
STRANGER = person(0, name="Taro Yamada")
PIN = b"2468"


@dataclass
class World:
    card: Any
    roles: dict[str, InProcessRole]
    urls: dict[str, str]
    storage: PhoneStorage

    def phone(self, user: User | None = None) -> Terminal:
        return Terminal(
            InProcessReader(self.card),
            relay_url=self.urls["relay"],
            ca_pem=GSMA.ci.pem,
            user=user or User.of(WHO, PIN),
            storage=self.storage,
        )

    def client(self, name: str) -> JsonClient:
        ca = demo_pki(0).ca.pem if name == "auth" else GSMA.ci.pem
        return JsonClient(self.urls[name], ca_pem=ca)

    # what was issued and stored, anywhere
    def certificates(self) -> int:
        return len(self.roles["auth"].logic.store.query("SELECT dak FROM certificates"))

    def orders(self, mgmt: str = "mgmt1") -> int:
        return len(self.roles[mgmt].logic.smdp.orders())

    def events(self) -> int:
        return len(self.roles["relay"].logic.events.all())

    def nothing_issued(self) -> None:
        assert self.certificates() == 0
        assert self.orders("mgmt1") == 0 and self.orders("mgmt2") == 0
        assert self.events() == 0
        assert self.storage.certificate is None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = {n: str(tmp_path / f"{n}.sqlite") for n in ROLES}
    with open_world(db) as w:
        yield w


#: the roles of the world, each with its own store
ROLES = ("auth", "relay", "mgmt1", "mgmt2")


@contextlib.contextmanager
def open_world(db: dict[str, str]) -> Iterator[World]:
    """The roles on their stores (`db`: role to SQLite path or PostgreSQL URL), a fresh card."""
    urls: dict[str, str] = {}
    roles: dict[str, InProcessRole] = {}
    with contextlib.ExitStack() as stack:
        roles["auth"] = stack.enter_context(
            InProcessRole("auth", lambda: auth_role(db["auth"]), tls=auth_tls())
        )
        urls["auth"] = roles["auth"].url
        roles["relay"] = stack.enter_context(
            InProcessRole(
                "relay", lambda: relay_role(db["relay"], auth_url=urls["auth"]), tls=relay_tls()
            )
        )
        urls["relay"] = roles["relay"].url
        for m, carrier in (("mgmt1", "carrier1"), ("mgmt2", "carrier2")):

            def build(m: str = m, carrier: str = carrier) -> Any:
                return mgmt_role(
                    carrier,
                    db[m],
                    auth_url=urls["auth"],
                    relay_url=urls["relay"],
                    address=f"localhost:{roles[m].port}",
                )

            roles[m] = InProcessRole(m, build, tls=mgmt_tls())
            stack.enter_context(roles[m])
            urls[m] = roles[m].url
        card = new_card("euicc")
        w = World(card, roles, urls, PhoneStorage(dict(WHO.document)))
        w.phone().first_start()
        yield w


def _apply(w: World, mgmt: str = "mgmt1") -> tuple[str, bytes]:
    app = w.client(mgmt).post("/contracts", {"plan": "basic", "customer": {"name": "x"}})
    return app["application"], bytes.fromhex(app["request"]["challenge"])


def _local_auth(w: World, challenge: bytes, pin: bytes = PIN) -> dict[str, Any]:
    with LocalAuthSession(InProcessReader(w.card)) as la:
        try:
            la.verify_pin(pin)
        except LocalAuthError:
            pass
        result = la.result(challenge)
        euicc, eum = la.certificates()
    eid = w.phone().eid()
    return {
        "eid": eid,
        "euiccCertificate": euicc.hex(),
        "eumCertificate": eum.hex(),
        "localAuth": result.hex(),
        "dak": make_dak(eid, WHO.document, os.urandom(16)),
    }


def _refused(call: Any, status: int, reason: str) -> Refused:
    with pytest.raises(Refused) as e:
        call()
    assert (e.value.status, e.value.reason) == (status, reason), e.value
    assert e.value.detail  # a clear error, said in words
    return e.value


# -- the happy path, through the terminal -----------------------------------------------------


def test_first_then_later_contract(world: World) -> None:
    check_first_then_later_contract(world)


def check_first_then_later_contract(world: World) -> None:
    """A first contract with eKYC, a later one without (also run on PostgreSQL)."""
    phone = world.phone()
    first = phone.contract(world.urls["mgmt1"])
    assert (first.kind, first.ekyc) == ("first", True)
    assert world.storage.certificate is not None
    later = phone.contract(world.urls["mgmt2"])
    assert (later.kind, later.ekyc) == ("later", False)
    assert world.certificates() == 1
    verifications = world.roles["auth"].logic.store.query("SELECT requester FROM verifications")
    assert [r["requester"] for r in verifications] == ["carrier1"]  # no eKYC for carrier 2
    assert world.events() == 0  # both installed: their events deleted


# -- local authentication -----------------------------------------------------------------------


def test_wrong_pin_releases_nothing_and_locks_out(world: World) -> None:
    user = User(lambda la: la.verify_pin(b"0000"), lambda req: capture(WHO.face, req))
    phone = world.phone(user)
    for left in (2, 1, 0):
        with pytest.raises(LocalAuthError) as e:
            phone.contract(world.urls["mgmt1"])
        assert e.value.tries_left == left
    with pytest.raises(LocalAuthError) as e:
        world.phone().contract(world.urls["mgmt1"])  # the right PIN, too late
    assert e.value.tries_left == 0
    world.nothing_issued()
    apps = world.roles["mgmt1"].logic.applications()
    assert {a["state"] for a in apps} == {"applied"}  # nothing beyond the application was sent
    assert world.storage.pending is None


def test_a_signed_failure_is_refused(world: World) -> None:
    app, challenge = _apply(world)
    info = _local_auth(world, challenge, pin=b"0000") | {"document": WHO.document}
    _refused(lambda: world.client("mgmt1").post(f"/contracts/{app}/information", info), 403,
             "local-auth")  # fmt: skip
    world.nothing_issued()
    assert world.roles["auth"].logic.store.query("SELECT id FROM verifications") == []


def test_tampered_local_auth_result_is_refused(world: World) -> None:
    app, challenge = _apply(world)
    info = _local_auth(world, challenge) | {"document": WHO.document}
    raw = bytearray(bytes.fromhex(info["localAuth"]))
    raw[-1] ^= 1
    info["localAuth"] = raw.hex()
    _refused(lambda: world.client("mgmt1").post(f"/contracts/{app}/information", info), 403,
             "local-auth")  # fmt: skip
    world.nothing_issued()
    assert world.roles["auth"].logic.store.query("SELECT id FROM verifications") == []


def test_replayed_local_auth_result_is_refused(world: World) -> None:
    app1, challenge1 = _apply(world)
    info = _local_auth(world, challenge1) | {"document": WHO.document}
    app2, _ = _apply(world)  # a new application: another challenge
    e = _refused(lambda: world.client("mgmt1").post(f"/contracts/{app2}/information", info), 403,
                 "local-auth")  # fmt: skip
    assert "challenge" in e.detail or "replayed" in e.detail
    world.nothing_issued()
    # ... and the refused application is consumed: the same result cannot be tried there again
    _refused(lambda: world.client("mgmt1").post(f"/contracts/{app2}/information", info), 409,
             "state")  # fmt: skip


# -- the authentication server's certificate (a later contract) ---------------------------------


def _later(world: World, cert: EkycCertificate) -> Refused:
    app, challenge = _apply(world, "mgmt2")
    info = _local_auth(world, challenge) | {"certificate": cert.to_json()}
    return _refused(
        lambda: world.client("mgmt2").post(f"/contracts/{app}/information", info),
        403,
        "certificate",
    )


def _cert(eid: str, *, key: Any = None, issuer: bytes | None = None) -> EkycCertificate:
    pki = demo_pki(0)
    signer = key or pki.auth
    serial, issued = bytes(16), 1_800_000_000
    return EkycCertificate(
        eid, serial, issued, signer.sign(certificate_tbs(eid, serial, issued)),
        issuer if issuer is not None else pki.auth.der,
    )  # fmt: skip


def test_certificate_for_another_eid_is_refused(world: World) -> None:
    other = "89049032000000000000000000000999"
    e = _later(world, _cert(other))
    assert "another EID" in e.detail
    assert world.orders("mgmt2") == 0 and world.events() == 0


def test_certificate_not_signed_by_the_auth_server_is_refused(world: World) -> None:
    eid = world.phone().eid()
    rogue = demo_pki(0).rogue
    # signed by another key under the real issuer certificate
    e = _later(world, _cert(eid, key=rogue))
    assert "not signed by the authentication server" in e.detail
    # signed by a server no trusted CA certified, with its own certificate
    e = _later(world, _cert(eid, key=rogue, issuer=rogue.der))
    assert "trusted CA" in e.detail
    assert world.orders("mgmt2") == 0 and world.events() == 0


def test_a_genuine_certificate_passes_without_ekyc(world: World) -> None:
    eid = world.phone().eid()
    world.storage.certificate = _cert(eid)
    done = world.phone().contract(world.urls["mgmt2"])
    assert (done.kind, done.ekyc) == ("later", False)
    assert world.roles["auth"].logic.store.query("SELECT id FROM verifications") == []


# -- the ID photo -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("camera", "what"),
    [
        (lambda req: capture(STRANGER.face, req), "does not match"),
        (lambda req: still_capture(WHO.face, req), "still image"),
        (lambda req: capture(WHO.face, {**req, "directions": req["directions"][::-1]}), "motion"),
    ],
    ids=["wrong-face", "still-image", "wrong-motion"],
)
def test_forged_photo_is_refused(world: World, camera: Any, what: str) -> None:
    phone = world.phone(User(lambda la: la.verify_pin(PIN), camera, PIN))
    e = _refused(lambda: phone.contract(world.urls["mgmt1"]), 403, "photo")
    assert what in e.detail
    world.nothing_issued()


def test_three_forged_photos_end_the_verification(world: World) -> None:
    phone = world.phone(User(lambda la: la.verify_pin(PIN), lambda r: still_capture(WHO.face, r)))
    _refused(lambda: phone.contract(world.urls["mgmt1"]), 403, "photo")
    for _ in range(2):
        _refused(phone.resume, 403, "photo")
    _refused(phone.resume, 403, "verification-failed")
    world.nothing_issued()
    states = world.roles["auth"].logic.store.query("SELECT state FROM verifications")
    assert [r["state"] for r in states] == ["failed"]


# -- keys -------------------------------------------------------------------------------------


def test_replayed_data_acquisition_key_is_refused(world: World) -> None:
    phone = world.phone()
    phone.contract(world.urls["mgmt1"])
    used = world.roles["mgmt1"].logic.applications()[0]["dak"]
    certificate = world.storage.certificate
    world.storage.certificate = None  # an attacker's phone, with the victim's key
    app, challenge = _apply(world, "mgmt2")
    info = _local_auth(world, challenge) | {"document": WHO.document, "dak": used}
    _refused(lambda: world.client("mgmt2").post(f"/contracts/{app}/information", info), 409,
             "replayed-key")  # fmt: skip
    assert world.certificates() == 1 and world.orders("mgmt2") == 0
    # the authentication server refuses it too, whoever asks
    auth = world.client("auth")
    body = {"eid": info["eid"], "dak": used, "document": WHO.document,
            "requester": "carrier2", "application": "X"}  # fmt: skip
    _refused(lambda: auth.post("/verifications", body), 409, "replayed-key")
    assert world.certificates() == 1
    world.storage.certificate = certificate


def test_a_key_replayed_at_another_carrier_on_a_later_contract_is_refused(world: World) -> None:
    phone = world.phone()
    phone.contract(world.urls["mgmt1"])
    used = world.roles["mgmt1"].logic.applications()[0]["dak"]
    app, challenge = _apply(world, "mgmt2")
    info = _local_auth(world, challenge) | {
        "certificate": world.storage.certificate.to_json(),  # type: ignore[union-attr]
        "dak": used,
    }
    _refused(lambda: world.client("mgmt2").post(f"/contracts/{app}/information", info), 409,
             "replayed-key")  # fmt: skip
    assert world.orders("mgmt2") == 0 and world.events() == 0
    assert world.roles["mgmt2"].logic.applications()[0]["state"] == "refused"


def test_relay_refuses_an_unknown_key(world: World) -> None:
    eid = world.phone().eid()
    relay = world.client("relay")
    _refused(lambda: relay.post("/certificate", {"dak": "AB" * 32, "eid": eid}), 404,
             "unknown-key")  # fmt: skip
    _refused(lambda: relay.post("/certificate", {"dak": "nope", "eid": eid}), 400, "bad-request")
    world.nothing_issued()


def test_relay_hands_a_certificate_only_to_its_eid_and_with_a_profile(world: World) -> None:
    phone = world.phone()
    phone.contract(world.urls["mgmt1"])
    used = world.roles["mgmt1"].logic.applications()[0]["dak"]
    relay = world.client("relay")
    other = "89049032000000000000000000000999"
    _refused(lambda: relay.post("/certificate", {"dak": used, "eid": other}), 403, "eid")
    # the profile is installed and its event deleted: the key fetches nothing any more
    _refused(lambda: relay.post("/certificate", {"dak": used, "eid": phone.eid()}), 409,
             "no-event")  # fmt: skip


def test_auth_server_issues_once_per_key(tmp_path: Path) -> None:
    auth = AuthServer(tmp_path / "a.sqlite", key=demo_pki(0).auth)
    dak = "EF" * 32
    eid = "89049032000000000000000000000163"
    body = {"eid": eid, "dak": dak, "document": WHO.document, "requester": "c1",
            "application": "A1"}  # fmt: skip
    first = auth.start(body)
    assert auth.start(body) == first  # a retry: the same answer
    photo = capture(WHO.face, first["photo_request"])
    assert auth.photo(first["verification"], {"requester": "c1", "photo": photo})["state"] == (
        "passed"
    )
    again = auth.photo(first["verification"], {"requester": "c1", "photo": photo})
    assert again["state"] == "passed"
    assert len(auth.store.query("SELECT * FROM certificates")) == 1
    with pytest.raises(Refused) as e:
        auth.start(body | {"application": "A2"})
    assert e.value.reason == "replayed-key"
    with pytest.raises(Refused) as e:
        auth.photo(first["verification"], {"requester": "c2", "photo": photo})
    assert e.value.reason == "requester"
    auth.close()


def test_carriers_derive_distinct_subscriber_keys() -> None:
    one, two = CARRIERS["carrier1"], CARRIERS["carrier2"]
    assert one.subscriber_keys("8900101000000000001") != two.subscriber_keys("8900101000000000001")
    assert one.subscriber_keys("8900101000000000001") == one.subscriber_keys("8900101000000000001")
