"""A Shareable interface across the firewall (JC 3.0 RE §6.2.4).

`CounterServer` grants `CounterInterface` only to the client AID it was installed
for; `CounterClient` calls it:
- `80 10 00 00` on the client: INCREMENT through the interface, returns the new value (2 bytes).
- `80 11 00 00` on the client: try to read the server's field directly (the firewall
  refuses: 6982).
"""

from __future__ import annotations

from card.framework import AID, APDU, SW, Applet, CardError, Shareable, persistent
from card.framework.exceptions import SecurityException


class CounterInterface(Shareable):
    def increment(self) -> int:
        raise NotImplementedError


class CounterServer(Applet, CounterInterface):
    value = persistent(0)
    allowed = persistent(b"")

    def on_install(self, params: bytes) -> None:
        self.allowed = params

    def increment(self) -> int:
        self.value = (self.value + 1) & 0xFFFF
        return self.value

    def get_shareable_interface_object(self, client_aid: AID, parameter: int) -> Shareable | None:
        if self.allowed and bytes(client_aid) != self.allowed:
            return None
        return self


class CounterClient(Applet):
    server = persistent(b"")

    def on_install(self, params: bytes) -> None:
        self.server = params

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x10:
            iface = self.system.get_shareable(self.server)
            if iface is None:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            return iface.increment().to_bytes(2, "big")
        if apdu.ins == 0x11:
            # Reaching around the interface: the firewall must refuse this. The refusal
            # is expected here, so it is answered as one (6982, security status not
            # satisfied) rather than left to escape as 6F00, which every oracle reads
            # as "an exception escaped" (Java Card turns an uncaught SecurityException
            # into 6F00; a well-behaved applet catches what it provokes).
            rt = self.system._rt
            server = rt.applet(self.server)
            if not isinstance(server, CounterServer):
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            try:
                return bytes([server.value & 0xFF])
            except SecurityException:
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        raise CardError(SW.INS_NOT_SUPPORTED)
