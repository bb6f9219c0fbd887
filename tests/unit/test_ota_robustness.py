"""Whatever arrives by SMS-PP, the SIM answers with a status word and never crashes.

Random command packets (any SPI, KIc, KID, TAR, counter, body), valid headers
around random bodies, and random TP-UD go to the usim-ota preset as SMS-PP
download ENVELOPEs; the card must answer 9000 / 91xx (with or without a PoR)
or 6A80 for an SMS it cannot read, count no Python exception, and run nothing:
no key set, counter or applet changes unless the packet was a valid one.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from card.gp.isd import UICC_ISD_AID
from card.ota import sms
from host.ota import ToolkitTerminal
from host.presets import new_card
from host.readers.inprocess import InProcessReader

_CARD = new_card("usim-ota", rng_seed=7)
_TERMINAL = ToolkitTerminal(InProcessReader(_CARD))
_TERMINAL.start()


def _state() -> tuple[object, ...]:
    isd = _CARD.applet(UICC_ISD_AID)
    return (
        isd.ota_keysets_value,  # type: ignore[attr-defined]
        isd.ota_counters_value,  # type: ignore[attr-defined]
        tuple(bytes(a) for a, *_ in _CARD.applets()),
    )


def _deliver(ud: bytes) -> int:
    tpdu = sms.SmsDeliver(sms.Address("12345"), ud[: sms.MAX_UD]).to_bytes()
    return _TERMINAL.deliver_sms(tpdu).sw


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    head=st.binary(min_size=8, max_size=8),
    tar=st.sampled_from([b"\x00\x00\x00", b"\xb0\x00\x10", b"\xb0\x00\x00", b"\x12\x34\x56"]),
    body=st.binary(max_size=110),
)
def test_random_packets_never_crash_the_card(head: bytes, tar: bytes, body: bytes) -> None:
    before = _state()
    chl = 13 + (0, 2, 4, 8)[head[0] % 4]  # the lengths an RC/CC could give, mostly right
    spi, kic, kid = head[1:3], head[3], head[4]
    rest = bytes((chl,)) + spi + bytes((kic, kid)) + tar + body
    packet = len(rest).to_bytes(2, "big") + rest
    sw = _deliver(sms.segment_command_packet(packet)[0])
    assert sw == 0x9000 or sw >> 8 == 0x91
    assert _CARD.exceptions == 0, _CARD.last_exception
    assert _state() == before  # nothing random carries a valid CC under the card's keys


@settings(max_examples=100, deadline=None)
@given(ud=st.binary(max_size=140))
def test_random_user_data_never_crashes_the_card(ud: bytes) -> None:
    before = _state()
    sw = _deliver(ud)
    assert sw in (0x9000, 0x6A80) or sw >> 8 == 0x91
    assert _CARD.exceptions == 0, _CARD.last_exception
    assert _state() == before
