"""Seed 003's move agent on the eSE (JP 6820082 B2): backup, install, delete, activation checks."""

from __future__ import annotations

from applets.profile_move.applet import MoveAgentApplet
from applets.profile_move.wire import MOVE_AGENT_AID

__all__ = ["MOVE_AGENT_AID", "MoveAgentApplet"]
