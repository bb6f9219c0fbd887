"""The SM-DS role (GSMA SGP.22 v2.x §3.6): event records, ES11 to LPAs, ES12 from SM-DP+ servers.

- `server.SmDs`: the ES11/ES12 functions and the Python API (`register`, `delete`).
- `store.EventStore`: event records and ES11 sessions in SQLite (extensible).
- `app.create_app`: the Starlette app (ES11 + ES12 routes, plus a role's own).
- `client.Es12Client`: what an SM-DP+ or an alternative SM-DS calls.
"""

from host.servers.smds.app import create_app
from host.servers.smds.client import Es12Client
from host.servers.smds.server import SmDs
from host.servers.smds.store import EventRecord, EventStore

__all__ = ["EventRecord", "EventStore", "Es12Client", "SmDs", "create_app"]
