"""An SMS-centre stand-in: short messages between MSISDNs, over loopback HTTP.

Not a real SMSC (no SMPP, no MAP): the smallest thing the OTA flows need, on
the servers' web stack. A sender submits a short message for an MSISDN; the
terminal holding that MSISDN polls its inbox and gets each message as an
SMS-DELIVER TPDU (3GPP TS 23.040 §9.2.2.1) built here with the sender as TP-OA,
then the message is gone from the inbox (delivered once).

Routes (JSON, hex for bytes):

- `POST /submit` `{"from", "to", "user_data", "udhi"?, "pid"?, "dcs"?}` -> `{"id"}`:
  what an application server submits (an OTA platform, the door-lock's
  application management server).
- `POST /submit-tpdu` `{"from", "tpdu"}` -> `{"id"}`: an SMS-SUBMIT TPDU as a
  terminal sends it after the card's SEND SHORT MESSAGE; TP-DA is the recipient.
- `GET /inbox/{msisdn}` -> `{"messages": [{"id", "from", "tpdu", "user_data"}]}`.

The logic is `Smsc` (no HTTP in it); `create_app(smsc)` serves it and
`SmscClient` calls it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from card.ota import sms
from host.lpa.es9 import HttpAnswer, HttpHook, HttpRequest
from host.servers.web import HttpError, Store, json_object, role_app

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    user_data BLOB NOT NULL,
    udhi INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    dcs INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
)
"""

_MSISDN = re.compile(r"^\+?[0-9]{1,20}$")


class SmscError(ValueError):
    """A message the SMSC refuses (bad MSISDN, bad TPDU, user data over 140 octets)."""


@dataclass(frozen=True)
class Message:
    id: int
    sender: str
    recipient: str
    user_data: bytes
    udhi: bool
    pid: int
    dcs: int

    def deliver_tpdu(self) -> bytes:
        """The SMS-DELIVER the recipient's terminal receives."""
        oa = sms.Address(self.sender.lstrip("+"), 0x91 if self.sender.startswith("+") else 0x81)
        return sms.SmsDeliver(oa, self.user_data, self.udhi, self.pid, self.dcs).to_bytes()


def _msisdn(value: object) -> str:
    if not isinstance(value, str) or not _MSISDN.match(value):
        raise SmscError(f"not an MSISDN: {value!r}")
    return value


class Smsc:
    """Store and forward short messages (the logic of the role)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store(":memory:", SCHEMA)

    def submit(
        self,
        sender: str,
        recipient: str,
        user_data: bytes,
        *,
        udhi: bool = True,
        pid: int = sms.PID_DATA_DOWNLOAD,
        dcs: int = sms.DCS_8BIT_CLASS2,
    ) -> int:
        """Queue a message for `recipient`; its id."""
        _msisdn(sender)
        _msisdn(recipient)
        if len(user_data) > sms.MAX_UD:
            raise SmscError("user data over 140 octets")
        if not (0 <= pid <= 0xFF and 0 <= dcs <= 0xFF):
            raise SmscError("TP-PID and TP-DCS are one byte each")
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO messages (sender, recipient, user_data, udhi, pid, dcs)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sender, recipient, user_data, int(udhi), pid, dcs),
            )
            return int(c.lastrowid or 0)

    def submit_tpdu(self, sender: str, tpdu: bytes) -> int:
        """Queue an SMS-SUBMIT as a terminal sent it (the recipient is its TP-DA)."""
        try:
            sub = sms.SmsSubmit.from_bytes(tpdu)
        except sms.SmsError as e:
            raise SmscError(str(e)) from None
        to = sub.destination
        recipient = ("+" if to.ton_npi == 0x91 else "") + to.digits
        return self.submit(
            sender, recipient, sub.user_data, udhi=sub.udhi, pid=sub.pid, dcs=sub.dcs
        )

    def take_inbox(self, msisdn: str) -> list[Message]:
        """Every message waiting for `msisdn`, oldest first; they count as delivered."""
        _msisdn(msisdn)
        # The rows read are locked (PostgreSQL; SQLite serialises writers) and only they are
        # marked: a message queued between the SELECT and the UPDATE stays for the next poll,
        # and two polls at once hand each message out once.
        with self.store.transaction() as c:
            rows = c.execute(
                "SELECT * FROM messages WHERE recipient = ? AND delivered = 0 ORDER BY id"
                + self.store.for_update,
                (msisdn,),
            ).fetchall()
            for r in rows:
                c.execute("UPDATE messages SET delivered = 1 WHERE id = ?", (r["id"],))
        return [
            Message(
                r["id"],
                r["sender"],
                r["recipient"],
                bytes(r["user_data"]),
                bool(r["udhi"]),
                r["pid"],
                r["dcs"],
            )
            for r in rows
        ]


def _hex(body: dict[str, Any], key: str) -> bytes:
    value = body.get(key)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise HttpError(400, f"{key} must be hex")


def create_app(smsc: Smsc) -> Starlette:
    """The role's app (`cardemu server smsc` and the test fixtures serve this)."""

    async def submit(request: Request) -> JSONResponse:
        body = await json_object(request)
        try:
            n = smsc.submit(
                body.get("from"),  # type: ignore[arg-type]
                body.get("to"),  # type: ignore[arg-type]
                _hex(body, "user_data"),
                udhi=bool(body.get("udhi", True)),
                pid=int(body.get("pid", sms.PID_DATA_DOWNLOAD)),
                dcs=int(body.get("dcs", sms.DCS_8BIT_CLASS2)),
            )
        except (SmscError, TypeError, ValueError) as e:
            raise HttpError(400, str(e)) from None
        return JSONResponse({"id": n})

    async def submit_tpdu(request: Request) -> JSONResponse:
        body = await json_object(request)
        try:
            n = smsc.submit_tpdu(body.get("from"), _hex(body, "tpdu"))  # type: ignore[arg-type]
        except SmscError as e:
            raise HttpError(400, str(e)) from None
        return JSONResponse({"id": n})

    async def inbox(request: Request) -> JSONResponse:
        try:
            messages = smsc.take_inbox(request.path_params["msisdn"])
        except SmscError as e:
            raise HttpError(400, str(e)) from None
        return JSONResponse(
            {
                "messages": [
                    {
                        "id": m.id,
                        "from": m.sender,
                        "tpdu": m.deliver_tpdu().hex(),
                        "user_data": m.user_data.hex(),
                    }
                    for m in messages
                ]
            }
        )

    return role_app(
        "smsc",
        [
            Route("/submit", submit, methods=["POST"]),
            Route("/submit-tpdu", submit_tpdu, methods=["POST"]),
            Route("/inbox/{msisdn}", inbox, methods=["GET"]),
        ],
    )


class SmscClient:
    """The SMSC over HTTP (what terminals and application servers use).

    Args:
        url: the SMS centre's base URL.
        timeout: seconds per request.
        hook: wraps every exchange (`host.lpa.es9.HttpHook`: a scenario's
            `HttpRecorder` records the over-the-air leg and lets faults reach it).
    """

    def __init__(self, url: str, *, timeout: float = 10.0, hook: HttpHook | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)
        self.hook = hook

    def _exchange(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, str]:
        """(status, body text) of one request, through the hook when there is one."""
        raw = b"" if body is None else json.dumps(body).encode()

        def send() -> HttpAnswer:
            try:
                r = self._http.request(
                    method,
                    self.url + path,
                    content=raw if body is not None else None,
                    headers={"Content-Type": "application/json"} if body is not None else None,
                )
            except httpx.HTTPError as e:
                raise ConnectionError(f"SMSC {method} {path}: {e}") from e
            return r.status_code, r.reason_phrase, r.content

        if self.hook is None:
            status, _, content = send()
        else:
            request = HttpRequest("smsc", method, self.url + path, {}, raw)
            status, _, content = self.hook(request, send)
        return status, content.decode("utf-8", "replace")

    def _post(self, path: str, body: dict[str, Any]) -> int:
        status, text = self._exchange("POST", path, body)
        if status != 200:
            raise SmscError(f"SMSC answered {status}: {text[:200]}")
        return int(json.loads(text)["id"])

    def submit(self, sender: str, recipient: str, user_data: bytes, *, udhi: bool = True) -> int:
        return self._post(
            "/submit",
            {"from": sender, "to": recipient, "user_data": user_data.hex(), "udhi": udhi},
        )

    def submit_tpdu(self, sender: str, tpdu: bytes) -> int:
        return self._post("/submit-tpdu", {"from": sender, "tpdu": tpdu.hex()})

    def inbox(self, msisdn: str) -> list[tuple[str, bytes]]:
        """(sender, SMS-DELIVER TPDU) of each message waiting; they are delivered."""
        status, text = self._exchange("GET", f"/inbox/{msisdn}", None)
        if status != 200:
            raise SmscError(f"SMSC answered {status}: {text[:200]}")
        return [(m["from"], bytes.fromhex(m["tpdu"])) for m in json.loads(text)["messages"]]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SmscClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
