"""The UICC platform with its USIM: ETSI TS 102 221 and 3GPP TS 31.102 over card.fs.

One applet instance is the card's telecom side: default-selected and
multiselectable, it answers for the MF of the enabled profile on every logical
channel, and holds every profile (card.profiles.ProfileStoreInterface).

Commands (CLA 0X/4X unless noted; TS 102 221 §10.1.1 Table 10.5):

- SELECT (A4, P2 04 FCP / 0C none / 00 FCI), READ / UPDATE BINARY, READ /
  UPDATE RECORD, SEARCH RECORD, DEACTIVATE / ACTIVATE FILE, STATUS (8X F2),
  INCREASE (8X 32): card.fs, access conditions from EF.ARR.
- VERIFY (20), CHANGE PIN (24), DISABLE PIN (26), ENABLE PIN (28), UNBLOCK PIN
  (2C), TS 102 221 §11.1.9-13: PIN1 (01), PIN2 (81), ADM1 (0A) with PUK1/PUK2;
  63Cx for a wrong value, 6983 when blocked. A PIN's counter is written down
  before the comparison (a tear cannot buy a guess) and compared in constant
  time. A verified PIN holds on every channel until reset or a profile switch.
- AUTHENTICATE (88), TS 31.102 §7.1.2: P2 81 (3G context), 80 (GSM context), on
  a channel whose current application is the USIM, PIN1 verified or disabled; on
  the ISIM (TS 31.103 §7.1.2), P2 81 (IMS AKA) only, with the ISIM's own keys and
  SQN state when the profile gives it some (Profile.app_auth), else the profile's
  (the USIM's), answered without Kc.
- GET IDENTITY (8X 78, 0X 78 taken too), TS 31.102 §7.5, P2 01 (SUCI context): the USIM conceals
  its IMSI itself (applets.usim.suci) when services n°124 and n°125 are available
  (6A81 otherwise), on a USIM channel with PIN1 verified or disabled.
- RETRIEVE DATA (8X CB) and SET DATA (8X DB), TS 102 221 §11.3, on BER-TLV EFs.
- TERMINAL PROFILE (8X 10) and TERMINAL CAPABILITY (8X AA) are accepted; the
  terminal profile is kept for the proactive session.
- The toolkit (ETSI TS 102 223, TS 31.111), CLA 80 (and A0, as a SIM's
  toolkit of TS 51.014 takes them, with 9Fxx for the response data): FETCH (12) and TERMINAL
  RESPONSE (14) on the card's proactive session (`card.ota.toolkit`; 91xx
  announces a command); ENVELOPE (C2) with an SMS-PP download (D1): an
  SMS-DELIVER with TP-PID 7F and the TS 31.115 header (IEI 70, concatenated
  short messages reassembled) hands its command packet to the ISD's remote
  management (TS 102 225/226) and answers the proof of receipt: as response
  data (for the SMS-DELIVER-REPORT) or, when the SPI asks for SMS-SUBMIT, as a
  proactive SEND SHORT MESSAGE back to the originator. Other envelopes are
  acknowledged and ignored.
- Remote File Management (TS 102 226 §6, TS 31.116): the ISD runs RFM scripts
  here through `RemoteFileInterface`, on the enabled profile's file system with
  full access (the RFM access domain 00), starting at the MF, or at ADF.USIM for
  the USIM's TARs B00010-B0001F.
- CLA A0 (TS 51.011 §9): SELECT, STATUS, READ BINARY / RECORD, UPDATE BINARY /
  RECORD with the GSM response format and status words; the runtime gives 9Fxx
  and GET RESPONSE. VERIFY CHV (20), CHANGE CHV (24), DISABLE CHV (26), ENABLE
  CHV (28), UNBLOCK CHV (2C), §9.2.9-13, work on PIN1 (CHV1) and PIN2 (CHV2) with
  the same counters and verification state as the UICC commands, answering 9804
  (wrong, attempts left), 9840 (blocked), 9808 (in contradiction with the CHV
  status: CHV1 disabled, or already so) and 9802 (no such CHV); UNBLOCK CHV
  names CHV1 00 (§9.2.13) and takes 01 too, which tools sharing code with the
  UICC commands send. RUN GSM
  ALGORITHM (88), §9.2.16: RAND gives SRES || Kc through the profile's 3G
  algorithm and c2/c3 (TS 33.102 §6.8.1.2), with DF.GSM or a DF under it
  current and CHV1 verified or disabled (9804 otherwise).
- The EFs DF.GSM shares with ADF.USIM (ts_51_011.SHARED_WITH_USIM) stay equal: a
  write to one, in either class, writes the other in the same transaction.

A profile's security domains (the MNO-SD of its PE-SecurityDomain) are applets
of their own (applets.usim.sd), one instance per SD AID, selectable while a
profile that has that SD is enabled; they reach their keys through
`ProfileSdInterface`, which this applet offers them alone.

The enabled profile is activated at the first command after each power-up, reset
or switch: its integrity check (applets.usim.store `Slot.check`) and, for a
move-bound profile, seed 003's FIG. 4 check (card.profile_binding). One that
fails, or whose metadata record is found damaged later, stays enabled for the
ISD-R (which can disable and delete it) but is not used: the terminal sees the
card as with no profile enabled, and the profile's applications and security
domains answer a SELECT as not selectable (6A82: the runtime asks this applet,
`UiccApplet.may_select`); a record found damaged by a command answers 6581
(`UiccApplet._activate`, `UiccApplet.process`), and from then on an application
or SD of the profile still selected on some channel is deselected at that
channel's next command (6999), nor reached through the firewall or STORE DATA.

Install parameters: an exported profile (card.profiles format), installed and
enabled at once; none gives an eUICC with no profile.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from typing import Any, cast

from applets.usim.ins import Ins
from applets.usim.sd import ProfileSdInterface, ProfileSecurityDomain
from applets.usim.store import DamagedProfile, PinRecord, Slot, build_once
from applets.usim.suci import INS_GET_IDENTITY, P2_SUCI_CONTEXT, calculate_suci
from card.apdu import CommandApdu
from card.framework import AID, APDU, SW, Applet, CardError, transient
from card.framework.catalogue import CatalogueError, class_ref
from card.framework.exceptions import OutOfMemory
from card.fs import ADM1, PIN1, PIN2, FileSystem, Referenced, Structure
from card.fs.files import MF_HANDLE
from card.gp.isd import UICC_ISD_AID
from card.ota import cat, ram, scp80, sms
from card.ota.remote import is_usim_rfm_tar
from card.ota.toolkit import (
    REMOTE_FILE_PARAMETER,
    REMOTE_MANAGEMENT_PARAMETER,
    RemoteFileInterface,
)
from card.profile_binding import (
    BindingError,
    ProfileBindingInterface,
    check_with_policy,
    metadata_has_binding,
)
from card.profiles import (
    MOVE_AGENT_AID,
    PROFILE_STORE_CLIENTS,
    ProfileStoreError,
    ProfileStoreInterface,
    ProfileStoreReason,
    ProfileSummary,
)
from card.uicc.auth import authenticate_3g, authenticate_gsm, gsm_sres_kc, parse_lv_items
from card.uicc.fsstore import DamagedRecord
from card.uicc.profile import Profile, ProfileFormatError, RfmSpec
from card.uicc.saip import CAPABILITY_BITS, PeStatus, SaipError, profile_from_package
from card.uicc.ts_31_102 import (
    DF_5GS,
    DF_SAIP,
    EF_ROUTING_INDICATOR,
    EF_SUCI_CALC_INFO_USIM,
    SERVICE_GSM_ACCESS,
    SERVICE_GSM_SECURITY_CONTEXT,
    SERVICE_SUCI_BY_USIM,
    SERVICE_SUPI_PRIVACY,
    decode_ad,
    decode_imsi,
    decode_service_table,
)
from card.uicc.ts_31_103 import ISIM_AID_PREFIX
from card.uicc.ts_51_011 import (
    CHV1,
    CHV2,
    CHV_LENGTH,
    DF_GSM,
    RUN_GSM_RAND_LENGTH,
    SHARED_WITH_USIM,
    SW_ACCESS_NOT_FULFILLED,
    SW_CHV_BLOCKED,
    SW_CHV_CONTRADICTION,
    SW_INCORRECT_P3,
    SW_NO_CHV,
    SW_UNKNOWN_INS,
    UNBLOCK_CHV1,
    ChvStatus,
    df_response,
    ef_response,
    gsm_status,
)
from card.uicc.ts_102_221 import (
    ARR_ADM,
    ARR_DF,
    ARR_RECORD_LENGTH,
    ARR_RECORDS,
    PIN_LENGTH,
    USIM_AID_PREFIX,
)

# GlobalPlatform life cycle states for the applications of a profile.
_SELECTABLE = 0x07
_LOCKED = 0x83

_ISO_INS = frozenset(
    {
        Ins.SELECT,
        Ins.READ_BINARY,
        Ins.UPDATE_BINARY,
        Ins.READ_RECORD,
        Ins.UPDATE_RECORD,
        Ins.SEARCH_RECORD,
        Ins.DEACTIVATE_FILE,
        Ins.ACTIVATE_FILE,
        Ins.VERIFY_PIN,
        Ins.CHANGE_PIN,
        Ins.DISABLE_PIN,
        Ins.ENABLE_PIN,
        Ins.UNBLOCK_PIN,
        Ins.AUTHENTICATE,
    }
)
# CB / DB: RETRIEVE DATA / SET DATA on BER-TLV EFs (TS 102 221 §11.3), CLA 8X.
_PROPRIETARY_INS = frozenset(
    {
        Ins.STATUS,
        Ins.INCREASE,
        Ins.TERMINAL_PROFILE,
        Ins.TERMINAL_CAPABILITY,
        Ins.FETCH,
        Ins.TERMINAL_RESPONSE,
        Ins.ENVELOPE,
        Ins.RETRIEVE_DATA,
        Ins.SET_DATA,
        INS_GET_IDENTITY,
    }
)
_INS_FETCH, _INS_TERMINAL_RESPONSE, _INS_ENVELOPE = Ins.FETCH, Ins.TERMINAL_RESPONSE, Ins.ENVELOPE
_SW_TOOLKIT_BUSY = 0x9300
#: RFM commands whose compact-format P3 is Le (TS 102 226 §5.1.1).
_RFM_CASE2 = frozenset({Ins.READ_BINARY, Ins.READ_RECORD, Ins.GET_RESPONSE, Ins.STATUS})
#: Every key reference of TS 102 221 Table 9.3: the RFM access domain 00 (full access).
_ALL_KEYS = frozenset(range(0x01, 0x0F)) | frozenset(range(0x81, 0x8F))
_FS_INS = frozenset(
    {
        Ins.SELECT,
        Ins.READ_BINARY,
        Ins.UPDATE_BINARY,
        Ins.READ_RECORD,
        Ins.UPDATE_RECORD,
        Ins.SEARCH_RECORD,
        Ins.DEACTIVATE_FILE,
        Ins.ACTIVATE_FILE,
        Ins.STATUS,
        Ins.INCREASE,
        Ins.RETRIEVE_DATA,
        Ins.SET_DATA,
    }
)
_GSM_FS_INS = frozenset(
    {Ins.SELECT, Ins.STATUS, Ins.READ_BINARY, Ins.READ_RECORD, Ins.UPDATE_BINARY, Ins.UPDATE_RECORD}
)
_GSM_CHV_INS = frozenset(
    {Ins.VERIFY_PIN, Ins.CHANGE_PIN, Ins.DISABLE_PIN, Ins.ENABLE_PIN, Ins.UNBLOCK_PIN}
)
#: The PIN commands of TS 102 221 §11.1.9-13 (`UiccApplet._pin_command`).
_PIN_INS = _GSM_CHV_INS
_GSM_RUN_ALGORITHM = Ins.AUTHENTICATE  # RUN GSM ALGORITHM (TS 51.011 §9.2.16)
#: Instructions that write an EF's content (UPDATE BINARY / RECORD, INCREASE).
_WRITE_INS = frozenset({Ins.UPDATE_BINARY, Ins.UPDATE_RECORD, Ins.INCREASE})

_AUTH_GSM = 0x80
_AUTH_3G = 0x81

_BASE_PREFIX = "base.fs."
_BASE_ARR_FID = 0x2F06  # EF.ARR under the MF (TS 102 221 §13.4)
_EF_UST = 0x6F38
_EF_IMSI = 0x6F07
_EF_AD = 0x6FAD


def _is_adm(ref: int) -> bool:
    # TS 102 221 Table 9.3: 0A-0E ADM1-ADM5, 8A-8E ADM6-ADM10.
    return 0x0A <= ref & 0x7F <= 0x0E


def _valid_new_pin(ref: int, padded: bytes) -> bool:
    """TS 102 221 §9.5.1: a PIN is 4-8 ASCII digits padded with FF (ADM codes are free)."""
    if _is_adm(ref):
        return True
    raw = padded.rstrip(b"\xff")
    return 4 <= len(raw) <= PIN_LENGTH and raw.isdigit() and b"\xff" not in raw


def _with_tries(rec: PinRecord, tries: int) -> PinRecord:
    # `dataclasses.replace` walks the fields on every call: this is VERIFY's hot path.
    return PinRecord(
        rec.value, rec.limit, tries, rec.enabled, rec.puk, rec.puk_limit, rec.puk_tries
    )


#: Profiles parsed from their bytes: a Profile is immutable (frozen, tuples and bytes
#: all the way down), so cards installing the same bytes (every `usim` preset card)
#: share one, and with it the file writes `Slot` replays. Bounded, cleared when full.
_PARSED: dict[bytes, Profile] = {}
_PARSED_LIMIT = 8


def _parsed_profile(data: bytes) -> Profile:
    profile = _PARSED.get(data)
    if profile is None:
        profile = Profile.from_bytes(data)
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        _PARSED[data] = profile
    return profile


def _build_base(store: Any) -> None:
    """The platform's own MF (no profile enabled), protected as a profile's MF is.

    By EF.ARR records (TS 102 221 §9.2.7): DEACTIVATE/ACTIVATE FILE need ADM1,
    which no profile-less card can verify, so nobody can switch the MF off.
    """
    base = FileSystem(store, _BASE_PREFIX)
    mf = base.create_mf(
        security=Referenced(_BASE_ARR_FID, ARR_DF),
        pins=(PIN1, PIN2, ADM1),
        proprietary=bytes.fromhex("800171"),
    )
    base.create_ef(
        mf,
        _BASE_ARR_FID,
        Structure.LINEAR_FIXED,
        record_length=ARR_RECORD_LENGTH,
        data=list(ARR_RECORDS),
        sfi=0x06,
        security=Referenced(_BASE_ARR_FID, ARR_ADM),
    )


#: no reference verified (one object: `_env` keeps its _Env while the set is the same object)
_NO_REFS: frozenset[int] = frozenset()

#: the stored "enabled" value when there is none: no profile, generation 0
_NONE_ENABLED: tuple[None, int] = (None, 0)

log = logging.getLogger("cardemu.usim")


def _enabled_shape_ok(raw: Any) -> bool:
    """Whether a stored "enabled" record has the shape written: (slot number or None,
    generation), both ints (not bools)."""
    return (
        type(raw) is tuple
        and len(raw) == 2
        and (raw[0] is None or type(raw[0]) is int)
        and type(raw[1]) is int
    )


#: ctx.transient: the enabled profile's activation (`UiccApplet._activate`), as ("enabled"
#: as stored when it was made, passed); RAM, so made again after every power-up and reset
_ACTIVATION = "activation"
#: the "enabled" value whose profile's binding (FIG. 4) the enable that stored it checked
_BINDING_CHECKED = "binding_checked"
#: TS 51.011 §9.4.2: 92 40, memory problem (6581 in TS 102 221 §10.2.1.3)
_SW_GSM_MEMORY_PROBLEM = 0x9240

#: channel state: (the `verified` transient value, the file system, the environment's
#: cache_key) of the last READ RECORD answered on the ordinary path (`quick_process`)
_QUICK_READ = "rr.quick"
_SW9000 = b"\x90\x00"


class _Env:
    """The security environment of one command (card.fs.SecurityEnvironment)."""

    __slots__ = ("_slot", "_verified", "cache_key")
    se = 1

    def __init__(self, slot: Slot | None, verified: frozenset[int]) -> None:
        self._slot = slot
        self._verified = verified
        #: with the card's stored state, what determines every answer (the slot is
        #: the file system's own: `FileSystem.check_access` keeps grants by it)
        self.cache_key = verified

    def slot_is(self, slot: Slot | None) -> bool:
        return self._slot is slot

    def is_verified(self, ref: int) -> bool:
        if ref in self._verified:
            return True
        if self._slot is None or _is_adm(ref):
            return False
        rec = self._slot.pin(ref)
        # TS 102 221 §9.5.1: a disabled PIN's access condition counts as fulfilled.
        return rec is not None and not rec.enabled

    def pin_enabled(self, ref: int) -> bool:
        if self._slot is None:
            return True
        rec = self._slot.pin(ref)
        return rec is None or rec.enabled


class UiccApplet(Applet, ProfileStoreInterface, RemoteFileInterface):
    """The UICC, its USIM and the profile store (see the module docstring)."""

    multiselectable = True
    # Needed only to set the life cycle of (and to install, delete) the applications
    # that belong to profiles; no command gives the terminal any of it.
    card_manager = True
    #: ENVELOPE, FETCH, TERMINAL RESPONSE and TERMINAL PROFILE come here on any selection.
    toolkit_platform = True
    #: READ RECORD (`quick_process`)
    quick_ins = frozenset({Ins.READ_RECORD})
    #: The runtime asks it whether a profile's application or SD may be selected
    #: (`gated_aids`, `may_select`): only while the profile is activated.
    selection_gate = True

    #: ("enabled" as stored, what `_current` made of it, the activation it was made
    #: with) and the last `_Env`: derived, volatile, each checked against what it came
    #: from at every use
    _current_memo: tuple[Any, tuple[Slot | None, int], Any] | None = None
    _env_memo: _Env | None = None

    #: (generation, frozenset of verified key references): lost on reset and on a switch
    verified = transient(None)
    #: concatenated SMS-PP segments of a command packet being received (TS 31.115 §6.2)
    sms_reassembly = transient(None)

    # -- life cycle ------------------------------------------------------------------

    def on_install(self, params: bytes) -> None:
        store = self.system.store
        store.set("profiles", ())
        store.set("enabled", (None, 0))
        store.set("next_slot", 0)
        # The platform's own MF (no profile enabled): built once per process, then
        # stored as it came out (applets.usim.store.build_once; INSTALL's transaction).
        build_once(store, _BASE_PREFIX, "base", _build_base, _build_base)
        if params:
            try:
                iccid = self.install_profile(params)
                self.enable_profile(iccid)
            except ProfileStoreError:
                raise CardError(SW.WRONG_DATA) from None

    def select_response(self, apdu: APDU) -> bytes | None:
        if apdu.p2 & 0x0C == 0x0C:
            return None
        if not apdu.data:
            # SELECT with no name: the MF, answered as SELECT 3F00 would be.
            try:
                slot, gen = self._current()
                fs = slot.fs if slot else self._base_fs()
                state = self._channel_state(gen)
                return fs.select(state, 0x00, apdu.p2 & 0x0C, b"", self._env(slot, gen))
            except CardError:
                raise
            except Exception as e:
                raise self._memory_problem(e, apdu.cla == 0xA0) from None
        return super().select_response(apdu)

    def get_shareable_interface_object(
        self, client_aid: AID, parameter: int
    ) -> ProfileStoreInterface | RemoteFileInterface | ProfileSdInterface | None:
        if parameter == REMOTE_FILE_PARAMETER and bytes(client_aid) == UICC_ISD_AID:
            return self
        if bytes(client_aid) in PROFILE_STORE_CLIENTS:
            return self
        try:
            current, _ = self._current()
        except DamagedRecord:
            return None  # the "enabled" record damaged: no profile is activated
        if current is not None and current.security_domain(bytes(client_aid)) is not None:
            # A security domain of the enabled profile: its own record, nothing else.
            return _SdAccess(self, current, bytes(client_aid))
        return None

    # -- state -------------------------------------------------------------------------

    def _slot(self, number: int) -> Slot:
        slots: dict[int, Slot] = self.__dict__.setdefault("_slot_cache", {})
        s = slots.get(number)
        if s is None:
            system = self.system
            s = slots[number] = Slot(system.store, number, system.nvm_version_now)
        return s

    def _base_fs(self) -> FileSystem:
        fs = self.__dict__.get("_base")
        if fs is None:
            fs = self._base = FileSystem(self.system.store, _BASE_PREFIX)
        return fs

    def _enabled_slot(self) -> tuple[Slot | None, int]:
        """The enabled profile as stored (the ISD-R's view: enabled, whatever its state).

        Raises:
            DamagedRecord: the stored "enabled" record is not of the shape written
                (slot number or None, generation): damaged data, which the store's
                clients tell from a fault of its code (the ISD-R: undefinedError).
        """
        raw = self.system.store.get("enabled", _NONE_ENABLED)
        if not _enabled_shape_ok(raw):
            raise DamagedRecord("the stored record enabled is not of its shape")
        number, gen = raw
        return (None if number is None else self._slot(number)), gen

    def _current(self) -> tuple[Slot | None, int]:
        """The profile the terminal sees: the enabled one once activated, else none.

        The enabled profile is activated by the first command after each power-up,
        reset or switch (`_activate`): a profile that fails the check, or whose
        metadata record is found damaged at any command, is not used; the terminal
        sees the card as with no profile enabled (the platform's MF, no USIM or
        ISIM, 6A88 for PINs and AUTHENTICATE), on a generation of its own so the
        channels and PINs of the profile are left behind.
        """
        # Every command asks: the context's store, not through two properties.
        ctx = self._ctx
        raw = ctx.store.get("enabled", _NONE_ENABLED)
        act = ctx.transient.get(_ACTIVATION)
        # The stored value is immutable: while it is the same object, so is the answer.
        memo = self._current_memo
        if memo is not None and memo[0] is raw and memo[2] is act:
            out = memo[1]
            if out[0] is None or out[0].readable():
                return out
        return self._activate(raw, act)

    def _activate(self, raw: Any, act: Any) -> tuple[Slot | None, int]:
        """The enabled profile's activation: checked once per power-up, reset or switch.

        A real eUICC checks the integrity of a profile's data before it runs it and
        keeps answering when the check fails: its ISD-R still lists the profile
        (SGP.22 knows no "damaged" state: Enabled, as GetProfilesInfo shows it) and
        can disable and delete it, while the terminal gets no network access from
        it. So a profile that fails `Slot.check` is kept enabled in memory, and not
        activated: nothing is written (the result is RAM, `ctx.transient`, made
        again after the next power-up), and the card answers as with no profile
        enabled: what TS 102 221 §10.2.1 defines for a card without the
        application (6A82 for the USIM's ADF, 6A88 for a PIN or key it does not
        have), not 6F00, which is left to a genuine fault.

        The profile's Java Card applications and security domains keep the
        SELECTABLE life cycle its enable gave them (a life cycle is stored: changing
        it would write), so they are refused another way, in RAM: the runtime asks
        this applet at each of their selections (`may_select`), which runs this
        check if it has not run since the power-up (the first command after a
        power-up may be their SELECT), and a profile not activated has its
        instances answer as not selectable (6A82).

        Raises:
            DamagedRecord: the stored "enabled" record is not of the shape written (the
                check `_enabled_slot` makes for the ISD-R): no profile runs on it.
        """
        if not _enabled_shape_ok(raw):
            # The store's own check (`_enabled_slot`): damaged data, 6581 by
            # `_memory_problem` for a command, not activated for a selection.
            raise DamagedRecord("the stored record enabled is not of its shape")
        number, gen = raw
        out: tuple[Slot | None, int]
        if number is None:
            out = (None, gen)
        else:
            slot = self._slot(number)
            if act is None or act[0] is not raw:
                # FIG. 4 not again if the enable that made `raw` just ran it (by value:
                # the value stored reads back as another object after the commit).
                checked = self._ctx.transient.get(_BINDING_CHECKED) == raw
                act = (raw, self._activation_passes(slot, binding_checked=checked))
                self._ctx.transient[_ACTIVATION] = act
            out = (slot, gen) if act[1] and slot.readable() else (None, -1 - gen)
        self._current_memo = (raw, out, act)
        return out

    def _activation_passes(self, slot: Slot, *, binding_checked: bool = False) -> bool:
        """Whether the enabled profile can be run: its integrity check (`Slot.check`), and
        for a move-bound profile seed 003's FIG. 4 check (`_binding_holds`), unless
        `binding_checked`: the enable that made it the enabled profile ran FIG. 4 on it
        just before (`enable_profile`), so one EnableProfile checks the binding once."""
        try:
            slot.check()
        except DamagedProfile as e:
            log.warning("the enabled profile is not activated: %s", e)
            return False
        if not binding_checked and metadata_has_binding(slot.meta[3]):
            return self._binding_holds(slot)
        return True

    def _binding_holds(self, slot: Slot) -> bool:
        """Seed 003 FIG. 4 on the enabled move-bound profile at its activation (402-406).

        The seed selects a profile (step 402) when the user picks one and also when
        the terminal boots or leaves flight mode, and checks it each time (403: its
        eSE ID is this eSE's, 405: the provider's signature); ES10c EnableProfile
        runs the check on the LPA's enable (applets.isdr.profiles), but an enabled
        profile is not enabled again, so the card runs it here, at the first command
        after each power-up, with the move agent's policy (card.profile_binding). No
        agent: no eSE ID to check against, so not activated (fail closed, as ES10c).

        A profile whose data do not read back whole (a damaged file `Slot.check` does
        not cover) fails as well: any exception of the read or the check is a failed
        activation, never an exception out of `process`.

        A profile that fails is not used (404) and stays enabled in the store; it is
        not discarded here, though the seed allows it (404 "may discard") and the
        agent's discard policy may ask it: a discard is a delete, which is the
        ISD-R's (its record of the profile and the delete notification go in the
        same transaction), and a power-up writes nothing. The LPA sees the profile
        enabled and can disable it; ES10c then refuses to enable it again and,
        under the discard policy, deletes it.
        """
        agent = self.system.get_shareable(MOVE_AGENT_AID)
        if agent is None:
            log.warning("the enabled bound profile is not activated: no move agent")
            return False
        policy = cast(ProfileBindingInterface, agent).binding_policy()
        try:
            check_with_policy(slot.read(), policy)
        except BindingError as e:
            log.warning("the enabled bound profile is not activated (FIG. 4): %s", e)
            return False
        except Exception as e:
            # A record `Slot.check` does not cover, damaged: `read` reads every file.
            # The exception's type only: its text may quote a stored value (a key).
            log.warning(
                "the enabled bound profile is not activated: it does not read back (%s)",
                type(e).__name__,
            )
            return False
        return True

    # -- the selection gate (card.framework.Applet.selection_gate) ------------------------

    def gated_aids(self) -> frozenset[bytes]:
        """Every profile's applications and security domains, as far as the store names them.

        `Slot.app_aids` and `Slot.sd_aids`: the metadata record's lists, and when it
        is damaged the slot's application and SD records ("p<n>.app.<AID>",
        "p<n>.sd.<AID>"), so that damage hides none; a card image stored before the
        application records existed has the metadata's list (with its metadata
        damaged, its applications are not found: as for its delete). Read only;
        asked after each power-up and registry change, not per command.
        """
        return self._instance_aids(self._slots())

    def may_select(self, aid: bytes) -> bool:
        """Whether a profile's application or security domain `aid` may be selected now.

        Only while the enabled profile is activated (`_activate`, run here if it has
        not run since the power-up, reset or switch): seed 003 FIG. 4 (404) has a
        profile that fails its check not used, and SGP.22 §1.4 (Enabled, Disabled)
        has a profile's applications selectable only while it is the profile in use,
        so a damaged profile, or a copy bound to another eSE, runs none of its
        applets or SDs either; they answer 6A82 as a locked application does (GP
        Card Specification, LOCKED: its selection fails). Instances of no profile
        never reach here (the runtime gates only `gated_aids`); an instance of a
        disabled profile only is left to its life cycle (its disable locked it). RAM
        only: the activation's result is a transient, nothing is written.
        """
        try:
            current, _ = self._current()
            if current is not None:
                return True
            enabled, _ = self._enabled_slot()
        except DamagedRecord:
            return False  # the "enabled" record damaged: no profile's instance runs
        if enabled is None:
            return True  # no profile enabled: the life cycles (locked) decide
        aid = bytes(aid)
        return aid not in self._instance_aids([enabled])

    @staticmethod
    def _instance_aids(slots: list[Slot]) -> frozenset[bytes]:
        """The applications and security domains of `slots` (see `gated_aids`)."""
        out: set[bytes] = set()
        for s in slots:
            out.update(s.app_aids())
            out.update(s.sd_aids())
        return frozenset(out)

    def _found_damaged(self) -> bool:
        """After an unexpected exception: whether the enabled profile fails its integrity
        check now (a record damaged since its activation). If so it is not used any
        more (until the next power-up's check) and the caller answers 6581."""
        raw = self._ctx.store.get("enabled", _NONE_ENABLED)
        slot, _ = self._enabled_slot()
        if slot is None or self._activation_passes(slot):
            return False
        self._used_no_more(raw)
        return True

    def _used_no_more(self, raw: Any) -> None:
        """The enabled profile (`raw`, as stored) not used until the next activation."""
        if _enabled_shape_ok(raw) and raw[0] is not None:
            self._ctx.transient[_ACTIVATION] = (raw, False)
        self._current_memo = None

    def _memory_problem(self, exc: Exception, gsm: bool = False) -> CardError:
        """The answer to an unexpected exception `exc` of a command (`process`,
        `select_response`, `run_rfm_script`), or `exc` raised again.

        A stored file record that does not decode (`DamagedRecord`) is damaged memory
        whatever `Slot.check` says (it does not read every file): 6581 "memory
        problem" (TS 102 221 §10.2.1.3; 9240 in class A0, `gsm`: TS 51.011 §9.4.2),
        and the enabled profile is used no more (until the next power-up's check). Any
        other exception is damage only if the profile now fails its check
        (`_found_damaged`), else a genuine fault, raised again (6F00).
        """
        if isinstance(exc, DamagedRecord):
            log.warning("a memory problem: %s", exc)  # a key's name, no value
            self._used_no_more(self._ctx.store.get("enabled", _NONE_ENABLED))
        elif not self._found_damaged():
            raise exc
        return CardError(_SW_GSM_MEMORY_PROBLEM if gsm else SW.MEMORY_FAILURE)

    def _channel_state(self, gen: int) -> dict[str, Any]:
        # A profile switch bumps the generation: the channel starts again at the MF.
        st = self._ctx.system.channel_state
        if st.get("gen") != gen:
            st.clear()
            st["gen"] = gen
        return st

    def _verified(self, gen: int) -> frozenset[int]:
        v = self.verified
        return v[1] if v is not None and v[0] == gen else _NO_REFS

    def _set_verified(self, gen: int, ref: int, ok: bool) -> None:
        v = self.verified
        if v is not None and v[0] == gen and (ref in v[1]) == ok:
            return  # unchanged: no transient write
        refs = self._verified(gen)
        self.verified = (gen, refs | {ref} if ok else refs - {ref})

    def _env(self, slot: Slot | None, gen: int) -> _Env:
        verified = self._verified(gen)
        # An _Env is immutable: the one made last serves while slot and set are the same.
        memo = self._env_memo
        if memo is not None and memo.cache_key is verified and memo.slot_is(slot):
            return memo
        env = self._env_memo = _Env(slot, verified)
        return env

    # -- the command path ----------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        """A command (see the module docstring), never an exception for a damaged profile.

        A record of the enabled profile damaged since its activation (found when a
        command reads it and the read fails) answers 6581, "memory problem" (TS 102
        221 §10.2.1.3; 9240 in class A0, TS 51.011 §9.4.2), and the profile is used
        no more (`_memory_problem`). An exception while the profile passes its check
        and no stored record failed to decode is a genuine fault and goes on to the
        runtime (6F00).
        """
        try:
            return self._process(apdu)
        except CardError:
            raise
        except Exception as e:
            raise self._memory_problem(e, apdu.cla == 0xA0) from None

    def _process(self, apdu: APDU) -> bytes | None:
        cla = apdu.cla
        if cla == 0xA0:
            try:
                if apdu.ins in (
                    Ins.TERMINAL_PROFILE,
                    _INS_FETCH,
                    _INS_TERMINAL_RESPONSE,
                    _INS_ENVELOPE,
                ):
                    # The SIM toolkit of 3GPP TS 51.014 / 11.14: the same commands, class A0.
                    if apdu.ins == Ins.TERMINAL_PROFILE:
                        self.system.card.toolkit.terminal_profile = bytes(apdu.data)
                        return None
                    return self._toolkit(apdu)
                return self._gsm_class(apdu)
            except CardError as e:
                raise CardError(gsm_status(e.sw)) from None
        ins = apdu.ins
        if ins in _PIN_INS and not cla & 0x80:
            # The PIN commands first (VERIFY is the commonest command): interindustry
            # class only (a proprietary one is 6E00 below), and they read neither the
            # channel's file state nor the environment.
            slot, gen = self._current()
            if slot is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            return self._pin_command(apdu, slot, gen)
        proprietary = bool(cla & 0x80)
        if proprietary and cla & 0xE0 not in (0x80, 0xC0):
            raise CardError(SW.CLA_NOT_SUPPORTED)
        if ins not in _ISO_INS and ins not in _PROPRIETARY_INS:
            raise CardError(SW.INS_NOT_SUPPORTED)
        # GET IDENTITY: taken in the proprietary class (8X) and in the interindustry
        # class (0X), which implementations of TS 31.102 §7.5 also send.
        if proprietary != (ins in _PROPRIETARY_INS) and ins != INS_GET_IDENTITY:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        slot, gen = self._current()
        state = self._channel_state(gen)
        env = self._env(slot, gen)
        if ins in _FS_INS:
            fs = slot.fs if slot is not None else self._base_fs()
            if ins in _WRITE_INS:
                return self._write(fs, state, env, apdu)
            if ins == Ins.READ_RECORD:
                data = fs.process(state, env, apdu)
                # For `quick_process`: the environment it was read under, with the
                # activation it ran on (the file system keeps the rest,
                # `FileSystem.read_record_prepared`).
                transient = self._ctx.transient
                state[_QUICK_READ] = (
                    transient.get("verified"),
                    fs,
                    env.cache_key,
                    transient.get(_ACTIVATION),
                )
                return data
            return fs.process(state, env, apdu)
        if ins in (Ins.TERMINAL_PROFILE, Ins.TERMINAL_CAPABILITY):
            if ins == Ins.TERMINAL_PROFILE:
                self.system.card.toolkit.terminal_profile = bytes(apdu.data)
            return None  # TERMINAL PROFILE / TERMINAL CAPABILITY: noted, nothing to answer
        if ins in (_INS_FETCH, _INS_TERMINAL_RESPONSE, _INS_ENVELOPE):
            return self._toolkit(apdu)
        if slot is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if ins == Ins.AUTHENTICATE:
            return self._authenticate(apdu, slot, state, env)
        if ins == INS_GET_IDENTITY:
            return self._get_identity(apdu, slot, state, env)
        return self._pin_command(apdu, slot, gen)

    def quick_process(self, command: bytes, channel: int) -> bytes | None:
        """READ RECORD of the current EF by record number (P2 04, short Le) on the quick path.

        A terminal reads records one after another (EF.MSISDN, EF.ADN, EF.SMS): once
        one READ RECORD of the current EF has been answered on the ordinary path,
        the next is answered from what that one found out
        (`FileSystem.read_record_prepared`: the record read from the store, within
        Ne) while the card's persistent state, this applet's verified PINs (the
        `verified` transient, by identity: every VERIFY, profile switch and reset
        changes or clears it), the enabled profile's activation (by identity: a
        profile found damaged, `_found_damaged`, is used no more on any channel) and
        the channel's current EF stay as they were. A reset, a SELECT on the channel,
        a deselect or a channel closed drop it with the channel state. Anything else
        is None: the ordinary path answers it.
        """
        if command[3] != 0x04 or len(command) != 5:
            return None
        ctx = self._ctx
        state = ctx.channel_states.get(channel)
        if state is None:
            return None
        prepared = state.get(_QUICK_READ)
        if prepared is None:
            return None
        transient = ctx.transient
        if (
            transient.get("verified") is not prepared[0]
            or transient.get(_ACTIVATION) is not prepared[3]
        ):
            return None
        try:
            record = prepared[1].read_record_prepared(
                state, prepared[2], command[2], command[4] or 256
            )
        except Exception:
            return None  # a damaged record: the ordinary path answers (`process`)
        return None if record is None else record + _SW9000

    # -- the toolkit (TS 102 223, TS 31.111) and SMS-PP download (TS 31.115) ------------------

    def _toolkit(self, apdu: APDU) -> bytes | None:
        if apdu.cla not in (0x80, 0xA0) or apdu.p1 or apdu.p2:
            raise CardError(SW.CLA_NOT_SUPPORTED if apdu.cla & 0x7F else SW.INCORRECT_P1P2)
        session = self.system.card.toolkit
        if apdu.ins == _INS_FETCH:
            return session.fetch(apdu.ne)
        if apdu.ins == _INS_TERMINAL_RESPONSE:
            issuer, command, _ = session.terminal_response(bytes(apdu.data))
            self.system.card.notify_terminal_response(issuer, command, bytes(apdu.data))
            return None
        return self._envelope(bytes(apdu.data))

    def _envelope(self, data: bytes) -> bytes | None:
        if self.system.card.toolkit.fetched is not None:
            # A proactive command is under way: 93 00 "toolkit busy" (TS 102 221 §10.2.1).
            raise CardError(_SW_TOOLKIT_BUSY)
        if data[:1] != bytes((cat.TAG_SMS_PP_DOWNLOAD,)):
            return None  # other envelopes (event download, ...): nothing registered for them
        try:
            tpdu, _ = cat.parse_sms_pp_download(data)
            deliver = sms.SmsDeliver.from_bytes(tpdu)
            if deliver.pid != sms.PID_DATA_DOWNLOAD or not deliver.udhi:
                raise CardError(SW.WRONG_DATA)
            segment = sms.command_segment(deliver.user_data)
        except (cat.CatError, sms.SmsError):
            raise CardError(SW.WRONG_DATA) from None
        pending = self.sms_reassembly
        reassembly = (
            sms.Reassembly(pending[0], pending[1], dict(pending[2]))
            if pending
            else sms.Reassembly()
        )
        packet = reassembly.add(segment)
        self.sms_reassembly = (
            None
            if packet is not None
            else (reassembly.reference, reassembly.total, tuple(reassembly.parts.items()))
        )
        if packet is None:
            return None  # more segments to come: acknowledged
        remote = self.system.get_shareable(UICC_ISD_AID, REMOTE_MANAGEMENT_PARAMETER)
        if remote is None:
            raise CardError(SW.FUNCTION_NOT_SUPPORTED)
        response = remote.process_command_packet(packet)
        if response is None:
            return None
        try:
            header, _ = scp80.parse_command_header(packet)
            by_submit = header.spi.por_by_submit
        except scp80.PacketError:
            by_submit = False
        if not by_submit:
            # For the SMS-DELIVER-REPORT (TS 31.111 §7.1.1.2): one message, whatever its length.
            return sms.response_user_data(response)
        # One SEND SHORT MESSAGE per short message: a long PoR goes concatenated.
        reference = self.system.rng.random(1)[0]
        for part in sms.segment_response_packet(response, reference):
            submit = sms.SmsSubmit(deliver.originator, part)
            self.system.send_proactive(cat.send_short_message(submit.to_bytes()))
        return None

    # -- Remote File Management (TS 102 226 §6) ---------------------------------------------------

    def run_rfm_script(self, tar: bytes, script: bytes) -> bytes:
        """An RFM script on the enabled profile's files; 6581 if a damaged record of it
        stops the script (as in `process`)."""
        try:
            return self._run_rfm_script(tar, script)
        except CardError:
            raise
        except Exception as e:
            raise self._memory_problem(e) from None

    def _run_rfm_script(self, tar: bytes, script: bytes) -> bytes:
        slot, gen = self._current()
        fs = slot.fs if slot is not None else self._base_fs()
        env = _Env(slot, _ALL_KEYS)
        state: dict[str, Any] = {"gen": gen}
        if is_usim_rfm_tar(tar):
            usim = next((n for n, _ in fs.applications() if n.startswith(USIM_AID_PREFIX)), None)
            if usim is None:
                raise CardError(SW.FILE_NOT_FOUND)
            fs.select(state, 0x04, 0x0C, usim, env)

        def execute(cmd: CommandApdu) -> tuple[bytes, int]:
            if cmd.ins not in _FS_INS or cmd.cla not in (0x00, 0x80):
                return b"", SW.INS_NOT_SUPPORTED
            if (cmd.cla == 0x80) != (cmd.ins in (Ins.STATUS, Ins.INCREASE)):
                return b"", SW.CLA_NOT_SUPPORTED
            a = APDU(cmd, 0)
            try:
                if cmd.ins in _WRITE_INS:
                    return self._write(fs, state, env, a) or b"", 0x9000
                return fs.process(state, env, a) or b"", 0x9000
            except CardError as e:
                return (e.data if e.sw >> 8 in (0x62, 0x63) else b""), e.sw & 0xFFFF

        return ram.run_script(script, execute, _RFM_CASE2)

    # -- PINs (TS 102 221 §11.1.9-13) -------------------------------------------------------

    def _pin_command(self, apdu: APDU, slot: Slot, gen: int) -> bytes | None:
        ins, ref, data = apdu.ins, apdu.p2, apdu.data
        if apdu.p1 != 0x00:
            raise CardError(SW.WRONG_P1P2)
        rec = slot.pin(ref)
        if rec is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if ins == Ins.VERIFY_PIN:
            self._verify(slot, gen, ref, rec, data)
            return None
        if ins == Ins.UNBLOCK_PIN:
            self._unblock(slot, gen, ref, rec, data)
            return None
        expected = 2 * PIN_LENGTH if ins == Ins.CHANGE_PIN else PIN_LENGTH
        if len(data) != expected:
            raise CardError(SW.WRONG_LENGTH)
        if ins == Ins.CHANGE_PIN:  # CHANGE PIN
            if not rec.enabled:
                raise CardError(SW.REFERENCE_DATA_NOT_USABLE)
            new = data[PIN_LENGTH:]
            if not _valid_new_pin(ref, new):
                raise CardError(SW.WRONG_DATA)
            rec = self._check_pin(slot, gen, ref, rec, data[:PIN_LENGTH])
            slot.set_pin(ref, replace(rec, value=bytes(new), tries=rec.limit))
            self._set_verified(gen, ref, True)
            return None
        # DISABLE (26) / ENABLE (28): application PINs and the universal PIN only.
        if ref & 0x80 or _is_adm(ref):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        want_enabled = ins == Ins.ENABLE_PIN
        if rec.enabled == want_enabled:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        rec = self._check_pin(slot, gen, ref, rec, data)
        slot.set_pin(ref, replace(rec, enabled=want_enabled))
        self._set_verified(gen, ref, True)
        return None

    def _check_pin(self, slot: Slot, gen: int, ref: int, rec: PinRecord, value: bytes) -> PinRecord:
        """Compare a PIN: the counter goes down first, and back up on success."""
        if rec.tries <= 0:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        slot.set_pin_tries(ref, rec, rec.tries - 1)
        if hmac.compare_digest(rec.value, bytes(value)):
            # A record already at its limit (a correct VERIFY before) is itself the
            # restored one: not rebuilt, and `Slot.pin` finds it again next time.
            restored = rec if rec.tries == rec.limit else _with_tries(rec, rec.limit)
            slot.set_pin(ref, restored)
            return restored
        self._set_verified(gen, ref, False)
        raise CardError(0x63C0 | (rec.tries - 1))

    def _verify(self, slot: Slot, gen: int, ref: int, rec: PinRecord, data: bytes) -> None:
        if not data:
            if rec.tries == 0:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            if ref in self._verified(gen) or (not rec.enabled and not _is_adm(ref)):
                return None
            raise CardError(0x63C0 | rec.tries)
        if len(data) != PIN_LENGTH:
            raise CardError(SW.WRONG_LENGTH)
        self._check_pin(slot, gen, ref, rec, data)
        self._set_verified(gen, ref, True)
        return None

    def _unblock(self, slot: Slot, gen: int, ref: int, rec: PinRecord, data: bytes) -> None:
        if rec.puk is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if not data:
            if rec.puk_tries == 0:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            raise CardError(0x63C0 | rec.puk_tries)
        if len(data) != 2 * PIN_LENGTH:
            raise CardError(SW.WRONG_LENGTH)
        new = data[PIN_LENGTH:]
        if not _valid_new_pin(ref, new):
            raise CardError(SW.WRONG_DATA)
        if rec.puk_tries <= 0:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        slot.set_pin(ref, replace(rec, puk_tries=rec.puk_tries - 1))
        if not hmac.compare_digest(rec.puk, bytes(data[:PIN_LENGTH])):
            self._set_verified(gen, ref, False)
            raise CardError(0x63C0 | (rec.puk_tries - 1))
        slot.set_pin(ref, replace(rec, value=bytes(new), tries=rec.limit, puk_tries=rec.puk_limit))
        self._set_verified(gen, ref, True)
        return None

    # -- AUTHENTICATE (TS 31.102 §7.1.2) ---------------------------------------------------------

    def _authenticate(self, apdu: APDU, slot: Slot, state: dict[str, Any], env: _Env) -> bytes:
        if apdu.p1 != 0x00:
            raise CardError(SW.WRONG_P1P2)
        if apdu.p2 not in (_AUTH_GSM, _AUTH_3G):
            raise CardError(SW.INCORRECT_P1P2)
        app = slot.fs.current_application(state)
        name = (app.name or b"") if app is not None else b""
        isim = name.startswith(ISIM_AID_PREFIX)
        if app is None or not (isim or name.startswith(USIM_AID_PREFIX)):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if isim and apdu.p2 != _AUTH_3G:
            # TS 31.103 §7.1.2: the ISIM's AKA context is IMS AKA (P2 81); no GSM context.
            raise CardError(SW.INCORRECT_P1P2)
        if not env.is_verified(PIN1):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        # The ISIM runs its own keys and SQN state when the profile gives it some
        # (Profile.app_auth), else the profile's (the USIM's); its answer has no Kc.
        services = frozenset() if isim else self._services(slot, app.handle)
        aid = name if isim else None
        alg = slot.algorithm(aid)
        if apdu.p2 == _AUTH_GSM:
            if SERVICE_GSM_SECURITY_CONTEXT not in services:
                raise CardError(SW.AUTH_CONTEXT_UNSUPPORTED)
            (rand,) = parse_lv_items(apdu.data, 1)
            return authenticate_gsm(alg, rand)
        rand, autn = parse_lv_items(apdu.data, 2)
        resp, new_state = authenticate_3g(
            alg,
            slot.sqn_policy(aid),
            slot.sqn_state(aid),
            rand,
            autn,
            with_kc=SERVICE_GSM_ACCESS in services,
        )
        if new_state is not None:
            version = self.system.nvm_version_now
            before = version()
            slot.set_sqn_state(new_state, aid)
            # The SQN write is the one change since `before`: a services memo taken at
            # `before` still holds (the service table is not the SQN), so it moves on.
            memo = self.__dict__.get("_services_memo")
            if memo is not None and memo[2] == before:
                after = version()
                if after[1] == before[1] and after[0] - before[0] <= 1:
                    self.__dict__["_services_memo"] = (memo[0], memo[1], after, memo[3])
        return resp

    def _get_identity(self, apdu: APDU, slot: Slot, state: dict[str, Any], env: _Env) -> bytes:
        """GET IDENTITY in the SUCI context, TS 31.102 §7.5 (see applets.usim.suci)."""
        if apdu.p1 != 0x00:
            raise CardError(SW.WRONG_P1P2)
        if apdu.p2 != P2_SUCI_CONTEXT:
            raise CardError(SW.INCORRECT_P1P2)
        if apdu.data:
            raise CardError(SW.WRONG_LENGTH)
        app = slot.fs.current_application(state)
        if app is None or not (app.name or b"").startswith(USIM_AID_PREFIX):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if not env.is_verified(PIN1):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        adf = app.handle
        if not {SERVICE_SUPI_PRIVACY, SERVICE_SUCI_BY_USIM} <= self._services(slot, adf):
            raise CardError(SW.FUNCTION_NOT_SUPPORTED)

        def ef(path: str) -> bytes | None:
            try:
                v = slot.fs.read(f"{adf}/{path}")
            except CardError:
                return None
            return v if isinstance(v, bytes) else None

        calc_info = ef(f"{DF_SAIP:04X}/{EF_SUCI_CALC_INFO_USIM:04X}")
        raw_imsi, raw_ad = ef(f"{_EF_IMSI:04X}"), ef(f"{_EF_AD:04X}")
        if calc_info is None or raw_imsi is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        try:
            imsi = decode_imsi(raw_imsi)
            mnc_length = decode_ad(raw_ad).mnc_length if raw_ad else 2
        except ValueError:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED) from None
        ri = ef(f"{DF_5GS:04X}/{EF_ROUTING_INDICATOR:04X}")
        return calculate_suci(calc_info, ri, imsi, mnc_length, self.system.rng)

    def _services(self, slot: Slot, adf: str) -> frozenset[int]:
        """The services of EF.UST (TS 31.102 §4.2.8), kept while the NVM version stays."""
        now = self.system.nvm_version_now()
        memo = self.__dict__.get("_services_memo")
        if memo is not None and memo[0] is slot and memo[1] == adf and memo[2] == now:
            services: frozenset[int] = memo[3]
            return services
        services = self._read_services(slot, adf)
        self.__dict__["_services_memo"] = (slot, adf, now, services)
        return services

    @staticmethod
    def _read_services(slot: Slot, adf: str) -> frozenset[int]:
        try:
            ust = slot.fs.read(f"{adf}/{_EF_UST:04X}")
        except CardError:
            return frozenset()
        return decode_service_table(ust) if isinstance(ust, bytes) else frozenset()

    # -- Shared files (TS 51.011 §10.3 / TS 31.102 §4.2) --------------------------------------

    def _write(self, fs: FileSystem, state: dict[str, Any], env: _Env, apdu: APDU) -> bytes:
        """A write command; an EF DF.GSM shares with ADF.USIM gets its twin written too."""
        with self.system.transaction():
            out = fs.process(state, env, apdu)
            info = fs.current_ef(state)
            twin = self._twin(fs, info.handle)
            if twin is not None:
                fs.write(twin, fs.read(info.handle))
        return out

    @staticmethod
    def _twin(fs: FileSystem, handle: str) -> str | None:
        """The other copy of an EF of ts_51_011.SHARED_WITH_USIM, if the card has both."""
        info = fs.info(handle)
        if info is None or info.fid not in SHARED_WITH_USIM or info.parent is None:
            return None
        gsm = fs.child(MF_HANDLE, DF_GSM)
        usim = next((h for n, h in fs.applications() if n.startswith(USIM_AID_PREFIX)), None)
        if gsm is None or usim is None:
            return None
        if info.parent == gsm:
            other = fs.child(usim, info.fid)
        elif info.parent == usim:
            other = fs.child(gsm, info.fid)
        else:
            return None
        twin = fs.info(other) if other is not None else None
        if twin is None or (twin.fdb & 0x07, twin.size, twin.record_length) != (
            info.fdb & 0x07,
            info.size,
            info.record_length,
        ):
            return None  # not the same shape: two files after all
        return twin.handle

    # -- CLA A0: the GSM view (TS 51.011 §9) ------------------------------------------------

    def _gsm_class(self, apdu: APDU) -> bytes | None:
        ins = apdu.ins
        slot, gen = self._current()
        if ins in _GSM_CHV_INS:
            if apdu.p1 != 0x00:
                raise CardError(SW.INCORRECT_P1P2)
            self._gsm_chv(apdu, slot, gen)
            return None
        if ins == Ins.GET_RESPONSE:
            # GET RESPONSE with nothing left to get (the runtime serves pending data):
            # TS 51.011 §9.4.5 67XX, incorrect P3 (no response of that length exists).
            raise CardError(SW_INCORRECT_P3)
        if ins not in _GSM_FS_INS and ins != _GSM_RUN_ALGORITHM:
            raise CardError(SW_UNKNOWN_INS)
        fs = slot.fs if slot is not None else self._base_fs()
        state = self._channel_state(gen)
        env = self._env(slot, gen)
        if ins == _GSM_RUN_ALGORITHM:
            return self._run_gsm_algorithm(apdu, slot, fs, state, env)
        if ins == Ins.SELECT:
            if apdu.p1 or apdu.p2:
                raise CardError(SW.INCORRECT_P1P2)
            if len(apdu.data) != 2:
                raise CardError(SW.WRONG_LENGTH)
            fs.select(state, 0x00, 0x0C, apdu.data, env)
            try:
                info = fs.current_ef(state)
            except CardError:
                info = fs.current_df(state)  # a DF was selected: there is no current EF
            return self._gsm_response(fs, info, slot, env)
        if ins == Ins.STATUS:
            if apdu.p1 or apdu.p2:
                raise CardError(SW.INCORRECT_P1P2)
            return self._gsm_response(fs, fs.current_df(state), slot, env)
        if ins == Ins.READ_RECORD and apdu.p2 > 0x04:
            raise CardError(SW.INCORRECT_P1P2)
        if ins in (Ins.READ_BINARY, Ins.UPDATE_BINARY) and apdu.p1 & 0x80:
            raise CardError(SW.WRONG_P1P2)
        if ins in _WRITE_INS:
            return self._write(fs, state, env, apdu)
        return fs.process(state, env, apdu)

    def _gsm_chv(self, apdu: APDU, slot: Slot | None, gen: int) -> None:
        """VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK CHV (TS 51.011 §9.2.9-13).

        The checks the UICC commands make (counter written down first, constant-time
        comparison) are theirs; what differs is the CHV numbering and the status
        words: a failed comparison is 9804 with attempts left, 9840 without.
        """
        ins, p2, data = apdu.ins, apdu.p2, apdu.data
        if ins == Ins.UNBLOCK_PIN:
            ref = {UNBLOCK_CHV1: PIN1, CHV1: PIN1, CHV2: PIN2}.get(p2)
        elif ins in (Ins.DISABLE_PIN, Ins.ENABLE_PIN):
            ref = PIN1 if p2 == CHV1 else None  # only CHV1 can be disabled (§9.2.11-12)
        else:
            ref = {CHV1: PIN1, CHV2: PIN2}.get(p2)
        if ref is None:
            raise CardError(SW.INCORRECT_P1P2)
        if len(data) != (
            2 * CHV_LENGTH if ins in (Ins.CHANGE_PIN, Ins.UNBLOCK_PIN) else CHV_LENGTH
        ):
            raise CardError(SW.WRONG_LENGTH)
        rec = slot.pin(ref) if slot is not None else None
        if slot is None or rec is None or (ins == Ins.UNBLOCK_PIN and rec.puk is None):
            raise CardError(SW_NO_CHV)
        if ins in (Ins.CHANGE_PIN, Ins.UNBLOCK_PIN) and not _valid_new_pin(ref, data[CHV_LENGTH:]):
            raise CardError(SW.INCORRECT_P1P2)  # 6B00: §9.4 has no word for bad data
        if ins == Ins.UNBLOCK_PIN:
            self._unblock(slot, gen, ref, rec, data)
            return
        if ins in (Ins.VERIFY_PIN, Ins.CHANGE_PIN) and not rec.enabled:
            raise CardError(SW_CHV_CONTRADICTION)  # CHV1 disabled: nothing to verify or change
        if (ins == Ins.DISABLE_PIN and not rec.enabled) or (ins == Ins.ENABLE_PIN and rec.enabled):
            raise CardError(SW_CHV_CONTRADICTION)
        if rec.tries <= 0:
            raise CardError(SW_CHV_BLOCKED)
        rec = self._check_pin(slot, gen, ref, rec, data[:CHV_LENGTH])
        if ins == Ins.CHANGE_PIN:
            rec = replace(rec, value=bytes(data[CHV_LENGTH:]))
        elif ins in (Ins.DISABLE_PIN, Ins.ENABLE_PIN):
            rec = replace(rec, enabled=ins == Ins.ENABLE_PIN)
        if ins != Ins.VERIFY_PIN:
            slot.set_pin(ref, rec)
        self._set_verified(gen, ref, True)

    def _run_gsm_algorithm(
        self, apdu: APDU, slot: Slot | None, fs: FileSystem, state: dict[str, Any], env: _Env
    ) -> bytes:
        """RUN GSM ALGORITHM (TS 51.011 §9.2.16): SRES || Kc for RAND.

        The SIM's A3/A8 is the profile's 3G algorithm with the conversion functions
        c2 and c3 (TS 33.102 §6.8.1.2), as on a USIM in the GSM security context.
        """
        if apdu.p1 or apdu.p2:
            raise CardError(SW.INCORRECT_P1P2)
        if len(apdu.data) != RUN_GSM_RAND_LENGTH:
            raise CardError(SW.WRONG_LENGTH)
        # §9.2.16: only with DF.GSM, or a DF under it, as the current directory.
        gsm = fs.child(MF_HANDLE, DF_GSM)
        h: str | None = fs.current_df(state).handle
        while h is not None and h != gsm:
            parent = fs.info(h)
            h = parent.parent if parent is not None else None
        if slot is None or gsm is None or h is None or not env.is_verified(PIN1):
            raise CardError(SW_ACCESS_NOT_FULFILLED)
        sres, kc = gsm_sres_kc(slot.algorithm(), bytes(apdu.data))
        return sres + kc

    def _gsm_response(self, fs: FileSystem, info: Any, slot: Slot | None, env: _Env) -> bytes:
        if not info.is_df:
            return ef_response(info, fs.access_rules(info, env.se))
        kids = [fs.info(h) for h in fs.children(info.handle)]
        n_df = sum(1 for k in kids if k is not None and k.is_df)
        n_ef = sum(1 for k in kids if k is not None and not k.is_df)

        def status(ref: int, puk: bool) -> ChvStatus:
            rec = slot.pin(ref) if slot is not None else None
            if rec is None or (puk and rec.puk is None):
                return ChvStatus(False, 0)
            return ChvStatus(True, rec.puk_tries if puk else rec.tries)

        return df_response(
            info,
            children_df=n_df,
            children_ef=n_ef,
            chv1=status(PIN1, False),
            puk1=status(PIN1, True),
            chv2=status(PIN2, False),
            puk2=status(PIN2, True),
            chv1_enabled=env.pin_enabled(PIN1),
            free_memory=min(self.system.available_memory(), 0xFFFF),
        )

    # -- the profile store (card.profiles.ProfileStoreInterface) ------------------------------

    def _slots(self) -> list[Slot]:
        """Every profile slot, in installation order.

        Raises:
            DamagedRecord: the stored "profiles" record is not a tuple of slot numbers.
        """
        numbers = self.system.store.get("profiles", ())
        if type(numbers) is not tuple or not all(type(n) is int for n in numbers):
            raise DamagedRecord("the stored record profiles is not of its shape")
        return [self._slot(n) for n in numbers]

    def _find(self, iccid: str) -> Slot:
        for s in self._slots():
            if s.stored_iccid == iccid:
                return s
        raise ProfileStoreError(ProfileStoreReason.ICCID_NOT_FOUND, f"no profile {iccid}")

    def list_profiles(self) -> tuple[ProfileSummary, ...]:
        """Every installed profile; one whose metadata record is damaged is listed too.

        A real eUICC keeps a profile's ISD-P, and the ISD-R's knowledge of it, even when
        the profile's contents fail: the slot is still taken, the profile cannot be
        enabled (`enable_profile`: DAMAGED) and can still be deleted. So a slot whose
        metadata record does not read back (`Slot.readable`) is listed with
        `damaged` set, its ICCID if the record still names one ("" if not), whether it
        is the enabled one, and nothing else; one slot's damage does not hide the others.
        """
        current, _ = self._enabled_slot()
        out = []
        for s in self._slots():
            enabled = current is not None and current.number == s.number
            if not s.readable():
                out.append(ProfileSummary(s.stored_iccid or "", "", "", enabled, damaged=True))
                continue
            iccid, name, provider, metadata, apps, _refs = s.meta[:6]
            imsi = None
            adf = next((h for n, h in s.fs.applications() if n.startswith(USIM_AID_PREFIX)), None)
            if adf is not None:
                try:
                    raw = s.fs.read(f"{adf}/{_EF_IMSI:04X}")
                    imsi = decode_imsi(raw) if isinstance(raw, bytes) else None
                except (CardError, ValueError, DamagedRecord):
                    imsi = None  # EF.IMSI unreadable: listed without it
            out.append(
                ProfileSummary(
                    iccid,
                    name,
                    provider,
                    enabled,
                    imsi,
                    tuple(a[0] for a in apps),
                    metadata,
                )
            )
        return tuple(out)

    def enabled_profile(self) -> str | None:
        """The enabled profile's ICCID as the ISD-R sees it (`list_profiles`): also when it
        is damaged or not activated (`_current`); "" when its damaged metadata record
        names no ICCID any more (a profile is enabled all the same)."""
        current, _ = self._enabled_slot()
        return None if current is None else current.stored_iccid or ""

    def install_profile(self, data: bytes) -> str:
        try:
            profile = _parsed_profile(bytes(data))
        except ProfileFormatError as e:
            raise ProfileStoreError(ProfileStoreReason.BAD_FORMAT, str(e)) from None
        return self._install(profile)

    def install_profile_package(self, package: bytes, name: str = "", provider: str = "") -> str:
        try:
            result = profile_from_package(
                bytes(package), name=str(name), provider=str(provider), apps=self._resolve_app
            )
        except SaipError as e:
            reason = (
                ProfileStoreReason.NO_MEMORY
                if e.status == PeStatus.NOT_ENOUGH_MEMORY
                else ProfileStoreReason.BAD_FORMAT
            )
            raise ProfileStoreError(reason, str(e), pe_id=e.pe_id, pe_status=e.status) from None
        return self._install(result.profile)

    def _resolve_app(self, package_aid: bytes, class_aid: bytes) -> str | None:
        """The catalogued class an application PE names by its load file and class AIDs.

        Catalogued classes carry the AIDs card.gp.loadfile derives for them (the
        package's and the module's default AIDs), as their load files do.
        """
        from card.gp.loadfile import default_module_aid, default_package_aid

        for ref in sorted(self.system.card.catalogue.refs()):
            module = ref.partition(":")[0]
            packages = {module, module.rpartition(".")[0]}
            if default_module_aid(ref) == class_aid and package_aid in {
                default_package_aid(p) for p in packages if p
            }:
                return ref
        return None

    def _install(self, profile: Profile) -> str:
        store = self.system.store
        if any(s.stored_iccid == profile.iccid for s in self._slots()):
            raise ProfileStoreError(ProfileStoreReason.ICCID_EXISTS, f"{profile.iccid} exists")
        try:
            with self.system.transaction():
                number = store.get("next_slot", 0)
                store.set("next_slot", number + 1)
                slot = self._slot(number)
                slot.write(profile)
                self._install_apps(profile)
                self._install_sds(profile)
                store.set("profiles", store.get("profiles", ()) + (number,))
                # Its instances are gated (`gated_aids`) from now on, also an SD
                # instance already on the card for another profile (no registry change).
                self.system.card.selection_gates_changed()
        except ProfileFormatError as e:
            raise ProfileStoreError(ProfileStoreReason.BAD_FORMAT, str(e)) from None
        except OutOfMemory as e:
            raise ProfileStoreError(ProfileStoreReason.NO_MEMORY, str(e)) from None
        return profile.iccid

    def _install_apps(self, profile: Profile) -> None:
        if not profile.apps:
            return
        card = self.system.card
        for app in profile.apps:
            try:
                cls = card.catalogue.resolve(app.class_ref)
                card.install(cls, app.aid, app.params, lifecycle=_LOCKED)
            except (CatalogueError, CardError) as e:
                raise ProfileStoreError(
                    ProfileStoreReason.APPLICATION, f"application {app.aid.hex()}: {e}"
                ) from None

    def _applications(self, slot: Slot) -> tuple[tuple[bytes, int], ...]:
        lcs = {bytes(a): lc for a, _r, lc, _d in self.system.card.applets()}
        return tuple((x.aid, lcs[x.aid]) for x in slot.apps() if x.aid in lcs)

    def _install_sds(self, profile: Profile) -> None:
        """One ProfileSecurityDomain instance per SD AID on the card (sd.py), locked."""
        card = self.system.card
        ref = class_ref(ProfileSecurityDomain)
        present = {bytes(aid): r for aid, r, _lc, _d in card.applets()}
        for sd in profile.security_domains:
            have = present.get(sd.aid)
            if have == ref:
                continue
            if have is not None:
                raise ProfileStoreError(
                    ProfileStoreReason.APPLICATION,
                    f"security domain {sd.aid.hex().upper()}: the AID is another application's",
                )
            try:
                card.install(ProfileSecurityDomain, sd.aid, lifecycle=_LOCKED)
            except CardError as e:
                raise ProfileStoreError(
                    ProfileStoreReason.APPLICATION, f"security domain {sd.aid.hex()}: {e}"
                ) from None

    def _sd_aids(self, slot: Slot | None) -> set[bytes]:
        if slot is None:
            return set()
        # No SD record decoded, and found by the slot's keys when its metadata is
        # damaged (`Slot.sd_aids`): damage hides no instance.
        return set(slot.sd_aids())

    @staticmethod
    def _app_aids(slot: Slot) -> tuple[bytes, ...]:
        """The AIDs of the slot's applications, also when its metadata record is damaged
        (`Slot.app_aids`: the slot's application records)."""
        return slot.app_aids()

    def _switch_sds(self, old: Slot | None, new: Slot | None) -> None:
        """Lock `old`'s security domain instances that `new` has not, make `new`'s selectable.

        As `_set_apps`: an SD instance that is gone (a GP DELETE by the card issuer)
        needs no lock, so the profile it served can still be disabled and deleted; it
        cannot be made selectable, so the profile is not enabled (`enable_profile`).

        Raises:
            ProfileStoreError: APPLICATION, an SD instance to make selectable is gone.
        """
        card = self.system.card
        for aid in self._sd_aids(old) - self._sd_aids(new):
            try:
                card.set_lifecycle(aid, _LOCKED)
            except CardError:
                pass  # gone: nothing to lock
        for aid in self._sd_aids(new):
            try:
                card.set_lifecycle(aid, _SELECTABLE)
            except CardError:
                raise ProfileStoreError(
                    ProfileStoreReason.APPLICATION,
                    f"security domain {aid.hex().upper()} is not on the card",
                ) from None

    def _set_apps(self, slot: Slot | None, lifecycle: int) -> None:
        """Lock or make selectable the slot's application instances.

        An instance that is gone (a GP DELETE by the card issuer): its lock is moot; it
        cannot be made selectable, so the profile cannot run as it was installed and is
        not enabled (`enable_profile`).

        Raises:
            ProfileStoreError: APPLICATION, an instance to make selectable is gone.
        """
        if slot is None:
            return
        aids = self._app_aids(slot)
        if aids:
            card = self.system.card
            for aid in aids:
                try:
                    card.set_lifecycle(aid, lifecycle)
                except CardError:
                    if lifecycle != _LOCKED:
                        raise ProfileStoreError(
                            ProfileStoreReason.APPLICATION,
                            f"application {aid.hex()} is not on the card",
                        ) from None

    def _deselect_profile(self, slot: Slot | None, keep: Slot | None = None) -> None:
        """Deselect a profile's applications and security domains on every logical channel.

        GSMA SGP.22 §1.4 (Disabled): none of a disabled profile's files and applications
        is selectable over the terminal interface. Locking its instances (`_set_apps`,
        `_switch_sds`) stops new SELECTs; this ends the selections made while it was
        enabled, so that a later command on such a channel reaches no application of it
        (the runtime answers 6999, Java Card's SW_APPLET_SELECT_FAILED, as on a channel
        whose SELECT failed; a new SELECT of the locked AID answers 6A82, ISO 7816-4
        "file or application not found"). A security domain instance
        `keep` (the enabled profile) also has stays selected: it answers for that
        profile's record. The USIM's own view (its ADF and PINs) is reset by the
        'enabled' generation instead (`_current`). Enable, disable and delete call this
        inside their transaction, so the deselection takes effect when it commits
        (`CardRuntime.deselect_everywhere`): a refusal, or a rollback of the caller's
        transaction that the operation joined, deselects nothing; selection is RAM, so a
        tear (power lost: every channel closes) leaves nothing of it behind. Called
        before the switch's writes: an instance the gates refuse then (its profile
        found damaged or not activated) is dropped without its `deselect()` running
        (`CardRuntime._gated_off`).
        """
        if slot is None:
            return
        card = self.system.card
        for aid in self._app_aids(slot):
            card.deselect_everywhere(aid)
        for aid in self._sd_aids(slot) - self._sd_aids(keep):
            card.deselect_everywhere(aid)

    def _intact(self, slot: Slot) -> Slot:
        """`slot`, if its stored profile passes the integrity check (`Slot.check`).

        Raises:
            ProfileStoreError: DAMAGED, nothing changed.
        """
        try:
            slot.check()
        except DamagedProfile as e:
            raise ProfileStoreError(ProfileStoreReason.DAMAGED, str(e)) from None
        return slot

    def enable_profile(self, iccid: str) -> None:
        """Enable a disabled profile, disabling the one enabled before (one transaction).

        A profile is checked before any write (`Slot.check`: its install-time records
        against the seal written with them, the shape of what commands change; no
        file content read, nothing decoded whole): a damaged one is not enabled, as
        an eUICC does not switch the terminal to a profile it cannot run, and the
        one enabled stays enabled.

        A profile one of whose applications or security domains the card issuer
        deleted (GP DELETE) is not enabled either, the transaction rolled back
        (APPLICATION): ES10c answers it undefinedError(127) (SGP.22 §5.7.16), as no
        other enableResult is true of it (iccidOrAidNotFound names the profile, which
        is there; the others are states and policy rules). It can still be deleted (`_delete`).

        A move-bound profile's FIG. 4 check is the caller's, run just before (the
        store's clients, card.profiles.PROFILE_STORE_CLIENTS: the ISD-R's
        `_binding_allows`, the move agent's ACTIVATE): the activation at the first
        command after the enable (`_activate`) runs the integrity check again, not
        FIG. 4, so one EnableProfile checks the binding once. What is noted is RAM,
        keyed by the "enabled" value stored (`_BINDING_CHECKED`): a rollback of the
        caller's transaction brings back another value, and the next power-up or
        reset checks the binding again.

        Raises:
            ProfileStoreError: ICCID_NOT_FOUND, NOT_DISABLED, DAMAGED, APPLICATION.
        """
        target = self._find(iccid)
        current, gen = self._enabled_slot()
        if current is not None and current.number == target.number:
            raise ProfileStoreError(ProfileStoreReason.NOT_DISABLED, f"{iccid} is enabled")
        self._intact(target)
        with self.system.transaction():
            # First, while the gates still see the profile as it was: an application
            # of a profile not activated is dropped without its deselect() running.
            self._deselect_profile(current)
            self._set_apps(current, _LOCKED)
            self._set_apps(target, _SELECTABLE)
            self._switch_sds(current, target)
            enabled = (target.number, gen + 1)
            self.system.store.set("enabled", enabled)
        # Only a client's enable comes with its FIG. 4 check (this applet's own, at its
        # installation with a profile, does not): the caller is the previous context.
        caller = self.system.previous_context_aid
        if caller is not None and bytes(caller) in PROFILE_STORE_CLIENTS:
            self._ctx.transient[_BINDING_CHECKED] = enabled

    def disable_profile(self, iccid: str) -> None:
        target = self._find(iccid)
        current, _ = self._enabled_slot()
        if current is None or current.number != target.number:
            raise ProfileStoreError(ProfileStoreReason.NOT_ENABLED, f"{iccid} is not enabled")
        self._disable(current)

    def _disable(self, current: Slot) -> None:
        """Disable the enabled profile `current` (one transaction)."""
        _, gen = self._enabled_slot()
        with self.system.transaction():
            self._deselect_profile(current)  # first: as in `enable_profile`
            self._set_apps(current, _LOCKED)
            self._switch_sds(current, None)
            self.system.store.set("enabled", (None, gen + 1))

    def delete_profile(self, iccid: str) -> None:
        """Delete a disabled profile with its applications and security domains.

        SGP.22 §5.7.18 (ES10c.DeleteProfile) refuses an enabled profile only
        (profileNotInDisabledState); a disabled one has no "in use" error. Disabling
        already deselected its instances everywhere, and `_deselect_profile` makes
        sure once more (a Java Card instance is deleted only while not active), then
        they are deleted: nothing of the profile stays on the card. An MNO-SD instance
        whose AID another profile still has stays, for that profile, selected only
        where the enabled profile has it too.

        A damaged profile is deleted too (its slot freed, its records erased), with
        its security domains and its other applications: the slot's SD and
        application records name them by their keys even when the metadata record
        that lists them is damaged (`Slot.sd_aids`, `Slot.app_aids`), and the
        profile's disable locked them the same way. Only a profile stored before the
        application records existed, its metadata damaged, leaves its applications:
        the card's registry records no owner, and deleting on a guess could remove
        another party's applet; they stay (selectable if they were when the metadata
        was damaged) until a GP DELETE by the card issuer.
        """
        target = self._find(iccid)
        current, _ = self._enabled_slot()
        if current is not None and current.number == target.number:
            raise ProfileStoreError(ProfileStoreReason.NOT_DISABLED, f"{iccid} is enabled")
        self._delete(target, current)

    def nameless_slots(self) -> tuple[int, ...]:
        return tuple(s.number for s in self._slots() if s.stored_iccid is None)

    def delete_nameless_slot(self, number: int) -> None:
        """Delete the profile in slot `number`, whose damaged metadata record names no
        ICCID, disabling it first if it is enabled (one transaction).

        Such a profile is listed to no ES10c function (applets.isdr.profiles), so
        DeleteProfile cannot name it; eUICCMemoryReset, which deletes every
        operational profile (SGP.22 §5.7.19), does, by its slot. Only a nameless
        slot: a profile that still has its ICCID goes by `delete_profile`.

        Raises:
            ProfileStoreError: ICCID_NOT_FOUND (no such slot, or its record names an
            ICCID), APPLICATION (an instance could not be deleted).
        """
        target = next(
            (s for s in self._slots() if s.number == number and s.stored_iccid is None), None
        )
        if target is None:
            raise ProfileStoreError(
                ProfileStoreReason.ICCID_NOT_FOUND, f"no nameless profile in slot {number}"
            )
        with self.system.transaction():
            current, _ = self._enabled_slot()
            if current is not None and current.number == target.number:
                self._disable(current)
                current = None
            self._delete(target, current)

    def _delete(self, target: Slot, current: Slot | None) -> None:
        """Delete the disabled profile `target` (`current`: the enabled one; one transaction).

        An instance of it already gone from the card (a GP DELETE by the card issuer) is
        skipped: what the delete would remove is removed, and DeleteProfile and
        eUICCMemoryReset do not fail on it for ever.
        """
        store = self.system.store
        card = self.system.card
        with self.system.transaction():
            self._deselect_profile(target, keep=current)
            present = {bytes(a) for a, *_ in card.applets()}
            for aid in self._app_aids(target):
                if aid not in present:
                    continue
                try:
                    card.delete(aid)
                except CardError as e:
                    raise ProfileStoreError(
                        ProfileStoreReason.APPLICATION, f"application {aid.hex()}: {e}"
                    ) from None
            store.set("profiles", tuple(n for n in store.get("profiles", ()) if n != target.number))
            # A security domain instance goes with the last profile that has its AID.
            others = set().union(*(self._sd_aids(s) for s in self._slots()))
            for aid in (self._sd_aids(target) - others) & present:
                try:
                    card.delete(aid)
                except CardError as e:
                    raise ProfileStoreError(
                        ProfileStoreReason.APPLICATION, f"security domain {aid.hex()}: {e}"
                    ) from None
            target.erase()
        self.__dict__.get("_slot_cache", {}).pop(target.number, None)
        self._current_memo = None  # they may hold the erased slot
        self._env_memo = None

    def rfm_parameters(self, iccid: str | None = None) -> tuple[RfmSpec, ...]:
        """A profile's RFM instances (TCA PE-RFM: TARs, MSL, access domains, the ADF).

        `iccid` None: the enabled profile's (none enabled: empty). For the card's own
        tools and the OTA layer; applets reach them through ProfileSdInterface.
        """
        if iccid is None:
            try:
                current, _ = self._current()
            except DamagedRecord:
                return ()  # the "enabled" record damaged: no profile is activated
            return () if current is None else current.rfm()
        return self._find(iccid).rfm()

    def uicc_capability(self) -> tuple[int, ...]:
        return tuple(sorted(CAPABILITY_BITS.values()))

    def export_profile(self, iccid: str, with_secrets: bool = True) -> bytes:
        """The stored profile, read whole and encoded (the ISD-R's binding check, the move
        agent's backup).

        `Slot.check` reads no file content, so a record deeper down may still fail to
        decode here (`DamagedRecord`, or any error of a value of another shape): that is
        the profile found damaged, answered by the callers as such (ES10c: undefinedError;
        the move agent: 6581), never as a fault of the card (6F00). The error's type is
        named, never its text (it may quote the stored value).

        Raises:
            ProfileStoreError: ICCID_NOT_FOUND; DAMAGED (the check, or the read).
        """
        slot = self._intact(self._find(iccid))
        try:
            profile = slot.read()
            return (profile if with_secrets else profile.without_secrets()).to_bytes()
        except Exception as e:  # noqa: BLE001 - any failure of stored data is damage
            raise ProfileStoreError(ProfileStoreReason.DAMAGED, type(e).__name__) from None


class _SdAccess(ProfileSdInterface):
    """One security domain's record in the enabled profile's slot (applets.usim.sd)."""

    def __init__(self, applet: UiccApplet, slot: Slot, aid: bytes) -> None:
        self._applet = applet
        self._slot = slot
        self._aid = aid

    def sd_record(self, aid: bytes) -> Any:
        return self._slot.security_domain(self._aid) if bytes(aid) == self._aid else None

    def set_sd_record(self, aid: bytes, record: Any) -> None:
        if bytes(aid) != self._aid or record.aid != self._aid:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        self._slot.set_security_domain(record)

    def rfm_parameters(self) -> Any:
        return self._slot.rfm()

    def profile_applications(self) -> tuple[tuple[bytes, int], ...]:
        return self._applet._applications(self._slot)
