"""`cardemu lpa`: the Local Profile Assistant (GSMA SGP.22) on any card with an ISD-R.

Every subcommand opens a logical channel to the ISD-R of the chosen card
(the reader options of `cardemu send`; without them a fresh in-memory "euicc"
card) and runs one recipe of `host.lpa.Lpa`. Each ES10 / ES9+ step is printed
on stderr as it completes; results go to stdout (`--json` for machine output).

Exit codes: 1 when the SM-DP+ or the eUICC refuses (the SGP.22 status or
result code in the message), 3 when an APDU fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from host.commands.common import InvalidInput, UnexpectedStatus, json_option, stack_options
from host.commands.session import open_session, pick_reader, reader_options
from host.errors import ApduError
from host.es9plus import Es9Error
from host.lpa import ActivationCode, Es9TransportError, Es10Client, Es10Error, Lpa, LpaError, Step
from host.lpa.es9 import split_address
from host.pki import PkiError, default_pki, load_pkis
from host.readers.base import ReaderError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PRESET = "euicc"


def lpa_options(f: F) -> F:
    """The card (reader options), APDU tracing, JSON output."""
    f = json_option(f)
    f = click.option("--apdu", "apdu_trace", is_flag=True, help="Trace every APDU on stderr too.")(
        f
    )
    f = click.option(
        "--basic-channel", is_flag=True, help="Talk to the ISD-R on channel 0 (no MANAGE CHANNEL)."
    )(f)
    return reader_options(DEFAULT_PRESET)(f)


@dataclass(frozen=True)
class LpaOptions:
    reader_spec: str | None
    image: str | None
    preset: str | None
    seed: int | None
    apdu_trace: bool
    basic_channel: bool
    as_json: bool


def _options(kw: dict[str, Any]) -> LpaOptions:
    """Take the `lpa_options` values out of a command's keyword arguments."""
    return LpaOptions(
        reader_spec=kw.pop("reader_spec"),
        image=kw.pop("image"),
        preset=kw.pop("preset"),
        seed=kw.pop("seed"),
        apdu_trace=kw.pop("apdu_trace"),
        basic_channel=kw.pop("basic_channel"),
        as_json=kw.pop("as_json"),
    )


def tls_options(
    connect_to_help: str, pki_help: str = "Trust this PKI's CI for TLS."
) -> Callable[[F], F]:
    """--pki, --ca, --connect-to: whom TLS to an SM-DP+ trusts, and where it connects.

    Args:
        connect_to_help: --connect-to's help (what the address replaces).
        pki_help: --pki's help.
    """
    options = [
        click.option(
            "--pki",
            "pki_dir",
            type=click.Path(exists=True, file_okay=False),
            help=pki_help,
        ),
        click.option(
            "--ca",
            "ca_file",
            type=click.Path(exists=True, dir_okay=False),
            help="Trust these PEM certificates for TLS.",
        ),
        click.option("--connect-to", metavar="HOST:PORT", help=connect_to_help),
    ]
    return stack_options(options)


def _step_printer(as_json: bool) -> Callable[[Step], None]:
    def show(step: Step) -> None:
        click.echo(f"  {step}", err=True)

    return show


@contextmanager
def _lpa(opts: LpaOptions, **lpa_kw: Any) -> Iterator[Lpa]:
    info = pick_reader(opts.reader_spec, opts.image, opts.preset)
    with open_session(info, seed=opts.seed, trace="text" if opts.apdu_trace else "none") as s:
        try:
            with Es10Client(s.reader, use_channel=not opts.basic_channel) as es10:
                yield Lpa(es10, on_step=_step_printer(opts.as_json), **lpa_kw)
        except Es9Error as e:
            raise click.ClickException(str(e)) from None
        except Es9TransportError as e:
            raise click.ClickException(str(e)) from None
        except (Es10Error, LpaError) as e:
            raise click.ClickException(str(e)) from None
        except ApduError as e:
            raise UnexpectedStatus(str(e)) from None
        except (ReaderError, ValueError) as e:
            raise click.ClickException(str(e)) from None


def _emit(as_json: bool, doc: Any, text: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        text()


@click.group("lpa", short_help="Local Profile Assistant for eSIM (SGP.22).")
def lpa() -> None:
    """Local Profile Assistant: download and manage eSIM profiles (GSMA SGP.22).

    Without -r, --card or --preset, a fresh in-memory "euicc" card: keep the
    profiles in a card image with --card. Each ES10/ES9+ step goes to stderr,
    the result to stdout.

    \b
    Examples:
      cardemu card new --preset euicc my.card
      cardemu smdpp serve --demo-order &
      cardemu lpa download --card my.card 'LPA:1$localhost:8443$DEMO-1'
      cardemu lpa list --card my.card
      cardemu lpa enable --card my.card 8988210000000000012
    """


def _ca(pki_dir: str | None, ca_file: str | None) -> bytes:
    if ca_file is not None:
        try:
            return Path(ca_file).read_bytes()
        except OSError as e:
            raise click.ClickException(f"cannot read {ca_file}: {e}") from None
    if pki_dir is None:
        return default_pki().ci.pem
    try:
        pkis = load_pkis(pki_dir)
    except PkiError as e:
        raise click.ClickException(str(e)) from None
    return b"".join(p.ci.pem for p in pkis)


def _connect_target(connect_to: str | None, *, need_port: bool) -> tuple[str, int] | None:
    """--connect-to as (host, port); port 0 when absent and not `need_port`."""
    if not connect_to:
        return None
    host, port = split_address(connect_to, 0)
    if need_port and not port:
        raise InvalidInput("--connect-to: give HOST:PORT")
    return (host, port)


@lpa.command("download", short_help="Download a profile with an activation code.")
@lpa_options
@click.argument("activation_code")
@tls_options(
    "Connect there instead of the SM-DP+ address (TLS still checks the address).",
    pki_help="Trust this PKI's CI for TLS (from `cardemu pki create`).",
)
@click.option("--confirmation-code", help="The confirmation code, if the SM-DP+ asks for one.")
@click.option(
    "--no-tls", is_flag=True, help="Plain HTTP to the SM-DP+ (a test server behind no TLS)."
)
def download(
    activation_code: str,
    pki_dir: str | None,
    ca_file: str | None,
    connect_to: str | None,
    confirmation_code: str | None,
    no_tls: bool,
    **kw: Any,
) -> None:
    """Download a profile with an activation code (LPA:1$SM-DP+ address$matching ID).

    TLS to the SM-DP+ is checked against the built-in test CI unless --pki or
    --ca names another. Use --card to keep the profile in a card image.

    \b
    Examples:
      cardemu card new --preset euicc my.card
      cardemu smdpp serve --demo-order &
      cardemu lpa download --card my.card 'LPA:1$localhost:8443$DEMO-1'
      cardemu lpa download --card my.card --pki ./pki 'LPA:1$smdp.example$X' \\
          --connect-to 127.0.0.1:8443
    """
    try:
        code = ActivationCode.parse(activation_code)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    opts = _options(kw)
    target = _connect_target(connect_to, need_port=True)
    click.echo(f"Downloading from {code.address} (matching ID {code.matching_id!r})", err=True)
    with _lpa(opts, ca_pem=_ca(pki_dir, ca_file), connect_to=target, tls=not no_tls) as assistant:
        result = assistant.download(code, confirmation_code=confirmation_code)
    doc = result.to_json()
    _emit(
        opts.as_json,
        doc,
        lambda: click.echo(
            f"installed {doc['iccid']} in ISD-P {doc['isdpAid']}"
            if result.installed
            else f"not installed: {doc['error']}"
        ),
    )
    if not result.installed:
        raise click.exceptions.Exit(1)


@lpa.command("discover", short_help="Ask an SM-DS for this eUICC's events (ES11).")
@lpa_options
@click.option(
    "--smds",
    "smds_address",
    metavar="ADDRESS",
    help="The SM-DS to ask [default: the eUICC's root SM-DS address].",
)
@tls_options(
    "Connect there instead of the SM-DS address (TLS still checks the address).",
    pki_help="Trust this PKI's CI for TLS (from `cardemu pki create`).",
)
@click.option("--no-tls", is_flag=True, help="Plain HTTP (test servers behind no TLS).")
@click.option(
    "--download", "then_download", is_flag=True, help="Then download each event's profile."
)
@click.option("--confirmation-code", help="The confirmation code, for --download.")
def discover(
    smds_address: str | None,
    pki_dir: str | None,
    ca_file: str | None,
    connect_to: str | None,
    no_tls: bool,
    then_download: bool,
    confirmation_code: str | None,
    **kw: Any,
) -> None:
    """Retrieve this eUICC's events from an SM-DS (ES11, the eUICC signing through ES10b).

    Each event names an EventID and the SM-DP+ holding the profile; an event at
    an alternative SM-DS is followed there. --download then downloads each one
    (LPA:1$<SM-DP+>$<EventID>).

    \b
    Examples:
      cardemu smds serve --port 8444 &
      cardemu lpa discover --card my.card --smds localhost:8444
      cardemu lpa discover --card my.card --smds localhost:8444 --download \\
          --confirmation-code 1234
    """
    opts = _options(kw)
    target = _connect_target(connect_to, need_port=True)
    results: list[dict[str, Any]] = []
    with _lpa(opts, ca_pem=_ca(pki_dir, ca_file), connect_to=target, tls=not no_tls) as assistant:
        events = assistant.discover(smds_address)
        for e in events:
            if then_download:
                code = ActivationCode(e["rspServerAddress"], e["eventId"])
                r = assistant.download(code, confirmation_code=confirmation_code)
                e = {**e, "download": r.to_json()}
            results.append(e)

    def text() -> None:
        if not results:
            click.echo("no event")
        for e in results:
            line = f"{e['eventId']:<24} {e['rspServerAddress']}"
            if "download" in e:
                d = e["download"]
                line += f"  installed {d['iccid']}" if d["installed"] else f"  not installed: {d}"
            click.echo(line)

    _emit(opts.as_json, results, text)
    if any("download" in e and not e["download"]["installed"] for e in results):
        raise click.exceptions.Exit(1)


@lpa.command("list", short_help="List the profiles (ES10c.GetProfilesInfo).")
@lpa_options
def list_profiles(**kw: Any) -> None:
    """List the profiles on the eUICC (ES10c.GetProfilesInfo).

    \b
    Examples:
      cardemu lpa list --card my.card
      cardemu lpa list -r "Virtual PCD 00 00" --json
    """
    opts = _options(kw)
    with _lpa(opts) as assistant:
        rows = assistant.profiles()

    def text() -> None:
        if not rows:
            click.echo("no profile")
        for r in rows:
            nick = f" ({r['nickname']})" if r["nickname"] else ""
            click.echo(
                f"{r['iccid']}  {r['state']:<8}  {r['serviceProviderName'] or '-'}: "
                f"{r['profileName'] or '-'}{nick}"
            )

    _emit(opts.as_json, rows, text)


#: The demo order's profile (`cardemu smdpp serve --demo-order`), in the examples.
DEMO_ICCID = "8988210000000000012"


def _iccid_command(name: str, done: str, action: Callable[[Lpa, str], None]) -> click.Command:
    """`cardemu lpa enable|disable|delete ICCID`; `done` is the result line's past tense."""

    @lpa_options
    @click.argument("iccid")
    def command(iccid: str, **kw: Any) -> None:
        opts = _options(kw)
        with _lpa(opts) as assistant:
            action(assistant, iccid)
        _emit(opts.as_json, {"iccid": iccid, "result": "ok"}, lambda: click.echo(f"{done} {iccid}"))

    first = f"      cardemu lpa enable --card my.card {DEMO_ICCID}\n" if name == "Disable" else ""
    command.__doc__ = f"""{name} a profile (ES10c.{name}Profile).

    In the examples, my.card holds the demo profile, disabled (as `cardemu lpa
    download --help` leaves it).

    \b
    Examples:
{first}      cardemu lpa {name.lower()} --card my.card {DEMO_ICCID}
    """
    return click.command(name.lower())(command)


lpa.add_command(_iccid_command("Enable", "enabled", lambda a, i: a.enable(i)))
lpa.add_command(_iccid_command("Disable", "disabled", lambda a, i: a.disable(i)))
lpa.add_command(_iccid_command("Delete", "deleted", lambda a, i: a.delete(i)))


@lpa.command("nickname")
@lpa_options
@click.argument("iccid")
@click.argument("nickname")
def nickname(iccid: str, nickname: str, **kw: Any) -> None:
    """Set a profile's nickname (ES10c.SetNickname).

    \b
    Examples:
      cardemu lpa nickname --card my.card 8988210000000000012 "work"
    """
    opts = _options(kw)
    with _lpa(opts) as assistant:
        assistant.nickname(iccid, nickname)
    _emit(
        opts.as_json,
        {"iccid": iccid, "nickname": nickname},
        lambda: click.echo(f"{iccid}: {nickname}"),
    )


@lpa.command("notifications", short_help="List or --send the pending notifications.")
@lpa_options
@click.option(
    "--send", is_flag=True, help="Deliver them to their SM-DP+ and remove the delivered ones."
)
@click.option("--seq", type=int, help="Only this sequence number.")
@tls_options("Connect there instead of each notification address.")
@click.option(
    "--no-tls", is_flag=True, help="Plain HTTP to the SM-DP+ (a test server behind no TLS)."
)
def notifications(
    send: bool,
    seq: int | None,
    pki_dir: str | None,
    ca_file: str | None,
    connect_to: str | None,
    no_tls: bool,
    **kw: Any,
) -> None:
    """List the pending notifications (ES10b.ListNotification) or --send them (ES9+).

    \b
    Examples:
      cardemu lpa notifications --card my.card
      cardemu lpa notifications --card my.card --send
      cardemu lpa notifications --card my.card --send --no-tls
    """
    opts = _options(kw)
    target = _connect_target(connect_to, need_port=False)
    lpa_kw: dict[str, Any] = (
        {"ca_pem": _ca(pki_dir, ca_file), "connect_to": target, "tls": not no_tls} if send else {}
    )
    with _lpa(opts, **lpa_kw) as assistant:
        rows = assistant.send_notifications(seq) if send else assistant.notifications()
        if seq is not None and not send:
            rows = [r for r in rows if r["seqNumber"] == seq]

    def text() -> None:
        if not rows:
            click.echo("no notification")
        for r in rows:
            extra = f"  {r['result']}" if "result" in r else ""
            click.echo(
                f"#{r['seqNumber']:<4} {r['operation']:<8} {r['iccid'] or '-':<20} "
                f"{r['address']}{extra}"
            )

    _emit(opts.as_json, rows, text)


@lpa.command("eid")
@lpa_options
def eid(**kw: Any) -> None:
    """Print the EID (ES10c.GetEID).

    \b
    Examples:
      cardemu lpa eid
      cardemu lpa eid -r "Virtual PCD 00 00"
    """
    opts = _options(kw)
    with _lpa(opts) as assistant:
        value = assistant.eid()
    _emit(opts.as_json, {"eid": value}, lambda: click.echo(value))


@lpa.command("info", short_help="Show the eUICC's EID, versions, CI keys.")
@lpa_options
def info(**kw: Any) -> None:
    """Show the eUICC: EID, versions, CI keys, configured addresses (ES10b.GetEUICCInfo2, ES10a).

    \b
    Examples:
      cardemu lpa info --json
    """
    opts = _options(kw)
    with _lpa(opts) as assistant:
        doc = assistant.info()

    def text() -> None:
        for k, v in doc.items():
            click.echo(
                f"{k:<24}{', '.join(v) if isinstance(v, list) else v if v is not None else '-'}"
            )

    _emit(opts.as_json, doc, text)


@lpa.command("load-crl", short_help="Hand the eUICC a CRL of its CI (ES10b.LoadCRL).")
@lpa_options
@click.argument("crl_file", type=click.File("rb"))
def load_crl(crl_file: Any, **kw: Any) -> None:
    """Hand the eUICC a CRL (DER) its CI issued (ES10b.LoadCRL).

    The eUICC checks the CI's signature and from then on refuses the SM-DP+
    and SM-DS certificates the CRL revokes.

    \b
    Examples:
      cardemu pki revoke ./pki --dpauth
      cardemu lpa load-crl --card my.card ./pki/crl/CRL_CI_ECDSA_NIST.der
    """
    opts = _options(kw)
    data = crl_file.read()
    with _lpa(opts) as assistant:
        assistant.es10.load_crl(data)
    _emit(opts.as_json, {"result": "ok", "bytes": len(data)}, lambda: click.echo("CRL loaded"))


@lpa.command("memory-reset", short_help="Delete profiles (ES10c.eUICCMemoryReset).")
@lpa_options
@click.option("--test", "test_profiles", is_flag=True, help="Delete the test profiles too.")
@click.option("--no-operational", is_flag=True, help="Keep the operational profiles.")
@click.option("--default-address", is_flag=True, help="Also clear the default SM-DP+ address.")
def memory_reset(
    test_profiles: bool, no_operational: bool, default_address: bool, **kw: Any
) -> None:
    """Delete the eUICC's profiles (ES10c.eUICCMemoryReset, SGP.22 §5.7.19).

    Operational profiles by default; --test adds the test profiles,
    --default-address resets the default SM-DP+ address as well.

    \b
    Examples:
      cardemu lpa memory-reset --card my.card
      cardemu lpa memory-reset --card my.card --test --default-address
    """
    opts = _options(kw)
    with _lpa(opts) as assistant:
        code = assistant.es10.memory_reset(
            operational=not no_operational, test=test_profiles, default_address=default_address
        )
    result = "ok" if code == 0 else "nothing to delete"
    _emit(opts.as_json, {"result": result}, lambda: click.echo(result))


@lpa.command("default-dp", short_help="Show or set the default SM-DP+ address (ES10a).")
@lpa_options
@click.argument("address", required=False)
def default_dp(address: str | None, **kw: Any) -> None:
    """Show the default SM-DP+ address, or set it to ADDRESS ('' clears it) (ES10a).

    With a default SM-DP+, `cardemu lpa download 'LPA:1$<address>$'` asks it
    for a profile ordered for this EID (no matching ID).

    \b
    Examples:
      cardemu lpa default-dp --card my.card
      cardemu lpa default-dp --card my.card localhost:8443
    """
    opts = _options(kw)
    with _lpa(opts) as assistant:
        if address is not None:
            assistant.es10.set_default_dp_address(address)
        value = assistant.es10.get_configured_addresses().get("defaultDpAddress")
    _emit(
        opts.as_json,
        {"defaultDpAddress": value},
        lambda: click.echo(value if value else "no default SM-DP+ address"),
    )
