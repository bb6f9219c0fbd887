"""The repository card applet of seed 002 (applets.repository), through its host session."""

from __future__ import annotations

import hashlib

import pytest

from applets.repository.applet import signed_url_data
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from card.sm.auth import TerminalAuthentication
from card.sm.cvc import (
    ec_sign,
    ec_verify,
    issue_cvc,
    parse_public_key_template,
    public_key_template,
)
from host.bio.session import BioSession
from host.bio.synthetic import make_dataset
from host.errors import ApduError, SecureChannelError
from host.readers.base import Reader, ReaderError
from host.readers.inprocess import InProcessReader
from host.readers.sm import SmReader
from host.systems.repository.card import (
    FINGER,
    REPOSITORY_AID,
    ChannelReader,
    RepositoryCard,
    make_card,
    open_channel,
)

DS = make_dataset(2, 3, seed=42)
HOLDER = DS.impressions[0][0]
URL = "https://repo.example/holder/42"


class Pki:
    """A root, an HSM and a repository certified by it, and an unrelated root."""

    def __init__(self, seed: int = 5) -> None:
        rng = CardRng(seed)
        self.root = EcKeyPair.generate(P256, rng)
        self.hsm = EcKeyPair.generate(P256, rng)
        self.hsm_sign = EcKeyPair.generate(P256, rng)  # the HSM's signing key (ST15)
        self.repo = EcKeyPair.generate(P256, rng)
        self.rogue_root = EcKeyPair.generate(P256, rng)
        self.rng = rng

    def peer(
        self, key: EcKeyPair, chr_: bytes, root: EcKeyPair | None = None
    ) -> TerminalAuthentication:
        root = root or self.root
        cert = issue_cvc(root.cryptography_key, b"ROOT", chr_, key.public)
        return TerminalAuthentication(key, cert, self.root.public, self.rng)


class Relay(Reader):
    """A terminal relaying opaque APDUs; it may alter one byte of the next one."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.tamper: int | None = None
        self.seen: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        if self.tamper is not None:
            b = bytearray(apdu)
            b[self.tamper] ^= 1
            apdu, self.tamper = bytes(b), None
        self.seen.append(apdu)
        return self.inner.transmit(apdu)


@pytest.fixture
def pki() -> Pki:
    return Pki()


def new_card(pki: Pki, seed: int = 9) -> CardRuntime:
    return make_card(pki.root, HOLDER, rng_seed=seed)


def touch(rt: CardRuntime, impression: int = 1, finger: int = 0) -> bool:
    """The holder (or someone) presents a finger on channel 0."""
    bio = BioSession(InProcessReader(rt))
    bio.select()
    return bio.verify(FINGER, DS.impressions[finger][impression]).matched


def sm_channel(
    rt: CardRuntime, peer: TerminalAuthentication
) -> tuple[RepositoryCard, Relay, SmReader]:
    reader = InProcessReader(rt)
    ch = open_channel(reader)
    relay = Relay(reader)
    RepositoryCard(ChannelReader(relay, ch)).select()
    sm = SmReader(relay, channel=ch)
    sm.authenticate(peer)
    return RepositoryCard(ChannelReader(sm, ch)), relay, sm


def plain_channel(rt: CardRuntime) -> RepositoryCard:
    reader = InProcessReader(rt)
    card = RepositoryCard(ChannelReader(reader, open_channel(reader)))
    card.select()
    return card


def issue(rt: CardRuntime, pki: Pki, url: str = URL, *, bad_signature: bool = False) -> bytes:
    """ST11-ST22 as the HSM drives them; the card's issued public key template."""
    card, _, _ = sm_channel(rt, pki.peer(pki.hsm, b"HSM-01"))
    assert card.read_template()[:2] == b"\x7f\x2e"
    card.give_hsm_key(public_key_template(pki.hsm_sign.public))
    key = card.generate_issued_key()
    data = signed_url_data(key.template, url.encode())
    if bad_signature:
        data += b"x"
    card.store_url(url, ec_sign(pki.hsm_sign.cryptography_key, P256, data))
    return key.template


def applet_store(rt: CardRuntime) -> dict[str, object]:
    return dict(rt.nvm.snapshot()[REPOSITORY_AID.hex()])


# -- issuance ---------------------------------------------------------------------------


def test_issuance_stores_the_signed_url_and_erases_the_template(pki: Pki) -> None:
    rt = new_card(pki)
    card_key = issue(rt, pki)
    assert touch(rt)
    signed = plain_channel(rt).read_url()
    assert signed.url == URL and signed.card_key == card_key
    assert ec_verify(pki.hsm_sign.public, signed_url_data(card_key, URL.encode()), signed.signature)
    # Issued: the template copy is gone, and issuance cannot run again.
    card, _, _ = sm_channel(rt, pki.peer(pki.hsm, b"HSM-01"))
    with pytest.raises(ApduError) as e:
        card.read_template()
    assert e.value.sw == 0x6985


@pytest.mark.parametrize("seed", [None, 9])
def test_only_keys_from_a_seeded_rng_are_kept_in_the_ec_memo(pki: Pki, seed: int | None) -> None:
    """The card's keys, rebuilt from their records to authenticate and sign, stay out of
    the process-wide EC memo when the card drew them from OS randomness; a seeded card's
    records carry a third item True and their keys are kept."""
    from card.crypto import keys

    rt = make_card(pki.root, HOLDER, rng_seed=seed)
    issue(rt, pki)  # SM set up with key 81, key 01 generated
    store = applet_store(rt)
    for name in ("auth_key", "issued_key"):
        record = store[name]
        assert isinstance(record, tuple)
        assert record[2:] == ((True,) if seed is not None else ())
    # A seeded generation already memoises its key: forget everything, power-cycle (the
    # applet's RAM goes) and open SM again, which rebuilds key 81 from its record
    # (RepositoryCardApplet._key); only that rebuild can put it back. Key 01 is never
    # rebuilt as a key (only its template is read), so it has no probe.
    keys._derive.cache_clear()
    rt.power_off()
    rt.power_on()
    sm_channel(rt, pki.peer(pki.hsm, b"HSM-01"))
    record = applet_store(rt)["auth_key"]
    hits = keys._derive.cache_info().hits
    keys._derive(P256, int.from_bytes(record[0], "big"))  # the probe adds it if absent
    assert (keys._derive.cache_info().hits == hits + 1) is (seed is not None)


def test_a_url_whose_signature_fails_is_not_stored(pki: Pki) -> None:
    rt = new_card(pki)
    before = applet_store(rt)
    with pytest.raises(ApduError) as e:
        issue(rt, pki, bad_signature=True)
    assert e.value.sw == 0x6982
    after = applet_store(rt)
    assert not any(k.endswith("url") or "url" in k for k, v in after.items() if v)
    assert {k: v for k, v in after.items() if "template" in k} == {
        k: v for k, v in before.items() if "template" in k
    }
    assert touch(rt)
    with pytest.raises(ApduError) as e:
        plain_channel(rt).read_url()
    assert e.value.sw == 0x6985  # not issued
    issue(rt, pki)  # a correct issuance still works


def test_issuance_commands_need_the_hsm_under_sm(pki: Pki) -> None:
    rt = new_card(pki)
    plain = plain_channel(rt)
    with pytest.raises(ApduError) as e:
        plain.read_template()
    assert e.value.sw == 0x6982
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    with pytest.raises(ApduError) as e:
        repo.read_template()
    assert e.value.sw == 0x6982
    hsm, _, _ = sm_channel(rt, pki.peer(pki.hsm, b"HSM-01"))
    with pytest.raises(ApduError) as e:
        hsm.generate_issued_key()  # before the HSM's key (its "match succeeded")
    assert e.value.sw == 0x6985


def test_peers_of_another_root_or_role_are_refused(pki: Pki) -> None:
    rt = new_card(pki)
    for peer in (
        pki.peer(pki.hsm, b"HSM-01", root=pki.rogue_root),
        pki.peer(pki.hsm, b"XYZ-01"),
    ):
        reader = InProcessReader(rt)
        ch = open_channel(reader)
        chan = ChannelReader(reader, ch)
        RepositoryCard(chan).select()
        with pytest.raises(ApduError) as e:
            SmReader(chan, channel=ch).authenticate(peer)
        assert e.value.sw == 0x6982


# -- use --------------------------------------------------------------------------------


def test_the_url_needs_a_matching_finger_in_this_card_session(pki: Pki) -> None:
    rt = new_card(pki)
    issue(rt, pki)
    rt.reset()
    with pytest.raises(ApduError) as e:
        plain_channel(rt).read_url()
    assert e.value.sw == 0x6982
    assert not touch(rt, finger=1)  # another finger: no URL
    with pytest.raises(ApduError) as e:
        plain_channel(rt).read_url()
    assert e.value.sw == 0x6982
    assert touch(rt)
    assert plain_channel(rt).read_url().url == URL
    rt.reset()  # the session is over
    with pytest.raises(ApduError):
        plain_channel(rt).read_url()


def issued_and_touched(pki: Pki) -> CardRuntime:
    rt = new_card(pki)
    issue(rt, pki)
    rt.reset()
    assert touch(rt)
    return rt


def test_session_key_signature_and_token_through_the_card(pki: Pki) -> None:
    rt = issued_and_touched(pki)
    terminal = plain_channel(rt)
    repo, relay, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    key = repo.generate_session_key()
    assert key.key_id == hashlib.sha256(key.public.to_point()).digest()[:20]
    credential = b'{"licence": "B"}'
    assert ec_verify(key.public, credential, repo.sign(credential))
    token = bytes(range(16))
    repo.send_token(token)
    assert not any(token in apdu for apdu in relay.seen)  # the relay never saw it
    assert terminal.read_token() == token
    with pytest.raises(ApduError) as e:
        terminal.read_token()  # released once
    assert e.value.sw == 0x6A88
    # The SM channel is still up: a second key replaces the first.
    assert repo.generate_session_key().template != key.template


def _key_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the card's rebuilds of a stored key (`RepositoryCardApplet._key`), calling
    through to the real one."""
    from applets.repository.applet import RepositoryCardApplet

    builds: list[int] = []
    real = RepositoryCardApplet._key

    def counted(record: tuple[object, ...]) -> EcKeyPair:
        builds.append(1)
        return real(record)

    monkeypatch.setattr(RepositoryCardApplet, "_key", staticmethod(counted))
    return builds


@pytest.mark.parametrize("seed", [None, 9])
def test_the_session_key_is_built_once_and_kept_in_ram_only(
    pki: Pki, seed: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the session key was rebuilt from its record for every signature. It is
    built once and kept in a transient (RAM) field, never in persistent memory; a power
    cycle, a reset or the applet's deselection clears it."""
    rt = make_card(pki.root, HOLDER, rng_seed=seed)
    issue(rt, pki)
    rt.reset()
    assert touch(rt)
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    key = repo.generate_session_key()
    builds = _key_builds(monkeypatch)
    for k in range(5):
        assert ec_verify(key.public, b"credential %d" % k, repo.sign(b"credential %d" % k))
    assert len(builds) == 1
    applet = rt.applet(REPOSITORY_AID)
    assert applet.session_signer is not None
    assert not any("signer" in name for name in applet_store(rt))  # RAM only
    rt.reset()
    assert applet.session_signer is None
    assert touch(rt)
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))  # builds key 81
    n = len(builds)
    assert ec_verify(key.public, b"again", repo.sign(b"again"))
    assert len(builds) == n + 1  # rebuilt after the reset
    # Deselected on every channel: cleared (Java Card CLEAR_ON_DESELECT).
    assert applet.session_signer is not None
    for ch in range(1, 4):
        rt.process(bytes((0x00, 0x70, 0x80, ch)))  # MANAGE CHANNEL close
    assert applet.session_signer is None


def test_a_changed_or_deleted_session_key_is_not_signed_with_from_ram(pki: Pki) -> None:
    """The RAM copy is tied to the stored record it was built from: a new key (by GENERATE
    or written into the store some other way, as a rollback would) signs with the new
    key; a deleted one signs nothing."""
    from card.crypto.rng import CardRng

    rt = issued_and_touched(pki)
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    first = repo.generate_session_key()
    assert ec_verify(first.public, b"one", repo.sign(b"one"))
    second = repo.generate_session_key()
    sig = repo.sign(b"two")
    assert ec_verify(second.public, b"two", sig) and not ec_verify(first.public, b"two", sig)
    other = EcKeyPair.generate(P256, CardRng(77))
    owner = REPOSITORY_AID.hex()
    rt.nvm.write(owner, "session_key", (other.private_bytes(), public_key_template(other.public)))
    assert ec_verify(other.public, b"three", repo.sign(b"three"))
    rt.nvm.delete(owner, "session_key")
    with pytest.raises(ApduError) as e:
        repo.sign(b"four")
    assert e.value.sw == 0x6A88


def test_repository_commands_need_the_finger_and_the_repository(pki: Pki) -> None:
    rt = new_card(pki)
    issue(rt, pki)
    rt.reset()
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    with pytest.raises(ApduError) as e:
        repo.generate_session_key()  # no finger matched
    assert e.value.sw == 0x6982
    assert touch(rt)
    hsm, _, _ = sm_channel(rt, pki.peer(pki.hsm, b"HSM-01"))
    for call in (hsm.generate_session_key, lambda: hsm.sign(b"x")):
        with pytest.raises(ApduError) as e:
            call()
        assert e.value.sw == 0x6982
    with pytest.raises(ApduError) as e:
        plain_channel(rt).send_token(bytes(16))  # a token in clear
    assert e.value.sw == 0x6982


def test_an_altered_sm_apdu_ends_the_session_and_delivers_no_token(pki: Pki) -> None:
    rt = issued_and_touched(pki)
    terminal = plain_channel(rt)
    repo, relay, sm = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    relay.tamper = 12  # inside the cryptogram
    with pytest.raises(SecureChannelError):
        repo.send_token(bytes(range(16)))
    assert not sm.is_open
    with pytest.raises(ApduError) as e:
        terminal.read_token()
    assert e.value.sw == 0x6A88


def test_a_replayed_sm_exchange_is_refused(pki: Pki) -> None:
    rt = issued_and_touched(pki)
    terminal = plain_channel(rt)
    repo, relay, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    repo.send_token(bytes(range(16)))
    assert terminal.read_token() == bytes(range(16))
    old = relay.seen[-1]
    assert relay.inner.transmit(old)[-2:] == b"\x69\x88"  # the counter moved on
    with pytest.raises(ApduError):
        terminal.read_token()
    # A new session (new keys) does not accept the old exchange either.
    repo2, relay2, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    assert relay2.inner.transmit(old)[-2:] == b"\x69\x88"


def test_a_tear_during_key_generation_leaves_the_card_usable(pki: Pki) -> None:
    rt = issued_and_touched(pki)
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    old = repo.generate_session_key()
    n = 0
    while True:
        repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
        rt.nvm.tear_after(n)
        try:
            new = repo.generate_session_key()
            torn = False
        except ReaderError:
            torn = True
        finally:
            rt.nvm.tear_after(None)
        if torn:
            rt.power_on()
            assert touch(rt)
        stored = applet_store(rt)["session_key"]
        assert isinstance(stored, tuple) and len(stored) in (2, 3)  # a whole key, old or new
        repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
        sig = repo.sign(b"after")
        expected = new if not torn else None
        if expected is not None:
            assert ec_verify(expected.public, b"after", sig)
        else:
            assert stored[1] == old.template or ec_verify(
                parse_public_key_template(stored[1]), b"after", sig
            )
        assert plain_channel(rt).read_url().url == URL
        if not torn:
            break
        n += 1
    assert n >= 1


def test_personalisation_is_once_and_needs_a_certified_key(pki: Pki) -> None:
    rt = new_card(pki)
    card = RepositoryCard(InProcessReader(rt))
    card.select()
    with pytest.raises(ApduError) as e:
        card.generate_auth_key()
    assert e.value.sw == 0x6985
    with pytest.raises(ApduError) as e:
        card.personalise(public_key_template(pki.root.public), b"\x7f\x21\x00", b"\x7f\x2e\x00")
    assert e.value.sw == 0x6982


def test_power_lost_during_token_handling_leaves_the_card_usable(pki: Pki) -> None:
    rt = issued_and_touched(pki)
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    repo.generate_session_key()
    repo.send_token(bytes(range(16)))
    rt.power_off()  # the token was volatile: it is gone with the power
    rt.power_on()
    assert touch(rt)
    with pytest.raises(ApduError) as e:
        plain_channel(rt).read_token()
    assert e.value.sw == 0x6A88
    repo, _, _ = sm_channel(rt, pki.peer(pki.repo, b"REP-01"))
    key = repo.generate_session_key()
    repo.send_token(b"T" * 16)
    assert plain_channel(rt).read_token() == b"T" * 16
    assert ec_verify(key.public, b"c", repo.sign(b"c"))
