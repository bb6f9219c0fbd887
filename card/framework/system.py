"""An applet's execution context and its view of the card (Java Card's JCSystem).

There is no global JCSystem: each applet reaches the card it runs on through
`self.system`, so one process can hold many cards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from card.framework.aid import AID
from card.framework.exceptions import SecurityException
from card.nvm import NVM, Value

if TYPE_CHECKING:
    from card.crypto.rng import CardRng
    from card.framework.applet import Applet
    from card.framework.shareable import ShareableProxy
    from card.ota.cat import ProactiveCommand
    from card.runtime import CardRuntime

CLEAR_ON_RESET = 1
CLEAR_ON_DESELECT = 2

MEMORY_TYPE_PERSISTENT = 0
MEMORY_TYPE_TRANSIENT_RESET = 1
MEMORY_TYPE_TRANSIENT_DESELECT = 2


class Store:
    """Key-value access to one context's persistent values (every `set` is atomic).

    `get(key, default)` reads a value, `set(key, value)` writes one (`NVM.write`),
    `delete(key)` removes one. The three are the NVM's own callables bound to the
    owner (no call of ours in between: VERIFY alone makes two writes).
    """

    __slots__ = ("get", "set", "delete", "_nvm", "_owner", "_seg")

    get: Callable[..., Any]
    set: Callable[[str, Value], None]
    delete: Callable[[str], None]

    def __init__(self, nvm: NVM, owner: str) -> None:
        self._nvm = nvm
        self._owner = owner
        self._seg = nvm.segment(owner)
        self.get = self._seg.get
        self.set = partial(nvm.write, owner)
        self.delete = partial(nvm.delete, owner)

    def __contains__(self, key: str) -> bool:
        return key in self._seg

    def keys(self) -> list[str]:
        return list(self._seg)


class Context:
    """One applet instance's context: its persistent segment, transient memory, channel state."""

    __slots__ = (
        "runtime",
        "aid",
        "owner",
        "nvm",
        "store",
        "seg",
        "transient",
        "deselect_transient",
        "channel_states",
        "objects",
        "applet",
        "system",
    )

    def __init__(self, runtime: CardRuntime, aid: AID) -> None:
        self.runtime = runtime
        self.aid = aid
        self.owner = aid.hex()
        self.nvm = runtime.nvm
        self.store = Store(runtime.nvm, self.owner)
        self.seg = self.store._seg
        self.transient: dict[str, Any] = {}
        self.deselect_transient: dict[str, Any] = {}
        self.channel_states: dict[int, dict[str, Any]] = {}
        self.objects: dict[str, Any] = {}
        self.applet: Applet | None = None
        self.system = JCSystem(runtime, self)

    def check_access(self) -> None:
        """Raise SecurityException unless this context (or the card itself) is running."""
        active = self.runtime._active
        if active is not self and active is not None:
            self.runtime.firewall_violations += 1
            raise SecurityException(f"applet {active.aid} may not access objects of {self.aid}")

    def clear_on_reset(self) -> None:
        self.transient.clear()
        self.deselect_transient.clear()
        self.channel_states.clear()

    def clear_on_deselect(self, channel: int, still_active: bool) -> None:
        self.channel_states.pop(channel, None)
        if not still_active:
            self.deselect_transient.clear()


class JCSystem:
    """What an applet may ask of the card it runs on."""

    __slots__ = ("_rt", "_ctx")

    CLEAR_ON_RESET = CLEAR_ON_RESET
    CLEAR_ON_DESELECT = CLEAR_ON_DESELECT

    def __init__(self, runtime: CardRuntime, ctx: Context) -> None:
        self._rt = runtime
        self._ctx = ctx

    # -- transactions (JC 3.0 RE §7) ----------------------------------------

    def begin_transaction(self) -> None:
        """Start a transaction; a nested begin raises TransactionError(IN_PROGRESS)."""
        self._rt.nvm.begin()

    def commit_transaction(self) -> None:
        self._rt.nvm.commit()

    @property
    def transaction_depth(self) -> int:
        return 1 if self._rt.nvm.in_transaction else 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """`with system.transaction():` an atomic block; commits on success, aborts on error.

        Re-entrant: inside a transaction already open (the runtime's around INSTALL,
        a caller's block) it joins that one instead of raising, and the outermost
        block decides: an exception leaving the inner block goes on to it, and its
        abort undoes the inner writes too. `begin_transaction` keeps Java Card's
        rule (JC 3.0 RE §7.5: no nesting, TransactionException IN_PROGRESS).
        """
        nvm = self._rt.nvm
        if nvm.in_transaction:
            yield
            return
        nvm.begin()
        try:
            yield
        except BaseException:
            if nvm.in_transaction and not nvm.torn:
                nvm.abort()
            raise
        nvm.commit()

    # -- memory ---------------------------------------------------------------

    def available_memory(self, memory_type: int = MEMORY_TYPE_PERSISTENT) -> int:
        if memory_type == MEMORY_TYPE_PERSISTENT:
            return self._rt.nvm.available
        return self._rt.transient_available()

    @property
    def nvm_version(self) -> tuple[int, int]:
        """Changes whenever any persistent value of the card may have changed.

        For an applet that keeps an answer derived from persistent memory (its
        own or another applet's, through a Shareable): equal versions, equal
        stored values (`CardRuntime.nvm_version`).
        """
        return self._rt.nvm_version

    @property
    def nvm_version_now(self) -> Callable[[], tuple[int, int]]:
        """`nvm_version` as a function of no arguments, the cheapest to call per read."""
        return self._rt.nvm_version_now

    @property
    def store(self) -> Store:
        """This applet's persistent key-value store (for libraries such as card.fs)."""
        return self._ctx.store

    # -- the current command --------------------------------------------------

    @property
    def channel(self) -> int:
        """The logical channel of the command being processed."""
        return self._rt._channel

    @property
    def channel_state(self) -> dict[str, Any]:
        """Volatile state of this applet on the current channel (cleared on deselect/reset)."""
        states = self._ctx.channel_states
        ch = self._rt._channel
        st = states.get(ch)
        if st is None:
            st = states[ch] = {}
        return st

    @property
    def aid(self) -> AID:
        return self._ctx.aid

    @property
    def rng(self) -> CardRng:
        """The card's random number generator (seedable for tests)."""
        return self._rt.rng

    # -- the SIM toolkit (ETSI TS 102 223) ------------------------------------------

    def send_proactive(self, command: ProactiveCommand) -> int:
        """Queue a proactive command for the terminal; returns its command number.

        The card announces it with 91xx; the terminal's TERMINAL RESPONSE comes
        back to this applet's `on_terminal_response`.

        Raises:
            CardError: 6A84 when the card's queue is full.
        """
        return self._rt.toolkit.submit(bytes(self._ctx.aid), command)

    # -- the firewall -----------------------------------------------------------

    def get_shareable(self, server_aid: bytes, parameter: int = 0) -> ShareableProxy | None:
        """Java Card's getAppletShareableInterfaceObject: None if refused or absent."""
        return self._rt.get_shareable(self._ctx, AID(server_aid), parameter)

    @property
    def previous_context_aid(self) -> AID | None:
        """During a Shareable call, the AID of the calling applet (None if the card called)."""
        return self._rt.previous_context_aid()

    @property
    def card(self) -> CardRuntime:
        """The card runtime itself: only for applets with the card-manager privilege.

        A GlobalPlatform security domain needs the registry (install, delete, life
        cycles); other applets get SecurityException.
        """
        applet = self._ctx.applet
        if applet is None or not type(applet).card_manager:
            raise SecurityException(f"applet {self._ctx.aid} has no card-manager privilege")
        return self._rt
