"""Application identifiers: ISO/IEC 7816-5 (RID of 5 bytes + PIX of up to 11)."""

from __future__ import annotations


class AID(bytes):
    """An AID of 5 to 16 bytes. A `bytes` subclass, so it hashes and compares as bytes."""

    def __new__(cls, value: bytes | str) -> AID:
        if isinstance(value, str):
            value = bytes.fromhex(value.replace(" ", "").replace(":", ""))
        if not 5 <= len(value) <= 16:
            raise ValueError(f"an AID has 5 to 16 bytes, got {len(value)}")
        return super().__new__(cls, value)

    @property
    def rid(self) -> bytes:
        return bytes(self[:5])

    @property
    def pix(self) -> bytes:
        return bytes(self[5:])

    def matches(self, partial: bytes) -> bool:
        """Right-truncated match (ISO 7816-4 §12.2.2 SELECT by DF name, partial)."""
        return self.startswith(partial)

    def __repr__(self) -> str:
        return f"AID({self.hex().upper()})"

    def __str__(self) -> str:
        return self.hex().upper()
