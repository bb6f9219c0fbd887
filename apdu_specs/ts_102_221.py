"""UICC commands of ETSI TS 102 221 §10-11 that ISO 7816-4 does not cover, and the GSM class.

- STATUS (8X F2), INCREASE (8X 32), TERMINAL PROFILE (8X 10) and TERMINAL
  CAPABILITY (8X AA): the proprietary-class commands of Table 10.5.
- CLA A0 (3GPP TS 51.011 §9): SELECT, GET RESPONSE, STATUS, READ BINARY, READ
  RECORD as a SIM tool sends them; the SELECT response is the GSM one (§9.2.1),
  announced with 9Fxx. VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK CHV
  (§9.2.9-13: a CHV is 8 bytes, digits padded with FF; UNBLOCK CHV names CHV1
  as 00) and RUN GSM ALGORITHM (§9.2.16: RAND in, SRES || Kc out).

The interindustry commands a UICC uses (SELECT, READ/UPDATE BINARY and RECORD,
VERIFY, CHANGE, DISABLE/ENABLE VERIFICATION REQUIREMENT, RESET RETRY COUNTER =
UNBLOCK PIN) decode with `apdu_specs.iso7816_4`. The vectors' responses are what
the emulator's "usim" preset answers (a fresh card, after the commands the
source names): CHV1 disabled, PIN1 1234, PUK1 11111111, PIN2 5678, PUK2
22222222, and the K / OPc of the osmocom Milenage test, so RUN GSM ALGORITHM on
RAND 00..00 gives libosmocore's SRES and Kc (tests/auth/milenage_test.c).
"""

from __future__ import annotations

import construct as c

from apdu_specs.framework.decoded import Decoded, count_bytes
from apdu_specs.framework.fields import Le, p1, p1p2, p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import Vector

CLAUSE = "ETSI TS 102 221"
GSM_CLAUSE = "3GPP TS 51.011"
GSM_CLA = 0xA0

_GSM_TYPES = {0x01: "MF", 0x02: "DF", 0x04: "EF"}
_CHV = {0x01: "CHV1", 0x02: "CHV2"}
_UNBLOCK_CHV = {0x00: "CHV1", 0x02: "CHV2"}  # TS 51.011 §9.2.13: CHV1 is coded 00
_CHV_SWS = sws("9802 9804 9808 9840")
_ONE_CHV = c.Struct("chv" / c.Bytes(8))
_TWO_CHVS = c.Struct("old" / c.Bytes(8), "new" / c.Bytes(8))
_UNBLOCK_DATA = c.Struct("unblock" / c.Bytes(8), "new" / c.Bytes(8))
_GSM_STRUCTURES = {0x00: "transparent", 0x01: "linear fixed", 0x03: "cyclic"}


def _gsm_select_response(d: Decoded) -> str:
    """TS 51.011 §9.2.1: the file identifier and type, and the size or the children."""
    data = d.data
    if not isinstance(data, bytes) or len(data) < 14:
        return f"{count_bytes(len(data) if isinstance(data, bytes) else 0)}"
    fid = data[4:6].hex().upper()
    kind = _GSM_TYPES.get(data[6], f"type {data[6]:02X}")
    if data[6] == 0x04 and len(data) >= 15:
        structure = _GSM_STRUCTURES.get(data[13], f"structure {data[13]:02X}")
        return f"{kind} {fid}, {structure}, {int.from_bytes(data[2:4], 'big')} bytes"
    if len(data) >= 22:
        return f"{kind} {fid}, {data[14]} DFs, {data[15]} EFs, CHV1 {data[18] & 0x0F} tries"
    return f"{kind} {fid}"


def _run_gsm_algorithm_summary(d: Decoded) -> str:
    data, ne = d.fields["data"], d.fields["ne"]
    text = "RUN GSM ALGORITHM (GSM)"
    if isinstance(data, dict):
        text += f" RAND {data['rand'].hex().upper()}"
    return text + (f", Ne {ne}" if ne is not None else "")


def _gsm_algorithm_response(d: Decoded) -> str:
    """TS 51.011 §9.2.16: SRES (4 bytes) then Kc (8 bytes)."""
    data = d.data
    if isinstance(data, bytes):
        return count_bytes(len(data))
    return f"SRES {data['sres'].hex().upper()}, Kc {data['kc'].hex().upper()}"


class GsmCommandSpec(CommandSpec):
    """A command of the GSM class: CLA A0 exactly, on the basic channel only (TS 51.011 §9.1).

    `cla_with_channel` reads A0 as a proprietary class and would move it to 8X.
    """

    def cla_values(self) -> tuple[int, ...]:
        return (GSM_CLA,)


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "STATUS",
        0xF2,
        f"{CLAUSE} §11.1.2",
        cla=0x80,
        match=(0xFC00, 0x0000),
        fields=(
            p1(
                "application",
                {0: "no indication", 1: "initialised", 2: "terminating"},
                mask=0x03,
            ),
            p2(
                "response",
                {0x00: "FCP of the current DF", 0x01: "DF name of the application", 0x0C: "none"},
            ),
        ),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=sws("6A82 6A86 6A88"),
        summary="STATUS, {response}{le}",
        doc="P1 tells the card about the application session; P2 what to answer.",
        vectors=(
            Vector(
                "80F2000000",
                "STATUS, FCP of the current DF, Ne 256",
                {"params": {"response": "FCP of the current DF"}},
                response="62238202782183023F00A5038001718A01058B032F0607C60C90016083010183018183010A9000",
                source="the emulator's usim preset, MF current",
            ),
            Vector(
                "80F201010C",
                "STATUS, DF name of the application, Ne 12",
                {"params": {"application": "initialised"}},
            ),
        ),
    ),
    CommandSpec(
        "INCREASE",
        0x32,
        f"{CLAUSE} §11.1.8",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        nc=(1, 255),
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        sws=sws("6981 6982 6986 9850"),
        summary=lambda d: f"INCREASE by {d.fields['data'].hex().upper()}",
        doc="Adds the value to record 1 of the current cyclic EF; answers the new record "
        "and the value added.",
        vectors=(Vector("803200000101", "INCREASE by 01"),),
    ),
    CommandSpec(
        "TERMINAL PROFILE",
        0x10,
        f"{CLAUSE} §11.2.1 (3GPP TS 31.111 §5.2)",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        sws=sws("6A80"),
        summary=lambda d: f"TERMINAL PROFILE, {count_bytes(d.fields['nc'])}",
        vectors=(
            Vector(
                "8010000003FFFFFF",
                "TERMINAL PROFILE, 3 bytes",
                response="9000",
                source="the emulator's usim preset",
            ),
        ),
    ),
    CommandSpec(
        "TERMINAL CAPABILITY",
        0xAA,
        f"{CLAUSE} §11.1.19",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        sws=sws("6A80"),
        summary=lambda d: f"TERMINAL CAPABILITY, {count_bytes(d.fields['nc'])}",
        vectors=(
            Vector(
                "80AA000004A9028100",
                "TERMINAL CAPABILITY, 4 bytes",
                response="9000",
                source="the emulator's usim preset",
            ),
        ),
    ),
    # -- CLA A0: the GSM class (TS 51.011 §9) --------------------------------------------------
    GsmCommandSpec(
        "SELECT",
        0xA4,
        f"{GSM_CLAUSE} §9.2.1",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        p2=0x00,
        data=c.Struct("fid" / c.Bytes(2)),
        nc=(2, 2),
        sws=sws("9Fxx 9404 6B00 6700"),
        summary=lambda d: (
            f"SELECT (GSM) {d.fields['data']['fid'].hex().upper()}"
            if isinstance(d.fields["data"], dict)
            else "SELECT (GSM)"
        ),
        vectors=(
            Vector(
                "A0A40000023F00",
                "SELECT (GSM) 3F00",
                response="9F16",
                response_summary="9F16 (22 response bytes available (GSM class))",
                source="the emulator's usim preset",
            ),
            Vector(
                "A0A40000026F07",
                "SELECT (GSM) 6F07",
                response="9404",
                source="the emulator's usim preset (EF.IMSI is in DF.GSM, not in the MF)",
            ),
            Vector(
                "A0A40000027F20",
                "SELECT (GSM) 7F20",
                response="9F16",
                source="the emulator's usim preset",
            ),
        ),
    ),
    GsmCommandSpec(
        "GET RESPONSE",
        0xC0,
        f"{GSM_CLAUSE} §9.2.18",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        p2=0x00,
        le=Le.REQUIRED,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=sws("6F00"),
        summary="GET RESPONSE (GSM){le}",
        response_summary=_gsm_select_response,
        vectors=(
            Vector(
                "A0C0000016",
                "GET RESPONSE (GSM), Ne 22",
                response="0000FFFF3F0001000000000009B102040400838A838A9000",
                response_summary="9000 (Normal processing: no further qualification): "
                "MF 3F00, 2 DFs, 4 EFs, CHV1 3 tries",
                source="the emulator's usim preset, after A0A40000023F00",
            ),
            Vector(
                "A0C000000F",
                "GET RESPONSE (GSM), Ne 15",
                response="0000000A2FE204000FF0AA010200009000",
                response_summary="9000 (Normal processing: no further qualification): "
                "EF 2FE2, transparent, 10 bytes",
                source="the emulator's usim preset, after A0A40000022FE2",
            ),
            Vector(
                "A0C0000016",
                "GET RESPONSE (GSM), Ne 22",
                response="0000FFFF7F2002000000000009B1000C0400838A838A9000",
                response_summary="9000 (Normal processing: no further qualification): "
                "DF 7F20, 0 DFs, 12 EFs, CHV1 3 tries",
                source="the emulator's usim preset, after A0A40000027F20",
            ),
        ),
    ),
    GsmCommandSpec(
        "STATUS",
        0xF2,
        f"{GSM_CLAUSE} §9.2.2",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        p2=0x00,
        le=Le.REQUIRED,
        ne=(1, 256),
        response=c.GreedyBytes,
        summary="STATUS (GSM){le}",
        response_summary=_gsm_select_response,
        vectors=(Vector("A0F2000016", "STATUS (GSM), Ne 22"),),
    ),
    GsmCommandSpec(
        "READ BINARY",
        0xB0,
        f"{GSM_CLAUSE} §9.2.3",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        match=(0x8000, 0x0000),
        fields=(p1p2("offset", mask=0x7FFF, hex=True),),
        le=Le.REQUIRED,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=sws("9400 9402 9804 9408"),
        summary="READ BINARY (GSM) offset {offset}{le}",
        vectors=(
            Vector(
                "A0B000000A",
                "READ BINARY (GSM) offset 0000, Ne 10",
                response="988812000000000010F29000",
                source="the emulator's usim preset, after A0A40000022FE2",
            ),
        ),
    ),
    GsmCommandSpec(
        "READ RECORD",
        0xB2,
        f"{GSM_CLAUSE} §9.2.5",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        fields=(
            p1("record"),
            p2("mode", {0x02: "next", 0x03: "previous", 0x04: "absolute/current"}),
        ),
        le=Le.REQUIRED,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=sws("9400 9402 9804 9408"),
        summary="READ RECORD (GSM) {record}, {mode}{le}",
        vectors=(Vector("A0B201041C", "READ RECORD (GSM) 1, absolute/current, Ne 28"),),
    ),
    GsmCommandSpec(
        "VERIFY CHV",
        0x20,
        f"{GSM_CLAUSE} §9.2.9",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        fields=(p2("chv", _CHV),),
        data=_ONE_CHV,
        nc=(8, 8),
        sws=_CHV_SWS,
        summary="VERIFY CHV (GSM) {chv}",
        doc="9804: wrong, attempts left; 9840: blocked; 9808: CHV1 disabled.",
        vectors=(
            Vector(
                "A02000020835363738FFFFFFFF",
                "VERIFY CHV (GSM) CHV2",
                {"params": {"chv": "CHV2"}, "nc": 8},
                response="9000",
                source="the emulator's usim preset",
            ),
            Vector(
                "A02000020839393939FFFFFFFF",
                "VERIFY CHV (GSM) CHV2",
                response="9804",
                response_summary="9804 (Access condition not fulfilled, or CHV verification "
                "failed)",
                source="the emulator's usim preset",
            ),
            Vector(
                "A02000010831323334FFFFFFFF",
                "VERIFY CHV (GSM) CHV1",
                response="9808",
                source="the emulator's usim preset (CHV1 disabled)",
            ),
        ),
    ),
    GsmCommandSpec(
        "CHANGE CHV",
        0x24,
        f"{GSM_CLAUSE} §9.2.10",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        fields=(p2("chv", _CHV),),
        data=_TWO_CHVS,
        nc=(16, 16),
        sws=_CHV_SWS,
        summary="CHANGE CHV (GSM) {chv}",
        doc="The old CHV, then the new one.",
        vectors=(
            Vector(
                "A02400021035363738FFFFFFFF38373635FFFFFFFF",
                "CHANGE CHV (GSM) CHV2",
                {"params": {"chv": "CHV2"}},
                response="9000",
                source="the emulator's usim preset",
            ),
        ),
    ),
    GsmCommandSpec(
        "DISABLE CHV",
        0x26,
        f"{GSM_CLAUSE} §9.2.11",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        p2=0x01,
        data=_ONE_CHV,
        nc=(8, 8),
        sws=_CHV_SWS,
        summary="DISABLE CHV (GSM) CHV1",
        doc="CHV1 only; 9808 when it is disabled already.",
        vectors=(
            Vector(
                "A02600010831323334FFFFFFFF",
                "DISABLE CHV (GSM) CHV1",
                response="9808",
                source="the emulator's usim preset (CHV1 disabled)",
            ),
        ),
    ),
    GsmCommandSpec(
        "ENABLE CHV",
        0x28,
        f"{GSM_CLAUSE} §9.2.12",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        p2=0x01,
        data=_ONE_CHV,
        nc=(8, 8),
        sws=_CHV_SWS,
        summary="ENABLE CHV (GSM) CHV1",
        doc="CHV1 only; 9808 when it is enabled already.",
        vectors=(
            Vector(
                "A02800010831323334FFFFFFFF",
                "ENABLE CHV (GSM) CHV1",
                response="9000",
                source="the emulator's usim preset (CHV1 disabled)",
            ),
        ),
    ),
    GsmCommandSpec(
        "UNBLOCK CHV",
        0x2C,
        f"{GSM_CLAUSE} §9.2.13",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        fields=(p2("chv", _UNBLOCK_CHV),),
        data=_UNBLOCK_DATA,
        nc=(16, 16),
        sws=_CHV_SWS,
        summary="UNBLOCK CHV (GSM) {chv}",
        doc="The UNBLOCK CHV (PUK), then the new CHV; P2 00 is CHV1, 02 CHV2.",
        vectors=(
            Vector(
                "A02C0000103131313131313131" + "31323334FFFFFFFF",
                "UNBLOCK CHV (GSM) CHV1",
                {"params": {"chv": "CHV1"}},
                response="9000",
                source="the emulator's usim preset",
            ),
            Vector(
                "A02C0002103232323232323232" + "35363738FFFFFFFF",
                "UNBLOCK CHV (GSM) CHV2",
                response="9000",
                source="the emulator's usim preset",
            ),
        ),
    ),
    GsmCommandSpec(
        "RUN GSM ALGORITHM",
        0x88,
        f"{GSM_CLAUSE} §9.2.16",
        variant="GSM",
        cla=GSM_CLA,
        cla_mask=0xFF,
        p1=0x00,
        p2=0x00,
        data=c.Struct("rand" / c.Bytes(16)),
        nc=(16, 16),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.Struct("sres" / c.Bytes(4), "kc" / c.Bytes(8)),
        sws=sws("9Fxx 9804"),
        summary=_run_gsm_algorithm_summary,
        response_summary=_gsm_algorithm_response,
        doc="Needs DF.GSM (or a DF under it) current and CHV1 verified or disabled.",
        vectors=(
            Vector(
                "A08800001000000000000000000000000000000000",
                "RUN GSM ALGORITHM (GSM) RAND 00000000000000000000000000000000",
                response="9F0C",
                source="the emulator's usim preset, after A0A40000027F20",
            ),
            Vector(
                "A0880000100000000000000000000000000000000000",
                "RUN GSM ALGORITHM (GSM) RAND 00000000000000000000000000000000, Ne 256",
                response="215FDB4D6DE816A759A429129000",
                response_summary="9000 (Normal processing: no further qualification): "
                "SRES 215FDB4D, Kc 6DE816A759A42912",
                response_expect={"data": {"sres": "215FDB4D", "kc": "6DE816A759A42912"}},
                source="the emulator's usim preset, after A0A40000027F20 "
                "(SRES and Kc: libosmocore tests/auth/milenage_test.c)",
            ),
            Vector(
                "A08800001000000000000000000000000000000000",
                "RUN GSM ALGORITHM (GSM) RAND 00000000000000000000000000000000",
                response="9804",
                source="the emulator's usim preset (the MF is current, not DF.GSM)",
            ),
        ),
    ),
)
