"""ES9+ client: the LPA's HTTPS/JSON calls to an SM-DP+ (GSMA SGP.22 v2.x §5.6, §6.5).

    client = Es9Client("smdp.example.com", ca_pem=ci_cert_pem)
    answer = client.call("initiateAuthentication", {...})

TLS is checked against the CI certificates given (the SM-DP+'s CERT.DPtls
chains to the GSMA CI, SGP.22 §2.6.6), with the SM-DP+ address as the host
name. `connect_to` sends the connection elsewhere while keeping that name for
SNI and the certificate check (like curl's --connect-to), for an SM-DP+ whose
name does not resolve here.

Inside `with client:` the calls share one keep-alive connection (one TCP
connect and one TLS handshake for a whole download), closed when the block
ends; outside it each call has a connection of its own. SGP.22 leaves
connection reuse to the HTTP layer; a real LPA keeps its HTTPS session to the
SM-DP+ for the whole download, and an LPA load test with thousands of eUICCs
would otherwise spend a TLS handshake and an ephemeral port per call.
"""

from __future__ import annotations

import functools
import http.client
import itertools
import json
import select
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from host.es9plus import (
    ADMIN_PROTOCOL,
    CONTENT_TYPE,
    ES2P_PATHS,
    ES9_PATHS,
    ES11_PATHS,
    ES12_PATHS,
    Es9Error,
    request_header,
    status_of,
)

__all__ = [
    "Es9Client",
    "Es9TransportError",
    "HttpHook",
    "HttpRequest",
    "split_address",
    "ES11_PATHS",
    "ES12_PATHS",
    "ES2P_PATHS",
]

Tracer = Callable[[str, dict[str, Any], dict[str, Any] | None], None]


@dataclass(frozen=True)
class HttpRequest:
    """One ES9+ request as it leaves the client (for `HttpHook`)."""

    function: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


HttpAnswer = tuple[int, str, bytes]
"""(status, reason, body) of an HTTP answer."""

HttpHook = Callable[[HttpRequest, Callable[[], HttpAnswer]], HttpAnswer]
"""Wraps every exchange: called with the request and `send`, returns the answer.

A recorder calls `send()` once and notes both sides; a fault injector may
raise `ConnectionError` instead (the request is lost), call it twice, or wait.
"""


class Es9TransportError(Exception):
    """The SM-DP+ could not be reached or answered something that is not ES9+ (HTTP, TLS, JSON)."""


def split_address(address: str, default_port: int = 443) -> tuple[str, int]:
    """`host[:port]` (IPv6 in brackets) as (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return address, default_port


class _Connection(http.client.HTTPSConnection):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext,
        timeout: float,
        target: tuple[str, int] | None,
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._target = target
        self._ctx = context

    def connect(self) -> None:
        if self._target is None:
            super().connect()
            return
        raw = socket.create_connection(self._target, self.timeout)
        # As http.client does for its own connections: the headers and the body leave
        # in two writes, and the second must not wait for the SM-DP+'s delayed ACK.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


@functools.lru_cache(maxsize=32)
def _tls_context(cadata: str | None) -> ssl.SSLContext:
    """The verifying client context for one set of trusted certificates (None: the system's).

    Built once per set and shared by every client trusting it (loading the
    certificates costs about a millisecond, a tenth of a loopback download's
    HTTPS): nothing changes a context once it is made, and each connection
    still makes its own TLS handshake.
    """
    if cadata is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cadata=cadata)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle kept connection the server has closed (or sent on): not to be reused.

    Between answers a server sends nothing, so a readable socket means its FIN
    (or a TLS close_notify) has arrived, e.g. after its keep-alive timeout.
    """
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Es9Client:
    """ES9+ over HTTPS to one SM-DP+ address.

    Args:
        address: the SM-DP+ address (`host` or `host:port`), as in the activation code.
        ca_pem: PEM certificates to trust for TLS (the CI); None uses the system's.
        connect_to: (host, port) to connect to instead of the address's.
        tls: False for plain HTTP (an SM-DP+ behind a TLS proxy; tests only).
        timeout: seconds per request.
        trace: called with (function, request, response) for every call.
        hook: wraps every HTTP exchange (recording, fault injection).
        paths: the functions' paths: ES9+ by default; `ES11_PATHS` for an SM-DS,
            `ES12_PATHS` / `ES2P_PATHS` for the server-to-server interfaces.
        requester: for ES12 and ES2+, the functionRequesterIdentifier of the request
            header each call then carries (§6.5.1.3).

    Used as a context manager (`with client:`), the client keeps one connection
    for its calls and closes it at the end; such a client is for one thread.
    """

    def __init__(
        self,
        address: str,
        *,
        ca_pem: bytes | str | None = None,
        connect_to: tuple[str, int] | None = None,
        tls: bool = True,
        timeout: float = 30.0,
        trace: Tracer | None = None,
        hook: HttpHook | None = None,
        paths: Mapping[str, str] = ES9_PATHS,
        requester: str | None = None,
    ) -> None:
        self.address = address
        self.paths = paths
        self.requester = requester
        self._calls = itertools.count(1)
        self.host, self.port = split_address(address, 443 if tls else 80)
        self.connect_to = connect_to
        self.tls = tls
        self.timeout = timeout
        self.trace = trace
        self.hook = hook
        cadata = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        self.context = _tls_context(cadata)
        self._keep = 0
        self._conn: http.client.HTTPConnection | None = None
        self.connections = 0
        """How many connections this client has opened (TCP connects, TLS handshakes)."""

    def __enter__(self) -> Es9Client:
        self._keep += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._keep -= 1
        if not self._keep:
            self.close()

    def close(self) -> None:
        """Close the kept connection, if any (the next call opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls:
            return _Connection(
                self.host,
                self.port,
                context=self.context,
                timeout=self.timeout,
                target=self.connect_to,
            )
        host, port = self.connect_to or (self.host, self.port)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def call(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST one ES9+ function; return its answer without the header (None for 204).

        Raises:
            Es9Error: the SM-DP+ answered "Failed" (its status codes).
            Es9TransportError: no connection, TLS failure, an HTTP error or no JSON.
        """
        path = self.paths[function]
        if self.requester is not None:
            body = {"header": request_header(self.requester, f"{next(self._calls)}"), **body}
        payload = json.dumps(body).encode()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "X-Admin-Protocol": ADMIN_PROTOCOL,
            "User-Agent": "cardemu-lpa",
            "Accept": "application/json",
        }

        def send() -> HttpAnswer:
            if not self._keep:
                conn = self._connection()
                self.connections += 1
                try:
                    conn.request("POST", path, body=payload, headers=headers)
                    resp = conn.getresponse()
                    return resp.status, resp.reason, resp.read()
                finally:
                    conn.close()
            return self._send_kept(path, payload, headers)

        try:
            if self.hook is None:
                status, reason, data = send()
            else:
                scheme = "https" if self.tls else "http"
                request = HttpRequest(
                    function, "POST", f"{scheme}://{self.address}{path}", headers, payload
                )
                status, reason, data = self.hook(request, send)
        except ssl.SSLCertVerificationError as e:
            raise Es9TransportError(
                f"{function}: the SM-DP+ certificate does not verify: {e.verify_message}"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            raise Es9TransportError(f"{function}: cannot reach {self.address}: {e}") from None
        if status == 204:
            if self.trace is not None:
                self.trace(function, body, None)
            return None
        try:
            answer = json.loads(data.decode("utf-8")) if data else None
        except (UnicodeDecodeError, ValueError):
            answer = None
        if status != 200 or not isinstance(answer, dict):
            # RFC 9457 problem details (the servers' web stack) carry `detail`.
            detail = (
                str(answer.get("detail") or answer.get("error", {}).get("message", ""))
                if isinstance(answer, dict)
                else data[:80]
            )
            raise Es9TransportError(f"{function}: HTTP {status} {reason} {detail!r}".rstrip())
        if self.trace is not None:
            self.trace(function, body, answer)
        status_of(answer, function)
        return {k: v for k, v in answer.items() if k != "header"}

    def _send_kept(self, path: str, payload: bytes, headers: dict[str, str]) -> HttpAnswer:
        """One exchange on the kept connection, opening it first when there is none.

        A kept connection the server has closed while idle is replaced before the
        request leaves (`_dropped`). A request is never sent twice: ES9+ calls are
        not idempotent (RFC 9110 §9.2.2), so a connection lost while a request is
        under way is an error, as it is without keep-alive. The connection is
        dropped after any error and after an answer that closes it.
        """
        conn = self._conn
        if conn is not None and _dropped(conn):
            conn.close()
            conn = None
        if conn is None:
            conn = self._connection()
            conn.connect()
            self.connections += 1
        self._conn = None
        try:
            conn.request("POST", path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close or conn.sock is None:
            conn.close()
        else:
            self._conn = conn
        return resp.status, resp.reason, data

    def require(self, function: str, body: dict[str, Any], *fields: str) -> dict[str, Any]:
        """`call`, expecting an answer with these fields.

        Raises:
            Es9TransportError: no answer or a field missing.
        """
        answer = self.call(function, body)
        if answer is None:
            raise Es9TransportError(f"{function}: the SM-DP+ answered no content")
        missing = [f for f in fields if f not in answer]
        if missing:
            raise Es9TransportError(f"{function}: the answer lacks {', '.join(missing)}")
        return answer


__all__ += ["Es9Error"]
