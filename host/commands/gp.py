"""`cardemu gp`: GlobalPlatform card content management over SCP03.

Every subcommand selects the Issuer Security Domain of the chosen card (the
reader options of `cardemu send`; without them a fresh in-memory "gp" card),
opens SCP03 with the given keys (default:
the GP test keys 40..4F) at the given level, and runs one recipe of
`host.gp.GpClient`. A refusal by the card exits with code 3 and names the
status word; a failed secure channel (wrong keys) exits with code 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from card.gp.scp03 import Scp03Keys
from host.commands.common import InvalidInput, UnexpectedStatus, json_option, stack_options
from host.commands.session import open_session, pick_reader, reader_options
from host.errors import ApduError, SecureChannelError
from host.gp.client import GpClient, Registry
from host.gp.data import (
    Privilege,
    RegistryEntry,
    card_life_cycle_name,
    privilege_names,
    privileges_from_bytes,
    privileges_from_names,
)
from host.hexutil import parse_hex, to_hex
from host.readers.base import ReaderError

F = TypeVar("F", bound=Callable[..., Any])

_LEVELS = ["00", "01", "03", "11", "13", "33"]
_CARD_STATES = {"initialized": 0x07, "secured": 0x0F, "locked": 0x7F, "terminated": 0xFF}
DEFAULT_PRESET = "gp"


def _hex(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    try:
        return parse_hex(value)
    except ValueError as e:
        raise InvalidInput(f"{what}: {e}") from None


def _aid(value: str, what: str = "AID") -> bytes:
    b = _hex(value, what) or b""
    if not 5 <= len(b) <= 16:
        raise InvalidInput(f"{what}: an AID has 5 to 16 bytes, got {len(b)}")
    return b


def _byte(value: str | None, what: str) -> int | None:
    b = _hex(value, what)
    if b is None:
        return None
    if len(b) != 1:
        raise InvalidInput(f"{what}: one byte in hex, got {len(b)}")
    return b[0]


def _keys(
    key: str | None,
    enc: str | None,
    mac: str | None,
    dek: str | None,
    kvn: int | None = None,
    prefix: str = "--",
) -> Scp03Keys:
    """A key set from --key or --enc/--mac/--dek (the GP test keys by default).

    `prefix` names the options in errors (`--new-` for put-key's new keys).
    """
    base = _hex(key, f"{prefix}key")
    parts = [_hex(v, f"{prefix}{n}") for n, v in (("enc", enc), ("mac", mac), ("dek", dek))]
    default = base if base is not None else Scp03Keys.test_keys().enc
    enc_b, mac_b, dek_b = (p if p is not None else default for p in parts)
    try:
        return Scp03Keys(enc_b, mac_b, dek_b, kvn if kvn is not None else 0x30)
    except ValueError as e:
        raise InvalidInput(str(e)) from None


@dataclass(frozen=True)
class GpOptions:
    reader_spec: str | None
    image: str | None
    preset: str | None
    seed: int | None
    keys: Scp03Keys
    kvn: int | None
    level: int
    isd: bytes | None
    trace: bool


def gp_options(f: F) -> F:
    """The reader, key and channel options every `gp` subcommand takes."""
    options = [
        click.option("--key", metavar="HEX", help="One key for ENC, MAC and DEK."),
        click.option("--enc", metavar="HEX", help="Static K-ENC."),
        click.option("--mac", metavar="HEX", help="Static K-MAC."),
        click.option("--dek", metavar="HEX", help="Static K-DEK."),
        click.option(
            "--kvn", metavar="HEX", help="Key version for INITIALIZE UPDATE [default: 00, any]."
        ),
        click.option(
            "--level",
            type=click.Choice(_LEVELS),
            default="01",
            show_default=True,
            help="Security level: 01 C-MAC, 03 +C-DEC, 11 +R-MAC, 13, 33 +R-ENC.",
        ),
        click.option("--isd", metavar="AID", help="ISD AID [default: found by SELECT]."),
        click.option("--trace", is_flag=True, help="Show the (secured) APDUs on stderr."),
    ]
    return reader_options(DEFAULT_PRESET)(stack_options(options)(f))


def _options(kw: dict[str, Any]) -> GpOptions:
    kvn = _byte(kw.pop("kvn"), "--kvn")
    isd = kw.pop("isd")
    return GpOptions(
        reader_spec=kw.pop("reader_spec"),
        image=kw.pop("image"),
        preset=kw.pop("preset"),
        seed=kw.pop("seed"),
        keys=_keys(kw.pop("key"), kw.pop("enc"), kw.pop("mac"), kw.pop("dek")),
        kvn=kvn,
        level=int(kw.pop("level"), 16),
        isd=_aid(isd, "--isd") if isd else None,
        trace=kw.pop("trace"),
    )


@contextmanager
def _client(opts: GpOptions, *, secure: bool = True) -> Iterator[GpClient]:
    """A connected `GpClient`, the ISD selected and (with `secure`) SCP03 open.

    Card refusals become exit code 3, channel and reader failures exit code 1.
    """
    info = pick_reader(opts.reader_spec, opts.image, opts.preset)
    with open_session(info, seed=opts.seed, trace="text" if opts.trace else "none") as session:
        client = GpClient(
            session.reader, opts.keys, level=opts.level, kvn=opts.kvn, isd_aid=opts.isd
        )
        try:
            if secure:
                client.open()
            else:
                client.select_isd()
            yield client
        except ApduError as e:
            raise UnexpectedStatus(str(e)) from None
        except SecureChannelError as e:
            raise click.ClickException(f"secure channel: {e}") from None
        except ReaderError as e:
            raise click.ClickException(str(e)) from None
        finally:
            client.close()


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


# -- the group --------------------------------------------------------------------------


@click.group(short_help="GlobalPlatform card management (SCP03).")
def gp() -> None:
    """GlobalPlatform card management: list, install, delete, lock, keys (SCP03).

    Without -r, --card or --preset, a fresh in-memory "gp" card (its ISD keeps
    the GP test keys 40..4F); changes last only with --card IMAGE.

    \b
    Examples:
      cardemu gp list
      cardemu card new --preset gp my.card
      cardemu gp install --card my.card purse --aid F0000000010101
      cardemu gp delete --card my.card F0000000010101
      cardemu gp info --json
      cardemu gp list -r "virtual pcd 00 00" --key 404142434445464748494A4B4C4D4E4F
    """


def _entry_line(e: RegistryEntry) -> str:
    line = f"{e.kind:<4} {to_hex(e.aid):<32} {e.life_cycle_name}"
    if e.kind != "PKG" and e.privileges:
        line += f"  [{', '.join(privilege_names(e.privileges))}]"
    if e.load_file_aid:
        line += f"  from {to_hex(e.load_file_aid)}"
    if e.version:
        line += f"  v{e.version[0]}.{e.version[1]}" if len(e.version) == 2 else ""
    return line


@gp.command("list", short_help="List the card's content (GET STATUS).")
@gp_options
@json_option
def list_cmd(as_json: bool, **kw: Any) -> None:
    """List the ISD, applications, Security Domains and load files (GET STATUS).

    \b
    Examples:
      cardemu gp list
      cardemu gp list --json --level 33
    """
    opts = _options(kw)
    with _client(opts) as client:
        reg: Registry = client.registry()
    if as_json:
        _echo_json(reg.to_json())
        return
    for e in (*reg.isd, *reg.applications):
        click.echo(_entry_line(e))
    for e in reg.load_files:
        click.echo(_entry_line(e))
        for m in e.modules:
            click.echo(f"       module {to_hex(m)}")


def _resolve_load_file(source: str) -> tuple[bytes, Any]:
    """(Load File Data Block, descriptor) from a file or a catalogue entry point/package."""
    from card.gp.loadfile import LoadFileDescriptor, LoadFileError, describe_load_file

    if os.path.isfile(source):
        with open(source, "rb") as fh:
            raw = fh.read()
        try:
            desc = LoadFileDescriptor.from_bytes(raw)
        except LoadFileError:
            # A load file written out as hex text is accepted too.
            try:
                raw = parse_hex(raw.decode("ascii"))
                desc = LoadFileDescriptor.from_bytes(raw)
            except (UnicodeDecodeError, ValueError):
                raise InvalidInput(f"{source} is not a cardemu load file") from None
        return raw, desc
    try:
        desc = describe_load_file(source)
    except ValueError as e:
        raise InvalidInput(f"{source}: no such file, entry point or package ({e})") from None
    return desc.to_bytes(), desc


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        click.echo(f"\rLOAD {done}/{total}", err=True, nl=done == total)


@gp.command(short_help="Load a load file and install an applet.")
@gp_options
@json_option
@click.option("--aid", "app_aid", metavar="AID", help="Instance AID [default: the module AID].")
@click.option(
    "--module", metavar="AID|NAME", help="Module to instantiate (AID, entry point or class)."
)
@click.option("--params", metavar="HEX", default="", help="Install parameters (sent in C9).")
@click.option(
    "--privs",
    metavar="NAMES|HEX",
    default="",
    help="Privileges: comma-separated names (card-reset,security-domain) or 1/3 bytes hex.",
)
@click.option("--hash/--no-hash", "with_hash", default=False, help="Send the LFDB SHA-256.")
@click.option(
    "--load-only",
    is_flag=True,
    help="Load the file, create no instance (no --module, --aid, --params, --privs).",
)
@click.argument("source", metavar="FILE|ENTRY_POINT_NAME")
def install(
    as_json: bool,
    app_aid: str | None,
    module: str | None,
    params: str,
    privs: str,
    with_hash: bool,
    load_only: bool,
    source: str,
    **kw: Any,
) -> None:
    """Load a load file (unless the card has it) and install an applet from it.

    SOURCE is a cardemu load file, or a catalogued entry point or package name
    whose load file is built on the fly. A load file with several modules needs
    --module, unless --load-only creates no instance.

    \b
    Examples:
      cardemu gp install purse --aid F0000000010101 --params 31323334
      cardemu gp install my-applet.lf --aid F0000000030303
      cardemu gp install --card my.card applets.notes --load-only
    """
    opts = _options(kw)
    if load_only:
        extra = [n for n, v in (("--module", module), ("--aid", app_aid), ("--params", params),
                                ("--privs", privs)) if v]  # fmt: skip
        if extra:
            verb = "does" if len(extra) == 1 else "do"
            raise InvalidInput(
                f"--load-only creates no instance: {', '.join(extra)} {verb} not apply"
            )
    lfdb, desc = _resolve_load_file(source)
    mod = None if load_only else _pick_module(desc, module, source)
    instance = _aid(app_aid, "--aid") if app_aid else None
    priv = _privileges(privs)
    param_bytes = _hex(params, "--params") or b""
    with _client(opts) as client:
        loaded = False
        if not any(e.aid == desc.aid for e in client.load_files()):
            client.load(lfdb, desc.aid, with_hash=with_hash, progress=_progress)
            loaded = True
        if mod is not None:
            client.install(desc.aid, mod.aid, instance, privileges=priv, params=param_bytes)
    result = {
        "load_file": to_hex(desc.aid),
        "loaded": loaded,
        "module": None if mod is None else to_hex(mod.aid),
        "application": None if mod is None else to_hex(instance or mod.aid),
    }
    if as_json:
        _echo_json(result)
        return
    click.echo(f"load file {result['load_file']} " + ("loaded" if loaded else "already on card"))
    if mod is not None:
        click.echo(f"installed {result['application']} ({mod.class_ref})")


def _pick_module(desc: Any, module: str | None, source: str) -> Any:
    if module:
        try:
            aid = parse_hex(module)
        except ValueError:
            aid = None
        found = desc.module(aid) if aid else None
        if found is None:
            try:
                found = desc.module_for(module)
            except KeyError:
                raise InvalidInput(f"--module {module}: not in load file {desc.package}") from None
        return found
    if len(desc.modules) == 1:
        return desc.modules[0]
    try:
        return desc.module_for(source)
    except KeyError:
        names = ", ".join(m.entry_point or m.class_ref for m in desc.modules)
        raise InvalidInput(
            f"the load file has several modules ({names}): choose --module"
        ) from None


def _card_state(text: str) -> int:
    """A card life cycle state from its name or its byte in hex."""
    value = _CARD_STATES.get(text.lower())
    if value is not None:
        return value
    try:
        b = parse_hex(text)
    except ValueError:
        b = b""
    if len(b) != 1:
        names = ", ".join(_CARD_STATES)
        raise InvalidInput(f"STATE {text!r}: choose {names} (or one state byte in hex, e.g. 0F)")
    return b[0]


def _privileges(text: str) -> Privilege:
    if not text:
        return Privilege(0)
    try:
        b = parse_hex(text)
        if len(b) in (1, 3):
            return privileges_from_bytes(b)
    except ValueError:
        pass
    try:
        return privileges_from_names(text)
    except ValueError as e:
        raise InvalidInput(f"--privs: {e}") from None


@gp.command(short_help="Delete applications or load files.")
@gp_options
@click.option(
    "-f", "--force", is_flag=True, help="Also delete related objects (a load file's apps)."
)
@click.argument("aids", metavar="AID...", nargs=-1, required=True)
def delete(force: bool, aids: tuple[str, ...], **kw: Any) -> None:
    """Delete applications, Security Domains or load files (DELETE).

    \b
    Examples:
      cardemu gp delete F043415244454D5502
      cardemu gp delete -f F043415244454D5501 F043415244454D5503
    """
    opts = _options(kw)
    targets = [_aid(a) for a in aids]
    with _client(opts) as client:
        for aid in targets:
            client.delete(aid, related=force)
            click.echo(f"deleted {to_hex(aid)}")


def _app_status_command(
    name: str, effect: str, action: Callable[[GpClient, bytes], None]
) -> click.Command:
    """`cardemu gp lock|unlock AID`; `effect` ends the help's first line."""

    @gp_options
    @click.argument("aid", metavar="AID")
    def command(aid: str, **kw: Any) -> None:
        opts = _options(kw)
        target = _aid(aid)
        with _client(opts) as client:
            action(client, target)
        click.echo(f"{name}ed {to_hex(target)}")

    command.__doc__ = f"""{name.capitalize()} an application (SET STATUS){effect}.

    \b
    Examples:
      cardemu card new --preset gp my.card
      cardemu gp lock --card my.card F043415244454D5501
      cardemu gp unlock --card my.card F043415244454D5501
    """
    short_help = f"{name.capitalize()} an application (SET STATUS)."
    return click.command(name, short_help=short_help)(command)


gp.add_command(
    _app_status_command("lock", ": it can no longer be selected", lambda c, aid: c.lock(aid))
)
gp.add_command(
    _app_status_command("unlock", " back to its state before locking", lambda c, aid: c.unlock(aid))
)


@gp.command("card-status", short_help="Set the card life cycle (SET STATUS).")
@gp_options
@click.option("-y", "--yes", is_flag=True, help="Do not ask before terminating the card.")
@click.argument("state", metavar="STATE")
def card_status(yes: bool, state: str, **kw: Any) -> None:
    """Set the card life cycle: initialized, secured, locked (7F) or terminated (FF).

    STATE is one of those names, or the state byte in hex (GPC v2.3.1 Table
    11-5). A new card is OP_READY: it goes to initialized, then secured
    (GPC §5.1.1); `secured` also unlocks a locked card. Terminating is final.

    \b
    Examples:
      cardemu card new --preset gp my.card
      cardemu gp card-status --card my.card initialized
      cardemu gp card-status --card my.card secured
      cardemu gp card-status --card my.card locked
    """
    opts = _options(kw)
    value = _card_state(state)
    if value == 0xFF and not yes:
        click.confirm("Terminate the card? This cannot be undone", abort=True, err=True)
    with _client(opts) as client:
        client.set_card_life_cycle(value)
    click.echo(f"card is {card_life_cycle_name(value)}")


@gp.command("put-key", short_help="Add or replace an SCP03 key set (PUT KEY).")
@gp_options
@json_option
@click.option("--new-key", metavar="HEX", help="One new key for ENC, MAC and DEK.")
@click.option("--new-enc", metavar="HEX", help="New K-ENC.")
@click.option("--new-mac", metavar="HEX", help="New K-MAC.")
@click.option("--new-dek", metavar="HEX", help="New K-DEK.")
@click.option("--new-kvn", metavar="HEX", required=True, help="Version of the new key set.")
@click.option("--replace", metavar="HEX", help="Version of the key set it replaces [default: add].")
def put_key(
    as_json: bool,
    new_key: str | None,
    new_enc: str | None,
    new_mac: str | None,
    new_dek: str | None,
    new_kvn: str,
    replace: str | None,
    **kw: Any,
) -> None:
    """Add or replace an SCP03 key set (PUT KEY, keys wrapped under the current DEK).

    The card's key check values are verified against the keys sent.

    \b
    Examples:
      cardemu gp put-key --new-kvn 31 --new-key 000102030405060708090A0B0C0D0E0F
      cardemu gp put-key --new-kvn 30 --replace 30 --new-enc 101112131415161718191A1B1C1D1E1F \\
          --new-mac 202122232425262728292A2B2C2D2E2F --new-dek 303132333435363738393A3B3C3D3E3F
    """
    opts = _options(kw)
    if not any((new_key, new_enc, new_mac, new_dek)):
        raise InvalidInput("give the new keys: --new-key or --new-enc/--new-mac/--new-dek")
    kvn = _byte(new_kvn, "--new-kvn")
    new = _keys(new_key, new_enc, new_mac, new_dek, kvn, prefix="--new-")
    replaced = _byte(replace, "--replace") or 0
    with _client(opts) as client:
        resp = client.put_key(new, replace_kvn=replaced)
    kcvs = [to_hex(resp[i : i + 3]) for i in (1, 4, 7)]
    if as_json:
        _echo_json(
            {"kvn": f"{resp[0]:02X}", "kcv": {"enc": kcvs[0], "mac": kcvs[1], "dek": kcvs[2]}}
        )
        return
    click.echo(f"key set {resp[0]:02X} stored, KCVs {' '.join(kcvs)}")


@gp.command(short_help="Show CPLC, card data and keys (GET DATA).")
@gp_options
@json_option
def info(as_json: bool, **kw: Any) -> None:
    """Show the card's CPLC, card recognition data and key information (GET DATA).

    No secure channel is needed; data the card does not have is skipped.

    \b
    Examples:
      cardemu gp info
      cardemu gp info --json -r gp
    """
    opts = _options(kw)
    out: dict[str, Any] = {}
    with _client(opts, secure=False) as client:
        out["isd"] = to_hex(client.isd.aid) if client.isd else None
        for key, fetch in (
            ("cplc", lambda: client.cplc().to_json()),
            ("card_data", lambda: client.card_data().to_json()),
            ("keys", lambda: [k.to_json() for k in client.key_information()]),
        ):
            try:
                out[key] = fetch()
            except ApduError as e:
                if e.sw not in (0x6A88, 0x6A82, 0x6A86, 0x6D00, 0x6E00, 0x6985):
                    raise
                out[key] = None
            except ValueError as e:
                out[key] = {"error": str(e)}
    if as_json:
        _echo_json(out)
        return
    click.echo(f"ISD        {out['isd']}")
    cd = out.get("card_data")
    if isinstance(cd, dict) and "gp_version" in cd:
        click.echo(f"GP         {cd['gp_version']}")
        for s in cd["secure_channels"]:
            click.echo(f"SCP        {s['scp']} i={s['i']}")
    for k in out.get("keys") or []:
        comps = " ".join(f"{c['type']}/{c['length']}" for c in k["components"])
        click.echo(f"key        version {k['version']} id {k['id']}  {comps}")
    cplc = out.get("cplc")
    if isinstance(cplc, dict):
        for name, value in cplc.items():
            click.echo(f"CPLC       {name:<36} {value}")
    elif cplc is None:
        click.echo("CPLC       not available")
