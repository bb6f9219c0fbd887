"""SUCI calculation by the USIM: GET IDENTITY in the SUCI context (3GPP TS 31.102 §7.5).

When services n°124 (subscription identifier privacy) and n°125 (SUCI
calculation by the USIM) are available, the USIM conceals its SUPI itself:

- the protection scheme is the first one of the priority list of
  EF.SUCI_Calc_Info_USIM (in DF.SAIP under ADF.USIM, where the TCA profile
  package's PE-DF-SAIP puts it) that the card supports: the null scheme, ECIES
  Profile A or Profile B (TS 33.501 Annex C); its key index names the home
  network public key and its identifier;
- the routing indicator comes from EF.Routing_Indicator of DF.5GS (0 when absent);
- the SUPI is the IMSI of EF.IMSI, split into MCC / MNC / MSIN with the MNC
  length of EF.AD;
- the ephemeral private key is drawn from the card's RNG (for Profile B again
  until it is a valid P-256 scalar).

The answer is 'A1' L SUCI, the SUCI coded as the 5GS mobile identity of TS 24.501
§9.11.3.4 from its octet 4 (TS 31.102 §7.5.2).
"""

from __future__ import annotations

from typing import Protocol

from applets.usim.ins import Ins
from card.crypto.suci import NULL_SCHEME, PROFILE_A, PROFILE_B, Suci, conceal, encode_msin
from card.sw import SW, CardError
from card.uicc.ts_31_102 import (
    SuciCalcInfo,
    decode_routing_indicator,
    decode_suci_calc_info,
)

#: TS 31.102 §7.5: GET IDENTITY, and P2 for the SUCI context.
INS_GET_IDENTITY = Ins.GET_IDENTITY
P2_SUCI_CONTEXT = 0x01
TAG_SUCI = 0xA1
SUPPORTED_SCHEMES = (NULL_SCHEME, PROFILE_A, PROFILE_B)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Rng(Protocol):
    def random(self, n: int) -> bytes: ...


def _ephemeral(scheme: int, rng: Rng) -> bytes:
    if scheme == NULL_SCHEME:
        return b""
    while True:
        d = rng.random(32)
        # X25519 clamps any 32 bytes (RFC 7748 §5); a P-256 scalar must be 1..n-1.
        if scheme == PROFILE_A or 1 <= int.from_bytes(d, "big") < _P256_ORDER:
            return d


def choose_scheme(info: SuciCalcInfo) -> tuple[int, int, bytes]:
    """(scheme, home network public key identifier, key) the USIM uses (highest priority
    first among the schemes it supports; TS 31.102 §4.4.11.8).

    Raises:
        CardError: 6985 when no listed scheme is supported or its key is missing.
    """
    for psi, index in info.schemes:
        if psi not in SUPPORTED_SCHEMES:
            continue
        if psi == NULL_SCHEME:
            return psi, 0, b""
        if 1 <= index <= len(info.keys):
            key_id, key = info.keys[index - 1]
            return psi, key_id, key
    raise CardError(SW.CONDITIONS_NOT_SATISFIED)


def calculate_suci(
    calc_info: bytes,
    routing_indicator: bytes | None,
    imsi: str,
    mnc_length: int,
    rng: Rng,
) -> bytes:
    """The SUCI TLV of GET IDENTITY's answer ('A1' L SUCI).

    Raises:
        CardError: 6985 when the SUCI calculation information is unusable (no
            supported scheme, a malformed file or key).
    """
    try:
        info = decode_suci_calc_info(calc_info)
        ri = "0" if routing_indicator is None else decode_routing_indicator(routing_indicator)
    except ValueError:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED) from None
    scheme, key_id, key = choose_scheme(info)
    mcc, mnc, msin = imsi[:3], imsi[3 : 3 + mnc_length], imsi[3 + mnc_length :]
    try:
        output = conceal(scheme, encode_msin(msin), key, _ephemeral(scheme, rng))
        suci = Suci(mcc, mnc, ri, scheme, key_id, output).to_bytes()
    except ValueError:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED) from None
    if len(suci) > 0x7F:
        return bytes((TAG_SUCI, 0x81, len(suci))) + suci
    return bytes((TAG_SUCI, len(suci))) + suci
