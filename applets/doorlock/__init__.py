"""Seed 001's door-lock authentication applet: lock role and key role on two SIMs."""

from applets.doorlock.applet import DOORLOCK_AID, DoorLockApplet

__all__ = ["DOORLOCK_AID", "DoorLockApplet"]
