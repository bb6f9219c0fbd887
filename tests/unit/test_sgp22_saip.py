"""The profile store installs an eUICC Profile Package (card.uicc.saip, TCA format).

The TS.48 generic test profile (tests/unit/data/sgp22/README.md) goes in
through the store's Shareable method, then answers AUTHENTICATE once enabled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from card.profiles import ProfileStoreError, ProfileStoreReason
from card.sgp22 import asn1
from card.uicc.saip import PeStatus, SaipError, profile_from_package
from tests.unit.usim_cards import authenticate, empty_card, select_usim, send, uicc

TS48 = (Path(__file__).parent / "data" / "sgp22" / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der").read_bytes()
TS48_ICCID = "8949449999999990049"
TS48_IMSI = "001010123456063"
TS48_K = bytes(range(16))
TS48_USIM = bytes.fromhex("A0000000871002FF49FF0589")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def test_ts48_converts() -> None:
    r = profile_from_package(TS48, name="TS.48", provider="GSMA")
    p = r.profile
    assert (p.iccid, p.imsi, p.spn, p.name) == (TS48_ICCID, TS48_IMSI, "GSMA_TEST", "TS.48")
    assert p.auth.algorithm == "xor" and p.auth.k == TS48_K
    assert p.usim_adf() is not None and p.usim_adf().name == TS48_USIM
    pins = {x.ref: x for x in p.pins}
    # PIN1 0000 disabled (pinAttributes 06), 3 tries; PUK1 11111111; ADM1 55555555.
    assert pins[0x01].value == b"0000" and not pins[0x01].enabled and pins[0x01].puk == b"11111111"
    assert pins[0x0A].value == b"55555555" and pins[0x0A].enabled
    assert pins[0x81].puk == b"22222222"
    # Template defaults filled in: EF.KEYS (33 bytes, '07FF...') is not in the PE's content.
    keys = p.usim_file(0x6F08)
    assert keys is not None and keys.content == b"\x07" + b"\xff" * 32 and keys.sfi == 0x08
    # A fill pattern (EF.PL 'en' then FF) and a GFM-created file with records.
    pl = p.file("3F00/2F05")
    assert pl is not None and pl.content == b"en" + b"\xff" * 4
    # Nothing is dropped: the MNO-SD, the RFM instances, the CDMA parameters, the BER-TLV
    # EF and the CSIM's linked EFs are all in the profile.
    assert r.ignored == ()
    assert [sd.aid for sd in p.security_domains] == [bytes.fromhex("A000000151000000")]
    assert len(p.rfm) == 4 and p.rfm[0].tars == (bytes.fromhex("B00120"),)
    assert dict(p.cdma)["ssd"] == bytes.fromhex("0123456789abcdef0123456789abcdef")
    bertlv = p.file("3F00/7F10/5F3E/4F02")
    assert bertlv is not None and bertlv.structure == 0x39 and bertlv.size == 0x400
    fdn = p.file("ADF.A0000003431002F310FFFF89020000FF/6F3B")
    assert fdn is not None and fdn.link == "ADF.A0000000871002FF49FF0589/6F3B"


def test_ts48_installs_and_authenticates_after_enable_and_reset() -> None:
    rt = empty_card()
    store = uicc(rt)
    assert store.install_profile_package(TS48, "TS.48", "GSMA") == TS48_ICCID
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile_package(TS48)
    assert e.value.reason == ProfileStoreReason.ICCID_EXISTS
    store.enable_profile(TS48_ICCID)
    rt.reset()
    select_usim(rt, TS48_USIM)
    data, sw = send(rt, "00B0000009")  # no current EF yet
    assert sw != 0x9000
    rand = bytes.fromhex("f0e0d0c0b0a090807060504030201000")
    sqn, amf = (0x20).to_bytes(6, "big"), b"\x80\x00"
    xdout = _xor(TS48_K, rand)
    autn = _xor(sqn, xdout[3:9]) + amf + _xor(xdout[:8], sqn + amf)
    data, sw = authenticate(rt, rand, autn)
    assert sw == 0x9000 and data[:2] == b"\xdb\x08" and data[2:10] == xdout[:8]


def _package(*pes: tuple[str, object]) -> bytes:
    return b"".join(asn1.encode_pe(pe) for pe in pes)


def _header(iccid: bytes = bytes.fromhex("89000000000000000012")) -> tuple[str, object]:
    return (
        "header",
        {
            "major-version": 2,
            "minor-version": 3,
            "iccid": iccid,
            "eUICC-Mandatory-services": {},
            "eUICC-Mandatory-GFSTEList": [],
        },
    )


def test_refusals_carry_pe_status() -> None:
    # asn1tools fills sqnInit's odd DEFAULT with a non-list on decoding: leave it out.
    pes = [
        (n, {k: x for k, x in v.items() if k != "sqnInit"} if n == "akaParameter" else v)
        for n, v in asn1.decode_pe_sequence(TS48)
    ]
    with pytest.raises(SaipError) as e:
        profile_from_package(_package(*pes[:-1]))  # no end PE
    assert e.value.status == PeStatus.INVALID_REQUEST_FORMAT

    def with_algo(**changes: object) -> list:
        return [
            (
                n,
                {
                    **v,
                    "algoConfiguration": (
                        "algoParameter",
                        {**v["algoConfiguration"][1], **changes},
                    ),
                },
            )
            if n == "akaParameter"
            else (n, v)
            for n, v in pes
        ]

    # An algorithm this card does not know (4) is not supported...
    with pytest.raises(SaipError) as e:
        profile_from_package(_package(*with_algo(algorithmID=4)))
    assert e.value.status == PeStatus.FEATURE_NOT_SUPPORTED and e.value.pe_id == 11
    # ... TUAK (2) is, but its TOPc is 32 bytes: a 16-byte one is a bad value.
    with pytest.raises(SaipError) as e:
        profile_from_package(_package(*with_algo(algorithmID=2)))
    assert e.value.status == PeStatus.BAD_VALUES and e.value.pe_id == 11
    topc = bytes(range(32))
    auth = profile_from_package(
        _package(*with_algo(algorithmID=2, opc=topc, numberOfKeccak=3))
    ).profile.auth
    assert (auth.algorithm, auth.opc, auth.keccak_iterations) == ("tuak", topc, 3)
    # TS 35.231 §7.2: Keccak is applied at least once; a 256-bit K is TUAK's too.
    with pytest.raises(SaipError) as e:
        profile_from_package(_package(*with_algo(algorithmID=2, opc=topc, numberOfKeccak=0)))
    assert e.value.status == PeStatus.BAD_VALUES and e.value.pe_id == 11
    k256 = bytes(range(32, 64))
    auth = profile_from_package(
        _package(*with_algo(algorithmID=2, key=k256, opc=topc))
    ).profile.auth
    assert (auth.k, auth.keccak_iterations) == (k256, 1)
    with pytest.raises(SaipError) as e:  # ... and not Milenage's
        profile_from_package(_package(*with_algo(algorithmID=1, key=k256)))
    assert e.value.status == PeStatus.BAD_VALUES
    with pytest.raises(SaipError) as e:
        profile_from_package(b"\x30\x03\x02\x01")
    assert e.value.status == PeStatus.INVALID_REQUEST_FORMAT
    rt = empty_card()
    with pytest.raises(ProfileStoreError) as se:
        uicc(rt).install_profile_package(_package(*with_algo(algorithmID=4)))
    assert (
        se.value.reason == ProfileStoreReason.BAD_FORMAT
        and se.value.pe_status == PeStatus.FEATURE_NOT_SUPPORTED
    )
    assert uicc(rt).list_profiles() == ()


def test_milenage_aka_parameter_authenticates() -> None:
    from card.crypto.milenage import Milenage, generate_auth_vector

    k, opc = bytes(range(0x40, 0x50)), bytes(range(0x80, 0x90))
    pes = []
    for n, v in asn1.decode_pe_sequence(TS48):
        if n == "akaParameter":
            v = {key: x for key, x in v.items() if key != "sqnInit"}
            algo = {**v["algoConfiguration"][1], "algorithmID": 1, "key": k, "opc": opc}
            v = {**v, "algoConfiguration": ("algoParameter", algo)}
        pes.append((n, v))
    package = _package(*pes)
    p = profile_from_package(package).profile
    assert (p.auth.algorithm, p.auth.k, p.auth.opc) == ("milenage", k, opc)
    rt = empty_card()
    store = uicc(rt)
    store.enable_profile(store.install_profile_package(package))
    rt.reset()
    select_usim(rt, TS48_USIM)
    rand = bytes(range(16))
    vec = generate_auth_vector(Milenage(k, opc=opc), rand, (0x41).to_bytes(6, "big"), b"\x80\x00")
    data, sw = authenticate(rt, rand, vec.autn)
    assert sw == 0x9000 and data[2:10] == vec.xres[:8]
    # Non-standard Milenage constants are refused (this store runs TS 35.206 as published).
    odd = [
        (
            n,
            {
                **v,
                "algoConfiguration": (
                    "algoParameter",
                    {**v["algoConfiguration"][1], "rotationConstants": b"\x00" * 5},
                ),
            },
        )
        if n == "akaParameter"
        else (n, v)
        for n, v in pes
    ]
    with pytest.raises(SaipError) as e:
        profile_from_package(_package(*odd))
    assert e.value.status == PeStatus.FEATURE_NOT_SUPPORTED
