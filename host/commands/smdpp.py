"""`cardemu smdpp`: run the built-in SM-DP+ (ES9+ over HTTPS on loopback) and manage its orders."""

from __future__ import annotations

import json

import click

from host.commands.common import json_option, serve_until_interrupted
from host.commands.tools import InvalidInput
from host.hexutil import parse_hex
from host.lpa.demo import DEMO_MATCHING_ID
from host.lpa.demo import demo_order as make_demo_order
from host.pki import PkiError
from host.servers.readonly import NotAStore, check_store
from host.servers.smdpp.app import load_smdp
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import STORE_KIND, STORE_TABLES, SmdpPlus, stored_orders

DEFAULT_PORT = 8443


def _smdp(pki_dir: str | None, db: str, address: str) -> SmdpPlus:
    try:
        check_store(db, what=STORE_KIND, tables=STORE_TABLES)  # never tables in a foreign file
        return load_smdp(db, pki_dir, address)
    except NotAStore as e:
        # A missing or foreign input file: a usage error, like any other (exit 2).
        raise InvalidInput(str(e)) from None
    except PkiError as e:
        raise click.ClickException(str(e)) from None


@click.group("smdpp", short_help="The built-in SM-DP+ (SGP.22 ES9+).")
def smdpp() -> None:
    """The built-in SM-DP+ (GSMA SGP.22 ES9+): serve profiles to LPAs.

    Orders and sessions live in an SQLite store (--db); certificates come from
    the built-in test PKI unless --pki names one.

    \b
    Examples:
      cardemu smdpp serve --demo-order
      cardemu smdpp order MY-1 --iccid 8988211000000000024 --imsi 001010000000002 \\
          --k 000102030405060708090A0B0C0D0E0F --opc 000102030405060708090A0B0C0D0E0F
      cardemu smdpp orders --json
    """


db_option = click.option(
    "--db",
    default="smdpp.sqlite",
    show_default=True,
    help="The SM-DP+'s SQLite store (orders, sessions).",
)
pki_option = click.option(
    "--pki",
    "pki_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Its certificates (`cardemu pki create`) [default: built-in test PKI].",
)


@smdpp.command("serve")
@db_option
@pki_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--allow-remote", is_flag=True, help="Allow a --host outside loopback (logged as a warning)."
)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--address", help="The SM-DP+ address LPAs use [default: localhost:PORT].")
@click.option("--no-tls", is_flag=True, help="Plain HTTP (behind a TLS proxy).")
@click.option(
    "--demo-order", is_flag=True, help=f"Add the demo profile under matching ID {DEMO_MATCHING_ID}."
)
def serve(
    db: str,
    pki_dir: str | None,
    host: str,
    allow_remote: bool,
    port: int,
    address: str | None,
    no_tls: bool,
    demo_order: bool,
) -> None:
    """Serve ES9+ on loopback until Ctrl-C.

    \b
    Examples:
      cardemu smdpp serve --demo-order
      cardemu smdpp serve --pki ./pki --db orders.sqlite --port 9443
    """
    smdp = _smdp(pki_dir, db, address or f"localhost:{port}")
    if demo_order and smdp.order_state(DEMO_MATCHING_ID) is None:
        smdp.add_order(make_demo_order())
    try:
        server = smdp.serve(host, port, tls=not no_tls, allow_remote=allow_remote)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    if not address:
        smdp.address = f"localhost:{server.port}"
    click.echo(f"SM-DP+ {smdp.address} serving ES9+ on {server.url} (Ctrl-C stops)", err=True)
    for o in smdp.orders():
        click.echo(
            f"  order LPA:1${smdp.address}${o['matching_id']}  ICCID {o['iccid']}  {o['state']}",
            err=True,
        )
    serve_until_interrupted("SM-DP+", server.serve_forever)


@smdpp.command("order", short_help="Prepare a profile under MATCHING_ID.")
@db_option
@pki_option
@click.argument("matching_id")
@click.option("--iccid", required=True, help="18-20 digits.")
@click.option("--imsi", required=True)
@click.option("--k", "k_hex", required=True, help="K, 16 bytes hex.")
@click.option("--opc", "opc_hex", help="OPc, 16 bytes hex (Milenage).")
@click.option(
    "--xor", "use_xor", is_flag=True, help="The TS 34.108 XOR test algorithm instead of Milenage."
)
@click.option("--eid", help="Only this eUICC may download it.")
@click.option("--spn", default="cardemu", show_default=True)
@click.option("--name", default="cardemu test profile", show_default=True)
def order(
    db: str,
    pki_dir: str | None,
    matching_id: str,
    iccid: str,
    imsi: str,
    k_hex: str,
    opc_hex: str | None,
    use_xor: bool,
    eid: str | None,
    spn: str,
    name: str,
) -> None:
    """Prepare a profile for download under MATCHING_ID.

    \b
    Examples:
      cardemu smdpp order MY-1 --iccid 8988211000000000024 --imsi 001010000000002 \\
          --k 000102030405060708090A0B0C0D0E0F --opc 000102030405060708090A0B0C0D0E0F
    """
    try:
        k = parse_hex(k_hex)
        opc = parse_hex(opc_hex) if opc_hex else bytes(16)
        o = ProfileOrder(
            matching_id,
            iccid,
            imsi,
            k,
            opc,
            algorithm="xor" if use_xor else "milenage",
            eid=eid,
            spn=spn,
            name=name,
        )
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    if not use_xor and not opc_hex:
        raise InvalidInput("Milenage needs --opc (or use --xor)")
    smdp = _smdp(pki_dir, db, "localhost")
    try:
        smdp.add_order(o)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    finally:
        smdp.store.close()
    click.echo(f"order {matching_id}: ICCID {o.full_iccid}")


@smdpp.command("orders")
@db_option
@pki_option
@json_option
def orders(db: str, pki_dir: str | None, as_json: bool) -> None:
    """List the orders and their states.

    The store is only read: a missing file is not made, a foreign one not changed.

    \b
    Examples:
      cardemu smdpp orders --json
      cardemu smdpp orders --db orders.sqlite
    """
    del pki_dir  # the orders are listed without the certificates
    try:
        rows = stored_orders(db)
    except NotAStore as e:
        raise InvalidInput(str(e)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['matching_id']:<20} {r['iccid']:<21} {r['state']:<11} {r['eid'] or 'any eUICC'}"
        )
