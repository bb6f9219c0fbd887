"""Secured packets against an independent implementation: osmocom pySim's OTA code (optional).

pySim is not a dependency: point CARDEMU_PYSIM_DIR at a pySim checkout and
CARDEMU_PYSIM_PYTHON at an interpreter with its requirements to run this. Its
`pySim/ota.py` (OtaDialectSms, 3GPP TS 31.115) then

- secures RAM scripts that the emulated SIM (the "usim-ota" preset) receives as
  SMS-PP downloads and runs, and checks the card's proofs of receipt;
- opens the command packets `host.ota.OtaSender` builds;
- decodes the SMS-PP download ENVELOPE, its SMS-DELIVER and the proactive
  SEND SHORT MESSAGE the card issues (pySim.cat, pySim.sms).

Both ways, for the preset's AES-128 (key set 1) and two-key 3DES (key set 2)
key sets. pySim's encoder leaves CPL out of packets it does not cipher, so
only ciphered packets are exchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from card.ota import sms
from card.ota.scp80 import OtaKeyset, ResponseStatus, Spi
from host.ota import OtaSender, RamScript, ToolkitTerminal
from host.presets import new_card, ota_test_keysets
from host.readers.inprocess import InProcessReader

PYSIM_DIR = os.environ.get("CARDEMU_PYSIM_DIR")
PYSIM_PYTHON = os.environ.get("CARDEMU_PYSIM_PYTHON", sys.executable)
HELPER = Path(__file__).with_name("pysim_ota_helper.py")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not PYSIM_DIR, reason="set CARDEMU_PYSIM_DIR to a pySim checkout to run pySim's OTA code"
    ),
]

# pySim's names for SPI fields (its pySim/ota.py SPI BitStruct); b5-b4 = 10: "higher".
PYSIM_SPI = {
    "counter": "counter_must_be_higher",
    "ciphering": True,
    "rc_cc_ds": "cc",
    "por_in_submit": False,
    "por_shall_be_ciphered": True,
    "por_rc_cc_ds": "cc",
    "por": "por_required",
}


def _pysim(request: dict[str, object]) -> dict[str, object]:
    assert PYSIM_DIR
    proc = subprocess.run(
        [PYSIM_PYTHON, str(HELPER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PYSIM_DIR,
        env={**os.environ, "PYTHONPATH": PYSIM_DIR},
    )
    if proc.returncode != 0:
        if "ModuleNotFoundError" in proc.stderr:
            pytest.skip(f"pySim's requirements are missing: {proc.stderr.strip()[-200:]}")
        raise AssertionError(proc.stderr)
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _keyset_json(ks: OtaKeyset, cntr: int = 0) -> dict[str, object]:
    crypt, auth = ("aes_cbc", "aes_cmac") if ks.aes else ("triple_des_cbc2", "triple_des_cbc2")
    return {
        "crypt": crypt,
        "auth": auth,
        "kvn": ks.kvn,
        "kic": ks.kic.hex(),
        "kid": ks.kid.hex(),
        "cntr": cntr,
    }


@pytest.mark.parametrize("kvn", [1, 2], ids=["AES-128", "3DES"])
def test_pysim_secures_what_the_card_runs_and_reads_its_por(kvn: int) -> None:
    ks = next(k for k in ota_test_keysets() if k.kvn == kvn)
    rt = new_card("usim-ota", rng_seed=5)
    reader = InProcessReader(rt)
    reader.connect()
    terminal = ToolkitTerminal(reader)
    terminal.start()
    script = RamScript().get_status(0x80).compact()
    for cntr in (1, 2):
        packet = bytes.fromhex(
            str(
                _pysim(
                    {
                        "op": "encode",
                        "keyset": _keyset_json(ks, cntr),
                        "spi": PYSIM_SPI,
                        "tar": "000000",
                        "apdu": script.hex(),
                    }
                )["packet"]
            )
        )
        ud = sms.segment_command_packet(packet)[0]
        result = terminal.deliver_sms(sms.SmsDeliver(sms.Address("12345"), ud).to_bytes())
        assert result.acknowledged
        # our own check of the PoR first, then pySim's
        por = OtaSender(ks).open_por(result.user_data)
        assert por.status == ResponseStatus.POR_OK and por.last_sw is not None
        theirs = _pysim(
            {
                "op": "decode_resp",
                "keyset": _keyset_json(ks),
                "spi": PYSIM_SPI,
                "por": result.user_data.hex(),
            }
        )
        assert theirs["status"] == "por_ok"
        assert theirs["commands"] == 1 and str(theirs["sw"]).lower() == f"{por.last_sw:04x}"
    # the card took pySim's counters as its own
    assert rt.applet(bytes.fromhex("A000000003000000")).ota_counter(kvn) == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("kvn", [1, 2], ids=["AES-128", "3DES"])
def test_pysim_opens_what_we_secure(kvn: int) -> None:
    ks = next(k for k in ota_test_keysets() if k.kvn == kvn)
    script = RamScript().get_status(0x40).expanded()
    sender = OtaSender(ks, spi=Spi(), counter=41)
    msg = sender.secure(script)
    theirs = _pysim({"op": "decode_cmd", "keyset": _keyset_json(ks), "packet": msg.packet.hex()})
    assert theirs == {"tar": "000000", "apdu": script.hex()}


def test_pysim_decodes_the_envelope_and_the_proactive_command() -> None:
    rt = new_card("usim-ota", rng_seed=6)
    reader = InProcessReader(rt)
    reader.connect()
    terminal = ToolkitTerminal(reader)
    terminal.start()
    sender = OtaSender(ota_test_keysets()[0], spi=Spi(por_by_submit=True))
    msg = sender.secure(RamScript().get_status(0x80).expanded())
    (envelope,) = msg.envelopes
    assert terminal.transmit(envelope)[1] == 0x9000
    (command, result) = terminal.performed[0]
    theirs = _pysim(
        {
            "op": "cat",
            "keyset": _keyset_json(ota_test_keysets()[0]),
            "envelope": envelope[5:-1].hex(),
            "proactive": command.to_bytes().hex(),
        }
    )
    assert theirs["devices"] == {"source_dev_id": "network", "dest_dev_id": "uicc"}
    assert (theirs["pid"], theirs["dcs"], theirs["udhi"]) == (0x7F, 0xF6, True)
    assert bytes.fromhex(str(theirs["ud"])) == sms.segment_command_packet(msg.packet, 1)[0]
    assert theirs["proactive"] == "send_short_message"
    assert theirs["details"] == {
        "command_number": 1,
        "type_of_command": "send_short_message",
        "command_qualifier": 0,
    }
