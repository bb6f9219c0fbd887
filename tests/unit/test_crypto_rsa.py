"""card.crypto.rsa: RSA key pairs from the card RNG, reproducible from a seed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card.crypto.rng import CardRng
from card.crypto.rsa import generate_rsa, is_probable_prime, rsa_from_primes


def test_the_same_seed_gives_the_same_key_and_another_seed_another() -> None:
    a = generate_rsa(1024, CardRng(5)).private_numbers()
    b = generate_rsa(1024, CardRng(5)).private_numbers()
    c = generate_rsa(1024, CardRng(6)).private_numbers()
    assert a == b
    assert a.public_numbers.n != c.public_numbers.n


def test_a_generated_key_has_the_size_asked_and_works() -> None:
    key = generate_rsa(2048, CardRng(1))
    nums = key.private_numbers()
    assert key.key_size == 2048 and nums.public_numbers.e == 65537
    # FIPS 186-4 §B.3.3: both primes at least sqrt(2) * 2^1023, and far apart.
    assert min(nums.p, nums.q) > (1 << 1023) * 14142 // 10000
    assert abs(nums.p - nums.q) > 1 << (1024 - 100)
    sig = key.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_miller_rabin_against_known_numbers() -> None:
    rng = CardRng(1)
    assert sum(is_probable_prime(n, rng) for n in range(10_000)) == 1229
    # Carmichael numbers and a strong pseudoprime to base 2 are composite.
    for n in (561, 41041, 825265, 3215031751, 2047):
        assert not is_probable_prime(n, rng)
    assert is_probable_prime((1 << 127) - 1, rng)  # a Mersenne prime
    assert not is_probable_prime((1 << 128) + 1, rng)


def test_refusals() -> None:
    with pytest.raises(ValueError):
        generate_rsa(1000, CardRng(1))
    with pytest.raises(ValueError):
        generate_rsa(2048, CardRng(1), e=4)
    with pytest.raises(ValueError):
        rsa_from_primes(61, 61)
