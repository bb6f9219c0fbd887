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
from card.apdu import CommandApdu
from card.crypto.cmac import aes_ecb_encrypt
from card.sw import retries_left
from host.errors import ApduError
from host.readers.base import Reader
from host.readers.wrappers import GetResponseReader


@dataclass(frozen=True)
class VerifyResult:
    """What the card said to a VERIFY: the decision and what it costs, never a score."""

    sw: int
    matched: bool
    blocked: bool
    tries_left: int | None


def _short_or_extended(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
    return CommandApdu(cla, ins, p1, p2, data, le).to_bytes()


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


class BioSession:
    """Talk to the biometric applet through a reader."""

    def __init__(self, reader: Reader, aid: bytes = BIO_AID) -> None:
        # 61xx is fetched (and 6Cxx resent) by the bounded GetResponseReader, as every
        # client does: a card that keeps announcing data ends in ReaderError.
        self.reader: Reader = (
            reader if isinstance(reader, GetResponseReader) else GetResponseReader(reader)
        )
        self.aid = aid

    def _send(self, apdu: bytes, what: str, ok: Sequence[int] = (0x9000,)) -> tuple[bytes, int]:
        resp = self.reader.transmit(apdu)
        data, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        if sw not in ok and not (sw >> 4 == 0x63C and any(o >> 4 == 0x63C for o in ok)):
            raise ApduError(sw, data, what)
        return data, sw

    def select(self) -> None:
        self._send(_short_or_extended(0, 0xA4, 0x04, 0x0C, self.aid, None), "SELECT")

    def read_bits(self) -> tuple[bit.BiometricInfo, ...]:
        """The BIT group, read as PIV does (GET DATA 3FFF, tag list 5C 7F61)."""
        data, _ = self._send(bytes.fromhex("00CB3FFF045C027F6100"), "GET DATA 7F61")
        return bit.parse_group(data)

    def authenticate_admin(self, key: bytes) -> None:
        """GET CHALLENGE, then EXTERNAL AUTHENTICATE with AES-128(key, challenge).

        Raises:
            ApduError: the card refused (63Cx: wrong key, with tries left; 6983: blocked).
        """
        challenge, _ = self._send(bytes((0, 0x84, 0, 0, CHALLENGE_SIZE)), "GET CHALLENGE")
        crypt = aes_ecb_encrypt(key, challenge)
        self._send(
            bytes((0, 0x82, 0, ADMIN_KEY_REFERENCE, len(crypt))) + crypt, "EXTERNAL AUTHENTICATE"
        )

    def put_data(self, objects: bytes) -> None:
        self._send(_short_or_extended(0, 0xDB, 0x3F, 0xFF, objects, None), "PUT DATA")

    def enrol(self, reference: int, minutiae: Sequence[Minutia] | bytes, subtype: int = 0) -> None:
        """Enrol (or replace) a finger; needs `authenticate_admin` first."""
        self.put_data(enrolment_objects(reference, minutiae, subtype))

    def verify_apdu(self, reference: int, minutiae: Sequence[Minutia] | bytes) -> bytes:
        """The VERIFY command carrying a minutiae set (extended length when it needs it)."""
        return _short_or_extended(0, 0x20, 0x00, reference, build_biometric_data(minutiae), None)

    def verify(self, reference: int, minutiae: Sequence[Minutia] | bytes) -> VerifyResult:
        """A finger presented: send its minutiae, get the card's decision."""
        _, sw = self._send(
            self.verify_apdu(reference, minutiae), "VERIFY", (0x9000, 0x63C0, 0x6983)
        )
        return _result(sw)

    def status(self, reference: int) -> VerifyResult:
        """An empty VERIFY: verified in this session, tries left, or blocked."""
        _, sw = self._send(bytes((0, 0x20, 0, reference)), "VERIFY", (0x9000, 0x63C0, 0x6983))
        return _result(sw)


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
