"""Seed 003 as a scenario: a profile moved between two phones' eSEs, once with each trigger.

Move 1 (FIG. 5, steps 505-575): the user asks the MNO, which authenticates
the user and forwards the request to the profile provider; the provider has
eSE 1 back the profile up through its manager, rebuilds it for eSE 2 (new eSE
ID, new K, binding re-signed), installs it through eSE 2's manager, has the
AuC switch K and eSE 1's copy deleted. Then FIG. 4 on phone 2 (402-406: the
phone's LPA sends ES10c EnableProfile to the ISD-R; the eSE checks its ID and
the provider's signature, enables the profile) and an attach with AKA: phone 2
attaches, phone 1 cannot (208).

Move 2 (FIG. 6, steps 605-675): phone 2 itself asks its manager to move the
profile back to eSE 1; the same checks follow.

Every party runs in this process: the six server roles on loopback (SQLite
files in the run's directory), the two phones with emulated eSEs, in-process
or, with `--pcsc`, each served in its own vpcd slot through pcscd (so
`--processes` does not apply; each role also runs alone as
`cardemu server move-*`). A kill fault
stops a role and starts a new incarnation on the same port and store (no new
process: the walk stays fast); a kill of the provider while it acts (`kill:
provider@N`) happens right after its first request of step N was answered,
before it could log the answer, the worst place. The pumps (each role's
worker, one round after another) run until the move is finished.

A run under a fault of move 1 ends after move 1's checks (move 2 would be a
clean run); move 2's enable (402 back, on eSE 1) shares its step number with
move 1's, so a tear of eSE 1 at 402 is move 2's. Claims checked after every
run, fault or not, once every party is back and every move finished: exactly
one of the two eSEs' profiles authenticates against the AuC (never both, never
neither), and that one still has the user's phone book entry and the
application added to the profile.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from host.systems.faults import FaultPoint, FaultSpec
from host.systems.scenario import (
    HttpRecorder,
    LocalLink,
    Party,
    RunContext,
    Scenario,
    StepSpec,
    TracingReader,
    Verdict,
    card_reader,
    step_table,
)

__all__ = ["ProfileMoveScenario", "ProfileMoveRefusedScenario", "DEMO_CONTACT"]

USER, MNO, PROVIDER, RESOLVER, AUC = "user", "mno", "provider", "resolver", "auc"
M1, M2, T1, T2, E1, E2 = "manager-1", "manager-2", "terminal-1", "terminal-2", "ese-1", "ese-2"
DEMO_USER, DEMO_PASSWORD = "alice", "correct horse battery staple"
DEMO_CONTACT = ("Mum", "+33612345678")
DEMO_OP = bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318")  # TS 35.207 test set 1's OP
DEMO_PROFILE_ID = "PROFILE-0001"
PUMP_ROUNDS = 40
FIG6_FIRST = 600


_FIG5 = step_table(
    (505, "fig5", "move_request", USER, MNO,
     "505: the user asks the MNO to move the profile (source and target eSE, the profile)"),
    (510, "fig5", "user_authentication", USER, MNO,
     "510: the MNO authenticates the user (challenge, HMAC under the password key)"),
    (515, "fig5", "forward", MNO, PROVIDER, "515: the MNO forwards the request to the provider"),
    (520, "fig5", "resolve_source", PROVIDER, RESOLVER,
     "520: the provider finds the source eSE's profile manager"),
    (525, "fig5", "backup_request", PROVIDER, M1,
     "525: backup request (profile ID, eSE ID, the provider's certificate) to the manager"),
    (530, "fig5", "push", M1, T1, "530: the manager pushes the backup request to the terminal"),
    (535, "fig5", "BACKUP", T1, E1,
     "535: the eSE checks the certificate and its MNO, seals the profile for the provider"),
    (540, "fig5", "backup_sent", T1, M1, "540: the sealed profile to the manager"),
    (545, "fig5", "backup_delivered", M1, PROVIDER, "545: the manager hands it to the provider"),
    (550, "fig5", "rebuild", PROVIDER, PROVIDER,
     "550: the second profile: new eSE ID, new K, the binding signed again"),
    (555, "fig5", "resolve_target", PROVIDER, RESOLVER,
     "555: the target eSE's manager and certificate"),
    (560, "fig5", "install", PROVIDER, M2,
     "560 (205): installed through the target's manager on the target eSE"),
    (565, "fig5", "k_update", PROVIDER, AUC, "565 (206): the AuC asked to switch to the new K"),
    (570, "fig5", "k_result", AUC, PROVIDER, "570: the AuC's answer"),
    (575, "fig5", "delete_source", PROVIDER, M1,
     "575 (208): the source eSE deletes its profile on the provider's signed order"),
)  # fmt: skip

_ROLLBACK = step_table(
    (207, "fig2", "rollback", PROVIDER, M2,
     "207: the AuC failed: the target's copy deleted, the AuC's old K restored"),
    (406, "network", "attach_kept", T1, AUC,
     "after the rollback the first phone attaches as before; the second cannot"),
)  # fmt: skip


#: the checks on the target's phone after each move (FIG. 4 enable, attach): the same
#: step numbers in both moves, on eSE 2 after move 1, on eSE 1 after move 2
_TARGET_CHECKS = (402, 406)


def _checks(suffix: str, new: str, old: str, new_ese: str) -> tuple[StepSpec, ...]:
    return step_table(
        (402, "fig4", f"EnableProfile{suffix}", new, new_ese,
         "402-406: the phone's LPA asks the ISD-R to enable the profile (ES10c); the eSE "
         "checks its eSE ID (403) and the provider's signature (405), then uses it (406)"),
        (406, "network", f"attach{suffix}", new, AUC, "406: the new phone attaches (AKA)"),
        (208, "network", f"stale{suffix}", old, AUC,
         "208: the old phone cannot attach: its K is not the AuC's any more"),
    )  # fmt: skip


_FIG6 = step_table(
    (605, "fig6", "resolve_own_manager", T2, RESOLVER,
     "605: the terminal finds its eSE's profile manager"),
    (610, "fig6", "move_request", T2, M2, "610: the terminal asks its manager for the move"),
    (615, "fig6", "resolve_provider", M2, RESOLVER, "615: the manager finds the MNO's provider"),
    (620, "fig6", "forward", M2, PROVIDER, "620: the manager forwards the request"),
    (621, "fig6", "resolve_source", PROVIDER, RESOLVER, "620 (as 520): the source's manager"),
    (625, "fig6", "backup_request", PROVIDER, M2, "625 (as 525): backup request"),
    (630, "fig6", "push", M2, T2, "630 (as 530): pushed to the terminal"),
    (635, "fig6", "BACKUP", T2, E2, "635 (as 535): the eSE seals the profile"),
    (640, "fig6", "backup_sent", T2, M2, "640 (as 540): to the manager"),
    (645, "fig6", "backup_delivered", M2, PROVIDER, "645 (as 545): to the provider"),
    (650, "fig6", "rebuild", PROVIDER, PROVIDER, "650 (as 550): rebuilt for eSE 1"),
    (655, "fig6", "resolve_target", PROVIDER, RESOLVER, "655 (as 555): eSE 1's manager"),
    (660, "fig6", "install", PROVIDER, M1, "660 (as 560): installed on eSE 1"),
    (665, "fig6", "k_update", PROVIDER, AUC, "665 (as 565): K switched again"),
    (670, "fig6", "k_result", AUC, PROVIDER, "670 (as 570): the AuC's answer"),
    (675, "fig6", "delete_source", PROVIDER, M2, "675 (as 575): eSE 2's copy deleted"),
)  # fmt: skip

#: FIG. 6 runs as FIG. 5 from 520 on: the provider's and the terminal's step numbers there.
_FIG6_OF = {
    520: 621,
    525: 625,
    530: 630,
    535: 635,
    540: 640,
    545: 645,
    550: 650,
    555: 655,
    560: 660,
    565: 665,
    570: 670,
    575: 675,
}


def _fig5_points() -> tuple[FaultPoint, ...]:
    """Every fault point of move 1 (see the module docstring of host.systems.faults)."""
    http = {505: 1, 510: 1, 515: 1, 520: 1, 525: 1, 540: 1, 545: 1, 555: 1, 560: 3, 565: 1, 575: 3}
    points: list[FaultPoint] = []
    for step, count in http.items():
        for nth in range(1, count + 1):
            k = f".{nth}" if nth > 1 else ""
            points.append(
                FaultPoint(
                    f"drop:http@{step}{k}",
                    "completed",
                    f"HTTP message {nth} of step {step} lost: sent again",
                )
            )
            points.append(
                FaultPoint(
                    f"dup:http@{step}{k}",
                    "completed",
                    f"HTTP message {nth} of step {step} twice: acted on once",
                )
            )
    for spec in ("drop:link@530", "dup:link@530", "drop:link@560", "drop:link@575"):
        points.append(FaultPoint(spec, "completed", "the push to the terminal lost or doubled"))
    for step in (535, 560, 575):
        points.append(
            FaultPoint(
                f"drop:apdu@{step}.3", "completed", "the eSE's command lost: the order comes again"
            )
        )
        points.append(
            FaultPoint(
                f"dup:apdu@{step}.3", "completed", "the eSE's command twice: idempotent on the card"
            )
        )
    kills = (
        ("mno", 510), ("provider", 515), ("resolver", 520), ("provider", 520),
        ("manager-1", 525), ("provider", 525), ("manager-1", 540), ("provider", 545),
        ("provider", 555), ("manager-2", 560), ("provider", 560), ("auc", 565),
        ("provider", 565), ("manager-1", 575), ("provider", 575),
    )  # fmt: skip
    for party, step in kills:
        points.append(
            FaultPoint(
                f"kill:{party}@{step}",
                "completed",
                f"{party} killed and restarted at step {step}: resumed",
            )
        )
    for card, step in ((E1, 535), (E2, 560), (E1, 575)):
        points.append(
            FaultPoint(
                f"tear:{card}@{step}=*",
                "completed",
                f"{card} torn at step {step}: its transaction undone, redone",
            )
        )
    # The LPA's enable writes the profile's state and its notification in one transaction:
    # torn on the target of move 1 (eSE 2) and of move 2 (eSE 1, the same step number).
    for card, move in ((E2, "move 1"), (E1, "move 2")):
        points.append(
            FaultPoint(
                f"tear:{card}@402=*",
                "completed",
                f"{card} torn in {move}'s EnableProfile: undone; powered up, enabled again",
            )
        )
    return tuple(points)


def _fault_of_move_1(fault: FaultSpec) -> bool:
    """Whether `fault` strikes in move 1 (then move 2 is not run: it would be a clean run).

    Steps below `FIG6_FIRST` are move 1's, but for the target's checks, which both moves
    run: a tear there on eSE 1 (move 2's target) is move 2's.
    """
    if fault.step >= FIG6_FIRST:
        return False
    return not (fault.action == "tear" and fault.target == E1 and fault.step in _TARGET_CHECKS)


class ProfileMoveScenario(Scenario):
    """Seed 003: a profile moved with each trigger (see the module docstring)."""

    name = "profile-move"
    title = "Profile move between embedded secure elements, all or nothing (seed 003)"
    parties = (
        Party(USER, "terminal", "the subscriber (a browser at the MNO's site)"),
        Party(MNO, "server", "the MNO's front end: user authentication (SQLite)"),
        Party(PROVIDER, "server", "the profile provider: the move's durable log (SQLite)"),
        Party(RESOLVER, "server", "the address resolution server (SQLite)"),
        Party(M1, "server", "eSE 1's profile manager (SQLite order box)"),
        Party(M2, "server", "eSE 2's profile manager (SQLite order box)"),
        Party(AUC, "server", "the MNO's AuC: K per IMSI, Milenage vectors (SQLite)"),
        Party(T1, "terminal", "the first phone"),
        Party(E1, "card", "the first phone's eSE: profile store and move agent"),
        Party(T2, "terminal", "the second phone"),
        Party(E2, "card", "the second phone's eSE"),
    )
    steps = (*_FIG5, *_checks("", T2, T1, E2), *_FIG6, *_checks(" back", T1, T2, E1))
    fault_points: ClassVar[tuple[FaultPoint, ...]] = _fig5_points()
    #: the AuC refuses the K update (the seed's failure branch, 207)
    auc_refuses: ClassVar[bool] = False

    # -- the run -----------------------------------------------------------------------

    def run(self, ctx: RunContext) -> None:
        with contextlib.ExitStack() as stack:
            world = _World(ctx, self, stack)
            ctx.state["world"] = world
            self.recover_on(ctx, stack)
            world.move_by_mno()
            if self.auc_refuses:
                world.check_rolled_back()
                ctx.state["checked"] = True
                return
            self.before_activation(world, 0)
            world.check_after(0, world.phones[1], world.phones[0], "")
            if ctx.fault is not None and _fault_of_move_1(ctx.fault):
                # The fault was move 1's: move 2 would be a clean run (the walk stays short).
                ctx.state["finished"] = True
                return
            world.move_by_terminal()
            self.before_activation(world, 1)
            world.check_after(1, world.phones[0], world.phones[1], " back")
            ctx.state["finished"] = True

    def before_activation(self, world: _World, move: int) -> None:
        """What befalls the target eSE between move `move` (0, 1) and its FIG. 4 activation.

        Nothing here; a test's subclass edits the installed profile's binding there
        (an attacker with the eSE's memory) to show the LPA's EnableProfile refuse it.
        """

    def recover(self, ctx: RunContext) -> list[Verdict]:
        claims: list[Verdict] = ctx.state["world"].recover()
        return claims

    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        claims = self.recovered(ctx)
        world = ctx.state.get("world")
        states = world.end_states if world is not None else []
        if error is None and ctx.state.get("finished"):
            outcome = "completed"
        elif error is None and states[:1] == ["rolled_back"] and ctx.state.get("checked"):
            outcome = "rolled-back"
        else:
            outcome = "interrupted"
        return outcome, claims


class ProfileMoveRefusedScenario(ProfileMoveScenario):
    """Seed 003's failure branch: the AuC refuses the new K; the move is undone (207)."""

    name = "profile-move-refused"
    title = "Profile move, the AuC refusing the new K: rolled back (seed 003, 207)"
    auc_refuses = True
    expected_outcome = "rolled-back"
    steps = (*_FIG5[:-1], *_ROLLBACK)
    fault_points = (
        FaultPoint("tear:ese-2@207=*", "rolled-back",
                   "eSE 2 torn while deleting its copy: the deletion redone"),
        FaultPoint("kill:provider@207", "rolled-back",
                   "the provider killed during the rollback: resumed"),
        FaultPoint("kill:manager-2@207", "rolled-back", "eSE 2's manager killed: resumed"),
        FaultPoint("kill:auc@207", "rolled-back", "the AuC killed before the restore: resumed"),
        FaultPoint("drop:http@207", "rolled-back", "the rollback's order lost: sent again"),
        FaultPoint("dup:http@207", "rolled-back", "the rollback's order twice: acted on once"),
        FaultPoint("drop:http@207.4", "rolled-back", "the AuC restore lost: sent again"),
        FaultPoint("kill:provider@565", "rolled-back",
                   "the provider killed after the refusal came: refused again on resume"),
        FaultPoint("dup:http@565", "rolled-back", "the refused update twice: still refused"),
    )  # fmt: skip


class _World:
    """Every party of one run, built in this process (see the module docstring)."""

    def __init__(self, ctx: RunContext, scenario: ProfileMoveScenario, stack: Any) -> None:
        from applets.sample import PURSE_AID
        from card.uicc.builder import TEST_MSISDN, sample_profile
        from card.uicc.profile import AppSpec
        from host.systems.profile_move import auc, manager, mno, provider, resolver
        from host.systems.profile_move.card import bind, make_ese
        from host.systems.profile_move.common import LocalRole, move_ca_pem, move_tls
        from host.systems.profile_move.pki import demo_pki, ese_id_of
        from host.systems.profile_move.terminal import Phone

        self.ctx, self.rec = ctx, ctx.recorder
        self.scenario = scenario
        self.pki = pki = demo_pki(0)
        self.move_no = 0
        self.moves: list[str] = []
        self.end_states: list[str] = []
        self.purse_aid = PURSE_AID
        rec, work = ctx.recorder, Path(ctx.workdir)
        self.ese_ids = [ese_id_of(1).hex().upper(), ese_id_of(2).hex().upper()]
        base = sample_profile(apps=(AppSpec(PURSE_AID, "purse", b"1234"),))
        self.iccid, self.imsi = base.iccid, base.imsi or ""
        first = bind(
            base,
            key=pki.provider,
            certificate=pki.provider_cert,
            ese_id=ese_id_of(1),
            profile_id=DEMO_PROFILE_ID,
        )
        self.cards = [
            make_ese(1, pki, profile=first, rng_seed=ctx.seed),
            make_ese(2, pki, rng_seed=ctx.seed),
        ]
        # The eSEs in their readers: in-process, or each in a vpcd slot of its own (--pcsc).
        self.readers: list[Any] = []
        for slot, card in enumerate(self.cards):
            self.readers.append(stack.enter_context(card_reader(card, ctx.pcsc, slot=slot)))
        self.roles: dict[str, Any] = {}
        stack.callback(self._stop_roles)
        urls: dict[str, str] = {}

        def party_of(url: str) -> str:
            return next((p for p, u in urls.items() if url.startswith(u)), "?")

        def client(source: str) -> Callable[[str], Any]:
            from host.systems.repository.terminal import JsonClient

            hook = HttpRecorder(rec, source, party_of)
            return lambda url: JsonClient(url, hook=hook, ca_pem=ca_pem)

        # Every role on HTTPS, every client trusting the demo TLS CA (`common.move_tls`).
        tls, ca_pem = move_tls(), move_ca_pem()
        self.ca_pem = ca_pem

        def role(name: str, make: Callable[[], Any], app: Callable[[Any], Any]) -> Any:
            r = LocalRole(name, make, app, lambda logic: logic.close(), tls=tls)
            self.roles[name] = r
            urls[name] = r.url
            if ctx.injector is not None:
                ctx.injector.servers[name] = r
            return r

        k, opc = base.auth.k, base.auth.opc or b""
        role(
            RESOLVER, lambda: resolver.Resolver(str(work / "resolver.sqlite")), resolver.create_app
        )
        a = role(AUC, lambda: auc.Auc(str(work / "auc.sqlite"), pki.k4), auc.create_app)
        a.logic.provision(self.imsi, k, opc)
        if scenario.auc_refuses:
            a.logic.lock(self.imsi)
        prov = role(
            PROVIDER,
            lambda: provider.ProfileProvider(
                str(work / "provider.sqlite"),
                pki,
                url=urls.get(PROVIDER, ""),
                resolver_url=urls[RESOLVER],
                auc_url=urls[AUC],
                op=DEMO_OP,
                client=self._provider_client(client(PROVIDER)),
                on_step=self._step,
            ),
            provider.create_app,
        )
        prov.logic.url = urls[PROVIDER]
        prov.logic.add_subscription(self.iccid, self.imsi, TEST_MSISDN, DEMO_PROFILE_ID)
        m = role(
            MNO,
            lambda: mno.MnoFrontEnd(
                str(work / "mno.sqlite"),
                urls[PROVIDER],
                client=client(MNO),
                on_step=self._step,
            ),
            mno.create_app,
        )
        m.logic.add_user(DEMO_USER, DEMO_PASSWORD)
        m.logic.add_subscription(DEMO_USER, self.iccid, self.imsi, TEST_MSISDN)
        self.phones: list[Any] = []
        for i, (mname, tname, cname) in enumerate(((M1, T1, E1), (M2, T2, E2))):
            link = LocalLink(rec, mname, tname)
            card = self.cards[i]
            inner = self.readers[i]
            reader = TracingReader(inner, rec, terminal=tname, card=cname, runtime=card)

            def cycle(card: Any = card, inner: Any = inner) -> None:
                if ctx.pcsc:
                    inner.power_cycle()  # SCARD_UNPOWER_CARD: vpcd powers the card off and on
                    return
                card.power_off()
                card.power_on()

            role(
                mname,
                self._manager_maker(manager, work, mname, i, client, urls, link),
                manager.create_app,
            )
            self.phones.append(
                Phone(
                    tname,
                    reader,
                    power_cycle=cycle,
                    ese_id=self.ese_ids[i],
                    manager_url=urls[mname],
                    client=client(tname),
                    on_step=self._step,
                )
            )
        res = self.roles[RESOLVER].logic
        res.register_provider(provider_mno(pki), urls[PROVIDER])
        for i, mname in enumerate((M1, M2)):
            res.register_manager(self.ese_ids[i], urls[mname], pki.ese_certificate(i + 1).hex())
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(self.roles)) as pool:  # each start waits on uvicorn
            list(pool.map(lambda r: r.start(), self.roles.values()))
        # Before the move: the user's own data on phone 1 (not part of the recorded steps).
        self._setup_phone(self.readers[0])

    def _stop_roles(self) -> None:
        """Stop every role at once (each waits a moment for its server to wind down)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(self.roles) or 1) as pool:
            list(pool.map(lambda r: r.stop(), self.roles.values()))

    def _manager_maker(
        self,
        manager: Any,
        work: Path,
        name: str,
        i: int,
        client: Any,
        urls: dict[str, str],
        link: LocalLink,
    ) -> Callable[[], Any]:
        def push(order: dict[str, Any]) -> None:
            arrived = link.send(name, json.dumps(order).encode(), f"{order['kind']} order")
            if arrived is not None:
                self.phones[i].on_push(json.loads(arrived))

        return lambda: manager.ProfileManager(
            str(work / f"{name}.sqlite"), (self.ese_ids[i],), urls[RESOLVER],
            client=client(name), push=push, on_step=self._step,
        )  # fmt: skip

    def _provider_client(self, inner: Callable[[str], Any]) -> Callable[[str], Any]:
        """The provider's client: a kill:provider@N fault strikes after its request's answer."""
        from host.systems.profile_move.common import Crashed

        world = self

        class Client:
            def __init__(self, url: str) -> None:
                self.inner = inner(url)

            def request(self, method: str, path: str, body: Any = None) -> Any:
                from host.systems.repository.terminal import ServerRefused

                try:
                    answer = self.inner.request(method, path, body)
                except ServerRefused:
                    self._strike(method, path)  # a refusal is an answer too
                    raise
                self._strike(method, path)
                return answer

            @staticmethod
            def _strike(method: str, path: str) -> None:
                inj = world.rec.injector
                spec = inj.spec if inj is not None else None
                if (
                    inj is None
                    or spec is None
                    or (spec.action, spec.target) != ("kill", PROVIDER)
                    or inj.fired
                    or world.rec.current_number != spec.step
                ):
                    return
                inj.fired = True
                role = world.roles[PROVIDER]
                old = role.pid
                role.restart()
                note = f"provider killed (incarnation {old}) after the answer, restarted"
                pending = world.rec.pending
                if pending:
                    pending[-1].fault = note
                raise Crashed(f"{note}: {method} {path}")

        return Client

    def _setup_phone(self, reader: Any) -> None:
        from host.systems.profile_move.terminal import Phone

        phone = Phone(
            "setup",
            reader,
            power_cycle=lambda: None,
            ese_id=self.ese_ids[0],
            manager_url="",
            client=lambda u: None,
        )
        phone.write_contact(1, *DEMO_CONTACT)

    # -- steps and pumps ----------------------------------------------------------------

    def _step(self, number: int, detail: str) -> None:
        if self.move_no == 1:
            number = _FIG6_OF.get(number, number)
        self.rec.number_done(number, detail)

    def pump(self, done: Callable[[], bool]) -> None:
        """Every role's worker, round after round, until `done` (or PUMP_ROUNDS)."""
        from host.systems.profile_move.common import Crashed

        for _ in range(PUMP_ROUNDS):
            for name in (MNO, M1, M2, PROVIDER):
                r = self.roles[name]
                if r.down:
                    r.restart()
                try:
                    r.logic.tick()
                except (Crashed, sqlite3.ProgrammingError):
                    continue  # that incarnation died; the next one resumes from its store
            if done():
                return

    def final_state(self, move_id: str) -> str:
        return str(self.roles[PROVIDER].logic.move(move_id)["state"])

    def _finished(self) -> bool:
        from host.systems.profile_move.provider import FINAL_STATES

        return bool(self.moves) and self.final_state(self.moves[-1]) in FINAL_STATES

    def move_by_mno(self) -> None:
        """FIG. 5: the user through the MNO."""
        from host.systems.profile_move.common import hexbytes
        from host.systems.profile_move.mno import derive_key
        from host.systems.repository.terminal import JsonClient

        user = JsonClient(
            self.roles[MNO].url,
            hook=HttpRecorder(self.rec, USER, lambda u: MNO),
            ca_pem=self.ca_pem,
        )
        body = {
            "user": DEMO_USER,
            "iccid": self.iccid,
            "source_ese": self.ese_ids[0],
            "target_ese": self.ese_ids[1],
            "parts": 7,
        }
        out = _retry(lambda: user.request("POST", "/move-requests", body))
        self._step(505, f"request {out['request_id'][:8]}")
        key = derive_key(DEMO_PASSWORD, hexbytes(out, "salt"))
        proof = hmac.new(key, hexbytes(out, "challenge"), "sha256").hexdigest()
        _retry(
            lambda: user.request(
                "POST", f"/move-requests/{out['request_id']}/authenticate", {"proof": proof}
            )
        )
        self._step(510, "the user authenticated")
        self.pump(lambda: self._mno_forwarded(out["request_id"]) and self._finished())
        self.end_states.append(self.final_state(self.moves[0]) if self.moves else "none")

    def _mno_forwarded(self, request_id: str) -> bool:
        row = self.roles[MNO].logic.store.query_one(
            "SELECT move_id FROM requests WHERE request_id = ?", (request_id,)
        )
        if row is None or row["move_id"] is None:
            return False
        if not self.moves:
            self.moves.append(row["move_id"])
        return True

    def move_by_terminal(self) -> None:
        """FIG. 6: phone 2 asks its manager to move the profile back to eSE 1."""
        from host.systems.profile_move.common import new_id

        self.move_no = 1
        request_id = new_id()
        self.phones[1].request_move(
            self.roles[RESOLVER].url,
            request_id,
            self.iccid,
            self.ese_ids[0],
            provider_mno(self.pki),
        )

        def forwarded() -> bool:
            row = self.roles[M2].logic.store.query_one(
                "SELECT move_id FROM requests WHERE request_id = ?", (request_id,)
            )
            if row is None or row["move_id"] is None:
                return False
            if len(self.moves) < 2:
                self.moves.append(row["move_id"])
            return self._finished()

        self.pump(forwarded)
        self.end_states.append(self.final_state(self.moves[-1]) if len(self.moves) > 1 else "none")

    def check_after(self, n: int, new: Any, old: Any, suffix: str) -> None:
        ok, detail = new.activate(self.iccid)  # the LPA's ES10c EnableProfile
        self.rec.step_done("fig4", f"EnableProfile{suffix}", detail)
        if not ok:
            raise RuntimeError(f"the moved profile was refused on {new.name}: {detail}")
        attach = new.attach(self.roles[AUC].url)
        self.rec.step_done("network", f"attach{suffix}", attach.detail)
        if not attach.attached:
            raise RuntimeError(f"{new.name} could not attach: {attach.detail}")
        stale = old.attach(self.roles[AUC].url)
        self.rec.step_done(
            "network",
            f"stale{suffix}",
            ("attached!" if stale.attached else "refused: ") + stale.detail,
        )
        if stale.attached:
            raise RuntimeError(f"{old.name} still attaches after the move")

    def check_rolled_back(self) -> None:
        """After 207: phone 1 attaches as before, phone 2 has nothing that attaches."""
        if self.end_states[:1] != ["rolled_back"]:
            raise RuntimeError(f"the move ended {self.end_states[:1]}, not rolled back")
        kept = self.phones[0].attach(self.roles[AUC].url)
        other = self.phones[1].attach(self.roles[AUC].url)
        self.rec.step_done(
            "network", "attach_kept", f"terminal-1: {kept.detail}; terminal-2: {other.detail}"
        )
        if not kept.attached or other.attached:
            raise RuntimeError("after the rollback the wrong phone attaches")

    # -- after the run -------------------------------------------------------------------

    def recover(self) -> list[Verdict]:
        """Every party back, every move finished; then the all-or-nothing claims."""
        from host.systems.profile_move.provider import FINAL_STATES

        self.rec.injector = None  # the fault has had its turn
        self.ctx.injector = None
        for card in self.cards:
            card.power_off()
            card.power_on()
        for r in self.roles.values():
            if r.down:
                r.restart()
        prov = self.roles[PROVIDER]
        self.pump(lambda: not prov.logic.unfinished())
        unfinished = prov.logic.unfinished()
        states = [self.final_state(m) for m in self.moves]
        verdicts = [
            Verdict(
                "every move finished (done, rolled back or aborted)",
                not unfinished and all(s in FINAL_STATES for s in states),
                f"moves: {', '.join(states) or 'none'}",
            ),
        ]
        attached = []
        for phone in self.phones:
            for card in self.cards:
                card.power_off()
                card.power_on()
            profiles = phone.profiles()
            ok = False
            for iccid, _enabled in profiles:
                active, _ = phone.activate(iccid)  # the LPA's way; an enabled one stays
                if active and phone.attach(self.roles[AUC].url).attached:
                    ok = True
            attached.append(ok)
        verdicts.append(
            Verdict(
                "exactly one profile authenticates against the AuC (never both, never neither)",
                attached.count(True) == 1,
                ", ".join(f"{p.name} {'attaches' if a else 'does not'}"
                          for p, a in zip(self.phones, attached, strict=True)),
            )
        )  # fmt: skip
        if attached.count(True) == 1:
            holder = self.phones[attached.index(True)]
            contacts = holder.contacts()
            app = holder.has_application(self.purse_aid)
            verdicts.append(
                Verdict(
                    "the user's data survives where the profile is (phone book, added app)",
                    DEMO_CONTACT in contacts and app,
                    f"{holder.name}: phone book {contacts}, purse application "
                    f"{'present' if app else 'missing'}",
                )
            )
        expect_holder = 1 if self.scenario.auc_refuses else None
        if expect_holder is not None:
            verdicts.append(
                Verdict(
                    "rolled back: the profile stays on the first phone",
                    attached == [True, False],
                    f"attached: {attached}",
                )
            )
        return verdicts


def provider_mno(pki: Any) -> str:
    from applets.profile_move.wire import PROVIDER_OU, check_certificate

    return check_certificate(pki.provider_cert, pki.root.public, PROVIDER_OU).organization


def _retry(fn: Callable[[], Any], times: int = 3) -> Any:
    """A user's (or terminal's) request sent again when its answer is lost."""
    from host.systems.repository.terminal import ServerRefused

    for attempt in range(times):
        try:
            return fn()
        except (OSError, ServerRefused) as e:
            if isinstance(e, ServerRefused) and e.status < 500:
                raise
            if attempt == times - 1:
                raise
    raise AssertionError("unreachable")
