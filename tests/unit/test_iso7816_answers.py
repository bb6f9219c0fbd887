"""The card's answers follow ISO/IEC 7816: one regression test per reproduction.

- Ne is honoured on every path that answers data (ISO/IEC 7816-4 §5.1), by one
  mechanism (`CardRuntime._answer`), checked by a property over several cards;
- an interindustry CLA announcing secure messaging reaches no application that
  does not unwrap it (§5.4.1): 6882;
- the eUICC's base MF cannot be deactivated without ADM1 (TS 102 221 §9.2.7);
- no applet answers 6F00 on purpose (6F00 means "an exception escaped");
- a USIM personalised with SQN_MS refuses that SQN (TS 33.102 Annex C.2);
- an aborted transaction leaves the runtime's registry in step with NVM, and
  `JCSystem.transaction()` joins an open transaction;
- traces mask PINs and keys below the TRAFFIC level;
- `UsimSession` fetches GET RESPONSE through the bounded wrapper.
"""

from __future__ import annotations

import ast
import functools
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from applets.sample import COUNTER_CLIENT_AID, ECHO_AID, PURSE_AID, EchoApplet
from card.apdu import CommandApdu
from card.crypto.milenage import Milenage, generate_auth_vector, parse_auts
from card.framework import APDU, Applet, CardError
from card.framework.exceptions import TransactionError
from card.gp.isd import ISD_AID, IssuerSecurityDomain
from card.profiles import ProfileStoreError, ProfileStoreReason
from card.runtime import CardRuntime
from card.sgp22.ecasd import ISD_R_AID
from card.uicc.auth import SqnPolicy, SqnState, check_sqn
from card.uicc.builder import DEFAULT_USIM_AID, sample_profile
from card.uicc.profile import AppSpec
from host.bio.session import BioSession
from host.errors import ApduError
from host.log import TRAFFIC
from host.presets import new_card
from host.readers.base import Reader, ReaderError
from host.trace import TracingReader, exchange_record, format_command
from host.usim import UsimSession
from tests.unit.cards import sample_card, select, tx
from tests.unit.usim_cards import authenticate, empty_card, select_usim, uicc, usim_card

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _preset(name: str) -> CardRuntime:
    rt = new_card(name, rng_seed=1)
    rt.power_on()
    return rt


def fresh(name: str) -> CardRuntime:
    rt = new_card(name, rng_seed=1)
    rt.power_on()
    return rt


# -- Ne -----------------------------------------------------------------------------------


def test_select_response_warning_on_the_euicc_honours_ne() -> None:
    # Today: the MF could be deactivated, then 00A40400 answered 32 bytes + 6283
    # although the command has no Le (Ne = 0).
    rt = fresh("euicc")
    tx(rt, "00040000023F00")
    resp = bytes.fromhex(tx(rt, "00A40400"))
    assert len(resp) == 2, resp.hex()


class _WarnOnSelect(EchoApplet):
    """select_response ends in a warning with data, as a deactivated file's SELECT does."""

    def select_response(self, apdu: APDU) -> bytes | None:
        raise CardError(0x6283, bytes(range(20)))


def _warn_card() -> CardRuntime:
    rt = CardRuntime()
    rt.install(_WarnOnSelect, ECHO_AID)
    rt.power_on()
    return rt


def test_warning_with_data_from_select_response() -> None:
    rt = _warn_card()
    sel = f"00A40400{len(ECHO_AID):02X}{ECHO_AID.hex()}"
    assert tx(rt, sel) == "6283"  # no Le: the warning alone...
    assert tx(rt, "00C0000014") == bytes(range(20)).hex().upper() + "6283"  # ...data kept
    assert tx(rt, sel + "05") == "6C14"  # Ne too small: the exact length
    assert tx(rt, sel + "00") == bytes(range(20)).hex().upper() + "6283"
    assert tx(rt, sel + "14") == bytes(range(20)).hex().upper() + "6283"


def test_manage_channel_open_as_case_1_answers_no_data() -> None:
    rt = sample_card()
    assert tx(rt, "00700000") == "6101"  # channel 1 opened; its number waits
    assert rt.open_channels() == [0, 1]
    assert tx(rt, "00C0000001") == "019000"
    assert tx(rt, "0070000001") == "029000"  # case 2: the number itself


def test_get_response_without_le_takes_nothing() -> None:
    rt = sample_card()
    tx(rt, select(ECHO_AID))
    assert tx(rt, "8002000A") == "610A"
    assert tx(rt, "00C00000") == "610A"  # Ne = 0: nothing given, the same 10 still wait
    assert tx(rt, "00C000000A") == "00010203040506070809" + "9000"


_COMMANDS = [
    # SELECTs the runtime and the applets answer, with and without FCP/FCI
    "00A40400",
    "00A4040000",
    "00A40404",
    f"00A40400{len(ECHO_AID):02X}{ECHO_AID.hex()}",
    f"00A40400{len(PURSE_AID):02X}{PURSE_AID.hex()}",
    f"00A40400{len(ISD_AID):02X}{ISD_AID.hex()}",
    f"00A40400{len(ISD_R_AID):02X}{ISD_R_AID.hex()}",
    f"00A40404{len(DEFAULT_USIM_AID):02X}{DEFAULT_USIM_AID.hex()}",
    "00A40004023F00",
    "00A40000023F00",
    "00A4000C023F00",
    "00A40004022FE2",
    "00A40804047FFF6F07",
    "A0A40000023F00",
    # data from applets, the runtime, the file system
    "80020010",
    "80020120",
    "8050000004",
    "00B00000",
    "00B20104",
    "00CA9F7F",
    "80CA9F7F",
    "80CA0066",
    "80F21000024F00",
    "80F24002024F00",
    "80CA00E0",
    "80E29100",
    "80E2910003BF2000",
    "80E2910003BF2D00",
    "0070000000",
    "00700000",
    "00C00000",
    "00200001",
    "0088008122" + "10" + "00" * 16 + "10" + "00" * 16,
    "A0F20000",
    "A0C00000",
    "00040000023F00",
]


def _with_le(base: str, le: int | None) -> bytes:
    cmd = CommandApdu.from_bytes(bytes.fromhex(base))
    return CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, le).to_bytes()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    preset=st.sampled_from(["demo", "gp", "usim", "euicc"]),
    channel=st.sampled_from([0, 0, 0, 1, 2]),
    base=st.sampled_from(_COMMANDS),
    le=st.one_of(st.none(), st.integers(1, 256), st.sampled_from([1, 2, 4, 16, 256, 300])),
)
def test_response_data_never_exceeds_ne(
    preset: str, channel: int, base: str, le: int | None
) -> None:
    """Response data ≤ Ne, always; data comes only with 9000, 61xx, 9Fxx, 62xx or 63xx;
    6Cxx only when there was an Le (ISO/IEC 7816-4 §5.1, §5.1.3)."""
    rt = _preset(preset)
    raw = bytearray(_with_le(base, le))
    if channel and raw[0] != 0xA0:
        if channel not in rt.open_channels():
            tx(rt, f"007000{channel:02X}")
        raw[0] = (raw[0] & 0xFC) | channel
    cmd = CommandApdu.from_bytes(bytes(raw))
    resp = rt.process(bytes(raw))
    data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
    ne = cmd.le or 0
    assert len(data) <= ne, f"{bytes(raw).hex()} -> {resp.hex()}"
    if data:
        assert sw == 0x9000 or sw >> 8 in (0x61, 0x9F, 0x62, 0x63), resp.hex()
    if sw >> 8 == 0x6C:
        assert cmd.le is not None and not data
    assert rt.exceptions == 0, rt.last_exception


class _Answers(Applet):
    """Answers P1P2 bytes of data, with 9000 (INS 01) or a warning 6310 (INS 02)."""

    def process(self, apdu: APDU) -> bytes | None:
        data = bytes(i & 0xFF for i in range(apdu.p1p2))
        if apdu.ins == 0x02:
            raise CardError(0x6310, data)
        return data


@functools.cache
def _answers_card() -> CardRuntime:
    rt = CardRuntime()
    rt.install(_Answers, ECHO_AID, default=True)
    rt.power_on()
    return rt


@settings(max_examples=300, deadline=None)
@given(
    ins=st.sampled_from([0x01, 0x02]),
    n=st.integers(0, 700),
    le=st.one_of(st.none(), st.integers(1, 256), st.integers(257, 65536)),
    get_response_le=st.one_of(st.none(), st.integers(1, 256)),
)
def test_any_amount_of_data_fits_ne_and_nothing_is_lost(
    ins: int, n: int, le: int | None, get_response_le: int | None
) -> None:
    """Whatever an applet answers, the card sends at most Ne bytes; what 61xx announces,
    GET RESPONSE delivers; 6Cxx names the exact length (ISO/IEC 7816-4 §5.1, §11.7.1)."""
    rt = _answers_card()
    cmd = CommandApdu(0x80, ins, n >> 8, n & 0xFF, b"", le)
    resp = rt.process(cmd.to_bytes())
    data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
    expected = bytes(i & 0xFF for i in range(n))
    final = 0x9000 if ins == 0x01 else 0x6310
    assert len(data) <= (le or 0)
    if sw >> 8 == 0x6C:
        # a warning cannot be split over 61xx: the exact length (00: 256 or more)
        assert ins == 0x02 and le is not None and n > le
        assert sw & 0xFF == (n if n < 256 else 0)
        return
    got = bytearray(data)
    for _ in range(1000):
        if sw >> 8 != 0x61 and not (sw == final and ins == 0x02 and n and le is None and not got):
            break
        ask = get_response_le if get_response_le is not None else (sw & 0xFF) or 256
        resp = rt.process(CommandApdu(0x00, 0xC0, 0, 0, b"", ask).to_bytes())
        part, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        if sw >> 8 == 0x6C:  # asked for more than waits: ask for exactly that
            resp = rt.process(CommandApdu(0x00, 0xC0, 0, 0, b"", (sw & 0xFF) or 256).to_bytes())
            part, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        assert len(part) <= ask
        got += part
    assert (bytes(got), sw) == (expected, final)
    assert rt.exceptions == 0


# -- secure messaging -------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["demo", "usim", "euicc"])
@pytest.mark.parametrize(
    "apdu",
    [
        "0CA4000C023F00",  # first interindustry, ISO SM, header authenticated
        "08A4000C023F00",  # ISO SM, header not processed
        "04A4000C023F00",  # proprietary SM format
        "6CA4000C023F00",  # further interindustry class, b6 set: SM, on channel 16
        f"0CA4040C{len(PURSE_AID):02X}{PURSE_AID.hex()}",
        "0C700000",
    ],
)
def test_sm_class_without_sm_application_is_6882(preset: str, apdu: str) -> None:
    rt = fresh(preset)
    if apdu.startswith("6C"):
        assert tx(rt, "0070001000") == "9000"  # open channel 16 (CLA 4C, or 6C with SM)
    assert tx(rt, apdu) == "6882"


class _SmApplet(Applet):
    """An application that unwraps secure messaging itself (the hook for an SM library)."""

    secure_messaging = True

    def process(self, apdu: APDU) -> bytes | None:
        return bytes((apdu.cla, apdu.ins))


def test_sm_class_reaches_an_application_that_does_sm() -> None:
    rt = CardRuntime()
    rt.install(_SmApplet, ECHO_AID, default=True)
    rt.power_on()
    assert tx(rt, "0C2A000000") == "0C2A9000"
    assert tx(rt, "002A000000") == "002A9000"


def test_gp_isd_still_takes_scp03_and_proprietary_classes() -> None:
    rt = fresh("gp")
    assert tx(rt, "80CA006600")[-4:] == "9000"  # GP proprietary class, no SM
    # INITIALIZE UPDATE (CLA 80) answers; CLA 84 is the ISD's business (here: no session).
    resp = tx(rt, "8050300008" + "00" * 8 + "00")
    assert resp[-4:] == "9000"
    assert tx(rt, "84F2800002" + "4F00") != "6882"


# -- the eUICC's base MF -------------------------------------------------------------------


def test_euicc_base_mf_cannot_be_deactivated() -> None:
    rt = fresh("euicc")
    assert tx(rt, "00040000023F00") == "6982"
    rt.reset()
    assert tx(rt, "00A4000C023F00") == "9000"  # not 6283 (deactivated)
    assert tx(rt, "00A40004023F00")[:2] == "61"  # FCP of an active MF


# -- 6F00 ---------------------------------------------------------------------------------


def test_gsm_get_response_with_nothing_pending_is_not_6f00() -> None:
    rt = fresh("usim")
    assert tx(rt, "A0C0000010") == "6700"


def test_firewall_probe_is_refused_with_6982() -> None:
    rt = sample_card()
    tx(rt, select(COUNTER_CLIENT_AID))
    assert tx(rt, "8011000001") == "6982"
    assert rt.firewall_violations == 1 and rt.exceptions == 0


def _deliberate_6f00(tree: ast.AST) -> list[int]:
    """Lines of `CardError(...)` / `raise` expressions that name 6F00 on purpose."""
    hits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "CardError"):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and sub.value == 0x6F00:
                hits.append(node.lineno)
            elif isinstance(sub, ast.Attribute) and sub.attr == "UNKNOWN":
                hits.append(node.lineno)
            elif isinstance(sub, ast.Name) and sub.id == "SW_TECHNICAL_PROBLEM":
                hits.append(node.lineno)
    return hits


def test_no_applet_or_card_library_raises_6f00_on_purpose() -> None:
    found = []
    for top in ("applets", "card"):
        for path in sorted((ROOT / top).rglob("*.py")):
            hits = _deliberate_6f00(ast.parse(path.read_text(), str(path)))
            found += [f"{path.relative_to(ROOT)}:{n}" for n in hits]
    assert found == []


def test_the_6f00_scan_finds_what_it_looks_for() -> None:
    assert _deliberate_6f00(ast.parse("raise CardError(0x6D00 if x else 0x6F00)")) == [1]
    assert _deliberate_6f00(ast.parse("raise CardError(SW.UNKNOWN)")) == [1]
    assert _deliberate_6f00(ast.parse("raise CardError(SW.WRONG_DATA)")) == []


# -- SQN_MS ---------------------------------------------------------------------------------

K = OPC = bytes(range(16))
RAND = bytes(16)


def _autn(sqn: int, rand: bytes = RAND) -> bytes:
    return generate_auth_vector(Milenage(K, OPC), rand, sqn.to_bytes(6, "big"), b"\x80\x00").autn


def test_personalised_sqn_ms_is_not_accepted_again() -> None:
    sqn_ms = (0x1234 << 5) | 3
    rt = usim_card(k=K, opc=OPC, sqn_ms=sqn_ms)
    select_usim(rt)
    data, sw = authenticate(rt, RAND, _autn(sqn_ms))
    assert sw == 0x9000 and data[:2] == b"\xdc\x0e"  # synchronisation failure, AUTS
    reported, _ = parse_auts(Milenage(K, OPC), RAND, data[2:])
    assert int.from_bytes(reported, "big") == sqn_ms
    assert authenticate(rt, RAND, _autn(sqn_ms - 1))[0][0] == 0xDC  # older, same SEQ
    assert authenticate(rt, RAND, _autn(sqn_ms - 32))[0][0] == 0xDC  # older SEQ, same IND
    data, sw = authenticate(rt, bytes(range(16)), _autn(sqn_ms + 32, bytes(range(16))))
    assert sw == 0x9000 and data[0] == 0xDB  # fresh


def test_initial_sqn_state_rejects_exactly_up_to_sqn_ms() -> None:
    policy = SqnPolicy(ind_bits=5, delta=None)
    sqn_ms = (7 << 5) | 4
    state = SqnState.initial(policy, sqn_ms)
    for sqn in range(sqn_ms - 64, sqn_ms + 64):
        assert (check_sqn(policy, state, sqn) is not None) == (sqn > sqn_ms), hex(sqn)
    # A given array is kept, but never below SQN_MS for IND(SQN_MS).
    seq = tuple(range(32))
    kept = SqnState.initial(policy, sqn_ms, seq)
    assert kept.seq[4] == 7 and kept.seq[:4] == seq[:4] and kept.seq[5:] == seq[5:]
    assert SqnState.initial(policy, 0).seq == (0,) * 32


# -- the registry after an abort; a re-entrant atomic block ----------------------------------

ECHO_REF = "applets.sample.echo:EchoApplet"
APP1 = bytes.fromhex("F043415244454D550A01")
APP2 = bytes.fromhex("F043415244454D550A02")


def test_refused_profile_leaves_no_phantom_application() -> None:
    rt = empty_card()
    store = uicc(rt)
    before = rt.applets()
    twice = sample_profile(iccid="8900000000000000044", apps=[AppSpec(APP1, ECHO_REF)] * 2)
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile(twice.to_bytes())
    assert e.value.reason is ProfileStoreReason.APPLICATION and "6A80" in str(e.value)
    assert rt.applets() == before  # in step with NVM at once, no power cycle
    fixed = sample_profile(
        iccid="8900000000000000044", apps=[AppSpec(APP1, ECHO_REF), AppSpec(APP2, ECHO_REF)]
    )
    assert store.install_profile(fixed.to_bytes()) == fixed.iccid
    assert {APP1, APP2} <= {bytes(aid) for aid, *_ in rt.applets()}


class _InstallsThenFails(Applet):
    """Installs an applet inside its own transaction, then fails: the abort must undo both."""

    card_manager = True

    def process(self, apdu: APDU) -> bytes | None:
        with self.system.transaction():
            self.system.card.install(EchoApplet, APP1)
            raise CardError(0x6A80)


def test_abort_resyncs_the_registry() -> None:
    rt = CardRuntime()
    rt.install(_InstallsThenFails, ECHO_AID, default=True)
    rt.power_on()
    assert tx(rt, "80010000") == "6A80"
    assert [bytes(a) for a, *_ in rt.applets()] == [ECHO_AID]
    rt.install(EchoApplet, APP1)  # no "already present"


def test_isd_installs_with_parameters() -> None:
    # The ISD's on_install stores its parameters in a transaction, inside the one
    # CardRuntime.install opens: it joins it instead of raising "already in progress".
    rt = CardRuntime()
    isd = rt.install(IssuerSecurityDomain, ISD_AID, bytes.fromhex("4203123456"), default=True)
    assert isinstance(isd, IssuerSecurityDomain) and isd.iin == bytes.fromhex("123456")


class _Nested(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x01:  # the explicit API keeps Java Card's rule
            self.system.begin_transaction()
            try:
                self.system.begin_transaction()
            except TransactionError as e:
                self.system.commit_transaction()
                return bytes((e.reason,))
            raise AssertionError("nested begin_transaction did not raise")
        with self.system.transaction():  # the atomic block nests
            with self.system.transaction():
                self.system.store.set("x", 1)
            return None


def test_atomic_block_is_reentrant_and_begin_transaction_is_not() -> None:
    rt = CardRuntime()
    rt.install(_Nested, ECHO_AID, default=True)
    rt.power_on()
    assert tx(rt, "8001000000") == f"{TransactionError.IN_PROGRESS:02X}9000"
    assert tx(rt, "80020000") == "9000"
    assert rt.exceptions == 0


# -- traces ---------------------------------------------------------------------------------

VERIFY = bytes.fromhex("002000010431323334")


def test_format_command_masks_pin_and_key_data() -> None:
    line = format_command(VERIFY, reveal=False)
    assert "31323334" not in line and "** 4 bytes masked **" in line
    assert "31323334" in format_command(VERIFY, reveal=True)
    for apdu in (
        "002400010831323334 35363738",  # CHANGE REFERENCE DATA
        "002C000110 3131313131313131 3132333435363738",  # RESET RETRY COUNTER
        "A020000108 31323334FFFFFFFF",  # GSM VERIFY CHV
        "80D8000112 0102030405060708090A0B0C0D0E0F1011 00",  # PUT KEY
    ):
        raw = bytes.fromhex(apdu.replace(" ", ""))
        data = CommandApdu.from_bytes(raw).data.hex().upper()
        assert data not in format_command(raw, reveal=False), apdu
        rec = exchange_record(raw, b"\x90\x00", None, reveal=False)
        assert data not in str(rec), apdu
        assert rec["command"].startswith(raw[:5].hex().upper())
    # INITIALIZE UPDATE's host challenge is no secret
    assert "0011223344556677" in format_command(bytes.fromhex("80503000080011223344556677"))


def test_tracing_reader_masks_by_default_and_shows_at_traffic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    reader = TracingReader(_Fixed(b"\x90\x00"), stream, colour=False)
    reader.transmit(VERIFY)
    assert "31323334" not in stream.getvalue()
    caplog.set_level(TRAFFIC, logger="cardemu.traffic")
    reader.transmit(VERIFY)
    assert "31323334" in stream.getvalue()


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    code = "import sys; from host.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_trace_and_json_mask_the_pin_unless_traffic() -> None:
    pin = "00 20 00 01 04 31 32 33 34"
    plain = _cli("send", pin)
    assert plain.returncode == 0, plain.stderr
    assert "VERIFY" in plain.stderr and "31323334" not in plain.stderr + plain.stdout
    js = _cli("send", "--json", pin)
    assert js.returncode == 0 and "31323334" not in js.stdout + js.stderr
    traffic = _cli("--traffic", "send", pin)
    assert traffic.returncode == 0 and "31323334" in traffic.stderr


def test_cli_error_messages_mask_the_pin() -> None:
    wrong = _cli("send", "00 20 00 01 04 31 32 33 35")
    assert wrong.returncode == 3 and "63C2" in wrong.stderr
    assert "31323335" not in wrong.stderr + wrong.stdout
    script = _cli("run", "-", stdin="002000010431323335 =9000\n")
    assert script.returncode == 3 and "expected 9000" in script.stderr
    assert "31323335" not in script.stderr + script.stdout


# -- host/usim.py: GET RESPONSE is bounded --------------------------------------------------


class _Unbounded(AssertionError):
    """The client kept sending: the test fails instead of hanging."""


class _Fixed(Reader):
    """A card that answers every command the same way; counts what it is sent."""

    name = "fixed"
    limit = 20_000

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sent = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.sent += 1
        if self.sent > self.limit:
            raise _Unbounded(f"{self.sent} transmits and the client has not given up")
        return self.answer


def test_usim_session_gives_up_on_endless_61xx() -> None:
    card = _Fixed(b"\x61\x10")
    with pytest.raises((ReaderError, ApduError)) as e:
        UsimSession(card).select_mf()
    assert card.sent <= 4
    assert "6110" in str(e.value)


def test_usim_session_gives_up_on_endless_61xx_with_data() -> None:
    card = _Fixed(bytes(16) + b"\x61\x10")
    with pytest.raises(ReaderError):
        UsimSession(card).select_mf()
    assert card.sent < 10_000


def test_bio_session_gives_up_on_endless_61xx() -> None:
    card = _Fixed(bytes(16) + b"\x61\x10")
    with pytest.raises(ReaderError):
        BioSession(card).select()
    assert card.sent < 10_000
