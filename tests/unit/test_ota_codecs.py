"""OTA encoders and decoders: TS 23.040 TPDUs and UDH, TS 102 223 TLVs, TS 102 226 scripts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card.apdu import CommandApdu
from card.ota import cat, ram, sms

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
addresses = st.builds(sms.Address, digits, st.sampled_from([0x81, 0x91, 0xA1]))
user_data = st.binary(max_size=140)


@given(addresses, user_data, st.booleans(), st.binary(min_size=7, max_size=7), st.booleans())
def test_sms_deliver_round_trip(
    oa: sms.Address, ud: bytes, udhi: bool, scts: bytes, more: bool
) -> None:
    d = sms.SmsDeliver(oa, ud, udhi, scts=scts, more_messages=more)
    assert sms.SmsDeliver.from_bytes(d.to_bytes()) == d


@given(addresses, user_data, st.booleans(), st.integers(0, 255))
def test_sms_submit_round_trip(da: sms.Address, ud: bytes, udhi: bool, mr: int) -> None:
    s = sms.SmsSubmit(da, ud, udhi, message_ref=mr)
    assert sms.SmsSubmit.from_bytes(s.to_bytes()) == s


def test_known_sms_deliver() -> None:
    # 3GPP TS 23.040 layout: 44 (UDHI, no more messages), OA 5 digits 81 "12345",
    # PID 7F, DCS F6, SCTS, UDL 3, UD 02 70 00.
    d = sms.SmsDeliver(sms.Address("12345", 0x81), b"\x02\x70\x00")
    assert d.to_bytes().hex() == "4405812143f57ff66210100000000003027000"


def test_address_value_of_a_ctlv() -> None:
    a = sms.Address("491701234567")
    assert a.to_bytes().hex() == "91947110325476"
    assert sms.Address.from_bytes(a.to_bytes()) == a


@given(st.binary(max_size=2000), st.integers(0, 255))
def test_segmentation_reassembles(packet: bytes, ref: int) -> None:
    uds = sms.segment_command_packet(packet, ref)
    assert all(len(u) <= sms.MAX_UD for u in uds)
    r = sms.Reassembly()
    out = None
    for ud in uds:
        assert out is None
        out = r.add(sms.command_segment(ud))
    assert out == packet


def test_segments_out_of_order_and_a_new_message_starts_over() -> None:
    uds = sms.segment_command_packet(bytes(range(256)) * 2, 9)
    assert len(uds) == 4
    r = sms.Reassembly()
    for i in (2, 0, 3):
        assert r.add(sms.command_segment(uds[i])) is None
    other = sms.segment_command_packet(b"x" * 300, 10)
    assert r.add(sms.command_segment(other[0])) is None  # another reference: starts over
    assert r.parts.keys() == {1}


def test_first_segment_carries_iei_70_later_ones_do_not() -> None:
    uds = sms.segment_command_packet(bytes(300), 1)
    heads = [sms.UserData.from_bytes(u) for u in uds]
    assert heads[0].element(sms.IEI_COMMAND_PACKET) == b""
    assert all(h.element(sms.IEI_COMMAND_PACKET) is None for h in heads[1:])
    assert [h.element(sms.IEI_CONCAT_8BIT) for h in heads] == [bytes((1, 3, i)) for i in (1, 2, 3)]


@pytest.mark.parametrize("bad", ["", "05", "0270", "027001", "0500030102", "050003010203"])
def test_bad_headers_are_refused(bad: str) -> None:
    with pytest.raises(sms.SmsError):
        sms.command_segment(bytes.fromhex(bad))


ctlvs = st.builds(
    cat.Ctlv,
    st.integers(1, 0x7E),
    st.binary(max_size=255),
    st.booleans(),
)


@given(st.lists(ctlvs, max_size=5))
def test_ctlv_round_trip(items: list[cat.Ctlv]) -> None:
    assert cat.parse_ctlvs(b"".join(i.to_bytes() for i in items)) == items


@given(
    st.binary(min_size=1, max_size=160), st.one_of(st.none(), st.binary(min_size=1, max_size=10))
)
def test_sms_pp_download_round_trip(tpdu: bytes, sc: bytes | None) -> None:
    assert cat.parse_sms_pp_download(cat.sms_pp_download(tpdu, sc)) == (tpdu, sc)


@given(st.binary(max_size=150), st.integers(1, 254))
def test_proactive_and_terminal_response_round_trip(tpdu: bytes, number: int) -> None:
    cmd = cat.send_short_message(tpdu, sms.Address("12").to_bytes(), b"hi", number=number)
    assert cat.ProactiveCommand.from_bytes(cmd.to_bytes()) == cmd
    tr = cat.TerminalResponse(cmd.details, 0x21, b"\x01")
    assert cat.TerminalResponse.from_bytes(tr.to_bytes()) == tr
    assert not tr.ok


def test_known_terminal_response() -> None:
    # TS 102 223 §6.8: 81 03 (details) 82 02 82 81 (terminal -> UICC) 83 01 00 (OK).
    tr = cat.TerminalResponse(b"\x01\x13\x00", 0)
    assert tr.to_bytes().hex() == "810301130082028281830100"


commands = st.builds(
    CommandApdu,
    st.sampled_from([0x00, 0x80]),
    st.sampled_from([0xA4, 0xD6, 0xE6, 0xE8, 0xE4, 0xD8]),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=255),
)


@given(st.lists(commands, max_size=6))
def test_compact_script_round_trip(cmds: list[CommandApdu]) -> None:
    assert ram.split_compact(ram.compact_script(cmds), frozenset()) == cmds


@given(st.lists(commands, min_size=1, max_size=6), st.booleans())
def test_expanded_script_round_trip(cmds: list[CommandApdu], indefinite: bool) -> None:
    assert ram.parse_expanded(ram.expanded_script(cmds, indefinite=indefinite)) == cmds


@given(st.lists(st.tuples(st.binary(max_size=50), st.sampled_from([0x9000, 0x6A88])), max_size=5))
def test_expanded_response_round_trip(rapdus: list[tuple[bytes, int]]) -> None:
    answers = iter(rapdus)
    script = ram.expanded_script([CommandApdu(0x80, 0xF2, 0x80, 0x02, b"\x4f\x00")] * len(rapdus))
    if not rapdus:
        return
    out = ram.run_expanded(script, lambda c: next(answers))
    n, got = ram.parse_expanded_response(out)
    stop = next((i for i, (_, sw) in enumerate(rapdus) if sw != 0x9000), len(rapdus) - 1)
    assert n == len(got) == stop + 1
    assert got == rapdus[: stop + 1]


def test_compact_case2_uses_p3_as_le() -> None:
    script = bytes.fromhex("00B000000A00A4000C023F00")
    cmds = ram.split_compact(script, frozenset({0xB0}))
    assert cmds[0].le == 10 and not cmds[0].data and cmds[1].data == b"\x3f\x00"
    with pytest.raises(ram.ScriptError):
        ram.split_compact(bytes.fromhex("00A4000C023F"), frozenset())


@given(st.binary(max_size=1000), st.integers(0, 255), st.randoms())
def test_response_segments_reassemble_in_any_order(packet: bytes, ref: int, rnd: object) -> None:
    parts = sms.segment_response_packet(packet, ref)
    assert all(len(p) <= sms.MAX_UD for p in parts)
    rnd.shuffle(parts)  # type: ignore[attr-defined]
    assert sms.reassemble_response(parts) == packet
    if len(parts) > 1:
        with pytest.raises(sms.SmsError):
            sms.reassemble_response(parts[1:])
