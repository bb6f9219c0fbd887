"""A stateful test of the lock's chip: any order of challenges, answers, replays and power losses.

The model: a try counter written down before every check and restored by an
unlock, one challenge outstanding at most (spent by any answer, gone at power
loss), lock-out at zero. The door opens only for the right key's answer to the
challenge outstanding.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from card import tlv
from host.errors import ApduError
from host.systems.doorlock.card import DoorLockCard
from tests.unit.doorlock_cards import install, issuer, lock_sim, phone_sim, session

LIMIT = 4
_ISS = issuer()
_LOCK = lock_sim(_ISS, try_limit=LIMIT)
_GOOD = phone_sim(_ISS)
_BAD = phone_sim(_ISS, door_key=bytes(16))


class LockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        install(_LOCK, tlv.build(0x82, bytes((LIMIT,))), load=False)  # the issuer resets it
        for rt in (_LOCK, _GOOD, _BAD):
            rt.power_off()
            rt.power_on()
        self.lock = session(_LOCK)
        self.good: DoorLockCard = session(_GOOD)
        self.bad: DoorLockCard = session(_BAD)
        self.tries = LIMIT
        self.challenge: bytes | None = None
        self.method = 1
        self.old_answer: bytes | None = None
        self.opened = 0

    def _spend(self) -> int:
        """What the chip must answer to a failed answer with a challenge outstanding."""
        self.challenge = None
        self.tries -= 1
        return 0x6983 if self.tries == 0 else 0x63C0 | self.tries

    @rule(method=st.sampled_from([1, 2]))
    def challenge_(self, method: int) -> None:
        try:
            self.challenge = self.lock.challenge(method)
            self.method = method
            assert self.tries > 0
        except ApduError as e:
            assert self.tries == 0 and e.sw == 0x6983
            # A refused challenge leaves any earlier one as it was.

    @precondition(lambda self: self.challenge is not None)
    @rule()
    def good_answer(self) -> None:
        assert self.challenge is not None
        answer = self.good.answer(self.method, self.challenge)
        decision = self.lock.collate(self.method, answer)
        self.challenge = None
        assert decision.unlock, decision
        self.tries = LIMIT
        self.opened += 1
        self.old_answer = answer

    @precondition(lambda self: self.challenge is not None)
    @rule()
    def wrong_key(self) -> None:
        assert self.challenge is not None
        answer = self.bad.answer(1, self.challenge)
        method = self.method
        expected = self._spend()
        assert self.lock.collate(method, answer).sw == (expected if method == 1 else 0x6700)

    @precondition(lambda self: self.challenge is not None)
    @rule(cut=st.integers(1, 20))
    def truncated(self, cut: int) -> None:
        assert self.challenge is not None
        answer = self.good.answer(self.method, self.challenge)
        method = self.method
        self._spend()
        decision = self.lock.collate(method, answer[:-cut])
        assert not decision.unlock and decision.sw == 0x6700

    @precondition(lambda self: self.old_answer is not None)
    @rule()
    def replay(self) -> None:
        assert self.old_answer is not None
        old = tlv.Tlv.from_bytes(self.old_answer)
        method = 2 if old.find(0x7F21) is not None else 1
        if self.challenge is None:
            assert self.lock.collate(method, self.old_answer).sw == 0x6985
            return
        same = method == self.method
        expected = self._spend()
        sw = self.lock.collate(method, self.old_answer).sw
        assert sw == expected if same else sw in (expected, 0x6700)

    @rule()
    def answer_without_challenge(self) -> None:
        if self.challenge is not None:
            return
        answer = tlv.build(0x7C, [(0x5F20, b"X"), (0x81, bytes(16)), (0x82, bytes(16))])
        assert self.lock.collate(1, answer).sw == 0x6985

    @rule()
    def power_loss(self) -> None:
        _LOCK.power_off()
        _LOCK.power_on()
        self.lock = session(_LOCK)
        self.challenge = None

    @invariant()
    def counter_matches(self) -> None:
        assert self.lock.status()["tries_left"] == self.tries


LockMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)
TestLockMachine = LockMachine.TestCase
