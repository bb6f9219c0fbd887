"""The real PC/SC stack for tests: pcscd + vsmartcard's vpcd + pyscard (a pytest plugin).

Loaded for the whole suite by `tests/conftest.py` (`pytest_plugins`), so that
`tests/integration` and `tests/interop` share one session `pcscd` when they run
together. The `pcscd` fixture starts `pcscd --foreground`, waits for vpcd's
readers and stops it by its PID at the end. A test that uses it is skipped,
with the reason, when pcscd, vpcd or pyscard is missing, or when another pcscd
owns our PC/SC socket or vpcd's port (`Pcscd.check_free`: we never borrow or
kill one we did not start; one in another namespace is no concern).

Cards are made by the `make_card` fixture (the card runtime with the sample
applets): tests that use it only rely on the card interface, so any other card
is a change to that one fixture. `FakeCard` is for tests about the transport.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from applets.sample import ECHO_AID, PURSE_AID, EchoApplet, PurseApplet
from card.runtime import CardRuntime
from host.vpcd import Pcscd, PcscdError, VpcdCard, VpcdClient, port_for_slot

READER_0 = "Virtual PCD 00 00"
READER_1 = "Virtual PCD 00 01"

# Where Debian's vsmartcard-vpcd puts the driver pcscd loads.
VPCD_DRIVERS = (
    Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"),
    Path("/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so"),
)


def reader_name(slot: int) -> str:
    return f"Virtual PCD 00 {slot:02d}"


def _missing() -> str | None:
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt-get install pcscd; see .ci/install-system.sh)"
    if not any(p.exists() for p in VPCD_DRIVERS):
        return "vsmartcard's vpcd driver is not installed (apt-get install vsmartcard-vpcd)"
    if importlib.util.find_spec("smartcard") is None:
        return "pyscard is not installed (pip install 'cardemu[pcsc]')"
    return None


def make_atr(protocols: tuple[int, ...] = (1,), historical: bytes = b"cardemu") -> bytes:
    """An ATR offering `protocols` (ISO/IEC 7816-3 §8.2): TS, T0, TDi chain, historical bytes, TCK.

    The first TDi is only present if a protocol other than T=0 is offered
    (T=0 alone is the default); TCK is present then, as §8.2.5 requires.
    """
    if protocols == (0,):
        return bytes([0x3B, len(historical)]) + historical
    tds = [0x80 | p for p in protocols[:-1]] + [protocols[-1]]
    body = bytes([0x80 | len(historical)]) + bytes(tds) + historical
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


class FakeCard:
    """A card that records what vpcd tells it, for tests about the transport.

    The response is the short-form command data reversed, then 9000.
    """

    def __init__(self, atr: bytes | None = None) -> None:
        self._atr = atr if atr is not None else make_atr((0, 1))
        self.powered = False
        self.calls: list[str] = []
        self.apdus: list[bytes] = []

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self.powered = True
        self.calls.append("on")
        return self._atr

    def power_off(self) -> None:
        self.powered = False
        self.calls.append("off")

    def reset(self) -> bytes:
        self.powered = True
        self.calls.append("reset")
        return self._atr

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        if len(apdu) > 5 and apdu[4] and len(apdu) >= 5 + apdu[4]:
            return apdu[5 : 5 + apdu[4]][::-1] + b"\x90\x00"
        return b"\x90\x00"


def sample_card() -> CardRuntime:
    """The card runtime with the sample applets, the echo applet default-selected."""
    card = CardRuntime(rng_seed=1)
    card.install(EchoApplet, ECHO_AID, default=True)
    card.install(PurseApplet, PURSE_AID, b"1234")
    return card


@pytest.fixture
def make_card() -> Callable[[], VpcdCard]:
    """The factory of the card under test (any deterministic card; FakeCard works too)."""
    return sample_card


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    """A pcscd of our own, with vpcd's two readers listed."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    log_path = tmp_path_factory.mktemp("pcscd") / "pcscd.log"
    with open(log_path, "wb") as log:
        daemon = Pcscd(log=log)
        try:
            daemon.start(wait_for=READER_0, timeout=15)
        except PcscdError as exc:
            pytest.skip(f"cannot run our own pcscd: {exc}")
        try:
            yield daemon
        finally:
            daemon.stop()


class PcscWatch:
    """Reads card presence as pcscd reports it (SCardGetStatusChange)."""

    def state(self, reader: str) -> tuple[bool, bytes]:
        """(card present, ATR) for `reader`; (False, b"") if pcscd cannot say."""
        from smartcard import scard

        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            return False, b""
        try:
            hresult, states = scard.SCardGetStatusChange(
                context, 0, [(reader, scard.SCARD_STATE_UNAWARE, [])]
            )
            if hresult != scard.SCARD_S_SUCCESS:
                return False, b""
            _name, event, atr = states[0]
            return bool(event & scard.SCARD_STATE_PRESENT), bytes(atr)
        finally:
            scard.SCardReleaseContext(context)

    def wait(self, reader: str, present: bool, timeout: float = 5.0) -> float:
        """Seconds until pcscd reports the card present (or absent); fails the test on timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.state(reader)[0] == present:
                return time.monotonic() - started
            time.sleep(0.02)
        pytest.fail(f"{reader}: card still {'absent' if present else 'present'} after {timeout} s")


@pytest.fixture(scope="session")
def pcsc() -> PcscWatch:
    return PcscWatch()


@dataclass
class Served:
    card: VpcdCard
    client: VpcdClient
    reader: str


@pytest.fixture
def serve(
    pcscd: Pcscd, make_card: Callable[[], VpcdCard], pcsc: PcscWatch
) -> Iterator[Callable[..., Served]]:
    """Serve a card on a vpcd slot; all are removed (and seen gone) at teardown."""
    clients: list[Served] = []

    def _serve(card: VpcdCard | None = None, slot: int = 0, wait: bool = True) -> Served:
        card = card if card is not None else make_card()
        client = VpcdClient(card, port=port_for_slot(slot), retry_interval=0.05)
        served = Served(card, client, reader_name(slot))
        clients.append(served)
        client.run_in_thread()
        if wait:
            pcsc.wait(served.reader, present=True)
        return served

    yield _serve
    for served in clients:
        served.client.stop()
    if pcscd.running:
        # The next test must not find this card still in the reader.
        for served in clients:
            pcsc.wait(served.reader, present=False)


@pytest.fixture
def fake_card() -> type[FakeCard]:
    """The stand-in card class itself, for tests about the transport rather than the card."""
    return FakeCard


@pytest.fixture
def atr_offering() -> Callable[..., bytes]:
    """`make_atr`, for tests that need a card offering given protocols."""
    return make_atr
