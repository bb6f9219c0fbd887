"""ISO/IEC 7816-8 key pairs: GENERATE ASYMMETRIC KEY PAIR, and the keypair applet's readings.

GENERATE ASYMMETRIC KEY PAIR (ISO/IEC 7816-8:2019 §5.1, INS 47) is decoded
for any card: P1 00/80 generates, 81 reads a public key back; the data is a
control reference template (AC, as PIV's NIST SP 800-73-4 Part 2 §3.3.2 uses
it) and the answer the public key template 7F49 (ISO/IEC 7816-8 Table 3: 81
modulus, 82 exponent, 86 point, 06 the curve OID). With the keypair applet
(`applets.keypair`, AID F043415244454D554B50) selected, its key identifier (C0)
and usage counter (C1), its access policy (C1 in the template), the secure
messaging set-up of GENERAL AUTHENTICATE (`card.sm.auth`) and the
personalisation objects of PUT DATA are named too. MANAGE SECURITY
ENVIRONMENT and PERFORM SECURITY OPERATION decode with `apdu_specs.iso7816_4`.
The AID repeats the applet's constant: this package imports no applet. The
vectors' responses are the emulator's (card seeded with 1, PIN verified).
"""

from __future__ import annotations

from apdu_specs.constructs import BerTlv, TagInfo, find_entry, int_be, tlv_summary
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Le, p1, p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

CLAUSE = "ISO/IEC 7816-8:2019"
KEYPAIR = AppletContext("keypair", (bytes.fromhex("F043415244454D554B50"),))

ALGORITHMS = {
    0x07: "RSA-2048",
    0x05: "RSA-3072",
    0x11: "ECC P-256",
    0x14: "ECC P-384",
    0xB1: "ECC brainpoolP256r1",
    0xB2: "ECC brainpoolP384r1",
}
_CURVES = {
    "2A8648CE3D030107": "P-256",
    "2B81040022": "P-384",
    "2B2403030208010107": "brainpoolP256r1",
    "2B240303020801010B": "brainpoolP384r1",
}


def _algorithm(v: bytes) -> str:
    return ALGORITHMS.get(v[0], f"algorithm {v.hex().upper()}") if len(v) == 1 else v.hex()


def _policy(v: bytes) -> str:
    if len(v) != 1:
        return v.hex()
    names = [n for bit, n in ((0x01, "PIN"), (0x02, "biometric"), (0x10, "SM")) if v[0] & bit]
    return " or ".join(n for n in names if n != "SM") + (", SM required" if v[0] & 0x10 else "")


_PUBLIC_KEY = {
    0x81: TagInfo("modulus", decode=lambda v: f"{len(v) * 8} bits", size=(1, 64)),
    0x82: TagInfo("public exponent", decode=int_be, size=(1, 4)),
    0x86: TagInfo("public point", size=(33, 97)),
    0x06: TagInfo("curve", decode=lambda v: _CURVES.get(v.hex().upper(), v.hex()), size=(5, 9)),
}
_CRT = {
    0xAC: TagInfo(
        "control reference template",
        children={
            0x80: TagInfo("algorithm", decode=_algorithm, size=(1, 1)),
            0xC1: TagInfo("access policy", decode=_policy, size=(1, 1)),
        },
    )
}
_ANSWER = {
    0x7F49: TagInfo("public key", children=_PUBLIC_KEY),
    0xC0: TagInfo("key identifier", size=(20, 20)),
    0xC1: TagInfo("usage counter", decode=int_be, size=(4, 4)),
}


def _generate_summary(d: Decoded) -> str:
    ref = int(d.params["reference"])
    if int(d.params["operation"]) == 0x81:
        return f"GENERATE ASYMMETRIC KEY PAIR read public key {ref:02X}"
    text = f"GENERATE ASYMMETRIC KEY PAIR into key {ref:02X}"
    data = d.data
    if isinstance(data, list) and data:
        alg = find_entry(data[0].get("children", ()), 0x80)
        if alg is not None and "decoded" in alg:
            text += f", {alg['decoded']}"
    return text


def _answer_summary(d: Decoded) -> str:
    data = d.data
    if not isinstance(data, list):
        return str(data)
    key = find_entry(data, 0x7F49)
    parts = []
    if key is not None:
        kids = key.get("children", ())
        curve, n = find_entry(kids, 0x06), find_entry(kids, 0x81)
        if curve is not None:
            parts.append(f"EC public key on {curve.get('decoded', '?')}")
        elif n is not None:
            parts.append(f"RSA public key, {n.get('decoded', '?')}")
    counter = find_entry(data, 0xC1)
    if counter is not None:
        parts.append(f"used {counter.get('decoded', '?')} times")
    return ", ".join(parts) or tlv_summary(data)


_KEY_REFERENCE = p2("reference", hex=True)
_GENERATE_SWS = sws("6982 6985 6A80 6A81 6A86 6A88")

_DYNAMIC = {
    0x7C: TagInfo(
        "dynamic authentication data",
        children={
            0x80: TagInfo("terminal ephemeral public point", size=(65, 65)),
            0x81: TagInfo("terminal signature", size=(64, 96)),
            0x82: TagInfo("card ephemeral point, or the shared secret", size=(32, 97)),
            0x83: TagInfo("card signature", size=(64, 96)),
            0x84: TagInfo("card CV certificate", size=(8, 16)),
            0x85: TagInfo("peer public point (key agreement)", size=(65, 97)),
        },
    )
}


def _ga_summary(d: Decoded) -> str:
    data = d.data
    ref = int(d.params["reference"])
    if isinstance(data, list) and data:
        kids = data[0].get("children", ())
        if find_entry(kids, 0x85) is not None:
            return (
                f"GENERAL AUTHENTICATE key agreement with key {ref:02X}"
                if ref
                else ("GENERAL AUTHENTICATE key agreement with the KAT key")
            )
        if find_entry(kids, 0x80) is not None:
            return "GENERAL AUTHENTICATE secure messaging set-up (ephemeral key, signature)"
    return f"GENERAL AUTHENTICATE {tlv_summary(data) if isinstance(data, list) else ''}".strip()


_PERSONALISATION = {
    0x7F49: TagInfo("root public key", children=_PUBLIC_KEY),
    0x7F21: TagInfo("card CV certificate (key 81)"),
}

SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "GENERATE ASYMMETRIC KEY PAIR",
        0x47,
        f"{CLAUSE} §5.1; NIST SP 800-73-4 Part 2 §3.3.2 (template AC)",
        fields=(
            p1("operation", {0x00: "generate", 0x80: "generate", 0x81: "read public key"}),
            _KEY_REFERENCE,
        ),
        data=BerTlv(_CRT, required=(0xAC,), max_items=0),
        nc=(0, 255),
        le=Le.OPTIONAL,
        response=BerTlv(_ANSWER, required=(0x7F49,), max_items=2),
        sws=_GENERATE_SWS,
        summary=_generate_summary,
        response_summary=_answer_summary,
        doc=(
            "AC { 80 algorithm [, C1 policy] }; the answer 7F49 { 06 curve, 86 point } or "
            "{ 81 modulus, 82 exponent }, then C0 key identifier and C1 usage counter."
        ),
        vectors=(
            Vector(
                "0047000105AC0380011100",
                "GENERATE ASYMMETRIC KEY PAIR into key 01, ECC P-256",
                {"params": {"operation": "generate", "reference": "01"}},
                response="7F494D06082A8648CE3D030107864104B4ECC60FE883A25E47CB45D9639DAEDD27A51D0A"
                "6D84EED9EA5A89E1FD8AD1C8F8CEAE2D5D2B81ED8F3DA3355996BDDA37C41E1FBAFCA5B76B3A621D"
                "F9778CB3C01492B25ADBDBF22DCB2EA190687978A3449071CFC5C104000000009000",
                response_summary="9000 (Normal processing: no further qualification): "
                "EC public key on P-256, used 0 times",
                source="the emulator, rng seed 1",
            ),
            Vector(
                "0047810100",
                "GENERATE ASYMMETRIC KEY PAIR read public key 01",
                response="6A88",
                source="the emulator, no key 01",
            ),
        ),
    ),
    CommandSpec(
        "GENERAL AUTHENTICATE",
        0x86,
        "ISO/IEC 7816-4:2020 §11.5.5; BSI TR-03110-2 §3.3-3.4 (card.sm.auth)",
        variant="keypair",
        p1=0x00,
        fields=(_KEY_REFERENCE,),
        data=BerTlv(_DYNAMIC, required=(0x7C,), max_items=0),
        le=Le.OPTIONAL,
        response=BerTlv(_DYNAMIC, required=(0x7C,), max_items=0),
        sws=sws("6982 6985 6A80 6A88"),
        summary=_ga_summary,
        context=KEYPAIR,
        doc="7C { 85 point }: ECDH with key P2; 7C { 80, 81 } with P2 00: secure messaging.",
        vectors=(
            Vector(
                "0086000209 7C07 8505 0400000000 00",
                "GENERAL AUTHENTICATE key agreement with key 02",
                response="6A88",
                source="the emulator, no key 02",
            ),
        ),
    ),
    CommandSpec(
        "PUT DATA",
        0xDB,
        "ISO/IEC 7816-4:2020 §11.4; applets/keypair/applet.py (personalisation)",
        variant="keypair personalisation",
        p1=0x3F,
        p2=0xFF,
        data=BerTlv(_PERSONALISATION, max_items=2),
        sws=sws("6982 6985 6A80"),
        summary=lambda d: (
            "PUT DATA SM personalisation: "
            + (tlv_summary(d.data) if isinstance(d.data, list) else "?")
        ),
        context=KEYPAIR,
        doc="The root key and key 81's certificate, once, with the PIN verified.",
        vectors=(
            Vector(
                "00DB3FFF03 7F4900",
                "PUT DATA SM personalisation: root public key []",
                response="6982",
                source="the emulator, PIN not verified",
            ),
        ),
    ),
)
