"""ES10b.LoadCRL (GSMA SGP.22 v2.x §5.7, Annex H LoadCRLRequest 'BF35').

The LPA hands the eUICC a CRL its CI issued; the eUICC checks the CI's
signature and keeps, per CI, the newest CRL's number and revoked serial
numbers. From then on a CERT.DPauth, CERT.DSauth or CERT.DPpb the CI revoked
is refused (invalidCertificate) by AuthenticateServer and PrepareDownload.

A CRL older than (a smaller CRL number than) the one held is accepted and
changes nothing: a replayed old CRL cannot un-revoke a server. A CRL listing
more serial numbers than the eUICC keeps is refused (notEnoughMemorySpace).
Partial CRLs (SGP.22's totalPartialCrlNumber) are not supported: every CRL
is taken as complete.
"""

from __future__ import annotations

from typing import Any

from applets.isdr.base import IsdrBase
from card.sgp22.certs import CrlError, verify_crl
from card.sgp22.values import raw_fields

__all__ = ["CrlFunctions", "MAX_REVOKED"]

#: Revoked serial numbers one CI's CRL may list on this eUICC (each costs ~20 bytes of NVM).
MAX_REVOKED = 512
_KEY = "crl."


class CrlFunctions(IsdrBase):
    """ES10b.LoadCRL and the revocation lists it keeps."""

    def load_crl(self, request: Any, raw: bytes) -> Any:
        # BF35 { A0 CertificateList }: the field is [0] IMPLICIT (AUTOMATIC TAGS); with
        # its universal tag '30' back it is the CA's DER, whose signature is checked.
        fields = raw_fields(raw)
        if len(fields) != 1 or fields[0][0] != 0xA0:
            return ("loadCRLResponseError", CrlError.INVALID_FORMAT)
        try:
            info = verify_crl(b"\x30" + fields[0][1][1:], self.trusted_cis())
        except CrlError as e:
            return ("loadCRLResponseError", e.code)
        if len(info.serials) > MAX_REVOKED:
            return ("loadCRLResponseError", CrlError.NOT_ENOUGH_MEMORY)
        key = _KEY + info.ci_ski.hex()
        held = self.system.store.get(key)
        if held is None or info.number >= int(held[0]):
            serials = tuple(
                s.to_bytes((s.bit_length() + 7) // 8 or 1, "big") for s in sorted(info.serials)
            )
            self.system.store.set(key, (info.number, serials))
        return ("loadCRLResponseOk", {})

    def revoked_serials(self) -> dict[bytes, frozenset[int]]:
        """The serial numbers each trusted CI (by key identifier) revoked."""
        out: dict[bytes, frozenset[int]] = {}
        for ci in self.trusted_cis():
            held = self.system.store.get(_KEY + ci.ski.hex())
            if held is not None:
                out[ci.ski] = frozenset(int.from_bytes(b, "big") for b in held[1])
        return out
