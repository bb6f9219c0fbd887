"""Fuzzing the PIV applet: its profile reaches every state (PIN, management key, keys), a
campaign is clean, and the private-key oracle catches a planted leak of part of a scalar."""

from __future__ import annotations

from dataclasses import replace

from applets.piv import PIV_AID, PivApplet
from card.framework import APDU
from card.runtime import CardRuntime
from host.fuzz import oracles as o
from host.fuzz.engine import FuzzConfig, Fuzzer
from host.fuzz.targets import builtin_profiles, card_target, preset_target


def test_piv_campaign_is_clean_and_enters_every_state() -> None:
    target = preset_target("piv").only(["piv"])
    report = Fuzzer(target, FuzzConfig(seed=5, budget=2500)).run()
    assert report.findings == [], report.text()
    (piv,) = report.applets
    assert piv.name == "piv"
    for state in ("pin", "admin", "keys"):
        assert piv.states[state] > 0, (state, piv.states)


class LeakyPiv(PivApplet):
    """A planted bug: GET DATA (CA) answers 24 bytes from the middle of a private key."""

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        if apdu.ins == 0xCA:
            for ref in (0x9A, 0x9C, 0x9E):
                record = self._record(ref)
                if record is not None:
                    return b"\x01\x02" + record.private[0][4:28]
        return super().process_plain(apdu, protected=protected)


def test_the_oracle_catches_a_partial_leak_of_a_piv_key() -> None:
    def personalise(rt: CardRuntime) -> None:
        rt.install(LeakyPiv, PIV_AID, default=True)

    profile = next(p for p in builtin_profiles() if p.name == "piv")
    profile = replace(profile, corpus=(*profile.corpus, bytes.fromhex("00CA010100")))
    target = card_target("leaky-piv", personalise, profiles=[profile], extra_classes=[LeakyPiv])
    report = Fuzzer(target, FuzzConfig(seed=1, budget=3000, minimise_seconds=10)).run()
    found = {f.violation.oracle for f in report.findings}
    assert o.NO_SECRET in found, report.text()
