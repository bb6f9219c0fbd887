"""`cardemu smds`: the built-in SM-DS (ES11 to LPAs, ES12 from SM-DP+ servers) and its events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from host.commands.common import InvalidInput, json_option, serve_until_interrupted
from host.es9plus import Es9Error
from host.lpa.es9 import split_address
from host.pki import PkiError
from host.servers.readonly import NotAStore, check_store
from host.servers.smds.app import load_smds
from host.servers.smds.server import SmDs
from host.servers.smds.store import STORE_KIND, STORE_TABLES, stored_events

DEFAULT_PORT = 8444
F = TypeVar("F", bound=Callable[..., Any])


def open_smds(
    pki_dir: str | None,
    db: str,
    address: str,
    *,
    root: str | None = None,
    root_connect_to: str | None = None,
    root_no_tls: bool = False,
) -> SmDs:
    """The SM-DS on `db` (refusing a file that is not an SM-DS store), for the commands."""
    target = split_address(root_connect_to, 0) if root_connect_to else None
    try:
        check_store(db, what=STORE_KIND, tables=STORE_TABLES)
        return load_smds(
            db, pki_dir, address, root=root, root_connect_to=target, root_tls=not root_no_tls
        )
    except NotAStore as e:
        raise InvalidInput(str(e)) from None
    except PkiError as e:
        raise click.ClickException(str(e)) from None


@click.group("smds", short_help="The built-in SM-DS (SGP.22 ES11/ES12).")
def smds() -> None:
    """The built-in SM-DS (GSMA SGP.22 ES11/ES12): event records that send LPAs to an SM-DP+.

    Events live in an SQLite store (--db); CERT.DSauth and CERT.DStls come from
    the built-in test PKI unless --pki names one (its CRLs are checked too).

    \b
    Examples:
      cardemu smds serve --port 8444 &
      cardemu smds register 89049032000000000000000000000163 EVT-1 localhost:8443
      cardemu smds events --json
      cardemu lpa discover --smds localhost:8444
    """


db_option = click.option(
    "--db", default="smds.sqlite", show_default=True, help="The SM-DS's SQLite store (events)."
)
pki_option = click.option(
    "--pki",
    "pki_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Its certificates (`cardemu pki create`) [default: built-in test PKI].",
)


def serve_options(f: F) -> F:
    """The options `smds serve` and `server smds` share."""
    for opt in reversed(
        [
            click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
            click.option(
                "--allow-remote",
                is_flag=True,
                help="Allow a --host outside loopback (logged as a warning).",
            ),
            click.option(
                "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True
            ),
            db_option,
            pki_option,
            click.option("--address", help="The SM-DS address [default: localhost:PORT]."),
            click.option(
                "--root",
                metavar="ADDRESS",
                help="Be an alternative SM-DS: forward registrations to this root SM-DS.",
            ),
            click.option(
                "--root-connect-to", metavar="HOST:PORT", help="Reach the root there instead."
            ),
            click.option("--root-no-tls", is_flag=True, help="Plain HTTP to the root (tests)."),
            click.option("--no-tls", is_flag=True, help="Plain HTTP (behind a TLS proxy)."),
        ]
    ):
        f = opt(f)
    return f


def run_smds(
    host: str,
    allow_remote: bool,
    port: int,
    db: str,
    pki_dir: str | None,
    address: str | None,
    root: str | None,
    root_connect_to: str | None,
    root_no_tls: bool,
    no_tls: bool,
) -> None:
    """Serve one SM-DS in the foreground until Ctrl-C."""
    ds = open_smds(
        pki_dir,
        db,
        address or f"localhost:{port}",
        root=root,
        root_connect_to=root_connect_to,
        root_no_tls=root_no_tls,
    )
    try:
        server = ds.serve(host, port, tls=not no_tls, allow_remote=allow_remote)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    if not address:
        ds.address = f"localhost:{server.port}"
    kind = f"alternative SM-DS (root {root})" if root else "root SM-DS"
    serve_until_interrupted(
        "smds",
        server,
        [f"smds: {kind} {ds.address} serving on {server.url} (Ctrl-C stops)"],
    )


@smds.command("serve")
@serve_options
def serve(**kw: object) -> None:
    """Serve ES11 and ES12 on loopback until Ctrl-C.

    \b
    Examples:
      cardemu smds serve --port 8444
      cardemu smds serve --port 8445 --db alt.sqlite --root localhost:8444
    """
    run_smds(**kw)  # type: ignore[arg-type]


@smds.command("register", short_help="Register an event (what ES12.RegisterEvent does).")
@db_option
@pki_option
@click.argument("eid")
@click.argument("event_id")
@click.argument("rsp_server_address")
def register(
    db: str, pki_dir: str | None, eid: str, event_id: str, rsp_server_address: str
) -> None:
    """Register an event for EID: EVENT_ID at RSP_SERVER_ADDRESS (an SM-DP+).

    \b
    Examples:
      cardemu smds register 89049032000000000000000000000163 EVT-1 localhost:8443
    """
    ds = open_smds(pki_dir, db, "localhost")
    try:
        ds.register(eid, event_id, rsp_server_address)
    except Es9Error as e:
        raise click.ClickException(str(e)) from None
    finally:
        ds.events.close()
    click.echo(f"event {event_id} for {eid} at {rsp_server_address}")


@smds.command("delete", short_help="Delete an event (what ES12.DeleteEvent does).")
@db_option
@pki_option
@click.argument("eid")
@click.argument("event_id")
def delete(db: str, pki_dir: str | None, eid: str, event_id: str) -> None:
    """Delete EVENT_ID of EID.

    \b
    Examples:
      cardemu smds delete 89049032000000000000000000000163 EVT-1
    """
    ds = open_smds(pki_dir, db, "localhost")
    try:
        ds.delete(eid, event_id)
    except Es9Error as e:
        raise click.ClickException(str(e)) from None
    finally:
        ds.events.close()
    click.echo(f"deleted event {event_id} of {eid}")


@smds.command("events")
@db_option
@json_option
def events(db: str, as_json: bool) -> None:
    """List the event records (read only).

    \b
    Examples:
      cardemu smds events --json
    """
    try:
        rows = stored_events(db)
    except NotAStore as e:
        raise InvalidInput(str(e)) from None
    if as_json:
        doc = [
            {
                "eid": r.eid,
                "eventId": r.event_id,
                "rspServerAddress": r.address,
                "forwardedTo": r.forwarded_to,
            }
            for r in rows
        ]
        click.echo(json.dumps(doc, indent=2))
        return
    if not rows:
        click.echo("no event")
    for r in rows:
        fwd = f"  (also at root {r.forwarded_to})" if r.forwarded_to else ""
        click.echo(f"{r.eid}  {r.event_id:<20} {r.address}{fwd}")
