"""TUAK, the second 3GPP authentication algorithm set (3GPP TS 35.231).

TUAK builds f1, f1*, f2, f3, f4, f5 and f5* from the Keccak-f[1600]
permutation (TS 35.231 §5, the permutation of FIPS 202 §3) applied to a
1600-bit string laid out as TS 35.231 §6 prescribes:

===============  ==========================================================
bits of IN       content
===============  ==========================================================
0..255           TOPc (TOP when TOPc itself is computed, §6.2)
256..263         INSTANCE: which function, the output lengths, KLEN
264..319         ALGONAME, the ASCII string "TUAK1.0"
320..447         RAND (zero when TOPc is computed)
448..511         AMF || SQN for f1 and f1*; zero otherwise
512..767         K (a 128-bit K is followed by 128 zero bits)
768..772, 1087   padding bits set to 1; every other bit 0
===============  ==========================================================

TS 35.231 numbers each parameter MSB first and IN least significant bit
first within its bytes, so every multi-byte field lands in the permutation's
200-byte state with its bytes reversed (§5.2: bits need not be reversed within
bytes); outputs are read back the same way. The permutation is applied
`iterations` times (1 by default; the operator may choose more, §6.1).

Outputs (§6.3-§6.5): MAC-A / MAC-S = OUT[0..L-1] for L = 64, 128 or 256;
RES = OUT[0..L-1] for L = 32, 64, 128 or 256; CK = OUT[256..], IK = OUT[512..]
(128 or 256 bits); AK = OUT[768..815].

`Tuak` satisfies `card.crypto.milenage.AkaAlgorithm`.
"""

from __future__ import annotations

__all__ = ["Tuak", "keccak_f1600", "topc_from_top", "ALGONAME"]

ALGONAME = b"TUAK1.0"

_MASK64 = (1 << 64) - 1

# FIPS 202 §3.2.5 (iota): the 24 round constants of Keccak-f[1600].
_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip


def _rho_offsets() -> tuple[int, ...]:
    """FIPS 202 §3.2.2 (rho): the lane rotation offsets, indexed x + 5y."""
    off = [0] * 25
    x, y = 1, 0
    for t in range(24):
        off[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return tuple(off)


_RHO = _rho_offsets()
# pi (§3.2.3): A'[x, y] = A[(x + 3y) mod 5, x]; as "source lane i goes to _PI[i]".
_PI = tuple(y + 5 * ((2 * x + 3 * y) % 5) for y in range(5) for x in range(5))


def _rotl(v: int, n: int) -> int:
    return ((v << n) | (v >> (64 - n))) & _MASK64 if n else v


def keccak_f1600(state: bytes) -> bytes:
    """Keccak-f[1600] (FIPS 202 §3.3, 24 rounds) on a 200-byte state.

    Lanes are little-endian 64-bit words, lane (x, y) at byte 8(x + 5y), the
    state convention of FIPS 202 §3.1.2 and TS 35.231 §5.
    """
    if len(state) != 200:
        raise ValueError("the Keccak-f[1600] state is 200 bytes")
    a = [int.from_bytes(state[8 * i : 8 * i + 8], "little") for i in range(25)]
    for rc in _RC:
        # theta
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rotl(c[(x + 1) % 5], 1) for x in range(5)]
        # rho and pi
        b = [0] * 25
        for i in range(25):
            b[_PI[i]] = _rotl(a[i] ^ d[i % 5], _RHO[i])
        # chi
        for y in range(0, 25, 5):
            row = b[y : y + 5]
            for x in range(5):
                a[y + x] = row[x] ^ (~row[(x + 1) % 5] & row[(x + 2) % 5])
        # iota
        a[0] ^= rc
    return b"".join(v.to_bytes(8, "little") for v in a)


# INSTANCE as the byte it becomes in the state (TS 35.231 §6.2-§6.5): the
# specification's INSTANCE[0..7] read least significant bit first.
_INST_F1 = 0x00
_INST_F1_STAR = 0x80
_INST_F2345 = 0x40
_INST_F5_STAR = 0xC0
_INST_KLEN_256 = 0x01
_INST_MAC = {8: 0x08, 16: 0x10, 32: 0x20}
_INST_RES = {4: 0x00, 8: 0x08, 16: 0x10, 32: 0x20}
_INST_CK_256 = 0x04
_INST_IK_256 = 0x02

# IN[768..772] and IN[1087] are 1 (the padding of §6.2).
_PAD = b"\x1f" + bytes(38) + b"\x80" + bytes(64)


def _check(name: str, value: bytes, *sizes: int) -> None:
    if len(value) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise ValueError(f"{name} must be {want} bytes, got {len(value)}")


def _permute(
    top: bytes, instance: int, k: bytes, rand: bytes, amf: bytes, sqn: bytes, iterations: int
) -> bytes:
    """Lay out IN (TS 35.231 §6), apply Keccak-f[1600] `iterations` times, return OUT."""
    klen = _INST_KLEN_256 if len(k) == 32 else 0
    state = (
        top[::-1]
        + bytes((instance | klen,))
        + ALGONAME[::-1]
        + rand[::-1]
        + amf[::-1]
        + sqn[::-1]
        + k[::-1].ljust(32, b"\x00")
        + _PAD
    )
    for _ in range(iterations):
        state = keccak_f1600(state)
    return state


def topc_from_top(k: bytes, top: bytes, iterations: int = 1) -> bytes:
    """TOPc from K and TOP (TS 35.231 §6.2): OUT[0..255] with RAND, AMF, SQN zero."""
    _check("K", k, 16, 32)
    _check("TOP", top, 32)
    return _permute(top, 0x00, k, bytes(16), bytes(2), bytes(6), iterations)[:32][::-1]


class Tuak:
    """TUAK for one subscriber, TS 35.231.

    Args:
        k: the subscriber key K, 128 or 256 bits.
        topc: the 256-bit TOPc (use `Tuak.from_top` when you hold TOP).
        mac_len: MAC-A / MAC-S length in bytes (8, 16 or 32). AUTN and AUTS
            carry 64 bits, so a card uses 8.
        res_len: RES length in bytes (4, 8, 16 or 32).
        ck_len: CK length in bytes (16 or 32).
        ik_len: IK length in bytes (16 or 32).
        iterations: how many times Keccak-f[1600] is applied (at least 1).
    """

    __slots__ = ("_k", "_topc", "mac_len", "res_len", "ck_len", "ik_len", "iterations")

    def __init__(
        self,
        k: bytes,
        topc: bytes,
        *,
        mac_len: int = 8,
        res_len: int = 8,
        ck_len: int = 16,
        ik_len: int = 16,
        iterations: int = 1,
    ) -> None:
        _check("K", k, 16, 32)
        _check("TOPc", topc, 32)
        if mac_len not in _INST_MAC:
            raise ValueError("mac_len must be 8, 16 or 32 bytes")
        if res_len not in _INST_RES:
            raise ValueError("res_len must be 4, 8, 16 or 32 bytes")
        if ck_len not in (16, 32) or ik_len not in (16, 32):
            raise ValueError("ck_len and ik_len must be 16 or 32 bytes")
        if iterations < 1:
            raise ValueError("iterations must be at least 1")
        self._k = bytes(k)
        self._topc = bytes(topc)
        self.mac_len = mac_len
        self.res_len = res_len
        self.ck_len = ck_len
        self.ik_len = ik_len
        self.iterations = iterations

    @classmethod
    def from_top(cls, k: bytes, top: bytes, **kwargs: int) -> Tuak:
        """Build from K and TOP, computing TOPc (TS 35.231 §6.2)."""
        return cls(k, topc_from_top(k, top, kwargs.get("iterations", 1)), **kwargs)

    @property
    def topc(self) -> bytes:
        """TOPc, as the USIM stores it."""
        return self._topc

    def __repr__(self) -> str:
        return (
            f"Tuak(<K and TOPc hidden>, mac_len={self.mac_len}, res_len={self.res_len}, "
            f"ck_len={self.ck_len}, ik_len={self.ik_len}, iterations={self.iterations})"
        )

    def _mac(self, instance: int, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        _check("RAND", rand, 16)
        _check("SQN", sqn, 6)
        _check("AMF", amf, 2)
        inst = instance | _INST_MAC[self.mac_len]
        out = _permute(self._topc, inst, self._k, rand, amf, sqn, self.iterations)
        return out[: self.mac_len][::-1]

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A, TS 35.231 §6.3."""
        return self._mac(_INST_F1, rand, sqn, amf)

    def f1_star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S, TS 35.231 §6.3."""
        return self._mac(_INST_F1_STAR, rand, sqn, amf)

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK), TS 35.231 §6.4, from one permutation."""
        _check("RAND", rand, 16)
        inst = _INST_F2345 | _INST_RES[self.res_len]
        inst |= _INST_CK_256 if self.ck_len == 32 else 0
        inst |= _INST_IK_256 if self.ik_len == 32 else 0
        out = _permute(self._topc, inst, self._k, rand, bytes(2), bytes(6), self.iterations)
        return (
            out[: self.res_len][::-1],
            out[32 : 32 + self.ck_len][::-1],
            out[64 : 64 + self.ik_len][::-1],
            out[96:102][::-1],
        )

    def f5_star(self, rand: bytes) -> bytes:
        """AK for resynchronisation, TS 35.231 §6.5."""
        _check("RAND", rand, 16)
        out = _permute(
            self._topc, _INST_F5_STAR, self._k, rand, bytes(2), bytes(6), self.iterations
        )
        return out[96:102][::-1]
