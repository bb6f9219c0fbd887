"""GSMA SGP.22 (remote SIM provisioning, v2.x) on the card side, usable by applets and host.

- `asn1`: the SGP.22 RSPDefinitions and TCA PEDefinitions modules, DER codecs
  (compiled lazily, once per process), decoding untrusted bytes within bounds.
- `der_bounds`: those bounds: the DER structure pre-check, the decode budget and
  the hardened asn1tools loops; `Asn1DecodeError`.
- `bsp`: SCP03t / BSP, the Bound Profile Package protection (§2.6.4, Annex G),
  direction-neutral (the SM-DP+ wraps, the eUICC unwraps).
- `certs`: server certificate checks as the eUICC makes them (§4.5.2), role OIDs.
- `values`: ICCID/EID codings, named-bit BIT STRINGs, raw sub-fields for signatures.
- `ecasd`: the ECASD's Shareable interface (the ISD-R asks it to sign), AIDs.
- `params`: the install parameters of the ECASD (identity, keys, CI keys) and ISD-R.
"""
