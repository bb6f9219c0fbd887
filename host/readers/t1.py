"""A terminal-side T=1 driver: APDUs in I-block chains (ISO/IEC 7816-3 §11).

`T1Reader` drives a `card.transport.t1.T1Card` block by block — or, with
`stream=True`, byte by byte through a `T1ByteStream` — doing what a reader's
T=1 layer does: it reads IFSC and the EDC from the ATR, negotiates IFSD with
S(IFS request) at connect, chains long commands and acknowledges chained
responses, answers S(WTX request) and S(IFS request), and recovers from
errors by the rules of §11.6.3: an invalid block is answered with an R-block
(error 1 for EDC, 2 for anything else), an R-block from the card brings back
our last block, and after `retries` failures in a row the reader
resynchronises (S(RESYNCH), rule 6) and sends the APDU again.

T=1 carries extended APDUs as they are: any APDU goes through unchanged.

`fault` puts a noisy line between reader and card: a callable that sees
every block on the wire (`to_card` tells the direction) and returns it,
changed, or b"" for a block lost. `BitFlipper` is one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from card.transport import ApduRuntime
from card.transport.t1 import (
    ABORT,
    DEFAULT_IFS,
    IFS,
    MAX_IFS,
    OTHER_ERROR,
    RESYNCH,
    WTX,
    Block,
    BlockError,
    EdcKind,
    T1ByteStream,
    T1Card,
    i_block,
    parse_block,
    r_block,
    s_block,
    swap_nad,
    t1_parameters,
)
from host.readers.base import Reader, ReaderError

Fault = Callable[[bytes, bool], bytes]

_MAX_RESPONSE = 65536 + 2  # Ne max (extended) + SW1 SW2


class BitFlipper:
    """A noisy line: each block is hit with probability `rate`; a hit flips one random bit.

    With `drop` > 0, that share of the hits loses the whole block instead.
    A flipped bit is always caught by the LRC or the CRC, or by LEN.

    Args:
        rate: probability that a block is hit.
        seed: seed of the line's own random generator.
        drop: share of hits that lose the block.
    """

    def __init__(self, rate: float, seed: int = 0, drop: float = 0.0) -> None:
        self.rate = rate
        self.drop = drop
        self.rng = random.Random(seed)
        self.flipped = 0
        self.dropped = 0

    def __call__(self, block: bytes, to_card: bool) -> bytes:
        if not block or self.rng.random() >= self.rate:
            return block
        if self.rng.random() < self.drop:
            self.dropped += 1
            return b""
        self.flipped += 1
        bit = self.rng.randrange(len(block) * 8)
        out = bytearray(block)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)


class _Resynch(Exception):
    """Too many errors in a row: resynchronise and start the APDU again."""


class T1Reader(Reader):
    """A T=1 reader in front of a `T1Card` (or a runtime it wraps in a default one).

    Args:
        card: the card engine, or a runtime to wrap in a `T1Card`.
        ifsd: the reader's information field size, announced by S(IFS request)
            at connect (1..254).
        ifsc, edc: override what the ATR says (for a card whose ATR lies).
        nad: the NAD of our blocks (SAD in b3-b1, DAD in b7-b5).
        fault: the line between reader and card, see `BitFlipper`.
        stream: drive a `T1ByteStream` byte by byte instead of whole blocks.
        chunk: bytes handed to the stream per call, in stream mode.
        retries: failures in a row before resynchronising (rule 7.4).
        resynchs: resynchronisations per APDU before giving up (rule 6.4).
        name: the reader's name.
    """

    def __init__(
        self,
        card: T1Card | ApduRuntime,
        *,
        ifsd: int = MAX_IFS,
        ifsc: int | None = None,
        edc: EdcKind | None = None,
        nad: int = 0x00,
        fault: Fault | None = None,
        stream: bool = False,
        chunk: int = 1,
        retries: int = 3,
        resynchs: int = 3,
        max_wtx: int = 1000,
        name: str = "cardemu T=1",
    ) -> None:
        if not 1 <= ifsd <= MAX_IFS:
            raise ValueError(f"IFSD {ifsd} out of range 1..254")
        if nad & 0x88:
            raise ValueError(f"NAD {nad:02X}: b8 and b4 must be 0")
        self.engine = card if isinstance(card, T1Card) else T1Card(card)
        self._stream = T1ByteStream(self.engine) if stream else None
        self.ifsd = ifsd
        self._ifsc_override = ifsc
        self._edc_override: EdcKind | None = edc
        self.ifsc = DEFAULT_IFS
        self.edc: EdcKind = "lrc"
        self.nad = nad
        self.fault = fault
        self.chunk = max(1, chunk)
        self.retries = retries
        self.resynchs = resynchs
        self.max_wtx = max_wtx
        self.name = name
        self.atr = b""
        # Counters, for tests and traces.
        self.blocks_sent = 0
        self.errors = 0  # invalid blocks received and retransmissions asked for
        self.resynch_count = 0
        self.wtx_count = 0
        self._ns = 0
        self._nr = 0
        self._connected = False

    # -- connection --------------------------------------------------------------------

    def connect(self) -> bytes:
        """Power the card, read IFSC and EDC from the ATR, negotiate IFSD (§11.4.2)."""
        self.atr = (self._stream or self.engine).power_on()
        atr_ifsc, atr_edc = t1_parameters(self.atr)
        self.ifsc = self._ifsc_override or atr_ifsc
        self.edc = self._edc_override or atr_edc
        self._ns = self._nr = 0
        self._connected = True
        reply = self._s_exchange(s_block(IFS, inf=bytes((self.ifsd,))))
        if reply is None:
            self._resynch()
            if self._s_exchange(s_block(IFS, inf=bytes((self.ifsd,)))) is None:
                self._connected = False
                raise ReaderError(f"the card did not accept IFSD {self.ifsd}")
        return self.atr

    def reset(self) -> bytes:
        return self.connect()

    def disconnect(self) -> None:
        self._connected = False

    # -- APDUs ---------------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU (any length) in I-blocks and return the response APDU.

        Raises:
            ReaderError: the exchange failed even after resynchronising, or the card aborted.
        """
        if not self._connected:
            self.connect()
        for _ in range(self.resynchs + 1):
            try:
                return self._exchange(apdu)
            except _Resynch:
                self._resynch()
        self._connected = False
        raise ReaderError(f"T=1 exchange failed after {self.resynchs} resynchronisations")

    def _exchange(self, apdu: bytes) -> bytes:
        pos = 0
        response = bytearray()
        last = self._chunk(apdu, pos)
        pending: Block | None = last  # our I-block not yet acknowledged
        errors = 0
        wtx = 0
        while True:
            try:
                blk = self._send(last)
            except BlockError as e:
                errors = self._failure(errors)
                last = r_block(self._nr, e.code)  # rule 7
                continue
            if blk.kind == "S":
                if blk.response:  # we asked for nothing
                    errors = self._failure(errors)
                    last = r_block(self._nr, OTHER_ERROR)
                elif blk.s_type == WTX:  # rule 3
                    wtx += 1
                    self.wtx_count += 1
                    if wtx > self.max_wtx:
                        raise ReaderError(f"the card asked for more than {self.max_wtx} WTX")
                    last = s_block(WTX, response=True, inf=blk.inf)
                elif blk.s_type == IFS:  # rule 4: applies from our next block on
                    wtx += 1
                    self.ifsc = blk.inf[0]
                    last = s_block(IFS, response=True, inf=blk.inf)
                elif blk.s_type == ABORT:  # rule 9
                    self._send_only(s_block(ABORT, response=True))
                    raise ReaderError("the card aborted the exchange (S(ABORT request))")
                else:  # S(RESYNCH request) may come from the reader only
                    errors = self._failure(errors)
                    last = r_block(self._nr, OTHER_ERROR)
            elif blk.kind == "R":
                if pending is not None and blk.nr != pending.ns and pending.more:
                    # Our chained block is acknowledged: send the next one (rule 5).
                    pos += len(pending.inf)
                    self._ns ^= 1
                    pending = last = self._chunk(apdu, pos)
                    errors = 0
                elif pending is not None and blk.nr == pending.ns:
                    errors = self._failure(errors)
                    last = pending  # the card asks for it again (rule 7.2)
                else:
                    errors = self._failure(errors)  # our last block went astray: again
            else:  # I-block
                if pending is not None and pending.more:
                    errors = self._failure(errors)  # the card may not answer mid-chain
                    last = r_block(self._nr, OTHER_ERROR)
                    continue
                if blk.ns != self._nr:
                    errors = self._failure(errors)
                    last = r_block(self._nr, OTHER_ERROR)
                    continue
                if pending is not None:  # the card's I-block acknowledges ours
                    self._ns ^= 1
                    pending = None
                self._nr ^= 1
                response += blk.inf
                errors = 0
                if len(response) > _MAX_RESPONSE:
                    raise ReaderError(f"the card's response chain exceeds {_MAX_RESPONSE} bytes")
                if not blk.more:
                    return bytes(response)
                last = r_block(self._nr)  # rule 5: give me the next part

    def _chunk(self, apdu: bytes, pos: int) -> Block:
        part = apdu[pos : pos + self.ifsc]
        return i_block(self._ns, part, pos + len(part) < len(apdu), self.nad)

    def _failure(self, errors: int) -> int:
        self.errors += 1
        errors += 1
        if errors > self.retries:
            raise _Resynch
        return errors

    # -- S-block exchanges started by the reader ------------------------------------------

    def _s_exchange(self, request: Block) -> Block | None:
        """Send an S-request until its response comes (rule 7.3); None if it never does."""
        for _ in range(self.retries + 1):
            try:
                blk = self._send(request)
            except BlockError:
                self.errors += 1
                continue
            if blk.kind == "S" and blk.response and blk.s_type == request.s_type:
                if blk.inf == request.inf:
                    return blk
            self.errors += 1
        return None

    def _resynch(self) -> None:
        """S(RESYNCH request) until answered; sequence numbers start again at 0 (rule 6)."""
        self.resynch_count += 1
        if self._s_exchange(s_block(RESYNCH)) is None:
            self._connected = False
            raise ReaderError("the card does not answer S(RESYNCH request)")
        self._ns = self._nr = 0

    # -- the line ---------------------------------------------------------------------

    def _send(self, block: Block) -> Block:
        """Send a block, return the card's answer.

        Raises:
            BlockError: the answer is invalid or missing (waiting time out: other error).
        """
        raw = self._send_only(block)
        if not raw:
            raise BlockError(OTHER_ERROR, "no answer (block waiting time expired)")
        blk = parse_block(raw, self.edc)
        if blk.nad != swap_nad(self.nad):
            raise BlockError(OTHER_ERROR, f"NAD {blk.nad:02X} does not answer {self.nad:02X}")
        return blk

    def _send_only(self, block: Block) -> bytes:
        self.blocks_sent += 1
        raw = Block(self.nad, block.pcb, block.inf).encode(self.edc)
        if self.fault is not None:
            raw = self.fault(raw, True)
        if not raw:
            reply = b""  # lost on the way: the card saw nothing
        elif self._stream is not None:
            out = bytearray()
            for i in range(0, len(raw), self.chunk):
                out += self._stream.feed(raw[i : i + self.chunk])
            # The reader falls silent and waits: a partial block times out in the card.
            out += self._stream.timeout()
            reply = bytes(out)
        else:
            reply = self.engine.handle_block(raw)
        if self.fault is not None and reply:
            reply = self.fault(reply, False)
        return reply
