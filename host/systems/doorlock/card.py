"""The host's side of seed 001's SIMs: the SIM itself, the applet's commands, its install script.

- `make_sim(identity)`: a UICC as the `usim` preset builds it (its own ICCID,
  IMSI and MSISDN) with a GlobalPlatform ISD beside the UICC application, as
  operators' SIMs carry one for remote applet management; no door-lock applet.
- `DoorLockCard`: one typed call per command of `applets.doorlock.applet`.
- `InstallScript`: the GlobalPlatform commands that put the applet on a SIM
  and personalise it (INSTALL [for load], LOAD, INSTALL [for install and make
  selectable], INSTALL [for personalization], STORE DATA), in clear: whoever
  delivers them protects them (SCP03 on a local session, SCP80 over the air).
- `personalisation(...)`: the STORE DATA objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from applets.doorlock.applet import DOORLOCK_AID, INS_DOWNLOAD_REQUEST
from applets.doorlock.protocol import (
    ID_ICCID,
    ID_IMEI,
    ID_IMSI,
    ID_MAC,
    ID_MSISDN,
    ROLE_KEY,
    ROLE_LOCK,
)
from card import tlv
from card.crypto.keys import EcKeyPair, EcPublicKey
from card.gp.loadfile import build_load_file, describe_load_file, load_file_stream
from card.runtime import CardRuntime
from card.sm.cvc import public_key_template
from host.errors import ApduError
from host.gp.data import lv
from host.readers.base import Reader
from host.session import AppletSession, encode_command

__all__ = [
    "DOORLOCK_AID",
    "Decision",
    "DoorLockCard",
    "Identifiers",
    "InstallScript",
    "REASONS",
    "SimIdentity",
    "install_script",
    "make_sim",
    "personalisation",
]

#: The door-lock applet's package, as the catalogue names it.
PACKAGE = "applets.doorlock"

#: Why the lock's chip said no, by its status word (see the applet's docstring).
REASONS: dict[int, str] = {
    0x6700: "truncated answer",
    0x6A80: "malformed answer",
    0x6982: "certificate refused",
    0x6983: "locked out",
    0x6985: "no challenge outstanding (replay or out of order)",
    0x6A86: "method not offered",
}


def reason_of(sw: int) -> str:
    """The lock chip's refusal in words."""
    if sw & 0xFFF0 == 0x63C0:
        return f"answer does not match ({sw & 0x0F} tries left)"
    return REASONS.get(sw, f"refused ({sw:04X})")


@dataclass(frozen=True)
class SimIdentity:
    """What the network knows a SIM by (TS 102 221 EF.ICCID, TS 31.102 EF.IMSI and EF.MSISDN)."""

    iccid: str
    imsi: str
    msisdn: str


@dataclass(frozen=True)
class Identifiers:
    """A device's identifiers for a download request (the seed's S207 list).

    Attributes:
        mac: the device's MAC address (the lock controller), 6 bytes.
        imei: the device's IMEI (the phone).
        sim: its SIM's identifiers.
    """

    mac: bytes | None = None
    imei: str | None = None
    sim: SimIdentity | None = None

    def tlvs(self) -> bytes:
        """The identifier TLVs (`applets.doorlock.protocol`)."""
        out = b""
        if self.mac is not None:
            out += tlv.build(ID_MAC, self.mac)
        if self.imei is not None:
            out += tlv.build(ID_IMEI, self.imei.encode())
        if self.sim is not None:
            out += tlv.build(ID_ICCID, self.sim.iccid.encode())
            out += tlv.build(ID_IMSI, self.sim.imsi.encode())
            out += tlv.build(ID_MSISDN, self.sim.msisdn.encode())
        return out

    @staticmethod
    def parse(data: bytes) -> dict[str, str]:
        """Identifier TLVs as {"mac": hex, "imei": ..., "iccid": ..., ...} (for servers, JSON)."""
        names = {ID_MAC: "mac", ID_IMEI: "imei", ID_ICCID: "iccid", ID_IMSI: "imsi"}
        names[ID_MSISDN] = "msisdn"
        out: dict[str, str] = {}
        for obj in tlv.parse(data, allow_padding=False):
            name = names.get(obj.tag)
            if name is None or name in out:
                raise ValueError(f"identifier tag {obj.tag:02X} unknown or repeated")
            out[name] = obj.value.hex().upper() if obj.tag == ID_MAC else obj.value.decode()
        return out


def make_sim(identity: SimIdentity, *, rng_seed: int | bytes | None = None) -> CardRuntime:
    """A UICC with one USIM profile (the `usim` preset's, with these identifiers) and an ISD.

    As the `usim-ota` preset makes it (`host.presets.install_uicc_ota`): the UICC
    application default-selected, as on an operator's SIM; the ISD beside it
    with the GP test keys 40..4F (SCP03, key version 30) and the SCP80 test key
    sets (`host.presets.ota_test_keysets`) for remote applet management.
    """
    from card.uicc.builder import sample_profile
    from host.presets import install_uicc_ota

    rt = CardRuntime(rng_seed=rng_seed)
    profile = sample_profile(iccid=identity.iccid, imsi=identity.imsi, msisdn=identity.msisdn)
    install_uicc_ota(rt, profile=profile.to_bytes())
    rt.power_on()
    return rt


@dataclass(frozen=True)
class Decision:
    """What the lock's chip decided (S108): unlock, or an error with its reason."""

    unlock: bool
    sw: int
    reason: str = ""
    proof: bytes = b""  # the lock's own answer (7C) for the key to check

    def to_json(self) -> dict[str, Any]:
        return {"unlock": self.unlock, "sw": f"{self.sw:04X}", "reason": self.reason}


class DoorLockCard(AppletSession):
    """The door-lock applet's commands (either role) over a reader."""

    chained = True  # a certificate answer runs past 255 bytes: ISO 7816-4 §5.3.3 chaining

    def __init__(self, reader: Reader, aid: bytes = DOORLOCK_AID) -> None:
        super().__init__(reader, aid)

    def select(self) -> None:
        """SELECT by AID; ApduError 6A82 when the SIM has no door-lock applet (S204)."""
        self.send(0x00, 0xA4, 0x04, 0x0C, self.aid)

    # -- the lock role ----------------------------------------------------------------

    def challenge(self, method: int) -> bytes:
        """S102: a new challenge; the `7C { 81 RC, 5F20 lock identity }` to send the phone."""
        return self.send(0x00, 0x86, method, 0x00, bytes.fromhex("7C028100"), le=0)

    def collate(self, method: int, answer: bytes) -> Decision:
        """S106-S108: the phone's answer (its `7C`) to the chip; unlock or why not."""
        try:
            proof = self.send(0x00, 0x86, method, 0x00, answer, le=0)
        except ApduError as e:
            return Decision(False, e.sw, reason_of(e.sw))
        return Decision(True, 0x9000, "", proof)

    def download_request(self, phone: bytes) -> bytes:
        """S206-S207: the signed request naming the lock and the phone (identifier TLVs)."""
        return self.send(0x80, INS_DOWNLOAD_REQUEST, 0x00, 0x00, tlv.build(0xA2, phone), le=0)

    def send_download_request(self, phone: bytes) -> None:
        """S206-S207: the chip signs the request and sends it to the server by SMS itself.

        The card queues a SEND SHORT MESSAGE: the reader must be a terminal that
        serves proactive commands (`host.ota.ToolkitReader`).
        """
        self.send(0x80, INS_DOWNLOAD_REQUEST, 0x01, 0x00, tlv.build(0xA2, phone))

    # -- the key role -----------------------------------------------------------------

    def answer(self, method: int, request: bytes) -> bytes:
        """S103-S104: the answer (7C) to the lock's `7C { 81 RC, 5F20 lock identity }`."""
        return self.send(0x00, 0x86, method, 0x00, request, le=0)

    def check_lock(self, method: int, proof: bytes) -> bool:
        """Mutual authentication: is the lock's answer (its 7C) the lock's?"""
        try:
            self.send(0x00, 0x86, method, 0x00, proof)
        except ApduError as e:
            if e.sw in (0x6982, 0x6700, 0x6A80, 0x6985):
                return False
            raise
        return True

    # -- either role --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """GET DATA E0: role, methods, identity, try limit, tries left, counter, public key."""
        obj = tlv.Tlv.from_bytes(self.send(0x00, 0xCA, 0x00, 0xE0, le=0))
        items = {c.tag: c for c in obj.children}
        out: dict[str, Any] = {
            "role": {ROLE_LOCK: "lock", ROLE_KEY: "key"}.get(items[0x80].value[0], "none"),
            "methods": items[0x81].value[0],
            "try_limit": items[0x82].value[0],
            "tries_left": items[0x86].value[0],
            "counter": int.from_bytes(items[0x85].value, "big"),
        }
        if 0x5F20 in items:
            out["identity"] = items[0x5F20].value
        if 0x7F49 in items:
            out["public_key"] = items[0x7F49].to_bytes()
        return out


def personalisation(
    *,
    role: int,
    methods: int,
    identity: bytes,
    shared_key: bytes | None = None,
    key: EcKeyPair | None = None,
    certificate: bytes | None = None,
    issuer: EcPublicKey | None = None,
    lock_ids: Identifiers | None = None,
    try_limit: int | None = None,
    combination: str | None = None,
    sim_ids: int | None = None,
    server_address: str | None = None,
) -> bytes:
    """The STORE DATA objects (`applets.doorlock.applet`), in the applet's order."""
    out = tlv.build(0x80, bytes((role,))) + tlv.build(0x81, bytes((methods,)))
    out += tlv.build(0x5F20, identity)
    if shared_key is not None:
        out += tlv.build(0xC0, shared_key)
    if key is not None:
        out += tlv.build(0xC1, key.private_bytes())
    if certificate is not None:
        out += certificate
    if issuer is not None:
        out += public_key_template(issuer)
    if lock_ids is not None:
        out += tlv.build(0xA1, lock_ids.tlvs())
    if try_limit is not None:
        out += tlv.build(0x82, bytes((try_limit,)))
    if combination is not None:
        out += tlv.build(0x83, combination.encode())
    if sim_ids is not None:
        out += tlv.build(0x84, bytes((sim_ids,)))
    if server_address is not None:
        out += tlv.build(0x86, server_address.encode())
    return out


@dataclass(frozen=True)
class InstallScript:
    """The GlobalPlatform commands that install and personalise the applet (GPC v2.3.1 §11).

    Attributes:
        perso: the STORE DATA objects.
        load: include INSTALL [for load] and LOAD (the load file is not on the card yet).
        install: include INSTALL [for install and make selectable].
        block: the most data per LOAD and STORE DATA command.
        package: the catalogued package the load file describes.
    """

    perso: bytes
    load: bool = True
    install: bool = True
    block: int = 200
    package: str = PACKAGE
    aid: bytes = DOORLOCK_AID

    @property
    def load_file_aid(self) -> bytes:
        return describe_load_file(self.package).aid

    def commands(self) -> list[bytes]:
        """The command APDUs in clear (CLA 80), in order: `cleanup()` then `install()`.

        Ordered so that a SIM that loses power anywhere in the script is left
        without a selectable applet or with a personalised one, and so that the
        script can simply be run again: DELETE of the load file and what it
        holds first (6A88, nothing to delete, is fine: `DELETE_ABSENT_OK`),
        the applet installed but not selectable, personalised, and made
        selectable last (GPC v2.3.1 §11.5.2.3.3: INSTALL [for make selectable]).
        """
        return self.cleanup() + self.install_commands()

    def cleanup(self) -> list[bytes]:
        """DELETE of the load file with its applications (GPC v2.3.1 §11.2), when loading.

        Over the air it goes in a packet of its own: a script stops at its first
        error (TS 102 226 §5.1.1), and 6A88 here only means nothing to delete.
        """
        if not self.load:
            return []
        aid = describe_load_file(self.package).aid
        return [encode_command(0x80, 0xE4, 0x00, 0x80, tlv.build(0x4F, aid), 0)]

    def install_commands(self) -> list[bytes]:
        """INSTALL [for load], LOAD, INSTALL [for install], personalisation, make selectable."""
        desc = describe_load_file(self.package)
        out: list[bytes] = []
        if self.load:
            lfdb = build_load_file(self.package)
            data = lv(desc.aid) + lv(b"") + lv(b"") + lv(b"") + lv(b"")
            out.append(encode_command(0x80, 0xE6, 0x02, 0x00, data, 0))
            stream = load_file_stream(lfdb)
            blocks = [stream[i : i + self.block] for i in range(0, len(stream), self.block)]
            for n, part in enumerate(blocks):
                last = 0x80 if n == len(blocks) - 1 else 0x00
                out.append(encode_command(0x80, 0xE8, last, n, part, 0))
        if self.install:
            module = desc.modules[0]  # the package's one applet class
            params = tlv.build(0xC9, b"")
            data = lv(desc.aid) + lv(module.aid) + lv(self.aid) + lv(b"\x00") + lv(params)
            data += lv(b"")
            out.append(encode_command(0x80, 0xE6, 0x04, 0x00, data, 0))
        fields = lv(b"") + lv(b"") + lv(self.aid) + lv(b"") + lv(b"") + lv(b"")
        out.append(encode_command(0x80, 0xE6, 0x20, 0x00, fields, 0))
        parts = [self.perso[i : i + self.block] for i in range(0, len(self.perso), self.block)]
        for n, part in enumerate(parts):
            p1 = (0x80 if n == len(parts) - 1 else 0x00) | 0x10  # BER-TLV (P1 b5-b4 = 10)
            out.append(encode_command(0x80, 0xE2, p1, n, part, 0))
        if self.install:
            out.append(encode_command(0x80, 0xE6, 0x08, 0x00, fields, 0))
        return out


#: A DELETE that finds nothing answers 6A88 (GPC v2.3.1 §11.2.3): the script goes on.
DELETE_ABSENT_OK = 0x6A88


def install_script(perso: bytes, *, load: bool = True) -> InstallScript:
    """The script for a SIM without the applet (`load`), or one to personalise it again."""
    return InstallScript(perso, load=load, install=load)
