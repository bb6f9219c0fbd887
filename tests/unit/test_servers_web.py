"""The servers' web stack (host.servers.web): Starlette on uvicorn, errors, limits, TLS, the store.

Every test talks to a real server over loopback HTTP(S), as a client would.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import statistics
import threading
import time

import pytest
from pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from host.pki import create_pki
from host.servers.web import (
    MAX_BODY,
    HttpError,
    RoleServer,
    Store,
    TlsFiles,
    check_bind_host,
    hex_field,
    json_object,
    role_app,
    text_field,
)

SECRET = "k=00112233445566778899aabbccddeeff"
JSON = {"Content-Type": "application/json;charset=UTF-8"}


async def echo(r: Request) -> Response:
    got = json.loads(await r.body())
    query = {k: r.query_params.getlist(k) for k in r.query_params}
    return JSONResponse({"got": got, "query": query, "ua": r.headers.get("user-agent")})


async def boom(r: Request) -> Response:
    raise RuntimeError(SECRET)


async def teapot(r: Request) -> Response:
    raise HttpError(418, "short and stout")


async def nothing(r: Request) -> Response:
    return Response(status_code=204)


async def raw(r: Request) -> Response:
    return Response(b"\x00\x01", status_code=201, media_type="application/octet-stream")


async def obj(r: Request) -> Response:
    return JSONResponse(await json_object(r))


def _app(max_body: int = MAX_BODY):
    return role_app(
        "test",
        [
            Route("/echo", echo, methods=["POST"]),
            Route("/boom", boom),
            Route("/teapot", teapot),
            Route("/nothing", nothing, methods=["POST"]),
            Route("/raw", raw),
            Route("/object", obj, methods=["POST"]),
        ],
        headers={"X-Admin-Protocol": "gsma/rsp/v2.2.0"},
        max_body=max_body,
    )


def _call(
    server: RoleServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    if context is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "localhost", server.port, context=context, timeout=10
        )
    else:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture()
def server():
    with RoleServer(_app(), name="test") as s:
        yield s


def test_json_round_trip_and_app_headers(server: RoleServer) -> None:
    status, headers, body = _call(
        server, "POST", "/echo?x=1&x=2", b'{"a": [1, "b"]}', {**JSON, "User-Agent": "t"}
    )
    assert status == 200
    assert json.loads(body) == {"got": {"a": [1, "b"]}, "query": {"x": ["1", "2"]}, "ua": "t"}
    assert headers["content-type"] == "application/json"
    assert headers["x-admin-protocol"] == "gsma/rsp/v2.2.0"
    assert headers["server"] == "cardemu-test"
    assert server.url == f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "method,path,body,headers,status",
    [
        ("GET", "/nowhere", None, {}, 404),
        ("GET", "/echo", None, {}, 405),
        ("POST", "/object", b'{"a":', JSON, 400),
        ("POST", "/object", b'{"a":1}', {"Content-Type": "text/plain"}, 415),
        ("POST", "/object", b"\xff\xfe", JSON, 400),
        ("POST", "/object", b"[1]", JSON, 400),
        ("GET", "/teapot", None, {}, 418),
    ],
)
def test_client_errors_are_problem_details(
    server: RoleServer, method, path, body, headers, status
) -> None:
    got, hdrs, raw_body = _call(server, method, path, body, headers)
    assert got == status
    assert hdrs["content-type"] == "application/problem+json"
    err = json.loads(raw_body)
    assert err["status"] == status and err["detail"] and err["title"]
    # The role's headers ride on error answers too.
    assert hdrs["x-admin-protocol"] == "gsma/rsp/v2.2.0"
    if status == 405:
        assert hdrs["allow"] == "POST"


def test_handler_crash_is_500_without_the_secret(server: RoleServer, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="host.servers.web"):
        status, _, body = _call(server, "GET", "/boom")
    assert status == 500
    assert json.loads(body)["detail"] == "internal error"
    assert SECRET.encode() not in body and b"Traceback" not in body
    # ...but the operator's log has it.
    assert any(SECRET in (r.exc_text or "") for r in caplog.records)
    # The server lives on.
    assert _call(server, "POST", "/echo", b"1", JSON)[0] == 200


def test_204_raw_and_keepalive(server: RoleServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", "/nothing", body=b"{}", headers=JSON)
        r = conn.getresponse()
        assert r.status == 204 and r.read() == b""
        # The same connection serves the next request (HTTP/1.1 keep-alive).
        conn.request("GET", "/raw")
        r = conn.getresponse()
        assert r.status == 201 and r.read() == b"\x00\x01"
        assert r.getheader("Content-Type") == "application/octet-stream"
    finally:
        conn.close()


def test_body_limits() -> None:
    with RoleServer(_app(max_body=64)) as server:
        # A declared length over the limit is refused before the body is read.
        status, _, body = _call(server, "POST", "/object", b"", {**JSON, "Content-Length": "65"})
        assert status == 413 and json.loads(body)["status"] == 413
        # A chunked body is read up to the limit, then refused.
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            chunk = b"[" + b"1," * 40 + b"1]"
            s.sendall(
                b"POST /object HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/json\r\n\r\n"
                + f"{len(chunk):x}".encode()
                + b"\r\n"
                + chunk
                + b"\r\n0\r\n\r\n"
            )
            assert s.recv(100).startswith(b"HTTP/1.1 413")
        # Within the limit, chunked is fine.
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(
                b"POST /object HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b'Content-Type: application/json\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n'
            )
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    assert MAX_BODY >= 1024 * 1024


def test_tls_server() -> None:
    pki = create_pki(seed=b"base")
    with RoleServer(_app(), tls=TlsFiles(pki.dptls.pem, pki.dptls.key_pem)) as s:
        assert s.url.startswith("https://127.0.0.1:")
        client = ssl.create_default_context(cadata=pki.ci.pem.decode())
        status, _, body = _call(s, "POST", "/echo", b'"hi"', JSON, context=client)
        assert status == 200 and json.loads(body)["got"] == "hi"
        # A client that does not trust our CI fails the handshake; the server carries on.
        with pytest.raises(ssl.SSLCertVerificationError):
            _call(s, "POST", "/echo", b"1", JSON, context=ssl.create_default_context())
        # Plain HTTP to the TLS port gets nothing useful, and breaks nothing.
        with socket.create_connection((s.host, s.port), timeout=10) as raw_sock:
            raw_sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            try:
                assert not raw_sock.recv(100).startswith(b"HTTP/")
            except ConnectionResetError:
                pass
        assert _call(s, "POST", "/echo", b"2", JSON, context=client)[0] == 200


def test_loopback_by_default(caplog) -> None:
    assert check_bind_host("127.0.0.1") == "127.0.0.1"
    assert check_bind_host("localhost") == "localhost"
    for host in ("0.0.0.0", "192.168.1.1", "8.8.8.8"):
        with pytest.raises(ValueError, match="loopback"):
            RoleServer(_app(), host=host)
    # Another address only when asked, and then with a warning.
    with caplog.at_level(logging.WARNING, logger="host.servers.web"):
        s = RoleServer(_app(), host="0.0.0.0", allow_remote=True)
    s.stop()
    assert any("other machines" in r.getMessage() for r in caplog.records)
    with RoleServer(_app(), host="127.0.0.2") as s:
        assert s.host == "127.0.0.2"


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        s = RoleServer(_app(), host="::1")
    except OSError as e:
        pytest.skip(f"::1 cannot be bound here: {e}")
    with s:
        assert s.url.startswith("http://[::1]:")
        conn = http.client.HTTPConnection("::1", s.port, timeout=10)
        conn.request("POST", "/echo", body=b"3", headers=JSON)
        assert conn.getresponse().status == 200
        conn.close()


def test_stop_releases_the_port() -> None:
    s = RoleServer(_app()).start()
    port = s.port
    s.stop()
    with RoleServer(_app(), port=port) as again:
        assert again.port == port
        assert _call(again, "POST", "/echo", b"4", JSON)[0] == 200


def test_concurrent_requests(server: RoleServer) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        status, _, body = _call(server, "POST", "/echo", json.dumps(i).encode(), JSON)
        with lock:
            results.append(json.loads(body)["got"] if status == 200 else -1)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(results) == list(range(16))


def test_no_round_trip_waits_on_a_delayed_ack(server: RoleServer) -> None:
    """Headers and body leaving in two writes without TCP_NODELAY stall ~40 ms.

    Twenty POSTs on one keep-alive connection: with Nagle meeting delayed ACK
    every round trip would take 40 ms or more; here the median is far below.
    """
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    times = []
    try:
        for i in range(20):
            t0 = time.perf_counter()
            conn.request("POST", "/echo", body=json.dumps({"i": i}).encode(), headers=JSON)
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["got"] == {"i": i}
            times.append(time.perf_counter() - t0)
    finally:
        conn.close()
    assert statistics.median(times) < 0.030, f"median round trip {statistics.median(times):.4f}s"


def test_no_https_round_trip_waits_on_a_delayed_ack() -> None:
    """The same over TLS, as the LPA meets the SM-DP+: a small answer and a BPP-sized one.

    TLS adds records of its own to every write; a stall would show as 40 ms or
    more per round trip on the kept connection.
    """
    pki = create_pki(seed=b"base")
    context = ssl.create_default_context(cadata=pki.ci.pem.decode())
    with RoleServer(_app(), tls=TlsFiles(pki.dptls.pem, pki.dptls.key_pem)) as s:
        conn = http.client.HTTPSConnection(s.host, s.port, timeout=10, context=context)
        conn.connect()  # the handshake is not a round trip of the measure
        times = []
        try:
            for i in range(30):
                payload = "x" * (20_000 if i % 2 else 10)
                t0 = time.perf_counter()
                conn.request("POST", "/echo", body=json.dumps(payload).encode(), headers=JSON)
                r = conn.getresponse()
                assert r.status == 200 and json.loads(r.read())["got"] == payload
                times.append(time.perf_counter() - t0)
        finally:
            conn.close()
    for half in (times[0::2], times[1::2]):
        assert statistics.median(half) < 0.030, f"median round trip {statistics.median(half):.4f}s"


def test_no_es9_round_trip_to_the_smdpp_waits_on_a_delayed_ack() -> None:
    """The LPA's ES9+ client on one kept HTTPS connection to the SM-DP+ role."""
    from host.es9plus import Es9Error
    from host.lpa.es9 import Es9Client
    from host.servers.smdpp.server import SmdpPlus

    pki = create_pki(seed=b"base")
    smdp = SmdpPlus(pki, address="localhost")
    times = []
    with smdp.serve() as s:
        client = Es9Client(f"localhost:{s.port}", ca_pem=pki.ci.pem)
        with client:
            for _ in range(20):
                t0 = time.perf_counter()
                with pytest.raises(Es9Error):  # no such session: answered at once
                    client.call(
                        "getBoundProfilePackage",
                        {"transactionId": "01", "prepareDownloadResponse": "AAAA"},
                    )
                times.append(time.perf_counter() - t0)
        assert client.connections == 1
    assert statistics.median(times[1:]) < 0.030, f"median {statistics.median(times[1:]):.4f}s"


def test_a_transaction_that_need_not_be_durable_commits_without_the_disk(tmp_path) -> None:
    """synchronous=NORMAL for that commit only (WAL: in order, consistent); FULL again after."""
    store = Store(str(tmp_path / "s.sqlite"), "CREATE TABLE t (x INTEGER)")

    def synchronous() -> int:
        return int(store.query_one("PRAGMA synchronous")[0])

    assert synchronous() == 2  # FULL
    with store.transaction(durable=False) as c:
        assert synchronous() == 1  # NORMAL
        c.execute("INSERT INTO t VALUES (1)")
    assert synchronous() == 2
    with pytest.raises(RuntimeError):
        with store.transaction(durable=False) as c:
            c.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("rolled back")
    assert synchronous() == 2
    with store.transaction() as c:
        assert synchronous() == 2
        c.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in store.query("SELECT x FROM t ORDER BY x")] == [1, 3]
    store.close()
    memory = Store(":memory:", "CREATE TABLE t (x INTEGER)")
    with memory.transaction(durable=False) as c:
        c.execute("INSERT INTO t VALUES (1)")
    assert memory.query_one("SELECT count(*) FROM t")[0] == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request, tmp_path) -> str:
    """An SQLite file, or an empty PostgreSQL database (skipped where PostgreSQL is absent)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "s.sqlite")


def test_store_transactions(store_db) -> None:
    path = store_db
    schema = "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)"
    with Store(path, schema) as st:
        with st.transaction() as c:
            c.execute("INSERT INTO kv VALUES ('a', '1')")
        with pytest.raises(RuntimeError):
            with st.transaction() as c:
                c.execute("INSERT INTO kv VALUES ('b', '2')")
                raise RuntimeError("abort")
        assert [tuple(r) for r in st.query("SELECT k, v FROM kv")] == [("a", "1")]
        assert st.query_one("SELECT v FROM kv WHERE k = ?", ("zz",)) is None
    # The file keeps what was committed; the schema is applied again harmlessly.
    with Store(path, schema) as st:
        assert st.query_one("SELECT v FROM kv WHERE k = 'a'")["v"] == "1"


@pytest.mark.parametrize(
    ("body", "message"),
    [({}, "x: a hex string"), ({"x": 1}, "x: a hex string"), ({"x": "0G"}, "x: not hex")],
)
def test_hex_field_refusals(body, message) -> None:
    with pytest.raises(HttpError) as e:
        hex_field(body, "x")
    assert (e.value.status_code, e.value.message) == (400, message)


@pytest.mark.parametrize("value", [None, 5, "", "abcd"])
def test_text_field_refusals(value) -> None:
    with pytest.raises(HttpError) as e:
        text_field({"x": value}, "x", 3)
    assert (e.value.status_code, e.value.message) == (400, "x: a string of 1..3 characters")


def test_fields_accepted() -> None:
    assert hex_field({"x": "0aFF"}, "x") == b"\x0a\xff"
    assert text_field({"x": "abc"}, "x", 3) == "abc"


def test_store_of_adds_a_role_s_tables_to_a_shared_store(store_db) -> None:
    """`Store.of`: a role on another's store adds its tables there; a path opens a new one."""
    first = "CREATE TABLE IF NOT EXISTS a (k TEXT PRIMARY KEY)"
    second = (
        "CREATE TABLE IF NOT EXISTS b (k TEXT PRIMARY KEY); CREATE TABLE IF NOT EXISTS c (k TEXT)"
    )
    with Store(store_db, first) as st:
        assert Store.of(st, second) is st
        assert st.columns("b") == {"k"} and st.columns("c") == {"k"}
        assert Store.of(st, second) is st  # applied again, harmlessly
    with Store.of(store_db, first) as again:
        assert isinstance(again, Store) and again.columns("c") == {"k"}


def test_store_types_and_conflicts(store_db) -> None:
    """Bytes, floats, big integers, row access by name and index; a UNIQUE conflict is known."""
    schema = (
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT UNIQUE,"
        " b BLOB, r REAL, i INTEGER)"
    )
    with Store(store_db, schema) as st:
        with st.transaction() as c:
            assert not c.lastrowid  # nothing inserted yet (None, or 0 on SQLite)
            c.execute(
                "INSERT INTO t (k, b, r, i) VALUES (?, ?, ?, ?)",
                ("a", b"\0\xff", 1.5e9 + 0.25, 2**40),
            )
            assert c.lastrowid == 1
            c.execute("INSERT INTO t (k, b, r, i) VALUES (?, ?, ?, ?)", ("50%", b"", 0.0, -1))
            assert c.lastrowid == 2
        row = st.query_one("SELECT * FROM t WHERE k = ?", ("a",))
        assert (bytes(row["b"]), row["r"], row["i"], row["id"]) == (
            b"\0\xff",
            1.5e9 + 0.25,
            2**40,
            1,
        )
        assert tuple(row)[1:3] == ("a", b"\0\xff") and dict(row)["k"] == "a"
        # A literal ? or % in the SQL is no parameter.
        assert st.query("SELECT k FROM t WHERE k = '?'") == []
        assert [r["k"] for r in st.query("SELECT k FROM t WHERE k LIKE '%!%' ESCAPE '!'")] == [
            "50%"
        ]
        with pytest.raises(Exception) as e:
            with st.transaction() as c:
                c.execute("INSERT INTO t (k) VALUES (?)", ("a",))
        assert Store.is_conflict(e.value)
        assert not Store.is_conflict(RuntimeError("UNIQUE"))
        assert st.query_one("SELECT COUNT(*) AS n FROM t")["n"] == 2


def test_store_serialises_threads() -> None:
    st = Store(schema="CREATE TABLE n (i INTEGER)")
    with st.transaction() as c:
        c.execute("INSERT INTO n VALUES (0)")

    def bump() -> None:
        for _ in range(50):
            with st.transaction() as c:
                (i,) = c.execute("SELECT i FROM n").fetchone()
                c.execute("UPDATE n SET i = ?", (i + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert st.query_one("SELECT i FROM n")["i"] == 200


def test_stores_on_one_database_lose_no_update(store_db) -> None:
    """Two stores on one database (as two worker processes): read-then-write under
    `for_update` loses no increment (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock)."""
    schema = "CREATE TABLE IF NOT EXISTS n (id INTEGER PRIMARY KEY, i INTEGER)"
    stores = [Store(store_db, schema) for _ in range(2)]
    with stores[0].transaction() as c:
        c.execute("INSERT INTO n VALUES (1, 0)")

    def bump(st: Store) -> None:
        for _ in range(25):
            with st.transaction() as c:
                (i,) = c.execute("SELECT i FROM n WHERE id = 1" + st.for_update).fetchone()
                c.execute("UPDATE n SET i = ? WHERE id = 1", (i + 1,))

    threads = [threading.Thread(target=bump, args=(stores[k % 2],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[1].query_one("SELECT i FROM n")["i"] == 100
    for st in stores:
        st.close()


def test_level_5_stays_traffic_after_uvicorn_configures_logging() -> None:
    """Regression: uvicorn names level 5 TRACE on every Config; our APDU traces say TRAFFIC."""
    from host.log import TRAFFIC

    RoleServer(_app()).stop()
    assert logging.getLevelName(TRAFFIC) == "TRAFFIC"


def test_a_postgresql_transaction_that_need_not_be_durable_commits_asynchronously(
    request: pytest.FixtureRequest,
) -> None:
    """PgStore: `synchronous_commit = off` for that transaction only (SET LOCAL)."""
    url = str(request.getfixturevalue("pg_url"))  # skipped where PostgreSQL is absent
    store = Store(url, "CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    try:
        with store.transaction(durable=False) as c:
            c.execute("SHOW synchronous_commit")
            assert c.fetchone()[0] == "off"
            c.execute("INSERT INTO t VALUES (?)", (1,))
        with store.transaction() as c:
            c.execute("SHOW synchronous_commit")
            assert c.fetchone()[0] == "on"
        assert store.query_one("SELECT count(*) FROM t")[0] == 1
    finally:
        store.close()
