"""`cardemu load` on Locust: each Locust user an emulated eUICC with its LPA.

    summary = run_local(settings, users=50, spawn_rate=10, run_time=60)
    run_master(settings, users=500, spawn_rate=50, expect_workers=4, ...)  # one machine
    run_worker(master_host="10.0.0.1", master_port=5557)                   # each other one

Locust is used as a library: its runners (local, or master and workers over
its own ZeroMQ protocol, the same as `locust --master` / `--worker`), its
statistics and its web UI. What is ours: the user (`EuiccUser`: a
`host.load.device.LoadDevice` downloading profile after profile), the
numbering of the downloads across workers (`host.load.orders`), the stop once
a fixed number of downloads is done, and the summary.

Each ES9+ exchange is a Locust request of type "ES9+" named after the function;
each whole download one of type "LPA" named "download". A failure's name is its
SGP.22 status code ("8.2.6/3.8"), so Locust counts failures by code.

The run's settings travel from the master to the workers inside Locust's
spawn message (custom `parsed_options`), with the worker count: worker i of W
draws download numbers i, i+W, ...

Importing this module imports Locust, which monkey-patches the standard library
for gevent (sockets, threads, ssl): only the `cardemu load` command imports it,
and first.
"""

from __future__ import annotations

import logging
import sys
import time
from argparse import Namespace
from dataclasses import asdict, dataclass
from typing import Any

import gevent
import gevent.event
from locust import User, events, task
from locust import runners as locust_runners
from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

from card.sgp22 import asn1
from host.load.device import Es9Call, LoadDevice
from host.load.orders import matching_id
from host.load.summary import DOWNLOAD, ES9, LPA, summarise
from host.pki import TestPki, default_pki, load_pki

__all__ = [
    "EuiccUser",
    "LoadSettings",
    "run_local",
    "run_master",
    "release_master_port",
    "run_worker",
    "send_stats_now",
    "tolerate_busy_workers",
    "worker_runner",
]

log = logging.getLogger(__name__)

#: the custom option that carries `LoadSettings` from the master to its workers
OPTION = "cardemu_load"
DONE_MESSAGE = "cardemu_load_done"
STOP_MESSAGE = "cardemu_load_stop"
#: seconds a stopping user may take to finish the download it is in
STOP_TIMEOUT = 10.0
#: heartbeats (one a second) a worker may miss before the master calls it missing
WORKER_LIVENESS = 30
#: milliseconds the master's socket may take, once closed, to send its workers' "quit"
QUIT_LINGER_MS = 1000


@dataclass(frozen=True)
class LoadSettings:
    """What every user of a run does (JSON-able: it travels to the workers).

    Attributes:
        address: the SM-DP+ address of the activation codes (`host[:port]`).
        template: the matching-ID template (`{n}` or `{n:06d}` for the number).
        first: the first download number.
        downloads: stop after this many downloads in all (0: run until the time is up).
        enable: enable each profile after its download (ES10c).
        notify: deliver the notifications that leaves (ES9+ HandleNotification).
        connect_to: ("host", port) to connect to instead of the address.
        tls: False for plain HTTP.
        wait: seconds a user waits between two downloads.
        pki_dir: the PKI (`cardemu pki create`) whose EUM certifies the eUICCs;
            None: the built-in test PKI. A worker uses its own `--pki`.
    """

    address: str
    template: str
    first: int = 0
    downloads: int = 0
    enable: bool = False
    notify: bool = False
    connect_to: tuple[str, int] | None = None
    tls: bool = True
    wait: float = 0.0
    pki_dir: str | None = None

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> LoadSettings:
        value = dict(value)
        if value.get("connect_to") is not None:
            host, port = value["connect_to"]
            value["connect_to"] = (str(host), int(port))
        return cls(**value)


class _Run:
    """The per-process state of a run: settings, PKI, download numbers, users still active."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the last run (one run per process; tests run several)."""
        self.settings: LoadSettings | None = None
        self.pki: TestPki | None = None
        self.index = 0
        self.stride = 1
        self.drawn = 0
        self.active = 0
        self.done = gevent.event.Event()
        self.on_done: Any = None

    def configure(self, environment: Environment) -> LoadSettings:
        if self.settings is None:
            options = environment.parsed_options
            raw = getattr(options, OPTION, None) if options is not None else None
            if raw is None:
                raise RuntimeError("no cardemu load settings (a worker gets them from its master)")
            self.settings = (
                raw if isinstance(raw, LoadSettings) else LoadSettings.from_json(dict(raw))
            )
            runner = environment.runner
            if isinstance(runner, WorkerRunner):
                self.index = runner.worker_index
                self.stride = max(1, int(getattr(options, "expect_workers", 1) or 1))
                # -1: Locust's default until the master's "ack" gives the index (a master
                # before Locust 2.10.3 gives none); worker -1 of 2 would draw first-1,
                # first+1, ... and repeat worker 1's numbers.
                if not 0 <= self.index < self.stride:
                    raise RuntimeError(
                        f"worker index {self.index} but the master expects {self.stride} workers:"
                        " download numbers would repeat"
                    )
            if self.pki is None:
                self.warm(self.settings.pki_dir)
        return self.settings

    def warm(self, pki_dir: str | None) -> None:
        """Load the PKI and compile the ASN.1 modules: before the run, not inside its first
        download (a worker busy for seconds misses its heartbeats, and the master drops it)."""
        self.pki = load_pki(pki_dir) if pki_dir else default_pki()
        asn1.rsp()
        asn1.saip()

    def next_number(self) -> int | None:
        """The next download number of this process, or None when the run has made enough."""
        assert self.settings is not None
        n = self.settings.first + self.index + self.stride * self.drawn
        if self.settings.downloads and n >= self.settings.first + self.settings.downloads:
            return None
        self.drawn += 1
        return n

    def leave(self) -> None:
        self.active -= 1
        if self.active <= 0:
            self.done.set()
            if self.on_done is not None:
                self.on_done()


RUN = _Run()


class EuiccUser(User):
    """One emulated eUICC and its LPA, downloading profile after profile."""

    _left = True  # until on_start has counted this user in

    def on_start(self) -> None:
        self.settings = RUN.configure(self.environment)
        self._wait = self.settings.wait
        self._left = False
        RUN.active += 1
        self.device = self._device()

    def _device(self) -> LoadDevice:
        assert RUN.pki is not None
        return LoadDevice(
            RUN.pki,
            connect_to=self.settings.connect_to,
            tls=self.settings.tls,
            on_call=self._es9,
        )

    def wait_time(self) -> float:
        return self._wait

    def _es9(self, call: Es9Call) -> None:
        self.environment.events.request.fire(
            request_type=ES9,
            name=call.function,
            response_time=call.seconds * 1000,
            response_length=call.length,
            exception=call.error,
            context={},
        )

    @task
    def download(self) -> None:
        n = RUN.next_number()
        if n is None:
            self._leave()
            raise StopUser()
        s = self.settings
        code = f"LPA:1${s.address}${matching_id(s.template, n)}"
        outcome = self.device.download(code, enable=s.enable, notify=s.notify)
        self.environment.events.request.fire(
            request_type=LPA,
            name=DOWNLOAD,
            response_time=outcome.seconds * 1000,
            response_length=0,
            exception=outcome.error,
            context={},
        )
        if self.device.broken:
            self.device = self._device()

    def _leave(self) -> None:
        if not self._left:
            self._left = True
            RUN.leave()

    def on_stop(self) -> None:
        self._leave()


def _options(settings: LoadSettings | None, **locust_options: Any) -> Namespace:
    """Locust's parsed options with ours added (the master sends them to its workers)."""
    parser = get_empty_argument_parser()
    setup_parser_arguments(parser)
    options = parser.parse_args([])
    options.headless = True
    for k, v in locust_options.items():
        setattr(options, k, v)
    if settings is not None:
        setattr(options, OPTION, asdict(settings))
    return options


def _environment(settings: LoadSettings | None, **locust_options: Any) -> Environment:
    return Environment(
        user_classes=[EuiccUser],
        events=events,
        parsed_options=_options(settings, **locust_options),
        stop_timeout=STOP_TIMEOUT,
    )


def _wait(deadline: float | None, done: gevent.event.Event) -> None:
    while deadline is None or time.monotonic() < deadline:
        if done.wait(timeout=0.2 if deadline is None else min(0.2, deadline - time.monotonic())):
            return


def _web_ui(env: Environment, port: int | None) -> Any:
    if port is None:
        return None
    # Locust's web UI reads its extra options from sys.argv (its own CLI's): those of
    # `cardemu load` are none of its business.
    sys.argv[1:] = []
    ui = env.create_web_ui(host="127.0.0.1", port=port)
    log.warning("Locust web UI on http://127.0.0.1:%d", port)
    return ui


def _linger(ui: Any) -> None:
    """Keep the web UI's charts up after a run until Ctrl-C (its caller stops the UI)."""
    if ui is None:
        return
    try:
        while True:
            gevent.sleep(3600)
    except KeyboardInterrupt:
        pass


def run_local(
    settings: LoadSettings,
    *,
    users: int,
    spawn_rate: float,
    run_time: float | None,
    web_port: int | None = None,
    on_summary: Any = None,
) -> dict[str, Any]:
    """One process: `users` eUICCs until `run_time` seconds pass or the downloads are done.

    Returns:
        The summary (`host.load.summary.summarise`).
    """
    RUN.reset()
    RUN.warm(settings.pki_dir)
    env = _environment(settings)
    RUN.configure(env)
    runner = env.create_local_runner()
    ui = _web_ui(env, web_port)
    try:
        t0 = time.monotonic()
        runner.start(users, spawn_rate=spawn_rate)
        try:
            _wait(None if run_time is None else t0 + run_time, RUN.done)
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the users")
        seconds = time.monotonic() - t0
        runner.quit()
        summary = summarise(
            env.stats, seconds=seconds, users=users, workers=0, target=settings.address
        )
        if on_summary is not None:
            on_summary(summary)
        _linger(ui)
        return summary
    finally:
        if ui is not None:
            ui.stop()


def run_master(
    settings: LoadSettings,
    *,
    users: int,
    spawn_rate: float,
    run_time: float | None,
    expect_workers: int,
    bind_host: str = "127.0.0.1",
    bind_port: int = 5557,
    web_port: int | None = None,
    expect_timeout: float = 120.0,
    liveness: int = WORKER_LIVENESS,
    on_summary: Any = None,
) -> dict[str, Any]:
    """The master: waits for `expect_workers` workers, runs, gathers their statistics.

    The run ends when every worker has said done, or is missing (silent for `liveness`
    heartbeats: killed, out of memory) or Locust has stopped the run: a dead worker never
    says done, and waiting for it would hang the master. The summary's `missingWorkers`
    names each worker that never said done (its downloads are not all done or counted).
    Locust's `HEARTBEAT_LIVENESS` is set for the run and restored on return. However the
    master ends (the run, a `TimeoutError`, any other exception) its port is released and
    its web UI stopped, so a retry in the same process binds both again; only after a run
    does the UI linger (until Ctrl-C) with its charts.

    Raises:
        TimeoutError: the workers did not all connect within `expect_timeout` seconds.
    """
    RUN.reset()
    env = _environment(settings, expect_workers=expect_workers)
    runner = env.create_master_runner(master_bind_host=bind_host, master_bind_port=bind_port)
    assert isinstance(runner, MasterRunner)
    finished: set[str] = set()
    started: set[str] = set()

    def missing() -> set[str]:
        """Workers of the run that did not say done and are missing (or were dropped)."""
        return {
            w
            for w in started - finished
            if w not in runner.clients or runner.clients[w].state == locust_runners.STATE_MISSING
        }

    def settled() -> bool:
        return len(finished) + len(missing()) >= expect_workers

    def worker_done(environment: Environment, msg: Any, **_: Any) -> None:
        finished.add(str(msg.node_id))
        if settled():
            RUN.done.set()

    runner.register_message(DONE_MESSAGE, worker_done)
    old_liveness = tolerate_busy_workers(liveness)
    ui: Any = None
    try:
        ui = _web_ui(env, web_port)
        log.warning(
            "Locust master on %s:%d: waiting for %d workers", bind_host, bind_port, expect_workers
        )
        deadline = time.monotonic() + expect_timeout
        while len(runner.clients.ready) < expect_workers:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(runner.clients.ready)} of {expect_workers} workers connected"
                    f" in {expect_timeout:.0f} s"
                )
            gevent.sleep(0.1)
        started.update(str(c.id) for c in runner.clients.ready)
        t0 = time.monotonic()
        runner.start(users, spawn_rate=spawn_rate)
        end = None if run_time is None else t0 + run_time
        try:
            while not RUN.done.is_set() and not settled():
                if runner.state == locust_runners.STATE_STOPPED:
                    break  # Locust stopped the run (its last worker went missing)
                if end is not None and time.monotonic() >= end:
                    break
                left = 0.2 if end is None else end - time.monotonic()
                RUN.done.wait(timeout=max(0.0, min(0.2, left)))
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the workers")
        seconds = time.monotonic() - t0
        if not settled():
            # Stopped by the clock (or by Locust): each live worker stops its users, sends its
            # statistics and says done (Locust's own "stop" would keep a worker deaf for
            # stop_timeout). A worker that dies meanwhile is waited for no longer than this.
            for client in list(runner.clients.values()):
                if str(client.id) not in finished | missing():
                    runner.send_message(STOP_MESSAGE, None, client_id=client.id)
            stop_by = time.monotonic() + STOP_TIMEOUT + 2 * WORKER_REPORT_INTERVAL
            while not settled() and time.monotonic() < stop_by:
                gevent.sleep(0.1)
        lost = sorted((started - finished) | missing())
        if lost:
            log.warning("worker(s) missing, never said done: %s", ", ".join(lost))
        release_master_port(runner)
        summary = summarise(
            env.stats, seconds=seconds, users=users, workers=expect_workers, target=settings.address
        )
        summary["missingWorkers"] = lost
        if on_summary is not None:
            on_summary(summary)
        _linger(ui)
        return summary
    finally:
        locust_runners.HEARTBEAT_LIVENESS = old_liveness
        release_master_port(runner)
        if ui is not None:
            ui.stop()


def release_master_port(runner: MasterRunner) -> None:
    """Quit `runner` and free the port its workers connect to.

    Locust's `MasterRunner.quit()` kills its greenlets but leaves its ZeroMQ ROUTER
    socket (`runner.server`, bound to the master port) open, and with it the port,
    for as long as the process lives (checked against Locust 2.47.0): a second
    master in the same process (a test, a script that retries after a TimeoutError)
    then fails to bind ("Address already in use"). Here the socket is closed and its
    context, which Locust makes for this socket alone, terminated: that returns once
    the port is released, so a new master can bind it at once. Safe to call twice
    (the second call does nothing).

    The close lingers up to `QUIT_LINGER_MS`, not 0: `runner.quit()` has just queued a
    "quit" to each worker, which ZeroMQ's I/O thread sends later; with no linger,
    one not yet sent when the socket closes (that thread starved of the CPU on a
    busy machine) is dropped, and its worker runs on until it notices the master is
    gone. A peer that has gone is no wait (ROUTER drops what it cannot route), so
    the linger costs time only while a live worker's "quit" is still queued.
    """
    server = runner.server
    if server.socket.closed:
        return
    runner.quit()
    server.close(linger=QUIT_LINGER_MS)
    server.socket.context.term()


def tolerate_busy_workers(liveness: int = WORKER_LIVENESS) -> int:
    """Let a worker miss `liveness` heartbeats before the master calls it missing.

    Returns:
        The value it replaces (`run_master` restores it when it returns).

    A worker's eUICCs run the card's cryptography in Python on gevent's one thread:
    while a user computes, nothing else in that process runs, its heartbeat greenlet
    included. Locust's master calls a worker missing after 3 missed heartbeats (3 s)
    and, once every worker is missing, stops the run: each worker stops its users. On
    a busy machine that cut a `-n 8` run short after 4 downloads (both workers were
    "missing" 2.5 s after the spawn, each got Locust's "stop"). A load generator is
    busy by design, so a real deployment waits longer: a worker that really died is
    noticed after `liveness` seconds instead of 3, in a run of minutes.

    Locust 2.47.0 has no option for this: its master reads the module constant
    `HEARTBEAT_LIVENESS` each time it counts a worker's heartbeats (checked against
    its runners.py); test_load's `test_a_busy_worker_is_not_called_missing` fails if
    a Locust release stops reading it.
    """
    old = int(locust_runners.HEARTBEAT_LIVENESS)
    locust_runners.HEARTBEAT_LIVENESS = liveness
    return old


def send_stats_now(runner: WorkerRunner) -> None:
    """Send this worker's statistics to the master now, not at its next report.

    Locust has no public call for this (checked against Locust 2.47.0): its worker's
    own `_send_stats()`, which its report loop and its "quit" handler call, is private.
    This does what that does from public parts: the documented `report_to_master` event
    fills the report (Locust's own listeners add "stats", "errors" and the user count;
    the worker's `client_id` names it), and the documented `WorkerRunner.send_message`
    carries it as a "stats" message, the type the master turns into `worker_report`.
    That message type is Locust's wire protocol, not an API: test_load's
    `test_send_stats_now_reaches_the_master` fails if a Locust release renames it.
    """
    data: dict[str, Any] = {}
    runner.environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
    runner.send_message("stats", data)


def run_worker(master_host: str, master_port: int = 5557, *, pki_dir: str | None = None) -> None:
    """A worker: connects to the master, runs the users it is given until the master quits."""
    RUN.reset()
    RUN.warm(pki_dir)  # a worker uses its own PKI, never the master's path
    runner = worker_runner(_environment(None), master_host, master_port)
    try:
        runner.greenlet.join()
    except KeyboardInterrupt:
        runner.quit()


def worker_runner(env: Environment, master_host: str, master_port: int) -> WorkerRunner:
    """The worker's Locust runner, connected, saying done to its master exactly once:
    when its users have drawn every number of its share, or when it is stopped (our
    stop message, or Locust's own "stop", which its master sends once every worker is
    missing). A worker stopped before any of its users started would otherwise never
    say done, and its master would wait for it with no end."""
    runner = env.create_worker_runner(master_host, master_port)
    assert isinstance(runner, WorkerRunner)

    said_done = False

    def done() -> None:
        nonlocal said_done
        if said_done:
            return
        said_done = True
        # The statistics first: the master stops once every worker said done, and
        # Locust's own final report on quit may come too late for its summary.
        send_stats_now(runner)
        runner.send_message(DONE_MESSAGE, {"index": runner.worker_index})

    def stop(environment: Environment, msg: Any, **_: Any) -> None:
        runner.stop()  # the users finish the download they are in (STOP_TIMEOUT at most)
        done()

    RUN.on_done = done
    runner.register_message(STOP_MESSAGE, stop)
    env.events.test_stop.add_listener(lambda **_: done())
    return runner
