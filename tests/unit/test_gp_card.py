"""The GlobalPlatform ISD as a card: SCP03 vectors, SELECT, GET DATA, session rules.

Vectors: copied from shared/vectors/scp03.json, i.e. osmocom/pysim
tests/unittests/test_globalplatform.py at commit
597f1e0398bb81d6832dc92ee4dfdcada59d3d82 (three AES-128 sessions against an
eUICC ISD-R, AID A0000005591010FFFFFFFF8900000100, pseudo-random card
challenges, key version 30, security levels 03, 11 and 33). Here the card
side produces them.

This module also holds the small off-card helper (`GpHost`) the other
test_gp_card_* modules use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from card import tlv
from card.apdu import CommandApdu
from card.framework.catalogue import Catalogue
from card.gp.isd import ISD_AID, IssuerSecurityDomain
from card.gp.scp03 import (
    InitializeUpdateResponse,
    Scp03Keys,
    Scp03Session,
    initialize_update_command,
)
from card.runtime import CardRuntime
from host.presets import new_card

h = bytes.fromhex


# -- helpers shared by the test_gp_card_* modules ----------------------------------------


def gp_card(seed: int = 1, image: str | None = None) -> CardRuntime:
    """The "gp" preset, powered: ISD default-selected, sample applets, keys 40..4F kvn 30."""
    rt = new_card("gp", image, rng_seed=seed)
    rt.power_on()
    return rt


def isd_of(rt: CardRuntime) -> IssuerSecurityDomain:
    isd = rt.applet(ISD_AID)
    assert isinstance(isd, IssuerSecurityDomain)
    return isd


def registry_state(rt: CardRuntime) -> tuple:
    """What content management may change: runtime registry and the ISD's GP tables."""
    isd = isd_of(rt)
    return (
        tuple((bytes(a), ref, lc, d) for a, ref, lc, d in rt.applets()),
        isd.load_files_value,
        isd.apps_value,
        rt.nvm.read("__card__", "registry"),
    )


def lv(b: bytes) -> bytes:
    return bytes((len(b),)) + b


class GpHost:
    """A minimal off-card entity: SCP03 via card.gp.scp03, GET RESPONSE, GP commands."""

    def __init__(self, rt: CardRuntime, keys: Scp03Keys | None = None, channel: int = 0) -> None:
        self.rt = rt
        self.keys = keys or Scp03Keys.test_keys(0x30)
        self.channel = channel
        self.session: Scp03Session | None = None

    @property
    def cla(self) -> int:
        return 0x80 | self.channel

    def raw(self, apdu: bytes) -> tuple[bytes, int]:
        """Send as is; fetch 61xx remainders with GET RESPONSE."""
        resp = self.rt.process(apdu)
        data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        while sw >> 8 == 0x61:
            resp = self.rt.process(bytes((self.channel, 0xC0, 0, 0, sw & 0xFF)))
            data += resp[:-2]
            sw = int.from_bytes(resp[-2:], "big")
        return data, sw

    def open(self, level: int = 0x33, kvn: int = 0, challenge: bytes = b"\x11" * 8) -> int:
        """INITIALIZE UPDATE + EXTERNAL AUTHENTICATE; returns the sequence counter."""
        data, sw = self.raw(initialize_update_command(challenge, kvn, self.cla))
        assert sw == 0x9000, f"INITIALIZE UPDATE {sw:04X}"
        iu = InitializeUpdateResponse.from_bytes(data)
        self.session = Scp03Session.derive(self.keys, challenge, iu.card_challenge)
        assert self.session.card_cryptogram == iu.card_cryptogram
        data, sw = self.raw(self.session.external_authenticate_command(level, self.cla))
        assert (data, sw) == (b"", 0x9000), f"EXTERNAL AUTHENTICATE {sw:04X}"
        assert iu.sequence_counter is not None
        return iu.sequence_counter

    def send(self, apdu: bytes | str) -> tuple[bytes, int]:
        """Send through the session (if one is open); returns plain data and SW."""
        if isinstance(apdu, str):
            apdu = h(apdu.replace(" ", ""))
        s = self.session
        if s is None or not s.authenticated:
            return self.raw(apdu)
        data, sw = self.raw(s.wrap_command(apdu))
        plain = s.unwrap_response(data + sw.to_bytes(2, "big"))
        return plain[:-2], sw

    def cmd(self, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 256) -> bytes:
        return CommandApdu(self.cla, ins, p1, p2, data, le).to_bytes()

    # -- content management

    def get_status(self, p1: int, aid: bytes = b"", tags: bytes | None = None) -> list[tlv.Tlv]:
        crit = tlv.build(0x4F, aid) + (b"" if tags is None else tlv.build(0x5C, tags))
        out: list[tlv.Tlv] = []
        p2 = 0x02
        while True:
            data, sw = self.send(self.cmd(0xF2, p1, p2, crit))
            if sw == 0x6A88 and not out:
                return []
            assert sw in (0x9000, 0x6310), f"GET STATUS {sw:04X}"
            out += tlv.parse(data)
            if sw == 0x9000:
                return out
            p2 |= 0x01

    def install_for_load(self, elf: bytes, digest: bytes = b"", sd: bytes = b"") -> int:
        data = lv(elf) + lv(sd) + lv(digest) + lv(b"") + lv(b"")
        return self.send(self.cmd(0xE6, 0x02, 0x00, data))[1]

    def load(self, stream: bytes, block: int = 200) -> int:
        chunks = [stream[i : i + block] for i in range(0, len(stream), block)]
        sw = 0x9000
        for n, chunk in enumerate(chunks):
            p1 = 0x80 if n == len(chunks) - 1 else 0x00
            sw = self.send(self.cmd(0xE8, p1, n, chunk))[1]
            if sw != 0x9000:
                return sw
        return sw

    def install(
        self,
        elf: bytes,
        module: bytes,
        app: bytes,
        params: bytes = b"",
        privileges: bytes = b"\x00",
        p1: int = 0x0C,
    ) -> int:
        inst = tlv.build(0xC9, params)
        data = lv(elf) + lv(module) + lv(app) + lv(privileges) + lv(inst) + lv(b"")
        return self.send(self.cmd(0xE6, p1, 0x00, data))[1]

    def delete(self, aid: bytes, related: bool = False) -> int:
        return self.send(self.cmd(0xE4, 0x00, 0x80 if related else 0x00, tlv.build(0x4F, aid)))[1]

    def set_status(self, p1: int, p2: int, aid: bytes = b"") -> int:
        return self.send(self.cmd(0xF0, p1, p2, aid, None))[1]

    def select(self, aid: bytes) -> tuple[bytes, int]:
        """SELECT by AID; a successful SELECT ends the ISD session on this channel."""
        data, sw = self.raw(CommandApdu(self.channel, 0xA4, 0x04, 0x00, aid, 256).to_bytes())
        if sw in (0x9000, 0x6283):
            self.session = None
        return data, sw


# -- the published SCP03 sessions, card side ---------------------------------------------------


@dataclass(frozen=True)
class Trace:
    name: str
    level: int
    seq: int
    apdus: dict[str, str]


# pySim KEYSET_AES128 (key version 30) and the ISD-R AID the challenges were made for.
KEYS = Scp03Keys(
    h("000102030405060708090a0b0c0d0e0f"),
    h("101112131415161718191a1b1c1d1e1f"),
    h("202122232425262728292a2b2c2d2e2f"),
    0x30,
)
ISD_R_AID = h("A0000005591010FFFFFFFF8900000100")
# Wrapped APDUs and responses (without SW 9000) as the traces recorded them.
TRACES = [
    Trace(
        "SCP03_Test_AES128_11",
        0x11,
        0x000002,
        {
            "init_upd_cmd": "8050300008b13e5f938fc108c400",
            "init_upd_rsp": "000000000000000000003003703eb51047495b249f66c484c1d2ef1948000002",
            "ext_auth_cmd": "84821100107d5f5826a993ebc89eea24957fa0b3ce",
            "get_eid_cmd": "84e291000ebf3e035c015a558d036518a2829700",
            "get_eid_rsp": "bf3e125a1089882119900000000000000000000005971be68992dbbdfa",
            "case_1_apdu": "84f220020863a63f8959827fb2",
            "case_2_apdu": "84ca006608a0c6a4a74166f7ce00",
            "case_3_apdu": "84f22002124f0212345c054f9f70c52249b50272656536",
            "case_4_apdu": "84f280020a4f00e91443f6dce6b8ed00",
        },
    ),
    Trace(
        "SCP03_Test_AES128_03",
        0x03,
        0x000001,
        {
            "init_upd_cmd": "80503000088e1552d0513c60f300",
            "init_upd_rsp": "0000000000000000000030037030760cd2c47c1dd395065fe5ead8a9d7000001",
            "ext_auth_cmd": "8482030010fd4721a14d9b07003c451d2f8ae6bb21",
            "get_eid_cmd": "84e2910018ca9c00f6713d79bc8baa642bdff51c3f6a4082d3bd9ad26c00",
            "get_eid_rsp": "bf3e125a1089882119900000000000000000000005",
            "case_1_apdu": "84f2200208c9811b11f1264cf1",
            "case_2_apdu": "84ca006608e10ab60b3054798800",
            "case_3_apdu": "84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e",
            "case_4_apdu": "84f28002180dd10a6b6193e5340b9e77d32d5a179cd710ac2773aefb2800",
        },
    ),
    Trace(
        "SCP03_Test_AES128_33",
        0x33,
        0x000003,
        {
            "init_upd_cmd": "8050300008fdf38259a1e0de4400",
            "init_upd_rsp": "000000000000000000003003703b1aca81e821f219081cdc01c26b372d000003",
            "ext_auth_cmd": "84823300108c36f96bcc00724a4e13ad591d7da3f0",
            "get_eid_cmd": "84e2910018267a85dfe4a98fca6fb0527e0dfecce4914e40401433c87f00",
            "get_eid_rsp": "f3ba2b1013aa6224f5e1c138d71805c569e5439b47576260"
            "b75fc021b25097cb2e68f8a0144975b9",
            "case_1_apdu": "84f2200208ac6a59024bed84cc",
            "case_2_apdu": "84ca006608409912ad8fb7aed000",
            "case_3_apdu": "84f22002185f3dafc3ac14c381536a488bf44e06d056df9d74dbd21e5a",
            "case_4_apdu": "84f280021865165105be3373347d0424d4400af2ac393f569ec779389e00",
        },
    ),
]
EID_RESPONSE = h("BF3E125A1089882119900000000000000000000005")


class EidIsd(IssuerSecurityDomain):
    """An ISD that answers GET EID through STORE DATA, as the traces' ISD-R did."""

    def store_data_self(self, cmd: CommandApdu) -> bytes | None:
        if cmd.data == h("BF3E035C015A"):
            return EID_RESPONSE
        return super().store_data_self(cmd)


def trace_card(trace: Trace) -> CardRuntime:
    """A card whose keys, AID and sequence counter reproduce the trace's card side."""
    rt = CardRuntime(catalogue=Catalogue([EidIsd]), rng_seed=7)
    isd = rt.install(EidIsd, ISD_R_AID, default=True)
    isd.set_keysets([KEYS])
    # The counter moves before a challenge is made from it: one below the trace's value.
    isd.sequence_counter = trace.seq - 1
    rt.power_on()
    return rt


@pytest.mark.parametrize("trace", TRACES, ids=lambda t: t.name)
def test_card_reproduces_published_session(trace: Trace) -> None:
    rt = trace_card(trace)
    a = trace.apdus
    assert rt.process(h(a["init_upd_cmd"])).hex() == a["init_upd_rsp"] + "9000"
    assert rt.process(h(a["ext_auth_cmd"])).hex() == "9000"
    # GET EID, wrapped at the trace's level: the card's response byte for byte.
    assert rt.process(h(a["get_eid_cmd"])).hex() == a["get_eid_rsp"] + "9000"
    assert isd_of_trace(rt).sequence_counter == trace.seq
    assert rt.exceptions == 0


def isd_of_trace(rt: CardRuntime) -> EidIsd:
    isd = rt.applet(ISD_R_AID)
    assert isinstance(isd, EidIsd)
    return isd


@pytest.mark.parametrize("trace", TRACES, ids=lambda t: t.name)
def test_card_unwraps_published_commands_and_protects_its_answers(trace: Trace) -> None:
    """Cases 1-4 of the traces (counters 2-5): the card accepts every C-MAC and
    C-DECRYPTION, and a host-side session in step with the trace accepts every
    R-MAC and R-ENCRYPTION of the card's answers."""
    rt = trace_card(trace)
    a = trace.apdus
    rt.process(h(a["init_upd_cmd"]))
    iu = InitializeUpdateResponse.from_bytes(h(a["init_upd_rsp"]))
    host = Scp03Session.derive(KEYS, h(a["init_upd_cmd"])[5:13], iu.card_challenge)
    assert host.external_authenticate_command(trace.level).hex() == a["ext_auth_cmd"]
    assert rt.process(h(a["ext_auth_cmd"])) == b"\x90\x00"
    plain = {
        "get_eid_cmd": "80E2910006BF3E035C015A00",
        "case_1_apdu": "80F22002",
        "case_2_apdu": "80ca006600",
        "case_3_apdu": "80F220020a4f0212345c054f9f70c5",
        "case_4_apdu": "80f28002024f0000",
    }
    answers = {}
    for name, cmd in plain.items():
        assert host.wrap_command(h(cmd)).hex() == a[name]
        answers[name] = host.unwrap_response(rt.process(h(a[name])))
    assert answers["get_eid_cmd"] == EID_RESPONSE + b"\x90\x00"
    # No load file on this card: GET STATUS for load files finds nothing.
    assert answers["case_1_apdu"] == h("6A88")
    assert answers["case_2_apdu"][:-2] == isd_of_trace(rt).data_object(0x66)
    assert answers["case_2_apdu"][-2:] == b"\x90\x00"
    # The trace's tag list says 5C 05 but carries 4 bytes: malformed, so 6A80.
    assert answers["case_3_apdu"] == h("6A80")
    entry = tlv.Tlv.from_bytes(answers["case_4_apdu"][:-2])
    assert entry.tag == 0xE3
    assert entry.find(0x4F).value == ISD_R_AID
    assert entry.find(0x9F70).value == b"\x01"  # OP_READY
    assert entry.find(0xC5).value == h("9EFE80")
    assert answers["case_4_apdu"][-2:] == b"\x90\x00"
    assert rt.exceptions == 0


def test_host_challenge_vector_with_kvn_zero_picks_the_first_key_set() -> None:
    trace = TRACES[0]
    rt = trace_card(trace)
    cmd = bytearray(h(trace.apdus["init_upd_cmd"]))
    cmd[2] = 0x00  # key version 00: any
    assert rt.process(bytes(cmd)).hex() == trace.apdus["init_upd_rsp"] + "9000"


# -- SELECT and GET DATA ---------------------------------------------------------------------------


def test_select_empty_aid_returns_the_isd_fci() -> None:
    rt = gp_card()
    resp = rt.process(h("00A4040000"))
    assert resp[-2:] == b"\x90\x00"
    fci = tlv.Tlv.from_bytes(resp[:-2])
    assert fci.tag == 0x6F
    assert fci.find(0x84).value == ISD_AID
    a5 = fci.find(0xA5)
    assert a5 is not None
    crd = a5.find(0x73)
    assert crd is not None
    # GP OID, GP 2.3.1, SCP03 with i = 70 (Annex H.2)
    assert crd.find(0x06).value == h("2A864886FC6B01")
    assert crd.find(0x60).find(0x06).value == h("2A864886FC6B02020301")
    assert crd.find(0x64).find(0x06).value == h("2A864886FC6B040370")
    assert a5.find(0x9F65).value == b"\xff"
    assert len(a5.find(0x9F6E).value) == 6
    assert rt.selected_aid(0) == ISD_AID


def test_select_p2_0c_returns_no_data() -> None:
    rt = gp_card()
    assert rt.process(h("00A4040C08") + ISD_AID) == b"\x90\x00"


@pytest.mark.parametrize("cla", [0x00, 0x80])
def test_get_data_objects(cla: int) -> None:
    rt = gp_card()
    host = GpHost(rt)

    def get(tag: int) -> tuple[bytes, int]:
        # in clear outside a session, wrapped inside one
        return host.send(CommandApdu(cla, 0xCA, tag >> 8, tag & 0xFF, b"", 256).to_bytes())

    cplc, sw = get(0x9F7F)
    assert sw == 0x9000 and cplc[:3] == h("9F7F2A") and len(cplc) == 45
    kdd, sw = get(0xCF)
    assert (kdd, sw) == (h("CF0A") + bytes(10), 0x9000)
    card_data, _ = get(0x66)
    assert tlv.find(card_data, 0x64, recursive=True).value == h("06092A864886FC6B040370")
    caps, _ = get(0x67)
    scp = tlv.Tlv.from_bytes(caps).find(0xA0)
    assert (scp.find(0x80).value, scp.find(0x81).value, scp.find(0x82).value) == (
        b"\x03",
        b"\x70",
        b"\x07",
    )
    keyinfo, _ = get(0xE0)
    # three AES-128 keys under key version 30 (GPC v2.3.1 §11.3.3.1, basic format)
    assert keyinfo == h("E012" + "C00401308810" + "C00402308810" + "C00403308810")
    seq, _ = get(0xC1)
    assert seq == h("C103000000")
    host.open()
    seq, _ = get(0xC1)
    assert seq == h("C103000001")
    # IIN and CIN are absent until personalised; unknown tags likewise
    assert get(0x42) == (b"", 0x6A88)
    assert get(0x45) == (b"", 0x6A88)
    assert get(0x9F99) == (b"", 0x6A88)


def test_store_data_personalises_iin_cin_and_kdd_in_a_session() -> None:
    rt = gp_card()
    host = GpHost(rt)
    perso = tlv.build(0x42, h("123456")) + tlv.build(0x45, h("0102030405060708090A"))
    perso += tlv.build(0xCF, h("00112233445566778899"))
    # Outside a session: refused, nothing stored
    assert host.send(host.cmd(0xE2, 0x90, 0x00, perso, None))[1] == 0x6982
    host.open(0x03)
    assert host.send(host.cmd(0xE2, 0x90, 0x00, perso, None)) == (b"", 0x9000)
    assert host.send("80CA004200") == (h("4203123456"), 0x9000)
    assert host.send("80CA004500")[0] == h("450A0102030405060708090A")
    # The key diversification data now leads the INITIALIZE UPDATE response.
    host.session = None
    data, _ = host.raw(initialize_update_command(bytes(8)))
    assert data[:10] == h("00112233445566778899")


def test_get_data_in_a_session_is_protected_and_counts() -> None:
    rt = gp_card()
    host = GpHost(rt)
    host.open(0x33)
    data, sw = host.send("80CA00D300")  # current security level
    assert (data, sw) == (h("D30133"), 0x9000)
    data, sw = host.send("80CAFF2100")
    res = tlv.Tlv.from_bytes(data)
    assert res.find(0x81).value == b"\x04"  # four sample applets besides the ISD


# -- session rules ---------------------------------------------------------------------------------


def test_wrong_host_cryptogram_is_6982_and_closes_the_session() -> None:
    rt = gp_card()
    host = GpHost(rt, keys=Scp03Keys(bytes(16), bytes(16), bytes(16), 0x30))
    data, sw = host.raw(initialize_update_command(b"\x22" * 8))
    assert sw == 0x9000
    iu = InitializeUpdateResponse.from_bytes(data)
    wrong = Scp03Session.derive(host.keys, b"\x22" * 8, iu.card_challenge)
    assert wrong.card_cryptogram != iu.card_cryptogram  # the card holds other keys
    assert host.raw(wrong.external_authenticate_command(0x01)) == (b"", 0x6982)
    # Nothing opened: a second EXTERNAL AUTHENTICATE has no INITIALIZE UPDATE to follow.
    right = GpHost(rt)
    data, sw = right.raw(initialize_update_command(b"\x33" * 8))
    good = Scp03Session.derive(
        right.keys, b"\x33" * 8, InitializeUpdateResponse.from_bytes(data).card_challenge
    )
    ext = good.external_authenticate_command(0x01)
    assert right.raw(h("80F28002024F0000"))[1] == 0x6982  # breaks the INITIALIZE UPDATE
    assert right.raw(ext) == (b"", 0x6985)


def test_wrong_c_mac_is_6982_closes_the_session_and_executes_nothing() -> None:
    rt = gp_card()
    host = GpHost(rt)
    host.open(0x01)
    before = registry_state(rt)
    assert host.session is not None
    wrapped = bytearray(host.session.wrap_command(h("80F0408009F043415244454D5501")))
    wrapped[-1] ^= 0x01  # last MAC byte (no Le: case 3)
    assert rt.process(bytes(wrapped)) == h("6982")
    assert registry_state(rt) == before
    # The session is gone: even a correctly MACed command is refused now.
    good = host.session.wrap_command(h("80F28002024F0000"))
    assert rt.process(good) == h("6982")
    # The same command, correctly MACed in a new session, does lock the purse.
    host.open(0x01)
    assert host.send("80F0408009F043415244454D5501") == (b"", 0x9000)
    assert registry_state(rt) != before


def test_plain_proprietary_command_in_a_mac_session_is_refused() -> None:
    rt = gp_card()
    host = GpHost(rt)
    host.open(0x01)
    assert host.raw(h("80F28002024F0000"))[1] == 0x6982
    # ... and closes the session
    assert host.send("80F28002024F0000")[1] == 0x6982


def test_interindustry_get_data_in_clear_leaves_the_session_open() -> None:
    rt = gp_card()
    host = GpHost(rt)
    host.open(0x33)
    assert host.raw(h("00CA00CF00"))[1] == 0x9000
    entries = host.get_status(0x80)
    assert [e.find(0x4F).value for e in entries] == [ISD_AID]


def test_reselecting_the_isd_ends_the_session() -> None:
    rt = gp_card()
    host = GpHost(rt)
    host.open(0x01)
    old = host.session
    assert old is not None
    assert host.send("80F28002024F0000")[1] == 0x9000
    assert host.select(ISD_AID)[1] == 0x9000
    # The card forgot the session: a command MACed in it is refused.
    assert host.raw(old.wrap_command(h("80F28002024F0000")))[1] == 0x6982


@pytest.mark.parametrize("level", [0x00, 0x01, 0x03, 0x11, 0x13, 0x31, 0x33])
def test_security_levels(level: int) -> None:
    rt = gp_card()
    host = GpHost(rt)
    if level == 0x31:  # R-ENCRYPTION without C-DECRYPTION does not exist
        data, sw = host.raw(initialize_update_command(b"\x44" * 8))
        s = Scp03Session.derive(
            host.keys, b"\x44" * 8, InitializeUpdateResponse.from_bytes(data).card_challenge
        )
        s.level = None
        ext = bytearray(s.external_authenticate_command(0x33))
        ext[2] = 0x31
        assert host.raw(bytes(ext))[1] == 0x6A86
        return
    host.open(level)
    status = host.send(host.cmd(0xF2, 0x80, 0x02, h("4F00")))
    if level & 0x01:
        assert status[1] == 0x9000 and status[0][:1] == b"\xe3"
    else:  # authenticated but unprotected: no content management
        assert status[1] == 0x6982


def test_sessions_are_per_logical_channel() -> None:
    rt = gp_card()
    assert rt.process(h("0070000001")) == h("019000")
    assert rt.process(h("01A4040008") + ISD_AID + b"\x00")[-2:] == b"\x90\x00"
    ch0, ch1 = GpHost(rt, channel=0), GpHost(rt, channel=1)
    ch1.open(0x33, challenge=b"\x01" * 8)
    ch0.open(0x13, challenge=b"\x02" * 8)
    assert [e.find(0x4F).value for e in ch1.get_status(0x80)] == [ISD_AID]
    assert [e.find(0x4F).value for e in ch0.get_status(0x80)] == [ISD_AID]
    assert rt.process(h("0070800100")) == h("9000")
    assert [e.find(0x4F).value for e in ch0.get_status(0x80)] == [ISD_AID]


def test_card_image_keeps_gp_state(tmp_path: Path) -> None:
    image = str(tmp_path / "gp.card")
    rt = gp_card(image=image)
    host = GpHost(rt)
    host.open(0x01)
    rt.close()
    rt2 = CardRuntime(image)
    rt2.power_on()
    isd = isd_of(rt2)
    assert isd.sequence_counter == 1
    assert [f.package for f in isd.load_files] == ["applets.sample"]
    assert GpHost(rt2).open(0x01) == 2
    rt2.close()
