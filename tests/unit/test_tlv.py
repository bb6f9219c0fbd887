"""BER-TLV: known encodings, malformed input with offsets, and hypothesis round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card import tlv
from card.tlv import TagClass, Tlv, TlvError

H = bytes.fromhex
SETTINGS = settings(max_examples=300, deadline=None)

# GlobalPlatform ISD SELECT response (FCI): DF name, then the proprietary
# template A5 with 9F65 (maximum length of data field) = FF.
GP_ISD_FCI = H("6F 10 84 08 A000000151000000 A5 04 9F65 01 FF")


# -- strategies -------------------------------------------------------------------

_PADDING = (0x00, 0xFF)


def tags(*, constructed: bool | None = None, padding_safe: bool = True) -> st.SearchStrategy[int]:
    """Valid tags of 1 to 3 bytes, as ints."""

    def first_ok(b: int) -> bool:
        if padding_safe and b in _PADDING:
            return False
        return constructed is None or bool(b & 0x20) == constructed

    one = st.integers(0, 0xFF).filter(lambda b: b & 0x1F != 0x1F and first_ok(b))
    lead = st.integers(0, 7).map(lambda hi: hi << 5 | 0x1F).filter(first_ok)
    two = st.tuples(lead, st.integers(0, 0x7F)).map(lambda t: t[0] << 8 | t[1])
    three = st.tuples(lead, st.integers(0x80, 0xFF), st.integers(0, 0x7F)).map(
        lambda t: t[0] << 16 | t[1] << 8 | t[2]
    )
    return st.one_of(one, two, three)


# Values from empty to beyond 65535 (82 and 83 length forms); big ones are cheap patterns.
values = st.one_of(
    st.binary(max_size=300),
    st.integers(0, 70000).map(lambda n: bytes((n % 251,)) * n),
)


def _encoded_len(tag: int) -> int:
    return len(tlv.encode_tag(tag))


# -- tags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "raw", "cls", "constructed", "number"),
    [
        (0x84, "84", TagClass.CONTEXT, False, 4),
        (0x6F, "6F", TagClass.APPLICATION, True, 15),
        (0x30, "30", TagClass.UNIVERSAL, True, 16),
        (0xE1, "E1", TagClass.PRIVATE, True, 1),
        (0x5F2D, "5F2D", TagClass.APPLICATION, False, 0x2D),
        (0x7F2E, "7F2E", TagClass.APPLICATION, True, 0x2E),
        (0x9F7F, "9F7F", TagClass.CONTEXT, False, 0x7F),
        (0xBF2E, "BF2E", TagClass.CONTEXT, True, 0x2E),
        (0x9F8101, "9F8101", TagClass.CONTEXT, False, 129),
    ],
)
def test_tag_fields(tag: int, raw: str, cls: TagClass, constructed: bool, number: int) -> None:
    assert tlv.encode_tag(tag) == H(raw)
    assert tlv.decode_tag(H(raw) + b"\x00", 0) == (tag, len(H(raw)))
    assert tlv.tag_class(tag) is cls
    assert tlv.is_constructed(tag) is constructed
    assert tlv.tag_number(tag) == number
    assert Tlv(tag).constructed is constructed
    assert Tlv(tag).tag_class is cls


@pytest.mark.parametrize(
    "tag",
    [
        -1,
        0x1F,  # announces subsequent bytes
        0x9F,
        0x8F01,  # two bytes but the first does not end in 11111
        0x9F81,  # last byte has b8 set
        0x9F0101,  # a middle byte lacks b8
        0x1F81818101,  # five bytes
    ],
)
def test_encode_tag_rejects_malformed(tag: int) -> None:
    with pytest.raises(ValueError):
        tlv.encode_tag(tag)
    with pytest.raises(ValueError):
        Tlv(tag, b"")


@SETTINGS
@given(tags(padding_safe=False))
def test_tag_round_trip(tag: int) -> None:
    raw = tlv.encode_tag(tag)
    assert tlv.decode_tag(b"\xaa" + raw + b"\x01", 1) == (tag, 1 + len(raw))
    assert int.from_bytes(raw, "big") == tag


# -- lengths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "raw"),
    [
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "8180"),
        (0xFF, "81FF"),
        (0x100, "820100"),
        (0xFFFF, "82FFFF"),
        (0x10000, "83010000"),
        (0xFFFFFF, "83FFFFFF"),
        (0x1000000, "8401000000"),
        (0xFFFFFFFF, "84FFFFFFFF"),
    ],
)
def test_length_forms(length: int, raw: str) -> None:
    assert tlv.encode_length(length) == H(raw)
    assert tlv.decode_length(H(raw)) == (length, len(H(raw)))


@pytest.mark.parametrize("length", [-1, 0x100000000])
def test_encode_length_out_of_range(length: int) -> None:
    with pytest.raises(ValueError):
        tlv.encode_length(length)


@SETTINGS
@given(st.integers(0, 0xFFFFFFFF))
def test_length_round_trip_is_minimal(n: int) -> None:
    raw = tlv.encode_length(n)
    expected_size = 1 if n < 0x80 else 1 + (n.bit_length() + 7) // 8
    assert len(raw) == expected_size
    assert tlv.decode_length(b"\x00" + raw, 1) == (n, 1 + len(raw))


@SETTINGS
@given(st.integers(0, 300), st.integers(1, 4), st.integers(0, 0xFF))
def test_non_minimal_lengths_parse_and_rebuild_minimal(n: int, k: int, filler: int) -> None:
    k = max(k, (n.bit_length() + 7) // 8)
    value = bytes((filler,)) * n
    loose = b"\x80" + bytes((0x80 | k,)) + n.to_bytes(k, "big") + value
    (parsed,) = tlv.parse(loose)
    assert parsed == Tlv(0x80, value)
    assert parsed.to_bytes() == tlv.build(0x80, value)
    assert len(parsed.to_bytes()) == 1 + len(tlv.encode_length(n)) + n


# -- known encodings ----------------------------------------------------------------


def test_cplc_9f7f_length_2a() -> None:
    cplc = bytes(range(0x2A))
    encoded = tlv.build(0x9F7F, cplc)
    assert encoded[:3] == H("9F7F2A")
    assert len(encoded) == 3 + 0x2A
    assert tlv.unpack(0x9F7F, encoded) == cplc


def test_7f2e_nested() -> None:
    encoded = tlv.build(0x7F2E, [(0x81, b"\x01\x02\x03"), Tlv(0x82, b""), H("5F2D026465")])
    assert encoded == H("7F2E 0C 8103010203 8200 5F2D026465")
    (top,) = tlv.parse_tree(encoded)
    assert top.tag == 0x7F2E and top.constructed
    assert [c.tag for c in top.children] == [0x81, 0x82, 0x5F2D]
    assert top.find(0x5F2D) == Tlv(0x5F2D, b"de")


def test_gp_fci() -> None:
    (fci,) = tlv.parse(GP_ISD_FCI)
    assert fci.tag == 0x6F
    assert fci.children == (
        Tlv(0x84, H("A000000151000000")),
        Tlv(0xA5, H("9F6501FF")),
    )
    # The FF inside 9F65's value is data, not padding.
    assert tlv.find(GP_ISD_FCI, 0x9F65, recursive=True) == Tlv(0x9F65, b"\xff")
    assert tlv.find(GP_ISD_FCI, 0x9F65) is None
    assert fci.find(0x9F65) is None
    assert fci.find(0x9F65, recursive=True) == Tlv(0x9F65, b"\xff")
    assert tlv.find_all(GP_ISD_FCI, 0x84, recursive=True) == [Tlv(0x84, H("A000000151000000"))]
    assert tlv.build(0x6F, [(0x84, H("A000000151000000")), (0xA5, [(0x9F65, b"\xff")])]) == (
        GP_ISD_FCI
    )


def test_long_form_value_of_300_bytes() -> None:
    encoded = tlv.build(0x53, bytes(300))
    assert encoded[:4] == H("53 82 012C")
    assert tlv.parse_one(encoded + H("8000")) == (Tlv(0x53, bytes(300)), 304)


def test_bf2e_empty() -> None:
    assert tlv.build(0xBF2E) == H("BF2E00")
    assert tlv.parse(H("BF2E00"))[0].children == ()


def test_find_all_in_document_order() -> None:
    data = tlv.build(0xE1, [(0x4F, b"\x01"), (0xE2, [(0x4F, b"\x02")])]) + tlv.build(0x4F, b"\x03")
    assert [t.value for t in tlv.find_all(data, 0x4F, recursive=True)] == [
        b"\x01",
        b"\x02",
        b"\x03",
    ]
    assert [t.value for t in tlv.find_all(data, 0x4F)] == [b"\x03"]
    assert tlv.parse(data)[0].find_all(0x4F, recursive=True) == [
        Tlv(0x4F, b"\x01"),
        Tlv(0x4F, b"\x02"),
    ]


def test_parse_one_walks_a_series() -> None:
    data = H("00 8001AA FF 9F650102 00")
    t, nxt = tlv.parse_one(data)
    assert (t, nxt) == (Tlv(0x80, b"\xaa"), 4)
    t, nxt = tlv.parse_one(data, nxt)
    assert (t, nxt) == (Tlv(0x9F65, b"\x02"), 9)
    with pytest.raises(TlvError) as e:
        tlv.parse_one(data, nxt)
    assert e.value.offset == 10


def test_unpack() -> None:
    assert tlv.unpack(0x9F65, H("9F6501FF")) == b"\xff"
    assert tlv.unpack(0x9F65, H("00 9F6501FF FF")) == b"\xff"
    with pytest.raises(TlvError) as e:
        tlv.unpack(0x9F66, H("00 9F6501FF"))
    assert e.value.offset == 1 and "9F66" in str(e.value)
    with pytest.raises(TlvError) as e:
        tlv.unpack(0x9F65, H("9F6501FF 8000"))
    assert e.value.offset == 4
    with pytest.raises(TlvError) as e:
        tlv.unpack(0x9F65, H("9F6501FF FF"), allow_padding=False)
    assert e.value.offset == 4


def test_tlv_from_bytes() -> None:
    assert Tlv.from_bytes(H("8001AA")) == Tlv(0x80, b"\xaa")
    with pytest.raises(TlvError) as e:
        Tlv.from_bytes(H("8001AA 8100"))
    assert e.value.offset == 3
    with pytest.raises(TlvError):
        Tlv.from_bytes(b"")


def test_tlv_value_types() -> None:
    assert Tlv(0x80, bytearray(b"\x01")).value == b"\x01"
    assert isinstance(Tlv(0x80, memoryview(b"\x01")).value, bytes)
    with pytest.raises(TypeError):
        Tlv(0x80, "01")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tlv.build(0x80, "01")
    with pytest.raises(TypeError):
        tlv.build(0xA0, [1, 2])
    assert bytes(Tlv(0x80, b"\x01")) == H("800101")
    assert eval(repr(Tlv(0x9F65, b"\xff"))) == Tlv(0x9F65, b"\xff")


def test_primitive_has_no_children() -> None:
    with pytest.raises(ValueError, match="primitive"):
        _ = Tlv(0x80, H("8001AA")).children


# -- padding (ISO 7816-4 §5.2.2) ----------------------------------------------------


def test_padding_before_between_after() -> None:
    data = H("00 FF 00 8001AA 0000 FF 9F6500 FF")
    assert tlv.parse(data) == [Tlv(0x80, b"\xaa"), Tlv(0x9F65, b"")]
    assert tlv.parse(H("00FF00FF")) == []


def test_padding_inside_constructed() -> None:
    data = H("70 07 00 8001AA FF 0000")
    (t,) = tlv.parse(data)
    assert t.children == (Tlv(0x80, b"\xaa"),)
    assert tlv.parse_tree(data)[0].children == (Tlv(0x80, b"\xaa"),)


def test_padding_off_reads_00_as_a_tag() -> None:
    assert tlv.parse(H("0000 8001AA"), allow_padding=False) == [Tlv(0x00), Tlv(0x80, b"\xaa")]
    with pytest.raises(TlvError) as e:
        tlv.parse(H("8001AA FF"), allow_padding=False)
    assert e.value.offset == 3


@SETTINGS
@given(
    st.lists(st.tuples(tags(), st.binary(max_size=40)), max_size=5),
    st.lists(st.lists(st.sampled_from(_PADDING), max_size=3).map(bytes), min_size=6, max_size=6),
)
def test_padding_is_skipped_anywhere(objects: list[tuple[int, bytes]], pads: list[bytes]) -> None:
    plain = b"".join(tlv.build(t, v) for t, v in objects)
    padded = pads[0] + b"".join(
        p + tlv.build(t, v) for p, (t, v) in zip(pads[1 : 1 + len(objects)], objects, strict=True)
    )
    padded += pads[-1]
    expected = [Tlv(t, v) for t, v in objects]
    assert tlv.parse(padded) == expected == tlv.parse(plain)


# -- malformed input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "offset", "what"),
    [
        ("9F", 0, "truncated tag"),
        ("8001AA 5F", 3, "truncated tag"),
        ("8001AA 9F81", 3, "truncated tag"),
        ("1F81818101 00", 0, "longer than 4"),
        ("0100 9F7F", 4, "truncated length"),
        ("80", 1, "truncated length"),
        ("80 82 01", 1, "truncated length"),
        ("8001AA 81 84 000000", 4, "truncated length"),
        ("80 05 0102", 1, "runs past"),
        ("8001AA 9F65 8201 00 00", 5, "runs past"),
        ("80 80 0000", 1, "indefinite"),
        ("80 85 0000000001 AA", 1, "length bytes"),
        ("80 FF", 1, "length bytes"),
    ],
)
def test_malformed_raises_with_offset(data: str, offset: int, what: str) -> None:
    for fn in (tlv.parse, tlv.parse_tree):
        with pytest.raises(TlvError) as e:
            fn(H(data), allow_padding=False)
        assert e.value.offset == offset
        assert what in str(e.value)
        assert isinstance(e.value, ValueError)


def test_single_step_decoders_raise_with_offset() -> None:
    with pytest.raises(TlvError) as e:
        tlv.decode_tag(H("8001"), 2)
    assert e.value.offset == 2
    with pytest.raises(TlvError) as e:
        tlv.decode_length(H("80"), 1)
    assert e.value.offset == 1
    with pytest.raises(TlvError) as e:
        tlv.decode_length(H("8080"), 1)
    assert e.value.offset == 1 and "indefinite" in e.value.message
    with pytest.raises(TlvError) as e:
        tlv.parse_one(H("AA 80 03 0102"), 1)
    assert e.value.offset == 2


def test_child_may_not_run_past_its_parent() -> None:
    # The child's length fits in the buffer but not in the constructed value.
    data = H("70 03 80 05 00 80 03 112233")
    with pytest.raises(TlvError) as e:
        tlv.parse_tree(data)
    assert e.value.offset == 3  # absolute in the buffer
    (outer, *_rest) = tlv.parse(data)
    with pytest.raises(TlvError) as e:
        _ = outer.children
    assert e.value.offset == 1  # relative to the parent's value
    with pytest.raises(TlvError):
        tlv.find(data, 0x99, recursive=True)


def test_deep_error_offset_is_absolute() -> None:
    data = H("8000 A1 06 A2 04 8001AA 9F")
    with pytest.raises(TlvError) as e:
        tlv.parse_tree(data)
    assert e.value.offset == 9 and "truncated tag" in e.value.message


@SETTINGS
@given(tags(padding_safe=False), st.binary(max_size=300), st.data())
def test_every_truncation_raises_at_the_field(tag: int, value: bytes, data: st.DataObject) -> None:
    encoded = tlv.build(tag, value)
    cut = data.draw(st.integers(1, len(encoded) - 1))
    t_len = _encoded_len(tag)
    with pytest.raises(TlvError) as e:
        tlv.parse(encoded[:cut], allow_padding=False)
    assert e.value.offset == (0 if cut < t_len else t_len)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.booleans())
def test_random_bytes_only_raise_tlverror(data: bytes, padding: bool) -> None:
    try:
        tree = tlv.parse_tree(data, allow_padding=padding)
    except TlvError as e:
        assert 0 <= e.offset <= len(data)
    else:
        # Whatever parsed accounts for no more bytes than were given.
        assert sum(len(t.to_bytes()) for t in tree) <= len(data)


# -- round trips ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(tags(padding_safe=False), values)
def test_build_parse_build(tag: int, value: bytes) -> None:
    encoded = tlv.build(tag, value)
    assert encoded == tlv.encode_tag(tag) + tlv.encode_length(len(value)) + value
    (parsed,) = tlv.parse(encoded, allow_padding=False)
    assert parsed == Tlv(tag, value)
    assert parsed.to_bytes() == encoded
    assert tlv.parse_one(encoded, allow_padding=False) == (parsed, len(encoded))
    if tag >> ((_encoded_len(tag) - 1) * 8) not in _PADDING:
        assert tlv.unpack(tag, encoded) == value


def _tree() -> st.SearchStrategy[tuple[int, object]]:
    leaf = st.tuples(tags(constructed=False), st.binary(max_size=20))
    return st.recursive(
        leaf,
        lambda kids: st.tuples(tags(constructed=True), st.lists(kids, max_size=4)),
        max_leaves=12,
    )


def _shape(t: Tlv) -> tuple[int, object]:
    if t.constructed:
        return (t.tag, [_shape(c) for c in t.children])
    return (t.tag, t.value)


@settings(max_examples=200, deadline=None)
@given(st.lists(_tree(), min_size=1, max_size=3))
def test_nested_trees_round_trip(forest: list[tuple[int, object]]) -> None:
    encoded = b"".join(tlv.build(tag, body) for tag, body in forest)  # type: ignore[arg-type]
    eager = tlv.parse_tree(encoded)
    lazy = tlv.parse(encoded)
    assert [_shape(t) for t in eager] == forest
    assert [_shape(t) for t in lazy] == forest
    assert eager == lazy
    rebuilt = b"".join(tlv.build(tag, body) for tag, body in map(_shape, eager))  # type: ignore[arg-type]
    assert rebuilt == encoded == b"".join(t.to_bytes() for t in eager)


# -- SIMPLE-TLV (ISO 7816-4 §5.2.1) ------------------------------------------------------


def test_simple_tlv_forms() -> None:
    assert tlv.build_simple(0x01, b"") == H("0100")
    assert tlv.build_simple(0x02, bytes(254))[:2] == H("02FE")
    assert tlv.build_simple(0x03, bytes(255))[:4] == H("03FF00FF")
    data = tlv.build_simple(0x01, b"ab") + tlv.build_simple(0xFE, bytes(300))
    assert tlv.parse_simple(data) == [(0x01, b"ab"), (0xFE, bytes(300))]
    for bad in (0x00, 0xFF):
        with pytest.raises(ValueError):
            tlv.build_simple(bad, b"")
    with pytest.raises(ValueError):
        tlv.build_simple(0x01, bytes(65536))


@pytest.mark.parametrize(
    ("data", "offset"),
    [("00 00", 0), ("0100 FF00", 2), ("01", 1), ("01 FF 00", 1), ("01 03 0102", 1)],
)
def test_simple_tlv_malformed(data: str, offset: int) -> None:
    with pytest.raises(TlvError) as e:
        tlv.parse_simple(H(data))
    assert e.value.offset == offset


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=300)), max_size=4))
def test_simple_tlv_round_trip(objects: list[tuple[int, bytes]]) -> None:
    assert tlv.parse_simple(b"".join(tlv.build_simple(t, v) for t, v in objects)) == objects
