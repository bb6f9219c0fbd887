"""The CAT subset OTA needs: ETSI TS 102 223 (and 3GPP TS 31.111 for SMS).

- COMPREHENSION-TLV (§8, Annex C): a one-byte tag 01-7E / 81-FE (b8 the
  comprehension-required flag, compared without it), a BER length of one
  byte, or 81 then one byte. The three-byte tag form (7F) is refused.
- BER-TLV templates (§9.1, Annex C): D0 proactive command, D1 SMS-PP download
  (TS 31.111 §7.1.1.2), D6 event download.
- Proactive commands built here: SEND SHORT MESSAGE (§6.6.9, type 13), and the
  BIP ones (§6.6.27-30): OPEN CHANNEL (40) on the default bearer to an IPv4
  address over TCP (bearer description 35, buffer size 39, transport level 3C,
  other address 3E), CLOSE CHANNEL (41), RECEIVE DATA (42, channel data
  length 37), SEND DATA (43, channel data 36), addressed to channel 21-27.
- TERMINAL RESPONSE (§6.8): command details, device identities (terminal to
  UICC), result (83: general result, then additional information).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# COMPREHENSION-TLV tags (Annex C), without the CR bit.
TAG_COMMAND_DETAILS = 0x01
TAG_DEVICE_IDENTITIES = 0x02
TAG_RESULT = 0x03
TAG_ALPHA_IDENTIFIER = 0x05
TAG_ADDRESS = 0x06
TAG_SMS_TPDU = 0x0B
TAG_BEARER_DESCRIPTION = 0x35
TAG_CHANNEL_DATA = 0x36
TAG_CHANNEL_DATA_LENGTH = 0x37
TAG_CHANNEL_STATUS = 0x38
TAG_BUFFER_SIZE = 0x39
TAG_OTHER_ADDRESS = 0x3E
TAG_TRANSPORT_LEVEL = 0x3C

# BER-TLV tags (Annex C).
TAG_PROACTIVE_COMMAND = 0xD0
TAG_SMS_PP_DOWNLOAD = 0xD1
TAG_EVENT_DOWNLOAD = 0xD6

# Device identities (§8.7).
DEV_KEYPAD = 0x01
DEV_DISPLAY = 0x02
DEV_UICC = 0x81
DEV_TERMINAL = 0x82
DEV_NETWORK = 0x83
DEV_CHANNEL_BASE = 0x20  # channel n is 0x20 + n (21-27)

# BIP codings (§8.52, §8.55, §8.58, §8.59).
BEARER_DEFAULT = 0x03  # "default bearer for requested transport layer"
TRANSPORT_TCP_CLIENT_REMOTE = 0x02
TRANSPORT_UDP_CLIENT_REMOTE = 0x01
ADDRESS_IPV4 = 0x21


class CommandType(IntEnum):
    """Type of command (§9.4)."""

    SEND_SHORT_MESSAGE = 0x13
    OPEN_CHANNEL = 0x40
    CLOSE_CHANNEL = 0x41
    RECEIVE_DATA = 0x42
    SEND_DATA = 0x43


class GeneralResult(IntEnum):
    """Result, general result byte (§8.12)."""

    OK = 0x00
    OK_PARTIAL = 0x01
    OK_MISSING_INFO = 0x02
    TERMINAL_UNABLE = 0x20
    NETWORK_UNABLE = 0x21
    BEYOND_TERMINAL = 0x30
    TYPE_NOT_UNDERSTOOD = 0x31
    DATA_NOT_UNDERSTOOD = 0x32
    NUMBER_NOT_UNDERSTOOD = 0x33
    SMS_RP_ERROR = 0x35
    BIP_ERROR = 0x3A


class CatError(ValueError):
    """A COMPREHENSION-TLV or BER-TLV object that does not decode."""


@dataclass(frozen=True)
class Ctlv:
    """One COMPREHENSION-TLV: its tag (CR bit cleared), the CR flag and the value."""

    tag: int
    value: bytes
    cr: bool = True

    def to_bytes(self) -> bytes:
        return bytes((self.tag | (0x80 if self.cr else 0),)) + _length(len(self.value)) + self.value


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    raise ValueError("a CAT object of 256 bytes or more")


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise CatError("missing length")
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    if b == 0x81 and pos + 1 < len(data) and data[pos + 1] >= 0x80:
        return data[pos + 1], pos + 2
    raise CatError("bad length")


def ctlv(tag: int, value: bytes, cr: bool = True) -> bytes:
    return Ctlv(tag, value, cr).to_bytes()


def parse_ctlvs(data: bytes) -> list[Ctlv]:
    """Decode a run of COMPREHENSION-TLVs (§8; Annex C)."""
    out = []
    pos = 0
    while pos < len(data):
        t = data[pos]
        if t in (0x00, 0xFF, 0x80, 0x7F):
            raise CatError(f"tag {t:02X} is not a one-byte COMPREHENSION-TLV tag")
        n, pos = _read_length(data, pos + 1)
        value = data[pos : pos + n]
        if len(value) != n:
            raise CatError("value runs off the data")
        out.append(Ctlv(t & 0x7F, bytes(value), bool(t & 0x80)))
        pos += n
    return out


def ber(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + _length(len(value)) + value


def parse_ber(data: bytes, expected_tag: int) -> list[Ctlv]:
    """The COMPREHENSION-TLVs inside one BER-TLV template (D0, D1 ...).

    Raises:
        CatError: another tag, a wrong length, bytes after it.
    """
    if not data or data[0] != expected_tag:
        raise CatError(f"expected a {expected_tag:02X} template")
    n, pos = _read_length(data, 1)
    if pos + n != len(data):
        raise CatError("template length does not match")
    return parse_ctlvs(data[pos:])


def find(items: list[Ctlv], tag: int) -> bytes | None:
    return next((i.value for i in items if i.tag == tag), None)


def device_identities(source: int, destination: int) -> bytes:
    return ctlv(TAG_DEVICE_IDENTITIES, bytes((source, destination)))


# -- SMS-PP download (TS 31.111 §7.1.1.2) ------------------------------------------------------


def sms_pp_download(tpdu: bytes, sc_address: bytes | None = None) -> bytes:
    """The ENVELOPE data: D1 { device identities network->UICC, [address], SMS TPDU }."""
    body = device_identities(DEV_NETWORK, DEV_UICC)
    if sc_address is not None:
        body += ctlv(TAG_ADDRESS, sc_address, cr=False)
    body += ctlv(TAG_SMS_TPDU, tpdu)
    return ber(TAG_SMS_PP_DOWNLOAD, body)


def parse_sms_pp_download(data: bytes) -> tuple[bytes, bytes | None]:
    """(SMS TPDU, service-centre address value) of an SMS-PP download ENVELOPE.

    Raises:
        CatError: not D1, device identities other than network to UICC, no TPDU.
    """
    items = parse_ber(data, TAG_SMS_PP_DOWNLOAD)
    dev = find(items, TAG_DEVICE_IDENTITIES)
    if dev != bytes((DEV_NETWORK, DEV_UICC)):
        raise CatError("SMS-PP download must come from the network to the UICC")
    tpdu = find(items, TAG_SMS_TPDU)
    if tpdu is None:
        raise CatError("no SMS TPDU")
    return tpdu, find(items, TAG_ADDRESS)


# -- proactive commands (§6.6) and terminal responses (§6.8) -----------------------------------


@dataclass(frozen=True)
class ProactiveCommand:
    """A proactive command as the terminal FETCHes it."""

    number: int
    type: int
    qualifier: int
    destination: int
    items: tuple[Ctlv, ...]

    def to_bytes(self) -> bytes:
        body = ctlv(TAG_COMMAND_DETAILS, bytes((self.number, self.type, self.qualifier)))
        body += device_identities(DEV_UICC, self.destination)
        body += b"".join(i.to_bytes() for i in self.items)
        return ber(TAG_PROACTIVE_COMMAND, body)

    @classmethod
    def from_bytes(cls, data: bytes) -> ProactiveCommand:
        items = parse_ber(data, TAG_PROACTIVE_COMMAND)
        details = find(items, TAG_COMMAND_DETAILS)
        dev = find(items, TAG_DEVICE_IDENTITIES)
        if details is None or len(details) != 3 or dev is None or len(dev) != 2:
            raise CatError("a proactive command needs command details and device identities")
        rest = tuple(i for i in items if i.tag not in (TAG_COMMAND_DETAILS, TAG_DEVICE_IDENTITIES))
        return cls(details[0], details[1], details[2], dev[1], rest)

    @property
    def details(self) -> bytes:
        return bytes((self.number, self.type, self.qualifier))

    def item(self, tag: int) -> bytes | None:
        return find(list(self.items), tag)


def send_short_message(
    tpdu: bytes, address: bytes | None = None, alpha: bytes | None = None, *, number: int = 1
) -> ProactiveCommand:
    """SEND SHORT MESSAGE (§6.6.9): qualifier 00, packing not required; to the network."""
    items: list[Ctlv] = []
    if alpha is not None:
        items.append(Ctlv(TAG_ALPHA_IDENTIFIER, alpha, cr=False))
    if address is not None:
        items.append(Ctlv(TAG_ADDRESS, address, cr=False))
    items.append(Ctlv(TAG_SMS_TPDU, tpdu))
    return ProactiveCommand(number, CommandType.SEND_SHORT_MESSAGE, 0x00, DEV_NETWORK, tuple(items))


@dataclass(frozen=True)
class TerminalResponse:
    """A TERMINAL RESPONSE (§6.8)."""

    details: bytes
    result: int
    additional: bytes = b""
    items: tuple[Ctlv, ...] = ()

    def to_bytes(self) -> bytes:
        return (
            ctlv(TAG_COMMAND_DETAILS, self.details)
            + device_identities(DEV_TERMINAL, DEV_UICC)
            + ctlv(TAG_RESULT, bytes((self.result,)) + self.additional)
            + b"".join(i.to_bytes() for i in self.items)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TerminalResponse:
        """Raises CatError: no command details or result."""
        items = parse_ctlvs(data)
        details = find(items, TAG_COMMAND_DETAILS)
        result = find(items, TAG_RESULT)
        if details is None or len(details) != 3 or not result:
            raise CatError("a terminal response needs command details and a result")
        rest = tuple(
            i
            for i in items
            if i.tag not in (TAG_COMMAND_DETAILS, TAG_DEVICE_IDENTITIES, TAG_RESULT)
        )
        return cls(details, result[0], result[1:], rest)

    @property
    def ok(self) -> bool:
        """Successful: general results 0x (§8.12: "command performed ...")."""
        return self.result < 0x10

    def item(self, tag: int) -> bytes | None:
        return find(list(self.items), tag)


def open_channel_tcp(
    ipv4: bytes, port: int, buffer_size: int = 1024, *, number: int = 1
) -> ProactiveCommand:
    """OPEN CHANNEL (§6.6.27) for a TCP client connection on the default bearer.

    Qualifier 01: immediate link establishment.
    """
    if len(ipv4) != 4 or not 0 < port < 0x10000 or not 0 < buffer_size < 0x10000:
        raise ValueError("an IPv4 address, a port and a buffer size")
    items = (
        Ctlv(TAG_BEARER_DESCRIPTION, bytes((BEARER_DEFAULT,))),
        Ctlv(TAG_BUFFER_SIZE, buffer_size.to_bytes(2, "big")),
        Ctlv(TAG_TRANSPORT_LEVEL, bytes((TRANSPORT_TCP_CLIENT_REMOTE,)) + port.to_bytes(2, "big")),
        Ctlv(TAG_OTHER_ADDRESS, bytes((ADDRESS_IPV4,)) + ipv4),
    )
    return ProactiveCommand(number, CommandType.OPEN_CHANNEL, 0x01, DEV_TERMINAL, items)


def send_data(channel: int, data: bytes, *, immediate: bool = True) -> ProactiveCommand:
    """SEND DATA (§6.6.30): qualifier 01 sends at once, 00 stores in the Tx buffer."""
    return ProactiveCommand(
        1,
        CommandType.SEND_DATA,
        0x01 if immediate else 0x00,
        DEV_CHANNEL_BASE + channel,
        (Ctlv(TAG_CHANNEL_DATA, data),),
    )


def receive_data(channel: int, length: int) -> ProactiveCommand:
    """RECEIVE DATA (§6.6.29): up to `length` bytes (1-255) from the channel's Rx buffer."""
    return ProactiveCommand(
        1,
        CommandType.RECEIVE_DATA,
        0x00,
        DEV_CHANNEL_BASE + channel,
        (Ctlv(TAG_CHANNEL_DATA_LENGTH, bytes((length & 0xFF,))),),
    )


def close_channel(channel: int) -> ProactiveCommand:
    """CLOSE CHANNEL (§6.6.28)."""
    return ProactiveCommand(1, CommandType.CLOSE_CHANNEL, 0x00, DEV_CHANNEL_BASE + channel, ())
