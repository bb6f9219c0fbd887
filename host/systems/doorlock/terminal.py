"""Seed 001's host programs: the door-lock controller and the phone, and the short-range link.

Each drives its own SIM and neither sees a key: what crosses the link and the
controller's HTTP is the chips' challenges, answers, certificates and the
lock chip's signed download request. Each opens a logical channel to its
SIM's door-lock applet (as a phone's OMAPI does, ISO/IEC 7816-4 §11.1.2),
leaving the basic channel to the UICC's telecom side.

Messages on the link (BER-TLV; the seed names the link "short-range wireless",
BLE or NFC):

- controller → phone `E0 { 80 method, 7C challenge }`: authentication
  information requested (S102, S202);
- phone → controller `7C answer` (S105), or `E2 { 80 status word, A2 { phone
  identifiers } }`: "no applet" (S205, with what the phone knows itself by);
- controller → phone `E3 { 80 verdict (01 unlocked, 00 refused), 81 reason,
  [7C the lock's own answer] }` (S109 / S110);
- phone → controller `E4 { 80 01 the lock is authentic / 00 not }`.

`InProcessLink` carries them through the scenario's `LocalLink` (recorded,
faults applied); `TcpLink` and `PhoneLinkServer` over loopback TCP, each
message a 2-byte big-endian length and the payload, when the phone runs apart.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from card import tlv
from host.errors import ApduError
from host.readers.base import Reader
from host.systems.doorlock.card import (
    Decision,
    DoorLockCard,
    Identifiers,
    SimIdentity,
)
from host.systems.repository.card import ChannelReader, open_channel
from host.systems.scenario import StepHook

__all__ = [
    "DownloadFailed",
    "HttpUplink",
    "SmsUplink",
    "InProcessLink",
    "Link",
    "LockController",
    "PhoneHost",
    "PhoneLinkServer",
    "Presentation",
    "TcpLink",
    "serve_link",
]


def _no_step(interface: str, function: str, detail: str) -> None:
    return None


class LinkError(Exception):
    """The link dropped a message, or the other side answered nonsense."""


class DownloadFailed(Exception):
    """The server answered the download request, but the install did not complete."""


class Link(Protocol):
    """The controller's side of the short-range link to one phone."""

    def exchange(
        self, payload: bytes, meaning: str, sent: Callable[[], object] | None = None
    ) -> bytes:
        """Send `payload`; `sent` is called once it is on its way; the phone's answer."""
        ...


def close_channel(reader: Reader, channel: int) -> None:
    """MANAGE CHANNEL close (ISO/IEC 7816-4 §11.1.2); a refusal is ignored."""
    reader.transmit(
        bytes((channel & 0x03 if channel < 4 else 0x40 | (channel - 4), 0x70, 0x80, channel))
    )


class PhoneHost:
    """The phone: answers the lock through its SIM's door-lock applet.

    Args:
        reader: its SIM.
        imei: the phone's IMEI.
        on_step: told (interface, function, detail) as each seed step completes.
    """

    def __init__(self, reader: Reader, *, imei: str, on_step: StepHook | None = None) -> None:
        from host.usim import UsimSession

        self.reader = reader
        self.imei = imei
        self.on_step = on_step or _no_step
        info = UsimSession(reader).read()
        if info.iccid is None or info.imsi is None or info.msisdn is None:
            raise ValueError("the phone's SIM does not give its ICCID, IMSI and MSISDN")
        self.sim = SimIdentity(info.iccid, info.imsi, info.msisdn)
        self._card: DoorLockCard | None = None
        self._channel = 0
        #: what the phone learnt of the last presentation (its screen)
        self.last: dict[str, Any] = {}

    def identifiers(self) -> Identifiers:
        return Identifiers(imei=self.imei, sim=self.sim)

    def _open(self) -> DoorLockCard:
        """A logical channel with the applet selected; ApduError 6A82 when it is absent."""
        self._close()
        channel = open_channel(self.reader)
        card = DoorLockCard(ChannelReader(self.reader, channel))
        try:
            card.select()
        except ApduError:
            close_channel(self.reader, channel)
            raise
        self._card, self._channel = card, channel
        return card

    def _close(self) -> None:
        if self._card is not None:
            close_channel(self.reader, self._channel)
            self._card = None

    def handle(self, message: bytes) -> bytes:
        """One message from the lock; the answer to send back."""
        obj = tlv.Tlv.from_bytes(message)
        if obj.tag == 0xE0:
            method_obj, challenge = obj.find(0x80), obj.find(0x7C)
            if method_obj is None or challenge is None:
                raise LinkError("E0 needs 80 and 7C")
            method = method_obj.value[0]
            try:
                card = self._open()
            except ApduError as e:
                if e.sw != 0x6A82:
                    raise
                self.on_step(
                    "phone-sim", "absent", "SELECT door-lock applet: 6A82, not on this SIM"
                )
                ids = self.identifiers().tlvs()
                return tlv.build(0xE2, [(0x80, e.sw.to_bytes(2, "big")), (0xA2, ids)])
            answer = card.answer(method, challenge.to_bytes())
            self.on_step("phone-sim", "answer", f"method {method:02X}: {len(answer)} bytes")
            return answer
        if obj.tag == 0xE3:
            verdict, reason, proof = obj.find(0x80), obj.find(0x81), obj.find(0x7C)
            unlocked = verdict is not None and verdict.value == b"\x01"
            authentic = False
            if unlocked and proof is not None and self._card is not None:
                method = self.last.get("method", 1)
                authentic = self._card.check_lock(method, proof.to_bytes())
            self._close()
            self.last.update(
                unlocked=unlocked,
                reason=reason.value.decode() if reason is not None else "",
                lock_authentic=authentic,
            )
            return tlv.build(0xE4, [(0x80, b"\x01" if authentic else b"\x00")])
        raise LinkError(f"unknown message {obj.tag:X}")

    def handle_request(self, message: bytes) -> bytes:
        """`handle`, remembering the method of an authentication request (for the lock's answer)."""
        obj = tlv.Tlv.from_bytes(message)
        if obj.tag == 0xE0 and (m := obj.find(0x80)) is not None:
            self.last = {"method": m.value[0]}
        return self.handle(message)


@dataclass
class Presentation:
    """One presentation of a phone at the door, as the controller saw it."""

    method: int
    decision: Decision | None = None
    lock_authentic: bool = False
    download: dict[str, Any] | None = None
    error: str = ""

    @property
    def unlocked(self) -> bool:
        return self.decision is not None and self.decision.unlock

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "unlocked": self.unlocked,
            "decision": self.decision.to_json() if self.decision is not None else None,
            "lock_authentic": self.lock_authentic,
            "download": self.download,
            "error": self.error,
        }


class LockController:
    """The door-lock controller: its SIM's applet decides, the controller carries and obeys.

    Args:
        reader: the lock's SIM.
        ams: how requests reach the application management server (`HttpUplink`,
            `SmsUplink`; None: never).
        on_step: told (interface, function, detail) as each seed step completes.
        actuator: called when the chip says unlock (the door-lock opening unit 24).
        fetch_wait: after a download request whose outcome the controller cannot
            see (sent by SMS), how long it keeps asking the phone (once a second)
            until the phone answers with its new applet.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        ams: Any = None,
        on_step: StepHook | None = None,
        actuator: Callable[[], None] | None = None,
        fetch_wait: float = 0.0,
    ) -> None:
        self.reader = reader
        self.fetch_wait = fetch_wait
        self.ams = ams
        self.on_step = on_step or _no_step
        self.actuator = actuator
        channel = open_channel(reader)
        self.card = DoorLockCard(ChannelReader(reader, channel))
        self.card.select()
        self.opened = 0

    def present(self, link: Link, method: int) -> Presentation:
        """A phone held to the door (S101): authenticate it, fetching its applet if it lacks one."""
        step = self.on_step
        result = Presentation(method)
        step("link", "detect", "a phone is near")
        reply = self.ask(link, method)
        obj = tlv.Tlv.from_bytes(reply)
        if obj.tag == 0xE2:
            step("link", "absent", "the phone's SIM has no applet")
            result.download = self._fetch_applet(obj)
            deadline = time.monotonic() + self.fetch_wait
            while True:
                reply = self.ask(link, method)
                obj = tlv.Tlv.from_bytes(reply)
                if obj.tag != 0xE2 or time.monotonic() >= deadline:
                    break
                time.sleep(1.0)
        if obj.tag != 0x7C:
            raise LinkError(f"the phone answered {obj.tag:X}, not 7C")
        step("link", "answer", f"the phone's authentication information, {len(reply)} bytes")
        decision = self.card.collate(method, reply)
        result.decision = decision
        step(
            "lock-sim",
            "collate",
            "match: unlock" if decision.unlock else f"no match: {decision.reason}",
        )
        if decision.unlock:
            self.opened += 1
            if self.actuator is not None:
                self.actuator()
        verdict: list[Any] = [
            (0x80, b"\x01" if decision.unlock else b"\x00"),
            (0x81, decision.reason.encode()),
        ]
        if decision.proof:
            verdict.append(decision.proof)
        ack = tlv.Tlv.from_bytes(link.exchange(tlv.build(0xE3, verdict), "verdict"))
        seen = ack.find(0x80)
        result.lock_authentic = seen is not None and seen.value == b"\x01"
        if decision.unlock:
            detail = "door unlocked; " + (
                "the phone's chip checked the lock" if result.lock_authentic else "lock unchecked"
            )
            step("lock", "unlock", detail)
        else:
            step("lock", "error", f"authentication error to the phone: {decision.reason}")
        return result

    def ask(self, link: Link, method: int) -> bytes:
        """S102-S105: a challenge from the lock's chip to the phone; the phone's reply."""
        challenge = self.card.challenge(method)
        message = tlv.build(0xE0, [(0x80, bytes((method,))), tlv.Tlv.from_bytes(challenge)])
        return link.exchange(
            message,
            "authentication information requested",
            sent=lambda: self.on_step("lock-sim", "request", f"challenge, method {method:02X}"),
        )

    def _fetch_applet(self, absent: tlv.Tlv) -> dict[str, Any]:
        """S206-S209: the chip's signed request to the server; the server installs the applet."""
        ids = absent.find(0xA2)
        if ids is None:
            raise LinkError("E2 needs A2")
        if self.ams is None:
            raise LinkError("no application management server to ask")
        answer = self.ams.request_download(self.card, ids.value, self.on_step)
        self.on_step("ams", "download", f"{answer['device_id']}: {answer['outcome']}")
        if answer.get("outcome") not in ("installed", "requested"):
            raise DownloadFailed(f"the server could not install the applet: {answer}")
        return answer


class HttpUplink:
    """The controller carries the chip's request to the server over HTTPS.

    `POST /download-requests`: the server answers with the download's outcome.

    Args:
        client: a JSON client to the application management server.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def request_download(
        self, card: DoorLockCard, phone: bytes, on_step: StepHook
    ) -> dict[str, Any]:
        request = card.download_request(phone)
        on_step("lock-sim", "download_request", f"signed request, {len(request)} bytes")
        answer: dict[str, Any] = self.client.request(
            "POST", "/download-requests", {"request": request.hex()}
        )
        return answer


class SmsUplink:
    """The lock's chip sends its request itself, by SMS through the SIM toolkit.

    The card queues SEND SHORT MESSAGE; the controller's modem (its reader is
    a `ToolkitReader`) performs it. The server answers the phone, not the lock:
    `await_result` says how it went when the caller can tell (in-process, the
    network's turn), else the controller simply asks the phone again.

    Args:
        await_result: runs the network until the server has handled the request;
            returns the server's results (None: nothing to report).
        modem: the controller's modem (`host.ota.ToolkitTerminal`); given, S206
            (the chip signs and hands the message to its modem) is reported when
            the modem has fetched SEND SHORT MESSAGE, so the submission to the SMS
            centre is S207's; else once the whole exchange is over.
    """

    def __init__(
        self,
        await_result: Callable[[], list[Any] | None] | None = None,
        *,
        modem: Any = None,
    ) -> None:
        self.await_result = await_result
        self.modem = modem

    def request_download(
        self, card: DoorLockCard, phone: bytes, on_step: StepHook
    ) -> dict[str, Any]:
        from card.ota.cat import CommandType

        fetched: list[bool] = []

        def before(command: Any) -> None:
            if command.type == CommandType.SEND_SHORT_MESSAGE and not fetched:
                fetched.append(True)
                on_step(
                    "lock-sim",
                    "download_request",
                    "signed request; the modem fetched SEND SHORT MESSAGE",
                )

        if self.modem is not None:
            self.modem.on_proactive = before
        try:
            card.send_download_request(phone)
        finally:
            if self.modem is not None:
                self.modem.on_proactive = None
        if not fetched:
            on_step("lock-sim", "download_request", "signed request, sent by SMS")
        results = self.await_result() if self.await_result is not None else None
        if not results:
            # Without a view of the network: sent, the outcome is the phone's to show.
            return {"device_id": "?", "outcome": "requested" if results is None else "none"}
        last = results[-1]
        if isinstance(last, Exception):
            return {"device_id": "?", "outcome": f"refused: {last}"}
        out: dict[str, Any] = last.to_json()
        return out


class InProcessLink:
    """The link to a phone in this process, through a recorded `LocalLink` (or none)."""

    def __init__(
        self,
        phone: PhoneHost,
        local: Any = None,
        *,
        controller: str = "lock-controller",
        phone_name: str = "phone",
    ) -> None:
        self.phone = phone
        self.local = local
        self.controller, self.phone_name = controller, phone_name

    def exchange(
        self, payload: bytes, meaning: str, sent: Callable[[], object] | None = None
    ) -> bytes:
        arrived = payload
        if self.local is not None:
            arrived = self.local.send(self.controller, payload, meaning)
            if arrived is None:
                raise LinkError(f"{meaning}: lost on the link")
        if sent is not None:
            sent()
        reply = self.phone.handle_request(arrived)
        if self.local is not None:
            back = self.local.send(self.phone_name, reply, f"reply to: {meaning}")
            if back is None:
                raise LinkError(f"the reply to {meaning} was lost on the link")
            return back
        return reply


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        part = sock.recv(n - len(out))
        if not part:
            raise LinkError("the link closed")
        out += part
    return out


def _frame(payload: bytes) -> bytes:
    if len(payload) > 0xFFFF:
        raise LinkError("a link message is at most 65,535 bytes")
    return len(payload).to_bytes(2, "big") + payload


class TcpLink:
    """The controller's end of the link over loopback TCP (the phone's `PhoneLinkServer`)."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def on_socket(cls, sock: socket.socket) -> TcpLink:
        """The controller's end on a connection it accepted (the phone dialled the lock)."""
        link = cls.__new__(cls)
        link.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return link

    def exchange(
        self, payload: bytes, meaning: str, sent: Callable[[], object] | None = None
    ) -> bytes:
        self.sock.sendall(_frame(payload))
        if sent is not None:
            sent()
        size = int.from_bytes(_recv_exact(self.sock, 2), "big")
        return _recv_exact(self.sock, size)

    def close(self) -> None:
        self.sock.close()


def serve_link(sock: socket.socket, phone: PhoneHost, lock: threading.Lock | None = None) -> None:
    """The phone's end of one TCP connection: each message to `phone`, until the lock hangs up."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    guard = lock or threading.Lock()
    try:
        while True:
            size = int.from_bytes(_recv_exact(sock, 2), "big")
            message = _recv_exact(sock, size)
            with guard:  # one SIM: one exchange at a time
                reply = phone.handle_request(message)
            sock.sendall(_frame(reply))
    except (LinkError, ConnectionError):
        return


class PhoneLinkServer:
    """The phone's end of the TCP link: each message to `phone.handle_request`, on loopback.

    Use as a context manager; `port` is bound at construction (0: a free one).
    """

    def __init__(self, phone: PhoneHost, host: str = "127.0.0.1", port: int = 0) -> None:
        from host.servers.web import check_bind_host

        check_bind_host(host)
        lock = threading.Lock()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                serve_link(self.request, phone, lock)

        self.server = socketserver.ThreadingTCPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> PhoneLinkServer:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
