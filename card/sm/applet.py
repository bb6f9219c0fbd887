"""An applet base that speaks ISO/IEC 7816-4 secure messaging on each logical channel.

`SmApplet.process` unwraps a protected command (CLA b4-b3 = 11), hands the
plain command to `process_plain`, and protects its answer (ICAO Doc 9303
Part 11 §9.8). Once a session is running on a channel:

- an unprotected command is refused with 6987 and ends the session;
- a protected command with a wrong MAC, counter (a replay shows as a wrong MAC),
  padding or data object order is refused with 6988 (6987 when 8E is missing)
  and ends the session;
- an error status word of the plain command goes back in clear (the counter
  still counts it, as `SmSession.unwrap_response` does on the other end); a
  warning (62xx/63xx) goes back protected, in DO99.
- a session that `protects_errors` (PIV, `card.sm.piv`) protects every answer,
  errors too: DO99 carries the status and the response's own status word is
  9000, as PIV clients expect (SP 800-73-4 Part 2 §4.3); and one that
  `allows_plain` answers a plain command in plain and keeps running (PIV over
  the contact interface: a client reads the SM certificate signer in clear
  right after the key establishment).

The session lives in the channel's volatile state: deselecting the applet or
resetting the card ends it. A subclass starts one with `start_sm` (after the
command that set it up has been answered in clear).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeAlias

from card.framework.applet import APDU, Applet
from card.sm.auth import CHALLENGE_SIZE
from card.sm.codec import SmError, SmSession, is_sm_cla
from card.sw import SW, CardError

if TYPE_CHECKING:
    from card.sm.piv import PivSmSession

Session: TypeAlias = "SmSession | PivSmSession"

__all__ = ["SmApplet"]

_SESSION = "sm.session"
_CHALLENGE = "sm.challenge"


class SmApplet(Applet):
    """Base class of applets that handle ISO secure messaging themselves."""

    #: This applet unwraps ISO SM itself: the runtime must hand it CLA 0C commands.
    secure_messaging: ClassVar[bool] = True

    # -- the session on this channel --------------------------------------------

    @property
    def sm_session(self) -> Session | None:
        """The running session on the current channel, or None."""
        return self.system.channel_state.get(_SESSION)

    def start_sm(self, session: Session) -> None:
        """Start secure messaging on the current channel with the next command."""
        self.system.channel_state[_SESSION] = session

    def end_sm(self) -> None:
        """End the session on the current channel (its keys are forgotten)."""
        session = self.system.channel_state.pop(_SESSION, None)
        if session is not None:
            session.close()

    # -- the card's challenge for the authentication that opens a session ------------

    def get_challenge(self, apdu: APDU) -> bytes:
        """GET CHALLENGE (ISO/IEC 7816-4 §11.5.3) before `card.sm.auth.card_authenticate`.

        P1-P2 00 00 and Le exactly `CHALLENGE_SIZE`; the challenge stays on this
        channel for `take_challenge` (a new one replaces it).
        """
        if apdu.p1 or apdu.p2:
            raise CardError(SW.INCORRECT_P1P2)
        if apdu.ne != CHALLENGE_SIZE:
            raise CardError(SW.WRONG_LENGTH)
        challenge = self.system.rng.random(CHALLENGE_SIZE)
        self.system.channel_state[_CHALLENGE] = challenge
        return challenge

    def take_challenge(self) -> bytes | None:
        """The challenge `get_challenge` gave on this channel, once (None: none given)."""
        challenge: bytes | None = self.system.channel_state.pop(_CHALLENGE, None)
        return challenge

    # -- dispatch --------------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        session = self.sm_session
        if not is_sm_cla(apdu.cla):
            if session is not None and not getattr(session, "allows_plain", False):
                self.end_sm()
                raise CardError(SW.SM_DATA_OBJECTS_MISSING)
            return self.process_plain(apdu, protected=False)
        if session is None:
            raise CardError(SW.SM_DATA_OBJECTS_INCORRECT)
        try:
            plain = session.unwrap_command(apdu.command)
        except SmError:
            self.end_sm()
            raise
        protect_all = bool(getattr(session, "protects_errors", False))
        try:
            data = self.process_plain(APDU(plain, apdu.channel), protected=True)
        except CardError as e:
            if protect_all and session.is_open:
                return session.protect_response(e.data or b"", e.sw, odd_ins=bool(plain.ins & 1))
            if e.sw >> 8 in (0x62, 0x63) and session.is_open:
                body = session.protect_response(e.data or b"", e.sw, odd_ins=bool(plain.ins & 1))
                raise CardError(e.sw, body) from None
            if session.is_open:
                session.skip_response()
            raise
        if not session.is_open:  # the command ended the session itself
            return data
        return session.protect_response(data or b"", SW.SUCCESS, odd_ins=bool(plain.ins & 1))

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        """Process one plain command; `protected` says it came under secure messaging."""
        raise CardError(SW.INS_NOT_SUPPORTED)
