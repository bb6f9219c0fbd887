"""The matching IDs of a load run, and SM-DP+ orders for them (GSMA SGP.22 §4.1, §3.1.3).

Every download of a run draws a number n and downloads the matching ID its
template gives for n (`LOAD-{n:06d}` by default): each number once, across
all users and all Locust workers (worker i of W draws i, i+W, i+2W, ...). An
SM-DP+ that hands a profile out once per order (cardemu's, a commercial one)
needs an order under each of those IDs beforehand; `load_orders` makes them
for cardemu's SM-DP+ (`cardemu server smdpp --load-orders N`). osmo-smdpp
serves one matching ID again and again: a template without `{n}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import SmdpPlus

__all__ = [
    "DEFAULT_TEMPLATE",
    "LOAD_PREFIX",
    "add_load_orders",
    "load_order",
    "matching_id",
    "check_template",
]

LOAD_PREFIX = "LOAD-"
DEFAULT_TEMPLATE = LOAD_PREFIX + "{n:06d}"

# The test subscription's keys (the "usim" preset's K and OPc): a load profile is never
# attached to a network, and one key set keeps the orders cheap to build.
_K = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
_OPC = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
_FIELD = re.compile(r"\{n(?::0(\d{1,2})d)?\}")


def check_template(template: str) -> str:
    """Check a matching-ID template: text with `{n}` or `{n:0Wd}` at most once.

    Raises:
        ValueError: other braces, or a field other than n.
    """
    fields = _FIELD.findall(template)
    rest = _FIELD.sub("", template)
    if "{" in rest or "}" in rest or len(fields) > 1:
        raise ValueError(f"matching ID template {template!r}: only one {{n}} or {{n:06d}} field")
    if not template or len(template) > 200:
        raise ValueError("a matching ID template has 1 to 200 characters")
    return template


def matching_id(template: str, n: int) -> str:
    """The matching ID of download number `n` under `template`."""

    def fill(m: re.Match[str]) -> str:
        return str(n).rjust(int(m.group(1) or 0), "0")

    return _FIELD.sub(fill, template)


def load_order(n: int, prefix: str = LOAD_PREFIX) -> ProfileOrder:
    """Order number `n` of a load run: matching ID `{prefix}{n:06d}`, its own ICCID and IMSI."""
    if not 0 <= n < 10**9:
        raise ValueError("a load order number has at most 9 digits")
    return ProfileOrder(
        f"{prefix}{n:06d}",
        f"898821199{n:09d}",  # 18 digits and the Luhn digit: unique per order
        f"00101{n:010d}",
        _K,
        _OPC,
        spn="cardemu",
        name=f"load {n}",
        add_check_digit=True,
    )


def _orders(count: int, first: int, prefix: str) -> Iterator[ProfileOrder]:
    for n in range(first, first + count):
        yield load_order(n, prefix)


def add_load_orders(
    smdp: SmdpPlus, count: int, *, first: int = 0, prefix: str = LOAD_PREFIX
) -> int:
    """Add orders number `first` .. `first + count - 1` to an SM-DP+, skipping those it has.

    Args:
        smdp: the SM-DP+.
        count: how many.
        first: the first number.
        prefix: the matching IDs' prefix.

    Returns:
        How many were added.
    """
    have = {o["matching_id"] for o in smdp.orders() if o["matching_id"].startswith(prefix)}
    added = 0
    for order in _orders(count, first, prefix):
        if order.matching_id not in have:
            smdp.add_order(order)
            added += 1
    return added
