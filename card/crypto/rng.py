"""The card's random number generator.

An unseeded `CardRng` reads the operating system's CSPRNG (`os.urandom`). A
seeded one runs HMAC_DRBG with SHA-256 (NIST SP 800-90A Rev. 1 §10.1.2, no
prediction resistance, no additional input), so that a test or a script can
replay a card run byte for byte. A seeded generator is a reproducibility tool,
not an entropy source: its output is only as secret as its seed.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, hmac

__all__ = ["CardRng", "HmacDrbg", "DrbgError"]

_OUTLEN = 32  # SHA-256 output length in bytes (SP 800-90A Table 2)
# SP 800-90A Table 2: at most 2**19 bits per generate request.
_MAX_REQUEST_BYTES = 2**19 // 8
# SP 800-90A Table 2: reseed_interval for HMAC_DRBG is at most 2**48 requests.
_RESEED_INTERVAL = 2**48
# A seeded CardRng asks the DRBG for this many bytes at a time and serves small
# requests (8-byte challenges on APDU paths) from the buffer: one generate call
# costs two HMAC re-keyings whatever its size.
_BLOCK = 1024


class DrbgError(Exception):
    """The DRBG was asked for something SP 800-90A forbids."""


class HmacDrbg:
    """HMAC_DRBG with SHA-256, NIST SP 800-90A Rev. 1 §10.1.2.

    Implements Instantiate (§10.1.2.3), Reseed (§10.1.2.4) and Generate
    (§10.1.2.5) with the Update function of §10.1.2.2. Prediction resistance
    is not supported (nothing here can fetch fresh entropy on its own).
    """

    __slots__ = ("_key", "_mac", "_v", "_reseed_counter")

    def __init__(
        self, entropy_input: bytes, nonce: bytes = b"", personalization: bytes = b""
    ) -> None:
        self._key = b"\x00" * _OUTLEN
        self._v = b"\x01" * _OUTLEN
        self._mac = hmac.HMAC(self._key, hashes.SHA256())
        self._update(entropy_input + nonce + personalization)
        self._reseed_counter = 1

    def _hmac(self, data: bytes) -> bytes:
        # Copying a keyed context skips the HMAC key schedule on every block.
        h = self._mac.copy()
        h.update(data)
        return h.finalize()

    def _rekey(self, key: bytes) -> None:
        self._key = key
        self._mac = hmac.HMAC(key, hashes.SHA256())

    def _update(self, provided_data: bytes) -> None:
        """HMAC_DRBG_Update, SP 800-90A §10.1.2.2."""
        self._rekey(self._hmac(self._v + b"\x00" + provided_data))
        self._v = self._hmac(self._v)
        if not provided_data:
            return
        self._rekey(self._hmac(self._v + b"\x01" + provided_data))
        self._v = self._hmac(self._v)

    def reseed(self, entropy_input: bytes, additional_input: bytes = b"") -> None:
        """Reseed, SP 800-90A §10.1.2.4."""
        self._update(entropy_input + additional_input)
        self._reseed_counter = 1

    def generate(self, n: int, additional_input: bytes = b"") -> bytes:
        """Generate `n` bytes, SP 800-90A §10.1.2.5.

        Raises:
            DrbgError: `n` is over the per-request limit, or a reseed is due.
        """
        if n < 0 or n > _MAX_REQUEST_BYTES:
            raise DrbgError(f"request of {n} bytes outside 0..{_MAX_REQUEST_BYTES}")
        if self._reseed_counter > _RESEED_INTERVAL:
            raise DrbgError("reseed required")
        if additional_input:
            self._update(additional_input)
        blocks = []
        v = self._v
        for _ in range(-(-n // _OUTLEN)):
            v = self._hmac(v)
            blocks.append(v)
        self._v = v
        self._update(additional_input)
        self._reseed_counter += 1
        return b"".join(blocks)[:n]


def _seed_bytes(seed: bytes | int) -> bytes:
    if isinstance(seed, bool):
        raise TypeError("seed must be bytes or int, not bool")
    if isinstance(seed, int):
        if seed < 0:
            raise ValueError("an integer seed must not be negative")
        return seed.to_bytes(max(1, (seed.bit_length() + 7) // 8), "big")
    if isinstance(seed, (bytes, bytearray, memoryview)):
        return bytes(seed)
    raise TypeError(f"seed must be bytes or int, not {type(seed).__name__}")


class CardRng:
    """The card's RNG: OS randomness, or a reproducible HMAC_DRBG when seeded.

    A seeded generator's output is one stream, the concatenation of HMAC_DRBG
    generate calls of a fixed block size on a DRBG instantiated with
    entropy_input = the seed (an int seed stands for its minimal big-endian
    encoding), an empty nonce and no personalization string. The stream does
    not depend on how it is cut: `random(3) + random(5)` equals `random(8)`.

    Args:
        seed: None for OS randomness; bytes or a non-negative int for a
            deterministic run.
    """

    __slots__ = ("_drbg", "_buf", "_pos", "_preloaded")

    def __init__(self, seed: bytes | int | None = None) -> None:
        self._drbg: HmacDrbg | None = None
        self._buf = b""
        self._pos = 0
        self._preloaded = b""
        self.reseed(seed)

    @property
    def seeded(self) -> bool:
        """True when the output is reproducible from a seed."""
        return self._drbg is not None

    def reseed(self, seed: bytes | int | None) -> None:
        """Restart the generator: from `seed`, or from OS randomness if None.

        After `reseed(s)` the output is exactly that of a fresh `CardRng(s)`,
        whatever was drawn before: a script can put a running card into a known
        state.
        """
        self._drbg = None if seed is None else HmacDrbg(_seed_bytes(seed))
        self._buf = b""
        self._pos = 0
        self._preloaded = b""

    def preload(self, data: bytes) -> None:
        """Serve `data` before anything else, then the generator's own stream.

        A known-answer test hook: a test puts published values (the ephemeral keys of
        TS 33.501 Annex C.4) on the card's own RNG path. Test use only: preloaded
        bytes are not random.
        """
        self._preloaded += bytes(data)

    def random(self, n: int) -> bytes:
        """Return `n` random bytes."""
        if n < 0:
            raise ValueError("n must not be negative")
        if self._preloaded:
            head, self._preloaded = self._preloaded[:n], self._preloaded[n:]
            return head + self.random(n - len(head)) if len(head) < n else head
        drbg = self._drbg
        if drbg is None:
            return os.urandom(n)
        pos = self._pos
        end = pos + n
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        parts = [self._buf[pos:]]
        need = n - (len(self._buf) - pos)
        while need > 0:
            block = drbg.generate(_BLOCK)
            take = min(need, _BLOCK)
            parts.append(block[:take])
            need -= take
            self._buf = block
            self._pos = take
        return b"".join(parts)

    def randint(self, a: int, b: int) -> int:
        """Return a uniformly distributed integer N with a <= N <= b.

        Rejection sampling over the smallest bit width that covers the range,
        so there is no modulo bias.
        """
        if a > b:
            raise ValueError(f"empty range {a}..{b}")
        span = b - a
        if span == 0:
            return a
        bits = span.bit_length()
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            r = int.from_bytes(self.random(nbytes), "big") & mask
            if r <= span:
                return a + r

    def __repr__(self) -> str:
        return f"CardRng(seeded={self.seeded})"
