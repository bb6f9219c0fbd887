"""RAM and RFM scripts as a server builds them (ETSI TS 102 226 §5, §8; GPC v2.3.1 §11).

    script = (RamScript()
              .install_for_load(elf_aid, lfdb_hash=digest)
              .load(stream)
              .install_for_install(elf_aid, module_aid, app_aid, params=b"...")
              )
    secured_data = script.expanded()        # or .compact()

    RamScript().install_applet("notes", NOTES_AID, params=b"hi")   # the same, catalogued

Each method appends GlobalPlatform C-APDUs (CLA 80, as TS 102 226 §8.2 has
them in a RAM script); LOAD cuts the load file into blocks small enough for a
compact C-APDU (255 bytes at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from card.apdu import CommandApdu
from card.gp.install import install_parameters
from card.gp.loadfile import describe_load_file, lfdb_hash, load_file_stream
from card.ota import keys as ota_keys
from card.ota import ram
from card.ota.scp80 import OtaKeyset
from host.gp.data import lv

CLA_GP = 0x80


@dataclass
class RamScript:
    """A list of C-APDUs for the ISD's TAR (000000)."""

    commands: list[CommandApdu] = field(default_factory=list)

    def add(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> RamScript:
        self.commands.append(CommandApdu(cla, ins, p1, p2, data, le))
        return self

    def install_for_load(
        self, elf_aid: bytes, *, sd_aid: bytes = b"", lfdb_hash: bytes = b""
    ) -> RamScript:
        data = lv(elf_aid) + lv(sd_aid) + lv(lfdb_hash) + lv(b"") + lv(b"")
        return self.add(CLA_GP, 0xE6, 0x02, 0x00, data)

    def load(self, stream: bytes, *, block_size: int = 200) -> RamScript:
        """LOAD blocks (GPC §11.6): P1 80 on the last, P2 the block number."""
        if not 1 <= block_size <= 255:
            raise ValueError("block size 1..255")
        blocks = [stream[i : i + block_size] for i in range(0, len(stream), block_size)]
        for n, block in enumerate(blocks):
            self.add(CLA_GP, 0xE8, 0x80 if n == len(blocks) - 1 else 0x00, n, block)
        return self

    def install_for_install(
        self,
        elf_aid: bytes,
        module_aid: bytes,
        app_aid: bytes,
        *,
        privileges: bytes = b"\x00",
        params: bytes = b"",
        make_selectable: bool = True,
    ) -> RamScript:
        data = (
            lv(elf_aid)
            + lv(module_aid)
            + lv(app_aid)
            + lv(privileges)
            + lv(install_parameters(params))
            + lv(b"")
        )
        return self.add(CLA_GP, 0xE6, 0x0C if make_selectable else 0x04, 0x00, data)

    def install_applet(
        self,
        entry_point: str,
        app_aid: bytes,
        *,
        params: bytes = b"",
        privileges: bytes = b"\x00",
        load: bool = True,
    ) -> RamScript:
        """Download and install a catalogued applet: the whole remote install in one call.

        INSTALL [for load] (with the Load File Data Block hash), the LOAD blocks,
        INSTALL [for install and make selectable] of the module registered as
        `entry_point` (a `cardemu.applets` entry point, "notes"). `load=False`
        installs one more instance of a load file already on the card.
        """
        desc = describe_load_file(entry_point)
        if load:
            lfdb = desc.to_bytes()
            self.install_for_load(desc.aid, lfdb_hash=lfdb_hash(lfdb))
            self.load(load_file_stream(lfdb))
        module = desc.module_for(entry_point)
        return self.install_for_install(
            desc.aid, module.aid, app_aid, privileges=privileges, params=params
        )

    def make_selectable(self, app_aid: bytes) -> RamScript:
        data = lv(b"") + lv(b"") + lv(app_aid) + lv(b"") + lv(b"") + lv(b"")
        return self.add(CLA_GP, 0xE6, 0x08, 0x00, data)

    def store_data(self, data: bytes, *, last: bool = True, block: int = 0) -> RamScript:
        """STORE DATA (GPC §11.11) to the application named by INSTALL [for personalization]."""
        return self.add(CLA_GP, 0xE2, 0x80 if last else 0x00, block, data)

    def delete(self, aid: bytes, *, related: bool = False) -> RamScript:
        return self.add(CLA_GP, 0xE4, 0x00, 0x80 if related else 0x00, b"\x4f" + lv(aid))

    def get_status(self, p1: int = 0x40, aid_prefix: bytes = b"") -> RamScript:
        """GET STATUS (GPC §11.4), tagged format (P2 02)."""
        return self.add(CLA_GP, 0xF2, p1, 0x02, b"\x4f" + lv(aid_prefix), 256)

    def put_key(self, new: OtaKeyset, dek: OtaKeyset, *, replace: bool = False) -> RamScript:
        """PUT KEY of an SCP80 key set, carried under `dek`'s DEK (TS 102 226 §8.2.1.4)."""
        if not dek.dek:
            raise ValueError("the key set carrying keys needs a DEK")
        data = ota_keys.put_key_data(new, dek.dek, dek.aes)
        return self.add(CLA_GP, 0xD8, new.kvn if replace else 0x00, 0x81, data)

    def compact(self) -> bytes:
        return ram.compact_script(self.commands)

    def expanded(self, *, indefinite: bool = False) -> bytes:
        """The AA script (AE 80 .. 00 00 with `indefinite`), TS 102 226 §5.1.2."""
        return ram.expanded_script(self.commands, indefinite=indefinite)


@dataclass
class RfmScript:
    """File commands for an RFM TAR (TS 102 226 §6; TS 102 221 §11)."""

    commands: list[CommandApdu] = field(default_factory=list)

    def select(self, fid: int) -> RfmScript:
        self.commands.append(CommandApdu(0x00, 0xA4, 0x00, 0x0C, fid.to_bytes(2, "big")))
        return self

    def read_binary(self, length: int = 0, offset: int = 0) -> RfmScript:
        self.commands.append(
            CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, b"", length or 256)
        )
        return self

    def update_binary(self, data: bytes, offset: int = 0) -> RfmScript:
        self.commands.append(CommandApdu(0x00, 0xD6, offset >> 8, offset & 0xFF, data))
        return self

    def update_record(self, number: int, data: bytes) -> RfmScript:
        self.commands.append(CommandApdu(0x00, 0xDC, number, 0x04, data))
        return self

    def read_record(self, number: int, length: int = 0) -> RfmScript:
        self.commands.append(CommandApdu(0x00, 0xB2, number, 0x04, b"", length or 256))
        return self

    def compact(self) -> bytes:
        return ram.compact_script(self.commands)

    def expanded(self) -> bytes:
        return ram.expanded_script(self.commands)
