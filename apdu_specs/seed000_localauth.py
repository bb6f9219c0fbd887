"""Seed 000's local-authentication applet (`applets.localauth`), proprietary class 80.

With the applet selected (AID F043415244454D554C41), beside the eUICC's ISD-R:

- REGISTER (80 10): a PIN (P1 01) or a finger of the match-on-card applet (P1 02), once (S4);
- LOCAL AUTHENTICATION RESULT (80 12): the ECASD's signature over `E5 {5A EID, 80
  challenge, 81 outcome, 82 method}` after a VERIFY (S9, checked by the server at S13);
- GET CERTIFICATES (80 14): CERT.EUICC (A0) and CERT.EUM (A1);
- GET STATUS (80 16): the method registered (81), PIN tries left (82) and limit (83).

VERIFY (00 20 00 81 / 82) is interindustry: `apdu_specs.iso7816_4` decodes it. The
AID repeats `card.sgp22.localauth.LOCAL_AUTH_AID`: this package imports no applet.
The vectors' responses are the emulator's (the `euicc` preset).
"""

from __future__ import annotations

import construct as c

from apdu_specs.constructs import BerTlv, TagInfo, int_be
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Le
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector
from apdu_specs.shapes import tlv_read

CLAUSE = "JP 7639532 B2 (seed 000)"
LOCAL_AUTH = AppletContext("local authentication", (bytes.fromhex("F043415244454D554C41"),))

_METHODS = {0: "none", 1: "PIN", 2: "fingerprint"}
_OUTCOMES = {0: "success", 1: "failed"}


def _named(table: dict[int, str]) -> TagInfo:
    return TagInfo(
        "",
        decode=lambda v: table.get(v[0], f"{v[0]:02X}") if len(v) == 1 else v.hex(),
        size=(1, 1),
    )


_RESULT = {
    0xE5: TagInfo(
        "local authentication result (signed)",
        children={
            0x5A: TagInfo("EID", size=(16, 16)),
            0x80: TagInfo("server challenge", size=(16, 32)),
            0x81: TagInfo("outcome", decode=_named(_OUTCOMES).decode, size=(1, 1)),
            0x82: TagInfo("method", decode=_named(_METHODS).decode, size=(1, 1)),
        },
    ),
    0x5F37: TagInfo("ECASD signature (ECDSA, plain r || s)", size=(64, 64)),
}
_CERTS = {
    0xA0: TagInfo("CERT.EUICC.ECDSA"),
    0xA1: TagInfo("CERT.EUM.ECDSA"),
}
_STATUS = {
    0x81: TagInfo("method", decode=_named(_METHODS).decode, size=(1, 1)),
    0x82: TagInfo("PIN tries left", decode=int_be, size=(1, 1)),
    0x83: TagInfo("PIN try limit", decode=int_be, size=(1, 1)),
}


def _finger(d: Decoded) -> str:
    data = d.data
    ref = data.get("reference") if isinstance(data, dict) else None
    which = f" {ref:02X}" if isinstance(ref, int) else ""
    return f"REGISTER the finger{which} of the match-on-card applet"


def _challenge(d: Decoded) -> str:
    return f"LOCAL AUTHENTICATION RESULT over a {len(d.raw) - 6}-byte challenge"


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "REGISTER",
        0x10,
        f"{CLAUSE} S1-S4",
        variant="PIN",
        cla=0x80,
        p1=0x01,
        p2=0x00,
        data=c.GreedyBytes,
        nc=(4, 12),
        sws=sws("6700 6985 6A86"),
        summary="REGISTER a PIN",
        context=LOCAL_AUTH,
        doc="Once only: 6985 when local-auth data is registered.",
        vectors=(
            Vector(
                "801001000432343638",
                "REGISTER a PIN",
                response="9000",
                source="the euicc preset, nothing registered yet",
            ),
        ),
    ),
    CommandSpec(
        "REGISTER",
        0x10,
        f"{CLAUSE} S1-S4",
        variant="finger",
        cla=0x80,
        p1=0x02,
        p2=0x00,
        data=c.Struct("reference" / c.Int8ub),
        nc=(1, 1),
        sws=sws("6700 6985 6A86 6A88"),
        summary=_finger,
        context=LOCAL_AUTH,
        doc="The finger's reference at the match-on-card applet (its BIT's 83).",
        vectors=(
            Vector(
                "801002000196",
                "REGISTER the finger 96 of the match-on-card applet",
                response="6A88",
                source="the euicc preset: no match-on-card applet",
            ),
        ),
    ),
    CommandSpec(
        "LOCAL AUTHENTICATION RESULT",
        0x12,
        f"{CLAUSE} S9, S13",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        nc=(16, 32),
        le=Le.REQUIRED,
        response=BerTlv(_RESULT, max_items=2),
        sws=sws("6700 6985 6A80"),
        summary=_challenge,
        context=LOCAL_AUTH,
        doc="Needs a VERIFY on this channel; one result per verification.",
        vectors=(
            Vector(
                "80120000100000000000000000000000000000000000",
                "LOCAL AUTHENTICATION RESULT over a 16-byte challenge",
                response="6985",
                source="the euicc preset: no verification on this channel",
            ),
        ),
    ),
    tlv_read(
        "GET CERTIFICATES",
        0x14,
        f"{CLAUSE} S12",
        _CERTS,
        context=LOCAL_AUTH,
        errors="6985 6A86",
        doc="What the management server verifies a result with.",
        vectors=(
            Vector(
                "8014000000",
                "GET CERTIFICATES",
                response="A0023000A10230009000",
                response_expect={"data": [{"tag": "A0"}, {"tag": "A1"}]},
                source="the answer's shape (the euicc preset's certificates are ~500 bytes)",
            ),
        ),
    ),
    tlv_read(
        "GET STATUS",
        0x16,
        f"{CLAUSE} S1",
        _STATUS,
        context=LOCAL_AUTH,
        errors="6A86",
        doc="Whether local-auth data is registered (S1), and the PIN's tries.",
        vectors=(
            Vector(
                "8016000000",
                "GET STATUS",
                response="8101008201038301039000",
                response_expect={"data": [{"tag": "81"}, {"tag": "82"}, {"tag": "83"}]},
                source="the euicc preset, nothing registered yet",
            ),
        ),
    ),
)
