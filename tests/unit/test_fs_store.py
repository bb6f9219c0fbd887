"""The file system's persistence contract: immutable values, one write per change,
no cache that outlives a rollback, tears during personalisation (card.nvm)."""

from __future__ import annotations

from typing import Any

import pytest

from card.framework.system import Store as NvmStore
from card.fs import (
    ADM1,
    ALW,
    PIN1,
    FileSystem,
    Referenced,
    StaticEnvironment,
    Structure,
    rules,
)
from card.fs.security import encode_rules
from card.nvm import NVM, PowerLoss
from card.sw import CardError

ENV = StaticEnvironment(frozenset({PIN1, ADM1}))
USIM = bytes.fromhex("A0000000871002FF")


class CountingStore(dict):
    """A dict store that counts writes and checks every value is an allowed immutable."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def set(self, key: str, value: Any) -> None:
        assert isinstance(key, str)
        check_value(value)
        self.writes += 1
        self[key] = value


def check_value(v: Any) -> None:
    if isinstance(v, tuple):
        for x in v:
            check_value(x)
    else:
        assert v is None or type(v) in (bool, int, str, bytes), type(v)


def personalise(fs: FileSystem) -> None:
    fs.create_mf(pins=(PIN1, ADM1), security=rules(read=ALW, update=ADM1))
    fs.create_ef(
        "3F00",
        0x2F06,
        Structure.LINEAR_FIXED,
        record_length=24,
        data=[encode_rules(read=ALW, update=ADM1), encode_rules(read=PIN1, update=PIN1)],
    )
    fs.create_ef("3F00", 0x2FE2, size=10, sfi=2, data=bytes(range(10)))
    fs.create_ef(
        "3F00",
        0x2F00,
        Structure.LINEAR_FIXED,
        record_length=4,
        records=3,
        sfi=30,
        security=Referenced(0x2F06, 2),
    )
    df = fs.create_df("3F00", 0x7F10, name=b"DEMO.DF")
    fs.create_ef(
        df, 0x6F3B, Structure.CYCLIC, record_length=2, records=3, data=[b"\x00\x01"], increase=True
    )
    adf = fs.create_adf(USIM)
    fs.create_ef(adf, 0x6F07, size=9)


def test_values_are_immutable_and_writes_single() -> None:
    store = CountingStore()
    fs = FileSystem(store)
    personalise(fs)
    st: dict = {}
    ops = [
        lambda: fs.select(st, 0x08, 0x04, b"\x2f\xe2"),
        lambda: fs.read_binary(st, ENV, 0, 0, 4),
        lambda: fs.update_binary(st, ENV, 0, 2, b"\xaa\xbb"),
        lambda: fs.update_binary(st, ENV, 0x82, 0, b"\xcc"),
        lambda: fs.select(st, 0x00, 0x04, b"\x2f\x00"),
        lambda: fs.read_record(st, ENV, 0, 0x02, 4),
        lambda: fs.update_record(st, ENV, 2, 0x04, b"abcd"),
        lambda: fs.search_record(st, ENV, 1, 0x04, b"bc"),
        lambda: fs.select(st, 0x08, 0x04, b"\x7f\x10\x6f\x3b"),
        lambda: fs.update_record(st, ENV, 0, 0x03, b"\x00\x05"),
        lambda: fs.increase(st, ENV, 0, 0, b"\x01"),
        lambda: fs.set_activation(st, ENV, 0, 0, b"", False),
        lambda: fs.set_activation(st, ENV, 0, 0, b"", True),
        lambda: fs.status(st, 0x00),
    ]
    expected_writes = [0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
    for op, n in zip(ops, expected_writes, strict=True):
        before = store.writes
        op()
        assert store.writes - before == n
    # the channel state is plain, volatile data, never written to the store
    assert not any(k in store for k in ("fs.df", "fs.ef", "fs.rec", "fs.app"))
    assert set(st) == {"fs.df", "fs.ef", "fs.rec"}


def test_prefix_keeps_trees_apart() -> None:
    store = CountingStore()
    a = FileSystem(store, prefix="a.")
    b = FileSystem(store, prefix="b.")
    personalise(a)
    assert not b.exists()
    b.create_mf()
    b.create_ef("3F00", 0x2FE2, size=2)
    assert a.read("3F00/2FE2") == bytes(range(10)) and b.read("3F00/2FE2") == b"\xff\xff"
    st: dict = {}
    a.select(st, 0, 0x0C, b"\x7f\x10")
    b.select(st, 0, 0x0C, b"\x2f\xe2")
    assert a.current_df(st).fid == 0x7F10 and b.current_ef(st).fid == 0x2FE2


@pytest.mark.parametrize("deep", [False, True])
def test_a_rollback_is_seen_at_once(deep: bool) -> None:
    store = CountingStore()
    fs = FileSystem(store)
    personalise(fs)
    saved = dict(store)
    if deep:  # a store reloaded from an image returns equal values, not the same objects
        saved = {k: (tuple(list(v)) if isinstance(v, tuple) else v) for k, v in saved.items()}
        assert saved["fs.m.3F00/2FE2"] is not store["fs.m.3F00/2FE2"]
    st: dict = {}
    fs.select(st, 0x08, 0x04, b"\x2f\xe2")
    fs.update_binary(st, ENV, 0, 0, b"\xff")
    fs.set_activation(st, ENV, 0, 0, b"", False)
    fs.select(st, 0x08, 0x04, b"\x2f\x06")
    fs.update_record(st, ENV, 2, 0x04, encode_rules(read=ALW).ljust(24, b"\xff"))
    fs.delete("3F00/7F10")
    reader: dict = {}
    fs.select(reader, 0x08, 0x0C, b"\x2f\x00")
    fs.read_record(reader, StaticEnvironment(), 1, 0x04, 4)  # ARR record 2 now says ALW
    # power loss rolls everything back to the saved values
    store.clear()
    store.update(saved)
    with pytest.raises(CardError):
        fs.read_record(reader, StaticEnvironment(), 1, 0x04, 4)  # PIN1 again
    st2: dict = {}
    fs.select(st2, 0x08, 0x04, b"\x2f\xe2")  # activated again: no warning
    assert fs.read_binary(st2, ENV, 0, 0, 10) == bytes(range(10))
    fs.select(st2, 0x08, 0x0C, b"\x7f\x10\x6f\x3b")  # the deleted DF is back
    fs.select(st2, 0x04, 0x0C, b"DEMO")


def _nvm_fs() -> tuple[NVM, FileSystem]:
    nvm = NVM()
    return nvm, FileSystem(NvmStore(nvm, "A000000001"))


def test_personalisation_in_a_transaction_is_all_or_nothing() -> None:
    nvm, fs = _nvm_fs()
    nvm.begin()
    personalise(fs)
    nvm.commit()
    complete = nvm.snapshot()
    writes = nvm.total_writes
    for n in range(writes):
        nvm, fs = _nvm_fs()
        nvm.tear_after(n)
        with pytest.raises(PowerLoss):
            nvm.begin()
            personalise(fs)
            nvm.commit()
        nvm.power_up()
        assert nvm.snapshot() == {}, n
        assert not fs.exists()
        # and the emptied store builds again
        nvm.begin()
        personalise(fs)
        nvm.commit()
        assert nvm.snapshot() == complete


def test_personalisation_torn_without_transaction_leaves_no_half_file() -> None:
    nvm, fs = _nvm_fs()
    personalise(fs)
    writes = nvm.total_writes
    for n in range(writes):
        nvm, fs = _nvm_fs()
        nvm.tear_after(n)
        with pytest.raises(PowerLoss):
            personalise(fs)
        nvm.power_up()
        if not fs.exists():
            continue
        # every file reachable through a directory is complete
        stack = ["3F00"] + [h for _, h in fs.applications()]
        while stack:
            h = stack.pop()
            info = fs.info(h)
            assert info is not None, (n, h)
            if info.is_df:
                stack.extend(fs.children(h))
            else:
                content = fs.read(h)
                assert len(content) == (info.records if info.is_record else info.size)


def test_every_command_is_before_or_after_under_a_tear() -> None:
    for n_tear in (0, None):
        nvm, fs = _nvm_fs()
        personalise(fs)
        st: dict = {}
        fs.select(st, 0x08, 0x04, b"\x7f\x10\x6f\x3b")
        before = fs.read("3F00/7F10/6F3B")
        nvm.tear_after(n_tear)
        if n_tear is None:
            fs.increase(st, ENV, 0, 0, b"\x02")
            assert fs.read("3F00/7F10/6F3B") == (b"\x00\x03", b"\x00\x01", b"\xff\xff")
        else:
            with pytest.raises(PowerLoss):
                fs.increase(st, ENV, 0, 0, b"\x02")
            nvm.power_up()
            assert fs.read("3F00/7F10/6F3B") == before
