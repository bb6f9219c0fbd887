"""Reference side of the card benchmark: vsmartcard's `vicc` ISO 7816 card, in-process.

The card benchmark prints our card's APDUs/s next to these figures. vicc's
`Iso7816OS.execute(apdu) -> bytes` is called directly, with no socket and no
PC/SC, so both sides measure only the card OS (ISO/IEC 7816-4 §11.2.2 SELECT,
§11.3.3 READ BINARY).

vicc's iso7816 card differs from ours in what it accepts:

- SELECT MF must use P2='0C' (no response data). With P2='00' (FCI) or '04'
  (FCP) Debian 12's vicc (3.3+dfsg-2) raises `TypeError` inside its TLV packer
  instead of answering, so `00 A4 00 00 02 3F 00` cannot be measured there.
- Its MF is empty, so a transparent EF is added for READ BINARY, and selected
  once before the loop (a SELECT MF leaves no current EF: READ BINARY then
  answers 6986).

Requirements: `apt-get install -y --no-install-recommends python3-virtualsmartcard`
and `pip install pycryptodome`. Debian 12 puts the package one directory deeper
than any interpreter looks (`/usr/lib/python3/site-packages/virtualsmartcard/`),
so the import below adds that directory to `sys.path` for the duration of the
import only. `CARDEMU_VICC_PATH` names another directory to try first.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

from card.sw import SW

# Where Debian 12's python3-virtualsmartcard installs the `virtualsmartcard` package
# (from `dpkg -L python3-virtualsmartcard`); no interpreter has it on its path.
DEBIAN_VICC_DIR = "/usr/lib/python3/site-packages/virtualsmartcard"
VICC_PATH_ENV = "CARDEMU_VICC_PATH"

# The transparent EF added to vicc's empty MF for READ BINARY.
VICC_EF_FID = 0x0101
VICC_EF_DATA = bytes(range(256))

# ISO/IEC 7816-4 §11.2.2: P1='00' select MF/DF/EF by FID; P2='0C' no response data.
VICC_SELECT_MF = bytes.fromhex("00A4000C023F00")
# P1='02' select EF under the current DF.
VICC_SELECT_EF = bytes.fromhex("00A4020C02") + VICC_EF_FID.to_bytes(2, "big")
# ISO/IEC 7816-4 §11.3.3: READ BINARY, offset 0, Ne=128, from the current EF.
READ_BINARY_128 = bytes.fromhex("00B0000080")

SW_OK = SW.SUCCESS.to_bytes()
# APDUs per clock read: keeps perf_counter's own cost out of the rate.
_BATCH = 64


class ViccBenchError(Exception):
    """The vicc reference benchmark could not run."""


class ViccUnavailableError(ViccBenchError):
    """vicc (or pycryptodome, which it needs) is not installed."""


class ViccResponseError(ViccBenchError):
    """vicc answered a command with something other than the expected response.

    Attributes:
        command: The command APDU.
        response: What vicc answered.
    """

    def __init__(self, command: bytes, response: bytes) -> None:
        answer = response.hex().upper() if response else "nothing (it raised)"
        super().__init__(f"vicc answered {command.hex().upper()} with {answer}")
        self.command = command
        self.response = response


def _vicc_dirs() -> list[str]:
    override = os.environ.get(VICC_PATH_ENV)
    return [d for d in (override, DEBIAN_VICC_DIR) if d]


def _forget_namespace_package() -> None:
    # With .../site-packages itself on sys.path, the outer `virtualsmartcard/`
    # directory imports as an empty namespace package and hides the real one.
    cached = sys.modules.get("virtualsmartcard")
    if cached is not None and getattr(cached, "__file__", None) is None:
        for name in [n for n in sys.modules if n.partition(".")[0] == "virtualsmartcard"]:
            del sys.modules[name]


def _import_three(names: tuple[str, str, str]) -> tuple[ModuleType, ModuleType, ModuleType]:
    first, second, third = names
    return (
        importlib.import_module(first),
        importlib.import_module(second),
        importlib.import_module(third),
    )


def _import_vicc() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import vicc's VirtualSmartcard, CardGenerator and SmartcardFilesystem modules.

    Raises:
        ViccUnavailableError: pycryptodome or vicc is missing.
    """
    if importlib.util.find_spec("Crypto") is None:
        raise ViccUnavailableError("pycryptodome is not installed (pip install pycryptodome)")
    names = (
        "virtualsmartcard.VirtualSmartcard",
        "virtualsmartcard.CardGenerator",
        "virtualsmartcard.SmartcardFilesystem",
    )
    try:
        return _import_three(names)
    except ImportError:
        _forget_namespace_package()
    for directory in _vicc_dirs():
        if not os.path.isfile(os.path.join(directory, "virtualsmartcard", "VirtualSmartcard.py")):
            continue
        # Only for the import: the modules stay in sys.modules, the path entry goes.
        sys.path.append(directory)
        try:
            return _import_three(names)
        except ImportError:
            _forget_namespace_package()
        finally:
            sys.path.remove(directory)
    raise ViccUnavailableError(
        "vsmartcard's virtualsmartcard module not found "
        "(apt-get install python3-virtualsmartcard; looked in " + ", ".join(_vicc_dirs()) + ")"
    )


@contextmanager
def contained_logging() -> Iterator[None]:
    """Keep vicc's logging from leaking into, or being slowed by, the caller's.

    vicc logs through the root logger's module functions, which run
    `logging.basicConfig()` when the root has no handler, and it warns about its
    default PIN whenever a card is built. Logging at WARNING and above is off
    meanwhile, as in a stock `vicc` run (its per-APDU lines are INFO/DEBUG).
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    level = root.level
    disabled = root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(disabled)
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def vicc_card() -> Callable[[bytes], bytes]:
    """Build vicc's iso7816 card plus one transparent EF and return its `execute`.

    Raises:
        ViccUnavailableError: vicc is not installed.
    """
    vs, cg, fs = _import_vicc()
    # The same MF and SAM `vicc -t iso7816` runs (CardGenerator's iso7816 branch).
    mf, sam = cg.CardGenerator("iso7816").getCard()
    mf.append(fs.TransparentStructureEF(parent=mf, fid=VICC_EF_FID, data=VICC_EF_DATA))
    card = vs.Iso7816OS(mf, sam)
    card.powerUp()
    execute: Callable[[bytes], bytes] = card.execute
    return execute


def expect_answer(execute: Callable[[bytes], bytes], command: bytes, expected: bytes) -> None:
    try:
        response = execute(command)
    except Exception as exc:  # vicc lets non-SwError bugs escape execute(); keep them typed
        raise ViccResponseError(command, b"") from exc
    if response != expected:
        raise ViccResponseError(command, response)


def measure_rate(
    execute: Callable[[bytes], bytes], command: bytes, expected: bytes, seconds: float
) -> float:
    """APDUs/s of `command` over at least `seconds`, checking every response."""
    expect_answer(execute, command, expected)  # warm-up, and fail fast
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(_BATCH):
            response = execute(command)
            if response != expected:
                raise ViccResponseError(command, response)
        count += _BATCH
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def vicc_available() -> tuple[bool, str]:
    """Whether the vicc reference can run here.

    Builds the card and checks its answers to the benchmark's commands, so a
    vicc version that behaves differently is reported rather than mis-measured.

    Returns:
        (True, "") or (False, the reason).
    """
    try:
        with contained_logging():
            execute = vicc_card()
            expect_answer(execute, VICC_SELECT_MF, SW_OK)
            expect_answer(execute, VICC_SELECT_EF, SW_OK)
            expect_answer(execute, READ_BINARY_128, VICC_EF_DATA[:128] + SW_OK)
    except ViccBenchError as exc:
        return False, str(exc)
    return True, ""


def bench_vicc(seconds: float = 2.0) -> dict[str, float]:
    """Measure vicc's iso7816 card in-process, in APDUs per second.

    Each command loops for half of `seconds` (so at least 1 s each by default),
    and every response is compared with the expected bytes.

    Args:
        seconds: Total measuring time, split evenly between the two commands.

    Returns:
        {"select_mf": rate of VICC_SELECT_MF (answer 9000),
         "read_binary_128": rate of READ_BINARY_128 on EF VICC_EF_FID
         (answer 128 data bytes + 9000)}.

    Raises:
        ViccUnavailableError: vicc or pycryptodome is missing.
        ViccResponseError: vicc answered something unexpected.
    """
    each = seconds / 2
    with contained_logging():
        execute = vicc_card()
        select_mf = measure_rate(execute, VICC_SELECT_MF, SW_OK, each)
        expect_answer(execute, VICC_SELECT_EF, SW_OK)
        read_binary = measure_rate(execute, READ_BINARY_128, VICC_EF_DATA[:128] + SW_OK, each)
    return {"select_mf": select_mf, "read_binary_128": read_binary}


def vicc_meters() -> dict[str, Callable[[float], float]]:
    """One vicc card, and a function per command measuring its APDUs/s for some seconds.

    For interleaving with our card's rounds (`host.bench`): each call selects what
    its command needs first, and checks every response.

    Raises:
        ViccUnavailableError: vicc or pycryptodome is missing.
    """
    with contained_logging():
        execute = vicc_card()

    def select_mf(seconds: float) -> float:
        with contained_logging():
            return measure_rate(execute, VICC_SELECT_MF, SW_OK, seconds)

    def read_binary_128(seconds: float) -> float:
        with contained_logging():
            expect_answer(execute, VICC_SELECT_EF, SW_OK)
            return measure_rate(execute, READ_BINARY_128, VICC_EF_DATA[:128] + SW_OK, seconds)

    return {"select_mf": select_mf, "read_binary_128": read_binary_128}


if __name__ == "__main__":
    ok, reason = vicc_available()
    if not ok:
        print(f"Error: {reason}", file=sys.stderr)
        sys.exit(1)
    for name, rate in bench_vicc().items():
        print(f"vicc {name}: {rate:,.0f} APDUs/s")
