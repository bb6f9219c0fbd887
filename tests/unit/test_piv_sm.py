"""PIV secure messaging (SP 800-73-4 Part 2 §4): the library, the card's side, the client's.

The byte formats were checked against an independent client, OpenSC's PIV driver
(tests/integration/test_piv_sm_opensc.py, optional); here both ends are ours, and
every refusal the protocol names is exercised: a forged CVC, a wrong key
confirmation, an altered or replayed protected command, a wrong suite, a bad
control byte or point, the pairing code outside SM.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from applets.piv import PIV_AID, PivApplet
from card import tlv
from card.apdu import CommandApdu
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.runtime import CardRuntime
from card.sm import piv as pivsm
from card.sm.codec import SmError
from host.errors import ApduError, SecureChannelError
from host.piv import PivSession, sm_suites
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader

PIN = b"123456"


def new_card(seed: int = 11, params: bytes = b"") -> CardRuntime:
    rt = CardRuntime(rng_seed=seed)
    rt.install(PivApplet, PIV_AID, params)
    rt.power_on()
    return rt


def keys(seed: int = 1, size: int = 16) -> pivsm.SessionKeys:
    r = CardRng(seed)
    return pivsm.SessionKeys(r.random(size), r.random(size), r.random(size), r.random(size))


# -- the library ----------------------------------------------------------------------------


def test_other_info_has_the_lengths_of_table_14() -> None:
    """OtherInfo is 61 bytes for CS2 and 69 for CS7 (Part 2 §4.1.6), each field with its length."""
    for suite, size in ((pivsm.CS2, 61), (pivsm.CS7, 69)):
        q = b"\x04" + bytes(range(2 * suite.coordinate))
        info = pivsm.other_info(suite, b"H" * 8, 0, q, b"I" * 8, b"N" * suite.nonce_size, 0)
        assert len(info) == size
        head = bytes((4,)) + bytes((suite.algorithm_id,)) * 4
        assert info.startswith(head + b"\x08HHHHHHHH\x01\x00\x10" + q[1:17])
        assert info.endswith(b"\x08IIIIIIII" + bytes((suite.nonce_size,)) + b"N" * suite.nonce_size
                             + b"\x01\x00")  # fmt: skip


def test_kdf_is_the_single_step_kdf_of_sp_800_56a() -> None:
    """hash(00000001 || Z || OtherInfo) || hash(00000002 || ...), cut into four keys."""
    z, info = bytes(range(32)), b"other"
    k = pivsm.derive_keys(pivsm.CS2, z, info)
    stream = hashlib.sha256(b"\x00\x00\x00\x01" + z + info).digest()
    stream += hashlib.sha256(b"\x00\x00\x00\x02" + z + info).digest()
    assert (k.cfrm, k.mac, k.enc, k.rmac) == tuple(stream[i : i + 16] for i in range(0, 64, 16))
    k7 = pivsm.derive_keys(pivsm.CS7, z + z[:16], info)
    assert len(k7.enc) == 32 and "AES" in repr(k7) and k7.enc.hex() not in repr(k7)


def test_cvc_round_trip_and_signature() -> None:
    signer = EcKeyPair.generate(P256, CardRng(3))
    card = EcKeyPair.generate(P256, CardRng(4))
    der = pivsm.build_cvc(pivsm.CS2, card.public, signer, issuer_id=b"I" * 8, subject_id=b"S" * 16)
    cvc = pivsm.parse_cvc(der)
    assert cvc.point == card.public.to_point() and cvc.subject_id == b"S" * 16
    assert cvc.curve_oid == pivsm.CS2.curve_oid and cvc.role == pivsm.ROLE_CARD
    assert cvc.verify(signer.public.cryptography_key, pivsm.CS2)
    assert not cvc.verify(card.public.cryptography_key, pivsm.CS2)
    at = der.index(b"S" * 16)  # another subject under the same signature
    forged = der[:at] + b"T" + der[at + 1 :]
    assert not pivsm.parse_cvc(forged).verify(signer.public.cryptography_key, pivsm.CS2)
    for bad in (b"", b"\x7f\x21\x00", der + b"\x00", b"\x30" + der[1:]):
        with pytest.raises(ValueError):
            pivsm.parse_cvc(bad)


_apdus = st.builds(
    lambda ins, p1, p2, data, le: CommandApdu(0x00, ins, p1, p2, data, le),
    st.sampled_from([0x20, 0x24, 0x47, 0x87, 0xCB, 0xDB]),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=300),
    st.one_of(st.none(), st.integers(1, 256)),
)


@settings(max_examples=60, deadline=None)
@given(cmds=st.lists(st.tuples(_apdus, st.binary(max_size=300), st.integers(0x6000, 0x9000)),
                     min_size=1, max_size=4))  # fmt: skip
def test_session_round_trips_both_ways(cmds: list[tuple[CommandApdu, bytes, int]]) -> None:
    """What the client wraps the card unwraps unchanged, and back; the chains stay in step."""
    client, card = pivsm.PivSmSession(keys()), pivsm.PivSmSession(keys())
    for cmd, answer, sw in cmds:
        wire = CommandApdu.from_bytes(client.wrap_command(cmd))
        assert wire.cla == 0x0C and wire.ins == cmd.ins
        plain = card.unwrap_command(wire)
        assert (plain.cla, plain.ins, plain.p1, plain.p2, plain.data) == (
            0, cmd.ins, cmd.p1, cmd.p2, cmd.data
        )  # fmt: skip
        assert plain.le == cmd.le
        body = card.protect_response(answer, sw)
        assert client.unwrap_response(body + b"\x90\x00") == answer + sw.to_bytes(2, "big")


def test_altered_replayed_or_reordered_messages_fail() -> None:
    client, card = pivsm.PivSmSession(keys()), pivsm.PivSmSession(keys())
    first = client.wrap_command(bytes.fromhex("00CB3FFF035C017E00"))
    altered = bytearray(first)
    altered[8] ^= 0x01
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu.from_bytes(bytes(altered)))
    assert e.value.sw == 0x6988
    card = pivsm.PivSmSession(keys())
    card.unwrap_command(CommandApdu.from_bytes(first))
    with pytest.raises(SmError):  # the same command again: the chaining value moved on
        card.unwrap_command(CommandApdu.from_bytes(first))
    # A response protected for another command does not verify at the client.
    c2, k2 = pivsm.PivSmSession(keys()), pivsm.PivSmSession(keys())
    k2.unwrap_command(CommandApdu.from_bytes(c2.wrap_command(b"\x00\x20\x00\x80")))
    r1 = k2.protect_response(b"", 0x9000)
    r2 = k2.protect_response(b"", 0x9000)
    with pytest.raises(SmError):
        c2.unwrap_response(r2 + b"\x90\x00")
    assert r1 != r2
    # Other keys: nothing verifies.
    with pytest.raises(SmError):
        pivsm.PivSmSession(keys(2)).unwrap_command(CommandApdu.from_bytes(first))
    # No MAC at all: 6987.
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu.from_bytes(bytes.fromhex("0CCB3FFF03970100")))
    assert e.value.sw == 0x6987


# -- the card and the client -------------------------------------------------------------


def test_establish_then_everything_under_sm() -> None:
    rt = new_card()
    piv = PivSession(InProcessReader(rt))
    info = piv.open_secure_messaging()
    assert info.suite is pivsm.CS2 and info.cvc.point[0] == 4
    seen: list[bytes] = []
    inner = rt.process

    def spy(apdu: bytes) -> bytes:
        seen.append(apdu)
        return inner(apdu)

    rt.process = spy  # type: ignore[method-assign]
    piv.verify_pin(PIN)
    piv.authenticate()
    pub = piv.generate(0x9A, "p256")
    digest = hashlib.sha256(b"m").digest()
    sig = piv.sign(0x9A, 0x11, digest)
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    from cryptography.hazmat.primitives import hashes

    pub.verify(sig, b"m", ec.ECDSA(hashes.SHA256()))
    cert = b"\x70\x82\x01\x2c" + bytes(300) + b"\x71\x01\x00"  # a long PUT DATA: extended
    piv.put_data(0x5FC105, cert)
    assert piv.get_data(0x5FC105) == tlv.build(0x53, cert)
    # Every command protected (GET RESPONSE, below SM, fetches a long protected answer).
    assert seen and all(a[0] & 0x0C == 0x0C for a in seen if a[1] != 0xC0)
    assert not any(PIN in a for a in seen)  # the PIN never crossed in clear
    # Errors come back protected: DO99 says 63C2, the response itself 9000.
    with pytest.raises(ApduError) as e:
        piv.verify_pin(b"000000")
    assert e.value.sw == 0x63C2
    assert rt.process(seen[-1])[-2:] == b"\x69\x88"  # replayed: refused, session over


def test_a_plain_command_is_answered_and_the_session_goes_on() -> None:
    """Over contact PIV mixes plain and protected commands (the client reads 5FC122 in clear)."""
    rt = new_card()
    piv = PivSession(InProcessReader(rt))
    piv.open_secure_messaging()
    plain = rt.process(bytes.fromhex("00CB3FFF035C017E00"))
    assert plain[-2:] == b"\x90\x00" and plain[0] == 0x7E
    piv.verify_pin(PIN)  # still under the same session


def test_an_altered_command_ends_the_session_in_clear() -> None:
    rt = new_card()
    piv = PivSession(InProcessReader(rt))
    piv.open_secure_messaging()
    client = piv._sm
    assert client is not None and client.session is not None
    wire = bytearray(client.session.wrap_command(bytes.fromhex("002000800831323334353600FF")))
    wire[7] ^= 0x80
    assert rt.process(bytes(wire)) == b"\x69\x88"
    # The card's session is over: a correctly protected command is refused too.
    fresh = pivsm.PivSmSession(pivsm.SessionKeys(b"", b"0" * 16, b"1" * 16, b"2" * 16))
    assert rt.process(fresh.wrap_command(b"\x00\x20\x00\x80"))[-2:] == b"\x69\x88"


def test_cs7_when_installed_so() -> None:
    rt = new_card(params=tlv.build(0x85, b"\x2e"))
    piv = PivSession(InProcessReader(rt))
    assert sm_suites(piv.select()) == [0x2E]
    info = piv.open_secure_messaging()
    assert info.suite is pivsm.CS7 and len(info.cvc.point) == 97
    piv.verify_pin(PIN)


def test_key_establishment_refusals() -> None:
    rt = new_card()
    piv = PivSession(InProcessReader(rt))
    piv.select()
    eph = EcKeyPair.generate(P256, CardRng(9)).public.to_point()

    def ga(p1: int, value: bytes, extra: bytes = b"\x82\x00") -> int:
        body = tlv.build(0x7C, tlv.build(0x81, value) + extra)
        try:
            piv.send(0x00, 0x87, p1, 0x04, body, le=0)
        except ApduError as e:
            return e.sw
        return 0x9000

    good = b"\x00" + b"H" * 8 + eph
    assert ga(0x2E, good) == 0x6A86  # not the card's suite
    assert ga(0x27, b"\x01" + good[1:]) == 0x6A80  # CB_H must be 00
    assert ga(0x27, good[:-1]) == 0x6A80  # a truncated point
    assert ga(0x27, good[:-1] + bytes([good[-1] ^ 1])) == 0x6A80  # not on the curve
    assert ga(0x27, good, b"\x82\x01\x00") == 0x6A80  # 82 must be empty
    assert ga(0x27, good) == 0x9000


class Tamper(Reader):
    """Changes one byte of the card's key establishment answer."""

    def __init__(self, inner: Reader, at: int) -> None:
        self.inner, self.at = inner, at

    def transmit(self, apdu: bytes) -> bytes:
        resp = self.inner.transmit(apdu)
        if apdu[1] == 0x87 and apdu[3] == 0x04:
            b = bytearray(resp)
            b[self.at] ^= 0x01
            return bytes(b)
        return resp


@pytest.mark.parametrize(
    "at,what",
    [(30, "AuthCryptogram"), (-20, "not signed"), (22, "AuthCryptogram")],
)
def test_the_client_refuses_a_forged_answer(at: int, what: str) -> None:
    rt = new_card()
    piv = PivSession(Tamper(InProcessReader(rt), at))
    with pytest.raises(SecureChannelError, match=what):
        piv.open_secure_messaging()


def test_the_client_refuses_a_cvc_of_another_signer() -> None:
    other = PivSession(InProcessReader(new_card(seed=99)))
    other.select()
    from cryptography import x509

    obj = tlv.Tlv.from_bytes(other.get_data(0x5FC122))
    foreign = x509.load_der_x509_certificate(next(t for t in tlv.parse(obj.value)
                                                  if t.tag == 0x70).value)  # fmt: skip
    piv = PivSession(InProcessReader(new_card()))
    with pytest.raises(SecureChannelError, match="not signed"):
        piv.open_secure_messaging(signer=foreign)


def test_pairing_code_only_under_sm() -> None:
    rt = new_card()
    piv = PivSession(InProcessReader(rt))
    piv.select()
    piv.verify_pin(PIN)
    container = tlv.Tlv.from_bytes(piv.get_data(0x5FC123))
    code = next(t.value for t in tlv.parse(container.value) if t.tag == 0x99)
    assert len(code) == 8 and code.isdigit()
    with pytest.raises(ApduError) as e:
        piv.verify_pairing_code(code)
    assert e.value.sw == 0x6982  # in clear: refused
    piv.open_secure_messaging()
    with pytest.raises(ApduError) as e:
        piv.verify_pairing_code(b"00000000" if code != b"00000000" else b"11111111")
    assert e.value.sw == 0x6982
    piv.verify_pairing_code(code)


def test_a_command_whose_cla_announces_no_sm_is_refused_by_the_session() -> None:
    client, card = pivsm.PivSmSession(keys()), pivsm.PivSmSession(keys())
    wire = bytearray(client.wrap_command(b"\x00\x20\x00\x80"))
    wire[0] = 0x00  # the same objects under a plain CLA
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu.from_bytes(bytes(wire)))
    assert e.value.sw == 0x6987
