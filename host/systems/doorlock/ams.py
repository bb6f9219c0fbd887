"""The application management server of seed 001: logic (`AppManagementServer`) and HTTP routes.

What it keeps (SQLite): the devices it manages (door locks with their SIMs,
phones with theirs), which applet each kind of requesting device needs on the
phone, and every download. It is also the issuer: it holds the issuer's P-256
key that certifies the chips' keys, and each lock's door key (the shared AES
key of the challenge-response method).

- Seed §6.1 (modification 1): `provision_lock` pushes the applet, lock role,
  to a lock's own SIM, outside service hours (at night: a lock is always on
  the network, and nobody is at the door).
- Seed §6.2 (modification 2), S207-S209: `download(request)` takes the
  request the lock's chip made and signed (`applets.doorlock`, `80 D0`),
  checks it came from a registered lock's chip (the lock found by the
  identifiers it names, the signature by the key that chip was personalised
  with, the counter above the last one seen), finds the phone by the
  identifiers the request gives (all of them must name one phone), builds
  the install script of the applet the requester's kind needs, delivers it
  (`delivery.AppletDelivery`), checks the card's answers and logs the download.
- `enrol_phone`: the same download, triggered by the server (seed §6.2's first
  paragraph: "download to the mobile terminal side at the server trigger").

Refusals raise `Refused` (an HTTP problem at the edge) and deliver nothing;
every download attempt that reached a phone is logged, whatever its outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from applets.doorlock.protocol import (
    ALL_SIM_IDS,
    COMBINATIONS,
    ID_ICCID,
    METHOD_CERTIFICATE,
    METHOD_SHARED_KEY,
    ROLE_KEY,
    ROLE_LOCK,
    request_signed_part,
)
from card import tlv
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.sm.cvc import issue_cvc, parse_public_key_template, public_key_template
from host.servers.web import (
    HttpError,
    Refused,
    Store,
    hex_field,
    json_object,
    off_loop,
    role_app,
    text_field,
)
from host.systems.doorlock.card import (
    Identifiers,
    InstallScript,
    SimIdentity,
    install_script,
    personalisation,
)
from host.systems.doorlock.delivery import AppletDelivery, DeliveryError, Receipt
from host.systems.scenario import StepHook

__all__ = [
    "AppManagementServer",
    "DownloadResult",
    "ISSUER_REF",
    "Refused",
    "SCHEMA",
    "ServiceHours",
    "create_app",
]

#: The issuer's certification authority reference (CAR of every chip certificate).
ISSUER_REF = b"DLISSUER"
DOOR_LOCK = "door-lock"
PHONE = "phone"

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, kind TEXT NOT NULL, identity BLOB UNIQUE NOT NULL,
    mac TEXT UNIQUE, imei TEXT UNIQUE, iccid TEXT UNIQUE, imsi TEXT UNIQUE, msisdn TEXT UNIQUE,
    methods INTEGER NOT NULL DEFAULT 3, combination TEXT NOT NULL DEFAULT 'D',
    sim_ids INTEGER NOT NULL DEFAULT 130,
    try_limit INTEGER NOT NULL DEFAULT 5,
    public_key BLOB, door_key BLOB, last_counter INTEGER NOT NULL DEFAULT 0,
    provisioned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS applets (
    requester_kind TEXT PRIMARY KEY, package TEXT NOT NULL, role INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, trigger TEXT NOT NULL, requester TEXT,
    device_id TEXT NOT NULL, package TEXT NOT NULL, path TEXT NOT NULL,
    outcome TEXT NOT NULL, statuses TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS issuer (id INTEGER PRIMARY KEY CHECK (id = 1), private BLOB NOT NULL)
"""

_ID_COLUMNS = {"mac": 0x80, "imei": 0x81, "iccid": 0x82, "imsi": 0x83, "msisdn": 0x84}


@dataclass(frozen=True)
class ServiceHours:
    """When the door service runs (local time, hours); pre-provisioning waits outside them.

    The default, 06:00-23:00, leaves the night for updates, as seed §6.1 suggests.
    """

    start: int = 6
    end: int = 23

    def inside(self, at: datetime) -> bool:
        return self.start <= at.hour < self.end


@dataclass(frozen=True)
class DownloadResult:
    """One download: where it went, how, and what the card answered."""

    download_id: int
    device_id: str
    package: str
    receipt: Receipt

    def to_json(self) -> dict[str, Any]:
        return {
            "download_id": self.download_id,
            "device_id": self.device_id,
            "package": self.package,
            "outcome": "installed" if self.receipt.ok else "failed",
            "receipt": self.receipt.to_json(),
        }


class AppManagementServer:
    """Seed 001's application management server (see the module docstring).

    Args:
        store: its SQLite store (a path or an open `Store`).
        delivery: how scripts reach SIMs.
        rng: the randomness of the keys it issues (a seeded `CardRng` for a reproducible demo).
        hours: the service hours.
        clock: local time now (tests and the scenario move it).
        sms_address: its address at the SMS centre, personalised into locks so that
            their chips send requests there by SMS (None: requests come by HTTP).
    """

    def __init__(
        self,
        store: Store | str,
        delivery: AppletDelivery | None = None,
        *,
        rng: CardRng | None = None,
        hours: ServiceHours | None = None,
        clock: Callable[[], datetime] = datetime.now,
        sms_address: str | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        #: told (interface, function, detail) as S207 and S208 complete: the request
        #: received ("ams", "request"), the lock checked and the phone found
        #: ("ams", "identify"); a scenario labels the messages of each with its step.
        self.on_step = on_step or (lambda interface, function, detail: None)
        self.store = Store.of(store, SCHEMA)
        self.delivery = delivery
        self.rng = rng or CardRng()
        self.hours = hours or ServiceHours()
        self.clock = clock
        self.sms_address = sms_address
        self._lock = threading.Lock()  # one download at a time per server
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO applets VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (DOOR_LOCK, "applets.doorlock", ROLE_KEY),
            )
            row = c.execute("SELECT private FROM issuer").fetchone()
            if row is None:
                key = EcKeyPair.generate(P256, self.rng)
                # ON CONFLICT: another AMS process on the same PostgreSQL store may have
                # made the key since the SELECT (READ COMMITTED); its key is the one kept.
                c.execute(
                    "INSERT INTO issuer VALUES (1, ?) ON CONFLICT DO NOTHING",
                    (key.private_bytes(),),
                )
                row = c.execute("SELECT private FROM issuer").fetchone()
        self.issuer = EcKeyPair.from_private_value(P256, row[0], deterministic=True)

    # -- the registry ---------------------------------------------------------------------

    def register_lock(
        self,
        device_id: str,
        *,
        mac: bytes,
        sim: SimIdentity,
        methods: int = METHOD_SHARED_KEY | METHOD_CERTIFICATE,
        combination: str = "D",
        try_limit: int = 5,
        sim_ids: int = ID_ICCID,
    ) -> None:
        """A door lock and its SIM; its door key (the shared AES key) is made here.

        `sim_ids`: the identifier its chip names a SIM by in requests (82 ICCID, 83
        IMSI, 84 MSISDN, FF all three).
        """
        if combination not in COMBINATIONS or not 1 <= try_limit <= 15 or methods not in (1, 2, 3):
            raise Refused(400, "combination A-D, try limit 1-15, methods 1-3")
        if sim_ids not in (ID_ICCID, ID_ICCID + 1, ID_ICCID + 2, ALL_SIM_IDS):
            raise Refused(400, "sim_ids: 82, 83, 84 or FF")
        door_key = self.rng.random(16)
        self._insert(
            device_id,
            DOOR_LOCK,
            mac=mac.hex().upper(),
            sim=sim,
            methods=methods,
            combination=combination,
            try_limit=try_limit,
            door_key=door_key,
            sim_ids=sim_ids,
        )

    def register_phone(self, device_id: str, *, imei: str, sim: SimIdentity) -> None:
        """A phone and its SIM, as the operator knows them (IMEI, ICCID, IMSI, MSISDN)."""
        self._insert(device_id, PHONE, imei=imei, sim=sim)

    def _insert(self, device_id: str, kind: str, *, sim: SimIdentity, **cols: Any) -> None:
        values = {
            "device_id": device_id,
            "kind": kind,
            "identity": device_id.encode()[:32],
            "iccid": sim.iccid,
            "imsi": sim.imsi,
            "msisdn": sim.msisdn,
            **cols,
        }
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        try:
            with self.store.transaction() as c:
                c.execute(f"INSERT INTO devices ({names}) VALUES ({marks})", tuple(values.values()))
        except Exception as e:  # sqlite3.IntegrityError: an identifier already registered
            raise Refused(409, f"{device_id}: already registered ({e})") from None

    def device(self, device_id: str) -> dict[str, Any] | None:
        row = self.store.query_one("SELECT * FROM devices WHERE device_id = ?", (device_id,))
        return dict(row) if row is not None else None

    def downloads(self) -> list[dict[str, Any]]:
        """The download log, oldest first."""
        return [dict(r) for r in self.store.query("SELECT * FROM downloads ORDER BY id")]

    # -- issuing -----------------------------------------------------------------------------

    def _chip_key(self, identity: bytes) -> tuple[EcKeyPair, bytes]:
        """A P-256 key pair for a chip and its certificate (CHR = the chip's identity)."""
        key = EcKeyPair.generate(P256, self.rng)
        cert = issue_cvc(self.issuer.cryptography_key, ISSUER_REF, identity, key.public)
        return key, cert

    def lock_script(self, device_id: str) -> tuple[InstallScript, bytes]:
        """The lock role's install script for a registered lock, and its public key template."""
        lock = self._require(device_id, DOOR_LOCK)
        key, cert = self._chip_key(lock["identity"])
        ids = Identifiers(
            mac=bytes.fromhex(lock["mac"]),
            sim=SimIdentity(lock["iccid"], lock["imsi"], lock["msisdn"]),
        )
        perso = personalisation(
            role=ROLE_LOCK,
            methods=lock["methods"],
            identity=lock["identity"],
            shared_key=lock["door_key"] if lock["methods"] & METHOD_SHARED_KEY else None,
            key=key,
            certificate=cert if lock["methods"] & METHOD_CERTIFICATE else None,
            issuer=self.issuer.public if lock["methods"] & METHOD_CERTIFICATE else None,
            lock_ids=ids,
            try_limit=lock["try_limit"],
            combination=lock["combination"],
            sim_ids=lock["sim_ids"],
            server_address=self.sms_address,
        )
        return install_script(perso), public_key_template(key.public)

    def key_script(self, phone: dict[str, Any], lock: dict[str, Any]) -> InstallScript:
        """The key role's install script for `phone`, opening `lock` (its methods, its door key)."""
        methods = lock["methods"]
        key, cert = (None, None)
        if methods & METHOD_CERTIFICATE:
            key, cert = self._chip_key(phone["identity"])
        perso = personalisation(
            role=ROLE_KEY,
            methods=methods,
            identity=phone["identity"],
            shared_key=lock["door_key"] if methods & METHOD_SHARED_KEY else None,
            key=key,
            certificate=cert,
            issuer=self.issuer.public if methods & METHOD_CERTIFICATE else None,
        )
        return install_script(perso)

    def _require(self, device_id: str, kind: str) -> dict[str, Any]:
        row = self.device(device_id)
        if row is None or row["kind"] != kind:
            raise Refused(404, f"no {kind} {device_id!r}")
        return row

    def _deliver(
        self, trigger: str, requester: str | None, device_id: str, script: InstallScript
    ) -> DownloadResult:
        if self.delivery is None:
            raise Refused(503, "no delivery path to SIMs is configured")
        try:
            receipt = self.delivery.deliver(device_id, script)
        except DeliveryError as e:
            receipt = Receipt(device_id, self.delivery.path, (), len(script.commands()), str(e))
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO downloads (at, trigger, requester, device_id, package, path, "
                "outcome, statuses, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    trigger,
                    requester,
                    device_id,
                    script.package,
                    receipt.path,
                    "installed" if receipt.ok else "failed",
                    " ".join(f"{s:04X}" for s in receipt.statuses),
                    receipt.detail,
                ),
            )
            download_id = int(c.lastrowid or 0)
        return DownloadResult(download_id, device_id, script.package, receipt)

    # -- seed §6.1: the lock's own SIM, outside service hours -----------------------------------

    def provision_lock(self, device_id: str, *, force: bool = False) -> DownloadResult:
        """Push the applet (lock role) to a registered lock's SIM, outside service hours.

        Raises:
            Refused: 404 no such lock; 409 inside service hours (unless `force`).
        """
        with self._lock:
            self._require(device_id, DOOR_LOCK)
            now = self.clock()
            if self.hours.inside(now) and not force:
                raise Refused(
                    409,
                    f"inside service hours ({self.hours.start:02d}:00-{self.hours.end:02d}:00, "
                    f"now {now:%H:%M}): pre-provisioning runs at night",
                )
            script, public = self.lock_script(device_id)
            result = self._deliver("provision", None, device_id, script)
            if result.receipt.ok:
                with self.store.transaction() as c:
                    c.execute(
                        "UPDATE devices SET public_key = ?, provisioned = 1, last_counter = 0 "
                        "WHERE device_id = ?",
                        (public, device_id),
                    )
            return result

    # -- seed §6.2: a phone, at the server's trigger or at a lock's request ----------------------

    def enrol_phone(self, phone_id: str, lock_id: str) -> DownloadResult:
        """Push the key role to a phone, for a lock (server-triggered)."""
        with self._lock:
            phone = self._require(phone_id, PHONE)
            lock = self._require(lock_id, DOOR_LOCK)
            return self._deliver("server", lock_id, phone_id, self.key_script(phone, lock))

    def poll_sms(self, gateway: Any) -> list[DownloadResult | Refused]:
        """The download requests that came by short message (`ota.SmsGateway`), each handled.

        The network vouches for the sender's MSISDN: it must be the lock's SIM's.
        """
        out: list[DownloadResult | Refused] = []
        for sender, request in gateway.take_requests():
            try:
                out.append(self.download(request, sender_msisdn=sender))
            except Refused as e:
                out.append(e)
        return out

    def download(self, request: bytes, *, sender_msisdn: str | None = None) -> DownloadResult:
        """S207-S209: a lock chip's download request; the phone it names gets the applet.

        Raises:
            Refused: 400 malformed; 403 not a registered lock, or not signed by its chip;
                409 a replayed request (counter not above the last), identifiers naming
                two phones; 404 no phone with these identifiers.
        """
        with self._lock:
            via = f"by SMS from {sender_msisdn}" if sender_msisdn else "by HTTPS"
            self.on_step("ams", "request", f"a download request, {len(request)} bytes, {via}")
            fields = _parse_request(request)
            combination, lock_ids, phone_ids, identity, counter, signature = fields
            lock = self._find(lock_ids, DOOR_LOCK)
            if lock is None or not lock["provisioned"] or lock["identity"] != identity:
                raise Refused(403, "the requester is not a registered lock")
            if sender_msisdn is not None and sender_msisdn != lock["msisdn"]:
                raise Refused(403, "the short message did not come from the lock's SIM")
            public = parse_public_key_template(lock["public_key"])
            signed = request_signed_part(
                combination, _encode_ids(lock_ids), _encode_ids(phone_ids), identity, counter
            )
            if not public.verify(signed, signature, encoding="raw"):
                raise Refused(403, "the request is not signed by the registered lock's chip")
            lock_tags, phone_tags = COMBINATIONS[combination.decode()]
            if set(lock_ids) - {_name_of(t) for t in lock_tags}:
                raise Refused(400, "identifiers outside the request's combination")
            if set(phone_ids) - {_name_of(t) for t in phone_tags}:
                raise Refused(400, "identifiers outside the request's combination")
            with self.store.transaction() as c:
                row = c.execute(
                    "SELECT last_counter FROM devices WHERE device_id = ?" + self.store.for_update,
                    (lock["device_id"],),
                ).fetchone()
                if counter <= row[0]:
                    raise Refused(409, f"replayed request (counter {counter}, last {row[0]})")
                c.execute(
                    "UPDATE devices SET last_counter = ? WHERE device_id = ?",
                    (counter, lock["device_id"]),
                )
            phone = self._find(phone_ids, PHONE)
            if phone is None:
                raise Refused(404, "no registered phone has these identifiers")
            package = self.store.query_one(
                "SELECT package FROM applets WHERE requester_kind = ?", (lock["kind"],)
            )
            if package is None:
                raise Refused(404, f"no applet registered for {lock['kind']} requesters")
            script = replace(self.key_script(phone, lock), package=package["package"])
            named = ", ".join(sorted(phone_ids))
            self.on_step(
                "ams",
                "identify",
                f"{lock['device_id']} checked (chip signature, counter {counter}); "
                f"{phone['device_id']} found by {named}; {package['package']}",
            )
            return self._deliver("lock-request", lock["device_id"], phone["device_id"], script)

    def _find(self, ids: dict[str, str], kind: str) -> dict[str, Any] | None:
        """The one device of `kind` every identifier names (Refused 409 if they name several)."""
        if not ids:
            return None
        found: set[str] = set()
        for name, value in ids.items():
            row = self.store.query_one(
                f"SELECT device_id FROM devices WHERE {name} = ? AND kind = ?", (value, kind)
            )
            found.add(row["device_id"] if row is not None else "")
        if "" in found:
            if len(found) > 1:
                raise Refused(409, "the identifiers do not name one device")
            return None
        if len(found) > 1:
            raise Refused(409, "the identifiers name different devices")
        return self.device(found.pop())

    def close(self) -> None:
        self.store.close()


def _name_of(tag: int) -> str:
    return next(k for k, v in _ID_COLUMNS.items() if v == tag)


def _encode_ids(ids: dict[str, str]) -> bytes:
    out = b""
    for name, tag in _ID_COLUMNS.items():
        if name in ids:
            value = bytes.fromhex(ids[name]) if name == "mac" else ids[name].encode()
            out += tlv.build(tag, value)
    return out


def _parse_request(data: bytes) -> tuple[bytes, dict[str, str], dict[str, str], bytes, int, bytes]:
    """(combination, lock ids, phone ids, lock identity, counter, signature) of an E1 request."""
    try:
        obj = tlv.Tlv.from_bytes(data, allow_padding=False)
        items = [(c.tag, c) for c in obj.children]
        tags = [t for t, _ in items]
        if obj.tag != 0xE1 or tags != [0x80, 0xA1, 0xA2, 0x5F20, 0x85, 0x5F37]:
            raise ValueError("E1 { 80, A1, A2, 5F20, 85, 5F37 } in that order")
        c = dict(items)
        combination = c[0x80].value
        if combination.decode() not in COMBINATIONS or len(c[0x85].value) != 4:
            raise ValueError("combination A-D, a 4-byte counter")
        lock_ids = Identifiers.parse(c[0xA1].value)
        phone_ids = Identifiers.parse(c[0xA2].value)
        # The signed part must be the bytes as sent: re-encoding must give them back.
        if _encode_ids(lock_ids) != c[0xA1].value or _encode_ids(phone_ids) != c[0xA2].value:
            raise ValueError("identifiers out of order")
        counter = int.from_bytes(c[0x85].value, "big")
        return combination, lock_ids, phone_ids, c[0x5F20].value, counter, c[0x5F37].value
    except (ValueError, UnicodeDecodeError, tlv.TlvError) as e:
        raise Refused(400, f"malformed download request: {e}") from None


# -- HTTP ---------------------------------------------------------------------------------


def _str(body: dict[str, Any], name: str) -> str:
    return text_field(body, name, 64)


def _sim(body: dict[str, Any]) -> SimIdentity:
    return SimIdentity(_str(body, "iccid"), _str(body, "imsi"), _str(body, "msisdn"))


def create_app(ams: AppManagementServer) -> Starlette:
    """The server's routes (JSON; bytes as hex; errors as RFC 9457 problem details).

    - `POST /download-requests {"request": hex}` (S207) → 201 the download
    - `POST /locks {"device_id", "mac", "iccid", "imsi", "msisdn"[, "methods",
      "combination"]}` → 201; `POST /locks/{id}/provision {"force": bool}` → 200
    - `POST /phones {"device_id", "imei", "iccid", "imsi", "msisdn"}` → 201;
      `POST /phones/{id}/enrol {"lock": id}` → 200
    - `GET /downloads` → the log
    """

    async def download_requests(request: Request) -> Response:
        body = await json_object(request)
        data = hex_field(body, "request")
        result = await off_loop(lambda: ams.download(data))
        return JSONResponse(result.to_json(), status_code=201)

    async def locks(request: Request) -> Response:
        body = await json_object(request)
        methods = body.get("methods", 3)
        combination = body.get("combination", "D")
        if not isinstance(methods, int) or not isinstance(combination, str):
            raise HttpError(400, "methods: an integer; combination: A-D")
        mac = hex_field(body, "mac")
        await off_loop(
            lambda: ams.register_lock(
                _str(body, "device_id"),
                mac=mac,
                sim=_sim(body),
                methods=methods,
                combination=combination,
            )
        )
        return Response(status_code=201)

    async def provision(request: Request) -> Response:
        body = await json_object(request)
        force = body.get("force", False) is True
        result = await off_loop(lambda: ams.provision_lock(request.path_params["id"], force=force))
        return JSONResponse(result.to_json())

    async def phones(request: Request) -> Response:
        body = await json_object(request)
        await off_loop(
            lambda: ams.register_phone(
                _str(body, "device_id"), imei=_str(body, "imei"), sim=_sim(body)
            )
        )
        return Response(status_code=201)

    async def enrol(request: Request) -> Response:
        body = await json_object(request)
        lock = _str(body, "lock")
        result = await off_loop(lambda: ams.enrol_phone(request.path_params["id"], lock))
        return JSONResponse(result.to_json())

    async def downloads(request: Request) -> Response:
        return JSONResponse({"downloads": await off_loop(ams.downloads)})

    routes = [
        Route("/download-requests", download_requests, methods=["POST"]),
        Route("/locks", locks, methods=["POST"]),
        Route("/locks/{id}/provision", provision, methods=["POST"]),
        Route("/phones", phones, methods=["POST"]),
        Route("/phones/{id}/enrol", enrol, methods=["POST"]),
        Route("/downloads", downloads, methods=["GET"]),
    ]
    return role_app("doorlock-ams", routes)
