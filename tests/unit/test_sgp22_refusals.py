"""Refusals of the eUICC during a download, each with its SGP.22 error code and nothing installed.

GSMA SGP.22 v2.x: AuthenticateServer (§5.7.13, AuthenticateErrorCode),
PrepareDownload (§5.7.5, DownloadErrorCode), LoadBoundProfilePackage (§5.7.6:
a ProfileInstallationResult with bppCommandId and errorReason). After each
refusal the profile list is unchanged and a new download works.
"""

from __future__ import annotations

from typing import Any

import pytest

from card.runtime import CardTorn
from card.sgp22 import asn1
from host.pki import create_pki
from tests.unit.sgp22_helpers import (
    TS48_ICCID,
    Lpa,
    TestSmdp,
    download,
    euicc_card,
    ts48_minimal,
)

SMALL = ts48_minimal()

# BppCommandId and ErrorReason (SGP.22 Annex H).
ISC, CONFIGURE, METADATA, REPLACE_KEYS, ELEMENTS = 0, 1, 2, 4, 5
INVALID_SIGNATURE, INVALID_TXID, SCP03T_STRUCTURE, SCP03T_SECURITY, ICCID_EXISTS = 2, 3, 7, 8, 9


def _profiles(lpa: Lpa) -> list[Any]:
    return lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")[1]


def _challenge(lpa: Lpa) -> bytes:
    return lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")["euiccChallenge"]


def _auth(lpa: Lpa, req: dict[str, Any]) -> Any:
    return lpa.es10("AuthenticateServerRequest", req, "AuthenticateServerResponse")


def _error_of(smdp: TestSmdp, pir: bytes | None) -> tuple[int, int]:
    assert pir is not None
    kind, err = smdp.check_pir(pir)["finalResult"]
    assert kind == "errorResult"
    return err["bppCommandId"], err["errorReason"]


def _assert_recovers(lpa: Lpa) -> None:
    """Nothing was installed, and a clean download now goes through."""
    assert _profiles(lpa) == []
    smdp = TestSmdp()
    pir, _ = download(lpa, smdp)
    assert smdp.check_pir(pir)["finalResult"][0] == "successResult"
    assert len(_profiles(lpa)) == 1


# -- AuthenticateServer ---------------------------------------------------------------------------


def test_server_certificate_from_an_unknown_ci() -> None:
    lpa = Lpa(euicc_card())
    stranger = create_pki(seed=b"another CI")  # same EUM range, another root
    smdp = TestSmdp(pki=stranger)
    req = smdp.authenticate_server_request(_challenge(lpa))
    req["euiccCiPKIdToBeUsed"] = (
        TestSmdp().pki.ci.ski
    )  # the eUICC's own CI: only the cert is foreign
    assert _auth(lpa, req) == (
        "authenticateResponseError",
        {"transactionId": smdp.transaction_id, "authenticateErrorCode": 7},  # ciPKUnknown
    )
    req = smdp.authenticate_server_request(_challenge(lpa))  # names the foreign CI
    assert _auth(lpa, req)[1]["authenticateErrorCode"] == 7
    _assert_recovers(lpa)


def test_bad_server_signature1() -> None:
    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    req = smdp.authenticate_server_request(_challenge(lpa))
    sig = bytearray(req["serverSignature1"])
    sig[5] ^= 0x01
    req["serverSignature1"] = bytes(sig)
    assert _auth(lpa, req)[1]["authenticateErrorCode"] == 2  # invalidSignature
    _assert_recovers(lpa)


def test_wrong_role_certificate_and_challenge_mismatch() -> None:
    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    req = smdp.authenticate_server_request(_challenge(lpa))
    req["serverCertificate"] = asn1.decode("Certificate", smdp.pki.dppb.der)  # DPpb is not DPauth
    assert _auth(lpa, req)[1]["authenticateErrorCode"] == 5  # invalidOid
    stale = _challenge(lpa)
    _challenge(lpa)  # a newer challenge replaces it
    assert _auth(lpa, smdp.authenticate_server_request(stale))[1]["authenticateErrorCode"] == 6
    _assert_recovers(lpa)


# -- PrepareDownload -------------------------------------------------------------------------------


def _authenticated(lpa: Lpa, smdp: TestSmdp) -> bytes:
    return lpa.call(
        asn1.encode("AuthenticateServerRequest", smdp.authenticate_server_request(_challenge(lpa)))
    )


def test_prepare_download_wrong_transaction_id_and_bad_signature() -> None:
    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    auth = _authenticated(lpa, smdp)
    req = smdp.prepare_download_request(auth)
    req["smdpSigned2"] = {**req["smdpSigned2"], "transactionId": b"\x66" * 8}
    # The signature no longer covers the changed smdpSigned2: the signature fails first.
    out = lpa.es10("PrepareDownloadRequest", req, "PrepareDownloadResponse")
    assert out == ("downloadResponseError", {"transactionId": b"\x66" * 8, "downloadErrorCode": 2})
    # Signed correctly by the SM-DP+, but for another transaction: invalidTransactionId (5).
    other = TestSmdp(transaction_id=b"\x66" * 8)
    other.session = smdp.session
    kind, ok = asn1.decode("AuthenticateServerResponse", auth)
    req = other.prepare_download_request(auth)
    out = lpa.es10("PrepareDownloadRequest", req, "PrepareDownloadResponse")
    assert out == ("downloadResponseError", {"transactionId": b"\x66" * 8, "downloadErrorCode": 5})
    _assert_recovers(lpa)


def test_prepare_download_without_a_session() -> None:
    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    auth = _authenticated(lpa, smdp)
    req = smdp.prepare_download_request(auth)
    lpa.rt.reset()
    lpa = Lpa(lpa.rt)
    out = lpa.es10("PrepareDownloadRequest", req, "PrepareDownloadResponse")
    assert out[1]["downloadErrorCode"] == 4  # noSessionContext: a reset ended it
    _assert_recovers(lpa)


# -- LoadBoundProfilePackage -----------------------------------------------------------------------


def _tampered(fn: Any) -> tuple[Lpa, TestSmdp, bytes | None]:
    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    pir, _ = download(lpa, smdp, ppk=True, tamper=fn)
    return lpa, smdp, pir


def _flip_last(seg: bytes) -> bytes:
    return seg[:-1] + bytes((seg[-1] ^ 0x01,))


def _index(segs: list[bytes], tag: int, n: int = 0) -> int:
    return [i for i, s in enumerate(segs) if s[0] == tag][n]


@pytest.mark.parametrize(
    ("tag", "command"),
    [(0xA0, CONFIGURE), (0x88, METADATA), (0xA2, REPLACE_KEYS), (0x86, ELEMENTS)],
)
def test_bad_mac_in_any_segment(tag: int, command: int) -> None:
    def tamper(segs: list[bytes]) -> list[bytes]:
        i = _index(segs, tag)
        return segs[:i] + [_flip_last(segs[i])] + segs[i + 1 :]

    lpa, smdp, pir = _tampered(tamper)
    assert _error_of(smdp, pir) == (command, SCP03T_SECURITY)
    _assert_recovers(lpa)


def test_replayed_segment() -> None:
    def tamper(segs: list[bytes]) -> list[bytes]:
        i = _index(segs, 0x86, 1)
        return segs[:i] + [segs[i - 1]] + segs[i:]

    lpa, smdp, pir = _tampered(tamper)
    assert _error_of(smdp, pir) == (ELEMENTS, SCP03T_SECURITY)
    _assert_recovers(lpa)


def test_reordered_segments() -> None:
    def tamper(segs: list[bytes]) -> list[bytes]:
        i = _index(segs, 0x86, 2)
        return segs[:i] + [segs[i + 1], segs[i]] + segs[i + 2 :]

    lpa, smdp, pir = _tampered(tamper)
    assert _error_of(smdp, pir) == (ELEMENTS, SCP03T_SECURITY)
    _assert_recovers(lpa)


def test_bad_smdp_sign_and_wrong_transaction_in_initialise_secure_channel() -> None:
    def bad_sign(segs: list[bytes]) -> list[bytes]:
        first = bytearray(segs[0])
        first[-3] ^= 0x01  # inside smdpSign, the last TLV of BF23
        return [bytes(first)] + segs[1:]

    lpa, smdp, pir = _tampered(bad_sign)
    assert _error_of(smdp, pir) == (ISC, INVALID_SIGNATURE)
    _assert_recovers(lpa)

    lpa = Lpa(euicc_card())
    smdp = TestSmdp()
    auth = _authenticated(lpa, smdp)
    prep = lpa.call(asn1.encode("PrepareDownloadRequest", smdp.prepare_download_request(auth)))
    smdp.transaction_id = b"\x77" * 8  # the BPP is bound to another transaction
    from tests.unit.sgp22_helpers import bpp_segments

    pir = lpa.load_bpp(bpp_segments(smdp.bound_profile_package(prep)))
    assert _error_of(smdp, pir) == (ISC, INVALID_TXID)
    _assert_recovers(lpa)


def test_structure_error_for_a_segment_out_of_place() -> None:
    def tamper(segs: list[bytes]) -> list[bytes]:
        i = _index(segs, 0xA1)
        return segs[:i] + [segs[i + 1]] + segs[i:]  # an 88 segment before its A1 header

    lpa, smdp, pir = _tampered(tamper)
    assert _error_of(smdp, pir) == (METADATA, SCP03T_STRUCTURE)
    _assert_recovers(lpa)


def test_bpp_cut_off_mid_way_then_a_new_download_works() -> None:
    lpa, smdp, pir = _tampered(lambda segs: segs[: _index(segs, 0x86, 3)])
    assert pir is None  # the card waits for the rest
    assert _profiles(lpa) == []
    _assert_recovers(lpa)


def test_profile_whose_iccid_is_already_installed() -> None:
    lpa = Lpa(euicc_card())
    first = TestSmdp()
    assert first.check_pir(download(lpa, first)[0])["finalResult"][0] == "successResult"
    again = TestSmdp(transaction_id=b"\x09" * 8)
    pir, segs = download(lpa, again)
    assert _error_of(again, pir) == (METADATA, ICCID_EXISTS)
    # Refused at StoreMetadata, before any profile element was sent.
    assert (
        _profiles(lpa)[0]["iccid"]
        == asn1.decode(
            "StoreMetadataRequest", asn1.encode("StoreMetadataRequest", first.metadata())
        )["iccid"]
    )
    assert len(_profiles(lpa)) == 1


def test_error_pir_is_a_pending_notification() -> None:
    lpa, smdp, pir = _tampered(lambda segs: segs[:-1] + [_flip_last(segs[-1])])
    listed = lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1]
    assert [m["seqNumber"] for m in listed] == [1]
    kind, pending = lpa.es10(
        "RetrieveNotificationsListRequest", {}, "RetrieveNotificationsListResponse"
    )
    assert asn1.encode("ProfileInstallationResult", pending[0][1]) == pir


# -- tears -----------------------------------------------------------------------------------------


def test_tear_at_every_write_during_load_bound_profile_package() -> None:
    """Power lost after the n-th NVM write of the BPP, for every n: nothing or everything."""
    rt = euicc_card()
    n = 0
    while True:
        lpa = Lpa(rt)
        smdp = TestSmdp(transaction_id=n.to_bytes(4, "big"), upp=SMALL)
        challenge = _challenge(lpa)
        auth = lpa.call(
            asn1.encode("AuthenticateServerRequest", smdp.authenticate_server_request(challenge))
        )
        prep = lpa.call(asn1.encode("PrepareDownloadRequest", smdp.prepare_download_request(auth)))
        from tests.unit.sgp22_helpers import bpp_segments

        segs = bpp_segments(smdp.bound_profile_package(prep))
        rt.nvm.tear_after(n)
        try:
            pir = lpa.load_bpp(segs)
        except CardTorn:
            rt.power_on()
            lpa = Lpa(rt)
            assert _profiles(lpa) == [], f"tear after {n} writes left a profile"
            assert lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1] == []
            n += 1
            continue
        rt.nvm.tear_after(None)
        assert smdp.check_pir(pir)["finalResult"][0] == "successResult"
        break
    assert (
        n > 40
    )  # the profile's files, PINs, keys, the ISD-R record and the PIR were each a tear point
    lpa = Lpa(rt)
    (info,) = _profiles(lpa)
    assert info["profileState"] == 0
    assert [
        m["seqNumber"]
        for m in lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1]
    ] == [1]
    assert TS48_ICCID
