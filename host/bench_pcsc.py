"""Benchmark of the PC/SC path: a served card, pcscd + vpcd, and pyscard.

The card under test and `EchoCard` (the floor of this path: a card that does
no work) are served at the same time, one in each of vpcd's two readers, and
timed in alternating batches of `BATCH` APDUs with the same client code, so the
ratio shows what the card itself costs on top of the transport. Timing one side
after the other let the machine's load decide the ratio (0.31-1.54 over 12 runs
on a busy 2-core machine); interleaved, both sides see the same load, and the
median of the per-round ratios, with its spread, is the figure. Each card runs
in a forked child process, as it does under `cardemu serve`, so the card and
the client do not share one GIL.

The command is SELECT MF without response data (ISO/IEC 7816-4 §11.2.2,
P2='0C'), `00 A4 00 0C 02 3F 00`.

Run `python -m host.bench_pcsc` for the echo card on both sides;
`--no-quickack` shows the ~44 ms delayed-ACK stall that TCP_QUICKACK removes
(see `host.vpcd`): keep n small then.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

from host.readers.base import ReaderError
from host.readers.pcsc import PcscReader
from host.vpcd import (
    VPCD_SLOTS,
    EchoCard,
    Pcscd,
    PcscdError,
    VpcdCard,
    VpcdClient,
    local_pcscd_pids,
    port_for_slot,
    serve_until_signalled,
)

SELECT_MF = bytes.fromhex("00A4000C023F00")
WARMUP = 50
"""APDUs sent before the clock starts. Linux acknowledges the first segments of a
connection at once whatever TCP_QUICKACK says, so a shorter warm-up would hide
the stall the flag removes."""


class PcscBenchError(Exception):
    """The benchmark could not run (no pcscd, busy reader, card failed to start)."""


#: APDUs per side and round: small enough that load changes little within a round.
BATCH = 100


@dataclass(frozen=True)
class PcscBenchResult:
    """APDUs/s of the card under test and of the echo floor, from one interleaved run.

    Attributes:
        n: APDUs sent to each side.
        card_rate, echo_rate: APDUs/s of the median round of each side (a round
            that met a stall, 40 ms on a delayed ACK, does not weigh on them).
        ratios: card/echo rate of each round (one batch each side, same load).
        reader, echo_reader: where the card and the echo card were served.
    """

    n: int
    card_rate: float
    echo_rate: float
    card_response: bytes
    quickack: bool
    reader: str
    ratios: tuple[float, ...] = ()
    echo_reader: str = ""

    @property
    def ratio(self) -> float:
        """The median round's card/echo rate: 1.0 means the card costs nothing extra."""
        if self.ratios:
            return statistics.median(self.ratios)
        return self.card_rate / self.echo_rate if self.echo_rate else 0.0

    @property
    def spread(self) -> tuple[float, float]:
        """The first and third quartiles of the round ratios (the middle half of the rounds).

        Not the extremes: a round that met one 40 ms stall (a delayed ACK) on one side
        reads as 0.05 or 20 and says nothing about the card.
        """
        if len(self.ratios) < 2:
            return (self.ratio, self.ratio)
        q1, _, q3 = statistics.quantiles(self.ratios, n=4, method="inclusive")
        return (q1, q3)

    def lines(self) -> list[str]:
        """The figures side by side, for a terminal."""
        qa = "on" if self.quickack else "OFF"
        low, high = self.spread
        return [
            f"PC/SC path (TCP_QUICKACK {qa}), {self.n} x {SELECT_MF.hex().upper()} each, "
            f"in {len(self.ratios)} interleaved rounds",
            f"  card      {self.card_rate:10,.0f} APDUs/s  {1e3 / self.card_rate:8.3f} ms/APDU"
            f"  ({self.reader}; answers {self.card_response.hex().upper()})",
            f"  echo card {self.echo_rate:10,.0f} APDUs/s  {1e3 / self.echo_rate:8.3f} ms/APDU"
            f"  ({self.echo_reader or self.reader}: the floor of this path)",
            f"  ratio     {self.ratio:10.2f}  median of the rounds "
            f"(middle half {low:.2f}-{high:.2f})",
        ]


def _serve_child(
    card_factory: Callable[[], VpcdCard], port: int, quickack: bool, report: Connection
) -> None:
    """Body of the forked card process: make the card, say its ATR, serve until SIGTERM."""
    try:
        card = card_factory()
        client = VpcdClient(card, port=port, quickack=quickack, retry_interval=0.05)
        report.send(("atr", card.atr))
    except Exception as exc:
        report.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    serve_until_signalled(client)


def _reader_state(reader: str) -> tuple[bool, bytes]:
    try:
        from smartcard import scard
    except ImportError as exc:
        raise PcscBenchError("pyscard is not installed: pip install 'cardemu[pcsc]'") from exc

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscBenchError("PC/SC service not available (is pcscd running?)")
    try:
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE, [])]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscBenchError(f"reader '{reader}': {scard.SCardGetErrorMessage(hresult)}")
        _name, event, atr = states[0]
        return bool(event & scard.SCARD_STATE_PRESENT), bytes(atr)
    finally:
        scard.SCardReleaseContext(context)


def _wait_state(reader: str, present: bool, atr: bytes = b"", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen, seen_atr = _reader_state(reader)
        if seen == present and (not present or not atr or seen_atr == atr):
            return
        time.sleep(0.02)
    raise PcscBenchError(
        f"reader '{reader}': card not {'in' if present else 'out'} after {timeout} s"
    )


@contextmanager
def served(
    card_factory: Callable[[], VpcdCard], slot: int = 0, quickack: bool = True
) -> Iterator[PcscReader]:
    """Serve one card in a child process on vpcd's `slot`; yield a connected reader.

    Raises:
        PcscBenchError: the reader is busy, or the card did not come up.
    """
    reader = f"Virtual PCD 00 {slot:02d}"
    if _reader_state(reader)[0]:
        raise PcscBenchError(f"reader '{reader}' already holds a card: stop what serves it")
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_serve_child,
        args=(card_factory, port_for_slot(slot), quickack, child_end),
        name=f"bench-card-{slot}",
        daemon=True,
    )
    child.start()
    child_end.close()
    try:
        if not parent_end.poll(30):
            raise PcscBenchError("the card process did not start within 30 s")
        kind, value = parent_end.recv()
        if kind == "error":
            raise PcscBenchError(f"card_factory failed: {value}")
        _wait_state(reader, present=True, atr=value)
        pcsc = PcscReader(reader)
        try:
            pcsc.connect()
            yield pcsc
        except ReaderError as exc:
            raise PcscBenchError(str(exc)) from exc
        finally:
            pcsc.disconnect()
    finally:
        if child.is_alive():
            child.terminate()  # SIGTERM to our own child, by its PID
            child.join(5)
            if child.is_alive():
                child.kill()
                child.join(5)
        parent_end.close()
    # A next card may go into the same slot: let pcscd see this one leave.
    _wait_state(reader, present=False)


def _timed(transmit: Callable[[bytes], bytes], command: bytes, count: int) -> tuple[float, bytes]:
    response = b""
    started = time.perf_counter()
    for _ in range(count):
        response = transmit(command)
    return time.perf_counter() - started, response


def measure_card(
    card_factory: Callable[[], VpcdCard],
    n: int,
    slot: int = 0,
    quickack: bool = True,
    command: bytes = SELECT_MF,
) -> tuple[float, bytes]:
    """Serve one card in a child process and time n commands to it through pyscard.

    Returns:
        (APDUs per second, the last response).

    Raises:
        PcscBenchError: the reader is busy, or the card did not come up.
    """
    with served(card_factory, slot, quickack) as pcsc:
        try:
            _timed(pcsc.transmit, command, min(WARMUP, n))
            elapsed, response = _timed(pcsc.transmit, command, n)
        except ReaderError as exc:
            raise PcscBenchError(str(exc)) from exc
    return n / elapsed, response


def bench_pcsc(
    card_factory: Callable[[], VpcdCard],
    n: int = 5000,
    slot: int = 0,
    quickack: bool = True,
    command: bytes = SELECT_MF,
    batch: int = BATCH,
) -> PcscBenchResult:
    """Time n commands to the card from `card_factory` and n to EchoCard, interleaved.

    The card goes into vpcd's `slot` and the echo card into the other one; the
    two are timed in alternating batches (which side goes first alternates too).
    Uses the running pcscd if there is one of ours (it must load vpcd);
    otherwise starts one for the run and stops it after.

    Raises:
        PcscBenchError: no usable pcscd, a busy reader, or a card that failed.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if slot not in range(VPCD_SLOTS):
        raise ValueError(f"slot must be 0 or 1, not {slot}")
    echo_slot = 1 - slot
    reader = f"Virtual PCD 00 {slot:02d}"
    echo_reader = f"Virtual PCD 00 {echo_slot:02d}"
    daemon: Pcscd | None = None
    if not local_pcscd_pids():
        daemon = Pcscd()
        try:
            daemon.start(wait_for=reader)
        except PcscdError as exc:
            raise PcscBenchError(str(exc)) from exc
    rounds = max(1, -(-n // batch))
    card_rates: list[float] = []
    echo_rates: list[float] = []
    ratios: list[float] = []
    card_response = b""
    try:
        with (
            served(card_factory, slot, quickack) as card,
            served(EchoCard, echo_slot, quickack) as echo,
        ):
            try:
                _timed(card.transmit, command, min(WARMUP, n))
                _timed(echo.transmit, command, min(WARMUP, n))
                left = n
                for i in range(rounds):
                    count = min(batch, left)
                    left -= count
                    if i % 2 == 0:
                        ct, card_response = _timed(card.transmit, command, count)
                        et, _ = _timed(echo.transmit, command, count)
                    else:
                        et, _ = _timed(echo.transmit, command, count)
                        ct, card_response = _timed(card.transmit, command, count)
                    card_rates.append(count / ct)
                    echo_rates.append(count / et)
                    ratios.append(et / ct)  # (count / ct) / (count / et)
            except ReaderError as exc:
                raise PcscBenchError(str(exc)) from exc
    finally:
        if daemon is not None:
            daemon.stop()
    return PcscBenchResult(
        n=n,
        card_rate=statistics.median(card_rates),
        echo_rate=statistics.median(echo_rates),
        card_response=card_response,
        quickack=quickack,
        reader=reader,
        ratios=tuple(ratios),
        echo_reader=echo_reader,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m host.bench_pcsc`: the echo card against itself (the floor, twice)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="APDUs per card (default 5000)")
    parser.add_argument(
        "--slot", type=int, default=0, help="vpcd slot of the card (default 0; the echo: the other)"
    )
    parser.add_argument(
        "--no-quickack", action="store_true", help="leave TCP_QUICKACK off (use a small -n)"
    )
    args = parser.parse_args(argv)
    try:
        result = bench_pcsc(EchoCard, n=args.n, slot=args.slot, quickack=not args.no_quickack)
    except (PcscBenchError, ReaderError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
