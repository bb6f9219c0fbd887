"""A scenario's emulated card served through the real PC/SC stack (pcscd + vpcd + pyscard).

`served_card(runtime)` connects the card to vpcd's slot as its client (in a
thread of this process, so tears still reach its NVM), uses the running
pcscd or starts one of its own (stopped after, by its PID), and yields a
`PcscReader` on "Virtual PCD 00 NN".
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["PcscUnavailable", "check_pcsc", "served_card"]

VPCD_CONFIGS = ("/etc/reader.conf.d/vpcd", "/usr/local/etc/reader.conf.d/vpcd")


class PcscUnavailable(RuntimeError):
    """The PC/SC stack is not there: pcscd, vsmartcard-vpcd or pyscard missing, or busy."""


def check_pcsc() -> None:
    """Check that pcscd, vsmartcard's vpcd and pyscard are here.

    Raises:
        PcscUnavailable: what is missing, and how to install it.
    """
    if shutil.which("pcscd") is None:
        raise PcscUnavailable("pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)")
    if not any(Path(p).exists() for p in VPCD_CONFIGS):
        raise PcscUnavailable(
            "vsmartcard's vpcd is not installed (apt-get install vsmartcard-vpcd)"
        )
    if importlib.util.find_spec("smartcard") is None:
        raise PcscUnavailable("pyscard is not installed (pip install 'cardemu[pcsc]')")


def _slot_state(reader: str) -> str:
    """ "empty", "busy" (a card is in it) or "absent" (pcscd does not list it)."""
    scard: Any = importlib.import_module("smartcard.scard")
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return "absent"
    try:
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE, [])]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            return "absent"
        return "busy" if states[0][1] & scard.SCARD_STATE_PRESENT else "empty"
    finally:
        scard.SCardReleaseContext(context)


@contextmanager
def served_card(card: Any, slot: int = 0, timeout: float = 15.0) -> Iterator[Any]:
    """Serve `card` (a `CardRuntime`) on vpcd's slot; yield a connected `PcscReader`.

    Raises:
        PcscUnavailable: the stack is missing or the card did not appear in time.
    """
    check_pcsc()
    from host.readers.base import ReaderError
    from host.readers.pcsc import PcscReader
    from host.vpcd import Pcscd, PcscdError, VpcdClient, local_pcscd_pids, port_for_slot

    name = f"Virtual PCD 00 {slot:02d}"
    daemon: Pcscd | None = None
    if not local_pcscd_pids():
        daemon = Pcscd()
        try:
            daemon.start(wait_for=name)
        except PcscdError as e:
            raise PcscUnavailable(str(e)) from None
    elif _slot_state(name) != "empty":
        # Someone else's pcscd: use its vpcd slot only when it is there and free.
        raise PcscUnavailable(f"another pcscd is running and '{name}' is {_slot_state(name)}")
    client = VpcdClient(card, port=port_for_slot(slot))
    reader: PcscReader | None = None
    try:
        client.run_in_thread()
        deadline = time.monotonic() + timeout
        while True:
            candidate = PcscReader(name)
            try:
                candidate.connect()
                reader = candidate
                break
            except ReaderError as e:
                if time.monotonic() > deadline:
                    raise PcscUnavailable(f"{name}: the card did not appear ({e})") from None
                time.sleep(0.1)
        yield reader
    finally:
        if reader is not None:
            try:
                reader.disconnect()
            except ReaderError:
                pass
        client.stop()
        if daemon is not None:
            daemon.stop()
