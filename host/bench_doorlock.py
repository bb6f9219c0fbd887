"""Seed 001's claim, measured: unlocking on the chips beside one round trip to a remote server.

`cardemu bench --doorlock` sets up the scenario's parts in this process (the
lock's SIM and a phone's SIM, installed and personalised by the application
management server over SCP03) and times, round after round, interleaved so
that every figure sees the same machine load:

- "offline, method 01 / 02": presentation to decision on the in-process
  cards: the lock chip's challenge, the phone's host asking its chip, the
  lock's chip collating (the `LockController.ask` + `collate` path the door
  uses, the short-range link in-process);
- "remote, keep-alive": one remote-authentication round trip, the
  alternative the seed sets out to remove: the lock posts the phone's answer
  to an authentication server over HTTPS on loopback (Starlette/uvicorn, one
  kept-alive TLS connection) and the server checks it (AES-CMAC under the door
  key) and answers;
- "remote, new connection": the same with a TLS handshake per unlock.

Loopback has no radio, no operator core and no distance: a mobile network
adds tens of milliseconds to every remote round trip, so the ratios printed
are the least the seed's design saves. Each ratio is given with its spread
(median, and the 10th-90th percentile of the per-round ratios).
Figures, never assertions.
"""

from __future__ import annotations

import http.client
import json
import ssl
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DoorlockBenchReport", "run_doorlock_benchmark"]

OFFLINE = ("offline, method 01 (shared key)", "offline, method 02 (certificates)")
REMOTE = ("remote, keep-alive", "remote, new connection")


def _percentile(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    if not ys:
        return 0.0
    return ys[min(len(ys) - 1, int(round(p / 100 * (len(ys) - 1))))]


@dataclass
class Figure:
    name: str
    seconds: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        ms = [s * 1000 for s in self.seconds]
        return {
            "name": self.name,
            "n": len(ms),
            "median_ms": round(statistics.median(ms), 3) if ms else None,
            "p10_ms": round(_percentile(ms, 10), 3),
            "p90_ms": round(_percentile(ms, 90), 3),
        }


@dataclass
class DoorlockBenchReport:
    rounds: int
    figures: dict[str, Figure]

    def ratio(self, remote: str, offline: str) -> dict[str, float]:
        """remote / offline per round: median and 10th-90th percentiles."""
        pairs = zip(self.figures[remote].seconds, self.figures[offline].seconds, strict=True)
        rs = [r / o for r, o in pairs]
        return {
            "median": round(statistics.median(rs), 2),
            "p10": round(_percentile(rs, 10), 2),
            "p90": round(_percentile(rs, 90), 2),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "figures": [f.to_json() for f in self.figures.values()],
            "ratios": {f"{r} / {o}": self.ratio(r, o) for r in REMOTE for o in OFFLINE},
        }

    def lines(self) -> list[str]:
        out = [f"door-lock unlock latency, {self.rounds} interleaved rounds (in-process cards)"]
        for f in self.figures.values():
            j = f.to_json()
            out.append(
                f"  {f.name:<36} median {j['median_ms']:8.2f} ms   "
                f"p10 {j['p10_ms']:8.2f}   p90 {j['p90_ms']:8.2f}"
            )
        out.append("remote round trip / offline unlock (median, p10-p90 of per-round ratios):")
        for r in REMOTE:
            for o in OFFLINE:
                x = self.ratio(r, o)
                out.append(f"  {r} / {o}: {x['median']:.2f} ({x['p10']:.2f}-{x['p90']:.2f})")
        out.append("(loopback: a mobile network adds tens of ms to each remote round trip)")
        return out


def _remote_server(door_key: bytes) -> Any:
    """An authentication server: checks a phone's shared-key answer to a challenge it is given."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from applets.doorlock.protocol import DIR_KEY, METHOD_SHARED_KEY, auth_input
    from card.crypto.cmac import aes_cmac
    from host.servers.web import json_object, role_app

    async def authenticate(request: Request) -> Response:
        body = await json_object(request)
        signed = auth_input(
            METHOD_SHARED_KEY,
            DIR_KEY,
            bytes.fromhex(body["challenge"]),
            bytes.fromhex(body["phone_challenge"]),
            bytes.fromhex(body["lock"]),
            bytes.fromhex(body["phone"]),
        )
        ok = aes_cmac(door_key, signed).hex() == body["answer"]
        return JSONResponse({"unlock": ok})

    return role_app("remote-auth", [Route("/authenticate", authenticate, methods=["POST"])])


def run_doorlock_benchmark(
    rounds: int = 200, *, progress: Callable[[str], None] | None = None
) -> DoorlockBenchReport:
    """Time offline unlocks with each method beside remote round trips, interleaved."""
    from card import tlv
    from card.crypto.rng import CardRng
    from host.readers.inprocess import InProcessReader
    from host.servers.web import RoleServer
    from host.systems.doorlock.ams import AppManagementServer
    from host.systems.doorlock.card import make_sim
    from host.systems.doorlock.delivery import DirectGpDelivery
    from host.systems.doorlock.scenario import IMEIS, LOCK_MAC, sim_identity
    from host.systems.doorlock.terminal import InProcessLink, LockController, PhoneHost
    from host.systems.repository.demo import demo_tls

    lock_rt, phone_rt = (
        make_sim(sim_identity(100), rng_seed=1),
        make_sim(sim_identity(201), rng_seed=2),
    )
    delivery = DirectGpDelivery(
        {"lock": lambda: InProcessReader(lock_rt), "phone": lambda: InProcessReader(phone_rt)}
    )
    ams = AppManagementServer(":memory:", delivery, rng=CardRng(1))
    ams.register_lock("lock", mac=LOCK_MAC, sim=sim_identity(100))
    ams.register_phone("phone", imei=IMEIS["phone-1"], sim=sim_identity(201))
    if not ams.provision_lock("lock", force=True).receipt.ok:
        raise RuntimeError("the lock's SIM could not be provisioned")
    if not ams.enrol_phone("phone", "lock").receipt.ok:
        raise RuntimeError("the phone's SIM could not be enrolled")
    door_key = ams.device("lock")["door_key"]  # type: ignore[index]
    controller = LockController(InProcessReader(lock_rt))
    phone = PhoneHost(InProcessReader(phone_rt), imei=IMEIS["phone-1"])
    link = InProcessLink(phone)

    figures = {name: Figure(name) for name in (*OFFLINE, *REMOTE)}

    def offline(method: int) -> float:
        t0 = time.perf_counter()
        reply = controller.ask(link, method)
        decision = controller.card.collate(method, reply)
        elapsed = time.perf_counter() - t0
        if not decision.unlock:
            raise RuntimeError(f"the benchmark's phone was refused: {decision.reason}")
        link.exchange(tlv.build(0xE3, [(0x80, b"\x01")]), "verdict")  # closes the phone's channel
        return elapsed

    # What the lock would send a remote server: a real answer of the phone's chip.
    reply = controller.ask(link, 1)
    controller.card.collate(1, reply)
    link.exchange(tlv.build(0xE3, [(0x80, b"\x01")]), "verdict")
    items = {c.tag: c.value for c in tlv.Tlv.from_bytes(reply).children}
    tls = demo_tls()
    client_ctx = ssl.create_default_context(cadata=tls.ca_pem.decode())
    with RoleServer(_remote_server(door_key), tls=tls.server, name="remote-auth") as server:
        challenge = bytes(16)  # the server's challenge (its issuance is not timed)
        from applets.doorlock.protocol import DIR_KEY, auth_input
        from card.crypto.cmac import aes_cmac

        answer = aes_cmac(
            door_key, auth_input(1, DIR_KEY, challenge, items[0x81], b"lock", items[0x5F20])
        )
        body = json.dumps(
            {
                "challenge": challenge.hex(),
                "phone_challenge": items[0x81].hex(),
                "lock": b"lock".hex(),
                "phone": items[0x5F20].hex(),
                "answer": answer.hex(),
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        kept = http.client.HTTPSConnection("127.0.0.1", server.port, context=client_ctx)

        def remote(conn: http.client.HTTPSConnection) -> float:
            t0 = time.perf_counter()
            conn.request("POST", "/authenticate", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            elapsed = time.perf_counter() - t0
            if resp.status != 200 or not json.loads(data)["unlock"]:
                raise RuntimeError(f"the remote server said {resp.status} {data!r}")
            return elapsed

        def remote_new() -> float:
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=client_ctx)
            try:
                return remote(conn)
            finally:
                conn.close()

        try:
            for _ in range(3):
                offline(1), offline(2), remote(kept), remote_new()
            for n in range(rounds):
                figures[OFFLINE[0]].seconds.append(offline(1))
                figures[REMOTE[0]].seconds.append(remote(kept))
                figures[OFFLINE[1]].seconds.append(offline(2))
                figures[REMOTE[1]].seconds.append(remote_new())
                if progress is not None and (n + 1) % 50 == 0:
                    progress(f"{n + 1}/{rounds} rounds")
        finally:
            kept.close()
    ams.close()
    return DoorlockBenchReport(rounds, figures)
