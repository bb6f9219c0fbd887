"""ES10b authentication and download preparation, ES10a addresses: GSMA SGP.22 v2.x §5.7.

- GetEUICCChallenge (BF2E, §5.7.7): a new 16-byte challenge; any session before
  it ends.
- GetEUICCInfo1 / GetEUICCInfo2 (BF20 / BF22, §5.7.8).
- AuthenticateServer (BF38, §5.7.13): CERT.DPauth (or CERT.DSauth) checked
  against the CI named by euiccCiPKIdToBeUsed, serverSignature1 over the
  serverSigned1 bytes as received, the echoed challenge; then euiccSigned1 and
  its signature, with CERT.EUICC and CERT.EUM.
- PrepareDownload (BF21, §5.7.5): CERT.DPpb from a trusted CI and of the same
  SM-DP+ (same OID) as CERT.DPauth, smdpSignature2 over smdpSigned2 ||
  euiccSignature1 (its 5F37 TLV), the transaction ID; then the one-time key
  pair otSK/otPK.EUICC.ECKA on the curve of CERT.DPpb (reused when the SM-DP+
  names it in bppEuiccOtpk, the retry case of §3.1.3), euiccSigned2 and
  euiccSignature2 over euiccSigned2 || smdpSignature2 (5F37 TLV).
- CancelSession (BF41, §5.7.14): signed euiccCancelSessionSigned with the SM-DP+
  OID of CERT.DPauth; the session ends.
- GetEuiccConfiguredAddresses / SetDefaultDpAddress (BF3C / BF3F, §5.7.3-4).

Every signature is ECDSA-SHA-256 made by the ECASD, r || s (§2.6.5).
"""

from __future__ import annotations

from typing import Any

from applets.isdr.base import IsdrBase, Session
from card import tlv
from card.crypto.keys import EcKeyPair
from card.sgp22 import asn1
from card.sgp22.certs import (
    OID_ROLE_DP_AUTH,
    OID_ROLE_DP_PB,
    OID_ROLE_DS_AUTH,
    CertificateError,
    CertReason,
    verify_server_certificate,
)
from card.sgp22.values import bits_from_names, raw_fields

__all__ = ["FORBIDDEN_PPRS", "RAT", "RspFunctions", "SVN", "euicc_info2"]

#: SGP.22 version this eUICC implements (the RSPDefinitions module is v2.x).
SVN = bytes((2, 2, 0))
#: TCA profile package version supported (Interoperable Format 2.3.1).
PROFILE_VERSION = bytes((2, 3, 1))
FIRMWARE_VERSION = bytes((1, 0, 0))
GP_VERSION = bytes((2, 3, 0))
PP_VERSION = bytes((0, 0, 1))
SAS_ACCREDITATION = "CARDEMU-TEST"

# PprIds bits (SGP.22 Annex H).
PPR_UPDATE_CONTROL, PPR1, PPR2, PPR3 = 0, 1, 2, 3
#: The Rules Authorisation Table (SGP.22 §2.9.2.1): PPR1 and PPR2 (which the ES10c
#: functions enforce, applets.isdr.profiles), for every operator ('E' in each digit of
#: mccMnc is the wildcard), with no end-user consent asked.
RAT: tuple[dict[str, Any], ...] = (
    {
        "pprIds": bits_from_names(PPR1, PPR2),
        "allowedOperators": [{"mccMnc": b"\xee\xee\xee"}],
        "pprFlags": (b"", 0),
    },
)
#: PPRs a profile may not carry on this eUICC (none of the RAT's rules authorises them).
FORBIDDEN_PPRS = frozenset({PPR_UPDATE_CONTROL, PPR3})

# AuthenticateErrorCode / DownloadErrorCode values (SGP.22 Annex H).
AUTH_INVALID_CERTIFICATE = 1
AUTH_INVALID_SIGNATURE = 2
AUTH_UNSUPPORTED_CURVE = 3
AUTH_NO_SESSION = 4
AUTH_INVALID_OID = 5
AUTH_CHALLENGE_MISMATCH = 6
AUTH_CI_PK_UNKNOWN = 7
DL_INVALID_CERTIFICATE = 1
DL_INVALID_SIGNATURE = 2
DL_UNSUPPORTED_CURVE = 3
DL_NO_SESSION = 4
DL_INVALID_TRANSACTION_ID = 5
UNDEFINED_ERROR = 127
CANCEL_INVALID_TRANSACTION_ID = 5  # CancelSessionResponse cancelSessionResponseError

_AUTH_CODES = {
    CertReason.FORMAT: AUTH_INVALID_CERTIFICATE,
    CertReason.SIGNATURE: AUTH_INVALID_CERTIFICATE,
    CertReason.USAGE: AUTH_INVALID_CERTIFICATE,
    CertReason.POLICY: AUTH_INVALID_OID,
    CertReason.UNKNOWN_CI: AUTH_CI_PK_UNKNOWN,
    CertReason.CURVE: AUTH_UNSUPPORTED_CURVE,
    CertReason.REVOKED: AUTH_INVALID_CERTIFICATE,
}
_DL_CODES = {
    CertReason.CURVE: DL_UNSUPPORTED_CURVE,
}


def euicc_info2(
    verification: list[bytes],
    signing: list[bytes],
    installed: int,
    free_nvm: int,
    free_ram: int,
    uicc_capability: tuple[int, ...] = (),
) -> dict[str, Any]:
    """The EUICCInfo2 value (SGP.22 §5.7.8); resources as ETSI TS 102 226 §8.2.1.21 codes them.

    What it claims is what the card does: `uicc_capability` comes from the profile
    store (the services it installs and runs); `forbiddenProfilePolicyRules` names
    the PPRs no profile may carry here (PPR3 and pprUpdateControl: this eUICC does
    not delete a profile on its disabling nor take PPR updates over ES6), as the
    RAT of GetRAT authorises only PPR1 and PPR2. Left out because the card has
    none of them: javacardVersion (no Java Card bytecode runs; catalogued classes
    do), ts102241Version (no UICC API for Java Card) and certificationDataObject
    (no GlobalPlatform DLOA certification).
    """
    ext = (
        b"\x81\x01"
        + bytes((min(installed, 255),))
        + b"\x82\x04"
        + min(free_nvm, 0xFFFFFFFF).to_bytes(4, "big")
        + b"\x83\x04"
        + min(free_ram, 0xFFFFFFFF).to_bytes(4, "big")
    )
    return {
        "profileVersion": PROFILE_VERSION,
        "svn": SVN,
        "euiccFirmwareVer": FIRMWARE_VERSION,
        "extCardResource": ext,
        "uiccCapability": bits_from_names(*uicc_capability),
        "globalplatformVersion": GP_VERSION,
        # additionalProfile(0), crlSupport(1) (ES10b.LoadCRL, applets.isdr.crl),
        # testProfileSupport(3)
        "rspCapability": bits_from_names(0, 1, 3),
        "euiccCiPKIdListForVerification": verification,
        "euiccCiPKIdListForSigning": signing,
        "euiccCategory": 0,
        "forbiddenProfilePolicyRules": bits_from_names(*sorted(FORBIDDEN_PPRS)),
        "ppVersion": PP_VERSION,
        "sasAcreditationNumber": SAS_ACCREDITATION,
    }


class RspFunctions(IsdrBase):
    """ES10b (authentication, download preparation, cancel) and ES10a."""

    # -- ES10b.GetEUICCChallenge, GetEUICCInfo1/2 -------------------------------------------

    def get_euicc_challenge(self, request: Any, raw: bytes) -> Any:
        challenge = self.system.rng.random(16)
        self.session = Session(challenge=challenge)
        return {"euiccChallenge": challenge}

    def get_euicc_info1(self, request: Any, raw: bytes) -> Any:
        ecasd = self.ecasd()
        return {
            "svn": SVN,
            "euiccCiPKIdListForVerification": [k[0] for k in ecasd.ci_keys()],
            "euiccCiPKIdListForSigning": list(ecasd.signing_ci_pkids()),
        }

    def euicc_info2_value(self) -> dict[str, Any]:
        ecasd = self.ecasd()
        return euicc_info2(
            [k[0] for k in ecasd.ci_keys()],
            list(ecasd.signing_ci_pkids()),
            len(self.profile_store().list_profiles()),
            self.system.available_memory(),
            self.system.available_memory(1),
            tuple(self.profile_store().uicc_capability()),
        )

    def get_euicc_info2(self, request: Any, raw: bytes) -> Any:
        return self.euicc_info2_value()

    # -- ES10b.AuthenticateServer (§5.7.13) ------------------------------------------------------

    def authenticate_server(self, request: Any, raw: bytes) -> Any:
        signed1 = request["serverSigned1"]
        txid = signed1["transactionId"]

        def error(code: int) -> Any:
            return (
                "authenticateResponseError",
                {"transactionId": txid, "authenticateErrorCode": code},
            )

        ecasd = self.ecasd()
        ci_pkid = request["euiccCiPKIdToBeUsed"]
        if ci_pkid not in ecasd.signing_ci_pkids():
            return error(AUTH_CI_PK_UNKNOWN)
        # BF38 { 30 serverSigned1, 5F37, 04 CI PKId, 30 serverCertificate, ctxParams1 }: the
        # signature and the certificate are checked on the bytes as received.
        fields = raw_fields(raw)
        signed1_raw, cert_der = fields[0][1], fields[3][1]
        try:
            cert = verify_server_certificate(
                cert_der,
                (OID_ROLE_DP_AUTH, OID_ROLE_DS_AUTH),
                self.trusted_cis(),
                revoked=self.revoked_serials(),
            )
        except CertificateError as e:
            return error(_AUTH_CODES[e.reason])
        if not cert.public_key.verify(signed1_raw, request["serverSignature1"], encoding="raw"):
            return error(AUTH_INVALID_SIGNATURE)
        session: Session | None = self.session
        if session is None:
            return error(AUTH_NO_SESSION)
        if signed1["euiccChallenge"] != session.challenge:
            return error(AUTH_CHALLENGE_MISMATCH)
        signed = {
            "transactionId": txid,
            "serverAddress": signed1["serverAddress"],
            "serverChallenge": signed1["serverChallenge"],
            "euiccInfo2": self.euicc_info2_value(),
            "ctxParams1": request["ctxParams1"],
        }
        signed_der = asn1.encode("EuiccSigned1", signed)
        signature = ecasd.sign(signed_der)
        # The challenge is used up (§5.7.13: one AuthenticateServer per challenge).
        self.session = Session(
            challenge=b"",
            transaction_id=txid,
            server_address=signed1["serverAddress"],
            server_challenge=signed1["serverChallenge"],
            dpauth=cert,
            euicc_signature1=signature,
        )
        return (
            "authenticateResponseOk",
            {
                "euiccSigned1": signed,
                "euiccSignature1": signature,
                "euiccCertificate": asn1.decode("Certificate", ecasd.euicc_certificate()),
                "eumCertificate": asn1.decode("Certificate", ecasd.eum_certificate()),
            },
        )

    # -- ES10b.PrepareDownload (§5.7.5) ------------------------------------------------------------

    def prepare_download(self, request: Any, raw: bytes) -> Any:
        signed2 = request["smdpSigned2"]
        txid = signed2["transactionId"]

        def error(code: int) -> Any:
            return ("downloadResponseError", {"transactionId": txid, "downloadErrorCode": code})

        session: Session | None = self.session
        if session is None or session.dpauth is None or session.transaction_id is None:
            return error(DL_NO_SESSION)
        # BF21 { 30 smdpSigned2, 5F37 smdpSignature2, [04 hashCc], 30 smdpCertificate }
        fields = raw_fields(raw)
        signed2_raw, cert_der = fields[0][1], fields[-1][1]
        signature2_tlv = next(r for t, r in fields if t == 0x5F37)
        try:
            cert = verify_server_certificate(
                cert_der, (OID_ROLE_DP_PB,), self.trusted_cis(), revoked=self.revoked_serials()
            )
        except CertificateError as e:
            return error(_DL_CODES.get(e.reason, DL_INVALID_CERTIFICATE))
        if cert.oid != session.dpauth.oid:
            # CERT.DPpb must belong to the SM-DP+ that authenticated (same SM-DP+ OID).
            return error(DL_INVALID_CERTIFICATE)
        sig1_tlv = tlv.build(0x5F37, session.euicc_signature1)
        if not cert.public_key.verify(
            signed2_raw + sig1_tlv, request["smdpSignature2"], encoding="raw"
        ):
            return error(DL_INVALID_SIGNATURE)
        if txid != session.transaction_id:
            return error(DL_INVALID_TRANSACTION_ID)
        if signed2["ccRequiredFlag"] and "hashCc" not in request:
            return error(UNDEFINED_ERROR)
        reuse = signed2.get("bppEuiccOtpk")
        if reuse is None or session.otsk is None or reuse != session.otpk:
            otsk = EcKeyPair.generate(cert.public_key.curve, self.system.rng)
            session.otsk, session.otpk = otsk, otsk.public.to_point()
        session.dppb = cert
        session.bpp = None
        signed = {"transactionId": txid, "euiccOtpk": session.otpk}
        if "hashCc" in request:
            signed["hashCc"] = request["hashCc"]
        signed_der = asn1.encode("EUICCSigned2", signed)
        signature = self.ecasd().sign(signed_der + signature2_tlv)
        return ("downloadResponseOk", {"euiccSigned2": signed, "euiccSignature2": signature})

    # -- ES10b.CancelSession (§5.7.14) ------------------------------------------------------------

    def cancel_session(self, request: Any, raw: bytes) -> Any:
        session: Session | None = self.session
        if session is None or session.transaction_id != request["transactionId"]:
            return ("cancelSessionResponseError", CANCEL_INVALID_TRANSACTION_ID)
        if session.dpauth is None or session.dpauth.oid is None:
            return ("cancelSessionResponseError", UNDEFINED_ERROR)
        signed = {
            "transactionId": request["transactionId"],
            "smdpOid": session.dpauth.oid,
            "reason": request["reason"],
        }
        signature = self.ecasd().sign(asn1.encode("EuiccCancelSessionSigned", signed))
        self.session = None
        return (
            "cancelSessionResponseOk",
            {"euiccCancelSessionSigned": signed, "euiccCancelSessionSignature": signature},
        )

    # -- ES10a (§5.7.3, §5.7.4) --------------------------------------------------------------------

    def get_configured_addresses(self, request: Any, raw: bytes) -> Any:
        dp, ds = self.config()
        out: dict[str, Any] = {"rootDsAddress": ds}
        if dp:
            out["defaultDpAddress"] = dp
        return out

    def set_default_dp_address(self, request: Any, raw: bytes) -> Any:
        _, ds = self.config()
        self.set_config(request["defaultDpAddress"] or None, ds)
        return {"setDefaultDpAddressResult": 0}
