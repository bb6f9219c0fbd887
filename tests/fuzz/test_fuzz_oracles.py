"""Each oracle catches its deliberately buggy applet, and stays quiet on correct ones."""

from __future__ import annotations

import random

import pytest

from applets.sample import ECHO_AID, PURSE_AID
from host.fuzz import oracles as o
from host.fuzz.oracles import Checker, diff_snapshots, pin_counters, pin_secrets, traceback_key
from host.fuzz.session import Episode, Send, Tear
from host.fuzz.targets import preset_target, select_apdu
from tests.fuzz import buggy

SELECT = select_apdu(buggy.AID)
WRONG_PIN = bytes.fromhex("0020000002 1111")


def checker(cls: type, **kw: object) -> Checker:
    max_ms = kw.pop("max_ms", 1000.0)
    target = buggy.target_for(cls, max_ms=max_ms)  # type: ignore[arg-type]
    return Checker(Episode(target, 1), **kw)  # type: ignore[arg-type]


def send_all(ch: Checker, *apdus: bytes) -> list[o.Violation]:
    out = []
    for a in apdus:
        _, vs = ch.send(a)
        out.extend(vs)
    return out


def oracles_of(vs: list[o.Violation]) -> set[str]:
    return {v.oracle for v in vs}


# -- no-exception ---------------------------------------------------------------------------


def test_exception_in_applet_is_reported_with_its_traceback() -> None:
    ch = checker(buggy.CrashesWhenVerified)
    assert send_all(ch, SELECT, bytes.fromhex("8042130000")) == []  # PIN not verified: no bug
    vs = send_all(ch, buggy.VERIFY, bytes.fromhex("8042130000"))
    assert oracles_of(vs) == {o.NO_EXCEPTION}
    v = vs[0]
    assert "ZeroDivisionError" in v.message and "answered 6F00" in v.message
    assert "ZeroDivisionError" in v.key and "buggy.py" in v.key
    assert "Traceback" in v.detail
    assert v.step == 3


def test_exception_escaping_the_runtime_is_reported_and_the_card_recovers() -> None:
    ch = checker(buggy.EscapesRuntime)
    vs = send_all(ch, SELECT, bytes.fromhex("80130000"))
    assert oracles_of(vs) == {o.NO_EXCEPTION}
    assert "escaped the runtime" in vs[0].message and "SystemExit" in vs[0].message
    assert ch.ep.steps[-1].response is None
    step, vs = ch.send(SELECT)
    assert step.sw == 0x9000 and vs == []


# -- well-formed-response ---------------------------------------------------------------------


def test_invalid_status_word_is_reported() -> None:
    ch = checker(buggy.BadStatus)
    vs = send_all(ch, SELECT, bytes.fromhex("8012000000"))
    assert oracles_of(vs) == {o.WELL_FORMED}
    assert "1234" in vs[0].message


@pytest.mark.parametrize(
    "command, response, fragment",
    [
        ("8001000002", "010203" + "9000", "more than Ne = 2"),
        ("80010000", bytes(257).hex() + "9000", "more than Ne = 256"),
        ("8001000002", "0102" + "6A80", "with the error 6A80"),
        ("8001000002", "90", "no status word"),
    ],
)
def test_well_formed_rules(command: str, response: str, fragment: str) -> None:
    vs = Checker._well_formed(bytes.fromhex(command), bytes.fromhex(response), 0)
    assert any(fragment in v.message for v in vs), vs


def test_well_formed_accepts_warnings_with_data_and_exact_ne() -> None:
    assert Checker._well_formed(bytes.fromhex("8001000002"), bytes.fromhex("01026283"), 0) == []
    assert Checker._well_formed(bytes.fromhex("8001000002"), bytes.fromhex("01029000"), 0) == []
    assert Checker._well_formed(bytes.fromhex("80010000"), bytes.fromhex("6A82"), 0) == []


# -- error-keeps-state ------------------------------------------------------------------------


def test_error_that_changed_nvm_is_reported_with_the_change() -> None:
    ch = checker(buggy.DirtyError)
    vs = send_all(ch, SELECT, bytes.fromhex("8050000002AABB"))
    assert oracles_of(vs) == {o.ERROR_KEEPS_STATE}
    assert "6A80" in vs[0].message
    assert ":notes:" in vs[0].detail and "AABB" in vs[0].detail


def test_refused_commands_of_a_correct_applet_pass() -> None:
    ch = checker(buggy.Correct)
    vs = send_all(ch, SELECT, bytes.fromhex("8050000002AABB"), bytes.fromhex("80FF0000"), WRONG_PIN)
    assert vs == []
    assert ch.ep.steps[1].sw == 0x6D00
    assert ch.ep.steps[3].sw == 0x63C2  # a wrong PIN writes (63Cx may change NVM): no finding


# -- retry-counter ---------------------------------------------------------------------------


def test_counter_restored_without_verification_is_reported() -> None:
    ch = checker(buggy.RetryReset)
    assert send_all(ch, SELECT, WRONG_PIN) == []
    vs = send_all(ch, bytes.fromhex("8044000000"))
    assert oracles_of(vs) == {o.RETRY_COUNTER}
    assert "2 -> 3" in vs[0].message and "INS 44" in vs[0].message


def test_counter_restored_by_a_failing_status_is_reported() -> None:
    ch = checker(buggy.RetryOnFailure)
    assert send_all(ch, SELECT, WRONG_PIN) == []
    vs = send_all(ch, bytes.fromhex("0020000001 77"))
    assert oracles_of(vs) == {o.RETRY_COUNTER}
    assert "63C3" in vs[0].message


def test_successful_verification_may_restore_the_counter() -> None:
    ch = checker(buggy.Correct)
    assert send_all(ch, SELECT, WRONG_PIN, WRONG_PIN, buggy.VERIFY) == []
    assert pin_counters(ch.ep.card.nvm.snapshot())[(buggy.AID.hex(), "pin.pin")] == 3


# -- no-secret --------------------------------------------------------------------------------


def test_pin_in_a_response_is_reported() -> None:
    ch = checker(buggy.LeaksPin)
    vs = send_all(ch, SELECT, bytes.fromhex("80CA010100"))
    assert oracles_of(vs) == {o.NO_SECRET}
    assert "pin of" in vs[0].message and "offset 1" in vs[0].message
    assert buggy.PIN.hex().upper() not in vs[0].message  # the report names it, never shows it


def test_pin_the_host_sent_itself_is_not_a_leak() -> None:
    ch = checker(buggy.LeaksPin)
    assert send_all(ch, SELECT, buggy.VERIFY, bytes.fromhex("80CA010100")) == []


def test_a_pin_changed_outside_a_checked_send_is_looked_for() -> None:
    """The PIN list follows the card's NVM, not only the checker's own sends: a PIN a tear
    left changed (here: sent on the episode, past the checker) is the one looked for."""
    ch = checker(buggy.LeaksPinAndChangesIt)
    vs = send_all(ch, SELECT, bytes.fromhex("80CA010100"))  # the old PIN: listed, reported
    assert oracles_of(vs) == {o.NO_SECRET}
    new = bytes.fromhex("0C0FFEE0DECAF123")
    ch.ep.send(bytes.fromhex("8024000008") + new)
    step, vs = ch.send(bytes.fromhex("80CA010100"))
    assert step.response is not None and new in step.response
    # Not reported: the host chose the new PIN, so the confirmation (the episode replayed
    # with another initial PIN) gets the same answer; but it is the value looked for now,
    # and the old one no longer is.
    assert vs == []
    listed = [s.value for s in ch._secret_list(None)]
    assert new in listed and buggy.PIN not in listed


def test_declared_key_in_a_response_is_reported() -> None:
    ch = checker(buggy.LeaksKey)
    vs = send_all(ch, SELECT, bytes.fromhex("80CA010200"))
    assert oracles_of(vs) == {o.NO_SECRET}
    assert "key" in vs[0].message


def test_public_bytes_equal_to_a_pin_are_not_a_leak() -> None:
    # The demo purse's PIN is 31 32 33 34 ("1234"); the echo applet's GENERATE returns
    # 00 01 02 ... which holds those bytes. Changing the PIN leaves them there: no leak.
    ch = Checker(Episode(preset_target("demo"), 1))
    step, vs = ch.send(select_apdu(ECHO_AID))
    step, vs = ch.send(bytes.fromhex("8002004000"))
    assert step.sw == 0x9000 and b"1234" in step.response
    pins = [s.value for s in pin_secrets(ch.ep.card.nvm.snapshot())]
    assert b"1234" in pins
    assert vs == []


# -- response-time ---------------------------------------------------------------------------


def test_slow_answer_is_reported() -> None:
    ch = checker(buggy.Slow, max_ms=10.0)
    vs = send_all(ch, SELECT, bytes.fromhex("8060000000"))
    assert oracles_of(vs) == {o.RESPONSE_TIME}
    assert "bound 10 ms" in vs[0].message


# -- tear-atomicity ---------------------------------------------------------------------------


def test_tear_between_two_unprotected_writes_is_reported() -> None:
    ch = checker(buggy.TornPair)
    send_all(ch, SELECT)
    step, vs = ch.tear(bytes.fromhex("8070000000"), 1)
    assert isinstance(step.event, Tear) and step.response is None
    assert oracles_of(vs) == {o.TEAR_ATOMICITY}
    assert "write 2 of 2" in vs[0].message
    assert ":a:" in vs[0].detail and ":b:" in vs[0].detail


def test_tear_before_the_first_write_leaves_the_before_state() -> None:
    ch = checker(buggy.TornPair)
    send_all(ch, SELECT)
    step, vs = ch.tear(bytes.fromhex("8070000000"), 0)
    assert isinstance(step.event, Tear) and vs == []


@pytest.mark.parametrize("after", range(4))
def test_transactions_and_owner_pin_pass_at_every_tear(after: int) -> None:
    ch = checker(buggy.Correct)
    send_all(ch, SELECT, WRONG_PIN)
    for apdu in (bytes.fromhex("8071000000"), buggy.VERIFY, WRONG_PIN):
        send_all(ch, SELECT)
        _, vs = ch.tear(apdu, after)
        assert vs == [], (apdu.hex(), after, vs)


@pytest.mark.parametrize("after", range(5))
def test_purse_credit_passes_at_every_tear(after: int) -> None:
    ch = Checker(Episode(preset_target("demo"), 1))
    ch.send(select_apdu(PURSE_AID))
    _, vs = ch.tear(bytes.fromhex("8030000004 00000010"), after)
    assert vs == []


def test_command_without_that_many_writes_is_sent_whole() -> None:
    ch = checker(buggy.TornPair)
    send_all(ch, SELECT)
    step, vs = ch.tear(bytes.fromhex("8070000000"), 5)
    assert isinstance(step.event, Send) and step.sw == 0x9000 and vs == []


def test_random_tear_of_a_command_writing_nothing_is_a_plain_send_on_the_same_card() -> None:
    # No clone is built to count its writes: the command is sent armed to lose power at
    # its first write, and answers for itself.
    ch = checker(buggy.TornPair)
    send_all(ch, SELECT)
    card = ch.ep.card
    plain = checker(buggy.TornPair)
    send_all(plain, SELECT)
    for apdu in (bytes.fromhex("80FF000000"), bytes.fromhex("00A4040001 FF"), bytes.fromhex("80")):
        step, vs = ch.tear(apdu)
        want, want_vs = plain.send(apdu)
        assert isinstance(step.event, Send) and step.response == want.response
        assert vs == want_vs
    assert ch.ep.card is card
    assert [s.event for s in ch.ep.steps] == [s.event for s in plain.ep.steps]


@pytest.mark.parametrize("seed", range(6))
def test_random_tear_of_a_writing_command_tears_at_one_of_its_writes(seed: int) -> None:
    ch = checker(buggy.TornPair, rng=random.Random(seed))
    send_all(ch, SELECT, bytes.fromhex("80FF000000"))
    card = ch.ep.card
    step, vs = ch.tear(bytes.fromhex("8070000000"))
    # Cut at its first write to learn that it writes, the card was rebuilt by replay,
    # then torn at a random one of the two writes (the second one is the bug).
    assert isinstance(step.event, Tear) and step.response is None
    assert ch.ep.card is not card
    assert oracles_of(vs) <= {o.TEAR_ATOMICITY}
    expected = random.Random(seed).randrange(2)
    assert (vs != []) == (expected == 1)
    step, vs = ch.send(bytes.fromhex("80FF000000"))  # the rebuilt card goes on
    assert step.sw is not None and vs == []


# -- determinism ------------------------------------------------------------------------------


def test_randomness_outside_the_card_rng_is_reported() -> None:
    ch = checker(buggy.Nondeterministic)
    assert send_all(ch, SELECT, bytes.fromhex("8084000008")) == []
    vs = ch.replay_check()
    assert oracles_of(vs) == {o.DETERMINISM}
    assert vs[0].step == 1


def test_the_card_rng_replays() -> None:
    # GET CHALLENGE-style randomness through the card's RNG is reproducible.
    ch = Checker(Episode(preset_target("demo"), 7))
    send_all(ch, select_apdu(PURSE_AID), bytes.fromhex("8030000004 00000005"))
    assert ch.replay_check() == []


# -- the checker itself -----------------------------------------------------------------------


def test_unknown_oracle_is_refused() -> None:
    with pytest.raises(ValueError, match="no-such"):
        Checker(Episode(preset_target("demo"), 0), oracles={"no-such"})


def test_only_the_enabled_oracles_run() -> None:
    ch = checker(buggy.DirtyError, oracles={o.RESPONSE_TIME})
    assert send_all(ch, SELECT, bytes.fromhex("8050000002AABB")) == []


def test_reports_mask_pin_values() -> None:
    a = {"x": {"pin.p": (b"1234", 3), "v": b"\x01"}}
    b = {"x": {"pin.p": (b"1234", 2), "v": b"\x02"}}
    lines = diff_snapshots(a, b)
    assert "X:pin.p: (PIN, 3 tries) -> (PIN, 2 tries)" in lines
    assert "X:v: 01 -> 02" in lines
    assert "31323334" not in "".join(lines)


def test_traceback_key_names_the_raising_line() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/a/card/runtime.py", line 10, in process\n'
        '  File "/a/applets/x/applet.py", line 42, in bug\n'
        "ZeroDivisionError: division by zero\n"
    )
    assert traceback_key(tb) == "x/applet.py:42:bug:ZeroDivisionError"
