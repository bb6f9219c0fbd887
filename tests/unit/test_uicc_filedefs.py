"""The one walk over every UICC file definition (card.uicc.filedef.registry()).

Each codec module (TS 102 221, TS 31.102, TS 31.103, TS 51.011) declares its EFs
with their vectors; this test holds no vector of its own. For every definition:
every vector encodes to its bytes and decodes back, there is at least one vector,
names and FIDs are unique within a DF, declared malformed inputs raise the
module's error, arbitrary bytes never raise anything else, and values drawn from
the declared strategy survive encode then decode.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from card.uicc.builder import TEST_IMSI, IsimSetup, SuciSetup, sample_profile
from card.uicc.filedef import CODEC_MODULES, FileDef, registry
from card.uicc.profile import Profile
from card.uicc.saip import profile_from_package
from card.uicc.ts_31_102 import SuciCalcInfo
from card.uicc.ts_31_103 import ISIM_AID_PREFIX
from card.uicc.ts_102_221 import USIM_AID_PREFIX

DEFS = registry()
ids = [str(d) for d in DEFS]
WITH_DECODE = [d for d in DEFS if d.decode is not None]
WITH_STRATEGY = [d for d in DEFS if d.strategy is not None]


def test_registry_covers_every_module() -> None:
    modules = {d.encode.__module__ for d in DEFS}
    assert {m for m in CODEC_MODULES} <= modules
    assert len(DEFS) >= 40


@pytest.mark.parametrize("d", DEFS, ids=ids)
def test_vectors(d: FileDef) -> None:
    assert d.vectors, f"{d} has no vector"
    for v in d.vectors:
        assert d.encode(v.decoded).hex() == v.encoded.hex(), f"{d}: {v.source}"
        if d.decode is not None:
            assert d.decode(v.encoded) == v.decoded, f"{d}: {v.source}"
        if d.size is not None:
            assert len(v.encoded) == d.size, f"{d}: {v.source}"
        assert v.source


def test_names_and_fids_unique_per_df() -> None:
    by_name = Counter((d.df, d.name) for d in DEFS)
    by_fid = Counter((d.df, d.fid) for d in DEFS)
    assert [k for k, n in by_name.items() if n > 1] == []
    assert [f"{df}/{fid:04X}" for (df, fid), n in by_fid.items() if n > 1] == []
    for d in DEFS:
        assert d.name.startswith("EF.") and 0 <= d.fid <= 0xFFFF, d
        assert d.clause.startswith(("TS ", "TCA ")), d


@pytest.mark.parametrize("d", [d for d in WITH_DECODE if d.malformed], ids=str)
def test_malformed_inputs_raise_the_module_error(d: FileDef) -> None:
    assert d.decode is not None
    for bad in d.malformed:
        with pytest.raises(d.error):
            d.decode(bad)


@pytest.mark.parametrize("d", WITH_DECODE, ids=str)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_bytes_decode_or_raise_the_module_error(d: FileDef, data: st.DataObject) -> None:
    """Untrusted bytes: a value, or the module's error, and never another exception.

    A decoder that can refuse bytes must say so with at least one malformed input.
    """
    assert d.decode is not None
    n = d.size if d.size is not None else data.draw(st.integers(0, 80))
    raw = data.draw(
        st.one_of(
            st.binary(min_size=n, max_size=n),
            # Mostly FF with a few bytes set: the shape of a partly written file.
            st.lists(
                st.sampled_from([0xFF, 0xFF, 0x00, 0x80, 0x81, 0x0A, 0xA0]), min_size=n, max_size=n
            ).map(bytes),
        )
    )
    try:
        d.decode(raw)
    except d.error:
        assert d.malformed, f"{d} can refuse bytes but declares no malformed input"


@pytest.mark.parametrize("d", WITH_STRATEGY, ids=str)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(d: FileDef, data: st.DataObject) -> None:
    assert d.strategy is not None
    value = data.draw(d.strategy())
    encoded = d.encode(value)
    if d.size is not None:
        assert len(encoded) == d.size
    if d.decode is not None:
        assert d.decode(encoded) == value


# -- The definitions against the files real profiles carry ----------------------------------

_DATA = Path(__file__).parent / "data" / "sgp22"
_SUB_DFS = {
    ("MF", 0x7F10): "DF.TELECOM",
    ("MF", 0x7F20): "DF.GSM",
    ("ADF.USIM", 0x5F3B): "DF.GSM-ACCESS",
    ("ADF.USIM", 0x5FC0): "DF.5GS",
    ("ADF.USIM", 0x5FD0): "DF.SAIP",
}


def _df_name(p: Profile, handle: str) -> str:
    """The DF name the definitions use for a file tree handle ("MF", "ADF.USIM", ...)."""
    f = p.file(handle)
    assert f is not None
    if f.parent is None:
        return "MF"
    if f.name is not None:
        if f.name.startswith(USIM_AID_PREFIX):
            return "ADF.USIM"
        return "ADF.ISIM" if f.name.startswith(ISIM_AID_PREFIX) else f"ADF.{f.name.hex()}"
    parent = _df_name(p, f.parent)
    return _SUB_DFS.get((parent, f.fid or 0), f"{parent}/{f.fid or 0:04X}")


def _decodable(p: Profile) -> list[tuple[FileDef, bytes]]:
    defs = {(d.df, d.fid): d for d in DEFS if d.decode is not None}
    out = []
    for f in p.files:
        if f.is_df or f.parent is None or f.content is None or f.fid is None:
            continue
        d = defs.get((_df_name(p, f.parent), f.fid))
        if d is not None:
            items = f.content if isinstance(f.content, tuple) else (f.content,)
            out.extend((d, c) for c in items)
    return out


def test_the_builders_files_all_decode() -> None:
    """Every file the builder writes (USIM with 5G SUCI files, ISIM) that has a definition
    decodes, and the definitions cover the files of all four documents."""
    info = SuciCalcInfo(((0, 0),))
    p = sample_profile(isim=IsimSetup.for_imsi(TEST_IMSI), suci=SuciSetup(info))
    found = _decodable(p)
    for d, raw in found:
        assert d.decode is not None
        d.decode(raw)  # raises on a file the builder got wrong
    dfs = {d.df for d, _ in found}
    assert {"MF", "DF.TELECOM", "DF.GSM", "ADF.USIM", "DF.GSM-ACCESS", "DF.5GS"} <= dfs
    assert {"DF.SAIP", "ADF.ISIM"} <= dfs
    assert len({(d.df, d.fid) for d, _ in found}) >= 40


def test_an_imported_ts48_profile_decodes_or_raises_the_module_error() -> None:
    """The GSMA TS.48 test profile's files are bytes from outside: each decodes or raises
    the module's error (its unpersonalised EF.SUCI_Calc_Info is all FF, which is refused)."""
    p = profile_from_package((_DATA / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der").read_bytes()).profile
    found = _decodable(p)
    assert len(found) > 50
    refused = []
    for d, raw in found:
        assert d.decode is not None
        try:
            d.decode(raw)
        except d.error:
            refused.append((str(d), raw.strip(b"\xff")))
    assert refused == [
        ("DF.5GS/EF.SUCI_Calc_Info (4F07)", b""),
        ("DF.SAIP/EF.SUCI_Calc_Info_USIM (4F01)", b""),
    ]
