"""The registration device and its HSM (seed 002, issuance ST11-ST22): logic and HTTP routes.

`Hsm` is the HSM as a software role with its own key store (SQLite): the
public institution's records (a card's reference, the holder's fingerprint
template, the holder's repository URL), fingerprint matching against a record
(ST13, without the record ever leaving it), key pairs generated and kept per
card (ST15-ST16), and the signature over the card's public key and the URL
(ST20). `RegistrationDevice` drives the card through the holder's terminal:
mutual authentication and secure messaging (its certificate CHR "HSM..."),
the holder's template from the card (ST12), the HSM's match (ST13-ST14), the
key exchange (ST15-ST19), the signed URL to the card (ST21), which checks it
and stores it (ST22). `create_app` puts it on the common web stack.

A fingerprint that does not match the record stops issuance before any key is
made: the card gets no HSM key and no URL, and the HSM stores nothing.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from applets.biometric import matcher
from applets.biometric.applet import DEFAULT_THRESHOLD
from applets.biometric.iso19794 import MalformedBiometricData, parse_biometric_data
from applets.repository.applet import signed_url_data
from card.crypto.keys import EcKeyPair, EcPublicKey
from card.sm.auth import TerminalAuthentication
from host.readers.base import Reader
from host.readers.sm import SmReader
from host.servers.web import HttpError, Refused, Store, hex_field, json_object, off_loop, role_app
from host.systems.repository.card import ChannelReader, RepositoryCard
from host.systems.repository.keystore import KeyStore, SqliteKeyStore
from host.systems.repository.pipe import CardJob, JobError, mark, poll
from host.systems.repository.server import key_id_of, poll_seq

__all__ = ["Hsm", "RegistrationDevice", "create_app", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    card_ref TEXT PRIMARY KEY, template BLOB NOT NULL, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY, card_ref TEXT NOT NULL, public BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS issued (
    card_ref TEXT NOT NULL, hsm_key_id TEXT NOT NULL, card_key BLOB NOT NULL,
    url TEXT NOT NULL, at REAL NOT NULL)
"""


MAX_JOBS = 256


class Hsm:
    """The HSM: records, matching, a key store and signatures; nothing secret leaves it.

    Args:
        store: its SQLite store (a path, or an open `Store`).
        keystore: where its private keys live (default: this store; or a PKCS#11
            token, `Pkcs11KeyStore`).
        threshold: the decision threshold of the fingerprint comparison.
    """

    def __init__(
        self,
        store: Store | str,
        *,
        keystore: KeyStore | None = None,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.store = Store.of(store, SCHEMA)
        self.keystore: KeyStore = keystore or SqliteKeyStore(self.store)
        self.threshold = threshold

    def enrol(self, card_ref: bytes, template: bytes, url: str) -> None:
        """The public institution's record of a holder: their finger and their repository."""
        parse_biometric_data(template)
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO records VALUES (?, ?, ?) ON CONFLICT (card_ref)"
                " DO UPDATE SET template = excluded.template, url = excluded.url",
                (card_ref.hex(), template, url),
            )

    def match(self, card_ref: bytes, template: bytes) -> bool:
        """ST13: does the template the card sent match the record? (a decision, no score)"""
        row = self.store.query_one(
            "SELECT template FROM records WHERE card_ref = ?", (card_ref.hex(),)
        )
        if row is None:
            return False
        try:
            probe = matcher.extract(parse_biometric_data(template))
        except (MalformedBiometricData, ValueError):
            return False
        reference = matcher.extract(parse_biometric_data(bytes(row["template"])))
        return matcher.compare(reference, probe) >= self.threshold

    def url_of(self, card_ref: bytes) -> str:
        row = self.store.query_one("SELECT url FROM records WHERE card_ref = ?", (card_ref.hex(),))
        if row is None:
            raise Refused(404, "no record for this card")
        return str(row["url"])

    def new_key(self, card_ref: bytes) -> bytes:
        """ST15-ST16: a key pair for this card's issuance; the private key stays here."""
        template = self.keystore.generate(f"card-{card_ref.hex()}")
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?)",
                (key_id_of(template).hex(), card_ref.hex(), template, time.time()),
            )
        return template

    def sign_url(self, hsm_key: bytes, card_key: bytes, url: str) -> bytes:
        """ST20: the signature over the card's public key and the URL, with `hsm_key`'s pair."""
        try:
            return self.keystore.sign(
                key_id_of(hsm_key).hex(), signed_url_data(card_key, url.encode())
            )
        except KeyError:
            raise Refused(404, "no such HSM key") from None

    def public_key(self, key_id: str) -> bytes:
        """An HSM public key (7F49) by ID: how a terminal checks a card's URL signature."""
        row = self.store.query_one("SELECT public FROM keys WHERE key_id = ?", (key_id,))
        if row is None:
            raise Refused(404, "no such HSM key")
        return bytes(row["public"])

    def record_issued(self, card_ref: bytes, hsm_key: bytes, card_key: bytes, url: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO issued VALUES (?, ?, ?, ?, ?)",
                (card_ref.hex(), key_id_of(hsm_key).hex(), card_key, url, time.time()),
            )

    def issued(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.query("SELECT * FROM issued")]

    def keys(self) -> list[str]:
        return [str(r["key_id"]) for r in self.store.query("SELECT key_id FROM keys")]


class RegistrationDevice:
    """The registration device: issues a card through the holder's terminal, with its HSM.

    Args:
        hsm: the HSM behind it.
        key: its secure messaging key, certified by `certificate` (CHR "HSM...").
        root: the root that certified the cards.
        sign: the HSM's signing step (a test swaps it for a wrong one).
    """

    def __init__(self, hsm: Hsm, *, key: EcKeyPair, certificate: bytes, root: EcPublicKey) -> None:
        self.hsm = hsm
        self.key, self.certificate, self.root = key, certificate, root
        self.sign: Callable[[bytes, bytes, str], bytes] = hsm.sign_url
        self._jobs: dict[str, CardJob] = {}
        self._lock = threading.Lock()

    def issue(self, reader: Reader, channel: int) -> dict[str, Any]:
        """ST11-ST22 over `reader` (the card, or a pipe to it); what was issued.

        Raises:
            JobError: the fingerprint did not match the record (nothing issued).
        """
        mark(reader, "mutual_auth")
        RepositoryCard(ChannelReader(reader, channel)).select()
        sm = SmReader(reader, channel=channel)
        cert = sm.authenticate(TerminalAuthentication(self.key, self.certificate, self.root))
        card = RepositoryCard(ChannelReader(sm, channel))  # ST11: every APDU under SM
        card_ref = cert.chr
        mark(reader, "template")
        template = card.read_template()  # ST12
        if not self.hsm.match(card_ref, template):  # ST13
            raise JobError("the fingerprint does not match the HSM's record")
        url = self.hsm.url_of(card_ref)
        hsm_key = self.hsm.new_key(card_ref)  # ST15-ST16
        mark(reader, "hsm_key")
        card.give_hsm_key(hsm_key)  # ST14, ST19
        mark(reader, "card_keypair")
        card_key = card.generate_issued_key()  # ST17-ST19
        signature = self.sign(hsm_key, card_key.template, url)  # ST20
        mark(reader, "signed_url")
        card.store_url(url, signature)  # ST21-ST22: the card checks it
        self.hsm.record_issued(card_ref, hsm_key, card_key.template, url)
        sm.close()
        return {
            "card": card_ref.hex(),
            "url": url,
            "hsm_key_id": key_id_of(hsm_key).hex(),
            "card_key_id": card_key.key_id.hex(),
        }

    def start_issuance(self, channel: int) -> str:
        """An issuance through a polling terminal; its ID (the terminal pumps `exchange`)."""
        if not 0 <= channel <= 19:
            raise Refused(400, "the logical channel is 0..19")
        iid = secrets.token_hex(16)
        with self._lock:
            if len(self._jobs) >= MAX_JOBS:  # forget finished issuances first
                for old in [k for k, j in self._jobs.items() if j.finished]:
                    del self._jobs[old]
            if len(self._jobs) >= MAX_JOBS:
                raise Refused(503, "too many issuances under way")
            self._jobs[iid] = CardJob(lambda pipe: self.issue(pipe, channel))
        return iid

    def exchange(self, iid: str, response: bytes | None, seq: int | None = None) -> dict[str, Any]:
        """One poll of the terminal (`seq` numbers them: a duplicate is answered again)."""
        job = self._jobs.get(iid)
        if job is None:
            raise Refused(404, "no such issuance")
        return poll(job, response, seq)

    def close(self) -> None:
        for job in self._jobs.values():
            job.abandon()
        self.hsm.store.close()


def create_app(device: RegistrationDevice) -> Starlette:
    """The registration device's routes (JSON; bytes as hex; problem details)."""

    async def issuances(request: Request) -> Response:
        body = await json_object(request)
        channel = body.get("channel")
        if not isinstance(channel, int):
            raise HttpError(400, "channel: an integer")
        iid = await off_loop(lambda: device.start_issuance(channel))
        return JSONResponse({"issuance": iid}, status_code=201)

    async def card(request: Request) -> Response:
        body = await json_object(request)
        resp = None if body.get("response") is None else hex_field(body, "response")
        seq = poll_seq(body)
        return JSONResponse(
            await off_loop(lambda: device.exchange(request.path_params["iid"], resp, seq))
        )

    async def keys(request: Request) -> Response:
        template = await off_loop(lambda: device.hsm.public_key(request.path_params["key_id"]))
        return JSONResponse({"public_key": template.hex()})

    routes = [
        Route("/issuances", issuances, methods=["POST"]),
        Route("/issuances/{iid}/card", card, methods=["POST"]),
        Route("/hsm/keys/{key_id}", keys, methods=["GET"]),
    ]
    return role_app("registration", routes)
