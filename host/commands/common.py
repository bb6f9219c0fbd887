"""Pieces shared by the CLI's commands: exit codes, common options."""

from __future__ import annotations

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED_SW = 0, 1, 2, 3


class UnexpectedStatus(click.ClickException):
    """A card answered a status word the command did not expect (exit code 3)."""

    exit_code = EXIT_UNEXPECTED_SW


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
