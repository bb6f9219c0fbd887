"""Basic commands: send, card new/info, bench."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from card.gp.lifecycle import card_state_name
from card.nvm import NvmError
from card.runtime import CardRuntime
from card.sw import describe, is_success
from host.commands.common import (
    InvalidInput,
    UnexpectedStatus,
    json_option,
    stop_if_interrupted,
)
from host.commands.session import (
    annotated_record,
    command_session,
    parse_apdu_args,
    reader_options,
    response_line,
    session_options,
)
from host.hexutil import to_hex
from host.presets import DEFAULT_PRESET, PRESETS, new_card
from host.readers.base import ReaderError
from host.readers.registry import image_error
from host.redact import command_hex
from host.trace import Annotator
from host.usim import card_profiles

seed_option = click.option("--seed", type=int, help="Seed the card's RNG (reproducible runs).")


@click.command()
@reader_options()
@session_options
@json_option
@click.option("-q", "--quiet", is_flag=True, help="No trace on stderr.")
@click.argument("apdus", nargs=-1, required=True)
def send(as_json: bool, quiet: bool, apdus: tuple[str, ...], **kw: Any) -> None:
    """Send APDUs to a card and print the responses.

    Each argument is one command APDU (4 bytes at least): quote spaced hex.
    Stops at the first status word other than 9000, 61xx or 9Fxx (exit code 3).
    The card is a fresh demo card unless -r, --card or --preset says otherwise.

    \b
    Examples:
      cardemu send 00A4040009F043415244454D5501 "0020000104 31323334"
      cardemu send --card my.card 00A4040C09F043415244454D5501 "80 50 00 00 04"
      cardemu send -r 2 -g 00A4040000
      cardemu send --json --trace-file s.jsonl 00A4000C023F00
    """
    cmds = parse_apdu_args(apdus)
    records: list[dict[str, Any]] = []
    failed: str | None = None
    annotator = Annotator()
    with command_session(kw, quiet=quiet, as_json=as_json) as session:
        try:
            for cmd in cmds:
                t0 = time.perf_counter()
                resp = session.reader.transmit(cmd)
                elapsed = time.perf_counter() - t0
                rec = annotated_record(annotator, cmd, resp, elapsed)
                records.append(rec)
                if not as_json:
                    click.echo(response_line(rec))
                sw = int.from_bytes(resp[-2:], "big")
                if len(resp) < 2 or not is_success(sw):
                    failed = f"card answered {sw:04X} ({describe(sw)}) to {command_hex(cmd)}"
                    break
        except ReaderError as e:
            raise click.ClickException(str(e)) from None
    if as_json:
        out = {"reader": session.info.name, "atr": to_hex(session.atr), "exchanges": records}
        click.echo(json.dumps(out, indent=2))
    if failed:
        raise UnexpectedStatus(failed)


@click.group()
def card() -> None:
    """Create and inspect card images.

    A card image is one SQLite file holding the whole card; the other commands
    use it with --card IMAGE (or -r cardemu:IMAGE) and keep their changes in it.
    One process at a time: a second opener is refused, naming the holder's PID.

    \b
    Examples:
      cardemu card new --preset gp my.card
      cardemu card info my.card
      cardemu send --card my.card 00A4040000
    """


@card.command("new")
@click.option(
    "--preset", type=click.Choice(sorted(PRESETS)), default=DEFAULT_PRESET, show_default=True
)
@seed_option
@click.option(
    "--pki",
    "pki_dir",
    type=click.Path(exists=True, file_okay=False),
    help="euicc: trust this PKI's CI and carry its eUICC certificate (`cardemu pki create`).",
)
@click.option("--eid", help="euicc: which of the --pki's eUICCs [default: its first].")
@click.option(
    "--trust-ci",
    "trust_ci",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="euicc: also trust this CI certificate (DER or PEM; repeatable).",
)
@click.option("--default-dp", metavar="ADDRESS", help="euicc: the default SM-DP+ address.")
@click.option("--root-ds", metavar="ADDRESS", help="euicc: the root SM-DS address.")
@click.argument("path", type=click.Path(dir_okay=False))
def card_new(
    preset: str,
    seed: int | None,
    pki_dir: str | None,
    eid: str | None,
    trust_ci: tuple[str, ...],
    default_dp: str | None,
    root_ds: str | None,
    path: str,
) -> None:
    """Create a card image from a built-in preset.

    Never over an existing file. The card is built under a temporary name
    beside PATH and linked into place once complete: a run killed at any
    moment leaves no PATH or the whole card.

    For the euicc preset, --pki makes an eUICC of another PKI (its CI
    trusted, its eUICC certificate and key in the ECASD); --trust-ci adds
    CIs; --default-dp and --root-ds set the ES10a addresses.

    \b
    Examples:
      cardemu card new --preset demo my.card
      cardemu card new --preset euicc --seed 1 esim.card
      cardemu pki create ./pki
      cardemu card new --preset euicc --pki ./pki --root-ds localhost:8444 other.card
    """
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise InvalidInput(f"cannot create {path}: directory {parent} does not exist")
    build = _euicc_build(preset, pki_dir, eid, trust_ci, default_dp, root_ds)
    try:
        rt = new_card(preset, path, rng_seed=seed, build=build)
    except FileExistsError as e:
        raise click.ClickException(str(e)) from None
    except NvmError as e:
        raise click.ClickException(f"cannot create {path}: {image_error(e)}") from None
    except OSError as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "cannot write there"
        raise click.ClickException(f"cannot create {path}: {reason}") from None
    n = len(rt.applets())
    rt.close()
    click.echo(f"{path}: {preset} card with {n} applets")


def _euicc_build(
    preset: str,
    pki_dir: str | None,
    eid: str | None,
    trust_ci: tuple[str, ...],
    default_dp: str | None,
    root_ds: str | None,
) -> Callable[[CardRuntime], None] | None:
    """The eUICC options of `card new` as a build function (None: the preset's own)."""
    if not (pki_dir or eid or trust_ci or default_dp or root_ds):
        return None
    if preset != "euicc":
        raise InvalidInput(
            "--pki, --eid, --trust-ci, --default-dp and --root-ds are for --preset euicc"
        )
    from cryptography.hazmat.primitives import serialization

    from host.pki import PkiError, default_pki, load_pki, parse_certificate
    from host.presets import install_euicc

    try:
        the_pki = load_pki(pki_dir) if pki_dir else default_pki()
    except PkiError as e:
        raise InvalidInput(str(e)) from None
    if eid is not None and eid not in the_pki.euiccs:
        raise InvalidInput(f"the PKI has no eUICC {eid} (it has {', '.join(the_pki.euiccs)})")
    extra = []
    for name in trust_ci:
        data = Path(name).read_bytes()
        try:
            cert = parse_certificate(data)
        except ValueError as e:
            raise InvalidInput(f"{name}: not a certificate ({e})") from None
        extra.append(cert.public_bytes(serialization.Encoding.DER))

    def build(rt: CardRuntime) -> None:
        install_euicc(
            rt,
            pki=the_pki,
            eid=eid,
            default_dp_address=default_dp,
            extra_ci_certificates=tuple(extra),
            root_ds_address=root_ds,
        )

    return build


def _file_tree(rt: CardRuntime, aid: bytes) -> list[dict[str, Any]]:
    """The files of an applet that keeps an ISO 7816-4 file system (`.fs`), depth first.

    An applet without one, or a tree that cannot be read, lists nothing: `card info`
    shows what it can rather than fail.
    """
    try:
        fs = getattr(rt.applet(aid), "fs", None)
        if fs is None or not hasattr(fs, "children"):
            return []
        from card.fs import Structure
        from card.fs.filesystem import MF_HANDLE

        out: list[dict[str, Any]] = []

        def walk(handle: str, depth: int) -> None:
            info = fs.info(handle)
            if info is None:
                return
            try:
                kind = Structure(info.structure).name.lower().replace("_", " ")
            except ValueError:
                kind = f"structure {info.structure:02X}"
            entry: dict[str, Any] = {
                "fid": f"{info.fid:04X}",
                "depth": depth,
                "type": "DF" if info.is_df else "EF",
                "structure": kind,
                "sfi": f"{info.sfi:02X}" if info.sfi else None,
                "df_name": to_hex(info.name) if info.name else None,
                "size": info.size,
                "records": info.records if info.is_record else None,
                "record_length": info.record_length if info.is_record else None,
            }
            out.append(entry)
            for child in fs.children(handle):
                walk(child, depth + 1)

        walk(MF_HANDLE, 0)
        return out
    except Exception as e:  # noqa: BLE001 - an optional listing must not break `card info`
        logging.getLogger("cardemu.cli").debug("no file list for %s: %s", to_hex(aid), e)
        return []


def _file_line(f: dict[str, Any]) -> str:
    indent = "  " * f["depth"]
    if f["type"] == "DF":
        what = "MF" if f["depth"] == 0 and f["fid"] == "3F00" else "DF"
        what += f" {f['df_name']}" if f["df_name"] else ""
    elif f["records"] is not None:
        what = f"EF {f['structure']}, {f['records']} records of {f['record_length']} bytes"
    else:
        what = f"EF {f['structure']}, {f['size']} bytes"
    sfi = f", SFI {f['sfi']}" if f["sfi"] else ""
    return f"file      {indent}{f['fid']}  {what}{sfi}"


def _gp_card_life_cycle(rt: CardRuntime) -> tuple[bytes, int] | None:
    """(ISD AID, card life cycle state) of a card with a GlobalPlatform ISD, else None.

    The ISD inherits the card life cycle (GPC v2.3.1 §5.1), so its own state is that.
    """
    from card.gp.isd import IssuerSecurityDomain

    for aid, _, _, _ in rt.applets():
        try:
            applet = rt.applet(bytes(aid))
        except KeyError:
            continue
        # A supplementary or profile SD (applets.usim.sd) is no card manager.
        if isinstance(applet, IssuerSecurityDomain) and applet.card_manager:
            return bytes(aid), applet.card_state
    return None


def _channels(mask: int) -> list[int]:
    return [ch for ch in range(mask.bit_length()) if mask >> ch & 1]


@card.command("info", short_help="Show a card image: applets, files, memory.")
@json_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def card_info(as_json: bool, path: str) -> None:
    """Show a card image: ATR, applets and their life cycle states, memory, files.

    The files are those of applets keeping an ISO 7816-4 file system (the demo
    card's file-system applet). On a card with a GlobalPlatform ISD, the card
    life cycle is shown too, and is the ISD's state (GPC v2.3.1 §5.1). JSON keys
    of an applet: aid, class, lifecycle (hex), default (default-selected on the
    basic channel), default_channels, files. A profile whose stored records fail
    their integrity check is listed only as {iccid, enabled, damaged: true} (iccid
    null when its metadata record names none any more).

    \b
    Examples:
      cardemu card info my.card
      cardemu card info --json my.card
    """
    try:
        rt = CardRuntime(path, create=False, readonly=True)
    except NvmError as e:
        raise click.ClickException(image_error(e)) from None
    try:
        gp = _gp_card_life_cycle(rt)
        info: dict[str, Any] = {
            "atr": to_hex(rt.atr),
            "card_life_cycle": None
            if gp is None
            else {"value": f"{gp[1]:02X}", "name": card_state_name(gp[1])},
            "applets": [
                {
                    "aid": to_hex(aid),
                    "class": ref,
                    "lifecycle": f"{gp[1] if gp and gp[0] == bytes(aid) else lc:02X}",
                    "default": bool(default & 1),
                    "default_channels": _channels(default),
                    "files": _file_tree(rt, bytes(aid)),
                }
                for aid, ref, lc, default in rt.applets()
            ],
            "profiles": card_profiles(rt),
            "persistent_used": rt.nvm.used,
            "persistent_capacity": rt.nvm.capacity,
        }
    finally:
        rt.close()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"ATR       {info['atr']}")
    click.echo(f"memory    {info['persistent_used']} of {info['persistent_capacity']} bytes used")
    if gp is not None:
        lcs = info["card_life_cycle"]
        click.echo(f"card      {lcs['name']} ({lcs['value']}), GlobalPlatform ISD {to_hex(gp[0])}")
    for a in info["applets"]:
        mark = " (default)" if a["default"] else ""
        click.echo(f"applet    {a['aid']:<32} {a['lifecycle']}  {a['class']}{mark}")
        for f in a["files"]:
            click.echo(_file_line(f))
    for p in info["profiles"]:
        state = "enabled" if p["enabled"] else "disabled"
        if p.get("damaged"):
            iccid = p["iccid"] or "(unreadable)"
            click.echo(f"profile   {iccid:<20} {state:<8} DAMAGED (stored records fail)")
            continue
        click.echo(
            f"profile   {p['iccid']:<20} {state:<8} IMSI {p['imsi']}  {p['name']}"
            f"  ({p['algorithm']}, MSISDN {p['msisdn']})"
        )


@click.command(short_help="Every benchmark in one table, each figure beside its reference.")
@click.option(
    "--quick",
    is_flag=True,
    help="The table with the smallest budgets: every row in seconds (smoke, not figures).",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Only this benchmark of the table (repeatable): inprocess, pcsc, fuzz, keys, bio, "
    "doorlock, smdpp, download, startup, es10first, scenarios, memory.",
)
@click.option(
    "--inprocess",
    is_flag=True,
    help="Instead: the in-process card alone (a fixed mix, then SELECT MF and READ BINARY "
    "beside vicc).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Time per figure for --inprocess and --web.",
)
@click.option(
    "--pcsc",
    is_flag=True,
    help="Instead: time SELECT MF through pcscd + vpcd + pyscard, beside a bare echo card.",
)
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="APDUs for --pcsc.",
)
@click.option(
    "--keys",
    is_flag=True,
    help="Instead: key generation and signing per algorithm (keypair applet), beside an "
    "NXP JCOP4's JCAlgTest figures.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Interleaved runs per algorithm for --keys (RSA-3072: at most 3); rounds for --usim.",
)
@click.option(
    "--alg",
    "algorithms",
    multiple=True,
    help="Only this algorithm for --keys (repeatable): P-256, P-384, brainpoolP256r1, "
    "brainpoolP384r1, RSA-2048, RSA-3072.",
)
@click.option(
    "--web",
    is_flag=True,
    help="Instead: the SM-DP+'s InitiateAuthentication on the old and the new web stack.",
)
@click.option(
    "--doorlock",
    is_flag=True,
    help="Instead: seed 001's offline unlock (each method) beside a remote HTTPS round trip.",
)
@click.option(
    "--usim",
    is_flag=True,
    help="Instead: single UICC commands (VERIFY PIN1 in memory and on an image, READ RECORD, "
    "AUTHENTICATE, GetProfilesInfo), APDUs/s in alternating rounds.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Interleaved rounds for --doorlock.",
)
@json_option
def bench(
    quick: bool,
    only: tuple[str, ...],
    inprocess: bool,
    seconds: float,
    pcsc: bool,
    count: int,
    keys: bool,
    runs: int,
    algorithms: tuple[str, ...],
    web: bool,
    doorlock: bool,
    usim: bool,
    rounds: int,
    as_json: bool,
) -> None:
    """Run every benchmark and print one table, each figure beside its reference.

    By default (or with --quick, --only): the whole table (host/bench_table.py),
    each figure the median of several interleaved runs with its spread (min-max,
    or p10-p90 of 10 runs or more), beside its reference measured in the same
    run or published: in-process
    APDUs/s beside vicc, PC/SC beside a bare echo card, fuzz executions/s on every
    preset, key generation and signing beside an NXP JCOP4 (JCAlgTest), match-on-card
    VERIFY, the door-lock unlock beside a remote round trip, SM-DP+ requests/s, an
    eSIM download + enable over loopback HTTPS beside the same in-process, the
    start-up of `cardemu --version` / `--help`, the first ES10 call of a process,
    each system's scenario end to end, memory per USIM card and cards per GiB. A
    benchmark that cannot run here is a row saying why; the full table takes
    one to two minutes. The ratio reads "times better than the reference".
    Exit code 1 if a benchmark failed.

    One benchmark alone, with its own detail: --inprocess (a fixed mix, then
    SELECT MF and READ BINARY beside vsmartcard's vicc card). With --pcsc: the card served
    through the real PC/SC stack beside a minimal echo card on the same path (the floor).
    With --web: the SM-DP+'s InitiateAuthentication over HTTPS, requests/s and p50/p99,
    on the http.server stack it left beside Starlette/uvicorn, rounds interleaved.
    With --doorlock: seed 001's unlock on the two SIMs (presentation to decision, each
    method) beside one remote-authentication round trip to a loopback HTTPS server,
    as ratios with their spread. With --usim: VERIFY PIN1, READ RECORD EF.MSISDN,
    AUTHENTICATE 3G and ES10c GetProfilesInfo on the usim/euicc presets, and the
    creation of one usim card, each the median of --runs alternating rounds with
    its spread (the README's benchmark table).

    \b
    Examples:
      cardemu bench
      cardemu bench --quick --json
      cardemu bench --only inprocess --only memory
      cardemu bench --only download --only startup --only es10first
      cardemu bench --inprocess --seconds 3 --json
      cardemu bench --pcsc -n 5000
      cardemu bench --keys --runs 5
      cardemu bench --keys --alg P-256 --alg RSA-2048 --json
      cardemu bench --web --seconds 4
      cardemu bench --doorlock --rounds 200
      cardemu bench --usim --seconds 2 --runs 5
    """
    if usim:
        from host.bench_usim import run_usim_benchmark

        stop_if_interrupted()  # each branch once its imports are done
        usim_report = run_usim_benchmark(seconds, runs)
        if as_json:
            click.echo(json.dumps(usim_report.to_json(), indent=2))
        else:
            click.echo("\n".join(usim_report.lines()))
        return
    if doorlock:
        from host.bench_doorlock import run_doorlock_benchmark

        stop_if_interrupted()
        tty = sys.stderr.isatty()
        dl = run_doorlock_benchmark(
            rounds, progress=(lambda line: click.echo(line, err=True)) if tty else None
        )
        if as_json:
            click.echo(json.dumps(dl.to_json(), indent=2))
        else:
            click.echo("\n".join(dl.lines()))
        return
    if keys:
        from host.bench_keys import ALGORITHMS, run_key_benchmark

        stop_if_interrupted()
        chosen = algorithms or tuple(ALGORITHMS)
        bad = [a for a in chosen if a not in ALGORITHMS]
        if bad:
            raise click.UsageError(
                f"unknown --alg {', '.join(bad)}; choose from {', '.join(ALGORITHMS)}"
            )
        tty = sys.stderr.isatty()
        report = run_key_benchmark(
            runs,
            algorithms=chosen,
            progress=(lambda line: click.echo(line, err=True)) if tty else None,
        )
        if as_json:
            click.echo(json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2))
        else:
            click.echo(report["text"])
        return
    if web:
        from host.bench_web import run_web_benchmark

        stop_if_interrupted()
        web_report = run_web_benchmark(seconds)
        if as_json:
            click.echo(json.dumps(web_report.to_json(), indent=2))
        else:
            click.echo("\n".join(web_report.lines()))
        return
    if pcsc:
        from host.bench_pcsc import PcscBenchError, bench_pcsc
        from host.commands.serve import card_factory

        stop_if_interrupted()
        try:
            result = bench_pcsc(card_factory(DEFAULT_PRESET), n=count)
        except (PcscBenchError, ReaderError) as e:
            raise click.ClickException(str(e)) from None
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "n": result.n,
                        "card_apdus_per_s": round(result.card_rate),
                        "echo_apdus_per_s": round(result.echo_rate),
                        "ratio": round(result.ratio, 3),
                        "ratio_min": round(result.spread[0], 3),
                        "ratio_max": round(result.spread[1], 3),
                        "rounds": len(result.ratios),
                    },
                    indent=2,
                )
            )
        else:
            click.echo("\n".join(result.lines()))
        return
    if not inprocess:
        _bench_table(quick, only, as_json)
        return
    from host.bench import run_card_benchmark

    stop_if_interrupted()
    report = run_card_benchmark(seconds)
    if as_json:
        click.echo(json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2))
        return
    click.echo(report["text"])


def _bench_table(quick: bool, only: tuple[str, ...], as_json: bool) -> None:
    from host.bench_table import Settings, run_table

    stop_if_interrupted()
    tty = sys.stderr.isatty()
    try:
        table = run_table(
            Settings(quick=quick),
            only=only,
            progress=(lambda line: click.echo(line, err=True)) if tty else None,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if as_json:
        click.echo(json.dumps(table.to_json(), indent=2))
    else:
        click.echo("\n".join(table.lines()))
    if table.errors:
        names = ", ".join(r.entry for r in table.errors)
        raise click.ClickException(f"benchmark(s) failed: {names}")
