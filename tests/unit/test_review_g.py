"""Review G reproducers for e92ef15..2787694 (gates; ISD-R undefinedError on damaged data).

Failing ones are marked xfail(strict=True): each is a defect found in review.
"""

from __future__ import annotations

from typing import Any

import pytest

from applets.usim.applet import UiccApplet
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_profile_integrity import OTHER, _card_with, _es10c

OK = 0
UNDEFINED_ERROR = 127


@pytest.mark.xfail(
    strict=True,
    reason="review G: _GuardedStore maps every ValueError/TypeError/LookupError raised "
    "anywhere under a store call (a bug of the store's or the runtime's code, not damaged "
    "data) to undefinedError(127), uncounted; before it was 6F00 and rt.exceptions += 1",
)
def test_a_programming_error_in_the_store_is_not_hidden_as_undefined_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = _card_with()  # ENABLED enabled, OTHER disabled; nothing damaged

    def buggy(self: Any, old: Any, new: Any) -> None:
        {}["a key the code forgot"]  # a bug of the store's code, on intact data

    monkeypatch.setattr(UiccApplet, "_switch_sds", buggy)
    before = rt.nvm.snapshot()
    result = _es10c(Lpa(rt), "Enable", OTHER.iccid)
    assert rt.nvm.snapshot() == before  # rolled back: this part holds
    # A card fault must be visible as one: counted (and 6F00), not an ES10c result.
    assert rt.exceptions == 1, f"enableResult {result}, rt.exceptions {rt.exceptions}"
    assert result != UNDEFINED_ERROR


# -- the runtime's gates ----------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="review G: ShareableProxy.call asks only the selection gate, not the life "
    "cycle: a proxy kept from before its server was LOCKED still runs the server's code, "
    "though get_shareable refuses a LOCKED server and a kept proxy of a gated one is refused",
)
def test_a_shareable_proxy_kept_from_before_its_server_was_locked_is_refused() -> None:
    from applets.sample import COUNTER_CLIENT_AID, COUNTER_SERVER_AID
    from card.framework.exceptions import SecurityException
    from tests.unit.test_runtime import sample_card

    rt = sample_card()
    client: Any = rt.applet(COUNTER_CLIENT_AID)
    proxy: Any = client.system.get_shareable(COUNTER_SERVER_AID)
    assert proxy is not None
    assert rt.call_in_context(client._ctx, proxy.increment) == 1
    rt.set_lifecycle(COUNTER_SERVER_AID, 0x87)  # LOCKED (GP SET STATUS 80)
    assert client.system.get_shareable(COUNTER_SERVER_AID) is None  # a new lookup: refused
    with pytest.raises(SecurityException):
        rt.call_in_context(client._ctx, proxy.increment)  # the kept proxy: reaches it


@pytest.mark.xfail(
    strict=True,
    reason="review G: MANAGE CHANNEL OPEN from a non-basic channel whose instance the gate "
    "just deselected selects the card's default applet on the new channel; Java Card RE "
    "(MANAGE CHANNEL OPEN): from a channel other than 0 the new channel gets the origin's "
    "selection, here none (only an origin of channel 0 gets the default)",
)
def test_manage_channel_open_from_a_gated_channel_selects_nothing() -> None:
    from applets.sample import ECHO_AID
    from tests.unit.test_runtime import _GATE, _gated_card, select, tx

    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    default = rt.selected_aid(0)
    assert default is not None and default != ECHO_AID
    _GATE["open"] = False
    assert tx(rt, "0170000000") == "029000"  # opened from channel 1
    assert rt.selected_aid(1) is None  # the gated instance went
    assert rt.selected_aid(2) is None, f"channel 2 got {rt.selected_aid(2)}"


# -- the test_layers rule ------------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="review G: the private-name rule sees only `from m import _x`; `from pkg import m` "
    "then `m._x` passes it, and the project does that today (host/bench_table.py: "
    "v._vicc_card, v._rate, v._OK of host.bench_vicc; host/bio/difficulty.py: "
    "synthetic._pattern; host/bio/eval.py: det._Sorted)",
)
def test_the_private_name_rule_sees_a_private_name_reached_through_its_module(
    tmp_path: Any,
) -> None:
    from tests.unit.test_layers import _private_imports

    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "a.py").write_text(
        "from __future__ import annotations\nfrom host import b as v\n\nv._helper()\n"
    )
    assert _private_imports(tmp_path) != set()
