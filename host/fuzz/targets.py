"""Fuzz targets: what the fuzzer knows about a card and about each applet on it.

A `CardTarget` is a card the fuzzer can build afresh as often as it likes (a
preset, a card image, a test's own set-up) or, slowly, a card in a real reader.
It holds one `AppletTarget` per selectable applet.

What the fuzzer knows about an applet comes from an `AppletTarget` *profile*,
matched by AID prefix:

- `select`: the SELECT that makes it current (default `00 A4 04 00 Lc AID 00`);
- `states`: the states worth fuzzing in besides "selected", each with the
  commands (or a function sending them) that reach it from "selected": PIN
  verified, secure channel open, transaction open...;
- `secrets`: a hook naming secrets that must never appear in a response (keys,
  K/OPc, session keys); OwnerPIN values are found without help, in the NVM;
- `spec_modules`: `apdu_specs` modules describing its commands (the default
  registry's specs for its AID and the interindustry ones are always used);
- `corpus`: valid commands to mutate from; `classes`: the CLA bytes it uses;
- `coverage`: modules or packages whose lines count for it (its class's module
  always does);
- `verify_ins`: the instructions after which a retry counter may go back up.

Built-in applets have profiles in `builtin_profiles()`. A third-party package
adds its own with an entry point in the `cardemu.fuzz` group naming a function
that returns an iterable of `AppletTarget`. An applet with no profile is
fuzzed with a generic one: selected by AID, no extra states, PINs found in NVM.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from card.framework.catalogue import Catalogue, class_ref
from card.runtime import CardRuntime

if TYPE_CHECKING:
    from host.readers.base import Reader

log = logging.getLogger("cardemu.fuzz")

ENTRY_POINT_GROUP = "cardemu.fuzz"

#: Instructions after which a retry counter may legitimately go up (with a success
#: status word): ISO/IEC 7816-4 §11.5 VERIFY (20/21), CHANGE REFERENCE DATA (24),
#: RESET RETRY COUNTER (2C), EXTERNAL/GENERAL/INTERNAL AUTHENTICATE (82, 86/87, 88),
#: and SELECT / MANAGE CHANNEL, whose deselect may run Java Card's OwnerPIN.reset()
#: (which restores the counter of a PIN validated earlier).
VERIFY_INS = frozenset({0x20, 0x21, 0x24, 0x2C, 0x82, 0x86, 0x87, 0x88, 0xA4, 0x70})

SELECTED = "selected"

#: A state's set-up: APDUs sent in order (each must answer 9000/61xx), or a function
#: that sends them through the `send` it is given and raises to say it failed.
Setup = tuple[bytes, ...] | Callable[[Callable[[bytes], bytes]], None]


class TargetError(Exception):
    """A target cannot be built: unknown preset, unreadable image, unknown applet."""


@dataclass(frozen=True)
class State:
    """A state of an applet worth fuzzing in, reached from "selected" by `setup`."""

    name: str
    setup: Setup
    doc: str = ""


@dataclass(frozen=True)
class Secret:
    """Bytes that must never appear in a response.

    Attributes:
        name: for reports ("purse PIN", "K").
        value: the secret bytes.
        where: the NVM (owner, name) holding it, if known: a suspected leak is then
            confirmed by re-running the session with that value changed.
        owner: the NVM owner (applet) it belongs to, when `where` is unknown.
    """

    name: str
    value: bytes
    where: tuple[str, str] | None = None
    owner: str | None = None


SecretsHook = Callable[[CardRuntime, bytes], Iterable[Secret]]


def select_apdu(aid: bytes) -> bytes:
    """SELECT by DF name, first occurrence, FCI requested (ISO/IEC 7816-4 §11.1.1)."""
    return bytes((0x00, 0xA4, 0x04, 0x00, len(aid))) + aid + b"\x00"


@dataclass(frozen=True)
class AppletTarget:
    """One applet to fuzz: a profile (matched by AID prefix) bound to an instance.

    See the module docstring for the fields. `cls` is the applet class of the
    instance (None for a card in a real reader).
    """

    name: str
    aid: bytes
    states: tuple[State, ...] = ()
    classes: tuple[int, ...] = (0x00, 0x80)
    corpus: tuple[bytes, ...] = ()
    spec_modules: tuple[str, ...] = ()
    secrets: SecretsHook | None = None
    coverage: tuple[str, ...] = ()
    verify_ins: frozenset[int] = VERIFY_INS
    select: bytes | None = None
    cls: type | None = field(default=None, compare=False)

    @property
    def select_command(self) -> bytes:
        return self.select if self.select is not None else select_apdu(self.aid)

    @property
    def owner(self) -> str:
        """The NVM owner name of this applet's persistent state."""
        return self.aid.hex()

    @property
    def state_names(self) -> tuple[str, ...]:
        return (SELECTED, *(s.name for s in self.states))

    def state(self, name: str) -> State | None:
        return next((s for s in self.states if s.name == name), None)

    def coverage_files(self) -> tuple[str, ...]:
        """Source files whose lines count as this applet's coverage."""
        files: list[str] = []
        if self.cls is not None:
            module = importlib.import_module(self.cls.__module__)
            if getattr(module, "__file__", None):
                files.append(module.__file__)  # type: ignore[arg-type]
        for name in self.coverage:
            try:
                module = importlib.import_module(name)
            except ImportError:
                log.debug("coverage module %s not importable", name)
                continue
            path = getattr(module, "__file__", None)
            if path is None:
                continue
            if os.path.basename(path) == "__init__.py":
                files.extend(str(p) for p in sorted(Path(path).parent.rglob("*.py")))
            else:
                files.append(path)
        return tuple(dict.fromkeys(files))

    def label(self) -> str:
        return f"{self.name} ({self.aid.hex().upper()})"


# -- profiles of the built-in applets -----------------------------------------------------


def _h(*hexes: str) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h.replace(" ", "")) for h in hexes)


def _sample_profiles() -> list[AppletTarget]:
    from applets.sample import COUNTER_CLIENT_AID, COUNTER_SERVER_AID, ECHO_AID, PURSE_AID

    return [
        AppletTarget(
            "purse",
            PURSE_AID,
            states=(
                State("pin-verified", _h("0020000104 31323334"), "VERIFY with the preset PIN 1234"),
            ),
            corpus=_h(
                "0020000104 31323334",
                "0020000100",
                "00200001",
                "0024000108 31323334 35363738",
                "8030000004 00000010",
                "8040000004 00000001",
                "8050000004",
                "8052000008",
                "8030000004 7FFFFFFF",
            ),
            spec_modules=("apdu_specs.cardemu_samples",),
        ),
        AppletTarget(
            "echo",
            ECHO_AID,
            corpus=_h(
                "8001000003 AABBCC 00",
                "8001000000",
                "80020100",
                "8002000000",
                "1001000002 AABB",
                "8001000000 0003 010203 0000",
            ),
            spec_modules=("apdu_specs.cardemu_samples",),
        ),
        AppletTarget(
            "counter-client",
            COUNTER_CLIENT_AID,
            corpus=_h("8010000002", "80100000", "8011000001"),
            spec_modules=("apdu_specs.cardemu_samples",),
        ),
        AppletTarget("counter-server", COUNTER_SERVER_AID, corpus=_h("8010000002")),
    ]


def _fs_profiles() -> list[AppletTarget]:
    from applets.iso7816 import FS_APPLET_AID

    return [
        AppletTarget(
            "iso7816",
            FS_APPLET_AID,
            states=(
                State("pin1-verified", _h("0020000104 31323334"), "PIN1 1234"),
                State("pin2-verified", _h("0020008104 35363738"), "PIN2 5678"),
                State("adm1-verified", _h("002000 0A 08 3132333435363738"), "ADM1 12345678"),
                State("df-demo", _h("00A4040C0B F043415244454D55781601"), "DF.DEMO selected"),
            ),
            corpus=_h(
                "00A4000C023F00",
                "00A40004022F1000",
                "00A4020C022F10",
                "00A4080C047F106F01",
                "00A4090C02FFFF",
                "00A4040C0BF043415244454D55781601",
                "00B0000080",
                "00B0810010",
                "00D6000004DEADBEEF",
                "00B2010400",
                "00B2000200",
                "00DC000304AABBCCDD",
                "00A2000004AABB",
                "0032000003000001",
                "00F2000000",
                "0020000104 31323334",
                "0020008104 35363738",
                "0020000100",
                "0024000110 31323334FFFFFFFF 39393939FFFFFFFF",
                "002C000100",
                "002C000110 3131313131313131 31323334FFFFFFFF",
                "0044000000",
                "0004000000",
            ),
            coverage=("applets.iso7816", "card.fs"),
        ),
    ]


def _notes_profiles() -> list[AppletTarget]:
    from applets.notes import NOTES_AID

    return [
        AppletTarget(
            "notes",
            NOTES_AID,
            corpus=_h("80E2000003 414243", "80E2800102 4445", "80CA000000", "00CA0000"),
        )
    ]


@functools.cache
def builtin_profiles() -> tuple[AppletTarget, ...]:
    """Profiles of the built-in applets and of entry points in the `cardemu.fuzz` group."""
    out: list[AppletTarget] = []
    for make in (_sample_profiles, _fs_profiles, _notes_profiles):
        try:
            out.extend(make())
        except ImportError as e:  # an applet package being reworked must not stop fuzzing
            log.debug("fuzz profiles: %s", e)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            out.extend(ep.load()())
        except Exception as e:  # noqa: BLE001 - a broken plug-in is reported, not fatal
            log.warning("fuzz profiles from entry point %s: %s", ep.name, e)
    return tuple(out)


def profile_for(aid: bytes, profiles: Sequence[AppletTarget] | None = None) -> AppletTarget | None:
    """The profile whose AID is the longest prefix of `aid`, if any."""
    best: AppletTarget | None = None
    for p in builtin_profiles() if profiles is None else profiles:
        if aid.startswith(p.aid) and (best is None or len(p.aid) > len(best.aid)):
            best = p
    return best


def applet_target(
    aid: bytes, cls: type | None = None, profiles: Sequence[AppletTarget] | None = None
) -> AppletTarget:
    """The target for an applet instance: its profile bound to the instance, or a generic one."""
    prof = profile_for(aid, profiles)
    if prof is None:
        name = cls.__name__ if cls is not None else aid.hex().upper()
        return AppletTarget(name, aid, cls=cls)
    name = prof.name if prof.aid == aid else f"{prof.name}:{aid.hex().upper()}"
    return replace(prof, name=name, aid=aid, cls=cls)


# -- cards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardTarget:
    """A card to fuzz.

    Attributes:
        name: for reports ("demo", an image path).
        personalise: puts the applets and their data on a blank runtime (as a
            preset's build does); None for a card in a real reader.
        applets: the applets to fuzz.
        run_options: `cardemu run` options that rebuild this card (("--preset",
            "demo")), or () when only an image saved with a finding can.
        max_ms: the response-time bound of the response-time oracle.
        reader: the reader of a real card (then `personalise` is None).
        catalogue: applet classes a rebuilt card may instantiate.
    """

    name: str
    personalise: Callable[[CardRuntime], None] | None
    applets: tuple[AppletTarget, ...]
    run_options: tuple[str, ...] = ()
    max_ms: float = 1000.0
    reader: Reader | None = field(default=None, compare=False)
    catalogue: Catalogue | None = field(default=None, compare=False)

    @property
    def in_process(self) -> bool:
        return self.personalise is not None

    def build(self, seed: int, image: str | os.PathLike[str] | None = None) -> CardRuntime:
        """A new card as this target describes it, not yet powered.

        Raises:
            TargetError: the target is a card in a real reader.
        """
        if self.personalise is None:
            raise TargetError(f"{self.name} is a real card: it cannot be rebuilt")
        rt = CardRuntime(image, rng_seed=seed, catalogue=self.catalogue)
        self.personalise(rt)
        rt.nvm.flush()
        return rt

    def rebuildable_image(self) -> bool:
        """Whether a saved image of this card opens with the default catalogue (`cardemu run`)."""
        if self.personalise is None:
            return False
        default = _default_catalogue()
        return all(a.cls is None or class_ref(a.cls) in default for a in self.applets)

    def save_image(self, path: str | os.PathLike[str], seed: int) -> None:
        """Write the card as it is before any command (for `cardemu run --card`)."""
        rt = self.build(seed, image=path)
        rt.close()

    def only(self, selectors: Sequence[str]) -> CardTarget:
        """The same card with only the applets named (by name, or AID hex prefix).

        Raises:
            TargetError: a selector matches no applet.
        """
        if not selectors:
            return self
        chosen: list[AppletTarget] = []
        for sel in selectors:
            found = find_applets(self.applets, sel)
            if not found:
                names = ", ".join(a.name for a in self.applets)
                raise TargetError(f"no applet {sel!r} on {self.name} (applets: {names})")
            chosen.extend(a for a in found if a not in chosen)
        return replace(self, applets=tuple(chosen))

    def applet(self, selector: str) -> AppletTarget:
        found = find_applets(self.applets, selector)
        if not found:
            raise TargetError(f"no applet {selector!r} on {self.name}")
        return found[0]


def find_applets(applets: Iterable[AppletTarget], selector: str) -> list[AppletTarget]:
    """Applets named `selector`, or whose AID starts with it (hex, any case/spacing)."""
    key = selector.strip()
    exact = [a for a in applets if a.name.lower() == key.lower()]
    if exact:
        return exact
    try:
        prefix = bytes.fromhex(key.replace(" ", "").replace(":", ""))
    except ValueError:
        return []
    return [a for a in applets if prefix and a.aid.startswith(prefix)]


@functools.cache
def _default_catalogue() -> Catalogue:
    # Reading the entry points costs milliseconds: the fuzzer rebuilds cards thousands
    # of times, so every target built here shares one catalogue.
    return Catalogue()


def card_target(
    name: str,
    personalise: Callable[[CardRuntime], None],
    *,
    run_options: tuple[str, ...] = (),
    max_ms: float = 1000.0,
    profiles: Sequence[AppletTarget] | None = None,
    extra_classes: Iterable[type] = (),
) -> CardTarget:
    """A target for any set-up function: the applets are read from a card it builds.

    Args:
        name: for reports.
        personalise: installs the applets on a blank runtime.
        run_options: `cardemu run` options that rebuild the same card, if any.
        max_ms: the response-time bound.
        profiles: applet profiles to use instead of the built-in ones.
        extra_classes: applet classes outside the default catalogue (test applets).
    """
    catalogue = _default_catalogue()
    extra = tuple(extra_classes)
    if extra:
        catalogue = Catalogue(extra)  # type: ignore[arg-type]
    probe = CardRuntime(None, rng_seed=0, catalogue=catalogue)
    personalise(probe)
    probe.power_on()  # an image's registry is read at power-on
    applets = []
    for aid, _ref, lifecycle, _default in probe.applets():
        if lifecycle & 0x80 or lifecycle & 0x07 != 0x07:
            continue  # not selectable: nothing reaches it through APDUs
        cls = type(probe.applet(aid))
        applets.append(applet_target(bytes(aid), cls, profiles))
    return CardTarget(
        name,
        personalise,
        tuple(applets),
        run_options=run_options,
        max_ms=max_ms,
        catalogue=catalogue,
    )


def preset_target(preset: str, **kw: object) -> CardTarget:
    """The card of a built-in preset (`cardemu run --preset NAME` rebuilds it).

    Raises:
        TargetError: no such preset.
    """
    from host.presets import PRESETS

    spec = PRESETS.get(preset)
    if spec is None:
        raise TargetError(f"unknown preset {preset!r}; choose from {', '.join(sorted(PRESETS))}")
    return card_target(preset, spec.build, run_options=("--preset", preset), **kw)  # type: ignore[arg-type]


def image_target(path: str | os.PathLike[str], **kw: object) -> CardTarget:
    """A card image: every rebuilt card starts from its content; the file is not changed.

    Raises:
        TargetError: the image cannot be read.
    """
    from card.nvm import NvmError

    if not os.path.exists(path):
        raise TargetError(f"no card image {os.fspath(path)!r}")
    try:
        rt = CardRuntime(path, catalogue=_default_catalogue())
    except NvmError as e:
        raise TargetError(str(e)) from None
    snapshot = rt.nvm.snapshot()
    atr = rt.atr
    rt.nvm.close()
    items = tuple((o, tuple(seg.items())) for o, seg in snapshot.items())

    def personalise(card: CardRuntime) -> None:
        for owner, values in items:
            for name, value in values:
                card.nvm.write(owner, name, value)
        card.atr = atr

    return card_target(os.fspath(path), personalise, **kw)  # type: ignore[arg-type]


def reader_target(
    reader: Reader,
    aids: Sequence[bytes],
    *,
    name: str = "reader",
    max_ms: float = 5000.0,
) -> CardTarget:
    """A card in a real reader: the applets are named by AID (nothing can list them)."""
    applets = tuple(applet_target(aid) for aid in aids)
    return CardTarget(name, None, applets, max_ms=max_ms, reader=reader)
