"""APDU scripts (host.script) and `cardemu run`: format, expectations, variables, exit codes.

The card is tests/unit/cards.py's sample card: the purse is default-selected
(PIN 1234, 3 tries), the echo applet's `80 02 P1P2` returns P1P2 bytes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from host.cli import main
from host.readers.base import Reader, ReaderError
from host.readers.inprocess import InProcessReader
from host.script import (
    Capture,
    Command,
    Exit,
    Pattern,
    Reset,
    ScriptFailed,
    ScriptMismatch,
    ScriptSyntaxError,
    SetVar,
    VarRef,
    parse_script,
    run_script,
)
from tests.unit.cards import sample_card

ROOT = Path(__file__).resolve().parents[2]
SELECT_ECHO = "00A4040C09F043415244454D5502"


def run(text: str, **kw):  # type: ignore[no-untyped-def]
    """Parse and run a script on a fresh sample card; returns the RunResult."""
    reader = InProcessReader(sample_card())
    return run_script(parse_script(text, source="t.apdu"), reader, **kw)


def cardemu(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the CLI's real entry point; returns (exit code, stdout, stderr)."""
    with CliRunner().isolation(input=stdin) as (out, err, _):
        code = main(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


# -- parsing --------------------------------------------------------------------------


def test_scriptor_basics() -> None:
    script = parse_script(
        "# comment\n"
        "\n"
        "00 A4 04 00 02 3F 00   # trailing comment\n"
        "00:B0:00:00:10\n"
        "80 01 00 00 04 \\\n"
        "   01 02 \\\n"
        "   03 04\n"
        "RESET\n"
        "exit\n"
        "00B0000000\n"
    )
    steps = script.steps
    assert steps[0] == Command(3, (bytes.fromhex("00A40400023F00"),))
    assert steps[1] == Command(4, (bytes.fromhex("00B0000010"),))
    # A continued line is one APDU, reported at its first physical line.
    assert steps[2] == Command(5, (bytes.fromhex("800100000401020304"),))
    assert steps[3] == Reset(8) and steps[4] == Exit(9)
    assert script.commands == 4  # the APDU after exit is parsed, never sent


def test_expectation_on_the_same_or_the_next_line() -> None:
    a = parse_script("8050000004 =9000").steps[0]
    b = parse_script("8050000004\n# between\n  =9000\n").steps[0]
    assert isinstance(a, Command) and isinstance(b, Command)
    assert a.expect == b.expect == Pattern.parse("9000")
    assert a.expect is not None and a.expect.sw_only


def test_captures_and_variables() -> None:
    script = parse_script(
        "0084000008 =9000 => $ch = [0:8] => $b = [2]\n"
        "=> $all\n"
        "set $k = 01 $ch\n"
        "0082000010 $ch ${k} 11\n"
    )
    first, setvar, use = script.steps
    assert isinstance(first, Command)
    assert first.captures == (
        Capture("ch", 0, 8, text="[0:8]"),
        Capture("b", index=2, text="[2]"),
        Capture("all", text="(all data)"),
    )
    assert setvar == SetVar(3, "k", (b"\x01", VarRef("ch")))
    assert isinstance(use, Command)
    assert use.template == (bytes.fromhex("0082000010"), VarRef("ch"), VarRef("k"), b"\x11")
    assert use.build({"ch": b"\xaa\xbb", "k": b"\x01\xaa\xbb"}) == bytes.fromhex(
        "0082000010AABB01AABB11"
    )


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("00A40000\n00GG", 2, "'G' is not hex"),
        ("00A40000 0", 1, "odd number of hex digits"),
        ("\n\n0020000104 $pin", 3, "$pin is not defined"),
        ("=9000", 1, "must follow an APDU"),
        ("reset\n=9000", 2, "must follow an APDU"),
        ("00A40000 =9000\n=6A82", 2, "already expects 9000"),
        ("00A40000 =9000 =6A82", 1, "one expectation per command"),
        # Without '*' a pattern is the whole response, which ends in a 2-byte SW.
        ("00A40000 =90", 1, "shorter than a status word"),
        ("00A40000 =x", 1, "whole number of bytes"),
        ("00A40000 =900", 1, "whole number of bytes"),
        ("00A40000 =9G00", 1, "'G'"),
        ("00A40000 =", 1, "empty expectation"),
        ("00A40000 => $x = [a:b]", 1, "slice [a:b]"),
        ("00A40000 => x", 1, "cannot read"),
        ("# x\n00A40000 \\", 2, "past the end"),
        # Nothing shorter than CLA INS P1 P2 is ever sent (through PC/SC 1 byte hangs vpcd).
        ("00", 1, "at least 4 bytes (CLA INS P1 P2), got 1 byte"),
        ("00A40000 =9000\n\n00 A4 04 =9000", 3, "got 3 bytes"),
        ("00A40000\n00A4 \\\n  # no more\n", 2, "got 2 bytes"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ScriptSyntaxError) as e:
        parse_script(text, source="s.apdu")
    assert e.value.line == line
    assert message in str(e.value)
    assert str(e.value).startswith(f"s.apdu:{line}: ")


def test_predefined_variables_are_known() -> None:
    script = parse_script("0020000104 $pin", variables={"pin": b"1234"})
    step = script.steps[0]
    assert isinstance(step, Command) and step.build({"pin": b"1234"})[-4:] == b"1234"


# -- patterns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, response, ok",
    [
        ("9000", "9000", True),
        ("9000", "01029000", True),  # two bytes: the SW only
        ("9000", "6A82", False),
        ("63Cx", "63C2", True),
        ("63CX", "63C0", True),
        ("63C.", "63C9", True),
        ("63Cx", "6382", False),
        ("6xx2", "6A82", True),
        ("61XX", "6110", True),
        ("6F..84..*9000", "6F0B8409F0434152444544559000", True),
        ("6F..84..*9000", "6F0B8509F0434152444544559000", False),
        ("6F..84..*9000", "6F0B84099000", True),  # * matches nothing
        ("6F..84..*9000", "6F0B8409F04341526A82", False),
        ("*9000", "9000", True),
        ("*9000", "0102039000", True),
        ("*", "6A82", True),
        ("0102*", "0102", True),
        ("0102*", "01", False),
        ("01*03*9000", "01AA03BB039000", True),
        ("01*03*9000", "01AABB9000", False),
        ("000102 9000", "0001029000", True),
        ("000102 9000", "00010203 9000".replace(" ", ""), False),  # too long
        ("XX XX 9000", "AB CD 90 00".replace(" ", ""), True),
        ("XXXX9000", "AB9000", False),  # too short
    ],
)
def test_patterns(pattern: str, response: str, ok: bool) -> None:
    assert Pattern.parse(pattern).matches(bytes.fromhex(response)) is ok


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_response_matches_its_own_pattern_with_wildcards(data: st.DataObject) -> None:
    resp = data.draw(st.binary(min_size=2, max_size=40))
    # Blank out some bytes and nibbles, and replace one span with *.
    text = []
    for b in resp.hex():
        text.append(data.draw(st.sampled_from([b, b, b, "x", "X", "."])))
    nibbles = "".join(text)
    if data.draw(st.booleans()):
        i = 2 * data.draw(st.integers(0, len(resp)))
        j = 2 * data.draw(st.integers(i // 2, len(resp)))
        nibbles = nibbles[:i] + "*" + nibbles[j:]
    pat = Pattern.parse(nibbles)
    assert pat.matches(resp)
    if not pat.sw_only and "*" not in nibbles:
        assert not pat.matches(resp + b"\x00")  # without *, the length is fixed


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=3, max_size=40), st.data())
def test_an_exact_pattern_rejects_any_other_byte(resp: bytes, data: st.DataObject) -> None:
    pat = Pattern.parse(resp.hex())
    assert pat.matches(resp)
    i = data.draw(st.integers(0, len(resp) - 1))
    flip = data.draw(st.integers(1, 255))
    other = resp[:i] + bytes([resp[i] ^ flip]) + resp[i + 1 :]
    assert not pat.matches(other)


# -- running --------------------------------------------------------------------------


def test_status_word_expectations() -> None:
    result = run(
        "8050000004 =9000\n"
        "0020000100 =63C3\n"  # VERIFY with no data: the PIN status
        "0020000104 39393939 =63Cx\n"
        "0020000100\n=63c2\n"
    )
    assert len(result.exchanges) == 4
    assert result.expectations_met == 4
    assert result.exchanges[2].response == b"\x63\xc2"


def test_whole_response_pattern() -> None:
    result = run(
        "00A4040009F043415244454D5502 00 =6F..84..*9000\n"
        "8002000400 =00010203 9000\n"
        "80020004 00 =XX XX .. 03 90 00\n"
    )
    assert result.exchanges[0].response[:1] == b"\x6f"


def test_mismatch_names_the_line_and_stops() -> None:
    seen: list[int] = []
    with pytest.raises(ScriptMismatch) as e:
        run(
            "8050000004 =9000\n"
            "# a comment\n"
            "0020000104 \\\n"
            "  39393939 =9000\n"
            "8030000004 00000001\n",  # never sent
            on_exchange=lambda s: seen.append(s.line),
        )
    err = e.value
    assert err.line == 3
    assert err.expected == "9000"
    assert err.response == b"\x63\xc2"
    assert str(err) == (
        "t.apdu:3: expected 9000, got 63C2 (Verification failed, 2 tries left) "
        "to 0020000104********"  # the PIN masked below the TRAFFIC level
    )
    assert seen == [1, 3]


def test_pattern_mismatch_shows_the_whole_response() -> None:
    with pytest.raises(ScriptMismatch) as e:
        run(f"{SELECT_ECHO}\n8002000400 =00010204 9000")
    assert "expected 000102049000, got" in str(e.value)
    assert "got 00010203 9000 (Normal processing" in str(e.value)


def test_no_expectation_means_success_unless_lenient() -> None:
    with pytest.raises(ScriptMismatch) as e:
        run("8050000004\n00B0000000\n8050000004")
    assert e.value.line == 2 and "got 6D00" in str(e.value)
    result = run("8050000004\n00B0000000\n8050000004", lenient=True)
    assert [s.response[-2:] for s in result.exchanges] == [b"\x90\x00", b"\x6d\x00", b"\x90\x00"]


def test_variables_carry_response_data_to_later_commands() -> None:
    result = run(
        f"{SELECT_ECHO} =9000\n"
        "8002000A00 =*9000 => $head = [0:4] => $third = [2] => $tail = [-2:] => $all\n"
        "80010000 06 $head $tail 00 =0001020308099000\n"
        "set $x = $third FF\n"
        "80010000 02 ${x} 00 =02FF 9000\n"
    )
    v = result.variables
    assert v["head"] == bytes.fromhex("00010203")
    assert v["third"] == b"\x02"
    assert v["tail"] == bytes.fromhex("0809")
    assert v["all"] == bytes(range(10))
    assert result.exchanges[2].command == bytes.fromhex("800100000600010203080900")
    assert result.expectations_met == 4


def test_capture_past_the_data_is_a_mismatch() -> None:
    with pytest.raises(ScriptMismatch) as e:
        run(f"{SELECT_ECHO}\n8002000400 => $c = [0:8]\n")
    assert e.value.line == 2
    assert "needs 8 data bytes, got 4" in str(e.value)
    with pytest.raises(ScriptMismatch):
        run(f"{SELECT_ECHO}\n8002000400 => $c = [4]\n")


def test_reset_clears_the_verified_pin() -> None:
    atrs: list[bytes] = []
    result = run(
        "0020000104 31323334 =9000\n0020000100 =9000\nreset\n0020000100 =63C3\n",
        on_reset=lambda line, atr: atrs.append(atr),
    )
    assert len(result.exchanges) == 3
    assert len(atrs) == 1 and atrs[0][0] == 0x3B


def test_exit_stops_the_script() -> None:
    result = run("8050000004\nexit\n00B0000000 =9000\n")
    assert result.exited
    assert len(result.exchanges) == 1


class Broken(Reader):
    name = "broken"

    def transmit(self, apdu: bytes) -> bytes:
        raise ReaderError("card removed")


def test_reader_failure_names_the_line() -> None:
    with pytest.raises(ScriptFailed) as e:
        run_script(parse_script("\n8050000004", source="x"), Broken())
    assert str(e.value) == "x:2: 8050000004: card removed"


# -- cardemu run ----------------------------------------------------------------------

SCRIPT_OK = """\
# sample-card-free: the demo card's purse
00A4040C09F043415244454D5501 =9000
0020000104 31323334 =9000
8030000004 00000100 =9000
8050000004 =00000100 9000
"""


def test_run_ok(tmp_path: Path) -> None:
    path = tmp_path / "ok.apdu"
    path.write_text(SCRIPT_OK)
    code, out, err = cardemu("run", str(path))
    assert code == 0
    assert out.splitlines() == ["9000", "9000", "9000", "00000100 9000"]
    assert ">> 80500000 04" in err  # the trace goes to stderr
    assert "4 APDUs, 4 expectations met" in err


def test_run_from_stdin() -> None:
    code, out, err = cardemu("run", "-q", "-", stdin=SCRIPT_OK)
    assert code == 0
    assert out.splitlines()[-1] == "00000100 9000"
    assert err == ""


def test_run_mismatch_exits_3_with_one_error_line() -> None:
    code, out, err = cardemu(
        "run", "-q", "-", stdin=SCRIPT_OK.replace("00000100 9000", "00000200 9000")
    )
    assert code == 3
    assert err.strip().splitlines() == [
        "Error: <stdin>:5: expected 000002009000, got 00000100 9000 "
        "(Normal processing: no further qualification) to 8050000004"
    ]


def test_run_syntax_error_exits_2() -> None:
    code, out, err = cardemu("run", "-", stdin="8050000004\n80 5Z\n")
    assert code == 2
    assert err.strip() == "Error: <stdin>:2: 'Z' is not hex in '80 5Z'"
    assert out == ""  # nothing was sent


def test_short_apdu_from_variables_is_refused_when_it_runs() -> None:
    sent: list[bytes] = []

    class Recorder(InProcessReader):
        def transmit(self, apdu: bytes) -> bytes:
            sent.append(apdu)
            return super().transmit(apdu)

    script = parse_script(f"{SELECT_ECHO}\nset $two = 00A4\n80020002\n$two 00\n", source="v.apdu")
    with pytest.raises(ScriptSyntaxError) as e:
        run_script(script, Recorder(sample_card()))
    assert str(e.value) == (
        "v.apdu:4: a command APDU has at least 4 bytes (CLA INS P1 P2), got 3 bytes"
    )
    assert [a.hex().upper() for a in sent] == [SELECT_ECHO, "80020002"]  # not the last line


def test_short_apdus_only_when_the_caller_allows_them() -> None:
    # A fuzzer replaying a finding on an emulated card sends what it found, 1 byte included.
    text = "00 =6700\nset $x = 00A4\n$x =6700\n"
    with pytest.raises(ScriptSyntaxError, match="got 1 byte"):
        parse_script(text)
    script = parse_script(text, allow_short=True)
    result = run_script(script, InProcessReader(sample_card()))
    assert [e.command for e in result.exchanges] == [b"\x00", b"\x00\xa4"]
    assert result.expectations_met == 2


def test_run_bad_var_exits_2() -> None:
    code, _, err = cardemu("run", "--var", "pin=12G4", "-", stdin="00A4")
    assert code == 2 and err.startswith("Error: --var pin:")


def test_run_vars_from_the_command_line() -> None:
    code, out, _ = cardemu(
        "run",
        "-q",
        "--var",
        "pin=31323334",
        "-",
        stdin="00A4040C09F043415244454D5501\n0020000104 $pin =9000\n",
    )
    assert code == 0


def test_run_missing_script_or_card_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cardemu("run", str(tmp_path / "none.apdu"))
    assert code == 2 and err.startswith("Error: cannot read script")
    code, _, err = cardemu("run", "--card", str(tmp_path / "none.card"), "-", stdin="00A40000")
    assert code == 2
    assert err.strip() == f"Error: no card image '{tmp_path / 'none.card'}'"


def test_run_json(tmp_path: Path) -> None:
    import json

    code, out, _ = cardemu(
        "run",
        "--json",
        "-",
        stdin=f"{SELECT_ECHO}\n8002000400\n=> $x = [1:3]\n0020000100 =9000\n",
    )
    doc = json.loads(out)
    assert code == 3
    assert doc["result"] == "mismatch"
    assert [e["line"] for e in doc["exchanges"]] == [1, 2, 4]
    assert doc["exchanges"][1]["response"] == "00010203"
    assert doc["variables"] == {"x": "0102"}
    assert doc["exchanges"][2]["sw"] == "6D00"  # the echo applet has no VERIFY
    assert doc["error"].startswith("<stdin>:4: expected 9000, got 6D00")


def test_run_get_response_flag() -> None:
    script = f"{SELECT_ECHO}\n80020004 =00010203 9000\n"
    assert cardemu("run", "-q", "-", stdin=script)[0] == 3  # 6104 without -g
    assert cardemu("run", "-q", "-g", "-", stdin=script)[0] == 0


def test_run_help_documents_the_format() -> None:
    code, out, _ = cardemu("run", "--help")
    assert code == 0
    for needle in ("=63Cx", "=> $ch = [0:8]", "reset | exit", "Exit codes", "Examples:"):
        assert needle in out


def test_run_as_a_process_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.apdu"
    path.write_text("00A4040C09F043415244454D5501 =6A82\n")
    proc = subprocess.run(
        [sys.executable, "-m", "host.cli", "run", "-q", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr == (
        f"Error: {path}:1: expected 6A82, got 9000 (Normal processing: no further "
        "qualification) to 00A4040C09F043415244454D5501\n"
    )
