"""No private key ever leaves the keypair applet: no response, no trace line, no log record.

The oracle is the fuzzer's own (`host.fuzz.targets.keypair_secrets`): every private part
the applet holds (EC scalars; RSA primes and the derived d, dP, dQ, qInv), whole and in
16-byte windows every 8 bytes. It is checked after every command of scripted sequences
and of a short stateful hypothesis run, against the response, the text trace (hex of
every exchange, decoded by apdu_specs) and every log record down to TRAFFIC.
"""

from __future__ import annotations

import hashlib
import io
import logging

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from applets.keypair import KEYPAIR_AID, KeyPairApplet
from card.runtime import CardRuntime
from host.fuzz.targets import keypair_secrets
from host.readers.inprocess import InProcessReader
from host.trace import TracingReader

PIN = b"123456"


class Watched:
    """A card behind a tracing reader, with every response, trace line and log record kept."""

    def __init__(self, seed: int, rsa: bool = False) -> None:
        self.card = CardRuntime(rng_seed=seed)
        self.card.install(KeyPairApplet, KEYPAIR_AID, default=True)
        self.card.power_on()
        self.trace = io.StringIO()
        self.reader = TracingReader(InProcessReader(self.card), self.trace, colour=False)
        self.responses: list[bytes] = []
        self.records: list[str] = []

    def send(self, apdu: bytes) -> bytes:
        resp = self.reader.transmit(apdu)
        self.responses.append(resp)
        return resp

    def secrets(self) -> list[bytes]:
        return [s.value for s in keypair_secrets(self.card, KEYPAIR_AID)]

    def check(self) -> None:
        secrets = self.secrets()
        text = self.trace.getvalue().upper() + "\n".join(self.records).upper()
        for value in secrets:
            assert not any(value in r for r in self.responses), "a private part in a response"
            assert value.hex().upper() not in text, "a private part in a trace or log"


class _Keep(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=1)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@pytest.fixture
def logs():  # type: ignore[no-untyped-def]
    sink: list[str] = []
    handler = _Keep(sink)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(1)  # TRAFFIC and below
    yield sink
    root.removeHandler(handler)
    root.setLevel(old)


def _script(w: Watched, refs_algs: list[tuple[int, int]]) -> None:
    w.send(b"\x00\x20\x00\x81\x06" + PIN)
    for ref, alg in refs_algs:
        w.send(bytes((0, 0x47, 0, ref, 5, 0xAC, 3, 0x80, 1, alg, 0)))
        w.send(bytes((0, 0x47, 0x81, ref, 0)))
        w.send(bytes((0, 0x22, 0x41, 0xB6, 3, 0x84, 1, ref)))
        w.send(b"\x00\x2a\x9e\x9a\x20" + hashlib.sha256(bytes([ref])).digest() + b"\x00")
        w.send(bytes((0, 0x22, 0x41, 0xB8, 3, 0x84, 1, ref)))
        w.send(b"\x00\x2a\x80\x86\x05\x00\x01\x02\x03\x04\x00")
    # Every INS with a few P1-P2 and data shapes.
    for ins in range(0, 256, 1):
        if ins in (0x70, 0xA4):
            continue
        for p1p2 in (b"\x00\x00", b"\x00\x01", b"\x81\x01", b"\x9e\x9a", b"\x3f\xff"):
            w.send(bytes((0, ins)) + p1p2 + b"\x00")
            w.send(bytes((0, ins)) + p1p2 + b"\x03\x84\x01\x01\x00")


def test_scripted_sequences_leak_nothing(logs: list[str]) -> None:
    w = Watched(21)
    w.records = logs
    _script(w, [(0x01, 0x11), (0x02, 0x14), (0x03, 0xB1), (0x04, 0xB2)])
    assert len(w.secrets()) >= 4 * 3
    assert w.trace.getvalue().count(">>") == len(w.responses)  # every exchange traced
    assert w.card.exceptions == 0
    w.check()


def test_an_rsa_key_leaks_nothing(logs: list[str]) -> None:
    w = Watched(22)
    w.records = logs
    _script(w, [(0x05, 0x07)])
    assert any(len(v) == 128 for v in w.secrets())  # the RSA-2048 primes are watched
    w.check()


def test_the_oracle_would_see_a_leak() -> None:
    """The check can fail: a response carrying a window of a private part is caught."""
    w = Watched(23)
    _script(w, [(0x01, 0x11)])
    leaked = w.secrets()[0]
    w.responses.append(b"\x01\x02" + leaked[3:27] + b"\x90\x00")
    with pytest.raises(AssertionError):
        w.check()


ALGS = st.sampled_from([0x11, 0x14, 0xB1, 0xB2])
REFS = st.integers(1, 3)


class NoLeakMachine(RuleBasedStateMachine):
    """Random sequences of the applet's commands (and random bytes) against the oracle."""

    @initialize(seed=st.integers(0, 2**16))
    def start(self, seed: int) -> None:
        self.w = Watched(seed)

    @rule(right=st.booleans())
    def verify(self, right: bool) -> None:
        pin = PIN if right else b"000000"
        self.w.send(b"\x00\x20\x00\x81\x06" + pin)

    @rule(ref=REFS, alg=ALGS)
    def generate(self, ref: int, alg: int) -> None:
        self.w.send(bytes((0, 0x47, 0, ref, 5, 0xAC, 3, 0x80, 1, alg, 0)))

    @rule(ref=REFS, crt=st.sampled_from([0xB6, 0xB8, 0xA6]))
    def mse(self, ref: int, crt: int) -> None:
        self.w.send(bytes((0, 0x22, 0x41, crt, 3, 0x84, 1, ref)))

    @rule(digest=st.sampled_from([32, 48, 64, 20]), fill=st.integers(0, 255))
    def sign(self, digest: int, fill: int) -> None:
        self.w.send(b"\x00\x2a\x9e\x9a" + bytes((digest,)) + bytes([fill]) * digest + b"\x00")

    @rule(ref=REFS, point=st.binary(min_size=1, max_size=97))
    def agree(self, ref: int, point: bytes) -> None:
        data = b"\x7c" + bytes((len(point) + 2, 0x85, len(point))) + point
        self.w.send(bytes((0, 0x86, 0, ref, len(data))) + data + b"\x00")

    @rule(ref=REFS)
    def read(self, ref: int) -> None:
        self.w.send(bytes((0, 0x47, 0x81, ref, 0)))

    @rule(
        ins=st.sampled_from([0x20, 0x22, 0x2A, 0x47, 0x84, 0x86, 0xDB, 0xCA, 0xB0]),
        p1=st.integers(0, 255),
        p2=st.integers(0, 255),
        data=st.binary(max_size=40),
        cla=st.sampled_from([0x00, 0x0C, 0x01]),
    )
    def random_command(self, ins: int, p1: int, p2: int, data: bytes, cla: int) -> None:
        apdu = bytes((cla, ins, p1, p2))
        if data:
            apdu += bytes((len(data),)) + data
        self.w.send(apdu + b"\x00")

    @rule()
    def reset(self) -> None:
        self.w.card.reset()

    @invariant()
    def nothing_leaked(self) -> None:
        if hasattr(self, "w"):
            self.w.check()
            assert self.w.card.exceptions == 0


NoLeakMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestNoLeak = NoLeakMachine.TestCase
