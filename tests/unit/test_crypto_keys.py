"""Key containers: SecretKey check values, EC key pairs, ECDSA encodings, ECDH."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.cmac import aes_ecb_encrypt
from card.crypto.keys import (
    BRAINPOOL_P256R1,
    P256,
    P384,
    EcKeyPair,
    EcPublicKey,
    SecretKey,
    curve_by_name,
    der_to_raw,
    raw_to_der,
)
from card.crypto.rng import CardRng

h = bytes.fromhex

# --- SecretKey -------------------------------------------------------------------


def test_aes_kcv_pysim() -> None:
    # osmocom/pysim tests/unittests/test_globalplatform.py SCP03_KCV_Test, for
    # the KEYSET_AES128 static keys.
    assert SecretKey(h("000102030405060708090a0b0c0d0e0f")).kcv() == h("C35280")
    assert SecretKey(h("101112131415161718191a1b1c1d1e1f")).kcv() == h("013808")
    assert SecretKey(h("202122232425262728292a2b2c2d2e2f")).kcv() == h("840DE5")


def test_aes_kcv_definition() -> None:
    # GP Card Spec Annex B.6: first 3 bytes of AES-ECB(key, 16 x 01).
    key = bytes(range(0x40, 0x60))
    assert SecretKey(key).kcv() == aes_ecb_encrypt(key, b"\x01" * 16)[:3]


def test_des3_kcv_default_gp_key() -> None:
    # The GlobalPlatform default test key 40..4F: a card answering PUT KEY
    # returns KCV 8BAF47 for it (javacardos.com forum "Change GP key" trace,
    # response 01 8BAF47 8BAF47 8BAF47 9000).
    key = h("404142434445464748494A4B4C4D4E4F")
    assert SecretKey(key, "DES3").kcv() == h("8BAF47")
    # Three-key form K1 K2 K1 is the same cipher.
    assert SecretKey(key + key[:8], "DES3").kcv() == h("8BAF47")


def test_hmac_key_has_no_kcv() -> None:
    with pytest.raises(ValueError):
        SecretKey(b"k" * 32, "HMAC").kcv()


def test_secret_key_repr_never_shows_bytes() -> None:
    value = h("000102030405060708090a0b0c0d0e0f")
    for k in (SecretKey(value), SecretKey(value, "DES3"), SecretKey(value, "HMAC")):
        for text in (repr(k), str(k), f"{k}", repr([k]), repr({"key": k})):
            assert value.hex() not in text.lower()
            assert "0001020304" not in text
            assert k.algorithm in text
    assert "C35280" in repr(SecretKey(value))


@pytest.mark.parametrize(
    ("value", "alg"),
    [(bytes(15), "AES"), (bytes(20), "AES"), (bytes(8), "DES3"), (b"", "HMAC"), (bytes(16), "RC4")],
)
def test_secret_key_sizes(value: bytes, alg: str) -> None:
    with pytest.raises(ValueError):
        SecretKey(value, alg)  # type: ignore[arg-type]


def test_secret_key_equality_and_hash() -> None:
    a, b = SecretKey(bytes(16)), SecretKey(bytearray(16))  # type: ignore[arg-type]
    assert a == b and hash(a) == hash(b) and isinstance(b.value, bytes)
    assert SecretKey(bytes(16)) != SecretKey(bytes(16), "HMAC")
    assert SecretKey(bytes(16)) != SecretKey(b"\x01" + bytes(15))
    assert len(a) == 16


def test_secret_key_generate() -> None:
    a = SecretKey.generate("AES", 32, CardRng(5))
    assert a == SecretKey.generate("AES", 32, CardRng(5))
    assert a.value == CardRng(5).random(32)
    assert len(SecretKey.generate("DES3")) == 16
    assert len(SecretKey.generate("HMAC")) == 32
    assert SecretKey.generate() != SecretKey.generate()


# --- Curves ------------------------------------------------------------------------


@pytest.mark.parametrize("curve", [P256, BRAINPOOL_P256R1], ids=lambda c: c.name)
def test_curve_order(curve) -> None:  # type: ignore[no-untyped-def]
    # (n-1)G = -G: same x, y negated. A wrong order constant breaks this.
    g = EcKeyPair.from_private_value(curve, 1).public.to_point()
    minus_g = EcKeyPair.from_private_value(curve, curve.order - 1).public.to_point()
    assert minus_g[1:33] == g[1:33] and minus_g != g
    with pytest.raises(ValueError):
        EcKeyPair.from_private_value(curve, curve.order)
    with pytest.raises(ValueError):
        EcKeyPair.from_private_value(curve, 0)


def test_curve_by_name() -> None:
    assert curve_by_name("P-256") is P256
    assert curve_by_name("secp256r1") is P256
    assert curve_by_name("BRAINPOOLP256R1") is BRAINPOOL_P256R1
    assert curve_by_name("secp384r1").name == "P-384"
    assert curve_by_name("brainpoolP384r1").size == 48
    with pytest.raises(ValueError):
        curve_by_name("secp521r1")


# --- ECDSA: RFC 6979 A.2.5 (P-256, SHA-256) ---------------------------------------
RFC6979_X = h("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
RFC6979_UX = h("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6")
RFC6979_UY = h("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")
RFC6979_SIGS = {
    b"sample": (
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
    ),
    b"test": (
        "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
        "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
    ),
}


def test_rfc6979_public_key() -> None:
    kp = EcKeyPair.from_private_value(P256, RFC6979_X)
    assert kp.public.to_point() == b"\x04" + RFC6979_UX + RFC6979_UY
    assert kp.private_bytes() == RFC6979_X


@pytest.mark.parametrize("msg", list(RFC6979_SIGS))
def test_rfc6979_verify_and_deterministic_sign(msg: bytes) -> None:
    r, s = RFC6979_SIGS[msg]
    raw = h(r) + h(s)
    pub = EcPublicKey.from_point(P256, b"\x04" + RFC6979_UX + RFC6979_UY)
    assert pub.verify(msg, raw, encoding="raw")
    assert pub.verify(msg, raw_to_der(raw))
    assert not pub.verify(msg + b"!", raw, encoding="raw")
    kp = EcKeyPair.from_private_value(P256, RFC6979_X, deterministic=True)
    assert kp.sign(msg, encoding="raw") == raw
    assert kp.sign(msg) == raw_to_der(raw)


def test_random_nonce_signatures_differ_but_verify() -> None:
    kp = EcKeyPair.from_private_value(P256, RFC6979_X)
    a, b = kp.sign(b"sample", encoding="raw"), kp.sign(b"sample", encoding="raw")
    assert a != b
    assert kp.verify(b"sample", a, encoding="raw") and kp.verify(b"sample", b, encoding="raw")


@pytest.mark.parametrize("curve", [P256, BRAINPOOL_P256R1], ids=lambda c: c.name)
def test_sign_verify_both_encodings(curve) -> None:  # type: ignore[no-untyped-def]
    kp = EcKeyPair.generate(curve)
    msg = b"credential"
    der = kp.sign(msg)
    raw = kp.sign(msg, encoding="raw")
    assert len(raw) == 64 and der[0] == 0x30
    assert kp.public.verify(msg, der) and kp.public.verify(msg, raw, encoding="raw")
    assert kp.public.verify(msg, der_to_raw(der, 32), encoding="raw")
    # A flipped bit in r fails.
    bad = bytes([raw[0] ^ 1]) + raw[1:]
    assert not kp.public.verify(msg, bad, encoding="raw")
    # Someone else's key fails.
    assert not EcKeyPair.generate(curve).public.verify(msg, der)


def test_prehashed() -> None:
    kp = EcKeyPair.generate(P256)
    msg = b"hash me"
    digest = hashlib.sha256(msg).digest()
    sig = kp.sign(digest, prehashed=True)
    assert kp.verify(msg, sig)
    assert kp.verify(digest, kp.sign(msg), prehashed=True)


@pytest.mark.parametrize(
    ("sig", "enc"),
    [
        (b"", "der"),
        (b"\x30\x00", "der"),
        (b"junk" * 10, "der"),
        (bytes(63), "raw"),
        (bytes(64), "raw"),
    ],
)
def test_malformed_signatures_are_invalid_not_errors(sig: bytes, enc: str) -> None:
    assert not EcKeyPair.generate(P256).verify(b"m", sig, encoding=enc)  # type: ignore[arg-type]


def test_unknown_encoding() -> None:
    kp = EcKeyPair.generate(P256)
    with pytest.raises(ValueError):
        kp.sign(b"m", encoding="pem")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kp.verify(b"m", b"", encoding="pem")  # type: ignore[arg-type]


# --- Signature encodings -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**256 - 1), st.integers(1, 2**256 - 1))
def test_der_raw_round_trip(r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    der = raw_to_der(raw)
    assert der[0] == 0x30
    assert der_to_raw(der, 32) == raw


def test_der_to_raw_known() -> None:
    # SEQUENCE { INTEGER 1, INTEGER 0x80 } (0x80 needs a leading 00 in DER).
    der = h("300702010102020080")
    assert der_to_raw(der, 2) == h("00010080")
    assert raw_to_der(h("00010080")) == der


def test_encoding_errors() -> None:
    with pytest.raises(ValueError):
        der_to_raw(b"\x30\x03\x02\x01", 32)
    with pytest.raises(ValueError):
        der_to_raw(raw_to_der(b"\xff" * 33 + b"\x01" * 33), 32)  # r too large
    with pytest.raises(ValueError):
        raw_to_der(b"\x01" * 63)
    with pytest.raises(ValueError):
        raw_to_der(b"")


# --- ECDH --------------------------------------------------------------------------


def test_ecdh_rfc7027_brainpoolp256r1() -> None:
    # RFC 7027 Appendix A.1 (ECDH on brainpoolP256r1).
    d_a = h("81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D")
    q_a = h(
        "04"
        "44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5"
        "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC"
    )
    d_b = h("55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3")
    q_b = h(
        "04"
        "8D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B"
        "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A"
    )
    z = h("89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B")
    a = EcKeyPair.from_private_value(BRAINPOOL_P256R1, d_a)
    b = EcKeyPair.from_private_value(BRAINPOOL_P256R1, d_b)
    assert a.public.to_point() == q_a and b.public.to_point() == q_b
    assert a.ecdh(q_b) == z
    assert b.ecdh(EcPublicKey.from_point(BRAINPOOL_P256R1, q_a)) == z


def test_ecdh_cavs_p256() -> None:
    # NIST CAVS KAS ECC CDH primitive test vectors (ecccdhtestvectors.zip,
    # KAS_ECC_CDH_PrimitiveTest.txt), [P-256] COUNT = 0.
    q_cavs = h(
        "04"
        "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
        "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac"
    )
    d_iut = h("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534")
    q_iut = h(
        "04"
        "ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
        "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141"
    )
    kp = EcKeyPair.from_private_value(P256, d_iut)
    assert kp.public.to_point() == q_iut
    assert kp.ecdh(q_cavs) == h("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b")


def test_ecdh_errors() -> None:
    kp = EcKeyPair.generate(P256)
    with pytest.raises(ValueError):
        kp.ecdh(EcKeyPair.generate(BRAINPOOL_P256R1).public)
    with pytest.raises(ValueError):
        kp.ecdh(b"\x04" + bytes(64))  # (0, 0) is not on the curve


# --- Generation from the card RNG --------------------------------------------------


@pytest.mark.parametrize("curve", [P256, BRAINPOOL_P256R1], ids=lambda c: c.name)
def test_seeded_generation_is_reproducible(curve) -> None:  # type: ignore[no-untyped-def]
    a = EcKeyPair.generate(curve, CardRng(b"card-1"))
    b = EcKeyPair.generate(curve, CardRng(b"card-1"))
    c = EcKeyPair.generate(curve, CardRng(b"card-2"))
    assert a.public == b.public and a.public != c.public
    # The documented rule: d = int(40 RNG bytes) mod (n - 1) + 1.
    expected = int.from_bytes(CardRng(b"card-1").random(40), "big") % (curve.order - 1) + 1
    assert a.private_bytes() == expected.to_bytes(32, "big")
    # Keys from a seeded RNG sign deterministically, so whole runs replay.
    assert a.deterministic and a.sign(b"m") == b.sign(b"m")
    assert not EcKeyPair.generate(curve).deterministic


def test_private_bytes_round_trip() -> None:
    kp = EcKeyPair.generate(BRAINPOOL_P256R1)
    again = EcKeyPair.from_private_value(BRAINPOOL_P256R1, kp.private_bytes())
    assert again.public == kp.public


def test_public_key_encodings() -> None:
    pub = EcKeyPair.generate(P256, CardRng(1)).public
    compressed = pub.to_point(compressed=True)
    assert len(compressed) == 33 and compressed[0] in (2, 3)
    assert EcPublicKey.from_point(P256, compressed) == pub
    assert EcPublicKey.from_der(pub.to_der()) == pub
    assert hash(EcPublicKey.from_der(pub.to_der())) == hash(pub)
    assert pub.curve is P256
    with pytest.raises(ValueError):
        EcPublicKey.from_point(P256, b"\x05" + bytes(64))


def test_key_pair_repr_hides_private_value() -> None:
    kp = EcKeyPair.from_private_value(P256, RFC6979_X)
    assert RFC6979_X.hex() not in repr(kp).lower()
    assert RFC6979_UX.hex() in repr(kp).lower()


def test_a_key_drawn_again_from_the_same_seed_is_the_same_key() -> None:
    # The public point is worked out once per d (`keys._derive`): a card rebuilt from
    # its seed, or a stored key rebuilt to sign, gets the same immutable key back.
    a = EcKeyPair.generate(P384, CardRng(7))
    b = EcKeyPair.generate(P384, CardRng(7))
    assert a.cryptography_key is b.cryptography_key
    d = a.cryptography_key.private_numbers().private_value
    assert a.private_bytes() == b.private_bytes() == d.to_bytes(48, "big")
    c = EcKeyPair.from_private_value(P384, a.private_bytes(), deterministic=True, seeded=True)
    assert c.cryptography_key is a.cryptography_key and c.public == a.public
    fresh = EcKeyPair.generate(P384, CardRng())  # OS randomness: not kept
    assert fresh.private_bytes() == fresh.cryptography_key.private_numbers().private_value.to_bytes(
        48, "big"
    )
    with pytest.raises(ValueError):
        EcKeyPair.from_private_value(P384, P384.order)


def test_only_a_seeded_key_is_kept_in_the_memo() -> None:
    """`from_private_value` of a host's key, or of a card key from OS randomness signing
    with RFC 6979 (`deterministic`), leaves the process-wide (curve, d) memo as it was; a
    `seeded` one is kept (and the same key object comes back)."""
    from card.crypto import keys

    def calls() -> int:
        info = keys._derive.cache_info()
        return info.hits + info.misses

    d = int.from_bytes(CardRng().random(32), "big") % (P256.order - 1) + 1
    before = calls()
    loaded = EcKeyPair.from_private_value(P256, d)
    stored = EcKeyPair.from_private_value(P256, d, deterministic=True)
    assert stored.deterministic and not loaded.deterministic
    assert calls() == before  # the memo was not even asked
    misses = keys._derive.cache_info().misses
    seeded = EcKeyPair.from_private_value(P256, d, deterministic=True, seeded=True)
    assert keys._derive.cache_info().misses == misses + 1
    assert loaded.public == stored.public == seeded.public
    hits = keys._derive.cache_info().hits
    again = EcKeyPair.from_private_value(P256, d, deterministic=True, seeded=True)
    assert again.cryptography_key is seeded.cryptography_key
    assert keys._derive.cache_info().hits == hits + 1
