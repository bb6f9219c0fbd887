"""The SM-DP+ web-stack benchmark: InitiateAuthentication on the old stack beside the new one.

`cardemu bench --web` serves one SM-DP+ (the same `SmdpPlus`, the same
in-memory store, the same TLS certificate) twice: on `host.servers.web`
(Starlette on uvicorn) and on the http.server stack it replaced
(`host.bench_legacy_http`, kept only for this). Rounds alternate between the
two, so both see the same machine load, and each figure is the pooled result
of its rounds: requests/s and the 50th/99th percentile latency, in two client
modes:

- "new connection": a fresh HTTPS connection per call, as the LPA makes them;
- "keep-alive": one HTTPS connection for every call (where a response that
  waits on a delayed ACK shows up as a ~40 ms latency).

Figures, never assertions. Each answer is checked to be "Executed-Success".
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from card.sgp22 import asn1
from host.es9plus import ADMIN_PROTOCOL, CONTENT_TYPE, ES9_PATHS
from host.pki import default_pki

__all__ = ["StackFigure", "WebBenchReport", "run_web_benchmark"]

MODES = ("new connection", "keep-alive")
STACKS = ("http.server (old)", "starlette/uvicorn")


@dataclass
class StackFigure:
    """The pooled latencies of one (stack, mode) over all its rounds."""

    stack: str
    mode: str
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    #: requests/s of each round (the spread of the pooled figure)
    round_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return 0.0
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "mode": self.mode,
            "requests": len(self.latencies),
            "requests_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
        }


@dataclass
class WebBenchReport:
    figures: list[StackFigure]
    rounds: int

    def to_json(self) -> dict[str, Any]:
        return {
            "function": "initiateAuthentication",
            "rounds": self.rounds,
            "figures": [f.to_json() for f in self.figures],
        }

    def lines(self) -> list[str]:
        out = [
            f"SM-DP+ ES9+ initiateAuthentication over HTTPS, {self.rounds} interleaved rounds",
            f"  {'stack':<20} {'client':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}",
        ]
        for f in self.figures:
            out.append(
                f"  {f.stack:<20} {f.mode:<16} {f.rate:>8.1f} "
                f"{f.percentile(50) * 1000:>8.2f} {f.percentile(99) * 1000:>8.2f}"
            )
        return out


def _legacy_server(smdp: Any) -> Any:
    """The SM-DP+'s ES9+ routes as the old stack served them (SmdpPlus.app before the move)."""
    from host import bench_legacy_http as legacy
    from host.es9plus import Es9Error, failed_header, ok_header
    from host.servers.rsp_http import run_bounded  # the same decode budget as the real route

    app = legacy.JsonApp("smdpp", headers={"X-Admin-Protocol": ADMIN_PROTOCOL})

    def endpoint(name: str, fn: Callable[[dict[str, Any]], Any]) -> legacy.Handler:
        def handle(request: legacy.Request) -> Any:
            protocol = request.header("X-Admin-Protocol")
            if protocol is not None and not protocol.startswith("gsma/rsp/v2"):
                raise legacy.HttpError(400, "unsupported X-Admin-Protocol")
            body = request.json_object()
            try:
                result = run_bounded(fn, body)
            except Es9Error as e:
                return {"header": failed_header(e)}
            if result is None:
                return legacy.Response(status=204)
            return {"header": ok_header(), **result}

        return handle

    app.add(
        "POST",
        ES9_PATHS["initiateAuthentication"],
        endpoint("initiateAuthentication", smdp.initiate_authentication),
    )
    tls = legacy.tls_context(smdp.tls.pem, smdp.tls.key_pem)
    return legacy.Server(app, tls=tls)


def run_web_benchmark(
    seconds: float = 1.0, rounds: int = 4, on_progress: Callable[[str], None] | None = None
) -> WebBenchReport:
    """Time InitiateAuthentication on both stacks, interleaved.

    Args:
        seconds: time per (stack, mode) figure, split over the rounds.
        rounds: how many times the stacks alternate.
        on_progress: called with a line per round.
    """
    from host.servers.smdpp.server import SmdpPlus

    pki = default_pki()
    smdp = SmdpPlus(pki, address="localhost")
    info1 = asn1.encode(
        "EUICCInfo1",
        {
            "svn": b"\x02\x02\x02",
            "euiccCiPKIdListForVerification": [pki.ci.ski],
            "euiccCiPKIdListForSigning": [pki.ci.ski],
        },
    )
    client_ctx = ssl.create_default_context(cadata=pki.ci.pem.decode())
    headers = {"Content-Type": CONTENT_TYPE, "X-Admin-Protocol": ADMIN_PROTOCOL}
    path = ES9_PATHS["initiateAuthentication"]
    figures = {(s, m): StackFigure(s, m) for s in STACKS for m in MODES}
    new = smdp.serve().start()
    old = _legacy_server(smdp).start()
    ports = {STACKS[0]: old.port, STACKS[1]: new.port}
    try:
        for r in range(rounds):
            order = STACKS if r % 2 == 0 else STACKS[::-1]
            for mode in MODES:
                for stack in order:
                    smdp.address = f"localhost:{ports[stack]}"
                    fig = figures[(stack, mode)]
                    _run(
                        fig,
                        ports[stack],
                        mode,
                        seconds / rounds,
                        client_ctx,
                        headers,
                        path,
                        info1,
                        smdp.address,
                    )
            if on_progress is not None:
                on_progress(f"round {r + 1}/{rounds} done")
    finally:
        new.stop()
        old.stop()
        smdp.store.close()
    return WebBenchReport([figures[(s, m)] for m in MODES for s in STACKS], rounds)


def _run(
    fig: StackFigure,
    port: int,
    mode: str,
    seconds: float,
    ctx: ssl.SSLContext,
    headers: dict[str, str],
    path: str,
    info1: bytes,
    address: str,
) -> None:
    conn: http.client.HTTPSConnection | None = None
    before = len(fig.latencies)
    start = time.perf_counter()
    deadline = start + seconds
    try:
        while True:
            body = json.dumps(
                {
                    "euiccChallenge": base64.b64encode(os.urandom(16)).decode(),
                    "euiccInfo1": base64.b64encode(info1).decode(),
                    "smdpAddress": address,
                }
            ).encode()
            t0 = time.perf_counter()
            if conn is None:
                conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            if mode == "new connection":
                conn.close()
                conn = None
            t1 = time.perf_counter()
            status = answer["header"]["functionExecutionStatus"]["status"]
            if resp.status != 200 or status != "Executed-Success":
                raise RuntimeError(f"{fig.stack}: initiateAuthentication answered {answer}")
            fig.latencies.append(t1 - t0)
            if t1 >= deadline:
                break
    finally:
        if conn is not None:
            conn.close()
    spent = time.perf_counter() - start
    fig.elapsed += spent
    fig.round_rates.append((len(fig.latencies) - before) / spent)
