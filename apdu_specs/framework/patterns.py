"""Status-word patterns a spec declares: `SwPattern`, `sws("61xx 6A82")`.

ISO/IEC 7816-4 §5.6: SW1-SW2, with `xx` for any SW2 (61xx, 63Cx by its nibble).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SwPattern:
    """A status word or a range of them: `sw & mask == value` (63Cx: 63C0/FFF0)."""

    value: int
    mask: int = 0xFFFF

    def matches(self, sw: int) -> bool:
        return sw & self.mask == self.value

    def __str__(self) -> str:
        out = []
        for shift in (12, 8, 4, 0):
            nibble_mask = (self.mask >> shift) & 0xF
            out.append(f"{(self.value >> shift) & 0xF:X}" if nibble_mask else "x")
        return "".join(out)


def sws(text: str) -> tuple[SwPattern, ...]:
    """Status words from spec text: "9000 6282 63Cx 6A82" (x: any nibble)."""
    out = []
    for word in text.split():
        if len(word) != 4:
            raise ValueError(f"status word {word!r} is not four hex digits")
        value = mask = 0
        for ch in word:
            value <<= 4
            mask <<= 4
            if ch in "xX":
                continue
            value |= int(ch, 16)
            mask |= 0xF
        out.append(SwPattern(value, mask))
    return tuple(out)


#: Status words any command may get: response chaining (61xx, and 91xx, the
#: proactive command pending of ETSI TS 102 221 §10.2.1.1), wrong Le (6Cxx),
#: and the checking errors about the header or the card's state (ISO/IEC
#: 7816-4 §5.6, Tables 5 and 6).
ANY_COMMAND_SWS = sws("61xx 91xx 6Cxx 6700 6800 6881 6882 6883 6884 6B00 6D00 6E00 6F00")
