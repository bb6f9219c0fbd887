"""Revocation in RSP: CRLs from the test PKI, ES10b.LoadCRL on the eUICC, checks at both ends.

The eUICC (the emulated ISD-R) loads the CI's CRL and then refuses a revoked
CERT.DPauth or CERT.DPpb; the SM-DP+ refuses a revoked eUICC or EUM
certificate (test_es2plus_flow covers that end over loopback). Every refusal
of LoadCRL is a test too, with its LoadCRLResponseError code.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sgp22_helpers import Lpa as RawLpa
from sgp22_helpers import TestSmdp, euicc_card

from applets.isdr.crl import MAX_REVOKED
from card.sgp22 import asn1
from card.sgp22.certs import CrlError, TrustedCi, verify_crl
from card.tlv import encode_length
from host.cli import main
from host.es9plus import SC_DOWNLOAD_REFUSED, Es9Error
from host.lpa import ActivationCode, Es10Client, Es10Error, Lpa
from host.lpa.demo import demo_order
from host.pki import create_pki, issue_crl, load_crls, load_pki
from host.presets import PRESETS
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.server import OrderState, SmdpPlus

pytestmark = pytest.mark.skipif("euicc" not in PRESETS, reason="no euicc preset here")

PKI = create_pki(seed=b"revocation tests")


def der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def trusted(pki) -> list[TrustedCi]:
    point = pki.ci.public_point
    return [TrustedCi(pki.ci.ski, pki.ci.cert.public_key().curve.name, point)]


@pytest.fixture()
def card():
    rt = euicc_card(PKI)
    with Es10Client(InProcessReader(rt)) as es10:
        yield es10


@pytest.fixture()
def smdp():
    s = SmdpPlus(PKI, address="localhost:0")
    with s.serve() as server:
        s.address = f"localhost:{server.port}"
        s.add_order(demo_order("M1"))
        yield s


def download(es10: Es10Client, smdp: SmdpPlus):
    return Lpa(es10, ca_pem=PKI.ci.pem).download(ActivationCode(smdp.address, "M1"))


# -- the eUICC refuses revoked servers after LoadCRL -------------------------------------


def test_revoked_dpauth_refused_after_load_crl(card, smdp) -> None:
    card.load_crl(der(issue_crl(PKI.ci, [PKI.dpauth.cert.serial_number])))
    with pytest.raises(Es9Error) as e:
        download(card, smdp)
    assert e.value.code == SC_DOWNLOAD_REFUSED
    assert "error 1" in e.value.message  # AuthenticateServer: invalidCertificate
    assert smdp.order_state("M1") == OrderState.RELEASED
    # Before the CRL, the same eUICC downloads (a fresh card, the same SM-DP+).
    with Es10Client(InProcessReader(euicc_card(PKI))) as fresh:
        assert download(fresh, smdp).installed


def test_revoked_dppb_refused_at_prepare_download(card, smdp) -> None:
    card.load_crl(der(issue_crl(PKI.ci, [PKI.dppb.cert.serial_number])))
    with pytest.raises(Es9Error) as e:
        download(card, smdp)
    assert e.value.code == SC_DOWNLOAD_REFUSED
    assert "error 1" in e.value.message  # PrepareDownload: invalidCertificate
    assert Lpa(card).profiles() == []


def test_an_older_crl_does_not_unrevoke(card, smdp) -> None:
    card.load_crl(der(issue_crl(PKI.ci, [PKI.dpauth.cert.serial_number], number=5)))
    card.load_crl(der(issue_crl(PKI.ci, [], number=4)))  # accepted, changes nothing
    with pytest.raises(Es9Error):
        download(card, smdp)
    card.load_crl(der(issue_crl(PKI.ci, [], number=6)))  # a newer one lifts it
    assert download(card, smdp).installed


def test_euicc_info2_advertises_crl_support(card) -> None:
    from card.sgp22.values import bits_to_set

    assert 1 in bits_to_set(card.get_euicc_info2()["rspCapability"])  # crlSupport


def test_a_crl_revoking_others_changes_nothing(card, smdp) -> None:
    card.load_crl(der(issue_crl(PKI.ci, [1, 2, 3])))
    assert download(card, smdp).installed


# -- LoadCRL refusals ---------------------------------------------------------------------


def refused_load(es10: Es10Client, data: bytes, code: int) -> None:
    with pytest.raises(Es10Error) as e:
        es10.load_crl(data)
    assert e.value.code == code, str(e.value)


def test_load_crl_of_an_unknown_ci(card) -> None:
    other = create_pki(seed=b"another CI")
    refused_load(card, der(issue_crl(other.ci, [1])), CrlError.KEY_NOT_FOUND)


def test_load_crl_of_the_eum_is_not_the_cis(card) -> None:
    refused_load(card, der(issue_crl(PKI.eum, [1])), CrlError.KEY_NOT_FOUND)


def test_load_crl_forged_signature(card) -> None:
    forger = create_pki(seed=b"forger")
    now = dt.datetime.now(dt.UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(PKI.ci.cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier(PKI.ci.ski, None, None), critical=False)
        .add_extension(x509.CRLNumber(99), critical=False)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(PKI.dpauth.cert.serial_number)
            .revocation_date(now)
            .build()
        )
        .sign(forger.ci.key, hashes.SHA256())
    )
    refused_load(card, der(forged), CrlError.INVALID_SIGNATURE)


def test_load_crl_without_a_crl_number(card) -> None:
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(PKI.ci.cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier(PKI.ci.ski, None, None), critical=False)
        .sign(PKI.ci.key, hashes.SHA256())
    )
    refused_load(card, der(crl), CrlError.INVALID_FORMAT)


def test_load_crl_too_many_serials(card) -> None:
    crl = issue_crl(PKI.ci, range(1, MAX_REVOKED + 2))
    refused_load(card, der(crl), CrlError.NOT_ENOUGH_MEMORY)


def test_load_crl_not_a_sequence(card) -> None:
    with pytest.raises(ValueError):
        card.load_crl(b"\x04\x01\x00")


# -- the encoder and the decoder ---------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    serials=st.sets(st.integers(min_value=1, max_value=2**159 - 1), max_size=8),
    number=st.integers(min_value=0, max_value=2**64),
)
def test_issue_crl_verify_crl_round_trip(serials: set[int], number: int) -> None:
    info = verify_crl(der(issue_crl(PKI.ci, serials, number=number)), trusted(PKI))
    assert info.serials == frozenset(serials)
    assert info.number == number
    assert info.ci_ski == PKI.ci.ski


# -- the command line -----------------------------------------------------------------------


def test_cli_revoke_card_new_pki_load_crl(tmp_path, capsys) -> None:
    pki_dir = tmp_path / "pki"
    assert main(["pki", "create", str(pki_dir), "--seed", "7"]) == 0
    pki = load_pki(pki_dir)
    card = str(tmp_path / "other.card")
    assert main(["card", "new", "--preset", "euicc", "--pki", str(pki_dir), card]) == 0
    capsys.readouterr()
    assert main(["lpa", "eid", "--card", card]) == 0
    assert capsys.readouterr().out.strip() == pki.eid
    assert main(["pki", "revoke", str(pki_dir), "--euicc", pki.eid]) == 0
    assert main(["pki", "revoke", str(pki_dir), "--dpauth"]) == 0
    crls = load_crls(pki_dir)
    revoked = {r.serial_number for c in crls for r in c}
    assert {pki.euicc.cert.serial_number, pki.dpauth.cert.serial_number} <= revoked
    ci_crl = pki_dir / "crl" / "CRL_CI_ECDSA_NIST.der"
    assert main(["lpa", "load-crl", "--card", card, str(ci_crl)]) == 0
    eum_crl = pki_dir / "crl" / "CRL_EUM_ECDSA_NIST.der"
    assert main(["lpa", "load-crl", "--card", card, str(eum_crl)]) == 1  # not the CI's
    assert main(["pki", "revoke", str(pki_dir)]) == 2
    assert (
        main(["card", "new", "--preset", "usim", "--pki", str(pki_dir), str(tmp_path / "u")]) == 2
    )


# -- the ISD-R's revocation state, stateful ----------------------------------------------


class CrlMachine(RuleBasedStateMachine):
    """LoadCRL in any order, resets in between: the eUICC refuses CERT.DPauth exactly
    when the newest CRL it accepted (by CRL number) lists it."""

    def __init__(self) -> None:
        super().__init__()
        self.rt = euicc_card(PKI)
        self.lpa = RawLpa(self.rt)
        self.server = TestSmdp(pki=PKI)
        self.held: tuple[int, bool] | None = None  # (CRL number, DPauth revoked)

    @rule(number=st.integers(min_value=0, max_value=6), revoke=st.booleans())
    def load(self, number: int, revoke: bool) -> None:
        serials = [PKI.dpauth.cert.serial_number] if revoke else [7, 8]
        crl = der(issue_crl(PKI.ci, serials, number=number))
        request = b"\xbf\x35" + encode_length(len(crl)) + b"\xa0" + crl[1:]
        kind, _ = asn1.decode("LoadCRLResponse", self.lpa.call(request))
        assert kind == "loadCRLResponseOk"
        if self.held is None or number >= self.held[0]:
            self.held = (number, revoke)

    @rule()
    def reset(self) -> None:
        self.rt.power_off()
        self.rt.power_on()
        self.lpa = RawLpa(self.rt)

    @invariant()
    def dpauth_refused_iff_revoked(self) -> None:
        challenge = self.lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")
        req = self.server.authenticate_server_request(challenge["euiccChallenge"])
        kind, value = self.lpa.es10("AuthenticateServerRequest", req, "AuthenticateServerResponse")
        revoked = self.held is not None and self.held[1]
        if revoked:
            assert (kind, value["authenticateErrorCode"]) == ("authenticateResponseError", 1)
        else:
            assert kind == "authenticateResponseOk"


CrlMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=8, deadline=None)
test_crl_state_machine = CrlMachine.TestCase
