"""The SM-DP+ role (GSMA SGP.22 v2.x): ES9+ and ES2+ over HTTPS/JSON, profile orders, BPP binding.

- `server.SmdpPlus`: the ES9+ functions, orders and sessions in SQLite, `serve()`;
  confirmation codes, the default SM-DP+, SM-DS events (ES12), CRLs.
- `es2plus.Es2Plus`: the operator's ES2+ functions; `es2plus.Es2Client` the
  operator's side; `es2plus.OperatorLink` where HandleDownloadProgressInfo goes.
- `saip.ProfileOrder` / `saip.build_upp`: a profile package from a few fields.
"""

from host.servers.smdpp.es2plus import Es2Client, Es2Plus, OperatorLink
from host.servers.smdpp.saip import ProfileOrder, build_upp
from host.servers.smdpp.server import OrderState, SessionState, SmdpCredentials, SmdpPlus

__all__ = [
    "Es2Client",
    "Es2Plus",
    "OperatorLink",
    "OrderState",
    "ProfileOrder",
    "SessionState",
    "SmdpCredentials",
    "SmdpPlus",
    "build_upp",
]
