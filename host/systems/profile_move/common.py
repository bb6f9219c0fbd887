"""What seed 003's roles share: refusals, JSON routes, field checks, an in-process restartable role.

Every role is a plain class (no HTTP in it) whose operations take the request's
JSON object and return one; `json_app` puts them on the common web stack
(`host.servers.web`). `LocalRole` serves a role in this process and can kill
and restart it on the same port and SQLite file, which is what the fault walk
does to a party ("killed and restarted": what the store committed is all that
survives), in milliseconds instead of a process start.

The roles speak HTTPS, as every other system's do: `move_tls` is the demo
loopback TLS (`host.systems.repository.demo.demo_tls`: a demo CA, which the
roles' and phones' clients trust, and a localhost certificate). Between
parties that exchange profiles, key restores and user credentials a real
deployment has TLS on every link, loopback demo or not.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from host.servers.web import HttpError, Refused, RoleServer, TlsFiles, json_object, role_app

__all__ = [
    "Refused",
    "LocalRole",
    "json_app",
    "text",
    "hexbytes",
    "new_id",
    "Crashed",
    "move_ca_pem",
    "move_tls",
]

Handler = Callable[..., Any]
T = TypeVar("T")


class Crashed(Exception):
    """A party was killed while it acted (the fault walk's kill of a party that calls out)."""


def new_id() -> str:
    """A fresh 16-byte identifier in hex (request, move and order IDs)."""
    return secrets.token_hex(16)


def move_tls(seed: int = 0) -> TlsFiles:
    """The roles' HTTPS certificate (localhost, 127.0.0.1, ::1) from the demo TLS CA of `seed`."""
    from host.systems.repository.demo import demo_tls

    return demo_tls(seed).server


def move_ca_pem(seed: int = 0) -> bytes:
    """The demo TLS CA of `seed` (PEM): what the roles' and the phones' clients trust."""
    from host.systems.repository.demo import demo_tls

    return demo_tls(seed).ca_pem


def text(body: dict[str, Any], name: str, *, optional: bool = False, limit: int = 256) -> str:
    value = body.get(name)
    if value is None and optional:
        return ""
    if not isinstance(value, str) or len(value) > limit or (not value and not optional):
        raise Refused(400, f"{name}: a string of 1..{limit} characters")
    return value


def hexbytes(body: dict[str, Any], name: str, *, optional: bool = False) -> bytes:
    value = body.get(name)
    if value is None and optional:
        return b""
    if not isinstance(value, str):
        raise Refused(400, f"{name}: a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Refused(400, f"{name}: not hex") from None


def json_app(name: str, routes: Sequence[tuple[str, str, Handler]]) -> Starlette:
    """A role's app: each route calls `handler(body, **path_params)` off the event loop.

    The body is the request's JSON object (empty for GET); the handler's dict is
    the answer (200), None answers 204, `Refused` its status as a problem.
    """

    def endpoint(method: str, handler: Handler) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            body = await json_object(request) if method != "GET" else dict(request.query_params)
            params = dict(request.path_params)
            try:
                out = await run_in_threadpool(lambda: handler(body, **params))
            except Refused as e:
                raise HttpError(e.status, str(e)) from None
            return Response(status_code=204) if out is None else JSONResponse(out)

        return run

    return role_app(
        name,
        [Route(path, endpoint(m, h), methods=[m]) for m, path, h in routes],
    )


class LocalRole(Generic[T]):
    """A role served in this process, killable and restartable (see the module docstring).

    Args:
        name: the party's name.
        make: builds the role's logic on its store (called again on every restart).
        app: builds the app for the logic.
        close: closes the logic's store.
        tls: serve HTTPS with this (None: plain HTTP).
    """

    def __init__(
        self,
        name: str,
        make: Callable[[], T],
        app: Callable[[T], Starlette],
        close: Callable[[T], None],
        *,
        tls: TlsFiles | None = None,
    ) -> None:
        self.name = name
        self._make, self._app, self._close = make, app, close
        self.tls = tls
        self.logic: T = make()
        self._server = RoleServer(app(self.logic), tls=tls, name=name)  # bound: the port is known
        self.port = self._server.port
        self.url = self._server.url
        self.pid = 1  # the incarnation (what a kill note shows)
        self.down = False

    def start(self) -> LocalRole[T]:
        """Serve (returns once the server accepts connections)."""
        self._server.start()
        return self

    def kill(self) -> None:
        """Stop serving and drop the logic with what it held in memory."""
        if not self.down:
            self._server.stop()
            self._close(self.logic)
            self.down = True

    def restart(self) -> LocalRole[T]:
        """A new incarnation on the same port and store."""
        self.kill()
        self.logic = self._make()
        self._server = RoleServer(
            self._app(self.logic), port=self.port, tls=self.tls, name=self.name
        ).start()
        self.pid += 1
        self.down = False
        return self

    def stop(self) -> None:
        self.kill()
