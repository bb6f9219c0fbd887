"""Every example in the README and in every `--help` text runs as written.

The examples are parsed out of the texts themselves: the `Examples:` block of
every command's help (each block is one sequence, run in order in a fresh
temporary directory), and the README's `console` (`$ ` lines) and `sh` blocks.
Each must exit 0, or the code the text documents beside it (`EXPECTED`).

A line runs in-process (`host.cli.main`), against the built-in cards, with
only loopback networking. The input files an example names (`my.card`,
`session.apdu`, `./pki`, ...) are made by `FIXTURES` when the directory does
not hold them yet (a card of the preset the command group uses: `gp` for
`cardemu gp`, ...). Servers (`serve`, `server`, `smdpp serve`) run as real
processes until they print their first line, then get Ctrl-C and must say
that they stopped; a line ending in `&` (or the `a` of `a & b`) keeps running
while the rest of its block runs, and at the block's end a server gets Ctrl-C
and any other job must end by itself with 0, as a shell's `wait` would see.
`cardemu load` runs as a process of its own too (Locust monkey-patches the
process it is imported in for gevent: in the test process, every later test
would run on gevent's hub and hang).

Every line is bounded in time (`LINE_TIMEOUT`, `JOB_TIMEOUT`): a line that
hangs fails naming itself, never stalls the run.

Not every line can run in a unit test; those are listed with the reason, and
the test fails when a listed line no longer exists (the lists stay honest):
`PARSE_ONLY` lines take minutes or measure time (their arguments are still
parsed by the real command, so a renamed option is caught), `SKIPPED` lines
need a card in a PC/SC reader, a network name or another program.
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from host.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@dataclass
class Block:
    """Examples that belong together, run in order in one directory."""

    source: str
    lines: list[str]
    #: README console blocks: each command's expected stdout, where it is deterministic
    outputs: list[str] = field(default_factory=list)


# -- parsing the texts ---------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    """The command without a trailing `  # comment` (never inside quotes in our texts)."""
    return re.split(r"\s+#\s", line, maxsplit=1)[0].strip()


def _join_continuations(lines: list[str]) -> list[str]:
    out: list[str] = []
    buf = ""
    for raw in lines:
        line = raw.strip()
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        out.append(buf + line)
        buf = ""
    return out


def _commands() -> Iterator[tuple[str, click.Command]]:
    def walk(cmd: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, cmd
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, f"{path} {name}")

    yield from walk(cli, "cardemu")


def help_blocks() -> list[Block]:
    """The `Examples:` block of every command's `--help`, as a user's terminal shows it."""
    blocks = []
    for path, _cmd in _commands():
        res = CliRunner().invoke(cli, [*path.split()[1:], "--help"], terminal_width=200)
        assert res.exit_code == 0, path
        if "Examples:" not in res.output:
            continue
        text = res.output.split("Examples:", 1)[1].split("\n\n", 1)[0]
        lines = [_strip_comment(line) for line in _join_continuations(text.splitlines())]
        blocks.append(Block(f"{path} --help", [line for line in lines if line]))
    return blocks


def readme_blocks() -> list[Block]:
    """The README's `console` blocks (`$ ` lines, with their output) and `sh` blocks."""
    blocks = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if not fence.startswith("```"):
            i += 1
            continue
        start = i + 1
        j = start
        while lines[j].strip() != "```":
            j += 1
        body = lines[start:j]
        i = j + 1
        block = Block(f"README.md:{start}", [])
        # A plain block is a transcript when its lines start with a prompt.
        console = fence == "```console" or (fence == "```" and body[:1] and body[0][:2] == "$ ")
        if not (console or fence == "```sh"):
            continue
        if console:
            for line in body:
                if line.startswith("$ "):
                    block.lines.append(_strip_comment(line[2:]))
                    block.outputs.append("")
                elif block.outputs:
                    block.outputs[-1] += line + "\n"
        else:
            for line in _join_continuations(body):
                if line and not line.startswith("#"):
                    block.lines.append(_strip_comment(line))
        blocks.append(block)
    return blocks


# -- what cannot run here, and what exits non-zero by design -------------------------------

PCSC = "needs a card in vpcd's PC/SC reader (`cardemu serve`); tests/integration drives -r"
#: Lines whose arguments are only parsed: they run for minutes or measure time.
PARSE_ONLY: dict[str, str] = {
    "cardemu bench": "measures for several seconds",
    "cardemu bench --pcsc -n 5000": "measures through pcscd",
    "cardemu bench --keys --runs 5": "generates RSA-3072 keys five times (a minute)",
    "cardemu bench --keys --alg P-256 --alg RSA-2048 --json": "generates RSA-2048 keys",
    "cardemu bench --web --seconds 4": "measures for 4 s per figure",
    "cardemu bench --only download --only startup --only es10first": (
        "measures for half a minute (test_bench_table runs the three rows --quick)"
    ),
    "cardemu bio eval": "a 1-2 minute evaluation",
    "cardemu bio eval --json": "a 1-2 minute evaluation",
    "cardemu bio eval --fingers 50 --impressions 4 --png det.png": "a minute's evaluation",
    "cardemu bio eval --set rotation_sd_deg=15 --set miss_rate=0.2,0.35 --json": "a minute",
    "cardemu bio eval --setting all --fingers 100 --impressions 4 --png det.png": "minutes",
    "cardemu load --smdp localhost:8443 --first 300 -u 20 -t 5m --web-ui": (
        "keeps Locust's web UI up until Ctrl-C (tests/unit/test_load.py runs --web-ui)"
    ),
    "cardemu load --smdp dp.example:443 -u 5000 -r 100 -t 10m --master --expect-workers 8 "
    "--master-bind-host 0.0.0.0 --allow-remote": (
        "10 minutes with 8 workers on other machines (the README's loopback pair runs)"
    ),
    "cardemu load --worker --master-host 10.0.0.1 --pki ./pki": "a worker of another machine",
    "cardemu fuzz --budget 50000": "50,000 APDUs (half a minute)",
    "cardemu fuzz --preset demo --applet purse --time 60 --seed 7": "runs for 60 s",
    "cardemu fuzz --preset euicc --engine asn1 --time 600 --seed 1": "runs for 10 minutes",
    "cardemu fuzz --smdpp --time 600 --seed 1": "runs for 10 minutes",
    "cardemu fuzz --engine stateful --applet iso7816 --budget 5000": "5,000 stateful steps",
    "cardemu fuzz -r 2 --applet A000000151000000 --rate 10 --time 600 "
    "--secret 404142434445464748494A4B4C4D4E4F": "runs for 10 minutes",
}
#: Lines that cannot run in a unit test at all.
SKIPPED: dict[str, str] = {
    'cardemu gp list -r "virtual pcd 00 00" --key 404142434445464748494A4B4C4D4E4F': PCSC,
    'cardemu lpa eid -r "Virtual PCD 00 00"': PCSC,
    'cardemu lpa list -r "Virtual PCD 00 00" --json': PCSC,
    'cardemu usim read -r "Virtual PCD 00 00" --pin 1234 --json': PCSC,
    'cardemu send -r "virtual pcd 00 00" 00A4040000': PCSC,
    "cardemu scenario esim-download --pcsc": PCSC,
    "cardemu lpa download -r \"PCD 00 00\" 'LPA:1$smdp.example$MATCHING-ID'": PCSC,
    "cardemu lpa download --card my.card --pki ./pki 'LPA:1$smdp.example$X' "
    "--connect-to 127.0.0.1:8443": "needs your SM-DP+ for smdp.example on port 8443",
    "cardemu lpa load-crl --card my.card ./pki/crl/CRL_CI_ECDSA_NIST.der": (
        "the CRL must be signed by the CI my.card trusts; the example's card is the built-in"
        " PKI's and ./pki is another (to fix in the example: make my.card from ./pki)"
    ),
    "bash .ci/install-system.sh": "installs system packages",
    "python3 -m venv .venv && . .venv/bin/activate": "makes a venv",
    "pip install -e '.[test,pcsc]'": "installs the project",
    "python -m pytest -q": "the test suite itself",
    "mutmut run --max-children 2": "mutation testing: 40 minutes",
    "mutmut run --max-children 2 'card.nvm.*'": "mutation testing: minutes",
    "mutmut show 'card.nvm.xǁNVMǁflush__mutmut_32'": "reads mutmut's results",
    "python tests/mutation/score.py --list": "reads mutmut's results",
    "cardemu serve --preset piv --slot 1 &": (
        "the PIV tools run in tests/integration/test_piv_pcsc.py"
    ),
    'yubico-piv-tool -r "Virtual PCD 00 01" -a generate -s 9a -A ECCP256 -o pub.pem': "ditto",
    'yubico-piv-tool -r "Virtual PCD 00 01" -a status': "ditto",
    # README, "Serving a card to PC/SC programs": other programs on the served card.
    "opensc-tool -l": "OpenSC and pcsc-tools need pcscd: tests/integration drives the served card",
    'opensc-tool -r "Virtual PCD 00 00" -a': "ditto",
    'opensc-tool -r "Virtual PCD 00 00" -s 00A4040C09F043415244454D5501 -s 8050000004': "ditto",
    "pcsc_scan -r": "ditto",
    'cardemu send -q -r "PCD 00 00" 00A4040C09F043415244454D5501 8050000004': PCSC,
}
#: Example blocks of commands that landed while this test was being written, not yet
#: checked here: each fails or hangs as written today. Make them run, then take them off.
PENDING: dict[str, str] = {
    # README blocks are keyed by their first command (their line numbers move).
}


def _pending(block: Block) -> str | None:
    """Why `block` does not run here yet, if it does not (by its source, or its first line)."""
    for key in (block.source, block.lines[0] if block.lines else ""):
        if key in PENDING:
            return PENDING[key]
    return None


#: Documented exit codes other than 0.
EXPECTED: dict[tuple[str, str], int] = {
    # The README's lock example: the image is held by another process.
    ("README.md", "cardemu send --card my.card 8050000004"): 1,
    # README, "APDU scripts": the replay after a credit behind the trace's back differs.
    ("README.md", "cardemu replay --card my.card --keep-going golden.jsonl"): 3,
    # README, "Load testing": orders that do not exist, every download refused.
    ("README.md", "cardemu load --smdp localhost:8443 -u 2 -n 4 --matching-id 'NOPE-{n}'"): 1,
}
#: Servers (run until Ctrl-C): what they print once they are up.
SERVER_READY = re.compile(r"Ctrl-C|serving|waiting|listening")
#: Seconds one line may run: past it, the test fails naming the line (CI never stalls).
LINE_TIMEOUT = 120.0
#: Seconds a background job that is no server may take to end after its block's last line.
JOB_TIMEOUT = 60.0
#: Command groups that run in a process of their own, and why.
OWN_PROCESS = {
    "load": "imports Locust, whose gevent monkey-patching must never reach the test process",
}


# -- the files examples name -----------------------------------------------------------------

GROUP_PRESET = {"gp": "gp", "usim": "usim"}


def _euicc_with_demo_profile(path: Path) -> None:
    """An eUICC the demo profile was downloaded into (disabled), notifications sent."""
    from host.lpa.demo import DEMO_MATCHING_ID, demo_order
    from host.lpa.es10 import Es10Client
    from host.lpa.lpa import Lpa
    from host.pki import default_pki
    from host.presets import new_card
    from host.readers.inprocess import InProcessReader
    from host.servers.smdpp.server import SmdpPlus

    pki = default_pki()
    card = new_card("euicc", path)
    smdp = SmdpPlus(pki, address="localhost")
    smdp.add_order(demo_order())
    try:
        with smdp.serve() as server:
            smdp.address = f"localhost:{server.port}"
            with Es10Client(InProcessReader(card)) as es10:
                lpa = Lpa(es10, ca_pem=pki.ci.pem)
                assert lpa.download(f"LPA:1${smdp.address}${DEMO_MATCHING_ID}").installed
                lpa.send_notifications()
    finally:
        card.close()


def _card(preset: str) -> Callable[[Path, list[str]], None]:
    def make(path: Path, argv: list[str]) -> None:
        from host.presets import new_card

        group = argv[0] if argv else ""
        if path.name != "my.card":
            new_card(preset, path).close()
        elif group == "lpa":
            _euicc_with_demo_profile(path)
        else:
            new_card(GROUP_PRESET.get(group, preset), path).close()

    return make


def _text(content: str) -> Callable[[Path, list[str]], None]:
    def make(path: Path, argv: list[str]) -> None:
        path.write_text(content)

    return make


def _trace(path: Path, argv: list[str]) -> None:
    code = main(["send", "-q", "--trace-file", str(path), "00A4000C023F00", "00A4040000"])
    assert code == 0


def _pki(path: Path, argv: list[str]) -> None:
    assert main(["pki", "create", str(path)]) == 0


def _store(path: Path, argv: list[str]) -> None:
    code = main(
        ["smdpp", "order", "MY-1", "--db", str(path), "--iccid", "8988211000000000024"]
        + ["--imsi", "001010000000002", "--k", "00" * 16, "--opc", "00" * 16]
    )
    assert code == 0


def _smds_store(path: Path, argv: list[str]) -> None:
    """An SM-DS store holding one event, EVT-1, for the test PKI's first eUICC."""
    code = main(
        ["smds", "register", "--db", str(path), "89049032000000000000000000000163", "EVT-1"]
        + ["localhost:8443"]
    )
    assert code == 0


def _load_file(path: Path, argv: list[str]) -> None:
    from card.gp.loadfile import describe_load_file

    path.write_bytes(describe_load_file("applets.notes").to_bytes())


def _finding(path: Path, argv: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# a finding saved by `cardemu fuzz` (here: a purse session that holds)\n"
        "00A4040C09F043415244454D5501 =9000\n"
        "0020000104 31323334 =9000\n"
        "80500000 04 =xxxxxxxx 9000\n"
    )


def _smdpp_finding(path: Path, argv: list[str]) -> None:
    from host.fuzz.oracles import RESPONSE_TIME, Violation
    from host.fuzz.rsp_seeds import load
    from host.fuzz.server import Request, ServerFinding, save_server_finding

    seed = next(s for s in load().es9 if s.function == "handleNotification")
    request = Request(seed.function, dict(seed.body), "unmutated", False, None)
    finding = ServerFinding(1, Violation(RESPONSE_TIME, "kept", 0, "k"), request, 5, 1.0)
    saved = save_server_finding(finding, path.parent, 1)
    saved.rename(path)


def _tls(path: Path, argv: list[str]) -> None:
    """dp.pem / dp.key: a self-signed certificate for localhost."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


SCRIPT = "00A4040C09F043415244454D5501 =9000\n0020000104 31323334 =9000\n80500000 04\n"
FIXTURES: dict[str, Callable[[Path, list[str]], None]] = {
    "my.card": _card("demo"),
    "5g.img": _card("usim-5g"),
    "session.apdu": _text(SCRIPT),
    "script.apdu": _text(SCRIPT),
    "pin.apdu": _text("00A4040C09F043415244454D5501 =9000\n0020000104 ${pin} =9000\n"),
    "session.jsonl": _trace,
    "pki": _pki,
    "smdpp.sqlite": _store,
    "smds.sqlite": _smds_store,
    "orders.sqlite": _store,
    "my-applet.lf": _load_file,
    "fuzz-findings/001-no-exception-purse.apdu": _finding,
    "fuzz-findings/001-response-time-smdpp.json": _smdpp_finding,
    "dp.pem": _tls,
    "dp.key": _tls,
    "minutiae": lambda path, argv: path.mkdir(),
}
#: Commands that make the file they name: no fixture for them.
MAKERS = (("card", "new"), ("pki", "create"), ("smdpp", "order"))


#: Files a command reads by default, when the example names none.
DEFAULT_FILES = {
    ("smdpp", "orders"): "smdpp.sqlite",
    ("smds", "events"): "smds.sqlite",
    ("smds", "delete"): "smds.sqlite",
}


def _prepare(argv: list[str], cwd: Path) -> None:
    if tuple(argv[:2]) in MAKERS:
        return
    implicit = DEFAULT_FILES.get((argv[0], argv[1]) if len(argv) > 1 else ("", ""))
    if implicit and "--db" not in argv and not (cwd / implicit).exists():
        FIXTURES[implicit](cwd / implicit, argv)
    for arg in argv:
        name = arg.removeprefix("./").rstrip("/")
        if name in FIXTURES and not (cwd / name).exists():
            FIXTURES[name](cwd / name, argv)


# -- running ---------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the servers bind (`host.servers.web.bind_socket`): a port whose last
        # connection lingers in TIME_WAIT is free to them.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _parse_only(argv: list[str]) -> None:
    """Parse the arguments with the real commands, as running them would (no callback)."""
    _leaf_params(argv)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


class ExampleTimeout(BaseException):
    """An in-process line ran past `LINE_TIMEOUT` (a BaseException: no command catches it)."""


@contextmanager
def _bounded(line: str, seconds: float = LINE_TIMEOUT) -> Iterator[None]:
    """Run the body for at most `seconds`, else fail naming `line`.

    SIGALRM raises `ExampleTimeout` in the main thread, which also breaks a blocking
    wait there (a lock, a join, a select). Should even that not get through (the main
    thread stuck in C code), faulthandler prints every thread's traceback a minute
    later and ends the run: a failure that says where, never a stalled CI job.
    """

    def on_alarm(_sig: int, _frame: object) -> None:
        raise ExampleTimeout(f"{line}: still running after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    try:
        yield
    except ExampleTimeout as e:
        pytest.fail(str(e))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Job:
    """A command running as a process of its own (a server, or a line's `cmd &`).

    Its output goes to files, never to a pipe nobody reads: a server that logs every
    request would otherwise block on a full pipe while the block drives it.
    """

    line: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    err: Path

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _start(argv: list[str], cwd: Path, logs: Path, line: str) -> Job:
    n = len(list(logs.iterdir()))
    out, err = logs / f"{n}.out", logs / f"{n}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host.cli", *argv],
            cwd=cwd,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    return Job(line, argv, proc, err)


def _wait_ready(job: Job) -> None:
    """Until the job prints its "up" line on stderr; fails after 60 s (never blocks longer)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if SERVER_READY.search(job.stderr()):
            return
        if job.proc.poll() is not None:
            break
        time.sleep(0.1)
    job.kill()
    pytest.fail(f"{job.line}: not up within 60 s (exit {job.proc.returncode}): {job.stderr()}")


def _interrupt(job: Job) -> None:
    """Ctrl-C: a server says it stopped and exits 130."""
    job.proc.send_signal(signal.SIGINT)
    try:
        job.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"{job.line}: still running 20 s after Ctrl-C")
    err = job.stderr()
    assert job.proc.returncode == 130, f"{job.line}: exit {job.proc.returncode} on Ctrl-C: {err}"
    assert "stopped" in err, f"{job.line}: {err}"


def _finish(job: Job) -> None:
    """A job that is no server (a lock serving one phone, a Locust master) ends by itself, 0."""
    try:
        job.proc.wait(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"{job.line}: still running {JOB_TIMEOUT:.0f} s after its block")
    out = job.err.with_suffix(".out").read_text(encoding="utf-8", errors="replace")
    assert job.proc.returncode == 0, (
        f"{job.line}: exit {job.proc.returncode}: {job.stderr()}\n{out[-2000:]}"
    )
    _check_download_count(job.line, job.argv, out)


_SUMMARY_DOWNLOADS = re.compile(r"^downloads: (\d+) completed, (\d+) failed,", re.MULTILINE)
_SUMMARY_WORKERS = re.compile(r"^\S+: \d+ eUICCs \((?:(\d+) Locust workers|one process)\)", re.M)


def _check_download_count(line: str, argv: list[str], stdout: str) -> None:
    """A `cardemu load -n N` run's summary accounts for exactly N downloads (completed or
    failed), and a master's for its --expect-workers workers.

    `-n` counts across all workers (worker i of W draws i, i+W, ...; host.load.orders), so
    a master's figure is the sum of its workers' reports: a summary made before the last
    worker's statistics arrived, or one worker's share, or N per worker, is caught here,
    where the exit code (0 unless a download failed or a worker went missing) says nothing.
    """
    if argv[:1] != ["load"]:
        return
    _command, params = _leaf_params(argv)
    if params["worker"] or not params["downloads"]:
        return
    n = int(str(params["downloads"]))
    workers = int(str(params["expect_workers"])) if params["master"] else 0
    if params["as_json"]:
        doc = json.loads(stdout)
        counted = (doc["downloads"]["completed"], doc["downloads"]["failed"], doc["workers"])
    else:
        downloads = _SUMMARY_DOWNLOADS.search(stdout)
        where = _SUMMARY_WORKERS.search(stdout)
        assert downloads and where, f"{line}: no summary in\n{stdout[-2000:]}"
        completed, failed = int(downloads[1]), int(downloads[2])
        counted = (completed, failed, int(where[1] or 0))
    assert (counted[0] + counted[1], counted[2]) == (n, workers), (
        f"{line}: {counted[0]} completed + {counted[1]} failed downloads by {counted[2]}"
        f" workers, not -n {n} by {workers}\n{stdout[-2000:]}"
    )


def _substitute(command: str, cwd: Path) -> str:
    """`"$(cardemu ...)"` replaced by what that command prints, as a shell would."""

    def run(match: re.Match[str]) -> str:
        inner = shlex.split(match.group(1))
        assert inner[0] == "cardemu", match.group(0)
        _prepare(inner[1:], cwd)
        with CliRunner().isolation() as (out, err, _):
            code = main(inner[1:])
        assert code == 0, f"{match.group(0)}: {err.getvalue().decode()}"
        return shlex.quote(out.getvalue().decode().strip())

    return re.sub(r'"\$\((cardemu [^)]*)\)"', run, command)


def _is_server(argv: list[str]) -> bool:
    """`serve`, `server ROLE`, `GROUP serve`: runs until Ctrl-C."""
    return argv[:1] in (["serve"], ["server"]) or argv[1:2] == ["serve"]


def _ports(line: str, argv: list[str]) -> set[int]:
    """The loopback ports a line listens on that must be free (8443: the SM-DP+ default)."""
    ports = {
        int(value)
        for option, value in zip(argv, argv[1:], strict=False)
        if option in ("--port", "--listen") and value.isdigit() and int(value)
    }
    if re.search(r"\b8443\b", line) or (_is_server(argv) and "--port" not in argv):
        ports.add(8443)
    return ports


def _words(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "cardemu", f"{command!r} is not a cardemu command"
    return words[1:]


def _run_own_process(
    argv: list[str], cwd: Path, line: str, stdin: str | None
) -> tuple[int, str, str]:
    """A line of an `OWN_PROCESS` group: run as the user would, bounded by `LINE_TIMEOUT`."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "host.cli", *argv],
            cwd=cwd,
            env=_env(),
            input=stdin or "",
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{line}: still running after {LINE_TIMEOUT:.0f} s")
    return proc.returncode, proc.stdout, proc.stderr


def _run_line(block: Block, index: int, line: str, cwd: Path, logs: Path, jobs: list[Job]) -> bool:
    """Run one line of a block; False when it was only parsed."""
    stdin = None
    command = line
    if line.startswith("echo ") and " | cardemu " in line:
        echoed, command = line.split(" | ", 1)
        stdin = shlex.split(echoed)[1] + "\n"
    command = _substitute(command, cwd)
    # `a & b`: a starts in the background, as a shell does, and b runs meanwhile.
    *behind, command = command.split(" & ")
    background = command.endswith("&")
    argv = _words(command.removesuffix("&").strip())
    _prepare(argv, cwd)
    if line in PARSE_ONLY:
        _parse_only(argv)
        return False
    taken = sorted(p for p in _ports(line, argv) if not _port_free(p))
    if taken and not jobs:
        pytest.skip(f"{line}: port {taken[0]} is taken on this machine")
    for part in behind:
        jobs.append(_start(_words(part), cwd, logs, line))
    if background or _is_server(argv):
        job = _start(argv, cwd, logs, line)
        jobs.append(job)
        _wait_ready(job)
        if not background:
            jobs.remove(job)
            _interrupt(job)
        return True
    if argv[0] in OWN_PROCESS:
        code, stdout, stderr = _run_own_process(argv, cwd, line, stdin)
    else:
        with CliRunner().isolation(input=stdin) as (out, err, _):
            code = main(argv)
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    expected = EXPECTED.get((block.source.split(":")[0], line), 0)
    assert code == expected, f"{block.source}: {line}\n{stderr}\n{stdout[-2000:]}"
    _check_download_count(line, argv, stdout)
    if block.outputs and block.outputs[index] and "applet" in block.source:
        assert stdout == block.outputs[index], f"{block.source}: {line}"
    return True


def run_block(block: Block, cwd: Path) -> list[str]:
    """Run a block's lines in order, each bounded in time; returns what ran (for the tally).

    Background jobs (`cmd &`) run until the block's end; then a server gets Ctrl-C
    and any other job must have ended, or end soon, with exit 0 (as `wait` in a shell).
    """
    ran = []
    jobs: list[Job] = []
    with tempfile.TemporaryDirectory(prefix="example-logs-") as tmp:
        logs = Path(tmp)
        try:
            for index, line in enumerate(block.lines):
                if line in SKIPPED:
                    continue
                with _bounded(line):
                    if _run_line(block, index, line, cwd, logs, jobs):
                        ran.append(line)
            while jobs:
                job = jobs.pop(0)
                if _is_server(job.argv):
                    _interrupt(job)
                else:
                    _finish(job)
        finally:
            for job in jobs:
                job.kill()
    return ran


# -- the tests ---------------------------------------------------------------------------------

HELP = help_blocks()
READMES = readme_blocks()


@pytest.mark.parametrize("block", HELP, ids=[b.source for b in HELP])
def test_help_examples_run_as_written(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    why = _pending(block)
    if why:
        pytest.skip(f"pending: {why}")
    monkeypatch.chdir(tmp_path)
    run_block(block, tmp_path)


@pytest.mark.parametrize("block", READMES, ids=[b.source for b in READMES])
def test_readme_examples_run_as_written(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    why = _pending(block)
    if why:
        pytest.skip(f"pending: {why}")
    monkeypatch.chdir(tmp_path)
    if block.lines[:1] == ["pip install ./hello_applet"]:
        _run_the_applet_example(block, tmp_path)
        return
    holder = None
    if "cardemu send --card my.card 8050000004" in block.lines:
        # The lock example: another opener holds my.card.
        from card.runtime import CardRuntime

        FIXTURES["my.card"](tmp_path / "my.card", ["send"])
        holder = CardRuntime(str(tmp_path / "my.card"), create=False)
    try:
        run_block(block, tmp_path)
    finally:
        if holder is not None:
            holder.close()


def _readme_code(fence: str, after: str) -> str:
    text = README.read_text(encoding="utf-8")
    rest = text[text.index(after) :]
    start = rest.index(f"```{fence}\n") + len(fence) + 4
    return rest[start : rest.index("```", start)]


def _run_the_applet_example(block: Block, tmp_path: Path) -> None:
    """`pip install ./hello_applet`, done as pip would lay it out (no network here), then
    every command of the transcript in a process of its own, its output compared."""
    import tomllib

    code = _readme_code("python", "### Writing an applet")
    project = tomllib.loads(_readme_code("toml", "### Writing an applet"))
    assert project["build-system"]["build-backend"]
    meta = project["project"]
    site = tmp_path / "site"
    (site / "hello_applet").mkdir(parents=True)
    (site / "hello_applet" / "__init__.py").write_text(code)
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    points = meta["entry-points"]["cardemu.applets"]
    (dist / "entry_points.txt").write_text(
        "[cardemu.applets]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    env = {**_env(), "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    for line, expected in zip(block.lines[1:], block.outputs[1:], strict=True):
        argv = shlex.split(line)
        assert argv[0] == "cardemu"
        proc = subprocess.run(
            [sys.executable, "-m", "host.cli", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{line}: {proc.stderr}"
        assert proc.stdout == expected, line


def _leaf_params(argv: list[str]) -> tuple[str, dict[str, object]]:
    """The command a line runs (`load`, `server smdpp`) and its parsed parameters."""
    cmd: click.Command = cli
    ctx = cmd.make_context("cardemu", list(argv))
    path = []
    while isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
        path.append(name)
    return " ".join(path), ctx.params


def _download_numbers(params: dict[str, object]) -> range | None:
    """The download numbers a `cardemu load` run may draw, or None when nothing bounds them.

    `-n N`: exactly first .. first+N-1 (across all workers). A run bounded only by
    time (`-t T`) draws one number per download, so how many depends on how fast the
    machine is, unless each eUICC waits between downloads (`--wait W`): a user's k-th
    download starts no sooner than k*W after its first, so a user draws at most T/W + 1
    numbers before the clock stops the run, + 1 for the stop coming late.
    """
    from host.commands.load import parse_span

    first = int(str(params["first"]))
    if params["downloads"]:
        return range(first, first + int(str(params["downloads"])))
    wait = float(str(params["wait"]))
    if params["run_time"] is None or wait <= 0:
        return None
    per_user = int(parse_span(str(params["run_time"])) / wait) + 2
    return range(first, first + int(str(params["users"])) * per_user)


def test_load_examples_never_draw_one_matching_id_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a block, the `cardemu load` runs against one SM-DP+ draw disjoint download numbers,
    all of orders the block's `cardemu server smdpp --load-orders N` made (SGP.22 §3.1.3:
    an order's profile is handed out once; a second download of its matching ID is
    refused, 8.2.6/3.8).

    Regression: the README's and `cardemu load --help`'s blocks ran a time-bounded run
    (`--first 100 -u 4 -t 3s`, `--first 40 -u 10 -t 5s`) before the master/worker pair
    (`--first 200 -n 8`, `--first 260 -n 20`). Since downloads got fast (~50 ms on an idle
    machine, more with --enable --notify), 3 s can be 26 rounds of 4 users: numbers
    100..203, and the pair's first four were refused (27 rounds and more: all eight,
    as in one CI run). The examples test failed about one run in five, depending on
    how busy the machine was.
    """
    monkeypatch.chdir(tmp_path)  # the files a line names (parsing checks they exist)
    checked = 0
    for block in HELP + READMES:
        orders: int | None = None
        ranges: list[tuple[str, range]] = []
        for line in block.lines:
            words = shlex.split(line.removesuffix("&").strip())
            if words[1:2] != ["load"] and words[1:3] != ["server", "smdpp"] or " & " in line:
                continue
            _prepare(words[1:], tmp_path)
            command, params = _leaf_params(words[1:])
            if command == "server smdpp" and params.get("load_orders"):
                orders, ranges = int(str(params["load_orders"])), []
            if command != "load" or params["worker"] or orders is None:
                continue
            if params["template"] != "LOAD-{n:06d}":
                continue  # other matching IDs (the README's refused 'NOPE-{n}')
            drawn = _download_numbers(params)
            where = f"{block.source}: {line}"
            assert drawn is not None, f"{where}: draws as many numbers as time allows"
            assert drawn.stop <= orders, f"{where}: past the {orders} orders"
            for other, taken in ranges:
                overlap = range(max(drawn.start, taken.start), min(drawn.stop, taken.stop))
                assert not overlap, f"{where}: draws {overlap} as {other} did"
            ranges.append((line, drawn))
            checked += 1
    assert checked >= 6  # the README's three runs and the --help block's three


def test_the_lists_name_only_examples_that_exist() -> None:
    """A line listed as parse-only or skipped is still in a text (else the list is stale)."""
    lines = {line for b in HELP + READMES for line in b.lines}
    assert sorted(set(PARSE_ONLY) - lines) == []
    assert sorted(set(SKIPPED) - lines) == []


def test_most_examples_run() -> None:
    """The tally: most lines run for real; the rest are parsed or skipped with a reason."""
    lines = {line for b in HELP + READMES for line in b.lines if line.startswith("cardemu")}
    parsed = lines & set(PARSE_ONLY)
    skipped = lines & set(SKIPPED)
    ran = lines - parsed - skipped
    assert len(ran) > 2 * (len(parsed) + len(skipped)), (len(ran), len(parsed), len(skipped))


def test_a_line_that_hangs_fails_naming_itself() -> None:
    """The time bound: a hanging line is a failure that names it, in its time."""
    t0 = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="cardemu hang --forever: still running"):
        with _bounded("cardemu hang --forever", 0.5):
            threading.Event().wait(10)  # blocks the main thread, as a join does
    assert time.monotonic() - t0 < 5


def test_the_test_process_is_never_monkey_patched() -> None:
    """`cardemu load` ran in a process of its own: Locust and gevent never came in here."""
    assert "locust" not in sys.modules
    assert "gevent.monkey" not in sys.modules
