"""Install parameters of the ECASD and the ISD-R (what a card factory writes in).

Coded as BER-TLV (card.tlv) so they travel as GlobalPlatform INSTALL
parameters would:

ECASD (`EcasdParams`):
    5A  EID (16 bytes)
    81  SK.EUICC.ECDSA, the private scalar (32 bytes)
    83  CERT.EUICC.ECDSA (DER)
    84  CERT.EUM.ECDSA (DER)
    A5  one per trusted CI key:  { 04 key identifier, 0C curve name, 86 point }

ISD-R (`IsdrParams`):
    80  default SM-DP+ address (UTF-8, optional)
    81  root SM-DS address (UTF-8)

The curve of the eUICC key is the one of the public key in CERT.EUICC; the
CI the eUICC signs for is the authority key identifier of CERT.EUM.
"""

from __future__ import annotations

from dataclasses import dataclass

from card import tlv
from card.sgp22.certs import TrustedCi

__all__ = ["EcasdParams", "IsdrParams", "DEFAULT_ROOT_DS"]

#: SGP.22 §4.1: the GSMA root SM-DS; a test card has it too, unused offline.
DEFAULT_ROOT_DS = "lpa.ds.gsma.com"


def _one(tlvs: list[tlv.Tlv], tag: int, what: str) -> bytes:
    found = [t.value for t in tlvs if t.tag == tag]
    if len(found) != 1:
        raise ValueError(f"install parameters: {what} (tag {tag:02X}) missing or repeated")
    return found[0]


@dataclass(frozen=True, repr=False)
class EcasdParams:
    """The eUICC's identity and trust anchors (the ECASD's content, SGP.22 §2.4.2)."""

    eid: bytes
    private_key: bytes
    euicc_certificate: bytes
    eum_certificate: bytes
    ci_keys: tuple[TrustedCi, ...]

    def to_bytes(self) -> bytes:
        cis = [
            tlv.build(0xA5, [(0x04, c.ski), (0x0C, c.curve.encode()), (0x86, c.point)])
            for c in self.ci_keys
        ]
        return b"".join(
            [
                tlv.build(0x5A, self.eid),
                tlv.build(0x81, self.private_key),
                tlv.build(0x83, self.euicc_certificate),
                tlv.build(0x84, self.eum_certificate),
                *cis,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EcasdParams:
        """Raises: ValueError (including card.tlv.TlvError) on malformed parameters."""
        tlvs = tlv.parse(bytes(data), allow_padding=False)
        eid = _one(tlvs, 0x5A, "EID")
        if len(eid) != 16:
            raise ValueError("install parameters: the EID is 16 bytes")
        cis = []
        for t in tlvs:
            if t.tag == 0xA5:
                kids = list(t.children)
                cis.append(
                    TrustedCi(
                        _one(kids, 0x04, "CI key identifier"),
                        _one(kids, 0x0C, "CI curve").decode(),
                        _one(kids, 0x86, "CI point"),
                    )
                )
        return cls(
            eid,
            _one(tlvs, 0x81, "private key"),
            _one(tlvs, 0x83, "CERT.EUICC"),
            _one(tlvs, 0x84, "CERT.EUM"),
            tuple(cis),
        )

    def __repr__(self) -> str:
        return f"EcasdParams(eid={self.eid.hex()}, {len(self.ci_keys)} CI keys, <key hidden>)"


@dataclass(frozen=True)
class IsdrParams:
    """The ISD-R's configured addresses (ES10a, SGP.22 §5.7.3)."""

    default_dp_address: str | None = None
    root_ds_address: str = DEFAULT_ROOT_DS

    def to_bytes(self) -> bytes:
        out = b""
        if self.default_dp_address:
            out += tlv.build(0x80, self.default_dp_address.encode())
        return out + tlv.build(0x81, self.root_ds_address.encode())

    @classmethod
    def from_bytes(cls, data: bytes) -> IsdrParams:
        if not data:
            return cls()
        tlvs = tlv.parse(bytes(data), allow_padding=False)
        dp = [t.value.decode() for t in tlvs if t.tag == 0x80]
        ds = [t.value.decode() for t in tlvs if t.tag == 0x81]
        return cls(dp[0] if dp else None, ds[0] if ds else DEFAULT_ROOT_DS)
