"""The web stack cardemu's servers had before Starlette/uvicorn: kept only as a benchmark reference.

`cardemu bench --web` times the SM-DP+'s InitiateAuthentication on this
`http.server.ThreadingHTTPServer` stack beside the real one (`host.servers.web`),
interleaved in one run. Nothing else may import it: the servers run on
`host.servers.web`. (It was `host/servers/base.py`: a routing table, JSON
bodies, errors, body limits and TLS of our own.)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "HttpError",
    "Request",
    "Response",
    "Handler",
    "JsonApp",
    "Server",
    "require_loopback",
    "tls_context",
    "MAX_BODY",
]

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024
"""The largest request body a server reads (a bound profile package is well under it)."""

JSON_TYPE = "application/json"


class HttpError(Exception):
    """An HTTP error answer: `status` and a message safe to show the client.

    Args:
        status: the HTTP status (4xx for the client's fault).
        message: one line for the client; never a secret or a traceback.
        headers: extra response headers (e.g. Allow for 405).
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Request:
    """One HTTP request as a handler sees it.

    Attributes:
        method: "GET", "POST", ...
        path: the path without the query string.
        query: the query string's parameters.
        headers: the request headers (case-insensitive look-up with `header`).
        body: the raw body.
        client: the peer's (address, port).
    """

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    client: tuple[str, int]

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header's value, looked up case-insensitively."""
        lname = name.lower()
        for k, v in self.headers.items():
            if k.lower() == lname:
                return v
        return default

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            HttpError: 415 when the Content-Type is not JSON, 400 when the body is not JSON.
        """
        ctype = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != JSON_TYPE:
            raise HttpError(415, f"Content-Type must be {JSON_TYPE}")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "the body is not valid JSON") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object.

        Raises:
            HttpError: as `json`, or 400 when the JSON is not an object.
        """
        value = self.json()
        if not isinstance(value, dict):
            raise HttpError(400, "the body must be a JSON object")
        return value


@dataclass
class Response:
    """What a handler may return when a plain JSON value (status 200) is not enough.

    `body` is JSON-encoded unless it is bytes; None means no body (use 204).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE


Handler = Callable[[Request], "Response | dict[str, Any] | list[Any] | None"]


class JsonApp:
    """A routing table: exact (method, path) → handler.

    A handler returns a `Response`, a JSON value (sent with 200) or None (204).

    Args:
        name: the server role, used in logs and the Server header.
        headers: headers added to every response (e.g. a protocol version).
    """

    def __init__(self, name: str, *, headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.headers = dict(headers or {})
        self._routes: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Route `method path` to `handler`."""
        self._routes.setdefault(path, {})[method.upper()] = handler

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Decorator form of `add`."""

        def register(handler: Handler) -> Handler:
            self.add(method, path, handler)
            return handler

        return register

    @property
    def paths(self) -> list[str]:
        """The routed paths."""
        return sorted(self._routes)

    def dispatch(self, request: Request) -> Response:
        """Run the handler for `request` and normalise its answer to a `Response`.

        Raises:
            HttpError: 404 for an unknown path, 405 for a method the path lacks,
                or whatever the handler raised.
        """
        methods = self._routes.get(request.path)
        if methods is None:
            raise HttpError(404, f"no such resource: {request.path}")
        handler = methods.get(request.method)
        if handler is None:
            allow = ", ".join(sorted(methods))
            raise HttpError(405, f"{request.method} not allowed here", {"Allow": allow})
        result = handler(request)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status=204)
        return Response(body=result)


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": {"status": status, "message": message}}).encode()


def require_loopback(host: str) -> str:
    """Check that `host` names only loopback addresses; return it.

    Raises:
        ValueError: the name resolves to an address outside 127.0.0.0/8 and ::1,
            or does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not addr.is_loopback:
            raise ValueError(
                f"{host!r} is not a loopback address ({addr}): servers bind to loopback only"
            )
    return host


def tls_context(cert_pem: bytes, key_pem: bytes, chain_pem: bytes = b"") -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) from a PEM certificate and key.

    Args:
        cert_pem: the server certificate.
        key_pem: its private key (unencrypted PEM).
        chain_pem: intermediate certificates to send after it.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # `load_cert_chain` only reads files: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="cardemu-tls-") as d:
        cert_path, key_path = Path(d, "cert.pem"), Path(d, "key.pem")
        cert_path.write_bytes(cert_pem + (b"\n" + chain_pem if chain_pem else b""))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        log.debug("%s %s: " + format, self.server.app.name, self.client_address[0], *args)

    def version_string(self) -> str:
        return f"cardemu-{self.server.app.name}"

    def _send(
        self, status: int, body: bytes, headers: Mapping[str, str], ctype: str | None
    ) -> None:
        self.send_response(status)
        for k, v in {**self.server.app.headers, **headers}.items():
            self.send_header(k, v)
        if body or status not in (204, 304):
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _fail(self, err: HttpError) -> None:
        self._send(err.status, _error_body(err.status, err.message), err.headers, JSON_TYPE)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise HttpError(411, "chunked bodies are not accepted: send Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0:
            raise HttpError(400, "bad Content-Length")
        if length > MAX_BODY:
            raise HttpError(413, f"body over {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            raise HttpError(400, "body shorter than Content-Length")
        return body

    def _handle(self) -> None:
        try:
            try:
                body = self._read_body()
            except HttpError:
                self.close_connection = True  # the unread body would desynchronise the stream
                raise
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query),
                headers=dict(self.headers.items()),
                body=body,
                client=(str(self.client_address[0]), int(self.client_address[1])),
            )
            response = self.server.app.dispatch(request)
        except HttpError as e:
            self._fail(e)
            return
        except Exception:  # noqa: BLE001 - the server's last line: log, answer 500, go on
            log.exception(
                "%s: handler failed on %s %s", self.server.app.name, self.command, self.path
            )
            self._fail(HttpError(500, "internal error"))
            return
        if response.body is None:
            payload = b""
        elif isinstance(response.body, bytes | bytearray):
            payload = bytes(response.body)
        else:
            payload = json.dumps(response.body).encode()
        self._send(
            response.status, payload, response.headers, response.content_type if payload else None
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle  # noqa: N815


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets clients that connect in a burst.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: JsonApp, tls: ssl.SSLContext | None) -> None:
        self.app = app
        self.tls = tls
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Here, in the connection's own thread, rather than on the listening
        # socket: a client stalling its handshake then blocks no one else.
        if self.tls is not None:
            request.settimeout(_Handler.timeout)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log.debug("%s: TLS handshake with %s failed: %s", self.app.name, client_address, e)
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if self.tls is not None:
                try:
                    request.close()
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug(
            "%s: connection from %s ended with an error",
            self.app.name,
            client_address,
            exc_info=True,
        )


class Server:
    """A `JsonApp` served on loopback, in a background thread or in the foreground.

    Args:
        app: the routes.
        host: a loopback address or name ("127.0.0.1", "::1", "localhost").
        port: the TCP port; 0 picks a free one (read it back from `port`).
        tls: a server TLS context (`tls_context`); None serves plain HTTP.

    Raises:
        ValueError: `host` is not loopback.
        OSError: the port cannot be bound.
    """

    def __init__(
        self,
        app: JsonApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        require_loopback(host)
        self.app = app
        self._httpd = _HttpServer((host, port), app, tls)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def scheme(self) -> str:
        """ "https" with TLS, else "http"."""
        return "https" if self._httpd.tls is not None else "http"

    @property
    def url(self) -> str:
        """The base URL, e.g. https://127.0.0.1:40123."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> Server:
        """Serve in a daemon thread; return at once."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"cardemu-{self.app.name}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until `stop` (from another thread) or KeyboardInterrupt."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
