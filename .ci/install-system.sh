#!/usr/bin/env bash
# Install the Debian packages the real-PC/SC tier and the CI need:
#   pcscd             the PC/SC daemon
#   vsmartcard-vpcd   the virtual reader driver our card connects to (35963/35964)
#   pcsc-tools        pcsc_scan and scriptor, used by tests/integration
#   opensc            opensc-tool, pkcs15-tool, pkcs11-tool, piv-tool: tests/integration
#   yubico-piv-tool   the PIV interop tests (tests/integration/test_piv_pcsc.py)
#   softhsm2          a PKCS#11 token for the repository system's HSM keys (tests/unit)
#   chromium          headless, renders a scenario's HTML report in a test
#   postgresql        server roles on PostgreSQL (several workers): tests/unit start
#                     their own cluster with initdb/pg_ctl (no service is enabled here)
#   libpcsclite-dev   winscard.h and libpcsclite.so: pip builds pyscard from source
#                     (it has no Linux wheel)
#   gcc python3-dev   the compiler, and the headers for Debian's own python3
#                     (a pyenv/venv interpreter brings its own)
#   python3-venv      ensurepip for Debian's python3, so `python3 -m venv` works
#                     (.ci/run and the README install into a venv)
# Not needed: Debian's swig (pyscard's build-system.requires pulls the `swig`
# wheel from PyPI into its isolated build environment) and pkg-config (pyscard's
# setup.py falls back to /usr/include/PCSC).
# --no-install-recommends keeps pcsc-tools from pulling in GTK. Idempotent:
# a second run installs nothing. Needs root (or sudo) and no TTY.
set -euo pipefail

packages=(pcscd vsmartcard-vpcd pcsc-tools opensc yubico-piv-tool libpcsclite-dev gcc python3-dev python3-venv softhsm2 chromium postgresql)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system: all packages present"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt run may hold the lock for a while (a fresh machine's first boot):
# wait for it rather than fail.
apt_opts=(-o DPkg::Lock::Timeout=300)

echo "install-system: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
    --no-install-recommends "${missing[@]}"
