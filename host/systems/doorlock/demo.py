"""A demo door for the separate programs: a lock's SIM and phones' SIMs, issued by a server.

`issue_door(...)` stands for the operator's side before the programs run: an
application management server (its SQLite store in `ams`, or in memory) registers
a lock and its phones, pushes the applet to the lock's SIM (§6.1) and enrols
the phones (§6.2, at the server's trigger) through each SIM's ISD over SCP03.
The SIMs come out as card images (or in memory); the programs that then drive
them (`cardemu doorlock lock|phone`) open an image and never see a key: the
door key and the chips' private keys are inside the SIMs and the server's store.

The identifiers are fixed (`LOCK_SIM`, `PHONE_SIMS`, `PHONE_IMEIS`), the keys
drawn from a `CardRng` seeded with `seed`: the same seed gives the same door.
A phone listed in `without_applet` gets a SIM with no door-lock applet.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime

from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from host.readers.base import Reader
from host.systems.doorlock.card import SimIdentity

__all__ = ["LOCK_MAC", "LOCK_SIM", "PHONE_IMEIS", "PHONE_SIMS", "issue_door", "new_sim"]

LOCK_MAC = bytes.fromhex("02CA4DE0D001")
LOCK_SIM = SimIdentity("89882100000000001006", "001010000000100", "+0010100100")
#: the demo phones' SIMs, by phone
PHONE_SIMS = {
    "phone-1": SimIdentity("89882100000000002012", "001010000000201", "+0010100201"),
    "phone-2": SimIdentity("89882100000000002020", "001010000000202", "+0010100202"),
}
PHONE_IMEIS = {"phone-1": "356938035643809", "phone-2": "356938035643817"}


def new_sim(
    identity: SimIdentity, image: str | os.PathLike[str] | None, *, rng_seed: int | None = None
) -> CardRuntime:
    """A UICC with a USIM and an ISD, as `card.make_sim` builds it: in memory, or a new image."""
    from card.uicc.builder import sample_profile
    from host.presets import install_uicc_ota, new_card
    from host.systems.doorlock.card import make_sim

    if image is None:
        return make_sim(identity, rng_seed=rng_seed)
    profile = sample_profile(iccid=identity.iccid, imsi=identity.imsi, msisdn=identity.msisdn)
    rt = new_card(
        "usim-ota",
        image,
        rng_seed=rng_seed,
        build=lambda rt: install_uicc_ota(rt, profile=profile.to_bytes()),
    )
    rt.power_on()
    return rt


def issue_door(
    *,
    lock_image: str | os.PathLike[str] | None = None,
    phone_images: dict[str, str | os.PathLike[str] | None] | None = None,
    ams: str = ":memory:",
    seed: int = 0,
    without_applet: Sequence[str] = (),
) -> tuple[CardRuntime, dict[str, CardRuntime]]:
    """The lock's SIM (lock role) and the phones' SIMs (key role, unless `without_applet`).

    Raises:
        FileExistsError: an image is there already (never replaced).
        RuntimeError: an install did not complete.
    """
    from host.readers.inprocess import InProcessReader
    from host.systems.doorlock.ams import AppManagementServer
    from host.systems.doorlock.delivery import DirectGpDelivery
    from host.systems.doorlock.ota import AMS_ADDRESS

    images = phone_images if phone_images is not None else {p: None for p in PHONE_SIMS}
    lock = new_sim(LOCK_SIM, lock_image, rng_seed=seed)
    phones = {p: new_sim(PHONE_SIMS[p], img, rng_seed=seed + 1 + i)
              for i, (p, img) in enumerate(images.items())}  # fmt: skip
    runtimes = {"lock": lock, **phones}

    def route(rt: CardRuntime) -> Callable[[], Reader]:
        return lambda: InProcessReader(rt)

    delivery = DirectGpDelivery({name: route(rt) for name, rt in runtimes.items()})
    # The lock's chip learns the server's short code: its requests go there by SMS.
    server = AppManagementServer(
        ams,
        delivery,
        rng=CardRng(seed),
        clock=lambda: datetime(2026, 12, 7, 2, 0),
        sms_address=AMS_ADDRESS,
    )
    try:
        server.register_lock("lock", mac=LOCK_MAC, sim=LOCK_SIM, combination="B")
        for phone in phones:
            server.register_phone(phone, imei=PHONE_IMEIS[phone], sim=PHONE_SIMS[phone])
        results = [server.provision_lock("lock")]
        results += [server.enrol_phone(p, "lock") for p in phones if p not in without_applet]
    finally:
        server.close()
    for r in results:
        if not r.receipt.ok:
            raise RuntimeError(f"{r.device_id}: the install did not complete: {r.receipt.detail}")
    return lock, phones
