"""Seed 002: a fingerprint card that unlocks a personal information repository (DESIGN §4.C).

- `card`: the host's session with the repository card applet, and the card's making.
- `hsm`: the registration device and its HSM (issuance, ST11-ST22).
- `server`: the personal information server (credential read ST51-ST65, write ST71-ST83).
"""
