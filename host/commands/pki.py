"""`cardemu pki`: a test PKI for GSMA RSP (CI, EUM, eUICC, SM-DP+), see `host.pki`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from host.commands.common import InvalidInput, json_option
from host.pki import (
    CURVES,
    DEFAULT_EIN,
    DEFAULT_SMDP_HOST,
    OID_ROLE_CI,
    OID_ROLE_DP_AUTH,
    OID_ROLE_DP_PB,
    OID_ROLE_DP_TLS,
    OID_ROLE_EUICC,
    OID_ROLE_EUM,
    Credential,
    PkiError,
    TestPki,
    create_pki,
    has_policy,
    load_pki,
    make_eid,
)

_ROLES = [
    (OID_ROLE_CI, "ci"),
    (OID_ROLE_EUM, "eum"),
    (OID_ROLE_EUICC, "euicc"),
    (OID_ROLE_DP_AUTH, "dp-auth"),
    (OID_ROLE_DP_PB, "dp-pb"),
    (OID_ROLE_DP_TLS, "dp-tls"),
]


def _role(cred: Credential) -> str:
    return next((name for oid, name in _ROLES if has_policy(cred.cert, oid)), "?")


def _describe(pki: TestPki) -> list[dict[str, str]]:
    creds = [("ci", pki.ci), ("eum", pki.eum)]
    creds += [(f"euicc {eid}", c) for eid, c in pki.euiccs.items()]
    creds += [("dpauth", pki.dpauth), ("dppb", pki.dppb), ("dptls", pki.dptls)]
    return [
        {
            "name": name,
            "curve": pki.curve,
            "role": _role(c),
            "subject": c.cert.subject.rfc4514_string(),
            "ski": c.ski.hex().upper(),
        }
        for name, c in creds
    ]


@click.group("pki", short_help="Test PKI for eSIM: CI, EUM, eUICC, SM-DP+.")
def pki() -> None:
    """Test PKI for eSIM (GSMA SGP.22): CI, EUM, eUICC and SM-DP+ certificates.

    Without one, the eUICC presets, the LPA and the SM-DP+ share a built-in
    test PKI; a PKI made here is used with --pki DIRECTORY.

    \b
    Examples:
      cardemu pki create ./pki
      cardemu pki show ./pki
      cardemu smdpp serve --pki ./pki --demo-order
    """


@pki.command("create", short_help="Create a test PKI in DIRECTORY.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--curve",
    "curves",
    type=click.Choice(sorted(CURVES)),
    multiple=True,
    help="Curve(s) to create (repeatable) [default: nist].",
)
@click.option("--ein", default=DEFAULT_EIN, show_default=True, help="EID prefix the EUM may issue.")
@click.option("--eid", "eids", multiple=True, help="An eUICC to certify (repeatable).")
@click.option(
    "--euiccs",
    type=click.IntRange(1, 1000),
    help="Certify N eUICCs numbered 1..N in the EIN range.",
)
@click.option(
    "--smdp-host",
    default=DEFAULT_SMDP_HOST,
    show_default=True,
    help="SM-DP+ host name (CERT.DPtls subject and DNS name).",
)
@click.option(
    "--tls-name", "tls_names", multiple=True, help="More DNS names/IPs in CERT.DPtls (repeatable)."
)
@click.option("--seed", help="Make keys and certificates reproducible from this text.")
@click.option("--force", is_flag=True, help="Write into a directory that already holds a PKI.")
@json_option
def create(
    directory: str,
    curves: tuple[str, ...],
    ein: str,
    eids: tuple[str, ...],
    euiccs: int | None,
    smdp_host: str,
    tls_names: tuple[str, ...],
    seed: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a test PKI in DIRECTORY: keys (PEM) and certificates (DER/PEM).

    The CI is self-signed; the EUM may issue EIDs starting with --ein; the
    eUICC certificates carry the EID in their subject serialNumber; the SM-DP+
    gets CERT.DPauth, CERT.DPpb and CERT.DPtls. Every certificate has the
    policy OID, key usage and key identifiers SGP.22 §4.5.2 requires. The
    private keys are unencrypted: for tests only.

    \b
    Examples:
      cardemu pki create ./pki
      cardemu pki create ./pki2 --curve nist --curve brainpool --euiccs 3
      cardemu pki create ./pki3 --smdp-host testsmdpplus1.example.com --seed demo
    """
    root = Path(directory)
    if (root / "pki.json").exists() and not force:
        raise click.ClickException(f"{root} already holds a PKI (use --force to overwrite)")
    if eids and euiccs:
        raise InvalidInput("--eid and --euiccs both choose the eUICCs: give one")
    try:
        eid_list = list(eids) or [make_eid(ein, i) for i in range(1, (euiccs or 1) + 1)]
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    names = list(tls_names) or (
        ["localhost", "127.0.0.1"] if smdp_host == DEFAULT_SMDP_HOST else []
    )
    made = []
    try:
        for curve in curves or ("nist",):
            p = create_pki(
                curve=curve,
                eids=eid_list,
                ein=ein,
                smdp_host=smdp_host,
                tls_names=names,
                seed=seed,
            )
            p.save(root)
            made.append(p)
    except PkiError as e:
        raise InvalidInput(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot write {root}: {e}") from None
    rows = [row for p in made for row in _describe(p)]
    if as_json:
        click.echo(json.dumps({"directory": str(root), "certificates": rows}, indent=2))
        return
    for row in rows:
        click.echo(f"{row['curve']:9} {row['name']:40} {row['role']:8} {row['subject']}")
    click.echo(f"written to {root}", err=True)


@pki.command("show", short_help="List the certificates of a test PKI.")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--curve", type=click.Choice(sorted(CURVES)), default="nist", show_default=True)
@json_option
def show(directory: str, curve: str, as_json: bool) -> None:
    """List the certificates of a PKI made by `cardemu pki create`.

    \b
    Examples:
      cardemu pki show ./pki
      cardemu pki show ./pki --curve nist --json
    """
    try:
        p = load_pki(directory, curve)
    except PkiError as e:
        raise click.ClickException(str(e)) from None
    rows = _describe(p)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:40} {row['role']:8} {row['ski']}  {row['subject']}")


@pki.command("revoke", short_help="Revoke a certificate: re-issue its CA's CRL.")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--euicc", "eid", metavar="EID", help="The eUICC certificate of this EID.")
@click.option("--dpauth", is_flag=True, help="CERT.DPauth (the SM-DP+'s authentication key).")
@click.option("--dppb", is_flag=True, help="CERT.DPpb (the SM-DP+'s profile binding key).")
@click.option("--eum", is_flag=True, help="The EUM certificate.")
@click.option(
    "--cert",
    "cert_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Any certificate (DER or PEM) the PKI's CI or EUM issued.",
)
@click.option("--curve", type=click.Choice(list(CURVES)), default="nist", show_default=True)
@json_option
def revoke(
    directory: str,
    eid: str | None,
    dpauth: bool,
    dppb: bool,
    eum: bool,
    cert_file: str | None,
    curve: str,
    as_json: bool,
) -> None:
    """Revoke one certificate of the PKI in DIRECTORY: its CA's CRL is re-issued there.

    An eUICC certificate goes on the EUM's CRL (crl/CRL_EUM_ECDSA_*.der), the
    others on the CI's (crl/CRL_CI_ECDSA_*.der), each with the next CRL number.
    `cardemu smdpp serve --pki DIRECTORY` and `cardemu smds serve --pki
    DIRECTORY` refuse eUICCs whose chain is revoked; `cardemu lpa load-crl`
    hands the CI's CRL to an eUICC, which then refuses a revoked SM-DP+.

    \b
    Examples:
      cardemu pki create ./pki
      cardemu pki revoke ./pki --euicc 89049032000000000000000000000163
      cardemu pki revoke ./pki --dpauth
    """

    from host.pki import parse_certificate
    from host.pki import revoke as revoke_cert

    chosen = [x for x in (eid, dpauth or None, dppb or None, eum or None, cert_file) if x]
    if len(chosen) != 1:
        raise InvalidInput("name one certificate: --euicc EID, --dpauth, --dppb, --eum or --cert")
    try:
        the_pki = load_pki(directory, curve)
        if eid is not None:
            if eid not in the_pki.euiccs:
                raise InvalidInput(f"{directory}: no eUICC {eid} (has {', '.join(the_pki.euiccs)})")
            cert = the_pki.euiccs[eid].cert
        elif dpauth:
            cert = the_pki.dpauth.cert
        elif dppb:
            cert = the_pki.dppb.cert
        elif eum:
            cert = the_pki.eum.cert
        else:
            assert cert_file is not None
            data = Path(cert_file).read_bytes()
            try:
                cert = parse_certificate(data)
            except ValueError as e:
                raise InvalidInput(f"{cert_file}: not a certificate ({e})") from None
        which, path = revoke_cert(directory, cert, curve)
    except PkiError as e:
        raise click.ClickException(str(e)) from None
    doc = {"serial": f"{cert.serial_number:X}", "crl": str(path), "issuer": which}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"revoked serial {doc['serial']}: {which.upper()} CRL {path}")
