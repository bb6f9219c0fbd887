"""Access conditions: ISO/IEC 7816-4 §7.4.3 (security attributes) and ETSI TS 102 221 §9.2.

A file's security attributes come in three forms (card.fs.fcp): compact '8C'
(an access mode byte and security condition bytes), expanded 'AB' (access mode
data objects each followed by security condition data objects) and referenced
'8B' (a record of EF.ARR, whose content is expanded-format rules). All three
are reduced here to one evaluated form, `AccessRules`: for each operation, a
disjunction of alternatives, each alternative the set of key references that
must all be verified. `()` is "never", `(frozenset(),)` is "always".

Key references are those of TS 102 221 §9.5.1: 01-08 application PINs, 11
universal PIN, 81-88 second application PINs (PIN2), 0A-0E ADM1-ADM5, 8A-8E
ADM6-ADM10. The file system asks a `SecurityEnvironment` (one per logical
channel, supplied by the applet) whether a key reference is verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from itertools import product
from typing import Protocol

from card import tlv
from card.fs.fcp import Compact, Expanded

# -- Key references (TS 102 221 §9.5.1, Table 9.3) ------------------------------------

PIN1 = 0x01
UNIVERSAL_PIN = 0x11
PIN2 = 0x81
ADM1 = 0x0A
ADM2 = 0x0B
ADM3 = 0x0C
ADM4 = 0x0D
ADM5 = 0x0E

#: The usage qualifier TS 102 221 puts in every CRT of its access rules:
#: user authentication, knowledge based (ISO 7816-4 Table 54).
USAGE_USER_AUTH = 0x08

#: INS of INCREASE, whose access rule TS 102 221 §9.2.7 gives as AM DO '84' '32'.
INS_INCREASE = 0x32


class Op(IntEnum):
    """Bits of the access mode byte (ISO 7816-4 Tables 16 and 17).

    b7-b4 mean the same for DFs and EFs; b3-b1 differ, hence the aliases.
    """

    READ = 0x01  # EF: READ BINARY / READ RECORD / SEARCH
    UPDATE = 0x02  # EF: UPDATE BINARY / UPDATE RECORD / ERASE
    WRITE = 0x04  # EF: WRITE BINARY / WRITE RECORD / APPEND RECORD
    DEACTIVATE = 0x08
    ACTIVATE = 0x10
    TERMINATE = 0x20
    DELETE = 0x40  # DELETE FILE of the file itself
    DELETE_CHILD = 0x01  # DF
    CREATE_EF = 0x02  # DF
    CREATE_DF = 0x04  # DF


_OP_NAMES: dict[str, int] = {
    "read": Op.READ,
    "update": Op.UPDATE,
    "write": Op.WRITE,
    "deactivate": Op.DEACTIVATE,
    "activate": Op.ACTIVATE,
    "terminate": Op.TERMINATE,
    "delete": Op.DELETE,
    "delete_child": Op.DELETE_CHILD,
    "create_ef": Op.CREATE_EF,
    "create_df": Op.CREATE_DF,
}


class SecurityEnvironment(Protocol):
    """What the file system asks the applet, for the logical channel of the command."""

    def is_verified(self, key_ref: int) -> bool:
        """True when the PIN/key with this reference is verified (or disabled) on this channel."""
        ...


@dataclass(frozen=True)
class StaticEnvironment:
    """A fixed security environment: a set of verified key references.

    For tests and for card-internal access. `se` is the security environment
    number that selects among the (SE, record) pairs of an '8B' reference, and
    `disabled` lists the PINs a PIN status template shows as disabled.
    """

    verified: frozenset[int] = frozenset()
    se: int = 0
    disabled: frozenset[int] = frozenset()

    def is_verified(self, key_ref: int) -> bool:
        return key_ref in self.verified

    def pin_enabled(self, key_ref: int) -> bool:
        return key_ref not in self.disabled


# -- Conditions, as given to the builders -----------------------------------------------

Alternatives = tuple[frozenset[int], ...]

NEVER: Alternatives = ()
ALWAYS: Alternatives = (frozenset(),)


@dataclass(frozen=True)
class Condition:
    """A security condition: DNF alternatives of key references to verify."""

    alternatives: Alternatives

    def __or__(self, other: ConditionLike) -> Condition:
        o = as_condition(other)
        return Condition(_dedupe(self.alternatives + o.alternatives))

    def __and__(self, other: ConditionLike) -> Condition:
        o = as_condition(other)
        return Condition(_and(self.alternatives, o.alternatives))


ALW = Condition(ALWAYS)
NEV = Condition(NEVER)

ConditionLike = Condition | int


def key(ref: int) -> Condition:
    """The condition "key reference `ref` verified"."""
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"key reference {ref} is not a byte")
    return Condition((frozenset((ref,)),))


def any_of(*conds: ConditionLike) -> Condition:
    """At least one of the conditions (an OR template 'A0')."""
    out: Alternatives = ()
    for c in conds:
        out += as_condition(c).alternatives
    return Condition(_dedupe(out))


def all_of(*conds: ConditionLike) -> Condition:
    """All of the conditions (an AND template 'AF')."""
    out = ALWAYS
    for c in conds:
        out = _and(out, as_condition(c).alternatives)
    return Condition(out)


def as_condition(c: ConditionLike) -> Condition:
    if isinstance(c, Condition):
        return c
    if isinstance(c, int) and not isinstance(c, bool):
        return key(c)
    raise TypeError(f"a condition is ALW, NEV, a key reference or any_of/all_of, not {c!r}")


def _dedupe(alts: Iterable[frozenset[int]]) -> Alternatives:
    seen: list[frozenset[int]] = []
    for a in alts:
        if a not in seen:
            seen.append(a)
    # An alternative that needs nothing makes the others irrelevant.
    if frozenset() in seen:
        return ALWAYS
    return tuple(seen)


def _and(a: Alternatives, b: Alternatives) -> Alternatives:
    return _dedupe(x | y for x, y in product(a, b))


# -- The evaluated rules ------------------------------------------------------------------


class AccessRules:
    """Access rules of one file, per access-mode bit and per instruction."""

    __slots__ = ("by_bit", "by_ins")

    def __init__(
        self,
        by_bit: dict[int, Alternatives] | None = None,
        by_ins: dict[int, Alternatives] | None = None,
    ) -> None:
        self.by_bit = by_bit or {}
        self.by_ins = by_ins or {}

    def alternatives(self, op: int, ins: int | None = None) -> Alternatives:
        """The rule for an operation: a command-specific rule (AM DO 81-8F) for
        `ins` wins over the access-mode-byte rule for bit `op`; none is NEVER."""
        if ins is not None:
            r = self.by_ins.get(ins)
            if r is not None:
                return r
        return self.by_bit.get(op, NEVER)

    def allows(self, op: int, is_verified: Callable[[int], bool], ins: int | None = None) -> bool:
        for alt in self.alternatives(op, ins):
            for k in alt:  # a loop, not all(genexpr): this runs on every guarded command
                if not is_verified(k):
                    break
            else:
                return True
        return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccessRules):
            return NotImplemented
        return _norm(self.by_bit) == _norm(other.by_bit) and _norm(self.by_ins) == _norm(
            other.by_ins
        )

    def __repr__(self) -> str:
        return f"AccessRules(by_bit={self.by_bit!r}, by_ins={self.by_ins!r})"


def _norm(d: dict[int, Alternatives]) -> dict[int, frozenset[frozenset[int]]]:
    return {k: frozenset(v) for k, v in d.items() if v}


#: Every operation allowed: files created without security attributes.
UNRESTRICTED = AccessRules({1 << i: ALWAYS for i in range(7)})


def _add(d: dict[int, Alternatives], k: int, alts: Alternatives) -> None:
    # Several rules naming the same operation: any one of them grants it.
    d[k] = _dedupe(d.get(k, NEVER) + alts)


# -- Compact format (ISO 7816-4 §7.4.3.2? Tables 16-20) -----------------------------------


def _sc_byte(sc: int) -> Alternatives:
    """One security condition byte (ISO 7816-4 Table 20).

    00 is always, FF never. Otherwise b8 chooses all (1) or at least one (0) of
    the conditions b7 secure messaging, b6 external authentication and b5 user
    authentication, with b4-b1 the security environment. The compact format
    names no key: SE number k with user authentication is read as key
    reference k (so SC byte 1A asks for ADM1, 0A, as TS 102 221 cards use it).
    Secure messaging and external authentication are never satisfied here.
    """
    if sc == 0x00:
        return ALWAYS
    if sc == 0xFF:
        return NEVER
    user = bool(sc & 0x10) and sc & 0x0F != 0
    others = bool(sc & 0x60)
    if sc & 0x80:  # all conditions
        return (frozenset((sc & 0x0F,)),) if user and not others else NEVER
    return (frozenset((sc & 0x0F,)),) if user else NEVER


def parse_compact(value: bytes) -> AccessRules:
    """The value of an '8C' data object: AM byte, then SC bytes for AM bits b7..b1.

    Raises:
        ValueError: fewer SC bytes than AM bits set.
    """
    if not value:
        raise ValueError("empty compact security attributes")
    am = value[0]
    bits = [1 << i for i in range(6, -1, -1) if am & (1 << i)]
    if len(value) - 1 < len(bits):
        raise ValueError(f"AM byte {am:02X} needs {len(bits)} SC bytes, found {len(value) - 1}")
    by_bit: dict[int, Alternatives] = {}
    for bit, sc in zip(bits, value[1:], strict=False):
        _add(by_bit, bit, _sc_byte(sc))
    return AccessRules(by_bit)


# -- Expanded format (ISO 7816-4 §7.4.3, Tables 21-23; TS 102 221 §9.2.7) -----------------


def _sc_do(t: tlv.Tlv) -> Alternatives:
    """One security condition data object."""
    tag = t.tag
    if tag == 0x90:
        return ALWAYS
    if tag == 0x97:
        return NEVER
    if tag == 0x9E:
        return _sc_byte(t.value[0]) if t.value else NEVER
    if tag == 0xA4:  # control reference template for authentication
        ref = next((c.value for c in t.children if c.tag == 0x83), None)
        if ref is None or len(ref) != 1:
            return NEVER
        return (frozenset((ref[0],)),)
    if tag == 0xA0:  # OR template
        out: Alternatives = ()
        for c in t.children:
            out += _sc_do(c)
        return _dedupe(out)
    if tag == 0xAF:  # AND template
        acc = ALWAYS
        for c in t.children:
            acc = _and(acc, _sc_do(c))
        return acc
    # B4/B6/B8 (secure messaging), A7 (NOT) and anything unknown: not satisfiable here.
    return NEVER


def parse_expanded(value: bytes) -> AccessRules:
    """Access rules in expanded format: the value of 'AB', or one EF.ARR record.

    Each rule is an AM DO ('80' access mode byte, or '81'-'8F' a command
    header whose INS byte is used) followed by one or more SC DOs; several SC
    DOs after one AM DO are alternatives (OR). Padding 'FF' (unused record
    bytes, TS 31.102 §4.2.55) is skipped.

    Raises:
        card.tlv.TlvError: the bytes are not BER-TLV.
    """
    by_bit: dict[int, Alternatives] = {}
    by_ins: dict[int, Alternatives] = {}
    targets: list[tuple[dict[int, Alternatives], int]] = []
    after_sc = True
    for t in tlv.parse(value, allow_padding=True):
        tag = t.tag
        if 0x80 <= tag <= 0x8F:
            if after_sc:
                targets = []
            after_sc = False
            if tag == 0x80:
                am = t.value[0] if t.value else 0
                mask = 0x0F if am & 0x80 else 0x7F  # b8 = 1: b7-b4 are proprietary
                targets += [(by_bit, 1 << i) for i in range(7) if am & mask & (1 << i)]
            elif tag & 0x04:  # the description includes INS
                pos = 1 if tag & 0x08 else 0  # CLA comes first when present
                if len(t.value) > pos:
                    targets.append((by_ins, t.value[pos]))
        else:
            alts = _sc_do(t)
            after_sc = True
            for d, k in targets:
                _add(d, k, alts)
    return AccessRules(by_bit, by_ins)


def parse_arr_record(record: bytes) -> AccessRules:
    """One EF.ARR record (TS 102 221 §9.2.7; TS 31.102 §4.2.55)."""
    return parse_expanded(record)


# -- Building expanded rules -------------------------------------------------------------


def sc_do(cond: ConditionLike) -> bytes:
    """Encode a condition as one SC DO: 90 00, 97 00, A4 {83 ref, 95 08}, A0 {...}, AF {...}."""
    alts = as_condition(cond).alternatives
    if alts == ALWAYS:
        return b"\x90\x00"
    if alts == NEVER:
        return b"\x97\x00"
    encoded = [_and_do(a) for a in alts]
    if len(encoded) == 1:
        return encoded[0]
    return tlv.build(0xA0, b"".join(encoded))


def _crt(ref: int) -> bytes:
    return bytes((0xA4, 0x06, 0x83, 0x01, ref, 0x95, 0x01, USAGE_USER_AUTH))


def _and_do(alt: frozenset[int]) -> bytes:
    refs = sorted(alt)
    if len(refs) == 1:
        return _crt(refs[0])
    return tlv.build(0xAF, b"".join(_crt(r) for r in refs))


def encode_rules(**ops: ConditionLike) -> bytes:
    """Expanded-format rules (the value of 'AB', or an EF.ARR record).

    Keywords: read, update, write, deactivate, activate, terminate, delete,
    delete_child, create_ef, create_df (access mode byte bits) and increase
    (AM DO '84' with INS '32'). Operations sharing one condition share one
    AM byte, as in the examples of TS 102 221 Annex G.
    """
    groups: dict[bytes, int] = {}
    inc: bytes | None = None
    for name, cond in ops.items():
        enc = sc_do(cond)
        if name == "increase":
            inc = enc
            continue
        bit = _OP_NAMES.get(name)
        if bit is None:
            raise TypeError(f"unknown operation {name!r}")
        groups[enc] = groups.get(enc, 0) | bit
    out = [bytes((0x80, 0x01, am)) + enc for enc, am in groups.items()]
    if inc is not None:
        out.append(bytes((0x84, 0x01, INS_INCREASE)) + inc)
    return b"".join(out)


def rules(**ops: ConditionLike) -> Expanded:
    """Expanded security attributes 'AB' for a file (see `encode_rules`)."""
    return Expanded(encode_rules(**ops))


def compact(**ops: int) -> Compact:
    """Compact security attributes '8C' from raw SC bytes per operation name."""
    pairs = sorted(((_OP_NAMES[k], v) for k, v in ops.items()), reverse=True)
    am = 0
    for bit, _ in pairs:
        am |= bit
    return Compact(am, tuple(v for _, v in pairs))
