"""A UICC's CAT commands (ETSI TS 102 221 §10.1.1, TS 102 223) and the OTA structures in them.

- ENVELOPE (80 C2): the BER-TLV the terminal hands over; for an SMS-PP download
  (D1, 3GPP TS 31.111 §7.1.1.2) the SMS-DELIVER (TS 23.040) is decoded, and in it
  the TS 31.115 user data header and the TS 102 225 command packet header (SPI,
  KIc, KID, TAR; CNTR too when not ciphered) or the concatenation place of a
  later segment. Its response data is the SMS-DELIVER-REPORT's user data: the
  proof of receipt (`02 71 00`, RPL, RHL, TAR, and the RSC when in clear).
- FETCH (80 12): the response is a proactive command (D0): its number, type and
  qualifier; for SEND SHORT MESSAGE the SMS-SUBMIT's destination.
- TERMINAL RESPONSE (80 14): command details and the general result.

TERMINAL PROFILE is in `apdu_specs.ts_102_221`. The vectors are the emulator's
"usim-ota" preset answering packets built with pySim's recorded SJA5 test
command (TAR B00011) re-secured under the preset's key set 1.
"""

from __future__ import annotations

import construct as c

from apdu_specs.framework.decoded import Decoded, count_bytes
from apdu_specs.framework.fields import Le
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import Vector
from card.ota import cat, scp80, sms

CLAUSE = "ETSI TS 102 221 §10.1.1"


def _packet(packet: bytes) -> str:
    try:
        h, _ = scp80.parse_command_header(packet)
    except scp80.PacketError as e:
        return f"command packet (malformed: {e})"
    spi = h.spi
    text = (
        f"command packet SPI {spi.to_bytes().hex().upper()} KIc {h.kic:02X} KID {h.kid:02X}"
        f" TAR {h.tar.hex().upper()}"
    )
    if not spi.ciphered:
        text += f" CNTR {packet[10:15].hex().upper()}"
    return text + f", {count_bytes(len(packet))}"


def describe_sms_pp(data: bytes) -> str:
    """One line for an SMS-PP download ENVELOPE's data."""
    try:
        tpdu, _ = cat.parse_sms_pp_download(data)
        deliver = sms.SmsDeliver.from_bytes(tpdu)
    except (cat.CatError, sms.SmsError) as e:
        return f"SMS-PP download (undecodable: {e})"
    text = f"SMS-PP download from {deliver.originator.digits} PID {deliver.pid:02X}"
    if not deliver.udhi:
        return text + f", {count_bytes(len(deliver.user_data))} of user data"
    try:
        seg = sms.command_segment(deliver.user_data)
    except sms.SmsError as e:
        return text + f" ({e})"
    if seg.total > 1:
        text += f", segment {seg.number}/{seg.total} ref {seg.reference}"
    if seg.first_header:
        return f"{text}: {_packet(seg.payload)}"
    return f"{text}: {count_bytes(len(seg.payload))} more"


def _envelope_summary(d: Decoded) -> str:
    data = d.fields["data"]
    if not isinstance(data, bytes) or not data:
        return "ENVELOPE"
    if data[0] == cat.TAG_SMS_PP_DOWNLOAD:
        return f"ENVELOPE {describe_sms_pp(data)}"
    return f"ENVELOPE tag {data[0]:02X}, {count_bytes(len(data))}"


def describe_por(data: bytes) -> str:
    """One line for a proof of receipt in an SMS's user data (TS 31.115 §7.1)."""
    try:
        packet = sms.response_packet_of(data)
    except sms.SmsError:
        return count_bytes(len(data))
    if len(packet) < 13:
        return f"response packet (short), {count_bytes(len(packet))}"
    rhl, tar = packet[2], packet[3:6].hex().upper()
    text = f"PoR TAR {tar} RHL {rhl}"
    if rhl == 10 and len(packet) >= 13:
        try:
            rsc = scp80.ResponseStatus(packet[12])
            text += f", if in clear RSC {rsc.value:02X} ({rsc.description})"
        except ValueError:
            pass
    return text + f", {count_bytes(len(packet))}"


def _envelope_response(d: Decoded) -> str:
    data = d.data
    return describe_por(data) if isinstance(data, bytes) and data else "no data"


def describe_proactive(data: bytes) -> str:
    """One line for a proactive command (TS 102 223 §6.6)."""
    try:
        cmd = cat.ProactiveCommand.from_bytes(data)
    except cat.CatError as e:
        return f"proactive command (undecodable: {e})"
    try:
        name = cat.CommandType(cmd.type).name.replace("_", " ")
    except ValueError:
        name = f"type {cmd.type:02X}"
    text = f"{name} #{cmd.number} qualifier {cmd.qualifier:02X}"
    tpdu = cmd.item(cat.TAG_SMS_TPDU)
    if tpdu is not None:
        try:
            sub = sms.SmsSubmit.from_bytes(tpdu)
            text += f" to {sub.destination.digits}, {count_bytes(len(sub.user_data))}"
            if sub.udhi and sub.user_data[1:2] == bytes((sms.IEI_RESPONSE_PACKET,)):
                text += f": {describe_por(sub.user_data)}"
        except sms.SmsError:
            text += ", SMS TPDU not an SMS-SUBMIT"
    address = cmd.item(cat.TAG_OTHER_ADDRESS)
    transport = cmd.item(cat.TAG_TRANSPORT_LEVEL)
    if address is not None and len(address) == 5 and transport is not None and len(transport) == 3:
        ip = ".".join(str(b) for b in address[1:])
        text += f" to {ip}:{int.from_bytes(transport[1:], 'big')}"
    if cmd.destination & 0xF8 == cat.DEV_CHANNEL_BASE:
        text += f" channel {cmd.destination & 0x07}"
    return text


def _fetch_response(d: Decoded) -> str:
    data = d.data
    return describe_proactive(data) if isinstance(data, bytes) and data else "no data"


def _terminal_response_summary(d: Decoded) -> str:
    data = d.fields["data"]
    if not isinstance(data, bytes):
        return "TERMINAL RESPONSE"
    try:
        tr = cat.TerminalResponse.from_bytes(data)
    except cat.CatError as e:
        return f"TERMINAL RESPONSE (undecodable: {e})"
    try:
        result = cat.GeneralResult(tr.result).name.replace("_", " ").lower()
    except ValueError:
        result = f"result {tr.result:02X}"
    return f"TERMINAL RESPONSE to #{tr.details[0]} type {tr.details[1]:02X}: {result}"


# A single-SMS command packet (key set 1 of host.presets.ota_test_keysets, counter 1,
# TAR B00011, SELECT MF) and the PoR the usim-ota preset answered; the same with the
# PoR by SMS-SUBMIT (91 40), and the SEND SHORT MESSAGE then fetched.
_ENVELOPE = (
    "80C2000045D143820283818B3D4405812143F57FF6621010000000002D02700000281516191212B00011"
    "2273CC4CE2A7115446DD081A61CDD561A9B42C9C7963616AD80AB9B1308A190600"
)
_POR = "027100002412B000115BCB507C0503202A26BFD4545344F25BA960864824E892F599381A51F2D85F409000"
_ENVELOPE_SUBMIT = (
    "80C2000045D143820283818B3D4405812143F57FF6621010000000002D02700000281516391212B00011"
    "DB7E79FA5D1400E825440A76EAF0DF34B5DB7911F7919244D443702D775D388500"
)
_SEND_SMS = (
    "D03E8103011300820281838B33410005812143F57FF629027100002412B00011BBC74F9C5D9910DEFD5D06"
    "6DCA1E819F9E5CE117DD0EE6CE17904532147732049000"
)
_ORIGIN = "the emulator's usim-ota preset"
_SW9000 = "9000 (Normal processing: no further qualification): "

SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "ENVELOPE",
        0xC2,
        f"{CLAUSE} (TS 102 223 §7, 3GPP TS 31.111 §7.1.1.2)",
        variant="CAT",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        sws=sws("9300 6A80 6A81 91xx"),
        summary=_envelope_summary,
        response_summary=_envelope_response,
        vectors=(
            Vector(
                _ENVELOPE,
                "ENVELOPE SMS-PP download from 12345 PID 7F: command packet SPI 1619 KIc 12"
                " KID 12 TAR B00011, 42 bytes",
                response=_POR,
                response_summary=_SW9000 + "PoR TAR B00011 RHL 18, 38 bytes",
                source=_ORIGIN,
            ),
            Vector(
                _ENVELOPE_SUBMIT,
                "ENVELOPE SMS-PP download from 12345 PID 7F: command packet SPI 1639 KIc 12"
                " KID 12 TAR B00011, 42 bytes",
                response="9140",
                source=_ORIGIN,
            ),
        ),
        doc="SMS-PP download: the SMS-DELIVER carrying a TS 102 225 command packet; "
        "the response data is the proof of receipt for the SMS-DELIVER-REPORT.",
    ),
    CommandSpec(
        "FETCH",
        0x12,
        f"{CLAUSE} (TS 102 223 §6.3)",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        le=Le.REQUIRED,
        response=c.GreedyBytes,
        sws=sws("6F00 91xx"),
        summary=lambda d: f"FETCH, Ne {d.fields['ne']}",
        response_summary=_fetch_response,
        vectors=(
            Vector(
                "8012000040",
                "FETCH, Ne 64",
                response=_SEND_SMS,
                response_summary=_SW9000
                + "SEND SHORT MESSAGE #1 qualifier 00 to 12345, 41 bytes:"
                + " PoR TAR B00011 RHL 18, 38 bytes",
                source=_ORIGIN + ", after the ENVELOPE answered 91 40",
            ),
            Vector(
                "8012000010",
                "FETCH, Ne 16",
                response="6F00",
                source="the emulator's usim-ota preset with nothing to fetch",
            ),
        ),
    ),
    CommandSpec(
        "TERMINAL RESPONSE",
        0x14,
        f"{CLAUSE} (TS 102 223 §6.8)",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        sws=sws("6F00 6A80 91xx"),
        summary=_terminal_response_summary,
        vectors=(
            Vector(
                "801400000C810301130082028281830100",
                "TERMINAL RESPONSE to #1 type 13: ok",
                response="6F00",
                source="the emulator's usim-ota preset with no command fetched",
            ),
        ),
    ),
)
