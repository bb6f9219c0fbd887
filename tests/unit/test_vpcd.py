"""VpcdClient against a stand-in for vpcd: framing, control codes, reconnection, stop."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.vpcd import (
    CTRL_ATR,
    CTRL_POWER_OFF,
    CTRL_POWER_ON,
    CTRL_RESET,
    EchoCard,
    VpcdClient,
    VpcdEvent,
    port_for_slot,
)

ROOT = Path(__file__).resolve().parents[2]


class RecordingCard:
    """A card that answers a fixed response and remembers everything it was told."""

    def __init__(self, atr: bytes = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")):
        self._atr = atr
        self.calls: list[str] = []
        self.apdus: list[bytes] = []
        self.response: bytes = b"\x90\x00"
        self.raise_on_process = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self.calls.append("on")
        return self._atr

    def power_off(self) -> None:
        self.calls.append("off")

    def reset(self) -> bytes:
        self.calls.append("reset")
        return self._atr

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        if self.raise_on_process:
            raise RuntimeError("card bug")
        return self.response


class FakeVpcd:
    """The reader side of the protocol, written like Debian 12's vpcd.

    Length and payload go out in two send() calls on a socket without
    TCP_NODELAY, which is what makes TCP_QUICKACK matter on the card side.
    """

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 5.0) -> None:
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(timeout)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big"))
        self.conn.sendall(payload)

    def recv(self) -> bytes:
        header = self._exact(2)
        return self._exact(int.from_bytes(header, "big"))

    def _exact(self, n: int) -> bytes:
        assert self.conn is not None
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("card closed the connection")
            buf += chunk
        return buf

    def transmit(self, apdu: bytes) -> bytes:
        self.send(apdu)
        return self.recv()

    def control(self, code: int) -> None:
        self.send(bytes([code]))

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.server.close()


class EventLog(list):
    """An on_event callback that keeps what it was told."""

    def __call__(self, event: VpcdEvent) -> None:
        self.append(event)


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def card() -> RecordingCard:
    return RecordingCard()


@pytest.fixture
def served(vpcd: FakeVpcd, card: RecordingCard) -> Iterator[tuple[FakeVpcd, VpcdClient]]:
    events = EventLog()
    client = VpcdClient(card, port=vpcd.port, on_event=events, retry_interval=0.05)
    client.run_in_thread()
    vpcd.accept()
    assert client.wait_connected(5)  # the thread has finished setting up its side
    yield vpcd, client
    client.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ports_of_the_two_slots() -> None:
    assert port_for_slot(0) == 35963
    assert port_for_slot(1) == 35964
    with pytest.raises(ValueError):
        port_for_slot(-1)


def test_atr_request_is_answered_with_the_card_atr(served, card) -> None:
    vpcd, _ = served
    vpcd.send(bytes([CTRL_ATR]))
    assert vpcd.recv() == card.atr
    # Asked again (pcscd polls presence this way): same answer, and no power change.
    vpcd.send(bytes([CTRL_ATR]))
    assert vpcd.recv() == card.atr
    assert card.calls == []


def test_control_codes_reach_the_card_and_get_no_reply(served, card) -> None:
    vpcd, client = served
    for code in (CTRL_POWER_ON, CTRL_RESET, CTRL_POWER_OFF, CTRL_POWER_ON):
        vpcd.control(code)
    # Had any control code been answered, this reply would be out of step.
    assert vpcd.transmit(bytes.fromhex("00A4040000")) == b"\x90\x00"
    assert card.calls == ["on", "reset", "off", "on"]
    assert client.on_event == [
        VpcdEvent.CONNECTED,
        VpcdEvent.POWER_ON,
        VpcdEvent.RESET,
        VpcdEvent.POWER_OFF,
        VpcdEvent.POWER_ON,
    ]


@pytest.fixture(scope="module")
def shared_pair() -> Iterator[tuple[FakeVpcd, RecordingCard]]:
    """One connection for all the examples of a property test."""
    card = RecordingCard()
    vpcd = FakeVpcd()
    client = VpcdClient(card, port=vpcd.port)
    client.run_in_thread()
    vpcd.accept()
    yield vpcd, card
    client.stop()
    vpcd.close()


@settings(max_examples=150, deadline=None)
@given(apdu=st.binary(min_size=2, max_size=700), response=st.binary(min_size=1, max_size=700))
def test_apdus_round_trip_byte_for_byte(shared_pair, apdu: bytes, response: bytes) -> None:
    vpcd, card = shared_pair
    card.response = response
    card.apdus.clear()
    assert vpcd.transmit(apdu) == response
    assert card.apdus == [apdu]


def test_empty_response_becomes_6f00(served, card) -> None:
    vpcd, _ = served
    card.response = b""
    assert vpcd.transmit(bytes.fromhex("00B0000000")) == b"\x6f\x00"


def test_oversized_response_becomes_6f00(served, card) -> None:
    vpcd, _ = served
    card.response = bytes(0x10000)
    assert vpcd.transmit(bytes.fromhex("00B0000000")) == b"\x6f\x00"


def test_card_exception_becomes_6f00_and_serving_goes_on(served, card) -> None:
    vpcd, client = served
    card.raise_on_process = True
    assert vpcd.transmit(bytes.fromhex("00B0000000")) == b"\x6f\x00"
    card.raise_on_process = False
    assert vpcd.transmit(bytes.fromhex("00B0000000")) == b"\x90\x00"
    assert client.apdu_count == 2
    assert client.connection_count == 1


def test_unknown_single_byte_goes_to_the_card(served, card) -> None:
    vpcd, _ = served
    card.response = b"\x67\x00"
    assert vpcd.transmit(b"\x80") == b"\x67\x00"
    assert card.apdus == [b"\x80"]


def test_reconnects_when_vpcd_drops_the_card(served, card) -> None:
    vpcd, client = served
    assert vpcd.transmit(b"\x00\xa4\x00\x00") == b"\x90\x00"
    vpcd.drop()
    vpcd.accept()
    assert vpcd.transmit(b"\x00\xa4\x00\x00") == b"\x90\x00"
    assert client.connection_count == 2
    assert client.on_event.count(VpcdEvent.DISCONNECTED) == 1
    assert client.on_event.count(VpcdEvent.CONNECTED) == 2


def test_waits_for_vpcd_to_start_listening(card) -> None:
    port = free_port()
    client = VpcdClient(card, port=port, retry_interval=0.05)
    client.run_in_thread()
    try:
        time.sleep(0.3)  # several refused attempts
        assert not client.connected
        vpcd = FakeVpcd(port)
        try:
            vpcd.accept()
            vpcd.send(bytes([CTRL_ATR]))
            assert vpcd.recv() == card.atr
            assert client.wait_connected(2)
        finally:
            vpcd.close()
    finally:
        client.stop()


def test_stop_while_connected_closes_the_socket_promptly(served) -> None:
    vpcd, client = served
    thread = client._thread
    started = time.monotonic()
    client.stop()
    assert time.monotonic() - started < 2
    assert thread is not None and not thread.is_alive()
    assert not client.connected
    assert vpcd.conn is not None and vpcd.conn.recv(1) == b""  # vpcd sees the card leave
    assert client.on_event[-1] is VpcdEvent.DISCONNECTED


def test_stop_while_retrying_returns_promptly(card) -> None:
    client = VpcdClient(card, port=free_port(), retry_interval=0.05)
    thread = client.run_in_thread()
    time.sleep(0.1)
    client.stop()
    assert not thread.is_alive()


def test_can_serve_again_after_stop(vpcd, card) -> None:
    client = VpcdClient(card, port=vpcd.port, retry_interval=0.05)
    for _ in range(2):
        client.run_in_thread()
        vpcd.accept()
        assert vpcd.transmit(b"\x00\xa4\x00\x00") == b"\x90\x00"
        client.stop()
        vpcd.drop()
    assert client.connection_count == 2


def _timed_exchanges(quickack: bool, n: int = 20) -> float:
    """Seconds for n APDUs after warm-up, against a two-write vpcd."""
    vpcd = FakeVpcd()
    client = VpcdClient(EchoCard(), port=vpcd.port, quickack=quickack)
    client.run_in_thread()
    try:
        vpcd.accept()
        # Linux acks the first segments of a connection at once whatever the
        # flag; the stall appears once the flow is judged interactive.
        for _ in range(20):
            vpcd.transmit(bytes.fromhex("00A4000C023F00"))
        started = time.perf_counter()
        for _ in range(n):
            assert vpcd.transmit(bytes.fromhex("00A4000C023F00")) == b"\x3f\x00\x90\x00"
        return time.perf_counter() - started
    finally:
        client.stop()
        vpcd.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux-only")
def test_quickack_removes_the_delayed_ack_stall() -> None:
    # 20 exchanges take ~2 ms with QUICKACK and ~880 ms (44 ms each) without:
    # the bound sits between the two with a wide margin either side.
    assert _timed_exchanges(quickack=True) < 0.4
    assert _timed_exchanges(quickack=False) > 0.4  # the stand-in really reproduces the stall


def test_echo_card_echoes_short_command_data() -> None:
    card = EchoCard()
    assert card.power_on() == card.atr == bytes.fromhex("3B800101")
    assert card.process(bytes.fromhex("00A4000C023F00")) == bytes.fromhex("3F009000")
    assert card.process(bytes.fromhex("00A4040000")) == b"\x90\x00"
    assert card.process(bytes.fromhex("00B00000")) == b"\x90\x00"
    # Lc longer than the data present: nothing to echo.
    assert card.process(bytes.fromhex("00D6000005AABB")) == b"\x90\x00"


def test_serve_until_signalled_stops_cleanly_on_sigterm(vpcd) -> None:
    code = (
        "import sys; from host.vpcd import *; "
        f"c = VpcdClient(EchoCard(), port={vpcd.port}); serve_until_signalled(c); "
        "print('stopped', c.apdu_count)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        vpcd.accept(timeout=10)
        assert vpcd.transmit(b"\x00\xa4\x00\x00") == b"\x90\x00"
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.strip() == "stopped 1"


def test_on_event_exceptions_do_not_stop_serving(vpcd, card) -> None:
    def boom(event: VpcdEvent) -> None:
        raise ValueError(event)

    client = VpcdClient(card, port=vpcd.port, on_event=boom)
    client.run_in_thread()
    try:
        vpcd.accept()
        vpcd.control(CTRL_POWER_ON)
        assert vpcd.transmit(b"\x00\xa4\x00\x00") == b"\x90\x00"
        assert card.calls == ["on"]
    finally:
        client.stop()


def test_traffic_is_logged_at_level_5(served, card, caplog) -> None:
    vpcd, _ = served
    caplog.set_level(5, logger="host.vpcd")
    vpcd.transmit(bytes.fromhex("00A4000C023F00"))
    traffic = [r.getMessage() for r in caplog.records if r.levelname == "TRAFFIC"]
    assert traffic == [">> 00A4000C023F00", "<< 9000"]


def test_thread_is_a_daemon_and_named_after_the_port(card) -> None:
    client = VpcdClient(card, port=free_port(), retry_interval=0.05)
    thread = client.run_in_thread()
    try:
        assert thread.daemon
        assert thread.name == f"vpcd-{client.port}"
        with pytest.raises(RuntimeError):
            client.run_in_thread()
    finally:
        client.stop()


def test_apdu_for_an_unpowered_runtime_powers_it_on(caplog) -> None:
    """vpcd may send a command after it powered the card off: answer it, one log line."""
    from host.presets import new_card

    card = new_card("demo")
    vpcd = FakeVpcd()
    client = VpcdClient(card, port=vpcd.port)
    thread = client.run_in_thread()
    try:
        vpcd.accept()
        vpcd.send(b"\x01")  # power on
        vpcd.send(b"\x00")  # power off
        with caplog.at_level("WARNING", logger="host.vpcd"):
            assert vpcd.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
        assert card.powered
        assert "powering it on" in caplog.text and "Traceback" not in caplog.text
    finally:
        client.stop()
        thread.join(5)
        vpcd.close()


# -- whose pcscd: only one that owns our socket or ports stops us ----------------------


def _fake_proc(
    root: Path, me: dict[str, str], procs: dict[int, tuple[str, dict[str, str]]]
) -> Path:
    """A /proc stand-in: `self` and numbered processes with `comm` and ns/ links."""

    def entry(name: str, comm: str, ns: dict[str, str]) -> None:
        d = root / name
        (d / "ns").mkdir(parents=True)
        (d / "comm").write_text(comm + "\n")
        for kind, target in ns.items():
            (d / "ns" / kind).symlink_to(target)

    entry("self", "python3", me)
    for pid, (comm, ns) in procs.items():
        entry(str(pid), comm, ns)
    (root / "sys").mkdir()  # not a PID
    return root


def test_a_pcscd_in_other_namespaces_is_not_ours(tmp_path: Path) -> None:
    from host.vpcd import local_pcscd_pids, running_pcscd_pids

    me = {"mnt": "mnt:[1]", "net": "net:[1]"}
    proc = _fake_proc(
        tmp_path,
        me,
        {
            10: ("pcscd", {"mnt": "mnt:[2]", "net": "net:[2]"}),  # a container's own
            11: ("pcscd", {"mnt": "mnt:[1]", "net": "net:[2]"}),  # shares our socket path
            12: ("pcscd", {"mnt": "mnt:[2]", "net": "net:[1]"}),  # shares vpcd's ports
            13: ("pcscd", {}),  # namespaces we may not read: assumed shared
            14: ("bash", me),
        },
    )
    assert running_pcscd_pids(proc) == [10, 11, 12, 13]
    assert local_pcscd_pids(proc) == [11, 12, 13]


def test_check_free_ignores_a_pcscd_that_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    import host.vpcd as vpcd

    monkeypatch.setattr(vpcd, "running_pcscd_pids", lambda proc=None: [4242])
    monkeypatch.setattr(vpcd, "_namespace", lambda proc, pid, kind: f"{kind}:[{pid == 'self'}]")
    monkeypatch.setattr(vpcd, "pcscd_socket_live", lambda: False)
    monkeypatch.setattr(vpcd, "vpcd_port_taken", lambda: False)
    vpcd.Pcscd().check_free()  # another namespace's pcscd: free
    monkeypatch.setattr(vpcd, "_namespace", lambda proc, pid, kind: "mnt:[1]")
    with pytest.raises(vpcd.PcscdError, match=r"another pcscd owns .* \(pid 4242\)"):
        vpcd.Pcscd().check_free()


def test_vpcd_port_taken() -> None:
    from host.vpcd import vpcd_port_taken

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not vpcd_port_taken(port)
        s.listen()
        assert vpcd_port_taken(port)
