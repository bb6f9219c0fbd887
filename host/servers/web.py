"""The one web stack of cardemu's server roles: Starlette on uvicorn (ASGI), a SQLite store.

A role is a Starlette app built by a function, its routes thin, its logic a
plain class with no HTTP in it (ARCHITECTURE.md, where a new server role goes):

    app = role_app("echo", [Route("/echo", echo, methods=["POST"])])
    with RoleServer(app) as server:      # 127.0.0.1, a free port, a thread
        ... server.url ...               # "http://127.0.0.1:40123"

What the maintained libraries do: routing, request parsing and HTTP/1.1
(Starlette, h11 under uvicorn), TLS (uvicorn's ssl settings), the event loop
and graceful shutdown. What stays ours, because it is the same for every role:

- Loopback by default: `check_bind_host` refuses any other address unless the
  caller says `allow_remote` (and then logs a warning).
- Bounded request bodies: `BodyLimit` answers 413 for a Content-Length over
  the role's limit and stops reading a chunked body at the limit.
- Errors as RFC 9457 problem details (`application/problem+json`); a
  protocol's own envelope (SGP.22's `header.functionExecutionStatus`) is the
  role's business. A crash is logged here with its traceback and answered 500
  "internal error": no traceback, no secret reaches the client.
- `Store`: one SQLite file (or memory) per server, its schema applied on open,
  `transaction()` serialising writers across the threads that run handlers;
  or, given a `postgresql://` URL, the same API on PostgreSQL (`pgstore`), for
  a role that several processes or machines serve.

No response waits on a delayed ACK: asyncio sets TCP_NODELAY on every accepted
socket, and h11 hands the headers and a fixed-length body over in one write.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import sqlite3
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from host.log import TRAFFIC

__all__ = [
    "MAX_BODY",
    "HttpError",
    "BodyLimit",
    "Refused",
    "RoleServer",
    "Store",
    "StoreCursor",
    "TlsFiles",
    "bind_socket",
    "is_store_url",
    "check_bind_host",
    "WorkerPool",
    "hex_field",
    "json_object",
    "text_field",
    "off_loop",
    "problem",
    "role_app",
]

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024
"""The largest request body a role reads (a bound profile package is well under it)."""

JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"


class HttpError(HTTPException):
    """An HTTP error answer: a status and a one-line message safe to show the client."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message, dict(headers) if headers else None)

    @property
    def message(self) -> str:
        return str(self.detail)


def hex_field(body: Mapping[str, Any], name: str) -> bytes:
    """A request's hex field as bytes (bytes as hex on the wire); 400 if absent or not hex."""
    value = body.get(name)
    if not isinstance(value, str):
        raise HttpError(400, f"{name}: a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise HttpError(400, f"{name}: not hex") from None


def text_field(body: Mapping[str, Any], name: str, limit: int) -> str:
    """A request's text field of 1 to `limit` characters; 400 otherwise."""
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise HttpError(400, f"{name}: a string of 1..{limit} characters")
    return value


class Refused(Exception):
    """A role's logic refuses a request; `status` is the HTTP status its edge answers.

    The logic raises it before it writes anything; `off_loop` turns it into an
    `HttpError` (an RFC 9457 problem).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_T = TypeVar("_T")


async def off_loop(fn: Callable[[], _T]) -> _T:
    """Run a role's blocking logic off the event loop; a `Refused` becomes its HTTP problem."""
    try:
        return await run_in_threadpool(fn)
    except Refused as e:
        raise HttpError(e.status, str(e)) from None


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem-details answer (`title` is the status's phrase)."""
    from http import HTTPStatus

    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type=PROBLEM_TYPE,
    )


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object.

    Raises:
        HttpError: 415 when the Content-Type is not JSON, 400 when the body is not
            JSON or not an object, 413 over the body limit.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != JSON_TYPE:
        raise HttpError(415, f"Content-Type must be {JSON_TYPE}")
    raw = await request.body()
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise HttpError(400, "the body must be a JSON object")
    return value


class BodyLimit:
    """ASGI middleware: bounded request bodies, extra response headers, the last-line 500.

    Args:
        app: the inner application.
        name: the role (logs, the Server header).
        max_body: the largest body read, in bytes.
        headers: added to every response (e.g. a protocol version).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str,
        max_body: int = MAX_BODY,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.name = name
        self.max_body = max_body
        extra = {"server": f"cardemu-{name}", **{k.lower(): v for k, v in (headers or {}).items()}}
        self._headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *self._headers]
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            too_large = problem(413, f"body over {self.max_body} bytes")
            await too_large(scope, receive, send_with_headers)
            return
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HttpError(413, f"body over {self.max_body} bytes")
            return message

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except Exception:  # noqa: BLE001 - the role's last line: log it here, answer 500
            log.exception("%s: handler failed on %s %s", self.name, scope["method"], scope["path"])
            if not started:
                await problem(500, "internal error")(scope, receive, send_with_headers)


def _content_length(scope: Scope) -> int | None:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), exc.headers)


def role_app(
    name: str,
    routes: Sequence[BaseRoute],
    *,
    headers: Mapping[str, str] | None = None,
    max_body: int = MAX_BODY,
) -> Starlette:
    """A role's Starlette app: its routes, problem-details errors, the body limit.

    Args:
        name: the role ("smdpp", ...).
        routes: its Starlette routes.
        headers: headers on every response.
        max_body: the largest request body, in bytes.
    """
    from starlette.middleware import Middleware

    app = Starlette(
        routes=list(routes),
        middleware=[Middleware(BodyLimit, name=name, max_body=max_body, headers=headers)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.role = name
    return app


def check_bind_host(host: str, *, allow_remote: bool = False) -> str:
    """Check the address a role binds to; return it.

    Loopback (127.0.0.0/8, ::1) always passes. Anything else only with
    `allow_remote`, and then with a warning in the log.

    Raises:
        ValueError: not loopback (and not allowed), or the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not addr.is_loopback:
            if not allow_remote:
                raise ValueError(
                    f"{host!r} is not a loopback address ({addr}): "
                    "serving on another address needs --allow-remote"
                )
            log.warning("serving on %s (%s), reachable from other machines", host, addr)
            break
    return host


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate (with its chain) and its unencrypted private key, as PEM."""

    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes = b""

    @contextmanager
    def files(self) -> Iterator[tuple[str, str]]:
        """(certificate path, key path) in a private directory, removed on exit."""
        with tempfile.TemporaryDirectory(prefix="cardemu-tls-") as d:
            cert, key = Path(d, "cert.pem"), Path(d, "key.pem")
            cert.write_bytes(self.cert_pem + (b"\n" + self.chain_pem if self.chain_pem else b""))
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.key_pem)
            yield str(cert), str(key)

    def context(self) -> ssl.SSLContext:
        """A server-side TLS context (TLS 1.2 or later) for raw sockets."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        with self.files() as (cert, key):
            ctx.load_cert_chain(cert, key)
        return ctx


def bind_socket(host: str, port: int, *, allow_remote: bool = False) -> socket.socket:
    """A listening TCP socket for a role (checked by `check_bind_host`).

    Raises:
        ValueError: `host` is not loopback and `allow_remote` was not given.
        OSError: the port cannot be bound.
    """
    check_bind_host(host, allow_remote=allow_remote)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelt out: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and an accepted socket inherits proto 0 from socket(family, type).
    # Without it every keep-alive answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        # Name the address: "Address already in use" alone does not say which port.
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    return sock


def _config(app: ASGIApp | str, **kw: Any) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        http="h11",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
        **kw,
    )
    # uvicorn names level 5 "TRACE" whenever it configures logging; level 5 is our
    # TRAFFIC (host.log), and APDU traces must keep saying so.
    logging.addLevelName(TRAFFIC, "TRAFFIC")
    return config


class WorkerPool:
    """An app served in `workers` processes (uvicorn's supervisor) until SIGINT/SIGTERM.

    Each worker builds its own app by calling `factory` ("module:function", no
    arguments; the role's settings travel in the environment) and shares the
    listening socket. The role's state must live in its store, not in memory:
    any worker may serve any request.

    Args:
        factory: the import string of a function returning the app.
        sock: the listening socket (`bind_socket`).
        workers: how many processes.
        tls: the certificate and key (written to a private directory while serving).
    """

    def __init__(
        self, factory: str, sock: socket.socket, *, workers: int, tls: TlsFiles | None = None
    ) -> None:
        self._factory, self._sock, self._workers, self._tls = factory, sock, workers, tls
        self._stop = threading.Event()
        self._supervisor: Any = None

    def serve_forever(self) -> None:
        """Serve until a signal or `request_stop`; raises KeyboardInterrupt once stopped.

        The supervisor installs its own SIGINT/SIGTERM handlers when it is built and
        does not say which signal stopped it, so every stop counts as an interrupt.
        """
        from uvicorn.supervisors import Multiprocess

        config = _config(self._factory, factory=True, workers=self._workers)
        with contextlib.ExitStack() as stack:
            if self._tls is not None:
                config.ssl_certfile, config.ssl_keyfile = stack.enter_context(self._tls.files())
            try:
                self._supervisor = Multiprocess(config, sockets=[self._sock])
                if self._stop.is_set():  # a signal came before its handlers were up
                    self._supervisor.should_exit.set()
                self._supervisor.run()
            finally:
                self._sock.close()
        raise KeyboardInterrupt

    def request_stop(self) -> None:
        """Stop the workers (from a signal handler or another thread)."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.should_exit.set()


class RoleServer:
    """A role's app served by uvicorn: in a background thread, or in the foreground.

    The socket is bound here, at construction, so `port` is known at once
    (0 picks a free one) and a second server on the same port fails early.

    Args:
        app: the ASGI app (`role_app`).
        host: the address to bind ("127.0.0.1" by default).
        port: the TCP port; 0 picks a free one.
        tls: the certificate and key for HTTPS; None serves plain HTTP.
        allow_remote: bind outside loopback (logged as a warning).
        name: the role, for logs and the thread's name.

    Raises:
        ValueError: `host` is not loopback and `allow_remote` was not given.
        OSError: the port cannot be bound.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: TlsFiles | None = None,
        allow_remote: bool = False,
        name: str = "server",
    ) -> None:
        self.name = name
        self._tls = tls is not None
        self._sock = bind_socket(host, port, allow_remote=allow_remote)
        config = _config(app)
        if tls is not None:
            # uvicorn reads files only: a private directory, gone once the context is built.
            with tls.files() as (cert, key):
                config.ssl_certfile, config.ssl_keyfile = cert, key
                config.load()
        else:
            config.load()
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._sock.getsockname()[0])

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._sock.getsockname()[1])

    @property
    def scheme(self) -> str:
        """ "https" with TLS, else "http"."""
        return "https" if self._tls else "http"

    @property
    def url(self) -> str:
        """The base URL, e.g. https://127.0.0.1:40123."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> RoleServer:
        """Serve in a daemon thread; return once it accepts connections."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.run,
                kwargs={"sockets": [self._sock]},
                name=f"cardemu-{self.name}",
                daemon=True,
            )
            self._thread.start()
            deadline = time.monotonic() + 10
            while not self._server.started and self._thread.is_alive():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: the server did not start")
                time.sleep(0.005)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (uvicorn's own graceful stop)."""
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self._sock.close()

    def request_stop(self) -> None:
        """Ask `serve_forever` to stop (from a signal handler or another thread).

        Asked before uvicorn has started, it starts and stops at once.
        """
        self._server.should_exit = True

    def stop(self) -> None:
        """Stop serving (open connections get a short grace) and release the port."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> RoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StoreCursor(Protocol):
    """What a `Store.transaction()` yields: SQLite's cursor, or the PostgreSQL one (pgstore)."""

    def execute(self, sql: str, params: Any = (), /) -> Any: ...

    @property
    def lastrowid(self) -> int | None:
        """The id the last INSERT gave its row (an INTEGER PRIMARY KEY / identity column)."""
        ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


#: The counters of `Store.next_seq`: add to a role's schema that numbers its rows.
SEQ_SCHEMA = "CREATE TABLE IF NOT EXISTS store_seqs (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"


def is_store_url(db: str | os.PathLike[str]) -> bool:
    """True if `db` names a PostgreSQL database (`postgresql://...`) rather than an SQLite file."""
    return str(db).startswith(("postgresql://", "postgres://"))


class Store:
    """A server's store: one SQLite file (or ":memory:"), a schema, serialised transactions.

    Args:
        path: the database file, ":memory:" (the default), or a PostgreSQL URL
            (`postgresql://user@host:port/db`: a `host.servers.pgstore.PgStore` is
            made instead, for a role served by several processes or machines).
        schema: SQL run on open (use CREATE TABLE IF NOT EXISTS). Written in
            SQLite's dialect with `?` parameters; the PostgreSQL store maps it.

    The connection is shared by the threads that run the role's handlers,
    behind one lock, so every `transaction()` sees a consistent state and
    either commits whole or not at all (an exception rolls it back).
    """

    #: appended to a SELECT that reads a row the transaction will write, where the
    #: database locks rows ("" here: SQLite's BEGIN IMMEDIATE serialises every writer)
    for_update = ""

    def __new__(cls, path: str | os.PathLike[str] = ":memory:", schema: str = "") -> Store:
        if cls is Store and is_store_url(path):
            from host.servers.pgstore import PgStore

            return super().__new__(PgStore)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike[str] = ":memory:", schema: str = "") -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if schema:
            self.apply_schema(schema)

    @classmethod
    def of(cls, store: Store | str | os.PathLike[str], schema: str) -> Store:
        """A role's store: `store` with `schema` applied, or a new one at that path or URL.

        A role built on another's store (the SM-DS's events, say) adds its tables there.
        """
        if isinstance(store, Store):
            store.apply_schema(schema)
            return store
        return cls(store, schema)

    def apply_schema(self, schema: str) -> None:
        """Run a schema's statements (`;`-separated, idempotent) in one transaction."""
        with self.transaction() as c:
            for statement in schema.split(";"):
                if statement.strip():
                    c.execute(statement)

    @property
    def display(self) -> str:
        """The store's name for logs and messages (no password)."""
        return self.path

    def next_seq(self, cur: StoreCursor, table: str) -> int:
        """The next arrival number of `table`'s rows, taken inside the caller's transaction.

        A counter row per table in `store_seqs` (`SEQ_SCHEMA`, which the role's schema
        includes), bumped by an upsert: on PostgreSQL the row lock makes a second
        transaction wait for the first to commit and then count on from its number,
        where `MAX(seq) + 1` let two READ COMMITTED transactions read the same
        maximum and hand out one number twice. The first use starts the counter at the
        table's largest `seq`, so a store numbered the old way counts on from it.
        """
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        cur.execute(
            "INSERT INTO store_seqs (name, value)"
            f" VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}))"
            " ON CONFLICT (name) DO UPDATE SET value = store_seqs.value + 1 RETURNING value",
            (table,),
        )
        return int(cur.fetchone()[0])

    def columns(self, table: str) -> set[str]:
        """The column names of `table` (empty if there is no such table)."""
        with self._lock:
            return {str(r[1]) for r in self._conn.execute(f"PRAGMA table_info({table})")}

    @staticmethod
    def is_conflict(error: BaseException) -> bool:
        """True if `error` is a UNIQUE / PRIMARY KEY violation (either database)."""
        if isinstance(error, sqlite3.IntegrityError):
            return "UNIQUE" in str(error)
        return type(error).__name__ == "UniqueViolation"

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[StoreCursor]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); an exception rolls it back.

        Args:
            durable: False for a write that a power cut may undo at no cost but an
                unfinished session (an RSP session's challenge, its binding to an
                eUICC): SQLite's WAL commits it without waiting for the disk
                (synchronous=NORMAL for this commit). A kill of the process loses
                nothing either way, the file stays consistent, and the next
                durable commit syncs it with its own, in order. Every write that
                moves an order or records a result stays durable.
        """
        with self._lock:
            relaxed = not durable and self.path != ":memory:"
            cur = self._conn.cursor()
            try:
                if relaxed:  # inside the try: whatever happens next, FULL comes back
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                else:
                    cur.execute("COMMIT")
            finally:
                cur.close()
                if relaxed:
                    self._conn.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[Any]:
        """Run a read and return every row (by column name or index)."""
        with self._lock:
            return list(self._conn.execute(sql, params))

    def query_one(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> Any:
        """Run a read and return the first row, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
