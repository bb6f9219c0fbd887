"""What every part of the ISD-R shares: its state, the ECASD and the profile store.

The ISD-R (GSMA SGP.22 v2.x §2.4.3) is split by concern: `rsp` (ES10b
authentication and download preparation, ES10a addresses), `bpp` (loading a
Bound Profile Package), `profiles` (ES10c local profile management),
`notifications`, and `applet` (STORE DATA transport and dispatch). They meet
in `IsdrBase`:

- persistent: the ISD-R's own records in its store ("meta.<ICCID>" per
  profile, "ntf.*" notifications, "cfg" addresses, "isdp.next");
- transient (lost on reset, SGP.22 §3.1: an RSP session does not survive a
  reset): the RSP session (challenge, transaction, one-time key, BPP loader);
- the ECASD and the profile store, each reached through its Shareable
  interface (card.sgp22.ecasd, card.profiles).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, cast

from applets.isdr.notifications import NotificationList
from card.crypto.keys import EcKeyPair
from card.framework import Applet, CardError, transient
from card.profiles import PROFILE_STORE_AID, ProfileStoreInterface
from card.sgp22.certs import ServerCertificate, TrustedCi
from card.sgp22.ecasd import ECASD_AID, EcasdInterface
from card.sw import SW

__all__ = ["IsdrBase", "Session", "isdp_aid"]

#: SGP.22 §2.2.3: ISD-P AIDs are in the range A0000005591010FFFFFFFF89 00001000 and up.
ISDP_AID_PREFIX = bytes.fromhex("A0000005591010FFFFFFFF89")


def isdp_aid(index: int) -> bytes:
    """The AID of the n-th ISD-P created (A0000005591010FFFFFFFF8900001000, ...1100, ...)."""
    return ISDP_AID_PREFIX + (0x1000 + 0x100 * index).to_bytes(4, "big")


def preloaded_isdp_aid(iccid: str) -> bytes:
    """A stable AID for a profile the ISD-R did not download (installed at manufacture)."""
    return ISDP_AID_PREFIX + b"\xff" + hashlib.sha256(iccid.encode()).digest()[:3]


@dataclass
class Session:
    """One RSP session (SGP.22 §3.1.2-3.1.3), in RAM."""

    challenge: bytes
    transaction_id: bytes | None = None
    server_address: str = ""
    server_challenge: bytes = b""
    dpauth: ServerCertificate | None = None
    euicc_signature1: bytes = b""
    dppb: ServerCertificate | None = None
    otsk: EcKeyPair | None = None
    otpk: bytes = b""
    bpp: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class IsdrBase(Applet):
    """State and collaborators shared by the ISD-R's parts."""

    multiselectable = True

    #: the ongoing RSP session, or None (transient: a reset ends it)
    session = transient(None)

    # -- collaborators -----------------------------------------------------------------

    def ecasd(self) -> EcasdInterface:
        proxy = self.system.get_shareable(ECASD_AID)
        if proxy is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        # The proxy exposes exactly the interface's methods (card.framework.shareable).
        return cast(EcasdInterface, proxy)

    def profile_store(self) -> ProfileStoreInterface:
        proxy = self.system.get_shareable(PROFILE_STORE_AID)
        if proxy is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return cast(ProfileStoreInterface, proxy)

    def notifications(self) -> NotificationList:
        return NotificationList(self.system.store)

    def trusted_cis(self) -> tuple[TrustedCi, ...]:
        return tuple(TrustedCi(*k) for k in self.ecasd().ci_keys())

    def revoked_serials(self) -> dict[bytes, frozenset[int]]:
        """The serial numbers each trusted CI revoked (`crl.CrlFunctions`); none here."""
        return {}

    # -- the ISD-R's own records --------------------------------------------------------

    def config(self) -> tuple[str | None, str]:
        dp, ds = self.system.store.get("cfg", (None, ""))
        return dp, ds

    def set_config(self, dp: str | None, ds: str) -> None:
        self.system.store.set("cfg", (dp, ds))

    def record(self, iccid: str) -> tuple[Any, ...] | None:
        """The ISD-R's record of a profile.

        Returns:
            (ISD-P AID, StoreMetadata DER, nickname, ConfigureISDP DER), or None.
        """
        return self.system.store.get("meta." + iccid)

    def set_record(self, iccid: str, value: tuple[Any, ...] | None) -> None:
        if value is None:
            self.system.store.delete("meta." + iccid)
        else:
            self.system.store.set("meta." + iccid, value)

    def next_isdp(self) -> int:
        return int(self.system.store.get("isdp.next", 0))
