"""What the RSP servers (SM-DP+, SM-DS) share: DER helpers and the common mutual authentication.

GSMA SGP.22 v2.x §3.1.2: an SM-DP+ (ES9+) and an SM-DS (ES11) authenticate the
eUICC the same way. InitiateAuthentication (`initiate_authentication`) picks a
CI both sides know and signs serverSigned1 with CERT.XXauth; AuthenticateClient checks CERT.EUICC ←
CERT.EUM ← CI (with the CRLs the server holds), euiccSignature1 over the
euiccSigned1 bytes as received, and the serverChallenge. `check_client` is
that second half; each server then does its own work with the result.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from card.crypto.keys import raw_to_der
from card.sgp22 import asn1
from card.tlv import TlvError, decode_length, decode_tag, encode_length, encode_tag
from host.es9plus import (
    SC_BAD_REQUEST,
    SC_CI_KEY_UNKNOWN,
    SC_DOWNLOAD_REFUSED,
    SC_EUICC_CERT_EXPIRED,
    SC_EUICC_CERT_INVALID,
    SC_EUICC_SIGNATURE_INVALID,
    SC_EUM_CERT_EXPIRED,
    SC_EUM_CERT_INVALID,
    SC_FIELD_MISSING,
    SC_TRANSACTION_UNKNOWN,
    Es9Error,
    b64,
    unb64,
)
from host.pki import ChainError, Credential, eid_of, verify_euicc_chain

if TYPE_CHECKING:
    from host.servers.web import Store

__all__ = [
    "AuthenticatedEuicc",
    "RspRole",
    "initiate_authentication",
    "chain_refusal",
    "check_client",
    "decode",
    "decode_lenient",
    "error_code",
    "field",
    "first_inner",
    "oid_key",
    "sig_do",
    "tlv",
    "transaction_id",
    "verify",
]


def tlv(tag: int, value: bytes) -> bytes:
    """One BER-TLV data object."""
    return encode_tag(tag) + encode_length(len(value)) + value


def sig_do(sig: bytes) -> bytes:
    """A signature as the '5F37' data object SGP.22 signs over and sends."""
    return tlv(0x5F37, sig)


def first_inner(data: bytes, depth: int) -> bytes:
    """The raw bytes of the first data object `depth` levels inside `data` (as received)."""
    start, end = 0, len(data)
    try:
        for _ in range(depth):
            _, p = decode_tag(data, start)
            n, p = decode_length(data, p)
            start, end = p, p + n
        _, p = decode_tag(data, start)
        n, p = decode_length(data, p)
    except TlvError as e:
        raise Es9Error.of(SC_BAD_REQUEST, f"malformed response: {e}") from None
    if p + n > end:
        raise Es9Error.of(SC_BAD_REQUEST, "malformed response: a length runs past its parent")
    return data[start : p + n]


def decode(type_name: str, data: bytes, name: str) -> Any:
    """Decode one ASN.1 object of a request; a failure is "bad request" naming the field."""
    try:
        return asn1.decode(type_name, data)
    except asn1.Asn1Error as e:
        raise Es9Error.of(SC_BAD_REQUEST, f"{name}: {e}") from None


def decode_lenient(type_name: str, data: bytes, name: str) -> Any:
    """Decode without size constraints, for objects that carry the LPA's DeviceInfo.

    SGP.22 v2.x has DeviceInfo.tac as Octet4 where the module copy says Octet8:
    both sizes are accepted, the rest of the DER must still be exact.
    """
    try:
        return asn1.decode(type_name, data, constraints=False)
    except asn1.Asn1DecodeError as e:
        raise Es9Error.of(SC_BAD_REQUEST, f"{name}: {e}") from None


def verify(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    """ECDSA-SHA256 with a TR-03111 r || s signature (SGP.22 §2.6.5)."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 64:
        return False
    try:
        key.verify(raw_to_der(signature), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def oid_key(dotted: str) -> tuple[int, ...]:
    """An OID as its encoded subidentifiers (X.690 §8.19: the first two arcs make one).

    asn1tools decodes arcs under 2 with a second arc of 40 or more wrongly
    (2.999.10 comes back as 26.39.10); both spellings give the same key.
    """
    arcs = [int(a) for a in dotted.split(".")]
    return (arcs[0] * 40 + arcs[1], *arcs[2:]) if len(arcs) > 1 else tuple(arcs)


def error_code(resp: Any, name: str) -> Any:
    """An error alternative's code; an unknown alternative of an extensible CHOICE
    (SGP.22 Annex H `...`) decodes with no value at all."""
    return resp.get(name) if isinstance(resp, dict) else "unknown"


def field(body: dict[str, Any], name: str) -> Any:
    """A request field that must be there (SC_FIELD_MISSING if not)."""
    if name not in body:
        raise Es9Error.of(SC_FIELD_MISSING, f"{name} is missing")
    return body[name]


def transaction_id(body: dict[str, Any]) -> str:
    """The request's transactionId, upper-case hex of 1-16 bytes."""
    value = field(body, "transactionId")
    if not isinstance(value, str) or not value or len(value) > 32:
        raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "transactionId is not a hex string of 1-16 bytes")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "transactionId is not hex") from None
    return value.upper()


def chain_refusal(e: ChainError) -> Es9Error:
    """The AuthenticateClient status code for a refused eUICC chain (SGP.22 §5.6.3, §5.9.2).

    A revoked certificate is "verification failed" (6.1): SGP.22 has no reason
    code of its own for revocation, and a revoked certificate is an invalid one.
    """
    if e.which == "ci":
        return Es9Error.of(SC_CI_KEY_UNKNOWN, str(e))
    if e.which == "eum":
        return Es9Error.of(
            SC_EUM_CERT_EXPIRED if e.reason == "expired" else SC_EUM_CERT_INVALID, str(e)
        )
    return Es9Error.of(
        SC_EUICC_CERT_EXPIRED if e.reason == "expired" else SC_EUICC_CERT_INVALID, str(e)
    )


@dataclass(frozen=True)
class AuthenticatedEuicc:
    """An eUICC that passed AuthenticateClient's checks.

    Attributes:
        eid: from CERT.EUICC.
        certificate: CERT.EUICC.
        certificate_der: its DER, as sent.
        signed1: euiccSigned1, decoded.
        signature1: euiccSignature1 (r || s).
        matching_id: ctxParams1's matchingId ("" when absent).
    """

    eid: str
    certificate: x509.Certificate
    certificate_der: bytes
    signed1: dict[str, Any]
    signature1: bytes
    matching_id: str


def check_client(
    raw: bytes,
    tid: str,
    server_challenge: bytes,
    ci: x509.Certificate,
    *,
    crls: Sequence[x509.CertificateRevocationList] = (),
    when: _dt.datetime | None = None,
) -> AuthenticatedEuicc:
    """Check an AuthenticateServerResponse (SGP.22 §5.6.3 / §5.9.2, common part).

    Args:
        raw: the authenticateServerResponse DER, as received.
        tid: the session's transaction ID (hex).
        server_challenge: the session's serverChallenge.
        ci: the CI of the session (the one InitiateAuthentication chose).
        crls: the CRLs of the CI and the EUMs.

    Raises:
        Es9Error: the eUICC refused the server, a certificate or a signature fails,
            or the response belongs to another transaction.
    """
    kind, resp = decode_lenient("AuthenticateServerResponse", raw, "authenticateServerResponse")
    if kind != "authenticateResponseOk":
        raise Es9Error.of(
            SC_DOWNLOAD_REFUSED,
            f"the eUICC refused the server (error {error_code(resp, 'authenticateErrorCode')})",
        )
    signed1 = resp["euiccSigned1"]
    signed1_raw = first_inner(raw, 2)
    if bytes(signed1["transactionId"]).hex().upper() != tid:
        raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "euiccSigned1 names another transaction")
    try:
        euicc_der = asn1.encode("Certificate", resp["euiccCertificate"])
        eum_der = asn1.encode("Certificate", resp["eumCertificate"])
        euicc_cert = x509.load_der_x509_certificate(euicc_der)
        eum_cert = x509.load_der_x509_certificate(eum_der)
    except (asn1.Asn1Error, ValueError, x509.InvalidVersion) as e:
        raise Es9Error.of(SC_EUICC_CERT_INVALID, f"unreadable certificate: {e}") from None
    try:
        verify_euicc_chain(euicc_cert, eum_cert, [ci], crls=crls, when=when)
    except ChainError as e:
        raise chain_refusal(e) from None
    signature1 = bytes(resp["euiccSignature1"])
    if not verify(euicc_cert, signature1, signed1_raw):
        raise Es9Error.of(SC_EUICC_SIGNATURE_INVALID, "euiccSignature1 does not verify")
    if bytes(signed1["serverChallenge"]) != bytes(server_challenge):
        raise Es9Error.of(SC_EUICC_SIGNATURE_INVALID, "the serverChallenge is not this session's")
    _, ctx = signed1["ctxParams1"]
    return AuthenticatedEuicc(
        eid=eid_of(euicc_cert),
        certificate=euicc_cert,
        certificate_der=euicc_der,
        signed1=signed1,
        signature1=signature1,
        matching_id=ctx.get("matchingId") or "",
    )


class _CiCredentials(Protocol):
    """A server's credentials under one CI (SM-DP+ or SM-DS)."""

    @property
    def ci_ski(self) -> bytes:
        """The CI's subject key identifier (euiccCiPKId)."""
        ...


_C = TypeVar("_C", bound=_CiCredentials)


@dataclass(frozen=True)
class RspRole:
    """What tells the SM-DP+'s InitiateAuthentication (ES9+) from the SM-DS's (ES11).

    Attributes:
        address_field: the request field naming the server ("smdpAddress", "smdsAddress").
        address_refused: the status code when it names another server (§5.6.1, §5.9.1).
        name: the role as the refusal names it ("SM-DP+", "SM-DS").
        auth_name: the certificate that signs serverSigned1 ("CERT.DPauth", "CERT.DSauth").
        svn_unsupported: the eUICC's SVN is not one this server supports (8.8.3, 8.9.3).
        security_config_unsupported: no CI in common for the eUICC's signatures (8.8.2,
            8.9.2).
        cert_unavailable: no certificate of the server under a CI the eUICC verifies
            (8.8.4, 8.9.4).
    """

    address_field: str
    address_refused: tuple[str, str]
    name: str
    auth_name: str
    svn_unsupported: tuple[str, str]
    security_config_unsupported: tuple[str, str]
    cert_unavailable: tuple[str, str]


def initiate_authentication(
    body: dict[str, Any],
    *,
    role: RspRole,
    address: str,
    credentials: Sequence[_C],
    auth: Callable[[_C], Credential],
    random: Callable[[int], bytes],
    store: Store,
    now: float,
) -> dict[str, Any]:
    """ES9+/ES11.InitiateAuthentication (SGP.22 §5.6.1, §5.9.1), with its session recorded.

    Checks the euiccChallenge, the server address and euiccInfo1 (SVN 2.x, a CI
    the eUICC verifies under which this server holds a certificate, and one it
    also signs under), then signs serverSigned1 with that CI's `auth` credential.
    The new session goes into the role's `sessions` table (transaction_id, state
    "initiated", updated, ci_ski, euicc_challenge, server_challenge).

    Each role refuses with its own subject codes (`RspRole`): the SM-DP+ with
    8.8.2/8.8.3/8.8.4, the SM-DS with 8.9.2/8.9.3/8.9.4 ("None of the proposed
    Public Key Identifiers is supported by the SM-DS", "... not supported by the
    SM-DS", "The SM-DS has no CERT.DS ..."), as lpac's table of SGP.22 codes
    (euicc/es9p_errors.c) gives them.

    Args:
        body: the request's JSON object, without the header.
        role: the SM-DP+'s or the SM-DS's field names and codes.
        address: this server's address (compared without case).
        credentials: this server's credentials, one a CI, in order of preference.
        auth: the credential of `credentials` that signs serverSigned1.
        random: the source of the transaction ID and the serverChallenge.
        store: the role's store.
        now: the time to record.

    Returns:
        The response's JSON object, without the header.

    Raises:
        Es9Error: a field is missing or malformed, or the request is refused.
    """
    challenge = unb64(field(body, "euiccChallenge"), "euiccChallenge")
    if len(challenge) != 16:
        raise Es9Error.of(SC_BAD_REQUEST, "euiccChallenge is not 16 bytes")
    named = field(body, role.address_field)
    if not isinstance(named, str) or named.lower() != address.lower():
        raise Es9Error.of(role.address_refused, f"this is not that {role.name} address")
    info1 = decode("EUICCInfo1", unb64(field(body, "euiccInfo1"), "euiccInfo1"), "euiccInfo1")
    if info1["svn"][0] != 2:
        raise Es9Error.of(role.svn_unsupported, f"SGP.22 version {info1['svn'].hex()} is not 2.x")
    verifiable = [bytes(k) for k in info1["euiccCiPKIdListForVerification"]]
    signing = [bytes(k) for k in info1["euiccCiPKIdListForSigning"]]
    usable = [c for c in credentials if c.ci_ski in verifiable]
    if not usable:
        raise Es9Error.of(
            role.cert_unavailable, f"no {role.auth_name} under a CI the eUICC can verify"
        )
    creds = next((c for c in usable if c.ci_ski in signing), None)
    if creds is None:
        raise Es9Error.of(
            role.security_config_unsupported, "no CI in common for the eUICC's signatures"
        )
    tid_bytes = random(16)
    tid = tid_bytes.hex().upper()
    server_challenge = random(16)
    signed1 = asn1.encode(
        "ServerSigned1",
        {
            "transactionId": tid_bytes,
            "euiccChallenge": challenge,
            "serverAddress": address,
            "serverChallenge": server_challenge,
        },
    )
    signer = auth(creds)
    signature1 = sig_do(signer.sign(signed1))
    # A new session only: a power cut that loses it fails this download's next step
    # ("transaction unknown") and moves no order, so the commit need not wait for the disk.
    with store.transaction(durable=False) as c:
        c.execute(
            "INSERT INTO sessions (transaction_id, state, updated, ci_ski, euicc_challenge,"
            " server_challenge) VALUES (?, ?, ?, ?, ?, ?)",
            (tid, "initiated", now, creds.ci_ski, challenge, server_challenge),
        )
    return {
        "transactionId": tid,
        "serverSigned1": b64(signed1),
        "serverSignature1": b64(signature1),
        "euiccCiPKIdToBeUsed": b64(tlv(0x04, creds.ci_ski)),
        "serverCertificate": b64(signer.der),
    }
