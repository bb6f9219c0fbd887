"""Seed 000 as a scenario: eKYC once with carrier 1 (S1-S35), then carrier 2 on the strength of
the authentication server's certificate (S41-S58); then the phone switches between the two
profiles, each answering AUTHENTICATE with its own carrier's keys.

Parties: the phone (LPA + contract application), its eUICC (ISD-R, ECASD,
local-authentication applet, profile store), the two carriers' management
servers (each on its SM-DP+), the authentication server (eKYC) and the relay
server (SM-DS). The servers run in this process on loopback, their requests to
one another recorded too (a kill fault stops a role and builds it again from
its SQLite file: `host.systems.ekyc.roles.InProcessRole`); `--processes` runs
them as `cardemu server ekyc-*` processes instead (then only the phone's own
exchanges are recorded). The eUICC is in-process or served through pcscd and
vpcd (`--pcsc`). In-process, the management servers close the seed steps they
reach themselves (S12-S14, S19-S25, S48-S51); with `--processes` those steps
are folded into the phone's.

Claims checked after every run, fault or not, with the servers still up, once
the phone has retried what a fault interrupted (a contract under way is resumed
with the same requests; one that never started is started again):

- the contracts complete on retry: the phone holds both carriers' profiles;
- no half-issued profile: every SM-DP+ order belongs to an accepted application,
  and every accepted application has its order;
- no orphan certificate: every certificate the authentication server issued
  belongs to a contract that produced a profile; there is exactly one, and the
  second carrier asked for no identity verification;
- no dangling SM-DS event: the relay keeps no event once its profile is installed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from host.systems.faults import FaultPoint
from host.systems.scenario import (
    HttpRecorder,
    Party,
    RunContext,
    Scenario,
    TracingReader,
    Verdict,
    card_reader,
    step_table,
)

__all__ = ["EkycScenario", "PIN"]

PHONE, EUICC, MGMT1, MGMT2, AUTH, RELAY = "phone", "euicc", "mgmt1", "mgmt2", "auth", "relay"
#: The PIN the scenario's user registers and types.
PIN = b"2468"
CARRIER_OF = {MGMT1: "carrier1", MGMT2: "carrier2"}


class EkycScenario(Scenario):
    """eKYC once with carrier 1, a profile from carrier 2 with no new eKYC (seed 000).

    Args:
        real_processes: under a kill fault, kill real `cardemu server` processes
            rather than in-process roles. A kill fault alone always turns on the run's
            `processes` option, so that option asks for real processes only without
            a kill fault (`cardemu scenario ekyc --processes`).
    """

    name = "ekyc"
    title = "eKYC once, eSIM profiles from every carrier after (seed 000)"
    parties = (
        Party(PHONE, "terminal", "the phone: LPA, contract application, eKYC app, camera"),
        Party(EUICC, "card", "eUICC: ISD-R, ECASD, local-authentication applet, profiles"),
        Party(MGMT1, "server", "carrier 1's management server on its SM-DP+ (SQLite)"),
        Party(AUTH, "server", "authentication server (eKYC), certificates by key (SQLite)"),
        Party(RELAY, "server", "relay server: SM-DS events, hands over the certificate"),
        Party(MGMT2, "server", "carrier 2's management server on its SM-DP+ (SQLite)"),
    )
    steps = step_table(
        (1, "terminal", "register", PHONE, EUICC,
         "S1-S4: no local-auth data at first start: the user's PIN registered on card"),
        (5, "contract", "apply", PHONE, MGMT1,
         "S5-S6: contract application; the server asks for the contract information"),
        (7, "localauth", "verify", PHONE, EUICC,
         "S7-S9: the PIN verified on card; the eUICC signs the result over the challenge"),
        (10, "terminal", "certificate_check", PHONE, PHONE,
         "S10-S11: no authentication-server certificate stored: the ID data read"),
        (12, "mgmt", "received", PHONE, MGMT1,
         "S12: EID + ID data + local-auth result + data-acquisition key to the management "
         "server"),
        (13, "mgmt", "verified", MGMT1, RELAY,
         "S13: the local-auth result verified (eUICC signature, this challenge, success); "
         "the key claimed at the relay"),
        (14, "auth", "photo_request", MGMT1, AUTH,
         "S14-S15: identity verification forwarded (EID, ID data, key); the authentication "
         "server asks for ID photo data"),
        (16, "contract", "information", MGMT1, PHONE,
         "S16: the photo request relayed to the phone (the answer to S12)"),
        (17, "ekyc", "capture", PHONE, PHONE,
         "S17-S18: the eKYC app films the user turning as asked (liveness)"),
        (19, "mgmt", "photo_received", PHONE, MGMT1, "S19: the ID photo data to the "
         "management server"),
        (20, "auth", "verified", MGMT1, AUTH,
         "S20-S24: the photo to the authentication server; identity verified, the EID "
         "signed, the certificate stored under the key, success notified"),
        (25, "mgmt", "ordered", MGMT1, MGMT1,
         "S25: the profile generated: the carrier's ES2+ order into its SM-DP+, bound to "
         "the EID"),
        (26, "contract", "photo", MGMT1, RELAY,
         "S26: registered under the key with an SM-DS event (ES12); the phone told"),
        (27, "relay", "certificate", PHONE, RELAY,
         "S27-S29: the phone asks the relay with the key; the relay fetches the "
         "authentication server's certificate stored under it and hands it over"),
        (30, "ES11", "discover", PHONE, RELAY,
         "S30-S32: the profile's event from the relay, the SM-DS, by ES11 (the eUICC "
         "signs for it): the SM-DP+ address and the matching ID"),
        (33, "terminal", "store_certificate", PHONE, PHONE,
         "S33: the authentication server's certificate stored on the phone"),
        (34, "ES9+", "download", PHONE, MGMT1,
         "S34-S35: the profile downloaded by ES9+/ES10b, installed and enabled"),
        (41, "contract", "apply", PHONE, MGMT2,
         "S41-S42: a contract with another carrier; it asks for the contract information"),
        (43, "localauth", "verify", PHONE, EUICC,
         "S43-S45: local authentication again, over carrier 2's challenge"),
        (46, "terminal", "certificate_check", PHONE, PHONE,
         "S46-S47: the certificate is stored: it goes instead of the ID data"),
        (48, "mgmt", "received", PHONE, MGMT2,
         "S48: EID + certificate + local-auth result + key to carrier 2: no ID data"),
        (49, "mgmt", "verified", MGMT2, RELAY,
         "S49-S50: the local-auth result and the certificate verified (the authentication "
         "server's signature over this EID, its key certified by the CA); the key claimed"),
        (51, "mgmt", "ordered", MGMT2, MGMT2,
         "S51: the profile generated (ES2+ order into carrier 2's SM-DP+): no eKYC"),
        (52, "contract", "information", MGMT2, RELAY,
         "S52: registered under the key with an SM-DS event (ES12); the phone told"),
        (53, "ES11", "discover", PHONE, RELAY,
         "S53-S56: the profile's event only, from the SM-DS by ES11"),
        (57, "ES9+", "download", PHONE, MGMT2,
         "S57-S58: the profile downloaded by ES9+/ES10b, installed and enabled"),
        (60, "ES10c", "GetProfilesInfo", PHONE, EUICC, "after the seed: both profiles listed"),
        (61, "USIM", "AUTHENTICATE", PHONE, EUICC,
         "carrier 1's profile enabled: AUTHENTICATE with carrier 1's keys"),
        (62, "USIM", "AUTHENTICATE", PHONE, EUICC,
         "carrier 2's profile enabled: AUTHENTICATE with carrier 2's keys"),
    )  # fmt: skip
    fault_points = (
        FaultPoint("kill:mgmt1@5", "completed",
                   "carrier 1's server killed before the application: restarted, it takes it"),
        FaultPoint("kill:mgmt1@12", "completed",
                   "killed before the contract information: the challenge is in its store"),
        FaultPoint("kill:auth@14", "completed",
                   "the authentication server killed before the verification request"),
        FaultPoint("kill:mgmt1@19", "completed",
                   "carrier 1's server killed before the photo: the verification is in its store"),
        FaultPoint("kill:auth@20", "completed",
                   "the authentication server killed before the photo: the request is stored"),
        FaultPoint("kill:relay@26", "completed",
                   "the relay killed before the event is registered: registered after restart"),
        FaultPoint("kill:relay@27", "completed",
                   "the relay killed before the phone asks: its events are in its store"),
        FaultPoint("kill:relay@30", "completed",
                   "the relay killed before the LPA's ES11: its events are in its store"),
        FaultPoint("kill:auth@27", "completed",
                   "the authentication server killed before the relay fetches the certificate"),
        FaultPoint("kill:mgmt1@34", "completed",
                   "carrier 1's SM-DP+ killed as the download starts: the session is in its "
                   "store; the event is deleted after installation"),
        FaultPoint("kill:relay@34", "completed",
                   "the relay killed before the installed profile's event is deleted: deleted "
                   "after restart"),
        FaultPoint("kill:mgmt2@41", "completed",
                   "carrier 2's server killed before the application"),
        FaultPoint("kill:mgmt2@48", "completed",
                   "carrier 2's server killed before the certificate arrives"),
        FaultPoint("kill:relay@49", "completed",
                   "the relay killed before carrier 2 claims the key"),
        FaultPoint("kill:relay@52", "completed",
                   "the relay killed before carrier 2's event is registered"),
        FaultPoint("kill:relay@53", "completed", "the relay killed before the second discovery"),
        FaultPoint("kill:mgmt2@57", "completed",
                   "carrier 2's SM-DP+ killed as the download starts: nothing lost"),
        FaultPoint("kill:relay@57", "completed",
                   "the relay killed before carrier 2's installed profile's event is deleted"),
        FaultPoint("kill:mgmt1@57", "completed",
                   "carrier 1's SM-DP+ killed before the notification that its profile was "
                   "disabled: delivered to the restarted server"),
        FaultPoint("kill:relay@13", "completed",
                   "the relay killed before carrier 1 claims the data-acquisition key"),
        FaultPoint("drop:http@13.1", "interrupted",
                   "carrier 1's claim of the key at the relay is lost: nothing issued; the "
                   "same information again claims it"),
        FaultPoint("drop:http@14.1", "interrupted",
                   "the verification request to the authentication server is lost: the phone "
                   "retries the same information, one verification"),
        FaultPoint("drop:http@20.1", "interrupted",
                   "the photo is lost on the way to the authentication server: nothing issued; "
                   "the retry is asked for a new capture"),
        FaultPoint("drop:http@26.1", "interrupted",
                   "the SM-DP+'s ES12.RegisterEvent is lost after the certificate was issued: "
                   "the retry registers it; no orphan certificate"),
        FaultPoint("dup:http@26.1", "completed",
                   "the SM-DP+'s ES12.RegisterEvent arrives twice at the SM-DS: one event"),
        FaultPoint("drop:http@34.5", "completed",
                   "the SM-DP+'s ES12.DeleteEvent after the installation is lost: the carrier's "
                   "reconciliation deletes the event; none dangles"),
        FaultPoint("dup:http@20.1", "completed",
                   "the photo reaches the authentication server twice: one certificate"),
        FaultPoint("dup:http@19", "completed",
                   "the phone's photo request arrives twice: one order, one event"),
        FaultPoint("drop:http@27.2", "interrupted",
                   "the relay's certificate fetch is lost: the phone asks again"),
        FaultPoint("drop:http@48", "interrupted",
                   "carrier 2's contract information is lost: resent, the same contract"),
        FaultPoint("dup:http@48", "completed",
                   "carrier 2's contract information arrives twice: one order, one event"),
        FaultPoint("tear:euicc@7=*", "interrupted",
                   "the eUICC loses power during local authentication: no free PIN try; "
                   "a new application succeeds"),
        FaultPoint("tear:euicc@34=*", "interrupted",
                   "the eUICC loses power while installing: no half-installed profile; "
                   "downloaded again"),
    )  # fmt: skip

    def __init__(self, *, real_processes: bool = False) -> None:
        self.real_processes = real_processes

    # -- the run ---------------------------------------------------------------------

    def run(self, ctx: RunContext) -> None:
        from host.pki import default_pki
        from host.presets import new_card
        from host.systems.ekyc.demo import person
        from host.systems.ekyc.terminal import PhoneStorage, Terminal, User

        rec = ctx.recorder
        gsma = default_pki()
        card = new_card("euicc", rng_seed=ctx.seed)
        who = person(0)
        storage = PhoneStorage(dict(who.document))
        dbs = {n: str(Path(ctx.workdir, f"{n}.sqlite")) for n in (MGMT1, MGMT2, AUTH, RELAY)}
        ctx.state.update(card=card, dbs=dbs, storage=storage, who=who, contracts={})
        with contextlib.ExitStack() as stack:
            urls = self._serve(ctx, stack)
            ctx.state["urls"] = urls
            self.recover_on(ctx, stack)
            inner = stack.enter_context(card_reader(card, ctx.pcsc))
            reader = TracingReader(inner, rec, terminal=PHONE, card=EUICC, runtime=card)
            hook = HttpRecorder(rec, PHONE, self._party_of(urls))

            phone = Terminal(
                reader,
                relay_url=urls[RELAY],
                ca_pem=gsma.ci.pem,
                user=User.of(who, PIN),
                storage=storage,
                hook=hook,
                on_step=rec.step_done,
            )
            ctx.state["phone_args"] = (gsma.ci.pem, who)
            ctx.state["recording"] = True
            phone.first_start()
            for mgmt in (MGMT1, MGMT2):
                ctx.state["contracts"][mgmt] = phone.contract(urls[mgmt], plan="unlimited")
            self._switch(ctx, reader, rec.step_done)
            ctx.state["switched"] = True

    def _switch(self, ctx: RunContext, reader: Any, on_step: Any) -> None:
        """Both profiles listed; each enabled in turn answers AUTHENTICATE with its keys."""
        from host.lpa.es10 import Es10Client
        from host.lpa.lpa import Lpa

        contracts = ctx.state["contracts"]
        with Es10Client(reader) as es10:
            profiles = Lpa(es10).profiles()
        on_step(
            "ES10c",
            "GetProfilesInfo",
            ", ".join(f"{p['iccid']} {p['serviceProviderName']} {p['state']}" for p in profiles),
        )
        for mgmt in (MGMT1, MGMT2):
            iccid = contracts[mgmt].iccid
            ok, detail = _authenticate(reader, CARRIER_OF[mgmt], iccid)
            ctx.state.setdefault("auth", {})[mgmt] = ok
            on_step("USIM", "AUTHENTICATE", f"{CARRIER_OF[mgmt]} {iccid} enabled: {detail}")

    def _party_of(self, urls: dict[str, str]) -> Any:
        ports = {u.rsplit(":", 1)[1].rstrip("/"): name for name, u in urls.items()}

        def party(url: str) -> str:
            port = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[-1]
            return ports.get(port, "?")

        return party

    def _serve(self, ctx: RunContext, stack: contextlib.ExitStack) -> dict[str, str]:
        """Start the four servers; return their URLs (the management servers' are HTTPS)."""
        dbs = ctx.state["dbs"]
        kill = ctx.fault is not None and ctx.fault.action == "kill"
        if ctx.processes and (self.real_processes or not kill):
            return self._serve_processes(ctx, stack)
        from host.systems.ekyc.roles import (
            InProcessRole,
            auth_role,
            auth_tls,
            mgmt_role,
            mgmt_tls,
            relay_role,
            relay_tls,
            stop_all,
        )

        urls: dict[str, str] = {}
        roles: dict[str, InProcessRole] = {}

        def hook(source: str) -> HttpRecorder:
            return HttpRecorder(ctx.recorder, source, lambda url: party(url))

        def party(url: str) -> str:
            return str(self._party_of(urls)(url))

        stack.callback(lambda: stop_all(list(roles.values())))
        roles[AUTH] = InProcessRole(AUTH, lambda: auth_role(dbs[AUTH]), tls=auth_tls()).start()
        urls[AUTH] = roles[AUTH].url
        roles[RELAY] = InProcessRole(
            RELAY,
            lambda: relay_role(dbs[RELAY], auth_url=urls[AUTH], hook=hook(RELAY)),
            tls=relay_tls(),
        ).start()
        urls[RELAY] = roles[RELAY].url
        tls = mgmt_tls()
        for mgmt in (MGMT1, MGMT2):

            def build(m: str = mgmt) -> Any:
                return mgmt_role(
                    CARRIER_OF[m],
                    dbs[m],
                    auth_url=urls[AUTH],
                    relay_url=urls[RELAY],
                    address=f"localhost:{roles[m].port}",
                    hook=hook(m),
                )

            roles[mgmt] = InProcessRole(mgmt, build, tls=tls, on_start=self._steps_of(ctx))
            roles[mgmt].start()
            urls[mgmt] = roles[mgmt].url
        if ctx.injector is not None:
            ctx.injector.servers.update(roles)
        ctx.state["roles"] = roles
        return urls

    def _steps_of(self, ctx: RunContext) -> Any:
        """Let an in-process management server close the seed steps it reaches (S12-S14,
        S19-S25, S48-S51) while the run records; a step not under way (a retry, a
        duplicate) is not closed again."""
        rec = ctx.recorder

        def attach(logic: Any) -> None:
            def reached(number: int, detail: str) -> None:
                if ctx.state.get("recording"):
                    rec.number_done(number, detail, ahead=False)

            logic.on_step = reached

        return attach

    def _serve_processes(self, ctx: RunContext, stack: contextlib.ExitStack) -> dict[str, str]:
        from host.systems.servers import ServerProcess

        dbs = ctx.state["dbs"]
        auth = stack.enter_context(ServerProcess("ekyc-auth", ["--db", dbs[AUTH]]))
        auth_url = f"https://localhost:{auth.port}"
        relay = stack.enter_context(
            ServerProcess("ekyc-relay", ["--db", dbs[RELAY], "--auth-url", auth_url])
        )
        relay_url = f"https://localhost:{relay.port}"
        procs: dict[str, Any] = {AUTH: auth, RELAY: relay}
        urls = {AUTH: auth_url, RELAY: relay_url}
        for mgmt in (MGMT1, MGMT2):
            p = stack.enter_context(
                ServerProcess(
                    "ekyc-mgmt",
                    [
                        "--carrier",
                        CARRIER_OF[mgmt],
                        "--db",
                        dbs[mgmt],
                        "--auth-url",
                        auth_url,
                        "--relay-url",
                        relay_url,
                    ],
                )
            )
            procs[mgmt] = p
            urls[mgmt] = f"https://localhost:{p.port}"
        if ctx.injector is not None:
            ctx.injector.servers.update(procs)
        return urls

    def recover(self, ctx: RunContext) -> list[Verdict]:
        ctx.state["recording"] = False  # the retries are not the run's steps
        return _recover(ctx)

    # -- the verdicts ----------------------------------------------------------------------

    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        done = error is None and bool(ctx.state.get("switched"))
        auth = ctx.state.get("auth", {})
        claims = list(self.recovered(ctx))
        if done:
            claims.append(
                Verdict(
                    "each profile answers AUTHENTICATE with its own carrier's keys",
                    all(auth.get(m) for m in (MGMT1, MGMT2)),
                    ", ".join(f"{CARRIER_OF[m]} {'ok' if auth.get(m) else 'FAILED'}" for m in auth),
                )
            )
        return ("completed" if done else "interrupted"), claims


def _authenticate(reader: Any, carrier: str, iccid: str) -> tuple[bool, str]:
    """Enable the profile `iccid`, AUTHENTICATE with the carrier's keys, check as its AuC."""
    from card.crypto.milenage import Milenage, generate_auth_vector
    from host.lpa.es10 import Es10Client
    from host.lpa.lpa import Lpa
    from host.systems.ekyc.demo import CARRIERS
    from host.usim import UsimSession, check_auth

    with Es10Client(reader) as es10:
        lpa = Lpa(es10)
        if not any(p["iccid"] == iccid and p["state"] == "enabled" for p in lpa.profiles()):
            lpa.enable(iccid)
    k, opc = CARRIERS[carrier].subscriber_keys(iccid)
    usim = UsimSession(reader)
    usim.select_usim()
    alg = Milenage(k, opc)
    rand = os.urandom(16)
    vector = generate_auth_vector(alg, rand, (0x22).to_bytes(6, "big"), b"\x80\x00")
    check = check_auth(usim.authenticate(rand, vector.autn), alg, rand)
    return check.ok, check.detail


def rows(db: str, sql: str) -> list[sqlite3.Row]:
    """A read-only query on a role's store (the checks never write)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _retry_contracts(ctx: RunContext) -> list[str]:
    """The phone retries what the run left undone (as a user would): a pending contract is
    resumed with the same requests; a contract never started (or refused) is started anew."""
    from host.readers.inprocess import InProcessReader
    from host.systems.ekyc.terminal import Terminal, User

    card, storage = ctx.state["card"], ctx.state["storage"]
    ca_pem, who = ctx.state["phone_args"]
    urls = ctx.state["urls"]
    card.power_off()
    phone = Terminal(
        InProcessReader(card),
        relay_url=urls[RELAY],
        ca_pem=ca_pem,
        user=User.of(who, PIN),
        storage=storage,
    )
    notes: list[str] = []
    phone.first_start()
    for mgmt in (MGMT1, MGMT2):
        if mgmt in ctx.state["contracts"]:
            continue
        errors: list[str] = []
        for _ in range(3):
            try:
                pending = storage.pending
                if pending is not None and pending["mgmt"] == urls[mgmt]:
                    done = phone.resume()
                    notes.append(f"{CARRIER_OF[mgmt]} resumed")
                else:
                    storage.pending = None
                    done = phone.contract(urls[mgmt], plan="unlimited")
                    notes.append(f"{CARRIER_OF[mgmt]} applied again")
                ctx.state["contracts"][mgmt] = done
                break
            except Exception as e:  # noqa: BLE001 - retried; the claims judge the end state
                errors.append(f"{type(e).__name__}: {e}")
        else:
            notes.append(f"{CARRIER_OF[mgmt]} failed: {' / '.join(errors)}")
    return notes


def _recover(ctx: RunContext) -> list[Verdict]:
    """Retry, then check the claims on the stores the run left."""
    from host.servers.smdpp.server import OrderState

    if "urls" not in ctx.state:
        return [Verdict("the servers started", False, "no servers")]
    dbs = ctx.state["dbs"]
    notes = _retry_contracts(ctx)
    # The management servers tidy their SM-DS events after each notification; once more here
    # as a restarted server does at its next request.
    for role in ctx.state.get("roles", {}).values():
        reconcile = getattr(role.logic, "reconcile", None)
        if reconcile is not None:
            reconcile()
    contracts = ctx.state["contracts"]
    verdicts = [
        Verdict(
            "the contracts complete (on retry if a fault stopped them)",
            all(m in contracts for m in (MGMT1, MGMT2)),
            "; ".join(notes) or "no retry needed",
        )
    ]
    issued: list[str] = []
    ordered_daks: set[str] = set()
    half: list[str] = []
    for mgmt in (MGMT1, MGMT2):
        apps = rows(dbs[mgmt], "SELECT * FROM applications")
        orders = {r["matching_id"]: r["state"] for r in rows(dbs[mgmt], "SELECT * FROM orders")}
        accepted = {a["matching_id"] for a in apps if a["state"] == "ordered"}
        ordered_daks |= {a["dak"] for a in apps if a["state"] == "ordered"}
        half += [f"{mgmt} order {m} without an application" for m in orders if m not in accepted]
        half += [f"{mgmt} application for {m} without its order" for m in accepted - set(orders)]
        issued += [m for m, s in orders.items() if s == OrderState.INSTALLED]
    verdicts.append(
        Verdict(
            "no half-issued profile: orders and accepted applications match one to one",
            not half,
            "; ".join(half) or f"{len(issued)} profile(s) installed",
        )
    )
    certs = rows(dbs[AUTH], "SELECT dak, eid FROM certificates")
    orphans = [c["dak"][:8] for c in certs if c["dak"] not in ordered_daks]
    verdicts.append(
        Verdict(
            "no orphan certificate: each one issued belongs to a contract with a profile",
            not orphans,
            f"{len(certs)} certificate(s)" + (f", orphans {orphans}" if orphans else ""),
        )
    )
    verdicts.append(
        Verdict("eKYC once: one certificate issued", len(certs) == 1, f"{len(certs)} issued")
    )
    by_carrier2 = rows(dbs[AUTH], "SELECT id FROM verifications WHERE requester = 'carrier2'")
    verdicts.append(
        Verdict(
            "the second carrier asked for no identity verification",
            not by_carrier2,
            f"{len(by_carrier2)} verification(s) asked by carrier2",
        )
    )
    events = rows(dbs[RELAY], "SELECT event_id FROM events")  # the SM-DS's event records
    verdicts.append(
        Verdict(
            "no dangling SM-DS event: none left once the profiles are installed",
            not events or len(contracts) < 2,
            f"{len(events)} event(s) left" + (f": {[e[0] for e in events]}" if events else ""),
        )
    )
    storage = ctx.state["storage"]
    kept = storage.certificate
    verdicts.append(
        Verdict(
            "the phone keeps the authentication server's certificate for its own EID",
            kept is not None and bool(certs) and kept.eid == certs[0]["eid"],
            "stored" if kept is not None else "none stored",
        )
    )
    return verdicts
