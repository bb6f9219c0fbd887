"""`DecodeSession`: a whole trace decoded, following SELECT and MANAGE CHANNEL per
channel so that an applet's own specs win for the applet selected.
"""

from __future__ import annotations

from apdu_specs.framework.decoded import Decoded
from apdu_specs.framework.registry import Registry, default_registry
from apdu_specs.framework.response import decode_response
from card.apdu import (
    cla_channel,
)

_SUCCESS_SW1 = (0x61, 0x62, 0x63, 0x90, 0x91)


class DecodeSession:
    """Decodes a stream of exchanges, following what each logical channel selected.

    It tracks SELECT by DF name and MANAGE CHANNEL to know the selected AID on
    each channel (so applet specs win there), and reassembles responses
    fetched with GET RESPONSE: the final response's `assembled` is the whole
    response decoded with the spec of the command that started it.

    Args:
        registry: the specs (default: `default_registry()`).
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.selected: dict[int, bytes] = {}
        self._last: Decoded | None = None
        self._pending: dict[int, tuple[Decoded, bytearray]] = {}

    def reset(self) -> None:
        """A card reset: nothing is selected, nothing pending."""
        self.selected.clear()
        self._pending.clear()
        self._last = None

    def command(self, raw: bytes) -> Decoded:
        channel = cla_channel(raw[0]) if raw else 0
        d = self.registry.decode_command(raw, context=self.selected.get(channel))
        self._last = d
        return d

    def response(self, raw: bytes) -> Decoded:
        """Decode the response to the last command given to `command`."""
        cmd = self._last
        spec = cmd.spec if cmd is not None else None
        r = decode_response(spec, raw, cmd)
        if cmd is not None and len(raw) >= 2:
            self._track(cmd, r, raw)
        return r

    def exchange(self, command: bytes, response: bytes) -> tuple[Decoded, Decoded]:
        return self.command(command), self.response(response)

    def _track(self, cmd: Decoded, r: Decoded, raw: bytes) -> None:
        f = cmd.fields
        if "ins" not in f:
            return
        channel = f["channel"]
        sw = (raw[-2] << 8) | raw[-1]
        ok = sw >> 8 in _SUCCESS_SW1
        ins, interindustry = int(f["ins"]), int(f["cla"]) & 0x80 == 0
        pending = self._pending.pop(channel, None)
        if interindustry and ins == 0xC0 and pending is not None:
            origin, buf = pending
            buf += raw[:-2]
            if sw >> 8 == 0x61:
                self._pending[channel] = (origin, buf)
            else:
                whole = decode_response(origin.spec, bytes(buf) + raw[-2:], origin)
                r.assembled = whole
                r.summary += f"; {origin.name} response: {whole.summary}"
        elif sw >> 8 == 0x61:
            self._pending[channel] = (cmd, bytearray(raw[:-2]))
        if not ok or not interindustry:
            return
        if ins == 0xA4 and f["p1"] == 0x04 and not cmd.fields.get("chained"):
            self._selected_by_name(channel, cmd, r)
        elif ins == 0x70:
            self._manage_channel(channel, cmd, raw)

    def _selected_by_name(self, channel: int, cmd: Decoded, r: Decoded) -> None:
        from apdu_specs.constructs import find_entry

        name = cmd.fields.get("data")
        data = r.fields.get("data")
        if isinstance(data, list):
            df_name = find_entry(data, 0x84)
            if df_name is not None and "value" in df_name:
                name = df_name["value"]
        if isinstance(name, bytes) and name:
            self.selected[channel] = name
        else:
            self.selected.pop(channel, None)  # the default application: not known here

    def _manage_channel(self, channel: int, cmd: Decoded, raw: bytes) -> None:
        p1, p2 = int(cmd.fields["p1"]), int(cmd.fields["p2"])
        if p1 == 0x00:
            new = p2 if p2 else (raw[0] if len(raw) == 3 else None)
            if new is None:
                return
            # Java Card RE §4.2: a channel opened from channel 0 gets the default
            # applet, from another channel that channel's applet.
            if channel != 0 and channel in self.selected:
                self.selected[new] = self.selected[channel]
            else:
                self.selected.pop(new, None)
        elif p1 == 0x80:
            self.selected.pop(p2 if p2 else channel, None)
            self._pending.pop(p2 if p2 else channel, None)
