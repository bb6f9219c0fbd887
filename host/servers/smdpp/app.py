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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from host.es9plus import (
    ADMIN_PROTOCOL,
    ES9_PATHS,
    SC_BAD_REQUEST,
    Es9Error,
    failed_header,
    ok_header,
)
from host.servers.web import HttpError, json_object, role_app

if TYPE_CHECKING:
    from host.servers.smdpp.server import SmdpPlus

__all__ = ["ENV_ADDRESS", "ENV_DB", "ENV_PKI", "app_from_env", "create_app", "load_smdp"]

# What `app_from_env` reads: how `cardemu server smdpp --workers N` configures each worker.
ENV_DB = "CARDEMU_SMDPP_DB"
ENV_PKI = "CARDEMU_SMDPP_PKI"
ENV_ADDRESS = "CARDEMU_SMDPP_ADDRESS"

log = logging.getLogger(__name__)

Es9Function = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def create_app(smdp: SmdpPlus) -> Starlette:
    """The ES9+ app of one SM-DP+ (its orders and sessions are in `smdp.store`)."""
    functions: dict[str, Es9Function] = {
        "initiateAuthentication": smdp.initiate_authentication,
        "authenticateClient": smdp.authenticate_client,
        "getBoundProfilePackage": smdp.get_bound_profile_package,
        "handleNotification": smdp.handle_notification,
        "cancelSession": smdp.cancel_session,
    }
    routes = [
        Route(ES9_PATHS[name], _endpoint(name, fn), methods=["POST"])
        for name, fn in functions.items()
    ]
    return role_app("smdpp", routes, headers={"X-Admin-Protocol": ADMIN_PROTOCOL})


def load_smdp(db: str, pki_dir: str | None, address: str) -> SmdpPlus:
    """An SM-DP+ on the store `db`, with the PKI in `pki_dir` (both curves if there) or the
    built-in test PKI.

    Raises:
        PkiError: `pki_dir` holds no PKI.
    """
    from host.pki import PkiError, default_pki, load_pki
    from host.servers.smdpp.server import SmdpCredentials, SmdpPlus

    if pki_dir is None:
        pkis = [default_pki()]
    else:
        pkis = []
        for curve in ("nist", "brainpool"):
            try:
                pkis.append(load_pki(pki_dir, curve))
            except PkiError:
                continue
        if not pkis:
            raise PkiError(f"{pki_dir}: no PKI there (make one with `cardemu pki create`)")
    return SmdpPlus(
        [SmdpCredentials.from_pki(p) for p in pkis], address=address, store=db, tls=pkis[0].dptls
    )


def app_from_env() -> Starlette:
    """The app of the SM-DP+ the environment names (ENV_DB, ENV_PKI, ENV_ADDRESS): a worker's."""
    import os

    return create_app(
        load_smdp(os.environ[ENV_DB], os.environ.get(ENV_PKI) or None, os.environ[ENV_ADDRESS])
    )


def _bounded(fn: Es9Function, body: dict[str, Any]) -> dict[str, Any] | None:
    """Run one ES9+ function with every decode of its request under one budget.

    A request that cannot be decoded in bounded work is malformed (SGP.22
    "bad request"), and the server goes on serving. Entered here, in the
    worker thread, where the decoding happens.
    """
    from card.sgp22 import asn1
    from host.servers.smdpp.server import REQUEST_DECODE_SECONDS

    with asn1.decode_budget(REQUEST_DECODE_SECONDS):
        try:
            return fn(body)
        except asn1.Asn1DecodeError as e:
            raise Es9Error.of(SC_BAD_REQUEST, str(e)) from None


def _endpoint(name: str, fn: Es9Function) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        protocol = request.headers.get("x-admin-protocol")
        if protocol is not None and not protocol.startswith("gsma/rsp/v2"):
            raise HttpError(400, f"unsupported X-Admin-Protocol {protocol[:40]!r}")
        body = await json_object(request)
        try:
            result = await run_in_threadpool(_bounded, fn, body)
        except Es9Error as e:
            e.function = name
            log.info("ES9+ %s failed: %s", name, e)
            return JSONResponse({"header": failed_header(e)})
        if result is None:
            return Response(status_code=204)
        return JSONResponse({"header": ok_header(), **result})

    handle.__name__ = name
    return handle
