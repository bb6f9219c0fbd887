"""`cardemu fuzz` usage errors exit 2, as click's own usage errors do."""

from __future__ import annotations

from click.testing import CliRunner

from host.cli import cli


def test_unknown_applet_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["fuzz", "--applet", "nosuch", "--budget", "10"])
    assert result.exit_code == 2
    assert "no applet 'nosuch'" in result.output


def test_unknown_reader_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["fuzz", "-r", "no-such-reader", "--budget", "10"])
    assert result.exit_code == 2
    assert "no reader matches" in result.output
