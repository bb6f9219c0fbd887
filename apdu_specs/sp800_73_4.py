"""The PIV Card Application's commands (NIST SP 800-73-4 Part 2 §3), as the PIV applet answers.

With the PIV application selected (`applets.piv`, AID A000000308 00001000 0100, or its
truncated form), VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER name the PIV
PIN, PUK and OCC references; GENERAL AUTHENTICATE (INS 87) its dynamic authentication
template (witness, challenge, response, exponentiation) with the algorithm in P1 and the
key in P2; GET DATA and PUT DATA the containers by their tag list; Yubico's SET
MANAGEMENT KEY (INS FF) its key. GENERATE ASYMMETRIC KEY PAIR decodes with
`apdu_specs.iso7816_8`. The AID repeats the applet's constant: this package imports no
applet. The vectors' responses are the emulator's (the `piv` preset).
"""

from __future__ import annotations

import construct as c

from apdu_specs.constructs import BerTlv, TagInfo, find_entry, tlv_summary
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Field, Le, p1, p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

CLAUSE = "NIST SP 800-73-4 Part 2"
PIV = AppletContext("piv", (bytes.fromhex("A000000308000010000100"),))

#: SP 800-78-4 Table 6-2
ALGORITHMS = {
    0x00: "3DES (old identifier)",
    0x03: "3DES",
    0x08: "AES-128",
    0x0A: "AES-192",
    0x0C: "AES-256",
    0x06: "RSA-1024",
    0x07: "RSA-2048",
    0x05: "RSA-3072",
    0x11: "ECC P-256",
    0x14: "ECC P-384",
    0x27: "CS2 (SM: P-256, AES-128)",
    0x2E: "CS7 (SM: P-384, AES-256)",
}
#: SP 800-73-4 Part 1 Table 4b and §3.5
KEYS = {
    0x80: "PIV PIN",
    0x81: "PUK",
    0x00: "global PIN",
    0x04: "PIV secure messaging key",
    0x98: "pairing code",
    0x96: "OCC primary finger",
    0x97: "OCC secondary finger",
    0x9A: "PIV authentication key",
    0x9B: "card management key",
    0x9C: "digital signature key",
    0x9D: "key management key",
    0x9E: "card authentication key",
    **{0x82 + i: f"retired key management key {i + 1}" for i in range(20)},
}
#: SP 800-73-4 Part 1 Table 3
CONTAINERS = {
    0x5FC107: "Card Capability Container",
    0x5FC102: "CHUID",
    0x5FC105: "X.509 certificate for PIV authentication",
    0x5FC103: "cardholder fingerprints",
    0x5FC106: "security object",
    0x5FC108: "cardholder facial image",
    0x5FC101: "X.509 certificate for card authentication",
    0x5FC10A: "X.509 certificate for digital signature",
    0x5FC10B: "X.509 certificate for key management",
    0x5FC109: "printed information",
    0x7E: "discovery object",
    0x5FC10C: "key history object",
    0x5FC121: "cardholder iris images",
    0x7F61: "BIT group template",
    0x5FC122: "SM certificate signer",
    0x5FC123: "pairing code reference data",
    **{0x5FC10D + i: f"retired X.509 certificate {i + 1}" for i in range(20)},
}


def _container(v: bytes) -> str:
    tag = int.from_bytes(v, "big") if v else -1
    return CONTAINERS.get(tag, f"tag {v.hex().upper()}")


def _key_field(name: str = "reference") -> Field:
    return p2(name, KEYS, hex=True)


_TAG_LIST = {0x5C: TagInfo("tag list", decode=_container, size=(1, 3))}
_CONTAINER_BODY = {
    0x5C: TagInfo("tag list", decode=_container, size=(1, 3)),
    0x53: TagInfo("container"),
    0x7E: TagInfo("discovery object"),
    0x7F61: TagInfo("BIT group template"),
}
_DYNAMIC = {
    0x7C: TagInfo(
        "dynamic authentication template",
        children={
            0x80: TagInfo("witness"),
            0x81: TagInfo("challenge"),
            0x82: TagInfo("response"),
            0x85: TagInfo("exponentiation (peer public point)"),
        },
    )
}


def _ga_summary(d: Decoded) -> str:
    key = int(d.params["key"])
    alg = ALGORITHMS.get(int(d.params["algorithm"]), "?")
    data = d.data
    kids = data[0].get("children", ()) if isinstance(data, list) and data else ()
    step = ""
    if key == 0x9B:
        witness, challenge, response = (find_entry(kids, t) for t in (0x80, 0x81, 0x82))
        if witness is not None and challenge is not None:
            step = "mutual authentication, witness and challenge"
        elif witness is not None:
            step = "mutual authentication, witness request"
        elif challenge is not None:
            step = "external authentication, challenge request"
        elif response is not None:
            step = "external authentication, response"
        return f"GENERAL AUTHENTICATE card management key ({alg}), {step}".rstrip(", ")
    if key == 0x04:
        return f"GENERAL AUTHENTICATE secure messaging key establishment ({alg})"
    if find_entry(kids, 0x85) is not None:
        step = "key agreement"
    elif find_entry(kids, 0x81) is not None:
        step = "sign or decipher"
    return f"GENERAL AUTHENTICATE key {key:02X} ({alg}) {step}".rstrip()


def _get_summary(d: Decoded) -> str:
    data = d.data
    if isinstance(data, list):
        entry = find_entry(data, 0x5C)
        if entry is not None:
            return f"GET DATA {entry.get('decoded', '?')}"
    return "GET DATA"


def _put_summary(d: Decoded) -> str:
    data = d.data
    if isinstance(data, list) and data:
        entry = find_entry(data, 0x5C)
        if entry is not None:
            return f"PUT DATA {entry.get('decoded', '?')}"
        return f"PUT DATA {tlv_summary(data)}"
    return "PUT DATA"


_PIN_SWS = sws("63Cx 6983 6A80 6A86 6A88")

SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "VERIFY",
        0x20,
        f"{CLAUSE} §3.2.1",
        variant="PIV",
        fields=(
            p1("function", {0x00: "verify", 0xFF: "reset the verification status"}),
            _key_field(),
        ),
        data=c.GreedyBytes,
        nc=(0, 8),
        sws=_PIN_SWS,
        summary=lambda d: f"VERIFY {d.params['reference']}",
        context=PIV,
        doc="The PIN padded with FF to 8 bytes; no data asks for the status (9000 or 63Cx).",
        vectors=(
            Vector(
                "0020008008313233343536FFFF",
                "VERIFY PIV PIN",
                {"params": {"function": "verify", "reference": "PIV PIN"}},
                response="9000",
                source="the piv preset",
            ),
            Vector(
                "00200080",
                response="63C2",
                response_summary="63C2 (Verification failed, 2 tries left)",
                source="the emulator, after a wrong PIN",
            ),
        ),
    ),
    CommandSpec(
        "CHANGE REFERENCE DATA",
        0x24,
        f"{CLAUSE} §3.2.2",
        variant="PIV",
        p1=0x00,
        fields=(_key_field(),),
        data=c.GreedyBytes,
        nc=(16, 16),
        sws=_PIN_SWS,
        summary=lambda d: f"CHANGE REFERENCE DATA {d.params['reference']}",
        context=PIV,
        doc="The current value then the new one, 8 bytes each (a PIN padded with FF).",
        vectors=(
            Vector(
                "0024008010313233343536FFFF363534333231FFFF",
                "CHANGE REFERENCE DATA PIV PIN",
                response="9000",
                source="the piv preset",
            ),
        ),
    ),
    CommandSpec(
        "RESET RETRY COUNTER",
        0x2C,
        f"{CLAUSE} §3.2.3",
        variant="PIV",
        p1=0x00,
        fields=(_key_field(),),
        data=c.GreedyBytes,
        nc=(16, 16),
        sws=_PIN_SWS,
        summary=lambda d: f"RESET RETRY COUNTER {d.params['reference']} with the PUK",
        context=PIV,
        doc="The PUK then the new PIN, 8 bytes each.",
        vectors=(
            Vector(
                "002C0080103132333435363738313233343536FFFF",
                "RESET RETRY COUNTER PIV PIN with the PUK",
                response="9000",
                source="the piv preset",
            ),
        ),
    ),
    CommandSpec(
        "GENERAL AUTHENTICATE",
        0x87,
        f"{CLAUSE} §3.2.4, Appendix A",
        variant="PIV",
        fields=(p1("algorithm", ALGORITHMS, hex=True), _key_field("key")),
        data=BerTlv(_DYNAMIC, required=(0x7C,), max_items=0),
        le=Le.OPTIONAL,
        response=BerTlv(_DYNAMIC, required=(0x7C,), max_items=0),
        sws=sws("6982 6985 6A80 6A86 6A88"),
        summary=_ga_summary,
        context=PIV,
        doc=(
            "9B: 7C { 80 00 } then 7C { 80 witness, 81 challenge } (mutual), or 7C { 81 00 } "
            "then 7C { 82 response } (external); a slot key: 7C { 82 00, 81 input } signs or "
            "deciphers, 7C { 82 00, 85 point } agrees."
        ),
        vectors=(
            Vector(
                "0087039B047C028000",
                "GENERAL AUTHENTICATE card management key (3DES), mutual authentication, "
                "witness request",
                {"params": {"algorithm": "3DES", "key": "card management key"}},
                response="7C0A8008A1A2A3A4A5A6A7A89000",
                source="the emulator's answer shape (the witness is random)",
            ),
            Vector(
                "00872704 4F 7C4D 814A 00" + "48" * 8 + "04" + "11" * 64 + " 8200",
                "GENERAL AUTHENTICATE secure messaging key establishment "
                "(CS2 (SM: P-256, AES-128))",
                {"params": {"algorithm": "CS2 (SM: P-256, AES-128)"}},
                response="6A80",
                source="the emulator, a point not on the curve",
            ),
            Vector(
                "0087119A26 7C24 8200 8120" + "00" * 32,
                "GENERAL AUTHENTICATE key 9A (ECC P-256) sign or decipher",
                response="6982",
                source="the emulator, PIN not verified",
            ),
        ),
    ),
    CommandSpec(
        "GET DATA",
        0xCB,
        f"{CLAUSE} §3.1.2",
        variant="PIV container",
        p1=0x3F,
        p2=0xFF,
        data=BerTlv(_TAG_LIST, required=(0x5C,), max_items=0),
        le=Le.OPTIONAL,
        response=BerTlv(_CONTAINER_BODY, max_items=1),
        sws=sws("6982 6A80 6A82 6A86"),
        summary=_get_summary,
        context=PIV,
        vectors=(
            Vector(
                "00CB3FFF035C017E00",
                "GET DATA discovery object",
                response="7E124F0BA0000003080000100001005F2F0240009000",
                source="the piv preset",
            ),
            Vector(
                "00CB3FFF055C035FC10500",
                "GET DATA X.509 certificate for PIV authentication",
                response="6A82",
                source="the piv preset, no certificate yet",
            ),
        ),
    ),
    CommandSpec(
        "PUT DATA",
        0xDB,
        f"{CLAUSE} §3.3.1",
        variant="PIV container",
        p1=0x3F,
        p2=0xFF,
        data=BerTlv(_CONTAINER_BODY, max_items=2),
        nc=(1, 65535),
        sws=sws("6982 6A80 6A82 6A84 6A86"),
        summary=_put_summary,
        context=PIV,
        doc="5C tag list, 53 contents; or the discovery object 7E, or the BIT group 7F61.",
        vectors=(
            Vector(
                "00DB3FFF0C 5C035FC109 5305 0103414243",
                "PUT DATA printed information",
                response="6982",
                source="the piv preset, management key not authenticated",
            ),
        ),
    ),
    CommandSpec(
        "SET MANAGEMENT KEY",
        0xFF,
        "Yubico PIV extension (not SP 800-73)",
        variant="Yubico",
        p1=0xFF,
        fields=(p2("touch", {0xFF: "no touch", 0xFE: "touch required"}),),
        data=c.GreedyBytes,
        nc=(19, 35),
        sws=sws("6982 6A80 6A81 6A86"),
        summary=lambda d: "SET MANAGEMENT KEY",
        context=PIV,
        doc="algorithm, 9B, key length, key.",
        vectors=(
            Vector(
                "00FFFFFF1B039B18010203040506070801020304050607080102030405060708",
                "SET MANAGEMENT KEY",
                response="6982",
                source="the piv preset, management key not authenticated",
            ),
        ),
    ),
)
