"""`cardemu bench --usim`: every command runs, is checked, and yields a rate per round."""

from __future__ import annotations

import json

from click.testing import CliRunner

from host.bench_usim import run_usim_benchmark
from host.cli import cli


def test_every_command_measured_in_each_round() -> None:
    report = run_usim_benchmark(0.05, 2)
    keys = [f.key for f in report.figures]
    assert keys == [
        "verify_pin1",
        "verify_pin1_image",
        "read_record_msisdn",
        "authenticate_3g",
        "get_profiles_info",
        "create_usim_card",
    ]
    for f in report.figures:
        assert len(f.rounds) == 2 and min(f.rounds) > 0
    assert len(report.lines()) == len(keys) + 2


def test_cli_json() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "--usim", "--seconds", "0.05", "--runs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)["figures"]
    assert figures["authenticate_3g"]["apdus_per_s"] > 0
