"""`cardemu server ROLE`: run one server role alone, on the servers' web stack (Starlette/uvicorn).

Each role is a subcommand with the same core options (--host, --port, --db,
TLS); the app it serves is the one the in-process test fixtures serve.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from starlette.types import ASGIApp

from host.commands.common import serve_until_interrupted
from host.servers.web import RoleServer, TlsFiles, bind_socket, serve_workers

DEFAULT_PORTS = {"smdpp": 8443, "registration": 8801, "repository": 8802}


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
      cardemu server repository --port 0 --db repo.sqlite
      cardemu server registration --port 0 --db hsm.sqlite
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
        raise click.ClickException(str(e)) from None


@server.command("smdpp")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--allow-remote", is_flag=True, help="Allow a --host outside loopback (logged as a warning)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORTS["smdpp"], show_default=True
)
@click.option("--db", default="smdpp.sqlite", show_default=True, help="The SQLite store.")
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
    workers: int,
) -> None:
    """The SM-DP+ (GSMA SGP.22 ES9+).

    \b
    Examples:
      cardemu server smdpp --port 0 --db /tmp/dp.sqlite --demo-order
      cardemu server smdpp --workers 2
    """
    from host.commands.smdpp import _smdp
    from host.lpa.demo import DEMO_MATCHING_ID
    from host.lpa.demo import demo_order as make_demo_order
    from host.servers.smdpp.app import ENV_ADDRESS, ENV_DB, ENV_PKI, create_app

    smdp = _smdp(pki_dir, db, address or f"localhost:{port}")
    if demo_order and smdp.order_state(DEMO_MATCHING_ID) is None:
        smdp.add_order(make_demo_order())
    default = TlsFiles(smdp.tls.pem, smdp.tls.key_pem) if smdp.tls is not None else None
    tls = _tls(no_tls, tls_cert, tls_key, default)
    if workers > 1:
        smdp.store.close()
        try:
            sock = bind_socket(host, port, allow_remote=allow_remote)
        except (ValueError, OSError) as e:
            raise click.ClickException(str(e)) from None
        bound = sock.getsockname()[1]
        os.environ.update(
            {ENV_DB: db, ENV_PKI: pki_dir or "", ENV_ADDRESS: address or f"localhost:{bound}"}
        )
        scheme = "http" if tls is None else "https"
        click.echo(
            f"smdpp: SM-DP+ {os.environ[ENV_ADDRESS]} serving on {scheme}://{host}:{bound} "
            f"with {workers} workers (Ctrl-C stops)",
            err=True,
        )
        serve_workers("host.servers.smdpp.app:app_from_env", sock, workers=workers, tls=tls)
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
    click.echo(f"smdpp: SM-DP+ {smdp.address} serving on {srv.url} (Ctrl-C stops)", err=True)
    serve_until_interrupted("smdpp", srv.serve_forever)


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
@click.option(
    "--demo-seed", type=int, default=0, show_default=True, help="The demo PKI's seed (test keys)."
)
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
    click.echo(f"repository: serving on {srv.url} (Ctrl-C stops)", err=True)
    serve_until_interrupted("repository", srv.serve_forever)


@server.command("registration", short_help="Run seed 002's registration device and HSM.")
@_core
@_tls_options
@click.option("--port", type=click.IntRange(0, 65535), default=8801, show_default=True)
@click.option("--db", default="hsm.sqlite", show_default=True, help="The HSM's SQLite store.")
@click.option(
    "--demo-seed", type=int, default=0, show_default=True, help="The demo PKI's seed (test keys)."
)
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
    click.echo(f"registration: serving on {srv.url} (Ctrl-C stops)", err=True)
    serve_until_interrupted("registration", srv.serve_forever)
