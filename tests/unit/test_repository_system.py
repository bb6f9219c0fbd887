"""Seed 002 end to end in-process: registration device + HSM, repository, counter terminal.

The servers run on the common web stack over real loopback HTTP; the card is
an emulated one in this process. Every refusal asserts what was *not* disclosed
or stored: the disclosure log, the history, the credentials, the card.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from card.sm.cvc import issue_cvc, public_key_template
from host.bio.synthetic import make_dataset
from host.errors import ApduError
from host.readers.inprocess import InProcessReader
from host.servers.web import RoleServer
from host.systems.repository import hsm as hsm_mod
from host.systems.repository import server as repo_mod
from host.systems.repository.applet_ids import CARD_REF
from host.systems.repository.card import REPOSITORY_AID, make_card
from host.systems.repository.terminal import (
    CounterTerminal,
    JsonClient,
    ServerRefused,
    UrlRefused,
)

DS = make_dataset(3, 3, seed=42)
HOLDER, OTHER = DS.impressions[0], DS.impressions[1]
CREDENTIAL = b'{"qualification": "bank account opening", "holder": "H. Sato"}'


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    card: CardRuntime
    other_card: CardRuntime
    hsm: hsm_mod.Hsm
    device: hsm_mod.RegistrationDevice
    repo: repo_mod.Repository
    registration_url: str
    repo_url: str
    terminal_key: EcKeyPair
    terminal_key_id: str
    clock: Clock

    def terminal(self, reader: object = None, **kw: object) -> CounterTerminal:
        return CounterTerminal(
            reader or InProcessReader(self.card),  # type: ignore[arg-type]
            key=self.terminal_key,
            key_id=self.terminal_key_id,
            **kw,  # type: ignore[arg-type]
        )

    def registration(self) -> JsonClient:
        return JsonClient(self.registration_url)


@contextlib.contextmanager
def world(*, hsm_finger: int = 0, seed: int = 7, store: str = ":memory:") -> Iterator[World]:
    """The system; `store` holds the repository's and the HSM's tables (two stores on it)."""
    rng = CardRng(seed)
    root = EcKeyPair.generate(P256, rng)
    hsm_key, repo_key, terminal_key = (EcKeyPair.generate(P256, rng) for _ in range(3))
    hsm_cert = issue_cvc(root.cryptography_key, b"ROOT", b"HSM-01", hsm_key.public)
    repo_cert = issue_cvc(root.cryptography_key, b"ROOT", b"REP-01", repo_key.public)
    clock = Clock()
    repo = repo_mod.Repository(
        store,
        key=repo_key,
        certificate=repo_cert,
        root=root.public,
        holder=CARD_REF,
        clock=clock,
    )
    key_id = repo.register_terminal("counter-1", public_key_template(terminal_key.public))
    repo.put_credential("qualification", CREDENTIAL)
    hsm = hsm_mod.Hsm(store)
    device = hsm_mod.RegistrationDevice(hsm, key=hsm_key, certificate=hsm_cert, root=root.public)
    card = make_card(root, HOLDER[0], rng_seed=seed, card_ref=CARD_REF)
    other_card = make_card(root, OTHER[0], rng_seed=seed + 1, card_ref=b"CARD0002")
    from applets.biometric.iso19794 import build_biometric_data

    with (
        RoleServer(repo_mod.create_app(repo), name="repository") as rs,
        RoleServer(hsm_mod.create_app(device), name="registration") as hs,
    ):
        hsm.enrol(CARD_REF, build_biometric_data(DS.impressions[hsm_finger][0]), rs.url)
        try:
            hsm.enrol(b"CARD0002", build_biometric_data(OTHER[0]), rs.url)
            yield World(
                card, other_card, hsm, device, repo, hs.url, rs.url, terminal_key, key_id, clock
            )
        finally:
            repo.close()
            device.close()


def issued_world(**kw: object) -> contextlib.AbstractContextManager[World]:
    @contextlib.contextmanager
    def make() -> Iterator[World]:
        with world(**kw) as w:  # type: ignore[arg-type]
            w.terminal().issue(w.registration())
            w.card.reset()
            yield w

    return make()


def nothing_disclosed(w: World) -> None:
    assert w.repo.disclosures() == []


# -- the seed's three flows -------------------------------------------------------------


def test_issuance_read_and_write_end_to_end() -> None:
    check_issuance_read_and_write(":memory:")


def check_issuance_read_and_write(store: str) -> None:
    """Issue, read and write through both roles (also run on PostgreSQL)."""
    with world(store=store) as w:
        result = w.terminal().issue(w.registration())
        assert result["url"] == w.repo_url
        assert len(w.hsm.issued()) == 1
        w.card.reset()
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        signed = t.read_url()
        assert signed.url == w.repo_url
        t.connect()
        assert t.read("qualification") == CREDENTIAL
        (log,) = w.repo.disclosures()
        assert log["credential_id"] == "qualification" and log["terminal_id"] == "counter-1"
        t.write("licence", b'{"licence": "B", "since": 2026}')
        assert w.repo.credential("licence") == b'{"licence": "B", "since": 2026}'
        (hist,) = w.repo.history()
        assert hist["credential_id"] == "licence"


# -- refusals -----------------------------------------------------------------------------


def test_fingerprint_mismatch_on_the_card_releases_no_url() -> None:
    with issued_world() as w:
        t = w.terminal()
        assert not t.present_finger(OTHER[0])
        with pytest.raises(ApduError) as e:
            t.read_url()
        assert e.value.sw == 0x6982
        nothing_disclosed(w)


def test_fingerprint_mismatch_at_the_hsm_issues_nothing() -> None:
    with world(hsm_finger=1) as w:
        with pytest.raises(ServerRefused, match="fingerprint"):
            w.terminal().issue(w.registration())
        assert w.hsm.issued() == [] and w.hsm.keys() == []
        w.card.reset()
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        with pytest.raises(ApduError) as e:
            t.read_url()
        assert e.value.sw == 0x6985  # the card holds no URL


def test_a_url_signature_that_fails_is_refused_by_the_card() -> None:
    with world() as w:
        good = w.device.sign
        w.device.sign = lambda hsm_key, card_key, url: good(hsm_key, card_key, url + "/evil")
        with pytest.raises(ServerRefused, match="6982"):
            w.terminal().issue(w.registration())
        assert w.hsm.issued() == []
        w.card.reset()
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        with pytest.raises(ApduError) as e:
            t.read_url()
        assert e.value.sw == 0x6985


def test_a_card_whose_url_signature_fails_is_refused_by_the_terminal() -> None:
    from card.framework.system import Store

    with issued_world() as w:
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        assert t.read_url(w.registration()).url == w.repo_url  # the genuine card passes
        Store(w.card.nvm, REPOSITORY_AID.hex()).set("url", b"http://127.0.0.1:9/elsewhere")
        with pytest.raises(UrlRefused, match="signature"):
            t.read_url(w.registration())
        nothing_disclosed(w)
        assert w.repo._sessions == {}


def test_a_card_issued_by_an_unknown_hsm_is_refused_by_the_terminal() -> None:
    with world() as w:
        # An HSM the root certified, but not the registration device the terminal trusts.
        # Its SM identity is a certified one; its HSM's keys are its own.
        rogue_hsm = hsm_mod.Hsm(":memory:")
        rogue = hsm_mod.RegistrationDevice(
            rogue_hsm, key=w.device.key, certificate=w.device.certificate, root=w.device.root
        )
        from applets.biometric.iso19794 import build_biometric_data

        rogue_hsm.enrol(CARD_REF, build_biometric_data(HOLDER[0]), "http://127.0.0.1:9/rogue")
        with RoleServer(hsm_mod.create_app(rogue), name="rogue") as rs:
            w.terminal().issue(JsonClient(rs.url))
        w.card.reset()
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        with pytest.raises(UrlRefused, match="nobody issued"):
            t.read_url(w.registration())
        nothing_disclosed(w)
        rogue.close()


def test_another_holders_card_reads_nothing_here() -> None:
    """A card the root certified, its own holder's finger, but not this repository's holder."""
    with issued_world() as w:
        t = w.terminal(InProcessReader(w.other_card))
        t.issue(w.registration())  # issued with the URL of this repository (a wrong record)
        w.other_card.reset()
        assert t.present_finger(OTHER[1])
        with pytest.raises(ServerRefused, match="not the holder's card"):
            t.connect()
        nothing_disclosed(w)


def _read_until_token(w: World) -> tuple[CounterTerminal, bytes]:
    t = w.terminal()
    assert t.present_finger(HOLDER[1])
    t.connect()
    repo = t._repo()
    p = f"/sessions/{t.session}"
    repo.request("POST", f"{p}/reads", {"credential_id": "qualification"})
    t.relay(repo, f"{p}/card")
    return t, t.plain_card().read_token()


def test_a_replayed_token_discloses_nothing_more() -> None:
    with issued_world() as w:
        t, token = _read_until_token(w)
        p = f"/sessions/{t.session}/disclose"
        assert t._repo().request("POST", p, {"token": token.hex()})["credential"]
        assert len(w.repo.disclosures()) == 1
        with pytest.raises(ServerRefused) as e:
            t._repo().request("POST", p, {"token": token.hex()})
        assert e.value.status == 403 and "used" in e.value.detail
        assert len(w.repo.disclosures()) == 1


def test_an_expired_token_discloses_nothing() -> None:
    with issued_world() as w:
        t, token = _read_until_token(w)
        w.clock.now += repo_mod.DEFAULT_TOKEN_TTL + 1
        with pytest.raises(ServerRefused) as e:
            t._repo().request("POST", f"/sessions/{t.session}/disclose", {"token": token.hex()})
        assert e.value.status == 403 and "expired" in e.value.detail
        nothing_disclosed(w)


def test_a_token_from_another_session_discloses_nothing() -> None:
    with issued_world() as w:
        t, token = _read_until_token(w)
        other = w.repo.open_session("counter-1", 3)
        with pytest.raises(ServerRefused) as e:
            t._repo().request("POST", f"/sessions/{other}/disclose", {"token": token.hex()})
        assert e.value.status == 403 and "another session" in e.value.detail
        nothing_disclosed(w)


def test_a_credential_signed_by_an_unknown_terminal_is_not_stored() -> None:
    with issued_world() as w:
        rogue = EcKeyPair.generate(P256, CardRng(99))
        t = w.terminal()
        t.key = rogue  # signs with a key the repository does not hold for it
        assert t.present_finger(HOLDER[1])
        t.connect()
        with pytest.raises(ServerRefused) as e:
            t.write("licence", b"forged")
        assert e.value.status == 403 and "signature" in e.value.detail
        assert w.repo.credential("licence") is None and w.repo.history() == []


def test_an_unknown_terminal_gets_no_session() -> None:
    with issued_world() as w:
        t = w.terminal(terminal_id="counter-9")
        assert t.present_finger(HOLDER[1])
        with pytest.raises(ServerRefused) as e:
            t.connect()
        assert e.value.status == 403
        nothing_disclosed(w)


class Meddler(CounterTerminal):
    """A terminal that alters, or replays, one relayed SM APDU."""

    alter_at: int | None = None
    replay_at: int | None = None

    def relay(self, server: JsonClient, path: str, details: object = None) -> object:
        inner = self.reader
        seen: list[bytes] = []
        meddler = self

        class Tap(InProcessReader):
            def __init__(self) -> None:
                pass

            def transmit(self, apdu: bytes) -> bytes:
                n = len(seen)
                seen.append(apdu)
                if meddler.alter_at == n:
                    b = bytearray(apdu)
                    b[-3] ^= 1
                    apdu = bytes(b)
                if meddler.replay_at == n:
                    apdu = seen[n - 1]
                return inner.transmit(apdu)

        self.reader = Tap()
        try:
            return super().relay(server, path, details)  # type: ignore[arg-type]
        finally:
            self.reader = inner


@pytest.mark.parametrize("how", ["alter", "replay"])
def test_an_altered_or_replayed_sm_apdu_discloses_nothing(how: str) -> None:
    with issued_world() as w:
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        t.connect()
        m = Meddler(t.reader, key=w.terminal_key, key_id=w.terminal_key_id)
        m.__dict__.update({k: v for k, v in t.__dict__.items() if k != "reader"})
        if how == "alter":
            m.alter_at = 0  # the protected PSO COMPUTE DIGITAL SIGNATURE
        else:
            m.replay_at = 1  # the token's PUT DATA replaced by the signing command again
        with pytest.raises(ServerRefused):
            m.read("qualification")
        nothing_disclosed(w)
        with pytest.raises(ApduError) as e:
            m.plain_card().read_token()  # the card holds no token for the terminal
        assert e.value.sw == 0x6A88


def test_a_read_token_does_not_store_and_a_write_token_does_not_disclose() -> None:
    with issued_world() as w:
        t, token = _read_until_token(w)
        repo = t._repo()
        sig = bytes(64)
        with pytest.raises(ServerRefused) as e:
            repo.request(
                "POST",
                f"/sessions/{t.session}/store",
                {
                    "token": token.hex(),
                    "credential_id": "x",
                    "credential": "00",
                    "signature": sig.hex(),
                },
            )
        assert e.value.status == 403
        assert w.repo.credential("x") is None and w.repo.history() == []
        # The read token is still good for its own purpose.
        assert repo.request("POST", f"/sessions/{t.session}/disclose", {"token": token.hex()})
        assert len(w.repo.disclosures()) == 1


def test_malformed_requests_are_problem_details() -> None:
    import http.client
    import json as json_

    with world() as w:
        c = JsonClient(w.repo_url)
        with pytest.raises(ServerRefused) as e:
            c.request("POST", "/sessions", {"terminal_id": "counter-1"})
        assert e.value.status == 400 and "channel" in e.value.detail
        with pytest.raises(ServerRefused) as e:
            c.request("POST", "/sessions/nope/disclose", {"token": "00"})
        assert e.value.status == 404
        with pytest.raises(ServerRefused) as e:
            c.request("POST", "/sessions/nope/disclose", {"token": "zz"})
        assert e.value.status == 400
        conn = http.client.HTTPConnection(c.host, c.port, timeout=10)
        conn.request("POST", "/sessions", body=b"{", headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 400
        assert resp.getheader("Content-Type") == "application/problem+json"
        assert json_.loads(resp.read())["status"] == 400
        conn.close()
        nothing_disclosed(w)


def test_the_card_exchange_is_refused_when_no_job_runs() -> None:
    with world() as w:
        sid = w.repo.open_session("counter-1", 1)
        with pytest.raises(repo_mod.Refused) as e:
            w.repo.exchange(sid, None)
        assert e.value.status == 409
        with pytest.raises(repo_mod.Refused) as e:
            w.repo.start_card_key(sid)  # the terminal's key first
        assert e.value.status == 409
        with pytest.raises(repo_mod.Refused) as e:
            w.repo.use_terminal_key(sid, "00" * 20)
        assert e.value.status == 403


# -- the `repository` preset ------------------------------------------------------------


def test_the_repository_preset_is_issued_by_the_demo_roles(tmp_path) -> None:
    """`card new --preset repository` makes the card `server registration --demo-seed 0` issues."""
    from applets.biometric.iso19794 import build_biometric_data
    from host.presets import new_card
    from host.systems.repository.demo import demo_pki

    pki = demo_pki(0)
    holder = make_dataset(1, 3, seed=2).impressions[0]
    card = new_card("repository", tmp_path / "r.card", rng_seed=3)
    hsm = hsm_mod.Hsm(":memory:")
    device = hsm_mod.RegistrationDevice(
        hsm, key=pki.hsm, certificate=pki.hsm_cert, root=pki.root.public
    )
    try:
        with RoleServer(hsm_mod.create_app(device), name="registration") as hs:
            hsm.enrol(CARD_REF, build_biometric_data(holder[0]), "https://repo.example/h")

            def terminal() -> CounterTerminal:  # a new one per card session (its channels)
                return CounterTerminal(InProcessReader(card), key=pki.terminal, key_id="counter-1")

            t = terminal()
            with pytest.raises(ApduError) as e:  # not issued yet: no URL, finger or not
                t.present_finger(holder[1])
                t.read_url()
            assert e.value.sw == 0x6985
            card.reset()
            assert terminal().issue(JsonClient(hs.url))["url"] == "https://repo.example/h"
        card.reset()
        t = terminal()
        assert not t.present_finger(make_dataset(2, 3, seed=9).impressions[1][0])
        assert t.present_finger(holder[2])
        assert t.read_url().url == "https://repo.example/h"
    finally:
        device.close()
        card.close()


# -- HTTPS ------------------------------------------------------------------------------


def test_roles_speak_https_and_a_terminal_trusts_only_the_demo_ca() -> None:
    """The scenario's roles serve the demo TLS; a client of another CA (or none) is refused."""
    import ssl

    from host.systems.repository.demo import demo_pki, demo_tls

    pki = demo_pki(0)
    hsm = hsm_mod.Hsm(":memory:")
    device = hsm_mod.RegistrationDevice(
        hsm, key=pki.hsm, certificate=pki.hsm_cert, root=pki.root.public
    )
    try:
        app = hsm_mod.create_app(device)
        with RoleServer(app, name="registration", tls=demo_tls(0).server) as hs:
            assert hs.url.startswith("https://")
            missing = "/hsm/keys/" + "00" * 20
            with pytest.raises(ServerRefused) as e:  # TLS made, the server's answer: 404
                JsonClient(hs.url, ca_pem=demo_tls(0).ca_pem).request("GET", missing)
            assert e.value.status == 404
            for ca in (demo_tls(1).ca_pem, None):  # another demo's CA; the system's store
                with pytest.raises(ssl.SSLCertVerificationError):
                    JsonClient(hs.url, ca_pem=ca).request("GET", missing)
    finally:
        device.close()
    assert demo_tls(0).ca_pem != demo_tls(1).ca_pem


def test_json_client_takes_https_or_http_urls_only() -> None:
    with pytest.raises(ValueError, match="https:// or http://"):
        JsonClient("ftp://127.0.0.1/")
    assert JsonClient("https://127.0.0.1").port == 443
    assert JsonClient("http://127.0.0.1").port == 80
