"""One typed way for a host recipe to send a card its commands (in the manner of yubikit).

`ApduSession.send(cla, ins, p1, p2, data, le) -> bytes` encodes the command
(ISO/IEC 7816-4 §5.1: short, or extended when the data exceed 255 bytes, or,
for applets that want it, command chaining in 255-byte parts, §5.3.3), fetches
61xx continuations and answers 6Cxx below it (a `GetResponseReader`), and raises
`ApduError(sw, data)` for any status word but 9000, so no client splits status
words by hand. A caller that accepts a warning (6282 end of file, 6310 more data)
catches the `ApduError` and reads its `sw` and `data`. `AppletSession` is the same
for one applet, named by its AID.
"""

from __future__ import annotations

from typing import ClassVar

from host.errors import ApduError
from host.readers.base import Reader, ReaderError
from host.readers.wrappers import GetResponseReader

__all__ = ["ApduSession", "AppletSession", "encode_command"]


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


class ApduSession:
    """Commands to a card over any reader, checked in one place.

    Subclasses set `chained = True` for applets that take long data by command
    chaining (ISO/IEC 7816-4 §5.3.3: CLA b5 on every part but the last) rather
    than extended length.

    Args:
        reader: a connected reader; wrapped in a `GetResponseReader` unless it is
            one already, or `fetch` is False (a reader that fetches below its own
            wrapping, such as a secure channel over a `GetResponseReader`).
    """

    chained: ClassVar[bool] = False

    def __init__(self, reader: Reader, *, fetch: bool = True) -> None:
        # 61xx (an RSA public key, a certificate) is fetched below us.
        if fetch and not isinstance(reader, GetResponseReader):
            reader = GetResponseReader(reader)
        self.reader = reader

    def send(
        self,
        cla: int,
        ins: int,
        p1: int,
        p2: int,
        data: bytes = b"",
        le: int | None = None,
        *,
        what: str = "",
    ) -> bytes:
        """One command; the response data, or `ApduError` for any SW but 9000.

        Args:
            what: names the command in the error ("SELECT 6F07"); default its INS.

        Raises:
            ApduError: the card answered anything but 9000 (`data` holds what came with it).
            ReaderError: the answer is shorter than a status word.
        """
        what = what or f"{ins:02X}"
        if self.chained and len(data) > 255:
            parts = [data[i : i + 255] for i in range(0, len(data), 255)]
            for part in parts[:-1]:
                self.send_apdu(encode_command(cla | 0x10, ins, p1, p2, part), what)
            data = parts[-1]
        return self.send_apdu(encode_command(cla, ins, p1, p2, data, le), what)

    def send_apdu(self, apdu: bytes, what: str = "") -> bytes:
        """A command already encoded (by a spec, or `CommandApdu.to_bytes`); as `send`."""
        resp = self.reader.transmit(apdu)
        if len(resp) < 2:
            raise ReaderError(f"{what or 'command'}: response shorter than a status word")
        sw = int.from_bytes(resp[-2:], "big")
        if sw != 0x9000:
            raise ApduError(sw, resp[:-2], what or (f"{apdu[1]:02X}" if len(apdu) > 1 else ""))
        return resp[:-2]


class AppletSession(ApduSession):
    """An applet's commands over any reader (an `SmReader` for secure messaging).

    Args:
        reader: a connected reader.
        aid: the applet's AID (ISO/IEC 7816-4 §8.2.1.2).
    """

    def __init__(self, reader: Reader, aid: bytes) -> None:
        super().__init__(reader)
        self.aid = aid
