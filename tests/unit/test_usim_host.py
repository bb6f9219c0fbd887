"""host.usim (UsimSession, check_auth) and `cardemu usim read|auth`, on the in-process card."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from card.crypto.milenage import Milenage, generate_auth_vector
from card.uicc.builder import TEST_IMSI, TEST_K, TEST_OPC, sample_iccid
from host.cli import cli
from host.errors import ApduError
from host.readers.inprocess import InProcessReader
from host.usim import AuthResult, PinError, UsimSession, check_auth
from tests.unit.usim_cards import usim_card

RAND = bytes(16)
AUTN = bytes.fromhex("ec9320c2c2120000c8b7de2a3449f1bd")  # osmocom example, SQN 22


def session(**overrides: object) -> UsimSession:
    reader = InProcessReader(usim_card(**overrides))
    reader.connect()
    return UsimSession(reader)


def test_read_decodes_the_standard_files() -> None:
    info = session().read()
    assert info.iccid == sample_iccid()
    assert info.imsi == TEST_IMSI
    assert str(info.plmn) == "001-01"
    assert info.msisdn == "+0010100001"
    assert info.spn is not None and info.spn.name == "cardemu"
    assert info.services is not None and {27, 38} <= info.services
    assert info.acc == {1}
    assert [e.code for e in info.ecc] == ["112", "911"]
    assert info.errors == {}
    doc = info.to_json()
    json.dumps(doc)
    assert doc["usim_aid"] == "A0000000871002FFFFFFFF8907090000"


def test_read_notes_files_behind_pin1() -> None:
    s = session(pin1_enabled=True)
    info = s.read()
    assert info.imsi is None and info.errors["imsi"] == "6982"
    assert info.spn is not None  # read ALW
    with pytest.raises(PinError) as e:
        s.verify_pin("0000")
    assert e.value.tries_left == 2
    assert s.pin_tries() == 2
    s.verify_pin("1234")
    assert s.pin_tries() is None
    assert s.read().imsi == TEST_IMSI


def test_authenticate_and_check() -> None:
    s = session()
    s.select_usim()
    alg = Milenage(TEST_K, TEST_OPC)
    result = s.authenticate(RAND, AUTN)
    assert result.res == bytes.fromhex("e9fc88ccc8a35381")
    assert check_auth(result, alg, RAND).ok
    again = s.authenticate(RAND, AUTN)
    assert again.sync_failure
    verdict = check_auth(again, alg, RAND)
    assert verdict.ok and verdict.sqn_ms == 0x22
    assert not check_auth(result, Milenage(TEST_K, bytes(16)), RAND).ok
    with pytest.raises(ApduError) as e:
        s.authenticate(bytes(range(16)), AUTN)
    assert e.value.sw == 0x9862
    gsm = s.authenticate_gsm(RAND)
    assert gsm.sres == bytes.fromhex("215fdb4d") and check_auth(gsm, alg, RAND).ok


def test_check_auth_rejects_a_forged_auts() -> None:
    alg = Milenage(TEST_K, TEST_OPC)
    assert not check_auth(AuthResult(auts=bytes(14)), alg, RAND).ok
    av = generate_auth_vector(alg, RAND, (0x40).to_bytes(6, "big"), b"\x80\x00")
    assert check_auth(AuthResult(res=av.xres, ck=av.ck, ik=av.ik), alg, RAND).ok
    assert not check_auth(AuthResult(res=av.xres, ck=av.ik, ik=av.ck), alg, RAND).ok


def test_cli_read_json() -> None:
    r = CliRunner().invoke(cli, ["usim", "read", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["imsi"] == TEST_IMSI and doc["iccid"] == sample_iccid()


def test_cli_auth_builds_and_checks() -> None:
    args = ["usim", "auth", "-q", "--json", "--k", TEST_K.hex(), "--opc", TEST_OPC.hex()]
    r = CliRunner().invoke(cli, [*args, "--rand", RAND.hex(), "--sqn", "22", "--amf", "0000"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["autn"] == AUTN.hex().upper()
    assert doc["res"] == "E9FC88CCC8A35381" and doc["check"]["ok"] is True


def test_cli_auth_wrong_mac_exits_3() -> None:
    r = CliRunner().invoke(cli, ["usim", "auth", "-q", "--rand", "01" * 16, "--autn", AUTN.hex()])
    assert r.exit_code == 3
    assert "9862" in r.output


def test_cli_auth_mismatch_exits_1() -> None:
    r = CliRunner().invoke(
        cli,
        ["usim", "auth", "-q", "--rand", RAND.hex(), "--autn", AUTN.hex(), "--k", TEST_K.hex(),
         "--op", TEST_OPC.hex()],
    )  # fmt: skip
    # the AUTN was made with OPc, the check uses it as OP: the MAC still verifies on the
    # card (its own keys), and the check finds RES/CK/IK differ
    assert r.exit_code == 1
    assert "differ" in r.output


def test_card_info_shows_profiles(tmp_path) -> None:  # noqa: ANN001
    from host.presets import new_card

    path = str(tmp_path / "u.card")
    new_card("usim", path).close()
    r = CliRunner().invoke(cli, ["card", "info", "--json", path])
    assert r.exit_code == 0, r.output
    (profile,) = json.loads(r.output)["profiles"]
    assert profile["imsi"] == TEST_IMSI and profile["enabled"] is True
    assert TEST_K.hex() not in r.output
