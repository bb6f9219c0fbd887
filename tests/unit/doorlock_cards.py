"""Door-lock SIMs for the unit tests: a lock and phones, personalised through the ISD."""

from __future__ import annotations

from dataclasses import dataclass

from applets.doorlock.protocol import ROLE_KEY, ROLE_LOCK
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from card.sm.cvc import issue_cvc
from host.readers.inprocess import InProcessReader
from host.systems.doorlock.card import (
    DoorLockCard,
    Identifiers,
    SimIdentity,
    install_script,
    make_sim,
    personalisation,
)
from host.systems.doorlock.delivery import DirectGpDelivery

DOOR_KEY = bytes(range(16))
LOCK_ID, PHONE_ID = b"LOCK-1", b"PHONE-1"
LOCK_SIM = SimIdentity("89882100000000001006", "001010000000100", "+0010100100")
PHONE_SIM = SimIdentity("89882100000000002012", "001010000000201", "+0010100201")
LOCK_MAC = bytes.fromhex("02CA4DE0D001")
PHONE_IMEI = "356938035643809"


@dataclass
class Issuer:
    key: EcKeyPair

    def certify(self, holder: bytes, key: EcKeyPair) -> bytes:
        return issue_cvc(self.key.cryptography_key, b"DLISSUER", holder, key.public)


def issuer(seed: int = 7) -> Issuer:
    return Issuer(EcKeyPair.generate(P256, CardRng(seed)))


def install(rt: CardRuntime, perso: bytes, *, load: bool = True) -> None:
    """The applet onto the SIM (or personalised again) through its ISD, over SCP03."""
    receipt = DirectGpDelivery({"sim": lambda: InProcessReader(rt)}).deliver(
        "sim", install_script(perso, load=load)
    )
    assert receipt.ok, receipt.to_json()


def lock_perso(iss: Issuer, *, methods: int = 3, try_limit: int = 5, combination: str = "D",
               key_seed: int = 11, sim_ids: int | None = None) -> bytes:  # fmt: skip
    key = EcKeyPair.generate(P256, CardRng(key_seed))
    return personalisation(
        role=ROLE_LOCK,
        methods=methods,
        identity=LOCK_ID,
        shared_key=DOOR_KEY if methods & 1 else None,
        key=key,
        certificate=iss.certify(LOCK_ID, key) if methods & 2 else None,
        issuer=iss.key.public if methods & 2 else None,
        lock_ids=Identifiers(mac=LOCK_MAC, sim=LOCK_SIM),
        try_limit=try_limit,
        combination=combination,
        sim_ids=sim_ids,
    )


def phone_perso(iss: Issuer, *, methods: int = 3, door_key: bytes = DOOR_KEY,
                identity: bytes = PHONE_ID, key_seed: int = 12) -> bytes:  # fmt: skip
    key = EcKeyPair.generate(P256, CardRng(key_seed))
    return personalisation(
        role=ROLE_KEY,
        methods=methods,
        identity=identity,
        shared_key=door_key if methods & 1 else None,
        key=key if methods & 2 else None,
        certificate=iss.certify(identity, key) if methods & 2 else None,
        issuer=iss.key.public if methods & 2 else None,
    )


def lock_sim(iss: Issuer, **kw: object) -> CardRuntime:
    rt = make_sim(LOCK_SIM, rng_seed=1)
    install(rt, lock_perso(iss, **kw))  # type: ignore[arg-type]
    return rt


def phone_sim(iss: Issuer, sim: SimIdentity = PHONE_SIM, **kw: object) -> CardRuntime:
    rt = make_sim(sim, rng_seed=2)
    install(rt, phone_perso(iss, **kw))  # type: ignore[arg-type]
    return rt


def session(rt: CardRuntime) -> DoorLockCard:
    card = DoorLockCard(InProcessReader(rt))
    card.select()
    return card
