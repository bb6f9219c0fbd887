"""SCP03 refusals, session states and wire details (GPC v2.3 Amendment D).

Every refusal asserts its status word and reason, and the session's state
after it: a session that survived a MAC or decryption failure, or counted as
authenticated before EXTERNAL AUTHENTICATE, must fail a test (the
mutation-testing targets). MACs on logical channels 4-19 are checked against
a value computed here from §6.2.4, not only by a round trip (a round trip
cannot see a MAC CLA that both ends get wrong the same way).
"""

from __future__ import annotations

import pytest

from card.apdu import ApduFormatError, CommandApdu
from card.crypto.cmac import aes_cbc_encrypt, aes_cmac, aes_ecb_encrypt
from card.gp.scp03 import (
    GP_TEST_KEY,
    InitializeUpdateResponse,
    Scp03Error,
    Scp03Keys,
    Scp03Session,
    SecurityLevel,
    SessionKeys,
    aes_kcv,
    decode_key_data,
    encode_key_data,
    has_secure_messaging,
    initialize_update_command,
    pseudo_random_card_challenge,
)
from card.sw import CardError

h = bytes.fromhex
KEYS = Scp03Keys(b"\x11" * 16, b"\x22" * 16, b"\x33" * 16)
HC, CC = bytes(range(8)), bytes(range(100, 108))


def _pair(level: int) -> tuple[Scp03Session, Scp03Session]:
    host = Scp03Session.derive(KEYS, HC, CC)
    card = Scp03Session.derive(KEYS, HC, CC)
    card.check_external_authenticate(host.external_authenticate_command(level))
    return host, card


def _refused(call: object, sw: int, reason: str) -> Scp03Error:
    with pytest.raises(Scp03Error) as e:
        call()  # type: ignore[operator]
    assert e.value.sw == sw
    assert e.value.reason == reason
    return e.value


# -- errors, keys and reprs ---------------------------------------------------------


def test_error_text() -> None:
    assert Scp03Error().reason == ""
    assert str(Scp03Error()) == str(CardError(0x6982))
    assert str(Scp03Error(0x6A80, "bad")) == "6A80: bad"


def test_test_keys_and_reprs() -> None:
    assert Scp03Keys.test_keys().kvn == 0x30
    assert Scp03Keys.test_keys(0x31).kvn == 0x31
    kcv = aes_kcv(GP_TEST_KEY).hex().upper()
    assert repr(Scp03Keys.test_keys()) == f"Scp03Keys(kvn=30, AES-128, kcv={kcv}/{kcv}/{kcv})"
    assert repr(SessionKeys(bytes(16), bytes(16), bytes(16))) == "SessionKeys(AES-128)"
    assert repr(SessionKeys(bytes(32), bytes(32), bytes(32))) == "SessionKeys(AES-256)"


def test_session_states_pending_open_closed() -> None:
    host = Scp03Session.derive(KEYS, HC, CC)
    card = Scp03Session.derive(KEYS, HC, CC)
    assert not card.authenticated and card.level is None
    assert repr(card) == "Scp03Session(pending, level=--, counter=0)"
    _refused(lambda: card.wrap_response(b"", 0x9000), 0x6982, "no secure channel session is open")
    card.check_external_authenticate(host.external_authenticate_command(0x13))
    assert card.authenticated and card.level == 0x13
    assert repr(card) == "Scp03Session(open, level=13, counter=0)"
    card.unwrap_command(host.wrap_command(h("80CA006600")))
    assert repr(card) == "Scp03Session(open, level=13, counter=1)"
    card.terminate()
    assert card.level is None and card.closed and not card.authenticated
    assert repr(card) == "Scp03Session(closed, level=--, counter=1)"
    _refused(
        lambda: card.unwrap_command(h("84CA006600")), 0x6982, "no secure channel session is open"
    )
    _refused(
        lambda: card.check_external_authenticate(h("8482000010") + bytes(16)),
        0x6982,
        "the session was terminated",
    )
    host.terminate()
    _refused(lambda: host.external_authenticate_command(0x01), 0x6982, "the session was terminated")


# -- EXTERNAL AUTHENTICATE ---------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "sw", "reason"),
    [
        ({0: 0x80}, 0x6982, "EXTERNAL AUTHENTICATE without secure messaging"),
        ({1: 0x84}, 0x6982, "EXTERNAL AUTHENTICATE without secure messaging"),
        ({2: 0x02}, 0x6A86, "security level 02 is not 00/01/03/11/13/33"),
        ({-1: 0x00}, 0x6982, "C-MAC verification failed"),
    ],
)
def test_external_authenticate_refusals_end_the_session(
    patch: dict[int, int], sw: int, reason: str
) -> None:
    host = Scp03Session.derive(KEYS, HC, CC)
    card = Scp03Session.derive(KEYS, HC, CC)
    wire = bytearray(host.external_authenticate_command(0x01))
    for i, v in patch.items():
        wire[i] = v if wire[i] != v else v ^ 0xFF
    _refused(lambda: card.check_external_authenticate(bytes(wire)), sw, reason)
    assert card.closed and not card.authenticated and card.level is None


def test_external_authenticate_of_the_wrong_length_ends_the_session() -> None:
    host = Scp03Session.derive(KEYS, HC, CC)
    card = Scp03Session.derive(KEYS, HC, CC)
    wire = host.external_authenticate_command(0x01)
    short = CommandApdu(0x84, 0x82, 0x01, 0x00, CommandApdu.from_bytes(wire).data[:-1]).to_bytes()
    _refused(
        lambda: card.check_external_authenticate(short),
        0x6700,
        "EXTERNAL AUTHENTICATE data has the wrong length",
    )
    assert card.closed


def test_level_00_refuses_secure_messaging_and_passes_plain_commands() -> None:
    host, card = _pair(0x00)
    assert card.authenticated and card.level == SecurityLevel.NONE
    assert host.wrap_command(h("80CA006600")) == h("80CA006600")
    assert card.unwrap_command(h("80CA006600")) == h("80CA006600")
    assert card.counter == host.counter == 1
    assert card.wrap_response(b"\x01", 0x9000) == h("019000")
    _refused(
        lambda: card.unwrap_command(h("84CA006600")),
        0x6982,
        "secure messaging at security level 00",
    )
    assert card.closed and not card.authenticated


# -- C-MAC and C-DECRYPTION on the card ----------------------------------------------


@pytest.mark.parametrize("wire", [h("80CA006600"), h("84CA00660401020304")])
def test_command_without_or_with_a_short_cmac_ends_the_session(wire: bytes) -> None:
    _, card = _pair(0x01)
    _refused(lambda: card.unwrap_command(wire), 0x6982, "command without C-MAC in a C-MAC session")
    assert card.closed


def test_wrong_cmac_reason() -> None:
    host, card = _pair(0x01)
    wire = bytearray(host.wrap_command(h("80CA006600")))
    wire[-2] ^= 1
    _refused(lambda: card.unwrap_command(bytes(wire)), 0x6982, "C-MAC verification failed")
    assert card.closed


@pytest.mark.parametrize(
    ("plain", "reason"),
    [
        (b"\x01\x02\x03", "command decryption: ciphertext is not whole blocks"),
        (bytes(16), "command decryption: "),  # decrypts to no 80 marker
    ],
)
def test_cdecryption_failure_ends_the_session(plain: bytes, reason: str) -> None:
    host, card = _pair(0x03)
    host.level = SecurityLevel.C_MAC  # MAC the data without encrypting it: a valid C-MAC
    wire = host.wrap_command(CommandApdu(0x80, 0xE2, 0x00, 0x00, plain).to_bytes())
    with pytest.raises(Scp03Error) as e:
        card.unwrap_command(wire)
    assert e.value.sw == 0x6988
    assert e.value.reason.startswith(reason)
    assert card.closed and not card.authenticated
    _refused(lambda: card.wrap_response(b"", 0x9000), 0x6982, "no secure channel session is open")


# -- the C-MAC's CLA on every channel (§6.2.4) -----------------------------------------


@pytest.mark.parametrize(
    ("cla", "wire_cla", "mac_cla"),
    [
        (0x80, 0x84, 0x84),
        (0x83, 0x87, 0x84),
        (0xC0, 0xE0, 0xE0),  # channel 4
        (0xC1, 0xE1, 0xE0),  # channel 5
        (0xCF, 0xEF, 0xE0),  # channel 19
    ],
)
def test_cmac_cla_on_every_channel(cla: int, wire_cla: int, mac_cla: int) -> None:
    host, card = _pair(0x01)
    mcv = host.mac_chaining_value
    wire = host.wrap_command(bytes((cla,)) + h("CA006600"))
    assert wire[0] == wire_cla
    want = aes_cmac(host.keys.s_mac, mcv + bytes((mac_cla,)) + h("CA006608"))[:8]
    assert wire == bytes((wire_cla,)) + h("CA006608") + want + b"\x00"
    assert card.unwrap_command(wire) == bytes((cla,)) + h("CA006600")


# -- lengths on the host side -----------------------------------------------------------


def test_le_is_kept_without_rmac_and_widened_with_it() -> None:
    host, _ = _pair(0x01)
    assert host.wrap_command(h("80CA006604"))[-1] == 0x04
    host, _ = _pair(0x11)
    assert host.wrap_command(h("80CA006604"))[-1] == 0x00
    host, card = _pair(0x11)
    ext = CommandApdu(0x80, 0xCA, 0x00, 0x66, b"", 10, extended=True).to_bytes()
    wire = host.wrap_command(ext)
    assert wire[4] == 0 and wire[-2:] == b"\x00\x00"  # extended Le 0000: 65536
    assert CommandApdu.from_bytes(card.unwrap_command(wire)).le == 65536


def test_extended_encoding_survives_wrap_and_unwrap() -> None:
    host, card = _pair(0x01)
    ext = CommandApdu(0x80, 0xE2, 0x00, 0x00, b"\x01\x02", 5, extended=True).to_bytes()
    wire = host.wrap_command(ext)
    assert wire[4] == 0 and wire[5:7] == (2 + 8).to_bytes(2, "big")
    assert card.unwrap_command(wire) == ext


@pytest.mark.parametrize(("n", "extended"), [(247, False), (248, True)])
def test_command_data_with_its_mac_switches_to_extended_at_256(n: int, extended: bool) -> None:
    host, card = _pair(0x01)
    plain = CommandApdu(0x80, 0xE2, 0x00, 0x00, b"\xaa" * n).to_bytes()
    wire = host.wrap_command(plain)
    assert (wire[4] == 0) is extended
    assert card.unwrap_command(wire)[-n:] == b"\xaa" * n


def test_command_that_outgrows_an_apdu_is_refused() -> None:
    host, _ = _pair(0x01)
    wire = host.wrap_command(CommandApdu(0x80, 0xE8, 0, 0, bytes(65535 - 8)).to_bytes())
    assert len(wire) == 7 + 65535
    host, _ = _pair(0x01)
    with pytest.raises(ValueError) as e:
        host.wrap_command(CommandApdu(0x80, 0xE8, 0, 0, bytes(65535 - 7)).to_bytes())
    assert str(e.value) == "secured command data of 65536 bytes does not fit an APDU"


# -- responses on the host side ---------------------------------------------------------


def test_response_refusals_on_the_host() -> None:
    host, card = _pair(0x11)
    with pytest.raises(ApduFormatError) as e:
        host.unwrap_response(b"\x90")
    assert e.value.reason == "a response has at least 2 bytes, got 1"
    card.unwrap_command(host.wrap_command(h("80CA006600")))
    resp = bytearray(card.wrap_response(b"\x01\x02", 0x9000))
    resp[-3] ^= 1
    _refused(lambda: host.unwrap_response(bytes(resp)), 0x6982, "R-MAC verification failed")
    assert host.closed


def test_response_decryption_failure_ends_the_session() -> None:
    host, card = _pair(0x13)
    card.unwrap_command(host.wrap_command(h("80CA006600")))
    resp = card.wrap_response(bytes(16), 0x9000)  # R-MAC, not encrypted
    host.level = SecurityLevel(0x33)
    with pytest.raises(Scp03Error) as e:
        host.unwrap_response(resp)
    assert e.value.reason.startswith("response decryption: ")
    assert host.closed


def test_response_encryption_uses_the_response_icv() -> None:
    host, card = _pair(0x33)
    card.unwrap_command(host.wrap_command(h("80CA006600")))
    resp = card.wrap_response(b"\x01\x02\x03", 0x9000)
    block = bytearray(card.counter.to_bytes(16, "big"))
    block[0] = 0x80
    icv = aes_ecb_encrypt(card.keys.s_enc, bytes(block))
    assert resp[:16] == aes_cbc_encrypt(card.keys.s_enc, icv, b"\x01\x02\x03\x80" + bytes(12))
    assert host.unwrap_response(resp) == h("0102039000")


# -- INITIALIZE UPDATE and the card challenge ------------------------------------------


def test_initialize_update_command_lengths() -> None:
    assert initialize_update_command(bytes(16))[4] == 16
    assert initialize_update_command(bytes(8), 0x30, 0x81) == h("8150300008") + bytes(8) + b"\x00"
    for bad in (7, 17):
        with pytest.raises(ValueError) as e:
            initialize_update_command(bytes(bad))
        assert str(e.value) == "the host challenge has 8 (S8) or 16 (S16) bytes"


def test_pseudo_random_card_challenge_bounds_and_lengths() -> None:
    a = pseudo_random_card_challenge(KEYS, 0, b"\xa0")
    b = pseudo_random_card_challenge(KEYS, 0xFFFFFF, b"\xa0")
    assert len(a) == len(b) == 8 and a != b
    assert len(pseudo_random_card_challenge(KEYS, 1, b"\xa0", s16=True)) == 16
    for bad in (-1, 0x1000000):
        with pytest.raises(ValueError) as e:
            pseudo_random_card_challenge(KEYS, bad, b"\xa0")
        assert str(e.value) == f"sequence counter {bad} does not fit in 3 bytes"


def test_initialize_update_response_refusals() -> None:
    ok = InitializeUpdateResponse(b"\x01" * 10, 0x30, 0x00, b"\x02" * 8, b"\x03" * 8, 0x000102)
    raw = ok.to_bytes()
    assert raw[-3:] == h("000102")
    assert InitializeUpdateResponse.from_bytes(raw).sequence_counter == 0x000102
    with pytest.raises(ValueError) as e:
        InitializeUpdateResponse.from_bytes(raw[:12])
    assert str(e.value) == "INITIALIZE UPDATE response of 12 bytes is too short"
    with pytest.raises(ValueError) as e:
        InitializeUpdateResponse.from_bytes(raw[:13])
    assert str(e.value) == "INITIALIZE UPDATE response of 13 bytes fits no layout"
    bad_div = InitializeUpdateResponse(b"\x01" * 9, 0x30, 0x00, b"\x02" * 8, b"\x03" * 8)
    with pytest.raises(ValueError) as e:
        bad_div.to_bytes()
    assert str(e.value) == "key diversification data has 10 bytes"
    for chal, crypt in ((7, 8), (8, 7)):
        bad = InitializeUpdateResponse(b"\x01" * 10, 0x30, 0x00, bytes(chal), bytes(crypt))
        with pytest.raises(ValueError) as e:
            bad.to_bytes()
        assert str(e.value) == "challenge and cryptogram have 8 bytes in this mode"


# -- PUT KEY key data ----------------------------------------------------------------------


def test_encode_key_data_layout() -> None:
    key, dek = bytes(range(24)), GP_TEST_KEY
    blob = encode_key_data(key, dek)
    assert len(blob) == 2 + 1 + 32 + 1 + 3
    assert blob[:3] == h("882118")
    assert blob[3:35] == aes_cbc_encrypt(dek, bytes(16), key + bytes(8))
    assert blob[35:] == b"\x03" + aes_kcv(key)
    with pytest.raises(ValueError) as e:
        encode_key_data(bytes(15), dek)
    assert str(e.value) == "an SCP03 key is an AES key of 16, 24 or 32 bytes"


def _key_data(key_len: int, enc: bytes, kcv: bytes = b"", *, n: int | None = None) -> bytes:
    block = bytes((key_len,)) + enc
    return bytes((0x88, len(block) if n is None else n)) + block + bytes((len(kcv),)) + kcv


DEK = GP_TEST_KEY


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "truncated key data"),
        (h("8805"), "truncated key data"),
        (h("800101") + b"\x00", "key type 80 is not AES (88)"),
        (h("880000"), "truncated key data"),  # an empty key block
        (_key_data(16, bytes(16), b"\x01\x02\x03")[:-1], "truncated key data"),
        (h("88011000"), "key component length does not fit an AES key"),
        (_key_data(17, bytes(32)), "key component length does not fit an AES key"),
        (_key_data(16, bytes(17)), "key component length does not fit an AES key"),
        (_key_data(32, bytes(16)), "key component length does not fit an AES key"),
        (_key_data(16, bytes(16), b"\x00\x00\x00"), "key check value does not match the key"),
    ],
)
def test_decode_key_data_refusals(blob: bytes, reason: str) -> None:
    _refused(lambda: decode_key_data(blob, DEK), 0x6A80, reason)


def test_decode_key_data_without_a_kcv_is_not_checked() -> None:
    key = bytes(range(16))
    enc = aes_cbc_encrypt(DEK, bytes(16), key)
    assert decode_key_data(_key_data(16, enc) + b"\x99", DEK) == (key, b"", b"\x99")


# -- key sets, challenges and CLA decoding ---------------------------------------------


def test_key_set_checks() -> None:
    keys = Scp03Keys(bytearray(16), bytearray(16), memoryview(bytes(16)))
    assert type(keys.enc) is bytes and type(keys.mac) is bytes and type(keys.dek) is bytes
    assert Scp03Keys.single(bytes(16)).kvn == 0x30
    assert Scp03Keys.single(bytes(32), 0x01) == Scp03Keys(bytes(32), bytes(32), bytes(32), 1)
    for kvn in (0x00, 0xFF):
        assert Scp03Keys(bytes(16), bytes(16), bytes(16), kvn).kvn == kvn
    for kvn in (-1, 0x100):
        with pytest.raises(ValueError) as e:
            Scp03Keys(bytes(16), bytes(16), bytes(16), kvn)
        assert str(e.value) == f"key version {kvn} is not a byte"
    with pytest.raises(ValueError) as e:
        Scp03Keys(bytes(16), bytes(16), bytes(24))
    assert str(e.value) == "ENC, MAC and DEK must be AES keys of one length: 16, 24 or 32 bytes"


@pytest.mark.parametrize(("host", "card"), [(8, 7), (7, 8), (16, 16)])
def test_session_refuses_challenges_of_the_wrong_length(host: int, card: int) -> None:
    with pytest.raises(ValueError) as e:
        Scp03Session.derive(KEYS, bytes(host), bytes(card))
    assert str(e.value) == "challenges have 8 bytes in S8 mode"
    with pytest.raises(ValueError) as e:
        Scp03Session.derive(KEYS, bytes(8), bytes(8), s16=True)
    assert str(e.value) == "challenges have 16 bytes in S16 mode"


@pytest.mark.parametrize(
    ("cla", "sm"),
    [(0x80, False), (0x84, True), (0x88, False), (0x40, False), (0x41, False), (0x60, True)],
)
def test_has_secure_messaging(cla: int, sm: bool) -> None:
    assert has_secure_messaging(cla) is sm


def test_wrong_host_cryptogram_reason() -> None:
    host = Scp03Session.derive(KEYS, HC, CC)
    card = Scp03Session.derive(KEYS, HC, CC)
    host.host_cryptogram = bytes(8)  # right session keys, so the C-MAC verifies
    _refused(
        lambda: card.check_external_authenticate(host.external_authenticate_command(0x01)),
        0x6300,
        "host cryptogram verification failed",
    )
    assert card.closed
