"""What a campaign leaves: the figures, and for each finding a script, a trace and a card.

A finding's script is in the `cardemu run` format, one line per command with
the response it got as the expectation, so `cardemu run` replays it as it
happened. Lines starting `# fuzz:` are directives only `cardemu fuzz --replay`
reads (comments to `cardemu run`):

- `# fuzz: card-seed N`: the card's RNG seed;
- `# fuzz: preset NAME`: the preset the card was built from;
- `# fuzz: tear-after K`: the next command loses power after K persistent
  writes (the `reset` after it is the power coming back); `cardemu run` sends
  that command whole, so only `cardemu fuzz --replay` reproduces a tear.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from card.sw import describe
from host.fuzz.oracles import ORACLES, Violation
from host.fuzz.session import Reset, Send, Step, Tear
from host.fuzz.targets import CardTarget

#: Response data up to this length is written into a script's expectation in full.
EXPECT_DATA_MAX = 48


@dataclass
class Finding:
    """A violation, minimised, with where its files went.

    Attributes:
        number: 1-based, in the order found.
        violation: as seen on the minimised steps.
        applet: the applet in focus when it was found.
        steps: the minimised episode, as replayed.
        original_steps: the episode's length when it was found.
        apdus_before: APDUs the campaign had sent when it was found.
        hits: how many times the campaign saw the same violation (same oracle and key).
    """

    number: int
    violation: Violation
    applet: str
    steps: tuple[Step, ...]
    original_steps: int
    apdus_before: int = 0
    hits: int = 1
    #: campaign seconds (minimising excluded) before it was found
    seconds_before: float = 0.0
    notes: list[str] = field(default_factory=list)
    script: Path | None = None
    trace: Path | None = None
    image: Path | None = None

    @property
    def slug(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.applet)
        return f"{self.number:03d}-{self.violation.oracle}-{safe}"

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "oracle": self.violation.oracle,
            "message": self.violation.message,
            "applet": self.applet,
            "key": self.violation.key,
            "steps": len(self.steps),
            "original_steps": self.original_steps,
            "apdus_before": self.apdus_before,
            "seconds_before": round(self.seconds_before, 1),
            "hits": self.hits,
            "notes": list(self.notes),
            "script": str(self.script) if self.script else None,
            "trace": str(self.trace) if self.trace else None,
            "image": str(self.image) if self.image else None,
        }


# -- scripts and traces ---------------------------------------------------------------------------


def _expectation(resp: bytes) -> str:
    if len(resp) < 2:
        return "=*"
    if len(resp) - 2 <= EXPECT_DATA_MAX:
        return "=" + resp.hex().upper()
    return "=*" + resp[-2:].hex().upper()


def replay_commands(target: CardTarget, seed: int, script: str | None) -> list[str]:
    """How to replay a script on this target with `cardemu run` (empty if it cannot)."""
    name = script or "SCRIPT"
    if target.run_options:
        return [f"cardemu run {' '.join(target.run_options)} --seed {seed} {name}"]
    return []


def script_text(
    steps: tuple[Step, ...] | list[Step],
    target: CardTarget,
    seed: int,
    *,
    title: str = "",
    notes: tuple[str, ...] = (),
    mark: int | None = None,
    mark_text: str = "",
    image: str | None = None,
    name: str | None = None,
) -> str:
    """A `cardemu run` script of the steps, with the fuzz directives.

    Args:
        steps: the episode (events and their responses).
        target: the card it ran on.
        seed: the card's RNG seed.
        title, notes: comment lines at the top.
        mark: index of the step to point at (the violation), with `mark_text`.
        image: a saved card image to replay on, when no preset rebuilds the card.
        name: the script's file name, for the replay command in the header.
    """
    lines = []
    if title:
        lines.append(f"# {title}")
    lines.extend(f"# {n}" for n in notes)
    runs = replay_commands(target, seed, name)
    if image:
        script = name or "SCRIPT"
        runs = [f"cp {image} replay.card && cardemu run --card replay.card --seed {seed} {script}"]
    short = any(isinstance(st.event, Send | Tear) and len(st.event.apdu) < 4 for st in steps)
    if runs and not short:
        lines.append("# Replay: " + runs[0])
    elif runs:
        lines.append("# (cardemu run refuses its commands under 4 bytes: replay with Check)")
    lines.append(
        f"# Check:  cardemu fuzz {' '.join(target.run_options) or '--card ' + (image or 'IMAGE')}"
        f" --replay {name or 'SCRIPT'}   (oracles and tears)"
    )
    lines.append(f"# fuzz: card-seed {seed}")
    if len(target.run_options) == 2 and target.run_options[0] == "--preset":
        lines.append(f"# fuzz: preset {target.run_options[1]}")
    for i, step in enumerate(steps):
        ev = step.event
        if i == mark:
            lines.append(f"# >>> the violation comes next: {mark_text}")
        if isinstance(ev, Reset):
            lines.append("reset")
            continue
        if isinstance(ev, Tear):
            lines.append(f"# fuzz: tear-after {ev.after}")
            lines.append(f"{ev.apdu.hex().upper()} =*   # torn here by cardemu fuzz --replay")
            lines.append("reset")
            continue
        assert isinstance(ev, Send)
        if step.response is None:
            lines.append(f"{ev.apdu.hex().upper()}   # no response: an exception escaped")
            continue
        sw = step.sw
        meaning = f"  # {describe(sw)}" if sw is not None else ""
        lines.append(f"{ev.apdu.hex().upper()} {_expectation(step.response)}{meaning}")
    return "\n".join(lines) + "\n"


def write_trace(
    path: Path, steps: tuple[Step, ...] | list[Step], target: CardTarget, seed: int, atr: bytes
) -> None:
    """The steps as a trace file (JSON lines, `host.tracefile`), a tear as a reset."""
    from host.trace import Exchange
    from host.tracefile import TraceHeader, TraceWriter

    with TraceWriter.create(
        path, TraceHeader(f"cardemu:{target.name}", atr, seed), timing=False
    ) as w:
        for step in steps:
            ev = step.event
            if isinstance(ev, Send) and step.response is not None:
                w.exchange(Exchange(ev.apdu, step.response, step.seconds))
            elif isinstance(ev, Reset | Tear):
                w.reset(atr)


def save_finding(
    finding: Finding, directory: Path, target: CardTarget, seed: int, atr: bytes
) -> None:
    """Write the finding's script, trace (and card image, for a card no preset rebuilds)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / finding.slug
    image: str | None = None
    if not target.run_options and target.rebuildable_image():
        img = base.with_suffix(".card")
        if img.exists():
            img.unlink()
        target.save_image(img, seed)
        finding.image = img
        image = img.name
    v = finding.violation
    script = base.with_suffix(".apdu")
    notes = [
        f"oracle {v.oracle}: {ORACLES.get(v.oracle, '')}",
        v.message,
        f"found after {finding.apdus_before} APDUs ({finding.seconds_before:.1f} s); "
        f"minimised from {finding.original_steps} "
        f"to {len(finding.steps)} steps; seen {finding.hits} time(s)",
    ]
    notes.extend(finding.notes)
    notes.extend(line for line in v.detail.strip().splitlines()[-12:] if line.strip())
    script.write_text(
        script_text(
            finding.steps,
            target,
            seed,
            title=f"cardemu fuzz finding {finding.number}: {v.oracle} in {finding.applet}",
            notes=tuple(notes),
            mark=v.step,
            mark_text=v.message,
            image=image,
            name=script.name,
        ),
        encoding="utf-8",
    )
    finding.script = script
    trace = base.with_suffix(".jsonl")
    write_trace(trace, finding.steps, target, seed, atr)
    finding.trace = trace


# -- the campaign's figures ----------------------------------------------------------------------


@dataclass
class AppletStats:
    """One applet's share of a campaign."""

    name: str
    aid: bytes
    apdus: int = 0
    seconds: float = 0.0
    sws: Counter[int] = field(default_factory=Counter)
    lines_covered: int = 0
    lines_total: int = 0
    arcs: int = 0
    findings: int = 0
    states: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.apdus / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aid": self.aid.hex().upper(),
            "apdus": self.apdus,
            "apdus_per_second": round(self.rate),
            "status_words": {f"{sw:04X}": n for sw, n in sorted(self.sws.items())},
            "distinct_status_words": len(self.sws),
            "lines_covered": self.lines_covered,
            "lines_total": self.lines_total,
            "arcs": self.arcs,
            "findings": self.findings,
            "states_entered": dict(self.states),
        }


@dataclass
class CampaignReport:
    """The figures of one campaign."""

    target: str
    seed: int
    engine: str
    oracles: tuple[str, ...]
    coverage: bool
    applets: list[AppletStats]
    apdus: int = 0
    seconds: float = 0.0
    episodes: int = 0
    tears: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    corpus: int = 0
    #: slow answers not slow again when replayed (not reported as findings)
    unconfirmed: int = 0
    digest: str = ""
    #: the process's resident set at the start and the end, and its peak (bytes)
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    #: the campaign was stopped by Ctrl-C: the figures are those up to then
    interrupted: bool = False
    #: the run ended on a count (--budget), not on the clock (--time) or Ctrl-C
    counted: bool = True

    @property
    def rate(self) -> float:
        return self.apdus / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "seed": self.seed,
            "engine": self.engine,
            "oracles": list(self.oracles),
            "coverage": self.coverage,
            "apdus": self.apdus,
            "seconds": round(self.seconds, 3),
            "apdus_per_second": round(self.rate),
            "episodes": self.episodes,
            "tears": self.tears,
            "inputs": dict(self.kinds),
            "corpus": self.corpus,
            "unconfirmed_slow_answers": self.unconfirmed,
            "digest": self.digest,
            "rss_mb": {
                "start": round(self.rss_start / 2**20, 1),
                "end": round(self.rss_end / 2**20, 1),
                "peak": round(self.rss_peak / 2**20, 1),
            },
            "applets": [a.to_json() for a in self.applets],
            "findings": [f.to_json() for f in self.findings],
            "interrupted": self.interrupted,
        }

    def text(self) -> str:
        cov = "coverage on" if self.coverage else "coverage off"
        out = [
            f"cardemu fuzz: card {self.target}, seed {self.seed}, engine {self.engine}"
            + (" (interrupted: partial figures)" if self.interrupted else ""),
            f"  {self.apdus:,} APDUs in {self.seconds:.1f} s: {self.rate:,.0f} APDUs/s "
            f"({cov}, {len(self.oracles)} oracles), {self.episodes:,} episodes, "
            f"{self.tears:,} tears",
            f"  {'applet':<22} {'APDUs':>8} {'APDUs/s':>8} {'SWs':>4}  {'lines':>15} "
            f"{'arcs':>6} {'findings':>8}",
        ]
        for a in self.applets:
            if a.lines_total:
                pct = 100 * a.lines_covered / a.lines_total
                lines = f"{a.lines_covered}/{a.lines_total} {pct:3.0f}%"
            else:
                lines = "-"
            out.append(
                f"  {a.name:<22} {a.apdus:>8,} {a.rate:>8,.0f} {len(a.sws):>4}  {lines:>15} "
                f"{a.arcs:>6} {a.findings:>8}"
            )
        if self.kinds:
            out.append(
                "  inputs: " + ", ".join(f"{k} {n:,}" for k, n in sorted(self.kinds.items()))
            )
        if self.unconfirmed:
            out.append(
                f"  slow answers not slow again on replay (not findings): {self.unconfirmed}"
            )
        if self.rss_start:
            out.append(
                f"  memory: resident {self.rss_start / 2**20:.0f} MB at the start, "
                f"{self.rss_end / 2**20:.0f} MB at the end (peak {self.rss_peak / 2**20:.0f} MB)"
            )
        if not self.findings:
            out.append("  findings: none")
        else:
            out.append(f"  findings: {len(self.findings)}")
            for f in self.findings:
                where = f" -> {f.script}" if f.script else ""
                v = f.violation
                out.append(
                    f"   {f.number}. [{v.oracle}] {f.applet}: {v.message}{where} "
                    f"(after {f.apdus_before:,} APDUs, {f.seconds_before:.1f} s)"
                )
        if self.digest:
            out.append(digest_line(self.digest, self.counted, self.seed, self.apdus, "APDUs"))
        return "\n".join(out)


def digest_line(digest: str, counted: bool, seed: int, done: int, unit: str) -> str:
    """The run digest, and what reproduces it: only a run that ended on a count does.

    A run ended by the clock (--time) or by Ctrl-C stopped wherever the machine
    had got to; its first `done` steps come again with --budget and the same seed.
    """
    if counted:
        return f"  run digest {digest} (the same seed and options give the same digest)"
    return (
        f"  run digest {digest} (a timed or interrupted run is not reproduced as such: "
        f"--seed {seed} --budget {done} replays its {done:,} {unit})"
    )


class RunDigest:
    """A hash over every event and response of a campaign's episodes."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, step: Step) -> None:
        ev = step.event
        h = self._h
        if isinstance(ev, Reset):
            h.update(b"R")
        else:
            h.update(b"T" if isinstance(ev, Tear) else b"S")
            h.update(len(ev.apdu).to_bytes(3, "big") + ev.apdu)
        r = step.response or b""
        h.update(len(r).to_bytes(3, "big") + r)

    def hexdigest(self) -> str:
        return self._h.hexdigest()[:16]


class Progress:
    """A one-line progress display on a TTY (stderr); silent otherwise."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._shown = False

    def update(
        self,
        apdus: int,
        seconds: float,
        covered: int,
        total: int,
        findings: int,
        unit: str = "APDUs",
    ) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        rate = apdus / seconds if seconds > 0 else 0.0
        cov = f"lines {covered}/{total}" if total else "coverage off"
        self.stream.write(
            f"\r  {apdus:>10,} {unit}  {rate:>8,.1f}/s  {cov}  findings {findings}   "
        )
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\n")
            self.stream.flush()


def dumps(report: CampaignReport) -> str:
    return json.dumps(report.to_json(), indent=2)
