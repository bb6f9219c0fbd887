"""`cardemu serve`: put an emulated card on the real PC/SC stack through vsmartcard's vpcd."""

from __future__ import annotations

import functools
import logging
import os
import signal

import click

from card.nvm import NvmError
from card.runtime import CardRuntime
from host.commands.common import Interrupted
from host.presets import DEFAULT_PRESET, PRESETS, new_card
from host.readers.registry import image_error
from host.vpcd import (
    VPCD_PORT,
    VPCD_SLOTS,
    SlotClaim,
    SlotTaken,
    VpcdClient,
    VpcdEvent,
    serve_until_signalled,
    waiting_for,
)

log = logging.getLogger("cardemu.serve")


def open_or_preset(image: str | None, preset: str, seed: int | None) -> CardRuntime:
    """A card image if given (created from the preset when it does not exist yet), else a preset."""
    if image is None:
        return new_card(preset, rng_seed=seed)
    try:
        if not os.path.lexists(image):
            return new_card(preset, image, rng_seed=seed)
        return CardRuntime(image, rng_seed=seed, create=False)
    except NvmError as e:
        raise click.ClickException(image_error(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot create {image}: {e.strerror or e}") from None


@click.command(short_help="Serve a card to pcscd through vpcd.")
@click.argument("image", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=DEFAULT_PRESET,
    show_default=True,
    help="Built-in card to serve (or to create IMAGE from when it does not exist).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=VPCD_PORT,
    show_default=True,
    help="vpcd port (of slot 0; --slot picks the other).",
)
@click.option(
    "--slot",
    type=click.IntRange(0, VPCD_SLOTS - 1),
    help="vpcd slot: port 35963 + SLOT (slot 1 = 'Virtual PCD 00 01').",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="vpcd address.")
@click.option("--seed", type=int, help="Seed the card's RNG.")
def serve(
    image: str | None, preset: str, port: int, slot: int | None, host: str, seed: int | None
) -> None:
    """Serve a card to pcscd through vsmartcard's virtual reader (vpcd).

    Any PC/SC program then sees the card in reader 'Virtual PCD 00 00' (or 00 01
    with --slot 1). The card waits for pcscd if it is not up yet (saying so on
    stderr) and reconnects when vpcd drops it. One card per slot: a slot another
    `cardemu serve` holds is refused. SIGINT (exit code 130) and SIGTERM stop it;
    a card image is saved on exit. The image stays locked while it is served:
    other commands reach the card through the reader (`cardemu send -r "PCD 00 00"
    …`), not with --card.

    \b
    Examples:
      cardemu serve                       # the demo card, in memory
      cardemu serve my.card               # a card image (created if absent)
      cardemu serve --preset demo --slot 1
    """
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise click.BadParameter(
            "vpcd runs on this machine: use a loopback address", param_hint="--host"
        )
    if slot is not None:
        source = click.get_current_context().get_parameter_source("port")
        if source != click.core.ParameterSource.DEFAULT and port != VPCD_PORT + slot:
            raise click.UsageError("--slot sets the port: give --slot or --port, not both")
        port = VPCD_PORT + slot
    try:
        claim = SlotClaim(host, port)
    except SlotTaken as e:
        raise click.ClickException(f"{e}: stop it first, or serve on another --slot") from None
    with claim:
        card = open_or_preset(image, preset, seed)
        name = image or f"preset {preset}"
        reader = (
            f"reader 'Virtual PCD 00 {port - VPCD_PORT:02d}'"
            if 0 <= port - VPCD_PORT < VPCD_SLOTS
            else "its vpcd reader"
        )

        def on_event(event: VpcdEvent) -> None:
            click.echo(f"{name}: {event.name.lower().replace('_', ' ')}", err=True)

        def on_waiting() -> None:
            click.echo(f"{name}: waiting for {waiting_for(host, port)}", err=True)

        def banner() -> None:
            click.echo(
                f"serving {name} to vpcd at {host}:{port} ({reader}); Ctrl-C to stop", err=True
            )

        client = VpcdClient(card, host=host, port=port, on_event=on_event, on_waiting=on_waiting)
        try:
            stopped_by = serve_until_signalled(client, banner)
        finally:
            card.close()
    click.echo(f"{name}: stopped after {client.apdu_count} APDUs", err=True)
    if stopped_by == signal.SIGINT:
        raise Interrupted("")


def demo_card_factory(preset: str, seed: int | None) -> CardRuntime:
    return new_card(preset, rng_seed=seed)


def card_factory(preset: str) -> functools.partial[CardRuntime]:
    return functools.partial(demo_card_factory, preset, 1)
