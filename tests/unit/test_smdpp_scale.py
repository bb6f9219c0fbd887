"""The SM-DP+ scaled out: several processes on one store share every session.

Two SM-DP+ servers on one database stand for two uvicorn workers (each a
process with its own `SmdpPlus` and its own connection): a download whose
ES9+ requests alternate between them completes only if the session state is in
the database, not in a worker's memory. Then `cardemu server smdpp --workers 2`
on PostgreSQL serves `cardemu load`.
"""

from __future__ import annotations

import http.client
import importlib.util
import itertools
import json
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures

from host.load.orders import add_load_orders
from host.lpa import Es10Client, Lpa
from host.lpa.es9 import HttpAnswer, HttpRequest
from host.pki import default_pki
from host.presets import new_card
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.server import OrderState, SessionState, SmdpPlus

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "localhost:8443"  # the SM-DP+ address both servers answer to


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request, tmp_path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "dp.sqlite")


def _alternate(ports: list[int], ca_pem: bytes, served: list[int]) -> Callable[..., HttpAnswer]:
    """An LPA HTTP hook sending each ES9+ request to the next server in turn."""
    turn = itertools.cycle(ports)
    ctx = ssl.create_default_context(cadata=ca_pem.decode())

    def hook(request: HttpRequest, send: Callable[[], HttpAnswer]) -> HttpAnswer:
        port = next(turn)
        served.append(port)
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
        try:
            path = urlsplit(request.url).path
            conn.request(request.method, path, body=request.body, headers=request.headers)
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.read()
        finally:
            conn.close()

    return hook


def test_a_download_alternating_between_two_servers_completes(shared_db: str) -> None:
    pki = default_pki()
    a = SmdpPlus(pki, address=ADDRESS, store=shared_db)
    b = SmdpPlus(pki, address=ADDRESS, store=shared_db)
    add_load_orders(a, 1)
    served: list[int] = []
    with a.serve() as sa, b.serve() as sb:
        ports = [sa.port, sb.port]
        hook = _alternate(ports, pki.ci.pem, served)
        with Es10Client(InProcessReader(new_card("euicc"))) as es10:
            result = Lpa(es10, ca_pem=pki.ci.pem, http_hook=hook).download(
                f"LPA:1${ADDRESS}$LOAD-000000"
            )
    assert result.installed and result.notified
    # initiate (a), authenticate (b), BPP (a), installation result (b): each server
    # carried on a session the other one started.
    assert served == ports * 2
    assert b.order_state("LOAD-000000") == OrderState.INSTALLED
    assert a.session_state(result.transaction_id) == SessionState.DONE
    a.store.close()
    b.store.close()


def test_smdpp_workers_on_postgresql_serve_a_load_run(pg_url: str) -> None:  # noqa: F811
    if importlib.util.find_spec("locust") is None:  # never imported here: it monkey-patches
        pytest.skip("Locust is not installed (the load extra)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "server", "smdpp", "--port", "0", "--db", pg_url]
        + ["--workers", "2", "--load-orders", "6"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        added = server.stderr.readline()
        assert "6 load orders added" in added, added
        line = server.stderr.readline()
        m = re.search(r"SM-DP\+ (localhost:\d+) serving on https://127\.0\.0\.1:\d+ with 2", line)
        assert m, line
        proc = subprocess.run(
            [sys.executable, "-m", "host.cli", "load", "--smdp", m.group(1), "-u", "3", "-n", "6"]
            + ["--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)["downloads"]["completed"] == 6
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    smdp = SmdpPlus(default_pki(), address=ADDRESS, store=pg_url)
    assert [o["state"] for o in smdp.orders()] == [OrderState.INSTALLED] * 6
    smdp.store.close()


def test_cli_orders_on_postgresql(pg_url: str, capsys) -> None:  # noqa: F811
    from host.cli import main

    assert main(["smdpp", "order", "PG-1", "--db", pg_url, "--iccid", "8988211000000000024"]
                + ["--imsi", "001010000000002", "--k", "00" * 16, "--xor"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["smdpp", "orders", "--db", pg_url, "--json"]) == 0
    (order,) = json.loads(capsys.readouterr().out)
    assert (order["matching_id"], order["state"]) == ("PG-1", OrderState.RELEASED)


def test_an_unreachable_database_is_one_error_line_without_its_password(capsys) -> None:
    from host.cli import main

    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed (the postgresql extra)")
    url = "postgresql://cardemu:s3cret@127.0.0.1:1/smdpp"
    assert main(["smdpp", "orders", "--db", url]) != 0
    assert main(["server", "smdpp", "--port", "0", "--db", url]) == 1
    err = capsys.readouterr().err
    assert "Error: postgresql://cardemu:***@127.0.0.1:1/smdpp" in err
    assert "s3cret" not in err and "Traceback" not in err
