"""`cardemu fuzz`: spec-driven, stateful fuzzing of a card's applets under invariants."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from host.commands.common import EXIT_FAILED, CommandError, Interrupted, json_option
from host.fuzz.engine import FuzzConfig, Fuzzer, bench, default_hang_ms, replay_script
from host.fuzz.oracles import ALL_ORACLES, INTROSPECTIVE, MIN_SECRET, ORACLES
from host.fuzz.report import AppletStats, CampaignReport, Progress, save_finding
from host.fuzz.session import RateLimitedReader, stop_on_sigint
from host.fuzz.targets import (
    CardTarget,
    Secret,
    TargetError,
    find_applets,
    image_target,
    preset_target,
    reader_target,
)
from host.hexutil import parse_hex
from host.presets import DEFAULT_PRESET, PRESETS


class FindingsExit(CommandError):
    """The campaign found violations (exit code 1, after the report)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        # The report (text or --json) already says what was found.
        super().__init__(message, reported=True)

    def show(self, file: object = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


def _target(
    reader_spec: str | None,
    image: str | None,
    preset: str | None,
    applets: tuple[str, ...],
    rate: float,
    max_ms: float | None,
) -> CardTarget:
    if sum(x is not None for x in (reader_spec, image, preset)) > 1:
        raise click.UsageError("give one of -r/--reader, --card, --preset")
    try:
        if reader_spec is not None:
            from host.readers.base import ReaderError
            from host.readers.registry import ReaderSelectionError, open_reader, resolve

            try:
                info = resolve(reader_spec)
            except ReaderSelectionError as e:
                raise click.UsageError(str(e)) from None
            except ReaderError as e:
                raise click.ClickException(str(e)) from None
            if info.kind == "preset":
                target = preset_target(info.target, max_ms=max_ms)
            elif info.kind == "image":
                target = image_target(info.target, max_ms=max_ms)
            else:
                if not applets:
                    raise click.UsageError("a card in a real reader needs --applet AID")
                aids = [_aid(a) for a in applets]
                reader = RateLimitedReader(open_reader(info), rate)
                try:
                    reader.connect()
                except ReaderError as e:
                    raise click.ClickException(str(e)) from None
                return reader_target(reader, aids, name=info.name, max_ms=max_ms)
        elif image is not None:
            target = image_target(image, max_ms=max_ms)
        else:
            target = preset_target(preset or DEFAULT_PRESET, max_ms=max_ms)
    except TargetError as e:
        raise click.ClickException(str(e)) from None
    try:
        return target.only(list(applets))
    except TargetError as e:  # an --applet that names no applet on the card
        raise click.UsageError(str(e)) from None


def _aid(selector: str) -> bytes:
    from host.fuzz.targets import builtin_profiles

    named = find_applets(builtin_profiles(), selector)
    if named:
        return named[0].aid
    try:
        return bytes.fromhex(selector.replace(" ", "").replace(":", ""))
    except ValueError:
        raise click.UsageError(
            f"--applet {selector!r}: not a known applet name nor an AID"
        ) from None


def _oracles(only: tuple[str, ...], without: tuple[str, ...]) -> frozenset[str]:
    for name in only + without:
        if name not in ORACLES:
            raise click.UsageError(f"unknown oracle {name!r} (oracles: {', '.join(ORACLES)})")
    chosen = frozenset(only) if only else ALL_ORACLES
    return chosen - frozenset(without)


@click.command("fuzz")
@click.option(
    "-r",
    "--reader",
    "reader_spec",
    metavar="READER",
    help="A reader (`cardemu readers`); a real card is fuzzed slowly, rate-limited.",
)
@click.option(
    "--card",
    "image",
    metavar="IMAGE",
    help="A card image (not changed: every episode starts from its content).",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    help=f"A built-in card [default: {DEFAULT_PRESET}].",
)
@click.option(
    "-a",
    "--applet",
    "applets",
    multiple=True,
    metavar="NAME|AID",
    help="Fuzz only this applet (repeatable; an AID prefix or a name).",
)
@click.option(
    "--budget", type=click.IntRange(1), help="Stop after N APDUs [default: 10000 unless --time]."
)
@click.option(
    "--time", "seconds", type=click.FloatRange(0, min_open=True), help="Stop after S seconds."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the campaign (and of the card's RNG).",
)
@click.option("--card-seed", type=int, help="Seed of the card's RNG [default: --seed].")
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(file_okay=False),
    help="Corpus: scripts, traces, hex files; inputs reaching new code are added.",
)
@click.option(
    "--findings",
    "findings_dir",
    type=click.Path(file_okay=False),
    default="fuzz-findings",
    show_default=True,
    help="Where finding scripts, traces and images go.",
)
@click.option(
    "--engine",
    type=click.Choice(["random", "stateful", "asn1"]),
    default="random",
    show_default=True,
    help="random: coverage-guided episodes; stateful: hypothesis state machine; asn1: "
    "mutated DER trees of valid messages (the ISD-R's ES10 requests over STORE DATA).",
)
@click.option(
    "--smdpp",
    "smdpp",
    is_flag=True,
    help="Fuzz the SM-DP+ (ES9+ over loopback HTTP, in a child process) instead of a card.",
)
@click.option(
    "--hang-ms",
    type=click.FloatRange(0, min_open=True),
    help="Interrupt a command (or an HTTP request) still running after this long and report "
    "a hang [default: 3 x --max-ms, 2000 at least; 5000 for --smdpp].",
)
@click.option(
    "--memory-mb",
    type=click.FloatRange(0, min_open=True),
    default=512.0,
    show_default=True,
    help="Interrupt a command growing the process by more than this (the SM-DP+: its child "
    "process, also capped at 4x this) and report it.",
)
@click.option("--no-coverage", is_flag=True, help="No coverage feedback (faster).")
@click.option(
    "--oracle",
    "only_oracles",
    multiple=True,
    metavar="NAME",
    help="Check only these oracles (repeatable).",
)
@click.option(
    "--no-oracle",
    "without_oracles",
    multiple=True,
    metavar="NAME",
    help="Do not check this oracle (repeatable).",
)
@click.option(
    "--tear-rate",
    type=click.FloatRange(0, 1),
    default=0.25,
    show_default=True,
    help="Share of writing commands sent with a tear [default: 0.05 with --engine asn1].",
)
@click.option(
    "--max-ms",
    type=click.FloatRange(0, min_open=True),
    help="Response-time bound in ms [default: 1000 in-process, 5000 real card].",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    default=20.0,
    show_default=True,
    help="APDUs per second at most, on a real card.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="HEX",
    help="Bytes that must never appear in a response (a real card's PIN or key; repeatable, "
    "4 bytes or more: a 4-digit PIN as ASCII).",
)
@click.option("--no-minimise", is_flag=True, help="Save findings as found, unminimised.")
@click.option(
    "--replay",
    "replay_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Replay a finding script under the oracles instead of fuzzing.",
)
@click.option(
    "--bench",
    "do_bench",
    is_flag=True,
    help="Measure APDUs/s per applet: raw, all oracles, all oracles + coverage.",
)
@click.option(
    "--list",
    "do_list",
    is_flag=True,
    help="List the applets, their states and the oracles, then stop.",
)
@json_option
def fuzz(
    reader_spec: str | None,
    image: str | None,
    preset: str | None,
    applets: tuple[str, ...],
    budget: int | None,
    seconds: float | None,
    seed: int,
    card_seed: int | None,
    corpus_dir: str | None,
    findings_dir: str,
    engine: str,
    smdpp: bool,
    hang_ms: float | None,
    memory_mb: float,
    no_coverage: bool,
    only_oracles: tuple[str, ...],
    without_oracles: tuple[str, ...],
    tear_rate: float,
    max_ms: float | None,
    rate: float,
    secrets: tuple[str, ...],
    no_minimise: bool,
    replay_path: str | None,
    do_bench: bool,
    do_list: bool,
    as_json: bool,
) -> None:
    """Fuzz a card's applets and check invariants after every APDU.

    Commands come from apdu_specs (valid ones with boundary values, and ones with
    one rule broken), from the corpus (mutated), from a sweep of every INS in
    every state, and from random shapes; episodes enter each applet's states
    (PIN verified, ...) and tear commands at random persistent writes. After
    every step the oracles are checked: no exception escapes, well-formed
    responses, an error leaves the NVM unchanged, retry counters go up only on
    a verification, no secret in a response, a response-time bound, before- or
    after-state after a tear, the same seed gives the same run, no command grows
    the process's memory beyond --memory-mb.

    Each finding is minimised and saved as a script for `cardemu run` (with a
    trace); `--replay` checks one again. Exit code 1 when there are findings;
    Ctrl-C stops the campaign with the report so far and exits 130.

    `--engine asn1` mutates valid DER messages at the TLV-tree level (empty SET
    OFs, zero-length, over-long and indefinite lengths, wrong tags, truncation at
    every depth, children repeated thousands of times) and sends them to the
    applets that take them: on the `euicc` preset, the ISD-R's ES10 requests in
    STORE DATA blocks. A command still running after --hang-ms is interrupted in
    the fuzzer's own process and reported as a hang. `--smdpp` does the same to
    the SM-DP+'s ES9+ endpoints: the real server in a child process on loopback
    HTTP, a timeout per request, restarted when it hangs or dies.

    \b
    Examples:
      cardemu fuzz --budget 50000
      cardemu fuzz --preset demo --applet purse --time 60 --seed 7
      cardemu fuzz --card my.card --corpus corpus/ --findings out/
      cardemu fuzz --engine stateful --applet iso7816 --budget 5000
      cardemu fuzz --replay fuzz-findings/001-no-exception-purse.apdu
      cardemu fuzz --bench --budget 5000
      cardemu fuzz --preset euicc --engine asn1 --time 600 --seed 1
      cardemu fuzz --smdpp --time 600 --seed 1
      cardemu fuzz --smdpp --replay fuzz-findings/001-response-time-smdpp.json
      cardemu fuzz -r 2 --applet A000000151000000 --rate 10 --time 600 \\
          --secret 404142434445464748494A4B4C4D4E4F
    """
    oracles = _oracles(only_oracles, without_oracles)
    if smdpp:
        if reader_spec is not None or image is not None or preset is not None or applets:
            raise click.UsageError("--smdpp fuzzes the SM-DP+: no card options with it")
        if budget is None and seconds is None:
            budget = 2_000
        _smdpp(
            seed, budget, seconds, hang_ms, memory_mb, findings_dir, replay_path, no_minimise,
            as_json,
        )  # fmt: skip
        return
    target = _target(reader_spec, image, preset, applets, rate, max_ms)
    if target.in_process:
        # A replayed hang is interrupted as the campaign would interrupt it.
        hang = hang_ms if hang_ms is not None else default_hang_ms(target)
        target = replace(target, hang_ms=hang, memory_mb=memory_mb)
    if secrets:
        declared = []
        for i, h in enumerate(secrets, 1):
            try:
                value = parse_hex(h)
            except ValueError as e:
                raise click.UsageError(f"--secret: {e}") from None
            if len(value) < MIN_SECRET:
                raise click.BadParameter(
                    f"{h}: {len(value)} byte(s); a secret has {MIN_SECRET} bytes or more "
                    "(shorter ones appear in responses by chance)",
                    param_hint="--secret",
                )
            declared.append(Secret(f"secret {i}", value, declared=True))
        target = replace(target, secrets=tuple(declared))
    try:
        if do_list:
            _list(target, as_json)
            return
        if replay_path is not None:
            _replay(target, replay_path, card_seed, oracles, max_ms, as_json)
            return
        if budget is None and seconds is None:
            budget = 10_000
        source = click.get_current_context().get_parameter_source("tear_rate")
        if engine == "asn1" and source == click.core.ParameterSource.DEFAULT:
            tear_rate = 0.05  # a tear replays the whole episode: decoders want inputs
        if do_bench:
            _bench(target, budget or 5000, seed, as_json)
            return
        config = FuzzConfig(
            seed=seed,
            card_seed=card_seed,
            budget=budget,
            seconds=seconds,
            oracles=oracles,
            coverage=not no_coverage,
            tear_rate=tear_rate,
            max_ms=max_ms,
            corpus_dir=Path(corpus_dir) if corpus_dir else None,
            findings_dir=Path(findings_dir),
            minimise=not no_minimise,
            asn1_share=0.9 if engine == "asn1" else 0.0,
            hang_ms=hang_ms,
            memory_mb=memory_mb,
        )
        with stop_on_sigint():
            # One line on stderr once Ctrl-C stops the campaign with a report (not before).
            click.echo(
                f"cardemu fuzz: card {target.name}: campaign running (Ctrl-C stops it and reports)",
                err=True,
            )
            if engine == "stateful":
                report = _stateful(target, config)
            else:
                try:
                    fuzzer = Fuzzer(target, config, Progress())
                except ValueError as e:
                    raise click.UsageError(str(e)) from None
                report = fuzzer.run()
    except KeyboardInterrupt:
        # The engines that cannot stop with a report (stateful): say where findings are.
        raise Interrupted(f"findings so far are in {findings_dir}/") from None
    finally:
        if target.reader is not None:
            target.reader.disconnect()
    if as_json:
        click.echo(json.dumps({**report.to_json(), "findings_dir": str(findings_dir)}, indent=2))
    else:
        click.echo(report.text())
    if report.interrupted:
        if not as_json:
            click.echo(f"  interrupted: findings so far are in {findings_dir}/")
        raise Interrupted(f"{len(report.findings)} finding(s) in {findings_dir}/", reported=True)
    if report.findings:
        raise FindingsExit(f"{len(report.findings)} finding(s), saved in {findings_dir}")


def _stateful(target: CardTarget, config: FuzzConfig) -> CampaignReport:
    from host.fuzz.stateful import run_stateful

    steps = 50
    examples = max(1, (config.budget or 10_000) // steps)
    t0 = time.perf_counter()
    finding, rec = run_stateful(
        target,
        seed=config.seed,
        card_seed=config.card_seed,
        examples=examples,
        steps=steps,
        oracles=config.oracles,
        max_ms=config.max_ms,
    )
    # The machine moves between all the applets: one row for the card.
    row = AppletStats("(all applets)", b"", rec.apdus, time.perf_counter() - t0, rec.sws)
    report = CampaignReport(
        target.name,
        config.seed,
        "stateful (hypothesis)",
        tuple(sorted(config.oracles)),
        False,
        [row],
    )
    report.seconds = row.seconds
    report.apdus = rec.apdus
    report.episodes = rec.runs
    report.tears = rec.tears
    if finding is not None:
        if config.findings_dir is not None:
            from host.fuzz.session import Episode

            atr = Episode(target, config.the_card_seed).atr if target.in_process else b""
            save_finding(finding, config.findings_dir, target, config.the_card_seed, atr)
        report.findings = [finding]
    return report


def _list(target: CardTarget, as_json: bool) -> None:
    from host.fuzz.generators import specs_for

    rows: list[dict[str, Any]] = []
    for a in target.applets:
        rows.append(
            {
                "name": a.name,
                "aid": a.aid.hex().upper(),
                "states": list(a.state_names),
                "specs": len(specs_for(a)),
                "corpus": len(a.corpus),
                "secrets_hook": a.secrets is not None,
            }
        )
    oracles = {
        k: v + ("" if target.in_process or k not in INTROSPECTIVE else " (in-process only)")
        for k, v in ORACLES.items()
    }
    if as_json:
        click.echo(
            json.dumps({"target": target.name, "applets": rows, "oracles": oracles}, indent=2)
        )
        return
    click.echo(f"card {target.name}")
    for r in rows:
        click.echo(
            f"  {r['name']:<20} {r['aid']:<34} states: {', '.join(r['states'])}; "
            f"{r['specs']} specs, {r['corpus']} corpus commands"
        )
    click.echo("oracles:")
    for k, v in oracles.items():
        click.echo(f"  {k:<22} {v}")


def _replay(
    target: CardTarget,
    path: str,
    card_seed: int | None,
    oracles: frozenset[str],
    max_ms: float | None,
    as_json: bool,
) -> None:
    text = Path(path).read_text(encoding="utf-8")
    try:
        out = replay_script(
            target, text, seed=card_seed, source=path, oracles=oracles, max_ms=max_ms
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "script": path,
                    "seed": out.seed,
                    "steps": len(out.steps),
                    "violations": [
                        {
                            "oracle": v.oracle,
                            "message": v.message,
                            "step": v.step,
                            "detail": v.detail,
                        }
                        for v in out.violations
                    ],
                },
                indent=2,
            )
        )
    else:
        click.echo(
            f"{path}: {len(out.steps)} steps replayed on {target.name} (card seed {out.seed})"
        )
        for v in out.violations:
            click.echo(f"  step {v.step + 1}: {v}")
        if not out.violations:
            click.echo("  every oracle held")
    if out.violations:
        raise FindingsExit(f"{len(out.violations)} violation(s)")


def _bench(target: CardTarget, apdus: int, seed: int, as_json: bool) -> None:
    if not target.in_process:
        raise click.UsageError("--bench measures in-process cards only")
    rows = bench(target, apdus=apdus, seed=seed)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "applet": r.applet,
                        "apdus": r.apdus,
                        "raw": round(r.raw),
                        "oracles": round(r.oracles),
                        "oracles_coverage": round(r.oracles_coverage),
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    click.echo(
        f"cardemu fuzz --bench: card {target.name}, {apdus:,} APDUs per applet and set-up, "
        f"seed {seed}"
    )
    click.echo(f"  {'applet':<22} {'raw':>10} {'oracles':>10} {'+coverage':>10}   (APDUs/s)")
    for r in rows:
        click.echo(
            f"  {r.applet:<22} {r.raw:>10,.0f} {r.oracles:>10,.0f} {r.oracles_coverage:>10,.0f}"
        )
    click.echo(
        f"  raw: no oracles, no coverage; oracles: all {len(ORACLES)}; "
        f"+coverage: all {len(ORACLES)} and line/arc coverage"
    )


def _smdpp(
    seed: int,
    budget: int | None,
    seconds: float | None,
    hang_ms: float | None,
    memory_mb: float,
    findings_dir: str,
    replay_path: str | None,
    no_minimise: bool,
    as_json: bool,
) -> None:
    from host.fuzz.server import ServerConfig, SmdppFuzzer, replay_server_finding

    config = ServerConfig(
        seed=seed,
        budget=budget,
        seconds=seconds,
        hang_ms=hang_ms if hang_ms is not None else 5000.0,
        memory_mb=memory_mb,
        findings_dir=Path(findings_dir),
        minimise=not no_minimise,
    )
    if replay_path is not None:
        try:
            violations = replay_server_finding(Path(replay_path), config)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        except RuntimeError as e:
            raise click.ClickException(str(e)) from None
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "file": replay_path,
                        "violations": [
                            {"oracle": v.oracle, "message": v.message} for v in violations
                        ],
                    },
                    indent=2,
                )
            )
        else:
            click.echo(f"{replay_path}: replayed on a fresh SM-DP+")
            for v in violations:
                click.echo(f"  {v}")
            if not violations:
                click.echo("  every oracle held")
        if violations:
            raise FindingsExit(f"{len(violations)} violation(s)")
        return
    progress = Progress()

    def show(requests: int, secs: float, found: int) -> None:
        progress.update(requests, secs, 0, 0, found, unit="requests")

    try:
        report = SmdppFuzzer(config, on_progress=show).run()
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        progress.done()
        raise Interrupted(f"findings so far are in {findings_dir}/") from None
    progress.done()
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.text())
    if report.findings:
        raise FindingsExit(f"{len(report.findings)} finding(s), saved in {findings_dir}")
