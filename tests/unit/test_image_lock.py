"""One process at a time on a card image, and files that are not ours left alone.

Real processes throughout: a second opener is refused at once and told who
holds the image, nothing two processes do one after the other is lost, a
SIGKILLed holder blocks no one, `card new` leaves no half card whenever it is
killed, and inspecting commands create and change nothing.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from applets.sample import PURSE_AID
from card.errors import ImageInUse
from card.imagelock import ImageLock, holder
from card.nvm import IMAGE_APPLICATION_ID, NvmError, aside_path, create_image
from card.runtime import CardRuntime
from host.cli import main
from host.presets import new_card
from host.readers.registry import image_error, served_reader
from tests.conftest import ROOT
from tests.unit.cards import sample_card, tx

needs_proc_locks = pytest.mark.skipif(
    not os.path.exists("/proc/locks"), reason="the holder's PID comes from Linux /proc/locks"
)

SELECT_PURSE = "00A4040C09F043415244454D5501"
VERIFY = "0020000104 31323334"
CREDIT_1 = "803000000400000001"
BALANCE = "8050000004"


def cardemu(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    with CliRunner().isolation() as (out, err, _):
        code = main(list(args))
        return code, out.getvalue().decode(), err.getvalue().decode()


def cardemu_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a real process of its own."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "host.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def python_process(code: str) -> subprocess.Popen[str]:
    """A Python process running `code` with this checkout importable; stdout piped."""
    script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def fingerprint(path: Path) -> tuple[int, str]:
    """A file's mtime and content hash: what must not change."""
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def balance(path: Path) -> int:
    rt = CardRuntime(path, create=False)
    try:
        rt.power_on()
        return rt.applet(PURSE_AID).balance
    finally:
        rt.close()


@pytest.fixture
def purse(tmp_path: Path) -> Path:
    path = tmp_path / "purse.card"
    sample_card(str(path)).close()
    return path


HOLDER = """
from tests.unit.cards import sample_card
import time
rt = sample_card({path!r})
for i in range({n}):
    assert rt.process(bytes.fromhex("803000000400000001")) == b"\\x90\\x00"
    if i == 0:
        print("holding", flush=True)
    time.sleep(0.01)
rt.close()
print("done", flush=True)
time.sleep(60)
"""


def start_holder(path: Path, n: int = 1000) -> subprocess.Popen[str]:
    proc = python_process(HOLDER.format(path=str(path), n=n))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read() if proc.stderr else ""
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


# -- two processes on one image ------------------------------------------------------


@needs_proc_locks
def test_second_process_is_refused_at_once_naming_the_holder(purse: Path) -> None:
    proc = start_holder(purse)
    try:
        t0 = time.monotonic()
        r = cardemu_process("send", "-q", "--card", str(purse), SELECT_PURSE, VERIFY, CREDIT_1)
        elapsed = time.monotonic() - t0
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith(f"Error: {purse} is in use by PID {proc.pid} (")
        assert r.stdout == ""  # it sent nothing
        # refused, not queued behind the holder (which credits for 10 s or more)
        assert elapsed < 60
        assert proc.poll() is None
    finally:
        stop(proc)
    # The holder's credits are all there (the refused process wrote nothing over them).
    assert balance(purse) >= 1


@needs_proc_locks
def test_in_process_open_is_refused_with_the_holders_pid(purse: Path) -> None:
    proc = start_holder(purse)
    try:
        with pytest.raises(ImageInUse) as e:
            CardRuntime(purse)
        assert e.value.pid == proc.pid
        # a script given with -c is named, not quoted (it would take many lines)
        assert e.value.command == f"{os.path.basename(sys.executable)} -c …"
        assert str(e.value) == f"{purse} is in use by PID {proc.pid} ({e.value.command})"
    finally:
        stop(proc)


LOOP = """
import time
from card.errors import ImageInUse
from tests.unit.cards import sample_card
done = 0
while done < {n}:
    try:
        rt = sample_card({path!r})
    except ImageInUse:
        time.sleep(0.001)
        continue
    assert rt.process(bytes.fromhex("803000000400000001")) == b"\\x90\\x00"
    rt.close()
    done += 1
print(done, flush=True)
"""


def test_two_processes_taking_turns_lose_nothing(purse: Path) -> None:
    # The measured bug: two processes each crediting 200 ended at 279. Each process
    # here opens the image, credits 1 and closes it, retrying when refused.
    n = 60
    procs = [python_process(LOOP.format(path=str(purse), n=n)) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.strip() == str(n)
    assert balance(purse) == 2 * n


def test_a_stale_process_cannot_resurrect_a_deleted_applet(purse: Path) -> None:
    # The other measured bug: a process that opened the image before an applet was
    # deleted wrote the applet back. Now it cannot open the image at all meanwhile.
    rt = CardRuntime(purse)
    proc = python_process(
        f"""
        from card.runtime import CardRuntime
        from card.errors import ImageInUse
        try:
            CardRuntime({str(purse)!r})
        except ImageInUse as e:
            print("refused", e.pid, flush=True)
        """
    )
    out, err = proc.communicate(timeout=120)
    assert out.split()[0] == "refused", err
    rt.delete(PURSE_AID)
    rt.close()
    rt = CardRuntime(purse)
    assert bytes(PURSE_AID) not in [bytes(a) for a, *_ in rt.applets()]
    rt.close()


def test_a_killed_holder_leaves_no_stale_lock(purse: Path) -> None:
    proc = start_holder(purse)
    before = sorted(os.listdir(purse.parent))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # Looking at what it left changes neither the image nor its WAL (only SQLite's
    # index of the WAL, `-shm`, is rebuilt, as by any reader).
    assert (purse.parent / (purse.name + "-wal")).exists()
    data = [purse, purse.parent / (purse.name + "-wal")]
    prints = [fingerprint(f) for f in data]
    code, out, _ = cardemu("card", "info", str(purse))
    assert code == 0 and "memory" in out
    assert [fingerprint(f) for f in data] == prints
    assert sorted(os.listdir(purse.parent)) == before
    rt = CardRuntime(purse)  # opens at once: the kernel dropped the dead holder's lock
    rt.power_on()
    credited = rt.applet(PURSE_AID).balance
    rt.close()
    assert credited >= 1
    # nothing of the lock was left beside the image (SQLite's WAL files aside)
    assert [f for f in before if not f.startswith(purse.name)] == []


@needs_proc_locks
def test_a_served_image_says_to_use_the_reader(purse: Path) -> None:
    # A port nobody listens on: the card keeps waiting for a vpcd that is not there,
    # and no other pcscd on this machine ever sees it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    serve = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "serve", str(purse), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert serve.stderr is not None
        assert "serving" in serve.stderr.readline()
        r = cardemu_process("send", "--card", str(purse), BALANCE)
        assert r.returncode == 1
        [line] = r.stderr.strip().splitlines()
        assert f"in use by PID {serve.pid} (" in line
        assert "serve" in line and "reach the card through it" in line
        code, _, err = cardemu("card", "info", str(purse))
        assert code == 1 and "reach the card through it" in err
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    assert cardemu("send", "-q", "--card", str(purse), SELECT_PURSE, BALANCE)[0] == 0


def test_served_reader_follows_the_slot() -> None:
    assert served_reader(["/usr/bin/cardemu", "serve", "my.card"]) == "Virtual PCD 00 00"
    assert served_reader(["python3", "-m", "host.cli", "serve", "--slot", "1"]) == (
        "Virtual PCD 00 01"
    )
    assert served_reader(["cardemu", "serve", "--port=35964", "x.card"]) == "Virtual PCD 00 01"
    assert served_reader(["cardemu", "send", "--card", "x.card"]) is None
    assert served_reader(["nginx", "serve"]) is None
    e = ImageInUse("x.card", 42, ("/venv/bin/python", "/venv/bin/cardemu", "serve", "x.card"))
    assert image_error(e) == (
        "x.card is in use by PID 42 (cardemu serve x.card): it is served in reader"
        " 'Virtual PCD 00 00', reach the card through it (cardemu send -r \"PCD 00 00\" …)"
    )
    assert str(ImageInUse("x.card")) == "x.card is in use by another process or another open of it"


# -- in one process ------------------------------------------------------------------------


def test_same_process_second_open_is_refused_until_the_first_closes(purse: Path) -> None:
    rt = CardRuntime(purse)
    with pytest.raises(ImageInUse) as e:
        CardRuntime(purse)
    if os.path.exists("/proc/locks"):
        assert e.value.pid == os.getpid()
    with pytest.raises(ImageInUse):
        CardRuntime(purse, readonly=True)  # inspecting takes the same lock
    rt.close()
    CardRuntime(purse).close()


def test_a_dropped_runtime_does_not_block(purse: Path) -> None:
    rt = sample_card(str(purse))
    tx(rt, "80300000040000000A")
    del rt  # never closed; a cycle keeps it alive until the collector runs
    rt = CardRuntime(purse)
    rt.close()


def test_a_refused_image_is_not_kept_locked(tmp_path: Path) -> None:
    from tests.unit.test_framework import _TxApplet

    path = tmp_path / "x.card"
    rt = CardRuntime(path)
    rt.install(_TxApplet, b"\xf0\x00\x00\x00\x01")
    rt.close()
    with pytest.raises(NvmError, match="not in the catalogue"):
        CardRuntime(path)
    lock = ImageLock.acquire(str(path))  # the failed open released it
    lock.release()


def test_holder_reads_the_kernel_lock_table(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        table = tmp_path / "locks"
        table.write_text(
            f"1: POSIX  ADVISORY  WRITE 7 {key} 0 EOF\n"
            f"2: FLOCK  ADVISORY  WRITE 999999999 00:00:1 0 EOF\n"
            f"3: FLOCK  ADVISORY  WRITE {os.getpid()} {key} 0 EOF\n"
            f"3: -> FLOCK  ADVISORY  WRITE 8 {key} 0 EOF\n"
        )
        pid, argv = holder(f, str(table))
        assert pid == os.getpid() and argv
        table.write_text("")
        assert holder(f, str(table)) == (None, ())
        assert holder(f, str(tmp_path / "absent")) == (None, ())


# -- what is and is not a card image -----------------------------------------------------


def test_a_missing_image_is_not_created_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "absent.card"
    kws: list[dict[str, Any]] = [{"create": False}, {"readonly": True}]
    for kw in kws:
        with pytest.raises(NvmError, match="no card image"):
            CardRuntime(path, **kw)
        assert not path.exists()
    assert cardemu("card", "info", str(path))[0] == 2
    # A missing input file is a usage error (2), however it is named.
    assert cardemu("send", "--card", str(path), BALANCE)[0] == 2
    assert cardemu("send", "-r", f"cardemu:{path}", BALANCE)[0] == 2
    assert sorted(os.listdir(tmp_path)) == []


def test_an_empty_file_is_never_taken_for_an_empty_card(tmp_path: Path) -> None:
    path = tmp_path / "empty.card"
    path.write_bytes(b"")
    kws: list[dict[str, Any]] = [{}, {"create": False}, {"readonly": True}]
    for kw in kws:
        with pytest.raises(NvmError, match=r"not a cardemu card image \(an empty file\)"):
            CardRuntime(path, **kw)
    for args in (("card", "info", str(path)), ("send", "--card", str(path), BALANCE)):
        code, out, err = cardemu(*args)
        assert code == 1
        assert err == f"Error: {path} is not a cardemu card image (an empty file)\n"
    assert path.stat().st_size == 0
    assert sorted(os.listdir(tmp_path)) == ["empty.card"]


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_a_foreign_database_is_left_unchanged(tmp_path: Path, journal: str) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA journal_mode={journal}")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    db.close()
    before = fingerprint(path)
    kws: list[dict[str, Any]] = [{}, {"readonly": True}]
    for kw in kws:
        with pytest.raises(NvmError, match="not a cardemu card image"):
            CardRuntime(path, **kw)
    code, _, err = cardemu("card", "info", str(path))
    assert (code, err) == (1, f"Error: {path} is not a cardemu card image\n")
    assert fingerprint(path) == before
    assert sorted(os.listdir(tmp_path)) == ["other.sqlite"]


def test_random_bytes_and_other_applications_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.card"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(NvmError, match=r"not a cardemu card image \(not an SQLite database\)"):
        CardRuntime(junk)
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("PRAGMA application_id=1234")
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    db.close()
    with pytest.raises(NvmError, match="application_id 000004D2"):
        CardRuntime(other)


def test_images_are_marked_and_older_unmarked_ones_still_open(tmp_path: Path) -> None:
    path = tmp_path / "new.card"
    create_image(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == IMAGE_APPLICATION_ID
        db.execute("PRAGMA application_id=0")  # as images made before the mark
    db.close()
    rt = sample_card(str(path))
    assert tx(rt, "80300000040000000A") == "9000"
    rt.close()
    assert balance(path) == 10
    with pytest.raises(FileExistsError):
        create_image(path)


def test_readers_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample_card("good.card").close()
    Path("empty.card").write_bytes(b"")
    before = {p: fingerprint(tmp_path / p) for p in os.listdir(tmp_path)}
    code, out, err = cardemu("readers")
    assert code == 0 and "cardemu:good.card" in out
    # A 0-byte *.card is no card: left out of the list, with a note (and left as it was).
    assert "cardemu:empty.card" not in out and "not card images, left out: empty.card" in err
    code, out, _ = cardemu("card", "info", "good.card")
    assert code == 0 and "F0434152" in out
    assert {p: fingerprint(tmp_path / p) for p in os.listdir(tmp_path)} == before


# -- card new: all or nothing ------------------------------------------------------------


def test_card_new_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "my.card"
    path.write_bytes(b"mine")
    code, _, err = cardemu("card", "new", str(path))
    assert (code, err) == (1, f"Error: {path} already exists\n")
    assert path.read_bytes() == b"mine"


def test_card_new_failing_midway_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import host.presets

    path = tmp_path / "my.card"
    calls = 0

    def failing_install(self: CardRuntime, *a: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        real_install(self, *a, **kw)

    real_install = CardRuntime.install
    monkeypatch.setattr(CardRuntime, "install", failing_install)
    with pytest.raises(OSError):
        host.presets.new_card("demo", path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []

    def failing_link(tmp: str, final: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("card.nvm._link_into_place", failing_link)
    with pytest.raises(OSError):
        new_card("demo", path)
    assert os.listdir(tmp_path) == []


NEW_CARD = """
from host.presets import new_card
print("go", flush=True)
new_card("euicc", {path!r}).close()
print("made", flush=True)
"""


def test_card_new_killed_at_any_moment_leaves_no_file_or_a_whole_card(tmp_path: Path) -> None:
    rng = random.Random(11)
    whole = made = 0
    span = None
    for i in range(8):
        path = tmp_path / f"c{i}.card"
        proc = python_process(NEW_CARD.format(path=str(path)))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "go"
        t0 = time.monotonic()
        if span is None:  # the first one runs to the end: how long building takes
            assert proc.stdout.readline().strip() == "made"
            span = time.monotonic() - t0
        else:
            time.sleep(rng.uniform(0, span * 1.2))
        proc.kill()
        proc.wait(timeout=30)
        if path.exists():
            made += 1
            rt = CardRuntime(path, readonly=True)
            # UICC, ECASD, ISD-R and the local-authentication applet
            assert len(rt.applets()) == 4, f"half a card after a kill at {i}"
            rt.close()
            whole += 1
    assert whole == made >= 1
    # A kill can leave the hidden temporary file (and its WAL), never a part of a card
    # under the card's name; a card's own WAL may stay beside it.
    left = [f for f in os.listdir(tmp_path) if not f.endswith((".card", ".card-wal", ".card-shm"))]
    assert all(f.startswith(".c") and ".tmp" in f for f in left), left
    # and the next build of a name removes what the dead ones left under it
    for i in range(8):
        path = tmp_path / f"c{i}.card"
        if path.exists():
            aside_path(path)  # what the next `card new` of it would begin with
        else:
            new_card("demo", path).close()
    left = [f for f in os.listdir(tmp_path) if not f.endswith((".card", ".card-wal", ".card-shm"))]
    assert left == []


# -- the SM-DP+ store ---------------------------------------------------------------------


def master(path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT * FROM sqlite_master").fetchall()
    finally:
        db.close()


def test_smdpp_orders_on_a_foreign_database_changes_nothing(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE customers (name TEXT)")
    db.close()
    schema = master(other)
    before = fingerprint(other)
    code, out, err = cardemu("smdpp", "orders", "--db", str(other))
    assert (code, out) == (2, "")
    assert (
        err == f"Error: {other} is not an SM-DP+ store (no table orders, sessions, notifications)\n"
    )
    code, _, err = cardemu(
        "smdpp", "order", "--db", str(other), "X-1", "--iccid", "8988211000000000024",
        "--imsi", "001010000000002", "--k", "00" * 16, "--xor",
    )  # fmt: skip
    assert code == 2 and "not an SM-DP+ store" in err
    assert fingerprint(other) == before
    assert master(other) == schema
    assert sorted(os.listdir(tmp_path)) == ["other.sqlite"]


def test_smdpp_orders_creates_and_changes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    code, _, err = cardemu("smdpp", "orders", "--db", str(missing))
    assert code == 2 and err == f"Error: {missing}: no such file (expected an SM-DP+ store)\n"
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    code, _, err = cardemu("smdpp", "orders", "--db", str(empty))
    assert code == 2 and "not an SM-DP+ store (an empty file)" in err
    assert empty.stat().st_size == 0
    store = tmp_path / "s.sqlite"
    code, out, _ = cardemu(
        "smdpp", "order", "--db", str(store), "X-1", "--iccid", "8988211000000000024",
        "--imsi", "001010000000002", "--k", "00" * 16, "--xor",
    )  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(tmp_path)) == ["empty.sqlite", "s.sqlite"]
    before = fingerprint(store)
    code, out, _ = cardemu("smdpp", "orders", "--db", str(store))
    assert code == 0 and out.startswith("X-1 ") and "released" in out
    assert fingerprint(store) == before
    assert sorted(os.listdir(tmp_path)) == ["empty.sqlite", "s.sqlite"]


def test_leftovers_of_dead_builders_are_swept_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    mine = tmp_path / f".x.card.{os.getpid()}.0123abcd.tmp"
    gone = [tmp_path / f".x.card.{dead_pid}.0123abcd.tmp{s}" for s in ("", "-wal", "-shm")]
    other = tmp_path / f".y.card.{dead_pid}.0123abcd.tmp"  # another image's
    odd = tmp_path / f".x.card.{dead_pid}.notatoken.tmp"  # not a name we make
    for f in (mine, other, odd, *gone):
        f.write_bytes(b"x")
    name = aside_path(tmp_path / "x.card")
    assert Path(name).parent == tmp_path and not Path(name).exists()
    assert sorted(os.listdir(tmp_path)) == sorted(f.name for f in (mine, other, odd))
