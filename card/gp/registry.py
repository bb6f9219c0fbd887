"""The GlobalPlatform Registry: load files, applications, their privileges and SDs.

GPC v2.3.1 §6.5 (Registry), §6.6 and §11.1.2 (privileges, Table 6-1 / 11-7).

The card runtime already keeps every applet instance with its life cycle
state and default-selection flag (`CardRuntime.applets()`); the Issuer Security
Domain adds what GlobalPlatform needs on top: the Executable Load Files with
their modules, and for each application the load file and module it came
from, its privileges and its associated Security Domain. Those records live in
the ISD's persistent memory as immutable tuples, one NVM value per table, so
replacing a table is one atomic write.

Applications installed without the ISD (a preset that calls
`CardRuntime.install` directly) are still in the Registry: their load file is
found by class reference and they have no privileges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from card.gp.loadfile import LoadFileDescriptor, Module
from card.sw import SW, CardError


class Privilege(IntFlag):
    """Privileges, 3 bytes (GPC v2.3.1 §11.1.2, Table 11-7)."""

    SECURITY_DOMAIN = 0x800000
    DAP_VERIFICATION = 0x400000
    DELEGATED_MANAGEMENT = 0x200000
    CARD_LOCK = 0x100000
    CARD_TERMINATE = 0x080000
    CARD_RESET = 0x040000  # "Default Selected" in GP 2.1.1
    CVM_MANAGEMENT = 0x020000
    MANDATED_DAP_VERIFICATION = 0x010000
    TRUSTED_PATH = 0x008000
    AUTHORIZED_MANAGEMENT = 0x004000
    TOKEN_VERIFICATION = 0x002000
    GLOBAL_DELETE = 0x001000
    GLOBAL_LOCK = 0x000800
    GLOBAL_REGISTRY = 0x000400
    FINAL_APPLICATION = 0x000200
    GLOBAL_SERVICE = 0x000100
    RECEIPT_GENERATION = 0x000080
    CIPHERED_LOAD_FILE_DATA_BLOCK = 0x000040
    CONTACTLESS_ACTIVATION = 0x000020
    CONTACTLESS_SELF_ACTIVATION = 0x000010


#: What this ISD holds (a usual ISD: 9E FE 80 without the SD-only extras we lack).
ISD_PRIVILEGES = (
    Privilege.SECURITY_DOMAIN
    | Privilege.CARD_LOCK
    | Privilege.CARD_TERMINATE
    | Privilege.CARD_RESET
    | Privilege.CVM_MANAGEMENT
    | Privilege.TRUSTED_PATH
    | Privilege.AUTHORIZED_MANAGEMENT
    | Privilege.TOKEN_VERIFICATION
    | Privilege.GLOBAL_DELETE
    | Privilege.GLOBAL_LOCK
    | Privilege.GLOBAL_REGISTRY
    | Privilege.FINAL_APPLICATION
    | Privilege.RECEIPT_GENERATION
)

#: Privileges an application installed by this ISD may be given. The SD-only
#: ones need a Security Domain class, which the catalogue never offers.
APP_PRIVILEGES = (
    Privilege.CARD_LOCK
    | Privilege.CARD_TERMINATE
    | Privilege.CARD_RESET
    | Privilege.CVM_MANAGEMENT
    | Privilege.GLOBAL_DELETE
    | Privilege.GLOBAL_LOCK
    | Privilege.GLOBAL_REGISTRY
    | Privilege.FINAL_APPLICATION
    | Privilege.GLOBAL_SERVICE
    | Privilege.CONTACTLESS_ACTIVATION
    | Privilege.CONTACTLESS_SELF_ACTIVATION
)


def parse_privileges(data: bytes) -> Privilege:
    """Privileges as INSTALL carries them: 1 byte (GP 2.1.1) or 3 bytes (§11.5.2.3.4).

    Raises:
        CardError: 6A80 for another length.
    """
    if len(data) == 0:
        return Privilege(0)
    if len(data) == 1:
        return Privilege(data[0] << 16)
    if len(data) == 3:
        return Privilege(int.from_bytes(data, "big"))
    raise CardError(SW.WRONG_DATA)


def privileges_bytes(p: int) -> bytes:
    return int(p).to_bytes(3, "big")


@dataclass(frozen=True)
class LoadFileRecord:
    """An Executable Load File (§5.2) and the modules it offers."""

    aid: bytes
    version: tuple[int, int]
    package: str
    code_hash: bytes
    modules: tuple[Module, ...]
    sd_aid: bytes

    @classmethod
    def from_descriptor(cls, desc: LoadFileDescriptor, sd_aid: bytes) -> LoadFileRecord:
        return cls(desc.aid, desc.version, desc.package, desc.code_hash, desc.modules, sd_aid)

    def module(self, aid: bytes) -> Module | None:
        return next((m for m in self.modules if m.aid == aid), None)

    def module_by_ref(self, ref: str) -> Module | None:
        return next((m for m in self.modules if m.class_ref == ref), None)

    def to_value(self) -> tuple[Any, ...]:
        mods = tuple((m.aid, m.entry_point, m.class_ref) for m in self.modules)
        return (self.aid, self.version, self.package, self.code_hash, mods, self.sd_aid)

    @classmethod
    def from_value(cls, v: tuple[Any, ...]) -> LoadFileRecord:
        aid, ver, package, digest, mods, sd = v
        return cls(aid, (ver[0], ver[1]), package, digest, tuple(Module(*m) for m in mods), sd)


@dataclass(frozen=True)
class AppRecord:
    """What the ISD knows of an application beyond the runtime's entry (§6.5)."""

    aid: bytes
    elf_aid: bytes
    module_aid: bytes
    privileges: int
    sd_aid: bytes

    def to_value(self) -> tuple[Any, ...]:
        return (self.aid, self.elf_aid, self.module_aid, int(self.privileges), self.sd_aid)

    @classmethod
    def from_value(cls, v: tuple[Any, ...]) -> AppRecord:
        return cls(*v)


@dataclass(frozen=True)
class AppView:
    """One application as GET STATUS and DELETE see it: runtime entry + GP record."""

    aid: bytes
    class_ref: str
    lifecycle: int
    default: int  # the runtime's default-channel mask
    privileges: int
    elf_aid: bytes | None
    sd_aid: bytes


class Registry:
    """A read view over the runtime's applets and the ISD's GP tables.

    Args:
        isd_aid: the Issuer Security Domain's AID.
        applets: `CardRuntime.applets()` at the time of the view.
        load_files: the ISD's load file records.
        apps: the ISD's application records.
    """

    def __init__(
        self,
        isd_aid: bytes,
        applets: Iterable[tuple[bytes, str, int, int]],
        load_files: tuple[LoadFileRecord, ...],
        apps: tuple[AppRecord, ...],
    ) -> None:
        self.isd_aid = bytes(isd_aid)
        self.load_files = load_files
        self._records = {r.aid: r for r in apps}
        self._applets = [(bytes(a), ref, lc, d) for a, ref, lc, d in applets]

    def load_file(self, aid: bytes) -> LoadFileRecord | None:
        return next((f for f in self.load_files if f.aid == aid), None)

    def _elf_for(self, ref: str) -> bytes | None:
        for f in self.load_files:
            if f.module_by_ref(ref) is not None:
                return f.aid
        return None

    def applications(self) -> list[AppView]:
        """Every application and SD except the ISD, in installation order."""
        out = []
        for aid, ref, lc, default in self._applets:
            if aid == self.isd_aid:
                continue
            rec = self._records.get(aid)
            if rec is not None:
                out.append(AppView(aid, ref, lc, default, rec.privileges, rec.elf_aid, rec.sd_aid))
            else:
                # Default-selected on the basic channel: the Card Reset privilege (§6.6.1).
                priv = int(Privilege.CARD_RESET) if default & 1 else 0
                out.append(AppView(aid, ref, lc, default, priv, self._elf_for(ref), self.isd_aid))
        return out

    def application(self, aid: bytes) -> AppView | None:
        return next((a for a in self.applications() if a.aid == aid), None)

    def apps_of_load_file(self, elf_aid: bytes) -> list[AppView]:
        return [a for a in self.applications() if a.elf_aid == elf_aid]

    def isd_is_default(self) -> bool:
        return any(d & 1 for a, _, _, d in self._applets if a == self.isd_aid)

    def aid_in_use(self, aid: bytes) -> bool:
        """Whether an AID already names a load file or an application (§6.5).

        An application may share its AID with the module it is made from (as
        Java Card applets usually do), so module AIDs do not count.
        """
        if any(a == aid for a, *_ in self._applets):
            return True
        return any(f.aid == aid for f in self.load_files)
