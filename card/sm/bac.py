"""Basic Access Control: the mutual authentication of ICAO Doc 9303 Part 11 §9.7.2.

Both ends hold Kenc and Kmac derived from the MRZ key seed
(`card.sm.kdf.icao_kdf(bac_key_seed(mrz), 1|2, 'DES3')`). The terminal sends
EXTERNAL AUTHENTICATE with E_IFD || M_IFD, E_IFD = 3DES(Kenc, RND.IFD || RND.IC
|| K.IFD) and M_IFD the retail MAC of E_IFD under Kmac; the card checks it and
answers E_IC || M_IC over RND.IC || RND.IFD || K.IC. The session keys come
from KSseed = K.IFD xor K.IC and the SSC from the two challenges (§9.7.2.2,
Appendix D.3).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from card.crypto.cmac import pad80
from card.sm.codec import SmError, SmSession, des_cbc, retail_mac
from card.sm.kdf import KDF_ENC, KDF_MAC, icao_kdf

__all__ = ["BacKeys", "bac_cryptogram", "bac_open", "bac_session"]


@dataclass(frozen=True, repr=False)
class BacKeys:
    """The document basic access keys Kenc and Kmac (ICAO 9303-11 §9.7.2)."""

    k_enc: bytes
    k_mac: bytes

    @classmethod
    def from_seed(cls, kseed: bytes) -> BacKeys:
        return cls(icao_kdf(kseed, KDF_ENC, "DES3"), icao_kdf(kseed, KDF_MAC, "DES3"))

    def __repr__(self) -> str:
        return "BacKeys(<hidden>)"


def bac_cryptogram(keys: BacKeys, plain: bytes) -> bytes:
    """E || M: 3DES-CBC (zero IV) of 32 bytes, then its retail MAC (§9.7.2.1)."""
    e = des_cbc(keys.k_enc, plain)
    return e + retail_mac(keys.k_mac, pad80(e, 8))


def bac_open(keys: BacKeys, cryptogram: bytes) -> bytes:
    """Check M and decrypt E of an EXTERNAL AUTHENTICATE cryptogram (40 bytes).

    Raises:
        SmError: wrong length or MAC (the card answers 6300 or 6982 itself).
    """
    if len(cryptogram) != 40:
        raise SmError(reason="BAC cryptogram must be 40 bytes")
    e, m = cryptogram[:32], cryptogram[32:]
    if not hmac.compare_digest(retail_mac(keys.k_mac, pad80(e, 8)), m):
        raise SmError(reason="BAC MAC mismatch")
    return des_cbc(keys.k_enc, e, decrypt=True)


def bac_session(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SmSession:
    """The 3DES SM session after BAC: KSseed = K.IFD xor K.IC, SSC = RND.IC[4:] || RND.IFD[4:]."""
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    return SmSession.des3(
        icao_kdf(seed, KDF_ENC, "DES3"), icao_kdf(seed, KDF_MAC, "DES3"), rnd_ic[4:] + rnd_ifd[4:]
    )
