"""The per-command benchmark of the UICC/USIM/eUICC: what the README's table shows.

`cardemu bench --usim` prints in-process `CardRuntime.process` rates (APDUs/s)
of single commands on the `usim` and `euicc` presets: VERIFY PIN1 (correct) on
a card in memory and on a card image (every APDU that changes it persisted), READ
RECORD EF.MSISDN, AUTHENTICATE in the 3G context with a fresh SQN each time
(3GPP TS 31.102 §7.1.2), ES10c GetProfilesInfo with one profile (GSMA
SGP.22 §5.7.15), and the creation of one `usim` preset card (cards/s, and
milliseconds per card beside it). The figures run in rounds, each command once per round in an
order that alternates, so a machine's changing load falls on every command
alike; each figure is the median of its rounds with the smallest and largest
beside it. vsmartcard's vicc has none of these commands, so there is no
reference column.

Figures, never assertions. Every response is checked (status word and, where it
is fixed, the whole response), so the loop measures real work.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from card.runtime import CardRuntime

__all__ = ["UsimBenchmark", "UsimFigure", "run_usim_benchmark"]

VERIFY_PIN1 = bytes.fromhex("002000010831323334FFFFFFFF")
SELECT_MSISDN = bytes.fromhex("00A4000C026F40")
READ_RECORD_1 = bytes.fromhex("00B2010400")
#: STORE DATA carrying ProfileInfoListRequest (BF2D, empty), case 4 (SGP.22 §5.7.15)
GET_PROFILES_INFO = bytes.fromhex("80E2910003BF2D0000")
ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")


@dataclass
class UsimFigure:
    """One command's rates over the rounds (APDUs/s)."""

    key: str
    label: str
    rounds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "apdus_per_s": round(self.median),
            "min": round(min(self.rounds)),
            "max": round(max(self.rounds)),
            "rounds": len(self.rounds),
        }


@dataclass
class UsimBenchmark:
    """The figures of one `run_usim_benchmark`."""

    seconds: float
    figures: list[UsimFigure]

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "figures": {f.key: f.to_json() for f in self.figures}}

    def lines(self) -> list[str]:
        out = [
            f"cardemu in-process UICC commands, APDUs/s, median of {len(self.figures[0].rounds)}"
            f" alternating rounds [min-max], {self.seconds:g} s per command",
        ]
        for f in self.figures:
            out.append(
                f"  {f.label:<44}{f.median:>10,.0f}  [{min(f.rounds):,.0f}-{max(f.rounds):,.0f}]"
            )
            if f.key == "create_usim_card":
                out[-1] += f"  = {1000 / f.median:.2f} ms per card"
        out.append("  (no vicc column: vsmartcard's vicc has none of these commands)")
        return out


class _Command:
    """One measured command: its card and the APDUs of each batch, with their check."""

    def __init__(
        self,
        key: str,
        label: str,
        card: CardRuntime,
        batch: Callable[[int], Sequence[bytes]],
        check: Callable[[bytes], bool],
    ) -> None:
        self.figure = UsimFigure(key, label)
        self.card = card
        self.batch = batch
        self.check = check
        self.size = 100

    def run(self, budget: float) -> None:
        """One timed batch (its APDUs built beforehand); the next batch sized to `budget`."""
        apdus = self.batch(self.size)
        process = self.card.process
        t0 = time.perf_counter()
        responses = [process(a) for a in apdus]
        dt = time.perf_counter() - t0
        for a, r in zip(apdus, responses, strict=True):
            if not self.check(r):
                raise RuntimeError(f"benchmark command {a.hex()} answered {r.hex()}")
        self.figure.rounds.append(len(apdus) / dt)
        self.size = max(50, min(200_000, int(len(apdus) * budget / max(dt, 1e-6))))


class _Creation:
    """Card creation measured as one more command: `new_card("usim")` per unit, cards/s."""

    def __init__(self) -> None:
        from host.presets import new_card

        self.figure = UsimFigure("create_usim_card", "create one usim card (cards/s)")
        self.size = 10
        self._new_card = new_card
        self._seed = 10_000

    def run(self, budget: float) -> None:
        new_card = self._new_card
        seed = self._seed
        t0 = time.perf_counter()
        cards = [new_card("usim", rng_seed=seed + i) for i in range(self.size)]
        dt = time.perf_counter() - t0
        self._seed += self.size
        if not cards[-1].applets():
            raise RuntimeError("benchmark card has no applets")
        self.figure.rounds.append(len(cards) / dt)
        self.size = max(5, min(20_000, int(len(cards) * budget / max(dt, 1e-6))))


def _fixed(apdu: bytes, card: CardRuntime) -> tuple[Callable[[int], Sequence[bytes]], Any]:
    want = card.process(apdu)
    if want[-2:] != b"\x90\x00":
        raise RuntimeError(f"benchmark command {apdu.hex()} answered {want.hex()}")
    return (lambda n: [apdu] * n), (lambda r: r == want)


def _usim_card(image: str | None) -> CardRuntime:
    from card.uicc.builder import DEFAULT_USIM_AID
    from host.presets import new_card

    card = new_card("usim", image, rng_seed=1)
    card.power_on()
    card.process(bytes.fromhex("00A4040C10") + DEFAULT_USIM_AID)
    return card


def _authenticate_batches(card: CardRuntime) -> Callable[[int], Sequence[bytes]]:
    from card.crypto.milenage import Milenage, generate_auth_vector
    from card.uicc.builder import TEST_K, TEST_OPC

    alg = Milenage(TEST_K, TEST_OPC)
    seq = [0x40]  # above the preset's SEQ; IND 0, 5 IND bits (TS 33.102 Annex C)

    def batch(n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            seq[0] += 1
            rand = seq[0].to_bytes(16, "big")
            v = generate_auth_vector(alg, rand, (seq[0] << 5).to_bytes(6, "big"), b"\x80\x00")
            out.append(bytes.fromhex("008800812210") + rand + b"\x10" + v.autn + b"\x00")
        return out

    return batch


def _euicc_with_profile() -> CardRuntime:
    from host.lpa.demo import run_demo
    from host.presets import new_card
    from host.readers.inprocess import InProcessReader

    card = new_card("euicc", rng_seed=1)
    run_demo(reader=InProcessReader(card))  # one profile, over the in-process SM-DP+
    card.power_on()
    card.process(bytes.fromhex("00A4040C10") + ISD_R_AID)
    return card


def run_usim_benchmark(seconds: float = 1.0, rounds: int = 5) -> UsimBenchmark:
    """Measure each command for about `seconds` in all, in `rounds` alternating rounds."""
    commands: list[_Command | _Creation] = []
    with tempfile.TemporaryDirectory(prefix="cardemu-bench-") as tmp:
        mem = _usim_card(None)
        img = _usim_card(os.path.join(tmp, "usim.card"))
        try:
            batch, check = _fixed(VERIFY_PIN1, mem)
            commands.append(
                _Command("verify_pin1", "VERIFY PIN1 (correct), in memory", mem, batch, check)
            )
            batch, check = _fixed(VERIFY_PIN1, img)
            commands.append(
                _Command(
                    "verify_pin1_image", "VERIFY PIN1 (correct), on a card image", img, batch, check
                )
            )
            reader = _usim_card(None)
            reader.process(SELECT_MSISDN)
            batch, check = _fixed(READ_RECORD_1, reader)
            commands.append(
                _Command("read_record_msisdn", "READ RECORD EF.MSISDN", reader, batch, check)
            )
            auth = _usim_card(None)
            commands.append(
                _Command(
                    "authenticate_3g",
                    "AUTHENTICATE 3G, fresh SQN",
                    auth,
                    _authenticate_batches(auth),
                    lambda r: r[-2:] == b"\x90\x00" and r[0] == 0xDB,
                )
            )
            euicc = _euicc_with_profile()
            batch, check = _fixed(GET_PROFILES_INFO, euicc)
            commands.append(
                _Command(
                    "get_profiles_info", "ES10c GetProfilesInfo (one profile)", euicc, batch, check
                )
            )
            commands.append(_Creation())
            budget = seconds / max(1, rounds)
            for c in commands:  # warm-up and batch sizing, not counted
                c.run(budget / 4)
                c.figure.rounds.clear()
            for r in range(rounds):
                for c in commands if r % 2 == 0 else reversed(commands):
                    c.run(budget)
        finally:
            img.nvm.close()
    return UsimBenchmark(seconds, [c.figure for c in commands])
