"""ETSI TS 102 225 secured packets: known answers, round trips, every refusal's RSC.

Known answers: osmocom pySim's tests/unittests/test_ota.py records command
packets it built and proofs of receipt that sysmocom SJA5 sample cards
returned for them (TAR B00011, the cards' test key sets 3 (3DES) and 2
(AES-128)). The values are copied here as test vectors; no code is.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card.ota import scp80
from card.ota.scp80 import (
    Checksum,
    CounterMode,
    OtaKeyset,
    PorMode,
    ResponseStatus,
    SecurityError,
    Spi,
)

H = bytes.fromhex

# pySim test_ota.py: the SJA5 sample cards' key sets.
SJA5_3DES = OtaKeyset(
    3, H("300102030405060708090a0b0c0d0e0f"), H("301102030405060708090a0b0c0d0e0f"), aes=False
)
SJA5_AES = OtaKeyset(
    2, H("200102030405060708090a0b0c0d0e0f"), H("201102030405060708090a0b0c0d0e0f")
)
TAR = H("b00011")
SELECT_MF = H("00a40004023f00")

# (name, keyset, SPI, command packet, proof of receipt as the card sent it)
VECTORS = [
    (
        "3DES ciphered CC, PoR ciphered CC",
        SJA5_3DES,
        H("0619"),
        "00201506193535b00011ae733256918d050b87c94fbfe12e4dc402f262c41cf67f2f",
        "027100001c12b000118bb989492c632529326a2f4681feb37c825bc9021c9f6d0b",
    ),
    (
        "3DES ciphered CC, PoR CC",
        SJA5_3DES,
        H("0609"),
        "00201506093535b00011c49ac91ab8159ba5b83a54fb6385e0a5e31694f8b215fafc",
        "027100001612b0001100000000000000b5bcd6353a421fae016132",
    ),
    (
        "3DES ciphered CC, PoR plain",
        SJA5_3DES,
        H("0601"),
        "00201506013535b000113190be334900f52b025f3f7eddfe868e96ebf310023b7769",
        "027100000e0ab0001100000000000000016132",
    ),
    (
        "AES-128 ciphered CC, PoR ciphered CC",
        SJA5_AES,
        H("0619"),
        "00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058",
        "027100002412b00011ebc6b497e2cad7aedf36ace0e3a29b38853f0fe9ccde81913be5702b73abce1f",
    ),
]


@pytest.mark.parametrize("name,keyset,spi,command,por", VECTORS, ids=[v[0] for v in VECTORS])
def test_known_command_packets(
    name: str, keyset: OtaKeyset, spi: bytes, command: str, por: str
) -> None:
    s = Spi.from_bytes(spi)
    assert s.to_bytes() == spi
    built = scp80.build_command_packet(SELECT_MF, spi=s, tar=TAR, counter=0, keyset=keyset)
    assert built.hex() == command
    opened = scp80.open_command_packet(H(command), keyset)
    assert (opened.data, opened.counter, opened.header.tar) == (SELECT_MF, 0, TAR)


@pytest.mark.parametrize("name,keyset,spi,command,por", VECTORS, ids=[v[0] for v in VECTORS])
def test_known_proofs_of_receipt(
    name: str, keyset: OtaKeyset, spi: bytes, command: str, por: str
) -> None:
    s = Spi.from_bytes(spi)
    raw = H(por)
    assert raw[:3] == scp80.SMS_RESPONSE_PREFIX
    rp = scp80.open_response_packet(
        raw[3:], spi=s, kic=keyset.kic_byte, kid=keyset.kid_byte, keyset=keyset
    )
    # compact response: one command executed, 61 32 (the FCP waits for GET RESPONSE)
    assert (rp.status, rp.tar, rp.counter, rp.data) == (ResponseStatus.POR_OK, TAR, 0, H("016132"))
    # and the card side builds exactly what the card sent
    again = scp80.build_response_packet(
        tar=TAR,
        counter=0,
        status=0,
        data=H("016132"),
        spi=s,
        kic=keyset.kic_byte,
        kid=keyset.kid_byte,
        keyset=keyset,
    )
    assert again == raw[3:]


def test_known_3des_command_without_cc() -> None:
    # pySim test_ota.py Test_SMS_3DES: ciphering only, key set 3 of 8988211000000467285.
    ks = OtaKeyset(
        3, H("C21DD66ACAC13CB3BC8B331B24AFB57B"), H("12110C78E678C25408233076AA033615"), aes=False
    )
    spi = Spi.from_bytes(H("0419"))
    assert spi == Spi(Checksum.NONE, True, CounterMode.NONE, PorMode.ALWAYS, Checksum.CC, True)
    built = scp80.build_command_packet(
        H("00a40000023f00"), spi=spi, tar=H("b00000"), counter=0, keyset=ks
    )
    assert built.hex() == "00180d04193535b00000e3ec80a849b554421276af3883927c20"


def test_bad_cc_is_refused_with_rsc_01() -> None:
    pkt = bytearray(H(VECTORS[1][3]))
    pkt[-1] ^= 1
    with pytest.raises(SecurityError) as e:
        scp80.open_command_packet(bytes(pkt), SJA5_3DES)
    assert e.value.status == ResponseStatus.RC_CC_DS_FAILED


def test_bad_block_length_is_rsc_05() -> None:
    pkt = H(VECTORS[0][3])[:-1]
    pkt = (len(pkt) - 2).to_bytes(2, "big") + pkt[2:]
    with pytest.raises(SecurityError) as e:
        scp80.open_command_packet(pkt, SJA5_3DES)
    assert e.value.status == ResponseStatus.CIPHERING_ERROR


def test_wrong_family_is_rsc_06() -> None:
    with pytest.raises(SecurityError) as e:
        scp80.open_command_packet(H(VECTORS[0][3]), OtaKeyset(3, bytes(16), bytes(16)))
    assert e.value.status == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR


def test_no_keyset_is_rsc_06() -> None:
    with pytest.raises(SecurityError) as e:
        scp80.open_command_packet(H(VECTORS[0][3]), None)
    assert e.value.status == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR


@pytest.mark.parametrize(
    "mode,received,stored,status",
    [
        (CounterMode.HIGHER, 5, 5, ResponseStatus.CNTR_LOW),
        (CounterMode.HIGHER, 4, 5, ResponseStatus.CNTR_LOW),
        (CounterMode.ONE_HIGHER, 5, 5, ResponseStatus.CNTR_LOW),
        (CounterMode.ONE_HIGHER, 7, 5, ResponseStatus.CNTR_HIGH),
        (CounterMode.HIGHER, scp80.COUNTER_MAX, scp80.COUNTER_MAX, ResponseStatus.CNTR_BLOCKED),
        (CounterMode.ONE_HIGHER, 1, scp80.COUNTER_MAX, ResponseStatus.CNTR_BLOCKED),
    ],
)
def test_counter_refusals(mode: CounterMode, received: int, stored: int, status: int) -> None:
    with pytest.raises(SecurityError) as e:
        scp80.check_counter(mode, received, stored)
    assert e.value.status == status


@pytest.mark.parametrize(
    "mode,received,stored",
    [
        (CounterMode.HIGHER, 6, 5),
        (CounterMode.HIGHER, 100, 5),
        (CounterMode.ONE_HIGHER, 6, 5),
        (CounterMode.NONE, 0, 5),
        (CounterMode.NO_CHECK, 0, 5),
    ],
)
def test_counter_accepted(mode: CounterMode, received: int, stored: int) -> None:
    scp80.check_counter(mode, received, stored)


def test_crc_check_values() -> None:
    # The CRC catalogue's check values over "123456789": CRC-16/X-25 (ISO/IEC 13239) 906E,
    # CRC-32 (ISO-HDLC) CBF43926.
    assert scp80.crc16(b"123456789") == 0x906E
    assert scp80.redundancy_check(scp80.CRC32, b"123456789") == H("cbf43926")


def test_msl() -> None:
    assert scp80.meets_msl(Spi(), 0x16)
    assert not scp80.meets_msl(Spi(ciphered=False), 0x16)
    assert not scp80.meets_msl(Spi(counter=CounterMode.NO_CHECK), 0x16)
    assert not scp80.meets_msl(Spi(checksum=Checksum.RC), 0x12)
    assert scp80.meets_msl(Spi(counter=CounterMode.ONE_HIGHER, ciphered=False), 0x12)


KEYSETS = [
    OtaKeyset(1, bytes(range(16)), bytes(range(16, 32)), aes=True),
    OtaKeyset(2, bytes(range(32)), bytes(range(32, 64)), aes=True),
    OtaKeyset(3, bytes(range(16)), bytes(range(16, 32)), aes=False),
    OtaKeyset(4, bytes(range(24)), bytes(range(24, 48)), aes=False),
    OtaKeyset(5, bytes(range(8)), bytes(range(8, 16)), aes=False),
]

spis = st.builds(
    Spi,
    checksum=st.sampled_from([Checksum.NONE, Checksum.RC, Checksum.CC]),
    ciphered=st.booleans(),
    counter=st.sampled_from(list(CounterMode)),
    por=st.sampled_from(list(PorMode)),
    por_checksum=st.sampled_from([Checksum.NONE, Checksum.RC, Checksum.CC]),
    por_ciphered=st.booleans(),
    por_by_submit=st.booleans(),
)


@given(
    spi=spis,
    keyset=st.sampled_from(KEYSETS),
    data=st.binary(max_size=300),
    counter=st.integers(0, scp80.COUNTER_MAX),
    tar=st.binary(min_size=3, max_size=3),
)
def test_command_packet_round_trip(
    spi: Spi, keyset: OtaKeyset, data: bytes, counter: int, tar: bytes
) -> None:
    assert Spi.from_bytes(spi.to_bytes()) == spi
    pkt = scp80.build_command_packet(data, spi=spi, tar=tar, counter=counter, keyset=keyset)
    header, chl = scp80.parse_command_header(pkt)
    assert (header.spi, header.tar) == (spi, tar)
    opened = scp80.open_command_packet(pkt, keyset)
    assert (opened.data, opened.counter) == (data, counter)


@given(
    spi=spis,
    keyset=st.sampled_from(KEYSETS),
    data=st.binary(max_size=200),
    counter=st.integers(0, scp80.COUNTER_MAX),
    status=st.sampled_from(list(ResponseStatus)),
)
def test_response_packet_round_trip(
    spi: Spi, keyset: OtaKeyset, data: bytes, counter: int, status: ResponseStatus
) -> None:
    kic, kid = keyset.kic_byte, keyset.kid_byte
    if spi.por_checksum == Checksum.RC:
        kid = scp80.CRC16
    pkt = scp80.build_response_packet(
        tar=TAR, counter=counter, status=status, data=data, spi=spi, kic=kic, kid=kid, keyset=keyset
    )
    rp = scp80.open_response_packet(pkt, spi=spi, kic=kic, kid=kid, keyset=keyset)
    assert (rp.tar, rp.counter, rp.status, rp.data) == (TAR, counter, status, data)


@given(keyset=st.sampled_from(KEYSETS), data=st.binary(max_size=100), flip=st.integers(0, 10_000))
def test_any_flipped_bit_fails_the_cc(keyset: OtaKeyset, data: bytes, flip: int) -> None:
    spi = Spi(counter=CounterMode.NONE)
    pkt = bytearray(scp80.build_command_packet(data, spi=spi, tar=TAR, counter=1, keyset=keyset))
    pos = 10 + flip % (len(pkt) - 10)  # somewhere in the ciphered part
    pkt[pos] ^= 1 << (flip % 8)
    with pytest.raises(SecurityError) as e:
        scp80.open_command_packet(bytes(pkt), keyset)
    assert e.value.status in (ResponseStatus.RC_CC_DS_FAILED, ResponseStatus.CIPHERING_ERROR)


def test_unsecured_error_por_is_accepted_but_not_a_success() -> None:
    spi = Spi()
    err = scp80.build_response_packet(tar=TAR, counter=0, status=9, data=b"", spi=None)
    rp = scp80.open_response_packet(err, spi=spi, kic=0x12, kid=0x12, keyset=KEYSETS[0])
    assert (rp.status, rp.secured) == (ResponseStatus.TAR_UNKNOWN, False)
    forged = scp80.build_response_packet(
        tar=TAR, counter=0, status=0, data=b"\x01\x90\x00", spi=None
    )
    with pytest.raises(SecurityError):
        scp80.open_response_packet(forged, spi=spi, kic=0x12, kid=0x12, keyset=KEYSETS[0])
