"""Where the fuzzer's command APDUs come from.

For the applet in focus and the state it is in, `InputGenerator.next` draws one
command from one of these sources (the kind is returned with it, for the
campaign's figures):

- `spec`: a valid command from an `apdu_specs` spec of the applet, or an
  interindustry one, its fields leaning to boundary values (`RandomDraw`);
- `spec-broken`: such a command with one rule broken (class, Lc, Le, length form,
  P1-P2);
- `corpus`: a command of the corpus (the applet's profile, the corpus directory,
  inputs that reached new code) with 1-3 mutations;
- `sweep`: every INS under every class of the applet, in every state, in turn;
- `structured`: a random header with a random body shape (cases 1-4, short and
  extended, wrong lengths);
- `raw`: random bytes;
- `asn1`: for an applet taking DER messages (`AppletTarget.der_seeds`, the ISD-R's
  ES10 requests), a seed's TLV tree mutated (`host.fuzz.der`: empty SET OFs,
  wrong lengths and tags, truncation at any depth, huge counts...), re-encoded
  and wrapped in the commands that carry it (`der_wrap`: STORE DATA blocks); the
  blocks after the first wait in `pending` and go out next. Its share of the
  inputs is `asn1_share` (the `asn1` engine: most of them).

(The engine adds `follow-up`: GET RESPONSE after 61xx/9Fxx, the command again with
the exact Le after 6Cxx, as a terminal would.)
"""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Sequence
from typing import Any

from host.fuzz import der, mutators
from host.fuzz.corpus import Corpus, Entry
from host.fuzz.targets import AppletTarget

log = logging.getLogger("cardemu.fuzz")

#: Generated commands kept per spec and drawn from again.
POOL_SIZE = 24

#: (kind, weight) of each source.
KINDS: tuple[tuple[str, float], ...] = (
    ("spec", 0.28),
    ("spec-broken", 0.12),
    ("corpus", 0.30),
    ("sweep", 0.10),
    ("structured", 0.16),
    ("raw", 0.04),
)


def specs_for(applet: AppletTarget) -> tuple[Any, ...]:
    """The `apdu_specs` specs that apply to an applet: its own, the interindustry ones,
    and those of its profile's spec modules (no fallbacks: they are not valid commands)."""
    try:
        from apdu_specs.framework.registry import default_registry
    except ImportError:  # apdu_specs is optional for the fuzzer
        return ()
    chosen: dict[str, Any] = {}
    try:
        specs = list(default_registry().specs)
    except Exception as e:  # noqa: BLE001 - a broken spec module must not stop fuzzing
        log.warning("apdu_specs registry: %s", e)
        specs = []
    for name in applet.spec_modules:
        try:
            specs.extend(getattr(importlib.import_module(name), "SPECS", ()))
        except ImportError:
            log.debug("spec module %s not importable", name)
    for s in specs:
        if getattr(s, "fallback", False):
            continue
        ctx = getattr(s, "context", None)
        if ctx is not None and not ctx.matches(applet.aid):
            continue
        chosen.setdefault(s.id, s)
    return tuple(chosen.values())


class InputGenerator:
    """Commands for an applet in a state.

    Args:
        rng: the only source of randomness (a seed reproduces the campaign).
        corpus: entries to mutate from; the applets' profile corpora are added to it.
        applets: the applets that will be in focus.
    """

    def __init__(
        self,
        rng: random.Random,
        corpus: Corpus,
        applets: Sequence[AppletTarget],
        *,
        asn1_share: float = 0.0,
    ) -> None:
        self.rng = rng
        self.corpus = corpus
        self.asn1_share = asn1_share
        #: commands of a multi-command input still to send, in order
        self.pending: list[bytes] = []
        #: the last ASN.1 input: what was mutated, for reports
        self.last_mutation = ""
        self._trees: dict[str, list[tuple[int, der.Node]]] = {}
        self._specs: dict[str, tuple[Any, ...]] = {}
        self._pools: dict[int, list[bytes]] = {}
        self._sweep: dict[tuple[str, str], int] = {}
        self._draw: Any = None
        for a in applets:
            for apdu in a.corpus:
                corpus.add(Entry((apdu,), a.name, None, "profile"))
        self._kinds = [k for k, _ in KINDS]
        self._weights = [w for _, w in KINDS]

    def _random_draw(self) -> Any:
        if self._draw is None:
            from apdu_specs.generate import RandomDraw

            self._draw = RandomDraw(self.rng, boundary=0.35)
        return self._draw

    def specs(self, applet: AppletTarget) -> tuple[Any, ...]:
        got = self._specs.get(applet.name)
        if got is None:
            got = self._specs[applet.name] = specs_for(applet)
        return got

    def next(self, applet: AppletTarget, state: str) -> tuple[bytes, str]:
        """One command and the kind of source it came from."""
        rng = self.rng
        if self.pending:
            return self.pending.pop(0), "asn1"
        if applet.der_seeds and self.asn1_share and rng.random() < self.asn1_share:
            got = self.asn1(applet)
            if got is not None:
                return got, "asn1"
        kind = rng.choices(self._kinds, self._weights)[0]
        if kind in ("spec", "spec-broken"):
            apdu = self._from_spec(applet)
            if apdu is None:
                kind = "structured"
            else:
                if kind == "spec-broken":
                    apdu = mutators.break_rule(apdu, rng)
                return apdu, kind
        if kind == "corpus":
            entries = self.corpus.for_applet(applet.name)
            if entries:
                entry = entries[rng.randrange(len(entries))]
                base = entry.apdus[rng.randrange(len(entry.apdus))]
                if rng.random() < 0.15:
                    return base, "corpus"
                others = [e.apdus[0] for e in entries[-32:]]
                return mutators.mutate(base, rng, others), "corpus"
            kind = "structured"
        if kind == "sweep":
            return self._sweep_next(applet, state), "sweep"
        if kind == "raw":
            return rng.randbytes(rng.choice((1, 2, 3, 4, 5, 6, 7, 8, rng.randrange(9, 300)))), "raw"
        return self.structured(applet), "structured"

    def trees(self, applet: AppletTarget) -> list[tuple[int, der.Node]]:
        got = self._trees.get(applet.name)
        if got is None:
            got = []
            for i, data in enumerate(applet.der_seeds):
                try:
                    got.append((i, der.parse(data)))
                except ValueError:
                    log.debug("DER seed %d of %s is not one data object", i, applet.name)
            self._trees[applet.name] = got
        return got

    def asn1(self, applet: AppletTarget) -> bytes | None:
        """The first command of a mutated DER message (the rest go to `pending`)."""
        trees = self.trees(applet)
        if not trees or applet.der_wrap is None:
            return None
        rng = self.rng
        i, tree = trees[rng.randrange(len(trees))]
        if rng.random() < 0.05:
            data, what = tree.encode(), "unmutated"
        else:
            m = der.mutate(tree, rng)
            data, what = m.data, m.describe()
        self.last_mutation = f"seed {i}: {what}"
        commands = list(applet.der_wrap(data, rng))
        self.pending = commands[1:]
        return commands[0]

    def _from_spec(self, applet: AppletTarget) -> bytes | None:
        specs = self.specs(applet)
        if not specs:
            return None
        rng = self.rng
        spec = specs[rng.randrange(len(specs))]
        # Building through construct costs ~100 us: most draws reuse a pool of the
        # spec's commands, one in five adds a fresh one.
        pool = self._pools.setdefault(id(spec), [])
        if len(pool) >= POOL_SIZE and rng.random() >= 0.2:
            return pool[rng.randrange(len(pool))]
        try:
            apdu = spec.generate(self._random_draw())
        except Exception as e:  # noqa: BLE001 - one spec that cannot generate is skipped
            log.debug("spec %s cannot generate: %s", spec.id, e)
            self._specs[applet.name] = tuple(s for s in specs if s is not spec)
            return None
        if len(pool) < POOL_SIZE:
            pool.append(apdu)
        else:
            pool[rng.randrange(POOL_SIZE)] = apdu
        return apdu

    def _sweep_next(self, applet: AppletTarget, state: str) -> bytes:
        key = (applet.name, state)
        n = self._sweep.get(key, 0)
        self._sweep[key] = n + 1
        classes = applet.classes or (0x00,)
        cla = classes[(n // 256) % len(classes)]
        ins = n % 256
        return self._body(cla, ins)

    def structured(self, applet: AppletTarget) -> bytes:
        rng = self.rng
        if rng.random() < 0.6:
            cla = rng.choice(applet.classes or (0x00,))
        else:
            cla = rng.choice(mutators.WRONG_CLASSES)
        return self._body(cla, rng.randrange(256))

    def _body(self, cla: int, ins: int) -> bytes:
        rng = self.rng
        p1 = rng.choice(mutators.INTERESTING_BYTES) if rng.random() < 0.7 else rng.randrange(256)
        p2 = rng.choice(mutators.INTERESTING_BYTES) if rng.random() < 0.7 else rng.randrange(256)
        head = bytes((cla, ins, p1, p2))
        shape = rng.randrange(7)
        if shape == 0:
            return head
        if shape == 1:  # case 2S
            return head + bytes((rng.choice((0, 1, 2, 4, 8, 0x10, 0xFF)),))
        if shape == 2:  # case 3S
            data = rng.randbytes(rng.randrange(1, 40))
            return head + bytes((len(data),)) + data
        if shape == 3:  # case 4S
            data = rng.randbytes(rng.randrange(1, 40))
            return head + bytes((len(data),)) + data + bytes((rng.choice((0, 1, 0x10, 0xFF)),))
        if shape == 4:  # extended
            data = rng.randbytes(rng.choice((0, 1, 255, 256, rng.randrange(0, 300))))
            le = rng.choice((b"", b"\x00\x00", b"\x01\x00"))
            if not data:
                return head + b"\x00" + le if le else head + b"\x00\x00\x00"
            return head + b"\x00" + len(data).to_bytes(2, "big") + data + le
        if shape == 5:  # a length that does not add up
            return head + rng.randbytes(rng.randrange(1, 12))
        return head + b"\x00"
