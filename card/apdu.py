"""Command and response APDUs: ISO/IEC 7816-3 §12.1 and ISO/IEC 7816-4 §5.

`CommandApdu.from_bytes` detects the case strictly (1, 2S, 3S, 4S, 2E, 3E, 4E)
and refuses every length it would have to guess at with `ApduFormatError`
(status word 6700). `le` holds Ne, the number of bytes expected: a short Le of
00 means 256 and an extended Le of 0000 means 65536; `None` means no Le field.
"""

from __future__ import annotations

from dataclasses import dataclass

from card.sw import SW, CardError

SHORT_NE_MAX = 256
EXTENDED_NE_MAX = 65536
EXTENDED_NC_MAX = 65535


class ApduFormatError(CardError):
    """The bytes are not a well-formed APDU (status word 6700 by default)."""

    def __init__(self, reason: str, sw: int = SW.WRONG_LENGTH) -> None:
        super().__init__(sw)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.sw:04X}: {self.reason}"


# -- CLA byte (ISO 7816-4 §5.4.1) -------------------------------------------


def cla_channel(cla: int) -> int:
    """The logical channel number a CLA byte addresses.

    First interindustry values (and proprietary classes with b7 = 0, as
    GlobalPlatform and ETSI use them) carry channels 0-3 in b2-b1; further
    interindustry values (b7 = 1) carry channels 4-19 in b4-b1.
    """
    if cla & 0x40:
        return (cla & 0x0F) + 4
    return cla & 0x03


def cla_chained(cla: int) -> bool:
    """b5: the command is not the last of a chain (ISO 7816-4 §5.3.3)."""
    return bool(cla & 0x10) and cla & 0x80 == 0


def cla_secure_messaging(cla: int) -> int:
    """The secure-messaging indication: 0 none, 1 proprietary, 2/3 ISO (header (not) covered)."""
    if cla & 0x40:
        return 2 if cla & 0x20 else 0
    return (cla >> 2) & 0x03


def cla_with_channel(cla: int, channel: int) -> int:
    """Rewrite a CLA byte to address `channel`, keeping its class, chaining and SM bits."""
    if not 0 <= channel <= 19:
        raise ValueError(f"logical channel {channel} out of range 0..19")
    sm = bool(cla & 0x20) if cla & 0x40 else bool(cla & 0x0C)
    if channel <= 3:
        sm_bits = (cla & 0x0C) if not cla & 0x40 else (0x08 if sm else 0)
        return (cla & 0x90) | sm_bits | channel
    return (cla & 0x90) | 0x40 | (0x20 if sm else 0) | (channel - 4)


# -- Command APDU -------------------------------------------------------------

_CASE1: tuple[bytes, None, bool] = (b"", None, False)


def parse_body(b: bytes) -> tuple[bytes, int | None, bool]:
    """The data field, Ne (None: no Le field) and whether the lengths are extended.

    The one parser of a command APDU's length fields (ISO 7816-3 §12.1.3), for
    `CommandApdu.from_bytes` and the card runtime's `APDU.parse`: the case is
    detected strictly, a short Le of 00 is Ne 256 and an extended Le of 0000 is
    65536. The header is the first four bytes.

    Raises:
        ApduFormatError: fewer than 4 bytes, or length fields that do not match
            the number of bytes.
    """
    n = len(b)
    if n < 4:
        raise ApduFormatError(f"an APDU has at least 4 bytes, got {n}")
    if n == 4:  # case 1
        return _CASE1
    if n == 5:  # case 2S
        return b"", b[4] or 256, False
    lc = b[4]
    if lc:  # short Lc
        if n == 5 + lc:  # case 3S
            data = b[5:]
            return (data if type(data) is bytes else bytes(data)), None, False
        if n == 6 + lc:  # case 4S
            data = b[5:-1]
            return (data if type(data) is bytes else bytes(data)), b[-1] or 256, False
        raise ApduFormatError(f"Lc={lc} does not match {n - 5} bytes after the header")
    # b[4] == 0: extended length
    if n < 7:
        raise ApduFormatError("truncated extended length field")
    lc = (b[5] << 8) | b[6]
    if n == 7:  # case 2E
        return b"", lc or 65536, True
    if lc == 0:
        raise ApduFormatError("extended Lc of 0000 followed by more bytes")
    if n == 7 + lc:  # case 3E
        return bytes(b[7:]), None, True
    if n == 9 + lc:  # case 4E
        return bytes(b[7:-2]), ((b[-2] << 8) | b[-1]) or 65536, True
    raise ApduFormatError(f"extended Lc={lc} does not match {n - 7} bytes after the length")


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU. Build one directly, or parse with `from_bytes`."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFF:
                raise ValueError(f"{name} {v} is not a byte")
        if len(self.data) > EXTENDED_NC_MAX:
            raise ValueError(f"command data of {len(self.data)} bytes exceeds 65535")
        if self.le is not None and not 1 <= self.le <= EXTENDED_NE_MAX:
            raise ValueError(f"Ne {self.le} out of range 1..65536")
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        if self.extended and not self.data and self.le is None:
            object.__setattr__(self, "extended", False)  # case 1 has no length field at all
        elif not self.extended and (
            len(self.data) > 255 or (self.le is not None and self.le > SHORT_NE_MAX)
        ):
            object.__setattr__(self, "extended", True)

    @classmethod
    def from_bytes(cls, b: bytes) -> CommandApdu:
        """Parse an APDU, detecting its case strictly (ISO 7816-3 §12.1.3).

        Raises:
            ApduFormatError: the length fields do not match the number of bytes.
        """
        data, le, extended = parse_body(b)
        # Fields are already validated by construction: skip __post_init__, and set the
        # slots through their descriptors (the frozen __setattr__ refuses, and
        # object.__setattr__ looks each name up again).
        self = object.__new__(cls)
        _SET_CLA(self, b[0])
        _SET_INS(self, b[1])
        _SET_P1(self, b[2])
        _SET_P2(self, b[3])
        _SET_DATA(self, data)
        _SET_LE(self, le)
        _SET_EXTENDED(self, extended)
        return self

    @property
    def case(self) -> str:
        """'1', '2S', '3S', '4S', '2E', '3E' or '4E'."""
        if not self.data and self.le is None:
            return "1"
        n = "2" if not self.data else ("3" if self.le is None else "4")
        return n + ("E" if self.extended else "S")

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    @property
    def channel(self) -> int:
        return cla_channel(self.cla)

    def to_bytes(self) -> bytes:
        out = bytearray(self.header)
        nc = len(self.data)
        if self.extended:
            if nc:
                out += b"\x00" + nc.to_bytes(2, "big") + self.data
            if self.le is not None:
                le = self.le & 0xFFFF  # 65536 -> 0000
                out += le.to_bytes(2, "big") if nc else b"\x00" + le.to_bytes(2, "big")
        else:
            if nc:
                out.append(nc)
                out += self.data
            if self.le is not None:
                out.append(self.le & 0xFF)  # 256 -> 00
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


(_SET_CLA, _SET_INS, _SET_P1, _SET_P2, _SET_DATA, _SET_LE, _SET_EXTENDED) = (
    CommandApdu.__dict__[name].__set__
    for name in ("cla", "ins", "p1", "p2", "data", "le", "extended")
)


# -- Response APDU -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data field and status word."""

    data: bytes
    sw: int

    @classmethod
    def from_bytes(cls, b: bytes) -> ResponseApdu:
        if len(b) < 2:
            raise ApduFormatError(f"a response has at least 2 bytes (SW1 SW2), got {len(b)}")
        return cls(bytes(b[:-2]), (b[-2] << 8) | b[-1])

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def status(self) -> SW:
        return SW(self.sw)

    def __bytes__(self) -> bytes:
        return self.to_bytes()
