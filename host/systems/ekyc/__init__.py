"""Seed 000: eKYC once, eSIM profiles from every carrier after (JP 7639532 B2).

- `proofs`: what the parties sign and check: the card's local-authentication
  result (over EID, challenge, outcome) and the authentication server's
  certificate (its signature over the EID, its key certified by a CA).
- `verifier`: identity verification from a document record and ID photo data
  (pluggable; the built-in one simulates an eKYC vendor), and the terminal's capture.
- `auth`: the authentication server (eKYC): verifies identity, issues and keeps
  its certificate under the data-acquisition key.
- `mgmt`: a carrier's management server on the SM-DP+: contracts, local-auth
  and certificate checks, profile orders, SM-DS events.
- `relay`: the relay server: cardemu's SM-DS (`host.servers.smds`, ES11/ES12), extended
  to claim data-acquisition keys and hand over the authentication server's certificate
  on a first contract.
- `card`, `terminal`: the host session with the local-authentication applet; the
  phone (LPA + contract application).
- `demo`: the seeded demo keys, carriers and user; `scenario`: `cardemu scenario ekyc`.
"""
