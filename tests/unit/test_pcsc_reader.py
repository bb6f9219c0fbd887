"""PcscReader logic against a stand-in for pyscard's `smartcard.scard` (no pcscd needed).

The real stack is exercised in tests/integration/test_pcsc.py; here the
error mapping, protocol choice and reader selection are pinned down.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

import host.readers.pcsc as pcsc
from host.readers.base import ReaderError
from host.readers.pcsc import PcscReader, Protocol, select_reader

# Values from pcsc-lite's pcsclite.h (PC/SC Workgroup part 5).
S_SUCCESS = 0
E_NO_SERVICE = 0x8010001D
E_NO_READERS = 0x8010002E
E_UNKNOWN_READER = 0x80100009
E_NO_SMARTCARD = 0x8010000C
W_REMOVED_CARD = 0x80100069
E_PROTO_MISMATCH = 0x8010000F
E_NOT_TRANSACTED = 0x80100016


class FakeScard(SimpleNamespace):
    """Just enough of smartcard.scard for PcscReader, with a scripted pcscd behind it."""

    def __init__(self, readers: list[str], card_protocols: int = 3) -> None:
        super().__init__(
            SCARD_S_SUCCESS=S_SUCCESS,
            SCARD_SCOPE_USER=0,
            SCARD_SHARE_SHARED=2,
            SCARD_SHARE_EXCLUSIVE=1,
            SCARD_PROTOCOL_T0=1,
            SCARD_PROTOCOL_T1=2,
            SCARD_PCI_T0=1,
            SCARD_PCI_T1=2,
            SCARD_LEAVE_CARD=0,
            SCARD_RESET_CARD=1,
            SCARD_UNPOWER_CARD=2,
            SCARD_E_NO_SERVICE=E_NO_SERVICE,
            SCARD_E_SERVICE_STOPPED=0x8010001E,
            SCARD_E_NO_READERS_AVAILABLE=E_NO_READERS,
            SCARD_E_UNKNOWN_READER=E_UNKNOWN_READER,
            SCARD_E_READER_UNAVAILABLE=0x80100017,
            SCARD_E_NO_SMARTCARD=E_NO_SMARTCARD,
            SCARD_W_REMOVED_CARD=W_REMOVED_CARD,
            SCARD_W_UNRESPONSIVE_CARD=0x80100066,
            SCARD_W_UNPOWERED_CARD=0x80100067,
            SCARD_W_RESET_CARD=0x80100068,
            SCARD_E_SHARING_VIOLATION=0x8010000B,
            SCARD_E_PROTO_MISMATCH=E_PROTO_MISMATCH,
        )
        self.readers = readers
        self.card_protocols = card_protocols
        self.service = True
        self.card_present = True
        self.atr = bytes.fromhex("3B800101")
        self.sent: list[tuple[int, bytes]] = []
        self.calls: list[str] = []
        self.contexts = 0

    def SCardEstablishContext(self, scope):  # noqa: N802 - pyscard's names
        if not self.service:
            return E_NO_SERVICE, None
        self.contexts += 1
        return S_SUCCESS, object()

    def SCardReleaseContext(self, context):  # noqa: N802
        self.contexts -= 1
        return S_SUCCESS

    def SCardListReaders(self, context, groups):  # noqa: N802
        if not self.readers:
            return E_NO_READERS, []
        return S_SUCCESS, list(self.readers)

    def SCardConnect(self, context, name, share, protocols):  # noqa: N802
        self.calls.append(f"connect {name}")
        if name not in self.readers:
            return E_UNKNOWN_READER, None, 0
        if not self.card_present:
            return E_NO_SMARTCARD, None, 0
        offered = protocols & self.card_protocols
        if not offered:
            return E_PROTO_MISMATCH, None, 0
        return S_SUCCESS, "handle", 1 if offered & 1 else 2

    def SCardStatus(self, card):  # noqa: N802
        return S_SUCCESS, self.readers[0], 0x34, 2, list(self.atr)

    def SCardTransmit(self, card, pci, apdu):  # noqa: N802
        if not self.card_present:
            return W_REMOVED_CARD, []
        self.sent.append((pci, bytes(apdu)))
        return S_SUCCESS, list(bytes(apdu[5:]) + b"\x90\x00")

    def SCardReconnect(self, card, share, protocols, init):  # noqa: N802
        self.calls.append(f"reconnect {init}")
        return S_SUCCESS, 2

    def SCardDisconnect(self, card, disposition):  # noqa: N802
        self.calls.append(f"disconnect {disposition}")
        return S_SUCCESS

    def SCardGetErrorMessage(self, hresult):  # noqa: N802
        return "Transaction failed."


@pytest.fixture
def scard(monkeypatch) -> FakeScard:
    fake = FakeScard(["Virtual PCD 00 00", "Virtual PCD 00 01"])
    monkeypatch.setattr(pcsc, "_scard", lambda: fake)
    return fake


def test_select_reader_by_index_substring_or_only_one() -> None:
    names = ["Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR122U 00 00"]
    assert select_reader(1, names) == "Virtual PCD 00 01"
    assert select_reader("2", names) == "ACS ACR122U 00 00"
    assert select_reader("acr", names) == "ACS ACR122U 00 00"
    assert select_reader("virtual pcd 00 01", names) == "Virtual PCD 00 01"
    assert select_reader(None, names[:1]) == names[0]


@pytest.mark.parametrize(
    ("spec", "names", "message"),
    [
        ("virtual", ["Virtual PCD 00 00", "Virtual PCD 00 01"], "'virtual' matches 2 readers"),
        ("nope", ["Virtual PCD 00 00"], "no reader matches 'nope'"),
        (5, ["Virtual PCD 00 00"], "no reader 5 (there are 1)"),
        (None, ["a", "b"], "2 readers, choose one: a, b"),
        (None, [], "no PC/SC reader found"),
    ],
)
def test_select_reader_errors_name_the_problem(spec, names, message) -> None:
    with pytest.raises(ReaderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_reader(spec, names)


def test_exact_name_wins_over_a_substring_match() -> None:
    names = ["Reader 1", "Reader 10"]
    assert select_reader("Reader 1", names) == "Reader 1"


def test_missing_pyscard_is_a_one_line_reader_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "smartcard", None)
    with pytest.raises(ReaderError) as err:
        pcsc.list_readers()
    assert str(err.value) == "pyscard is not installed: pip install 'cardemu[pcsc]'"


def test_connect_transmit_disconnect(scard) -> None:
    reader = PcscReader("00 01")
    assert reader.connect() == scard.atr
    assert reader.name == "Virtual PCD 00 01"
    assert reader.protocol is Protocol.T0  # what the stand-in picks when both are allowed
    assert reader.transmit(bytes.fromhex("80010000025A5B")) == bytes.fromhex("5A5B9000")
    assert scard.sent == [(scard.SCARD_PCI_T0, bytes.fromhex("80010000025A5B"))]
    reader.disconnect()
    assert scard.calls[-1] == f"disconnect {scard.SCARD_LEAVE_CARD}"
    assert scard.contexts == 0
    assert not reader.connected


def test_forced_protocol_uses_its_pci(scard) -> None:
    reader = PcscReader(0, protocol="T=1")
    reader.connect()
    assert reader.protocol is Protocol.T1
    reader.transmit(b"\x00\xa4\x00\x00")
    assert scard.sent[-1][0] == scard.SCARD_PCI_T1


def test_protocol_the_card_lacks(scard) -> None:
    scard.card_protocols = 1
    with pytest.raises(ReaderError, match="does not offer that protocol"):
        PcscReader(0, protocol=Protocol.T1).connect()
    assert scard.contexts == 0  # the context is released on failure


def test_reset_and_power_cycle(scard) -> None:
    reader = PcscReader(0)
    reader.connect()
    assert reader.reset() == scard.atr
    assert scard.calls[-1] == f"reconnect {scard.SCARD_RESET_CARD}"
    reader.power_cycle()
    assert scard.calls[-1] == f"reconnect {scard.SCARD_UNPOWER_CARD}"
    assert reader.protocol is Protocol.T1  # as SCardReconnect reported
    reader.disconnect(unpower=True)
    assert scard.calls[-1] == f"disconnect {scard.SCARD_UNPOWER_CARD}"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda s: setattr(s, "service", False), "PC/SC service not available (is pcscd running?)"),
        (lambda s: setattr(s, "readers", []), "no PC/SC reader found"),
        (lambda s: setattr(s, "card_present", False), "no card in reader 'Virtual PCD 00 00'"),
    ],
)
def test_connect_failures_are_one_line(scard, setup, message) -> None:
    setup(scard)
    with pytest.raises(ReaderError) as err:
        PcscReader(0).connect()
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_card_removed_during_transmit(scard) -> None:
    reader = PcscReader(0)
    reader.connect()
    scard.card_present = False
    with pytest.raises(ReaderError) as err:
        reader.transmit(b"\x00\xa4\x00\x00")
    assert str(err.value) == "the card was removed from reader 'Virtual PCD 00 00'"


def test_unknown_error_codes_keep_their_value(scard) -> None:
    assert (
        pcsc._message(scard, E_NOT_TRANSACTED, "R")
        == "Transaction failed (0x80100016) on reader 'R'"
    )


def test_transmit_before_connect(scard) -> None:
    with pytest.raises(ReaderError, match="not connected"):
        PcscReader(0).transmit(b"\x00\xa4\x00\x00")


def test_context_manager_connects_and_releases(scard) -> None:
    with PcscReader("00 00") as reader:
        assert reader.atr == scard.atr
    assert scard.contexts == 0
    assert scard.calls[-1].startswith("disconnect")


def test_list_readers(scard) -> None:
    assert PcscReader.list_readers() == ["Virtual PCD 00 00", "Virtual PCD 00 01"]
    scard.readers = []
    assert pcsc.list_readers() == []
    scard.service = False
    with pytest.raises(ReaderError, match="pcscd"):
        pcsc.list_readers()
