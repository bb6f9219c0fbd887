"""OwnerPIN refusals and counters (Java Card 3.0.5 API, javacard.framework.OwnerPIN).

Every test here asserts a refusal or an exact counter value: a `check` that
answered True for a blocked or unset PIN, or a counter off by one, must fail a
test (the mutation-testing targets of `tests/mutation/`).
"""

from __future__ import annotations

import pytest

from card.framework import APDU, Applet, OwnerPIN
from card.framework.pin import PinField
from card.runtime import CardRuntime

AID = b"\xf0\x50\x49\x4e\x01"


def _card(try_limit: int = 3, max_length: int = 8) -> tuple[CardRuntime, Applet]:
    """A card with one applet holding two unset PINs, `a` and `b`.

    The class is made here, inside the test, so that `OwnerPIN.field` and
    `PinField.__init__` run while a test (and a mutant) is active.
    """

    class TwoPins(Applet):
        a = OwnerPIN.field(try_limit=try_limit, max_length=max_length)
        b = OwnerPIN.field(try_limit=try_limit, max_length=max_length)

        def process(self, apdu: APDU) -> bytes | None:
            return None

    rt = CardRuntime()
    applet = rt.install(TwoPins, AID, default=True)
    rt.power_on()
    return rt, applet


def test_field_defaults_are_three_tries_and_eight_bytes() -> None:
    field = OwnerPIN.field()
    assert (field.try_limit, field.max_length) == (3, 8)
    field = OwnerPIN.field(5, 6)
    assert (field.try_limit, field.max_length) == (5, 6)


def test_field_gives_each_instance_one_pin_object() -> None:
    _, applet = _card(try_limit=5, max_length=6)
    pin = applet.a
    assert isinstance(pin, OwnerPIN)
    assert applet.a is pin
    assert (pin.try_limit, pin.max_length) == (5, 6)
    assert isinstance(type(applet).__dict__["a"], PinField)


def test_field_cannot_be_reassigned() -> None:
    _, applet = _card()
    with pytest.raises(AttributeError, match=r"^an OwnerPIN field cannot be reassigned"):
        applet.a = b"1234"  # type: ignore[assignment]


@pytest.mark.parametrize(("try_limit", "max_length"), [(0, 8), (128, 8), (3, 0), (3, 128)])
def test_limits_out_of_range_refused(try_limit: int, max_length: int) -> None:
    _, applet = _card()
    with pytest.raises(ValueError) as exc:
        OwnerPIN(applet._ctx, "x", try_limit, max_length)
    assert str(exc.value) == "try_limit and max_length must be 1..127"


@pytest.mark.parametrize(("try_limit", "max_length"), [(1, 1), (127, 127), (1, 127), (127, 1)])
def test_limits_at_the_bounds_accepted(try_limit: int, max_length: int) -> None:
    _, applet = _card()
    pin = OwnerPIN(applet._ctx, "x", try_limit, max_length)
    assert (pin.try_limit, pin.max_length, pin.tries_remaining) == (
        try_limit,
        max_length,
        try_limit,
    )


def test_unset_pin_refuses_every_candidate_without_counting() -> None:
    _, applet = _card()
    pin = applet.a
    assert not pin.is_set
    assert pin.tries_remaining == 3
    for candidate in (b"", b"1234", b"\x00" * 8):
        assert pin.check(candidate) is False
        assert not pin.is_validated()
    assert pin.tries_remaining == 3
    assert not pin.blocked


def test_blocked_pin_refuses_the_right_value() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    assert pin.is_set
    for left in (2, 1, 0):
        assert pin.check(b"9999") is False
        assert pin.tries_remaining == left
    assert pin.blocked
    assert pin.check(b"1234") is False
    assert not pin.is_validated()
    assert pin.tries_remaining == 0


def test_last_try_still_accepts_the_right_value() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    pin.check(b"0000")
    pin.check(b"0000")
    assert pin.tries_remaining == 1
    assert pin.check(b"1234") is True
    assert pin.is_validated()
    assert pin.tries_remaining == 3


def test_wrong_value_of_the_same_length_or_a_prefix_refused() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    for candidate in (b"1235", b"123", b"12345", b""):
        assert pin.check(candidate) is False
        assert not pin.is_validated()
    assert pin.tries_remaining == 0


def test_failed_check_clears_the_validated_flag() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    assert pin.check(b"1234")
    assert pin.check(b"1111") is False
    assert not pin.is_validated()
    assert pin.tries_remaining == 2


def test_update_length_bounds() -> None:
    _, applet = _card(max_length=4)
    pin = applet.a
    for bad in (b"", b"12345"):
        with pytest.raises(ValueError) as exc:
            pin.update(bad)
        assert str(exc.value) == "PIN length must be 1..4"
        assert not pin.is_set
    pin.update(b"1")
    assert pin.check(b"1")
    pin.update(b"1234")
    assert pin.check(b"1234")


def test_update_resets_counter_and_clears_validation() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    assert pin.check(b"1234")
    pin.update(b"5678")
    assert not pin.is_validated()
    pin.check(b"0000")
    assert pin.tries_remaining == 2
    pin.update(b"1111")
    assert pin.tries_remaining == 3


def test_two_pins_of_one_applet_are_independent() -> None:
    _, applet = _card()
    applet.a.update(b"1111")
    assert not applet.b.is_set
    applet.b.update(b"2222")
    assert applet.a.check(b"1111")
    assert not applet.b.is_validated()
    assert applet.b.check(b"1111") is False
    assert applet.a.is_validated()
    assert (applet.a.tries_remaining, applet.b.tries_remaining) == (3, 2)


def test_reset_clears_validation_and_keeps_a_lowered_counter() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    assert pin.check(b"1234")
    pin.reset()
    assert not pin.is_validated()
    assert pin.tries_remaining == 3
    pin.check(b"0000")
    pin.reset()  # not validated: the counter stays where it is (JC OwnerPIN.reset)
    assert pin.tries_remaining == 2
    assert pin.check(b"1234")


def test_reset_and_unblock_restores_a_blocked_pin() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"1234")
    assert pin.check(b"1234")
    for _ in range(3):
        pin.check(b"0000")
    assert pin.blocked
    pin.reset_and_unblock()
    assert pin.tries_remaining == 3
    assert not pin.is_validated()
    assert pin.check(b"1234")  # the value survived
    pin.reset_and_unblock()
    assert not pin.is_validated()


def test_repr_shows_the_counter_never_the_value() -> None:
    _, applet = _card()
    pin = applet.a
    pin.update(b"4321")
    pin.check(b"0000")
    assert repr(pin) == "<OwnerPIN pin.a tries=2/3>"
