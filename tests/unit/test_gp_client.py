"""host.gp: the SCP03 reader wrapper and the GlobalPlatform client.

Part 1 runs `Scp03Reader` against a small stand-in Security Domain built on
the card direction of `card.gp.scp03`, to reach what a well-behaved card never
does (a bad R-MAC, 61xx under a protected response, a card without R-MAC).
Part 2 runs `GpClient` against the emulated card's ISD (content management
end to end).
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.apdu import CommandApdu
from card.gp.loadfile import describe_load_file
from card.gp.scp03 import (
    InitializeUpdateResponse,
    Scp03Error,
    Scp03Keys,
    Scp03Session,
    aes_kcv,
    pseudo_random_card_challenge,
)
from host.errors import ApduError, SecureChannelError
from host.gp.client import GpClient
from host.gp.data import (
    Privilege,
    StatusScope,
    app_life_cycle_name,
    decode_oid,
    parse_card_data,
    parse_cplc,
    parse_get_status,
    parse_key_information,
    privilege_names,
    privileges_from_bytes,
    privileges_from_names,
    privileges_to_bytes,
)
from host.gp.secure_channel import Scp03Reader
from host.presets import new_card
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.readers.wrappers import GetResponseReader

ISD = bytes.fromhex("A000000151000000")


class StandInSd(Reader):
    """A Security Domain reduced to SCP03: it echoes the data of every protected command.

    Knobs: `i` (the SCP03 "i" it announces), `chunk` (answer 61xx and hand the
    response out `chunk` bytes per GET RESPONSE), `corrupt_rmac`.
    """

    def __init__(self, keys: Scp03Keys, *, i: int = 0x70, chunk: int = 0) -> None:
        self.keys = keys
        self.i = i
        self.chunk = chunk
        self.corrupt_rmac = False
        self.counter = 0
        self.session: Scp03Session | None = None
        self.pending = b""
        self.seen: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        cmd = CommandApdu.from_bytes(apdu)
        if cmd.ins == 0xC0 and self.pending:
            return self._hand_out()
        if cmd.ins == 0x50:
            self.counter += 1
            cc = pseudo_random_card_challenge(self.keys, self.counter, ISD)
            self.session = Scp03Session.derive(self.keys, cmd.data, cc)
            iu = InitializeUpdateResponse(
                bytes(10), self.keys.kvn, self.i, cc, self.session.card_cryptogram, self.counter
            )
            return iu.to_bytes() + b"\x90\x00"
        assert self.session is not None
        if cmd.ins == 0x82:
            try:
                self.session.check_external_authenticate(apdu)
            except Scp03Error as e:
                return e.sw.to_bytes(2, "big")
            return b"\x90\x00"
        if not cmd.cla & 0x80:
            return b"\x6a\x82"  # an interindustry command: not for this stand-in
        try:
            plain = CommandApdu.from_bytes(self.session.unwrap_command(apdu))
        except Scp03Error as e:
            return e.sw.to_bytes(2, "big")
        sw = 0x6A88 if plain.ins == 0xE4 else 0x9000
        resp = bytearray(self.session.wrap_response(plain.data[::-1], sw))
        if self.corrupt_rmac and len(resp) > 2:
            resp[-3] ^= 1
        if self.chunk and len(resp) > 2:
            self.pending = bytes(resp)
            return self._hand_out()
        return bytes(resp)

    def _hand_out(self) -> bytes:
        body, sw = self.pending[:-2], self.pending[-2:]
        part, rest = body[: self.chunk], body[self.chunk :]
        if rest:
            self.pending = rest + sw
            return part + bytes((0x61, min(len(rest), 0xFF)))
        self.pending = b""
        return part + sw


def _seeded(seed: int = 1):
    r = random.Random(seed)
    return lambda n: bytes(r.getrandbits(8) for _ in range(n))


KEYS = Scp03Keys.test_keys()


@pytest.mark.parametrize("level", [0x01, 0x03, 0x11, 0x13, 0x33])
def test_scp03_reader_round_trips_through_a_stand_in_card(level: int) -> None:
    card = StandInSd(KEYS)
    reader = Scp03Reader(card, KEYS, level=level, random=_seeded())
    info = reader.open()
    assert info.kvn == 0x30 and reader.is_open
    resp = reader.transmit(CommandApdu(0x80, 0xCA, 0x00, 0x66, b"\x01\x02\x03", 256).to_bytes())
    assert resp == b"\x03\x02\x01\x90\x00"
    wire = card.seen[-1]
    assert wire[0] == 0x84  # secure messaging indicated
    if level & 0x02:
        assert b"\x01\x02\x03" not in wire


def test_responses_split_by_61xx_are_joined_before_the_rmac_check() -> None:
    card = StandInSd(KEYS, chunk=5)
    reader = Scp03Reader(card, KEYS, level=0x33, random=_seeded())
    reader.open()
    data = bytes(range(40))
    assert reader.transmit(CommandApdu(0x80, 0xCA, 0, 0, data, 256).to_bytes()) == (
        data[::-1] + b"\x90\x00"
    )
    assert any(a[1] == 0xC0 for a in card.seen)


def test_wrong_keys_are_reported_before_external_authenticate() -> None:
    card = StandInSd(KEYS)
    reader = Scp03Reader(card, Scp03Keys.single(bytes(16)), random=_seeded())
    with pytest.raises(SecureChannelError, match="card cryptogram"):
        reader.open()
    assert [a[1] for a in card.seen] == [0x50]
    with pytest.raises(SecureChannelError, match="no secure channel"):
        reader.transmit(bytes.fromhex("80CA006600"))


def test_bad_rmac_ends_the_session() -> None:
    card = StandInSd(KEYS)
    reader = Scp03Reader(card, KEYS, level=0x11, random=_seeded())
    reader.open()
    card.corrupt_rmac = True
    with pytest.raises(SecureChannelError, match="R-MAC"):
        reader.transmit(CommandApdu(0x80, 0xCA, 0, 0, b"\xaa", 256).to_bytes())
    assert not reader.is_open


def test_error_status_words_come_back_unprotected() -> None:
    reader = Scp03Reader(StandInSd(KEYS), KEYS, level=0x33, random=_seeded())
    reader.open()
    assert reader.transmit(CommandApdu(0x80, 0xE4, 0, 0, b"\x4f\x00").to_bytes()) == b"\x6a\x88"


def test_interindustry_commands_pass_through_unwrapped() -> None:
    card = StandInSd(KEYS)
    reader = Scp03Reader(card, KEYS, random=_seeded())
    reader.open()
    assert reader.transmit(bytes.fromhex("00A4040000")) == b"\x6a\x82"
    assert card.seen[-1] == bytes.fromhex("00A4040000")


def test_levels_the_card_does_not_offer_are_refused() -> None:
    reader = Scp03Reader(StandInSd(KEYS, i=0x10), KEYS, level=0x11, random=_seeded())
    with pytest.raises(SecureChannelError, match="R-MAC"):
        reader.open()


def test_refused_initialize_update_is_an_apdu_error() -> None:
    class Refusing(Reader):
        def transmit(self, apdu: bytes) -> bytes:
            return b"\x6a\x88"

    with pytest.raises(ApduError) as e:
        Scp03Reader(Refusing(), KEYS).open()
    assert e.value.sw == 0x6A88
    assert "INITIALIZE UPDATE" in str(e.value) and "6A88" in str(e.value)


def test_requested_key_version_must_be_the_one_used() -> None:
    card = StandInSd(Scp03Keys.single(KEYS.enc, kvn=0x31))
    reader = Scp03Reader(card, KEYS, kvn=0x32, random=_seeded())
    with pytest.raises(SecureChannelError, match="key set 32"):
        reader.open()
    assert card.seen[0][2] == 0x32  # P1 of INITIALIZE UPDATE


# -- Decoders --------------------------------------------------------------------------


def test_get_status_tagged_and_legacy_decoding() -> None:
    tagged = bytes.fromhex(
        "E31C4F07A00000015100009F700107C5039EFE80CC08A000000151000000"
        "E3154F05F0000000019F700183C50100C405F000000002"
    )
    a, b = parse_get_status(tagged, StatusScope.APPLICATIONS)
    assert a.aid == bytes.fromhex("A0000001510000") and a.kind == "SD"
    assert a.privileges & Privilege.SECURITY_DOMAIN and a.privileges & Privilege.TRUSTED_PATH
    assert a.associated_sd == ISD and a.life_cycle_name == "SELECTABLE"
    assert b.kind == "APP" and b.life_cycle_name == "LOCKED"
    assert b.load_file_aid == bytes.fromhex("F000000002")
    legacy = bytes.fromhex("05F000000003070007A00000015100000F80")
    app, sd = parse_get_status(legacy, StatusScope.APPLICATIONS, tagged=False)
    assert (app.aid, app.life_cycle, app.kind) == (bytes.fromhex("F000000003"), 0x07, "APP")
    assert sd.kind == "SD" and sd.life_cycle_name == "PERSONALIZED"
    modules = bytes.fromhex("05F00000000301000205F00000000405F000000005")
    (elf,) = parse_get_status(modules, StatusScope.LOAD_FILES_AND_MODULES, tagged=False)
    assert elf.modules == (bytes.fromhex("F000000004"), bytes.fromhex("F000000005"))
    with pytest.raises(ValueError):
        parse_get_status(bytes.fromhex("05F0000000"), StatusScope.LOAD_FILES, tagged=False)


@given(st.integers(0, 0xFFFFFF))
@settings(max_examples=200, deadline=None)
def test_privileges_round_trip(value: int) -> None:
    p = Privilege(value & sum(m.value for m in Privilege))
    assert privileges_from_bytes(privileges_to_bytes(p)) == p
    assert privileges_from_names(",".join(privilege_names(p))) == p
    if not p & 0xFFFF:
        assert privileges_to_bytes(p, short=True) == bytes((p >> 16,))


def test_life_cycle_names() -> None:
    assert app_life_cycle_name(0x03) == "INSTALLED"
    assert app_life_cycle_name(0x07) == "SELECTABLE"
    assert app_life_cycle_name(0x0F, security_domain=True) == "PERSONALIZED"
    assert app_life_cycle_name(0x87) == "LOCKED"
    assert "0F" in app_life_cycle_name(0x0F)


def test_card_data_cplc_and_key_information() -> None:
    # GPC v2.3.1 Annex H.2 example layout: GP 2.3.1, SCP03 i=70.
    card_data = bytes.fromhex(
        "663F733D06072A864886FC6B01600C060A2A864886FC6B02020301"
        "630906072A864886FC6B03640B06092A864886FC6B040370"
        "660C060A2B060104012A026E0103"
    )
    cd = parse_card_data(card_data)
    assert cd.gp_version == "2.3.1"
    assert cd.secure_channels == ((3, 0x70),)
    assert decode_oid(bytes.fromhex("2A864886FC6B01")) == "1.2.840.114283.1"
    cplc = parse_cplc(bytes.fromhex("9F7F2A") + bytes(range(42)))
    assert cplc.fields["ic_fabricator"] == b"\x00\x01"
    assert cplc.fields["ic_serial_number"] == bytes(range(12, 16))
    assert cplc.fields["ic_personalization_equipment_id"] == bytes(range(38, 42))
    keys = parse_key_information(bytes.fromhex("E012C00401308810C00402308810C00403308810"))
    assert [(k.key_id, k.kvn, k.components) for k in keys] == [
        (1, 0x30, ((0x88, 16),)),
        (2, 0x30, ((0x88, 16),)),
        (3, 0x30, ((0x88, 16),)),
    ]


# -- Part 2: GpClient against the emulated card's ISD ---------------------------------------


NOTES_AID = bytes.fromhex("F0000000AA01")


class Spy(Reader):
    """Records every command on the wire (below the secure channel)."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.inner.transmit(apdu)


@pytest.fixture
def card():
    rt = new_card("gp", rng_seed=7)
    yield rt
    rt.close()


def _client(rt, **kw) -> tuple[GpClient, Spy]:
    spy = Spy(InProcessReader(rt))
    return GpClient(spy, random=_seeded(3), **kw), spy


def _select(rt, aid: bytes) -> tuple[bytes, int]:
    reader = GetResponseReader(InProcessReader(rt))
    resp = reader.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x00, aid, 256).to_bytes())
    return resp[:-2], int.from_bytes(resp[-2:], "big")


@pytest.mark.parametrize("level", [0x01, 0x03, 0x11, 0x13, 0x33])
def test_content_management_cycle(card, level: int) -> None:
    """list -> load -> install -> select the new applet -> delete -> list."""
    desc = describe_load_file("notes")
    client, spy = _client(card, level=level)
    with client:
        before = client.registry()
        assert before.isd[0].aid == ISD and before.isd[0].life_cycle_name == "OP_READY"
        assert before.find(desc.aid) is None
        client.load(desc.to_bytes(), desc.aid, with_hash=level == 0x33)
        client.install(desc.aid, desc.modules[0].aid, NOTES_AID, params=b"hello")
        mid = client.registry()
    pkg = mid.find(desc.aid)
    assert pkg is not None and pkg.kind == "PKG" and pkg.modules == (desc.modules[0].aid,)
    app = mid.find(NOTES_AID)
    assert app is not None and app.life_cycle_name == "SELECTABLE"
    assert app.load_file_aid == desc.aid
    # Every LOAD block fits a short APDU once secured, and blocks are numbered.
    loads = [a for a in spy.sent if a[1] == 0xE8]
    assert loads and all(len(a) <= 5 + 255 + 1 for a in loads)
    assert [a[3] for a in loads] == list(range(len(loads)))
    assert loads[-1][2] == 0x80 and all(a[2] == 0 for a in loads[:-1])

    data, sw = _select(card, NOTES_AID)
    assert sw == 0x9000
    resp = GetResponseReader(InProcessReader(card)).transmit(bytes.fromhex("80CA000000"))
    assert resp == b"hello\x90\x00"

    client, _ = _client(card, level=level)
    with client:
        client.delete(NOTES_AID)
        client.delete(desc.aid)
        after = client.registry()
    assert after.find(NOTES_AID) is None and after.find(desc.aid) is None
    assert [e.aid for e in after.applications] == [e.aid for e in before.applications]
    assert _select(card, NOTES_AID)[1] != 0x9000


def test_refusals_surface_as_apdu_errors(card) -> None:
    desc = describe_load_file("notes")
    client, _ = _client(card)
    with client:
        with pytest.raises(ApduError) as e:
            client.delete(NOTES_AID)
        assert e.value.sw == 0x6A88 and "DELETE" in str(e.value)
        with pytest.raises(ApduError) as e:
            client.install(desc.aid, desc.modules[0].aid, NOTES_AID)  # not loaded
        assert e.value.sw == 0x6A88
        client.load(desc.to_bytes(), desc.aid)
        client.install(desc.aid, desc.modules[0].aid, NOTES_AID)
        with pytest.raises(ApduError) as e:
            client.install(desc.aid, desc.modules[0].aid, NOTES_AID)  # AID in use
        assert e.value.sw in (0x6A80, 0x6985, 0x6A89)
        with pytest.raises(ApduError) as e:
            client.delete(desc.aid)  # an application still comes from it
        assert e.value.sw == 0x6985
        client.delete(desc.aid, related=True)
        assert client.registry().find(NOTES_AID) is None


def test_lock_unlock_and_personalize(card) -> None:
    desc = describe_load_file("notes")
    client, _ = _client(card, level=0x03)
    with client:
        client.load(desc.to_bytes(), desc.aid)
        client.install(desc.aid, desc.modules[0].aid, NOTES_AID)
        client.personalize(NOTES_AID, b"A" * 300, block_size=100)
        client.lock(NOTES_AID)
        assert client.registry().find(NOTES_AID).life_cycle_name == "LOCKED"
    assert _select(card, NOTES_AID)[1] != 0x9000
    client, _ = _client(card, level=0x03)
    with client:
        client.unlock(NOTES_AID)
        assert client.registry().find(NOTES_AID).life_cycle_name == "SELECTABLE"
    assert _select(card, NOTES_AID)[1] == 0x9000
    resp = GetResponseReader(InProcessReader(card)).transmit(bytes.fromhex("80CA000000"))
    assert resp == b"A" * 300 + b"\x90\x00"


def test_card_life_cycle_gates_content_management(card) -> None:
    client, _ = _client(card)
    with client:
        client.set_card_life_cycle(0x07)
        client.set_card_life_cycle(0x0F)
        assert client.registry().isd[0].life_cycle_name == "SECURED"
        client.set_card_life_cycle(0x7F)
    client, _ = _client(card)
    with client:
        with pytest.raises(ApduError) as e:
            client.delete(bytes.fromhex("F043415244454D5502"))
        assert e.value.sw == 0x6A81
        client.set_card_life_cycle(0x0F)
        with pytest.raises(ApduError) as e:
            client.set_card_life_cycle(0x01)  # no way back to OP_READY
        assert e.value.sw in (0x6A80, 0x6985)


def test_put_key_then_authenticate_with_the_new_keys(card) -> None:
    new = Scp03Keys(bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48)), 0x31)
    client, _ = _client(card)
    with client:
        resp = client.put_key(new)
        assert resp[0] == 0x31 and len(resp) == 10
        assert [k.kvn for k in client.key_information()].count(0x31) == 3
    with GpClient(InProcessReader(card), new, kvn=0x31, random=_seeded(5)) as c2:
        assert c2.registry().isd
    # Replacing key set 30 retires the test keys.
    newer = Scp03Keys.single(bytes(range(100, 116)), 0x30)
    with GpClient(InProcessReader(card), random=_seeded(6)) as c3:
        c3.put_key(newer, replace_kvn=0x30)
    with pytest.raises(SecureChannelError, match="card cryptogram"):
        GpClient(InProcessReader(card), kvn=0x30, random=_seeded(7)).open()
    with GpClient(InProcessReader(card), newer, kvn=0x30, random=_seeded(8)) as c4:
        assert c4.registry().isd


def test_wrong_keys_and_missing_channel(card) -> None:
    with pytest.raises(SecureChannelError):
        GpClient(InProcessReader(card), Scp03Keys.single(bytes(16))).open()
    client = GpClient(InProcessReader(card))
    with pytest.raises(SecureChannelError, match="needs a secure channel"):
        client.registry()


def test_get_data_without_a_secure_channel(card) -> None:
    client = GpClient(InProcessReader(card))
    isd = client.select_isd()
    assert isd.aid == ISD and isd.max_command_data == 0xFF
    cd = client.card_data()
    assert cd.gp_version == "2.3.1" and cd.secure_channels == ((3, 0x70),)
    assert len(client.cplc().fields) == 18
    assert {k.kvn for k in client.key_information()} == {0x30}


# -- Part 3: `cardemu gp` ----------------------------------------------------------------------


def cardemu(*args: str) -> tuple[int, str, str]:
    """Run the CLI's real entry point; returns (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from host.cli import main

    with CliRunner().isolation() as (out, err, _):
        code = main(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def image(tmp_path) -> str:
    path = str(tmp_path / "gp.card")
    new_card("gp", path, rng_seed=1).close()
    return path


def test_cli_install_list_lock_delete(image: str) -> None:
    code, out, _ = cardemu(
        "gp", "install", "notes", "--card", image, "--aid", "F0000000AA01", "--params", "6869"
    )
    assert code == 0 and "installed F0000000AA01" in out
    code, out, _ = cardemu("gp", "list", "--card", image, "--json", "--level", "33")
    assert code == 0
    apps = {a["aid"]: a for a in json.loads(out)["applications"]}
    assert apps["F0000000AA01"]["life_cycle_name"] == "SELECTABLE"
    assert cardemu("gp", "lock", "F0000000AA01", "--card", image)[0] == 0
    code, out, _ = cardemu("gp", "list", "--card", image, "--json")
    assert {a["aid"]: a for a in json.loads(out)["applications"]}["F0000000AA01"][
        "life_cycle_name"
    ] == "LOCKED"
    assert cardemu("gp", "unlock", "F0000000AA01", "--card", image)[0] == 0
    assert cardemu("gp", "delete", "F0000000AA01", "--card", image)[0] == 0
    code, out, err = cardemu("gp", "delete", "F0000000AA01", "--card", image)
    assert code == 3
    assert err.strip() == (
        "Error: DELETE F0000000AA01: card answered 6A88 "
        "(Referenced data or reference data not found)"
    )


def test_cli_usage_and_channel_errors(image: str) -> None:
    code, _, err = cardemu("gp", "delete", "F000", "--card", image)
    assert code == 2 and err.startswith("Error: AID")
    code, _, err = cardemu("gp", "list", "--card", image, "--key", "00" * 16)
    assert code == 1 and "card cryptogram" in err and len(err.strip().splitlines()) == 1
    code, _, err = cardemu("gp", "install", "no-such-applet", "--card", image)
    assert code == 2


def test_cli_info_and_put_key(image: str) -> None:
    code, out, _ = cardemu("gp", "info", "--card", image, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["isd"] == "A000000151000000"
    assert info["card_data"]["gp_version"] == "2.3.1"
    assert len(info["cplc"]) == 18
    new = "000102030405060708090A0B0C0D0E0F"
    code, out, _ = cardemu(
        "gp", "put-key", "--card", image, "--new-kvn", "31", "--new-key", new, "--json"
    )
    assert code == 0
    kcv = aes_kcv(bytes.fromhex(new)).hex().upper()
    assert json.loads(out) == {"kvn": "31", "kcv": {"enc": kcv, "mac": kcv, "dek": kcv}}
    code, _, _ = cardemu("gp", "list", "--card", image, "--key", new, "--kvn", "31")
    assert code == 0


def test_cli_card_status(image: str) -> None:
    assert cardemu("gp", "card-status", "initialized", "--card", image)[0] == 0
    code, out, _ = cardemu("gp", "card-status", "secured", "--card", image)
    assert code == 0 and "SECURED" in out
    code, _, err = cardemu("gp", "card-status", "initialized", "--card", image)
    assert code == 3 and "SET STATUS" in err


def test_every_command_the_client_sends_decodes_cleanly(card) -> None:
    """The client's plain commands and the card's answers read without issue in apdu_specs."""
    from apdu_specs.framework.registry import decode_command
    from apdu_specs.framework.response import decode_response

    desc = describe_load_file("notes")
    client, spy = _client(card, level=0x33)
    plain: list[tuple[bytes, bytes]] = []
    with client:
        inner = client.scp.transmit

        def recording(apdu: bytes) -> bytes:
            resp = inner(apdu)
            plain.append((apdu, resp))
            return resp

        client.scp.transmit = recording  # type: ignore[method-assign]
        client.registry()
        client.load(desc.to_bytes(), desc.aid, with_hash=True)
        client.install(desc.aid, desc.modules[0].aid, NOTES_AID, params=b"x")
        client.personalize(NOTES_AID, b"notes")
        client.lock(NOTES_AID)
        client.unlock(NOTES_AID)
        client.delete(desc.aid, related=True)
        client.put_key(Scp03Keys.single(bytes(16), 0x31))
        client.get_data(0x66)
    names = set()
    for cmd, resp in plain:
        d = decode_command(cmd, context=ISD)
        assert d.issues == [], (cmd.hex(), d.issues)
        r = decode_response(d.spec, resp, d)
        assert r.issues == [], (resp.hex(), r.issues)
        names.add(d.name)
    assert names == {
        "GET STATUS", "INSTALL", "LOAD", "STORE DATA", "SET STATUS", "DELETE", "PUT KEY",
        "GET DATA",
    }  # fmt: skip
    # And on the wire, the SCP variants: INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, secured.
    wire = [decode_command(a, context=ISD) for a in spy.sent]
    assert wire[1].name == "INITIALIZE UPDATE" and wire[2].name == "EXTERNAL AUTHENTICATE"
    assert all(w.issues == [] for w in wire)
    gp = [w for w in wire[3:] if int(w.fields["cla"]) & 0x80]  # not GET RESPONSE (00 C0)
    assert gp and all(w.spec is not None and w.spec.variant.endswith("secured") for w in gp)
