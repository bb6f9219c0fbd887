"""Proprietary commands of the sample applets (`applets/sample`), class 80.

Each applet is an `AppletContext` named by its AID, so a decoder that knows
which applet is selected (`DecodeSession`) prefers these specs, and a command
such as 80 50 reads as the purse's GET BALANCE only when the purse is selected.
The AIDs repeat `applets.sample`'s constants: this package imports no applet
(tests check the two agree). The vectors' responses are what the emulator
answers with the sample card of `tests/unit/cards.py` (PIN 1234, balance 0).

The purse's VERIFY (00 20 00 01) and CHANGE REFERENCE DATA (00 24 00 01) are
interindustry commands: `apdu_specs.iso7816_4` decodes them.
"""

from __future__ import annotations

from collections.abc import Callable

import construct as c

from apdu_specs.framework.decoded import Decoded, count_bytes
from apdu_specs.framework.fields import Le, p1p2
from apdu_specs.framework.patterns import sws
from apdu_specs.framework.spec import CommandSpec
from apdu_specs.framework.vectors import AppletContext, Vector

PURSE = AppletContext("sample purse", (bytes.fromhex("F043415244454D5501"),))
ECHO = AppletContext("sample echo", (bytes.fromhex("F043415244454D5502"),))
COUNTER_CLIENT = AppletContext("sample counter client", (bytes.fromhex("F043415244454D5504"),))

_PURSE_DOC = "applets/sample/purse.py (PurseApplet)"
_AMOUNT = c.Struct("amount" / c.Int32ub)
_PURSE_SWS = sws("6700 6985 6A86")
#: GET LAST TRANSACTION: counter (2) | type (1) | amount (4) | 00.
LAST_TRANSACTION = c.Struct(
    "counter" / c.Int16ub,
    "type" / c.Enum(c.Int8ub, credit=1, debit=2),
    "amount" / c.Int32ub,
    c.Const(b"\x00"),
)


def _amount(name: str) -> Callable[[Decoded], str]:
    def summary(d: Decoded) -> str:
        data = d.data
        if isinstance(data, dict):
            return f"{name} {data['amount']}"
        return f"{name}, {count_bytes(d.fields['nc'])} (not an amount)"

    return summary


def _last_summary(d: Decoded) -> str:
    v = d.data
    if not isinstance(v, dict):
        return str(v)
    if v["counter"] == 0:
        return "no transaction yet"
    return f"transaction {v['counter']}: {v['type']} {v['amount']}"


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "CREDIT",
        0x30,
        _PURSE_DOC,
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=_AMOUNT,
        nc=(4, 4),
        sws=_PURSE_SWS,
        summary=_amount("CREDIT"),
        context=PURSE,
        doc="Balance, transaction counter and last record change in one transaction.",
        vectors=(
            Vector(
                "8030000004000000C8",
                "CREDIT 200",
                {"data": {"amount": 200}},
                response="9000",
                source="the emulator",
            ),
            Vector(
                "8030000004FFFFFFFF",
                "CREDIT 4294967295",
                response="6985",
                response_summary="6985 (Conditions of use not satisfied)",
                source="the emulator: the balance would exceed 7FFFFFFF",
            ),
        ),
    ),
    CommandSpec(
        "DEBIT",
        0x40,
        _PURSE_DOC,
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=_AMOUNT,
        nc=(4, 4),
        sws=sws("6700 6982 6985 6A86"),
        summary=_amount("DEBIT"),
        context=PURSE,
        doc="Needs the PIN verified on this channel.",
        vectors=(
            Vector(
                "804000000400000064",
                "DEBIT 100",
                response="6982",
                response_summary="6982 (Security status not satisfied)",
                source="the emulator, PIN not verified",
            ),
        ),
    ),
    CommandSpec(
        "GET BALANCE",
        0x50,
        _PURSE_DOC,
        cla=0x80,
        p1=0x00,
        p2=0x00,
        le=Le.REQUIRED,
        ne=(4, 256),
        response=c.Struct("balance" / c.Int32ub),
        sws=_PURSE_SWS,
        summary="GET BALANCE{le}",
        response_summary=lambda d: f"balance {d.data['balance']}",
        context=PURSE,
        vectors=(
            Vector(
                "8050000004",
                "GET BALANCE, Ne 4",
                response="000000009000",
                response_summary="9000 (Normal processing: no further qualification): balance 0",
                response_expect={"data": {"balance": 0}},
                source="the emulator",
            ),
        ),
    ),
    CommandSpec(
        "GET LAST TRANSACTION",
        0x52,
        _PURSE_DOC,
        cla=0x80,
        p1=0x00,
        p2=0x00,
        le=Le.REQUIRED,
        ne=(8, 256),
        response=LAST_TRANSACTION,
        sws=_PURSE_SWS,
        summary="GET LAST TRANSACTION{le}",
        response_summary=_last_summary,
        context=PURSE,
        vectors=(
            Vector(
                "8052000008",
                "GET LAST TRANSACTION, Ne 8",
                response="00000000000000009000",
                response_summary=(
                    "9000 (Normal processing: no further qualification): no transaction yet"
                ),
                source="the emulator, no transaction yet",
            ),
            Vector(
                "8052000008",
                response="00010100000064009000",
                response_expect={"data": {"counter": 1, "type": "credit", "amount": 100}},
                response_summary=(
                    "9000 (Normal processing: no further qualification): transaction 1: credit 100"
                ),
            ),
        ),
    ),
    CommandSpec(
        "ECHO",
        0x01,
        "applets/sample/echo.py (EchoApplet)",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        data=c.GreedyBytes,
        nc=(0, 65535),
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        summary="ECHO {bytes}{le}",
        context=ECHO,
        doc="Returns the data (after any command chaining).",
        vectors=(
            Vector(
                "8001000003AABBCC00",
                "ECHO 3 bytes, Ne 256",
                response="AABBCC9000",
                response_expect={"data": "AABBCC"},
                source="the emulator",
            ),
        ),
    ),
    CommandSpec(
        "GENERATE",
        0x02,
        "applets/sample/echo.py (EchoApplet)",
        cla=0x80,
        fields=(p1p2("length"),),
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        summary="GENERATE {length} bytes{le}",
        context=ECHO,
        doc="Returns P1-P2 bytes of a counting pattern 00 01 02 ...",
        vectors=(
            Vector(
                "8002000404",
                "GENERATE 4 bytes, Ne 4",
                {"params": {"length": 4}},
                response="000102039000",
                source="the emulator",
            ),
        ),
    ),
    CommandSpec(
        "INCREMENT",
        0x10,
        "applets/sample/counter.py (CounterClient)",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        le=Le.OPTIONAL,
        response=c.Struct("value" / c.Int16ub),
        sws=sws("6985"),
        summary="INCREMENT the server's counter{le}",
        response_summary=lambda d: f"counter {d.data['value']}",
        context=COUNTER_CLIENT,
        doc="Calls CounterServer.increment() through its Shareable interface.",
        vectors=(
            Vector(
                "8010000002",
                "INCREMENT the server's counter, Ne 2",
                response="00019000",
                response_expect={"data": {"value": 1}},
                source="the emulator",
            ),
        ),
    ),
    CommandSpec(
        "READ SERVER FIELD",
        0x11,
        "applets/sample/counter.py (CounterClient)",
        cla=0x80,
        p1=0x00,
        p2=0x00,
        le=Le.OPTIONAL,
        response=c.GreedyBytes,
        # The firewall stops the read; the applet answers the refusal 6982 (security
        # status not satisfied) instead of letting the SecurityException escape as 6F00.
        sws=sws("6982"),
        summary="READ SERVER FIELD directly (a firewall probe){le}",
        context=COUNTER_CLIENT,
        vectors=(
            Vector(
                "80110000",
                "READ SERVER FIELD directly (a firewall probe)",
                response="6982",
                source="the emulator: the firewall refuses",
            ),
        ),
    ),
)
