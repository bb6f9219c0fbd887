"""Fuzzing the SM-DP+ over loopback HTTP: ES9+ bodies whose DER is mutated as a tree.

The server under test is the real one (`cardemu smdpp serve --no-tls`, the
built-in test PKI, the demo order) in a child process on 127.0.0.1, its
address space capped (RLIMIT_AS) so that a runaway decoder cannot take the
machine. Each case is one ES9+ request (GSMA SGP.22 v2.x §5.6, §6.5): a body
the project's LPA sends (`host.fuzz.rsp_seeds`) with its DER field
(euiccInfo1, authenticateServerResponse, ...) mutated by `host.fuzz.der` and
base64-encoded again. A function that runs inside a session
(authenticateClient, cancelSession, getBoundProfilePackage) gets a fresh one
first: a valid initiateAuthentication, whose transactionId goes into the body.

The oracles, per request:

- response-time: an answer within `hang_ms` (the HTTP client's timeout); a
  request still unanswered is a hang: the child is killed and restarted;
- no-exception: no HTTP 5xx (an exception escaped a handler), and the child
  never dies;
- well-formed-response: a 200 carries a JSON object with an ES9+ header;
- memory: the child's resident set grows by at most `memory_mb`;
- and the server still serves: every `probe_every` requests and after every
  finding, a valid initiateAuthentication must succeed.

A finding is saved as JSON (the set-up requests, the request, the mutations,
the violation) with a `cardemu fuzz --smdpp --replay FILE` line and, for a
request needing no set-up, a curl command. The request's DER is minimised
first: children removed and values emptied while the same oracle still fires.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host.es9plus import ADMIN_PROTOCOL, CONTENT_TYPE, ES9_PATHS
from host.fuzz import der
from host.fuzz.oracles import MEMORY, NO_EXCEPTION, RESPONSE_TIME, WELL_FORMED, Violation
from host.fuzz.report import digest_line
from host.fuzz.rsp_seeds import ES9_FIELDS, Es9Seed, load

#: How often each function is fuzzed (the DER each takes is decoded first thing).
FUNCTION_WEIGHTS: dict[str, float] = {
    "initiateAuthentication": 0.35,
    "authenticateClient": 0.30,
    "handleNotification": 0.20,
    "cancelSession": 0.10,
    "getBoundProfilePackage": 0.05,
}
#: Functions that run inside a session opened by initiateAuthentication.
SESSION_FUNCTIONS = frozenset({"authenticateClient", "cancelSession", "getBoundProfilePackage"})
#: The largest mutated DER sent (bytes; base64 makes the body a third longer).
MAX_DER = 200_000
#: The share of requests with one JSON-level change besides (or instead of) the DER's.
JSON_SHARE = 0.06
#: What a field becomes under a JSON-level change ("missing": the field is left out).
JSON_VALUES: dict[str, Any] = {
    "missing": None,
    "null": None,
    "number": 1,
    "negative": -1,
    "list": [],
    "object": {},
    "empty": "",
    "not-base64": "%%%not base64%%%",
    "huge": "QUFB" * 50_000,
    "odd-hex": "ABC",
}
#: Seconds the child has to start listening.
START_SECONDS = 60.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmdppChild:
    """The real SM-DP+ in a child process on loopback HTTP, killed and restarted at will.

    Args:
        workdir: where its SQLite store and log go.
        memory_cap_mb: the child's address-space cap (RLIMIT_AS).
    """

    def __init__(self, workdir: Path, memory_cap_mb: float = 2048.0) -> None:
        self.workdir = workdir
        self.memory_cap_mb = memory_cap_mb
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def _limit(self) -> None:  # runs in the child, before exec
        cap = int(self.memory_cap_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    def start(self) -> None:
        """Start the server and wait until it listens.

        Raises:
            RuntimeError: it did not start.
        """
        self.starts += 1
        self.port = _free_port()
        db = self.workdir / f"smdpp-{self.starts}.sqlite"
        log = open(self.workdir / "smdpp.log", "ab")  # noqa: SIM115 - the child keeps it
        env = dict(os.environ, MALLOC_ARENA_MAX="2")
        code = "import sys; from host.cli import main; sys.exit(main())"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "smdpp", "serve", "--no-tls", "--host", "127.0.0.1"]
            + ["--port", str(self.port), "--db", str(db), "--address", "localhost"]
            + ["--demo-order"],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=self._limit,  # noqa: PLW1509 - a resource limit, nothing else
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the SM-DP+ exited with {self.proc.returncode} at start")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the SM-DP+ did not start listening")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log."""
        try:
            text = (self.workdir / "smdpp.log").read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def last_traceback(self) -> str:
        """The last traceback the server logged (its handler's exception), or ""."""
        try:
            with open(self.workdir / "smdpp.log", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        at = text.rfind("Traceback (most recent call last)")
        if at < 0:
            return ""
        lines = text[at:].splitlines()
        end = next(
            (i + 1 for i, line in enumerate(lines[1:], 1) if line and not line.startswith(" ")),
            len(lines),
        )
        return "\n".join(lines[:end])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss(self) -> int:
        """The child's resident set in bytes (0 when gone)."""
        if self.proc is None:
            return 0
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self) -> None:
        """Kill the child (by its PID) and reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def post(self, path: str, body: bytes, timeout: float) -> tuple[int, bytes, float]:
        """POST a JSON body; (status, answer, seconds).

        Raises:
            TimeoutError: no answer within `timeout`.
            OSError: the connection failed or was dropped.
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        t0 = time.perf_counter()
        try:
            conn.request(
                "POST",
                path,
                body=body,
                headers={"Content-Type": CONTENT_TYPE, "X-Admin-Protocol": ADMIN_PROTOCOL},
            )
            resp = conn.getresponse()
            data = resp.read()
        except http.client.HTTPException as e:
            raise ConnectionError(str(e)) from None
        finally:
            conn.close()
        return resp.status, data, time.perf_counter() - t0


@dataclass
class Request:
    """One ES9+ request of a case: the function, its body, the mutations of its DER."""

    function: str
    body: dict[str, Any]
    mutations: str = ""
    session: bool = False
    #: a JSON-level change applied last, after the session's transactionId: (field, kind)
    json_op: tuple[str, str] | None = None

    @property
    def path(self) -> str:
        return ES9_PATHS[self.function]


@dataclass
class ServerFinding:
    """A violation on one request, with where its files went."""

    number: int
    violation: Violation
    request: Request
    requests_before: int
    seconds_before: float
    hits: int = 1
    path: Path | None = None
    #: the server's own traceback, for an exception that escaped a handler
    traceback: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "oracle": self.violation.oracle,
            "message": self.violation.message,
            "function": self.request.function,
            "key": self.violation.key,
            "mutations": self.request.mutations,
            "requests_before": self.requests_before,
            "seconds_before": round(self.seconds_before, 1),
            "hits": self.hits,
            "file": str(self.path) if self.path else None,
        }


@dataclass
class ServerReport:
    """The figures of one SM-DP+ campaign."""

    seed: int
    requests: int = 0
    setups: int = 0
    seconds: float = 0.0
    restarts: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    findings: list[ServerFinding] = field(default_factory=list)
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    digest: str = ""
    #: the run ended on a count (--budget), not on the clock (--time) or Ctrl-C
    counted: bool = True

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "target": "smdpp",
            "seed": self.seed,
            "engine": "asn1",
            "requests": self.requests,
            "setup_requests": self.setups,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(self.rate, 1),
            "restarts": self.restarts,
            "functions": dict(self.functions),
            "answers": dict(self.statuses),
            "server_rss_mb": {
                "start": round(self.rss_start / 2**20, 1),
                "end": round(self.rss_end / 2**20, 1),
                "peak": round(self.rss_peak / 2**20, 1),
            },
            "digest": self.digest,
            "findings": [f.to_json() for f in self.findings],
        }

    def text(self) -> str:
        out = [
            f"cardemu fuzz: SM-DP+ (ES9+ over loopback HTTP), seed {self.seed}, engine asn1",
            f"  {self.requests:,} requests in {self.seconds:.1f} s: {self.rate:,.1f}/s "
            f"(+{self.setups:,} set-up requests), {self.restarts} restart(s)",
            "  functions: " + ", ".join(f"{k} {n:,}" for k, n in sorted(self.functions.items())),
            "  answers: " + ", ".join(f"{k} {n:,}" for k, n in sorted(self.statuses.items())),
            f"  server memory: resident {self.rss_start / 2**20:.0f} MB after warm-up, "
            f"{self.rss_end / 2**20:.0f} MB at the end (peak seen {self.rss_peak / 2**20:.0f} MB)",
        ]
        if not self.findings:
            out.append("  findings: none")
        else:
            out.append(f"  findings: {len(self.findings)}")
            for f in self.findings:
                where = f" -> {f.path}" if f.path else ""
                out.append(
                    f"   {f.number}. [{f.violation.oracle}] {f.request.function}: "
                    f"{f.violation.message}{where} (after {f.requests_before:,} requests, "
                    f"{f.seconds_before:.1f} s)"
                )
        if self.digest:
            out.append(digest_line(self.digest, self.counted, self.seed, self.requests, "requests"))
        return "\n".join(out)


@dataclass(frozen=True)
class ServerConfig:
    """How an SM-DP+ campaign runs (see `FuzzConfig` for the shared meanings)."""

    seed: int = 0
    budget: int | None = 2000
    seconds: float | None = None
    hang_ms: float = 5000.0
    slow_ms: float = 2000.0
    memory_mb: float = 512.0
    probe_every: int = 200
    findings_dir: Path | None = None
    minimise: bool = True
    minimise_seconds: float = 60.0
    max_findings: int = 20


@dataclass
class Outcome:
    """What one request got: status and answer, or why there was none."""

    status: int | None
    data: bytes = b""
    seconds: float = 0.0
    error: str | None = None  # "timeout", "connection"


class SmdppFuzzer:
    """One campaign against the SM-DP+ in a child process.

    Args:
        config: how to run.
        child: the server (default: a new one in a temporary directory).
        on_progress: called with (requests, seconds, findings) now and then.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        child: SmdppChild | None = None,
        on_progress: Callable[[int, float, int], None] | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.rng = random.Random(self.config.seed)
        self._tmp: str | None = None
        if child is None:
            self._tmp = tempfile.mkdtemp(prefix="cardemu-smdpp-fuzz-")
            child = SmdppChild(Path(self._tmp), memory_cap_mb=4 * self.config.memory_mb)
        self.child = child
        self.on_progress = on_progress
        seeds = load().es9
        self.seeds: dict[str, list[tuple[Es9Seed, der.Node]]] = {}
        for s in seeds:
            self.seeds.setdefault(s.function, []).append((s, der.parse(s.der)))
        self.probe_seed = self.seeds["initiateAuthentication"][0][0]
        self.report = ServerReport(self.config.seed)
        self._seen: dict[tuple[str, str], ServerFinding] = {}
        self._digest = hashlib.sha256()
        self._base_rss = 0
        self._started = 0.0
        self._paused = 0.0

    # -- the server ------------------------------------------------------------------------

    def _send(self, req: Request, timeout: float) -> Outcome:
        payload = json.dumps(req.body).encode()
        try:
            status, data, dt = self.child.post(req.path, payload, timeout)
        except TimeoutError:
            return Outcome(None, seconds=timeout, error="timeout")
        except OSError as e:
            return Outcome(None, error=f"connection: {e}")
        return Outcome(status, data, dt)

    def _probe_body(self) -> dict[str, Any]:
        body = dict(self.probe_seed.body)
        body["euiccChallenge"] = _b64(self.rng.randbytes(16))
        return body

    def _open_session(self) -> str | None:
        """A valid initiateAuthentication: the new session's transactionId, or None."""
        out = self._send(Request("initiateAuthentication", self._probe_body()), 30.0)
        self.report.setups += 1
        if out.status != 200:
            return None
        try:
            answer = json.loads(out.data)
            status = answer["header"]["functionExecutionStatus"]["status"]
        except (ValueError, KeyError, TypeError):
            return None
        tid = answer.get("transactionId") if status == "Executed-Success" else None
        return tid if isinstance(tid, str) else None

    def _start(self, attempts: int = 3) -> None:
        """(Re)start the child and warm it up (its first decode compiles the ASN.1 module).

        Raises:
            RuntimeError: it did not answer a valid request after `attempts` starts.
        """
        why = ""
        for _ in range(attempts):
            try:
                self.child.restart() if self.child.proc is not None else self.child.start()
            except RuntimeError as e:
                why = str(e)
                continue
            if self._open_session() is not None:
                self._base_rss = self.child.rss()
                return
            why = "it does not answer a valid initiateAuthentication"
        tail = self.child.log_tail()
        raise RuntimeError(f"the SM-DP+ does not come up: {why}\n{tail}")

    def _restart(self) -> bool:
        """Restart the child; False (and a finding) if it does not come back."""
        t0 = time.perf_counter()
        self.report.restarts += 1
        try:
            self._start()
        except RuntimeError as e:
            v = Violation(NO_EXCEPTION, str(e).splitlines()[0], self.report.requests, "no-restart")
            finding = ServerFinding(
                len(self.report.findings) + 1,
                v,
                Request("initiateAuthentication", self._probe_body()),
                self.report.requests,
                self._elapsed(),
                traceback=str(e),
            )
            self.report.findings.append(finding)
            if self.config.findings_dir is not None:
                save_server_finding(finding, self.config.findings_dir, self.config.seed)
            return False
        finally:
            self._paused += time.perf_counter() - t0
        return True

    # -- cases ------------------------------------------------------------------------------

    def _case(self) -> Request:
        rng = self.rng
        names = [n for n in FUNCTION_WEIGHTS if n in self.seeds]
        function = rng.choices(names, [FUNCTION_WEIGHTS[n] for n in names])[0]
        seed, tree = rng.choice(self.seeds[function])
        if rng.random() < 0.03:
            data, what = tree.encode(), "unmutated"
        else:
            m = der.mutate(tree, rng, max_size=MAX_DER)
            data, what = m.data, m.describe()
        body = dict(seed.body)
        body[seed.field] = _b64(data)
        if function == "initiateAuthentication":
            body["euiccChallenge"] = _b64(rng.randbytes(16))
        json_op = None
        if rng.random() < JSON_SHARE:
            json_op = (rng.choice(sorted(body)), rng.choice(sorted(JSON_VALUES)))
            what = f"{what}; JSON {json_op[0]} {json_op[1]}"
        self._digest.update(f"{function}|{json_op}|".encode() + data + b"\0")
        return Request(function, body, what, function in SESSION_FUNCTIONS, json_op)

    def _prepare(self, req: Request) -> Request | None:
        body = dict(req.body)
        if req.session:
            tid = self._open_session()
            if tid is None:
                return None
            body["transactionId"] = tid
        return Request(req.function, _apply_json_op(body, req.json_op), req.mutations, req.session)

    def _check(self, req: Request, out: Outcome, index: int) -> list[Violation]:
        fn = req.function
        c = self.config
        if out.error == "timeout":
            return [
                Violation(
                    RESPONSE_TIME,
                    f"{fn}: no answer within {c.hang_ms:.0f} ms (a hang)",
                    index,
                    f"hang:{fn}",
                )
            ]
        if out.error is not None:
            died = not self.child.alive()
            code = self.child.proc.returncode if died and self.child.proc else None
            return [
                Violation(
                    NO_EXCEPTION,
                    f"{fn}: the server died (exit {code})"
                    if died
                    else f"{fn}: {out.error} (the server dropped the request)",
                    index,
                    f"{'died' if died else 'dropped'}:{fn}",
                )
            ]
        vs: list[Violation] = []
        assert out.status is not None
        if out.status >= 500:
            vs.append(
                Violation(
                    NO_EXCEPTION,
                    f"{fn}: HTTP {out.status} (an exception escaped the handler): "
                    f"{out.data[:120]!r}",
                    index,
                    f"{out.status}:{fn}",
                )
            )
        elif out.status == 200:
            try:
                answer = json.loads(out.data)
                answer["header"]["functionExecutionStatus"]["status"]
            except (ValueError, KeyError, TypeError):
                vs.append(
                    Violation(
                        WELL_FORMED,
                        f"{fn}: HTTP 200 without an ES9+ header: {out.data[:80]!r}",
                        index,
                        f"header:{fn}",
                    )
                )
        grown = self.child.rss() - self._base_rss
        if grown > c.memory_mb * 2**20:
            vs.append(
                Violation(
                    MEMORY,
                    f"{fn}: the server grew by {grown / 2**20:.0f} MB (bound {c.memory_mb:.0f})",
                    index,
                    f"memory:{fn}",
                )
            )
        if out.seconds * 1000 > c.slow_ms and not vs:
            again = self._send(self._prepare(req) or req, c.hang_ms / 1000)
            if again.error == "timeout" or again.seconds * 1000 > c.slow_ms:
                vs.append(
                    Violation(
                        RESPONSE_TIME,
                        f"{fn}: answered in {out.seconds * 1000:.0f} ms, then "
                        f"{again.seconds * 1000:.0f} ms (bound {c.slow_ms:.0f} ms)",
                        index,
                        f"slow:{fn}",
                    )
                )
        return vs

    def _healthy(self) -> bool:
        return self.child.alive() and self._open_session() is not None

    # -- the loop ---------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started - self._paused

    def _done(self) -> bool:
        c = self.config
        if c.budget is not None and self.report.requests >= c.budget:
            return True
        return c.seconds is not None and self._elapsed() >= c.seconds

    def run(self) -> ServerReport:
        """Run the campaign; the figures and findings."""
        rep = self.report
        c = self.config
        try:
            self._start()
            rep.rss_start = rep.rss_peak = self._base_rss
            self._started = time.perf_counter()
            last_progress = 0.0
            while not self._done():
                req = self._prepare(self._case())
                if req is None:
                    if not self._healthy():
                        self._violation(
                            Violation(
                                RESPONSE_TIME,
                                "the server no longer answers a valid initiateAuthentication",
                                rep.requests,
                                "unresponsive",
                            ),
                            Request("initiateAuthentication", self._probe_body()),
                        )
                        if not self._restart():
                            break
                    continue
                out = self._send(req, c.hang_ms / 1000)
                rep.requests += 1
                rep.functions[req.function] += 1
                rep.statuses[str(out.status) if out.status else out.error or "?"] += 1
                rep.rss_peak = max(rep.rss_peak, self.child.rss())
                vs = self._check(req, out, rep.requests)
                for v in vs:
                    self._violation(v, req)
                # A hang, a death or a swollen server is restarted; after an HTTP 5xx (or
                # every `probe_every` requests) it is restarted only if it no longer serves.
                broken = any(
                    v.oracle in (RESPONSE_TIME, MEMORY) or v.key.startswith(("died", "dropped"))
                    for v in vs
                )
                if broken or ((vs or rep.requests % c.probe_every == 0) and not self._healthy()):
                    if not self._restart():
                        break
                if self.on_progress is not None and time.monotonic() - last_progress > 0.25:
                    last_progress = time.monotonic()
                    self.on_progress(rep.requests, self._elapsed(), len(rep.findings))
            rep.seconds = self._elapsed()
            rep.rss_end = self.child.rss()
            rep.digest = self._digest.hexdigest()[:16]
            rep.counted = c.seconds is None
        finally:
            self.close()
        return rep

    def close(self) -> None:
        self.child.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- findings ---------------------------------------------------------------------------

    def _violation(self, v: Violation, req: Request) -> None:
        key = (v.oracle, v.key)
        seen = self._seen.get(key)
        if seen is not None:
            seen.hits += 1
            return
        c = self.config
        if len(self.report.findings) >= c.max_findings:
            return
        found_at = self._elapsed()
        t0 = time.perf_counter()
        tb = self.child.last_traceback() if v.oracle == NO_EXCEPTION else ""
        if c.minimise and req.function in ES9_FIELDS:
            req = self._minimise(req, v)
        finding = ServerFinding(
            len(self.report.findings) + 1, v, req, self.report.requests, found_at, traceback=tb
        )
        self.report.findings.append(finding)
        self._seen[key] = finding
        if c.findings_dir is not None:
            save_server_finding(finding, c.findings_dir, c.seed)
        self._paused += time.perf_counter() - t0

    def _fails(self, req: Request, v: Violation) -> bool:
        """Whether the request still shows the same violation (restarting after it)."""
        try:
            if not self.child.alive():
                self._start()
            prepared = self._prepare(req)
            if prepared is None:
                return False
            # Benign requests answer in milliseconds: a short bound is enough to see a hang.
            timeout = min(self.config.hang_ms / 1000, 1.5) if v.oracle == RESPONSE_TIME else 30.0
            out = self._send(prepared, timeout)
            got = self._check(prepared, out, v.step)
            hit = any(g.oracle == v.oracle and g.key == v.key for g in got)
            if got or out.error is not None:
                self._start()
        except RuntimeError:
            return False  # the server does not come back: the campaign's loop will say so
        return hit

    def _minimise(self, req: Request, v: Violation) -> Request:
        """Remove children and empty values of the request's DER while it still fails."""
        field_name, _ = ES9_FIELDS[req.function]
        deadline = time.monotonic() + self.config.minimise_seconds
        try:
            data = base64.b64decode(req.body[field_name])
            tree = der.parse(data)
        except (ValueError, KeyError):
            return req  # a mutated DER the walker cannot read back: kept as it is

        def build(t: der.Node) -> Request:
            body = dict(req.body)
            body[field_name] = _b64(t.encode())
            return Request(
                req.function, body, req.mutations + " (minimised)", req.session, req.json_op
            )

        if not self._fails(build(tree), v):
            return req
        changed = True
        while changed and time.monotonic() < deadline:
            changed = False
            for path, node in list(der.walk(tree)):
                if time.monotonic() >= deadline:
                    break
                for shrink in _shrinks(node):
                    trial = tree.copy()
                    shrink(der.at(trial, path))
                    if trial.encode() == tree.encode():
                        continue
                    if self._fails(build(trial), v):
                        tree = trial
                        changed = True
                        break
                if changed:
                    break
        return build(tree)


def _apply_json_op(body: dict[str, Any], op: tuple[str, str] | None) -> dict[str, Any]:
    if op is not None:
        name, kind = op
        if kind == "missing":
            body.pop(name, None)
        else:
            body[name] = JSON_VALUES[kind]
    return body


def _shrinks(node: der.Node) -> list[Callable[[der.Node], None]]:
    out: list[Callable[[der.Node], None]] = []
    if node.children:
        for i in range(len(node.children)):

            def drop(n: der.Node, i: int = i) -> None:
                assert n.children is not None
                del n.children[i]

            out.append(drop)
    elif node.children is None and len(node.value) > 1:

        def empty(n: der.Node) -> None:
            n.value = n.value[:1] if n.raw else b""

        out.append(empty)
    return out


def save_server_finding(finding: ServerFinding, directory: Path, seed: int) -> Path:
    """Write a finding as JSON: the set-up, the request, and how to replay it."""
    directory.mkdir(parents=True, exist_ok=True)
    req = finding.request
    name = f"{finding.number:03d}-{finding.violation.oracle}-smdpp-{req.function}.json"
    path = directory / name
    body = dict(req.body)
    if req.session:
        body["transactionId"] = "<from the set-up's answer>"
    doc: dict[str, Any] = {
        "title": f"cardemu fuzz --smdpp finding {finding.number}: {finding.violation.oracle}",
        "violation": finding.violation.message,
        "found": f"after {finding.requests_before} requests ({finding.seconds_before:.1f} s), "
        f"campaign seed {seed}",
        "mutations": req.mutations,
        "server_traceback": finding.traceback.splitlines(),
        "replay": f"cardemu fuzz --smdpp --replay {name}",
        "setup": [
            {
                "function": "initiateAuthentication",
                "path": ES9_PATHS["initiateAuthentication"],
                "note": "a valid one (its transactionId goes into the request)",
            }
        ]
        if req.session
        else [],
        "request": {
            "function": req.function,
            "path": req.path,
            "body": body,
            "json_op": list(req.json_op) if req.json_op else None,
        },
    }
    if not req.session:
        body_file = path.with_suffix(".body.json")
        sent = _apply_json_op(dict(req.body), req.json_op)
        body_file.write_text(json.dumps(sent), encoding="utf-8")
        doc["curl"] = (
            f"cardemu smdpp serve --no-tls --port 8080 --address localhost --db /tmp/x.sqlite & "
            f"curl -m 10 -H 'Content-Type: {CONTENT_TYPE}' "
            f"-H 'X-Admin-Protocol: {ADMIN_PROTOCOL}' --data @{body_file.name} "
            f"http://127.0.0.1:8080{req.path}"
        )
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    finding.path = path
    return path


def replay_server_finding(path: Path, config: ServerConfig | None = None) -> list[Violation]:
    """Send a saved finding's request to a fresh SM-DP+ child under the oracles.

    Raises:
        ValueError: the file is not a saved finding.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        r = doc["request"]
        op = r.get("json_op")
        req = Request(
            r["function"],
            dict(r["body"]),
            doc.get("mutations", ""),
            bool(doc["setup"]),
            (str(op[0]), str(op[1])) if op else None,
        )
        if req.json_op is not None and req.json_op[1] not in JSON_VALUES:
            raise ValueError(f"unknown JSON change {req.json_op[1]!r}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a saved SM-DP+ finding ({e})") from None
    if req.function not in ES9_PATHS:
        raise ValueError(f"{path}: unknown ES9+ function {req.function!r}")
    fz = SmdppFuzzer(config)
    try:
        fz._start()
        prepared = fz._prepare(req)
        if prepared is None:
            raise RuntimeError("the set-up initiateAuthentication failed")
        out = fz._send(prepared, fz.config.hang_ms / 1000)
        return fz._check(prepared, out, 0)
    finally:
        fz.close()
