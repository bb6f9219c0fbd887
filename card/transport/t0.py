"""Card side of the character protocol T=0: ISO/IEC 7816-3 §10 and §12.2.

The terminal sends a 5-byte header CLA INS P1 P2 P3; the card answers with
procedure bytes (§10.3.3): NULL `60` (wait), ACK = INS (send/receive all the
remaining data bytes), ACK = INS xor FF (one byte only), or SW1 SW2 (done).

The header alone does not say which way the data goes: P3 is Lc for
incoming data and Le for outgoing data, and P3 = 00 is either case 1 or
case 2 with Le = 256. A real card knows from the instruction; `T0Card` asks
an `outgoing(header) -> bool` callable, by default `default_outgoing`, which
knows the ISO/IEC 7816-4 and ETSI TS 102 221 case 2 commands.

APDU mapping (§12.2):

* case 1 / 3 (incoming): the card receives P3 data bytes, calls
  `runtime.process(CLA INS P1 P2 [Lc data])` and answers its SW. If the
  runtime returns data as well, the card keeps it and answers 61xx; the
  terminal fetches it with GET RESPONSE. A case 4 command arrives as case 3
  (the TPDU has no room for Le): the runtime answers 61xx for its data.
* case 2 (outgoing, Ne = P3 or 256): the card calls `process(header)`.
  Exactly Ne bytes → ACK, data, SW. Fewer bytes → 6C La; the response is
  kept, and the header sent again with P3 = La is answered from it without
  running the command twice (a GET CHALLENGE answers the same challenge).
* GET RESPONSE (INS C0) is served from the card's own buffer when it holds
  data, and passed to the runtime otherwise (the runtime's own 61xx data).
* Extended APDUs travel in ENVELOPE commands (INS C2, ISO/IEC 7816-4:2005
  §7.6.2, §7.2 of the 1995 edition): each ENVELOPE carries the next part of
  the command APDU and is answered 9000; an ENVELOPE with no data (P3 = 00)
  ends the command, as does one that completes a case 4 APDU (its length
  fields leave nothing to add). The card then processes the APDU and answers
  like case 3: 61xx for the data (at most 256 bytes per GET RESPONSE), or
  the SW. The response is not wrapped in ENVELOPE responses: it comes back
  by GET RESPONSE, which is how 7816-4 §7.6.1 moves long responses over T=0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from card.transport import PPSS, ApduRuntime, pps_length, pps_reply

NULL = 0x60
INS_GET_RESPONSE = 0xC0
INS_ENVELOPE = 0xC2

AckMode = Literal["all", "single", "mixed"]

_SW_INS_INVALID = b"\x6d\x00"  # INS 6X/9X cannot be told from procedure bytes (§10.3.2)
_SW_CLA_INVALID = b"\x6e\x00"  # CLA FF is PPSS (§10.3.2)
_SW_OK = b"\x90\x00"
_SW_WRONG_P1P2 = b"\x6a\x86"
_SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"

# Case 2 instructions (no command data, response data expected), ISO/IEC 7816-4 §11
# and ETSI TS 102 221 §10.1.2. Odd INS (B1, CB, ...) carry BER-TLV command data.
_OUTGOING_INS = frozenset(
    {
        0x84,  # GET CHALLENGE
        0xB0,  # READ BINARY
        0xB2,  # READ RECORD(S)
        0xC0,  # GET RESPONSE
        0xCA,  # GET DATA
        0x12,  # FETCH (ETSI TS 102 221 §10.1.2)
    }
)


def default_outgoing(header: bytes) -> bool:
    """Whether a T=0 header announces outgoing data (P3 = Le) rather than incoming (P3 = Lc).

    ISO/IEC 7816-4 case 2 commands, plus two that share their INS with a
    case 3/4 command: STATUS (80 F2, P1 00-02, ETSI TS 102 221 §11.1.2; the
    GlobalPlatform GET STATUS has P1 80/40/20/10 and command data) and
    MANAGE CHANNEL open (P1 = 00: Le = 01; close has P1 = 80, no data).
    """
    ins, p1 = header[1], header[2]
    if ins in _OUTGOING_INS:
        return True
    if ins == 0xF2:
        return p1 <= 0x02
    if ins == 0x70:
        return p1 == 0x00
    return False


class T0Card:
    """A T=0 card: terminal bytes in, card bytes out (ISO/IEC 7816-3 §10).

    `feed` accepts the terminal's bytes split anyhow (a header byte by byte,
    or header and data in one go) and returns what the card sends in answer.

    Args:
        runtime: what processes complete command APDUs.
        outgoing: tells from a 5-byte header whether P3 is Le (True) or Lc.
        ack_mode: "all" answers INS (all bytes at once); "single" answers
            INS xor FF before every byte; "mixed" one byte by INS xor FF, then
            the rest by INS — to exercise terminals.
        null_bytes: NULL bytes (60) sent before every procedure byte and SW,
            as a card asking for more time does (§10.3.3).
    """

    def __init__(
        self,
        runtime: ApduRuntime,
        *,
        outgoing: Callable[[bytes], bool] = default_outgoing,
        ack_mode: AckMode = "all",
        null_bytes: int = 0,
    ) -> None:
        if ack_mode not in ("all", "single", "mixed"):
            raise ValueError(f"ack_mode {ack_mode!r}: 'all', 'single' or 'mixed'")
        if null_bytes < 0:
            raise ValueError("null_bytes must be >= 0")
        self.runtime = runtime
        self.outgoing = outgoing
        self.ack_mode = ack_mode
        self.null_bytes = null_bytes
        self.apdus = 0  # command APDUs given to the runtime
        self._reset()

    def _reset(self) -> None:
        self._header = bytearray()
        self._data = bytearray()
        self._lc = 0
        self._ack_left = 0  # bytes the terminal may send before the next procedure byte
        self._pps: bytearray | None = None
        self._fresh = True  # right after the ATR: a PPS request may come
        self._buffer: bytes | None = None  # response data for GET RESPONSE
        self._buffer_sw = b""
        self._wrong_le: tuple[bytes, bytes] | None = None  # (CLA INS P1 P2, response) after 6Cxx
        self._envelope: bytearray | None = None
        self._ins = 0
        self._cmd_header = b""  # CLA INS P1 P2 of the incoming command being received

    def power_on(self) -> bytes:
        """Power the card and return its ATR; the protocol state starts afresh."""
        atr = self.runtime.power_on()
        self._reset()
        return atr

    reset = power_on

    # -- byte input -------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the terminal; return the bytes the card sends back."""
        out = bytearray()
        for b in data:
            out += self._byte(b)
        return bytes(out)

    def _byte(self, b: int) -> bytes:
        if self._pps is not None:
            self._pps.append(b)
            if len(self._pps) >= 2 and len(self._pps) == pps_length(self._pps[1]):
                request, self._pps = bytes(self._pps), None
                return pps_reply(request, 0)
            return b""
        if self._lc:  # receiving command data
            self._data.append(b)
            self._ack_left -= 1
            if len(self._data) == self._lc:
                self._lc = 0
                return self._incoming_done()
            if self._ack_left == 0:
                return self._next_incoming_ack()
            return b""
        if self._fresh and not self._header and b == PPSS:
            self._fresh = False
            self._pps = bytearray((b,))
            return b""
        self._header.append(b)
        if len(self._header) < 5:
            return b""
        self._fresh = False
        header, self._header = bytes(self._header), bytearray()
        return self._on_header(header)

    # -- procedure bytes ----------------------------------------------------------

    def _nulls(self) -> bytes:
        return b"\x60" * self.null_bytes

    def _sw(self, sw: bytes) -> bytes:
        return self._nulls() + sw

    def _send_out(self, ins: int, data: bytes, sw: bytes) -> bytes:
        """ACK(s), the data bytes, SW1 SW2 (§10.3.3)."""
        out = bytearray(self._nulls())
        mode = self.ack_mode
        if mode == "all" or (mode == "mixed" and len(data) <= 1):
            out.append(ins)
            out += data
        elif mode == "single":
            for b in data:
                out += bytes((ins ^ 0xFF, b))
        else:  # mixed: one byte alone, then the rest
            out += bytes((ins ^ 0xFF, data[0]))
            out += self._nulls()
            out.append(ins)
            out += data[1:]
        out += self._sw(sw)
        return bytes(out)

    def _next_incoming_ack(self) -> bytes:
        ins = self._ins
        left = self._lc - len(self._data)
        if self.ack_mode == "all" or (self.ack_mode == "mixed" and self._data):
            self._ack_left = left
            return self._nulls() + bytes((ins,))
        self._ack_left = 1
        return self._nulls() + bytes((ins ^ 0xFF,))

    # -- commands -----------------------------------------------------------------

    def _on_header(self, header: bytes) -> bytes:
        cla, ins, p1, p2, p3 = header
        if ins & 0xF0 in (0x60, 0x90):
            return self._sw(_SW_INS_INVALID)
        if cla == PPSS:
            return self._sw(_SW_CLA_INVALID)
        if ins == INS_GET_RESPONSE and self._buffer is not None:
            return self._serve_buffer(ins, p1, p2, p3 or 256)
        # Any other command loses the data left for GET RESPONSE, as in ISO/IEC 7816-4.
        self._buffer = None
        if ins != INS_ENVELOPE:
            self._envelope = None
        wrong_le, self._wrong_le = self._wrong_le, None
        if ins == INS_GET_RESPONSE or (ins != INS_ENVELOPE and self.outgoing(header)):
            ne = p3 or 256
            if wrong_le is not None and wrong_le[0] == header[:4]:
                resp = wrong_le[1]
                if len(resp) - 2 == ne:
                    return self._answer_outgoing(header, resp, ne)
            return self._answer_outgoing(header, self._process(header), ne)
        self._ins = ins
        self._cmd_header = header[:4]
        self._data = bytearray()
        if p3 == 0:
            return self._incoming_done()
        self._lc = p3
        return self._next_incoming_ack()

    def _process(self, apdu: bytes) -> bytes:
        self.apdus += 1
        resp = self.runtime.process(apdu)
        if len(resp) < 2:  # the runtime broke its contract: never leave the terminal hanging
            return _SW_NO_PRECISE_DIAGNOSIS
        return resp

    def _answer_outgoing(self, header: bytes, resp: bytes, ne: int) -> bytes:
        data, sw = resp[:-2], resp[-2:]
        if not data:
            return self._sw(sw)
        if len(data) < ne:
            # §12.2.3: wrong length, 6C La; the terminal repeats the header with P3 = La.
            self._wrong_le = (header[:4], resp)
            return self._sw(bytes((0x6C, len(data))))
        if len(data) > ne:  # more than asked for: keep the rest for GET RESPONSE
            self._keep(data[ne:], sw)
            return self._send_out(header[1], data[:ne], self._more_sw())
        return self._send_out(header[1], data, sw)

    def _incoming_done(self) -> bytes:
        data = bytes(self._data)
        self._data = bytearray()
        header = self._cmd_header
        if self._ins == INS_ENVELOPE:
            return self._envelope_part(data)
        apdu = header + (bytes((len(data),)) + data if data else b"")
        return self._answer_incoming(self._process(apdu))

    def _answer_incoming(self, resp: bytes) -> bytes:
        data, sw = resp[:-2], resp[-2:]
        if not data:
            return self._sw(sw)
        self._keep(data, sw)
        return self._sw(self._more_sw())

    def _envelope_part(self, data: bytes) -> bytes:
        if data:
            if self._envelope is None:
                self._envelope = bytearray()
            self._envelope += data
            if not _complete_case4(self._envelope):
                return self._sw(_SW_OK)
        elif self._envelope is None:
            return self._sw(_SW_OK)  # nothing to end: an empty ENVELOPE is harmless
        apdu, self._envelope = bytes(self._envelope), None
        return self._answer_incoming(self._process(apdu))

    # -- GET RESPONSE from the card's buffer ------------------------------------

    def _keep(self, data: bytes, sw: bytes) -> None:
        self._buffer = data
        self._buffer_sw = sw

    def _more_sw(self) -> bytes:
        n = len(self._buffer or b"")
        return bytes((0x61, n if n < 256 else 0))

    def _serve_buffer(self, ins: int, p1: int, p2: int, ne: int) -> bytes:
        if p1 or p2:
            return self._sw(_SW_WRONG_P1P2)
        buf = self._buffer or b""
        if ne > len(buf):
            return self._sw(bytes((0x6C, len(buf) & 0xFF)))
        part, rest = buf[:ne], buf[ne:]
        if rest:
            self._buffer = rest
            return self._send_out(ins, part, self._more_sw())
        self._buffer = None
        return self._send_out(ins, part, self._buffer_sw)


def _complete_case4(apdu: bytes | bytearray) -> bool:
    """Whether the bytes are a whole case 4 APDU (S or E), to which nothing can be added."""
    n = len(apdu)
    if n < 6:
        return False
    if apdu[4]:
        return n == 6 + apdu[4]
    if n < 7:
        return False
    lc = apdu[5] << 8 | apdu[6]
    return lc > 0 and n == 9 + lc
