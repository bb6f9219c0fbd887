"""GlobalPlatform Secure Channel Protocol '03' (Card Specification v2.3 Amendment D v1.1.2+).

Direction-neutral: the same `Scp03Session` serves the off-card entity (host:
`external_authenticate_command`, `wrap_command`, `unwrap_response`) and the
Security Domain (card: `check_external_authenticate`, `unwrap_command`,
`wrap_response`). Both ends keep the same state, the MAC chaining value and
the encryption counter, so one object per end and per session is all it takes.

Clause references are to Amendment D v1.1.2:

- §4.1.5 data derivation (`card.crypto.kdf.scp03_kdf`), §6.2.1 session keys,
  §6.2.2 cryptograms, §6.2.2.1 pseudo-random card challenge;
- §5.1 the "i" parameter, §7.1.1 INITIALIZE UPDATE, §7.1.2 EXTERNAL AUTHENTICATE;
- §6.2.4 C-MAC, §6.2.5 R-MAC, §6.2.6 C-DECRYPTION, §6.2.7 R-ENCRYPTION;
- §5.1.2 security levels; §7.2 key data for PUT KEY (AES key component
  encrypted under the static DEK, with the key check value of GPC v2.3 B.6).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import IntFlag

from card.apdu import ApduFormatError, CommandApdu
from card.crypto.cmac import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    aes_ecb_encrypt,
    pad80,
    unpad80,
)
from card.crypto.kdf import Scp03Constant, scp03_kdf
from card.sw import SW, CardError

__all__ = [
    "GP_TEST_KEY",
    "INS_INITIALIZE_UPDATE",
    "INS_EXTERNAL_AUTHENTICATE",
    "SecurityLevel",
    "ScpParameter",
    "Scp03Error",
    "Scp03Keys",
    "SessionKeys",
    "InitializeUpdateResponse",
    "Scp03Session",
    "check_security_level",
    "derive_session_keys",
    "pseudo_random_card_challenge",
    "initialize_update_command",
    "is_error_sw",
    "has_secure_messaging",
    "aes_kcv",
    "encode_key_data",
    "decode_key_data",
]

INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82

#: The GlobalPlatform test key '40 41 ... 4F' that cards leave the factory with.
GP_TEST_KEY = bytes(range(0x40, 0x50))

_SCP_ID = 0x03
_BLOCK = 16
_ZERO_BLOCK = b"\x00" * _BLOCK
_KEY_DIV_LEN = 10
_SEQ_LEN = 3
_KEY_TYPE_AES = 0x88  # GPC v2.3 Table 11-16


class SecurityLevel(IntFlag):
    """Security level (P1 of EXTERNAL AUTHENTICATE), Amendment D §5.1.2 / §7.1.2.2."""

    NONE = 0x00
    C_MAC = 0x01
    C_DECRYPTION = 0x02
    R_MAC = 0x10
    R_ENCRYPTION = 0x20


# Amendment D §7.1.2.2: C-DECRYPTION needs C-MAC, R-ENCRYPTION needs both
# C-DECRYPTION and R-MAC, so only these six combinations exist.
_VALID_LEVELS = frozenset({0x00, 0x01, 0x03, 0x11, 0x13, 0x33})


def check_security_level(level: int) -> SecurityLevel:
    """The security level, if it is one of 00/01/03/11/13/33.

    Raises:
        Scp03Error: any other value (6A86, as a card answers to a bad P1).
    """
    if level not in _VALID_LEVELS:
        raise Scp03Error(SW.INCORRECT_P1P2, f"security level {level:02X} is not 00/01/03/11/13/33")
    return SecurityLevel(level)


class ScpParameter(IntFlag):
    """The SCP03 "i" parameter, Amendment D §5.1 Table 5-1."""

    S16 = 0x01  # 16-byte challenges, cryptograms and MACs (else S8: 8 bytes)
    PSEUDO_RANDOM_CHALLENGE = 0x10
    R_MAC = 0x20
    R_ENCRYPTION = 0x40


class Scp03Error(CardError):
    """A secure-channel failure: bad cryptogram or MAC, padding, or a session not open.

    It is a `CardError` so that a card can let it through as its status word
    (6982 by default, GPC v2.3 §11.1.5 / Amendment D §7.1.2.3); the host wraps
    it into its own error type.
    """

    def __init__(self, sw: int = SW.SECURITY_STATUS_NOT_SATISFIED, reason: str = "") -> None:
        super().__init__(sw)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.sw:04X}: {self.reason}" if self.reason else super().__str__()


# -- Static keys ---------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Scp03Keys:
    """A static SCP03 key set: K-ENC, K-MAC, K-DEK and its key version number.

    All three keys are AES keys of the same length (16, 24 or 32 bytes).
    `repr` shows the key version and the key check values, never the keys.
    """

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0x30

    def __post_init__(self) -> None:
        for name in ("enc", "mac", "dek"):
            v = getattr(self, name)
            if not isinstance(v, bytes):
                object.__setattr__(self, name, bytes(v))
        n = len(self.enc)
        if n not in (16, 24, 32) or len(self.mac) != n or len(self.dek) != n:
            raise ValueError("ENC, MAC and DEK must be AES keys of one length: 16, 24 or 32 bytes")
        if not 0 <= self.kvn <= 0xFF:
            raise ValueError(f"key version {self.kvn} is not a byte")

    @classmethod
    def single(cls, key: bytes, kvn: int = 0x30) -> Scp03Keys:
        """One key used as ENC, MAC and DEK (as GP test cards ship: 40..4F)."""
        return cls(key, key, key, kvn)

    @classmethod
    def test_keys(cls, kvn: int = 0x30) -> Scp03Keys:
        """The GlobalPlatform default test key set 404142...4F for all three keys."""
        return cls.single(GP_TEST_KEY, kvn)

    @property
    def key_bits(self) -> int:
        return 8 * len(self.enc)

    def __repr__(self) -> str:
        kcvs = "/".join(aes_kcv(k).hex().upper() for k in (self.enc, self.mac, self.dek))
        return f"Scp03Keys(kvn={self.kvn:02X}, AES-{self.key_bits}, kcv={kcvs})"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """S-ENC, S-MAC and S-RMAC of one session (Amendment D §6.2.1)."""

    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes

    def __repr__(self) -> str:
        return f"SessionKeys(AES-{8 * len(self.s_enc)})"


def derive_session_keys(
    keys: Scp03Keys, host_challenge: bytes, card_challenge: bytes
) -> SessionKeys:
    """Session keys from the static keys and both challenges (Amendment D §6.2.1).

    Context is host challenge || card challenge; L is the static key length.
    """
    ctx = host_challenge + card_challenge
    bits = keys.key_bits
    return SessionKeys(
        s_enc=scp03_kdf(keys.enc, Scp03Constant.S_ENC, ctx, bits),
        s_mac=scp03_kdf(keys.mac, Scp03Constant.S_MAC, ctx, bits),
        s_rmac=scp03_kdf(keys.mac, Scp03Constant.S_RMAC, ctx, bits),
    )


def pseudo_random_card_challenge(
    keys: Scp03Keys, sequence_counter: int, aid: bytes, *, s16: bool = False
) -> bytes:
    """The pseudo-random card challenge (Amendment D §6.2.2.1).

    KDF(K-ENC, constant 02, sequence counter (3 bytes) || AID of the Security
    Domain, L = 64 or 128 bits).

    Raises:
        ValueError: the counter does not fit in 3 bytes.
    """
    if not 0 <= sequence_counter <= 0xFFFFFF:
        raise ValueError(f"sequence counter {sequence_counter} does not fit in 3 bytes")
    ctx = sequence_counter.to_bytes(_SEQ_LEN, "big") + aid
    return scp03_kdf(keys.enc, Scp03Constant.CARD_CHALLENGE, ctx, 128 if s16 else 64)


def initialize_update_command(
    host_challenge: bytes, kvn: int = 0x00, channel_cla: int = 0x80
) -> bytes:
    """INITIALIZE UPDATE, Amendment D §7.1.1: 80 50 KVN 00 Lc host-challenge 00.

    Args:
        host_challenge: 8 bytes (S8 mode) or 16 bytes (S16 mode).
        kvn: key version number; 00 lets the card use its first available key set.
        channel_cla: the CLA byte, carrying the logical channel.
    """
    if len(host_challenge) not in (8, 16):
        raise ValueError("the host challenge has 8 (S8) or 16 (S16) bytes")
    return CommandApdu(
        channel_cla, INS_INITIALIZE_UPDATE, kvn, 0x00, host_challenge, 256
    ).to_bytes()


@dataclass(frozen=True)
class InitializeUpdateResponse:
    """The INITIALIZE UPDATE response data (Amendment D §7.1.1.6 Table 7-3).

    key diversification data (10) || key version || 03 || i || card challenge
    || card cryptogram || sequence counter (3, present when the challenge is
    pseudo-random).
    """

    key_div_data: bytes
    kvn: int
    i: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: int | None = None

    @property
    def s16(self) -> bool:
        return bool(self.i & ScpParameter.S16)

    @classmethod
    def from_bytes(cls, data: bytes) -> InitializeUpdateResponse:
        """Parse the response data (without SW).

        Raises:
            ValueError: not an SCP03 response, or the length fits no layout.
        """
        if len(data) < _KEY_DIV_LEN + 3:
            raise ValueError(f"INITIALIZE UPDATE response of {len(data)} bytes is too short")
        kvn, scp, i = data[10], data[11], data[12]
        if scp != _SCP_ID:
            raise ValueError(f"the card answered for SCP {scp:02X}, not SCP03")
        n = 16 if i & ScpParameter.S16 else 8
        body = data[13:]
        if len(body) == 2 * n:
            seq = None
        elif len(body) == 2 * n + _SEQ_LEN:
            seq = int.from_bytes(body[2 * n :], "big")
        else:
            raise ValueError(f"INITIALIZE UPDATE response of {len(data)} bytes fits no layout")
        return cls(data[:10], kvn, i, body[:n], body[n : 2 * n], seq)

    def to_bytes(self) -> bytes:
        if len(self.key_div_data) != _KEY_DIV_LEN:
            raise ValueError("key diversification data has 10 bytes")
        n = 16 if self.s16 else 8
        if len(self.card_challenge) != n or len(self.card_cryptogram) != n:
            raise ValueError(f"challenge and cryptogram have {n} bytes in this mode")
        out = self.key_div_data + bytes((self.kvn, _SCP_ID, self.i))
        out += self.card_challenge + self.card_cryptogram
        if self.sequence_counter is not None:
            out += self.sequence_counter.to_bytes(_SEQ_LEN, "big")
        return out


# -- Helpers on the wire format ------------------------------------------------


def is_error_sw(sw: int) -> bool:
    """Whether a response gets no R-MAC and no data (Amendment D §6.2.5).

    Every status word except 9000 and the warnings 62xx/63xx is an error.
    """
    return not (sw == 0x9000 or sw >> 8 in (0x62, 0x63))


def has_secure_messaging(cla: int) -> bool:
    """Whether CLA announces GlobalPlatform secure messaging (GPC v2.3 §11.1.4)."""
    if cla & 0x40:  # further interindustry class: b6 is the SM indication
        return bool(cla & 0x20)
    return bool(cla & 0x04)


def _set_sm(cla: int) -> int:
    return cla | (0x20 if cla & 0x40 else 0x04)


def _clear_sm(cla: int) -> int:
    return cla & ~(0x20 if cla & 0x40 else 0x0C) & 0xFF


def _mac_cla(cla: int) -> int:
    # Amendment D §6.2.4: for the MAC the logical channel number is set to zero
    # and the SM indication to "GP proprietary", so the MAC does not depend on
    # the channel the command travels on.
    if cla & 0x40:
        return (cla & 0xF0) | 0x20
    return (cla & 0xF0) | 0x04


def aes_kcv(key: bytes) -> bytes:
    """AES key check value: the first 3 bytes of AES-ECB(key, 16 x 01) (GPC v2.3 B.6)."""
    return aes_ecb_encrypt(key, b"\x01" * _BLOCK)[:3]


def encode_key_data(key: bytes, dek: bytes) -> bytes:
    """One key of a PUT KEY data field for SCP03 (Amendment D §7.2, GPC v2.3 §11.8.2.3).

    88 (AES) || length || key length || AES-CBC(DEK, zero ICV, key padded with
    00 to a block) || 03 || KCV.
    """
    if len(key) not in (16, 24, 32):
        raise ValueError("an SCP03 key is an AES key of 16, 24 or 32 bytes")
    padded = key + b"\x00" * (-len(key) % _BLOCK)
    block = bytes((len(key),)) + aes_cbc_encrypt(dek, _ZERO_BLOCK, padded)
    kcv = aes_kcv(key)
    return bytes((_KEY_TYPE_AES, len(block))) + block + bytes((len(kcv),)) + kcv


def decode_key_data(data: bytes, dek: bytes) -> tuple[bytes, bytes, bytes]:
    """Parse one key of a PUT KEY data field and decrypt it under the DEK.

    Returns:
        (key, kcv as sent, the bytes that follow this key).

    Raises:
        Scp03Error: the layout is wrong (6A80) or the KCV does not match the key.
    """
    try:
        key_type, n = data[0], data[1]
        block = data[2 : 2 + n]
        kcv_len = data[2 + n]
        kcv = data[3 + n : 3 + n + kcv_len]
        rest = data[3 + n + kcv_len :]
    except IndexError:
        raise Scp03Error(SW.WRONG_DATA, "truncated key data") from None
    if key_type != _KEY_TYPE_AES:
        raise Scp03Error(SW.WRONG_DATA, f"key type {key_type:02X} is not AES (88)")
    if len(block) != n or len(kcv) != kcv_len or n < 1:
        raise Scp03Error(SW.WRONG_DATA, "truncated key data")
    key_len, enc = block[0], block[1:]
    if key_len not in (16, 24, 32) or len(enc) % _BLOCK or len(enc) < key_len:
        raise Scp03Error(SW.WRONG_DATA, "key component length does not fit an AES key")
    key = aes_cbc_decrypt(dek, _ZERO_BLOCK, enc)[:key_len]
    if kcv_len and not hmac.compare_digest(kcv, aes_kcv(key)[:kcv_len]):
        raise Scp03Error(SW.WRONG_DATA, "key check value does not match the key")
    return key, kcv, rest


# -- The session ---------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Scp03Session:
    """The state of one SCP03 session, the same at both ends.

    Create it with `derive` after INITIALIZE UPDATE. The host then sends
    `external_authenticate_command(level)`; the card checks that command with
    `check_external_authenticate`. From then on the host calls `wrap_command` /
    `unwrap_response` and the card `unwrap_command` / `wrap_response`, in
    strict alternation.
    """

    keys: SessionKeys
    host_challenge: bytes
    card_challenge: bytes
    s16: bool = False
    level: SecurityLevel | None = None  # None until EXTERNAL AUTHENTICATE succeeds
    mac_chaining_value: bytes = _ZERO_BLOCK
    counter: int = 0  # the encryption counter of the last command
    closed: bool = False
    card_cryptogram: bytes = field(init=False)
    host_cryptogram: bytes = field(init=False)

    def __post_init__(self) -> None:
        n = self.challenge_len
        if len(self.host_challenge) != n or len(self.card_challenge) != n:
            raise ValueError(f"challenges have {n} bytes in {'S16' if self.s16 else 'S8'} mode")
        ctx = self.host_challenge + self.card_challenge
        bits = 8 * n
        # §6.2.2.2 / §6.2.2.3: both cryptograms are derived from S-MAC.
        self.card_cryptogram = scp03_kdf(self.keys.s_mac, Scp03Constant.CARD_CRYPTOGRAM, ctx, bits)
        self.host_cryptogram = scp03_kdf(self.keys.s_mac, Scp03Constant.HOST_CRYPTOGRAM, ctx, bits)

    @classmethod
    def derive(
        cls, keys: Scp03Keys, host_challenge: bytes, card_challenge: bytes, *, s16: bool = False
    ) -> Scp03Session:
        """Start a session: derive S-ENC/S-MAC/S-RMAC and both cryptograms."""
        return cls(
            derive_session_keys(keys, host_challenge, card_challenge),
            host_challenge,
            card_challenge,
            s16,
        )

    @property
    def challenge_len(self) -> int:
        """8 bytes in S8 mode, 16 in S16 mode (challenges, cryptograms and MACs alike)."""
        return 16 if self.s16 else 8

    mac_len = challenge_len

    @property
    def authenticated(self) -> bool:
        return self.level is not None and not self.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self.level is not None else "pending"
        lvl = f"{int(self.level):02X}" if self.level is not None else "--"
        return f"Scp03Session({state}, level={lvl}, counter={self.counter})"

    def terminate(self) -> None:
        """End the session: every later wrap or unwrap fails (Amendment D §5.1.3)."""
        self.closed = True
        self.level = None

    # -- crypto pieces

    def _mac(self, header_and_data: bytes) -> bytes:
        self.mac_chaining_value = aes_cmac(
            self.keys.s_mac, self.mac_chaining_value + header_and_data
        )
        return self.mac_chaining_value[: self.mac_len]

    def _expected_mac(self, header_and_data: bytes) -> tuple[bytes, bytes]:
        full = aes_cmac(self.keys.s_mac, self.mac_chaining_value + header_and_data)
        return full, full[: self.mac_len]

    def _rmac(self, data: bytes, sw: int) -> bytes:
        # §6.2.5: R-MAC over the chaining value of the command just MACed, the
        # response data and the SW; it does not change the chaining value.
        msg = self.mac_chaining_value + data + sw.to_bytes(2, "big")
        return aes_cmac(self.keys.s_rmac, msg)[: self.mac_len]

    def _icv(self, response: bool) -> bytes:
        block = bytearray(self.counter.to_bytes(_BLOCK, "big"))
        if response:  # §6.2.7: the counter block with its first byte set to 80
            block[0] = 0x80
        return aes_ecb_encrypt(self.keys.s_enc, bytes(block))

    def _require_open(self) -> SecurityLevel:
        if self.closed or self.level is None:
            raise Scp03Error(SW.SECURITY_STATUS_NOT_SATISFIED, "no secure channel session is open")
        return self.level

    # -- EXTERNAL AUTHENTICATE (§7.1.2)

    def external_authenticate_command(self, level: int, cla: int = 0x80) -> bytes:
        """Host: build EXTERNAL AUTHENTICATE and enter `level`.

        84 82 SL 00 Lc host-cryptogram C-MAC. It is MACed (from a zero
        chaining value) but never encrypted, and it does not count as a
        command for the encryption counter.
        """
        lvl = check_security_level(level)
        if self.closed:
            raise Scp03Error(reason="the session was terminated")
        self.mac_chaining_value = _ZERO_BLOCK
        self.counter = 0
        out = self._mac_and_assemble(
            CommandApdu(cla, INS_EXTERNAL_AUTHENTICATE, int(lvl), 0x00, self.host_cryptogram)
        )
        self.level = lvl
        return out

    def check_external_authenticate(self, apdu: bytes) -> SecurityLevel:
        """Card: verify EXTERNAL AUTHENTICATE, then enter the requested level.

        Raises:
            Scp03Error: 6A86 for a bad security level, 6300 when the host
                cryptogram is wrong, 6982 when the C-MAC is wrong or missing
                (and the session is then terminated).
        """
        if self.closed:
            raise Scp03Error(reason="the session was terminated")
        cmd = CommandApdu.from_bytes(apdu)
        if cmd.ins != INS_EXTERNAL_AUTHENTICATE or not has_secure_messaging(cmd.cla):
            self.terminate()
            raise Scp03Error(reason="EXTERNAL AUTHENTICATE without secure messaging")
        try:
            lvl = check_security_level(cmd.p1)
        except Scp03Error:
            self.terminate()
            raise
        if len(cmd.data) != self.challenge_len + self.mac_len:
            self.terminate()
            raise Scp03Error(SW.WRONG_LENGTH, "EXTERNAL AUTHENTICATE data has the wrong length")
        self.mac_chaining_value = _ZERO_BLOCK
        self._verify_mac(cmd)
        if not hmac.compare_digest(cmd.data[: self.challenge_len], self.host_cryptogram):
            self.terminate()
            raise Scp03Error(SW.WARNING_NVM_CHANGED, "host cryptogram verification failed")
        self.counter = 0
        self.level = lvl
        return lvl

    # -- host direction

    def wrap_command(self, apdu: bytes) -> bytes:
        """Host: protect a command APDU at the session's level (§6.2.4, §6.2.6).

        The encryption counter is incremented for every command, with or
        without data; data, when present, is padded and encrypted under C-DEC;
        then the C-MAC is appended. A short Le becomes 00 when responses are
        protected, since the R-MAC (and padding) make the response longer than
        the caller asked for.

        Raises:
            Scp03Error: no session is open.
            ApduFormatError: `apdu` is not a well-formed command APDU.
            ValueError: the wrapped command would not fit an APDU.
        """
        level = self._require_open()
        cmd = CommandApdu.from_bytes(apdu)
        if not level & SecurityLevel.C_MAC:
            self.counter += 1
            return apdu
        self.counter += 1
        data = cmd.data
        if level & SecurityLevel.C_DECRYPTION and data:
            data = aes_cbc_encrypt(self.keys.s_enc, self._icv(False), pad80(data))
        le = cmd.le
        if le is not None and level & SecurityLevel.R_MAC:
            le = 65536 if cmd.extended else 256
        return self._mac_and_assemble(
            CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, le, cmd.extended)
        )

    def _mac_and_assemble(self, cmd: CommandApdu) -> bytes:
        n = len(cmd.data) + self.mac_len
        if n > 0xFFFF:
            raise ValueError(f"secured command data of {n} bytes does not fit an APDU")
        extended = cmd.extended or n > 255
        placeholder = b"\x00" * self.mac_len
        wire = CommandApdu(
            _set_sm(cmd.cla), cmd.ins, cmd.p1, cmd.p2, cmd.data + placeholder, cmd.le, extended
        ).to_bytes()
        lc_end = (7 if extended else 5) + len(cmd.data)
        mac = self._mac(bytes((_mac_cla(cmd.cla),)) + wire[1:lc_end])
        return wire[:lc_end] + mac + wire[lc_end + self.mac_len :]

    def unwrap_response(self, resp: bytes) -> bytes:
        """Host: verify the R-MAC and decrypt the response data (§6.2.5, §6.2.7).

        Error status words carry no R-MAC and pass through unchanged.

        Returns:
            The plain response: data || SW1 SW2.

        Raises:
            Scp03Error: the R-MAC is missing or wrong, or the padding is bad; the
                session is terminated.
        """
        level = self._require_open()
        if len(resp) < 2:
            raise ApduFormatError(f"a response has at least 2 bytes, got {len(resp)}")
        sw = int.from_bytes(resp[-2:], "big")
        if not level & SecurityLevel.R_MAC or is_error_sw(sw):
            return resp
        body = resp[:-2]
        if len(body) < self.mac_len:
            self.terminate()
            raise Scp03Error(reason=f"response to a protected command has no R-MAC ({sw:04X})")
        data, mac = body[: -self.mac_len], body[-self.mac_len :]
        if not hmac.compare_digest(mac, self._rmac(data, sw)):
            self.terminate()
            raise Scp03Error(reason="R-MAC verification failed")
        if level & SecurityLevel.R_ENCRYPTION and data:
            try:
                data = unpad80(aes_cbc_decrypt(self.keys.s_enc, self._icv(True), data))
            except ValueError as e:
                self.terminate()
                raise Scp03Error(reason=f"response decryption: {e}") from None
        return data + resp[-2:]

    # -- card direction

    def unwrap_command(self, apdu: bytes) -> bytes:
        """Card: verify the C-MAC and decrypt the data of a protected command.

        Returns:
            The plain command APDU, its CLA without the SM indication.

        Raises:
            Scp03Error: 6982 when no session is open, the SM indication or the
                C-MAC is missing or the MAC is wrong; 6988 when the decrypted
                data is badly padded. The session is terminated on any MAC
                or padding failure (Amendment D §6.2.4).
            ApduFormatError: `apdu` is not a well-formed command APDU.
        """
        level = self._require_open()
        cmd = CommandApdu.from_bytes(apdu)
        self.counter += 1
        if not level & SecurityLevel.C_MAC:
            if has_secure_messaging(cmd.cla):
                self.terminate()
                raise Scp03Error(reason="secure messaging at security level 00")
            return apdu
        if not has_secure_messaging(cmd.cla) or len(cmd.data) < self.mac_len:
            self.terminate()
            raise Scp03Error(reason="command without C-MAC in a C-MAC session")
        self._verify_mac(cmd)
        data = cmd.data[: -self.mac_len]
        if level & SecurityLevel.C_DECRYPTION and data:
            try:
                if len(data) % _BLOCK:
                    raise ValueError("ciphertext is not whole blocks")
                data = unpad80(aes_cbc_decrypt(self.keys.s_enc, self._icv(False), data))
            except ValueError as e:
                self.terminate()
                raise Scp03Error(SW.SM_DATA_OBJECTS_INCORRECT, f"command decryption: {e}") from None
        return CommandApdu(
            _clear_sm(cmd.cla), cmd.ins, cmd.p1, cmd.p2, data, cmd.le, cmd.extended
        ).to_bytes()

    def _verify_mac(self, cmd: CommandApdu) -> None:
        wire = cmd.to_bytes()
        lc_end = (7 if cmd.extended else 5) + len(cmd.data) - self.mac_len
        full, mac = self._expected_mac(bytes((_mac_cla(cmd.cla),)) + wire[1:lc_end])
        if not hmac.compare_digest(mac, cmd.data[-self.mac_len :]):
            self.terminate()
            raise Scp03Error(reason="C-MAC verification failed")
        self.mac_chaining_value = full

    def wrap_response(self, data: bytes, sw: int) -> bytes:
        """Card: protect a response at the session's level (§6.2.5, §6.2.7).

        An error status word goes out alone: no data, no R-MAC.

        Returns:
            The response APDU: [encrypted] data || R-MAC || SW1 SW2.

        Raises:
            Scp03Error: no session is open.
        """
        level = self._require_open()
        sw_bytes = sw.to_bytes(2, "big")
        if is_error_sw(sw):
            return sw_bytes
        if not level & SecurityLevel.R_MAC:
            return data + sw_bytes
        if level & SecurityLevel.R_ENCRYPTION and data:
            data = aes_cbc_encrypt(self.keys.s_enc, self._icv(True), pad80(data))
        return data + self._rmac(data, sw) + sw_bytes
