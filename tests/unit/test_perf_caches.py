"""The per-process caches behind card creation share no mutable state."""

from __future__ import annotations

from card.framework.catalogue import Catalogue, entry_point_names
from host.presets import _sample_profile_bytes, new_card
from tests.unit.usim_cards import send


def test_entry_point_scan_cached_but_each_catalogue_its_own() -> None:
    assert entry_point_names() is entry_point_names()
    assert isinstance(entry_point_names(), tuple)
    a, b = Catalogue(), Catalogue()
    assert a.names() == b.names() == dict(entry_point_names())
    a._names["x"] = "applets.sample:EchoApplet"  # one catalogue changed...
    assert "x" not in b.names() and "x" not in dict(entry_point_names())  # ...not the others


def test_usim_cards_share_no_state() -> None:
    """Two `usim` cards from the cached profile bytes: a wrong PIN on one leaves the other."""
    assert isinstance(_sample_profile_bytes(), bytes)
    one, two = new_card("usim", rng_seed=1), new_card("usim", rng_seed=1)
    for rt in (one, two):
        rt.power_on()
    assert send(one, "00A40004023F00")[1] == 0x9000
    assert send(two, "00A40004023F00")[1] == 0x9000
    # PIN2 (key reference 81): a wrong value on card one, then the counters.
    assert send(one, "0020008100")[1] == 0x63C3
    assert send(one, "0020008108" + "39393939FFFFFFFF")[1] == 0x63C2
    assert send(one, "0020008100")[1] == 0x63C2
    assert send(two, "0020008100")[1] == 0x63C3
