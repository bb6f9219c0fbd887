"""APDU traces: `>>` / `<<` lines split into header, Lc, data, Le; the SW and its meaning; timing.

Traces go to stderr (results go to stdout). Colour only on a TTY, and never when
NO_COLOR is set (https://no-color.org).
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from card.apdu import ApduFormatError, CommandApdu
from card.sw import describe
from host.readers.base import Reader


def use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def split_command(raw: bytes) -> dict[str, str]:
    """Header, Lc, data and Le of a command APDU as hex fields (Lc/Le as encoded)."""
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduFormatError:
        return {"raw": raw.hex().upper()}
    out = {"header": cmd.header.hex().upper()}
    body = raw[4:]
    nc = len(cmd.data)
    if nc:
        lc_len = 3 if cmd.extended else 1
        out["lc"] = body[:lc_len].hex().upper()
        out["data"] = cmd.data.hex().upper()
        body = body[lc_len + nc :]
    if cmd.le is not None:
        out["le"] = body.hex().upper()
    return out


def format_command(raw: bytes, colour: bool = False) -> str:
    f = split_command(raw)
    if "raw" in f:
        return f">> {f['raw']} (malformed)"
    parts = [f["header"]]
    for key in ("lc", "data", "le"):
        if key in f:
            parts.append(f[key])
    text = " ".join(parts)
    return f"\x1b[36m>> {text}\x1b[0m" if colour else f">> {text}"


def format_response(raw: bytes, elapsed: float | None = None, colour: bool = False) -> str:
    if len(raw) < 2:
        return f"<< {raw.hex().upper()} (malformed response)"
    sw = (raw[-2] << 8) | raw[-1]
    data = raw[:-2].hex().upper()
    timing = f" [{elapsed * 1000:.2f} ms]" if elapsed is not None else ""
    sw_text = f"{sw:04X}"
    if colour:
        ok = sw == 0x9000 or raw[-2] == 0x61
        sw_text = f"\x1b[{32 if ok else 31}m{sw_text}\x1b[0m"
    body = f"{data} " if data else ""
    return f"<< {body}{sw_text} ({describe(sw)}){timing}"


def exchange_record(cmd: bytes, resp: bytes, elapsed: float) -> dict[str, Any]:
    """One exchange as a JSON-ready object with stable keys."""
    sw = (resp[-2] << 8) | resp[-1] if len(resp) >= 2 else None
    return {
        "command": cmd.hex().upper(),
        "response": resp[:-2].hex().upper(),
        "sw": f"{sw:04X}" if sw is not None else None,
        "sw_meaning": describe(sw) if sw is not None else None,
        "ms": round(elapsed * 1000, 3),
    }


class TracingReader(Reader):
    """A reader wrapper that writes every exchange to a stream (stderr by default)."""

    def __init__(self, inner: Reader, stream: IO[str] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.stream = stream or sys.stderr
        self.colour = use_colour(self.stream)

    def connect(self) -> bytes:
        return self.inner.connect()

    def reset(self) -> bytes:
        return self.inner.reset()

    def disconnect(self) -> None:
        self.inner.disconnect()

    def transmit(self, apdu: bytes) -> bytes:
        print(format_command(apdu, self.colour), file=self.stream)
        t0 = time.perf_counter()
        resp = self.inner.transmit(apdu)
        print(format_response(resp, time.perf_counter() - t0, self.colour), file=self.stream)
        return resp
