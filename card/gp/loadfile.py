"""Safe load files: a descriptor that names catalogued code, never code itself.

On a Java Card the Load File Data Block of GlobalPlatform LOAD (GPC v2.3.1
§11.6, Table 11-58) is a CAP file whose bytecode the card links and runs. This
emulator never executes, imports or unpickles bytes that arrive in APDUs. Its
Load File Data Block is a *descriptor*: a BER-TLV that names a Python package
already installed on the machine, the applet classes in it that the card may
instantiate (each under its executable module AID) and the SHA-256 of the
package's source. The card checks every class against its catalogue (the
built-in `applets` and the `cardemu.applets` entry points) and the hash against
the source as installed; a mismatch refuses the LOAD.

Descriptor format (format version 1), all lengths BER (X.690 §8.1.3)::

    FE L                        cardemu load file descriptor (private, constructed)
      80 01 01                  format version
      4F L  <package AID>       the Executable Load File AID (5-16 bytes)
      CE 02 <major> <minor>     load file version (GPC Table 11-36 uses CE for it)
      81 L  <package>           Python package (or single module) name, UTF-8
      82 20 <SHA-256>           code hash, see `code_hash`
      A0 L                      one executable module, repeated, at least once:
        4F L <module AID>       the Executable Module AID (5-16 bytes)
        80 L <entry point>      its `cardemu.applets` entry-point name (UTF-8; may be empty)
        81 L <class reference>  "module:QualName" (UTF-8)

Objects appear in this order; unknown tags are refused (a card must not guess).

Code hash: the package's `*.py` files (for a single-module load file, that
file), sorted by their POSIX path relative to the package directory; SHA-256
over, for each file, `len(path) (4 bytes) || path (UTF-8) || len(content)
(8 bytes) || content` (bytes as stored: a line-ending change is a code change).

Default AIDs, when the caller gives none (prefix F0 43 41 52 44 45 4D 55, the
proprietary RID F0 43 41 52 44 and PIX start "EMU" the sample applets use):
package AID = prefix || 'P' || SHA-256(package name)[:7]; module AID = prefix ||
'M' || SHA-256(class reference)[:7] (16 bytes each).

The LOAD command stream (§11.6.2.3) is `[E2 {4F SD AID, C3 signature}]... C4 L
<descriptor>`; `load_file_stream` builds it and `parse_load_stream` reads it back.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from card import tlv
from card.framework.catalogue import ENTRY_POINT_GROUP
from card.sw import SW, CardError

if TYPE_CHECKING:
    from card.framework.catalogue import Catalogue

__all__ = [
    "DESCRIPTOR_TAG",
    "CARDEMU_PREFIX",
    "LoadFileError",
    "Module",
    "LoadFileDescriptor",
    "DapBlock",
    "build_load_file",
    "describe_load_file",
    "catalogued_modules",
    "package_of",
    "source_files",
    "code_hash",
    "default_package_aid",
    "default_module_aid",
    "load_file_stream",
    "parse_load_stream",
    "lfdb_hash",
    "HASH_ALGORITHMS",
    "verify_descriptor",
]

DESCRIPTOR_TAG = 0xFE  # private, constructed (ISO 7816-4 §5.2.2.1: no first tag byte FF)
FORMAT_VERSION = 1
CARDEMU_PREFIX = bytes.fromhex("F043415244454D55")  # RID F0 43 41 52 44 ("F0 CARD") + "EMU"

_T_FORMAT, _T_AID, _T_VERSION, _T_PACKAGE, _T_HASH, _T_MODULE = 0x80, 0x4F, 0xCE, 0x81, 0x82, 0xA0
_T_MOD_AID, _T_MOD_EP, _T_MOD_REF = 0x4F, 0x80, 0x81
_T_LFDB, _T_DAP, _T_DAP_SD, _T_DAP_SIG = 0xC4, 0xE2, 0x4F, 0xC3

# GPC v2.3.1 §C.2 and Annex H.4 (card capabilities, tag 83): the Load File Data Block
# hash algorithm follows from the length of the hash in INSTALL [for load].
HASH_ALGORITHMS = {20: "sha1", 32: "sha256", 48: "sha384", 64: "sha512"}

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*\Z")


class LoadFileError(CardError):
    """A load file the card refuses; `sw` is the status word it answers (6A80 by default)."""

    def __init__(self, reason: str, sw: int = SW.WRONG_DATA) -> None:
        super().__init__(sw)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.sw:04X}: {self.reason}"


# -- The descriptor ---------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    """One executable module: an applet class the load file provides."""

    aid: bytes
    entry_point: str
    class_ref: str

    @property
    def module_name(self) -> str:
        return self.class_ref.partition(":")[0]


@dataclass(frozen=True)
class LoadFileDescriptor:
    """The Load File Data Block of a cardemu load file (see the module docstring)."""

    aid: bytes
    version: tuple[int, int]
    package: str
    code_hash: bytes
    modules: tuple[Module, ...]

    def module(self, aid: bytes) -> Module | None:
        return next((m for m in self.modules if m.aid == aid), None)

    def module_for(self, entry_point_or_ref: str) -> Module:
        """The module registered under an entry-point name or class reference.

        Raises:
            KeyError: the load file has no such module.
        """
        for m in self.modules:
            if entry_point_or_ref in (m.entry_point, m.class_ref):
                return m
        raise KeyError(f"{entry_point_or_ref} is not in load file {self.package}")

    def to_bytes(self) -> bytes:
        """Encode. Raises ValueError for a field out of range."""
        _check_aid(self.aid, "package AID")
        if len(self.code_hash) != 32:
            raise ValueError("the code hash is a SHA-256 (32 bytes)")
        if not all(0 <= v <= 0xFF for v in self.version) or len(self.version) != 2:
            raise ValueError("version is (major, minor), each a byte")
        if not self.modules:
            raise ValueError("a load file provides at least one module")
        children: list[bytes] = [
            tlv.build(_T_FORMAT, bytes((FORMAT_VERSION,))),
            tlv.build(_T_AID, self.aid),
            tlv.build(_T_VERSION, bytes(self.version)),
            tlv.build(_T_PACKAGE, self.package.encode()),
            tlv.build(_T_HASH, self.code_hash),
        ]
        for m in self.modules:
            _check_aid(m.aid, "module AID")
            children.append(
                tlv.build(
                    _T_MODULE,
                    [
                        (_T_MOD_AID, m.aid),
                        (_T_MOD_EP, m.entry_point.encode()),
                        (_T_MOD_REF, m.class_ref.encode()),
                    ],
                )
            )
        return tlv.build(DESCRIPTOR_TAG, children)

    @classmethod
    def from_bytes(cls, data: bytes) -> LoadFileDescriptor:
        """Decode strictly.

        Raises:
            LoadFileError: 6A80 for anything that is not a well-formed descriptor.
        """
        try:
            top = tlv.Tlv.from_bytes(data, allow_padding=False)
            if top.tag != DESCRIPTOR_TAG:
                raise LoadFileError(f"not a load file descriptor (tag {top.tag:X})")
            items = list(top.children)
            tags = [t.tag for t in items]
            head = [_T_FORMAT, _T_AID, _T_VERSION, _T_PACKAGE, _T_HASH]
            if tags[:5] != head or len(tags) < 6 or any(t != _T_MODULE for t in tags[5:]):
                raise LoadFileError("descriptor objects missing, unknown or out of order")
            fmt, aid, ver, pkg, digest = (t.value for t in items[:5])
            if fmt != bytes((FORMAT_VERSION,)):
                raise LoadFileError(f"descriptor format {fmt.hex()} is not supported")
            if not 5 <= len(aid) <= 16 or len(ver) != 2 or len(digest) != 32:
                raise LoadFileError("descriptor field of the wrong length")
            package = pkg.decode()
            if not _DOTTED.match(package):
                raise LoadFileError(f"{package!r} is not a Python package name")
            modules = []
            for item in items[5:]:
                parts = list(item.children)
                if [p.tag for p in parts] != [_T_MOD_AID, _T_MOD_EP, _T_MOD_REF]:
                    raise LoadFileError("module objects missing, unknown or out of order")
                maid, ep, ref = (p.value for p in parts)
                if not 5 <= len(maid) <= 16:
                    raise LoadFileError("module AID of the wrong length")
                ref_s = ref.decode()
                if not _REF.match(ref_s):
                    raise LoadFileError(f"{ref_s!r} is not a class reference")
                modules.append(Module(maid, ep.decode(), ref_s))
        except (tlv.TlvError, UnicodeDecodeError, ValueError) as e:
            if isinstance(e, LoadFileError):
                raise
            raise LoadFileError(f"malformed descriptor: {e}") from None
        aids = [aid] + [m.aid for m in modules]
        if len(set(aids)) != len(aids):
            raise LoadFileError("the package and its modules need distinct AIDs")
        return cls(aid, (ver[0], ver[1]), package, digest, tuple(modules))


def _check_aid(aid: bytes, what: str) -> None:
    if not 5 <= len(aid) <= 16:
        raise ValueError(f"{what} has 5 to 16 bytes, got {len(aid)}")


# -- Code and its hash ------------------------------------------------------------------


def source_files(package: str) -> list[tuple[str, bytes]]:
    """(relative POSIX path, content) of the package's source, sorted by path.

    A package contributes every `*.py` below its directory (caches excluded);
    a single-module load file contributes that one file.

    Raises:
        ValueError: the package cannot be found or has no Python source.
    """
    if not _DOTTED.match(package):
        raise ValueError(f"{package!r} is not a Python package name")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as e:
        raise ValueError(f"package {package} cannot be found: {e}") from None
    if spec is None:
        raise ValueError(f"package {package} is not installed")
    files: dict[str, bytes] = {}
    if spec.submodule_search_locations is not None:
        for root in sorted(str(p) for p in spec.submodule_search_locations):
            base = Path(root)
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                for name in filenames:
                    if name.endswith(".py"):
                        path = Path(dirpath) / name
                        files.setdefault(path.relative_to(base).as_posix(), path.read_bytes())
    elif spec.origin and spec.origin.endswith(".py"):
        path = Path(spec.origin)
        files[path.name] = path.read_bytes()
    if not files:
        raise ValueError(f"package {package} has no Python source to hash")
    return sorted(files.items())


def code_hash(package: str) -> bytes:
    """SHA-256 of a package's source, computed as the module docstring says.

    Raises:
        ValueError: the package cannot be found or has no source.
    """
    h = hashlib.sha256()
    for rel, content in source_files(package):
        name = rel.encode()
        h.update(len(name).to_bytes(4, "big") + name + len(content).to_bytes(8, "big"))
        h.update(content)
    return h.digest()


def default_package_aid(package: str) -> bytes:
    return CARDEMU_PREFIX + b"P" + hashlib.sha256(package.encode()).digest()[:7]


def default_module_aid(class_ref: str) -> bytes:
    return CARDEMU_PREFIX + b"M" + hashlib.sha256(class_ref.encode()).digest()[:7]


# -- Catalogued packages (host side: what build_load_file reads) -----------------------


def _catalogue_entry_points() -> dict[str, str]:
    return {ep.name: ep.value.replace(" ", "") for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _catalogue_versions(package: str) -> list[str]:
    """Versions of the distributions whose entry points catalogue classes of `package`."""
    out = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if _in_package(ep.value.partition(":")[0].strip(), package) and ep.dist is not None:
            out.append(ep.dist.version)
    return out


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ValueError(f"module {module} is not installed")
    return spec.submodule_search_locations is not None


def package_of(entry_point_or_package: str) -> str:
    """The package a load file for this entry point (or package) covers.

    An entry point's class lives in a module; the load file is the package that
    holds that module (a module at the top level is its own load file).

    Raises:
        ValueError: neither a catalogued entry point nor a package name.
    """
    eps = _catalogue_entry_points()
    ref = eps.get(entry_point_or_package)
    if ref is None:
        if not _DOTTED.match(entry_point_or_package):
            raise ValueError(f"{entry_point_or_package!r} is no entry point or package")
        return entry_point_or_package
    module = ref.partition(":")[0]
    if _is_package(module) or "." not in module:
        return module
    return module.rpartition(".")[0]


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def catalogued_modules(package: str) -> list[tuple[str, str]]:
    """(entry-point name, class reference) of every catalogued class inside `package`."""
    return sorted(
        (name, ref)
        for name, ref in _catalogue_entry_points().items()
        if _in_package(ref.partition(":")[0], package)
    )


def _package_version(package: str) -> tuple[int, int]:
    # The (major, minor) of the distribution that registers the package's applets.
    for v in _catalogue_versions(package):
        nums = re.findall(r"\d+", v)
        if nums:
            return (int(nums[0]) & 0xFF, int(nums[1]) & 0xFF if len(nums) > 1 else 0)
    return (1, 0)


def describe_load_file(
    entry_point_or_package: str,
    *,
    aid: bytes | None = None,
    version: tuple[int, int] | None = None,
    module_aids: dict[str, bytes] | None = None,
) -> LoadFileDescriptor:
    """The descriptor of a catalogued package (see `build_load_file`)."""
    package = package_of(entry_point_or_package)
    mods = catalogued_modules(package)
    if not mods:
        raise ValueError(f"package {package} holds no class of the {ENTRY_POINT_GROUP} catalogue")
    chosen = module_aids or {}
    modules = tuple(
        Module(chosen.get(name) or chosen.get(ref) or default_module_aid(ref), name, ref)
        for name, ref in mods
    )
    return LoadFileDescriptor(
        aid or default_package_aid(package),
        version or _package_version(package),
        package,
        code_hash(package),
        modules,
    )


def build_load_file(
    entry_point_or_package: str,
    *,
    aid: bytes | None = None,
    version: tuple[int, int] | None = None,
    module_aids: dict[str, bytes] | None = None,
) -> bytes:
    """The Load File Data Block (descriptor bytes) for a catalogued package.

    Args:
        entry_point_or_package: a `cardemu.applets` entry-point name ("purse") or
            a package name ("applets.sample"); an entry point stands for the whole
            package its class lives in, with every catalogued class in it.
        aid: the load file AID (default: derived from the package name).
        version: (major, minor) (default: the version of the distribution).
        module_aids: module AIDs by entry-point name or class reference (default:
            derived from the class reference).

    Returns:
        The descriptor; `load_file_stream` wraps it in C4 for LOAD.

    Raises:
        ValueError: not a catalogued package, or its source cannot be read.
    """
    return describe_load_file(
        entry_point_or_package, aid=aid, version=version, module_aids=module_aids
    ).to_bytes()


# -- The LOAD data stream (GPC v2.3.1 §11.6.2.3) ---------------------------------------


@dataclass(frozen=True)
class DapBlock:
    """A DAP block `E2 {4F SD AID, C3 signature}` (GPC v2.3.1 Table 11-58)."""

    sd_aid: bytes
    signature: bytes


def load_file_stream(lfdb: bytes, dap_blocks: Iterable[DapBlock] = ()) -> bytes:
    """The bytes LOAD carries, before they are cut into blocks: DAP blocks, then C4."""
    out = b"".join(
        tlv.build(_T_DAP, [(_T_DAP_SD, d.sd_aid), (_T_DAP_SIG, d.signature)]) for d in dap_blocks
    )
    return out + tlv.build(_T_LFDB, lfdb)


def expected_stream_length(data: bytes) -> int | None:
    """How long the stream is, once its header has arrived; None if not yet known.

    Lets the card spot a LOAD block that runs past the end, or a last block
    that stops short, without waiting for the whole stream.

    Raises:
        LoadFileError: the stream holds an object other than E2 and C4.
    """
    pos = 0
    while pos < len(data):
        try:
            tag, p = tlv.decode_tag(data, pos)
            length, v = tlv.decode_length(data, p)
        except tlv.TlvError:
            return None  # header incomplete (or malformed: judged when complete)
        if tag not in (_T_DAP, _T_LFDB):
            raise LoadFileError(f"LOAD data object {tag:X} is neither E2 nor C4")
        if tag == _T_LFDB:
            return v + length
        pos = v + length
    return None


def parse_load_stream(data: bytes) -> tuple[bytes, list[DapBlock]]:
    """Split a complete LOAD stream into the Load File Data Block and the DAP blocks.

    Raises:
        LoadFileError: 6A80 unless it is E2 blocks followed by exactly one C4.
    """
    try:
        items = tlv.parse(data, allow_padding=False)
    except tlv.TlvError as e:
        raise LoadFileError(f"LOAD data is not BER-TLV: {e}") from None
    if not items or items[-1].tag != _T_LFDB or any(t.tag != _T_DAP for t in items[:-1]):
        raise LoadFileError("LOAD data must be E2 DAP blocks followed by one C4")
    daps = []
    for item in items[:-1]:
        try:
            sd = item.find(_T_DAP_SD)
            sig = item.find(_T_DAP_SIG)
        except tlv.TlvError as e:
            raise LoadFileError(f"malformed DAP block: {e}") from None
        if sd is None or sig is None:
            raise LoadFileError("a DAP block needs 4F and C3")
        daps.append(DapBlock(sd.value, sig.value))
    return items[-1].value, daps


def lfdb_hash(lfdb: bytes, length: int = 32) -> bytes:
    """The Load File Data Block hash of the given length (GPC v2.3.1 §C.2).

    Raises:
        LoadFileError: no hash algorithm has that length.
    """
    alg = HASH_ALGORITHMS.get(length)
    if alg is None:
        raise LoadFileError(f"no hash algorithm gives {length} bytes")
    return hashlib.new(alg, lfdb).digest()


# -- Card side: is the descriptor backed by catalogued code? ---------------------------


def verify_descriptor(desc: LoadFileDescriptor, catalogue: Catalogue) -> None:
    """Check a descriptor against the card's catalogue and the installed code.

    The catalogue is consulted before anything is imported or read, so a
    descriptor can only ever make the card look at packages that hold
    catalogued classes.

    Raises:
        LoadFileError: 6A80 when a class is not catalogued, not in the package,
            filed under another entry-point name, or the code hash differs.
    """
    names = catalogue.names()
    for m in desc.modules:
        if m.class_ref not in catalogue:
            raise LoadFileError(f"applet class {m.class_ref} is not in the catalogue")
        if not _in_package(m.module_name, desc.package):
            raise LoadFileError(f"{m.class_ref} is not in package {desc.package}")
        if m.entry_point and names.get(m.entry_point) != m.class_ref:
            raise LoadFileError(f"entry point {m.entry_point} does not name {m.class_ref}")
    try:
        actual = code_hash(desc.package)
    except ValueError as e:
        raise LoadFileError(str(e)) from None
    if actual != desc.code_hash:
        raise LoadFileError(f"code hash of {desc.package} does not match the installed code")
