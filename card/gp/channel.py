"""The ISD's per-channel state: the SCP03 session and the multi-command operations in flight.

A Secure Channel Session belongs to one logical channel and ends when the
Security Domain is deselected there or the card is reset (GPC v2.3.1 §10.2.3,
Amendment D §5.1.3); the ISD keeps all of this in the channel's volatile state,
which the runtime clears on deselect and reset. Along with the session go the
operations that span several commands: a load in progress (INSTALL [for load]
then LOAD blocks, §11.6.2), the target of INSTALL [for personalization]
(§11.11.2.2) and GET STATUS entries left after a 6310 (§11.4.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from card.apdu import CommandApdu
from card.gp.scp03 import Scp03Keys, Scp03Session, SecurityLevel
from card.ota.scp80 import OtaKeyset


@dataclass
class PendingLoad:
    """An INSTALL [for load] accepted, its LOAD blocks arriving (§11.6.2)."""

    elf_aid: bytes
    sd_aid: bytes
    lfdb_hash: bytes
    next_block: int = 0
    data: bytearray = field(default_factory=bytearray)


@dataclass
class PendingStatus:
    """GET STATUS entries left after a 6310, for P2 b1 = 1 ("next")."""

    subset: int
    tlv_format: bool
    items: list[bytes]
    next_index: int


@dataclass
class ChannelGp:
    """The ISD's volatile state on one logical channel."""

    session: Scp03Session | None = None
    keyset: Scp03Keys | None = None
    load: PendingLoad | None = None
    perso: bytes | None = None
    status: PendingStatus | None = None
    #: in a RAM script (TS 102 226): the SCP80 key set of its packet, whose DEK PUT KEY uses
    ota_keyset: OtaKeyset | None = None

    def reset(self) -> None:
        """End the session and everything that depended on it."""
        self.session = None
        self.keyset = None
        self.load = None
        self.perso = None
        self.status = None

    @property
    def level(self) -> SecurityLevel | None:
        """The security level of the authenticated session, None outside one."""
        s = self.session
        return s.level if s is not None and s.authenticated else None


@dataclass(frozen=True)
class Command:
    """A command as the ISD handles it: unwrapped, with the level that protected it."""

    apdu: CommandApdu
    level: SecurityLevel | None  # None: outside an authenticated session
    channel: int

    @property
    def cm_authorised(self) -> bool:
        """Authenticated with at least C-MAC: what content management needs (§10.2)."""
        return self.level is not None and bool(self.level & SecurityLevel.C_MAC)
