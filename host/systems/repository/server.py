"""The personal information server of seed 002 (the holder's repository): logic and HTTP routes.

`Repository` is the plain class (no HTTP in it); `create_app(repo)` puts it on
the common web stack. What it does, in the seed's steps:

- ST36-ST37 `open_session(terminal_id, channel)`: a session with a registered
  counter terminal, which names the logical channel it opened to the card.
- ST38-ST39 `start_secure(sid)`: mutual authentication with the card through
  the terminal (`card.sm.auth`, the repository's certificate CHR "REP..."),
  then secure messaging on every APDU (a `CardJob` the terminal pumps).
- ST40-ST41 `use_terminal_key(sid, key_id)`: the terminal's public key, by ID,
  from the repository's terminal registry.
- ST42-ST47 `start_card_key(sid)`: the card generates a key pair; its public
  key is published by ID (`card_key(key_id)`).
- ST52-ST57 `start_read(sid, credential_id)`: the credential goes to the card
  under SM, the card signs it; a one-time token is issued (kept in SQLite with
  the signed credential, single-use, expiring) and sent to the card under SM.
- ST61-ST64 `disclose(sid, token)`: the token checked (this session's, unused,
  unexpired, for a read), the disclosure logged and the token spent in one
  transaction, then the card-signed credential released.
- ST72-ST74 `start_write(sid, credential_id)`: a token through the card.
- ST79-ST83 `store_credential(sid, token, credential_id, credential, signature)`:
  token and the terminal's signature checked, history logged and the
  credential stored in one transaction.

Refusals raise `Refused` (an HTTP problem 403/404/409 at the edge); a refusal
writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from card.crypto.keys import EcKeyPair, EcPublicKey
from card.sm.auth import TerminalAuthentication
from card.sm.cvc import ec_verify, parse_public_key_template
from host.readers.base import Reader
from host.readers.sm import SmReader
from host.servers.web import (
    HttpError,
    Refused,
    Store,
    hex_field,
    json_object,
    off_loop,
    role_app,
    text_field,
)
from host.systems.repository.card import ChannelReader, RepositoryCard
from host.systems.repository.pipe import CardJob, CardPipe, JobError, mark, poll

__all__ = ["Refused", "Repository", "create_app", "key_id_of", "SCHEMA"]

TOKEN_SIZE = 16
DEFAULT_TOKEN_TTL = 120.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id TEXT PRIMARY KEY, key_id TEXT UNIQUE NOT NULL, public_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS card_keys (key_id TEXT PRIMARY KEY, public_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (
    credential_id TEXT PRIMARY KEY, data BLOB NOT NULL, written_by TEXT, signature BLOB);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, session TEXT NOT NULL, purpose TEXT NOT NULL,
    credential_id TEXT NOT NULL, signed BLOB, card_key_id TEXT,
    expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS disclosures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, terminal_id TEXT NOT NULL,
    credential_id TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, terminal_id TEXT NOT NULL,
    credential_id TEXT NOT NULL, at REAL NOT NULL)
"""


def key_id_of(template: bytes) -> bytes:
    """RFC 7093 §2 method 1 over the EC point of a 7F49 template (as the card computes it)."""
    return hashlib.sha256(parse_public_key_template(template).to_point()).digest()[:20]


@dataclass
class _Session:
    sid: str
    terminal_id: str
    channel: int
    terminal_key: EcPublicKey | None = None
    sm: SmReader | None = None
    card_key_id: str | None = None
    job: CardJob | None = None
    #: one pipe for the session's card exchanges, so the SM session rides on it throughout
    pipe: CardPipe = field(default_factory=CardPipe)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Repository:
    """The holder's personal information server (see the module docstring).

    Args:
        store: its SQLite store (a path or an open `Store`).
        key: its secure messaging key, certified by `certificate` (CHR "REP...").
        root: the root that certified the cards.
        holder: the reference (certificate CHR) of the holder's card: the only card
            this repository serves (None: any card the root certified, for tests).
        token_ttl: seconds a one-time token stays valid.
        clock: the time source (tests move it).
    """

    def __init__(
        self,
        store: Store | str,
        *,
        key: EcKeyPair,
        certificate: bytes,
        root: EcPublicKey,
        holder: bytes | None = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = Store.of(store, SCHEMA)
        self.key, self.certificate, self.root = key, certificate, root
        self.holder = holder
        self.token_ttl = token_ttl
        self.clock = clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    # -- administration -------------------------------------------------------------

    def register_terminal(self, terminal_id: str, public_key: bytes) -> str:
        """Register a counter terminal's public key (7F49); its key ID, hex."""
        key_id = key_id_of(public_key).hex()
        with self.store.transaction() as c:
            # As SQLite's INSERT OR REPLACE did: the key leaves any other terminal holding it,
            # and this terminal's row is replaced (an upsert, which PostgreSQL runs too).
            c.execute(
                "DELETE FROM terminals WHERE key_id = ? AND terminal_id <> ?", (key_id, terminal_id)
            )
            c.execute(
                "INSERT INTO terminals VALUES (?, ?, ?) ON CONFLICT (terminal_id)"
                " DO UPDATE SET key_id = excluded.key_id, public_key = excluded.public_key",
                (terminal_id, key_id, public_key),
            )
        return key_id

    def put_credential(self, credential_id: str, data: bytes) -> None:
        """The holder's own record (what a read discloses)."""
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO credentials VALUES (?, ?, NULL, NULL) ON CONFLICT (credential_id)"
                " DO UPDATE SET data = excluded.data, written_by = NULL, signature = NULL",
                (credential_id, data),
            )

    def credential(self, credential_id: str) -> bytes | None:
        row = self.store.query_one(
            "SELECT data FROM credentials WHERE credential_id = ?", (credential_id,)
        )
        return bytes(row["data"]) if row else None

    def disclosures(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.query("SELECT * FROM disclosures ORDER BY id")]

    def history(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.query("SELECT * FROM history ORDER BY id")]

    def card_key(self, key_id: str) -> bytes:
        """ST47-ST48, ST65: a card's public key (7F49) by its key ID."""
        row = self.store.query_one("SELECT public_key FROM card_keys WHERE key_id = ?", (key_id,))
        if row is None:
            raise Refused(404, "no such card key")
        return bytes(row["public_key"])

    # -- sessions ---------------------------------------------------------------------

    def _session(self, sid: str) -> _Session:
        s = self._sessions.get(sid)
        if s is None:
            raise Refused(404, "no such session")
        return s

    def open_session(self, terminal_id: str, channel: int) -> str:
        """ST36-ST37: a session with a registered terminal; the session ID."""
        if not 0 <= channel <= 19:
            raise Refused(400, "the logical channel is 0..19")
        if self.store.query_one("SELECT 1 FROM terminals WHERE terminal_id = ?", (terminal_id,)):
            sid = secrets.token_hex(16)
            with self._lock:
                self._sessions[sid] = _Session(sid, terminal_id, channel)
            return sid
        raise Refused(403, "unknown terminal")

    def use_terminal_key(self, sid: str, key_id: str) -> None:
        """ST40-ST41: the terminal's public key, by ID; it must be the session's terminal's."""
        s = self._session(sid)
        row = self.store.query_one(
            "SELECT public_key FROM terminals WHERE key_id = ? AND terminal_id = ?",
            (key_id, s.terminal_id),
        )
        if row is None:
            raise Refused(403, "no such key for this terminal")
        s.terminal_key = parse_public_key_template(bytes(row["public_key"]))

    def _start(self, s: _Session, work: Callable[[RepositoryCard], Any]) -> None:
        with s.lock:
            if s.job is not None and not s.job.finished:
                raise Refused(409, "a card exchange is running")
            sm = s.sm

            def run(pipe: Reader) -> Any:
                if sm is None or not sm.is_open:
                    raise JobError("no secure messaging with the card")
                return work(RepositoryCard(ChannelReader(sm, s.channel)))

            s.job = CardJob(run, s.pipe)

    def start_secure(self, sid: str) -> None:
        """ST38-ST39: mutual authentication with the card, through the terminal."""
        s = self._session(sid)
        with s.lock:
            if s.job is not None and not s.job.finished:
                raise Refused(409, "a card exchange is running")

            def run(pipe: Reader) -> dict[str, Any]:
                RepositoryCard(ChannelReader(pipe, s.channel)).select()
                sm = SmReader(pipe, channel=s.channel)
                auth = TerminalAuthentication(self.key, self.certificate, self.root)
                cert = sm.authenticate(auth)
                if self.holder is not None and cert.chr != self.holder:
                    sm.close()
                    raise JobError("this is not the holder's card")
                s.sm = sm
                return {"card": cert.chr.hex()}

            s.job = CardJob(run, s.pipe)

    def start_card_key(self, sid: str) -> None:
        """ST42-ST46: the card generates a key pair; its public key stored by ID."""
        s = self._session(sid)
        if s.terminal_key is None:
            raise Refused(409, "the terminal's key first")

        def work(card: RepositoryCard) -> dict[str, Any]:
            key = card.generate_session_key()
            key_id = key_id_of(key.template)
            if key_id != key.key_id:
                raise JobError("the card's key ID does not name its key")
            with self.store.transaction() as c:
                c.execute(
                    "INSERT INTO card_keys VALUES (?, ?) ON CONFLICT (key_id)"
                    " DO UPDATE SET public_key = excluded.public_key",
                    (key_id.hex(), key.template),
                )
            s.card_key_id = key_id.hex()
            return {"key_id": key_id.hex()}

        self._start(s, work)

    def exchange(self, sid: str, response: bytes | None, seq: int | None = None) -> dict[str, Any]:
        """One poll of the terminal: the card's last response in, the next thing out.

        `seq` numbers the polls of one exchange: a duplicated poll is answered again.
        """
        s = self._session(sid)
        job = s.job
        if job is None:
            raise Refused(409, "no card exchange")
        return poll(job, response, seq)

    # -- credential read (ST51-ST65) ------------------------------------------------

    def _new_token(self) -> bytes:
        return secrets.token_bytes(TOKEN_SIZE)

    def start_read(self, sid: str, credential_id: str) -> None:
        """ST53-ST57: the credential signed by the card; a token to the card under SM."""
        s = self._session(sid)
        if s.card_key_id is None:
            raise Refused(409, "the card's key first")
        data = self.credential(credential_id)
        if data is None:
            raise Refused(404, "no such credential")
        card_key_id = s.card_key_id

        def work(card: RepositoryCard) -> dict[str, Any]:
            mark(s.pipe, "card_signs")
            signature = card.sign(data)  # ST54-ST56
            token = self._new_token()  # ST56
            with self.store.transaction() as c:
                c.execute(
                    "INSERT INTO tokens VALUES (?, ?, 'read', ?, ?, ?, ?, 0)",
                    (
                        token.hex(),
                        s.sid,
                        credential_id,
                        signature,
                        card_key_id,
                        self.clock() + self.token_ttl,
                    ),
                )
            mark(s.pipe, "token_to_card")
            card.send_token(token)  # ST57
            return {"token_sent": True}

        self._start(s, work)

    def _take_token(self, c: Any, sid: str, token: bytes, purpose: str) -> Any:
        row = c.execute(
            "SELECT * FROM tokens WHERE token = ? AND purpose = ?" + self.store.for_update,
            (token.hex(), purpose),
        ).fetchone()
        if row is None or not hmac.compare_digest(row["token"], token.hex()):
            raise Refused(403, "unknown token")
        if row["session"] != sid:
            raise Refused(403, "the token belongs to another session")
        if row["used"]:
            raise Refused(403, "the token was used")
        if row["expires"] < self.clock():
            raise Refused(403, "the token expired")
        return row

    def disclose(self, sid: str, token: bytes) -> dict[str, Any]:
        """ST62-ST64: the token checked, the disclosure logged, the signed credential released."""
        s = self._session(sid)
        with self.store.transaction() as c:
            row = self._take_token(c, sid, token, "read")
            c.execute("UPDATE tokens SET used = 1 WHERE token = ?", (row["token"],))
            c.execute(
                "INSERT INTO disclosures (session, terminal_id, credential_id, at) "
                "VALUES (?, ?, ?, ?)",
                (sid, s.terminal_id, row["credential_id"], self.clock()),
            )
            data = self.credential(row["credential_id"])
        assert data is not None
        return {
            "credential_id": row["credential_id"],
            "credential": data.hex(),
            "signature": bytes(row["signed"]).hex(),
            "card_key_id": row["card_key_id"],
        }

    # -- credential write (ST71-ST83) ------------------------------------------------

    def start_write(self, sid: str, credential_id: str) -> None:
        """ST72-ST74: a token to the card under SM for the write of `credential_id`."""
        s = self._session(sid)
        if s.sm is None:
            raise Refused(409, "no secure messaging with the card")
        if not credential_id or len(credential_id) > 128:
            raise Refused(400, "a credential ID of 1..128 characters")

        def work(card: RepositoryCard) -> dict[str, Any]:
            token = self._new_token()  # ST73
            with self.store.transaction() as c:
                c.execute(
                    "INSERT INTO tokens VALUES (?, ?, 'write', ?, NULL, NULL, ?, 0)",
                    (token.hex(), s.sid, credential_id, self.clock() + self.token_ttl),
                )
            card.send_token(token)  # ST74
            return {"token_sent": True}

        self._start(s, work)

    def store_credential(
        self, sid: str, token: bytes, credential_id: str, credential: bytes, signature: bytes
    ) -> None:
        """ST80-ST83: token and terminal signature checked; history logged; credential stored."""
        s = self._session(sid)
        if s.terminal_key is None:
            raise Refused(409, "the terminal's key first")
        with self.store.transaction() as c:
            row = self._take_token(c, sid, token, "write")
            if row["credential_id"] != credential_id:
                raise Refused(403, "the token is for another credential")
            if not ec_verify(s.terminal_key, credential, signature):
                raise Refused(403, "the terminal's signature does not verify")
            c.execute("UPDATE tokens SET used = 1 WHERE token = ?", (row["token"],))
            c.execute(
                "INSERT INTO history (session, terminal_id, credential_id, at) VALUES (?, ?, ?, ?)",
                (sid, s.terminal_id, credential_id, self.clock()),
            )
            c.execute(
                "INSERT INTO credentials VALUES (?, ?, ?, ?) ON CONFLICT (credential_id)"
                " DO UPDATE SET data = excluded.data, written_by = excluded.written_by,"
                " signature = excluded.signature",
                (credential_id, credential, s.terminal_id, signature),
            )

    def close(self) -> None:
        for s in self._sessions.values():
            if s.job is not None:
                s.job.abandon()
        self.store.close()


# -- HTTP ------------------------------------------------------------------------------


def poll_seq(body: dict[str, Any]) -> int | None:
    value = body.get("seq")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 1 << 31:
        raise HttpError(400, "seq: a positive integer")
    return value


def _str(body: dict[str, Any], name: str) -> str:
    return text_field(body, name, 128)


def create_app(repo: Repository) -> Starlette:
    """The repository's routes (JSON; bytes as hex; errors as problem details)."""

    async def sessions(request: Request) -> Response:
        body = await json_object(request)
        channel = body.get("channel")
        if not isinstance(channel, int):
            raise HttpError(400, "channel: an integer")
        sid = await off_loop(lambda: repo.open_session(_str(body, "terminal_id"), channel))
        return JSONResponse({"session": sid}, status_code=201)

    async def secure(request: Request) -> Response:
        await off_loop(lambda: repo.start_secure(request.path_params["sid"]))
        return Response(status_code=202)

    async def terminal_key(request: Request) -> Response:
        body = await json_object(request)
        sid, key_id = request.path_params["sid"], _str(body, "key_id")
        await off_loop(lambda: repo.use_terminal_key(sid, key_id))
        return Response(status_code=204)

    async def card_key(request: Request) -> Response:
        await off_loop(lambda: repo.start_card_key(request.path_params["sid"]))
        return Response(status_code=202)

    async def card(request: Request) -> Response:
        body = await json_object(request)
        resp = None if body.get("response") is None else hex_field(body, "response")
        seq = poll_seq(body)
        return JSONResponse(
            await off_loop(lambda: repo.exchange(request.path_params["sid"], resp, seq))
        )

    async def reads(request: Request) -> Response:
        body = await json_object(request)
        cid = _str(body, "credential_id")
        await off_loop(lambda: repo.start_read(request.path_params["sid"], cid))
        return Response(status_code=202)

    async def disclose(request: Request) -> Response:
        body = await json_object(request)
        token = hex_field(body, "token")
        sid = request.path_params["sid"]
        return JSONResponse(await off_loop(lambda: repo.disclose(sid, token)))

    async def writes(request: Request) -> Response:
        body = await json_object(request)
        cid = _str(body, "credential_id")
        await off_loop(lambda: repo.start_write(request.path_params["sid"], cid))
        return Response(status_code=202)

    async def store(request: Request) -> Response:
        body = await json_object(request)
        token, cred, sig = (hex_field(body, n) for n in ("token", "credential", "signature"))
        cid = _str(body, "credential_id")
        sid = request.path_params["sid"]
        await off_loop(lambda: repo.store_credential(sid, token, cid, cred, sig))
        return Response(status_code=204)

    async def keys(request: Request) -> Response:
        template = await off_loop(lambda: repo.card_key(request.path_params["key_id"]))
        return JSONResponse({"public_key": template.hex()})

    p = "/sessions/{sid}"
    routes = [
        Route("/sessions", sessions, methods=["POST"]),
        Route(f"{p}/secure", secure, methods=["POST"]),
        Route(f"{p}/terminal-key", terminal_key, methods=["POST"]),
        Route(f"{p}/card-key", card_key, methods=["POST"]),
        Route(f"{p}/card", card, methods=["POST"]),
        Route(f"{p}/reads", reads, methods=["POST"]),
        Route(f"{p}/disclose", disclose, methods=["POST"]),
        Route(f"{p}/writes", writes, methods=["POST"]),
        Route(f"{p}/store", store, methods=["POST"]),
        Route("/keys/{key_id}", keys, methods=["GET"]),
    ]
    return role_app("repository", routes)
