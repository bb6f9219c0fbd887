"""Building the system's server roles, and running them in-process so a fault can kill them.

`cardemu server ekyc-auth|ekyc-relay|ekyc-mgmt` and the scenario build each role
with the same functions here (`auth_role`, `relay_role`, `mgmt_role`): a
role's logic on its SQLite file and its Starlette app.

`InProcessRole` is a role served in this process that a fault can kill and
restart, as `host.systems.servers.ServerProcess` does for a process: a kill
stops its server and drops every object of the role (sessions, caches, the
open store); the restart builds the role again from its SQLite file on the
same port. What survives is what the store committed, exactly as after
SIGKILL, at a fraction of a process start: the scenario's fault walk runs every
kill point this way (`--processes` runs real processes instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from host.lpa.es9 import HttpHook
from host.servers.web import RoleServer, TlsFiles

__all__ = [
    "InProcessRole",
    "auth_role",
    "auth_tls",
    "mgmt_role",
    "mgmt_tls",
    "relay_role",
    "relay_tls",
    "stop_all",
]

Built = tuple[Any, Starlette]


def auth_role(db: str, *, seed: int = 0, verifier: str | None = None) -> Built:
    """The authentication server on `db` with the demo key of `seed`."""
    from host.systems.ekyc.auth import AuthServer, create_app
    from host.systems.ekyc.demo import demo_pki
    from host.systems.ekyc.verifier import load_verifier

    auth = AuthServer(db, key=demo_pki(seed).auth, verifier=load_verifier(verifier))
    return auth, create_app(auth)


def relay_role(
    db: str,
    *,
    auth_url: str,
    address: str = "localhost:0",
    seed: int = 0,
    hook: HttpHook | None = None,
) -> Built:
    """The relay server: cardemu's SM-DS on `db` (the built-in GSMA test PKI) with the seed's
    additions; it trusts the demo eKYC CA of `seed` for the authentication server's HTTPS."""
    from host.pki import default_pki
    from host.systems.ekyc.demo import demo_pki
    from host.systems.ekyc.relay import Relay, create_app

    relay = Relay(
        default_pki(),
        address=address,
        store=db,
        auth_url=auth_url,
        auth_ca_pem=demo_pki(seed).ca.pem,
        hook=hook,
    )
    return relay, create_app(relay)


def auth_tls(seed: int = 0) -> TlsFiles:
    """The authentication server's HTTPS certificate (localhost) from the demo eKYC CA."""
    from host.systems.ekyc.demo import demo_pki

    tls = demo_pki(seed).tls
    return TlsFiles(tls.pem, tls.key_pem)


def relay_tls() -> TlsFiles:
    """CERT.DStls of the built-in test PKI's SM-DS on localhost (what LPAs check it with)."""
    from host.pki import default_pki

    tls = default_pki().issue_smds("localhost").dstls
    return TlsFiles(tls.pem, tls.key_pem)


def mgmt_role(
    carrier: str,
    db: str,
    *,
    auth_url: str,
    relay_url: str,
    address: str,
    seed: int = 0,
    hook: HttpHook | None = None,
) -> Built:
    """A carrier's management server (`host.systems.ekyc.demo.CARRIERS`), on the built-in
    GSMA test PKI and trusting the demo eKYC CA of `seed`.

    Raises:
        KeyError: no such carrier.
    """
    from host.pki import default_pki
    from host.systems.ekyc.demo import CARRIERS, demo_pki
    from host.systems.ekyc.mgmt import ManagementServer, create_app

    mgmt = ManagementServer(
        CARRIERS[carrier],
        db,
        pki=default_pki(),
        trusted_cas=[demo_pki(seed).ca.cert],
        auth_url=auth_url,
        relay_url=relay_url,
        address=address,
        auth_ca_pem=demo_pki(seed).ca.pem,
        hook=hook,
    )
    return mgmt, create_app(mgmt)


def mgmt_tls() -> TlsFiles:
    """CERT.DPtls of the built-in test PKI (what LPAs check an SM-DP+ with)."""
    from host.pki import default_pki

    tls = default_pki().dptls
    return TlsFiles(tls.pem, tls.key_pem)


class InProcessRole:
    """A role served in this process, killable and restartable (see the module docstring).

    Args:
        name: the party's name (the fault specs' kill target).
        build: makes the role's logic and app, called again on every restart.
        tls: serve HTTPS with this.
        on_start: called with the role's logic each time it is built (before it serves).
    """

    def __init__(
        self,
        name: str,
        build: Callable[[], Built],
        *,
        tls: TlsFiles | None = None,
        on_start: Callable[[Any], None] | None = None,
    ) -> None:
        self.name = name
        self.build = build
        self.tls = tls
        self.on_start = on_start
        self.port = 0
        self.starts = 0
        self.logic: Any = None
        self._server: RoleServer | None = None

    @property
    def pid(self) -> str:
        """Which incarnation serves (the injector's notes name it)."""
        return f"in-process #{self.starts}"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://localhost:{self.port}"

    def start(self) -> InProcessRole:
        logic, app = self.build()
        try:
            server = RoleServer(app, port=self.port, tls=self.tls, name=self.name)
        except BaseException:
            logic.close()
            raise
        self.port = server.port
        if hasattr(logic, "address"):
            logic.address = f"localhost:{self.port}"
        if self.on_start is not None:
            self.on_start(logic)
        server.start()
        self.logic, self._server = logic, server
        self.starts += 1
        return self

    def kill(self) -> None:
        """Stop serving and drop the role's objects; only its store's commits remain."""
        server, logic = self._server, self.logic
        self._server = self.logic = None
        if server is not None:
            server.stop()
        if logic is not None:
            logic.close()

    def restart(self) -> InProcessRole:
        self.kill()
        return self.start()

    def stop(self) -> None:
        self.kill()

    def __enter__(self) -> InProcessRole:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all(roles: list[InProcessRole]) -> None:
    """Stop several roles at once (each stop waits out uvicorn's shutdown tick)."""
    import threading

    threads = [threading.Thread(target=r.stop, name=f"stop-{r.name}") for r in roles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
