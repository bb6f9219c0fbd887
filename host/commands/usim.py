"""`cardemu usim read|auth|suci`: the USIM of a card, decoded, AKA against it, its SUCI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import overload

import click

from card.crypto.milenage import AkaAlgorithm, Milenage, XorTestAlgorithm, generate_auth_vector
from card.crypto.suci import SuciError, serving_network_name
from card.crypto.tuak import Tuak
from card.uicc.ts_31_103 import ISIM_AID_PREFIX
from host.commands.common import InvalidInput, UnexpectedStatus, json_option
from host.commands.session import open_session, pick_reader, reader_options
from host.errors import ApduError
from host.hexutil import parse_hex
from host.usim import PinError, UsimSession, check_auth, supi_from_suci


@overload
def _hex(value: str, name: str, size: int | None = None) -> bytes: ...
@overload
def _hex(value: str | None, name: str, size: int | None = None) -> bytes | None: ...
def _hex(value: str | None, name: str, size: int | None = None) -> bytes | None:
    if value is None:
        return None
    try:
        b = parse_hex(value)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=name) from None
    if size is not None and len(b) != size:
        raise click.BadParameter(f"must be {size} bytes", param_hint=name)
    return b


DEFAULT_PRESET = "usim"
#: Built-in cards whose subscription keys are known: Milenage K = OPc = 000102..0F.
KNOWN_KEYS = ("usim", "usim-5g")

pin_option = click.option("--pin", help="Verify PIN1 first (needed when PIN1 is enabled).")
# The APDU trace is opt-in, as in `cardemu gp` (a read is ~60 exchanges); -q stays
# accepted for scripts written when the trace was the default.
trace_option = click.option("--trace", is_flag=True, help="Show the APDUs on stderr.")
quiet_option = click.option("-q", "--quiet", is_flag=True, hidden=True, help="No APDU trace.")


@contextmanager
def _usim(
    reader_spec: str | None, image: str | None, preset: str | None, seed: int | None, trace: bool
) -> Iterator[tuple[UsimSession, bytes]]:
    """A `UsimSession` on the chosen card, and its ATR.

    A refused PIN1 exits with code 1, any other refusal with code 3.
    """
    info = pick_reader(reader_spec, image, preset)
    with open_session(info, seed=seed, trace="text" if trace else "none") as s:
        try:
            yield UsimSession(s.reader), s.atr
        except PinError as e:
            raise click.ClickException(f"PIN1 refused ({e.tries_left} tries left)") from None
        except ApduError as e:
            raise UnexpectedStatus(str(e)) from None


@click.group(short_help="Read a USIM and run AKA (TS 31.102).")
def usim() -> None:
    """Read a USIM and authenticate against it (TS 31.102).

    Without -r, --card or --preset, a fresh in-memory "usim" card (IMSI
    001010000000001, Milenage K = OPc = 000102..0F).

    \b
    Examples:
      cardemu usim read
      cardemu usim auth --k 000102030405060708090A0B0C0D0E0F --opc 000102030405060708090A0B0C0D0E0F
      cardemu usim read -r "Virtual PCD 00 00" --pin 1234 --json
    """


@usim.command("read", short_help="Read and decode the USIM's files.")
@reader_options(DEFAULT_PRESET)
@pin_option
@quiet_option
@trace_option
@json_option
def usim_read(
    reader_spec: str | None,
    image: str | None,
    preset: str | None,
    seed: int | None,
    pin: str | None,
    quiet: bool,
    trace: bool,
    as_json: bool,
) -> None:
    """Read ICCID, EF.DIR and the USIM's standard files, decoded.

    \b
    Examples:
      cardemu usim read
      cardemu usim read -r "Virtual PCD 00 00" --pin 1234 --json
    """
    with _usim(reader_spec, image, preset, seed, trace and not (quiet or as_json)) as (
        session,
        atr,
    ):
        if pin:
            session.select_usim()
            session.verify_pin(pin)
        info = session.read(atr=atr)
    doc = info.to_json()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    rows = [
        ("ICCID", doc["iccid"]),
        ("USIM AID", doc["usim_aid"]),
        ("IMSI", doc["imsi"]),
        ("PLMN", doc["plmn"]),
        ("MSISDN", doc["msisdn"]),
        ("SPN", doc["spn"]),
        ("access class", ", ".join(map(str, doc["access_classes"] or [])) or None),
        ("UST", ", ".join(map(str, doc["services"] or [])) or None),
        ("ECC", ", ".join(doc["ecc"]) or None),
    ]
    for name, value in rows:
        click.echo(f"{name:<13}{value if value is not None else '-'}")
    for name, sw in doc["errors"].items():
        click.echo(f"{'unread':<13}{name}: {sw}")


@usim.command("auth", short_help="Run AUTHENTICATE and check the answer.")
@reader_options(DEFAULT_PRESET)
@pin_option
@quiet_option
@trace_option
@json_option
@click.option("--rand", "rand_hex", help="RAND, 16 bytes hex [default: random].")
@click.option("--autn", "autn_hex", help="AUTN, 16 bytes hex (else built from --k/--opc/--sqn).")
@click.option("--k", "k_hex", help="K, to build AUTN and check the answer (TUAK: 16 or 32 bytes).")
@click.option("--opc", "opc_hex", help="OPc (Milenage) or TOPc (TUAK, 32 bytes).")
@click.option("--op", "op_hex", help="OP (Milenage) or TOP (TUAK), instead of OPc / TOPc.")
@click.option(
    "--algorithm",
    type=click.Choice(["milenage", "tuak", "xor"]),
    default="milenage",
    show_default=True,
    help="The card's algorithm: Milenage (TS 35.206), TUAK (TS 35.231), XOR (TS 34.108).",
)
@click.option("--xor", "use_xor", is_flag=True, help="Same as --algorithm xor.")
@click.option(
    "--res-len", type=click.IntRange(4, 32), default=8, show_default=True, help="RES bytes."
)
@click.option(
    "--keccak-iterations",
    type=click.IntRange(1, 255),
    default=1,
    show_default=True,
    help="TUAK: Keccak-f[1600] iterations.",
)
@click.option("--sqn", default="20", show_default=True, help="SQN (hex) for the AUTN built.")
@click.option("--amf", default="8000", show_default=True, help="AMF (hex) for the AUTN built.")
@click.option("--gsm", is_flag=True, help="The GSM context (SRES, Kc) instead of 3G.")
@click.option(
    "--isim",
    is_flag=True,
    help="On the ISIM (IMS AKA, TS 31.103 §7.1.2) instead of the USIM: the first ISIM in EF.DIR.",
)
@click.option(
    "--serving-network",
    "snn",
    metavar="MCC-MNC|NAME",
    help="Also derive the ME's 5G AKA values RES* and K_AUSF (TS 33.501 Annex A) for this "
    "serving network: MCC-MNC (001-01) or the name (5G:mnc001.mcc001.3gppnetwork.org).",
)
def usim_auth(
    reader_spec: str | None,
    image: str | None,
    preset: str | None,
    seed: int | None,
    pin: str | None,
    quiet: bool,
    trace: bool,
    as_json: bool,
    rand_hex: str | None,
    autn_hex: str | None,
    k_hex: str | None,
    opc_hex: str | None,
    op_hex: str | None,
    algorithm: str,
    use_xor: bool,
    res_len: int,
    keccak_iterations: int,
    sqn: str,
    amf: str,
    gsm: bool,
    isim: bool,
    snn: str | None,
) -> None:
    """Run AUTHENTICATE (TS 31.102 §7.1.2) and, given K, check the answer as the AuC would.

    On a fresh built-in card (`usim`, `usim-5g`) the keys are known, so it needs no
    options; elsewhere give --k with --opc/--op, or --autn. `--algorithm tuak` checks a
    TUAK card (K of 16 or 32 bytes, TOPc/TOP of 32). Exit code 1 when the answer does
    not match, 3 when the card refuses (9862: wrong MAC).

    \b
    Examples:
      cardemu usim auth
      cardemu usim auth --serving-network 001-01 --json
      cardemu usim auth --preset usim-5g --isim
      cardemu usim auth --k 000102030405060708090A0B0C0D0E0F --opc 000102030405060708090A0B0C0D0E0F
      cardemu usim auth --rand 00000000000000000000000000000000 \\
          --autn EC9320C2C2120000C8B7DE2A3449F1BD --json
    """
    rand = _hex(rand_hex, "--rand", 16) or os.urandom(16)
    if use_xor:
        algorithm = "xor"
    if (
        k_hex is None
        and autn_hex is None
        and reader_spec is None
        and image is None
        and (preset or DEFAULT_PRESET) in KNOWN_KEYS
        and algorithm == "milenage"
    ):
        # A fresh built-in card: the AuC's keys are the builder's (card.uicc.builder).
        from card.uicc.builder import TEST_K, TEST_OPC

        k_hex, opc_hex = TEST_K.hex(), TEST_OPC.hex()
    alg = _algorithm(algorithm, k_hex, opc_hex, op_hex, res_len, keccak_iterations)
    autn = _hex(autn_hex, "--autn", 16)
    if autn is None and not gsm:
        if alg is None:
            raise click.UsageError("give --autn, or --k with --opc/--op (or --xor) to build one")
        try:
            sqn_b = int(sqn, 16).to_bytes(6, "big")
        except (ValueError, OverflowError):
            raise click.BadParameter("a 48-bit hex number", param_hint="--sqn") from None
        autn = generate_auth_vector(alg, rand, sqn_b, _hex(amf, "--amf", 2)).autn
    sn_name = _sn_name(snn) if snn else None
    if sn_name is not None and gsm:
        raise click.UsageError("--serving-network is for the 3G context (5G AKA), not --gsm")
    if isim and (gsm or sn_name is not None):
        raise click.UsageError(
            "the ISIM has the IMS AKA context only: no --gsm, no --serving-network"
        )
    five_g = None
    shown = trace and not (quiet or as_json)
    with _usim(reader_spec, image, preset, seed, shown) as (session, _):
        if isim:
            isims = [a.aid for a in session.applications() if a.aid.startswith(ISIM_AID_PREFIX)]
            if not isims:
                raise InvalidInput("the card's EF.DIR lists no ISIM")
            session.select_aid(isims[0])
        else:
            session.select_usim()
        if pin:
            session.verify_pin(pin)
        if gsm:
            result = session.authenticate_gsm(rand)
        else:
            assert autn is not None  # given, or built above
            if sn_name is not None:
                five_g = session.authenticate_5g(rand, autn, sn_name)
                result = five_g.result
            else:
                result = session.authenticate(rand, autn)
    check = check_auth(result, alg, rand) if alg is not None else None
    doc = {
        "rand": rand.hex().upper(),
        "autn": autn.hex().upper() if autn else None,
        "result": "sync-failure" if result.sync_failure else "success",
        **(five_g.to_json() if five_g is not None else result.to_json()),
        "check": None
        if check is None
        else {"ok": check.ok, "detail": check.detail, "sqn_ms": check.sqn_ms},
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        keys = ("rand", "autn", "result", "res", "ck", "ik", "kc", "sres", "auts")
        for key in (*keys, "res_star", "kausf"):
            if doc.get(key) is not None:
                click.echo(f"{key.upper().replace('_STAR', '*'):<8}{doc[key]}")
        if check is not None:
            extra = f" (SQN_MS {check.sqn_ms:012X})" if check.sqn_ms is not None else ""
            click.echo(f"{'CHECK':<8}{'ok' if check.ok else 'FAILED'}: {check.detail}{extra}")
    if check is not None and not check.ok:
        raise click.ClickException(check.detail)


def _algorithm(
    name: str,
    k_hex: str | None,
    opc_hex: str | None,
    op_hex: str | None,
    res_len: int,
    iterations: int,
) -> AkaAlgorithm | None:
    """The AuC's copy of the card's algorithm, from the options (None without --k)."""
    if k_hex is None:
        return None
    if name == "tuak":
        k = _hex(k_hex, "--k")
        if k is None or len(k) not in (16, 32):
            raise click.BadParameter("must be 16 or 32 bytes", param_hint="--k")
        try:
            if opc_hex:
                topc = _hex(opc_hex, "--opc", 32)
                return Tuak(k, topc, res_len=res_len, iterations=iterations)
            if op_hex:
                top = _hex(op_hex, "--op", 32)
                return Tuak.from_top(k, top, res_len=res_len, iterations=iterations)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        raise click.UsageError("--algorithm tuak needs --opc (TOPc) or --op (TOP)")
    k = _hex(k_hex, "--k", 16)
    assert k is not None
    if name == "xor":
        return XorTestAlgorithm(k, res_len if res_len <= 16 else 16)
    if opc_hex:
        return Milenage(k, _hex(opc_hex, "--opc", 16))
    if op_hex:
        return Milenage.from_op(k, _hex(op_hex, "--op", 16))
    raise click.UsageError("--k needs --opc, --op or --xor")


def _sn_name(value: str) -> bytes:
    """A serving network name from MCC-MNC or the name itself (TS 24.501 §9.12.1)."""
    if value.startswith("5G:"):
        return value.encode()
    mcc, _, mnc = value.partition("-")
    if not (mcc.isdigit() and len(mcc) == 3 and mnc.isdigit() and len(mnc) in (2, 3)):
        raise click.BadParameter("MCC-MNC (001-01) or 5G:...", param_hint="--serving-network")
    return serving_network_name(mcc, mnc)


@usim.command("suci", short_help="Ask the USIM for a SUCI (GET IDENTITY) and de-conceal it.")
@reader_options(DEFAULT_PRESET)
@pin_option
@quiet_option
@trace_option
@json_option
@click.option(
    "--hn-private",
    "hn_private_hex",
    help="The home network private key (hex): act as the SIDF and recover the SUPI.",
)
def usim_suci(
    reader_spec: str | None,
    image: str | None,
    preset: str | None,
    seed: int | None,
    pin: str | None,
    quiet: bool,
    trace: bool,
    as_json: bool,
    hn_private_hex: str | None,
) -> None:
    """GET IDENTITY in the SUCI context (TS 31.102 §7.5): the USIM conceals its SUPI with
    the home network public key of its files (TS 33.501 Annex C). With --hn-private, the
    SUCI is de-concealed as the SIDF does (exit code 1 when the MAC tag does not verify).

    \b
    Examples:
      cardemu usim suci --card 5g.img
      cardemu usim suci --preset usim-5g --json \\
          --hn-private C53C22208B61860B06C62E5406A7B330C2B577AA5558981510D128247D38BD1D
    """
    hn_private = _hex(hn_private_hex, "--hn-private")
    shown = trace and not (quiet or as_json)
    with _usim(reader_spec, image, preset, seed, shown) as (session, _):
        session.select_usim()
        if pin:
            session.verify_pin(pin)
        suci = session.get_suci()
    doc: dict[str, object] = {
        "suci": str(suci),
        "mcc": suci.mcc,
        "mnc": suci.mnc,
        "routing_indicator": suci.routing_indicator,
        "scheme": suci.scheme,
        "key_id": suci.key_id,
        "scheme_output": suci.output.hex().upper(),
        "supi": None,
    }
    error = None
    if hn_private is not None:
        try:
            doc["supi"] = supi_from_suci(suci, hn_private)
        except (SuciError, ValueError) as e:
            error = f"de-concealment failed: {e}"
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"{'SUCI':<6}{doc['suci']}")
        if doc["supi"] is not None:
            click.echo(f"{'SUPI':<6}{doc['supi']}")
    if error:
        raise click.ClickException(error)
