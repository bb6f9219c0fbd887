"""The corpus: command sequences to mutate from, kept across campaigns in a directory.

A corpus directory holds scripts (`*.apdu`, the `cardemu run` format), trace
files (`*.jsonl`, as `--trace-file` writes them) and plain hex files (`*.hex`,
one APDU a line). The fuzzer reads them all at start and writes every input
that reached new code as a small script, named by its hash, with `# applet:` and
`# state:` comment lines saying where it was found.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("cardemu.fuzz")

_META = re.compile(r"^#\s*(applet|state):\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """A command sequence, with the applet and state it was found in (if known)."""

    apdus: tuple[bytes, ...]
    applet: str | None = None
    state: str | None = None
    source: str = ""

    def digest(self) -> str:
        h = hashlib.sha1(usedforsecurity=False)
        for a in self.apdus:
            h.update(len(a).to_bytes(3, "big") + a)
        return h.hexdigest()[:16]


class Corpus:
    """Entries by applet, loaded from and saved to an optional directory.

    Args:
        directory: where to read entries from and save new ones (created if absent).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.entries: list[Entry] = []
        self._seen: set[tuple[bytes, ...]] = set()
        self._by_applet: dict[str | None, list[Entry]] = {}
        if self.directory is not None and self.directory.is_dir():
            self.load(self.directory)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: Entry, *, save: bool = False) -> bool:
        """Keep an entry (once); write it to the directory if `save`. True if new."""
        if not entry.apdus or entry.apdus in self._seen:
            return False
        self._seen.add(entry.apdus)
        self.entries.append(entry)
        self._by_applet.setdefault(entry.applet, []).append(entry)
        if save and self.directory is not None:
            self._write(entry)
        return True

    def for_applet(self, name: str) -> list[Entry]:
        """Entries found under this applet, then those found under none."""
        return self._by_applet.get(name, []) + self._by_applet.get(None, [])

    # -- files -------------------------------------------------------------------------------

    def _write(self, entry: Entry) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = ["# cardemu fuzz corpus entry"]
        if entry.applet:
            lines.append(f"# applet: {entry.applet}")
        if entry.state:
            lines.append(f"# state: {entry.state}")
        lines.extend(a.hex().upper() for a in entry.apdus)
        path = self.directory / f"{entry.digest()}.apdu"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def load(self, directory: Path) -> int:
        """Read every script, trace and hex file of `directory`; the number of entries added."""
        n = 0
        for path in sorted(directory.iterdir()):
            try:
                entries = list(read_file(path))
            except (OSError, ValueError, UnicodeDecodeError) as e:
                log.warning("corpus: skipping %s: %s", path, e)
                continue
            for entry in entries:
                n += self.add(entry)
        return n


def read_file(path: Path) -> Iterable[Entry]:
    """The entries of one corpus file (none for a file of another kind).

    Raises:
        ValueError: a script or trace that does not parse.
    """
    suffix = path.suffix.lower()
    if suffix == ".apdu":
        text = path.read_text(encoding="utf-8")
        meta: dict[str, str] = {m.group(1): m.group(2) for m in _META.finditer(text)}
        apdus = script_commands(text, str(path))
        if apdus:
            yield Entry(tuple(apdus), meta.get("applet"), meta.get("state"), str(path))
    elif suffix == ".jsonl":
        from host.tracefile import read_trace

        trace = read_trace(path)
        apdus = [ex.command for ex in trace.exchanges if ex.command]
        if apdus:
            yield Entry(tuple(apdus), None, None, str(path))
    elif suffix == ".hex":
        from host.hexutil import parse_hex

        apdus = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                apdus.append(parse_hex(line))
        if apdus:
            yield Entry(tuple(apdus), None, None, str(path))


def script_commands(text: str, source: str = "script") -> list[bytes]:
    """The literal command APDUs of a script (commands using variables are left out).

    Raises:
        ValueError: the script does not parse.
    """
    from host.script import Command, ScriptSyntaxError, parse_script

    try:
        script = parse_script(text, source=source, allow_short=True)
    except ScriptSyntaxError as e:
        raise ValueError(str(e)) from None
    out = []
    for step in script.steps:
        if isinstance(step, Command):
            try:
                out.append(step.build({}))
            except KeyError:
                continue
    return out
