"""Card fixtures shared by the unit tests."""

from __future__ import annotations

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
from card.runtime import CardRuntime


def sample_card(image: str | None = None, *, power: bool = True) -> CardRuntime:
    """A card with the sample applets; the purse is default-selected, PIN 1234."""
    rt = CardRuntime(image, rng_seed=1)
    if not rt.applets():
        rt.install(PurseApplet, PURSE_AID, b"1234", default=True)
        rt.install(EchoApplet, ECHO_AID)
        rt.install(CounterServer, COUNTER_SERVER_AID, COUNTER_CLIENT_AID)
        rt.install(CounterClient, COUNTER_CLIENT_AID, COUNTER_SERVER_AID)
    if power:
        rt.power_on()
    return rt


def restart(rt: CardRuntime, how: str) -> None:
    """Power the card up again: "power cycle" (off, then on: RAM lost, ATR) or "warm
    reset" (ISO/IEC 7816-3 warm reset)."""
    if how == "power cycle":
        rt.power_off()
        rt.power_on()
    elif how == "warm reset":
        rt.reset()
    else:
        raise ValueError(f"restart how? {how!r}")


def tx(rt: CardRuntime, hexstr: str) -> str:
    """Send one APDU given in hex; return the response in upper-case hex."""
    return rt.process(bytes.fromhex(hexstr.replace(" ", ""))).hex().upper()


def select(aid: bytes, cla: int = 0) -> str:
    return f"{cla:02X}A4040C{len(aid):02X}{aid.hex()}"
