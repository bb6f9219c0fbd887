"""Seeds for the ASN.1 fuzzer: valid ES10 requests and ES9+ bodies, as the project sends them.

The seeds are recorded from a real profile download (GSMA SGP.22 v2.x
§3.1.3) between the project's own parties: the LPA (`host.lpa`), an emulated
eUICC of the "euicc" preset and the built-in SM-DP+ (`host.servers.smdpp`),
with the built-in test PKI; the SM-DP+ is called in-process, function by
function, exactly with the JSON bodies the LPA would POST. Requests the
download does not make (ES10c, notifications, configuration) are encoded
from the compiled RSPDefinitions module with plausible values.

ECDSA signatures are randomised, so the seeds are recorded once
(`python -m host.fuzz.rsp_seeds`) into `rsp_seeds.json` beside this module:
a campaign's `--seed` then reproduces it byte for byte. A test checks that
each recorded seed still decodes as its type.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from card.sgp22 import asn1

SEEDS_FILE = "rsp_seeds.json"

#: The DER field of each ES9+ function's request body, and its ASN.1 type.
ES9_FIELDS: dict[str, tuple[str, str]] = {
    "initiateAuthentication": ("euiccInfo1", "EUICCInfo1"),
    "authenticateClient": ("authenticateServerResponse", "AuthenticateServerResponse"),
    "getBoundProfilePackage": ("prepareDownloadResponse", "PrepareDownloadResponse"),
    "handleNotification": ("pendingNotification", "PendingNotification"),
    "cancelSession": ("cancelSessionResponse", "CancelSessionResponse"),
}


@dataclass(frozen=True)
class Es10Seed:
    """One ES10 request as the LPA sent it (DER, before STORE DATA splits it)."""

    function: str
    der: bytes


@dataclass(frozen=True)
class Es9Seed:
    """One ES9+ request body; `field` holds base64 DER (the part mutated)."""

    function: str
    body: dict[str, Any]
    field: str
    der: bytes


@dataclass(frozen=True)
class Seeds:
    es10: tuple[Es10Seed, ...]
    es9: tuple[Es9Seed, ...]


class _DirectEs9:
    """The LPA's ES9+ client, calling an in-process SM-DP+ and recording every body."""

    def __init__(self, smdp: Any, record: Callable[[str, dict[str, Any]], None]) -> None:
        self.smdp = smdp
        self.record = record

    def __enter__(self) -> _DirectEs9:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def call(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        body = json.loads(json.dumps(body))
        self.record(function, body)
        fn = {
            "initiateAuthentication": self.smdp.initiate_authentication,
            "authenticateClient": self.smdp.authenticate_client,
            "getBoundProfilePackage": self.smdp.get_bound_profile_package,
            "handleNotification": self.smdp.handle_notification,
            "cancelSession": self.smdp.cancel_session,
        }[function]
        return fn(body)

    def require(self, function: str, body: dict[str, Any], *fields: str) -> dict[str, Any]:
        answer = self.call(function, body)
        assert answer is not None
        return answer


def record() -> dict[str, Any]:
    """Run a download and a cancelled session; the requests as JSON-ready seeds."""
    from host.es9plus import unb64
    from host.lpa.demo import demo_order
    from host.lpa.es10 import Es10Client
    from host.lpa.lpa import DEFAULT_DEVICE_INFO, Lpa
    from host.pki import default_pki
    from host.presets import new_card
    from host.readers.inprocess import InProcessReader
    from host.servers.smdpp.saip import ProfileOrder
    from host.servers.smdpp.server import SmdpPlus

    es10_out: list[dict[str, str]] = []
    es9_out: list[dict[str, Any]] = []

    def on_es10(ex: Any) -> None:
        es10_out.append({"function": ex.function, "der": ex.request.hex().upper()})

    def on_es9(function: str, body: dict[str, Any]) -> None:
        es9_out.append({"function": function, "body": body})

    pki = default_pki()
    smdp = SmdpPlus(pki, address="localhost")
    smdp.add_order(demo_order())
    first = demo_order()
    smdp.add_order(
        ProfileOrder("DEMO-2", "8988211000000000024", "001010000000002", first.k, first.opc)
    )
    direct = _DirectEs9(smdp, on_es9)

    class _Lpa(Lpa):
        def es9(self, address: str) -> Any:
            return direct

    reader = InProcessReader(new_card("euicc", rng_seed=1))
    with Es10Client(reader, trace=on_es10) as es10:
        lpa = _Lpa(es10, ca_pem=pki.ci.pem)
        result = lpa.download("LPA:1$localhost$DEMO-1")
        lpa.enable(result.iccid)
        lpa.send_notifications()
        # A second session, cancelled by the eUICC: CancelSession on both sides.
        challenge = es10.get_euicc_challenge()
        info1 = es10.get_euicc_info1()
        from host.es9plus import b64

        r1 = direct.require(
            "initiateAuthentication",
            {
                "euiccChallenge": b64(challenge),
                "euiccInfo1": b64(info1),
                "smdpAddress": "localhost",
            },
        )
        es10.authenticate_server(
            unb64(r1["serverSigned1"], "s"),
            unb64(r1["serverSignature1"], "s"),
            unb64(r1["euiccCiPKIdToBeUsed"], "s"),
            unb64(r1["serverCertificate"], "s"),
            "DEMO-2",
            DEFAULT_DEVICE_INFO,
        )
        tid = r1["transactionId"]
        cancel = es10.cancel_session(bytes.fromhex(tid), 1)
        direct.call("cancelSession", {"transactionId": tid, "cancelSessionResponse": b64(cancel)})
        # ES10 requests the download does not make.
        iccid = result.iccid
        for function, type_name, value in _extra_es10(iccid):
            der = asn1.encode(type_name, value)
            es10_out.append({"function": function, "der": der.hex().upper()})
    return {
        "source": "host.fuzz.rsp_seeds.record(): a download of the demo order between the "
        "project's LPA, an emulated 'euicc' card (RNG seed 1) and the built-in SM-DP+",
        "es10": _unique(es10_out, "der"),
        "es9": es9_out,
    }


def _unique(rows: list[dict[str, str]], key: str) -> list[dict[str, str]]:
    seen: set[str] = set()
    out = []
    for r in rows:
        if r[key] not in seen:
            seen.add(r[key])
            out.append(r)
    return out


def _extra_es10(iccid: str) -> list[tuple[str, str, Any]]:
    from host.lpa.es10 import iccid_to_ef

    ef = iccid_to_ef(iccid)
    return [
        ("GetProfilesInfo", "ProfileInfoListRequest", {"searchCriteria": ("iccid", ef)}),
        ("GetProfilesInfo", "ProfileInfoListRequest", {"tagList": b"\x5a\x9f\x70\x91"}),
        (
            "EnableProfile",
            "EnableProfileRequest",
            {"profileIdentifier": ("iccid", ef), "refreshFlag": False},
        ),
        (
            "DisableProfile",
            "DisableProfileRequest",
            {"profileIdentifier": ("iccid", ef), "refreshFlag": True},
        ),
        ("DeleteProfile", "DeleteProfileRequest", ("iccid", ef)),
        ("SetNickname", "SetNicknameRequest", {"iccid": ef, "profileNickname": "fuzz"}),
        ("GetEuiccData", "GetEuiccDataRequest", {"tagList": b"\x5a"}),
        (
            "ListNotification",
            "ListNotificationRequest",
            {"profileManagementOperation": (b"\xf0", 4)},
        ),
        (
            "RetrieveNotificationsList",
            "RetrieveNotificationsListRequest",
            {"searchCriteria": ("seqNumber", 1)},
        ),
        ("RemoveNotificationFromList", "NotificationSentRequest", {"seqNumber": 1}),
        ("eUICCMemoryReset", "EuiccMemoryResetRequest", {"resetOptions": (b"\xe0", 3)}),
        ("SetDefaultDpAddress", "SetDefaultDpAddressRequest", {"defaultDpAddress": "localhost"}),
        ("GetEuiccConfiguredAddresses", "EuiccConfiguredAddressesRequest", {}),
        ("GetRAT", "GetRatRequest", {}),
    ]


@cache
def load() -> Seeds:
    """The recorded seeds (`rsp_seeds.json`)."""
    text = (resources.files("host.fuzz") / SEEDS_FILE).read_text(encoding="utf-8")
    return parse_seeds(json.loads(text))


def parse_seeds(doc: dict[str, Any]) -> Seeds:
    from host.es9plus import unb64

    es10 = tuple(Es10Seed(r["function"], bytes.fromhex(r["der"])) for r in doc["es10"])
    es9 = []
    for r in doc["es9"]:
        field, _ = ES9_FIELDS[r["function"]]
        es9.append(Es9Seed(r["function"], r["body"], field, unb64(r["body"][field], field)))
    return Seeds(es10, tuple(es9))


def main() -> None:
    """Record the seeds into the file beside this module."""
    doc = record()
    path = os.path.join(os.path.dirname(__file__), SEEDS_FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{path}: {len(doc['es10'])} ES10 requests, {len(doc['es9'])} ES9+ bodies")


if __name__ == "__main__":
    main()
