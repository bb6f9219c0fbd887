"""The LPA keeps one HTTPS connection per download (host.lpa.es9 `with Es9Client`).

Connections are counted at the server: an ASGI wrapper around the SM-DP+'s
app notes the client (address, port) of every request, one port per TCP
connection and so per TLS handshake.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from host.lpa import Es9TransportError, Es10Client, Lpa
from host.lpa.demo import demo_order
from host.lpa.es9 import Es9Client, HttpAnswer, HttpRequest
from host.pki import default_pki
from host.presets import PRESETS, new_card
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import SmdpPlus
from host.servers.web import RoleServer, TlsFiles

pytestmark = pytest.mark.skipif(
    "euicc" not in PRESETS, reason="no euicc preset (applets.isdr) here"
)


class Counting:
    """ASGI middleware: the client port of each HTTP request; optionally `Connection: close`."""

    def __init__(self, app: Any, *, close: bool = False) -> None:
        self.app = app
        self.close = close
        self.ports: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.ports.append(scope["client"][1])

        async def closing(message: Any) -> None:
            if self.close and message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)


@pytest.fixture(scope="module")
def pki() -> Any:
    return default_pki()


def serve(pki: Any, *, close: bool = False) -> tuple[SmdpPlus, Counting, RoleServer]:
    smdp = SmdpPlus(pki, address="localhost")
    first = demo_order()
    smdp.add_order(first)
    smdp.add_order(
        ProfileOrder("DEMO-2", "8988211000000000024", "001010000000002", first.k, first.opc)
    )
    assert smdp.tls is not None
    counting = Counting(smdp.app(), close=close)
    server = RoleServer(counting, tls=TlsFiles(smdp.tls.pem, smdp.tls.key_pem), name="smdpp")
    smdp.address = f"localhost:{server.port}"
    return smdp, counting, server


@pytest.fixture()
def es10() -> Iterator[Es10Client]:
    with Es10Client(InProcessReader(new_card("euicc"))) as es10:
        yield es10


def test_a_download_makes_one_tls_handshake(pki: Any, es10: Es10Client) -> None:
    smdp, counting, server = serve(pki)
    with server:
        lpa = Lpa(es10, ca_pem=pki.ci.pem)
        result = lpa.download(f"LPA:1$localhost:{server.port}$DEMO-1")
        assert result.installed and result.notified
        # InitiateAuthentication, AuthenticateClient, GetBoundProfilePackage, HandleNotification.
        assert len(counting.ports) == 4
        assert len(set(counting.ports)) == 1
        # Closed at the end: the next download has a connection of its own.
        result = lpa.download(f"LPA:1$localhost:{server.port}$DEMO-2")
        assert result.installed and result.notified
        assert len(counting.ports) == 8 and len(set(counting.ports)) == 2


def test_a_server_closing_between_calls_gets_a_new_connection(pki: Any, es10: Es10Client) -> None:
    """`Connection: close` on every answer: each call reconnects, the download completes."""
    _, counting, server = serve(pki, close=True)
    with server:
        result = Lpa(es10, ca_pem=pki.ci.pem).download(f"LPA:1$localhost:{server.port}$DEMO-1")
        assert result.installed and result.notified
        assert len(set(counting.ports)) == len(counting.ports) == 4


def test_a_kept_connection_the_server_dropped_while_idle_is_replaced(
    pki: Any, es10: Es10Client
) -> None:
    """The server's keep-alive timeout closes the idle connection with no word in the answer."""
    _, counting, server = serve(pki)
    # uvicorn reads the timeout per connection from its config.
    server._server.config.timeout_keep_alive = 0.01  # noqa: SLF001

    def slow(request: HttpRequest, send: Any) -> HttpAnswer:
        answer = send()
        time.sleep(0.15)  # the user, or the eUICC, takes longer than the server waits
        return answer

    with server:
        lpa = Lpa(es10, ca_pem=pki.ci.pem, http_hook=slow)
        result = lpa.download(f"LPA:1$localhost:{server.port}$DEMO-1")
        assert result.installed and result.notified
        assert len(set(counting.ports)) == len(counting.ports) == 4


def test_tls_is_still_checked_on_the_kept_connection(es10: Es10Client) -> None:
    """A client trusting another CI refuses the SM-DP+'s CERT.DPtls (SGP.22 §2.6.6)."""
    from host.pki import create_pki

    _, counting, server = serve(create_pki(seed=b"stranger CI"))
    with server, Es9Client(f"localhost:{server.port}", ca_pem=default_pki().ci.pem) as client:
        with pytest.raises(Es9TransportError, match="certificate"):
            client.call("initiateAuthentication", {})
        assert counting.ports == []


def test_outside_with_each_call_has_its_own_connection(pki: Any) -> None:
    _, counting, server = serve(pki)
    with server:
        client = Es9Client(f"localhost:{server.port}", ca_pem=pki.ci.pem)
        for _ in range(2):
            with pytest.raises(Exception):  # noqa: B017, PT011 - an empty request is refused
                client.call("initiateAuthentication", {})
        assert client.connections == 2 and len(set(counting.ports)) == 2
        with client:
            for _ in range(3):
                with pytest.raises(Exception):  # noqa: B017, PT011
                    client.call("initiateAuthentication", {})
        assert client.connections == 3 and len(set(counting.ports)) == 3
