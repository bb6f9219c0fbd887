"""The ISIM (3GPP TS 31.103): ADF.ISIM in EF.DIR with IMPI, DOMAIN, IMPU, AD, ARR, IST,
P-CSCF; AUTHENTICATE in the IMS AKA context; open beside the USIM on another logical
channel; the EF codecs with their vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card.crypto.milenage import Milenage, generate_auth_vector
from card.uicc import ts_31_103 as i
from card.uicc.builder import (
    DEFAULT_USIM_AID,
    TEST_IMSI,
    TEST_K,
    TEST_OPC,
    IsimSetup,
    sample_profile,
)
from card.uicc.ts_102_221 import decode_dir_record
from tests.unit.usim_cards import authenticate, select_usim, send, usim_card

ISIM = IsimSetup.for_imsi(TEST_IMSI)

# -- codecs --------------------------------------------------------------------------------------

URI_VECTORS = [("a@b", 8, "800361406 2FFFFFF".replace(" ", ""))]
PCSCF_VECTORS = [
    (i.PcscfAddress("pcscf.example"), 17, "800E00" + b"pcscf.example".hex() + "FF"),
    (i.PcscfAddress("10.0.0.1", i.ADDR_IPV4), 8, "8005010A000001FF"),
    (i.PcscfAddress("2001:db8::1", i.ADDR_IPV6), 19, "801102" + "20010DB8" + "00" * 11 + "01"),
]


@pytest.mark.parametrize("text, size, enc", URI_VECTORS)
def test_uri_vectors(text: str, size: int, enc: str) -> None:
    assert i.encode_uri(text, size).hex().upper() == enc.upper()
    assert i.decode_uri(bytes.fromhex(enc)) == text


@pytest.mark.parametrize("entry, size, enc", PCSCF_VECTORS)
def test_pcscf_vectors(entry: i.PcscfAddress, size: int, enc: str) -> None:
    assert i.encode_pcscf(entry, size).hex().upper() == enc.upper()
    assert i.decode_pcscf(bytes.fromhex(enc)) == entry


def test_codec_refusals() -> None:
    for bad in ("81016100", "8005616263", "8001FF"):
        with pytest.raises(ValueError):
            i.decode_uri(bytes.fromhex(bad))
    for bad in ("8000", "800201AA", "80020300", "8003000000"[:8] + "FF"):
        with pytest.raises(ValueError):
            i.decode_pcscf(bytes.fromhex(bad))
    with pytest.raises(ValueError):
        i.encode_uri("x" * 20, 8)
    with pytest.raises(ValueError):
        i.encode_uri("", 8)
    with pytest.raises(ValueError):
        i.PcscfAddress("10.0.0.256", i.ADDR_IPV4)
    with pytest.raises(ValueError):
        i.PcscfAddress("x", 7)
    assert i.decode_uri(b"\xff" * 4) is None and i.decode_pcscf(b"\xff" * 4) is None
    assert i.decode_isim_ad(i.encode_isim_ad(1, 0x0203)) == (1, 0x0203)
    with pytest.raises(ValueError):
        i.decode_isim_ad(b"\x00\x00")


@given(st.text(min_size=1, max_size=30).filter(lambda t: len(t.encode()) <= 40))
def test_uri_roundtrip(text: str) -> None:
    assert i.decode_uri(i.encode_uri(text, 64)) == text


@given(st.ip_addresses())
def test_pcscf_ip_roundtrip(addr: object) -> None:
    kind = i.ADDR_IPV4 if addr.version == 4 else i.ADDR_IPV6  # type: ignore[attr-defined]
    entry = i.PcscfAddress(str(addr), kind)
    assert i.decode_pcscf(i.encode_pcscf(entry, 32)) == entry


# -- on the card -------------------------------------------------------------------------------


def card(**kw: object):
    return usim_card(sample_profile(isim=ISIM, **kw))


def read_ef(rt, fid: int, channel: int = 0) -> bytes:
    data, sw = send(rt, bytes((channel, 0xA4, 0x00, 0x04, 2)) + fid.to_bytes(2, "big"))
    assert sw == 0x9000, f"{fid:04X}: {sw:04X}"
    data, sw = send(rt, bytes((channel, 0xB0, 0, 0, 0)))
    assert sw == 0x9000
    return data


def read_record(rt, fid: int, n: int, channel: int = 0) -> bytes:
    send(rt, bytes((channel, 0xA4, 0x00, 0x04, 2)) + fid.to_bytes(2, "big"))
    data, sw = send(rt, bytes((channel, 0xB2, n, 0x04, 0)))
    assert sw == 0x9000
    return data


def test_ef_dir_lists_usim_and_isim() -> None:
    rt = card()
    send(rt, "00A40004023F00")
    aids = [decode_dir_record(read_record(rt, 0x2F00, n)) for n in (1, 2)]
    assert [a.aid for a in aids if a] == [DEFAULT_USIM_AID, i.DEFAULT_ISIM_AID]


def test_isim_files() -> None:
    rt = card()
    select_usim(rt, i.DEFAULT_ISIM_AID)
    domain = "ims.mnc001.mcc001.3gppnetwork.org"
    assert i.decode_uri(read_ef(rt, i.EF_IMPI)) == f"{TEST_IMSI}@{domain}"
    assert i.decode_uri(read_ef(rt, i.EF_DOMAIN)) == domain
    assert i.decode_uri(read_record(rt, i.EF_IMPU, 1)) == f"sip:{TEST_IMSI}@{domain}"
    assert i.decode_pcscf(read_record(rt, i.EF_PCSCF, 1)) == i.PcscfAddress(f"pcscf.{domain}")
    assert read_ef(rt, i.EF_IST)[0] & 0x01  # service n°1, P-CSCF address
    assert i.decode_isim_ad(read_ef(rt, i.EF_AD)) == (0, 0)
    assert read_record(rt, i.EF_ARR, 1)


def test_ims_aka_beside_the_usim_on_another_channel() -> None:
    rt = card()
    select_usim(rt)  # channel 0: the USIM
    data, sw = send(rt, "0070000001")  # MANAGE CHANNEL open
    assert sw == 0x9000
    ch = data[0]
    select_usim(rt, i.DEFAULT_ISIM_AID, channel=ch)
    alg = Milenage(TEST_K, TEST_OPC)
    rand = bytes(range(16))
    v = generate_auth_vector(alg, rand, (0x40).to_bytes(6, "big"), b"\x80\x00")
    data, sw = authenticate(rt, rand, v.autn, channel=ch)
    assert sw == 0x9000
    # 'DB' L RES L CK L IK, no Kc on the ISIM.
    assert data == b"\xdb" + bytes((8,)) + v.xres + b"\x10" + v.ck + b"\x10" + v.ik
    # The SQN state is the profile's: the same AUTN on the USIM is stale now.
    data, sw = authenticate(rt, rand, v.autn)
    assert sw == 0x9000 and data[0] == 0xDC
    # The USIM still answers on channel 0 with its Kc.
    v2 = generate_auth_vector(alg, rand, (0x60).to_bytes(6, "big"), b"\x80\x00")
    data, sw = authenticate(rt, rand, v2.autn)
    assert sw == 0x9000 and len(data) == 1 + 9 + 17 + 17 + 9


def test_isim_refusals() -> None:
    rt = card(pin1_enabled=True)
    select_usim(rt, i.DEFAULT_ISIM_AID)
    assert authenticate(rt, bytes(16))[1] == 0x6A86  # no GSM context on the ISIM
    alg = Milenage(TEST_K, TEST_OPC)
    v = generate_auth_vector(alg, bytes(16), (0x40).to_bytes(6, "big"), b"\x80\x00")
    assert authenticate(rt, bytes(16), v.autn)[1] == 0x6982  # PIN1 first
    bad = v.autn[:8] + bytes(8)
    send(rt, "0020000108" + b"1234".ljust(8, b"\xff").hex())
    assert authenticate(rt, bytes(16), bad)[1] == 0x9862
    # GET IDENTITY is the USIM's.
    assert send(rt, "8078000100")[1] == 0x6985


def test_euicc_empty_answers_the_euicc_atr() -> None:
    from host.presets import new_card

    atrs = {}
    for name in ("euicc", "euicc-empty", "usim"):
        rt = new_card(name)
        atrs[name] = rt.power_on()
    assert atrs["euicc-empty"] == atrs["euicc"] == atrs["usim"]
