"""APDUs from a server to a card through the terminal that holds it, over the terminal's HTTP polls.

A server cannot call the terminal: the terminal calls the server. So a server
operation that talks to the card (an SM set-up, a protected command) runs in a
worker thread on a `CardPipe`, a reader whose `transmit` hands the command
APDU to the next poll of the terminal and waits for the one after, which
carries the card's response (the remote APDU pattern of GlobalPlatform's
Amendment B admin protocol: the card side posts responses, the server answers
with the next command).

    job = CardJob(lambda reader: SmReader(reader).authenticate(...))
    job.exchange(None)        # -> ("apdu", b"...")   (an HTTP handler, per poll)
    job.exchange(response)    # -> ("apdu", ...), then ("done", result) or ("error", message)

The terminal relays bytes it can neither read nor alter: the server stacks an
`SmReader` on the pipe. What it may know is which of the seed's steps an APDU
belongs to: the job names the step (`mark(reader, "template")`) before the
APDUs of it, and each poll's answer carries that name (`CardJob.step`), so the
terminal's record of the exchange is split the way the seed numbers it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Literal

from host.readers.base import Reader, ReaderError
from host.servers.web import Refused

__all__ = ["CardJob", "CardPipe", "JobError", "mark", "poll"]

Outcome = tuple[Literal["apdu", "done", "error"], Any]


class JobError(RuntimeError):
    """The job's failure, as the terminal may see it (one line, no secret)."""


class CardPipe(Reader):
    """The server's reader to a card behind a polling terminal."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.step = ""  # the seed step the next APDUs belong to (set by the job)
        self.outbox: queue.Queue[Outcome] = queue.Queue(maxsize=1)
        self.inbox: queue.Queue[bytes | None] = queue.Queue(maxsize=1)

    def transmit(self, apdu: bytes) -> bytes:
        self.outbox.put(("apdu", bytes(apdu)), timeout=self.timeout)
        try:
            resp = self.inbox.get(timeout=self.timeout)
        except queue.Empty:
            raise ReaderError("the terminal did not relay the card's response in time") from None
        if resp is None:
            raise ReaderError("the terminal gave up the exchange")
        return resp


def mark(reader: Reader, step: str) -> None:
    """Name the step the next APDUs through `reader` belong to (a no-op unless it is a pipe)."""
    if isinstance(reader, CardPipe):
        reader.step = step


class CardJob:
    """One server operation on the card, in its own thread, driven by the terminal's polls.

    Args:
        work: what to do with the reader; its return value is the job's result.
        pipe: the pipe (a new one by default).
    """

    def __init__(self, work: Callable[[Reader], Any], pipe: CardPipe | None = None) -> None:
        self.pipe = pipe or CardPipe()
        self._lock = threading.Lock()
        self.finished = False
        self.result: Any = None
        self._seq = 0
        self._last: Outcome | None = None
        self.step = ""  # the step of the APDU last handed out
        self._last_step = ""
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[Reader], Any]) -> None:
        try:
            outcome: Outcome = ("done", work(self.pipe))
        except JobError as e:
            outcome = ("error", str(e))
        except Exception as e:  # the terminal learns the job failed, not why in detail
            outcome = ("error", f"{type(e).__name__}: {e}")
        self.pipe.outbox.put(outcome)

    def exchange(self, response: bytes | None, seq: int | None = None) -> Outcome:
        """Hand over the card's response (None on the first poll); the next thing to do.

        Args:
            response: the card's answer to the last APDU handed out.
            seq: the poll's number (1, 2, ...): a poll that arrives twice gets the
                first answer again and feeds nothing twice to the job.

        Raises:
            JobError: the job is over, a poll out of sequence, or the pipe timed out.
        """
        with self._lock:
            if seq is not None:
                if seq == self._seq and self._last is not None:
                    self.step = self._last_step
                    return self._last
                if seq != self._seq + 1:
                    raise JobError(f"poll {seq} out of sequence (after {self._seq})")
            outcome = self._exchange(response)
            # The job waits for this APDU's response: the pipe's step is still this APDU's.
            self.step = self.pipe.step if outcome[0] == "apdu" else ""
            if seq is not None:
                self._seq, self._last, self._last_step = seq, outcome, self.step
            return outcome

    def _exchange(self, response: bytes | None) -> Outcome:
        if self.finished:
            raise JobError("this card exchange is over")
        if response is not None:
            try:
                self.pipe.inbox.put_nowait(response)
            except queue.Full:
                raise JobError("a response the job did not ask for") from None
        try:
            kind, value = self.pipe.outbox.get(timeout=self.pipe.timeout)
        except queue.Empty:
            raise JobError("the server's card operation did not answer in time") from None
        if kind != "apdu":
            self.finished = True
            self.result = value
        return kind, value

    def abandon(self) -> None:
        """The terminal went away: let the job's `transmit` fail."""
        try:
            self.pipe.inbox.put_nowait(None)
        except queue.Full:
            pass


def poll(job: CardJob, response: bytes | None, seq: int | None = None) -> dict[str, Any]:
    """One poll of the terminal, as a server answers it: the next APDU (hex) or the end.

    Raises:
        Refused: 409, the poll does not fit the job (`CardJob.exchange`'s `JobError`).
    """
    try:
        kind, value = job.exchange(response, seq)
    except JobError as e:
        raise Refused(409, str(e)) from None
    if kind == "apdu":
        return {"apdu": value.hex().upper(), "step": job.step}
    if kind == "done":
        return {"done": True, "result": value}
    return {"done": True, "error": value}
