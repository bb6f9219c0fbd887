"""The real PC/SC stack tier: every test here is marked `pcsc`.

The fixtures (`pcscd`, `serve`, `pcsc`, `make_card`, ...) are in
`tests/pcsc_stack.py`, loaded for the whole suite, so the interop tests share
the same session pcscd.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.pcsc)
