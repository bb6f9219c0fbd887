"""`cardemu bio`: fingerprint match-on-card — the accuracy harness and a demonstration."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import click

from applets.biometric.applet import DEFAULT_ADMIN_KEY, DEFAULT_THRESHOLD
from host.bio import det
from host.bio.eval import EvalConfig, plot, report, run
from host.bio.synthetic import DEFAULT_MODEL, Model, make_finger, make_impression
from host.commands.common import EXIT_FAILED, json_option, stop_if_interrupted


@click.group(short_help="Fingerprint match-on-card: accuracy, demo.")
def bio() -> None:
    """Fingerprint match-on-card: accuracy harness and demo (synthetic minutiae).

    The card side is the `bio` preset (ISO 7816-11 VERIFY with a BIT group);
    `cardemu send --preset bio` talks to it directly.

    \b
    Examples:
      cardemu bio demo
      cardemu bio eval --fingers 50 --impressions 4 --png det.png
      cardemu bio eval --json
    """


def _model(settings: tuple[str, ...]) -> Model:
    """DEFAULT_MODEL with NAME=VALUE overrides (`--set rotation_sd_deg=15`)."""
    changes: dict[str, Any] = {}  # names and types checked against DEFAULT_MODEL below
    fields = Model.__dataclass_fields__
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise click.BadParameter(
                f"{item!r}: expected NAME=VALUE with NAME one of {', '.join(fields)}",
                param_hint="--set",
            )
        default = getattr(DEFAULT_MODEL, name)
        try:
            if isinstance(default, tuple):
                parts = tuple(float(v) for v in value.split(","))
                if len(parts) != len(default):
                    raise ValueError(f"{len(default)} comma-separated numbers")
                changes[name] = parts
            elif isinstance(default, int):
                changes[name] = int(value)
            else:
                changes[name] = float(value)
        except ValueError as e:
            raise click.BadParameter(f"{item!r}: {e}", param_hint="--set") from None
    return dataclasses.replace(DEFAULT_MODEL, **changes)


@bio.command("eval", short_help="Measure the matcher: FNMR, FMR, EER, DET.")
@click.option("--fingers", type=click.IntRange(2, 10000), default=100, show_default=True)
@click.option("--impressions", type=click.IntRange(2, 100), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--impostors",
    type=click.IntRange(1),
    default=20000,
    show_default=True,
    help="Impostor comparisons (a seeded sample of cross-finger pairs).",
)
@click.option(
    "--apdu-sample",
    type=click.IntRange(0),
    default=200,
    show_default=True,
    help="Comparisons also run as VERIFY APDUs on in-process cards.",
)
@click.option(
    "--threshold",
    type=click.IntRange(0, 10000),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Decision threshold of the cards in the APDU sample.",
)
@click.option("--png", metavar="FILE", help="Write the DET plot (needs matplotlib: cardemu[bio]).")
@click.option("--no-bozorth", is_flag=True, help="Do not run Bozorth3.")
@click.option(
    "--mcc", "with_mcc", is_flag=True, help="Also run afis's MCC matcher (slow: 1-2 s each)."
)
@click.option(
    "--minutiae",
    "data_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Evaluate on your own minutiae files instead: DIR of <finger>_<impression>.<ext> "
    "(ISO/IEC 19794-2 record, .ansi/.378 ANSI/INCITS 378, .xyt NIST).",
)
@click.option(
    "--setting",
    type=click.Choice(["easy", "medium", "hard", "all"]),
    help="Use the difficulty generator (host.bio.difficulty) at this setting, or each "
    "in turn; --png FILE then writes one DET plot per setting (FILE-<setting>.png).",
)
@click.option(
    "--set", "settings", multiple=True, metavar="NAME=VALUE", help="Change a generator parameter."
)
@json_option
def eval_cmd(
    fingers: int,
    impressions: int,
    seed: int,
    impostors: int,
    apdu_sample: int,
    threshold: int,
    png: str | None,
    no_bozorth: bool,
    with_mcc: bool,
    data_dir: str | None,
    setting: str | None,
    settings: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measure the on-card matcher: FNMR at FMR 1%/0.1%/0.01%, EER, DET, VERIFY time.

    Genuine and impostor comparisons over synthetic fingers; the same data is
    scored by NIST Bozorth3 (afis package, native library via AFIS_LFS_LIB),
    or Bozorth3 is skipped with the reason. Progress goes to stderr on a TTY.

    \b
    Examples:
      cardemu bio eval
      cardemu bio eval --fingers 50 --impressions 4 --png det.png
      cardemu bio eval --set rotation_sd_deg=15 --set miss_rate=0.2,0.35 --json
      cardemu bio eval --setting all --fingers 100 --impressions 4 --png det.png
    """
    if data_dir is not None and (setting is not None or settings):
        raise click.BadParameter("--minutiae replaces the generator: no --setting or --set")
    if setting is not None and settings:
        raise click.BadParameter("--set changes host.bio.synthetic, not --setting")
    if png is not None:
        _check_png_dir(png)
    stop_if_interrupted()  # the matcher and generator imports are done: minutes of work follow
    names: list[str | None] = (
        [None]
        if setting is None
        else (["easy", "medium", "hard"] if setting == "all" else [setting])
    )
    outputs = []
    failed = False
    for name in names:
        out, bad = _eval_one(
            fingers, impressions, seed, impostors, apdu_sample, threshold,
            _png_name(png, name, len(names) > 1), no_bozorth, with_mcc, data_dir, name, settings,
            as_json,
        )  # fmt: skip
        outputs.append(out)
        failed = failed or bad
    if as_json:
        click.echo(json.dumps(outputs[0] if len(outputs) == 1 else outputs, indent=2))
    if failed:
        raise SystemExit(EXIT_FAILED)


#: Seconds between progress lines when stderr is not a terminal.
PROGRESS_EVERY_S = 5.0


def _check_png_dir(png: str) -> None:
    """Refuse a --png whose directory does not exist before minutes of evaluation, not after."""
    parent = os.path.dirname(png) or "."
    if not os.path.isdir(parent):
        raise click.BadParameter(f"no directory {parent!r} to write {png} in", param_hint="--png")
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"directory {parent!r} is not writable", param_hint="--png")


def _png_name(png: str | None, setting: str | None, several: bool) -> str | None:
    if png is None or not several or setting is None:
        return png
    stem, dot, ext = png.rpartition(".")
    return f"{stem}-{setting}.{ext}" if dot else f"{png}-{setting}"


def _eval_one(
    fingers: int,
    impressions: int,
    seed: int,
    impostors: int,
    apdu_sample: int,
    threshold: int,
    png: str | None,
    no_bozorth: bool,
    with_mcc: bool,
    data_dir: str | None,
    setting: str | None,
    settings: tuple[str, ...],
    as_json: bool,
) -> tuple[dict[str, object], bool]:
    config = EvalConfig(
        fingers=fingers,
        impressions=impressions,
        seed=seed,
        impostors=impostors,
        apdu_sample=apdu_sample,
        threshold=threshold,
        model=_model(settings),
        bozorth=not no_bozorth,
        setting=setting,
        mcc=with_mcc,
        data_dir=data_dir,
    )
    tty = sys.stderr.isatty()
    last_time = [0.0]  # when a line was last printed (not a TTY)
    last_label = [""]  # the stage whose end was printed

    def progress(label: str, done: int, total: int) -> None:
        if tty:
            click.echo(f"\r{label}: {done}/{total}", err=True, nl=False)
            return
        # A log or a pipe: one plain line every few seconds, and at each stage's end,
        # so that a 1-2 minute run does not look hung.
        now = time.monotonic()
        if now - last_time[0] >= PROGRESS_EVERY_S or (done == total and last_label[0] != label):
            last_time[0] = now
            last_label[0] = label if done == total else ""
            click.echo(f"{label}: {done}/{total}", err=True)

    try:
        result = run(config, progress)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if tty:
        click.echo("\r" + " " * 60 + "\r", err=True, nl=False)
    png_note = None
    if png:
        try:
            plot(result, png)
        except det.PlotUnavailable as e:
            png_note = str(e)
            png = None
            click.echo(f"Warning: {e}", err=True)
    out = result.to_json()
    out["det_png"] = png
    out["det_png_note"] = png_note
    if not as_json:
        for line in report(result, png, png_note):
            click.echo(line)
    return out, bool(result.apdu.disagreements)


@bio.command("calibrate", short_help="Recompute the card's decision thresholds.")
# (the defaults are host.bio.calibrate's DEFAULT_FINGERS, _IMPRESSIONS and _IMPOSTORS)
@click.option("--fingers", type=click.IntRange(2, 10000), default=200, show_default=True)
@click.option("--impressions", type=click.IntRange(2, 100), default=2, show_default=True)
@click.option("--impostors", type=click.IntRange(1), default=20000, show_default=True)
@click.option(
    "--seed",
    "seeds",
    type=int,
    multiple=True,
    help="Calibration seeds (default: host.bio.calibrate.CALIBRATION_SEEDS).",
)
@json_option
def calibrate_cmd(
    fingers: int, impressions: int, impostors: int, seeds: tuple[int, ...], as_json: bool
) -> None:
    """Thresholds for FMR 1% and 0.1%: the highest over the difficulty settings, each at
    its FMR's confidence bound on its seeds pooled, so that the FMR is at or under the
    target on every setting with 95% confidence (host.bio.calibrate says why). Each
    seed's own 95% bound is printed too, for comparison.

    These are the applet's THRESHOLD_FMR_1PCT and THRESHOLD_FMR_01PCT; the
    evaluation seeds (0..3) are not calibration seeds.
    """
    from host.bio import calibrate

    tty = sys.stderr.isatty()
    cal = calibrate.calibrate(
        seeds or calibrate.CALIBRATION_SEEDS,
        fingers=fingers,
        impressions=impressions,
        impostors=impostors,
        progress=(lambda line: click.echo(line, err=True)) if tty else None,
    )
    if as_json:
        out = {
            "thresholds": {str(t): v for t, v in cal.thresholds.items()},
            "per_run": [
                {"setting": s, "seed": sd, **{str(t): v for t, v in r.items()}}
                for (s, sd), r in cal.per_run.items()
            ],
            "per_setting": {
                s: {str(t): v for t, v in r.items()} for s, r in cal.per_setting.items()
            },
            "impostors_per_run": cal.impostors_per_run,
        }
        click.echo(json.dumps(out, indent=2))
        return
    for (setting, seed), r in cal.per_run.items():
        click.echo(f"  {setting:<7} seed {seed}: " + ", ".join(
            f"FMR {100 * t:g}% at {v}" for t, v in r.items()
        ))  # fmt: skip
    for setting, r in cal.per_setting.items():
        click.echo(f"  {setting:<7} pooled: " + ", ".join(
            f"FMR {100 * t:g}% at {v}" for t, v in r.items()
        ))  # fmt: skip
    click.echo(
        "thresholds: " + ", ".join(f"FMR {100 * t:g}% -> {v}" for t, v in cal.thresholds.items())
    )


@bio.command("demo", short_help="Enrol a finger, then match it and another.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def demo(seed: int, as_json: bool) -> None:
    """Enrol a synthetic finger on a fresh `bio` card, then present it and another one.

    \b
    Examples:
      cardemu bio demo
    """
    from host.bio.session import BioSession
    from host.presets import new_card
    from host.readers.inprocess import InProcessReader
    from host.trace import log_traffic

    rt = new_card("bio", rng_seed=seed)
    s = BioSession(log_traffic(InProcessReader(rt)))
    s.select()
    owner, other = make_finger(seed, 0), make_finger(seed, 1)
    s.authenticate_admin(DEFAULT_ADMIN_KEY)
    s.enrol(0x96, make_impression(owner, seed, 0), subtype=0x09)
    bits = s.read_bits()
    steps = [("enrolled finger 0 (right index) under reference 96", "9000")]
    for label, finger, k in (
        ("same finger, new impression", owner, 1),
        ("another finger", other, 0),
    ):
        r = s.verify(0x96, make_impression(finger, seed, k))
        steps.append((f"VERIFY 96 with {label}", f"{r.sw:04X}"))
    status = s.status(0x96)
    steps.append(("empty VERIFY 96 (status)", f"{status.sw:04X}"))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bits": [dataclasses.asdict(b) for b in bits],
                    "steps": [{"step": a, "sw": b} for a, b in steps],
                },
                indent=2,
            )
        )
        return
    for b in bits:
        click.echo(
            f"BIT: reference {b.reference:02X}, subtype {b.subtype:02X}, format "
            f"{b.format_owner:04X}/{b.format_type:04X}, minutiae {b.min_minutiae}..{b.max_minutiae}"
        )
    for step, sw in steps:
        click.echo(f"{sw}  {step}")
