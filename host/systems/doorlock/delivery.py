"""How the application management server gets an install script onto a SIM: one small interface.

`AppletDelivery.deliver(device, script) -> Receipt`. The server builds the
script (`card.InstallScript`: GlobalPlatform commands in clear) and checks the
receipt; how the commands travel, and what protects them, is the delivery's.

- `DirectGpDelivery`: a GlobalPlatform SCP03 session (Amendment D) to the
  SIM's ISD through a reader the server has for the device. Every command
  is C-MAC'd and its data enciphered (C-DECRYPTION), every answer R-MAC'd,
  so each status word in the receipt is the card's and checked as such. It stands for the remote
  administration sessions (GP Amendment B, SCP81) an operator opens over a
  data connection; in-process, the reader is the device's SIM itself.

Over the air (ETSI TS 102 225/226 secured packets in SMS-PP) is the other
implementation of the same interface, and the default: `ota.OtaDelivery`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from card.apdu import CommandApdu
from host.errors import ApduError, SecureChannelError
from host.readers.base import Reader, ReaderError
from host.systems.doorlock.card import DELETE_ABSENT_OK, InstallScript

__all__ = ["AppletDelivery", "DeliveryError", "DirectGpDelivery", "Receipt"]

_NAMES = {0x02: "INSTALL [for load]", 0x0C: "INSTALL [for install and make selectable]"}
_NAMES[0x20] = "INSTALL [for personalization]"
_NAMES[0x04] = "INSTALL [for install]"
_NAMES[0x08] = "INSTALL [for make selectable]"


class DeliveryError(Exception):
    """The script could not be delivered at all (no route to the device, no session)."""


@dataclass(frozen=True)
class Receipt:
    """What came back from the card: one status word per command (the proofs of receipt).

    Attributes:
        device: where the script went.
        path: how ("gp-direct", "ota-sms-pp").
        statuses: the card's status word for each command delivered, in order.
        expected: how many commands the script held.
        detail: a line on a failure.
        refused: the index of the command the card refused (None: none was).
    """

    device: str
    path: str
    statuses: tuple[int, ...]
    expected: int
    detail: str = ""
    refused: int | None = None
    proofs: tuple[bytes, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Every command delivered and none refused."""
        return len(self.statuses) == self.expected and self.refused is None

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "path": self.path,
            "ok": self.ok,
            "statuses": [f"{s:04X}" for s in self.statuses],
            "expected": self.expected,
            "detail": self.detail,
        }


class AppletDelivery(Protocol):
    """Puts an install script on a device's SIM."""

    path: str

    def deliver(self, device: str, script: InstallScript) -> Receipt:
        """Run `script` on `device`'s SIM; the card's answers.

        Raises:
            DeliveryError: the device cannot be reached.
        """
        ...


def _name(apdu: bytes) -> str:
    if apdu[1] == 0xE6:
        return _NAMES.get(apdu[2] & 0x7F, "INSTALL")
    return {0xE8: "LOAD", 0xE2: "STORE DATA", 0xE4: "DELETE"}.get(apdu[1], f"INS {apdu[1]:02X}")


class DirectGpDelivery:
    """An SCP03 session to the ISD of the device's SIM, through the reader routed to it.

    Args:
        routes: device id -> a function giving a reader to its SIM (None: unreachable).
        keys: the ISD's SCP03 keys (default: the GP test keys, key version 30).
    """

    path = "gp-direct"

    def __init__(self, routes: Mapping[str, Callable[[], Reader | None]], keys: Any = None) -> None:
        self.routes = dict(routes)
        self.keys = keys

    def deliver(self, device: str, script: InstallScript) -> Receipt:
        from card.gp.isd import UICC_ISD_AID
        from card.gp.scp03 import SecurityLevel
        from host.gp.client import GpClient
        from host.systems.doorlock.terminal import close_channel
        from host.systems.repository.card import ChannelReader, open_channel

        route = self.routes.get(device)
        reader = route() if route is not None else None
        if reader is None:
            raise DeliveryError(f"no route to {device}")
        commands = script.commands()
        # A logical channel of its own: the basic channel stays the UICC's (the phone's).
        try:
            channel = open_channel(reader)
            # C-DECRYPTION: STORE DATA carries keys (GPC Amendment D §6.2.6); R-MAC too.
            level = SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION | SecurityLevel.R_MAC
            # The SIM's ISD is at the UICC's card manager AID (host.presets.install_uicc_ota).
            gp = GpClient(
                ChannelReader(reader, channel), self.keys, level=level, isd_aid=UICC_ISD_AID
            )
            gp.open()
        except (ApduError, SecureChannelError, ReaderError) as e:
            raise DeliveryError(f"no secure channel to {device}'s ISD: {e}") from None
        statuses: list[int] = []
        detail = ""
        refused: int | None = None
        try:
            for n, apdu in enumerate(commands):
                ok = (0x9000, DELETE_ABSENT_OK) if apdu[1] == 0xE4 else (0x9000,)
                try:
                    _, sw = gp.send(CommandApdu.from_bytes(apdu), _name(apdu), ok)
                except ApduError as e:
                    statuses.append(e.sw)
                    detail, refused = f"{_name(apdu)} refused: {e.sw:04X}", n
                    break
                statuses.append(sw)
        except (ReaderError, SecureChannelError) as e:
            detail = f"the session broke: {e}"
        finally:
            with contextlib.suppress(ReaderError, SecureChannelError, ApduError):
                gp.close()
                close_channel(reader, channel)
        return Receipt(device, self.path, tuple(statuses), len(commands), detail, refused)
