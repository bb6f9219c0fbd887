"""The ASN.1 modules of remote SIM provisioning, compiled once per process: DER codecs.

- `rsp()`: GSMA SGP.22 v2.x Annex H, module RSPDefinitions (every ES8+/ES9+/ES10
  structure), with the RFC 5280 PKIX modules it imports (Certificate, ...).
- `saip()`: the TCA (SIMalliance) eUICC Profile Package Interoperable Format
  v3.3.1, module PEDefinitions (the ProfileElement CHOICE of a profile package).

The module texts are the specifications' own (card/sgp22/asn1/*.asn, each with
a header naming where the copy came from). Compiling them with asn1tools takes
about 0.8 s each (measured here, Python 3.11), so each is compiled lazily on
first use and the compiled object is kept for the rest of the process. That
cache is a derived constant of the specification, never card state: it holds
no per-card data and is read-only once built.

Decoding is strict: the whole input must be one value (trailing bytes are an
error), and every failure is an `Asn1Error`.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from typing import Any

import asn1tools  # type: ignore[import-untyped]
from asn1tools.codecs import ber  # type: ignore[import-untyped]

__all__ = [
    "Asn1Error",
    "decode",
    "decode_pe",
    "decode_pe_sequence",
    "encode",
    "encode_pe",
    "rsp",
    "saip",
]

_RSP_FILES = ("rsp.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
_SAIP_FILES = ("PE_Definitions-3.3.1.asn",)
# Two threads asking at once must not compile twice (0.8 s each on a shared CPU).
_COMPILE_LOCK = threading.Lock()


class Asn1Error(ValueError):
    """A value that does not encode, or bytes that do not decode, under the module."""


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
    seen: set[int] = set()
    stack: list[Any] = [t.type for t in spec.types.values()]
    while stack:
        t = stack.pop()
        if id(t) in seen or not isinstance(t, ber.Type):
            continue
        seen.add(id(t))
        if isinstance(t, ber.ObjectIdentifier):
            plain = t.decode_content

            def decode_content(data: Any, offset: int, length: int, _plain: Any = plain) -> Any:
                value, end = _plain(data, offset, length)
                return _oid_first_arcs(value), end

            t.decode_content = decode_content
            continue
        for v in vars(t).values():
            if isinstance(v, ber.Type):
                stack.append(v)
            elif isinstance(v, (list, tuple)):
                stack.extend(x for x in v if isinstance(x, ber.Type))
            elif isinstance(v, dict):
                stack.extend(x for x in v.values() if isinstance(x, ber.Type))


def _compile(names: tuple[str, ...]) -> Any:
    base = resources.files("card.sgp22") / "asn1"
    texts = {name: (base / name).read_text(encoding="utf-8") for name in names}
    with _COMPILE_LOCK:
        spec = asn1tools.compile_string("\n".join(texts[n] for n in names), codec="der")
        _fix_oid_decoding(spec)
        return spec


@cache
def rsp() -> Any:
    """The compiled SGP.22 RSPDefinitions module (asn1tools, DER codec)."""
    return _compile(_RSP_FILES)


@cache
def saip() -> Any:
    """The compiled TCA eUICC Profile Package PEDefinitions module (asn1tools, DER codec)."""
    return _compile(_SAIP_FILES)


def _encode(spec: Any, type_name: str, value: Any) -> bytes:
    try:
        return bytes(spec.encode(type_name, value, check_constraints=True))
    except (asn1tools.Error, KeyError, TypeError, ValueError, AttributeError) as e:
        raise Asn1Error(f"cannot encode {type_name}: {e}") from None


def _decode(spec: Any, type_name: str, data: bytes) -> Any:
    try:
        value, length = spec.decode_with_length(type_name, bytes(data), check_constraints=True)
    except (asn1tools.Error, KeyError, TypeError, ValueError, IndexError) as e:
        raise Asn1Error(f"cannot decode {type_name}: {e}") from None
    if length != len(data):
        raise Asn1Error(f"{type_name}: {len(data) - length} bytes after the value")
    return value


def encode(type_name: str, value: Any) -> bytes:
    """DER of an SGP.22 RSPDefinitions value (asn1tools' Python form: dicts, tuples for CHOICEs).

    Raises:
        Asn1Error: the value does not fit the type (constraints are checked).
    """
    return _encode(rsp(), type_name, value)


def decode(type_name: str, data: bytes) -> Any:
    """Decode one SGP.22 RSPDefinitions value that is the whole of `data`.

    Raises:
        Asn1Error: not a valid encoding of the type, or bytes left over.
    """
    return _decode(rsp(), type_name, data)


def encode_pe(value: Any, type_name: str = "ProfileElement") -> bytes:
    """DER of one profile element (TCA eUICC Profile Package §8), default type ProfileElement."""
    return _encode(saip(), type_name, value)


def decode_pe(data: bytes, type_name: str = "ProfileElement") -> Any:
    """Decode one profile element that is the whole of `data`."""
    return _decode(saip(), type_name, data)


def decode_pe_sequence(data: bytes) -> list[tuple[str, Any]]:
    """Split a profile package (profile elements back to back) into decoded elements.

    Returns:
        (element name, value) per element, in order; the name is the CHOICE
        alternative of ProfileElement ("header", "mf", "usim", "pinCodes", ...).

    Raises:
        Asn1Error: an element that does not decode.
    """
    spec = saip()
    out: list[tuple[str, Any]] = []
    pos = 0
    data = bytes(data)
    while pos < len(data):
        try:
            value, length = spec.decode_with_length("ProfileElement", data[pos:])
        except (asn1tools.Error, KeyError, TypeError, ValueError, IndexError) as e:
            raise Asn1Error(f"profile element at offset {pos}: {e}") from None
        if length <= 0:
            raise Asn1Error(f"profile element at offset {pos}: empty")
        out.append(value)
        pos += length
    return out
