"""The card's proactive session (ETSI TS 102 223 §6.2-§6.4, TS 102 221 §7.4.2 and §14).

One `ProactiveSession` per card, volatile (a reset ends it), held by the
runtime (`CardRuntime.toolkit`) as a UICC's toolkit framework is part of its
OS. Applets queue proactive commands with `JCSystem.send_proactive`; the card
signals the first one waiting by ending its next successful answer with
`91 xx` instead of `90 00` (xx: the length of the command); the terminal FETCHes
it (80 12, Le = xx), performs it and sends a TERMINAL RESPONSE (80 14). Only then
is the next command signalled (§6.4: one proactive command at a time). The
terminal response goes back to the applet that issued the command
(`Applet.on_terminal_response`, run in its context).

Also here: the Shareable interfaces between the UICC platform and the ISD for
remote management (TS 102 226): the ISD offers `RemoteManagementInterface` to
the UICC platform (which receives the SMS-PP envelopes); the UICC platform
offers `RemoteFileInterface` to the ISD for the RFM TARs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from card.framework.shareable import Shareable
from card.ota.cat import CatError, ProactiveCommand, TerminalResponse
from card.sw import SW, CardError

#: get_shareable parameter asking the ISD for remote management.
REMOTE_MANAGEMENT_PARAMETER = 0x80
#: get_shareable parameter asking the UICC platform for remote file management.
REMOTE_FILE_PARAMETER = 0x81

SW_NO_PROACTIVE_COMMAND = 0x6F00  # FETCH with nothing fetched: TS 102 221 gives no code
MAX_QUEUE = 8


@dataclass
class _Queued:
    issuer: bytes | None
    command: bytes


@dataclass
class ProactiveSession:
    """Proactive commands waiting, the one fetched, and the terminal's profile."""

    queue: list[_Queued] = field(default_factory=list)
    fetched: _Queued | None = None
    terminal_profile: bytes | None = None
    _number: int = 0

    def clear(self) -> None:
        """Reset or power off: everything in flight is lost (§6.2)."""
        self.queue.clear()
        self.fetched = None
        self.terminal_profile = None

    def submit(self, issuer: bytes | None, command: ProactiveCommand) -> int:
        """Queue a proactive command; returns the command number given to it.

        Raises:
            CardError: 6A84 when the queue is full.
        """
        if len(self.queue) >= MAX_QUEUE:
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        self._number = self._number % 0xFE + 1
        numbered = ProactiveCommand(
            self._number, command.type, command.qualifier, command.destination, command.items
        )
        self.queue.append(_Queued(issuer, numbered.to_bytes()))
        return self._number

    def pending_length(self) -> int:
        """What `91 xx` announces: the next command's length, 0 when none may be fetched."""
        if self.fetched is not None or not self.queue:
            return 0
        return len(self.queue[0].command)

    def fetch(self, ne: int | None) -> bytes:
        """FETCH (TS 102 221 §10.1.1, TS 102 223 §6.3): the command announced.

        Raises:
            CardError: 6F00 with nothing to fetch; 6700 / 6Cxx for a wrong Le.
        """
        if self.fetched is not None:
            # The terminal asks again (a lost answer): the same command.
            cmd = self.fetched.command
        elif self.queue:
            self.fetched = self.queue.pop(0)
            cmd = self.fetched.command
        else:
            raise CardError(SW_NO_PROACTIVE_COMMAND)
        if ne is not None and ne not in (len(cmd), 256) and ne < len(cmd):
            raise CardError(0x6C00 | len(cmd))
        return cmd

    def terminal_response(self, data: bytes) -> tuple[bytes | None, bytes, TerminalResponse]:
        """TERMINAL RESPONSE (§6.8): (issuer AID, the command, the response decoded).

        Raises:
            CardError: 6F00 with no command fetched; 6A80 a response that does not
                decode or names another command.
        """
        fetched = self.fetched
        if fetched is None:
            raise CardError(SW_NO_PROACTIVE_COMMAND)
        try:
            resp = TerminalResponse.from_bytes(data)
            cmd = ProactiveCommand.from_bytes(fetched.command)
        except CatError:
            raise CardError(SW.WRONG_DATA) from None
        if resp.details[:2] != cmd.details[:2]:
            raise CardError(SW.WRONG_DATA)
        self.fetched = None
        return fetched.issuer, fetched.command, resp


class RemoteManagementInterface(Shareable):
    """What the ISD offers the UICC platform: run one secured command packet (TS 102 225/226)."""

    def process_command_packet(self, packet: bytes) -> bytes | None:
        """Check and run a command packet; the response packet (RPL..), or None for no PoR."""
        raise NotImplementedError


class RemoteFileInterface(Shareable):
    """What the UICC platform offers the ISD: run an RFM script for a TAR (TS 102 226 §6)."""

    def run_rfm_script(self, tar: bytes, script: bytes) -> bytes:
        """Run the script; its compact or expanded response.

        Raises:
            KeyError: no RFM application for this TAR.
        """
        raise NotImplementedError
