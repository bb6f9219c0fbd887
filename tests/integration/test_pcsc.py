"""A served card on the real PC/SC stack: pcscd + vpcd, seen through pyscard, opensc-tool, scriptor.

The PC/SC tier (README, "Layout"): the real pcscd and vpcd, no stand-ins. Tests that
only use the card interface (`atr`, `process`) take their card from
`make_card`, and compare what crosses pcscd with what a twin of the card
answers directly, so they hold for any deterministic card.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.readers.base import ReaderError
from host.readers.pcsc import PcscReader, Protocol, list_readers
from host.vpcd import EchoCard

pytestmark = pytest.mark.pcsc

READER_0 = "Virtual PCD 00 00"
READER_1 = "Virtual PCD 00 01"
# ECHO of one byte: the sample echo applet and FakeCard both answer 5A 9000.
PING = bytes.fromhex("80010000015A00")
PONG = bytes.fromhex("5A9000")


@pytest.fixture
def reader() -> Iterator[PcscReader]:
    r = PcscReader(READER_0)
    yield r
    r.disconnect()


def spaced(data: bytes) -> str:
    return " ".join(f"{b:02X}" for b in data)


def short_apdus() -> st.SearchStrategy[bytes]:
    """Well-formed short command APDUs, cases 1 to 4 (ISO/IEC 7816-3 §12.1.2)."""
    header = st.binary(min_size=4, max_size=4)
    data = st.binary(min_size=1, max_size=255)
    le = st.integers(0, 255).map(lambda n: bytes([n]))
    return st.one_of(
        header,
        st.tuples(header, le).map(b"".join),
        st.tuples(header, data).map(lambda t: t[0] + bytes([len(t[1])]) + t[1]),
        st.tuples(header, data, le).map(lambda t: t[0] + bytes([len(t[1])]) + t[1] + t[2]),
    )


def test_both_virtual_readers_are_listed(pcscd) -> None:
    names = list_readers()
    assert READER_0 in names
    assert READER_1 in names


def test_atr_seen_through_pyscard_is_the_card_atr(serve, pcsc, reader) -> None:
    served = serve()
    assert reader.connect() == served.card.atr
    assert reader.atr == served.card.atr
    assert pcsc.state(READER_0) == (True, served.card.atr)


@pytest.fixture
def card_and_twin(serve, make_card):
    """A served card connected through pyscard, and an unserved twin to predict its answers."""
    serve()
    twin = make_card()
    twin.power_on()
    r = PcscReader(READER_0)
    r.connect()
    yield r, twin
    r.disconnect()


# The fixture is set up once for all the examples, which is the point: one
# card keeps answering while hypothesis varies the traffic.
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(apdus=st.lists(short_apdus(), min_size=1, max_size=5))
def test_apdus_round_trip_through_pcscd(card_and_twin, apdus) -> None:
    reader, twin = card_and_twin
    for apdu in apdus:
        assert reader.transmit(apdu) == twin.process(apdu)


def test_extended_length_apdus_cross_pcscd(serve, make_card, reader) -> None:
    served = serve()
    twin = make_card()
    twin.power_on()
    reader.connect()
    # Case 4E (ISO/IEC 7816-3 §12.1.3): 1024 bytes each way through the echo applet.
    data = bytes(range(256)) * 4
    apdu = bytes.fromhex("80010000") + b"\x00" + len(data).to_bytes(2, "big") + data + b"\x00\x00"
    response = reader.transmit(apdu)
    assert response == twin.process(apdu)
    assert len(response) > 2
    assert served.client.apdu_count == 1


def test_long_responses_cross_pcscd(serve, fake_card, reader) -> None:
    class LongAnswers(fake_card):
        def process(self, apdu: bytes) -> bytes:
            return bytes(range(256)) * 16 + b"\x90\x00"

    serve(LongAnswers())
    reader.connect()
    response = reader.transmit(bytes.fromhex("00B00000000000"))
    assert response == bytes(range(256)) * 16 + b"\x90\x00"


@pytest.mark.skipif(
    shutil.which("opensc-tool") is None, reason="opensc-tool not installed (opensc)"
)
def test_opensc_tool_sees_the_response(serve, make_card) -> None:
    serve()
    twin = make_card()
    twin.power_on()
    apdu = bytes.fromhex("80010000023F0000")
    expected = twin.process(apdu)
    index = list_readers().index(READER_0)
    result = subprocess.run(
        ["opensc-tool", "-r", str(index), "-s", apdu.hex(":")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert f"Sending: {spaced(apdu)}" in result.stdout
    assert f"SW1=0x{expected[-2]:02X}, SW2=0x{expected[-1]:02X}" in result.stdout
    assert spaced(expected[:-2]) in result.stdout


@pytest.mark.skipif(shutil.which("scriptor") is None, reason="scriptor not installed (pcsc-tools)")
def test_scriptor_runs_a_script_file(serve, make_card, tmp_path) -> None:
    serve()
    twin = make_card()
    twin.power_on()
    apdus = [bytes.fromhex("80010000023F0000"), bytes.fromhex("8002000808"), PING]
    script = tmp_path / "select.txt"
    script.write_text(
        "# scriptor format: one APDU a line\n" + "".join(spaced(a) + "\n" for a in apdus)
    )
    result = subprocess.run(
        ["scriptor", "-r", READER_0, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    for apdu in apdus:
        assert f"> {spaced(apdu)}" in result.stdout
        assert f"< {spaced(twin.process(apdu))}" in result.stdout


def test_card_removal_and_reinsertion(serve, pcsc, reader) -> None:
    served = serve()
    reader.connect()
    assert reader.transmit(PING) == PONG

    served.client.stop()
    # pcscd polls presence a few times a second: the removal shows within about half a second.
    assert pcsc.wait(READER_0, present=False, timeout=3) < 1.5
    with pytest.raises(ReaderError, match="removed|no card"):
        reader.transmit(bytes.fromhex("00A40000"))
    reader.disconnect()
    with pytest.raises(ReaderError, match="no card"):
        PcscReader(READER_0).connect()

    served.client.run_in_thread()
    assert pcsc.wait(READER_0, present=True, timeout=3) < 1.5
    assert reader.connect() == served.card.atr
    assert reader.transmit(PING) == PONG
    assert served.client.connection_count == 2


def test_pcscd_started_after_the_card(pcscd, serve, pcsc, reader) -> None:
    pcscd.stop()
    with pytest.raises(ReaderError, match="pcscd"):
        list_readers()
    served = serve(wait=False)
    time.sleep(0.5)  # the card retries while nothing listens
    assert not served.client.connected
    pcscd.start()
    pcsc.wait(READER_0, present=True, timeout=5)
    assert reader.connect() == served.card.atr
    assert reader.transmit(PING) == PONG
    assert served.client.connection_count == 1


def test_card_comes_back_after_pcscd_restarts(pcscd, serve, pcsc, reader) -> None:
    served = serve()
    pcscd.stop()
    pcscd.start()
    pcsc.wait(READER_0, present=True, timeout=5)
    assert reader.connect() == served.card.atr
    assert reader.transmit(PING) == PONG
    assert served.client.connection_count == 2


def test_second_slot_is_a_second_reader(serve, fake_card, atr_offering, pcsc) -> None:
    first = serve(fake_card(atr_offering((1,), b"slot0")), slot=0)
    second = serve(fake_card(atr_offering((1,), b"slot1")), slot=1)
    assert first.card.atr != second.card.atr
    r0, r1 = PcscReader(READER_0), PcscReader(READER_1)
    try:
        assert r0.connect() == first.card.atr
        assert r1.connect() == second.card.atr
        r1.transmit(bytes.fromhex("00A40000"))
        assert first.card.apdus == []
        assert second.card.apdus == [bytes.fromhex("00A40000")]
    finally:
        r0.disconnect()
        r1.disconnect()
    second.client.stop()
    pcsc.wait(READER_1, present=False)
    assert pcsc.state(READER_0)[0]  # slot 0 is unaffected


def test_second_slot_alone(serve, pcsc) -> None:
    served = serve(slot=1)
    assert not pcsc.state(READER_0)[0]
    with PcscReader("00 01") as r:
        assert r.atr == served.card.atr
        assert r.name == READER_1


@pytest.mark.parametrize(
    ("offered", "forced", "expected"),
    [
        ((0,), None, Protocol.T0),
        ((1,), None, Protocol.T1),
        ((0, 1), "T=0", Protocol.T0),
        ((0, 1), "T=1", Protocol.T1),
    ],
)
def test_protocol_as_offered_or_forced(serve, fake_card, atr_offering, offered, forced, expected):
    serve(fake_card(atr_offering(offered)))
    r = PcscReader(READER_0, protocol=forced)
    try:
        r.connect()
        assert r.protocol is expected
        assert r.transmit(bytes.fromhex("00A4000C023F00")) == bytes.fromhex("003F9000")
    finally:
        r.disconnect()


def test_forcing_a_protocol_the_card_lacks_is_a_reader_error(serve, fake_card, atr_offering):
    serve(fake_card(atr_offering((0,))))
    with pytest.raises(ReaderError, match="does not offer that protocol"):
        PcscReader(READER_0, protocol=Protocol.T1).connect()


def test_reset_reaches_the_card_and_returns_the_atr(serve, fake_card, reader) -> None:
    served = serve(fake_card())
    reader.connect()
    assert reader.reset() == served.card.atr
    assert served.card.calls[-1] == "reset"
    reader.power_cycle()
    assert served.card.calls[-2:] == ["off", "on"]


def test_empty_answer_reaches_pcsc_as_6f00_and_the_card_stays(serve, fake_card, pcsc, reader):
    class Mute(fake_card):
        def process(self, apdu: bytes) -> bytes:
            super().process(apdu)
            return b""

    served = serve(Mute())
    reader.connect()
    assert reader.transmit(bytes.fromhex("00A40000")) == b"\x6f\x00"
    assert reader.transmit(bytes.fromhex("00A40000")) == b"\x6f\x00"
    assert pcsc.state(READER_0)[0]
    assert served.client.connection_count == 1


def test_no_card_and_unknown_reader_are_one_line_errors(pcscd) -> None:
    with pytest.raises(ReaderError) as no_card:
        PcscReader(READER_1).connect()
    assert str(no_card.value) == f"no card in reader '{READER_1}'"
    with pytest.raises(ReaderError) as no_reader:
        PcscReader("no such reader").connect()
    assert str(no_reader.value) == "no reader matches 'no such reader'"
    with pytest.raises(ReaderError, match="2 readers"):
        PcscReader().connect()


def test_echo_card_serves_through_pcscd(serve, reader) -> None:
    serve(EchoCard())
    assert reader.connect() == EchoCard().atr
    assert reader.transmit(bytes.fromhex("00A4000C023F00")) == bytes.fromhex("3F009000")


def test_bench_pcsc_measures_the_card_and_the_echo_floor(pcscd, make_card) -> None:
    from host.bench_pcsc import SELECT_MF, bench_pcsc

    twin = make_card()
    twin.power_on()
    result = bench_pcsc(make_card, n=200)
    assert result.card_response == twin.process(SELECT_MF)
    assert result.card_rate > 0 and result.echo_rate > 0
    # Interleaved: two rounds of 100 each side; the ratio is their median.
    assert len(result.ratios) == 2
    assert result.ratio == pytest.approx(sum(result.ratios) / 2)
    assert min(result.ratios) <= result.spread[0] <= result.ratio <= result.spread[1]
    assert (result.reader, result.echo_reader) == (READER_0, READER_1)
    assert "echo card" in "\n".join(result.lines())
    assert pcscd.running  # the bench used our pcscd and left it alone


def test_bench_pcsc_refuses_a_busy_reader(serve) -> None:
    from host.bench_pcsc import PcscBenchError, measure_card

    serve()
    with pytest.raises(PcscBenchError, match="already holds a card"):
        measure_card(EchoCard, n=10)
