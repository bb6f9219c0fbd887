"""Card content management by the ISD: GET/SET STATUS, INSTALL, LOAD, DELETE, PUT KEY, STORE DATA.

Each handler takes the ISD and an unwrapped `Command`; the ISD has already
checked the card life cycle state and that the command came through an
authenticated secure channel with at least C-MAC (GPC v2.3.1 §9.1, §10.2).

Atomicity: every command that changes the Registry first checks everything it
can, then writes inside one transaction with the runtime's own registry write
last, so a tear (or a refusal from an applet's `on_install`) leaves the card in
the state before the command or after it, never between. LOAD keeps its
blocks in RAM and writes the Executable Load File record in one atomic write
after the last block.

Status words: 6A80 wrong data (malformed fields, a load file that fails its
hash, its code hash or the catalogue, an AID already present, a class that is
not an applet or is a card manager), 6A86 wrong P1/P2 (including a LOAD block
out of sequence, which also abandons the load), 6A88 referenced data not found
(unknown load file, module or application), 6985 conditions not satisfied (no
INSTALL [for load] before LOAD, deleting what other objects still need, the
ISD, or an application selected on another channel), 6982 a DAP that does not
verify.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from card import tlv
from card.crypto.keys import P256, EcPublicKey
from card.framework.applet import APDU
from card.framework.catalogue import CatalogueError
from card.gp import install as ins
from card.gp import lifecycle, status
from card.gp.channel import Command, PendingLoad, PendingStatus
from card.gp.keys import keysets_to_value, parse_put_key
from card.gp.loadfile import (
    HASH_ALGORITHMS,
    LoadFileDescriptor,
    LoadFileError,
    code_hash,
    expected_stream_length,
    lfdb_hash,
    parse_load_stream,
    verify_descriptor,
)
from card.gp.registry import (
    APP_PRIVILEGES,
    AppRecord,
    LoadFileRecord,
    Privilege,
    parse_privileges,
)
from card.ota import keys as ota_keys
from card.ota.keys import parse_put_ota_key
from card.runtime import CardRuntime
from card.sw import SW, CardError

if TYPE_CHECKING:
    from card.gp.isd import IssuerSecurityDomain

#: The largest load file the ISD accepts (descriptors are small; this bounds RAM).
MAX_LOAD_FILE = 0x8000
#: Room left in a short response for the R-MAC (8) and R-ENC padding (up to 16).
_RESPONSE_OVERHEAD = 24


def _confirm(cmd: Command) -> bytes | None:
    # §11.5.3 / §11.6.3 / §11.2.3: the response data is one byte 00 ... when the
    # host asked for response data at all (a case 3 command gets just 9000).
    return b"\x00" if cmd.apdu.le is not None else None


@contextmanager
def _registry_update(rt: CardRuntime) -> Iterator[None]:
    """One transaction around Registry writes.

    An abort rolls back persistent memory, and the runtime rebuilds its in-memory
    registry from it (`CardRuntime.reload_registry` runs on every rollback); after
    a tear, power-up does the same.
    """
    nvm = rt.nvm
    nvm.begin()
    try:
        yield
        nvm.commit()
    except BaseException:
        if nvm.in_transaction and not nvm.torn:
            nvm.abort()
        raise


# -- GET STATUS (§11.4) ----------


def get_status(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    a = cmd.apdu
    gp = isd._channel_gp()
    data = a.data
    if not data:
        data = b"\x4f\x00"  # no search criteria: every entry
    query = status.parse_query(a.p1, a.p2, data)
    if query.next:
        pending = gp.status
        if pending is None or (pending.subset, pending.tlv_format) != (
            query.subset,
            query.tlv_format,
        ):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        items, start = pending.items, pending.next_index
    else:
        gp.status = None
        items = status.entries(query, isd.registry(), isd.card_state, isd.isd_privileges())
        start = 0
    ne = a.le or 256
    limit = max(1, min(ne, 65536) - _RESPONSE_OVERHEAD)
    out, nxt = status.page(items, start, limit)
    if nxt < len(items):
        gp.status = PendingStatus(query.subset, query.tlv_format, items, nxt)
        raise CardError(SW.GP_MORE_DATA, out)
    gp.status = None
    return out


# -- SET STATUS (§11.10) ----------


def set_status(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    a = cmd.apdu
    rt = isd.runtime
    isd_aid = bytes(isd.aid)
    if a.p1 == lifecycle.STATUS_TYPE_ISD:
        if a.data and a.data != isd_aid:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        current = isd.card_state
        lifecycle.check_card_transition(current, a.p2)
        restrict = a.p2 in (lifecycle.CARD_LOCKED, lifecycle.TERMINATED)
        with _registry_update(rt):
            isd.card_state = a.p2
            # §5.1.1.4-5: a locked or terminated card selects only its ISD.
            rt.restrict_selection(isd_aid if restrict else None)
        return None
    if a.p1 not in (lifecycle.STATUS_TYPE_APP_OR_SD, lifecycle.STATUS_TYPE_SD_AND_APPS):
        raise CardError(SW.INCORRECT_P1P2)
    if not 5 <= len(a.data) <= 16:
        raise CardError(SW.WRONG_DATA)
    reg = isd.registry()
    if a.p1 == lifecycle.STATUS_TYPE_APP_OR_SD:
        if a.data == isd_aid:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # the ISD follows the card (§5.1)
        app = reg.application(a.data)
        if app is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        new_state = lifecycle.app_state_for_set_status(app.lifecycle, a.p2)
        with _registry_update(rt):
            rt.set_lifecycle(app.aid, new_state)
        return None
    # 60: the Security Domain and its applications. The only SD here is the ISD,
    # whose own state is the card's: its associated applications change.
    if a.data != isd_aid:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    changes = []
    for app in reg.applications():
        if app.sd_aid != isd_aid:
            continue
        if a.p2 & lifecycle.LOCKED_BIT:
            if not lifecycle.is_locked(app.lifecycle):
                changes.append((app.aid, lifecycle.lock(app.lifecycle)))
        elif a.p2 == 0x00:
            if lifecycle.is_locked(app.lifecycle):
                changes.append((app.aid, lifecycle.unlock(app.lifecycle)))
        else:
            raise CardError(SW.WRONG_DATA)
    with _registry_update(rt):
        for aid, state in changes:
            rt.set_lifecycle(aid, state)
    return None


# -- INSTALL (§11.5) ----------


def install(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    a = cmd.apdu
    if a.p2 not in (0x00, 0x01, 0x03):
        raise CardError(SW.INCORRECT_P1P2)
    p1 = a.p1 & 0x7F  # b8: more INSTALL commands follow
    if p1 == ins.FOR_LOAD:
        return _install_for_load(isd, cmd)
    if p1 in (ins.FOR_INSTALL, ins.FOR_INSTALL_AND_MAKE_SELECTABLE):
        return _install_for_install(isd, cmd, selectable=p1 & ins.FOR_MAKE_SELECTABLE != 0)
    if p1 == ins.FOR_MAKE_SELECTABLE:
        return _make_selectable(isd, cmd)
    if p1 == ins.FOR_PERSONALIZATION:
        return _install_for_personalization(isd, cmd)
    raise CardError(SW.INCORRECT_P1P2)


def _install_for_load(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    gp = isd._channel_gp()
    gp.load = None
    f = ins.ForLoad.parse(cmd.apdu.data)
    if f.sd_aid and f.sd_aid != bytes(isd.aid):
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    if f.lfdb_hash and len(f.lfdb_hash) not in HASH_ALGORITHMS:
        raise CardError(SW.WRONG_DATA)
    if isd.dap_key and not f.lfdb_hash:
        raise CardError(SW.WRONG_DATA)  # a DAP signs the hash: it must be given (§C.2)
    if isd.registry().aid_in_use(f.elf_aid):
        raise CardError(SW.WRONG_DATA)
    gp.load = PendingLoad(f.elf_aid, f.sd_aid or bytes(isd.aid), f.lfdb_hash)
    return _confirm(cmd)


def _install_for_install(
    isd: IssuerSecurityDomain, cmd: Command, *, selectable: bool
) -> bytes | None:
    rt = isd.runtime
    f = ins.ForInstall.parse(cmd.apdu.data)
    reg = isd.registry()
    elf = reg.load_file(f.elf_aid)
    if elf is None:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    module = elf.module(f.module_aid)
    if module is None:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    if reg.aid_in_use(f.app_aid):
        raise CardError(SW.WRONG_DATA)
    privileges = parse_privileges(f.privileges)
    if privileges & ~APP_PRIVILEGES:
        raise CardError(SW.WRONG_DATA)
    params = f.application_parameters
    try:
        cls = rt.catalogue.resolve(module.class_ref)
        # The code may have changed on disk since LOAD: instantiate only what was checked.
        unchanged = code_hash(elf.package) == elf.code_hash
    except (CatalogueError, ValueError):
        raise CardError(SW.WRONG_DATA) from None
    if not unchanged or cls.card_manager:
        raise CardError(SW.WRONG_DATA)
    record = AppRecord(f.app_aid, elf.aid, module.aid, int(privileges), bytes(isd.aid))
    state = lifecycle.SELECTABLE if selectable else lifecycle.INSTALLED
    with _registry_update(rt):
        isd.apps_value = isd.apps_value + (record.to_value(),)
        rt.install(
            cls,
            f.app_aid,
            params,
            default=bool(privileges & Privilege.CARD_RESET),
            lifecycle=state,
        )
    return _confirm(cmd)


def _make_selectable(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    f = ins.ForInstall.parse(cmd.apdu.data, make_selectable_only=True)
    app = isd.registry().application(f.app_aid)
    if app is None:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    if app.lifecycle != lifecycle.INSTALLED:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    if f.privileges and parse_privileges(f.privileges) != app.privileges:
        raise CardError(SW.WRONG_DATA)  # privileges are fixed at INSTALL [for install]
    with _registry_update(isd.runtime):
        isd.runtime.set_lifecycle(app.aid, lifecycle.SELECTABLE)
    return _confirm(cmd)


def _install_for_personalization(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    gp = isd._channel_gp()
    gp.perso = None
    aid = ins.parse_for_personalization(cmd.apdu.data)
    app = isd.registry().application(aid)
    if app is None:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    if lifecycle.is_locked(app.lifecycle) or not isd.runtime.gate_allows(aid):
        # A profile's application while the profile is not activated is refused as a
        # locked one is (CardRuntime.gate_allows; `deliver` checks again per block).
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    gp.perso = aid
    return _confirm(cmd)


# -- LOAD (§11.6) ----------


def load(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    a = cmd.apdu
    gp = isd._channel_gp()
    pending = gp.load
    if pending is None:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    last = a.p1 == 0x80
    if a.p1 not in (0x00, 0x80) or a.p2 != pending.next_block:
        gp.load = None
        raise CardError(SW.INCORRECT_P1P2)
    if not a.data or len(pending.data) + len(a.data) > MAX_LOAD_FILE:
        gp.load = None
        raise CardError(SW.WRONG_DATA if not a.data else SW.NOT_ENOUGH_MEMORY)
    pending.data += a.data
    pending.next_block += 1
    try:
        expected = expected_stream_length(bytes(pending.data))
        if expected is not None and len(pending.data) > expected:
            raise LoadFileError("LOAD data runs past the end of the load file")
        if not last:
            if pending.next_block > 0xFF:
                raise CardError(SW.INCORRECT_P1P2)
            return _confirm(cmd)
        if expected is None or len(pending.data) != expected:
            raise LoadFileError("the last LOAD block ends before the load file does")
        record = _check_load_file(
            isd, pending.elf_aid, pending.sd_aid, pending.lfdb_hash, bytes(pending.data)
        )
    except CardError:
        gp.load = None
        raise
    gp.load = None
    isd.load_files_value = isd.load_files_value + (record.to_value(),)
    return _confirm(cmd)


def _check_load_file(
    isd: IssuerSecurityDomain, elf_aid: bytes, sd_aid: bytes, digest: bytes, stream: bytes
) -> LoadFileRecord:
    lfdb, daps = parse_load_stream(stream)
    if digest and not hmac.compare_digest(lfdb_hash(lfdb, len(digest)), digest):
        raise LoadFileError("Load File Data Block hash does not match INSTALL [for load]")
    if isd.dap_key:
        # §9.2.1 / §C.3: with a DAP key the ISD must find its DAP block and verify it.
        block = next((d for d in daps if d.sd_aid == bytes(isd.aid)), None)
        key = EcPublicKey.from_point(P256, isd.dap_key)
        if block is None or not key.verify(digest, block.signature, encoding="raw"):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
    desc = LoadFileDescriptor.from_bytes(lfdb)
    if desc.aid != elf_aid:
        raise LoadFileError("the descriptor names another load file AID")
    if isd.registry().aid_in_use(desc.aid):
        raise LoadFileError("the load file AID is already in the Registry")
    verify_descriptor(desc, isd.runtime.catalogue)
    return LoadFileRecord.from_descriptor(desc, sd_aid)


# -- DELETE (§11.2) ----------


def delete(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    a = cmd.apdu
    rt = isd.runtime
    if a.p1 not in (0x00, 0x80) or a.p2 not in (0x00, 0x80):
        raise CardError(SW.INCORRECT_P1P2)
    try:
        items = tlv.parse(a.data, allow_padding=False)
    except tlv.TlvError:
        raise CardError(SW.WRONG_DATA) from None
    aids = [t.value for t in items if t.tag == 0x4F]
    if len(aids) != 1 or any(t.tag not in (0x4F, 0xB6, 0x9E) for t in items):
        raise CardError(SW.WRONG_DATA)  # key deletion (D0/D2) is not offered
    aid = aids[0]
    if aid == bytes(isd.aid):
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    reg = isd.registry()
    app = reg.application(aid)
    elf = reg.load_file(aid)
    if app is not None:
        doomed_apps = [app.aid]
        doomed_elf = None
    elif elf is not None:
        related = [x.aid for x in reg.apps_of_load_file(elf.aid)]
        if related and a.p2 != 0x80:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        doomed_apps, doomed_elf = related, elf.aid
    else:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    for ch in rt.open_channels():
        selected = rt.selected_aid(ch)
        if selected is not None and bytes(selected) in doomed_apps:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    with _registry_update(rt):
        isd.apps_value = tuple(v for v in isd.apps_value if v[0] not in doomed_apps)
        if doomed_elf is not None:
            isd.load_files_value = tuple(v for v in isd.load_files_value if v[0] != doomed_elf)
        for x in doomed_apps:
            rt.delete(x)
    return _confirm(cmd)


# -- PUT KEY (§11.8) ----------


def put_key(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    a = cmd.apdu
    gp = isd._channel_gp()
    if gp.keyset is not None:
        dek, dek_aes = gp.keyset.dek, True
    elif gp.ota_keyset is not None and gp.ota_keyset.dek:
        dek, dek_aes = gp.ota_keyset.dek, gp.ota_keyset.aes
    else:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # no DEK to carry keys under
    if a.data and 0x01 <= a.data[0] <= 0x0F:
        # Key versions 01-0F: SCP80 key sets (card.ota.keys).
        ota_set, old_kvn, response = parse_put_ota_key(
            a.p1, a.p2, a.data, dek, dek_aes, isd.ota_keysets
        )
        others = tuple(k for k in isd.ota_keysets if k.kvn not in (old_kvn, ota_set.kvn))
        with isd.system.transaction():
            isd.ota_keysets_value = ota_keys.keysets_to_value(others + (ota_set,))
            # A new key set starts its counter again (TS 102 225 §5.1.1).
            isd.ota_counters_value = tuple(
                (k, c) for k, c in isd.ota_counters_value if k not in (old_kvn, ota_set.kvn)
            )
        return response
    if not dek_aes:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # SCP03 keys travel under an AES DEK
    existing = isd.keysets
    result = parse_put_key(a.p1, a.p2, a.data, dek, existing)
    if result.dap_key is not None:
        isd.dap_key = result.dap_key
        return result.response
    assert result.keyset is not None
    if result.old_kvn:
        sets = tuple(result.keyset if k.kvn == result.old_kvn else k for k in existing)
    else:
        sets = existing + (result.keyset,)
    isd.keysets_value = keysets_to_value(sets)
    return result.response


# -- STORE DATA (§11.11) ----------


def store_data(isd: IssuerSecurityDomain, cmd: Command) -> bytes | None:
    """To the application named by INSTALL [for personalization], else to the ISD itself."""
    a = cmd.apdu
    gp = isd._channel_gp()
    target = gp.perso
    if target is None:
        return isd.store_data_self(a)
    if a.p1 & 0x80:
        gp.perso = None  # the last block ends the personalization
    rt = isd.runtime
    app = isd.registry().application(target)
    if app is None or lifecycle.is_locked(app.lifecycle) or not rt.gate_allows(target):
        gp.perso = None
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    # The application sees the STORE DATA in its own context, as Java Card's
    # Application.processData would give it (GPC v2.3.1 §11.11.2.2).
    return rt.deliver(target, APDU(a, cmd.channel))
