"""Seed 003's eSE side (applets.profile_move): backup, install, delete and FIG. 4's refusals.

Every refusal the seed names is here: a profile copied byte for byte to a third
eSE, an edited eSE ID, a forged provider signature, a backup request carrying
another MNO's certificate; the binding variants' documented reach; the card's
transactions torn at every NVM write of install and delete.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from applets.profile_move.wire import (
    META_ESE_ID,
    PROVIDER_OU,
    TAG_ESE_ID,
    TAG_ICCID,
    TAG_MOVE_ID,
    Parts,
    SealError,
    Variant,
    delete_order_data,
    install_signed_data,
    seal,
    unseal,
)
from applets.sample import PURSE_AID
from applets.usim import UICC_AID
from card import tlv
from card.crypto.keys import P256, EcKeyPair
from card.crypto.rng import CardRng
from card.framework import APDU, SW, Applet, CardError
from card.framework.aid import AID
from card.framework.catalogue import class_ref
from card.runtime import CardRuntime
from card.uicc.builder import sample_profile
from card.uicc.profile import AppSpec, Profile
from host.errors import ApduError
from host.readers.base import ReaderError
from host.readers.inprocess import InProcessReader
from host.systems.profile_move.card import MoveAgent, bind, make_ese
from host.systems.profile_move.pki import DEMO_MNO, demo_pki, ese_id_of
from tests.unit.usim_cards import send

PKI = demo_pki(0)
MOVE = bytes(range(16))


def _profile(
    n: int = 1, *, variant: Variant = Variant.FULL, key: EcKeyPair | None = None
) -> Profile:
    base = sample_profile(apps=(AppSpec(PURSE_AID, "purse", b"1234"),))
    return bind(
        base,
        key=key or PKI.provider,
        certificate=PKI.provider_cert,
        ese_id=ese_id_of(n),
        profile_id="P-1",
        variant=variant,
    )


def _store(rt: CardRuntime) -> Any:
    return rt.applet(UICC_AID)


def _put(rt: CardRuntime, profile: Profile | bytes) -> None:
    """A profile put into the store as-is, disabled (a copy that bypassed the move agent)."""
    data = profile if isinstance(profile, bytes) else profile.to_bytes()
    ctx = rt.selected_context(0)
    assert ctx is not None  # the profile store, default-selected
    rt.call_in_context(ctx, _store(rt).install_profile, data)


def _agent(rt: CardRuntime) -> MoveAgent:
    return MoveAgent(InProcessReader(rt))


def _backup(rt: CardRuntime, cert: bytes = PKI.provider_cert, parts: int = Parts.ALL) -> bytes:
    with _agent(rt) as a:
        return a.backup(MOVE, _profile().iccid, parts, cert)


def _header(n: int) -> bytes:
    return tlv.build(TAG_MOVE_ID, MOVE) + tlv.build(TAG_ESE_ID, ese_id_of(n))


def _package(profile: Profile, n: int, *, signer: EcKeyPair = PKI.provider) -> tuple[bytes, bytes]:
    package = seal(PKI.ese_key(n).public, profile.to_bytes(), _header(n), CardRng(b"x"))
    return package, signer.sign(install_signed_data(MOVE, ese_id_of(n), package))


def _status(rt: CardRuntime) -> list[tuple[str, bool]]:
    with _agent(rt) as a:
        return a.status()


def _sw(fn: Any) -> int:
    with pytest.raises(ApduError) as e:
        fn()
    return e.value.sw


# -- backup --------------------------------------------------------------------------------


def test_backup_is_sealed_for_the_provider_and_carries_the_whole_profile() -> None:
    rt = make_ese(1, PKI, profile=_profile())
    box = _backup(rt)
    header = _header(1) + tlv.build(TAG_ICCID, _profile().iccid.encode())
    got = Profile.from_bytes(unseal(PKI.provider, box, header))
    assert got.auth.k == _profile().auth.k and got.apps == _profile().apps
    assert got.file("3F00/7F10/6F3A") is not None  # the phone book
    with pytest.raises(SealError):  # another key cannot open it
        unseal(PKI.other_provider, box, header)
    with pytest.raises(SealError):  # nor under another header (another move, another eSE)
        unseal(PKI.provider, box, _header(2))


def test_backup_leaves_out_what_was_not_chosen() -> None:
    rt = make_ese(1, PKI, profile=_profile())
    header = _header(1) + tlv.build(TAG_ICCID, _profile().iccid.encode())
    got = Profile.from_bytes(unseal(PKI.provider, _backup(rt, parts=Parts.USER_DATA), header))
    assert got.auth.k == bytes(16) and got.auth.opc == bytes(16)  # K left out
    assert got.apps == ()
    assert got.file("3F00/7F10/6F3A") is not None
    got = Profile.from_bytes(unseal(PKI.provider, _backup(rt, parts=Parts.KEYS), header))
    assert got.file("3F00/7F10") is None and got.auth.k == _profile().auth.k


def test_backup_refuses_a_certificate_of_another_mno() -> None:
    rt = make_ese(1, PKI, profile=_profile())
    writes = rt.nvm.total_writes
    assert _sw(lambda: _backup(rt, cert=PKI.other_provider_cert)) == 0x6982
    assert rt.nvm.total_writes == writes  # nothing recorded, nothing left the card


def test_backup_refuses_a_certificate_the_root_did_not_sign() -> None:
    rogue = demo_pki(7)  # same MNO name, another root
    assert rogue.provider_cert != PKI.provider_cert
    rt = make_ese(1, PKI, profile=_profile())
    assert _sw(lambda: _backup(rt, cert=rogue.provider_cert)) == 0x6982
    # An eSE certificate is not a provider's either.
    assert _sw(lambda: _backup(rt, cert=PKI.ese_certificate(2))) == 0x6982


# -- install and activation (FIG. 4) ------------------------------------------------------


def test_install_then_activate_on_the_bound_ese() -> None:
    rt = make_ese(2, PKI)
    package, sig = _package(_profile(2), 2)
    with _agent(rt) as a:
        a.install(MOVE, PKI.provider_cert, sig, package)
        a.install(MOVE, PKI.provider_cert, sig, package)  # the same move again: no change
        assert a.status() == [(_profile().iccid, False)]
        a.activate(_profile().iccid)
        assert a.status() == [(_profile().iccid, True)]


def test_install_refuses_a_forged_package_signature_or_another_eses_package() -> None:
    rt = make_ese(2, PKI)
    package, _ = _package(_profile(2), 2)
    forged = PKI.other_provider.sign(install_signed_data(MOVE, ese_id_of(2), package))
    with _agent(rt) as a:
        assert _sw(lambda: a.install(MOVE, PKI.provider_cert, forged, package)) == 0x6982
        # A package for eSE 3 (bound to eSE 3, sealed for eSE 3) does not open here.
        package3, sig3 = _package(_profile(3), 3)
        assert _sw(lambda: a.install(MOVE, PKI.provider_cert, sig3, package3)) == 0x6982
        # Sealed for eSE 2 but bound to eSE 3: refused by the binding check.
        package, sig = _package(_profile(3), 2)
        assert _sw(lambda: a.install(MOVE, PKI.provider_cert, sig, package)) == 0x6982
    assert _status(rt) == []


def test_a_profile_copied_byte_for_byte_to_a_third_ese_refuses_to_activate() -> None:
    source = make_ese(1, PKI, profile=_profile())
    copy = _store(source).export_profile(_profile().iccid)
    third = make_ese(3, PKI)
    _put(third, copy)
    with _agent(third) as a:
        assert _sw(lambda: a.activate(_profile().iccid)) == 0x6982
        assert a.status() == [(_profile().iccid, False)]  # not used (404), kept: no discard
    discarding = make_ese(3, PKI, discard=True)
    _put(discarding, copy)
    with _agent(discarding) as a:
        assert _sw(lambda: a.activate(_profile().iccid)) == 0x6982
        assert a.status() == []  # FIG. 4 step 404: discarded


def test_a_profile_whose_ese_id_was_edited_refuses() -> None:
    edited = _profile(1)
    meta = tuple((k, ese_id_of(3).hex() if k == META_ESE_ID else v) for k, v in edited.metadata)
    third = make_ese(3, PKI)
    _put(third, replace(edited, metadata=meta))
    with _agent(third) as a:
        assert _sw(lambda: a.activate(edited.iccid)) == 0x6982  # step 405: signature fails


def test_a_forged_provider_signature_refuses() -> None:
    forged = _profile(2, key=EcKeyPair.generate(P256, CardRng(b"forger")))
    rt = make_ese(2, PKI)
    _put(rt, forged)
    with _agent(rt) as a:
        assert _sw(lambda: a.activate(forged.iccid)) == 0x6982


def test_a_profile_without_a_binding_refuses() -> None:
    rt = make_ese(2, PKI)
    _put(rt, sample_profile())
    with _agent(rt) as a:
        assert _sw(lambda: a.activate(sample_profile().iccid)) == 0x6982


@pytest.mark.parametrize(
    ("variant", "copy_refused", "imsi_edit_refused"),
    [
        (Variant.FULL, True, True),  # formula 1: both caught
        (Variant.NO_IMSI, True, False),  # formula 2: the profile's copy caught, not the USIM's
        (Variant.NO_ESE_ID, False, True),  # formula 3: the USIM's caught, not the profile's
    ],
)
def test_the_binding_variants_reach_what_the_seed_says(
    variant: Variant, copy_refused: bool, imsi_edit_refused: bool
) -> None:
    def refused(rt: CardRuntime, profile: Profile) -> bool:
        _put(rt, profile)
        with _agent(rt) as a:
            try:
                a.activate(profile.iccid)
            except ApduError as e:
                assert e.sw == 0x6982
                return True
        return False

    bound = _profile(1, variant=variant)
    assert refused(make_ese(3, PKI, variant=variant), bound) is copy_refused
    other_imsi = sample_profile(imsi="001010000000099", apps=bound.apps)
    edited = replace(bound, files=other_imsi.files)
    assert edited.imsi != bound.imsi
    assert refused(make_ese(1, PKI, variant=variant), edited) is imsi_edit_refused


# -- delete ---------------------------------------------------------------------------------


def test_delete_needs_the_move_providers_signature_and_is_idempotent() -> None:
    rt = make_ese(1, PKI, profile=_profile())
    _backup(rt)
    order = delete_order_data(MOVE, ese_id_of(1), _profile().iccid)
    with _agent(rt) as a:
        assert _sw(lambda: a.delete(MOVE, PKI.other_provider.sign(order))) == 0x6982
        assert _sw(lambda: a.delete(bytes(16), PKI.provider.sign(order))) == 0x6A88  # no such move
        assert a.status() == [(_profile().iccid, True)]
        a.delete(MOVE, PKI.provider.sign(order))  # the enabled profile: disabled, then deleted
        assert a.status() == []
        a.delete(MOVE, PKI.provider.sign(order))  # again: already done


class _Undeletable(Applet):
    """An application of the profile that the card cannot delete while `refuse` is set (a GP
    DELETE that fails, as for an instance still referenced: 6985)."""

    refuse = True

    def process(self, apdu: APDU) -> bytes | None:
        return None

    def on_uninstall(self) -> None:
        if type(self).refuse:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)


def test_a_delete_that_fails_deselects_nothing_and_leaves_the_profile_whole() -> None:
    """`_erase` disables then deletes the enabled profile in one transaction; the store's
    delete fails (an application of the profile cannot be deleted) after the disable: 6985,
    the NVM rolls back, and the profile's application selected on another logical channel
    is still selected there, its PIN still verified (no deselect happened). The same delete
    once the fault is gone deselects it (6999 on that channel)."""
    undeletable = bytes.fromhex("F0000000AA01")
    rt = make_ese(1, PKI)
    rt.catalogue.add(_Undeletable)
    base = sample_profile(
        apps=(AppSpec(PURSE_AID, "purse", b"1234"), AppSpec(undeletable, class_ref(_Undeletable)))
    )
    profile = bind(
        base,
        key=PKI.provider,
        certificate=PKI.provider_cert,
        ese_id=ese_id_of(1),
        profile_id="P-1",
        variant=Variant.FULL,
    )
    _put(rt, profile)
    with _agent(rt) as a:
        a.activate(profile.iccid)
    _backup(rt)
    assert rt.process(bytes.fromhex("0070000001")) == b"\x01\x90\x00"  # channel 1
    assert send(rt, b"\x01\xa4\x04\x00" + bytes((len(PURSE_AID),)) + PURSE_AID)[1] == 0x9000
    assert rt.process(bytes.fromhex("012000010431323334"))[-2:] == b"\x90\x00"
    before = rt.nvm.snapshot()
    order = delete_order_data(MOVE, ese_id_of(1), profile.iccid)
    try:
        with _agent(rt) as a:
            assert _sw(lambda: a.delete(MOVE, PKI.provider.sign(order))) == 0x6985
            assert a.status() == [(profile.iccid, True)]  # intact, still enabled
        assert rt.exceptions == 0
        assert rt.nvm.snapshot() == before
        assert rt.selected_aid(1) == AID(PURSE_AID)
        assert rt.process(bytes.fromhex("0120000100"))[-2:] == b"\x90\x00"  # still verified
        assert rt.process(bytes.fromhex("8150000004"))[-2:] == b"\x90\x00"
        _Undeletable.refuse = False
        with _agent(rt) as a:
            a.delete(MOVE, PKI.provider.sign(order))
            assert a.status() == []
    finally:
        _Undeletable.refuse = True
    assert rt.selected_context(1) is None
    assert rt.process(bytes.fromhex("8150000004"))[-2:] == b"\x69\x99"


# -- tears: every NVM write of install, delete and backup --------------------------------------


def _torn(rt: CardRuntime, write: int, op: Any) -> bool:
    rt.nvm.tear_after(write - 1)
    try:
        op()
    except ReaderError:
        rt.power_off()
        rt.power_on()
        return True
    finally:
        rt.nvm.tear_after(None)
    return False


def _count_writes(make: Any, op: Any) -> int:
    rt = make()
    before = rt.nvm.total_writes
    op(rt)
    return int(rt.nvm.total_writes - before)


def test_install_torn_at_every_nvm_write_is_all_or_nothing_then_redone() -> None:
    package, sig = _package(_profile(2), 2)

    def install(rt: CardRuntime) -> None:
        with _agent(rt) as a:
            a.install(MOVE, PKI.provider_cert, sig, package)

    n = _count_writes(lambda: make_ese(2, PKI), install)
    assert n > 50
    for write in range(1, n + 1):
        rt = make_ese(2, PKI)
        assert _torn(rt, write, lambda rt=rt: install(rt)), write
        assert _status(rt) == []  # nothing half-installed
        install(rt)  # the order comes again
        with _agent(rt) as a:
            a.activate(_profile().iccid)
        assert _status(rt) == [(_profile().iccid, True)]


def test_delete_and_backup_torn_at_every_nvm_write_are_all_or_nothing() -> None:
    order = delete_order_data(MOVE, ese_id_of(1), _profile().iccid)

    def delete(rt: CardRuntime) -> None:
        with _agent(rt) as a:
            a.delete(MOVE, PKI.provider.sign(order))

    def fresh() -> CardRuntime:
        rt = make_ese(1, PKI, profile=_profile())
        _backup(rt)
        return rt

    n = _count_writes(fresh, delete)
    for write in range(1, n + 1):
        rt = fresh()
        assert _torn(rt, write, lambda rt=rt: delete(rt)), write
        assert _status(rt) == [(_profile().iccid, True)]  # still whole, still usable
        with _agent(rt) as a:
            a.activate(_profile().iccid)
        delete(rt)
        assert _status(rt) == []
    n = _count_writes(lambda: make_ese(1, PKI, profile=_profile()), lambda rt: _backup(rt))
    for write in range(1, n + 1):
        rt = make_ese(1, PKI, profile=_profile())
        assert _torn(rt, write, lambda rt=rt: _backup(rt))
        _backup(rt)
        with _agent(rt) as a:  # the move was recorded: the provider may order the deletion
            a.delete(MOVE, PKI.provider.sign(order))


def test_the_demo_pki_names_the_mno_in_the_provider_certificate() -> None:
    from applets.profile_move.wire import check_certificate

    cert = check_certificate(PKI.provider_cert, PKI.root.public, PROVIDER_OU)
    assert cert.organization == DEMO_MNO
