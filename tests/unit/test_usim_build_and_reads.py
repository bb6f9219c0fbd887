"""What the USIM keeps between commands and between cards, and that it changes nothing seen.

- `applets.usim.store.build_once`: a profile's file tree (and the platform MF)
  built once per process and stored as it came out: the card is the card a
  build makes, the first card of a process writes as the next one does, and a
  tear anywhere in the install leaves no trace of it.
- `CompactFsStore`'s reads kept while the card's `nvm_version` stays: a write,
  a rollback, are seen by the next read.
- `Slot.pin`'s record kept with the stored tuple it came from.
"""

from __future__ import annotations

import dataclasses

import pytest

from applets.usim import UICC_AID, UiccApplet
from applets.usim import store as usim_store
from applets.usim.applet import _parsed_profile
from card.nvm import PowerLoss
from card.runtime import CardRuntime
from card.uicc.builder import sample_profile
from tests.unit.usim_cards import select_usim, send, uicc, usim_card

PROFILE = sample_profile().to_bytes()
SELECT_MSISDN = "00A4000C026F40"
READ_1 = "00B2010400"
VERIFY_PIN1 = "002000010831323334FFFFFFFF"


def _card() -> CardRuntime:
    rt = CardRuntime(None, rng_seed=1)
    rt.install(UiccApplet, UICC_AID, PROFILE, default=True)
    rt.power_on()
    return rt


def _stored(rt: CardRuntime) -> dict[str, object]:
    return dict(rt.nvm.segment(rt.applet(UICC_AID)._ctx.owner))


def test_a_replayed_build_stores_what_a_build_stores() -> None:
    usim_store._BUILT.clear()
    built = _card()  # builds (into a scratch NVM), then stores
    first = built.nvm.total_writes
    assert any(k[0] == "files" for k in usim_store._BUILT if isinstance(k, tuple))
    replayed = _card()  # stores what the build left
    # The same writes on the first card of a process as on the next: a tear means the same.
    assert replayed.nvm.total_writes == first
    assert _stored(replayed) == _stored(built)
    assert replayed.nvm.used == built.nvm.used
    # ... and answers as the built one does.
    for rt in (built, replayed):
        select_usim(rt)
        send(rt, SELECT_MSISDN)
    assert send(replayed, READ_1) == send(built, READ_1)


def test_a_tear_at_any_write_of_a_replayed_install_leaves_no_profile() -> None:
    data = dataclasses.replace(_parsed_profile(PROFILE), iccid="8988211000000000017").to_bytes()
    uicc(_card()).install_profile(data)  # a second slot's tree, built once
    n = 0
    while True:
        rt = _card()
        app = uicc(rt)
        clean = _stored(rt)
        rt.nvm.tear_after(n)
        try:
            rt.call_in_context(app._ctx, app.install_profile, data)
        except PowerLoss:
            rt.nvm.power_up()
            assert _stored(rt) == clean, f"a tear at write {n} left a trace"
            n += 1
            continue
        break
    assert n > 100  # the walk went through every write of the tree (123 keys) and more
    assert "8988211000000000017" in [p.iccid for p in app.list_profiles()]


def test_reads_see_every_write_and_rollback() -> None:
    rt = usim_card()
    select_usim(rt)
    send(rt, SELECT_MSISDN)
    first, sw = send(rt, READ_1)
    assert sw == 0x9000 and send(rt, READ_1) == (first, sw)
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    new = bytes(len(first) - 14) + bytes.fromhex("0791447779078484ffffffffffff")
    assert send(rt, bytes.fromhex("00DC0104") + bytes((len(new),)) + new)[1] == 0x9000
    assert send(rt, READ_1) == (new, 0x9000)
    # A write rolled back (an aborted transaction) is not read again.
    app = uicc(rt)
    key = next(k for k in _stored(rt) if k.endswith("/6F40") and ".fs.z.ADF." in k)
    rt.nvm.begin()
    rt.nvm.write(app._ctx.owner, key, (b"\x01\x02",))
    # The command sees the write; the runtime aborts the transaction it left open.
    assert send(rt, READ_1)[0][:3] == b"\x01\x02\xff"
    assert not rt.nvm.in_transaction
    assert send(rt, READ_1) == (new, 0x9000)


def test_pin_records_follow_the_stored_tuple() -> None:
    wrong = "002000010831313131FFFFFFFF"
    rt = usim_card()
    select_usim(rt)
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    assert send(rt, wrong)[1] == 0x63C2
    assert send(rt, wrong)[1] == 0x63C1
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    assert send(rt, wrong)[1] == 0x63C2  # back at the limit after the correct one
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    # Behind the applet's back: a write, then one rolled back; the record follows each.
    app = uicc(rt)
    owner = app._ctx.owner
    key = next(k for k in _stored(rt) if k.endswith("pin.01"))
    stored = rt.nvm.read(owner, key)
    assert isinstance(stored, tuple)
    rt.nvm.begin()
    rt.nvm.write(owner, key, stored[:2] + (1,) + stored[3:])
    rt.nvm.abort()
    assert send(rt, wrong)[1] == 0x63C2
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    rt.nvm.write(owner, key, stored[:2] + (1,) + stored[3:])
    assert send(rt, wrong)[1] == 0x63C0
    assert send(rt, VERIFY_PIN1)[1] == 0x6983


@pytest.mark.parametrize("count", [3])
def test_cards_made_from_one_profile_share_its_values(count: int) -> None:
    cards = [_card() for _ in range(count)]
    stores = [_stored(rt) for rt in cards]
    shared = [k for k, v in stores[1].items() if isinstance(v, bytes | tuple) and v is stores[2][k]]
    assert len(shared) > 50  # the file tree's values are one object for every card
    # A card that writes stores its own value; the others keep theirs.
    for rt in cards[1:]:
        select_usim(rt)
        send(rt, SELECT_MSISDN)
    before = send(cards[2], READ_1)
    assert before[1] == 0x9000
    assert send(cards[1], VERIFY_PIN1)[1] == 0x9000
    new = bytes(len(before[0]) - 14) + bytes.fromhex("0791447779078484ffffffffffff")
    assert send(cards[1], bytes.fromhex("00DC0104") + bytes((len(new),)) + new)[1] == 0x9000
    assert send(cards[1], READ_1)[0] == new
    assert send(cards[2], READ_1) == before


def test_authenticate_follows_a_changed_service_table() -> None:
    """The services memo of AUTHENTICATE survives its own SQN write, never another write."""
    from card.crypto.milenage import Milenage, generate_auth_vector
    from card.uicc.builder import TEST_K, TEST_OPC
    from tests.unit.usim_cards import authenticate

    rt = usim_card()
    select_usim(rt)
    assert send(rt, VERIFY_PIN1)[1] == 0x9000
    alg = Milenage(TEST_K, TEST_OPC)

    def auth(seq: int) -> bytes:
        rand = seq.to_bytes(16, "big")
        v = generate_auth_vector(alg, rand, (seq << 5).to_bytes(6, "big"), b"\x80\x00")
        data, sw = authenticate(rt, rand, v.autn)
        assert sw == 0x9000 and data[0] == 0xDB
        return data

    with_kc = auth(0x41)
    assert len(auth(0x42)) == len(with_kc)  # the memo, moved on past the SQN write
    app = uicc(rt)
    slot, _ = app._current()
    assert slot is not None
    adf = app.__dict__["_services_memo"][1]
    ust = slot.fs.read(f"{adf}/6F38")
    assert isinstance(ust, bytes)
    # Service 27 (GSM access: Kc in the answer, TS 31.102 §7.1.2.1) off, behind the applet.
    cleared = ust[:3] + bytes((ust[3] & ~0x04,)) + ust[4:]
    rt.call_in_context(app._ctx, slot.fs.write, f"{adf}/6F38", cleared)
    assert len(auth(0x43)) == len(with_kc) - 9  # no Kc TLV (8 bytes and its length)
