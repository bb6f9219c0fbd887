"""CardRuntime: one emulated chip (ISO/IEC 7816-4 §5-§7, Java Card 3.0 RE §3-§4).

The runtime owns everything of one card: persistent memory, the applet registry,
logical channels, the selected applet on each, pending response data and
command chains. `process(apdu) -> bytes` always answers: an applet's CardError
becomes its status word, any other exception becomes 6F00 (logged with its
traceback and counted in `exceptions`).

What the runtime itself handles, before any applet sees a command:
- the CLA byte: logical channel (0-3 first interindustry class, 4-19 further),
  chaining bit, invalid classes, secure messaging (6882 unless the selected
  applet declares `secure_messaging`);
- MANAGE CHANNEL open/close (ISO 7816-4 §11.1.2);
- SELECT by DF name when it names an applet (full or right-truncated AID, first/
  last/next/previous occurrence, FCI/FCP/none) — other SELECTs go to the applet;
  an instance is selected (by name, by default, on any channel) only if its life
  cycle allows it and, when an applet gates it (`Applet.selection_gate`: the
  UICC's profile store, for a profile's applications while the profile is not
  activated), that applet's `may_select` agrees; else it is as one not selectable
  (6A82). An instance selected when it became locked or its gate closed is
  deselected at its channel's next command, answered then as on a channel with
  nothing selected (6999; `_end_unusable`). The gates are RAM: nothing is
  written to decide;
- GET RESPONSE (61xx, and 9Fxx for the GSM class A0), 6Cxx for a wrong Le;
- command chaining assembly (ISO 7816-4 §5.3.3);
- Ne: every response with data, whoever made it, goes through `_answer`, which
  never sends more than Ne bytes (none for a command without Le).
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from card.atr import Atr, build_atr
from card.crypto.rng import CardRng
from card.framework.aid import AID
from card.framework.applet import APDU, Applet
from card.framework.catalogue import Catalogue, CatalogueError, class_ref
from card.framework.exceptions import SecurityException
from card.framework.shareable import Shareable, ShareableProxy
from card.framework.system import Context
from card.nvm import NVM, NvmError, PowerLoss
from card.ota.toolkit import ProactiveSession
from card.sw import SW, CardError, nvm_may_change

log = logging.getLogger("cardemu.card")

CARD_OWNER = "__card__"
MAX_CHAIN = 65535

# Application life cycle states (GlobalPlatform Card Specification §5.3.1).
INSTALLED = 0x03
SELECTABLE = 0x07
LOCKED = 0x83

# ISO 7816-3 ATR: T=0 and T=1 offered, IFSC 254, historical bytes with a card
# capabilities compact-TLV (ISO 7816-4 §12.1.1.9): command chaining, extended
# Lc/Le, logical channels assigned by the card or the terminal.
DEFAULT_ATR = build_atr((0, 1), ifsc=254, extended_length=True, max_channels=8).to_bytes()

_SW9000 = b"\x90\x00"

_A = TypeVar("_A", bound=Applet)


class CardStateError(Exception):
    """The card was driven wrongly from outside (e.g. a command with no power)."""


class CardTorn(Exception):
    """The card lost power in the middle of a command (an injected tear): no response."""


class _Channel:
    __slots__ = (
        "ctx",
        "pending",
        "pending_sw",
        "pending_gsm",
        "chain_header",
        "chain_data",
        "select_name",
        "process",
        "quick",
        "quick_ins",
    )

    def __init__(self) -> None:
        self.ctx: Context | None = None
        #: the selected applet's bound `process`, resolved once at SELECT (None: none
        #: selected); set and cleared with `ctx` (`_do_select`, `_deselect`)
        self.process: Callable[[APDU], bytes | None] | None = None
        #: the selected applet's `quick_process` when its class names instructions for
        #: it (`Applet.quick_ins`; else None), resolved and cleared with `process`
        self.quick: Callable[[bytes, int], bytes | None] | None = None
        #: the instructions `quick` takes (the applet's `quick_ins`, less the runtime's own)
        self.quick_ins: frozenset[int] = _NO_INS
        #: response data waiting for GET RESPONSE, the SW its last part ends with, GSM class
        self.pending: bytes = b""
        self.pending_sw = 0x9000
        self.pending_gsm = False
        self.chain_header: bytes | None = None
        self.chain_data = bytearray()
        self.select_name: bytes | None = None


class _Entry:
    """One registered applet instance."""

    __slots__ = ("ctx", "ref", "lifecycle", "default")

    def __init__(self, ctx: Context, ref: str, lifecycle: int, default: int) -> None:
        self.ctx = ctx
        self.ref = ref
        self.lifecycle = lifecycle
        #: bit n set: the default applet of logical channel n
        self.default = default

    @property
    def selectable(self) -> bool:
        if self.lifecycle & 0x80 or self.lifecycle & 0x07 != 0x07:
            return False
        only = self.ctx.nvm.read(CARD_OWNER, "only_selectable")
        return only is None or only == bytes(self.ctx.aid)


class CardRuntime:
    """One card.

    Args:
        image: path of the SQLite card image (created if absent, unless `create` is
            False), or None for a card that lives only in memory. The image stays
            locked until `close()`: a second open of it is refused (`ImageInUse`).
        atr: the ATR to answer with (default: the one stored in the image, else
            DEFAULT_ATR); `set_atr` stores one in the image.
        rng_seed: seed the card's RNG for reproducible runs (None: OS randomness).
        max_channels: logical channels supported (1..20).
        catalogue: applet classes this card may instantiate when its image is opened.
        create: whether a missing image is made (empty) or an error.
        readonly: never write the image (inspection): changes stay in memory.

    Raises:
        ImageInUse: the image is open elsewhere (another process, or another open here).
        NvmError: the image cannot be used (see `card.nvm.NVM`).
    """

    def __init__(
        self,
        image: str | os.PathLike[str] | None = None,
        *,
        atr: bytes | None = None,
        rng_seed: bytes | int | None = None,
        max_channels: int = 20,
        catalogue: Catalogue | None = None,
        capacity: int = 1 << 20,
        transient_capacity: int = 16 << 10,
        create: bool = True,
        readonly: bool = False,
    ) -> None:
        if not 1 <= max_channels <= 20:
            raise ValueError("max_channels must be 1..20")
        self.max_channels = max_channels
        self.catalogue = catalogue or Catalogue()
        self.nvm = NVM(image, capacity=capacity, create=create, readonly=readonly)
        self.atr: bytes = atr or self.nvm.read(CARD_OWNER, "atr") or DEFAULT_ATR
        self.transient_capacity = transient_capacity
        self.rng = CardRng(rng_seed)
        #: Python exceptions that escaped an applet and became 6F00
        self.exceptions = 0
        #: the traceback text of the last such exception
        self.last_exception: str | None = None
        #: commands that changed persistent memory yet answered an "NVM unchanged" SW
        self.nvm_violations = 0
        #: accesses the firewall refused
        self.firewall_violations = 0
        #: tears (power lost mid-command)
        self.tears = 0
        self._powered = False
        #: the proactive session (ETSI TS 102 223): volatile, what 91xx announces
        self.toolkit = ProactiveSession()
        self._channels: dict[int, _Channel] = {}
        #: every instruction some channel's quick path takes (a superset: a filter only)
        self._quick_ins: frozenset[int] = frozenset()
        self._entries: dict[bytes, _Entry] = {}
        #: RAM: AID -> the context of the applet that decides whether that instance may
        #: be selected now (`Applet.selection_gate`); None: to be asked again
        #: (`_gate_map`). Never stored: derived from the registry and the gates' answers.
        self._gates: dict[bytes, Context] | None = None
        self._active: Context | None = None
        self._channel = 0
        self._context_stack: list[Context | None] = []
        # Every abort and every power-up rollback brings the stored registry back;
        # the in-memory one follows it at once (an aborted INSTALL must not leave a
        # phantom entry that refuses the same AID until the next power cycle).
        self.nvm.rollback_listeners.append(self._load_registry)
        self._rollbacks = 0
        self.nvm.rollback_listeners.append(self._count_rollback)
        #: deselections ordered inside the open transaction (channel -> the context to
        #: leave), done when it commits and forgotten if it rolls back (`deselect_everywhere`)
        self._leaving: dict[int, Context] = {}
        #: of `_leaving`'s channels, those whose instance was gated off when ordered out
        self._leaving_gated: set[int] = set()
        #: the entries deleted inside the open transaction: a rollback brings back these
        #: same contexts, which channels whose deselection it cancels still hold
        self._gone: dict[bytes, _Entry] = {}
        self.nvm.rollback_listeners.append(self._forget_leaving)
        self.nvm.commit_listeners.append(self._leave)
        nvm, runtime = self.nvm, self

        def nvm_version() -> tuple[int, int]:
            return (nvm.total_writes, runtime._rollbacks)

        #: `nvm_version` as a plain function, for caches that ask it on every read
        self.nvm_version_now: Callable[[], tuple[int, int]] = nvm_version
        try:
            self._load_registry()
        except BaseException:
            self.nvm.close()  # an image this card cannot use is not kept locked
            raise

    # -- the version of persistent memory ------------------------------------------

    def _count_rollback(self) -> None:
        self._rollbacks += 1

    @property
    def nvm_version(self) -> tuple[int, int]:
        """A value that changes whenever any persistent value of the card may have changed.

        (the NVM's write count, the rollbacks seen): every write and delete counts
        (`NVM.total_writes`, a write that stores an equal value excepted: it
        changes nothing), and an abort or a power-up rollback restores values
        without writing, so it is counted apart (`NVM.rollback_listeners`).
        An answer derived only from persistent memory may be kept while this
        stays equal (the ISD-R's GetProfilesInfo does).
        """
        return (self.nvm.total_writes, self._rollbacks)

    # -- registry ----------------------------------------------------------------

    def reload_registry(self) -> None:
        """Rebuild the in-memory applet list from persistent memory.

        The runtime does this itself after every rollback (`NVM.rollback_listeners`):
        the stored registry is the truth, the in-memory entries may be ahead of it.
        Applet contexts whose AID and class did not change are kept.
        """
        self._load_registry()

    def _load_registry(self) -> None:
        value = self.nvm.read(CARD_OWNER, "registry", ())
        entries: dict[bytes, _Entry] = {}
        for aid, ref, lifecycle, default in value:
            # An instance deleted in the rolled-back transaction comes back as the same
            # context (channels whose deselection the rollback cancels hold it), even when
            # the transaction installed the same class again at its AID.
            old = self._gone.get(aid)
            if old is None or old.ref != ref:
                old = self._entries.get(aid)
            if old is not None and old.ref == ref:
                old.lifecycle, old.default = lifecycle, default
                entries[aid] = old
                continue
            try:
                cls = self.catalogue.resolve(ref)
            except CatalogueError as e:
                raise NvmError(f"card image: {e}") from None
            ctx = Context(self, AID(aid))
            applet = cls.__new__(cls)
            applet._bind(ctx)
            entries[aid] = _Entry(ctx, ref, lifecycle, int(default))
        self._entries = entries
        self._gates = None

    # -- selection gates (RAM only) ------------------------------------------------

    def selection_gates_changed(self) -> None:
        """Ask the gating applets again which instances they decide (`Applet.gated_aids`).

        For a gate whose set changed with no change of the registry (a profile that
        names an already installed security domain); every registry change asks
        again by itself.
        """
        self._gates = None

    def _gate_map(self) -> dict[bytes, Context]:
        """AID -> the context of the applet that gates it (`Applet.selection_gate`)."""
        gates = self._gates
        if gates is None:
            gates = {}
            for aid, e in list(self._entries.items()):
                applet = e.ctx.applet
                if applet is None or not type(applet).selection_gate:
                    continue
                try:
                    names = [bytes(a) for a in self.call_in_context(e.ctx, applet.gated_aids)]
                except Exception:
                    # Not known which: the gate is asked about every other instance
                    # (its `may_select` decides each), until the next power-up or change.
                    self.exceptions += 1
                    self.last_exception = traceback.format_exc()
                    log.error(
                        "exception in gated_aids() of %s:\n%s", aid.hex(), self.last_exception
                    )
                    names = list(self._entries)
                for gated in names:
                    if gated != aid and gated in self._entries:
                        gates[gated] = e.ctx
            self._gates = gates
        return gates

    def _may_select(self, aid: bytes) -> bool:
        """Whether the selectable instance `aid` may be selected now: True unless an applet
        gates it (`Applet.selection_gate`) and its `may_select` says no.

        One dict lookup for an instance no applet gates (the ISD-R, the ECASD, an
        applet of no profile). A gate's exception refuses (fails closed), as an
        exception in an applet's `select()` does.
        """
        gate = (self._gates if self._gates is not None else self._gate_map()).get(aid)
        if gate is None:
            return True
        applet = gate.applet
        assert applet is not None  # a registered context is bound
        try:
            return bool(self.call_in_context(gate, applet.may_select, aid))
        except (CardError, SecurityException):
            return False
        except Exception:
            self.exceptions += 1
            self.last_exception = traceback.format_exc()
            log.error("exception in may_select() of %s:\n%s", gate.aid, self.last_exception)
            return False

    def _still_usable(self, ctx: Context) -> bool:
        """Whether the instance selected as `ctx` may still take commands on its channel.

        Not when it is locked (its life cycle's b8, GPC v2.3.1 §5.3.1: LOCKED stops
        the application's use; only unlocking brings it back) or its gate has closed
        since its selection (`Applet.selection_gate`: the enabled profile found
        damaged, answered 6581, or not activated). A few dict lookups for an instance
        no applet gates; the gate's `may_select` for one it does.
        """
        aid = ctx.aid
        e = self._entries.get(aid)
        if e is None or e.ctx is not ctx or e.lifecycle & 0x80:
            return False
        gates = self._gates if self._gates is not None else self._gate_map()
        return aid not in gates or self._may_select(bytes(aid))

    def _end_unusable(self, ch: _Channel, ch_no: int) -> None:
        """Deselect the instance selected on `ch` if it may no longer take commands.

        An application locked, or gated off, while it is selected (`_still_usable`)
        must not go on answering on its channel until the terminal reselects: a
        real OPEN lets no LOCKED application run (GPC v2.3.1 §5.3.1), and a profile
        whose data are found damaged runs none of its applications (seed 003 FIG. 4,
        404; SGP.22 §1.4). So at the next command on such a channel the runtime deselects it
        (its CLEAR_ON_DESELECT memory is cleared, data waiting for GET RESPONSE and
        a pending chain are dropped; its `deselect()` runs only if no gate refuses it,
        `_gated_off`), and the command
        is then handled as on any channel with no application selected: a SELECT by
        name selects another (the gated one answers 6A82), MANAGE CHANNEL works, and
        any other command answers 6999 (Java Card RE §4.5 SW_APPLET_SELECT_FAILED:
        no applet is active on the channel) -- what the ISD-R's disable already
        gives a disabled profile's applications (`deselect_everywhere`), and what a
        locked application's session gets. Not 6A82 (the command names no file) and
        not 6985 (nothing the terminal could satisfy would let the command run).
        RAM only: nothing is written.
        """
        ctx = ch.ctx
        if ctx is None:
            return
        gated_off = self._gated_off(ctx)
        e = self._entries.get(ctx.aid)
        if not gated_off and e is not None and e.ctx is ctx and not e.lifecycle & 0x80:
            return
        ch.pending = b""
        ch.chain_header = None
        ch.chain_data = bytearray()
        self._deselect(ch, ch_no, notify=not gated_off)

    def _gated_off(self, ctx: Context) -> bool:
        """Whether a selection gate refuses the instance `ctx` now (`Applet.selection_gate`).

        Such an instance is deselected without its `deselect()` being called (by
        `_end_unusable`, by MANAGE CHANNEL CLOSE): a profile not activated runs none of
        its code (seed 003 FIG. 4, 404; SGP.22 §1.4), not even its clean-up; the
        runtime still clears its CLEAR_ON_DESELECT memory (`Context.clear_on_deselect`),
        the part of a deselection that is the platform's, so nothing of its session
        survives for a later selection. A LOCKED instance's `deselect()` does run (GP
        locks an application's use by the terminal; its own code is not suspect).
        One dict lookup for an instance no applet gates.
        """
        gates = self._gates if self._gates is not None else self._gate_map()
        return ctx.aid in gates and not self._may_select(bytes(ctx.aid))

    def _save_registry(self) -> None:
        value = tuple(
            (bytes(e.ctx.aid), e.ref, e.lifecycle, e.default) for e in self._entries.values()
        )
        self.nvm.write(CARD_OWNER, "registry", value)
        self._gates = None

    def install(
        self,
        cls: type[_A],
        aid: bytes | str,
        params: bytes = b"",
        *,
        default: bool | Iterable[int] = False,
        lifecycle: int = SELECTABLE,
    ) -> _A:
        """Create and register an applet instance (GlobalPlatform INSTALL [for install]).

        The instance's persistent state and its registry entry are written in one
        transaction: a tear leaves either no applet or a complete one.

        Raises:
            CardError: 6A80 for an AID already present.
        """
        aid = AID(aid)
        if bytes(aid) in self._entries:
            raise CardError(SW.WRONG_DATA)
        if not (isinstance(cls, type) and issubclass(cls, Applet)):
            raise TypeError(f"{cls!r} is not an Applet class")
        ctx = Context(self, aid)
        applet = cls.__new__(cls)
        applet._bind(ctx)
        nvm = self.nvm
        own_txn = not nvm.in_transaction
        if own_txn:
            nvm.begin()
        mask = _channel_mask(default)
        entry = _Entry(ctx, class_ref(cls), lifecycle, mask)
        try:
            if mask:
                for e in self._entries.values():
                    e.default &= ~mask
            self._entries[bytes(aid)] = entry
            self.call_in_context(ctx, applet.on_install, bytes(params))
            self._save_registry()
            if own_txn:
                nvm.commit()
        except BaseException:
            self._entries.pop(bytes(aid), None)
            if own_txn and nvm.in_transaction and not nvm.torn:
                nvm.abort()  # the rollback listener reloads the registry
            raise
        return applet

    def delete(self, aid: bytes | str) -> None:
        """Remove an applet instance and its persistent state (GP DELETE)."""
        key = bytes(AID(aid))
        entry = self._entries.get(key)
        if entry is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        for ch_no, ch in self._channels.items():
            # Active here, unless this transaction already ordered it out (at its commit).
            if ch.ctx is entry.ctx and self._leaving.get(ch_no) is not entry.ctx:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        nvm = self.nvm
        own_txn = not nvm.in_transaction
        if own_txn:
            nvm.begin()
        applet = entry.ctx.applet
        assert applet is not None  # every registered context is bound (install, _load_registry)
        try:
            self.call_in_context(entry.ctx, applet.on_uninstall)
            del self._entries[key]
            self._gone.setdefault(key, entry)  # the first: the one a rollback restores
            nvm.delete_owner(entry.ctx.owner)
            self._save_registry()
            if own_txn:
                nvm.commit()
        except BaseException:
            if own_txn and nvm.in_transaction and not nvm.torn:
                nvm.abort()  # the rollback listener reloads the registry
            raise

    def deselect_everywhere(self, aid: bytes | str) -> list[int]:
        """Deselect an applet instance on every logical channel where it is selected.

        The card's own doing, before it deletes an instance that its owner has put
        out of use (a disabled profile's MNO-SD or applications, SGP.22 §5.7.18): a
        Java Card instance can only be deleted while no channel has it active (JCRE
        §11.3.4.2), and `delete` refuses one that is. Each such channel stays open
        with no application selected (ISO 7816-4 §11.1.1: until the next SELECT),
        as it would after a SELECT that failed. Returns those channels' numbers.

        Inside a transaction the deselection is part of the operation: it takes effect
        when the transaction commits (`delete` in the same transaction already counts
        the instance as out of use) and not at all if it rolls back. GP Card
        Specification v2.3 §11 and SGP.22 §5.7 operations are atomic: a disable or a
        delete that did not happen leaves the card as it was, its applications'
        sessions on other channels included; a deselection done at once could not be
        undone (the applet's `deselect()` has run, its CLEAR_ON_DESELECT memory is
        gone). An instance gated off when its deselection is ordered (`_gated_off`: its
        profile found damaged or not activated) is dropped as `_end_unusable` drops it:
        its `deselect()` is not called, its CLEAR_ON_DESELECT memory is cleared.
        """
        entry = self._entries.get(bytes(AID(aid)))
        if entry is None:
            return []
        out = []
        deferred = self.nvm.in_transaction
        gated_off: bool | None = None
        for ch_no, ch in sorted(self._channels.items()):
            if ch.ctx is entry.ctx:
                if gated_off is None:
                    gated_off = self._gated_off(entry.ctx)
                if deferred:
                    self._leaving[ch_no] = entry.ctx
                    if gated_off:
                        self._leaving_gated.add(ch_no)
                    else:
                        self._leaving_gated.discard(ch_no)
                else:
                    self._deselect(ch, ch_no, notify=not gated_off)
                out.append(ch_no)
        return out

    def _leave(self) -> None:
        """After a commit: the deselections the transaction ordered (`deselect_everywhere`)."""
        leaving, gone = self._leaving, self._gone
        if not leaving and not gone:
            return
        gated = self._leaving_gated
        self._leaving, self._gone, self._leaving_gated = {}, {}, set()
        deleted = {id(e.ctx) for e in gone.values()}
        for ch_no, ctx in sorted(leaving.items()):
            ch = self._channels.get(ch_no)
            if ch is not None and ch.ctx is ctx:
                # A deleted instance is not called again after its on_uninstall(); nor is
                # one gated off when ordered out (`_gated_off`): its memory is cleared.
                notify = id(ctx) not in deleted and ch_no not in gated
                self._deselect(ch, ch_no, notify=notify)

    def _forget_leaving(self) -> None:
        """After a rollback: the operation did not happen, so neither do its deselections."""
        self._leaving.clear()
        self._leaving_gated.clear()
        self._gone.clear()

    def set_lifecycle(self, aid: bytes | str, lifecycle: int) -> None:
        entry = self._entries.get(bytes(AID(aid)))
        if entry is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        entry.lifecycle = lifecycle
        self._save_registry()

    @property
    def t1_only(self) -> bool:
        """Whether the ATR offers T=1 alone (then no command's data waits for GET RESPONSE)."""
        cached = self.__dict__.get("_t1_only")
        if cached is None or cached[0] != self.atr:
            cached = (self.atr, Atr.from_bytes(self.atr).protocols == frozenset({1}))
            self.__dict__["_t1_only"] = cached
        return bool(cached[1])

    def set_atr(self, atr: bytes) -> None:
        """Set the card's ATR (as a manufacturer would) and keep it in the card image.

        Raises:
            card.atr.AtrError: the bytes are not a well-formed ATR.
        """
        Atr.from_bytes(atr)
        self.nvm.write(CARD_OWNER, "atr", bytes(atr))
        self.atr = bytes(atr)

    @property
    def selection_restricted_to(self) -> AID | None:
        """When set (GP CARD_LOCKED/TERMINATED), only this applet can be selected."""
        value = self.nvm.read(CARD_OWNER, "only_selectable")
        return None if value is None else AID(value)

    def restrict_selection(self, aid: bytes | None) -> None:
        """Allow only `aid` to be selected (None lifts the restriction). Persistent."""
        self.nvm.write(CARD_OWNER, "only_selectable", None if aid is None else bytes(AID(aid)))

    def set_default(self, aid: bytes | str, channels: bool | Iterable[int] = True) -> None:
        """Make an applet the default-selected one of some (True: all) logical channels."""
        entry = self._entries.get(bytes(AID(aid)))
        if entry is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        mask = _channel_mask(channels)
        for e in self._entries.values():
            e.default &= ~mask
        entry.default |= mask
        self._save_registry()

    def applets(self) -> list[tuple[AID, str, int, int]]:
        """(AID, class reference, life cycle state, default-channel mask) of every applet."""
        return [(e.ctx.aid, e.ref, e.lifecycle, e.default) for e in self._entries.values()]

    def applet(self, aid: bytes | str) -> Applet:
        """The applet instance with this AID (for the card's own tools and tests)."""
        entry = self._entries.get(bytes(AID(aid)))
        if entry is None or entry.ctx.applet is None:
            raise KeyError(f"no applet {AID(aid)}")
        return entry.ctx.applet

    def gate_allows(self, aid: bytes | str) -> bool:
        """Whether no applet's selection gate refuses the instance `aid` now.

        `Applet.selection_gate`: a profile's application or security domain while the
        enabled profile is not activated is refused. True for an instance no applet
        gates (and for an AID not registered: its own lookup refuses it). RAM only.
        """
        return self._may_select(bytes(aid) if isinstance(aid, bytes) else bytes(AID(aid)))

    def serves_shareable(self, server: Context) -> bool:
        """Whether a Shareable interface object of `server` may still be called now.

        As `get_shareable` decides a new lookup: the instance is still registered as
        `server` (not deleted), selectable (not LOCKED: GPC v2.3.1 §5.3.1, a locked
        application is not used), and no selection gate refuses it
        (`Applet.selection_gate`). A proxy kept from before reaches its server no more
        than a new lookup would (`ShareableProxy`). RAM and one registry read only.
        """
        key = bytes(server.aid)
        entry = self._entries.get(key)
        if entry is None or entry.ctx is not server or entry.ctx.applet is None:
            return False
        return entry.selectable and self._may_select(key)

    def deliver(self, aid: bytes | str, apdu: APDU) -> bytes | None:
        """Give a command to an applet's `process` in the applet's own context.

        For a card manager forwarding data to an application (GP STORE DATA after
        INSTALL [for personalization], GPC v2.3.1 §11.11.2.2).

        Raises:
            CardError: 6A88 for no such instance; 6985 for one its selection gate
                refuses now (`gate_allows`): a gated application is reached no more
                than a selected one is (`_end_unusable`), and 6985 is what STORE
                DATA answers for a locked one (card.gp.content.store_data).
        """
        key = bytes(AID(aid))
        entry = self._entries.get(key)
        if entry is None or entry.ctx.applet is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if not self._may_select(key):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return self.call_in_context(entry.ctx, entry.ctx.applet.process, apdu)

    def selected_context(self, channel: int) -> Context | None:
        ch = self._channels.get(channel)
        return None if ch is None else ch.ctx

    def selected_aid(self, channel: int = 0) -> AID | None:
        ctx = self.selected_context(channel)
        return None if ctx is None else ctx.aid

    def transient_available(self) -> int:
        """Transient memory left for applets: all of it (transient fields are not counted)."""
        return self.transient_capacity

    # -- power -------------------------------------------------------------------

    @property
    def powered(self) -> bool:
        return self._powered

    def power_on(self) -> bytes:
        """Cold reset: recover persistent memory, clear RAM, select defaults. Returns the ATR."""
        if self.nvm.torn or self.nvm.in_transaction:
            if self.nvm.power_up():
                log.info("power-up: rolled back an interrupted transaction")
        self._load_registry()
        self._clear_volatile()
        self._powered = True
        self._channels = {0: _Channel()}
        self._select_default(0)
        self.nvm.flush()
        return self.atr

    def reset(self) -> bytes:
        """Warm reset: as power-on for the card's state. Returns the ATR."""
        self._powered = False
        return self.power_on()

    def power_off(self) -> None:
        self._powered = False
        self._clear_volatile()
        self._channels = {}
        self.nvm.flush()

    def close(self) -> None:
        """Power off and close the card image (which releases its lock)."""
        try:
            self.power_off()
        finally:
            self.nvm.close()

    def _clear_volatile(self) -> None:
        self.toolkit.clear()
        self._leaving.clear()  # every channel closes with the power
        self._leaving_gated.clear()
        for e in self._entries.values():
            e.ctx.clear_on_reset()
        self._active = None
        self._context_stack.clear()

    def _select_default(self, channel: int) -> None:
        for aid, e in self._entries.items():
            if e.default >> channel & 1 and e.selectable and self._may_select(aid):
                self._do_select(self._channels[channel], channel, e.ctx)
                return

    # -- contexts and the firewall -------------------------------------------------

    def call_in_context(self, ctx: Context, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run `fn` with `ctx` as the active context (the Java Card context switch)."""
        self._context_stack.append(self._active)
        self._active = ctx
        try:
            return fn(*args, **kw)
        finally:
            self._active = self._context_stack.pop()

    def previous_context_aid(self) -> AID | None:
        if not self._context_stack:
            return None
        prev = self._context_stack[-1]
        return None if prev is None else prev.aid

    def get_shareable(
        self, client: Context, server_aid: AID, parameter: int
    ) -> ShareableProxy | None:
        """The server's Shareable interface object for `client` (Java Card's
        JCSystem.getAppletShareableInterfaceObject), or None.

        None, as for an absent server, when the server is not selectable (LOCKED, or
        its selection gate refuses it now, `Applet.selection_gate`): a gated profile's
        applet is reached through the firewall no more than by SELECT, so a profile
        not activated runs none of its code for another applet either.
        """
        key = bytes(server_aid)
        entry = self._entries.get(key)
        if entry is None or not entry.selectable or entry.ctx.applet is None:
            return None
        if not self._may_select(key):
            return None
        obj = self.call_in_context(
            entry.ctx, entry.ctx.applet.get_shareable_interface_object, client.aid, parameter
        )
        if obj is None:
            return None
        if not isinstance(obj, Shareable):
            raise SecurityException(f"{server_aid} offered an object that is not Shareable")
        return ShareableProxy(obj, entry.ctx)

    # -- the command path ------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Process one command APDU and return the response APDU (data + SW1 SW2).

        Raises:
            CardStateError: the card is not powered.
            CardTorn: an injected tear cut the power; the card must be powered on again.
        """
        if not self._powered:
            raise CardStateError("the card is not powered: call power_on() first")
        nvm = self.nvm
        nvm.apdu_writes = nvm.apdu_undone = 0
        try:
            try:
                resp = None
                # The selected applet's quick path (`Applet.quick_process`), for a plain
                # command (CLA 00-03: no SM, no chaining) on a channel with nothing
                # pending; None from it: the ordinary path below.
                if len(apdu) > 4 and apdu[1] in self._quick_ins and apdu[0] < 4:
                    ch = self._channels.get(apdu[0])
                    if (
                        ch is not None
                        and apdu[1] in ch.quick_ins
                        and ch.quick is not None
                        and not ch.pending
                        and ch.chain_header is None
                        and ch.ctx is not None
                        and self._still_usable(ch.ctx)
                    ):
                        self._channel = apdu[0]
                        self._active = ch.ctx
                        resp = ch.quick(apdu, apdu[0])
                if resp is None:
                    resp = self._dispatch(apdu)
            finally:
                self._active = None
                if nvm._journal is not None and not nvm.torn:  # in_transaction, inline
                    log.warning("command ended with a transaction open: aborted")
                    nvm.abort()
        except PowerLoss:
            self._powered = False
            self.tears += 1
            self._clear_volatile()
            self._channels = {}
            nvm.flush()
            raise CardTorn("the card lost power during the command") from None
        except SecurityException as e:
            # Java Card answers an uncaught SecurityException with 6F00; it is counted
            # as a firewall violation (in check_access), not as a crash.
            log.warning("firewall: %s", e)
            resp = b"\x6f\x00"
        except CardError as e:
            # Response data reaches the terminal only through `_answer` (within Ne).
            resp = (e.sw & 0xFFFF).to_bytes(2, "big")
        except Exception:
            self.exceptions += 1
            self.last_exception = traceback.format_exc()
            log.error("exception in the card on %s:\n%s", apdu[:4].hex(), self.last_exception)
            resp = b"\x6f\x00"
        if nvm.apdu_writes:
            sw = (resp[-2] << 8) | resp[-1]
            # Writes an abort undid changed nothing (`NVM.abort`): an error after them is
            # all-or-nothing, as ISO 7816-4 §5.1.3 asks of an "NVM unchanged" SW.
            if sw != 0x9000 and nvm.apdu_writes > nvm.apdu_undone and not nvm_may_change(sw):
                self.nvm_violations += 1
                log.warning(
                    "command %s changed persistent memory but answered %04X", apdu[:4].hex(), sw
                )
            nvm.flush()
        if self.toolkit.queue and resp[-2:] == _SW9000:
            # TS 102 221 §7.4.2.2 / TS 102 223 §6.4: a proactive command waits, and
            # the normal ending says so with its length.
            n = self.toolkit.pending_length()
            if n:
                resp = resp[:-2] + bytes((0x91, n & 0xFF))
        return resp

    def application_for_tar(self, tar: bytes) -> tuple[AID, int] | None:
        """The selectable applet whose TAR is `tar` (AID bytes 13-15) and its MSL, if it takes OTA.

        TS 102 226 §8.2.1.3.2.2: without TAR install parameters an application's
        TAR is bytes 13 to 15 of its AID (the TS 101 220 AID coding).
        """
        for e in self._entries.values():
            aid = bytes(e.ctx.aid)
            applet = e.ctx.applet
            if len(aid) < 15 or aid[12:15] != tar or applet is None or not e.selectable:
                continue
            if not self._may_select(aid):
                continue
            msl = type(applet).ota_msl
            if msl is not None:
                return e.ctx.aid, msl
        return None

    def deliver_secured_data(self, aid: bytes, data: bytes) -> bytes:
        """Hand checked secured data to an applet's `on_secured_data`, in its context.

        An applet its selection gate refuses now is as one not there (6A88), as
        `application_for_tar` does not find it.
        """
        key = bytes(AID(aid))
        entry = self._entries.get(key)
        if entry is None or entry.ctx.applet is None or not self._may_select(key):
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        out = self.call_in_context(entry.ctx, entry.ctx.applet.on_secured_data, data)
        return bytes(out or b"")

    def notify_terminal_response(
        self, issuer: bytes | None, command: bytes, response: bytes
    ) -> None:
        """Hand a TERMINAL RESPONSE to the applet that issued the proactive command.

        It runs in the applet's context (`Applet.on_terminal_response`); an applet
        deleted meanwhile, or one its selection gate refuses now (a profile's, the
        profile not activated any more), is simply not told.
        """
        entry = None if issuer is None else self._entries.get(issuer)
        if entry is None or entry.ctx.applet is None or not self._may_select(bytes(issuer or b"")):
            return
        self.call_in_context(entry.ctx, entry.ctx.applet.on_terminal_response, command, response)

    def _dispatch(self, raw: bytes) -> bytes:
        cmd = APDU.parse(raw)
        cla = cmd.cla
        if cla == 0xFF:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        ch_no = (cla & 0x0F) + 4 if cla & 0x40 else cla & 0x03  # cla_channel, inline
        ch = self._channels.get(ch_no)
        if ch is None:
            raise CardError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        self._channel = ch_no
        cmd.channel = ch_no
        ctx = ch.ctx
        if ctx is not None:
            # `_still_usable`, its common answer inline (an ungated, unlocked instance):
            # every command passes here.
            gates = self._gates
            e = self._entries.get(ctx.aid)
            if (
                e is None
                or e.ctx is not ctx
                or e.lifecycle & 0x80
                or gates is None
                or ctx.aid in gates
            ):
                self._end_unusable(ch, ch_no)
        ins = cmd.ins
        interindustry = cla & 0x80 == 0
        # ISO 7816-4 §5.4.1: an interindustry CLA announcing secure messaging (b4-b3 of
        # the first class, b6 of the further class) is for an application that unwraps
        # it; the card OS does none, so with no such application selected it answers
        # 6882 instead of running the command as if it were plain. Proprietary classes
        # (b8 = 1: GP's 84, the GSM A0) are their applet's business.
        sm = interindustry and (cla & 0x20 if cla & 0x40 else cla & 0x0C) != 0  # inline
        if sm and (ch.ctx is None or not _handles_sm(ch.ctx)):
            raise CardError(SW.SECURE_MESSAGING_NOT_SUPPORTED)

        # GET RESPONSE (ISO 7816-4 §11.7.1) for data left over from the previous command.
        if ch.pending:
            if ins == 0xC0:
                return self._get_response(ch, cmd)
            ch.pending = b""

        # Command chaining (ISO 7816-4 §5.3.3): the runtime assembles, the applet sees one command.
        if interindustry and (cla & 0x10 or ch.chain_header is not None):
            chained = self._chain(ch, cmd)
            if chained is None:
                return _SW9000
            cmd = chained

        gsm = cla == 0xA0
        try:
            if (
                ins in _RUNTIME_INS
                or ch.process is None
                or (ins in _TOOLKIT_INS and (cla == 0x80 or gsm))
            ):
                data = self._execute(ch, ch_no, cmd, interindustry and not sm)
            else:
                # The common case: a command for the applet selected on the channel,
                # whose `process` was resolved at SELECT (what `_execute` does, inline).
                self._active = ch.ctx
                data = ch.process(cmd)
        except CardError as e:
            if e.data and e.sw >> 8 in (0x62, 0x63):
                return self._answer(ch, cmd, e.data, e.sw & 0xFFFF, gsm)
            raise
        if not data:
            return _SW9000  # what `_answer` does with no data
        return self._answer(ch, cmd, data, 0x9000, gsm)

    def _execute(self, ch: _Channel, ch_no: int, cmd: APDU, runtime_commands: bool) -> bytes | None:
        """Run one (assembled) command: the runtime's own or the selected applet's.

        Returns:
            the response data (None: none), to be fitted to Ne by `_answer`.
        """
        ins = cmd.ins
        ctx = ch.ctx
        if runtime_commands:
            if ins == 0xA4 and cmd.p1 == 0x04:
                found, data = self._select_by_name(ch, ch_no, cmd)
                if found:
                    return data
                ctx = ch.ctx
            elif ins == 0x70:
                return self._manage_channel(ch, ch_no, cmd)
            elif ins == 0xC0:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # nothing pending
        if cmd.cla in (0x80, 0xA0) and ins in _TOOLKIT_INS:
            # TS 102 221 §10.1.1 / TS 102 223 §6: the CAT commands belong to the card's
            # toolkit platform, whichever application is selected on the channel.
            platform = next(
                (e.ctx for e in self._entries.values() if _is_toolkit_platform(e.ctx)), None
            )
            if platform is not None:
                ctx = platform
        if ctx is None:
            raise CardError(SW.APPLET_SELECTION_FAILED if ins != 0xA4 else SW.FILE_NOT_FOUND)
        applet = ctx.applet
        assert applet is not None  # every registered context is bound (install, _load_registry)
        self._active = ctx
        return applet.process(cmd)

    def _answer(self, ch: _Channel, cmd: APDU, data: bytes | None, sw: int, gsm: bool) -> bytes:
        """Fit response data to Ne: the one place every response with data goes through.

        ISO/IEC 7816-4 §5.1: Ne is the Le field's value, and 0 when the command has
        no Le (cases 1 and 3): the response data field is then absent. The card
        never sends more than Ne bytes; what it holds back it says with the status
        word (§5.1.3, Table 5/6):

        - 9000 with more data than Ne: the first Ne bytes (none for case 1/3) and
          61xx, the rest waiting for GET RESPONSE (§11.7.1; 9Fxx for the GSM class
          A0, 3GPP TS 51.011 §9.4.1). This is also what T=0 needs for case 4, which
          reaches the card as case 3 (ISO/IEC 7816-3 §12.2.5).
        - a warning 62xx/63xx with data: 61xx cannot carry it (GET RESPONSE would end
          in 9000 and lose the warning). With no Le, the warning alone, the data
          kept for a GET RESPONSE (as ETSI TS 102 221 §7.3.1.1.5 has the terminal
          fetch it after a case 4 warning); with data over Ne, 6Cxx with the exact
          length (§5.1.3: wrong Le field, SW2 the exact number of bytes available).
        - any other status word carries no data.

        A card whose ATR offers T=1 alone (`t1_only`) answers a command with no Le
        as if Le were 00: T=1 has no procedure bytes, and its clients (libykpiv) send
        case 3 encodings and read the data.

        So MANAGE CHANNEL OPEN sent as case 1 (`00700000`) opens the channel and
        answers 6101 (the channel number waits for GET RESPONSE), and a SELECT with
        no Le that ends in a warning answers the warning alone.
        """
        if not data or (sw != 0x9000 and sw >> 8 not in (0x62, 0x63)):
            return sw.to_bytes(2, "big")
        data = bytes(data)
        ne = cmd.ne or 0
        n = len(data)
        if cmd.ne is None and self.t1_only and (sw == 0x9000 or n <= 256):
            # A T=1 card has no procedure bytes: it answers the data it has, up to 256
            # bytes (ISO 7816-3 §11), and announces the rest with 61xx. PC/SC clients
            # written for T=1 cards (libykpiv) send case 3 encodings and read the data.
            ne = 256
        if n <= ne:
            return data + sw.to_bytes(2, "big")
        if sw != 0x9000:
            if ne:
                return bytes((0x6C, n if n < 256 else 0))
            ch.pending, ch.pending_sw, ch.pending_gsm = data, sw, gsm
            return sw.to_bytes(2, "big")
        ch.pending, ch.pending_sw, ch.pending_gsm = data[ne:], sw, gsm
        rest = n - ne
        return data[:ne] + bytes(((0x9F if gsm else 0x61), rest if rest < 256 else 0))

    def _get_response(self, ch: _Channel, cmd: APDU) -> bytes:
        """GET RESPONSE (ISO/IEC 7816-4 §11.7.1): the next part of the pending data.

        At most Ne bytes, 61xx (9Fxx) while more waits, and with the last part the
        status word of the command that left the data (9000, or its warning). A GET
        RESPONSE with no Le (Ne = 0, §5.1) takes nothing and is told again how much
        waits. An Le over what waits, other than 00 (or 0000) "up to the maximum",
        is answered 6Cxx with the exact length, as T=0 requires (ISO/IEC 7816-3
        §12.2.3).
        """
        if cmd.p1 or cmd.p2:
            raise CardError(SW.INCORRECT_P1P2)
        pending, sw, gsm = ch.pending, ch.pending_sw, ch.pending_gsm
        n = len(pending)
        ne = cmd.ne
        if ne is not None and ne > n and ne not in (256, 65536):
            raise CardError(0x6C00 | (n & 0xFF if n < 256 else 0))
        ne = ne or 0
        more = 0x9F if gsm else 0x61
        if ne >= n:
            ch.pending = b""
            return pending + sw.to_bytes(2, "big")
        ch.pending = pending[ne:]
        rest = n - ne
        return pending[:ne] + bytes((more, rest if rest < 256 else 0))

    def _chain(self, ch: _Channel, cmd: APDU) -> APDU | None:
        header = bytes((cmd.cla & ~0x10 & 0xFF, cmd.ins, cmd.p1, cmd.p2))
        if ch.chain_header is not None and header != ch.chain_header:
            ch.chain_header = None
            ch.chain_data = bytearray()
            raise CardError(SW.LAST_COMMAND_OF_CHAIN_EXPECTED)
        if len(ch.chain_data) + len(cmd.data) > MAX_CHAIN:
            ch.chain_header = None
            ch.chain_data = bytearray()
            raise CardError(SW.WRONG_LENGTH)
        ch.chain_data += cmd.data
        if cmd.cla & 0x10:
            ch.chain_header = header
            return None
        data = bytes(ch.chain_data)
        ch.chain_header = None
        ch.chain_data = bytearray()
        return cmd.assembled(header[0], data)

    # -- SELECT by DF name (ISO 7816-4 §11.2.2, JC 3.0 RE §4.5) ---------------------------

    def _select_by_name(self, ch: _Channel, ch_no: int, cmd: APDU) -> tuple[bool, bytes | None]:
        """Select an applet by AID.

        Returns:
            (True, the selected applet's response data), or (False, None) when no
            applet matches (the SELECT goes on to the currently selected applet,
            which may know the name as a DF).
        """
        p2 = cmd.p2
        name = cmd.data
        if p2 & 0xB0:
            raise CardError(SW.INCORRECT_P1P2)
        if p2 & 0x40:
            # Application session termination (ETSI TS 102 221 §11.1.1.2, P2 b7): the
            # named application, if selected here, is deselected; no data.
            current = ch.ctx
            if current is None or not name or not current.aid.startswith(name):
                raise CardError(SW.FILE_NOT_FOUND)
            self._deselect(ch, ch_no)
            return True, None
        occurrence = p2 & 0x03
        if len(name) > 16:
            return False, None
        # An instance whose gate refuses it now (`_may_select`: a profile's application
        # while the profile is not activated) is no candidate: as one not selectable.
        if not name:
            candidates = [
                e
                for aid, e in self._entries.items()
                if e.default >> ch_no & 1 and e.selectable and self._may_select(aid)
            ]
        else:
            candidates = [
                e
                for aid, e in self._entries.items()
                if e.selectable and aid.startswith(name) and self._may_select(aid)
            ]
        if not candidates:
            if ch.ctx is None:
                raise CardError(SW.FILE_NOT_FOUND)
            return False, None
        current = ch.ctx
        if occurrence in (2, 3) and ch.select_name == name and current is not None:
            idx = next((i for i, e in enumerate(candidates) if e.ctx is current), None)
            if idx is None:
                target = candidates[0] if occurrence == 2 else candidates[-1]
            else:
                idx += 1 if occurrence == 2 else -1
                if not 0 <= idx < len(candidates):
                    raise CardError(SW.FILE_NOT_FOUND)
                target = candidates[idx]
        elif occurrence in (1, 3):
            target = candidates[-1]
        else:
            target = candidates[0]
        self._do_select(ch, ch_no, target.ctx, strict=True)
        ch.select_name = name
        ctx = ch.ctx
        assert ctx is not None and ctx.applet is not None
        self._active = ctx
        return True, ctx.applet.select_response(cmd.selecting_copy())

    def _do_select(self, ch: _Channel, ch_no: int, ctx: Context, strict: bool = False) -> None:
        applet = ctx.applet
        assert applet is not None
        if not applet.multiselectable and ch.ctx is not ctx:
            for other_no, other in self._channels.items():
                if other.ctx is ctx and other_no != ch_no:
                    if strict:
                        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
                    return
        self._deselect(ch, ch_no)
        prev = self._channel
        self._channel = ch_no
        try:
            ok = self.call_in_context(ctx, applet.select)
        except (CardError, SecurityException):
            ok = False
        except Exception:
            self.exceptions += 1
            self.last_exception = traceback.format_exc()
            log.error("exception in select() of %s:\n%s", ctx.aid, self.last_exception)
            ok = False
        finally:
            self._channel = prev
        if not ok:
            ctx.clear_on_deselect(ch_no, self._active_elsewhere(ctx, ch_no))
            if strict:
                raise CardError(SW.APPLET_SELECTION_FAILED)
            return
        ch.ctx = ctx
        ch.process = applet.process
        quick_ins = ch.quick_ins = _quick_ins(type(applet))
        ch.quick = applet.quick_process if quick_ins else None
        if quick_ins and not quick_ins <= self._quick_ins:
            self._quick_ins |= quick_ins

    def _active_elsewhere(self, ctx: Context, ch_no: int) -> bool:
        return any(c.ctx is ctx for n, c in self._channels.items() if n != ch_no)

    def _deselect(self, ch: _Channel, ch_no: int, notify: bool = True) -> None:
        ctx = ch.ctx
        if ctx is None:
            return
        ch.ctx = None
        ch.process = None
        ch.quick = None
        ch.quick_ins = _NO_INS
        ch.select_name = None
        if notify:
            prev = self._channel
            self._channel = ch_no
            try:
                assert ctx.applet is not None  # a selected context is a registered one
                self.call_in_context(ctx, ctx.applet.deselect)
            except PowerLoss:
                raise
            except Exception:
                log.warning("exception in deselect() of %s ignored", ctx.aid, exc_info=True)
            finally:
                self._channel = prev
        ctx.clear_on_deselect(ch_no, self._active_elsewhere(ctx, ch_no))

    # -- MANAGE CHANNEL (ISO 7816-4 §11.1.2) ------------------------------------------------

    def _manage_channel(self, ch: _Channel, ch_no: int, cmd: APDU) -> bytes | None:
        if cmd.data:
            raise CardError(SW.WRONG_LENGTH)
        p1, p2 = cmd.p1, cmd.p2
        if p1 == 0x00:  # open
            if p2 == 0:
                new = next(
                    (n for n in range(1, self.max_channels) if n not in self._channels), None
                )
                if new is None:
                    raise CardError(SW.FUNCTION_NOT_SUPPORTED)
            else:
                if p2 >= self.max_channels:
                    raise CardError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
                if p2 in self._channels:
                    raise CardError(SW.FUNCTION_NOT_SUPPORTED)
                new = p2
            nch = self._channels[new] = _Channel()
            # Java Card RE (3.0.x, MANAGE CHANNEL OPEN): from the basic channel the new
            # channel gets the default applet; from any other the origin's selected
            # applet, and none when none is selected there -- as when `_end_unusable`
            # just deselected a locked or gated instance at this very command: the
            # default applet is not a stand-in for it. The origin's applet not
            # multiselectable (its context active there): the RE closes the new channel
            # and answers 6985 (JC RE 3.0.5 §4.5.1 step 8); its select() refusing or
            # throwing: closed too, 6999 (SW_APPLET_SELECT_FAILED, as for SELECT; step
            # 10) -- not an empty channel with 9000.
            if ch_no == 0:
                self._select_default(new)
            elif ch.ctx is not None and self._may_select(bytes(ch.ctx.aid)):
                try:
                    self._do_select(nch, new, ch.ctx, strict=True)
                except CardError:
                    del self._channels[new]
                    raise
            # P2 = 00: the channel number is the response data (§11.1.2), fitted to
            # Ne by `_answer` like any other: 6101 for a case 1 command.
            return bytes((new,)) if p2 == 0 else None
        if p1 == 0x80:  # close
            target = p2 if p2 else ch_no
            if target == 0:
                raise CardError(SW.INCORRECT_P1P2)
            tch = self._channels.get(target)
            if tch is None:
                raise CardError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
            # A gated-off instance's code is not run (`_gated_off`); its memory is cleared.
            gone = tch.ctx
            self._deselect(tch, target, notify=gone is None or not self._gated_off(gone))
            del self._channels[target]
            return None
        raise CardError(SW.INCORRECT_P1P2)

    def open_channels(self) -> list[int]:
        """The logical channels open now, in order."""
        return sorted(self._channels)


ALL_CHANNELS = (1 << 20) - 1


#: SELECT, MANAGE CHANNEL, GET RESPONSE: what the runtime may answer itself (`_execute`)
_RUNTIME_INS = frozenset({0xA4, 0x70, 0xC0})

#: TERMINAL PROFILE, FETCH, TERMINAL RESPONSE, ENVELOPE (CLA 80, TS 102 221 Table 10.5;
#: CLA A0 for a SIM, 3GPP TS 51.011 §9.2).
_TOOLKIT_INS = frozenset({0x10, 0x12, 0x14, 0xC2})


_NO_INS: frozenset[int] = frozenset()
_QUICK_INS: dict[type[Applet], frozenset[int]] = {}


def _quick_ins(cls: type[Applet]) -> frozenset[int]:
    """The instructions an applet class's quick path is offered: its own, less the runtime's."""
    out = _QUICK_INS.get(cls)
    if out is None:
        out = _QUICK_INS[cls] = (cls.quick_ins - _RUNTIME_INS) or _NO_INS
    return out


def _is_toolkit_platform(ctx: Context) -> bool:
    applet = ctx.applet
    return applet is not None and type(applet).toolkit_platform


def _handles_sm(ctx: Context) -> bool:
    applet = ctx.applet
    return applet is not None and type(applet).secure_messaging


def _channel_mask(channels: bool | Iterable[int]) -> int:
    if channels is True:
        return ALL_CHANNELS
    if channels is False:
        return 0
    mask = 0
    for ch in channels:
        if not 0 <= ch <= 19:
            raise ValueError(f"logical channel {ch} out of range 0..19")
        mask |= 1 << ch
    return mask
