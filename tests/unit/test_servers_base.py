"""The servers' web stack (host.servers.base): routing, errors, TLS, loopback, the store."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading

import pytest

from host.pki import create_pki
from host.servers.base import (
    MAX_BODY,
    HttpError,
    JsonApp,
    Request,
    Response,
    Server,
    Store,
    require_loopback,
    tls_context,
)

SECRET = "k=00112233445566778899aabbccddeeff"


def _app() -> JsonApp:
    app = JsonApp("test", headers={"X-Admin-Protocol": "gsma/rsp/v2.2.0"})

    @app.route("POST", "/echo")
    def echo(r: Request) -> dict:
        return {"got": r.json(), "query": dict(r.query), "ua": r.header("user-agent")}

    @app.route("GET", "/boom")
    def boom(r: Request) -> dict:
        raise RuntimeError(SECRET)

    @app.route("GET", "/teapot")
    def teapot(r: Request) -> dict:
        raise HttpError(418, "short and stout")

    @app.route("POST", "/nothing")
    def nothing(r: Request) -> None:
        return None

    @app.route("GET", "/raw")
    def raw(r: Request) -> Response:
        return Response(status=201, body=b"\x00\x01", content_type="application/octet-stream")

    @app.route("POST", "/object")
    def obj(r: Request) -> dict:
        return r.json_object()

    return app


def _call(
    server: Server,
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


JSON = {"Content-Type": "application/json;charset=UTF-8"}


@pytest.fixture()
def server():
    with Server(_app()) as s:
        yield s


def test_json_round_trip_and_app_headers(server: Server) -> None:
    status, headers, body = _call(
        server, "POST", "/echo?x=1&x=2", b'{"a": [1, "b"]}', {**JSON, "User-Agent": "t"}
    )
    assert status == 200
    assert json.loads(body) == {"got": {"a": [1, "b"]}, "query": {"x": ["1", "2"]}, "ua": "t"}
    assert headers["content-type"] == "application/json"
    assert headers["x-admin-protocol"] == "gsma/rsp/v2.2.0"
    assert server.url == f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "method,path,body,headers,status",
    [
        ("GET", "/nowhere", None, {}, 404),
        ("GET", "/echo", None, {}, 405),
        ("POST", "/echo", b'{"a":', JSON, 400),
        ("POST", "/echo", b'{"a":1}', {"Content-Type": "text/plain"}, 415),
        ("POST", "/echo", b"\xff\xfe", JSON, 400),
        ("POST", "/object", b"[1]", JSON, 400),
        ("GET", "/teapot", None, {}, 418),
    ],
)
def test_client_errors_are_json(server: Server, method, path, body, headers, status) -> None:
    got, hdrs, raw = _call(server, method, path, body, headers)
    assert got == status
    err = json.loads(raw)["error"]
    assert err["status"] == status and err["message"]
    if status == 405:
        assert hdrs["allow"] == "POST"


def test_handler_crash_is_500_without_the_secret(server: Server, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="host.servers.base"):
        status, _, body = _call(server, "GET", "/boom")
    assert status == 500
    assert json.loads(body) == {"error": {"status": 500, "message": "internal error"}}
    assert SECRET.encode() not in body and b"Traceback" not in body
    # ...but the operator's log has it.
    assert any(SECRET in (r.exc_text or "") for r in caplog.records)
    # The server lives on.
    assert _call(server, "POST", "/echo", b"1", JSON)[0] == 200


def test_204_raw_and_keepalive(server: Server) -> None:
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


def test_body_limits(server: Server) -> None:
    status, _, body = _call(
        server, "POST", "/echo", b"", {**JSON, "Content-Length": str(MAX_BODY + 1)}
    )
    assert status == 413
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\n1\r\n1\r\n0\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 411")


def test_tls_server(tmp_path) -> None:
    pki = create_pki(seed=b"base")
    ctx = tls_context(pki.dptls.pem, pki.dptls.key_pem)
    with Server(_app(), tls=ctx) as s:
        assert s.url.startswith("https://127.0.0.1:")
        client = ssl.create_default_context(cadata=pki.ci.pem.decode())
        status, _, body = _call(s, "POST", "/echo", b'"hi"', JSON, context=client)
        assert status == 200 and json.loads(body)["got"] == "hi"
        # A client that does not trust our CI fails the handshake; the server carries on.
        with pytest.raises(ssl.SSLCertVerificationError):
            _call(s, "POST", "/echo", b"1", JSON, context=ssl.create_default_context())
        # Plain HTTP to the TLS port gets nothing useful, and breaks nothing.
        with socket.create_connection((s.host, s.port), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\n\r\n")
            try:
                assert not raw.recv(100).startswith(b"HTTP/")
            except ConnectionResetError:
                pass
        assert _call(s, "POST", "/echo", b"2", JSON, context=client)[0] == 200


def test_loopback_only() -> None:
    assert require_loopback("127.0.0.1") == "127.0.0.1"
    assert require_loopback("localhost") == "localhost"
    for host in ("0.0.0.0", "192.168.1.1", "8.8.8.8"):
        with pytest.raises(ValueError, match="loopback"):
            Server(_app(), host=host)
    with Server(_app(), host="127.0.0.2") as s:
        assert s.host == "127.0.0.2"


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        s = Server(_app(), host="::1")
    except OSError as e:
        pytest.skip(f"::1 cannot be bound here: {e}")
    with s:
        assert s.url.startswith("http://[::1]:")
        conn = http.client.HTTPConnection("::1", s.port, timeout=10)
        conn.request("POST", "/echo", body=b"3", headers=JSON)
        assert conn.getresponse().status == 200
        conn.close()


def test_stop_releases_the_port() -> None:
    s = Server(_app()).start()
    port = s.port
    s.stop()
    with Server(_app(), port=port) as again:
        assert again.port == port


def test_concurrent_requests(server: Server) -> None:
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


def test_store_transactions(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
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
