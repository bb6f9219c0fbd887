"""Remote management of a SIM end to end: ENVELOPE (SMS-PP) -> ISD -> PoR, on the usim-ota preset.

Every refusal TS 102 225 names is answered with its Response Status Code and
leaves the card as it was (and its counter where it was).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from applets.notes import NOTES_AID
from card.apdu import CommandApdu
from card.framework import APDU, Applet
from card.gp.isd import UICC_ISD_AID, IssuerSecurityDomain
from card.gp.loadfile import describe_load_file, lfdb_hash, load_file_stream
from card.ota import cat, sms
from card.ota.remote import TAR_ISD
from card.ota.scp80 import (
    COUNTER_MAX,
    Checksum,
    CounterMode,
    OtaKeyset,
    PorMode,
    ResponseStatus,
    Spi,
)
from card.runtime import CardRuntime
from host.ota import OtaSender, RamScript, RfmScript, ToolkitTerminal
from host.presets import new_card, ota_test_keysets
from host.readers.inprocess import InProcessReader

NOTES = describe_load_file("notes")
LFDB = NOTES.to_bytes()
STREAM = load_file_stream(LFDB)
KS_AES, KS_DES = ota_test_keysets()
TAR_USIM_RFM = bytes.fromhex("b00010")


def install_notes_script() -> RamScript:
    return (
        RamScript()
        .install_for_load(NOTES.aid, lfdb_hash=lfdb_hash(LFDB))
        .load(STREAM)
        .install_for_install(NOTES.aid, NOTES.module_for("notes").aid, NOTES_AID, params=b"hi")
    )


class Sim:
    """A usim-ota card behind a toolkit terminal."""

    def __init__(self) -> None:
        self.rt: CardRuntime = new_card("usim-ota", rng_seed=1)
        self.reader = InProcessReader(self.rt)
        self.reader.connect()
        self.terminal = ToolkitTerminal(self.reader)
        self.terminal.start()

    @property
    def isd(self) -> IssuerSecurityDomain:
        isd = self.rt.applet(UICC_ISD_AID)
        assert isinstance(isd, IssuerSecurityDomain)
        return isd

    def deliver(self, tpdus: tuple[bytes, ...]) -> bytes:
        """Every segment; the response data of the last (the PoR's TP-UD, if any)."""
        out = b""
        for t in tpdus:
            res = self.terminal.deliver_sms(t)
            assert res.sw == 0x9000, hex(res.sw)
            out = res.user_data
        return out

    def has(self, aid: bytes) -> bool:
        return any(bytes(a) == aid for a, *_ in self.rt.applets())

    def select(self, aid: bytes) -> int:
        return self.terminal.transmit(bytes((0x00, 0xA4, 0x04, 0x00, len(aid))) + aid)[1]


@pytest.fixture
def sim() -> Sim:
    return Sim()


def test_remote_install_over_concatenated_sms(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    msg = sender.secure(install_notes_script().expanded())
    assert len(msg.tpdus) > 1  # the load file takes several short messages
    por = sender.open_por(sim.deliver(msg.tpdus))
    assert por.status == ResponseStatus.POR_OK and por.ok
    assert por.commands_executed == len(install_notes_script().commands)
    assert sim.has(NOTES_AID)
    assert sim.select(NOTES_AID) == 0x9000
    resp = sim.reader.transmit(bytes.fromhex("80CA000000"))
    assert resp == b"hi\x90\x00"
    assert sim.isd.ota_counter(1) == 1


def test_install_applet_is_the_same_script() -> None:
    assert RamScript().install_applet("notes", NOTES_AID, params=b"hi") == install_notes_script()


def test_remote_install_in_the_compact_format(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    script = install_notes_script()
    por = sender.open_por(sim.deliver(sender.secure(script.compact()).tpdus))
    assert por.commands_executed == len(script.commands) and por.responses == ((b"", 0x9000),)
    assert sim.select(NOTES_AID) == 0x9000


def test_indefinite_length_script_gets_an_indefinite_response(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    msg = sender.secure(install_notes_script().expanded(indefinite=True))
    assert msg.packet  # AE 80 .. 00 00 inside
    ud = sim.deliver(msg.tpdus)
    por = sender.open_por(ud)
    assert por.ok and por.commands_executed == len(install_notes_script().commands)
    assert por.packet.data[:2] == b"\xaf\x80" and por.packet.data[-2:] == b"\x00\x00"


def test_compact_script_with_get_response(sim: Sim) -> None:
    sender = OtaSender(KS_DES)  # the 3DES key set
    script = RamScript().get_status(0x80).compact() + bytes.fromhex("00C0000000")
    por = sender.open_por(sim.deliver(sender.secure(script).tpdus))
    assert por.commands_executed == 2
    data, sw = por.responses[0]
    assert sw == 0x9000 and data.startswith(b"\xe3")  # the ISD's GET STATUS entry


def test_script_stops_at_first_error(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    script = RamScript().delete(b"\xa0\x00\x00\x00\x99\x99").get_status(0x80)
    por = sender.open_por(sim.deliver(sender.secure(script.expanded()).tpdus))
    assert por.packet.ok and not por.ok
    assert por.commands_executed == 1 and por.last_sw == 0x6A88


def test_remote_delete(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    sim.deliver(sender.secure(install_notes_script().expanded()).tpdus)
    por = sender.open_por(
        sim.deliver(sender.secure(RamScript().delete(NOTES.aid, related=True).expanded()).tpdus)
    )
    assert por.ok
    assert not sim.has(NOTES_AID)


def test_put_key_adds_a_key_set_that_then_works(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    new = OtaKeyset(5, bytes(range(0x70, 0x80)), bytes(range(0x80, 0x90)), bytes(16), aes=True)
    por = sender.open_por(
        sim.deliver(sender.secure(RamScript().put_key(new, KS_AES).expanded()).tpdus)
    )
    assert por.ok, por
    assert any(k.kvn == 5 and k.kic == new.kic for k in sim.isd.ota_keysets)
    por = OtaSender(new).open_por(
        sim.deliver(OtaSender(new).secure(RamScript().get_status(0x80).expanded()).tpdus)
    )
    assert por.ok


def test_put_key_of_a_3des_set_under_the_3des_dek(sim: Sim) -> None:
    sender = OtaSender(KS_DES)
    new = OtaKeyset(
        2, bytes(range(0xA0, 0xB0)), bytes(range(0xB0, 0xC0)), bytes(range(16)), aes=False
    )
    script = RamScript().put_key(new, KS_DES, replace=True)
    por = sender.open_por(sim.deliver(sender.secure(script.expanded()).tpdus))
    assert por.ok
    # The old keys no longer open anything: the card answers unsecured 06/01.
    por = sender.open_por(sim.deliver(sender.secure(RamScript().get_status(0x80).expanded()).tpdus))
    assert por.status == ResponseStatus.RC_CC_DS_FAILED
    fresh = OtaSender(new)
    assert fresh.open_por(
        sim.deliver(fresh.secure(RamScript().get_status(0x80).expanded()).tpdus)
    ).ok


def test_rfm_reads_and_writes_a_usim_file(sim: Sim) -> None:
    sender = OtaSender(KS_AES, tar=TAR_USIM_RFM)
    por = sender.open_por(
        sim.deliver(sender.secure(RfmScript().select(0x6F07).read_binary(9).expanded()).tpdus)
    )
    assert por.ok
    imsi = por.responses[-1][0]
    assert len(imsi) == 9 and imsi[0] == 8
    # UPDATE BINARY on EF.SPN needs ADM on the card; RFM's access domain is full access.
    script = RfmScript().select(0x6F46).update_binary(b"\x01OTA").select(0x6F46).read_binary(4)
    por = sender.open_por(sim.deliver(sender.secure(script.expanded()).tpdus))
    assert por.ok, por
    assert por.responses[-1] == (b"\x01OTA", 0x9000)


# -- refusals: each with its RSC, none changes the card ------------------------------------------


def _refused(sim: Sim, sender: OtaSender, tpdus: tuple[bytes, ...]) -> ResponseStatus | int:
    before = (sim.isd.ota_counters_value, [a for a, *_ in sim.rt.applets()])
    por = sender.open_por(sim.deliver(tpdus))
    after = (sim.isd.ota_counters_value, [a for a, *_ in sim.rt.applets()])
    assert before == after
    assert not sim.has(NOTES_AID)
    return por.status


def test_bad_checksum_is_rsc_01(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    pkt = bytearray(sender.secure(install_notes_script().expanded()).packet)
    pkt[-1] ^= 0x01
    uds = sms.segment_command_packet(bytes(pkt), 7)
    tpdus = tuple(sms.SmsDeliver(sender.originator, ud).to_bytes() for ud in uds)
    assert _refused(sim, sender, tpdus) == ResponseStatus.RC_CC_DS_FAILED


def test_replayed_counter_is_rsc_02(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    msg = sender.secure(install_notes_script().expanded())
    assert sender.open_por(sim.deliver(msg.tpdus)).ok
    sender.open_por(
        sim.deliver(sender.secure(RamScript().delete(NOTES.aid, related=True).expanded()).tpdus)
    )
    assert _refused(sim, sender, msg.tpdus) == ResponseStatus.CNTR_LOW


def test_counter_more_than_one_higher_is_rsc_03(sim: Sim) -> None:
    sender = OtaSender(KS_AES, spi=Spi(counter=CounterMode.ONE_HIGHER))
    msg = sender.secure(install_notes_script().expanded(), counter=2)
    assert _refused(sim, sender, msg.tpdus) == ResponseStatus.CNTR_HIGH
    assert sender.open_por(sim.deliver(sender.secure(b"", counter=1).tpdus)).ok


def test_blocked_counter_is_rsc_04(sim: Sim) -> None:
    sim.isd.ota_counters_value = ((1, COUNTER_MAX),)
    sender = OtaSender(KS_AES)
    msg = sender.secure(install_notes_script().expanded(), counter=COUNTER_MAX)
    assert _refused(sim, sender, msg.tpdus) == ResponseStatus.CNTR_BLOCKED


def test_unknown_tar_is_rsc_09(sim: Sim) -> None:
    sender = OtaSender(KS_AES, tar=b"\x12\x34\x56")
    por = sender.open_por(sim.deliver(sender.secure(b"").tpdus))
    assert (por.status, por.packet.secured) == (ResponseStatus.TAR_UNKNOWN, False)
    assert sim.isd.ota_counter(1) == 0


def test_insufficient_security_level_is_rsc_0a(sim: Sim) -> None:
    # The ISD's RAM asks for ciphering (MSL 16): a packet with a CC alone is refused.
    sender = OtaSender(KS_AES, spi=Spi(ciphered=False))
    tpdus = sender.secure(install_notes_script().expanded()).tpdus
    assert _refused(sim, sender, tpdus) == ResponseStatus.INSUFFICIENT_SECURITY_LEVEL
    no_counter = OtaSender(KS_AES, spi=Spi(counter=CounterMode.NO_CHECK))
    tpdus = no_counter.secure(install_notes_script().expanded()).tpdus
    assert _refused(sim, no_counter, tpdus) == ResponseStatus.INSUFFICIENT_SECURITY_LEVEL


def test_unknown_key_set_is_rsc_06(sim: Sim) -> None:
    stranger = OtaKeyset(9, bytes(16), bytes(16), bytes(16))
    sender = OtaSender(stranger)
    tpdus = sender.secure(install_notes_script().expanded()).tpdus
    assert _refused(sim, sender, tpdus) == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR


def test_wrong_keys_of_a_known_version_are_rsc_01(sim: Sim) -> None:
    sender = OtaSender(replace(KS_AES, kid=bytes(16)))
    tpdus = sender.secure(install_notes_script().expanded()).tpdus
    assert _refused(sim, sender, tpdus) == ResponseStatus.RC_CC_DS_FAILED


def test_a_refused_packet_does_not_move_the_counter(sim: Sim) -> None:
    bad = OtaSender(replace(KS_AES, kid=bytes(16)), counter=41)
    sim.deliver(bad.secure(b"").tpdus)
    good = OtaSender(KS_AES, counter=0)
    assert good.open_por(sim.deliver(good.secure(RamScript().get_status(0x80).expanded()).tpdus)).ok
    assert sim.isd.ota_counter(1) == 1


def test_por_on_error_only_and_no_por(sim: Sim) -> None:
    quiet = OtaSender(KS_AES, spi=Spi(por=PorMode.ON_ERROR))
    assert sim.deliver(quiet.secure(RamScript().get_status(0x80).expanded()).tpdus) == b""
    replay = quiet.secure(b"", counter=1)
    assert quiet.open_por(sim.deliver(replay.tpdus)).status == ResponseStatus.CNTR_LOW
    silent = OtaSender(KS_AES, spi=Spi(por=PorMode.NONE), counter=5)
    assert sim.deliver(silent.secure(b"").tpdus) == b""


def test_rc_instead_of_cc_is_below_the_rfm_msl(sim: Sim) -> None:
    sender = OtaSender(
        None,
        tar=TAR_USIM_RFM,
        spi=Spi(checksum=Checksum.RC, ciphered=False, por_checksum=Checksum.RC, por_ciphered=False),
    )
    por = sender.open_por(sim.deliver(sender.secure(RfmScript().select(0x6F07).expanded()).tpdus))
    assert por.status == ResponseStatus.INSUFFICIENT_SECURITY_LEVEL


def test_malformed_sms_is_refused_by_the_envelope(sim: Sim) -> None:
    sender = OtaSender(KS_AES)
    ud = sms.UserData(((0x05, b"\x00\x00"),), b"x").to_bytes()  # no IEI 70
    res = sim.terminal.deliver_sms(sms.SmsDeliver(sender.originator, ud).to_bytes())
    assert res.sw == 0x6A80


# -- the PoR by SMS-SUBMIT: a proactive SEND SHORT MESSAGE ------------------------------------


def test_por_by_sms_submit(sim: Sim) -> None:
    sender = OtaSender(KS_AES, spi=Spi(por_by_submit=True))
    assert sim.deliver(sender.secure(RamScript().get_status(0x80).expanded()).tpdus) == b""
    assert len(sim.terminal.outbox) == 1
    submit = sms.SmsSubmit.from_bytes(sim.terminal.outbox[0])
    assert submit.destination == sender.originator and submit.pid == sms.PID_DATA_DOWNLOAD
    por = sender.open_por_tpdu(sim.terminal.outbox[0])
    assert por.ok
    command, result = sim.terminal.performed[0]
    assert (command.type, result) == (cat.CommandType.SEND_SHORT_MESSAGE, cat.GeneralResult.OK)


def test_long_por_by_sms_submit_is_concatenated(sim: Sim) -> None:
    sender = OtaSender(KS_AES, spi=Spi(por_by_submit=True))
    script = RamScript().get_status(0x80).get_status(0x40).get_status(0x10).get_status(0x20)
    assert sim.deliver(sender.secure(script.expanded()).tpdus) == b""
    parts = [sms.SmsSubmit.from_bytes(t).user_data for t in sim.terminal.outbox]
    assert len(parts) > 1 and all(len(p) <= sms.MAX_UD for p in parts)
    por = sender.open_por_parts(parts[::-1])
    assert por.ok and por.commands_executed == 4
    assert sim.rt.exceptions == 0


# -- an applet's own proactive command ---------------------------------------------------------


class Pinger(Applet):
    """Sends one short message when asked (80 01), remembers the terminal's result."""

    def process(self, apdu: APDU) -> bytes | None:
        submit = sms.SmsSubmit(sms.Address("4915112345"), b"ping", udhi=False, dcs=0x04, pid=0)
        self.system.send_proactive(cat.send_short_message(submit.to_bytes()))
        return None

    def on_terminal_response(self, command: bytes, response: bytes) -> None:
        self.system.store.set("result", cat.TerminalResponse.from_bytes(response).result)


def test_applet_sends_a_short_message_through_the_terminal(sim: Sim) -> None:
    aid = bytes.fromhex("F0434152444541505049")
    sim.rt.install(Pinger, aid)
    assert sim.select(aid) == 0x9000
    resp = sim.reader.transmit(bytes.fromhex("8001000000"))
    assert resp[0] == 0x91  # a proactive command waits
    fetched = sim.reader.transmit(bytes((0x80, 0x12, 0, 0, resp[1])))
    assert fetched[-2:] == b"\x90\x00"
    command = cat.ProactiveCommand.from_bytes(fetched[:-2])
    assert command.type == cat.CommandType.SEND_SHORT_MESSAGE
    assert sms.SmsSubmit.from_bytes(command.item(cat.TAG_SMS_TPDU) or b"").user_data == b"ping"
    tr = cat.TerminalResponse(command.details, cat.GeneralResult.OK).to_bytes()
    assert sim.reader.transmit(bytes((0x80, 0x14, 0, 0, len(tr))) + tr) == b"\x90\x00"
    assert sim.rt.applet(aid).system.store.get("result") == 0
    # through the terminal: the whole exchange and the SMS in its outbox
    sim.terminal.send(0x80, 0x01, 0x00, 0x00)
    assert sms.SmsSubmit.from_bytes(sim.terminal.outbox[-1]).user_data == b"ping"
    # and through a plain Reader over the terminal: 9000, the SMS sent
    assert sim.terminal.as_reader().transmit(bytes.fromhex("8001000000")) == b"\x90\x00"
    assert len(sim.terminal.outbox) == 2


def test_envelope_while_a_proactive_command_runs_is_toolkit_busy(sim: Sim) -> None:
    aid = bytes.fromhex("F0434152444541505049")
    sim.rt.install(Pinger, aid)
    sim.select(aid)
    resp = sim.reader.transmit(bytes.fromhex("8001000000"))
    sim.reader.transmit(bytes((0x80, 0x12, 0, 0, resp[1])))  # fetched, not answered yet
    sender = OtaSender(KS_AES)
    (envelope,) = sender.secure(RamScript().get_status(0x80).expanded()).envelopes
    assert sim.reader.transmit(envelope) == b"\x93\x00"
    assert sim.isd.ota_counter(1) == 0  # nothing ran: the network sends it again later


def test_fetch_with_nothing_waiting_and_stray_terminal_response(sim: Sim) -> None:
    assert sim.reader.transmit(bytes.fromhex("8012000010"))[-2:] == b"\x6f\x00"
    tr = cat.TerminalResponse(b"\x01\x13\x00", 0).to_bytes()
    assert sim.reader.transmit(bytes((0x80, 0x14, 0, 0, len(tr))) + tr) == b"\x6f\x00"


def test_reset_drops_the_proactive_session(sim: Sim) -> None:
    aid = bytes.fromhex("F0434152444541505049")
    sim.rt.install(Pinger, aid)
    sim.select(aid)
    assert sim.reader.transmit(bytes.fromhex("8001000000"))[0] == 0x91
    sim.reader.reset()
    assert sim.reader.transmit(bytes.fromhex("80F2000000"))[-2:] != b"\x91"


def test_isd_grants_remote_management_to_the_uicc_only(sim: Sim) -> None:
    assert sim.isd.get_shareable_interface_object(NOTES_AID, 0x80) is None  # type: ignore[arg-type]
    _ = CommandApdu, TAR_ISD  # (imported for readers of this file)


def test_scp80_key_sets_are_managed_like_the_isds_keys() -> None:
    """PUT KEY over SCP03 adds an SCP80 key set (under the static DEK); GET DATA E0 lists it."""
    from card import tlv
    from card.gp.scp03 import Scp03Keys
    from card.ota.keys import put_key_data
    from tests.unit.test_gp_card import GpHost, gp_card, isd_of

    rt = gp_card(seed=9)
    host = GpHost(rt)
    host.open(0x33)
    new = OtaKeyset(3, bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48)))
    dek = Scp03Keys.test_keys(0x30).dek
    data, sw = host.send(host.cmd(0xD8, 0x00, 0x81, put_key_data(new, dek, True)))
    assert sw == 0x9000 and data[0] == 3 and len(data) == 1 + 3 * 3
    assert isd_of(rt).ota_keysets == (new,)
    info, sw = host.send(host.cmd(0xCA, 0x00, 0xE0, b""))
    assert sw == 0x9000
    entries = {e.value for e in tlv.parse(info)[0].children}
    assert bytes((1, 3, 0x88, 16)) in entries and bytes((3, 3, 0x88, 16)) in entries
    # a wrong key check value is refused, and nothing changes
    bad = bytearray(put_key_data(OtaKeyset(4, bytes(16), bytes(16), bytes(16)), dek, True))
    bad[-1] ^= 1
    assert host.send(host.cmd(0xD8, 0x00, 0x81, bytes(bad)))[1] == 0x9485
    assert isd_of(rt).ota_keysets == (new,)


def test_gsm_class_envelope_answers_9fxx_and_get_response(sim: Sim) -> None:
    """A SIM terminal (CLA A0): the PoR waits behind 9Fxx for GET RESPONSE (TS 51.011 §9.4.1)."""
    sender = OtaSender(KS_AES)
    (apdu,) = sender.secure(RamScript().get_status(0x80).expanded()).envelopes
    gsm = bytes((0xA0,)) + apdu[1:-1]  # class A0, no Le (T=0 case 3)
    resp = sim.reader.transmit(gsm)
    assert resp[0] == 0x9F
    data = sim.reader.transmit(bytes((0xA0, 0xC0, 0, 0, resp[1])))
    assert data[-2:] == b"\x90\x00"
    assert sender.open_por(data[:-2]).ok


class Mailbox(Applet):
    """Takes secured packets for its TAR (AID bytes 13-15 = 4D4258) and echoes them reversed."""

    ota_msl = 0x12

    def on_secured_data(self, data: bytes) -> bytes:
        self.system.store.set("last", data)
        return data[::-1]


MAILBOX_AID = bytes.fromhex("F043415244450000000000004D425801")


def test_secured_data_for_an_applets_own_tar(sim: Sim) -> None:
    sim.rt.install(Mailbox, MAILBOX_AID)
    sender = OtaSender(KS_AES, tar=MAILBOX_AID[12:15])
    por = sender.open_por(sim.deliver(sender.secure(b"open sesame").tpdus))
    assert por.packet.ok and por.packet.data == b"emases nepo"
    assert sim.rt.applet(MAILBOX_AID).system.store.get("last") == b"open sesame"
    # below its MSL (no counter): refused, nothing delivered
    weak = OtaSender(KS_AES, tar=MAILBOX_AID[12:15], spi=Spi(counter=CounterMode.NONE))
    por = weak.open_por(sim.deliver(weak.secure(b"x").tpdus))
    assert por.status == ResponseStatus.INSUFFICIENT_SECURITY_LEVEL
    assert sim.rt.applet(MAILBOX_AID).system.store.get("last") == b"open sesame"


# -- BIP: an applet talks TCP through its terminal ----------------------------------------------


class BipClient(Applet):
    """80 01 <port>: open a channel to 127.0.0.1:port, send "ping", receive 4 bytes, close."""

    def process(self, apdu: APDU) -> bytes | None:
        port = int.from_bytes(apdu.data, "big")
        self.system.send_proactive(cat.open_channel_tcp(b"\x7f\x00\x00\x01", port))
        return None

    def on_terminal_response(self, command: bytes, response: bytes) -> None:
        cmd = cat.ProactiveCommand.from_bytes(command)
        tr = cat.TerminalResponse.from_bytes(response)
        store = self.system.store
        store.set("results", (store.get("results") or ()) + (tr.result,))
        if not tr.ok:
            return
        if cmd.type == cat.CommandType.OPEN_CHANNEL:
            status = tr.item(cat.TAG_CHANNEL_STATUS) or b"\x00"
            store.set("channel", status[0] & 0x07)
            self.system.send_proactive(cat.send_data(status[0] & 0x07, b"ping"))
        elif cmd.type == cat.CommandType.SEND_DATA:
            self.system.send_proactive(cat.receive_data(store.get("channel"), 4))
        elif cmd.type == cat.CommandType.RECEIVE_DATA:
            store.set("received", tr.item(cat.TAG_CHANNEL_DATA))
            self.system.send_proactive(cat.close_channel(store.get("channel")))


def test_bip_round_trip_through_the_terminal(sim: Sim) -> None:
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo_upper() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(16).upper())

    thread = threading.Thread(target=echo_upper, daemon=True)
    thread.start()
    aid = bytes.fromhex("F043415244454249500001")
    sim.rt.install(BipClient, aid)
    assert sim.select(aid) == 0x9000
    try:
        sim.terminal.send(0x80, 0x01, 0x00, 0x00, port.to_bytes(2, "big"))
    finally:
        server.close()
        sim.terminal.close()
    thread.join(5)
    store = sim.rt.applet(aid).system.store
    assert store.get("received") == b"PING"
    assert store.get("results") == (0, 0, 0, 0)  # open, send, receive, close
    types = [c.type for c, _ in sim.terminal.performed]
    assert types == [0x40, 0x43, 0x42, 0x41]


def test_bip_refuses_anything_but_loopback(sim: Sim) -> None:
    aid = bytes.fromhex("F043415244454249500002")

    class Outside(BipClient):
        def process(self, apdu: APDU) -> bytes | None:
            self.system.send_proactive(cat.open_channel_tcp(b"\x08\x08\x08\x08", 443))
            return None

    sim.rt.install(Outside, aid)
    sim.select(aid)
    sim.terminal.send(0x80, 0x01, 0x00, 0x00)
    assert sim.rt.applet(aid).system.store.get("results") == (cat.GeneralResult.BEYOND_TERMINAL,)


def test_a_ts48_profile_installs_beside_the_isd_and_ram_still_reaches_the_isd(sim: Sim) -> None:
    """The ISD at A000000003000000 leaves A000000151000000 to a profile's MNO-SD (GSMA TS.48).

    Regression: with the ISD at A000000151000000 the TS.48 package was refused (AID clash).
    """
    from pathlib import Path

    from applets.usim import UICC_AID, UiccApplet
    from applets.usim.sd import ProfileSecurityDomain
    from card.gp.isd import ISD_AID

    package = Path(__file__).parent / "data" / "sgp22" / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der"
    store = sim.rt.applet(UICC_AID)
    assert isinstance(store, UiccApplet)
    iccid = store.install_profile_package(package.read_bytes())
    assert isinstance(sim.rt.applet(ISD_AID), ProfileSecurityDomain)  # the MNO-SD
    assert isinstance(sim.isd, IssuerSecurityDomain) and UICC_ISD_AID != ISD_AID
    store.enable_profile(iccid)
    assert sim.select(ISD_AID) == 0x9000  # the enabled profile's MNO-SD answers there
    sim.reader.transmit(bytes.fromhex("00A40000023F00"))  # the basic channel back to the MF
    # TAR 000000 still reaches the card's ISD (its SCP80 key sets, its counter), not the MNO-SD.
    sender = OtaSender(KS_AES)
    por = sender.open_por(sim.deliver(sender.secure(install_notes_script().compact()).tpdus))
    assert por.status == ResponseStatus.POR_OK and por.ok
    assert sim.has(NOTES_AID) and sim.isd.ota_counter(1) == 1
