"""3G authentication functions: Milenage, the 34.108 XOR test algorithm, GSM conversion.

- Milenage: 3GPP TS 35.206 §4.1 (f1, f1*, f2, f3, f4, f5, f5* on AES-128,
  with the operator-variant constants r1..r5 and c1..c5 of §4.1).
- The test algorithm of 3GPP TS 34.108 §8.1.2 (XDOUT = K xor RAND), the one
  test USIMs run.
- AUTN and AUTS framing, 3GPP TS 33.102 §6.3.2 and §6.3.3.
- The conversion functions c2 and c3 of 3GPP TS 33.102 §6.8.1.2, which turn a
  UMTS result into a GSM SRES and Kc.

Both algorithms satisfy `AkaAlgorithm`, so an applet or an AuC can be handed
either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

__all__ = [
    "AkaAlgorithm",
    "AuthVector",
    "Milenage",
    "MilenageParams",
    "XorTestAlgorithm",
    "opc_from_op",
    "build_autn",
    "build_auts",
    "generate_auth_vector",
    "compute_auts",
    "parse_autn",
    "parse_auts",
    "c2",
    "c3",
]

_RESYNC_AMF = b"\x00\x00"  # TS 33.102 §6.3.3: AMF is a dummy all-zero value in AUTS.


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


_MASK128 = (1 << 128) - 1


def _check_len(name: str, value: bytes, n: int) -> None:
    if len(value) != n:
        raise ValueError(f"{name} must be {n} bytes, got {len(value)}")


def _rot(x: bytes, r: int) -> bytes:
    """TS 35.206 §4.1 rot(x, r): rotate the 128-bit x by r bits towards the MSB."""
    r %= 128
    if r % 8 == 0:
        return x[r // 8 :] + x[: r // 8]
    v = int.from_bytes(x, "big")
    v = ((v << r) | (v >> (128 - r))) & ((1 << 128) - 1)
    return v.to_bytes(16, "big")


def _aes_ecb(k: bytes) -> CipherContext:
    # ECB keeps no chaining state, so one encryptor serves every block of a key.
    return Cipher(algorithms.AES(k), modes.ECB()).encryptor()


def opc_from_op(k: bytes, op: bytes) -> bytes:
    """OPc = OP xor E_K(OP), TS 35.206 §4.1."""
    _check_len("K", k, 16)
    _check_len("OP", op, 16)
    return _xor(op, _aes_ecb(k).update(op))


def _default_c() -> tuple[bytes, bytes, bytes, bytes, bytes]:
    # TS 35.206 §4.1: c1 = 0; c2, c3, c4, c5 have a single 1 in the last
    # bit positions 127, 126, 125, 124 respectively.
    c1, c2_, c3_, c4, c5 = (bytes(15) + bytes([v]) for v in (0x00, 0x01, 0x02, 0x04, 0x08))
    return c1, c2_, c3_, c4, c5


@dataclass(frozen=True)
class MilenageParams:
    """The rotation amounts r1..r5 (bits) and constants c1..c5 of TS 35.206 §4.1.

    The defaults are the values the specification gives; an operator may
    choose others, subject to the conditions of §4.1.
    """

    r: tuple[int, int, int, int, int] = (64, 0, 32, 64, 96)
    c: tuple[bytes, bytes, bytes, bytes, bytes] = field(default_factory=_default_c)

    def __post_init__(self) -> None:
        if len(self.r) != 5 or not all(0 <= r < 128 for r in self.r):
            raise ValueError("r must be five rotations in 0..127")
        if len(self.c) != 5 or not all(len(c) == 16 for c in self.c):
            raise ValueError("c must be five 16-byte constants")


class AkaAlgorithm(Protocol):
    """What UMTS AKA needs from an authentication algorithm (TS 33.102 §6.3)."""

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes: ...
    def f1_star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes: ...
    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]: ...
    def f5_star(self, rand: bytes) -> bytes: ...


class Milenage:
    """Milenage for one subscriber, TS 35.206 §4.1.

    Args:
        k: the 128-bit subscriber key K.
        opc: the 128-bit OPc (use `Milenage.from_op` when you hold OP).
        params: the r and c constants.
    """

    __slots__ = ("_k", "_opc", "_params", "_ecb", "_opc_int", "_c_int")

    def __init__(self, k: bytes, opc: bytes, params: MilenageParams | None = None) -> None:
        _check_len("K", k, 16)
        _check_len("OPc", opc, 16)
        self._k = bytes(k)
        self._opc = bytes(opc)
        self._params = params or MilenageParams()
        self._ecb = _aes_ecb(self._k)
        self._opc_int = int.from_bytes(self._opc, "big")
        self._c_int = tuple(int.from_bytes(c, "big") for c in self._params.c)

    @classmethod
    def from_op(cls, k: bytes, op: bytes, params: MilenageParams | None = None) -> Milenage:
        """Build from K and OP, computing OPc (TS 35.206 §4.1)."""
        return cls(k, opc_from_op(k, op), params)

    @property
    def opc(self) -> bytes:
        """OPc, as the USIM stores it."""
        return self._opc

    def __repr__(self) -> str:
        return "Milenage(<K and OPc hidden>)"

    def _e(self, block: bytes) -> bytes:
        return self._ecb.update(block)

    def _temp(self, rand: bytes) -> bytes:
        _check_len("RAND", rand, 16)
        return self._e(_xor(rand, self._opc))

    # The 128-bit XORs and rotations below run on ints, each block converted once:
    # AUTHENTICATE computes OUT2..OUT4 from one TEMP on every command.

    def _out_t(self, t: int, i: int) -> bytes:
        """OUT_i from t = TEMP xor OPc as an int (TS 35.206 §4.1)."""
        r = self._params.r[i - 1]
        x = (((t << r) | (t >> (128 - r))) & _MASK128) ^ self._c_int[i - 1]
        e = int.from_bytes(self._e(x.to_bytes(16, "big")), "big")
        return (e ^ self._opc_int).to_bytes(16, "big")

    def _out(self, temp: bytes, i: int) -> bytes:
        """OUT2..OUT5 = E_K(rot(TEMP xor OPc, r_i) xor c_i) xor OPc (i = 2..5)."""
        return self._out_t(int.from_bytes(temp, "big") ^ self._opc_int, i)

    def _out1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        _check_len("SQN", sqn, 6)
        _check_len("AMF", amf, 2)
        temp = self._temp(rand)
        half = sqn + amf
        v = int.from_bytes(half + half, "big") ^ self._opc_int
        r = self._params.r[0]
        rot = ((v << r) | (v >> (128 - r))) & _MASK128
        x = int.from_bytes(temp, "big") ^ rot ^ self._c_int[0]
        e = int.from_bytes(self._e(x.to_bytes(16, "big")), "big")
        return (e ^ self._opc_int).to_bytes(16, "big")

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A (8 bytes): OUT1[0..63]."""
        return self._out1(rand, sqn, amf)[:8]

    def f1_star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S (8 bytes): OUT1[64..127]."""
        return self._out1(rand, sqn, amf)[8:]

    def f2(self, rand: bytes) -> bytes:
        """RES (8 bytes): OUT2[64..127]."""
        return self._out(self._temp(rand), 2)[8:]

    def f3(self, rand: bytes) -> bytes:
        """CK (16 bytes): OUT3."""
        return self._out(self._temp(rand), 3)

    def f4(self, rand: bytes) -> bytes:
        """IK (16 bytes): OUT4."""
        return self._out(self._temp(rand), 4)

    def f5(self, rand: bytes) -> bytes:
        """AK (6 bytes): OUT2[0..47]."""
        return self._out(self._temp(rand), 2)[:6]

    def f5_star(self, rand: bytes) -> bytes:
        """AK for resynchronisation (6 bytes): OUT5[0..47]."""
        return self._out(self._temp(rand), 5)[:6]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK) with TEMP computed once."""
        t = int.from_bytes(self._temp(rand), "big") ^ self._opc_int
        out2 = self._out_t(t, 2)
        return out2[8:], self._out_t(t, 3), self._out_t(t, 4), out2[:6]


class XorTestAlgorithm:
    """The test algorithm of 3GPP TS 34.108 §8.1.2, as run by test USIMs.

    XDOUT = K xor RAND; RES = XDOUT[0..n-1]; CK = XDOUT rotated left by 8
    bits; IK by 16 bits; AK = AK* = XDOUT[24..71]; MAC = XDOUT[0..63] xor
    (SQN || AMF), with f1* computed as f1 (§8.1.2.2).

    Args:
        k: the 128-bit test key K.
        res_len: RES length in bytes, 4 to 16 (TS 33.102 §6.3.2 allows 32 to
            128 bits).
    """

    __slots__ = ("_k", "_res_len")

    def __init__(self, k: bytes, res_len: int = 16) -> None:
        _check_len("K", k, 16)
        if not 4 <= res_len <= 16:
            raise ValueError("res_len must be 4..16 bytes")
        self._k = bytes(k)
        self._res_len = res_len

    def __repr__(self) -> str:
        return f"XorTestAlgorithm(<K hidden>, res_len={self._res_len})"

    def _xdout(self, rand: bytes) -> bytes:
        _check_len("RAND", rand, 16)
        return _xor(self._k, rand)

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A = XDOUT[0..63] xor CDOUT, CDOUT = SQN || AMF (§8.1.2.1 step 4)."""
        _check_len("SQN", sqn, 6)
        _check_len("AMF", amf, 2)
        return _xor(self._xdout(rand)[:8], sqn + amf)

    def f1_star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S, the same computation as f1 (§8.1.2.2)."""
        return self.f1(rand, sqn, amf)

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK), §8.1.2.1 step 2."""
        x = self._xdout(rand)
        return x[: self._res_len], x[1:] + x[:1], x[2:] + x[:2], x[3:9]

    def f5_star(self, rand: bytes) -> bytes:
        """AK* = XDOUT[24..71], the same as AK (§8.1.2.2)."""
        return self._xdout(rand)[3:9]


# -- AKA framing, TS 33.102 §6.3 ---------------------------------------------


@dataclass(frozen=True)
class AuthVector:
    """A UMTS authentication vector (quintet), TS 33.102 §6.3.2."""

    rand: bytes
    xres: bytes
    ck: bytes
    ik: bytes
    autn: bytes

    def __repr__(self) -> str:
        return f"AuthVector(rand={self.rand.hex()}, autn={self.autn.hex()}, <XRES/CK/IK hidden>)"


def build_autn(sqn: bytes, ak: bytes, amf: bytes, mac_a: bytes) -> bytes:
    """AUTN = (SQN xor AK) || AMF || MAC-A, TS 33.102 §6.3.2."""
    _check_len("SQN", sqn, 6)
    _check_len("AK", ak, 6)
    _check_len("AMF", amf, 2)
    _check_len("MAC-A", mac_a, 8)
    return _xor(sqn, ak) + amf + mac_a


def build_auts(sqn_ms: bytes, ak_star: bytes, mac_s: bytes) -> bytes:
    """AUTS = (SQN_MS xor AK*) || MAC-S, TS 33.102 §6.3.3."""
    _check_len("SQN_MS", sqn_ms, 6)
    _check_len("AK*", ak_star, 6)
    _check_len("MAC-S", mac_s, 8)
    return _xor(sqn_ms, ak_star) + mac_s


def generate_auth_vector(alg: AkaAlgorithm, rand: bytes, sqn: bytes, amf: bytes) -> AuthVector:
    """The AuC side of AKA: a quintet for RAND, SQN and AMF (TS 33.102 §6.3.2)."""
    mac_a = alg.f1(rand, sqn, amf)
    xres, ck, ik, ak = alg.f2345(rand)
    return AuthVector(rand, xres, ck, ik, build_autn(sqn, ak, amf, mac_a))


def compute_auts(alg: AkaAlgorithm, rand: bytes, sqn_ms: bytes) -> bytes:
    """The USIM side of resynchronisation: AUTS for SQN_MS (TS 33.102 §6.3.3).

    MAC-S = f1*(SQN_MS || RAND || AMF) with the dummy AMF 0000.
    """
    return build_auts(sqn_ms, alg.f5_star(rand), alg.f1_star(rand, sqn_ms, _RESYNC_AMF))


def parse_autn(
    alg: AkaAlgorithm, rand: bytes, autn: bytes, *, ak: bytes | None = None
) -> tuple[bytes, bytes, bytes]:
    """The USIM side: recover SQN and AMF from AUTN and compute XMAC-A.

    The caller compares XMAC-A with AUTN[8:] (in constant time) and then
    checks SQN freshness, TS 33.102 §6.3.3. A caller that has run f2345 for
    RAND already passes its AK so that it is not computed twice.

    Returns:
        (SQN, AMF, XMAC-A).
    """
    _check_len("AUTN", autn, 16)
    if ak is None:
        ak = alg.f2345(rand)[3]
    sqn = _xor(autn[:6], ak)
    amf = autn[6:8]
    return sqn, amf, alg.f1(rand, sqn, amf)


def parse_auts(alg: AkaAlgorithm, rand: bytes, auts: bytes) -> tuple[bytes, bytes]:
    """The AuC side of resynchronisation: recover SQN_MS and compute XMAC-S.

    Returns:
        (SQN_MS, XMAC-S); the caller compares XMAC-S with AUTS[6:].
    """
    _check_len("AUTS", auts, 14)
    sqn_ms = _xor(auts[:6], alg.f5_star(rand))
    return sqn_ms, alg.f1_star(rand, sqn_ms, _RESYNC_AMF)


# -- GSM conversion, TS 33.102 §6.8.1.2 --------------------------------------


def c2(res: bytes) -> bytes:
    """SRES = XRES*1 xor XRES*2 xor XRES*3 xor XRES*4 (4 bytes), TS 33.102 §6.8.1.2.

    XRES* is RES padded with zero bytes to 16 bytes; XRES*i are its four 32-bit
    words.
    """
    if not 4 <= len(res) <= 16:
        raise ValueError("RES must be 4..16 bytes")
    padded = res + bytes(16 - len(res))
    out = 0
    for i in range(0, 16, 4):
        out ^= int.from_bytes(padded[i : i + 4], "big")
    return out.to_bytes(4, "big")


def c3(ck: bytes, ik: bytes) -> bytes:
    """Kc = CK1 xor CK2 xor IK1 xor IK2 (8 bytes), TS 33.102 §6.8.1.2."""
    _check_len("CK", ck, 16)
    _check_len("IK", ik, 16)
    return _xor(_xor(ck[:8], ck[8:]), _xor(ik[:8], ik[8:]))
