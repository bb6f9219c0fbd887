"""The server roles beyond the SM-DP+/SM-DS/ES2+ on a PostgreSQL store.

Each case makes a role (or a system's roles) on an empty PostgreSQL database
and runs its main request path, as the role's own tests do on SQLite (the same
`check_*` functions): the SQL each role writes in SQLite's dialect must run on
PostgreSQL too (`host.servers.pgstore`). Two processes of one role share a
database on PostgreSQL; the read-modify-write checks below run two stores on
it at once and count what was handed out.

One cluster for the module (the session's `pg_server`); skipped, with the
reason, when PostgreSQL or psycopg is missing (`pg_fixtures`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from pg_fixtures import PgServer, pg_server, pg_url  # noqa: F401 - fixtures

from card.uicc.builder import TEST_IMSI, TEST_K, TEST_OPC
from host.servers.smsc import SCHEMA as SMSC_SCHEMA
from host.servers.smsc import Smsc
from host.servers.web import Store
from host.systems.profile_move.auc import Auc
from host.systems.profile_move.manager import ProfileManager
from host.systems.profile_move.pki import ese_id_of
from host.systems.profile_move.resolver import Resolver
from tests.unit import test_doorlock_ams as doorlock
from tests.unit import test_ekyc_system as ekyc
from tests.unit import test_profile_move_roles as move
from tests.unit import test_repository_system as repository


def _smsc(url: str) -> None:
    smsc = Smsc(Store(url, SMSC_SCHEMA))
    first = smsc.submit("12345", "+491701234567", b"\x02\x70\x00abc")
    second = smsc.submit("12345", "+491701234567", b"def")
    assert second > first >= 1  # the identity column numbers them
    got = smsc.take_inbox("+491701234567")
    assert [m.user_data for m in got] == [b"\x02\x70\x00abc", b"def"]
    assert smsc.take_inbox("+491701234567") == []  # delivered once
    smsc.store.close()


def _doorlock_ams(url: str) -> None:
    world = doorlock.World(store=url)
    try:
        doorlock.check_request_installs(world)
    finally:
        world.ams.close()


def _resolver(url: str) -> None:
    r = Resolver(url)
    r.register_manager("aa01", "https://m1", "cert-1")
    r.register_manager("AA01", "https://m2", "cert-2")  # again: replaced
    r.register_provider("mno-1", "https://p1")
    assert r.manager({}, "AA01") == {"url": "https://m2", "certificate": "cert-2"}
    assert r.provider({}, "mno-1") == {"url": "https://p1"}
    r.close()


def _manager(url: str) -> None:
    move.check_manager_orders(url)
    m = ProfileManager(url, (ese_id_of(1).hex(),), push=lambda o: None)
    body = {"request_id": "r1", "source_ese": ese_id_of(1).hex(), "target_ese": "BB",
            "iccid": "8988210000000000012", "mno": "mno-1"}  # fmt: skip
    assert m.request_move(body)["state"] == "accepted"
    assert m.request_move(body)["state"] == "accepted"  # again: kept once
    assert len(m.store.query("SELECT request_id FROM requests")) == 1
    m.close()


ROLES: dict[str, Callable[[str], None]] = {
    "doorlock-ams": _doorlock_ams,
    "smsc": _smsc,
    "repository+registration-hsm": repository.check_issuance_read_and_write,
    "profile-move-provider": move.check_provider_moves_once,
    "profile-move-manager": _manager,
    "profile-move-mno": move.check_mno_authenticates,
    "profile-move-auc": move.check_auc_k_update,
    "profile-move-resolver": _resolver,
}


@pytest.fixture
def db(request: pytest.FixtureRequest) -> str:
    """An empty PostgreSQL database (`pg_fixtures.pg_url`)."""
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_main_path_on_postgresql(role: str, db: str) -> None:
    ROLES[role](db)


def test_ekyc_auth_relay_and_management_on_postgresql(request: pytest.FixtureRequest) -> None:
    """Each eKYC role on its own database (the management servers carry an SM-DP+ each)."""
    server: PgServer = request.getfixturevalue("pg_server")
    stores = {name: server.database(f"ekyc_{name}") for name in ekyc.ROLES}
    with ekyc.open_world(stores) as world:
        ekyc.check_first_then_later_contract(world)
        (app,) = world.roles["mgmt1"].logic.applications()
        assert app["kind"] == "first" and app["event_registered"]


# -- read-modify-write under two processes -----------------------------------------------------


def _at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i < n on n threads started together; what each returned or raised."""
    out: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = work(i)
        except Exception as e:  # noqa: BLE001 - the caller counts refusals
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_aucs_on_one_database_never_reuse_a_sequence_number(db: str) -> None:
    """TS 33.102 §6.3.2: each vector a fresh SQN; two AuC processes read and bump `seq`
    under a row lock (`FOR UPDATE`), so none is handed out twice."""
    aucs = [Auc(db, move.PKI.k4) for _ in range(2)]
    aucs[0].provision(TEST_IMSI, TEST_K, TEST_OPC)
    _at_once(2, lambda i: [aucs[i].vectors({"imsi": TEST_IMSI}) for _ in range(10)])
    row = aucs[0].store.query_one("SELECT seq FROM subscribers WHERE imsi = ?", (TEST_IMSI,))
    assert row is not None and row["seq"] == 1 + 20  # no lost update
    for a in aucs:
        a.close()


def test_a_move_request_sent_twice_at_once_makes_one_move_on_postgresql(db: str) -> None:
    """Two provider processes take one request ID at once: one move, the same answer twice
    (the second used to hit the UNIQUE constraint and answer 500)."""
    move.check_provider_move_request_race(db)


def test_a_k_update_sent_twice_at_once_switches_once_on_postgresql(db: str) -> None:
    """Two AuC processes take one move's K update at once: one switch, "switched" twice."""
    move.check_auc_k_update_race(db)


def test_two_smscs_on_one_database_deliver_each_message_once(db: str) -> None:
    """Two SMSC processes polled at once for one inbox: every message to exactly one poll."""
    smscs = [Smsc(Store(db, SMSC_SCHEMA)) for _ in range(2)]
    for n in range(20):
        smscs[n % 2].submit("12345", "+491701234567", bytes([n]))
    got = _at_once(2, lambda i: smscs[i].take_inbox("+491701234567"))
    ids = [m.id for polled in got for m in polled]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 20
    for s in smscs:
        s.store.close()


def test_an_ekyc_store_made_before_seq_keeps_its_applications_order() -> None:
    """An SQLite file from before `seq` (listed by rowid then) gets the column, in rowid order."""
    from host.systems.ekyc import mgmt

    old = mgmt._SCHEMA.replace(",\n    seq INTEGER", "")
    store = Store(":memory:", old)
    assert "seq" not in store.columns("applications")
    for app_id in ("B", "A"):
        store.apply_schema(
            "INSERT INTO applications (id, plan, customer, challenge, state, updated)"
            f" VALUES ('{app_id}', 'p', '{{}}', x'00', 'applied', 0)"
        )
    mgmt._migrate(store)
    rows = store.query("SELECT id FROM applications ORDER BY seq, id")
    assert [r["id"] for r in rows] == ["B", "A"]


def test_next_seq_waits_for_a_transaction_holding_a_number(db: str) -> None:
    """`Store.next_seq` on PostgreSQL: a second process asking while the first's transaction
    holds a number waits and counts on from it (with `MAX(seq) + 1` both got 1)."""
    from host.servers.web import SEQ_SCHEMA

    schema = "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, seq INTEGER);" + SEQ_SCHEMA
    first, second = Store(db, schema), Store(db, schema)
    got: list[int] = []
    asked = threading.Event()

    def other() -> None:
        with second.transaction() as c:
            asked.set()
            n = second.next_seq(c, "t")
            c.execute("INSERT INTO t (id, seq) VALUES ('b', ?)", (n,))
        got.append(n)

    with first.transaction() as c:
        n = first.next_seq(c, "t")
        c.execute("INSERT INTO t (id, seq) VALUES ('a', ?)", (n,))
        thread = threading.Thread(target=other)
        thread.start()
        asked.wait(10)
        thread.join(0.5)
        assert thread.is_alive()  # waiting on the counter's row lock
    thread.join(10)
    assert (n, got) == (1, [2])
    with pytest.raises(ValueError):
        with first.transaction() as c:
            first.next_seq(c, "t; DROP TABLE t")
    first.close()
    second.close()


def test_two_managers_taking_orders_at_once_number_each_once(db: str) -> None:
    """Two profile-manager processes queue orders at once: every order its own `seq`, so the
    terminal's `pending` list has one order (its first queued) and never a tie."""
    managers = [ProfileManager(db, (ese_id_of(1).hex(),), push=lambda o: None) for _ in range(2)]

    def queue(i: int) -> None:
        for n in range(15):
            managers[i].order({"order_id": f"o{i}-{n}", "move_id": "m", "kind": "backup",
                               "ese_id": ese_id_of(1).hex(), "callback": "https://p",
                               "args": {}})  # fmt: skip

    _at_once(2, queue)
    seqs = [r["seq"] for r in managers[0].store.query("SELECT seq FROM orders")]
    assert sorted(seqs) == list(range(1, 31))
    for m in managers:
        m.close()


def test_a_cluster_left_by_a_killed_test_run_is_stopped_and_removed(
    request: pytest.FixtureRequest,
) -> None:
    """A test run SIGKILLed with its cluster up: the next run's `PgServer` stops that postgres
    and deletes its directory; the session's own cluster (its run alive) is left alone."""
    session: PgServer = request.getfixturevalue("pg_server")  # skips without PostgreSQL
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    child = textwrap.dedent(
        """
        import sys, time
        sys.path.insert(0, "tests/unit")
        import pg_fixtures
        s = pg_fixtures.PgServer()
        print(s.tmp, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    orphan = Path(proc.stdout.readline().strip())
    pid_file = orphan / "data" / "postmaster.pid"
    assert pid_file.exists()
    postmaster = int(pid_file.read_text().split()[0])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    os.kill(postmaster, 0)  # still running: nobody stopped it
    PgServer().stop()  # the next run's server sweeps
    assert not orphan.exists()
    assert (session.data / "postmaster.pid").exists()  # alive owner: kept
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(postmaster, 0)
            threading.Event().wait(0.05)


def test_the_sweep_never_signals_a_pid_reused_since(request: pytest.FixtureRequest) -> None:
    """An orphaned cluster whose `postmaster.pid` names a pid now used by another process
    (here: this test's own) is deleted without `pg_ctl stop`, which would SIGQUIT that pid."""
    import os
    import tempfile
    from pathlib import Path

    request.getfixturevalue("pg_server")  # skips without PostgreSQL
    orphan = Path(tempfile.mkdtemp(prefix="cardemu-pg-"))
    (orphan / "owner").write_text("1\n")  # nobody holds its lock
    (orphan / "data").mkdir()
    (orphan / "data" / "PG_VERSION").write_text("15\n")  # pg_ctl would take it for a cluster
    (orphan / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n{orphan / 'data'}\n")
    PgServer().stop()
    assert not orphan.exists()  # and this process is still here to say so
