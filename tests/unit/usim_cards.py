"""Helpers for the USIM tests: cards with the UICC applet, APDUs with GET RESPONSE."""

from __future__ import annotations

from applets.usim import UICC_AID, UiccApplet
from card.runtime import CardRuntime
from card.uicc.builder import DEFAULT_USIM_AID, sample_profile
from card.uicc.profile import Profile


def usim_card(
    profile: Profile | None = None, image: str | None = None, **overrides: object
) -> CardRuntime:
    """A powered card whose one profile is `profile` (default: the test profile + overrides)."""
    rt = CardRuntime(image, rng_seed=1)
    if profile is None:
        profile = sample_profile(**overrides)
    rt.install(UiccApplet, UICC_AID, profile.to_bytes(), default=True)
    rt.power_on()
    return rt


def empty_card(image: str | None = None) -> CardRuntime:
    rt = CardRuntime(image, rng_seed=1)
    rt.install(UiccApplet, UICC_AID, default=True)
    rt.power_on()
    return rt


def uicc(rt: CardRuntime) -> UiccApplet:
    applet = rt.applet(UICC_AID)
    assert isinstance(applet, UiccApplet)
    return applet


def send(rt: CardRuntime, apdu: bytes | str) -> tuple[bytes, int]:
    """One command, fetching 61xx/9Fxx data with GET RESPONSE; (data, SW)."""
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    resp = rt.process(raw)
    data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
    while sw >> 8 in (0x61, 0x9F):
        cla = 0xA0 if sw >> 8 == 0x9F else raw[0] & 0x03
        resp = rt.process(bytes((cla, 0xC0, 0, 0, sw & 0xFF)))
        data += resp[:-2]
        sw = int.from_bytes(resp[-2:], "big")
    return data, sw


def select_usim(rt: CardRuntime, aid: bytes = DEFAULT_USIM_AID, channel: int = 0) -> None:
    data, sw = send(rt, bytes((channel, 0xA4, 0x04, 0x04, len(aid))) + aid)
    assert sw == 0x9000, f"{sw:04X}"


def authenticate(
    rt: CardRuntime, rand: bytes, autn: bytes | None = None, channel: int = 0
) -> tuple[bytes, int]:
    if autn is None:
        body = bytes((16,)) + rand
        return send(rt, bytes((channel, 0x88, 0x00, 0x80, len(body))) + body)
    body = bytes((16,)) + rand + bytes((16,)) + autn
    return send(rt, bytes((channel, 0x88, 0x00, 0x81, len(body))) + body)
