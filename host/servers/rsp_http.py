"""The SGP.22 JSON envelope of the RSP servers' routes (GSMA SGP.22 v2.x §6.5.1), in one place.

Every function of ES9+, ES11, ES12 and ES2+ is a POST of a JSON object; the
answer carries `header.functionExecutionStatus` ("Executed-Success" with the
function's fields, "Failed" with its status codes), or is 204 No Content for
the notification functions. `rsp_route` makes such a route from a plain
function `dict -> dict | None` that raises `Es9Error` to refuse; the function
runs in a worker thread (it signs and writes SQLite) with every ASN.1 decode of
the request under one time budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from host.es9plus import SC_BAD_REQUEST, Es9Error, failed_header, ok_header
from host.servers.web import HttpError, json_object

__all__ = ["REQUEST_DECODE_SECONDS", "RspFunction", "rsp_answer", "rsp_route"]

log = logging.getLogger(__name__)

#: The decoding one request may do, all its objects together (card.sgp22.asn1 limits
#: apply to each object; real requests decode in milliseconds).
REQUEST_DECODE_SECONDS = 5.0

RspFunction = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def run_bounded(fn: RspFunction, body: dict[str, Any]) -> dict[str, Any] | None:
    """Run one function with every decode of its request under one budget.

    A request that cannot be decoded in bounded work is malformed (SGP.22
    "bad request"), and the server goes on serving.
    """
    from card.sgp22 import asn1

    with asn1.decode_budget(REQUEST_DECODE_SECONDS):
        try:
            return fn(body)
        except asn1.Asn1DecodeError as e:
            raise Es9Error.of(SC_BAD_REQUEST, str(e)) from None


def rsp_answer(name: str, fn: RspFunction, body: dict[str, Any]) -> dict[str, Any] | None:
    """Run one function on a request body; its JSON answer with the SGP.22 header.

    Returns:
        `{"header": ..., **fields}` ("Executed-Success", or "Failed" with the
        status codes of the `Es9Error` it raised), or None: 204 No Content.
    """
    try:
        result = run_bounded(fn, body)
    except Es9Error as e:
        e.function = name
        log.info("%s failed: %s", name, e)
        return {"header": failed_header(e)}
    if result is None:
        return None
    return {"header": ok_header(), **result}


def rsp_route(path: str, name: str, fn: RspFunction) -> Route:
    """A POST route running `fn` on the JSON body, answering with the SGP.22 header.

    The X-Admin-Protocol header, when sent, must be a v2 one (§6.5.1).
    """

    async def handle(request: Request) -> Response:
        protocol = request.headers.get("x-admin-protocol")
        if protocol is not None and not protocol.startswith("gsma/rsp/v2"):
            raise HttpError(400, f"unsupported X-Admin-Protocol {protocol[:40]!r}")
        body = await json_object(request)
        answer = await run_in_threadpool(rsp_answer, name, fn, body)
        if answer is None:
            return Response(status_code=204)
        return JSONResponse(answer)

    handle.__name__ = name
    return Route(path, handle, methods=["POST"])
