"""card.sm: the SM codec (both suites), the ICAO KDF and BAC values, CV certificates, and the
certificate-based mutual authentication.

Vectors: ICAO Doc 9303 Part 11 Appendix D (as in gmrtd/gmrtd commit 7f23b50a); the AES
rules of ICAO 9303-11 §9.8 and BSI TR-03110-3 §F.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from card import tlv
from card.apdu import CommandApdu
from card.crypto.keys import BRAINPOOL_P256R1, P256, P384, EcKeyPair
from card.crypto.rng import CardRng
from card.sm.auth import AuthError, TerminalAuthentication, card_authenticate
from card.sm.bac import BacKeys, bac_cryptogram, bac_session
from card.sm.codec import SmError, SmSession, is_sm_cla, retail_mac
from card.sm.cvc import Cvc, issue_cvc, parse_public_key_template, public_key_template
from card.sm.kdf import adjust_des_parity, bac_key_seed, icao_kdf

# ICAO 9303-11 Appendix D.2 and D.3.
MRZ = "L898902C<369080619406236"
KSEED = "239AB9CB282DAF66231DC5A4DF6BFBAE"
KENC = "AB94FDECF2674FDFB9B391F85D7F76F2"
KMAC = "7962D9ECE03D1ACD4C76089DCE131543"
S = "781723860C06C2264608F919887022120B795240CB7049B01C19B33E32804F0B"
E_M_IFD = "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A7"
KSSEED = "0036D272F5C350ACAC50C3F572D23600"
KSENC = "979EC13B1CBFE9DCD01AB0FED307EAE5"
KSMAC = "F1CB1F1FB5ADF208806B89DC579DC1F8"
SSC = "887022120C06C226"


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def test_appendix_d_key_derivation() -> None:
    seed = bac_key_seed(MRZ)
    assert seed == h(KSEED)
    keys = BacKeys.from_seed(seed)
    assert (keys.k_enc, keys.k_mac) == (h(KENC), h(KMAC))
    assert bac_cryptogram(keys, h(S)) == h(E_M_IFD)
    assert icao_kdf(h(KSSEED), 1, "DES3") == h(KSENC)
    assert icao_kdf(h(KSSEED), 2, "DES3") == h(KSMAC)
    session = bac_session(
        h("0B795240CB7049B01C19B33E32804F0B"),
        h("0B4F80323EB3191CB04970CB4052790B"),
        h("4608F91988702212"),
        h("781723860C06C226"),
    )
    assert session.ssc == h(SSC)


def test_des_parity_and_kdf_sizes() -> None:
    assert adjust_des_parity(b"\x00\xff\x10") == b"\x01\xfe\x10"
    assert len(icao_kdf(b"z", 1, "AES128")) == 16
    assert len(icao_kdf(b"z", 1, "AES192")) == 24
    assert len(icao_kdf(b"z", 2, "AES256")) == 32
    with pytest.raises(ValueError):
        icao_kdf(b"z", 1, "RC4")  # type: ignore[arg-type]


def test_retail_mac_is_iso9797_algorithm_3() -> None:
    # ICAO App. D.3: M_IFD is the retail MAC of E_IFD (padded) under Kmac.
    e = h(E_M_IFD)[:32]
    assert retail_mac(h(KMAC), e + b"\x80" + bytes(7)) == h(E_M_IFD)[32:]


# -- the AES rules --------------------------------------------------------------------


K_ENC = bytes(range(16))
K_MAC = bytes(range(16, 32))


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def _cmac8(key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()[:8]


def _pad16(b: bytes) -> bytes:
    return b + b"\x80" + bytes((-len(b) - 1) % 16)


def test_aes_rules_independently_recomputed() -> None:
    """ICAO 9303-11 §9.8.6.2: SSC 16 bytes from 0, IV = E(KSenc, SSC), CMAC/8 over padded input."""
    s = SmSession.aes(K_ENC, K_MAC)
    assert s.ssc == bytes(16)
    wrapped = s.wrap_command(h("00A4020C02011E"))
    ssc1 = (1).to_bytes(16, "big")
    assert s.ssc == ssc1  # incremented before protecting
    cmd = CommandApdu.from_bytes(wrapped)
    assert cmd.cla == 0x0C and cmd.le == 256
    objs = tlv.parse(cmd.data)
    assert [o.tag for o in objs] == [0x87, 0x8E]
    assert objs[0].value[0] == 0x01
    iv = _aes_ecb(K_ENC, ssc1)
    d = Cipher(algorithms.AES(K_ENC), modes.CBC(iv)).decryptor()
    assert d.update(objs[0].value[1:]) + d.finalize() == _pad16(h("011E"))
    mac_input = _pad16(ssc1 + _pad16(h("0CA4020C")) + objs[0].to_bytes())
    assert objs[1].value == _cmac8(K_MAC, mac_input)
    # The response is protected under SSC 2, with DO99 and DO87.
    ssc2 = (2).to_bytes(16, "big")
    iv2 = _aes_ecb(K_ENC, ssc2)
    e = Cipher(algorithms.AES(K_ENC), modes.CBC(iv2)).encryptor()
    do87 = b"\x87\x11\x01" + e.update(_pad16(b"hello")) + e.finalize()
    do99 = h("99029000")
    mac = _cmac8(K_MAC, _pad16(ssc2 + do87 + do99))
    response = do87 + do99 + b"\x8e\x08" + mac + h("9000")
    assert s.unwrap_response(response) == b"hello" + h("9000")
    assert s.ssc == ssc2


def test_card_side_protects_as_the_host_checks() -> None:
    host, card = SmSession.aes(K_ENC, K_MAC), SmSession.aes(K_ENC, K_MAC)
    plain = card.unwrap_command(CommandApdu.from_bytes(host.wrap_command(h("00B0000004"))))
    assert plain.to_bytes() == h("00B0000004")
    body = card.protect_response(b"\x01\x02\x03\x04", 0x9000)
    assert host.unwrap_response(body + h("9000")) == h("010203049000")


apdus = st.builds(
    CommandApdu,
    st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x40, 0x4F]),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=300),
    st.one_of(st.none(), st.integers(1, 256), st.just(65536)),
)


def _pair(aes: bool) -> tuple[SmSession, SmSession]:
    if aes:
        return SmSession.aes(K_ENC, K_MAC), SmSession.aes(K_ENC, K_MAC)
    return SmSession.des3(h(KSENC), h(KSMAC), h(SSC)), SmSession.des3(h(KSENC), h(KSMAC), h(SSC))


@settings(max_examples=150, deadline=None)
@given(apdus, st.binary(max_size=300), st.booleans())
def test_wrap_unwrap_round_trip(cmd: CommandApdu, data: bytes, aes: bool) -> None:
    host, card = _pair(aes)
    wrapped = CommandApdu.from_bytes(host.wrap_command(cmd))
    assert is_sm_cla(wrapped.cla)
    plain = card.unwrap_command(wrapped)
    assert (plain.cla, plain.ins, plain.p1, plain.p2, plain.data) == (
        cmd.cla,
        cmd.ins,
        cmd.p1,
        cmd.p2,
        cmd.data,
    )
    assert plain.le == cmd.le
    body = card.protect_response(data, 0x6283, odd_ins=bool(cmd.ins & 1))
    assert host.unwrap_response(body + h("6283")) == data + h("6283")
    assert host.ssc == card.ssc


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 10_000), st.booleans())
def test_any_altered_byte_of_the_data_objects_is_refused(
    data: bytes, where: int, aes: bool
) -> None:
    host, card = _pair(aes)
    wrapped = CommandApdu.from_bytes(host.wrap_command(CommandApdu(0, 0xDA, 1, 2, data, 256)))
    body = bytearray(wrapped.data)
    body[where % len(body)] ^= 0x40
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu(wrapped.cla, wrapped.ins, 1, 2, bytes(body), 256))
    assert e.value.sw in (0x6987, 0x6988)


def test_replay_and_reorder_fail_the_mac() -> None:
    host, card = _pair(True)
    first = CommandApdu.from_bytes(host.wrap_command(h("00B0000001")))
    second = CommandApdu.from_bytes(host.wrap_command(h("00B0000002")))
    with pytest.raises(SmError):
        card.unwrap_command(second)  # out of order: SSC 1 on the card, 2 in the MAC
    host, card = _pair(True)
    first = CommandApdu.from_bytes(host.wrap_command(h("00B0000001")))
    card.unwrap_command(first)
    card.protect_response(b"", 0x9000)
    with pytest.raises(SmError):
        card.unwrap_command(first)  # replay: SSC 3 on the card


def test_refusals_of_malformed_data_objects() -> None:
    host, card = _pair(True)
    # No 8E at all: 6987.
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu(0x0C, 0xB0, 0, 0, h("970100"), 256))
    assert e.value.sw == 0x6987
    # An unknown object: 6988.
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu(0x0C, 0xB0, 0, 0, h("5301008E080000000000000000"), 256))
    assert e.value.sw == 0x6988
    # A plain CLA: 6987.
    with pytest.raises(SmError) as e:
        card.unwrap_command(CommandApdu(0x00, 0xB0, 0, 0, b"", 256))
    assert e.value.sw == 0x6987


def test_wrong_padding_indicator_or_padding_is_refused() -> None:
    suite_host, card = _pair(True)
    ssc = (1).to_bytes(16, "big")
    iv = _aes_ecb(K_ENC, ssc)

    def command(indicator: int, padded: bytes) -> CommandApdu:
        e = Cipher(algorithms.AES(K_ENC), modes.CBC(iv)).encryptor()
        do87 = tlv.build(0x87, bytes((indicator,)) + e.update(padded) + e.finalize())
        mac = _cmac8(K_MAC, _pad16(ssc + _pad16(h("0CDA0102")) + do87))
        return CommandApdu(0x0C, 0xDA, 1, 2, do87 + b"\x8e\x08" + mac, 256)

    assert SmSession.aes(K_ENC, K_MAC).unwrap_command(command(1, _pad16(b"ok"))).data == b"ok"
    with pytest.raises(SmError):
        SmSession.aes(K_ENC, K_MAC).unwrap_command(command(2, _pad16(b"ok")))
    with pytest.raises(SmError):
        SmSession.aes(K_ENC, K_MAC).unwrap_command(command(1, b"ok" + bytes(14)))


def test_unprotected_success_response_is_refused_but_an_error_passes() -> None:
    host, _ = _pair(True)
    host.wrap_command(h("00B0000001"))
    with pytest.raises(SmError):
        host.unwrap_response(h("9000"))
    host.wrap_command(h("00B0000001"))
    assert host.unwrap_response(h("6982")) == h("6982")


def test_ssc_wraps_around_and_a_closed_session_refuses() -> None:
    s = SmSession.aes(K_ENC, K_MAC, b"\xff" * 16)
    s.wrap_command(h("00B0000001"))
    assert s.ssc == bytes(16)
    s.close()
    with pytest.raises(SmError):
        s.wrap_command(h("00B0000001"))


def test_proprietary_cla_cannot_be_wrapped() -> None:
    with pytest.raises(ValueError):
        SmSession.aes(K_ENC, K_MAC).wrap_command(h("80CA000000"))


def test_extended_length_when_the_body_is_long() -> None:
    host, card = _pair(True)
    wrapped = CommandApdu.from_bytes(host.wrap_command(CommandApdu(0, 0xDA, 0, 0, bytes(400))))
    assert wrapped.extended and wrapped.le == 65536
    assert card.unwrap_command(wrapped).data == bytes(400)


# -- CV certificates and the mutual authentication --------------------------------------


def _pki(curve=P256):  # type: ignore[no-untyped-def]
    rng = CardRng(7)
    root = EcKeyPair.generate(curve, rng)
    term = EcKeyPair.generate(curve, rng)
    card = EcKeyPair.generate(curve, rng)
    t_cert = issue_cvc(root.cryptography_key, b"ROOT", b"TERM01", term.public)
    c_cert = issue_cvc(root.cryptography_key, b"ROOT", b"CARD01", card.public)
    return root, term, card, t_cert, c_cert


@pytest.mark.parametrize("curve", [P256, P384, BRAINPOOL_P256R1])
def test_mutual_authentication_agrees_on_a_session(curve) -> None:  # type: ignore[no-untyped-def]
    root, term, card_key, t_cert, c_cert = _pki(curve)
    cvc = Cvc.from_bytes(t_cert)
    assert cvc.verify(root.public) and cvc.chr == b"TERM01" and cvc.car == b"ROOT"
    terminal = TerminalAuthentication(term, t_cert, root.public, CardRng(1))
    r_card = CardRng(2).random(8)
    data = terminal.general_authenticate_data(r_card)
    result = card_authenticate(
        data,
        terminal=cvc.public,
        r_card=r_card,
        card_key=card_key,
        card_certificate=c_cert,
        rng=CardRng(3),
    )
    host = terminal.finish(result.response)
    assert terminal.card_certificate is not None and terminal.card_certificate.chr == b"CARD01"
    wrapped = host.wrap_command(h("00CA010000"))
    assert result.session.unwrap_command(CommandApdu.from_bytes(wrapped)).to_bytes() == h(
        "00CA010000"
    )
    assert len(host.suite._k_enc) == (32 if curve.size == 48 else 16)


def test_mutual_authentication_refusals() -> None:
    root, term, card_key, t_cert, c_cert = _pki()
    other_root = EcKeyPair.generate(P256, CardRng(99))
    terminal = TerminalAuthentication(term, t_cert, root.public, CardRng(1))
    r_card = b"\x01" * 8
    data = terminal.general_authenticate_data(r_card)
    kw = dict(card_key=card_key, card_certificate=c_cert, rng=CardRng(3))
    # A signature over another challenge (a replayed GENERAL AUTHENTICATE).
    with pytest.raises(AuthError):
        card_authenticate(data, terminal=term.public, r_card=b"\x02" * 8, **kw)  # type: ignore[arg-type]
    # A terminal key the certificate did not name.
    with pytest.raises(AuthError):
        card_authenticate(data, terminal=other_root.public, r_card=r_card, **kw)  # type: ignore[arg-type]
    # The card's certificate from another root.
    rogue = issue_cvc(other_root.cryptography_key, b"EVIL", b"CARD01", card_key.public)
    result = card_authenticate(
        data,
        terminal=term.public,
        r_card=r_card,
        card_key=card_key,
        card_certificate=rogue,
        rng=CardRng(3),
    )
    with pytest.raises(AuthError):
        terminal.finish(result.response)


def test_public_key_template_round_trip() -> None:
    k = EcKeyPair.generate(P384, CardRng(5)).public
    assert parse_public_key_template(public_key_template(k)) == k
    with pytest.raises(ValueError):
        parse_public_key_template(h("7F4903860100"))
    with pytest.raises(ValueError):
        Cvc.from_bytes(h("7F2100"))
