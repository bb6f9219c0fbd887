"""The profile store interface: how the platform and the ISD-R manage an eUICC's profiles.

On a real eUICC the profiles live in ISD-Ps and the ISD-R enables, disables and
deletes them (GSMA SGP.22 §2.2, §5.7). Here one applet (applets.usim's
`UiccApplet`, the UICC platform with its USIM) holds every profile; what it
offers other applets is this Shareable interface, looked up by
`PROFILE_STORE_AID` with `system.get_shareable(...)`. The interface and its
error type live in card/ because both sides need them and applets never import
each other (the role a Java Card export file plays).

Exactly one profile (or none) is enabled; the enabled profile's MF and USIM are
what the terminal sees. Switching is atomic (one transaction) and resets the
terminal's view as an eUICC's REFRESH does: every logical channel is back at
the MF with no PIN verified at its next command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from card.framework.shareable import Shareable

#: The applet holding the profiles: the "CARDEMU" proprietary RID family, PIX "UIC".
PROFILE_STORE_AID = bytes.fromhex("F043415244454D55554943")
#: GSMA SGP.22 §2.2.3: the AID of the ISD-R, a client granted the interface.
ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
#: Seed 003's move agent (applets.profile_move): backs profiles up, installs and deletes moved ones.
MOVE_AGENT_AID = bytes.fromhex("F043415244454D554D56")
#: The applets the profile store grants its interface to.
PROFILE_STORE_CLIENTS = frozenset({ISD_R_AID, MOVE_AGENT_AID})


class ProfileStoreReason(Enum):
    """Why an operation was refused (close to the result codes of SGP.22 §5.7)."""

    ICCID_NOT_FOUND = "iccid-or-aid-not-found"
    ICCID_EXISTS = "iccid-already-exists"
    NOT_DISABLED = "profile-not-in-disabled-state"
    NOT_ENABLED = "profile-not-in-enabled-state"
    BAD_FORMAT = "invalid-profile"
    NO_MEMORY = "insufficient-memory"
    APPLICATION = "application-error"
    #: the stored profile fails its integrity check: it cannot be used (nor exported)
    DAMAGED = "profile-damaged"


class ProfileStoreError(Exception):
    """A profile operation the store refused; `reason` says why."""

    def __init__(
        self,
        reason: ProfileStoreReason,
        message: str = "",
        *,
        pe_id: int | None = None,
        pe_status: int | None = None,
    ) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message or reason.value
        #: for a profile package: the PE at fault and its PEStatus code (TCA EUICCResponse)
        self.pe_id = pe_id
        self.pe_status = pe_status

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProfileSummary:
    """What GetProfilesInfo shows of one profile (no secret in it)."""

    iccid: str
    name: str
    provider: str
    enabled: bool
    imsi: str | None = None
    apps: tuple[bytes, ...] = ()
    #: the profile's metadata (`Profile.metadata`, public key/values such as a seed 003
    #: move binding's), stored with it at install time: what the ISD-R looks at before
    #: an enable without reading the whole profile back (card.profile_binding)
    metadata: tuple[tuple[str, str], ...] = ()
    #: its metadata record is damaged: only `iccid` ("" if the record names none) and
    #: `enabled` are known; it cannot be enabled and can be deleted
    damaged: bool = False


class ProfileStoreInterface(Shareable):
    """The operations of the profile store (each one atomic; see the module docstring)."""

    def list_profiles(self) -> tuple[ProfileSummary, ...]:
        """Every installed profile, in installation order (a damaged one flagged so)."""
        raise NotImplementedError

    def enabled_profile(self) -> str | None:
        """The ICCID of the enabled profile, or None; an enabled profile the card does not
        run (damaged, or failing its activation check) is enabled all the same, and one
        whose damaged metadata record names no ICCID any more gives ""."""
        raise NotImplementedError

    def install_profile(self, data: bytes) -> str:
        """Install an exported profile (disabled); returns its ICCID."""
        raise NotImplementedError

    def install_profile_package(self, package: bytes, name: str = "", provider: str = "") -> str:
        """Install a profile from an eUICC Profile Package (disabled); returns its ICCID.

        `package` is the unprotected profile package of GSMA SGP.22 §2.5.2: the
        TCA Interoperable Format profile elements, DER, back to back. A refusal
        is a ProfileStoreError whose `pe_id` / `pe_status` name the PE at fault.
        Joins the caller's transaction if one is open (the ISD-R installs the
        profile and writes its own records atomically).
        """
        raise NotImplementedError

    def enable_profile(self, iccid: str) -> None:
        """Enable a disabled profile, disabling the one enabled before.

        A profile whose stored form fails the store's integrity check is refused
        (reason DAMAGED) and nothing changes. A profile carrying a seed 003 move
        binding is checked (FIG. 4) by the caller before it calls this, as both
        clients do (the ISD-R's ES10c EnableProfile, the move agent's ACTIVATE): the
        store counts the profile it enables activated on that check, and checks it
        again only at the next power-up or reset.
        """
        raise NotImplementedError

    def disable_profile(self, iccid: str) -> None:
        """Disable the enabled profile: no profile is enabled afterwards."""
        raise NotImplementedError

    def delete_profile(self, iccid: str) -> None:
        """Delete a disabled profile and the applications installed with it."""
        raise NotImplementedError

    def nameless_slots(self) -> tuple[int, ...]:
        """The slots of profiles whose damaged metadata record names no ICCID any more:
        no function that takes an ICCID reaches them (`delete_nameless_slot` does)."""
        raise NotImplementedError

    def delete_nameless_slot(self, number: int) -> None:
        """Delete the profile in slot `number` (one of `nameless_slots`), disabling it
        first if it is enabled; atomic, and joins the caller's transaction."""
        raise NotImplementedError

    def export_profile(self, iccid: str, with_secrets: bool = True) -> bytes:
        """The profile in the export format, with its current state (SQN, PINs, files)."""
        raise NotImplementedError

    def uicc_capability(self) -> tuple[int, ...]:
        """The UICCCapability bits (SGP.22 Annex H) of what this store installs and runs.

        The ISD-R reports them in EUICCInfo2; a package that mandates anything else is
        refused by `install_profile_package`.
        """
        raise NotImplementedError
