"""The SM-DP+'s ES9+ routes (GSMA SGP.22 v2.x §6.5) on the servers' web stack.

    app = create_app(smdp)                # a Starlette app; SmdpPlus holds the logic
    with RoleServer(app, tls=...) as s:   # or smdp.serve(), which does this

Each route is thin: check the X-Admin-Protocol (§6.5.1), parse the JSON body,
run the ES9+ function (a plain method of `SmdpPlus`, in a worker thread: it
signs and writes SQLite), answer with the SGP.22 header (`host.es9plus`):
"Executed-Success" with the function's fields, "Failed" with its status
codes, or 204 for HandleNotification (§6.5.2.4).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from host.es9plus import (
    ADMIN_PROTOCOL,
    ES2P_PATHS,
    ES9_PATHS,
)
from host.servers.rsp_http import RspFunction, rsp_route
from host.servers.smdpp.es2plus import Es2Plus
from host.servers.web import role_app

if TYPE_CHECKING:
    from host.servers.smdpp.server import SmdpPlus

__all__ = [
    "ENV_ADDRESS",
    "ENV_DB",
    "ENV_PKI",
    "app_from_env",
    "create_app",
    "es9_functions",
    "load_smdp",
]

# What `app_from_env` reads: how `cardemu server smdpp --workers N` configures each worker.
ENV_DB = "CARDEMU_SMDPP_DB"
ENV_PKI = "CARDEMU_SMDPP_PKI"
ENV_ADDRESS = "CARDEMU_SMDPP_ADDRESS"

log = logging.getLogger(__name__)

Es9Function = RspFunction


def es9_functions(smdp: SmdpPlus) -> dict[str, Es9Function]:
    """The ES9+ functions of one SM-DP+ by their SGP.22 names (§5.6), as the routes call them."""
    return {
        "initiateAuthentication": smdp.initiate_authentication,
        "authenticateClient": smdp.authenticate_client,
        "getBoundProfilePackage": smdp.get_bound_profile_package,
        "handleNotification": smdp.handle_notification,
        "cancelSession": smdp.cancel_session,
    }


def create_app(smdp: SmdpPlus) -> Starlette:
    """The ES9+ app of one SM-DP+ (its orders and sessions are in `smdp.store`)."""
    functions = es9_functions(smdp)
    routes = [rsp_route(ES9_PATHS[name], name, fn) for name, fn in functions.items()]
    # ES2+ (SGP.22 §5.3) on the same server: a real SM-DP+ serves it on its own port
    # behind mutually authenticated TLS; here the loopback binding is the fence.
    es2 = Es2Plus(smdp)
    es2_functions: dict[str, Es9Function] = {
        "downloadOrder": es2.download_order,
        "confirmOrder": es2.confirm_order,
        "cancelOrder": es2.cancel_order,
        "releaseProfile": es2.release_profile,
    }
    routes += [rsp_route(ES2P_PATHS[n], f"ES2+.{n}", fn) for n, fn in es2_functions.items()]
    from card.sgp22 import asn1

    asn1.rsp()  # compiled now (once per process), not while the first LPA waits
    return role_app("smdpp", routes, headers={"X-Admin-Protocol": ADMIN_PROTOCOL})


def load_smdp(db: str, pki_dir: str | None, address: str) -> SmdpPlus:
    """An SM-DP+ on the store `db`, with the PKI in `pki_dir` (both curves if there) or the
    built-in test PKI, and the CRLs `cardemu pki revoke` wrote there.

    Raises:
        PkiError: `pki_dir` holds no PKI.
    """
    from host.pki import default_pki, load_crls, load_pkis
    from host.servers.smdpp.server import SmdpCredentials, SmdpPlus

    crls = []
    if pki_dir is None:
        pkis = [default_pki()]
    else:
        crls = load_crls(pki_dir)
        pkis = load_pkis(pki_dir)
    return SmdpPlus(
        [SmdpCredentials.from_pki(p) for p in pkis],
        address=address,
        store=db,
        tls=pkis[0].dptls,
        crls=crls,
    )


def app_from_env() -> Starlette:
    """The app of the SM-DP+ the environment names (ENV_DB, ENV_PKI, ENV_ADDRESS): a worker's."""
    import os

    return create_app(
        load_smdp(os.environ[ENV_DB], os.environ.get(ENV_PKI) or None, os.environ[ENV_ADDRESS])
    )
