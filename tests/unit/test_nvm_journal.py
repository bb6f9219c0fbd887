"""NVM refusals, memory accounting, deletes and the undo journal in the card image.

JC 3.0 Runtime Environment §7 (atomicity and transactions). Each test pins an
exact value (bytes used, writes counted, rows in the image) so that a
regression in the bookkeeping fails a test (the mutation-testing targets).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from card import nvm as nvm_module
from card.nvm import NVM, NvmError, OutOfMemory, PowerLoss, TransactionError

JOURNAL_ROW = "__journal__"


def _rows(path: Path) -> dict[tuple[str, str], str]:
    """The image's value rows, read with sqlite3 alone."""
    with sqlite3.connect(path) as db:
        return {(o, n): v for o, n, v in db.execute("SELECT owner, name, value FROM nvm")}


def test_transaction_errors_carry_reason_and_message() -> None:
    nvm = NVM()
    for call in (nvm.commit, nvm.abort):
        with pytest.raises(TransactionError) as e:
            call()
        assert e.value.reason == TransactionError.NOT_IN_PROGRESS
        assert str(e.value) == "no transaction in progress"
    nvm.begin()
    with pytest.raises(TransactionError) as e:
        nvm.begin()
    assert e.value.reason == TransactionError.IN_PROGRESS
    assert str(e.value) == "transaction already in progress"


def test_tear_after_refuses_a_negative_count() -> None:
    nvm = NVM()
    with pytest.raises(ValueError) as e:
        nvm.tear_after(-1)
    assert str(e.value) == "n must be >= 0"
    assert not nvm.tear_armed
    nvm.tear_after(0)
    assert nvm.tear_armed
    nvm.tear_after(None)
    assert not nvm.tear_armed


def test_delete_of_nothing_costs_no_write() -> None:
    nvm = NVM()
    nvm.delete("nobody", "x")
    nvm.write("o", "a", 1)
    n = nvm.total_writes
    nvm.delete("o", "missing")
    assert nvm.total_writes == n
    assert nvm.segment("o") == {"a": 1}


def test_delete_outside_a_transaction_frees_memory_and_counts_one_write() -> None:
    nvm = NVM()
    nvm.write("o", "a", b"12345")  # 5 + 2 bytes
    nvm.write("o", "b", 7)  # 4 bytes
    assert nvm.used == 11
    n = nvm.total_writes
    nvm.delete("o", "a")
    assert nvm.total_writes == n + 1
    assert nvm.used == 4
    assert nvm.available == nvm.capacity - 4
    assert nvm.segment("o") == {"b": 7}


def test_delete_owner_outside_a_transaction_is_one_write() -> None:
    nvm = NVM()
    nvm.write("keep", "k", 1)
    nvm.write("o", "a", b"12")
    nvm.write("o", "b", (1, 2))
    assert nvm.used == 4 + 4 + 2 + 8
    n = nvm.total_writes
    nvm.delete_owner("o")
    assert nvm.total_writes == n + 1
    assert nvm.used == 4
    assert nvm.segment("o") == {}
    assert nvm.read("keep", "k") == 1


def test_delete_owner_of_an_empty_or_unknown_owner() -> None:
    nvm = NVM()
    nvm.segment("empty")  # creates the owner with no values
    nvm.write("o", "a", 1)
    assert sorted(nvm._segments) == ["empty", "o"]
    n = nvm.total_writes
    nvm.delete_owner("empty")
    nvm.delete_owner("never-seen")
    assert list(nvm._segments) == ["o"]  # no empty segment left behind
    assert nvm.total_writes == n


def test_delete_owner_inside_a_transaction_is_undone_by_abort() -> None:
    nvm = NVM()
    nvm.write("o", "a", 1)
    nvm.write("o", "b", b"xy")
    used = nvm.used
    nvm.begin()
    nvm.delete_owner("o")
    assert nvm.segment("o") == {}
    assert nvm.used == 0
    nvm.abort()
    assert nvm.segment("o") == {"a": 1, "b": b"xy"}
    assert nvm.used == used


@pytest.mark.parametrize("ending", ["abort", "tear"])
def test_rollback_restores_values_and_memory_accounting(ending: str) -> None:
    nvm = NVM()
    nvm.write("o", "changed", b"1")
    nvm.write("o", "deleted", b"22")
    nvm.write("o", "kept", 3)
    before, used = nvm.snapshot(), nvm.used
    nvm.begin()
    nvm.write("o", "changed", b"longer value")
    nvm.write("o", "changed", b"longer still")  # journaled once: the first old value wins
    nvm.delete("o", "deleted")
    nvm.write("o", "new", (1, b"abc"))
    nvm.write("o", "born-and-gone", 5)
    nvm.delete("o", "born-and-gone")
    nvm.write("other", "x", "text")  # a second owner in the same transaction
    assert nvm.used != used
    if ending == "abort":
        nvm.abort()
        assert nvm.power_up() is False
    else:
        nvm.tear_after(0)
        with pytest.raises(PowerLoss):
            nvm.write("o", "kept", 4)
        assert nvm.torn is True
        assert nvm.power_up() is True
    assert nvm.snapshot() == before
    assert nvm.used == used
    assert not nvm.in_transaction
    assert nvm.torn is False
    # The journal is gone: a later transaction journals afresh.
    nvm.begin()
    nvm.write("o", "kept", 9)
    nvm.abort()
    assert nvm.read("o", "kept") == 3


def test_power_up_without_a_transaction_rolls_nothing_back() -> None:
    nvm = NVM()
    nvm.write("o", "a", 1)
    nvm.tear_after(0)
    with pytest.raises(PowerLoss):
        nvm.write("o", "a", 2)
    assert nvm.power_up() is False
    assert nvm.read("o", "a") == 1
    assert nvm.torn is False and not nvm.tear_armed
    nvm.write("o", "a", 3)
    assert nvm.read("o", "a") == 3


def test_deletes_reach_the_image(tmp_path: Path) -> None:
    path = tmp_path / "del.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.write("o", "b", 2)
    nvm.write("p", "c", 3)
    nvm.write("p", "d", 4)
    nvm.flush()
    nvm.checkpoint()  # the redo log folded into SQLite
    assert set(_rows(path)) == {("o", "a"), ("o", "b"), ("p", "c"), ("p", "d")}
    nvm.delete("o", "a")
    nvm.delete_owner("p")
    nvm.flush()
    nvm.checkpoint()
    assert set(_rows(path)) == {("o", "b")}
    nvm.close()
    back = NVM(path)
    assert back.snapshot() == {"o": {"b": 2}}
    assert back.used == 4
    back.close()


def test_journal_in_the_image_is_rolled_back_and_then_removed(tmp_path: Path) -> None:
    path = tmp_path / "torn.card"
    nvm = NVM(path)
    nvm.write("o", "existing", b"old")
    nvm.write("o", "doomed", 1)
    nvm.flush()
    used = nvm.used
    nvm.begin()
    nvm.write("o", "existing", b"new value")
    nvm.write("o", "fresh", 2)  # absent before the transaction
    nvm.delete("o", "doomed")
    nvm.tear_after(0)
    with pytest.raises(PowerLoss):
        nvm.write("o", "more", 3)
    nvm.close()  # the image now holds the torn state and its journal
    assert ("", JOURNAL_ROW) in _rows(path)

    torn = NVM(path)
    assert torn.torn is True
    assert torn.in_transaction
    assert torn.segment("o") == {"existing": b"new value", "fresh": 2}
    with pytest.raises(PowerLoss):
        torn.write("o", "x", 1)  # no writes until power-up
    assert torn.power_up() is True
    assert torn.segment("o") == {"existing": b"old", "doomed": 1}
    assert torn.used == used
    # Recovery removed the journal from the image as well as from memory.
    rows = _rows(path)
    assert ("", JOURNAL_ROW) not in rows
    assert set(rows) == {("o", "existing"), ("o", "doomed")}
    torn.close()

    again = NVM(path)
    assert again.torn is False
    assert not again.in_transaction
    assert again.power_up() is False
    assert again.segment("o") == {"existing": b"old", "doomed": 1}
    again.close()


def test_committed_transaction_leaves_no_journal_in_the_image(tmp_path: Path) -> None:
    path = tmp_path / "c.card"
    nvm = NVM(path)
    nvm.begin()
    nvm.write("o", "a", 1)
    nvm.flush()  # mid-transaction: the journal is in the image
    assert ("", JOURNAL_ROW) in _rows(path)
    nvm.commit()
    nvm.flush()
    assert set(_rows(path)) == {("o", "a")}
    nvm.close()


def test_tear_before_a_transactions_first_write_leaves_no_journal(tmp_path: Path) -> None:
    """Regression: an empty journal stayed in the image and every reopen "rolled back"."""
    path = tmp_path / "empty.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.begin()
    nvm.tear_after(0)
    with pytest.raises(PowerLoss):
        nvm.write("o", "a", 2)
    nvm.flush()  # as the runtime does after the torn APDU
    assert ("", JOURNAL_ROW) in _rows(path)
    assert nvm.power_up() is True
    assert set(_rows(path)) == {("o", "a")}
    nvm.close()
    again = NVM(path)
    assert again.torn is False and not again.in_transaction
    assert again.power_up() is False
    again.close()


def test_empty_journal_read_from_an_image_is_removed_by_power_up(tmp_path: Path) -> None:
    path = tmp_path / "empty-journal.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.begin()
    nvm.tear_after(0)
    with pytest.raises(PowerLoss):
        nvm.write("o", "a", 2)
    nvm.close()  # the image holds the (empty) journal of the torn transaction
    torn = NVM(path)
    assert torn.torn is True and torn.in_transaction
    assert torn.power_up() is True
    assert ("", JOURNAL_ROW) not in _rows(path)
    torn.close()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"x":1}', "unknown value tag in card image"),
        ("1.5", "unexpected value of type float in card image"),
    ],
)
def test_damaged_value_in_an_image_is_refused(tmp_path: Path, raw: str, message: str) -> None:
    path = tmp_path / "damaged.card"
    NVM(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO nvm VALUES ('o', 'a', ?)", (raw,))
    db.close()
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == message


def test_image_can_be_flushed_from_another_thread(tmp_path: Path) -> None:
    """The vpcd server and the CLI may touch a card from a worker thread."""
    nvm = NVM(tmp_path / "thread.card")
    nvm.write("o", "a", 1)
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            nvm.flush()
            nvm.checkpoint()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    worker = threading.Thread(target=flush)
    worker.start()
    worker.join()
    assert errors == []
    assert ("o", "a") in _rows(tmp_path / "thread.card")
    nvm.close()


def test_capacity_bounds_are_exact() -> None:
    nvm = NVM(capacity=20)
    nvm.write("o", "a", bytes(8))  # 10 bytes
    nvm.write("o", "b", bytes(8))  # 20 bytes: exactly full
    assert nvm.available == 0
    nvm.write("o", "b", bytes(7) + b"\x01")  # same size: no growth
    with pytest.raises(OutOfMemory) as e:
        nvm.write("o", "b", bytes(9))  # one byte more
    assert str(e.value) == "persistent memory full (20 of 20 bytes)"
    assert nvm.read("o", "b") == bytes(7) + b"\x01"


def test_the_last_two_values_stored_are_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NVM.write keeps the last two values it stored (checked, frozen, sized): a PIN
    record written back and forth between its two stored tuples, as VERIFY does, is not
    walked again; a value written anew is (kills the memo mutants of `write`)."""
    checked: list[object] = []
    real = nvm_module._check_value

    def check(value: object) -> tuple[object, int]:
        checked.append(value)
        return real(value)

    monkeypatch.setattr(nvm_module, "_check_value", check)
    nvm = NVM()
    nvm.write("o", "pin", (b"1234", 3, 3))
    full = nvm.read("o", "pin")
    nvm.write("o", "pin", (b"1234", 3, 2))
    less = nvm.read("o", "pin")
    assert len(checked) == 2
    for _ in range(3):  # VERIFY: decrement, then restore
        nvm.write("o", "pin", full)
        nvm.write("o", "pin", less)
    assert len(checked) == 2
    # The value stored last, stored again under another name, keeps the one before.
    nvm.write("o", "copy", less)
    nvm.write("o", "pin", full)
    assert len(checked) == 2
    assert nvm.used == 2 * (2 + 6 + 4 + 4)  # the memos' sizes are the values' own
    nvm.write("o", "pin", (b"1234", 3, 1))  # a new value: checked
    assert len(checked) == 3
    assert nvm.used == 2 * (2 + 6 + 4 + 4)


def test_a_card_over_its_capacity_still_rewrites_and_shrinks() -> None:
    """Only a write that grows is refused when full: an image opened with a smaller
    capacity than it holds (or a full card) can still rewrite and free its values."""
    nvm = NVM(capacity=20)
    nvm.write("o", "a", bytes(18))  # 20 bytes
    nvm.capacity = 10  # as a smaller card would open the same image
    nvm.write("o", "a", bytes(17) + b"\x01")  # same size: no growth, allowed
    nvm.write("o", "a", bytes(8))  # shrinks: allowed
    assert nvm.used == 10 and nvm.read("o", "a") == bytes(8)
    with pytest.raises(OutOfMemory):
        nvm.write("o", "b", None)  # 4 more


def test_the_undo_journal_holds_one_entry_per_key() -> None:
    """JC 3.0 RE §7.7: the journal keeps a key's value from before the transaction, once,
    however often the transaction writes it (its size bounded by the keys touched)."""
    nvm = NVM()
    nvm.write("o", "x", 0)
    nvm.begin()
    for i in range(1, 4):
        nvm.write("o", "x", i)
        nvm.write("o", "y", i)
    assert nvm._journal == [("o", "x", 0), ("o", "y", nvm_module._ABSENT)]
    nvm.abort()
    assert nvm.snapshot() == {"o": {"x": 0}}


def test_sizes_of_nested_values() -> None:
    nvm = NVM()
    nvm.write("o", "t", (b"12345", "ab", (1, None)))
    assert nvm.used == 2 + 7 + 4 + (2 + 4 + 4)


def test_write_counters_and_power_loss_messages() -> None:
    nvm = NVM()
    nvm.apdu_writes = 0
    nvm.write("o", "a", 1)
    nvm.write("o", "b", 2)
    assert (nvm.apdu_writes, nvm.total_writes) == (2, 2)
    nvm.tear_after(0)
    with pytest.raises(PowerLoss) as e:
        nvm.write("o", "c", 3)
    assert str(e.value) == "power lost (tear injected)"
    with pytest.raises(PowerLoss) as e:
        nvm.write("o", "c", 3)
    assert str(e.value) == "write after power loss"
    assert (nvm.apdu_writes, nvm.total_writes) == (2, 2)


def test_closing_twice_is_harmless(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "c.card")
    nvm.write("o", "a", 1)
    nvm.close()
    nvm.close()
    nvm.flush()


def _foreign_image(path: Path, meta: list[tuple[str, str]]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE nvm (owner TEXT, name TEXT, value TEXT)")
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta)
    db.close()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ([("magic", "other"), ("version", "1")], "{path} is not a cardemu card image"),
        ([("version", "1")], "{path} is not a cardemu card image"),
        (
            [("magic", "cardemu-card-image"), ("version", "99")],
            "{path} is a card image of format 99, newer than this cardemu",
        ),
        (
            [("magic", "cardemu-card-image"), ("version", "x")],
            "{path} is a damaged card image (invalid literal for int() with base 10: 'x')",
        ),
    ],
)
def test_foreign_or_newer_images_are_refused(
    tmp_path: Path, meta: list[tuple[str, str]], message: str
) -> None:
    path = tmp_path / "foreign.card"
    _foreign_image(path, meta)
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == message.format(path=path)


def test_only_the_cards_own_journal_row_is_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "names.card"
    nvm = NVM(path)
    nvm.write("", "x", 1)
    nvm.write("o", JOURNAL_ROW, 2)
    nvm.close()
    back = NVM(path)
    assert back.torn is False and not back.in_transaction
    assert back.snapshot() == {"": {"x": 1}, "o": {JOURNAL_ROW: 2}}
    back.close()
