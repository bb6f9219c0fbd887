"""The ATR every preset answers, and `build_atr` over a grid of its parameters, pinned.

A refactoring of `card.atr.build_atr` must leave every byte as it was: a reader or a
terminal that matched a preset's ATR (pySim, a PC/SC ATR list) must still match it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from card.atr import build_atr
from card.runtime import DEFAULT_ATR
from host.presets import PIV_ATR, PRESETS, UICC_ATR, new_card

#: ISO 7816-3 §8: TS 3B, T0 with the historical byte count, then the interface bytes.
PRESET_ATRS = {
    "demo": "3B858011FE8073F621DF11",
    "gp": "3B858011FE8073F621DF11",
    "usim": "3B85801F078073F6219BA2",
    "usim-5g": "3B85801F078073F6219BA2",
    "usim-ota": "3B85801F078073F6219BA2",
    "euicc-empty": "3B85801F078073F6219BA2",
    "euicc": "3B85801F078073F6219BA2",
    "bio": "3B858011FE8073F621DF11",
    "keypair": "3B858011FE8073F621DF11",
    "piv": "3B858111FE8073F621DB14",
    "repository": "3B858011FE8073F621DF11",
}


def test_every_preset_is_pinned() -> None:
    assert set(PRESET_ATRS) == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESET_ATRS))
def test_preset_atr(preset: str) -> None:
    assert new_card(preset, rng_seed=1).atr.hex().upper() == PRESET_ATRS[preset]


def test_atr_constants() -> None:
    assert DEFAULT_ATR.hex().upper() == PRESET_ATRS["demo"]
    assert UICC_ATR.hex().upper() == PRESET_ATRS["usim"]
    assert PIV_ATR.hex().upper() == PRESET_ATRS["piv"]


def _grid() -> Iterator[str]:
    protocols = [(0,), (1,), (0, 1), (0, 1, 2), (2,), (1, 14)]
    t1_options: list[dict[str, Any]] = [
        {},
        {"ifsc": 32},
        {"bwi": 4, "cwi": 5},
        {"crc": True},
        {"ifsc": 254, "bwi": 7, "cwi": 13},
    ]
    for pr, ta1, wi, ta2, t1, cls, hist, ext, inv in itertools.product(
        protocols,
        [None, 0x18, 0x11],
        [None, 10, 20, 0],
        [None, 0x81],
        t1_options,
        [None, 0x07],
        [None, b"", bytes.fromhex("1450")],
        [None, False],
        [False, True],
    ):
        kw: dict[str, Any] = dict(
            ta1=ta1, wi=wi, ta2=ta2, class_indicator=cls, historical=hist,
            extended_length=ext, inverse=inv, **t1,
        )  # fmt: skip
        try:
            out = build_atr(pr, **kw).to_bytes().hex()
        except ValueError as e:
            out = f"ValueError: {e}"
        yield f"{pr} {sorted(kw.items(), key=lambda kv: kv[0])!r} -> {out}"


def test_build_atr_grid_unchanged() -> None:
    """17,280 parameter sets (the ATR or the refusal of each), hashed as built before the
    function was split into steps."""
    lines = list(_grid())
    assert len(lines) == 17280
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert digest == "ac73e85a5db7abd55dceec75d4a03301c6aba76bb6ff7742866f8186fdb8efca"
