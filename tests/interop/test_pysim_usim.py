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
from card.atr import build_atr
from card.runtime import CardRuntime
from card.uicc.builder import TEST_IMSI
from host.presets import install_uicc_isd

PYSIM_DIR = os.environ.get("CARDEMU_PYSIM_DIR")
# The interpreter with pySim's requirements (cmd2, pyosmocom, ...), as for osmo-smdpp.
PYSIM_PYTHON = os.environ.get("CARDEMU_PYSIM_PYTHON", sys.executable)

# Skip before any fixture starts a pcscd. The PC/SC fixtures (our own pcscd, a
# served card) come from tests/pcsc_stack.py, shared with tests/integration.
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
    from card.uicc.builder import sample_profile

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


#: Where pySim's model is narrower than the spec, and the card follows the spec:
#: (application, file) pairs its service checks may report, and why.
PYSIM_MODEL_DEVIATIONS = {
    # TS 31.103 §4.2.8: EF.P-CSCF is there if service n°1 "and/or" n°5 is on; pySim
    # ties it to n°5 alone, so an ISIM with the P-CSCF address service (n°1) is flagged.
    ("ISIM", "EF.P-CSCF"),
    # TS 31.102 §4.4.11.8: DF.5GS/EF.SUCI_Calc_Info is for SUCI calculation by the ME
    # (n°124 on, n°125 off); with n°125 the USIM calculates from DF.SAIP (TCA SAIP
    # PE-DF-SAIP, GSMA TS.48). pySim ties the file to n°124 alone.
    ("USIM", "EF.SUCI_Calc_Info"),
}


def _pysim_model() -> list[tuple[str, object]]:
    helper = Path(__file__).with_name("pysim_model_helper.py")
    result = subprocess.run(
        [PYSIM_PYTHON, str(helper)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PYSIM_DIR,
        env={**os.environ, "PYTHONPATH": str(PYSIM_DIR)},
    )
    if result.returncode != 0:
        pytest.skip(f"pySim's model does not load: {result.stderr.strip()[-300:]}")
    return [(p, s) for p, s in json.loads(result.stdout)]


def _expected(service: object, on: set[int]) -> bool:
    """pySim's `should_exist_for_services`, over the model the helper printed."""
    if service is None:
        return False
    if isinstance(service, int):
        return service in on
    assert isinstance(service, list)
    kind, numbers = service[0], service[1:]
    return all(n in on for n in numbers) if kind == "all" else any(n in on for n in numbers)


def _active(table: object) -> set[int]:
    assert isinstance(table, dict), table
    return {int(n) for n, v in table.items() if v.get("activated")}


def _service_file_findings(
    out: str, model: dict[str, object], isim: bool
) -> tuple[set[tuple[str, str]], list[str]]:
    """What the service checks reported, and what export shows missing or unreadable.

    `out` is pySim-shell's output of the test's commands (UST-FOLLOWS, UST-CHECK,
    IST-FOLLOWS, IST-CHECK, EXPORT-FOLLOWS markers).
    """
    ust = _active(_json_after(out, "UST-FOLLOWS"))
    ist = _active(_json_after(out, "IST-FOLLOWS")) if isim else set()
    # The service checks: "ERROR: File EF(EF.X) is ..." lines, USIM's then ISIM's.
    checks = out[: out.index("EXPORT-FOLLOWS")]
    usim_part, _, isim_part = checks.partition("IST-CHECK")
    reported = {
        (app, name)
        for app, part in (("USIM", usim_part), ("ISIM", isim_part))
        for name in re.findall(r"ERROR: File \w+\(([^)]+)\) is", part)
    }
    summary = out[out.index("Export summary") :]
    problems = []
    for full, why in re.findall(r"^#  MF/(\S+), (.*)$", summary, re.M):
        # A bad EF is listed as ".../EF.X/EF.X", a skipped DF as ".../DF.Y".
        parts = full.split("/")
        path = "/".join(parts[:-1] if len(parts) > 1 and parts[-1] == parts[-2] else parts)
        if "6a82" not in why.lower() and "6982" not in why:
            problems.append(f"{path}: there, but pySim cannot export it: {why}")
            continue
        app = "ISIM" if path.startswith("ADF.ISIM") else "USIM"
        on = ist if app == "ISIM" else ust
        name = parts[-1]
        if "6a82" in why.lower() and _expected(model.get(path), on):
            if (app, name) not in PYSIM_MODEL_DEVIATIONS:
                problems.append(f"{path}: its service {model[path]} is on, the file is missing")
    return reported, problems


@pytest.mark.parametrize("preset", ["usim", "usim-5g"])
def test_pysim_export_finds_every_file_of_the_services_on(serve, preset: str) -> None:  # noqa: ANN001, F811
    """Issue 16: pySim-shell `export` walks pySim's whole model; every file (and DF) its
    model expects for the services EF.UST / EF.IST switch on is there; a file that is
    there exports (or is read-protected: 6982); the USIM's and the ISIM's service checks
    report nothing beyond `PYSIM_MODEL_DEVIATIONS`."""
    shell = _pysim_shell()
    model = dict(_pysim_model())
    from host.presets import new_card
    from host.readers.pcsc import list_readers

    served = serve(new_card(preset, rng_seed=1))
    index = list_readers().index(served.reader)
    commands = [
        "select ADF.USIM",
        "select EF.UST",
        "echo UST-FOLLOWS",
        "read_binary_decoded",
        "echo UST-CHECK",
        "ust_service_check",
    ]
    isim = preset == "usim-5g"
    if isim:
        commands += [
            "select ADF.ISIM",
            "select EF.IST",
            "echo IST-FOLLOWS",
            "read_binary_decoded",
            "echo IST-CHECK",
            "ist_service_check",
        ]
    commands += ["select MF", "echo EXPORT-FOLLOWS", "export"]
    args = [PYSIM_PYTHON, str(shell), "-p", str(index), "--noprompt"]
    for c in commands:
        args += ["-e", c]
    # One stream, in order: the checks' ERROR lines go to stderr, the markers to stdout.
    result = subprocess.run(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        cwd=PYSIM_DIR,
    )
    out = result.stdout
    assert "Export summary" in out and "Traceback" not in out, out[-3000:]
    reported, problems = _service_file_findings(out, model, isim)
    assert reported <= PYSIM_MODEL_DEVIATIONS, reported
    assert not problems, "\n".join(problems)
