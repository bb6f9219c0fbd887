"""The phone of seed 000: the LPA and the contract application (S1-S35, S41-S58).

    phone = Terminal(reader, relay_url=..., ca_pem=pki.ci.pem, user=User.of(person(), b"2468"))
    phone.first_start()                           # S1-S4: register local-auth data once
    first = phone.contract(mgmt1_url)             # S5-S35: eKYC, certificate, profile
    later = phone.contract(mgmt2_url)             # S41-S58: the stored certificate, no eKYC

What it keeps (the seed's storage unit 43, `PhoneStorage`): the identity
document, the authentication server's certificate once it has one, and the
contract under way (application, key and the information sent), so that a
contract interrupted by a crash anywhere is completed by `resume` with the very
same request (the servers recognise a retry by it) instead of a new one.

Its data-acquisition key (S12, S48) is SHA-256 over a label, the EID, the
document's digest and 16 fresh random bytes: derived from the EID and the ID
data as the seed suggests, and fresh for each contract, so it is unguessable
from public data and a key seen once (a replay) fetches nothing new.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from host.lpa.es9 import HttpHook
from host.lpa.es10 import Es10Client
from host.lpa.lpa import Lpa
from host.readers.base import Reader
from host.systems.ekyc.card import LocalAuthSession
from host.systems.ekyc.demo import Person
from host.systems.ekyc.http import JsonClient
from host.systems.ekyc.proofs import EkycCertificate, ProofError
from host.systems.ekyc.verifier import capture
from host.systems.scenario import StepHook

__all__ = ["ContractResult", "PhoneStorage", "Terminal", "TerminalError", "User", "make_dak"]


def make_dak(eid: str, document: dict[str, Any] | None, nonce: bytes) -> str:
    """A data-acquisition key (see the module docstring), as 64 hex digits."""
    digest = hashlib.sha256(json.dumps(document or {}, sort_keys=True).encode()).digest()
    label = b"cardemu-ekyc-dak"
    return hashlib.sha256(label + bytes.fromhex(eid) + digest + nonce).hexdigest().upper()


@dataclass
class User:
    """The person at the phone: how they pass local authentication, what the camera sees.

    Attributes:
        local_auth: verifies them on the card (typing the PIN, or the finger on the sensor).
        camera: the eKYC application's capture for a photo request (S17-S18).
        secret: what they register at first start (the PIN), or None for a finger.
    """

    local_auth: Callable[[LocalAuthSession], None]
    camera: Callable[[dict[str, Any]], dict[str, Any]]
    secret: bytes | None = None

    @classmethod
    def of(cls, who: Person, pin: bytes) -> User:
        """A user who types `pin` and shows their own face to the camera."""
        return cls(lambda la: la.verify_pin(pin), lambda req: capture(who.face, req), pin)


@dataclass
class PhoneStorage:
    """The phone's storage: the identity document, the certificate, the contract under way."""

    document: dict[str, Any]
    certificate: EkycCertificate | None = None
    pending: dict[str, Any] | None = None
    profiles: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ContractResult:
    """A finished contract: the carrier, first or later, the profile."""

    carrier: str
    kind: str
    application: str
    matching_id: str
    iccid: str
    smdp_address: str
    ekyc: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "kind": self.kind,
            "application": self.application,
            "matchingId": self.matching_id,
            "iccid": self.iccid,
            "smdpAddress": self.smdp_address,
            "ekyc": self.ekyc,
        }


class TerminalError(Exception):
    """The contract cannot go on (a server's answer made no sense, a certificate for someone
    else came back)."""


class Terminal:
    """The phone: its eUICC in `reader`, its storage, its user.

    Args:
        reader: the eUICC (ISD-R, local-authentication applet, profile store).
        relay_url: the relay server (cardemu's SM-DS, https://host:port).
        ca_pem: the CI certificates TLS to the management servers (SM-DP+) is checked with.
        user: the person using it.
        storage: what the phone keeps.
        hook: wraps every HTTP exchange (a scenario's recorder, faults).
        on_step: told as each seed step completes: (interface, function, detail).
        random: the source of data-acquisition key nonces.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        relay_url: str,
        ca_pem: bytes,
        user: User,
        storage: PhoneStorage,
        hook: HttpHook | None = None,
        on_step: StepHook | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.reader = reader
        self.relay_url = relay_url
        self.ca_pem = ca_pem
        self.user = user
        self.storage = storage
        self.hook = hook
        self.on_step = on_step
        self._random = random

    def _step(self, interface: str, function: str, detail: str = "") -> None:
        if self.on_step is not None:
            self.on_step(interface, function, detail)

    def eid(self) -> str:
        with Es10Client(self.reader) as es10:
            return es10.get_eid()

    # -- S1-S4 ------------------------------------------------------------------------------

    def first_start(self) -> bool:
        """Register local-authentication data if there is none (S1-S4). True if it did."""
        with LocalAuthSession(self.reader) as la:
            if la.status().method:
                self._step("terminal", "register", "local-auth data already registered")
                return False
            if self.user.secret is None:
                raise TerminalError("a finger is registered with register_finger, not here")
            la.register_pin(self.user.secret)
        self._step("terminal", "register", "no local-auth data: the user's PIN registered on card")
        return True

    # -- a contract ---------------------------------------------------------------------------

    def _mgmt(self, url: str) -> JsonClient:
        return JsonClient(url, ca_pem=self.ca_pem, hook=self.hook)

    def contract(self, mgmt_url: str, plan: str = "basic") -> ContractResult:
        """Apply for a contract and see it through to an enabled profile (S5-S35 / S41-S58).

        Raises:
            LocalAuthError: the user failed local authentication (nothing was sent).
            Refused: a server refused (its reason).
            TerminalError, OSError, Es9Error, LpaError, ApduError: the contract stopped; the
                pending contract stays in storage for `resume`.
        """
        mgmt = self._mgmt(mgmt_url)
        app = mgmt.post("/contracts", {"plan": plan, "customer": {"name": self._name()}})
        challenge = bytes.fromhex(app["request"]["challenge"])
        self._step(
            "contract",
            "apply",
            f"{app['carrier']}: application {app['application'][:8]}, asks for the contract "
            f"information with challenge {challenge.hex().upper()[:8]}",
        )
        with LocalAuthSession(self.reader) as la:
            self.user.local_auth(la)  # a failure raises here: nothing leaves the phone
            result = la.result(challenge)
            euicc_cert, eum_cert = la.certificates()
        self._step(
            "localauth",
            "verify",
            "the user passed local authentication on card; "
            "the eUICC signed the result over the challenge",
        )
        eid = self.eid()
        cert = self.storage.certificate
        info: dict[str, Any] = {
            "eid": eid,
            "euiccCertificate": euicc_cert.hex().upper(),
            "eumCertificate": eum_cert.hex().upper(),
            "localAuth": result.hex().upper(),
            "dak": make_dak(eid, self.storage.document, self._random(16)),
        }
        if cert is None:
            info["document"] = self.storage.document
            self._step(
                "terminal",
                "certificate_check",
                "no authentication-server certificate stored: the identity document read",
            )
        else:
            info["certificate"] = cert.to_json()
            self._step(
                "terminal",
                "certificate_check",
                f"the authentication server's certificate {cert.serial.hex().upper()[:8]} "
                "is stored: it goes instead of the ID data",
            )
        self.storage.pending = {
            "mgmt": mgmt_url,
            "carrier": app["carrier"],
            "application": app["application"],
            "info": info,
            "first": cert is None,
        }
        return self.resume()

    def resume(self) -> ContractResult:
        """See the pending contract through, from wherever it stopped (idempotent requests).

        Raises:
            TerminalError: no contract is pending.
        """
        pending = self.storage.pending
        if pending is None:
            raise TerminalError("no contract is pending")
        mgmt = self._mgmt(pending["mgmt"])
        app_id, info = pending["application"], pending["info"]
        answer = mgmt.post(f"/contracts/{app_id}/information", info)
        ekyc = False
        if answer["state"] == "photo_requested":
            request = answer["photo_request"]
            self._step(
                "contract",
                "information",
                f"the authentication server's photo request, relayed: {request.get('message', '')}",
            )
            photo = self.user.camera(request)
            self._step(
                "ekyc",
                "capture",
                f"{len(photo.get('frames', []))} frames captured, "
                f"turning {', '.join(request.get('directions', []))}",
            )
            answer = mgmt.post(f"/contracts/{app_id}/photo", {"photo": photo})
            ekyc = True
            self._step(
                "contract",
                "photo",
                f"profile {answer['iccid']} registered under the key with an SM-DS event; "
                "the phone told",
            )
        else:
            self._step(
                "contract",
                "information",
                f"{answer['kind']} contract: profile {answer['iccid']} registered under the "
                "key with an SM-DS event; the phone told",
            )
        if answer["state"] != "ordered":
            raise TerminalError(f"the management server answered {answer['state']!r}")
        want_cert = self.storage.certificate is None
        if not want_cert and self._installed(answer["iccid"]):
            # Installed before a crash: its SM-DS event is rightly gone; finish the job.
            iccid = self._download(answer["smdpAddress"], answer["matchingId"], answer["iccid"])
            self._step("ES9+", "download", f"profile {iccid} already installed; enabled")
            return self._done(pending, answer, iccid, ekyc)
        found: dict[str, Any] = {}
        if want_cert:  # S27-S29: the certificate, fetched by the relay under the key
            relay = JsonClient(self.relay_url, ca_pem=self.ca_pem, hook=self.hook)
            found = relay.post("/certificate", {"dak": info["dak"], "eid": info["eid"]})
            self._step(
                "relay",
                "certificate",
                "the relay fetched the authentication server's certificate under the key",
            )
        # S30-S32: the profile's event, from the SM-DS by ES11 (the eUICC signs for it).
        with Es10Client(self.reader) as es10:
            lpa = Lpa(es10, ca_pem=self.ca_pem, http_hook=self.hook)
            listed = lpa.discover(urlsplit(self.relay_url).netloc, follow=False)
        events = [e for e in listed if e["eventId"] == answer["matchingId"]]
        if not events:
            raise TerminalError("the relay server has no event for this profile")
        self._step(
            "ES11",
            "discover",
            f"the event {events[0]['eventId']} at {events[0]['rspServerAddress']}",
        )
        if want_cert:
            try:
                cert = EkycCertificate.from_json(found.get("certificate"))
            except ProofError as e:
                raise TerminalError(str(e)) from None
            if cert.eid != info["eid"]:
                raise TerminalError("the relay handed over a certificate for another EID")
            self.storage.certificate = cert
            self._step(
                "terminal",
                "store_certificate",
                f"certificate {cert.serial.hex().upper()[:8]} over EID {cert.eid} stored",
            )
        event = events[0]
        iccid = self._download(event["rspServerAddress"], event["eventId"], answer["iccid"])
        self._step(
            "ES9+", "download", f"profile {iccid} downloaded by ES9+/ES10b, installed and enabled"
        )
        return self._done(pending, answer, iccid, ekyc)

    def _done(
        self, pending: dict[str, Any], answer: dict[str, Any], iccid: str, ekyc: bool
    ) -> ContractResult:
        app_id, first = pending["application"], pending["first"]
        self.storage.pending = None
        done = ContractResult(
            pending["carrier"],
            answer.get("kind") or ("first" if first else "later"),
            app_id,
            answer["matchingId"],
            iccid,
            answer["smdpAddress"],
            ekyc,
        )
        self.storage.profiles.append(done.to_json())
        return done

    def _installed(self, iccid: str) -> bool:
        with Es10Client(self.reader) as es10:
            return any(p["iccid"] == iccid for p in Lpa(es10).profiles())

    def _download(self, address: str, matching_id: str, iccid: str) -> str:
        """The profile by ES9+/ES10 (SGP.22 §3.1.3), unless the eUICC has it already; enabled."""
        with Es10Client(self.reader) as es10:
            lpa = Lpa(es10, ca_pem=self.ca_pem, http_hook=self.hook)
            lpa.send_notifications()  # a result a crash left on the eUICC goes first
            listed = [p for p in lpa.profiles() if p["iccid"] == iccid]
            if not listed:
                result = lpa.download(f"LPA:1${address}${matching_id}")
                if not result.installed:
                    raise TerminalError(f"the eUICC did not install the profile: {result.error}")
                iccid = result.iccid
            if not any(p["iccid"] == iccid and p["state"] == "enabled" for p in lpa.profiles()):
                lpa.enable(iccid)
            lpa.send_notifications()
        return iccid

    def _name(self) -> str:
        return str(self.storage.document.get("name", ""))
