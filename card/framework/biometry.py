"""The Shareable interface a match-on-card applet offers other applets (javacardx.biometry).

Java Card's `javacardx.biometry.SharedBioTemplate` lets an applet ask the
biometric applet whether the cardholder has been verified, without seeing the
template (or, for a client with a VERIFY of its own, to compare a finger on its
behalf). The interface lives in card/ because both sides need it and applets
never import each other (the role a Java Card export file plays). A client looks
the server up by AID with `system.get_shareable(aid)` and calls `is_validated()`
through the proxy, which runs in the server's context.
"""

from __future__ import annotations

from card.framework.shareable import Shareable

__all__ = ["SharedBioTemplate"]


class SharedBioTemplate(Shareable):
    """What a biometric applet shares (Java Card 3.0.5 javacardx.biometry.SharedBioTemplate)."""

    def is_validated(self) -> bool:
        """Was the holder verified in this session (since reset, while the applet is selected)?"""
        raise NotImplementedError

    def match(self, reference: int, data: bytes) -> int:
        """Compare a biometric data template with the enrolled finger `reference` on card
        (Java Card's `BioTemplate.initMatch`): the status word VERIFY would answer, 9000 on
        a match (the holder is then verified on the current channel), 63Cx, 6983, 6A80 or
        6A88. For a client that offers on-card comparison itself (PIV's VERIFY 96/97)."""
        raise NotImplementedError

    def reset_validation(self, reference: int) -> None:
        """Forget a verification of finger `reference` on the current channel."""
        raise NotImplementedError

    def bit_group(self) -> bytes:
        """The biometric information templates group (7F61) of the enrolled fingers."""
        raise NotImplementedError
