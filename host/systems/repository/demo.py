"""The system's demo set-up: one root certifying card, HSM and repository, derived from a seed.

`cardemu server repository|registration --demo-seed N` and the scenario derive
the same keys from the same seed, so the roles can run as separate processes
without a key exchange of their own. A real deployment gives each role its own
key and certificate; these are test keys and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.sm.cvc import issue_cvc

__all__ = ["DemoPki", "demo_pki", "DEMO_CREDENTIAL", "TERMINAL_ID"]

TERMINAL_ID = "counter-1"
#: What the holder's repository holds for the scenario's read.
DEMO_CREDENTIAL = b'{"qualification": "account opening", "holder": "H. Sato", "born": 1950}'


@dataclass(frozen=True)
class DemoPki:
    """The root and the keys of the parties it certifies (CV certificates, card.sm.cvc)."""

    root: EcKeyPair
    hsm: EcKeyPair
    hsm_cert: bytes
    repository: EcKeyPair
    repository_cert: bytes
    terminal: EcKeyPair


def demo_pki(seed: int = 0) -> DemoPki:
    """The demo PKI of `seed` (the same keys in every process)."""
    rng = CardRng(b"seed002-pki" + seed.to_bytes(8, "big", signed=True))
    root, hsm, repo, terminal = (EcKeyPair.generate(P256, rng) for _ in range(4))
    return DemoPki(
        root,
        hsm,
        issue_cvc(root.cryptography_key, b"ROOT", b"HSM-01", hsm.public),
        repo,
        issue_cvc(root.cryptography_key, b"ROOT", b"REP-01", repo.public),
        terminal,
    )
