"""Seed 003's roles as separate processes (`cardemu server move-*`), a move end to end.

The phones poll their managers (`GET /orders`) instead of a push link, each
role's worker runs on its own clock: the FIG. 6 move goes through as it would
between machines, and afterwards only the new phone attaches.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

from card.uicc.builder import sample_profile
from host.readers.inprocess import InProcessReader
from host.systems.profile_move.card import bind, make_ese
from host.systems.profile_move.common import move_ca_pem, new_id
from host.systems.profile_move.pki import DEMO_MNO, demo_pki, ese_id_of
from host.systems.profile_move.scenario import DEMO_PROFILE_ID
from host.systems.profile_move.terminal import Phone
from host.systems.repository.terminal import JsonClient
from host.systems.servers import ServerProcess

PKI = demo_pki(0)
#: the roles serve HTTPS with the demo TLS; clients trust its CA
Client = functools.partial(JsonClient, ca_pem=move_ca_pem())


def test_a_move_between_separate_role_processes(tmp_path: Path) -> None:
    e1, e2 = ese_id_of(1).hex().upper(), ese_id_of(2).hex().upper()
    with contextlib.ExitStack() as stack:

        def start(role: str, *args: str) -> str:
            db = str(tmp_path / f"{role}-{len(list(tmp_path.iterdir()))}.sqlite")
            return stack.enter_context(ServerProcess(role, ["--db", db, *args])).url

        resolver = start("move-resolver")
        auc = start("move-auc", "--demo-subscriber")
        fast = ("--interval", "0.1")
        provider = start("move-provider", "--resolver", resolver, "--auc", auc,
                         "--demo-subscription", *fast)  # fmt: skip
        m1 = start("move-manager", "--ese-id", e1, "--resolver", resolver, *fast)
        m2 = start("move-manager", "--ese-id", e2, "--resolver", resolver, *fast)
        assert all(u.startswith("https://") for u in (resolver, auc, provider, m1, m2))
        directory = Client(resolver)
        directory.request("PUT", f"/providers/{DEMO_MNO}", {"url": provider})
        for ese, url, n in ((e1, m1, 1), (e2, m2, 2)):
            cert = PKI.ese_certificate(n).hex()
            directory.request("PUT", f"/managers/{ese}", {"url": url, "certificate": cert})

        profile = bind(sample_profile(), key=PKI.provider, certificate=PKI.provider_cert,
                       ese_id=ese_id_of(1), profile_id=DEMO_PROFILE_ID)  # fmt: skip
        cards = [make_ese(1, PKI, profile=profile), make_ese(2, PKI)]
        phones = [
            Phone(
                f"t{n}",
                InProcessReader(card),
                power_cycle=card.reset,
                ese_id=ese,
                manager_url=url,
                client=Client,
            )  # fmt: skip
            for n, (card, ese, url) in enumerate(((cards[0], e1, m1), (cards[1], e2, m2)), 1)
        ]
        assert phones[0].attach(auc).attached and not phones[1].attach(auc).attached
        request_id = new_id()
        phones[0].request_move(resolver, request_id, profile.iccid, e2, DEMO_MNO)
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline and state not in ("done", "rolled_back", "aborted"):
            for phone in phones:
                phone.poll()
            move_id = Client(m1).request("GET", f"/move-requests/{request_id}")["move_id"]
            if move_id:
                state = Client(provider).request("GET", f"/moves/{move_id}")["state"]
            time.sleep(0.1)
        assert state == "done"
        assert phones[1].profiles() == [(profile.iccid, False)]
        assert phones[1].activate(profile.iccid)[0]
        assert phones[1].attach(auc).attached
        assert not phones[0].attach(auc).attached
        assert phones[0].profiles() == []


def test_no_tls_serves_plain_http(tmp_path: Path) -> None:
    """`--no-tls`: the escape hatch the other roles have (behind a TLS proxy)."""
    db = str(tmp_path / "resolver.sqlite")
    with ServerProcess("move-resolver", ["--db", db, "--no-tls"]) as srv:
        assert srv.url.startswith("http://")
        JsonClient(srv.url).request("PUT", f"/providers/{DEMO_MNO}", {"url": "http://x"})
        assert JsonClient(srv.url).request("GET", f"/providers/{DEMO_MNO}") == {"url": "http://x"}
