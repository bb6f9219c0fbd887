"""The system's JSON over HTTP: one client for the terminal and the servers, one error shape.

Every role answers a refusal as an RFC 9457 problem (`host.servers.web.problem`)
with one extra member, `reason`: a short stable code ("local-auth",
"certificate", "photo", "replayed-key", "unknown-key", ...), so a client or a
test can tell refusals apart without parsing English. `Refused` carries both.

The client speaks HTTP, or HTTPS checked against given CA certificates (the
management servers serve their contract routes beside ES9+, on CERT.DPtls),
through an optional `HttpHook` (a scenario's recorder and fault injector).
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from host.lpa.es9 import HttpAnswer, HttpHook, HttpRequest
from host.servers.web import PROBLEM_TYPE, json_object

__all__ = ["JsonClient", "Refused", "endpoint"]


class Refused(Exception):
    """A refusal: raised by a role's logic, answered as a problem, raised again by the client.

    Attributes:
        status: the HTTP status (400 bad request, 403 refused, 404 unknown, 409 conflict,
            502 a server behind it failed).
        reason: the short code.
        detail: one line for the user.
    """

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail

    def response(self) -> Response:
        from http import HTTPStatus

        return JSONResponse(
            {
                "type": "about:blank",
                "title": HTTPStatus(self.status).phrase,
                "status": self.status,
                "detail": self.detail,
                "reason": self.reason,
            },
            status_code=self.status,
            media_type=PROBLEM_TYPE,
        )


def endpoint(
    fn: Callable[..., Any], *, body: bool = True, params: tuple[str, ...] = ()
) -> Callable[[Request], Any]:
    """A thin Starlette route: the JSON body and path parameters to `fn` (run in a worker
    thread: it signs and writes SQLite), its dict back as JSON, `Refused` as a problem."""

    async def handle(request: Request) -> Response:
        args: list[Any] = [request.path_params[p] for p in params]
        if body:
            args.append(await json_object(request))
        try:
            result = await run_in_threadpool(fn, *args)
        except Refused as e:
            return e.response()
        return JSONResponse(result)

    handle.__name__ = getattr(fn, "__name__", "handle")
    return handle


class JsonClient:
    """JSON requests to one server.

    Args:
        base: "http://host:port" or "https://host:port".
        ca_pem: for HTTPS, the CA certificates (PEM) the server's must chain to.
        hook: wraps every exchange (a scenario's recorder, faults).
        timeout: seconds.
    """

    def __init__(
        self,
        base: str,
        *,
        ca_pem: bytes | None = None,
        hook: HttpHook | None = None,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            raise ValueError(f"an http:// or https:// URL, not {base!r}")
        self.base = base.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.hook = hook
        self.timeout = timeout
        self._ctx: ssl.SSLContext | None = None
        if parts.scheme == "https":
            ctx = ssl.create_default_context(
                cadata=ca_pem.decode("ascii") if ca_pem is not None else None
            )
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ctx = ctx

    def _connection(self) -> http.client.HTTPConnection:
        if self._ctx is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, context=self._ctx, timeout=self.timeout
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One exchange; the JSON answer.

        Raises:
            Refused: a 4xx/5xx answer (its reason, or "http-STATUS").
            OSError: no answer (ConnectionError when a fault dropped it).
        """
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}

        def send() -> HttpAnswer:
            conn = self._connection()
            try:
                conn.request(method, path, body=raw or None, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.reason, resp.read()
            finally:
                conn.close()

        request = HttpRequest(path, method, self.base + path, headers, raw)
        status, _, answer = self.hook(request, send) if self.hook is not None else send()
        try:
            value = json.loads(answer) if answer else None
        except ValueError:
            value = None
        if status >= 400:
            detail = value.get("detail", "") if isinstance(value, dict) else ""
            reason = value.get("reason", "") if isinstance(value, dict) else ""
            raise Refused(status, str(reason or f"http-{status}"), str(detail))
        return value

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)
