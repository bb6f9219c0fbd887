"""Decoding a response: status word, data by the spec's response construct."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apdu_specs.constructs import SM_DATA
from apdu_specs.framework.decoded import Decoded, parse_data, short_text
from apdu_specs.values import HexInt
from card.apdu import (
    ApduFormatError,
    CommandApdu,
)
from card.sw import describe

if TYPE_CHECKING:
    from apdu_specs.framework.spec import CommandSpec


def _response_body(d: Decoded, spec: CommandSpec | None) -> str:
    value = d.fields.get("data")
    if value is None or value == b"":
        return ""
    if spec is not None and spec.response_summary is not None:
        try:
            return spec.response_summary(d)
        # As for command summaries: report, do not raise.
        except Exception as e:  # noqa: BLE001
            d.issues.append(f"response summary failed: {type(e).__name__}: {e}")
    if isinstance(value, bytes | bytearray) and len(value) > 16:
        return f"{len(value)} bytes"
    return short_text(value)


def decode_response(
    spec: CommandSpec | None,
    raw_response: bytes,
    command: Decoded | bytes | None = None,
) -> Decoded:
    """Decode a response APDU to a command `spec` applies to.

    Args:
        spec: the command's spec (None: unknown command; only the SW is read).
        raw_response: response data followed by SW1-SW2.
        command: the decoded command (or its bytes), for P1-P2-dependent
            response constructs and secure messaging.

    Returns:
        A `Decoded` of kind "response"; never raises on odd bytes.
    """
    raw = bytes(raw_response)
    if isinstance(command, bytes | bytearray):
        from apdu_specs.framework.registry import decode_command  # the registry needs specs

        command = decode_command(bytes(command)) if spec is None else _decode_with(spec, command)
    name = spec.name if spec is not None else (command.name if command is not None else "?")
    context = spec.context.name if spec is not None and spec.context is not None else None
    if len(raw) < 2:
        return Decoded(
            "response",
            raw,
            name,
            f"malformed response: {len(raw)} byte(s), no SW1-SW2",
            {"data": raw},
            spec,
            ["a response has at least SW1-SW2"],
            context=context,
        )
    sw = (raw[-2] << 8) | raw[-1]
    sw1, sw2 = sw >> 8, sw & 0xFF
    body = raw[:-2]
    issues: list[str] = []
    fields: dict[str, Any] = {"sw": HexInt(sw, 4), "sw_meaning": describe(sw)}
    if spec is not None and not spec.sw_expected(sw):
        issues.append(f"{sw:04X} is not a status word {spec.name} is specified to return")
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        fields["retries"] = sw2 & 0x0F
    elif sw1 == 0x61:
        fields["available"] = sw2 or 256
    elif sw1 == 0x6C:
        fields["exact_ne"] = sw2 or 256
    value: Any = None
    if body:
        params = command.params if command is not None else {}
        sm = (
            command is not None
            and command.fields.get("cla", 0x80) & 0x80 == 0
            and int(command.fields.get("secure_messaging", 0)) >= 2
        )
        complete = sw == 0x9000 or sw1 in (0x62, 0x63, 0x91)
        if sw1 == 0x61:
            value = body  # the first part; GET RESPONSE fetches the rest
        elif not complete:
            issues.append(
                f"response data with {sw:04X}: ISO 7816-4 sends data only on success or a warning"
            )
            value = body
        elif sm:
            value = parse_data(SM_DATA, body, params, issues, "secure messaging data")
        elif spec is None:
            value = body
        elif spec.response is None:
            issues.append(f"{spec.name} is not specified to return data")
            value = body
        else:
            value = parse_data(spec.response, body, params, issues, "response data")
    fields["data"] = value
    fields["nr"] = len(body)
    d = Decoded("response", raw, name, fields=fields, spec=spec, issues=issues, context=context)
    text = _response_body(d, spec)
    status = f"{sw:04X} ({fields['sw_meaning']})"
    d.summary = f"{status}: {text}" if text else status
    return d


def _decode_with(spec: CommandSpec, raw: bytes) -> Decoded | None:
    try:
        return spec.decode(CommandApdu.from_bytes(raw), raw)
    except ApduFormatError:
        return None
