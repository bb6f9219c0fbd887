"""Built-in cards: what `cardemu send`, `cardemu card new --preset` and the benchmark start from."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from applets.sample import (
    COUNTER_CLIENT_AID,
    COUNTER_SERVER_AID,
    ECHO_AID,
    PURSE_AID,
    CounterClient,
    CounterServer,
    EchoApplet,
    PurseApplet,
)
from card.atr import build_atr
from card.runtime import CardRuntime


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: Callable[[CardRuntime], None]


def _demo(rt: CardRuntime) -> None:
    from applets.iso7816 import FS_APPLET_AID, FileSystemApplet

    rt.install(FileSystemApplet, FS_APPLET_AID, default=True)
    rt.install(PurseApplet, PURSE_AID, b"1234")
    rt.install(EchoApplet, ECHO_AID)
    rt.install(CounterServer, COUNTER_SERVER_AID, COUNTER_CLIENT_AID)
    rt.install(CounterClient, COUNTER_CLIENT_AID, COUNTER_SERVER_AID)


def _gp(rt: CardRuntime) -> None:
    from card.gp.isd import ISD_AID, IssuerSecurityDomain
    from card.gp.loadfile import build_load_file

    isd = rt.install(IssuerSecurityDomain, ISD_AID, default=True)
    # The sample applets' package is on the card from manufacture, as a ROM load file.
    isd.register_load_file(build_load_file("applets.sample"))
    rt.install(PurseApplet, PURSE_AID, b"1234")
    rt.install(EchoApplet, ECHO_AID)
    rt.install(CounterServer, COUNTER_SERVER_AID, COUNTER_CLIENT_AID)
    rt.install(CounterClient, COUNTER_CLIENT_AID, COUNTER_SERVER_AID)


# Like most SIMs: T=0 only (SIM tools such as pySim insist on T=0 when it is offered),
# a T=15 class indicator (classes A, B and C, ISO 7816-3 §8.3), card capabilities.
UICC_ATR = build_atr((0,), class_indicator=0x07, extended_length=False, max_channels=4).to_bytes()


def _usim(rt: CardRuntime) -> None:
    from applets.usim import UICC_AID, UiccApplet
    from applets.usim.builder import sample_profile

    # One profile from the builder, enabled: see applets.usim.builder TEST_* for its values.
    rt.install(UiccApplet, UICC_AID, sample_profile().to_bytes(), default=True)
    rt.set_atr(UICC_ATR)


def _euicc_empty(rt: CardRuntime) -> None:
    from applets.usim import UICC_AID, UiccApplet

    rt.install(UiccApplet, UICC_AID, default=True)


def _bio(rt: CardRuntime) -> None:
    from applets.biometric import BIO_AID, BiometricApplet

    # Seed 002's sensor card: match-on-card, default-selected, no finger enrolled yet.
    rt.install(BiometricApplet, BIO_AID, default=True)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "demo",
            "ISO 7816-4 file system (default-selected), PIN purse, echo, Shareable counter",
            _demo,
        ),
        Preset(
            "gp",
            "GlobalPlatform ISD (default-selected, SCP03, test keys 40..4F kvn 30), sample applets",
            _gp,
        ),
        Preset(
            "usim",
            "UICC with one USIM profile (IMSI 001010000000001, Milenage K=OPc=000102..0F)",
            _usim,
        ),
        Preset(
            "euicc-empty", "UICC platform holding no profile yet (profile store only)", _euicc_empty
        ),
        Preset(
            "bio",
            "fingerprint match-on-card (ISO 7816-11 VERIFY, BIT group; admin key 40..4F)",
            _bio,
        ),
    ]
}

DEFAULT_PRESET = "demo"


def new_card(
    preset: str = DEFAULT_PRESET,
    image: str | os.PathLike[str] | None = None,
    *,
    rng_seed: bytes | int | None = None,
) -> CardRuntime:
    """A new card built from a preset (in memory, or as a new card image file)."""
    try:
        spec = PRESETS[preset]
    except KeyError:
        raise KeyError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}") from None
    if image is not None and os.path.exists(image):
        raise FileExistsError(f"{image} already exists")
    rt = CardRuntime(image, rng_seed=rng_seed)
    spec.build(rt)
    rt.nvm.flush()
    return rt
