"""Seed 001 as a scenario: a door that opens offline between two SIMs (S101-S110, S201-S209).

Parties: the door-lock controller and its SIM, three phones with theirs, the
application management server (in this process, on loopback HTTP). The
run, in the seed's order:

1. §6.1: the server pushes the applet (lock role) to the lock's own SIM — refused
   inside service hours, done at night; §6.2: it enrols phone 1 (key role).
2. S101-S109 twice: phone 1 opens the door with the shared-key method (01), then
   with certificates (02); each time the phone's chip checks the lock's answer too.
3. S101-S110: phone 3, whose key is another door's, is refused (63Cx: a try spent).
4. S201-S209 then S104-S109: phone 2 has no applet (6A82); the lock's chip signs
   a download request naming both devices (S206) and sends it (S207); the
   server checks the lock and finds the phone (S208: the server names the
   step), installs the applet and logs it (S209); phone 2 then opens the door.
5. The server is stopped; phone 1 still opens the door (offline is the point).

By default the server's scripts travel over the air (`ota.OtaDelivery`: RAM
commands in SCP80 secured packets, SMS-PP through the SMS centre stand-in,
the phones' and the lock's modems polling it, proofs of receipt back by SMS)
and the lock's chip sends its request itself by SEND SHORT MESSAGE;
`DoorLockScenario("gp")` uses an SCP03 session to each SIM's ISD and the
controller's HTTPS instead. Every exchange with the SMS centre (its HTTP
submits and inbox polls, by the server and by each modem) is recorded in the
step it belongs to, so the report shows the over-the-air leg.

The server and the SMS centre run in this process, their stores on file. A
kill fault (`kill:ams@209[.K]`, `kill:smsc@N[.K]`) stops one and starts a new
incarnation on the same store and port (see `_Strikes`): the server loses
what it held in memory, the SMS centre keeps what it queued. When the server
dies under a download, the controller, left without an answer, presents the
phone again; the steps from S201 are recorded once more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from host.readers.base import Reader
from host.systems.faults import FaultPoint
from host.systems.scenario import (
    HttpRecorder,
    LocalLink,
    Party,
    RunContext,
    Scenario,
    StepSpec,
    TracingReader,
    Verdict,
)

__all__ = ["DoorLockScenario", "LOCK_SIM", "PHONES"]

LOCK, LOCK_SIM, AMS, SMSC = "lock-controller", "lock-sim", "ams", "smsc"
PHONES = ("phone-1", "phone-2", "phone-3")
LOCK_MAC = bytes.fromhex("02CA4DE0D001")
NIGHT = datetime(2026, 12, 7, 2, 0)
AFTERNOON = datetime(2026, 12, 7, 14, 0)


def sim_identity(n: int) -> Any:
    from card.uicc.ts_102_221 import luhn_digit
    from host.systems.doorlock.card import SimIdentity

    body = f"89882100000000{n:04d}"
    return SimIdentity(body + luhn_digit(body), f"00101000000{n:04d}", f"+00101{n:05d}")


#: The SIMs of the run: the lock's, then the phones'.
SIMS = {LOCK_SIM: 100, "phone-1-sim": 201, "phone-2-sim": 202, "phone-3-sim": 203}
IMEIS = {"phone-1": "356938035643809", "phone-2": "356938035643817", "phone-3": "356938035643825"}


def _presentation(
    phone: str, detail: str, *, refused: bool = False, first: int = 101
) -> tuple[StepSpec, ...]:
    sim = f"{phone}-sim"
    last = (
        StepSpec(110, "lock", "error", LOCK, phone,
                 "S110: authentication error; the door stays shut")
        if refused
        else StepSpec(109, "lock", "unlock", LOCK, phone,
                      "S109: the door unlocks; the phone's chip checks the lock's answer")
    )  # fmt: skip
    return (
        StepSpec(first, "link", "detect", LOCK, phone,
                 f"S{first}: {phone} held to the door ({detail})"),
        StepSpec(first + 1, "lock-sim", "request", LOCK, phone,
                 f"S{first + 1}: the lock's chip makes a challenge; it goes to the phone"),
        StepSpec(104, "phone-sim", "answer", phone, sim,
                 "S103-S104: the phone's chip draws its challenge and answers"),
        StepSpec(105, "link", "answer", phone, LOCK, "S105: the answer to the lock"),
        StepSpec(107, "lock-sim", "collate", LOCK, LOCK_SIM,
                 "S106-S108: the lock's chip makes its own and collates; unlock or error"),
        last,
    )  # fmt: skip


def _steps() -> tuple[StepSpec, ...]:
    absent = (
        StepSpec(201, "link", "detect", LOCK, "phone-2", "S201: phone-2 held to the door"),
        StepSpec(202, "lock-sim", "request", LOCK, "phone-2",
                 "S202-S203: a challenge to the phone"),
        StepSpec(204, "phone-sim", "absent", "phone-2", "phone-2-sim",
                 "S204: no door-lock applet on the phone's SIM (SELECT 6A82)"),
        StepSpec(205, "link", "absent", "phone-2", LOCK,
                 "S205: 'no applet', with the phone's identifiers"),
        StepSpec(206, "lock-sim", "download_request", LOCK, LOCK_SIM,
                 "S206: 'no applet' handed to the lock's chip, which signs a download "
                 "request naming lock and phone"),
        StepSpec(207, "ams", "request", LOCK_SIM, AMS,
                 "S207: the lock's SIM sends the request to the server (SEND SHORT MESSAGE, "
                 "through the SMS centre)"),
        StepSpec(208, "ams", "identify", AMS, AMS,
                 "S208: the server checks the request came from a registered lock's chip "
                 "and finds the phone it names"),
        StepSpec(209, "ams", "download", AMS, "phone-2-sim",
                 "S209: the applet to the phone's SIM: RAM over SMS-PP (TS 102 226), "
                 "proofs of receipt back"),
        StepSpec(202, "lock-sim", "request", LOCK, "phone-2", "S104 on (FIG. 5): a new challenge"),
        *_presentation("phone-2", "with its new applet")[2:],
    )  # fmt: skip
    return (
        StepSpec(1, "ams", "provision_lock", AMS, LOCK_SIM,
                 "§6.1: the applet pushed to the lock's own SIM outside service hours"),
        StepSpec(2, "ams", "enrol_phone", AMS, "phone-1-sim",
                 "§6.2: the applet pushed to phone-1's SIM at the server's trigger"),
        *_presentation("phone-1", "method 01, shared key"),
        *_presentation("phone-1", "method 02, certificates"),
        *_presentation("phone-3", "another door's key", refused=True),
        *absent,
        StepSpec(300, "ams", "stopped", AMS, AMS, "the server is stopped: no network service"),
        *_presentation("phone-1", "offline, method 01"),
    )  # fmt: skip


class DoorLockScenario(Scenario):
    """Offline door-lock authentication between two SIMs, and the missing applet (seed 001)."""

    name = "doorlock"
    title = "A door that opens offline between two SIMs (seed 001)"
    parties = (
        Party(LOCK_SIM, "card", "the door-lock controller's SIM: UICC, ISD, the applet (lock)"),
        Party(LOCK, "terminal", "the door-lock controller: short-range link, door actuator"),
        Party("phone-1-sim", "card", "phone-1's SIM, enrolled by the server"),
        Party("phone-1", "terminal", "phone-1: the user's phone"),
        Party("phone-2-sim", "card", "phone-2's SIM, without the applet at first"),
        Party("phone-2", "terminal", "phone-2: a new user's phone"),
        Party("phone-3-sim", "card", "phone-3's SIM, holding another door's key"),
        Party("phone-3", "terminal", "phone-3: a phone for another door"),
        Party(AMS, "server", "the application management server (SQLite)"),
        Party(SMSC, "server", "the SMS centre stand-in (short messages per MSISDN)"),
    )
    steps = _steps()
    fault_points = (
        FaultPoint(
            "drop:link@105",
            "interrupted",
            "the phone's answer lost on the link: no decision, the door stays shut",
        ),
        FaultPoint(
            "kill:ams@209",
            "completed",
            "the server dies right after sending the first packet: the lock's request, "
            "retried after the restart, installs exactly once (counters kept, the stale "
            "proof of receipt dropped)",
        ),
        FaultPoint(
            "kill:ams@209.4",
            "completed",
            "the server dies after submitting the install, before the phone fetched it: "
            "the retry installs exactly once, the phone never holds half an applet",
        ),
        FaultPoint(
            "kill:smsc@209.2",
            "completed",
            "the SMS centre dies and restarts with a packet queued: the message survives "
            "in its store, the download completes",
        ),
        FaultPoint(
            "kill:smsc@207",
            "completed",
            "the SMS centre dies as the lock's SIM sends its request: the modem's submit "
            "goes to the restarted one, the download completes",
        ),
        FaultPoint(
            "tear:phone-2-sim@209=*",
            "interrupted",
            "phone-2's SIM loses power during the install: without the applet or with a "
            "working one, never half",
        ),
        FaultPoint(
            "drop:link@205",
            "interrupted",
            "the phone's 'no applet' is lost on the link: nothing requested, nothing installed",
        ),
    )

    def __init__(self, delivery: str = "ota") -> None:
        if delivery not in ("ota", "gp"):
            raise ValueError("delivery: ota or gp")
        #: "ota": SMS-PP secured packets through the SMS centre, the lock's request by
        #: SMS; "gp": an SCP03 session to each SIM's ISD, the request over HTTPS.
        self.delivery = delivery

    def run(self, ctx: RunContext) -> None:
        from card.crypto.rng import CardRng
        from host.ota import ToolkitTerminal
        from host.presets import ota_test_keysets
        from host.readers.inprocess import InProcessReader
        from host.servers.smsc import SmscClient
        from host.servers.web import RoleServer, Store
        from host.systems.doorlock.ams import SCHEMA as AMS_SCHEMA
        from host.systems.doorlock.ams import AppManagementServer, Refused, create_app
        from host.systems.doorlock.card import make_sim
        from host.systems.doorlock.delivery import AppletDelivery, DirectGpDelivery
        from host.systems.doorlock.ota import (
            AMS_ADDRESS,
            OtaDelivery,
            SmsGateway,
            StoredCounters,
        )
        from host.systems.doorlock.terminal import (
            HttpUplink,
            InProcessLink,
            LockController,
            PhoneHost,
            SmsUplink,
        )
        from host.systems.repository.demo import demo_tls
        from host.systems.repository.terminal import JsonClient

        rec = ctx.recorder
        ota = self.delivery == "ota"
        seed = ctx.seed if ctx.seed is not None else None
        sims = {
            name: make_sim(sim_identity(n), rng_seed=None if seed is None else seed + n)
            for name, n in SIMS.items()
        }
        ctx.state.update(sims=sims, presentations={}, opened=0, delivery=self.delivery)
        now = {"t": AFTERNOON}
        owner = {LOCK_SIM: LOCK, **{f"{p}-sim": p for p in PHONES}}

        on_step = rec.step_done
        served: dict[str, Reader] = {}

        def traced(name: str, terminal: str) -> TracingReader:
            rt = sims[name]
            inner = served.get(name) or InProcessReader(rt)
            return TracingReader(inner, rec, terminal=terminal, card=name, runtime=rt)

        with contextlib.ExitStack() as stack:
            if ctx.pcsc:
                from host.systems.pcsc import served_card

                # The lock's SIM in a real reader (pcscd + vpcd); the phones stay in-process.
                served[LOCK_SIM] = stack.enter_context(served_card(sims[LOCK_SIM]))
            terminals: dict[str, Any] = {}
            strikes = _Strikes(ctx)
            smsc: _SmscRole | None = None
            if ota:
                smsc = _SmscRole(str(Path(ctx.workdir, "smsc.sqlite")))
                stack.callback(smsc.kill)
                strikes.roles[SMSC] = smsc
                for name, host in owner.items():
                    client = SmscClient(smsc.url, hook=strikes.hook(host))
                    stack.callback(client.close)
                    modem = ToolkitTerminal(
                        traced(name, host), msisdn=sim_identity(SIMS[name]).msisdn, smsc=client
                    )
                    modem.start()  # TERMINAL PROFILE, as a modem does at power-on
                    terminals[host] = modem
            db = Path(ctx.workdir, "ams.sqlite")
            ctx.state["ams_db"] = db
            tls = demo_tls()
            world: dict[str, Any] = {}

            def start_ams(port: int = 0) -> None:
                """One incarnation of the server: its store on file, the rest in memory."""
                store = Store(str(db), AMS_SCHEMA)
                delivery: AppletDelivery
                if ota:
                    assert smsc is not None
                    client = SmscClient(smsc.url, hook=strikes.hook(AMS))
                    gateway = SmsGateway(client, AMS_ADDRESS)
                    world["gateway"] = gateway
                    delivery = OtaDelivery(
                        gateway,
                        msisdn_of=lambda d: _msisdn_of(world["ams"], d),
                        keyset_of=lambda d: ota_test_keysets()[0],
                        page=lambda d: terminals[d].poll_smsc() and None,
                        counters=StoredCounters(store),
                    )
                else:

                    def route(name: str) -> Callable[[], Reader]:
                        # The server's session to a SIM, recorded as the server's APDUs.
                        return lambda: traced(name, AMS)

                    delivery = DirectGpDelivery({host: route(name) for name, host in owner.items()})
                world["ams"] = AppManagementServer(
                    store,
                    delivery,
                    rng=CardRng(seed) if seed is not None else None,
                    clock=lambda: now["t"],
                    sms_address=AMS_ADDRESS if ota else None,
                    on_step=on_step,
                )
                world["server"] = RoleServer(
                    create_app(world["ams"]), port=port, tls=tls.server, name=AMS
                ).start()

            def stop_ams() -> None:
                if "server" in world:
                    world["server"].stop()
                    world["ams"].close()

            start_ams()
            stack.callback(stop_ams)
            strikes.roles[AMS] = _AmsRole(start_ams, stop_ams, lambda: world["server"].port)
            ams = world["ams"]
            ctx.state["ams_url"] = world["server"].url
            ams.register_lock(LOCK, mac=LOCK_MAC, sim=sim_identity(SIMS[LOCK_SIM]), combination="B")
            ams.register_lock(
                "lock-next-door", mac=bytes.fromhex("02CA4DE0D002"), sim=sim_identity(101)
            )
            for phone in PHONES:
                ams.register_phone(phone, imei=IMEIS[phone], sim=sim_identity(SIMS[f"{phone}-sim"]))
            path = ams.delivery.path

            # §6.1 and §6.2 (server-triggered): the lock's SIM at night, phone-1's.
            try:
                ams.provision_lock(LOCK)
                refused_by_day = "not refused"
            except Refused as e:
                refused_by_day = f"refused at 14:00 ({e.status})"
            now["t"] = NIGHT
            result = ams.provision_lock(LOCK)
            outcome = result.to_json()["outcome"]
            rec.step_done(
                "ams", "provision_lock", f"{refused_by_day}; at 02:00 by {path}: {outcome}"
            )
            result = ams.enrol_phone("phone-1", LOCK)
            rec.step_done("ams", "enrol_phone", f"phone-1: {result.to_json()['outcome']}")
            ams.enrol_phone("phone-3", "lock-next-door")  # another door's key (not a step here)

            if ota:
                lock_reader: Reader = terminals[LOCK].as_reader()
                uplink: Any = SmsUplink(
                    lambda: world["ams"].poll_sms(world["gateway"]), modem=terminals[LOCK]
                )
            else:
                lock_reader = traced(LOCK_SIM, LOCK)
                hook = HttpRecorder(rec, LOCK, lambda url: AMS)
                url = world["server"].url
                uplink = HttpUplink(JsonClient(url, hook=hook, ca_pem=tls.ca_pem))
            controller = LockController(lock_reader, ams=uplink, on_step=on_step)
            links = {}
            for phone in PHONES:
                reader = terminals[phone].reader if ota else traced(f"{phone}-sim", phone)
                handset = PhoneHost(reader, imei=IMEIS[phone], on_step=on_step)
                links[phone] = InProcessLink(
                    handset, LocalLink(rec, LOCK, phone), controller=LOCK, phone_name=phone
                )
            ctx.state["controller"] = controller
            record = ctx.state["presentations"]
            record["method 01"] = controller.present(links["phone-1"], 1)
            record["method 02"] = controller.present(links["phone-1"], 2)
            record["wrong key"] = controller.present(links["phone-3"], 1)
            ctx.state["tries_after_wrong"] = controller.card.status()["tries_left"]
            mark = rec.mark()
            try:
                record["no applet"] = controller.present(links["phone-2"], 1)
            except ServerCrashed as e:
                # No answer from the server: the controller presents the phone again
                # once it is back (the phone is still at the door).
                rec.step_failed(str(e))
                ctx.state["retried"] = str(e)
                rec.again(mark)
                record["no applet"] = controller.present(links["phone-2"], 1)
            url = world["server"].url
            stop_ams()
            world.clear()
            ctx.state["offline_refused"] = _unreachable(url)
            rec.step_done("ams", "stopped", f"server stopped; {ctx.state['offline_refused']}")
            record["offline"] = controller.present(links["phone-1"], 1)
            ctx.state["opened"] = controller.opened
            ctx.state["completed"] = True

    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        done = error is None and bool(ctx.state.get("completed"))
        out = "completed" if done else "interrupted"
        p: dict[str, Any] = ctx.state.get("presentations", {})
        claims: list[Verdict] = []

        def seen(name: str, ok: bool, detail: str) -> None:
            claims.append(Verdict(name, ok, detail))

        def unlocked(key: str) -> tuple[bool, str]:
            r = p.get(key)
            if r is None:
                return False, "not run"
            return r.unlocked and r.lock_authentic, (
                f"unlocked {r.unlocked}, lock authenticated by the phone {r.lock_authentic}"
            )

        if done:
            seen("method 01 (shared key): phone-1 opens the door", *unlocked("method 01"))
            seen("method 02 (certificates): phone-1 opens the door", *unlocked("method 02"))
            wrong = p["wrong key"]
            seen(
                "another door's key is refused, a try spent",
                not wrong.unlocked and ctx.state.get("tries_after_wrong") == 4,
                f"{wrong.decision.reason if wrong.decision else wrong.error}; "
                f"tries left {ctx.state.get('tries_after_wrong')}",
            )
            got = p["no applet"]
            seen(
                "phone-2 gets the applet at the lock's request, then opens the door",
                got.download is not None
                and got.download["outcome"] == "installed"
                and got.unlocked,
                f"download {got.download and got.download['outcome']}, unlocked {got.unlocked}",
            )
            seen("offline: the server stopped, phone-1 opens the door", *unlocked("offline"))
            seen(
                "the door opened exactly four times",
                ctx.state.get("opened") == 4,
                f"{ctx.state.get('opened')} openings",
            )
        claims += _log_claims(ctx)
        claims += _phone2_claims(ctx)
        return out, claims


def _msisdn_of(ams: Any, device: str) -> str | None:
    row = ams.device(device)
    return None if row is None else str(row["msisdn"])


def _unreachable(url: str) -> str:
    from host.systems.repository.demo import demo_tls
    from host.systems.repository.terminal import JsonClient

    try:
        JsonClient(url, timeout=2, ca_pem=demo_tls().ca_pem).request("GET", "/downloads")
    except OSError as e:
        return f"unreachable ({type(e).__name__})"
    return "still answering"


def _log_claims(ctx: RunContext) -> list[Verdict]:
    """Every install the server made is in its log, with the card's answers."""
    import sqlite3

    db = ctx.state.get("ams_db")
    if db is None or not Path(db).exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = list(conn.execute("SELECT trigger, device_id, outcome, statuses FROM downloads"))
    finally:
        conn.close()
    installed = [r for r in rows if r[2] == "installed"]
    by_lock = [r for r in rows if r[0] == "lock-request"]
    # A first DELETE may find nothing (6A88); every other command answers 9000.
    ok = all(r[3] and set(r[3].split()[1:]) == {"9000"} for r in installed)
    return [
        Verdict(
            "every download is logged with the card's answers",
            ok and len(rows) >= 1,
            "; ".join(f"{t} {d} {o}" for t, d, o, _ in rows),
        ),
        Verdict(
            "at most one download per request (a replayed request installs nothing)",
            len(by_lock) <= 1,
            f"{len(by_lock)} download(s) at a lock's request",
        ),
    ] + _once_claims(ctx, [r for r in by_lock if r[2] == "installed"])


def _once_claims(ctx: RunContext, installed: list[Any]) -> list[Verdict]:
    """After a server crash during the download: the lock's retry installed exactly once."""
    retried = ctx.state.get("retried")
    if not retried or not ctx.state.get("completed"):
        return []
    return [
        Verdict(
            "the lock's request, retried after the server's restart, installs exactly once",
            len(installed) == 1,
            f"{len(installed)} install(s) logged; first attempt: {retried}",
        )
    ]


def _phone2_claims(ctx: RunContext) -> list[Verdict]:
    """After the run, whatever happened: phone-2's SIM has no applet, or a working one."""
    from host.errors import ApduError
    from host.readers.inprocess import InProcessReader
    from host.systems.doorlock.card import DoorLockCard

    sims = ctx.state.get("sims")
    if not sims:
        return []
    rt = sims["phone-2-sim"]
    rt.power_off()
    rt.power_on()
    card = DoorLockCard(InProcessReader(rt))
    try:
        card.select()
    except ApduError as e:
        return [Verdict("phone-2's SIM: no applet, or a working one", e.sw == 0x6A82,
                        f"SELECT {e.sw:04X}")]  # fmt: skip
    try:
        status = card.status()
        works = status["role"] == "key" and status["methods"] == 3
        detail = f"applet present, {status['role']} role, methods {status['methods']:02X}"
    except ApduError as e:
        works, detail = False, f"applet present but GET DATA {e.sw:04X}"
    return [Verdict("phone-2's SIM: no applet, or a working one", works, detail)]


class ServerCrashed(Exception):
    """The application management server died while it handled a request (a kill fault)."""


class _SmscRole:
    """The SMS centre in this process: its store on file, so a kill keeps what it queued.

    `kill` stops it (the port and store released); `restart` serves the same store
    on the same port again, a new incarnation (`pid` counts them).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = 0
        self.port = 0
        self._server: Any = None
        self._store: Any = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from host.servers.smsc import SCHEMA, Smsc, create_app
        from host.servers.web import RoleServer, Store

        self._store = Store(self.path, SCHEMA)
        self._server = RoleServer(create_app(Smsc(self._store)), port=self.port, name=SMSC)
        self._server.start()
        self.port = self._server.port
        self.pid += 1

    def kill(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._store.close()
            self._server = None

    def restart(self) -> None:
        self.kill()
        self.start()


@dataclass
class _AmsRole:
    """The server in this process: `restart` drops its memory and opens its store again."""

    start: Callable[[int], None]
    stop: Callable[[], None]
    port: Callable[[], int]
    pid: int = 1

    def restart(self) -> None:
        port = self.port()
        self.stop()
        self.start(port)
        self.pid += 1


class _Strikes:
    """The hooks of the SMS centre's clients: each exchange recorded; kill faults struck.

    `kill:smsc@N[.K]`: before the K-th exchange with the SMS centre in step N
    (whoever makes it), the centre is killed and restarted on its store.
    `kill:ams@N[.K]`: after the server's own K-th exchange in step N, the server
    dies (`ServerCrashed` unwinds what it was doing) and a new incarnation starts
    on its store. The in-process roles keep the fault walk fast.
    """

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.roles: dict[str, Any] = {}
        self.seen: dict[tuple[int | None, str], int] = {}

    def hook(self, source: str) -> Callable[[Any, Callable[[], Any]], Any]:
        recorder = HttpRecorder(self.ctx.recorder, source, lambda url: SMSC, kills=False)

        def exchange(request: Any, send: Callable[[], Any]) -> Any:
            step = self.ctx.recorder.current_number
            for key in ((step, source), (step, "*")):
                self.seen[key] = self.seen.get(key, 0) + 1
            before = self._kill(SMSC, step, self.seen[(step, "*")])
            answer = recorder(request, send)
            if before:
                self._note(before)
            if source == AMS and (after := self._kill(AMS, step, self.seen[(step, AMS)])):
                self._note(after)
                raise ServerCrashed(after)
            return answer

        return exchange

    def _kill(self, target: str, step: int | None, counted: int) -> str:
        """Kill and restart `target` if the fault says so here; a note, else ""."""
        inj = self.ctx.injector
        if inj is None or inj.fired or inj.spec.action != "kill":
            return ""
        if (inj.spec.target, inj.spec.step, inj.spec.nth) != (target, step, counted):
            return ""
        inj.fired = True
        role = self.roles[target]
        old = role.pid
        role.restart()
        when = "before" if target == SMSC else "after"
        return f"{target} killed (incarnation {old}) {when} this, restarted ({role.pid})"

    def _note(self, note: str) -> None:
        pending = self.ctx.recorder.pending
        if pending:
            pending[-1].fault = note
