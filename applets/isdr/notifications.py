"""The eUICC's pending notifications: GSMA SGP.22 v2.x §3.5, §5.7.9-5.7.11 (ES10b).

A notification is made (and signed with SK.EUICC.ECDSA) when its operation
happens, in the same transaction: the ProfileInstallationResult of a download
(BF37), or an OtherSignedNotification for enable, disable and delete sent to
the addresses the profile's metadata configures for that event. It waits in
the list until the LPA has delivered it and removes it with
RemoveNotificationFromList (BF30).

Each notification is one persistent value, "ntf.<seqNumber>":
(seqNumber, event bit, address, ICCID or None, PendingNotification DER).
"ntf.next" is the next sequence number (SGP.22 §5.7.9: unique and increasing).
"""

from __future__ import annotations

from typing import Any, Protocol

from card.sgp22 import asn1
from card.sgp22.values import NotificationEvent, bits_from_names, bits_to_set, iccid_to_bytes

__all__ = ["NotificationList"]

_NEXT = "ntf.next"
_PREFIX = "ntf."


class _Store(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> list[str]: ...


class _Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...

    def euicc_certificate(self) -> bytes: ...

    def eum_certificate(self) -> bytes: ...


def metadata(seq: int, event: NotificationEvent, address: str, iccid: str | None) -> dict[str, Any]:
    """A NotificationMetadata value (BF2F) with one event bit set."""
    m: dict[str, Any] = {
        "seqNumber": seq,
        "profileManagementOperation": bits_from_names(int(event)),
        "notificationAddress": address,
    }
    if iccid is not None:
        m["iccid"] = iccid_to_bytes(iccid)
    return m


class NotificationList:
    """The pending notifications in one applet's store."""

    def __init__(self, store: _Store) -> None:
        self.store = store

    def next_seq(self) -> int:
        return int(self.store.get(_NEXT, 1))

    def _keys(self) -> list[str]:
        return sorted(k for k in self.store.keys() if k.startswith(_PREFIX) and k != _NEXT)

    def entries(self) -> list[tuple[int, int, str, str | None, bytes]]:
        return [tuple(self.store.get(k)) for k in self._keys()]

    def add(
        self, seq: int, event: NotificationEvent, address: str, iccid: str | None, der: bytes
    ) -> None:
        """Store a signed notification under `seq` (the caller took `next_seq`)."""
        self.store.set(f"{_PREFIX}{seq:010d}", (seq, int(event), address, iccid, bytes(der)))
        self.store.set(_NEXT, seq + 1)

    def add_other(
        self, signer: _Signer, event: NotificationEvent, address: str, iccid: str | None
    ) -> int:
        """Make, sign and store an OtherSignedNotification (SGP.22 §5.7.11, §3.5.1)."""
        seq = self.next_seq()
        tbs = metadata(seq, event, address, iccid)
        signature = signer.sign(asn1.encode("NotificationMetadata", tbs))
        der = asn1.encode(
            "PendingNotification",
            (
                "otherSignedNotification",
                {
                    "tbsOtherNotification": tbs,
                    "euiccNotificationSignature": signature,
                    "euiccCertificate": asn1.decode("Certificate", signer.euicc_certificate()),
                    "eumCertificate": asn1.decode("Certificate", signer.eum_certificate()),
                },
            ),
        )
        self.add(seq, event, address, iccid, der)
        return seq

    def list_metadata(self, events: frozenset[int] | None = None) -> list[dict[str, Any]]:
        """ListNotification (BF28): the metadata, optionally only of some events."""
        return [
            metadata(seq, NotificationEvent(ev), addr, iccid)
            for seq, ev, addr, iccid, _ in self.entries()
            if events is None or ev in events
        ]

    def retrieve(self, seq: int | None = None, events: frozenset[int] | None = None) -> list[Any]:
        """RetrieveNotificationsList (BF2B): the PendingNotification values."""
        return [
            asn1.decode("PendingNotification", der)
            for s, ev, _, _, der in self.entries()
            if (seq is None or s == seq) and (events is None or ev in events)
        ]

    def remove(self, seq: int) -> bool:
        """RemoveNotificationFromList (BF30): True if there was one to remove."""
        key = f"{_PREFIX}{seq:010d}"
        if self.store.get(key) is None:
            return False
        self.store.delete(key)
        return True


def event_filter(value: tuple[bytes, int] | None) -> frozenset[int] | None:
    """The events a NotificationEvent filter selects (None: all)."""
    return None if value is None else bits_to_set(value)
