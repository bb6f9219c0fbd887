"""The PIV Card Application (NIST SP 800-73-4): `PivApplet`, its data objects, its defaults."""

from applets.piv.applet import DEFAULT_MGMT_KEY, DEFAULT_PIN, DEFAULT_PUK, PivApplet
from applets.piv.objects import PIV_AID

__all__ = ["DEFAULT_MGMT_KEY", "DEFAULT_PIN", "DEFAULT_PUK", "PIV_AID", "PivApplet"]
