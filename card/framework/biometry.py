"""The Shareable interface a match-on-card applet offers other applets (javacardx.biometry).

Java Card's `javacardx.biometry.SharedBioTemplate` lets an applet ask the
biometric applet whether the cardholder has been verified, without seeing the
template. The interface lives in card/ because both sides need it and applets
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
