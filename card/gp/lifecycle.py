"""Life cycles: the card, Executable Load Files, Applications and Security Domains.

GlobalPlatform Card Specification v2.3.1 §5.1 (card), §5.2 (Executable Load
File), §5.3.1 (Application), §5.3.2 (Security Domain), and the SET STATUS
coding of §11.10.2 (Table 11-86 status type, Tables 11-5/11-6/11-7 states).

The card life cycle is also the Issuer Security Domain's (§5.1: "the ISD
inherits the life cycle state of the card"), so the ISD keeps one value.
"""

from __future__ import annotations

from card.sw import SW, CardError

# -- Card life cycle (GPC v2.3.1 §5.1, Table 11-5) ------------------------------
OP_READY = 0x01
INITIALIZED = 0x07
SECURED = 0x0F
CARD_LOCKED = 0x7F
TERMINATED = 0xFF

CARD_STATES = {
    OP_READY: "OP_READY",
    INITIALIZED: "INITIALIZED",
    SECURED: "SECURED",
    CARD_LOCKED: "CARD_LOCKED",
    TERMINATED: "TERMINATED",
}

# -- Executable Load File (§5.2, Table 11-6) -------------------------------------
LOADED = 0x01

# -- Application (§5.3.1, Table 11-6) and Security Domain (§5.3.2, Table 11-7) ---
INSTALLED = 0x03
SELECTABLE = 0x07
PERSONALIZED = 0x0F  # Security Domains only
LOCKED_BIT = 0x80  # "LOCKED" sets b8 on top of the state it locks (e.g. 83, 87, 8F)

# -- SET STATUS status type, P1 (§11.10.2.1, Table 11-86) -------------------------
STATUS_TYPE_ISD = 0x80
STATUS_TYPE_APP_OR_SD = 0x40
STATUS_TYPE_SD_AND_APPS = 0x60

# Forward transitions of the card (§5.1.1, Figure 5-1). Every state may also go to
# TERMINATED; CARD_LOCKED goes back only to SECURED. OP_READY -> SECURED in one
# step is not in the figure, so a host goes through INITIALIZED (as GPPro does).
_CARD_TRANSITIONS: dict[int, frozenset[int]] = {
    OP_READY: frozenset({INITIALIZED, TERMINATED}),
    INITIALIZED: frozenset({SECURED, TERMINATED}),
    SECURED: frozenset({CARD_LOCKED, TERMINATED}),
    CARD_LOCKED: frozenset({SECURED, TERMINATED}),
    TERMINATED: frozenset(),
}


def card_state_name(state: int) -> str:
    return CARD_STATES.get(state, f"{state:02X}")


def check_card_transition(current: int, new: int) -> None:
    """Refuse a card life cycle change that §5.1.1 does not allow.

    Raises:
        CardError: 6A80 for a value that is no card state, 6985 for a transition
            that is not allowed from the current state (including "no change").
    """
    if new not in CARD_STATES:
        raise CardError(SW.WRONG_DATA)
    if new not in _CARD_TRANSITIONS.get(current, frozenset()):
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)


def content_management_allowed(card_state: int) -> bool:
    """Card content may change in OP_READY, INITIALIZED and SECURED only (§5.1.1.4-5)."""
    return card_state in (OP_READY, INITIALIZED, SECURED)


def is_locked(app_state: int) -> bool:
    return bool(app_state & LOCKED_BIT)


def lock(app_state: int) -> int:
    """The LOCKED state of an application or SD: b8 set on its current state (§5.3.1.4).

    Raises:
        CardError: 6985 if it is already locked.
    """
    if app_state & LOCKED_BIT:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    return app_state | LOCKED_BIT


def unlock(app_state: int) -> int:
    """Back to the state the application had before it was locked (§5.3.1.4).

    Raises:
        CardError: 6985 if it is not locked.
    """
    if not app_state & LOCKED_BIT:
        raise CardError(SW.CONDITIONS_NOT_SATISFIED)
    return app_state & ~LOCKED_BIT & 0xFF


def app_state_for_set_status(current: int, p2: int) -> int:
    """The new state of an application or SD asked for by SET STATUS (§11.10.2.2).

    A Security Domain may only lock (P2 b8 = 1) or unlock another application;
    unlocking is asked for with P2 = 00 or with P2 = the state the application
    was locked in. Moves between application-specific states belong to the
    application itself (§5.3.1.3).

    Raises:
        CardError: 6A80 for any other P2; 6985 for locking a locked or unlocking
            an unlocked application.
    """
    if p2 & LOCKED_BIT:
        return lock(current)
    if p2 == 0x00 or p2 == current & ~LOCKED_BIT:
        return unlock(current)
    raise CardError(SW.WRONG_DATA)
