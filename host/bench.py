"""The in-process card benchmark: our card's APDUs/s, beside vsmartcard's vicc in the same run.

Figures, never assertions: `cardemu bench` prints them. Every response is
checked against the expected one, so the loop measures real work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from applets.sample import PURSE_AID
from card.runtime import CardRuntime
from host.presets import new_card

# The commands vicc's iso7816 card can also run (see host/bench_vicc.py: vicc answers
# SELECT with P2=00/04 by raising, so both sides select the MF with P2=0C).
SELECT_MF = bytes.fromhex("00A4000C023F00")
READ_BINARY_128 = bytes.fromhex("00B0000080")


def command_mix(ef_select: bytes, fs_select: bytes) -> list[tuple[str, bytes]]:
    return [
        ("SELECT purse by AID", bytes.fromhex("00A4040C09") + PURSE_AID),
        ("VERIFY PIN", bytes.fromhex("002000010431323334")),
        ("CREDIT (transaction)", bytes.fromhex("803000000400000001")),
        ("DEBIT (transaction)", bytes.fromhex("804000000400000001")),
        ("GET BALANCE", bytes.fromhex("8050000004")),
        ("SELECT file system by AID", fs_select),
        ("SELECT EF", ef_select),
        ("READ BINARY 128", READ_BINARY_128),
    ]


def rate(card: CardRuntime, apdus: Sequence[bytes], seconds: float) -> float:
    """APDUs per second sending `apdus` round-robin for about `seconds`.

    The first pass records the responses; every later response must equal them.
    """
    process = card.process
    expected = [process(a) for a in apdus]
    for a, r in zip(apdus, expected, strict=True):
        if r[-2:] != b"\x90\x00":
            raise RuntimeError(f"benchmark command {a.hex()} answered {r[-2:].hex()}")
    n = 0
    batch = max(1, 2000 // len(apdus))
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(batch):
            for a, want in zip(apdus, expected, strict=True):
                if process(a) != want:
                    raise RuntimeError(f"benchmark command {a.hex()}: response changed")
        n += batch * len(apdus)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0)


#: Rounds of the two sides, alternating, for each command of the vicc comparison.
ROUNDS = 5


def interleaved(
    ours: Callable[[float], float], theirs: Callable[[float], float] | None, seconds: float
) -> tuple[float, float | None, list[float]]:
    """Our rate and theirs for one command, measured in alternating rounds.

    Each side runs `ROUNDS` rounds of `seconds / ROUNDS` (who goes first
    alternates), so that a change of the machine's load hits both sides alike.

    Returns:
        (our median round's APDUs/s, theirs or None, the per-round ratios ours/theirs).
    """
    each = seconds / ROUNDS
    mine: list[float] = []
    other: list[float] = []
    for i in range(ROUNDS):
        if theirs is not None and i % 2:
            other.append(theirs(each))
            mine.append(ours(each))
        else:
            mine.append(ours(each))
            if theirs is not None:
                other.append(theirs(each))
    ratios = [m / o for m, o in zip(mine, other, strict=True)] if other else []
    return (
        statistics.median(mine),
        statistics.median(other) if other else None,
        ratios,
    )


def run_card_benchmark(seconds: float = 1.0) -> dict[str, Any]:
    """Run the fixed mix and the vicc comparison; return figures and a printable table."""
    from applets.iso7816 import BENCH_EF_FID, FS_APPLET_AID

    card = new_card("demo", rng_seed=1)
    card.power_on()
    fs_select = bytes.fromhex("00A4040C") + bytes((len(FS_APPLET_AID),)) + FS_APPLET_AID
    ef_select = bytes.fromhex("00A4020C02") + BENCH_EF_FID
    mix = command_mix(ef_select, fs_select)
    mix_rate = rate(card, [a for _, a in mix], seconds)

    def our_select_mf(t: float) -> float:
        card.reset()  # the file system applet is default-selected
        return rate(card, [SELECT_MF], t)

    def our_read_binary(t: float) -> float:
        card.reset()
        card.process(ef_select)
        return rate(card, [READ_BINARY_128], t)

    our_meters = {"select_mf": our_select_mf, "read_binary_128": our_read_binary}

    report: dict[str, Any] = {
        "mix": {"commands": [name for name, _ in mix], "apdus_per_s": round(mix_rate)},
        "cardemu": None,
        "vicc": None,
        "ratio": None,
    }
    lines = [
        f"cardemu in-process card, {seconds:g} s per figure",
        f"  fixed mix ({', '.join(name for name, _ in mix)}):",
        f"    {mix_rate:>10,.0f} APDUs/s",
        "",
    ]
    from host.bench_vicc import ViccBenchError, vicc_available, vicc_meters

    ok, why = vicc_available()
    their_meters = None
    if ok:
        try:
            their_meters = vicc_meters()
        except ViccBenchError as e:
            why = str(e)
    ours: dict[str, float] = {}
    vicc: dict[str, float] | None = {} if their_meters is not None else None
    spreads: dict[str, tuple[float, float]] = {}
    for key, meter in our_meters.items():
        try:
            mine, theirs, rounds = interleaved(
                meter, their_meters[key] if their_meters else None, seconds
            )
        except ViccBenchError as e:
            vicc, their_meters, why = None, None, str(e)
            mine, theirs, rounds = interleaved(meter, None, seconds)
        ours[key] = mine
        if vicc is not None and theirs is not None:
            vicc[key] = theirs
            spreads[key] = (min(rounds), max(rounds))
    report["cardemu"] = {k: round(v) for k, v in ours.items()}
    header = f"  {'command':<34}{'cardemu':>12}{'vicc':>12}{'ratio':>9}  (min-max of {ROUNDS})"
    lines.append(header)
    labels = {
        "select_mf": f"SELECT MF ({SELECT_MF.hex().upper()})",
        "read_binary_128": f"READ BINARY 128 ({READ_BINARY_128.hex().upper()})",
    }
    ratios = {}
    for key, label in labels.items():
        if vicc is not None:
            ratios[key] = ours[key] / vicc[key]
            low, high = spreads[key]
            lines.append(
                f"  {label:<34}{ours[key]:>12,.0f}{vicc[key]:>12,.0f}{ratios[key]:>8.1f}x"
                f"  ({low:.1f}-{high:.1f})"
            )
        else:
            lines.append(f"  {label:<34}{ours[key]:>12,.0f}{'-':>12}{'-':>9}")
    if vicc is not None:
        report["vicc"] = {k: round(v) for k, v in vicc.items()}
        report["ratio"] = {k: round(v, 2) for k, v in ratios.items()}
        report["ratio_spread"] = {k: [round(a, 2), round(b, 2)] for k, (a, b) in spreads.items()}
        lines.append(
            "  (vicc: vsmartcard's iso7816 card, in-process, same commands, APDUs/s; the two"
            f" sides alternate in {ROUNDS} rounds, figures are the median round)"
        )
    else:
        lines.append(f"  vicc not measured: {why}")
    report["text"] = "\n".join(lines)
    return report
