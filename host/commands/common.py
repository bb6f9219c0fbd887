"""Pieces shared by the CLI's commands: exit codes, common options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED_SW = 0, 1, 2, 3


class UnexpectedStatus(click.ClickException):
    """A card answered a status word the command did not expect (exit code 3)."""

    exit_code = EXIT_UNEXPECTED_SW


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def stack_options(options: Sequence[Callable[[F], F]]) -> Callable[[F], F]:
    """One decorator applying `options` so that `--help` lists them in this order."""

    def decorate(f: F) -> F:
        # click lists a command's options in the order their decorators stand, top
        # down, so the last one is applied first.
        for option in reversed(options):
            f = option(f)
        return f

    return decorate
