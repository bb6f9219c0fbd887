"""Certificates and signatures on the eUICC side: card.sgp22.certs, the ECASD, both curves.

The GSMA SGP.26 test certificates (tests/unit/data/sgp22/README.md) are an
independent PKI: the eUICC's checks must accept their DPauth/DPpb for their
roles and refuse them for the other. Signatures: the RFC 6979 §A.2.5 known
answer (P-256, SHA-256, "sample") through the ECASD, in TR-03111 r || s form.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from applets.isdr import ECASD_AID, Ecasd
from card.crypto.keys import EcPublicKey
from card.runtime import CardRuntime
from card.sgp22.certs import (
    OID_ROLE_DP_AUTH,
    OID_ROLE_DP_PB,
    CertificateError,
    CertReason,
    TrustedCi,
    subject_key_id,
    verify_server_certificate,
)
from card.sgp22.params import EcasdParams, IsdrParams
from card.sgp22.values import (
    bits_from_names,
    bits_to_set,
    iccid_from_bytes,
    iccid_to_bytes,
    raw_fields,
)
from card.sw import CardError
from host.pki import create_pki, default_pki
from tests.unit.sgp22_helpers import Lpa, TestSmdp, download, euicc_card

SGP26 = Path(__file__).parent / "data" / "sgp22" / "sgp26"


def _trusted(der: bytes) -> TrustedCi:
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return TrustedCi(subject_key_id(cert) or b"", key.curve.name, point)


@pytest.mark.parametrize("curve", ["NIST", "BRP"])
def test_sgp26_server_certificates_by_role(curve: str) -> None:
    ci = _trusted((SGP26 / f"CERT_CI_ECDSA_{curve}.der").read_bytes())
    auth = (SGP26 / f"CERT_S_SM_DPauth_ECDSA_{curve}.der").read_bytes()
    got = verify_server_certificate(auth, (OID_ROLE_DP_AUTH,), [ci], ci.ski)
    assert got.oid == "2.999.10" and got.ci_ski == ci.ski
    with pytest.raises(CertificateError) as e:
        verify_server_certificate(auth, (OID_ROLE_DP_PB,), [ci])
    assert e.value.reason == CertReason.POLICY
    if curve == "NIST":
        pb = (SGP26 / "CERT_S_SM_DPpb_ECDSA_NIST.der").read_bytes()
        assert verify_server_certificate(pb, (OID_ROLE_DP_PB,), [ci]).oid == "2.999.10"


def test_refusal_reasons() -> None:
    nist = _trusted((SGP26 / "CERT_CI_ECDSA_NIST.der").read_bytes())
    brp = _trusted((SGP26 / "CERT_CI_ECDSA_BRP.der").read_bytes())
    auth = (SGP26 / "CERT_S_SM_DPauth_ECDSA_NIST.der").read_bytes()

    def reason(der: bytes, trusted: list[TrustedCi], pkid: bytes | None = None) -> CertReason:
        with pytest.raises(CertificateError) as e:
            verify_server_certificate(der, (OID_ROLE_DP_AUTH,), trusted, pkid)
        return e.value.reason

    assert reason(auth, [brp]) == CertReason.UNKNOWN_CI
    assert (
        reason(auth, [nist, brp], brp.ski) == CertReason.UNKNOWN_CI
    )  # not the CI the server named
    tampered = bytearray(auth)
    tampered[-5] ^= 0x01  # inside the CI's signature
    assert reason(bytes(tampered), [nist]) == CertReason.SIGNATURE
    # The CI's key identifier, but another key: the signature does not verify.
    forged = TrustedCi(nist.ski, "secp256r1", _trusted(default_pki().ci.der).point)
    assert reason(auth, [forged]) == CertReason.SIGNATURE
    assert reason(b"\x30\x03\x02\x01\x00", [nist]) == CertReason.FORMAT


def test_key_usage_must_allow_signing() -> None:
    pki = default_pki()
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no signing")]))
        .issuer_name(pki.ci.cert.subject)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier(pki.ci.ski, None, None), critical=False)
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(OID_ROLE_DP_AUTH), None)]
            ),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .sign(pki.ci.key, hashes.SHA256())
    )
    with pytest.raises(CertificateError) as e:
        verify_server_certificate(
            cert.public_bytes(serialization.Encoding.DER),
            (OID_ROLE_DP_AUTH,),
            [_trusted(pki.ci.der)],
        )
    assert e.value.reason == CertReason.USAGE


# -- the ECASD's signature: RFC 6979 §A.2.5 known answer ---------------------------------------

RFC6979_X = bytes.fromhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
RFC6979_SAMPLE_R = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
RFC6979_SAMPLE_S = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"


def test_ecasd_signature_known_answer() -> None:
    key = ec.derive_private_key(int.from_bytes(RFC6979_X, "big"), ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.SERIAL_NUMBER, "89049032000000000000000000000163")]
    )
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    params = EcasdParams(bytes(16), RFC6979_X, cert, cert, ())
    rt = CardRuntime(None)
    rt.install(Ecasd, ECASD_AID, params.to_bytes())
    sig = rt.applet(ECASD_AID).sign(b"sample")
    assert sig.hex().upper() == RFC6979_SAMPLE_R + RFC6979_SAMPLE_S
    # A private key that does not match CERT.EUICC is refused at install time.
    bad = EcasdParams(bytes(16), b"\x01" * 32, cert, cert, ())
    with pytest.raises(CardError) as e:
        CardRuntime(None).install(Ecasd, ECASD_AID, bad.to_bytes())
    assert e.value.sw == 0x6A80


def test_a_whole_download_on_brainpool() -> None:
    pki = default_pki("brainpool")
    rt = euicc_card(pki=pki)
    lpa = Lpa(rt)
    smdp = TestSmdp(pki=pki)
    pir, _ = download(lpa, smdp)
    data = smdp.check_pir(pir)
    assert data["finalResult"][0] == "successResult"
    euicc_key = next(iter(pki.euiccs.values())).cert.public_key()
    assert isinstance(euicc_key.curve, ec.BrainpoolP256R1)


def test_extra_trusted_ci() -> None:
    other = create_pki(seed=b"second CI")
    rt = euicc_card(extra_ci_certificates=(other.ci.der,))
    lpa = Lpa(rt)
    info1 = lpa.es10("GetEuiccInfo1Request", {}, "EUICCInfo1")
    assert info1["euiccCiPKIdListForVerification"] == [default_pki().ci.ski, other.ci.ski]
    assert info1["euiccCiPKIdListForSigning"] == [default_pki().ci.ski]


# -- small codings -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_iccid_coding_round_trip(iccid: str) -> None:
    raw = iccid_to_bytes(iccid)
    assert len(raw) == 10 and iccid_from_bytes(raw) == iccid


def test_iccid_coding_is_ef_iccid() -> None:
    # ETSI TS 102 221 §13.2: swapped nibbles, F padding.
    assert iccid_to_bytes("8949449999999990049").hex() == "989444999999990940f9"


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 31), max_size=8))
def test_named_bits_round_trip_and_are_minimal(bits: set[int]) -> None:
    value = bits_from_names(*bits)
    assert bits_to_set(value) == frozenset(bits)
    assert value[1] == (max(bits) + 1 if bits else 0)


def test_raw_fields_keep_the_bytes_received() -> None:
    # A non-minimal length (81 02) is kept as sent: a signature covers what was sent.
    data = bytes.fromhex("3008818102aabb8101cc")
    assert raw_fields(data) == [
        (0x81, bytes.fromhex("818102aabb")),
        (0x81, bytes.fromhex("8101cc")),
    ]
    with pytest.raises(ValueError):
        raw_fields(data + b"\x00")
    with pytest.raises(ValueError):
        raw_fields(data[:-1])


def test_install_parameters_round_trip() -> None:
    ci = _trusted(default_pki().ci.der)
    p = EcasdParams(b"\x89" * 16, b"\x01" * 32, b"cert", b"eum", (ci, ci))
    assert EcasdParams.from_bytes(p.to_bytes()) == p
    assert "\\x01" not in repr(p) and "01010101" not in repr(p)
    assert IsdrParams.from_bytes(IsdrParams("dp.example", "ds.example").to_bytes()) == IsdrParams(
        "dp.example", "ds.example"
    )
    assert IsdrParams.from_bytes(b"") == IsdrParams()
    with pytest.raises(ValueError):
        EcasdParams.from_bytes(bytes.fromhex("5a0101"))


def test_public_key_of_the_rfc_vector() -> None:
    pub = EcPublicKey(
        ec.derive_private_key(int.from_bytes(RFC6979_X, "big"), ec.SECP256R1()).public_key()
    )
    assert (
        pub.to_point()
        .hex()
        .upper()
        .startswith("0460FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6")
    )
