"""Fuzzing the keypair applet: its profile reaches every state (PIN, keys, SM), a campaign is
clean, and the private-key oracle catches a planted leak of a few bytes of a scalar."""

from __future__ import annotations

from dataclasses import replace

from applets.keypair import KEYPAIR_AID, KeyPairApplet
from card.framework import APDU
from card.runtime import CardRuntime
from host.fuzz import oracles as o
from host.fuzz.engine import FuzzConfig, Fuzzer
from host.fuzz.targets import builtin_profiles, card_target, preset_target


def test_keypair_campaign_is_clean_and_enters_every_state() -> None:
    target = preset_target("keypair").only(["keypair"])
    report = Fuzzer(target, FuzzConfig(seed=4, budget=3000)).run()
    assert report.findings == [], report.text()
    (kp,) = report.applets
    assert kp.name == "keypair"
    for state in ("pin", "keys", "sm"):
        assert kp.states[state] > 0, (state, kp.states)


class LeakyKeyPair(KeyPairApplet):
    """A planted bug: GET DATA (CA) answers 24 bytes from the middle of the first key."""

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        if apdu.ins == 0xCA:
            for ref in (*range(1, 17), 0x81):
                record = self._record(ref)
                if record is not None:
                    return b"\x01\x02" + record.private[0][4:28]
        return super().process_plain(apdu, protected=protected)


def test_the_oracle_catches_a_partial_leak_of_a_private_key() -> None:
    def personalise(rt: CardRuntime) -> None:
        rt.install(LeakyKeyPair, KEYPAIR_AID, default=True)

    # The built-in profile, its corpus given one GET DATA to mutate from (the sweep would
    # reach INS CA only after some ten thousand commands).
    profile = next(p for p in builtin_profiles() if p.name == "keypair")
    profile = replace(profile, corpus=(*profile.corpus, bytes.fromhex("00CA010100")))
    target = card_target(
        "leaky-keypair", personalise, profiles=[profile], extra_classes=[LeakyKeyPair]
    )
    report = Fuzzer(target, FuzzConfig(seed=1, budget=4000, minimise_seconds=10)).run()
    found = {f.violation.oracle for f in report.findings}
    assert o.NO_SECRET in found, report.text()
    leak = next(f for f in report.findings if f.violation.oracle == o.NO_SECRET)
    assert "private part" in leak.violation.message
