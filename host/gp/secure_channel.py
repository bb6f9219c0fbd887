"""SCP03 as a reader wrapper: open a session, then protect every GlobalPlatform command.

`Scp03Reader` stacks on any `Reader` (the in-process card, PC/SC, a tracing
reader). `open()` runs INITIALIZE UPDATE with a fresh random host challenge,
checks the card cryptogram, and sends EXTERNAL AUTHENTICATE at the requested
security level (GP Card Specification v2.3 Amendment D §7.1). From then on
`transmit` wraps each command of the proprietary class (CLA b8 set, as the GP
commands are) and unwraps its response; interindustry commands (SELECT, GET
RESPONSE) pass through untouched, since they are not addressed to the secure
channel.

A `GetResponseReader` sits underneath, so 61xx is resolved before a response
is unwrapped: the R-MAC covers the whole response, not its pieces.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from card.apdu import cla_with_channel
from card.gp.scp03 import (
    InitializeUpdateResponse,
    Scp03Error,
    Scp03Keys,
    Scp03Session,
    ScpParameter,
    SecurityLevel,
    check_security_level,
    initialize_update_command,
)
from host.errors import SecureChannelError
from host.readers.base import Reader
from host.readers.wrappers import GetResponseReader, ReaderWrapper
from host.session import ApduSession

__all__ = ["Scp03Reader", "DEFAULT_LEVEL"]

#: C-MAC only, what GlobalPlatformPro uses unless told otherwise.
DEFAULT_LEVEL = SecurityLevel.C_MAC


class Scp03Reader(ReaderWrapper):
    """An SCP03 session over another reader.

    Args:
        inner: the reader to the card; the Security Domain must already be
            selected on `channel`.
        keys: the static key set (default: the GP test keys 40..4F).
        level: security level for EXTERNAL AUTHENTICATE (00/01/03/11/13/33).
        kvn: key version number for INITIALIZE UPDATE; None sends 00 (the
            card's first available key set) and accepts whatever it uses.
        s16: S16 mode (16-byte challenges, cryptograms and MACs).
        channel: the logical channel the Security Domain is selected on.
        random: where host challenges come from (tests pass a seeded one).

    Raises (from `open`):
        ApduError: INITIALIZE UPDATE or EXTERNAL AUTHENTICATE was refused.
        SecureChannelError: wrong keys (card cryptogram mismatch), a mode or
            level the card does not offer, or a malformed response.
    """

    def __init__(
        self,
        inner: Reader,
        keys: Scp03Keys | None = None,
        *,
        level: int = DEFAULT_LEVEL,
        kvn: int | None = None,
        s16: bool = False,
        channel: int = 0,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not isinstance(inner, GetResponseReader):
            inner = GetResponseReader(inner)
        super().__init__(inner)
        self.keys = keys if keys is not None else Scp03Keys.test_keys()
        self.level = check_security_level(level)
        self.kvn = kvn
        self.s16 = s16
        self.channel = channel
        self._random = random
        self.session: Scp03Session | None = None
        self.card_info: InitializeUpdateResponse | None = None

    @property
    def is_open(self) -> bool:
        return self.session is not None and self.session.authenticated

    def open(self) -> InitializeUpdateResponse:
        """Authenticate to the selected Security Domain and enter the security level."""
        self.session = None
        cla = cla_with_channel(0x80, self.channel)
        host_challenge = self._random(16 if self.s16 else 8)
        cmd = initialize_update_command(host_challenge, self.kvn or 0, cla)
        plain = ApduSession(self.inner)
        data = plain.send_apdu(cmd, "INITIALIZE UPDATE")
        try:
            info = InitializeUpdateResponse.from_bytes(data)
        except ValueError as e:
            raise SecureChannelError(f"INITIALIZE UPDATE: {e}") from None
        if info.s16 != self.s16:
            raise SecureChannelError(
                f"the card runs SCP03 in {'S16' if info.s16 else 'S8'} mode (i={info.i:02X})"
            )
        if self.kvn and info.kvn != self.kvn:
            raise SecureChannelError(f"asked for key set {self.kvn:02X}, card used {info.kvn:02X}")
        self._check_level_offered(info.i)
        session = Scp03Session.derive(self.keys, host_challenge, info.card_challenge, s16=self.s16)
        if not hmac.compare_digest(session.card_cryptogram, info.card_cryptogram):
            raise SecureChannelError(
                f"card cryptogram mismatch: the keys are not those of key set {info.kvn:02X}"
            )
        plain.send_apdu(
            session.external_authenticate_command(self.level, cla), "EXTERNAL AUTHENTICATE"
        )
        self.session = session
        self.card_info = info
        return info

    def _check_level_offered(self, i: int) -> None:
        if self.level & SecurityLevel.R_MAC and not i & ScpParameter.R_MAC:
            raise SecureChannelError(f"the card does not offer R-MAC (i={i:02X})")
        if self.level & SecurityLevel.R_ENCRYPTION and not i & ScpParameter.R_ENCRYPTION:
            raise SecureChannelError(f"the card does not offer R-ENCRYPTION (i={i:02X})")

    def transmit(self, apdu: bytes) -> bytes:
        """Wrap a GP (proprietary class) command, send it, unwrap the response.

        Raises:
            SecureChannelError: no session is open, or the response's R-MAC or
                encryption is wrong (the session is then over).
        """
        if not apdu or not apdu[0] & 0x80:
            return self.inner.transmit(apdu)
        session = self.session
        if session is None or not session.authenticated:
            raise SecureChannelError("no secure channel is open: call open() first")
        try:
            wrapped = session.wrap_command(apdu)
            return session.unwrap_response(self.inner.transmit(wrapped))
        except Scp03Error as e:
            raise SecureChannelError(e.reason or str(e)) from None

    def close(self) -> None:
        """Forget the session (the card ends it on its side at the next SELECT or reset)."""
        if self.session is not None:
            self.session.terminate()
        self.session = None

    def reset(self) -> bytes:
        self.close()
        return self.inner.reset()

    def disconnect(self) -> None:
        self.close()
        self.inner.disconnect()
