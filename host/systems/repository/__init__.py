"""Seed 002: a fingerprint card that unlocks a personal information repository (DESIGN §4.C).

- `card`: the host's session with the repository card applet, and the card's making.
- `hsm`: the registration device and its HSM (issuance, ST11-ST22); `keystore` where
  the HSM keeps its keys (its SQLite store, or a PKCS#11 token such as SoftHSM2).
- `server`: the personal information server (credential read ST51-ST65, write ST71-ST83).
- `pipe`: a server's card exchange carried by the terminal's HTTP polls.
- `terminal`: the counter terminal (and the holder's terminal at issuance).
- `scenario`: `cardemu scenario repository`; `demo`: the seeded demo PKI.
"""
