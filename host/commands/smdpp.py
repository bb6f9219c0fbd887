"""`cardemu smdpp`: run the built-in SM-DP+ (ES9+ over HTTPS on loopback) and manage its orders."""

from __future__ import annotations

import json
from typing import BinaryIO

import click

from host.commands.common import InvalidInput, json_option, serve_until_interrupted
from host.hexutil import parse_hex
from host.lpa.demo import DEMO_MATCHING_ID
from host.lpa.demo import demo_order as make_demo_order
from host.pki import PkiError
from host.servers.pgstore import redact_url
from host.servers.readonly import NotAStore, check_store
from host.servers.smdpp.app import load_smdp
from host.servers.smdpp.es2plus import OperatorLink
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import STORE_KIND, STORE_TABLES, SmdpPlus, stored_orders
from host.servers.web import is_store_url

DEFAULT_PORT = 8443


def open_smdp(pki_dir: str | None, db: str, address: str) -> SmdpPlus:
    try:
        if not is_store_url(db):
            check_store(db, what=STORE_KIND, tables=STORE_TABLES)  # never tables in a foreign file
        return load_smdp(db, pki_dir, address)
    except NotAStore as e:
        # A missing or foreign input file: a usage error, like any other (exit 2).
        raise InvalidInput(str(e)) from None
    except PkiError as e:
        raise click.ClickException(str(e)) from None
    except ImportError as e:  # a postgresql:// store without psycopg
        raise click.ClickException(str(e)) from None
    except Exception as e:
        if type(e).__module__.startswith("psycopg"):  # the database cannot be reached
            raise click.ClickException(f"{redact_url(db)}: {str(e).strip()}") from None
        raise


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
    help="The SM-DP+'s SQLite store (orders, sessions), or a postgresql:// URL.",
)
operator_option = click.option(
    "--operator",
    "operators",
    multiple=True,
    metavar="ID=HOST:PORT",
    help="Send the ES2+ reports of orders by ID to this operator (plain HTTP; repeatable).",
)


def operator_links(specs: tuple[str, ...]) -> dict[str, OperatorLink]:
    """--operator ID=HOST:PORT values as the SM-DP+'s operator links."""
    links = {}
    for spec in specs:
        ident, sep, where = spec.partition("=")
        if not sep or not ident or not where:
            raise InvalidInput(f"--operator {spec!r}: give ID=HOST:PORT")
        links[ident] = OperatorLink(where, tls=False)
    return links


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
@operator_option
def serve(
    db: str,
    pki_dir: str | None,
    host: str,
    allow_remote: bool,
    port: int,
    address: str | None,
    no_tls: bool,
    demo_order: bool,
    operators: tuple[str, ...],
) -> None:
    """Serve ES9+ on loopback until Ctrl-C.

    \b
    Examples:
      cardemu smdpp serve --demo-order
      cardemu smdpp serve --pki ./pki --db orders.sqlite --port 9443
      cardemu smdpp serve --operator cardemu=localhost:8900
    """
    smdp = open_smdp(pki_dir, db, address or f"localhost:{port}")
    smdp.operators.update(operator_links(operators))
    if demo_order and smdp.order_state(DEMO_MATCHING_ID) is None:
        smdp.add_order(make_demo_order())
    try:
        server = smdp.serve(host, port, tls=not no_tls, allow_remote=allow_remote)
    except (ValueError, OSError) as e:
        raise click.ClickException(getattr(e, "strerror", None) or str(e)) from None
    if not address:
        smdp.address = f"localhost:{server.port}"
    banner = [f"SM-DP+ {smdp.address} serving ES9+ on {server.url} (Ctrl-C stops)"] + [
        f"  order LPA:1${smdp.address}${o['matching_id']}  ICCID {o['iccid']}  {o['state']}"
        for o in smdp.orders()
    ]
    serve_until_interrupted("SM-DP+", server, banner)


@smdpp.command("order", short_help="Order a profile for download (ES2+).")
@db_option
@pki_option
@click.argument("matching_id")
@click.option("--upp", "upp_file", type=click.File("rb"), help="Serve this profile package (DER).")
@click.option("--iccid", help="18-20 digits (a profile built from --imsi/--k).")
@click.option("--imsi")
@click.option("--k", "k_hex", help="K, 16 bytes hex.")
@click.option("--opc", "opc_hex", help="OPc, 16 bytes hex (Milenage).")
@click.option(
    "--xor", "use_xor", is_flag=True, help="The TS 34.108 XOR test algorithm instead of Milenage."
)
@click.option("--eid", help="Only this eUICC may download it.")
@click.option("--cc", "confirmation_code", help="The confirmation code the user must give.")
@click.option(
    "--smds", "smds_address", metavar="ADDRESS", help="Register the event at this SM-DS (--eid)."
)
@click.option(
    "--address",
    default=f"localhost:{DEFAULT_PORT}",
    show_default=True,
    help="This SM-DP+'s address (in the SM-DS event and the activation code).",
)
@click.option(
    "--operator",
    "operator_id",
    default="cardemu",
    show_default=True,
    help="The ES2+ requester ordering it (`serve --operator` says where its reports go).",
)
@click.option("--spn", default="cardemu", show_default=True)
@click.option("--name", default="cardemu test profile", show_default=True)
@json_option
def order(
    db: str,
    pki_dir: str | None,
    matching_id: str,
    upp_file: BinaryIO | None,
    iccid: str | None,
    imsi: str | None,
    k_hex: str | None,
    opc_hex: str | None,
    use_xor: bool,
    eid: str | None,
    confirmation_code: str | None,
    smds_address: str | None,
    address: str,
    operator_id: str,
    spn: str,
    name: str,
    as_json: bool,
) -> None:
    """Order a profile for download under MATCHING_ID, through ES2+.

    The profile (built from --iccid/--imsi/--k, or a package given with --upp)
    goes into the SM-DP+'s pool; then ES2+ DownloadOrder and ConfirmOrder
    (SGP.22 §5.3) reserve it, set the confirmation code and register the
    SM-DS event, and release it. An empty MATCHING_ID ('') with --eid is the
    default-SM-DP+ flow: the LPA sends no matching ID. Prints the activation code.

    \b
    Examples:
      cardemu smdpp order MY-1 --iccid 8988211000000000024 --imsi 001010000000002 \\
          --k 000102030405060708090A0B0C0D0E0F --opc 000102030405060708090A0B0C0D0E0F
      cardemu smds serve --port 8444 &
      cardemu smdpp order MY-2 --iccid 8988211000000000040 --imsi 001010000000004 \\
          --k 000102030405060708090A0B0C0D0E0F --xor --cc 1234 \\
          --eid 89049032000000000000000000000163 --smds localhost:8444
    """
    from host.es9plus import Es9Error
    from host.servers.smdpp.es2plus import Es2Plus
    from host.servers.smdpp.saip import build_upp

    if upp_file is not None:
        upp = upp_file.read()
    else:
        if not (iccid and imsi and k_hex):
            raise InvalidInput("give --iccid, --imsi and --k (or a package with --upp)")
        if not use_xor and not opc_hex:
            raise InvalidInput("Milenage needs --opc (or use --xor)")
        try:
            upp = build_upp(
                ProfileOrder(
                    matching_id or "x",
                    iccid,
                    imsi,
                    parse_hex(k_hex),
                    parse_hex(opc_hex) if opc_hex else bytes(16),
                    algorithm="xor" if use_xor else "milenage",
                    spn=spn,
                    name=name,
                )
            )
        except ValueError as e:
            raise InvalidInput(str(e)) from None
    smdp = open_smdp(pki_dir, db, address)
    header = {"functionRequesterIdentifier": operator_id, "functionCallIdentifier": "cli"}
    try:
        try:
            the_iccid = smdp.add_package(None, upp, spn=spn, name=name)
        except ValueError as e:  # not a profile package, or its ICCID is ordered already
            raise click.ClickException(str(e)) from None
        es2 = Es2Plus(smdp)
        try:
            es2.download_order({"header": header, "iccid": the_iccid, "eid": eid})
            answer = es2.confirm_order(
                {
                    "header": header,
                    "iccid": the_iccid,
                    "eid": eid,
                    "matchingId": matching_id,
                    "confirmationCode": confirmation_code,
                    "smdsAddress": smds_address,
                    "releaseFlag": True,
                }
            )
        except Es9Error as e:
            # All or nothing: a refused order leaves no profile behind in the pool.
            with smdp.store.transaction() as c:
                c.execute("DELETE FROM orders WHERE iccid = ?", (the_iccid,))
            raise click.ClickException(str(e)) from None
    finally:
        smdp.store.close()
    code = f"LPA:1${address}${answer['matchingId']}" + ("$$1" if confirmation_code else "")
    doc = {"iccid": the_iccid, "matchingId": answer["matchingId"], "activationCode": code}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"order {answer['matchingId'] or '(default SM-DP+)'}: ICCID {the_iccid}")
        click.echo(code)


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
