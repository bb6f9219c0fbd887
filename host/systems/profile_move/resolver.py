"""Seed 003's address resolution server (111): where each eSE's profile manager and each MNO's
provider are (steps 520, 555, 605, 615).

The seed allows a DNS-like distributed service; here it is one directory in
SQLite. A manager's entry carries the eSE's certificate too, so the provider
learns the key it seals a profile for from the same lookup (step 555).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from host.servers.web import Store
from host.systems.profile_move.common import Refused, json_app, text

__all__ = ["Resolver", "create_app", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS managers (ese_id TEXT PRIMARY KEY, url TEXT NOT NULL,
    certificate TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS providers (mno TEXT PRIMARY KEY, url TEXT NOT NULL)
"""


class Resolver:
    """The directory (see the module docstring)."""

    def __init__(self, store: str) -> None:
        self.store = Store(store, SCHEMA)

    def register_manager(self, ese_id: str, url: str, certificate: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO managers VALUES (?, ?, ?) ON CONFLICT (ese_id)"
                " DO UPDATE SET url = excluded.url, certificate = excluded.certificate",
                (ese_id.upper(), url, certificate),
            )

    def register_provider(self, mno: str, url: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO providers VALUES (?, ?)"
                " ON CONFLICT (mno) DO UPDATE SET url = excluded.url",
                (mno, url),
            )

    def manager(self, body: dict[str, Any], ese_id: str) -> dict[str, Any]:
        row = self.store.query_one("SELECT * FROM managers WHERE ese_id = ?", (ese_id.upper(),))
        if row is None:
            raise Refused(404, f"no profile manager for eSE {ese_id}")
        return {"url": row["url"], "certificate": row["certificate"]}

    def provider(self, body: dict[str, Any], mno: str) -> dict[str, Any]:
        row = self.store.query_one("SELECT url FROM providers WHERE mno = ?", (mno,))
        if row is None:
            raise Refused(404, f"no profile provider for MNO {mno}")
        return {"url": row["url"]}

    def put_manager(self, body: dict[str, Any], ese_id: str) -> None:
        self.register_manager(ese_id, text(body, "url"), text(body, "certificate", limit=4096))

    def put_provider(self, body: dict[str, Any], mno: str) -> None:
        self.register_provider(mno, text(body, "url"))

    def close(self) -> None:
        self.store.close()


def create_app(resolver: Resolver) -> Starlette:
    return json_app(
        "move-resolver",
        [
            ("GET", "/managers/{ese_id}", resolver.manager),
            ("PUT", "/managers/{ese_id}", resolver.put_manager),
            ("GET", "/providers/{mno}", resolver.provider),
            ("PUT", "/providers/{mno}", resolver.put_provider),
        ],
    )
