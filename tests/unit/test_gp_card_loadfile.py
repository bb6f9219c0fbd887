"""Load-file descriptors, code hashes, the LOAD stream; LOAD in random blocks and mutated."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from card import tlv
from card.framework.catalogue import Catalogue
from card.gp import status
from card.gp.install import ForInstall, ForLoad, application_parameters, split_fields
from card.gp.lifecycle import (
    CARD_LOCKED,
    INITIALIZED,
    OP_READY,
    SECURED,
    TERMINATED,
    app_state_for_set_status,
    check_card_transition,
)
from card.gp.loadfile import (
    DESCRIPTOR_TAG,
    DapBlock,
    LoadFileDescriptor,
    LoadFileError,
    Module,
    build_load_file,
    catalogued_modules,
    code_hash,
    describe_load_file,
    expected_stream_length,
    lfdb_hash,
    load_file_stream,
    package_of,
    parse_load_stream,
    source_files,
    verify_descriptor,
)
from card.sw import CardError
from tests.unit.test_gp_card import GpHost, gp_card, registry_state

h = bytes.fromhex

aid_st = st.binary(min_size=5, max_size=16)
ident_st = st.builds(
    lambda a, b: a + b,
    st.sampled_from("abcdefxyz_"),
    st.text(alphabet="abcxyz019_", max_size=7),
)
name_st = st.lists(ident_st, min_size=1, max_size=3).map(".".join)
ref_st = st.builds(lambda m, c: f"{m}:{c}", name_st, ident_st.map(str.capitalize))
module_st = st.builds(Module, aid_st, st.text(max_size=20), ref_st)


@st.composite
def descriptors(draw: st.DrawFn) -> LoadFileDescriptor:
    mods = draw(st.lists(module_st, min_size=1, max_size=4))
    d = LoadFileDescriptor(
        draw(aid_st),
        (draw(st.integers(0, 255)), draw(st.integers(0, 255))),
        draw(name_st),
        draw(st.binary(min_size=32, max_size=32)),
        tuple(mods),
    )
    aids = [d.aid] + [m.aid for m in d.modules]
    assume(len(set(aids)) == len(aids))  # distinct AIDs are part of the format
    return d


# -- the descriptor format ------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(descriptors())
def test_descriptor_round_trip(d: LoadFileDescriptor) -> None:
    b = d.to_bytes()
    assert b[:1] == h("FE")
    assert LoadFileDescriptor.from_bytes(b) == d


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_descriptor_decoder_refuses_garbage_with_6a80(data: bytes) -> None:
    try:
        d = LoadFileDescriptor.from_bytes(data)
    except LoadFileError as e:
        assert e.sw == 0x6A80
    else:
        assert d.to_bytes() == data  # anything accepted is canonical


def test_descriptor_known_encoding() -> None:
    d = LoadFileDescriptor(
        h("F043415244454D5550"),
        (1, 2),
        "pkg",
        b"\xab" * 32,
        (Module(h("F0434152444D"), "e", "pkg:C"),),
    )
    assert d.to_bytes() == (
        h("FE4D8001014F09F043415244454D5550CE0201028103706B678220")
        + b"\xab" * 32
        + h("A0124F06F0434152444D8001658105706B673A43")
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c[:1] + c[2:],  # format version missing
        lambda c: c + [tlv.build(0x99, b"")],  # unknown object
        lambda c: [c[1], c[0]] + c[2:],  # out of order
        lambda c: c[:5],  # no module
        lambda c: [tlv.build(0x80, b"\x02")] + c[1:],  # format 2
        lambda c: c[:3] + [tlv.build(0x81, b"not a package!")] + c[4:],
        lambda c: c[:5] + [tlv.build(0xA0, [(0x4F, c[1][2:]), (0x80, b""), (0x81, b"a:B")])],
    ],
)
def test_descriptor_refusals(mutate) -> None:
    good = describe_load_file("notes")
    top = tlv.Tlv.from_bytes(good.to_bytes())
    children = [c.to_bytes() for c in top.children]
    with pytest.raises(LoadFileError):
        LoadFileDescriptor.from_bytes(tlv.build(DESCRIPTOR_TAG, mutate(children)))


def test_entry_point_stands_for_its_package() -> None:
    assert package_of("purse") == "applets.sample"
    assert package_of("notes") == "applets.notes"
    assert package_of("applets.sample") == "applets.sample"
    assert build_load_file("purse") == build_load_file("applets.sample")
    names = [n for n, _ in catalogued_modules("applets.sample")]
    assert names == ["counter-client", "counter-server", "echo", "purse"]
    d = describe_load_file(
        "echo", aid=h("F000000001"), version=(3, 4), module_aids={"echo": h("F000000002")}
    )
    assert d.aid == h("F000000001") and d.version == (3, 4)
    assert d.module_for("echo").aid == h("F000000002")
    assert d.module_for("applets.sample.echo:EchoApplet").entry_point == "echo"
    with pytest.raises(ValueError):
        build_load_file("json")  # a package with no catalogued applet


def test_code_hash_follows_the_documented_layout() -> None:
    files = source_files("applets.notes")
    assert [p for p, _ in files] == ["__init__.py"]
    spec = importlib.util.find_spec("applets.notes")
    assert spec is not None and spec.origin is not None
    content = Path(spec.origin).read_bytes()
    expected = hashlib.sha256(
        (11).to_bytes(4, "big") + b"__init__.py" + len(content).to_bytes(8, "big") + content
    ).digest()
    assert code_hash("applets.notes") == expected


def test_code_hash_tracks_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "gpcardpkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("A = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "m.py").write_text("B = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_hash("gpcardpkg")
    assert [p for p, _ in source_files("gpcardpkg")] == [
        "__init__.py",
        "sub/__init__.py",
        "sub/m.py",
    ]
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.py").write_text("ignored")
    (pkg / "notes.txt").write_text("not source")
    assert code_hash("gpcardpkg") == first
    (pkg / "sub" / "m.py").write_text("B = 3\n")
    assert code_hash("gpcardpkg") != first
    single = tmp_path / "gpcardmod.py"
    single.write_text("C = 1\n")
    assert [p for p, _ in source_files("gpcardmod")] == ["gpcardmod.py"]
    with pytest.raises(ValueError):
        code_hash("no_such_package_here")


def test_verify_descriptor_against_the_catalogue() -> None:
    cat = Catalogue()
    good = describe_load_file("applets.sample")
    verify_descriptor(good, cat)
    wrong_ep = LoadFileDescriptor(
        good.aid,
        good.version,
        good.package,
        good.code_hash,
        (Module(good.modules[0].aid, "purse", good.modules[0].class_ref),),
    )
    with pytest.raises(LoadFileError, match="entry point"):
        verify_descriptor(wrong_ep, cat)
    with pytest.raises(LoadFileError, match="code hash"):
        verify_descriptor(
            LoadFileDescriptor(good.aid, good.version, good.package, bytes(32), good.modules), cat
        )


# -- the LOAD stream -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600),
    st.lists(st.builds(DapBlock, aid_st, st.binary(max_size=80)), max_size=3),
)
def test_load_stream_round_trip_and_length(lfdb: bytes, daps: list[DapBlock]) -> None:
    stream = load_file_stream(lfdb, daps)
    assert parse_load_stream(stream) == (lfdb, daps)
    # Every prefix either cannot tell the length yet or tells the right one.
    for cut in range(len(stream) + 1):
        n = expected_stream_length(stream[:cut])
        assert n is None or n == len(stream)
    assert expected_stream_length(stream) == len(stream)


def test_load_stream_refusals() -> None:
    with pytest.raises(LoadFileError):
        parse_load_stream(h("E2024F00") + tlv.build(0xC4, b"x"))  # DAP block without C3
    with pytest.raises(LoadFileError):
        parse_load_stream(tlv.build(0xC4, b"x") + tlv.build(0xC4, b"y"))
    with pytest.raises(LoadFileError):
        parse_load_stream(tlv.build(0xC4, b"xy")[:-1])
    with pytest.raises(LoadFileError):
        expected_stream_length(h("C5020000"))


@pytest.mark.parametrize("n, alg", [(20, "sha1"), (32, "sha256"), (48, "sha384"), (64, "sha512")])
def test_lfdb_hash_lengths(n: int, alg: str) -> None:
    assert lfdb_hash(b"abc", n) == hashlib.new(alg, b"abc").digest()


def test_lfdb_hash_unknown_length() -> None:
    with pytest.raises(LoadFileError):
        lfdb_hash(b"abc", 16)


# -- the card under random blocking and mutation ---------------------------------------------------

NOTES = describe_load_file("notes")
LFDB = NOTES.to_bytes()
STREAM = load_file_stream(LFDB)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 255), min_size=1, max_size=40), st.sampled_from([0x01, 0x03, 0x33]))
def test_load_in_any_blocking(sizes: list[int], level: int) -> None:
    rt = gp_card()
    host = GpHost(rt)
    host.open(level)
    assert host.install_for_load(NOTES.aid, lfdb_hash(LFDB)) == 0x9000
    pos = block = 0
    while pos < len(STREAM):
        size = sizes[block % len(sizes)]
        chunk = STREAM[pos : pos + size]
        pos += len(chunk)
        p1 = 0x80 if pos == len(STREAM) else 0x00
        assert host.send(host.cmd(0xE8, p1, block, chunk))[1] == 0x9000
        block += 1
    loaded = {f.aid: f for f in rt.applet(h("A000000151000000")).load_files}
    assert loaded[NOTES.aid].modules == NOTES.modules
    assert loaded[NOTES.aid].code_hash == NOTES.code_hash


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(STREAM) - 1), st.integers(1, 255)), min_size=1, max_size=4
    )
)
def test_mutated_load_is_refused_cleanly(flips: list[tuple[int, int]]) -> None:
    """Without a hash in INSTALL [for load], any corruption must still fail the descriptor
    or catalogue checks: never an exception, never a partial Registry."""
    stream = bytearray(STREAM)
    for pos, x in flips:
        stream[pos] ^= x
    rt = gp_card()
    host = GpHost(rt)
    host.open(0x01)
    before = registry_state(rt)
    assert host.install_for_load(NOTES.aid) == 0x9000
    sw = host.load(bytes(stream), block=120)
    assert rt.exceptions == 0
    if bytes(stream) == STREAM:
        assert sw == 0x9000
    elif sw == 0x9000:
        # Only a change the descriptor does not protect may pass: entry-point text, say.
        loaded = rt.applet(h("A000000151000000")).load_files[-1]
        assert loaded.code_hash == NOTES.code_hash and loaded.package == NOTES.package
        assert all(m.class_ref in rt.catalogue for m in loaded.modules)
    else:
        assert sw in (0x6A80, 0x6A86, 0x6A84)
        assert registry_state(rt) == before


# -- small parsers ---------------------------------------------------------------------------------


def test_install_data_fields() -> None:
    f = ForLoad.parse(h("05F000000001 00 20") + bytes(32) + h("00 00"))
    assert (f.elf_aid, f.sd_aid, len(f.lfdb_hash)) == (h("F000000001"), b"", 32)
    i = ForInstall.parse(h("05F000000001 05F000000002 05F000000003 01 00 04 C9020102 00"))
    assert i.application_parameters == h("0102")
    assert application_parameters(h("EF00C900")) == b""
    for bad in (h("05F0000000"), h("05F000000001 00 00 00 00 00"), h("FF")):
        with pytest.raises(CardError):
            ForLoad.parse(bad)
    assert split_fields(h("8103") + b"abc", 1) == [b"abc"]


def test_get_status_query_parsing() -> None:
    q = status.parse_query(0x40, 0x03, h("4F03A00000 5C034F9F70"))
    assert (q.subset, q.tlv_format, q.next, q.aid_prefix, q.tags) == (
        0x40,
        True,
        True,
        h("A00000"),
        (0x4F, 0x9F70),
    )
    for p1, p2, data in ((0x41, 0x02, h("4F00")), (0x40, 0x06, h("4F00"))):
        with pytest.raises(CardError) as e:
            status.parse_query(p1, p2, data)
        assert e.value.sw == 0x6A86
    for data in (h("5C00"), h("4F004F00"), h("4F00 9900"), h("4F11") + bytes(17)):
        with pytest.raises(CardError) as e:
            status.parse_query(0x40, 0x02, data)
        assert e.value.sw == 0x6A80


def test_status_paging_takes_whole_entries() -> None:
    items = [bytes([i]) * (5 + i) for i in range(10)]
    out, start, pages = b"", 0, 0
    while start < len(items):
        page, start = status.page(items, start, 20)
        assert len(page) <= 20
        out += page
        pages += 1
    assert out == b"".join(items) and pages > 3
    assert status.page([b"x" * 50], 0, 20) == (b"x" * 50, 1)  # one entry always goes


def test_life_cycle_rules() -> None:
    check_card_transition(OP_READY, INITIALIZED)
    check_card_transition(CARD_LOCKED, SECURED)
    for cur, new, sw in (
        (OP_READY, SECURED, 0x6985),
        (SECURED, INITIALIZED, 0x6985),
        (TERMINATED, SECURED, 0x6985),
        (SECURED, 0x02, 0x6A80),
    ):
        with pytest.raises(CardError) as e:
            check_card_transition(cur, new)
        assert e.value.sw == sw
    assert app_state_for_set_status(0x07, 0x80) == 0x87
    assert app_state_for_set_status(0x0F, 0x80) == 0x8F
    assert app_state_for_set_status(0x8F, 0x0F) == 0x0F
    assert app_state_for_set_status(0x87, 0x00) == 0x07
