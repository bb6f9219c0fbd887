"""The relay server of seed 000 (S27-S32, S53-S56): the SM-DS, extended to hand over the
authentication server's certificate on a first contract.

In GSMA terms the relay server is an SM-DS, and here it is
cardemu's own (`host.servers.smds.SmDs`, SGP.22 ES11/ES12): a carrier's
SM-DP+ registers the download event of each profile it orders for an eUICC
(ES12.RegisterEvent) and deletes it once the profile is installed
(ES12.DeleteEvent); the phone's LPA retrieves its events (ES11, authenticated
by the eUICC's signature) and downloads each profile from the SM-DP+ the event
names, by ES9+/ES10. A profile in clear through a relay would defeat the
eUICC's security, so "the relay hands over the profile" (S30-S32) means it
hands over the event that leads the LPA to it.

What the seed adds, beside the SM-DS's routes (JSON; refusals are problems with
a `reason`, `host.systems.ekyc.http`):

- `POST /keys` {dak, eid, owner[, eventId]}: a management server claims a
  data-acquisition key for one contract before it issues anything under it,
  and names the contract's event once ordered. Every carrier registers here,
  so a key replayed at another carrier is caught here on a later contract (a
  first contract's is caught by the authentication server too): the same
  claim again is accepted (a retry), any other is refused "replayed-key"
  (409). Keys are never released: a key is good for one contract.
- `POST /certificate` {dak, eid}: the phone's request on a first contract (S27):
  the relay fetches the certificate the authentication server stored under the
  key (S28-S29) and hands it over (S32). Refused "unknown-key" (404) for a key
  no carrier claimed, "eid" (403) for another eUICC, "no-event" (409) when no
  profile waits under the key (the certificate goes with a profile).
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from host.lpa.es9 import HttpHook
from host.pki import TestPki
from host.servers.smds import EventStore, SmDs
from host.servers.smds import create_app as smds_app
from host.servers.web import Store
from host.systems.ekyc.auth import check_dak, check_eid
from host.systems.ekyc.http import JsonClient, Refused, endpoint

__all__ = ["Relay", "create_app"]

_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    dak TEXT PRIMARY KEY,
    eid TEXT NOT NULL,
    owner TEXT NOT NULL,
    event_id TEXT,
    claimed REAL NOT NULL
)
"""


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise Refused(400, "bad-request", f"{name} is missing or not a short string")
    return value


class Relay(SmDs):
    """The relay server: cardemu's SM-DS with the seed's key claims and certificate handover.

    Args:
        pki: the GSMA test PKI (CERT.DSauth and CERT.DStls for the address's host).
        address: the SM-DS address LPAs and SM-DP+ servers use (host:port).
        store: its SQLite file (events, ES11 sessions, claimed keys).
        auth_url: the authentication server (where certificates are fetched).
        auth_ca_pem: the CA the authentication server's HTTPS certificate chains to.
        hook: wraps the relay's own requests (a scenario's recorder, faults).
    """

    def __init__(
        self,
        pki: TestPki,
        *,
        address: str,
        store: Store | str | os.PathLike[str],
        auth_url: str,
        auth_ca_pem: bytes | None = None,
        hook: HttpHook | None = None,
    ) -> None:
        super().__init__(pki, address=address, store=EventStore(store, extra_schema=_KEYS_SCHEMA))
        self.auth = JsonClient(auth_url, ca_pem=auth_ca_pem, hook=hook)

    def close(self) -> None:
        self.store.close()

    def claim(self, body: dict[str, Any]) -> dict[str, Any]:
        """A management server claims a data-acquisition key (and later names its event)."""
        dak, eid, owner = (
            check_dak(body.get("dak")),
            check_eid(body.get("eid")),
            _text(body, "owner"),
        )
        event_id = body.get("eventId")
        if event_id is not None:
            event_id = _text(body, "eventId")
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM keys WHERE dak = ?" + self.store.for_update, (dak,)
            ).fetchone()
            if row is None:
                c.execute(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, ?)",
                    (dak, eid, owner, event_id, self.events.clock()),
                )
                return {"claimed": True}
            if (row["eid"], row["owner"]) != (eid, owner):
                raise Refused(409, "replayed-key", "the key was used for another contract")
            if event_id is not None:
                c.execute("UPDATE keys SET event_id = ? WHERE dak = ?", (event_id, dak))
            return {"claimed": False}

    def certificate(self, body: dict[str, Any]) -> dict[str, Any]:
        """The phone's request on a first contract (S27): the certificate (S28-S29, S32)."""
        dak, eid = check_dak(body.get("dak")), check_eid(body.get("eid"))
        row = self.store.query_one("SELECT * FROM keys WHERE dak = ?", (dak,))
        if row is None:
            raise Refused(404, "unknown-key", "no contract under this data-acquisition key")
        if row["eid"] != eid:
            raise Refused(403, "eid", "the contract under this key is for another eUICC")
        if row["event_id"] is None or self.events.get(eid, row["event_id"]) is None:
            raise Refused(409, "no-event", "no profile waits under this data-acquisition key")
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
        return {"certificate": answer["certificate"], "eventId": row["event_id"]}


def create_app(relay: Relay) -> Starlette:
    """The SM-DS's ES11/ES12 routes and the seed's two, in one app."""
    return smds_app(
        relay,
        extra=[
            Route("/keys", endpoint(relay.claim), methods=["POST"]),
            Route("/certificate", endpoint(relay.certificate), methods=["POST"]),
        ],
        name="ekyc-relay",
    )
