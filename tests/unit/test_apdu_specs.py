"""apdu_specs: every spec's vectors, round trips from generated commands, decoding rules."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import construct as c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu_specs import cardemu_samples, iso7816_4
from apdu_specs.constructs import BerTlv, TagInfo, build_tlvs, parse_tlvs
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Field, Le, p1, p1p2, p2
from apdu_specs.framework.patterns import SwPattern, sws
from apdu_specs.framework.registry import (
    Registry,
    all_specs,
    decode_command,
    default_registry,
    match,
    spec_modules,
)
from apdu_specs.framework.response import decode_response
from apdu_specs.framework.session import DecodeSession
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector
from apdu_specs.strategies import HypothesisDraw, commands, values
from apdu_specs.values import HexInt, Named, to_json
from card.apdu import CommandApdu
from tests.unit.cards import sample_card, select

SPECS = all_specs()
VECTORS = [(s, v) for s in SPECS for v in s.vectors]


def _subset(expected: Any, actual: Any, where: str = "") -> None:
    """Assert `expected` is contained in `actual` (dicts by key, lists by position)."""
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{where}: expected a mapping, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{where}.{k} missing from {actual!r}"
            _subset(v, actual[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(expected) == len(actual), (
            f"{where}: {len(actual)} items, expected {len(expected)}"
        )
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _subset(e, a, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: {actual!r} != {expected!r}"


def _context(spec: CommandSpec, v: Vector) -> bytes | None:
    if v.context is not None:
        return v.context
    return spec.context.aids[0] if spec.context is not None else None


def _rebuild(spec: CommandSpec, d: Decoded) -> bytes:
    f = d.fields
    return spec.build(d.params, f["data"], ne=f["ne"], cla=int(f["cla"]), extended=f["extended"])


# -- The registry ---------------------------------------------------------------------------


def test_registry_holds_the_spec_modules() -> None:
    modules = spec_modules()
    assert {"apdu_specs.cardemu_samples", "apdu_specs.iso7816_4"} <= set(modules)
    assert not {"apdu_specs.framework", "apdu_specs.strategies"} & set(modules)
    assert set(iso7816_4.SPECS) | set(cardemu_samples.SPECS) <= set(SPECS)
    assert len({s.id for s in SPECS}) == len(SPECS)
    assert default_registry() is default_registry()
    assert default_registry().problems == []


def test_every_spec_has_a_clause_and_vectors() -> None:
    for s in SPECS:
        assert s.clause, s.id
        assert s.vectors, f"{s.id} has no vectors"


def test_required_iso_commands_are_present() -> None:
    names = {s.name for s in iso7816_4.SPECS}
    for name in (
        "SELECT", "READ BINARY", "UPDATE BINARY", "WRITE BINARY", "READ RECORD", "UPDATE RECORD",
        "APPEND RECORD", "SEARCH RECORD", "VERIFY", "CHANGE REFERENCE DATA", "RESET RETRY COUNTER",
        "ENABLE VERIFICATION REQUIREMENT", "DISABLE VERIFICATION REQUIREMENT", "GET CHALLENGE",
        "INTERNAL AUTHENTICATE", "EXTERNAL AUTHENTICATE", "MANAGE CHANNEL", "GET RESPONSE",
        "ENVELOPE", "GET DATA", "PUT DATA", "MANAGE SECURITY ENVIRONMENT",
        "PERFORM SECURITY OPERATION", "ACTIVATE FILE", "DEACTIVATE FILE", "TERMINATE DF",
        "TERMINATE EF", "TERMINATE CARD USAGE",
    ):  # fmt: skip
        assert name in names, name
    select_modes = {s.p1 for s in iso7816_4.SELECT_SPECS}
    assert select_modes == {0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x09, None}
    pso = {s.match_value for s in iso7816_4.PSO_SPECS if not s.fallback}
    assert {0x9E9A, 0x9080, 0x00BE, 0x8680, 0x8086} <= pso


def test_sample_contexts_name_the_applets_aids() -> None:
    from applets.sample import COUNTER_CLIENT_AID, ECHO_AID, PURSE_AID

    assert cardemu_samples.PURSE.aids == (PURSE_AID,)
    assert cardemu_samples.ECHO.aids == (ECHO_AID,)
    assert cardemu_samples.COUNTER_CLIENT.aids == (COUNTER_CLIENT_AID,)


# -- The vectors: one generic walk -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "vector"), VECTORS, ids=[f"{s.id}:{v.command}" for s, v in VECTORS]
)
def test_vector(spec: CommandSpec, vector: Vector) -> None:
    raw = vector.command_bytes
    d = decode_command(raw, context=_context(spec, vector))
    assert d.spec is spec, f"decoded as {d.spec.id if d.spec else d.name}"
    assert d.issues == []
    if vector.summary is not None:
        assert d.summary == vector.summary
    out = d.to_json()
    json.dumps(out)  # JSON-ready
    assert out["raw"] == raw.hex().upper()
    _subset(dict(vector.expect), out["fields"], "fields")
    # What decodes builds back to the same bytes.
    assert _rebuild(spec, d) == raw
    if vector.response is None:
        assert not vector.response_expect and vector.response_summary is None
        return
    r = decode_response(spec, vector.response_bytes or b"", d)
    assert r.issues == []
    if vector.response_summary is not None:
        assert r.summary == vector.response_summary
    rj = r.to_json()
    json.dumps(rj)
    _subset(dict(vector.response_expect), rj["fields"], "response")
    # Response data that parsed builds back to the same bytes.
    body = (vector.response_bytes or b"")[:-2]
    if body and spec.response is not None and not isinstance(r.data, bytes):
        assert spec.response.build(r.data, params={}) == body


# -- Generated commands: hypothesis and the random examples ----------------------------------

GENERATED = [s for s in SPECS]


@pytest.mark.parametrize("spec", GENERATED, ids=[s.id for s in GENERATED])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_generated_commands_decode_cleanly_and_round_trip(spec: CommandSpec, data: Any) -> None:
    raw = data.draw(commands(spec))
    apdu = CommandApdu.from_bytes(raw)  # well formed
    assert spec.applies_to(apdu.cla, apdu.ins, (apdu.p1 << 8) | apdu.p2)
    d = spec.decode(apdu, raw)
    assert d.issues == [], (raw.hex(), d.issues)
    assert _rebuild(spec, d) == raw
    if not spec.fallback:
        # The registry picks this spec for it: no other spec shadows it.
        best = match(raw, context=spec.context.aids[0] if spec.context else None)
        assert best[0] is spec, (raw.hex(), [s.id for s in best])
    json.dumps(d.to_json())


DATA_SPECS = [s for s in SPECS if s.data is not None and s.data is not c.GreedyBytes]


@pytest.mark.parametrize("spec", DATA_SPECS, ids=[s.id for s in DATA_SPECS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_command_data_build_parse_build(spec: CommandSpec, data: Any) -> None:
    assert spec.data is not None
    value = data.draw(values(spec.data, (1, 64)))
    encoded = spec.data.build(value, params={})
    parsed = spec.data.parse(encoded, params={})
    assert spec.data.build(parsed, params={}) == encoded


RESPONSE_SPECS = [s for s in SPECS if s.response is not None and s.response is not c.GreedyBytes]


@pytest.mark.parametrize("spec", RESPONSE_SPECS, ids=[s.id for s in RESPONSE_SPECS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_response_data_build_parse_build(spec: CommandSpec, data: Any) -> None:
    assert spec.response is not None
    body = spec.generate_response_data(HypothesisDraw(data.draw))
    r = decode_response(spec, body + b"\x90\x00")
    assert r.issues == [], r.issues
    if body:
        assert spec.response.build(r.data, params={}) == body


def test_examples_are_reproducible_valid_and_reach_boundaries() -> None:
    read_binary = next(s for s in SPECS if s.name == "READ BINARY" and s.variant == "offset")
    a = read_binary.examples(7, 200)
    assert a == read_binary.examples(random.Random(7), 200)
    offsets = {int.from_bytes(x[2:4], "big") for x in a}
    assert {0, 0x7FFF} <= offsets  # both ends of the 15-bit offset
    for raw in a:
        assert decode_command(raw).issues == []
    # Ne boundaries: 1 and 65536 (extended Le 0000) both appear.
    nes = {CommandApdu.from_bytes(x).le for x in a}
    assert {1, 65536} <= nes


def test_every_spec_generates_examples_without_issues() -> None:
    rng = random.Random(2024)
    for s in SPECS:
        for raw in s.examples(rng, 20):
            d = s.decode(CommandApdu.from_bytes(raw), raw)
            assert d.issues == [], (s.id, raw.hex(), d.issues)


def test_generation_leaves_rfu_bits_zero_and_uses_defined_values() -> None:
    select = next(s for s in SPECS if s.name == "SELECT" and s.p1 == 0x04)
    for raw in select.examples(3, 100):
        assert raw[3] & 0xB0 == 0  # P2 b8, b6, b5 are RFU
        assert raw[2] == 0x04
    record = next(s for s in SPECS if s.name == "READ RECORD")
    modes = {raw[3] & 0x07 for raw in record.examples(5, 300)}
    assert modes == {0, 1, 2, 3, 4, 5, 6}  # 7 is RFU
    assert max(raw[3] >> 3 for raw in record.examples(6, 300)) <= 30  # SFI 31 is RFU


def test_strategy_helper_is_lazy_hypothesis() -> None:
    spec = next(s for s in SPECS if s.name == "GET CHALLENGE")

    @settings(max_examples=20, deadline=None)
    @given(spec.strategy())
    def check(raw: bytes) -> None:
        assert raw[1] == 0x84 and raw[3] == 0x00
        assert CommandApdu.from_bytes(raw).le is not None  # Le is required

    check()


# -- Decoding rules ---------------------------------------------------------------------------


def test_decode_never_raises_on_random_bytes() -> None:
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=40), st.binary(max_size=20), st.sampled_from(SPECS))
    def check(cmd: bytes, resp: bytes, spec: CommandSpec) -> None:
        d = decode_command(cmd)
        assert isinstance(d.summary, str) and d.summary
        json.dumps(d.to_json())
        r = decode_response(spec, resp, d)
        json.dumps(r.to_json())
        assert r.kind == "response"

    check()


def test_malformed_and_invalid_commands() -> None:
    d = decode_command(bytes.fromhex("00A4"))
    assert d.spec is None and d.issues and "malformed" in d.summary
    d = decode_command(bytes.fromhex("00A4040C05A000"))  # Lc 5, 2 bytes
    assert d.spec is None and "Lc=5" in d.issues[0]
    d = decode_command(bytes.fromhex("FF000000"))
    assert d.spec is None and "PPS" in d.issues[0]
    d = decode_command(bytes.fromhex("80EE000000"))
    assert d.spec is None and d.name == "INS EE" and d.issues == []
    assert d.summary == "unknown command: CLA 80 INS EE P1 00 P2 00, Ne 256"


@pytest.mark.parametrize(
    ("hexstr", "issue"),
    [
        ("00A4041C07A0000000871002", "P1-P2 bits 0010 are RFU"),  # P2 b5
        ("00A400000101", "stream read less than specified amount, expected 2"),  # a FID
        ("00A4010C033F0001", "Nc = 3, expected 2..2"),
        ("00A40300023F00", "SELECT takes no command data"),  # parent DF
        ("00B00000", "Le field missing"),
        ("00D6000004", "Le field present"),
        ("00B0E10000", "P1-P2 bits 6000 are RFU"),  # SFI form, P1 b7-b6
        ("00B09F0000", "P1 b5-b1 sfi = 0x1f is not a defined value"),
        ("00B2FF0400", "P1 record = 0xff is not a defined value"),
        ("00B2010700", "P2 b3-b1 mode = 0x07 is not a defined value"),
        ("00A40800033F0001", "unexpected byte(s) after the command data"),  # odd path
        ("00B1000003550100", "data object(s) 54 missing"),
        ("2084000008", "CLA 20 is RFU"),
    ],
)
def test_issues_are_reported(hexstr: str, issue: str) -> None:
    d = decode_command(bytes.fromhex(hexstr))
    assert d.spec is not None
    assert any(issue in i for i in d.issues), d.issues


def test_rfu_enumerated_value_is_named_and_kept() -> None:
    d = decode_command(bytes.fromhex("00B2010700"))
    assert d.params["mode"] == 7 and str(d.params["mode"]) == "RFU 07"
    assert "mode 7 (RFU)" in d.summary


def test_response_issues() -> None:
    verify = next(s for s in SPECS if s.name == "VERIFY")
    cmd = decode_command(bytes.fromhex("0020008108" + "31" * 8))
    r = decode_response(verify, bytes.fromhex("9F10"), cmd)
    assert r.issues == ["9F10 is not a status word VERIFY is specified to return"]
    r = decode_response(verify, bytes.fromhex("0102"), cmd)  # data where none is defined
    assert r.issues and r.fields["sw"] == 0x0102
    r = decode_response(verify, bytes.fromhex("AA9000"), cmd)
    assert r.issues == ["VERIFY is not specified to return data"]
    read = next(s for s in SPECS if s.name == "READ BINARY")
    r = decode_response(read, bytes.fromhex("01026A82"), None)
    assert "response data with 6A82" in r.issues[0]
    r = decode_response(read, b"\x90")
    assert r.issues and "malformed" in r.summary
    select = next(s for s in SPECS if s.name == "SELECT" and s.p1 == 0x04)
    r = decode_response(select, bytes.fromhex("62058201FF9000"))  # length runs past the data
    assert r.issues and r.issues[0].startswith("response data does not parse")
    r = decode_response(None, bytes.fromhex("01029000"), None)
    assert r.issues == [] and r.data == b"\x01\x02" and r.name == "?"


def test_secure_messaging_data_is_read_as_sm_objects() -> None:
    d = decode_command(bytes.fromhex("0CB000000D9701008E08112233445566778800"))
    assert d.spec is not None and d.spec.name == "READ BINARY"
    assert d.issues == []  # Nc and Le rules are those of the protected command
    assert int(d.fields["secure_messaging"]) == 3
    assert [e["name"] for e in d.data] == ["Ne", "cryptographic checksum"]
    r = decode_response(d.spec, bytes.fromhex("990290008E0811223344556677889000"), d)
    assert r.issues == [] and [e["name"] for e in r.data] == [
        "processing status",
        "cryptographic checksum",
    ]


def test_chained_command_data_is_not_parsed() -> None:
    d = decode_command(bytes.fromhex("10DB3FFF035C035F"))  # first part of a PUT DATA chain
    assert d.fields["chained"] is True
    assert d.data == bytes.fromhex("5C035F") and d.issues == []


def test_channel_and_class_fields() -> None:
    d = decode_command(bytes.fromhex("43B0000010"))  # further interindustry, channel 7
    assert d.fields["channel"] == 7
    assert d.to_json()["fields"]["cla"] == "43"
    d = decode_command(bytes.fromhex("01A4040C07A0000000871002"))
    assert d.fields["channel"] == 1 and d.params["response"] == 3


# -- Contexts and matching -----------------------------------------------------------------------

PURSE_AID = cardemu_samples.PURSE.aids[0]
ECHO_AID = cardemu_samples.ECHO.aids[0]
#: Only this module's specs: other modules may give the same headers other readings.
MINE = Registry((*iso7816_4.SPECS, *cardemu_samples.SPECS))


def test_context_selects_or_excludes_applet_specs() -> None:
    raw = bytes.fromhex("8050000004")
    assert MINE.decode_command(raw).name == "GET BALANCE"  # the only candidate
    assert decode_command(raw, context=PURSE_AID).name == "GET BALANCE"
    d = MINE.decode_command(raw, context=ECHO_AID)
    assert d.spec is None  # the echo applet has no INS 50
    # Interindustry commands decode whatever is selected.
    assert decode_command(bytes.fromhex("0084000008"), context=ECHO_AID).name == "GET CHALLENGE"
    # A right-truncated AID (partial SELECT) still matches.
    assert cardemu_samples.PURSE.matches(PURSE_AID[:5])
    assert not cardemu_samples.PURSE.matches(ECHO_AID)


def _ambiguous_registry() -> Registry:
    a = AppletContext("A", (bytes.fromhex("A000000001"),))
    b = AppletContext("B", (bytes.fromhex("A000000002"),))
    return Registry(
        [
            CommandSpec("ALPHA", 0x50, "test", cla=0x80, p1=0, p2=0, context=a),
            CommandSpec("BETA", 0x50, "test", cla=0x80, p1=0, p2=0, context=b),
            CommandSpec("ANY", 0x50, "test", cla=0x80, fields=(p1p2("x"),)),
        ]
    )


def test_ambiguity_context_and_specificity() -> None:
    reg = _ambiguous_registry()
    raw = bytes.fromhex("80500000")
    # No context: the applet-free reading first, the applets' as alternatives.
    assert [s.name for s in reg.match(raw)] == ["ANY", "ALPHA", "BETA"]
    d = reg.decode_command(raw)
    assert d.name == "ANY" and d.alternatives == ("ALPHA [A]", "BETA [B]")
    # The selected applet's reading first; another applet's is left out.
    assert [s.name for s in reg.match(raw, context=bytes.fromhex("A00000000201"))] == [
        "BETA",
        "ANY",
    ]
    assert reg.decode_command(raw, context=bytes.fromhex("A00000000201")).name == "BETA"
    assert reg.decode_command(raw, context=bytes.fromhex("A000000009")).name == "ANY"
    assert [s.name for s in reg.match(bytes.fromhex("80500100"))] == ["ANY"]
    assert reg.context_for(bytes.fromhex("A00000000101")) is not None
    assert [s.name for s in reg.find("beta")] == ["BETA"]


def test_a_reading_that_fits_the_bytes_wins() -> None:
    a = AppletContext("A", (bytes.fromhex("A000000001"),))
    strict = CommandSpec("STRICT", 0x50, "test", cla=0x80, fields=(p1p2("x"),), data=c.Bytes(8))
    applet = CommandSpec("LOOSE", 0x50, "test", cla=0x80, p1=0, p2=0, le=Le.REQUIRED, context=a)
    reg = Registry([strict, applet])
    fits_strict = bytes.fromhex("80500000080102030405060708")
    assert reg.decode_command(fits_strict).name == "STRICT"
    d = reg.decode_command(bytes.fromhex("8050000004"))  # no data, Le: only LOOSE fits
    assert d.name == "LOOSE" and d.issues == [] and d.alternatives == ("STRICT",)
    d = reg.decode_command(bytes.fromhex("80500001"))  # fits neither: the first guess stays
    assert d.name == "STRICT" and d.issues


def test_registry_refuses_duplicate_ids() -> None:
    s = CommandSpec("X", 0x01, "test")
    with pytest.raises(ValueError, match="both"):
        Registry([s, CommandSpec("X", 0x02, "test")])
    lenient = Registry([s, CommandSpec("X", 0x02, "test")], strict=False)
    assert lenient.specs == (s,) and "left out" in lenient.problems[0]


def test_more_specific_spec_wins_over_fallback() -> None:
    assert decode_command(bytes.fromhex("002A9E9A040102030400")).spec.variant == (  # type: ignore[union-attr]
        "COMPUTE DIGITAL SIGNATURE"
    )
    assert decode_command(bytes.fromhex("002A9E9B0401020304")).spec.fallback  # type: ignore[union-attr]
    sel = decode_command(bytes.fromhex("00A4040C07A0000000871002"))
    assert sel.alternatives == ()  # the fallback is not an alternative


# -- Sessions -------------------------------------------------------------------------------------


def test_session_follows_selection_and_channels() -> None:
    s = DecodeSession(MINE)
    c_, r = s.exchange(bytes.fromhex(select(PURSE_AID)), bytes.fromhex("9000"))
    assert c_.name == "SELECT" and s.selected == {0: PURSE_AID}
    assert s.command(bytes.fromhex("8050000004")).name == "GET BALANCE"
    # The FCI's DF name wins over a partial name.
    s.exchange(
        bytes.fromhex("00A4040005F04341524400"), bytes.fromhex("6F0B8409") + ECHO_AID + b"\x90\x00"
    )
    assert s.selected[0] == ECHO_AID
    assert s.command(bytes.fromhex("8050000004")).spec is None
    assert s.command(bytes.fromhex("8002000404")).name == "GENERATE"
    # A failed SELECT changes nothing here.
    s.exchange(bytes.fromhex(select(PURSE_AID)), bytes.fromhex("6A82"))
    assert s.selected[0] == ECHO_AID
    # MANAGE CHANNEL open from channel 0: the new channel has the default applet (unknown).
    s.exchange(bytes.fromhex("0070000001"), bytes.fromhex("019000"))
    assert 1 not in s.selected
    s.exchange(bytes.fromhex("01A4040C09") + PURSE_AID, bytes.fromhex("9000"))
    assert s.selected[1] == PURSE_AID
    # Opened from channel 1: channel 2 gets channel 1's applet.
    s.exchange(bytes.fromhex("01700002"), bytes.fromhex("9000"))
    assert s.selected[2] == PURSE_AID
    assert s.command(bytes.fromhex("8250000004")).name == "GET BALANCE"
    s.exchange(bytes.fromhex("02708000"), bytes.fromhex("9000"))
    assert 2 not in s.selected
    s.reset()
    assert s.selected == {}


def test_session_reassembles_get_response() -> None:
    s = DecodeSession()
    fcp = bytes.fromhex("62178202412183022FE28A01058B032F06038002000A880110")
    s.exchange(bytes.fromhex("00A40204022FE2"), bytes.fromhex("6119"))
    _, first = s.exchange(bytes.fromhex("00C0000010"), fcp[:16] + b"\x61\x09")
    assert first.assembled is None and first.fields["available"] == 9
    _, last = s.exchange(bytes.fromhex("00C0000009"), fcp[16:] + b"\x90\x00")
    assert last.assembled is not None
    assert last.assembled.issues == [] and last.assembled.spec is not None
    assert last.assembled.spec.name == "SELECT"
    assert last.assembled.data[0]["children"][1]["value"] == bytes.fromhex("2FE2")
    assert "SELECT response: 9000" in last.summary
    assert last.to_json()["assembled"]["fields"]["data"][0]["name"] == "FCP template"


def test_specs_agree_with_the_emulated_sample_card() -> None:
    """The sample specs decode what the emulator really answers, with no issue."""
    card = sample_card()
    s = DecodeSession(MINE)
    script = [
        select(PURSE_AID),
        "8050000004",
        "8052000008",
        "804000000400000064",
        "002000010431323334",
        "00200001",
        "8030000004000000C8",
        "804000000400000064",
        "8052000008",
        "8050000004",
        f"00A4040009{ECHO_AID.hex()}00",
        "8001000003AABBCC00",
        "8002000404",
        select(cardemu_samples.COUNTER_CLIENT.aids[0]),
        "8010000002",
        "80110000",
    ]
    summaries = []
    for hexstr in script:
        raw = bytes.fromhex(hexstr)
        cmd, resp = s.exchange(raw, card.process(raw))
        assert cmd.spec is not None and cmd.issues == [], (hexstr, cmd.summary, cmd.issues)
        assert resp.issues == [], (hexstr, resp.summary, resp.issues)
        summaries.append(resp.summary.split("): ", 1)[-1])
    assert summaries[1] == "balance 0"
    assert summaries[3] == "6982 (Security status not satisfied)"
    assert summaries[8] == "transaction 2: debit 100"
    assert summaries[9] == "balance 100"
    assert summaries[10] == "FCI template [DF name F043415244454D5502]"
    assert summaries[14] == "counter 1"


# -- Framework pieces ------------------------------------------------------------------------------


def test_status_word_patterns() -> None:
    assert sws("9000 63Cx 6Cxx") == (
        SwPattern(0x9000),
        SwPattern(0x63C0, 0xFFF0),
        SwPattern(0x6C00, 0xFF00),
    )
    assert str(SwPattern(0x63C0, 0xFFF0)) == "63Cx"
    assert SwPattern(0x63C0, 0xFFF0).matches(0x63C5) and not SwPattern(0x63C0, 0xFFF0).matches(
        0x6300
    )
    with pytest.raises(ValueError):
        sws("900")


def test_fields() -> None:
    f = p2("sfi", mask=0xF8, lo=0, hi=30)
    assert (f.shift, f.where, f.get(0x0C)) == (3, "P2 b8-b4", 1)
    assert f.is_valid(30) and not f.is_valid(31)
    assert p1("x").where == "P1" and p1p2("o", mask=0x7FFF).where == "P1-P2"
    assert p2("b", mask=0x40).where == "P2 b7"
    assert isinstance(p1p2("tag", hex=True).wrap(0x5F52), HexInt)
    with pytest.raises(ValueError, match="contiguous"):
        Field("bad", 0x0101)
    with pytest.raises(ValueError, match="overlaps"):
        CommandSpec("X", 0x01, "t", p1=0, fields=(p1("y"),))
    with pytest.raises(ValueError, match="Nc"):
        CommandSpec("X", 0x01, "t", nc=(1, 2))


def test_build_checks_fields() -> None:
    read = next(s for s in SPECS if s.name == "READ BINARY" and s.variant == "SFI")
    assert read.build({"sfi": 2, "offset": 0x10}, ne=256) == bytes.fromhex("00B0821000")
    with pytest.raises(ValueError, match="no field"):
        read.build({"file": 1})
    with pytest.raises(ValueError, match="does not fit"):
        read.build({"sfi": 32})
    with pytest.raises(ValueError, match="no command data"):
        read.build({}, b"\x00")
    assert read.cla_values()[:4] == (0x00, 0x01, 0x02, 0x03) and 0x4F in read.cla_values()
    credit = next(s for s in SPECS if s.name == "CREDIT")
    assert credit.build(data={"amount": 5}) == bytes.fromhex("803000000400000005")
    assert 0xC3 in credit.cla_values()  # GlobalPlatform's further channels
    gsm = CommandSpec("X", 0xA4, "test", cla=0xA0, cla_mask=0xFF)
    assert gsm.cla_values() == (0xA0,)  # a fixed class has no channel bits


def test_value_types_and_json() -> None:
    n = Named(4, "by DF name")
    assert n == 4 and f"{n}" == "by DF name" and f"{n:02X}" == "04"
    h = HexInt(0x3F00, 4)
    assert f"{h}" == "3F00" and repr(h) == "0x3F00" and h + 1 == 0x3F01
    assert to_json({"a": b"\x01", "_io": 1, "n": n, "h": h, "l": [HexInt(5)]}) == {
        "a": "01",
        "n": "by DF name",
        "h": "3F00",
        "l": ["05"],
    }


def test_ber_tlv_construct() -> None:
    tags = {0x62: TagInfo("T", children={0x83: TagInfo("F")}), 0xC6: TagInfo("P", children={})}
    con = BerTlv(tags)
    v = con.parse(bytes.fromhex("620483023F00C603900140"))
    assert v[0]["children"][0] == {"tag": 0x83, "name": "F", "value": b"\x3f\x00"}
    assert v[1]["children"][0]["tag"] == 0x90  # C6 is a template by the table, though primitive
    assert con.build(v) == bytes.fromhex("620483023F00C603900140")
    assert build_tlvs([(0x80, b"\x01")]) == bytes.fromhex("800101")
    # A constructed value that is not BER-TLV keeps its bytes.
    bad = parse_tlvs(bytes.fromhex("A1020105"), {})
    assert bad[0]["value"] == b"\x01\x05" and "error" in bad[0]
    with pytest.raises(c.ConstructError):
        con.parse(bytes.fromhex("6205"))


def test_le_rules() -> None:
    assert Le.OPTIONAL.value == "optional"
    get_response = next(s for s in SPECS if s.name == "GET RESPONSE")
    assert get_response.le is Le.REQUIRED
