"""Key generation and signing on the emulated card, beside a real card's published figures.

`cardemu bench --keys` sends GENERATE ASYMMETRIC KEY PAIR and PSO COMPUTE
DIGITAL SIGNATURE to the keypair applet in process, per algorithm, and prints
the median of several runs (the algorithms interleaved, so a slow moment of the
machine hits all of them alike) with the spread, beside JCAlgTest's
measurements of an NXP JCOP4 and the ratio. Figures, never assertions.

The reference (JCAlgTest, crocs-muni/JCAlgTest, file Profiles/performance/fixed/
NXP_JCOP4_J3R180_P71____PERFORMANCE_SYMMETRIC_ASYMMETRIC_DATAFIXED_1607634031428
__3b_d5_18_ff_81_91_fe_1f_c3_80_73_c8_21_10_0a.csv at commit e3ba2a46, AlgTest
1.7.10, measured 2020-12-10; per-operation averages, ms): KeyPair.genKeyPair()
ALG_RSA_CRT 2048 5145 (1496-8696 over 10), 3072 12276 (3402-20618), ALG_EC_FP
256 24.4, 384 39.05; Signature.sign() over 256 bytes ALG_ECDSA_SHA on EC_FP 256
32.00, 384 45.33, ALG_RSA_SHA_PKCS1 on RSA_CRT 2048 60.68, 3072 181.08. The card
hashes 256 bytes with SHA-1 inside those signing figures; ours signs a hash the
host computed (SHA-256/384), so the card-side work is comparable, not identical.
JCAlgTest has no brainpool figure for this card; the P-256/P-384 ones stand beside
the brainpool rows as the nearest.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from card.runtime import CardRuntime

__all__ = ["ALGORITHMS", "JCOP4", "KeyBench", "run_key_benchmark"]

KEYPAIR_AID = bytes.fromhex("F043415244454D554B50")
PIN = b"123456"

#: name -> (algorithm identifier, key reference, hash length for signing)
ALGORITHMS: dict[str, tuple[int, int, int]] = {
    "P-256": (0x11, 0x01, 32),
    "P-384": (0x14, 0x02, 48),
    "brainpoolP256r1": (0xB1, 0x03, 32),
    "brainpoolP384r1": (0xB2, 0x04, 48),
    "RSA-2048": (0x07, 0x05, 32),
    "RSA-3072": (0x05, 0x06, 32),
}

#: JCAlgTest, NXP JCOP4 J3R180 P71 (see the module docstring): (generate ms, sign ms).
JCOP4: dict[str, tuple[float, float]] = {
    "P-256": (24.4, 32.00),
    "P-384": (39.05, 45.33),
    "brainpoolP256r1": (24.4, 32.00),
    "brainpoolP384r1": (39.05, 45.33),
    "RSA-2048": (5145.45, 60.68),
    "RSA-3072": (12275.95, 181.08),
}
JCOP4_SOURCE = "JCAlgTest, NXP JCOP4 J3R180 P71 (2020-12-10, AlgTest 1.7.10)"


def _percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile `p` (0-100) of `values`."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


@dataclass
class KeyBench:
    """Times (seconds) of one algorithm."""

    name: str
    generate: list[float]
    sign: list[float]

    @staticmethod
    def _stats(values: Sequence[float]) -> dict[str, float]:
        return {
            "median_ms": statistics.median(values) * 1e3,
            "min_ms": min(values) * 1e3,
            "max_ms": max(values) * 1e3,
            # 10th/90th percentiles: one scheduler stall on a busy machine is the max
            "p10_ms": _percentile(values, 10) * 1e3,
            "p90_ms": _percentile(values, 90) * 1e3,
            "runs": len(values),
        }

    def to_json(self) -> dict[str, Any]:
        gen, sign = self._stats(self.generate), self._stats(self.sign)
        ref_gen, ref_sign = JCOP4[self.name]
        return {
            "generate": {k: round(v, 3) for k, v in gen.items()},
            "sign": {k: round(v, 4) for k, v in sign.items()},
            "jcop4_ms": {"generate": ref_gen, "sign": ref_sign},
            "ratio": {
                "generate": round(ref_gen / gen["median_ms"], 1),
                "sign": round(ref_sign / sign["median_ms"], 1),
            },
        }


def _card(seed: int) -> CardRuntime:
    from host.presets import new_card

    card = new_card("keypair", rng_seed=seed)
    card.power_on()
    resp = card.process(bytes((0, 0x20, 0, 0x81, len(PIN))) + PIN)
    if resp != b"\x90\x00":
        raise RuntimeError(f"VERIFY PIN answered {resp.hex()}")
    return card


def _timed(card: CardRuntime, apdu: bytes) -> float:
    t0 = time.perf_counter()
    resp = card.process(apdu)
    dt = time.perf_counter() - t0
    if resp[-2:] != b"\x90\x00" and resp[-2] != 0x61:
        raise RuntimeError(f"{apdu[:4].hex()} answered {resp[-2:].hex()}")
    return dt


def run_key_benchmark(
    runs: int = 5,
    *,
    algorithms: Sequence[str] = tuple(ALGORITHMS),
    rsa3072_runs: int = 3,
    signatures: int = 20,
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Generate and sign per algorithm, interleaved; figures and a printable table.

    Args:
        runs: generations per algorithm (and rounds of signing).
        algorithms: which of `ALGORITHMS`.
        rsa3072_runs: generations for RSA-3072, the slow one (at most `runs`).
        signatures: signatures per algorithm per round (each timed alone).
        seed: the card RNG's seed (generation time depends on the primes drawn).
        progress: called with a line after each round (a TTY's progress).
    """
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithm(s) {unknown}; choose from {list(ALGORITHMS)}")
    card = _card(seed)
    results = {name: KeyBench(name, [], []) for name in algorithms}
    for r in range(runs):
        for name in algorithms:
            alg, ref, hlen = ALGORITHMS[name]
            if name == "RSA-3072" and r >= min(rsa3072_runs, runs):
                continue
            gen = bytes((0, 0x47, 0, ref, 5, 0xAC, 3, 0x80, 1, alg, 0))
            results[name].generate.append(_timed(card, gen))
            if card.process(bytes((0, 0x22, 0x41, 0xB6, 3, 0x84, 1, ref))) != b"\x90\x00":
                raise RuntimeError("MSE SET DST refused")
            digest = (
                hashlib.sha256(bytes([r])).digest()
                if hlen == 32
                else hashlib.sha384(bytes([r])).digest()
            )
            sign = b"\x00\x2a\x9e\x9a" + bytes((hlen,)) + digest + b"\x00"
            results[name].sign.extend(_timed(card, sign) for _ in range(signatures))
        if progress is not None:
            progress(f"round {r + 1}/{runs} done")
    report: dict[str, Any] = {
        "runs": runs,
        "signatures_per_round": signatures,
        "reference": JCOP4_SOURCE,
        "algorithms": {name: b.to_json() for name, b in results.items()},
    }
    report["text"] = _table(report)
    return report


def _ms(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def _table(report: dict[str, Any]) -> str:
    lines = [
        "cardemu keypair applet, in-process APDUs: median (min-max) of "
        f"{report['runs']} interleaved runs, ms",
        f"reference: {report['reference']}",
        "",
        f"  {'algorithm':<16}{'generate':>24}{'JCOP4':>9}{'ratio':>9}"
        f"{'sign':>22}{'JCOP4':>8}{'ratio':>8}",
    ]
    for name, fig in report["algorithms"].items():
        g, s, ref, ratio = fig["generate"], fig["sign"], fig["jcop4_ms"], fig["ratio"]
        gen = f"{_ms(g['median_ms'])} ({_ms(g['min_ms'])}-{_ms(g['max_ms'])})"
        sig = f"{_ms(s['median_ms'])} ({_ms(s['min_ms'])}-{_ms(s['max_ms'])})"
        lines.append(
            f"  {name:<16}{gen:>24}{_ms(ref['generate']):>9}{ratio['generate']:>8,.0f}x"
            f"{sig:>22}{_ms(ref['sign']):>8}{ratio['sign']:>7,.0f}x"
        )
    lines.append(
        "  (JCOP4 rows for brainpool are its P-256/P-384 figures; its signing figures "
        "include hashing 256 bytes with SHA-1 on the card)"
    )
    return "\n".join(lines)
