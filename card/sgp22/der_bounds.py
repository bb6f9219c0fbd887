"""Bounded DER decoding of untrusted bytes: the structural pre-check, the work budget, the loops.

asn1tools 0.169's DER decoder trusts its input in ways that let one message
hang a card or a server (asn1tools issue #180):

- `ArrayType.decode_content` (SEQUENCE OF / SET OF) loops while the element
  offset is short of the content's end. When an element does not match (an
  unexpected tag, an end-of-contents `00 00`), the element type returns its
  TAG_MISMATCH marker *at the same offset*; the DER codec's loop does not look
  at it, appends it and tries again, for ever, growing the list without bound.
  Reproduced with an RDN `31 00 00` (an empty SET OF, then a zero byte inside
  the Name), a verification list `A9 03 04 00 00`, and a profile element whose
  EF.ARR File claims more bytes than its records hold (the loop sits on the
  next sibling's tag).
- A definite length is only checked against the end of the whole input, never
  against the enclosing value's content, so a child may run past its parent;
  SEQUENCE and explicit tags then resume at the wrong offset.
- SEQUENCE, SET, SEQUENCE OF and explicit tags accept indefinite lengths,
  which DER forbids (X.690 §10.1).

Two layers keep decoding bounded, whatever the input:

1. `check_der` walks the TLV structure (no values) before asn1tools sees it:
   size, nesting depth and TLV count limits (`DecodeLimits`), definite lengths
   only (X.690 §10.1), every child inside its parent, no end-of-contents
   octets. Its top-level boundaries let a caller slice values without copying
   the rest of the input each time.
2. `harden` gives the compiled types of a module correct loops, per type
   instance (asn1tools itself is left alone): each element of a SEQUENCE OF /
   SET OF must match, consume at least one byte and end inside its parent; a
   SEQUENCE / SET must end inside its content; an explicit tag must hold
   exactly one value; indefinite lengths are refused. Each loop charges a
   work budget (`decode_budget`: steps and a monotonic deadline, held in a
   context variable so it is per thread / per task), and a decode that
   exhausts it raises `Asn1DecodeError`.

Memory follows from the limits: every decoded value is one TLV of the input,
so a decode holds at most `max_tlvs` Python values plus a copy of the input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asn1tools.codecs import ber, der

__all__ = [
    "Asn1Error",
    "Asn1DecodeError",
    "DecodeLimits",
    "DEFAULT_LIMITS",
    "check_der",
    "decode_budget",
    "harden",
    "walk_types",
]


class Asn1Error(ValueError):
    """A value that does not encode, or bytes that do not decode, under the module."""


class Asn1DecodeError(Asn1Error):
    """Bytes that are not a valid encoding of the type, or that cannot be decoded in bounds.

    The one error every decode of untrusted input raises: a card answers it
    with '6A80', an ES9+ server with its malformed-request status.
    """


@dataclass(frozen=True)
class DecodeLimits:
    """What one decode may take (see the module docstring).

    The defaults come from the largest real inputs: a profile package (the
    card's own ceiling is 1 MiB; operator profiles run 10-100 KB), an ES10 or
    ES9+ message (the ISD-R takes at most 64 KB; a BPP segment is ~1 KB) and
    X.509 certificates. Measured here: the TS.48 test package is 12,257 bytes,
    2,493 TLVs, depth 5; a whole BPP 12,928 bytes, 28 TLVs; an SGP.26
    certificate ~600 bytes, 75 TLVs, depth 5. Decoding 65,000 TLVs (a File of
    65,000 NULL choices) takes 0.3 s and 4.3 MB at peak.

    Attributes:
        max_size: bytes of input (1 MiB, the profile store's package ceiling).
        max_depth: nesting of constructed values (32; real data stays under 12).
        max_tlvs: data objects in the input (131,072: 50 times the TS.48 package).
        seconds: wall-clock time for the decode (5 s; real inputs take under 50 ms).
        steps: loop iterations of the hardened decoder (4 per TLV allowed).
    """

    max_size: int = 1 << 20
    max_depth: int = 32
    max_tlvs: int = 1 << 17
    seconds: float = 5.0
    steps: int = 4 << 17


DEFAULT_LIMITS = DecodeLimits()

#: X.690 §8.1.2.4: a tag number of more than 3 subsequent octets is far beyond any module here.
_MAX_TAG_BYTES = 4
#: Real OIDs are under 32 bytes (a UUID arc of X.667 needs 19); none of ours comes near.
MAX_OID_BYTES = 256
#: Long-form lengths of up to 4 octets (4 GiB), far beyond `max_size`.
_MAX_LENGTH_BYTES = 4


def check_der(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> list[tuple[int, int]]:
    """Walk the TLV structure of `data` (one or more values back to back) within `limits`.

    Iterative, so depth costs no Python stack; primitive contents are not looked at.

    Returns:
        The (start, end) offsets of each top-level value.

    Raises:
        Asn1DecodeError: over a limit, an indefinite length, a truncated tag or
            length, a value running past its parent, or end-of-contents octets.
    """
    n = len(data)
    if n > limits.max_size:
        raise Asn1DecodeError(f"{n} bytes: over the {limits.max_size}-byte limit")
    top: list[tuple[int, int]] = []
    stack: list[int] = []  # the ends of the constructed values we are inside
    end, p, count = n, 0, 0
    while True:
        while p == end and stack:
            end = stack.pop()
        if p == end:
            return top
        start = p
        first = data[p]
        p += 1
        if first & 0xDF == 0:
            # Universal 0 is reserved for end-of-contents (X.680 §8.6), which DER never uses.
            raise Asn1DecodeError(f"offset {start}: end-of-contents octets or tag 0")
        if first & 0x1F == 0x1F:
            while True:
                if p >= end:
                    raise Asn1DecodeError(f"offset {start}: truncated tag")
                b = data[p]
                p += 1
                if p - start > _MAX_TAG_BYTES:
                    raise Asn1DecodeError(f"offset {start}: tag longer than {_MAX_TAG_BYTES} bytes")
                if not b & 0x80:
                    break
        if p >= end:
            raise Asn1DecodeError(f"offset {start}: no length")
        b = data[p]
        p += 1
        if b == 0x80:
            raise Asn1DecodeError(f"offset {start}: indefinite length (X.690 §10.1)")
        if b & 0x80:
            k = b & 0x7F
            if k > _MAX_LENGTH_BYTES or p + k > end:
                raise Asn1DecodeError(f"offset {start}: bad long-form length")
            length = int.from_bytes(data[p : p + k], "big")
            p += k
        else:
            length = b
        if length > end - p:
            raise Asn1DecodeError(
                f"offset {start}: length {length} runs past its parent ({end - p} bytes left)"
            )
        count += 1
        if count > limits.max_tlvs:
            raise Asn1DecodeError(f"more than {limits.max_tlvs} data objects")
        if not stack:
            top.append((start, p + length))
        if first & 0x20:
            if len(stack) >= limits.max_depth:
                raise Asn1DecodeError(f"offset {start}: nested deeper than {limits.max_depth}")
            stack.append(end)
            end = p + length
        else:
            p += length


# -- the work budget ---------------------------------------------------------------------------


class _Budget:
    __slots__ = ("deadline", "outer", "steps")

    def __init__(self, deadline: float, steps: int, outer: _Budget | None) -> None:
        self.deadline = deadline
        self.steps = steps
        self.outer = outer


_BUDGET: ContextVar[_Budget | None] = ContextVar("cardemu_asn1_budget", default=None)


@contextmanager
def decode_budget(seconds: float, steps: int | None = None) -> Iterator[None]:
    """Bound the decoding done inside the block (e.g. one APDU, one HTTP request).

    Budgets nest: an inner one never outlives the outer one's deadline or steps.
    A decode that runs out raises `Asn1DecodeError` from inside asn1tools' loops.
    """
    outer = _BUDGET.get()
    deadline = time.monotonic() + seconds
    left = steps if steps is not None else 1 << 62
    if outer is not None:
        deadline = min(deadline, outer.deadline)
        left = min(left, outer.steps)
    budget = _Budget(deadline, left, outer)
    token = _BUDGET.set(budget)
    try:
        yield
    finally:
        _BUDGET.reset(token)
        if outer is not None:
            outer.steps -= left - budget.steps


@contextmanager
def unbudgeted() -> Iterator[None]:
    """Work inside the block is not the message's: its time is added back to every deadline.

    For one-off set-up that a decode may trigger (compiling the ASN.1 modules on
    first use): under load it can take seconds, which would otherwise be charged
    to the first message a process decodes and refuse it.
    """
    started = time.monotonic()
    try:
        yield
    finally:
        spent = time.monotonic() - started
        budget = _BUDGET.get()
        while budget is not None:
            budget.deadline += spent
            budget = budget.outer


def _charge() -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise Asn1DecodeError("decoding ran out of its step budget")
    if time.monotonic() > budget.deadline:
        raise Asn1DecodeError("decoding ran out of its time budget")


# -- the hardened loops ------------------------------------------------------------------------


def _label(t: Any) -> str:
    return str(getattr(t, "name", "") or getattr(t, "type_name", type(t).__name__))


def _definite(t: Any, length: int | None) -> int:
    if length is None:
        raise Asn1DecodeError(f"{_label(t)}: indefinite length (X.690 §10.1)")
    return length


def _flatten(items: Any) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if isinstance(x, list | tuple):
            out.extend(_flatten(x))
        else:
            out.append(x)
    return out


def _array_decoder(t: Any) -> Any:
    """SEQUENCE OF / SET OF: every element matches, consumes bytes and ends inside the content."""

    def decode_content(data: Any, offset: int, length: int | None) -> tuple[list[Any], int]:
        end = offset + _definite(t, length)
        out: list[Any] = []
        while offset < end:
            _charge()
            value, after = t.element_type.decode(data, offset)
            if value is ber.TAG_MISMATCH:
                raise Asn1DecodeError(
                    f"{_label(t)}: element {len(out)} at offset {offset} has an unexpected tag"
                )
            if after <= offset:
                raise Asn1DecodeError(f"{_label(t)}: element {len(out)} consumes no bytes")
            if after > end:
                raise Asn1DecodeError(f"{_label(t)}: element {len(out)} runs past its parent")
            out.append(value)
            offset = after
        return out, offset

    return decode_content


def _members_decoder(t: Any) -> Any:
    """SEQUENCE / SET: asn1tools' member matching, within the content and definite only.

    Bytes left after the known members are skipped as asn1tools does (later
    versions of a module add members); a member running past the end is an error.
    """

    def decode_content(data: Any, offset: int, length: int | None) -> tuple[dict[str, Any], int]:
        end = offset + _definite(t, length)
        _charge()
        values: dict[str, Any] = {}
        offset, _ = t.decode_members(t.root_members, data, values, offset, end)
        if t.additions:
            offset, _ = t.decode_members(
                _flatten(t.additions), data, values, offset, end, ignore_missing=True
            )
        if offset > end:
            raise Asn1DecodeError(f"{_label(t)}: a member runs past its parent")
        return values, end

    return decode_content


def _explicit_decoder(t: Any) -> Any:
    """An explicit tag holds exactly one value of its inner type (X.690 §8.14.3)."""

    def decode_content(data: Any, offset: int, length: int | None) -> tuple[Any, int]:
        end = offset + _definite(t, length)
        _charge()
        value, after = t.inner.decode(data, offset)
        if value is ber.TAG_MISMATCH:
            raise Asn1DecodeError(f"{_label(t)}: unexpected tag at offset {offset}")
        if after != end:
            raise Asn1DecodeError(f"{_label(t)}: the explicit tag does not hold exactly one value")
        return value, end

    return decode_content


def _oid_decoder(t: Any) -> Any:
    """OBJECT IDENTIFIER: at most `MAX_OID_BYTES` of content.

    asn1tools builds each subidentifier by shifting a Python int one byte at a
    time, which is quadratic in its length: 100 KB of one subidentifier took
    2.4 s here, 400 KB 49 s.
    """
    plain = t.decode_content

    def decode_content(data: Any, offset: int, length: int | None) -> tuple[Any, int]:
        if _definite(t, length) > MAX_OID_BYTES:
            raise Asn1DecodeError(f"{_label(t)}: an OBJECT IDENTIFIER over {MAX_OID_BYTES} bytes")
        return plain(data, offset, length)

    return decode_content


def _children(t: Any) -> Iterator[Any]:
    for v in vars(t).values():
        if isinstance(v, ber.Type):
            yield v
        elif isinstance(v, list | tuple):
            yield from (x for x in _flatten(v) if isinstance(x, ber.Type))
        elif isinstance(v, dict):
            yield from (x for x in v.values() if isinstance(x, ber.Type))


def walk_types(spec: Any) -> Iterator[Any]:
    """Every type instance of a compiled module, once each (members, elements, inner types)."""
    seen: set[int] = set()
    stack: list[Any] = [t.type for t in spec.types.values()]
    while stack:
        t = stack.pop()
        if id(t) in seen or not isinstance(t, ber.Type):
            continue
        seen.add(id(t))
        yield t
        stack.extend(_children(t))


def harden(spec: Any) -> None:
    """Give every SEQUENCE OF, SET OF, SEQUENCE, SET and explicit tag of `spec` bounded loops.

    Only the type instances inside this compiled module change (as instance
    attributes); asn1tools' classes are left alone.
    """
    for t in walk_types(spec):
        if isinstance(t, ber.ArrayType | der.ArrayType):
            t.decode_content = _array_decoder(t)
        elif isinstance(t, ber.MembersType):
            t.decode_content = _members_decoder(t)
        elif isinstance(t, ber.ExplicitTag):
            t.decode_content = _explicit_decoder(t)
        elif isinstance(t, ber.ObjectIdentifier):
            t.decode_content = _oid_decoder(t)
            continue
        else:
            continue
        t.indefinite_allowed = False
