"""GlobalPlatform content management on the card: the full cycle, refusals, life cycles, keys.

Every refusal is checked for its status word and for an unchanged Registry.
"""

from __future__ import annotations

import sys

import pytest

from applets.notes import NOTES_AID
from applets.sample import ECHO_AID, PURSE_AID, EchoApplet
from card import tlv
from card.crypto.keys import P256, EcKeyPair
from card.gp import lifecycle
from card.gp.isd import ISD_AID
from card.gp.keys import put_key_data_for_dap
from card.gp.loadfile import (
    DapBlock,
    LoadFileDescriptor,
    Module,
    build_load_file,
    code_hash,
    default_package_aid,
    describe_load_file,
    lfdb_hash,
    load_file_stream,
)
from card.gp.scp03 import Scp03Keys, aes_kcv, encode_key_data
from card.runtime import CardRuntime
from tests.unit.test_gp_card import GpHost, gp_card, isd_of, lv, registry_state

h = bytes.fromhex

NOTES = describe_load_file("notes")
NOTES_ELF = NOTES.aid
NOTES_MODULE = NOTES.module_for("notes").aid
SAMPLE = describe_load_file("applets.sample")


def session(level: int = 0x33, seed: int = 1) -> tuple[CardRuntime, GpHost]:
    rt = gp_card(seed)
    host = GpHost(rt)
    host.open(level)
    return rt, host


def load_notes(host: GpHost, block: int = 200, with_hash: bool = True) -> None:
    lfdb = NOTES.to_bytes()
    digest = lfdb_hash(lfdb) if with_hash else b""
    assert host.install_for_load(NOTES_ELF, digest) == 0x9000
    assert host.load(load_file_stream(lfdb), block) == 0x9000


def aids(entries: list[tlv.Tlv]) -> list[bytes]:
    return [e.find(0x4F).value for e in entries]


# -- the whole cycle ------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0x01, 0x03, 0x13, 0x33])
def test_content_management_cycle(level: int) -> None:
    rt, host = session(level)
    apps_before = host.get_status(0x40)
    files_before = host.get_status(0x10)
    assert aids(apps_before) == [
        PURSE_AID,
        ECHO_AID,
        h("F043415244454D5503"),
        h("F043415244454D5504"),
    ]
    assert aids(files_before) == [SAMPLE.aid]
    assert [m.value for m in files_before[0].find_all(0x84)] == [m.aid for m in SAMPLE.modules]
    assert apps_before[0].find(0xC4).value == SAMPLE.aid  # the purse came from applets.sample
    assert apps_before[0].find(0xCC).value == ISD_AID
    before = registry_state(rt)

    load_notes(host, block=50)
    files = host.get_status(0x20)
    assert aids(files) == [SAMPLE.aid, NOTES_ELF]
    assert files[1].find(0x9F70).value == bytes((lifecycle.LOADED,))
    assert files[1].find(0xCE).value == bytes(NOTES.version)

    assert host.install(NOTES_ELF, NOTES_MODULE, NOTES_AID, b"hello") == 0x9000
    new = host.get_status(0x40, NOTES_AID)
    assert aids(new) == [NOTES_AID]
    assert new[0].find(0x9F70).value == b"\x07"  # SELECTABLE
    assert new[0].find(0xC5).value == bytes(3)
    assert new[0].find(0xC4).value == NOTES_ELF

    # Personalise it through the ISD, then use it.
    perso = lv(b"") + lv(b"") + lv(NOTES_AID) + lv(b"") + lv(b"") + lv(b"")
    assert host.send(host.cmd(0xE6, 0x20, 0x00, perso))[1] == 0x9000
    assert host.send(host.cmd(0xE2, 0x00, 0x00, b"from ", None)) == (b"", 0x9000)
    assert host.send(host.cmd(0xE2, 0x80, 0x01, b"the ISD", None)) == (b"", 0x9000)
    assert host.select(NOTES_AID)[1] == 0x9000
    assert host.raw(h("80CA000000")) == (b"from the ISD", 0x9000)

    # Back to the ISD: a new session, delete the load file and what came from it.
    assert host.select(ISD_AID)[1] == 0x9000
    host.open(level)
    assert host.delete(NOTES_ELF) == 0x6985  # it still has an application
    assert host.delete(NOTES_ELF, related=True) == 0x9000
    assert host.get_status(0x40) == apps_before
    assert host.get_status(0x10) == files_before
    assert registry_state(rt) == before
    assert host.select(NOTES_AID)[1] == 0x6A82
    assert rt.nvm.read(NOTES_AID.hex(), "notes") is None  # the applet's data went with it
    assert rt.exceptions == 0 and rt.nvm_violations == 0


def test_install_then_make_selectable_then_delete_application_only() -> None:
    rt, host = session()
    load_notes(host)
    assert host.install(NOTES_ELF, NOTES_MODULE, NOTES_AID, p1=0x04) == 0x9000
    assert host.get_status(0x40, NOTES_AID)[0].find(0x9F70).value == b"\x03"  # INSTALLED
    assert host.select(NOTES_AID)[1] == 0x6A82
    host.open()
    ms = lv(b"") + lv(b"") + lv(NOTES_AID) + lv(b"") + lv(b"") + lv(b"")
    assert host.send(host.cmd(0xE6, 0x08, 0x00, ms))[1] == 0x9000
    assert host.send(host.cmd(0xE6, 0x08, 0x00, ms))[1] == 0x6985  # already selectable
    assert host.get_status(0x40, NOTES_AID)[0].find(0x9F70).value == b"\x07"
    assert host.delete(NOTES_AID) == 0x9000
    assert aids(host.get_status(0x20, NOTES_ELF)) == [NOTES_ELF]  # the file stays
    assert host.get_status(0x40, NOTES_AID) == []


def test_install_with_card_reset_privilege_makes_it_default() -> None:
    rt, host = session()
    load_notes(host)
    assert host.install(NOTES_ELF, NOTES_MODULE, NOTES_AID, b"x", privileges=h("040000")) == 0x9000
    assert host.get_status(0x40, NOTES_AID)[0].find(0xC5).value == h("040000")
    assert host.get_status(0x80)[0].find(0xC5).value == h("9AFE80")  # the ISD lost it
    rt.reset()
    assert rt.selected_aid(0) == NOTES_AID


def test_install_several_instances_from_one_module() -> None:
    rt, host = session()
    load_notes(host)
    second = NOTES_AID[:-1] + b"\x11"
    assert host.install(NOTES_ELF, NOTES_MODULE, NOTES_AID, b"one") == 0x9000
    assert host.install(NOTES_ELF, NOTES_MODULE, second, b"two") == 0x9000
    assert rt.applet(second).notes == b"two"
    assert rt.applet(NOTES_AID).notes == b"one"
    assert host.delete(NOTES_ELF, related=True) == 0x9000
    assert host.get_status(0x40, NOTES_AID[:5]) != []  # the samples share the RID
    assert not any(a in (NOTES_AID, second) for a in aids(host.get_status(0x40)))


# -- refusals: each with its status word, the Registry untouched ------------------------------


def refused(rt: CardRuntime, sw: int, got: int) -> None:
    assert got == sw, f"expected {sw:04X}, got {got:04X}"
    assert rt.exceptions == 0


def test_content_management_without_a_secure_channel() -> None:
    rt = gp_card()
    host = GpHost(rt)
    before = registry_state(rt)
    lfdb = NOTES.to_bytes()
    refused(rt, 0x6982, host.install_for_load(NOTES_ELF, lfdb_hash(lfdb)))
    refused(rt, 0x6982, host.load(load_file_stream(lfdb)))
    refused(rt, 0x6982, host.install(SAMPLE.aid, SAMPLE.modules[0].aid, NOTES_AID))
    refused(rt, 0x6982, host.delete(PURSE_AID))
    refused(rt, 0x6982, host.set_status(0x80, lifecycle.TERMINATED))
    refused(rt, 0x6982, host.send("80F28002024F0000")[1])
    assert registry_state(rt) == before
    assert isd_of(rt).card_state == lifecycle.OP_READY


def test_content_management_at_level_00_is_refused() -> None:
    rt, host = session(0x00)
    before = registry_state(rt)
    refused(rt, 0x6982, host.delete(PURSE_AID))
    assert registry_state(rt) == before


def test_wrong_mac_in_the_middle_of_a_load() -> None:
    rt, host = session(0x01)
    before = registry_state(rt)
    lfdb = NOTES.to_bytes()
    assert host.install_for_load(NOTES_ELF, lfdb_hash(lfdb)) == 0x9000
    assert host.session is not None
    stream = load_file_stream(lfdb)
    wrapped = bytearray(host.session.wrap_command(host.cmd(0xE8, 0x80, 0x00, stream, None)))
    wrapped[10] ^= 0xFF  # a data byte: the C-MAC no longer matches
    assert rt.process(bytes(wrapped)) == h("6982")
    assert registry_state(rt) == before
    host.open(0x01)
    refused(rt, 0x6985, host.load(stream))  # the load died with the session
    assert registry_state(rt) == before


@pytest.mark.parametrize("state", [lifecycle.CARD_LOCKED, lifecycle.TERMINATED])
def test_content_management_refused_when_locked_or_terminated(state: int) -> None:
    rt, host = session(0x01)
    assert host.set_status(0x80, lifecycle.INITIALIZED) == 0x9000
    assert host.set_status(0x80, lifecycle.SECURED) == 0x9000
    assert host.set_status(0x80, state) == 0x9000
    before = registry_state(rt)
    lfdb = NOTES.to_bytes()
    refused(rt, 0x6A81, host.install_for_load(NOTES_ELF, lfdb_hash(lfdb)))
    refused(rt, 0x6A81, host.delete(PURSE_AID))
    refused(rt, 0x6A81, host.install(SAMPLE.aid, SAMPLE.modules[3].aid, NOTES_AID))
    key = encode_key_data(bytes(16), host.keys.dek)
    refused(rt, 0x6A81, host.send(host.cmd(0xD8, 0x00, 0x81, b"\x31" + key * 3))[1])
    assert registry_state(rt) == before
    # Only the ISD can be selected now (§5.1.1.4-5), and GET DATA still answers.
    assert host.select(PURSE_AID)[1] == 0x6A82
    data, sw = host.select(ISD_AID)
    assert sw == (0x6283 if state == lifecycle.CARD_LOCKED else 0x9000)
    assert data[:1] == b"\x6f"
    assert host.send("80CA9F7F00")[1] == 0x9000
    rt.reset()
    assert rt.selected_aid(0) == ISD_AID
    if state == lifecycle.TERMINATED:
        assert host.raw(h("8050000008") + bytes(8) + b"\x00")[1] == 0x6A81
        return
    # A locked card can be unlocked by the ISD, which gives the applets back.
    host.open(0x01)
    assert host.get_status(0x80)[0].find(0x9F70).value == b"\x7f"
    assert host.set_status(0x80, lifecycle.SECURED) == 0x9000
    assert host.select(PURSE_AID)[1] == 0x9000


def test_load_file_hash_mismatch() -> None:
    rt, host = session()
    before = registry_state(rt)
    lfdb = NOTES.to_bytes()
    assert host.install_for_load(NOTES_ELF, lfdb_hash(lfdb + b"x")) == 0x9000
    refused(rt, 0x6A80, host.load(load_file_stream(lfdb)))
    assert registry_state(rt) == before


def test_code_hash_mismatch() -> None:
    rt, host = session()
    before = registry_state(rt)
    forged = LoadFileDescriptor(
        NOTES.aid, NOTES.version, NOTES.package, bytes(32), NOTES.modules
    ).to_bytes()
    assert host.install_for_load(NOTES_ELF, lfdb_hash(forged)) == 0x9000
    refused(rt, 0x6A80, host.load(load_file_stream(forged)))
    assert registry_state(rt) == before


def test_descriptor_for_another_aid_than_install_for_load() -> None:
    rt, host = session()
    before = registry_state(rt)
    other = NOTES_ELF[:-1] + b"\x00"
    assert host.install_for_load(other) == 0x9000
    refused(rt, 0x6A80, host.load(load_file_stream(NOTES.to_bytes())))
    assert registry_state(rt) == before


@pytest.mark.parametrize(
    "package, ref",
    [
        ("applets.notes", "applets.notes:NotThere"),  # a name in the package, not catalogued
        ("applets.notes", "applets.sample.purse:PurseApplet"),  # catalogued, other package
        ("this.sub", "this.sub:Anything"),  # importing `this` would print the Zen of Python
    ],
)
def test_class_not_in_the_catalogue(package: str, ref: str) -> None:
    rt, host = session()
    before = registry_state(rt)
    aid = default_package_aid(package)
    forged = LoadFileDescriptor(
        aid, (1, 0), package, code_hash("applets.notes"), (Module(NOTES_MODULE, "", ref),)
    ).to_bytes()
    assert host.install_for_load(aid, lfdb_hash(forged)) == 0x9000
    refused(rt, 0x6A80, host.load(load_file_stream(forged)))
    assert registry_state(rt) == before
    assert "this" not in sys.modules  # nothing named by the APDU was imported


def test_aid_already_present() -> None:
    rt, host = session()
    before = registry_state(rt)
    # a load file under an application's AID, and one under the existing package's
    refused(rt, 0x6A80, host.install_for_load(PURSE_AID))
    refused(rt, 0x6A80, host.install_for_load(SAMPLE.aid))
    # an application under an AID already installed
    echo_module = SAMPLE.module_for("echo").aid
    refused(rt, 0x6A80, host.install(SAMPLE.aid, echo_module, PURSE_AID))
    refused(rt, 0x6A80, host.install(SAMPLE.aid, echo_module, ISD_AID))
    assert registry_state(rt) == before
    # the same install under a fresh AID works: the refusal was about the AID
    assert host.install(SAMPLE.aid, echo_module, ECHO_AID[:-1] + b"\x42") == 0x9000


def test_install_refusals() -> None:
    rt, host = session()
    before = registry_state(rt)
    echo_module = SAMPLE.module_for("echo").aid
    fresh = ECHO_AID[:-1] + b"\x42"
    refused(rt, 0x6A88, host.install(NOTES_ELF, NOTES_MODULE, fresh))  # no such load file
    refused(rt, 0x6A88, host.install(SAMPLE.aid, NOTES_MODULE, fresh))  # not its module
    refused(rt, 0x6A80, host.install(SAMPLE.aid, echo_module, fresh, privileges=h("800000")))
    refused(rt, 0x6A80, host.install(SAMPLE.aid, echo_module, fresh, privileges=h("8000")))
    refused(rt, 0x6A80, host.send(host.cmd(0xE6, 0x0C, 0x00, h("05F043415244")))[1])
    refused(rt, 0x6A86, host.send(host.cmd(0xE6, 0x40, 0x00, h("00")))[1])
    assert registry_state(rt) == before


def test_a_card_manager_class_is_never_installed() -> None:
    rt, host = session()
    gp = describe_load_file("gp-isd")  # the card.gp package, catalogued for the ISD itself
    lfdb = gp.to_bytes()
    assert host.install_for_load(gp.aid, lfdb_hash(lfdb)) == 0x9000
    assert host.load(load_file_stream(lfdb)) == 0x9000
    before = registry_state(rt)
    module = gp.module_for("gp-isd").aid
    refused(rt, 0x6A80, host.install(gp.aid, module, h("A000000151000001")))
    assert registry_state(rt) == before


def test_truncated_load() -> None:
    rt, host = session()
    before = registry_state(rt)
    lfdb = NOTES.to_bytes()
    stream = load_file_stream(lfdb)
    assert host.install_for_load(NOTES_ELF, lfdb_hash(lfdb)) == 0x9000
    assert host.send(host.cmd(0xE8, 0x00, 0x00, stream[:100]))[1] == 0x9000
    refused(rt, 0x6A80, host.send(host.cmd(0xE8, 0x80, 0x01, stream[100:-1]))[1])
    assert registry_state(rt) == before
    refused(rt, 0x6985, host.send(host.cmd(0xE8, 0x80, 0x02, stream[-1:]))[1])
    # ... and data past the end of the load file
    assert host.install_for_load(NOTES_ELF, lfdb_hash(lfdb)) == 0x9000
    refused(rt, 0x6A80, host.send(host.cmd(0xE8, 0x80, 0x00, stream + b"\x00"))[1])
    assert registry_state(rt) == before


def test_out_of_order_load_block() -> None:
    rt, host = session()
    before = registry_state(rt)
    lfdb = NOTES.to_bytes()
    stream = load_file_stream(lfdb)
    assert host.install_for_load(NOTES_ELF, lfdb_hash(lfdb)) == 0x9000
    assert host.send(host.cmd(0xE8, 0x00, 0x00, stream[:100]))[1] == 0x9000
    refused(rt, 0x6A86, host.send(host.cmd(0xE8, 0x80, 0x02, stream[100:]))[1])
    refused(rt, 0x6985, host.send(host.cmd(0xE8, 0x80, 0x01, stream[100:]))[1])
    assert registry_state(rt) == before


def test_load_without_install_for_load() -> None:
    rt, host = session()
    refused(rt, 0x6985, host.load(load_file_stream(NOTES.to_bytes())))


def test_delete_refusals() -> None:
    rt, host = session()
    before = registry_state(rt)
    refused(rt, 0x6985, host.delete(ISD_AID))
    refused(rt, 0x6A88, host.delete(NOTES_AID))
    refused(rt, 0x6985, host.delete(SAMPLE.aid))  # its applications are installed
    refused(rt, 0x6A80, host.send(host.cmd(0xE4, 0x00, 0x00, h("D00101")))[1])  # key deletion
    refused(rt, 0x6A86, host.send(host.cmd(0xE4, 0x00, 0x01, tlv.build(0x4F, PURSE_AID)))[1])
    # an application selected on another channel cannot go
    assert rt.process(h("0070000001")) == h("019000")
    assert rt.process(h("01A4040C09") + PURSE_AID) == h("9000")
    refused(rt, 0x6985, host.delete(PURSE_AID))
    assert registry_state(rt) == before
    assert rt.process(h("0070800100")) == h("9000")
    assert host.delete(PURSE_AID) == 0x9000


def test_deleting_a_load_file_with_its_applications() -> None:
    rt, host = session()
    assert host.delete(SAMPLE.aid, related=True) == 0x9000
    assert host.get_status(0x40) == []
    assert host.get_status(0x20) == []
    assert [bytes(a) for a, *_ in rt.applets()] == [ISD_AID]


# -- SET STATUS and life cycles -------------------------------------------------------------------

CARD_STATES = list(lifecycle.CARD_STATES)
ALLOWED = {
    (lifecycle.OP_READY, lifecycle.INITIALIZED),
    (lifecycle.INITIALIZED, lifecycle.SECURED),
    (lifecycle.SECURED, lifecycle.CARD_LOCKED),
    (lifecycle.CARD_LOCKED, lifecycle.SECURED),
}
PATH = {
    lifecycle.OP_READY: [],
    lifecycle.INITIALIZED: [lifecycle.INITIALIZED],
    lifecycle.SECURED: [lifecycle.INITIALIZED, lifecycle.SECURED],
    lifecycle.CARD_LOCKED: [lifecycle.INITIALIZED, lifecycle.SECURED, lifecycle.CARD_LOCKED],
}


@pytest.mark.parametrize("start", list(PATH))
@pytest.mark.parametrize("target", CARD_STATES + [0x03, 0x00])
def test_card_life_cycle_transitions(start: int, target: int) -> None:
    """GPC v2.3.1 §5.1.1: only the transitions of Figure 5-1, TERMINATED from anywhere."""
    rt, host = session(0x01)
    for s in PATH[start]:
        assert host.set_status(0x80, s) == 0x9000
    sw = host.set_status(0x80, target)
    if (start, target) in ALLOWED or target == lifecycle.TERMINATED:
        assert sw == 0x9000
        assert isd_of(rt).card_state == target
    else:
        assert sw == (0x6A80 if target not in lifecycle.CARD_STATES else 0x6985)
        assert isd_of(rt).card_state == start


def test_terminated_is_final() -> None:
    rt, host = session(0x01)
    assert host.set_status(0x80, lifecycle.TERMINATED) == 0x9000
    for target in CARD_STATES:
        assert host.set_status(0x80, target) == 0x6A81  # a terminated card only answers GET DATA
    assert isd_of(rt).card_state == lifecycle.TERMINATED


def test_lock_and_unlock_an_application() -> None:
    rt, host = session()
    assert host.set_status(0x40, 0x80, PURSE_AID) == 0x9000
    assert host.get_status(0x40, PURSE_AID)[0].find(0x9F70).value == b"\x87"
    assert host.set_status(0x40, 0x80, PURSE_AID) == 0x6985  # already locked
    assert host.select(PURSE_AID)[1] == 0x6A82
    host.select(ISD_AID)
    host.open()
    assert host.set_status(0x40, 0x00, PURSE_AID) == 0x9000
    assert host.get_status(0x40, PURSE_AID)[0].find(0x9F70).value == b"\x07"
    assert host.set_status(0x40, 0x0F, PURSE_AID) == 0x6A80  # app-specific: not the ISD's
    assert host.set_status(0x40, 0x80, NOTES_AID) == 0x6A88
    assert host.set_status(0x40, 0x80, ISD_AID) == 0x6985
    assert host.select(PURSE_AID)[1] == 0x9000


def test_lock_the_sd_and_its_applications() -> None:
    rt, host = session()
    assert host.set_status(0x60, 0x80, ISD_AID) == 0x9000
    states = {e.find(0x4F).value: e.find(0x9F70).value for e in host.get_status(0x40)}
    assert set(states.values()) == {b"\x87"}
    assert host.get_status(0x80)[0].find(0x9F70).value == b"\x01"  # the card is untouched
    assert host.set_status(0x60, 0x00, ISD_AID) == 0x9000
    assert {e.find(0x9F70).value for e in host.get_status(0x40)} == {b"\x07"}
    assert host.set_status(0x60, 0x80, PURSE_AID) == 0x6A88  # not a Security Domain


# -- GET STATUS --------------------------------------------------------------------------------


def test_get_status_continues_with_6310() -> None:
    rt, host = session()
    for i in range(12):
        aid = h("F043415244454D55") + bytes((0x60 + i,)) + bytes(7)
        assert host.install(SAMPLE.aid, SAMPLE.module_for("echo").aid, aid) == 0x9000
    p2 = 0x02
    pages = []
    while True:
        data, sw = host.send(host.cmd(0xF2, 0x40, p2, h("4F00")))
        pages.append(tlv.parse(data))
        if sw == 0x9000:
            break
        assert sw == 0x6310
        p2 = 0x03
    assert len(pages) > 1
    everything = [e for page in pages for e in page]
    assert len(everything) == 16
    assert len({e.find(0x4F).value for e in everything}) == 16
    # "next" without a 6310 before it
    assert host.send(host.cmd(0xF2, 0x40, 0x03, h("4F00")))[1] == 0x6985


def test_get_status_tag_list_and_legacy_format() -> None:
    rt, host = session()
    entries = host.get_status(0x40, PURSE_AID, tags=h("4F9F70"))
    assert [[c.tag for c in e.children] for e in entries] == [[0x4F, 0x9F70]]
    data, sw = host.send(host.cmd(0xF2, 0x40, 0x00, tlv.build(0x4F, PURSE_AID)))
    assert (data, sw) == (lv(PURSE_AID) + b"\x07\x00", 0x9000)
    data, sw = host.send(host.cmd(0xF2, 0x10, 0x00, h("4F00")))
    assert data[: 1 + len(SAMPLE.aid)] == lv(SAMPLE.aid)
    assert data[1 + len(SAMPLE.aid) + 2] == len(SAMPLE.modules)
    assert host.send(host.cmd(0xF2, 0x08, 0x02, h("4F00")))[1] == 0x6A86
    assert host.send(host.cmd(0xF2, 0x40, 0x02, h("4F00C000")))[1] == 0x6A80


# -- PUT KEY ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 32])
def test_put_key_adds_a_key_set(size: int) -> None:
    rt, host = session()
    new = Scp03Keys(b"\x01" * size, b"\x02" * size, b"\x03" * size, 0x31)
    body = b"".join(encode_key_data(k, host.keys.dek) for k in (new.enc, new.mac, new.dek))
    data, sw = host.send(host.cmd(0xD8, 0x00, 0x81, b"\x31" + body))
    assert sw == 0x9000
    assert data == b"\x31" + aes_kcv(new.enc) + aes_kcv(new.mac) + aes_kcv(new.dek)
    assert [k.kvn for k in isd_of(rt).keysets] == [0x30, 0x31]
    other = GpHost(rt, keys=new)
    other.open(0x33, kvn=0x31)
    assert aids(other.get_status(0x80)) == [ISD_AID]
    keyinfo = other.send("80CA00E000")[0]
    assert tlv.find(keyinfo, 0xE0) is not None
    assert bytes((1, 0x31, 0x88, size)) in keyinfo


def test_put_key_replaces_a_key_set_and_the_old_keys_stop_working() -> None:
    rt, host = session()
    new = Scp03Keys.single(b"\x55" * 16, 0x32)
    body = encode_key_data(new.enc, host.keys.dek) * 3
    assert host.send(host.cmd(0xD8, 0x30, 0x81, b"\x32" + body))[1] == 0x9000
    assert [k.kvn for k in isd_of(rt).keysets] == [0x32]
    assert host.raw(h("8050300008") + bytes(8) + b"\x00")[1] == 0x6A88
    GpHost(rt, keys=new).open(0x01)


def test_put_key_accepts_a_key_block_without_length_prefix() -> None:
    """GPC v2.3.1 Table 11-71: a block that is whole AES blocks is the encrypted key alone."""
    from card.crypto.cmac import aes_cbc_encrypt

    rt, host = session()
    key = b"\x66" * 16
    block = aes_cbc_encrypt(host.keys.dek, bytes(16), key)
    field = b"\x88\x10" + block + b"\x03" + aes_kcv(key)
    data, sw = host.send(host.cmd(0xD8, 0x00, 0x81, b"\x33" + field * 3))
    assert (data, sw) == (b"\x33" + aes_kcv(key) * 3, 0x9000)


def test_put_key_refusals() -> None:
    rt, host = session()
    before = isd_of(rt).keysets_value
    good = encode_key_data(b"\x07" * 16, host.keys.dek)
    bad_kcv = good[:-1] + bytes((good[-1] ^ 1,))
    assert host.send(host.cmd(0xD8, 0x00, 0x81, b"\x31" + good * 2 + bad_kcv))[1] == 0x9485
    des = b"\x80\x10" + bytes(16) + b"\x00"
    assert host.send(host.cmd(0xD8, 0x00, 0x81, b"\x31" + des * 3))[1] == 0x9484
    assert host.send(host.cmd(0xD8, 0x3F, 0x81, b"\x31" + good * 3))[1] == 0x6A88
    assert host.send(host.cmd(0xD8, 0x00, 0x81, b"\x30" + good * 3))[1] == 0x6A80  # kvn taken
    assert host.send(host.cmd(0xD8, 0x00, 0x81, b"\x31" + good[:-2]))[1] == 0x6A80
    assert isd_of(rt).keysets_value == before
    plain = GpHost(rt)
    assert plain.raw(host.cmd(0xD8, 0x00, 0x81, b"\x31" + good * 3))[1] == 0x6982


# -- DAP verification ------------------------------------------------------------------------------


def test_dap_verification() -> None:
    rt, host = session()
    dap = EcKeyPair.generate(P256)
    data, sw = host.send(host.cmd(0xD8, 0x00, 0x01, put_key_data_for_dap(dap.public.to_point())))
    assert (data, sw) == (b"\x73", 0x9000)
    assert b"\xc0\x06\x01\x73\xb0\x41\xf0\x01" in host.send("80CA00E000")[0]
    lfdb = NOTES.to_bytes()
    digest = lfdb_hash(lfdb)
    before = registry_state(rt)
    # no hash: a DAP cannot be checked
    assert host.install_for_load(NOTES_ELF) == 0x6A80
    # no DAP block, then a DAP by another key
    assert host.install_for_load(NOTES_ELF, digest) == 0x9000
    assert host.load(load_file_stream(lfdb)) == 0x6982
    forged = EcKeyPair.generate(P256).sign(digest, encoding="raw")
    assert host.install_for_load(NOTES_ELF, digest) == 0x9000
    assert host.load(load_file_stream(lfdb, [DapBlock(ISD_AID, forged)])) == 0x6982
    assert registry_state(rt) == before
    good = dap.sign(digest, encoding="raw")
    assert host.install_for_load(NOTES_ELF, digest) == 0x9000
    assert host.load(load_file_stream(lfdb, [DapBlock(ISD_AID, good)]), block=40) == 0x9000
    assert aids(host.get_status(0x20, NOTES_ELF)) == [NOTES_ELF]


def test_build_load_file_is_what_the_card_accepts() -> None:
    rt, host = session()
    lfdb = build_load_file("notes")
    assert lfdb == NOTES.to_bytes()
    assert host.install_for_load(NOTES_ELF, lfdb_hash(lfdb, 20)) == 0x9000  # SHA-1 too
    assert host.load(load_file_stream(lfdb), block=255) == 0x9000


# -- STORE DATA to an application its selection gate refuses ---------------------------------

_ECHO_GATE = {"open": True}
ECHO_GATE_AID = h("F0434152444547415403")


class _EchoGate(EchoApplet):
    """Gates the echo applet (`Applet.selection_gate`), as the UICC gates a profile's."""

    selection_gate = True

    def gated_aids(self) -> tuple[bytes, ...]:
        return (ECHO_AID,)

    def may_select(self, aid: bytes) -> bool:
        return _ECHO_GATE["open"]


def test_store_data_does_not_reach_an_application_its_gate_refuses() -> None:
    """Regression: STORE DATA after INSTALL [for personalization] reached a gated
    application (a profile's, its profile not activated) that SELECT refuses. Now it is
    refused as for a locked application: 6985 at INSTALL [for personalization], and at
    STORE DATA when the gate closed in between. The echo applet answers STORE DATA
    6D00: that is the command reaching it."""
    _ECHO_GATE["open"] = True
    rt, host = session()
    rt.install(_EchoGate, ECHO_GATE_AID)
    perso = lv(b"") + lv(b"") + lv(ECHO_AID) + lv(b"") + lv(b"") + lv(b"")
    assert host.send(host.cmd(0xE6, 0x20, 0x00, perso))[1] == 0x9000
    assert host.send(host.cmd(0xE2, 0x80, 0x00, b"x", None))[1] == 0x6D00  # reached
    assert host.send(host.cmd(0xE6, 0x20, 0x00, perso))[1] == 0x9000
    _ECHO_GATE["open"] = False
    before = rt.nvm.snapshot()
    assert host.send(host.cmd(0xE2, 0x80, 0x00, b"x", None))[1] == 0x6985
    assert host.send(host.cmd(0xE6, 0x20, 0x00, perso))[1] == 0x6985
    assert rt.nvm.snapshot() == before
    _ECHO_GATE["open"] = True
    assert host.send(host.cmd(0xE6, 0x20, 0x00, perso))[1] == 0x9000
    assert host.send(host.cmd(0xE2, 0x80, 0x00, b"x", None))[1] == 0x6D00
    assert rt.exceptions == 0
