"""ES10b.LoadBoundProfilePackage: GSMA SGP.22 v2.x §5.7.6, §2.5.4-2.5.5, §3.1.3.

The LPA sends the Bound Profile Package (BF36) in segments (§2.5.5): the BF36
header with InitialiseSecureChannel (BF23), the A0 container with its '87'
ConfigureISDP segments, the A1 header, each '88' StoreMetadata segment, the
optional A2 container ('87' ReplaceSessionKeys), the A3 header, each '86'
profile-element segment. Each arrives as one ES10 command (STORE DATA series);
the ISD-R reads them as one stream, so any cut of the stream is accepted, and
answers with no data until the package is complete or fails.

- InitialiseSecureChannel: remoteOpId installBoundProfilePackage, the session's
  transaction ID, the CRT (key type '88' AES, key length 16), smdpSign by
  CERT.DPpb over remoteOpId || transactionId || CRT || smdpOtpk (as received)
  || euiccOtpk (its 5F49 TLV); then ShS = ECKA(otSK.EUICC, otPK.DP) and the BSP
  session keys (card.sgp22.bsp). The one-time private key is gone after this.
- '87' / '88' / '86' segments: C-MAC chained, block counter (card.sgp22.bsp); a
  replayed, reordered or altered segment fails the C-MAC: scp03tSecurityError.
- StoreMetadata: an ICCID already on the eUICC is refused at once
  (installFailedDueToIccidAlreadyExistsOnEuicc), before any profile element.
- The profile elements are buffered in RAM and installed when the A3
  container is complete, in one transaction with the ISD-R's record of the
  profile, the ISD-P counter and the signed ProfileInstallationResult in the
  notification list: a tear or a refusal leaves nothing installed.

Every end, success or error, is a ProfileInstallationResult (BF37) signed by
the eUICC over ProfileInstallationResultData (DER, canonical), kept as a
pending notification, and returned; the RSP session ends with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from applets.isdr.base import IsdrBase, Session, isdp_aid
from applets.isdr.notifications import metadata as notification_metadata
from applets.isdr.rsp import FORBIDDEN_PPRS
from card.profiles import ProfileStoreError, ProfileStoreReason
from card.sgp22 import asn1
from card.sgp22.bsp import KEY_TYPE_AES, BspError, BspMacError, BspState
from card.sgp22.values import (
    NotificationEvent,
    bits_to_set,
    iccid_from_bytes,
    raw_fields,
    raw_tlv,
)
from card.tlv import TlvError, build, decode_length, decode_tag

__all__ = ["BppFunctions", "BppLoad"]

# BppCommandId (Annex H).
CMD_ISC, CMD_CONFIGURE, CMD_METADATA, CMD_REPLACE_KEYS, CMD_ELEMENTS = 0, 1, 2, 4, 5
# ErrorReason (Annex H).
INCORRECT_INPUT = 1
INVALID_SIGNATURE = 2
INVALID_TRANSACTION_ID = 3
UNSUPPORTED_CRT = 4
UNSUPPORTED_REMOTE_OP = 5
UNSUPPORTED_CLASS = 6
STRUCTURE_ERROR = 7
SECURITY_ERROR = 8
ICCID_EXISTS = 9
NO_MEMORY = 10
PE_PROCESSING = 12
ICCID_MISMATCH = 13
PPR_NOT_ALLOWED = 15
UNKNOWN_ERROR = 127

#: PEStatus codes (TCA PEDefinitions EUICCResponse) used in simaResponse.
PE_OK = 0
PE_BAD_VALUES = 3
PE_NOT_ENOUGH_MEMORY = 4
PE_INVALID_FORMAT = 5
#: The profile package may not exceed this in RAM (a full TS.48 profile is ~12 KB).
MAX_PACKAGE = 512 * 1024


class BppFailure(Exception):
    """The package is refused: (bppCommandId, errorReason) and an optional simaResponse."""

    def __init__(self, command: int, reason: int, sima: bytes | None = None) -> None:
        super().__init__(command, reason)
        self.command = command
        self.reason = reason
        self.sima = sima


@dataclass
class BppLoad:
    """Where the loading of one package stands (in the RAM of the RSP session)."""

    buf: bytearray = field(default_factory=bytearray)
    phase: str = "bf36"
    left: int = 0  # bytes of BF36 not read yet
    remaining: int = 0  # bytes of the current container not read yet
    txid: bytes = b""
    bsp: BspState | None = None
    plain: bytearray = field(default_factory=bytearray)
    configure_der: bytes = b""
    metadata_der: bytes = b""
    metadata: dict[str, Any] = field(default_factory=dict)
    iccid: str | None = None


def _sima(status: int, pe_id: int | None, aborted: bool) -> bytes:
    st: dict[str, Any] = {"status": status}
    if pe_id is not None:
        st["identification"] = pe_id
    value: dict[str, Any] = {"peStatus": [st]}
    if aborted:
        value["profileInstallationAborted"] = None
    return asn1.encode_pe(value, "EUICCResponse")


_CONTAINERS = {"a0": (0xA0, "a0-87"), "a1": (0xA1, "a1-88"), "a3": (0xA3, "a3-86")}
_SEGMENTS = {
    "a0-87": (0x87, True, CMD_CONFIGURE),
    "a1-88": (0x88, False, CMD_METADATA),
    "a2-87": (0x87, True, CMD_REPLACE_KEYS),
    "a3-86": (0x86, True, CMD_ELEMENTS),
}


class BppFunctions(IsdrBase):
    """LoadBoundProfilePackage (see the module docstring)."""

    def load_bpp_segment(self, data: bytes) -> bytes | None:
        """One ES10 command's worth of the BF36 stream; the PIR when the load ends."""
        session: Session | None = self.session
        load: BppLoad | None
        if data[:2] == b"\xbf\x36":
            load = BppLoad()
            if session is not None:
                session.bpp = load
        else:
            load = session.bpp if session is not None else None
            if load is None or not data:
                return None  # nothing under way: the caller answers with an error SW
        load.buf += data
        try:
            return self._advance(load, session)
        except BppFailure as f:
            return self._finish_error(load, session, f)
        except (TlvError, ValueError):
            # Not BER-TLV where a segment or container should start.
            failure = BppFailure(self._phase_command(load), STRUCTURE_ERROR)
            return self._finish_error(load, session, failure)

    @staticmethod
    def _phase_command(load: BppLoad) -> int:
        return {
            "bf36": CMD_ISC,
            "isc": CMD_ISC,
            "a0": CMD_CONFIGURE,
            "a0-87": CMD_CONFIGURE,
            "a1": CMD_METADATA,
            "a1-88": CMD_METADATA,
            "a2a3": CMD_REPLACE_KEYS,
            "a2-87": CMD_REPLACE_KEYS,
            "a3": CMD_ELEMENTS,
            "a3-86": CMD_ELEMENTS,
        }.get(load.phase, CMD_ELEMENTS)

    # -- the stream ---------------------------------------------------------------------------

    def _header(self, load: BppLoad) -> tuple[int, int] | None:
        """Take a tag and length from the buffer (None if not all there yet)."""
        head = _peek_header(bytes(load.buf))
        if head is None:
            return None
        tag, p, n = head
        del load.buf[:p]
        if load.phase != "bf36":
            load.left -= p
            if load.left < 0:
                raise BppFailure(self._phase_command(load), STRUCTURE_ERROR)
        return tag, n

    def _whole(self, load: BppLoad) -> tuple[int, bytes] | None:
        """Take one whole TLV from the buffer (None if not all there yet)."""
        buf = bytes(load.buf)
        head = _peek_header(buf)
        if head is None:
            return None
        tag, p, n = head
        if p + n > len(buf):
            return None
        del load.buf[: p + n]
        load.left -= p + n
        load.remaining -= p + n
        if load.left < 0:
            raise BppFailure(self._phase_command(load), STRUCTURE_ERROR)
        return tag, buf[: p + n]

    def _advance(self, load: BppLoad, session: Session | None) -> bytes | None:
        while True:
            ph = load.phase
            if ph == "bf36":
                h = self._header(load)
                if h is None:
                    return None
                if h[0] != 0xBF36:
                    raise BppFailure(CMD_ISC, INCORRECT_INPUT)
                load.left = h[1]
                load.phase = "isc"
            elif ph == "isc":
                t = self._whole(load)
                if t is None:
                    return None
                if t[0] != 0xBF23:
                    raise BppFailure(CMD_ISC, INCORRECT_INPUT)
                self._initialise_secure_channel(load, session, t[1])
                load.phase = "a0"
            elif ph in ("a0", "a1", "a3", "a2a3"):
                h = self._header(load)
                if h is None:
                    return None
                tag, n = h
                if ph == "a2a3":
                    if tag == 0xA2:
                        load.phase = "a2-87"
                    elif tag == 0xA3:
                        load.phase = "a3-86"
                    else:
                        raise BppFailure(CMD_REPLACE_KEYS, STRUCTURE_ERROR)
                else:
                    want, nxt = _CONTAINERS[ph]
                    if tag != want:
                        raise BppFailure(self._phase_command(load), STRUCTURE_ERROR)
                    load.phase = nxt
                if n > load.left:
                    raise BppFailure(self._phase_command(load), STRUCTURE_ERROR)
                load.remaining = n
                load.plain = bytearray()
            elif ph in _SEGMENTS:
                tag, encrypted, command = _SEGMENTS[ph]
                if load.remaining == 0:
                    result = self._container_done(load, session)
                    if result is not None:
                        return result
                    continue
                t = self._whole(load)
                if t is None:
                    return None
                if load.remaining < 0:
                    raise BppFailure(command, STRUCTURE_ERROR)
                assert load.bsp is not None
                try:
                    plain, load.bsp = load.bsp.unprotect(t[1], encrypted=encrypted, tag=tag)
                except BspMacError:
                    raise BppFailure(command, SECURITY_ERROR) from None
                except BspError:
                    raise BppFailure(command, STRUCTURE_ERROR) from None
                load.plain += plain
                if len(load.plain) > MAX_PACKAGE:
                    raise BppFailure(command, NO_MEMORY)
            else:
                raise BppFailure(CMD_ELEMENTS, STRUCTURE_ERROR)

    def _container_done(self, load: BppLoad, session: Session | None) -> bytes | None:
        ph, plain = load.phase, bytes(load.plain)
        if ph == "a0-87":
            try:
                asn1.decode("ConfigureISDPRequest", plain)
            except asn1.Asn1Error:
                raise BppFailure(CMD_CONFIGURE, INCORRECT_INPUT) from None
            load.configure_der = plain
            load.phase = "a1"
        elif ph == "a1-88":
            self._store_metadata(load, plain)
            load.phase = "a2a3"
        elif ph == "a2-87":
            try:
                rsk = asn1.decode("ReplaceSessionKeysRequest", plain)
            except asn1.Asn1Error:
                raise BppFailure(CMD_REPLACE_KEYS, INCORRECT_INPUT) from None
            assert load.bsp is not None
            try:
                load.bsp = load.bsp.replace_keys(
                    rsk["ppkEnc"], rsk["ppkCmac"], rsk["initialMacChainingValue"]
                )
            except BspError:
                raise BppFailure(CMD_REPLACE_KEYS, INCORRECT_INPUT) from None
            load.phase = "a3"
        elif ph == "a3-86":
            if load.left != 0 or load.buf:
                raise BppFailure(CMD_ELEMENTS, STRUCTURE_ERROR)
            load.phase = "done"
            return self._install(load, session, plain)
        return None

    # -- InitialiseSecureChannel (§5.5.2 / §5.7.6) -------------------------------------------------

    def _initialise_secure_channel(
        self, load: BppLoad, session: Session | None, raw: bytes
    ) -> None:
        try:
            isc = asn1.decode("InitialiseSecureChannelRequest", raw)
            fields = raw_fields(raw)
        except (asn1.Asn1Error, ValueError):
            raise BppFailure(CMD_ISC, INCORRECT_INPUT) from None
        load.txid = isc["transactionId"]
        if isc["remoteOpId"] != 1:
            raise BppFailure(CMD_ISC, UNSUPPORTED_REMOTE_OP)
        if (
            session is None
            or session.dppb is None
            or session.otsk is None
            or session.transaction_id != isc["transactionId"]
        ):
            raise BppFailure(CMD_ISC, INVALID_TRANSACTION_ID)
        crt = isc["controlRefTemplate"]
        if crt["keyType"] != bytes((KEY_TYPE_AES,)) or crt["keyLen"] != b"\x10":
            raise BppFailure(CMD_ISC, UNSUPPORTED_CRT)
        signed = b"".join(r for tag, r in fields if tag != 0x5F37)
        signed += build(0x5F49, session.otpk)
        if not session.dppb.public_key.verify(signed, isc["smdpSign"], encoding="raw"):
            raise BppFailure(CMD_ISC, INVALID_SIGNATURE)
        try:
            shs = session.otsk.ecdh(isc["smdpOtpk"])
        except ValueError:
            raise BppFailure(CMD_ISC, INCORRECT_INPUT) from None
        # The one-time key is used up (§3.1.3: otSK.EUICC.ECKA is deleted once ShS is computed).
        session.otsk, session.otpk = None, b""
        load.bsp = BspState.from_shared_secret(
            shs, KEY_TYPE_AES, 16, crt["hostId"], self.ecasd().eid()
        )

    # -- StoreMetadata (§5.5.3) --------------------------------------------------------------------

    def _store_metadata(self, load: BppLoad, plain: bytes) -> None:
        try:
            meta = asn1.decode("StoreMetadataRequest", plain)
            iccid = iccid_from_bytes(meta["iccid"])
        except (asn1.Asn1Error, ValueError):
            raise BppFailure(CMD_METADATA, INCORRECT_INPUT) from None
        load.metadata_der, load.metadata, load.iccid = plain, meta, iccid
        if meta.get("profileClass", 2) not in (0, 1, 2):
            raise BppFailure(CMD_METADATA, UNSUPPORTED_CLASS)
        pprs = meta.get("profilePolicyRules")
        if pprs is not None and bits_to_set(pprs) & FORBIDDEN_PPRS:
            # §2.9.2.2: a PPR the RAT does not authorise ends the installation.
            raise BppFailure(CMD_METADATA, PPR_NOT_ALLOWED)
        if any(s.iccid == iccid for s in self.profile_store().list_profiles()):
            raise BppFailure(CMD_METADATA, ICCID_EXISTS)

    # -- the profile elements ----------------------------------------------------------------------

    def _install(self, load: BppLoad, session: Session | None, upp: bytes) -> bytes:
        try:
            name, header = asn1.decode_pe(raw_tlv(upp, 0)[1])
            # The header's ICCID is plain BCD (TCA §8.2), StoreMetadata's is EF.ICCID coding.
            header_iccid = bytes(header["iccid"]).hex().upper().rstrip("F")
        except (ValueError, asn1.Asn1Error, KeyError, TypeError):
            raise BppFailure(
                CMD_ELEMENTS, PE_PROCESSING, _sima(PE_INVALID_FORMAT, None, True)
            ) from None
        if name != "header":
            raise BppFailure(CMD_ELEMENTS, PE_PROCESSING, _sima(PE_INVALID_FORMAT, None, True))
        if header_iccid != load.iccid:
            raise BppFailure(CMD_ELEMENTS, ICCID_MISMATCH, _sima(PE_BAD_VALUES, None, True))
        index = self.next_isdp()
        aid = isdp_aid(index)
        final = ("successResult", {"aid": aid, "simaResponse": _sima(PE_OK, None, False)})
        seq, pir, pending = self._pir(load, session, final)
        store = self.profile_store()
        meta = load.metadata
        try:
            with self.system.transaction():
                iccid = store.install_profile_package(
                    upp, meta.get("profileName", ""), meta.get("serviceProviderName", "")
                )
                self.set_record(iccid, (aid, load.metadata_der, None, load.configure_der))
                self.system.store.set("isdp.next", index + 1)
                self.notifications().add(
                    seq, NotificationEvent.INSTALL, self._address(session), load.iccid, pending
                )
        except ProfileStoreError as e:
            reason = {
                ProfileStoreReason.ICCID_EXISTS: ICCID_EXISTS,
                ProfileStoreReason.NO_MEMORY: NO_MEMORY,
            }.get(e.reason, PE_PROCESSING)
            status = (
                e.pe_status
                if e.pe_status is not None
                else (PE_NOT_ENOUGH_MEMORY if reason == NO_MEMORY else PE_BAD_VALUES)
            )
            raise BppFailure(CMD_ELEMENTS, reason, _sima(status, e.pe_id, True)) from None
        self.session = None
        return pir

    # -- the result --------------------------------------------------------------------------------

    @staticmethod
    def _address(session: Session | None) -> str:
        return session.server_address if session is not None else ""

    def _pir(self, load: BppLoad, session: Session | None, final: Any) -> tuple[int, bytes, bytes]:
        """Sign a ProfileInstallationResult (§5.7.6).

        Returns:
            (seqNumber, the PIR DER, the PendingNotification DER).
        """
        seq = self.notifications().next_seq()
        data: dict[str, Any] = {
            "transactionId": load.txid or b"\x00",
            "notificationMetadata": notification_metadata(
                seq, NotificationEvent.INSTALL, self._address(session), load.iccid
            ),
            "finalResult": final,
        }
        if session is not None and session.dppb is not None and session.dppb.oid:
            data["smdpOid"] = session.dppb.oid
        signature = self.ecasd().sign(asn1.encode("ProfileInstallationResultData", data))
        value = {"profileInstallationResultData": data, "euiccSignPIR": signature}
        pir = asn1.encode("ProfileInstallationResult", value)
        pending = asn1.encode("PendingNotification", ("profileInstallationResult", value))
        return seq, pir, pending

    def _finish_error(self, load: BppLoad, session: Session | None, f: BppFailure) -> bytes:
        error: dict[str, Any] = {"bppCommandId": f.command, "errorReason": f.reason}
        if f.sima is not None:
            error["simaResponse"] = f.sima
        seq, pir, pending = self._pir(load, session, ("errorResult", error))
        with self.system.transaction():
            self.notifications().add(
                seq, NotificationEvent.INSTALL, self._address(session), load.iccid, pending
            )
        self.session = None
        return pir


def _peek_header(buf: bytes) -> tuple[int, int, int] | None:
    """(tag, header length, value length) at the start of `buf`; None until the header is in.

    Raises:
        TlvError: six bytes or more that start no header (no header here is longer).
    """
    try:
        tag, p = decode_tag(buf, 0)
        n, p = decode_length(buf, p)
    except TlvError:
        if len(buf) < 6:
            return None
        raise
    return tag, p, n
