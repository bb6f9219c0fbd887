"""ES12 client: what an SM-DP+ (or an alternative SM-DS) calls on an SM-DS (GSMA SGP.22 v2.x §5.8).

    ds = Es12Client("smds.example.com", ca_pem=ci_pem, requester="smdp.example.com")
    ds.register_event(eid, "EVT-1", "smdp.example.com")
    ds.delete_event(eid, "EVT-1")

JSON over HTTPS like ES9+, each request with the ES12 `header`
(functionRequesterIdentifier: the caller's address, §6.5.1.3).
"""

from __future__ import annotations

from typing import Any

from host.es9plus import ES12_PATHS
from host.lpa.es9 import Es9Client, HttpHook

__all__ = ["Es12Client"]


class Es12Client:
    """ES12 to one SM-DS.

    Args:
        address: the SM-DS address (`host` or `host:port`).
        requester: the caller's own address (the request header's requester).
        ca_pem: PEM certificates trusted for TLS (the CI); None: the system's.
        connect_to: (host, port) to connect to instead of the address's.
        tls: False for plain HTTP (tests only).
        hook: wraps every HTTP exchange.
    """

    def __init__(
        self,
        address: str,
        *,
        requester: str,
        ca_pem: bytes | str | None = None,
        connect_to: tuple[str, int] | None = None,
        tls: bool = True,
        hook: HttpHook | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.address = address
        self._client = Es9Client(
            address,
            ca_pem=ca_pem,
            connect_to=connect_to,
            tls=tls,
            hook=hook,
            timeout=timeout,
            paths=ES12_PATHS,
            requester=requester,
        )

    def register_event(
        self, eid: str, event_id: str, rsp_server_address: str, *, forwarding: bool = False
    ) -> None:
        """ES12.RegisterEvent (§5.8.1).

        Raises:
            Es9Error: the SM-DS refused (its status codes).
            Es9TransportError: no answer.
        """
        body: dict[str, Any] = {
            "eid": eid,
            "eventId": event_id,
            "rspServerAddress": rsp_server_address,
            "forwardingIndicator": forwarding,
        }
        self._client.call("registerEvent", body)

    def delete_event(self, eid: str, event_id: str) -> None:
        """ES12.DeleteEvent (§5.8.2).

        Raises:
            Es9Error: the SM-DS refused (its status codes).
            Es9TransportError: no answer.
        """
        self._client.call("deleteEvent", {"eid": eid, "eventId": event_id})
