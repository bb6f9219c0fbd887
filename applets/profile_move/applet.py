"""Seed 003's move agent: the eSE side of moving a profile between embedded secure elements.

JP 6820082 B2 (FIG. 2-6). The agent sits beside the profile store (applets.usim's
`UiccApplet`, reached through `card.profiles.ProfileStoreInterface`) and moves
whole profiles in the store's export format, so what the user put in the
profile travels with it: the phone book and SMS (DF.TELECOM), PINs and their
counters, the SQN state, the applications installed with the profile.

Personalisation (install parameters, TLV): `C7` eSE ID (16 bytes), `86` the
root's P-256 point, `D2` this eSE's private scalar (its certificate is the
root's), `C3` binding variant (wire.Variant, the eSE's policy), `C4` 01 to
discard a profile that fails activation (FIG. 4 step 404 "may discard").

Commands (CLA 80):

- `E1` BACKUP (steps 203, 535): `C1` move ID, `5A` ICCID, `C2` parts,
  `D0` provider certificate. The certificate must be the root's, for a
  profile provider, and its MNO (organizationName) the profile's (step 540:
  "only if the MNO identifier in the certificate and in the profile are the
  same and the certificate is valid"); else 6982 and nothing leaves. The
  profile (or the chosen parts; without `C2` KEYS, K and OPc are zeroed) is
  sealed for the provider's key under header `C1 | C7 | 5A`. The move is
  recorded (one write) so that only this provider may later order the
  deletion. Answer: the sealed box.
- `E2` INSTALL (step 205/560): `C1` move ID, `D0` provider certificate,
  `D1` its signature over wire.install_signed_data, `D3` the package sealed for
  this eSE under header `C1 | C7`. The profile inside must be bound to this
  eSE (the activation check below) and of the certificate's MNO. Installed
  disabled with its move record in one transaction; the same move again
  answers 9000 (idempotent); another profile with that ICCID: 6A89.
- `E3` DELETE (steps 207, 208, 575): `C1` move ID, `D1` the provider's
  signature over wire.delete_order_data, checked with the key of the provider
  this move was made with. Deletes the profile (disabling it first) in one
  transaction; an absent profile answers 9000 (idempotent); a delete the store
  refuses answers 6985 and changes nothing, its applications' selections included.
- `E4` ACTIVATE (FIG. 4): `5A` ICCID. Step 403: the profile's eSE ID is this
  eSE's; step 405: the binding signature verifies with the provider
  certificate the profile carries (itself checked against the root, of the
  profile's MNO). Refused: 6982, and with the discard policy the profile is
  deleted (404). Accepted: the profile is enabled (406).
- `E5` STATUS: for each profile, `E0 { 5A ICCID, 80 enabled }`.

The FIG. 4 check (card.profile_binding.check_binding) runs wherever a profile
is activated: this ACTIVATE, which the terminal sends at boot and on a profile
switch (step 402), and the ISD-R's ES10c EnableProfile, which asks this agent
for its policy (eSE ID, root, variant, discard) through
card.profile_binding.ProfileBindingInterface, granted to the ISD-R only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from applets.profile_move.wire import (
    ESE_ID_SIZE,
    MOVE_ID_SIZE,
    PROVIDER_OU,
    TAG_CERT,
    TAG_DISCARD,
    TAG_ENABLED,
    TAG_ESE_ID,
    TAG_ICCID,
    TAG_MOVE_ID,
    TAG_PACKAGE,
    TAG_PARTS,
    TAG_PRIVATE,
    TAG_PROFILE,
    TAG_ROOT,
    TAG_SIGNATURE,
    TAG_VARIANT,
    CertError,
    Ins,
    Parts,
    SealError,
    Variant,
    check_certificate,
    delete_order_data,
    install_signed_data,
    seal,
    unseal,
)
from card import tlv
from card.crypto.keys import P256, EcKeyPair, EcPublicKey
from card.framework import APDU, SW, Applet, CardError, persistent
from card.framework.aid import AID
from card.profile_binding import (
    BindingError,
    BindingPolicy,
    ProfileBindingInterface,
    check_binding,
)
from card.profiles import ISD_R_AID, PROFILE_STORE_AID, ProfileStoreError, ProfileStoreReason
from card.uicc.profile import Profile, ProfileFormatError

__all__ = ["MoveAgentApplet", "BindingError", "check_binding"]

_TELECOM = "3F00/7F10"
_MAX_MOVES = 16
SW_EXISTS = 0x6A89


class MoveAgentApplet(Applet, ProfileBindingInterface):
    """Seed 003's eSE move agent (see the module docstring)."""

    ese_id = persistent(b"")
    root = persistent(b"")
    private = persistent(b"")
    variant = persistent(0)
    discard = persistent(False)
    #: (move ID, role "S"/"T", ICCID, provider public point, deleted) per move, newest last
    moves = persistent(())

    def on_install(self, params: bytes) -> None:
        try:
            objs = {o.tag: o.value for o in tlv.parse(params)}
            ese_id, root, private = objs[TAG_ESE_ID], objs[TAG_ROOT], objs[TAG_PRIVATE]
            EcPublicKey.from_point(P256, root)
            EcKeyPair.from_private_value(P256, private)
            variant = Variant(objs.get(TAG_VARIANT, b"\x00")[0])
        except (KeyError, ValueError, IndexError):
            raise CardError(SW.WRONG_DATA) from None
        if len(ese_id) != ESE_ID_SIZE:
            raise CardError(SW.WRONG_DATA)
        self.ese_id, self.root, self.private = bytes(ese_id), bytes(root), bytes(private)
        self.variant = int(variant)
        self.discard = objs.get(TAG_DISCARD, b"\x00") == b"\x01"

    def get_shareable_interface_object(
        self, client_aid: AID, parameter: int
    ) -> ProfileBindingInterface | None:
        """The binding policy, for the ISD-R's EnableProfile and the profile store's check
        at power-up (ARCHITECTURE.md; card.profile_binding), no one else."""
        return self if bytes(client_aid) in (ISD_R_AID, PROFILE_STORE_AID) else None

    def binding_policy(self) -> BindingPolicy:
        """This eSE's side of the FIG. 4 check (its personalisation; nothing secret)."""
        return BindingPolicy(
            bytes(self.ese_id), bytes(self.root), Variant(self.variant), self.discard
        )

    # -- helpers ---------------------------------------------------------------------

    def _store(self) -> Any:
        store = self.system.get_shareable(PROFILE_STORE_AID)
        if store is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return store

    def _root(self) -> EcPublicKey:
        return EcPublicKey.from_point(P256, self.root)

    def _key(self) -> EcKeyPair:
        return EcKeyPair.from_private_value(P256, self.private)

    def _record(self, move_id: bytes) -> tuple[Any, ...] | None:
        return next((m for m in self.moves if m[0] == move_id), None)

    def _remember(self, move_id: bytes, role: str, iccid: str, provider: bytes) -> None:
        kept = tuple(m for m in self.moves if m[0] != move_id)[-(_MAX_MOVES - 1) :]
        self.moves = (*kept, (move_id, role, iccid, provider, False))

    @staticmethod
    def _fields(data: bytes) -> dict[int, bytes]:
        try:
            return {o.tag: o.value for o in tlv.parse(data)}
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None

    @staticmethod
    def _move_id(objs: dict[int, bytes]) -> bytes:
        move_id = objs.get(TAG_MOVE_ID, b"")
        if len(move_id) != MOVE_ID_SIZE:
            raise CardError(SW.WRONG_DATA)
        return move_id

    def _provider(self, objs: dict[int, bytes]) -> Any:
        try:
            return check_certificate(objs.get(TAG_CERT, b""), self._root(), PROVIDER_OU)
        except CertError:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None

    # -- commands --------------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.selecting:
            return None
        if apdu.cla & 0xF0 != 0x80:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        ins = apdu.ins
        if ins == Ins.STATUS:
            return self._status()
        objs = self._fields(apdu.data)
        if ins == Ins.BACKUP:
            return self._backup(objs)
        if ins == Ins.INSTALL:
            return self._install(objs)
        if ins == Ins.DELETE:
            return self._delete(objs)
        if ins == Ins.ACTIVATE:
            return self._activate(objs)
        raise CardError(SW.INS_NOT_SUPPORTED)

    def _status(self) -> bytes:
        out = b""
        for p in self._store().list_profiles():
            if not p.iccid:
                continue  # a damaged record naming no ICCID: nothing to address it by
            out += tlv.build(
                TAG_PROFILE,
                tlv.build(TAG_ICCID, p.iccid.encode())
                + tlv.build(TAG_ENABLED, bytes((p.enabled,))),
            )
        return out

    def _profile(self, store: Any, iccid: str) -> Profile:
        """The profile as the store exports it.

        Raises:
            CardError: 6A88 no such profile; 6581 (ISO/IEC 7816-4 memory failure) its
                stored form is damaged; 6A80 it does not decode.
        """
        try:
            return Profile.from_bytes(store.export_profile(iccid))
        except ProfileStoreError as e:
            damaged = e.reason == ProfileStoreReason.DAMAGED
            raise CardError(
                SW.MEMORY_FAILURE if damaged else SW.REFERENCED_DATA_NOT_FOUND
            ) from None
        except ProfileFormatError:
            raise CardError(SW.WRONG_DATA) from None

    def _backup(self, objs: dict[int, bytes]) -> bytes:
        move_id = self._move_id(objs)
        iccid = objs.get(TAG_ICCID, b"").decode("ascii", "replace")
        parts = objs.get(TAG_PARTS, bytes((Parts.ALL,)))[:1] or b"\x07"
        provider = self._provider(objs)
        store = self._store()
        profile = self._profile(store, iccid)
        if provider.organization != profile.provider:  # step 540: the profile's own MNO only
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        chosen = _choose(profile, parts[0])
        header = tlv.build(TAG_MOVE_ID, move_id) + tlv.build(TAG_ESE_ID, self.ese_id)
        header += tlv.build(TAG_ICCID, iccid.encode())
        with self.system.transaction():
            self._remember(move_id, "S", iccid, provider.public.to_point())
        return seal(provider.public, chosen.to_bytes(), header, self.system.rng)

    def _install(self, objs: dict[int, bytes]) -> bytes | None:
        move_id = self._move_id(objs)
        provider = self._provider(objs)
        package = objs.get(TAG_PACKAGE, b"")
        signed = install_signed_data(move_id, self.ese_id, package)
        if not provider.public.verify(signed, objs.get(TAG_SIGNATURE, b"")):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        header = tlv.build(TAG_MOVE_ID, move_id) + tlv.build(TAG_ESE_ID, self.ese_id)
        try:
            data = unseal(self._key(), package, header)
            profile = Profile.from_bytes(data)
            mno = check_binding(profile, self.ese_id, self._root(), Variant(self.variant))
        except (SealError, ProfileFormatError, BindingError):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        if mno != provider.organization:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        store = self._store()
        if any(p.iccid == profile.iccid for p in store.list_profiles()):
            record = self._record(move_id)
            if record is not None and record[1] == "T" and record[2] == profile.iccid:
                return None  # this move's install, again: already done
            raise CardError(SW_EXISTS)
        try:
            with self.system.transaction():
                store.install_profile(data)
                self._remember(move_id, "T", profile.iccid, provider.public.to_point())
        except ProfileStoreError as e:
            full = e.reason == ProfileStoreReason.NO_MEMORY
            raise CardError(SW.NOT_ENOUGH_MEMORY if full else SW.WRONG_DATA) from None
        return None

    def _delete(self, objs: dict[int, bytes]) -> bytes | None:
        move_id = self._move_id(objs)
        record = self._record(move_id)
        if record is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        _, role, iccid, provider_point, _deleted = record
        order = delete_order_data(move_id, self.ese_id, iccid)
        provider = EcPublicKey.from_point(P256, provider_point)
        if not provider.verify(order, objs.get(TAG_SIGNATURE, b"")):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        store = self._store()
        with self.system.transaction():
            self._erase(store, iccid)
            self.moves = tuple(
                (m[0], m[1], m[2], m[3], True) if m[0] == move_id else m for m in self.moves
            )
        return None

    @staticmethod
    def _erase(store: Any, iccid: str) -> None:
        """Disable the profile if it is enabled, then delete it, inside the caller's transaction.

        All or nothing, RAM included: GP Card Specification v2.3 §11.2 (DELETE) and
        SGP.22 §5.7.17-18 (Disable, Delete) leave the card as it was when the operation
        does not happen, and a terminal talking to the profile's applications on other
        logical channels must not lose them to a deletion that failed. So the
        deselection that disabling orders on every channel takes effect only when the
        transaction commits (`CardRuntime.deselect_everywhere`, deferred inside a
        transaction) and not at all if it rolls back; the delete counts the instances
        as out of use meanwhile. A tear needs nothing more: power is lost, every
        channel closes, and the NVM rolls back at power-up.

        Raises:
            CardError: 6985 when the store refuses the delete (GP DELETE: an
                application of the profile could not be deleted); the caller's
                transaction then rolls back.
        """
        if not any(p.iccid == iccid for p in store.list_profiles()):
            return
        try:
            if store.enabled_profile() == iccid:
                store.disable_profile(iccid)
            store.delete_profile(iccid)
        except ProfileStoreError:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED) from None

    def _activate(self, objs: dict[int, bytes]) -> bytes | None:
        iccid = objs.get(TAG_ICCID, b"").decode("ascii", "replace")
        store = self._store()
        profile = self._profile(store, iccid)  # step 402: the profile selected
        try:
            check_binding(profile, self.ese_id, self._root(), Variant(self.variant))
        except BindingError:
            if self.discard:  # step 404: not used, and discarded
                with self.system.transaction():
                    self._erase(store, iccid)
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        if store.enabled_profile() != iccid:  # step 406: used
            store.enable_profile(iccid)
        return None


def _choose(profile: Profile, parts: int) -> Profile:
    """The parts of `profile` a backup carries (seed step 203: all, or the chosen parts)."""
    out = profile
    if not parts & Parts.KEYS:
        a = out.auth
        auth = replace(
            a,
            k=bytes(len(a.k)),
            opc=None if a.opc is None else bytes(len(a.opc)),
            op=None if a.op is None else bytes(len(a.op)),
        )
        out = replace(out, auth=auth)
    if not parts & Parts.APPLICATIONS:
        out = replace(out, apps=())
    if not parts & Parts.USER_DATA:
        files = tuple(
            f for f in out.files if f.handle != _TELECOM and not f.handle.startswith(_TELECOM + "/")
        )
        out = replace(out, files=files)
    return out
