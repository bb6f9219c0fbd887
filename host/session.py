"""One typed way for a host recipe to send an applet its commands (in the manner of yubikit).

`AppletSession.send(cla, ins, p1, p2, data, le) -> bytes` encodes the command
(ISO/IEC 7816-4 §5.1: short, or extended when the data exceed 255 bytes, or,
for applets that want it, command chaining in 255-byte parts, §5.3.3), fetches
61xx continuations below it (a `GetResponseReader`), and raises `ApduError`
for any status word but 9000, so no client splits status words by hand.
"""

from __future__ import annotations

from typing import ClassVar

from host.errors import ApduError
from host.readers.base import Reader
from host.readers.wrappers import GetResponseReader

__all__ = ["AppletSession", "encode_command"]


def encode_command(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
) -> bytes:
    """The bytes of one command APDU.

    Args:
        le: the Le field as sent, or None for none: 0 asks for everything
            (256 bytes short, 65,536 extended). Data over 255 bytes make the
            command extended, and its Le two bytes.
    """
    apdu = bytes((cla, ins, p1, p2))
    if len(data) > 255:
        apdu += b"\x00" + len(data).to_bytes(2, "big") + data
        if le is not None:
            apdu += (le & 0xFFFF).to_bytes(2, "big")
        return apdu
    if data:
        apdu += bytes((len(data),)) + data
    if le is not None:
        apdu += bytes((le & 0xFF,))
    return apdu


class AppletSession:
    """An applet's commands over any reader (an `SmReader` for secure messaging).

    Subclasses set `chained = True` for applets that take long data by command
    chaining (ISO/IEC 7816-4 §5.3.3: CLA b5 on every part but the last) rather
    than extended length.
    """

    chained: ClassVar[bool] = False

    def __init__(self, reader: Reader, aid: bytes) -> None:
        # 61xx (an RSA public key, a certificate) is fetched below us.
        self.reader = reader if isinstance(reader, GetResponseReader) else GetResponseReader(reader)
        self.aid = aid

    def send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        """One command; the response data, or `ApduError` for any SW but 9000."""
        if self.chained and len(data) > 255:
            parts = [data[i : i + 255] for i in range(0, len(data), 255)]
            for part in parts[:-1]:
                self._exchange(encode_command(cla | 0x10, ins, p1, p2, part), ins)
            data = parts[-1]
        return self._exchange(encode_command(cla, ins, p1, p2, data, le), ins)

    def _exchange(self, apdu: bytes, ins: int) -> bytes:
        resp = self.reader.transmit(apdu)
        sw = int.from_bytes(resp[-2:], "big")
        if sw != 0x9000:
            raise ApduError(sw, resp[:-2], f"{ins:02X}")
        return resp[:-2]
