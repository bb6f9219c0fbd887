"""The UICC and its USIM, with the profile store: ETSI TS 102 221, 3GPP TS 31.102.

- `UiccApplet` (applets.usim.applet): the card's telecom side, default-selected
  and multiselectable; holds every profile and serves the enabled one.
- `UICC_AID`: the AID it is installed under.

The file codecs, the profile format and its builder, the SAIP import and the AKA
functions live in the card library `card.uicc`, which host code imports; host code
imports nothing from this package but these two names (tests/unit/test_layers.py).
"""

from applets.usim.applet import UiccApplet
from card.profiles import PROFILE_STORE_AID

#: The AID the UICC applet is installed under (card.profiles.PROFILE_STORE_AID).
UICC_AID = PROFILE_STORE_AID

__all__ = ["UICC_AID", "UiccApplet"]
