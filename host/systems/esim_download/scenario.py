"""The eSIM profile download as a scenario, step for step as GSMA SGP.22 v2.x §3.1.3 runs it.

Parties: the eUICC (an emulated "euicc" card: ISD-R, ECASD, profile store),
the device's LPA (the terminal), the SM-DP+ (a server role). The flow is
`host.lpa.demo.run_demo` — the same code as `cardemu demo` — driven through
the scenario's recorders: every APDU through a `TracingReader`, every ES9+
exchange through the LPA's HTTP hook.

Claims checked after every run, fault or not:

- nothing half-issued: the SM-DP+ never says INSTALLED unless the eUICC holds
  the profile; the eUICC never holds a profile the SM-DP+ did not hand out;
- nothing half-installed: after a power cycle the eUICC lists the profile at
  most once, and a listed profile enables and answers AUTHENTICATE;
- nothing lost: the pending notifications reach the SM-DP+, and a profile not
  on the eUICC can be downloaded again, after which the order is INSTALLED.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from host.lpa.demo import DemoResult
    from host.lpa.lpa import Step

__all__ = ["EsimDownload"]

EUICC, LPA, SMDP = "euicc", "lpa", "smdpp"


class EsimDownload(Scenario):
    """Download the demo profile from the SM-DP+ into the eUICC, enable it, AUTHENTICATE."""

    name = "esim-download"
    title = "eSIM profile download (GSMA SGP.22 §3.1.3)"
    parties = (
        Party(LPA, "terminal", "the device: LPA (and its modem for AUTHENTICATE)"),
        Party(EUICC, "card", "eUICC: ISD-R, ECASD, profile store"),
        Party(SMDP, "server", "SM-DP+: ES9+ over HTTPS, orders in SQLite"),
    )
    steps = step_table(
        (0, "SM-DP+", "serve", SMDP, LPA, "the SM-DP+ serves ES9+; the activation code is given"),
        (1, "ES10b", "GetEUICCChallenge", LPA, EUICC, "the eUICC's challenge for the server"),
        (2, "ES10b", "GetEUICCInfo1", LPA, EUICC, "the CIs the eUICC trusts, its SVN"),
        (3, "ES9+", "InitiateAuthentication", LPA, SMDP, "the SM-DP+ signs serverSigned1"),
        (4, "ES10b", "AuthenticateServer", LPA, EUICC, "the eUICC checks the SM-DP+, signs"),
        (5, "ES9+", "AuthenticateClient", LPA, SMDP, "the SM-DP+ checks the eUICC, the order"),
        (6, "ES10b", "PrepareDownload", LPA, EUICC, "the eUICC's one-time key, signed"),
        (7, "ES9+", "GetBoundProfilePackage", LPA, SMDP, "the profile bound to the session"),
        (8, "ES10b", "LoadBoundProfilePackage", LPA, EUICC, "the eUICC installs the profile"),
        (9, "ES9+", "HandleNotification", LPA, SMDP, "the installation result reaches it"),
        (10, "ES10b", "RemoveNotificationFromList", LPA, EUICC, "the delivered result goes"),
        (11, "ES10c", "EnableProfile", LPA, EUICC, "the new profile becomes the enabled one"),
        (12, "ES10c", "GetProfilesInfo", LPA, EUICC, "the profiles as the device lists them"),
        (13, "ES9+", "HandleNotification", LPA, SMDP, "the enable notification"),
        (14, "USIM", "AUTHENTICATE", LPA, EUICC, "the profile answers as a network expects"),
    )
    fault_points = (
        FaultPoint(
            "kill:smdpp@7",
            "completed",
            "SM-DP+ killed between AuthenticateClient and GetBoundProfilePackage: "
            "the session is in its store, the restarted server binds the profile",
        ),
        FaultPoint(
            "tear:euicc@8=*",
            "interrupted",
            "the eUICC loses power during LoadBoundProfilePackage: no half-installed "
            "profile, the order downloads again",
        ),
        FaultPoint(
            "drop:http@9",
            "completed",
            "the installation result is lost on the way: it stays on the eUICC and "
            "reaches the SM-DP+ with the next notifications",
        ),
        FaultPoint(
            "drop:http@7",
            "interrupted",
            "the GetBoundProfilePackage request is lost: nothing handed out, the "
            "order downloads again",
        ),
        FaultPoint(
            "dup:http@3",
            "completed",
            "InitiateAuthentication arrives twice: a stray session, no harm",
        ),
        FaultPoint(
            "delay:http@7=300",
            "completed",
            "GetBoundProfilePackage waits 300 ms: no timeout, no harm",
        ),
    )

    # -- the run -----------------------------------------------------------------

    def run(self, ctx: RunContext) -> None:
        from host.lpa.demo import demo_order, run_demo
        from host.pki import default_pki
        from host.presets import new_card
        from host.servers.smdpp.server import SmdpPlus
        from host.systems.servers import ServerProcess

        rec = ctx.recorder
        pki = default_pki()
        card = new_card("euicc", rng_seed=ctx.seed)
        db = Path(ctx.workdir, "smdpp.sqlite")
        smdp = SmdpPlus(pki, address="localhost", store=db)
        smdp.add_order(demo_order())
        ctx.state.update(card=card, db=db, pki=pki, order=demo_order())
        with contextlib.ExitStack() as stack:
            if ctx.processes:
                smdp.store.close()
                proc = stack.enter_context(ServerProcess(SMDP, ["--db", str(db)]))
                address = f"localhost:{proc.port}"
                if ctx.injector is not None:
                    ctx.injector.servers[SMDP] = proc
                ctx.state["server"] = proc
            else:
                stack.callback(smdp.store.close)
                server = stack.enter_context(smdp.serve())
                smdp.address = address = f"localhost:{server.port}"
                ctx.state["server"] = server
            ctx.state["address"] = address
            self.recover_on(ctx, stack)
            inner = stack.enter_context(card_reader(card, ctx.pcsc))
            reader = TracingReader(inner, rec, terminal=LPA, card=EUICC, runtime=card)
            hook = HttpRecorder(rec, LPA, lambda url: SMDP)

            def on_step(step: Step) -> None:
                rec.step_done(step.interface, step.function, step.detail)

            result = run_demo(
                on_step,
                reader=reader,
                smdp_address=address,
                http_hook=hook,
            )
            ctx.state["result"] = result

    def recover(self, ctx: RunContext) -> list[Verdict]:
        """After the run, servers still up: deliver what is pending, download again if needed."""
        return _recover(ctx)

    # -- the verdicts ------------------------------------------------------------

    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        result: DemoResult | None = ctx.state.get("result")
        done = error is None and result is not None and result.download.installed
        done = done and result is not None and result.auth_ok
        claims = self.recovered(ctx)
        return ("completed" if done else "interrupted"), claims


def _recover(ctx: RunContext) -> list[Verdict]:
    """Check the claims on the state the run left, and that nothing was lost."""
    from host.lpa.es10 import Es10Client
    from host.lpa.lpa import Lpa
    from host.readers.inprocess import InProcessReader
    from host.servers.smdpp.server import OrderState, SmdpPlus
    from host.usim import UsimSession, check_auth

    card, pki, order = ctx.state["card"], ctx.state["pki"], ctx.state["order"]
    iccid = order.full_iccid
    address = ctx.state.get("address")
    verdicts: list[Verdict] = []

    def order_state() -> str | None:
        dp = SmdpPlus(pki, address="localhost", store=ctx.state["db"])
        try:
            return dp.order_state(order.matching_id)
        finally:
            dp.store.close()

    # A power cycle: what a torn card recovers to.
    card.power_off()
    reader = InProcessReader(card)
    with Es10Client(reader) as es10:
        lpa = Lpa(es10, ca_pem=pki.ci.pem)
        listed = [p for p in lpa.profiles() if p["iccid"] == iccid]
        state = order_state()
        verdicts.append(
            Verdict(
                "nothing half-installed: the profile is listed at most once",
                len(listed) <= 1,
                f"listed {len(listed)} time(s)",
            )
        )
        verdicts.append(
            Verdict(
                "nothing half-issued: INSTALLED at the SM-DP+ only with the profile on the eUICC",
                state != OrderState.INSTALLED or bool(listed),
                f"order {state}, eUICC {'has' if listed else 'lacks'} the profile",
            )
        )
        verdicts.append(
            Verdict(
                "nothing from nowhere: a profile on the eUICC was handed out by the SM-DP+",
                not listed or state in (OrderState.DOWNLOADED, OrderState.INSTALLED),
                f"order {state}",
            )
        )
        if address is None:
            return verdicts
        lpa.send_notifications()
        if not listed:
            try:
                again = lpa.download(f"LPA:1${address}${order.matching_id}")
                ok, detail = again.installed, "downloaded again"
            except Exception as e:  # noqa: BLE001 - the claim is that it works
                ok, detail = False, f"a second download failed: {e}"
            verdicts.append(Verdict("nothing lost: the order downloads again", ok, detail))
            listed = [p for p in lpa.profiles() if p["iccid"] == iccid]
        if listed and listed[0]["state"] != "enabled":
            lpa.enable(iccid)
            lpa.send_notifications()
        final = order_state()
    verdicts.append(
        Verdict(
            "nothing lost: the SM-DP+ ends with the order INSTALLED",
            final == OrderState.INSTALLED,
            f"order {final}",
        )
    )
    if listed:
        from card.crypto.milenage import Milenage, generate_auth_vector

        usim = UsimSession(reader)
        usim.select_usim()
        alg = Milenage(order.k, order.opc)
        rand = os.urandom(16)
        vector = generate_auth_vector(alg, rand, (0x21).to_bytes(6, "big"), b"\x80\x00")
        check = check_auth(usim.authenticate(rand, vector.autn), alg, rand)
        verdicts.append(
            Verdict("the profile on the eUICC answers AUTHENTICATE", check.ok, check.detail)
        )
    return verdicts
