"""The toolkit's command line: reader listing and selection, send/decode/replay, golden traces.

Golden traces: tests/unit/golden/*.apdu are scripts; *.jsonl are the trace files
recorded from them (GET RESPONSE handling on, chaining forced, timing left
out). The tests replay every recorded command against a fresh card and require
every response to be equal byte for byte, and check that running the script
again records the same exchanges. After an intended change of card behaviour,
regenerate them and review the diff:

    CARDEMU_REGEN_GOLDEN=1 python -m pytest -q tests/unit/test_cli.py -k golden
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from card.runtime import CardRuntime
from host.cli import main
from host.presets import PRESETS
from host.readers import registry
from host.readers.base import ReaderError
from host.readers.inprocess import InProcessReader
from host.readers.registry import Listing, choose, list_readers, preset_reader, resolve
from host.readers.wrappers import ChainingReader, GetResponseReader
from host.script import parse_script, run_script
from host.trace import TracingReader
from host.tracefile import TraceHeader, TraceWriter, parse_trace, read_trace, replay
from tests.unit.cards import sample_card

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("CARDEMU_REGEN_GOLDEN") == "1"
PRESET_READERS = [f"cardemu:{p}" for p in sorted(PRESETS)]
N = len(PRESET_READERS)  # the listing starts with the presets, then the images
FAKE_PCSC = ["Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR122U PICC Interface 00 00"]


def cardemu(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the CLI's real entry point; returns (exit code, stdout, stderr)."""
    with CliRunner().isolation(input=stdin) as (out, err, _):
        code = main(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def pcsc(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """pcscd stands in with three readers (no real pcscd is asked)."""
    monkeypatch.setattr(registry, "_pcsc_names", lambda: (list(FAKE_PCSC), None))
    return FAKE_PCSC


@pytest.fixture
def no_pcsc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_pcsc_names", lambda: ([], "PC/SC: PC/SC service not available"))


@pytest.fixture
def images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding two card images, a.card and b.card."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.card", "b.card"):
        assert cardemu("card", "new", name)[0] == 0
    (tmp_path / "notes.txt").write_text("not a card")
    return tmp_path


# -- reader listing and selection --------------------------------------------------------


def test_listing_order(images: Path, pcsc: list[str]) -> None:
    listing = list_readers()
    assert listing.names == [*PRESET_READERS, *pcsc, "cardemu:a.card", "cardemu:b.card"]
    kinds = ["preset"] * N + ["pcsc"] * 3 + ["image", "image"]
    assert [r.kind for r in listing.readers] == kinds


def test_files_that_are_not_card_images_are_left_out(images: Path, pcsc: list[str]) -> None:
    """A new *.card file never moves a reader's index; a broken one is not listed."""
    before = list_readers().names
    (images / "0-empty.card").write_bytes(b"")
    (images / "1-half.card").write_bytes((images / "a.card").read_bytes()[:60])
    (images / "2-text.card").write_text("not a card")
    listing = list_readers()
    assert listing.names == before
    assert listing.notes == ["not card images, left out: 0-empty.card, 1-half.card, 2-text.card"]
    (images / "0-new.card").write_bytes((images / "a.card").read_bytes())
    after = list_readers().names
    assert after[: N + len(pcsc)] == before[: N + len(pcsc)]  # presets and PC/SC readers stay


def test_choose_by_index_substring_and_name(images: Path, pcsc: list[str]) -> None:
    listing = list_readers()
    assert choose("0", listing).name == PRESET_READERS[0]  # the first preset by name
    assert choose(N + 1, listing).name == "Virtual PCD 00 01"
    assert choose("acr122", listing).name == "ACS ACR122U PICC Interface 00 00"
    assert choose("B.CARD", listing).target == "b.card"  # case-insensitive
    assert choose("Virtual PCD 00 00", listing).kind == "pcsc"  # the exact name


def test_choose_ambiguous_names_the_matches(images: Path, pcsc: list[str]) -> None:
    with pytest.raises(ReaderError) as e:
        choose("virtual", list_readers())
    assert str(e.value) == "'virtual' matches 2 readers: Virtual PCD 00 00, Virtual PCD 00 01"


def test_choose_nothing_matches(images: Path, pcsc: list[str]) -> None:
    first = PRESET_READERS[0]
    with pytest.raises(ReaderError, match=rf"no reader matches 'zzz' \(readers: 0: {first}"):
        choose("zzz", list_readers())
    with pytest.raises(ReaderError, match=rf"no reader 99 \(there are {N + 5}\)"):
        choose("99", list_readers())
    with pytest.raises(ReaderError, match="no reader found"):
        choose("x", Listing([]))


def test_one_reader_is_used_without_asking() -> None:
    only = Listing([preset_reader("demo")])
    assert choose(None, only).name == "cardemu:demo"
    two = Listing([preset_reader("demo"), registry.image_reader("x.card")])
    with pytest.raises(ReaderError, match="2 readers, choose one: cardemu:demo, cardemu:x.card"):
        choose(None, two)


def test_emulated_names_need_no_listing(tmp_path: Path) -> None:
    image = tmp_path / "elsewhere.card"
    assert cardemu("card", "new", str(image))[0] == 0

    def no_listing() -> Listing:
        raise AssertionError("cardemu: names must not list readers (pcscd may be slow)")

    assert resolve(f"cardemu:{image}", listing=no_listing).target == str(image)
    assert resolve("cardemu:demo", listing=no_listing).kind == "preset"
    with pytest.raises(ReaderError, match="no card image"):
        resolve(f"cardemu:{tmp_path / 'missing.card'}", listing=no_listing)
    # Without -r: --card, then the preset, then the demo card.
    assert resolve(None, image=str(image)).kind == "image"
    assert resolve(None).name == "cardemu:demo"


def test_readers_command(images: Path, pcsc: list[str]) -> None:
    code, out, err = cardemu("readers")
    assert code == 0
    names = [*PRESET_READERS, *pcsc, "cardemu:a.card", "cardemu:b.card"]
    assert out.splitlines() == [f"{i}: {name}" for i, name in enumerate(names)]
    assert out.splitlines()[0] == f"0: {PRESET_READERS[0]}"
    code, out, _ = cardemu("readers", "--json")
    a = N + len(pcsc)
    assert json.loads(out)[a] == {"index": a, "name": "cardemu:a.card", "kind": "image"}


def test_readers_says_why_pcsc_is_missing(images: Path, no_pcsc: None) -> None:
    code, out, err = cardemu("readers")
    assert code == 0
    assert out.splitlines()[-1] == f"{N + 1}: cardemu:b.card"
    assert err.strip() == "PC/SC: PC/SC service not available"


def test_send_selects_the_reader(images: Path, pcsc: list[str]) -> None:
    select_purse = "00A4040C09F043415244454D5501"
    # Put money in a.card only, then read both back through -r.
    code, _, _ = cardemu(
        "send", "-q", "-r", "a.card", select_purse, "002000010431323334", "803000000400000100"
    )
    assert code == 0
    code, out, _ = cardemu("send", "--json", "-r", str(N + 3), select_purse, "8050000004")
    doc = json.loads(out)
    assert doc["reader"] == "cardemu:a.card"
    assert doc["exchanges"][1]["response"] == "00000100"
    code, out, _ = cardemu("send", "-q", "-r", "B.card", select_purse, "8050000004")
    assert out.splitlines()[-1] == "00000000 9000"


def test_send_reader_errors_are_one_line_usage_errors(images: Path, pcsc: list[str]) -> None:
    # A -r that picks no reader, or several, is the user's to fix: exit code 2.
    code, out, err = cardemu("send", "-r", "virtual", "00A40000")
    assert code == 2
    assert err == "Error: 'virtual' matches 2 readers: Virtual PCD 00 00, Virtual PCD 00 01\n"
    code, _, err = cardemu("send", "-r", "zzz", "00A40000")
    assert code == 2 and err.startswith("Error: no reader matches 'zzz'")
    assert len(err.splitlines()) == 1
    code, out, err = cardemu("send", "-r", "99", "00A40000")
    assert (code, out) == (2, "")
    assert err.startswith(f"Error: no reader 99 (there are {N + 5}) (readers: 0: ")


# -- send: output, exit codes ---------------------------------------------------------


def test_send_bad_hex_is_a_usage_error() -> None:
    code, out, err = cardemu("send", "00A4 0G")
    assert code == 2
    assert err == "Error: APDU: not hex: '00A4 0G'\n"
    assert out == ""


def test_send_unexpected_status_word_exits_3() -> None:
    code, out, err = cardemu("send", "00B0000001", "00A40000")
    assert code == 3
    assert out == "6986\n"  # the response is still printed; the second APDU is not sent
    assert err.splitlines()[-1] == (
        "Error: card answered 6986 (Command not allowed (no current EF)) to 00B0000001"
    )
    assert ">> 00A40000" not in err


def test_send_missing_card_image_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = cardemu("send", "--card", str(tmp_path / "no.card"), "00A40000")
    assert code == 2
    assert err == f"Error: no card image '{tmp_path / 'no.card'}'\n"


def test_send_accepts_hex_spellings() -> None:
    code, out, _ = cardemu(
        "send", "-q", "00 A4 04 0C 09 F0 43 41 52 44 45 4D 55 02", "80:02:00:03:00"
    )
    assert code == 0
    assert out.splitlines() == ["9000", "000102 9000"]


def test_send_get_response_and_trace_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    code, out, err = cardemu(
        "send", "-g", "--seed", "7", "--trace-file", str(path),
        "00A4040C09F043415244454D5502", "80020120",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[1] == bytes(i & 0xFF for i in range(0x120)).hex().upper() + " 9000"
    trace = read_trace(path)
    assert trace.header == TraceHeader("cardemu:demo", trace.header.atr, 7)
    # The trace file holds the wire: the held-back data came by two GET RESPONSEs.
    assert [e.command.hex().upper() for e in trace.exchanges] == [
        "00A4040C09F043415244454D5502",
        "80020120",
        "00C0000000",
        "00C0000020",
    ]
    assert err.count(">> ") == 4  # so does the trace on stderr
    for line in path.read_text().splitlines()[1:]:
        assert set(json.loads(line)) == {
            "command", "response", "sw", "sw_meaning", "name", "fields", "ms"
        }  # fmt: skip


def test_no_traceback_without_debug(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.card"
    bogus.write_text("this is not a card image")
    cmd = [sys.executable, "-m", "host.cli", "send", "--card", str(bogus), "00A40000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: ") and len(proc.stderr.splitlines()) == 1


# -- decode ---------------------------------------------------------------------------


def test_decode_command_and_response() -> None:
    code, out, _ = cardemu("decode", "00A4040009F043415244454D550100", "6A82")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(">> 00A40400 09 F043415244454D5501 00")
    assert lines[1].strip() == (
        "case 4S, CLA 00 interindustry channel 0, Nc 9, Ne 256"
    )  # fmt: skip
    assert lines[2] == "<< 6A82 (File or application not found)"


def test_decode_json_and_forcing_the_kind() -> None:
    code, out, _ = cardemu("decode", "--json", "-R", "00A40000")
    doc = json.loads(out)
    assert doc[0]["kind"] == "response" and doc[0]["sw"] == "0000"
    code, out, _ = cardemu("decode", "--json", "81C0000010", "9000")
    cmd, resp = json.loads(out)
    assert cmd["kind"] == "command" and cmd["cla"]["channel"] == 1 and cmd["case"] == "2S"
    assert cmd["ne"] == 16 and cmd["header"] == "81C00000" and cmd["le"] == "10"
    assert resp == {
        "kind": "response",
        "apdu": "9000",
        "data": "",
        "sw": "9000",
        "sw_meaning": "Normal processing: no further qualification",
        "fields": {},
    }


def test_decode_usage_errors() -> None:
    assert cardemu("decode")[0] == 2
    code, _, err = cardemu("decode", "XYZ")
    assert code == 2 and err.startswith("Error: APDU:")


def test_decode_trace_file() -> None:
    path = GOLDEN / "sample_session.jsonl"
    code, out, _ = cardemu("decode", "--trace", str(path))
    assert code == 0
    trace = read_trace(path)
    n = len(trace.exchanges)
    lines = out.splitlines()
    assert len(lines) == 2 * n + len(trace.events) - n  # >> and << per exchange, resets
    assert lines[0].startswith(">> 80500000 04")
    assert lines[1].startswith("<< 00000000 9000 (Normal processing")
    assert sum(line.startswith("-- reset, ATR 3B") for line in lines) == 1
    code, out, _ = cardemu("decode", "--json", "--trace", str(path))
    assert len(json.loads(out)) == n


# -- golden traces ----------------------------------------------------------------------


def _demo_card() -> CardRuntime:
    pytest.importorskip("applets.iso7816", reason="the demo preset needs applets/iso7816")
    from host.presets import new_card

    return new_card("demo", rng_seed=1)


GOLDEN_SESSIONS: dict[str, tuple[Callable[[], CardRuntime], str]] = {
    "sample_session": (lambda: sample_card(power=False), "cardemu:sample"),
    "demo_session": (_demo_card, "cardemu:demo"),
}


def record(name: str) -> str:
    """Run golden/<name>.apdu on a fresh card; the trace file's text (no timing)."""
    make, reader_name = GOLDEN_SESSIONS[name]
    raw = InProcessReader(make(), name=reader_name)
    atr = raw.connect()
    out = io.StringIO()
    writer = TraceWriter(out, TraceHeader(reader_name, atr, 1), timing=False)
    traced = TracingReader(raw, fmt="none", sinks=[writer])
    stack = GetResponseReader(ChainingReader(traced, always=True))
    script = (GOLDEN / f"{name}.apdu").read_text()
    run_script(parse_script(script, source=f"{name}.apdu"), stack)
    return out.getvalue()


def wire(text_or_path: str | Path) -> list[tuple[str, bytes, bytes]]:
    """The exchanges and resets of a trace, without annotations or timing."""
    if isinstance(text_or_path, Path):
        trace = read_trace(text_or_path)
    else:
        trace = parse_trace(text_or_path.splitlines())
    out = []
    for ev in trace.events:
        if hasattr(ev, "exchange"):
            out.append(("x", ev.exchange.command, ev.exchange.response))
        else:
            out.append(("reset", b"", ev.atr))
    return out


@pytest.mark.parametrize("name", sorted(GOLDEN_SESSIONS))
def test_golden_trace_replays_byte_for_byte(name: str) -> None:
    path = GOLDEN / f"{name}.jsonl"
    if REGENERATE:
        path.write_text(record(name))
    golden = read_trace(path)
    make, reader_name = GOLDEN_SESSIONS[name]
    assert golden.header.reader == reader_name
    reader = InProcessReader(make())
    result = replay(golden, reader, atr=reader.connect())
    assert result.equal, "\n".join(str(d) for d in result.differences)
    assert result.replayed == len(golden.exchanges) > 30


@pytest.mark.parametrize("name", sorted(GOLDEN_SESSIONS))
def test_golden_script_records_the_same_exchanges(name: str) -> None:
    assert wire(record(name)) == wire(GOLDEN / f"{name}.jsonl"), (
        f"the card's behaviour changed; if intended, regenerate: CARDEMU_REGEN_GOLDEN=1 "
        f"python -m pytest -q {Path(__file__).name} -k golden"
    )


def test_golden_demo_through_the_cli(tmp_path: Path) -> None:
    _demo_card()
    golden = GOLDEN / "demo_session.jsonl"
    code, out, err = cardemu("replay", str(golden))
    assert code == 0, err
    n = len(read_trace(golden).exchanges)
    assert out == f"{golden}: {n} exchanges replayed on cardemu:demo, all equal\n"
    # `cardemu run --trace-file` records the same wire exchanges as the golden file.
    fresh = tmp_path / "fresh.jsonl"
    script = GOLDEN / "demo_session.apdu"
    code, _, err = cardemu(
        "run", "-q", "--seed", "1", "-g", "--chaining", "always",
        "--trace-file", str(fresh), str(script),
    )  # fmt: skip
    assert code == 0, err
    assert wire(fresh) == wire(golden)


def _tamper(src: Path, dst: Path, indices: list[int]) -> list[int]:
    """Flip the last response byte of the given exchanges; returns their trace lines."""
    lines = src.read_text().splitlines()
    seen = 0
    hit = []
    for no, line in enumerate(lines):
        obj = json.loads(line)
        if "command" not in obj:
            continue
        seen += 1
        if seen in indices:
            obj["sw"] = "6F00" if obj["sw"] != "6F00" else "9000"
            lines[no] = json.dumps(obj)
            hit.append(no + 1)
    dst.write_text("\n".join(lines) + "\n")
    return hit


def test_replay_reports_the_first_difference(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    (line5, line9) = _tamper(GOLDEN / "sample_session.jsonl", bad, [5, 9])
    trace = read_trace(bad)
    result = replay(trace, InProcessReader(sample_card()))
    assert [d.index for d in result.differences] == [5]
    assert result.differences[0].line == line5
    assert result.replayed == 5
    result = replay(trace, InProcessReader(sample_card()), keep_going=True)
    assert [(d.index, d.line) for d in result.differences] == [(5, line5), (9, line9)]
    assert str(result.differences[0]).startswith(f"exchange 5 (line {line5}): expected ")


def test_replay_cli_exit_codes(tmp_path: Path) -> None:
    _demo_card()
    bad = tmp_path / "bad.jsonl"
    (line3,) = _tamper(GOLDEN / "demo_session.jsonl", bad, [3])
    code, out, err = cardemu("replay", str(bad))
    assert code == 3
    # The difference is shown once (stdout); the error line sums up.
    assert out.startswith(f"differs: exchange 3 (line {line3}): expected ")
    assert err == (
        f"Error: {bad}: exchange 3 differs on cardemu:demo (3 of 40 replayed, "
        "replay stopped there)\n"
    )
    code, out, _ = cardemu("replay", "--json", "--keep-going", str(bad))
    doc = json.loads(out)
    assert code == 3 and not doc["equal"] and len(doc["differences"]) == 1
    assert doc["replayed"] == doc["recorded"]
    # A missing file and a file that is not a trace are usage errors (2).
    assert cardemu("replay", str(tmp_path / "none.jsonl"))[0] == 2
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"command": "00A40000"}\n')
    code, _, err = cardemu("replay", str(junk))
    assert code == 2 and "the first line must be the trace header" in err


def test_replay_of_an_atr_change(tmp_path: Path) -> None:
    trace = read_trace(GOLDEN / "sample_session.jsonl")
    other = CardRuntime(atr=bytes.fromhex("3B00"), rng_seed=1)
    result = replay(trace, InProcessReader(other), atr=InProcessReader(other).connect())
    assert result.differences[0].index == 0
    assert str(result.differences[0]).startswith("ATR: expected 3B")


# -- card info ------------------------------------------------------------------------


def test_card_info_lists_the_file_system(tmp_path: Path) -> None:
    _demo_card()
    image = tmp_path / "d.card"
    assert cardemu("card", "new", str(image))[0] == 0
    code, out, _ = cardemu("card", "info", str(image))
    assert code == 0
    lines = out.splitlines()
    assert "file      3F00  MF" in lines
    assert "file        2F10  EF transparent, 512 bytes, SFI 10" in lines
    assert "file        7F10  DF F043415244454D55781601" in lines
    assert "file          6F02  EF linear fixed, 3 records of 20 bytes" in lines
    code, out, _ = cardemu("card", "info", "--json", str(image))
    applets = json.loads(out)["applets"]
    fs = next(a for a in applets if a["files"])
    assert fs["default"] and fs["files"][0]["fid"] == "3F00"
    assert all(not a["files"] for a in applets if a is not fs)  # the others keep no files


def test_trace_json_on_stderr() -> None:
    code, out, err = cardemu("send", "--trace-json", "00A4040C09F043415244454D5501", "8050000004")
    assert code == 0
    assert out.splitlines() == ["9000", "00000000 9000"]
    recs = [json.loads(line) for line in err.splitlines()]
    assert [r["command"] for r in recs] == ["00A4040C09F043415244454D5501", "8050000004"]
    assert recs[1]["response"] == "00000000" and recs[1]["sw"] == "9000"
    assert all(set(r) == {"command", "response", "sw", "sw_meaning", "name", "fields", "ms"}
               for r in recs)  # fmt: skip


def test_one_card_option_at_a_time(tmp_path: Path) -> None:
    code, _, err = cardemu("send", "-r", "0", "--preset", "demo", "00A40000")
    assert code == 2
    assert err == "Error: -r and --preset both name a card: give one\n"


# -- QA findings: defaults, examples, exit codes, help, traffic -------------------------

# Each command that talks to a card, with the preset it uses when given no card.
DEFAULT_PRESETS = [
    (("send", "00A4040000"), "demo"),
    (("run", "-"), "demo"),
    (("gp", "list"), "gp"),
    (("gp", "info"), "gp"),
    (("usim", "read"), "usim"),
    (("usim", "auth", "--rand", "00" * 16, "--autn", "00" * 16), "usim"),
    (("lpa", "eid"), "euicc"),
    (("lpa", "list"), "euicc"),
]


@pytest.mark.parametrize(
    "args, preset", DEFAULT_PRESETS, ids=[" ".join(a[:2]) for a, _ in DEFAULT_PRESETS]
)
def test_help_states_the_preset_each_command_uses(
    args: tuple[str, ...], preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from host.commands import session as tools  # where pick_reader resolves

    used: list[str | None] = []

    def fake_resolve(spec: str | None, *, image: str | None = None, preset: str | None = None):
        used.append(preset)
        raise ReaderError("stop here")

    monkeypatch.setattr(tools, "resolve", fake_resolve)
    code, _, err = cardemu(*args, stdin="00A40000\n")
    assert (code, err, used) == (1, "Error: stop here\n", [preset])
    command = [a for a in args if a.isalpha() and a.islower()][:2]
    code, out, _ = cardemu(*command, "--help")
    assert code == 0
    text = " ".join(out.split())  # help lines are wrapped
    assert (
        f"Built-in card, fresh in memory, when no -r or --card is given. [default: {preset}]"
        in (text)
    )


def test_gp_works_with_no_card_option() -> None:
    code, out, err = cardemu("gp", "list")
    assert (code, err) == (0, "")
    assert out.splitlines()[0].split()[:3] == ["ISD", "A000000151000000", "OP_READY"]
    # -r gp names the same card exactly (it is not a substring of another reader's name).
    assert cardemu("gp", "list", "-r", "gp") == (0, out, "")
    # An explicit --preset still wins over the group's default.
    code, _, err = cardemu("gp", "list", "--preset", "demo")
    assert code == 3 and "6A82" in err
    assert cardemu("gp", "list", "-r", "gp", "--preset", "gp")[0] == 2


def test_gp_install_load_only_needs_no_module(tmp_path: Path) -> None:
    image = str(tmp_path / "lo.card")
    assert cardemu("card", "new", "--preset", "gp", image)[0] == 0
    # applets.sample has four modules; it is on the gp card from manufacture.
    code, out, err = cardemu("gp", "install", "--card", image, "applets.sample", "--load-only")
    assert (code, err) == (0, "")
    assert out.startswith("load file F043415244454D5550") and out.endswith(" already on card\n")
    code, out, _ = cardemu(
        "gp", "install", "--card", image, "applets.notes", "--load-only", "--json"
    )
    doc = json.loads(out)
    assert (code, doc["loaded"], doc["module"], doc["application"]) == (0, True, None, None)
    code, out, _ = cardemu("gp", "list", "--card", image, "--json")
    assert doc["load_file"] in out
    code, _, err = cardemu(
        "gp", "install", "--card", image, "applets.notes", "--load-only", "--aid", "F000000001"
    )
    assert code == 2
    assert err == "Error: --load-only creates no instance: --aid does not apply\n"


def _examples(*command: str) -> list[list[str]]:
    """The `Examples:` lines of a command's help, split as a shell would."""
    import shlex

    code, out, _ = cardemu(*command, "--help")
    assert code == 0
    lines = out.split("Examples:", 1)[1].split("\n\n", 1)[0].splitlines()
    return [shlex.split(line.split("#", 1)[0])[1:] for line in lines if line.strip()]


def test_help_examples_of_send_decode_and_gp_run_as_written(tmp_path: Path) -> None:
    first = _examples("send")[0]
    code, out, err = cardemu(*first)
    assert code == 0, err
    assert out.splitlines() == ["610D", "9000"]  # the PIN is verified: one APDU per argument
    decode = next(e for e in _examples("decode") if "-R" in e)
    code, out, _ = cardemu(*decode)
    assert code == 0
    assert out.splitlines() == [
        "<< 6F10840E315041592E5359532E4444463031 9000 (Normal processing: no further qualification)"
    ]
    assert cardemu(*_examples("gp")[0])[0] == 0  # cardemu gp list
    assert cardemu(*next(e for e in _examples("gp", "info") if "-r" in e))[0] == 0


def test_card_info_shows_the_gp_card_life_cycle(tmp_path: Path) -> None:
    image = str(tmp_path / "gp.card")
    assert cardemu("card", "new", "--preset", "gp", image)[0] == 0
    code, out, _ = cardemu("card", "info", image)
    assert "card      OP_READY (01), GlobalPlatform ISD A000000151000000" in out.splitlines()
    isd_line = next(line for line in out.splitlines() if "A000000151000000  " in line)
    assert isd_line.split()[:3] == ["applet", "A000000151000000", "01"]
    assert cardemu("gp", "card-status", "-y", "terminated", "--card", image)[0] == 0
    code, out, _ = cardemu("card", "info", "--json", image)
    doc = json.loads(out)
    assert doc["card_life_cycle"] == {"value": "FF", "name": "TERMINATED"}
    isd, purse = doc["applets"][0], doc["applets"][1]
    assert (isd["aid"], isd["lifecycle"]) == ("A000000151000000", "FF")
    # "default" is a boolean (default-selected on the basic channel), the channels a list.
    assert isd["default"] is True and isd["default_channels"] == list(range(20))
    assert purse["default"] is False and purse["default_channels"] == []
    # A card with no ISD has no card life cycle.
    demo = str(tmp_path / "demo.card")
    assert cardemu("card", "new", demo)[0] == 0
    assert json.loads(cardemu("card", "info", "--json", demo)[1])["card_life_cycle"] is None
    assert "GlobalPlatform" not in cardemu("card", "info", demo)[1]


def _all_commands() -> list[tuple[str, click.Command]]:
    from host.cli import cli

    out: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: str) -> None:
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            # list_commands/get_command, not .commands: the root group is lazy.
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"{path} {name}"
                walk(sub, f"{path} {name}")

    walk(cli, "cardemu")
    return out


def test_help_lists_every_command_with_its_own_summary() -> None:
    """The lazy table's summaries equal each command's own (they cannot drift)."""
    from host.cli import LAZY_COMMANDS, cli

    code, out, _ = cardemu("--help")
    assert code == 0
    listed = {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip()
        for line in out.split("Commands:", 1)[1].splitlines()
        if line.strip()
    }
    ctx = click.Context(cli)
    assert set(listed) == set(LAZY_COMMANDS) == set(cli.list_commands(ctx))
    for name, (_target, summary) in LAZY_COMMANDS.items():
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        assert cmd.get_short_help_str(limit=1000) == summary, name
        assert listed[name] == summary, name


def test_importing_the_cli_loads_no_command_module() -> None:
    """`cardemu --help` stays fast: no ASN.1, USIM applet, crypto or command modules."""
    code = (
        "import sys; from host.cli import main; main(['--help']); "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('asn1tools', 'applets', 'cryptography', 'construct', 'apdu_specs', "
        "'host.commands.', 'card.', 'importlib.metadata'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stdout.splitlines()[-1] == "['host.commands.common']"


def test_lazy_command_loads_on_use_and_version_still_works() -> None:
    code, out, _ = cardemu("--version")
    assert code == 0 and out.startswith("cardemu, version ")
    code, out, _ = cardemu("decode", "00A4040000")
    assert code == 0 and out
    code, _, err = cardemu("no-such-command")
    assert code == 2 and "No such command" in err


def test_every_summary_fits_and_every_group_has_examples() -> None:
    from host.cli import cli

    for path, cmd in _all_commands():
        if path in ("cardemu", "cardemu fuzz"):
            # The root's summary is never listed; host/commands/fuzz.py is another
            # engineer's (its 60 characters fit 80 columns, checked below).
            continue
        summary = cmd.get_short_help_str(limit=45)
        assert not summary.endswith("..."), f"{path}: {cmd.get_short_help_str(1000)!r}"
        assert not summary.split()[0].endswith("ed"), f"{path}: {summary!r} (imperative)"
    # What a user sees on an 80-column terminal: no summary cut off.
    for path, cmd in _all_commands():
        if isinstance(cmd, click.Group):
            args = path.split()[1:]
            res = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
            assert "\n  Examples:\n    cardemu " in res.output, f"{path} has no examples"
            commands = res.output.split("Commands:\n", 1)[1]
            assert "..." not in commands, f"{path}:\n{commands}"


def test_lpa_summaries_are_imperative() -> None:
    code, out, _ = cardemu("lpa", "--help")
    assert "  enable         Enable a profile (ES10c.EnableProfile)." in out
    assert "  disable        Disable a profile (ES10c.DisableProfile)." in out
    assert "  delete         Delete a profile (ES10c.DeleteProfile)." in out


def test_reader_exact_name_wins_over_substrings(images: Path, pcsc: list[str]) -> None:
    listing = list_readers()
    assert choose("euicc", listing).name == "cardemu:euicc"  # not also cardemu:euicc-empty
    assert choose("EUICC-EMPTY", listing).name == "cardemu:euicc-empty"
    assert choose("cardemu:euicc", listing).name == "cardemu:euicc"
    assert choose("virtual pcd 00 00", listing).name == "Virtual PCD 00 00"  # any case
    assert choose("a.card", listing).target == "a.card"
    with pytest.raises(registry.ReaderSelectionError, match="matches 2 readers"):
        choose("virtual pcd", listing)
    code, out, _ = cardemu("send", "--json", "-r", "euicc", "00A4040000")
    assert code == 0 and json.loads(out)["reader"] == "cardemu:euicc"
    code, _, err = cardemu("send", "-r", "card", "00A4040000")
    assert code == 2 and err.startswith("Error: 'card' matches ")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ("bench", "--seconds", "-1"),
            "Invalid value for '--seconds': -1.0 is not in the range x>=0.05",
        ),
        (("bench", "--pcsc", "-n", "0"), "Invalid value for '-n': 0 is not in the range x>=1"),
        (
            ("gp", "card-status", "bogus"),
            "Error: STATE 'bogus': choose initialized, secured, locked, terminated "
            "(or one state byte in hex, e.g. 0F)",
        ),
        (
            ("card", "new", "/nonexistent-dir/x.card"),
            "Error: cannot create /nonexistent-dir/x.card: directory /nonexistent-dir does not "
            "exist",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_useful_message(args: tuple[str, ...], message: str) -> None:
    code, out, err = cardemu(*args)
    assert (code, out) == (2, "")
    assert message in " ".join(err.split()), err
    assert not Path("/nonexistent-dir").exists()


def test_gp_card_status_takes_a_state_byte(tmp_path: Path) -> None:
    image = str(tmp_path / "gp.card")
    assert cardemu("card", "new", "--preset", "gp", image)[0] == 0
    assert cardemu("gp", "card-status", "07", "--card", image) == (0, "card is INITIALIZED\n", "")


@pytest.mark.parametrize("apdu", ["", "00", "00A4", "00 A4 04", "::"])
def test_send_refuses_apdus_under_4_bytes(apdu: str) -> None:
    code, out, err = cardemu("send", "00A4040000", apdu)
    assert (code, out) == (2, "")  # a usage error: nothing at all is sent
    n = len(bytes.fromhex(apdu.replace(" ", "").replace(":", "")))
    got = "nothing" if n == 0 else f"{n} byte" + ("s" if n > 1 else "")
    assert err == (
        f"Error: APDU: {apdu!r}: a command APDU has at least 4 bytes (CLA INS P1 P2), got {got}\n"
    )


def test_decode_still_takes_short_responses() -> None:
    code, out, _ = cardemu("decode", "9000", "00")
    assert code == 0
    assert out.splitlines() == [
        "<< 9000 (Normal processing: no further qualification)",
        "<< 00 (malformed response)",
    ]


def test_run_refuses_short_apdus_before_sending_anything() -> None:
    code, out, err = cardemu("run", "-", stdin="00A4040000\n# then\n00\n")
    assert (code, out) == (2, "")
    assert (
        err == "Error: <stdin>:3: a command APDU has at least 4 bytes (CLA INS P1 P2), got 1 byte\n"
    )
    # A line whose variables leave it short is refused when it runs, naming the line.
    code, out, err = cardemu("run", "-q", "--var", "x=00", "-", stdin="00A4040000\n$x A4\n")
    assert code == 2 and len(out.splitlines()) == 1  # the first APDU went, the second did not
    assert (
        err
        == "Error: <stdin>:2: a command APDU has at least 4 bytes (CLA INS P1 P2), got 2 bytes\n"
    )


def _traffic(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cardemu.traffic"]


@pytest.mark.parametrize(
    "args, reader, first",
    [
        (("gp", "list"), "cardemu:gp", "00A4040000"),
        (("usim", "read", "-q"), "cardemu:usim", "00A40004023F0000"),
        (("lpa", "eid"), "cardemu:euicc", "0070000001"),
        (("send", "-q", "00A4040000"), "cardemu:demo", "00A4040000"),
        (("bio", "demo"), "cardemu in-process", "00A4040C09F043415244454D55B1"),
    ],
)
def test_traffic_logs_every_exchange(
    args: tuple[str, ...], reader: str, first: str, caplog: pytest.LogCaptureFixture
) -> None:
    from host.log import TRAFFIC

    caplog.set_level(TRAFFIC, logger="cardemu.traffic")
    code, _, _ = cardemu("--traffic", *args)
    assert code == 0
    lines = [m for m in _traffic(caplog) if ">>" in m]
    assert lines and all(m.startswith(f"{reader}: >> ") for m in lines)
    assert lines[0].startswith(f"{reader}: >> {first} << ")
    sw = lines[0].split(" [")[0].split()[-1]
    assert len(sw) == 4 and int(sw, 16) >> 8 in (0x90, 0x61)  # hex command, response, SW
    assert any("PINs, keys" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_traffic_costs_nothing_when_off(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from host.log import TRAFFIC
    from host.trace import TrafficLogReader, log_traffic

    raw = InProcessReader(sample_card())
    caplog.set_level(logging.DEBUG, logger="cardemu.traffic")
    assert log_traffic(raw) is raw  # no wrapper, no hex formatting per APDU
    caplog.set_level(TRAFFIC, logger="cardemu.traffic")
    wrapped = log_traffic(raw, atr=b"\x3b\x00")
    assert isinstance(wrapped, TrafficLogReader)
    wrapped.transmit(bytes.fromhex("00A4040000"))
    assert _traffic(caplog)[0] == "cardemu in-process: connected, ATR 3B00"


def test_traffic_flag_through_the_real_entry_point() -> None:
    cmd = [sys.executable, "-m", "host.cli", "--traffic", "gp", "list", "--preset", "gp"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    err = proc.stderr.splitlines()
    assert err[0].startswith("WARNING cardemu.cli: --traffic logs every APDU: PINs, keys")
    assert "TRAFFIC cardemu.traffic: cardemu:gp: >> 00A4040000 << 6F" in proc.stderr
    assert (
        sum(" >> " in line for line in err) >= 4
    )  # SELECT, INITIALIZE UPDATE, EXT AUTH, GET STATUS
    assert "TRAFFIC" not in proc.stdout
