"""Profiles installed whole, or refused, never half.

Every GSMA TS.48 test profile either installs with each of its elements on the
card (the file tree, the MNO-SD with its keys, the RFM instances, the CDMA
parameters), checked here against the package by an oracle that walks the
profile elements on its own, or is refused with a PEStatus and leaves nothing
behind. Where the packages are:

- `tests/unit/data/sgp22/TS48V2-SAIP2-1-BERTLV-UNIQUE.der` (always; see the README
  beside it for its source);
- all 36 of osmocom pySim's `smdpp-data/upp/*.der` when a pySim checkout is at
  $CARDEMU_PYSIM_DIR or /work/pysim (they are skipped, with that reason, when it is not).

`pytest tests/unit/test_saip_whole.py -k memory -s` prints the card memory each
installed profile costs next to its package size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from applets.isdr.rsp import FORBIDDEN_PPRS
from applets.usim import UICC_AID, UiccApplet
from applets.usim.sd import ProfileSecurityDomain
from card.framework.catalogue import class_ref
from card.gp.loadfile import default_module_aid, default_package_aid
from card.gp.scp03 import Scp03Keys
from card.profiles import ProfileStoreError, ProfileStoreReason
from card.runtime import CardRuntime
from card.sgp22 import asn1
from card.sgp22.values import bits_to_set
from card.uicc.profile import FileSpec, Profile
from card.uicc.saip import CAPABILITY_BITS, PeStatus, profile_from_package
from card.uicc.saip_templates import PE_DFS, SUB_DF_FIDS, TEMPLATES
from host.errors import ApduError
from host.gp.client import GpClient
from host.readers.inprocess import InProcessReader
from tests.unit.sgp22_helpers import Lpa, TestSmdp, download, euicc_card
from tests.unit.usim_cards import send

DATA = Path(__file__).parent / "data" / "sgp22"
PYSIM_UPP = Path(os.environ.get("CARDEMU_PYSIM_DIR", "/work/pysim")) / "smdpp-data" / "upp"
MNO_SD = bytes.fromhex("A000000151000000")
TS48 = (DATA / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der").read_bytes()


def _packages() -> list[Any]:
    out = [pytest.param(DATA / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der", id="repo-TS48V2-BERTLV")]
    found = sorted(PYSIM_UPP.glob("*.der")) if PYSIM_UPP.is_dir() else []
    if not found:
        out.append(
            pytest.param(
                None,
                id="pysim-upp",
                marks=pytest.mark.skip(
                    reason=f"no pySim checkout with TS.48 profiles at {PYSIM_UPP}"
                ),
            )
        )
    out += [pytest.param(p, id=p.stem) for p in found]
    return out


PACKAGES = _packages()


def _card() -> CardRuntime:
    rt = CardRuntime(rng_seed=3)
    rt.install(UiccApplet, UICC_AID, default=True)
    rt.power_on()
    return rt


def _store(rt: CardRuntime) -> UiccApplet:
    applet = rt.applet(UICC_AID)
    assert isinstance(applet, UiccApplet)
    return applet


def _pes(package: bytes) -> list[tuple[str, Any]]:
    # asn1tools decodes sqnInit's DEFAULT as a non-list: left out when a package is rebuilt.
    return [
        (n, {k: x for k, x in v.items() if k != "sqnInit"} if n == "akaParameter" else v)
        for n, v in asn1.decode_pe_sequence(package)
    ]


def _encode(pes: list[tuple[str, Any]]) -> bytes:
    return b"".join(asn1.encode_pe(pe) for pe in pes)


# -- the oracle: what a package asks for, read from its PEs alone ------------------------------


def _expected(pes: list[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """Handle -> {"size", "link", "bertlv", "fills"} of every file the package names."""
    adf_by_tmp: dict[int, str] = {}
    adf_by_kind: dict[str, str] = {}
    out: dict[str, dict[str, Any]] = {}

    def path(raw: bytes) -> str:
        h = "3F00"
        for i in range(0, len(raw), 2):
            fid = int.from_bytes(raw[i : i + 2], "big")
            if i == 0 and fid in adf_by_tmp:
                h = adf_by_tmp[fid]
            elif not (i == 0 and fid == 0x3F00):
                h = f"{h}/{fid:04X}"
        return h

    def record(handle: str, fcp: dict[str, Any], items: list[tuple[str, Any]]) -> None:
        fills, pos = [], 0
        for kind, v in items:
            if kind == "fillFileOffset":
                pos += v
            elif kind == "fillFileContent":
                fills.append((pos, bytes(v)))
                pos += len(v)
        fd = fcp.get("fileDescriptor", b"\x41")
        out[handle] = {
            "size": int.from_bytes(fcp["efFileSize"], "big") if "efFileSize" in fcp else None,
            "link": bytes(fcp["linkPath"]) if fcp.get("linkPath") else None,
            "bertlv": fd[0] & 0x3F == 0x39,
            "fills": fills,
        }

    for pe, value in pes:
        if pe in PE_DFS:
            df_field, df_fid, parent_kind = PE_DFS[pe]
            tpl = TEMPLATES.get(pe)
            fids = {t.field: t.fid for t in tpl.files} if tpl else {}
            base = None if df_field else adf_by_kind[parent_kind.split(".")[1]]
            current = base
            for key, items in value.items():
                if not isinstance(items, list) or key.endswith(("header", "Header")):
                    continue
                if any(x[0] == "doNotCreate" for x in items):
                    continue
                fcp = next((x[1] for x in items if x[0] == "fileDescriptor"), {})
                if key == df_field:
                    if key.startswith("adf-"):
                        base = f"ADF.{bytes(fcp['dfName']).hex().upper()}"
                        adf_by_tmp[int.from_bytes(fcp["fileID"], "big")] = base
                        adf_by_kind.setdefault(key[4:].upper(), base)
                    elif pe == "mf":
                        base = "3F00"
                    else:
                        parent = "3F00" if parent_kind == "MF" else adf_by_kind[parent_kind[4:]]
                        fid = int.from_bytes(fcp["fileID"], "big") if "fileID" in fcp else df_fid
                        base = f"{parent}/{fid:04X}"
                    current = base
                elif key.startswith("df-"):
                    fid = (
                        int.from_bytes(fcp["fileID"], "big")
                        if "fileID" in fcp
                        else SUB_DF_FIDS[key]
                    )
                    current = f"{base}/{fid:04X}"
                else:
                    fid = int.from_bytes(fcp["fileID"], "big") if "fileID" in fcp else fids.get(key)
                    if fid is not None:
                        record(f"{current}/{fid:04X}", fcp, items)
        elif pe == "genericFileManagement":
            for cmds in value["fileManagementCMD"]:
                current, last = "3F00", None
                items: list[tuple[str, Any]] = []
                for kind, v in cmds + [("filePath", None)]:
                    if kind in ("filePath", "createFCP") and last is not None:
                        record(last[0], last[1], items)
                        last, items = None, []
                    if kind == "filePath" and v is not None:
                        current = path(bytes(v))
                    elif kind == "createFCP":
                        h = f"{current}/{int.from_bytes(v['fileID'], 'big'):04X}"
                        fd = v.get("fileDescriptor", b"\x41")
                        if fd[0] & 0x38 == 0x38 and fd[0] & 0x3F != 0x39:
                            current = h
                        else:
                            last = (h, v)
                    elif kind in ("fillFileOffset", "fillFileContent"):
                        items.append((kind, v))
    for spec in out.values():
        if spec["link"] is not None:
            spec["link"] = path(spec["link"])
    return out


def _content_bytes(f: FileSpec) -> bytes:
    c = f.content
    return c if isinstance(c, bytes) else b"".join(c or ())


def _check_whole(profile: Profile, pes: list[tuple[str, Any]]) -> None:
    files = {f.handle: f for f in profile.files}
    expected = _expected(pes)
    assert len(expected) > 150
    for handle, spec in expected.items():
        f = files.get(handle)
        assert f is not None, f"{handle} is missing"
        if spec["bertlv"]:
            assert f.structure == 0x39, handle
        if spec["link"] is not None:
            assert f.link == spec["link"], handle
            target = files[spec["link"]]
            assert (f.size, f.content) == (target.size, target.content), handle
        elif spec["size"] is not None:
            assert f.size == spec["size"], handle
        data = _content_bytes(f)
        for offset, fill in spec["fills"]:
            assert data[offset : offset + len(fill)] == fill, f"{handle} at {offset}"
    sd_pes = [v for n, v in pes if n == "securityDomain"]
    assert [sd.aid for sd in profile.security_domains] == [
        bytes(v["instance"]["instanceAID"]) for v in sd_pes
    ]
    for sd, v in zip(profile.security_domains, sd_pes, strict=True):
        want = sorted(
            (k["keyVersionNumber"][0], k["keyIdentifier"][0], c["keyType"][0], bytes(c["keyData"]))
            for k in v["keyList"]
            for c in k["keyComponents"]
        )
        got = sorted((k.kvn, k.kid, t, d) for k in sd.keys for t, d in k.components)
        assert got == want
        assert sd.privileges == bytes(v["instance"]["applicationPrivileges"])
        assert sd.perso == tuple(bytes(b) for b in v.get("sdPersoData", ()))
    rfm_pes = [v for n, v in pes if n == "rfm"]
    assert [(r.instance_aid, r.tars, r.msl) for r in profile.rfm] == [
        (
            bytes(v["instanceAID"]),
            tuple(bytes(t) for t in v["tarList"]),
            v["minimumSecurityLevel"][0],
        )
        for v in rfm_pes
    ]
    cdma = [v for n, v in pes if n == "cdmaParameter"]
    if cdma:
        assert dict(profile.cdma) == {k: bytes(x) for k, x in cdma[0].items() if k != "cdma-header"}


@pytest.mark.parametrize("path", PACKAGES)
def test_ts48_installs_whole_within_memory_or_is_refused(path: Path) -> None:
    """Installed whole (checked against the PEs), in at most 1.5x the package's size of
    card memory (the target; `-k memory -s` prints the figures), or refused."""
    package = path.read_bytes()
    rt = _card()
    store = _store(rt)
    before = rt.nvm.used
    try:
        iccid = store.install_profile_package(package)
    except ProfileStoreError as e:
        assert e.pe_status is not None and e.pe_status != PeStatus.OK
        assert store.list_profiles() == () and rt.nvm.used == before
        return
    cost = rt.nvm.used - before
    print(
        f"{path.name}: package {len(package)} B, card memory {cost} B, {cost / len(package):.2f}x"
    )
    assert cost <= 1.5 * len(package)
    installed = Profile.from_bytes(store.export_profile(iccid))
    _check_whole(installed, asn1.decode_pe_sequence(package))
    # The MNO-SD is on the card, locked until its profile is enabled.
    assert (MNO_SD, class_ref(ProfileSecurityDomain)) in {
        (bytes(a), r) for a, r, _lc, _d in rt.applets()
    }


def test_export_reinstalls_the_same_profile() -> None:
    rt = _card()
    iccid = _store(rt).install_profile_package(TS48)
    exported = _store(rt).export_profile(iccid)
    other = _card()
    assert _store(other).install_profile(exported) == iccid
    again = Profile.from_bytes(_store(other).export_profile(iccid))
    assert again == Profile.from_bytes(exported)
    assert any(f.link for f in again.files) and again.security_domains and again.rfm


# -- the MNO-SD: SCP03 with the profile's keys while the profile is enabled ------------------------


def _ts48_keys(kvn: int = 0x02) -> Scp03Keys:
    # TS.48's MNO-SD, key version 02 (AES, key type '88'): ENC, MAC, DEK.
    return Scp03Keys(
        bytes.fromhex("66778899AABBCCDD1122334455EEFF10"),
        bytes.fromhex("112233445566778899AABBCCDDEEFF10"),
        bytes.fromhex("99AABBCCDDEEFF101122334455667788"),
        kvn,
    )


def _seeded(n: int) -> Any:
    import random

    r = random.Random(n)
    return lambda k: bytes(r.getrandbits(8) for _ in range(k))


def test_mno_sd_answers_scp03_only_while_its_profile_is_enabled() -> None:
    rt = _card()
    store = _store(rt)
    iccid = store.install_profile_package(TS48)
    _, sw = send(rt, b"\x00\xa4\x04\x00\x08" + MNO_SD)
    assert sw == 0x6A82  # locked: the profile is disabled
    store.enable_profile(iccid)
    with GpClient(
        InProcessReader(rt), _ts48_keys(), kvn=2, isd_aid=MNO_SD, random=_seeded(1)
    ) as gp:
        assert {k.kvn for k in gp.key_information()} == {0x01, 0x02}  # SCP80 DES, AES
        new = Scp03Keys.single(bytes(range(0x50, 0x60)), 0x31)
        gp.put_key(new)
    # The new key set is the profile's: exported with it, and usable.
    sd = Profile.from_bytes(store.export_profile(iccid)).security_domains[0]
    assert {k.kvn for k in sd.keys} == {0x01, 0x02, 0x31}
    assert sd.sequence_counter == 1
    with GpClient(InProcessReader(rt), new, kvn=0x31, isd_aid=MNO_SD, random=_seeded(2)) as gp:
        assert gp.get_data(0x66)
    from host.gp.secure_channel import SecureChannelError

    with pytest.raises(SecureChannelError):
        GpClient(InProcessReader(rt), new, kvn=2, isd_aid=MNO_SD, random=_seeded(3)).open()
    # Key versions 01-0F are the SD's SCP80 key sets too (card.gp.isd ota_keysets).
    sd_applet = rt.applet(MNO_SD)
    assert isinstance(sd_applet, ProfileSecurityDomain)
    ota = rt.call_in_context(rt._entries[MNO_SD].ctx, lambda: sd_applet.ota_keysets)
    assert [(k.kvn, k.aes) for k in ota] == [(0x01, False), (0x02, True)]
    store.disable_profile(iccid)
    _, sw = send(rt, b"\x00\xa4\x04\x00\x08" + MNO_SD)
    assert sw == 0x6A82


def test_mno_sd_is_shared_by_aid_and_follows_the_enabled_profile() -> None:
    from tests.unit.sgp22_helpers import ts48_with_iccid

    rt = _card()
    store = _store(rt)
    a = store.install_profile_package(TS48)
    b = store.install_profile_package(ts48_with_iccid("8949449999999990050"))
    store.enable_profile(a)
    with GpClient(
        InProcessReader(rt), _ts48_keys(), kvn=2, isd_aid=MNO_SD, random=_seeded(4)
    ) as gp:
        gp.put_key(Scp03Keys.single(bytes(range(16)), 0x02), replace_kvn=0x02)
    store.enable_profile(b)  # profile B's MNO-SD still has the TS.48 keys
    with GpClient(
        InProcessReader(rt), _ts48_keys(), kvn=2, isd_aid=MNO_SD, random=_seeded(5)
    ) as gp:
        assert gp.get_data(0x66)
    store.disable_profile(b)
    rt.reset()  # the terminal's REFRESH after a disable: no channel keeps the SD selected
    store.delete_profile(a)
    assert any(bytes(x[0]) == MNO_SD for x in rt.applets())  # B still has it
    store.delete_profile(b)
    assert not any(bytes(x[0]) == MNO_SD for x in rt.applets())


def test_deleting_one_profile_deselects_the_shared_mno_sd_that_answered_for_it() -> None:
    """The MNO-SD instance another profile still has stays, but no channel keeps it selected
    on the deleted profile's behalf (applets.usim `delete_profile`)."""
    from tests.unit.sgp22_helpers import ts48_with_iccid

    rt = _card()
    store = _store(rt)
    a = store.install_profile_package(TS48)
    b = store.install_profile_package(ts48_with_iccid("8949449999999990050"))
    store.enable_profile(a)
    ch = rt.process(bytes.fromhex("0070000001"))[0]
    _, sw = send(rt, bytes((ch, 0xA4, 0x04, 0x00, 8)) + MNO_SD)
    assert sw == 0x9000 and rt.selected_aid(ch) == MNO_SD
    store.disable_profile(a)
    store.delete_profile(a)
    assert rt.selected_aid(ch) is None
    assert any(bytes(x[0]) == MNO_SD for x in rt.applets())  # B still has it
    store.enable_profile(b)
    _, sw = send(rt, bytes((ch, 0xA4, 0x04, 0x00, 8)) + MNO_SD)
    assert sw == 0x9000  # now B's MNO-SD
    store.disable_profile(b)
    store.delete_profile(b)
    assert rt.selected_aid(ch) is None
    assert not any(bytes(x[0]) == MNO_SD for x in rt.applets())


# -- BER-TLV and linked files through APDUs ----------------------------------------------------


def test_bertlv_ef_set_and_retrieve_data_and_linked_files_share_content() -> None:
    rt = _card()
    store = _store(rt)
    iccid = store.install_profile_package(TS48)
    store.enable_profile(iccid)
    rt.reset()
    fcp, sw = send(rt, "00A40804067F105F3E4F02")
    assert sw == 0x9000 and fcp[4:6] == b"\x79\x21"  # BER-TLV structure (TS 102 221 §11.1.1.4.3)
    _, sw = send(rt, "80DB0080" + "05" + "8003414243")
    assert sw == 0x6982  # its EF.ARR record asks for ADM1 to update
    _, sw = send(rt, "0020000A08" + b"55555555".hex())
    assert sw == 0x9000
    _, sw = send(rt, "80DB0080" + "05" + "8003414243")
    assert sw == 0x9000
    data, sw = send(rt, "80CB008001" + "80")
    assert (data, sw) == (bytes.fromhex("8003414243"), 0x9000)
    _, sw = send(rt, "80CB008001" + "81")
    assert sw == 0x6A88
    _, sw = send(rt, "00B0000001")
    assert sw == 0x6981  # not a transparent EF
    # The CSIM's EF.FDN is a link to the USIM's: one content.
    slot = store._find(iccid)
    usim_fdn = "ADF.A0000000871002FF49FF0589/6F3B"
    csim_fdn = "ADF.A0000003431002F310FFFF89020000FF/6F3B"
    recs = slot.fs.read(usim_fdn)
    assert isinstance(recs, tuple)
    slot.fs.write(csim_fdn, (b"\x01" * len(recs[0]),) + recs[1:])
    assert slot.fs.read(usim_fdn)[0] == b"\x01" * len(recs[0])


# -- refusals: each leaves nothing installed ---------------------------------------------------


def _refused(package: bytes, status: int, reason: ProfileStoreReason | None = None) -> None:
    rt = _card()
    store = _store(rt)
    before = rt.nvm.used
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile_package(package)
    assert e.value.pe_status == status, e.value
    if reason is not None:
        assert e.value.reason == reason
    assert store.list_profiles() == ()
    assert rt.nvm.used == before
    assert [bytes(a) for a, *_ in rt.applets()] == [UICC_AID]


def _edit(name: str, fn: Any, package: bytes = TS48) -> bytes:
    return _encode([(n, fn(v)) if n == name else (n, v) for n, v in _pes(package)])


def _with_pe(pe: tuple[str, Any], package: bytes = TS48) -> bytes:
    pes = _pes(package)
    return _encode(pes[:-1] + [pe, pes[-1]])


def test_refused_application_with_a_load_block() -> None:
    app = {
        "app-Header": {"identification": 90, "mandated": None},
        "loadBlock": {
            "loadPackageAID": bytes.fromhex("A000000999"),
            "loadBlockObject": b"\xc4\x00",
        },
    }
    _refused(_with_pe(("application", app)), PeStatus.RUNTIME_NOT_SUPPORTED)


def _instance(package: bytes, cls: bytes, aid: bytes) -> dict[str, Any]:
    return {
        "applicationLoadPackageAID": package,
        "classAID": cls,
        "instanceAID": aid,
        "applicationPrivileges": b"\x00",
        "lifeCycleState": b"\x07",
        "applicationSpecificParametersC9": b"",
    }


def test_application_of_an_unknown_class_is_refused() -> None:
    inst = _instance(
        bytes.fromhex("A000000999"), bytes.fromhex("A00000099901"), b"\xa0\x00\x00\x09\x99\x01\x01"
    )
    app = {"app-Header": {"identification": 90}, "instanceList": [inst]}
    _refused(_with_pe(("application", app)), PeStatus.LIB_NOT_SUPPORTED)


def test_application_of_a_catalogued_class_installs_with_its_profile() -> None:
    ref = "applets.sample.echo:EchoApplet"
    aid = bytes.fromhex("A0000009990101")
    inst = _instance(default_package_aid("applets.sample"), default_module_aid(ref), aid)
    package = _with_pe(
        ("application", {"app-Header": {"identification": 90}, "instanceList": [inst]})
    )
    rt = _card()
    store = _store(rt)
    iccid = store.install_profile_package(package)
    assert [a.class_ref for a in Profile.from_bytes(store.export_profile(iccid)).apps] == [ref]
    _, sw = send(rt, b"\x00\xa4\x04\x00\x07" + aid)
    assert sw == 0x6A82  # locked while its profile is disabled
    store.enable_profile(iccid)
    _, sw = send(rt, b"\x00\xa4\x04\x00\x07" + aid)
    assert sw == 0x9000
    # The MNO-SD's GET STATUS: itself and the profile's application.
    with GpClient(
        InProcessReader(rt), _ts48_keys(), kvn=2, isd_aid=MNO_SD, random=_seeded(9)
    ) as gp:
        reg = gp.registry()
        assert [(e.aid, e.life_cycle) for e in reg.isd] == [(MNO_SD, 0x0F)]
        assert [(e.aid, e.life_cycle) for e in reg.applications] == [(aid, 0x07)]
        with pytest.raises(ApduError) as e:
            gp.delete(aid)
        assert e.value.sw == 0x6D00  # no content management inside the profile


def test_security_domain_of_another_load_file_is_refused() -> None:
    def other(v: dict[str, Any]) -> dict[str, Any]:
        return {
            **v,
            "instance": {**v["instance"], "applicationLoadPackageAID": b"\xa0\x00\x00\x09\x99"},
        }

    _refused(_edit("securityDomain", other), PeStatus.LIB_NOT_SUPPORTED)


def test_security_domain_key_of_an_unsupported_type_is_refused() -> None:
    def rsa(v: dict[str, Any]) -> dict[str, Any]:
        k = dict(v["keyList"][0])
        k["keyComponents"] = [{"keyType": b"\xa1", "keyData": b"\x01" * 16, "macLength": 8}]
        return {**v, "keyList": [k] + v["keyList"][1:]}

    _refused(_edit("securityDomain", rsa), PeStatus.FEATURE_NOT_SUPPORTED)


def test_security_domain_on_another_applications_aid_is_refused_whole() -> None:
    rt = _card()
    from applets.sample import EchoApplet

    rt.install(EchoApplet, MNO_SD)
    store = _store(rt)
    before = rt.nvm.used
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile_package(TS48)
    assert e.value.reason == ProfileStoreReason.APPLICATION
    assert store.list_profiles() == () and rt.nvm.used == before


def test_mandated_service_the_card_lacks_is_refused() -> None:
    def cave(v: dict[str, Any]) -> dict[str, Any]:
        return {**v, "eUICC-Mandatory-services": {**v["eUICC-Mandatory-services"], "cave": None}}

    _refused(_edit("header", cave), PeStatus.FEATURE_NOT_SUPPORTED)


def test_linked_df_is_refused() -> None:
    def df_link(v: dict[str, Any]) -> dict[str, Any]:
        items = [
            (k, {**x, "linkPath": b"\x7f\x10"}) if k == "fileDescriptor" else (k, x)
            for k, x in v["df-mmss"]
        ]
        return {**v, "df-mmss": items}

    _refused(_edit("telecom", df_link), PeStatus.FEATURE_NOT_SUPPORTED)


def test_link_to_no_file_is_refused() -> None:
    def nowhere(v: dict[str, Any]) -> dict[str, Any]:
        items = [
            (k, {**x, "linkPath": b"\x7f\xd0\x6f\x99"}) if k == "fileDescriptor" else (k, x)
            for k, x in v["ef-fdn"]
        ]
        return {**v, "ef-fdn": items}

    _refused(_edit("opt-csim", nowhere), PeStatus.INVALID_PARAMETER)


def _aka_with_key(pes: list[tuple[str, Any]], which: int, key: bytes) -> list[tuple[str, Any]]:
    """The package's PEs with the `which`-th akaParameter (from 1) carrying `key`."""
    out, seen = [], 0
    for n, v in pes:
        if n == "akaParameter":
            seen += 1
            if seen == which:
                algo = {**v["algoConfiguration"][1], "key": key}
                v = {**v, "algoConfiguration": ("algoParameter", algo)}
        out.append((n, v))
    assert seen >= which
    return out


def test_second_different_aka_parameter_in_one_naa_is_refused() -> None:
    # TS.48 gives the USIM's set after PE-USIM and the same again after PE-ISIM. A second,
    # different set in the USIM's context leaves the USIM's keys undefined (TCA SAIP).
    pes = _pes(TS48)
    first = next(i for i, (n, _) in enumerate(pes) if n == "akaParameter")
    pes.insert(first + 1, pes[first])
    pes = _aka_with_key(pes, 2, b"\x55" * 16)
    pes[first + 1] = (
        pes[first + 1][0],
        {**pes[first + 1][1], "aka-header": {"identification": 999}},
    )
    _refused(_encode(pes), PeStatus.FEATURE_NOT_SUPPORTED)


def test_a_different_set_in_the_isims_context_is_the_isims_own() -> None:
    r = profile_from_package(_encode(_aka_with_key(_pes(TS48), 2, b"\x55" * 16)))
    ((aid, own),) = r.profile.app_auth
    assert aid.startswith(bytes.fromhex("A0000000871004")) and own.k == b"\x55" * 16
    assert r.profile.auth.k != own.k
    # As TS.48 ships it (the same set twice): the ISIM runs the USIM's keys.
    assert profile_from_package(TS48).profile.app_auth == ()


def test_reserved_pe_is_refused() -> None:
    _refused(_with_pe(("rfu1", {})), PeStatus.PE_NOT_SUPPORTED)


def test_converter_drops_nothing() -> None:
    r = profile_from_package(TS48)
    assert r.ignored == ()


# -- through the ISD-R: EUICCInfo2, and refusals ending in a ProfileInstallationResult --------


def test_euicc_info2_tells_what_the_store_does() -> None:
    lpa = Lpa(euicc_card())
    info2 = lpa.es10("GetEuiccInfo2Request", {}, "EUICCInfo2")
    assert bits_to_set(info2["uiccCapability"]) == set(CAPABILITY_BITS.values())
    assert {19, 2, 3} <= bits_to_set(info2["uiccCapability"])  # BER-TLV, ISIM, CSIM
    assert 5 not in bits_to_set(info2["uiccCapability"])  # no CAVE
    assert bits_to_set(info2["forbiddenProfilePolicyRules"]) == set(FORBIDDEN_PPRS)
    assert "javacardVersion" not in info2 and "certificationDataObject" not in info2


def test_download_of_a_refused_package_ends_in_an_error_result() -> None:
    lpa = Lpa(euicc_card())
    bad = _edit(
        "header",
        lambda v: {
            **v,
            "eUICC-Mandatory-services": {**v["eUICC-Mandatory-services"], "cave": None},
        },
    )
    smdp = TestSmdp(upp=bad)
    pir, _ = download(lpa, smdp)
    kind, err = smdp.check_pir(pir)["finalResult"]
    assert kind == "errorResult" and err["errorReason"] == 12  # PE processing error
    sima = asn1.decode_pe(err["simaResponse"], "EUICCResponse")
    assert sima["peStatus"][0]["status"] == PeStatus.FEATURE_NOT_SUPPORTED
    assert lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")[1] == []


def test_download_with_a_forbidden_ppr_is_refused_at_store_metadata() -> None:
    class PprSmdp(TestSmdp):
        __test__ = False

        def metadata(self) -> dict[str, Any]:
            return {**super().metadata(), "profilePolicyRules": (b"\x10", 4)}  # PPR3

    lpa = Lpa(euicc_card())
    smdp = PprSmdp()
    pir, _ = download(lpa, smdp)
    kind, err = smdp.check_pir(pir)["finalResult"]
    assert kind == "errorResult" and (err["bppCommandId"], err["errorReason"]) == (2, 15)


def test_pin_defined_twice_differently_is_refused() -> None:
    pes = _pes(TS48)
    out, done = [], False
    for n, v in pes:
        if n == "pinCodes" and not done and v["pinCodes"][0] == "pinconfig":
            first = v["pinCodes"][1][0]
            twin = {**first, "pinValue": b"4321\xff\xff\xff\xff"}
            v = {**v, "pinCodes": ("pinconfig", [*v["pinCodes"][1], twin])}
            done = True
        out.append((n, v))
    assert done
    _refused(_encode(out), PeStatus.FEATURE_NOT_SUPPORTED)


def test_only_the_profiles_security_domains_get_their_records() -> None:
    from card.framework import AID

    rt = _card()
    store = _store(rt)
    iccid = store.install_profile_package(TS48)
    assert store.get_shareable_interface_object(AID(MNO_SD), 0) is None  # not enabled yet
    store.enable_profile(iccid)
    access = store.get_shareable_interface_object(AID(MNO_SD), 0)
    assert access is not None and not isinstance(access, UiccApplet)
    assert access.sd_record(MNO_SD).aid == MNO_SD  # type: ignore[union-attr]
    assert access.sd_record(bytes.fromhex("A0000001510000FF")) is None  # type: ignore[union-attr]
    assert store.get_shareable_interface_object(AID(bytes.fromhex("A000000999")), 0) is None


def test_tear_during_install_leaves_nothing_or_everything() -> None:
    """Power lost after the n-th NVM write of a TS.48 install (sampled, and each of the
    last writes: the SD instance, the registry, the slot's metadata)."""
    rt = _card()
    store = _store(rt)
    before = rt.nvm.used
    probe = _card()
    start = probe.nvm.total_writes
    _store(probe).install_profile_package(TS48)
    total = probe.nvm.total_writes - start
    points = sorted(set(range(0, total, total // 5)) | set(range(max(0, total - 10), total)))
    from card.nvm import PowerLoss

    for n in points:
        rt.nvm.tear_after(n)
        with pytest.raises(PowerLoss):
            store.install_profile_package(TS48)
        rt.power_on()
        store = _store(rt)
        assert store.list_profiles() == (), f"tear after {n} writes left a profile"
        assert rt.nvm.used == before, f"tear after {n} writes left {rt.nvm.used - before} bytes"
        assert [bytes(a) for a, *_ in rt.applets()] == [UICC_AID]
    rt.nvm.tear_after(None)
    assert store.install_profile_package(TS48)
