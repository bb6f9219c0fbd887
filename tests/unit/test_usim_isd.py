"""Issue 16: the "usim" card carries a GlobalPlatform ISD at the AID UICCs use.

SIM tools that manage a UICC's applets (pySim-shell's ADF.ISD, GlobalPlatformPro's
probe list) look for the card manager at A000000003000000; A000000151000000 stays
free for the MNO-SD of an installed profile (GSMA TS.48).
"""

from __future__ import annotations

import random

import pytest

from applets.usim import UICC_AID
from card.gp.isd import ISD_AID, UICC_ISD_AID
from host.errors import ApduError
from host.gp.client import GpClient
from host.gp.data import StatusScope
from host.presets import new_card
from host.readers.inprocess import InProcessReader


def _seeded(seed: int):  # noqa: ANN202
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


@pytest.mark.parametrize("preset", ["usim", "usim-5g"])
def test_a_gp_client_finds_the_isd_of_a_uicc_and_lists_the_uicc(preset: str) -> None:
    card = new_card(preset)
    # No AID given: the default application (the UICC) is not an SD, so the client
    # falls back to the known ISD AIDs and finds A000000003000000.
    with GpClient(InProcessReader(card), random=_seeded(1)) as client:
        assert client.isd is not None and client.isd.aid == UICC_ISD_AID
        isd = client.get_status(StatusScope.ISD)
        assert [e.aid for e in isd] == [UICC_ISD_AID]
        apps = {e.aid: e for e in client.get_status(StatusScope.APPLICATIONS)}
        assert UICC_AID in apps and apps[UICC_AID].associated_sd == UICC_ISD_AID


def test_the_isd_is_not_default_selected_and_not_at_the_mno_sd_aid() -> None:
    card = new_card("usim")
    reader = InProcessReader(card)
    # The UICC stays the default application: the MF is there without selecting anything.
    resp = reader.transmit(bytes.fromhex("00A40004023F00"))
    assert resp[-2:] == b"\x90\x00" or resp[-2] == 0x61, resp.hex()
    # A000000151000000 is the profile MNO-SD's AID, not the card's ISD.
    with pytest.raises(ApduError) as e:
        GpClient(InProcessReader(card), isd_aid=ISD_AID, random=_seeded(2)).select_isd()
    assert e.value.sw == 0x6A82


def test_the_isd_refuses_wrong_keys() -> None:
    from card.gp.scp03 import Scp03Keys
    from host.errors import SecureChannelError

    card = new_card("usim")
    with pytest.raises(SecureChannelError):
        GpClient(InProcessReader(card), Scp03Keys.single(bytes(16)), random=_seeded(3)).open()
