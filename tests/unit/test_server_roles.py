"""`cardemu server ROLE` and the SM-DP+ on the web stack: alone from the CLI, round trips.

The app `cardemu server smdpp` serves is the one `SmdpPlus.serve()` serves in
the other tests (`host.servers.smdpp.app.create_app`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from rsp_soft_euicc import SoftEuicc

from host.cli import main
from host.lpa.demo import DEMO_MATCHING_ID
from host.lpa.es9 import Es9Client
from host.pki import default_pki
from host.servers.smdpp.server import OrderState, SmdpPlus

ROOT = Path(__file__).resolve().parents[2]


def test_cardemu_server_smdpp_runs_alone(tmp_path) -> None:
    db = tmp_path / "dp.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "server", "smdpp", "--port", "0", "--db", str(db)]
        + ["--demo-order"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stderr.readline()
        m = re.search(r"SM-DP\+ (localhost:\d+) serving on https://127\.0\.0\.1:\d+", line)
        assert m, f"no start line: {line!r}"
        address = m.group(1)
        pki = default_pki()
        r = Es9Client(address, ca_pem=pki.ci.pem).call(
            "initiateAuthentication", SoftEuicc(pki).initiate_body(address)
        )
        assert len(bytes.fromhex(r["transactionId"])) == 16
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn stops gracefully, then re-raises the signal it caught (as a killed process).
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
    # Its store is the file it was given: the order and the session are there.
    smdp = SmdpPlus(default_pki(), address="localhost", store=db)
    assert smdp.order_state(DEMO_MATCHING_ID) == OrderState.RELEASED
    assert smdp.store.query_one("SELECT COUNT(*) AS n FROM sessions")["n"] == 1


def test_cardemu_server_refuses_a_remote_address_unless_asked(tmp_path, capsys) -> None:
    db = str(tmp_path / "dp.sqlite")
    assert main(["server", "smdpp", "--host", "0.0.0.0", "--port", "0", "--db", db]) == 1
    assert "loopback" in capsys.readouterr().err
    assert main(["smdpp", "serve", "--host", "0.0.0.0", "--port", "0", "--db", db]) == 1


def test_es9_round_trip_does_not_stall() -> None:
    """No ES9+ call waits ~40 ms on a delayed ACK, client or server side.

    Each call is a new HTTPS connection (as the LPA makes them), through the
    LPA's client both directly and with `connect_to`. A stall would delay every
    call by 40 ms or more, so the fastest call tells (and a busy machine cannot
    fake a stall in all twelve).
    """
    pki = default_pki()
    smdp = SmdpPlus(pki, address="localhost")
    with smdp.serve() as server:
        smdp.address = f"localhost:{server.port}"
        for target in (None, ("127.0.0.1", server.port)):
            client = Es9Client(smdp.address, ca_pem=pki.ci.pem, connect_to=target)
            euicc = SoftEuicc(pki)
            times = []
            for _ in range(12):
                t0 = time.perf_counter()
                client.call("initiateAuthentication", euicc.initiate_body(smdp.address))
                times.append(time.perf_counter() - t0)
            assert min(times) < 0.030, (target, times)


def test_bench_web_prints_both_stacks_side_by_side(capsys) -> None:
    import json

    assert main(["bench", "--web", "--seconds", "0.2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["function"] == "initiateAuthentication"
    got = {(f["stack"], f["mode"]) for f in report["figures"]}
    assert got == {
        (s, m)
        for s in ("http.server (old)", "starlette/uvicorn")
        for m in ("new connection", "keep-alive")
    }
    for f in report["figures"]:
        assert f["requests"] >= 1 and f["requests_per_s"] > 0 and f["p99_ms"] >= f["p50_ms"] > 0


def test_cardemu_server_smdpp_with_workers(tmp_path) -> None:
    """--workers 2: uvicorn's supervisor, two processes on one socket and one store.

    A download's four ES9+ calls, each on a new connection, may land on either
    worker: the session lives in the store, so the download completes.
    """
    import base64

    from rsp_soft_euicc import b64d

    db = tmp_path / "dp.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "server", "smdpp", "--port", "0", "--db", str(db)]
        + ["--demo-order", "--workers", "2"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stderr.readline()
        m = re.search(r"SM-DP\+ (localhost:\d+) serving on https://\S+ with 2 workers", line)
        assert m, f"no start line: {line!r}"
        address = m.group(1)
        pki = default_pki()
        es9 = Es9Client(address, ca_pem=pki.ci.pem)
        euicc = SoftEuicc(pki)
        r1 = None
        for _ in range(100):  # the workers come up after the line
            try:
                r1 = es9.call("initiateAuthentication", euicc.initiate_body(address))
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.2)
        assert r1 is not None
        tid = r1["transactionId"]
        asr = euicc.authenticate_server(r1, DEMO_MATCHING_ID)
        b64 = base64.b64encode
        r2 = es9.call(
            "authenticateClient",
            {"transactionId": tid, "authenticateServerResponse": b64(asr).decode()},
        )
        pdr = euicc.prepare_download(r2)
        r3 = es9.call(
            "getBoundProfilePackage",
            {"transactionId": tid, "prepareDownloadResponse": b64(pdr).decode()},
        )
        t, _, _ = euicc.open_bpp(b64d(r3["boundProfilePackage"]), pki.dppb.cert)
        pending = b64(euicc.installation_result(t)).decode()
        assert es9.call("handleNotification", {"pendingNotification": pending}) is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    smdp = SmdpPlus(default_pki(), address="localhost", store=db)
    assert smdp.order_state(DEMO_MATCHING_ID) == OrderState.INSTALLED
