"""`cardemu load`: N emulated eUICCs, each a Locust user with the LPA, against an ES9+ server."""

from __future__ import annotations

import json
import re
import sys

import click

from host.commands.common import CommandError, InvalidInput, json_option, stop_if_interrupted

_SPAN = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


def parse_span(text: str) -> float:
    """A duration as Locust writes it ("90", "90s", "2m", "1h30m") in seconds.

    Raises:
        ValueError: not such a duration, or zero.
    """
    text = text.strip().lower()
    pos, total = 0, 0.0
    for m in _SPAN.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text or pos != len(text) or total <= 0:
        raise ValueError(f"{text!r} is not a duration such as 30s, 2m or 1h30m")
    return total


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidInput(f"--connect-to {text!r}: give HOST:PORT")
    return host.strip("[]"), int(port)


@click.command("load", short_help="Drive an ES9+ server with emulated eUICCs.")
@click.option(
    "--smdp",
    "address",
    default="localhost:8443",
    show_default=True,
    help="The SM-DP+ address of the activation codes (host[:port]).",
)
@click.option(
    "--matching-id",
    "template",
    default="LOAD-{n:06d}",
    show_default=True,
    help="Matching ID of download n ({n} or {n:06d}; none: the same ID every time).",
)
@click.option("--first", type=click.IntRange(0), default=0, show_default=True, help="First n.")
@click.option(
    "-u", "--users", type=click.IntRange(1), default=10, show_default=True, help="eUICCs."
)
@click.option(
    "-r",
    "--spawn-rate",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="eUICCs started per second.",
)
@click.option("-t", "--run-time", help="Stop after this long (30s, 2m, 1h30m).")
@click.option(
    "-n",
    "--downloads",
    type=click.IntRange(0),
    default=0,
    help="Stop after this many downloads in all [default: no limit].",
)
@click.option("--enable", is_flag=True, help="Enable each profile after its download (ES10c).")
@click.option(
    "--notify",
    is_flag=True,
    help="Then deliver the pending notifications (ES9+ HandleNotification).",
)
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Seconds each eUICC waits between two downloads.",
)
@click.option(
    "--connect-to", help="Connect to HOST:PORT instead of the address (keeps its TLS name)."
)
@click.option("--no-tls", is_flag=True, help="Plain HTTP (an SM-DP+ behind a TLS proxy).")
@click.option(
    "--pki",
    "pki_dir",
    type=click.Path(exists=True, file_okay=False),
    help="The PKI whose EUM certifies the eUICCs and whose CI TLS is checked against "
    "(`cardemu pki create`) [default: built-in test PKI].",
)
@click.option("--web-ui", is_flag=True, help="Locust's web UI with its charts (loopback).")
@click.option("--web-port", type=click.IntRange(1, 65535), default=8089, show_default=True)
@click.option("--master", is_flag=True, help="Be Locust's master: the workers run the eUICCs.")
@click.option(
    "--expect-workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="With --master: start once this many workers are connected.",
)
@click.option(
    "--master-bind-host",
    default="127.0.0.1",
    show_default=True,
    help="With --master: the address workers connect to.",
)
@click.option(
    "--worker-liveness",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="With --master: seconds a worker may stay silent before it is called missing "
    "(the run then ends without it, exit code 1).",
)
@click.option("--worker", is_flag=True, help="Be a Locust worker of --master-host.")
@click.option(
    "--master-host", default="127.0.0.1", show_default=True, help="With --worker: the master."
)
@click.option("--master-port", type=click.IntRange(1, 65535), default=5557, show_default=True)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --master-bind-host outside loopback (logged as a warning).",
)
@json_option
def load(
    address: str,
    template: str,
    first: int,
    users: int,
    spawn_rate: float,
    run_time: str | None,
    downloads: int,
    enable: bool,
    notify: bool,
    wait: float,
    connect_to: str | None,
    no_tls: bool,
    pki_dir: str | None,
    web_ui: bool,
    web_port: int,
    master: bool,
    expect_workers: int,
    master_bind_host: str,
    worker_liveness: int,
    worker: bool,
    master_host: str,
    master_port: int,
    allow_remote: bool,
    as_json: bool,
) -> None:
    """Drive an ES9+ server (SGP.22 SM-DP+) with emulated eUICCs on Locust.

    Each Locust user is an eUICC of its own (a random EID under the PKI's EUM)
    with cardemu's LPA: download n fetches the profile of matching ID
    --matching-id (n = --first, --first+1, ... across all users), then
    deletes it locally and goes on. At the end: downloads/s, p50/p95/p99 per
    ES9+ function, failures by SGP.22 status code. Exit code 1 if any
    download failed, or if a worker went missing (killed) before it said done.

    For cardemu's SM-DP+, make the orders first (`cardemu server smdpp
    --load-orders N`: LOAD-000000 ...). Across machines: one `--master
    --expect-workers W`, and W `--worker --master-host HOST` (Locust's own
    protocol, port 5557).

    \b
    Examples:
      cardemu server smdpp --port 8443 --db dp.sqlite --load-orders 300 &
      cardemu load --smdp localhost:8443 --users 10 --downloads 40
      cardemu load --smdp localhost:8443 --first 40 -u 10 -t 5s --wait 1 --enable --notify --json
      cardemu load --smdp localhost:8443 --first 260 -n 20 --master --expect-workers 2 &
      cardemu load --worker & cardemu load --worker
    """
    if master and worker:
        raise click.UsageError("--master and --worker exclude each other")
    try:
        from host.load.orders import check_template

        check_template(template)
        seconds = parse_span(run_time) if run_time else None
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    if not worker and seconds is None and not downloads and not web_ui:
        raise click.UsageError("give --run-time or --downloads (or --web-ui), else it never ends")
    target = _host_port(connect_to) if connect_to else None
    if master:
        from host.servers.web import check_bind_host

        try:
            check_bind_host(master_bind_host, allow_remote=allow_remote)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    # Locust (and gevent's monkey-patching) only from here on, and before anything opens a socket.
    from host.load import locust_run

    # Importing Locust (gevent's monkey-patching) is most of the start-up: a Ctrl-C
    # dropped in it would leave a master waiting for its workers, then running.
    stop_if_interrupted()
    if worker:
        locust_run.run_worker(master_host, master_port, pki_dir=pki_dir)
        return
    settings = locust_run.LoadSettings(
        address=address,
        template=template,
        first=first,
        downloads=downloads,
        enable=enable,
        notify=notify,
        connect_to=target,
        tls=not no_tls,
        wait=wait,
        pki_dir=pki_dir,
    )

    def show(summary: dict[str, object]) -> None:
        from host.load.summary import format_summary

        if as_json:
            click.echo(json.dumps(summary, indent=2))
        else:
            click.echo(format_summary(summary))
        sys.stdout.flush()
        if web_ui:
            click.echo(f"web UI still on http://127.0.0.1:{web_port} (Ctrl-C ends)", err=True)

    ui = web_port if web_ui else None
    if master:
        try:
            summary = locust_run.run_master(
                settings,
                users=users,
                spawn_rate=spawn_rate,
                run_time=seconds,
                expect_workers=expect_workers,
                bind_host=master_bind_host,
                bind_port=master_port,
                web_port=ui,
                liveness=worker_liveness,
                on_summary=show,
            )
        except TimeoutError as e:
            raise CommandError(str(e)) from None
    else:
        summary = locust_run.run_local(
            settings,
            users=users,
            spawn_rate=spawn_rate,
            run_time=seconds,
            web_port=ui,
            on_summary=show,
        )
    downloads_ = summary["downloads"]
    assert isinstance(downloads_, dict)
    lost = summary.get("missingWorkers")
    if lost:
        assert isinstance(lost, list)
        raise CommandError(
            f"{len(lost)} of {expect_workers} workers went missing ({', '.join(lost)}):"
            f" downloads not all done, {downloads_['completed']} completed",
            reported=as_json,
        )
    if downloads_["failed"] or not downloads_["completed"]:
        raise CommandError(
            f"{downloads_['failed']} downloads failed, {downloads_['completed']} completed",
            reported=as_json,
        )
