"""The keypair applet: generation per algorithm (signatures checked with `cryptography`),
reproducibility from the card RNG, PIN, biometric and SM gating, usage counters, tears,
and the secure messaging session set up with certificates through a relaying terminal."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from applets.biometric.applet import BIO_AID, BiometricApplet
from applets.keypair import KEYPAIR_AID, KeyPairApplet
from card import tlv
from card.crypto.keypairs import ALGORITHMS, KeyRecord, generate
from card.crypto.keys import P256, P384, Curve, EcKeyPair
from card.crypto.rng import CardRng
from card.runtime import CardRuntime, CardTorn
from card.sm.auth import TerminalAuthentication
from card.sm.cvc import issue_cvc, public_key_template
from host.bio.session import BioSession
from host.bio.synthetic import make_dataset
from host.errors import ApduError, SecureChannelError
from host.keypair import KeyPairSession
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.readers.sm import SmReader

PIN = b"123456"


def new_card(seed: int | None = 11) -> CardRuntime:
    rt = CardRuntime(rng_seed=seed)
    rt.install(KeyPairApplet, KEYPAIR_AID, default=True)
    rt.power_on()
    return rt


def session(rt: CardRuntime) -> KeyPairSession:
    return KeyPairSession(InProcessReader(rt))


def sw_of(rt: CardRuntime, apdu: str | bytes) -> int:
    raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
    return int.from_bytes(rt.process(raw)[-2:], "big")


def _verify_signature(pub, digest: bytes, sig: bytes) -> None:  # type: ignore[no-untyped-def]
    algorithm = {32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}[len(digest)]
    if isinstance(pub, ec.EllipticCurvePublicKey):
        half = len(sig) // 2
        der = encode_dss_signature(
            int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
        )
        pub.verify(der, digest, ec.ECDSA(Prehashed(algorithm)))
    else:
        pub.verify(sig, digest, padding.PKCS1v15(), Prehashed(algorithm))


@pytest.mark.parametrize(
    ("alg", "size"), [("p256", 256), ("p384", 384), ("bp256", 256), ("bp384", 384)]
)
def test_ec_signatures_verify_with_cryptography(alg: str, size: int) -> None:
    s = session(new_card())
    s.verify_pin(PIN)
    key = s.generate(0x01, alg)
    pub = key.public_key
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.key_size == size
    for digest in (hashlib.sha256(b"m").digest(), hashlib.sha384(b"m").digest()):
        _verify_signature(pub, digest, s.sign(0x01, digest))
    assert s.read_public(0x01).usage_counter == 2
    assert s.read_public(0x01).key_id == key.key_id and len(key.key_id) == 20


@pytest.fixture(scope="module")
def rsa_card() -> CardRuntime:
    """One RSA-2048 generation for the module (RSA generation is the slow part)."""
    rt = new_card(5)
    s = session(rt)
    s.verify_pin(PIN)
    s.generate(0x02, "rsa2048")
    return rt


def test_rsa2048_signs_and_deciphers(rsa_card: CardRuntime) -> None:
    rsa_card.reset()
    s = session(rsa_card)
    s.verify_pin(PIN)
    pub = s.read_public(0x02).public_key
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
    digest = hashlib.sha256(b"credential").digest()
    _verify_signature(pub, digest, s.sign(0x02, digest))
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert s.decipher(0x02, pub.encrypt(b"one-time token", oaep)) == b"one-time token"
    before = s.read_public(0x02).usage_counter
    with pytest.raises(ApduError) as e:
        s.decipher(0x02, bytes(256))
    assert e.value.sw == 0x6300  # the use is counted, so: NVM changed
    assert s.read_public(0x02).usage_counter == before + 1
    with pytest.raises(ApduError) as e:
        s.decipher(0x02, bytes(255))
    assert e.value.sw == 0x6700
    assert s.read_public(0x02).usage_counter == before + 1


def test_rsa_keys_derive_from_the_card_rng(rsa_card: CardRuntime) -> None:
    """A fresh card seeded with 5 draws its RSA-2048 primes as `generate_rsa` on CardRng(5)."""
    from card.crypto.rsa import generate_rsa

    rsa_card.reset()
    s = session(rsa_card)
    pub = s.read_public(0x02).public_key
    assert isinstance(pub, rsa.RSAPublicKey)
    expected = generate_rsa(2048, CardRng(5)).public_key().public_numbers()
    assert pub.public_numbers() == expected


@pytest.mark.slow
def test_rsa3072_generates_and_signs() -> None:
    s = session(new_card(5))  # seed 5: a short prime search (about 2 s here)
    s.verify_pin(PIN)
    pub = s.generate(0x0D, "rsa3072").public_key
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 3072
    digest = hashlib.sha512(b"3072").digest()
    _verify_signature(pub, digest, s.sign(0x0D, digest))


def test_a_seeded_card_generates_the_same_keys() -> None:
    keys = []
    for _ in range(2):
        s = session(new_card(seed=42))
        s.verify_pin(PIN)
        keys.append(s.generate(0x03, "p256").template)
    other = session(new_card(seed=43))
    other.verify_pin(PIN)
    assert keys[0] == keys[1] != other.generate(0x03, "p256").template


def _in_ec_memo(curve: Curve, d: bytes) -> bool:
    """Whether the process-wide (curve, d) memo holds this key (the probe adds it if not)."""
    from card.crypto import keys

    hits = keys._derive.cache_info().hits
    keys._derive(curve, int.from_bytes(d, "big"))
    return keys._derive.cache_info().hits == hits + 1


@pytest.mark.parametrize("seed", [None, 42])
def test_only_a_key_from_a_seeded_rng_is_kept_in_the_ec_memo(seed: int | None) -> None:
    """A key the card drew from OS randomness, rebuilt from its record to sign (also after
    a power cycle clears the applet's RAM cache), leaves no entry in the process-wide EC
    memo; one from a seeded RNG does, and its record says so (a fifth item)."""
    from card.crypto import keys

    rt = new_card(seed)
    s = session(rt)
    s.verify_pin(PIN)
    pub = s.generate(0x01, "p384").public_key
    # A seeded generation already memoises the key: forget it, so the probe below sees
    # only what rebuilding the key from its record (KeyRecord.ec_key) put there.
    keys._derive.cache_clear()
    for _ in range(2):
        digest = hashlib.sha384(b"m").digest()
        _verify_signature(pub, digest, s.sign(0x01, digest))
        rt.power_off()
        rt.power_on()
        s = session(rt)
        s.verify_pin(PIN)
    value = rt.nvm.snapshot()[KEYPAIR_AID.hex()]["key.01"]
    assert value[4:] == ((True,) if seed is not None else ())
    assert _in_ec_memo(P384, value[2][0]) is (seed is not None)


def test_a_key_record_without_the_seeded_item_is_not_seeded() -> None:
    """Records stored before the flag existed (four items) read as not seeded; both forms
    round-trip; another length is refused."""
    seeded = generate(ALGORITHMS[0x11], CardRng(3), 0)
    fresh = generate(ALGORITHMS[0x11], CardRng(), 0)
    assert seeded.seeded and not fresh.seeded
    assert len(fresh.to_value()) == 4 and seeded.to_value()[4] is True
    assert KeyRecord.from_value(seeded.to_value()) == seeded
    assert KeyRecord.from_value(fresh.to_value()) == fresh
    old = KeyRecord.from_value(seeded.to_value()[:4])
    assert not old.seeded and old.private == seeded.private
    with pytest.raises(ValueError):
        KeyRecord.from_value(seeded.to_value()[:3])


def test_pin_refusals_and_blocking() -> None:
    rt = new_card()
    s = session(rt)
    with pytest.raises(ApduError) as e:
        s.generate(0x01, "p256")
    assert e.value.sw == 0x6982  # nobody verified
    assert sw_of(rt, "0020008106313131313131") == 0x63C2
    s.verify_pin(PIN)
    s.generate(0x01, "p256")
    rt.reset()  # verification is volatile
    with pytest.raises(ApduError) as e:
        s.sign(0x01, bytes(32))
    assert e.value.sw == 0x6982
    for left in (2, 1, 0):
        assert sw_of(rt, "0020008106999999999999") == 0x63C0 | left
    assert sw_of(rt, b"\x00\x20\x00\x81\x06" + PIN) == 0x6983  # blocked, even with the PIN
    with pytest.raises(ApduError):
        s.sign(0x01, bytes(32))


def test_command_refusals() -> None:
    rt = new_card()
    s = session(rt)
    s.verify_pin(PIN)
    assert sw_of(rt, "0047008405AC03800111") == 0x6A86  # key reference out of range
    assert sw_of(rt, "0047000105AC03800199") == 0x6A81  # unknown algorithm
    assert sw_of(rt, "0047000104AB020000") == 0x6A80  # not a CRT
    assert sw_of(rt, "0047810100") == 0x6A88  # no key 01 to read
    assert sw_of(rt, "0047000106AC0480021111") == 0x6A80  # a two-byte algorithm
    assert sw_of(rt, "0047000108AC06800111C10110") == 0x6A80  # SM only: nobody verifies
    assert sw_of(rt, "0047000108AC06800111C10180") == 0x6A80  # an unknown policy bit
    assert sw_of(rt, "0047000108AC068001118C010000") == 0x9000  # an unknown CRT tag is skipped
    assert sw_of(rt, "002241B603840109") == 0x6A88
    assert sw_of(rt, "002A9E9A20" + "00" * 32) == 0x6985  # no key chosen
    s.generate(0x04, "p256")
    s.set_key(0xB6, 0x04)
    assert sw_of(rt, "002A9E9A10" + "00" * 16) == 0x6700  # not a hash length
    s.set_key(0xB8, 0x04)
    assert sw_of(rt, "002A808603000102") == 0x6985  # an EC key does not decipher
    assert sw_of(rt, "00220000") == 0x6A86  # MSE: only SET for computation
    assert sw_of(rt, "002A000000") == 0x6A86  # PSO: no such operation
    assert sw_of(rt, "80470001") == 0x6E00


def test_key_agreement_matches_the_peer() -> None:
    s = session(new_card())
    s.verify_pin(PIN)
    pub = s.generate(0x05, "p384").public_key
    peer = ec.generate_private_key(ec.SECP384R1())
    from cryptography.hazmat.primitives import serialization

    point = peer.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert s.agree(0x05, point) == peer.exchange(ec.ECDH(), pub)  # type: ignore[arg-type]
    with pytest.raises(ApduError) as e:
        s.agree(0x05, b"\x04" + bytes(96))
    assert e.value.sw == 0x6A80
    assert s.read_public(0x05).usage_counter == 1  # a bad point costs no use (fuzz finding)


# -- biometric verification through the Shareable interface -------------------------------

DS = make_dataset(2, 3, seed=42)


def test_biometric_verification_unlocks_a_bio_key_through_the_firewall() -> None:
    rt = new_card()
    rt.install(BiometricApplet, BIO_AID)
    reader = InProcessReader(rt)
    bio = BioSession(reader)
    bio.select()
    bio.authenticate_admin(bytes(range(0x40, 0x50)))
    bio.enrol(0x96, DS.impressions[0][0], 0x09)
    s = session(rt)
    s.select()
    s.verify_pin(PIN)
    s.generate(0x06, "p256", policy=0x02)  # biometric only
    with pytest.raises(ApduError) as e:
        s.sign(0x06, bytes(32))  # the PIN does not open a biometric-only key
    assert e.value.sw == 0x6982
    # The finger on channel 1, the key on channel 0.
    assert reader.transmit(bytes.fromhex("0070000001"))[-2:] == b"\x90\x00"
    ch1 = BioSession(_Channel(reader, 1))
    ch1.select()
    assert not ch1.verify(0x96, DS.impressions[1][0]).matched  # another finger
    with pytest.raises(ApduError):
        s.sign(0x06, bytes(32))
    assert ch1.verify(0x96, DS.impressions[0][1]).matched
    sig = s.sign(0x06, hashlib.sha256(b"x").digest())
    _verify_signature(s.read_public(0x06).public_key, hashlib.sha256(b"x").digest(), sig)
    rt.reset()  # the session is over
    with pytest.raises(ApduError):
        s.sign(0x06, bytes(32))
    assert rt.firewall_violations == 0


class _Channel(Reader):
    """Commands of a session sent on another logical channel."""

    def __init__(self, inner: Reader, channel: int) -> None:
        self.inner, self.channel = inner, channel

    def transmit(self, apdu: bytes) -> bytes:
        return self.inner.transmit(bytes((apdu[0] | self.channel,)) + apdu[1:])


# -- tears ------------------------------------------------------------------------------


def test_a_tear_at_every_write_of_generation_leaves_no_half_key() -> None:
    rt = new_card()
    s = session(rt)
    s.verify_pin(PIN)
    s.generate(0x07, "p256")
    old = s.read_public(0x07).template
    applet_owner = KEYPAIR_AID.hex()
    n, seen_new = 0, False
    while True:
        rt.nvm.tear_after(n)
        try:
            rt.process(bytes.fromhex("0047000705AC03800114"))
            torn = False
        except CardTorn:
            rt.power_on()
            torn = True
        finally:
            rt.nvm.tear_after(None)
        s.verify_pin(PIN)
        key = s.read_public(0x07)
        assert key.template == old or len(key.template) > len(old)  # P-256 before, P-384 after
        if key.template != old:
            seen_new = True
            assert key.usage_counter == 0
        digest = hashlib.sha256(b"after tear").digest()
        _verify_signature(key.public_key, digest, s.sign(0x07, digest))
        if not torn:
            break
        n += 1
    assert seen_new and n >= 2
    assert rt.nvm.snapshot()[applet_owner]


def test_usage_counter_is_counted_before_the_operation() -> None:
    rt = new_card()
    s = session(rt)
    s.verify_pin(PIN)
    s.generate(0x08, "p256")
    s.set_key(0xB6, 0x08)
    rt.nvm.tear_after(0)  # the counter write itself is torn: no signature, no count
    with pytest.raises(CardTorn):
        rt.process(bytes.fromhex("002A9E9A20") + bytes(32) + b"\x00")
    rt.power_on()
    s.verify_pin(PIN)
    assert s.read_public(0x08).usage_counter == 0
    s.sign(0x08, bytes(32))
    assert s.read_public(0x08).usage_counter == 1


# -- secure messaging with certificates, through a relaying terminal ----------------------


class Relay(Reader):
    """A terminal that only relays opaque APDUs; it can be told to alter one byte."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.tamper: int | None = None
        self.seen: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        if self.tamper is not None:
            b = bytearray(apdu)
            b[self.tamper] ^= 0x01
            apdu, self.tamper = bytes(b), None
        self.seen.append(apdu)
        return self.inner.transmit(apdu)


def personalised_card(seed: int = 3) -> tuple[CardRuntime, EcKeyPair, TerminalAuthentication]:
    rt = new_card(seed)
    s = session(rt)
    s.verify_pin(PIN)
    card_key = s.generate(0x81, "p256")
    rng = CardRng(seed + 100)
    root = EcKeyPair.generate(P256, rng)
    term = EcKeyPair.generate(P256, rng)
    from card.sm.cvc import parse_public_key_template

    card_pub = parse_public_key_template(card_key.template)
    card_cert = issue_cvc(root.cryptography_key, b"ROOT", b"CARD", card_pub)
    s.personalise(public_key_template(root.public), card_cert)
    s.generate(0x09, "p256", policy=0x11)  # PIN and secure messaging
    t_cert = issue_cvc(root.cryptography_key, b"ROOT", b"SERVER", term.public)
    rt.reset()
    return rt, root, TerminalAuthentication(term, t_cert, root.public, CardRng(seed + 200))


def test_server_talks_sm_through_a_relay_and_the_card_signs() -> None:
    rt, _, terminal = personalised_card()
    relay = Relay(InProcessReader(rt))
    sm = SmReader(relay)
    cert = sm.authenticate(terminal)
    assert cert.chr == b"CARD"
    s = KeyPairSession(sm)
    s.verify_pin(PIN)
    digest = hashlib.sha256(b"credential").digest()
    sig = s.sign(0x09, digest)
    _verify_signature(s.read_public(0x09).public_key, digest, sig)
    # The relay saw only protected commands after the set-up: no PIN in clear.
    first = next(i for i, apdu in enumerate(relay.seen) if apdu[0] & 0x0C == 0x0C)
    assert relay.seen[first - 1][1] in (0x86, 0xC0)  # the set-up ends with GENERAL AUTHENTICATE
    assert all(apdu[0] & 0x0C == 0x0C for apdu in relay.seen[first:])
    assert not any(PIN in apdu for apdu in relay.seen)


def test_the_card_authentication_key_signs_nothing_else() -> None:
    rt, _, _ = personalised_card()
    s = session(rt)
    s.verify_pin(PIN)
    with pytest.raises(ApduError) as e:
        s.set_key(0xB6, 0x81)
    assert e.value.sw == 0x6985
    with pytest.raises(ApduError) as e:
        s.agree(0x81, EcKeyPair.generate(P256, CardRng(1)).public.to_point())
    assert e.value.sw == 0x6985
    with pytest.raises(ApduError) as e:
        s.generate(0x81, "p256")  # certified: it cannot change under its certificate
    assert e.value.sw == 0x6985


def test_an_sm_key_is_refused_without_sm() -> None:
    rt, _, _ = personalised_card()
    s = session(rt)
    s.verify_pin(PIN)
    with pytest.raises(ApduError) as e:
        s.sign(0x09, bytes(32))
    assert e.value.sw == 0x6982


# INS, P1, P2, DO97, the MAC (0C 47 81 09 0D 97 01 00 8E 08 <MAC> 00).
@pytest.mark.parametrize("where", [1, 2, 3, 7, 10, 17])
def test_one_altered_byte_ends_the_session(where: int) -> None:
    rt, _, terminal = personalised_card()
    relay = Relay(InProcessReader(rt))
    sm = SmReader(relay)
    sm.authenticate(terminal)
    s = KeyPairSession(sm)
    s.verify_pin(PIN)
    relay.tamper = where
    with pytest.raises(SecureChannelError):
        s.read_public(0x09)
    assert not sm.is_open
    # The card dropped its session too: a protected command under the old keys fails.
    assert rt.process(bytes.fromhex("0C2000810D9701008E080000000000000000"))[-2:] == b"\x69\x88"


def test_replayed_protected_command_is_refused_and_ends_the_session() -> None:
    rt, _, terminal = personalised_card()
    relay = Relay(InProcessReader(rt))
    sm = SmReader(relay)
    sm.authenticate(terminal)
    KeyPairSession(sm).verify_pin(PIN)
    replay = relay.seen[-1]
    assert rt.process(replay) == b"\x69\x88"
    with pytest.raises(SecureChannelError):
        KeyPairSession(sm).read_public(0x09)


def test_unprotected_command_during_sm_is_refused() -> None:
    rt, _, terminal = personalised_card()
    sm = SmReader(InProcessReader(rt))
    sm.authenticate(terminal)
    assert rt.process(b"\x00\x20\x00\x81\x06" + PIN) == b"\x69\x87"
    with pytest.raises(SecureChannelError):
        KeyPairSession(sm).verify_pin(PIN)


def test_sm_set_up_refusals() -> None:
    rt, root, terminal = personalised_card()
    reader = InProcessReader(rt)
    # A terminal certified by another root.
    rogue_root = EcKeyPair.generate(P256, CardRng(77))
    rogue = TerminalAuthentication(
        terminal.key,
        issue_cvc(rogue_root.cryptography_key, b"ROOT", b"SERVER", terminal.key.public),
        root.public,
    )
    with pytest.raises(ApduError) as e:
        SmReader(reader).authenticate(rogue)
    assert e.value.sw == 0x6982
    # GENERAL AUTHENTICATE without a verified certificate or challenge.
    data = terminal.general_authenticate_data(bytes(8))
    assert sw_of(rt, bytes((0, 0x86, 0, 0, len(data))) + data) == 0x6985
    # Personalisation happens once.
    s = session(rt)
    s.verify_pin(PIN)
    with pytest.raises(ApduError) as e:
        s.personalise(public_key_template(root.public), b"\x7f\x21\x00")
    assert e.value.sw in (0x6985, 0x6A80)


def test_tlv_answers_name_the_key() -> None:
    s = session(new_card())
    s.verify_pin(PIN)
    key = s.generate(0x0A, "p256")
    objs = [o.tag for o in tlv.parse(s.send(0, 0x47, 0x81, 0x0A, le=0))]
    assert objs == [0x7F49, 0xC0, 0xC1]
    assert key.usage_counter == 0


# -- the fuzz profile ---------------------------------------------------------------------


def test_fuzz_profile_states_are_reachable() -> None:
    from host.fuzz.targets import builtin_profiles, keypair_secrets
    from host.presets import new_card as preset_card

    profile = next(p for p in builtin_profiles() if p.name == "keypair")
    for state in profile.states:
        rt = preset_card("keypair", rng_seed=1)
        rt.power_on()
        assert callable(state.setup)
        session = state.setup(rt.process)
        if state.name == "sm":
            wrapped = session.wrap_command(bytes.fromhex("0047818100"))  # type: ignore[attr-defined]
            assert rt.process(wrapped)[-2:] == b"\x90\x00"
        secrets = keypair_secrets(rt, KEYPAIR_AID)
        assert secrets or state.name == "pin"


# -- the benchmark ------------------------------------------------------------------------


def test_key_benchmark_reports_figures_beside_jcop4() -> None:
    from host.bench_keys import JCOP4, run_key_benchmark

    report = run_key_benchmark(1, algorithms=("P-256", "brainpoolP384r1"), signatures=2)
    fig = report["algorithms"]["P-256"]
    assert fig["generate"]["runs"] == 1 and fig["sign"]["runs"] == 2
    assert fig["jcop4_ms"]["generate"] == JCOP4["P-256"][0]
    assert fig["ratio"]["sign"] > 0
    assert "P-256" in report["text"] and "JCOP4" in report["text"]
    with pytest.raises(ValueError):
        run_key_benchmark(1, algorithms=("DSA-1024",))


def test_bench_keys_cli_refuses_an_unknown_algorithm() -> None:
    from click.testing import CliRunner

    from host.cli import main

    with CliRunner().isolation() as (_, err, _):
        code = main(["bench", "--keys", "--alg", "DSA"])
    assert code == 2
    assert b"unknown --alg DSA" in err.getvalue()


def test_a_warning_under_sm_comes_back_protected() -> None:
    rt, _, terminal = personalised_card()
    relay = Relay(InProcessReader(rt))
    sm = SmReader(relay)
    sm.authenticate(terminal)
    s = KeyPairSession(sm)
    with pytest.raises(ApduError) as e:
        s.verify_pin(b"000000")
    assert e.value.sw == 0x63C2
    s.verify_pin(PIN)  # the counters still agree
    assert sm.is_open


def test_rsa_under_sm_a_protected_answer_longer_than_256_bytes() -> None:
    """The 7F49 of RSA-2048 under SM is over 256 bytes: 61xx, GET RESPONSE, then the MAC."""
    rt, _, terminal = personalised_card(seed=9)
    sm = SmReader(InProcessReader(rt))
    sm.authenticate(terminal)
    s = KeyPairSession(sm)
    s.verify_pin(PIN)
    key = s.generate(0x0B, "rsa2048", policy=0x11)
    pub = key.public_key
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
    digest = hashlib.sha384(b"over SM").digest()
    _verify_signature(pub, digest, s.sign(0x0B, digest))
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert s.decipher(0x0B, pub.encrypt(b"token", oaep)) == b"token"


def test_a_tear_during_a_first_generation_leaves_no_key_or_a_whole_one() -> None:
    rt = new_card()
    s = session(rt)
    n, outcomes = 0, set()
    while True:
        s.verify_pin(PIN)
        rt.nvm.tear_after(n)
        try:
            rt.process(bytes.fromhex("0047000C05AC0380011100"))
            torn = False
        except CardTorn:
            rt.power_on()
            torn = True
        finally:
            rt.nvm.tear_after(None)
        s.verify_pin(PIN)
        try:
            key = s.read_public(0x0C)
        except ApduError as e:
            assert e.sw == 0x6A88  # before: no key at all
            outcomes.add("none")
        else:
            assert key.usage_counter == 0
            digest = hashlib.sha256(b"whole").digest()
            _verify_signature(key.public_key, digest, s.sign(0x0C, digest))
            outcomes.add("whole")
        if not torn:
            break
        n += 1
    assert outcomes == {"none", "whole"}
