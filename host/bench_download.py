"""An eSIM download and enable, timed: over loopback HTTPS beside the same download in-process.

One download is what a user waits for between scanning an activation code and
having a profile: the LPA's whole SGP.22 §3.1.3 flow (ES10b GetEUICCChallenge
and GetEUICCInfo1, ES9+ InitiateAuthentication, ES10b AuthenticateServer, ES9+
AuthenticateClient, ES10b PrepareDownload, ES9+ GetBoundProfilePackage, ES10b
LoadBoundProfilePackage, ES9+ HandleNotification, ES10b
RemoveNotificationFromList), then ES10c EnableProfile (§5.7.16). Every check
of both sides runs (certificate chains, signatures, the eUICC's and the
server's challenges, session keys, the BPP's MACs): nothing is skipped or
cached that SGP.22 wants fresh.

Two sides, in alternating rounds (`host.bench_table.interleave`):

- "loopback HTTPS": the SM-DP+ (`SmdpPlus`, its store in memory or an SQLite
  file as `cardemu server smdpp --db` keeps it) on the servers' web stack
  (Starlette on uvicorn, TLS with CERT.DPtls) in a thread of this process;
  the LPA connects as a real one does, one TLS connection for the download
  (`Es9Client` keeps it alive from InitiateAuthentication to
  HandleNotification), checked against the CI;
- "in-process": the same LPA, SM-DP+ and store with the ES9+ exchanges handed
  to the SM-DP+'s functions directly (`host.servers.rsp_http.rsp_answer`: the
  same JSON bodies and SGP.22 envelope, no socket, no TLS, no HTTP): what
  the protocol and the two parties cost alone.

Each run is one download into a fresh `euicc` card of a fresh order (card
and order are made before the clock starts); its time runs from the LPA
reading the activation code to the EnableProfile answer. The first download
of each side is a warm-up, not counted (imports, first-use compilation).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

__all__ = ["DownloadBench", "SIDES"]

SIDES = ("loopback HTTPS", "in-process, no HTTP")
#: what the issue's table asks of one download and enable over loopback HTTPS, in ms
TARGET_MS = 40.0


class DownloadBench:
    """An SM-DP+ serving HTTPS on loopback, and a download + enable per call of a side.

    Args:
        store: "memory" (SQLite in memory, as `cardemu demo` runs its SM-DP+) or
            "file" (an SQLite file in WAL mode, as `cardemu server smdpp --db`
            keeps it: the commits that move the order or record the result wait
            for the disk, the session-only ones do not, `Store.transaction`).

    Use as a context manager: the server stops and its store is removed at the end.
    """

    def __init__(self, store: str = "memory") -> None:
        from host.pki import default_pki
        from host.servers.smdpp.app import es9_functions
        from host.servers.smdpp.server import SmdpPlus

        self._dir = tempfile.TemporaryDirectory(prefix="cardemu-bench-download-")
        self.pki = default_pki()
        if store not in ("memory", "file"):
            raise ValueError(f"store {store!r}: memory or file")
        path = ":memory:" if store == "memory" else os.path.join(self._dir.name, "smdpp.sqlite")
        self.smdp = SmdpPlus(self.pki, address="localhost", store=path)
        self._functions = es9_functions(self.smdp)
        self._server = self.smdp.serve()
        self._ids = itertools.count(1)

    def __enter__(self) -> DownloadBench:
        self._server.start()
        self.smdp.address = f"localhost:{self._server.port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and remove its store."""
        self._server.stop()
        self.smdp.store.close()
        self._dir.cleanup()

    def _direct(self, request: Any, send: Callable[[], Any]) -> tuple[int, str, bytes]:
        """An `HttpHook` that answers from the SM-DP+'s functions, never calling `send`."""
        from host.servers.rsp_http import rsp_answer

        answer = rsp_answer(
            request.function, self._functions[request.function], json.loads(request.body)
        )
        if answer is None:
            return 204, "No Content", b""
        return 200, "OK", json.dumps(answer).encode()

    def download(self, https: bool) -> float:
        """One download + enable of a new order into a new card; its milliseconds.

        Raises:
            RuntimeError: the profile was not installed, notified and enabled.
        """
        from card.uicc.builder import TEST_ICCID_BODY
        from host.lpa.demo import demo_order
        from host.lpa.es10 import Es10Client
        from host.lpa.lpa import Lpa
        from host.presets import new_card
        from host.readers.inprocess import InProcessReader

        n = next(self._ids)
        order = replace(demo_order(f"BENCH-{n}"), iccid=TEST_ICCID_BODY[:-6] + f"{n:06d}")
        self.smdp.add_order(order)
        card = new_card("euicc", rng_seed=n)
        code = f"LPA:1${self.smdp.address}${order.matching_id}"
        with Es10Client(InProcessReader(card)) as es10:
            lpa = Lpa(es10, ca_pem=self.pki.ci.pem, http_hook=None if https else self._direct)
            t0 = time.perf_counter()
            result = lpa.download(code)
            if result.installed:
                lpa.enable(result.iccid)
            elapsed = time.perf_counter() - t0
            if not (result.installed and result.notified):
                raise RuntimeError(f"download {n}: installed {result.installed}, {result.error}")
            state = {p["iccid"]: p["state"] for p in lpa.profiles()}.get(result.iccid)
            if state != "enabled":
                raise RuntimeError(f"download {n}: the profile is {state}, not enabled")
        return elapsed * 1000

    def meter(self, *, https: bool) -> Callable[[], float]:
        """A download + enable in ms per call, over HTTPS or in-process; warmed up once."""

        def run() -> float:
            return self.download(https)

        run()
        return run
