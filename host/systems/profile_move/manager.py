"""Seed 003's profile manager (103, 104): one per eSE, the provider's way to its terminal.

- `POST /orders` (steps 525, 560, 575, 207): an order for the eSE (backup,
  install, delete) from the provider, kept in SQLite under its order ID: the
  same order again changes nothing and answers its state.
- The worker (`tick`) pushes each order without a result to the terminal
  (step 530; the seed sends it by SMS when it knows the MSISDN) until the
  terminal answers; in-process the push is a local link to the terminal, a
  standalone manager leaves orders for the terminal to fetch (`GET /orders`).
- `POST /orders/{id}/result` (step 540): the terminal's answer; the first one stands.
- The worker delivers each result to the provider (step 545) until the provider takes it.
- FIG. 6: `POST /move-requests` (step 610) from the eSE's own terminal; the
  worker finds the MNO's provider through the resolver (615) and forwards the
  request (620), its request ID the provider's idempotency key. The seed does
  not say how the terminal proves itself to its manager; the manager only
  accepts a request whose source is an eSE it manages (a deployment puts the
  device's TLS client certificate in front of that).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from host.servers.web import SEQ_SCHEMA, Store
from host.systems.profile_move.common import Refused, json_app, text

__all__ = ["ProfileManager", "create_app", "SCHEMA", "ORDER_KINDS"]

ORDER_KINDS = ("backup", "install", "delete")

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, move_id TEXT NOT NULL,
    kind TEXT NOT NULL, ese_id TEXT NOT NULL, callback TEXT NOT NULL, args TEXT NOT NULL,
    result TEXT, delivered INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, body TEXT NOT NULL,
    move_id TEXT);
"""
    + SEQ_SCHEMA
)


class ProfileManager:
    """A profile manager (see the module docstring).

    Args:
        store: the SQLite file.
        ese_ids: the eSEs it manages (hex).
        resolver_url: the address resolution server.
        client: makes the HTTP client for a URL (the recorder hooks in here).
        ca_pem: the CA (PEM) the default client checks HTTPS servers against
            (`common.move_ca_pem`); None trusts the system's store.
        push: delivers an order to the terminal (None: the terminal polls).
        on_step: told when a seed step completes (number, detail).
    """

    def __init__(
        self,
        store: str,
        ese_ids: tuple[str, ...],
        resolver_url: str = "",
        *,
        client: Callable[[str], Any] | None = None,
        ca_pem: bytes | None = None,
        push: Callable[[dict[str, Any]], None] | None = None,
        on_step: Callable[[int, str], None] | None = None,
    ) -> None:
        from host.systems.repository.terminal import JsonClient

        self.store = Store(store, SCHEMA)
        self.ese_ids = tuple(e.upper() for e in ese_ids)
        self.resolver_url = resolver_url
        self.client = client or (lambda url: JsonClient(url, ca_pem=ca_pem))
        self.push = push
        self.on_step = on_step or (lambda n, d: None)

    # -- from the provider ------------------------------------------------------------

    def order(self, body: dict[str, Any]) -> dict[str, Any]:
        order_id, kind = text(body, "order_id"), text(body, "kind")
        ese_id = text(body, "ese_id").upper()
        if kind not in ORDER_KINDS:
            raise Refused(400, f"kind: one of {', '.join(ORDER_KINDS)}")
        if ese_id not in self.ese_ids:
            raise Refused(404, f"eSE {ese_id} is not managed here")
        args = body.get("args")
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            raise Refused(400, "args: an object of strings")
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT result FROM orders WHERE order_id = ?" + self.store.for_update, (order_id,)
            ).fetchone()
            if row is None:
                seq = self.store.next_seq(c, "orders")
                c.execute(
                    "INSERT INTO orders (order_id, move_id, kind, ese_id, callback, args, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (order_id, text(body, "move_id"), kind, ese_id, text(body, "callback"),
                     json.dumps(args), seq),
                )  # fmt: skip
                return {"state": "queued"}
            if row["result"] is not None:
                # The provider asks again: it did not keep the answer; deliver it again.
                c.execute("UPDATE orders SET delivered = 0 WHERE order_id = ?", (order_id,))
        return {"state": "queued" if row["result"] is None else "answered"}

    # -- from the terminal -------------------------------------------------------------

    def pending(self, body: dict[str, Any]) -> dict[str, Any]:
        ese_id = text(body, "ese_id").upper()
        rows = self.store.query(
            "SELECT * FROM orders WHERE ese_id = ? AND result IS NULL ORDER BY seq", (ese_id,)
        )
        return {"orders": [self._order_doc(r) for r in rows]}

    def result(self, body: dict[str, Any], order_id: str) -> dict[str, Any]:
        status = text(body, "status")
        if status not in ("ok", "refused"):
            raise Refused(400, "status: ok or refused")
        doc = {
            "status": status,
            "data": str(body.get("data") or ""),
            "sw": str(body.get("sw") or ""),
        }
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT result FROM orders WHERE order_id = ?" + self.store.for_update, (order_id,)
            ).fetchone()
            if row is None:
                raise Refused(404, "no such order")
            if row["result"] is None:
                c.execute(
                    "UPDATE orders SET result = ? WHERE order_id = ?", (json.dumps(doc), order_id)
                )
        return {"state": "answered"}

    def request_move(self, body: dict[str, Any]) -> dict[str, Any]:
        """Step 610 (FIG. 6): a move request from the terminal of an eSE managed here."""
        request_id = text(body, "request_id")
        source = text(body, "source_ese").upper()
        if source not in self.ese_ids:
            raise Refused(403, "the source eSE is not managed here")
        doc = {
            "request_id": request_id,
            "source_ese": source,
            "target_ese": text(body, "target_ese").upper(),
            "iccid": text(body, "iccid", limit=20),
            "mno": text(body, "mno", limit=64),
            "parts": int(body.get("parts", 7)) & 7,
        }
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO requests (request_id, body) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (request_id, json.dumps(doc)),
            )
        return {"request_id": request_id, "state": "accepted"}

    def move_of(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        """What became of a FIG. 6 request: the provider's move ID once forwarded."""
        row = self.store.query_one("SELECT move_id FROM requests WHERE request_id = ?",
                                   (request_id,))  # fmt: skip
        if row is None:
            raise Refused(404, "no such request")
        return {"request_id": request_id, "move_id": row["move_id"]}

    # -- the worker ----------------------------------------------------------------------

    @staticmethod
    def _order_doc(row: Any) -> dict[str, Any]:
        return {
            "order_id": row["order_id"],
            "move_id": row["move_id"],
            "kind": row["kind"],
            "ese_id": row["ese_id"],
            "args": json.loads(row["args"]),
        }

    def tick(self) -> bool:
        """Forward FIG. 6 requests, push orders to the terminal, deliver results."""
        from host.systems.repository.terminal import ServerRefused

        did = False
        for req in self.store.query("SELECT * FROM requests WHERE move_id IS NULL"):
            doc = json.loads(req["body"])
            try:
                where = self.client(self.resolver_url).request("GET", f"/providers/{doc['mno']}")
                self.on_step(615, f"provider of {doc['mno']} at {where['url']}")
                out = self.client(where["url"]).request(
                    "POST", "/moves", {**doc, "trigger": "terminal"}
                )
            except (OSError, ServerRefused, KeyError, TypeError):
                continue
            with self.store.transaction() as c:
                c.execute(
                    "UPDATE requests SET move_id = ? WHERE request_id = ?",
                    (out["move_id"], req["request_id"]),
                )
            self.on_step(620, f"forwarded: move {out['move_id'][:8]}")
            did = True
        if self.push is not None:
            for row in self.store.query("SELECT * FROM orders WHERE result IS NULL ORDER BY seq"):
                self.push(self._order_doc(row))
                did = True
        for row in self.store.query(
            "SELECT * FROM orders WHERE result IS NOT NULL AND delivered = 0 ORDER BY seq"
        ):
            result = json.loads(row["result"])
            try:
                self.client(row["callback"]).request(
                    "POST",
                    f"/moves/{row['move_id']}/results",
                    {"order_id": row["order_id"], **result},
                )
            except (OSError, ServerRefused):
                continue
            with self.store.transaction() as c:
                c.execute("UPDATE orders SET delivered = 1 WHERE order_id = ?", (row["order_id"],))
            if row["kind"] == "backup":
                self.on_step(545, "the sealed backup delivered to the provider")
            did = True
        return did

    def close(self) -> None:
        self.store.close()


def create_app(manager: ProfileManager) -> Starlette:
    return json_app(
        "move-manager",
        [
            ("POST", "/orders", manager.order),
            ("GET", "/orders", manager.pending),
            ("POST", "/orders/{order_id}/result", manager.result),
            ("POST", "/move-requests", manager.request_move),
            ("GET", "/move-requests/{request_id}", manager.move_of),
        ],
    )
