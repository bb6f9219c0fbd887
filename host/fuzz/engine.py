"""The campaign loop: episodes of generated commands under the oracles, findings minimised.

A campaign is a run of episodes. Each episode takes a fresh card (rebuilt from
its target with the card seed, so that it can be cloned and replayed), puts
one applet in focus, selects it, enters one of its states, and sends it a few
dozen commands from `InputGenerator`, now and then resetting the card,
re-entering a state, selecting another applet, or tearing a command at a
random one of its persistent writes. Every step goes through `Checker`. An
input that reaches new lines or arcs of the applets is kept in the corpus.

With `asn1_share` (the `asn1` engine), most inputs are valid DER messages of
the applet (the ISD-R's ES10 requests) mutated as TLV trees (`host.fuzz.der`)
and carried in STORE DATA blocks. Every command of an in-process card runs
under `host.fuzz.watchdog`: one still running after `hang_ms`, or growing the
process by more than `memory_mb`, is interrupted, the card power-cycled and the
episode ended, and the hang reported like any other violation.

A violation is minimised (`minimise`: delta debugging over the episode's
events, then each command made shorter and plainer) as long as the same
oracle still reports the same thing, and saved as a script, a trace and, when
no preset rebuilds the card, a card image.

One `random.Random(seed)` drives every choice, so a seed reproduces a campaign
(the run digest says so), unless a budget in seconds cut it at another point.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from card.apdu import ApduFormatError, CommandApdu
from host.fuzz.corpus import Corpus, Entry
from host.fuzz.coverage import Coverage
from host.fuzz.generators import InputGenerator
from host.fuzz.oracles import (
    ALL_ORACLES,
    DETERMINISM,
    INTROSPECTIVE,
    RESPONSE_TIME,
    Checker,
    Violation,
)
from host.fuzz.report import (
    AppletStats,
    CampaignReport,
    Finding,
    Progress,
    RunDigest,
    save_finding,
)
from host.fuzz.session import Episode, Event, Reset, Send, Step, Tear
from host.fuzz.targets import SELECTED, AppletTarget, CardTarget, CommandWrapper
from host.fuzz.watchdog import peak_rss, rss, ticking

log = logging.getLogger("cardemu.fuzz")


@dataclass(frozen=True)
class FuzzConfig:
    """How a campaign runs.

    Attributes:
        seed: drives every choice of the campaign.
        card_seed: the card's RNG seed (default: `seed`).
        budget: stop after this many APDUs (None: no limit).
        seconds: stop after this much time (None: no limit).
        oracles: the oracles to check.
        coverage: use line/arc coverage as feedback (in-process cards).
        tear_rate: the share of commands seen writing that are sent with a tear.
        determinism_every: replay every n-th episode on a rebuilt card (0: never).
        episode_steps: the most commands in one episode after its set-up.
        max_ms: the response-time bound (None: the target's).
        corpus_dir: corpus to read, and to add inputs reaching new code to.
        findings_dir: where findings are saved (None: not saved).
        minimise: minimise findings.
        minimise_seconds: time allowed to minimise one finding.
        max_findings: stop minimising after this many distinct findings.
        asn1_share: the share of inputs from the ASN.1 source (mutated DER trees, for
            applets that take DER messages); the `asn1` engine is this at 0.9, on
            those applets only.
        hang_ms: a command still running after this long is interrupted and reported
            as a hang (None: `default_hang_ms`, three times the response-time bound and
            2 s at least).
        memory_mb: a command growing the process by more than this is interrupted
            and reported (None: no bound).
    """

    seed: int = 0
    card_seed: int | None = None
    budget: int | None = 10_000
    seconds: float | None = None
    oracles: frozenset[str] = ALL_ORACLES
    coverage: bool = True
    tear_rate: float = 0.25
    determinism_every: int = 16
    episode_steps: int = 64
    max_ms: float | None = None
    corpus_dir: Path | None = None
    findings_dir: Path | None = None
    minimise: bool = True
    minimise_seconds: float = 30.0
    max_findings: int = 20
    asn1_share: float = 0.0
    hang_ms: float | None = None
    memory_mb: float | None = 512.0

    @property
    def the_card_seed(self) -> int:
        return self.seed if self.card_seed is None else self.card_seed


@contextmanager
def quiet_card_logs() -> Iterator[None]:
    """Silence the card's own error logs: the oracles report what matters, once."""
    logger = logging.getLogger("cardemu.card")
    old = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(old)


def coverage_for(target: CardTarget) -> Coverage:
    files: list[str] = []
    for a in target.applets:
        files.extend(a.coverage_files())
    return Coverage(files)


class Fuzzer:
    """One campaign on one target.

    Args:
        target: the card.
        config: how to run.
        progress: shows progress on a TTY (None: no progress).
    """

    def __init__(
        self, target: CardTarget, config: FuzzConfig | None = None, progress: Progress | None = None
    ) -> None:
        if not target.applets:
            raise ValueError(f"{target.name} has no applet to fuzz")
        config = config or FuzzConfig()
        if config.asn1_share >= ASN1_ENGINE_SHARE:
            chosen = tuple(a for a in target.applets if a.der_seeds)
            if not chosen:
                raise ValueError(f"no applet of {target.name} takes DER messages (ASN.1 engine)")
            target = replace(target, applets=chosen, all_applets=target.card_applets)
        if target.in_process:
            hang = config.hang_ms if config.hang_ms is not None else default_hang_ms(target)
            target = replace(target, hang_ms=hang, memory_mb=config.memory_mb)
        self.target = target
        self.config = config
        self.progress = progress
        oracles = self.config.oracles
        if not target.in_process:
            oracles = oracles - INTROSPECTIVE
        self.oracles = frozenset(oracles)
        self.rng = random.Random(self.config.seed)
        self.corpus = Corpus(self.config.corpus_dir)
        self.gen = InputGenerator(
            self.rng, self.corpus, target.applets, asn1_share=self.config.asn1_share
        )
        self.coverage = coverage_for(target) if self.config.coverage and target.in_process else None
        self.stats = {a.name: AppletStats(a.name, a.aid) for a in target.applets}
        self.findings: list[Finding] = []
        self._seen: dict[tuple[str, str], Finding] = {}
        self._writers: set[tuple[str, int, int] | None] = set()
        self._verdicts: dict[tuple[str, bytes, bytes, bytes], bool] = {}
        #: the session a state's set-up opened (it wraps commands), until it ends
        self._session: CommandWrapper | None = None
        #: slow answers that were not slow again on a replay (not findings)
        self.unconfirmed = 0
        self.apdus = 0
        self._paused = 0.0
        self._digest = RunDigest()
        self._started = 0.0
        self.atr = b""

    # -- the loop --------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started - self._paused

    def _done(self) -> bool:
        c = self.config
        if c.budget is not None and self.apdus >= c.budget:
            return True
        return c.seconds is not None and self._elapsed() >= c.seconds

    def run(self) -> CampaignReport:
        """Run the campaign; the figures and findings."""
        c = self.config
        report = CampaignReport(
            self.target.name,
            c.seed,
            "asn1" if c.asn1_share >= ASN1_ENGINE_SHARE else "random",
            tuple(sorted(self.oracles)),
            self.coverage is not None,
            list(self.stats.values()),
        )
        self._started = time.perf_counter()
        applets = self.target.applets
        with quiet_card_logs(), ticking():
            try:
                self._warm_up()
                report.rss_start = rss()
                while not self._done():
                    focus = applets[report.episodes % len(applets)]
                    t0 = time.perf_counter()
                    paused = self._paused
                    self._episode(focus, report)
                    self.stats[focus.name].seconds += (
                        time.perf_counter() - t0 - (self._paused - paused)
                    )
                    report.episodes += 1
            except KeyboardInterrupt:
                # Ctrl-C ends the campaign, not the process: the report of what ran
                # so far and the findings already saved still come out.
                report.interrupted = True
        report.apdus = self.apdus
        report.seconds = self._elapsed()
        report.rss_end = rss()
        report.rss_peak = peak_rss()
        report.findings = self.findings
        report.corpus = len(self.corpus)
        report.unconfirmed = self.unconfirmed
        report.digest = self._digest.hexdigest()
        report.counted = c.seconds is None and not report.interrupted
        for f in self.findings:
            if f.applet in self.stats:
                self.stats[f.applet].findings += 1
        if self.coverage is not None:
            for a in applets:
                st = self.stats[a.name]
                st.lines_covered, st.lines_total, st.arcs = self.coverage.summary(
                    a.coverage_files()
                )
        if self.progress is not None:
            self.progress.done()
        return report

    def _warm_up(self) -> None:
        warm_up(self.target, self.config.the_card_seed)

    def _episode(self, focus: AppletTarget, report: CampaignReport) -> None:
        c = self.config
        rng = self.rng
        ep = Episode(self.target, c.the_card_seed, coverage=self.coverage)
        self.atr = ep.atr
        checker = Checker(
            ep,
            oracles=self.oracles,
            max_ms=c.max_ms,
            rng=random.Random(rng.getrandbits(32)),
            verdicts=self._verdicts,
        )
        st = self.stats[focus.name]
        self.gen.pending.clear()
        state = self._enter(checker, focus, rng.choice(focus.state_names), st)
        others = [a for a in self.target.applets if a is not focus]
        tears = self.target.in_process and c.tear_rate > 0
        hung = False
        for _ in range(rng.randint(8, c.episode_steps)):
            if self._done():
                break
            # The rest of a message split over several commands goes first.
            r = 1.0 if self.gen.pending else rng.random()
            if r < 0.015:
                self._step(checker, Reset(), focus, st)
                state = self._enter(checker, focus, SELECTED, st)
            elif r < 0.04:
                state = self._enter(checker, focus, rng.choice(focus.state_names), st)
            elif r < 0.05 and others:
                self._session = None
                self._step(checker, Send(rng.choice(others).select_command), focus, st)
                state = "other-selected"
            else:
                last = ep.steps[-1] if ep.steps and not self.gen.pending else None
                follow = follow_up(last, rng) if last is not None and rng.random() < 0.5 else None
                if follow is not None:
                    apdu, kind = follow, "follow-up"
                else:
                    apdu, kind = self.gen.next(focus, state)
                    if kind != "asn1":
                        apdu = self._wrap(apdu)
                if len(apdu) < 4 and not self.target.in_process:
                    # Through PC/SC a command under 4 bytes reaches vpcd as a control
                    # code and hangs the call: a real card gets a header at least.
                    apdu += bytes(4 - len(apdu))
                report.kinds[kind] += 1
                # Tearing a command that writes nothing tells nothing and costs a clone:
                # tear only commands (applet, class, INS) seen writing.
                writer = (focus.name, apdu[0] & 0x80, apdu[1]) if len(apdu) > 1 else None
                if tears and writer in self._writers and rng.random() < c.tear_rate:
                    step = self._step(checker, Tear(apdu, -1), focus, st)
                    if isinstance(step.event, Tear):
                        report.tears += 1
                        self._session = None
                        state = SELECTED
                        self._step(checker, Send(focus.select_command), focus, st)
                else:
                    self._step(checker, Send(apdu), focus, st)
                    if checker.last_writes and writer is not None:
                        self._writers.add(writer)
                if ep.steps and ep.steps[-1].interrupted is not None:
                    # The card was power-cycled; replaying the hang in every later clone
                    # (tears, determinism) would cost the bound again and again.
                    hung = True
                    break
                if self.coverage is not None and self.coverage.take_new():
                    self.corpus.add(
                        Entry((apdu,), focus.name, state), save=c.corpus_dir is not None
                    )
            if self.progress is not None:
                self._show_progress()
        every = c.determinism_every
        if (
            every
            and not hung
            and DETERMINISM in self.oracles
            and report.episodes % every == every - 1
        ):
            for v in checker.replay_check():
                self._found(v, ep, focus)

    def _wrap(self, apdu: bytes) -> bytes:
        """Most commands of the proprietary class go through the state's session (a secure
        channel's C-MAC...), as a host would send them; the rest go as they are."""
        session = self._session
        if session is None or not apdu or not apdu[0] & 0x80 or self.rng.random() >= 0.85:
            return apdu
        try:
            return session.wrap_command(apdu)
        except Exception:  # noqa: BLE001 - a command the session cannot wrap goes raw
            return apdu

    def _enter(self, checker: Checker, applet: AppletTarget, state: str, st: AppletStats) -> str:
        """Select the applet and run a state's set-up; the state reached."""
        self._session = None
        step = self._step(checker, Send(applet.select_command), applet, st)
        if step.sw is None or not _ok(step.sw):
            return "unselected"
        spec = applet.state(state)
        if spec is None:
            return SELECTED
        if callable(spec.setup):

            def send(apdu: bytes) -> bytes:
                s = self._step(checker, Send(apdu), applet, st)
                return s.response or b""

            try:
                session = spec.setup(send)
            except Exception as e:  # noqa: BLE001 - a set-up that fails leaves the state unreached
                log.debug("state %s of %s not reached: %s", state, applet.name, e)
                return SELECTED
            if isinstance(session, CommandWrapper):
                self._session = session
        else:
            for apdu in spec.setup:
                s = self._step(checker, Send(apdu), applet, st)
                if s.sw is None or not _ok(s.sw):
                    return SELECTED
        st.states[state] += 1
        return state

    def _step(self, checker: Checker, event: Event, focus: AppletTarget, st: AppletStats) -> Step:
        if isinstance(event, Tear):
            step, violations = checker.tear(event.apdu)
        else:
            step, violations = checker.apply(event)
        if not isinstance(event, Reset):
            self.apdus += 1
            st.apdus += 1
            sw = step.sw
            if sw is not None:
                st.sws[sw] += 1
        self._digest.add(step)
        for v in violations:
            self._found(v, checker.ep, focus)
        return step

    def _show_progress(self) -> None:
        assert self.progress is not None
        covered = total = 0
        if self.coverage is not None:
            covered = len(self.coverage.lines)
            if not hasattr(self, "_total_lines"):
                self._total_lines = sum(
                    len(self.coverage.total_lines(f)) for f in self.coverage.files
                )
            total = self._total_lines
        self.progress.update(self.apdus, self._elapsed(), covered, total, len(self.findings))

    # -- findings ----------------------------------------------------------------------------------

    def _found(self, v: Violation, ep: Episode, focus: AppletTarget) -> None:
        key = (v.oracle, v.key)
        seen = self._seen.get(key)
        if seen is not None:
            seen.hits += 1
            return
        c = self.config
        if len(self.findings) >= c.max_findings:
            return
        found_at = self._elapsed()
        t0 = time.perf_counter()
        events = ep.events if v.oracle == DETERMINISM else ep.events[: v.step + 1]
        steps: tuple[Step, ...] = tuple(ep.steps[: v.step + 1])
        final = v
        if v.oracle == RESPONSE_TIME and self.target.in_process:
            # A slow answer is a finding only if the same commands are slow again: a
            # first-call import or a busy machine is not the card's doing.
            with quiet_card_logs():
                again = reproduce(self.target, c.the_card_seed, events, v, max_ms=c.max_ms)
            if again is None:
                self.unconfirmed += 1
                self._paused += time.perf_counter() - t0
                return
        if c.minimise:
            with quiet_card_logs():
                got = minimise(
                    self.target,
                    c.the_card_seed,
                    events,
                    v,
                    max_ms=c.max_ms,
                    seconds=c.minimise_seconds,
                )
            if got is not None:
                steps, final = got
        finding = Finding(
            len(self.findings) + 1,
            final,
            focus.name,
            steps,
            len(events),
            self.apdus,
            seconds_before=found_at,
        )
        if self.target.in_process:
            # `cardemu run` personalises its card afresh: the script must replay there too.
            with quiet_card_logs():
                diverged = Episode(self.target, c.the_card_seed, afresh=True).replay(steps)
            if diverged is not None:
                finding.notes.append(
                    f"on a card personalised afresh, step {diverged + 1} answers otherwise: "
                    "the applet keeps state outside its persistent fields"
                )
        self.findings.append(finding)
        self._seen[key] = finding
        if c.findings_dir is not None:
            save_finding(finding, c.findings_dir, self.target, c.the_card_seed, self.atr or ep.atr)
        self._paused += time.perf_counter() - t0


def warm_up(target: CardTarget, seed: int) -> None:
    """Send each DER-taking applet one valid message, unguarded and unrecorded: what a
    first message loads once per process (a compiled ASN.1 module, ~1 s) must not count
    against the first guarded command's time bounds."""
    if not target.in_process:
        return
    plain = replace(target, hang_ms=None, memory_mb=None)
    for a in target.card_applets:
        if not a.der_seeds or a.der_wrap is None:
            continue
        ep = Episode(plain, seed)
        ep.send(a.select_command)
        for apdu in a.der_wrap(a.der_seeds[0], random.Random(0)):
            ep.send(apdu)


def default_hang_ms(target: CardTarget) -> float:
    """The hard bound of a command: three times the response-time bound, 2 s at least (a
    tight response-time bound must report slow answers, not interrupt them)."""
    return max(3 * target.max_ms, 2000.0)


#: An `asn1_share` from which the campaign is the ASN.1 engine (DER-taking applets only).
ASN1_ENGINE_SHARE = 0.5


def _ok(sw: int) -> bool:
    return sw == 0x9000 or sw >> 8 in (0x61, 0x9F)


def follow_up(last: Step, rng: random.Random) -> bytes | None:
    """What a terminal sends after 61xx / 9Fxx (GET RESPONSE) or 6Cxx (the command again
    with the exact Le), ISO/IEC 7816-3 §12.2.3 and -4 §5.3.4; sometimes with a wrong Le."""
    sw = last.sw
    ev = last.event
    if sw is None or not isinstance(ev, Send) or not ev.apdu:
        return None
    sw1, sw2 = sw >> 8, sw & 0xFF
    cla = ev.apdu[0]
    if sw1 in (0x61, 0x9F):
        le = rng.choice((sw2, sw2, 0x00, 0x01, (sw2 + 1) & 0xFF, (sw2 - 1) & 0xFF))
        # GSM class A0 keeps its class; otherwise the channel bits of the command.
        get = 0xA0 if sw1 == 0x9F else cla & 0x03 if cla & 0x40 == 0 else cla & 0x4F
        return bytes((get, 0xC0, 0x00, 0x00, le))
    if sw1 == 0x6C:
        try:
            cmd = CommandApdu.from_bytes(ev.apdu)
        except ApduFormatError:
            return None
        le = sw2 or 256
        if rng.random() < 0.25:
            le = max(1, le - 1)
        return _rebuild(cmd, le=le, extended=False) or None
    return None


# -- minimisation ---------------------------------------------------------------------------------


def reproduce(
    target: CardTarget,
    seed: int,
    events: Sequence[Event],
    violation: Violation,
    *,
    max_ms: float | None = None,
) -> tuple[Episode, Violation] | None:
    """Run `events` on a fresh card: the episode and the first violation of the same
    oracle with the same key, or None."""
    ep = Episode(target, seed)
    checker = Checker(ep, oracles={violation.oracle}, max_ms=max_ms)
    for e in events:
        _, vs = checker.apply(e)
        for v in vs:
            if v.oracle == violation.oracle and same_bug(v.key, violation.key):
                return ep, v
    if violation.oracle == DETERMINISM:
        for v in checker.replay_check():
            if v.key == violation.key:
                return ep, v
    return None


def same_bug(a: str, b: str) -> bool:
    """Whether two violation keys name the same bug. A hang's key names where the command
    was looping when the watchdog stopped it; a loop over several functions of our own
    can be stopped in any of them, so two hangs of the same instruction are the same."""
    if a.startswith("hang:") and b.startswith("hang:"):
        return a.split(":")[1] == b.split(":")[1]
    return a == b


def ddmin(items: list[Event], fails: Callable[[list[Event]], bool]) -> list[Event]:
    """Delta debugging (Zeller and Hildebrandt, 2002), complements only: a 1-minimal list
    for which `fails` still holds."""
    n = 2
    while len(items) >= 2:
        size = -(-len(items) // n)
        reduced = False
        for start in range(0, len(items), size):
            candidate = items[:start] + items[start + size :]
            if candidate and fails(candidate):
                items = candidate
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
    return items


def _weight(apdu: bytes) -> tuple[int, int]:
    return len(apdu), sum(apdu)


def plainer(apdu: bytes) -> list[bytes]:
    """Shorter or plainer forms of a command, most aggressive first."""
    out: list[bytes] = []
    try:
        cmd = CommandApdu.from_bytes(apdu)
    except ApduFormatError:
        cmd = None
    if cmd is not None:
        d = cmd.data
        variants = []
        if d:
            variants += [b"", d[: len(d) // 2], d[:-1], d[1:], bytes(len(d))]
        for data in variants:
            out.append(_rebuild(cmd, data=data))
        if cmd.le is not None:
            out.append(_rebuild(cmd, le=None))
            if cmd.le not in (1, 256):
                out.append(_rebuild(cmd, le=1))
        if cmd.extended:
            out.append(_rebuild(cmd, extended=False))
        if cmd.p1:
            out.append(bytes((cmd.cla, cmd.ins, 0, cmd.p2)) + apdu[4:])
        if cmd.p2:
            out.append(bytes((cmd.cla, cmd.ins, cmd.p1, 0)) + apdu[4:])
    if len(apdu) > 1:
        out += [apdu[: max(1, len(apdu) // 2)], apdu[:-1]]
        if len(apdu) > 4:
            out.append(apdu[:4])
    w = _weight(apdu)
    # Nothing under 4 bytes from a command that had a header: `cardemu run` refuses
    # such lines, and the script must replay there.
    floor = 4 if len(apdu) >= 4 else 1
    return [c for c in dict.fromkeys(out) if len(c) >= floor and _weight(c) < w]


def _rebuild(cmd: CommandApdu, **changes: Any) -> bytes:
    try:
        return replace(cmd, **changes).to_bytes()
    except ValueError:
        return b""


def minimise(
    target: CardTarget,
    seed: int,
    events: Sequence[Event],
    violation: Violation,
    *,
    max_ms: float | None = None,
    seconds: float = 30.0,
    max_runs: int = 5000,
) -> tuple[tuple[Step, ...], Violation] | None:
    """The smallest run of events (within the budget) that still shows the violation.

    Returns:
        The minimised episode's steps (up to the violation) and the violation as seen
        there; None if the events do not reproduce it (a timing, say).
    """
    deadline = time.monotonic() + seconds
    runs = 0

    def fails(candidate: Sequence[Event]) -> bool:
        nonlocal runs
        if runs >= max_runs or time.monotonic() > deadline:
            return False
        runs += 1
        return reproduce(target, seed, candidate, violation, max_ms=max_ms) is not None

    current = list(events)
    if not fails(current):
        return None
    current = ddmin(current, fails)
    changed = True
    while changed:
        changed = False
        for i, ev in enumerate(current):
            if isinstance(ev, Reset):
                continue
            for cand in plainer(ev.apdu):
                new = replace(ev, apdu=cand)
                trial = current[:i] + [new] + current[i + 1 :]
                if fails(trial):
                    current = trial
                    changed = True
                    break
            ev = current[i]
            if isinstance(ev, Tear) and ev.after > 0:
                trial = current[:i] + [Tear(ev.apdu, 0)] + current[i + 1 :]
                if fails(trial):
                    current = trial
                    changed = True
    current = ddmin(current, fails)
    got = reproduce(target, seed, current, violation, max_ms=max_ms)
    if got is None:
        return None
    ep, v = got
    return tuple(ep.steps[: v.step + 1] if v.oracle != DETERMINISM else ep.steps), v


# -- replaying a finding script -----------------------------------------------------------------


@dataclass
class ReplayOutcome:
    """A script replayed under the oracles."""

    steps: list[Step]
    violations: list[Violation] = field(default_factory=list)
    seed: int = 0


def script_directives(text: str) -> dict[str, str]:
    """The `# fuzz: KEY VALUE` lines of a script (tear-after excepted), as a dict."""
    out = {}
    for raw in text.splitlines():
        body = raw.strip().lstrip("#").strip()
        if raw.strip().startswith("#") and body.startswith("fuzz:"):
            words = body[5:].split(None, 1)
            if len(words) == 2 and words[0] != "tear-after":
                out[words[0]] = words[1].strip()
    return out


def script_events(text: str, source: str = "script") -> tuple[list[Event], int | None]:
    """The events of a finding script (tears from `# fuzz: tear-after K`) and its
    `# fuzz: card-seed`, if any.

    Raises:
        ValueError: the script does not parse, or uses variables.
    """
    from host.script import Command, Exit, ScriptSyntaxError, parse_script
    from host.script import Reset as ScriptReset

    tears: dict[int, int] = {}
    seed: int | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line.startswith("#"):
            continue
        body = line.lstrip("#").strip()
        if not body.startswith("fuzz:"):
            continue
        words = body[5:].split()
        if len(words) == 2 and words[0] == "tear-after":
            tears[no] = int(words[1])
        elif len(words) == 2 and words[0] == "card-seed":
            seed = int(words[1])
    try:
        script = parse_script(text, source=source, allow_short=True)
    except ScriptSyntaxError as e:
        raise ValueError(str(e)) from None
    pending = sorted(tears.items())
    events: list[Event] = []
    torn_last = False
    for step in script.steps:
        if isinstance(step, Exit):
            break
        if isinstance(step, ScriptReset):
            if torn_last:
                torn_last = False  # the power coming back after the tear
                continue
            events.append(Reset())
            continue
        torn_last = False
        if not isinstance(step, Command):
            raise ValueError(f"{source}:{step.line}: variables are not supported in fuzz scripts")
        try:
            apdu = step.build({})
        except KeyError as e:
            raise ValueError(f"{source}:{step.line}: variable {e} is not defined") from None
        after = None
        while pending and pending[0][0] < step.line:
            _, after = pending.pop(0)
        if after is not None:
            events.append(Tear(apdu, after))
            torn_last = True
        else:
            events.append(Send(apdu))
    return events, seed


def replay_events(
    target: CardTarget,
    events: Sequence[Event],
    seed: int,
    *,
    oracles: frozenset[str] = ALL_ORACLES,
    max_ms: float | None = None,
) -> ReplayOutcome:
    """Apply events to a fresh card under the oracles, collecting every violation."""
    with quiet_card_logs():
        warm_up(target, seed)
        ep = Episode(target, seed)
        checker = Checker(ep, oracles=oracles, max_ms=max_ms)
        out = ReplayOutcome(ep.steps, seed=seed)
        for e in events:
            _, vs = checker.apply(e)
            out.violations.extend(vs)
        out.violations.extend(checker.replay_check())
    return out


def replay_script(
    target: CardTarget,
    text: str,
    *,
    seed: int | None = None,
    source: str = "script",
    oracles: frozenset[str] = ALL_ORACLES,
    max_ms: float | None = None,
) -> ReplayOutcome:
    """Replay a finding script (or any literal script) on a fresh card under the oracles.

    Raises:
        ValueError: the script cannot be read as events.
    """
    events, script_seed = script_events(text, source)
    use = seed if seed is not None else (script_seed if script_seed is not None else 0)
    return replay_events(target, events, use, oracles=oracles, max_ms=max_ms)


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRow:
    """Executions per second of one applet under three set-ups."""

    applet: str
    raw: float
    oracles: float
    oracles_coverage: float
    apdus: int


def bench(target: CardTarget, apdus: int = 5000, seed: int = 0) -> list[BenchRow]:
    """Fuzz each applet for `apdus` APDUs three times: no oracles and no coverage, every
    oracle without coverage, every oracle with coverage; the APDUs/s of each."""
    rows = []
    for applet in target.applets:
        one = target.only([applet.name]) if len(target.applets) > 1 else target
        rates = []
        for oracles, cov in ((frozenset(), False), (ALL_ORACLES, False), (ALL_ORACLES, True)):
            cfg = FuzzConfig(
                seed=seed,
                budget=apdus,
                oracles=oracles,
                coverage=cov,
                tear_rate=0.25 if oracles else 0.0,
                minimise=False,
            )
            rep = Fuzzer(one, cfg).run()
            rates.append(rep.rate)
        rows.append(BenchRow(applet.name, rates[0], rates[1], rates[2], apdus))
    return rows
