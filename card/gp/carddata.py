"""What the ISD tells about the card: FCI, Card Data, Card Capabilities, CPLC.

- SELECT response (FCI) of a Security Domain: GPC v2.3.1 §11.9.3.1 Table 11-81:
  `6F {84 AID, A5 {73 SD management data, 9F6E production life cycle data,
  9F65 maximum command data length}}`.
- Card Data `66 {73 Card Recognition Data}`: GPC v2.3.1 Annex H.2 (Table H-1):
  the GlobalPlatform OID 1.2.840.114283.1, the card management type and
  version {globalPlatform 2 2 3 1} (v2.3.1), the card identification scheme
  {globalPlatform 3}, the SCP with its "i" {globalPlatform 4 3 i}.
- Card Capability Information, tag 67: GPC v2.3.1 Annex H.4 (Tables H-6..H-8).
- CPLC, tag 9F7F: the 42-byte Card Production Life Cycle data (GPC v2.3.1
  §H.6 / Table H-10, as Visa GP 2.1.1 defined it).
"""

from __future__ import annotations

from dataclasses import dataclass

from card import tlv
from card.gp.registry import APP_PRIVILEGES, ISD_PRIVILEGES, privileges_bytes

# 1.2.840.114283: {iso(1) member-body(2) us(840) globalPlatform(114283)}
GP_OID = bytes.fromhex("2A864886FC6B")
GP_VERSION = (2, 3, 1)
SCP03 = 0x03
#: Maximum command data field, announced in 9F65 (a short APDU's 255 bytes).
MAX_COMMAND_DATA = 0xFF


def _oid(*arcs: int) -> bytes:
    return tlv.build(0x06, GP_OID + bytes(arcs))


def card_recognition_content(scp_i: int) -> bytes:
    """The objects inside tag 73 (Annex H.2)."""
    return (
        _oid(1)
        + tlv.build(0x60, _oid(2, *GP_VERSION))
        + tlv.build(0x63, _oid(3))
        + tlv.build(0x64, _oid(4, SCP03, scp_i))
    )


def card_data(scp_i: int) -> bytes:
    """GET DATA 66: Card Data with the Card Recognition Data."""
    return tlv.build(0x66, tlv.build(0x73, card_recognition_content(scp_i)))


def card_capabilities(scp_i: int) -> bytes:
    """GET DATA 67: Card Capability Information (Annex H.4)."""
    scp = tlv.build(
        0xA0,
        [
            (0x80, bytes((SCP03,))),
            (0x81, bytes((scp_i,))),
            (0x82, b"\x07"),  # AES-128, AES-192 and AES-256 key sets
        ],
    )
    return tlv.build(
        0x67,
        [
            scp,
            (0x81, privileges_bytes(ISD_PRIVILEGES)),  # what an SD could hold
            (0x82, privileges_bytes(APP_PRIVILEGES)),
            (0x83, bytes((0x01, 0x02, 0x03, 0x04))),  # LFDB hash: SHA-1/256/384/512
            (0x87, b"\x40\x00"),  # DAP: ECDSA on P-256 with SHA-256
        ],
    )


@dataclass(frozen=True)
class Cplc:
    """Card Production Life Cycle data: 42 bytes in the order of Table H-10."""

    ic_fabricator: bytes = b"\xca\xde"
    ic_type: bytes = b"\x00\x01"
    os_id: bytes = b"\xca\xe0"
    os_release_date: bytes = b"\x50\x01"  # YDDD: 2025, day 001
    os_release_level: bytes = b"\x01\x00"
    ic_fabrication_date: bytes = b"\x50\x01"
    ic_serial_number: bytes = b"\x00\x00\x00\x01"
    ic_batch_id: bytes = b"\x00\x01"
    ic_module_fabricator: bytes = b"\x00\x00"
    ic_module_packaging_date: bytes = b"\x00\x00"
    icc_manufacturer: bytes = b"\x00\x00"
    ic_embedding_date: bytes = b"\x00\x00"
    ic_pre_personalizer: bytes = b"\x00\x00"
    ic_pre_personalization_date: bytes = b"\x00\x00"
    ic_pre_personalization_equipment: bytes = b"\x00\x00\x00\x00"
    ic_personalizer: bytes = b"\x00\x00"
    ic_personalization_date: bytes = b"\x00\x00"
    ic_personalization_equipment: bytes = b"\x00\x00\x00\x00"

    def to_bytes(self) -> bytes:
        out = b"".join(getattr(self, f) for f in self.__dataclass_fields__)
        if len(out) != 42:
            raise ValueError("CPLC fields must add up to 42 bytes")
        return out


def cplc_with_serial(serial: bytes) -> bytes:
    """Default CPLC data with this 4-byte IC serial number."""
    return Cplc(ic_serial_number=serial).to_bytes()


def production_life_cycle(cplc: bytes) -> bytes:
    """9F6E for the FCI: OS ID, release date and release level from the CPLC."""
    return cplc[4:10]


def fci(aid: bytes, scp_i: int, cplc: bytes) -> bytes:
    """The SELECT response of the ISD (GPC v2.3.1 §11.9.3.1)."""
    proprietary = tlv.build(
        0xA5,
        [
            (0x73, card_recognition_content(scp_i)),
            (0x9F6E, production_life_cycle(cplc)),
            (0x9F65, bytes((MAX_COMMAND_DATA,))),
        ],
    )
    return tlv.build(0x6F, [(0x84, aid), proprietary])
