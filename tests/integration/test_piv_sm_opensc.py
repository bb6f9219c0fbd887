"""PIV secure messaging (SP 800-73-4 Part 2 §4) against an independent client: OpenSC's PIV driver.

OpenSC 0.24 and later, built with PIV SM (`./configure --enable-piv-sm`), opens
secure messaging with a card whose SELECT answer offers cipher suite CS2 or CS7:
it checks the card's CVC against the SM certificate signer's X.509 certificate
(object 5FC122), checks the key confirmation, and then sends every command
under SM. With `PIV_USE_SM=always` it refuses a card whose SM fails, so each
tool that works below is a proof that the two implementations agree byte for
byte: keys, counters, MAC chaining, padding, the protected status words.

Debian 12 ships OpenSC 0.23 (no PIV SM), so this tier is optional: point
`CARDEMU_OPENSC_PIV_SM` at the install prefix of such a build (its `bin/` and
`lib/`); skipped with the reason otherwise. What was run here: OpenSC built from
its source at 0.27.1-196 with `--enable-piv-sm`.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from card import tlv
from card.runtime import CardRuntime
from host.piv import DEFAULT_MGMT_KEY, PivSession
from host.presets import new_card
from host.readers.inprocess import InProcessReader

PREFIX = os.environ.get("CARDEMU_OPENSC_PIV_SM", "")

pytestmark = pytest.mark.skipif(
    not PREFIX or not Path(PREFIX, "bin", "pkcs15-tool").exists(),
    reason="set CARDEMU_OPENSC_PIV_SM to the prefix of an OpenSC >= 0.24 built with "
    "--enable-piv-sm (Debian 12's OpenSC 0.23 has no PIV secure messaging)",
)


@pytest.fixture
def make_card() -> Callable[[], CardRuntime]:
    return lambda: new_card("piv", rng_seed=24)


@pytest.fixture
def opensc(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run one of the build's tools with SM required and a debug log."""
    conf = tmp_path / "opensc.conf"
    log = tmp_path / "opensc.log"
    conf.write_text(
        "app default {\n"
        f'  debug = 9;\n  debug_file = "{log}";\n'
        "  card_drivers = PIV-II;\n"
        "  reader_driver pcsc { }\n"
        "}\n"
    )
    base = {
        **os.environ,
        "OPENSC_CONF": str(conf),
        "PIV_USE_SM": "always",
        "LD_LIBRARY_PATH": str(Path(PREFIX, "lib")),
    }

    def run(
        tool: str, *args: str, ok: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            [str(Path(PREFIX, "bin", tool)), *args],
            capture_output=True,
            env={**base, **(env or {})},
            timeout=120,
        )
        if ok:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            assert result.returncode == 0, (tool, args, result.stdout, result.stderr, tail)
        return result

    run.log = log  # type: ignore[attr-defined]
    return run


def test_opensc_opens_sm_and_reads_the_card(serve, opensc) -> None:  # noqa: ANN001
    r = serve().reader
    out = opensc("pkcs15-tool", "-r", r, "--list-data-objects", "--list-public-keys").stdout
    assert b"Using reader" in out or out is not None
    log = opensc.log.read_text(errors="replace")  # type: ignore[attr-defined]
    # The key establishment's confirmation held, then every command went out protected
    # and every protected answer decoded (MAC chains, counters, padding agree).
    assert "piv_sm_open: AuthCryptogram compare\n" in log
    assert "AuthCryptogram compare failed" not in log
    decoded = log.count("piv_decode_apdu: returning with: 0 (Success)")
    assert decoded >= 3 and "piv_decode_apdu: returning with: -" not in log


def _personalised() -> tuple[CardRuntime, ec.EllipticCurvePublicKey]:
    """The piv preset with a P-256 key in 9A and its certificate (made in process, in clear)."""
    card = new_card("piv", rng_seed=24)
    card.power_on()
    piv = PivSession(InProcessReader(card))
    piv.select()
    piv.authenticate()
    pub = piv.generate(0x9A, "p256")
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cardemu PIV SM 9A")])
    template = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)
        .serial_number(0x9A)
        .not_valid_before(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    tbs = template.tbs_certificate_bytes
    piv.verify_pin(b"123456")
    sig = piv.sign(0x9A, 0x11, hashlib.sha256(tbs).digest())
    algorithm = tlv.Tlv.from_bytes(tbs).children[2].to_bytes()
    der = tlv.build(0x30, [tbs, algorithm, (0x03, b"\x00" + sig)])
    piv.put_data(0x5FC105, tlv.build(0x70, der) + tlv.build(0x71, b"\x00"))
    card.power_off()
    return card, pub


def test_opensc_signs_over_sm_and_authenticates_the_management_key(  # noqa: ANN001
    serve, opensc, tmp_path
) -> None:
    card, pub = _personalised()
    r = serve(card).reader
    data = tmp_path / "data"
    data.write_bytes(b"signed through PIV secure messaging")
    sig = tmp_path / "sig"
    module = str(Path(PREFIX, "lib", "opensc-pkcs11.so"))
    opensc(
        "pkcs11-tool", "--module", module, "--slot-index", "0", "-l", "--pin", "123456",
        "--sign", "-m", "ECDSA-SHA256", "--id", "01", "--signature-format", "openssl",
        "-i", str(data), "-o", str(sig),
    )  # fmt: skip
    pub.verify(sig.read_bytes(), data.read_bytes(), ec.ECDSA(hashes.SHA256()))
    # The management key's mutual authentication and a key generation, under SM.
    key = tmp_path / "admin.key"
    key.write_text(":".join(f"{b:02X}" for b in DEFAULT_MGMT_KEY))
    out = tmp_path / "9c.der"
    opensc("piv-tool", "-r", r, "-A", "M:9B:03", "-G", "9C:11", "-o", str(out),
           env={"PIV_EXT_AUTH_KEY": str(key)})  # fmt: skip
    assert isinstance(
        serialization.load_der_public_key(out.read_bytes()), ec.EllipticCurvePublicKey
    )
    key.write_text(":".join(["00"] * 24))
    bad = opensc("piv-tool", "-r", r, "-A", "M:9B:03", ok=False, env={"PIV_EXT_AUTH_KEY": str(key)})
    assert bad.returncode != 0  # a wrong management key is refused through SM too
