"""The UICC and its USIM, with the profile store: ETSI TS 102 221, 3GPP TS 31.102.

- `UiccApplet` (applets.usim.applet): the card's telecom side, default-selected
  and multiselectable; holds every profile and serves the enabled one.
- `Profile` (applets.usim.profile): the internal profile format, with export and
  import; `build_profile` (applets.usim.builder) makes one from a few fields.
- File contents: `ts_102_221` (EF.ICCID, EF.DIR, EF.PL, EF.ARR, PINs),
  `ts_31_102` (EF.IMSI, EF.UST, PLMN lists, dialling numbers, ...), `ts_51_011`
  (the GSM-class SELECT response). AKA on the card side: `auth`.
"""

from applets.usim.applet import UiccApplet
from applets.usim.builder import DEFAULT_USIM_AID, build_profile
from applets.usim.profile import AppSpec, AuthSpec, FileSpec, PinSpec, Profile, ProfileFormatError
from card.profiles import ISD_R_AID, PROFILE_STORE_AID

#: The AID the UICC applet is installed under (card.profiles.PROFILE_STORE_AID).
UICC_AID = PROFILE_STORE_AID

__all__ = [
    "AppSpec",
    "AuthSpec",
    "DEFAULT_USIM_AID",
    "FileSpec",
    "ISD_R_AID",
    "PinSpec",
    "Profile",
    "ProfileFormatError",
    "UICC_AID",
    "UiccApplet",
    "build_profile",
]
