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

Decoding is strict and bounded: the whole input must be one value (trailing
bytes are an error); untrusted bytes go through `der_bounds.check_der` (size,
depth, TLV count, definite lengths inside their parents) before asn1tools sees
them, the compiled types get loops that cannot spin (`der_bounds.harden`: the
fix for asn1tools' SEQUENCE OF loop, its issue #180), and each decode runs
under a time and step budget. Every decoding failure is an `Asn1DecodeError`
(an `Asn1Error`); encoding failures are plain `Asn1Error`s.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
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
    "rsp",
    "saip",
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


def _compile(names: tuple[str, ...]) -> Any:
    base = resources.files("card.sgp22") / "asn1"
    texts = {name: (base / name).read_text(encoding="utf-8") for name in names}
    # Compiling (once per process) is no message's work: it is not charged to the
    # decode budget of the message whose decoding needed it first.
    with unbudgeted(), _COMPILE_LOCK:
        spec = asn1tools.compile_string("\n".join(texts[n] for n in names), codec="der")
        _fix_oid_decoding(spec)
        harden(spec)
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
    return _encode(rsp(), type_name, value)


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
    return _decode(rsp(), type_name, data, constraints, limits)


def encode_pe(value: Any, type_name: str = "ProfileElement") -> bytes:
    """DER of one profile element (TCA eUICC Profile Package §8), default type ProfileElement."""
    return _encode(saip(), type_name, value)


def decode_pe(
    data: bytes, type_name: str = "ProfileElement", *, limits: DecodeLimits = DEFAULT_LIMITS
) -> Any:
    """Decode one profile element that is the whole of `data`.

    Raises:
        Asn1DecodeError: as `decode`.
    """
    return _decode(saip(), type_name, data, True, limits)


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
    spec = saip()
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
