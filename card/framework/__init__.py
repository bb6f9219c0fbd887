"""What an applet sees: Applet, APDU, JCSystem, OwnerPIN, AID, Shareable, the firewall."""

from card.framework.aid import AID
from card.framework.applet import APDU, Applet, persistent, transient
from card.framework.exceptions import OutOfMemory, SecurityException, TransactionError
from card.framework.pin import OwnerPIN
from card.framework.shareable import Shareable
from card.framework.system import (
    CLEAR_ON_DESELECT,
    CLEAR_ON_RESET,
    MEMORY_TYPE_PERSISTENT,
    MEMORY_TYPE_TRANSIENT_DESELECT,
    MEMORY_TYPE_TRANSIENT_RESET,
    JCSystem,
)
from card.sw import SW, CardError

__all__ = [
    "AID",
    "APDU",
    "Applet",
    "CLEAR_ON_DESELECT",
    "CLEAR_ON_RESET",
    "CardError",
    "JCSystem",
    "MEMORY_TYPE_PERSISTENT",
    "MEMORY_TYPE_TRANSIENT_DESELECT",
    "MEMORY_TYPE_TRANSIENT_RESET",
    "OutOfMemory",
    "OwnerPIN",
    "SW",
    "SecurityException",
    "Shareable",
    "TransactionError",
    "persistent",
    "transient",
]
