"""GSMA SGP.22 (remote SIM provisioning, v2.x) on the card side, usable by applets and host.

- `asn1`: the SGP.22 RSPDefinitions and TCA PEDefinitions modules, DER codecs
  (compiled lazily, once per process).
- `bsp`: SCP03t / BSP, the Bound Profile Package protection (§2.6.4, Annex G),
  direction-neutral (the SM-DP+ wraps, the eUICC unwraps).
"""
