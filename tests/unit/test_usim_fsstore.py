"""card.uicc.fsstore: the compact form of a profile's files gives back what was stored."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.fs import FileSystem, Structure
from card.fs.files import META_VERSION, meta_tuple
from card.nvm import _size
from card.uicc.fsstore import CompactFsStore, DamagedRecord, _pack_meta, _unpack_meta
from card.uicc.profile import DictStore


def _meta(draw: Any, handle: str) -> tuple[Any, ...]:
    parent = None if handle == "3F00" else handle.rsplit("/", 1)[0] if "/" in handle else "3F00"
    opt = st.none() | st.binary(max_size=20)
    pins = st.lists(st.tuples(st.integers(0, 255), st.none() | st.integers(0, 255)), max_size=4)
    return (
        META_VERSION,
        handle,
        parent,
        draw(st.integers(0, 255)),
        draw(st.none() | st.integers(0, 0xFFFF)),
        draw(st.integers(0, 30)),
        draw(opt),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 0xFFFFFF)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 254)),
        draw(opt),
        draw(st.integers(0, 255)),
        tuple(draw(pins)),
        draw(opt),
        draw(st.none() | st.integers(0, 0xFFFFFFFF)),
    )


@settings(max_examples=200)
@given(st.data(), st.sampled_from(["3F00", "3F00/7F10", "ADF.A0000000871002", "ADF.A0/6F07"]))
def test_metadata_packs_and_unpacks(data: Any, handle: str) -> None:
    meta = _meta(data.draw, handle)
    packed = _pack_meta(handle, meta)
    # Smaller than the tuple in the card's memory accounting (card.nvm charges each value).
    assert packed is not None and _size(packed) < _size(meta)
    assert _unpack_meta(handle, packed) == meta


def test_metadata_that_does_not_fit_is_kept_whole() -> None:
    store = CompactFsStore(DictStore(), "p.")
    odd = meta_tuple(handle="3F00/7F10", parent="3F00/7F20", fdb=0x38, fid=0x7F10)
    store.set("p.m.3F00/7F10", odd)  # its parent not its path's
    assert store.get("p.m.3F00/7F10") == odd
    entries = ((0x6F07, 0, "elsewhere"),)  # a child whose handle is not its path's
    store.set("p.c.3F00/7F10", entries)
    assert store.get("p.c.3F00/7F10") == entries


@pytest.mark.parametrize(
    "key,value",
    [
        ("p.m.3F00/7F10", (META_VERSION, "3F00/7F10")),  # another length
        (
            "p.m.3F00/7F10",
            (2,) + meta_tuple(handle="3F00/7F10", parent="3F00", fdb=0x38, fid=0x7F10)[1:],
        ),
        ("p.m.3F00/7F10", (META_VERSION, "3F00/7F10", "3F00", 0x38) + (0,) * 12),  # field types
        (
            "p.m.3F00/7F10",
            meta_tuple(handle="3F00/7F10", parent="3F00", fdb=0x38, fid=0x7F10)[:13]
            + ((1,), None, None),
        ),
        ("p.c.3F00/7F10", 7),
        ("p.c.3F00/7F10", (1, 2)),
        ("p.c.3F00/7F10", ((0x6F07, 0),)),
        ("p.c.3F00/7F10", ((0x6F07, "0", "3F00/7F10/6F07"),)),
    ],
)
def test_a_kept_whole_value_of_another_shape_is_a_damaged_record(key: str, value: Any) -> None:
    """Regression: a metadata tuple or a directory kept whole was returned unchecked, and
    card.fs failed on it later (ValueError, TypeError: 6F00); the store raises
    `DamagedRecord` naming the key, never the value."""
    plain = DictStore()
    plain.set(key, value)
    with pytest.raises(DamagedRecord) as e:
        CompactFsStore(plain, "p.").get(key)
    assert str(e.value) == f"the stored record {key} does not decode"


@settings(max_examples=80, deadline=None)
@given(
    st.binary(min_size=1, max_size=64),
    st.lists(st.binary(min_size=6, max_size=6), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.binary(min_size=6, max_size=6)), max_size=8),
)
def test_files_read_back_as_written(transparent: bytes, records: list, writes: list) -> None:
    """Through card.fs: a compact tree and a plain one agree after every write."""
    trees = [FileSystem(CompactFsStore(DictStore(), "x."), "x."), FileSystem(DictStore(), "x.")]
    for fs in trees:
        fs.create_mf()
        fs.create_ef("3F00", 0x2F05, size=len(transparent) + 8, data=transparent)
        fs.create_ef(
            "3F00", 0x6F3A, Structure.LINEAR_FIXED, record_length=6, records=8, data=records
        )
        fs.create_ef("3F00", 0x6F3B, Structure.LINEAR_FIXED, record_length=6, records=8)
    trees[0].store.set_link("3F00/6F3B", "3F00/6F3A")  # type: ignore[attr-defined]
    trees[1].write("3F00/6F3B", trees[1].read("3F00/6F3A"))
    for n, rec in writes:
        for fs in trees:
            recs = list(fs.read("3F00/6F3A"))
            recs[n] = rec
            fs.write("3F00/6F3A", recs)
            fs.write("3F00/2F05", bytes(reversed(fs.read("3F00/2F05"))))  # type: ignore[arg-type]
    compact, plain = trees
    for h in ("3F00/2F05", "3F00/6F3A"):
        assert compact.read(h) == plain.read(h)
    assert compact.read("3F00/6F3B") == compact.read("3F00/6F3A")  # the link follows
    assert compact.children("3F00") == plain.children("3F00")
    assert compact.info("3F00/6F3A").meta == plain.info("3F00/6F3A").meta  # type: ignore[union-attr]


def test_fill_costs_nothing() -> None:
    store = DictStore()
    fs = FileSystem(CompactFsStore(store, "x."), "x.")
    fs.create_mf()
    fs.create_ef("3F00", 0x6F3C, Structure.LINEAR_FIXED, record_length=176, records=10)
    assert store.values["x.z.3F00/6F3C"] == ()  # ten empty records: nothing kept
    assert fs.read("3F00/6F3C") == (b"\xff" * 176,) * 10
    fs.delete("3F00/6F3C")
    assert not any(k.startswith(("x.z.", "x.d.", "x.m.3F00/")) for k in store.values)
