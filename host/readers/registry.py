"""Reader listing and selection: emulated cards and PC/SC readers under one index.

The readers, in this order:

1. the built-in presets as in-process cards, `cardemu:<preset>` (a fresh card
   in memory each time it is opened);
2. card images (`*.card`) in the current directory, `cardemu:<path>`;
3. the PC/SC readers pcscd knows (through pyscard, when it is installed and
   pcscd runs), by their PC/SC names.

A reader is chosen by index, or by its name, or by a case-insensitive
substring of its name (several matches is an error that names them). A name
matched whole, with or without the `cardemu:` prefix and in any case, wins
over substring matches: `-r euicc` is `cardemu:euicc`, not also
`cardemu:euicc-empty`. `cardemu:<preset>` and
`cardemu:<path>` also name cards that are not listed, e.g. an image in another
directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from card.nvm import IMAGE_APPLICATION_ID, ImageInUse, NvmError
from card.runtime import CardRuntime
from host.presets import PRESETS, new_card
from host.readers.base import Reader, ReaderError
from host.readers.inprocess import InProcessReader
from host.readers.pcsc import select_reader
from host.vpcd import VPCD_PORT

EMULATED_PREFIX = "cardemu:"
IMAGE_SUFFIX = ".card"

ReaderKind = Literal["preset", "image", "pcsc"]


class ReaderSelectionError(ReaderError):
    """A reader name or index that picks no reader, or several (the user must say which)."""


@dataclass(frozen=True)
class ReaderInfo:
    """One reader a user can pick.

    Attributes:
        name: what `cardemu readers` shows and `-r` matches.
        kind: "preset" (in-memory card), "image" (card image file) or "pcsc".
        target: the preset name, the image path, or the PC/SC reader name.
    """

    name: str
    kind: ReaderKind
    target: str

    @property
    def emulated(self) -> bool:
        return self.kind != "pcsc"


@dataclass
class Listing:
    """The readers found, and why some source gave none (e.g. pcscd not running)."""

    readers: list[ReaderInfo]
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.readers]


def preset_reader(preset: str) -> ReaderInfo:
    """The in-process card built from a preset.

    Raises:
        ReaderError: no such preset.
    """
    if preset not in PRESETS:
        raise ReaderError(f"no preset '{preset}' (presets: {', '.join(sorted(PRESETS))})")
    return ReaderInfo(f"{EMULATED_PREFIX}{preset}", "preset", preset)


def image_reader(path: str | os.PathLike[str]) -> ReaderInfo:
    """A card image file (it need not exist yet: opening it is what fails)."""
    return ReaderInfo(f"{EMULATED_PREFIX}{os.fspath(path)}", "image", os.fspath(path))


def emulated_reader(spec: str) -> ReaderInfo:
    """Resolve `cardemu:<preset>` or `cardemu:<path>` (the prefix optional).

    Raises:
        ReaderError: neither a preset nor an existing file.
    """
    target = spec[len(EMULATED_PREFIX) :] if spec.startswith(EMULATED_PREFIX) else spec
    if target in PRESETS:
        return preset_reader(target)
    if os.path.isfile(target):
        return image_reader(target)
    raise ReaderError(
        f"no card image '{target}' and no such preset (presets: {', '.join(sorted(PRESETS))})"
    )


def _pcsc_names() -> tuple[list[str], str | None]:
    try:
        from host.readers.pcsc import list_readers
    except ImportError as e:  # pragma: no cover - host.readers.pcsc imports pyscard lazily
        return [], str(e)
    try:
        return list_readers(), None
    except ReaderError as e:
        return [], f"PC/SC: {e}"


def list_readers(
    *,
    image_dir: str | os.PathLike[str] | None = ".",
    pcsc: bool = True,
    pcsc_names: Callable[[], tuple[list[str], str | None]] | None = None,
) -> Listing:
    """Every reader, numbered by position: presets, PC/SC readers, card images.

    The card images come last, so that a file appearing in the working directory
    never moves a real reader's index; a `*.card` file that is not a card image
    (empty, truncated, another program's) is left out, with a note.

    Args:
        image_dir: where to look for `*.card` images (None: do not look).
        pcsc: whether to ask pcscd.
        pcsc_names: a stand-in for pcscd's list (tests), returning (names, note).
    """
    readers = [preset_reader(p) for p in sorted(PRESETS)]
    notes: list[str] = []
    if pcsc:
        names, note = (pcsc_names or _pcsc_names)()
        readers += [ReaderInfo(n, "pcsc", n) for n in names]
        if note:
            notes.append(note)
    if image_dir is not None:
        base = Path(image_dir)
        try:
            images = sorted(p for p in base.iterdir() if p.suffix == IMAGE_SUFFIX and p.is_file())
        except OSError as e:
            images = []
            notes.append(f"card images: {e}")
        skipped = []
        for p in images:
            shown = p.name if base == Path(".") else str(p)
            if looks_like_image(p):
                readers.append(image_reader(shown))
            else:
                skipped.append(shown)
        if skipped:
            notes.append(f"not card images, left out: {', '.join(skipped)}")
    return Listing(readers, notes)


def looks_like_image(path: str | os.PathLike[str]) -> bool:
    """Whether a file's header is a card image's: SQLite, marked CEMU (or unmarked, older).

    A look at the first 100 bytes, without opening the image (it may be in use);
    opening it still checks the rest.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError:
        return False
    app_id = int.from_bytes(header[68:72], "big")
    return (
        len(header) == 100
        and header.startswith(b"SQLite format 3\x00")
        and app_id in (0, IMAGE_APPLICATION_ID)
    )


def _exact(spec: str, listing: Listing) -> ReaderInfo | None:
    """The one reader whose whole name is `spec` (any case; `cardemu:` optional), if any."""
    wanted = spec.casefold()
    found = [
        r
        for r in listing.readers
        if wanted in (r.name.casefold(), r.name.casefold().removeprefix(EMULATED_PREFIX))
    ]
    return found[0] if len(found) == 1 else None


def choose(spec: str | int | None, listing: Listing) -> ReaderInfo:
    """Pick one reader: by index, whole name, `cardemu:` name, or unique substring.

    A whole-name match (any case, with or without `cardemu:`) wins over substring
    matches. With no `spec`, the only reader is used; several is an error naming them.

    Raises:
        ReaderSelectionError: nothing matches, or several readers do (they are named).
        ReaderError: there is no reader at all; a `cardemu:` name is no card.
    """
    if isinstance(spec, str) and spec.startswith(EMULATED_PREFIX):
        for r in listing.readers:
            if r.name == spec:
                return r
        return emulated_reader(spec)
    if not listing.readers:
        raise ReaderError("no reader found")
    if isinstance(spec, str) and not spec.isdigit():
        exact = _exact(spec, listing)
        if exact is not None:
            return exact
    try:
        name = select_reader(spec, listing.names)
    except ReaderError as e:
        if str(e).startswith("no reader"):
            shown = ", ".join(f"{i}: {n}" for i, n in enumerate(listing.names))
            raise ReaderSelectionError(f"{e} (readers: {shown})") from None
        raise ReaderSelectionError(str(e)) from None
    return listing.readers[listing.names.index(name)]


TRANSPORTS = ("direct", "t0", "t1")


def spec_outgoing(card: CardRuntime) -> Callable[[bytes], bool]:
    """A T=0 card's knowledge of its own commands, from apdu_specs.

    Under T=0 the card must tell from the 5-byte header alone whether P3 is Le
    (case 2: it sends data) or Lc (it receives data); a real card knows its
    commands. The emulated card learns them from the specs of the applet
    selected on the command's channel, and falls back to the ISO 7816-4 case 2
    instructions for commands no spec describes.
    """
    from apdu_specs import Le, default_registry
    from card.apdu import cla_channel
    from card.transport.t0 import default_outgoing

    registry = default_registry()

    def outgoing(header: bytes) -> bool:
        selected = card.selected_aid(cla_channel(header[0]))
        for spec in registry.match(header[:4], context=selected):
            lo, hi = spec.nc_range
            if hi == 0:
                return spec.le is not Le.ABSENT
            return False
        return default_outgoing(header)

    return outgoing


class EmulatedReader(InProcessReader):
    """An in-process reader that owns its card: `close()` closes the card image.

    With transport "t0" or "t1" every APDU goes through the card's byte-level
    ISO 7816-3 engine and a terminal-side driver (TPDUs, procedure bytes, blocks),
    so the whole stack below the APDU is exercised; "direct" calls the runtime.
    """

    def __init__(self, card: CardRuntime, name: str, transport: str = "direct") -> None:
        super().__init__(card, name)
        if transport not in TRANSPORTS:
            raise ReaderError(f"unknown transport {transport!r}: choose {', '.join(TRANSPORTS)}")
        self.transport = transport
        self._wire: Reader | None = None
        if transport == "t0":
            from card.transport.t0 import T0Card
            from host.readers.t0 import T0Reader

            self._wire = T0Reader(T0Card(card, outgoing=spec_outgoing(card)), name=name)
        elif transport == "t1":
            from host.readers.t1 import T1Reader

            self._wire = T1Reader(card, stream=True, name=name)

    def connect(self) -> bytes:
        return self._wire.connect() if self._wire else super().connect()

    def reset(self) -> bytes:
        return self._wire.reset() if self._wire else super().reset()

    def transmit(self, apdu: bytes) -> bytes:
        if self._wire is None:
            return super().transmit(apdu)
        return self._wire.transmit(apdu)

    def close(self) -> None:
        self.card.close()


def open_card(info: ReaderInfo, *, seed: bytes | int | None = None) -> CardRuntime:
    """The card behind an emulated reader (a new card for a preset).

    Raises:
        ReaderError: the image is missing or unreadable.
    """
    if info.kind == "preset":
        return new_card(info.target, rng_seed=seed)
    if info.kind == "image":
        if not os.path.isfile(info.target):
            raise ReaderError(f"no card image '{info.target}'")
        try:
            return CardRuntime(info.target, rng_seed=seed, create=False)
        except NvmError as e:
            raise ReaderError(image_error(e)) from None
    raise ReaderError(f"{info.name} is not an emulated card")


def served_reader(argv: Sequence[str]) -> str | None:
    """The vpcd reader a `cardemu serve` command line puts its card in, else None."""
    args = list(argv)
    try:
        at = args.index("serve")
    except ValueError:
        return None
    if not any("cardemu" in a or "host.cli" in a for a in args[:at]):
        return None
    slot = 0
    for i, a in enumerate(args[at + 1 :], start=at + 1):
        name, eq, value = a.partition("=")
        if name in ("--slot", "--port"):
            value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            if value.isdigit():
                slot = int(value) if name == "--slot" else int(value) - VPCD_PORT
    return f"Virtual PCD 00 {slot:02d}" if 0 <= slot < 100 else "Virtual PCD"


def image_error(e: NvmError) -> str:
    """One line for a card image that cannot be opened.

    When `cardemu serve` holds the image, the line says to reach the card
    through the reader it is served in rather than through the file.
    """
    if isinstance(e, ImageInUse):
        reader = served_reader(e.argv)
        if reader is not None:
            return (
                f"{e}: it is served in reader '{reader}', reach the card through it"
                f' (cardemu send -r "{reader.removeprefix("Virtual ")}" …)'
            )
    return str(e)


def open_reader(
    info: ReaderInfo, *, seed: bytes | int | None = None, transport: str = "direct"
) -> Reader:
    """A reader for `info`, not yet connected.

    `seed` seeds an emulated card's RNG; a PC/SC card ignores it.

    Raises:
        ReaderError: the card image cannot be opened.
    """
    if info.kind == "pcsc":
        from host.readers.pcsc import PcscReader

        return PcscReader(info.target)
    return EmulatedReader(open_card(info, seed=seed), name=info.name, transport=transport)


@contextmanager
def connected(
    info: ReaderInfo, *, seed: bytes | int | None = None, transport: str = "direct"
) -> Iterator[tuple[Reader, bytes]]:
    """Open and connect a reader; yields (reader, ATR); disconnects and closes at the end."""
    reader = open_reader(info, seed=seed, transport=transport)
    try:
        atr = reader.connect()
        yield reader, atr
    finally:
        try:
            reader.disconnect()
        finally:
            if isinstance(reader, EmulatedReader):
                reader.close()


def resolve(
    spec: str | None,
    *,
    image: str | None = None,
    preset: str | None = None,
    listing: Callable[[], Listing] | None = None,
) -> ReaderInfo:
    """The reader a command should use.

    `-r SPEC` wins; otherwise `--card IMAGE`; otherwise the preset (the
    in-process demo card by default), so that commands work with no set-up.

    Raises:
        ReaderSelectionError: `spec` matches no reader or several.
        ReaderError: `image` is missing.
    """
    if spec is not None:
        if spec.startswith(EMULATED_PREFIX):
            return emulated_reader(spec)
        return choose(spec, (listing or list_readers)())
    if image is not None:
        if not os.path.isfile(image):
            raise ReaderError(f"no card image '{image}'")
        return image_reader(image)
    return preset_reader(preset or "demo")
