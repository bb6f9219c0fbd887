"""RSA key generation from the card's RNG (FIPS 186-4 §B.3.3, probable primes).

`cryptography`'s own RSA generation draws from OpenSSL's generator, which a
test cannot seed; here every random bit (prime candidates and Miller-Rabin
bases) comes from a `CardRng`, so a seeded card generates the same key pair
every time. Each prime candidate is `nlen/2` random bits with the two top bits
and the low bit set (so p, q >= sqrt(2) * 2^(nlen/2 - 1), §B.3.3 step 4.4, and
n has exactly nlen bits); candidates sharing a factor with a small prime or
with e - 1 dividing p - 1 are skipped, the rest get the Miller-Rabin rounds of
FIPS 186-4 Table C.3 (error probability 2^-100). |p - q| must exceed
2^(nlen/2 - 100) (§B.3.3 step 5.4). The key is then built from (p, q, e) with
the CRT values, and `cryptography` checks it.
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives.asymmetric import rsa

from card.crypto.rng import CardRng

__all__ = ["generate_rsa", "rsa_from_primes", "is_probable_prime", "SUPPORTED_RSA_BITS"]

SUPPORTED_RSA_BITS = (1024, 2048, 3072, 4096)
_DEFAULT_E = 65537


def _small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return [i for i in range(limit) if sieve[i]]


_SMALL = _small_primes(4096)
_SMALL_PRODUCT = math.prod(_SMALL[1:])  # odd primes only: candidates are odd


def _mr_rounds(bits: int) -> int:
    """FIPS 186-4 Table C.3: Miller-Rabin rounds for error 2^-100 on a prime of `bits`."""
    if bits >= 1536:
        return 4
    if bits >= 1024:
        return 5
    return 40


def is_probable_prime(n: int, rng: CardRng, rounds: int | None = None) -> bool:
    """Trial division by small primes, then Miller-Rabin with random bases (FIPS 186-4 §C.3.1)."""
    if n < 2:
        return False
    for p in _SMALL[:60]:
        if n == p:
            return True
        if n % p == 0:
            return False
    if n < _SMALL[-1] ** 2:
        return all(n % p for p in _SMALL if p * p <= n)
    d, s = n - 1, 0
    while not d & 1:
        d >>= 1
        s += 1
    for _ in range(rounds if rounds is not None else _mr_rounds(n.bit_length())):
        a = rng.randint(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int, rng: CardRng) -> int:
    nbytes = (bits + 7) // 8
    top = (1 << (bits - 1)) | (1 << (bits - 2))
    mask = (1 << bits) - 1
    while True:
        c = (int.from_bytes(rng.random(nbytes), "big") & mask) | top | 1
        if math.gcd(c, _SMALL_PRODUCT) != 1 or math.gcd(c - 1, e) != 1:
            continue
        if is_probable_prime(c, rng):
            return c


def rsa_from_primes(p: int, q: int, e: int = _DEFAULT_E) -> rsa.RSAPrivateKey:
    """The private key of (p, q, e), with d = e^-1 mod lcm(p-1, q-1) and the CRT values."""
    if p == q:
        raise ValueError("p and q must differ")
    if q > p:
        p, q = q, p
    lam = math.lcm(p - 1, q - 1)
    d = pow(e, -1, lam)
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return numbers.private_key()


def generate_rsa(bits: int, rng: CardRng, e: int = _DEFAULT_E) -> rsa.RSAPrivateKey:
    """An RSA key pair of `bits` (1024/2048/3072/4096) from the card RNG.

    Raises:
        ValueError: an unsupported size or an even or small e.
    """
    if bits not in SUPPORTED_RSA_BITS:
        raise ValueError(f"RSA-{bits} is not supported ({SUPPORTED_RSA_BITS})")
    if e < 3 or not e & 1:
        raise ValueError("e must be odd and at least 3")
    half = bits // 2
    while True:
        p = _prime(half, e, rng)
        q = _prime(half, e, rng)
        if abs(p - q) > 1 << (half - 100):
            return rsa_from_primes(p, q, e)
