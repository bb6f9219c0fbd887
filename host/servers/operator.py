"""An operator stand-in: the ES2+ caller of an SM-DP+ and the receiver of its download reports.

GSMA SGP.22 v2.x §5.3: the operator orders profiles with ES2+ (`Es2Client`),
and the SM-DP+ calls back its HandleDownloadProgressInfo (§5.3.5) at each
step of the download. This role is that callback: it records every report in
SQLite, so a test or a user sees what reached the operator.

    op = Operator()
    with op.serve() as server:             # http://127.0.0.1:<port>, loopback
        smdp.operators["OPERATOR-1"] = OperatorLink(f"localhost:{server.port}", tls=False)
        ...
        op.reports()                        # [{"iccid": ..., "notificationPointId": 1, ...}, ...]
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from host.es9plus import ES2P_PATHS, SC_BAD_REQUEST, Es9Error
from host.servers.rsp_http import rsp_route
from host.servers.web import RoleServer, Store, TlsFiles, role_app

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["Operator", "create_app"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    requester TEXT,
    iccid TEXT NOT NULL,
    eid TEXT,
    point INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
)
"""


class Operator:
    """The operator's end of ES2+: HandleDownloadProgressInfo received and recorded.

    Args:
        store: a database file, ":memory:" or an open `Store`.
        clock: seconds since the epoch.
        on_report: called with each report (the body without its header) once recorded.
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str] = ":memory:",
        *,
        clock: Callable[[], float] = time.time,
        on_report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.on_report = on_report
        self.store = Store.of(store, _SCHEMA)
        self._clock = clock

    def handle_download_progress_info(self, body: dict[str, Any]) -> None:
        """ES2+.HandleDownloadProgressInfo (§5.3.5): record it; answer 204."""
        iccid, point = body.get("iccid"), body.get("notificationPointId")
        status = body.get("notificationPointStatus")
        if not isinstance(iccid, str) or not isinstance(point, int) or not isinstance(status, dict):
            raise Es9Error.of(
                SC_BAD_REQUEST, "iccid, notificationPointId and notificationPointStatus are needed"
            )
        header = body.get("header") if isinstance(body.get("header"), dict) else {}
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO reports (received, requester, iccid, eid, point, status, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self._clock(),
                    (header or {}).get("functionRequesterIdentifier"),
                    iccid,
                    body.get("eid"),
                    point,
                    str(status.get("status", "")),
                    json.dumps({k: v for k, v in body.items() if k != "header"}),
                ),
            )
        if self.on_report is not None:
            self.on_report({k: v for k, v in body.items() if k != "header"})

    def reports(self, iccid: str | None = None) -> list[dict[str, Any]]:
        """The reports received, oldest first (the request bodies without their header)."""
        rows = (
            self.store.query("SELECT body FROM reports ORDER BY id")
            if iccid is None
            else self.store.query("SELECT body FROM reports WHERE iccid = ? ORDER BY id", (iccid,))
        )
        return [json.loads(r["body"]) for r in rows]

    def app(self) -> Starlette:
        """The HandleDownloadProgressInfo route on the servers' web stack."""
        return create_app(self)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: TlsFiles | None = None,
        allow_remote: bool = False,
    ) -> RoleServer:
        """A `RoleServer` for the route (not started: use `with` or `.start()`)."""
        return RoleServer(
            self.app(), host, port, tls=tls, allow_remote=allow_remote, name="operator"
        )


def create_app(operator: Operator) -> Starlette:
    """The operator's app: ES2+.HandleDownloadProgressInfo."""
    route = rsp_route(
        ES2P_PATHS["handleDownloadProgressInfo"],
        "ES2+.handleDownloadProgressInfo",
        operator.handle_download_progress_info,
    )
    return role_app("operator", [route])
