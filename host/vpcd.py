"""The card side of vsmartcard's virtual reader driver (vpcd).

vpcd is a pcscd reader driver that listens on TCP 35963 (slot 0, reader
"Virtual PCD 00 00") and 35964 (slot 1, "Virtual PCD 00 01"); a card connects
to it as a client. Each message either way is a 2-byte big-endian length and a
payload. From vpcd, a 1-byte payload is a control code (00 power off, 01 power
on, 02 reset, 04 "send your ATR"); only 04 gets an answer. Anything longer is a
command APDU, answered with the response APDU. An empty answer makes vpcd drop
the card, so we never send one.

vpcd asks for the ATR every time pcscd polls for card presence (a few times a
second), so the ATR must be available whether or not the card is powered.

Latency: Debian 12's vpcd (vsmartcard 0.9) writes the length and the payload
with two send() calls on a socket without TCP_NODELAY. Nagle holds the second
write until our ACK of the first, and Linux delays that ACK by ~40 ms unless
TCP_QUICKACK is set. The flag is not sticky (the kernel clears it again), so it
is set before every recv(): this takes an APDU round trip from ~44 ms to a few
tens of microseconds.
"""

from __future__ import annotations

import enum
import errno
import importlib.util
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from host.log import TRAFFIC

logger = logging.getLogger(__name__)

VPCD_PORT = 35963
"""Port of vpcd slot 0; slot n listens on VPCD_PORT + n."""

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"
MAX_PAYLOAD = 0xFFFF

# Linux-only socket option; elsewhere the delayed-ACK stall cannot be avoided this way.
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class VpcdCard(Protocol):
    """What VpcdClient needs from a card (CardRuntime has exactly this)."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...


class VpcdEvent(enum.Enum):
    """What `on_event` is told about."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    POWER_ON = "power-on"
    POWER_OFF = "power-off"
    RESET = "reset"


class VpcdProtocolError(Exception):
    """vpcd or the card broke the framing; the connection is dropped and re-made."""


#: vpcd's slots: vsmartcard builds its driver with two readers (VICC_MAX_SLOTS), so
#: Debian's one reader.conf entry on port 35963 gives "Virtual PCD 00 00" and "00 01".
VPCD_SLOTS = 2


def port_for_slot(slot: int) -> int:
    """The TCP port of vpcd slot `slot` (0 or 1 in Debian's reader.conf)."""
    if slot < 0:
        raise ValueError(f"slot must be >= 0, not {slot}")
    return VPCD_PORT + slot


class SlotTaken(Exception):
    """Another process already serves a card to this vpcd address.

    Attributes:
        pid: the holder's PID, when the kernel says (Linux), else None.
        argv: its command line, when readable.
    """

    def __init__(self, host: str, port: int, pid: int | None, argv: tuple[str, ...]) -> None:
        who = f"PID {pid}" if pid is not None else "another process"
        if argv:
            who += f" ({' '.join(argv)})"
        super().__init__(f"vpcd {host}:{port} is already served by {who}")
        self.pid = pid
        self.argv = argv


class SlotClaim:
    """This process serves a card to vpcd at `host:port` (one card per reader).

    The claim is an abstract Unix socket named after the address (Linux): the
    kernel frees the name when the holder exits or dies, so a claim is never
    stale, and it lives in the network namespace, as vpcd's port does. A second
    claim is refused with the holder's PID (the peer credentials of the socket).
    Where there are no abstract sockets the claim is a no-op.

    Raises:
        SlotTaken: another process holds the claim.
    """

    def __init__(self, host: str, port: int) -> None:
        self._sock: socket.socket | None = None
        if not sys.platform.startswith("linux"):
            return
        name = f"\0cardemu-vpcd-{host}:{port}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(name)
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                return
            pid = _claim_holder(name)
            raise SlotTaken(host, port, pid, _cmdline(pid)) from None
        sock.listen(1)
        self._sock = sock

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SlotClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _claim_holder(name: str) -> int | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(name)
            creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return None
    pid = struct.unpack("3i", creds)[0]
    return pid or None


def _cmdline(pid: int | None) -> tuple[str, ...]:
    if pid is None:
        return ()
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    # `python -m host.cli serve` and the `cardemu` script both read as `cardemu serve`.
    for i, arg in enumerate(argv):
        if arg.endswith("cardemu") or arg == "host.cli":
            return ("cardemu", *argv[i + 1 :])
    return tuple(argv)


class EchoCard:
    """The thinnest possible card: the benchmark floor of the PC/SC path.

    Answers every command with its short-form command data (if any) and 9000,
    without parsing anything else.
    """

    def __init__(self, atr: bytes = bytes.fromhex("3B800101")) -> None:
        # 3B 80 01 01: direct convention, TD1 announcing T=1, no historical bytes,
        # TCK 01 (ISO/IEC 7816-3 §8.2): the shortest ATR pcscd accepts for T=1.
        self._atr = atr
        self.powered = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self.powered = True
        return self._atr

    def power_off(self) -> None:
        self.powered = False

    def reset(self) -> bytes:
        self.powered = True
        return self._atr

    def process(self, apdu: bytes) -> bytes:
        if len(apdu) > 5 and apdu[4] and len(apdu) >= 5 + apdu[4]:
            return apdu[5 : 5 + apdu[4]] + b"\x90\x00"
        return b"\x90\x00"


class VpcdClient:
    """Connects one card to one vpcd slot and serves it until stopped.

    Args:
        card: the card to serve (see `VpcdCard`).
        host: where vpcd listens (pcscd's machine).
        port: vpcd's port: 35963 for slot 0, 35964 for slot 1.
        on_event: called with a `VpcdEvent` on connection and power changes,
            from the serving thread.
        retry_interval: seconds between connection attempts while vpcd is not
            listening (pcscd not started yet, or restarting).
        on_waiting: called once each time the client starts waiting for vpcd (the
            first attempt that fails, after start or after vpcd dropped it).
        quickack: set TCP_QUICKACK before every recv(); turning it off exists
            only to show what it saves (`host.bench_pcsc`).
    """

    def __init__(
        self,
        card: VpcdCard,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        on_event: Callable[[VpcdEvent], None] | None = None,
        retry_interval: float = 0.2,
        quickack: bool = True,
        on_waiting: Callable[[], None] | None = None,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.on_event = on_event
        self.retry_interval = retry_interval
        self.on_waiting = on_waiting
        self._quickack = _TCP_QUICKACK if quickack else None
        self.apdu_count = 0
        self.connection_count = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        # Re-entrant: stop() may run in a signal handler on the thread that holds it.
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a TCP connection to vpcd is open (pcscd may not have polled it yet)."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until connected to vpcd; False on timeout."""
        return self._connected.wait(timeout)

    def serve_forever(self, *, rearm: bool = True) -> None:
        """Connect, serve, and reconnect whenever vpcd drops us, until `stop()`.

        Args:
            rearm: forget an earlier `stop()` first; False keeps one that came in
                between (a signal handler installed before serving started).
        """
        if rearm:
            self.rearm()
        self._serve_until_stopped()

    def rearm(self) -> None:
        """Forget an earlier `stop()`, so that serving can start again."""
        self._stop.clear()

    def _serve_until_stopped(self) -> None:
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                break
            try:
                self._serve(sock)
            except (OSError, VpcdProtocolError) as exc:
                if not self._stop.is_set():
                    logger.warning("vpcd %s:%d: connection lost: %s", self.host, self.port, exc)
            finally:
                self._close()
            # vpcd closes us when pcscd stops; don't spin while it restarts.
            self._stop.wait(self.retry_interval)

    def run_in_thread(self) -> threading.Thread:
        """Start `serve_forever` in a daemon thread and return it."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("already serving")
        # Cleared here, not in the thread, so that a stop() right after this
        # returns cannot be lost.
        self._stop.clear()
        thread = threading.Thread(
            target=self._serve_until_stopped, name=f"vpcd-{self.port}", daemon=True
        )
        self._thread = thread
        thread.start()
        return thread

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop serving: the card leaves the reader. Safe from any thread or a signal handler.

        Joins the thread started by `run_in_thread` (unless called from it).
        """
        self._stop.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            # Wakes a recv() blocked in the serving thread.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- connection ---------------------------------------------------------

    def _connect(self) -> socket.socket | None:
        waiting = False
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError as exc:
                logger.debug("vpcd %s:%d not reachable: %s", self.host, self.port, exc)
                if not waiting and self.on_waiting is not None:
                    waiting = True
                    try:
                        self.on_waiting()
                    except Exception:
                        logger.exception("on_waiting callback failed")
                self._stop.wait(self.retry_interval)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return None
                self._sock = sock
            self.connection_count += 1
            self._connected.set()
            logger.info("card connected to vpcd %s:%d", self.host, self.port)
            self._emit(VpcdEvent.CONNECTED)
            return sock
        return None

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        sock.close()
        self._connected.clear()
        logger.info("card disconnected from vpcd %s:%d", self.host, self.port)
        self._emit(VpcdEvent.DISCONNECTED)

    def _emit(self, event: VpcdEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            logger.exception("on_event callback failed on %s", event.value)

    # -- framing ------------------------------------------------------------

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        """n bytes from vpcd, or None if it closed the connection cleanly before any."""
        buf = b""
        while len(buf) < n:
            if self._quickack is not None:
                sock.setsockopt(socket.IPPROTO_TCP, self._quickack, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                if buf:
                    raise VpcdProtocolError(f"connection closed inside a message ({len(buf)}/{n})")
                return None
            buf += chunk
        return buf

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            header = self._recv_exact(sock, 2)
            if header is None:
                return
            length = int.from_bytes(header, "big")
            payload = self._recv_exact(sock, length) if length else b""
            if payload is None:
                raise VpcdProtocolError("connection closed after a length header")
            reply = self._handle(payload)
            if reply is not None:
                sock.sendall(len(reply).to_bytes(2, "big") + reply)

    def _handle(self, payload: bytes) -> bytes | None:
        """The reply to one vpcd message, or None for messages that get none."""
        if len(payload) == 1:
            code = payload[0]
            if code == CTRL_ATR:
                atr = self.card.atr
                if not atr:
                    # An empty reply would make vpcd drop the card anyway; say why.
                    raise VpcdProtocolError("the card has no ATR to give")
                return atr
            if code == CTRL_POWER_OFF:
                self._control(self.card.power_off, VpcdEvent.POWER_OFF)
                return None
            if code == CTRL_POWER_ON:
                self._control(self.card.power_on, VpcdEvent.POWER_ON)
                return None
            if code == CTRL_RESET:
                self._control(self.card.reset, VpcdEvent.RESET)
                return None
            # Any other single byte can only be a 1-byte "APDU" that vpcd is
            # waiting on an answer for: let the card judge it.
        elif not payload:
            logger.warning("vpcd sent an empty message; ignored")
            return None
        return self._process(payload)

    def _control(self, action: Callable[[], object], event: VpcdEvent) -> None:
        logger.debug("vpcd %d: %s", self.port, event.value)
        try:
            action()
        except Exception:
            logger.exception("card failed on %s", event.value)
        self._emit(event)

    def _process(self, apdu: bytes) -> bytes:
        self.apdu_count += 1
        trace = logger.isEnabledFor(TRAFFIC)
        if trace:
            logger.log(TRAFFIC, ">> %s", apdu.hex().upper())
        try:
            if getattr(self.card, "powered", True) is False:
                # vpcd and pcscd believe the card is powered (e.g. after it was torn or
                # reconnected): a reader powers a card before a command, so do that.
                logger.warning("APDU for an unpowered card: powering it on first")
                self.card.power_on()
            response = self.card.process(apdu)
        except Exception as e:
            # A card object must not take the reader down with it: the terminal gets
            # 6F00 (ISO 7816-4 "no precise diagnosis"); one line, the traceback only at DEBUG.
            logger.error("card raised on %s: %s", apdu.hex().upper(), e)
            logger.debug("traceback", exc_info=True)
            response = SW_NO_PRECISE_DIAGNOSIS
        if not response or len(response) > MAX_PAYLOAD:
            logger.error("card answered %d bytes; sending 6F00 instead", len(response))
            response = SW_NO_PRECISE_DIAGNOSIS
        if trace:
            logger.log(TRAFFIC, "<< %s", response.hex().upper())
        return response


def serve_until_signalled(
    client: VpcdClient, banner: Callable[[], None] | None = None
) -> int | None:
    """Run `client.serve_forever()` in this (main) thread until SIGINT or SIGTERM.

    `banner` (what is served where) runs once the handlers are in place, so a
    signal that comes as soon as it is shown still stops the client cleanly. The
    previous handlers are restored on return, so the caller can then save the card
    and exit normally.

    Returns:
        The signal that stopped it (None if the client stopped otherwise).
    """
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        logger.info("signal %d: stopping", signum)
        received.append(signum)
        client.stop(timeout=0)

    client.rearm()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if banner is not None:
            banner()
        client.serve_forever(rearm=False)  # a signal during the banner is not lost
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return received[0] if received else None


def waiting_for(host: str, port: int) -> str:
    """What a card that cannot reach vpcd at `host:port` is waiting for, in one phrase."""
    if host.startswith("127.") or host in ("localhost", "::1"):
        if not pcscd_socket_live():
            return (
                f"pcscd, which is not running (start it: `systemctl start pcscd` or "
                f"`pcscd --foreground`); its vpcd driver then listens on {host}:{port}"
            )
        return (
            f"vpcd on {host}:{port} (pcscd runs, but nothing listens there: is "
            f"vsmartcard-vpcd installed, and this slot configured?)"
        )
    return f"vpcd on {host}:{port}"


# -- the daemon that hosts vpcd ------------------------------------------------

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
"""pcsc-lite's client socket: one pcscd per machine owns it."""


class PcscdError(Exception):
    """pcscd cannot be started here (missing, or another one owns the socket)."""


def running_pcscd_pids(proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the pcscd processes this process can see (from /proc), in any namespace."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "pcscd":
                pids.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return sorted(pids)


def _namespace(proc: Path, pid: int | str, kind: str) -> str | None:
    try:
        return os.readlink(proc / str(pid) / "ns" / kind)
    except OSError:
        return None  # gone, or not ours to inspect


def local_pcscd_pids(proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the pcscd processes that own (or will own) *our* PC/SC socket and vpcd ports.

    A pcscd shares our socket when it runs in our mount namespace (the socket is
    a path, `PCSCD_SOCKET`) and our vpcd ports when it runs in our network
    namespace. One in a private mount + network namespace (a container, `unshare
    -mn`), or around us when we are in one, is no concern of ours. A namespace
    we may not inspect counts as shared: a pcscd we cannot rule out is never
    taken over.
    """
    mine = {kind: _namespace(proc, "self", kind) for kind in ("mnt", "net")}
    local = []
    for pid in running_pcscd_pids(proc):
        for kind, ours in mine.items():
            theirs = _namespace(proc, pid, kind)
            if ours is None or theirs is None or theirs == ours:
                local.append(pid)
                break
    return local


def vpcd_port_taken(port: int = VPCD_PORT, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on vpcd's port (another pcscd's vpcd, in our network)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect((host, port))
        except OSError:
            return False
    return True


def pcscd_socket_live(path: Path = PCSCD_SOCKET) -> bool:
    """Whether something accepts connections on pcscd's socket (pcscd or systemd's pcscd.socket)."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class Pcscd:
    """A `pcscd --foreground` that this process starts, owns, and stops by its PID.

    Only one pcscd can own a PC/SC socket (and vpcd's ports), so `start` refuses
    (PcscdError) when another one owns ours (`check_free`): a test or benchmark
    must never take over or kill a pcscd it did not start.

    Args:
        log: where pcscd's own log goes (its stdout and stderr); None discards it.
        executable: the pcscd binary.
    """

    def __init__(self, log: IO[bytes] | None = None, executable: str = "pcscd") -> None:
        self.log = log
        self.executable = executable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The command line: `--foreground`, plus `--disable-polkit` where this pcscd has it."""
        path = shutil.which(self.executable)
        if path is None:
            raise PcscdError(f"{self.executable} not found (apt-get install pcscd)")
        cmd = [path, "--foreground"]
        # pcsc-lite built with polkit refuses clients that polkit does not vouch
        # for, and there is no polkit daemon in a container. Debian 12's 1.9.9 has
        # no polkit support (and no option); later versions do.
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
        if "--disable-polkit" in usage.stdout + usage.stderr:
            cmd.append("--disable-polkit")
        return cmd

    def check_free(self) -> None:
        """Raise PcscdError if another pcscd owns our PC/SC socket or vpcd's port.

        A pcscd in another mount and network namespace does not count: it has a
        socket and ports of its own (`local_pcscd_pids`).
        """
        others = [pid for pid in local_pcscd_pids() if pid != self.pid]
        if others:
            raise PcscdError(
                f"another pcscd owns {PCSCD_SOCKET} here (pid {', '.join(map(str, others))})"
            )
        if pcscd_socket_live():
            raise PcscdError(
                f"{PCSCD_SOCKET} is served by another process (systemd's pcscd.socket?)"
            )
        if vpcd_port_taken():
            raise PcscdError(f"vpcd's port {VPCD_PORT} is taken by another process")

    def start(self, wait_for: str | None = "Virtual PCD 00 00", timeout: float = 10.0) -> None:
        """Start pcscd and wait until it lists the reader `wait_for` (if given).

        Raises:
            PcscdError: pcscd missing, another pcscd present, or not ready in time.
        """
        if self.running:
            return
        cmd = self.command()
        self.check_free()
        sink = self.log if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
        if wait_for is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise PcscdError(f"pcscd exited at start (status {code})")
            if wait_for in self.readers():
                return
            time.sleep(0.05)
        self.stop()
        raise PcscdError(
            f"pcscd did not list '{wait_for}' within {timeout:g} s (is vsmartcard-vpcd installed?)"
        )

    def readers(self) -> list[str]:
        """The readers pcscd lists now, empty while it is not answering."""
        if importlib.util.find_spec("smartcard") is not None:
            from host.readers.base import ReaderError
            from host.readers.pcsc import list_readers

            try:
                return list_readers()
            except ReaderError:
                return []
        scan = shutil.which("pcsc_scan")
        if scan is None:
            return []
        # pcsc_scan -r prints "0: Virtual PCD 00 00" lines.
        out = subprocess.run([scan, "-r"], capture_output=True, text=True, timeout=10).stdout
        return [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the pcscd this object started (SIGTERM, then SIGKILL), by its PID only."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> Pcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
