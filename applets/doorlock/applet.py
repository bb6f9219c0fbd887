"""The door-lock authentication applet of seed 001 (JP 6911303 B2), one class for both roles.

Installed on the door-lock controller's SIM it has the **lock role**: it asks
for authentication information (S102), generates its own and collates
(S107-S108), and says only "unlock" (9000) or why not (a status word). On the
phone's SIM it has the **key role**: it answers the lock (S104) and checks the
lock's answer in turn (mutual authentication). When the phone's SIM has no
applet (its SELECT answers 6A82, S204-S205) the lock's chip makes the signed
download request the controller sends to the application management server
(S206-S207). Methods, tags and the authenticated inputs: `protocol`.

Personalisation (GlobalPlatform INSTALL [for personalization] then STORE DATA,
GPC v2.3.1 §11.11; only through a security domain, never straight from a
terminal): BER-TLV in any number of blocks (P2 numbered from 00, the last with
P1 b8), applied together in one transaction after the last block. Objects
(any subset; after the last block the merged state must be complete):

- `80 01` role: 01 lock, 02 key
- `81 01` methods offered: bit 1 shared key (01), bit 2 certificates (02)
- `5F20 L` this chip's identity (1..32 bytes; the holder reference of its certificate)
- `C0 16|24|32` the shared AES key (method 01)
- `C1 32` this chip's P-256 private key (method 02; a lock's signs its download requests)
- `7F21` this chip's CV certificate from the issuer (its key, CHR = identity)
- `7F49` the issuer's public key (method 02)
- `A1 { 80 MAC, 82 ICCID, 83 IMSI, 84 MSISDN }` the lock's identifiers (lock role)
- `82 01` try limit 1..15, which also resets the try counter
- `83 01` the identifier combination of download requests: 'A'..'D'
- `84 01` which identifier names a SIM in them: 82 ICCID (the default), 83
  IMSI, 84 MSISDN, FF all three
- `86 L` the server's short-message address (ASCII digits; a leading '+' for an
  international number): where `80 D0 01 00` sends requests

The issuer writes the key pair (as EMV personalisation bureaus do) rather than
reading back one generated on the chip: over the air (SMS-PP, TS 102 226) a
personalisation script is one-way, and the certificate has to be in the
same script.

Commands (CLA 00, proprietary ones 80; `7C` is ISO/IEC 7816-4 §11.5.5's dynamic
authentication data):

- `00 86 <method> 00 7C { 81 00 }` GENERAL AUTHENTICATE, lock role: a new
  challenge (S102) → `7C { 81 RC, 5F20 lock identity }`. 6983 when locked out.
- `00 86 <method> 00 7C { 5F20 IDP, 81 RP, 82 answer [, 7F21 certificate] }`,
  lock role: collate (S106-S108). The challenge is spent and the try counter
  decremented before anything is checked, so neither a replay nor a malformed
  answer gets a free try. Unlock: 9000 with `7C { 82 the lock's answer [, 7F21
  its certificate] }`. Refusals: 63Cx the answer does not match (x tries
  left; 6983 when none), 6700 an element truncated, 6A80 malformed, 6982 a
  certificate not the issuer's or not the presenter's, 6985 no challenge
  outstanding (a replay, or out of order), 6983 locked out.
- `00 86 <method> 00 7C { 5F20 IDL, 81 RC }`, key role: answer (S104) →
  `7C { 5F20 IDP, 81 RP, 82 answer [, 7F21 certificate] }`.
- `00 86 <method> 00 7C { 82 the lock's answer [, 7F21 its certificate] }`,
  key role: 9000 if the lock is authentic, else 6982; 6985 with no answer given.
- `80 D0 <P1> 00 A2 { phone identifiers }`, lock role, with a challenge
  outstanding (the presentation under way, the phone said "no applet"):
  the download request (S207) → `E1 { 80 combination, A1 lock ids, A2 phone
  ids, 5F20 lock identity, 85 counter, 5F37 ECDSA signature }`: the signature
  over the TLVs before it (`protocol.request_signed_part`), by the lock's key
  the server registered; the counter (4 bytes) rises with every request, moved
  before the signing, so no two requests carry one counter. P1 00: the
  request is the answer, for the controller to carry; P1 01: the chip sends
  it itself, as a short message to the server's address, by the SIM toolkit's
  proactive SEND SHORT MESSAGE (ETSI TS 102 223 §6.6.9; the card ends with
  91xx and the terminal FETCHes it) and answers nothing.
- `00 CA 00 E0` GET DATA: `E0 { 80 role, 81 methods, 5F20 identity, 82 try
  limit, 86 tries left, 85 counter [, 7F49 public key] }` (nothing secret).

Every random byte comes from the card RNG. No command answers with a key.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from applets.doorlock.protocol import (
    ALL_SIM_IDS,
    CHALLENGE_SIZE,
    DIR_KEY,
    DIR_LOCK,
    ID_ICCID,
    METHOD_CERTIFICATE,
    METHOD_SHARED_KEY,
    METHODS,
    ROLE_KEY,
    ROLE_LOCK,
    auth_input,
    check_identifiers,
    combination_tags,
    request_signed_part,
    select_identifiers,
)
from card import tlv
from card.crypto.cmac import aes_cmac
from card.crypto.keys import P256, EcKeyPair, EcPublicKey
from card.framework import (
    APDU,
    CLEAR_ON_DESELECT,
    CLEAR_ON_RESET,
    SW,
    Applet,
    CardError,
    persistent,
    transient,
)
from card.sm.cvc import Cvc, parse_public_key_template, public_key_template

__all__ = ["DOORLOCK_AID", "DoorLockApplet"]

#: Proprietary RID F043415244 ("CARD"), PIX "EMU" "DLK".
DOORLOCK_AID = bytes.fromhex("F043415244454D55444C4B")

INS_GENERAL_AUTHENTICATE = 0x86
INS_GET_DATA = 0xCA
INS_STORE_DATA = 0xE2
INS_DOWNLOAD_REQUEST = 0xD0

TAG_DYNAMIC = 0x7C
TAG_CHALLENGE = 0x81
TAG_RESPONSE = 0x82
TAG_IDENTITY = 0x5F20
TAG_CVC = 0x7F21
TAG_PUBLIC_KEY = 0x7F49
TAG_SIGNATURE = 0x5F37

P_ROLE, P_METHODS, P_SHARED_KEY, P_PRIVATE = 0x80, 0x81, 0xC0, 0xC1
P_LOCK_IDS, P_TRY_LIMIT, P_COMBINATION, P_SIM_IDS = 0xA1, 0x82, 0x83, 0x84
P_SERVER_ADDRESS = 0x86

DEFAULT_TRY_LIMIT = 5
MAX_PERSO = 2048
SIGNATURE_SIZE = 64
_CHALLENGE_REQUEST = bytes.fromhex("7C028100")


@dataclass(frozen=True)
class _Session:
    """A presentation under way (transient, cleared on deselect)."""

    method: int
    mine: bytes  # this chip's challenge
    theirs: bytes = b""  # the other's challenge (key role)
    their_id: bytes = b""  # the lock's identity (key role)


class DoorLockApplet(Applet):
    """Seed 001's door-lock authentication applet (see the module docstring)."""

    role = persistent(0)
    methods = persistent(0)
    identity = persistent(None)
    shared_key = persistent(None)
    private = persistent(None)
    certificate = persistent(None)
    issuer = persistent(None)
    lock_ids = persistent(None)
    combination = persistent(b"D")
    sim_ids = persistent(ID_ICCID)
    server_address = persistent(None)
    try_limit = persistent(DEFAULT_TRY_LIMIT)
    tries_left = persistent(DEFAULT_TRY_LIMIT)
    counter = persistent(0)

    session = transient(None, CLEAR_ON_DESELECT)
    perso = transient(None, CLEAR_ON_RESET)

    # -- dispatch ----------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        ins = apdu.ins
        if apdu.cla & 0x80:
            if ins == INS_STORE_DATA:
                self._store_data(apdu)
                return None
            if ins == INS_DOWNLOAD_REQUEST:
                return self._download_request(apdu)
            raise CardError(SW.INS_NOT_SUPPORTED)
        if ins == INS_GENERAL_AUTHENTICATE:
            return self._general_authenticate(apdu)
        if ins == INS_GET_DATA:
            return self._get_data(apdu)
        if ins == 0xA4:
            raise CardError(SW.FILE_NOT_FOUND)
        raise CardError(SW.INS_NOT_SUPPORTED)

    # -- keys (derived objects cached in RAM; the NVM holds only bytes) -------------

    def _key(self) -> EcKeyPair:
        d = self.private
        cached = self.__dict__.get("_key_cache")
        if cached is None or cached[0] != d:
            cached = (d, EcKeyPair.from_private_value(P256, d, deterministic=True))
            self._key_cache = cached
        key: EcKeyPair = cached[1]
        return key

    def _issuer(self) -> EcPublicKey:
        template = self.issuer
        cached = self.__dict__.get("_issuer_cache")
        if cached is None or cached[0] != template:
            cached = (template, parse_public_key_template(template))
            self._issuer_cache = cached
        key: EcPublicKey = cached[1]
        return key

    # -- STORE DATA (personalisation) -----------------------------------------------

    def _store_data(self, apdu: APDU) -> None:
        # Only from a security domain (INSTALL [for personalization]), never a terminal.
        if self.system.previous_context_aid is None:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.p1 & 0x18 not in (0x00, 0x10):
            self.perso = None
            raise CardError(SW.INCORRECT_P1P2)  # DGI or encrypted structures: not offered
        block = apdu.p2
        if block == 0:
            buffered = b""
        elif self.perso is None or self.perso[0] != block:
            self.perso = None
            raise CardError(SW.INCORRECT_P1P2)
        else:
            buffered = self.perso[1]
        data = buffered + apdu.data
        if len(data) > MAX_PERSO:
            self.perso = None
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        if not apdu.p1 & 0x80:
            self.perso = (block + 1, data)
            return
        self.perso = None
        self._personalise(data)

    def _personalise(self, data: bytes) -> None:
        """Merge the objects with the current state, check it is complete, write it at once."""
        try:
            objects = tlv.parse(data, allow_padding=False)
        except tlv.TlvError:
            raise CardError(SW.WRONG_DATA) from None
        state: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "role",
                "methods",
                "identity",
                "shared_key",
                "private",
                "certificate",
                "issuer",
                "lock_ids",
                "combination",
                "sim_ids",
                "server_address",
                "try_limit",
            )
        }
        seen: set[int] = set()
        for obj in objects:
            if obj.tag in seen:
                raise CardError(SW.WRONG_DATA)
            seen.add(obj.tag)
            _apply(state, obj)
        _check_complete(state)
        with self.system.transaction():
            for name, value in state.items():
                if getattr(self, name) != value:
                    setattr(self, name, value)
            if P_TRY_LIMIT in seen or self.tries_left > state["try_limit"]:
                self.tries_left = state["try_limit"]

    # -- GENERAL AUTHENTICATE -------------------------------------------------------

    def _general_authenticate(self, apdu: APDU) -> bytes | None:
        if not self.role:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        method = apdu.p1
        if apdu.p2 != 0 or method not in METHODS or not self.methods & method:
            raise CardError(SW.INCORRECT_P1P2)
        if self.role == ROLE_LOCK:
            return self._lock(method, apdu.data)
        return self._key_answer(method, apdu.data)

    def _lock(self, method: int, data: bytes) -> bytes:
        if data == _CHALLENGE_REQUEST:
            if self.tries_left <= 0:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            challenge = self.system.rng.random(CHALLENGE_SIZE)
            self.session = _Session(method, challenge)
            return tlv.build(
                TAG_DYNAMIC, [(TAG_CHALLENGE, challenge), (TAG_IDENTITY, self.identity)]
            )
        return self._collate(method, data)

    def _collate(self, method: int, data: bytes) -> bytes:
        """S107-S108: the challenge is spent and a try counted before any check."""
        session = self.session
        if not isinstance(session, _Session):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        self.session = None
        left = self.tries_left
        if left <= 0:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        left -= 1
        self.tries_left = left  # written down before the comparison (a tear buys nothing)
        failed = SW.AUTH_METHOD_BLOCKED if left == 0 else 0x63C0 | left
        items = _dynamic(data, truncated_sw=SW.WRONG_LENGTH)
        their_id, their_challenge, answer = _answer_items(items, method)
        if method != session.method:
            raise CardError(failed)
        mine_id = self.identity
        signed = auth_input(method, DIR_KEY, session.mine, their_challenge, mine_id, their_id)
        reply = auth_input(method, DIR_LOCK, their_challenge, session.mine, their_id, mine_id)
        if method == METHOD_SHARED_KEY:
            expected = aes_cmac(self.shared_key, signed)
            if not hmac.compare_digest(expected, answer):
                raise CardError(failed)
            proof = [(TAG_RESPONSE, aes_cmac(self.shared_key, reply))]
        else:
            public = self._certified(items.get(TAG_CVC), their_id)
            if not public.verify(signed, answer, encoding="raw"):
                raise CardError(failed)
            proof = [
                (TAG_RESPONSE, self._key().sign(reply, encoding="raw")),
                self.certificate,
            ]
        if left != self.try_limit:
            self.tries_left = self.try_limit
        return tlv.build(TAG_DYNAMIC, proof)

    def _certified(self, cert: bytes | None, holder: bytes) -> EcPublicKey:
        """The presenter's key from a certificate the issuer signed for that holder."""
        if cert is None:
            raise CardError(SW.WRONG_DATA)
        try:
            parsed = Cvc.from_bytes(cert)
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        issuer = self._issuer()
        if parsed.chr != holder or parsed.public.curve != P256 or not parsed.verify(issuer):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return parsed.public

    def _key_answer(self, method: int, data: bytes) -> bytes | None:
        items = _dynamic(data, truncated_sw=SW.WRONG_LENGTH)
        if TAG_CHALLENGE in items:
            lock_id, lock_challenge = items.get(TAG_IDENTITY), items[TAG_CHALLENGE]
            if lock_id is None or not 0 < len(lock_id) <= 32:
                raise CardError(SW.WRONG_DATA)
            if len(lock_challenge) != CHALLENGE_SIZE:
                raise CardError(SW.WRONG_LENGTH)
            mine = self.system.rng.random(CHALLENGE_SIZE)
            signed = auth_input(method, DIR_KEY, lock_challenge, mine, lock_id, self.identity)
            out: list[Any] = [(TAG_IDENTITY, self.identity), (TAG_CHALLENGE, mine)]
            if method == METHOD_SHARED_KEY:
                out.append((TAG_RESPONSE, aes_cmac(self.shared_key, signed)))
            else:
                out += [(TAG_RESPONSE, self._key().sign(signed, encoding="raw")), self.certificate]
            self.session = _Session(method, mine, lock_challenge, lock_id)
            return tlv.build(TAG_DYNAMIC, out)
        session = self.session
        self.session = None
        if not isinstance(session, _Session) or TAG_RESPONSE not in items:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if method != session.method:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        answer = items[TAG_RESPONSE]
        reply = auth_input(
            method, DIR_LOCK, session.mine, session.theirs, self.identity, session.their_id
        )
        if method == METHOD_SHARED_KEY:
            if len(answer) != 16:
                raise CardError(SW.WRONG_LENGTH)
            ok = hmac.compare_digest(aes_cmac(self.shared_key, reply), answer)
        else:
            if len(answer) != SIGNATURE_SIZE:
                raise CardError(SW.WRONG_LENGTH)
            public = self._certified(items.get(TAG_CVC), session.their_id)
            ok = public.verify(reply, answer, encoding="raw")
        if not ok:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return None

    # -- the download request (S206-S207) ---------------------------------------------

    def _download_request(self, apdu: APDU) -> bytes:
        if self.role != ROLE_LOCK:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if apdu.p1 not in (0x00, 0x01) or apdu.p2 != 0:
            raise CardError(SW.INCORRECT_P1P2)
        by_sms = apdu.p1 == 0x01
        if by_sms and self.server_address is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        if not isinstance(self.session, _Session):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)  # only during a presentation
        try:
            obj = tlv.Tlv.from_bytes(apdu.data, allow_padding=False)
            if obj.tag != 0xA2:
                raise ValueError("the phone's identifiers come in A2")
            phone = check_identifiers(list(obj.children))
            lock = check_identifiers(tlv.parse(self.lock_ids, allow_padding=False))
            lock_tags, phone_tags = combination_tags(self.combination.decode(), self.sim_ids)
            lock_part = select_identifiers(lock, lock_tags)
            phone_part = select_identifiers(phone, phone_tags)
        except (ValueError, tlv.TlvError):
            raise CardError(SW.WRONG_DATA) from None
        self.session = None
        counter = self.counter + 1
        self.counter = counter  # moved before signing: one counter, one request
        signed = request_signed_part(
            self.combination, lock_part, phone_part, self.identity, counter
        )
        signature = self._key().sign(signed, encoding="raw")
        request = tlv.build(0xE1, signed + tlv.build(TAG_SIGNATURE, signature))
        if not by_sms:
            return request
        self._send_sms(request)
        return b""

    def _send_sms(self, request: bytes) -> None:
        """The request as one short message to the server (8-bit data, TS 23.040 §9.2.2.2)."""
        from card.ota import cat, sms

        address = self.server_address
        international = address.startswith(b"+")
        digits = address.lstrip(b"+").decode()
        destination = sms.Address(digits, 0x91 if international else 0x81)
        try:
            tpdu = sms.SmsSubmit(destination, request, udhi=False, pid=0x00, dcs=0x04).to_bytes()
        except ValueError:
            raise CardError(SW.WRONG_LENGTH) from None  # over 140 octets: choose fewer ids
        self.system.send_proactive(cat.send_short_message(tpdu))

    # -- GET DATA ------------------------------------------------------------------------

    def _get_data(self, apdu: APDU) -> bytes:
        if apdu.p1p2 != 0x00E0 or apdu.data:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND if apdu.p1p2 != 0xE0 else SW.WRONG_LENGTH)
        items: list[Any] = [(0x80, bytes((self.role,))), (0x81, bytes((self.methods,)))]
        if self.identity is not None:
            items.append((TAG_IDENTITY, self.identity))
        items += [
            (0x82, bytes((self.try_limit,))),
            (0x86, bytes((max(self.tries_left, 0),))),
            (0x85, self.counter.to_bytes(4, "big")),
        ]
        if self.private is not None:
            items.append(public_key_template(self._key().public))
        return tlv.build(0xE0, items)


# -- personalisation objects ------------------------------------------------------------


def _apply(state: dict[str, Any], obj: tlv.Tlv) -> None:
    """One personalisation object into `state` (checked on its own)."""
    tag, value = obj.tag, obj.value
    if tag == P_ROLE:
        if value not in (bytes((ROLE_LOCK,)), bytes((ROLE_KEY,))):
            raise CardError(SW.WRONG_DATA)
        state["role"] = value[0]
    elif tag == P_METHODS:
        if len(value) != 1 or not value[0] or value[0] & ~(METHOD_SHARED_KEY | METHOD_CERTIFICATE):
            raise CardError(SW.WRONG_DATA)
        state["methods"] = value[0]
    elif tag == TAG_IDENTITY:
        if not 0 < len(value) <= 32:
            raise CardError(SW.WRONG_DATA)
        state["identity"] = value
    elif tag == P_SHARED_KEY:
        if len(value) not in (16, 24, 32):
            raise CardError(SW.WRONG_DATA)
        state["shared_key"] = value
    elif tag == P_PRIVATE:
        if len(value) != 32 or not 0 < int.from_bytes(value, "big") < P256.order:
            raise CardError(SW.WRONG_DATA)
        state["private"] = value
    elif tag == TAG_CVC:
        try:
            Cvc.from_bytes(obj.to_bytes())
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        state["certificate"] = obj.to_bytes()
    elif tag == TAG_PUBLIC_KEY:
        try:
            key = parse_public_key_template(obj.to_bytes())
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        if key.curve != P256:
            raise CardError(SW.WRONG_DATA)
        state["issuer"] = obj.to_bytes()
    elif tag == P_LOCK_IDS:
        try:
            check_identifiers(list(obj.children))
        except ValueError:
            raise CardError(SW.WRONG_DATA) from None
        state["lock_ids"] = value
    elif tag == P_TRY_LIMIT:
        if len(value) != 1 or not 1 <= value[0] <= 15:
            raise CardError(SW.WRONG_DATA)
        state["try_limit"] = value[0]
    elif tag == P_SERVER_ADDRESS:
        digits = value[1:] if value[:1] == b"+" else value
        if not 0 < len(digits) <= 20 or not digits.isdigit() or not digits.isascii():
            raise CardError(SW.WRONG_DATA)
        state["server_address"] = value
    elif tag == P_SIM_IDS:
        if value not in (b"\x82", b"\x83", b"\x84", bytes((ALL_SIM_IDS,))):
            raise CardError(SW.WRONG_DATA)
        state["sim_ids"] = value[0]
    elif tag == P_COMBINATION:
        if value not in (b"A", b"B", b"C", b"D"):
            raise CardError(SW.WRONG_DATA)
        state["combination"] = value
    else:
        raise CardError(SW.WRONG_DATA)


def _check_complete(state: dict[str, Any]) -> None:
    """The merged state must let the chip do what its role and methods need (else 6A80)."""
    role, methods = state["role"], state["methods"]
    need = ["identity"]
    if methods & METHOD_SHARED_KEY:
        need.append("shared_key")
    if methods & METHOD_CERTIFICATE:
        need += ["private", "certificate", "issuer"]
    if role == ROLE_LOCK:
        need += ["private", "lock_ids"]
    if role not in (ROLE_LOCK, ROLE_KEY) or not methods or any(state[n] is None for n in need):
        raise CardError(SW.WRONG_DATA)
    if state["certificate"] is not None:
        if state["private"] is None or state["issuer"] is None:
            raise CardError(SW.WRONG_DATA)
        cert = Cvc.from_bytes(state["certificate"])
        mine = EcKeyPair.from_private_value(P256, state["private"]).public
        issuer = parse_public_key_template(state["issuer"])
        if cert.public != mine or cert.chr != state["identity"] or not cert.verify(issuer):
            raise CardError(SW.WRONG_DATA)
    if role == ROLE_LOCK:
        try:
            ids = check_identifiers(tlv.parse(state["lock_ids"], allow_padding=False))
            select_identifiers(
                ids, combination_tags(state["combination"].decode(), state["sim_ids"])[0]
            )
        except (ValueError, tlv.TlvError):
            raise CardError(SW.WRONG_DATA) from None


def _dynamic(data: bytes, *, truncated_sw: int) -> dict[int, bytes]:
    """The children of a `7C` template as {tag: value} (a certificate keeps its TLV).

    Raises:
        CardError: `truncated_sw` when the bytes end inside an object; 6A80 not one
            7C, or a tag twice.
    """
    try:
        obj = tlv.Tlv.from_bytes(data, allow_padding=False)
        children = obj.children
    except tlv.TlvError:
        raise CardError(truncated_sw) from None
    if obj.tag != TAG_DYNAMIC:
        raise CardError(SW.WRONG_DATA)
    out: dict[int, bytes] = {}
    for child in children:
        if child.tag in out:
            raise CardError(SW.WRONG_DATA)
        out[child.tag] = child.to_bytes() if child.tag == TAG_CVC else child.value
    return out


def _answer_items(items: dict[int, bytes], method: int) -> tuple[bytes, bytes, bytes]:
    """(identity, challenge, answer) of a key's answer, their sizes checked."""
    their_id = items.get(TAG_IDENTITY)
    challenge = items.get(TAG_CHALLENGE)
    answer = items.get(TAG_RESPONSE)
    if their_id is None or challenge is None or answer is None:
        raise CardError(SW.WRONG_DATA)
    size = 16 if method == METHOD_SHARED_KEY else SIGNATURE_SIZE
    if not 0 < len(their_id) <= 32:
        raise CardError(SW.WRONG_DATA)
    if len(challenge) != CHALLENGE_SIZE or len(answer) != size:
        raise CardError(SW.WRONG_LENGTH)
    return their_id, challenge, answer
