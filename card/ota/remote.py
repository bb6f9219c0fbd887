"""The receiving entity of a UICC: one command packet in, one proof of receipt out.

ETSI TS 102 225 §5-§6 and TS 102 226 §8.2.1.3.2.4 in this order, each refusal
answered with its Response Status Code (when the SPI asks for a PoR):

1. the header does not decode: the packet is dropped, no PoR (nothing in it
   can be trusted, not even the TAR to answer);
2. a digital signature asked for, in either direction (this card holds no DS
   keys): 06 unidentified security error;
3. no application for the TAR: 09 TAR unknown;
4. the SPI below the TAR's minimum security level: 0A insufficient security level;
5. no key set of the version KIc/KID name (or they name two): 06; a ciphered
   part that is not whole blocks or whose padding counter is impossible: 05
   ciphering error; an RC/CC that does not verify: 01 RC/CC/DS failed;
6. the counter (SPI b5-b4): 02 low, 03 high, 04 blocked;
7. the counter is written (one atomic write) and only then does the script run;
   the PoR carries its response with 00.

A PoR for refusals 2-5 goes out without CC and in clear: the card has not
authenticated the sender, so it cannot answer under its keys (and must not
confirm them by trial). A PoR for 6 and 7 is secured as the SPI asks.

Counters are kept per key set version (that of KID when there is a CC, else of
KIc): a real card's choice that keeps one counter per sender's key set, as
TS 102 225 §5.1.1 relates the counter to the key used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from card.ota import scp80
from card.ota.scp80 import (
    Checksum,
    CommandPacket,
    CounterMode,
    OtaKeyset,
    PacketError,
    PorMode,
    ResponseStatus,
    SecurityError,
)

#: The ISD's TAR (TS 102 226 §9.1 / TS 101 220 Annex D).
TAR_ISD = b"\x00\x00\x00"
#: Remote File Management TARs (TS 101 220 Annex D): B0 00 00 .. B0 FF FF.
TAR_RFM_FIRST = b"\xb0\x00\x00"
TAR_RFM_LAST = b"\xb0\xff\xff"
#: The USIM's RFM TARs (3GPP TS 31.116 §5: B0 00 10 .. B0 00 1F start at ADF.USIM).
TAR_RFM_USIM_FIRST = b"\xb0\x00\x10"
TAR_RFM_USIM_LAST = b"\xb0\x00\x1f"


def is_rfm_tar(tar: bytes) -> bool:
    return TAR_RFM_FIRST <= tar <= TAR_RFM_LAST


def is_usim_rfm_tar(tar: bytes) -> bool:
    return TAR_RFM_USIM_FIRST <= tar <= TAR_RFM_USIM_LAST


@dataclass(frozen=True)
class ReceivingEntity:
    """The callbacks a Security Domain gives: its TARs, key sets, counters, applications."""

    msl_for: Callable[[bytes], int | None]  # the TAR's MSL, None: TAR unknown
    keyset_for: Callable[[int], OtaKeyset | None]
    counter_of: Callable[[int], int]
    set_counter: Callable[[int, int], None]
    run: Callable[[CommandPacket, OtaKeyset | None], bytes]  # the script's response

    def process(self, packet: bytes) -> bytes | None:
        """The response packet (RPL..) to send back, or None (no PoR asked, nothing to answer)."""
        try:
            header, _ = scp80.parse_command_header(packet)
        except PacketError:
            return None
        spi = header.spi
        clear_counter = (
            int.from_bytes(packet[10:15], "big") if not spi.ciphered and len(packet) >= 15 else 0
        )

        def por(
            status: ResponseStatus,
            data: bytes = b"",
            keyset: OtaKeyset | None = None,
            counter: int = clear_counter,
        ) -> bytes | None:
            if spi.por == PorMode.NONE:
                return None
            if spi.por == PorMode.ON_ERROR and status == ResponseStatus.POR_OK:
                return None
            return scp80.build_response_packet(
                tar=header.tar,
                counter=counter,
                status=status,
                data=data,
                spi=spi if keyset is not None else None,
                kic=header.kic,
                kid=header.kid,
                keyset=keyset,
            )

        if Checksum.DS in (spi.checksum, spi.por_checksum):
            return por(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR)  # no DS keys on this card
        msl = self.msl_for(header.tar)
        if msl is None:
            return por(ResponseStatus.TAR_UNKNOWN)
        if not scp80.meets_msl(spi, msl):
            return por(ResponseStatus.INSUFFICIENT_SECURITY_LEVEL)
        uses_kid = spi.checksum == Checksum.CC
        uses_kic = spi.ciphered
        if uses_kid and uses_kic and header.kid_kvn != header.kic_kvn:
            return por(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR)
        kvn = header.kid_kvn if uses_kid else header.kic_kvn
        keyset = self.keyset_for(kvn) if (uses_kid or uses_kic) else None
        if (uses_kid or uses_kic) and keyset is None:
            return por(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR)
        try:
            opened = scp80.open_command_packet(packet, keyset)
        except SecurityError as e:
            return por(e.status)
        except PacketError:
            return None
        answer_keys = keyset if (uses_kid or uses_kic) else None
        if spi.counter in (CounterMode.HIGHER, CounterMode.ONE_HIGHER):
            try:
                scp80.check_counter(spi.counter, opened.counter, self.counter_of(kvn))
            except SecurityError as e:
                return por(e.status, keyset=answer_keys, counter=opened.counter)
            self.set_counter(kvn, opened.counter)
        response = self.run(opened, keyset)
        return por(ResponseStatus.POR_OK, response, answer_keys, opened.counter)
