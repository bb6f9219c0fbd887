"""The terminal side of the SIM toolkit subset OTA needs (ETSI TS 102 223, 3GPP TS 31.111).

A `ToolkitTerminal` wraps a reader to a UICC, as a phone's modem does:

- `start()`: TERMINAL PROFILE (TS 102 221 §11.2.1) with the facilities it offers.
- every command goes through `send()`: 61xx / 9Fxx fetched with GET RESPONSE,
  and whenever the card ends with `91 xx` the terminal FETCHes the proactive
  command, performs it and sends the TERMINAL RESPONSE, until the card has
  nothing more to say (TS 102 223 §6.4).
- SEND SHORT MESSAGE (§6.6.9) goes to the SMS centre (`host.servers.smsc`)
  under the terminal's MSISDN, or to `outbox` when there is none.
- BIP (§6.6.27-30): OPEN CHANNEL to an IPv4 address over TCP opens a socket
  (loopback only: anything else is "beyond terminal capabilities"), SEND DATA
  writes to it (at once, or once an immediate SEND DATA comes), RECEIVE DATA
  reads what arrived (waiting up to `bip_timeout` for it), CLOSE CHANNEL closes
  it. The terminal responses carry the channel status, buffer size and channel
  data lengths of §8.52-8.56. UDP and server mode are not offered.
- `deliver_sms(tpdu)`: an SMS-DELIVER with TP-PID 7F becomes an SMS-PP download
  ENVELOPE (TS 31.111 §7.1.1.2); the card's response data is the TP-UD of the
  SMS-DELIVER-REPORT (the proof of receipt, when the SPI asks for one there).
- `poll_smsc()`: fetch the MSISDN's inbox and deliver each message.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from card.ota import cat, sms
from card.ota.cat import CommandType, GeneralResult, ProactiveCommand, TerminalResponse
from host.errors import ApduError
from host.ota.sender import envelope_apdu
from host.readers.base import Reader
from host.readers.wrappers import GetResponseReader
from host.servers.smsc import SmscClient
from host.session import ApduSession

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
class _Channel:
    sock: socket.socket
    tx: bytearray = field(default_factory=bytearray)
    rx: bytearray = field(default_factory=bytearray)


BUFFER_SIZE = 1024


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
    #: told of each proactive command once fetched, before it is performed (a
    #: scenario closes its step there: what the card asked, then what the terminal did)
    on_proactive: Callable[[ProactiveCommand], None] | None = None
    #: how long RECEIVE DATA waits for bytes that have not arrived yet (seconds)
    bip_timeout: float = 5.0
    _channels: dict[int, _Channel] = field(default_factory=dict, repr=False)

    def close(self) -> None:
        """Close every BIP channel still open."""
        for ch in self._channels.values():
            ch.sock.close()
        self._channels.clear()

    def start(self) -> None:
        """TERMINAL PROFILE (80 10), then whatever the card asks for."""
        self.send(0x80, 0x10, 0x00, 0x00, self.profile)

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """One command; response data through GET RESPONSE; proactive commands served."""
        resp = GetResponseReader(self.reader).transmit(apdu)
        return resp[:-2], self.serve_proactive(int.from_bytes(resp[-2:], "big"))

    def serve_proactive(self, sw: int) -> int:
        """Serve the proactive commands a `91 xx` announces, until the card is done.

        Returns the status word the last TERMINAL RESPONSE ended with (9000
        when all went well), or `sw` itself when it announced nothing.
        """
        rounds = 0
        while sw >> 8 == 0x91:
            rounds += 1
            if rounds > MAX_PROACTIVE_ROUNDS:
                raise ApduError(sw, b"")
            sw = self._proactive(sw & 0xFF or 256)
        return sw

    def as_reader(self) -> ToolkitReader:
        """A `Reader` over this terminal: 91xx endings are served, the caller sees 9000."""
        return ToolkitReader(self)

    def send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        """One command through `ApduSession` on `as_reader()`; ApduError for anything but 9000."""
        return ApduSession(self.as_reader()).send(cla, ins, p1, p2, data, le)

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
        if self.on_proactive is not None:
            self.on_proactive(command)
        result, extra = self._perform(command)
        self.performed.append((command, result))
        # §8.12.11: a BIP error carries a cause ("no specific cause can be given").
        additional = b"\x00" if result == GeneralResult.BIP_ERROR else b""
        tr = TerminalResponse(command.details, result, additional, extra).to_bytes()
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
        if command.type == CommandType.OPEN_CHANNEL:
            return self._open_channel(command)
        if command.type in (
            CommandType.SEND_DATA,
            CommandType.RECEIVE_DATA,
            CommandType.CLOSE_CHANNEL,
        ):
            return self._channel_command(command)
        return GeneralResult.BEYOND_TERMINAL, ()

    # -- BIP (TS 102 223 §6.6.27-30) ---------------------------------------------------------

    def _open_channel(self, command: ProactiveCommand) -> tuple[int, tuple[cat.Ctlv, ...]]:
        transport = command.item(cat.TAG_TRANSPORT_LEVEL)
        address = command.item(cat.TAG_OTHER_ADDRESS)
        if (
            transport is None
            or len(transport) != 3
            or transport[0] != cat.TRANSPORT_TCP_CLIENT_REMOTE
            or address is None
            or len(address) != 5
            or address[0] != cat.ADDRESS_IPV4
        ):
            return GeneralResult.BEYOND_TERMINAL, ()
        host = str(ipaddress.IPv4Address(address[1:]))
        if not ipaddress.IPv4Address(address[1:]).is_loopback:
            log.warning("OPEN CHANNEL to %s refused: this terminal reaches loopback only", host)
            return GeneralResult.BEYOND_TERMINAL, ()
        number = next((n for n in range(1, 8) if n not in self._channels), None)
        if number is None:
            return GeneralResult.BIP_ERROR, ()
        try:
            sock = socket.create_connection((host, int.from_bytes(transport[1:], "big")), 5.0)
        except OSError as e:
            log.warning("OPEN CHANNEL: %s", e)
            return GeneralResult.BIP_ERROR, ()
        self._channels[number] = _Channel(sock)
        return GeneralResult.OK, (
            cat.Ctlv(cat.TAG_CHANNEL_STATUS, bytes((0x80 | number, 0x00))),
            cat.Ctlv(cat.TAG_BEARER_DESCRIPTION, bytes((cat.BEARER_DEFAULT,))),
            cat.Ctlv(cat.TAG_BUFFER_SIZE, BUFFER_SIZE.to_bytes(2, "big")),
        )

    def _channel_command(self, command: ProactiveCommand) -> tuple[int, tuple[cat.Ctlv, ...]]:
        ch = self._channels.get(command.destination - cat.DEV_CHANNEL_BASE)
        if ch is None:
            return GeneralResult.BIP_ERROR, ()  # channel identifier not valid
        number = command.destination - cat.DEV_CHANNEL_BASE
        try:
            if command.type == CommandType.CLOSE_CHANNEL:
                ch.sock.close()
                del self._channels[number]
                return GeneralResult.OK, ()
            if command.type == CommandType.SEND_DATA:
                ch.tx += command.item(cat.TAG_CHANNEL_DATA) or b""
                if command.qualifier & 0x01:
                    ch.sock.sendall(bytes(ch.tx))
                    ch.tx.clear()
                free = min(BUFFER_SIZE - len(ch.tx), 0xFF)
                return GeneralResult.OK, (cat.Ctlv(cat.TAG_CHANNEL_DATA_LENGTH, bytes((free,))),)
            want = (command.item(cat.TAG_CHANNEL_DATA_LENGTH) or b"\xff")[0] or 0xFF
            ch.sock.settimeout(self.bip_timeout)
            while len(ch.rx) < want:
                try:
                    chunk = ch.sock.recv(BUFFER_SIZE)
                except TimeoutError:
                    break
                if not chunk:
                    break
                ch.rx += chunk
            data, ch.rx = bytes(ch.rx[:want]), ch.rx[want:]
            return GeneralResult.OK, (
                cat.Ctlv(cat.TAG_CHANNEL_DATA, data),
                cat.Ctlv(cat.TAG_CHANNEL_DATA_LENGTH, bytes((min(len(ch.rx), 0xFF),))),
            )
        except OSError as e:
            log.warning("BIP channel %d: %s", number, e)
            return GeneralResult.BIP_ERROR, ()

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


class ToolkitReader(Reader):
    """A reader through a toolkit terminal, for host code that knows nothing of the toolkit.

    Every command goes to the card as it is (61xx is left to the caller, as a
    plain reader leaves it); when the card ends with `91 xx` the terminal
    FETCHes and performs the proactive commands first (TS 102 223 §6.4) and the
    caller sees the response with `90 00`.
    """

    def __init__(self, terminal: ToolkitTerminal) -> None:
        self.terminal = terminal
        self.name = getattr(terminal.reader, "name", "toolkit terminal")

    def connect(self) -> bytes:
        return self.terminal.reader.connect()

    def reset(self) -> bytes:
        return self.terminal.reader.reset()

    def disconnect(self) -> None:
        self.terminal.close()
        self.terminal.reader.disconnect()

    def transmit(self, apdu: bytes) -> bytes:
        resp = self.terminal.reader.transmit(apdu)
        if resp[-2:-1] != b"\x91":
            return resp
        sw = self.terminal.serve_proactive(int.from_bytes(resp[-2:], "big"))
        return resp[:-2] + sw.to_bytes(2, "big")
