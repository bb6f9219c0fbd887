"""GetProfilesInfo's kept answer (applets.isdr.applet) and the card's `nvm_version`.

The ISD-R keeps the DER answer of GetProfilesInfo (SGP.22 §5.7.15) with its
request and the card's `nvm_version`. Every change of what the answer shows
must be seen at once: each test changes one thing the answer depends on and
checks that the answer over APDUs is the one computed afresh (the ES10
function run directly, no cache) and differs from the one before.
"""

from __future__ import annotations

from typing import Any

import pytest

from applets.isdr import ISD_R_AID
from card.nvm import PowerLoss
from card.runtime import CardRuntime, CardTorn
from card.sgp22 import asn1
from card.sgp22.values import bits_from_names, iccid_to_bytes
from tests.unit.sgp22_helpers import (
    TS48_ICCID,
    Lpa,
    TestSmdp,
    download,
    euicc_card,
    notification_config,
    ts48_with_iccid,
)

ALL = asn1.encode("ProfileInfoListRequest", {})
ICCID_ID = ("iccid", iccid_to_bytes(TS48_ICCID))
SECOND = "8949449999999990056"


def _fresh(rt: CardRuntime, request: bytes) -> bytes:
    """The answer computed now, without the kept one (the ES10 function run in its context)."""
    isdr = rt.applet(ISD_R_AID)
    out = rt.call_in_context(isdr._ctx, isdr.es10, request)
    assert isinstance(out, bytes)
    return out


def _gpi(lpa: Lpa, request: bytes = ALL) -> bytes:
    """GetProfilesInfo twice over APDUs (the second from the kept answer), checked fresh."""
    first = lpa.call(request)
    assert lpa.call(request) == first
    assert first == _fresh(lpa.rt, request)
    return first


def _infos(der: bytes) -> list[dict[str, Any]]:
    kind, infos = asn1.decode("ProfileInfoListResponse", der)
    assert kind == "profileInfoListOk"
    return list(infos)


def _es10(lpa: Lpa, name: str, value: Any, response: str) -> Any:
    return lpa.es10(name + "Request", value, response + "Response")


def test_every_change_of_what_it_shows_is_seen() -> None:
    from applets.usim import UICC_AID
    from card.uicc.builder import sample_profile

    rt = euicc_card()
    lpa = Lpa(rt)
    before = _gpi(lpa)
    assert _infos(before) == []
    answers = [before]

    def changed() -> list[dict[str, Any]]:
        now = _gpi(lpa)
        assert now != answers[-1]
        answers.append(now)
        return _infos(now)

    # A profile installed behind the ISD-R's back (the USIM applet's own store).
    iccid = rt.applet(UICC_AID).install_profile(sample_profile().to_bytes())
    assert [i["iccid"] for i in changed()] == [iccid_to_bytes(iccid)]
    # A download: a profile and the ISD-R's record (ISD-P AID, metadata, configuration).
    smdp = TestSmdp(notification_config=notification_config(1, 2, 3))
    assert download(lpa, smdp)[0]
    infos = changed()
    assert infos[1]["iccid"] == iccid_to_bytes(TS48_ICCID) and infos[1]["profileState"] == 0
    # Each field an ES10c function changes.
    assert _es10(
        lpa, "EnableProfile", {"profileIdentifier": ICCID_ID, "refreshFlag": False}, "EnableProfile"
    )
    assert changed()[1]["profileState"] == 1
    _es10(lpa, "SetNickname", {"iccid": ICCID_ID[1], "profileNickname": "work"}, "SetNickname")
    assert changed()[1]["profileNickname"] == "work"
    _es10(lpa, "SetNickname", {"iccid": ICCID_ID[1], "profileNickname": "home"}, "SetNickname")
    assert changed()[1]["profileNickname"] == "home"
    _es10(
        lpa,
        "DisableProfile",
        {"profileIdentifier": ICCID_ID, "refreshFlag": False},
        "DisableProfile",
    )
    assert changed()[1]["profileState"] == 0
    # A second download with another class, then a delete.
    smdp2 = TestSmdp(
        upp=ts48_with_iccid(SECOND), iccid=SECOND, profile_class=0, transaction_id=b"\x02" * 8
    )
    assert download(lpa, smdp2)[0]
    assert [i.get("profileClass") for i in changed()][2] == 0
    _es10(lpa, "DeleteProfile", ICCID_ID, "DeleteProfile")
    assert len(changed()) == 2
    # The answer is also kept per request: a tag list and a search are their own answers.
    only_iccids = asn1.encode("ProfileInfoListRequest", {"tagList": b"\x5a"})
    assert [set(i) - {"profileClass"} for i in _infos(_gpi(lpa, only_iccids))] == [{"iccid"}] * 2
    search = asn1.encode("ProfileInfoListRequest", {"searchCriteria": ("profileClass", 0)})
    assert [i["iccid"] for i in _infos(_gpi(lpa, search))] == [iccid_to_bytes(SECOND)]
    assert _gpi(lpa) == answers[-1]
    # A memory reset (test profiles): the second goes, the preloaded one is left.
    reset = {"resetOptions": bits_from_names(1)}
    assert _es10(lpa, "EuiccMemoryReset", reset, "EuiccMemoryReset") == {"resetResult": 0}
    assert changed() == _infos(answers[1])


def test_a_torn_change_leaves_the_answer_of_what_is_stored() -> None:
    rt = euicc_card()
    lpa = Lpa(rt)
    assert download(lpa, TestSmdp())[0]
    before = _gpi(lpa)
    rt.nvm.tear_after(1)  # the switch's transaction cut after its first write
    with pytest.raises(CardTorn):
        _es10(
            lpa,
            "EnableProfile",
            {"profileIdentifier": ICCID_ID, "refreshFlag": False},
            "EnableProfile",
        )
    rt.power_on()
    lpa = Lpa(rt)
    assert _gpi(lpa) == before  # rolled back: the profile is still disabled
    assert _infos(before)[0]["profileState"] == 0


def test_nvm_version_changes_on_every_write_delete_and_rollback() -> None:
    rt = CardRuntime(None, rng_seed=1)
    nvm = rt.nvm
    seen = {rt.nvm_version}

    def changed() -> None:
        v = rt.nvm_version
        assert v not in seen
        seen.add(v)

    nvm.write("o", "k", (1, b"a"))
    changed()
    nvm.write("o", "k", (1, b"a"))  # the same value: nothing changed, nothing written
    assert rt.nvm_version in seen
    nvm.write("o", "k", (2, b"a"))
    changed()
    nvm.delete("o", "k")
    changed()
    nvm.write("o", "k", 1)
    nvm.begin()
    nvm.write("o", "k", 2)
    changed()
    version = rt.nvm_version
    nvm.abort()  # back to 1 without a write
    assert nvm.read("o", "k") == 1 and rt.nvm_version != version
    changed()
    nvm.begin()
    nvm.write("o", "k", 3)
    version = rt.nvm_version
    nvm.tear_after(0)
    with pytest.raises(PowerLoss):
        nvm.write("o", "j", 4)
    nvm.power_up()  # the power-up rollback
    assert nvm.read("o", "k") == 1 and rt.nvm_version != version
    nvm.delete_owner("o")
    changed()
