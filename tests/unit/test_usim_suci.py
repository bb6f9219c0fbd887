"""GET IDENTITY in the SUCI context (TS 31.102 §7.5): the USIM conceals its IMSI with the
home network key of DF.SAIP/EF.SUCI_Calc_Info_USIM and the routing indicator of
DF.5GS/EF.Routing_Indicator; TS 33.501 Annex C.4 reproduced through the APDU interface
with the C.4 ephemeral keys put on the card's RNG path (CardRng.preload); the refusals.
"""

from __future__ import annotations

import pytest

from applets.usim import ts_31_102 as u
from applets.usim.builder import SuciSetup, sample_profile
from card.crypto.suci import NULL_SCHEME, PROFILE_A, PROFILE_B, Suci, decode_msin, deconceal
from tests.unit.test_crypto_suci import C4_A, C4_B, C4_SCHEME_INPUT
from tests.unit.usim_cards import select_usim, send, usim_card

# TS 33.501 C.4.2.1 / C.4.3.1 / C.4.4.1: IMSI MCC 274, MNC 012, MSIN 001002086.
C4_IMSI = "274012001002086"
GET_SUCI = "80780001" + "00"


def card(schemes: tuple[tuple[int, int], ...], ri: str = "678", by_usim: bool = True, **kw):
    info = u.SuciCalcInfo(schemes, ((27, C4_A["hn_pub"]), (30, C4_B["hn_pub"])))
    return usim_card(
        sample_profile(
            imsi=C4_IMSI,
            mnc_length=3,
            suci=SuciSetup(info, ri, by_usim),
            **kw,
        )
    )


def get_suci(rt, apdu: str = GET_SUCI) -> tuple[bytes, int]:
    select_usim(rt)
    return send(rt, apdu)


@pytest.mark.parametrize(
    "schemes, eph, scheme, key_id, output",
    [
        (((0, 0),), b"", NULL_SCHEME, 0, C4_SCHEME_INPUT),
        (((1, 1), (0, 0)), C4_A["eph_priv"], PROFILE_A, 27, C4_A["output"]),
        (((2, 2), (1, 1)), C4_B["eph_priv"], PROFILE_B, 30, C4_B["output"]),
        # An unknown scheme (9) is skipped for the next in priority.
        (((9, 1), (2, 2)), C4_B["eph_priv"], PROFILE_B, 30, C4_B["output"]),
    ],
    ids=["null", "profileA", "profileB", "skip-unknown"],
)
def test_c4_through_get_identity(schemes, eph, scheme, key_id, output) -> None:
    rt = card(schemes)
    rt.rng.preload(eph)
    data, sw = get_suci(rt)
    assert sw == 0x9000, f"{sw:04X}"
    assert data[0] == 0xA1 and data[1] == len(data) - 2
    s = Suci.from_bytes(data[2:])
    assert (s.mcc, s.mnc, s.routing_indicator, s.scheme, s.key_id) == (
        "274",
        "012",
        "678",
        scheme,
        key_id,
    )
    assert s.output == output
    # The SIDF recovers the MSIN with the home network's private key.
    priv = {NULL_SCHEME: b"", PROFILE_A: C4_A["hn_priv"], PROFILE_B: C4_B["hn_priv"]}[scheme]
    assert decode_msin(deconceal(scheme, s.output, priv)) == "001002086"


def test_fresh_suci_each_time() -> None:
    rt = card(((1, 1),))
    a, sw1 = get_suci(rt)
    b, sw2 = send(rt, GET_SUCI)
    assert sw1 == sw2 == 0x9000 and a != b
    for d in (a, b):
        s = Suci.from_bytes(d[2:])
        assert decode_msin(deconceal(PROFILE_A, s.output, C4_A["hn_priv"])) == "001002086"


def test_get_identity_refusals() -> None:
    rt = card(((1, 1),))
    assert get_suci(rt, "8078010100")[1] == 0x6B00  # P1
    assert send(rt, "8078000200")[1] == 0x6A86  # another identity context
    assert send(rt, "0078000100")[1] == 0x6E00  # GET IDENTITY is a proprietary-class command
    assert send(rt, "8078000101FF")[1] == 0x6700  # no command data
    # Not on the USIM: the MF selected on a channel with no application.
    send(rt, "00A40004023F00")
    rt2 = usim_card(sample_profile())  # no 5G services
    assert get_suci(rt2)[1] == 0x6A81
    # Calculation by the ME (service 125 off): the card does not calculate.
    assert get_suci(card(((1, 1),), by_usim=False))[1] == 0x6A81
    # No supported scheme: 6985.
    assert get_suci(card(((9, 1),)))[1] == 0x6985


def test_get_identity_needs_pin1() -> None:
    rt = card(((0, 0),), pin1_enabled=True)
    assert get_suci(rt)[1] == 0x6982
    assert send(rt, "0020000108" + b"1234".ljust(8, b"\xff").hex())[1] == 0x9000
    assert send(rt, GET_SUCI)[1] == 0x9000


def test_ust_and_files_of_a_suci_profile() -> None:
    p = sample_profile(imsi=C4_IMSI, mnc_length=3, suci=SuciSetup(u.SuciCalcInfo(((0, 0),))))
    assert {124, 125} <= p.services()
    rt = usim_card(p)
    select_usim(rt)
    data, sw = send(rt, "00A40004025FC0")  # DF.5GS
    assert sw == 0x9000
    data, sw = send(rt, "00A40004024F0A")  # EF.Routing_Indicator
    assert sw == 0x9000
    assert send(rt, "00B0000004")[0] == bytes.fromhex("F0FFFFFF")
    # DF.SAIP's calculation information is for the USIM only (ADM).
    select_usim(rt)
    send(rt, "00A40004025FD0")
    send(rt, "00A40004024F01")
    assert send(rt, "00B0000004")[1] == 0x6982
