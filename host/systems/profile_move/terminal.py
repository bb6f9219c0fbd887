"""Seed 003's terminals (105, 106): a phone with its eSE, the move agent's host.

The phone carries out the orders its profile manager pushes (steps 530-540:
backup, and the installs and deletions of steps 560, 575, 207) on its eSE and
answers the manager; its LPA activates a profile (FIG. 4) with ES10c
EnableProfile on the ISD-R, as on any eUICC, and the eSE runs the binding check
before it enables; the phone attaches to the network with AKA against the AuC,
keeps a phone book on the USIM, and can itself ask for a move (FIG. 6, steps 605-610).

A card that loses power in the middle of an order (a tear) comes back at the
next power-up with its last transaction undone; the phone then leaves the order
unanswered and the manager pushes it again (every order is idempotent on the
card: the same move's backup, install or delete again is harmless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from applets.isdr.profiles import WRONG_STATE
from card.uicc import ts_31_102 as u
from host.errors import ApduError
from host.lpa.es10 import Es10Client, Es10Error
from host.readers.base import Reader, ReaderError
from host.session import ApduSession
from host.systems.profile_move.card import MoveAgent
from host.systems.repository.card import ChannelReader, open_channel
from host.systems.repository.terminal import ServerRefused
from host.usim import UsimSession

__all__ = ["Phone", "Attach"]

EF_ADN = 0x6F3A
DF_TELECOM = 0x7F10


@dataclass(frozen=True)
class Attach:
    """The outcome of one attach attempt (AKA with the AuC)."""

    attached: bool
    detail: str


class Phone:
    """A terminal with its eSE (see the module docstring).

    Args:
        name: the party's name.
        reader: the eSE (a traced reader in a scenario).
        power_cycle: takes the eSE through a power cycle (after a tear).
        ese_id: its eSE's ID (hex).
        manager_url: its profile manager.
        client: makes the HTTP client for a URL (the recorder hooks in here).
        on_step: told when a seed step completes (number, detail).
    """

    def __init__(
        self,
        name: str,
        reader: Reader,
        *,
        power_cycle: Callable[[], None],
        ese_id: str,
        manager_url: str,
        client: Callable[[str], Any],
        on_step: Callable[[int, str], None] | None = None,
    ) -> None:
        self.name = name
        self.reader = reader
        self.power_cycle = power_cycle
        self.ese_id = ese_id.upper()
        self.manager_url = manager_url
        self.client = client
        self.on_step = on_step or (lambda n, d: None)

    # -- orders from the manager (steps 530-540) -------------------------------------------

    def on_push(self, order: dict[str, Any]) -> None:
        """An order pushed by the manager: run it on the eSE and answer."""
        kind, args = order["kind"], order["args"]
        backup = kind == "backup"
        if backup:
            self.on_step(530, "backup request pushed to the terminal")
        move_id = bytes.fromhex(order["move_id"])
        result: dict[str, Any]
        try:
            with MoveAgent(self.reader) as agent:
                if kind == "backup":
                    box = agent.backup(
                        move_id,
                        args["iccid"],
                        int(args["parts"]),
                        bytes.fromhex(args["certificate"]),
                    )
                    result = {"status": "ok", "data": box.hex()}
                elif kind == "install":
                    agent.install(
                        move_id,
                        bytes.fromhex(args["certificate"]),
                        bytes.fromhex(args["signature"]),
                        bytes.fromhex(args["package"]),
                    )
                    result = {"status": "ok"}
                else:
                    agent.delete(move_id, bytes.fromhex(args["signature"]))
                    result = {"status": "ok"}
        except ReaderError:
            self.power_cycle()  # torn: the card undid its transaction; the order comes again
            return
        except ApduError as e:
            result = {"status": "refused", "sw": f"{e.sw:04X}"}
        if backup:
            done = "sealed the profile" if result["status"] == "ok" else f"refused: {result['sw']}"
            self.on_step(535, f"the eSE {done}")
        try:
            self.client(self.manager_url).request(
                "POST", f"/orders/{order['order_id']}/result", result
            )
        except (OSError, ServerRefused):
            return  # lost: the manager pushes the order again, the eSE answers it again
        if backup:
            self.on_step(540, "the sealed profile sent to the manager")

    def poll(self) -> int:
        """Fetch and carry out the orders waiting at the manager (a manager with no push link).

        Returns how many orders were waiting.
        """
        out = self.client(self.manager_url).request("GET", f"/orders?ese_id={self.ese_id}")
        orders = out.get("orders", []) if isinstance(out, dict) else []
        for order in orders:
            self.on_push(order)
        return len(orders)

    # -- FIG. 6: the terminal asks ------------------------------------------------------------

    def request_move(
        self,
        resolver_url: str,
        request_id: str,
        iccid: str,
        target_ese: str,
        mno: str,
        parts: int = 7,
    ) -> str:
        """Steps 605-610: find this eSE's manager, ask it to move the profile."""
        where = self.client(resolver_url).request("GET", f"/managers/{self.ese_id}")
        self.on_step(605, f"own manager at {where['url']}")
        out = self.client(where["url"]).request(
            "POST",
            "/move-requests",
            {
                "request_id": request_id,
                "source_ese": self.ese_id,
                "target_ese": target_ese,
                "iccid": iccid,
                "mno": mno,
                "parts": parts,
            },
        )
        self.on_step(610, "move request sent to the manager")
        return str(out["request_id"])

    # -- the profile in use ------------------------------------------------------------------

    def profiles(self) -> list[tuple[str, bool]]:
        with MoveAgent(self.reader) as agent:
            return agent.status()

    def activate(self, iccid: str) -> tuple[bool, str]:
        """FIG. 4 the way an LPA does it: ES10c EnableProfile on the ISD-R (SGP.22 §5.7.16).

        The ISD-R enables a move-bound profile only after the move agent's check
        (its eSE ID, step 403; the provider's signature, 405); a refusal is
        undefinedError(127), answered (False, why). A profile already enabled
        (profileNotInDisabledState, 2) is not thereby in use: one enabled at
        manufacture (a copy, or one rebound to another eSE) never passed the check,
        and the eSE, running it at power-up (FIG. 4), keeps such a profile's files
        out of reach. So the phone, as a handset does before it registers, selects
        the USIM (TS 31.102 §4.1): it is in use only if the USIM answers; else
        (False, "enabled but not activated ..."). A phone switches profiles through
        its LPA, not through the move agent's own ACTIVATE, so this is the path a
        copied or rebound profile must not pass.
        """
        try:
            self._enable(iccid)
        except Es10Error as e:
            if e.code != WRONG_STATE:
                return False, f"refused: {e.name or 'error'} ({e.code})"
            try:
                UsimSession(self.reader).select_usim()
            except ApduError as usim:
                return False, (
                    "enabled but not activated: the eSE refused it at power-up"
                    f" (SELECT USIM {usim.sw:04X})"
                )
            return True, "already enabled (profileNotInDisabledState); its USIM answers"
        except ApduError as e:
            return False, f"refused ({e.sw:04X})"
        return True, "eSE ID and provider signature verified; enabled (ES10c EnableProfile)"

    def _enable(self, iccid: str) -> None:
        """ES10c EnableProfile; once more after a power cycle if the eSE lost power in it.

        The eSE undoes a torn enable at the next power-up (the profile's state and its
        notification are one transaction), so the phone, powered up again, asks again,
        as for a torn order; a second loss is the caller's.
        """
        try:
            with Es10Client(self.reader) as es10:
                es10.enable_profile(iccid)
            return
        except ReaderError:
            self.power_cycle()
        with Es10Client(self.reader) as es10:
            es10.enable_profile(iccid)

    def attach(self, auc_url: str) -> Attach:
        """AKA with the AuC (TS 33.102 §6.3): the USIM checks AUTN, the network checks RES."""
        usim = UsimSession(self.reader)
        try:
            usim.select_usim()
            imsi = u.decode_imsi(usim.read_binary(0x6F07))
        except (ApduError, ValueError) as e:
            return Attach(False, f"no profile to attach with ({e})")
        auc = self.client(auc_url)
        vector = auc.request("POST", "/vectors", {"imsi": imsi})
        try:
            res = usim.authenticate(bytes.fromhex(vector["rand"]), bytes.fromhex(vector["autn"]))
        except ApduError as e:
            return Attach(False, f"the USIM rejected the network's AUTN ({e.sw:04X}: not its K)")
        if res.res is None:
            return Attach(False, "synchronisation failure")
        out = auc.request("POST", "/attach", {"session": vector["session"], "res": res.res.hex()})
        ok = bool(out["attached"])
        return Attach(ok, "RES matched XRES" if ok else "RES did not match XRES")

    def write_contact(self, record: int, alpha: str, number: str) -> None:
        """A phone book entry in EF.ADN (DF.TELECOM): the user's data."""
        usim = UsimSession(self.reader)
        usim.select_mf()
        usim.select_file(DF_TELECOM)
        length = len(usim.read_records(EF_ADN)[0])  # selects EF.ADN; its record length
        data = u.encode_dialling_number(u.DiallingNumber(alpha, number), length)
        usim.send(usim.cla, 0xDC, record, 0x04, data, what="UPDATE RECORD")

    def contacts(self) -> list[tuple[str, str]]:
        """The phone book (EF.ADN) of the enabled profile."""
        usim = UsimSession(self.reader)
        usim.select_mf()
        usim.select_file(DF_TELECOM)
        out = []
        for rec in usim.read_records(EF_ADN):
            entry = u.decode_dialling_number(rec)
            if entry is not None:
                out.append((entry.alpha, entry.number))
        return out

    def has_application(self, aid: bytes) -> bool:
        """Whether an application of the profile answers SELECT (on a channel of its own)."""
        channel = open_channel(self.reader)
        try:
            ApduSession(ChannelReader(self.reader, channel)).send(
                0x00, 0xA4, 0x04, 0x00, aid, le=0, what=f"SELECT {aid.hex().upper()}"
            )
            return True
        except ApduError:
            return False
        finally:
            self.reader.transmit(bytes((0x00, 0x70, 0x80, channel)))
