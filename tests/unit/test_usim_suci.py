"""GET IDENTITY in the SUCI context (TS 31.102 §7.5): the USIM conceals its IMSI with the
home network key of DF.SAIP/EF.SUCI_Calc_Info_USIM and the routing indicator of
DF.5GS/EF.Routing_Indicator; TS 33.501 Annex C.4 reproduced through the APDU interface
with the C.4 ephemeral keys put on the card's RNG path (CardRng.preload); the refusals.
"""

from __future__ import annotations

import pytest

from card.crypto.suci import NULL_SCHEME, PROFILE_A, PROFILE_B, Suci, decode_msin, deconceal
from card.uicc import ts_31_102 as u
from card.uicc.builder import SuciSetup, sample_profile
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
    assert send(rt, "0078000100")[1] == 0x9000  # the interindustry class is taken too
    assert send(rt, "A078000100")[1] != 0x9000  # not the GSM class
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


# -- the host side: UsimSession, the SIDF, the CLI ---------------------------------------------


def test_spec_vector_replays_on_the_card() -> None:
    from apdu_specs.ts_31_102 import SPECS

    spec = next(s for s in SPECS if s.name == "GET IDENTITY")
    v = spec.vectors[0]
    rt = card(((1, 1),))
    rt.rng.preload(C4_A["eph_priv"])
    data, sw = get_suci(rt, v.command)
    assert data + sw.to_bytes(2, "big") == v.response_bytes
    rt2 = usim_card(sample_profile())
    data, sw = get_suci(rt2, spec.vectors[1].command)
    assert sw.to_bytes(2, "big") == spec.vectors[1].response_bytes


def test_session_get_suci_and_sidf() -> None:
    from host.readers.inprocess import InProcessReader
    from host.usim import UsimSession, supi_from_suci

    rt = card(((2, 2),))
    s = UsimSession(InProcessReader(rt))
    s.select_usim()
    suci = s.get_suci()
    assert supi_from_suci(suci, C4_B["hn_priv"]) == "imsi-" + C4_IMSI
    with pytest.raises(ValueError):  # the Profile A key is not the home network's P-256 key
        supi_from_suci(suci, C4_A["hn_priv"][:-1] + b"\x00")


def test_cli_suci(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from host.cli import cli

    image = str(tmp_path / "5g.img")
    usim_card(
        sample_profile(
            imsi=C4_IMSI,
            mnc_length=3,
            suci=SuciSetup(u.SuciCalcInfo(((1, 1),), ((27, C4_A["hn_pub"]),)), "678"),
        ),
        image=image,
    ).close()
    args = ["usim", "suci", "-q", "--json", "--card", image, "--hn-private", C4_A["hn_priv"].hex()]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["supi"] == "imsi-" + C4_IMSI and doc["suci"].startswith("suci-0-274-012-678-1-27-")
    # The wrong private key: the MAC tag does not verify, exit 1.
    bad = [*args[:-1], C4_B["hn_priv"].hex()]
    assert CliRunner().invoke(cli, bad).exit_code == 1
    # A card without SUCI calculation by the USIM: 6A81, exit 3.
    assert CliRunner().invoke(cli, ["usim", "suci", "-q"]).exit_code == 3


def test_cli_auth_derives_res_star_and_kausf() -> None:
    import hmac
    import json
    from hashlib import sha256

    from click.testing import CliRunner

    from card.uicc.builder import TEST_K, TEST_OPC
    from host.cli import cli

    rand = bytes(16)
    args = ["usim", "auth", "-q", "--json", "--k", TEST_K.hex(), "--opc", TEST_OPC.hex()]
    args += ["--rand", rand.hex(), "--serving-network", "001-01"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    ck, ik, res = (bytes.fromhex(doc[k]) for k in ("ck", "ik", "res"))
    snn = b"5G:mnc001.mcc001.3gppnetwork.org"
    # Independent of card.crypto.suci: TS 33.220 B.2 over TS 33.501 A.4 / A.2 by hand.
    s = b"\x6b" + snn + b"\x00\x20" + rand + b"\x00\x10" + res + len(res).to_bytes(2, "big")
    assert doc["res_star"] == hmac.new(ck + ik, s, sha256).digest()[16:].hex().upper()
    sqn_ak = bytes.fromhex(doc["autn"])[:6]
    s = b"\x6a" + snn + b"\x00\x20" + sqn_ak + b"\x00\x06"
    assert doc["kausf"] == hmac.new(ck + ik, s, sha256).hexdigest().upper()
    bad = CliRunner().invoke(cli, [*args[:-1], "1-1"])
    assert bad.exit_code == 2
