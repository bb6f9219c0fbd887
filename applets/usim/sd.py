"""A profile's security domain (the MNO-SD): GlobalPlatform SD of the enabled profile.

On an eUICC each ISD-P holds an MNO-SD, personalised from the profile's
PE-SecurityDomain (TCA SAIP §8.6; SGP.22 §2.2.1.2) with the operator's keys, and
every profile's MNO-SD has the same AID (TS.48: A000000151000000). Here the
profile store (`UiccApplet`) keeps each profile's security domains in the
profile's slot (applets.usim.store `p<n>.sd.<AID>`); one applet instance of
`ProfileSecurityDomain` per distinct SD AID on the card answers for the enabled
profile's SD of that AID, and is locked while no enabled profile has it, so it
is reachable only while its profile is enabled.

It is card.gp's security domain (SELECT FCI, GET DATA, SCP03 INITIALIZE UPDATE /
EXTERNAL AUTHENTICATE with the sequence counter of Amendment D §6.2.2.1, PUT
KEY) with its keys and counter read from and written to the profile through the
store's `ProfileSdInterface` (a Shareable interface, as applets talk on a Java
Card). SCP03 uses the profile's AES key sets (key type '88', key identifiers
1 ENC, 2 MAC, 3 DEK); the key sets of versions 01-0F are also the SD's SCP80 key
sets (card.gp.isd `ota_keysets`: KIc, KID, DEK; TS 102 225 §5.1.2), with their
replay counters kept in the profile too, so PUT KEY of either kind changes the
enabled profile's keys and no other's. (TS.48's MNO-SD has DES set 01 and AES
set 02: set 02 serves both SCP03 and SCP80.) GET STATUS lists this SD and the
profile's applications. Content management (INSTALL, LOAD, DELETE, SET STATUS)
inside the profile is not offered: those answer 6D00.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from card.framework import APDU, SW, CardError
from card.framework.shareable import Shareable
from card.gp import carddata, lifecycle
from card.gp.channel import Command
from card.gp.content import get_status, put_key
from card.gp.isd import INS_GET_STATUS, INS_PUT_KEY, IssuerSecurityDomain
from card.gp.keys import keysets_from_value
from card.gp.registry import Privilege, Registry
from card.gp.scp03 import Scp03Keys
from card.profiles import PROFILE_STORE_AID
from card.uicc.profile import SdKey

__all__ = ["ProfileSdInterface", "ProfileSecurityDomain", "scp03_keysets"]

_AES = 0x88
_DES = 0x80
_KID_ENC, _KID_MAC, _KID_DEK = 1, 2, 3
_TAG_RESOURCES = 0xFF21
_TAG_CPLC = 0x9F7F


class ProfileSdInterface(Shareable):
    """What the profile store offers a profile's security domain (its own record only)."""

    def sd_record(self, aid: bytes) -> Any:
        """The enabled profile's SdSpec for `aid`, or None."""
        raise NotImplementedError

    def set_sd_record(self, aid: bytes, record: Any) -> None:
        """Replace the enabled profile's SdSpec for `aid` (keys, counter)."""
        raise NotImplementedError

    def profile_applications(self) -> tuple[tuple[bytes, int], ...]:
        """(AID, life cycle state) of the enabled profile's applications (its PE-Application
        instances), the Registry this SD answers GET STATUS from."""
        raise NotImplementedError

    def rfm_parameters(self) -> Any:
        """The enabled profile's RFM instances (tuple of RfmSpec: TARs, MSL, access domains).

        What an OTA layer (SCP80, TS 102 225/226) needs to route a secured packet to
        an RFM instance and check its security level, with this SD's keys.
        """
        raise NotImplementedError


def scp03_keysets(keys: Iterable[Any]) -> tuple[Scp03Keys, ...]:
    """The SCP03 key sets among SdKeys: AES keys 1 (ENC), 2 (MAC), 3 (DEK) of one version."""
    by_kvn: dict[int, dict[int, bytes]] = {}
    for k in keys:
        for t, value in k.components:
            if t == _AES:
                by_kvn.setdefault(k.kvn, {})[k.kid] = value
    out = []
    for kvn, ids in by_kvn.items():
        try:
            out.append(Scp03Keys(ids[_KID_ENC], ids[_KID_MAC], ids[_KID_DEK], kvn))
        except (KeyError, ValueError):
            continue  # not a whole SCP03 key set
    return tuple(out)


class ProfileSecurityDomain(IssuerSecurityDomain):
    """The enabled profile's security domain of this AID (see the module docstring)."""

    card_manager = False
    multiselectable = True

    def on_install(self, params: bytes) -> None:
        # No key set of its own: every key comes from the enabled profile's record.
        self.cplc = b""

    # -- the profile's record, through the store's Shareable interface ------------------

    def _store(self) -> Any:
        store = self.system.get_shareable(PROFILE_STORE_AID)
        if store is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return store

    def _record(self) -> Any:
        rec = self._store().sd_record(bytes(self.aid))
        if rec is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # no enabled profile has this SD
        return rec

    @property
    def keysets_value(self) -> tuple[Any, ...]:
        return tuple((k.kvn, k.enc, k.mac, k.dek) for k in scp03_keysets(self._record().keys))

    @keysets_value.setter
    def keysets_value(self, value: tuple[Any, ...]) -> None:
        """PUT KEY: the AES key sets become `value`; the other keys stay as they are."""
        rec = self._record()
        kept = tuple(k for k in rec.keys if not any(t == _AES for t, _ in k.components))
        new: list[Any] = []
        for ks in keysets_from_value(value):
            old = {k.kid: k for k in rec.keys if k.kvn == ks.kvn}
            for kid, key, usage in ((1, ks.enc, 0x18), (2, ks.mac, 0x14), (3, ks.dek, 0x48)):
                prev = old.get(kid)
                new.append(
                    SdKey(
                        ks.kvn,
                        kid,
                        prev.usage if prev else usage,
                        prev.access if prev else 0,
                        ((_AES, key),),
                    )
                )
        self._store().set_sd_record(bytes(self.aid), replace(rec, keys=kept + tuple(new)))

    @property
    def ota_keysets_value(self) -> tuple[Any, ...]:
        """The SCP80 key sets (TS 102 225: key versions 01-0F, KIc 1, KID 2, DEK 3)."""
        by_kvn: dict[int, dict[int, tuple[int, bytes]]] = {}
        for k in self._record().keys:
            if 0x01 <= k.kvn <= 0x0F and k.components:
                by_kvn.setdefault(k.kvn, {})[k.kid] = k.components[0]
        out = []
        for kvn, ids in sorted(by_kvn.items()):
            if {1, 2, 3} <= set(ids) and len({ids[i][0] for i in (1, 2, 3)}) == 1:
                aes = ids[1][0] == _AES
                out.append((kvn, ids[1][1], ids[2][1], ids[3][1], aes))
        return tuple(out)

    @ota_keysets_value.setter
    def ota_keysets_value(self, value: tuple[Any, ...]) -> None:
        """PUT KEY of an SCP80 key set: the profile's keys of versions 01-0F become `value`."""
        rec = self._record()
        kept = tuple(k for k in rec.keys if not 0x01 <= k.kvn <= 0x0F)
        new: list[Any] = []
        for kvn, kic, kid, dek, aes in value:
            old = {k.kid: k for k in rec.keys if k.kvn == kvn}
            for n, key, usage in ((1, kic, 0x18), (2, kid, 0x14), (3, dek, 0x48)):
                prev = old.get(n)
                kind = _AES if aes else _DES
                new.append(
                    SdKey(
                        kvn,
                        n,
                        prev.usage if prev else usage,
                        prev.access if prev else 0,
                        ((kind, key),),
                    )
                )
        self._store().set_sd_record(bytes(self.aid), replace(rec, keys=kept + tuple(new)))

    @property
    def ota_counters_value(self) -> tuple[Any, ...]:
        return tuple(self._record().ota_counters)

    @ota_counters_value.setter
    def ota_counters_value(self, value: tuple[Any, ...]) -> None:
        rec = self._record()
        self._store().set_sd_record(bytes(self.aid), replace(rec, ota_counters=tuple(value)))

    @property
    def sequence_counter(self) -> int:
        return int(self._record().sequence_counter)

    @sequence_counter.setter
    def sequence_counter(self, value: int) -> None:
        rec = self._record()
        self._store().set_sd_record(bytes(self.aid), replace(rec, sequence_counter=value))

    @property
    def card_state(self) -> int:
        # GET STATUS shows it as the SD's life cycle: the profile's (TS.48: '0F'
        # PERSONALIZED). Content management is not offered here whatever it says.
        store = self.system.get_shareable(PROFILE_STORE_AID)
        rec = None if store is None else store.sd_record(bytes(self.aid))
        return lifecycle.SECURED if rec is None else int(rec.lifecycle)

    @card_state.setter
    def card_state(self, value: int) -> None:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)

    # -- commands ----------------------------------------------------------------------

    def select_response(self, apdu: APDU) -> bytes | None:
        self._record()
        if apdu.p2 & 0x0C == 0x0C:
            return None
        return carddata.fci(bytes(self.aid), self.scp_i, self.cplc)

    def data_object(self, tag: int, level: int | None = None) -> bytes | None:
        if tag in (_TAG_RESOURCES, _TAG_CPLC):
            # The card's resources are the ISD-R's to report (EUICCInfo2), its CPLC the
            # chip's: a profile's SD has neither.
            return None
        return super().data_object(tag, level)

    def registry(self) -> Registry:
        """The profile's part of the Registry: this SD and the profile's applications."""
        apps = self._store().profile_applications()
        return Registry(
            bytes(self.aid),
            [(bytes(self.aid), "", 0x0F, 0)] + [(aid, "", lc, 0) for aid, lc in apps],
            (),
            (),
        )

    def isd_privileges(self) -> int:
        priv = self._record().privileges
        return (
            int.from_bytes(priv[:3].ljust(3, b"\x00"), "big")
            if priv
            else int(Privilege.SECURITY_DOMAIN)
        )

    def _handle(self, cmd: Command) -> bytes | None:
        a = cmd.apdu
        if a.cla & 0x80 and a.ins in (INS_PUT_KEY, INS_GET_STATUS):
            if not cmd.cm_authorised:
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            if a.ins == INS_GET_STATUS:
                # The SD entry (P1 80) shows the SD's own life cycle from the profile.
                return get_status(self, cmd)
            with self.system.transaction():
                return put_key(self, cmd)
        if a.cla & 0x80 and a.ins in self._HANDLERS:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return super()._handle(cmd)
