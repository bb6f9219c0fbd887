"""Seed 003's roles one by one: the AuC, the MNO front end, a manager, the provider's log.

Each is the plain class on a SQLite file; the refusals and the idempotence the
all-or-nothing proof relies on are checked here directly.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from hypothesis import given
from hypothesis import strategies as st

from applets.profile_move.wire import SealError, Variant, binding_data, seal, unseal
from card.crypto.milenage import Milenage
from card.crypto.rng import CardRng
from card.uicc.builder import TEST_IMSI, TEST_K, TEST_OPC, sample_profile
from host.readers.inprocess import InProcessReader
from host.systems.profile_move.auc import Auc
from host.systems.profile_move.card import bind, make_ese
from host.systems.profile_move.common import Refused
from host.systems.profile_move.manager import ProfileManager
from host.systems.profile_move.mno import MnoFrontEnd, derive_key
from host.systems.profile_move.pki import demo_pki, ese_id_of
from host.systems.profile_move.provider import ProfileProvider
from host.systems.profile_move.terminal import Phone

PKI = demo_pki(0)
NEW_K = bytes(range(16, 32))


# -- the sealed box and the binding data ---------------------------------------------------


@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_seal_opens_with_the_key_and_header_only(plaintext: bytes, header: bytes) -> None:
    box = seal(PKI.provider.public, plaintext, header, CardRng(b"seed"))
    assert unseal(PKI.provider, box, header) == plaintext
    with pytest.raises(SealError):
        unseal(PKI.provider, box, header + b"\x00")
    with pytest.raises(SealError):
        unseal(PKI.other_provider, box, header)


@given(st.integers(0, 400), st.integers(0, 7))
def test_a_flipped_bit_anywhere_in_a_sealed_box_is_refused(position: int, bit: int) -> None:
    box = bytearray(seal(PKI.provider.public, b"profile" * 20, b"h", CardRng(b"s")))
    box[position % len(box)] ^= 1 << bit
    with pytest.raises(SealError):
        unseal(PKI.provider, bytes(box), b"h")


@given(st.text(min_size=1, max_size=20), st.binary(min_size=16, max_size=16), st.text(max_size=15))
def test_binding_data_is_injective(profile_id: str, ese_id: bytes, imsi: str) -> None:
    full = binding_data(Variant.FULL, profile_id, ese_id, imsi)
    # Moving a character between fields changes the bytes (TLV, not bare concatenation).
    assert full != binding_data(Variant.FULL, profile_id + "1", ese_id, imsi[1:] or "x")
    assert binding_data(Variant.NO_IMSI, profile_id, ese_id, imsi) != full
    assert binding_data(Variant.NO_ESE_ID, profile_id, ese_id, imsi) != full


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i < n on n threads released together; what each returned or raised."""
    out: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = work(i)
        except Exception as e:  # noqa: BLE001 - the caller asserts there is none
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


# -- the AuC ----------------------------------------------------------------------------------


def _auc(db: str) -> Auc:
    auc = Auc(db, PKI.k4)
    auc.provision(TEST_IMSI, TEST_K, TEST_OPC)
    return auc


def _update(auc: Auc, move_id: str, k: bytes = NEW_K) -> dict[str, Any]:
    opc = Milenage.from_op(k, bytes(16)).opc
    return auc.k_update(
        {
            "imsi": TEST_IMSI,
            "move_id": move_id,
            "k": aes_key_wrap(PKI.k4, k).hex(),
            "opc": aes_key_wrap(PKI.k4, opc).hex(),
        }
    )


def test_auc_k_update_is_idempotent_and_restore_undoes_only_its_move(tmp_path: Path) -> None:
    check_auc_k_update(str(tmp_path / "auc.sqlite"))


def check_auc_k_update(db: str) -> None:
    """The AuC's K update, its idempotence and its restore (also run on PostgreSQL)."""
    auc = _auc(db)
    assert _update(auc, "m1") == {"status": "switched"}
    assert _update(auc, "m1") == {"status": "switched"}  # again: the kept K is still the old
    assert auc.current_k(TEST_IMSI) == NEW_K
    assert auc.k_restore({"imsi": TEST_IMSI, "move_id": "other"}) == {"status": "unchanged"}
    assert auc.k_restore({"imsi": TEST_IMSI, "move_id": "m1"}) == {"status": "restored"}
    assert auc.current_k(TEST_IMSI) == TEST_K
    assert auc.k_restore({"imsi": TEST_IMSI, "move_id": "m1"}) == {"status": "unchanged"}
    # A late copy of the restored move's update does not switch again.
    assert _update(auc, "m1") == {"status": "restored"}
    assert auc.current_k(TEST_IMSI) == TEST_K


def test_two_aucs_answer_one_k_update_sent_twice_at_once_alike(tmp_path: Path) -> None:
    check_auc_k_update_race(str(tmp_path / "auc.sqlite"))


def check_auc_k_update_race(db: str, rounds: int = 5) -> None:
    """Steps 206/565: one move's K update arriving twice at once at two AuC processes (a
    provider's retry) switches once; both get "switched" (also run on PostgreSQL)."""
    aucs = [Auc(db, PKI.k4) for _ in range(2)]
    try:
        for n in range(rounds):
            aucs[0].provision(TEST_IMSI, TEST_K, TEST_OPC)
            got = at_once(2, lambda i, n=n: _update(aucs[i], f"race-{n}"))
            assert got == [{"status": "switched"}] * 2
            rows = aucs[0].store.query("SELECT * FROM updates WHERE move_id = ?", (f"race-{n}",))
            assert [r["action"] for r in rows] == ["update"]
            sub = aucs[0].store.query_one("SELECT * FROM subscribers WHERE imsi = ?", (TEST_IMSI,))
            assert bytes(sub["k"]) == NEW_K
            assert bytes(sub["prev_k"]) == TEST_K  # the old K kept, not the new one twice
    finally:
        for a in aucs:
            a.close()


def test_auc_restore_before_the_update_bars_it(tmp_path: Path) -> None:
    auc = _auc(str(tmp_path / "auc.sqlite"))
    assert auc.k_restore({"imsi": TEST_IMSI, "move_id": "m2"}) == {"status": "unchanged"}
    assert _update(auc, "m2") == {"status": "restored"}
    assert auc.current_k(TEST_IMSI) == TEST_K


def test_auc_refuses_a_locked_subscription_and_a_key_not_under_k4(tmp_path: Path) -> None:
    auc = _auc(str(tmp_path / "auc.sqlite"))
    auc.lock(TEST_IMSI)
    with pytest.raises(Refused) as e:
        _update(auc, "m3")
    assert e.value.status == 409 and auc.current_k(TEST_IMSI) == TEST_K
    auc.lock(TEST_IMSI, False)
    with pytest.raises(Refused) as e:
        auc.k_update({"imsi": TEST_IMSI, "move_id": "m4", "k": "00" * 24, "opc": "00" * 24})
    assert e.value.status == 400


class _Direct:
    """A client that calls the AuC's operations without HTTP."""

    def __init__(self, auc: Auc) -> None:
        self.auc = auc

    def request(self, method: str, path: str, body: Any = None) -> Any:
        return {"/vectors": self.auc.vectors, "/attach": self.auc.attach}[path](body)


def test_a_profile_whose_k_is_stale_cannot_attach_even_if_it_activates(tmp_path: Path) -> None:
    """The seed's safety net: the first profile, not deleted, fails AKA once K changed."""
    auc = _auc(str(tmp_path / "auc.sqlite"))
    profile = bind(sample_profile(), key=PKI.provider, certificate=PKI.provider_cert,
                   ese_id=ese_id_of(1), profile_id="P")  # fmt: skip
    rt = make_ese(1, PKI, profile=profile)
    phone = Phone("t1", InProcessReader(rt), power_cycle=lambda: None, ese_id="",
                  manager_url="", client=lambda url: _Direct(auc))  # fmt: skip
    active, detail = phone.activate(profile.iccid)  # enabled at manufacture, bound to eSE 1
    assert active and "USIM answers" in detail, detail
    assert phone.attach("auc").attached
    _update(auc, "m5")
    stale = phone.attach("auc")
    assert not stale.attached and "9862" in stale.detail  # the USIM found the MAC wrong


def test_a_copy_enabled_at_manufacture_is_not_taken_as_activated() -> None:
    """Regression: a profile bound to eSE 1, found enabled on eSE 2 (copied, enabled at
    manufacture), made EnableProfile answer profileNotInDisabledState, which the phone took
    as "in use"; the card refuses to activate it at power-up (FIG. 4) and its USIM is not
    there (SELECT 6A82). Now the phone checks the USIM answers and says it is not in use."""
    copy = bind(sample_profile(), key=PKI.provider, certificate=PKI.provider_cert,
                ese_id=ese_id_of(1), profile_id="P")  # fmt: skip
    phone = Phone("t2", InProcessReader(make_ese(2, PKI, profile=copy)),
                  power_cycle=lambda: None, ese_id="", manager_url="", client=None)  # fmt: skip
    active, detail = phone.activate(copy.iccid)
    assert not active and "enabled but not activated" in detail, detail
    assert phone.profiles() == [(copy.iccid, True)]  # enabled, yet not in use


# -- the MNO front end -----------------------------------------------------------------------


def _mno(db: str) -> MnoFrontEnd:
    mno = MnoFrontEnd(db, "http://127.0.0.1:9")
    mno.add_user("alice", "secret")
    mno.add_user("mallory", "other")
    mno.add_subscription("alice", "8988210000000000012", TEST_IMSI, "+1")
    return mno


def _proof(out: dict[str, Any], password: str) -> str:
    key = derive_key(password, bytes.fromhex(out["salt"]))
    return hmac.new(key, bytes.fromhex(out["challenge"]), "sha256").hexdigest()


def test_mno_authenticates_the_user_before_anything_moves(tmp_path: Path) -> None:
    check_mno_authenticates(str(tmp_path / "mno.sqlite"))


def check_mno_authenticates(db: str) -> None:
    """The MNO front end's request and user authentication (also run on PostgreSQL)."""
    mno = _mno(db)
    body = {"user": "alice", "msisdn": "+1", "source_ese": "A", "target_ese": "B"}
    out = mno.request_move(body)
    with pytest.raises(Refused) as e:
        mno.authenticate({"proof": _proof(out, "wrong")}, out["request_id"])
    assert e.value.status == 403
    assert not mno.tick()  # nothing to forward
    assert mno.authenticate({"proof": _proof(out, "secret")}, out["request_id"])["authenticated"]
    # Another user's subscription: authenticated, but refused.
    other = mno.request_move({**body, "user": "mallory"})
    with pytest.raises(Refused) as e:
        mno.authenticate({"proof": _proof(other, "other")}, other["request_id"])
    assert e.value.status == 403


# -- a manager ----------------------------------------------------------------------------------


def test_manager_keeps_one_order_per_id_and_redelivers_when_asked_again(tmp_path: Path) -> None:
    check_manager_orders(str(tmp_path / "m.sqlite"))


def check_manager_orders(db: str) -> None:
    """A manager's orders, once per id, answered once (also run on PostgreSQL)."""
    ese = ese_id_of(1).hex()
    pushed: list[str] = []
    m = ProfileManager(db, (ese,), push=lambda o: pushed.append(o["order_id"]))
    order = {"order_id": "o1", "move_id": "mv", "kind": "delete", "ese_id": ese,
             "callback": "http://127.0.0.1:9", "args": {"signature": "00"}}  # fmt: skip
    assert m.order(order) == {"state": "queued"}
    assert m.order(order) == {"state": "queued"}
    m.tick()
    assert pushed == ["o1"]
    m.result({"status": "ok"}, "o1")
    m.result({"status": "refused", "sw": "6982"}, "o1")  # a late second answer: the first stands
    assert m.pending({"ese_id": ese}) == {"orders": []}
    with pytest.raises(Refused):
        m.order({**order, "order_id": "o2", "ese_id": ese_id_of(2).hex()})  # not its eSE
    assert m.order(order) == {"state": "answered"}


# -- the provider's log ---------------------------------------------------------------------------


def test_provider_moves_once_per_request_id(tmp_path: Path) -> None:
    check_provider_moves_once(str(tmp_path / "p.sqlite"))


def check_provider_moves_once(db: str) -> None:
    """The provider's move log, one move per request id (also run on PostgreSQL)."""
    p = ProfileProvider(db, PKI)
    p.add_subscription("8988210000000000012", TEST_IMSI, "+1", "P")
    body = {"request_id": "r1", "msisdn": "+1", "source_ese": "AA", "target_ese": "BB"}
    first = p.create_move(body)
    assert p.create_move(body) == {"move_id": first["move_id"], "state": "requested"}
    with pytest.raises(Refused) as e:  # the same profile, another request: one move at a time
        p.create_move({**body, "request_id": "r2"})
    assert e.value.status == 409
    assert p.unfinished() == [first["move_id"]]
    assert p.events(first["move_id"])[0][:2] == (515, "requested")


def test_two_providers_answer_one_move_request_sent_twice_at_once_alike(tmp_path: Path) -> None:
    check_provider_move_request_race(str(tmp_path / "p.sqlite"))


def check_provider_move_request_race(db: str, rounds: int = 5) -> None:
    """Steps 515/620: one move request arriving twice at once at two provider processes
    makes one move; both callers get its ID (also run on PostgreSQL)."""
    providers = [ProfileProvider(db, PKI) for _ in range(2)]
    try:
        for n in range(rounds):
            iccid = f"89882100000000001{n:02d}"
            providers[0].add_subscription(iccid, f"00101000000{n:04d}", f"+{n}", "P")
            body = {"request_id": f"race-{n}", "iccid": iccid, "source_ese": "AA",
                    "target_ese": "BB"}  # fmt: skip
            got = at_once(2, lambda i, body=body: providers[i].create_move(body))
            assert isinstance(got[0], dict), got
            assert got == [{"move_id": got[0]["move_id"], "state": "requested"}] * 2
            rows = providers[0].store.query("SELECT * FROM moves WHERE iccid = ?", (iccid,))
            assert [r["move_id"] for r in rows] == [got[0]["move_id"]]
            assert [e[:2] for e in providers[0].events(got[0]["move_id"])] == [(515, "requested")]
    finally:
        for p in providers:
            p.close()


def test_a_local_role_serves_https_that_only_the_demo_ca_opens(tmp_path: Path) -> None:
    """The roles speak HTTPS like every other system's; a client trusting another CA refuses."""
    import ssl

    from host.systems.profile_move import resolver
    from host.systems.profile_move.common import LocalRole, move_ca_pem, move_tls
    from host.systems.repository.demo import demo_tls
    from host.systems.repository.terminal import JsonClient

    role = LocalRole(
        "move-resolver",
        lambda: resolver.Resolver(str(tmp_path / "resolver.sqlite")),
        resolver.create_app,
        lambda logic: logic.close(),
        tls=move_tls(),
    ).start()
    try:
        assert role.url.startswith("https://")
        JsonClient(role.url, ca_pem=move_ca_pem()).request(
            "PUT", "/providers/MNO", {"url": "https://localhost:1"}
        )
        role.restart()  # a new incarnation serves HTTPS too
        ok = JsonClient(role.url, ca_pem=move_ca_pem()).request("GET", "/providers/MNO")
        assert ok == {"url": "https://localhost:1"}
        with pytest.raises(ssl.SSLCertVerificationError):
            JsonClient(role.url, ca_pem=demo_tls(1).ca_pem).request("GET", "/providers/MNO")
    finally:
        role.stop()
