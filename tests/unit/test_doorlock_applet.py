"""The door-lock applet (seed 001): known answers, refusals, lock-out, the download request."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from applets.doorlock.protocol import request_signed_part
from card import tlv
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.sm.cvc import parse_public_key_template
from host.errors import ApduError
from host.readers.inprocess import InProcessReader
from host.systems.doorlock.card import DoorLockCard, Identifiers, SimIdentity
from tests.unit.doorlock_cards import (
    DOOR_KEY,
    LOCK_ID,
    LOCK_MAC,
    PHONE_ID,
    PHONE_IMEI,
    PHONE_SIM,
    install,
    issuer,
    lock_perso,
    lock_sim,
    phone_sim,
    session,
)

RC = bytes(range(0x10, 0x20))
RP = bytes(range(0x20, 0x30))


def _cmac(key: bytes, message: bytes) -> bytes:
    """AES-CMAC by pyca/cryptography, not the card's `card.crypto.cmac`."""
    c = CMAC(algorithms.AES(key))
    c.update(message)
    return c.finalize()


@pytest.fixture(scope="module")
def iss():  # type: ignore[no-untyped-def]
    return issuer()


@pytest.fixture
def pair(iss):  # type: ignore[no-untyped-def]
    lock_rt, phone_rt = lock_sim(iss), phone_sim(iss)
    return lock_rt, phone_rt, session(lock_rt), session(phone_rt)


# -- known answers ---------------------------------------------------------------------------


def test_shared_key_known_answer(pair) -> None:  # type: ignore[no-untyped-def]
    """The spec'd inputs, written out here, CMAC'd by another implementation."""
    lock_rt, phone_rt, lock, phone = pair
    lock_rt.rng.preload(RC)
    phone_rt.rng.preload(RP)
    challenge = lock.challenge(1)
    assert challenge == bytes.fromhex("7C1B8110") + RC + bytes.fromhex("5F2006") + LOCK_ID
    answer = phone.answer(1, challenge)
    mp = _cmac(DOOR_KEY, b"DOORLOCK\x01K" + RC + RP + b"\x06LOCK-1" + b"\x07PHONE-1")
    assert mp == bytes.fromhex("D8F6F80645ECA1BF80A050B66497860D")
    assert answer == tlv.build(0x7C, [(0x5F20, PHONE_ID), (0x81, RP), (0x82, mp)])
    decision = lock.collate(1, answer)
    assert decision.unlock and decision.sw == 0x9000
    ml = _cmac(DOOR_KEY, b"DOORLOCK\x01L" + RP + RC + b"\x07PHONE-1" + b"\x06LOCK-1")
    assert ml == bytes.fromhex("6241AC9981EDD069253AB18244834DFD")
    assert decision.proof == tlv.build(0x7C, [(0x82, ml)])
    assert phone.check_lock(1, decision.proof)


def test_certificate_method_verifies_independently(pair, iss) -> None:  # type: ignore[no-untyped-def]
    """The phone's ECDSA answer checks with its certified key over the spec'd input."""
    from card.sm.cvc import Cvc

    lock_rt, phone_rt, lock, phone = pair
    lock_rt.rng.preload(RC)
    phone_rt.rng.preload(RP)
    answer = tlv.Tlv.from_bytes(phone.answer(2, lock.challenge(2)))
    cert = Cvc.from_bytes(answer.find(0x7F21).to_bytes())  # type: ignore[union-attr]
    assert cert.chr == PHONE_ID and cert.verify(iss.key.public)
    signature = answer.find(0x82).value  # type: ignore[union-attr]
    signed = b"DOORLOCK\x02K" + RC + RP + b"\x06LOCK-1" + b"\x07PHONE-1"
    assert cert.public.verify(signed, signature, encoding="raw")
    decision = lock.collate(2, answer.to_bytes())
    assert decision.unlock and phone.check_lock(2, decision.proof)


def test_challenges_are_session_unique(pair) -> None:  # type: ignore[no-untyped-def]
    _, _, lock, _ = pair
    seen = {lock.challenge(1) for _ in range(20)}
    assert len(seen) == 20


# -- refusals ----------------------------------------------------------------------------------


def test_wrong_key_refused_and_counted(iss) -> None:  # type: ignore[no-untyped-def]
    lock_rt = lock_sim(iss)
    other = phone_sim(iss, door_key=bytes(16))
    lock, phone = session(lock_rt), session(other)
    decision = lock.collate(1, phone.answer(1, lock.challenge(1)))
    assert not decision.unlock and decision.sw == 0x63C4
    assert lock.status()["tries_left"] == 4


def test_replayed_answer_refused(pair) -> None:  # type: ignore[no-untyped-def]
    _, _, lock, phone = pair
    answer = phone.answer(1, lock.challenge(1))
    assert lock.collate(1, answer).unlock
    # Same session again: the challenge is spent.
    assert lock.collate(1, answer).sw == 0x6985
    # A new session: the old answer does not fit the new challenge (a try spent).
    lock.challenge(1)
    assert lock.collate(1, answer).sw == 0x63C4


@pytest.mark.parametrize("cut", [1, 8, 17])
def test_truncated_answer_refused_and_counted(pair, cut: int) -> None:  # type: ignore[no-untyped-def]
    _, _, lock, phone = pair
    answer = phone.answer(1, lock.challenge(1))
    decision = lock.collate(1, answer[:-cut])
    assert not decision.unlock and decision.sw == 0x6700
    assert lock.status()["tries_left"] == 4
    assert lock.collate(1, answer).sw == 0x6985  # the challenge went with it


def test_shortened_mac_refused(pair) -> None:  # type: ignore[no-untyped-def]
    """A well-formed answer whose MAC is cut to 8 bytes (a 'truncated MAC')."""
    _, _, lock, phone = pair
    obj = tlv.Tlv.from_bytes(phone.answer(1, lock.challenge(1)))
    items = [(c.tag, c.value[:8] if c.tag == 0x82 else c.value) for c in obj.children]
    assert lock.collate(1, tlv.build(0x7C, items)).sw == 0x6700


def test_lock_out_and_reset_by_the_issuer(iss) -> None:  # type: ignore[no-untyped-def]
    lock_rt = lock_sim(iss, try_limit=3)
    lock, bad = session(lock_rt), session(phone_sim(iss, door_key=bytes(16)))
    sws = [lock.collate(1, bad.answer(1, lock.challenge(1))).sw for _ in range(3)]
    assert sws == [0x63C2, 0x63C1, 0x6983]
    with pytest.raises(ApduError) as e:
        lock.challenge(1)
    assert e.value.sw == 0x6983
    good = session(phone_sim(iss))
    # Even the right key is refused now: no challenge is given.
    with pytest.raises(ApduError):
        good.answer(1, lock.challenge(1))
    # The issuer resets the counter (STORE DATA 82 through the ISD).
    install(lock_rt, tlv.build(0x82, b"\x03"), load=False)
    lock = session(lock_rt)
    assert lock.collate(1, good.answer(1, lock.challenge(1))).unlock


def test_lock_out_survives_power_loss(iss) -> None:  # type: ignore[no-untyped-def]
    lock_rt = lock_sim(iss, try_limit=1)
    lock, bad = session(lock_rt), session(phone_sim(iss, door_key=bytes(16)))
    assert lock.collate(1, bad.answer(1, lock.challenge(1))).sw == 0x6983
    lock_rt.power_off()
    lock_rt.power_on()
    with pytest.raises(ApduError) as e:
        session(lock_rt).challenge(1)
    assert e.value.sw == 0x6983


def test_certificate_of_another_issuer_refused(iss) -> None:  # type: ignore[no-untyped-def]
    lock = session(lock_sim(iss))
    rogue = session(phone_sim(issuer(99)))
    decision = lock.collate(2, rogue.answer(2, lock.challenge(2)))
    assert decision.sw == 0x6982 and lock.status()["tries_left"] == 4


def test_certificate_of_another_holder_refused(iss) -> None:  # type: ignore[no-untyped-def]
    """The phone's answer under a certificate issued to someone else."""
    lock = session(lock_sim(iss))
    phone = session(phone_sim(iss))
    other = session(phone_sim(iss, identity=b"PHONE-9", key_seed=13))
    answer = tlv.Tlv.from_bytes(phone.answer(2, lock.challenge(2)))
    foreign = tlv.Tlv.from_bytes(
        other.answer(2, bytes.fromhex("7C1B8110") + RC + b"\x5f\x20\x06LOCK-1")
    )
    items = [c if c.tag != 0x7F21 else foreign.find(0x7F21) for c in answer.children]
    assert lock.collate(2, tlv.build(0x7C, items)).sw == 0x6982  # type: ignore[arg-type]


def test_forged_signature_refused(pair) -> None:  # type: ignore[no-untyped-def]
    _, _, lock, phone = pair
    obj = tlv.Tlv.from_bytes(phone.answer(2, lock.challenge(2)))
    items = [(0x82, bytes(64)) if c.tag == 0x82 else c for c in obj.children]
    assert lock.collate(2, tlv.build(0x7C, items)).sw == 0x63C4


def test_method_not_offered(iss) -> None:  # type: ignore[no-untyped-def]
    lock = session(lock_sim(iss, methods=1))
    with pytest.raises(ApduError) as e:
        lock.challenge(2)
    assert e.value.sw == 0x6A86


def test_forged_lock_proof_refused_by_the_phone(pair) -> None:  # type: ignore[no-untyped-def]
    _, _, lock, phone = pair
    answer = phone.answer(1, lock.challenge(1))
    assert lock.collate(1, answer).unlock
    assert not phone.check_lock(1, tlv.build(0x7C, [(0x82, bytes(16))]))


def test_store_data_from_a_terminal_refused(pair) -> None:  # type: ignore[no-untyped-def]
    lock_rt, _, lock, _ = pair
    with pytest.raises(ApduError) as e:
        lock.send(0x80, 0xE2, 0x90, 0x00, tlv.build(0x82, b"\x0f"))
    assert e.value.sw == 0x6982


def test_incomplete_personalisation_refused(iss) -> None:  # type: ignore[no-untyped-def]
    """A lock without its door key is refused whole: nothing is written."""
    from host.systems.doorlock.card import install_script, make_sim
    from host.systems.doorlock.delivery import DirectGpDelivery

    rt = make_sim(SimIdentity("89882100000000009993", "001010000009999", "+001"), rng_seed=3)
    perso = lock_perso(iss)
    perso = perso.replace(tlv.build(0xC0, DOOR_KEY), b"")
    receipt = DirectGpDelivery({"s": lambda: InProcessReader(rt)}).deliver(
        "s", install_script(perso)
    )
    assert not receipt.ok and receipt.statuses[-1] == 0x6A80 and "STORE DATA" in receipt.detail
    # Not made selectable: to a lock it looks absent.
    with pytest.raises(ApduError) as e:
        DoorLockCard(InProcessReader(rt)).select()
    assert e.value.sw == 0x6A82


# -- the download request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("combination", "sim_ids", "lock_tags", "phone_tags"),
    [
        ("A", None, [0x80], [0x81]),
        ("B", None, [0x80], [0x82]),
        ("C", None, [0x82], [0x81]),
        ("D", None, [0x82], [0x82]),
        ("B", 0x83, [0x80], [0x83]),
        ("D", 0x84, [0x84], [0x84]),
        ("D", 0xFF, [0x82, 0x83, 0x84], [0x82, 0x83, 0x84]),
    ],
)
def test_download_request_names_both_and_is_signed(
    iss, combination: str, sim_ids: int | None, lock_tags: list[int], phone_tags: list[int]
) -> None:  # type: ignore[no-untyped-def]
    from applets.doorlock.protocol import ID_IMEI

    lock = session(lock_sim(iss, combination=combination, sim_ids=sim_ids))
    public = parse_public_key_template(lock.status()["public_key"])
    phone = Identifiers(imei=PHONE_IMEI, sim=PHONE_SIM).tlvs()
    lock.challenge(1)
    raw = lock.download_request(phone)
    request = tlv.Tlv.from_bytes(raw)
    items = {c.tag: c for c in request.children}
    assert [c.tag for c in items[0xA1].children] == lock_tags
    assert [c.tag for c in items[0xA2].children] == phone_tags
    if ID_IMEI in phone_tags:
        assert items[0xA2].find(ID_IMEI).value == PHONE_IMEI.encode()  # type: ignore[union-attr]
    assert items[0x85].value == b"\x00\x00\x00\x01"
    signed = request_signed_part(
        combination.encode(), items[0xA1].value, items[0xA2].value, LOCK_ID, 1
    )
    assert public.verify(signed, items[0x5F37].value, encoding="raw")
    mac = items[0xA1].find(0x80)
    assert mac is None or mac.value == LOCK_MAC
    if sim_ids != 0xFF:
        assert len(raw) <= 140  # one short message's user data (TS 23.040)


def test_download_request_only_during_a_presentation(pair) -> None:  # type: ignore[no-untyped-def]
    _, _, lock, phone = pair
    ids = Identifiers(imei=PHONE_IMEI, sim=PHONE_SIM).tlvs()
    with pytest.raises(ApduError) as e:
        lock.download_request(ids)
    assert e.value.sw == 0x6985
    lock.challenge(1)
    first = lock.download_request(ids)
    with pytest.raises(ApduError):
        lock.download_request(ids)  # the presentation is spent
    lock.challenge(1)
    second = lock.download_request(ids)
    assert tlv.Tlv.from_bytes(second).find(0x85).value == b"\x00\x00\x00\x02"  # type: ignore[union-attr]
    assert first != second
    with pytest.raises(ApduError) as e:
        phone.download_request(ids)  # a key cannot ask
    assert e.value.sw == 0x6985


def test_download_request_needs_the_combination_identifiers(iss) -> None:  # type: ignore[no-untyped-def]
    lock = session(lock_sim(iss, combination="A"))
    lock.challenge(1)
    with pytest.raises(ApduError) as e:
        lock.download_request(Identifiers(sim=PHONE_SIM).tlvs())  # A needs the IMEI
    assert e.value.sw == 0x6A80


def test_no_key_leaves_the_chip(pair) -> None:  # type: ignore[no-untyped-def]
    lock_rt, phone_rt, lock, phone = pair
    key = EcKeyPair.generate(P256, CardRng(11))
    secrets = [DOOR_KEY, key.private_bytes()]
    out = lock.status()
    out_bytes = repr(out).encode() + lock.challenge(1) + phone.answer(1, lock.challenge(1))
    assert not any(s in out_bytes for s in secrets)
