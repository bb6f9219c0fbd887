"""The PIV applet (NIST SP 800-73-4): SELECT, data objects, PIN/PUK, the management key,
generation and use of the slot keys (signatures checked with `cryptography`), refusals,
tears, reproducibility and no private key in any response."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from applets.biometric.applet import BIO_AID, BiometricApplet
from applets.piv import PIV_AID, PivApplet
from applets.piv.applet import pad_pin, valid_pin
from applets.piv.objects import fasc_n, parse_fasc_n
from card import tlv
from card.runtime import CardRuntime, CardTorn
from host.bio.session import BioSession
from host.bio.synthetic import make_dataset
from host.errors import ApduError
from host.fuzz.targets import keypair_secrets
from host.piv import DEFAULT_MGMT_KEY, PivSession
from host.readers.inprocess import InProcessReader

PIN = b"123456"
PUK = b"12345678"


def new_card(seed: int = 7, params: bytes = b"") -> CardRuntime:
    rt = CardRuntime(rng_seed=seed)
    rt.install(PivApplet, PIV_AID, params)
    rt.power_on()
    return rt


def session(rt: CardRuntime) -> PivSession:
    s = PivSession(InProcessReader(rt))
    s.select()
    return s


def sw_of(call) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(ApduError) as exc:
        call()
    return exc.value.sw


@pytest.fixture
def card() -> CardRuntime:
    return new_card()


@pytest.fixture
def piv(card: CardRuntime) -> PivSession:
    return session(card)


# -- SELECT and data objects ------------------------------------------------------------


@pytest.mark.parametrize("aid", [PIV_AID, PIV_AID[:5]])
def test_select_answers_the_application_property_template(card: CardRuntime, aid: bytes) -> None:
    apt = PivSession(InProcessReader(card), aid).select()
    obj = tlv.Tlv.from_bytes(apt)
    assert obj.tag == 0x61
    assert obj.find(0x4F).value == bytes.fromhex("000010000100")  # type: ignore[union-attr]
    assert obj.find(0x79).find(0x4F).value == PIV_AID[:5]  # type: ignore[union-attr]
    algs = {c.value[0] for c in obj.find(0xAC).children if c.tag == 0x80}  # type: ignore[union-attr]
    assert {0x03, 0x08, 0x0A, 0x0C, 0x07, 0x11, 0x14} <= algs


def test_fasc_n_encodes_the_non_federal_issuer_as_published() -> None:
    # The FASC-N 9999-9999-999999-0-1-0000000000-3-0000-1 of yubico-piv-tool's CHUID
    # template (its published bytes), which is SP 800-73-4's non-federal issuer pattern.
    expected = "D4E739DA739CED39CE739D836858210842108421C84210C3EB"
    assert fasc_n().hex().upper() == expected


@given(
    st.fixed_dictionaries(
        {
            name: st.text(alphabet="0123456789", min_size=size, max_size=size)
            for name, size in (
                ("agency", 4),
                ("system", 4),
                ("credential", 6),
                ("series", 1),
                ("ici", 1),
                ("person", 10),
                ("org_category", 1),
                ("org", 4),
                ("association", 1),
            )
        }
    ),
    st.integers(0, 199),
)
def test_fasc_n_round_trips_and_a_flipped_bit_is_caught(fields: dict[str, str], bit: int) -> None:
    value = fasc_n(**fields)
    assert parse_fasc_n(value) == fields
    flipped = (int.from_bytes(value, "big") ^ (1 << bit)).to_bytes(25, "big")
    with pytest.raises(ValueError):
        parse_fasc_n(flipped)  # odd parity per character catches any single bit


def _contents(container: bytes) -> dict[int, bytes]:
    outer = tlv.Tlv.from_bytes(container)
    assert outer.tag == 0x53
    return {o.tag: o.value for o in tlv.parse(outer.value)}


def test_a_new_card_holds_chuid_ccc_and_discovery(piv: PivSession) -> None:
    chuid = _contents(piv.get_data(0x5FC102))
    assert chuid[0x30] == fasc_n() and len(chuid[0x34]) == 16 and chuid[0x3E] == b""
    assert len(_contents(piv.get_data(0x5FC107))[0xF0]) == 21
    disc = tlv.Tlv.from_bytes(piv.get_data(0x7E))
    assert disc.tag == 0x7E and disc.find(0x4F).value == PIV_AID  # type: ignore[union-attr]
    # PIN usage policy: the PIV PIN (40), the virtual contact interface with a pairing code (08)
    assert disc.find(0x5F2F).value == b"\x48\x00"  # type: ignore[union-attr]


def test_absent_and_unknown_objects_are_not_found(piv: PivSession) -> None:
    assert sw_of(lambda: piv.get_data(0x5FC105)) == 0x6A82
    assert sw_of(lambda: piv.get_data(0x5FC1FF)) == 0x6A82
    assert sw_of(lambda: piv.send(0, 0xCB, 0x3F, 0xFE, b"\x5c\x01\x7e")) == 0x6A86
    assert sw_of(lambda: piv.send(0, 0xCB, 0x3F, 0xFF, b"\x5d\x01\x7e")) == 0x6A80


def test_put_data_needs_the_management_key_and_reads_back(piv: PivSession) -> None:
    printed = tlv.build(0x01, b"A. Holder") + tlv.build(0xFE, b"")
    assert sw_of(lambda: piv.put_data(0x5FC109, printed)) == 0x6982
    piv.authenticate()
    piv.put_data(0x5FC109, printed)
    assert sw_of(lambda: piv.get_data(0x5FC109)) == 0x6982  # printed information: PIN
    piv.verify_pin(PIN)
    assert piv.get_data(0x5FC109) == tlv.build(0x53, printed)


def test_a_certificate_put_by_chaining_reads_back_whole(piv: PivSession) -> None:
    cert = bytes(range(256)) * 7
    body = tlv.build(0x70, cert) + tlv.build(0x71, b"\x00") + tlv.build(0xFE, b"")
    piv.authenticate()
    piv.put_data(0x5FC105, body)
    assert piv.get_data(0x5FC105) == tlv.build(0x53, body)
    piv.put_data(0x5FC105, b"")  # an empty container deletes it
    assert sw_of(lambda: piv.get_data(0x5FC105)) == 0x6A82


def test_put_data_of_discovery_and_refusals(piv: PivSession) -> None:
    piv.authenticate()
    disc = tlv.build(0x7E, [(0x4F, PIV_AID), (0x5F2F, b"\x40\x10")])
    piv.send(0, 0xDB, 0x3F, 0xFF, disc)
    assert piv.get_data(0x7E) == disc
    # a container under the wrong outer tag, or a tag list naming nothing
    assert sw_of(lambda: piv.send(0, 0xDB, 0x3F, 0xFF, b"\x5c\x01\x7e\x53\x00")) == 0x6A80
    assert sw_of(lambda: piv.send(0, 0xDB, 0x3F, 0xFF, b"\x5c\x03\x5f\xc1\xff\x53\x00")) == 0x6A82
    big = tlv.build(0x70, bytes(5000))
    assert sw_of(lambda: piv.put_data(0x5FC105, big)) == 0x6A84


# -- PIN and PUK -----------------------------------------------------------------------


@given(st.binary(max_size=10))
def test_valid_pin_is_six_to_eight_digits_padded(value: bytes) -> None:
    digits = value.rstrip(b"\xff")
    expected = len(value) == 8 and 6 <= len(digits) <= 8 and all(48 <= b <= 57 for b in digits)
    assert valid_pin(value) == expected


def test_verify_counts_down_blocks_and_reports(piv: PivSession) -> None:
    assert sw_of(lambda: piv.verify_pin(None)) == 0x63C3
    assert sw_of(lambda: piv.verify_pin(b"000000")) == 0x63C2
    assert sw_of(lambda: piv.verify_pin(b"000000")) == 0x63C1
    piv.verify_pin(PIN)  # a right PIN restores the counter
    piv.verify_pin(None)
    for left in (2, 1, 0):
        assert sw_of(lambda: piv.verify_pin(b"999999")) == 0x63C0 | left
    assert sw_of(lambda: piv.verify_pin(PIN)) == 0x6983
    assert sw_of(lambda: piv.verify_pin(None)) == 0x6983


def test_verify_refusals_and_reset(piv: PivSession) -> None:
    assert sw_of(lambda: piv.send(0, 0x20, 0x00, 0x80, b"123456")) == 0x6A80  # not padded
    assert sw_of(lambda: piv.send(0, 0x20, 0x00, 0x81, pad_pin(PUK))) == 0x6A88
    assert sw_of(lambda: piv.send(0, 0x20, 0x00, 0x00, pad_pin(PIN))) == 0x6A88  # global PIN
    assert sw_of(lambda: piv.send(0, 0x20, 0x00, 0x96)) == 0x6A88  # no OCC applet
    piv.verify_pin(PIN)
    piv.send(0, 0x20, 0xFF, 0x80)  # P1 FF: the verification is reset
    assert sw_of(lambda: piv.verify_pin(None)) == 0x63C3


def test_change_pin_and_puk(piv: PivSession) -> None:
    assert sw_of(lambda: piv.change_reference(0x80, b"000000", b"654321")) == 0x63C2
    # a badly formed new PIN costs no try
    assert sw_of(lambda: piv.change_reference(0x80, PIN, b"12ab56")) == 0x6A80
    assert sw_of(lambda: piv.verify_pin(None)) == 0x63C2
    piv.change_reference(0x80, PIN, b"87654321")
    assert sw_of(lambda: piv.verify_pin(None)) == 0x63C3  # the new PIN starts unverified
    assert sw_of(lambda: piv.verify_pin(PIN)) == 0x63C2
    piv.verify_pin(b"87654321")
    piv.change_reference(0x81, PUK, b"abcdefgh")  # any 8 bytes make a PUK
    assert sw_of(lambda: piv.change_reference(0x81, PUK, PUK)) == 0x63C2


def test_puk_unblocks_the_pin_and_blocks_itself(piv: PivSession) -> None:
    for _ in range(3):
        sw_of(lambda: piv.verify_pin(b"000000"))
    assert sw_of(lambda: piv.verify_pin(PIN)) == 0x6983
    assert sw_of(lambda: piv.unblock_pin(b"00000000", b"111111")) == 0x63C2
    assert sw_of(lambda: piv.unblock_pin(PUK, b"1111")) == 0x6A80  # too short a PIN
    piv.unblock_pin(PUK, b"111111")
    piv.verify_pin(b"111111")
    for left in (2, 1, 0):
        assert sw_of(lambda: piv.unblock_pin(b"00000000", b"222222")) == 0x63C0 | left
    assert sw_of(lambda: piv.unblock_pin(PUK, b"222222")) == 0x6983
    assert sw_of(lambda: piv.send(0, 0x2C, 0x00, 0x81, bytes(16))) == 0x6A88


# -- the card management key ----------------------------------------------------------


def test_management_key_mutual_and_external(piv: PivSession) -> None:
    piv.authenticate(mutual=True)
    piv.authenticate(mutual=False)


def test_a_wrong_management_key_is_refused(piv: PivSession) -> None:
    wrong = bytes(24)
    assert sw_of(lambda: piv.authenticate(wrong, mutual=True)) == 0x6982
    assert sw_of(lambda: piv.authenticate(wrong, mutual=False)) == 0x6982
    # step 2 with no step 1, and a key of another algorithm
    body = tlv.build(0x7C, [(0x80, bytes(8)), (0x81, bytes(8))])
    assert sw_of(lambda: piv.send(0, 0x87, 0x03, 0x9B, body)) == 0x6985
    assert sw_of(lambda: piv.authenticate(bytes(16), 0x08)) == 0x6A86
    crt = tlv.build(0xAC, [(0x80, b"\x11")])
    assert sw_of(lambda: piv.send(0, 0x47, 0x00, 0x9A, crt)) == 0x6982


def test_a_failed_authentication_ends_an_earlier_one(piv: PivSession) -> None:
    piv.authenticate()
    sw_of(lambda: piv.authenticate(bytes(24)))
    assert sw_of(lambda: piv.put_data(0x5FC109, b"\x01\x00")) == 0x6982


@pytest.mark.parametrize(("alg", "size"), [(0x03, 24), (0x08, 16), (0x0A, 24), (0x0C, 32)])
def test_management_key_algorithms(alg: int, size: int) -> None:
    key = bytes(range(1, size + 1))
    rt = new_card(params=tlv.build(0x83, bytes((alg,)) + key))
    s = session(rt)
    s.authenticate(key, alg, mutual=True)
    s.authenticate(key, alg, mutual=False)
    assert sw_of(lambda: s.authenticate(DEFAULT_MGMT_KEY)) in (0x6982, 0x6A86)


def test_set_management_key(piv: PivSession) -> None:
    new = bytes(range(32))
    assert sw_of(lambda: piv.set_management_key(new, 0x0C)) == 0x6982
    piv.authenticate()
    assert sw_of(lambda: piv.set_management_key(new[:20], 0x0C)) == 0x6A80
    assert sw_of(lambda: piv.send(0, 0xFF, 0xFF, 0xFE, b"\x0c\x9b\x20" + new)) == 0x6A81
    piv.set_management_key(new, 0x0C)
    assert sw_of(lambda: piv.authenticate()) == 0x6A86
    piv.authenticate(new, 0x0C)


# -- key pairs ---------------------------------------------------------------------------


def _ec_verify(pub: ec.EllipticCurvePublicKey, digest: bytes, sig: bytes) -> None:
    algorithm = hashes.SHA256() if len(digest) == 32 else hashes.SHA384()
    pub.verify(sig, digest, ec.ECDSA(Prehashed(algorithm)))


@pytest.mark.parametrize(("alg", "hashfn"), [(0x11, hashlib.sha256), (0x14, hashlib.sha384)])
def test_ec_generate_sign_and_agree(piv: PivSession, alg: int, hashfn) -> None:  # type: ignore[no-untyped-def]
    piv.authenticate()
    pub = piv.generate(0x9A, alg)
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    digest = hashfn(b"to be signed").digest()
    assert sw_of(lambda: piv.sign(0x9A, alg, digest)) == 0x6982  # PIN first
    piv.verify_pin(PIN)
    _ec_verify(pub, digest, piv.sign(0x9A, alg, digest))
    assert sw_of(lambda: piv.sign(0x9A, alg, digest + b"\x01")) == 0x6A80
    if alg == 0x14:  # a shorter hash: SHA-256 on P-384, as yubico-piv-tool sends it
        short = hashlib.sha256(b"to be signed").digest()
        piv.verify_pin(PIN)
        pub.verify(piv.sign(0x9A, alg, short), short, ec.ECDSA(Prehashed(hashes.SHA256())))
    other = 0x14 if alg == 0x11 else 0x11
    assert sw_of(lambda: piv.sign(0x9A, other, digest)) == 0x6A86
    peer = ec.generate_private_key(pub.curve)
    point = peer.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert piv.ecdh(0x9A, alg, point) == peer.exchange(ec.ECDH(), pub)
    assert sw_of(lambda: piv.ecdh(0x9A, alg, b"\x04" + bytes(len(point) - 1))) == 0x6A80


def test_rsa_2048_sign_and_decipher(piv: PivSession) -> None:
    piv.authenticate()
    pub = piv.generate(0x9D, "rsa2048")
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
    piv.verify_pin(PIN)
    digest = hashlib.sha256(b"message").digest()
    # EMSA-PKCS1-v1_5 (RFC 8017 §9.2) as a PIV client pads it
    info = bytes.fromhex("3031300d060960864801650304020105000420") + digest
    block = b"\x00\x01" + b"\xff" * (256 - 3 - len(info)) + b"\x00" + info
    sig = piv.sign(0x9D, 0x07, block)
    pub.verify(sig, b"message", padding.PKCS1v15(), hashes.SHA256())
    secret = b"a session key of 32 bytes, here"
    cryptogram = pub.encrypt(secret, padding.PKCS1v15())
    plain = piv.sign(0x9D, 0x07, cryptogram)
    assert plain[:2] == b"\x00\x02" and plain.endswith(b"\x00" + secret)
    n = pub.public_numbers().n
    assert sw_of(lambda: piv.sign(0x9D, 0x07, n.to_bytes(256, "big"))) == 0x6A80
    assert sw_of(lambda: piv.sign(0x9D, 0x07, block[1:])) == 0x6A80
    assert sw_of(lambda: piv.ecdh(0x9D, 0x07, b"\x04" + bytes(64))) == 0x6A80


def test_slot_access_rules(piv: PivSession) -> None:
    piv.authenticate()
    sig_key = piv.generate(0x9C, 0x11)
    auth_key = piv.generate(0x9E, 0x11)
    digest = hashlib.sha256(b"x").digest()
    _ec_verify(auth_key, digest, piv.sign(0x9E, 0x11, digest))  # card authentication: no PIN
    piv.verify_pin(PIN)
    _ec_verify(sig_key, digest, piv.sign(0x9C, 0x11, digest))
    assert sw_of(lambda: piv.sign(0x9C, 0x11, digest)) == 0x6982  # PIN always
    piv.verify_pin(PIN)
    piv.sign(0x9C, 0x11, digest)


def test_generate_refusals(piv: PivSession) -> None:
    piv.authenticate()
    assert sw_of(lambda: piv.generate(0x9B, 0x11)) == 0x6A86
    assert sw_of(lambda: piv.generate(0x96, 0x11)) == 0x6A86
    assert sw_of(lambda: piv.generate(0x9A, 0x06)) == 0x6A80  # RSA-1024 is not offered
    assert sw_of(lambda: piv.send(0, 0x47, 0x00, 0x9A, b"\xac\x03\x81\x01\x11")) == 0x6A80
    assert sw_of(lambda: piv.send(0, 0x47, 0x01, 0x9A, b"\xac\x03\x80\x01\x11")) == 0x6A86
    assert sw_of(lambda: piv.sign(0x9A, 0x11, bytes(32))) == 0x6A88  # no key yet
    assert sw_of(lambda: piv.send(0, 0x87, 0x11, 0x9A, b"\x7c\x00")) == 0x6A80


def test_a_seeded_card_generates_the_same_key() -> None:
    keys = []
    for _ in range(2):
        s = session(new_card(seed=99))
        s.authenticate()
        keys.append(s.generate(0x9A, 0x11).public_numbers())  # type: ignore[union-attr]
    assert keys[0] == keys[1]


def test_a_tear_during_generation_leaves_the_old_key_or_the_new(card: CardRuntime) -> None:
    s = session(card)
    s.authenticate()
    old = s.generate(0x9A, 0x11)
    digest = hashlib.sha384(b"after").digest()
    outcomes = set()
    for n in range(3):
        s = session(card)
        s.authenticate()
        card.nvm.tear_after(n)
        try:
            card.process(bytes.fromhex("00470 09A05AC03800114 00".replace(" ", "")))
            outcomes.add("done")
        except CardTorn:
            card.power_on()
            outcomes.add("torn")
        finally:
            card.nvm.tear_after(None)
        s = session(card)
        s.verify_pin(PIN)
        try:
            sig = s.sign(0x9A, 0x14, digest)
        except ApduError as e:
            assert e.sw == 0x6A86  # still the whole P-256 key
            _ec_verify(old, digest[:32], s.sign(0x9A, 0x11, digest[:32]))  # type: ignore[arg-type]
            continue
        assert len(sig) > 64  # a whole P-384 key signs
    assert outcomes == {"torn", "done"}


def test_no_private_key_part_in_any_response(card: CardRuntime) -> None:
    s = session(card)
    responses: list[bytes] = []
    inner = s.reader.inner

    class Keep:
        def transmit(self, apdu: bytes) -> bytes:
            r = inner.transmit(apdu)
            responses.append(r)
            return r

    s.reader.inner = Keep()  # type: ignore[assignment]
    s.authenticate()
    s.verify_pin(PIN)
    for slot, alg in ((0x9A, 0x11), (0x9E, 0x14), (0x9D, 0x07)):
        s.generate(slot, alg)
    s.sign(0x9A, 0x11, bytes(32))
    s.sign(0x9E, 0x14, bytes(48))
    s.sign(0x9D, 0x07, b"\x00\x02" + b"\x11" * 254)
    secrets = [x.value for x in keypair_secrets(card, PIV_AID)]
    assert len(secrets) > 20
    for value in secrets:
        assert not any(value in r for r in responses)


# -- the PIN and PUK against a model (stateful) ----------------------------------------


class PinMachine(RuleBasedStateMachine):
    """VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER in any order agree with a
    model of SP 800-73-4 §3.2.1-3.2.3: 3 tries each, a right value restores the counter,
    0 tries blocks (6983), the PUK sets a new PIN with a full counter."""

    def __init__(self) -> None:
        super().__init__()
        self.piv = session(new_card(seed=3))
        self.pin, self.puk = PIN, PUK
        self.pin_tries, self.puk_tries = 3, 3
        self.verified = False

    def _expect(self, call, ok: bool, tries: int) -> None:  # type: ignore[no-untyped-def]
        """A failed attempt answers 63Cx, x the tries left (63C0 for the one that blocks)."""
        if ok:
            call()
        else:
            assert sw_of(call) == 0x63C0 | tries

    @rule(right=st.booleans())
    def verify(self, right: bool) -> None:
        value = self.pin if right else b"000000"
        if self.pin_tries == 0:
            assert sw_of(lambda: self.piv.verify_pin(value)) == 0x6983
            return
        if right:
            self.pin_tries, self.verified = 3, True
        else:
            self.pin_tries, self.verified = self.pin_tries - 1, False
        self._expect(lambda: self.piv.verify_pin(value), right, self.pin_tries)

    @rule()
    def status(self) -> None:
        if self.pin_tries == 0:
            assert sw_of(lambda: self.piv.verify_pin(None)) == 0x6983
            return
        self._expect(lambda: self.piv.verify_pin(None), self.verified, self.pin_tries)

    @rule(right=st.booleans(), new=st.sampled_from([b"111111", b"22222222", b"1234567"]))
    def change_pin(self, right: bool, new: bytes) -> None:
        old = self.pin if right else b"000000"
        if self.pin_tries == 0:
            assert sw_of(lambda: self.piv.change_reference(0x80, old, new)) == 0x6983
            return
        if right:
            self.pin, self.pin_tries, self.verified = new, 3, False
        else:
            self.pin_tries, self.verified = self.pin_tries - 1, False
        self._expect(lambda: self.piv.change_reference(0x80, old, new), right, self.pin_tries)

    @rule(right=st.booleans(), new=st.sampled_from([b"333333", b"44444444"]))
    def unblock(self, right: bool, new: bytes) -> None:
        puk = self.puk if right else b"00000000"
        if self.puk_tries == 0:
            assert sw_of(lambda: self.piv.unblock_pin(puk, new)) == 0x6983
            return
        if right:
            self.pin, self.pin_tries, self.puk_tries, self.verified = new, 3, 3, False
        else:
            self.puk_tries -= 1
        self._expect(lambda: self.piv.unblock_pin(puk, new), right, self.puk_tries)


PinMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck)
)
test_pin_and_puk_follow_the_model = PinMachine.TestCase


# -- on-card comparison through the match-on-card applet ------------------------------

DS = make_dataset(2, 3, seed=42)


def test_on_card_comparison_through_the_match_on_card_applet() -> None:
    rt = CardRuntime(rng_seed=5)
    rt.install(BiometricApplet, BIO_AID)
    rt.install(PivApplet, PIV_AID, tlv.build(0x84, BIO_AID))
    rt.power_on()
    reader = InProcessReader(rt)
    bio = BioSession(reader)
    bio.select()
    bio.authenticate_admin(bytes(range(0x40, 0x50)))
    bio.enrol(0x96, DS.impressions[0][0], 0x09)
    piv = session(rt)
    assert _contents_of(piv.get_data(0x7E), 0x7E)[0x5F2F] == b"\x58\x00"  # OCC satisfies (and VCI)
    assert tlv.Tlv.from_bytes(piv.get_data(0x7F61)).tag == 0x7F61  # the BIT group
    piv.authenticate()
    pub = piv.generate(0x9A, 0x11)
    digest = hashlib.sha256(b"by finger").digest()
    assert sw_of(lambda: piv.sign(0x9A, 0x11, digest)) == 0x6982
    assert sw_of(lambda: piv.send(0, 0x20, 0x00, 0x96)) == 0x63C5  # not yet verified
    wrong = bio.verify_apdu(0x96, DS.impressions[1][0])  # another finger
    assert int.from_bytes(reader.transmit(wrong)[-2:], "big") == 0x63C4
    assert sw_of(lambda: piv.sign(0x9A, 0x11, digest)) == 0x6982
    assert sw_of(lambda: piv.send(0, 0x20, 0x00, 0x97, b"\x7f\x2e\x00")) == 0x6A88  # no finger
    right = bio.verify_apdu(0x96, DS.impressions[0][1])
    assert reader.transmit(right)[-2:] == b"\x90\x00"  # sent to PIV, compared by bio
    piv.send(0, 0x20, 0x00, 0x96)
    _ec_verify(pub, digest, piv.sign(0x9A, 0x11, digest))  # type: ignore[arg-type]
    piv.send(0, 0x20, 0xFF, 0x96)  # reset: the finger no longer counts
    assert sw_of(lambda: piv.sign(0x9A, 0x11, digest)) == 0x6982
    assert rt.firewall_violations == 0


def _contents_of(obj: bytes, tag: int) -> dict[int, bytes]:
    outer = tlv.Tlv.from_bytes(obj)
    assert outer.tag == tag
    return {o.tag: o.value for o in tlv.parse(outer.value)}


def test_a_tear_during_a_pin_change_leaves_the_old_pin_or_the_new() -> None:
    outcomes = set()
    for n in range(5):
        rt = new_card(seed=n)
        session(rt)
        rt.nvm.tear_after(n)
        try:
            rt.process(bytes.fromhex("0024008010313233343536FFFF363534333231FFFF"))
            outcomes.add("done")
        except CardTorn:
            rt.power_on()
            outcomes.add("torn")
        finally:
            rt.nvm.tear_after(None)
        piv = session(rt)
        try:
            piv.verify_pin(PIN)
            which = "old"
        except ApduError as e:
            assert e.sw == 0x63C2  # the old PIN is gone; the new one had a full counter
            piv.verify_pin(b"654321")
            which = "new"
        outcomes.add(which)
    assert outcomes >= {"torn", "done", "old", "new"}


def test_a_trace_masks_the_pins_and_the_new_management_key(card: CardRuntime) -> None:
    import io

    from host.trace import TracingReader

    out = io.StringIO()
    piv = PivSession(TracingReader(InProcessReader(card), out, colour=False))
    piv.select()
    piv.verify_pin(PIN)
    piv.change_reference(0x81, PUK, b"87654321")
    piv.authenticate()
    new = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")
    piv.set_management_key(new, 0x08)
    text = out.getvalue().upper()
    assert "masked" in out.getvalue()
    for secret in (pad_pin(PIN), PUK, b"87654321", new):
        assert secret.hex().upper() not in text
    assert "GENERAL AUTHENTICATE" in text  # the trace still decodes
