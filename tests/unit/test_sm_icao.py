"""ICAO Doc 9303 Part 11 Appendix D through APDUs: BAC and three protected commands, byte for byte.

A small LDS-style applet (GET CHALLENGE, EXTERNAL AUTHENTICATE with BAC, SELECT
EF, READ BINARY) built on `card.sm.applet.SmApplet` answers the worked example's
commands; the card's two random values (RND.IC, K.IC) come from a scripted RNG,
since the example fixes them. Vectors: ICAO 9303-11 App. D (as in gmrtd/gmrtd, commit
7f23b50a).
"""

from __future__ import annotations

import pytest

from card.framework import APDU, SW, CardError, transient
from card.framework.system import CLEAR_ON_DESELECT
from card.runtime import CardRuntime
from card.sm.applet import SmApplet
from card.sm.bac import BacKeys, bac_cryptogram, bac_open, bac_session
from card.sm.codec import SmError
from card.sm.kdf import bac_key_seed

AID = bytes.fromhex("F043415244454D5549434130")
MRZ = "L898902C<369080619406236"
# D.4: EF.COM (011E), 22 bytes, read as 4 + 18.
EF_COM = bytes.fromhex("60145F0104303130365F36063034303030305C026175")
RND_IC = bytes.fromhex("4608F91988702212")
RND_IFD = bytes.fromhex("781723860C06C226")
K_IFD = bytes.fromhex("0B795240CB7049B01C19B33E32804F0B")
K_IC = bytes.fromhex("0B4F80323EB3191CB04970CB4052790B")
GET_CHALLENGE = bytes.fromhex("0084000008")
EXTERNAL_AUTHENTICATE = bytes.fromhex(
    "008200002872C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A728"
)
EA_RESPONSE = bytes.fromhex(
    "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449"
)
D4 = [
    (
        "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
        "990290008E08FA855A5D4C50A8ED9000",
    ),
    (
        "0CB000000D9701048E08ED6705417E96BA5500",
        "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000",
    ),
    (
        "0CB000040D9701128E082EA28A70F3C7B53500",
        "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
    ),
]


class LdsApplet(SmApplet):
    """Just enough of an eMRTD application for the worked example."""

    challenge = transient(None, CLEAR_ON_DESELECT)
    current = transient(None, CLEAR_ON_DESELECT)

    def process_plain(self, apdu: APDU, *, protected: bool) -> bytes | None:
        if apdu.ins == 0x84 and not protected:
            self.challenge = self.system.rng.random(8)
            return self.challenge
        if apdu.ins == 0x82 and not protected:
            return self._bac(apdu.data)
        if not protected:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.ins == 0xA4 and apdu.p1 == 0x02:
            if apdu.data != b"\x01\x1e":
                raise CardError(SW.FILE_NOT_FOUND)
            self.current = EF_COM
            return None
        if apdu.ins == 0xB0:
            if self.current is None:
                raise CardError(SW.COMMAND_NOT_ALLOWED_NO_EF)
            offset = apdu.p1p2
            return self.current[offset : offset + (apdu.ne or 256)]
        raise CardError(SW.INS_NOT_SUPPORTED)

    def _bac(self, data: bytes) -> bytes:
        keys = BacKeys.from_seed(bac_key_seed(MRZ))
        rnd_ic, self.challenge = self.challenge, None
        try:
            s = bac_open(keys, data)
        except SmError:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED) from None
        if rnd_ic is None or s[8:16] != rnd_ic:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        rnd_ifd, k_ifd = s[:8], s[16:32]
        k_ic = self.system.rng.random(16)
        self.start_sm(bac_session(k_ifd, k_ic, rnd_ic, rnd_ifd))
        return bac_cryptogram(keys, rnd_ic + rnd_ifd + k_ic)


class ScriptedRng:
    """The example's two card random values, in the order the card draws them."""

    def __init__(self, *values: bytes) -> None:
        self.values = list(values)

    def random(self, n: int) -> bytes:
        v = self.values.pop(0)
        assert len(v) == n
        return v


@pytest.fixture
def card() -> CardRuntime:
    rt = CardRuntime()
    rt.install(LdsApplet, AID, default=True)
    rt.rng = ScriptedRng(RND_IC, K_IC)
    rt.power_on()
    return rt


def _bac(card: CardRuntime) -> None:
    assert card.process(GET_CHALLENGE) == RND_IC + b"\x90\x00"
    assert card.process(EXTERNAL_AUTHENTICATE) == EA_RESPONSE + b"\x90\x00"


def test_appendix_d_byte_for_byte_through_apdus(card: CardRuntime) -> None:
    _bac(card)
    for command, response in D4:
        assert card.process(bytes.fromhex(command)).hex().upper() == response


def test_the_host_side_produces_the_same_commands(card: CardRuntime) -> None:
    host = bac_session(K_IFD, K_IC, RND_IC, RND_IFD)
    _bac(card)
    plain = ["00A4020C02011E", "00B0000004", "00B0000412"]
    data = b""
    for p, (command, _response) in zip(plain, D4, strict=True):
        wrapped = host.wrap_command(bytes.fromhex(p))
        assert wrapped.hex().upper() == command
        data += host.unwrap_response(card.process(wrapped))[:-2]
    assert data == EF_COM


def test_replayed_command_is_refused_and_ends_the_session(card: CardRuntime) -> None:
    _bac(card)
    first = bytes.fromhex(D4[0][0])
    card.process(first)
    assert card.process(first) == b"\x69\x88"
    # The session is over: even the next correct command fails.
    assert card.process(bytes.fromhex(D4[1][0])) == b"\x69\x88"


# Every byte the MAC covers: INS, P1, P2 and the data objects (CLA changes the channel, Lc
# the APDU's shape, which the runtime refuses before the applet; Le' is not covered).
@pytest.mark.parametrize("index", [1, 2, 3, *range(5, 26)])
def test_any_altered_byte_is_refused(card: CardRuntime, index: int) -> None:
    _bac(card)
    cmd = bytearray.fromhex(D4[0][0])
    cmd[index] ^= 0x01
    resp = card.process(bytes(cmd))
    assert resp in (b"\x69\x88", b"\x69\x87"), resp.hex()
    assert card.process(bytes.fromhex(D4[0][0])) == b"\x69\x88"  # no session any more


def test_unprotected_command_is_refused_once_sm_runs(card: CardRuntime) -> None:
    _bac(card)
    assert card.process(bytes.fromhex("00B0000004")) == b"\x69\x87"
    assert card.process(bytes.fromhex(D4[0][0])) == b"\x69\x88"


def test_an_error_status_word_comes_back_in_clear_and_keeps_the_count(card: CardRuntime) -> None:
    host = bac_session(K_IFD, K_IC, RND_IC, RND_IFD)
    _bac(card)
    missing = host.wrap_command(bytes.fromhex("00A4020C020101"))
    assert host.unwrap_response(card.process(missing)) == b"\x6a\x82"
    # Counters still agree: the next command goes through.
    select = host.wrap_command(bytes.fromhex("00A4020C02011E"))
    assert host.unwrap_response(card.process(select)) == b"\x90\x00"


def test_wrong_bac_cryptogram_starts_nothing(card: CardRuntime) -> None:
    card.process(GET_CHALLENGE)
    bad = bytearray(EXTERNAL_AUTHENTICATE)
    bad[-2] ^= 1
    assert card.process(bytes(bad)) == b"\x69\x82"
    assert card.process(bytes.fromhex(D4[0][0])) == b"\x69\x88"


def test_the_host_sm_reader_reads_ef_com_after_bac(card: CardRuntime) -> None:
    from host.readers.inprocess import InProcessReader
    from host.readers.sm import SmReader

    _bac(card)
    reader = SmReader(InProcessReader(card), bac_session(K_IFD, K_IC, RND_IC, RND_IFD))
    assert reader.transmit(bytes.fromhex("00A4020C02011E")) == b"\x90\x00"
    assert reader.transmit(bytes.fromhex("00B0000016")) == EF_COM + b"\x90\x00"


def test_protected_commands_decode_as_secure_messaging() -> None:
    from apdu_specs import decode_command

    d = decode_command(bytes.fromhex(D4[0][0]))
    assert d.name == "SELECT" and d.issues == []
    assert d.summary.startswith("SELECT under secure messaging: ")
    assert "cryptographic checksum BF8B92D635FF24F8" in d.summary
