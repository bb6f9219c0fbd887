"""`cardemu server ROLE`: run one server role alone, on the servers' web stack (Starlette/uvicorn).

Each role is a subcommand with the same core options (--host, --port, --db,
TLS); the app it serves is the one the in-process test fixtures serve.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from starlette.types import ASGIApp

from host.commands.common import serve_until_interrupted
from host.servers.web import RoleServer, TlsFiles, WorkerPool, bind_socket

DEFAULT_PORTS = {
    "smdpp": 8443,
    "smds": 8444,
    "registration": 8801,
    "repository": 8802,
    "smsc": 8808,
    "doorlock-ams": 8810,
    "ekyc-auth": 8811,
    "ekyc-relay": 8812,
    "ekyc-mgmt": 8813,
}
"""Seed 003's roles (move-*) use 8803-8807."""


@click.group("server", short_help="Run one server role alone (e.g. the SM-DP+).")
def server() -> None:
    """Run one server role in the foreground until Ctrl-C or SIGTERM.

    Every role serves on loopback unless --allow-remote is given, keeps its
    state in one SQLite file (--db), and speaks HTTPS unless --no-tls.

    \b
    Examples:
      cardemu server smdpp --port 8443 --db smdpp.sqlite --demo-order
      cardemu server smdpp --port 0 --no-tls
      cardemu server smdpp --tls-cert dp.pem --tls-key dp.key
      cardemu server smds --port 0 --db /tmp/ds.sqlite
      cardemu server repository --port 0 --db repo.sqlite
      cardemu server registration --port 0 --db hsm.sqlite
      cardemu server move-provider --port 0 --db provider.sqlite
      cardemu server move-auc --port 0 --db auc.sqlite --demo-subscriber
      cardemu server smsc --port 0 --db smsc.sqlite
      cardemu server doorlock-ams --port 0 --db ams.sqlite
      cardemu server ekyc-auth --port 0 --db ekyc-auth.sqlite
    """


def _tls(
    no_tls: bool, cert: str | None, key: str | None, default: TlsFiles | None
) -> TlsFiles | None:
    if no_tls:
        return None
    if bool(cert) != bool(key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if cert and key:
        return TlsFiles(Path(cert).read_bytes(), Path(key).read_bytes())
    if default is None:
        raise click.UsageError("this role has no built-in certificate: give --tls-cert/--tls-key")
    return default


def _run(
    role: str, app: ASGIApp, host: str, port: int, tls: TlsFiles | None, allow_remote: bool
) -> RoleServer:
    try:
        return RoleServer(app, host, port, tls=tls, allow_remote=allow_remote, name=role)
    except (ValueError, OSError) as e:
        raise click.ClickException(getattr(e, "strerror", None) or str(e)) from None


@server.command("smdpp")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--allow-remote", is_flag=True, help="Allow a --host outside loopback (logged as a warning)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORTS["smdpp"], show_default=True
)
@click.option(
    "--db",
    default="smdpp.sqlite",
    show_default=True,
    help="The SQLite store, or a postgresql://user@host:port/db URL (several workers, machines).",
)
@click.option(
    "--pki",
    "pki_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Its certificates (`cardemu pki create`) [default: built-in test PKI].",
)
@click.option("--address", help="The SM-DP+ address LPAs use [default: localhost:PORT].")
@click.option("--no-tls", is_flag=True, help="Plain HTTP (behind a TLS proxy).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option("--demo-order", is_flag=True, help="Add the demo profile order if it is not there.")
@click.option(
    "--operator",
    "operators",
    multiple=True,
    metavar="ID=HOST:PORT",
    help="Send the ES2+ reports of orders by ID to this operator (plain HTTP; repeatable).",
)
@click.option(
    "--load-orders",
    type=click.IntRange(0),
    default=0,
    help="Add orders LOAD-000000 ... for `cardemu load` (those missing).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (uvicorn's supervisor), sharing the socket and the store.",
)
def smdpp(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    pki_dir: str | None,
    address: str | None,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
    demo_order: bool,
    operators: tuple[str, ...],
    load_orders: int,
    workers: int,
) -> None:
    """The SM-DP+ (GSMA SGP.22 ES9+ and ES2+).

    With --workers N, N processes share the socket; every RSP session lives in
    the store, so any worker serves any step. Give them PostgreSQL (--db
    postgresql://...): on SQLite the workers wait for each other's writes.

    \b
    Examples:
      cardemu server smdpp --port 0 --db dp.sqlite --demo-order
      cardemu server smdpp --port 0 --db dp.sqlite --load-orders 100
      cardemu server smdpp --workers 2
    """
    from host.commands.smdpp import open_smdp, operator_links
    from host.lpa.demo import DEMO_MATCHING_ID
    from host.lpa.demo import demo_order as make_demo_order
    from host.servers.smdpp.app import ENV_ADDRESS, ENV_DB, ENV_PKI, create_app

    smdp = open_smdp(pki_dir, db, address or f"localhost:{port}")
    smdp.operators.update(operator_links(operators))
    if demo_order and smdp.order_state(DEMO_MATCHING_ID) is None:
        smdp.add_order(make_demo_order())
    if load_orders:
        from host.load.orders import add_load_orders

        added = add_load_orders(smdp, load_orders)
        click.echo(f"smdpp: {added} load orders added ({load_orders} in all)", err=True)
    default = TlsFiles(smdp.tls.pem, smdp.tls.key_pem) if smdp.tls is not None else None
    tls = _tls(no_tls, tls_cert, tls_key, default)
    if workers > 1:
        smdp.store.close()
        try:
            sock = bind_socket(host, port, allow_remote=allow_remote)
        except (ValueError, OSError) as e:
            raise click.ClickException(getattr(e, "strerror", None) or str(e)) from None
        bound = sock.getsockname()[1]
        os.environ.update(
            {ENV_DB: db, ENV_PKI: pki_dir or "", ENV_ADDRESS: address or f"localhost:{bound}"}
        )
        scheme = "http" if tls is None else "https"
        banner = (
            f"smdpp: SM-DP+ {os.environ[ENV_ADDRESS]} serving on {scheme}://{host}:{bound} "
            f"with {workers} workers (Ctrl-C stops)"
        )

        pool = WorkerPool("host.servers.smdpp.app:app_from_env", sock, workers=workers, tls=tls)
        serve_until_interrupted("smdpp", pool, [banner])
        return
    srv = _run(
        "smdpp",
        create_app(smdp),
        host,
        port,
        tls,
        allow_remote,
    )
    if not address:
        smdp.address = f"localhost:{srv.port}"
    serve_until_interrupted(
        "smdpp",
        srv,
        [f"smdpp: SM-DP+ {smdp.address} serving on {srv.url} (Ctrl-C stops)"],
    )


def _smds_command() -> click.Command:
    from host.commands.smds import run_smds, serve_options

    @serve_options
    def smds(**kw: Any) -> None:
        """The SM-DS (GSMA SGP.22 ES11 to LPAs, ES12 from SM-DP+ servers).

        \b
        Examples:
          cardemu server smds --port 0 --db /tmp/ds.sqlite
          cardemu server smds --port 0 --db /tmp/alt.sqlite --root localhost:8444
        """
        run_smds(**kw)

    return click.command("smds", short_help="The SM-DS (SGP.22 ES11/ES12).")(smds)


server.add_command(_smds_command())


@server.command("operator", short_help="An operator stand-in receiving ES2+ download reports.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--allow-remote", is_flag=True, help="Allow a --host outside loopback (logged as a warning)."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8900, show_default=True)
@click.option("--db", default="operator.sqlite", show_default=True, help="The SQLite store.")
def operator(host: str, allow_remote: bool, port: int, db: str) -> None:
    """An operator's ES2+ endpoint: records each HandleDownloadProgressInfo (plain HTTP).

    Each report is printed on stderr as it arrives; all are kept in --db.

    \b
    Examples:
      cardemu server operator --port 8900 --db /tmp/operator.sqlite
    """
    from host.servers.operator import Operator, create_app

    def show(report: dict[str, Any]) -> None:
        status = report["notificationPointStatus"].get("status")
        click.echo(
            f"operator: ICCID {report['iccid']} point {report['notificationPointId']} {status}",
            err=True,
        )

    op = Operator(db, on_report=show)
    srv = _run("operator", create_app(op), host, port, None, allow_remote)
    serve_until_interrupted(
        "operator",
        srv,
        [f"operator: HandleDownloadProgressInfo on {srv.url} (Ctrl-C stops)"],
    )


def _core(f: Any) -> Any:
    """--host, --allow-remote (the same as every role's)."""
    f = click.option(
        "--allow-remote",
        is_flag=True,
        help="Allow a --host outside loopback (logged as a warning).",
    )(f)
    return click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")(
        f
    )


def _tls_options(f: Any) -> Any:
    """--no-tls, --tls-cert, --tls-key (seed 002's roles: the demo TLS by default)."""
    f = click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM key.")(f)
    f = click.option(
        "--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate."
    )(f)
    return click.option("--no-tls", is_flag=True, help="Plain HTTP (behind a TLS proxy).")(f)


def _demo_seed(what: str) -> Any:
    """--demo-seed: the seed of the role's demo keys (`what` they are, for --help)."""
    return click.option("--demo-seed", type=int, default=0, show_default=True, help=what)


def _demo_tls(seed: int) -> TlsFiles:
    from host.systems.repository.demo import demo_tls

    return demo_tls(seed).server


@server.command("repository", short_help="Run seed 002's repository server.")
@_core
@_tls_options
@click.option("--port", type=click.IntRange(0, 65535), default=8802, show_default=True)
@click.option("--db", default="repository.sqlite", show_default=True, help="The SQLite store.")
@click.option(
    "--holder", default="CARD0001", show_default=True, help="The holder's card (its CHR)."
)
@_demo_seed("The demo PKI's seed (test keys).")
def repository(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    demo_seed: int,
    holder: str,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 002's personal information server (the holder's repository), over HTTPS.

    Its certificate is the demo TLS of --demo-seed (a CA the scenario's
    terminals trust; `host.systems.repository.demo.demo_tls`) unless
    --tls-cert/--tls-key give one, or --no-tls serves plain HTTP.

    \b
    Examples:
      cardemu server repository --port 0 --db /tmp/repo.sqlite
      cardemu server repository --port 0 --db /tmp/repo.sqlite --no-tls
    """
    tls = _tls(no_tls, tls_cert, tls_key, None if no_tls else _demo_tls(demo_seed))
    from host.systems.repository.demo import demo_pki
    from host.systems.repository.server import Repository, create_app

    pki = demo_pki(demo_seed)
    repo = Repository(db, key=pki.repository, certificate=pki.repository_cert, root=pki.root.public)
    srv = _run("repository", create_app(repo), host, port, tls, allow_remote)
    serve_until_interrupted("repository", srv, [f"repository: serving on {srv.url} (Ctrl-C stops)"])


@server.command("registration", short_help="Run seed 002's registration device and HSM.")
@_core
@_tls_options
@click.option("--port", type=click.IntRange(0, 65535), default=8801, show_default=True)
@click.option("--db", default="hsm.sqlite", show_default=True, help="The HSM's SQLite store.")
@_demo_seed("The demo PKI's seed (test keys).")
@click.option(
    "--pkcs11-token",
    help="Keep the HSM's keys on this PKCS#11 token (PIN from $CARDEMU_HSM_PIN).",
)
@click.option(
    "--pkcs11-module",
    default="/usr/lib/softhsm/libsofthsm2.so",
    show_default=True,
    help="The PKCS#11 library for --pkcs11-token.",
)
def registration(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    demo_seed: int,
    pkcs11_token: str | None,
    pkcs11_module: str,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 002's registration device with its HSM (card issuance), over HTTPS.

    TLS as for `cardemu server repository` (the demo TLS of --demo-seed by default).

    \b
    Examples:
      cardemu server registration --port 0 --db /tmp/hsm.sqlite
    """
    tls = _tls(no_tls, tls_cert, tls_key, None if no_tls else _demo_tls(demo_seed))
    from host.systems.repository.demo import demo_pki
    from host.systems.repository.hsm import Hsm, RegistrationDevice, create_app

    keystore = None
    if pkcs11_token:
        from host.systems.repository.keystore import Pkcs11KeyStore

        pin = os.environ.get("CARDEMU_HSM_PIN")
        if not pin:
            raise click.UsageError("--pkcs11-token needs the user PIN in $CARDEMU_HSM_PIN")
        try:
            keystore = Pkcs11KeyStore(pkcs11_module, pkcs11_token, pin)
        except ImportError:
            raise click.ClickException(
                "--pkcs11-token needs python-pkcs11 (the pkcs11 extra)"
            ) from None
        except Exception as e:  # noqa: BLE001 - the library's own errors, one line
            raise click.ClickException(f"PKCS#11 token {pkcs11_token!r}: {e}") from None
    pki = demo_pki(demo_seed)
    device = RegistrationDevice(
        Hsm(db, keystore=keystore), key=pki.hsm, certificate=pki.hsm_cert, root=pki.root.public
    )
    srv = _run("registration", create_app(device), host, port, tls, allow_remote)
    serve_until_interrupted(
        "registration", srv, [f"registration: serving on {srv.url} (Ctrl-C stops)"]
    )


# -- seed 003: the profile move (host.systems.profile_move) -----------------------------------


def _move_tls(no_tls: bool, cert: str | None, key: str | None, seed: int) -> TlsFiles | None:
    """Seed 003's roles: HTTPS with the demo TLS of `seed` (`profile_move.common.move_tls`)."""
    from host.systems.profile_move.common import move_tls

    return _tls(no_tls, cert, key, None if no_tls else move_tls(seed))


def _move_ca(seed: int) -> bytes:
    """What seed 003's roles trust for their peers' HTTPS: the demo TLS CA of `seed`."""
    from host.systems.profile_move.common import move_ca_pem

    return move_ca_pem(seed)


def _move_demo(seed: int) -> Any:
    from host.systems.profile_move.pki import demo_pki

    return demo_pki(seed)


def _serve_with_worker(
    role: str, srv: RoleServer, tick: Any, interval: float, banner: Sequence[str] = ()
) -> None:
    """Serve, with the role's worker (`tick`) running every `interval` seconds beside it."""
    import threading

    stop = threading.Event()

    def work() -> None:
        while not stop.wait(interval):
            try:
                tick()
            except Exception as e:  # noqa: BLE001 - a worker round that fails is retried
                click.echo(f"{role}: worker: {type(e).__name__}: {e}", err=True)

    threading.Thread(target=work, name=f"{role}-worker", daemon=True).start()
    try:
        serve_until_interrupted(role, srv, banner)
    finally:
        stop.set()


@server.command("move-provider", short_help="Run seed 003's profile provider.")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8803, show_default=True)
@click.option("--db", default="move-provider.sqlite", show_default=True, help="Its log.")
@click.option("--resolver", "resolver_url", default="https://127.0.0.1:8804", show_default=True)
@click.option("--auc", "auc_url", default="https://127.0.0.1:8806", show_default=True)
@_demo_seed("The demo PKI's and TLS's seed.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Worker period (s).")
@click.option("--demo-subscription", is_flag=True, help="Add the test profile's subscription.")
@_tls_options
def move_provider(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    resolver_url: str,
    auc_url: str,
    demo_seed: int,
    interval: float,
    demo_subscription: bool,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 003's profile provider: runs each move from its log, resumes after a restart.

    It serves HTTPS with the demo TLS certificate (`--demo-seed`; its peers'
    HTTPS is checked against the demo TLS CA) unless --tls-cert/--tls-key give
    one, or --no-tls serves plain HTTP.

    \b
    Examples:
      cardemu server move-provider --port 0 --db /tmp/provider.sqlite --demo-subscription
      cardemu server move-provider --port 0 --db /tmp/provider.sqlite --no-tls
    """
    from card.uicc.builder import TEST_IMSI, TEST_MSISDN, sample_iccid
    from host.systems.profile_move.provider import ProfileProvider, create_app
    from host.systems.profile_move.scenario import DEMO_OP, DEMO_PROFILE_ID

    tls = _move_tls(no_tls, tls_cert, tls_key, demo_seed)
    provider = ProfileProvider(
        db,
        _move_demo(demo_seed),
        resolver_url=resolver_url,
        auc_url=auc_url,
        op=DEMO_OP,
        ca_pem=_move_ca(demo_seed),
    )
    if demo_subscription:
        provider.add_subscription(sample_iccid(), TEST_IMSI, TEST_MSISDN, DEMO_PROFILE_ID)
    srv = _run("move-provider", create_app(provider), host, port, tls, allow_remote)
    provider.url = srv.url
    _serve_with_worker(
        "move-provider",
        srv,
        provider.tick,
        interval,
        [f"move-provider: serving on {srv.url} (Ctrl-C stops)"],
    )


@server.command("move-manager", short_help="Run a profile manager of seed 003 (one per eSE).")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8805, show_default=True)
@click.option("--db", default="move-manager.sqlite", show_default=True, help="Its order box.")
@click.option(
    "--ese-id", "ese_ids", multiple=True, help="An eSE it manages (hex) [default: eSE 1]."
)
@click.option("--resolver", "resolver_url", default="https://127.0.0.1:8804", show_default=True)
@click.option("--interval", type=float, default=1.0, show_default=True, help="Worker period (s).")
@_demo_seed("The demo TLS's seed.")
@_tls_options
def move_manager(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    ese_ids: tuple[str, ...],
    resolver_url: str,
    interval: float,
    demo_seed: int,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 003's profile manager: orders for its eSEs, which terminals fetch (GET /orders).

    \b
    Examples:
      cardemu server move-manager --port 0 --db /tmp/manager.sqlite
    """
    from host.systems.profile_move.manager import ProfileManager, create_app
    from host.systems.profile_move.pki import ese_id_of

    tls = _move_tls(no_tls, tls_cert, tls_key, demo_seed)
    manager = ProfileManager(
        db, ese_ids or (ese_id_of(1).hex(),), resolver_url, ca_pem=_move_ca(demo_seed)
    )
    srv = _run("move-manager", create_app(manager), host, port, tls, allow_remote)
    _serve_with_worker(
        "move-manager",
        srv,
        manager.tick,
        interval,
        [f"move-manager: serving on {srv.url} (Ctrl-C stops)"],
    )


@server.command("move-resolver", short_help="Run seed 003's address resolution server.")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8804, show_default=True)
@click.option("--db", default="move-resolver.sqlite", show_default=True, help="The directory.")
@_demo_seed("The demo TLS's seed.")
@_tls_options
def move_resolver(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    demo_seed: int,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 003's address resolution server: managers by eSE ID, providers by MNO.

    \b
    Examples:
      cardemu server move-resolver --port 0 --db /tmp/resolver.sqlite
    """
    from host.systems.profile_move.resolver import Resolver, create_app

    tls = _move_tls(no_tls, tls_cert, tls_key, demo_seed)
    srv = _run("move-resolver", create_app(Resolver(db)), host, port, tls, allow_remote)
    serve_until_interrupted(
        "move-resolver", srv, [f"move-resolver: serving on {srv.url} (Ctrl-C stops)"]
    )


@server.command("move-mno", short_help="Run seed 003's MNO front end (user authentication).")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8807, show_default=True)
@click.option("--db", default="move-mno.sqlite", show_default=True, help="Users and requests.")
@click.option("--provider", "provider_url", default="https://127.0.0.1:8803", show_default=True)
@click.option("--interval", type=float, default=1.0, show_default=True, help="Worker period (s).")
@_demo_seed("The demo TLS's seed.")
@_tls_options
def move_mno(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    provider_url: str,
    interval: float,
    demo_seed: int,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 003's MNO front end: move requests, user authentication, the forward (515).

    \b
    Examples:
      cardemu server move-mno --port 0 --db /tmp/mno.sqlite
    """
    from host.systems.profile_move.mno import MnoFrontEnd, create_app

    tls = _move_tls(no_tls, tls_cert, tls_key, demo_seed)
    mno = MnoFrontEnd(db, provider_url, ca_pem=_move_ca(demo_seed))
    srv = _run("move-mno", create_app(mno), host, port, tls, allow_remote)
    _serve_with_worker(
        "move-mno", srv, mno.tick, interval, [f"move-mno: serving on {srv.url} (Ctrl-C stops)"]
    )


@server.command("move-auc", short_help="Run seed 003's AuC (K per IMSI, Milenage vectors).")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8806, show_default=True)
@click.option("--db", default="move-auc.sqlite", show_default=True, help="The subscribers.")
@_demo_seed("The demo K4's and TLS's seed.")
@click.option("--demo-subscriber", is_flag=True, help="Add the test subscription's IMSI and K.")
@_tls_options
def move_auc(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    demo_seed: int,
    demo_subscriber: bool,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Seed 003's AuC: authentication vectors, the K switch and its undo.

    \b
    Examples:
      cardemu server move-auc --port 0 --db /tmp/auc.sqlite --demo-subscriber
    """
    from card.uicc.builder import TEST_IMSI, TEST_K, TEST_OPC
    from host.systems.profile_move.auc import Auc, create_app

    auc = Auc(db, _move_demo(demo_seed).k4)
    if demo_subscriber and auc.current_k(TEST_IMSI) is None:
        auc.provision(TEST_IMSI, TEST_K, TEST_OPC)
    tls = _move_tls(no_tls, tls_cert, tls_key, demo_seed)
    srv = _run("move-auc", create_app(auc), host, port, tls, allow_remote)
    serve_until_interrupted("move-auc", srv, [f"move-auc: serving on {srv.url} (Ctrl-C stops)"])


@server.command("smsc", short_help="Run the SMS-centre stand-in (short messages per MSISDN).")
@_core
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORTS["smsc"], show_default=True
)
@click.option("--db", default="smsc.sqlite", show_default=True, help="The SQLite store.")
def smsc(host: str, allow_remote: bool, port: int, db: str) -> None:
    """The SMS centre stand-in OTA flows go through (plain HTTP, loopback).

    Application servers submit short messages for an MSISDN; a terminal polls
    its MSISDN's inbox and hands SMS-PP downloads to its SIM (host.ota).

    \b
    Examples:
      cardemu server smsc --port 0 --db /tmp/smsc.sqlite
    """
    from host.servers.smsc import SCHEMA, Smsc, create_app
    from host.servers.web import Store

    srv = _run("smsc", create_app(Smsc(Store(db, SCHEMA))), host, port, None, allow_remote)
    serve_until_interrupted("smsc", srv, [f"smsc: serving on {srv.url} (Ctrl-C stops)"])


@server.command("doorlock-ams", short_help="Run seed 001's application management server.")
@_core
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORTS["doorlock-ams"],
    show_default=True,
)  # fmt: skip
@click.option("--db", default="doorlock-ams.sqlite", show_default=True, help="The SQLite store.")
@click.option("--no-tls", is_flag=True, help="Plain HTTP (behind a TLS proxy).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option(
    "--smsc",
    "smsc_url",
    help="The SMS centre (`cardemu server smsc`): downloads over the air, requests by SMS.",
)
@click.option(
    "--address", default="12345", show_default=True, help="The server's address at the SMSC."
)
def doorlock_ams(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    no_tls: bool,
    tls_cert: str | None,
    tls_key: str | None,
    smsc_url: str | None,
    address: str,
) -> None:
    """Seed 001's application management server: lock registry, download requests, log.

    HTTPS with the demo TLS certificate unless --no-tls or --tls-cert/--tls-key.
    The issuer key is made on first start and kept in the store. With --smsc it
    installs applets over the air (RAM in SCP80 packets by SMS-PP, the SIMs'
    SCP80 test key set 1; the phones' terminals poll the SMS centre) and reads
    the locks' requests from its address there every second; without, it has no
    path to SIMs: it registers devices, checks requests, and answers 503 where
    a download would start.

    \b
    Examples:
      cardemu server doorlock-ams --port 0 --db /tmp/ams.sqlite
      cardemu server doorlock-ams --port 0 --db /tmp/ams.sqlite --no-tls
      cardemu server doorlock-ams --port 0 --db /tmp/ams.sqlite --smsc http://127.0.0.1:8808
    """
    from host.systems.doorlock.ams import AppManagementServer, create_app
    from host.systems.repository.demo import demo_tls

    default = demo_tls().server
    tls = _tls(no_tls, tls_cert, tls_key, default)
    if smsc_url is None:
        ams = AppManagementServer(db)
        srv = _run("doorlock-ams", create_app(ams), host, port, tls, allow_remote)
        serve_until_interrupted(
            "doorlock-ams",
            srv,
            [f"doorlock-ams: serving on {srv.url} (Ctrl-C stops)"],
        )
        return
    from host.presets import ota_test_keysets
    from host.servers.smsc import SmscClient
    from host.servers.web import Store
    from host.systems.doorlock.ams import SCHEMA
    from host.systems.doorlock.ota import OtaDelivery, SmsGateway, SmsPoller, StoredCounters

    gateway = SmsGateway(SmscClient(smsc_url), address)
    store = Store(db, SCHEMA)

    def msisdn_of(device: str) -> str | None:
        row = ams.device(device)
        return None if row is None else str(row["msisdn"])

    # The SCP80 counters in the store: a restarted server must go on above them.
    delivery = OtaDelivery(
        gateway,
        msisdn_of=msisdn_of,
        keyset_of=lambda d: ota_test_keysets()[0],
        timeout=60.0,
        counters=StoredCounters(store),
    )
    ams = AppManagementServer(store, delivery, sms_address=address)
    srv = _run("doorlock-ams", create_app(ams), host, port, tls, allow_remote)
    poller = SmsPoller(lambda: ams.poll_sms(gateway)).start()
    banner = f"doorlock-ams: serving on {srv.url}, SMS {address} at {smsc_url} (Ctrl-C stops)"
    try:
        serve_until_interrupted("doorlock-ams", srv, [banner])
    finally:
        poller.stop()


@server.command("ekyc-auth", short_help="Run seed 000's authentication server (eKYC).")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8811, show_default=True)
@click.option("--db", default="ekyc-auth.sqlite", show_default=True, help="The SQLite store.")
@_demo_seed("The demo PKI's seed (test keys).")
@click.option(
    "--verifier",
    metavar="MODULE:FACTORY",
    help="An identity verifier to call instead of the built-in simulated eKYC vendor.",
)
@click.option("--no-tls", is_flag=True, help="Plain HTTP (behind a TLS proxy).")
def ekyc_auth(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    demo_seed: int,
    verifier: str | None,
    no_tls: bool,
) -> None:
    """Seed 000's authentication server: identity verification, certificates by key; HTTPS
    with a certificate from the demo eKYC CA (which the carriers and the relay trust).

    The built-in verifier simulates an eKYC vendor (face vector + liveness);
    --verifier names a factory returning a real one (see the README).

    \b
    Examples:
      cardemu server ekyc-auth --port 0 --db /tmp/ekyc-auth.sqlite
    """
    from host.systems.ekyc.roles import auth_role, auth_tls

    try:
        _, app = auth_role(db, seed=demo_seed, verifier=verifier)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    srv = _run("ekyc-auth", app, host, port, None if no_tls else auth_tls(demo_seed), allow_remote)
    serve_until_interrupted("ekyc-auth", srv, [f"ekyc-auth: serving on {srv.url} (Ctrl-C stops)"])


@server.command("ekyc-relay", short_help="Run seed 000's relay server (SM-DS).")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8812, show_default=True)
@click.option("--db", default="ekyc-relay.sqlite", show_default=True, help="The SQLite store.")
@click.option(
    "--auth-url",
    default="https://localhost:8811",
    show_default=True,
    help="The authentication server (certificates are fetched there).",
)
@_demo_seed("The demo PKI's seed (test keys).")
def ekyc_relay(
    host: str, allow_remote: bool, port: int, db: str, auth_url: str, demo_seed: int
) -> None:
    """Seed 000's relay server: the SM-DS (ES11/ES12), and the certificate on a first contract;
    HTTPS (CERT.DStls of the built-in test PKI).

    \b
    Examples:
      cardemu server ekyc-relay --port 0 --db /tmp/ekyc-relay.sqlite
    """
    from host.systems.ekyc.roles import relay_role, relay_tls

    try:
        relay, app = relay_role(db, auth_url=auth_url, address=f"localhost:{port}", seed=demo_seed)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    srv = _run("ekyc-relay", app, host, port, relay_tls(), allow_remote)
    relay.address = f"localhost:{srv.port}"
    banner = f"ekyc-relay: SM-DS {relay.address}, serving on {srv.url} (Ctrl-C stops)"
    serve_until_interrupted("ekyc-relay", srv, [banner])


@server.command("ekyc-mgmt", short_help="Run a carrier's management server (seed 000).")
@_core
@click.option("--port", type=click.IntRange(0, 65535), default=8813, show_default=True)
@click.option(
    "--carrier",
    type=click.Choice(["carrier1", "carrier2"]),
    default="carrier1",
    show_default=True,
    help="Which demo carrier (its PLMN, ICCID range and subscriber keys).",
)
@click.option("--db", help="The SQLite store [default: ekyc-CARRIER.sqlite].")
@click.option(
    "--auth-url", default="https://localhost:8811", show_default=True, help="The auth server."
)
@click.option(
    "--relay-url", default="https://localhost:8812", show_default=True, help="The relay server."
)
@click.option("--address", help="The SM-DP+ address LPAs use [default: localhost:PORT].")
@_demo_seed("The demo PKI's seed (test keys).")
def ekyc_mgmt(
    host: str,
    allow_remote: bool,
    port: int,
    carrier: str,
    db: str | None,
    auth_url: str,
    relay_url: str,
    address: str | None,
    demo_seed: int,
) -> None:
    """A carrier's management server: contracts beside its SM-DP+'s ES9+, HTTPS (CERT.DPtls).

    \b
    Examples:
      cardemu server ekyc-mgmt --carrier carrier2 --port 0 --db /tmp/mgmt2.sqlite
    """
    from host.systems.ekyc.roles import mgmt_role, mgmt_tls

    try:
        mgmt, app = mgmt_role(
            carrier,
            db or f"ekyc-{carrier}.sqlite",
            auth_url=auth_url,
            relay_url=relay_url,
            address=address or f"localhost:{port}",
            seed=demo_seed,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    srv = _run("ekyc-mgmt", app, host, port, mgmt_tls(), allow_remote)
    if not address:
        mgmt.address = f"localhost:{srv.port}"
    mgmt.reconcile()  # what a crash left undone towards the SM-DS
    banner = f"ekyc-mgmt: {carrier}, SM-DP+ {mgmt.address}, serving on {srv.url} (Ctrl-C stops)"
    serve_until_interrupted("ekyc-mgmt", srv, [banner])
