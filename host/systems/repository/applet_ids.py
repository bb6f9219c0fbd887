"""Names the system's parties share: the card reference the scenario and tests issue."""

from __future__ import annotations

#: The demo card's holder reference (its SM certificate's CHR; the HSM's record key).
CARD_REF = b"CARD0001"
