"""The ECASD as the ISD-R reaches it: a Shareable interface (GSMA SGP.22 v2.x §2.4.2).

The eUICC Controlling Authority Security Domain holds the eUICC's identity:
the EID, the private key SK.EUICC.ECDSA, CERT.EUICC.ECDSA and CERT.EUM.ECDSA,
and the CI public keys the eUICC trusts. The ISD-R never sees the private
key: it asks the ECASD to sign. The interface lives in card/ because the two
applets may not import each other (README, "Layout"); only primitive values cross it.
"""

from __future__ import annotations

from card.framework.shareable import Shareable

__all__ = ["ECASD_AID", "ISD_R_AID", "EcasdInterface"]

#: GSMA SGP.22 §2.2.3 (Table 2): the AIDs of the ISD-R and the ECASD.
ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
ECASD_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000200")


class EcasdInterface(Shareable):
    """What the ECASD offers the ISD-R (granted to the ISD-R's AID only)."""

    def eid(self) -> bytes:
        """The 16-byte EID (SGP.02 §2.2.2 digits as BCD)."""
        raise NotImplementedError

    def euicc_certificate(self) -> bytes:
        """CERT.EUICC.ECDSA, DER."""
        raise NotImplementedError

    def eum_certificate(self) -> bytes:
        """CERT.EUM.ECDSA, DER."""
        raise NotImplementedError

    def ci_keys(self) -> tuple[tuple[bytes, str, bytes], ...]:
        """The CI public keys trusted for verification: (key identifier, curve name, point)."""
        raise NotImplementedError

    def signing_ci_pkids(self) -> tuple[bytes, ...]:
        """The CI key identifiers the eUICC's own chain leads to (euiccCiPKIdListForSigning)."""
        raise NotImplementedError

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA-256 with SK.EUICC.ECDSA, as r || s (BSI TR-03111 §5.2.1; SGP.22 §2.6.5)."""
        raise NotImplementedError
