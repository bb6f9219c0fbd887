"""A real profile download on embedded defaults: what `cardemu demo` runs.

An emulated eUICC (the "euicc" preset: ISD-R, ECASD, profile store, the
built-in test PKI), the built-in SM-DP+ on a free loopback port (HTTPS with
CERT.DPtls), and the LPA between them, every ES10 and ES9+ step reported;
then the new profile is enabled and answers AUTHENTICATE (3GPP TS 31.102
§7.1.2), checked with Milenage as the network's AuC would.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from card.crypto.milenage import Milenage, generate_auth_vector
from host.lpa.es9 import HttpHook
from host.lpa.es10 import Es10Client
from host.lpa.lpa import DownloadResult, Lpa, Step
from host.pki import default_pki
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import SmdpPlus
from host.trace import log_traffic
from host.usim import AuthResult, UsimSession, check_auth

__all__ = ["DemoResult", "run_demo", "demo_order"]

DEMO_MATCHING_ID = "DEMO-1"


def demo_order(matching_id: str = DEMO_MATCHING_ID) -> ProfileOrder:
    """The documented test subscription (the "usim" preset's IMSI, K, OPc) as an SM-DP+ order."""
    from card.uicc.builder import TEST_ICCID_BODY, TEST_IMSI, TEST_K, TEST_OPC

    return ProfileOrder(
        matching_id,
        TEST_ICCID_BODY,
        TEST_IMSI,
        TEST_K,
        TEST_OPC,
        spn="cardemu",
        name="cardemu demo profile",
        add_check_digit=True,
    )


@dataclass
class DemoResult:
    """What the demo did: the download, the profile list after it, the AUTHENTICATE check."""

    activation_code: str
    download: DownloadResult
    profiles: list[dict[str, Any]]
    rand: bytes
    auth: AuthResult
    auth_ok: bool
    auth_detail: str
    notifications: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "activationCode": self.activation_code,
            "download": self.download.to_json(),
            "profiles": self.profiles,
            "authenticate": {
                "rand": self.rand.hex().upper(),
                **self.auth.to_json(),
                "ok": self.auth_ok,
                "detail": self.auth_detail,
            },
            "notifications": self.notifications,
        }


def run_demo(
    on_step: Callable[[Step], None] | None = None,
    *,
    reader: Reader | None = None,
    seed: int | None = None,
    smdp_address: str | None = None,
    http_hook: HttpHook | None = None,
) -> DemoResult:
    """Download the demo profile into an eUICC, enable it and authenticate against it.

    Args:
        on_step: called with every ES10 / ES9+ / USIM step.
        reader: the eUICC to use (default: a fresh emulated "euicc" card in memory).
        seed: seeds the emulated card's RNG.
        smdp_address: an SM-DP+ already serving the demo order (`host:port`, TLS
            under the built-in test PKI); default: one started here for the run.
        http_hook: wraps every ES9+ exchange (a scenario's recorder, faults).
    """
    from host.presets import new_card

    def step(interface: str, function: str, detail: str = "") -> None:
        if on_step is not None:
            on_step(Step(interface, function, detail))

    pki = default_pki()
    if reader is None:
        reader = log_traffic(InProcessReader(new_card("euicc", rng_seed=seed)))
    order = demo_order()
    with contextlib.ExitStack() as stack:
        if smdp_address is None:
            smdp = SmdpPlus(pki, address="localhost")
            smdp.add_order(order)
            server = stack.enter_context(smdp.serve())
            smdp.address = smdp_address = f"localhost:{server.port}"
            url = server.url
        else:
            url = f"https://{smdp_address}"
        code = f"LPA:1${smdp_address}${order.matching_id}"
        step("SM-DP+", "serve", f"{url}, activation code {code}")
        with Es10Client(reader) as es10:
            lpa = Lpa(es10, ca_pem=pki.ci.pem, on_step=on_step, http_hook=http_hook)
            result = lpa.download(code)
            if result.installed:
                lpa.enable(result.iccid)
                step("ES10c", "EnableProfile", result.iccid)
            profiles = lpa.profiles()
            step(
                "ES10c",
                "GetProfilesInfo",
                ", ".join(f"{p['iccid']} {p['state']}" for p in profiles),
            )
            sent = lpa.send_notifications()
        # The enabled profile's USIM, on the basic channel, as a handset would see it.
        usim = UsimSession(reader)
        usim.select_usim()
        alg = Milenage(order.k, order.opc)
        rand = os.urandom(16)
        vector = generate_auth_vector(alg, rand, (0x20).to_bytes(6, "big"), b"\x80\x00")
        auth = usim.authenticate(rand, vector.autn)
        check = check_auth(auth, alg, rand)
        step(
            "USIM",
            "AUTHENTICATE",
            f"RES {auth.res.hex().upper() if auth.res else '-'}: {check.detail}",
        )
    return DemoResult(code, result, profiles, rand, auth, check.ok, check.detail, sent)
