"""A server role as a real process (`cardemu server ROLE`), for scenarios that kill and restart it.

    with ServerProcess("smdpp", ["--db", db, "--address", ...]) as dp:
        dp.port              # the port it bound (kept across restarts)
        dp.kill(); dp.restart()

The process is this interpreter running `host.cli`, so it serves this
checkout's code; its store is a file, so what it committed survives a kill.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ServerProcess", "ServerStartError"]

_ROOT = Path(__file__).resolve().parents[2]
_SERVING = re.compile(r"serving on (https?)://([^\s]+):(\d+)")


class ServerStartError(RuntimeError):
    """The server process exited or did not say it was serving in time."""


class ServerProcess:
    """`cardemu server ROLE ARGS --port PORT` in a child process.

    Args:
        role: the role ("smdpp").
        args: its options, without --port.
        port: the port (0: a free one, then the same one on every restart).
        timeout: seconds to wait for the "serving on" line.
    """

    def __init__(
        self, role: str, args: Sequence[str], *, port: int = 0, timeout: float = 60.0
    ) -> None:
        self.role = role
        self.args = list(args)
        self.port = port
        self.timeout = timeout
        self.url = ""
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._log: list[str] = []

    def start(self) -> ServerProcess:
        """Start the process; return once it serves."""
        path = [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        cmd = [sys.executable, "-m", "host.cli", "server", self.role, *self.args]
        proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)],
            cwd=_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._proc = proc
        ready = threading.Event()
        served: list[str] = []  # this start's URL: a restart must not trust the last one

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self._log.append(line.rstrip())
                m = _SERVING.search(line)
                if m and not ready.is_set():
                    served.append(f"{m[1]}://{m[2]}:{m[3]}")
                    self.port = int(m[3])
                    ready.set()
            ready.set()  # end of stderr: the process is going, whatever it said

        threading.Thread(target=read, name=f"{self.role}-stderr", daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(f"{self.role} did not start in {self.timeout:.0f} s")
        if not served:  # stderr ended without "serving": it exited (or is exiting)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            raise ServerStartError(f"{self.role} exited: {' / '.join(self._log[-3:])}")
        self.url = served[0]
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what the store committed is all that remains."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def restart(self) -> ServerProcess:
        """Start again on the same port and store."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it lingers."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
