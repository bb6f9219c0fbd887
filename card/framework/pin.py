"""OwnerPIN (Java Card's javacard.framework.OwnerPIN), tear-safe and constant-time.

The PIN's value, try limit and remaining tries are one persistent tuple, so each
change is a single atomic write. `check` writes the decremented counter *before*
comparing, so cutting power during the comparison cannot buy a free guess; a
correct PIN then restores the counter with a second write. The validated flag is
volatile and per logical channel: it is lost on reset and on deselect.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from card.framework.applet import Declared

if TYPE_CHECKING:
    from card.framework.applet import Applet
    from card.framework.system import Context


class OwnerPIN:
    """A PIN owned by one applet."""

    __slots__ = ("_ctx", "_key", "_vkey", "try_limit", "max_length")

    def __init__(self, ctx: Context, name: str, try_limit: int, max_length: int) -> None:
        if not 1 <= try_limit <= 127 or not 1 <= max_length <= 127:
            raise ValueError("try_limit and max_length must be 1..127")
        self._ctx = ctx
        self._key = f"pin.{name}"
        self._vkey = f"pin.{name}.validated"
        self.try_limit = try_limit
        self.max_length = max_length

    @staticmethod
    def field(try_limit: int = 3, max_length: int = 8) -> PinField:
        """Declare a PIN as a class attribute of an applet."""
        return PinField(try_limit, max_length)

    # The stored tuple: (value or None, tries remaining).
    def _state(self) -> tuple[bytes | None, int]:
        return self._ctx.seg.get(self._key, (None, self.try_limit))

    def _write(self, value: bytes | None, tries: int) -> None:
        self._ctx.nvm.write(self._ctx.owner, self._key, (value, tries))

    def _channel_state(self) -> dict[str, Any]:
        return self._ctx.system.channel_state

    # -- Java Card API -------------------------------------------------------

    def update(self, pin: bytes) -> None:
        """Set a new PIN value and reset the try counter."""
        self._ctx.check_access()
        if not 0 < len(pin) <= self.max_length:
            raise ValueError(f"PIN length must be 1..{self.max_length}")
        self._write(bytes(pin), self.try_limit)
        self._channel_state().pop(self._vkey, None)

    def check(self, candidate: bytes) -> bool:
        """Compare a candidate; decrements first, restores on success."""
        ctx = self._ctx
        ctx.check_access()
        value, tries = self._state()
        chst = self._channel_state()
        chst.pop(self._vkey, None)
        if tries <= 0 or value is None:
            return False
        self._write(value, tries - 1)
        # Constant time over the stored value; a length mismatch still compares.
        ok = hmac.compare_digest(value, bytes(candidate)) and len(candidate) == len(value)
        if ok:
            self._write(value, self.try_limit)
            chst[self._vkey] = True
        return ok

    def is_validated(self) -> bool:
        self._ctx.check_access()
        return bool(self._ctx.channel_states.get(self._ctx.runtime._channel, {}).get(self._vkey))

    @property
    def tries_remaining(self) -> int:
        self._ctx.check_access()
        return self._state()[1]

    @property
    def blocked(self) -> bool:
        return self.tries_remaining == 0

    @property
    def is_set(self) -> bool:
        self._ctx.check_access()
        return self._state()[0] is not None

    def reset(self) -> None:
        """Clear the validated flag; if it was set, also restore the try counter (JC)."""
        if self.is_validated():
            value, _ = self._state()
            self._write(value, self.try_limit)
        self._channel_state().pop(self._vkey, None)

    def reset_and_unblock(self) -> None:
        self._ctx.check_access()
        value, _ = self._state()
        self._write(value, self.try_limit)
        self._channel_state().pop(self._vkey, None)

    def __repr__(self) -> str:
        return (
            f"<OwnerPIN {self._key} tries={self._state()[1]}/{self.try_limit}>"  # never the value
        )


class PinField(Declared):
    """Class-level declaration of an OwnerPIN: each applet instance gets its own."""

    __slots__ = ("try_limit", "max_length")

    def __init__(self, try_limit: int, max_length: int) -> None:
        self.try_limit = try_limit
        self.max_length = max_length
        self.name = ""

    def __get__(self, obj: Applet | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        ctx = obj._ctx
        pin = ctx.objects.get(self.name)
        if pin is None:
            pin = ctx.objects[self.name] = OwnerPIN(ctx, self.name, self.try_limit, self.max_length)
        return pin

    def __set__(self, obj: Applet, value: Any) -> None:
        raise AttributeError("an OwnerPIN field cannot be reassigned; use .update(pin)")
