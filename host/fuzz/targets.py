"""Fuzz targets: what the fuzzer knows about a card and about each applet on it.

A `CardTarget` is a card the fuzzer can build afresh as often as it likes (a
preset, a card image, a test's own set-up) or, slowly, a card in a real reader.
It holds one `AppletTarget` per selectable applet.

What the fuzzer knows about an applet comes from an `AppletTarget` *profile*,
matched by AID prefix:

- `select`: the SELECT that makes it current (default `00 A4 04 00 Lc AID 00`);
- `states`: the states worth fuzzing in besides "selected", each with the
  commands (or a function sending them) that reach it from "selected": PIN
  verified, secure channel open, transaction open...;
- `secrets`: a hook naming secrets that must never appear in a response (keys,
  K/OPc, session keys); OwnerPIN values are found without help, in the NVM;
- `spec_modules`: `apdu_specs` modules describing its commands (the default
  registry's specs for its AID and the interindustry ones are always used);
- `corpus`: valid commands to mutate from; `classes`: the CLA bytes it uses;
- `coverage`: modules or packages whose lines count for it (its class's module
  always does);
- `counters`: a hook naming retry counters kept in other shapes than OwnerPIN's;
- `verify_ins`: the instructions after which a retry counter may go back up.

Built-in applets have profiles in `builtin_profiles()`. A third-party package
adds its own with an entry point in the `cardemu.fuzz` group naming a function
that returns an iterable of `AppletTarget`. An applet with no profile is
fuzzed with a generic one: selected by AID, no extra states, PINs found in NVM.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from card.framework.catalogue import Catalogue, class_ref
from card.runtime import CardRuntime
from host.readers.base import Reader

log = logging.getLogger("cardemu.fuzz")

ENTRY_POINT_GROUP = "cardemu.fuzz"

#: Instructions after which a retry counter may legitimately go up (with a success
#: status word): ISO/IEC 7816-4 §11.5 VERIFY (20/21), CHANGE REFERENCE DATA (24),
#: DISABLE/ENABLE VERIFICATION REQUIREMENT (26/28, with verification data), RESET
#: RETRY COUNTER (2C), EXTERNAL/GENERAL/INTERNAL AUTHENTICATE (82, 86/87, 88),
#: and SELECT / MANAGE CHANNEL, whose deselect may run Java Card's OwnerPIN.reset()
#: (which restores the counter of a PIN validated earlier).
VERIFY_INS = frozenset({0x20, 0x21, 0x24, 0x26, 0x28, 0x2C, 0x82, 0x86, 0x87, 0x88, 0xA4, 0x70})

SELECTED = "selected"

#: The most RNG bytes a personalisation may draw for its card to be copied, not rebuilt.
RNG_SKIP_MAX = 4096

#: A state's set-up: APDUs sent in order (each must answer 9000/61xx), or a function
#: that sends them through the `send` it is given and raises to say it failed. The
#: function may return a session, an object with `wrap_command(apdu) -> bytes` (a
#: secure channel): most proprietary-class commands fuzzed in the state go through it.
Setup = tuple[bytes, ...] | Callable[[Callable[[bytes], bytes]], object]


@runtime_checkable
class CommandWrapper(Protocol):
    """The session a set-up function may return (a secure channel, GP Card Specification §10)."""

    def wrap_command(self, apdu: bytes) -> bytes:
        """The command as sent through the session (MAC, encryption)."""
        ...


class TargetError(Exception):
    """A target cannot be built: unknown preset, unreadable image, unknown applet."""


@dataclass(frozen=True)
class State:
    """A state of an applet worth fuzzing in, reached from "selected" by `setup`."""

    name: str
    setup: Setup
    doc: str = ""


@dataclass(frozen=True)
class Secret:
    """Bytes that must never appear in a response.

    Attributes:
        name: for reports ("purse PIN", "K").
        value: the secret bytes.
        where: the NVM (owner, name) holding it, if known: a suspected leak is then
            confirmed by re-running the session with that value changed.
        owner: the NVM owner (applet) it belongs to, when `where` is unknown.
        declared: named by the user (`--secret`): reported from `MIN_SECRET` bytes
            on even where it cannot be confirmed (a real card's PIN).
    """

    name: str
    value: bytes
    where: tuple[str, str] | None = None
    owner: str | None = None
    declared: bool = False


SecretsHook = Callable[[CardRuntime, bytes], Iterable[Secret]]
#: The commands carrying one DER message to an applet (one or several, in order).
DerWrap = Callable[[bytes, random.Random], tuple[bytes, ...]]
#: Retry counters in an applet's NVM segment: (value name, index in its tuple or -1 for
#: a value that is the counter itself, tries).
CountersHook = Callable[[Mapping[str, Any]], Iterable[tuple[str, int, int]]]


def select_apdu(aid: bytes) -> bytes:
    """SELECT by DF name, first occurrence, FCI requested (ISO/IEC 7816-4 §11.1.1)."""
    return bytes((0x00, 0xA4, 0x04, 0x00, len(aid))) + aid + b"\x00"


@dataclass(frozen=True)
class AppletTarget:
    """One applet to fuzz: a profile (matched by AID prefix) bound to an instance.

    See the module docstring for the fields. `cls` is the applet class of the
    instance (None for a card in a real reader).
    """

    name: str
    aid: bytes
    states: tuple[State, ...] = ()
    classes: tuple[int, ...] = (0x00, 0x80)
    corpus: tuple[bytes, ...] = ()
    spec_modules: tuple[str, ...] = ()
    secrets: SecretsHook | None = None
    counters: CountersHook | None = None
    coverage: tuple[str, ...] = ()
    verify_ins: frozenset[int] = VERIFY_INS
    select: bytes | None = None
    cls: type | None = field(default=None, compare=False)
    #: valid DER messages the applet takes (the ASN.1 source mutates their trees)
    der_seeds: tuple[bytes, ...] = field(default=(), compare=False, repr=False)
    #: how a DER message becomes the commands that carry it
    der_wrap: DerWrap | None = field(default=None, compare=False, repr=False)

    @property
    def select_command(self) -> bytes:
        return self.select if self.select is not None else select_apdu(self.aid)

    @property
    def owner(self) -> str:
        """The NVM owner name of this applet's persistent state."""
        return self.aid.hex()

    @property
    def state_names(self) -> tuple[str, ...]:
        return (SELECTED, *(s.name for s in self.states))

    def state(self, name: str) -> State | None:
        return next((s for s in self.states if s.name == name), None)

    def coverage_files(self) -> tuple[str, ...]:
        """Source files whose lines count as this applet's coverage."""
        files: list[str] = []
        if self.cls is not None:
            module = importlib.import_module(self.cls.__module__)
            path = getattr(module, "__file__", None)  # absent on built-in modules
            if path:
                files.append(path)
        for name in self.coverage:
            try:
                module = importlib.import_module(name)
            except ImportError:
                log.debug("coverage module %s not importable", name)
                continue
            path = getattr(module, "__file__", None)
            if path is None:
                continue
            if os.path.basename(path) == "__init__.py":
                files.extend(str(p) for p in sorted(Path(path).parent.rglob("*.py")))
            else:
                files.append(path)
        return tuple(dict.fromkeys(files))

    def label(self) -> str:
        return f"{self.name} ({self.aid.hex().upper()})"


# -- profiles of the built-in applets -----------------------------------------------------


def _h(*hexes: str) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h.replace(" ", "")) for h in hexes)


def _sample_profiles() -> list[AppletTarget]:
    from applets.sample import COUNTER_CLIENT_AID, COUNTER_SERVER_AID, ECHO_AID, PURSE_AID

    return [
        AppletTarget(
            "purse",
            PURSE_AID,
            states=(
                State("pin-verified", _h("0020000104 31323334"), "VERIFY with the preset PIN 1234"),
            ),
            corpus=_h(
                "0020000104 31323334",
                "0020000100",
                "00200001",
                "0024000108 31323334 35363738",
                "8030000004 00000010",
                "8040000004 00000001",
                "8050000004",
                "8052000008",
                "8030000004 7FFFFFFF",
            ),
            spec_modules=("apdu_specs.cardemu_samples",),
        ),
        AppletTarget(
            "echo",
            ECHO_AID,
            corpus=_h(
                "8001000003 AABBCC 00",
                "8001000000",
                "80020100",
                "8002000000",
                "1001000002 AABB",
                "8001000000 0003 010203 0000",
            ),
            spec_modules=("apdu_specs.cardemu_samples",),
        ),
        AppletTarget(
            "counter-client",
            COUNTER_CLIENT_AID,
            corpus=_h("8010000002", "80100000", "8011000001"),
            spec_modules=("apdu_specs.cardemu_samples",),
        ),
        AppletTarget("counter-server", COUNTER_SERVER_AID, corpus=_h("8010000002")),
    ]


def _fs_profiles() -> list[AppletTarget]:
    from applets.iso7816 import FS_APPLET_AID

    return [
        AppletTarget(
            "iso7816",
            FS_APPLET_AID,
            states=(
                State("pin1-verified", _h("0020000104 31323334"), "PIN1 1234"),
                State("pin2-verified", _h("0020008104 35363738"), "PIN2 5678"),
                State("adm1-verified", _h("002000 0A 08 3132333435363738"), "ADM1 12345678"),
                State("df-demo", _h("00A4040C0B F043415244454D55781601"), "DF.DEMO selected"),
            ),
            corpus=_h(
                "00A4000C023F00",
                "00A40004022F1000",
                "00A4020C022F10",
                "00A4080C047F106F01",
                "00A4090C02FFFF",
                "00A4040C0BF043415244454D55781601",
                "00B0000080",
                "00B0810010",
                "00D6000004DEADBEEF",
                "00B2010400",
                "00B2000200",
                "00DC000304AABBCCDD",
                "00A2000004AABB",
                "0032000003000001",
                "00F2000000",
                "0020000104 31323334",
                "0020008104 35363738",
                "0020000100",
                "0024000110 31323334FFFFFFFF 39393939FFFFFFFF",
                "002C000100",
                "002C000110 3131313131313131 31323334FFFFFFFF",
                "0044000000",
                "0004000000",
            ),
            coverage=("applets.iso7816", "card.fs"),
        ),
    ]


def _notes_profiles() -> list[AppletTarget]:
    from applets.notes import NOTES_AID

    return [
        AppletTarget(
            "notes",
            NOTES_AID,
            corpus=_h("80E2000003 414243", "80E2800102 4445", "80CA000000", "00CA0000"),
        )
    ]


class _SendReader(Reader):
    """A state set-up's `send` as a Reader, for host recipes (secure channels)."""

    def __init__(self, send: Callable[[bytes], bytes]) -> None:
        self._send = send

    def transmit(self, apdu: bytes) -> bytes:
        return self._send(apdu)


def _open_scp03(send: Callable[[bytes], bytes]) -> object:
    from host.gp.secure_channel import Scp03Reader

    # A fixed host challenge: a replayed set-up must send the same bytes.
    reader = Scp03Reader(_SendReader(send), random=lambda n: bytes(range(1, n + 1)))
    reader.open()
    return reader.session  # wraps the commands fuzzed in this state (C-MAC)


def _gp_secrets(card: CardRuntime, aid: bytes) -> list[Secret]:
    owner = aid.hex()
    out = []
    for kvn, *keys in card.nvm.read(owner, "keysets_value", ()) or ():
        for role, key in zip(("ENC", "MAC", "DEK"), keys, strict=False):
            if key:
                out.append(Secret(f"key set {kvn:02X} {role}", key, (owner, "keysets_value")))
    return out


def _gp_profiles() -> list[AppletTarget]:
    from card.gp.isd import ISD_AID

    return [
        AppletTarget(
            "isd",
            ISD_AID,
            states=(State("secure-channel", _open_scp03, "SCP03 (test keys 40..4F), C-MAC"),),
            corpus=_h(
                "80CA006600",
                "00CA00E000",
                "80CA9F7F00",
                "8050000008 0102030405060708 00",
                "80F21000024F0000",
                "80F24000024F0000",
                "80E6020015 07A0000001515350 08A000000151000000 000000",
                "80E40000024F00",
                "80D8000000",
                "80F0000000",
                "80E2800003 C00100",
            ),
            secrets=_gp_secrets,
            coverage=("card.gp",),
        )
    ]


_USIM_PIN = re.compile(r"^p\d+\.pin\.")
_USIM_AUTH = re.compile(r"^p\d+\.auth$")


def _usim_counters(seg: Mapping[str, Any]) -> Iterable[tuple[str, int, int]]:
    # p<n>.pin.<ref>: (PIN, limit, tries, enabled, PUK, PUK limit, PUK tries)
    for name, value in seg.items():
        if _USIM_PIN.match(name) and type(value) is tuple and len(value) >= 7:
            yield name, 2, value[2]
            yield name, 6, value[6]


@functools.lru_cache(maxsize=4096)
def _usim_kind(name: str) -> int:
    """1: a PIN record's name, 2: a subscriber key set's, 0: neither."""
    return 1 if _USIM_PIN.match(name) else 2 if _USIM_AUTH.match(name) else 0


def _usim_secrets(card: CardRuntime, aid: bytes) -> list[Secret]:
    owner = aid.hex()
    out: list[Secret] = []
    for name, value in card.nvm.segment(owner).items():
        if type(value) is tuple and _usim_kind(name):
            out.extend(_usim_value_secrets(owner, name, value))
    return out


@functools.lru_cache(maxsize=1024)
def _usim_value_secrets(owner: str, name: str, value: tuple[Any, ...]) -> tuple[Secret, ...]:
    # A pure function of a stored (immutable) record: the oracle asks after every
    # response with data.
    out = []
    kind = _usim_kind(name)
    if kind == 1 and len(value) >= 5:
        for label, v in (("PIN", value[0]), ("PUK", value[4])):
            if v:
                out.append(Secret(f"{label} {name}", v, (owner, name)))
    elif kind == 2 and len(value) >= 4:
        # (algorithm, K, OPc, OP, ...): TS 33.102 subscriber keys.
        for label, v in (("K", value[1]), ("OPc", value[2]), ("OP", value[3])):
            if isinstance(v, bytes) and v:
                out.append(Secret(f"{label} {name}", v, (owner, name)))
    return tuple(out)


def _usim_authenticate(sqns: Iterable[int]) -> tuple[bytes, ...]:
    """AUTHENTICATE (3G context, TS 31.102 §7.1.2) commands the sample profile accepts:
    Milenage with its K and OPc, fresh SQNs (TS 33.102 Annex C: SEQ || IND, 5 IND bits)."""
    from card.crypto.milenage import Milenage, generate_auth_vector
    from card.uicc.builder import TEST_K, TEST_OPC

    alg = Milenage(TEST_K, TEST_OPC)
    out = []
    for i, sqn in enumerate(sqns):
        rand = bytes((0x11 * (i + 1)) & 0xFF for _ in range(16))
        autn = generate_auth_vector(alg, rand, sqn.to_bytes(6, "big"), b"\x80\x00").autn
        out.append(bytes.fromhex("0088008122 10") + rand + b"\x10" + autn + b"\x00")
    return tuple(out)


def _usim_profiles() -> list[AppletTarget]:
    from applets.usim import UICC_AID
    from card.uicc.builder import DEFAULT_USIM_AID

    usim = select_apdu(DEFAULT_USIM_AID)[:-1]
    return [
        AppletTarget(
            "uicc",
            UICC_AID,
            states=(
                State("pin1-verified", _h("0020000108 31323334FFFFFFFF"), "PIN1 1234"),
                State("adm1-verified", _h("002000 0A 08 3132333435363738"), "ADM1 12345678"),
                State("usim", (usim,), "the USIM ADF selected"),
                State(
                    "usim-pin1",
                    (usim, bytes.fromhex("0020000108 31323334FFFFFFFF")),
                    "the USIM ADF selected, PIN1 verified",
                ),
            ),
            corpus=_h(
                "00A40004023F00",
                "00A40004022FE2",
                "00B000000A",
                "00A40004026F07",
                "00B2010400",
                "80F2000000",
                "80F20100",
                "00200001",
                "0020000108 3131313131313131",
                "002C000110 3131313131313131 31323334FFFFFFFF",
                "0024000110 31323334FFFFFFFF 35353535FFFFFFFF",
                "0026000108 31323334FFFFFFFF",
                "0028000108 31323334FFFFFFFF",
                "0088008122 10" + "00" * 16 + "10" + "00" * 16,
                "0088008011 10" + "00" * 16,
                "A0A40000023F00",
                "A0F2000016",
                "A0B000000A",
                "8010000003 FFFFFF",
                "80AA000003 A90181",
                "00D600000411223344",
            )
            + _usim_authenticate((1 << 5, 2 << 5 | 1, 3 << 5, 40 << 5 | 31)),
            secrets=_usim_secrets,
            counters=_usim_counters,
            coverage=("applets.usim", "card.uicc", "card.fs"),
        )
    ]


def _bio_counters(seg: Mapping[str, Any]) -> Iterable[tuple[str, int, int]]:
    from applets.biometric.applet import ADMIN_TRY_LIMIT

    # The biometric counter, and the administrative key's (at its default until first used).
    for name, default in (("tries", None), ("admin_tries", ADMIN_TRY_LIMIT)):
        value = seg.get(name, default)
        if type(value) is int:
            yield name, -1, value


def _bio_secrets(card: CardRuntime, aid: bytes) -> list[Secret]:
    owner = aid.hex()
    out = []
    from applets.biometric.applet import DEFAULT_ADMIN_KEY

    # A persistent field holds its default until first written.
    key = card.nvm.read(owner, "admin_key", DEFAULT_ADMIN_KEY)
    if key:
        out.append(Secret("administrative key", key, (owner, "admin_key")))
    for finger in card.nvm.read(owner, "fingers", ()) or ():
        if len(finger) >= 3 and isinstance(finger[2], bytes) and finger[2]:
            out.append(Secret(f"template of finger {finger[0]:02X}", finger[2], (owner, "fingers")))
    return out


def _bio_admin(send: Callable[[bytes], bytes]) -> None:
    from applets.biometric.applet import DEFAULT_ADMIN_KEY
    from card.crypto.cmac import aes_ecb_encrypt

    resp = send(bytes.fromhex("0084000010"))
    if resp[-2:] != b"\x90\x00" or len(resp) != 18:
        raise TargetError(f"GET CHALLENGE answered {resp[-2:].hex()}")
    proof = aes_ecb_encrypt(DEFAULT_ADMIN_KEY, resp[:16])
    resp = send(bytes.fromhex("008200 9B 10") + proof)
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"EXTERNAL AUTHENTICATE answered {resp[-2:].hex()}")


def _bio_finger() -> bytes:
    from applets.biometric.iso19794 import Minutia, build_biometric_data
    from card import tlv

    # 16 minutiae on a grid: a synthetic finger, enough for the default minimum of 12.
    minutiae = [
        Minutia(30 + 12 * (i % 4), 40 + 15 * (i // 4), 1 + i % 2, (7 * i) % 64) for i in range(16)
    ]
    # Reference 81 (a specific reference, ISO/IEC 7816-4 §7.5.1), subtype 09: right index.
    bit = tlv.build(0x7F60, [(0x83, b"\x81"), (0xA1, tlv.build(0x82, b"\x09"))])
    return bit + build_biometric_data(minutiae)


def _bio_probe_hex() -> str:
    from applets.biometric.iso19794 import build_biometric_data

    raw = build_biometric_data(bytes(48))  # 16 minutiae at the origin: a wrong finger
    return raw[4:].hex()


def _bio_enrolled(send: Callable[[bytes], bytes]) -> None:
    _bio_admin(send)
    data = _bio_finger()
    resp = send(bytes((0x00, 0xDB, 0x3F, 0xFF, len(data))) + data)
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"PUT DATA answered {resp[-2:].hex()}")


def _bio_profiles() -> list[AppletTarget]:
    from applets.biometric import BIO_AID

    return [
        AppletTarget(
            "biometric",
            BIO_AID,
            states=(
                State("admin", _bio_admin, "EXTERNAL AUTHENTICATE with the default admin key"),
                State("enrolled", _bio_enrolled, "admin, then a synthetic finger 81 enrolled"),
            ),
            corpus=_h(
                "00200081",
                "0020FF81",
                "0020008135 7F2E32 81" + _bio_probe_hex(),
                "00CB3FFF045C027F6100",
                "00CA7F6100",
                "0084000010",
                "002C0300",
                "00DB3FFF05 E103810103",
            ),
            secrets=_bio_secrets,
            counters=_bio_counters,
            # Enrolment and policy changes (administrative state) reset the counter.
            verify_ins=VERIFY_INS | {0xDB, 0xE2},
        )
    ]


#: Private key parts are also looked for in pieces: 16-byte windows every 8 bytes, so any
#: run of 24 or more bytes of a prime or scalar in a response is a finding.
_KEY_WINDOW = 16
_KEY_STRIDE = 8


def _private_parts(value: Any) -> list[tuple[str, bytes]]:
    """The private parts of a stored key record: d, or p, q and the derived d, dP, dQ, qInv."""
    from card.crypto.keypairs import KeyRecord

    try:
        record = KeyRecord.from_value(value)
        parts = [(f"private part {i}", p) for i, p in enumerate(record.private)]
        if not record.alg.is_ec:
            nums = record.rsa_key().private_numbers()
            for name in ("d", "dmp1", "dmq1", "iqmp"):
                n = getattr(nums, name)
                parts.append((f"RSA {name}", n.to_bytes((n.bit_length() + 7) // 8, "big")))
    except (ValueError, TypeError, KeyError, AssertionError):
        return []
    return parts


def keypair_secrets(card: CardRuntime, aid: bytes) -> list[Secret]:
    """Every private key part the keypair applet holds, whole and in windows (the oracle of
    "no private key ever leaves the card")."""
    owner = aid.hex()
    out: list[Secret] = []
    for name, value in sorted(card.nvm.segment(owner).items()):
        if name.startswith("key."):
            out.extend(_key_secrets(owner, name, value))
    return out


@functools.lru_cache(maxsize=256)
def _key_secrets(owner: str, name: str, value: Any) -> tuple[Secret, ...]:
    # A pure function of a stored (immutable) key record: the oracle asks after every
    # response with data, and parsing the record (an RSA key's CRT values) each time
    # cost a few per cent of a PIV campaign.
    out = []
    for label, part in _private_parts(value):
        what = f"key {name[4:]} {label}"
        out.append(Secret(what, part, (owner, name)))
        for i in range(0, len(part) - _KEY_WINDOW + 1, _KEY_STRIDE):
            out.append(Secret(f"{what} [{i}:]", part[i : i + _KEY_WINDOW], owner=owner))
    return tuple(out)


def _keypair_pin(send: Callable[[bytes], bytes]) -> None:
    from applets.keypair import DEFAULT_PIN

    resp = send(bytes((0x00, 0x20, 0x00, 0x81, len(DEFAULT_PIN))) + DEFAULT_PIN)
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"VERIFY answered {resp[-2:].hex()}")


def _keypair_keys(send: Callable[[bytes], bytes]) -> None:
    _keypair_pin(send)
    # P-256 in key 01 (signing key of the SE), P-384 in key 02 (key agreement).
    for apdu in ("0047000105AC0380011100", "0047000205AC0380011400", "002241B603840101"):
        resp = send(bytes.fromhex(apdu))
        if resp[-2:] != b"\x90\x00":
            raise TargetError(f"{apdu} answered {resp[-2:].hex()}")


class _SmFuzzSession:
    """An SM session for the fuzzer: wraps the commands it is given and counts the response.

    The engine does not unwrap responses, so the send sequence counter is advanced for
    each response here; interindustry commands the engine sends raw end the session,
    which is a refusal path worth fuzzing too.
    """

    def __init__(self, session: Any) -> None:
        self._session = session

    def wrap_command(self, apdu: bytes) -> bytes:
        wrapped = self._session.wrap_command(apdu)
        self._session.skip_response()
        return wrapped


@functools.lru_cache(maxsize=1)
def _keypair_sm_parties() -> tuple[Any, Any, bytes]:
    """The SM set-up's root and terminal keys and the terminal's certificate.

    Fixed (a replayed set-up must send the same bytes), so worked out once: the
    host's side of a set-up that every episode entering the state runs again.
    """
    from card.crypto.keys import P256, EcKeyPair
    from card.crypto.rng import CardRng
    from card.sm.cvc import issue_cvc

    rng = CardRng(0x5E)
    root, term = EcKeyPair.generate(P256, rng), EcKeyPair.generate(P256, rng)
    return root, term, issue_cvc(root.cryptography_key, b"ROOT", b"FUZZ", term.public)


@functools.lru_cache(maxsize=64)
def _keypair_sm_personalisation(card_key_template: bytes) -> bytes:
    """PUT DATA's root key and card certificate for the card key the card answered
    (ECDSA with RFC 6979 nonces: the same key gets the same bytes)."""
    from card.sm.cvc import issue_cvc, parse_public_key_template, public_key_template

    card_key = parse_public_key_template(card_key_template)
    root, _, _ = _keypair_sm_parties()
    return public_key_template(root.public) + issue_cvc(
        root.cryptography_key, b"ROOT", b"CARD", card_key
    )


def _keypair_sm(send: Callable[[bytes], bytes]) -> object:
    from card import tlv
    from card.crypto.rng import CardRng
    from card.sm.auth import TerminalAuthentication
    from host.readers.sm import SmReader

    _keypair_pin(send)
    resp = send(bytes.fromhex("0047008105AC0380011100"))
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"GENERATE 81 answered {resp[-2:].hex()}")
    data = _keypair_sm_personalisation(tlv.parse(resp[:-2])[0].to_bytes())
    resp = send(bytes((0x00, 0xDB, 0x3F, 0xFF, len(data))) + data)
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"PUT DATA answered {resp[-2:].hex()}")
    root, term, t_cert = _keypair_sm_parties()
    reader = SmReader(_SendReader(send))
    reader.authenticate(TerminalAuthentication(term, t_cert, root.public, CardRng(0x5F)))
    return _SmFuzzSession(reader.session)


def _keypair_profiles() -> list[AppletTarget]:
    from applets.keypair import KEYPAIR_AID

    return [
        AppletTarget(
            "keypair",
            KEYPAIR_AID,
            states=(
                State("pin", _keypair_pin, "VERIFY PIN 123456"),
                State("keys", _keypair_keys, "PIN, P-256 key 01 (DST set) and P-384 key 02"),
                State("sm", _keypair_sm, "PIN, key 81 certified, SM by mutual authentication"),
            ),
            classes=(0x00, 0x0C),
            corpus=_h(
                "0020008100",
                "0020008106313233343536",
                "0047000105AC0380011100",
                "0047000205AC03800114 00",
                "0047000308AC06800111C1010300",
                "0047810100",
                "002241B603840101",
                "002241A603840102",
                "002A9E9A20" + "11" * 32 + "00",
                "002A9E9A30" + "22" * 48 + "00",
                "002A80860300010200",
                "00860002097C07850504" + "00" * 4 + "00",
                "0084000008",
                "002A00BE037F2100",
                "00DB3FFF037F4900",
            ),
            spec_modules=("apdu_specs.iso7816_8",),
            secrets=keypair_secrets,
            coverage=("applets.keypair", "card.sm", "card.crypto.rsa"),
            verify_ins=VERIFY_INS | {0x47},
        )
    ]


def _piv_pin(send: Callable[[bytes], bytes]) -> None:
    resp = send(bytes.fromhex("0020008008313233343536FFFF"))
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"VERIFY answered {resp[-2:].hex()}")


def _piv_admin(send: Callable[[bytes], bytes]) -> None:
    """Mutual authentication with the default 3DES management key (SP 800-73-4 Part 2 A.1)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    from card import tlv
    from card.crypto.keys import TripleDES

    key = bytes.fromhex("010203040506070801020304050607080102030405060708")
    resp = send(bytes.fromhex("0087039B047C02800000"))
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"GENERAL AUTHENTICATE answered {resp[-2:].hex()}")
    witness = tlv.unpack(0x80, tlv.unpack(0x7C, resp[:-2]))
    plain = Cipher(TripleDES(key), modes.ECB()).decryptor().update(witness)
    body = tlv.build(0x7C, [(0x80, plain), (0x81, bytes(8))])
    resp = send(bytes((0x00, 0x87, 0x03, 0x9B, len(body))) + body + b"\x00")
    if resp[-2:] != b"\x90\x00":
        raise TargetError(f"GENERAL AUTHENTICATE answered {resp[-2:].hex()}")


def _piv_keys(send: Callable[[bytes], bytes]) -> None:
    _piv_admin(send)
    # P-256 in 9A, P-384 in 9C (PIN always), P-256 in 9E (no PIN); then the PIN.
    for apdu in ("0047009A05AC0380011100", "0047009C05AC0380011400", "0047009E05AC0380011100"):
        resp = send(bytes.fromhex(apdu))
        if resp[-2:] != b"\x90\x00":
            raise TargetError(f"{apdu} answered {resp[-2:].hex()}")
    _piv_pin(send)


def _piv_profiles() -> list[AppletTarget]:
    from applets.piv import PIV_AID

    return [
        AppletTarget(
            "piv",
            PIV_AID,
            states=(
                State("pin", _piv_pin, "VERIFY PIN 123456"),
                State("admin", _piv_admin, "management key (3DES, mutual authentication)"),
                State("keys", _piv_keys, "management key, P-256 9A, P-384 9C, P-256 9E, PIN"),
            ),
            classes=(0x00, 0x10),
            corpus=_h(
                "00200080",
                "0020008008313233343536FFFF",
                "0020FF80",
                "0024008010313233343536FFFF363534333231FFFF",
                "002C0080103132333435363738313233343536FFFF",
                "0087039B047C02800000",
                "0087039B047C02810000",
                "0087039B0C7C0A8208" + "00" * 8,
                "0047009A05AC0380011100",
                "0087119A267C2482008120" + "11" * 32 + "00",
                "0087149C367C3482008130" + "22" * 48 + "00",
                "0087119E477C458200854104" + "33" * 64 + "00",
                "00CB3FFF055C035FC10200",
                "00CB3FFF035C017E00",
                "00CB3FFF055C035FC10900",
                "00DB3FFF0C5C035FC1095305010341424300",
                "00FFFFFF1B039B18" + "0102030405060708" * 3,
            ),
            spec_modules=("apdu_specs.sp800_73_4", "apdu_specs.iso7816_8"),
            secrets=keypair_secrets,
            coverage=("applets.piv", "card.crypto.keypairs"),
            verify_ins=VERIFY_INS | {0x47},
        )
    ]


def _ecasd_secrets(card: CardRuntime, aid: bytes) -> list[Secret]:
    from card.sgp22.params import EcasdParams

    raw = card.nvm.read(aid.hex(), "params")
    if not raw:
        return []
    try:
        params = EcasdParams.from_bytes(raw)
    except ValueError:
        return []
    # SK.EUICC.ECDSA (SGP.22 §2.4.2): the eUICC's identity, never to leave the ECASD.
    return [Secret("SK.EUICC.ECDSA", params.private_key, (aid.hex(), "params"))]


def _es10(*ders: str) -> tuple[bytes, ...]:
    """STORE DATA commands carrying one ES10 request each (SGP.22 §5.7.2), last block."""
    out = []
    for h in ders:
        der = bytes.fromhex(h.replace(" ", ""))
        out.append(bytes((0x80, 0xE2, 0x91, 0x00, len(der))) + der + b"\x00")
    return tuple(out)


def store_data_blocks(der: bytes, rng: random.Random, cla: int = 0x80) -> tuple[bytes, ...]:
    """STORE DATA commands carrying one ES10 request (SGP.22 §5.7.2, GPCS §11.11): one
    short command when it fits (now and then one extended command), else a chain of
    blocks, P1 '11' then '91' on the last, P2 the block number."""
    if len(der) <= 255 and rng.random() < 0.9:
        return (bytes((cla, 0xE2, 0x91, 0x00, len(der))) + der + b"\x00",)
    if len(der) <= 0xFFFF and rng.random() < 0.2:
        return (bytes((cla, 0xE2, 0x91, 0x00, 0x00)) + len(der).to_bytes(2, "big") + der + b"\0\0",)
    size = rng.choice((255, 255, 255, 128, 200))
    blocks = [der[i : i + size] for i in range(0, len(der), size)] or [b""]
    out = []
    for n, block in enumerate(blocks):
        last = n == len(blocks) - 1
        head = bytes((cla, 0xE2, 0x91 if last else 0x11, n & 0xFF, len(block)))
        out.append(head + block + (b"\x00" if last else b""))
    return tuple(out)


def _es10_seeds() -> tuple[bytes, ...]:
    """The ES10 requests of `host.fuzz.rsp_seeds` that are whole DER trees."""
    from host.fuzz import der
    from host.fuzz.rsp_seeds import load

    out = []
    for s in load().es10:
        try:
            der.parse(s.der)
        except ValueError:
            continue  # a BPP segment: a TLV header with only its first child
        out.append(s.der)
    return tuple(out)


def _euicc_profiles() -> list[AppletTarget]:
    from card.sgp22 import asn1
    from card.sgp22.ecasd import ECASD_AID, ISD_R_AID

    # The ISD-R compiles the SGP.22 ASN.1 module on its first ES10 command (about a
    # second, once per process): compile it now, or the response-time oracle would
    # time the compiler instead of the card on whichever command comes first.
    asn1.rsp()
    return [
        AppletTarget(
            "isd-r",
            ISD_R_AID,
            corpus=_es10(
                "BF2000",  # GetEuiccInfo1
                "BF2200",  # GetEuiccInfo2
                "BF2E00",  # GetEuiccChallenge
                "BF2D00",  # GetProfilesInfo
                "BF2D03 5C015A",  # GetProfilesInfo, ICCID only
                "BF3C00",  # EuiccConfiguredAddresses
                "BF3E03 5C015A",  # GetEuiccData: EID
                "BF2800",  # ListNotification
                "BF2B00",  # RetrieveNotificationsList
                "BF4100",  # CancelSession (malformed: no transaction ID)
                "BF3103 800101",  # EnableProfile? (tags per SGP.22 Annex H)
            )
            + (
                bytes.fromhex("80E21100 03 BF2000"),  # a first block with more to come
                bytes.fromhex("80E29101 00 00"),
            ),
            coverage=("applets.isdr", "card.sgp22"),
            der_seeds=_es10_seeds(),
            der_wrap=store_data_blocks,
        ),
        AppletTarget("ecasd", ECASD_AID, secrets=_ecasd_secrets, coverage=("card.sgp22",)),
    ]


@functools.cache
def builtin_profiles() -> tuple[AppletTarget, ...]:
    """Profiles of the built-in applets and of entry points in the `cardemu.fuzz` group."""
    out: list[AppletTarget] = []
    for make in (
        _sample_profiles,
        _fs_profiles,
        _notes_profiles,
        _gp_profiles,
        _usim_profiles,
        _bio_profiles,
        _keypair_profiles,
        _piv_profiles,
        _euicc_profiles,
    ):
        try:
            out.extend(make())
        except ImportError as e:  # an applet package being reworked must not stop fuzzing
            log.debug("fuzz profiles: %s", e)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            out.extend(ep.load()())
        except Exception as e:  # noqa: BLE001 - a broken plug-in is reported, not fatal
            log.warning("fuzz profiles from entry point %s: %s", ep.name, e)
    return tuple(out)


def profile_for(aid: bytes, profiles: Sequence[AppletTarget] | None = None) -> AppletTarget | None:
    """The profile whose AID is the longest prefix of `aid`, if any."""
    best: AppletTarget | None = None
    for p in builtin_profiles() if profiles is None else profiles:
        if aid.startswith(p.aid) and (best is None or len(p.aid) > len(best.aid)):
            best = p
    return best


def applet_target(
    aid: bytes, cls: type | None = None, profiles: Sequence[AppletTarget] | None = None
) -> AppletTarget:
    """The target for an applet instance: its profile bound to the instance, or a generic one."""
    prof = profile_for(aid, profiles)
    if prof is None:
        name = cls.__name__ if cls is not None else aid.hex().upper()
        return AppletTarget(name, aid, cls=cls)
    name = prof.name if prof.aid == aid else f"{prof.name}:{aid.hex().upper()}"
    return replace(prof, name=name, aid=aid, cls=cls)


# -- cards -------------------------------------------------------------------------------


class _Template:
    """A personalised card's persistent values, written into blank runtimes on demand."""

    __slots__ = ("values", "used", "atr", "seed", "catalogue", "skip")

    def __init__(self, card: CardRuntime, seed: int, catalogue: Catalogue | None) -> None:
        self.values = card.nvm.snapshot()
        self.used = card.nvm.used
        self.atr = card.atr
        self.seed = seed
        self.catalogue = catalogue
        #: RNG bytes the personalisation drew
        self.skip = 0

    def restore(self) -> CardRuntime:
        rt = CardRuntime(None, rng_seed=self.seed, catalogue=self.catalogue)
        try:
            # The values as the personalised card stored them: loaded, not written one
            # by one (a tenth of a USIM episode went into those checked writes).
            rt.nvm.load_stored(self.values, self.used)
        except ValueError:  # a runtime that stored something of its own when built
            write = rt.nvm.write
            for owner, values in self.values.items():
                for name, value in values.items():
                    write(owner, name, value)
        rt.atr = self.atr
        if self.skip:
            rt.rng.random(self.skip)
        rt.nvm.flush()
        return rt


@dataclass(frozen=True)
class CardTarget:
    """A card to fuzz.

    Attributes:
        name: for reports ("demo", an image path).
        personalise: puts the applets and their data on a blank runtime (as a
            preset's build does); None for a card in a real reader.
        applets: the applets to fuzz.
        run_options: `cardemu run` options that rebuild this card (("--preset",
            "demo")), or () when only an image saved with a finding can.
        max_ms: the response-time bound of the response-time oracle.
        reader: the reader of a real card (then `personalise` is None).
        catalogue: applet classes a rebuilt card may instantiate.
    """

    name: str
    personalise: Callable[[CardRuntime], None] | None
    applets: tuple[AppletTarget, ...]
    run_options: tuple[str, ...] = ()
    max_ms: float = 1000.0
    reader: Reader | None = field(default=None, compare=False)
    catalogue: Catalogue | None = field(default=None, compare=False)
    #: secrets the tester knows the card holds (a real card's PINs and keys)
    secrets: tuple[Secret, ...] = ()
    #: every applet on the card, fuzzed or not (the oracles know them all)
    all_applets: tuple[AppletTarget, ...] = ()
    #: a command running longer than this is interrupted (in-process; None: never)
    hang_ms: float | None = None
    #: a command growing the process by more than this is interrupted (None: never)
    memory_mb: float | None = None
    #: personalised cards to copy, by RNG seed (None: copying is not faithful)
    templates: dict[int, _Template | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def in_process(self) -> bool:
        return self.personalise is not None

    def build(self, seed: int, image: str | os.PathLike[str] | None = None) -> CardRuntime:
        """A new card as this target describes it, not yet powered.

        Raises:
            TargetError: the target is a card in a real reader.
        """
        if self.personalise is None:
            raise TargetError(f"{self.name} is a real card: it cannot be rebuilt")
        if image is None:
            template = self._template(seed)
            if template is not None:
                return template.restore()
        return self.build_afresh(seed, image)

    def build_afresh(self, seed: int, image: str | os.PathLike[str] | None = None) -> CardRuntime:
        """A new card personalised from scratch (`build` may copy a personalised one)."""
        assert self.personalise is not None
        rt = CardRuntime(image, rng_seed=seed, catalogue=self.catalogue)
        self.personalise(rt)
        rt.nvm.flush()
        return rt

    def _template(self, seed: int) -> _Template | None:
        # Personalising can take milliseconds (a GP load file hashed, a USIM profile
        # parsed) and the fuzzer builds a card for every episode and every clone. A
        # card whose persistent values are written into a blank runtime is the same
        # card, as a card image reopened is, provided the personalisation left nothing
        # else behind: checked once per seed (NVM, ATR, the RNG's next bytes), else
        # every card is personalised afresh.
        cache = self.templates
        if seed not in cache:
            built = self.build_afresh(seed)
            template = _Template(built, seed, self.catalogue)
            copy = template.restore()
            cache[seed] = None
            if copy.nvm.snapshot() == built.nvm.snapshot() and copy.atr == built.atr:
                # A seeded card RNG is one stream however it is cut (card.crypto.rng): the
                # bytes personalisation drew are found in it and skipped in every copy.
                drawn = copy.rng.random(RNG_SKIP_MAX + 32).find(built.rng.random(32))
                if drawn >= 0:
                    template.skip = drawn
                    cache[seed] = template
        return cache[seed]

    def rebuildable_image(self) -> bool:
        """Whether a saved image of this card opens with the default catalogue (`cardemu run`)."""
        if self.personalise is None:
            return False
        default = _default_catalogue()
        return all(a.cls is None or class_ref(a.cls) in default for a in self.applets)

    def save_image(self, path: str | os.PathLike[str], seed: int) -> None:
        """Write the card as it is before any command (for `cardemu run --card`).

        Built aside and linked into place whole, as `cardemu card new` does.

        Raises:
            FileExistsError: `path` exists.
        """
        from card.nvm import new_aside_image, remove_image_files

        tmp = new_aside_image(path)
        try:
            rt = self.build_afresh(seed, image=tmp)
            try:
                rt.nvm.publish(path)
            finally:
                rt.close()
        finally:
            remove_image_files(tmp)

    def only(self, selectors: Sequence[str]) -> CardTarget:
        """The same card with only the applets named (by name, or AID hex prefix).

        Raises:
            TargetError: a selector matches no applet.
        """
        if not selectors:
            return self
        chosen: list[AppletTarget] = []
        for sel in selectors:
            found = find_applets(self.applets, sel)
            if not found:
                names = ", ".join(a.name for a in self.applets)
                raise TargetError(f"no applet {sel!r} on {self.name} (applets: {names})")
            chosen.extend(a for a in found if a not in chosen)
        return replace(self, applets=tuple(chosen), all_applets=self.card_applets)

    @property
    def card_applets(self) -> tuple[AppletTarget, ...]:
        """Every applet on the card, including those `only` left out of the fuzzing."""
        return self.all_applets or self.applets

    def applet(self, selector: str) -> AppletTarget:
        found = find_applets(self.applets, selector)
        if not found:
            raise TargetError(f"no applet {selector!r} on {self.name}")
        return found[0]


def find_applets(applets: Iterable[AppletTarget], selector: str) -> list[AppletTarget]:
    """Applets named `selector`, or whose AID starts with it (hex, any case/spacing)."""
    key = selector.strip()
    exact = [a for a in applets if a.name.lower() == key.lower()]
    if exact:
        return exact
    try:
        prefix = bytes.fromhex(key.replace(" ", "").replace(":", ""))
    except ValueError:
        return []
    return [a for a in applets if prefix and a.aid.startswith(prefix)]


@functools.cache
def _default_catalogue() -> Catalogue:
    # Reading the entry points costs milliseconds: the fuzzer rebuilds cards thousands
    # of times, so every target built here shares one catalogue.
    return Catalogue()


def card_target(
    name: str,
    personalise: Callable[[CardRuntime], None],
    *,
    run_options: tuple[str, ...] = (),
    max_ms: float | None = None,
    profiles: Sequence[AppletTarget] | None = None,
    extra_classes: Iterable[type] = (),
) -> CardTarget:
    """A target for any set-up function: the applets are read from a card it builds.

    Args:
        name: for reports.
        personalise: installs the applets on a blank runtime.
        run_options: `cardemu run` options that rebuild the same card, if any.
        max_ms: the response-time bound (None: 1000 ms).
        profiles: applet profiles to use instead of the built-in ones.
        extra_classes: applet classes outside the default catalogue (test applets).
    """
    catalogue = _default_catalogue()
    extra = tuple(extra_classes)
    if extra:
        catalogue = Catalogue(extra)
    probe = CardRuntime(None, rng_seed=0, catalogue=catalogue)
    personalise(probe)
    probe.power_on()  # an image's registry is read at power-on
    applets = []
    for aid, _ref, lifecycle, _default in probe.applets():
        if lifecycle & 0x80 or lifecycle & 0x07 != 0x07:
            continue  # not selectable: nothing reaches it through APDUs
        cls = type(probe.applet(aid))
        applets.append(applet_target(bytes(aid), cls, profiles))
    return CardTarget(
        name,
        personalise,
        tuple(applets),
        run_options=run_options,
        max_ms=1000.0 if max_ms is None else max_ms,
        catalogue=catalogue,
    )


def preset_target(preset: str, *, max_ms: float | None = None) -> CardTarget:
    """The card of a built-in preset (`cardemu run --preset NAME` rebuilds it).

    Raises:
        TargetError: no such preset.
    """
    from host.presets import PRESETS

    spec = PRESETS.get(preset)
    if spec is None:
        raise TargetError(f"unknown preset {preset!r}; choose from {', '.join(sorted(PRESETS))}")
    return card_target(preset, spec.build, run_options=("--preset", preset), max_ms=max_ms)


def image_target(path: str | os.PathLike[str], *, max_ms: float | None = None) -> CardTarget:
    """A card image: every rebuilt card starts from its content; the file is not changed.

    Raises:
        TargetError: the image cannot be read.
    """
    from card.nvm import NvmError

    if not os.path.exists(path):
        raise TargetError(f"no card image {os.fspath(path)!r}")
    from host.readers.registry import image_error

    try:
        rt = CardRuntime(path, catalogue=_default_catalogue(), create=False, readonly=True)
    except NvmError as e:
        raise TargetError(image_error(e)) from None
    snapshot = rt.nvm.snapshot()
    atr = rt.atr
    rt.nvm.close()
    items = tuple((o, tuple(seg.items())) for o, seg in snapshot.items())

    def personalise(card: CardRuntime) -> None:
        for owner, values in items:
            for name, value in values:
                card.nvm.write(owner, name, value)
        card.atr = atr

    return card_target(os.fspath(path), personalise, max_ms=max_ms)


def reader_target(
    reader: Reader,
    aids: Sequence[bytes],
    *,
    name: str = "reader",
    max_ms: float | None = None,
    secrets: tuple[Secret, ...] = (),
    profiles: Sequence[AppletTarget] | None = None,
) -> CardTarget:
    """A card in a real reader: the applets are named by AID (nothing can list them).

    `max_ms` is the response-time bound (None: 5000 ms, a real card is slower).
    """
    applets = tuple(applet_target(aid, profiles=profiles) for aid in aids)
    bound = 5000.0 if max_ms is None else max_ms
    return CardTarget(name, None, applets, max_ms=bound, reader=reader, secrets=secrets)
