"""GET CHALLENGE before the authentication that opens secure messaging (`SmApplet.get_challenge`).

ISO/IEC 7816-4 §11.5.3: the key-pair applet and the repository card answer it the
same way (`card.sm.auth.CHALLENGE_SIZE` bytes, P1-P2 00 00); each refusal is
asserted on both, on the real applets.
"""

from __future__ import annotations

import pytest

from applets.keypair import KEYPAIR_AID, KeyPairApplet
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from card.sm.auth import CHALLENGE_SIZE
from host.bio.synthetic import make_dataset
from host.systems.repository.card import REPOSITORY_AID, make_card


def keypair_card() -> CardRuntime:
    rt = CardRuntime(rng_seed=11)
    rt.install(KeyPairApplet, KEYPAIR_AID, default=True)
    rt.power_on()
    return rt


def repository_card() -> CardRuntime:
    root = EcKeyPair.generate(P256, CardRng(5))
    rt = make_card(root, make_dataset(1, 2, seed=1).impressions[0][0], rng_seed=9)
    answer = rt.process(bytes((0, 0xA4, 4, 0, len(REPOSITORY_AID))) + REPOSITORY_AID)
    assert answer[-2] in (0x90, 0x61), answer.hex()  # selected (61xx: its FCI waits)
    return rt


@pytest.fixture(params=[keypair_card, repository_card], ids=["keypair", "repository"])
def card(request) -> CardRuntime:
    return request.param()


def test_a_fresh_challenge_each_time(card: CardRuntime) -> None:
    first = card.process(bytes((0, 0x84, 0, 0, CHALLENGE_SIZE)))
    second = card.process(bytes((0, 0x84, 0, 0, CHALLENGE_SIZE)))
    assert first[-2:] == second[-2:] == b"\x90\x00"
    assert len(first) == len(second) == CHALLENGE_SIZE + 2
    assert first != second


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("0084010008", "6A86"),  # P1 not 00
        ("0084000108", "6A86"),  # P2 not 00
        ("0084000010", "6700"),  # Le other than the challenge's size
        ("0084000000", "6700"),  # Le 256
    ],
)
def test_refusals(card: CardRuntime, apdu: str, sw: str) -> None:
    assert card.process(bytes.fromhex(apdu)).hex().upper() == sw
