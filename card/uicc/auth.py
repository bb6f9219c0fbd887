"""The USIM side of AKA: AUTHENTICATE in the 3G and GSM contexts, and SQN freshness.

- AUTHENTICATE (3GPP TS 31.102 §7.1.2): in the 3G context the data field is
  L RAND L AUTN; the USIM checks MAC-A, then the freshness of SQN, and answers
  'DB' L RES L CK L IK [L Kc] (Kc when service n°27 "GSM Access" is available),
  or 'DC' L AUTS on a synchronisation failure; a wrong MAC is status word 9862.
  In the GSM context the data field is L RAND and the answer L SRES L Kc, from
  the conversion functions c2 and c3 of TS 33.102 §6.8.1.2.
- SQN freshness (TS 33.102 Annex C.1-C.3): SQN = SEQ || IND, with an array of
  2^ind_bits previously accepted SEQ values; SQN is accepted when SEQ >
  SEQ_MS(IND), and (when configured) SEQ - SEQ_MS <= delta (C.3.3, wrap-around
  protection) and SEQ_MS - SEQ < L (C.3.4, limit on the age of a vector), where
  SEQ_MS is the highest SEQ accepted so far. On a failure the USIM reports
  SQN_MS, the highest previously accepted SQN, in AUTS.

Everything here is a pure function of immutable values: the applet stores the
new SQN state with one atomic write after a successful check.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from card.crypto.milenage import (
    AkaAlgorithm,
    Milenage,
    XorTestAlgorithm,
    c2,
    c3,
    compute_auts,
    parse_autn,
)
from card.crypto.tuak import Tuak
from card.sw import SW, CardError

ALGORITHMS = ("milenage", "tuak", "xor")
#: TS 35.231 §6.4: the RES lengths TUAK can produce, in bytes.
TUAK_RES_LENGTHS = (4, 8, 16, 32)

TAG_3G_SUCCESS = 0xDB
TAG_SYNC_FAILURE = 0xDC
SQN_BITS = 48
SQN_MASK = (1 << SQN_BITS) - 1

#: TS 33.102 Annex C.3.3 suggests delta = 2^28 for the wrap-around protection.
DEFAULT_DELTA = 1 << 28
#: TS 33.102 Annex C.3.2: IND of 5 bits, an array of 32 entries.
DEFAULT_IND_BITS = 5


@dataclass(frozen=True)
class SqnPolicy:
    """How the USIM judges SQN freshness (TS 33.102 Annex C)."""

    ind_bits: int = DEFAULT_IND_BITS
    delta: int | None = DEFAULT_DELTA
    age_limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.ind_bits <= 10:
            raise ValueError("ind_bits must be 0..10")
        for v in (self.delta, self.age_limit):
            if v is not None and v < 1:
                raise ValueError("delta and age_limit are positive (or None: not checked)")


@dataclass(frozen=True)
class SqnState:
    """SEQ_MS(i) for every IND value, and SQN_MS: the highest SQN accepted so far."""

    seq: tuple[int, ...]
    sqn_ms: int = 0

    @classmethod
    def initial(cls, policy: SqnPolicy, sqn_ms: int = 0, seq: tuple[int, ...] = ()) -> SqnState:
        """The state of a newly personalised USIM that has accepted SQN_MS already.

        TS 33.102 Annex C.2: the SQN a profile declares as SQN_MS is used. With no
        SEQ array given, nothing is known of the other IND values, so every SQN at
        or below SQN_MS counts as used: SEQ_MS(i) = SEQ(SQN_MS) for i <= IND(SQN_MS)
        and SEQ(SQN_MS) - 1 above it (the same SEQ with a higher IND is newer). A
        given array (an exported state, SAIP's sqnInit) is the state of each IND
        and is kept, but its entry for IND(SQN_MS) is raised to SEQ(SQN_MS) when
        lower, so that SQN_MS itself is never accepted again.
        """
        n = 1 << policy.ind_bits
        if seq and len(seq) != n:
            raise ValueError("the SEQ array has 2^ind_bits entries")
        seq_ms, ind_ms = sqn_ms >> policy.ind_bits, sqn_ms & (n - 1)
        if seq:
            out = list(seq)
            out[ind_ms] = max(out[ind_ms], seq_ms)
            return cls(tuple(out), sqn_ms)
        floor = tuple(seq_ms if i <= ind_ms else max(seq_ms - 1, 0) for i in range(n))
        return cls(floor, sqn_ms)


def check_sqn(policy: SqnPolicy, state: SqnState, sqn: int) -> SqnState | None:
    """The state after accepting `sqn`, or None when SQN is not fresh (Annex C.2-C.3)."""
    mask = (1 << policy.ind_bits) - 1
    seq, ind = sqn >> policy.ind_bits, sqn & mask
    if len(state.seq) != mask + 1:
        raise ValueError("SQN state does not match the IND length")
    if seq <= state.seq[ind]:
        return None
    seq_ms = state.sqn_ms >> policy.ind_bits
    if policy.delta is not None and seq - seq_ms > policy.delta:
        return None
    if policy.age_limit is not None and seq_ms - seq >= policy.age_limit:
        return None
    new_seq = state.seq[:ind] + (seq,) + state.seq[ind + 1 :]
    return SqnState(new_seq, max(state.sqn_ms, sqn))


def make_algorithm(
    algorithm: str,
    k: bytes,
    opc: bytes | None = None,
    op: bytes | None = None,
    res_len: int = 8,
    iterations: int = 1,
    ck_len: int = 16,
    ik_len: int = 16,
) -> AkaAlgorithm:
    """The algorithm a profile names: Milenage (TS 35.206) with OPc or OP, TUAK
    (TS 35.231) with TOPc or TOP (`opc` / `op` hold them; the 64-bit MAC AUTN carries,
    `iterations` Keccak permutations), or the XOR test algorithm of TS 34.108 §8.1.2.

    Raises:
        ValueError: an unknown algorithm, or keys of the wrong length.
    """
    if algorithm == "milenage":
        if opc is not None:
            return Milenage(k, opc)
        if op is not None:
            return Milenage.from_op(k, op)
        raise ValueError("Milenage needs OPc or OP")
    if algorithm == "tuak":
        if opc is not None:
            return Tuak(
                k, opc, res_len=res_len, ck_len=ck_len, ik_len=ik_len, iterations=iterations
            )
        if op is not None:
            return Tuak.from_top(
                k, op, res_len=res_len, ck_len=ck_len, ik_len=ik_len, iterations=iterations
            )
        raise ValueError("TUAK needs TOPc or TOP")
    if algorithm == "xor":
        return XorTestAlgorithm(k, res_len)
    raise ValueError(f"unknown algorithm {algorithm!r} (choose from {', '.join(ALGORITHMS)})")


def _lv(value: bytes) -> bytes:
    return bytes((len(value),)) + value


def parse_lv_items(data: bytes, count: int) -> list[bytes]:
    """`count` length-value items filling the data exactly.

    Raises:
        CardError: 6700 when the lengths do not add up.
    """
    out = []
    pos = 0
    for _ in range(count):
        if pos >= len(data):
            raise CardError(SW.WRONG_LENGTH)
        n = data[pos]
        end = pos + 1 + n
        if end > len(data):
            raise CardError(SW.WRONG_LENGTH)
        out.append(bytes(data[pos + 1 : end]))
        pos = end
    if pos != len(data):
        raise CardError(SW.WRONG_LENGTH)
    return out


def authenticate_3g(
    alg: AkaAlgorithm,
    policy: SqnPolicy,
    state: SqnState,
    rand: bytes,
    autn: bytes,
    *,
    with_kc: bool,
) -> tuple[bytes, SqnState | None]:
    """One 3G AUTHENTICATE (TS 31.102 §7.1.2.1; TS 33.102 §6.3.3).

    Returns:
        (response data, new SQN state); the state is None when nothing is to be
        stored (a synchronisation failure, answered with 'DC' L AUTS).

    Raises:
        CardError: 9862 when MAC-A is wrong (nothing changes), 6A80 for a RAND or
            AUTN of the wrong length.
    """
    if len(rand) != 16 or len(autn) != 16:
        raise CardError(SW.WRONG_DATA)
    # f2345 once (TS 35.206 / TS 35.231 §6): AK unmasks SQN, RES/CK/IK answer a fresh one.
    res, ck, ik, ak = alg.f2345(rand)
    sqn, _amf, xmac = parse_autn(alg, rand, autn, ak=ak)
    if not hmac.compare_digest(xmac, autn[8:]):
        raise CardError(SW.AUTH_MAC_FAILURE)
    new_state = check_sqn(policy, state, int.from_bytes(sqn, "big"))
    if new_state is None:
        auts = compute_auts(alg, rand, (state.sqn_ms & SQN_MASK).to_bytes(6, "big"))
        return bytes((TAG_SYNC_FAILURE,)) + _lv(auts), None
    out = bytes((TAG_3G_SUCCESS,)) + _lv(res) + _lv(ck) + _lv(ik)
    if with_kc and len(ck) == len(ik) == 16:
        out += _lv(c3(ck, ik))
    return out, new_state


def gsm_sres_kc(alg: AkaAlgorithm, rand: bytes) -> tuple[bytes, bytes]:
    """SRES and Kc for RAND through the 3G algorithm and c2/c3 (TS 33.102 §6.8.1.2)."""
    if len(rand) != 16:
        raise CardError(SW.WRONG_DATA)
    res, ck, ik, _ak = alg.f2345(rand)
    if len(res) > 16 or len(ck) != 16 or len(ik) != 16:
        # c2 and c3 (TS 33.102 §6.8.1.2) are defined for RES <= 128 bits and
        # 128-bit CK / IK; a TUAK profile with longer outputs has no GSM context.
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    return c2(res), c3(ck, ik)


def authenticate_gsm(alg: AkaAlgorithm, rand: bytes) -> bytes:
    """AUTHENTICATE in the GSM context: L SRES L Kc (TS 31.102 §7.1.2.1)."""
    sres, kc = gsm_sres_kc(alg, rand)
    return _lv(sres) + _lv(kc)
