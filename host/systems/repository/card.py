"""The host's side of seed 002's card: one typed call per command, and the card's making.

`RepositoryCard(reader)` speaks the commands `applets.repository.applet`
documents. Stack an `SmReader` under it for the commands a server sends under
secure messaging; `on_channel` gives a reader on another logical channel, so
the terminal's plain commands (the URL, the token) and the server's protected
ones share the card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from applets.biometric.iso19794 import Minutia, build_biometric_data
from card import tlv
from card.apdu import cla_with_channel
from card.crypto.keys import EcKeyPair, EcPublicKey
from card.runtime import CardRuntime
from card.sm.cvc import issue_cvc, parse_public_key_template, public_key_template
from host.bio.session import BioSession
from host.errors import ApduError
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.session import ApduSession, AppletSession

__all__ = [
    "REPOSITORY_AID",
    "BIO_AID",
    "SignedUrl",
    "CardKey",
    "ChannelReader",
    "RepositoryCard",
    "make_card",
    "personalise_card",
]

#: applets.repository.REPOSITORY_AID and applets.biometric.BIO_AID, named here.
REPOSITORY_AID = bytes.fromhex("F043415244454D555250")
BIO_AID = bytes.fromhex("F043415244454D55B1")
BIO_ADMIN_KEY = bytes(range(0x40, 0x50))
FINGER = 0x96  # right index finger, the BIT's reference data qualifier


@dataclass(frozen=True)
class SignedUrl:
    """What the card answers to "read repository URL" (ST35)."""

    url: str
    card_key: bytes  # 7F49
    signature: bytes
    hsm_key_id: bytes

    @property
    def card_public(self) -> EcPublicKey:
        return parse_public_key_template(self.card_key)


@dataclass(frozen=True)
class CardKey:
    """A key pair the card generated: its public key template and key ID."""

    template: bytes
    key_id: bytes

    @property
    def public(self) -> EcPublicKey:
        return parse_public_key_template(self.template)


class ChannelReader(Reader):
    """The commands of a session on another logical channel (ISO/IEC 7816-4 §5.4.1).

    Stack it above an `SmReader`, so the MAC covers the CLA the card sees.
    """

    def __init__(self, inner: Reader, channel: int) -> None:
        self.inner, self.channel = inner, channel

    def transmit(self, apdu: bytes) -> bytes:
        return self.inner.transmit(bytes((cla_with_channel(apdu[0], self.channel),)) + apdu[1:])


def open_channel(reader: Reader) -> int:
    """MANAGE CHANNEL open (ISO/IEC 7816-4 §11.1.2): the new channel's number."""
    data = ApduSession(reader).send(0x00, 0x70, 0x00, 0x00, le=1, what="MANAGE CHANNEL")
    if len(data) != 1:
        raise ApduError(0x9000, data, "MANAGE CHANNEL: no channel number")
    return data[0]


class RepositoryCard(AppletSession):
    """The repository card applet's commands over a reader (an `SmReader` when protected)."""

    def __init__(self, reader: Reader, aid: bytes = REPOSITORY_AID) -> None:
        super().__init__(reader, aid)

    def select(self) -> None:
        self.send(0x00, 0xA4, 0x04, 0x0C, self.aid)

    # -- personalisation -----------------------------------------------------------

    def generate_auth_key(self) -> bytes:
        """The card authentication key of secure messaging (before personalisation)."""
        return self.send(0x00, 0x47, 0x80, 0x81, le=0)

    def personalise(
        self, root: bytes, certificate: bytes, template: bytes, bio_aid: bytes | None = None
    ) -> None:
        data = root + certificate + template
        if bio_aid is not None:
            data += tlv.build(0x4F, bio_aid)
        self.send(0x00, 0xDB, 0x3F, 0xFF, data)

    # -- issuance (protected, with the HSM) ----------------------------------------

    def read_template(self) -> bytes:
        """ST12: the holder's fingerprint template (7F2E)."""
        return self.send(0x00, 0xCA, 0x7F, 0x2E, le=0)

    def give_hsm_key(self, template: bytes) -> None:
        """ST14/ST19: the HSM matched the finger; its public key."""
        self.send(0x00, 0xDB, 0x3F, 0xFF, template)

    def generate_issued_key(self) -> CardKey:
        """ST17-ST19: the card's key pair; the public key and its ID."""
        return self._card_key(self.send(0x00, 0x47, 0x80, 0x01, le=0))

    def store_url(self, url: str, signature: bytes) -> None:
        """ST21-ST22: the URL with the HSM's signature; the card checks it and stores both."""
        data = tlv.build(0x5F50, url.encode()) + tlv.build(0x5F37, signature)
        self.send(0x00, 0xDB, 0x3F, 0xFF, data)

    # -- use ---------------------------------------------------------------------------

    def read_url(self) -> SignedUrl:
        """ST34-ST35: the repository URL, after a fingerprint match in this card session."""
        objs = {o.tag: o for o in tlv.parse(self.send(0x00, 0xCA, 0x5F, 0x50, le=0))}
        try:
            return SignedUrl(
                objs[0x5F50].value.decode(),
                objs[0x7F49].to_bytes(),
                objs[0x5F37].value,
                objs[0xC0].value,
            )
        except (KeyError, UnicodeDecodeError):
            raise ValueError("the URL answer needs 5F50, 7F49, 5F37 and C0") from None

    def generate_session_key(self) -> CardKey:
        """ST42-ST45: a fresh key pair for the repository."""
        return self._card_key(self.send(0x00, 0x47, 0x80, 0x02, le=0))

    def sign(self, credential: bytes) -> bytes:
        """ST55: ECDSA-SHA-256 of the credential with the session key, plain r || s."""
        return self.send(0x00, 0x2A, 0x9E, 0x9A, credential, le=0)

    def send_token(self, token: bytes) -> None:
        """ST57: the one-time token, under secure messaging."""
        self.send(0x00, 0xDB, 0x3F, 0xFF, tlv.build(0xDF20, token))

    def read_token(self) -> bytes:
        """ST60: the token the card decrypted, released once."""
        obj = tlv.Tlv.from_bytes(self.send(0x00, 0xCA, 0xDF, 0x20, le=0))
        return obj.value

    @staticmethod
    def _card_key(data: bytes) -> CardKey:
        objs = {o.tag: o for o in tlv.parse(data)}
        if 0x7F49 not in objs or 0xC0 not in objs:
            raise ValueError("GENERATE answer needs 7F49 and C0")
        return CardKey(objs[0x7F49].to_bytes(), objs[0xC0].value)


def make_card(
    root: EcKeyPair,
    finger: Sequence[Minutia],
    *,
    rng_seed: int | bytes | None = None,
    card_ref: bytes = b"CARD0001",
) -> CardRuntime:
    """A personalised, not yet issued card in memory (see `personalise_card`)."""
    rt = CardRuntime(rng_seed=rng_seed)
    personalise_card(rt, root, finger, card_ref=card_ref)
    return rt


def personalise_card(
    rt: CardRuntime,
    root: EcKeyPair,
    finger: Sequence[Minutia],
    *,
    card_ref: bytes = b"CARD0001",
) -> None:
    """Make `rt` a personalised, not yet issued card: the finger enrolled, the SM key certified.

    The match-on-card applet is default-selected (the sensor's side); the
    repository applet beside it holds the copy of the template for issuance
    and a card-authentication key certified by `root` (a CV certificate with
    holder reference `card_ref`). Issuance (ST11-ST22) is the registration
    device's job.
    """
    from applets.biometric import BiometricApplet
    from applets.repository import RepositoryCardApplet

    rt.install(BiometricApplet, BIO_AID, default=True)
    rt.install(RepositoryCardApplet, REPOSITORY_AID)
    rt.power_on()
    reader = InProcessReader(rt)
    bio = BioSession(reader)
    bio.select()
    bio.authenticate_admin(BIO_ADMIN_KEY)
    bio.enrol(FINGER, finger)
    card = RepositoryCard(reader)
    card.select()
    auth_key = parse_public_key_template(card.generate_auth_key())
    cert = issue_cvc(root.cryptography_key, b"ROOT", card_ref, auth_key)
    card.personalise(public_key_template(root.public), cert, build_biometric_data(finger))
    rt.reset()
