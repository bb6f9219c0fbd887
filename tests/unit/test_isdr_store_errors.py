"""ES10c and the profile store's failures (SGP.22 §5.7.16-19; applets.isdr.profiles).

What the store raises itself on its damaged data (DamagedRecord) or on full memory
(OutOfMemory) answers undefinedError(127), the transaction rolled back; full memory
met by the ISD-R's own writes (the notifications) answers the same; any other
exception under a store call is a bug of the card's code: 6F00, counted in
`rt.exceptions`, never hidden as an ES10c result.
"""

from __future__ import annotations

from typing import Any

import pytest

from applets.usim.applet import UiccApplet
from card.nvm import OutOfMemory
from card.sgp22.values import iccid_to_bytes
from card.uicc.fsstore import DamagedRecord
from tests.unit.sgp22_helpers import Es10Error, Lpa
from tests.unit.test_enabled_profile_damaged import ENABLED_RECORD_DAMAGE
from tests.unit.test_profile_integrity import OTHER, OWNER, _card_with, _es10c
from tests.unit.test_sgp22_isdr import ICCID_ID, _lpa_with_two_profiles

UNDEFINED_ERROR = 127


def _raising(exc: BaseException) -> Any:
    def switch_sds(self: Any, old: Any, new: Any) -> None:
        raise exc

    return switch_sds


@pytest.mark.parametrize(
    "exc", [KeyError("a key the code forgot"), TypeError("a bug"), ValueError("a bug")]
)
def test_a_programming_error_in_the_store_is_not_hidden_as_undefined_error(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """Regression (review G): every ValueError/TypeError/LookupError under a store call
    answered undefinedError(127), uncounted. A bug of the store's code on intact data
    is a card fault: 6F00, counted, the transaction rolled back."""
    rt = _card_with()  # ENABLED enabled, OTHER disabled; nothing damaged
    monkeypatch.setattr(UiccApplet, "_switch_sds", _raising(exc))
    before = rt.nvm.snapshot()
    with pytest.raises(Es10Error) as e:
        _es10c(Lpa(rt), "Enable", OTHER.iccid)
    assert e.value.sw == 0x6F00
    assert rt.exceptions == 1
    assert rt.nvm.snapshot() == before  # rolled back


@pytest.mark.parametrize(
    "exc", [DamagedRecord("the stored record x does not decode"), OutOfMemory("full")]
)
def test_the_store_s_own_data_and_memory_faults_answer_undefined_error(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """The faults the store raises itself (damaged stored data, full memory), met in the
    middle of its writes: undefinedError(127), uncounted, the transaction rolled back."""
    rt = _card_with()
    monkeypatch.setattr(UiccApplet, "_switch_sds", _raising(exc))
    before = rt.nvm.snapshot()
    assert _es10c(Lpa(rt), "Enable", OTHER.iccid) == UNDEFINED_ERROR
    assert rt.exceptions == 0
    assert rt.nvm.snapshot() == before


@pytest.mark.parametrize("function", ["Enable", "Delete"])
def test_full_memory_met_by_the_isdr_s_own_notification_answers_undefined_error(
    function: str,
) -> None:
    """Regression (review G): OutOfMemory from the ISD-R's notification write, in the same
    transaction as the store's, escaped as 6F00 while the same error in a store call
    answered undefinedError. Now both undefinedError, nothing written, uncounted."""
    rt, lpa = _lpa_with_two_profiles()  # the TS.48 profile asks for every notification
    if function == "Delete":
        other = ("iccid", iccid_to_bytes("8949449999999990056"))
        res = lpa.es10(
            "EnableProfileRequest",
            {"profileIdentifier": other, "refreshFlag": False},
            "EnableProfileResponse",
        )
        assert res["enableResult"] == 0
    rt.nvm.capacity = rt.nvm.used  # the next write that grows the NVM fails
    before = rt.nvm.snapshot()
    if function == "Enable":
        res = lpa.es10(
            "EnableProfileRequest",
            {"profileIdentifier": ICCID_ID, "refreshFlag": False},
            "EnableProfileResponse",
        )["enableResult"]
    else:
        res = lpa.es10("DeleteProfileRequest", ICCID_ID, "DeleteProfileResponse")["deleteResult"]
    assert res == UNDEFINED_ERROR
    assert rt.exceptions == 0
    assert rt.nvm.snapshot() == before


@pytest.mark.parametrize("damage", sorted(ENABLED_RECORD_DAMAGE))
def test_get_profiles_info_on_a_damaged_enabled_record_is_not_a_card_fault(damage: str) -> None:
    """_GuardedStore turns the store's DamagedRecord into ProfileStoreError for every
    store call, but `get_profiles_info` (via `profiles()`) does not catch it: the
    ProfileStoreError escapes as 6F00 and `rt.exceptions` counts it as a bug of the card,
    the very distinction the fix draws (damaged data: undefinedError, uncounted)."""
    rt = _card_with()
    rt.nvm.write(OWNER, "enabled", ENABLED_RECORD_DAMAGE[damage])
    res = Lpa(rt).es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")
    assert res == ("profileInfoListError", UNDEFINED_ERROR)
    assert rt.exceptions == 0
