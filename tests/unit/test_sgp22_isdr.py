"""The ISD-R and ECASD (applets.isdr): ES10a/b/c over STORE DATA, GSMA SGP.22 v2.x §5.7.

A profile goes in through a full download against `TestSmdp` (tests/unit/
sgp22_helpers.py), whose crypto is written from the spec independently of the
card's, and the installed TS.48 profile answers AUTHENTICATE once enabled.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from applets.isdr import ECASD_AID, ISD_R_AID
from card import tlv
from card.crypto.keys import EcPublicKey
from card.sgp22 import asn1
from card.sgp22.values import NotificationEvent, bits_from_names, bits_to_set, iccid_to_bytes
from host.pki import default_pki
from tests.unit.sgp22_helpers import (
    SMDP_ADDRESS,
    TS48_ICCID,
    TS48_K,
    TS48_USIM,
    Es10Error,
    Lpa,
    TestSmdp,
    download,
    euicc_card,
    notification_config,
    ts48_with_iccid,
)
from tests.unit.usim_cards import authenticate, select_usim, send

ICCID_ID = ("iccid", iccid_to_bytes(TS48_ICCID))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def installed() -> tuple[Any, Lpa, TestSmdp]:
    """A card with the TS.48 profile downloaded (notifications for every event configured)."""
    rt = euicc_card()
    lpa = Lpa(rt)
    smdp = TestSmdp(notification_config=notification_config(0, 1, 2, 3))
    pir, _ = download(lpa, smdp)
    assert pir is not None and smdp.check_pir(pir)["finalResult"][0] == "successResult"
    return rt, lpa, smdp


# -- transport --------------------------------------------------------------------------------


def test_select_on_a_logical_channel_and_store_data_blocks() -> None:
    rt = euicc_card()
    lpa = Lpa(rt, block=7)  # GetEID in several blocks
    assert lpa.channel == 1
    out = lpa.es10("GetEuiccDataRequest", {"tagList": b"\x5a"}, "GetEuiccDataResponse")
    assert out["eidValue"].hex() == next(iter(default_pki().euiccs))
    # A block out of sequence drops the request: 6A86; the next request starts afresh.
    cla = lpa.cla
    assert lpa.send(bytes((cla, 0xE2, 0x11, 0x00, 2)) + b"\xbf\x3e")[1] == 0x9000
    assert lpa.send(bytes((cla, 0xE2, 0x91, 0x02, 4)) + b"\x03\x5c\x01\x5a")[1] == 0x6A86
    data, sw = lpa.send(bytes((cla, 0xE2, 0x91, 0x00, 6)) + bytes.fromhex("bf3e035c015a") + b"\x00")
    assert sw == 0x9000 and data[:3] == bytes.fromhex("bf3e12")


def test_errors_at_the_transport_level() -> None:
    lpa = Lpa(euicc_card())
    with pytest.raises(Es10Error) as e:
        lpa.call(bytes.fromhex("bf7f00"))  # no such function
    assert e.value.sw == 0x6A88
    with pytest.raises(Es10Error) as e:
        lpa.call(bytes.fromhex("bf3e035c02"))  # does not decode
    assert e.value.sw == 0x6A80
    with pytest.raises(Es10Error) as e:
        lpa.call(bytes.fromhex("a000"))  # a BPP segment with no download under way
    assert e.value.sw == 0x6985
    assert lpa.send(bytes((lpa.cla, 0xE2, 0x51, 0x00, 3)) + bytes.fromhex("bf2000"))[1] == 0x6A86
    assert (
        lpa.send(bytes((lpa.channel, 0xE2, 0x91, 0x00, 3)) + bytes.fromhex("bf2000"))[1] == 0x6E00
    )


def test_long_response_comes_through_get_response() -> None:
    lpa = Lpa(euicc_card())
    resp = lpa.send(bytes((lpa.cla, 0xE2, 0x91, 0x00, 3)) + bytes.fromhex("bf2200"))
    raw = lpa.rt.process(bytes((lpa.cla, 0xE2, 0x91, 0x00, 3)) + bytes.fromhex("bf2200"))
    assert raw[-2] == 0x61  # no Le: the data waits for GET RESPONSE
    info2 = asn1.decode("EUICCInfo2", resp[0])
    assert info2["svn"] == b"\x02\x02\x00"


def test_ecasd_serves_only_the_isd_r() -> None:
    rt = euicc_card()
    ecasd = rt.applet(ECASD_AID)
    assert ecasd.get_shareable_interface_object(ISD_R_AID, 0) is ecasd
    assert ecasd.get_shareable_interface_object(bytes.fromhex("A000000001"), 0) is None
    # Selectable, but no command of its own.
    assert rt.process(bytes.fromhex("00A4040C10") + ECASD_AID)[-2:] == b"\x90\x00"
    assert rt.process(bytes.fromhex("80E2910003bf2000"))[-2:] == b"\x6d\x00"


def test_ecasd_signature_is_raw_and_verifies_with_cert_euicc() -> None:
    rt = euicc_card()
    ecasd = rt.applet(ECASD_AID)
    sig = ecasd.sign(b"message")
    cert = x509.load_der_x509_certificate(ecasd.euicc_certificate())
    assert len(sig) == 64 and EcPublicKey(cert.public_key()).verify(b"message", sig, encoding="raw")


# -- ES10b: info, challenge, authentication -------------------------------------------------------


def test_euicc_info1_and_info2() -> None:
    lpa = Lpa(euicc_card())
    ci = default_pki().ci.ski
    info1 = lpa.es10("GetEuiccInfo1Request", {}, "EUICCInfo1")
    assert info1 == {
        "svn": b"\x02\x02\x00",
        "euiccCiPKIdListForVerification": [ci],
        "euiccCiPKIdListForSigning": [ci],
    }
    info2 = lpa.es10("GetEuiccInfo2Request", {}, "EUICCInfo2")
    assert info2["euiccCiPKIdListForSigning"] == [ci]
    assert {1, 4} <= bits_to_set(info2["uiccCapability"])  # USIM, Milenage
    assert 0 in bits_to_set(info2["rspCapability"])
    assert info2["extCardResource"][:3] == b"\x81\x01\x00"  # no profile installed


def test_challenge_is_fresh_each_time() -> None:
    lpa = Lpa(euicc_card())
    a = lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")["euiccChallenge"]
    b = lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")["euiccChallenge"]
    assert len(a) == 16 and a != b


def test_authenticate_server_response_is_signed_over_euicc_signed1() -> None:
    rt = euicc_card()
    lpa = Lpa(rt)
    smdp = TestSmdp()
    ch = lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")["euiccChallenge"]
    req = smdp.authenticate_server_request(ch, matching_id="MID-1")
    kind, ok = lpa.es10("AuthenticateServerRequest", req, "AuthenticateServerResponse")
    assert kind == "authenticateResponseOk"
    s1 = ok["euiccSigned1"]
    assert (s1["transactionId"], s1["serverAddress"], s1["serverChallenge"]) == (
        smdp.transaction_id,
        SMDP_ADDRESS,
        smdp.server_challenge,
    )
    assert s1["ctxParams1"][1]["matchingId"] == "MID-1"
    pki = default_pki()
    euicc = next(iter(pki.euiccs.values()))
    assert asn1.encode("Certificate", ok["euiccCertificate"]) == euicc.der
    assert asn1.encode("Certificate", ok["eumCertificate"]) == pki.eum.der
    pub = EcPublicKey(euicc.cert.public_key())
    assert pub.verify(asn1.encode("EuiccSigned1", s1), ok["euiccSignature1"], encoding="raw")


def test_cancel_session_is_signed_and_ends_the_session() -> None:
    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    ch = lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")["euiccChallenge"]
    lpa.call(asn1.encode("AuthenticateServerRequest", smdp.authenticate_server_request(ch)))
    wrong = lpa.es10(
        "CancelSessionRequest", {"transactionId": b"\x99", "reason": 1}, "CancelSessionResponse"
    )
    assert wrong == ("cancelSessionResponseError", 5)
    kind, ok = lpa.es10(
        "CancelSessionRequest",
        {"transactionId": smdp.transaction_id, "reason": 0},
        "CancelSessionResponse",
    )
    assert kind == "cancelSessionResponseOk"
    signed = ok["euiccCancelSessionSigned"]
    assert signed == {"transactionId": smdp.transaction_id, "smdpOid": "2.999.10", "reason": 0}
    pub = EcPublicKey(next(iter(default_pki().euiccs.values())).cert.public_key())
    der = asn1.encode("EuiccCancelSessionSigned", signed)
    assert pub.verify(der, ok["euiccCancelSessionSignature"], encoding="raw")
    again = lpa.es10(
        "CancelSessionRequest",
        {"transactionId": smdp.transaction_id, "reason": 0},
        "CancelSessionResponse",
    )
    assert again == ("cancelSessionResponseError", 5)


# -- a download, then the profile works ------------------------------------------------------------


def test_download_installs_a_disabled_profile(installed: tuple[Any, Lpa, TestSmdp]) -> None:
    _, lpa, _ = installed
    kind, infos = lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")
    assert kind == "profileInfoListOk" and len(infos) == 1
    p = infos[0]
    assert p["iccid"] == iccid_to_bytes(TS48_ICCID) and p["profileState"] == 0
    assert p["isdpAid"] == bytes.fromhex("A0000005591010FFFFFFFF8900001000")
    assert (p["serviceProviderName"], p["profileName"]) == ("GSMA", "TS.48 test profile")
    assert p["notificationConfigurationInfo"] == notification_config(0, 1, 2, 3)


def test_download_with_replace_session_keys_and_authenticate() -> None:
    rt = euicc_card()
    lpa = Lpa(rt)
    smdp = TestSmdp()
    pir, segs = download(lpa, smdp, ppk=True)
    assert any(s[:1] == b"\xa2" for s in segs)
    data = smdp.check_pir(pir)
    assert data["finalResult"][0] == "successResult"
    assert data["notificationMetadata"]["notificationAddress"] == SMDP_ADDRESS
    assert data["smdpOid"] == "2.999.10"
    res = lpa.es10(
        "EnableProfileRequest",
        {"profileIdentifier": ICCID_ID, "refreshFlag": True},
        "EnableProfileResponse",
    )
    assert res == {"enableResult": 0}
    rt.reset()
    select_usim(rt, TS48_USIM)
    rand = bytes.fromhex("0123456789abcdef0123456789abcdef")
    sqn, amf = (0x21).to_bytes(6, "big"), b"\x80\x00"
    xdout = _xor(TS48_K, rand)
    autn = _xor(sqn, xdout[3:9]) + amf + _xor(xdout[:8], sqn + amf)
    out, sw = authenticate(rt, rand, autn)
    assert sw == 0x9000 and out[:10] == b"\xdb\x08" + xdout[:8]
    # EF.IMSI of the downloaded profile (TS 31.102 §4.2.2): 001010123456063.
    data, sw = send(rt, "00A4000C026F07")
    data, sw = send(rt, "00B0000009")
    assert (data, sw) == (bytes.fromhex("080910101032540636"), 0x9000)


# -- ES10c -----------------------------------------------------------------------------------------


def _lpa_with_two_profiles() -> tuple[Any, Lpa]:
    rt = euicc_card()
    lpa = Lpa(rt)
    assert download(lpa, TestSmdp(notification_config=notification_config(1, 2, 3)))[0]
    second = "8949449999999990056"
    smdp2 = TestSmdp(
        upp=ts48_with_iccid(second), iccid=second, profile_class=0, transaction_id=b"\x02" * 8
    )
    pir, _ = download(lpa, smdp2)
    assert smdp2.check_pir(pir)["finalResult"][0] == "successResult"
    return rt, lpa


def test_get_profiles_info_tag_list_and_search() -> None:
    _, lpa = _lpa_with_two_profiles()
    kind, infos = lpa.es10(
        "ProfileInfoListRequest", {"tagList": bytes.fromhex("5a9f70")}, "ProfileInfoListResponse"
    )
    assert [set(i) - {"profileClass"} for i in infos] == [{"iccid", "profileState"}] * 2
    raw = lpa.call(asn1.encode("ProfileInfoListRequest", {"tagList": bytes.fromhex("5a")}))
    (top,) = tlv.parse_tree(raw)
    entries = top.find(0xA0).children
    assert [e.tag for e in entries] == [0xE3, 0xE3]
    assert all([c.tag for c in e.children] == [0x5A] for e in entries)  # only the ICCIDs
    _, found = lpa.es10(
        "ProfileInfoListRequest", {"searchCriteria": ("profileClass", 0)}, "ProfileInfoListResponse"
    )
    assert [f["iccid"] for f in found] == [iccid_to_bytes("8949449999999990056")]
    _, found = lpa.es10(
        "ProfileInfoListRequest",
        {"searchCriteria": ("isdpAid", bytes.fromhex("A0000005591010FFFFFFFF8900001100"))},
        "ProfileInfoListResponse",
    )
    assert len(found) == 1 and found[0]["profileClass"] == 0  # test
    _, none = lpa.es10(
        "ProfileInfoListRequest",
        {"searchCriteria": ("iccid", iccid_to_bytes("1"))},
        "ProfileInfoListResponse",
    )
    assert none == []


def test_enable_disable_delete_with_their_results_and_notifications() -> None:
    rt, lpa = _lpa_with_two_profiles()
    other = ("iccid", iccid_to_bytes("8949449999999990056"))

    def enable(ident: Any) -> int:
        return lpa.es10(
            "EnableProfileRequest",
            {"profileIdentifier": ident, "refreshFlag": False},
            "EnableProfileResponse",
        )["enableResult"]

    def disable(ident: Any) -> int:
        return lpa.es10(
            "DisableProfileRequest",
            {"profileIdentifier": ident, "refreshFlag": False},
            "DisableProfileResponse",
        )["disableResult"]

    def delete(ident: Any) -> int:
        return lpa.es10("DeleteProfileRequest", ident, "DeleteProfileResponse")["deleteResult"]

    assert enable(("iccid", iccid_to_bytes("1234"))) == 1
    assert disable(ICCID_ID) == 2  # not enabled
    assert enable(ICCID_ID) == 0
    assert enable(ICCID_ID) == 2  # already enabled
    assert delete(ICCID_ID) == 2  # enabled: may not be deleted
    rt.reset()
    lpa = Lpa(rt)
    assert enable(other) == 0  # switches: the first is disabled
    states = {
        i["iccid"]: i["profileState"]
        for i in lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")[1]
    }
    assert states == {iccid_to_bytes(TS48_ICCID): 0, iccid_to_bytes("8949449999999990056"): 1}
    assert disable(other) == 0
    assert delete(ICCID_ID) == 0
    assert delete(ICCID_ID) == 1
    # The first profile's config asks for enable, disable and delete notifications.
    events = [
        (m["seqNumber"], bits_to_set(m["profileManagementOperation"]))
        for m in lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1]
    ]
    assert [e for _, e in events] == [
        {0},
        {0},
        {1},
        {2},
        {3},
    ]  # 2 PIRs, enable, disable (switch), delete
    only_delete = lpa.es10(
        "ListNotificationRequest",
        {"profileManagementOperation": bits_from_names(3)},
        "ListNotificationResponse",
    )[1]
    assert len(only_delete) == 1 and only_delete[0]["iccid"] == iccid_to_bytes(TS48_ICCID)


MNO_SD = bytes.fromhex("A000000151000000")  # TS.48's MNO-SD


def _es10c(lpa: Lpa, function: str, ident: Any) -> int:
    if function == "Delete":
        res = lpa.es10("DeleteProfileRequest", ident, "DeleteProfileResponse")
        return int(res["deleteResult"])
    res = lpa.es10(
        f"{function}ProfileRequest",
        {"profileIdentifier": ident, "refreshFlag": False},
        f"{function}ProfileResponse",
    )
    return int(res[f"{function.lower()}Result"])


def test_delete_deselects_the_mno_sd_selected_on_another_channel_and_leaves_no_orphan() -> None:
    """SGP.22 §5.7.18: a disabled profile is deleted whole, its MNO-SD instance too.

    Regression: an MNO-SD still selected on a logical channel (selected while its
    profile was enabled) outlived the profile's deletion, locked and with no record.
    """
    rt = euicc_card()
    before = {bytes(a) for a, *_ in rt.applets()}
    lpa = Lpa(rt)  # ES10 on channel 1
    assert download(lpa, TestSmdp())[0]
    assert _es10c(lpa, "Enable", ICCID_ID) == 0
    resp = rt.process(bytes.fromhex("0070000001"))
    assert resp[-2:] == b"\x90\x00"
    ch = resp[0]
    assert ch not in (0, lpa.channel)
    _, sw = send(rt, bytes((ch, 0xA4, 0x04, 0x00, len(MNO_SD))) + MNO_SD + b"\x00")
    assert sw == 0x9000 and rt.selected_aid(ch) == MNO_SD
    assert _es10c(lpa, "Delete", ICCID_ID) == 2  # enabled: profileNotInDisabledState
    assert rt.selected_aid(ch) == MNO_SD
    assert _es10c(lpa, "Disable", ICCID_ID) == 0
    # Disabled: deselected there already (test_isdr_disable_deselects.py).
    assert rt.selected_aid(ch) is None and ch in rt.open_channels()
    assert _es10c(lpa, "Delete", ICCID_ID) == 0
    assert rt.selected_aid(ch) is None and ch in rt.open_channels()
    assert {bytes(a) for a, *_ in rt.applets()} == before  # no orphan in the registry
    for channel in (0, ch):
        _, sw = send(rt, bytes((channel, 0xA4, 0x04, 0x00, len(MNO_SD))) + MNO_SD + b"\x00")
        assert sw == 0x6A82
    # The channel works on: it selects what is on the card.
    _, sw = send(rt, bytes((ch, 0xA4, 0x04, 0x00, len(ISD_R_AID))) + ISD_R_AID + b"\x00")
    assert sw == 0x9000
    assert lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")[1] == []


def test_notifications_are_signed_retrievable_and_removable() -> None:
    rt, lpa = _lpa_with_two_profiles()
    lpa.es10(
        "EnableProfileRequest",
        {"profileIdentifier": ICCID_ID, "refreshFlag": True},
        "EnableProfileResponse",
    )
    kind, pending = lpa.es10(
        "RetrieveNotificationsListRequest", {}, "RetrieveNotificationsListResponse"
    )
    assert kind == "notificationList" and [p[0] for p in pending] == [
        "profileInstallationResult",
        "profileInstallationResult",
        "otherSignedNotification",
    ]
    euicc = next(iter(default_pki().euiccs.values()))
    pub = EcPublicKey(euicc.cert.public_key())
    other = pending[2][1]
    assert pub.verify(
        asn1.encode("NotificationMetadata", other["tbsOtherNotification"]),
        other["euiccNotificationSignature"],
        encoding="raw",
    )
    assert bits_to_set(other["tbsOtherNotification"]["profileManagementOperation"]) == {
        int(NotificationEvent.ENABLE)
    }
    assert asn1.encode("Certificate", other["euiccCertificate"]) == euicc.der
    pir = pending[0][1]
    assert pub.verify(
        asn1.encode("ProfileInstallationResultData", pir["profileInstallationResultData"]),
        pir["euiccSignPIR"],
        encoding="raw",
    )
    seq = other["tbsOtherNotification"]["seqNumber"]
    one = lpa.es10(
        "RetrieveNotificationsListRequest",
        {"searchCriteria": ("seqNumber", seq)},
        "RetrieveNotificationsListResponse",
    )
    assert one == ("notificationList", [pending[2]])
    assert lpa.es10("NotificationSentRequest", {"seqNumber": seq}, "NotificationSentResponse") == {
        "deleteNotificationStatus": 0
    }
    assert lpa.es10("NotificationSentRequest", {"seqNumber": seq}, "NotificationSentResponse") == {
        "deleteNotificationStatus": 1
    }
    gone = lpa.es10(
        "RetrieveNotificationsListRequest",
        {"searchCriteria": ("seqNumber", seq)},
        "RetrieveNotificationsListResponse",
    )
    assert gone == ("notificationsListResultError", 1)
    # Notifications survive a reset (they are in persistent memory).
    rt.reset()
    lpa = Lpa(rt)
    assert len(lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1]) == 2


def test_set_nickname_get_eid_and_addresses(installed: tuple[Any, Lpa, TestSmdp]) -> None:
    _, lpa, _ = installed
    assert lpa.es10(
        "SetNicknameRequest",
        {"iccid": iccid_to_bytes(TS48_ICCID), "profileNickname": "work"},
        "SetNicknameResponse",
    ) == {"setNicknameResult": 0}
    assert lpa.es10(
        "SetNicknameRequest",
        {"iccid": iccid_to_bytes("11"), "profileNickname": "x"},
        "SetNicknameResponse",
    ) == {"setNicknameResult": 1}
    _, infos = lpa.es10("ProfileInfoListRequest", {"tagList": b"\x90"}, "ProfileInfoListResponse")
    assert infos[0]["profileNickname"] == "work"
    assert lpa.es10("EuiccConfiguredAddressesRequest", {}, "EuiccConfiguredAddressesResponse") == {
        "rootDsAddress": "lpa.ds.gsma.com"
    }
    assert lpa.es10(
        "SetDefaultDpAddressRequest",
        {"defaultDpAddress": "dp.example"},
        "SetDefaultDpAddressResponse",
    ) == {"setDefaultDpAddressResult": 0}
    assert (
        lpa.es10("EuiccConfiguredAddressesRequest", {}, "EuiccConfiguredAddressesResponse")[
            "defaultDpAddress"
        ]
        == "dp.example"
    )
    assert lpa.es10(
        "SetDefaultDpAddressRequest", {"defaultDpAddress": ""}, "SetDefaultDpAddressResponse"
    ) == {"setDefaultDpAddressResult": 0}
    assert "defaultDpAddress" not in lpa.es10(
        "EuiccConfiguredAddressesRequest", {}, "EuiccConfiguredAddressesResponse"
    )


def test_memory_reset_by_class() -> None:
    rt, lpa = _lpa_with_two_profiles()
    lpa.es10(
        "SetDefaultDpAddressRequest",
        {"defaultDpAddress": "dp.example"},
        "SetDefaultDpAddressResponse",
    )
    lpa.es10(
        "EnableProfileRequest",
        {"profileIdentifier": ICCID_ID, "refreshFlag": True},
        "EnableProfileResponse",
    )
    # Test profiles only: the operational one (enabled) stays.
    assert lpa.es10(
        "EuiccMemoryResetRequest", {"resetOptions": bits_from_names(1)}, "EuiccMemoryResetResponse"
    ) == {"resetResult": 0}
    _, infos = lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")
    assert [i["iccid"] for i in infos] == [iccid_to_bytes(TS48_ICCID)]
    assert lpa.es10(
        "EuiccMemoryResetRequest", {"resetOptions": bits_from_names(1)}, "EuiccMemoryResetResponse"
    ) == {"resetResult": 1}
    # Operational profiles (even the enabled one) and the default SM-DP+ address.
    assert lpa.es10(
        "EuiccMemoryResetRequest",
        {"resetOptions": bits_from_names(0, 2)},
        "EuiccMemoryResetResponse",
    ) == {"resetResult": 0}
    assert lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse") == (
        "profileInfoListOk",
        [],
    )
    assert "defaultDpAddress" not in lpa.es10(
        "EuiccConfiguredAddressesRequest", {}, "EuiccConfiguredAddressesResponse"
    )
    # ... and the ICCID can be downloaded again.
    assert TestSmdp().check_pir is not None
    smdp = TestSmdp()
    pir, _ = download(lpa, smdp)
    assert smdp.check_pir(pir)["finalResult"][0] == "successResult"


def test_preloaded_profile_is_listed_and_manageable() -> None:
    from applets.usim import UICC_AID
    from card.uicc.builder import sample_profile

    rt = euicc_card()
    store = rt.applet(UICC_AID)
    iccid = store.install_profile(sample_profile().to_bytes())
    lpa = Lpa(rt)
    _, infos = lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")
    assert infos[0]["iccid"] == iccid_to_bytes(iccid) and infos[0]["profileName"] == "cardemu test"
    aid = infos[0]["isdpAid"]
    assert lpa.es10(
        "EnableProfileRequest",
        {"profileIdentifier": ("isdpAid", aid), "refreshFlag": True},
        "EnableProfileResponse",
    ) == {"enableResult": 0}
    assert lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse") == (
        "notificationMetadataList",
        [],
    )


def test_get_rat_answers_the_rules_applied() -> None:
    # PPR1 and PPR2 are what ES10c enforces (test_sgp22_refusals): one rule, any operator.
    lpa = Lpa(euicc_card())
    rat = lpa.es10("GetRatRequest", {}, "GetRatResponse")["rat"]
    assert len(rat) == 1 and bits_to_set(rat[0]["pprIds"]) == {1, 2}
    assert rat[0]["allowedOperators"] == [{"mccMnc": b"\xee\xee\xee"}]
    assert bits_to_set(rat[0]["pprFlags"]) == set()


def test_profile_and_notifications_survive_the_card_image(tmp_path: Any) -> None:
    from card.runtime import CardRuntime
    from host.presets import new_card

    image = str(tmp_path / "euicc.card")
    rt = new_card("euicc", image)
    rt.power_on()
    lpa = Lpa(rt)
    smdp = TestSmdp()
    assert smdp.check_pir(download(lpa, smdp)[0])["finalResult"][0] == "successResult"
    rt.close()
    rt = CardRuntime(image)
    rt.power_on()
    lpa = Lpa(rt)
    (info,) = lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")[1]
    assert info["iccid"] == iccid_to_bytes(TS48_ICCID)
    assert [
        m["seqNumber"]
        for m in lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1]
    ] == [1]
    res = lpa.es10(
        "EnableProfileRequest",
        {"profileIdentifier": ICCID_ID, "refreshFlag": True},
        "EnableProfileResponse",
    )
    assert res == {"enableResult": 0}
