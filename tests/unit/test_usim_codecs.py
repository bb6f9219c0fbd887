"""USIM and UICC file contents (TS 31.102 §4.2, TS 102 221 §13): known encodings and
hypothesis round-trips for every encoder/decoder pair."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.uicc import ts_31_102 as u
from card.uicc.ts_51_011 import gsm_status
from card.uicc.ts_102_221 import (
    ApplicationTemplate,
    decode_dir_record,
    decode_iccid,
    decode_languages,
    encode_dir_record,
    encode_iccid,
    encode_languages,
    luhn_digit,
    pad_pin,
    unpad_pin,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
mcc = st.text(alphabet="0123456789", min_size=3, max_size=3)
mnc = st.text(alphabet="0123456789", min_size=2, max_size=3)
plmns = st.builds(u.Plmn, mcc, mnc)
gsm_text = st.text(alphabet=u.GSM_DEFAULT_ALPHABET.replace("\x1b", ""), max_size=14)
ucs2_text = st.text(
    alphabet=st.characters(min_codepoint=0x100, max_codepoint=0xFFFE, exclude_categories=["Cs"]),
    max_size=6,
)
dial = st.text(alphabet="0123456789*#pwe", max_size=20)
numbers = st.one_of(dial, dial.map(lambda s: "+" + s))


# -- Known encodings (the byte layouts the specifications show) ------------------------------


def test_imsi_known() -> None:
    # 15 digits: odd, so the first nibble after the length is 9 (odd, IMSI); TS 24.008 §10.5.1.4
    assert u.encode_imsi("001010000000001").hex() == "080910100000000010"


def test_imsi_even_number_of_digits() -> None:
    enc = u.encode_imsi("26201123456789")
    assert enc[0] == 8
    assert enc[1] == 0x21  # digit 1 = 2, even indicator 0, type 001
    assert enc[8] >> 4 == 0xF  # the filler nibble
    assert u.decode_imsi(enc) == "26201123456789"


def test_imsi_refuses_non_imsi() -> None:
    with pytest.raises(ValueError):
        u.decode_imsi(bytes.fromhex("080a10100000000010"))  # type of identity 010 (IMEI)
    with pytest.raises(ValueError):
        u.encode_imsi("12345")


def test_iccid_known() -> None:
    # TS 102 221 §13.2: swapped BCD, F padding
    assert encode_iccid("8988210000000000012").hex() == "988812000000000010f2"
    assert decode_iccid(bytes.fromhex("988812000000000010f2")) == "8988210000000000012"


def test_luhn() -> None:
    assert luhn_digit("7992739871") == "3"  # the ISO/IEC 7812 example
    assert luhn_digit("898821000000000001") == "2"


def test_plmn_known() -> None:
    # TS 24.008 §10.5.1.3 examples: 262-01 -> 62 F2 10; 310-410 -> 13 00 14
    assert u.encode_plmn(u.Plmn("262", "01")).hex() == "62f210"
    assert u.encode_plmn(u.Plmn("310", "410")).hex() == "130014"
    assert u.decode_plmn(bytes.fromhex("62f210")) == u.Plmn("262", "01")
    assert u.decode_plmn(b"\xff\xff\xff") is None


def test_service_table_known() -> None:
    # service 1 = b1 of byte 1; service 9 = b1 of byte 2; 27 = b3 of byte 4
    assert u.encode_service_table({1, 9, 27}, 4).hex() == "01010004"
    assert u.decode_service_table(bytes.fromhex("01010004")) == {1, 9, 27}


def test_acc_known() -> None:
    assert u.encode_acc({1}).hex() == "0002"
    assert u.encode_acc({15, 0}).hex() == "8001"
    assert u.acc_for_imsi("001010000000001") == {1}


def test_dialling_number_known() -> None:
    rec = u.encode_dialling_number(u.DiallingNumber("Bob", "+491701234"), 20)
    # alpha 6 bytes, length 6 (TON + 5 BCD bytes), 91, 94 71 10 32 F4, FF padding, CCP, EXT
    assert rec.hex() == "426f62ffffff069194711032f4ffffffffffffff"
    assert u.decode_dialling_number(rec) == u.DiallingNumber("Bob", "+491701234")
    assert u.decode_dialling_number(b"\xff" * 20) is None


def test_alpha_ucs2() -> None:
    enc = u.encode_alpha("Ж", 5)
    assert enc.hex() == "800416ffff"
    assert u.decode_alpha(enc) == "Ж"
    # '81' coding (TS 102 221 Annex A): 2 chars, base 0x0400 >> 7 = 08, 0x96 = base + 0x16
    assert u.decode_alpha(bytes.fromhex("8102089641")) == "ЖA"


def test_alpha_gsm_special_characters() -> None:
    enc = u.encode_alpha("@£$_", 6)
    assert enc.hex() == "00010211ffff"
    assert u.decode_alpha(enc) == "@£$_"


def test_spn_known() -> None:
    assert u.encode_spn(u.Spn("cardemu")).hex() == "01" + b"cardemu".hex() + "ff" * 9


def test_ecc_known() -> None:
    rec = u.encode_ecc(u.EmergencyCallCode("112", "SOS", 0x01), 8)
    assert rec.hex() == "11f2ff" + "534f53ff" + "01"
    assert u.decode_ecc(rec) == u.EmergencyCallCode("112", "SOS", 1)
    assert u.decode_ecc(b"\xff" * 8) is None


def test_smsp_known() -> None:
    rec = u.encode_smsp(u.SmsParameters(service_centre="+491710760000", protocol_id=0), 28)
    # indicators: destination absent (b1), SC present, PID present, DCS and VP absent
    assert rec[0] == 0xF9
    assert rec[13:21].hex() == "0791947101670000"
    assert u.decode_smsp(rec).service_centre == "+491710760000"


def test_loci_known() -> None:
    assert u.encode_loci(u.Loci(plmn=bytes.fromhex("00f110"))).hex() == "ffffffff00f110fffeff01"


def test_dir_record_known() -> None:
    aid = bytes.fromhex("A0000000871002FFFFFFFF8907090000")
    rec = encode_dir_record(ApplicationTemplate(aid, "USIM"), 32)
    assert rec.hex().startswith("61184f10" + aid.hex() + "5004" + b"USIM".hex())
    assert rec.endswith(b"\xff\xff")
    assert decode_dir_record(rec) == ApplicationTemplate(aid, "USIM")
    assert decode_dir_record(b"\xff" * 32) is None


def test_languages_known() -> None:
    assert encode_languages(["en", "de"], 6).hex() == "656e6465ffff"
    assert decode_languages(bytes.fromhex("656e6465ffff")) == ("en", "de")


def test_pin_padding() -> None:
    assert pad_pin("1234").hex() == "31323334ffffffff"
    assert unpad_pin(pad_pin(b"12345678")) == b"12345678"
    with pytest.raises(ValueError):
        pad_pin("123456789")


def test_gsm_status_words() -> None:
    assert gsm_status(0x6A82) == 0x9404
    assert gsm_status(0x63C2) == 0x9804
    assert gsm_status(0x6C10) == 0x6710
    assert gsm_status(0x9000) == 0x9000


# -- Round-trips ------------------------------------------------------------------------------


@given(st.text(alphabet="0123456789", min_size=6, max_size=15))
def test_imsi_roundtrip(imsi: str) -> None:
    enc = u.encode_imsi(imsi)
    assert len(enc) == u.IMSI_SIZE
    assert u.decode_imsi(enc) == imsi


@given(digits)
def test_iccid_roundtrip(iccid: str) -> None:
    assert decode_iccid(encode_iccid(iccid)) == iccid


@given(plmns)
def test_plmn_roundtrip(p: u.Plmn) -> None:
    assert u.decode_plmn(u.encode_plmn(p)) == p


@given(st.lists(plmns, max_size=6), st.integers(0, 3))
def test_plmn_list_roundtrip(ps: list[u.Plmn], spare: int) -> None:
    enc = u.encode_plmn_list(ps, 3 * (len(ps) + spare))
    assert u.decode_plmn_list(enc) == tuple(ps)


@given(st.lists(st.tuples(plmns, st.integers(0, 0xFFFF)), max_size=5), st.integers(0, 2))
def test_plmn_act_roundtrip(entries: list[tuple[u.Plmn, int]], spare: int) -> None:
    enc = u.encode_plmn_act_list(entries, 5 * (len(entries) + spare))
    assert u.decode_plmn_act_list(enc) == tuple(entries)


@given(st.sets(st.integers(1, 96)))
def test_service_table_roundtrip(services: set[int]) -> None:
    assert u.decode_service_table(u.encode_service_table(services, 12)) == services


@given(st.sets(st.integers(0, 15)))
def test_acc_roundtrip(classes: set[int]) -> None:
    assert u.decode_acc(u.encode_acc(classes)) == classes


@given(
    st.builds(
        u.AdministrativeData, st.integers(0, 255), st.integers(0, 0xFFFF), st.sampled_from([2, 3])
    )
)
def test_ad_roundtrip(ad: u.AdministrativeData) -> None:
    assert u.decode_ad(u.encode_ad(ad)) == ad


@given(
    st.builds(
        u.Loci,
        st.binary(min_size=4, max_size=4),
        st.binary(min_size=3, max_size=3),
        st.integers(0, 0xFFFF),
        st.integers(0, 255),
        st.integers(0, 255),
    )
)
def test_loci_roundtrip(loci: u.Loci) -> None:
    assert u.decode_loci(u.encode_loci(loci)) == loci


@given(
    st.builds(
        u.PsLoci,
        st.binary(min_size=4, max_size=4),
        st.binary(min_size=3, max_size=3),
        st.binary(min_size=3, max_size=3),
        st.integers(0, 0xFFFF),
        st.integers(0, 255),
        st.integers(0, 255),
    )
)
def test_psloci_roundtrip(p: u.PsLoci) -> None:
    assert u.decode_psloci(u.encode_psloci(p)) == p


@given(
    st.builds(
        u.Keys,
        st.integers(0, 255),
        st.binary(min_size=16, max_size=16),
        st.binary(min_size=16, max_size=16),
    )
)
def test_keys_roundtrip(k: u.Keys) -> None:
    assert u.decode_keys(u.encode_keys(k)) == k


@given(st.one_of(gsm_text, ucs2_text))
def test_alpha_roundtrip(text: str) -> None:
    assert u.decode_alpha(u.encode_alpha(text, 14)) == text


@given(st.builds(u.Spn, st.one_of(gsm_text, ucs2_text.map(lambda s: s[:7])), st.integers(0, 255)))
def test_spn_roundtrip(spn: u.Spn) -> None:
    assert u.decode_spn(u.encode_spn(spn)) == spn


@given(
    st.builds(
        u.DiallingNumber,
        st.one_of(gsm_text, ucs2_text),
        numbers,
        st.integers(0, 255),
        st.integers(0, 255),
    )
)
def test_dialling_number_roundtrip(entry: u.DiallingNumber) -> None:
    rec = u.encode_dialling_number(entry, 28)
    assert len(rec) == 28
    back = u.decode_dialling_number(rec)
    if entry.number in ("", "+"):
        # No digits: the number field stays empty (a lone "+" has nothing to dial).
        assert back is None or back.alpha == entry.alpha
        return
    assert back == entry


@given(
    st.builds(
        u.EmergencyCallCode,
        st.text(alphabet="0123456789", min_size=1, max_size=6),
        gsm_text.map(lambda s: s[:10]),
        st.integers(0, 255),
    )
)
def test_ecc_roundtrip(entry: u.EmergencyCallCode) -> None:
    assert u.decode_ecc(u.encode_ecc(entry, 14)) == entry


@given(
    st.builds(
        u.SmsRecord, st.integers(0, 255), st.binary(max_size=175).map(lambda b: b.rstrip(b"\xff"))
    )
)
def test_sms_roundtrip(sms: u.SmsRecord) -> None:
    assert u.decode_sms(u.encode_sms(sms)) == sms


@given(
    st.builds(
        u.SmsParameters,
        gsm_text,
        st.one_of(st.none(), numbers),
        st.one_of(st.none(), numbers),
        st.one_of(st.none(), st.integers(0, 255)),
        st.one_of(st.none(), st.integers(0, 255)),
        st.one_of(st.none(), st.integers(0, 255)),
    )
)
def test_smsp_roundtrip(p: u.SmsParameters) -> None:
    assert u.decode_smsp(u.encode_smsp(p, 42)) == p


@given(
    st.builds(
        ApplicationTemplate,
        st.binary(min_size=1, max_size=16),
        st.text(alphabet="ABCDEFGHIJ", max_size=8),
    )
)
def test_dir_record_roundtrip(app: ApplicationTemplate) -> None:
    assert decode_dir_record(encode_dir_record(app, 32)) == app


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=2), max_size=5))
def test_languages_roundtrip(codes: list[str]) -> None:
    assert decode_languages(encode_languages(codes, 10)) == tuple(codes)


@given(st.binary(min_size=1, max_size=8).filter(lambda b: not b.endswith(b"\xff")))
def test_pin_roundtrip(pin: bytes) -> None:
    assert unpad_pin(pad_pin(pin)) == pin


# -- 5G files (TS 31.102 §4.4.11.8, §4.4.11.11) -----------------------------------------------

# Encode/decode vectors: (value, encoding). The C.4 Profile A key of TS 33.501 as key 27.
_C4_A_PUB = bytes.fromhex("5a8d38864820197c3394b92613b20b91633cbd897119273bf8e4a6f4eec0a650")
SUCI_CALC_INFO_VECTORS = [
    (u.SuciCalcInfo(((0, 0),)), "A0020000"),
    (
        u.SuciCalcInfo(((1, 1), (0, 0)), ((27, _C4_A_PUB),)),
        "A0040101" "0000" "A125" "80011B" "8120" + _C4_A_PUB.hex().upper(),
    ),
]  # fmt: skip
# osmocom/pysim pySim/ts_31_102.py EF_SUCI_Calc_Info._test_de_encode: Profile A (key 10),
# then the null scheme; two X25519 keys (identifiers 10 and 11).
SUCI_CALC_INFO_VECTORS.append(
    (
        u.SuciCalcInfo(
            ((1, 1), (0, 0)),
            (
                (
                    10,
                    bytes.fromhex(
                        "4e858c4d49d1343e6181284c47ca721730c98742cb7c6182d2e8126e08088d36"
                    ),
                ),
                (
                    11,
                    bytes.fromhex(
                        "d1bc365f4997d17ce4374e72181431cbfeba9e1b98d7618f79d48561b144672a"
                    ),
                ),
            ),
        ),
        "A00401010000A14A80010A81204E858C4D49D1343E6181284C47CA721730C98742CB7C6182D2E8126E08088D36"
        "80010B8120D1BC365F4997D17CE4374E72181431CBFEBA9E1B98D7618F79D48561B144672A",
    )
)
ROUTING_INDICATOR_VECTORS = [("678", "76F8FFFF"), ("0", "F0FFFFFF"), ("1234", "2143FFFF")]


@pytest.mark.parametrize("value, enc", SUCI_CALC_INFO_VECTORS)
def test_suci_calc_info_vectors(value: u.SuciCalcInfo, enc: str) -> None:
    assert u.encode_suci_calc_info(value).hex().upper() == enc
    assert u.decode_suci_calc_info(bytes.fromhex(enc) + b"\xff" * 4) == value


@pytest.mark.parametrize("value, enc", ROUTING_INDICATOR_VECTORS)
def test_routing_indicator_vectors(value: str, enc: str) -> None:
    assert u.encode_routing_indicator(value).hex().upper() == enc
    assert u.decode_routing_indicator(bytes.fromhex(enc)) == value


@pytest.mark.parametrize(
    "bad", ["", "A001", "A00100", "A0020101", "A0020000A1038001", "A0020000A10681011B810100"]
)
def test_suci_calc_info_refusals(bad: str) -> None:
    with pytest.raises(ValueError):
        u.decode_suci_calc_info(bytes.fromhex(bad))


def test_routing_indicator_refusals() -> None:
    for bad in ("", "12345", "1a"):
        with pytest.raises(ValueError):
            u.encode_routing_indicator(bad)
    for enc in ("", "FF", "A1FFFFFF"):
        with pytest.raises(ValueError):
            u.decode_routing_indicator(bytes.fromhex(enc))


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.tuples(st.integers(0, 255), st.binary(min_size=1, max_size=65)), max_size=3),
    data=st.data(),
)
def test_suci_calc_info_roundtrip(keys: list[tuple[int, bytes]], data: st.DataObject) -> None:
    schemes = data.draw(
        st.lists(st.tuples(st.integers(0, 255), st.integers(0, len(keys))), min_size=1, max_size=4)
    )
    info = u.SuciCalcInfo(tuple(schemes), tuple(keys))
    assert u.decode_suci_calc_info(u.encode_suci_calc_info(info)) == info


@given(st.from_regex(r"[0-9]{1,4}", fullmatch=True))
def test_routing_indicator_roundtrip(ri: str) -> None:
    assert u.decode_routing_indicator(u.encode_routing_indicator(ri)) == ri
