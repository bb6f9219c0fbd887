"""Logging conventions: the TRAFFIC level for APDU traces.

TRAFFIC (5) sits below DEBUG so that `-v`/DEBUG output stays readable and
APDU-by-APDU traces appear only when asked for. Warning: traffic logs carry the
raw bytes of every exchange, PINs, keys and personal data included; never
enable them where the log is kept or shared.
"""

from __future__ import annotations

import logging

TRAFFIC = 5
"""Log level of APDU traces (below `logging.DEBUG`)."""

logging.addLevelName(TRAFFIC, "TRAFFIC")


def traffic_enabled(logger: logging.Logger) -> bool:
    """Whether `logger` would emit a TRAFFIC record (check before hex-formatting bytes)."""
    return logger.isEnabledFor(TRAFFIC)
