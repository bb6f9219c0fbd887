"""INSTALL command data fields (GPC v2.3.1 §11.5).

P1 (Table 11-41) says what the command is for: 02 load, 04 install, 08 make
selectable, 0C install and make selectable, 20 personalization (b8 set means
"more INSTALL commands follow" and is ignored here). Each data field is a
series of length-prefixed items (Tables 11-43..11-47); the Install
Parameters field holds `C9` application-specific parameters, which the new
applet receives, and optionally `EF` system parameters (Table 11-49).
"""

from __future__ import annotations

from dataclasses import dataclass

from card import tlv
from card.sw import SW, CardError

FOR_LOAD = 0x02
FOR_INSTALL = 0x04
FOR_MAKE_SELECTABLE = 0x08
FOR_INSTALL_AND_MAKE_SELECTABLE = 0x0C
FOR_PERSONALIZATION = 0x20


def split_fields(data: bytes, count: int) -> list[bytes]:
    """Cut `count` length-prefixed fields (1-byte lengths, or BER for long ones).

    Raises:
        CardError: 6A80 when the fields do not fill the data exactly.
    """
    out = []
    pos = 0
    for _ in range(count):
        if pos >= len(data):
            raise CardError(SW.WRONG_DATA)
        if data[pos] < 0x80:
            n, pos = data[pos], pos + 1
        else:
            try:
                n, pos = tlv.decode_length(data, pos)
            except tlv.TlvError:
                raise CardError(SW.WRONG_DATA) from None
        field = data[pos : pos + n]
        if len(field) != n:
            raise CardError(SW.WRONG_DATA)
        out.append(field)
        pos += n
    if pos != len(data):
        raise CardError(SW.WRONG_DATA)
    return out


def _aid(value: bytes, *, optional: bool = False) -> bytes:
    if optional and not value:
        return value
    if not 5 <= len(value) <= 16:
        raise CardError(SW.WRONG_DATA)
    return value


@dataclass(frozen=True)
class ForLoad:
    """INSTALL [for load], Table 11-43."""

    elf_aid: bytes
    sd_aid: bytes
    lfdb_hash: bytes
    load_parameters: bytes
    load_token: bytes

    @classmethod
    def parse(cls, data: bytes) -> ForLoad:
        elf, sd, digest, params, token = split_fields(data, 5)
        _check_parameters(params)
        return cls(_aid(elf), _aid(sd, optional=True), digest, params, token)


@dataclass(frozen=True)
class ForInstall:
    """INSTALL [for install] / [for make selectable], Tables 11-44 and 11-45."""

    elf_aid: bytes
    module_aid: bytes
    app_aid: bytes
    privileges: bytes
    install_parameters: bytes
    install_token: bytes

    @classmethod
    def parse(cls, data: bytes, *, make_selectable_only: bool = False) -> ForInstall:
        elf, module, app, priv, params, token = split_fields(data, 6)
        if make_selectable_only:
            if elf or module or params:
                raise CardError(SW.WRONG_DATA)
        else:
            _aid(elf)
            _aid(module)
            _check_parameters(params)
        return cls(elf, module, _aid(app), priv, params, token)

    @property
    def application_parameters(self) -> bytes:
        """The C9 value handed to the applet (empty when absent)."""
        return application_parameters(self.install_parameters)


def parse_for_personalization(data: bytes) -> bytes:
    """INSTALL [for personalization], Table 11-47: the target application's AID."""
    elf, module, app, priv, params, token = split_fields(data, 6)
    if elf or module or priv or params:
        raise CardError(SW.WRONG_DATA)
    return _aid(app)


def _check_parameters(params: bytes) -> None:
    if not params:
        return
    try:
        items = tlv.parse(params, allow_padding=False)
    except tlv.TlvError:
        raise CardError(SW.WRONG_DATA) from None
    if len({t.tag for t in items}) != len(items):
        raise CardError(SW.WRONG_DATA)


def application_parameters(params: bytes) -> bytes:
    """The C9 application-specific parameters out of an Install Parameters field."""
    if not params:
        return b""
    try:
        c9 = tlv.find(params, 0xC9, allow_padding=False)
    except tlv.TlvError:
        raise CardError(SW.WRONG_DATA) from None
    return b"" if c9 is None else c9.value


def install_parameters(app_params: bytes) -> bytes:
    """An Install Parameters field carrying these application parameters (host side)."""
    return tlv.build(0xC9, app_params)
