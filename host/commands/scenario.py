"""`cardemu scenario`: run a system's scenario with its narrative, JSON, HTML report and faults."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from host.commands.common import json_option


class _ScenarioGroup(click.Group):
    """`list`, plus one command per registered scenario."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from host.systems.run import SCENARIOS

        return ["list", *sorted(SCENARIOS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from host.systems.run import SCENARIOS

        if cmd_name in SCENARIOS:
            return _scenario_command(cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group("scenario", cls=_ScenarioGroup, short_help="Run a system's scenario.")
def scenario() -> None:
    """Run a system's scenario: steps between cards, terminals and servers, all recorded.

    The narrative (one line per step) goes to stderr; --json puts the run on
    stdout (parties, steps with their messages, verdicts, timings); --report
    writes one self-contained HTML file with a sequence diagram. --fault runs
    it under one fault: kill:SERVER@STEP, drop[:KIND]@STEP[.N],
    dup[:KIND]@STEP[.N], delay[:KIND]@STEP[.N]=MS, tear:CARD@STEP=WRITE.
    Exit code 0 when every verdict holds, 1 otherwise.

    \b
    Examples:
      cardemu scenario list
      cardemu scenario esim-download
      cardemu scenario esim-download --json --report run.html
      cardemu scenario esim-download --fault kill:smdpp@7
      cardemu scenario esim-download --fault tear:euicc@8=40
      cardemu scenario esim-download --pcsc
    """


@scenario.command("list", short_help="List the scenarios and their fault points.")
@json_option
def list_cmd(as_json: bool) -> None:
    """List the scenarios, their steps' count and their fault points."""
    from host.systems.run import SCENARIOS, get_scenario

    rows: list[dict[str, Any]] = []
    for name in sorted(SCENARIOS):
        sc = get_scenario(name)
        rows.append(
            {
                "name": name,
                "title": sc.title,
                "parties": [p.name for p in sc.parties],
                "steps": len(sc.steps),
                "fault_points": [
                    {"fault": p.spec, "expect": p.expect, "why": p.why} for p in sc.fault_points
                ],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['name']:<16} {r['title']} ({r['steps']} steps)")
        for p in r["fault_points"]:
            click.echo(f"  --fault {p['fault']:<18} → {p['expect']}: {p['why']}")


def _scenario_command(name: str) -> click.Command:
    @click.command(
        name,
        help=f"Run the {name} scenario.\n\n\b\nExamples:\n"
        f"  cardemu scenario {name} --json --report run.html",
    )
    @json_option
    @click.option(
        "--report",
        "report_path",
        type=click.Path(dir_okay=False, writable=True),
        help="Write a self-contained HTML report here.",
    )
    @click.option("--pcsc", is_flag=True, help="Serve the cards through pcscd and vpcd.")
    @click.option("--fault", "fault", help="Run under one fault (see `cardemu scenario -h`).")
    @click.option("--processes", is_flag=True, help="Run the servers as real processes.")
    @click.option("--seed", type=int, help="Seed the emulated cards' RNGs.")
    def run(
        as_json: bool,
        report_path: str | None,
        pcsc: bool,
        fault: str | None,
        processes: bool,
        seed: int | None,
    ) -> None:
        from host.systems.faults import FaultError
        from host.systems.pcsc import PcscUnavailable
        from host.systems.report import html_report, json_report, narrative_line, summary_lines
        from host.systems.run import get_scenario, run_scenario
        from host.systems.scenario import StepRecord

        sc = get_scenario(name)

        def show(step: StepRecord) -> None:
            click.echo(narrative_line(step), err=True)

        try:
            result = run_scenario(
                sc, fault=fault, pcsc=pcsc, processes=processes, seed=seed, on_step=show
            )
        except FaultError as e:
            raise click.UsageError(str(e)) from None
        except PcscUnavailable as e:
            raise click.ClickException(f"--pcsc: {e}") from None
        for line in summary_lines(result):
            click.echo(line, err=True)
        if report_path:
            Path(report_path).write_text(html_report(result), encoding="utf-8")
            click.echo(f"report: {report_path}", err=True)
        if as_json:
            click.echo(json_report(result))
        sys.stdout.flush()
        if not result.ok:
            raise click.exceptions.Exit(1)

    return run
