"""One emulated device of a load run: its eUICC (an EID of its own) and the LPA that drives it.

    device = LoadDevice(default_pki(), connect_to=("127.0.0.1", 8443), on_call=print)
    outcome = device.download("LPA:1$localhost:8443$LOAD-000001", enable=True, notify=True)

A download is the LPA's full SGP.22 §3.1.3 sequence (`host.lpa.Lpa.download`):
ES9+ InitiateAuthentication, AuthenticateClient, GetBoundProfilePackage and
HandleNotification (the installation result), the eUICC's ES10b work between
them. With `enable` the profile is then enabled (ES10c); with `notify` the
notifications that leaves on the eUICC are delivered (ES9+ HandleNotification,
SGP.22 §3.5). Each ES9+ exchange is timed at the HTTP layer (the SM-DP+'s
answer time, not the eUICC's) and handed to `on_call` as it ends.

Afterwards the device deletes the profile (disabling it first) and drops the
notifications that leaves, without sending them: the next download starts
from an empty eUICC, and the server sees only what a device downloading one
profile would send. The EID is random within the PKI's EUM range (SGP.29):
devices on many machines need no coordination to stay distinct.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from card.runtime import CardRuntime
from host.errors import ApduError
from host.es9plus import Es9Error
from host.lpa.es9 import Es9TransportError, HttpAnswer, HttpRequest
from host.lpa.es10 import Es10Client, Es10Error
from host.lpa.lpa import Lpa, LpaError
from host.pki import TestPki, make_eid
from host.presets import install_euicc
from host.readers.base import ReaderError
from host.readers.inprocess import InProcessReader

__all__ = ["Es9Call", "LoadDevice", "Outcome", "error_of"]


@dataclass(frozen=True)
class Es9Call:
    """One ES9+ exchange as the LPA saw it.

    Attributes:
        function: the ES9+ function ("initiateAuthentication", ...).
        seconds: from the request leaving to the answer read in full.
        length: the answer's bytes.
        error: None on success; else the SGP.22 status code "subject/reason"
            (e.g. "8.2.6/3.8") or "transport: ..." / "HTTP nnn".
    """

    function: str
    seconds: float
    length: int
    error: str | None = None


@dataclass
class Outcome:
    """A whole download (and enable / notification) by one device."""

    ok: bool
    seconds: float
    error: str | None = None
    iccid: str | None = None
    calls: list[Es9Call] = field(default_factory=list)


def _answer_error(status: int, body: bytes) -> str | None:
    """The SGP.22 status code an ES9+ answer reports (§6.5.1.4), "HTTP nnn", or None."""
    if status == 204:
        return None
    if status != 200:
        return f"HTTP {status}"
    try:
        answer = json.loads(body)
        fes = answer["header"]["functionExecutionStatus"]
    except (ValueError, KeyError, TypeError):
        return "not ES9+ JSON"
    if fes.get("status") in ("Executed-Success", "Executed-WithWarning"):
        return None
    data = fes.get("statusCodeData") or {}
    return f"{data.get('subjectCode', '?')}/{data.get('reasonCode', '?')}"


def error_of(exc: BaseException) -> str:
    """A short, stable name for why a download failed (Locust groups failures by it)."""
    if isinstance(exc, Es9Error):
        return f"{exc.subject_code}/{exc.reason_code}"
    if isinstance(exc, Es9TransportError):
        return "transport"
    if isinstance(exc, (LpaError, Es10Error)):
        return f"eUICC: {str(exc).split(':')[0]}"
    return f"eUICC: {type(exc).__name__}"


class LoadDevice:
    """An emulated eUICC with a random EID under `pki`'s EUM, and an LPA for it.

    Args:
        pki: the PKI whose EUM certifies the new eUICC and whose CI it trusts
            (and TLS is checked against).
        connect_to: send ES9+ connections here instead of the SM-DP+ address.
        tls: False for plain HTTP (an SM-DP+ behind a TLS proxy).
        on_call: called with each ES9+ exchange as it ends.
        extra_ci_certificates: more CI certificates (DER) the eUICC trusts.
    """

    def __init__(
        self,
        pki: TestPki,
        *,
        connect_to: tuple[str, int] | None = None,
        tls: bool = True,
        on_call: Callable[[Es9Call], None] | None = None,
        extra_ci_certificates: tuple[bytes, ...] = (),
    ) -> None:
        serial = secrets.randbelow(10 ** (30 - len(pki.ein)))
        self.eid = make_eid(pki.ein, serial)
        card_pki = dataclasses.replace(pki, euiccs={self.eid: pki.issue_euicc(self.eid)})
        runtime = CardRuntime()
        install_euicc(runtime, pki=card_pki, extra_ci_certificates=extra_ci_certificates)
        self.on_call = on_call
        self.broken = False
        self._calls: list[Es9Call] = []
        self.es10 = Es10Client(InProcessReader(runtime)).open()
        self.lpa = Lpa(
            self.es10, ca_pem=pki.ci.pem, connect_to=connect_to, tls=tls, http_hook=self._timed
        )

    def _timed(self, request: HttpRequest, send: Callable[[], HttpAnswer]) -> HttpAnswer:
        t0 = time.perf_counter()
        try:
            status, reason, body = send()
        except BaseException as e:
            self._report(Es9Call(request.function, time.perf_counter() - t0, 0, f"transport: {e}"))
            raise
        error = _answer_error(status, body)
        self._report(Es9Call(request.function, time.perf_counter() - t0, len(body), error))
        return status, reason, body

    def _report(self, call: Es9Call) -> None:
        self._calls.append(call)
        if self.on_call is not None:
            self.on_call(call)

    def download(self, code: str, *, enable: bool = False, notify: bool = False) -> Outcome:
        """Download the profile `code` points to (then enable it, deliver notifications).

        Never raises for what the server or the eUICC answered: the outcome says.
        """
        self._calls = []
        t0 = time.perf_counter()
        error: str | None = None
        iccid: str | None = None
        try:
            result = self.lpa.download(code)
            iccid = result.iccid
            if not result.installed:
                error = f"eUICC: install failed ({result.error[1] if result.error else '?'})"
            elif not result.notified:
                error = "installation result not delivered"
            else:
                if enable:
                    self.lpa.enable(result.iccid)
                if notify:
                    sent = self.lpa.send_notifications()
                    if any(s.get("result") != "sent" for s in sent):
                        error = "notification not delivered"
        except (Es9Error, Es9TransportError, LpaError, Es10Error, ApduError, ReaderError) as e:
            error = error_of(e)
        seconds = time.perf_counter() - t0
        self._clean()
        return Outcome(error is None, seconds, error, iccid, list(self._calls))

    def _clean(self) -> None:
        """Delete the downloaded profile and drop pending notifications, locally.

        A device that cannot is `broken`: its user makes a new one.
        """
        es10 = self.es10
        try:
            for p in self.lpa.profiles():
                if p["state"] == "enabled":
                    es10.disable_profile(p["iccid"])
                es10.delete_profile(p["iccid"])
            for n in es10.list_notifications():
                es10.remove_notification(n["seqNumber"])
        except (Es10Error, ApduError, ReaderError):
            self.broken = True
