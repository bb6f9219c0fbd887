"""The sending entity of an OTA server: script -> secured packet -> SMS-PP -> ENVELOPE, and back.

    sender = OtaSender(keyset, tar=TAR_ISD)
    msg = sender.secure(RamScript().get_status().expanded())   # counter + 1
    for tpdu in msg.tpdus: ...                                   # SMS-DELIVERs for an SMS centre
    for apdu in msg.envelopes: ...                               # or ENVELOPEs straight to a card
    por = sender.open_por(user_data)                             # the DELIVER-REPORT TP-UD
    por.status, por.commands_executed, por.responses

ETSI TS 102 225 (packets), 3GPP TS 31.115 (SMS), TS 31.111 §7.1.1.2 (the
ENVELOPE), TS 102 226 §5.2 (script responses). The counter is the server's:
it starts where `counter` says and goes up by one per packet (SPI counter mode
10 or 11); keep it with the card's record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from card.ota import cat, ram, scp80, sms
from card.ota.remote import TAR_ISD, is_rfm_tar
from card.ota.scp80 import OtaKeyset, ResponsePacket, ResponseStatus, Spi

#: The default originating address of OTA short messages (a short code of the OTA platform).
DEFAULT_ORIGINATOR = sms.Address("12345", 0x81)


def envelope_apdu(tpdu: bytes) -> bytes:
    """ENVELOPE (SMS-PP download, TS 102 221 §10.1.1, TS 31.111 §7.1.1.2): 80 C2 00 00 Lc D1.."""
    data = cat.sms_pp_download(tpdu)
    return bytes((0x80, 0xC2, 0x00, 0x00, len(data))) + data + b"\x00"


@dataclass(frozen=True)
class SecuredMessage:
    """One command packet and the ways to carry it."""

    packet: bytes
    counter: int
    tpdus: tuple[bytes, ...]

    @property
    def envelopes(self) -> tuple[bytes, ...]:
        return tuple(envelope_apdu(t) for t in self.tpdus)


@dataclass(frozen=True)
class ProofOfReceipt:
    """A proof of receipt checked and decoded."""

    packet: ResponsePacket
    #: compact: (executed, [(last data, last SW)]); expanded: one (data, SW) per command
    commands_executed: int | None = None
    responses: tuple[tuple[bytes, int], ...] = ()

    @property
    def status(self) -> ResponseStatus | int:
        return self.packet.status

    @property
    def ok(self) -> bool:
        """RSC 00 and every command answered without error."""
        return self.packet.ok and all(ram.is_ok(sw) for _, sw in self.responses)

    @property
    def last_sw(self) -> int | None:
        return self.responses[-1][1] if self.responses else None


@dataclass
class OtaSender:
    """Secures scripts for one card's TAR under one key set."""

    keyset: OtaKeyset | None
    tar: bytes = TAR_ISD
    spi: Spi = field(default_factory=Spi)
    counter: int = 0
    originator: sms.Address = DEFAULT_ORIGINATOR
    concat_reference: int = 0

    def secure(self, script: bytes, *, counter: int | None = None) -> SecuredMessage:
        """The next command packet (counter + 1 unless given) and its SMS-DELIVER TPDUs."""
        if counter is None:
            self.counter += 1
            counter = self.counter
        packet = scp80.build_command_packet(
            script, spi=self.spi, tar=self.tar, counter=counter, keyset=self.keyset
        )
        self.concat_reference = (self.concat_reference + 1) & 0xFF
        uds = sms.segment_command_packet(packet, self.concat_reference)
        last = len(uds) - 1
        tpdus = tuple(
            sms.SmsDeliver(self.originator, ud, more_messages=i < last).to_bytes()
            for i, ud in enumerate(uds)
        )
        return SecuredMessage(packet, counter, tpdus)

    def open_por(self, user_data: bytes) -> ProofOfReceipt:
        """Check a PoR's TP-UD (`02 71 00` RPL ...) and decode its script response.

        Raises:
            card.ota.sms.SmsError, card.ota.scp80.PacketError: it does not decode.
            card.ota.scp80.SecurityError: its CC does not verify.
        """
        packet = sms.response_packet_of(user_data)
        kic = self.keyset.kic_byte if self.keyset else 0
        kid = self.keyset.kid_byte if self.keyset else 0
        rp = scp80.open_response_packet(packet, spi=self.spi, kic=kic, kid=kid, keyset=self.keyset)
        if rp.tar != self.tar:
            raise scp80.PacketError("the PoR names another TAR")
        if not rp.ok or not rp.data or not (self.tar == TAR_ISD or is_rfm_tar(self.tar)):
            return ProofOfReceipt(rp)  # an application's own TAR: its data as it is
        if rp.data[:1] in (
            bytes((ram.TAG_RESPONSE_SCRIPT,)),
            bytes((ram.TAG_RESPONSE_SCRIPT_INDEFINITE,)),
        ):
            n, rapdus = ram.parse_expanded_response(rp.data)
            return ProofOfReceipt(rp, n, tuple(rapdus))
        n, sw, data = ram.parse_compact_response(rp.data)
        return ProofOfReceipt(rp, n, ((data, sw),))

    def open_por_tpdu(self, tpdu: bytes) -> ProofOfReceipt:
        """A PoR that came back as an SMS-SUBMIT (SPI b6 = 1)."""
        return self.open_por(sms.SmsSubmit.from_bytes(tpdu).user_data)

    def open_por_parts(self, user_data: list[bytes]) -> ProofOfReceipt:
        """A PoR that came back in concatenated short messages (their TP-UD, any order)."""
        packet = sms.reassemble_response(user_data)
        return self.open_por(sms.response_user_data(packet))
