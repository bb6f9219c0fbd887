"""Command scripts of ETSI TS 102 226 §5: the secured data of a RAM or RFM packet.

Compact format (§5.1.1 / §5.2.1): C-APDUs one after the other, each
`CLA INS P1 P2 P3 [data]` as on T=0: P3 is Lc, or Le for an instruction that
only sends data back (the receiving application names those). A command that
leaves response data answers 61xx and a GET RESPONSE in the script (C0) takes
it. The response: the number of commands executed, the last status word and
the last response data (compact response, §5.2.1).

Expanded format (§5.1.2 / §5.2.2): a Command Scripting template `AA`
(definite length) or `AE 80 ... 00 00` (indefinite length) holding C-APDU TLVs
`22` (whole ISO 7816-4 commands, Le included) and optionally an Immediate
Action TLV (`81`, not acted on here); the response is a Response Scripting
template `AB` (or `AF 80 ... 00 00` for an indefinite command script) with the
Number of executed C-APDUs (`80`, one byte) and one R-APDU TLV `23` (data +
SW) per executed command.

Either way the script stops at the first command answering an error (any SW
but 90 00, 91 xx, 61 xx, 62 xx, 63 xx), as §5.1.1 says. The first byte tells
the formats apart: AA is expanded, anything else a compact CLA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from card import tlv
from card.apdu import ApduFormatError, CommandApdu

TAG_COMMAND_SCRIPT = 0xAA
TAG_COMMAND_SCRIPT_INDEFINITE = 0xAE
TAG_RESPONSE_SCRIPT = 0xAB
TAG_RESPONSE_SCRIPT_INDEFINITE = 0xAF
TAG_C_APDU = 0x22
TAG_R_APDU = 0x23
TAG_IMMEDIATE_ACTION = 0x81
TAG_EXECUTED = 0x80
TAG_BAD_FORMAT = 0x90

#: Run one command: (response data, status word).
Execute = Callable[[CommandApdu], tuple[bytes, int]]


class ScriptError(ValueError):
    """A script that does not decode (the whole packet is refused)."""


def is_ok(sw: int) -> bool:
    return sw == 0x9000 or sw >> 8 in (0x91, 0x61, 0x62, 0x63)


def split_compact(script: bytes, case2: frozenset[int]) -> list[CommandApdu]:
    """The C-APDUs of a compact script; `case2` the INS whose P3 is Le.

    Raises:
        ScriptError: a command runs off the end.
    """
    out = []
    pos = 0
    while pos < len(script):
        if pos + 5 > len(script):
            raise ScriptError("a C-APDU shorter than its header")
        cla, ins, p1, p2, p3 = script[pos : pos + 5]
        pos += 5
        if ins in case2:
            out.append(CommandApdu(cla, ins, p1, p2, b"", p3 or 256))
            continue
        data = script[pos : pos + p3]
        if len(data) != p3:
            raise ScriptError("a C-APDU's data runs off the script")
        pos += p3
        out.append(CommandApdu(cla, ins, p1, p2, bytes(data), None))
    return out


def run_compact(script: bytes, execute: Execute, case2: frozenset[int]) -> bytes:
    """Run a compact script; the compact response (§5.2.1)."""
    commands = split_compact(script, case2)
    count = 0
    last_sw, last_data = 0x9000, b""
    waiting = b""
    for cmd in commands:
        count += 1
        if cmd.ins == 0xC0 and cmd.cla & 0x80 == 0 and waiting:
            ne = cmd.le or 256
            last_data, waiting = waiting[:ne], waiting[ne:]
            last_sw = 0x9000 if not waiting else 0x6100 | min(len(waiting), 0xFF) & 0xFF
            continue
        waiting = b""
        # As on T=0: a case 2 command (P3 = Le) gets its data at once; any other runs
        # without Le, and data it still answers waits for a GET RESPONSE (61xx).
        data, sw = execute(cmd)
        if data and cmd.le is None and sw == 0x9000:
            # T=0 case 4: the data waits for GET RESPONSE.
            waiting, last_data = data, b""
            last_sw = 0x6100 | (len(data) if len(data) < 256 else 0)
        else:
            last_data, last_sw = data, sw
        if not is_ok(sw):
            break
    return bytes((count,)) + last_sw.to_bytes(2, "big") + last_data


def _script_items(script: bytes) -> list[tlv.Tlv]:
    """The TLVs inside an AA (definite) or AE 80 .. 00 00 (indefinite) template."""
    try:
        if script[:2] == bytes((TAG_COMMAND_SCRIPT_INDEFINITE, 0x80)):
            if len(script) < 4 or script[-2:] != b"\x00\x00":
                raise ScriptError("an indefinite-length script ends with 00 00")
            return tlv.parse(script[2:-2], allow_padding=False)
        top = tlv.parse(script, allow_padding=False)
    except tlv.TlvError as e:
        raise ScriptError(f"expanded script: {e}") from None
    if len(top) != 1 or top[0].tag != TAG_COMMAND_SCRIPT:
        raise ScriptError("an expanded script is one AA or AE template")
    return list(top[0].children)


def parse_expanded(script: bytes) -> list[CommandApdu]:
    """The C-APDUs of an expanded script (AA or AE template).

    Raises:
        ScriptError: not AA/AE, a TLV that does not decode, a C-APDU that is not one.
    """
    out = []
    for item in _script_items(script):
        if item.tag == TAG_IMMEDIATE_ACTION:
            continue
        if item.tag != TAG_C_APDU:
            raise ScriptError(f"unexpected tag {item.tag:02X} in a command script")
        try:
            out.append(CommandApdu.from_bytes(item.value))
        except ApduFormatError as e:
            raise ScriptError(f"C-APDU: {e}") from None
    return out


def run_expanded(script: bytes, execute: Execute) -> bytes:
    """Run an expanded script; the AB (or, for an AE script, AF) response (§5.2.2)."""
    responses = []
    for cmd in parse_expanded(script):
        data, sw = execute(cmd)
        responses.append(data + sw.to_bytes(2, "big"))
        if not is_ok(sw):
            break
    items = [(TAG_EXECUTED, bytes((len(responses),)))] + [(TAG_R_APDU, r) for r in responses]
    if script[:1] == bytes((TAG_COMMAND_SCRIPT_INDEFINITE,)):
        body = b"".join(tlv.build(t, v) for t, v in items)
        return bytes((TAG_RESPONSE_SCRIPT_INDEFINITE, 0x80)) + body + b"\x00\x00"
    return tlv.build(TAG_RESPONSE_SCRIPT, items)


def run_script(script: bytes, execute: Execute, case2: frozenset[int]) -> bytes:
    """Run a script in whichever format it is in (§5: the first byte tells)."""
    if script[:1] in (bytes((TAG_COMMAND_SCRIPT,)), bytes((TAG_COMMAND_SCRIPT_INDEFINITE,))):
        return run_expanded(script, execute)
    return run_compact(script, execute, case2)


# -- host side ---------------------------------------------------------------------------------


def compact_script(commands: Iterable[CommandApdu]) -> bytes:
    """Encode C-APDUs in the compact format (Le dropped; a case 2 command keeps P3 = Le)."""
    out = bytearray()
    for c in commands:
        if c.data:
            if len(c.data) > 255:
                raise ValueError("compact C-APDUs carry at most 255 data bytes")
            out += bytes((c.cla, c.ins, c.p1, c.p2, len(c.data))) + c.data
        else:
            le = c.le or 0
            out += bytes((c.cla, c.ins, c.p1, c.p2, le & 0xFF))
    return bytes(out)


def expanded_script(commands: Iterable[CommandApdu], *, indefinite: bool = False) -> bytes:
    """An AA script, or with `indefinite` an AE 80 .. 00 00 one."""
    items = [(TAG_C_APDU, c.to_bytes()) for c in commands]
    if indefinite:
        body = b"".join(tlv.build(t, v) for t, v in items)
        return bytes((TAG_COMMAND_SCRIPT_INDEFINITE, 0x80)) + body + b"\x00\x00"
    return tlv.build(TAG_COMMAND_SCRIPT, items)


def parse_compact_response(data: bytes) -> tuple[int, int, bytes]:
    """(commands executed, last SW, last data) of a compact response.

    Raises:
        ScriptError: shorter than three bytes.
    """
    if len(data) < 3:
        raise ScriptError("a compact response is at least three bytes")
    return data[0], int.from_bytes(data[1:3], "big"), bytes(data[3:])


def parse_expanded_response(data: bytes) -> tuple[int, list[tuple[bytes, int]]]:
    """(commands executed, [(data, SW) of each]) of an AB response.

    Raises:
        ScriptError: not an AB template of 80 and 23 objects.
    """
    try:
        if data[:2] == bytes((TAG_RESPONSE_SCRIPT_INDEFINITE, 0x80)) and data[-2:] == b"\x00\x00":
            children = tlv.parse(data[2:-2], allow_padding=False)
        else:
            top = tlv.parse(data, allow_padding=False)
            if len(top) != 1 or top[0].tag != TAG_RESPONSE_SCRIPT:
                raise ScriptError("an expanded response is one AB or AF template")
            children = list(top[0].children)
    except tlv.TlvError as e:
        raise ScriptError(f"expanded response: {e}") from None
    count = -1
    rapdus = []
    for item in children:
        if item.tag == TAG_EXECUTED and len(item.value) == 1:
            count = item.value[0]
        elif item.tag == TAG_R_APDU and len(item.value) >= 2:
            rapdus.append((bytes(item.value[:-2]), int.from_bytes(item.value[-2:], "big")))
        elif item.tag != TAG_BAD_FORMAT:
            raise ScriptError(f"unexpected tag {item.tag:02X} in a response script")
    if count < 0:
        raise ScriptError("no number of executed C-APDUs")
    return count, rapdus
