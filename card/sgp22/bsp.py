"""SCP03t, the BPP protection protocol (BSP): GSMA SGP.22 v2.x §2.6.4 and Annex G.

Direction-neutral: the SM-DP+ calls `protect` to build the segments of a Bound
Profile Package, the eUICC calls `unprotect` on each one it receives; both
keep a `BspState` (frozen: each call returns the next state, so a card can
keep it in transient memory and a server in a session row).

- Session keys (§2.6.4.2 / Annex G): KeyData = X9.63-KDF-SHA-256(ShS, 48
  bytes, SharedInfo) with SharedInfo = key type (1 byte, '88' AES) || key
  length (1 byte, '10') || len(host ID) || host ID || len(EID) || EID (lengths
  as BER length fields). KeyData is the initial MAC chaining value || S-ENC ||
  S-MAC, 16 bytes each.
- Encryption (§2.6.4.4): AES-128-CBC over the data padded with '80' then zero
  to 0-15 '00' bytes (always at least the '80'); the ICV is AES-ECB(S-ENC,
  block counter as 16 big-endian bytes). The counter starts at 1 and goes up
  by one for every segment, MAC-only segments ('88') included.
- MAC (§2.6.4.5): C-MAC = the first 8 bytes of AES-CMAC(S-MAC, MCV || tag ||
  length || data), where length is the BER length of data + 8; the full
  16-byte CMAC becomes the next MCV.
- ReplaceSessionKeys (§2.5.4, BF26): PPK-ENC / PPK-MAC and a new initial MCV
  replace the keys, and the block counter starts again at 1 (the protected
  profile package was built on its own, with the counter from 1).

Segment tags (§2.5.4): '87' ConfigureISDP / ReplaceSessionKeys (encrypted +
MAC), '88' StoreMetadata (MAC only), '86' profile elements (encrypted + MAC).
A segment is at most 1020 bytes with tag, length and MAC (§2.5.4), so
encrypted segments carry at most `MAX_ENCRYPTED_PAYLOAD` plaintext bytes and
MAC-only ones `MAX_MAC_ONLY_PAYLOAD`.

For the SM-DP+ (host side), wrapping a BPP:

    state = BspState.from_shared_secret(shs, 0x88, 16, host_id, eid)
    a0, state = protect_all(state, 0x87, configure_isdp_der, encrypt=True)
    a1, state = protect_all(state, 0x88, store_metadata_der, encrypt=False)
    a3, state = protect_all(state, 0x86, upp, encrypt=True)
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from card.crypto.cmac import aes_cbc_decrypt, aes_cbc_encrypt, aes_cmac, aes_ecb_encrypt
from card.crypto.kdf import x963_kdf
from card.tlv import TlvError, decode_length, decode_tag, encode_length, encode_tag

__all__ = [
    "BspError",
    "BspMacError",
    "BspState",
    "KEY_TYPE_AES",
    "MAC_LENGTH",
    "MAX_ENCRYPTED_PAYLOAD",
    "MAX_MAC_ONLY_PAYLOAD",
    "MAX_SEGMENT",
    "TAG_CONFIGURE_ISDP",
    "TAG_PROFILE_ELEMENTS",
    "TAG_STORE_METADATA",
    "kdf_shared_info",
    "derive_session_keys",
    "protect_all",
    "unprotect_all",
]

#: GP Card Specification Table 11-16 key type AES, the only one SGP.22 uses.
KEY_TYPE_AES = 0x88
MAC_LENGTH = 8
MAX_SEGMENT = 1020
#: 1020 - tag (1) - length field (3, 82 xx xx) - MAC (8) = 1008 ciphertext bytes: 63 blocks,
#: and padding always adds at least one byte.
MAX_ENCRYPTED_PAYLOAD = 1007
MAX_MAC_ONLY_PAYLOAD = 1008
TAG_CONFIGURE_ISDP = 0x87  # also ReplaceSessionKeys
TAG_STORE_METADATA = 0x88
TAG_PROFILE_ELEMENTS = 0x86
_BLOCK = 16


class BspError(ValueError):
    """A segment that is not well formed (SGP.22 errorReason scp03tStructureError)."""


class BspMacError(BspError):
    """A segment whose C-MAC does not verify (SGP.22 errorReason scp03tSecurityError)."""


def kdf_shared_info(key_type: int, key_length: int, host_id: bytes, eid: bytes) -> bytes:
    """SharedInfo of the session-key KDF (SGP.22 Annex G).

    Args:
        key_type: from the CRT of InitialiseSecureChannel (tag 80), '88' for AES.
        key_length: from the CRT (tag 81), 16.
        host_id: from the CRT (tag 84), 1-16 bytes.
        eid: the 16-byte EID.
    """
    if not (0 <= key_type <= 0xFF and 0 <= key_length <= 0xFF):
        raise ValueError("key type and key length are one byte each")
    return (
        bytes((key_type, key_length))
        + encode_length(len(host_id))
        + bytes(host_id)
        + encode_length(len(eid))
        + bytes(eid)
    )


def derive_session_keys(
    shared_secret: bytes, key_type: int, key_length: int, host_id: bytes, eid: bytes
) -> tuple[bytes, bytes, bytes]:
    """The BPP session keys (SGP.22 §2.6.4.2, Annex G).

    Returns:
        (initial MAC chaining value, S-ENC, S-MAC), `key_length` bytes each.
    """
    if key_length not in (16, 24, 32):
        raise ValueError(f"key length {key_length} is not an AES key length")
    info = kdf_shared_info(key_type, key_length, host_id, eid)
    data = x963_kdf(shared_secret, info, 3 * key_length)
    n = key_length
    return data[:n], data[n : 2 * n], data[2 * n :]


def _pad(data: bytes) -> bytes:
    n = len(data) + 1
    return data + b"\x80" + b"\x00" * (-n % _BLOCK)


def _unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= _BLOCK:
        raise BspError("bad padding in an encrypted segment")
    return stripped[:-1]


@dataclass(frozen=True, repr=False)
class BspState:
    """Keys, MAC chaining value and block counter of one BSP session (SGP.22 §2.6.4).

    Attributes:
        s_enc: S-ENC (or PPK-ENC after ReplaceSessionKeys).
        s_mac: S-MAC (or PPK-MAC).
        mcv: the MAC chaining value for the next segment.
        counter: the block counter for the next segment's ICV.
    """

    s_enc: bytes
    s_mac: bytes
    mcv: bytes
    counter: int = 1

    @classmethod
    def from_shared_secret(
        cls, shared_secret: bytes, key_type: int, key_length: int, host_id: bytes, eid: bytes
    ) -> BspState:
        """The state after InitialiseSecureChannel: keys from the KDF, counter 1."""
        mcv, s_enc, s_mac = derive_session_keys(shared_secret, key_type, key_length, host_id, eid)
        return cls(s_enc, s_mac, mcv, 1)

    def replace_keys(self, ppk_enc: bytes, ppk_mac: bytes, initial_mcv: bytes) -> BspState:
        """The state after ReplaceSessionKeys (BF26): new keys and MCV, counter back to 1."""
        for name, v in (
            ("ppkEnc", ppk_enc),
            ("ppkCmac", ppk_mac),
            ("initialMacChainingValue", initial_mcv),
        ):
            if len(v) != 16:
                raise BspError(f"ReplaceSessionKeys: {name} is {len(v)} bytes, not 16")
        return BspState(bytes(ppk_enc), bytes(ppk_mac), bytes(initial_mcv), 1)

    def _icv(self) -> bytes:
        return aes_ecb_encrypt(self.s_enc, self.counter.to_bytes(_BLOCK, "big"))

    def protect(
        self, tag: int, plaintext: bytes, *, encrypt: bool = True
    ) -> tuple[bytes, BspState]:
        """Build one segment: tag || length || (ciphertext or plaintext) || C-MAC.

        Returns:
            (the segment TLV, the state for the next segment).
        """
        body = (
            aes_cbc_encrypt(self.s_enc, self._icv(), _pad(bytes(plaintext)))
            if encrypt
            else bytes(plaintext)
        )
        header = encode_tag(tag) + encode_length(len(body) + MAC_LENGTH)
        full = aes_cmac(self.s_mac, self.mcv + header + body)
        nxt = BspState(self.s_enc, self.s_mac, full, self.counter + 1)
        return header + body + full[:MAC_LENGTH], nxt

    def unprotect(
        self, segment: bytes, *, encrypted: bool = True, tag: int | None = None
    ) -> tuple[bytes, BspState]:
        """Check and open one segment (the whole TLV as received).

        The C-MAC is computed over the tag and length bytes exactly as received.

        Args:
            segment: tag || length || data || C-MAC.
            encrypted: False for MAC-only ('88') segments.
            tag: the tag the segment must have, if any.

        Returns:
            (the plaintext, the state for the next segment).

        Raises:
            BspError: not one TLV, wrong tag, too short, bad length or padding.
            BspMacError: the C-MAC does not verify.
        """
        segment = bytes(segment)
        try:
            t, p = decode_tag(segment, 0)
            n, p = decode_length(segment, p)
        except TlvError as e:
            raise BspError(f"segment: {e}") from None
        if tag is not None and t != tag:
            raise BspError(f"segment tag {t:02X}, expected {tag:02X}")
        if p + n != len(segment):
            raise BspError("segment length does not match its length field")
        if n < MAC_LENGTH:
            raise BspError("segment shorter than its C-MAC")
        header, body, mac = segment[:p], segment[p:-MAC_LENGTH], segment[-MAC_LENGTH:]
        full = aes_cmac(self.s_mac, self.mcv + header + body)
        if not hmac.compare_digest(full[:MAC_LENGTH], mac):
            raise BspMacError("C-MAC of the segment does not verify")
        if encrypted:
            if not body or len(body) % _BLOCK:
                raise BspError("encrypted segment is not whole AES blocks")
            plain = _unpad(aes_cbc_decrypt(self.s_enc, self._icv(), body))
        else:
            plain = body
        return plain, BspState(self.s_enc, self.s_mac, full, self.counter + 1)

    def __repr__(self) -> str:
        return f"BspState(counter={self.counter}, <keys hidden>)"


def protect_all(
    state: BspState, tag: int, data: bytes, *, encrypt: bool = True
) -> tuple[list[bytes], BspState]:
    """Split `data` into as many segments as needed (each within `MAX_SEGMENT`) and protect them.

    Empty data still gives one segment (an empty ConfigureISDP value cannot occur,
    but an empty chunk must not vanish).
    """
    size = MAX_ENCRYPTED_PAYLOAD if encrypt else MAX_MAC_ONLY_PAYLOAD
    data = bytes(data)
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    out = []
    for chunk in chunks:
        seg, state = state.protect(tag, chunk, encrypt=encrypt)
        out.append(seg)
    return out, state


def unprotect_all(
    state: BspState, segments: list[bytes], *, encrypted: bool = True, tag: int | None = None
) -> tuple[bytes, BspState]:
    """Open segments in order and join their plaintexts."""
    parts = []
    for seg in segments:
        plain, state = state.unprotect(seg, encrypted=encrypted, tag=tag)
        parts.append(plain)
    return b"".join(parts), state
