"""`cardemu bench`: one table of every benchmark, each row a figure or the reason it is missing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from host import bench_table
from host.bench_table import (
    BENCHMARKS,
    Benchmark,
    Row,
    Settings,
    Skip,
    figure,
    interleave,
    run_table,
)
from host.cli import main

#: The README's benchmark table; a benchmark dropped from the registry fails here.
EXPECTED = {
    "inprocess",
    "pcsc",
    "fuzz",
    "keys",
    "bio",
    "doorlock",
    "smdpp",
    "download",
    "startup",
    "es10first",
    "scenarios",
    "memory",
}
ROW_KEYS = {
    "entry",
    "name",
    "unit",
    "median",
    "low",
    "high",
    "runs",
    "higher_is_better",
    "reference",
    "reference_value",
    "ratio",
    "ratio_low",
    "ratio_high",
    "skipped",
    "error",
    "note",
}


def _check_row(row: dict[str, object]) -> None:
    assert set(row) == ROW_KEYS, row
    assert row["error"] is None, row
    if row["skipped"] is not None:
        assert isinstance(row["skipped"], str) and row["skipped"], row
        assert row["median"] is None
        return
    for k in ("median", "low", "high"):
        assert isinstance(row[k], (int, float)) and row[k] > 0, row  # type: ignore[operator]
    assert row["low"] <= row["median"] <= row["high"], row  # type: ignore[operator]
    assert isinstance(row["runs"], int) and row["runs"] >= 1
    if row["ratio"] is not None:
        assert row["reference"] and isinstance(row["reference_value"], (int, float))


def test_quick_table_has_every_row_with_a_figure_or_a_reason() -> None:
    assert {b.name for b in BENCHMARKS} == EXPECTED
    table = run_table(Settings(quick=True))
    doc = json.loads(json.dumps(table.to_json()))
    assert doc["quick"] is True
    assert isinstance(doc["load_average"], list) and len(doc["load_average"]) == 3
    assert doc["cpus"] >= 1 and doc["started"].endswith("UTC")
    assert [b["name"] for b in doc["benchmarks"]] == [b.name for b in BENCHMARKS]
    by_entry: dict[str, list[dict[str, object]]] = {}
    for row in doc["rows"]:
        _check_row(row)
        by_entry.setdefault(str(row["entry"]), []).append(row)
    assert set(by_entry) == EXPECTED  # every benchmark left at least one row
    # The rows every machine can measure: in process, no optional tool.
    names = {str(r["name"]): r for r in doc["rows"]}
    for must in (
        "in-process SELECT MF (00A4000C023F00)",
        "key generation P-256",
        "signing P-256",
        "match-on-card VERIFY (ISO 19794-2 compact card)",
        "SM-DP+ InitiateAuthentication, keep-alive",
        "memory per USIM card (RSS growth)",
        "USIM cards per GiB (RSS growth)",
        "memory per USIM card (tracemalloc)",
        "eSIM download + enable, HTTPS, store in memory",
        "eSIM download + enable, HTTPS, store on disk",
        "cardemu --version, wall time",
        "cardemu --help, peak RSS",
        "first ES10 GetProfilesInfo of a process",
        "process start to the first ES10 answer",
    ):
        assert names[must]["median"] is not None, names[must]
    # The rows stand beside their references, measured in the same run.
    download = names["eSIM download + enable, HTTPS, store in memory"]
    assert download["reference"] == "the same in-process, no HTTP"
    assert isinstance(download["reference_value"], float) and download["reference_value"] > 0
    first = names["first ES10 GetProfilesInfo of a process"]
    assert first["reference"] == "the second call, same process"
    # A peak RSS read in the child itself, not the parent's carried over (tens of MiB).
    rss = names["cardemu --help, peak RSS"]
    assert 5 < rss["median"] < 60, rss  # type: ignore[operator]
    # Every preset is fuzzed, each beside the same fuzzing without oracles.
    from host.presets import PRESETS

    fuzz_rows = {str(r["name"]) for r in by_entry["fuzz"]}
    assert len(fuzz_rows) == len(PRESETS)
    assert all(any(f"fuzz executions/s, {p}, " in n for n in fuzz_rows) for p in PRESETS)
    # Published reference: JCAlgTest's JCOP4 figure, ratio = times faster than the card.
    p256 = names["signing P-256"]
    assert p256["reference_value"] == 32.0
    assert p256["ratio"] == pytest.approx(32.0 / p256["median"], rel=1e-3)  # type: ignore[operator]
    assert names["USIM cards per GiB (RSS growth)"]["reference_value"] == 10_000
    # Each system's scenario is a row (run, or skipped for the quick budget).
    from host.systems.run import SCENARIOS

    scenario_rows = {str(r["name"]) for r in by_entry["scenarios"]}
    assert scenario_rows == {f"scenario {n}, end to end" for n in SCENARIOS}
    text = "\n".join(table.lines())
    for row in doc["rows"]:
        assert str(row["name"]) in text


def test_cli_runs_part_of_the_table_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--only", "keys", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["entry"] for r in doc["rows"]} == {"keys"}
    assert len(doc["rows"]) == 12  # six algorithms, generate and sign
    skipped = [r for r in doc["rows"] if r["skipped"]]
    assert {r["name"] for r in skipped} == {
        f"{op} RSA-{n}" for op in ("key generation", "signing") for n in (2048, 3072)
    }


def test_only_help_names_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for b in BENCHMARKS:
        assert b.name in text.split("Only this benchmark of the table")[1].split("--")[0], b.name


def test_cli_refuses_an_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "nope"]) == 2
    assert "no benchmark nope" in capsys.readouterr().err


def test_a_skip_and_a_failure_are_rows_and_the_failure_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fine(s: Settings) -> list[Row]:
        return [
            figure("fine", "a rate", "x/s", [1.0, 3.0, 2.0], reference="r", ref_samples=[1.0] * 3)
        ]

    def absent(s: Settings) -> list[Row]:
        raise Skip("no such tool here")

    def broken(s: Settings) -> list[Row]:
        raise RuntimeError("it broke")

    monkeypatch.setattr(
        bench_table,
        "BENCHMARKS",
        [
            Benchmark("fine", "F", fine),
            Benchmark("absent", "A", absent),
            Benchmark("broken", "B", broken),
        ],
    )
    assert main(["bench", "--json"]) == 1
    captured = capsys.readouterr()
    # The table first; then, --json's error object (run_main prints one on a failure).
    rows = json.JSONDecoder().raw_decode(captured.out)[0]["rows"]
    assert [(r["entry"], r["median"], r["skipped"], r["error"]) for r in rows] == [
        ("fine", 2.0, None, None),
        ("absent", None, "no such tool here", None),
        ("broken", None, None, "RuntimeError: it broke"),
    ]
    assert "benchmark(s) failed: broken" in captured.err
    assert main(["bench"]) == 1
    text = capsys.readouterr().out
    assert "skipped: no such tool here" in text and "FAILED: RuntimeError: it broke" in text


def test_interleave_rotates_who_goes_first() -> None:
    calls: list[str] = []

    def side(name: str, value: float) -> Callable[[], float]:
        def run() -> float:
            calls.append(name)
            return value

        return run

    sides = [side("a", 1.0), side("b", 2.0)]
    got = interleave(sides, 4)
    assert "".join(calls) == "abbaabba"
    assert got == [[1.0] * 4, [2.0] * 4]


def test_ratio_reads_times_better_for_rates_and_for_times() -> None:
    # Rates: ours over theirs, the median of the per-round ratios (not of the medians).
    rate = figure(
        "e", "r", "x/s", [10.0, 40.0, 30.0], reference="ref", ref_samples=[5.0, 10.0, 30.0]
    )
    assert rate.median == 30.0 and (rate.low, rate.high) == (10.0, 40.0)
    assert rate.reference_value == 10.0
    assert rate.ratio == 2.0 and (rate.ratio_low, rate.ratio_high) == (1.0, 4.0)
    # Times: theirs over ours, so 4x means four times faster than the reference.
    t = figure("e", "t", "ms", [2.0], higher_is_better=False, reference="card", ref_value=8.0)
    assert t.ratio == 4.0
    with pytest.raises(ValueError):
        figure("e", "none", "ms", [])
