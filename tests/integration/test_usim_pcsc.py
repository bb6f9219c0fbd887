"""The USIM served on the real PC/SC stack: opensc-tool and host.usim read the IMSI and
authenticate (pcscd + vpcd; skipped, with the reason, when they are missing)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest

from card.crypto.milenage import Milenage
from card.runtime import CardRuntime
from card.uicc.builder import TEST_IMSI, TEST_K, TEST_OPC
from card.uicc.ts_31_102 import encode_imsi
from host.presets import new_card
from host.readers.pcsc import PcscReader, list_readers
from host.usim import UsimSession, check_auth

RAND = bytes(16)
AUTN = bytes.fromhex("ec9320c2c2120000c8b7de2a3449f1bd")  # osmocom example: SQN 22
RES = bytes.fromhex("e9fc88ccc8a35381")
USIM_AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")


@pytest.fixture
def make_card() -> Callable[[], CardRuntime]:
    """The "usim" preset: one profile, K = OPc = 000102..0F."""
    return lambda: new_card("usim")


def _spaced(b: bytes) -> str:
    return " ".join(f"{x:02X}" for x in b)


def test_usim_session_reads_and_authenticates(serve) -> None:  # noqa: ANN001
    served = serve()
    reader = PcscReader(served.reader)
    reader.connect()
    try:
        session = UsimSession(reader)
        info = session.read()
        assert info.imsi == TEST_IMSI
        assert info.errors == {}
        result = session.authenticate(RAND, AUTN)
        assert result.res == RES
        assert check_auth(result, Milenage(TEST_K, TEST_OPC), RAND).ok
        replay = session.authenticate(RAND, AUTN)
        verdict = check_auth(replay, Milenage(TEST_K, TEST_OPC), RAND)
        assert replay.sync_failure and verdict.ok and verdict.sqn_ms == 0x22
    finally:
        reader.disconnect()


@pytest.mark.skipif(
    shutil.which("opensc-tool") is None, reason="opensc-tool not installed (opensc)"
)
def test_opensc_tool_reads_imsi_and_authenticates(serve) -> None:  # noqa: ANN001
    served = serve()
    index = list_readers().index(served.reader)
    apdus = [
        bytes.fromhex("00A4040C10") + USIM_AID,
        bytes.fromhex("00A4000C026F07"),
        bytes.fromhex("00B0000009"),
        bytes.fromhex("0088008122") + b"\x10" + RAND + b"\x10" + AUTN + b"\x00",
    ]
    args = ["opensc-tool", "-r", str(index)]
    for a in apdus:
        args += ["-s", a.hex(":")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert _spaced(encode_imsi(TEST_IMSI)) in out
    assert "DB 08 " + _spaced(RES) in out
    assert out.count("SW1=0x90, SW2=0x00") == 4, out
