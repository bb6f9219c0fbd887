"""The test PKI (host.pki, `cardemu pki`): SGP.22 §4.5.2 certificate profiles and chain checks."""

from __future__ import annotations

import json
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from host.cli import main
from host.pki import (
    DEFAULT_EIN,
    OID_ROLE_CI,
    OID_ROLE_DP_AUTH,
    OID_ROLE_DP_PB,
    OID_ROLE_DP_TLS,
    OID_ROLE_EUICC,
    OID_ROLE_EUM,
    ChainError,
    PkiError,
    authority_key_id,
    create_pki,
    default_pki,
    eid_check_digits,
    eid_is_valid,
    eid_of,
    eid_permitted,
    has_policy,
    issued_by,
    load_pki,
    load_pkis,
    make_eid,
    parse_certificate,
    permitted_eid_ranges,
    subject_key_id,
    verify_euicc_chain,
)


@pytest.fixture(scope="module")
def pki():
    return create_pki(seed=b"unit", eids=[make_eid(DEFAULT_EIN, 1), make_eid(DEFAULT_EIN, 2)])


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


# -- The OIDs and EIDs --------------------------------------------------------------------


def test_role_oids_are_the_sgp22_ones() -> None:
    # SGP.22 RSPDefinitions: id-rspRole = 2.23.146.1.2.1, roles 0..5.
    assert OID_ROLE_CI.dotted_string == "2.23.146.1.2.1.0"
    assert OID_ROLE_EUICC.dotted_string == "2.23.146.1.2.1.1"
    assert OID_ROLE_EUM.dotted_string == "2.23.146.1.2.1.2"
    assert OID_ROLE_DP_TLS.dotted_string == "2.23.146.1.2.1.3"
    assert OID_ROLE_DP_AUTH.dotted_string == "2.23.146.1.2.1.4"
    assert OID_ROLE_DP_PB.dotted_string == "2.23.146.1.2.1.5"


def test_published_eid_checks() -> None:
    # The EID in GSMA SGP.26's test eUICC certificates, and one with a wrong check pair.
    assert eid_is_valid("89049032123451234512345678901235")
    assert not eid_is_valid("89049032123451234512345678901236")
    assert eid_check_digits("890490321234512345123456789012") == "35"


@settings(max_examples=200, deadline=None)
@given(
    serial=st.integers(min_value=0, max_value=10**22 - 1),
    pos=st.integers(min_value=0, max_value=31),
    delta=st.integers(min_value=1, max_value=9),
)
def test_eid_check_digits_catch_any_single_digit_error(serial: int, pos: int, delta: int) -> None:
    eid = make_eid(DEFAULT_EIN, serial)
    assert eid_is_valid(eid) and eid.startswith(DEFAULT_EIN) and len(eid) == 32
    wrong = eid[:pos] + str((int(eid[pos]) + delta) % 10) + eid[pos + 1 :]
    assert not eid_is_valid(wrong)


# -- Certificate profiles -----------------------------------------------------------------


def test_ci_profile(pki) -> None:
    ci = pki.ci.cert
    assert ci.subject == ci.issuer and issued_by(ci, ci)
    assert has_policy(ci, OID_ROLE_CI) and _ext(ci, x509.CertificatePolicies).critical
    bc = _ext(ci, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = _ext(ci, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    # A root carries only its subject key identifier (SGP.22 §4.5.2.2).
    assert authority_key_id(ci) is None
    assert subject_key_id(ci) == pki.ci.ski


def test_eum_profile(pki) -> None:
    eum = pki.eum.cert
    assert issued_by(eum, pki.ci.cert)
    assert authority_key_id(eum) == pki.ci.ski
    assert has_policy(eum, OID_ROLE_EUM) and not has_policy(eum, OID_ROLE_CI)
    bc = _ext(eum, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = _ext(eum, x509.KeyUsage).value
    assert ku.key_cert_sign
    nc = _ext(eum, x509.NameConstraints)
    assert nc.critical
    assert permitted_eid_ranges(eum) == [(pki.eum_org, DEFAULT_EIN)]


def test_euicc_profile(pki) -> None:
    assert list(pki.euiccs) == [make_eid(DEFAULT_EIN, 1), make_eid(DEFAULT_EIN, 2)]
    for eid, cred in pki.euiccs.items():
        cert = cred.cert
        assert eid_of(cert) == eid
        assert (
            cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == pki.eum_org
        )
        assert issued_by(cert, pki.eum.cert) and not issued_by(cert, pki.ci.cert)
        assert authority_key_id(cert) == pki.eum.ski
        assert has_policy(cert, OID_ROLE_EUICC)
        ku = _ext(cert, x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
        assert cert.not_valid_after_utc.year == 9999
        assert eid_permitted(cert, pki.eum.cert)


@pytest.mark.parametrize(
    "attr,role",
    [("dpauth", OID_ROLE_DP_AUTH), ("dppb", OID_ROLE_DP_PB), ("dptls", OID_ROLE_DP_TLS)],
)
def test_smdp_profiles(pki, attr: str, role: x509.ObjectIdentifier) -> None:
    cert = getattr(pki, attr).cert
    assert issued_by(cert, pki.ci.cert)
    assert authority_key_id(cert) == pki.ci.ski
    assert has_policy(cert, role)
    others = {OID_ROLE_DP_AUTH, OID_ROLE_DP_PB, OID_ROLE_DP_TLS} - {role}
    assert not any(has_policy(cert, o) for o in others)
    assert _ext(cert, x509.KeyUsage).value.digital_signature
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert [o.dotted_string for o in san.get_values_for_type(x509.RegisteredID)] == [pki.smdp_oid]
    crl = _ext(cert, x509.CRLDistributionPoints).value
    assert crl[0].full_name[0].value.startswith("http://")


def test_dptls_names_and_usage(pki) -> None:
    cert = pki.dptls.cert
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in _ext(cert, x509.ExtendedKeyUsage).value
    named = create_pki(seed=b"unit", smdp_host="testsmdpplus1.example.com", tls_names=())
    san = _ext(named.dptls.cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["testsmdpplus1.example.com"]
    assert named.dptls.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "testsmdpplus1.example.com"
    )


def test_tls_handshake_trusts_ci_and_checks_the_host(pki) -> None:
    """OpenSSL (through Python's ssl) accepts CERT.DPtls under the CI, for its names only."""
    from host.servers.web import TlsFiles

    server_ctx = TlsFiles(pki.dptls.pem, pki.dptls.key_pem).context()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(n: int) -> None:
        for _ in range(n):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as s:
                    s.recv(1)
            except (ssl.SSLError, OSError):
                pass

    t = threading.Thread(target=serve, args=(2,), daemon=True)
    t.start()
    client_ctx = ssl.create_default_context(cadata=pki.ci.pem.decode())
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.getpeercert()["subject"][1][0] == ("commonName", "localhost")
            s.sendall(b"x")
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            client_ctx.wrap_socket(raw, server_hostname="evil.example.com")
    t.join(timeout=5)
    listener.close()


def test_brainpool_pki() -> None:
    p = create_pki(curve="brainpool", seed=1)
    for cred in (p.ci, p.eum, p.euicc, p.dpauth, p.dppb, p.dptls):
        assert isinstance(cred.key.curve, ec.BrainpoolP256R1)
        assert cred.curve == "brainpool"
    assert verify_euicc_chain(p.euicc.cert, p.eum.cert, [p.ci.cert]) == p.ci.cert


# -- Determinism --------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, b = create_pki(seed="s1"), create_pki(seed="s1")
    for x, y in zip(
        (a.ci, a.eum, a.euicc, a.dpauth, a.dppb, a.dptls),
        (b.ci, b.eum, b.euicc, b.dpauth, b.dppb, b.dptls),
        strict=True,
    ):
        assert x.der == y.der and x.private_scalar == y.private_scalar
    c = create_pki(seed="s2")
    assert c.ci.der != a.ci.der and c.euicc.private_scalar != a.euicc.private_scalar
    assert create_pki().ci.private_scalar != create_pki().ci.private_scalar
    # Two curves from one seed do not share keys.
    assert create_pki(seed="s1", curve="brainpool").ci.ski != a.ci.ski
    assert default_pki().ci.der == default_pki().ci.der


def test_credential_sign_is_raw_r_s_and_verifies(pki) -> None:
    sig = pki.euicc.sign(b"data")
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pki.euicc.cert.public_key().verify(der, b"data", ec.ECDSA(hashes.SHA256()))
    assert pki.euicc.public_point[0] == 4 and len(pki.euicc.public_point) == 65


# -- Chain verification (what the SM-DP+ does) --------------------------------------------


def test_chain_ok(pki) -> None:
    other = create_pki(seed=b"other")
    assert verify_euicc_chain(pki.euicc.cert, pki.eum.cert, [other.ci.cert, pki.ci.cert]) == (
        pki.ci.cert
    )


def test_chain_unknown_ci(pki) -> None:
    other = create_pki(seed=b"other")
    with pytest.raises(ChainError) as e:
        verify_euicc_chain(pki.euicc.cert, pki.eum.cert, [other.ci.cert])
    assert (e.value.which, e.value.reason) == ("ci", "unknown")


def test_chain_eum_from_another_ci_with_same_key_id(pki) -> None:
    """An EUM that claims our CI's key identifier but was signed by another key."""
    other = create_pki(seed=b"other")
    forged = (
        x509.CertificateBuilder()
        .subject_name(pki.eum.cert.subject)
        .issuer_name(pki.ci.cert.subject)
        .serial_number(7)
        .not_valid_before(pki.eum.cert.not_valid_before_utc)
        .not_valid_after(pki.eum.cert.not_valid_after_utc)
        .public_key(pki.eum.key.public_key())
    )
    for ext in pki.eum.cert.extensions:
        forged = forged.add_extension(ext.value, ext.critical)
    forged_cert = forged.sign(other.ci.key, hashes.SHA256())
    with pytest.raises(ChainError) as e:
        verify_euicc_chain(pki.euicc.cert, forged_cert, [pki.ci.cert])
    assert (e.value.which, e.value.reason) == ("eum", "signature")


def test_chain_euicc_from_another_eum(pki) -> None:
    other = create_pki(seed=b"other")
    with pytest.raises(ChainError) as e:
        verify_euicc_chain(other.euicc.cert, pki.eum.cert, [pki.ci.cert])
    assert (e.value.which, e.value.reason) == ("euicc", "signature")


def test_chain_eid_outside_range(pki) -> None:
    outside = pki.issue_euicc(make_eid("89049033", 5), seed=3)
    assert not eid_permitted(outside.cert, pki.eum.cert)
    with pytest.raises(ChainError) as e:
        verify_euicc_chain(outside.cert, pki.eum.cert, [pki.ci.cert])
    assert (e.value.which, e.value.reason) == ("euicc", "range")


def test_chain_other_organisation(pki) -> None:
    stranger = pki.issue_euicc(pki.eid, seed=3, org="Another EUM")
    with pytest.raises(ChainError) as e:
        verify_euicc_chain(stranger.cert, pki.eum.cert, [pki.ci.cert])
    assert e.value.reason == "range"


def test_chain_wrong_role(pki) -> None:
    """A DPauth certificate presented as an eUICC's: not signed by the EUM."""
    with pytest.raises(ChainError):
        verify_euicc_chain(pki.dpauth.cert, pki.eum.cert, [pki.ci.cert])
    # An EUM certificate in the place of the CI-signed EUM without its policy: the CI itself.
    with pytest.raises(ChainError) as e:
        verify_euicc_chain(pki.euicc.cert, pki.ci.cert, [pki.ci.cert])
    assert e.value.which in ("ci", "euicc", "eum")


def test_bad_inputs() -> None:
    with pytest.raises(PkiError):
        create_pki(curve="p384")
    with pytest.raises(PkiError):
        create_pki(eids=["89049032000000000000000000000164"])  # bad check digits
    with pytest.raises(PkiError):
        create_pki(eids=[make_eid("89049099", 1)])  # outside the EIN
    with pytest.raises(ValueError):
        make_eid("12345", 10**26)


# -- Files and the CLI --------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, pki) -> None:
    written = pki.save(tmp_path)
    assert all(p.exists() for p in written)
    assert (tmp_path / "ci/SK_CI_ECDSA_NIST.pem").stat().st_mode & 0o077 == 0
    brp = create_pki(curve="brainpool", seed=b"unit")
    brp.save(tmp_path)
    back = load_pki(tmp_path)
    assert back.ci.der == pki.ci.der and back.dptls.der == pki.dptls.der
    assert {e: c.der for e, c in back.euiccs.items()} == {e: c.der for e, c in pki.euiccs.items()}
    assert back.euicc.private_scalar == pki.euicc.private_scalar
    assert load_pki(tmp_path, "brainpool").ci.der == brp.ci.der
    manifest = json.loads((tmp_path / "pki.json").read_text())
    assert set(manifest["curves"]) == {"nist", "brainpool"}
    with pytest.raises(PkiError):
        load_pki(tmp_path / "nothing")
    assert [p.ci.der for p in load_pkis(tmp_path)] == [pki.ci.der, brp.ci.der]


def test_parse_certificate_reads_pem_and_der(pki) -> None:
    pem = pki.ci.cert.public_bytes(serialization.Encoding.PEM)
    assert parse_certificate(pem) == parse_certificate(pki.ci.der) == pki.ci.cert
    with pytest.raises(ValueError):
        parse_certificate(b"junk")


def test_cli_refuses_a_file_that_is_no_certificate(tmp_path, capsys) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"junk")
    d = tmp_path / "pki"
    assert main(["pki", "create", str(d), "--seed", "cli"]) == 0
    assert main(["pki", "revoke", str(d), "--cert", str(junk)]) == 2
    assert "not a certificate" in capsys.readouterr().err
    card = tmp_path / "e.card"
    assert main(["card", "new", "--preset", "euicc", "--trust-ci", str(junk), str(card)]) == 2
    assert "not a certificate" in capsys.readouterr().err
    assert not card.exists()


def test_load_pkis_refuses_a_directory_without_one(tmp_path, pki) -> None:
    with pytest.raises(PkiError, match="no PKI there"):
        load_pkis(tmp_path)
    brp = create_pki(curve="brainpool", seed=b"unit")
    brp.save(tmp_path)
    assert [p.curve for p in load_pkis(tmp_path)] == ["brainpool"]


def test_cli_create_and_show(tmp_path, capsys) -> None:
    d = tmp_path / "pki"
    assert main(["pki", "create", str(d), "--seed", "cli", "--euiccs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    roles = [c["role"] for c in out["certificates"]]
    assert roles == ["ci", "eum", "euicc", "euicc", "dp-auth", "dp-pb", "dp-tls"]
    assert (
        load_pki(d).ci.der
        == create_pki(seed="cli", eids=[make_eid(DEFAULT_EIN, 1), make_eid(DEFAULT_EIN, 2)]).ci.der
    )
    # A second create into the same directory is refused: keys are not overwritten by accident.
    assert main(["pki", "create", str(d)]) == 1
    assert "already holds" in capsys.readouterr().err
    assert main(["pki", "show", str(d), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["role"] == "ci" and len(rows) == 7
    assert main(["pki", "create", str(tmp_path / "x"), "--eid", "123"]) == 2
    assert main(["pki", "create", str(tmp_path / "y"), "--eid", "1", "--euiccs", "2"]) == 2
