"""GlobalPlatform content management through the real PC/SC stack: pcscd + vpcd + pyscard.

The emulated card (the "gp" preset: ISD with SCP03, test keys 40..4F) is
served on vpcd's first slot; `GpClient` talks to it through `PcscReader`,
exactly as it would to a real GP card in a real reader: list, load, install,
select the new applet, delete, list, at a MAC-only and a full security level.
Skipped, with the reason, when pcscd, vpcd or pyscard is missing (see
conftest.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from card.gp.loadfile import describe_load_file
from card.gp.scp03 import Scp03Keys
from host.errors import ApduError, SecureChannelError
from host.gp.client import GpClient
from host.presets import new_card
from host.readers.pcsc import PcscReader
from host.readers.wrappers import GetResponseReader

pytestmark = pytest.mark.pcsc

READER_0 = "Virtual PCD 00 00"
NOTES_AID = bytes.fromhex("F0000000AA02")


def _gp_card():
    return new_card("gp", rng_seed=11)


@pytest.fixture
def reader(serve) -> Iterator[PcscReader]:
    served = serve(_gp_card())
    r = PcscReader(served.reader)
    r.connect()
    yield r
    r.disconnect()


def _random(seed: int):
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


@pytest.mark.parametrize("level", [0x01, 0x33])
def test_content_management_cycle_over_pcsc(reader: PcscReader, level: int) -> None:
    desc = describe_load_file("notes")
    with GpClient(reader, level=level, random=_random(level)) as client:
        before = client.registry()
        assert before.isd[0].aid == bytes.fromhex("A000000151000000")
        assert before.find(desc.aid) is None
        client.load(desc.to_bytes(), desc.aid, with_hash=True)
        client.install(desc.aid, desc.modules[0].aid, NOTES_AID, params=b"over pc/sc")
        listed = client.registry()
        assert listed.find(NOTES_AID).life_cycle_name == "SELECTABLE"
        assert listed.find(desc.aid).modules == (desc.modules[0].aid,)

    plain = GetResponseReader(reader)
    assert plain.transmit(b"\x00\xa4\x04\x00\x06" + NOTES_AID + b"\x00")[-2:] == b"\x90\x00"
    assert plain.transmit(bytes.fromhex("80CA000000")) == b"over pc/sc\x90\x00"

    with GpClient(reader, level=level, random=_random(level + 1)) as client:
        client.delete(desc.aid, related=True)
        after = client.registry()
        assert after.find(NOTES_AID) is None and after.find(desc.aid) is None
        assert [e.aid for e in after.applications] == [e.aid for e in before.applications]
        with pytest.raises(ApduError) as e:
            client.delete(NOTES_AID)
        assert e.value.sw == 0x6A88


def test_wrong_keys_over_pcsc(reader: PcscReader) -> None:
    with pytest.raises(SecureChannelError, match="card cryptogram"):
        GpClient(reader, Scp03Keys.single(bytes(16))).open()


def test_card_data_over_pcsc(reader: PcscReader) -> None:
    client = GpClient(reader)
    assert client.select_isd().max_command_data == 0xFF
    assert client.card_data().secure_channels == ((3, 0x70),)
