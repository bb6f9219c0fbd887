"""A throw-away PostgreSQL server for the tests that need one (Debian's `postgresql` package).

    from pg_fixtures import pg_server, pg_url  # noqa: F401 - pytest fixtures

`pg_server` (one per test session) runs `initdb` into a temporary directory and
`pg_ctl start` on a free loopback port with a unix socket in that directory,
trust authentication for loopback only, and stops it (by its own pg_ctl) at the
end. PostgreSQL refuses to run as root: as root (the CI), the cluster belongs
to the `postgres` user the Debian package creates, and the binaries run
through `runuser`. `pg_url` gives each test an empty database schema.

Skipped, with the reason, when the binaries, psycopg or that user are missing.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["pg_bin", "pg_server", "pg_url", "PgServer"]


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, else the newest /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PREFIX = "cardemu-pg-"
_OWNER = "owner"


def _postmaster_of(data: Path) -> bool:
    """True if `data/postmaster.pid` names a running postgres whose data directory is `data`."""
    try:
        pid_line, dir_line = (data / "postmaster.pid").read_text().splitlines()[:2]
        cmdline = Path(f"/proc/{int(pid_line)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    program = Path(cmdline.split(b"\0", 1)[0].decode(errors="replace")).name
    return program in ("postgres", "postmaster") and Path(dir_line) == data


def _run_as_postgres(tmp: Path) -> list[str]:
    """The prefix that runs pg_ctl as the owner of cluster directory `tmp` (root: runuser)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    owner = pwd.getpwuid(tmp.stat().st_uid).pw_name
    return [runuser, "-u", owner, "--"] if runuser and owner != "root" else []


class PgServer:
    """One PostgreSQL cluster in a temporary directory, on 127.0.0.1:port."""

    def __init__(self) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            pytest.skip("psycopg is not installed (the postgresql extra)")
        self.pg_ctl = pg_ctl
        self.prefix: list[str] = []
        self._sweep_orphans()
        self.tmp = Path(tempfile.mkdtemp(prefix=_PREFIX))
        # The owner file is locked for as long as this process lives (the kernel drops the
        # lock when it dies, however it dies); it gets its name only once locked, so a
        # sweep never sees it unlocked while this run is alive.
        making = self.tmp / (_OWNER + ".new")
        self._owner = open(making, "w")  # noqa: SIM115 - held until the process ends
        fcntl.flock(self._owner, fcntl.LOCK_EX)
        self._owner.write(f"{os.getpid()}\n")
        self._owner.flush()
        making.rename(self.tmp / _OWNER)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.tmp, ignore_errors=True)
                pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
            runuser = shutil.which("runuser")
            if runuser is None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                pytest.skip("running as root and runuser is missing")
            self.prefix = [runuser, "-u", "postgres", "--"]
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
        self.tmp.chmod(0o700)
        self.data = self.tmp / "data"
        self.port = _free_port()
        self.log = self.tmp / "postgres.log"
        self._run(
            [
                initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
                "--no-sync",
            ]  # fmt: skip
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.tmp} -c fsync=off -c max_connections=50"
        )
        self._run([pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _sweep_orphans(self) -> None:
        """Stop and remove the clusters of test runs that died without stopping theirs.

        A test process killed (SIGKILL, a CI timeout) never reaches `stop`, and its
        postgres would run on, holding memory and a port, until the machine restarts.
        Each cluster's directory holds an owner file its run keeps locked (`flock`,
        released by the kernel when the run dies, and seen alike from another pid
        namespace sharing the directory). A cluster whose lock is free is orphaned:
        its postmaster is stopped with `pg_ctl stop -m immediate` only if the pid in
        `postmaster.pid` is a postgres serving that very directory (a pid reused since
        is left alone), and the directory is deleted.
        """
        for tmp in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
            try:
                with open(tmp / _OWNER) as owner:
                    try:
                        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # its test run is alive
            except OSError:
                continue  # not ours to read, or still being made
            data = tmp / "data"
            if _postmaster_of(data):
                try:
                    subprocess.run(
                        [*_run_as_postgres(tmp), self.pg_ctl, "-D", str(data), "-m",
                         "immediate", "-w", "stop"],
                        capture_output=True,
                        timeout=60,
                        cwd=tempfile.gettempdir(),
                    )  # fmt: skip
                except subprocess.TimeoutExpired:
                    continue  # try again next time rather than delete under a live server
            shutil.rmtree(tmp, ignore_errors=True)

    def _run(self, cmd: list[str]) -> None:
        out = subprocess.run(
            self.prefix + cmd, capture_output=True, text=True, timeout=120, cwd=self.tmp
        )
        if out.returncode != 0:
            log = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {out.stderr.strip()[-800:]} {log}")

    def database(self, name: str) -> str:
        """A fresh, empty database `name` on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self._owner.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_url(pg_server: PgServer) -> str:
    """An empty database (its public schema dropped and made again) on the session's server."""
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{pg_server.port}/cardemu"
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError:
        return pg_server.database("cardemu")
    with conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url
