"""The host's side of seed 003's eSE: the move agent's commands, and an eSE's making.

`MoveAgent(reader)` speaks the commands `applets.profile_move.applet`
documents, on a logical channel of its own so that the USIM stays selected on
the basic channel (the phone keeps working while a move runs). `make_ese`
builds an emulated eSE: an eUICC as the "euicc" preset makes one (the profile
store default-selected, the ECASD, the ISD-R) and the move agent, so that a
phone's LPA enables a moved profile with ES10c EnableProfile (SGP.22 §5.7.16)
as on any eUICC, and the ISD-R runs the move agent's FIG. 4 check first.
"""

from __future__ import annotations

from dataclasses import replace

from applets.profile_move.wire import (
    META_ESE_ID,
    META_PROFILE_ID,
    META_PROVIDER_CERT,
    META_SIGNATURE,
    MOVE_AGENT_AID,
    TAG_CERT,
    TAG_DISCARD,
    TAG_ENABLED,
    TAG_ESE_ID,
    TAG_ICCID,
    TAG_MOVE_ID,
    TAG_PACKAGE,
    TAG_PARTS,
    TAG_PRIVATE,
    TAG_PROFILE,
    TAG_ROOT,
    TAG_SIGNATURE,
    TAG_VARIANT,
    Ins,
    Variant,
    binding_data,
)
from card import tlv
from card.crypto.keys import EcKeyPair
from card.runtime import CardRuntime
from card.uicc.profile import Profile
from host.readers.base import Reader, ReaderError
from host.session import AppletSession
from host.systems.profile_move.pki import MovePki, eid_of, ese_id_of, euicc_pki
from host.systems.repository.card import ChannelReader, open_channel

__all__ = ["MoveAgent", "bind", "make_ese"]


class MoveAgent:
    """The move agent's commands, on a logical channel opened for the session.

    Use it as a context manager: the channel is opened, the agent selected on
    it, and the channel closed at the end.
    """

    def __init__(self, reader: Reader) -> None:
        self._base = reader
        self._channel: int | None = None
        self._session: AppletSession | None = None

    def __enter__(self) -> MoveAgent:
        self._channel = open_channel(self._base)
        self._session = AppletSession(ChannelReader(self._base, self._channel), MOVE_AGENT_AID)
        self.send(0x00, 0xA4, 0x04, 0x0C, MOVE_AGENT_AID)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._channel is not None:
            channel, self._channel, self._session = self._channel, None, None
            try:
                self._base.transmit(bytes((0x00, 0x70, 0x80, channel)))
            except ReaderError:
                pass  # a card that lost power closed it anyway

    def send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        if self._session is None:
            raise RuntimeError("use MoveAgent as a context manager")
        return self._session.send(cla, ins, p1, p2, data, le)

    def backup(self, move_id: bytes, iccid: str, parts: int, certificate: bytes) -> bytes:
        """Steps 203/535: the profile (or its chosen parts) sealed for the provider."""
        data = (
            tlv.build(TAG_MOVE_ID, move_id)
            + tlv.build(TAG_ICCID, iccid.encode())
            + tlv.build(TAG_PARTS, bytes((parts,)))
            + tlv.build(TAG_CERT, certificate)
        )
        return self.send(0x80, Ins.BACKUP, 0, 0, data, le=0)

    def install(self, move_id: bytes, certificate: bytes, signature: bytes, package: bytes) -> None:
        """Steps 205/560: install the rebuilt profile (disabled)."""
        data = (
            tlv.build(TAG_MOVE_ID, move_id)
            + tlv.build(TAG_CERT, certificate)
            + tlv.build(TAG_SIGNATURE, signature)
            + tlv.build(TAG_PACKAGE, package)
        )
        self.send(0x80, Ins.INSTALL, 0, 0, data)

    def delete(self, move_id: bytes, signature: bytes) -> None:
        """Steps 207/208/575: delete the profile of this move, on the provider's order."""
        data = tlv.build(TAG_MOVE_ID, move_id) + tlv.build(TAG_SIGNATURE, signature)
        self.send(0x80, Ins.DELETE, 0, 0, data)

    def activate(self, iccid: str) -> None:
        """FIG. 4: the eSE ID and binding checks, then the profile enabled."""
        self.send(0x80, Ins.ACTIVATE, 0, 0, tlv.build(TAG_ICCID, iccid.encode()))

    def status(self) -> list[tuple[str, bool]]:
        """(ICCID, enabled) of every profile on the eSE."""
        out = []
        for entry in tlv.parse(self.send(0x80, Ins.STATUS, 0, 0, le=0)):
            if entry.tag != TAG_PROFILE:
                continue
            objs = {o.tag: o.value for o in tlv.parse(entry.value)}
            out.append((objs[TAG_ICCID].decode(), objs.get(TAG_ENABLED) == b"\x01"))
        return out


def bind(
    profile: Profile,
    *,
    key: EcKeyPair,
    certificate: bytes,
    ese_id: bytes,
    profile_id: str,
    variant: Variant = Variant.FULL,
) -> Profile:
    """The profile bound to `ese_id`: FIG. 3's eSE ID (305) and signature (306), re-signed.

    The signature covers the fields `variant` names (formulas 1-3); the
    provider's certificate travels with it so the eSE can check it on every
    activation.
    """
    signature = key.sign(binding_data(variant, profile_id, ese_id, profile.imsi))
    keep = tuple(
        (k, v)
        for k, v in profile.metadata
        if k not in (META_PROFILE_ID, META_ESE_ID, META_SIGNATURE, META_PROVIDER_CERT)
    )
    meta = keep + (
        (META_PROFILE_ID, profile_id),
        (META_ESE_ID, ese_id.hex()),
        (META_SIGNATURE, signature.hex()),
        (META_PROVIDER_CERT, certificate.hex()),
    )
    return replace(profile, metadata=meta)


def make_ese(
    n: int,
    pki: MovePki,
    *,
    profile: Profile | None = None,
    variant: Variant = Variant.FULL,
    discard: bool = False,
    rng_seed: int | None = None,
) -> CardRuntime:
    """An emulated eSE n: an eUICC (profile store default-selected, ECASD, ISD-R) and the
    move agent.

    The eUICC part is `host.presets.install_euicc` with the EID of eSE n in the
    demo eUICC PKI (`pki.euicc_pki`); the move agent carries the seed's eSE ID.

    Args:
        n: which eSE (1 to `pki.ESE_COUNT`).
        profile: a profile installed and enabled at manufacture (already bound).
        variant: the binding check the eSE enforces (its policy).
        discard: discard a profile that fails activation (FIG. 4 step 404).
    """
    from applets.profile_move import MoveAgentApplet
    from host.presets import install_euicc

    rt = CardRuntime(rng_seed=None if rng_seed is None else rng_seed + n)
    install_euicc(
        rt,
        pki=euicc_pki(pki.seed),
        eid=eid_of(n),
        profile=profile.to_bytes() if profile else b"",
    )
    params = (
        tlv.build(TAG_ESE_ID, ese_id_of(n))
        + tlv.build(TAG_ROOT, pki.root.public.to_point())
        + tlv.build(TAG_PRIVATE, pki.ese_key(n).private_bytes())
        + tlv.build(TAG_VARIANT, bytes((variant,)))
        + tlv.build(TAG_DISCARD, b"\x01" if discard else b"\x00")
    )
    rt.install(MoveAgentApplet, MOVE_AGENT_AID, params)
    rt.power_on()
    return rt
