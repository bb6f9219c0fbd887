"""The Minutia Cylinder-Code matcher of the `afis` package, as a second reference.

`afis` (PyPI) ships a Python implementation of MCC (Cappelli, Ferrara and
Maltoni, IEEE PAMI 32(12), 2010) in `afis.algorithms.mcc`; nothing of it is
copied here, this module converts our minutiae and calls it at run time, the
way `host.bio.bozorth` calls its Bozorth3. It needs numpy and afis's Python
package only (no native library). The conversion is `bozorth.to_afis_array`
(500 dpi pixels, top-left origin, radians) with the direction NEGATED
(`to_mcc_array`): afis's MCC builds its cylinders with the angle measured the
other way round from ISO/IEC 19794-2 (anticlockwise as seen, which is
`to_afis_array`'s and what its Bozorth3 bridge takes). With the ISO angle, an
impression and the same minutiae turned by a few degrees scored like strangers
(0.014 against 0.013 on the easy setting), and MCC's figures beside ours were
those of a broken bridge (EER 23 % on the easy setting, where Bozorth3 has 0 %);
negated, the same pairs score 0.75-0.87.
`test_mcc_reference_matches_a_posed_copy` pins it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from applets.biometric.iso19794 import Minutia
from host.bio.bozorth import IMAGE_HEIGHT_PX, to_afis_array


def to_mcc_array(minutiae: Sequence[Minutia]) -> Any:
    """`to_afis_array` with each direction negated: the angle convention of afis's MCC
    (see the module docstring)."""
    arr = to_afis_array(minutiae)
    arr[:, 2] = -arr[:, 2]
    return arr


class MccUnavailable(RuntimeError):
    """afis (or numpy) is not installed; the message says how to get it."""


def _module() -> Any:
    try:
        from afis.algorithms import mcc  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        raise MccUnavailable(
            f"MCC skipped: the afis package is not installed ({e.msg}); pip install afis"
        ) from None
    return mcc


def available() -> tuple[bool, str]:
    """(True, where) or (False, why)."""
    try:
        mod = _module()
    except MccUnavailable as e:
        return False, str(e)
    return True, str(getattr(mod, "__file__", "afis.algorithms.mcc"))


class Mcc:
    """MCC scores (0..1, higher is more similar) of compact-card minutiae sets."""

    def __init__(self) -> None:
        self._mcc = _module()
        self.library = available()[1]

    def prepare(self, minutiae: Sequence[Minutia]) -> Any:
        """The set's cylinders, built once per impression (as a card would at enrolment)."""
        arr = to_mcc_array(minutiae)
        return arr, self._mcc.build_cylinders(arr, height=IMAGE_HEIGHT_PX)

    def score(self, a: Any, b: Any) -> float:
        res = self._mcc.match_minutiae(
            a[0],
            b[0],
            height_a=IMAGE_HEIGHT_PX,
            height_b=IMAGE_HEIGHT_PX,
            cylinders_a=a[1],
            cylinders_b=b[1],
        )
        return float(res.score)
