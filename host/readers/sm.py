"""ISO/IEC 7816-4 secure messaging as a reader wrapper, stacked on any reader.

`SmReader` protects every interindustry command it is given and checks every
response, with an `SmSession` from `card.sm` (3DES or AES, ICAO Doc 9303
Part 11 §9.8). Stack it on a reader that only relays opaque APDUs (a terminal
between a server and the card) and the relay can neither read nor alter what
passes: a changed byte fails the card's MAC check, the card answers 6987/6988
in clear and ends its session, and so does the wrapper.

`authenticate` sets a session up with the certificate-based mutual
authentication of `card.sm.auth` (BSI TR-03110 style: PSO VERIFY CERTIFICATE,
GET CHALLENGE, GENERAL AUTHENTICATE); a BAC or other session can be handed in
with `start`.

A `GetResponseReader` sits underneath, as under `Scp03Reader`: 61xx is
resolved before a response is checked, since the MAC covers the whole response.
"""

from __future__ import annotations

from card.apdu import cla_with_channel
from card.sm.auth import CHALLENGE_SIZE, AuthError, TerminalAuthentication
from card.sm.codec import SmError, SmSession
from card.sm.cvc import Cvc
from card.sm.piv import PivSmSession
from host.errors import ApduError, SecureChannelError
from host.readers.base import Reader, ReaderError
from host.readers.wrappers import GetResponseReader, ReaderWrapper

__all__ = ["SmReader"]

#: The card ended the session: expected SM data objects missing / incorrect (ISO 7816-4 §5.6).
SESSION_ENDING_SWS = frozenset({0x6987, 0x6988})


def _split(resp: bytes) -> tuple[bytes, int]:
    if len(resp) < 2:
        raise ReaderError(f"response of {len(resp)} byte(s), shorter than a status word")
    return resp[:-2], int.from_bytes(resp[-2:], "big")


class SmReader(ReaderWrapper):
    """A secure messaging session over another reader.

    Args:
        inner: the reader to the card (or to a relaying terminal); the applet
            must already be selected on `channel`.
        session: a session already set up (BAC, a test's fixed keys), or None.
        channel: the logical channel the applet is selected on.
    """

    def __init__(
        self,
        inner: Reader,
        session: SmSession | PivSmSession | None = None,
        *,
        channel: int = 0,
    ) -> None:
        if not isinstance(inner, GetResponseReader):
            inner = GetResponseReader(inner)
        super().__init__(inner)
        self.session: SmSession | PivSmSession | None = session
        self.channel = channel
        #: the card's certificate, after `authenticate`
        self.card_certificate: Cvc | None = None

    @property
    def is_open(self) -> bool:
        return self.session is not None and self.session.is_open

    def start(self, session: SmSession | PivSmSession) -> None:
        """Use `session` from the next command on."""
        self.session = session

    def _plain(self, apdu: bytes, what: str) -> bytes:
        data, sw = _split(self.inner.transmit(apdu))
        if sw != 0x9000:
            raise ApduError(sw, data, what)
        return data

    def authenticate(self, terminal: TerminalAuthentication) -> Cvc:
        """Mutual authentication with certificates (`card.sm.auth`), then SM from here on.

        Returns:
            The card's CV certificate, verified against the terminal's root.

        Raises:
            ApduError: the card refused a step (an unknown certificate: 6A88 / 6982).
            SecureChannelError: the card's certificate or signature is wrong.
        """
        self.close()
        cla = cla_with_channel(0x00, self.channel)
        cert = terminal.certificate
        self._plain(
            bytes((cla, 0x2A, 0x00, 0xBE, len(cert))) + cert
            if len(cert) < 256
            else bytes((cla, 0x2A, 0x00, 0xBE, 0)) + len(cert).to_bytes(2, "big") + cert,
            "PSO VERIFY CERTIFICATE",
        )
        r_card = self._plain(bytes((cla, 0x84, 0x00, 0x00, CHALLENGE_SIZE)), "GET CHALLENGE")
        try:
            data = terminal.general_authenticate_data(r_card)
        except AuthError as e:
            raise SecureChannelError(str(e)) from None
        answer = self._plain(
            bytes((cla, 0x86, 0x00, 0x00, len(data))) + data + b"\x00", "GENERAL AUTHENTICATE"
        )
        try:
            self.session = terminal.finish(answer)
        except AuthError as e:
            raise SecureChannelError(str(e)) from None
        assert terminal.card_certificate is not None
        self.card_certificate = terminal.card_certificate
        return terminal.card_certificate

    def transmit(self, apdu: bytes) -> bytes:
        """Protect an interindustry command, send it, check and decrypt the response.

        Proprietary-class commands (CLA b8 set) pass through untouched: ISO SM
        does not apply to them.

        Raises:
            SecureChannelError: no session; a response with a wrong MAC or
                status (the session is then over); the card ended the session
                (6987/6988 in clear).
        """
        if not apdu or apdu[0] & 0x80:
            return self.inner.transmit(apdu)
        session = self.session
        if session is None or not session.is_open:
            raise SecureChannelError("no secure messaging session: authenticate() first")
        try:
            wrapped = session.wrap_command(apdu)
            resp = self.inner.transmit(wrapped)
            if len(resp) == 2 and int.from_bytes(resp, "big") in SESSION_ENDING_SWS:
                self.close()
                raise SecureChannelError(
                    f"the card refused the protected command ({resp.hex().upper()}) "
                    "and ended the session"
                )
            return session.unwrap_response(resp)
        except SmError as e:
            self.close()
            raise SecureChannelError(f"secure messaging: {e}") from None

    def close(self) -> None:
        """Forget the session (the card forgets its own at the next deselect or reset)."""
        if self.session is not None:
            self.session.close()
        self.session = None

    def reset(self) -> bytes:
        self.close()
        return self.inner.reset()

    def disconnect(self) -> None:
        self.close()
        self.inner.disconnect()
