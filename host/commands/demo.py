"""`cardemu demo`: a real eSIM profile download on embedded defaults (see `host.lpa.demo`)."""

from __future__ import annotations

import json

import click

from host.commands.common import UnexpectedStatus, json_option
from host.errors import ApduError
from host.es9plus import Es9Error
from host.lpa import Es9TransportError, Es10Error, LpaError, Step
from host.lpa.demo import run_demo


@click.command("demo", short_help="Download an eSIM profile, end to end.")
@json_option
@click.option("--seed", type=int, help="Seed the emulated eUICC's RNG.")
def demo(as_json: bool, seed: int | None) -> None:
    """Download an eSIM profile from the built-in SM-DP+ into an emulated eUICC, then AUTHENTICATE.

    Everything runs here, on embedded defaults: the eUICC (ISD-R, ECASD, the
    built-in test PKI), the SM-DP+ on a free loopback port over HTTPS, and the
    LPA between them. Each ES10 (LPA to eUICC) and ES9+ (LPA to SM-DP+) step
    is printed on stderr as it completes; then the new profile is enabled and
    answers AUTHENTICATE, checked with Milenage. The result goes to stdout.

    \b
    Examples:
      cardemu demo
      cardemu demo --json
    """

    def show(step: Step) -> None:
        click.echo(f"  {step}", err=True)

    try:
        result = run_demo(show, seed=seed)
    except (Es9Error, Es9TransportError, Es10Error, LpaError) as e:
        raise click.ClickException(str(e)) from None
    except ApduError as e:
        raise UnexpectedStatus(str(e)) from None
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        d = result.download
        click.echo(
            f"profile {d.iccid} installed in ISD-P "
            f"{d.isdp_aid.hex().upper() if d.isdp_aid else '-'}"
        )
        click.echo(f"AUTHENTICATE: {result.auth_detail}")
    if not (result.download.installed and result.auth_ok):
        raise click.exceptions.Exit(1)
