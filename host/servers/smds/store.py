"""The SM-DS's store: event records and ES11 sessions in SQLite (GSMA SGP.22 v2.x §3.6, §5.8).

    events = EventStore("smds.sqlite")
    events.register(eid, "EVT-1", "smdp.example.com")
    events.for_eid(eid)          # [EventRecord(eid, "EVT-1", "smdp.example.com", ...)]

An event record (SGP.22 §3.6.1) is (EID, EventID, RSP server address): the
address of the SM-DP+ that holds something for that eUICC, or of the
alternative SM-DS to ask next. An EventID is unique per EID.

A role built on the SM-DS (the eKYC relay server) extends the store with its
own tables: subclass `EventStore` and add to `SCHEMA`, or pass `extra_schema`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from host.servers.web import Store

__all__ = ["EventRecord", "EventStore", "STORE_KIND", "STORE_TABLES"]

#: what `cardemu smds` calls an SM-DS database, and its tables
STORE_KIND = "an SM-DS store"
STORE_TABLES = ("events", "sessions")


@dataclass(frozen=True)
class EventRecord:
    """One event record (SGP.22 §3.6.1).

    Attributes:
        eid: the eUICC the event is for.
        event_id: the EventID (the matching ID the LPA then sends to `address`).
        address: the RSP server address: an SM-DP+, or an alternative SM-DS.
        registered: when it was registered (seconds since the epoch).
        forwarded_to: the root SM-DS this registration was forwarded to, if any.
    """

    eid: str
    event_id: str
    address: str
    registered: float
    forwarded_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ES11 EventEntries form (§6.5.2.11): eventId and rspServerAddress."""
        return {"eventId": self.event_id, "rspServerAddress": self.address}


class EventStore:
    """Event records and ES11 sessions of one SM-DS, in one SQLite store.

    Args:
        db: a database file, ":memory:", a `postgresql://` URL (several SM-DS workers)
            or an open `Store` (the schema is added).
        extra_schema: more CREATE TABLE IF NOT EXISTS statements (a role built on it).
        clock: seconds since the epoch.
    """

    SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    eid TEXT NOT NULL,
    event_id TEXT NOT NULL,
    address TEXT NOT NULL,
    registered REAL NOT NULL,
    forwarded_to TEXT,
    PRIMARY KEY (eid, event_id)
);
CREATE TABLE IF NOT EXISTS sessions (
    transaction_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL,
    ci_ski BLOB NOT NULL,
    euicc_challenge BLOB NOT NULL,
    server_challenge BLOB NOT NULL,
    eid TEXT,
    outcome TEXT
)
"""

    def __init__(
        self,
        db: Store | str | os.PathLike[str] = ":memory:",
        *,
        extra_schema: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        schema = self.SCHEMA + (";" + extra_schema if extra_schema else "")
        if isinstance(db, Store):
            db.apply_schema(schema)
            self.store = db
        else:
            self.store = Store(db, schema)
        self.clock = clock

    # -- event records (ES12) -----------------------------------------------------------

    def register(
        self, eid: str, event_id: str, address: str, *, forwarded_to: str | None = None
    ) -> EventRecord:
        """Record an event.

        Raises:
            KeyError: this EID already has an event with this EventID.
        """
        record = EventRecord(eid, event_id, address, self.clock(), forwarded_to)
        try:
            with self.store.transaction() as c:
                c.execute(
                    "INSERT INTO events (eid, event_id, address, registered, forwarded_to)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (eid, event_id, address, record.registered, forwarded_to),
                )
        except Exception as e:  # the database's own IntegrityError / UniqueViolation
            if Store.is_conflict(e):
                raise KeyError(f"EID {eid} already has event {event_id!r}") from None
            raise
        return record

    def delete(self, eid: str, event_id: str) -> EventRecord:
        """Remove an event and return it.

        Raises:
            KeyError: no such event.
        """
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM events WHERE eid = ? AND event_id = ?", (eid, event_id)
            ).fetchone()
            if row is None:
                raise KeyError(f"EID {eid} has no event {event_id!r}")
            c.execute("DELETE FROM events WHERE eid = ? AND event_id = ?", (eid, event_id))
        return _record(row)

    def get(self, eid: str, event_id: str) -> EventRecord | None:
        """One event, or None."""
        row = self.store.query_one(
            "SELECT * FROM events WHERE eid = ? AND event_id = ?", (eid, event_id)
        )
        return None if row is None else _record(row)

    def for_eid(self, eid: str) -> list[EventRecord]:
        """The events for one eUICC, oldest first."""
        rows = self.store.query(
            "SELECT * FROM events WHERE eid = ? ORDER BY registered, event_id", (eid,)
        )
        return [_record(r) for r in rows]

    def all(self) -> list[EventRecord]:
        """Every event, by EID then age."""
        rows = self.store.query("SELECT * FROM events ORDER BY eid, registered, event_id")
        return [_record(r) for r in rows]

    def close(self) -> None:
        """Close the database."""
        self.store.close()


def _record(row: Any) -> EventRecord:
    return EventRecord(
        row["eid"], row["event_id"], row["address"], row["registered"], row["forwarded_to"]
    )


def stored_events(path: str | os.PathLike[str]) -> list[EventRecord]:
    """The events in an SM-DS store file, read without changing it.

    Raises:
        host.servers.readonly.NotAStore: no such file, or it is not an SM-DS store.
    """
    from host.servers.readonly import open_read_only

    conn = open_read_only(path, what=STORE_KIND, tables=STORE_TABLES)
    try:
        rows = conn.execute("SELECT * FROM events ORDER BY eid, registered, event_id").fetchall()
    finally:
        conn.close()
    return [_record(r) for r in rows]
