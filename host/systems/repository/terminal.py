"""The counter terminal of seed 002 (and the holder's terminal at issuance): it drives the card
and the servers, and relays the servers' secure messaging APDUs it can neither read nor alter.

Its card is on three logical channels: channel 0 the match-on-card applet (the
sensor's VERIFY, ST31-ST33), one channel the repository applet in clear (the
URL, ST34-ST35; the token, ST60 and ST77), one channel for the server's
protected commands, which the terminal only relays (`relay`).

HTTP is JSON over `http.client`, through an optional `HttpHook` (the scenario's
recorder and fault injector see every exchange).
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from applets.biometric.iso19794 import Minutia
from applets.repository.applet import signed_url_data
from card.crypto.keys import EcKeyPair
from card.sm.cvc import ec_sign, ec_verify, parse_public_key_template
from host.bio.session import BioSession
from host.lpa.es9 import HttpAnswer, HttpHook, HttpRequest
from host.readers.base import Reader
from host.systems.repository.card import (
    FINGER,
    ChannelReader,
    RepositoryCard,
    SignedUrl,
    open_channel,
)

__all__ = ["CounterTerminal", "JsonClient", "ServerRefused", "UrlRefused"]


class ServerRefused(Exception):
    """A server answered with an error (its problem detail), or its card operation failed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class UrlRefused(Exception):
    """The card's repository URL does not carry a valid signature of a known HSM."""


class JsonClient:
    """JSON requests to one server over HTTPS (or plain HTTP), through an optional hook.

    Args:
        base: the server's https:// (or http://) URL.
        hook: sees every request and its answer (a scenario's recorder).
        timeout: seconds per exchange.
        ca_pem: the CA certificates (PEM) that HTTPS servers must chain to;
            None trusts the system's store.
    """

    def __init__(
        self,
        base: str,
        *,
        hook: HttpHook | None = None,
        timeout: float = 30.0,
        ca_pem: bytes | None = None,
    ) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("https", "http") or parts.hostname is None:
            raise ValueError(f"an https:// or http:// URL, not {base!r}")
        self.base = base.rstrip("/")
        self.tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.tls = ssl.create_default_context(cadata=ca_pem.decode() if ca_pem else None)
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls is not None else 80)
        self.prefix = parts.path.rstrip("/")
        self.hook = hook
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One exchange; the JSON answer (None for 2xx without a body).

        Raises:
            ServerRefused: a 4xx/5xx answer.
            OSError: no answer.
        """
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        url = self.base + path

        def send() -> HttpAnswer:
            conn: http.client.HTTPConnection
            if self.tls is not None:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.tls
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request(method, self.prefix + path, body=raw or None, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.reason, resp.read()
            finally:
                conn.close()

        request = HttpRequest(path, method, url, headers, raw)
        status, _, answer = self.hook(request, send) if self.hook is not None else send()
        value = json.loads(answer) if answer else None
        if status >= 400:
            detail = value.get("detail", "") if isinstance(value, dict) else ""
            raise ServerRefused(status, str(detail))
        return value


class CounterTerminal:
    """Seed 002's counter terminal over a reader holding the card.

    Args:
        reader: the card (in-process, PC/SC, traced).
        terminal_id: how the repository knows this terminal.
        key: its signing key (the repository holds its public key by ID).
        key_id: that key's ID at the repository (hex).
        hook: the HTTP hook (recorder, faults).
        on_step: told when each seed step completes: (function name, detail).
    """

    def __init__(
        self,
        reader: Reader,
        *,
        terminal_id: str = "counter-1",
        key: EcKeyPair | None = None,
        key_id: str = "",
        hook: HttpHook | None = None,
        on_step: Callable[[str, str], object] | None = None,
        ca_pem: bytes | None = None,
    ) -> None:
        self.reader = reader
        self.ca_pem = ca_pem  # what the repository's HTTPS certificate must chain to
        self.terminal_id = terminal_id
        self.key = key
        self.key_id = key_id
        self.hook = hook
        self.on_step = on_step or (lambda function, detail: None)
        self._plain: RepositoryCard | None = None
        self._server_channel: int | None = None
        self.repo: JsonClient | None = None
        self.session = ""
        self.card_key: bytes | None = None

    # -- the card in clear ---------------------------------------------------------

    def present_finger(self, minutiae: Sequence[Minutia]) -> bool:
        """ST31-ST33: the finger on the card's sensor; the card's decision."""
        bio = BioSession(self.reader)
        bio.select()
        result = bio.verify(FINGER, tuple(minutiae))
        return result.matched

    def plain_card(self) -> RepositoryCard:
        if self._plain is None:
            card = RepositoryCard(ChannelReader(self.reader, open_channel(self.reader)))
            card.select()
            self._plain = card
        return self._plain

    def server_channel(self) -> int:
        """The logical channel the servers' protected commands travel on (opened once)."""
        if self._server_channel is None:
            self._server_channel = open_channel(self.reader)
        return self._server_channel

    def read_url(self, registration: JsonClient | None = None) -> SignedUrl:
        """ST34-ST35: the repository URL (after a match in this card session).

        With `registration`, the HSM's signature over the card's key and the URL
        is checked with the HSM key the registration device publishes.

        Raises:
            UrlRefused: the HSM key is unknown there, or the signature fails.
        """
        signed = self.plain_card().read_url()
        if registration is not None:
            try:
                answer = registration.request("GET", f"/hsm/keys/{signed.hsm_key_id.hex()}")
            except ServerRefused:
                raise UrlRefused("the card's URL is signed by an HSM key nobody issued") from None
            hsm = parse_public_key_template(bytes.fromhex(answer["public_key"]))
            if not ec_verify(
                hsm, signed_url_data(signed.card_key, signed.url.encode()), signed.signature
            ):
                raise UrlRefused("the HSM's signature over the card's key and URL fails")
        return signed

    # -- the relay ---------------------------------------------------------------------

    def relay(self, server: JsonClient, path: str, details: Mapping[str, str] | None = None) -> Any:
        """Pump a server's card exchange: its APDUs to the card, the card's answers back.

        Each poll's answer may name the seed step its APDU belongs to (the
        server knows; the terminal cannot read SM). When the name changes, the
        step before is done: `on_step(name, details[name])`. The last named step
        is left to the caller, who knows how the exchange ended.

        Raises:
            ServerRefused: the server's operation failed (status 409, its message).
        """
        response: str | None = None
        seq = 0
        current, count = "", 0
        while True:
            seq += 1  # numbered, so a duplicated poll is answered, not fed twice
            step = server.request("POST", path, {"response": response, "seq": seq})
            if step.get("done"):
                if "error" in step:
                    raise ServerRefused(409, str(step["error"]))
                return step.get("result")
            name = str(step.get("step") or "")
            if name != current:
                if current:
                    done = (details or {}).get(current, "")
                    self.on_step(current, done or f"{count} APDU(s) relayed")
                current, count = name, 0
            count += 1
            response = self.reader.transmit(bytes.fromhex(step["apdu"])).hex().upper()

    # -- issuance (the holder's terminal) -------------------------------------------

    def issue(self, registration: JsonClient) -> dict[str, Any]:
        """ST11-ST22 through the registration device: the card issued."""
        answer = registration.request("POST", "/issuances", {"channel": self.server_channel()})
        details = {
            "mutual_auth": "card and HSM authenticated, SM set up",
            "template": "the holder's template sent under SM",
            "hsm_key": "the HSM matched the finger and gave its public key",
            "card_keypair": "the card made its key pair and gave its public key",
        }
        result = self.relay(registration, f"/issuances/{answer['issuance']}/card", details)
        self.on_step("signed_url", f"{result['url']} stored, HSM signature checked by the card")
        return dict(result)

    # -- the repository ------------------------------------------------------------------

    def connect(self, url: str | None = None) -> None:
        """ST36-ST48: session, SM between repository and card, keys exchanged by ID."""
        base = url or self.read_url().url
        self.repo = repo = JsonClient(base, hook=self.hook, ca_pem=self.ca_pem)
        answer = repo.request(
            "POST", "/sessions", {"terminal_id": self.terminal_id, "channel": self.server_channel()}
        )
        self.session = answer["session"]
        self.on_step("open_session", self.session[:8])
        p = f"/sessions/{self.session}"
        repo.request("POST", f"{p}/secure")
        card = self.relay(repo, f"{p}/card")
        self.on_step(
            "secure_messaging", f"card {bytes.fromhex(card['card']).decode(errors='replace')}"
        )
        repo.request("POST", f"{p}/terminal-key", {"key_id": self.key_id})
        self.on_step("terminal_key", self.key_id[:16])
        repo.request("POST", f"{p}/card-key")
        result = self.relay(repo, f"{p}/card")
        key_id = result["key_id"]
        self.card_key = bytes.fromhex(repo.request("GET", f"/keys/{key_id}")["public_key"])
        self.on_step("card_key", key_id[:16])

    def _repo(self) -> JsonClient:
        if self.repo is None:
            raise RuntimeError("connect() first")
        return self.repo

    def read(self, credential_id: str) -> bytes:
        """ST51-ST65: a credential, signed by the card, checked with the card's key."""
        repo = self._repo()
        p = f"/sessions/{self.session}"
        repo.request("POST", f"{p}/reads", {"credential_id": credential_id})
        self.on_step("read_request", credential_id)
        self.relay(repo, f"{p}/card", {"card_signs": f"{credential_id} signed by the card"})
        self.on_step("token_to_card", "a one-time token under SM")
        token = self.plain_card().read_token()  # ST58-ST60
        self.on_step("token_via_card", f"{len(token)} bytes")
        answer = repo.request("POST", f"{p}/disclose", {"token": token.hex()})
        data, sig = bytes.fromhex(answer["credential"]), bytes.fromhex(answer["signature"])
        key = repo.request("GET", f"/keys/{answer['card_key_id']}")["public_key"]
        if not ec_verify(parse_public_key_template(bytes.fromhex(key)), data, sig):  # ST65
            raise ServerRefused(0, "the card's signature over the credential does not verify")
        self.on_step("disclosed", f"{credential_id}: {len(data)} bytes, card signature ok")
        return data

    def write(self, credential_id: str, data: bytes) -> None:
        """ST71-ST83: a credential signed by this terminal, stored with a token through the card."""
        if self.key is None:
            raise RuntimeError("the terminal has no signing key")
        repo = self._repo()
        p = f"/sessions/{self.session}"
        repo.request("POST", f"{p}/writes", {"credential_id": credential_id})
        self.relay(repo, f"{p}/card")
        self.on_step("write_sent", credential_id)
        token = self.plain_card().read_token()  # ST75-ST77
        self.on_step("write_token", f"{len(token)} bytes")
        signature = ec_sign(self.key.cryptography_key, self.key.curve, data)  # ST78
        repo.request(
            "POST",
            f"{p}/store",
            {
                "token": token.hex(),
                "credential_id": credential_id,
                "credential": data.hex(),
                "signature": signature.hex(),
            },
        )
        self.on_step("stored", f"{credential_id}: {len(data)} bytes")
