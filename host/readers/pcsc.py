"""A card in a PC/SC reader through pyscard (PC/SC Workgroup spec part 5, pcsc-lite).

pyscard is optional (`pip install 'cardemu[pcsc]'`) and imported only when a
PC/SC reader is used. The low-level `smartcard.scard` API is used rather than
pyscard's object layer: it returns the PC/SC error codes, which name the
failure ("no card", "reader not found", "pcscd not running") precisely.
"""

from __future__ import annotations

import enum
from types import ModuleType
from typing import Any

from host.readers.base import Reader, ReaderError


class Protocol(enum.Enum):
    """Transmission protocols a connection can use (ISO/IEC 7816-3 §10, §11)."""

    T0 = "T=0"
    T1 = "T=1"


def _scard() -> ModuleType:
    try:
        from smartcard import scard
    except ImportError as exc:
        raise ReaderError("pyscard is not installed: pip install 'cardemu[pcsc]'") from exc
    return scard


def _message(scard: ModuleType, hresult: int, reader: str | None = None) -> str:
    """A one-line explanation of a PC/SC error code."""
    where = f" '{reader}'" if reader else ""
    known = {
        scard.SCARD_E_NO_SERVICE: "PC/SC service not available (is pcscd running?)",
        scard.SCARD_E_SERVICE_STOPPED: "PC/SC service stopped (pcscd exited)",
        scard.SCARD_E_NO_READERS_AVAILABLE: "no PC/SC reader found",
        scard.SCARD_E_UNKNOWN_READER: f"reader{where} not found",
        scard.SCARD_E_READER_UNAVAILABLE: f"reader{where} is no longer available",
        scard.SCARD_E_NO_SMARTCARD: f"no card in reader{where}",
        scard.SCARD_W_REMOVED_CARD: f"the card was removed from reader{where}",
        scard.SCARD_W_UNRESPONSIVE_CARD: f"the card in reader{where} does not respond",
        scard.SCARD_W_UNPOWERED_CARD: f"the card in reader{where} is not powered",
        scard.SCARD_W_RESET_CARD: f"the card in reader{where} was reset by another application",
        scard.SCARD_E_SHARING_VIOLATION: f"reader{where} is in exclusive use elsewhere",
        scard.SCARD_E_PROTO_MISMATCH: f"the card in reader{where} does not offer that protocol",
    }
    text = known.get(hresult)
    if text is None:
        text = f"{scard.SCardGetErrorMessage(hresult).rstrip('.')} (0x{hresult & 0xFFFFFFFF:08X})"
        if reader:
            text += f" on reader '{reader}'"
    return text


def _establish(scard: ModuleType) -> Any:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise ReaderError(_message(scard, hresult))
    return context


def list_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows, in its order (empty if none).

    Raises:
        ReaderError: pyscard is missing or pcscd is not running.
    """
    scard = _scard()
    context = _establish(scard)
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(_message(scard, hresult))
        return list(readers)
    finally:
        scard.SCardReleaseContext(context)


def select_reader(spec: str | int | None, names: list[str]) -> str:
    """Pick one reader by index, or by case-insensitive substring of its name.

    With no `spec`, the only reader is chosen.

    Raises:
        ReaderError: nothing matches, or several do (they are named).
    """
    if not names:
        raise ReaderError("no PC/SC reader found")
    if spec is None:
        if len(names) == 1:
            return names[0]
        raise ReaderError(f"{len(names)} readers, choose one: " + ", ".join(names))
    if isinstance(spec, int) or spec.isdigit():
        index = int(spec)
        if 0 <= index < len(names):
            return names[index]
        raise ReaderError(f"no reader {index} (there are {len(names)})")
    exact = [n for n in names if n == spec]
    if exact:
        return exact[0]
    matches = [n for n in names if spec.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ReaderError(f"no reader matches '{spec}'")
    raise ReaderError(f"'{spec}' matches {len(matches)} readers: " + ", ".join(matches))


class PcscReader(Reader):
    """One card in one PC/SC reader.

    Args:
        reader: the reader's exact name, an index, or a unique substring
            (see `select_reader`); None picks the only reader.
        protocol: force T=0 or T=1; None accepts whichever the card offers
            (pcscd then negotiates from the ATR).
        exclusive: ask pcscd for exclusive access (SCARD_SHARE_EXCLUSIVE).
    """

    def __init__(
        self,
        reader: str | int | None = None,
        protocol: Protocol | str | None = None,
        exclusive: bool = False,
    ) -> None:
        self._spec = reader
        self._protocol_wanted = Protocol(protocol) if isinstance(protocol, str) else protocol
        self._exclusive = exclusive
        self._scard: ModuleType | None = None
        self._context: Any = None
        self._card: Any = None
        self._pci: int | None = None
        self._active: Protocol | None = None
        self._atr = b""
        self.name = reader if isinstance(reader, str) else "pcsc"

    list_readers = staticmethod(list_readers)

    @property
    def atr(self) -> bytes:
        """The ATR read at the last connect or reset (empty before)."""
        return self._atr

    @property
    def protocol(self) -> Protocol | None:
        """The protocol of the open connection."""
        return self._active

    @property
    def connected(self) -> bool:
        return self._card is not None

    def connect(self) -> bytes:
        """Connect to the card (powering it if no one else has) and return its ATR.

        Raises:
            ReaderError: no pcscd, no such reader, no card, or protocol refused.
        """
        if self._card is not None:
            return self._atr
        scard = _scard()
        context = _establish(scard)
        try:
            hresult, readers = scard.SCardListReaders(context, [])
            if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
                readers = []
            elif hresult != scard.SCARD_S_SUCCESS:
                raise ReaderError(_message(scard, hresult))
            name = select_reader(self._spec, list(readers))
            share = scard.SCARD_SHARE_EXCLUSIVE if self._exclusive else scard.SCARD_SHARE_SHARED
            hresult, card, active = scard.SCardConnect(context, name, share, self._preferred(scard))
            if hresult != scard.SCARD_S_SUCCESS:
                raise ReaderError(_message(scard, hresult, name))
        except BaseException:
            scard.SCardReleaseContext(context)
            raise
        self._scard, self._context, self._card, self.name = scard, context, card, name
        self._set_protocol(scard, active)
        self._atr = self._read_atr(scard)
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU and return the response APDU (data + SW1 SW2).

        Raises:
            ReaderError: not connected, or pcscd could not carry the exchange.
        """
        scard = self._scard
        if self._card is None or scard is None:
            raise ReaderError("not connected: call connect() first")
        hresult, response = scard.SCardTransmit(self._card, self._pci, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(_message(scard, hresult, self.name))
        return bytes(response)

    def reset(self) -> bytes:
        """Warm-reset the card (SCardReconnect with SCARD_RESET_CARD) and return its ATR."""
        return self._reconnect(cold=False)

    def power_cycle(self) -> bytes:
        """Cold-reset the card (SCARD_UNPOWER_CARD) and return its ATR."""
        return self._reconnect(cold=True)

    def disconnect(self, unpower: bool = False) -> None:
        """Release the card, leaving it powered unless `unpower`."""
        if self._card is None:
            return
        scard = _scard()
        disposition = scard.SCARD_UNPOWER_CARD if unpower else scard.SCARD_LEAVE_CARD
        card, context = self._card, self._context
        self._card = self._context = None
        self._pci = self._active = None
        try:
            scard.SCardDisconnect(card, disposition)
        finally:
            scard.SCardReleaseContext(context)

    # -- helpers ------------------------------------------------------------

    def _preferred(self, scard: ModuleType) -> int:
        if self._protocol_wanted is Protocol.T0:
            return scard.SCARD_PROTOCOL_T0
        if self._protocol_wanted is Protocol.T1:
            return scard.SCARD_PROTOCOL_T1
        return scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1

    def _set_protocol(self, scard: ModuleType, active: int) -> None:
        if active == scard.SCARD_PROTOCOL_T1:
            self._active, self._pci = Protocol.T1, scard.SCARD_PCI_T1
        else:
            self._active, self._pci = Protocol.T0, scard.SCARD_PCI_T0

    def _read_atr(self, scard: ModuleType) -> bytes:
        hresult, _name, _state, _protocol, atr = scard.SCardStatus(self._card)
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(_message(scard, hresult, self.name))
        return bytes(atr)

    def _reconnect(self, cold: bool) -> bytes:
        if self._card is None:
            return self.connect()
        scard = _scard()
        share = scard.SCARD_SHARE_EXCLUSIVE if self._exclusive else scard.SCARD_SHARE_SHARED
        init = scard.SCARD_UNPOWER_CARD if cold else scard.SCARD_RESET_CARD
        hresult, active = scard.SCardReconnect(self._card, share, self._preferred(scard), init)
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(_message(scard, hresult, self.name))
        self._set_protocol(scard, active)
        self._atr = self._read_atr(scard)
        return self._atr

    def __repr__(self) -> str:
        state = f"{self._active.value}" if self._active else "disconnected"
        return f"PcscReader({self.name!r}, {state})"
