"""The relay server of seed 000 (S27-S32, S53-S56): an SM-DS that also hands over the
authentication server's certificate on a first contract.

In GSMA terms (DESIGN.md §4.A) the relay server is an SM-DS: management
servers register a download event for an eUICC (ES12.RegisterEvent) and delete
it once the profile is installed (ES12.DeleteEvent); the terminal's LPA asks
for its events (ES11) and downloads the profile from the SM-DP+ the event
names, by ES9+/ES10: a profile in clear through a relay would defeat the
eUICC's security, so "the relay hands over the profile" means it hands over
the event that leads the LPA to it. The seed's addition: the events are found
by the data-acquisition key, and on a first contract the relay fetches the
authentication server's certificate stored under that key (S28-S29) and hands
it over with the event (S32).

The event store sits behind one small interface, `EventStore`, so the SM-DS of
the eUICC work (SGP.22 ES11/ES12) can take the place of `SqliteEventStore`
without touching the rest: this module's own store is SM-DS-shaped (event ID
= the order's matching ID, the SM-DP+ address, the EID) and keeps nothing else.

Routes (JSON; refusals are problems with a `reason`):

- `POST /keys` {dak, eid, owner}: a management server claims a data-acquisition key
  for one contract before it issues anything under it. Every carrier registers its
  profiles here, so this is where a key replayed at another carrier is caught on a
  later contract (a first contract's is caught by the authentication server too):
  the same claim again is accepted (a retry), any other is refused "replayed-key"
  (409). Keys are never released: a key is good for one contract.
- `POST /events` {eventId, eid, dak, smdpAddress}: RegisterEvent. The same event
  again is accepted (a retry); another event under its ID is refused (409).
- `POST /events/delete` {eventId, smdpAddress}: DeleteEvent (gone already: fine).
- `POST /discover` {dak, eid, certificate}: the events under a key for that EID, and
  the certificate when asked. An unknown key is refused "unknown-key" (404), an
  EID that is not the events' "eid" (403).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.routing import Route

from host.lpa.es9 import HttpHook
from host.servers.web import Store, role_app
from host.systems.ekyc.auth import check_dak, check_eid
from host.systems.ekyc.http import JsonClient, Refused, endpoint

__all__ = ["Event", "EventStore", "Relay", "SqliteEventStore", "create_app"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT NOT NULL,
    smdp_address TEXT NOT NULL,
    eid TEXT NOT NULL,
    dak TEXT NOT NULL,
    registered REAL NOT NULL,
    PRIMARY KEY (event_id, smdp_address)
);
CREATE INDEX IF NOT EXISTS events_by_dak ON events (dak);
CREATE TABLE IF NOT EXISTS keys (
    dak TEXT PRIMARY KEY,
    eid TEXT NOT NULL,
    owner TEXT NOT NULL,
    claimed REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Event:
    """A download event (SGP.22 §3.6: EventID, the SM-DP+ address), with its EID and key."""

    event_id: str
    smdp_address: str
    eid: str
    dak: str

    def to_json(self) -> dict[str, str]:
        return {"eventId": self.event_id, "smdpAddress": self.smdp_address}


class EventStore(Protocol):
    """What the relay needs of an SM-DS: register, delete, find by data-acquisition key."""

    def register(self, event: Event) -> bool:
        """Add an event (ES12.RegisterEvent); False when that very event is there already.

        Raises:
            Refused: 409 when another event has its ID at that SM-DP+.
        """
        ...

    def delete(self, event_id: str, smdp_address: str) -> bool:
        """Remove an event (ES12.DeleteEvent); False when it was not there."""
        ...

    def by_key(self, dak: str) -> list[Event]:
        """The events registered under a data-acquisition key."""
        ...

    def all(self) -> list[Event]:
        """Every event (for checks and reports)."""
        ...

    def claim(self, dak: str, eid: str, owner: str) -> bool:
        """Claim a data-acquisition key for one contract; False when `owner` holds it already.

        Raises:
            Refused: 409 "replayed-key" when someone else holds it.
        """
        ...


class SqliteEventStore:
    """The relay's own SM-DS-shaped event store, in its SQLite file."""

    def __init__(
        self, store: Store | str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store, _SCHEMA)
        self._clock = clock

    def register(self, event: Event) -> bool:
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM events WHERE event_id = ? AND smdp_address = ?",
                (event.event_id, event.smdp_address),
            ).fetchone()
            if row is not None:
                if (row["eid"], row["dak"]) != (event.eid, event.dak):
                    raise Refused(409, "event-conflict", "another event has this ID")
                return False
            c.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                (event.event_id, event.smdp_address, event.eid, event.dak, self._clock()),
            )
            return True

    def delete(self, event_id: str, smdp_address: str) -> bool:
        with self.store.transaction() as c:
            cur = c.execute(
                "DELETE FROM events WHERE event_id = ? AND smdp_address = ?",
                (event_id, smdp_address),
            )
            return cur.rowcount > 0

    def by_key(self, dak: str) -> list[Event]:
        return [
            Event(r["event_id"], r["smdp_address"], r["eid"], r["dak"])
            for r in self.store.query("SELECT * FROM events WHERE dak = ? ORDER BY rowid", (dak,))
        ]

    def all(self) -> list[Event]:
        return [
            Event(r["event_id"], r["smdp_address"], r["eid"], r["dak"])
            for r in self.store.query("SELECT * FROM events ORDER BY rowid")
        ]

    def claim(self, dak: str, eid: str, owner: str) -> bool:
        with self.store.transaction() as c:
            row = c.execute("SELECT * FROM keys WHERE dak = ?", (dak,)).fetchone()
            if row is not None:
                if (row["eid"], row["owner"]) != (eid, owner):
                    raise Refused(
                        409,
                        "replayed-key",
                        "this data-acquisition key was used for another contract",
                    )
                return False
            c.execute("INSERT INTO keys VALUES (?, ?, ?, ?)", (dak, eid, owner, self._clock()))
            return True

    def close(self) -> None:
        self.store.close()


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise Refused(400, "bad-request", f"{name} is missing or not a short string")
    return value


class Relay:
    """The relay server's logic.

    Args:
        events: the SM-DS's event store.
        auth_url: the authentication server (where certificates are fetched).
        hook: wraps the relay's own requests (a scenario's recorder, faults).
    """

    def __init__(self, events: EventStore, *, auth_url: str, hook: HttpHook | None = None) -> None:
        self.events = events
        self.auth = JsonClient(auth_url, hook=hook)

    def close(self) -> None:
        close = getattr(self.events, "close", None)
        if close is not None:
            close()

    def claim(self, body: dict[str, Any]) -> dict[str, Any]:
        """A management server claims a data-acquisition key for one contract."""
        dak, eid = check_dak(body.get("dak")), check_eid(body.get("eid"))
        return {"claimed": self.events.claim(dak, eid, _text(body, "owner"))}

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES12.RegisterEvent, by a management server (S26, S52)."""
        event = Event(
            _text(body, "eventId"),
            _text(body, "smdpAddress"),
            check_eid(body.get("eid")),
            check_dak(body.get("dak")),
        )
        return {"registered": self.events.register(event)}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES12.DeleteEvent, by a management server once the profile is installed."""
        return {"deleted": self.events.delete(_text(body, "eventId"), _text(body, "smdpAddress"))}

    def discover(self, body: dict[str, Any]) -> dict[str, Any]:
        """The terminal's request (S27, S53): the events, and the certificate if asked (S28-S32)."""
        dak = check_dak(body.get("dak"))
        eid = check_eid(body.get("eid"))
        found = self.events.by_key(dak)
        if not found:
            raise Refused(404, "unknown-key", "no event under this data-acquisition key")
        if any(e.eid != eid for e in found):
            raise Refused(403, "eid", "the events under this key are for another eUICC")
        out: dict[str, Any] = {"events": [e.to_json() for e in found]}
        if body.get("certificate"):
            try:
                answer = self.auth.get(f"/certificates/{dak}")
            except Refused as e:
                raise Refused(
                    404 if e.status == 404 else 502,
                    e.reason if e.status == 404 else "auth-unavailable",
                    f"the authentication server: {e.detail}",
                ) from None
            except OSError as e:
                raise Refused(502, "auth-unavailable", f"the authentication server: {e}") from None
            out["certificate"] = answer["certificate"]
        return out


def create_app(relay: Relay) -> Starlette:
    """The relay server's routes on the servers' web stack."""
    return role_app(
        "ekyc-relay",
        [
            Route("/keys", endpoint(relay.claim), methods=["POST"]),
            Route("/events", endpoint(relay.register), methods=["POST"]),
            Route("/events/delete", endpoint(relay.delete), methods=["POST"]),
            Route("/discover", endpoint(relay.discover), methods=["POST"]),
        ],
    )
