"""The terminal side of the SIM toolkit subset OTA needs (ETSI TS 102 223, 3GPP TS 31.111).

A `ToolkitTerminal` wraps a reader to a UICC, as a phone's modem does:

- `start()`: TERMINAL PROFILE (TS 102 221 §11.2.1) with the facilities it offers.
- every command goes through `send()`: 61xx / 9Fxx fetched with GET RESPONSE,
  and whenever the card ends with `91 xx` the terminal FETCHes the proactive
  command, performs it and sends the TERMINAL RESPONSE, until the card has
  nothing more to say (TS 102 223 §6.4).
- SEND SHORT MESSAGE (§6.6.9) goes to the SMS centre (`host.servers.smsc`)
  under the terminal's MSISDN, or to `outbox` when there is none. OPEN
  CHANNEL and the other BIP commands are answered "beyond terminal
  capabilities" (30): this terminal has no bearer to offer.
- `deliver_sms(tpdu)`: an SMS-DELIVER with TP-PID 7F becomes an SMS-PP download
  ENVELOPE (TS 31.111 §7.1.1.2); the card's response data is the TP-UD of the
  SMS-DELIVER-REPORT (the proof of receipt, when the SPI asks for one there).
- `poll_smsc()`: fetch the MSISDN's inbox and deliver each message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from card.ota import cat, sms
from card.ota.cat import CommandType, GeneralResult, ProactiveCommand, TerminalResponse
from host.errors import ApduError
from host.ota.sender import envelope_apdu
from host.readers.base import Reader
from host.servers.smsc import SmscClient

log = logging.getLogger(__name__)

#: TS 102 223 §5.2: profile download, SMS-PP data download, proactive UICC,
#: MO short message control, FETCH-related bits, SEND SHORT MESSAGE (byte 4 b2).
DEFAULT_TERMINAL_PROFILE = bytes.fromhex("FF9F00DF1F")
MAX_PROACTIVE_ROUNDS = 64


@dataclass(frozen=True)
class SmsPpResult:
    """What the card answered an SMS-PP download with."""

    sw: int
    user_data: bytes  # for the SMS-DELIVER-REPORT: the PoR, when sent this way

    @property
    def acknowledged(self) -> bool:
        """RP-ACK (90 00 / 91 xx) rather than RP-ERROR (TS 31.111 §7.1.1.2)."""
        return self.sw == 0x9000 or self.sw >> 8 == 0x91


@dataclass
class ToolkitTerminal:
    """A terminal that serves a UICC's proactive commands."""

    reader: Reader
    msisdn: str = ""
    smsc: SmscClient | None = None
    profile: bytes = DEFAULT_TERMINAL_PROFILE
    #: SMS-SUBMIT TPDUs the card sent while there was no SMS centre
    outbox: list[bytes] = field(default_factory=list)
    #: every proactive command performed, with the general result given
    performed: list[tuple[ProactiveCommand, int]] = field(default_factory=list)

    def start(self) -> None:
        """TERMINAL PROFILE (80 10), then whatever the card asks for."""
        self.send(0x80, 0x10, 0x00, 0x00, self.profile)

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """One command; response data through GET RESPONSE; proactive commands served."""
        resp = self.reader.transmit(apdu)
        data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        gsm = apdu[0] == 0xA0
        while sw >> 8 in (0x61, 0x9F):
            more = self.reader.transmit(bytes((0xA0 if gsm else 0x00, 0xC0, 0, 0, sw & 0xFF)))
            data += more[:-2]
            sw = int.from_bytes(more[-2:], "big")
        rounds = 0
        while sw >> 8 == 0x91:
            rounds += 1
            if rounds > MAX_PROACTIVE_ROUNDS:
                raise ApduError(sw, data)
            sw = self._proactive(sw & 0xFF or 256)
        return bytes(data), sw

    def send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        """One command; its response data, or ApduError for anything but 9000."""
        apdu = bytes((cla, ins, p1, p2))
        if data:
            apdu += bytes((len(data),)) + data
        if le is not None:
            apdu += bytes((le & 0xFF,))
        out, sw = self.transmit(apdu)
        if sw != 0x9000:
            raise ApduError(sw, out)
        return out

    def _proactive(self, length: int) -> int:
        resp = self.reader.transmit(bytes((0x80, 0x12, 0x00, 0x00, length & 0xFF)))
        sw = int.from_bytes(resp[-2:], "big")
        if sw != 0x9000 and sw >> 8 != 0x91:
            raise ApduError(sw, resp[:-2])
        try:
            command = ProactiveCommand.from_bytes(resp[:-2])
        except cat.CatError:
            log.warning("the card fetched a proactive command that does not decode")
            return 0x9000
        result, extra = self._perform(command)
        self.performed.append((command, result))
        tr = TerminalResponse(command.details, result, items=extra).to_bytes()
        resp = self.reader.transmit(bytes((0x80, 0x14, 0x00, 0x00, len(tr))) + tr)
        return int.from_bytes(resp[-2:], "big")

    def _perform(self, command: ProactiveCommand) -> tuple[int, tuple[cat.Ctlv, ...]]:
        if command.type == CommandType.SEND_SHORT_MESSAGE:
            tpdu = command.item(cat.TAG_SMS_TPDU)
            if tpdu is None:
                return GeneralResult.DATA_NOT_UNDERSTOOD, ()
            if command.qualifier & 0x01:
                return GeneralResult.BEYOND_TERMINAL, ()  # packing by the terminal: no
            try:
                sms.SmsSubmit.from_bytes(tpdu)
            except sms.SmsError:
                return GeneralResult.DATA_NOT_UNDERSTOOD, ()
            if self.smsc is None or not self.msisdn:
                self.outbox.append(tpdu)
                return GeneralResult.OK, ()
            try:
                self.smsc.submit_tpdu(self.msisdn, tpdu)
            except Exception as e:  # the network: any failure is "network unable"
                log.warning("SEND SHORT MESSAGE: %s", e)
                return GeneralResult.NETWORK_UNABLE, ()
            return GeneralResult.OK, ()
        return GeneralResult.BEYOND_TERMINAL, ()

    # -- SMS-PP download -------------------------------------------------------------------------

    def deliver_sms(self, tpdu: bytes) -> SmsPpResult:
        """Hand an SMS-DELIVER to the card as the SMS-PP data download (TS 31.111 §7.1.1.2)."""
        data, sw = self.transmit(envelope_apdu(tpdu))
        return SmsPpResult(sw, data)

    def poll_smsc(self) -> list[SmsPpResult]:
        """Fetch this MSISDN's short messages from the SMS centre and deliver each to the card."""
        if self.smsc is None or not self.msisdn:
            return []
        out = []
        for _sender, tpdu in self.smsc.inbox(self.msisdn):
            deliver = sms.SmsDeliver.from_bytes(tpdu)
            if deliver.pid != sms.PID_DATA_DOWNLOAD:
                log.info("a short message for the user, not the card: kept out of the UICC")
                continue
            out.append(self.deliver_sms(tpdu))
        return out
