"""A Ctrl-C dropped while a long command starts up still stops it (`stop_if_interrupted`).

`run_main`'s SIGINT handler raises KeyboardInterrupt wherever the signal lands; in a
gc or weakref callback (imports run plenty) Python prints "Exception ignored" and
drops it. The handler records the signal, and `cardemu bench`, `cardemu bio eval` and
`cardemu load` look at the record once their imports are done: the Ctrl-C ends them
("Interrupted.", exit 130) instead of a benchmark table, a matcher evaluation or a
Locust master waiting two minutes for its workers. Each test delivers the SIGINT
inside a weakref callback during the command's own start-up, as CI saw it happen to
a server (test_exit_codes.py).
"""

from __future__ import annotations

import importlib.abc
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from host.commands import common
from tests.unit.test_exit_codes import cardemu

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def drop_a_ctrl_c() -> None:
    """Deliver SIGINT inside a weakref callback, where its KeyboardInterrupt is dropped."""

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _r: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
    del thing
    assert ref() is None


class CtrlCWhileImporting(importlib.abc.MetaPathFinder):
    """Drops a Ctrl-C when `name` is imported (and then lets the import go on)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        if fullname == self.name:
            drop_a_ctrl_c()
        return None


@pytest.fixture
def ctrl_c_while_importing(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def arm(name: str) -> None:
        parent, _, child = name.rpartition(".")
        if hasattr(sys.modules[parent], child):  # restored afterwards, with sys.modules
            monkeypatch.setattr(sys.modules[parent], child, getattr(sys.modules[parent], child))
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.setattr(sys, "meta_path", [CtrlCWhileImporting(name), *sys.meta_path])

    return arm


def test_the_helper_raises_once_for_a_recorded_ctrl_c() -> None:
    common._swallowed.clear()
    common.stop_if_interrupted()  # nothing recorded: nothing happens
    common._swallowed.append(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        common.stop_if_interrupted()
    common.stop_if_interrupted()  # raised once


def test_bench_stops(ctrl_c_while_importing: Callable[[str], None]) -> None:
    ctrl_c_while_importing("host.bench")  # what `bench --inprocess` imports first
    t0 = time.monotonic()
    code, out, err = cardemu("bench", "--inprocess", "--seconds", "30")
    assert code == 130, err
    assert time.monotonic() - t0 < 20  # not the 30 s run
    assert out == "" and err.strip().endswith("Interrupted.")


def test_bio_eval_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from host.commands import bio

    real = bio._check_png_dir

    def check_png_dir(png: str) -> None:  # a start-up step of the command, a Ctrl-C in it
        drop_a_ctrl_c()
        real(png)

    monkeypatch.setattr(bio, "_check_png_dir", check_png_dir)
    t0 = time.monotonic()
    code, out, err = cardemu("bio", "eval", "--fingers", "200", "--png", str(tmp_path / "d.png"))
    assert code == 130, err
    assert time.monotonic() - t0 < 20
    assert out == "" and err.strip().endswith("Interrupted.")
    assert not (tmp_path / "d.png").exists()


_LOAD = """
import sys
from tests.unit.test_cli_interrupt_at_start_up import CtrlCWhileImporting
sys.meta_path.insert(0, CtrlCWhileImporting("host.load.locust_run"))
from host.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_load_master_stops(tmp_path: Path) -> None:
    """In a process of its own: Locust monkey-patches the standard library."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    args = ["load", "--smdp", "127.0.0.1:9", "--master", "--expect-workers", "1", "-n", "1"]
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=100,  # the master waits 120 s for its worker
    )
    assert proc.returncode == 130, proc.stderr
    assert time.monotonic() - t0 < 60
    assert "waiting for" not in proc.stderr  # never started the master
    assert proc.stderr.strip().endswith("Interrupted.")


def test_run_main_forgets_its_commands_ctrl_c() -> None:
    """A Ctrl-C recorded for one command never stops a later one run without
    `run_main` (tests invoke commands through click's runner)."""
    import click

    @click.command()
    def short() -> None:
        drop_a_ctrl_c()  # recorded, dropped, and this command never looks
        assert common._swallowed == [signal.SIGINT]

    assert common.run_main(short, []) == 0
    assert common._swallowed == []
    common.stop_if_interrupted()  # nothing left to raise
