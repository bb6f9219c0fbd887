"""The `piv` preset served on the real PC/SC stack, driven by the PIV tools people use.

yubico-piv-tool (PIN, PUK, management key, generation, certificates, test signatures and
decipherments) and OpenSC (pkcs15-tool, pkcs11-tool signing, deciphering and ECDH,
piv-tool, opensc-tool), unchanged: results are checked with `openssl` and `cryptography`
against the public key the card generated. Skipped, with the reason, when a tool, pcscd,
vpcd or pyscard is missing, or another pcscd owns the machine.

Two faults of the Debian 12 tools themselves, outside the card, are worked around here:
yubico-piv-tool 2.2.0 on OpenSSL 3 fails `selfsign-certificate` and `request-certificate`
before it sends any command (Yubico/yubico-piv-tool#388), so the certificate is made by
signing its TBSCertificate on the card through `host.piv`; OpenSC 0.23's piv-tool
mis-sizes its own external authentication answer and cannot write an EC key it
generated, so piv-tool is driven through mutual authentication and `--serial`.
"""

from __future__ import annotations

import datetime
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from applets.piv.objects import fasc_n
from card import tlv
from card.runtime import CardRuntime
from host.piv import PivSession
from host.presets import new_card
from host.readers.pcsc import PcscReader, list_readers

PIN = "123456"
PUK = "12345678"
MGMT = "010203040506070801020304050607080102030405060708"
PKCS11_MODULES = (
    Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"),
    Path("/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so"),
    Path("/usr/lib/opensc-pkcs11.so"),
)
#: OpenSC's PKCS#15 emulation of PIV names keys 9A, 9C, 9D, 9E, 82 as IDs 01-05.
OPENSC_ID = {0x9A: "01", 0x9C: "02", 0x9D: "03", 0x9E: "04", 0x82: "05"}

needs_ykpiv = pytest.mark.skipif(
    shutil.which("yubico-piv-tool") is None,
    reason="yubico-piv-tool not installed (apt-get install yubico-piv-tool)",
)
needs_opensc = pytest.mark.skipif(
    shutil.which("pkcs15-tool") is None or shutil.which("openssl") is None,
    reason="OpenSC or openssl not installed (apt-get install opensc openssl)",
)


def _module() -> str:
    for p in PKCS11_MODULES:
        if p.exists():
            return str(p)
    pytest.skip("opensc-pkcs11.so not found")


@pytest.fixture
def make_card() -> Callable[[], CardRuntime]:
    """The `piv` preset (seeded: the same keys each run)."""
    return lambda: new_card("piv", rng_seed=18)


def run(*args: str, ok: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, input=stdin, timeout=120)
    if ok:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def ykpiv(reader: str, *args: str, ok: bool = True, stdin: str | None = None) -> str:
    data = None if stdin is None else stdin.encode()
    result = run("yubico-piv-tool", "-r", reader, *args, ok=ok, stdin=data)
    return (result.stdout + result.stderr).decode(errors="replace")


def certify_on_card(reader: str, slot: int, public_pem: bytes, out: Path) -> x509.Certificate:
    """A self-signed certificate of the card's key, its TBSCertificate signed by the card."""
    pub = serialization.load_pem_public_key(public_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cardemu PIV {slot:02X}")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)  # type: ignore[arg-type]
        .serial_number(slot)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    # A throwaway key of the same kind gives the TBSCertificate its algorithm identifier.
    if isinstance(pub, ec.EllipticCurvePublicKey):
        throwaway: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(
            pub.curve
        )
    else:
        throwaway = rsa.generate_private_key(65537, 2048)
    template = builder.sign(throwaway, hashes.SHA256())
    tbs = template.tbs_certificate_bytes
    digest = hashlib.sha256(tbs).digest()
    pcsc = PcscReader(reader)
    pcsc.connect()
    try:
        piv = PivSession(pcsc)
        piv.select()
        piv.verify_pin(PIN.encode())
        if isinstance(pub, ec.EllipticCurvePublicKey):
            alg = 0x11 if pub.curve.key_size == 256 else 0x14
            size = pub.curve.key_size // 8
            sig = piv.sign(slot, alg, digest[:size].rjust(size, b"\x00"))
        else:
            info = bytes.fromhex("3031300d060960864801650304020105000420") + digest
            block = b"\x00\x01" + b"\xff" * (256 - 3 - len(info)) + b"\x00" + info
            sig = piv.sign(slot, 0x07, block)
    finally:
        pcsc.disconnect()
    algorithm_id = tlv.Tlv.from_bytes(template.tbs_certificate_bytes).children[2].to_bytes()
    der = tlv.build(0x30, [tbs, algorithm_id, (0x03, b"\x00" + sig)])
    cert = x509.load_der_x509_certificate(der)
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


# -- yubico-piv-tool ---------------------------------------------------------------------


@needs_ykpiv
def test_yubico_piv_tool_status_and_the_pin(serve) -> None:  # noqa: ANN001
    r = serve().reader
    status = ykpiv(r, "-a", "status")
    assert "CHUID:\t3019" + fasc_n().hex() in status
    assert "CCC:\tf015a000000116ff02" in status
    assert "PIN tries left:\t3" in status
    assert "Successfully verified PIN" in ykpiv(r, "-a", "verify-pin", "-P", PIN)
    assert "Successfully changed the pin" in ykpiv(r, "-a", "change-pin", "-P", PIN, "-N", "654321")
    # wrong PIN, then blocking
    out = ykpiv(r, "-a", "verify-pin", "-P", PIN, ok=False)
    assert "2 tries left" in out
    assert "1 tries left" in ykpiv(r, "-a", "verify-pin", "-P", PIN, ok=False)
    assert "blocked" in ykpiv(r, "-a", "verify-pin", "-P", PIN, ok=False)
    assert "blocked" in ykpiv(r, "-a", "verify-pin", "-P", "654321", ok=False)
    # a wrong PUK counts down; the right one unblocks
    assert "Failed" in ykpiv(r, "-a", "unblock-pin", "-P", "00000000", "-N", PIN, ok=False)
    assert "Successfully unblocked" in ykpiv(r, "-a", "unblock-pin", "-P", PUK, "-N", PIN)
    assert "Successfully verified PIN" in ykpiv(r, "-a", "verify-pin", "-P", PIN)
    assert "Successfully changed the puk" in ykpiv(
        r, "-a", "change-puk", "-P", PUK, "-N", "87654321"
    )


@needs_ykpiv
def test_yubico_piv_tool_management_key(serve) -> None:  # noqa: ANN001
    r = serve().reader
    new = "0102030405060708010203040506070801020304050607AA"
    # GENERATE with a wrong management key: refused, and no key appears
    out = ykpiv(r, f"--key={new}", "-a", "generate", "-s", "9a", "-A", "ECCP256", ok=False)
    assert "Failed authentication" in out
    assert "Successfully set new management key" in ykpiv(r, "-a", "set-mgm-key", "-n", new)
    out = ykpiv(r, "-a", "generate", "-s", "9a", "-A", "ECCP256", ok=False)
    assert "Failed authentication" in out
    out = ykpiv(r, f"--key={new}", "-a", "generate", "-s", "9a", "-A", "ECCP256")
    assert "BEGIN PUBLIC KEY" in out


@needs_ykpiv
@pytest.mark.parametrize(
    ("algorithm", "slot"), [("ECCP256", 0x9A), ("ECCP384", 0x9A), ("RSA2048", 0x9A)]
)
def test_yubico_piv_tool_generates_certifies_and_signs(
    serve,  # noqa: ANN001
    tmp_path: Path,
    algorithm: str,
    slot: int,
) -> None:
    r = serve().reader
    s = f"{slot:02x}"
    pub_pem = tmp_path / "pub.pem"
    ykpiv(r, "-a", "generate", "-s", s, "-A", algorithm, "-o", str(pub_pem))
    pub = serialization.load_pem_public_key(pub_pem.read_bytes())
    if algorithm == "RSA2048":
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
    else:
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        assert pub.curve.key_size == (256 if algorithm == "ECCP256" else 384)
    cert_pem = tmp_path / "cert.pem"
    cert = certify_on_card(r, slot, pub_pem.read_bytes(), cert_pem)
    ykpiv(r, "-a", "import-certificate", "-s", s, "-i", str(cert_pem))
    read = ykpiv(r, "-a", "read-certificate", "-s", s)
    assert x509.load_pem_x509_certificate(read.encode()) == cert
    status = ykpiv(r, "-a", "status")
    assert f"Slot {s}:" in status and f"CN=cardemu PIV {slot:02X}" in status
    # yubico-piv-tool signs on the card and checks the signature with the certificate
    out = ykpiv(
        r, "-a", "verify-pin", "-P", PIN, "-a", "test-signature", "-s", s, "-i", str(cert_pem)
    )
    assert "Successful" in out and "verification" in out
    if algorithm == "RSA2048":
        out = ykpiv(
            r, "-a", "verify-pin", "-P", PIN, "-a", "test-decipher", "-s", s, "-i", str(cert_pem)
        )
        assert "Successfully performed RSA decryption" in out or "Successful" in out


# -- OpenSC --------------------------------------------------------------------------------


def _guid(reader: str) -> bytes:
    """The GUID of the card's CHUID (SP 800-73-4 Part 1 §3.1.2), read through PC/SC."""
    pcsc = PcscReader(reader)
    pcsc.connect()
    try:
        piv = PivSession(pcsc)
        piv.select()
        chuid = tlv.Tlv.from_bytes(piv.get_data(0x5FC102))
    finally:
        pcsc.disconnect()
    return {o.tag: o.value for o in tlv.parse(chuid.value)}[0x34]


def _reader_index(reader: str) -> str:
    return str(list_readers().index(reader))


def _p11(reader: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return run("pkcs11-tool", "--module", _module(), "--slot-description", reader, *args, ok=ok)


def _personalise(reader: str, tmp_path: Path, keys: dict[int, str]) -> dict[int, Path]:
    """Keys generated by yubico-piv-tool, each with its certificate: OpenSC lists a key
    through its certificate."""
    pems = {}
    for slot, algorithm in keys.items():
        s = f"{slot:02x}"
        pub_pem = tmp_path / f"{s}.pub.pem"
        ykpiv(reader, "-a", "generate", "-s", s, "-A", algorithm, "-o", str(pub_pem))
        cert_pem = tmp_path / f"{s}.cert.pem"
        certify_on_card(reader, slot, pub_pem.read_bytes(), cert_pem)
        ykpiv(reader, "-a", "import-certificate", "-s", s, "-i", str(cert_pem))
        pems[slot] = pub_pem
    return pems


@needs_ykpiv
@needs_opensc
def test_opensc_sees_the_card_and_signs_deciphers_and_derives(serve, tmp_path: Path) -> None:  # noqa: ANN001
    r = serve().reader
    index = _reader_index(r)
    # Signing keys 9A (P-256), 9C (RSA-2048), 9E (P-384); deciphering 9D (RSA-2048);
    # key agreement the retired key management key 82 (P-256): OpenSC gives each key the
    # usages of its slot (SP 800-73-4 Part 1 Table 4b).
    pems = _personalise(
        r,
        tmp_path,
        {0x9A: "ECCP256", 0x9C: "RSA2048", 0x9D: "RSA2048", 0x9E: "ECCP384", 0x82: "ECCP256"},
    )

    # The key history object tells a client how many retired keys have certificates on
    # the card (SP 800-73-4 Part 1 §3.3.1); OpenSC looks for retired keys only then.
    history = "C10101C20100FE00"
    ykpiv(r, "-a", "write-object", f"--id={0x5FC10C}", "-f", "hex", "-i", "-", stdin=history)
    assert "c10101c20100fe00" in ykpiv(r, "-a", "read-object", f"--id={0x5FC10C}").lower()
    dump = run("pkcs15-tool", "--reader", index, "-D").stdout.decode()
    assert "piv_II" in dump
    for label in ("PIV AUTH key", "SIGN key", "KEY MAN key", "CARD AUTH key", "Retired KEY MAN 1"):
        assert label in dump, dump
    objects = _p11(r, "--list-objects").stdout.decode()
    assert "Certificate for PIV Authentication" in objects
    assert objects.count("Certificate Object") == 5

    message = tmp_path / "message"
    message.write_bytes(b"signed by a cardemu PIV card over PC/SC\n")
    sig = tmp_path / "sig"
    for slot, mech, digest, fmt in (
        (0x9A, "ECDSA-SHA256", "-sha256", ["--signature-format", "openssl"]),
        (0x9C, "SHA256-RSA-PKCS", "-sha256", []),  # PIN always: pkcs11-tool logs in again
        (0x9E, "ECDSA-SHA384", "-sha384", ["--signature-format", "openssl"]),
    ):
        _p11(
            r, "-l", "-p", PIN, "--sign", "-m", mech, "--id", OPENSC_ID[slot],
            "-i", str(message), "-o", str(sig), *fmt,
        )  # fmt: skip
        run("openssl", "dgst", digest, "-verify", str(pems[slot]), "-signature", str(sig),
            str(message))  # fmt: skip
    # RSA-2048 PKCS#1 v1.5 decipherment with the key management key
    secret = tmp_path / "secret"
    secret.write_bytes(bytes(range(32)))
    cryptogram = tmp_path / "cryptogram"
    run("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", str(pems[0x9D]),
        "-in", str(secret), "-out", str(cryptogram))  # fmt: skip
    plain = tmp_path / "plain"
    _p11(r, "-l", "-p", PIN, "--decrypt", "-m", "RSA-PKCS", "--id", OPENSC_ID[0x9D],
         "-i", str(cryptogram), "-o", str(plain))  # fmt: skip
    assert plain.read_bytes() == secret.read_bytes()
    # ECDH with retired key 82 against an openssl key
    peer = tmp_path / "peer.pem"
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", str(peer))  # fmt: skip
    peer_der = tmp_path / "peer.der"
    run("openssl", "pkey", "-in", str(peer), "-pubout", "-outform", "DER", "-out", str(peer_der))
    ours = tmp_path / "z.card"
    _p11(r, "-l", "-p", PIN, "--derive", "-m", "ECDH1-DERIVE", "--id", OPENSC_ID[0x82],
         "--input-file", str(peer_der), "-o", str(ours))  # fmt: skip
    theirs = run("openssl", "pkeyutl", "-derive", "-inkey", str(peer),
                 "-peerkey", str(pems[0x82])).stdout  # fmt: skip
    assert ours.read_bytes() == theirs and len(theirs) == 32


@needs_opensc
def test_opensc_tools_identify_and_authenticate(serve, tmp_path: Path) -> None:  # noqa: ANN001
    served = serve()
    index = _reader_index(served.reader)
    assert (
        "Personal Identity Verification Card"
        in run("opensc-tool", "--reader", index, "-n").stdout.decode()
    )
    algorithms = run("opensc-tool", "--reader", index, "--list-algorithms").stdout.decode()
    assert "Key length: 2048" in algorithms and "Key length: 384" in algorithms
    # GENERATE with no management key authentication is refused (6982), PIN or not
    out = run(
        "opensc-tool", "--reader", index,
        "-s", "00:A4:04:00:05:A0:00:00:03:08",
        "-s", "00:20:00:80:08:31:32:33:34:35:36:FF:FF",
        "-s", "00:47:00:9A:05:AC:03:80:01:11:00",
    ).stdout.decode()  # fmt: skip
    assert out.count("SW1=0x90, SW2=0x00") == 2 and "SW1=0x69, SW2=0x82" in out, out
    serial = run("piv-tool", "-r", index, "--serial").stdout.decode()
    assert " ".join(f"{b:02X}" for b in _guid(served.reader)) in serial
    key = tmp_path / "admin.key"
    key.write_text(":".join(MGMT[i : i + 2] for i in range(0, 48, 2)))
    env = {"PIV_EXT_AUTH_KEY": str(key), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(["piv-tool", "-r", index, "-A", "M:9B:03"], env=env, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    key.write_text(":".join(["00"] * 24))
    bad = subprocess.run(["piv-tool", "-r", index, "-A", "M:9B:03"], env=env, capture_output=True)
    assert bad.returncode != 0
