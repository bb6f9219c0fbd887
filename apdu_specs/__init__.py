"""Declarative APDU specs: decode, build and generate commands and responses.

One module per standard or applet, each a tuple `SPECS` of `CommandSpec`s with
their own test vectors; every module of this package that defines `SPECS` is
registered (`iso7816_4`: the interindustry commands; `cardemu_samples`: the
sample applets). The framework is the package `framework`, a module per concern
(patterns, fields, vectors, decoded, spec, response, registry, session); BER-TLV
and other shared constructs in `constructs`; value generation in `generate`; hypothesis
strategies (a test extra) in `strategies`.

Decoding (the trace decoder and `cardemu decode` build on these)::

    from apdu_specs import decode_command, decode_response, DecodeSession

    d = decode_command(bytes.fromhex("00A4040C07A0000000871002"))
    d.name        # "SELECT"
    d.summary     # "SELECT by DF name A0000000871002, no response data"
    d.params      # {"session": Named(0, "activate"), "response": Named(3, ...), ...}
    d.data        # b"\\xa0\\x00..." (parsed value: bytes, dict, or BER-TLV entries)
    d.issues      # [] -- RFU bits, bad Lc/Le, unparsable data, unexpected SW...
    d.to_json()   # {"kind", "name", "spec", "summary", "raw", "fields", "issues", ...}

    r = decode_response(d.spec, bytes.fromhex("9000"), d)   # spec may be None
    r.summary     # "9000 (Normal processing: no further qualification)"

    s = DecodeSession()            # a whole trace: follows SELECT / MANAGE CHANNEL per
    cmd, resp = s.exchange(c, r)   # channel (applet specs win for the selected applet)
    resp.assembled                 # after GET RESPONSE: the whole response, decoded

`decode_command(raw, context=aid)` takes the AID selected on the command's
channel when the caller knows it; `match(raw, context=aid)` lists the specs
that apply, best first. Neither raises on odd bytes: problems are `issues`.
Bytes stay bytes in `Decoded.fields`; `to_json()` is where they become hex.
Decoding a typical command takes under 20 µs.

Building and generating (the fuzzer builds on these)::

    spec = match(raw)[0]
    spec.build({"offset": 0x10}, ne=256)   # fields by name -> command bytes
    spec.examples(rng, n)                  # valid commands, boundary-biased
    spec.generate(draw)                    # the same from any `generate.Draw`
    spec.strategy()                        # hypothesis strategy (imports hypothesis)
    spec.fields / spec.nc_range / spec.le / spec.ne / spec.cla_values()  # the rules

Writing a spec module: see `framework.spec.CommandSpec` and `iso7816_4` for examples; an
applet's module names its AIDs with an `AppletContext` and sets `context=` on
its specs. `tests/unit/test_apdu_specs.py` walks every registered spec's
vectors and round-trips generated commands, so a new module is tested as soon
as it defines `SPECS`.
"""

from __future__ import annotations

from apdu_specs.framework.decoded import Decoded, count_bytes
from apdu_specs.framework.fields import Field, Le, p1, p1p2, p2
from apdu_specs.framework.patterns import SwPattern, sws
from apdu_specs.framework.registry import (
    Registry,
    all_specs,
    decode_command,
    default_registry,
    match,
    spec_modules,
)
from apdu_specs.framework.response import decode_response
from apdu_specs.framework.session import DecodeSession
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

__all__ = [
    "AppletContext",
    "CommandSpec",
    "DecodeSession",
    "Decoded",
    "Field",
    "Le",
    "Registry",
    "Vector",
    "all_specs",
    "decode_command",
    "decode_response",
    "default_registry",
    "match",
    "p1",
    "p1p2",
    "p2",
    "spec_modules",
    "sws",
    "SwPattern",
    "count_bytes",
]
