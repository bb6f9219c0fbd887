"""`Registry`: specs indexed by INS, most specific match first; the default
registry of every module of `apdu_specs` that defines `SPECS`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from apdu_specs.framework.decoded import HEX2, Decoded
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext
from card.apdu import (
    ApduFormatError,
    CommandApdu,
    cla_channel,
)

if TYPE_CHECKING:
    from apdu_specs.framework.session import DecodeSession

log = logging.getLogger("cardemu.apdu_specs")


#: How many other readings `decode_command` tries when the best one has issues.
_RETRIES = 3


class Registry:
    """Specs indexed by INS, matched most specific first.

    Args:
        specs: the specs; their ids must be unique.
        strict: raise on a duplicate id (else leave it out and note it in `problems`).

    Raises:
        ValueError: two specs with the same id (strict).
    """

    def __init__(self, specs: Iterable[CommandSpec], *, strict: bool = True) -> None:
        #: What was left out (strict=False): duplicate ids, modules that failed to import.
        self.problems: list[str] = []
        kept: list[CommandSpec] = []
        seen: set[str] = set()
        for s in specs:
            if s.id in seen:
                if strict:
                    raise ValueError(f"two specs are both {s.id!r}")
                self.problems.append(f"two specs are both {s.id!r}: the second is left out")
                continue
            seen.add(s.id)
            kept.append(s)
        self._specs = tuple(kept)
        order = {id(s): i for i, s in enumerate(self._specs)}
        by_ins: dict[int, list[CommandSpec]] = {}
        for s in self._specs:
            by_ins.setdefault(s.ins, []).append(s)
        self._by_ins = {
            ins: tuple(
                sorted(group, key=lambda s: (-s.specificity, s.context is not None, order[id(s)]))
            )
            for ins, group in by_ins.items()
        }

    @property
    def specs(self) -> tuple[CommandSpec, ...]:
        return self._specs

    @property
    def contexts(self) -> tuple[AppletContext, ...]:
        out: list[AppletContext] = []
        for s in self._specs:
            if s.context is not None and s.context not in out:
                out.append(s.context)
        return tuple(out)

    def context_for(self, aid: bytes) -> AppletContext | None:
        """The applet context a selected AID belongs to, if any."""
        return next((ctx for ctx in self.contexts if ctx.matches(aid)), None)

    def find(self, name: str) -> list[CommandSpec]:
        """Specs whose name (or id) is `name`, case-insensitively."""
        key = name.upper()
        return [s for s in self._specs if s.name.upper() == key or s.id.upper() == key]

    def match(
        self, command: bytes | CommandApdu, *, context: bytes | None = None
    ) -> list[CommandSpec]:
        """Specs that apply to a command, best first.

        Order: with a known `context` (the AID selected on the command's
        channel), specs of that applet first, then specs of no applet, and
        specs of other applets left out; with no context, specs of no applet
        (standards) first, then applet specs. Within each group the most
        specific first (most CLA and P1-P2 bits fixed), then registration order.
        """
        if isinstance(command, CommandApdu):
            cla, ins, word = command.cla, command.ins, (command.p1 << 8) | command.p2
        else:
            if len(command) < 4:
                return []
            cla, ins, word = command[0], command[1], (command[2] << 8) | command[3]
        out = [
            s
            for s in self._by_ins.get(ins, ())
            if cla & s.cla_mask == s.cla & s.cla_mask and word & s.match_mask == s.match_value
        ]
        if context is not None:
            mine = [s for s in out if s.context is not None and s.context.matches(context)]
            return mine + [s for s in out if s.context is None]
        return [s for s in out if s.context is None] + [s for s in out if s.context is not None]

    def decode_command(self, raw: bytes, *, context: bytes | None = None) -> Decoded:
        """Decode a command APDU with the best matching spec (see `match`)."""
        raw = bytes(raw)
        try:
            apdu = CommandApdu.from_bytes(raw)
        except ApduFormatError as e:
            return Decoded(
                "command",
                raw,
                "?",
                f"malformed command APDU: {e.reason}",
                {"data": raw},
                issues=[e.reason],
            )
        if apdu.cla == 0xFF:
            return _unknown_command(
                apdu, raw, "CLA FF is invalid (it starts a PPS, ISO/IEC 7816-3 §9)"
            )
        specs = self.match(apdu, context=context)
        if not specs:
            return _unknown_command(apdu, raw, None)
        best = specs[0]
        d = best.decode(apdu, raw)
        # Other readings: another command (or another applet's) for the same
        # header, not a variant or fallback of the same one.
        others = [
            s
            for s in specs[1:]
            if not s.fallback and (s.name != best.name or s.context != best.context)
        ]
        if d.issues:
            # When the best guess does not fit the bytes, prefer a reading that does
            # (80 50 00 00 04 is the purse's GET BALANCE, not an INITIALIZE UPDATE).
            for s in others[:_RETRIES]:
                alt = s.decode(apdu, raw)
                if not alt.issues:
                    others = [best, *[o for o in others if o is not s]]
                    best, d = s, alt
                    break
        d.alternatives = tuple(s.id for s in others)
        return d

    def session(self) -> DecodeSession:
        from apdu_specs.framework.session import DecodeSession  # it builds on the registry

        return DecodeSession(self)


def _unknown_command(apdu: CommandApdu, raw: bytes, issue: str | None) -> Decoded:
    cla = apdu.cla
    fields = {
        "cla": HEX2[cla],
        "ins": HEX2[apdu.ins],
        "p1": HEX2[apdu.p1],
        "p2": HEX2[apdu.p2],
        "channel": cla_channel(cla),
        "case": apdu.case,
        "extended": apdu.extended,
        "nc": len(apdu.data),
        "data": apdu.data if apdu.data else None,
        "ne": apdu.le,
    }
    text = f"unknown command: CLA {cla:02X} INS {apdu.ins:02X} P1 {apdu.p1:02X} P2 {apdu.p2:02X}"
    if apdu.data:
        text += f", {len(apdu.data)} byte(s) of data"
    if apdu.le is not None:
        text += f", Ne {apdu.le}"
    d = Decoded("command", raw, f"INS {apdu.ins:02X}", text, fields)
    if issue:
        d.issues.append(issue)
    return d


_INFRASTRUCTURE = frozenset(
    {"constructs", "framework", "generate", "shapes", "strategies", "values"}
)


def spec_modules() -> list[str]:
    """Names of this package's spec modules (those besides the framework's own)."""
    import apdu_specs

    return sorted(
        f"apdu_specs.{m.name}"
        for m in pkgutil.iter_modules(apdu_specs.__path__)
        if not m.name.startswith("_") and m.name not in _INFRASTRUCTURE
    )


@functools.cache
def default_registry() -> Registry:
    """Every spec of every module in this package that defines `SPECS` (built once).

    A module that fails to import, or a spec whose id is taken, is left out and
    logged (and listed in `problems`, which the tests require empty): one broken
    module must not stop every trace from being decoded.
    """
    specs: list[CommandSpec] = []
    problems: list[str] = []
    for name in spec_modules():
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - see the docstring
            problems.append(f"{name} does not import: {type(e).__name__}: {e}")
            continue
        specs.extend(getattr(module, "SPECS", ()))
    registry = Registry(specs, strict=False)
    registry.problems[:0] = problems
    for problem in registry.problems:
        log.warning("apdu_specs: %s", problem)
    return registry


def all_specs() -> tuple[CommandSpec, ...]:
    """Every registered spec."""
    return default_registry().specs


def match(command: bytes, *, context: bytes | None = None) -> list[CommandSpec]:
    """Specs applying to a command, best first (see `Registry.match`)."""
    return default_registry().match(command, context=context)


def decode_command(raw: bytes, *, context: bytes | None = None) -> Decoded:
    """Decode a command APDU with the default registry.

    Args:
        raw: the command APDU.
        context: the AID selected on the command's logical channel, if known.
    """
    return default_registry().decode_command(raw, context=context)
