"""The same commands through the T=0 and T=1 byte engines give the same answers as direct calls."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from host.cli import cli

APDUS = ["00A4000C023F00", "00A4020C022F10", "00B0000080", "00A404000AF043415244454D55781600"]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["send", "-q", "-g", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("transport", ["t0", "t1"])
def test_send_through_byte_engines_matches_direct(transport: str) -> None:
    code_direct, direct = _run("--transport", "direct", *APDUS)
    code, out = _run("--transport", transport, *APDUS)
    assert code_direct == 0 and code == 0
    assert out == direct
    assert "6F0C840AF043415244454D557816 9000" in out


def test_unknown_transport_is_a_usage_error() -> None:
    code, out = _run("--transport", "t2", "00A4000C023F00")
    assert code == 2


def test_t0_knows_proprietary_case_2_commands_from_the_specs() -> None:
    # GET BALANCE (80 50) and the echo applet's GENERATE (80 02) send data: under
    # T=0 the card must know that from the header alone (P3 = Le, not Lc).
    apdus = [
        "00A4040C09F043415244454D5501",
        "8050000004",
        "00A4040C09F043415244454D5502",
        "8002000510",
        "8001000003AABBCC",
    ]
    code_direct, direct = _run("--transport", "direct", *apdus)
    code, out = _run("--transport", "t0", *apdus)
    assert code_direct == 0 and code == 0
    assert out == direct
    assert "0001020304 9000" in out
