"""`cardemu load`: emulated eUICCs as Locust users against an SM-DP+.

The SM-DP+ runs here, in the test process (a `RoleServer` thread); `cardemu
load` runs as a subprocess, because importing Locust monkey-patches the
standard library for gevent, which must never happen to the test process (or
to `import host`: checked below).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from host.commands.load import parse_span
from host.load.device import LoadDevice
from host.load.orders import add_load_orders, check_template, load_order, matching_id
from host.load.summary import code_meaning, format_summary
from host.pki import default_pki
from host.servers.smdpp.server import OrderState, SmdpPlus

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# Looked up, never imported here: importing Locust would monkey-patch this test process.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="Locust is not installed (the load extra)"
)


@dataclass
class Dp:
    smdp: SmdpPlus
    address: str


@pytest.fixture()
def dp() -> Iterator[Dp]:
    smdp = SmdpPlus(default_pki(), address="localhost")
    add_load_orders(smdp, 8)
    with smdp.serve() as server:
        smdp.address = f"localhost:{server.port}"
        yield Dp(smdp, smdp.address)


def cardemu_load(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host.cli", "load", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=timeout,
    )


# -- pieces --------------------------------------------------------------------------------


def test_importing_cardemu_patches_nothing() -> None:
    """Locust (gevent's monkey-patching) comes in with the load command's run only."""
    code = (
        "import socket, sys, threading\n"
        "orig = socket.socket, threading.Thread\n"
        "import host.cli, host.commands.load, host.load.device, host.load.orders\n"
        "import host.load.summary\n"
        "from host.cli import main\n"
        "assert 'gevent' not in sys.modules and 'locust' not in sys.modules, 'imported'\n"
        "assert (socket.socket, threading.Thread) == orig, 'patched'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, check=True, timeout=60)


def _python(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (Locust patches the process with gevent); it must
    exit 0 (its stderr's tail is the message otherwise)."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_a_worker_draws_only_under_an_index_its_master_gave() -> None:
    """Worker i of W draws i, i+W, ...; an index outside 0..W-1 is refused before any draw.

    Locust's `WorkerRunner.worker_index` is -1 until the master's "ack" sets it (a master
    before Locust 2.10.3 sends none): worker -1 of 2 would draw first-1, first+1, ...,
    worker 1's numbers, and every second download would be refused (8.2.6/3.8).
    """
    code = (
        "from locust.runners import WorkerRunner\n"
        "from host.load import locust_run as lr\n"
        "env = lr._environment(lr.LoadSettings(address='x', template='L-{n}', first=10),\n"
        "    expect_workers=2)\n"
        "for index in (-1, 0, 1, 2):\n"
        "    runner = WorkerRunner.__new__(WorkerRunner)\n"  # its index, no connection
        "    runner.worker_index = index\n"
        "    env.runner = runner\n"
        "    lr.RUN.reset()\n"
        "    lr.RUN.pki = object()\n"  # no PKI needed: nothing is downloaded
        "    try:\n"
        "        lr.RUN.configure(env)\n"
        "    except RuntimeError as e:\n"
        "        print(index, 'refused' if 'would repeat' in str(e) else e)\n"
        "    else:\n"
        "        print(index, [lr.RUN.next_number() for _ in range(3)])\n"
    )
    out = _python(code, timeout=60)
    assert out.stdout.splitlines() == [
        "-1 refused",
        "0 [10, 12, 14]",
        "1 [11, 13, 15]",
        "2 refused",
    ]


_MASTER_AND_WORKER = (
    "import gevent\n"
    "from locust import User, task\n"
    "from locust.env import Environment\n"
    "from host.load import locust_run as lr\n"
    "class U(User):\n"
    "    @task\n"
    "    def t(self): pass\n"
    "def pair(worker_env=None):\n"
    "    master = Environment(user_classes=[U]).create_master_runner('127.0.0.1', 0)\n"
    "    port = master.server.port\n"
    "    if worker_env is None:\n"
    "        worker = Environment(user_classes=[U]).create_worker_runner('127.0.0.1', port)\n"
    "    else:\n"
    "        worker = lr.worker_runner(worker_env, '127.0.0.1', port)\n"
    "    for _ in range(100):\n"
    "        if master.clients.ready: break\n"
    "        gevent.sleep(0.05)\n"
    "    assert master.clients.ready, 'the worker never connected'\n"
    "    return master, worker\n"
)


def test_a_busy_worker_is_not_called_missing() -> None:
    """A worker busy for 6 s (no heartbeat) is still the master's: Locust's own 3 beats
    would call it missing, and with every worker missing the master stops the run
    (under load a `-n 8` run ended after 4 downloads). The control: with Locust's 3,
    the same silence makes it missing (Locust still reads the constant we set)."""
    code = _MASTER_AND_WORKER + (
        "import sys\n"
        "for liveness in (3, lr.WORKER_LIVENESS):\n"
        "    lr.tolerate_busy_workers(liveness)\n"
        "    master, worker = pair()\n"
        "    send = worker.client.send\n"  # busy: its heartbeats never leave
        "    worker.client.send = lambda msg: None if msg.type == 'heartbeat' else send(msg)\n"
        "    gevent.sleep(6)\n"
        "    print(liveness, master.clients[worker.client_id].state)\n"
        "    worker.client.send = send\n"
        "    worker.quit(); master.quit()\n"
    )
    out = _python(code, timeout=90)
    assert out.stdout.split() == ["3", "missing", "30", "ready"]


def test_a_stopped_worker_says_done() -> None:
    """A worker stopped by Locust's own "stop" (its master's answer to every worker
    missing) says done even with no user started: else the master waits for it."""
    code = _MASTER_AND_WORKER + (
        "from locust.rpc import Message\n"
        "lr.RUN.reset()\n"
        "master, worker = pair(lr._environment(None))\n"
        "done = []\n"
        "master.register_message(lr.DONE_MESSAGE, lambda environment, msg, **_: done.append(msg))\n"
        "master.server.send_to_client(Message('stop', None, worker.client_id))\n"
        "for _ in range(100):\n"
        "    if done: break\n"
        "    gevent.sleep(0.05)\n"
        "assert [m.node_id for m in done] == [worker.client_id], done\n"
        "worker.quit(); master.quit()\n"
    )
    _python(code, timeout=60)


def test_send_stats_now_reaches_the_master() -> None:
    """A worker's statistics flushed by `send_stats_now` arrive at the master as a
    `worker_report` (Locust's master and worker on loopback, in a child process)."""
    code = (
        "import gevent\n"
        "from locust import User, task\n"
        "from locust.env import Environment\n"
        "from host.load.locust_run import send_stats_now\n"
        "class U(User):\n"
        "    @task\n"
        "    def t(self): pass\n"
        "master_env, worker_env = Environment(user_classes=[U]), Environment(user_classes=[U])\n"
        "master = master_env.create_master_runner('127.0.0.1', 0)\n"
        "port = master.server.port\n"
        "worker = worker_env.create_worker_runner('127.0.0.1', port)\n"
        "for _ in range(100):\n"
        "    if master.clients.ready: break\n"
        "    gevent.sleep(0.05)\n"
        "assert master.clients.ready, 'the worker never connected'\n"
        "got = []\n"
        "master_env.events.worker_report.add_listener(\n"
        "    lambda client_id, data: got.append((client_id, data)))\n"
        "for _ in range(100):\n"  # the worker's first periodic report: the next is 3 s away
        "    if got: break\n"
        "    gevent.sleep(0.05)\n"
        "got.clear()\n"
        "worker_env.events.request.fire(request_type='LPA', name='download', response_time=5,\n"
        "    response_length=0, exception=None, context={})\n"
        "send_stats_now(worker)\n"
        "for _ in range(20):\n"
        "    if got: break\n"
        "    gevent.sleep(0.05)\n"
        "assert got, 'no worker_report at the master: Locust changed its stats message?'\n"
        "assert got[0][0] == worker.client_id\n"
        "assert master_env.stats.get('download', 'LPA').num_requests == 1, 'stats not merged'\n"
        "worker.quit(); master.quit()\n"
    )
    _python(code, timeout=60)


def test_run_master_restores_heartbeat_liveness() -> None:
    """`run_master` sets Locust's process-wide `HEARTBEAT_LIVENESS` for its run only: back
    to what it was after a master that timed out waiting and after one that ran (one
    in-process worker, one refused download against a closed port)."""
    code = (
        "import socket, gevent\n"
        "from locust import runners\n"
        "from host.load import locust_run as lr\n"
        "def free():\n"
        "    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close()\n"
        "    return p\n"
        "before = runners.HEARTBEAT_LIVENESS\n"
        "settings = lr.LoadSettings('localhost:1', 'X-{n}', downloads=1, tls=False)\n"
        "kw = dict(users=1, spawn_rate=1, run_time=None, expect_workers=1, liveness=before + 4)\n"
        "try:\n"
        "    lr.run_master(settings, bind_port=free(), expect_timeout=0.3, **kw)\n"
        "except TimeoutError:\n"
        "    print(runners.HEARTBEAT_LIVENESS == before)\n"
        "port = free()\n"
        "def worker():\n"
        "    gevent.sleep(0.5)\n"
        "    lr.worker_runner(lr._environment(None), '127.0.0.1', port)\n"
        "gevent.spawn(worker)\n"
        "s = lr.run_master(settings, bind_port=port, expect_timeout=30, **kw)\n"
        "print(runners.HEARTBEAT_LIVENESS == before, s['missingWorkers'])\n"
    )
    out = _python(code, timeout=60)
    assert out.stdout.split() == ["True", "True", "[]"]


def test_a_master_frees_its_port_when_it_ends() -> None:
    """Locust's `MasterRunner.quit()` leaves its ZeroMQ socket bound: a second master on the
    same port in the same process failed ("Address already in use") after the first timed
    out waiting for its worker. Now: the first times out, a second on the same port runs
    with an in-process worker (one refused download against a closed port), and a third
    binds it again after that run (and times out: the worker has quit)."""
    code = (
        "import socket, gevent\n"
        "from host.load import locust_run as lr\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "settings = lr.LoadSettings('localhost:1', 'X-{n}', downloads=1, tls=False)\n"
        "kw = dict(users=1, spawn_rate=1, run_time=None, expect_workers=1, bind_port=port)\n"
        "def timed_out():\n"
        "    try:\n"
        "        lr.run_master(settings, expect_timeout=0.3, **kw)\n"
        "    except TimeoutError:\n"
        "        return 'timed-out'\n"
        "    return 'ran'\n"
        "print(timed_out())\n"
        "workers = []\n"
        "def worker():\n"
        "    gevent.sleep(0.5)\n"
        "    workers.append(lr.worker_runner(lr._environment(None), '127.0.0.1', port))\n"
        "gevent.spawn(worker)\n"
        "s = lr.run_master(settings, expect_timeout=60, **kw)\n"
        "print(s['downloads']['failed'], s['missingWorkers'])\n"
        "workers[0].client.close(linger=0)\n"
        "print(timed_out())\n"
    )
    out = _python(code, timeout=120)
    assert out.stdout.split() == ["timed-out", "1", "[]", "timed-out"], out.stderr[-2000:]


def test_a_master_that_times_out_frees_its_web_ui_port() -> None:
    """Regression: a master with a web UI that timed out waiting for its workers left the
    UI serving (it was stopped only after a run's linger): the next master on the same
    `web_port` could not bind it ("Address already in use", only logged). Now the UI's
    port is closed once `run_master` raises, and a retry binds it again."""
    code = (
        "import socket, gevent\n"
        "from host.load import locust_run as lr\n"
        "def free():\n"
        "    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close()\n"
        "    return p\n"
        "port, web = free(), free()\n"
        "settings = lr.LoadSettings('localhost:1', 'X-{n}', downloads=1, tls=False)\n"
        "kw = dict(users=1, spawn_rate=1, run_time=None, expect_workers=1, bind_port=port,\n"
        "          web_port=web, expect_timeout=0.3)\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        lr.run_master(settings, **kw)\n"
        "    except TimeoutError:\n"
        "        pass\n"
        "    gevent.sleep(0.2)\n"
        "    c = socket.socket()\n"
        "    print('open' if c.connect_ex(('127.0.0.1', web)) == 0 else 'closed')\n"
        "    c.close()\n"
    )
    out = _python(code, timeout=60)
    assert out.stdout.split() == ["closed", "closed"], out.stderr[-2000:]
    assert "Address already in use" not in out.stderr


def test_matching_id_templates() -> None:
    assert matching_id("LOAD-{n:06d}", 42) == "LOAD-000042"
    assert matching_id("X{n}", 7) == "X7"
    assert matching_id("TS48V1-A-UNIQUE", 7) == "TS48V1-A-UNIQUE"
    for bad in ("{m}", "{n}{n}", "{n.__class__}", "{", "a}", ""):
        with pytest.raises(ValueError):
            check_template(bad)
    # Every load order has its own matching ID, ICCID and IMSI.
    a, b = load_order(1), load_order(2)
    assert (a.matching_id, b.matching_id) == ("LOAD-000001", "LOAD-000002")
    assert a.full_iccid != b.full_iccid and a.imsi != b.imsi


def test_run_time_spans() -> None:
    assert parse_span("90") == 90
    assert parse_span("2m") == 120
    assert parse_span("1h30m") == 5400
    assert parse_span("1.5s") == 1.5
    for bad in ("", "0", "10x", "m", "-5"):
        with pytest.raises(ValueError):
            parse_span(bad)


def test_code_meanings() -> None:
    assert code_meaning("8.2.6/3.8") == "matching ID refused"
    assert code_meaning("8.10.1/3.9") == "transaction unknown"
    assert code_meaning("9.9/9.9") == ""


def test_add_load_orders_skips_what_is_there() -> None:
    smdp = SmdpPlus(default_pki(), address="localhost")
    assert add_load_orders(smdp, 3) == 3
    assert add_load_orders(smdp, 4) == 1
    assert [o["matching_id"] for o in smdp.orders()] == [f"LOAD-{n:06d}" for n in range(4)]


def test_device_downloads_times_each_call_and_cleans_up(dp: Dp) -> None:
    calls = []
    device = LoadDevice(default_pki(), on_call=calls.append)
    other = LoadDevice(default_pki())
    assert device.eid != other.eid
    out = device.download(f"LPA:1${dp.address}$LOAD-000000", enable=True, notify=True)
    assert out.ok, out.error
    assert [c.function for c in out.calls] == [
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",
        "handleNotification",  # the installation result
        "handleNotification",  # the enable notification
    ]
    assert calls == out.calls and all(c.error is None for c in calls)
    # The eUICC is empty again: the next download installs a profile as the first did.
    assert device.lpa.profiles() == [] and device.es10.list_notifications() == []
    again = device.download(f"LPA:1${dp.address}$LOAD-000001")
    assert again.ok and dp.smdp.order_state("LOAD-000001") == OrderState.INSTALLED
    # A refusal is an outcome with its SGP.22 code, not an exception.
    refused = device.download(f"LPA:1${dp.address}$LOAD-000001")
    assert (refused.ok, refused.error) == (False, "8.2.6/3.8")
    assert refused.calls[-1].error == "8.2.6/3.8"


def test_summary_table() -> None:
    summary = {
        "target": "dp:443",
        "users": 2,
        "workers": 0,
        "seconds": 2.0,
        "downloads": {"completed": 3, "failed": 1, "perSecond": 1.5}
        | dict.fromkeys(("p50Ms", "p95Ms", "p99Ms"), 10.0),
        "es9": [
            {"function": "authenticateClient", "requests": 4, "failures": 1}
            | dict.fromkeys(("p50Ms", "p95Ms", "p99Ms"), 5.0)
        ],
        "failures": [
            {
                "function": "authenticateClient",
                "code": "8.2.6/3.8",
                "meaning": "matching ID refused",
                "count": 1,
            }
        ],
        "downloadFailures": [{"reason": "8.2.6/3.8", "count": 1}],
    }
    text = format_summary(summary)
    assert "3 completed, 1 failed, 1.50/s" in text
    assert "8.2.6/3.8" in text and "matching ID refused" in text


# -- the command ---------------------------------------------------------------------------


def test_cardemu_load_completes_the_downloads(dp: Dp) -> None:
    proc = cardemu_load(
        "--smdp", dp.address, "-u", "3", "-n", "6", "--enable", "--notify", "--json"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads(proc.stdout)
    assert s["downloads"]["completed"] == 6 and s["downloads"]["failed"] == 0
    assert s["downloads"]["perSecond"] > 0 and s["downloads"]["p99Ms"] > 0
    counts = {f["function"]: f["requests"] for f in s["es9"]}
    assert counts == {
        "initiateAuthentication": 6,
        "authenticateClient": 6,
        "getBoundProfilePackage": 6,
        "handleNotification": 12,  # installation results and enable notifications
    }
    assert s["failures"] == [] and s["workers"] == 0 and s["users"] == 3
    states = {o["matching_id"]: o["state"] for o in dp.smdp.orders()}
    assert [states[f"LOAD-{n:06d}"] for n in range(8)] == ["installed"] * 6 + ["released"] * 2
    enables = [n for n in dp.smdp.notifications() if n["operation"] == "enable"]
    assert len(enables) == 6 and len({n["eid"] for n in enables}) == 3  # three eUICCs


def test_cardemu_load_counts_failures_by_reason_code(dp: Dp) -> None:
    proc = cardemu_load("--smdp", dp.address, "-u", "2", "-n", "4", "--matching-id", "NONE-{n}")
    assert proc.returncode == 1
    assert "Error: 4 downloads failed, 0 completed" in proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("8.2.6/3.8"))
    assert row.split()[:3] == ["8.2.6/3.8", "authenticateClient", "4"]
    assert "matching ID refused" in row
    assert all(o["state"] == OrderState.RELEASED for o in dp.smdp.orders())


def test_cardemu_load_refuses_a_run_without_end() -> None:
    proc = cardemu_load("--smdp", "localhost:1")
    assert proc.returncode == 2 and "--run-time or --downloads" in proc.stderr
    proc = cardemu_load("--smdp", "localhost:1", "-n", "1", "--matching-id", "{x}")
    assert proc.returncode == 2
    proc = cardemu_load("-n", "1", "--master", "--master-bind-host", "0.0.0.0")
    assert proc.returncode == 2 and "loopback" in proc.stderr


def _master_and_two_workers(
    master_args: list[str], worker_stderr: int
) -> tuple[subprocess.Popen[str], list[subprocess.Popen[str]]]:
    """`cardemu load` as a master (`master_args`, on a free port, --json, its output piped)
    and two `--worker` processes connecting to it."""
    port = _free_port()
    master = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "load", *master_args]
        + ["--master-port", str(port), "--json"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker_cmd = [sys.executable, "-m", "host.cli", "load", "--worker", "--master-port", str(port)]
    workers = [
        subprocess.Popen(worker_cmd, cwd=ROOT, env=ENV, stderr=worker_stderr, text=True)
        for _ in range(2)
    ]
    return master, workers


def test_cardemu_load_across_two_worker_processes(dp: Dp) -> None:
    """Locust's own master and workers: the downloads split between two processes."""
    master, workers = _master_and_two_workers(
        ["--smdp", dp.address, "-u", "4", "-n", "8", "--master", "--expect-workers", "2"],
        worker_stderr=subprocess.PIPE,
    )
    try:
        out, err = master.communicate(timeout=120)
        assert master.returncode == 0, err[-2000:]
        for w in workers:
            assert w.wait(timeout=30) == 0
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait()
    s = json.loads(out)
    assert s["workers"] == 2 and s["downloads"]["completed"] == 8
    assert all(dp.smdp.order_state(f"LOAD-{n:06d}") == OrderState.INSTALLED for n in range(8))
    eids = {n["eid"] for n in dp.smdp.notifications()}
    assert len(eids) == 4  # four users, each its own eUICC, spread over the two workers


def test_cardemu_load_master_ends_when_a_worker_is_killed(dp: Dp) -> None:
    """A worker killed mid-run (SIGKILL: it never says done) is called missing after
    --worker-liveness seconds of silence; the master then ends with the survivor's share,
    names the missing worker and exits 1, instead of waiting for it until Ctrl-C."""
    master, workers = _master_and_two_workers(
        ["--smdp", dp.address, "-u", "2", "-n", "8", "--wait", "1", "--master"]
        + ["--expect-workers", "2", "--worker-liveness", "4"],
        worker_stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not any(o["state"] == OrderState.INSTALLED for o in dp.smdp.orders()):
            assert time.monotonic() < deadline and master.poll() is None, "no download started"
            time.sleep(0.1)
        # each worker has 4 downloads 1 s apart: this one is mid-run, it never says done
        workers[0].send_signal(signal.SIGKILL)
        out, err = master.communicate(timeout=45)
        assert workers[1].wait(timeout=30) == 0
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert master.returncode == 1, err[-2000:]
    assert "workers went missing" in err and "downloads not all done" in err
    s = json.loads(out)
    assert len(s["missingWorkers"]) >= 1 and s["downloads"]["completed"] < 8


def test_cardemu_load_web_ui(dp: Dp) -> None:
    """--web-ui: Locust's UI on loopback, its charts kept after the run until Ctrl-C."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "load", "--smdp", dp.address, "-u", "1", "-n", "1"]
        + ["--web-ui", "--web-port", str(port)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        stats = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests") as r:
                    stats = json.loads(r.read())
                if any(e["name"] == "download" for e in stats["stats"]):
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert stats is not None and any(e["name"] == "download" for e in stats["stats"])
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "1 completed, 0 failed" in out, err[-2000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
