"""The accuracy harness behind `cardemu bio eval`: genuine and impostor comparisons on
synthetic minutiae, scored by the on-card matcher and by NIST Bozorth3 side by side.

Where each figure comes from (the report says it again):

- Error rates and the DET curve: `applets.biometric.matcher` called directly, the
  very function the card runs inside VERIFY. The score never leaves a card, so a
  DET curve cannot be drawn through APDUs without a threshold sweep; the direct
  call is the same computation, and the APDU sample below checks it.
- The APDU sample: a seeded subset of the same genuine and impostor pairs goes
  through real VERIFY APDUs on in-process cards (one card per reference
  impression, enrolled through PUT DATA after EXTERNAL AUTHENTICATE). Each card
  decision is compared with `score >= threshold` from the direct path, and each
  VERIFY is timed end to end (`reader.transmit`). As NIST's MINEX II driver does,
  a card whose try counter runs low gets a VERIFY with its own reference (always a
  match) to restore it; those are neither timed nor counted.
- Bozorth3: the same pairs, the same quantised minutiae, through `afis`
  (`host.bio.bozorth`), or skipped with the reason.

The data: `host.bio.synthetic` by default; `EvalConfig.setting` picks a named
difficulty of the independent generator `host.bio.difficulty` (easy, medium,
hard: the outside trial's settings); `EvalConfig.data_dir` reads the user's
own minutiae
files (`host.bio.formats`: ISO/IEC 19794-2, ANSI/INCITS 378, NIST .xyt). Every
FNMR comes with its 95% Wilson interval, each FMR at a threshold also with the
interval clustered by finger (`det.clustered_fmr`: one finger is in many impostor
comparisons, so they are not independent trials); afis's MCC is a second, opt-in
reference (`host.bio.mcc`); the rates at both of the applet's documented
thresholds (FMR 1% and 0.1%) are reported.

Genuine pairs are every pair of impressions of a finger (reference = the
earlier impression); impostor pairs are a seeded sample of impressions of two
different fingers (all of them if there are fewer than asked).

A target is judged only on figures this run can resolve (ISO/IEC 19795-1: one
false match in n impostor comparisons is an FMR of 1/n, so an FMR of 1% needs
at least 100 of them); otherwise the report says "not judged" and what it needs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from applets.biometric import matcher
from applets.biometric.applet import (
    BIO_AID,
    DEFAULT_ADMIN_KEY,
    DEFAULT_THRESHOLD,
    THRESHOLD_FMR_01PCT,
    THRESHOLD_FMR_1PCT,
    BiometricApplet,
)
from applets.biometric.iso19794 import encode_minutiae
from card.runtime import CardRuntime
from host.bio import det, difficulty, formats
from host.bio.bozorth import Bozorth3, BozorthUnavailable
from host.bio.mcc import Mcc, MccUnavailable
from host.bio.session import BioSession, policy_object
from host.bio.synthetic import DEFAULT_MODEL, Dataset, Model, make_dataset
from host.readers.inprocess import InProcessReader
from host.trace import log_traffic

TARGETS = (1e-2, 1e-3, 1e-4)
REFERENCE = 0x96  # PIV's primary on-card comparison reference
EVAL_RETRY_LIMIT = 15

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvalConfig:
    fingers: int = 100
    impressions: int = 8
    seed: int = 0
    impostors: int = 20000
    apdu_sample: int = 200  # comparisons through VERIFY APDUs (about half genuine)
    threshold: int = DEFAULT_THRESHOLD
    model: Model = DEFAULT_MODEL
    bozorth: bool = True
    #: a named setting of `host.bio.difficulty` (easy/medium/hard) instead of `model`
    setting: str | None = None
    #: afis's MCC as a second reference: opt-in, it takes 1-2 s a comparison in pure Python
    mcc: bool = False
    #: a directory of the user's minutiae files, `<finger>_<impression>.<ext>` (ISO/IEC
    #: 19794-2 records, ANSI/INCITS 378 templates as .ansi/.378, NIST .xyt); replaces the
    #: generator
    data_dir: str | None = None


@dataclass
class MatcherResult:
    name: str
    source: str
    genuine: list[float] = field(repr=False)
    impostor: list[float] = field(repr=False)
    rates: det.Rates | None = None
    compare_ms: float = 0.0  # mean time of one comparison (direct call)

    def to_json(self) -> dict[str, Any]:
        r = self.rates
        assert r is not None
        return {
            "name": self.name,
            "source": self.source,
            "eer": r.eer,
            "eer_threshold": r.eer_threshold,
            "points": [
                {
                    "target_fmr": p.target_fmr,
                    "fnmr": p.fnmr,
                    "fnmr_ci95": det.fnmr_interval(p.fnmr, r.genuine),
                    "fmr": p.fmr,
                    "threshold": p.threshold,
                    "resolved": p.resolved,
                }
                for p in r.points
            ],
            "mean_compare_ms": self.compare_ms,
        }


@dataclass
class ApduResult:
    comparisons: int
    genuine: int
    impostor: int
    agree: int
    disagreements: list[dict[str, Any]]
    times_ms: list[float] = field(repr=False)
    threshold: int
    blocked: int
    #: CPU time of each VERIFY (time.process_time: the card runs in this process), which a
    #: machine shared with other work does not inflate the way it does the wall time
    cpu_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def cpu_median_ms(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else 0.0

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.times_ms) if self.times_ms else 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else 0.0

    @property
    def p99_ms(self) -> float:
        return _percentile(self.times_ms, 0.99)

    def to_json(self) -> dict[str, Any]:
        return {
            "comparisons": self.comparisons,
            "genuine": self.genuine,
            "impostor": self.impostor,
            "decisions_agree": self.agree,
            "disagreements": self.disagreements,
            "threshold": self.threshold,
            "verify_ms_mean": self.mean_ms,
            "verify_ms_median": self.median_ms,
            "verify_cpu_ms_median": self.cpu_median_ms,
            "verify_cpu_ms_max": max(self.cpu_ms, default=0.0),
            "verify_ms_p99": self.p99_ms,
            "verify_ms_max": max(self.times_ms, default=0.0),
            "blocked": self.blocked,
        }


@dataclass
class EvalResult:
    config: EvalConfig
    genuine_pairs: int
    impostor_pairs: int
    minutiae_mean: float
    ours: MatcherResult
    bozorth: MatcherResult | None
    bozorth_skipped: str | None
    apdu: ApduResult
    card_threshold_fmr: float
    card_threshold_fnmr: float
    bozorth_library: str | None = None
    mcc: MatcherResult | None = None
    mcc_skipped: str | None = None
    #: (FMR, FNMR) of the direct scores at each of the applet's documented thresholds
    shipped: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    #: the FMR at the card's threshold ("card") and at each shipped one (the keys of
    #: `shipped`) with its interval clustered by finger (`det.clustered_fmr`)
    clustered: dict[str, det.ClusteredRate] = field(default_factory=dict)

    def targets(self) -> dict[str, bool | None]:
        """The targets `report` judges, each True/False (None when it cannot be judged)."""
        return {k: v for k, (v, _why) in self._judge().items()}

    def unjudged(self) -> dict[str, str]:
        """Why each target `targets` leaves None cannot be judged."""
        return {k: why for k, (v, why) in self._judge().items() if v is None and why}

    def _judge(self) -> dict[str, tuple[bool | None, str | None]]:
        ours = self.ours.rates
        assert ours is not None
        at1 = ours.points[0]
        fnmr_1pct: tuple[bool | None, str | None] = (
            (at1.fnmr <= 0.01, None) if at1.resolved else (None, _need(at1))
        )
        better: tuple[bool | None, str | None] = (None, "Bozorth3 not run")
        if self.bozorth is not None and self.bozorth.rates is not None:
            b = self.bozorth.rates
            both = list(zip(ours.points, b.points, strict=True))
            # A resolved point (or the EER) that is worse settles it; an unresolved one
            # cannot count either way.
            if ours.eer >= b.eer or any(p.fnmr > q.fnmr for p, q in both if p.resolved):
                better = (False, None)
            else:
                pending = [p for p, q in both if not (p.resolved and q.resolved)]
                better = (None, _need(*pending)) if pending else (True, None)
        at01 = ours.points[1]
        # Issue 24's targets on the difficulty generator's data.
        le5: tuple[bool | None, str | None] = (
            (at1.fnmr <= 0.05, None) if at1.resolved else (None, _need(at1))
        )
        le10: tuple[bool | None, str | None] = (
            (at01.fnmr <= 0.10, None) if at01.resolved else (None, _need(at01))
        )
        a = self.apdu
        fast: tuple[bool | None, str | None]
        agree: tuple[bool | None, str | None]
        fast10: tuple[bool | None, str | None]
        if a.comparisons:
            fast10 = (a.median_ms < 10.0, None)
            fast = (a.mean_ms < 50.0 and a.p99_ms < 50.0, None)
            agree = (a.agree == a.comparisons, None)
        else:
            fast = agree = fast10 = (None, "no VERIFY APDUs in this run (--apdu-sample 0)")
        return {
            "fnmr_le_1pct_at_fmr_1pct": fnmr_1pct,
            "better_than_bozorth3": better,
            "verify_under_50ms": fast,
            "apdu_decisions_agree": agree,
            "fnmr_le_5pct_at_fmr_1pct": le5,
            "fnmr_le_10pct_at_fmr_01pct": le10,
            "verify_median_under_10ms": fast10,
        }

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "data": {
                "synthetic": True,
                "setting": c.setting,
                "fingers": c.fingers,
                "impressions": c.impressions,
                "seed": c.seed,
                "genuine_comparisons": self.genuine_pairs,
                "impostor_comparisons": self.impostor_pairs,
                "fmr_resolution": 1.0 / self.impostor_pairs if self.impostor_pairs else None,
                "minutiae_mean": self.minutiae_mean,
                "model": {k: getattr(c.model, k) for k in c.model.__dataclass_fields__},
            },
            "matchers": [self.ours.to_json()]
            + [m.to_json() for m in (self.bozorth, self.mcc) if m is not None],
            "bozorth3_skipped": self.bozorth_skipped,
            "bozorth3_library": self.bozorth_library,
            "mcc_skipped": self.mcc_skipped,
            "apdu_path": self.apdu.to_json(),
            "card_threshold": {
                "threshold": c.threshold,
                "fmr": self.card_threshold_fmr,
                "fmr_ci95": det.fnmr_interval(self.card_threshold_fmr, self.impostor_pairs),
                "fnmr": self.card_threshold_fnmr,
                "fnmr_ci95": det.fnmr_interval(self.card_threshold_fnmr, self.genuine_pairs),
                **_clustered_json(self.clustered.get("card")),
            },
            "shipped_thresholds": {
                k: {"threshold": t, "fmr": a, "fnmr": b, **_clustered_json(self.clustered.get(k))}
                for k, (t, a, b) in self.shipped.items()
            },
            "targets": self.targets(),
            "targets_not_judged": self.unjudged(),
        }


def _clustered_json(c: det.ClusteredRate | None) -> dict[str, Any]:
    """The keys `det.clustered_fmr` adds to a threshold's entry (none when not computed)."""
    if c is None:
        return {}
    return {
        "fmr_ci95_clustered": c.interval,
        "fmr_design_effect": c.design_effect,
        "fmr_effective_comparisons": c.effective_trials,
        "fmr_false_matches": c.errors,
        "fmr_fingers": c.groups,
    }


def _need(*points: det.OperatingPoint) -> str:
    """What an unresolved operating point needs: 1/FMR impostor comparisons (the most)."""
    n = max(math.ceil(1.0 / p.target_fmr - 1e-9) for p in points)
    return f"need ≥ {n} impostor comparisons"


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return s[k]


def pairs(
    fingers: int, impressions: int, impostors: int, seed: int
) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]:
    """(genuine, impostor) pairs as (ref finger, ref impression, probe finger, probe impression)."""
    genuine = [
        (f, i, f, j)
        for f in range(fingers)
        for i in range(impressions)
        for j in range(i + 1, impressions)
    ]
    total = fingers * (fingers - 1) * impressions * impressions
    rng = random.Random(f"impostors:{seed}")
    if impostors >= total:
        impostor = [
            (a, i, b, j)
            for a in range(fingers)
            for b in range(fingers)
            if a != b
            for i in range(impressions)
            for j in range(impressions)
        ]
    else:
        chosen: set[tuple[int, int, int, int]] = set()
        while len(chosen) < impostors:
            a, b = rng.sample(range(fingers), 2)
            chosen.add((a, rng.randrange(impressions), b, rng.randrange(impressions)))
        impostor = sorted(chosen)
    return genuine, impostor


def _score_all(
    prepared: Sequence[Sequence[Any]],
    fn: Callable[[Any, Any], float],
    genuine: Sequence[tuple[int, int, int, int]],
    impostor: Sequence[tuple[int, int, int, int]],
    progress: Progress | None,
    label: str,
) -> tuple[list[float], list[float], float]:
    out: list[list[float]] = [[], []]
    total = len(genuine) + len(impostor)
    done = 0
    t0 = time.perf_counter()
    for k, group in enumerate((genuine, impostor)):
        for a, i, b, j in group:
            out[k].append(fn(prepared[a][i], prepared[b][j]))
            done += 1
            if progress is not None and done % 500 == 0:
                progress(label, done, total)
    elapsed = time.perf_counter() - t0
    return out[0], out[1], elapsed * 1000 / max(1, total)


def _apdu_path(
    ds: Dataset,
    templates: Sequence[Sequence[bytes]],
    genuine: Sequence[tuple[int, int, int, int]],
    impostor: Sequence[tuple[int, int, int, int]],
    direct: dict[tuple[int, int, int, int], float],
    config: EvalConfig,
    progress: Progress | None,
) -> ApduResult:
    rng = random.Random(f"apdu:{config.seed}")
    n_gen = min(len(genuine), config.apdu_sample // 2)
    n_imp = min(len(impostor), config.apdu_sample - n_gen)
    sample = [(p, True) for p in rng.sample(list(genuine), n_gen)]
    sample += [(p, False) for p in rng.sample(list(impostor), n_imp)]
    sample.sort()  # group by reference, so each card is built once
    cards: dict[tuple[int, int], tuple[BioSession, int]] = {}
    times: list[float] = []
    cpu: list[float] = []
    agree = 0
    blocked = 0
    disagreements: list[dict[str, Any]] = []
    params = policy_object(retry_limit=EVAL_RETRY_LIMIT, threshold=config.threshold)
    for k, ((a, i, b, j), is_genuine) in enumerate(sample):
        key = (a, i)
        if key not in cards:
            rt = CardRuntime(rng_seed=a * 1000 + i)
            rt.install(BiometricApplet, BIO_AID, params)
            session = BioSession(log_traffic(InProcessReader(rt)))
            session.select()
            session.authenticate_admin(DEFAULT_ADMIN_KEY)
            session.enrol(REFERENCE, templates[a][i])
            cards = {key: (session, EVAL_RETRY_LIMIT)}  # one card alive at a time
        session, tries = cards[key]
        if tries <= 2:
            session.verify(REFERENCE, templates[a][i])  # MINEX II's "perfect verify"
            tries = EVAL_RETRY_LIMIT
        apdu = session.verify_apdu(REFERENCE, templates[b][j])
        c0 = time.process_time()
        t0 = time.perf_counter()
        resp = session.reader.transmit(apdu)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        sw = int.from_bytes(resp[-2:], "big")
        matched = sw == 0x9000
        if sw == 0x6983:
            blocked += 1
        tries = EVAL_RETRY_LIMIT if matched else tries - 1
        cards[key] = (session, tries)
        expected = direct[(a, i, b, j)] >= config.threshold
        if (sw == 0x9000 or sw >> 4 == 0x63C) and matched == expected:
            agree += 1
        else:
            disagreements.append(
                {
                    "pair": [a, i, b, j],
                    "genuine": is_genuine,
                    "sw": f"{sw:04X}",
                    "direct_match": expected,
                }
            )
        if progress is not None and (k + 1) % 50 == 0:
            progress("VERIFY APDUs", k + 1, len(sample))
    return ApduResult(
        len(sample), n_gen, n_imp, agree, disagreements, times, config.threshold, blocked, cpu
    )


MAX_FILE_BYTES = 1 << 20
MAX_FILES = 20000


def load_directory(path: str, impressions: int) -> Dataset:
    """The user's minutiae files as a dataset: `<finger>_<impression>.<ext>`, grouped by
    finger, each finger's first `impressions` files (by name); fingers with fewer are left
    out. Every file goes through `host.bio.formats` (bounded parsing).

    Raises:
        ValueError: fewer than 2 usable fingers, too many or too large files, or a file
            that is not a minutiae record (its name in the message).
    """
    names = sorted(os.listdir(path))
    if len(names) > MAX_FILES:
        raise ValueError(f"{len(names)} files: at most {MAX_FILES}")
    groups: dict[str, list[str]] = {}
    for name in names:
        stem = name.rsplit(".", 1)[0]
        finger, sep, _ = stem.rpartition("_")
        full = os.path.join(path, name)
        if sep and os.path.isfile(full):
            groups.setdefault(finger, []).append(full)
    imps = []
    for finger in sorted(groups):
        files = groups[finger][:impressions]
        if len(files) < impressions:
            continue
        sets = []
        for f in files:
            if os.path.getsize(f) > MAX_FILE_BYTES:
                raise ValueError(f"{f}: larger than {MAX_FILE_BYTES} bytes")
            with open(f, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
            try:
                sets.append(formats.parse_file(f, data, matcher.MAX_MINUTIAE))
            except ValueError as e:
                raise ValueError(f"{f}: {e}") from None
        imps.append(tuple(sets))
    if len(imps) < 2:
        raise ValueError(f"{path}: fewer than 2 fingers with {impressions} impressions each")
    return Dataset(0, DEFAULT_MODEL, (), tuple(imps))


def run(config: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Generate the data, score it both ways, run the APDU sample; no printing."""
    if config.fingers < 2 or config.impressions < 2:
        raise ValueError("need at least 2 fingers and 2 impressions")
    if config.data_dir is not None:
        ds = load_directory(config.data_dir, config.impressions)
        config = dataclasses.replace(config, fingers=len(ds.impressions))
    elif config.setting is not None:
        if config.setting not in difficulty.SETTINGS:
            raise ValueError(f"unknown setting {config.setting!r}")
        ds = difficulty.make_dataset(
            config.fingers, config.impressions, config.seed, difficulty.SETTINGS[config.setting]
        )
    else:
        ds = make_dataset(config.fingers, config.impressions, config.seed, config.model)
    templates = [[encode_minutiae(imp) for imp in f] for f in ds.impressions]
    genuine, impostor = pairs(config.fingers, config.impressions, config.impostors, config.seed)
    feats = [[matcher.extract(t) for t in f] for f in templates]
    g, i, ms = _score_all(feats, matcher.compare, genuine, impostor, progress, "on-card matcher")
    ours = MatcherResult(
        "cardemu on-card matcher",
        "applets.biometric.matcher called directly (the function VERIFY runs)",
        g,
        i,
        det.rates(g, i, TARGETS),
        ms,
    )
    direct = {p: s for p, s in zip(genuine, g, strict=True)}
    direct.update({p: s for p, s in zip(impostor, i, strict=True)})
    boz: MatcherResult | None = None
    skipped: str | None = None
    library: str | None = None
    if config.bozorth:
        try:
            bz = Bozorth3()
        except BozorthUnavailable as e:
            skipped = str(e)
        else:
            library = bz.library
            prepared = [[bz.prepare(imp) for imp in f] for f in ds.impressions]
            g2, i2, ms2 = _score_all(prepared, bz.score, genuine, impostor, progress, "Bozorth3")
            boz = MatcherResult(
                "NIST Bozorth3 (NBIS, via afis)",
                "afis libafis_lfs, same minutiae converted to 500 dpi pixels",
                g2,
                i2,
                det.rates(g2, i2, TARGETS),
                ms2,
            )
    else:
        skipped = "Bozorth3 skipped: --no-bozorth"
    mcc_result: MatcherResult | None = None
    mcc_skipped: str | None = "MCC not run (opt-in: --mcc)" if not config.mcc else None
    if config.mcc:
        try:
            ref = Mcc()
        except MccUnavailable as e:
            mcc_skipped = str(e)
        else:
            prepared = [[ref.prepare(imp) for imp in f] for f in ds.impressions]
            g3, i3, ms3 = _score_all(prepared, ref.score, genuine, impostor, progress, "MCC")
            mcc_result = MatcherResult(
                "MCC (afis.algorithms.mcc)",
                f"afis MCC, same minutiae converted to 500 dpi pixels ({ref.library})",
                g3,
                i3,
                det.rates(g3, i3, TARGETS),
                ms3,
            )
    apdu = _apdu_path(ds, templates, genuine, impostor, direct, config, progress)
    sg = det.SortedScores(g, i)
    shipped = {"fmr_1pct": THRESHOLD_FMR_1PCT, "fmr_0.1pct": THRESHOLD_FMR_01PCT}
    fingers = [(a, b) for a, _, b, _ in impostor]
    clustered = {
        name: det.clustered_fmr(i, fingers, t)
        for name, t in (("card", config.threshold), *shipped.items())
    }
    counts = [len(imp) for f in ds.impressions for imp in f]
    return EvalResult(
        config,
        len(genuine),
        len(impostor),
        statistics.fmean(counts),
        ours,
        boz,
        skipped,
        apdu,
        sg.fmr(config.threshold),
        sg.fnmr(config.threshold),
        library,
        mcc_result,
        mcc_skipped,
        {name: (t, sg.fmr(t), sg.fnmr(t)) for name, t in shipped.items()},
        clustered,
    )


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _ci(rate: float, n: int) -> str:
    lo, hi = det.fnmr_interval(rate, n)
    return f"[{100 * lo:.2f}-{100 * hi:.2f}%]"


def _clustered_ci(c: det.ClusteredRate | None) -> str:
    """ ", clustered by finger [lo-hi%] (design effect d)" for a report line, or nothing."""
    if c is None:
        return ""
    lo, hi = c.interval
    return (
        f", clustered by finger [{100 * lo:.2f}-{100 * hi:.2f}%] "
        f"(design effect {c.design_effect:.1f})"
    )


def report(result: EvalResult, png: str | None = None, png_note: str | None = None) -> list[str]:
    """The human-readable report, one line per entry."""
    c = result.config
    if c.data_dir is not None:
        head = f"USER DATA from {c.data_dir} (host.bio.formats): figures on these minutiae sets"
    else:
        head = (
            "SYNTHETIC DATA - not real fingerprints "
            + (
                f"(host.bio.difficulty, setting {c.setting}): "
                if c.setting
                else "(host.bio.synthetic): "
            )
            + "these are not figures on real fingers"
        )
    lines = [
        head,
        f"  {c.fingers} fingers x {c.impressions} impressions, seed {c.seed}; "
        f"{result.minutiae_mean:.1f} minutiae per impression on average "
        f"(card maximum {matcher.MAX_MINUTIAE})",
        f"  {result.genuine_pairs} genuine and {result.impostor_pairs} impostor comparisons "
        f"(one false match = FMR {_pct(1 / result.impostor_pairs)})",
        "",
    ]
    cols = [result.ours] + [m for m in (result.bozorth, result.mcc) if m is not None]
    header = f"  {'':<22}" + "".join(f"{m.name[:30]:>32}" for m in cols)
    lines.append(header)
    for k, target in enumerate(TARGETS):
        row = f"  {f'FNMR at FMR={100 * target:g}%':<22}"
        for m in cols:
            assert m.rates is not None
            p = m.rates.points[k]
            flag = "" if p.resolved else " (*)"
            lo, hi = det.fnmr_interval(p.fnmr, m.rates.genuine)
            cell = f"{_pct(p.fnmr)} [{100 * lo:.1f}-{100 * hi:.1f}]{flag}"
            row += f"{cell:>32}"
        lines.append(row)
    lines.append(f"  {'EER':<22}" + "".join(f"{_pct(m.rates.eer):>32}" for m in cols if m.rates))
    lines.append(
        f"  {'mean time/comparison':<22}" + "".join(f"{m.compare_ms:>29.2f} ms" for m in cols)
    )
    assert result.ours.rates is not None
    lines.append(
        "  on-card matcher thresholds: "
        + ", ".join(
            f"FMR {100 * p.target_fmr:g}% at {p.threshold}" for p in result.ours.rates.points
        )
        + f" (scale 0..{matcher.SCORE_MAX})"
    )
    if any(not p.resolved for m in cols if m.rates for p in m.rates.points):
        lines.append(
            "  (*) below the FMR resolution of this many impostor comparisons: not resolved"
        )
    lines.append("")
    lines.append(f"  Source of the rates above: {result.ours.source};")
    if result.bozorth is not None:
        lines.append(
            f"    Bozorth3: {result.bozorth.source} ({result.bozorth_library}); "
            "afis passes directions as NBIS LFS steps of 11.25 degrees"
        )
    else:
        lines.append(f"    {result.bozorth_skipped}")
    if result.mcc is not None:
        lines.append(f"    MCC: {result.mcc.source}")
    else:
        lines.append(f"    {result.mcc_skipped}")
    lines.append(
        "    [lo-hi]: 95% Wilson interval of each FNMR over the genuine comparisons "
        "and of each FMR over the impostor ones"
    )
    if result.clustered:
        lines.append(
            "      clustered by finger: the FMR's over the impostor comparisons divided by "
            "the design effect (delete-one-finger jackknife variance over the binomial: "
            "comparisons sharing a finger are not independent trials)"
        )
    a = result.apdu
    lines += [
        "",
        f"  APDU path: {a.comparisons} VERIFY APDUs ({a.genuine} genuine, {a.impostor} "
        f"impostor) on in-process cards, threshold {a.threshold}",
        f"    decisions agreeing with the direct scores: {a.agree}/{a.comparisons}"
        + (f"  DISAGREEMENTS: {a.disagreements[:5]}" if a.disagreements else ""),
        f"    time per VERIFY (reader.transmit, in-process): median {a.median_ms:.2f} ms, "
        f"mean {a.mean_ms:.2f} ms, CPU median {a.cpu_median_ms:.2f} ms "
        f"(max {max(a.cpu_ms, default=0):.2f} ms), "
        f"99th percentile {a.p99_ms:.2f} ms, max {max(a.times_ms, default=0):.2f} ms",
        f"  Card threshold {c.threshold}: FMR {_pct(result.card_threshold_fmr)} "
        f"{_ci(result.card_threshold_fmr, result.impostor_pairs)}"
        f"{_clustered_ci(result.clustered.get('card'))}, "
        f"FNMR {_pct(result.card_threshold_fnmr)} "
        f"{_ci(result.card_threshold_fnmr, result.genuine_pairs)} (direct scores)",
    ]
    for name, (thr, fmr, fnmr) in result.shipped.items():
        lines.append(
            f"  Shipped threshold {name} ({thr}): FMR {_pct(fmr)} "
            f"{_ci(fmr, result.impostor_pairs)}{_clustered_ci(result.clustered.get(name))}, "
            f"FNMR {_pct(fnmr)} "
            f"{_ci(fnmr, result.genuine_pairs)}"
        )
    if png:
        lines.append(f"  DET plot: {png}")
    elif png_note:
        lines.append(f"  {png_note}")
    lines.append("")
    t = result.targets()
    why = result.unjudged()
    names = {
        "fnmr_le_1pct_at_fmr_1pct": "FNMR <= 1% at FMR = 1%",
        "better_than_bozorth3": "better than Bozorth3 (every FNMR and the EER)",
        "verify_under_50ms": "VERIFY under 50 ms (mean and p99)",
        "apdu_decisions_agree": "APDU decisions = direct decisions",
        "fnmr_le_5pct_at_fmr_1pct": "FNMR <= 5% at FMR = 1%",
        "fnmr_le_10pct_at_fmr_01pct": "FNMR <= 10% at FMR = 0.1%",
        "verify_median_under_10ms": "VERIFY median under 10 ms",
    }
    for key, v in t.items():
        if v is None:
            verdict = f"not judged ({why[key]})" if key in why else "not judged"
        else:
            verdict = "met" if v else "NOT met"
        lines.append(f"  target {names[key]}: {verdict}")
    return lines


def plot(result: EvalResult, path: str) -> None:
    """The DET plot of both matchers (raises det.PlotUnavailable without matplotlib)."""
    c = result.config
    source = (
        f"user minutiae {c.data_dir}"
        if c.data_dir
        else f"synthetic, setting {c.setting}"
        if c.setting
        else "synthetic minutiae"
    )
    curves = [(result.ours.name, result.ours.genuine, result.ours.impostor)]
    for ref in (result.bozorth, result.mcc):
        if ref is not None:
            curves.append((ref.name, ref.genuine, ref.impostor))
    det.plot_det(
        curves,
        path,
        title=f"DET, {source} ({c.fingers} fingers x {c.impressions}, seed {c.seed})",
        note=f"{source}, scores from direct matcher calls (a curve above 50% FNMR is off "
        "the plot); "
        f"{result.genuine_pairs} genuine / {result.impostor_pairs} impostor comparisons",
    )
