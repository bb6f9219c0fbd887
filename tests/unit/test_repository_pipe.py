"""CardJob / CardPipe: a server's card exchange driven by the terminal's polls."""

from __future__ import annotations

import pytest

from host.readers.base import Reader, ReaderError
from host.systems.repository.pipe import CardJob, CardPipe, JobError, mark


def test_apdus_out_responses_in_then_the_result() -> None:
    def work(reader: Reader) -> list[bytes]:
        return [reader.transmit(b"\x00\x84\x00\x00\x08"), reader.transmit(b"\x00\xca\x5f\x50\x00")]

    job = CardJob(work)
    assert job.exchange(None) == ("apdu", b"\x00\x84\x00\x00\x08")
    assert job.exchange(b"\x01\x90\x00") == ("apdu", b"\x00\xca\x5f\x50\x00")
    assert job.exchange(b"\x02\x90\x00") == ("done", [b"\x01\x90\x00", b"\x02\x90\x00"])
    assert job.finished
    with pytest.raises(JobError):
        job.exchange(None)


def test_a_failing_job_reports_its_error_once() -> None:
    def work(reader: Reader) -> None:
        reader.transmit(b"\x00\xa4\x04\x00")
        raise JobError("the fingerprint does not match")

    job = CardJob(work)
    assert job.exchange(None)[0] == "apdu"
    assert job.exchange(b"\x90\x00") == ("error", "the fingerprint does not match")


def test_an_abandoned_job_fails_its_transmit() -> None:
    seen: list[str] = []

    def work(reader: Reader) -> None:
        try:
            reader.transmit(b"\x00\x84\x00\x00\x08")
        except ReaderError as e:
            seen.append(str(e))
            raise

    job = CardJob(work)
    assert job.exchange(None)[0] == "apdu"
    job.abandon()
    job._thread.join(5)
    assert seen == ["the terminal gave up the exchange"]


def test_a_silent_terminal_times_the_job_out() -> None:
    job = CardJob(lambda reader: reader.transmit(b"\x00\x84\x00\x00\x08"), CardPipe(timeout=0.2))
    assert job.exchange(None)[0] == "apdu"
    job._thread.join(5)
    kind, message = job.exchange(None)
    assert kind == "error" and "in time" in message


def test_numbered_polls_a_duplicate_is_answered_again_not_fed_twice() -> None:
    fed: list[bytes] = []

    def work(reader: Reader) -> int:
        for _ in range(2):
            fed.append(reader.transmit(b"\x00\x84\x00\x00\x08"))
        return len(fed)

    job = CardJob(work)
    first = job.exchange(None, 1)
    assert job.exchange(None, 1) == first  # the first poll again
    second = job.exchange(b"\x01\x90\x00", 2)
    assert job.exchange(b"\x01\x90\x00", 2) == second  # its duplicate feeds nothing
    with pytest.raises(JobError, match="out of sequence"):
        job.exchange(b"\x02\x90\x00", 4)
    assert job.exchange(b"\x02\x90\x00", 3) == ("done", 2)
    assert job.exchange(b"\x02\x90\x00", 3) == ("done", 2)  # the last answer, again
    assert fed == [b"\x01\x90\x00", b"\x02\x90\x00"]


def test_each_apdu_carries_the_step_the_job_named() -> None:
    def work(reader: Reader) -> None:
        mark(reader, "one")
        reader.transmit(b"\x00\x84\x00\x00\x08")
        reader.transmit(b"\x00\x84\x00\x00\x08")
        mark(reader, "two")
        reader.transmit(b"\x00\xca\x5f\x50\x00")

    job = CardJob(work)
    steps = []
    for seq, resp in enumerate([None, b"\x90\x00", b"\x90\x00"], 1):
        assert job.exchange(resp, seq)[0] == "apdu"
        steps.append(job.step)
    assert steps == ["one", "one", "two"]
    assert job.exchange(b"\x90\x00", 3)[0] == "apdu" and job.step == "two"  # a duplicate poll
    assert job.exchange(b"\x90\x00", 4) == ("done", None) and job.step == ""


def test_mark_names_only_a_pipe() -> None:
    class Other(Reader):  # a reader that is not a pipe
        def transmit(self, apdu: bytes) -> bytes:
            return b"\x90\x00"

    other = Other()
    mark(other, "x")
    assert not hasattr(other, "step")
    pipe = CardPipe()
    mark(pipe, "x")
    assert pipe.step == "x"
