"""A second synthetic minutiae generator, with the degradations as knobs and named settings.

`host.bio.synthetic` is the generator the matcher was first tuned on. This one
is built independently, after the degradations an outside trial used
(Cappelli-style distortion, partial capture windows), so that the matcher
and its threshold are measured on data they were not shaped by. It is
NOT real fingerprint data either: figures on it are figures on this model.

A finger (`make_finger`): `minutiae` (a range, drawn per finger) master minutiae
spread over a fingertip ellipse with a minimum spacing, directions along a
zero-pole ridge flow (the pattern classes of `host.bio.synthetic`), types drawn
as ending/bifurcation.

An impression (`make_impression`), in this order:

1. plastic distortion after Cappelli, Maio and Maltoni ("Modelling plastic
   distortion in fingerprint images", ICAPR 2001): the skin inside a contact
   region (an ellipse of semi-axes `contact_mm` around a point near the centre)
   stays put; outside it, skin moves by a rigid displacement of up to
   `distortion_shift_mm` and `distortion_rotation_deg`, phased in by a brake
   function over `brake_mm` beyond the region's border;
2. a global pose: rotation uniform in +-`rotation_deg`, translation uniform in
   +-`translation_mm` per axis;
3. a capture window `window_mm` (width and height ranges, drawn per impression,
   or per finger when `aligned_windows`), centred on the sensor with a jitter of
   +-`window_jitter_mm`; with `aligned_windows` the window is cut in the finger's
   own frame (every impression sees the same skin, only the pose changes);
4. position noise (normal, `position_sd_mm`) and direction noise
   (`angle_sd_deg`);
5. missed minutiae (`miss_rate`, drawn per impression), spurious ones
   (`spurious_rate` of the kept count, uniformly in the window, directions along
   the flow) and type flips (`type_flip`);
6. quantisation to the compact card format; over `max_minutiae`, those nearest
   the centre of mass are kept.

`SETTINGS` names the three settings of that trial: `hard` (the full list
above), `medium` (half the distortion, aligned windows) and `easy` (no noise,
no distortion). Same (setting, seed) -> same data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from applets.biometric.iso19794 import ANGLE_STEPS, Minutia, MinutiaType
from host.bio import synthetic
from host.bio.synthetic import FINGER_HEIGHT, FINGER_WIDTH, Dataset, Finger, MasterMinutia


@dataclass(frozen=True)
class Difficulty:
    """The knobs of one difficulty setting (millimetres and degrees)."""

    name: str = "hard"
    minutiae: tuple[int, int] = (40, 60)
    min_spacing_mm: float = 0.9
    contact_mm: tuple[float, float] = (4.0, 6.0)  # semi-axes range of the contact region
    brake_mm: float = 3.0
    distortion_shift_mm: float = 1.5
    distortion_rotation_deg: float = 8.0
    rotation_deg: float = 20.0
    translation_mm: float = 3.0
    window_w_mm: tuple[float, float] = (11.0, 14.0)
    window_h_mm: tuple[float, float] = (14.0, 19.0)
    window_jitter_mm: float = 2.5
    aligned_windows: bool = False
    position_sd_mm: float = 0.2
    angle_sd_deg: float = 6.0
    miss_rate: tuple[float, float] = (0.10, 0.25)
    spurious_rate: tuple[float, float] = (0.05, 0.15)
    type_flip: float = 0.10
    max_minutiae: int = 60

    def describe(self) -> list[str]:
        """One line per knob."""
        return [f"{k} = {getattr(self, k)}" for k in self.__dataclass_fields__]


HARD = Difficulty()
MEDIUM = replace(
    HARD,
    name="medium",
    distortion_shift_mm=0.75,
    distortion_rotation_deg=4.0,
    aligned_windows=True,
    window_jitter_mm=0.0,
)
EASY = replace(
    MEDIUM,
    name="easy",
    distortion_shift_mm=0.0,
    distortion_rotation_deg=0.0,
    position_sd_mm=0.0,
    angle_sd_deg=0.0,
    miss_rate=(0.0, 0.0),
    spurious_rate=(0.0, 0.0),
    type_flip=0.0,
)
SETTINGS: dict[str, Difficulty] = {"easy": EASY, "medium": MEDIUM, "hard": HARD}


def _rng(tag: str, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in ("difficulty", tag, *parts)))


def make_finger(seed: int, index: int, d: Difficulty = HARD) -> Finger:
    """The master minutiae of finger `index` of population `seed` (same for every setting)."""
    rng = _rng("finger", seed, index)
    pattern, singular = synthetic.draw_pattern(rng)
    target = rng.randint(*d.minutiae)
    pts: list[MasterMinutia] = []
    sp2 = d.min_spacing_mm**2
    tries = 0
    while len(pts) < target and tries < 100 * target:
        tries += 1
        x = rng.uniform(-FINGER_WIDTH / 2, FINGER_WIDTH / 2)
        y = rng.uniform(-FINGER_HEIGHT / 2, FINGER_HEIGHT / 2)
        if (2 * x / FINGER_WIDTH) ** 2 + (2 * y / FINGER_HEIGHT) ** 2 > 1.0:
            continue
        if any((p.x - x) ** 2 + (p.y - y) ** 2 < sp2 for p in pts):
            continue
        theta = synthetic.orientation(singular, x, y) + (math.pi if rng.random() < 0.5 else 0.0)
        kind = MinutiaType.RIDGE_ENDING if rng.random() < 0.55 else MinutiaType.BIFURCATION
        pts.append(MasterMinutia(x, y, theta % (2 * math.pi), int(kind)))
    return Finger(index, pattern, singular, tuple(pts))


def _brake(dist: float, k: float) -> float:
    """Cappelli's brake: 0 at the contact border, 1 at `k` beyond it, smooth in between."""
    if dist <= 0.0:
        return 0.0
    if dist >= k:
        return 1.0
    return 0.5 * (1.0 - math.cos(math.pi * dist / k))


def make_impression(
    finger: Finger, seed: int, impression: int, d: Difficulty = HARD
) -> tuple[Minutia, ...]:
    """The compact-card minutiae of one capture of `finger` (see the module docstring)."""
    return tuple(m for m, _ in make_labelled_impression(finger, seed, impression, d))


def make_labelled_impression(
    finger: Finger, seed: int, impression: int, d: Difficulty = HARD
) -> tuple[tuple[Minutia, int], ...]:
    """`make_impression` with each minutia's master index (-1 for a spurious one): the
    ground truth of which minutiae two impressions share."""
    rng = _rng("impression", d.name, seed, finger.index, impression)
    # 1. plastic distortion
    cx, cy = rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0)
    ea, eb = rng.uniform(*d.contact_mm), rng.uniform(*d.contact_mm)
    dth = math.radians(rng.uniform(-d.distortion_rotation_deg, d.distortion_rotation_deg))
    dsx = rng.uniform(-d.distortion_shift_mm, d.distortion_shift_mm)
    dsy = rng.uniform(-d.distortion_shift_mm, d.distortion_shift_mm)
    cd, sd = math.cos(dth), math.sin(dth)

    def distort(x: float, y: float) -> tuple[float, float]:
        rx, ry = x - cx, y - cy
        r = math.hypot(rx / ea, ry / eb)
        # distance beyond the ellipse's border, along the ray from its centre
        dist = (r - 1.0) * math.hypot(rx, ry) / r if r > 1.0 else 0.0
        b = _brake(dist, d.brake_mm)
        tx = cd * rx - sd * ry + cx + dsx
        ty = sd * rx + cd * ry + cy + dsy
        return x + b * (tx - x), y + b * (ty - y)

    # 2. pose
    rot = math.radians(rng.uniform(-d.rotation_deg, d.rotation_deg))
    px, py = (
        rng.uniform(-d.translation_mm, d.translation_mm),
        rng.uniform(-d.translation_mm, d.translation_mm),
    )
    cr, sr = math.cos(rot), math.sin(rot)
    # 3. window
    wrng = _rng("window", d.name, seed, finger.index) if d.aligned_windows else rng
    w, h = wrng.uniform(*d.window_w_mm), wrng.uniform(*d.window_h_mm)
    jx = rng.uniform(-d.window_jitter_mm, d.window_jitter_mm)
    jy = rng.uniform(-d.window_jitter_mm, d.window_jitter_mm)
    pos_sd = d.position_sd_mm
    ang_sd = math.radians(d.angle_sd_deg)
    miss = rng.uniform(*d.miss_rate)

    def pose(x: float, y: float) -> tuple[float, float]:
        return cr * x - sr * y + px, sr * x + cr * y + py

    def inside(x: float, y: float) -> bool:
        return abs(x - jx) <= w / 2 and abs(y - jy) <= h / 2

    def on_finger(x: float, y: float) -> bool:
        return (2 * x / FINGER_WIDTH) ** 2 + (2 * y / FINGER_HEIGHT) ** 2 <= 1.0

    out: list[tuple[float, float, float, int, int]] = []
    for index, m in enumerate(finger.minutiae):
        x1, y1 = distort(m.x, m.y)
        x2, y2 = distort(m.x + 0.2 * math.cos(m.theta), m.y + 0.2 * math.sin(m.theta))
        theta = math.atan2(y2 - y1, x2 - x1) + rot
        sx, sy = pose(x1, y1)
        if not (inside(m.x, m.y) if d.aligned_windows else inside(sx, sy)):
            continue
        if rng.random() < miss:
            continue
        kind = m.kind
        if rng.random() < d.type_flip:
            kind = 3 - kind  # ending <-> bifurcation
        x, y = sx + rng.gauss(0, pos_sd), sy + rng.gauss(0, pos_sd)
        out.append((x, y, theta + rng.gauss(0, ang_sd), kind, index))
    n_spurious = int(round(len(out) * rng.uniform(*d.spurious_rate)))
    for _ in range(n_spurious):
        for _attempt in range(30):
            fx = rng.uniform(-FINGER_WIDTH / 2, FINGER_WIDTH / 2)
            fy = rng.uniform(-FINGER_HEIGHT / 2, FINGER_HEIGHT / 2)
            sx, sy = pose(fx, fy)
            if on_finger(fx, fy) and (inside(fx, fy) if d.aligned_windows else inside(sx, sy)):
                break
        else:
            continue
        theta = finger.orientation(fx, fy) + rot + (math.pi if rng.random() < 0.5 else 0.0)
        kind = MinutiaType.RIDGE_ENDING if rng.random() < 0.55 else MinutiaType.BIFURCATION
        out.append((sx, sy, theta + rng.gauss(0, 2 * ang_sd), int(kind), -1))
    rng.shuffle(out)
    return _to_card(out, d.max_minutiae)


# The card's coordinate origin: the sensor centre maps to (12.75 mm, 12.75 mm), so every
# pose within the knobs' ranges stays inside the format's 0..25.5 mm.
_ORIGIN_MM = 12.75


def _to_card(
    pts: list[tuple[float, float, float, int, int]], max_minutiae: int
) -> tuple[tuple[Minutia, int], ...]:
    if len(pts) > max_minutiae:
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        pts = sorted(pts, key=lambda p: (p[0] - mx) ** 2 + (p[1] - my) ** 2)[:max_minutiae]
    out = []
    for x, y, theta, kind, index in pts:
        cx = min(max(int(round((x + _ORIGIN_MM) * 10)), 0), 255)
        cy = min(max(int(round((_ORIGIN_MM - y) * 10)), 0), 255)
        a = int(round(theta / (2 * math.pi) * ANGLE_STEPS)) % ANGLE_STEPS
        out.append((Minutia(cx, cy, int(kind), a), index))
    return tuple(out)


def make_dataset(fingers: int, impressions: int, seed: int = 0, d: Difficulty = HARD) -> Dataset:
    """`fingers` x `impressions` compact-card minutiae sets of one setting.

    The `model` field of the result is `host.bio.synthetic.DEFAULT_MODEL` (unused
    here); `Difficulty` is what made the data.
    """
    fs = tuple(make_finger(seed, f, d) for f in range(fingers))
    imps = tuple(tuple(make_impression(f, seed, k, d) for k in range(impressions)) for f in fs)
    return Dataset(seed, synthetic.DEFAULT_MODEL, fs, imps)
