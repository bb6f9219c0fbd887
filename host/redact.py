"""Secrets in traces and messages: the data of PIN and key commands, masked below TRAFFIC.

Traces (`host.trace`), `--json` records and error messages that quote a command
show the data field of a command in `SECRET_INS` as `** n bytes masked **` (or
`*` in hex) unless the TRAFFIC level is on (`cardemu --traffic`, see `host.log`):
"keys and PINs never logged below the TRAFFIC level".
"""

from __future__ import annotations

import logging

from card.apdu import ApduFormatError, CommandApdu
from host.log import traffic_enabled

#: Instructions whose command data field is a secret: VERIFY (20/21), CHANGE REFERENCE
#: DATA (24/25), DISABLE / ENABLE VERIFICATION REQUIREMENT (26, 28), RESET RETRY COUNTER
#: (2C/2D) (ISO/IEC 7816-4 §11.5, ETSI TS 102 221 §11.1.9-13; the GSM class A0 uses
#: the same INS, TS 51.011 §9.2) carry PINs, PUKs and biometric data; GlobalPlatform
#: PUT KEY (D8, GPC v2.3.1 §11.8) and Yubico's PIV SET MANAGEMENT KEY (FF) carry keys.
#: INITIALIZE UPDATE's host challenge and EXTERNAL AUTHENTICATE's cryptogram are no
#: secrets and stay visible.
SECRET_INS = frozenset({0x20, 0x21, 0x24, 0x25, 0x26, 0x28, 0x2C, 0x2D, 0xD8, 0xFF})

_traffic_log = logging.getLogger("cardemu.traffic")


def reveal_secrets() -> bool:
    """Whether secrets are shown: only when the TRAFFIC level is on (`cardemu --traffic`)."""
    return traffic_enabled(_traffic_log)


def secret_data(raw: bytes) -> bool:
    """Whether the command's data field is a PIN, a key or the like (see SECRET_INS)."""
    return len(raw) > 5 and raw[1] in SECRET_INS


def hidden(raw: bytes, reveal: bool | None = None) -> bool:
    """Whether the command's data must be masked (`reveal` None: as the TRAFFIC level says)."""
    return secret_data(raw) and not (reveal_secrets() if reveal is None else reveal)


def masked_text(n: int) -> str:
    """What a trace shows instead of `n` secret bytes."""
    return f"** {n} byte{'s' if n != 1 else ''} masked **"


def data_span(raw: bytes) -> tuple[int, int]:
    """Where the command data field lies in `raw` (everything after P3 if malformed)."""
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduFormatError:
        return min(5, len(raw)), len(raw)
    if not cmd.data:
        return len(raw), len(raw)
    start = 4 + (3 if cmd.extended else 1)
    return start, start + len(cmd.data)


def command_hex(raw: bytes, reveal: bool | None = None) -> str:
    """The command in upper-case hex, its data field as `*` when it is a hidden secret."""
    text = raw.hex().upper()
    if not hidden(raw, reveal):
        return text
    start, end = data_span(raw)
    return text[: 2 * start] + "*" * (2 * (end - start)) + text[2 * end :]
