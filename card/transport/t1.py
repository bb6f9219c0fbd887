"""Card side of the block protocol T=1: ISO/IEC 7816-3 §11.

A block is NAD PCB LEN INF EDC (§11.3). The PCB tells the three kinds apart:

* I-block `0 N(S) M 00000`: information, N(S) its send-sequence number, M set
  when more blocks of the same chain follow (§11.3.2.2);
* R-block `100 N(R) 00 EE`: receive-ready, N(R) the N(S) of the I-block
  expected next; EE 0 no error, 1 EDC or parity error, 2 other error;
* S-block `11 R 0 0 TTT`: supervisory requests (R = 0) and responses (R = 1)
  for RESYNCH (0), IFS (1), ABORT (2) and WTX (3).

The EDC is the LRC (XOR of every byte, 1 byte) or a CRC (2 bytes), as b1 of
the first TCi for T=1 in the ATR says (§11.4.4). For the CRC, 7816-3 points
to ISO/IEC 3309 (now 13239) and its generator x^16 + x^12 + x^5 + 1, and
implementations have differed on the rest. We do what the T=1 code of the
PC/SC readers does (OpenCT's `csum_crc_compute`, kept in Ludovic Rousseau's
CCID driver as src/openct/checksum.c), since that is the terminal a card meets:
register preset to FFFF, bits taken least significant first (reflected
polynomial 8408), no final complement, the two bytes sent high byte first.
In the reveng catalogue that is CRC-16/MCRF4XX, check value 6F91 on
"123456789"; complemented it is the ISO/IEC 14443-3 CRC_B.

`T1Card` answers one block with one block (`handle_block`), following the
rules of §11.6: chaining both ways, IFSC/IFSD, WTX, RESYNCH, ABORT, and
error recovery (an invalid block is answered by an R-block with error 1 or 2;
an R-block makes the card send again what the terminal missed).
`T1ByteStream` frames a byte stream into blocks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from card.atr import Atr, AtrError, Edc
from card.transport import PPSS, ApduRuntime, pps_length, pps_reply

EdcKind = Literal["lrc", "crc"]

DEFAULT_IFS = 32  # IFSC and IFSD until told otherwise (§11.4.2)
MAX_IFS = 254  # 00 and FF are reserved (§11.4.2)

# R-block error codes (§11.3.2.2).
OK = 0
EDC_ERROR = 1
OTHER_ERROR = 2

# S-block types (§11.3.2.2).
RESYNCH = 0
IFS = 1
ABORT = 2
WTX = 3

_S_NAMES = {RESYNCH: "RESYNCH", IFS: "IFS", ABORT: "ABORT", WTX: "WTX"}

# The largest command APDU (case 4E); longer chains are refused rather than buffered.
MAX_APDU = 4 + 3 + 65535 + 2


# -- EDC (§11.4.4) ------------------------------------------------------------------


def lrc(data: bytes) -> int:
    """Longitudinal redundancy check: the XOR of all bytes."""
    x = 0
    for b in data:
        x ^= b
    return x


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x8408 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """The T=1 CRC: x^16 + x^12 + x^5 + 1, reflected, preset FFFF, no final XOR."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def edc_length(edc: EdcKind) -> int:
    return 2 if edc == "crc" else 1


def compute_edc(data: bytes, edc: EdcKind) -> bytes:
    """The epilogue field for prologue + INF `data`."""
    if edc == "crc":
        return crc16(data).to_bytes(2, "big")
    return bytes((lrc(data),))


# -- blocks (§11.3) ----------------------------------------------------------------


class BlockError(Exception):
    """An invalid block; `code` is the R-block error to answer it with (1 EDC, 2 other)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        kind = "EDC" if self.code == EDC_ERROR else "other"
        return f"invalid block ({kind} error): {self.reason}"


@dataclass(frozen=True, slots=True)
class Block:
    """One T=1 block without its EDC."""

    nad: int
    pcb: int
    inf: bytes = b""

    @property
    def kind(self) -> str:
        """'I', 'R' or 'S'."""
        if not self.pcb & 0x80:
            return "I"
        return "S" if self.pcb & 0x40 else "R"

    @property
    def ns(self) -> int:
        """N(S) of an I-block."""
        return self.pcb >> 6 & 1

    @property
    def more(self) -> bool:
        """M of an I-block: more blocks of the chain follow."""
        return bool(self.pcb & 0x20)

    @property
    def nr(self) -> int:
        """N(R) of an R-block."""
        return self.pcb >> 4 & 1

    @property
    def error(self) -> int:
        """Error code of an R-block: 0, EDC_ERROR or OTHER_ERROR."""
        return self.pcb & 0x0F

    @property
    def s_type(self) -> int:
        """RESYNCH, IFS, ABORT or WTX for an S-block."""
        return self.pcb & 0x1F

    @property
    def response(self) -> bool:
        """Whether an S-block is a response."""
        return bool(self.pcb & 0x20)

    def encode(self, edc: EdcKind = "lrc") -> bytes:
        body = bytes((self.nad, self.pcb, len(self.inf))) + self.inf
        return body + compute_edc(body, edc)

    def __str__(self) -> str:
        if self.kind == "I":
            return f"I({self.ns}{', M' if self.more else ''}) {self.inf.hex()}"
        if self.kind == "R":
            return f"R({self.nr}{f', error {self.error}' if self.error else ''})"
        name = _S_NAMES.get(self.s_type, f"{self.s_type:02X}")
        return f"S({name} {'response' if self.response else 'request'}) {self.inf.hex()}"


def i_block(ns: int, inf: bytes, more: bool = False, nad: int = 0) -> Block:
    return Block(nad, (ns & 1) << 6 | (0x20 if more else 0), bytes(inf))


def r_block(nr: int, error: int = OK, nad: int = 0) -> Block:
    return Block(nad, 0x80 | (nr & 1) << 4 | error)


def s_block(s_type: int, response: bool = False, inf: bytes = b"", nad: int = 0) -> Block:
    return Block(nad, 0xC0 | (0x20 if response else 0) | s_type, bytes(inf))


def parse_block(raw: bytes, edc: EdcKind = "lrc") -> Block:
    """Check and decode one received block (§11.3; §11.6.3, rule 7, for what is invalid).

    Raises:
        BlockError: with code 1 for a wrong EDC, 2 for a wrong length, PCB, NAD or INF.
    """
    n_edc = edc_length(edc)
    if len(raw) < 3 + n_edc:
        raise BlockError(OTHER_ERROR, f"{len(raw)} bytes is shorter than a block")
    nad, pcb, ln = raw[0], raw[1], raw[2]
    if ln == 0xFF:
        raise BlockError(OTHER_ERROR, "LEN FF is reserved")
    if len(raw) != 3 + ln + n_edc:
        raise BlockError(OTHER_ERROR, f"LEN {ln} does not match {len(raw)} bytes")
    if compute_edc(raw[:-n_edc], edc) != raw[-n_edc:]:
        raise BlockError(EDC_ERROR, f"EDC {raw[-n_edc:].hex()} is wrong")
    inf = bytes(raw[3 : 3 + ln])
    if nad & 0x88:
        raise BlockError(OTHER_ERROR, f"NAD {nad:02X} has b8 or b4 set")
    if not pcb & 0x80:
        if pcb & 0x1F:
            raise BlockError(OTHER_ERROR, f"I-block PCB {pcb:02X} has RFU bits set")
    elif not pcb & 0x40:
        if pcb & 0x2C or pcb & 0x03 == 0x03 or ln:
            raise BlockError(OTHER_ERROR, f"R-block PCB {pcb:02X} LEN {ln} is invalid")
    else:
        s_type = pcb & 0x1F
        if s_type not in _S_NAMES:
            raise BlockError(OTHER_ERROR, f"S-block PCB {pcb:02X} is not a known type")
        if ln != (1 if s_type in (IFS, WTX) else 0):
            raise BlockError(OTHER_ERROR, f"S-block {_S_NAMES[s_type]} with LEN {ln}")
        if s_type == IFS and not 1 <= inf[0] <= MAX_IFS:
            raise BlockError(OTHER_ERROR, f"IFS {inf[0]} out of range 1..254")
    return Block(nad, pcb, inf)


def swap_nad(nad: int) -> int:
    """The NAD of an answer: source and destination addresses exchanged (§11.3.2.1)."""
    return (nad & 0x07) << 4 | (nad >> 4) & 0x07


# -- ATR (§11.4) -----------------------------------------------------------------------


def t1_parameters(atr: bytes) -> tuple[int, EdcKind]:
    """IFSC and EDC that an ATR announces for T=1 (first TAi and TCi for T=1, i > 2).

    An ATR that does not parse gives the defaults (32, LRC), as a terminal would assume.
    """
    try:
        parsed = Atr.from_bytes(atr)
    except AtrError:
        return DEFAULT_IFS, "lrc"
    return parsed.ifsc, "crc" if parsed.t1_edc is Edc.CRC else "lrc"


def advertise_t1(atr: bytes, ifsc: int, edc: EdcKind) -> bytes:
    """The ATR rewritten so that its T=1 bytes announce `ifsc` and `edc` (§8.2.3, §11.4).

    The first group after a TDi (i >= 2) announcing T=1 gets TA = IFSC and TC = EDC;
    without one, a TD for T=1 and a group for its bytes are added at the end.

    Raises:
        AtrError: the ATR does not parse.
    """
    parsed = Atr.from_bytes(atr)
    rows = [[g.ta, g.tb, g.tc, None if g.td is None else g.td & 0x0F] for g in parsed.interface]
    ta = None if ifsc == DEFAULT_IFS else ifsc
    tc = 0x01 if edc == "crc" else None
    for i in range(1, len(rows) - 1):
        if rows[i][3] == 1:
            rows[i + 1][0] = ta
            rows[i + 1][2] = tc
            break
    else:
        if len(rows) == 1:  # no TD1: announce T=1 twice, its bytes only count from group 3
            rows[0][3] = 1
            rows.append([None, None, None, None])
        rows[-1][3] = 1
        rows.append([ta, None, tc, None])
    levels = [(r[0], r[1], r[2], r[3]) for r in rows]
    return Atr.from_levels(levels, parsed.historical, parsed.ts).to_bytes()


# -- the card engine (§11.6) --------------------------------------------------------------


@dataclass
class T1Stats:
    """Counters of one `T1Card`, for tests and traces."""

    blocks_in: int = 0
    blocks_out: int = 0
    edc_errors: int = 0
    other_errors: int = 0
    retransmissions: int = 0
    wtx_requests: int = 0
    resynchs: int = 0
    aborts: int = 0
    apdus: int = 0


class T1Card:
    """A T=1 card: one block in, one block out (ISO/IEC 7816-3 §11.6).

    Args:
        runtime: what processes complete command APDUs.
        ifsc: the card's information field size (1..254); None takes the
            ATR's. A value the ATR does not announce is written into the ATR
            that `power_on` returns, so the terminal learns it as from a chip.
        edc: "lrc" or "crc"; None takes the ATR's (rewritten like `ifsc`).
        wtx_every: ask for waiting time extension before answering every
            n-th command APDU (0 never) — a slow command, or a terminal test.
        wtx_multiplier: the INF of the S(WTX request), 1..255.
        wtx_requests: how many S(WTX request) to send before each such answer.
    """

    def __init__(
        self,
        runtime: ApduRuntime,
        *,
        ifsc: int | None = None,
        edc: EdcKind | None = None,
        wtx_every: int = 0,
        wtx_multiplier: int = 1,
        wtx_requests: int = 1,
    ) -> None:
        if ifsc is not None and not 1 <= ifsc <= MAX_IFS:
            raise ValueError(f"IFSC {ifsc} out of range 1..254")
        if edc not in (None, "lrc", "crc"):
            raise ValueError(f"edc {edc!r}: 'lrc' or 'crc'")
        if not 1 <= wtx_multiplier <= 0xFF or wtx_every < 0 or wtx_requests < 1:
            raise ValueError("wtx_every >= 0, wtx_multiplier 1..255, wtx_requests >= 1")
        self.runtime = runtime
        self._ifsc_config = ifsc
        self._edc_config: EdcKind | None = edc
        self.wtx_every = wtx_every
        self.wtx_multiplier = wtx_multiplier
        self.wtx_requests = wtx_requests
        self.stats = T1Stats()
        self.atr = b""
        self.edc: EdcKind = edc or "lrc"
        self._atr_ifsc = ifsc or DEFAULT_IFS
        self.ifsc = self._atr_ifsc  # what the terminal may send in one block
        self.ifsd = DEFAULT_IFS  # what the terminal accepts in one block
        self._resynch()

    def _resynch(self) -> None:
        """Sequence numbers and chains as after the ATR (§11.6.3, rule 6); IFSC/IFSD are kept."""
        self._ns = 0  # N(S) of the card's next I-block
        self._nr = 0  # N(S) expected in the terminal's next I-block
        self._rx = bytearray()  # command chain being received
        self._rx_overflow = False
        self._tx: bytes | None = None  # response chain being sent (None: nothing more)
        self._tx_pos = 0
        self._last_i: Block | None = None  # the card's last I-block, for retransmission
        self._s_queue: list[Block] = []  # S-requests to send before the deferred answer
        self._s_sent: Block | None = None  # S-request awaiting its response
        self._deferred: Callable[[], Block] | None = None
        self._last: Block | None = None
        self._nad = 0  # NAD of the answers

    def power_on(self) -> bytes:
        """Power the card and return its ATR (announcing this engine's IFSC and EDC)."""
        atr = self.runtime.power_on()
        atr_ifsc, atr_edc = t1_parameters(atr)
        ifsc = self._ifsc_config or atr_ifsc
        edc = self._edc_config or atr_edc
        if (ifsc, edc) != (atr_ifsc, atr_edc):
            atr = advertise_t1(atr, ifsc, edc)
        self.atr = atr
        self.edc = edc
        self._atr_ifsc = self.ifsc = ifsc
        self.ifsd = DEFAULT_IFS
        self._resynch()
        return atr

    reset = power_on

    def request_ifsc(self, ifsc: int) -> None:
        """Announce a new IFSC by S(IFS request) before the card's next answer (rule 4)."""
        if not 1 <= ifsc <= MAX_IFS:
            raise ValueError(f"IFSC {ifsc} out of range 1..254")
        self._s_queue.append(s_block(IFS, inf=bytes((ifsc,))))

    # -- one block in, one block out -----------------------------------------------

    def handle_block(self, raw: bytes) -> bytes:
        """Process one block from the terminal; return the card's block."""
        self.stats.blocks_in += 1
        try:
            block = parse_block(raw, self.edc)
            if block.kind == "I" and len(block.inf) > self.ifsc:
                raise BlockError(OTHER_ERROR, f"LEN {len(block.inf)} exceeds IFSC {self.ifsc}")
        except BlockError as e:
            if e.code == EDC_ERROR:
                self.stats.edc_errors += 1
            else:
                self.stats.other_errors += 1
            return self._error(e.code)
        self._nad = swap_nad(block.nad)
        if block.kind == "I":
            answer = self._on_i(block)
        elif block.kind == "R":
            answer = self._on_r(block)
        else:
            answer = self._on_s(block)
        return self._emit(answer)

    def _emit(self, block: Block, remember: bool = True) -> bytes:
        block = Block(self._nad, block.pcb, block.inf)
        if remember:
            self._last = block
        self.stats.blocks_out += 1
        return block.encode(self.edc)

    def _error(self, code: int) -> bytes:
        # An error R-block is not "the last block": a later R-block from the terminal must
        # still bring back the I- or S-block it missed (rule 7.2).
        return self._emit(r_block(self._nr, code), remember=False)

    def _resend(self, block: Block) -> Block:
        self.stats.retransmissions += 1
        return block

    def _on_i(self, block: Block) -> Block:
        if self._s_sent is not None:  # waiting for an S-response: ask again
            return self._resend(self._s_sent)
        if self._tx is not None:  # the terminal must acknowledge our chain, not send
            self.stats.other_errors += 1
            return r_block(self._nr, OTHER_ERROR)
        if block.ns != self._nr:  # a repeat of a block already taken: answer as before
            self.stats.other_errors += 1
            return self._resend(self._last) if self._last else r_block(self._nr, OTHER_ERROR)
        self._nr ^= 1
        self._last_i = None  # the terminal's I-block acknowledges our last response
        if len(self._rx) + len(block.inf) > MAX_APDU:
            self._rx_overflow = True
        else:
            self._rx += block.inf
        if block.more:
            return self._answer(lambda: r_block(self._nr))
        apdu, overflow = bytes(self._rx), self._rx_overflow
        self._rx, self._rx_overflow = bytearray(), False
        self.stats.apdus += 1
        resp = b"\x67\x00" if overflow else self.runtime.process(apdu)
        if self.wtx_every and self.stats.apdus % self.wtx_every == 0:
            for _ in range(self.wtx_requests):
                self._s_queue.append(s_block(WTX, inf=bytes((self.wtx_multiplier,))))
        return self._answer(lambda: self._start_tx(resp))

    def _answer(self, deferred: Callable[[], Block]) -> Block:
        """Send the queued S-requests first (rules 3 and 4), then the deferred answer."""
        self._deferred = deferred
        return self._next_queued()

    def _next_queued(self) -> Block:
        if self._s_queue:
            self._s_sent = self._s_queue.pop(0)
            if self._s_sent.s_type == WTX:
                self.stats.wtx_requests += 1
            return self._s_sent
        deferred, self._deferred = self._deferred, None
        return deferred() if deferred is not None else r_block(self._nr)

    def _start_tx(self, resp: bytes) -> Block:
        self._tx = resp
        self._tx_pos = 0
        return self._next_chunk()

    def _next_chunk(self) -> Block:
        tx = self._tx or b""
        chunk = tx[self._tx_pos : self._tx_pos + self.ifsd]
        more = self._tx_pos + len(chunk) < len(tx)
        block = i_block(self._ns, chunk, more)
        self._ns ^= 1
        self._last_i = block
        if not more:
            self._tx = None
        return block

    def _on_r(self, block: Block) -> Block:
        if self._s_sent is not None:
            return self._resend(self._s_sent)
        last = self._last_i
        if self._tx is not None and last is not None:  # sending a chain
            if block.nr != last.ns:  # acknowledged: the next part
                self._tx_pos += len(last.inf)
                return self._next_chunk()
            return self._resend(last)
        if not self._rx and last is not None and block.nr == last.ns:
            return self._resend(last)  # the terminal missed our answer
        # Nothing of ours is missing: say which I-block we expect (rule 7).
        return r_block(self._nr)

    def _on_s(self, block: Block) -> Block:
        if not block.response:
            if block.s_type == RESYNCH:
                self.stats.resynchs += 1
                self._resynch()
                return s_block(RESYNCH, response=True)
            if block.s_type == IFS:
                self.ifsd = block.inf[0]
                return s_block(IFS, response=True, inf=block.inf)
            if block.s_type == ABORT:
                self.stats.aborts += 1
                self._rx, self._rx_overflow = bytearray(), False
                self._tx = None
                self._s_queue.clear()
                self._s_sent = None
                self._deferred = None
                return s_block(ABORT, response=True)
            # S(WTX request) comes from the card only.
            self.stats.other_errors += 1
            return r_block(self._nr, OTHER_ERROR)
        sent = self._s_sent
        if sent is not None and block.s_type == sent.s_type and block.inf == sent.inf:
            if sent.s_type == IFS:
                self.ifsc = sent.inf[0]
            self._s_sent = None
            return self._next_queued()
        self.stats.other_errors += 1
        return r_block(self._nr, OTHER_ERROR)


class T1ByteStream:
    """A T=1 card on a byte stream: frames bytes into blocks for a `T1Card`.

    `feed` takes the terminal's bytes split anyhow and returns the card's
    answer once a block is complete (its LEN says how long it is).
    `timeout` is the character waiting time running out: a partial block is
    then handled as the invalid block it is. Right after the ATR, a PPS
    request (PPSS = FF) is answered before blocks start (§9).
    """

    def __init__(self, card: T1Card) -> None:
        self.card = card
        self._buf = bytearray()
        self._fresh = True
        self._pps: bytearray | None = None

    def power_on(self) -> bytes:
        atr = self.card.power_on()
        self._buf.clear()
        self._pps = None
        self._fresh = True
        return atr

    reset = power_on

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        n_edc = edc_length(self.card.edc)
        for b in data:
            if self._pps is not None:
                self._pps.append(b)
                if len(self._pps) >= 2 and len(self._pps) == pps_length(self._pps[1]):
                    out += pps_reply(bytes(self._pps), 1)
                    self._pps = None
                continue
            if self._fresh and not self._buf and b == PPSS:
                self._fresh = False
                self._pps = bytearray((b,))
                continue
            self._fresh = False
            self._buf.append(b)
            if len(self._buf) >= 3 and len(self._buf) == 3 + self._buf[2] + n_edc:
                block, self._buf = bytes(self._buf), bytearray()
                out += self.card.handle_block(block)
        return bytes(out)

    def timeout(self) -> bytes:
        """The line went quiet: a partial block is invalid and gets an R-block (rule 7)."""
        self._pps = None
        if not self._buf:
            return b""
        block, self._buf = bytes(self._buf), bytearray()
        return self.card.handle_block(block)
