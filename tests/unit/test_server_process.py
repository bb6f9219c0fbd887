"""`ServerProcess`: a restart that cannot serve is an error, never the last run's URL."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from host.systems.servers import ServerProcess, ServerStartError


def test_restart_on_a_port_taken_meanwhile_fails_and_keeps_no_stale_url(tmp_path: Path) -> None:
    with ServerProcess("smsc", ["--db", str(tmp_path / "smsc.sqlite")]) as proc:
        first = proc.url
        assert httpx.get(first + "/", timeout=10).status_code in (200, 404)
        proc.kill()
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", proc.port))
        squatter.listen()
        try:
            with pytest.raises(ServerStartError, match="exited"):
                proc.restart()
            assert proc.starts == 1
        finally:
            squatter.close()
        proc.restart()  # the port is free again: it serves on it, as before
        assert proc.url == first and proc.starts == 2
