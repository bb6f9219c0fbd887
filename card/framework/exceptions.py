"""Framework exceptions an applet may see (Java Card's javacard.framework exceptions)."""

from __future__ import annotations

from card.nvm import OutOfMemory, TransactionError


class SecurityException(Exception):
    """The firewall refused an access to an object owned by another applet context."""


__all__ = ["OutOfMemory", "SecurityException", "TransactionError"]
