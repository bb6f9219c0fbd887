"""Synthetic fingerprint minutiae: a seeded, reproducible stand-in for a fingerprint database.

This is NOT real fingerprint data, and figures measured on it are not figures
on real fingers. It models what a minutiae matcher sees closely enough to
exercise one honestly — realistic counts, a ridge flow that ties neighbouring
directions together, the usual distortions of an impression — but it has no
images, no ridge counts, no extractor errors beyond those listed below, and no
population statistics behind it. Every range is a parameter of `Model`, and
the defaults are documented next to each field.

A finger (`make_finger`) is a master set of minutiae in millimetres, in a frame
with its origin at the centre of the fingertip, X to the right and Y upwards:

- the fingertip is an ellipse `FINGER_WIDTH` x `FINGER_HEIGHT` mm;
- the ridge flow is a zero-pole orientation field (Sherlock and Monro, 1993)
  with the singular points of a pattern class drawn with the class frequencies
  published for NIST SD4-like populations (arch, tented arch, left and right
  loop, whorl);
- minutiae are a hard-core point process (no two closer than
  `min_spacing_mm`) at a density drawn per finger in `density_per_mm2`;
- each minutia's direction follows the local ridge flow, one way or the other
  at random; its type is a ridge ending with probability `ending_share`, a
  bifurcation otherwise (and "other" with probability `other_share`).

An impression (`make_impression`) is what one capture yields:

- the finger is placed on a sensor window of `window_mm` with a rotation
  (normal, `rotation_sd_deg`, truncated at `rotation_max_deg`) and a
  translation (normal per axis, `translation_sd_mm`, truncated at
  `translation_max_mm`): the parts outside the window are lost (partial
  overlap);
- an elastic distortion: a random affine strain up to `strain_max` plus two
  smooth Gaussian bumps of displacement up to `bump_max_mm` (width
  `bump_width_mm`), the skin stretching unevenly under pressure;
- position noise (normal, `position_sd_mm` per axis) and direction noise
  (normal, `angle_sd_deg`);
- each minutia is lost with a probability drawn per impression in `miss_rate`
  (doubled within `border_mm` of the edge of the captured area), and its type
  flips between ending and bifurcation with probability `type_flip`;
- spurious minutiae, as a fraction of the true ones drawn in `spurious_rate`,
  uniformly over the captured area with directions along the ridge flow;
- quantisation to the compact card format (0.1 mm, 5.625 degrees) and, when
  there are more than the card accepts, the `max_minutiae` nearest to the
  centre of mass are kept (the pruning of NIST's MINEX II).

Same seed, same data: every random draw comes from `random.Random` seeded from
(seed, finger, impression), so any finger or impression can be rebuilt alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from applets.biometric.iso19794 import ANGLE_STEPS, Minutia, MinutiaType

FINGER_WIDTH = 17.0  # mm
FINGER_HEIGHT = 22.0  # mm

# Pattern classes with their frequencies (Wilson, Candela, Watson: "Neural network
# fingerprint classification", J. Artif. Neural Networks 1994, on NIST data).
PATTERN_CLASSES: tuple[tuple[str, float], ...] = (
    ("arch", 0.037),
    ("tented_arch", 0.029),
    ("left_loop", 0.338),
    ("right_loop", 0.317),
    ("whorl", 0.279),
)


@dataclass(frozen=True)
class Model:
    """Every parameter of the generator, with its default range."""

    density_per_mm2: tuple[float, float] = (0.16, 0.26)
    min_spacing_mm: float = 0.6
    ending_share: float = 0.55
    other_share: float = 0.02
    window_mm: tuple[float, float] = (12.8, 16.5)  # PIV FAP 10 plain-impression area
    rotation_sd_deg: float = 8.0
    rotation_max_deg: float = 25.0
    translation_sd_mm: float = 1.5
    translation_max_mm: float = 4.0
    strain_max: float = 0.04
    bump_max_mm: float = 0.35
    bump_width_mm: float = 5.0
    position_sd_mm: float = 0.12
    angle_sd_deg: float = 5.0
    miss_rate: tuple[float, float] = (0.08, 0.22)
    border_mm: float = 1.0
    type_flip: float = 0.10
    spurious_rate: tuple[float, float] = (0.05, 0.20)
    max_minutiae: int = 60

    def describe(self) -> list[str]:
        """One line per parameter, for the harness's report."""
        return [f"{name} = {getattr(self, name)}" for name in self.__dataclass_fields__]


DEFAULT_MODEL = Model()


@dataclass(frozen=True)
class MasterMinutia:
    x: float  # mm, origin at the fingertip's centre, Y upwards
    y: float
    theta: float  # radians, anticlockwise from +X
    kind: int


@dataclass(frozen=True)
class Finger:
    index: int
    pattern: str
    singular: tuple[tuple[str, float, float], ...]  # ("core"|"delta", x, y)
    minutiae: tuple[MasterMinutia, ...] = field(repr=False)

    def orientation(self, x: float, y: float) -> float:
        return orientation(self.singular, x, y)


def _rng(seed: int, *parts: int) -> random.Random:
    # A string seed hashes deterministically (SHA-512) across runs and platforms.
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def orientation(singular: Sequence[tuple[str, float, float]], x: float, y: float) -> float:
    """Zero-pole ridge orientation (mod pi): half the sum of core angles minus delta angles."""
    if not singular:
        # Plain arch: ridges bow upwards across the finger.
        return math.atan(0.35 * math.sin(x / FINGER_WIDTH * math.pi) * math.exp(-abs(y) / 8))
    a = 0.0
    for kind, sx, sy in singular:
        ang = math.atan2(y - sy, x - sx)
        a += ang if kind == "core" else -ang
    return a / 2


def draw_pattern(rng: random.Random) -> tuple[str, tuple[tuple[str, float, float], ...]]:
    r = rng.random()
    acc = 0.0
    name = PATTERN_CLASSES[-1][0]
    for cls, p in PATTERN_CLASSES:
        acc += p
        if r < acc:
            name = cls
            break
    cx, cy = rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 3.0)
    if name == "arch":
        return name, ()
    if name == "tented_arch":
        return name, (
            ("core", cx, cy),
            ("delta", cx + rng.uniform(-0.5, 0.5), cy - rng.uniform(3, 5)),
        )
    if name in ("left_loop", "right_loop"):
        side = 1 if name == "left_loop" else -1
        return name, (
            ("core", cx, cy),
            ("delta", cx + side * rng.uniform(4.5, 7.5), cy - rng.uniform(5, 8)),
        )
    return name, (
        ("core", cx - rng.uniform(0.5, 1.5), cy),
        ("core", cx + rng.uniform(0.5, 1.5), cy + rng.uniform(-0.5, 0.5)),
        ("delta", cx - rng.uniform(5, 7.5), cy - rng.uniform(5, 8)),
        ("delta", cx + rng.uniform(5, 7.5), cy - rng.uniform(5, 8)),
    )


def _in_finger(x: float, y: float) -> bool:
    return (2 * x / FINGER_WIDTH) ** 2 + (2 * y / FINGER_HEIGHT) ** 2 <= 1.0


def _kind(rng: random.Random, model: Model) -> int:
    r = rng.random()
    if r < model.other_share:
        return MinutiaType.OTHER
    return (
        MinutiaType.RIDGE_ENDING if rng.random() < model.ending_share else MinutiaType.BIFURCATION
    )


def make_finger(seed: int, index: int, model: Model = DEFAULT_MODEL) -> Finger:
    """The master minutiae of finger `index` of the population `seed`."""
    rng = _rng(seed, index)
    pattern, singular = draw_pattern(rng)
    area = math.pi * FINGER_WIDTH * FINGER_HEIGHT / 4
    target = int(round(area * rng.uniform(*model.density_per_mm2)))
    pts: list[MasterMinutia] = []
    spacing2 = model.min_spacing_mm**2
    tries = 0
    while len(pts) < target and tries < target * 50:
        tries += 1
        x = rng.uniform(-FINGER_WIDTH / 2, FINGER_WIDTH / 2)
        y = rng.uniform(-FINGER_HEIGHT / 2, FINGER_HEIGHT / 2)
        if not _in_finger(x, y):
            continue
        if any((p.x - x) ** 2 + (p.y - y) ** 2 < spacing2 for p in pts):
            continue
        # Singular regions are where the ridge flow is least defined: keep them sparse.
        if any((x - sx) ** 2 + (y - sy) ** 2 < 0.8**2 for _, sx, sy in singular):
            continue
        theta = orientation(singular, x, y) + (math.pi if rng.random() < 0.5 else 0.0)
        pts.append(MasterMinutia(x, y, theta % (2 * math.pi), _kind(rng, model)))
    return Finger(index, pattern, singular, tuple(pts))


def _truncated_normal(rng: random.Random, sd: float, limit: float) -> float:
    while True:
        v = rng.gauss(0.0, sd)
        if abs(v) <= limit:
            return v


def make_impression(
    finger: Finger, seed: int, impression: int, model: Model = DEFAULT_MODEL
) -> tuple[Minutia, ...]:
    """The compact-card minutiae one capture of `finger` gives (see the module docstring)."""
    rng = _rng(seed, finger.index, impression, 1)
    w, h = model.window_mm
    rot = math.radians(_truncated_normal(rng, model.rotation_sd_deg, model.rotation_max_deg))
    tx = _truncated_normal(rng, model.translation_sd_mm, model.translation_max_mm)
    ty = _truncated_normal(rng, model.translation_sd_mm, model.translation_max_mm)
    cr, sr = math.cos(rot), math.sin(rot)
    # Elastic part: an affine strain and two displacement bumps.
    exx = rng.uniform(-model.strain_max, model.strain_max)
    eyy = rng.uniform(-model.strain_max, model.strain_max)
    exy = rng.uniform(-model.strain_max, model.strain_max) / 2
    bumps = [
        (
            rng.uniform(-w / 2, w / 2),
            rng.uniform(-h / 2, h / 2),
            rng.uniform(-model.bump_max_mm, model.bump_max_mm),
            rng.uniform(-model.bump_max_mm, model.bump_max_mm),
        )
        for _ in range(2)
    ]
    s2 = 2 * model.bump_width_mm**2

    def place(x: float, y: float) -> tuple[float, float]:
        # finger frame -> sensor frame (origin at the window's centre)
        x1 = cr * x - sr * y + tx
        y1 = sr * x + cr * y + ty
        x2 = x1 + exx * x1 + exy * y1
        y2 = y1 + exy * x1 + eyy * y1
        for bx, by, ax, ay in bumps:
            g = math.exp(-((x1 - bx) ** 2 + (y1 - by) ** 2) / s2)
            x2 += ax * g
            y2 += ay * g
        return x2, y2

    def local_rotation(x: float, y: float, px: float, py: float) -> float:
        # How the distortion turns a small segment at (x, y): follow a 0.2 mm step along X.
        qx, qy = place(x + 0.2, y)
        return math.atan2(qy - py, qx - px)

    def in_window(x: float, y: float, margin: float = 0.0) -> bool:
        return abs(x) <= w / 2 - margin and abs(y) <= h / 2 - margin

    def captured(x: float, y: float, margin: float = 0.0) -> bool:
        # The sensor sees the finger's skin only: map back approximately (rigid part).
        fx = cr * (x - tx) + sr * (y - ty)
        fy = -sr * (x - tx) + cr * (y - ty)
        return in_window(x, y, margin) and _in_finger_scaled(fx, fy, margin)

    miss = rng.uniform(*model.miss_rate)
    pos_sd = model.position_sd_mm
    ang_sd = math.radians(model.angle_sd_deg)
    out: list[tuple[float, float, float, int]] = []
    for m in finger.minutiae:
        px, py = place(m.x, m.y)
        if not captured(px, py):
            continue
        p_miss = miss * (2.0 if not captured(px, py, model.border_mm) else 1.0)
        if rng.random() < p_miss:
            continue
        turn = local_rotation(m.x, m.y, px, py)
        theta = m.theta + turn + rng.gauss(0.0, ang_sd)
        kind = m.kind
        if kind != MinutiaType.OTHER and rng.random() < model.type_flip:
            kind = (
                MinutiaType.BIFURCATION
                if kind == MinutiaType.RIDGE_ENDING
                else MinutiaType.RIDGE_ENDING
            )
        out.append((px + rng.gauss(0.0, pos_sd), py + rng.gauss(0.0, pos_sd), theta, kind))
    n_spurious = _poisson(rng, len(out) * rng.uniform(*model.spurious_rate))
    for _ in range(n_spurious):
        for _attempt in range(20):
            x, y = rng.uniform(-w / 2, w / 2), rng.uniform(-h / 2, h / 2)
            if captured(x, y):
                break
        else:
            continue
        fx = cr * (x - tx) + sr * (y - ty)
        fy = -sr * (x - tx) + cr * (y - ty)
        theta = finger.orientation(fx, fy) + rot + (math.pi if rng.random() < 0.5 else 0.0)
        theta += rng.gauss(0.0, 2 * ang_sd)
        out.append((x, y, theta, _kind(rng, model)))
    rng.shuffle(out)
    return _to_card(out, w, h, model.max_minutiae)


def _in_finger_scaled(x: float, y: float, margin: float) -> bool:
    a = FINGER_WIDTH / 2 - margin
    b = FINGER_HEIGHT / 2 - margin
    return a > 0 and b > 0 and (x / a) ** 2 + (y / b) ** 2 <= 1.0


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: lam is small here (a few tens at most).
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _to_card(
    pts: list[tuple[float, float, float, int]], w: float, h: float, max_minutiae: int
) -> tuple[Minutia, ...]:
    """Quantise to the compact card format; keep the max_minutiae nearest the centre of mass."""
    if len(pts) > max_minutiae:
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        pts = sorted(pts, key=lambda p: (p[0] - mx) ** 2 + (p[1] - my) ** 2)[:max_minutiae]
    out = []
    for x, y, theta, kind in pts:
        # Sensor frame (Y up, origin at the centre) -> format (Y down, origin top left).
        cx = int(round((x + w / 2) * 10))
        cy = int(round((h / 2 - y) * 10))
        a = int(round(theta / (2 * math.pi) * ANGLE_STEPS)) % ANGLE_STEPS
        # Noise may push a minutia found at the very edge past it: the sensor still reports
        # it on its last pixel.
        cx = min(max(cx, 0), int(round(w * 10)), 255)
        cy = min(max(cy, 0), int(round(h * 10)), 255)
        out.append(Minutia(cx, cy, int(kind), a))
    return tuple(out)


@dataclass(frozen=True)
class Dataset:
    """N fingers x M impressions, each impression a compact-card minutiae set."""

    seed: int
    model: Model
    fingers: tuple[Finger, ...]
    impressions: tuple[tuple[tuple[Minutia, ...], ...], ...]  # [finger][impression]


def make_dataset(
    fingers: int, impressions: int, seed: int = 0, model: Model = DEFAULT_MODEL
) -> Dataset:
    """A reproducible synthetic database."""
    fs = tuple(make_finger(seed, f, model) for f in range(fingers))
    imps = tuple(tuple(make_impression(f, seed, k, model) for k in range(impressions)) for f in fs)
    return Dataset(seed, model, fs, imps)
