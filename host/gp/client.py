"""GlobalPlatform card content management from the host: the recipes `cardemu gp` runs.

`GpClient` selects the Issuer Security Domain, opens SCP03 on it
(`Scp03Reader`), and offers the operations of GlobalPlatform Card
Specification v2.3.1 §11: GET STATUS (§11.4), INSTALL and LOAD (§11.5, §11.6),
DELETE (§11.2), SET STATUS (§11.10), PUT KEY (§11.8) and GET DATA (§11.3).
Every refusal is an `ApduError` carrying the status word.

Nothing here depends on the emulator: it runs the same against a real GP card
through PC/SC. 61xx is resolved by a `GetResponseReader`; LOAD blocks are
sized from the ISD's FCI (tag 9F65) minus the secure-channel overhead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from card import tlv
from card.apdu import CommandApdu
from card.gp.loadfile import lfdb_hash, load_file_stream
from card.gp.scp03 import (
    InitializeUpdateResponse,
    Scp03Keys,
    SecurityLevel,
    aes_kcv,
    encode_key_data,
)
from host.errors import ApduError, SecureChannelError
from host.gp.data import (
    CardRecognitionData,
    Cplc,
    KeyInfo,
    Privilege,
    RegistryEntry,
    StatusScope,
    lv,
    parse_card_data,
    parse_cplc,
    parse_get_status,
    parse_key_information,
    privileges_to_bytes,
)
from host.gp.secure_channel import DEFAULT_LEVEL, Scp03Reader
from host.readers.base import Reader
from host.session import ApduSession

__all__ = ["GpClient", "Registry", "IsdInfo", "KNOWN_ISD_AIDS", "CLA_GP"]

CLA_GP = 0x80
INS_DELETE = 0xE4
INS_GET_DATA = 0xCA
INS_GET_STATUS = 0xF2
INS_INSTALL = 0xE6
INS_LOAD = 0xE8
INS_PUT_KEY = 0xD8
INS_SET_STATUS = 0xF0
INS_STORE_DATA = 0xE2
INS_SELECT = 0xA4

#: ISD AIDs to try when the default-selected application is not the ISD: Visa OP
#: (A000000003000000, where UICCs keep their card manager), GP 2.1.1+ (A000000151000000),
#: GP 2.0 / JCOP (A0000001510000). The UICC's AID comes first: on a UICC whose enabled
#: profile has an MNO-SD (GSMA TS.48), A000000151000000 answers as that profile's security
#: domain, not as the card's ISD; a plain GP card has nothing at A000000003000000 (6A82)
#: and the probe goes on.
KNOWN_ISD_AIDS = (
    bytes.fromhex("A000000003000000"),
    bytes.fromhex("A000000151000000"),
    bytes.fromhex("A0000001510000"),
)

# INSTALL P1 (§11.5.2.1 Table 11-45).
INSTALL_FOR_LOAD = 0x02
INSTALL_FOR_INSTALL = 0x04
INSTALL_FOR_MAKE_SELECTABLE = 0x08
INSTALL_FOR_PERSONALIZATION = 0x20

# GET DATA tags (§11.3.3.1, Annex H).
TAG_CPLC = 0x9F7F
TAG_CARD_DATA = 0x0066
TAG_KEY_INFORMATION = 0x00E0
TAG_IIN = 0x0042
TAG_CIN = 0x0045

_SW_OK = (0x9000,)
_SHORT_MAX = 255


@dataclass(frozen=True)
class IsdInfo:
    """What the ISD's SELECT response (FCI, §11.9.3.1) tells a host."""

    aid: bytes
    fci: bytes
    max_command_data: int | None  # 9F65: max length of the command data field, secured


@dataclass
class Registry:
    """The card content GET STATUS lists: ISD, applications and SDs, load files."""

    isd: list[RegistryEntry] = field(default_factory=list)
    applications: list[RegistryEntry] = field(default_factory=list)
    load_files: list[RegistryEntry] = field(default_factory=list)

    def find(self, aid: bytes) -> RegistryEntry | None:
        for e in (*self.isd, *self.applications, *self.load_files):
            if e.aid == aid:
                return e
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "isd": [e.to_json() for e in self.isd],
            "applications": [e.to_json() for e in self.applications],
            "load_files": [e.to_json() for e in self.load_files],
        }


class GpClient:
    """GlobalPlatform content management on one card.

    Args:
        reader: any reader to the card (in-process, PC/SC, or a wrapper).
        keys: the ISD's static SCP03 keys (default: the GP test keys 40..4F).
        level: security level of the secure channel (00/01/03/11/13/33).
        kvn: key version for INITIALIZE UPDATE (None: the card's default).
        isd_aid: the ISD's AID; None selects the default application and falls
            back to `KNOWN_ISD_AIDS`.
        s16: S16 mode for the secure channel.
        random: the host challenge source.

    Use as a context manager, or call `open()` (select the ISD and
    authenticate) before the operations that need a secure channel; GET DATA
    works without one.
    """

    def __init__(
        self,
        reader: Reader,
        keys: Scp03Keys | None = None,
        *,
        level: int = DEFAULT_LEVEL,
        kvn: int | None = None,
        isd_aid: bytes | None = None,
        s16: bool = False,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._plain = ApduSession(reader)
        self.plain: Reader = self._plain.reader
        self.keys = keys if keys is not None else Scp03Keys.test_keys()
        self.level = SecurityLevel(level)
        self.kvn = kvn
        self.isd_aid = isd_aid
        self.s16 = s16
        self._random = random
        self.scp: Scp03Reader | None = None
        self.isd: IsdInfo | None = None

    # -- session

    def __enter__(self) -> GpClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def select_isd(self) -> IsdInfo:
        """Select the Issuer Security Domain and read its FCI.

        Raises:
            ApduError: no candidate AID could be selected (the last refusal).
        """
        candidates: Iterable[bytes | None]
        candidates = (self.isd_aid,) if self.isd_aid is not None else (None, *KNOWN_ISD_AIDS)
        last: ApduError | None = None
        for aid in candidates:
            # None: SELECT by DF name with no data selects the default application.
            cmd = CommandApdu(0x00, INS_SELECT, 0x04, 0x00, aid or b"", 256)
            what = f"SELECT {(aid or b'').hex().upper() or 'default'}"
            try:
                # 6283: a CARD_LOCKED card still selects its ISD, with this warning
                # (GPC v2.3.1 §11.9, SELECT).
                data, sw = self._send(self._plain, cmd, what, (0x9000, 0x6283))
            except ApduError as e:
                last = e
                continue
            info = _parse_fci(data, aid)
            if aid is None and not _looks_like_sd(data):
                last = ApduError(sw, data, "SELECT default (not a Security Domain)")
                continue
            self.isd = info
            return info
        assert last is not None
        raise last

    def open(self) -> InitializeUpdateResponse:
        """Select the ISD and open the secure channel at the client's level."""
        self.isd = self.select_isd()
        self.scp = Scp03Reader(
            self.plain,
            self.keys,
            level=self.level,
            kvn=self.kvn,
            s16=self.s16,
            random=self._random,
        )
        return self.scp.open()

    def close(self) -> None:
        if self.scp is not None:
            self.scp.close()
        self.scp = None

    @property
    def reader(self) -> Reader:
        """The reader commands go through: the secure channel once open."""
        return self.scp if self.scp is not None and self.scp.is_open else self.plain

    @property
    def session(self) -> ApduSession:
        """The session commands go through: the secure channel's once open."""
        if self.scp is not None and self.scp.is_open:
            # The secure channel unwraps what its own GetResponseReader fetched.
            return ApduSession(self.scp, fetch=False)
        return self._plain

    def send(self, cmd: CommandApdu, what: str, ok: Iterable[int] = _SW_OK) -> tuple[bytes, int]:
        """Send one command; return (data, SW) or raise `ApduError` for any SW not in `ok`."""
        return self._send(self.session, cmd, what, ok)

    @staticmethod
    def _send(
        session: ApduSession, cmd: CommandApdu, what: str, ok: Iterable[int]
    ) -> tuple[bytes, int]:
        try:
            return session.send_apdu(cmd.to_bytes(), what), 0x9000
        except ApduError as e:
            if e.sw in tuple(ok) and e.sw != 0x9000:
                return e.data, e.sw
            raise

    def _require_channel(self, what: str) -> None:
        if self.scp is None or not self.scp.is_open:
            raise SecureChannelError(f"{what} needs a secure channel: call open() first")

    # -- GET STATUS

    def get_status(self, scope: StatusScope, aid_prefix: bytes = b"") -> list[RegistryEntry]:
        """All registry entries of one kind, following 6310 continuations (§11.4).

        The tagged format (P2 b2) is asked first; a card that refuses it with
        6A86 is asked again in the legacy format. 6A88 (nothing of that kind)
        gives an empty list.

        Raises:
            ApduError: any other refusal.
        """
        search = tlv.build(0x4F, aid_prefix)
        for tagged in (True, False):
            p2 = 0x02 if tagged else 0x00
            out: list[RegistryEntry] = []
            while True:
                cmd = CommandApdu(CLA_GP, INS_GET_STATUS, int(scope), p2, search, 256)
                try:
                    data, sw = self.send(cmd, f"GET STATUS {int(scope):02X}", (0x9000, 0x6310))
                except ApduError as e:
                    if e.sw == 0x6A88 and not out:
                        return []
                    if e.sw in (0x6A86, 0x6D00) and tagged and not out:
                        break  # no tagged format on this card: try the legacy one
                    raise
                try:
                    out += parse_get_status(data, scope, tagged=tagged)
                except ValueError as e:
                    raise ApduError(sw, data, f"GET STATUS {int(scope):02X}: {e}") from None
                if sw == 0x9000:
                    return out
                p2 |= 0x01  # next occurrence(s)
        raise ApduError(0x6A86, b"", f"GET STATUS {int(scope):02X}")

    def registry(self) -> Registry:
        """The ISD, applications and SDs, and load files with their modules."""
        self._require_channel("GET STATUS")
        reg = Registry()
        reg.isd = self.get_status(StatusScope.ISD)
        reg.applications = self.get_status(StatusScope.APPLICATIONS)
        reg.load_files = self.load_files()
        return reg

    def load_files(self) -> list[RegistryEntry]:
        """The Executable Load Files, with their modules when the card lists them (P1 10)."""
        self._require_channel("GET STATUS")
        try:
            return self.get_status(StatusScope.LOAD_FILES_AND_MODULES)
        except ApduError as e:
            if e.sw not in (0x6A86, 0x6A81):
                raise
            return self.get_status(StatusScope.LOAD_FILES)

    # -- LOAD and INSTALL

    def max_block_data(self) -> int:
        """Plain LOAD data per block so that the secured command fits a short APDU.

        9F65 of the ISD's FCI bounds the secured data field (default 255); the
        C-MAC takes 8 (S16: 16) bytes and C-DECRYPTION pads to whole AES
        blocks with at least one byte.
        """
        limit = _SHORT_MAX
        if self.isd is not None and self.isd.max_command_data:
            limit = min(limit, self.isd.max_command_data)
        level = self.scp.level if self.scp is not None else SecurityLevel.NONE
        if level & SecurityLevel.C_MAC:
            limit -= 16 if self.s16 else 8
        if level & SecurityLevel.C_DECRYPTION:
            limit = (limit // 16) * 16 - 1
        if limit < 16:
            raise ValueError(f"the card's command data limit leaves {limit} bytes per block")
        return limit

    def install_for_load(
        self,
        load_file_aid: bytes,
        *,
        sd_aid: bytes | None = None,
        data_block_hash: bytes = b"",
        load_params: bytes = b"",
        token: bytes = b"",
    ) -> None:
        """INSTALL [for load] (§11.5.2.3.1)."""
        self._require_channel("INSTALL [for load]")
        if sd_aid is None:
            sd_aid = self.isd.aid if self.isd is not None else b""
        data = lv(load_file_aid) + lv(sd_aid) + lv(data_block_hash) + lv(load_params) + lv(token)
        self.send(
            CommandApdu(CLA_GP, INS_INSTALL, INSTALL_FOR_LOAD, 0x00, data, 256),
            "INSTALL [for load]",
        )

    def load_blocks(
        self,
        load_file_data: bytes,
        *,
        block_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """LOAD the Load File (C4 || length || data) in numbered blocks (§11.6).

        Raises:
            ValueError: more than 256 blocks would be needed.
            ApduError: a block was refused.
        """
        self._require_channel("LOAD")
        blob = load_file_stream(load_file_data)
        size = block_size or self.max_block_data()
        blocks = [blob[i : i + size] for i in range(0, len(blob), size)]
        if len(blocks) > 256:
            raise ValueError(f"the load file needs {len(blocks)} blocks of {size}; LOAD counts 256")
        for n, block in enumerate(blocks):
            last = n == len(blocks) - 1
            cmd = CommandApdu(CLA_GP, INS_LOAD, 0x80 if last else 0x00, n, block, 256)
            self.send(cmd, f"LOAD block {n}")
            if progress is not None:
                progress(n + 1, len(blocks))

    def load(
        self,
        load_file_data: bytes,
        load_file_aid: bytes,
        *,
        sd_aid: bytes | None = None,
        with_hash: bool = False,
        load_params: bytes = b"",
        block_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """INSTALL [for load] then LOAD: put an Executable Load File on the card.

        Args:
            load_file_data: the Load File Data Block (the load file's bytes).
            load_file_aid: the Executable Load File's AID.
            with_hash: send the SHA-256 Load File Data Block Hash (GP 2.3 §C.2).
        """
        digest = lfdb_hash(load_file_data) if with_hash else b""
        self.install_for_load(
            load_file_aid, sd_aid=sd_aid, data_block_hash=digest, load_params=load_params
        )
        self.load_blocks(load_file_data, block_size=block_size, progress=progress)

    def install(
        self,
        load_file_aid: bytes,
        module_aid: bytes,
        application_aid: bytes | None = None,
        *,
        privileges: Privilege | int = 0,
        params: bytes = b"",
        system_params: bytes = b"",
        make_selectable: bool = True,
        token: bytes = b"",
    ) -> bytes:
        """INSTALL [for install (and make selectable)] (§11.5.2.3.2).

        Args:
            load_file_aid: the Executable Load File holding the module.
            module_aid: the Executable Module (applet class) to instantiate.
            application_aid: the new instance's AID (default: the module AID).
            privileges: sent as 1 byte when bytes 2-3 are zero, else 3 bytes.
            params: application-specific parameters, sent in tag C9.
            system_params: further install parameter TLVs (EF, ...), as is.

        Returns:
            The response data (empty, or 00, or a receipt).
        """
        self._require_channel("INSTALL [for install]")
        priv = privileges_to_bytes(privileges, short=True)
        install_params = tlv.build(0xC9, params) + system_params
        data = (
            lv(load_file_aid)
            + lv(module_aid)
            + lv(application_aid or module_aid)
            + lv(priv)
            + lv(install_params)
            + lv(token)
        )
        p1 = INSTALL_FOR_INSTALL | (INSTALL_FOR_MAKE_SELECTABLE if make_selectable else 0)
        what = (
            "INSTALL [for install and make selectable]"
            if make_selectable
            else "INSTALL [for install]"
        )
        resp, _ = self.send(CommandApdu(CLA_GP, INS_INSTALL, p1, 0x00, data, 256), what)
        return resp

    def make_selectable(self, application_aid: bytes, privileges: Privilege | int = 0) -> None:
        """INSTALL [for make selectable] (§11.5.2.3.3)."""
        self._require_channel("INSTALL [for make selectable]")
        priv = privileges_to_bytes(privileges, short=True)
        data = lv(b"") + lv(b"") + lv(application_aid) + lv(priv) + lv(b"") + lv(b"")
        self.send(
            CommandApdu(CLA_GP, INS_INSTALL, INSTALL_FOR_MAKE_SELECTABLE, 0x00, data, 256),
            "INSTALL [for make selectable]",
        )

    def personalize(
        self, application_aid: bytes, data: bytes, *, block_size: int | None = None
    ) -> None:
        """INSTALL [for personalization] then STORE DATA blocks (§11.5.2.3.5, §11.11).

        The data goes to the application through the ISD, in numbered blocks
        (P2), the last flagged in P1 b8; no encryption or structure is
        announced (P1 b7-b4 zero).
        """
        self._require_channel("INSTALL [for personalization]")
        fields = lv(b"") + lv(b"") + lv(application_aid) + lv(b"") + lv(b"") + lv(b"")
        self.send(
            CommandApdu(CLA_GP, INS_INSTALL, INSTALL_FOR_PERSONALIZATION, 0x00, fields, 256),
            "INSTALL [for personalization]",
        )
        self.store_data(data, block_size=block_size)

    def store_data(self, data: bytes, *, block_size: int | None = None) -> None:
        """STORE DATA in numbered blocks, to the ISD or the application being personalized."""
        self._require_channel("STORE DATA")
        size = block_size or self.max_block_data()
        blocks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        if len(blocks) > 256:
            raise ValueError(f"{len(blocks)} STORE DATA blocks of {size}; P2 counts 256")
        for n, block in enumerate(blocks):
            p1 = 0x80 if n == len(blocks) - 1 else 0x00
            self.send(CommandApdu(CLA_GP, INS_STORE_DATA, p1, n, block, 256), f"STORE DATA {n}")

    # -- DELETE, SET STATUS

    def delete(self, aid: bytes, *, related: bool = False) -> bytes:
        """DELETE an application, SD or load file; `related` also deletes what depends on it.

        §11.2: P2 80 deletes the object and its related objects (a load file's
        applications).

        Raises:
            ApduError: 6A88 when there is no such object, 6985 when others depend on it.
        """
        self._require_channel("DELETE")
        cmd = CommandApdu(
            CLA_GP, INS_DELETE, 0x00, 0x80 if related else 0x00, tlv.build(0x4F, aid), 256
        )
        data, _ = self.send(cmd, f"DELETE {aid.hex().upper()}")
        return data

    def set_application_status(self, aid: bytes, state: int) -> None:
        """SET STATUS of an application or SD (§11.10, P1 40)."""
        self._require_channel("SET STATUS")
        cmd = CommandApdu(CLA_GP, INS_SET_STATUS, 0x40, state, aid)
        self.send(cmd, f"SET STATUS {aid.hex().upper()} {state:02X}")

    def lock(self, aid: bytes) -> None:
        """Lock an application: SET STATUS with P2 80 (b8 of the life cycle, §11.1.1.3)."""
        self.set_application_status(aid, 0x80)

    def unlock(self, aid: bytes) -> None:
        """Unlock an application: SET STATUS with P2 00 (back to its state before LOCKED)."""
        self.set_application_status(aid, 0x00)

    def set_card_life_cycle(self, state: int) -> None:
        """SET STATUS of the card (§11.10, P1 80): 07, 0F, 7F (locked) or FF (terminated)."""
        self._require_channel("SET STATUS")
        self.send(CommandApdu(CLA_GP, INS_SET_STATUS, 0x80, state), f"SET STATUS card {state:02X}")

    # -- PUT KEY

    def put_key(self, new_keys: Scp03Keys, *, replace_kvn: int = 0) -> bytes:
        """PUT KEY: add (or replace) an SCP03 key set, keys wrapped under the current DEK.

        §11.8.2 with Amendment D §7.2: P1 is the version being replaced (00
        adds a set), P2 81 names several keys from id 01 (ENC, MAC, DEK). The
        card answers with the new version and the three KCVs, which must match.

        Returns:
            The card's response (version || 3 KCVs).

        Raises:
            ApduError: the card refused the key set.
            SecureChannelError: the card's KCVs do not match the keys sent.
        """
        self._require_channel("PUT KEY")
        if not 0 <= replace_kvn <= 0x7F:
            raise ValueError("the key version to replace is 00..7F")
        dek = self.keys.dek
        data = bytes((new_keys.kvn,)) + b"".join(
            encode_key_data(k, dek) for k in (new_keys.enc, new_keys.mac, new_keys.dek)
        )
        resp, _ = self.send(
            CommandApdu(CLA_GP, INS_PUT_KEY, replace_kvn, 0x81, data, 256), "PUT KEY"
        )
        want = bytes((new_keys.kvn,)) + b"".join(
            aes_kcv(k) for k in (new_keys.enc, new_keys.mac, new_keys.dek)
        )
        if resp != want:
            raise SecureChannelError(
                f"PUT KEY: card confirmed {resp.hex().upper()}, expected {want.hex().upper()}"
            )
        return resp

    # -- GET DATA

    def get_data(self, tag: int) -> bytes:
        """GET DATA for a two-byte tag (P1 P2), through the secure channel when open."""
        cmd = CommandApdu(CLA_GP, INS_GET_DATA, tag >> 8, tag & 0xFF, b"", 256)
        data, _ = self.send(cmd, f"GET DATA {tag:04X}")
        return data

    def cplc(self) -> Cplc:
        return parse_cplc(self.get_data(TAG_CPLC))

    def card_data(self) -> CardRecognitionData:
        return parse_card_data(self.get_data(TAG_CARD_DATA))

    def key_information(self) -> list[KeyInfo]:
        return parse_key_information(self.get_data(TAG_KEY_INFORMATION))


def _parse_fci(fci: bytes, selected: bytes | None) -> IsdInfo:
    aid = selected or b""
    max_data: int | None = None
    try:
        t84 = tlv.find(fci, 0x84, recursive=True)
        if t84 is not None:
            aid = t84.value
        t65 = tlv.find(fci, 0x9F65, recursive=True)
        if t65 is not None and t65.value:
            max_data = int.from_bytes(t65.value, "big")
    except tlv.TlvError:
        pass  # an FCI we cannot read still leaves the AID we selected
    return IsdInfo(aid, fci, max_data)


def _looks_like_sd(fci: bytes) -> bool:
    """Whether an FCI carries Security Domain Management Data (73) or 9F65, as an SD's does."""
    try:
        return (
            tlv.find(fci, 0x73, recursive=True) is not None
            or tlv.find(fci, 0x9F65, recursive=True) is not None
        )
    except tlv.TlvError:
        return False
