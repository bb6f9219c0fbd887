"""One message never hangs the card or a server: bounded DER decoding.

asn1tools 0.169's DER decoder loops for ever, allocating, when an element of
a SEQUENCE OF / SET OF consumes no bytes (card.sgp22.der_bounds explains
why). Each reported reproduction is a regression test here, run in a
forked child under a memory cap and a timeout (`bounded`), so that a decoder
that loops again fails the test instead of hanging CI or eating its memory:

- the card: one STORE DATA AuthenticateServer whose server certificate's
  issuer Name is `30 03 31 00 00`;
- the SM-DP+: one unauthenticated initiateAuthentication whose euiccInfo1
  holds the verification list `04 00 00`, over loopback HTTPS;
- profile packages: a PE-Telecom from a public sample package whose EF.ARR
  File claims more bytes than it holds (data/sgp22/README.md), through
  `SmdpPlus.add_package` and the card's profile install; its intact twin
  from the same package decodes;
- the LPA: a card answer it cannot decode is a clear `Asn1DecodeError`.

Then the decoder itself: the structural pre-check (sizes, depth, counts,
definite lengths inside their parents), the hardened loops without the
pre-check, the work budget, and hypothesis feeding arbitrary and
almost-DER bytes to several types.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import resource
import signal
import ssl
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asn1tools  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rsp_soft_euicc import SoftEuicc

from applets.isdr import ISD_R_AID, IsdR
from applets.isdr.applet import FUNCTIONS
from card.profiles import ProfileStoreError, ProfileStoreReason
from card.sgp22 import asn1
from card.sgp22.der_bounds import check_der
from card.sgp22.params import IsdrParams
from card.tlv import encode_length
from host.es9plus import ADMIN_PROTOCOL, ES9_PATHS, SC_BAD_REQUEST
from host.lpa import Es10Client
from host.pki import create_pki
from host.presets import new_card
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import SmdpPlus
from tests.unit.usim_cards import uicc

DATA = Path(__file__).parent / "data" / "sgp22"
LOOP_TELECOM = (DATA / "saip-pe-telecom-asn1-loop.der").read_bytes()
YGGDRASIM = (DATA / "yggdrasim-test-profile.der").read_bytes()
TS48 = (DATA / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der").read_bytes()
#: The PE-Telecom of the intact package (README: the fixture lacks 41 bytes at 727).
GOOD_TELECOM = YGGDRASIM[1154:2186]

#: "Quickly": every refusal below takes milliseconds; this leaves room for a loaded CI.
QUICK = 5.0


def tlv(tag: int | bytes, value: bytes) -> bytes:
    t = tag if isinstance(tag, bytes) else tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    return t + encode_length(len(value)) + value


# -- the guard -----------------------------------------------------------------------------


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def bounded(fn: Callable[[], None], seconds: float = 60.0, memory: int = 1 << 30) -> None:
    """Run `fn` in a forked child with `memory` bytes more address space and `seconds`.

    A decoder that loops fails the test here (the child is killed) instead of
    hanging the test run; an assertion in `fn` fails it with the child's traceback.
    """
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    limit = _vm_size() + memory

    def child() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            fn()
            writer.send("")
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            writer.send(traceback.format_exc())

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        if not reader.poll(seconds):
            pytest.fail(f"no result within {seconds} s (a decoder that does not stop?)")
        error = reader.recv()
    except EOFError:
        error = f"the child died (exit code {proc.exitcode}), e.g. out of memory"
    finally:
        proc.kill()
        proc.join()
    if error:
        pytest.fail(error, pytrace=False)


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Fail, rather than hang, an in-process decode that does not stop (main thread only)."""

    def timeout(signum: int, frame: Any) -> None:
        raise TimeoutError(f"decoding took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def quickly_refused(
    fn: Callable[[], Any], match: str | None = None, exc: Any = asn1.Asn1DecodeError
) -> Any:
    t = time.monotonic()
    with alarm(30), pytest.raises(exc, match=match) as e:
        fn()
    assert time.monotonic() - t < QUICK
    return e.value


# -- the card: AuthenticateServer with issuer Name 30 03 31 00 00 -----------------------------


def looping_authenticate_server() -> bytes:
    """The reported 176-byte AuthenticateServerRequest (its serverCertificate is truncated)."""
    signed1 = tlv(0x80, bytes(16)) + tlv(0x81, bytes(16)) + tlv(0x83, b"a") + tlv(0x84, bytes(16))
    tbs = (
        bytes.fromhex("020101")
        + tlv(0x30, bytes.fromhex("06082A8648CE3D040302"))
        + bytes.fromhex("3003310000")
    )
    body = (
        tlv(0x30, signed1)
        + tlv(0x5F37, bytes(64))
        + tlv(0x04, bytes(20))
        + tlv(0x30, tlv(0x30, tbs))
    )
    request = tlv(0xBF38, body)
    assert len(request) == 176
    return request


def euicc() -> Any:
    """A powered eUICC (the `euicc` preset) with the ISD-R selected on the basic channel."""
    rt = new_card("euicc")
    rt.power_on()
    assert rt.process(bytes.fromhex("00A4040C10") + ISD_R_AID) == b"\x90\x00"
    return rt


def store_data(request: bytes) -> bytes:
    assert len(request) <= 255
    return bytes.fromhex("80E29100") + bytes((len(request),)) + request


def test_card_refuses_the_looping_authenticate_server_quickly_and_keeps_working() -> None:
    def run() -> None:
        rt = euicc()
        t = time.monotonic()
        answer = rt.process(store_data(looping_authenticate_server()))
        assert answer == b"\x6a\x80", answer.hex()
        assert time.monotonic() - t < QUICK
        # The card still works: GetEUICCChallenge answers a BF2E with 16 bytes.
        answer = rt.process(store_data(bytes.fromhex("BF2E00")))
        assert answer[0] == 0x61, answer.hex()
        answer = rt.process(bytes.fromhex("00C00000") + answer[1:])
        assert answer[-2:] == b"\x90\x00" and answer[:5] == bytes.fromhex("BF2E128010")
        assert rt.exceptions == 0

    bounded(run)


class BuggyIsdR(IsdR):
    """An ISD-R whose GetEID has a bug (a KeyError), as a fault the oracles must see."""

    def get_eid(self, request: Any, raw: bytes) -> Any:
        return {}["eidValue"]


def test_isdr_maps_only_decoding_errors_to_6a80() -> None:
    rt = new_card("euicc")
    rt.delete(ISD_R_AID)
    rt.install(BuggyIsdR, ISD_R_AID, IsdrParams(None).to_bytes())
    rt.power_on()
    assert rt.process(bytes.fromhex("00A4040C10") + ISD_R_AID) == b"\x90\x00"
    # A request that does not decode: 6A80, not counted as a crash.
    assert rt.process(store_data(bytes.fromhex("BF3E0300"))) == b"\x6a\x80"
    assert rt.exceptions == 0
    # A handler's own bug is no longer hidden as 6A80: it is 6F00 and counted.
    assert rt.process(store_data(bytes.fromhex("BF3E035C015A"))) == b"\x6f\x00"
    assert rt.exceptions == 1 and "KeyError" in (rt.last_exception or "")
    # Dispatch is by bound method: the subclass's override is what ran, for the tag's entry.
    assert set(IsdR.handlers(rt.applet(ISD_R_AID)).keys()) == set(FUNCTIONS)  # type: ignore[arg-type]


# -- the SM-DP+: initiateAuthentication with a verification list 04 00 00 ---------------------


LOOPING_INFO1 = bytes.fromhex(
    "BF20228203020200A903040000AA16041477292AD74F6D0ECE90FB531A7D21FCC7D5D85DDF"
)


def test_smdpp_refuses_the_looping_euicc_info1_and_keeps_serving() -> None:
    def run() -> None:
        pki = create_pki(seed=b"asn1 bounds")
        smdp = SmdpPlus(pki, address="localhost")
        smdp.add_order(ProfileOrder("M1", "8988211000000000016", "001010000000001", bytes(16)))
        with smdp.serve() as server:
            smdp.address = f"localhost:{server.port}"
            ctx = ssl.create_default_context(cadata=pki.ci.pem.decode())

            def post(body: dict[str, str]) -> dict[str, Any]:
                conn = http.client.HTTPSConnection(
                    "localhost", server.port, context=ctx, timeout=30
                )
                conn.request(
                    "POST",
                    ES9_PATHS["initiateAuthentication"],
                    body=json.dumps(body).encode(),
                    headers={
                        "Content-Type": "application/json;charset=UTF-8",
                        "X-Admin-Protocol": ADMIN_PROTOCOL,
                    },
                )
                r = conn.getresponse()
                assert r.status == 200
                answer: dict[str, Any] = json.loads(r.read())
                conn.close()
                return answer

            t = time.monotonic()
            answer = post(
                {
                    "euiccChallenge": base64.b64encode(bytes(16)).decode(),
                    "euiccInfo1": base64.b64encode(LOOPING_INFO1).decode(),
                    "smdpAddress": smdp.address,
                }
            )
            assert time.monotonic() - t < QUICK
            status = answer["header"]["functionExecutionStatus"]
            assert status["status"] == "Failed"
            codes = status["statusCodeData"]
            assert (codes["subjectCode"], codes["reasonCode"]) == SC_BAD_REQUEST
            # The server goes on serving: a normal initiateAuthentication succeeds.
            answer = post(SoftEuicc(pki).initiate_body(smdp.address))
            assert answer["header"]["functionExecutionStatus"]["status"] == "Executed-Success"
            assert answer["transactionId"]

    bounded(run)


def test_smdpp_request_budget_covers_all_its_decodes() -> None:
    pki = create_pki(seed=b"asn1 bounds")
    smdp = SmdpPlus(pki, address="localhost")
    body = SoftEuicc(pki).initiate_body("localhost")
    assert "transactionId" in smdp.initiate_authentication(body)
    # A request that cannot be decoded within its budget is malformed (here: no time at all).
    with asn1.decode_budget(0.0):
        time.sleep(0.01)
        quickly_refused(lambda: asn1.decode("EUICCInfo1", base64.b64decode(body["euiccInfo1"])))


# -- profile packages: the PE-Telecom of a public sample -----------------------------------------


def test_the_sample_pe_telecom_is_not_valid_der() -> None:
    """The fixture is not valid SAIP, nor valid DER: it must be refused, not decoded.

    It is the intact PE-Telecom of the same sample package with 41 bytes of an
    EF.ARR record cut out (at offset 727 of the element) and the element's
    length left as it was. So the ef-arr File [3] still claims 768 bytes and
    swallows its siblings ef-sume [5], [15] and [16], whose last one runs past
    the File's end; and the element takes in the first 41 bytes of the next
    element. asn1tools loops on it because the File's SEQUENCE OF meets ef-sume's
    tag A5, which no CHOICE alternative of a File element has. YggdraSIM's
    patched asn1tools may load it, but only by stopping the loop early and
    resuming elsewhere: no decoding of these bytes is the one the package meant.
    """
    assert LOOP_TELECOM == YGGDRASIM[1154:1881] + YGGDRASIM[1922:2227]
    # ef-arr (A3, 768 bytes claimed) now swallows its siblings; ef-sume's A5 sits inside it.
    e = quickly_refused(lambda: check_der(LOOP_TELECOM), "runs past its parent")
    assert "offset 781" in str(e)


def test_the_intact_pe_telecom_decodes() -> None:
    name, telecom = asn1.decode_pe(GOOD_TELECOM)
    assert name == "telecom"
    assert telecom["templateID"] == "2.23.143.1.2.3"
    files = [k for k in telecom if k not in ("telecom-header", "templateID")]
    assert files == [
        "df-telecom",
        "ef-arr",
        "ef-sume",
        "df-phonebook",
        "ef-pbr",
        "ef-ext1",
        "ef-adn",
        "ef-ccp1",
    ]
    arr = telecom["ef-arr"]
    assert arr[0] == (
        "fileDescriptor",
        {
            "fileDescriptor": bytes.fromhex("42210037"),
            "efFileSize": bytes.fromhex("04BA"),
            "lcsi": b"\x05",
        },
    )
    # 22 records of 0x37 bytes, each as (fillFileOffset, fillFileContent).
    assert [k for k, _ in arr[1:]] == ["fillFileOffset", "fillFileContent"] * 22
    assert arr[2] == (
        "fillFileContent",
        bytes.fromhex("8001019000800102A406830101950108800158A40683010A950108"),
    )
    # The whole package decodes: 17 elements from header to end.
    names = [n for n, _ in asn1.decode_pe_sequence(YGGDRASIM)]
    assert names[0] == "header" and names[4] == "telecom" and names[-1] == "end"
    assert len(names) == 17


def test_the_looping_pe_telecom_is_refused_by_the_decoder() -> None:
    def run() -> None:
        quickly_refused(lambda: asn1.decode_pe(LOOP_TELECOM), "runs past its parent")
        quickly_refused(
            lambda: asn1.decode_pe_sequence(LOOP_TELECOM), "profile package: offset 781"
        )
        # The hardened loop alone (asn1tools without the pre-check) refuses it too.
        quickly_refused(
            lambda: asn1.saip().decode_with_length("ProfileElement", LOOP_TELECOM),
            "ef-arr: element 43 at offset 758 has an unexpected tag",
        )

    bounded(run)


def _package_with_loop() -> bytes:
    """The sample package as its broken copy has it: the PE-Telecom is the fixture."""
    return YGGDRASIM[:1154] + LOOP_TELECOM + YGGDRASIM[2227:]


def test_add_package_refuses_the_looping_pe_telecom_quickly() -> None:
    def run() -> None:
        smdp = SmdpPlus(create_pki(seed=b"asn1 bounds"), address="localhost")
        for upp in (LOOP_TELECOM, _package_with_loop()):
            quickly_refused(
                lambda upp=upp: smdp.add_package("LOOP", upp),
                "offset 781|offset 1935",
            )
        assert smdp.orders() == []
        # The intact package is accepted, under the ICCID its header names.
        assert smdp.add_package("OK", YGGDRASIM) == "89880811111111111112"

    bounded(run)


def test_card_profile_install_refuses_the_looping_pe_telecom_quickly() -> None:
    def run() -> None:
        rt = new_card("euicc")
        store = uicc(rt)
        t = time.monotonic()
        with pytest.raises(ProfileStoreError) as e:
            store.install_profile_package(_package_with_loop(), "loop", "test")
        assert time.monotonic() - t < QUICK
        assert e.value.reason == ProfileStoreReason.BAD_FORMAT
        assert e.value.pe_status == 5  # PEStatus invalid-request-format: it does not decode
        assert "offset 1935: length 35 runs past its parent" in str(e.value)
        assert store.list_profiles() == ()
        # The card still installs a valid package afterwards.
        assert store.install_profile_package(TS48, "TS.48", "GSMA") == "8949449999999990049"
        assert rt.exceptions == 0

    bounded(run)


# -- the LPA: a card answer it cannot decode -------------------------------------------------------


class LoopingInfo1Card(Reader):
    """A real eUICC behind a reader whose GetEUICCInfo1 answers carry the looping list."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner

    def transmit(self, apdu: bytes) -> bytes:
        answer = self.inner.transmit(apdu)
        if apdu[1:2] == b"\xe2" and apdu[5:7] == b"\xbf\x20":
            return LOOPING_INFO1 + b"\x90\x00"
        return answer


def test_lpa_reports_an_undecodable_card_answer() -> None:
    def run() -> None:
        es10 = Es10Client(LoopingInfo1Card(InProcessReader(new_card("euicc")))).open()
        t = time.monotonic()
        with pytest.raises(asn1.Asn1DecodeError, match="cannot decode EUICCInfo1"):
            es10.get_euicc_info1()
        assert time.monotonic() - t < QUICK
        assert len(es10.get_euicc_challenge()) == 16

    bounded(run)


# -- the decoder itself ----------------------------------------------------------------------------


def test_empty_set_of_where_size_1_to_max() -> None:
    # RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue (RFC 5280).
    quickly_refused(lambda: asn1.decode("Name", bytes.fromhex("30023100")), "Name")
    cn = bytes.fromhex("300E310C300A06035504030C03616263")  # CN=abc
    assert asn1.decode("Name", cn) == (
        "rdnSequence",
        [[{"type": "2.5.4.3", "value": b"\x0c\x03abc"}]],
    )


def test_element_that_consumes_nothing() -> None:
    # 31 00 then a zero byte: the pre-check names the end-of-contents octets...
    quickly_refused(lambda: asn1.decode("Name", bytes.fromhex("3003310000")), "end-of-contents")
    # ...and the hardened SEQUENCE OF refuses the element that does not match.
    quickly_refused(
        lambda: asn1.rsp().decode_with_length("Name", bytes.fromhex("3003310000")),
        "rdnSequence: element 1 at offset 4 has an unexpected tag",
    )
    quickly_refused(
        lambda: asn1.rsp().decode_with_length("EUICCInfo1", LOOPING_INFO1),
        "euiccCiPKIdListForVerification: element 1",
    )


def test_lengths_that_overrun_their_parent() -> None:
    # A9 claims 2 bytes; its element 04 03 AABBCC runs past it but not past the input.
    info1 = tlv(0xBF20, bytes.fromhex("8203020200A9020403AABBCC"))
    quickly_refused(lambda: asn1.decode("EUICCInfo1", info1), "runs past its parent")
    quickly_refused(
        lambda: asn1.rsp().decode_with_length("EUICCInfo1", info1), "runs past its parent"
    )
    # A length past the end of the input, a truncated long form, a 5-byte length.
    for bad in ("3005020101", "3082", "308500000000010000"):
        quickly_refused(lambda bad=bad: asn1.decode("Name", bytes.fromhex(bad)))


def test_indefinite_lengths_are_refused() -> None:
    name = bytes.fromhex("3080310930070603550403" + "0C00" + "0000")
    quickly_refused(lambda: asn1.decode("Name", name), "indefinite")
    # Without the pre-check, asn1tools itself refuses it now (indefinite_allowed is off).
    quickly_refused(
        lambda: asn1.rsp().decode_with_length("Name", name), "indefinite", asn1tools.Error
    )


def test_explicit_tag_holds_exactly_one_value() -> None:
    # Certificate's version is [0] EXPLICIT (RFC 5280).
    cert = (DATA / "sgp26" / "CERT_CI_ECDSA_NIST.der").read_bytes()
    assert asn1.decode("Certificate", cert)["tbsCertificate"]["version"] == 2
    # [0] { INTEGER 2, INTEGER 0 }: two values inside the explicit version tag.
    tbs_start = 4 + 4
    assert cert[tbs_start : tbs_start + 5] == bytes.fromhex("A003020102")
    bad_tbs_version = bytes.fromhex("A006020102020100")
    body = cert[4:]
    tbs_len = int.from_bytes(body[2:4], "big")
    tbs = body[4 : 4 + tbs_len]
    new_tbs = bad_tbs_version + tbs[5:]
    new = tlv(0x30, tlv(0x30, new_tbs) + body[4 + tbs_len :])
    quickly_refused(lambda: asn1.decode("Certificate", new), "exactly one value")


def test_deep_nesting_and_huge_counts() -> None:
    deep = bytes.fromhex("3003310000")
    for _ in range(10_000):
        deep = tlv(0x30, deep)
    quickly_refused(lambda: asn1.decode("Name", deep), "nested deeper than 32")
    # Depth 32 is allowed by the pre-check; the type then refuses the structure.
    ok = b"\x04\x00"
    for _ in range(31):
        ok = tlv(0x30, ok)
    assert check_der(ok) == [(0, len(ok))]
    many = tlv(0x30, b"\x80\x00" * 140_000)
    quickly_refused(lambda: asn1.decode_pe(many, "File"), "more than 131072 data objects")
    quickly_refused(lambda: asn1.decode_pe(bytes(2 << 20)), "over the 1048576-byte limit")
    # Under the limits, 65,000 elements decode (a File of doNotCreate choices).
    fine = tlv(0x30, b"\x80\x00" * 65_000)
    t = time.monotonic()
    assert len(asn1.decode_pe(fine, "File")) == 65_000
    assert time.monotonic() - t < QUICK


def test_the_largest_decodes_allowed_fit_in_memory() -> None:
    """At the limits a decode stays small: run under a 256 MiB cap (1 GiB would be the loop's)."""

    def run() -> None:
        most = tlv(0x30, b"\x80\x00" * 131_000)  # the most data objects allowed
        assert len(asn1.decode_pe(most, "File")) == 131_000
        big = tlv(0x30, tlv(0x83, bytes((1 << 20) - 16)))  # the largest input allowed
        assert asn1.decode_pe(big, "File") == [("fillFileContent", bytes((1 << 20) - 16))]

    bounded(run, memory=256 << 20)


def test_hardening_changes_no_valid_decode() -> None:
    """On real data the hardened modules decode exactly what asn1tools alone decodes."""
    base = Path(asn1.__file__).parent / "asn1"
    plain_saip = asn1tools.compile_string(
        (base / "PE_Definitions-3.3.1.asn").read_text(encoding="utf-8"), codec="der"
    )
    plain_rsp = asn1tools.compile_string(
        "\n".join(
            (base / n).read_text(encoding="utf-8")
            for n in ("rsp.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
        ),
        codec="der",
    )
    for package in (TS48, YGGDRASIM):
        plain, pos = [], 0
        while pos < len(package):
            value, length = plain_saip.decode_with_length("ProfileElement", package[pos:])
            plain.append(value)
            pos += length
        assert asn1.decode_pe_sequence(package) == plain
    for cert in sorted((DATA / "sgp26").glob("*.der")):
        der = cert.read_bytes()
        assert asn1.decode("Certificate", der) == plain_rsp.decode("Certificate", der)


def test_long_object_identifiers_are_refused() -> None:
    oid = tlv(0x06, b"\x2a" + b"\x81" * 400_000 + b"\x01")
    quickly_refused(lambda: asn1.decode("AttributeType", oid), "OBJECT IDENTIFIER over 256")
    assert asn1.decode("AttributeType", bytes.fromhex("0603550403")) == "2.5.4.3"


def test_the_work_budget() -> None:
    with asn1.decode_budget(60.0, steps=10):
        quickly_refused(lambda: asn1.decode_pe_sequence(TS48), "step budget")
    with asn1.decode_budget(0.0):
        quickly_refused(lambda: asn1.decode_pe_sequence(TS48), "time budget")
    # Budgets nest: an inner budget cannot outlive the outer one.
    with asn1.decode_budget(0.0), asn1.decode_budget(60.0):
        quickly_refused(lambda: asn1.decode_pe_sequence(TS48), "time budget")
    limits = asn1.DecodeLimits(steps=10)
    quickly_refused(lambda: asn1.decode_pe_sequence(TS48, limits=limits), "step budget")
    # Outside any budget a decode gets its own: the package decodes.
    assert len(asn1.decode_pe_sequence(TS48)) > 10


# -- hypothesis: arbitrary and almost-DER bytes ----------------------------------------------------

_TAGS = [
    b"\x30", b"\x31", b"\x04", b"\x02", b"\x06", b"\x05", b"\x0c", b"\x80", b"\x81", b"\x82",
    b"\x83", b"\xa0", b"\xa1", b"\xa2", b"\xa3", b"\xa9", b"\xaa", b"\xb2", b"\x5f\x37",
    b"\xbf\x20", b"\xbf\x38", b"\x00",
]  # fmt: skip


@st.composite
def almost_der(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A TLV tree over the tags these modules use, with lengths sometimes wrong."""
    tag = draw(st.sampled_from(_TAGS))
    if depth < 6 and tag[0] & 0x20 and draw(st.booleans()):
        value = b"".join(draw(st.lists(almost_der(depth + 1), max_size=4)))
    else:
        value = draw(st.binary(max_size=24))
    length = len(value) + draw(st.sampled_from([0, 0, 0, 0, 1, -1, 2]))
    if length < 0 or draw(st.integers(0, 30)) == 0:
        return tag + b"\x80" + value + b"\x00\x00"
    return tag + encode_length(length) + value


_TYPES = [
    ("rsp", "EUICCInfo1"),
    ("rsp", "AuthenticateServerRequest"),
    ("rsp", "AuthenticateServerResponse"),
    ("rsp", "Certificate"),
    ("rsp", "Name"),
    ("saip", "ProfileElement"),
    ("saip", "File"),
]


def _one_decode(kind: str, type_name: str, data: bytes) -> None:
    t = time.monotonic()
    with alarm(30):
        try:
            if kind == "rsp":
                asn1.decode(type_name, data)
                asn1.decode(type_name, data, constraints=False)
            else:
                asn1.decode_pe(data, type_name)
                asn1.decode_pe_sequence(data)
        except asn1.Asn1DecodeError:
            pass
    assert time.monotonic() - t < 2.0


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_TYPES), st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_the_decoding_error(kind_type: Any, data: bytes) -> None:
    _one_decode(*kind_type, data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_TYPES), almost_der())
def test_almost_der_decodes_or_raises_the_decoding_error(kind_type: Any, data: bytes) -> None:
    _one_decode(*kind_type, data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_check_der_agrees_with_the_tlv_walk(data: bytes) -> None:
    """check_der's top-level boundaries tile the input exactly when it accepts it."""
    try:
        spans = check_der(data)
    except asn1.Asn1DecodeError:
        return
    starts = [0] + [e for _, e in spans]
    assert [s for s, _ in spans] == starts[:-1]
    assert starts[-1] == len(data)


def test_every_decode_of_untrusted_bytes_goes_through_the_bounded_path() -> None:
    """No module but card.sgp22.asn1 calls asn1tools' decoder (which skips the pre-check)."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for top in ("card", "applets", "host", "apdu_specs")
        for path in (root / top).rglob("*.py")
        if path.name != "asn1.py" or path.parent.name != "sgp22"
        for text in [path.read_text(encoding="utf-8")]
        if "decode_with_length(" in text
        or "rsp().decode(" in text
        or "saip().decode(" in text
        or "compile_string(" in text
        or "compile_files(" in text
    ]
    assert offenders == []


def test_set_up_inside_a_budget_is_not_charged_to_the_message() -> None:
    """Compiling the modules on first use (seconds under load) does not refuse the message."""
    import time

    from card.sgp22.der_bounds import _BUDGET, decode_budget, unbudgeted

    with decode_budget(0.2):
        with decode_budget(0.1):
            inner = _BUDGET.get()
            assert inner is not None and inner.outer is not None
            before = (inner.deadline, inner.outer.deadline)
            with unbudgeted():
                time.sleep(0.3)  # the "compile"
            after = (inner.deadline, inner.outer.deadline)
    assert after[0] - before[0] >= 0.3 and after[1] - before[1] >= 0.3
