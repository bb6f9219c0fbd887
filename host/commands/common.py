"""Pieces shared by the CLI's commands: exit codes, errors, common options.

Exit codes, the same for every command (README, "Exit codes"):

    0    ok
    1    the operation failed (the card, a server or the network said no; fuzz findings)
    2    usage error: bad arguments, a missing or unreadable input file, a malformed script
    3    a card answered an unexpected status word (also a script expectation not met)
    130  interrupted (Ctrl-C / SIGINT)
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED_SW = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class CommandError(click.ClickException):
    """A failure the command reports as one `Error:` line.

    Attributes:
        reported: the command already printed its `--json` result (which says what
            went wrong), so no separate JSON error object follows on stdout.
    """

    def __init__(self, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.reported = reported


class UnexpectedStatus(CommandError):
    """A card answered a status word the command did not expect (exit code 3)."""

    exit_code = EXIT_UNEXPECTED_SW


class InvalidInput(CommandError):
    """Bad input on the command line or in a script (exit code 2, one `Error:` line)."""

    exit_code = EXIT_USAGE


class Interrupted(CommandError):
    """The user interrupted a long command, which printed what it had (exit code 130)."""

    exit_code = EXIT_INTERRUPTED

    def show(self, file: Any = None) -> None:
        click.echo(f"Interrupted: {self.message}" if self.message else "Interrupted.", err=True)


class Servable(Protocol):
    """A server run in the foreground: `RoleServer`, `WorkerPool`."""

    def serve_forever(self) -> None: ...

    def request_stop(self) -> None: ...


_swallowed: list[int] = []
"""SIGINTs whose KeyboardInterrupt `_interrupt` raised, while `run_main` runs a command."""


def _interrupt(sig: int, _frame: object) -> None:
    """Python's own SIGINT handler, remembering the signal in case the exception is lost.

    A KeyboardInterrupt raised inside a gc or weakref callback is printed as "Exception
    ignored" and dropped; `serve_until_interrupted` looks here so a server whose start-up
    swallowed the Ctrl-C stops instead of serving for ever.
    """
    _swallowed.append(sig)
    raise KeyboardInterrupt


def stop_if_interrupted() -> None:
    """Stop a long command now if a Ctrl-C came while it started and was dropped.

    `_interrupt` raises KeyboardInterrupt at whatever bytecode runs; raised inside a gc
    or weakref callback (imports run plenty of them, and a long command's start-up is
    mostly imports: Locust and gevent, the benchmarks, the matcher) Python prints
    "Exception ignored" and drops it, and the command would then run its whole course
    (a benchmark table, a matcher evaluation, a load master waiting for its workers).
    A long command calls this once its imports are done, before its long work: such a
    Ctrl-C then ends it as any other does ("Interrupted.", exit 130).

    Raises:
        KeyboardInterrupt: a SIGINT was recorded since `run_main` started the command.
    """
    if _swallowed:
        _swallowed.clear()  # raised once; what follows is a new Ctrl-C's business
        raise KeyboardInterrupt


def serve_until_interrupted(name: str, server: Servable, banner: Sequence[str] = ()) -> None:
    """Run a server until SIGINT or SIGTERM stops it; say so, and exit 130 on Ctrl-C.

    From before the `banner` lines (what serves where, on stderr) until the server has
    stopped, SIGINT and SIGTERM are recorded and passed to `server.request_stop()`, never
    raised as KeyboardInterrupt at whatever bytecode is running: raised inside a gc or
    import-lock callback (the server starting up) Python prints "Exception ignored" and
    drops it, and the server then runs for ever. uvicorn's own handlers take over while
    it serves, and re-raise what they caught into ours when it stops. SIGTERM (a service
    manager) stops the server with exit 0.

    Raises:
        Interrupted: the server stopped on SIGINT.
    """
    received: list[int] = []

    def on_signal(sig: int, _frame: object) -> None:
        received.append(sig)
        server.request_stop()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        if _swallowed:  # a Ctrl-C while the command started, dropped by a callback
            on_signal(signal.SIGINT, None)
    try:
        for line in banner:
            click.echo(line, err=True)
        server.serve_forever()
    except KeyboardInterrupt:
        received.append(signal.SIGINT)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"{name}: stopped", err=True)
    if signal.SIGINT in received:
        raise Interrupted("")


def _json_error(message: str, exit_code: int) -> None:
    # The one shape of a --json error, on stdout where the result would have been.
    click.echo(json.dumps({"error": {"message": message, "exit_code": exit_code}}, indent=2))


def run_main(cli: click.Command, argv: Sequence[str] | None) -> int:
    """Run `cli`, turning every way out into the exit code of the table above.

    Errors are one `Error: ...` line on stderr (a traceback only with --debug) and,
    with --json, also `{"error": {"message": ..., "exit_code": ...}}` on stdout.
    Ctrl-C anywhere is "Interrupted." and 130; long commands catch it themselves
    first to print what they have (`Interrupted`).
    """
    args = list(argv if argv is not None else sys.argv[1:])
    _swallowed.clear()
    # Python's handler, unless the shell made SIGINT ignored (a background job) or the
    # caller installed its own; restored on the way out (tests call this in-process).
    hook = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if hook:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        return _run(cli, args)
    finally:
        if hook:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _swallowed.clear()  # this command's: none may stop a later one (tests run many)


def _run(cli: click.Command, args: list[str]) -> int:
    """`run_main`'s body: the command, and every way out mapped to its exit code."""
    debug = "--debug" in args
    as_json = "--json" in args
    message: str
    try:
        # Outside standalone mode click hands back `Exit(n)` as the return value n.
        rv = cli.main(args=args, prog_name="cardemu", standalone_mode=False)
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
            message, code = "interrupted", EXIT_INTERRUPTED
            click.echo("Interrupted.", err=True)
        else:  # a prompt answered no
            message, code = "aborted", EXIT_FAILED
            click.echo("Aborted.", err=True)
    except KeyboardInterrupt:
        message, code = "interrupted", EXIT_INTERRUPTED
        click.echo("\nInterrupted.", err=True)
    except click.ClickException as e:
        e.show()
        if getattr(e, "reported", False):
            return e.exit_code
        message, code = e.format_message(), e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as e:
        # An input file that is missing or not text: the caller's mistake, like a bad argument.
        if debug:
            raise
        message, code = str(e), EXIT_USAGE
        click.echo(f"Error: {message}", err=True)
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        message, code = str(e), EXIT_FAILED
        click.echo(f"Error: {message}", err=True)
    if as_json:
        _json_error(message, code)
    return code


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
