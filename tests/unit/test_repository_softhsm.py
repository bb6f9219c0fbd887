"""The HSM's keys on a PKCS#11 token: SoftHSM2 (Debian `softhsm2`) with python-pkcs11.

Skipped, with the reason, when the module or the package is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from card.sm.cvc import ec_verify, parse_public_key_template
from host.systems.repository.keystore import SOFTHSM_MODULE, Pkcs11KeyStore, SqliteKeyStore

PIN = "5678"


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed")
    util = shutil.which("softhsm2-util")
    if util is None or not os.path.exists(SOFTHSM_MODULE):
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        [util, "--init-token", "--free", "--label", "hsm", "--so-pin", "1234", "--pin", PIN],
        check=True,
        capture_output=True,
    )
    yield "hsm"


def test_keys_generated_and_used_on_the_token(token: str) -> None:
    store = Pkcs11KeyStore(SOFTHSM_MODULE, token, PIN)
    template = store.generate("card-01")
    public = parse_public_key_template(template)
    from host.systems.repository.server import key_id_of

    key_id = key_id_of(template).hex()
    sig = store.sign(key_id, b"7F49 card key || 5F50 URL")
    assert ec_verify(public, b"7F49 card key || 5F50 URL", sig)
    with pytest.raises(KeyError):
        store.sign("00" * 20, b"x")
    assert PIN not in repr(store)


def test_issuance_with_the_hsm_keys_on_softhsm(token: str) -> None:
    from tests.unit.test_repository_system import HOLDER, world

    with world() as w:
        w.hsm.keystore = Pkcs11KeyStore(SOFTHSM_MODULE, token, PIN)
        result = w.terminal().issue(w.registration())
        assert result["url"] == w.repo_url
        w.card.reset()
        t = w.terminal()
        assert t.present_finger(HOLDER[1])
        assert t.read_url(w.registration()).url == w.repo_url  # signature checked
        # No private key in the HSM's SQLite store: it is on the token.
        assert not isinstance(w.hsm.keystore, SqliteKeyStore)
        rows = w.hsm.store.query("SELECT name FROM sqlite_master WHERE name = 'hsm_private'")
        assert not rows or not w.hsm.store.query("SELECT * FROM hsm_private")
