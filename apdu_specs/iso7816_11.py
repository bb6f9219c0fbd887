"""ISO/IEC 7816-11 biometric verification, as the match-on-card applet speaks it.

The commands are interindustry ones (VERIFY, GET DATA, PUT DATA); what this
module adds is their biometric reading when the match-on-card applet
(`applets.biometric`, AID F043415244454D55B1) is selected: the biometric data
template 7F2E with compact-card finger minutiae (ISO/IEC 19794-2:2005 §8.2),
the biometric information template group 7F61 (ISO/IEC 7816-11 §7, Annex C),
and the enrolment objects. Without the applet selected, `apdu_specs.iso7816_4`
decodes the same bytes generically. The AID repeats the applet's constant: this
package imports no applet (a test checks the two agree). The vectors' responses
are the emulator's, on a card with one finger enrolled under reference 96.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apdu_specs.constructs import BerTlv, TagInfo, find_entry, int_be, tlv_summary
from apdu_specs.framework.decoded import Decoded, count_bytes
from apdu_specs.framework.fields import Le, p1, p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector
from apdu_specs.generate import Draw

CLAUSE = "ISO/IEC 7816-11:2017"
MATCH_ON_CARD = AppletContext("match-on-card", (bytes.fromhex("F043415244454D55B1"),))

_TYPES = {0: "other", 1: "ending", 2: "bifurcation", 3: "reserved"}


def read_minutiae(value: bytes) -> str:
    """A reading of compact-card minutiae: how many, and the first few."""
    if len(value) % 3:
        raise ValueError(f"{len(value)} bytes is not a whole number of minutiae")
    n = len(value) // 3
    shown = []
    for k in range(min(n, 3)):
        x, y, b = value[3 * k : 3 * k + 3]
        shown.append(
            f"({x / 10:g} mm, {y / 10:g} mm, {_TYPES[b >> 6]}, {(b & 0x3F) * 5.625:g} deg)"
        )
    more = ", ..." if n > 3 else ""
    word = "minutia" if n == 1 else "minutiae"
    return f"{n} {word}" + (": " + ", ".join(shown) + more if shown else "")


def _gen_minutiae(draw: Draw) -> bytes:
    n = draw.integer(0, 12)
    out = bytearray()
    for _ in range(n):
        out += bytes((draw.integer(0, 255), draw.integer(0, 255), draw.integer(0, 0xBF)))
    return bytes(out)


def _subtype(value: bytes) -> str:
    if len(value) != 1:
        raise ValueError("one byte")
    v = value[0]
    hand = {1: "right", 2: "left"}.get(v & 0x03, "")
    finger = {4: "thumb", 8: "index", 12: "middle", 16: "ring", 20: "little"}.get(v & 0x1C, "")
    return " ".join(p for p in (hand, finger) if p) or "unspecified"


_BDT_TAGS = {0x81: TagInfo("finger minutiae", decode=read_minutiae, gen=_gen_minutiae)}
_BIOMETRIC_DATA = {0x7F2E: TagInfo("biometric data template", children=_BDT_TAGS)}
_ALGORITHM_PARAMETERS = {
    0x81: TagInfo("minimum and maximum minutiae", decode=lambda v: f"{v[0]}..{v[1]}", size=(2, 2)),
    0x82: TagInfo("minutiae order", size=(1, 1)),
    0x83: TagInfo("feature handling", size=(1, 1)),
}
_BHT = {
    0x81: TagInfo("biometric type", size=(1, 1)),
    0x82: TagInfo("biometric subtype", decode=_subtype, size=(1, 1)),
    0x87: TagInfo("format owner", decode=int_be, size=(2, 2)),
    0x88: TagInfo("format type", decode=int_be, size=(2, 2)),
    0xB1: TagInfo("matching algorithm parameters", children=_ALGORITHM_PARAMETERS),
}
_BIT = {
    0x83: TagInfo("reference data qualifier", size=(1, 1)),
    0xA1: TagInfo("biometric header template", children=_BHT),
    0xB1: TagInfo("matching algorithm parameters", children=_ALGORITHM_PARAMETERS),
}
_BIT_GROUP = {
    0x7F61: TagInfo(
        "biometric information template group",
        children={
            0x02: TagInfo("number of BITs", decode=int_be, size=(1, 1)),
            0x7F60: TagInfo("biometric information template", children=_BIT),
        },
    )
}
_POLICY = {
    0x81: TagInfo("retry limit", decode=int_be, size=(1, 1)),
    0x82: TagInfo("decision threshold", decode=int_be, size=(2, 2)),
    0x83: TagInfo("minimum and maximum minutiae", size=(2, 2)),
    0x84: TagInfo("administrative key", size=(16, 16)),
}
_ENROLMENT = {
    0x7F60: TagInfo("biometric information template", children=_BIT),
    **_BIOMETRIC_DATA,
    0xE1: TagInfo("matching policy", children=_POLICY),
}

_VERIFY_SWS = sws("63Cx 6983 6A80 6A86 6A88")


def _verify_summary(d: Decoded) -> str:
    ref = f"reference {int(d.params['reference']):02X}"
    if int(d.params["function"]) == 0xFF:
        return f"VERIFY reset the verification status, {ref}"
    if not d.fields["nc"]:
        return f"VERIFY status query, {ref}"
    data = d.data
    if isinstance(data, list):
        e = find_entry(data, 0x81)
        if e is not None and "decoded" in e:
            return f"VERIFY {ref}, {e['decoded'].split(':')[0]}"
    return f"VERIFY {ref}, {count_bytes(d.fields['nc'])} of biometric data"


def _bits_summary(d: Decoded) -> str:
    data = d.data
    if not isinstance(data, list):
        return str(data)
    refs = []
    for group in data:
        for e in group.get("children", ()):
            if int(e["tag"]) == 0x7F60:
                q = find_entry(e.get("children", ()), 0x83)
                s = find_entry(e.get("children", ()), 0x82)
                ref = q["value"].hex().upper() if q is not None else "?"
                refs.append(f"{ref} ({s.get('decoded', '?') if s is not None else 'unspecified'})")
    return "BITs: " + (", ".join(refs) if refs else "none")


def _put_summary(d: Decoded) -> str:
    data = d.data
    if isinstance(data, list):
        return f"PUT DATA enrolment: {tlv_summary(data)}"
    return f"PUT DATA enrolment, {count_bytes(d.fields['nc'])}"


def _get_summary(name: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        return f"{name} BIT group 7F61"

    return summary


def _ref_field() -> Any:
    return p2("reference", hex=True)


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "VERIFY",
        0x20,
        f"{CLAUSE} §8.2 (biometric data template, Table 3); ISO/IEC 7816-4:2013 §11.5.6",
        variant="biometric",
        fields=(
            p1("function", {0x00: "verify", 0xFF: "reset the verification status"}),
            _ref_field(),
        ),
        data=BerTlv(_BIOMETRIC_DATA, required=(0x7F2E,), max_items=0),
        nc=(0, 65535),
        sws=_VERIFY_SWS,
        summary=_verify_summary,
        context=MATCH_ON_CARD,
        doc=(
            "7F2E { 81 compact-card minutiae }; no data asks for the status. The answer is a "
            "status word only: 9000 match, 63Cx no match, 6983 blocked."
        ),
        vectors=(
            Vector(
                "0020009629"
                "7F2E2681240A1440115E8518444A1F2A8F2674542D5A9934405E3B26A34270684956AD503C725722B7",
                "VERIFY reference 96, 12 minutiae",
                {"params": {"function": "verify", "reference": "96"}, "nc": 41},
                response="9000",
                source="the emulator: the enrolled template itself",
            ),
            Vector(
                "0020009600"[:8],
                "VERIFY status query, reference 96",
                response="63C4",
                response_summary="63C4 (Verification failed, 4 tries left)",
                source="the emulator, after one non-match",
            ),
            Vector(
                "0020FF96", "VERIFY reset the verification status, reference 96", response="9000"
            ),
        ),
    ),
    CommandSpec(
        "GET DATA",
        0xCB,
        "NIST SP 800-73-4 Part 2 §3.1.2; " + CLAUSE + " §7 (BIT group)",
        variant="BIT group, PIV tag list",
        p1=0x3F,
        p2=0xFF,
        data=BerTlv({0x5C: TagInfo("tag list", size=(2, 2))}, required=(0x5C,), max_items=0),
        le=Le.REQUIRED,
        response=BerTlv(_BIT_GROUP, required=(0x7F61,), max_items=0),
        sws=sws("6A80 6A82 6A86"),
        summary=_get_summary("GET DATA"),
        response_summary=_bits_summary,
        context=MATCH_ON_CARD,
        vectors=(
            Vector(
                "00CB3FFF045C027F6100",
                "GET DATA BIT group 7F61",
                response="7F61250201017F601F830196A11A8101088201098702010188020006"
                "B10A81020C3C8201008301009000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): BITs: 96 (right index)"
                ),
                source="the emulator, one finger enrolled",
            ),
        ),
    ),
    CommandSpec(
        "GET DATA",
        0xCA,
        "ISO/IEC 7816-4:2013 §11.4; " + CLAUSE + " §7 (BIT group)",
        variant="BIT group, tag in P1-P2",
        p1=0x7F,
        p2=0x61,
        le=Le.REQUIRED,
        response=BerTlv(_BIT_GROUP, required=(0x7F61,), max_items=0),
        sws=sws("6A88"),
        summary=_get_summary("GET DATA"),
        response_summary=_bits_summary,
        context=MATCH_ON_CARD,
        vectors=(
            Vector(
                "00CA7F6100",
                "GET DATA BIT group 7F61",
                response="7F61030201009000",
                response_summary=("9000 (Normal processing: no further qualification): BITs: none"),
                source="the emulator, nothing enrolled",
            ),
        ),
    ),
    CommandSpec(
        "PUT DATA",
        0xDB,
        "ISO/IEC 7816-4:2013 §11.4; applets/biometric/applet.py (enrolment objects)",
        variant="enrolment",
        p1=0x3F,
        p2=0xFF,
        data=BerTlv(_ENROLMENT, max_items=3),
        sws=sws("6982 6A80 6A84 6A86 6A88"),
        summary=_put_summary,
        context=MATCH_ON_CARD,
        doc="Needs EXTERNAL AUTHENTICATE with the administrative key (9B) on the channel.",
        vectors=(
            Vector(
                "00DB3FFF34"
                "7F6008830196A103820109"
                "7F2E2681240A1440115E8518444A1F2A8F2674542D5A9934405E3B26A34270684956AD503C725722B7",
                expect={"nc": 52},
                response="9000",
                source="the emulator, after EXTERNAL AUTHENTICATE",
            ),
            Vector(
                "00DB3FFF09E107810105820203E8", response="6982", source="the emulator, no admin"
            ),
        ),
    ),
)
