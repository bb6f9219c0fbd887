"""The Local Profile Assistant (GSMA SGP.22 v2.x): ES10 to the eUICC, ES9+ to SM-DP+ servers.

- `es10.Es10Client`: ES10a/b/c over any reader (logical channel, STORE DATA).
- `es9.Es9Client`: ES9+ over HTTPS/JSON.
- `lpa.Lpa`: profile download by activation code, profile management, notifications.
"""

from host.lpa.es9 import Es9Client, Es9TransportError
from host.lpa.es10 import ISDR_AID, Es10Client, Es10Error
from host.lpa.lpa import ActivationCode, DownloadResult, Lpa, LpaError, Step

__all__ = [
    "ISDR_AID",
    "ActivationCode",
    "DownloadResult",
    "Es9Client",
    "Es9TransportError",
    "Es10Client",
    "Es10Error",
    "Lpa",
    "LpaError",
    "Step",
]
