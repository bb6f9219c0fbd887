"""ES10c, local profile management: GSMA SGP.22 v2.x §5.7.15-5.7.21 (and GetEID, §5.7.20).

The profiles themselves (files, keys, state) are in the profile store
(card.profiles, reached through its Shareable interface). The ISD-R keeps what
SGP.22 adds on top, per ICCID ("meta.<ICCID>" in its store): the ISD-P AID,
the StoreMetadata request as the SM-DP+ sent it (DER), the nickname and the
ConfigureISDP request (DER). A profile the ISD-R did not download (installed
at manufacture) has no record: it shows as an operational profile with the
store's name and provider and a stable AID derived from its ICCID.

Enable, disable and delete make the notifications the profile's
notificationConfigurationInfo asks for (§5.7.16-18), signed, in the same
transaction as the change; profile policy rules PPR1 (no disable) and PPR2 (no
delete) give disallowedByPolicy. A profile carrying a seed 003 move binding is
enabled only if it passes the FIG. 4 check (card.profile_binding), as the move
agent's ACTIVATE requires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from applets.isdr.base import IsdrBase, preloaded_isdp_aid
from card.nvm import OutOfMemory
from card.profile_binding import (
    MOVE_AGENT_AID,
    BindingError,
    ProfileBindingInterface,
    check_with_policy,
    has_binding,
    metadata_has_binding,
)
from card.profiles import (
    ProfileStoreError,
    ProfileStoreInterface,
    ProfileStoreReason,
    ProfileSummary,
)
from card.sgp22 import asn1
from card.sgp22.values import NotificationEvent, bits_to_set, iccid_from_bytes, iccid_to_bytes
from card.tlv import TlvError, decode_tag
from card.uicc.fsstore import DamagedRecord
from card.uicc.profile import Profile, ProfileFormatError

__all__ = ["ProfileFunctions", "ProfileView"]

log = logging.getLogger("cardemu.card.isdr")

_T = TypeVar("_T")


class _GuardedStore:
    """The profile store as ES10c's Enable, Disable, Delete and MemoryReset use it.

    Each method the ISD-R uses, wrapped explicitly (typed, so mypy sees a misspelt
    one). What the store raises itself on its own damaged data -- a record it reads
    back that is not of the shape it wrote (`DamagedRecord`: a file-system record
    that does not decode, its "enabled" or "profiles" record of another shape; a
    profile failing its integrity check is ProfileStoreError DAMAGED already) -- and
    persistent memory found full in the middle of the operation (OutOfMemory)
    become ProfileStoreError(DAMAGED, or NO_MEMORY), so that the function answers
    its protocol error, undefinedError(127) (SGP.22 §5.7.16-19: the result for a
    reason the other codes do not name), after its transaction rolled back whole
    (`system.transaction` aborts on the exception). Nothing else is translated: a
    ValueError, TypeError or KeyError under a store call is a bug of the card's
    code, not damaged data, and escapes as 6F00, counted in `CardRuntime.exceptions`,
    as do a tear (PowerLoss), an unusable card image (NvmError), a firewall refusal
    (SecurityException) and an SW the store chose (CardError). The error's type is
    logged, never its text.
    """

    def __init__(self, store: ProfileStoreInterface) -> None:
        self._store = store

    def _call(self, name: str, fn: Callable[..., _T], *args: Any) -> _T:
        try:
            return fn(*args)
        except OutOfMemory:
            log.warning("profile store: %s ran out of persistent memory", name)
            raise ProfileStoreError(ProfileStoreReason.NO_MEMORY, "OutOfMemory") from None
        except DamagedRecord:
            log.warning("profile store: %s failed on damaged stored data", name)
            raise ProfileStoreError(ProfileStoreReason.DAMAGED, "DamagedRecord") from None

    def list_profiles(self) -> tuple[ProfileSummary, ...]:
        return self._call("list_profiles", self._store.list_profiles)

    def enable_profile(self, iccid: str) -> None:
        self._call("enable_profile", self._store.enable_profile, iccid)

    def disable_profile(self, iccid: str) -> None:
        self._call("disable_profile", self._store.disable_profile, iccid)

    def delete_profile(self, iccid: str) -> None:
        self._call("delete_profile", self._store.delete_profile, iccid)

    def nameless_slots(self) -> tuple[int, ...]:
        return self._call("nameless_slots", self._store.nameless_slots)

    def delete_nameless_slot(self, number: int) -> None:
        self._call("delete_nameless_slot", self._store.delete_nameless_slot, number)

    def export_profile(self, iccid: str, with_secrets: bool = True) -> bytes:
        return self._call("export_profile", self._store.export_profile, iccid, with_secrets)


CLASS_TEST, CLASS_PROVISIONING, CLASS_OPERATIONAL = 0, 1, 2
PPR_DISABLE_NOT_ALLOWED = 1
PPR_DELETE_NOT_ALLOWED = 2

# ProfileInfo field per tag (SGP.22 Annex H ProfileInfo, GetProfilesInfo tag lists).
_TAG_FIELDS = {
    0x5A: "iccid",
    0x4F: "isdpAid",
    0x9F70: "profileState",
    0x90: "profileNickname",
    0x91: "serviceProviderName",
    0x92: "profileName",
    0x93: "iconType",
    0x94: "icon",
    0x95: "profileClass",
    0xB6: "notificationConfigurationInfo",
    0xB7: "profileOwner",
    0xB8: "dpProprietaryData",
    0x99: "profilePolicyRules",
}

# EnableProfileResponse / DisableProfileResponse / DeleteProfileResponse results (SGP.22
# Annex H): ok, iccidOrAidNotFound, profileNotIn{Disabled,Enabled}State, disallowedByPolicy,
# undefinedError; the same numbers in all three (tests/unit/test_status_codes.py).
OK = 0
NOT_FOUND = 1
WRONG_STATE = 2
DISALLOWED = 3
UNDEFINED_ERROR = 127
PROFILE_INFO_INCORRECT_INPUT = 1  # ProfileInfoListError incorrectInputValues
RESET_NOTHING_TO_DELETE = 1  # EuiccMemoryResetResponse resetResult nothingToDelete
NICKNAME_ICCID_NOT_FOUND = 1  # SetNicknameResponse setNicknameResult iccidNotFound


@dataclass(frozen=True)
class ProfileView:
    """One profile as the ISD-R sees it (store summary + ISD-R record)."""

    iccid: str
    enabled: bool
    isdp_aid: bytes
    metadata: dict[str, Any]
    nickname: str | None
    dp_proprietary: dict[str, Any] | None
    preloaded: bool
    #: carries a seed 003 move binding (from the store's metadata, no profile decoded)
    bound: bool = False

    @property
    def profile_class(self) -> int:
        return int(self.metadata.get("profileClass", CLASS_OPERATIONAL))

    @property
    def pprs(self) -> frozenset[int]:
        p = self.metadata.get("profilePolicyRules")
        return bits_to_set(p) if p is not None else frozenset()

    def notification_addresses(self, event: NotificationEvent) -> list[str]:
        return [
            c["notificationAddress"]
            for c in self.metadata.get("notificationConfigurationInfo", ())
            if int(event) in bits_to_set(c["profileManagementOperation"])
        ]

    def info(self, fields: frozenset[str] | None) -> dict[str, Any]:
        """The ProfileInfo value (E3), restricted to `fields` if a tag list asked."""
        m = self.metadata
        full: dict[str, Any] = {
            "iccid": iccid_to_bytes(self.iccid),
            "isdpAid": self.isdp_aid,
            "profileState": 1 if self.enabled else 0,
            "serviceProviderName": m.get("serviceProviderName", ""),
            "profileName": m.get("profileName", ""),
        }
        if self.profile_class != CLASS_OPERATIONAL:
            # DER leaves out a DEFAULT value (X.690 §11.5); asn1tools would write it.
            full["profileClass"] = self.profile_class
        if self.nickname is not None:
            full["profileNickname"] = self.nickname
        for k in (
            "iconType",
            "icon",
            "notificationConfigurationInfo",
            "profileOwner",
            "profilePolicyRules",
        ):
            if k in m:
                full[k] = m[k]
        if self.dp_proprietary is not None:
            full["dpProprietaryData"] = self.dp_proprietary
        if fields is None:
            return full
        return {k: v for k, v in full.items() if k in fields}


def _tag_list(data: bytes) -> frozenset[str]:
    """The ProfileInfo fields a tag list (5C) names; unknown tags are ignored."""
    out, p = set(), 0
    try:
        while p < len(data):
            tag, p = decode_tag(data, p)
            if tag in _TAG_FIELDS:
                out.add(_TAG_FIELDS[tag])
    except TlvError:
        raise ValueError("malformed tag list") from None
    return frozenset(out)


#: decoded ISD-R records by (type, DER): GetProfilesInfo and every ES10c call that
#: finds a profile read them, and decoding is most of their cost. The values are
#: only read (ProfileView never changes them); DER is immutable, so a key never
#: goes stale; bounded, cleared when full.
_DECODED: dict[tuple[str, bytes], Any] = {}
_DECODED_LIMIT = 512


def _decoded(type_name: str, der: bytes) -> Any:
    key = (type_name, der)
    value = _DECODED.get(key)
    if value is None:
        value = asn1.decode(type_name, der)
        if len(_DECODED) >= _DECODED_LIMIT:
            _DECODED.clear()
        _DECODED[key] = value
    return value


def _matches(view: ProfileView, ident: tuple[str, bytes]) -> bool:
    """Whether `view` is the profile an ES10c identifier (iccid or isdpAid) names."""
    kind, value = ident
    if kind == "iccid":
        return iccid_to_bytes(view.iccid) == value
    return kind == "isdpAid" and view.isdp_aid == value


class ProfileFunctions(IsdrBase):
    """ES10c functions over the profile store and the ISD-R's records."""

    # -- the profiles as the ISD-R sees them --------------------------------------------------

    def profiles(self) -> list[ProfileView]:
        """The profiles as the ISD-R lists and finds them (GetProfilesInfo, Enable, ...).

        A profile whose stored metadata record is damaged (`ProfileSummary.damaged`) is
        listed like any other, from what is still known: its ICCID, its state, and the
        ISD-R's own record (ISD-P AID, the SM-DP+'s StoreMetadata, nickname), which is
        kept apart from the profile as an ISD-R keeps its ISD-Ps' metadata. SGP.22's
        ProfileInfo has no "damaged" state, and leaving the profile out would tell the
        LPA its ICCID is free and leave it nothing to delete: so it is shown, and
        EnableProfile answers undefinedError(127) (the store's integrity check), while
        DeleteProfile removes it, as `cardemu card info` shows it DAMAGED. A preloaded
        one has no record, so its names are empty. A profile whose record no longer
        names an ICCID cannot be addressed by any ES10c function and is not listed;
        eUICCMemoryReset deletes it (`memory_reset`, by its slot).
        """
        out = []
        for s in self._store().list_profiles():
            if s.damaged and not s.iccid:
                continue
            rec = self.record(s.iccid) or (preloaded_isdp_aid(s.iccid), b"", None, b"")
            aid, smr_der, nickname, cfg_der = rec
            if smr_der:
                meta = _decoded("StoreMetadataRequest", smr_der)
            else:  # not downloaded: what the store knows
                meta = {"serviceProviderName": s.provider[:32], "profileName": s.name[:64]}
            cfg = _decoded("ConfigureISDPRequest", cfg_der) if cfg_der else {}
            out.append(
                ProfileView(
                    s.iccid,
                    s.enabled,
                    aid,
                    meta,
                    nickname,
                    cfg.get("dpProprietaryData"),
                    not smr_der,
                    metadata_has_binding(s.metadata),
                )
            )
        return out

    def _store(self) -> _GuardedStore:
        """The profile store, its failures on damaged data ProfileStoreError (`_GuardedStore`)."""
        return _GuardedStore(self.profile_store())

    def _find(self, ident: tuple[str, bytes]) -> ProfileView | None:
        return next((p for p in self.profiles() if _matches(p, ident)), None)

    def _notify(self, view: ProfileView, event: NotificationEvent) -> None:
        ntf = self.notifications()
        ecasd = self.ecasd()
        for address in view.notification_addresses(event):
            ntf.add_other(ecasd, event, address, view.iccid)

    # -- GetProfilesInfo (§5.7.15) ------------------------------------------------------------

    def get_profiles_info(self, request: Any, raw: bytes) -> Any:
        """ES10c GetProfilesInfo (SGP.22 §5.7.15); reads only.

        The store's own data damaged (its "enabled" or "profiles" record not of the
        shape it wrote: ProfileStoreError from `_store`, as for Enable or Disable)
        answers ProfileInfoListError undefinedError(127), the code for a reason the
        others do not name, not 6F00: damaged data, not a fault of the card's code.
        """
        try:
            fields = _tag_list(request["tagList"]) if "tagList" in request else None
        except ValueError:
            return ("profileInfoListError", PROFILE_INFO_INCORRECT_INPUT)
        try:
            views = self.profiles()
        except ProfileStoreError:
            return ("profileInfoListError", UNDEFINED_ERROR)
        crit = request.get("searchCriteria")
        if crit is not None:
            kind, value = crit
            if kind == "profileClass":
                views = [v for v in views if v.profile_class == value]
            else:
                v = next((p for p in views if _matches(p, (kind, value))), None)
                views = [] if v is None else [v]
        return ("profileInfoListOk", [v.info(fields) for v in views])

    # -- EnableProfile / DisableProfile / DeleteProfile (§5.7.16-18) -------------------------------

    def enable_profile(self, request: Any, raw: bytes) -> Any:
        """ES10c.EnableProfile (SGP.22 §5.7.16).

        A profile the store cannot use (its stored form fails the store's integrity
        check: ProfileStoreError DAMAGED, raised before the store writes anything)
        answers undefinedError(127), and the transaction rolls back the notifications
        written for the switch: the enabled profile stays enabled. The other codes
        say something false of it: the profile is found (not iccidOrAidNotFound), is
        disabled (not profileNotInDisabledState), no policy rule refuses it (not
        disallowedByPolicy: PPR1 of the enabled profile), it is not a fallback's
        re-enabling (wrongProfileReenabling) and no proactive session is running
        (catBusy). undefinedError is SGP.22's answer for an eUICC that cannot carry
        out the function for a reason of its own.

        So is any other failure the store raises on its damaged data, met anywhere in
        the function (a record of the store read back as another shape, `_store`): the
        transaction is rolled back whole and NVM is as before. A bug of the card's code
        (any other exception) is not hidden so: 6F00, counted as a card fault.

        Persistent memory found full (OutOfMemory) answers undefinedError as well,
        whether the store's writes or the ISD-R's own (the notifications, its record)
        met it: the same condition, in the same transaction, rolled back whole, gets
        the same answer. SGP.22 §5.7.16 has no "insufficient memory" code for these
        functions (unlike §5.7.6 for a download), and undefinedError tells the LPA the
        eUICC did not carry the function out, with nothing changed, which is true;
        6F00 would tell it the card is faulty, which it is not.
        """
        try:
            return {"enableResult": self._enable(request["profileIdentifier"])}
        except (ProfileStoreError, OutOfMemory):  # also damaged data, full memory (`_store`)
            return {"enableResult": UNDEFINED_ERROR}

    def _enable(self, ident: tuple[str, bytes]) -> int:
        target = self._find(ident)
        if target is None:
            return NOT_FOUND
        if target.enabled:
            return WRONG_STATE
        current = next((p for p in self.profiles() if p.enabled), None)
        if current is not None and PPR_DISABLE_NOT_ALLOWED in current.pprs:
            return DISALLOWED
        if not self._binding_allows(target):
            return UNDEFINED_ERROR
        with self.system.transaction():
            # The store's switch last; its deselection of the disabled profile's
            # applications takes effect only when this transaction commits
            # (CardRuntime.deselect_everywhere), and not at all if it aborts.
            if current is not None:
                self._notify(current, NotificationEvent.DISABLE)
            self._notify(target, NotificationEvent.ENABLE)
            self._store().enable_profile(target.iccid)
        return OK

    def _binding_allows(self, target: ProfileView) -> bool:
        """Seed 003 FIG. 4 on a move-bound profile before ES10c enables it (steps 403-406).

        A profile carrying a move binding (card.profile_binding) is checked as the
        move agent's ACTIVATE checks it, with the agent's policy (eSE ID, root,
        variant) fetched through its Shareable interface; a profile without one
        (every SGP.22 download) passes untouched. With no agent on the card there
        is no eSE ID to check against, so a bound profile is refused (fail closed)
        but never discarded. A refused profile stays disabled; with the agent's
        discard policy it is deleted (step 404), with its ISD-R record, in one
        transaction.

        The refusal answers undefinedError(127) (SGP.22 §5.7.16
        EnableProfileResponse): the other codes have fixed meanings an LPA acts on
        (iccidOrAidNotFound, profileNotInDisabledState, disallowedByPolicy is the
        *enabled* profile's PPR1, wrongProfileReenabling is the fallback's), none of
        which is true here, and a real eUICC says no more than "refused" about a
        failed authenticity check rather than telling a prober which part failed.

        Whether a profile is bound comes from the store's summary (its metadata,
        stored with it at install time): an ordinary profile is enabled without being
        read back and decoded; a bound one is decoded whole and checked as before.
        """
        if not target.bound:
            return True
        store = self._store()
        try:
            profile = Profile.from_bytes(store.export_profile(target.iccid, with_secrets=False))
        except (ProfileStoreError, ProfileFormatError):
            return False  # a profile the store cannot show is not enabled blind
        if not has_binding(profile):
            return True
        agent = self.system.get_shareable(MOVE_AGENT_AID)
        if agent is None:
            return False
        policy = cast(ProfileBindingInterface, agent).binding_policy()
        try:
            check_with_policy(profile, policy)
        except BindingError:
            if policy.discard:
                try:
                    with self.system.transaction():
                        self._notify(target, NotificationEvent.DELETE)
                        store.delete_profile(target.iccid)
                        self.set_record(target.iccid, None)
                except ProfileStoreError:
                    pass  # not discarded: still refused, still disabled
            return False
        return True

    def disable_profile(self, request: Any, raw: bytes) -> Any:
        """ES10c.DisableProfile (SGP.22 §5.7.17); a store failure as in `enable_profile`."""
        try:
            return {"disableResult": self._disable(request["profileIdentifier"])}
        except (ProfileStoreError, OutOfMemory):
            return {"disableResult": UNDEFINED_ERROR}

    def _disable(self, ident: tuple[str, bytes]) -> int:
        target = self._find(ident)
        if target is None:
            return NOT_FOUND
        if not target.enabled:
            return WRONG_STATE
        if PPR_DISABLE_NOT_ALLOWED in target.pprs:
            return DISALLOWED
        with self.system.transaction():
            self._notify(target, NotificationEvent.DISABLE)
            self._store().disable_profile(target.iccid)  # last, as in enable
        return OK

    def delete_profile(self, request: Any, raw: bytes) -> Any:
        """ES10c.DeleteProfile (SGP.22 §5.7.18); a store failure as in `enable_profile`."""
        try:
            return {"deleteResult": self._delete(request)}
        except (ProfileStoreError, OutOfMemory):
            return {"deleteResult": UNDEFINED_ERROR}

    def _delete(self, ident: tuple[str, bytes]) -> int:
        target = self._find(ident)
        if target is None:
            return NOT_FOUND
        if target.enabled:
            return WRONG_STATE
        if PPR_DELETE_NOT_ALLOWED in target.pprs:
            return DISALLOWED
        with self.system.transaction():
            self._notify(target, NotificationEvent.DELETE)
            self._store().delete_profile(target.iccid)
            self.set_record(target.iccid, None)
        return OK

    # -- eUICCMemoryReset (§5.7.19) ----------------------------------------------------------------

    def memory_reset(self, request: Any, raw: bytes) -> Any:
        """ES10c.eUICCMemoryReset (SGP.22 §5.7.19); a store failure as in `enable_profile`."""
        try:
            return {"resetResult": self._memory_reset(bits_to_set(request["resetOptions"]))}
        except (ProfileStoreError, OutOfMemory):
            return {"resetResult": UNDEFINED_ERROR}

    def _memory_reset(self, options: Any) -> int:
        victims = [
            p
            for p in self.profiles()
            if (0 in options and p.profile_class != CLASS_TEST)
            or (1 in options and p.profile_class == CLASS_TEST and not p.preloaded)
        ]
        store = self._store()
        # A profile whose damaged record names no ICCID (not listed: `profiles`) has no
        # class to tell; the class defaults to operational (SGP.22 ProfileInfo), so the
        # reset of the operational profiles deletes it, by its slot.
        nameless = store.nameless_slots() if 0 in options else ()
        dp, ds = self.config()
        reset_dp = 2 in options and dp is not None
        if not victims and not nameless and not reset_dp:
            return RESET_NOTHING_TO_DELETE
        with self.system.transaction():
            for p in victims:
                if p.enabled:
                    store.disable_profile(p.iccid)
                store.delete_profile(p.iccid)
                self.set_record(p.iccid, None)
            for number in nameless:
                store.delete_nameless_slot(number)
            if nameless:
                self._drop_orphan_records(store)
            if reset_dp:
                self.set_config(None, ds)
        return OK

    def _drop_orphan_records(self, store: _GuardedStore) -> None:
        """Delete the ISD-R's record ("meta.<ICCID>") of every profile the store no longer
        lists: those of the profiles whose slots `memory_reset` deleted by number, their
        damaged metadata naming no ICCID: their ISD-P AID, StoreMetadata and nickname
        would otherwise stay in NVM for ever, where the reset deletes the ISD-Ps "with
        their Profiles and their associated data and Profile Metadata" (SGP.22 §3.3.2,
        §5.7.19). In the caller's transaction."""
        listed = {p.iccid for p in store.list_profiles()}
        for key in sorted(self.system.store.keys()):
            if key.startswith("meta.") and key[len("meta.") :] not in listed:
                self.set_record(key[len("meta.") :], None)

    # -- GetEID (§5.7.20), SetNickname (§5.7.21) ---------------------------------------------------

    def get_eid(self, request: Any, raw: bytes) -> Any:
        return {"eidValue": self.ecasd().eid()}

    def set_nickname(self, request: Any, raw: bytes) -> Any:
        try:
            iccid = iccid_from_bytes(request["iccid"])
        except ValueError:
            return {"setNicknameResult": NICKNAME_ICCID_NOT_FOUND}
        if not any(s.iccid == iccid for s in self.profile_store().list_profiles()):
            return {"setNicknameResult": NICKNAME_ICCID_NOT_FOUND}
        # A preloaded profile gets a record the first time it needs one.
        rec = self.record(iccid) or (preloaded_isdp_aid(iccid), b"", None, b"")
        self.set_record(iccid, (rec[0], rec[1], request["profileNickname"] or None, rec[3]))
        return {"setNicknameResult": OK}
