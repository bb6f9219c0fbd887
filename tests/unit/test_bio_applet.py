"""The biometric applet: enrolment and verification flows, discovery, the try counter under
tears, per-channel state, and the status words of bad input (which cost no try)."""

from __future__ import annotations

import pytest

from applets.biometric import bit, matcher
from applets.biometric.applet import (
    BIO_AID,
    DEFAULT_ADMIN_KEY,
    DEFAULT_RETRY_LIMIT,
    DEFAULT_THRESHOLD,
    BiometricApplet,
)
from applets.biometric.iso19794 import Minutia, build_biometric_data, encode_minutiae
from card import tlv
from card.crypto.cmac import aes_ecb_encrypt
from card.framework.catalogue import Catalogue
from card.runtime import CardRuntime, CardTorn
from host.bio.session import BioSession, enrolment_objects, policy_object
from host.bio.synthetic import make_dataset
from host.readers.inprocess import InProcessReader

DS = make_dataset(3, 3, seed=42)
REF = DS.impressions[0][0]
GENUINE = DS.impressions[0][1]
IMPOSTOR = DS.impressions[1][0]
OTHER_FINGER = DS.impressions[2][0]


def test_fixture_pairs_are_what_the_tests_assume() -> None:
    t = encode_minutiae
    assert matcher.score(t(REF), t(GENUINE)) >= DEFAULT_THRESHOLD
    assert matcher.score(t(REF), t(IMPOSTOR)) < DEFAULT_THRESHOLD
    assert matcher.score(t(OTHER_FINGER), t(GENUINE)) < DEFAULT_THRESHOLD


def card(params: bytes = b"") -> CardRuntime:
    rt = CardRuntime(rng_seed=3)
    rt.install(BiometricApplet, BIO_AID, params, default=True)
    rt.power_on()
    return rt


def tx(rt: CardRuntime, apdu: bytes | str) -> str:
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    return rt.process(raw).hex().upper()


def sw(rt: CardRuntime, apdu: bytes | str) -> str:
    return tx(rt, apdu)[-4:]


def admin(rt: CardRuntime, key: bytes = DEFAULT_ADMIN_KEY, cla: int = 0) -> str:
    challenge = bytes.fromhex(tx(rt, bytes((cla, 0x84, 0, 0, 16)))[:-4])
    return sw(rt, bytes((cla, 0x82, 0, 0x9B, 16)) + aes_ecb_encrypt(key, challenge))


def put(rt: CardRuntime, objects: bytes, cla: int = 0) -> str:
    return sw(rt, bytes((cla, 0xDB, 0x3F, 0xFF, len(objects))) + objects)


def verify_apdu(
    ms: bytes | tuple[Minutia, ...] | list[Minutia], ref: int = 0x96, cla: int = 0
) -> bytes:
    data = ms if isinstance(ms, bytes) else build_biometric_data(ms)
    return bytes((cla, 0x20, 0x00, ref, len(data))) + data


def enrolled(params: bytes = b"", *fingers: tuple[int, tuple[Minutia, ...]]) -> CardRuntime:
    rt = card(params)
    assert admin(rt) == "9000"
    for ref, ms in fingers or ((0x96, REF),):
        assert put(rt, enrolment_objects(ref, ms, 0x09)) == "9000"
    rt.reset()  # drop the administrative state
    return rt


def applet(rt: CardRuntime) -> BiometricApplet:
    a = rt.applet(BIO_AID)
    assert isinstance(a, BiometricApplet)
    return a


def clean(rt: CardRuntime) -> None:
    assert rt.exceptions == 0, rt.last_exception
    assert rt.nvm_violations == 0


# -- enrolment ------------------------------------------------------------------------------


def test_enrolment_needs_the_admin_key() -> None:
    rt = card()
    assert put(rt, enrolment_objects(0x96, REF)) == "6982"
    assert admin(rt, bytes(16)) == "63C4"  # wrong key: a try gone
    assert put(rt, enrolment_objects(0x96, REF)) == "6982"
    assert admin(rt) == "9000"
    assert applet(rt).admin_tries == 5  # restored by the right key
    assert put(rt, enrolment_objects(0x96, REF, 0x09)) == "9000"
    assert applet(rt).fingers == ((0x96, 0x09, encode_minutiae(REF)),)
    rt.reset()
    assert put(rt, enrolment_objects(0x97, REF)) == "6982"  # the admin state died with the reset
    clean(rt)


def test_admin_key_blocks_and_external_authenticate_checks() -> None:
    rt = card()
    assert sw(rt, "0082009B10" + "00" * 16) == "6985"  # no challenge asked
    assert sw(rt, "0082009C10" + "00" * 16) == "6A88"  # not the admin key reference
    assert sw(rt, "0082019B10" + "00" * 16) == "6A86"
    assert sw(rt, "0084000008") == "6700"
    for left in (4, 3, 2, 1, 0):
        assert admin(rt, b"\x01" * 16) == f"63C{left}"
    assert admin(rt) == "6983"  # blocked: even the right key
    clean(rt)


def test_bit_group_by_get_data_piv_and_iso() -> None:
    rt = enrolled(b"", (0x96, REF), (0x97, OTHER_FINGER))
    piv = tx(rt, "00CB3FFF045C027F6100")
    iso = tx(rt, "00CA7F6100")
    assert piv == iso and piv.endswith("9000")
    infos = bit.parse_group(bytes.fromhex(piv[:-4]))
    assert [(i.reference, i.subtype) for i in infos] == [(0x96, 0x09), (0x97, 0x09)]
    assert all((i.min_minutiae, i.max_minutiae) == (12, 60) for i in infos)
    assert all((i.format_owner, i.format_type) == (0x0101, 0x0006) for i in infos)
    assert sw(rt, "00CB3FFF035C015F00") == "6A82"  # another object
    assert sw(rt, "00CB3FFF025C05") == "6A80"  # malformed tag list
    assert sw(rt, "00CB3FFE045C027F6100") == "6A86"
    assert sw(rt, "00CA7F6000") == "6A88"
    clean(rt)


def test_empty_card_announces_no_finger_and_verify_finds_no_reference() -> None:
    rt = card()
    assert bit.parse_group(bytes.fromhex(tx(rt, "00CA7F6100")[:-4])) == ()
    assert sw(rt, verify_apdu(GENUINE)) == "6A88"
    assert sw(rt, "0020009600") == "6A88"
    clean(rt)


def test_policy_removal_and_replacement_in_one_transaction() -> None:
    rt = enrolled(b"", (0x96, REF), (0x97, OTHER_FINGER))
    assert admin(rt) == "9000"
    new_key = bytes(range(16))
    objects = (
        policy_object(retry_limit=3, threshold=2000, minutiae=(10, 50), admin_key=new_key)
        + tlv.build(0x7F60, [(0x83, b"\x97")])  # remove 97
    )
    assert put(rt, objects) == "9000"
    a = applet(rt)
    assert (a.retry_limit, a.threshold, a.min_minutiae, a.max_minutiae) == (3, 2000, 10, 50)
    assert [f[0] for f in a.fingers] == [0x96]
    assert a.tries == 3
    # A bad object anywhere leaves everything as it was.
    before = (a.fingers, a.retry_limit, a.threshold)
    bad = policy_object(threshold=500) + tlv.build(0x7F60, [(0x83, b"\x90")])  # 90 not enrolled
    assert put(rt, bad) == "6A88"
    assert (a.fingers, a.retry_limit, a.threshold) == before
    rt.reset()
    assert admin(rt) == "63C4"  # the old key is gone
    assert admin(rt, new_key) == "9000"
    clean(rt)


@pytest.mark.parametrize(
    ("objects", "status"),
    [
        (b"", "6A80"),
        (bytes.fromhex("7F60"), "6A80"),  # not TLV
        (tlv.build(0x7F60, [(0x83, b"\x16")]) + build_biometric_data(REF), "6A80"),  # not specific
        (tlv.build(0x7F60, [(0x82, b"\x09")]) + build_biometric_data(REF), "6A80"),  # no 83
        (enrolment_objects(0x96, REF[:5]), "6700"),  # too few minutiae
        (
            enrolment_objects(0x96, tuple(REF) * 2)[:0] + enrolment_objects(0x96, bytes(3 * 61)),
            "6700",
        ),
        (enrolment_objects(0x96, bytes((1, 2, 0xC0)) * 20), "6A80"),  # reserved type
        (policy_object(retry_limit=0), "6A80"),
        (policy_object(threshold=10001), "6A80"),
        (tlv.build(0xE1, [(0x85, b"\x01")]), "6A80"),
        (tlv.build(0x5F2E, b"\x00"), "6A80"),
    ],
)
def test_bad_enrolment_data(objects: bytes, status: str) -> None:
    rt = card()
    assert admin(rt) == "9000"
    before = applet(rt).fingers
    assert put(rt, objects) == status
    assert applet(rt).fingers == before
    clean(rt)


def test_too_many_fingers() -> None:
    rt = card()
    assert admin(rt) == "9000"
    for ref in range(0x81, 0x8B):
        assert put(rt, enrolment_objects(ref, REF)) == "9000"
    assert put(rt, enrolment_objects(0x8B, REF)) == "6A84"
    assert len(applet(rt).fingers) == 10
    clean(rt)


def test_install_parameters_set_the_policy() -> None:
    rt = card(policy_object(retry_limit=7, threshold=1234))
    a = applet(rt)
    assert (a.retry_limit, a.tries, a.threshold) == (7, 7, 1234)


def test_catalogue_entry_point_names_the_applet() -> None:
    cat = Catalogue()
    try:
        cls = cat.resolve("applets.biometric.applet:BiometricApplet")
    except Exception as e:  # noqa: BLE001 - the catalogue's own error type
        pytest.fail(f"catalogue refused the biometric applet: {e}")
    assert cls is BiometricApplet


# -- verification -----------------------------------------------------------------------------


def test_match_then_status_then_reset_and_deselect_clear_it() -> None:
    rt = enrolled()
    assert sw(rt, "0020009600") == f"63C{DEFAULT_RETRY_LIMIT}"
    assert sw(rt, verify_apdu(GENUINE)) == "9000"
    assert sw(rt, "0020009600") == "9000"
    assert applet(rt).tries == DEFAULT_RETRY_LIMIT
    rt.reset()
    assert sw(rt, "0020009600") == "63C5"
    assert sw(rt, verify_apdu(GENUINE)) == "9000"
    assert sw(rt, "00A4040C09F043415244454D5501") == "6A82"  # no such applet: still selected
    assert sw(rt, "0020009600") == "9000"
    assert sw(rt, "00A4040C09" + BIO_AID.hex()) == "9000"  # selected anew: deselected first
    assert sw(rt, "0020009600") == "63C5"
    clean(rt)


def test_verified_state_is_per_channel_and_per_reference() -> None:
    rt = enrolled(b"", (0x96, REF), (0x97, OTHER_FINGER))
    assert tx(rt, "0070000001") == "019000"
    assert sw(rt, "01A4040C09" + BIO_AID.hex()) == "9000"
    assert sw(rt, verify_apdu(GENUINE, cla=1)) == "9000"
    assert sw(rt, "0120009600") == "9000"
    assert sw(rt, "0020009600") == "63C5"  # channel 0 did not verify
    assert sw(rt, "0120009700") == "63C5"  # 97 is another finger
    assert sw(rt, "01A4040C09" + BIO_AID.hex()) == "9000"  # reselect: deselect first
    assert sw(rt, "0120009600") == "63C5"
    clean(rt)


def test_non_match_counts_down_to_blocked() -> None:
    rt = enrolled()
    for left in (4, 3, 2, 1, 0):
        assert sw(rt, verify_apdu(IMPOSTOR)) == f"63C{left}"
        assert sw(rt, "0020009600") == (f"63C{left}" if left else "6983")
    assert sw(rt, verify_apdu(GENUINE)) == "6983"  # blocked: no comparison, even for the owner
    assert applet(rt).tries == 0
    # The administrator unblocks.
    assert sw(rt, "002C0396") == "6982"
    assert admin(rt) == "9000"
    assert sw(rt, "002C0396") == "9000"
    assert sw(rt, verify_apdu(GENUINE)) == "9000"
    clean(rt)


def test_a_match_restores_the_counter_and_a_failure_clears_the_status() -> None:
    rt = enrolled()
    assert sw(rt, verify_apdu(IMPOSTOR)) == "63C4"
    assert sw(rt, verify_apdu(GENUINE)) == "9000"
    assert applet(rt).tries == DEFAULT_RETRY_LIMIT
    assert sw(rt, verify_apdu(IMPOSTOR)) == "63C4"
    assert sw(rt, "0020009600") == "63C4"  # the failed VERIFY dropped the verified state
    assert sw(rt, verify_apdu(GENUINE)) == "9000"
    assert sw(rt, "0020009600")[-4:] == "9000"
    assert sw(rt, "0020FF96") == "9000"  # P1 = FF: reset the status
    assert sw(rt, "0020009600") == "63C5"
    clean(rt)


def test_counter_is_shared_by_all_fingers() -> None:
    rt = enrolled(b"", (0x96, REF), (0x97, OTHER_FINGER))
    assert sw(rt, verify_apdu(IMPOSTOR, 0x96)) == "63C4"
    assert sw(rt, verify_apdu(IMPOSTOR, 0x97)) == "63C3"
    assert sw(rt, verify_apdu(OTHER_FINGER, 0x97)) == "9000"
    clean(rt)


def _no_try_spent(rt: CardRuntime, apdu: bytes | str, status: str) -> None:
    tries = applet(rt).tries
    assert sw(rt, apdu) == status
    assert applet(rt).tries == tries, f"{status} cost a try"


def test_bad_input_gets_its_status_word_and_costs_no_try() -> None:
    rt = enrolled()
    bdo = build_biometric_data(GENUINE)
    _no_try_spent(rt, verify_apdu(GENUINE, ref=0x97), "6A88")  # wrong P2
    _no_try_spent(rt, b"\x00\x20\x01\x96" + bytes((len(bdo),)) + bdo, "6A86")  # wrong P1
    _no_try_spent(rt, verify_apdu(bdo[:-1]), "6A80")  # malformed 7F2E
    _no_try_spent(rt, verify_apdu(b"\x5f\x2e" + bdo[2:]), "6A80")  # another tag
    not_whole = bytes.fromhex("7F2E0481020102")
    _no_try_spent(rt, verify_apdu(not_whole), "6A80")  # not a whole number of minutiae
    _no_try_spent(rt, verify_apdu(GENUINE[:11]), "6700")  # too few
    too_many = build_biometric_data(bytes((1, 2, 0x41)) * 61)
    _no_try_spent(rt, verify_apdu(too_many), "6700")  # too many
    bad_type = bytearray(encode_minutiae(GENUINE))
    bad_type[2] |= 0xC0
    out_of_range = build_biometric_data(bytes(bad_type))
    _no_try_spent(rt, verify_apdu(out_of_range), "6A80")  # a minutia of the reserved type
    _no_try_spent(rt, "0020FF9601AA", "6700")  # P1 = FF takes no data
    assert applet(rt).tries == DEFAULT_RETRY_LIMIT
    assert sw(rt, verify_apdu(IMPOSTOR)) == "63C4"  # a comparison ran: that one counts
    clean(rt)


def test_long_template_by_chaining_and_extended_length() -> None:
    rt = enrolled()
    s = BioSession(InProcessReader(rt))
    bdo = build_biometric_data(GENUINE)
    assert len(bdo) > 64
    head, tail = bdo[:64], bdo[64:]
    assert sw(rt, b"\x10\x20\x00\x96" + bytes((len(head),)) + head) == "9000"  # chained
    assert sw(rt, b"\x00\x20\x00\x96" + bytes((len(tail),)) + tail) == "9000"
    assert s.status(0x96).matched
    assert sw(rt, b"\x00\x20\x00\x96\x00" + len(bdo).to_bytes(2, "big") + bdo) == "9000"
    clean(rt)


def test_store_data_only_through_a_security_domain() -> None:
    rt = card()
    objects = enrolment_objects(0x96, REF)
    assert sw(rt, bytes((0x80, 0xE2, 0x80, 0x00, len(objects))) + objects) == "6982"
    assert applet(rt).fingers == ()


def test_gp_personalization_enrols_through_the_isd() -> None:
    isd_mod = pytest.importorskip("card.gp.isd")
    from card.gp.scp03 import Scp03Keys
    from host.gp.secure_channel import Scp03Reader

    rt = CardRuntime(rng_seed=5)
    rt.install(isd_mod.IssuerSecurityDomain, isd_mod.ISD_AID, default=True)
    rt.install(BiometricApplet, BIO_AID)
    rt.power_on()
    reader = Scp03Reader(InProcessReader(rt), Scp03Keys.test_keys(), level=0x03)
    reader.open()
    # INSTALL [for personalization] (GPC v2.3.1 Table 11-47): only the application's AID.
    fields = b"\x00\x00" + bytes((len(BIO_AID),)) + BIO_AID + b"\x00\x00\x00"
    assert (
        reader.transmit(bytes((0x80, 0xE6, 0x20, 0x00, len(fields))) + fields)[-2:] == b"\x90\x00"
    )
    objects = enrolment_objects(0x96, REF, 0x09)
    assert (
        reader.transmit(bytes((0x80, 0xE2, 0x80, 0x00, len(objects))) + objects)[-2:] == b"\x90\x00"
    )
    assert applet(rt).fingers == ((0x96, 0x09, encode_minutiae(REF)),)
    s = BioSession(InProcessReader(rt))
    s.select()
    assert s.verify(0x96, GENUINE).matched
    clean(rt)


# -- tears ------------------------------------------------------------------------------------


def _torn(rt: CardRuntime, apdu: bytes, n: int) -> bool:
    rt.nvm.tear_after(n)
    try:
        rt.process(apdu)
    except CardTorn:
        rt.power_on()
        return True
    finally:
        rt.nvm.tear_after(None)
    return False


@pytest.mark.parametrize("probe", ["impostor", "genuine"])
def test_a_tear_never_buys_a_free_try(probe: str) -> None:
    rt = enrolled()
    apdu = verify_apdu(IMPOSTOR if probe == "impostor" else GENUINE)
    a = applet(rt)
    n = 0
    while True:
        rt.reset()
        before = a.tries
        if not _torn(rt, apdu, n):
            break
        # Torn: the counter never went up, and the card is not verified.
        assert a.tries <= before
        assert sw(rt, "0020009600") in (f"63C{a.tries}", "6983")
        n += 1
    assert n >= 1  # the decrement is a write the tear could hit
    expected = DEFAULT_RETRY_LIMIT if probe == "genuine" else before - 1
    assert a.tries == expected
    clean(rt)


def test_enrolment_is_all_or_nothing_under_tears() -> None:
    rt = enrolled()
    a = applet(rt)
    before = (a.fingers, a.tries, a.threshold)
    objects = policy_object(threshold=3000) + enrolment_objects(0x97, OTHER_FINGER)
    n = 0
    while True:
        rt.reset()
        assert admin(rt) == "9000"
        if not _torn(rt, bytes((0, 0xDB, 0x3F, 0xFF, len(objects))) + objects, n):
            break
        assert (a.fingers, a.tries, a.threshold) == before
        n += 1
    assert n >= 2
    assert a.threshold == 3000 and [f[0] for f in a.fingers] == [0x96, 0x97]


def test_nothing_secret_in_the_fci_and_no_template_in_any_answer() -> None:
    rt = enrolled()
    template = encode_minutiae(REF)
    answers = [
        tx(rt, "00A4040009" + BIO_AID.hex() + "00"),
        tx(rt, "00CA7F6100"),
        tx(rt, "00CB3FFF045C027F6100"),
        tx(rt, verify_apdu(GENUINE)),
        tx(rt, verify_apdu(IMPOSTOR)),
        tx(rt, "0020009600"),
    ]
    for ans in answers:
        raw = bytes.fromhex(ans)
        assert not any(template[k : k + 6] in raw for k in range(0, len(template) - 5, 3))
    assert all(len(a) == 4 for a in answers[3:])  # VERIFY answers carry a status word only


def test_sensor_presents_a_finger_fitted_to_the_bit() -> None:
    from host.bio.session import Sensor, TooFewMinutiae, fit_to_bit

    rt = enrolled()
    sensor = Sensor(BioSession(InProcessReader(rt)))
    assert sensor.present(GENUINE).matched
    assert not sensor.present(IMPOSTOR).matched
    with pytest.raises(TooFewMinutiae):
        sensor.present(GENUINE[:5])
    with pytest.raises(LookupError):
        sensor.present(GENUINE, reference=0x97)
    info = bit.BiometricInfo(0x96, min_minutiae=12, max_minutiae=20)
    many = tuple(Minutia(k, 2 * k, 1, k % 64) for k in range(40))
    kept = fit_to_bit(many, info)
    assert len(kept) == 20
    assert Minutia(20, 40, 1, 20) in kept and Minutia(0, 0, 1, 0) not in kept  # the centre stays
    assert applet(rt).tries == DEFAULT_RETRY_LIMIT - 1  # only the impostor cost a try
