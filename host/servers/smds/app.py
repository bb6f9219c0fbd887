"""The SM-DS's routes (GSMA SGP.22 v2.x §6.5): ES11 for LPAs, ES12 for SM-DP+ servers.

    app = create_app(smds)                 # a Starlette app; SmDs holds the logic
    app = create_app(smds, extra=[...])    # a role built on the SM-DS adds its routes

Each route is thin (`host.servers.rsp_http.rsp_route`): the JSON body in, one
method of `SmDs`, the SGP.22 header out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from host.es9plus import ADMIN_PROTOCOL, ES11_PATHS, ES12_PATHS
from host.servers.rsp_http import RspFunction, rsp_route
from host.servers.web import role_app

if TYPE_CHECKING:
    from host.servers.smds.server import SmDs

__all__ = ["ENV_ADDRESS", "ENV_DB", "ENV_PKI", "create_app", "load_smds", "app_from_env"]

ENV_DB = "CARDEMU_SMDS_DB"
ENV_PKI = "CARDEMU_SMDS_PKI"
ENV_ADDRESS = "CARDEMU_SMDS_ADDRESS"


def routes(smds: SmDs) -> list[BaseRoute]:
    """The ES11 and ES12 routes of one SM-DS."""
    es11: dict[str, RspFunction] = {
        "initiateAuthentication": smds.initiate_authentication,
        "authenticateClient": smds.authenticate_client,
    }
    es12: dict[str, RspFunction] = {
        "registerEvent": smds.register_event,
        "deleteEvent": smds.delete_event,
    }
    out: list[BaseRoute] = [rsp_route(ES11_PATHS[n], f"ES11.{n}", fn) for n, fn in es11.items()]
    out += [rsp_route(ES12_PATHS[n], f"ES12.{n}", fn) for n, fn in es12.items()]
    return out


def create_app(smds: SmDs, *, extra: Sequence[BaseRoute] = (), name: str = "smds") -> Starlette:
    """The app of one SM-DS, with `extra` routes of a role built on it."""
    return role_app(name, [*routes(smds), *extra], headers={"X-Admin-Protocol": ADMIN_PROTOCOL})


def load_smds(
    db: str,
    pki_dir: str | None,
    address: str,
    *,
    root: str | None = None,
    root_connect_to: tuple[str, int] | None = None,
    root_tls: bool = True,
) -> SmDs:
    """An SM-DS on the store `db`, with the PKI in `pki_dir` (both curves if there) or the
    built-in test PKI, and the CRLs `cardemu pki revoke` wrote there.

    Args:
        root: the root SM-DS's address, for an alternative SM-DS.
        root_connect_to: connect there instead of the root's address.
        root_tls: False for plain HTTP to the root (tests only).

    Raises:
        PkiError: `pki_dir` holds no PKI.
    """
    from host.lpa.es9 import split_address
    from host.pki import default_pki, load_crls, load_pkis
    from host.servers.smds.client import Es12Client
    from host.servers.smds.server import SmDs

    if pki_dir is None:
        pkis = [default_pki()]
        crls = []
    else:
        pkis = load_pkis(pki_dir)
        crls = load_crls(pki_dir)
    host = split_address(address)[0]
    creds = [p.issue_smds(host) for p in pkis]
    es12 = None
    if root:
        es12 = Es12Client(
            root,
            requester=address,
            ca_pem=b"".join(p.ci.pem for p in pkis),
            connect_to=root_connect_to,
            tls=root_tls,
        )
    return SmDs(creds, address=address, store=db, root=es12, crls=crls)


def app_from_env() -> Starlette:
    """The app of the SM-DS the environment names (ENV_DB, ENV_PKI, ENV_ADDRESS): a worker's."""
    return create_app(
        load_smds(os.environ[ENV_DB], os.environ.get(ENV_PKI) or None, os.environ[ENV_ADDRESS])
    )
