"""The Issuer Security Domain: the card manager of GlobalPlatform Card Specification v2.3.1.

The ISD is an applet with the card-manager privilege (`system.card` gives it
the runtime). It is normally default-selected (SELECT with an empty AID
reaches it) and answers:

| command                   | CLA      | clause       | secure channel needed |
|---------------------------|----------|--------------|-----------------------|
| SELECT (FCI)              | 00       | §11.9        | no                    |
| GET DATA                  | 00 80 84 | §11.3        | no                    |
| INITIALIZE UPDATE         | 80       | Amd D §7.1.1 | -                     |
| EXTERNAL AUTHENTICATE     | 84       | Amd D §7.1.2 | -                     |
| GET STATUS                | 80 84    | §11.4        | yes                   |
| SET STATUS                | 80 84    | §11.10       | yes                   |
| INSTALL / LOAD / DELETE   | 80 84    | §11.5/6/2    | yes, C-MAC or more    |
| PUT KEY                   | 80 84    | §11.8        | yes                   |
| STORE DATA                | 80 84    | §11.11       | yes                   |

Secure channel (SCP03, Amendment D): sessions are per logical channel and end
when the ISD is deselected, on reset, on a MAC failure (6982) or with a new
INITIALIZE UPDATE. Inside a session every proprietary-class command (CLA b8 =
1) must carry the session's protection; an interindustry command without SM
(such as 00 CA) is answered in clear and leaves the session alone, as pySim
and GlobalPlatformPro expect. The card life cycle gates everything first:
content changes only in OP_READY, INITIALIZED and SECURED (§5.1.1), anything
else answers 6A81 ("function not supported, e.g. card life cycle state is
CARD_LOCKED", §11.1.3); a TERMINATED card answers only GET DATA (§5.1.1.5).

Status words beyond ISO 7816-4: 6A81 life cycle forbids the command, 6310 more
GET STATUS data, 6283 SELECT on a CARD_LOCKED card, 9484/9485 PUT KEY key type
or KCV. A wrong host cryptogram answers 6982 (ISO 7816-4 "security status not
satisfied"; Amendment D §7.1.2.3 names 6300 for it) and closes the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from card import tlv
from card.apdu import CommandApdu
from card.framework import AID, APDU, SW, Applet, CardError, persistent
from card.gp import carddata, content, lifecycle
from card.gp.channel import ChannelGp, Command
from card.gp.keys import (
    find_keyset,
    key_information,
    keysets_from_value,
    keysets_to_value,
)
from card.gp.loadfile import LoadFileDescriptor, verify_descriptor
from card.gp.registry import (
    ISD_PRIVILEGES,
    AppRecord,
    LoadFileRecord,
    Privilege,
    Registry,
)
from card.gp.scp03 import (
    INS_EXTERNAL_AUTHENTICATE,
    INS_INITIALIZE_UPDATE,
    InitializeUpdateResponse,
    Scp03Error,
    Scp03Keys,
    Scp03Session,
    ScpParameter,
    SecurityLevel,
    has_secure_messaging,
    is_error_sw,
    pseudo_random_card_challenge,
)
from card.ota import keys as ota_keys
from card.ota import ram
from card.ota.remote import TAR_ISD, ReceivingEntity, is_rfm_tar
from card.ota.scp80 import CommandPacket, OtaKeyset
from card.ota.toolkit import (
    REMOTE_FILE_PARAMETER,
    REMOTE_MANAGEMENT_PARAMETER,
    RemoteManagementInterface,
)
from card.profiles import PROFILE_STORE_AID
from card.runtime import CardRuntime

#: The GlobalPlatform default ISD AID (GPC v2.3.1 §H.1.3).
ISD_AID = bytes.fromhex("A000000151000000")
#: The ISD AID UICCs carry: the card manager AID of Open Platform 2.0.1 (Visa), kept by
#: SIM vendors for their GlobalPlatform ISD, so SIM tools look for it there first (pySim's
#: ADF.ISD). On an eUICC-style profile A000000151000000 is the profile's MNO-SD
#: (GSMA TS.48), hence a UICC's own ISD cannot take that AID.
UICC_ISD_AID = bytes.fromhex("A000000003000000")
#: SCP03 with pseudo-random card challenge, R-MAC and R-ENCRYPTION (Amendment D §5.1).
DEFAULT_SCP_I = 0x70
DEFAULT_KVN = 0x30

INS_GET_DATA = 0xCA
INS_GET_STATUS = 0xF2
INS_SET_STATUS = 0xF0
INS_INSTALL = 0xE6
INS_LOAD = 0xE8
INS_DELETE = 0xE4
INS_PUT_KEY = 0xD8
INS_STORE_DATA = 0xE2

SW_LIFE_CYCLE = 0x6A81  # GPC v2.3.1 §11.1.3: e.g. card life cycle state is CARD_LOCKED
SW_CARD_LOCKED = 0x6283  # §11.9.3.2: SELECT warning
_SEQ_MAX = 0xFFFFFF

# GET DATA objects an unauthenticated reader may see (GPC v2.3.1 §11.3.3.1, Table 11-28).
_TAG_IIN, _TAG_CIN, _TAG_KDD, _TAG_SEQ = 0x42, 0x45, 0xCF, 0xC1
_TAG_CARD_DATA, _TAG_CAPS, _TAG_KEY_INFO = 0x66, 0x67, 0xE0
_TAG_CPLC, _TAG_LEVEL, _TAG_RESOURCES = 0x9F7F, 0xD3, 0xFF21


#: RAM INS whose compact-format P3 is Le (TS 102 226 §5.1.1): GET DATA, GET RESPONSE.
RAM_CASE2 = frozenset({INS_GET_DATA, 0xC0})
#: Minimum security levels (TS 102 226 §8.2.1.3.2.4.2, coded as SPI byte 1): RAM carries
#: keys and code, so CC, ciphering and a rising counter; RFM: CC and a rising counter.
DEFAULT_RAM_MSL = 0x16
DEFAULT_RFM_MSL = 0x12


class IssuerSecurityDomain(Applet, RemoteManagementInterface):
    """The ISD (GPC v2.3.1 §7.2): card life cycle, Registry, keys, SCP03, content management.

    On a UICC it is also the Remote Application Management application of
    TS 102 226 (TAR 000000) and the Security Domain of the RFM TARs and of the
    applications that take secured packets (`Applet.ota_msl`): SCP80 key
    sets of versions 01-0F (`card.ota.keys`), their counters, and command
    packets from the UICC platform's SMS-PP envelopes
    (`RemoteManagementInterface`, granted to the UICC platform only).
    """

    card_manager = True
    multiselectable = True
    secure_messaging = True  # SCP03 (Amendment D): CLA 04 / 60-6F commands are ours to unwrap

    card_state = persistent(lifecycle.OP_READY)
    keysets_value = persistent(())
    sequence_counter = persistent(0)
    scp_i = persistent(DEFAULT_SCP_I)
    iin = persistent(None)
    cin = persistent(None)
    kdd = persistent(bytes(10))
    cplc = persistent(b"")
    load_files_value = persistent(())
    apps_value = persistent(())
    dap_key = persistent(b"")
    ota_keysets_value = persistent(())
    ota_counters_value = persistent(())
    ram_msl = persistent(DEFAULT_RAM_MSL)
    rfm_msl = persistent(DEFAULT_RFM_MSL)

    # -- installation and configuration (the card's own tools, presets, tests) -------

    def on_install(self, params: bytes) -> None:
        """Start in OP_READY with the GP test key set 40..4F under key version 30.

        Install parameters, if any, are a BER-TLV of the objects STORE DATA
        also accepts (42 IIN, 45 CIN, CF KDD).
        """
        self.keysets_value = keysets_to_value((Scp03Keys.test_keys(DEFAULT_KVN),))
        self.cplc = carddata.cplc_with_serial(self.system.rng.random(4))
        if params:
            self._store_isd_data(params)

    @property
    def keysets(self) -> tuple[Scp03Keys, ...]:
        return keysets_from_value(self.keysets_value)

    def set_keysets(self, keysets: Iterable[Scp03Keys]) -> None:
        """Replace every key set (card set-up; PUT KEY does it over the air)."""
        sets = tuple(keysets)
        if len({k.kvn for k in sets}) != len(sets):
            raise ValueError("key versions must be distinct")
        self.keysets_value = keysets_to_value(sets)

    @property
    def load_files(self) -> tuple[LoadFileRecord, ...]:
        return tuple(LoadFileRecord.from_value(v) for v in self.load_files_value)

    @property
    def app_records(self) -> tuple[AppRecord, ...]:
        return tuple(AppRecord.from_value(v) for v in self.apps_value)

    def registry(self) -> Registry:
        return Registry(bytes(self.aid), self.runtime.applets(), self.load_files, self.app_records)

    @property
    def runtime(self) -> CardRuntime:
        return self.system.card

    def register_load_file(self, descriptor: bytes | LoadFileDescriptor) -> LoadFileRecord:
        """Record a load file present from manufacture (no LOAD), checked as LOAD checks it.

        Raises:
            LoadFileError: the descriptor does not match the catalogue or the code.
            ValueError: its AID is already in the Registry.
        """
        desc = (
            descriptor
            if isinstance(descriptor, LoadFileDescriptor)
            else LoadFileDescriptor.from_bytes(descriptor)
        )
        verify_descriptor(desc, self.runtime.catalogue)
        if self.registry().aid_in_use(desc.aid):
            raise ValueError(f"AID {desc.aid.hex().upper()} is already in the Registry")
        record = LoadFileRecord.from_descriptor(desc, bytes(self.aid))
        self.load_files_value = self.load_files_value + (record.to_value(),)
        return record

    def isd_privileges(self) -> int:
        priv = ISD_PRIVILEGES
        if not self.registry().isd_is_default():
            priv &= ~Privilege.CARD_RESET
        return int(priv)

    @property
    def ota_keysets(self) -> tuple[OtaKeyset, ...]:
        return ota_keys.keysets_from_value(self.ota_keysets_value)

    def set_ota_keysets(self, keysets: Iterable[OtaKeyset]) -> None:
        """Replace every SCP80 key set (card set-up; PUT KEY does it remotely)."""
        sets = tuple(keysets)
        if len({k.kvn for k in sets}) != len(sets):
            raise ValueError("key versions must be distinct")
        self.ota_keysets_value = ota_keys.keysets_to_value(sets)

    def ota_counter(self, kvn: int) -> int:
        """The replay counter of an SCP80 key set version (0 before its first packet)."""
        return next((c for k, c in self.ota_counters_value if k == kvn), 0)

    def _set_ota_counter(self, kvn: int, value: int) -> None:
        rest = tuple((k, c) for k, c in self.ota_counters_value if k != kvn)
        self.ota_counters_value = rest + ((kvn, value),)

    # -- remote management (TS 102 225 / 102 226) ---------------------------------------

    def get_shareable_interface_object(
        self, client_aid: AID, parameter: int
    ) -> RemoteManagementInterface | None:
        if parameter == REMOTE_MANAGEMENT_PARAMETER and bytes(client_aid) == PROFILE_STORE_AID:
            return self
        return None

    def process_command_packet(self, packet: bytes) -> bytes | None:
        """A command packet from the UICC platform: its response packet (see card.ota.remote)."""
        entity = ReceivingEntity(
            msl_for=self._ota_msl,
            keyset_for=lambda kvn: next((k for k in self.ota_keysets if k.kvn == kvn), None),
            counter_of=self.ota_counter,
            set_counter=self._set_ota_counter,
            run=self._run_remote,
        )
        return entity.process(packet)

    def _ota_msl(self, tar: bytes) -> int | None:
        if tar == TAR_ISD:
            return int(self.ram_msl)
        if is_rfm_tar(tar):
            return int(self.rfm_msl)
        app = self.runtime.application_for_tar(tar)
        return None if app is None else app[1]

    def _run_remote(self, packet: CommandPacket, keyset: OtaKeyset | None) -> bytes:
        tar = packet.header.tar
        try:
            if tar == TAR_ISD:
                return self._run_ram(packet, keyset)
            if not is_rfm_tar(tar):
                app = self.runtime.application_for_tar(tar)
                if app is None:  # gone since the TAR was looked up: nothing ran
                    return b""
                return self.runtime.deliver_secured_data(bytes(app[0]), packet.data)
            rfm = self.system.get_shareable(PROFILE_STORE_AID, REMOTE_FILE_PARAMETER)
            if rfm is None:
                return _script_failure(packet.data, SW.FILE_NOT_FOUND)
            out: bytes = rfm.run_rfm_script(tar, packet.data)
            return out
        except ram.ScriptError:
            return _script_failure(packet.data, SW.WRONG_LENGTH)

    def _run_ram(self, packet: CommandPacket, keyset: OtaKeyset | None) -> bytes:
        """Run a RAM script as if through a secure channel at the packet's level (TS 102 226 §5)."""
        gp = ChannelGp()
        gp.ota_keyset = keyset
        level = SecurityLevel.C_MAC
        if packet.header.spi.ciphered:
            level |= SecurityLevel.C_DECRYPTION

        def execute(cmd: CommandApdu) -> tuple[bytes, int]:
            try:
                return self._handle(Command(cmd, level, 0)) or b"", 0x9000
            except CardError as e:
                return (e.data if e.sw >> 8 in (0x62, 0x63) else b""), e.sw & 0xFFFF

        self.__dict__["_ram_gp"] = gp
        try:
            return ram.run_script(packet.data, execute, RAM_CASE2)
        finally:
            self.__dict__.pop("_ram_gp", None)

    # -- SELECT -----------------------------------------------------------------------

    def select_response(self, apdu: APDU) -> bytes | None:
        """The FCI of GPC v2.3.1 §11.9.3.1; 6283 on a CARD_LOCKED card."""
        if apdu.p2 & 0x0C == 0x0C:
            data = None
        else:
            data = carddata.fci(bytes(self.aid), self.scp_i, self.cplc)
        if self.card_state == lifecycle.CARD_LOCKED:
            raise CardError(SW_CARD_LOCKED, data or b"")
        return data

    # -- command dispatch ------------------------------------------------------------------

    def _channel_gp(self) -> ChannelGp:
        ram_gp: ChannelGp | None = self.__dict__.get("_ram_gp")
        if ram_gp is not None:
            return ram_gp  # a RAM script runs in its own state, not the channel's
        st = self.system.channel_state
        gp = st.get("gp")
        if gp is None:
            gp = st["gp"] = ChannelGp()
        return gp

    def process(self, apdu: APDU) -> bytes | None:
        cla, ins = apdu.cla, apdu.ins
        if not cla & 0x40 and cla & 0x08:
            # CLA b4-b3 = 10/11: ISO secure messaging, which is not GlobalPlatform's (01).
            raise CardError(SW.SECURE_MESSAGING_NOT_SUPPORTED)
        gp = self._channel_gp()
        sm = has_secure_messaging(cla)
        state = self.card_state

        if ins == INS_INITIALIZE_UPDATE and cla & 0x80 and not sm:
            self._require_state(state != lifecycle.TERMINATED)
            return self._initialize_update(gp, apdu.command)

        session = gp.session
        if session is not None and session.level is None and not session.closed:
            # The command after INITIALIZE UPDATE must be EXTERNAL AUTHENTICATE.
            if ins == INS_EXTERNAL_AUTHENTICATE and cla & 0x80:
                self._external_authenticate(gp, apdu.command)
                return None
            gp.reset()
        elif ins == INS_EXTERNAL_AUTHENTICATE and cla & 0x80:
            gp.reset()
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)

        if gp.level is None:
            if session is not None:
                gp.reset()
            if sm:
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            return self._handle(Command(apdu.command, None, apdu.channel))

        assert gp.session is not None
        if not sm and cla & 0x80 == 0:
            # In clear and interindustry: outside the session, which stays open.
            return self._handle(Command(apdu.command, None, apdu.channel))
        try:
            plain = CommandApdu.from_bytes(gp.session.unwrap_command(apdu.command.to_bytes()))
        except Scp03Error:
            gp.reset()
            raise
        return self._protected(gp, Command(plain, gp.level, apdu.channel))

    def _protected(self, gp: ChannelGp, cmd: Command) -> bytes | None:
        """Run a command of the session and protect its response (R-MAC / R-ENC)."""
        session = gp.session
        assert session is not None
        try:
            data = self._handle(cmd) or b""
        except CardError as e:
            sw = e.sw & 0xFFFF
            if is_error_sw(sw) or not session.authenticated:
                raise
            wrapped = session.wrap_response(e.data, sw)
            raise CardError(sw, wrapped[:-2]) from None
        if not session.authenticated:  # the command ended the session (e.g. TERMINATED)
            return data or None
        return session.wrap_response(data, 0x9000)[:-2] or None

    def _handle(self, cmd: Command) -> bytes | None:
        a = cmd.apdu
        cla, ins = a.cla, a.ins
        state = self.card_state
        if cla & 0x80 == 0:
            if ins == INS_GET_DATA:
                return self._get_data(cmd)
            if ins == 0xA4:
                # A SELECT the runtime passed on: no selectable application has that name.
                raise CardError(SW.FILE_NOT_FOUND)
            raise CardError(SW.INS_NOT_SUPPORTED)
        if ins == INS_GET_DATA:
            return self._get_data(cmd)
        handler = self._HANDLERS.get(ins)
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        needs_cm_state = ins not in (INS_GET_STATUS, INS_SET_STATUS)
        self._require_state(
            lifecycle.content_management_allowed(state)
            if needs_cm_state
            else state != lifecycle.TERMINATED
        )
        if not cmd.cm_authorised:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return handler(self, cmd)

    @staticmethod
    def _require_state(ok: bool) -> None:
        if not ok:
            raise CardError(SW_LIFE_CYCLE)

    # -- SCP03 session set-up (Amendment D §7.1) ---------------------------------------------

    def _initialize_update(self, gp: ChannelGp, cmd: CommandApdu) -> bytes:
        gp.reset()
        i = self.scp_i
        s16 = bool(i & ScpParameter.S16)
        if cmd.p2 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        if len(cmd.data) != (16 if s16 else 8):
            raise CardError(SW.WRONG_LENGTH)
        keyset = find_keyset(self.keysets, cmd.p1)
        if keyset is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        seq: int | None = None
        if i & ScpParameter.PSEUDO_RANDOM_CHALLENGE:
            if self.sequence_counter >= _SEQ_MAX:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            # Amendment D §6.2.2.1: the counter moves before the challenge is made
            # from it, so a tear can never hand out the same challenge twice.
            seq = self.sequence_counter + 1
            self.sequence_counter = seq
            challenge = pseudo_random_card_challenge(keyset, seq, bytes(self.aid), s16=s16)
        else:
            challenge = self.system.rng.random(16 if s16 else 8)
        session = Scp03Session.derive(keyset, cmd.data, challenge, s16=s16)
        gp.session, gp.keyset = session, keyset
        return InitializeUpdateResponse(
            self.kdd, keyset.kvn, i, challenge, session.card_cryptogram, seq
        ).to_bytes()

    def _external_authenticate(self, gp: ChannelGp, cmd: CommandApdu) -> None:
        session = gp.session
        assert session is not None
        try:
            level = session.check_external_authenticate(cmd.to_bytes())
        except Scp03Error as e:
            gp.reset()
            if e.sw == SW.WARNING_NVM_CHANGED:  # wrong host cryptogram
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
            raise
        allowed = self.scp_i
        if level & SecurityLevel.R_MAC and not allowed & ScpParameter.R_MAC:
            gp.reset()
            raise CardError(SW.INCORRECT_P1P2)
        if level & SecurityLevel.R_ENCRYPTION and not allowed & ScpParameter.R_ENCRYPTION:
            gp.reset()
            raise CardError(SW.INCORRECT_P1P2)
        return None

    # -- GET DATA (§11.3) ------------------------------------------------------------------------

    def _get_data(self, cmd: Command) -> bytes:
        a = cmd.apdu
        if a.data:
            raise CardError(SW.WRONG_LENGTH)
        tag = (a.p1 << 8) | a.p2
        value = self.data_object(tag, cmd.level)
        if value is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        return value

    def data_object(self, tag: int, level: int | None = None) -> bytes | None:
        """The encoded data object GET DATA returns for `tag`, or None if absent."""
        i = self.scp_i
        if tag == _TAG_CARD_DATA:
            return carddata.card_data(i)
        if tag == _TAG_CAPS:
            return carddata.card_capabilities(i)
        if tag == _TAG_CPLC:
            return tlv.build(_TAG_CPLC, self.cplc)
        if tag == _TAG_IIN:
            return None if self.iin is None else tlv.build(_TAG_IIN, self.iin)
        if tag == _TAG_CIN:
            return None if self.cin is None else tlv.build(_TAG_CIN, self.cin)
        if tag == _TAG_KDD:
            return tlv.build(_TAG_KDD, self.kdd)
        if tag == _TAG_SEQ:
            if not i & ScpParameter.PSEUDO_RANDOM_CHALLENGE:
                return None
            return tlv.build(_TAG_SEQ, self.sequence_counter.to_bytes(3, "big"))
        if tag == _TAG_KEY_INFO:
            ota = tuple(
                (
                    k.kvn,
                    ota_keys.KEY_TYPE_AES if k.aes else ota_keys.KEY_TYPE_DES,
                    tuple(len(x) for x in (k.kic, k.kid, k.dek) if x),
                )
                for k in self.ota_keysets
            )
            return key_information(self.keysets, self.dap_key or None, ota)
        if tag == _TAG_LEVEL:
            return tlv.build(_TAG_LEVEL, bytes((int(level or 0),)))
        if tag == _TAG_RESOURCES:
            rt = self.runtime
            apps = len(self.registry().applications())
            return tlv.build(
                _TAG_RESOURCES,
                [
                    (0x81, _minimal(apps)),
                    (0x82, _minimal(rt.nvm.available)),
                    (0x83, _minimal(rt.transient_available())),
                ],
            )
        return None

    # -- STORE DATA to the ISD itself (§11.11, §7.3.3) -------------------------------------------

    def store_data_self(self, cmd: CommandApdu) -> bytes | None:
        """STORE DATA addressed to the ISD (no INSTALL [for personalization] pending).

        The ISD takes BER-TLV (P1 b5-b4 = 10) IIN (42), CIN (45) and KDD (CF).
        Subclasses (an ISD-R, say) override this to handle their own data.
        """
        if cmd.p1 & 0x18 != 0x10:
            raise CardError(SW.WRONG_DATA)
        self._store_isd_data(cmd.data)
        return None

    def _store_isd_data(self, data: bytes) -> None:
        try:
            items = tlv.parse(data, allow_padding=False)
        except tlv.TlvError:
            raise CardError(SW.WRONG_DATA) from None
        updates: dict[int, bytes] = {}
        for item in items:
            if item.tag not in (_TAG_IIN, _TAG_CIN, _TAG_KDD) or item.tag in updates:
                raise CardError(SW.WRONG_DATA)
            if item.tag == _TAG_KDD and len(item.value) != 10:
                raise CardError(SW.WRONG_DATA)
            updates[item.tag] = item.value
        with self.system.transaction():
            if _TAG_IIN in updates:
                self.iin = updates[_TAG_IIN]
            if _TAG_CIN in updates:
                self.cin = updates[_TAG_CIN]
            if _TAG_KDD in updates:
                self.kdd = updates[_TAG_KDD]

    # -- content management: see card.gp.content -------------------------------------------------

    _HANDLERS: dict[int, Callable[[IssuerSecurityDomain, Command], bytes | None]] = {
        INS_GET_STATUS: content.get_status,
        INS_SET_STATUS: content.set_status,
        INS_INSTALL: content.install,
        INS_LOAD: content.load,
        INS_DELETE: content.delete,
        INS_PUT_KEY: content.put_key,
        INS_STORE_DATA: content.store_data,
    }


def _minimal(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def _script_failure(script: bytes, sw: int) -> bytes:
    """The response of a script that could not run: nothing executed, `sw` (TS 102 226 §5.2)."""
    if script[:1] in (
        bytes((ram.TAG_COMMAND_SCRIPT,)),
        bytes((ram.TAG_COMMAND_SCRIPT_INDEFINITE,)),
    ):
        return tlv.build(
            ram.TAG_RESPONSE_SCRIPT, [(ram.TAG_EXECUTED, b"\x00"), (ram.TAG_BAD_FORMAT, b"\x02")]
        )
    return b"\x00" + sw.to_bytes(2, "big")
