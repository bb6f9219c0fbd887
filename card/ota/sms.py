"""Short messages for OTA: 3GPP TS 23.040 TPDUs and the TS 31.115 user data header.

- SMS-DELIVER (§9.2.2.1): first octet (TP-MTI 00, TP-MMS b3, TP-UDHI b7),
  TP-OA, TP-PID, TP-DCS, TP-SCTS (7 semi-octets), TP-UDL, TP-UD.
- SMS-SUBMIT (§9.2.2.2): first octet (TP-MTI 01, TP-VPF b5-b4 = 00 none, TP-UDHI
  b7), TP-MR, TP-DA, TP-PID, TP-DCS, TP-UDL, TP-UD.
- Addresses (§9.1.2.5): length in digits, TON/NPI, BCD digits swapped, F-filled.
- OTA data (TS 31.115 §6.1): TP-PID 7F (USIM data download), TP-DCS F6 (8-bit
  data, class 2): TP-UDL counts octets. The user data header (§9.2.3.24)
  carries IEI 70 (command packet) or 71 (response packet), each with length
  00; a command packet over 140 - 3 octets is cut into concatenated short
  messages (IEI 00, 8-bit reference, TS 23.040 §9.2.3.24.1): the first
  segment's header holds IEI 00 and IEI 70, the others IEI 00 alone
  (TS 31.115 §6.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PID_DATA_DOWNLOAD = 0x7F
DCS_8BIT_CLASS2 = 0xF6
IEI_CONCAT_8BIT = 0x00
IEI_COMMAND_PACKET = 0x70
IEI_RESPONSE_PACKET = 0x71
MAX_UD = 140

MTI_DELIVER = 0x00
MTI_SUBMIT = 0x01
_UDHI = 0x40
_MMS_NO_MORE = 0x04


class SmsError(ValueError):
    """A TPDU or user data header that does not decode."""


_DIGITS = "0123456789*#abc"


def _bcd(digits: str) -> bytes:
    if not all(c.lower() in _DIGITS for c in digits):
        raise ValueError(f"not an address: {digits!r}")
    nib = [_DIGITS.index(c.lower()) for c in digits]
    if len(nib) % 2:
        nib.append(0xF)
    return bytes(nib[i + 1] << 4 | nib[i] for i in range(0, len(nib), 2))


def _unbcd(b: bytes, n_digits: int) -> str:
    out = [_DIGITS[v] for byte in b for v in (byte & 0x0F, byte >> 4) if v != 0xF]
    return "".join(out)[:n_digits]


@dataclass(frozen=True)
class Address:
    """A TS 23.040 address: digits and TON/NPI (91: international, ISDN)."""

    digits: str
    ton_npi: int = 0x91

    def to_tp(self) -> bytes:
        """TP-OA / TP-DA: the length counts digits (§9.1.2.5)."""
        return bytes((len(self.digits), self.ton_npi)) + _bcd(self.digits)

    def to_bytes(self) -> bytes:
        """The value of a TS 102 223 Address COMPREHENSION-TLV (§8.1): TON/NPI then BCD."""
        return bytes((self.ton_npi,)) + _bcd(self.digits)

    @classmethod
    def from_tp(cls, data: bytes, pos: int) -> tuple[Address, int]:
        if pos + 2 > len(data):
            raise SmsError("address runs off the TPDU")
        n, ton = data[pos], data[pos + 1]
        size = (n + 1) // 2
        raw = data[pos + 2 : pos + 2 + size]
        if len(raw) != size:
            raise SmsError("address runs off the TPDU")
        return cls(_unbcd(raw, n), ton), pos + 2 + size

    @classmethod
    def from_bytes(cls, value: bytes) -> Address:
        if not value:
            raise SmsError("empty address")
        return cls(_unbcd(value[1:], 2 * (len(value) - 1)), value[0])


#: A fixed service-centre time stamp (2026-01-01 00:00:00 UTC): the card never reads it.
DEFAULT_SCTS = bytes.fromhex("62101000000000")


@dataclass(frozen=True)
class SmsDeliver:
    """SMS-DELIVER, SC to MS (TS 23.040 §9.2.2.1)."""

    originator: Address
    user_data: bytes
    udhi: bool = True
    pid: int = PID_DATA_DOWNLOAD
    dcs: int = DCS_8BIT_CLASS2
    scts: bytes = DEFAULT_SCTS
    #: TP-MMS = 0: more messages wait in the SC (the segments before a last one)
    more_messages: bool = False

    def to_bytes(self) -> bytes:
        if len(self.user_data) > MAX_UD:
            raise ValueError("user data over 140 octets")
        first = MTI_DELIVER | (0 if self.more_messages else _MMS_NO_MORE)
        first |= _UDHI if self.udhi else 0
        return (
            bytes((first,))
            + self.originator.to_tp()
            + bytes((self.pid, self.dcs))
            + self.scts
            + bytes((len(self.user_data),))
            + self.user_data
        )

    @classmethod
    def from_bytes(cls, tpdu: bytes) -> SmsDeliver:
        """Raises SmsError: not an SMS-DELIVER, or not 8-bit data."""
        if not tpdu or tpdu[0] & 0x03 != MTI_DELIVER:
            raise SmsError("not an SMS-DELIVER")
        oa, pos = Address.from_tp(tpdu, 1)
        if pos + 10 > len(tpdu):
            raise SmsError("SMS-DELIVER too short")
        pid, dcs = tpdu[pos], tpdu[pos + 1]
        scts = bytes(tpdu[pos + 2 : pos + 9])
        udl = tpdu[pos + 9]
        ud = bytes(tpdu[pos + 10 :])
        if not _eight_bit(dcs):
            raise SmsError("only 8-bit data is taken")
        if udl != len(ud):
            raise SmsError("TP-UDL does not match the user data")
        more = not tpdu[0] & _MMS_NO_MORE
        return cls(oa, ud, bool(tpdu[0] & _UDHI), pid, dcs, scts, more)


@dataclass(frozen=True)
class SmsSubmit:
    """SMS-SUBMIT, MS to SC (TS 23.040 §9.2.2.2), without a validity period."""

    destination: Address
    user_data: bytes
    udhi: bool = True
    pid: int = PID_DATA_DOWNLOAD
    dcs: int = DCS_8BIT_CLASS2
    message_ref: int = 0

    def to_bytes(self) -> bytes:
        if len(self.user_data) > MAX_UD:
            raise ValueError("user data over 140 octets")
        first = MTI_SUBMIT | (_UDHI if self.udhi else 0)
        return (
            bytes((first, self.message_ref & 0xFF))
            + self.destination.to_tp()
            + bytes((self.pid, self.dcs, len(self.user_data)))
            + self.user_data
        )

    @classmethod
    def from_bytes(cls, tpdu: bytes) -> SmsSubmit:
        """Raises SmsError: not an SMS-SUBMIT without TP-VP in 8-bit data."""
        if len(tpdu) < 2 or tpdu[0] & 0x03 != MTI_SUBMIT:
            raise SmsError("not an SMS-SUBMIT")
        vpf = tpdu[0] >> 3 & 0x03
        da, pos = Address.from_tp(tpdu, 2)
        if pos + 3 > len(tpdu):
            raise SmsError("SMS-SUBMIT too short")
        pid, dcs = tpdu[pos], tpdu[pos + 1]
        pos += 2 + {0: 0, 2: 1}.get(vpf, 7)
        if pos >= len(tpdu):
            raise SmsError("SMS-SUBMIT too short")
        udl, ud = tpdu[pos], bytes(tpdu[pos + 1 :])
        if not _eight_bit(dcs):
            raise SmsError("only 8-bit data is taken")
        if udl != len(ud):
            raise SmsError("TP-UDL does not match the user data")
        return cls(da, ud, bool(tpdu[0] & _UDHI), pid, dcs, tpdu[1])


def _eight_bit(dcs: int) -> bool:
    # TS 23.038 §4: 00xx with alphabet b3-b2 = 01, or the F0 group with b2 = 1.
    if dcs & 0xC0 == 0x00:
        return dcs & 0x0C == 0x04
    if dcs & 0xF0 == 0xF0:
        return bool(dcs & 0x04)
    return False


# -- user data header --------------------------------------------------------------------------


@dataclass(frozen=True)
class UserData:
    """TP-UD split into its header's information elements and the rest."""

    elements: tuple[tuple[int, bytes], ...] = ()
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        header = b"".join(bytes((iei, len(v))) + v for iei, v in self.elements)
        return bytes((len(header),)) + header + self.payload

    @classmethod
    def from_bytes(cls, ud: bytes) -> UserData:
        if not ud:
            raise SmsError("no user data header")
        udhl = ud[0]
        if 1 + udhl > len(ud):
            raise SmsError("UDHL runs off the user data")
        elements = []
        pos = 1
        while pos < 1 + udhl:
            if pos + 2 > 1 + udhl:
                raise SmsError("truncated information element")
            iei, n = ud[pos], ud[pos + 1]
            value = ud[pos + 2 : pos + 2 + n]
            if pos + 2 + n > 1 + udhl:
                raise SmsError("information element runs off the header")
            elements.append((iei, bytes(value)))
            pos += 2 + n
        return cls(tuple(elements), bytes(ud[1 + udhl :]))

    def element(self, iei: int) -> bytes | None:
        return next((v for i, v in self.elements if i == iei), None)


@dataclass(frozen=True)
class Segment:
    """One short message of a command packet: its concatenation place, if any."""

    reference: int
    total: int
    number: int
    payload: bytes
    first_header: bool  # IEI 70 present


def _segment(packet: bytes, iei: int, reference: int) -> list[bytes]:
    single = UserData(((iei, b""),), packet).to_bytes()
    if len(single) <= MAX_UD:
        return [single]
    first_room = MAX_UD - 1 - 5 - 2  # UDHL, IEI 00 (5), IEI 70/71 (2)
    room = MAX_UD - 1 - 5
    chunks = [packet[:first_room]]
    rest = packet[first_room:]
    while rest:
        chunks.append(rest[:room])
        rest = rest[room:]
    if len(chunks) > 255:
        raise ValueError("packet too long for 255 concatenated short messages")
    out = []
    for i, chunk in enumerate(chunks):
        concat = (IEI_CONCAT_8BIT, bytes((reference & 0xFF, len(chunks), i + 1)))
        elements = (concat, (iei, b"")) if i == 0 else (concat,)
        out.append(UserData(elements, chunk).to_bytes())
    return out


def _classify(ud: bytes, iei: int) -> Segment:
    u = UserData.from_bytes(ud)
    concat = u.element(IEI_CONCAT_8BIT)
    has_id = u.element(iei) is not None
    if concat is None:
        if not has_id:
            raise SmsError(f"no packet identifier (IEI {iei:02X})")
        return Segment(0, 1, 1, u.payload, True)
    if len(concat) != 3 or concat[1] == 0 or not 1 <= concat[2] <= concat[1]:
        raise SmsError("bad concatenation element")
    if concat[2] == 1 and not has_id:
        raise SmsError(f"first segment without IEI {iei:02X}")
    return Segment(concat[0], concat[1], concat[2], u.payload, has_id)


def segment_command_packet(packet: bytes, reference: int = 0) -> list[bytes]:
    """TP-UD of each short message carrying a command packet (TS 31.115 §6.2)."""
    return _segment(packet, IEI_COMMAND_PACKET, reference)


def command_segment(ud: bytes) -> Segment:
    """Classify the TP-UD of an SMS-PP download (TS 31.115 §6.2).

    Raises:
        SmsError: no header, or no IEI 70 in a message that is not a later segment.
    """
    return _classify(ud, IEI_COMMAND_PACKET)


def segment_response_packet(packet: bytes, reference: int = 0) -> list[bytes]:
    """TP-UD of each SMS-SUBMIT carrying a response packet too long for one (TS 31.115 §7)."""
    return _segment(packet, IEI_RESPONSE_PACKET, reference)


def reassemble_response(uds: list[bytes]) -> bytes:
    """The response packet out of the TP-UD of one or more (concatenated) short messages.

    Raises:
        SmsError: a header that does not decode, or parts missing.
    """
    r = Reassembly()
    out = None
    for ud in uds:
        out = r.add(_classify(ud, IEI_RESPONSE_PACKET))
    if out is None:
        raise SmsError("parts of the response packet are missing")
    return out


@dataclass
class Reassembly:
    """Concatenated segments collected so far (volatile, on the card)."""

    reference: int = -1
    total: int = 0
    parts: dict[int, bytes] = field(default_factory=dict)

    def add(self, seg: Segment) -> bytes | None:
        """Add a segment; the whole command packet once every part is in, else None.

        A segment of another message (another reference or total) starts over.
        """
        if seg.total == 1:
            self.reference, self.total, self.parts = -1, 0, {}
            return seg.payload
        if (seg.reference, seg.total) != (self.reference, self.total):
            self.reference, self.total, self.parts = seg.reference, seg.total, {}
        self.parts[seg.number] = seg.payload
        if len(self.parts) < self.total:
            return None
        whole = b"".join(self.parts[i] for i in range(1, self.total + 1))
        self.reference, self.total, self.parts = -1, 0, {}
        return whole


def response_user_data(packet: bytes) -> bytes:
    """TP-UD carrying a response packet: UDH `02 71 00` then RPL.. (TS 31.115 §7.1)."""
    return UserData(((IEI_RESPONSE_PACKET, b""),), packet).to_bytes()


def response_packet_of(ud: bytes) -> bytes:
    """The response packet out of a PoR's TP-UD.

    Raises:
        SmsError: no IEI 71 in its header.
    """
    u = UserData.from_bytes(ud)
    if u.element(IEI_RESPONSE_PACKET) is None:
        raise SmsError("no response packet identifier (IEI 71)")
    return u.payload
