"""The host's session with the local-authentication applet (`applets.localauth`), seed S1-S9.

    with LocalAuthSession(reader) as la:       # a logical channel of its own
        if la.status().method == 0:
            la.register_pin(b"2468")            # S1-S4, once
        la.verify_pin(b"2468")                  # S7-S9
        result = la.result(challenge)           # signed by the ECASD over EID, challenge, outcome

The applet is multiselectable and lives beside the ISD-R, so the session opens
a logical channel (MANAGE CHANNEL, ISO/IEC 7816-4 §11.1.2) as the LPA does for
the ISD-R, and the user's verification stays on that channel for the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from card import tlv
from card.sgp22.localauth import LOCAL_AUTH_AID, METHOD_FINGERPRINT, METHOD_PIN
from host.errors import ApduError
from host.readers.base import Reader, ReaderError
from host.session import AppletSession

__all__ = ["LocalAuthError", "LocalAuthSession", "LocalAuthStatus"]

CLA_PROPRIETARY = 0x80


class LocalAuthError(Exception):
    """The user did not pass local authentication: `tries_left` (0: locked out)."""

    def __init__(self, tries_left: int, sw: int) -> None:
        what = "locked out" if tries_left == 0 else f"{tries_left} tries left"
        super().__init__(f"local authentication failed ({what})")
        self.tries_left = tries_left
        self.sw = sw


@dataclass(frozen=True)
class LocalAuthStatus:
    """GET STATUS: the registered method (0 none, 1 PIN, 2 finger) and the PIN's tries."""

    method: int
    tries_left: int
    try_limit: int


class LocalAuthSession:
    """The local-authentication applet on a logical channel of its own."""

    def __init__(self, reader: Reader, aid: bytes = LOCAL_AUTH_AID) -> None:
        self._base = AppletSession(reader, aid)
        self.aid = aid
        self.channel: int | None = None

    def open(self) -> LocalAuthSession:
        """MANAGE CHANNEL open, then SELECT the applet on the new channel."""
        answer = self._base.send(0x00, 0x70, 0x00, 0x00, le=1)
        self.channel = answer[0]
        self._send(0x00, 0xA4, 0x04, 0x00, self.aid, le=0)
        return self

    def close(self) -> None:
        if self.channel:
            try:
                self._base.send(0x00, 0x70, 0x80, self.channel)
            finally:
                self.channel = None

    def __enter__(self) -> LocalAuthSession:
        return self.open()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        # Leaving on an error (a torn card, a lost reader): closing is best effort and must
        # not hide the error itself.
        try:
            self.close()
        except (ApduError, ReaderError):
            pass

    def _cla(self, cla: int) -> int:
        ch = self.channel or 0
        return cla | ch if ch < 4 else (cla & 0x80) | 0x40 | (ch - 4)

    def _send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        return self._base.send(self._cla(cla), ins, p1, p2, data, le)

    def status(self) -> LocalAuthStatus:
        objs = {o.tag: o.value for o in tlv.parse(self._send(CLA_PROPRIETARY, 0x16, 0, 0, le=0))}
        return LocalAuthStatus(objs[0x81][0], objs[0x82][0], objs[0x83][0])

    def register_pin(self, pin: bytes) -> None:
        """Register a PIN (S4): once only (6985 afterwards)."""
        self._send(CLA_PROPRIETARY, 0x10, METHOD_PIN, 0x00, pin)

    def register_finger(self, reference: int) -> None:
        """Register a finger enrolled in the match-on-card applet under `reference`."""
        self._send(CLA_PROPRIETARY, 0x10, METHOD_FINGERPRINT, 0x00, bytes((reference,)))

    def _verify(self, p2: int, data: bytes) -> None:
        try:
            self._send(0x00, 0x20, 0x00, p2, data)
        except ApduError as e:
            if e.sw & 0xFFF0 == 0x63C0:
                raise LocalAuthError(e.sw & 0x0F, e.sw) from None
            if e.sw == 0x6983:
                raise LocalAuthError(0, e.sw) from None
            raise

    def verify_pin(self, pin: bytes) -> None:
        """VERIFY the PIN (S9). Raises `LocalAuthError` with the tries left on a mismatch."""
        self._verify(0x81, pin)

    def verify_finger(self, template: bytes) -> None:
        """VERIFY a finger (its 7F2E template), matched by the match-on-card applet."""
        self._verify(0x82, template)

    def result(self, challenge: bytes) -> bytes:
        """The signed local-authentication result over `challenge` (after a VERIFY)."""
        return self._send(CLA_PROPRIETARY, 0x12, 0, 0, challenge, le=0)

    def certificates(self) -> tuple[bytes, bytes]:
        """(CERT.EUICC, CERT.EUM), DER."""
        objs = {o.tag: o.value for o in tlv.parse(self._send(CLA_PROPRIETARY, 0x14, 0, 0, le=0))}
        return objs[0xA0], objs[0xA1]
