"""`cardemu doorlock issue|lock|phone`: the lock controller and the phone as real processes.

The examples of `cardemu doorlock --help` are run as written (in a scratch
directory), except the lock's port: 0 here (a free one, read from its stderr)
and the phone dials that, so parallel test runs never collide.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from host.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _examples() -> list[list[str]]:
    with CliRunner().isolation() as (out, _err, _):
        assert main(["doorlock", "--help"]) == 0
    text = out.getvalue().decode()
    lines = text.split("Examples:", 1)[1].split("\n\n", 1)[0].splitlines()
    # A lock runs in the background (`&`) while the phone dials it: here `_pair` does that.
    return [shlex.split(line.removesuffix("&"))[1:] for line in lines if line.strip()]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen(
        [sys.executable, "-m", "host.cli", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _set(args: list[str], option: str, value: str) -> list[str]:
    """`args` with `option`'s value replaced."""
    i = args.index(option)
    return [*args[: i + 1], value, *args[i + 2 :]]


def _pair(lock: list[str], phone: list[str], cwd: Path) -> tuple[tuple[int, str], tuple[int, str]]:
    """The lock on a free port, then the phone dialling it; (exit code, stdout) of each."""
    lock = _set(lock, "--listen", "0")
    lp = _start(lock, cwd)
    try:
        assert lp.stderr is not None
        line = lp.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line + lp.stderr.read()
        phone = _set(phone, "--connect", m[1])
        pp = _start(phone, cwd)
        p_out, p_err = pp.communicate(timeout=120)
        l_out, l_err = lp.communicate(timeout=120)
    finally:
        lp.kill()
    return (lp.returncode, l_out + l_err), (pp.returncode, p_out + p_err)


def test_the_help_examples_unlock_as_separate_processes(tmp_path: Path) -> None:
    issue, lock, phone, lock_demo, phone_demo = _examples()
    assert issue[:2] == ["doorlock", "issue"]
    # The issuer's images, by the example (in-process: it is not one of the two programs).
    with CliRunner().isolation() as (out, _err, _):
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            assert main(issue) == 0
        finally:
            os.chdir(cwd)
    assert sorted(p.name for p in (tmp_path / "door").iterdir()) == [
        "ams.sqlite", "lock-sim.img", "phone-1-sim.img", "phone-2-sim.img",
    ]  # fmt: skip
    (lcode, lout), (pcode, pout) = _pair(lock, phone, tmp_path)
    assert lcode == 0 and lout.splitlines()[0] == "unlocked", lout
    assert pcode == 0 and pout.splitlines()[0] == "unlocked; the lock proved itself", pout
    # The demo door built in memory by each program: method 02 (certificates), JSON.
    (lcode, lout), (pcode, pout) = _pair(lock_demo, phone_demo, tmp_path)
    assert lcode == 0 and pcode == 0, (lout, pout)
    assert json.loads(pout.splitlines()[0]) == {
        "unlocked": True, "reason": "", "lock_authentic": True,
    }  # fmt: skip


def test_a_phone_without_the_applet_is_refused_without_a_server(tmp_path: Path) -> None:
    """No server to fetch the applet from: the lock says why, both exit 1."""
    with CliRunner().isolation():
        door = str(tmp_path / "door")
        assert main(["doorlock", "issue", door, "--without-applet", "phone-2"]) == 0
        # An image is never replaced.
        assert main(["doorlock", "issue", door]) == 1
    lock = ["doorlock", "lock", "--listen", "0", "--card", f"{door}/lock-sim.img", "--json"]
    phone = ["doorlock", "phone", "--connect", "0", "--card", f"{door}/phone-2-sim.img",
             "--phone", "phone-2"]  # fmt: skip
    (lcode, lout), (pcode, pout) = _pair(lock, phone, tmp_path)
    result = json.loads(lout.splitlines()[0])
    assert lcode == 1 and not result["unlocked"], lout
    assert "no application management server" in result["error"]
    assert pcode == 1 and pout.startswith("refused: no verdict came"), pout


def test_the_sim_is_named_once() -> None:
    with CliRunner().isolation() as (_out, err, _):
        assert main(["doorlock", "lock", "--listen", "0"]) == 2
        assert main(["doorlock", "phone", "--connect", "1", "--preset", "demo",
                     "--card", __file__]) == 2  # fmt: skip
    assert "give one of --card IMAGE or --preset demo" in err.getvalue().decode()


def test_a_missing_applet_comes_over_the_air_between_four_processes(tmp_path: Path) -> None:
    """The SMS centre, the server (on the issuer's store), the lock and phone-2 (no applet):
    the lock's chip asks by SMS, the server installs by SMS-PP, the phone then unlocks."""
    from host.systems.servers import ServerProcess

    with CliRunner().isolation():
        door = str(tmp_path / "door")
        assert main(["doorlock", "issue", door, "--without-applet", "phone-2"]) == 0
    with ServerProcess("smsc", ["--db", str(tmp_path / "smsc.sqlite")]) as smsc:
        args = ["--db", f"{door}/ams.sqlite", "--smsc", smsc.url, "--no-tls"]
        with ServerProcess("doorlock-ams", args):
            lock = ["doorlock", "lock", "--listen", "0", "--card", f"{door}/lock-sim.img",
                    "--smsc", smsc.url, "--json"]  # fmt: skip
            phone = ["doorlock", "phone", "--connect", "0", "--card", f"{door}/phone-2-sim.img",
                     "--phone", "phone-2", "--smsc", smsc.url, "--json"]  # fmt: skip
            (lcode, lout), (pcode, pout) = _pair(lock, phone, tmp_path)
    result = json.loads(lout.splitlines()[0])
    assert lcode == 0 and result["unlocked"] and result["lock_authentic"], lout
    assert result["download"]["outcome"] == "requested"
    assert pcode == 0 and json.loads(pout.splitlines()[0])["unlocked"], pout
    # The server logged the install it made at the lock's request.
    import sqlite3

    with sqlite3.connect(f"{door}/ams.sqlite") as conn:
        rows = list(conn.execute("SELECT trigger, device_id, path, outcome FROM downloads"))
    assert ("lock-request", "phone-2", "ota-sms-pp", "installed") in rows
