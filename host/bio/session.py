"""The terminal side of match-on-card: a recipe over any reader (ISO/IEC 7816-11, PIV-style).

    session = BioSession(reader)
    session.select()
    bits = session.read_bits()                 # what the card expects (7F61)
    session.authenticate_admin(key)            # GET CHALLENGE + EXTERNAL AUTHENTICATE
    session.enrol(0x96, minutiae, subtype=0x09)
    result = session.verify(0x96, minutiae)    # VerifyResult: the decision, never a score
    Sensor(session).present(captured)          # a finger presented (fitted to the BIT)

The "finger presented" event of a sensor card is `verify`: the captured minutiae
go to the card as VERIFY data, as PIV on-card comparison sends them. Only
unexpected status words raise `ApduError`; a non-match is a result, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from applets.biometric import bit
from applets.biometric.applet import (
    ADMIN_KEY_REFERENCE,
    BIO_AID,
    CHALLENGE_SIZE,
    TAG_POLICY,
    TAG_POLICY_ADMIN_KEY,
    TAG_POLICY_MINUTIAE,
    TAG_POLICY_RETRY_LIMIT,
    TAG_POLICY_THRESHOLD,
)
from applets.biometric.iso19794 import Minutia, build_biometric_data
from card import tlv
from card.crypto.cmac import aes_ecb_encrypt
from card.sw import SW, retries_left
from host.errors import ApduError
from host.readers.base import Reader
from host.session import AppletSession, encode_command


@dataclass(frozen=True)
class VerifyResult:
    """What the card said to a VERIFY: the decision and what it costs, never a score."""

    sw: int
    matched: bool
    blocked: bool
    tries_left: int | None


def policy_object(
    *,
    retry_limit: int | None = None,
    threshold: int | None = None,
    minutiae: tuple[int, int] | None = None,
    admin_key: bytes | None = None,
) -> bytes:
    """The applet's E1 policy object (install parameters, PUT DATA, STORE DATA)."""
    parts: list[tuple[int, bytes]] = []
    if retry_limit is not None:
        parts.append((TAG_POLICY_RETRY_LIMIT, bytes((retry_limit,))))
    if threshold is not None:
        parts.append((TAG_POLICY_THRESHOLD, threshold.to_bytes(2, "big")))
    if minutiae is not None:
        parts.append((TAG_POLICY_MINUTIAE, bytes(minutiae)))
    if admin_key is not None:
        parts.append((TAG_POLICY_ADMIN_KEY, bytes(admin_key)))
    return tlv.build(TAG_POLICY, parts)


def enrolment_objects(
    reference: int, minutiae: Sequence[Minutia] | bytes, subtype: int = 0
) -> bytes:
    """`7F60 { 83 ref, A1 { 82 subtype } } 7F2E { 81 minutiae }`: one finger to enrol."""
    head = tlv.build(
        bit.TAG_BIT,
        [
            (bit.TAG_REFERENCE, bytes((reference,))),
            (bit.TAG_BHT, [(bit.TAG_SUBTYPE, bytes((subtype,)))]),
        ],
    )
    return head + build_biometric_data(minutiae)


class BioSession(AppletSession):
    """Talk to the biometric applet through a reader (`AppletSession.send`: 61xx fetched
    and 6Cxx resent below it, any SW but 9000 an `ApduError`)."""

    def __init__(self, reader: Reader, aid: bytes = BIO_AID) -> None:
        super().__init__(reader, aid)

    def select(self) -> None:
        self.send(0x00, 0xA4, 0x04, 0x0C, self.aid, what="SELECT")

    def read_bits(self) -> tuple[bit.BiometricInfo, ...]:
        """The BIT group, read as PIV does (GET DATA 3FFF, tag list 5C 7F61)."""
        tag_list = bytes.fromhex("5C027F61")
        return bit.parse_group(self.send(0x00, 0xCB, 0x3F, 0xFF, tag_list, 0, what="GET DATA 7F61"))

    def authenticate_admin(self, key: bytes) -> None:
        """GET CHALLENGE, then EXTERNAL AUTHENTICATE with AES-128(key, challenge).

        Raises:
            ApduError: the card refused (63Cx: wrong key, with tries left; 6983: blocked).
        """
        challenge = self.send(0x00, 0x84, 0x00, 0x00, le=CHALLENGE_SIZE, what="GET CHALLENGE")
        crypt = aes_ecb_encrypt(key, challenge)
        self.send(0x00, 0x82, 0x00, ADMIN_KEY_REFERENCE, crypt, what="EXTERNAL AUTHENTICATE")

    def put_data(self, objects: bytes) -> None:
        self.send(0x00, 0xDB, 0x3F, 0xFF, objects, what="PUT DATA")

    def enrol(self, reference: int, minutiae: Sequence[Minutia] | bytes, subtype: int = 0) -> None:
        """Enrol (or replace) a finger; needs `authenticate_admin` first."""
        self.put_data(enrolment_objects(reference, minutiae, subtype))

    def verify_apdu(self, reference: int, minutiae: Sequence[Minutia] | bytes) -> bytes:
        """The VERIFY command carrying a minutiae set (extended length when it needs it)."""
        return encode_command(0x00, 0x20, 0x00, reference, build_biometric_data(minutiae))

    def verify(self, reference: int, minutiae: Sequence[Minutia] | bytes) -> VerifyResult:
        """A finger presented: send its minutiae, get the card's decision."""
        return self._decision(self.verify_apdu(reference, minutiae))

    def status(self, reference: int) -> VerifyResult:
        """An empty VERIFY: verified in this session, tries left, or blocked."""
        return self._decision(encode_command(0x00, 0x20, 0x00, reference))

    def _decision(self, verify: bytes) -> VerifyResult:
        """9000 (a match), 63Cx (no match, x tries left) or 6983 (blocked) as a result;
        any other status word an `ApduError` (ISO/IEC 7816-4 §11.5.6)."""
        try:
            self.send_apdu(verify, "VERIFY")
        except ApduError as e:
            if e.sw != SW.AUTH_METHOD_BLOCKED and retries_left(e.sw) is None:
                raise
            return _result(e.sw)
        return _result(SW.SUCCESS)


class TooFewMinutiae(ValueError):
    """A capture with fewer minutiae than the card's BIT accepts: ask for the finger again."""


def fit_to_bit(minutiae: Sequence[Minutia], info: bit.BiometricInfo) -> tuple[Minutia, ...]:
    """What a terminal sends for a BIT: at most its maximum, keeping the minutiae nearest the
    centre of mass (NIST MINEX II's pruning), sorted as its minutiae order asks (none here).

    Raises:
        TooFewMinutiae: fewer than the BIT's minimum.
    """
    ms = list(minutiae)
    if len(ms) < info.min_minutiae:
        raise TooFewMinutiae(f"{len(ms)} minutiae, the card needs at least {info.min_minutiae}")
    if len(ms) > info.max_minutiae:
        cx = sum(m.x for m in ms) / len(ms)
        cy = sum(m.y for m in ms) / len(ms)
        ms = sorted(ms, key=lambda m: (m.x - cx) ** 2 + (m.y - cy) ** 2)[: info.max_minutiae]
    return tuple(ms)


class Sensor:
    """The fingerprint sensor of seed 002's card, seen from the host.

    A "finger presented" event is a captured minutiae set; the sensor hands it to
    the card through the terminal as VERIFY data, for the finger the BIT names.
    """

    def __init__(self, session: BioSession) -> None:
        self.session = session
        self._bits: tuple[bit.BiometricInfo, ...] | None = None

    def bits(self) -> tuple[bit.BiometricInfo, ...]:
        if self._bits is None:
            self._bits = self.session.read_bits()
        return self._bits

    def present(self, minutiae: Sequence[Minutia], reference: int | None = None) -> VerifyResult:
        """A finger presented: fit the capture to the BIT, send it, return the card's decision.

        Raises:
            LookupError: the card has no finger enrolled (or none under `reference`).
            TooFewMinutiae: the capture is too poor to send.
        """
        bits = self.bits()
        info = next((b for b in bits if reference is None or b.reference == reference), None)
        if info is None:
            raise LookupError(
                "no finger enrolled" + (f" under {reference:02X}" if reference else "")
            )
        return self.session.verify(info.reference, fit_to_bit(minutiae, info))


def _result(sw: int) -> VerifyResult:
    return VerifyResult(sw, sw == 0x9000, sw == 0x6983, retries_left(sw))
