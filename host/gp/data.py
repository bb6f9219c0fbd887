"""GlobalPlatform data a host decodes: registry entries, privileges, life cycles, CPLC, card data.

References are to GlobalPlatform Card Specification v2.3.1: §11.1.1 life cycle
coding, §11.1.2 privileges, §11.4.2 GET STATUS response (tagged and legacy
formats), §H.2/H.3 card recognition data (tag 66), §11.3.3.1 key information
template (tag E0); CPLC is the Card Production Life Cycle data of GP v2.1.1
§A.1 / Visa GlobalPlatform (tag 9F7F).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from apdu_specs import globalplatform as gp_specs
from apdu_specs.globalplatform import CPLC_LENGTH
from apdu_specs.globalplatform import oid as decode_oid
from card import tlv
from card.gp.lifecycle import CARD_STATES
from card.gp.registry import Privilege

__all__ = [
    "StatusScope",
    "Privilege",
    "privileges_from_bytes",
    "privileges_to_bytes",
    "privilege_names",
    "privileges_from_names",
    "RegistryEntry",
    "Cplc",
    "CardRecognitionData",
    "KeyInfo",
    "CARD_LIFE_CYCLES",
    "card_life_cycle_name",
    "app_life_cycle_name",
    "parse_get_status",
    "parse_cplc",
    "parse_card_data",
    "parse_key_information",
    "decode_oid",
    "lv",
]


def lv(value: bytes) -> bytes:
    """A one-byte length then the value, as the INSTALL data fields are built (§11.5.2.3)."""
    if len(value) > 0xFF:
        raise ValueError(f"a length-value field holds at most 255 bytes, not {len(value)}")
    return bytes((len(value),)) + value


class StatusScope(IntEnum):
    """P1 of GET STATUS (§11.4.2.1): which part of the registry to list."""

    ISD = 0x80
    APPLICATIONS = 0x40  # applications and Supplementary Security Domains
    LOAD_FILES = 0x20
    LOAD_FILES_AND_MODULES = 0x10


def privileges_from_bytes(b: bytes) -> Privilege:
    """One byte (GP 2.1.1 and the legacy GET STATUS format) or three bytes (§11.1.2).

    Raises:
        ValueError: another length.
    """
    if len(b) not in (1, 3):
        raise ValueError(f"privileges have 1 or 3 bytes, not {len(b)}")
    return Privilege(int.from_bytes(b.ljust(3, b"\x00"), "big"))


def privileges_to_bytes(p: int, short: bool = False) -> bytes:
    """Three bytes; one byte with `short` when bytes 2-3 are zero (all older cards take)."""
    raw = int(p).to_bytes(3, "big")
    if short and raw[1:] == b"\x00\x00":
        return raw[:1]
    return raw


def privilege_names(p: int) -> list[str]:
    """Names of the privileges set, "card-lock" style, in Table 11-7 order."""
    return [_name(m) for m in Privilege if m & p]


def privileges_from_names(names: str) -> Privilege:
    """Parse "security-domain,card-lock" (case and - / _ do not matter).

    Raises:
        ValueError: an unknown privilege name.
    """
    out = Privilege(0)
    for raw in filter(None, (n.strip() for n in names.split(","))):
        key = raw.upper().replace("-", "_").replace(" ", "_")
        try:
            out |= Privilege[key]
        except KeyError:
            known = ", ".join(_name(m) for m in Privilege)
            raise ValueError(f"unknown privilege {raw!r} (known: {known})") from None
    return out


def _name(m: Privilege) -> str:
    return (m.name or "").lower().replace("_", "-")


CARD_LIFE_CYCLES: dict[int, str] = dict(CARD_STATES)


def card_life_cycle_name(state: int) -> str:
    """Card life cycle state (§11.1.1.1 Table 11-4)."""
    return CARD_LIFE_CYCLES.get(state, f"UNKNOWN_{state:02X}")


def app_life_cycle_name(state: int, security_domain: bool = False) -> str:
    """Application or Security Domain life cycle state (§11.1.1.3-4 Tables 11-5, 11-6).

    b8 set is LOCKED whatever else is set; for applications b4-b7 are
    application-specific above SELECTABLE.
    """
    if state & 0x80:
        return "LOCKED"
    if security_domain and state == 0x0F:
        return "PERSONALIZED"
    if state & 0x07 == 0x07:
        specific = state & 0x78
        if security_domain or not specific:
            return "SELECTABLE"
        return f"SELECTABLE (application state {state:02X})"
    if state == 0x03:
        return "INSTALLED"
    if state == 0x01:
        return "LOADED"
    return f"UNKNOWN_{state:02X}"


@dataclass(frozen=True)
class RegistryEntry:
    """One GET STATUS entry: the ISD, an application or SD, or an executable load file."""

    scope: StatusScope
    aid: bytes
    life_cycle: int
    privileges: Privilege = Privilege(0)
    load_file_aid: bytes | None = None  # C4, for applications
    associated_sd: bytes | None = None  # CC
    version: bytes | None = None  # CE, for load files
    modules: tuple[bytes, ...] = ()  # 84, for load files

    @property
    def kind(self) -> str:
        if self.scope == StatusScope.ISD:
            return "ISD"
        if self.scope == StatusScope.APPLICATIONS:
            return "SD" if self.privileges & Privilege.SECURITY_DOMAIN else "APP"
        return "PKG"

    @property
    def life_cycle_name(self) -> str:
        if self.scope == StatusScope.ISD:
            return card_life_cycle_name(self.life_cycle)
        if self.scope == StatusScope.APPLICATIONS:
            return app_life_cycle_name(
                self.life_cycle, bool(self.privileges & Privilege.SECURITY_DOMAIN)
            )
        return "LOADED" if self.life_cycle == 0x01 else f"UNKNOWN_{self.life_cycle:02X}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "aid": self.aid.hex().upper(),
            "life_cycle": f"{self.life_cycle:02X}",
            "life_cycle_name": self.life_cycle_name,
        }
        if (
            self.scope != StatusScope.LOAD_FILES
            and self.scope != StatusScope.LOAD_FILES_AND_MODULES
        ):
            out["privileges"] = privileges_to_bytes(self.privileges).hex().upper()
            out["privilege_names"] = privilege_names(self.privileges)
        if self.load_file_aid is not None:
            out["load_file"] = self.load_file_aid.hex().upper()
        if self.associated_sd is not None:
            out["security_domain"] = self.associated_sd.hex().upper()
        if self.version is not None:
            out["version"] = self.version.hex().upper()
        if self.modules:
            out["modules"] = [m.hex().upper() for m in self.modules]
        return out


def parse_get_status(
    data: bytes, scope: StatusScope, *, tagged: bool = True
) -> list[RegistryEntry]:
    """Decode one GET STATUS response data field (§11.4.3.1 tagged, §11.4.3.2 legacy).

    Raises:
        ValueError: the bytes do not follow the format.
    """
    return _parse_tagged(data, scope) if tagged else _parse_legacy(data, scope)


def _parse_tagged(data: bytes, scope: StatusScope) -> list[RegistryEntry]:
    out = []
    for t in tlv.parse(data):
        if t.tag != 0xE3:
            raise ValueError(f"GET STATUS: expected E3 templates, found tag {t.tag:02X}")
        aid = t.find(0x4F)
        lc = t.find(0x9F70)
        if aid is None or lc is None or not lc.value:
            raise ValueError("GET STATUS: an E3 entry lacks its AID (4F) or life cycle (9F70)")
        priv = t.find(0xC5)
        elf = t.find(0xC4)
        sd = t.find(0xCC)
        ver = t.find(0xCE)
        out.append(
            RegistryEntry(
                scope,
                aid.value,
                lc.value[0],
                Privilege.from_bytes(priv.value)
                if priv is not None and priv.value
                else Privilege(0),
                elf.value if elf is not None else None,
                sd.value if sd is not None else None,
                ver.value if ver is not None else None,
                tuple(m.value for m in t.find_all(0x84)),
            )
        )
    return out


def _parse_legacy(data: bytes, scope: StatusScope) -> list[RegistryEntry]:
    out = []
    p = 0
    try:
        while p < len(data):
            n = data[p]
            aid = data[p + 1 : p + 1 + n]
            p += 1 + n
            lc, priv = data[p], data[p + 1]
            p += 2
            modules: list[bytes] = []
            if scope == StatusScope.LOAD_FILES_AND_MODULES:
                count = data[p]
                p += 1
                for _ in range(count):
                    m = data[p]
                    modules.append(data[p + 1 : p + 1 + m])
                    p += 1 + m
            if len(aid) != n:
                raise IndexError
            out.append(RegistryEntry(scope, aid, lc, Privilege(priv << 16), modules=tuple(modules)))
    except IndexError:
        raise ValueError(f"GET STATUS: truncated legacy entry at offset {p}") from None
    return out


# -- CPLC ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cplc:
    """Card Production Life Cycle data: 18 fields, dates as YDDD (year digit, day of year)."""

    fields: dict[str, bytes]

    def to_json(self) -> dict[str, str]:
        return {k: v.hex().upper() for k, v in self.fields.items()}


def parse_cplc(data: bytes) -> Cplc:
    """Decode GET DATA 9F7F: with or without the 9F7F tag around the 42 bytes.

    Raises:
        ValueError: not 42 bytes of CPLC.
    """
    if len(data) != CPLC_LENGTH:
        data = tlv.unpack(0x9F7F, data)
    return Cplc(gp_specs.cplc(data))


# -- Card recognition data (tag 66) ------------------------------------------------

_GP_OID = "1.2.840.114283"


@dataclass(frozen=True)
class CardRecognitionData:
    """Card data (GET DATA 66), GPC v2.3.1 Annex H.2: GP version and secure channels."""

    gp_version: str | None
    secure_channels: tuple[tuple[int, int], ...]  # (SCP number, i)
    card_identification_scheme: str | None
    oids: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "gp_version": self.gp_version,
            "secure_channels": [
                {"scp": f"{scp:02X}", "i": f"{i:02X}"} for scp, i in self.secure_channels
            ],
            "card_identification_scheme": self.card_identification_scheme,
            "oids": {f"{k:02X}": v for k, v in self.oids.items()},
        }


def parse_card_data(data: bytes) -> CardRecognitionData:
    """Decode GET DATA 66 (Card Data, containing 73 Card Recognition Data).

    Raises:
        ValueError: no 73 template or malformed TLV.
    """
    top = tlv.find(data, 0x73, recursive=True)
    if top is None:
        raise ValueError("card data has no card recognition data (73)")
    oids: dict[int, str] = {}
    gp_version = scheme = None
    scps: list[tuple[int, int]] = []
    for t in top.children:
        oid_tlv = t if t.tag == 0x06 else (t.find(0x06) if t.constructed else None)
        if oid_tlv is None:
            continue
        oid = decode_oid(oid_tlv.value)
        oids[t.tag] = oid
        tail = oid[len(_GP_OID) + 1 :].split(".") if oid.startswith(_GP_OID + ".") else []
        if t.tag == 0x60 and tail[:1] == ["2"]:
            gp_version = ".".join(tail[1:])
        elif t.tag == 0x63:
            scheme = oid
        elif t.tag == 0x64 and tail[:1] == ["4"] and len(tail) >= 3:
            scps.append((int(tail[1]), int(tail[2])))
    return CardRecognitionData(gp_version, tuple(scps), scheme, oids)


# -- Key information template (tag E0) ----------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """One key of the key information template: id, version, components (type, length)."""

    key_id: int
    kvn: int
    components: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": f"{self.key_id:02X}",
            "version": f"{self.kvn:02X}",
            "components": [{"type": f"{t:02X}", "length": n} for t, n in self.components],
        }


def parse_key_information(data: bytes) -> list[KeyInfo]:
    """Decode GET DATA 00E0 (§11.3.3.1): E0 { C0 (id, version, type, length, ...) ... }.

    Raises:
        ValueError: malformed template.
    """
    top = tlv.find(data, 0xE0)
    items = top.children if top is not None else tuple(tlv.parse(data))
    out = []
    for t in items:
        if t.tag != 0xC0:
            continue
        info = gp_specs.key_information(t.value)
        comps = tuple((int(c["type"]), c["length"]) for c in info.get("components", ()))
        out.append(KeyInfo(info["id"], int(info["version"]), comps))
    return out
