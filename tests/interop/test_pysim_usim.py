"""osmocom's pySim-shell against the emulated USIM on pcscd + vpcd (optional).

pySim is not a dependency: point CARDEMU_PYSIM_DIR at a pySim checkout (the
directory holding pySim-shell.py, with its requirements installed) to run this.
pySim-shell selects ADF.USIM, reads EF.IMSI, EF.UST and EF.AD decoded, and runs
`authenticate` with the osmocom Milenage example (the "usim" preset's keys).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from applets.usim import UICC_AID
from applets.usim.builder import TEST_IMSI
from card.atr import build_atr
from card.runtime import CardRuntime
from host.presets import install_uicc_isd

# The PC/SC fixtures (our own pcscd, a served card) of the integration tests.
from tests.integration.conftest import pcsc, pcscd, serve  # noqa: F401

PYSIM_DIR = os.environ.get("CARDEMU_PYSIM_DIR")
# The interpreter with pySim's requirements (cmd2, pyosmocom, ...), as for osmo-smdpp.
PYSIM_PYTHON = os.environ.get("CARDEMU_PYSIM_PYTHON", sys.executable)

# Skip before any fixture starts a pcscd. (Run it on its own: importing the
# integration fixtures makes a second session pcscd fixture, which cannot start
# while the integration tests' one runs in the same session.)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not PYSIM_DIR, reason="set CARDEMU_PYSIM_DIR to a pySim checkout to run pySim-shell"
    ),
]
RAND = "00" * 16
AUTN = "ec9320c2c2120000c8b7de2a3449f1bd"


def _pysim_shell() -> Path:
    if not PYSIM_DIR:
        pytest.skip("set CARDEMU_PYSIM_DIR to a pySim checkout to run pySim-shell")
    shell = Path(PYSIM_DIR) / "pySim-shell.py"
    if not shell.is_file():
        pytest.skip(f"no pySim-shell.py in {PYSIM_DIR}")
    probe = subprocess.run(
        [PYSIM_PYTHON, str(shell), "--help"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        pytest.skip(f"pySim-shell does not start (requirements?): {probe.stderr.strip()[-200:]}")
    return shell


def _t0_usim() -> CardRuntime:
    # pySim's PC/SC transport prefers T=0 whenever the ATR offers it, and pcscd has
    # already chosen T=1 for a card offering both: serve the USIM as a T=0 card, as
    # most SIMs are.
    from applets.usim import UICC_AID, UiccApplet
    from applets.usim.builder import sample_profile

    card = CardRuntime(atr=build_atr((0,)).to_bytes(), rng_seed=1)
    card.install(UiccApplet, UICC_AID, sample_profile().to_bytes(), default=True)
    install_uicc_isd(card)  # as the "usim" preset: the GP ISD at A000000003000000
    return card


@pytest.fixture
def make_card() -> Callable[[], CardRuntime]:
    return _t0_usim


def _json_after(out: str, marker: str) -> object:
    """The first JSON document printed after `marker` (pySim prints decoded files as JSON)."""
    tail = out[out.index(marker) + len(marker) :] if marker in out else out
    start = min((i for i in (tail.find("{"), tail.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise AssertionError(f"no JSON after {marker!r}")
    obj, _ = json.JSONDecoder().raw_decode(tail[start:])
    return obj


def test_pysim_shell_reads_and_authenticates(serve) -> None:  # noqa: ANN001, F811
    shell = _pysim_shell()
    from host.readers.pcsc import list_readers

    served = serve()
    index = list_readers().index(served.reader)
    commands = [
        "select ADF.USIM",
        "select EF.IMSI",
        "echo IMSI-FOLLOWS",
        "read_binary_decoded",
        "select EF.UST",
        "echo UST-FOLLOWS",
        "read_binary_decoded",
        "select EF.AD",
        "echo AD-FOLLOWS",
        "read_binary_decoded",
        "select ADF.USIM",
        "echo AUTH-FOLLOWS",
        f"authenticate {RAND} {AUTN}",
    ]
    args = [PYSIM_PYTHON, str(shell), "-p", str(index), "--noprompt"]
    for c in commands:
        args += ["-e", c]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=PYSIM_DIR)
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:] + out[-2000:]
    assert "Traceback" not in out + result.stderr, out[-3000:] + result.stderr[-3000:]
    assert _json_after(out, "IMSI-FOLLOWS") == {"imsi": TEST_IMSI}
    ust = json.dumps(_json_after(out, "UST-FOLLOWS"))
    assert re.search(r"GSM Access", ust) and re.search(r"MSISDN", ust)
    ad = _json_after(out, "AD-FOLLOWS")
    assert isinstance(ad, dict) and ad.get("mnc_len") == 2, ad
    auth = json.dumps(_json_after(out, "AUTH-FOLLOWS")).lower()
    assert "e9fc88ccc8a35381" in auth and "7200a184d8f2c758fbdf87900ddbf275" in auth


def test_pysim_finds_the_usim_preset_consistent_and_reads_it_whole(serve) -> None:  # noqa: ANN001, F811
    """Issue 16: `ust_service_check` finds no inconsistency (DF.5GS with the 5G services on,
    DF.GSM-ACCESS, ...) and pySim-read.py reads the card through (EF.SMSP of DF.TELECOM
    included) without a traceback."""
    shell = _pysim_shell()
    from host.readers.pcsc import list_readers

    served = serve()
    index = list_readers().index(served.reader)
    args = [PYSIM_PYTHON, str(shell), "-p", str(index), "--noprompt"]
    for c in ("select ADF.USIM", "select EF.UST", "ust_service_check"):
        args += ["-e", c]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=PYSIM_DIR)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert "===> 0 service / file inconsistencies detected" in out, out[-3000:]
    read = Path(PYSIM_DIR or ".") / "pySim-read.py"
    result = subprocess.run(
        [PYSIM_PYTHON, str(read), "-p", str(index)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PYSIM_DIR,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert "SMSP:" in out and TEST_IMSI in out, out[-3000:]


def test_pysim_shell_finds_the_uicc_isd_and_lists_the_uicc(serve) -> None:  # noqa: ANN001, F811
    """Issue 16: pySim-shell's ADF.ISD (A000000003000000) is there: GET DATA card data,
    SCP03 with the GP test keys (key version 30), GET STATUS of the ISD and applications."""
    shell = _pysim_shell()
    from host.readers.pcsc import list_readers

    served = serve()
    index = list_readers().index(served.reader)
    key = bytes(range(0x40, 0x50)).hex()
    commands = [
        "select ADF.ISD",
        "echo CARD-DATA-FOLLOWS",
        "get_data card_data",
        f"establish_scp03 --key-ver 48 --key-enc {key} --key-mac {key} --key-dek {key}"
        " --security-level 3",
        "echo ISD-FOLLOWS",
        "get_status isd",
        "echo APPS-FOLLOWS",
        "get_status applications",
    ]
    args = [PYSIM_PYTHON, str(shell), "-p", str(index), "--noprompt"]
    for c in commands:
        args += ["-e", c]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=PYSIM_DIR)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert "Successfully established a SCP03" in out, out[-3000:]
    assert "1.2.840.114283" in out or "2a864886fc6b" in out.lower(), out[-3000:]
    isd = json.dumps(_json_after(out, "ISD-FOLLOWS")).lower()
    assert "a000000003000000" in isd, isd
    apps = json.dumps(_json_after(out, "APPS-FOLLOWS")).lower()
    assert UICC_AID.hex() in apps, apps
