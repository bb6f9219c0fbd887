"""Certificate-based mutual authentication with ephemeral ECDH, ending in AES secure messaging.

Modelled on BSI TR-03110-2 terminal authentication (§3.3) and chip
authentication (§3.4), folded into one exchange. A root (the issuer) certifies
both the card's static key and the remote party's ("terminal") key, as CV
certificates (`card.sm.cvc`); each end holds the root's public key.

1. `00 2A 00 BE <terminal CVC>` PSO VERIFY CERTIFICATE: the card checks the
   certificate against the root and keeps the terminal's public key.
2. `00 84 00 00 08` GET CHALLENGE: the card's nonce r_C.
3. `00 86 00 00 7C { 80 ePK_T, 81 sig_T }` GENERAL AUTHENTICATE: ePK_T is the
   terminal's ephemeral public point, sig_T = ECDSA_T(r_C || ePK_T). The card
   verifies sig_T, draws its own ephemeral key from its RNG, computes
   Z = ECDH(eSK_C, ePK_T) and answers 7C { 82 ePK_C, 83 sig_C, 84 card CVC },
   sig_C = ECDSA_C(ePK_C || ePK_T || r_C).
4. The terminal checks the card CVC against the root and sig_C with the
   certified key; both ends derive KSenc = KDF(Z, 1), KSmac = KDF(Z, 2)
   (ICAO 9303-11 §9.7.1: AES-128 for 256-bit curves, AES-256 for 384-bit ones)
   and start AES secure messaging with SSC = 0 (TR-03110-3 §F.3).

Each signature covers the other side's fresh contribution (r_C, ePK_T), so
neither can be replayed into another session; the ephemeral keys give forward
secrecy.
"""

from __future__ import annotations

from dataclasses import dataclass

from card import tlv
from card.crypto.keys import Curve, EcKeyPair, EcPublicKey
from card.crypto.rng import CardRng
from card.sm.codec import SmSession
from card.sm.cvc import Cvc, ec_sign, ec_verify
from card.sm.kdf import KDF_ENC, KDF_MAC, SmCipher, icao_kdf

__all__ = [
    "CHALLENGE_SIZE",
    "AuthError",
    "TerminalAuthentication",
    "CardAuthResult",
    "card_authenticate",
    "session_from_shared_secret",
    "sm_cipher_for",
]

CHALLENGE_SIZE = 8
TAG_DYNAMIC = 0x7C
TAG_EPK_T = 0x80
TAG_SIG_T = 0x81
TAG_EPK_C = 0x82
TAG_SIG_C = 0x83
TAG_CARD_CVC = 0x84


class AuthError(ValueError):
    """The mutual authentication failed: a certificate, a signature or a message is wrong."""


def sm_cipher_for(curve: Curve) -> SmCipher:
    """AES-128 for 256-bit curves, AES-256 for 384-bit curves (TR-03110-3 Table A.2 pairing)."""
    return "AES256" if curve.size >= 48 else "AES128"


def session_from_shared_secret(z: bytes, curve: Curve) -> SmSession:
    """The AES SM session from the ECDH shared secret (ICAO 9303-11 §9.7.1), SSC = 0."""
    cipher = sm_cipher_for(curve)
    return SmSession.aes(icao_kdf(z, KDF_ENC, cipher), icao_kdf(z, KDF_MAC, cipher))


def _terminal_input(r_card: bytes, epk_t: bytes) -> bytes:
    return r_card + epk_t


def _card_input(epk_c: bytes, epk_t: bytes, r_card: bytes) -> bytes:
    return epk_c + epk_t + r_card


@dataclass
class TerminalAuthentication:
    """The remote party's side ("terminal", or a server behind one).

    Args:
        key: the terminal's static key pair (certified by `certificate`).
        certificate: the terminal's CV certificate (7F21), issued by the root.
        root: the root public key that also certified the card.
        rng: where the ephemeral key comes from (OS randomness by default).
    """

    key: EcKeyPair
    certificate: bytes
    root: EcPublicKey
    rng: CardRng | None = None
    _ephemeral: EcKeyPair | None = None
    _r_card: bytes = b""
    card_certificate: Cvc | None = None

    def general_authenticate_data(self, r_card: bytes) -> bytes:
        """The data of GENERAL AUTHENTICATE: 7C { 80 ePK_T, 81 sig_T }."""
        if len(r_card) != CHALLENGE_SIZE:
            raise AuthError(f"card challenge of {len(r_card)} bytes")
        self._r_card = bytes(r_card)
        self._ephemeral = EcKeyPair.generate(self.key.curve, self.rng)
        epk = self._ephemeral.public.to_point()
        sig = ec_sign(self.key.cryptography_key, self.key.curve, _terminal_input(r_card, epk))
        return tlv.build(TAG_DYNAMIC, [(TAG_EPK_T, epk), (TAG_SIG_T, sig)])

    def finish(self, response: bytes) -> SmSession:
        """Check the card's answer (7C { 82, 83, 84 }) and derive the session.

        Raises:
            AuthError: malformed answer, a card certificate the root did not
                issue, a wrong card signature, or a point off the curve.
        """
        eph = self._ephemeral
        if eph is None:
            raise AuthError("general_authenticate_data() first")
        try:
            obj = tlv.Tlv.from_bytes(response, allow_padding=False)
            if obj.tag != TAG_DYNAMIC:
                raise AuthError("the answer is not a 7C template")
            epk_c, sig_c, cert = (obj.find(t) for t in (TAG_EPK_C, TAG_SIG_C, TAG_CARD_CVC))
            if epk_c is None or sig_c is None or cert is None:
                raise AuthError("the answer needs 82, 83 and 84")
            cvc = Cvc.from_bytes(cert.value)
            peer = EcPublicKey.from_point(eph.curve, epk_c.value)
        except (tlv.TlvError, ValueError) as e:
            raise AuthError(f"card answer: {e}") from None
        if not cvc.verify(self.root):
            raise AuthError("the card certificate is not signed by the root")
        epk_t = eph.public.to_point()
        if not ec_verify(cvc.public, _card_input(epk_c.value, epk_t, self._r_card), sig_c.value):
            raise AuthError("the card's signature does not verify")
        self.card_certificate = cvc
        z = eph.ecdh(peer)
        self._ephemeral = None
        return session_from_shared_secret(z, eph.curve)


@dataclass(frozen=True)
class CardAuthResult:
    """What the card answers (the 7C template) and the session it starts afterwards."""

    response: bytes
    session: SmSession


def card_authenticate(
    data: bytes,
    *,
    terminal: EcPublicKey,
    r_card: bytes,
    card_key: EcKeyPair,
    card_certificate: bytes,
    rng: CardRng,
) -> CardAuthResult:
    """The card's side of step 3: check sig_T, answer with ePK_C, sig_C and the card CVC.

    Args:
        data: the GENERAL AUTHENTICATE data, 7C { 80 ePK_T, 81 sig_T }.
        terminal: the public key of the terminal certificate verified in step 1.
        r_card: the challenge the card gave in step 2 (used once).
        card_key: the card's certified static key.
        card_certificate: the card's CV certificate.
        rng: the card's RNG (for the ephemeral key).

    Raises:
        AuthError: a malformed template, a point off the curve, a wrong signature.
    """
    try:
        obj = tlv.Tlv.from_bytes(data, allow_padding=False)
        if obj.tag != TAG_DYNAMIC:
            raise AuthError("not a 7C template")
        epk_t, sig_t = obj.find(TAG_EPK_T), obj.find(TAG_SIG_T)
        if epk_t is None or sig_t is None:
            raise AuthError("7C needs 80 and 81")
        if terminal.curve != card_key.curve:
            raise AuthError("terminal and card keys are on different curves")
        peer = EcPublicKey.from_point(card_key.curve, epk_t.value)
    except (tlv.TlvError, ValueError) as e:
        raise AuthError(str(e)) from None
    if not ec_verify(terminal, _terminal_input(r_card, epk_t.value), sig_t.value):
        raise AuthError("the terminal's signature does not verify")
    eph = EcKeyPair.generate(card_key.curve, rng)
    epk_c = eph.public.to_point()
    sig_c = ec_sign(
        card_key.cryptography_key, card_key.curve, _card_input(epk_c, epk_t.value, r_card)
    )
    response = tlv.build(
        TAG_DYNAMIC, [(TAG_EPK_C, epk_c), (TAG_SIG_C, sig_c), (TAG_CARD_CVC, card_certificate)]
    )
    return CardAuthResult(response, session_from_shared_secret(eph.ecdh(peer), card_key.curve))
