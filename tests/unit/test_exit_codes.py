"""One exit-code table for every command, Ctrl-C as 130, and `--json` errors.

The table (README, "Exit codes"; `host.commands.common`): 0 ok, 1 operation
failed, 2 usage error (bad arguments, missing input file, malformed script), 3
an unexpected status word, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from host.cli import main

ROOT = Path(__file__).resolve().parents[2]
K = "000102030405060708090A0B0C0D0E0F"


def cardemu(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the CLI's real entry point; returns (exit code, stdout, stderr)."""
    with CliRunner().isolation(input=stdin) as (out, err, _):
        code = main(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


# -- missing input files: 2 everywhere ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("card", "info", "{missing}"),
        ("fuzz", "--replay", "{missing}"),
        ("pki", "show", "{missing}"),
        ("send", "--card", "{missing}", "00A40400"),
        ("run", "{missing}"),
        ("replay", "{missing}"),
        ("run", "--card", "{missing}", "-"),
        ("smdpp", "orders", "--db", "{missing}"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_missing_input_file_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = str(tmp_path / "missing")
    code, _, err = cardemu(*(a.format(missing=missing) for a in args), stdin="00A40000")
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("Error: ")


# -- smdpp order: a bad IMSI and a bad ICCID are the same usage error -----------------


@pytest.mark.parametrize(
    "iccid, imsi, message",
    [
        ("12", "001010000000002", "ICCID"),
        ("8988211000000000024", "00x", "IMSI"),
        ("8988211000000000024", "0010100000000021234", "IMSI"),  # 19 digits: over 15
    ],
)
def test_smdpp_order_bad_identifiers_exit_2(
    tmp_path: Path, iccid: str, imsi: str, message: str
) -> None:
    db = str(tmp_path / "o.sqlite")
    code, _, err = cardemu(
        "smdpp", "order", "M1", "--db", db, "--iccid", iccid, "--imsi", imsi, "--xor", "--k", K
    )
    assert code == 2, err
    assert message in err
    # Nothing was ordered: the store was not even created.
    assert not (tmp_path / "o.sqlite").exists()


def test_smdpp_order_good_identifiers_still_work(tmp_path: Path) -> None:
    db = str(tmp_path / "o.sqlite")
    code, out, err = cardemu(
        "smdpp", "order", "M1", "--db", db, "--iccid", "8988211000000000024",
        "--imsi", "001010000000002", "--xor", "--k", K,
    )  # fmt: skip
    assert code == 0, err
    assert "ICCID 8988211000000000024" in out


# -- scripts --------------------------------------------------------------------------


def test_non_utf8_script_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "s.apdu"
    script.write_bytes(b"\xff\xfe00A40400 00\n")
    code, _, err = cardemu("run", str(script))
    assert code == 2
    assert "cannot read script" in err


def test_one_byte_expectation_is_a_script_error_not_a_mismatch(tmp_path: Path) -> None:
    script = tmp_path / "s.apdu"
    script.write_text("00A4040000 =90\n")
    code, _, err = cardemu("run", "-q", str(script))
    assert code == 2
    assert "shorter than a status word" in err
    # A real mismatch stays 3.
    script.write_text("00A4040000 =6A82\n")
    assert cardemu("run", "-q", str(script))[0] == 3


# -- --json: an error object on stdout ------------------------------------------------


def _json_error(out: str) -> dict[str, object]:
    doc = json.loads(out)
    assert set(doc) == {"error"}
    err = doc["error"]
    assert isinstance(err, dict) and isinstance(err["message"], str) and err["message"]
    return err


@pytest.mark.parametrize(
    "args, exit_code",
    [
        (("gp", "list", "--card", "{missing}", "--json"), 2),
        (("gp", "list", "--preset", "demo", "--key", K, "--json"), 3),
        (("usim", "read", "--card", "{missing}", "--json"), 2),
        (("usim", "auth", "--json", "--rand", "00"), 2),
        (("lpa", "list", "--card", "{missing}", "--json"), 2),
        (("lpa", "enable", "--json", "8988211000000000024"), 1),  # no such profile
        (("send", "--json", "--card", "{missing}", "00A40400"), 2),
        (("card", "info", "--json", "{missing}"), 2),
        (("pki", "show", "--json", "{missing}"), 2),
        (("fuzz", "--json", "--replay", "{missing}"), 2),
        (("readers", "--json", "--bogus"), 2),
        (("smdpp", "orders", "--db", "{missing}", "--json"), 2),
    ],
    ids=lambda a: " ".join(a[:2]) if isinstance(a, tuple) else str(a),
)
def test_json_error_object_on_stdout(tmp_path: Path, args: tuple[str, ...], exit_code: int) -> None:
    missing = str(tmp_path / "missing")
    code, out, err = cardemu(*(a.format(missing=missing) for a in args))
    assert code == exit_code, err
    error = _json_error(out)
    assert error["exit_code"] == exit_code
    assert f"Error: {error['message']}" in err


def test_json_result_that_says_the_error_gets_no_second_object(tmp_path: Path) -> None:
    script = tmp_path / "s.apdu"
    script.write_text("00A4040000 =6A82\n")
    code, out, _ = cardemu("run", "--json", str(script))
    assert code == 3
    doc = json.loads(out)  # one document: the run's result, which says "mismatch"
    assert doc["result"] == "mismatch"


# -- Ctrl-C: 130, with what the command has -------------------------------------------


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "host.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def _interrupt(proc: subprocess.Popen[str], after: float) -> tuple[str, str]:
    time.sleep(after)
    assert proc.poll() is None, "the command ended before Ctrl-C"
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _await_line(proc: subprocess.Popen[str], sign: str, timeout: float = 120) -> str:
    """The first stderr line holding `sign` (start-up over, however loaded the machine)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if sign in line:
            return line
    proc.kill()
    proc.wait()
    pytest.fail(f"no {sign!r} line in {timeout:.0f} s (exit {proc.returncode}): {seen}")


def _interrupt_fuzz(proc: subprocess.Popen[str]) -> tuple[str, str, float]:
    """Ctrl-C once the campaign runs; (stdout, stderr, seconds from Ctrl-C to exit)."""
    first = _await_line(proc, "campaign running")
    time.sleep(1)  # a few episodes in
    t0 = time.monotonic()
    out, err = _interrupt(proc, 0)
    return out, first + err, time.monotonic() - t0


def test_ctrl_c_stops_fuzz_with_a_partial_report(tmp_path: Path) -> None:
    findings = tmp_path / "found"
    proc = _start(
        "fuzz", "--preset", "demo", "--time", "60", "--findings", str(findings), cwd=tmp_path
    )
    out, err, seconds = _interrupt_fuzz(proc)
    assert proc.returncode == 130, err
    assert seconds < 30  # stopped, did not run its 60 s
    assert "cardemu fuzz: card demo" in out and "(interrupted: partial figures)" in out
    assert f"findings so far are in {findings}/" in out
    assert "Interrupted" in err


def test_ctrl_c_stops_stateful_fuzz(tmp_path: Path) -> None:
    # Regression: hypothesis' gc callback could swallow the KeyboardInterrupt.
    proc = _start(
        "fuzz", "--preset", "demo", "--engine", "stateful", "--budget", "1000000", cwd=tmp_path
    )
    _, err, _ = _interrupt_fuzz(proc)
    assert proc.returncode == 130, err
    assert "findings so far are in" in err


def test_ctrl_c_stops_smdpp_serve(tmp_path: Path) -> None:
    proc = _start("smdpp", "serve", "--port", "0", "--no-tls", cwd=tmp_path)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the server is up once it says where
    assert "serving ES9+" in first
    _, err = _interrupt(proc, 0.5)
    assert proc.returncode == 130, err
    assert "SM-DP+: stopped" in err


def test_ctrl_c_stops_bench(tmp_path: Path) -> None:
    proc = _start("bench", "--seconds", "5", cwd=tmp_path)
    _, err = _interrupt(proc, 4)
    assert proc.returncode == 130, err
    assert err.strip().endswith("Interrupted.")


class _SignalInCallback:
    """A banner whose iteration delivers SIGINT inside a weakref callback.

    Python drops a KeyboardInterrupt raised in such a callback ("Exception ignored
    in ..."); a server that relied on it would then run for ever. This is what an
    import lock's callback did to `cardemu server ekyc-mgmt` in CI.
    """

    def __iter__(self):  # type: ignore[no-untyped-def]
        import weakref

        class Thing:
            pass

        thing = Thing()
        # the handler runs while the callback still runs (the sleep gives it the chance)
        ref = weakref.ref(
            thing, lambda _ref: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05))
        )
        del thing
        assert ref() is None
        yield "test: serving (Ctrl-C stops)"


def test_ctrl_c_during_a_callback_at_start_up_still_stops_the_server() -> None:
    import threading

    from starlette.applications import Starlette

    from host.commands.common import Interrupted, serve_until_interrupted
    from host.servers.web import RoleServer

    srv = RoleServer(Starlette(), name="test")
    watchdog = threading.Timer(20, srv.request_stop)  # the old behaviour: never stops
    watchdog.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            serve_until_interrupted("test", srv, _SignalInCallback())  # type: ignore[arg-type]
    finally:
        watchdog.cancel()
    assert time.monotonic() - t0 < 15
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.parametrize(
    "args",
    [
        ("server", "smsc", "--port", "0"),
        ("server", "ekyc-mgmt", "--carrier", "carrier2", "--port", "0", "--db", "m.sqlite"),
        ("server", "smdpp", "--port", "0", "--workers", "2", "--db", "w.sqlite"),
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_ctrl_c_the_moment_a_server_says_it_serves_stops_it(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    proc = _start(*args, cwd=tmp_path)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "Ctrl-C stops" in first, first
    _, err = _interrupt(proc, 0)  # before uvicorn has its own handlers, most likely
    assert proc.returncode == 130, err
    assert "stopped" in err
    assert "Exception ignored" not in err


def test_sigterm_stops_a_server_with_exit_0(tmp_path: Path) -> None:
    proc = _start("server", "smsc", "--port", "0", cwd=tmp_path)
    assert proc.stderr is not None
    assert "Ctrl-C stops" in proc.stderr.readline()
    time.sleep(0.5)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "smsc: stopped" in err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
def test_ctrl_c_swallowed_before_the_server_came_up_still_stops_it() -> None:
    import threading
    import weakref

    from starlette.applications import Starlette

    from host.commands import common
    from host.servers.web import RoleServer

    class Thing:
        pass

    previous = signal.signal(signal.SIGINT, common._interrupt)  # as run_main installs it
    common._swallowed.clear()
    try:
        thing = Thing()
        ref = weakref.ref(thing, lambda _r: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
        del thing  # the KeyboardInterrupt is raised in the callback, and dropped
        assert ref() is None and common._swallowed == [signal.SIGINT]
        srv = RoleServer(Starlette(), name="test")
        watchdog = threading.Timer(20, srv.request_stop)
        watchdog.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(common.Interrupted):
                common.serve_until_interrupted("test", srv, ["test: serving (Ctrl-C stops)"])
        finally:
            watchdog.cancel()
        assert time.monotonic() - t0 < 15
    finally:
        signal.signal(signal.SIGINT, previous)
        common._swallowed.clear()


def test_run_main_restores_the_sigint_handler() -> None:
    code, _, _ = cardemu("--version")
    assert code == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_stops_the_door_lock_controller(tmp_path: Path) -> None:
    proc = _start("doorlock", "lock", "--listen", "0", "--preset", "demo", cwd=tmp_path)
    assert proc.stderr is not None
    assert "lock: listening on" in proc.stderr.readline()
    _, err = _interrupt(proc, 0.3)
    assert proc.returncode == 130, err
    assert "lock: stopped (0 unlocked)" in err
