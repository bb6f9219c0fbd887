"""A software stand-in for the eUICC's side of SGP.22 authentication and binding.

Server tests use it to drive the SM-DP+ one ES9+ step at a time, to forge
exactly the faults a refusal test needs (a bad signature, another
transaction, an EID outside the EUM's range), and to open the BPP the server
binds (session keys from the KDF, SCP03t segments, the InitialiseSecureChannel
signature). It is written from SGP.22 v2.x §5.7 independently of the card
applet, so that the server is checked against a second reading of the spec.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from card.crypto.keys import raw_to_der
from card.sgp22 import asn1
from card.sgp22.bsp import BspState, unprotect_all
from card.tlv import decode_length, decode_tag, encode_length, encode_tag
from host.pki import Credential, TestPki, eid_of

TAC = bytes.fromhex("35290611")


def tlv(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def inner(data: bytes, depth: int) -> bytes:
    """Raw bytes of the first data object `depth` levels down."""
    start = 0
    for _ in range(depth):
        _, p = decode_tag(data, start)
        _, p = decode_length(data, p)
        start = p
    _, p = decode_tag(data, start)
    n, p = decode_length(data, p)
    return data[start : p + n]


def b64d(s: str) -> bytes:
    return base64.b64decode(s)


def euicc_info2(pki: TestPki) -> dict[str, Any]:
    return {
        "profileVersion": b"\x02\x03\x00",
        "svn": b"\x02\x02\x02",
        "euiccFirmwareVer": b"\x01\x00\x00",
        "extCardResource": bytes.fromhex("810100820300F000830200F0"),
        "uiccCapability": (b"\x48\x00\x00", 19),
        "rspCapability": (b"\xb0", 4),
        "euiccCiPKIdListForVerification": [pki.ci.ski],
        "euiccCiPKIdListForSigning": [pki.ci.ski],
        "ppVersion": b"\x01\x00\x00",
        "sasAcreditationNumber": "CARDEMU-TEST",
    }


@dataclass
class SoftEuicc:
    """One eUICC (credential + EUM) seen from the SM-DP+, with its session state."""

    pki: TestPki
    euicc: Credential | None = None
    eum: Credential | None = None
    challenge: bytes = field(default_factory=lambda: os.urandom(16))
    ot_key: ec.EllipticCurvePrivateKey | None = None
    signature1: bytes = b""
    smdp_signature2: bytes = b""
    seq: int = 1

    def __post_init__(self) -> None:
        self.euicc = self.euicc or self.pki.euicc
        self.eum = self.eum or self.pki.eum

    @property
    def eid(self) -> str:
        return eid_of(self.euicc.cert)

    def info1(self, ci_skis: list[bytes] | None = None) -> bytes:
        skis = ci_skis if ci_skis is not None else [self.pki.ci.ski]
        return asn1.encode(
            "EUICCInfo1",
            {
                "svn": b"\x02\x02\x02",
                "euiccCiPKIdListForVerification": skis,
                "euiccCiPKIdListForSigning": skis,
            },
        )

    def initiate_body(self, address: str) -> dict[str, str]:
        return {
            "euiccChallenge": base64.b64encode(self.challenge).decode(),
            "euiccInfo1": base64.b64encode(self.info1()).decode(),
            "smdpAddress": address,
        }

    def authenticate_server(
        self, resp: dict[str, str], matching_id: str | None, *, tamper_signature: bool = False
    ) -> bytes:
        """AuthenticateServerResponse (SGP.22 §5.7.13) to an initiateAuthentication answer."""
        signed1 = asn1.decode("ServerSigned1", b64d(resp["serverSigned1"]))
        assert signed1["euiccChallenge"] == self.challenge
        # The eUICC checks the server's signature as the card would.
        dpauth = x509.load_der_x509_certificate(b64d(resp["serverCertificate"]))
        sig_do = b64d(resp["serverSignature1"])
        assert sig_do[:3] == b"\x5f\x37\x40"
        dpauth.public_key().verify(
            raw_to_der(sig_do[3:]), b64d(resp["serverSigned1"]), ec.ECDSA(hashes.SHA256())
        )
        ctx: dict[str, Any] = {"deviceInfo": {"tac": TAC, "deviceCapabilities": {}}}
        if matching_id is not None:
            ctx["matchingId"] = matching_id
        euicc_signed1 = asn1.encode(
            "EuiccSigned1",
            {
                "transactionId": signed1["transactionId"],
                "serverAddress": signed1["serverAddress"],
                "serverChallenge": signed1["serverChallenge"],
                "euiccInfo2": euicc_info2(self.pki),
                "ctxParams1": ("ctxParamsForCommonAuthentication", ctx),
            },
        )
        signature = self.euicc.sign(euicc_signed1)
        if tamper_signature:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        self.signature1 = signature
        ok = {
            "euiccSigned1": asn1.decode("EuiccSigned1", euicc_signed1),
            "euiccSignature1": signature,
            "euiccCertificate": asn1.decode("Certificate", self.euicc.der),
            "eumCertificate": asn1.decode("Certificate", self.eum.der),
        }
        return asn1.encode("AuthenticateServerResponse", ("authenticateResponseOk", ok))

    def prepare_download(
        self, resp: dict[str, str], *, tamper_signature: bool = False, tid: bytes | None = None
    ) -> bytes:
        """PrepareDownloadResponse (SGP.22 §5.7.5) to authenticateClient's answer."""
        smdp_signed2 = b64d(resp["smdpSigned2"])
        sig2_do = b64d(resp["smdpSignature2"])
        dppb = x509.load_der_x509_certificate(b64d(resp["smdpCertificate"]))
        # smdpSignature2 covers smdpSigned2 || euiccSignature1 (with its tag).
        dppb.public_key().verify(
            raw_to_der(sig2_do[3:]),
            smdp_signed2 + tlv(0x5F37, self.signature1),
            ec.ECDSA(hashes.SHA256()),
        )
        self.smdp_signature2 = sig2_do
        decoded = asn1.decode("SmdpSigned2", smdp_signed2)
        self.ot_key = ec.generate_private_key(self.euicc.key.curve)
        otpk = self.ot_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        signed2 = asn1.encode(
            "EUICCSigned2", {"transactionId": tid or decoded["transactionId"], "euiccOtpk": otpk}
        )
        signature = self.euicc.sign(signed2 + sig2_do)
        if tamper_signature:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        ok = {"euiccSigned2": asn1.decode("EUICCSigned2", signed2), "euiccSignature2": signature}
        return asn1.encode("PrepareDownloadResponse", ("downloadResponseOk", ok))

    def open_bpp(self, bpp: bytes, dppb_cert: x509.Certificate) -> tuple[bytes, bytes, bytes]:
        """Check and open a BPP as the eUICC does: (transaction ID, StoreMetadata DER, UPP)."""
        assert bpp[:2] == b"\xbf\x36"
        _, p = decode_tag(bpp, 0)
        _, p = decode_length(bpp, p)
        items = []
        while p < len(bpp):
            start = p
            _, q = decode_tag(bpp, p)
            n, q = decode_length(bpp, q)
            items.append(bpp[start : q + n])
            p = q + n
        iscr_raw, first87, seq88, seq86 = items
        iscr = asn1.decode("InitialiseSecureChannelRequest", iscr_raw)
        otpk = self.ot_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # smdpSign: the request's data objects before smdpSign, then otPK.EUICC.ECKA.
        _, q = decode_tag(iscr_raw, 0)
        _, q = decode_length(iscr_raw, q)
        body = iscr_raw[q:]
        sign_do = tlv(0x5F37, iscr["smdpSign"])
        assert body.endswith(sign_do)
        signed = body[: -len(sign_do)] + tlv(0x5F49, otpk)
        dppb_cert.public_key().verify(
            raw_to_der(iscr["smdpSign"]), signed, ec.ECDSA(hashes.SHA256())
        )
        smdp_pub = ec.EllipticCurvePublicKey.from_encoded_point(self.ot_key.curve, iscr["smdpOtpk"])
        shared = self.ot_key.exchange(ec.ECDH(), smdp_pub)
        crt = iscr["controlRefTemplate"]
        state = BspState.from_shared_secret(
            shared, crt["keyType"][0], crt["keyLen"][0], crt["hostId"], bytes.fromhex(self.eid)
        )

        def segments(seq: bytes) -> list[bytes]:
            _, r = decode_tag(seq, 0)
            _, r = decode_length(seq, r)
            out = []
            while r < len(seq):
                s = r
                _, r2 = decode_tag(seq, r)
                n, r2 = decode_length(seq, r2)
                out.append(seq[s : r2 + n])
                r = r2 + n
            return out

        configure, state = unprotect_all(state, segments(first87), tag=0x87)
        assert configure[:2] == b"\xbf\x24"
        metadata, state = unprotect_all(state, segments(seq88), encrypted=False, tag=0x88)
        upp, state = unprotect_all(state, segments(seq86), tag=0x86)
        return iscr["transactionId"], metadata, upp

    def installation_result(self, tid: bytes, *, ok: bool = True, tamper: bool = False) -> bytes:
        """A PendingNotification holding a signed ProfileInstallationResult (SGP.22 §5.7.6)."""
        final: tuple[str, dict[str, Any]]
        if ok:
            final = (
                "successResult",
                {"aid": bytes.fromhex("A0000005591010FFFFFFFF8900001000"), "simaResponse": b""},
            )
        else:
            final = ("errorResult", {"bppCommandId": 5, "errorReason": 8})
        data = {
            "transactionId": tid,
            "notificationMetadata": {
                "seqNumber": self.seq,
                "profileManagementOperation": (b"\x80", 4),
                "notificationAddress": "localhost",
            },
            "finalResult": final,
        }
        self.seq += 1
        signed = asn1.encode("ProfileInstallationResultData", data)
        signature = self.euicc.sign(signed)
        if tamper:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        return asn1.encode(
            "PendingNotification",
            (
                "profileInstallationResult",
                {"profileInstallationResultData": data, "euiccSignPIR": signature},
            ),
        )

    def other_notification(
        self, operation_bits: int, iccid: bytes, *, tamper: bool = False
    ) -> bytes:
        tbs = {
            "seqNumber": self.seq,
            "profileManagementOperation": (bytes((operation_bits,)), 4),
            "notificationAddress": "localhost",
            "iccid": iccid,
        }
        self.seq += 1
        signature = self.euicc.sign(asn1.encode("NotificationMetadata", tbs))
        if tamper:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        return asn1.encode(
            "PendingNotification",
            (
                "otherSignedNotification",
                {
                    "tbsOtherNotification": tbs,
                    "euiccNotificationSignature": signature,
                    "euiccCertificate": asn1.decode("Certificate", self.euicc.der),
                    "eumCertificate": asn1.decode("Certificate", self.eum.der),
                },
            ),
        )

    def cancel(self, tid: bytes, smdp_oid: str, reason: int = 0) -> bytes:
        signed = asn1.encode(
            "EuiccCancelSessionSigned",
            {"transactionId": tid, "smdpOid": smdp_oid, "reason": reason},
        )
        ok = {
            "euiccCancelSessionSigned": asn1.decode("EuiccCancelSessionSigned", signed),
            "euiccCancelSessionSignature": self.euicc.sign(signed),
        }
        return asn1.encode("CancelSessionResponse", ("cancelSessionResponseOk", ok))
