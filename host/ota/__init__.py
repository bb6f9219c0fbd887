"""The host side of over-the-air UICC management (ETSI TS 102 225 / 102 226, 3GPP TS 31.115).

- `ram`: `RamScript` / `RfmScript`, GP and file commands as a script.
- `sender`: `OtaSender`, a script secured for a TAR under a key set, as SMS-DELIVER
  TPDUs and ENVELOPE APDUs; `open_por` checks the proof of receipt.
- `terminal`: `ToolkitTerminal`, the phone's side of the SIM toolkit (TERMINAL
  PROFILE, FETCH, TERMINAL RESPONSE, SEND SHORT MESSAGE, BIP over loopback TCP,
  SMS-PP download); `ToolkitReader`, a plain `Reader` through one.
"""

from host.ota.ram import RamScript, RfmScript
from host.ota.sender import OtaSender, ProofOfReceipt, SecuredMessage, envelope_apdu
from host.ota.terminal import SmsPpResult, ToolkitReader, ToolkitTerminal

__all__ = [
    "OtaSender",
    "ProofOfReceipt",
    "RamScript",
    "RfmScript",
    "SecuredMessage",
    "SmsPpResult",
    "ToolkitReader",
    "ToolkitTerminal",
    "envelope_apdu",
]
