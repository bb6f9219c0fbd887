"""The ASN.1 modules of remote SIM provisioning, compiled once per process: DER codecs.

- `rsp()`: GSMA SGP.22 v2.x Annex H, module RSPDefinitions (every ES8+/ES9+/ES10
  structure), with the RFC 5280 PKIX modules it imports (Certificate, ...).
- `saip()`: the TCA (SIMalliance) eUICC Profile Package Interoperable Format
  v3.3.1, module PEDefinitions (the ProfileElement CHOICE of a profile package).

The module texts are the specifications' own (card/sgp22/asn1/*.asn, each with
a header naming where the copy came from). Compiling them with asn1tools took
about 0.8 s each (measured here, Python 3.11), nine tenths of it parsing the
text; so the first ES10 call of a process waited 0.6 s. Two things make it
cheap now, neither changing what a type encodes or decodes:

- the parse is read from `asn1/<module>.parsed.json` beside the texts: the
  asn1tools parse of the very same text, written by `write_parsed()` and used
  only while the SHA-256 of the texts and asn1tools' version match the ones
  it records (else the text is parsed as before). A test parses the texts
  again and compares. JSON, never pickle: the file is data, not code;
- `encode`/`decode` compile a type on first use with the types it refers to
  (its closure in the parse), not the whole module (~100 types of 250 for
  one ES10 message instead of all); once the types compiled that way add up
  to the module's size, the whole module is compiled once and serves every
  type. `rsp()` / `saip()` compile the whole module at once (servers call
  them at start-up).

Every compiled object is a derived constant of the specification, never card
state: it holds no per-card data and is read-only once built.

Decoding is strict and bounded: the whole input must be one value (trailing
bytes are an error); untrusted bytes go through `der_bounds.check_der` (size,
depth, TLV count, definite lengths inside their parents) before asn1tools sees
them, the compiled types get loops that cannot spin (`der_bounds.harden`: the
fix for asn1tools' SEQUENCE OF loop, its issue #180), and each decode runs
under a time and step budget. Every decoding failure is an `Asn1DecodeError`
(an `Asn1Error`); encoding failures are plain `Asn1Error`s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import asn1tools
from asn1tools.codecs import ber

from card.sgp22.der_bounds import (
    DEFAULT_LIMITS,
    Asn1DecodeError,
    Asn1Error,
    DecodeLimits,
    check_der,
    decode_budget,
    harden,
    unbudgeted,
    walk_types,
)

__all__ = [
    "Asn1DecodeError",
    "Asn1Error",
    "DecodeLimits",
    "DEFAULT_LIMITS",
    "decode_budget",
    "decode",
    "decode_pe",
    "decode_pe_sequence",
    "encode",
    "encode_pe",
    "named_bits",
    "named_numbers",
    "rsp",
    "rsp_type",
    "saip",
    "write_parsed",
]

_RSP_FILES = ("rsp.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
_SAIP_FILES = ("PE_Definitions-3.3.1.asn",)
# Two threads asking at once must not compile twice (0.8 s each on a shared CPU).
_COMPILE_LOCK = threading.Lock()


def _oid_first_arcs(value: str) -> str:
    """Undo asn1tools' split of the first subidentifier (X.690 §8.19.4).

    asn1tools decodes the first subidentifier s as (s // 40, s % 40), which is
    wrong from s = 80 on (first arc 2, e.g. the 2.999 example arc of X.660):
    2.999.10 comes back as 26.39.10. Its encoder is right.
    """
    first, second, *rest = value.split(".")
    s = int(first) * 40 + int(second)
    if s >= 80:
        first, second = "2", str(s - 80)
    return ".".join([first, second, *rest])


def _fix_oid_decoding(spec: Any) -> None:
    """Give each OBJECT IDENTIFIER type of this compiled module a correct decoder.

    Only the instances inside `spec` change; asn1tools itself is left alone.
    """
    for t in walk_types(spec):
        if isinstance(t, ber.ObjectIdentifier):
            plain = t.decode_content

            def decode_content(data: Any, offset: int, length: int, _plain: Any = plain) -> Any:
                value, end = _plain(data, offset, length)
                return _oid_first_arcs(value), end

            t.decode_content = decode_content


#: A tuple in a parse, as JSON writes it (no dict of an asn1tools parse has this key).
_TUPLE = "(tuple)"


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return {_TUPLE: [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        if _TUPLE in value or not all(isinstance(k, str) for k in value):
            raise ValueError("a parse this encoding cannot carry")
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: dict[str, Any]) -> Any:
    if len(value) == 1 and _TUPLE in value:
        return tuple(value[_TUPLE])
    return value


class _Module:
    """One ASN.1 module set: its parse, its types compiled on first use, or all of it.

    Args:
        name: the parse file's stem (`asn1/<name>.parsed.json`).
        files: the module texts, in the order they are compiled together.
    """

    def __init__(self, name: str, files: tuple[str, ...]) -> None:
        self.name = name
        self.files = files
        self._parsed: dict[str, Any] | None = None
        self._json = ""
        self._full: Any = None
        self._specs: dict[str, Any] = {}
        self._compiled_types = 0

    def text(self) -> str:
        base = resources.files("card.sgp22") / "asn1"
        return "\n".join((base / n).read_text(encoding="utf-8") for n in self.files)

    def _stamp(self, text: str) -> dict[str, str]:
        return {
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "asn1tools": asn1tools.__version__,
        }

    def parse(self) -> dict[str, Any]:
        """The asn1tools parse of the texts: from the parse file when it matches them.

        Read only: asn1tools' compiler changes the parse it is given, so each
        compilation gets a copy of its own (`_fresh`).
        """
        if self._parsed is None:
            text = self.text()
            stamp = self._stamp(text)
            path = resources.files("card.sgp22") / "asn1" / f"{self.name}.parsed.json"
            parsed = None
            with contextlib.suppress(
                OSError, ValueError, KeyError, AttributeError, TypeError, RecursionError
            ):  # a file of another shape (null, a list, nested too deep): parse the text
                raw = path.read_text(encoding="utf-8")
                doc = json.loads(raw, object_hook=_from_json)
                if doc["stamp"] == stamp:
                    parsed, self._json = doc["modules"], raw
            if parsed is None:
                parsed = asn1tools.parse_string(text)
                self._json = json.dumps({"modules": _to_json(parsed)})
            self._parsed = parsed
        return self._parsed

    def _fresh(self) -> dict[str, Any]:
        """A new copy of the parse, for asn1tools to compile (and change)."""
        self.parse()
        return dict(json.loads(self._json, object_hook=_from_json)["modules"])

    def write_parsed(self, directory: str | os.PathLike[str]) -> Path:
        """Write the parse file of the texts as they are now (after editing a module)."""
        text = self.text()
        doc = {"stamp": self._stamp(text), "modules": _to_json(asn1tools.parse_string(text))}
        path = Path(directory) / f"{self.name}.parsed.json"
        path.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n")
        return path

    def _types(self) -> dict[str, set[str]]:
        """Type name -> the modules defining it."""
        out: dict[str, set[str]] = {}
        for module, body in self.parse().items():
            for t in body.get("types", {}):
                out.setdefault(t, set()).add(module)
        return out

    def _closure(self, type_name: str) -> dict[str, Any]:
        """The parse cut down to `type_name` and every type it may refer to.

        Any string inside a type's descriptor that names a type counts as a
        reference (more than needed at worst, never less); values, classes and
        object sets stay whole (few, and constraints look them up).
        """
        parsed = self.parse()
        defined = self._types()  # read only: the copy to compile is made below
        if type_name not in defined:
            raise KeyError(type_name)
        keep: set[str] = set()
        todo = [type_name]
        while todo:
            name = todo.pop()
            if name in keep:
                continue
            keep.add(name)
            stack: list[Any] = [parsed[m]["types"][name] for m in defined[name]]
            while stack:
                v = stack.pop()
                if isinstance(v, str):
                    if v in defined and v not in keep:
                        todo.append(v)
                elif isinstance(v, dict):
                    stack.extend(v.values())
                elif isinstance(v, list | tuple):
                    stack.extend(v)
        out = self._fresh()
        for body in out.values():
            body["types"] = {t: d for t, d in body.get("types", {}).items() if t in keep}
        return out

    @staticmethod
    def _compiled(parsed: dict[str, Any]) -> Any:
        # Compiling is no message's work: it is not charged to the decode budget of
        # the message whose decoding needed it first.
        with unbudgeted():
            spec = asn1tools.compile_dict(parsed, codec="der")
            _fix_oid_decoding(spec)
            harden(spec)
        return spec

    def full(self) -> Any:
        """Every type of the module, compiled once."""
        with _COMPILE_LOCK:
            if self._full is None:
                self._full = self._compiled(self._fresh())
                self._specs.clear()
            return self._full

    def spec(self, type_name: str) -> Any:
        """A compiled module holding `type_name` (raises KeyError: no such type)."""
        spec = self._full if self._full is not None else self._specs.get(type_name)
        if spec is not None:
            return spec
        with _COMPILE_LOCK:
            if self._full is not None:
                return self._full
            spec = self._specs.get(type_name)
            if spec is None:
                part = self._closure(type_name)
                size = sum(len(b["types"]) for b in part.values())
                total = sum(len(b.get("types", {})) for b in self.parse().values())
                if self._compiled_types + size >= total:
                    self._full = self._compiled(self._fresh())
                    self._specs.clear()
                    return self._full
                spec = self._specs[type_name] = self._compiled(part)
                self._compiled_types += size
            return spec


_MODULES = {"rsp": _Module("rsp", _RSP_FILES), "saip": _Module("saip", _SAIP_FILES)}


@cache
def rsp() -> Any:
    """The compiled SGP.22 RSPDefinitions module, every type (asn1tools, DER codec)."""
    return _MODULES["rsp"].full()


@cache
def saip() -> Any:
    """The compiled TCA eUICC Profile Package PEDefinitions module (asn1tools, DER codec)."""
    return _MODULES["saip"].full()


def rsp_type(type_name: str) -> Any:
    """A compiled module holding this RSPDefinitions (or PKIX) type, compiled on first use.

    For asn1tools' own calls on one type (`.encode(type_name, ...)` without the
    constraints `encode` checks).

    Raises:
        Asn1Error: no such type.
    """
    try:
        spec = _MODULES["rsp"].spec(type_name)
    except KeyError:
        spec = None
    if spec is None or type_name not in spec.types:
        raise Asn1Error(f"no ASN.1 type {type_name}")
    return spec


def _spec(module: str, type_name: str) -> Any:
    try:
        return _MODULES[module].spec(type_name)
    except KeyError:
        # Unknown to the module: asn1tools' own error, from the whole module.
        return _MODULES[module].full()


def named_numbers(type_name: str, *path: str, module: str = "rsp") -> dict[str, int]:
    """The named numbers of an INTEGER type of the module text (name -> value).

    `path` walks into a constructed type's members, for the INTEGERs declared in
    place: `named_numbers("EnableProfileResponse", "enableResult")`, or a CHOICE
    alternative `named_numbers("RetrieveNotificationsListResponse",
    "notificationsListResultError")`. Read from the parse of the specification's
    text, so a constant of ours can be checked against the number the text gives.

    Raises:
        KeyError: no such type or member, or it has no named numbers.
    """
    return dict(_declared(module, type_name, path, "named-numbers"))


def named_bits(type_name: str, *path: str, module: str = "rsp") -> dict[str, int]:
    """The named bits of a BIT STRING type of the module text (name -> bit position).

    Raises:
        KeyError: no such type or member, or it has no named bits.
    """
    return {name: int(bit) for name, bit in _declared(module, type_name, path, "named-bits")}


def _declared(module: str, type_name: str, path: tuple[str, ...], key: str) -> Any:
    types = {t: d for body in _MODULES[module].parse().values() for t, d in body["types"].items()}
    node = types[type_name]
    for name in path:
        members = [m for m in node.get("members", ()) if m is not None and m.get("name") == name]
        if not members:
            raise KeyError(f"{type_name}: no member {name}")
        node = members[0]
    while key not in node and node.get("type") in types:
        node = types[node["type"]]  # a member whose type is a named type
    return node[key]


def write_parsed(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """(Re)write the parse files beside the module texts (or in `directory`)."""
    where = directory or Path(str(resources.files("card.sgp22") / "asn1"))
    return [m.write_parsed(where) for m in _MODULES.values()]


def _encode(spec: Any, type_name: str, value: Any) -> bytes:
    try:
        return bytes(spec.encode(type_name, value, check_constraints=True))
    except (asn1tools.Error, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        # IndexError: asn1tools' DER BIT STRING encoder on a decoded value of no bytes.
        raise Asn1Error(f"cannot encode {type_name}: {e}") from None


def _decode_value(
    spec: Any, type_name: str, data: bytes, constraints: bool, limits: DecodeLimits
) -> tuple[Any, int]:
    """asn1tools' decode of one value at the start of `data`, under a per-decode budget."""
    try:
        with decode_budget(limits.seconds, limits.steps):
            return spec.decode_with_length(type_name, data, check_constraints=constraints)
    except Asn1DecodeError as e:
        raise Asn1DecodeError(f"cannot decode {type_name}: {e}") from None
    except (asn1tools.Error, KeyError, TypeError, ValueError, IndexError, RecursionError) as e:
        raise Asn1DecodeError(f"cannot decode {type_name}: {e}") from None


def _decode(spec: Any, type_name: str, data: bytes, constraints: bool, limits: DecodeLimits) -> Any:
    data = bytes(data)
    try:
        check_der(data, limits)
    except Asn1DecodeError as e:
        raise Asn1DecodeError(f"cannot decode {type_name}: {e}") from None
    value, length = _decode_value(spec, type_name, data, constraints, limits)
    if length != len(data):
        raise Asn1DecodeError(f"{type_name}: {len(data) - length} bytes after the value")
    return value


def encode(type_name: str, value: Any) -> bytes:
    """DER of an SGP.22 RSPDefinitions value (asn1tools' Python form: dicts, tuples for CHOICEs).

    Raises:
        Asn1Error: the value does not fit the type (constraints are checked).
    """
    return _encode(_spec("rsp", type_name), type_name, value)


def decode(
    type_name: str,
    data: bytes,
    *,
    constraints: bool = True,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Any:
    """Decode one SGP.22 RSPDefinitions value that is the whole of `data`.

    Args:
        type_name: the RSPDefinitions (or PKIX) type.
        data: untrusted DER.
        constraints: check the module's constraints (SIZE, value ranges). Off for
            objects whose copy of the module disagrees with SGP.22 v2.x (DeviceInfo.tac).
        limits: the bounds of this decode (`DecodeLimits`).

    Raises:
        Asn1DecodeError: not a valid encoding of the type, bytes left over, or
            the input is over a limit or takes more than its budget.
    """
    return _decode(_spec("rsp", type_name), type_name, data, constraints, limits)


def encode_pe(value: Any, type_name: str = "ProfileElement") -> bytes:
    """DER of one profile element (TCA eUICC Profile Package §8), default type ProfileElement."""
    return _encode(_spec("saip", type_name), type_name, value)


def decode_pe(
    data: bytes, type_name: str = "ProfileElement", *, limits: DecodeLimits = DEFAULT_LIMITS
) -> Any:
    """Decode one profile element that is the whole of `data`.

    Raises:
        Asn1DecodeError: as `decode`.
    """
    return _decode(_spec("saip", type_name), type_name, data, True, limits)


def decode_pe_sequence(
    data: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> list[tuple[str, Any]]:
    """Split a profile package (profile elements back to back) into decoded elements.

    The package is checked as a whole (`limits` apply to all of it, the time
    budget included); each element is then decoded from its own slice.

    Returns:
        (element name, value) per element, in order; the name is the CHOICE
        alternative of ProfileElement ("header", "mf", "usim", "pinCodes", ...).

    Raises:
        Asn1DecodeError: the package is malformed or over a limit, or an
            element does not decode.
    """
    spec = _spec("saip", "ProfileElement")
    data = bytes(data)
    out: list[tuple[str, Any]] = []
    try:
        elements = check_der(data, limits)
    except Asn1DecodeError as e:
        raise Asn1DecodeError(f"profile package: {e}") from None
    with decode_budget(limits.seconds, limits.steps):
        for start, end in elements:
            try:
                element = data[start:end]
                value, length = _decode_value(spec, "ProfileElement", element, False, limits)
            except Asn1DecodeError as e:
                raise Asn1DecodeError(f"profile element at offset {start}: {e}") from None
            if length != end - start:
                raise Asn1DecodeError(f"profile element at offset {start}: bytes left inside")
            out.append(value)
    return out


if __name__ == "__main__":
    for written in write_parsed():
        print(written)
