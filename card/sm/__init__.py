"""ISO/IEC 7816-4 secure messaging, card side and host side alike.

- `codec`: the SM data objects (87/85, 97, 99, 8E), the send sequence counter,
  and the two cipher suites: 3DES with the retail MAC (ICAO Doc 9303 Part 11
  §9.8, "BAC" style) and AES with the SSC-derived IV and CMAC (ICAO 9303-11
  §9.8, BSI TR-03110). One `SmSession` per end and per session.
- `kdf`: ICAO 9303-11 §9.7.1 key derivation, the BAC key seed, DES parity.
- `bac`: the BAC mutual authentication computations (ICAO 9303-11 §9.7.2).
- `cvc`: a small card-verifiable certificate (BSI TR-03110-3 Appendix C shape).
- `auth`: certificate-based mutual authentication with ephemeral ECDH, in the
  manner of TR-03110 terminal and chip authentication, ending in an AES session.
- `applet`: `SmApplet`, the base of applets that unwrap SM themselves (the
  runtime hands them CLA 0C commands: `Applet.secure_messaging`).
"""
