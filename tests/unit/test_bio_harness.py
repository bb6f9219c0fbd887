"""The accuracy harness: the synthetic generator, error-rate arithmetic, Bozorth3's input,
the APDU path's agreement with the direct scores, and the `cardemu bio` commands."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from applets.biometric.iso19794 import Minutia
from host.bio import bozorth, det, synthetic
from host.bio.eval import ApduResult, EvalConfig, EvalResult, MatcherResult, pairs, report, run
from host.cli import cli


def test_generator_is_reproducible_and_seed_dependent() -> None:
    a = synthetic.make_dataset(4, 3, seed=9)
    b = synthetic.make_dataset(4, 3, seed=9)
    c = synthetic.make_dataset(4, 3, seed=10)
    assert a.impressions == b.impressions
    assert a.impressions != c.impressions
    # Any one impression can be rebuilt alone.
    f2 = synthetic.make_finger(9, 2)
    assert synthetic.make_impression(f2, 9, 1) == a.impressions[2][1]


def test_generated_data_has_the_documented_shape() -> None:
    ds = synthetic.make_dataset(40, 2, seed=1)
    model = synthetic.DEFAULT_MODEL
    for f in ds.fingers:
        area = math.pi * synthetic.FINGER_WIDTH * synthetic.FINGER_HEIGHT / 4
        assert len(f.minutiae) <= round(area * model.density_per_mm2[1]) + 1
        assert all(synthetic._in_finger(m.x, m.y) for m in f.minutiae)
        pts = f.minutiae
        assert all(
            (p.x - q.x) ** 2 + (p.y - q.y) ** 2 >= model.min_spacing_mm**2 - 1e-9
            for k, p in enumerate(pts)
            for q in pts[k + 1 :]
        )
    counts = [len(i) for f in ds.impressions for i in f]
    assert max(counts) <= model.max_minutiae
    assert 20 <= sum(counts) / len(counts) <= 55
    kinds = [m.kind for f in ds.impressions for i in f for m in i]
    endings = kinds.count(1) / len(kinds)
    assert 0.45 <= endings <= 0.65
    assert {f.pattern for f in ds.fingers} >= {"left_loop", "right_loop", "whorl"}
    # Coordinates stay within the sensor window (12.8 x 16.5 mm = 128 x 165 units).
    assert all(m.x <= 128 and m.y <= 165 for f in ds.impressions for i in f for m in i)


def test_model_changes_change_the_impressions() -> None:
    finger = synthetic.make_finger(3, 0)
    calm = dataclasses.replace(
        synthetic.DEFAULT_MODEL, miss_rate=(0.0, 0.0), spurious_rate=(0.0, 0.0)
    )
    lossy = dataclasses.replace(
        synthetic.DEFAULT_MODEL, miss_rate=(0.6, 0.6), spurious_rate=(0.0, 0.0)
    )
    assert len(synthetic.make_impression(finger, 3, 0, lossy)) < len(
        synthetic.make_impression(finger, 3, 0, calm)
    )


def test_error_rates_on_known_scores() -> None:
    genuine = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    impostor = list(range(0, 100))  # 0..99
    p = det.fnmr_at_fmr(genuine, impostor, 0.05)
    # FMR <= 5%: at most 5 impostor scores >= t, so t = 95; genuine below 95: 9 of 10.
    assert (p.threshold, p.fmr, p.fnmr) == (95, 0.05, 0.9)
    assert p.resolved
    assert not det.fnmr_at_fmr(genuine, impostor, 0.001).resolved
    eer, _ = det.equal_error_rate([5, 6, 7, 8], [1, 2, 3, 4])
    assert eer == 0.0
    eer, _ = det.equal_error_rate([1, 2, 3, 4], [1, 2, 3, 4])
    assert 0.2 <= eer <= 0.5
    curve = det.det_curve([2, 3], [1, 2])
    assert curve[0] == (1.0, 0.0) and curve[-1] == (0.0, 1.0)
    with pytest.raises(ValueError):
        det.rates([], [1])


def test_pairs() -> None:
    genuine, impostor = pairs(3, 3, 10, seed=1)
    assert len(genuine) == 3 * 3
    assert all(a == b and i < j for a, i, b, j in genuine)
    assert len(impostor) == 10 and all(a != b for a, _, b, _ in impostor)
    _, every = pairs(2, 2, 10**6, seed=1)
    assert len(every) == 2 * 1 * 2 * 2


def test_bozorth_input_conversion() -> None:
    ms = [Minutia(100, 50, 1, 16), Minutia(0, 255, 2, 0)]
    xyt = bozorth.to_xyt(ms).splitlines()
    # 100 units = 10 mm = 196.85 px; angle 16 steps = 90 degrees; Y flipped to bottom left.
    assert xyt[0] == f"197 {bozorth.IMAGE_HEIGHT_PX - 98} 90 100"
    assert xyt[1] == f"0 {bozorth.IMAGE_HEIGHT_PX - 502} 0 100"
    np = pytest.importorskip("numpy")
    arr = bozorth.to_afis_array(ms)
    assert arr.shape == (2, 5)
    assert np.allclose(arr[0], [100 * 500 / 254, 50 * 500 / 254, math.pi / 2, 0, 1])
    assert arr[1][3] == 1  # a bifurcation


def test_bozorth_availability_is_reported_not_raised() -> None:
    ok, why = bozorth.available()
    assert isinstance(ok, bool) and why
    if not ok:
        assert "skipped" in why
        with pytest.raises(bozorth.BozorthUnavailable):
            bozorth.Bozorth3()


def test_small_run_apdu_path_agrees_with_direct_scores() -> None:
    cfg = EvalConfig(fingers=6, impressions=3, seed=2, impostors=60, apdu_sample=30, bozorth=False)
    result = run(cfg)
    assert result.genuine_pairs == 18 and result.impostor_pairs == 60
    assert result.apdu.comparisons == 30
    assert result.apdu.agree == 30 and not result.apdu.disagreements
    assert result.apdu.blocked == 0
    assert len(result.apdu.times_ms) == 30 and result.apdu.p99_ms >= result.apdu.mean_ms > 0
    text = "\n".join(report(result))
    assert "SYNTHETIC DATA" in text and "Bozorth3 skipped" in text
    assert "decisions agreeing with the direct scores: 30/30" in text
    js = result.to_json()
    assert js["data"]["synthetic"] is True
    assert js["targets"]["better_than_bozorth3"] is None
    assert js["apdu_path"]["decisions_agree"] == 30


def test_cli_eval_json_and_model_override() -> None:
    args = ["bio", "eval", "--fingers", "4", "--impressions", "2", "--impostors", "20"]
    args += ["--apdu-sample", "6", "--no-bozorth", "--json", "--set", "rotation_sd_deg=3"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["data"]["model"]["rotation_sd_deg"] == 3.0
    assert out["data"]["genuine_comparisons"] == 4
    assert out["apdu_path"]["comparisons"] == 6
    bad = CliRunner().invoke(cli, ["bio", "eval", "--set", "nonsense=1"])
    assert bad.exit_code == 2


def test_cli_eval_does_not_claim_targets_it_cannot_resolve() -> None:
    # 20 impostor comparisons: the smallest FMR they show is 5%, so FMR 1% is not resolved.
    args = ["bio", "eval", "--fingers", "5", "--impressions", "2", "--impostors", "20"]
    args += ["--apdu-sample", "4", "--no-bozorth"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "FNMR at FMR=1%" in res.output and "(*)" in res.output
    assert (
        "target FNMR <= 1% at FMR = 1%: not judged (need ≥ 100 impostor comparisons)" in res.output
    )
    assert "at FMR = 1%: met" not in res.output
    assert "better than Bozorth3 (every FNMR and the EER): not judged (Bozorth3 not run)" in (
        res.output
    )
    js = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert js["targets"]["fnmr_le_1pct_at_fmr_1pct"] is None
    assert js["targets_not_judged"]["fnmr_le_1pct_at_fmr_1pct"] == (
        "need ≥ 100 impostor comparisons"
    )
    assert js["targets"]["apdu_decisions_agree"] is True  # 4 VERIFY APDUs were run


def _result(
    ours: tuple[list[float], list[float]],
    theirs: tuple[list[float], list[float]] | None,
    apdu_comparisons: int = 4,
) -> EvalResult:
    def matcher(name: str, scores: tuple[list[float], list[float]]) -> MatcherResult:
        g, i = scores
        return MatcherResult(name, "test scores", g, i, det.rates(g, i))

    return EvalResult(
        config=EvalConfig(bozorth=theirs is not None),
        genuine_pairs=len(ours[0]),
        impostor_pairs=len(ours[1]),
        minutiae_mean=30.0,
        ours=matcher("ours", ours),
        bozorth=None if theirs is None else matcher("Bozorth3", theirs),
        bozorth_skipped=None if theirs is not None else "Bozorth3 skipped: --no-bozorth",
        apdu=ApduResult(
            comparisons=apdu_comparisons,
            genuine=apdu_comparisons,
            impostor=0,
            agree=apdu_comparisons,
            disagreements=[],
            times_ms=[1.0] * apdu_comparisons,
            threshold=40,
            blocked=0,
        ),
        card_threshold_fmr=0.0,
        card_threshold_fnmr=0.0,
    )


# Genuine scores: 100 of them. Impostor scores 0..n-1, all below the genuine ones ("clean"),
# or with the genuine scores spread over them ("overlap": FNMR > 0 at every FMR).
def _clean(n: int) -> tuple[list[float], list[float]]:
    return [float(n + 10 + k) for k in range(100)], [float(k) for k in range(n)]


def _overlap(n: int) -> tuple[list[float], list[float]]:
    return [float(n * k / 100) for k in range(100)], [float(k) for k in range(n)]


def test_targets_are_judged_only_on_resolved_operating_points() -> None:
    # 500 impostor comparisons resolve FMR 1% (5 false matches allowed), not 0.1% or 0.01%.
    r = _result(_clean(500), _overlap(500))
    assert [p.resolved for p in r.ours.rates.points] == [True, False, False]  # type: ignore[union-attr]
    t = r.targets()
    assert t["fnmr_le_1pct_at_fmr_1pct"] is True
    assert t["better_than_bozorth3"] is None  # better where resolved; 0.01% needs 10000
    assert r.unjudged() == {
        "better_than_bozorth3": "need ≥ 10000 impostor comparisons",
        "fnmr_le_10pct_at_fmr_01pct": "need ≥ 1000 impostor comparisons",  # the FMR 0.1 % target
    }
    assert t["fnmr_le_5pct_at_fmr_1pct"] is True
    text = "\n".join(report(r))
    assert "target FNMR <= 1% at FMR = 1%: met" in text
    assert (
        "target better than Bozorth3 (every FNMR and the EER): "
        "not judged (need ≥ 10000 impostor comparisons)"
    ) in text
    # Worse at a resolved point (or in EER): NOT met, whatever the unresolved ones say.
    worse = _result(_overlap(500), _clean(500))
    assert worse.targets()["better_than_bozorth3"] is False
    assert worse.targets()["fnmr_le_1pct_at_fmr_1pct"] is False
    assert "better than Bozorth3 (every FNMR and the EER): NOT met" in "\n".join(report(worse))
    # Enough impostor comparisons for every target FMR: judged.
    full = _result(_clean(10000), _overlap(10000))
    assert all(p.resolved for p in full.ours.rates.points)  # type: ignore[union-attr]
    assert full.targets()["better_than_bozorth3"] is True
    assert full.unjudged() == {}
    # Fewer than 100: not even FMR 1%.
    few = _result(_clean(99), _overlap(99))
    assert few.targets()["fnmr_le_1pct_at_fmr_1pct"] is None
    assert few.unjudged()["fnmr_le_1pct_at_fmr_1pct"] == "need ≥ 100 impostor comparisons"
    assert few.to_json()["targets_not_judged"] == few.unjudged()


def test_verify_targets_need_verify_apdus() -> None:
    r = _result(_clean(500), None, apdu_comparisons=0)
    t = r.targets()
    assert t["verify_under_50ms"] is None and t["apdu_decisions_agree"] is None
    assert "no VERIFY APDUs" in r.unjudged()["verify_under_50ms"]
    assert r.unjudged()["better_than_bozorth3"] == "Bozorth3 not run"
    ran = _result(_clean(500), None, apdu_comparisons=4)
    assert ran.targets()["verify_under_50ms"] is True
    assert ran.targets()["apdu_decisions_agree"] is True


def test_cli_eval_png(tmp_path: object) -> None:
    pytest.importorskip("matplotlib")
    png = f"{tmp_path}/det.png"
    args = ["bio", "eval", "--fingers", "4", "--impressions", "3", "--impostors", "40"]
    res = CliRunner().invoke(cli, args + ["--apdu-sample", "4", "--no-bozorth", "--png", png])
    assert res.exit_code == 0, res.output
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert f"DET plot: {png}" in res.output


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_mpl(name: str, *a: object, **k: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    with pytest.raises(det.PlotUnavailable, match=r"cardemu\[bio\]"):
        det.plot_det([("x", [1, 2], [0, 1])], "/nonexistent/x.png")


def test_cli_demo() -> None:
    res = CliRunner().invoke(cli, ["bio", "demo", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["bits"][0]["reference"] == 0x96
    assert [s["sw"] for s in out["steps"]] == ["9000", "9000", "63C4", "63C4"]


def test_cli_eval_per_setting_with_intervals() -> None:
    args = ["bio", "eval", "--setting", "all", "--fingers", "4", "--impressions", "2"]
    args += ["--impostors", "20", "--apdu-sample", "4", "--no-bozorth"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    for name in ("easy", "medium", "hard"):
        assert f"host.bio.difficulty, setting {name}" in res.output
    assert "95% Wilson interval" in res.output and "MCC not run (opt-in: --mcc)" in res.output
    js = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert [r["data"]["setting"] for r in js] == ["easy", "medium", "hard"]
    lo, hi = js[2]["matchers"][0]["points"][0]["fnmr_ci95"]
    assert 0.0 <= lo <= js[2]["matchers"][0]["points"][0]["fnmr"] <= hi <= 1.0
    assert "verify_median_under_10ms" in js[2]["targets"]


def test_cli_eval_on_user_minutiae_files(tmp_path: object) -> None:
    import pathlib

    from host.bio import difficulty, formats

    d = pathlib.Path(str(tmp_path))
    ds = difficulty.make_dataset(3, 2, seed=5, d=difficulty.EASY)
    for f, imps in enumerate(ds.impressions):
        (d / f"f{f}_0.ist").write_bytes(formats.encode_iso19794_2(imps[0]))
        (d / f"f{f}_1.ansi").write_bytes(formats.encode_ansi378(imps[1]))
    args = ["bio", "eval", "--minutiae", str(d), "--impressions", "2", "--impostors", "6"]
    args += ["--apdu-sample", "2", "--no-bozorth", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    js = json.loads(res.output)
    assert js["data"]["fingers"] == 3 and js["data"]["genuine_comparisons"] == 3
    (d / "f9_0.ist").write_bytes(b"FMR\x00 20\x00garbage")
    (d / "f9_1.ist").write_bytes(b"")
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code != 0 and "f9_0.ist" in bad.output


def test_eval_prints_progress_lines_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import host.commands.bio as bio_cmd
    from host.cli import main

    monkeypatch.setattr(bio_cmd, "PROGRESS_EVERY_S", 0.0)
    with CliRunner().isolation() as (_out, err, _):
        code = main(["bio", "eval", "--fingers", "4", "--impressions", "2", "--no-bozorth"])
    lines = err.getvalue().decode().splitlines()
    assert code == 0
    assert lines and all(re.fullmatch(r"[\w /-]+: \d+/\d+", line) for line in lines), lines
    assert "\r" not in err.getvalue().decode()


def test_eval_checks_the_png_directory_before_evaluating(tmp_path: Path) -> None:
    from host.cli import main

    target = tmp_path / "missing" / "det.png"
    with CliRunner().isolation() as (out, err, _):
        code = main(["bio", "eval", "--png", str(target)])
    assert code == 2
    assert out.getvalue() == b""  # refused before any evaluation
    assert f"no directory '{target.parent}'" in err.getvalue().decode()
