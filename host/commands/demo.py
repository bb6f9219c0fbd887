"""`cardemu demo`: every system end to end on embedded defaults (see `host.systems`).

The demo is the scenarios of `host.systems.run.SCENARIOS`, run one after the
other in `DEMO_ORDER`: the eSIM download, then the seed systems. Each prints
its steps on stderr as they complete; stdout gets the pass/fail table (or the
JSON of every run); `--report` writes one HTML page with each system's
sequence diagram and trace.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from host.commands.common import json_option

if TYPE_CHECKING:
    from host.systems.scenario import RunResult

DEMO_ORDER = ("esim-download", "ekyc", "doorlock", "repository", "profile-move")
"""The systems in the order the demo runs them (any other registered scenario follows)."""


def demo_systems(only: tuple[str, ...] = ()) -> list[str]:
    """The scenario names the demo runs: `only` if given (checked), else every registered one.

    Raises:
        click.UsageError: `only` names a scenario that does not exist.
    """
    from host.systems.run import SCENARIOS

    known = [n for n in DEMO_ORDER if n in SCENARIOS]
    known += sorted(n for n in SCENARIOS if n not in DEMO_ORDER)
    if not only:
        return known
    unknown = [n for n in only if n not in SCENARIOS]
    if unknown:
        raise click.UsageError(
            f"no system {unknown[0]!r} (there are: {', '.join(known)})", ctx=None
        )
    return [n for n in known if n in only]


def _table(results: list[RunResult]) -> list[str]:
    width = max(len(r.scenario) for r in results)
    lines = [f"{'system':<{width}}  result  steps     time  what"]
    for r in results:
        lines.append(
            f"{r.scenario:<{width}}  {'pass' if r.ok else 'FAIL':<6}  {len(r.steps):>5}  "
            f"{r.elapsed:>6.2f} s  {r.title}"
        )
    return lines


@click.command("demo", short_help="Run every system end to end.")
@json_option
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write one self-contained HTML report of every system here.",
)
@click.option("--pcsc", is_flag=True, help="Serve the cards through pcscd and vpcd.")
@click.option(
    "--system",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this system (repeatable; see `cardemu scenario list`).",
)
@click.option("--seed", type=int, help="Seed the emulated cards' RNGs.")
def demo(
    as_json: bool, report_path: str | None, pcsc: bool, only: tuple[str, ...], seed: int | None
) -> None:
    """Run the eSIM download and every seed system end to end, here, on embedded defaults.

    Cards are emulated in this process (or served through pcscd with --pcsc),
    servers listen on free loopback ports, their SQLite stores live in a
    temporary directory. Each
    system's steps are printed on stderr as they complete, numbered as its
    seed numbers them; stdout gets a pass/fail table with each system's time
    (or, with --json, every run: steps, messages, verdicts). Exit code 0 when
    every system passes, 1 otherwise.

    \b
    Examples:
      cardemu demo
      cardemu demo --report demo.html
      cardemu demo --system esim-download --json
    """
    from host.systems.pcsc import PcscUnavailable
    from host.systems.report import html_report_many, narrative_line
    from host.systems.run import get_scenario, run_scenario
    from host.systems.scenario import StepRecord

    names = demo_systems(only)
    scenarios = [get_scenario(n) for n in names]
    where = "through pcscd and vpcd" if pcsc else "in this process"
    click.echo(
        f"cardemu demo: {len(scenarios)} system(s) end to end on this machine: cards emulated "
        f"{where}, servers on free loopback ports, SQLite in a temporary directory.",
        err=True,
    )
    width = max(len(sc.name) for sc in scenarios)
    for sc in scenarios:
        click.echo(f"  {sc.name:<{width}}  {sc.title}", err=True)

    def show(step: StepRecord) -> None:
        click.echo(narrative_line(step), err=True)

    results: list[RunResult] = []
    t0 = time.perf_counter()
    for sc in scenarios:
        click.echo(f"\n== {sc.name}: {sc.title}", err=True)
        try:
            result = run_scenario(sc, pcsc=pcsc, seed=seed, on_step=show)
        except PcscUnavailable as e:
            raise click.ClickException(f"--pcsc: {e}") from None
        results.append(result)
        for v in result.verdicts:
            if not v.ok:
                click.echo(f"  FAILED: {v.name}: {v.detail}", err=True)
        click.echo(
            f"  {sc.name}: {'pass' if result.ok else 'FAIL'} ({result.elapsed:.2f} s)", err=True
        )
    elapsed = time.perf_counter() - t0
    ok = all(r.ok for r in results)
    if report_path:
        page = html_report_many(results, "cardemu demo: every system end to end")
        Path(report_path).write_text(page, encoding="utf-8")
        click.echo(f"report: {report_path}", err=True)
    if as_json:
        doc = {
            "ok": ok,
            "elapsed_ms": round(elapsed * 1000, 3),
            "systems": [r.to_json() for r in results],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo("", err=True)
        for line in _table(results):
            click.echo(line)
        passed = sum(r.ok for r in results)
        click.echo(f"{passed} of {len(results)} systems passed in {elapsed:.1f} s")
    if not ok:
        raise click.exceptions.Exit(1)
