"""USIM commands of 3GPP TS 31.102 §7: AUTHENTICATE in the 3G and GSM security contexts,
GET IDENTITY in the SUCI context (§7.5).

Bound to the USIM application (RID A000000087, application code 1002): a
decoder that follows SELECT by DF name reads 00 88 00 81 as the USIM's
AUTHENTICATE, not as ISO's INTERNAL AUTHENTICATE. The vectors are the osmocom
Milenage example (K = OPc = 000102..0F, RAND 0, SQN 22) answered by the
emulator's "usim" preset, whose keys are those.
"""

from __future__ import annotations

from collections.abc import Callable

import construct as c

from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Le
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

CLAUSE = "3GPP TS 31.102"

#: TS 101 220 Annex E: RID 3GPP, application code 1002 (the rest of the AID varies).
USIM = AppletContext("USIM", (bytes.fromhex("A0000000871002"),))

_LV = c.Prefixed(c.Int8ub, c.GreedyBytes)
AUTH_3G = c.Struct("rand" / _LV, "autn" / _LV)
AUTH_GSM = c.Struct("rand" / _LV)
_SWS = sws("6982 6985 6A86 9862 9864 9865")


def _lv_items(data: bytes, pos: int) -> list[bytes]:
    out = []
    while pos < len(data):
        n = data[pos]
        out.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return out


def _auth_3g_response(d: Decoded) -> str:
    """'DB' L RES L CK L IK [L Kc], or 'DC' L AUTS (TS 31.102 §7.1.2.1)."""
    data = d.data
    if not isinstance(data, bytes) or not data:
        return "no data"
    if data[0] == 0xDB:
        items = _lv_items(data, 1)
        names = ["RES", "CK", "IK", "Kc"]
        return "success: " + ", ".join(
            f"{n} {v.hex().upper()}" for n, v in zip(names, items, strict=False)
        )
    if data[0] == 0xDC:
        items = _lv_items(data, 1)
        return f"synchronisation failure: AUTS {items[0].hex().upper() if items else ''}"
    return f"unknown tag {data[0]:02X}"


def _auth_gsm_response(d: Decoded) -> str:
    data = d.data
    if not isinstance(data, bytes):
        return "no data"
    items = _lv_items(data, 0)
    if len(items) == 2:
        return f"SRES {items[0].hex().upper()}, Kc {items[1].hex().upper()}"
    return "malformed"


def _rand_summary(context: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        v = d.fields["data"]
        if not isinstance(v, dict):
            return f"AUTHENTICATE {context}"
        return f"AUTHENTICATE {context}, RAND {v['rand'].hex().upper()}"

    return summary


def _suci_response(d: Decoded) -> str:
    """'A1' L SUCI (TS 31.102 §7.5.2), the SUCI as in TS 24.501 §9.11.3.4 from octet 4."""
    from card.crypto.suci import Suci, SuciError

    data = d.data
    if not isinstance(data, bytes) or len(data) < 2 or data[0] != 0xA1:
        return "no SUCI data object"
    n, pos = data[1], 2
    if n == 0x81 and len(data) > 2:
        n, pos = data[2], 3
    try:
        return str(Suci.from_bytes(data[pos : pos + n]))
    except SuciError as e:
        return f"malformed SUCI: {e}"


# TS 33.501 Annex C.4.3.1 (Profile A, IMSI 274012001002086, routing indicator 678, key 27).
_C4_A_SUCI = (
    "01722410" "76F8" "01" "1B"
    "b2e92f836055a255837debf850b528997ce0201cb82adfe4be1f587d07d8457d" "cb02352410"
    "cddd9e730ef3fa87"
)  # fmt: skip

SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "AUTHENTICATE",
        0x88,
        f"{CLAUSE} §7.1.2.1",
        variant="3G",
        p1=0x00,
        p2=0x81,
        data=AUTH_3G,
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=_SWS,
        summary=_rand_summary("3G context"),
        response_summary=_auth_3g_response,
        context=USIM,
        doc="Data: L RAND L AUTN. The USIM checks MAC-A and the freshness of SQN.",
        vectors=(
            Vector(
                "008800812210" + "00" * 16 + "10EC9320C2C2120000C8B7DE2A3449F1BD00",
                "AUTHENTICATE 3G context, RAND 00000000000000000000000000000000",
                {"data": {"autn": "EC9320C2C2120000C8B7DE2A3449F1BD"}},
                response="DB08E9FC88CCC8A35381107200A184D8F2C758FBDF87900DDBF2751012CB2DD3E0EC"
                "8378F6FC1D606C619F47086DE816A759A429129000",
                response_summary="9000 (Normal processing: no further qualification): success: "
                "RES E9FC88CCC8A35381, CK 7200A184D8F2C758FBDF87900DDBF275, "
                "IK 12CB2DD3E0EC8378F6FC1D606C619F47, Kc 6DE816A759A42912",
                context=bytes.fromhex("A0000000871002FFFFFFFF8907090000"),
                source="osmocom milenage_test example on the emulator's usim preset",
            ),
            Vector(
                "008800812210" + "00" * 16 + "10EC9320C2C2120000C8B7DE2A3449F1BD00",
                response="DC0E8711A0EC9E2BE2F766881A64605B9000",
                response_summary="9000 (Normal processing: no further qualification): "
                "synchronisation failure: AUTS 8711A0EC9E2BE2F766881A64605B",
                context=bytes.fromhex("A0000000871002"),
                source="the same AUTN replayed (SQN_MS 22)",
            ),
            Vector(
                "008800812210" + "01" * 16 + "10EC9320C2C2120000C8B7DE2A3449F1BD00",
                response="9862",
                response_summary="9862 (Authentication error, incorrect MAC)",
                context=bytes.fromhex("A0000000871002"),
                source="the emulator's usim preset, AUTN for another RAND",
            ),
        ),
    ),
    CommandSpec(
        "AUTHENTICATE",
        0x88,
        f"{CLAUSE} §7.1.2.1",
        variant="GSM",
        p1=0x00,
        p2=0x80,
        data=AUTH_GSM,
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=_SWS,
        summary=_rand_summary("GSM context"),
        response_summary=_auth_gsm_response,
        context=USIM,
        doc="Data: L RAND. SRES and Kc come from the conversion functions c2 and c3.",
        vectors=(
            Vector(
                "008800801110" + "00" * 16 + "00",
                "AUTHENTICATE GSM context, RAND 00000000000000000000000000000000",
                response="04215FDB4D086DE816A759A429129000",
                response_summary="9000 (Normal processing: no further qualification): "
                "SRES 215FDB4D, Kc 6DE816A759A42912",
                context=bytes.fromhex("A0000000871002"),
                source="osmocom milenage_test example on the emulator's usim preset",
            ),
        ),
    ),
    CommandSpec(
        "GET IDENTITY",
        0x78,
        f"{CLAUSE} §7.5",
        variant="SUCI",
        cla=0x80,
        cla_mask=0x00,  # 8X, and 0X as some implementations send
        p1=0x00,
        p2=0x01,
        le=Le.REQUIRED,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=sws("6982 6985 6A81 6A86"),
        summary="GET IDENTITY, SUCI context",
        response_summary=_suci_response,
        context=USIM,
        doc="The USIM calculates the SUCI (services n°124 and n°125): 'A1' L SUCI.",
        vectors=(
            Vector(
                "8078000100",
                "GET IDENTITY, SUCI context",
                response="A135" + _C4_A_SUCI + "9000",
                response_summary="9000 (Normal processing: no further qualification): "
                "suci-0-274-012-678-1-27-" + _C4_A_SUCI[16:].lower(),
                context=bytes.fromhex("A0000000871002"),
                source="TS 33.501 C.4.3.1 through the emulator (tests/unit/test_usim_suci.py)",
            ),
            Vector(
                "8078000100",
                response="6A81",
                response_summary="6A81 (Function not supported)",
                context=bytes.fromhex("A0000000871002"),
                source="the emulator's usim preset (no SUCI calculation by the USIM)",
            ),
        ),
    ),
)
