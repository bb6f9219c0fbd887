"""Reader wrappers: GET RESPONSE and command chaining, stacked on any `Reader`.

Each wrapper is a `Reader` holding another one, so they stack in any order;
the usual stack is `GetResponseReader(ChainingReader(TracingReader(raw)))`,
which traces what really goes over the wire.

- `GetResponseReader`: after 61xx, GET RESPONSE (ISO/IEC 7816-4 §11.7.1) with
  the CLA's logical channel, until the card has nothing more; after 9Fxx to a
  GSM-class command (CLA A0, 3GPP TS 51.011 §9.4.1), GET RESPONSE with CLA A0;
  after 6Cxx, the same command again with Le set to the exact length
  (ISO/IEC 7816-3 §12.2.2, 7816-4 §5.1.3).
- `ChainingReader`: a command whose data field exceeds 255 bytes goes out in
  short command-chaining parts (ISO/IEC 7816-4 §5.3.3, CLA b5 set on all but
  the last) when the card does not take extended length, or always when asked.
"""

from __future__ import annotations

from card.apdu import ApduFormatError, CommandApdu, cla_channel, cla_with_channel
from card.atr import Atr, AtrError
from host.readers.base import Reader, ReaderError

INS_GET_RESPONSE = 0xC0
CLA_GSM = 0xA0
SHORT_DATA_MAX = 255

# A card answering 61xx forever would loop us forever; 64 KiB plus a margin is
# more than any short-APDU card can legitimately hold back.
_MAX_FETCHED = 65536 + 4096


class ReaderWrapper(Reader):
    """A reader that passes power, reset and the ATR through to the reader it wraps."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def atr(self) -> bytes:
        return getattr(self.inner, "atr", b"")

    def connect(self) -> bytes:
        return self.inner.connect()

    def reset(self) -> bytes:
        return self.inner.reset()

    def disconnect(self) -> None:
        self.inner.disconnect()


def _split(resp: bytes) -> tuple[bytes, int]:
    if len(resp) < 2:
        raise ReaderError(f"response of {len(resp)} byte(s), shorter than a status word")
    return resp[:-2], (resp[-2] << 8) | resp[-1]


def get_response_cla(cla: int) -> int:
    """The CLA of the GET RESPONSE that fetches what a command with `cla` left pending.

    GSM class A0 keeps A0 (3GPP TS 51.011); any other class gets the interindustry
    CLA 00 on the same logical channel, without chaining or secure messaging bits
    (GET RESPONSE is an interindustry command, ISO/IEC 7816-4 §5.4.1).
    """
    if cla == CLA_GSM:
        return CLA_GSM
    return cla_with_channel(0x00, cla_channel(cla))


class GetResponseReader(ReaderWrapper):
    """Fetch response data the card holds back: 61xx / 9Fxx → GET RESPONSE, 6Cxx → resend.

    The data of every GET RESPONSE is concatenated; the caller sees one response
    with the last status word.

    Args:
        inner: the reader to wrap.
        gsm: also answer 9Fxx with GET RESPONSE for CLA A0 (on by default).

    Raises (from transmit):
        ReaderError: the card kept announcing data past 64 KiB.
    """

    def __init__(self, inner: Reader, *, gsm: bool = True) -> None:
        super().__init__(inner)
        self.gsm = gsm

    def transmit(self, apdu: bytes) -> bytes:
        resp = self.inner.transmit(apdu)
        data, sw = _split(resp)
        if sw >> 8 == 0x6C:
            resent = _with_le(apdu, sw & 0xFF)
            if resent is not None:
                data, sw = _split(self.inner.transmit(resent))
        cla = apdu[0] if apdu else 0
        if not self._more(cla, sw):
            return data + sw.to_bytes(2, "big")
        out = bytearray(data)
        gr_cla = get_response_cla(cla)
        while self._more(cla, sw):
            le = sw & 0xFF  # 00 means 256
            get_response = bytes((gr_cla, INS_GET_RESPONSE, 0x00, 0x00, le))
            part, sw = _split(self.inner.transmit(get_response))
            if sw >> 8 == 0x6C:
                # Some cards want the exact count even after announcing "00" (256 or more).
                part, sw = _split(self.inner.transmit(get_response[:4] + bytes((sw & 0xFF,))))
            out += part
            if len(out) > _MAX_FETCHED:
                raise ReaderError(f"the card kept announcing more data after {len(out)} bytes")
            if not part and sw >> 8 in (0x61, 0x9F):
                raise ReaderError(f"GET RESPONSE returned no data but {sw:04X}")
        return bytes(out) + sw.to_bytes(2, "big")

    def _more(self, cla: int, sw: int) -> bool:
        sw1 = sw >> 8
        return sw1 == 0x61 or (self.gsm and sw1 == 0x9F and cla == CLA_GSM)


def _with_le(apdu: bytes, la: int) -> bytes | None:
    """The command again with a short Le of `la` (00 = 256); None if it cannot carry one."""
    try:
        cmd = CommandApdu.from_bytes(apdu)
    except ApduFormatError:
        return None
    if cmd.extended and cmd.data:
        return None  # an extended Lc needs an extended Le: leave the answer to the caller
    return CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, la or 256).to_bytes()


class ChainingReader(ReaderWrapper):
    """Send long command data as ISO/IEC 7816-4 §5.3.3 command chains.

    Args:
        inner: the reader to wrap.
        always: chain every command with more than `chunk` data bytes, even when
            the card announces extended length.
        extended: whether the card takes extended Lc/Le; None reads it from the
            ATR's card capabilities (ISO/IEC 7816-4 §8.1.1.2.7) at connect.
        chunk: data bytes per part (1..255).

    An intermediate part answered with anything but 9000 ends the chain: that
    response is returned. The last part carries the Le (at most 256; a caller
    wanting more stacks a `GetResponseReader` on top).
    """

    def __init__(
        self,
        inner: Reader,
        *,
        always: bool = False,
        extended: bool | None = None,
        chunk: int = SHORT_DATA_MAX,
    ) -> None:
        super().__init__(inner)
        if not 1 <= chunk <= SHORT_DATA_MAX:
            raise ValueError(f"chunk must be 1..{SHORT_DATA_MAX}")
        self.always = always
        self.extended = extended
        self.chunk = chunk

    def connect(self) -> bytes:
        atr = self.inner.connect()
        self._learn(atr)
        return atr

    def reset(self) -> bytes:
        atr = self.inner.reset()
        self._learn(atr)
        return atr

    def _learn(self, atr: bytes) -> None:
        if self.extended is not None or not atr:
            return
        try:
            self.extended = Atr.from_bytes(atr).extended_length
        except AtrError:
            self.extended = False

    def transmit(self, apdu: bytes) -> bytes:
        try:
            cmd = CommandApdu.from_bytes(apdu)
        except ApduFormatError:
            return self.inner.transmit(apdu)
        if len(cmd.data) <= self.chunk:
            return self.inner.transmit(apdu)
        if not self.always and (len(cmd.data) <= SHORT_DATA_MAX or self._takes_extended()):
            return self.inner.transmit(apdu)
        return self._chain(cmd)

    def _takes_extended(self) -> bool:
        if self.extended is None:
            self._learn(getattr(self.inner, "atr", b""))
        return bool(self.extended)

    def _chain(self, cmd: CommandApdu) -> bytes:
        if cmd.cla == 0xFF:
            raise ReaderError("CLA FF is invalid: it cannot carry the chaining bit")
        data = cmd.data
        le = None if cmd.le is None else min(cmd.le, 256)
        parts = [data[i : i + self.chunk] for i in range(0, len(data), self.chunk)] or [b""]
        resp = b""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            cla = cmd.cla if last else cmd.cla | 0x10
            piece = CommandApdu(cla, cmd.ins, cmd.p1, cmd.p2, part, le if last else None)
            resp = self.inner.transmit(piece.to_bytes())
            if not last and resp[-2:] != b"\x90\x00":
                return resp
        return resp
