"""The eUICC's ISD-R and ECASD: GSMA SGP.22 v2.x (remote SIM provisioning, consumer).

- `IsdR` (applets.isdr.applet): the ISD-R, AID A0000005591010FFFFFFFF8900000100,
  ES10a/b/c over STORE DATA; multiselectable (LPAs use a logical channel).
- `Ecasd` (applets.isdr.ecasd): the ECASD, AID A0000005591010FFFFFFFF8900000200,
  holding the EID, SK.EUICC.ECDSA, CERT.EUICC, CERT.EUM and the trusted CI keys.

Profiles live in the profile store (applets.usim's UiccApplet), reached through
card.profiles.ProfileStoreInterface; the ECASD through card.sgp22.ecasd.
"""

from applets.isdr.applet import IsdR
from applets.isdr.ecasd import Ecasd
from card.sgp22.ecasd import ECASD_AID, ISD_R_AID

__all__ = ["ECASD_AID", "ISD_R_AID", "Ecasd", "IsdR"]
