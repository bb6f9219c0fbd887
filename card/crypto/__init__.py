"""The card's cryptography, on `cryptography` (pyca) primitives.

- `rng`: `CardRng`, OS randomness or a seeded SP 800-90A HMAC_DRBG.
- `cmac`: AES-CMAC, raw AES-CBC/ECB, ISO/IEC 9797-1 padding method 2.
- `kdf`: the GlobalPlatform SCP03 KDF and the ANSI X9.63 KDF.
- `milenage`: 3GPP Milenage, the TS 34.108 XOR test algorithm, AKA framing.
- `keys`: `SecretKey`, `EcKeyPair` / `EcPublicKey` (ECDSA, ECDH).
"""
