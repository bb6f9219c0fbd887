"""The `cardemu` command line.

Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 a card answered an
unexpected status word. Errors are one `Error: ...` line; tracebacks only with
--debug. Results go to stdout, traces and progress to stderr.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import click

from host.commands.common import EXIT_FAILED, EXIT_OK
from host.log import TRAFFIC

log = logging.getLogger("cardemu.cli")


def _version() -> str:
    try:
        return version("cardemu")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(_version(), "--version", prog_name="cardemu")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--traffic", is_flag=True, help="Log every APDU at the TRAFFIC level (may show secrets)."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, traffic: bool) -> None:
    """cardemu: a Java Card-style smart-card emulator and APDU toolkit.

    \b
    Examples:
      cardemu send 00A4040009F043415244454D5501 8050000004
      cardemu card new --preset demo my.card
      cardemu bench
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = TRAFFIC if traffic else logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if traffic:
        log.warning("--traffic logs every APDU: PINs, keys and personal data will appear")


def _register() -> None:
    # One line per command module: each area of the CLI lives in host/commands/.
    from host.commands import basic, gp, serve, tools, usim

    for command in (basic.send, basic.card, basic.bench, serve.serve):
        cli.add_command(command)
    cli.add_command(tools.readers)
    cli.add_command(tools.run)
    cli.add_command(tools.replay_cmd)
    cli.add_command(tools.decode)
    cli.add_command(gp.gp)
    cli.add_command(importlib.import_module("host.commands.bio").bio)
    cli.add_command(usim.usim)
    cli.add_command(importlib.import_module("host.commands.pki").pki)
    cli.add_command(importlib.import_module("host.commands.lpa").lpa)
    cli.add_command(importlib.import_module("host.commands.smdpp").smdpp)
    cli.add_command(importlib.import_module("host.commands.server").server)
    cli.add_command(importlib.import_module("host.commands.scenario").scenario)
    cli.add_command(importlib.import_module("host.commands.demo").demo)
    cli.add_command(importlib.import_module("host.commands.fuzz").fuzz)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI, turning stray exceptions into one-line errors."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="cardemu", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_FAILED
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        click.echo(f"Error: {e}", err=True)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
