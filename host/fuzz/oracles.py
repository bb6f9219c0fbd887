"""Invariants checked after every step: each a named oracle with a clear report.

| oracle                 | what it says                                                         |
|------------------------|----------------------------------------------------------------------|
| no-exception           | no Python exception escapes the runtime or an applet (6F00 included) |
| well-formed-response   | a status word 6X (not 60) / 9X; no more data than Ne; none on errors |
| error-keeps-state      | a status word promising unchanged NVM (ISO/IEC 7816-4 §5.1.3) left   |
|                        | every persistent value as it was                                     |
| retry-counter          | a retry counter goes up only on a successful verification            |
| no-secret              | no secret (PIN, key, K/OPc, session key) appears in response data    |
| response-time          | the card answers within the target's bound; a command still running  |
|                        | at the hard bound (`hang_ms`) is interrupted and reported as a hang  |
| memory                 | no command grows the process by more than `memory_mb` (interrupted)  |
| tear-atomicity         | after a tear and power-up the NVM is the before- or the after-state  |
| determinism            | the same seed and the same commands give the same answers            |

The state oracles need the card in-process (they read its NVM); on a card in a
real reader only well-formed-response, response-time, no-exception (reader
errors) and no-secret (the secrets given with `--secret`) apply.

Retry counters are OwnerPIN's (every persistent value named `pin.<name>` holding
`(value, tries)`) and those an applet's profile names (`AppletTarget.counters`).
Under a tear, a counter may also end lower than before: that is the counter
written down before the comparison, so that a tear buys no free guess.

A secret seen in a response is reported only when the host did not send it
itself during the episode, and, when its place in the NVM is known, only if
re-running the episode with that value changed takes it out of the response
(public data that happens to hold the same bytes is not a leak).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from card.apdu import ApduFormatError, CommandApdu
from card.runtime import CardRuntime
from card.sw import describe, is_success, nvm_may_change
from host.fuzz.session import Episode, Send, Step, Tear
from host.fuzz.targets import VERIFY_INS, CountersHook, Secret

NO_EXCEPTION = "no-exception"
WELL_FORMED = "well-formed-response"
ERROR_KEEPS_STATE = "error-keeps-state"
RETRY_COUNTER = "retry-counter"
NO_SECRET = "no-secret"
RESPONSE_TIME = "response-time"
TEAR_ATOMICITY = "tear-atomicity"
DETERMINISM = "determinism"
MEMORY = "memory"

ORACLES: Mapping[str, str] = MappingProxyType(
    {
        NO_EXCEPTION: "no Python exception escapes the runtime",
        WELL_FORMED: "every response is a well-formed response APDU",
        ERROR_KEEPS_STATE: "an error status leaves persistent state unchanged",
        RETRY_COUNTER: "retry counters never increase without a successful verification",
        NO_SECRET: "no secret appears in any response",
        RESPONSE_TIME: "the card answers within a bound",
        TEAR_ATOMICITY: "the state after a tear is a before- or after-state",
        DETERMINISM: "the same seed reproduces the same run",
        MEMORY: "no command grows the process's memory beyond a bound",
    }
)
ALL_ORACLES = frozenset(ORACLES)
#: Oracles that read the card's memory: in-process cards only.
INTROSPECTIVE = frozenset({ERROR_KEEPS_STATE, RETRY_COUNTER, TEAR_ATOMICITY, DETERMINISM})

#: Shorter secrets match public bytes by chance too often to be worth checking.
MIN_SECRET = 4
#: A secret whose place in the NVM is unknown is checked only from this length on.
MIN_UNCONFIRMED_SECRET = 8
#: Leak verdicts kept (by secret, command and response) before the cache starts afresh.
VERDICTS_MAX = 4096

Snapshot = dict[str, dict[str, Any]]
PinKey = tuple[str, str]
#: A retry counter's place: (NVM owner, value name, index in the tuple value).
CounterKey = tuple[str, str, int]


@dataclass(frozen=True)
class Violation:
    """An invariant that did not hold.

    Attributes:
        oracle: the oracle's name (a key of ORACLES).
        message: one line saying what happened.
        step: the index, in the episode, of the step where it was seen.
        key: what makes two violations the same bug (for de-duplication).
        detail: more lines (a traceback, the values that changed).
    """

    oracle: str
    message: str
    step: int
    key: str
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.oracle}] {self.message}"


# -- helpers over snapshots -----------------------------------------------------------------


def pin_counters(snapshot: Snapshot) -> dict[PinKey, int]:
    """The OwnerPIN try counters in a snapshot: (owner, name) -> tries remaining."""
    out: dict[PinKey, int] = {}
    for owner, seg in snapshot.items():
        for name, value in seg.items():
            if (
                name.startswith("pin.")
                and type(value) is tuple
                and len(value) == 2
                and type(value[1]) is int
                and (value[0] is None or type(value[0]) is bytes)
            ):
                out[(owner, name)] = value[1]
    return out


def pin_secrets(snapshot: Snapshot) -> list[Secret]:
    """OwnerPIN values in a snapshot, as secrets with their place."""
    out = []
    for (owner, name), _tries in pin_counters(snapshot).items():
        value = snapshot[owner][name][0]
        if value:
            out.append(Secret(f"{name[4:]} of {owner.upper()}", value, (owner, name), owner))
    return out


def retry_counters(
    snapshot: Snapshot, hooks: Mapping[str, CountersHook] | None = None
) -> dict[CounterKey, int]:
    """Every retry counter in a snapshot: OwnerPIN's, and those the applets' profiles name."""
    out = {(o, n, 1): t for (o, n), t in pin_counters(snapshot).items()}
    for owner, hook in (hooks or {}).items():
        seg = snapshot.get(owner)
        if seg:
            for name, index, tries in hook(seg):
                if type(tries) is int:
                    out[(owner, name, index)] = tries
    return out


def _mask_counters(snapshot: Snapshot, keys: Iterable[CounterKey]) -> Snapshot:
    out = {o: dict(s) for o, s in snapshot.items()}
    for owner, name, index in keys:
        seg = out.get(owner)
        if seg is None or name not in seg:
            continue  # a counter still at its default value, not in the NVM
        value = seg[name]
        if index < 0:  # the value is the counter itself
            seg[name] = None
        else:
            seg[name] = value[:index] + (None,) + value[index + 1 :]
    return out


def _show_value(name: str, value: Any, limit: int = 24) -> str:
    if name.startswith("pin.") and type(value) is tuple and len(value) == 2:
        return f"(PIN, {value[1]} tries)"  # never the PIN itself in a report
    if value is _ABSENT:
        return "absent"
    if type(value) is bytes:
        h = value.hex().upper()
        return h if len(h) <= 2 * limit else f"{h[: 2 * limit]}... ({len(value)} bytes)"
    text = repr(value)
    return text if len(text) <= 3 * limit else text[: 3 * limit] + "..."


_ABSENT = object()


def diff_snapshots(a: Snapshot, b: Snapshot, limit: int = 8) -> list[str]:
    """Lines naming the persistent values that differ from a to b (PINs masked)."""
    lines = []
    for owner in sorted(set(a) | set(b)):
        sa, sb = a.get(owner, {}), b.get(owner, {})
        for name in sorted(set(sa) | set(sb)):
            va, vb = sa.get(name, _ABSENT), sb.get(name, _ABSENT)
            if va is vb or (type(va) is type(vb) and va == vb):
                continue
            lines.append(
                f"{owner.upper()}:{name}: {_show_value(name, va)} -> {_show_value(name, vb)}"
            )
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


def substitute(value: Any, old: bytes, new: bytes) -> Any:
    """`value` with every occurrence of `old` (in bytes, inside tuples) replaced by `new`."""
    if type(value) is bytes:
        return value.replace(old, new)
    if type(value) is tuple:
        return tuple(substitute(v, old, new) for v in value)
    return value


def _other_bytes(value: bytes) -> bytes:
    # Every byte different, the length the same: a PIN or key of the same shape.
    return bytes(b ^ 0xA5 for b in value)


def _secret_patch(secret: Secret, snapshot: Snapshot) -> Callable[[CardRuntime], None] | None:
    """A patch writing a changed secret in place, or None if its place is unknown."""
    places: list[tuple[str, str]] = []
    if secret.where is not None:
        places.append(secret.where)
    elif secret.owner is not None:
        seg = snapshot.get(secret.owner, {})
        places.extend(
            (secret.owner, n) for n, v in seg.items() if substitute(v, secret.value, b"") != v
        )
    if not places:
        return None
    new = _other_bytes(secret.value)

    def patch(card: CardRuntime) -> None:
        for owner, name in places:
            # Absent: a persistent field still at its default, the secret itself.
            value = card.nvm.read(owner, name, secret.value)
            card.nvm.write(owner, name, substitute(value, secret.value, new))

    return patch


_TB_FILE = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def traceback_key(tb: str | None) -> str:
    """Where an exception was raised, and its type: "applets/x.py:42:ZeroDivisionError"."""
    if not tb:
        return "?"
    frames = _TB_FILE.findall(tb)
    last = tb.strip().splitlines()[-1] if tb.strip() else "?"
    etype = last.split(":", 1)[0].strip()
    if not frames:
        return etype
    path, line, func = frames[-1]
    short = "/".join(path.replace("\\", "/").split("/")[-2:])
    return f"{short}:{line}:{func}:{etype}"


def loop_key(tb: str | None) -> str:
    """Where an interrupted command was looping: the innermost frame of the project's
    own code (a library's loop is keyed by the project function that called it)."""
    frames = _TB_FILE.findall(tb or "")
    own = [
        f
        for f in frames
        if "site-packages" not in f[0] and "dist-packages" not in f[0] and "watchdog" not in f[0]
    ]
    if not own:
        return traceback_key(tb)
    path, _line, func = own[-1]
    return "/".join(path.replace("\\", "/").split("/")[-2:]) + ":" + func


def _hex(b: bytes, limit: int = 40) -> str:
    h = b.hex().upper()
    return h if len(h) <= 2 * limit else f"{h[: 2 * limit]}... ({len(b)} bytes)"


def _ins(apdu: bytes) -> int:
    return apdu[1] if len(apdu) >= 2 else -1


# -- the checker ------------------------------------------------------------------------------


class Checker:
    """Runs steps on an episode and checks the oracles after each.

    Args:
        episode: the card and its history.
        oracles: the oracles to check (default: all that apply to the card).
        max_ms: the response-time bound (default: the target's).
        rng: where a tear's write index comes from when none is given.
        verdicts: leak verdicts shared across a campaign's checkers.
    """

    def __init__(
        self,
        episode: Episode,
        *,
        oracles: Iterable[str] = ALL_ORACLES,
        max_ms: float | None = None,
        rng: random.Random | None = None,
        verdicts: dict[tuple[str, bytes, bytes, bytes], bool] | None = None,
    ) -> None:
        self.ep = episode
        # A suspected leak is confirmed by re-running the episode: the same command
        # answering the same bytes gets the same verdict, across a campaign's episodes.
        self.verdicts = verdicts if verdicts is not None else {}
        enabled = frozenset(oracles)
        unknown = enabled - ALL_ORACLES
        if unknown:
            raise ValueError(f"unknown oracle(s): {', '.join(sorted(unknown))}")
        self.introspective = episode.card is not None
        if not self.introspective:
            enabled -= INTROSPECTIVE
        self.enabled = enabled
        self.max_ms = episode.target.max_ms if max_ms is None else max_ms
        self.rng = rng or random.Random(0)
        self._snapshots = self.introspective and bool(
            enabled & {ERROR_KEEPS_STATE, RETRY_COUNTER, NO_SECRET}
        )
        self._sent: list[bytes] = []
        #: the OwnerPIN values of the card object and NVM version they were read at
        self._pin_secrets: tuple[object, list[Secret]] | None = None
        applets = episode.target.card_applets
        self._verify_ins = {a.owner: a.verify_ins for a in applets}
        self._hooks = [(a.aid, a.secrets) for a in applets if a.secrets]
        self._counter_hooks = {a.owner: a.counters for a in applets if a.counters}
        #: persistent writes the last command made (in-process cards)
        self.last_writes = 0

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: Any) -> tuple[Step, list[Violation]]:
        if isinstance(event, Send):
            return self.send(event.apdu)
        if isinstance(event, Tear):
            return self.tear(event.apdu, event.after)
        return self.reset()

    def reset(self) -> tuple[Step, list[Violation]]:
        return self.ep.reset(), []

    def send(self, apdu: bytes) -> tuple[Step, list[Violation]]:
        """Send a command and check every enabled oracle on its outcome."""
        got = self._send(apdu, unless_writing=False)
        assert got is not None
        return got

    def _send(self, apdu: bytes, *, unless_writing: bool) -> tuple[Step, list[Violation]] | None:
        """`send`; with `unless_writing`, None (nothing checked, nothing recorded) for a
        command that writes (`Episode.send_unless_writing`: the card must be rebuilt)."""
        card = self.ep.card
        before = card.nvm.snapshot() if self._snapshots and card is not None else None
        exceptions = card.exceptions if card is not None else 0
        if unless_writing:
            got = self.ep.send_unless_writing(apdu)
            if got is None:
                return None
            step = got
        else:
            step = self.ep.send(apdu)
        index = len(self.ep.steps) - 1
        self._sent.append(apdu)
        self.last_writes = card.nvm.apdu_writes if card is not None else 0
        out: list[Violation] = []
        on = self.enabled
        if step.interrupted is not None:
            oracle = MEMORY if step.interrupted == "memory" else RESPONSE_TIME
            if oracle in on:
                last = (step.escaped or "").strip().splitlines()[-1:] or ["interrupted"]
                out.append(
                    Violation(
                        oracle,
                        f"{_hex(apdu)}: {last[0].split(': ', 1)[-1]} (a hang)",
                        index,
                        f"hang:{_ins(apdu):02X}:{loop_key(step.escaped)}",
                        step.escaped or "",
                    )
                )
        elif NO_EXCEPTION in on:
            if step.escaped is not None:
                what = step.escaped.strip().splitlines()[-1]
                out.append(
                    Violation(
                        NO_EXCEPTION,
                        f"{what} escaped the runtime on {_hex(apdu)}",
                        index,
                        traceback_key(step.escaped),
                        step.escaped,
                    )
                )
            elif card is not None and card.exceptions > exceptions:
                tb = card.last_exception or ""
                what = tb.strip().splitlines()[-1] if tb.strip() else "an exception"
                out.append(
                    Violation(
                        NO_EXCEPTION,
                        f"{what} in the card on {_hex(apdu)} (answered 6F00)",
                        index,
                        traceback_key(tb),
                        tb,
                    )
                )
        resp = step.response
        if resp is None:
            return step, out
        if WELL_FORMED in on:
            out.extend(self._well_formed(apdu, resp, index))
        if len(resp) < 2:
            return step, out
        sw = (resp[-2] << 8) | resp[-1]
        after = card.nvm.snapshot() if before is not None and card is not None else None
        changed = after is not None and after != before
        if changed and ERROR_KEEPS_STATE in on and not nvm_may_change(sw):
            assert before is not None and after is not None
            lines = diff_snapshots(before, after)
            out.append(
                Violation(
                    ERROR_KEEPS_STATE,
                    f"{_hex(apdu)} answered {sw:04X} ({describe(sw)}) but changed "
                    f"persistent memory: {lines[0] if lines else '?'}",
                    index,
                    f"{_ins(apdu):02X}:{sw:04X}",
                    "\n".join(lines),
                )
            )
        if changed and RETRY_COUNTER in on:
            assert before is not None and after is not None
            out.extend(self._retry(apdu, sw, before, after, index))
        if NO_SECRET in on and len(resp) > 2:
            out.extend(self._secrets(apdu, resp, index, after))
        if RESPONSE_TIME in on and step.seconds * 1000 > self.max_ms:
            out.append(
                Violation(
                    RESPONSE_TIME,
                    f"{_hex(apdu)} took {step.seconds * 1000:.0f} ms (bound {self.max_ms:.0f} ms)",
                    index,
                    f"{_ins(apdu):02X}",
                )
            )
        return step, out

    # -- per-response oracles ---------------------------------------------------------------

    @staticmethod
    def _well_formed(apdu: bytes, resp: bytes, index: int) -> list[Violation]:
        if len(resp) < 2:
            return [
                Violation(
                    WELL_FORMED,
                    f"{_hex(apdu)} answered {_hex(resp)}: no status word",
                    index,
                    "short",
                )
            ]
        sw1 = resp[-2]
        sw = (sw1 << 8) | resp[-1]
        out = []
        # ISO/IEC 7816-3 §10.3.3: SW1 is 6X (but not 60) or 9X.
        if not (0x61 <= sw1 <= 0x6F or 0x90 <= sw1 <= 0x9F):
            out.append(
                Violation(
                    WELL_FORMED,
                    f"{_hex(apdu)} answered SW {sw:04X}: not a status word",
                    index,
                    f"sw1:{sw1:02X}",
                )
            )
        n = len(resp) - 2
        if n:
            if not (is_success(sw) or sw1 in (0x62, 0x63, 0x91, 0x92)):
                out.append(
                    Violation(
                        WELL_FORMED,
                        f"{_hex(apdu)} answered {n} data bytes with the error {sw:04X}",
                        index,
                        f"error-data:{sw:04X}",
                    )
                )
            try:
                le = CommandApdu.from_bytes(apdu).le
            except ApduFormatError:
                le = 0
            # No Le: the T=0 reading of a 4-byte command (P3 = 00, Ne = 256).
            ne = 256 if le is None else le
            if n > ne:
                out.append(
                    Violation(
                        WELL_FORMED,
                        f"{_hex(apdu)} answered {n} data bytes, more than Ne = {ne}",
                        index,
                        f"over-ne:{_ins(apdu):02X}",
                    )
                )
        return out

    def _retry(
        self, apdu: bytes, sw: int, before: Snapshot, after: Snapshot, index: int
    ) -> list[Violation]:
        out = []
        old = retry_counters(before, self._counter_hooks)
        ins = _ins(apdu)
        for key, tries in retry_counters(after, self._counter_hooks).items():
            prev = old.get(key)
            if prev is None or tries <= prev:
                continue
            verify = self._verify_ins.get(key[0], VERIFY_INS)
            if is_success(sw) and ins in verify:
                continue
            why = "" if is_success(sw) else f" with {sw:04X} ({describe(sw)})"
            if is_success(sw):
                why = f" after INS {ins:02X}, not a verification"
            out.append(
                Violation(
                    RETRY_COUNTER,
                    f"{key[0].upper()}:{key[1]}[{key[2]}] tries went {prev} -> {tries}{why} "
                    f"({_hex(apdu)})",
                    index,
                    f"{key[1]}[{key[2]}]:{ins:02X}",
                )
            )
        return out

    def _secret_list(self, after: Snapshot | None) -> list[Secret]:
        card = self.ep.card
        # Read again whenever the card's NVM moved on, however it did (a send, a tear
        # that left the after-state, a rebuilt card): a PIN changed outside a checked
        # send must not leave the old value the only one looked for.
        at = (card, card.nvm_version_now()) if card is not None else None
        if self._pin_secrets is None or self._pin_secrets[0] != at:
            snap = after if after is not None else (card.nvm.snapshot() if card is not None else {})
            self._pin_secrets = (at, pin_secrets(snap))
        out = list(self._pin_secrets[1])
        out.extend(self.ep.target.secrets)
        if card is not None:
            for aid, hook in self._hooks:
                out.extend(hook(card, aid))
        return out

    def _secrets(
        self, apdu: bytes, resp: bytes, index: int, after: Snapshot | None
    ) -> list[Violation]:
        data = resp[:-2]
        out = []
        for s in self._secret_list(after):
            v = s.value
            if len(v) < MIN_SECRET or v not in data:
                continue
            core = v.rstrip(b"\xff")  # PINs padded with FF (ETSI TS 102 221 §9.5.1)
            if any(core and core in c for c in self._sent):
                continue  # the host sent it: it knew it
            key = (s.name, v, apdu, resp)
            verdict = self.verdicts.get(key)
            if verdict is None:
                if len(self.verdicts) >= VERDICTS_MAX:
                    self.verdicts.clear()
                verdict = self.verdicts[key] = self._confirm_leak(s, index)
            if not verdict:
                continue
            out.append(
                Violation(
                    NO_SECRET,
                    f"the {s.name} ({len(v)} bytes) appears in the response to {_hex(apdu)} "
                    f"at offset {data.find(v)}",
                    index,
                    f"{s.name}:{_ins(apdu):02X}",
                )
            )
        return out

    def _confirm_leak(self, secret: Secret, index: int) -> bool:
        card = self.ep.card
        # A secret the user declared is believed (a real card's 4-byte PIN too); others
        # that cannot be confirmed by changing them count only when long.
        unconfirmed = secret.declared or len(secret.value) >= MIN_UNCONFIRMED_SECRET
        if card is None:
            return unconfirmed
        first = Episode(self.ep.target, self.ep.seed)  # the state the episode started from
        assert first.card is not None  # the same in-process target as self.ep
        patch = _secret_patch(secret, first.card.nvm.snapshot())
        if patch is None:
            return unconfirmed
        twin, _ = self.ep.clone(upto=index + 1, patch=patch)
        resp = twin.steps[index].response
        return resp is None or secret.value not in resp[:-2]

    # -- tears ------------------------------------------------------------------------------

    def tear(self, apdu: bytes, after: int | None = None) -> tuple[Step, list[Violation]]:
        """Send `apdu` with a tear after `after` writes (None: at a random one of its writes)
        and check that the card comes back in the before- or the after-state."""
        card = self.ep.card
        if card is None:
            return self.send(apdu)
        out: list[Violation] = []
        index = len(self.ep.steps)
        first: int | None = None
        if after is None:
            # Most commands torn at random write nothing in the state they meet (the
            # engine tears an instruction once it has seen it write): such a command is
            # simply sent, and a clone to count its writes would be wasted. Sent armed
            # to lose power at its first write, it answers for itself; one that writes
            # is cut before that write lands, and the card is rebuilt to go on as below.
            got = self._send(apdu, unless_writing=True)
            if got is not None:
                return got
            first = self.ep.rebuild()
            card = self.ep.card
            assert card is not None
        twin, diverged = self.ep.clone()
        if first is not None:
            diverged = first
        if diverged is not None and DETERMINISM in self.enabled:
            out.append(self._divergence(diverged))
        twin_step = twin.send(apdu)
        assert twin.card is not None
        writes = twin.card.nvm.apdu_writes
        if after is None:
            if writes == 0 or twin_step.response is None:
                step, more = self.send(apdu)
                return step, out + more
            after = self.rng.randrange(writes)
        elif after >= writes:
            step, more = self.send(apdu)
            return step, out + more
        before = card.nvm.snapshot()
        after_state = twin.card.nvm.snapshot()
        step = self.ep.tear(apdu, after)
        self._sent.append(apdu)
        if not isinstance(step.event, Tear):
            if DETERMINISM in self.enabled:
                out.append(
                    Violation(
                        DETERMINISM,
                        f"{_hex(apdu)} made {writes} writes on a clone but completed "
                        f"within {after} here",
                        index,
                        f"tear:{_ins(apdu):02X}",
                    )
                )
            return step, out
        if TEAR_ATOMICITY not in self.enabled:
            return step, out
        torn = card.nvm.snapshot()
        if _tear_ok(torn, before, after_state, self._counter_hooks):
            return step, out
        # Power-up may legitimately write (an applet's select): compare with the
        # power-cycled before- and after-states too.
        twin.card.power_on()
        if _tear_ok(torn, before, twin.card.nvm.snapshot(), self._counter_hooks):
            return step, out
        cycled, _ = self.ep.clone(upto=index)
        assert cycled.card is not None
        cycled.card.power_on()
        if _tear_ok(torn, cycled.card.nvm.snapshot(), after_state, self._counter_hooks):
            return step, out
        vs_before = diff_snapshots(before, torn)
        vs_after = diff_snapshots(after_state, torn)
        out.append(
            Violation(
                TEAR_ATOMICITY,
                f"a tear after write {after + 1} of {writes} of {_hex(apdu)} left neither the "
                f"before- nor the after-state: {vs_before[0] if vs_before else '?'}",
                index,
                f"{_ins(apdu):02X}:{after}",
                "against the before-state:\n  "
                + "\n  ".join(vs_before)
                + "\nagainst the after-state:\n  "
                + "\n  ".join(vs_after),
            )
        )
        return step, out

    # -- determinism --------------------------------------------------------------------------

    def replay_check(self) -> list[Violation]:
        """Rebuild the card and replay the episode: every answer must be the same."""
        if DETERMINISM not in self.enabled or self.ep.card is None:
            return []
        _, diverged = self.ep.clone()
        return [] if diverged is None else [self._divergence(diverged)]

    def _divergence(self, index: int) -> Violation:
        step = self.ep.steps[index]
        twin, _ = self.ep.clone(upto=index + 1)
        again = twin.steps[index] if index < len(twin.steps) else None
        ev = step.event
        apdu = getattr(ev, "apdu", b"")
        got = "nothing" if again is None or again.response is None else _hex(again.response)
        was = "nothing" if step.response is None else _hex(step.response)
        return Violation(
            DETERMINISM,
            f"replaying the same commands on a card with the same seed answered {got} "
            f"to {_hex(apdu)} (first run: {was})",
            index,
            f"{_ins(apdu):02X}",
        )


def _tear_ok(
    torn: Snapshot, before: Snapshot, after: Snapshot, hooks: Mapping[str, CountersHook]
) -> bool:
    if torn == before or torn == after:
        return True
    pins_t = retry_counters(torn, hooks)
    pins_b = retry_counters(before, hooks)
    pins_a = retry_counters(after, hooks)
    keys = set(pins_t) & set(pins_b) & set(pins_a)
    masked = _mask_counters(torn, keys)
    if masked != _mask_counters(before, keys) and masked != _mask_counters(after, keys):
        return False
    # A counter may end as after, or anywhere at or below before (decrement first).
    return all(pins_t[k] == pins_a[k] or pins_t[k] <= pins_b[k] for k in keys)
