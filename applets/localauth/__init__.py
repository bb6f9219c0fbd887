"""Local authentication beside the ISD-R (seed 000): a PIN or a finger, then a signed result.

- `LocalAuthApplet` (applets.localauth.applet), AID `card.sgp22.localauth.LOCAL_AUTH_AID`.
"""

from applets.localauth.applet import LocalAuthApplet
from card.sgp22.localauth import LOCAL_AUTH_AID

__all__ = ["LOCAL_AUTH_AID", "LocalAuthApplet"]
