"""An eUICC card, an ES10 transport and a minimal SM-DP+ for the card-side SGP.22 tests.

`TestSmdp` plays the server half of SGP.22 §3.1.3 with the test PKI's DPauth
and DPpb keys, built here from the spec and `cryptography` (not from the
host's SM-DP+), so the card is checked against an independent peer: it signs
serverSigned1 / smdpSigned2 / InitialiseSecureChannel, verifies the eUICC's
signatures and its certificate chain, derives the BSP keys from its own ECDH
and wraps the Bound Profile Package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from card import tlv
from card.crypto.keys import EcPublicKey
from card.runtime import CardRuntime
from card.sgp22 import asn1
from card.sgp22.bsp import BspState, protect_all
from card.sgp22.ecasd import ISD_R_AID
from card.sgp22.values import bits_from_names, iccid_to_bytes, raw_fields
from host.pki import TestPki, default_pki
from host.presets import install_euicc

DATA = Path(__file__).parent / "data" / "sgp22"
TS48 = (DATA / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der").read_bytes()
TS48_ICCID = "8949449999999990049"
TS48_USIM = bytes.fromhex("A0000000871002FF49FF0589")
TS48_K = bytes(range(16))
SMDP_ADDRESS = "smdp.test.cardemu"
HOST_ID = b"cardemu-host-id"


def euicc_card(pki: TestPki | None = None, **kw: Any) -> CardRuntime:
    rt = CardRuntime(None, rng_seed=7)
    install_euicc(rt, pki=pki or default_pki(), **kw)
    rt.power_on()
    return rt


def ts48_with_iccid(iccid: str) -> bytes:
    """The TS.48 package with another ICCID (header and EF.ICCID), for a second profile."""
    out = []
    plain = bytes.fromhex((iccid + "F" * 20)[:20])
    for name, value in asn1.decode_pe_sequence(TS48):
        if name == "akaParameter":
            value = {k: v for k, v in value.items() if k != "sqnInit"}
        if name == "header":
            value = {**value, "iccid": plain}
        if name == "mf":
            value = {
                **value,
                "ef-iccid": [
                    x if x[0] != "fillFileContent" else ("fillFileContent", iccid_to_bytes(iccid))
                    for x in value["ef-iccid"]
                ],
            }
        out.append(asn1.encode_pe((name, value)))
    return b"".join(out)


def ts48_minimal() -> bytes:
    """The TS.48 package cut to header, MF, PINs/PUKs, USIM, its AKA parameters and end."""
    keep = {"header", "mf", "pukCodes", "usim", "end"}
    out, seen = [], set()
    for name, value in asn1.decode_pe_sequence(TS48):
        if name == "akaParameter":
            value = {k: v for k, v in value.items() if k != "sqnInit"}
        if name in keep or (name in ("pinCodes", "akaParameter") and name not in seen):
            seen.add(name)
            out.append(asn1.encode_pe((name, value)))
    return b"".join(out)


class Es10Error(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


class Lpa:
    """ES10 over STORE DATA on logical channel 1, as an LPA does (SGP.22 §5.7.2)."""

    def __init__(self, rt: CardRuntime, channel: int = 1, block: int = 120) -> None:
        self.rt = rt
        self.channel = channel
        self.block = block
        self.open()

    def open(self) -> None:
        if self.channel:
            resp = self.rt.process(bytes.fromhex("0070000001"))
            assert resp[-2:] == b"\x90\x00", resp.hex()
            self.channel = resp[0]
        cla = self.channel if self.channel < 4 else 0x40 | (self.channel - 4)
        data, sw = self.send(bytes((cla, 0xA4, 0x04, 0x00, len(ISD_R_AID))) + ISD_R_AID + b"\x00")
        assert sw == 0x9000, f"{sw:04X}"

    @property
    def cla(self) -> int:
        return 0x80 | self.channel if self.channel < 4 else 0xC0 | (self.channel - 4)

    def send(self, apdu: bytes) -> tuple[bytes, int]:
        resp = self.rt.process(apdu)
        data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        while sw >> 8 == 0x61:
            gr_cla = self.channel if self.channel < 4 else 0x40 | (self.channel - 4)
            resp = self.rt.process(bytes((gr_cla, 0xC0, 0, 0, sw & 0xFF)))
            data += resp[:-2]
            sw = int.from_bytes(resp[-2:], "big")
        return data, sw

    def call(self, der: bytes) -> bytes:
        """One ES10 function: its request in STORE DATA blocks; the response data."""
        chunks = [der[i : i + self.block] for i in range(0, len(der), self.block)] or [b""]
        data, sw = b"", 0
        for n, c in enumerate(chunks):
            last = n == len(chunks) - 1
            apdu = bytes((self.cla, 0xE2, 0x91 if last else 0x11, n, len(c))) + c + b"\x00"
            data, sw = self.send(apdu)
            if sw != 0x9000:
                raise Es10Error(sw)
        return data

    def es10(self, type_name: str, value: Any, response_type: str) -> Any:
        return asn1.decode(response_type, self.call(asn1.encode(type_name, value)))

    def load_bpp(self, segments: list[bytes]) -> bytes | None:
        """LoadBoundProfilePackage segment by segment; the PIR (the first response with data)."""
        for seg in segments:
            out = self.call(seg)
            if out:
                return out
        return None


def bpp_segments(bpp: bytes) -> list[bytes]:
    """Split a BF36 into the segments of SGP.22 §2.5.5."""
    fields = raw_fields(bpp)
    _, p = tlv.decode_tag(bpp, 0)
    _, p = tlv.decode_length(bpp, p)
    segs = [bpp[:p] + fields[0][1]]
    for tag, raw in fields[1:]:
        if tag in (0xA0, 0xA2):
            segs.append(raw)
            continue
        _, q = tlv.decode_tag(raw, 0)
        _, q = tlv.decode_length(raw, q)
        segs.append(raw[:q])
        segs.extend(r for _, r in _children(raw))
    return segs


def _children(raw: bytes) -> list[tuple[int, bytes]]:
    return raw_fields(raw)


@dataclass
class TestSmdp:
    """The server half of a download (SGP.22 §3.1.3), independent of host/servers."""

    pki: TestPki = field(default_factory=default_pki)
    address: str = SMDP_ADDRESS
    upp: bytes = TS48
    iccid: str = TS48_ICCID
    profile_class: int = 2
    notification_config: list[dict[str, Any]] = field(default_factory=list)
    transaction_id: bytes = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    server_challenge: bytes = bytes(range(0x20, 0x30))
    session: dict[str, Any] = field(default_factory=dict)

    __test__ = False

    # -- ES9+ initiateAuthentication: what the LPA passes to AuthenticateServer ------------------

    def authenticate_server_request(
        self, euicc_challenge: bytes, matching_id: str = "TEST-MATCHING-ID"
    ) -> dict[str, Any]:
        signed1 = {
            "transactionId": self.transaction_id,
            "euiccChallenge": euicc_challenge,
            "serverAddress": self.address,
            "serverChallenge": self.server_challenge,
        }
        sig = self.pki.dpauth.sign(asn1.encode("ServerSigned1", signed1))
        return {
            "serverSigned1": signed1,
            "serverSignature1": sig,
            "euiccCiPKIdToBeUsed": self.pki.ci.ski,
            "serverCertificate": asn1.decode("Certificate", self.pki.dpauth.der),
            "ctxParams1": (
                "ctxParamsForCommonAuthentication",
                {
                    "matchingId": matching_id,
                    "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}},
                },
            ),
        }

    # -- ES9+ authenticateClient ------------------------------------------------------------------

    def prepare_download_request(
        self, auth_response_der: bytes, *, cc: bytes | None = None
    ) -> dict[str, Any]:
        kind, ok = asn1.decode("AuthenticateServerResponse", auth_response_der)
        assert kind == "authenticateResponseOk", ok
        # euiccSigned1 as the card sent it: BF38 { A0 { 30 euiccSigned1, 5F37 ... } }
        inner = raw_fields(raw_fields(auth_response_der)[0][1])
        signed1_raw = inner[0][1]
        euicc_cert = x509.load_der_x509_certificate(
            asn1.encode("Certificate", ok["euiccCertificate"])
        )
        eum_cert = x509.load_der_x509_certificate(asn1.encode("Certificate", ok["eumCertificate"]))
        from host.pki import verify_euicc_chain

        verify_euicc_chain(euicc_cert, eum_cert, [self.pki.ci.cert])
        euicc_pub = EcPublicKey(euicc_cert.public_key())  # type: ignore[arg-type]
        assert euicc_pub.verify(signed1_raw, ok["euiccSignature1"], encoding="raw")
        assert ok["euiccSigned1"]["serverChallenge"] == self.server_challenge
        self.session.update(
            euicc_pub=euicc_pub,
            eid=euicc_cert.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value,
        )
        signed2 = {"transactionId": self.transaction_id, "ccRequiredFlag": cc is not None}
        sig2 = self.pki.dppb.sign(
            asn1.encode("SmdpSigned2", signed2) + tlv.build(0x5F37, ok["euiccSignature1"])
        )
        self.session["smdp_sig2"] = sig2
        req: dict[str, Any] = {
            "smdpSigned2": signed2,
            "smdpSignature2": sig2,
            "smdpCertificate": asn1.decode("Certificate", self.pki.dppb.der),
        }
        if cc is not None:
            req["hashCc"] = cc
        return req

    # -- ES9+ getBoundProfilePackage ---------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "iccid": iccid_to_bytes(self.iccid),
            "serviceProviderName": "GSMA",
            "profileName": "TS.48 test profile",
            "profileClass": self.profile_class,
        }
        if self.notification_config:
            m["notificationConfigurationInfo"] = self.notification_config
        return m

    def bound_profile_package(self, prepare_response_der: bytes, *, ppk: bool = False) -> bytes:
        kind, ok = asn1.decode("PrepareDownloadResponse", prepare_response_der)
        assert kind == "downloadResponseOk", ok
        signed2_raw = raw_fields(raw_fields(prepare_response_der)[0][1])[0][1]
        assert self.session["euicc_pub"].verify(
            signed2_raw + tlv.build(0x5F37, self.session["smdp_sig2"]),
            ok["euiccSignature2"],
            encoding="raw",
        )
        euicc_otpk = ok["euiccSigned2"]["euiccOtpk"]
        curve = self.pki.dppb.key.curve
        ot = ec.generate_private_key(curve)
        peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, euicc_otpk)
        shs = ot.exchange(ec.ECDH(), peer)
        smdp_otpk = EcPublicKey(ot.public_key()).to_point()
        eid = bytes.fromhex(self.session["eid"])
        isc_parts = (
            tlv.build(0x82, b"\x01")
            + tlv.build(0x80, self.transaction_id)
            + tlv.build(
                0xA6, tlv.build(0x80, b"\x88") + tlv.build(0x81, b"\x10") + tlv.build(0x84, HOST_ID)
            )
            + tlv.build(0x5F49, smdp_otpk)
        )
        smdp_sign = self.pki.dppb.sign(isc_parts + tlv.build(0x5F49, euicc_otpk))
        isc = tlv.build(0xBF23, isc_parts + tlv.build(0x5F37, smdp_sign))
        # The ISC built by hand must be what the ASN.1 module says.
        decoded = asn1.decode("InitialiseSecureChannelRequest", isc)
        assert asn1.encode("InitialiseSecureChannelRequest", decoded) == isc
        state = BspState.from_shared_secret(shs, 0x88, 16, HOST_ID, eid)
        self.session["bsp"] = state
        a0, state = protect_all(state, 0x87, asn1.encode("ConfigureISDPRequest", {}), encrypt=True)
        a1, state = protect_all(
            state, 0x88, asn1.encode("StoreMetadataRequest", self.metadata()), encrypt=False
        )
        parts = [isc, tlv.build(0xA0, b"".join(a0)), tlv.build(0xA1, b"".join(a1))]
        if ppk:
            ppk_enc, ppk_mac, mcv = b"\x11" * 16, b"\x22" * 16, b"\x33" * 16
            rsk = asn1.encode(
                "ReplaceSessionKeysRequest",
                {"initialMacChainingValue": mcv, "ppkEnc": ppk_enc, "ppkCmac": ppk_mac},
            )
            a2, state = protect_all(state, 0x87, rsk, encrypt=True)
            parts.append(tlv.build(0xA2, b"".join(a2)))
            state = BspState(ppk_enc, ppk_mac, mcv)
        a3, state = protect_all(state, 0x86, self.upp, encrypt=True)
        parts.append(tlv.build(0xA3, b"".join(a3)))
        bpp = tlv.build(0xBF36, b"".join(parts))
        return bpp

    def check_pir(self, pir_der: bytes) -> dict[str, Any]:
        """Verify a ProfileInstallationResult as the SM-DP+ does: re-encode, then the signature."""
        pir = asn1.decode("ProfileInstallationResult", pir_der)
        data = pir["profileInstallationResultData"]
        assert asn1.encode("ProfileInstallationResult", pir) == pir_der  # canonical DER
        assert self.session["euicc_pub"].verify(
            asn1.encode("ProfileInstallationResultData", data), pir["euiccSignPIR"], encoding="raw"
        )
        return data


def download(
    lpa: Lpa, smdp: TestSmdp, *, ppk: bool = False, tamper: Any = None
) -> tuple[bytes | None, list[bytes]]:
    """A whole download; `tamper(segments) -> segments` may alter the BPP on its way."""
    challenge = lpa.es10("GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse")[
        "euiccChallenge"
    ]
    auth = lpa.call(
        asn1.encode("AuthenticateServerRequest", smdp.authenticate_server_request(challenge))
    )
    prep = lpa.call(asn1.encode("PrepareDownloadRequest", smdp.prepare_download_request(auth)))
    segs = bpp_segments(smdp.bound_profile_package(prep, ppk=ppk))
    if tamper is not None:
        segs = tamper(segs)
    return lpa.load_bpp(segs), segs


def notification_config(*events: int, address: str = SMDP_ADDRESS) -> list[dict[str, Any]]:
    return [
        {"profileManagementOperation": bits_from_names(*events), "notificationAddress": address}
    ]
