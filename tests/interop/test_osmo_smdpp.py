"""Our LPA and our emulated eUICC download a profile from osmocom's osmo-smdpp (optional).

osmo-smdpp (github.com/osmocom/pysim, not on PyPI) is an independent SM-DP+:
its ES9+ JSON, its signatures, its BPP (with ReplaceSessionKeys and the
profile's own session keys) and its reading of our SAIP package are not ours.
The test generates a PKI (`host.pki`: CI, DPauth, DPpb, DPtls for
testsmdpplus1.example.com, the eUICC and its EUM), lays it out as osmo-smdpp
expects under a temporary smdpp-data/, and runs osmo-smdpp with TLS on
127.0.0.1 only. The LPA connects there while checking TLS against the CI for
testsmdpplus1.example.com. Then the profile is enabled and answers
AUTHENTICATE.

Point CARDEMU_PYSIM_DIR at a pySim checkout; CARDEMU_PYSIM_PYTHON may name
the interpreter that has osmo-smdpp's requirements (klein, twisted,
pyosmocom, asn1tools, ...; default: this one). Skipped, with the reason, when
either is missing or osmo-smdpp does not start.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from card.crypto.milenage import AkaAlgorithm, Milenage, XorTestAlgorithm, generate_auth_vector
from card.runtime import CardRuntime
from host.lpa import Es10Client, Lpa, Step
from host.pki import TestPki, create_pki
from host.presets import PRESETS, install_euicc
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.saip import ProfileOrder, build_upp
from host.usim import UsimSession, check_auth

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif("euicc" not in PRESETS, reason="no euicc preset (applets.isdr) here"),
]

PYSIM_DIR = os.environ.get("CARDEMU_PYSIM_DIR")
PYSIM_PYTHON = os.environ.get("CARDEMU_PYSIM_PYTHON", sys.executable)
# osmo-smdpp's built-in name (osmo-smdpp.py HOSTNAME): in its TLS certificate and the
# smdpAddress it accepts.
OSMO_HOST = "testsmdpplus1.example.com"
K = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
OPC = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")

_LAUNCHER = """
import importlib.util, os, sys
pysim, port = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, pysim)
spec = importlib.util.spec_from_file_location("osmo_smdpp", os.path.join(pysim, "osmo-smdpp.py"))
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
certs = os.path.join(m.DATA_DIR, "certs")
hs = m.SmDppHttpServer(
    server_hostname=m.HOSTNAME,
    ci_certs_path=os.path.join(certs, "CertificateIssuer"),
    common_cert_path=certs,
    use_brainpool=False,
    in_memory=True,
)
tls = os.path.join(certs, "DPtls")
# Loopback only: the interface is part of the endpoint.
key = os.path.join(tls, "SK_S_SM_DP_TLS_NIST.pem")
cert = os.path.join(tls, "CERT_S_SM_DP_TLS_NIST.pem")
hs.app.run(endpoint_description=f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}")
"""


def _pysim() -> Path:
    if not PYSIM_DIR:
        pytest.skip("set CARDEMU_PYSIM_DIR to a pySim checkout to run osmo-smdpp")
    root = Path(PYSIM_DIR)
    if not (root / "osmo-smdpp.py").is_file():
        pytest.skip(f"no osmo-smdpp.py in {root}")
    probe = subprocess.run(
        [PYSIM_PYTHON, "-c", "import klein, twisted, osmocom, asn1tools, pySim.esim.rsp"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    if probe.returncode != 0:
        pytest.skip(
            f"osmo-smdpp's requirements are missing: {probe.stderr.strip().splitlines()[-1:]}"
        )
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _osmo_layout(pki: TestPki, data: Path) -> None:
    """The certificate files where osmo-smdpp looks for them (smdpp-data/certs/...)."""
    certs = data / "certs"
    files = {
        "CertificateIssuer/CERT_CI_ECDSA_NIST.der": pki.ci.der,
        "DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der": pki.dpauth.der,
        "DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem": pki.dpauth.key_pem,
        "DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der": pki.dppb.der,
        "DPpb/SK_S_SM_DPpb_ECDSA_NIST.pem": pki.dppb.key_pem,
        "DPtls/CERT_S_SM_DP_TLS_NIST.pem": pki.dptls.pem,
        "DPtls/SK_S_SM_DP_TLS_NIST.pem": pki.dptls.key_pem,
    }
    for rel, content in files.items():
        path = certs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (data / "upp").mkdir(parents=True, exist_ok=True)


@dataclass
class Osmo:
    port: int
    pki: TestPki
    upp_dir: Path
    log: Path


@pytest.fixture(scope="module")
def osmo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Osmo]:
    root = _pysim()
    work = tmp_path_factory.mktemp("osmo-smdpp")
    pki = create_pki(smdp_host=OSMO_HOST, tls_names=(), seed=b"osmo-smdpp interop")
    _osmo_layout(pki, work / "smdpp-data")
    (work / "launch.py").write_text(_LAUNCHER)
    port = _free_port()
    log = work / "osmo-smdpp.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PYSIM_PYTHON, str(work / "launch.py"), str(root), str(port)],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(f"osmo-smdpp exited: {log.read_text(errors='replace')[-300:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("osmo-smdpp did not start listening within 60 s")
                time.sleep(0.2)
        yield Osmo(port, pki, work / "smdpp-data" / "upp", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _euicc(pki: TestPki) -> InProcessReader:
    rt = CardRuntime(rng_seed=3)
    install_euicc(rt, pki=pki)
    return InProcessReader(rt)


def _download(osmo: Osmo, reader: InProcessReader, matching_id: str) -> tuple[list[Step], str]:
    steps: list[Step] = []
    with Es10Client(reader) as es10:
        lpa = Lpa(
            es10, ca_pem=osmo.pki.ci.pem, connect_to=("127.0.0.1", osmo.port), on_step=steps.append
        )
        result = lpa.download(f"LPA:1${OSMO_HOST}${matching_id}")
        assert result.installed, (
            f"{result.error}; osmo-smdpp log: {osmo.log.read_text(errors='replace')[-2000:]}"
        )
        assert result.notified
        lpa.enable(result.iccid)
        (profile,) = lpa.profiles()
        assert profile["state"] == "enabled"
    return steps, result.iccid


def _authenticate(reader: InProcessReader, alg: AkaAlgorithm) -> None:
    usim = UsimSession(reader)
    usim.select_usim()
    rand = os.urandom(16)
    res = usim.authenticate(
        rand, generate_auth_vector(alg, rand, (0x20).to_bytes(6, "big"), b"\x80\x00").autn
    )
    check = check_auth(res, alg, rand)
    assert check.ok, check.detail


def test_tls_is_ours_and_loopback_only(osmo: Osmo) -> None:
    ctx = ssl.create_default_context(cadata=osmo.pki.ci.pem.decode())
    with socket.create_connection(("127.0.0.1", osmo.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=OSMO_HOST) as s:
            assert s.getpeercert()["subject"][-1][0] == ("commonName", OSMO_HOST)


def test_download_our_saip_profile_from_osmo_smdpp(osmo: Osmo) -> None:
    order = ProfileOrder(
        "CARDEMU-1", "8988211000000000057", "001010000000057", K, OPC, name="cardemu via osmo"
    )
    (osmo.upp_dir / "CARDEMU-1.der").write_bytes(build_upp(order))
    reader = _euicc(osmo.pki)
    steps, iccid = _download(osmo, reader, "CARDEMU-1")
    assert iccid == order.full_iccid
    assert [f"{s.interface}.{s.function}" for s in steps][:3] == [
        "ES10b.GetEUICCChallenge",
        "ES10b.GetEUICCInfo1",
        "ES9+.InitiateAuthentication",
    ]
    _authenticate(reader, Milenage(K, OPC))


def test_download_a_ts48_profile_from_osmo_smdpp(osmo: Osmo) -> None:
    """A GSMA TS.48 test profile shipped with pySim (XOR test algorithm, K 00..0F)."""
    source = Path(PYSIM_DIR or "") / "smdpp-data" / "upp" / "TS48v4_SAIP2.3_NoBERTLV.der"
    if not source.is_file():
        pytest.skip(f"no {source.name} in the pySim checkout")
    shutil.copy(source, osmo.upp_dir / "TS48V4-NOBERTLV.der")
    reader = _euicc(osmo.pki)
    _download(osmo, reader, "TS48V4-NOBERTLV")
    _authenticate(reader, XorTestAlgorithm(K, 8))
