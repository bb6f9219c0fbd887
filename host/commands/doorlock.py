"""`cardemu doorlock issue|lock|phone`: seed 001's lock controller and phone as separate programs.

Each program drives its own emulated SIM (a card image, or the demo door built
in memory) and neither sees a key: what crosses their loopback TCP link is
the chips' challenges, answers and certificates (`host.systems.doorlock.terminal`).
The lock listens, as a door waits for phones; the phone dials it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import click

from host.commands.common import EXIT_FAILED, CommandError, Interrupted, json_option

DEMO = "demo"


@click.group(short_help="Run seed 001's door lock or phone alone.")
def doorlock() -> None:
    """Seed 001's door lock and phone as separate programs, over a loopback TCP link.

    `issue` makes a door's SIMs as card images (the server's store beside them
    holds the keys); `lock` drives the lock's SIM and waits for phones; `phone`
    drives a phone's SIM and dials the lock. --preset demo builds the demo door's
    SIM in memory instead of opening an image (the same door in both programs).

    \b
    Examples:
      cardemu doorlock issue door
      cardemu doorlock lock --listen 8830 --card door/lock-sim.img &
      cardemu doorlock phone --connect 8830 --card door/phone-1-sim.img
      cardemu doorlock lock --listen 8831 --preset demo --method 2 &
      cardemu doorlock phone --connect 8831 --preset demo --json
    """


@doorlock.command("issue", short_help="Make a door's SIMs as card images.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the keys drawn.")
@click.option(
    "--without-applet",
    multiple=True,
    type=click.Choice(["phone-1", "phone-2"]),
    help="A phone whose SIM gets no door-lock applet (repeatable).",
)
def issue(directory: str, seed: int, without_applet: tuple[str, ...]) -> None:
    """Issue the demo door into DIRECTORY: the lock's SIM and two phones' SIMs.

    An application management server (its store DIRECTORY/ams.sqlite: the
    registry, the issuer key, the door key) pushes the applet to the lock's SIM
    (lock role) and enrols the phones (key role) through each SIM's ISD (SCP03).
    Writes lock-sim.img, phone-1-sim.img and phone-2-sim.img; an image already
    there is never replaced.

    \b
    Examples:
      cardemu doorlock issue door
      cardemu doorlock issue door2 --seed 7 --without-applet phone-2
    """
    import os

    from host.systems.doorlock.demo import PHONE_SIMS, issue_door

    os.makedirs(directory, exist_ok=True)
    images = {p: os.path.join(directory, f"{p}-sim.img") for p in PHONE_SIMS}
    lock_image = os.path.join(directory, "lock-sim.img")
    for path in (lock_image, *images.values(), os.path.join(directory, "ams.sqlite")):
        if os.path.lexists(path):
            raise CommandError(f"{path} already exists (never replaced)")
    lock, phones = issue_door(
        lock_image=lock_image,
        phone_images=dict(images),
        ams=os.path.join(directory, "ams.sqlite"),
        seed=seed,
        without_applet=without_applet,
    )
    for rt in (lock, *phones.values()):
        rt.close()
    click.echo(lock_image)
    for p, path in images.items():
        click.echo(f"{path}{' (no applet)' if p in without_applet else ''}")


def _sim(card: str | None, preset: str | None, role: str, phone: str) -> Any:
    """The SIM a program drives: an image opened, or the demo door's in memory."""
    from card.nvm import NvmError
    from card.runtime import CardRuntime

    if (card is None) == (preset is None):
        raise click.UsageError("give one of --card IMAGE or --preset demo")
    if card is not None:
        try:
            rt = CardRuntime(card, create=False)
        except (NvmError, OSError) as e:
            raise CommandError(f"{card}: {e}") from None
        rt.power_on()
        return rt
    from host.systems.doorlock.demo import issue_door

    lock, phones = issue_door()
    return lock if role == "lock" else phones[phone]


def _modem(rt: Any, smsc_url: str | None) -> tuple[Any, Any]:
    """(a reader to the SIM, its modem or None): with an SMS centre, a toolkit terminal
    (TERMINAL PROFILE sent) serving the SIM's proactive commands under its MSISDN."""
    from host.readers.inprocess import InProcessReader

    plain = InProcessReader(rt)
    if smsc_url is None:
        return plain, None
    from host.ota import ToolkitTerminal
    from host.servers.smsc import SmscClient
    from host.usim import UsimSession

    msisdn = UsimSession(plain).read().msisdn
    if not msisdn:
        raise CommandError("the SIM gives no MSISDN: no short messages")
    modem = ToolkitTerminal(plain, msisdn=msisdn, smsc=SmscClient(smsc_url))
    modem.start()
    return modem.as_reader(), modem


smsc_option = click.option(
    "--smsc",
    "smsc_url",
    help="The SMS centre (`cardemu server smsc`): a missing applet comes over the air.",
)

card_option = click.option(
    "--card", type=click.Path(exists=True, dir_okay=False), help="The SIM's card image."
)
preset_option = click.option(
    "--preset", type=click.Choice([DEMO]), help="The demo door's SIM, built in memory."
)


@doorlock.command("lock", short_help="Run the door-lock controller (it listens).")
@click.option(
    "--listen", "port", type=click.IntRange(0, 65535), required=True,
    help="The loopback TCP port phones dial (0: a free one, printed).",
)  # fmt: skip
@card_option
@preset_option
@click.option("--method", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="1: shared-key challenge-response; 2: certificates (ECDSA P-256).")  # fmt: skip
@click.option("--count", type=click.IntRange(1), default=1, show_default=True,
              help="Presentations to serve before exiting.")  # fmt: skip
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for each phone (and for a phone's new applet).")  # fmt: skip
@smsc_option
@json_option
def lock(
    port: int,
    card: str | None,
    preset: str | None,
    method: str,
    count: int,
    timeout: float,
    smsc_url: str | None,
    as_json: bool,
) -> int:
    """Drive the lock's SIM and serve phones held to the door (S101-S110).

    Each phone that connects is one presentation: the lock's chip challenges it,
    collates its answer and decides; the controller opens the door or reports
    the chip's reason. One line per presentation (a JSON object with --json).
    Exits 0 when every presentation unlocked, 1 otherwise.

    With --smsc, a phone whose SIM has no applet is not turned away: the lock's
    chip sends its signed download request by SMS (SEND SHORT MESSAGE, through
    the controller's modem) to the application management server (`cardemu
    server doorlock-ams --smsc`), and the controller asks the phone again once
    a second until its new applet answers (up to --timeout).

    \b
    Examples:
      cardemu doorlock issue door
      cardemu doorlock lock --listen 8830 --card door/lock-sim.img &
      cardemu doorlock phone --connect 8830 --card door/phone-1-sim.img
      cardemu doorlock lock --listen 8831 --preset demo --method 2 --count 2 &
      cardemu doorlock phone --connect 8831 --preset demo
      cardemu doorlock phone --connect 8831 --preset demo --phone phone-2
    """
    from host.servers.web import bind_socket
    from host.systems.doorlock.terminal import (
        DownloadFailed,
        LinkError,
        LockController,
        SmsUplink,
        TcpLink,
    )

    rt = _sim(card, preset, "lock", "")
    try:
        reader, modem = _modem(rt, smsc_url)
        uplink = SmsUplink(modem=modem) if modem is not None else None
        controller = LockController(reader, ams=uplink, fetch_wait=timeout)
        server = bind_socket("127.0.0.1", port)
        server.listen(4)
        server.settimeout(timeout)
        click.echo(f"lock: listening on 127.0.0.1:{server.getsockname()[1]}", err=True)
        unlocked = 0
        try:
            for _ in range(count):
                try:
                    conn, _peer = server.accept()
                except TimeoutError:
                    raise CommandError(f"no phone came in {timeout:.0f} s") from None
                conn.settimeout(timeout)
                link = TcpLink.on_socket(conn)
                try:
                    result = controller.present(link, int(method))
                    out = result.to_json()
                except (LinkError, DownloadFailed, OSError) as e:
                    out = {"method": int(method), "unlocked": False, "error": str(e)}
                finally:
                    link.close()
                unlocked += bool(out["unlocked"])
                if as_json:
                    click.echo(json.dumps(out))
                elif out["unlocked"]:
                    click.echo("unlocked" + ("" if out["lock_authentic"] else " (lock unchecked)"))
                else:
                    reason = out.get("decision") and out["decision"]["reason"]
                    click.echo(f"refused: {reason or out.get('error') or 'no decision'}")
        except KeyboardInterrupt:
            click.echo(f"lock: stopped ({unlocked} unlocked)", err=True)
            raise Interrupted("") from None
        finally:
            server.close()
    finally:
        rt.close()
    return 0 if unlocked == count else EXIT_FAILED


@doorlock.command("phone", short_help="Run a phone: dial the lock and answer it.")
@click.option(
    "--connect", "port", type=click.IntRange(1, 65535), required=True,
    help="The lock's loopback TCP port.",
)  # fmt: skip
@card_option
@preset_option
@click.option(
    "--phone", "which", type=click.Choice(["phone-1", "phone-2"]), default="phone-1",
    show_default=True, help="Which demo phone (its IMEI; its SIM with --preset).",
)  # fmt: skip
@click.option("--imei", help="The phone's IMEI (default: the demo phone's).")
@click.option("--wait", type=float, default=30.0, show_default=True,
              help="Seconds to keep dialling until the lock answers.")  # fmt: skip
@smsc_option
@json_option
def phone(
    port: int,
    card: str | None,
    preset: str | None,
    which: str,
    imei: str | None,
    wait: float,
    smsc_url: str | None,
    as_json: bool,
) -> int:
    """Drive a phone's SIM: dial the lock, answer its challenges, check its answer.

    Prints what the phone learnt (unlocked or refused, and whether the lock's
    chip proved itself). Exits 0 when the door unlocked, 1 otherwise.

    With --smsc its modem polls the SMS centre twice a second while the phone
    is at the door and hands each SMS-PP download to the SIM: the applet the
    lock asked for arrives that way (RAM in SCP80 secured packets).

    \b
    Examples:
      cardemu doorlock issue door
      cardemu doorlock lock --listen 8830 --card door/lock-sim.img &
      cardemu doorlock phone --connect 8830 --card door/phone-1-sim.img
      cardemu doorlock lock --listen 8831 --preset demo &
      cardemu doorlock phone --connect 8831 --preset demo --json
    """
    from host.systems.doorlock.demo import PHONE_IMEIS
    from host.systems.doorlock.terminal import PhoneHost, serve_link

    rt = _sim(card, preset, "phone", which)
    stop = threading.Event()
    guard = threading.Lock()  # one SIM: the link and the modem take turns
    try:
        reader, modem = _modem(rt, smsc_url)
        handset = PhoneHost(reader, imei=imei or PHONE_IMEIS[which])
        if modem is not None:

            def poll() -> None:
                while not stop.wait(0.5):
                    try:
                        with guard:
                            modem.poll_smsc()
                    except Exception as e:  # noqa: BLE001 - the network may come back
                        click.echo(f"phone: polling the SMS centre: {e}", err=True)

            threading.Thread(target=poll, name="phone-modem", daemon=True).start()
        deadline = time.monotonic() + wait
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise CommandError(f"no lock on 127.0.0.1:{port} in {wait:.0f} s") from None
                time.sleep(0.1)
        with sock:
            serve_link(sock, handset, guard)
    finally:
        stop.set()
        with guard:
            rt.close()
    last = handset.last
    out = {
        "unlocked": bool(last.get("unlocked")),
        "reason": last.get("reason", "no verdict came"),
        "lock_authentic": bool(last.get("lock_authentic")),
    }
    if as_json:
        click.echo(json.dumps(out))
    elif out["unlocked"]:
        click.echo("unlocked; the lock " + ("proved itself" if out["lock_authentic"] else
                                            "did NOT prove itself"))  # fmt: skip
    else:
        click.echo(f"refused: {out['reason'] or 'no reason given'}")
    return 0 if out["unlocked"] and out["lock_authentic"] else EXIT_FAILED
