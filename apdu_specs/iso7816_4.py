"""Interindustry commands: ISO/IEC 7816-4:2013 clause 11, with PERFORM SECURITY
OPERATION (ISO/IEC 7816-8) and the file life-cycle commands (ISO/IEC 7816-9).

Clause numbers are those of ISO/IEC 7816-4:2013, which keeps the 2005
edition's subclause order for these commands under clause 11 instead of 7
(2013 §11.2.3 READ BINARY is 2005 §7.2.3). Table references are to the 2005
edition, the one most often reproduced. ETSI TS 102 221 §11.1 codes the same
commands for the UICC; where it pins down what ISO leaves open (the FCP tags,
SELECT P2 b7) it is cited.

Every command of the interindustry class (CLA 0x-7x) is decoded here, whatever
its channel, secure-messaging or chaining bits. Commands whose P1-P2 select a
variant (SELECT, READ BINARY, PERFORM SECURITY OPERATION, ...) have one spec
per variant and a fallback spec that names the command for undefined values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import construct as c

from apdu_specs.constructs import FID, PATH, BerTlv, TagInfo, find_entry, int_be, tlv_summary
from apdu_specs.framework.decoded import Decoded, count_bytes
from apdu_specs.framework.fields import Le, p1, p1p2, p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import Vector
from apdu_specs.generate import Draw
from apdu_specs.values import HexInt

CLAUSE = "ISO/IEC 7816-4:2013"

# -- File control information (§7.4.3, 2005 Table 12; ETSI TS 102 221 §11.1.1.4) -------

_STRUCTURES = {
    0: "no information",
    1: "transparent",
    2: "linear fixed",
    3: "linear fixed, TLV",
    4: "linear variable",
    5: "linear variable, TLV",
    6: "cyclic",
    7: "cyclic, TLV",
}


def file_descriptor(b: bytes) -> dict[str, Any]:
    """Tag 82: file descriptor byte (2005 Table 14), data coding byte, record sizes."""
    if not b:
        return {}
    fdb = b[0]
    out: dict[str, Any] = {"shareable": bool(fdb & 0x40)}
    low6 = fdb & 0x3F
    if fdb & 0x80:
        out["type"] = "proprietary"
    elif low6 == 0x38:
        out["type"] = "DF"
    elif low6 == 0x39:
        out["type"] = "BER-TLV EF"
    elif low6 == 0x3A:
        out["type"] = "SIMPLE-TLV EF"
    else:
        category = (fdb >> 3) & 0x07
        out["type"] = {0: "working EF", 1: "internal EF", 7: "RFU"}.get(category, "proprietary EF")
        out["structure"] = _STRUCTURES[fdb & 0x07]
    if len(b) >= 2:
        out["data_coding"] = HexInt(b[1])
    # Record EFs: maximum record size (1 or 2 bytes), then the number of records;
    # five bytes are 2 + 1, as ETSI TS 102 221 §11.1.1.4.3 codes them.
    if len(b) in (3, 4):
        out["record_size"] = int_be(b[2:])
    elif len(b) >= 5:
        out["record_size"] = int_be(b[2:4])
        out["records"] = int_be(b[4:])
    return out


def life_cycle(b: bytes) -> str:
    """Tag 8A: life cycle status integer (§7.4.10, 2005 Table 13)."""
    if len(b) != 1:
        return f"invalid length {len(b)}"
    v = b[0]
    if v == 0x00:
        return "no information given"
    if v == 0x01:
        return "creation"
    if v == 0x03:
        return "initialisation"
    if v & 0xFD == 0x05:
        return "operational, activated"
    if v & 0xFD == 0x04:
        return "operational, deactivated"
    if v & 0xFC == 0x0C:
        return "termination"
    if v >= 0x10:
        return "proprietary"
    return "RFU"


def short_ef_id(b: bytes) -> Any:
    """Tag 88: SFI in b8-b4 (§7.4.4); empty: the EF has no SFI."""
    if not b:
        return "none"
    return b[0] >> 3


def _gen_descriptor(draw: Draw) -> bytes:
    return draw.choice(
        [
            b"\x78\x21",
            b"\x38",
            b"\x41\x21",
            b"\x01",
            b"\x42\x21\x00\x1c\x05",
            b"\x46\x21\x00\x10\x0a",
        ]
    )


PIN_STATUS_TAGS = {
    0x90: TagInfo("PS_DO", size=(1, 2)),
    0x95: TagInfo("usage qualifier", size=(1, 1)),
    0x83: TagInfo("key reference", size=(1, 1)),
}

FCP_TAGS: dict[int, TagInfo] = {
    0x80: TagInfo("file size", decode=int_be, size=(1, 4)),
    0x81: TagInfo("total file size", decode=int_be, size=(1, 4)),
    0x82: TagInfo("file descriptor", decode=file_descriptor, gen=_gen_descriptor),
    0x83: TagInfo("file identifier", size=(2, 2)),
    0x84: TagInfo("DF name", size=(1, 16)),
    0x85: TagInfo("proprietary information", size=(1, 8)),
    0x86: TagInfo("security attributes, proprietary", size=(1, 8)),
    0x87: TagInfo("FCI extension EF", size=(2, 2)),
    0x88: TagInfo("short EF identifier", decode=short_ef_id, size=(0, 1)),
    0x8A: TagInfo("life cycle status", decode=life_cycle, size=(1, 1)),
    0x8B: TagInfo("security attributes, referenced", size=(3, 6)),
    0x8C: TagInfo("security attributes, compact", size=(1, 8)),
    0x8D: TagInfo("security environment templates EF", size=(2, 2)),
    0xA5: TagInfo("proprietary information"),
    0xAB: TagInfo("security attributes, expanded"),
    0xC6: TagInfo("PIN status template", children=PIN_STATUS_TAGS),
}

FMD_TAGS: dict[int, TagInfo] = {
    0x4F: TagInfo("application identifier", size=(5, 16)),
    0x50: TagInfo("application label", size=(1, 16)),
    0x53: TagInfo("discretionary data"),
    0x73: TagInfo("discretionary template"),
    0x61: TagInfo("application template"),
}

FCI_TAGS: dict[int, TagInfo] = {**FCP_TAGS, **FMD_TAGS, 0xA5: TagInfo("FCI proprietary template")}

FCI_TEMPLATES: dict[int, TagInfo] = {
    0x62: TagInfo("FCP template", children=FCP_TAGS),
    0x64: TagInfo("FMD template", children=FMD_TAGS),
    0x6F: TagInfo("FCI template", children=FCI_TAGS),
}

#: The response to SELECT (and the control information of STATUS-like commands).
FCI = BerTlv(FCI_TEMPLATES, max_items=1)

# -- Shared pieces --------------------------------------------------------------------

SELECT_MODES = {
    0x00: "MF, DF or EF",
    0x01: "child DF",
    0x02: "EF under the current DF",
    0x03: "parent DF",
    0x04: "by DF name",
    0x08: "path from the MF",
    0x09: "path from the current DF",
}

#: P2 qualifier of reference data (2005 Table 65): global or specific, and a number.
REFERENCE = (
    p2("scope", {0: "global", 1: "specific"}, mask=0x80),
    p2("reference", mask=0x1F),
)

ALGORITHM = p1("algorithm", hex=True)  # 00: no information given

OFFSET_DO = {0x54: TagInfo("offset", decode=int_be, size=(1, 3))}
DISCRETIONARY = {0x53: TagInfo("discretionary data", size=(0, 32)), **OFFSET_DO}


def _hx(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return value.hex().upper()
    if isinstance(value, list):
        return "/".join(_hx(v) for v in value)
    return str(value)


def _ref(d: Decoded) -> str:
    p = d.params
    if not p["scope"] and not p["reference"]:
        return "no reference given"
    return f"{p['scope']} reference {p['reference']:02X}"


def _le(d: Decoded) -> str:
    ne = d.fields.get("ne")
    return f", Ne {ne}" if ne is not None else ""


def _select_target(mode: int, data: Any) -> str:
    if mode == 0x00:
        return f"FID {_hx(data)}" if data else "MF"
    if mode in (0x01, 0x02):
        return f"{SELECT_MODES[mode]} {_hx(data)}"
    if mode == 0x03:
        return "parent DF"
    if mode == 0x04:
        return f"by DF name {_hx(data)}" if data else "by DF name (empty: the default application)"
    if mode in (0x08, 0x09):
        return f"{SELECT_MODES[mode]} {_hx(data)}"
    return f"P1 {mode:02X} (RFU)"


def _select_summary(d: Decoded) -> str:
    p = d.params
    assert d.spec is not None
    mode = d.spec.p1 if d.spec.p1 is not None else int(d.fields["p1"])
    parts = [f"SELECT {_select_target(mode, d.data)}"]
    if p["occurrence"]:
        parts.append(f"{p['occurrence']} occurrence")
    parts.append(str(p["response"]))
    if p.get("session"):
        parts.append(str(p["session"]))
    return ", ".join(parts) + _le(d)


def _fci_summary(d: Decoded) -> str:
    data = d.data
    if isinstance(data, list):
        return tlv_summary(data)
    return _hx(data)


# -- Selection (§11.1) ------------------------------------------------------------------

#: P2 b7, application session control: ETSI TS 102 221 §11.1.1.2 (SELECT by DF name).
_SESSION = p2("session", {0: "activate", 1: "terminate the application session"}, mask=0x40)
_SELECT_P2 = (
    p2(
        "response",
        {0: "return FCI", 1: "return FCP", 2: "return FMD", 3: "no response data"},
        mask=0x0C,
    ),
    p2("occurrence", {0: "first or only", 1: "last", 2: "next", 3: "previous"}, mask=0x03),
)
_SELECT_SWS = sws("6283 6284 6285 6A81 6A82 6A86 6A87 6985 6999")


def _select(
    mode: int | None,
    data: c.Construct | None,
    nc: tuple[int, int] | None,
    vectors: tuple[Vector, ...],
) -> CommandSpec:
    return CommandSpec(
        "SELECT",
        0xA4,
        f"{CLAUSE} §11.1.1 (2005 Tables 39, 40)",
        variant=SELECT_MODES[mode] if mode is not None else "P1 undefined",
        p1=mode,
        fields=(
            (_SESSION, *_SELECT_P2)
            if mode == 0x04
            else (p1("mode", hex=True), _SESSION, *_SELECT_P2)
            if mode is None
            else _SELECT_P2
        ),
        data=data,
        nc=nc,
        le=Le.OPTIONAL,
        response=FCI,
        sws=_SELECT_SWS,
        summary=_select_summary,
        response_summary=_fci_summary,
        fallback=mode is None,
        vectors=vectors,
    )


SELECT_SPECS = (
    _select(
        0x00,
        FID,
        (0, 2),
        (
            Vector(
                "00A40004023F00",
                "SELECT FID 3F00, return FCP",
                {
                    "params": {"response": "return FCP", "occurrence": "first or only"},
                    "data": "3F00",
                },
                response="621D8202782183023F00A5038001718A01058B032F0601C6069001408301019000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): FCP template ["
                    "file descriptor 7821, file identifier 3F00, proprietary information "
                    "[80 71], life cycle status operational, activated, security attributes, "
                    "referenced 2F0601, PIN status template [PS_DO 40, key reference 01]]"
                ),
                response_expect={
                    "data": [
                        {
                            "tag": "62",
                            "name": "FCP template",
                            "children": [
                                {
                                    "tag": "82",
                                    "decoded": {
                                        "type": "DF",
                                        "shareable": True,
                                        "data_coding": "21",
                                    },
                                },
                                {"tag": "83", "name": "file identifier", "value": "3F00"},
                                {"tag": "A5", "children": [{"tag": "80", "value": "71"}]},
                                {"tag": "8A", "decoded": "operational, activated"},
                                {"tag": "8B", "value": "2F0601"},
                                {"tag": "C6", "children": [{"tag": "90"}, {"tag": "83"}]},
                            ],
                        }
                    ]
                },
                source="MF FCP coded per ETSI TS 102 221 §11.1.1.3",
            ),
            Vector("00A4000C", "SELECT MF, no response data", {"nc": 0, "data": None}),
        ),
    ),
    _select(
        0x01,
        FID,
        (2, 2),
        (Vector("00A4010C027F10", "SELECT child DF 7F10, no response data"),),
    ),
    _select(
        0x02,
        FID,
        (2, 2),
        (
            Vector(
                "00A40204022FE200",
                "SELECT EF under the current DF 2FE2, return FCP, Ne 256",
                {"ne": 256, "case": "4S"},
                response="62178202412183022FE28A01058B032F06038002000A8801109000",
                response_expect={
                    "data": [
                        {
                            "tag": "62",
                            "children": [
                                {
                                    "tag": "82",
                                    "decoded": {
                                        "type": "working EF",
                                        "structure": "transparent",
                                        "shareable": True,
                                    },
                                },
                                {"tag": "83", "value": "2FE2"},
                                {"tag": "8A"},
                                {"tag": "8B"},
                                {"tag": "80", "decoded": 10},
                                {"tag": "88", "decoded": 2},
                            ],
                        }
                    ]
                },
                source="EF.ICCID FCP coded per ETSI TS 102 221 §11.1.1.3",
            ),
            Vector(
                "00A40204026F4000",
                response="62148205422100260A83026F408A01058002017C88009000",
                response_expect={
                    "data": [
                        {
                            "tag": "62",
                            "children": [
                                {
                                    "tag": "82",
                                    "decoded": {
                                        "structure": "linear fixed",
                                        "record_size": 38,
                                        "records": 10,
                                    },
                                },
                                {"tag": "83"},
                                {"tag": "8A"},
                                {"tag": "80", "decoded": 380},
                                {"tag": "88", "decoded": "none"},
                            ],
                        }
                    ]
                },
                source="a linear fixed EF coded per ETSI TS 102 221 §11.1.1.4.3",
            ),
        ),
    ),
    _select(0x03, None, None, (Vector("00A4030C", "SELECT parent DF, no response data"),)),
    _select(
        0x04,
        c.GreedyBytes,
        (0, 16),
        (
            Vector(
                "00A4040C07A0000000871002",
                "SELECT by DF name A0000000871002, no response data",
                {"params": {"response": "no response data"}, "data": "A0000000871002"},
                source="the USIM AID prefix of ETSI TS 101 220 Annex E",
            ),
            Vector(
                "00A4040009F043415244454D550200",
                "SELECT by DF name F043415244454D5502, return FCI, Ne 256",
                response="6F0B8409F043415244454D55029000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): "
                    "FCI template [DF name F043415244454D5502]"
                ),
                source="the emulator selecting the sample echo applet",
            ),
            Vector(
                "00A4040E05F043415244",
                "SELECT by DF name F043415244, next occurrence, no response data",
                {"params": {"occurrence": "next"}},
                response="6A82",
                response_expect={"sw": "6A82", "sw_meaning": "File or application not found"},
            ),
            Vector(
                "00A4044C07A0000000871002",
                "SELECT by DF name A0000000871002, no response data, "
                "terminate the application session",
                source="ETSI TS 102 221 §11.1.1.2 (P2 b7)",
            ),
        ),
    ),
    _select(
        0x08,
        PATH,
        (2, 254),
        (
            Vector(
                "00A40804047FFF6F07",
                "SELECT path from the MF 7FFF/6F07, return FCP",
                {"data": ["7FFF", "6F07"]},
            ),
        ),
    ),
    _select(
        0x09,
        PATH,
        (2, 254),
        (Vector("00A4090C026F07", "SELECT path from the current DF 6F07, no response data"),),
    ),
    _select(
        None,
        c.GreedyBytes,
        (0, 255),
        (Vector("00A4070C", "SELECT P1 07 (RFU), no response data", {"params": {"mode": "07"}}),),
    ),
)

_CHANNEL_SWS = sws("6A81 6A86 6985")


def _open_summary(d: Decoded) -> str:
    ch = d.params["channel"]
    target = f"channel {ch}" if ch else "a channel the card assigns"
    return f"MANAGE CHANNEL open {target}" + _le(d)


def _close_summary(d: Decoded) -> str:
    ch = d.params["channel"]
    return f"MANAGE CHANNEL close channel {ch}" if ch else "MANAGE CHANNEL close this channel"


MANAGE_CHANNEL_SPECS = (
    CommandSpec(
        "MANAGE CHANNEL",
        0x70,
        f"{CLAUSE} §11.1.2",
        variant="open",
        p1=0x00,
        fields=(p2("channel", lo=0, hi=19),),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.Struct("channel" / c.Int8ub),
        sws=_CHANNEL_SWS,
        summary=_open_summary,
        vectors=(
            Vector(
                "0070000001",
                "MANAGE CHANNEL open a channel the card assigns, Ne 1",
                response="019000",
                response_expect={"data": {"channel": 1}},
            ),
            Vector("00700002", "MANAGE CHANNEL open channel 2"),
        ),
    ),
    CommandSpec(
        "MANAGE CHANNEL",
        0x70,
        f"{CLAUSE} §11.1.2",
        variant="close",
        p1=0x80,
        # P2 00 closes the channel the CLA byte names (as the runtime does).
        fields=(p2("channel", lo=0, hi=19),),
        sws=_CHANNEL_SWS,
        summary=_close_summary,
        vectors=(
            Vector("01708001", "MANAGE CHANNEL close channel 1", {"channel": 1}),
            Vector("01708000", "MANAGE CHANNEL close this channel"),
        ),
    ),
    CommandSpec(
        "MANAGE CHANNEL",
        0x70,
        f"{CLAUSE} §11.1.2",
        variant="P1 undefined",
        fields=(p1("function", hex=True), p2("channel")),
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        sws=_CHANNEL_SWS,
        fallback=True,
        vectors=(Vector("00704001", expect={"params": {"function": "40", "channel": 1}}),),
    ),
)

# -- Data unit handling (§11.2) -----------------------------------------------------------

_READ_SWS = sws("6281 6282 6981 6982 6986 6A81 6A82 6A86")
_WRITE_SWS = sws("63Cx 6581 6981 6982 6986 6A81 6A82 6A84 6A86")


def _odd_file(word: int) -> str:
    """P1-P2 of the odd-INS data unit commands (§11.2.2): current EF, SFI or FID."""
    if word == 0:
        return "current EF"
    if word & 0xFFE0 == 0:
        return f"SFI {word & 0x1F:02X}"
    return f"EF {word:04X}"


def _odd_offset(data: Any) -> str:
    if isinstance(data, list):
        e = find_entry(data, 0x54)
        if e is not None and isinstance(e.get("decoded"), int):
            return f"offset 0x{e['decoded']:04X}"
    return "no offset"


def _binary_specs(
    name: str,
    ins: int,
    clause: str,
    *,
    data: c.Construct | None,
    le: Le,
    response: c.Construct | None,
    sws_: tuple[Any, ...],
    vectors: tuple[tuple[Vector, ...], tuple[Vector, ...]],
    tail: str,
    nc: tuple[int, int] | None = None,
) -> tuple[CommandSpec, CommandSpec]:
    """The offset form (P1 b8 = 0) and the SFI form (P1 = 100x xxxx) of a command."""
    common: dict[str, Any] = dict(data=data, nc=nc, le=le, response=response, sws=sws_)
    return (
        CommandSpec(
            name,
            ins,
            clause,
            variant="offset",
            match=(0x8000, 0x0000),
            fields=(p1p2("offset", mask=0x7FFF),),
            summary=f"{name} offset 0x{{offset:04X}}{tail}",
            vectors=vectors[0],
            **common,
        ),
        CommandSpec(
            name,
            ins,
            clause,
            variant="SFI",
            match=(0x8000, 0x8000),
            fields=(p1("sfi", mask=0x1F, lo=1, hi=30), p2("offset")),
            summary=f"{name} SFI {{sfi:02X}}, offset 0x{{offset:02X}}{tail}",
            vectors=vectors[1],
            **common,
        ),
    )


def _odd_binary(
    name: str,
    ins: int,
    clause: str,
    *,
    data: BerTlv,
    le: Le,
    response: c.Construct | None,
    sws_: tuple[Any, ...],
    vectors: tuple[Vector, ...],
) -> CommandSpec:
    def summary(d: Decoded) -> str:
        word = int(d.params["file"])
        extra = ""
        if isinstance(d.data, list):
            e = find_entry(d.data, 0x53)
            if e is not None:
                extra = f", {count_bytes(len(e.get('value', b'')))}"
        return f"{name} {_odd_file(word)}, {_odd_offset(d.data)}{extra}{_le(d)}"

    return CommandSpec(
        name,
        ins,
        clause,
        variant="odd INS",
        fields=(p1p2("file", hex=True),),
        data=data,
        le=le,
        response=response,
        sws=sws_,
        summary=summary,
        vectors=vectors,
    )


BINARY_SPECS = (
    *_binary_specs(
        "READ BINARY",
        0xB0,
        f"{CLAUSE} §11.2.3",
        data=None,
        le=Le.REQUIRED,
        response=c.GreedyBytes,
        sws_=_READ_SWS,
        tail="{le}",
        vectors=(
            (
                Vector(
                    "00B000000A",
                    "READ BINARY offset 0x0000, Ne 10",
                    {"params": {"offset": 0}, "ne": 10},
                    response="989421436587092143659000",
                    response_expect={"data": "98942143658709214365", "nr": 10},
                ),
                Vector(
                    "00B07FFF00",
                    "READ BINARY offset 0x7FFF, Ne 256",
                    response="6B00",
                    response_expect={"sw": "6B00"},
                ),
            ),
            (
                Vector(
                    "00B0820000",
                    "READ BINARY SFI 02, offset 0x00, Ne 256",
                    {"params": {"sfi": 2, "offset": 0}},
                ),
                Vector(
                    "00B09E0110",
                    "READ BINARY SFI 1E, offset 0x01, Ne 16",
                    response="6282",
                    response_summary=(
                        "6282 (Warning: end of file or record reached before reading Ne bytes)"
                    ),
                ),
            ),
        ),
    ),
    _odd_binary(
        "READ BINARY",
        0xB1,
        f"{CLAUSE} §11.2.3",
        data=BerTlv(OFFSET_DO, required=(0x54,), max_items=0),
        le=Le.REQUIRED,
        response=BerTlv({0x53: TagInfo("discretionary data")}),
        sws_=_READ_SWS,
        vectors=(
            Vector(
                "00B12FE20354010000",
                "READ BINARY EF 2FE2, offset 0x0000, Ne 256",
                {
                    "params": {"file": "2FE2"},
                    "data": [{"tag": "54", "name": "offset", "decoded": 0}],
                },
                response="530A989421436587092143659000",
                response_expect={"data": [{"tag": "53", "value": "98942143658709214365"}]},
            ),
            Vector("00B1000204540200FF00", "READ BINARY SFI 02, offset 0x00FF, Ne 256"),
        ),
    ),
    *_binary_specs(
        "UPDATE BINARY",
        0xD6,
        f"{CLAUSE} §11.2.5",
        data=c.GreedyBytes,
        le=Le.ABSENT,
        response=None,
        sws_=_WRITE_SWS,
        tail=", {bytes}",
        vectors=(
            (
                Vector(
                    "00D600100401020304",
                    "UPDATE BINARY offset 0x0010, 4 bytes",
                    {"data": "01020304", "nc": 4},
                    response="9000",
                ),
            ),
            (Vector("00D6850002AABB", "UPDATE BINARY SFI 05, offset 0x00, 2 bytes"),),
        ),
    ),
    _odd_binary(
        "UPDATE BINARY",
        0xD7,
        f"{CLAUSE} §11.2.5",
        data=BerTlv(DISCRETIONARY, required=(0x54, 0x53), max_items=0),
        le=Le.ABSENT,
        response=None,
        sws_=_WRITE_SWS,
        vectors=(
            Vector(
                "00D7000008540200105302AABB",
                "UPDATE BINARY current EF, offset 0x0010, 2 bytes",
                {"data": [{"tag": "54", "decoded": 16}, {"tag": "53", "value": "AABB"}]},
            ),
        ),
    ),
    *_binary_specs(
        "WRITE BINARY",
        0xD0,
        f"{CLAUSE} §11.2.4",
        data=c.GreedyBytes,
        le=Le.ABSENT,
        response=None,
        sws_=_WRITE_SWS,
        tail=", {bytes}",
        vectors=(
            (Vector("00D00000021122", "WRITE BINARY offset 0x0000, 2 bytes"),),
            (Vector("00D081FF021122", "WRITE BINARY SFI 01, offset 0xFF, 2 bytes"),),
        ),
    ),
    _odd_binary(
        "WRITE BINARY",
        0xD1,
        f"{CLAUSE} §11.2.4",
        data=BerTlv(DISCRETIONARY, required=(0x54, 0x53), max_items=0),
        le=Le.ABSENT,
        response=None,
        sws_=_WRITE_SWS,
        vectors=(
            Vector("00D16F07085402000053021122", "WRITE BINARY EF 6F07, offset 0x0000, 2 bytes"),
        ),
    ),
    *_binary_specs(
        "ERASE BINARY",
        0x0E,
        f"{CLAUSE} §11.2.7",
        # Optional data: the offset of the first data unit not to erase.
        data=c.GreedyBytes,
        nc=(0, 2),
        le=Le.ABSENT,
        response=None,
        sws_=_WRITE_SWS,
        tail="",
        vectors=(
            (Vector("000E0010", "ERASE BINARY offset 0x0010", {"nc": 0}),),
            (Vector("000E8300020020", "ERASE BINARY SFI 03, offset 0x00"),),
        ),
    ),
)

# -- Record handling (§11.3) ----------------------------------------------------------------

_OCCURRENCES = {
    0: "first occurrence",
    1: "last occurrence",
    2: "next occurrence",
    3: "previous occurrence",
}
_READ_RECORD_MODES = {
    **_OCCURRENCES,
    4: "record P1",
    5: "records from P1 to the last",
    6: "records from the last to P1",
}
_WRITE_RECORD_MODES = {**_OCCURRENCES, 4: "record P1"}
_SEARCH_RECORD_MODES = {
    **_OCCURRENCES,
    # As ETSI TS 102 221 §11.1.7 codes them: simple search forward or backward
    # from record P1, and enhanced search (the data starts with a search indication).
    4: "forward from record P1",
    5: "backward from record P1",
    6: "enhanced search",
}

#: P1 (record number or identifier, 2005 §7.3.2) and P2 b8-b4 (SFI, 2005 Table 47).
_RECORD = p1("record", lo=0, hi=254)
_SFI_P2 = p2("sfi", mask=0xF8, lo=0, hi=30)
_RECORD_READ_SWS = sws("6281 6282 6981 6982 6986 6A81 6A82 6A83 6A86")
_RECORD_WRITE_SWS = sws("63Cx 6581 6981 6982 6986 6A81 6A82 6A83 6A84 6A85 6A86")


def _ef(d: Decoded) -> str:
    sfi = d.params["sfi"]
    return f"SFI {sfi:02X}" if sfi else "current EF"


def _record_target(d: Decoded) -> str:
    p = d.params
    mode, rec = int(p["mode"]), int(p["record"])
    if mode == 4:
        what = f"record {rec}" if rec else "current record"
    elif mode == 5:
        what = f"records {rec} to the last" if rec else "records from the current to the last"
    elif mode == 6:
        what = f"records from the last to {rec}" if rec else "records from the last to the current"
    elif mode in _OCCURRENCES:
        what = f"{p['mode']} of identifier {rec:02X}" if rec else f"{p['mode']} record"
    else:
        what = f"mode {mode} (RFU)"
    return f"{what}, {_ef(d)}"


def _record_spec(
    name: str,
    ins: int,
    clause: str,
    modes: dict[int, str],
    *,
    data: c.Construct | None,
    le: Le,
    response: c.Construct | None,
    sws_: tuple[Any, ...],
    vectors: tuple[Vector, ...],
) -> CommandSpec:
    def summary(d: Decoded) -> str:
        tail = f", {count_bytes(d.fields['nc'])}" if d.fields["nc"] else ""
        return f"{name} {_record_target(d)}{tail}{_le(d)}"

    return CommandSpec(
        name,
        ins,
        clause,
        fields=(_RECORD, _SFI_P2, p2("mode", modes, mask=0x07)),
        data=data,
        le=le,
        response=response,
        sws=sws_,
        summary=summary,
        vectors=vectors,
    )


def _search_summary(d: Decoded) -> str:
    p = d.params
    mode, rec = int(p["mode"]), int(p["record"])
    if mode in _OCCURRENCES:
        what = f"{p['mode']} of identifier {rec:02X}" if rec else f"{p['mode']}"
    elif mode in (4, 5):
        what = f"{p['mode']}".replace("P1", str(rec) if rec else "the current one")
    else:
        what = str(p["mode"])
    return f"SEARCH RECORD {what}, {_ef(d)}, {d.fields['nc']}-byte search data{_le(d)}"


def _records_found(d: Decoded) -> str:
    data = d.data
    if isinstance(data, bytes):
        return "records " + " ".join(str(b) for b in data)
    return _hx(data)


def _append_summary(d: Decoded) -> str:
    return f"APPEND RECORD to {_ef(d)}, {count_bytes(d.fields['nc'])}"


RECORD_SPECS = (
    _record_spec(
        "READ RECORD",
        0xB2,
        f"{CLAUSE} §11.3.3 (2005 Tables 47-49)",
        _READ_RECORD_MODES,
        data=None,
        le=Le.REQUIRED,
        response=c.GreedyBytes,
        sws_=_RECORD_READ_SWS,
        vectors=(
            Vector(
                "00B2010C1C",
                "READ RECORD record 1, SFI 01, Ne 28",
                {"params": {"record": 1, "sfi": 1, "mode": "record P1"}},
            ),
            Vector("00B2000400", "READ RECORD current record, current EF, Ne 256"),
            Vector("00B2020500", "READ RECORD records 2 to the last, current EF, Ne 256"),
            Vector(
                "00B2000200",
                "READ RECORD next occurrence record, current EF, Ne 256",
                response="6A83",
                response_summary="6A83 (Record not found)",
            ),
            Vector(
                "00B2070100",
                "READ RECORD last occurrence of identifier 07, current EF, Ne 256",
            ),
        ),
    ),
    _record_spec(
        "UPDATE RECORD",
        0xDC,
        f"{CLAUSE} §11.3.5",
        _WRITE_RECORD_MODES,
        data=c.GreedyBytes,
        le=Le.ABSENT,
        response=None,
        sws_=_RECORD_WRITE_SWS,
        vectors=(
            Vector(
                "00DC0104050102030405",
                "UPDATE RECORD record 1, current EF, 5 bytes",
                {"data": "0102030405"},
            ),
            Vector("00DC0002021122", "UPDATE RECORD next occurrence record, current EF, 2 bytes"),
        ),
    ),
    _record_spec(
        "WRITE RECORD",
        0xD2,
        f"{CLAUSE} §11.3.4",
        _WRITE_RECORD_MODES,
        data=c.GreedyBytes,
        le=Le.ABSENT,
        response=None,
        sws_=_RECORD_WRITE_SWS,
        vectors=(Vector("00D2031402AABB", "WRITE RECORD record 3, SFI 02, 2 bytes"),),
    ),
    CommandSpec(
        "APPEND RECORD",
        0xE2,
        f"{CLAUSE} §11.3.6 (2005 Table 56)",
        p1=0x00,
        match=(0x0007, 0x0000),
        fields=(_SFI_P2,),
        data=c.GreedyBytes,
        sws=_RECORD_WRITE_SWS,
        summary=_append_summary,
        vectors=(
            Vector("00E2001803010203", "APPEND RECORD to SFI 03, 3 bytes", {"params": {"sfi": 3}}),
            Vector(
                "00E2000004AABBCCDD",
                "APPEND RECORD to current EF, 4 bytes",
                response="6A84",
                response_expect={"sw": "6A84", "sw_meaning": "Not enough memory space in the file"},
            ),
        ),
    ),
    CommandSpec(
        "SEARCH RECORD",
        0xA2,
        f"{CLAUSE} §11.3.7",
        fields=(_RECORD, _SFI_P2, p2("mode", _SEARCH_RECORD_MODES, mask=0x07)),
        data=c.GreedyBytes,
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        sws=_RECORD_READ_SWS,
        summary=_search_summary,
        response_summary=_records_found,
        vectors=(
            Vector(
                "00A2010C023F0000",
                "SEARCH RECORD forward from record 1, SFI 01, 2-byte search data, Ne 256",
                response="01039000",
                response_summary="9000 (Normal processing: no further qualification): records 1 3",
            ),
        ),
    ),
)

# -- Data object handling (§11.4) ------------------------------------------------------------

_GET_DATA_SWS = sws("6281 6282 6981 6982 6985 6A81 6A82 6A88")
_PUT_DATA_SWS = sws("63Cx 6581 6981 6982 6985 6A80 6A81 6A84 6A85 6A88")
_TAG_LIST = {
    0x5C: TagInfo("tag list", size=(1, 6)),
    0x4D: TagInfo("extended header list", size=(0, 8)),
}
#: Data objects of any kind: BER-TLV when they parse, else the bytes.
_ANY_DATA = c.Select(BerTlv(open=True), c.GreedyBytes)


def tag_target(word: int) -> str:
    """What P1-P2 of even-INS GET/PUT DATA names (2005 Table 62)."""
    if 0x0040 <= word <= 0x00FF:
        return f"tag {word:02X}"
    if 0x0100 <= word <= 0x01FF:
        return f"proprietary data {word:04X}"
    if 0x0200 <= word <= 0x02FF:
        return f"SIMPLE-TLV tag {word & 0xFF:02X}"
    if word >= 0x4000:
        return f"tag {word:04X}"
    return f"P1-P2 {word:04X}"


def structure_target(word: int) -> str:
    """What P1-P2 of odd-INS GET/PUT DATA names: an EF, an SFI, the current EF or DF."""
    if word == 0x3FFF:
        return "current DF"
    return _odd_file(word)


def _get_data_summary(d: Decoded) -> str:
    return f"GET DATA {tag_target(int(d.params['tag']))}{_le(d)}"


def _put_data_summary(d: Decoded) -> str:
    return f"PUT DATA {tag_target(int(d.params['tag']))}, {count_bytes(d.fields['nc'])}"


def _odd_do_summary(name: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        data = d.data
        text = tlv_summary(data) if isinstance(data, list) else _hx(data)
        return f"{name} {structure_target(int(d.params['file']))}, {text}{_le(d)}"

    return summary


DATA_OBJECT_SPECS = (
    CommandSpec(
        "GET DATA",
        0xCA,
        f"{CLAUSE} §11.4 (2005 §7.4.2, Table 62)",
        fields=(p1p2("tag", hex=True),),
        le=Le.REQUIRED,
        response=_ANY_DATA,
        sws=_GET_DATA_SWS,
        summary=_get_data_summary,
        vectors=(
            Vector(
                "00CA006E00",
                "GET DATA tag 6E, Ne 256",
                {"params": {"tag": "006E"}},
                response="6E0A4F08D2760001240103049000",
                response_expect={
                    "data": [
                        {"tag": "6E", "children": [{"tag": "4F", "value": "D276000124010304"}]}
                    ]
                },
                source="OpenPGP card application related data (OpenPGP card 3.4 §4.4.1)",
            ),
            Vector("00CA5F5200", "GET DATA tag 5F52, Ne 256"),
            Vector("00CA010100", "GET DATA proprietary data 0101, Ne 256"),
        ),
    ),
    CommandSpec(
        "GET DATA",
        0xCB,
        f"{CLAUSE} §11.4 (2005 §7.4.2, Table 62)",
        variant="odd INS",
        fields=(p1p2("file", hex=True),),
        data=BerTlv(_TAG_LIST, required=(0x5C,), max_items=0),
        le=Le.REQUIRED,
        response=_ANY_DATA,
        sws=_GET_DATA_SWS,
        summary=_odd_do_summary("GET DATA"),
        vectors=(
            Vector(
                "00CB3FFF055C035FC10200",
                "GET DATA current DF, tag list 5FC102, Ne 256",
                {"data": [{"tag": "5C", "name": "tag list", "value": "5FC102"}]},
                response="53030102039000",
                source="PIV GET DATA of the CHUID (NIST SP 800-73-4 Part 2 §3.1.2)",
            ),
        ),
    ),
    CommandSpec(
        "PUT DATA",
        0xDA,
        f"{CLAUSE} §11.4 (2005 §7.4.3, Table 64)",
        fields=(p1p2("tag", hex=True),),
        data=c.GreedyBytes,
        sws=_PUT_DATA_SWS,
        summary=_put_data_summary,
        vectors=(Vector("00DA5F500468747470", "PUT DATA tag 5F50, 4 bytes", {"data": "68747470"}),),
    ),
    CommandSpec(
        "PUT DATA",
        0xDB,
        f"{CLAUSE} §11.4 (2005 §7.4.3, Table 64)",
        variant="odd INS",
        fields=(p1p2("file", hex=True),),
        data=BerTlv(
            {**_TAG_LIST, 0x53: TagInfo("discretionary data", size=(0, 16))},
            required=(0x5C, 0x53),
            max_items=0,
        ),
        sws=_PUT_DATA_SWS,
        summary=_odd_do_summary("PUT DATA"),
        vectors=(
            Vector(
                "00DB3FFF0A5C035FC1055303010203",
                "PUT DATA current DF, tag list 5FC105, discretionary data 010203",
                source="PIV PUT DATA (NIST SP 800-73-4 Part 2 §3.3.2)",
            ),
        ),
    ),
)

# -- Basic security handling (§11.5) ---------------------------------------------------------

_VERIFY_SWS = sws("6286 6300 63Cx 6581 6982 6983 6984 6A81 6A82 6A86 6A88")
_AUTH_SWS = sws("6300 63Cx 6581 6982 6983 6984 6985 6A80 6A81 6A82 6A86 6A88")


def _verify_summary(d: Decoded) -> str:
    if int(d.params["function"]) == 0xFF:
        return f"VERIFY reset the verification status, {_ref(d)}"
    if not d.fields["nc"]:
        return f"VERIFY status query, {_ref(d)}"
    return f"VERIFY {_ref(d)}, {count_bytes(d.fields['nc'])} of verification data"


def _p1_summary(name: str, key: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        text = f"{name} {_ref(d)}, {d.params[key]}"
        return text + (f" ({count_bytes(d.fields['nc'])})" if d.fields["nc"] else "")

    return summary


def _auth_summary(name: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        alg = d.params["algorithm"]
        text = f"{name} {_ref(d)}"
        if alg:
            text += f", algorithm {alg}"
        if d.fields["nc"]:
            data = d.data
            body = tlv_summary(data) if isinstance(data, list) else count_bytes(d.fields["nc"])
            text += f", {body}"
        return text + _le(d)

    return summary


_DYNAMIC_AUTH_TAGS = {
    0x80: TagInfo("witness"),
    0x81: TagInfo("challenge"),
    0x82: TagInfo("response"),
    0x83: TagInfo("committed challenge"),
    0x84: TagInfo("authentication code"),
    0x85: TagInfo("exponential"),
}
_DYNAMIC_AUTH = BerTlv(
    {0x7C: TagInfo("dynamic authentication data", children=_DYNAMIC_AUTH_TAGS)},
    required=(0x7C,),
    max_items=0,
)

SECURITY_SPECS = (
    CommandSpec(
        "VERIFY",
        0x20,
        f"{CLAUSE} §11.5.6 (2005 Tables 65, 72)",
        fields=(
            # P1 FF (reset the verification status) is the 2013 edition's, as PIV uses it.
            p1("function", {0x00: "verify", 0xFF: "reset the verification status"}),
            *REFERENCE,
        ),
        data=c.GreedyBytes,
        nc=(0, 65535),
        sws=_VERIFY_SWS,
        summary=_verify_summary,
        doc="Empty data asks whether verification is needed: 9000, or 63Cx with x tries left.",
        vectors=(
            Vector(
                "002000010431323334",
                "VERIFY global reference 01, 4 bytes of verification data",
                {"params": {"function": "verify", "scope": "global", "reference": 1}, "nc": 4},
                response="9000",
                source="the emulator's sample purse",
            ),
            Vector(
                "00200001",
                "VERIFY status query, global reference 01",
                response="63C2",
                response_summary="63C2 (Verification failed, 2 tries left)",
                response_expect={"retries": 2},
                source="the emulator's sample purse",
            ),
            Vector(
                "00200080083132333435363738",
                "VERIFY specific reference 00, 8 bytes of verification data",
                response="6983",
            ),
            Vector("0020FF80", "VERIFY reset the verification status, specific reference 00"),
        ),
    ),
    CommandSpec(
        "CHANGE REFERENCE DATA",
        0x24,
        f"{CLAUSE} §11.5.7",
        fields=(
            p1("content", {0: "old and new reference data", 1: "new reference data"}),
            *REFERENCE,
        ),
        data=c.GreedyBytes,
        sws=_VERIFY_SWS,
        summary=_p1_summary("CHANGE REFERENCE DATA", "content"),
        vectors=(
            Vector(
                "00240001083132333435363738",
                "CHANGE REFERENCE DATA global reference 01, old and new reference data (8 bytes)",
                response="63C1",
                response_expect={"retries": 1},
            ),
        ),
    ),
    CommandSpec(
        "RESET RETRY COUNTER",
        0x2C,
        f"{CLAUSE} §11.5.10",
        fields=(
            p1(
                "content",
                {
                    0: "resetting code and new reference data",
                    1: "resetting code",
                    2: "new reference data",
                    3: "no data",
                },
            ),
            *REFERENCE,
        ),
        data=c.GreedyBytes,
        nc=(0, 65535),
        sws=_VERIFY_SWS,
        summary=_p1_summary("RESET RETRY COUNTER", "content"),
        vectors=(
            Vector(
                "002C00811031323334353637383132333435363738",
                "RESET RETRY COUNTER specific reference 01, resetting code and new reference data "
                "(16 bytes)",
            ),
            Vector("002C0381", "RESET RETRY COUNTER specific reference 01, no data"),
        ),
    ),
    CommandSpec(
        "ENABLE VERIFICATION REQUIREMENT",
        0x28,
        f"{CLAUSE} §11.5.8",
        fields=(
            p1("content", {0: "with verification data", 1: "without verification data"}),
            *REFERENCE,
        ),
        data=c.GreedyBytes,
        nc=(0, 65535),
        sws=_VERIFY_SWS,
        summary=_p1_summary("ENABLE VERIFICATION REQUIREMENT", "content"),
        vectors=(
            Vector(
                "002800010431323334",
                "ENABLE VERIFICATION REQUIREMENT global reference 01, "
                "with verification data (4 bytes)",
            ),
        ),
    ),
    CommandSpec(
        "DISABLE VERIFICATION REQUIREMENT",
        0x26,
        f"{CLAUSE} §11.5.9",
        fields=(
            p1("content", {0: "with verification data", 1: "without verification data"}),
            *REFERENCE,
        ),
        data=c.GreedyBytes,
        nc=(0, 65535),
        sws=_VERIFY_SWS,
        summary=_p1_summary("DISABLE VERIFICATION REQUIREMENT", "content"),
        vectors=(
            Vector(
                "00260101",
                "DISABLE VERIFICATION REQUIREMENT global reference 01, without verification data",
            ),
        ),
    ),
    CommandSpec(
        "GET CHALLENGE",
        0x84,
        f"{CLAUSE} §11.5.3",
        p2=0x00,
        fields=(ALGORITHM,),
        le=Le.REQUIRED,
        response=c.GreedyBytes,
        sws=sws("6A81 6A86"),
        summary="GET CHALLENGE{le}",
        vectors=(
            Vector(
                "0084000008",
                "GET CHALLENGE, Ne 8",
                response="01020304050607089000",
                response_expect={"data": "0102030405060708", "nr": 8},
            ),
        ),
    ),
    CommandSpec(
        "INTERNAL AUTHENTICATE",
        0x88,
        f"{CLAUSE} §11.5.2",
        fields=(ALGORITHM, *REFERENCE),
        data=c.GreedyBytes,
        le=Le.REQUIRED,
        response=c.GreedyBytes,
        sws=_AUTH_SWS,
        summary=_auth_summary("INTERNAL AUTHENTICATE"),
        vectors=(
            Vector(
                "0088000108010203040506070800",
                "INTERNAL AUTHENTICATE global reference 01, 8 bytes, Ne 256",
            ),
        ),
    ),
    CommandSpec(
        "EXTERNAL AUTHENTICATE",
        0x82,
        f"{CLAUSE} §11.5.4",
        fields=(ALGORITHM, *REFERENCE),
        data=c.GreedyBytes,
        nc=(0, 65535),
        # MUTUAL AUTHENTICATE shares the INS and expects response data.
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        sws=_AUTH_SWS,
        summary=_auth_summary("EXTERNAL AUTHENTICATE"),
        vectors=(
            Vector(
                "00820381081122334455667788",
                "EXTERNAL AUTHENTICATE specific reference 01, algorithm 03, 8 bytes",
                {"params": {"algorithm": "03"}},
                response="6300",
            ),
        ),
    ),
    *(
        CommandSpec(
            "GENERAL AUTHENTICATE",
            ins,
            f"{CLAUSE} §11.5.5",
            variant=variant,
            fields=(ALGORITHM, *REFERENCE),
            data=_DYNAMIC_AUTH,
            le=Le.OPTIONAL,
            response=_DYNAMIC_AUTH,
            sws=_AUTH_SWS,
            summary=_auth_summary("GENERAL AUTHENTICATE"),
            vectors=vectors,
        )
        for ins, variant, vectors in (
            (
                0x86,
                "",
                (
                    Vector(
                        "00860000047C028100",
                        "GENERAL AUTHENTICATE no reference given, "
                        "dynamic authentication data [challenge]",
                    ),
                ),
            ),
            (
                0x87,
                "odd INS",
                (
                    Vector(
                        "0087079A047C02810000",
                        "GENERAL AUTHENTICATE specific reference 1A, algorithm 07, "
                        "dynamic authentication data [challenge], Ne 256",
                        {"params": {"algorithm": "07", "scope": "specific", "reference": 26}},
                        response="7C0A810800010203040506079000",
                        response_expect={
                            "data": [
                                {
                                    "tag": "7C",
                                    "children": [
                                        {
                                            "tag": "81",
                                            "name": "challenge",
                                            "value": "0001020304050607",
                                        }
                                    ],
                                }
                            ]
                        },
                        source="PIV challenge request (NIST SP 800-73-4 Part 2 §3.2.4)",
                    ),
                ),
            ),
        )
    ),
)

# -- MANAGE SECURITY ENVIRONMENT (§11.5.11, 2005 Tables 77-79) ---------------------------------

CRT_TAGS = {
    0xA4: "AT (authentication)",
    0xA6: "KAT (key agreement)",
    0xAA: "HT (hash-code)",
    0xB4: "CCT (cryptographic checksum)",
    0xB6: "DST (digital signature)",
    0xB8: "CT (confidentiality)",
}

#: Control reference data objects inside a control reference template (the data of
#: MSE SET; ISO/IEC 7816-4 security environments, 2005 clause 6).
CRDO_TAGS = {
    0x80: TagInfo("cryptographic mechanism reference", size=(1, 2)),
    0x81: TagInfo("file reference", size=(2, 4)),
    0x82: TagInfo("DF name", size=(1, 16)),
    0x83: TagInfo("key reference (secret or public key)", size=(1, 2)),
    0x84: TagInfo("key reference (session or private key)", size=(1, 2)),
    0x87: TagInfo("initial value", size=(8, 16)),
    0x90: TagInfo("hash-code", size=(20, 32)),
    0x91: TagInfo("random number", size=(8, 8)),
    0x92: TagInfo("time stamp", size=(4, 8)),
    0x93: TagInfo("DSI counter", size=(1, 4)),
    0x94: TagInfo("challenge or key derivation data", size=(8, 16)),
    0x95: TagInfo("usage qualifier", size=(1, 1)),
}

_MSE_SWS = sws("6600 6987 6988 6A80 6A86 6A88")
_MSE_USES = (
    ("verify", "verification, encipherment, external authentication, key agreement"),
    ("compute", "computation, decipherment, internal authentication, key agreement"),
    ("sm_response", "secure messaging in responses"),
    ("sm_command", "secure messaging in commands"),
)


def _mse_set_summary(d: Decoded) -> str:
    p = d.params
    uses = [text.split(",")[0] for key, text in _MSE_USES if p[key]]
    text = f"MANAGE SECURITY ENVIRONMENT SET {p['crt']}"
    if uses:
        text += f" for {' and '.join(uses)}"
    data = d.data
    if isinstance(data, list) and data:
        text += f": {tlv_summary(data)}"
    return text


MSE_SPECS = (
    CommandSpec(
        "MANAGE SECURITY ENVIRONMENT",
        0x22,
        f"{CLAUSE} §11.5.11 (2005 Tables 77-79)",
        variant="SET",
        match=(0x0F00, 0x0100),
        fields=(
            p1("verify", mask=0x80),
            p1("compute", mask=0x40),
            p1("sm_response", mask=0x20),
            p1("sm_command", mask=0x10),
            p2("crt", CRT_TAGS),
        ),
        data=BerTlv(CRDO_TAGS, max_items=3),
        nc=(0, 65535),
        sws=_MSE_SWS,
        summary=_mse_set_summary,
        vectors=(
            Vector(
                "002241B606800102840101",
                "MANAGE SECURITY ENVIRONMENT SET DST (digital signature) for computation: "
                "cryptographic mechanism reference 02, key reference (session or private key) 01",
                {"params": {"compute": 1, "verify": 0, "crt": "DST (digital signature)"}},
            ),
            Vector(
                "002281A403830101",
                "MANAGE SECURITY ENVIRONMENT SET AT (authentication) for verification: "
                "key reference (secret or public key) 01",
            ),
        ),
    ),
    *(
        CommandSpec(
            "MANAGE SECURITY ENVIRONMENT",
            0x22,
            f"{CLAUSE} §11.5.11 (2005 Tables 77-79)",
            variant=function,
            p1=p1_value,
            fields=(p2("seid"),),
            sws=_MSE_SWS,
            summary=f"MANAGE SECURITY ENVIRONMENT {function} SE {{seid}}",
            vectors=(
                Vector(f"0022{p1_value:02X}03", f"MANAGE SECURITY ENVIRONMENT {function} SE 3"),
            ),
        )
        for p1_value, function in ((0xF2, "STORE"), (0xF3, "RESTORE"), (0xF4, "ERASE"))
    ),
    CommandSpec(
        "MANAGE SECURITY ENVIRONMENT",
        0x22,
        f"{CLAUSE} §11.5.11 (2005 Tables 77-79)",
        variant="P1 undefined",
        fields=(p1("p1", hex=True), p2("p2", hex=True)),
        data=c.GreedyBytes,
        nc=(0, 65535),
        sws=_MSE_SWS,
        fallback=True,
        vectors=(Vector("0022F500", expect={"params": {"p1": "F5", "p2": "00"}}),),
    ),
)

# -- PERFORM SECURITY OPERATION (ISO/IEC 7816-8) -----------------------------------------------

#: Tags of the output (P1) and input (P2) data objects of PSO (ISO/IEC 7816-8).
PSO_TAGS: dict[int, TagInfo] = {
    0x80: TagInfo("plain value"),
    0x82: TagInfo("cryptogram (plain value BER-TLV)"),
    0x84: TagInfo("cryptogram"),
    0x86: TagInfo("padding indicator and cryptogram"),
    0x8E: TagInfo("cryptographic checksum", size=(4, 8)),
    0x90: TagInfo("hash-code", size=(20, 32)),
    0x9A: TagInfo("data to be signed"),
    0x9E: TagInfo("digital signature", size=(8, 64)),
    0xA2: TagInfo("cryptographic checksum verification template"),
    0xA8: TagInfo("digital signature verification template"),
    0xAC: TagInfo("digital signature input template"),
    0xBC: TagInfo("digital signature input template"),
    0xBE: TagInfo("certificate"),
}
_PSO_CLAUSE = "ISO/IEC 7816-8 PERFORM SECURITY OPERATION"
_PSO_SWS = sws("6300 6982 6985 6987 6988 6A80 6A86 6A88")
_PADDED = c.Struct("padding_indicator" / c.Int8ub, "cryptogram" / c.GreedyBytes)
_CERTIFICATE = c.Select(BerTlv({0x7F21: TagInfo("CV certificate")}, open=True), c.GreedyBytes)


def _pso_summary(d: Decoded) -> str:
    assert d.spec is not None
    text = f"PSO {d.spec.variant}"
    if d.fields["nc"]:
        data = d.data
        text += (
            f", {tlv_summary(data)}"
            if isinstance(data, list)
            else f", {count_bytes(d.fields['nc'])}"
        )
    return text + _le(d)


def _pso_generic_summary(d: Decoded) -> str:
    out_tag, in_tag = int(d.params["output"]), int(d.params["input"])
    out_name = PSO_TAGS[out_tag].name if out_tag in PSO_TAGS else f"{out_tag:02X}"
    in_name = PSO_TAGS[in_tag].name if in_tag in PSO_TAGS else f"{in_tag:02X}"
    return f"PSO output {out_name}, input {in_name}, {count_bytes(d.fields['nc'])}{_le(d)}"


def _pso(
    operation: str,
    word: int,
    data: c.Construct,
    le: Le,
    response: c.Construct | None,
    vector: Vector,
) -> CommandSpec:
    return CommandSpec(
        "PERFORM SECURITY OPERATION",
        0x2A,
        f"{_PSO_CLAUSE}: {operation}",
        variant=operation,
        match=(0xFFFF, word),
        data=data,
        le=le,
        response=response,
        sws=_PSO_SWS,
        summary=_pso_summary,
        vectors=(vector,),
    )


PSO_SPECS = (
    _pso(
        "COMPUTE DIGITAL SIGNATURE",
        0x9E9A,
        c.GreedyBytes,
        Le.REQUIRED,
        c.GreedyBytes,
        Vector(
            "002A9E9A20" + "00" * 32 + "00",
            "PSO COMPUTE DIGITAL SIGNATURE, 32 bytes, Ne 256",
            response="AA" * 64 + "9000",
            response_expect={"nr": 64},
        ),
    ),
    _pso(
        "HASH",
        0x9080,
        c.GreedyBytes,
        Le.OPTIONAL,
        c.GreedyBytes,
        Vector("002A9080050102030405", "PSO HASH, 5 bytes"),
    ),
    _pso(
        "HASH (template)",
        0x90A0,
        BerTlv(PSO_TAGS, max_items=2),
        Le.OPTIONAL,
        c.GreedyBytes,
        Vector("002A90A0078005010203040500", "PSO HASH (template), plain value 0102030405, Ne 256"),
    ),
    _pso(
        "VERIFY DIGITAL SIGNATURE",
        0x00A8,
        BerTlv(PSO_TAGS, max_items=3),
        Le.ABSENT,
        None,
        Vector(
            "002A00A80A9E080102030405060708",
            "PSO VERIFY DIGITAL SIGNATURE, digital signature 0102030405060708",
        ),
    ),
    _pso(
        "VERIFY CERTIFICATE",
        0x00BE,
        _CERTIFICATE,
        Le.ABSENT,
        None,
        Vector(
            "002A00BE097F2106420441424344",
            "PSO VERIFY CERTIFICATE, CV certificate [42 41424344]",
            response="6A80",
        ),
    ),
    _pso(
        "COMPUTE CRYPTOGRAPHIC CHECKSUM",
        0x8E80,
        c.GreedyBytes,
        Le.REQUIRED,
        c.GreedyBytes,
        Vector("002A8E80040102030408", "PSO COMPUTE CRYPTOGRAPHIC CHECKSUM, 4 bytes, Ne 8"),
    ),
    _pso(
        "VERIFY CRYPTOGRAPHIC CHECKSUM",
        0x00A2,
        BerTlv(PSO_TAGS, max_items=3),
        Le.ABSENT,
        None,
        Vector(
            "002A00A2108004010203048E081122334455667788",
            "PSO VERIFY CRYPTOGRAPHIC CHECKSUM, plain value 01020304, "
            "cryptographic checksum 1122334455667788",
        ),
    ),
    _pso(
        "ENCIPHER",
        0x8680,
        c.GreedyBytes,
        Le.REQUIRED,
        _PADDED,
        Vector(
            "002A8680040102030400",
            "PSO ENCIPHER, 4 bytes, Ne 256",
            response="00AABBCCDD9000",
            response_expect={"data": {"padding_indicator": 0, "cryptogram": "AABBCCDD"}},
        ),
    ),
    _pso(
        "DECIPHER",
        0x8086,
        _PADDED,
        Le.REQUIRED,
        c.GreedyBytes,
        Vector(
            "002A80860900010203040506070800",
            "PSO DECIPHER, 9 bytes, Ne 256",
            {"data": {"padding_indicator": 0, "cryptogram": "0102030405060708"}},
        ),
    ),
    CommandSpec(
        "PERFORM SECURITY OPERATION",
        0x2A,
        _PSO_CLAUSE,
        variant="P1-P2 undefined",
        fields=(p1("output", hex=True), p2("input", hex=True)),
        data=c.GreedyBytes,
        nc=(0, 65535),
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        sws=_PSO_SWS,
        summary=_pso_generic_summary,
        fallback=True,
        vectors=(
            Vector(
                "002A9E9C0401020304",
                "PSO output digital signature, input 9C, 4 bytes",
                {"params": {"output": "9E", "input": "9C"}},
            ),
        ),
    ),
)

# -- File and card life cycle (ISO/IEC 7816-9) -------------------------------------------------

_LIFE_SWS = sws("6283 6285 6581 6982 6985 6986 6A81 6A82 6A86")


def _file_summary(name: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        mode, data = int(d.params["mode"]), d.data
        if mode == 0 and not data:
            return f"{name} current file"
        return f"{name} {_select_target(mode, data)}"

    return summary


def _life(name: str, ins: int, clause: str, vector: Vector) -> CommandSpec:
    return CommandSpec(
        name,
        ins,
        clause,
        p2=0x00,
        fields=(p1("mode", SELECT_MODES),),
        data=c.GreedyBytes,
        nc=(0, 255),
        sws=_LIFE_SWS,
        summary=_file_summary(name),
        vectors=(vector,),
    )


LIFE_CYCLE_SPECS = (
    _life(
        "DEACTIVATE FILE",
        0x04,
        "ISO/IEC 7816-9:2017 DEACTIVATE FILE; ETSI TS 102 221 §11.1.14",
        Vector("00040000026F07", "DEACTIVATE FILE FID 6F07", {"data": "6F07"}),
    ),
    _life(
        "ACTIVATE FILE",
        0x44,
        "ISO/IEC 7816-9:2017 ACTIVATE FILE; ETSI TS 102 221 §11.1.15",
        Vector("00440000", "ACTIVATE FILE current file"),
    ),
    _life(
        "TERMINATE DF",
        0xE6,
        "ISO/IEC 7816-9:2017 TERMINATE DF",
        Vector("00E6040007A0000000871002", "TERMINATE DF by DF name A0000000871002"),
    ),
    _life(
        "TERMINATE EF",
        0xE8,
        "ISO/IEC 7816-9:2017 TERMINATE EF",
        Vector("00E80200026F07", "TERMINATE EF EF under the current DF 6F07"),
    ),
    CommandSpec(
        "TERMINATE CARD USAGE",
        0xFE,
        "ISO/IEC 7816-9:2017 TERMINATE CARD USAGE",
        p1=0x00,
        p2=0x00,
        sws=_LIFE_SWS,
        summary="TERMINATE CARD USAGE",
        vectors=(Vector("00FE0000", "TERMINATE CARD USAGE"),),
    ),
)

# -- Transmission handling (§11.6) -------------------------------------------------------------

TRANSMISSION_SPECS = (
    CommandSpec(
        "GET RESPONSE",
        0xC0,
        f"{CLAUSE} §11.6.1 (2005 §7.6.1)",
        p1=0x00,
        p2=0x00,
        le=Le.REQUIRED,
        response=c.GreedyBytes,
        sws=sws("6281 6A86 6A88"),
        summary="GET RESPONSE{le}",
        vectors=(
            Vector(
                "00C0000010",
                "GET RESPONSE, Ne 16",
                response="000102030405060708090A0B0C0D0E0F6110",
                response_expect={"available": 16, "nr": 16},
            ),
            Vector(
                "00C0000000",
                "GET RESPONSE, Ne 256",
                response="6C08",
                response_expect={"exact_ne": 8},
            ),
        ),
    ),
    CommandSpec(
        "ENVELOPE",
        0xC2,
        f"{CLAUSE} §11.6.2 (2005 §7.6.2)",
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        summary="ENVELOPE, {bytes}{le}",
        vectors=(Vector("00C20000050102030405", "ENVELOPE, 5 bytes"),),
    ),
    CommandSpec(
        "ENVELOPE",
        0xC3,
        f"{CLAUSE} §11.6.2 (2005 §7.6.2)",
        variant="odd INS",
        p1=0x00,
        p2=0x00,
        data=BerTlv(open=True),
        le=Le.OPTIONAL,
        response=_ANY_DATA,
        summary="ENVELOPE (BER-TLV), {bytes}{le}",
        vectors=(Vector("00C30000048002010200", "ENVELOPE (BER-TLV), 4 bytes, Ne 256"),),
    ),
)

SPECS: tuple[CommandSpec, ...] = (
    *SELECT_SPECS,
    *MANAGE_CHANNEL_SPECS,
    *BINARY_SPECS,
    *RECORD_SPECS,
    *DATA_OBJECT_SPECS,
    *SECURITY_SPECS,
    *MSE_SPECS,
    *PSO_SPECS,
    *LIFE_CYCLE_SPECS,
    *TRANSMISSION_SPECS,
)
