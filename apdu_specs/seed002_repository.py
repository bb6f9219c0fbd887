"""Seed 002's repository card (`applets.repository`): its GET DATA and PUT DATA objects.

With the repository applet selected (AID F043415244454D555250), GET DATA (INS CA)
names the card's own objects in P1-P2 and PUT DATA (INS DB, P1-P2 3FFF) carries a
BER-TLV body whose tags say what it is (JP 2023-044038 A, the seed's steps):

- `7F2E` the holder's fingerprint template, sent to the HSM at issuance (ST12);
- `5F50` the repository URL with `7F49` card key, `5F37` HSM signature and `C0`
  HSM key ID, released in clear after a finger match (ST35);
- `DF20` a one-time token, decrypted under SM (ST57) and released once (ST60);
- PUT DATA `7F49`/`7F21`/`7F2E`/`4F` personalises, `7F49` alone is the HSM's key
  (ST19), `5F50`+`5F37` the signed URL (ST21), `DF20` the token (ST57).

GENERATE ASYMMETRIC KEY PAIR, PSO and the SM set-up decode with `apdu_specs.iso7816_8`
and `iso7816_4`. The AID repeats the applet's constant: this package imports no applet.
The vectors' responses are the emulator's (the `repository` preset).
"""

from __future__ import annotations

from apdu_specs.constructs import BerTlv, TagInfo, find_entry, tlv_summary
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Le, p1p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

CLAUSE = "JP 2023-044038 A (seed 002)"
REPOSITORY = AppletContext("repository card", (bytes.fromhex("F043415244454D555250"),))

#: What GET DATA names in P1-P2.
OBJECTS = {
    0x7F2E: "holder's fingerprint template (ST12)",
    0x5F50: "repository URL, signed (ST35)",
    0xDF20: "one-time token (ST60)",
}

_BODY = {
    0x7F49: TagInfo("public key template (ISO 7816-8)"),
    0x7F21: TagInfo("card verifiable certificate of key 81"),
    0x7F2E: TagInfo("biometric data template (ISO 19794-2 minutiae)"),
    0x4F: TagInfo("match-on-card applet AID", size=(5, 16)),
    0x5F50: TagInfo("repository URL", decode=lambda v: v.decode("utf-8", "replace")),
    0x5F37: TagInfo("HSM signature over 7F49 || 5F50 (ECDSA, plain r || s)", size=(64, 64)),
    0xC0: TagInfo("HSM key ID (RFC 7093 method 1)", size=(20, 20)),
    0xDF20: TagInfo("one-time token", size=(1, 64)),
}


def _tags(d: Decoded) -> set[int]:
    data = d.data
    if not isinstance(data, list):
        return set()
    return {t for t in _BODY if find_entry(data, t) is not None}


def _what_put(d: Decoded) -> str:
    tags = _tags(d)
    if {0x7F21, 0x7F49} <= tags:
        return "PUT DATA personalisation: root key, card certificate, template"
    if tags == {0x7F49}:
        return "PUT DATA the HSM's public key (ST19)"
    if 0x5F50 in tags:
        return "PUT DATA the signed repository URL (ST21)"
    if tags == {0xDF20}:
        return "PUT DATA a one-time token (ST57)"
    data = d.data
    return f"PUT DATA {tlv_summary(data)}" if isinstance(data, list) and data else "PUT DATA"


def _what_get(d: Decoded) -> str:
    tag = (d.raw[2] << 8) | d.raw[3]
    return f"GET DATA {OBJECTS.get(tag, f'tag {tag:04X}')}"


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "GET DATA",
        0xCA,
        f"{CLAUSE} ST12, ST35, ST60; ISO/IEC 7816-4 §11.4",
        variant="repository card",
        fields=(p1p2("object", {k: f"{k:04X}" for k in OBJECTS}, hex=True),),
        le=Le.REQUIRED,
        response=BerTlv(_BODY, max_items=4),
        sws=sws("6982 6985 6A88"),
        summary=_what_get,
        context=REPOSITORY,
        doc="7F2E under SM with the HSM; 5F50 in clear after a match; DF20 once.",
        vectors=(
            Vector(
                "00CA5F5000",
                "GET DATA repository URL, signed (ST35)",
                response="6982",
                source="the repository preset: no finger matched in this session",
            ),
            Vector(
                "00CA7F2E00",
                "GET DATA holder's fingerprint template (ST12)",
                response="6982",
                source="the repository preset: only to the HSM, under SM",
            ),
            Vector(
                "00CADF2000",
                "GET DATA one-time token (ST60)",
                response="DF2004A1A2A3A49000",
                response_expect={"data": [{"tag": "DF20", "value": "A1A2A3A4"}]},
                source="the applet's answer shape (a token is random)",
            ),
        ),
    ),
    CommandSpec(
        "PUT DATA",
        0xDB,
        f"{CLAUSE} ST19, ST21, ST57; ISO/IEC 7816-4 §11.4",
        variant="repository card",
        p1=0x3F,
        p2=0xFF,
        data=BerTlv(_BODY, max_items=4),
        nc=(1, 65535),
        sws=sws("6982 6985 6A80"),
        summary=_what_put,
        context=REPOSITORY,
        doc="The body's tags say which step it is (see the module docstring).",
        vectors=(
            Vector(
                "00DB3FFF07DF2004A1A2A3A4",
                "PUT DATA a one-time token (ST57)",
                response="6982",
                source="the repository preset: no session with a repository",
            ),
        ),
    ),
)
