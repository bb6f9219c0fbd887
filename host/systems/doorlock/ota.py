"""Seed 001 over the air: the server's scripts as SMS-PP secured packets, the lock's request by SMS.

ETSI TS 102 225/226 and 3GPP TS 31.115 as `card.ota` and `host.ota` implement
them; the SMS centre is the stand-in role `host.servers.smsc`.

- `SmsGateway`: the server's short-message address at the SMS centre. Its
  inbox holds two kinds of message: proofs of receipt (a response packet,
  UDH IEI 71, sent by the card with SPI b6 set) and the lock chips' download
  requests (8-bit data, `E1 ...`); the gateway sorts them.
- `OtaDelivery` (an `AppletDelivery`): the install script as RAM commands in
  the expanded format (TS 102 226 §5.1.2) for the ISD's TAR 000000, secured
  under the SIM's SCP80 key set (ciphering, cryptographic checksum, counter),
  cut into concatenated SMS-PP and submitted for the SIM's MSISDN; the clean-up
  DELETE goes first in a packet of its own (a script stops at its first
  error, and 6A88 there only says there was nothing to delete). The PoR of
  each packet (checked under the key set) gives the card's status word per
  command: the receipt.

The lock controller reaches its SIM through `host.ota.ToolkitReader`: when
the card ends a command with 91xx the modem (`ToolkitTerminal`) fetches and
performs the proactive command (the chip's SEND SHORT MESSAGE) first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field

from card.apdu import CommandApdu
from card.ota import sms
from card.ota.scp80 import OtaKeyset, PacketError, SecurityError, Spi
from host.ota import OtaSender, RamScript
from host.ota.sender import ProofOfReceipt
from host.servers.smsc import SmscClient
from host.servers.web import Store
from host.systems.doorlock.card import DELETE_ABSENT_OK, InstallScript
from host.systems.doorlock.delivery import DeliveryError, Receipt

__all__ = ["AMS_ADDRESS", "OtaDelivery", "SmsGateway", "SmsPoller", "StoredCounters"]

log = logging.getLogger(__name__)

#: The application management server's short code at the SMS centre.
AMS_ADDRESS = "12345"


@dataclass
class SmsGateway:
    """The server's inbox at the SMS centre, sorted: PoRs by sender, requests in order."""

    smsc: SmscClient
    address: str = AMS_ADDRESS
    pors: dict[str, list[bytes]] = field(default_factory=dict)
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def poll(self) -> None:
        with self._lock:
            for sender, tpdu in self.smsc.inbox(self.address):
                try:
                    deliver = sms.SmsDeliver.from_bytes(tpdu)
                except sms.SmsError:
                    continue  # not for us to read
                ud = deliver.user_data
                if deliver.udhi and ud[1:2] == b"\x71":  # TS 31.115 §4: a response packet
                    self.pors.setdefault(sender, []).append(ud)
                else:
                    self.requests.append((sender, ud))

    def take_por(self, msisdn: str) -> bytes | None:
        with self._lock:
            self.poll()
            waiting = self.pors.get(msisdn)
            return waiting.pop(0) if waiting else None

    def take_requests(self) -> list[tuple[str, bytes]]:
        with self._lock:
            self.poll()
            out, self.requests = self.requests, []
            return out


class SmsPoller:
    """The server reading its short messages every `interval` seconds (a daemon thread).

    Args:
        handle: what to run each time (`AppManagementServer.poll_sms` with the gateway).
    """

    def __init__(self, handle: Callable[[], object], interval: float = 1.0) -> None:
        self.handle = handle
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="doorlock-ams-sms", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.handle()
            except Exception:  # noqa: BLE001 - an SMSC that is down now may be back later
                log.warning("polling the SMS centre failed", exc_info=True)

    def start(self) -> SmsPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class OtaDelivery:
    """Install scripts over the air, through the SMS centre (see the module docstring).

    Args:
        gateway: the server's address at the SMS centre.
        msisdn_of: a device's MSISDN (None: unknown).
        keyset_of: the SCP80 key set of a device's SIM (the operator's).
        page: tells the device's terminal a message waits (in a real network the
            SMS centre pushes it); None: the terminal polls on its own.
        timeout: seconds to wait for a proof of receipt.
        counters: where the last counter sent to each device is kept (default: in
            memory). A server that restarts must keep them (`StoredCounters`): a
            SIM refuses a packet whose counter is not above the last it took
            (TS 102 225 §5.1.1), so a restarted server counting from 0 again
            could never reach it.
    """

    path = "ota-sms-pp"

    def __init__(
        self,
        gateway: SmsGateway,
        *,
        msisdn_of: Callable[[str], str | None],
        keyset_of: Callable[[str], OtaKeyset],
        page: Callable[[str], None] | None = None,
        timeout: float = 10.0,
        counters: MutableMapping[str, int] | None = None,
    ) -> None:
        self.gateway = gateway
        self.msisdn_of = msisdn_of
        self.keyset_of = keyset_of
        self.page = page
        self.timeout = timeout
        #: the last counter sent to each device (TS 102 225 §5.1.1: it must rise)
        self.counters: MutableMapping[str, int] = counters if counters is not None else {}

    def deliver(self, device: str, script: InstallScript) -> Receipt:
        msisdn = self.msisdn_of(device)
        if msisdn is None:
            raise DeliveryError(f"no MSISDN for {device}")
        sender = OtaSender(
            self.keyset_of(device),
            spi=Spi(por_by_submit=True),
            counter=self.counters.get(device, 0),
            originator=sms.Address(self.gateway.address, 0x81),
        )
        statuses: list[int] = []
        expected = len(script.commands())
        for commands, tolerated in (
            (script.cleanup(), DELETE_ABSENT_OK),
            (script.install_commands(), None),
        ):
            if not commands:
                continue
            ram = RamScript([CommandApdu.from_bytes(c) for c in commands])
            message = sender.secure(ram.expanded())
            self.counters[device] = sender.counter
            for tpdu in message.tpdus:
                ud = sms.SmsDeliver.from_bytes(tpdu).user_data
                self.gateway.smsc.submit(self.gateway.address, msisdn, ud)
            if self.page is not None:
                try:
                    self.page(device)
                except Exception as e:  # noqa: BLE001 - the device's side failed: no receipt
                    detail = f"the device did not take the message: {type(e).__name__}: {e}"
                    return Receipt(device, self.path, tuple(statuses), expected, detail)
            try:
                por = self._await_por(msisdn, sender)
            except (sms.SmsError, PacketError, SecurityError) as e:
                return Receipt(device, self.path, tuple(statuses), expected, f"bad PoR: {e}")
            if por is None:
                return Receipt(device, self.path, tuple(statuses), expected, "no proof of receipt")
            if not por.packet.ok:
                return Receipt(
                    device, self.path, tuple(statuses), expected,
                    f"PoR status {por.status!r}", len(statuses),
                )  # fmt: skip
            for n, (_, sw) in enumerate(por.responses):
                statuses.append(sw)
                if sw != 0x9000 and sw != tolerated:
                    detail = f"command {len(statuses)} refused: {sw:04X}"
                    return Receipt(device, self.path, tuple(statuses), expected, detail, n)
            if len(por.responses) != len(commands):
                return Receipt(device, self.path, tuple(statuses), expected, "script cut short")
        return Receipt(device, self.path, tuple(statuses), expected)

    def _await_por(self, msisdn: str, sender: OtaSender) -> ProofOfReceipt | None:
        """The PoR of the packet just sent (its counter); older ones are dropped.

        A PoR of an earlier packet can still be waiting: one a server that died
        before reading it left behind. Its counter says it is not this one's.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            raw = self.gateway.take_por(msisdn)
            if raw is not None:
                por = sender.open_por(raw)
                if por.packet.counter == sender.counter:
                    return por
                log.info("a stale proof of receipt (counter %d) dropped", por.packet.counter)
                continue
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


class StoredCounters(MutableMapping[str, int]):
    """The SCP80 counters last sent, per device, in the server's SQLite store."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS ota_counters (device_id TEXT PRIMARY KEY, "
        "counter INTEGER NOT NULL)"
    )

    def __init__(self, store: Store) -> None:
        self.store = store
        store.apply_schema(self.SCHEMA)  # its types mapped on PostgreSQL

    def __getitem__(self, device: str) -> int:
        sql = "SELECT counter FROM ota_counters WHERE device_id = ?"
        row = self.store.query_one(sql, (device,))
        if row is None:
            raise KeyError(device)
        return int(row["counter"])

    def __setitem__(self, device: str, counter: int) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO ota_counters VALUES (?, ?) ON CONFLICT(device_id) "
                "DO UPDATE SET counter = excluded.counter",
                (device, counter),
            )

    def __delitem__(self, device: str) -> None:
        with self.store.transaction() as c:
            c.execute("DELETE FROM ota_counters WHERE device_id = ?", (device,))

    def __iter__(self) -> Iterator[str]:
        rows = self.store.query("SELECT device_id FROM ota_counters")
        return iter([r["device_id"] for r in rows])

    def __len__(self) -> int:
        return len(list(self))
