"""GlobalPlatform card management commands: GPC v2.3.1 clause 11 and SCP03 (Amendment D).

INITIALIZE UPDATE and EXTERNAL AUTHENTICATE open a secure channel (Amendment D
v1.1.2 §7.1); GET STATUS, INSTALL, LOAD, DELETE, PUT KEY, SET STATUS, STORE
DATA and GET DATA manage the card's content (GPC v2.3.1 §11.2-§11.11).

Commands of the proprietary class without secure messaging (CLA 80-83) are
decoded field by field. Once a secure channel protects them (CLA b3 set: 84-87)
their data field is C-MAC'ed and perhaps encrypted, so each command has a
"secured" variant that names it and its parameters and leaves the data as
bytes. The response to INITIALIZE UPDATE follows Amendment D Table 7-3 (SCP03)
or GPC v2.3.1 Table E-12 (SCP02).

Vectors: the pySim SCP03 session (osmocom/pysim tests/unittests/
test_globalplatform.py at commit 597f1e0398bb81d6832dc92ee4dfdcada59d3d82,
via shared/vectors/scp03.json) and exchanges of this emulator's "gp" preset
(the ISD of `card.gp.isd`), recorded before SCP wrapping.
"""

from __future__ import annotations

from typing import Any

import construct as c

from apdu_specs.constructs import BerTlv, TagInfo, int_be, tlv_summary
from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.fields import Le, p1, p1p2, p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector
from apdu_specs.generate import Draw
from apdu_specs.values import HexInt

CLAUSE = "GPC v2.3.1"
AMD_D = "GPC v2.3 Amendment D v1.1.2"
#: Security Domains, the applications these commands are addressed to: any AID under the
#: GlobalPlatform RID (the ISD A000000151000000 and its GP 2.0 form A0000001510000), the
#: Visa Open Platform card manager A000000003000000, and the eUICC ISD-R (GSMA SGP.02).
#: Bound to them, a GP command does not shadow an applet's own class-80 command (the
#: sample purse's GET BALANCE is 80 50 00 00 too) while that applet is selected.
SECURITY_DOMAIN = AppletContext(
    "GlobalPlatform security domain",
    (
        bytes.fromhex("A000000151"),
        bytes.fromhex("A000000003000000"),
        bytes.fromhex("A0000005591010FFFFFFFF8900000100"),
    ),
)
#: CLA bits that tell a GP command: proprietary class (b8), first interindustry coding of the
#: channel (b6 clear, so GSM's A0 is not taken for GP), and the SM indication (b3).
_CLA_MASK = 0xA4
#: How the secured vectors were made: card.gp.scp03 at level 03 with the GP test keys,
#: host challenge 0001..07, card challenge 0809..0F, encryption counter 1.
WRAPPED = "the plain vector wrapped by card.gp.scp03 (level 03, test keys, counter 1)"
PYSIM = "osmocom/pysim tests/unittests/test_globalplatform.py (597f1e03)"
EMULATOR = "the emulator's gp preset (card.gp.isd), before SCP wrapping"

# -- Value decoders -------------------------------------------------------------------

#: Privileges, GPC v2.3.1 §11.1.2 Table 11-7: (byte index, bit mask, name).
_PRIVILEGES = (
    (0, 0x80, "security domain"),
    (0, 0x40, "DAP verification"),
    (0, 0x20, "delegated management"),
    (0, 0x10, "card lock"),
    (0, 0x08, "card terminate"),
    (0, 0x04, "card reset"),
    (0, 0x02, "CVM management"),
    (0, 0x01, "mandated DAP verification"),
    (1, 0x80, "trusted path"),
    (1, 0x40, "authorized management"),
    (1, 0x20, "token verification"),
    (1, 0x10, "global delete"),
    (1, 0x08, "global lock"),
    (1, 0x04, "global registry"),
    (1, 0x02, "final application"),
    (1, 0x01, "global service"),
    (2, 0x80, "receipt generation"),
    (2, 0x40, "ciphered load file data block"),
    (2, 0x20, "contactless activation"),
    (2, 0x10, "contactless self-activation"),
)


def privileges(b: bytes) -> list[str]:
    """Names of the privileges set in 1 or 3 privilege bytes (§11.1.2)."""
    return [name for i, bit, name in _PRIVILEGES if i < len(b) and b[i] & bit]


CARD_STATES = {
    0x01: "OP_READY",
    0x07: "INITIALIZED",
    0x0F: "SECURED",
    0x7F: "CARD_LOCKED",
    0xFF: "TERMINATED",
}


def card_state(value: int) -> str:
    """Card life cycle state (§11.1.1.1 Table 11-4)."""
    return CARD_STATES.get(value, f"RFU {value:02X}")


def application_state(value: int) -> str:
    """Application or Security Domain life cycle state (§11.1.1.3-4, Tables 11-5, 11-6)."""
    if value & 0x80:
        return "LOCKED"
    if value == 0x0F:
        return "PERSONALIZED (SD) or application-specific"
    if value & 0x07 == 0x07:
        return "SELECTABLE" if value == 0x07 else f"SELECTABLE, application-specific {value:02X}"
    if value == 0x03:
        return "INSTALLED"
    return f"RFU {value:02X}"


def oid(b: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER value (X.690 §8.19).

    Raises:
        ValueError: empty, or the last subidentifier is cut short.
    """
    if not b or b[-1] & 0x80:
        raise ValueError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    v = 0
    for byte in b:
        v = (v << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(v)
            v = 0
    top = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (top, arcs[0] - 40 * top, *arcs[1:]))


#: CPLC, GPC v2.3.1 Table H-10 (Visa GP 2.1.1 Card Production Life Cycle): name, length.
CPLC_FIELDS: tuple[tuple[str, int], ...] = (
    ("ic_fabricator", 2),
    ("ic_type", 2),
    ("os_id", 2),
    ("os_release_date", 2),
    ("os_release_level", 2),
    ("ic_fabrication_date", 2),
    ("ic_serial_number", 4),
    ("ic_batch_identifier", 2),
    ("ic_module_fabricator", 2),
    ("ic_module_packaging_date", 2),
    ("icc_manufacturer", 2),
    ("ic_embedding_date", 2),
    ("ic_pre_personalizer", 2),
    ("ic_pre_personalization_date", 2),
    ("ic_pre_personalization_equipment_id", 4),
    ("ic_personalizer", 2),
    ("ic_personalization_date", 2),
    ("ic_personalization_equipment_id", 4),
)
CPLC_LENGTH = sum(n for _, n in CPLC_FIELDS)  # 42


def cplc(b: bytes) -> dict[str, bytes]:
    """The 18 CPLC fields of a 42-byte value.

    Raises:
        ValueError: not 42 bytes.
    """
    if len(b) != CPLC_LENGTH:
        raise ValueError(f"CPLC has {CPLC_LENGTH} bytes, not {len(b)}")
    out, p = {}, 0
    for name, n in CPLC_FIELDS:
        out[name] = b[p : p + n]
        p += n
    return out


def key_information(b: bytes) -> dict[str, Any]:
    """One C0 entry of the key information template (§11.3.3.1, basic format).

    Raises:
        ValueError: shorter than an id, a version and one (type, length) pair.
    """
    if len(b) < 4:
        raise ValueError("key information shorter than 4 bytes")
    out: dict[str, Any] = {"id": b[0], "version": HexInt(b[1])}
    if 0xFF in b[2::2]:  # extended format: types escaped by FF, not read here
        out["extended"] = b[2:]
    else:
        out["components"] = [
            {"type": HexInt(b[i]), "length": b[i + 1]} for i in range(2, len(b) - 1, 2)
        ]
    return out


def _state_byte(b: bytes) -> Any:
    return HexInt(b[0]) if len(b) == 1 else b


def _gen_oid(draw: Draw) -> bytes:
    return bytes.fromhex("2A864886FC6B") + bytes((draw.integer(1, 4),))


# -- Tag tables -----------------------------------------------------------------------

OID = TagInfo("object identifier", decode=oid, gen=_gen_oid)
_OID_TEMPLATE = {0x06: OID}

#: Card Recognition Data, GPC v2.3.1 Annex H.2 Table H-1.
CARD_RECOGNITION_TAGS: dict[int, TagInfo] = {
    0x06: OID,
    0x60: TagInfo("card management type and version", children=_OID_TEMPLATE),
    0x63: TagInfo("card identification scheme", children=_OID_TEMPLATE),
    0x64: TagInfo("secure channel protocol and its i", children=_OID_TEMPLATE),
    0x65: TagInfo("card configuration details"),
    0x66: TagInfo("card / chip details"),
    0x67: TagInfo("trust point key information"),
    0x68: TagInfo("trust point certificate information"),
}

#: GET DATA objects of the ISD (GPC v2.3.1 §11.3.3.1 Table 11-29 and Annex H).
GET_DATA_TAGS: dict[int, TagInfo] = {
    0x42: TagInfo("issuer identification number", size=(1, 8)),
    0x45: TagInfo("card image number", size=(1, 16)),
    0x66: TagInfo(
        "card data",
        children={0x73: TagInfo("card recognition data", children=CARD_RECOGNITION_TAGS)},
    ),
    0x67: TagInfo("card capability information"),
    0xCF: TagInfo("key diversification data", size=(10, 10)),
    0xC1: TagInfo("sequence counter of the default key version", decode=int_be, size=(2, 3)),
    0xC2: TagInfo("confirmation counter", decode=int_be, size=(2, 2)),
    0xE0: TagInfo(
        "key information template",
        children={0xC0: TagInfo("key information", decode=key_information, size=(4, 4))},
    ),
    0x9F6E: TagInfo("application production life cycle data", size=(6, 6)),
    0x9F7F: TagInfo("card production life cycle data", decode=cplc, size=(42, 42)),
}

#: GET STATUS registry entry, tagged format (§11.4.3.1 Table 11-36).
REGISTRY_ENTRY_TAGS: dict[int, TagInfo] = {
    0x4F: TagInfo("AID", size=(5, 16)),
    0x9F70: TagInfo("life cycle state", decode=_state_byte, size=(1, 1)),
    0xC5: TagInfo("privileges", decode=privileges, size=(3, 3)),
    0xC4: TagInfo("executable load file AID", size=(5, 16)),
    0xCE: TagInfo("executable load file version", size=(2, 2)),
    0x84: TagInfo("executable module AID", size=(5, 16)),
    0xCC: TagInfo("associated security domain AID", size=(5, 16)),
    0xCF: TagInfo("implicit selection parameter", size=(1, 1)),
}


def life_cycle_name(subset: int, state: int) -> str:
    """A GET STATUS life cycle state, read as the kind of entry P1 asked for."""
    if subset == 0x80:
        return card_state(state)
    if subset == 0x40:
        return application_state(state)
    return "LOADED" if state == 0x01 else f"RFU {state:02X}"


class RegistryEntries(BerTlv):
    """GET STATUS entries (tagged); 9F70 is named after the subset the command asked for.

    The same byte is OP_READY for the ISD and LOADED for a load file, so the
    name comes from P1 (`subset`), which the decoder hands in as `params`.
    """

    def _parse(self, stream: Any, context: Any, path: str) -> list[dict[str, Any]]:
        entries = super()._parse(stream, context, path)
        params = context.get("params") or {}
        subset = params.get("subset")
        if subset is None:
            return entries
        for entry in entries:
            for child in entry.get("children", ()):
                value = child.get("value", b"")
                if int(child["tag"]) == 0x9F70 and len(value) == 1:
                    child["decoded"] = life_cycle_name(int(subset), value[0])
        return entries


GET_STATUS_TAGGED = RegistryEntries({0xE3: TagInfo("registry entry", children=REGISTRY_ENTRY_TAGS)})
#: Search criteria (§11.4.2.2): an AID (prefix; empty = all) and an optional tag list.
GET_STATUS_CRITERIA = BerTlv(
    {
        0x4F: TagInfo("AID", size=(0, 16)),
        0x5C: TagInfo("tag list", size=(1, 8)),
    },
    required=(0x4F,),
    max_items=1,
)

#: System specific parameters (§11.5.2.3.7 Table 11-49), inside EF.
SYSTEM_PARAMETER_TAGS: dict[int, TagInfo] = {
    0xC6: TagInfo("non-volatile code minimum memory", decode=int_be, size=(2, 4)),
    0xC7: TagInfo("volatile memory quota", decode=int_be, size=(2, 4)),
    0xC8: TagInfo("non-volatile memory quota", decode=int_be, size=(2, 4)),
    0xCB: TagInfo("global service parameters"),
    0xCF: TagInfo("implicit selection parameter", size=(1, 1)),
    0xD7: TagInfo("volatile reserved memory", decode=int_be, size=(2, 4)),
    0xD8: TagInfo("non-volatile reserved memory", decode=int_be, size=(2, 4)),
}
INSTALL_PARAMETER_TAGS: dict[int, TagInfo] = {
    0xC9: TagInfo("application specific parameters", size=(0, 16)),
    0xEF: TagInfo("system specific parameters", children=SYSTEM_PARAMETER_TAGS),
    0xEA: TagInfo("TS 102 226 specific parameters"),
}
LOAD_PARAMETER_TAGS: dict[int, TagInfo] = {
    0xEF: TagInfo("system specific parameters", children=SYSTEM_PARAMETER_TAGS),
}
#: DELETE data (§11.2.2.3 Tables 11-22, 11-23).
DELETE_TAGS: dict[int, TagInfo] = {
    0x4F: TagInfo("AID", size=(5, 16)),
    0xB6: TagInfo("control reference template for digital signature"),
    0x9E: TagInfo("delete token", size=(8, 16)),
    0xD0: TagInfo("key identifier", size=(1, 1)),
    0xD2: TagInfo("key version number", size=(1, 1)),
}

# -- Data field constructs ------------------------------------------------------------

#: A length byte and that many bytes (the INSTALL data fields, §11.5.2.3).
LV = c.Prefixed(c.Int8ub, c.GreedyBytes)

INSTALL_FOR_LOAD = c.Struct(
    "load_file_aid" / LV,
    "security_domain_aid" / LV,
    "load_file_data_block_hash" / LV,
    "load_parameters" / c.Prefixed(c.Int8ub, BerTlv(LOAD_PARAMETER_TAGS, max_items=1)),
    "load_token" / LV,
)
#: INSTALL [for install], [for make selectable], [for personalization] and the others
#: share this layout (Tables 11-46..11-50); unused fields are empty.
INSTALL_FIELDS = c.Struct(
    "load_file_aid" / LV,
    "module_aid" / LV,
    "application_aid" / LV,
    "privileges" / LV,
    "install_parameters" / c.Prefixed(c.Int8ub, BerTlv(INSTALL_PARAMETER_TAGS, max_items=2)),
    "install_token" / LV,
)

PUT_KEY_DATA = c.Struct(
    "new_version" / c.Int8ub,
    "keys" / c.GreedyRange(c.Struct("type" / c.Int8ub, "key_data" / LV, "check_value" / LV)),
)
PUT_KEY_RESPONSE = c.Struct("version" / c.Int8ub, "check_values" / c.GreedyRange(c.Bytes(3)))


class Generated(c.Subconstruct):
    """A construct whose generated values come from `gen` (a layout `value_for` cannot read)."""

    def __init__(self, subcon: c.Construct, gen: Any) -> None:
        super().__init__(subcon)
        self.gen = gen

    def generate(self, draw: Draw, size: tuple[int, int] | None = None) -> Any:
        return self.gen(draw)


def _challenge_len(ctx: Any) -> int:
    return 16 if ctx.i & 0x01 else 8


_SCP03_TAIL = c.Struct(
    "i" / c.Int8ub,
    "card_challenge" / c.Bytes(_challenge_len),
    "card_cryptogram" / c.Bytes(_challenge_len),
    "sequence_counter" / c.Optional(c.Bytes(3)),
)
_SCP02_TAIL = c.Struct(
    "sequence_counter" / c.Bytes(2),
    "card_challenge" / c.Bytes(6),
    "card_cryptogram" / c.Bytes(8),
)


def _gen_init_update_response(draw: Draw) -> dict[str, Any]:
    if draw.boolean():
        n = draw.choice((8, 16))
        i = draw.choice((0x00, 0x10, 0x60, 0x70)) | (1 if n == 16 else 0)
        tail: dict[str, Any] = {
            "i": i,
            "card_challenge": draw.binary(n, n),
            "card_cryptogram": draw.binary(n, n),
            "sequence_counter": draw.binary(3, 3) if i & 0x10 else None,
        }
        scp = 3
    else:
        scp = 2
        tail = {
            "sequence_counter": draw.binary(2, 2),
            "card_challenge": draw.binary(6, 6),
            "card_cryptogram": draw.binary(8, 8),
        }
    return {
        "key_diversification_data": draw.binary(10, 10),
        "key_version": draw.integer(0, 0x7F),
        "scp": scp,
        "protocol": tail,
    }


INIT_UPDATE_RESPONSE = Generated(
    c.Struct(
        "key_diversification_data" / c.Bytes(10),
        "key_version" / c.Int8ub,
        "scp" / c.Int8ub,
        "protocol" / c.Switch(c.this.scp, {2: _SCP02_TAIL, 3: _SCP03_TAIL}),
    ),
    _gen_init_update_response,
)
#: EXTERNAL AUTHENTICATE data: host cryptogram and C-MAC, 8 bytes each (S8) or 16 (S16).
EXT_AUTH_DATA = c.Select(
    c.Struct("host_cryptogram" / c.Bytes(8), "mac" / c.Bytes(8), c.Terminated),
    c.Struct("host_cryptogram" / c.Bytes(16), "mac" / c.Bytes(16), c.Terminated),
)

# -- Summaries ------------------------------------------------------------------------


def _hx(b: Any) -> str:
    return b.hex().upper() if isinstance(b, bytes | bytearray) else str(b)


def _le(d: Decoded) -> str:
    ne = d.fields.get("ne")
    return f", Ne {ne}" if ne is not None else ""


def _secured(d: Decoded) -> str:
    return " (secured)" if d.fields["cla"] & 0x04 else ""


def _init_update_summary(d: Decoded) -> str:
    kvn = d.params["key_version"]
    which = "first available key set" if not kvn else f"key version {kvn:02X}"
    return f"INITIALIZE UPDATE {which}, host challenge {_hx(d.data)}{_le(d)}"


def _init_update_response(d: Decoded) -> str:
    v = d.data
    if not isinstance(v, dict):
        return _hx(v)
    t = v["protocol"]
    text = f"SCP{v['scp']:02X}, key version {v['key_version']:02X}"
    if v["scp"] == 3:
        text += f", i {t['i']:02X}"
    text += f", card challenge {_hx(t['card_challenge'])}"
    if t.get("sequence_counter") is not None:
        text += f", sequence counter {int_be(t['sequence_counter'])}"
    return text


def _ext_auth_summary(d: Decoded) -> str:
    level = d.params["security_level"]
    v = d.data
    crypto = f", host cryptogram {_hx(v['host_cryptogram'])}" if isinstance(v, dict) else ""
    return f"EXTERNAL AUTHENTICATE, security level {level:02X} ({level}){crypto}"


def _aid_criteria(d: Decoded) -> str:
    data = d.data
    if isinstance(data, list):
        for e in data:
            if int(e["tag"]) == 0x4F:
                return f"AID {_hx(e['value'])}" if e.get("value") else "all"
    return _hx(data)


def _get_status_summary(d: Decoded) -> str:
    p = d.params
    text = f"GET STATUS {p['subset']}, {p['occurrence']}{_secured(d)}"
    if not d.fields["cla"] & 0x04 and d.data is not None:
        text += f", {_aid_criteria(d)}"
    return text + _le(d)


def _entry_text(entry: dict[str, Any]) -> str:
    aid, state = "?", ""
    for child in entry.get("children", ()):
        tag = int(child["tag"])
        if tag == 0x4F:
            aid = _hx(child.get("value", b""))
        elif tag == 0x9F70:
            decoded = child.get("decoded")
            state = decoded if isinstance(decoded, str) else _hx(child.get("value", b""))
    return f"{aid} {state}".strip()


def _get_status_response(d: Decoded) -> str:
    data = d.data
    if not isinstance(data, list):
        return _hx(data)
    entries = [_entry_text(e) for e in data if int(e["tag"]) == 0xE3]
    shown = "; ".join(entries[:4])
    more = f"; {len(entries) - 4} more" if len(entries) > 4 else ""
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown}{more}"


def _install_summary(d: Decoded) -> str:
    assert d.spec is not None
    name = f"INSTALL [{d.spec.variant.removesuffix(', secured')}]{_secured(d)}"
    v = d.data
    if not isinstance(v, dict):
        return name + _le(d)
    parts = [name]
    for key, label in (
        ("load_file_aid", "load file"),
        ("module_aid", "module"),
        ("application_aid", "application"),
        ("security_domain_aid", "SD"),
    ):
        if v.get(key):
            parts.append(f"{label} {_hx(v[key])}")
    if v.get("privileges"):
        parts.append(f"privileges {_hx(v['privileges'])}")
    if v.get("load_file_data_block_hash"):
        parts.append(f"hash of {len(v['load_file_data_block_hash'])} bytes")
    params = v.get("install_parameters")
    if params:
        parts.append(f"parameters [{tlv_summary(params)}]")
    return ", ".join(parts) + _le(d)


def _block_summary(name: str) -> Any:
    def summary(d: Decoded) -> str:
        p = d.params
        last = ", last block" if p["last"] else ""
        return f"{name}{_secured(d)} block {p['block']}{last}, {d.fields['nc']} bytes{_le(d)}"

    return summary


def _delete_summary(d: Decoded) -> str:
    what = "with related objects" if d.params["related"] else "object"
    text = f"DELETE{_secured(d)} {what}"
    data = d.data
    if isinstance(data, list) and not d.fields["cla"] & 0x04:
        text += f", {tlv_summary(data)}"
    return text + _le(d)


def _put_key_summary(d: Decoded) -> str:
    p = d.params
    replaced = (
        "add a key set" if not p["replace_version"] else f"replace {p['replace_version']:02X}"
    )
    text = f"PUT KEY{_secured(d)} {replaced}, key id {p['key_id']}"
    if p["multiple"]:
        text += ", several keys"
    v = d.data
    if isinstance(v, dict):
        types = " ".join(f"{k['type']:02X}" for k in v["keys"])
        text += f", new version {v['new_version']:02X}, key types {types}"
    return text + _le(d)


def _put_key_response(d: Decoded) -> str:
    v = d.data
    if not isinstance(v, dict):
        return _hx(v)
    kcvs = " ".join(_hx(k) for k in v["check_values"])
    return f"version {v['version']:02X}, check values {kcvs}"


def _set_status_summary(d: Decoded) -> str:
    p = d.params
    target = p["type"]
    state = int(p["state"])
    if int(target) == 0x80:
        new = card_state(state)
    elif state & 0x80:
        new = "LOCKED"
    elif state == 0:
        new = "unlock"
    else:
        new = f"state {state:02X}"
    aid = f" {_hx(d.data)}" if d.data and not d.fields["cla"] & 0x04 else ""
    return f"SET STATUS{_secured(d)} {target}{aid} -> {new}"


_GET_DATA_NAMES = {tag: info.name for tag, info in GET_DATA_TAGS.items()}


def _get_data_summary(d: Decoded) -> str:
    tag = int(d.params["tag"])
    name = _GET_DATA_NAMES.get(tag)
    label = f"{tag:04X} ({name})" if name else f"{tag:04X}"
    return f"GET DATA{_secured(d)} {label}{_le(d)}"


def _tlv_response(d: Decoded) -> str:
    data = d.data
    return tlv_summary(data) if isinstance(data, list) else _hx(data)


# -- P1-P2 fields ---------------------------------------------------------------------

SECURITY_LEVELS = {
    0x00: "no secure messaging",
    0x01: "C-MAC",
    0x03: "C-DECRYPTION and C-MAC",
    0x11: "C-MAC and R-MAC",
    0x13: "C-DECRYPTION, C-MAC and R-MAC",
    0x33: "C-DECRYPTION, R-ENCRYPTION, C-MAC and R-MAC",
}
STATUS_SUBSETS = {
    0x80: "issuer security domain",
    0x40: "applications and security domains",
    0x20: "executable load files",
    0x10: "executable load files and modules",
}
INSTALL_VARIANTS = {
    0x02: "for load",
    0x04: "for install",
    0x08: "for make selectable",
    0x0C: "for install and make selectable",
    0x10: "for extradition",
    0x20: "for personalization",
    0x40: "for registry update",
}
_MORE = p1("more", {0: "last or only command", 1: "more commands follow"}, mask=0x80)
_COMBINED = p2(
    "combined",
    {
        0x00: "no information",
        0x01: "beginning of a combined load, install and make selectable",
        0x03: "end of a combined load, install and make selectable",
    },
)
_BLOCK = (p1("last", {0: "more blocks", 1: "last block"}, mask=0x80), p2("block"))

_CM_SWS = sws("6310 6581 6982 6985 6A80 6A81 6A82 6A84 6A86 6A88 6A89 9484 9485")


# -- Specs ----------------------------------------------------------------------------


def _gp(
    name: str,
    ins: int,
    clause: str,
    *,
    variant: str = "",
    secured_too: bool = True,
    secured_vectors: tuple[Vector, ...] = (),
    **kw: Any,
) -> tuple[CommandSpec, ...]:
    """A GP command (CLA 80-83) and, unless told otherwise, its SCP-secured twin (84-87)."""
    plain = CommandSpec(
        name,
        ins,
        clause,
        variant=variant,
        cla=0x80,
        cla_mask=_CLA_MASK,
        context=SECURITY_DOMAIN,
        **kw,
    )
    if not secured_too:
        return (plain,)
    secured = CommandSpec(
        name,
        ins,
        f"{clause}; {AMD_D} §6.2.4",
        variant=f"{variant}, secured" if variant else "secured",
        cla=0x84,
        cla_mask=_CLA_MASK,
        context=SECURITY_DOMAIN,
        p1=kw.get("p1"),
        p2=kw.get("p2"),
        match=kw.get("match", (0, 0)),
        fields=kw.get("fields", ()),
        data=c.GreedyBytes,
        nc=(8, 65535),
        le=Le.OPTIONAL if kw.get("le", Le.ABSENT) is Le.ABSENT else kw["le"],
        response=c.GreedyBytes,
        sws=kw.get("sws", ()),
        summary=kw.get("summary"),
        doc="The data field is C-MAC'ed (and may be encrypted): it is not decoded.",
        vectors=secured_vectors,
    )
    return (plain, secured)


def _install(
    p1_value: int,
    data: c.Construct,
    vectors: tuple[Vector, ...],
    secured: str,
) -> tuple[CommandSpec, ...]:
    name = f"INSTALL [{INSTALL_VARIANTS[p1_value]}] (secured)"
    return _gp(
        "INSTALL",
        0xE6,
        f"{CLAUSE} §11.5 (Tables 11-41, 11-42)",
        variant=INSTALL_VARIANTS[p1_value],
        match=(0x7F00, p1_value << 8),
        fields=(_MORE, _COMBINED),
        data=data,
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=_CM_SWS,
        summary=_install_summary,
        vectors=vectors,
        secured_vectors=(Vector(secured, f"{name}, Ne 256", source=WRAPPED),),
    )


SPECS: tuple[CommandSpec, ...] = (
    *_gp(
        "INITIALIZE UPDATE",
        0x50,
        f"{AMD_D} §7.1.1 (Tables 7-1, 7-3); {CLAUSE} §E.5.1 (SCP02)",
        secured_too=False,
        p2=0x00,
        fields=(p1("key_version", hex=True),),
        data=c.GreedyBytes,
        nc=(8, 16),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=INIT_UPDATE_RESPONSE,
        sws=sws("6A88 6982 6985"),
        summary=_init_update_summary,
        response_summary=_init_update_response,
        vectors=(
            Vector(
                "8050300008B13E5F938FC108C400",
                "INITIALIZE UPDATE key version 30, host challenge B13E5F938FC108C4, Ne 256",
                {"params": {"key_version": "30"}, "data": "B13E5F938FC108C4"},
                response="000000000000000000003003703EB51047495B249F66C484C1D2EF19480000029000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): SCP03, key version 30, "
                    "i 70, card challenge 3EB51047495B249F, sequence counter 2"
                ),
                response_expect={
                    "data": {
                        "key_version": 0x30,
                        "scp": 3,
                        "protocol": {
                            "i": 0x70,
                            "card_challenge": "3EB51047495B249F",
                            "card_cryptogram": "66C484C1D2EF1948",
                            "sequence_counter": "000002",
                        },
                    }
                },
                source=PYSIM,
            ),
            Vector(
                "80500000082291D8CDC310411E00",
                "INITIALIZE UPDATE first available key set, host challenge 2291D8CDC310411E, "
                "Ne 256",
                response="0000000000000000000030037086C8BD65FA1044EE54B5145059B0E7020000019000",
                response_expect={"data": {"protocol": {"sequence_counter": "000001"}}},
                source=EMULATOR,
            ),
        ),
    ),
    CommandSpec(
        "EXTERNAL AUTHENTICATE",
        0x82,
        f"{AMD_D} §7.1.2 (Tables 7-4, 7-5)",
        variant="SCP",
        cla=0x84,
        cla_mask=_CLA_MASK,
        context=SECURITY_DOMAIN,
        p2=0x00,
        fields=(p1("security_level", SECURITY_LEVELS),),
        data=EXT_AUTH_DATA,
        nc=(16, 32),
        sws=sws("6300 6982 6985 6A86"),
        summary=_ext_auth_summary,
        doc="MAC'ed from a zero chaining value, never encrypted.",
        vectors=(
            Vector(
                "84821100107D5F5826A993EBC89EEA24957FA0B3CE",
                "EXTERNAL AUTHENTICATE, security level 11 (C-MAC and R-MAC), host cryptogram "
                "7D5F5826A993EBC8",
                {
                    "params": {"security_level": "C-MAC and R-MAC"},
                    "data": {"host_cryptogram": "7D5F5826A993EBC8", "mac": "9EEA24957FA0B3CE"},
                },
                response="9000",
                source=PYSIM,
            ),
            Vector(
                "84823300108C36F96BCC00724A4E13AD591D7DA3F0",
                "EXTERNAL AUTHENTICATE, security level 33 (C-DECRYPTION, R-ENCRYPTION, C-MAC "
                "and R-MAC), host cryptogram 8C36F96BCC00724A",
                source=PYSIM,
            ),
        ),
    ),
    *_gp(
        "GET STATUS",
        0xF2,
        f"{CLAUSE} §11.4 (Tables 11-31..11-36)",
        variant="tagged",
        match=(0x0002, 0x0002),
        fields=(
            p1("subset", STATUS_SUBSETS),
            p2("occurrence", {0: "first or all", 1: "next"}, mask=0x01),
        ),
        data=GET_STATUS_CRITERIA,
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=GET_STATUS_TAGGED,
        sws=sws("6310 6982 6A80 6A81 6A86 6A88"),
        summary=_get_status_summary,
        response_summary=_get_status_response,
        vectors=(
            Vector(
                "80F28002024F0000",
                "GET STATUS issuer security domain, first or all, all, Ne 256",
                {"params": {"subset": "issuer security domain"}},
                response="E3134F08A0000001510000009F700101C5039EFE809000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): "
                    "1 entry: A000000151000000 OP_READY"
                ),
                response_expect={
                    "data": [
                        {
                            "tag": "E3",
                            "children": [
                                {"tag": "4F", "value": "A000000151000000"},
                                {"tag": "9F70", "decoded": "OP_READY"},
                                {
                                    "tag": "C5",
                                    "decoded": [
                                        "security domain",
                                        "card lock",
                                        "card terminate",
                                        "card reset",
                                        "CVM management",
                                        "trusted path",
                                        "authorized management",
                                        "token verification",
                                        "global delete",
                                        "global lock",
                                        "global registry",
                                        "final application",
                                        "receipt generation",
                                    ],
                                },
                            ],
                        }
                    ]
                },
                source=f"{PYSIM} (command); {EMULATOR} (response)",
            ),
            Vector(
                "80F21002024F0000",
                "GET STATUS executable load files and modules, first or all, all, Ne 256",
                response="E3364F10F043415244454D5550E0CF3BD7F6AC049F700101CE0200018410F0434152"
                "44454D554D07DEFA354333C3CC08A000000151000000"
                "9000",
                response_expect={
                    "data": [
                        {
                            "tag": "E3",
                            "children": [
                                {"tag": "4F"},
                                {"tag": "9F70"},
                                {"tag": "CE", "value": "0001"},
                                {"tag": "84", "name": "executable module AID"},
                                {"tag": "CC", "value": "A000000151000000"},
                            ],
                        }
                    ]
                },
                source=EMULATOR + " (one module kept)",
            ),
        ),
        secured_vectors=(
            Vector(
                "84F280020A4F00E91443F6DCE6B8ED00",
                "GET STATUS issuer security domain, first or all (secured), Ne 256",
                {"secure_messaging": "proprietary", "nc": 10},
                source=f"{PYSIM}, level 11",
            ),
            Vector(
                "84F22002124F0212345C054F9F70C52249B50272656536",
                "GET STATUS executable load files, first or all (secured)",
                source=f"{PYSIM}, level 11 (the plain command's 5C announces 5 bytes, holds 4)",
            ),
        ),
    ),
    *_gp(
        "GET STATUS",
        0xF2,
        f"{CLAUSE} §11.4.3.2 (Table 11-37, GP 2.1.1 format)",
        secured_vectors=(
            Vector(
                "84F2400018C63BB560BD6757CD706C51D7DCBBF52F029C91D6F159C8AD00",
                "GET STATUS applications and security domains, first or all (secured), Ne 256",
                source=WRAPPED,
            ),
        ),
        variant="legacy",
        match=(0x0002, 0x0000),
        fields=(
            p1("subset", STATUS_SUBSETS),
            p2("occurrence", {0: "first or all", 1: "next"}, mask=0x01),
        ),
        data=GET_STATUS_CRITERIA,
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=sws("6310 6982 6A80 6A81 6A86 6A88"),
        summary=_get_status_summary,
        vectors=(
            Vector(
                "80F24000024F0000",
                "GET STATUS applications and security domains, first or all, all, Ne 256",
                response="05F00000000307009000",
                source="GPC v2.3.1 Table 11-37 layout: length, AID, life cycle, privileges",
            ),
        ),
    ),
    *_install(
        0x02,
        INSTALL_FOR_LOAD,
        (
            Vector(
                "80E602003205F0000000AA08A00000015100000020B196FB4B0441E238897D807CDE38B32C76A4"
                "8031BCE35C3416D2C13D4968819F000000",
                "INSTALL [for load], load file F0000000AA, SD A000000151000000, hash of 32 "
                "bytes, Ne 256",
                {
                    "params": {"more": "last or only command", "combined": "no information"},
                    "data": {
                        "load_file_aid": "F0000000AA",
                        "security_domain_aid": "A000000151000000",
                        "load_parameters": [],
                        "load_token": "",
                    },
                },
                response="009000",
                source=EMULATOR,
            ),
        ),
        "84E6020048F0B9FEBC84CE4843C0B9F36790393A9F3A4242C3D405FE376A6071C3FF94A44C659A9615"
        "235E8DDE6FD34D94C5E37DBB942FC427329F2225D1DB84EC365D1F2D3E4C57B756C0727000",
    ),
    *_install(
        0x04,
        INSTALL_FIELDS,
        (
            Vector(
                "80E604001C05F0000000AA06F0000000AA0006F0000000AA01010004C90268690000",
                "INSTALL [for install], load file F0000000AA, module F0000000AA00, application "
                "F0000000AA01, privileges 00, parameters [application specific parameters "
                "6869], Ne 256",
                source=EMULATOR,
            ),
        ),
        "84E604002890B48E938E11EA667486552DE08FBC06D5A2AEF197A62C4AD1D7D1CD7834878B93529568"
        "85B58D9500",
    ),
    *_install(
        0x08,
        INSTALL_FIELDS,
        (
            Vector(
                "80E608000D000006F0000000AA010100000000",
                source="GPC v2.3.1 Table 11-47 layout",
            ),
        ),
        "84E6080018F5BFD71B9C60FC9B75898595F47FB42933A8A4C861EA6CEA00",
    ),
    *_install(
        0x0C,
        INSTALL_FIELDS,
        (
            Vector(
                "80E60C001C05F0000000AA06F0000000AA0006F0000000AA01010004C90268690000",
                "INSTALL [for install and make selectable], load file F0000000AA, module "
                "F0000000AA00, application F0000000AA01, privileges 00, parameters "
                "[application specific parameters 6869], Ne 256",
                {
                    "data": {
                        "application_aid": "F0000000AA01",
                        "privileges": "00",
                        "install_parameters": [{"tag": "C9", "value": "6869"}],
                    }
                },
                response="009000",
                source=EMULATOR,
            ),
        ),
        "84E60C002890B48E938E11EA667486552DE08FBC06D5A2AEF197A62C4AD1D7D1CD7834878BA830F678"
        "96C5EAEF00",
    ),
    *_install(
        0x10,
        INSTALL_FIELDS,
        (
            Vector(
                "80E610001408A0000001510000000006F0000000AA0100000000",
                source="GPC v2.3.1 Table 11-50 layout: SD AID, application AID",
            ),
        ),
        "84E6100028692760CD60E49ED86CF0B03B0E35279FA56DC8CDEC097A3AAF0421854F6A031477F4727DE7"
        "36D64C00",
    ),
    *_install(
        0x20,
        INSTALL_FIELDS,
        (
            Vector(
                "80E620000C000006F0000000AA0100000000",
                "INSTALL [for personalization], application F0000000AA01, Ne 256",
                response="009000",
                source=EMULATOR,
            ),
        ),
        "84E6200018FBFB9FF23C39B0F284EA0C91B19F0493D2479320D99B48A800",
    ),
    *_install(
        0x40,
        INSTALL_FIELDS,
        (
            Vector(
                "80E640000D000006F0000000AA010100000000",
                source="GPC v2.3.1 Table 11-51 layout",
            ),
        ),
        "84E6400018F5BFD71B9C60FC9B75898595F47FB4296C7C9DA78147D40F00",
    ),
    *_gp(
        "LOAD",
        0xE8,
        f"{CLAUSE} §11.6 (Tables 11-55..11-58)",
        secured_vectors=(
            Vector(
                "84E80000180946409F8A26AFBD1CED002CD789817D06A2AF8CA6E8D5FD",
                "LOAD (secured) block 0, 24 bytes",
                source=WRAPPED,
            ),
        ),
        fields=_BLOCK,
        data=c.GreedyBytes,
        nc=(1, 65535),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=_CM_SWS,
        summary=_block_summary("LOAD"),
        doc="Blocks of the load file stream: [E2 DAP blocks] C4 length Load File Data Block.",
        vectors=(
            Vector(
                "80E8800070C46EFF436B8001014F05F0000000AACE020001810D6170706C6574732E6E6F7465"
                "7382205921D958695E7E04888EADCE3FE7905CCEDF8592DB344BEDE1EDE25A6A36DC52A02A4F"
                "06F0000000AA0080056E6F74657381196170706C6574732E6E6F7465733A4E6F74657341707"
                "06C657400",
                "LOAD block 0, last block, 112 bytes, Ne 256",
                {"params": {"last": "last block", "block": 0}, "nc": 112},
                response="009000",
                source=EMULATOR,
            ),
        ),
    ),
    *_gp(
        "DELETE",
        0xE4,
        f"{CLAUSE} §11.2 (Tables 11-19..11-23)",
        secured_vectors=(
            Vector(
                "84E4000018EA14BB06FCE54BC889AF8AB24C7F45B229412CBBF2059CAC00",
                "DELETE (secured) object, Ne 256",
                source=WRAPPED,
            ),
        ),
        p1=0x00,
        fields=(p2("related", {0: "object only", 1: "object and related objects"}, mask=0x80),),
        data=BerTlv(DELETE_TAGS, required=(0x4F,), max_items=1),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=_CM_SWS,
        summary=_delete_summary,
        vectors=(
            Vector(
                "80E40000084F06F0000000AA0100",
                "DELETE object, AID F0000000AA01, Ne 256",
                {"params": {"related": "object only"}, "data": [{"tag": "4F"}]},
                response="009000",
                source=EMULATOR,
            ),
            Vector(
                "80E40080074F05F0000000AA00",
                "DELETE with related objects, AID F0000000AA, Ne 256",
                response="6A88",
                source=EMULATOR + ": nothing left to delete",
            ),
        ),
    ),
    *_gp(
        "PUT KEY",
        0xD8,
        f"{CLAUSE} §11.8 (Tables 11-63..11-71); {AMD_D} §7.2",
        secured_vectors=(
            Vector(
                "84D80081584B68CB22F3ED531201AEB0257925D6F76FA54F5AABFA3BFECDE9FA61F91FD82A349FC08163B8ACA0FAAA1E1814A7745BFD5AA9780EACA5EB274E781FA7E748103E63EFA572F4E1C374D77D203083EF2C26737D63C2F6201000",
                "PUT KEY (secured) add a key set, key id 1, several keys, Ne 256",
                source=WRAPPED,
            ),
        ),
        fields=(
            p1("more", {0: "last or only command", 1: "more commands follow"}, mask=0x80),
            p1("replace_version", mask=0x7F, hex=True),
            p2("multiple", {0: "one key", 1: "several keys"}, mask=0x80),
            p2("key_id", mask=0x7F),
        ),
        data=PUT_KEY_DATA,
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=PUT_KEY_RESPONSE,
        sws=sws("6581 6982 6985 6A80 6A84 6A88 9484 9485"),
        summary=_put_key_summary,
        response_summary=_put_key_response,
        vectors=(
            Vector(
                "80D8008146318811103D0FA4B855D2A5AA4954B8B5DF582A3A03C352808811103D0FA4B855D2A5"
                "AA4954B8B5DF582A3A03C352808811103D0FA4B855D2A5AA4954B8B5DF582A3A03C3528000",
                "PUT KEY add a key set, key id 1, several keys, new version 31, key types 88 88 "
                "88, Ne 256",
                {
                    "params": {"replace_version": "00", "key_id": 1},
                    "data": {
                        "new_version": 0x31,
                        "keys": [
                            {"type": 0x88, "check_value": "C35280"},
                            {"type": 0x88},
                            {"type": 0x88},
                        ],
                    },
                },
                response="31C35280C35280C352809000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): version 31, check "
                    "values C35280 C35280 C35280"
                ),
                source=EMULATOR + ": keys 00..0F wrapped under the test DEK",
            ),
        ),
    ),
    *_gp(
        "SET STATUS",
        0xF0,
        f"{CLAUSE} §11.10 (Tables 11-85..11-87)",
        secured_vectors=(
            Vector(
                "84F0408018B1CF6D17C8C8F342BDC8A4234D7FAA1C63A01BC2C2E40E94",
                "SET STATUS (secured) application or security domain -> LOCKED",
                source=WRAPPED,
            ),
        ),
        fields=(
            p1(
                "type",
                {
                    0x80: "issuer security domain",
                    0x40: "application or security domain",
                    0x60: "security domain and its applications",
                },
            ),
            p2("state", hex=True),
        ),
        data=c.GreedyBytes,
        nc=(0, 16),
        sws=_CM_SWS,
        summary=_set_status_summary,
        vectors=(
            Vector(
                "80F0408006F0000000AA01",
                "SET STATUS application or security domain F0000000AA01 -> LOCKED",
                response="9000",
                source=EMULATOR,
            ),
            Vector(
                "80F0400006F0000000AA01",
                "SET STATUS application or security domain F0000000AA01 -> unlock",
                source=EMULATOR,
            ),
            Vector(
                "80F08007",
                "SET STATUS issuer security domain -> INITIALIZED",
                {"params": {"state": "07"}},
                response="9000",
                source=EMULATOR,
            ),
        ),
    ),
    *_gp(
        "STORE DATA",
        0xE2,
        f"{CLAUSE} §11.11 (Tables 11-89, 11-90)",
        secured_vectors=(
            Vector(
                "84E2800018CB39BC80432571B8DBB121FFCFE17ADDC375C3ACE34F537500",
                "STORE DATA (secured) block 0, last block, 24 bytes, Ne 256",
                source=WRAPPED,
            ),
        ),
        fields=(
            p1("last", {0: "more blocks", 1: "last block"}, mask=0x80),
            p1(
                "encryption",
                {0: "no information", 1: "application dependent", 3: "encrypted data"},
                mask=0x60,
            ),
            p1(
                "structure",
                {0: "no information", 1: "DGI format", 2: "BER-TLV format"},
                mask=0x18,
            ),
            p1(
                "case",
                {0: "case 3, no response data", 1: "case 4, response data expected"},
                mask=0x01,
            ),
            p2("block"),
        ),
        data=c.GreedyBytes,
        nc=(0, 65535),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=c.GreedyBytes,
        sws=_CM_SWS,
        summary=_block_summary("STORE DATA"),
        vectors=(
            Vector(
                "80E28000056E6F74657300",
                "STORE DATA block 0, last block, 5 bytes, Ne 256",
                {"params": {"structure": "no information", "encryption": "no information"}},
                response="9000",
                source=EMULATOR,
            ),
        ),
    ),
    *_gp(
        "GET DATA",
        0xCA,
        f"{CLAUSE} §11.3 (Tables 11-26..11-29), Annex H",
        variant="GlobalPlatform",
        fields=(p1p2("tag", hex=True),),
        le=Le.OPTIONAL,
        ne=(1, 256),
        response=BerTlv(GET_DATA_TAGS, max_items=1),
        sws=sws("6A88 6982 6985"),
        summary=_get_data_summary,
        response_summary=_tlv_response,
        vectors=(
            Vector(
                "80CA006600",
                "GET DATA 0066 (card data), Ne 256",
                {"params": {"tag": "0066"}},
                response="6631732F06072A864886FC6B01600C060A2A864886FC6B02020301630906072A864886"
                "FC6B03640B06092A864886FC6B040370"
                "9000",
                response_expect={
                    "data": [
                        {
                            "tag": "66",
                            "children": [
                                {
                                    "tag": "73",
                                    "children": [
                                        {"tag": "06", "decoded": "1.2.840.114283.1"},
                                        {
                                            "tag": "60",
                                            "children": [
                                                {"tag": "06", "decoded": "1.2.840.114283.2.2.3.1"}
                                            ],
                                        },
                                        {"tag": "63"},
                                        {
                                            "tag": "64",
                                            "children": [
                                                {"tag": "06", "decoded": "1.2.840.114283.4.3.112"}
                                            ],
                                        },
                                    ],
                                }
                            ],
                        }
                    ]
                },
                source=EMULATOR,
            ),
            Vector(
                "80CA9F7F00",
                "GET DATA 9F7F (card production life cycle data), Ne 256",
                response="9F7F2ACADE0001CAE0500101005001143F9AEE0001" + "00" * 24 + "9000",
                response_expect={
                    "data": [
                        {
                            "tag": "9F7F",
                            "decoded": {
                                "ic_fabricator": "CADE",
                                "ic_serial_number": "143F9AEE",
                                "ic_personalization_equipment_id": "00000000",
                            },
                        }
                    ]
                },
                source=EMULATOR,
            ),
            Vector(
                "80CA00E000",
                "GET DATA 00E0 (key information template), Ne 256",
                response="E012C00401308810C00402308810C004033088109000",
                response_expect={
                    "data": [
                        {
                            "tag": "E0",
                            "children": [
                                {
                                    "tag": "C0",
                                    "decoded": {
                                        "id": 1,
                                        "version": "30",
                                        "components": [{"type": "88", "length": 16}],
                                    },
                                },
                                {"tag": "C0"},
                                {"tag": "C0"},
                            ],
                        }
                    ]
                },
                source=EMULATOR,
            ),
        ),
        secured_vectors=(
            Vector(
                "84CA006608A0C6A4A74166F7CE00",
                "GET DATA (secured) 0066 (card data), Ne 256",
                source=f"{PYSIM}, level 11",
            ),
        ),
    ),
)

__all__ = [
    "CARD_STATES",
    "CPLC_FIELDS",
    "CPLC_LENGTH",
    "GET_DATA_TAGS",
    "REGISTRY_ENTRY_TAGS",
    "SECURITY_LEVELS",
    "SPECS",
    "application_state",
    "card_state",
    "cplc",
    "key_information",
    "oid",
    "privileges",
]
