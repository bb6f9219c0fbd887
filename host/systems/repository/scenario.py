"""Seed 002 as a scenario: issuance (ST11-ST22), a credential read (ST31-ST65), a write (ST71-ST83).

Parties: the fingerprint card (match-on-card + the repository applet), the
holder's terminal at issuance, the registration device with its HSM, the
counter terminal, and the holder's repository. The servers run in this process
on loopback (or as real processes: `--processes`, and every kill fault); the
card in-process or through pcscd and vpcd (`--pcsc`).

Claims checked after every run, fault or not, with the servers still up:

- no credential left the repository without a logged disclosure (the
  terminal's count of released credentials never exceeds the log's);
- nothing was stored without its history entry;
- the card stays usable: after a power cycle the holder's finger opens it, the
  URL reads, and a new session reads the credential (nothing lost).
"""

from __future__ import annotations

import contextlib
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

__all__ = ["RepositoryScenario"]

CARD, HOLDER, REGISTRATION, COUNTER, REPOSITORY = (
    "card",
    "holder-terminal",
    "registration",
    "counter",
    "repository",
)
CREDENTIAL_ID = "qualification"
WRITTEN_ID = "licence"
WRITTEN = b'{"licence": "B", "issued": 2026}'


class RepositoryScenario(Scenario):
    """Issue the card, read a credential through it, write one (seed 002)."""

    name = "repository"
    title = "Fingerprint card and personal information repository (seed 002)"
    parties = (
        Party(CARD, "card", "fingerprint card: match-on-card, the repository applet"),
        Party(HOLDER, "terminal", "the holder's terminal at issuance"),
        Party(REGISTRATION, "server", "registration device with its HSM (SQLite key store)"),
        Party(COUNTER, "terminal", "the counter terminal: drives the card, relays SM"),
        Party(REPOSITORY, "server", "the holder's personal information server (SQLite)"),
    )
    steps = step_table(
        (11, "issuance", "mutual_auth", REGISTRATION, CARD,
         "ST11: the card and the HSM authenticate each other through the holder's "
         "terminal; secure messaging from then on"),
        (12, "issuance", "template", CARD, REGISTRATION,
         "ST12: the card sends the holder's fingerprint template under SM"),
        (13, "issuance", "hsm_key", REGISTRATION, CARD,
         "ST13-ST16, ST19: the HSM matches the template against its record, tells the "
         "card, makes and keeps its key pair, and gives the card its public key"),
        (17, "issuance", "card_keypair", CARD, REGISTRATION,
         "ST17-ST19: the card makes its key pair, keeps the private key, gives the "
         "public key to the HSM"),
        (20, "issuance", "signed_url", REGISTRATION, CARD,
         "ST20-ST22: the HSM signs the card's public key with the repository URL; the "
         "card checks the signature and stores both"),
        (31, "card", "VERIFY", COUNTER, CARD, "ST31-ST33: the holder's finger, matched on card"),
        (34, "card", "READ URL", COUNTER, CARD,
         "ST34-ST35: the repository URL, released only after the match; its HSM "
         "signature checked with the key the registration device publishes"),
        (36, "repository", "open_session", COUNTER, REPOSITORY,
         "ST36-ST37: a session; the terminal identifies itself"),
        (38, "repository", "secure_messaging", REPOSITORY, CARD,
         "ST38-ST39: mutual authentication through the terminal; SM from then on"),
        (40, "repository", "terminal_key", COUNTER, REPOSITORY,
         "ST40-ST41: the terminal's public key, by ID"),
        (42, "repository", "card_key", REPOSITORY, CARD,
         "ST42-ST48: the card's new key pair; its public key published by ID"),
        (51, "read", "read_request", COUNTER, REPOSITORY,
         "ST51-ST53: the terminal asks for a credential by ID"),
        (54, "read", "card_signs", REPOSITORY, CARD,
         "ST54-ST56: the credential to the card under SM, signed by the card's key"),
        (57, "read", "token_to_card", REPOSITORY, CARD,
         "ST56-ST57: a one-time token to the card under SM"),
        (58, "read", "token_via_card", CARD, COUNTER,
         "ST58-ST60: the card decrypts the token, checks the MAC, hands it over"),
        (61, "read", "disclosed", COUNTER, REPOSITORY,
         "ST61-ST65: the token checked, the disclosure logged, the card-signed "
         "credential released and checked with the card's key"),
        (72, "write", "write_sent", COUNTER, REPOSITORY,
         "ST71-ST74: a write request; a one-time token to the card under SM"),
        (75, "write", "write_token", CARD, COUNTER, "ST75-ST77: the token through the card"),
        (79, "write", "stored", COUNTER, REPOSITORY,
         "ST78-ST83: the terminal-signed credential; token and signature checked, "
         "history logged, stored"),
    )  # fmt: skip
    fault_points = (
        FaultPoint(
            "tear:card@17=*",
            "interrupted",
            "the card loses power making its key pair at issuance: issued whole or not at "
            "all; a new issuance then succeeds",
        ),
        FaultPoint(
            "tear:card@20=*",
            "interrupted",
            "the card loses power storing the signed URL: issued whole or not at all; "
            "a new issuance then succeeds",
        ),
        FaultPoint(
            "tear:card@31=*",
            "interrupted",
            "the card loses power during the finger match: no free try, the card stays usable",
        ),
        FaultPoint(
            "kill:repository@61",
            "interrupted",
            "the repository killed before the token comes back: its session dies, "
            "nothing is released or logged; a new session reads",
        ),
        FaultPoint(
            "kill:repository@51",
            "interrupted",
            "the repository killed at the read request: nothing signed, released or logged",
        ),
        FaultPoint(
            "kill:repository@79",
            "interrupted",
            "the repository killed before the signed credential arrives: nothing stored",
        ),
        FaultPoint(
            "tear:card@42=*",
            "interrupted",
            "the card loses power during key generation: the card stays usable",
        ),
        FaultPoint(
            "drop:apdu@58",
            "interrupted",
            "the token's release is lost between card and terminal: nothing disclosed",
        ),
        FaultPoint(
            "drop:http@61",
            "interrupted",
            "the token presentation is lost: nothing released, nothing logged",
        ),
        FaultPoint(
            "dup:http@11.4",
            "completed",
            "a poll of the issuance arrives twice: answered again, nothing fed twice to the card",
        ),
        FaultPoint(
            "dup:http@54.2",
            "completed",
            "a poll carrying the card's signature arrives twice: answered again, the SM "
            "session intact",
        ),
        FaultPoint(
            "drop:http@54.2",
            "interrupted",
            "a poll carrying the card's answer is lost: nothing released, the card usable",
        ),
        FaultPoint(
            "dup:http@61",
            "completed",
            "the token presented twice: one release, one disclosure logged; the copy refused",
        ),
        FaultPoint(
            "delay:http@61=300",
            "completed",
            "the token presentation waits 300 ms: still valid, no harm",
        ),
    )

    # -- the run -------------------------------------------------------------------

    def run(self, ctx: RunContext) -> None:
        from applets.biometric.iso19794 import build_biometric_data
        from card.sm.cvc import public_key_template
        from host.bio.synthetic import make_dataset
        from host.systems.repository.applet_ids import CARD_REF
        from host.systems.repository.card import make_card
        from host.systems.repository.demo import DEMO_CREDENTIAL, TERMINAL_ID, demo_pki, demo_tls
        from host.systems.repository.hsm import Hsm
        from host.systems.repository.hsm import create_app as hsm_app
        from host.systems.repository.server import Repository
        from host.systems.repository.server import create_app as repo_app
        from host.systems.repository.terminal import CounterTerminal, JsonClient

        rec = ctx.recorder
        pki = demo_pki(0)
        fingers = make_dataset(1, 3, seed=2)
        holder = fingers.impressions[0]
        card = make_card(pki.root, holder[0], rng_seed=ctx.seed, card_ref=CARD_REF)
        repo_db, hsm_db = Path(ctx.workdir, "repository.sqlite"), Path(ctx.workdir, "hsm.sqlite")
        repo = Repository(
            str(repo_db),
            key=pki.repository,
            certificate=pki.repository_cert,
            root=pki.root.public,
            holder=CARD_REF,
        )
        key_id = repo.register_terminal(TERMINAL_ID, public_key_template(pki.terminal.public))
        repo.put_credential(CREDENTIAL_ID, DEMO_CREDENTIAL)
        hsm = Hsm(str(hsm_db))
        ctx.state.update(
            card=card, repo_db=repo_db, pki=pki, holder=holder, key_id=key_id, released=[]
        )
        with contextlib.ExitStack() as stack:
            repo_url, reg_url = self._serve(ctx, stack, repo, hsm, repo_app, hsm_app)
            hsm.enrol(CARD_REF, build_biometric_data(holder[0]), repo_url)
            if ctx.processes:
                hsm.store.close()
            ctx.state.update(repo_url=repo_url, reg_url=reg_url)
            self.recover_on(ctx, stack)
            inner = stack.enter_context(card_reader(card, ctx.pcsc))
            on_step = rec.function_done

            def hook(source: str) -> HttpRecorder:
                return HttpRecorder(
                    rec,
                    source,
                    lambda url: REPOSITORY if url.startswith(repo_url) else REGISTRATION,
                )

            # Issuance, at the holder's terminal (ST11-ST22).
            holder_reader = TracingReader(inner, rec, terminal=HOLDER, card=CARD, runtime=card)
            ca = demo_tls().ca_pem
            holder_terminal = CounterTerminal(
                holder_reader, hook=hook(HOLDER), on_step=on_step, ca_pem=ca
            )
            holder_terminal.issue(JsonClient(reg_url, hook=hook(HOLDER), ca_pem=ca))
            inner.reset()  # the card goes from the holder's terminal to the counter
            # The read (ST31-ST65) and the write (ST71-ST83) at the counter.
            reader = TracingReader(inner, rec, terminal=COUNTER, card=CARD, runtime=card)
            t = CounterTerminal(
                reader,
                terminal_id=TERMINAL_ID,
                key=pki.terminal,
                key_id=key_id,
                hook=hook(COUNTER),
                on_step=on_step,
                ca_pem=ca,
            )
            matched = t.present_finger(holder[1])
            rec.step_done("card", "VERIFY", "match" if matched else "no match")
            signed = t.read_url(JsonClient(reg_url, hook=hook(COUNTER), ca_pem=ca))
            rec.step_done("card", "READ URL", f"{signed.url}, HSM signature ok")
            t.connect(signed.url)
            data = t.read(CREDENTIAL_ID)
            ctx.state["released"].append(data)
            t.write(WRITTEN_ID, WRITTEN)
            ctx.state["written"] = True

    def _serve(
        self, ctx: RunContext, stack: contextlib.ExitStack, repo: Any, hsm: Any, repo_app: Any,
        hsm_app: Any,
    ) -> tuple[str, str]:  # fmt: skip
        from host.servers.web import RoleServer
        from host.systems.repository.demo import demo_pki, demo_tls
        from host.systems.repository.hsm import RegistrationDevice
        from host.systems.servers import ServerProcess

        pki = demo_pki(0)
        if ctx.processes:
            repo.store.close()
            rp = stack.enter_context(ServerProcess(REPOSITORY, ["--db", str(ctx.state["repo_db"])]))
            hp = stack.enter_context(ServerProcess(REGISTRATION, ["--db", str(hsm.store.path)]))
            if ctx.injector is not None:
                ctx.injector.servers[REPOSITORY] = rp
                ctx.injector.servers[REGISTRATION] = hp
            return rp.url, hp.url
        device = RegistrationDevice(
            hsm, key=pki.hsm, certificate=pki.hsm_cert, root=pki.root.public
        )
        stack.callback(device.close)
        stack.callback(repo.close)
        tls = demo_tls().server
        rs = stack.enter_context(RoleServer(repo_app(repo), name=REPOSITORY, tls=tls))
        hs = stack.enter_context(RoleServer(hsm_app(device), name=REGISTRATION, tls=tls))
        return rs.url, hs.url

    def recover(self, ctx: RunContext) -> list[Verdict]:
        return _recover(ctx)

    # -- the verdicts ------------------------------------------------------------------

    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        done = error is None and bool(ctx.state.get("written"))
        claims = self.recovered(ctx)
        return ("completed" if done else "interrupted"), claims


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _terminal(ctx: RunContext, card: Any) -> Any:
    from host.readers.inprocess import InProcessReader
    from host.systems.repository.demo import TERMINAL_ID, demo_tls
    from host.systems.repository.terminal import CounterTerminal

    return CounterTerminal(
        InProcessReader(card),
        terminal_id=TERMINAL_ID,
        key=ctx.state["pki"].terminal,
        key_id=ctx.state["key_id"],
        ca_pem=demo_tls().ca_pem,
    )


def _recover(ctx: RunContext) -> list[Verdict]:
    """The claims on what the run left; then a new session must read (nothing lost)."""
    from host.errors import ApduError
    from host.systems.repository.demo import DEMO_CREDENTIAL, demo_tls
    from host.systems.repository.terminal import JsonClient

    db: Path = ctx.state["repo_db"]
    verdicts: list[Verdict] = []
    released = len(ctx.state["released"])
    logged = len(_rows(db, "SELECT id FROM disclosures"))
    verdicts.append(
        Verdict(
            "no credential released without a logged disclosure",
            released <= logged,
            f"{released} released, {logged} disclosure(s) logged",
        )
    )
    stored = _rows(db, "SELECT credential_id FROM credentials WHERE written_by IS NOT NULL")
    history = {r[0] for r in _rows(db, "SELECT credential_id FROM history")}
    verdicts.append(
        Verdict(
            "nothing stored without its history entry",
            all(r[0] in history for r in stored),
            f"{len(stored)} stored, {len(history)} in the history",
        )
    )
    if "repo_url" not in ctx.state:
        return verdicts
    card = ctx.state["card"]
    card.power_off()
    card.power_on()
    t = _terminal(ctx, card)
    try:
        ok = t.present_finger(ctx.state["holder"][2])
        url, note = "", ""
        if ok:
            registration = JsonClient(ctx.state["reg_url"], ca_pem=demo_tls().ca_pem)
            try:  # the HSM's signature checked too: issued whole, or not at all
                url = t.read_url(registration).url
            except ApduError as e:
                if e.sw != 0x6985:  # anything but "not issued" is a failed claim
                    raise
                # Torn before issuance completed: not issued at all; issue it again.
                t.issue(registration)
                card.reset()
                t = _terminal(ctx, card)
                ok = t.present_finger(ctx.state["holder"][2])
                url, note = t.read_url(registration).url, " (issued again)"
        issued = url == ctx.state["repo_url"]
        detail = f"finger {'matched' if ok else 'refused'}, URL {url or 'none'}{note}"
    except Exception as e:  # noqa: BLE001 - the claim is that it works
        issued, detail = False, f"{type(e).__name__}: {e}"
    verdicts.append(Verdict("the card stays usable: finger, then the URL", issued, detail))
    if not issued:
        return verdicts
    try:
        t.connect(url)
        again = t.read(CREDENTIAL_ID) == DEMO_CREDENTIAL
        detail = "a new session read the credential"
    except Exception as e:  # noqa: BLE001
        again, detail = False, f"{type(e).__name__}: {e}"
    verdicts.append(Verdict("nothing lost: a new session reads the credential", again, detail))
    return verdicts
