"""Seed 001's door-lock applet (`applets.doorlock`): GENERAL AUTHENTICATE, its request, GET DATA.

With the door-lock applet selected (AID F043415244454D55444C4B), on the lock's
SIM or a phone's (JP 6911303 B2, steps S102-S108, S206-S207):

- `00 86 <method> 00 7C {...}` GENERAL AUTHENTICATE: P1 the method (01 shared
  key, 02 certificates); `7C { 81 00 }` asks the lock's chip for a challenge,
  `7C { 81 RC, 5F20 lock }` asks a phone's chip to answer it, `7C { 5F20
  phone, 81 RP, 82 answer [, 7F21 certificate] }` gives the answer to the lock's
  chip to collate, `7C { 82 answer [, 7F21] }` the lock's own to the phone's chip.
- `80 D0 00 00 A2 { identifiers }`: the lock chip's signed download request (S206).
- `00 CA 00 E0` GET DATA: role, methods, identity, try limit, tries left, counter.

The AID repeats the applet's constant: this package imports no applet. The
vectors are the emulator's answers (the known-answer test's cards:
`tests/unit/test_doorlock_applet.py`, door key 00..0F, challenges 10..1F and 20..2F).
"""

from __future__ import annotations

from apdu_specs.constructs import BerTlv, TagInfo, ascii_text, find_entry
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Le, p1
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector
from apdu_specs.shapes import tlv_read

CLAUSE = "JP 6911303 B2 (seed 001)"
DOORLOCK = AppletContext("door-lock applet", (bytes.fromhex("F043415244454D55444C4B"),))
METHODS = {0x01: "shared key (AES-CMAC)", 0x02: "certificates (ECDSA P-256)"}

_IDS = {
    0x80: TagInfo("MAC address", size=(6, 6)),
    0x81: TagInfo("IMEI", decode=ascii_text),
    0x82: TagInfo("ICCID", decode=ascii_text),
    0x83: TagInfo("IMSI", decode=ascii_text),
    0x84: TagInfo("MSISDN", decode=ascii_text),
}
_AUTH = {
    0x7C: TagInfo(
        "dynamic authentication data (ISO/IEC 7816-4 §11.5.5)",
        children={
            0x81: TagInfo("challenge", size=(0, 16)),
            0x82: TagInfo("answer: AES-CMAC (16) or ECDSA r || s (64)", size=(16, 64)),
            0x5F20: TagInfo("identity", decode=ascii_text),
            0x7F21: TagInfo("CV certificate from the issuer"),
        },
    ),
}
_REQUEST = {
    0xE1: TagInfo(
        "download request",
        children={
            0x80: TagInfo("identifier combination (A-D)", size=(1, 1)),
            0xA1: TagInfo("the lock's identifiers", children=_IDS),
            0xA2: TagInfo("the phone's identifiers", children=_IDS),
            0x5F20: TagInfo("the lock's identity", decode=ascii_text),
            0x85: TagInfo("request counter", size=(4, 4)),
            0x5F37: TagInfo("ECDSA signature by the lock's chip", size=(64, 64)),
        },
    ),
}
_STATUS = {
    0xE0: TagInfo(
        "door-lock applet status",
        children={
            0x80: TagInfo("role (01 lock, 02 key)", size=(1, 1)),
            0x81: TagInfo("methods offered", size=(1, 1)),
            0x5F20: TagInfo("identity", decode=ascii_text),
            0x82: TagInfo("try limit", size=(1, 1)),
            0x86: TagInfo("tries left", size=(1, 1)),
            0x85: TagInfo("download request counter", size=(4, 4)),
            0x7F49: TagInfo("public key template"),
        },
    ),
}


def _what(d: Decoded) -> str:
    method = METHODS.get(d.raw[2], f"method {d.raw[2]:02X}")
    data = d.data
    template = find_entry(data, 0x7C) if isinstance(data, list) else None
    inner = template.get("children", []) if isinstance(template, dict) else []
    tags = {e.get("tag") for e in inner if isinstance(e, dict)}
    if tags == {0x81}:
        what = "a challenge, please (S102)"
    elif {0x81, 0x5F20} == tags:
        what = "the lock's challenge to answer (S103)"
    elif {0x81, 0x82} <= tags:
        what = "the phone's answer to collate (S106)"
    elif 0x82 in tags:
        what = "the lock's answer to check"
    else:
        what = ""
    return f"GENERAL AUTHENTICATE door lock, {method}" + (f": {what}" if what else "")


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "GENERAL AUTHENTICATE",
        0x86,
        f"{CLAUSE} S102-S108; ISO/IEC 7816-4 §11.5.5",
        variant="door-lock applet",
        p2=0x00,
        fields=(p1("method", METHODS),),
        data=BerTlv(_AUTH, max_items=1),
        le=Le.OPTIONAL,
        response=BerTlv(_AUTH, max_items=1),
        sws=sws("63CX 6700 6982 6983 6985 6A80 6A86"),
        summary=_what,
        context=DOORLOCK,
        doc="63Cx: no match, x tries left; 6983 locked out; 6985 no challenge outstanding.",
        vectors=(
            Vector(
                "00860100047C02810000",
                "GENERAL AUTHENTICATE door lock, shared key (AES-CMAC): a challenge, please (S102)",
                response="7C1B8110101112131415161718191A1B1C1D1E1F5F20064C4F434B2D319000",
                source="the lock's chip of the known-answer test (challenge 10..1F)",
            ),
            Vector(
                "00860100307C2E5F200750484F4E452D318110202122232425262728292A2B2C2D2E2F"
                "8210D8F6F80645ECA1BF80A050B66497860D00",
                "GENERAL AUTHENTICATE door lock, shared key (AES-CMAC): "
                "the phone's answer to collate (S106)",
                response="7C1282106241AC9981EDD069253AB18244834DFD9000",
                source="the known-answer test: the phone's CMAC, then the lock's",
            ),
            Vector(
                "00860200047C02810000",
                "GENERAL AUTHENTICATE door lock, certificates (ECDSA P-256): "
                "a challenge, please (S102)",
                response="63C3",
                source="the applet's refusal shape: a lock chip with 3 tries left",
            ),
        ),
    ),
    CommandSpec(
        "DOWNLOAD REQUEST",
        0xD0,
        f"{CLAUSE} S206-S207",
        variant="door-lock applet",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=BerTlv({0xA2: TagInfo("the phone's identifiers", children=_IDS)}, max_items=1),
        le=Le.OPTIONAL,
        response=BerTlv(_REQUEST, max_items=1),
        sws=sws("6985 6A80"),
        summary="DOWNLOAD REQUEST for the phone without the applet (S206)",
        context=DOORLOCK,
        doc="Only with a challenge outstanding; the signature covers E1's TLVs before 5F37.",
        vectors=(
            Vector(
                "80D0000005A203810131" + "00",
                "DOWNLOAD REQUEST for the phone without the applet (S206)",
                response="6985",
                source="the lock's chip with no presentation under way",
            ),
        ),
    ),
    tlv_read(
        "GET DATA",
        0xCA,
        f"{CLAUSE}; ISO/IEC 7816-4 §11.4",
        _STATUS,
        context=DOORLOCK,
        errors="6A88",
        cla=0x00,
        p2=0xE0,
        variant="door-lock applet",
        summary="GET DATA door-lock applet status",
        vectors=(
            Vector(
                "00CA00E000",
                "GET DATA door-lock applet status",
                response="E01B8001018101035F20064C4F434B2D31820105860105850400000000" + "9000",
                response_expect={"data": [{"tag": "E0"}]},
                source="the known-answer test's lock chip (public key left out here)",
            ),
        ),
    ),
)
