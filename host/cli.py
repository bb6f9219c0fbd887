"""The `cardemu` command line.

Exit codes (host.commands.common): 0 ok, 1 operation failed, 2 usage error, 3 a
card answered an unexpected status word, 130 interrupted. Errors are one `Error: ...`
line; tracebacks only with --debug. Results go to stdout, traces and progress to stderr.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from host.commands.common import run_main
from host.log import TRAFFIC

log = logging.getLogger("cardemu.cli")


def _version() -> str:
    # importlib.metadata costs ~40 ms to import: only `--version` pays for it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cardemu")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"cardemu, version {_version()}")
    ctx.exit()


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Every subcommand, loaded only when it runs (or when its own help is asked for):
# name -> ("module:attribute", one-line summary). `--help` lists the summaries
# from here without importing anything; tests/unit/test_cli.py checks that each
# equals the command's own summary, so the two cannot drift apart.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": (
        "host.commands.basic:bench",
        "Every benchmark in one table, each figure beside its reference.",
    ),
    "bio": ("host.commands.bio:bio", "Fingerprint match-on-card: accuracy, demo."),
    "card": ("host.commands.basic:card", "Create and inspect card images."),
    "decode": ("host.commands.tools:decode", "Decode APDUs or a trace file."),
    "demo": (
        "host.commands.demo:demo",
        "Run every system end to end.",
    ),
    "doorlock": ("host.commands.doorlock:doorlock", "Run seed 001's door lock or phone alone."),
    "fuzz": (
        "host.commands.fuzz:fuzz",
        "Fuzz a card's applets and check invariants after every APDU.",
    ),
    "gp": ("host.commands.gp:gp", "GlobalPlatform card management (SCP03)."),
    "load": (
        "host.commands.load:load",
        "Drive an ES9+ server with emulated eUICCs.",
    ),
    "lpa": ("host.commands.lpa:lpa", "Local Profile Assistant for eSIM (SGP.22)."),
    "pki": ("host.commands.pki:pki", "Test PKI for eSIM: CI, EUM, eUICC, SM-DP+."),
    "readers": ("host.commands.tools:readers", "List the readers (emulated and PC/SC)."),
    "replay": ("host.commands.tools:replay_cmd", "Replay a trace file and compare responses."),
    "run": ("host.commands.tools:run", "Run an APDU script with expectations."),
    "scenario": ("host.commands.scenario:scenario", "Run a system's scenario."),
    "send": ("host.commands.basic:send", "Send APDUs to a card and print the responses."),
    "serve": ("host.commands.serve:serve", "Serve a card to pcscd through vpcd."),
    "server": ("host.commands.server:server", "Run one server role alone (e.g. the SM-DP+)."),
    "smdpp": ("host.commands.smdpp:smdpp", "The built-in SM-DP+ (SGP.22 ES9+)."),
    "smds": ("host.commands.smds:smds", "The built-in SM-DS (SGP.22 ES11/ES12)."),
    "usim": ("host.commands.usim:usim", "Read a USIM and run AKA (TS 31.102)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use.

    Importing every command module up front (ASN.1 compilation, the USIM applet,
    cryptography...) made `cardemu --help` take over half a second; this loads
    only the module of the command being run.
    """

    def __init__(
        self, *args: Any, lazy_commands: dict[str, tuple[str, str]] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            target = self.lazy_commands[cmd_name][0]
            module_name, _, attr = target.partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{target} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their summaries without importing any of them."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                cmd = self.commands[name]
                if cmd.hidden:
                    continue
                limit = formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))
                rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, self.lazy_commands[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy_commands=LAZY_COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI, turning stray exceptions into one-line errors."""
    return run_main(cli, argv)


if __name__ == "__main__":
    sys.exit(main())
