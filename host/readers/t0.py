"""A terminal-side T=0 driver: APDUs onto TPDUs, byte by byte (ISO/IEC 7816-3 §10, §12.2).

`T0Reader` maps each command APDU onto T=0 TPDUs and drives a
`card.transport.t0.T0Card` with the bytes a reader would put on the I/O
line, handling the procedure bytes (NULL, ACK, INS xor FF, SW1 SW2) and the
APDU-level rules of §12.2, as an EMV terminal transport layer does:

* case 2S answered 6C La: the header is sent again with P3 = La;
* case 4S answered 61xx (the data the card holds back): GET RESPONSE with
  P3 = min(Ne, xx) — 9Fxx (GSM class) is handled the same way;
* extended APDUs (2E/3E/4E): ENVELOPE commands of up to 255 bytes, an
  empty ENVELOPE to end unless the APDU is case 4E, then GET RESPONSE until
  Ne bytes have arrived or the card has no more.

61xx after a case 1 or 3 command is returned as it is: Ne is 0 there, and a
caller that wants the data sends GET RESPONSE itself.
"""

from __future__ import annotations

from card.apdu import ApduFormatError, CommandApdu, cla_with_channel
from card.transport import ApduRuntime
from card.transport.t0 import INS_ENVELOPE, INS_GET_RESPONSE, NULL, T0Card
from host.readers.base import Reader, ReaderError

_ENVELOPE_PART = 255


class T0Reader(Reader):
    """A T=0 byte-stream reader in front of a `T0Card` (or a runtime it wraps in one).

    Args:
        card: the card engine, or a runtime to wrap in a default `T0Card`.
        chunk: how many bytes to hand the card per `feed` call (1 = one
            character at a time, as on the wire).
        name: the reader's name.
    """

    def __init__(
        self, card: T0Card | ApduRuntime, *, chunk: int = 1, name: str = "cardemu T=0"
    ) -> None:
        if chunk < 1:
            raise ValueError("chunk must be >= 1")
        self.engine = card if isinstance(card, T0Card) else T0Card(card)
        self.chunk = chunk
        self.name = name
        self.atr = b""
        self.tpdus = 0  # TPDU headers sent
        self.nulls = 0  # NULL procedure bytes seen
        self._connected = False
        self._rx = bytearray()

    def connect(self) -> bytes:
        self.atr = self.engine.power_on()
        self._rx.clear()
        self._connected = True
        return self.atr

    def reset(self) -> bytes:
        return self.connect()

    def disconnect(self) -> None:
        self._connected = False

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU (any case, short or extended) and return the response APDU.

        Raises:
            ReaderError: the bytes are not a well-formed APDU, or the card broke the protocol.
        """
        if not self._connected:
            self.connect()
        try:
            cmd = CommandApdu.from_bytes(apdu)
        except ApduFormatError as e:
            raise ReaderError(f"T=0 carries well-formed APDUs only: {e.reason}") from None
        if cmd.extended:
            return self._transmit_envelope(cmd)
        header = cmd.header
        if cmd.case == "1":
            data, sw = self._tpdu(header + b"\x00")
        elif cmd.case == "2S":
            data, sw = self._outgoing(header, cmd.le or 256)
        else:
            data, sw = self._tpdu(header + bytes((len(cmd.data),)), cmd.data)
            if cmd.le is not None and not data and sw >> 8 in (0x61, 0x9F):
                return self._fetch(cmd, sw)
        return data + sw.to_bytes(2, "big")

    # -- APDU level (§12.2) ---------------------------------------------------------

    def _outgoing(self, header: bytes, ne: int) -> tuple[bytes, int]:
        """A case 2 TPDU, sent again with P3 = La after 6C La (§12.2.3)."""
        data, sw = self._tpdu(header + bytes((ne & 0xFF,)), expect=ne)
        if sw >> 8 == 0x6C:
            la = sw & 0xFF
            data, sw = self._tpdu(header + bytes((la,)), expect=la or 256)
        return data, sw

    def _fetch(self, cmd: CommandApdu, sw: int) -> bytes:
        """GET RESPONSE while the card has data (61xx/9Fxx) and fewer than Ne bytes came."""
        ne = cmd.le or 0
        cla = 0xA0 if cmd.cla & 0xF0 == 0xA0 else cla_with_channel(0x00, cmd.channel)
        header = bytes((cla, INS_GET_RESPONSE, 0x00, 0x00))
        out = bytearray()
        while sw >> 8 in (0x61, 0x9F) and len(out) < ne:
            available = (sw & 0xFF) or 256
            data, sw = self._outgoing(header, min(available, ne - len(out), 256))
            if not data:
                break
            out += data
        return bytes(out) + sw.to_bytes(2, "big")

    def _transmit_envelope(self, cmd: CommandApdu) -> bytes:
        """An extended APDU in ENVELOPE commands (ISO/IEC 7816-4:2005 §7.6.2)."""
        raw = cmd.to_bytes()
        cla = cla_with_channel(0x00, cmd.channel)
        data, sw = b"", 0x9000
        for i in range(0, len(raw), _ENVELOPE_PART):
            part = raw[i : i + _ENVELOPE_PART]
            data, sw = self._tpdu(bytes((cla, INS_ENVELOPE, 0, 0, len(part))), part)
            last = i + _ENVELOPE_PART >= len(raw)
            if not (last and cmd.case == "4E") and (data or sw != 0x9000):
                return data + sw.to_bytes(2, "big")  # the card refused a part
        if cmd.case != "4E":
            data, sw = self._tpdu(bytes((cla, INS_ENVELOPE, 0, 0, 0)))
        if cmd.le is not None and not data and sw >> 8 in (0x61, 0x9F):
            return self._fetch(cmd, sw)
        return data + sw.to_bytes(2, "big")

    # -- TPDU level (§10.3) -----------------------------------------------------------

    def _tpdu(self, header: bytes, data: bytes = b"", expect: int = 0) -> tuple[bytes, int]:
        """Send one TPDU; returns (data received, SW1 SW2).

        Args:
            header: CLA INS P1 P2 P3.
            data: the command data to send on ACK (P3 = Lc).
            expect: how many bytes to receive on ACK (P3 = Le).
        """
        if self._rx:
            raise ReaderError(f"the card sent {bytes(self._rx).hex()} out of turn")
        self.tpdus += 1
        self._send(header)
        ins = header[1]
        sent = 0
        got = bytearray()
        while True:
            pb = self._recv(1)[0]
            if pb == NULL:
                self.nulls += 1
                continue
            if pb & 0xF0 in (0x60, 0x90):
                sw2 = self._recv(1)[0]
                if self._rx:
                    raise ReaderError(f"the card sent {bytes(self._rx).hex()} after SW1 SW2")
                return bytes(got), pb << 8 | sw2
            if pb not in (ins, ins ^ 0xFF):
                raise ReaderError(
                    f"procedure byte {pb:02X} is not NULL, ACK or SW1 (INS {ins:02X})"
                )
            left = len(data) - sent if data else expect - len(got)
            if left <= 0:
                raise ReaderError(f"the card sent ACK {pb:02X} with nothing left to transfer")
            n = left if pb == ins else 1
            if data:
                self._send(data[sent : sent + n])
                sent += n
            else:
                got += self._recv(n)

    def _send(self, data: bytes) -> None:
        for i in range(0, len(data), self.chunk):
            self._rx += self.engine.feed(data[i : i + self.chunk])

    def _recv(self, n: int) -> bytes:
        if len(self._rx) < n:
            # On a wire this is the waiting time running out: the card waits for bytes too.
            # Like a reader after a time-out, deactivate: the next transmit powers up again.
            self._rx.clear()
            self._connected = False
            raise ReaderError(
                f"the card went silent after {len(self._rx)} of {n} byte(s) (waiting-time expired)"
            )
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out
