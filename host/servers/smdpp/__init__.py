"""The SM-DP+ role (GSMA SGP.22 v2.x): ES9+ over HTTPS/JSON, profile orders, BPP binding.

- `server.SmdpPlus`: the ES9+ functions, orders and sessions in SQLite, `serve()`.
- `saip.ProfileOrder` / `saip.build_upp`: a profile package from a few fields.
"""

from host.servers.smdpp.saip import ProfileOrder, build_upp
from host.servers.smdpp.server import OrderState, SessionState, SmdpCredentials, SmdpPlus

__all__ = ["OrderState", "ProfileOrder", "SessionState", "SmdpCredentials", "SmdpPlus", "build_upp"]
