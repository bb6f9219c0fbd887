"""What an applet is: the base class, its declared state, and the command it is given.

Java Card keeps every field of an applet object in persistent memory. Python
cannot intercept every mutation, so an applet declares its state explicitly:

    class Counter(Applet):
        value = persistent(0)                       # survives power loss, atomic writes
        session = transient(None, CLEAR_ON_DESELECT)  # RAM, cleared on deselect/reset
        pin = OwnerPIN.field(try_limit=3, max_length=8)

Assigning any other public attribute on an installed applet is an error, so
state cannot silently live in RAM and vanish when the card image is reopened.
Private attributes (`_cache`) stay allowed for derived, volatile data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from card.apdu import CommandApdu, parse_body
from card.framework.aid import AID
from card.framework.system import CLEAR_ON_DESELECT, CLEAR_ON_RESET, Context, JCSystem
from card.nvm import stored_form
from card.sw import SW, CardError

if TYPE_CHECKING:
    from card.framework.shareable import Shareable


class APDU:
    """The command an applet is processing, as the runtime parsed it."""

    __slots__ = (
        "cla",
        "ins",
        "p1",
        "p2",
        "data",
        "ne",
        "extended",
        "channel",
        "selecting",
        "_command",
    )

    def __init__(self, command: CommandApdu, channel: int, selecting: bool = False) -> None:
        self.cla = command.cla
        self.ins = command.ins
        self.p1 = command.p1
        self.p2 = command.p2
        self.data = command.data
        #: Ne, the number of response bytes expected (None when the command had no Le)
        self.ne = command.le
        #: whether the command had extended length fields
        self.extended = command.extended
        self.channel = channel
        #: True when this is the SELECT that selected the applet
        self.selecting = selecting
        self._command: CommandApdu | None = command

    @classmethod
    def parse(cls, raw: bytes, channel: int = 0) -> APDU:
        """The command of these bytes (the runtime's parse: no `CommandApdu` made for it).

        Raises:
            ApduFormatError: the bytes are not a well-formed APDU (`card.apdu.parse_body`).
        """
        data, ne, extended = parse_body(raw)
        self = _new(cls)
        self.cla = raw[0]
        self.ins = raw[1]
        self.p1 = raw[2]
        self.p2 = raw[3]
        self.data = data
        self.ne = ne
        self.extended = extended
        self.channel = channel
        self.selecting = False
        self._command = None
        return self

    def _copy(self) -> APDU:
        other = _new(APDU)
        other.cla = self.cla
        other.ins = self.ins
        other.p1 = self.p1
        other.p2 = self.p2
        other.data = self.data
        other.ne = self.ne
        other.extended = self.extended
        other.channel = self.channel
        other.selecting = self.selecting
        other._command = self._command
        return other

    def selecting_copy(self) -> APDU:
        """The same command as the SELECT that selects the applet (`selecting` True)."""
        other = self._copy()
        other.selecting = True
        return other

    def assembled(self, cla: int, data: bytes) -> APDU:
        """The last command of a chain with the chain's whole data (ISO 7816-4 §5.3.3).

        CLA without the chaining bit, the data of every command of the chain, the
        last one's Ne; extended when the data or Ne need it.
        """
        other = self._copy()
        other.cla = cla
        other.data = data
        other.extended = len(data) > 255 or (self.ne is not None and self.ne > 256)
        other._command = None
        return other

    @property
    def command(self) -> CommandApdu:
        """The command as a `CommandApdu` (made when first asked for)."""
        cmd = self._command
        if cmd is None:
            cmd = self._command = CommandApdu(
                self.cla, self.ins, self.p1, self.p2, self.data, self.ne, self.extended
            )
        return cmd

    @property
    def p1p2(self) -> int:
        return (self.p1 << 8) | self.p2

    def __repr__(self) -> str:
        return f"APDU({self.command.to_bytes().hex().upper()}, channel={self.channel})"


_new = object.__new__


class Declared:
    """Base of the class-level state declarations: records its name on the applet class."""

    __slots__ = ("name",)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        owner._declared = (*getattr(owner, "_declared", ()), name)


class persistent(Declared):  # noqa: N801 - used like a keyword in class bodies
    """A field stored in the card's persistent memory; each assignment is one atomic write."""

    __slots__ = ("default",)

    def __init__(self, default: Any = None) -> None:
        self.default = stored_form(default)
        self.name = ""

    def __get__(self, obj: Applet | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        ctx = obj._ctx
        active = ctx.runtime._active
        if active is not ctx and active is not None:
            ctx.check_access()
        return ctx.seg.get(self.name, self.default)

    def __set__(self, obj: Applet, value: Any) -> None:
        ctx = obj._ctx
        if ctx.runtime._active is not ctx:
            ctx.check_access()
        ctx.nvm.write(ctx.owner, self.name, value)


class transient(Declared):  # noqa: N801
    """A field in RAM, reset to its default on card reset (and on deselect if asked)."""

    __slots__ = ("default", "clear_on")

    def __init__(self, default: Any = None, clear_on: int = CLEAR_ON_RESET) -> None:
        if clear_on not in (CLEAR_ON_RESET, CLEAR_ON_DESELECT):
            raise ValueError("clear_on must be CLEAR_ON_RESET or CLEAR_ON_DESELECT")
        self.default = default
        self.clear_on = clear_on
        self.name = ""

    def _dict(self, ctx: Context) -> dict[str, Any]:
        return ctx.deselect_transient if self.clear_on == CLEAR_ON_DESELECT else ctx.transient

    def __get__(self, obj: Applet | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        ctx = obj._ctx
        if ctx.runtime._active is not ctx:
            ctx.check_access()
        # `_dict`, inline: this is every transient read
        d = ctx.deselect_transient if self.clear_on == CLEAR_ON_DESELECT else ctx.transient
        return d.get(self.name, self.default)

    def __set__(self, obj: Applet, value: Any) -> None:
        ctx = obj._ctx
        if ctx.runtime._active is not ctx:
            ctx.check_access()
        d = ctx.deselect_transient if self.clear_on == CLEAR_ON_DESELECT else ctx.transient
        d[self.name] = value


class Applet:
    """Base class of every applet. Subclass it and override what the applet needs."""

    #: May the applet be selected on several logical channels at once (JC MultiSelectable)?
    multiselectable: ClassVar[bool] = False
    #: May the applet reach the card runtime (registry, life cycles) through
    #: `system.card`? Only a card manager (GlobalPlatform ISD) should.
    card_manager: ClassVar[bool] = False
    #: Does the applet unwrap secure messaging itself (ISO 7816-4 §10, GP SCP)? Only
    #: then do commands whose interindustry CLA announces SM (b4-b3 of 0x-3x, b6 of
    #: 4x-7x, §5.4.1) reach its `process`; for any other applet the runtime answers
    #: 6882 (secure messaging not supported) without running them.
    secure_messaging: ClassVar[bool] = False
    #: Is the applet the card's toolkit platform (a UICC's CAT runtime)? Then the CAT
    #: commands (CLA 80: TERMINAL PROFILE, FETCH, TERMINAL RESPONSE, ENVELOPE) reach
    #: it whatever is selected (ETSI TS 102 221 §10.1.1, TS 102 223 §6).
    toolkit_platform: ClassVar[bool] = False
    #: The minimum security level (TS 102 226 §8.2.1.3.2.4.2, coded as SPI byte 1) of the
    #: secured packets the applet takes for its TAR (AID bytes 13-15), or None: it takes
    #: none. The ISD checks them with its SCP80 keys and hands the data to
    #: `on_secured_data`.
    ota_msl: ClassVar[int | None] = None
    #: The instructions `quick_process` takes (none: it is never called).
    quick_ins: ClassVar[frozenset[int]] = frozenset()
    #: Does the applet decide whether some other instances may be selected now (a
    #: UICC's profile store: a profile's applications run only while it is activated)?
    #: Then the runtime asks it which (`gated_aids`) and, at each selection of one of
    #: them, at each command to one selected, and before any other way in (Shareable
    #: lookups and calls, GP STORE DATA delivery, OTA), whether it may run (`may_select`).
    selection_gate: ClassVar[bool] = False
    _declared: ClassVar[tuple[str, ...]] = ()

    _ctx: Context

    # The runtime creates applets; `on_install` is Java Card's install()/constructor.
    def _bind(self, ctx: Context) -> None:
        object.__setattr__(self, "_ctx", ctx)
        ctx.applet = self

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in type(self)._declared:
            raise AttributeError(
                f"{type(self).__name__}.{name} is not declared: applet state must be a "
                "persistent(), transient() or OwnerPIN.field() class attribute"
            )
        object.__setattr__(self, name, value)

    @property
    def aid(self) -> AID:
        return self._ctx.aid

    @property
    def system(self) -> JCSystem:
        return self._ctx.system

    # -- life cycle --------------------------------------------------------

    def on_install(self, params: bytes) -> None:
        """Called once when the applet is installed, with the install parameters."""

    def on_uninstall(self) -> None:
        """Called before the applet is deleted."""

    def select(self) -> bool:
        """Called when the applet is selected on a channel; return False to refuse."""
        return True

    def deselect(self) -> None:
        """Called when another applet is selected on the channel, or the channel closes."""

    def select_response(self, apdu: APDU) -> bytes | None:
        """The response data of the SELECT that selected the applet (ISO 7816-4 §7.1.1).

        The default is an FCI template `6F { 84 AID }`, or nothing when P2 asks for
        no response data (b4-b3 = 11).
        """
        if apdu.p2 & 0x0C == 0x0C:
            return None
        aid = bytes(self.aid)
        inner = b"\x84" + bytes((len(aid),)) + aid
        return b"\x6f" + bytes((len(inner),)) + inner

    def process(self, apdu: APDU) -> bytes | None:
        """Process one command; return the response data (or None), or raise CardError."""
        raise CardError(SW.INS_NOT_SUPPORTED)

    def quick_process(self, command: bytes, channel: int) -> bytes | None:
        """The whole response APDU to a plain command, taken before it is parsed, or None.

        An optional fast path for the commonest command of a busy applet (a UICC's
        READ RECORD). The runtime offers it only a command of the first
        interindustry class with no secure messaging and no chaining (CLA 00-03,
        ISO 7816-4 §5.4.1), of at least 5 bytes, for the applet selected on that
        channel, with no response data pending and no chain under way, and not
        SELECT, MANAGE CHANNEL or GET RESPONSE. Returning None hands the command to
        the ordinary path (`process`): it must then have changed nothing. An answer
        must be exactly what `process` and the runtime's fitting to Ne would have
        given (data and status word), and make no persistent write. Only commands
        whose INS is in `quick_ins` are offered.
        """
        return None

    def on_secured_data(self, data: bytes) -> bytes:
        """The secured data of a command packet for this applet's TAR, checked (TS 102 225).

        Returns the additional response data of the proof of receipt. Only
        called for an applet that sets `ota_msl`.
        """
        return b""

    def on_terminal_response(self, command: bytes, response: bytes) -> None:
        """The terminal's answer to a proactive command this applet sent (ETSI TS 102 223 §6.8).

        `command` is the proactive command (D0 ...) as the terminal fetched it,
        `response` the TERMINAL RESPONSE data. The default ignores it.
        """

    def gated_aids(self) -> Iterable[bytes]:
        """The AIDs of the instances whose selection this applet decides (`selection_gate`).

        Asked again after every change of the card's registry and after
        `CardRuntime.selection_gates_changed`; it must write nothing.
        """
        return ()

    def may_select(self, aid: bytes) -> bool:
        """Whether the instance `aid` (one of `gated_aids`) may be selected now.

        Asked at every selection of it (by name, implicit, on any logical channel),
        after its life cycle allows it; False answers as for an instance that is not
        selectable. Asked too at every command to it while it is selected (False:
        the runtime deselects it, `CardRuntime._end_unusable`), and before a
        Shareable lookup or call, a STORE DATA delivery or secured data reach it
        (False: refused as for a locked instance). It must write nothing persistent,
        and be cheap: it runs per command.
        """
        return True

    def get_shareable_interface_object(self, client_aid: AID, parameter: int) -> Shareable | None:
        """Grant (return an object) or refuse (None) a Shareable interface to a client."""
        return None

    def __repr__(self) -> str:
        ctx = self.__dict__.get("_ctx")
        return f"<{type(self).__name__} {ctx.aid if ctx else 'unbound'}>"
