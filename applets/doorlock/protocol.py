"""What the door-lock applet and its hosts agree on: tags, methods, the authenticated inputs.

Seed 001 (JP 6911303 B2) leaves the authentication method open ("challenge-
response ... public keys and certificates ... selected as appropriate"); the
applet offers two, chosen per installation:

- `METHOD_SHARED_KEY` (01): mutual challenge-response under an AES key the
  lock and its keys share. Each chip draws a 16-byte challenge from its RNG;
  each answers with AES-CMAC (NIST SP 800-38B) over `auth_input`.
- `METHOD_CERTIFICATE` (02): each chip holds a P-256 key pair and a CV
  certificate (`card.sm.cvc`, BSI TR-03110-3 shape) from the issuer, and the
  issuer's public key; each answers with ECDSA-SHA-256 (plain r || s) over
  `auth_input` and presents its certificate.

`auth_input(method, direction, first_challenge, second_challenge, first_id,
second_id)` is::

    "DOORLOCK" || method (1) || direction (1: 'K' key to lock, 'L' lock to key)
      || first_challenge (16) || second_challenge (16)
      || len(first_id) (1) || first_id || len(second_id) (1) || second_id

The key's answer puts the lock's challenge and identity first (`'K', RC, RP,
IDL, IDP`); the lock's answer the key's (`'L', RP, RC, IDP, IDL`). The
direction byte and the order keep one answer from being reflected as the
other; both challenges make every answer session-unique.

Identifiers (the seed's step S207: the lock and the phone named by what the
server knows them by) are BER-TLV inside `A1` (the lock) and `A2` (the phone):
`80` MAC address (6 bytes), `81` IMEI, `82` ICCID, `83` IMSI, `84` MSISDN
(ASCII digits; an MSISDN may start with '+'). The seed's combinations:

| combination | the lock by           | the phone by          |
|-------------|-----------------------|-----------------------|
| A           | MAC                   | IMEI                  |
| B           | MAC                   | ICCID, IMSI, MSISDN   |
| C           | ICCID, IMSI, MSISDN   | IMEI                  |
| D           | ICCID, IMSI, MSISDN   | ICCID, IMSI, MSISDN   |

("Which of the information given to the USIM card is used can be determined
appropriately": a SIM is named by the one identifier the installation's
policy chooses, ICCID by default, or by all three (`ALL_SIM_IDS`). One is
enough to find it, and keeps the signed request inside one short message
(140 octets, 3GPP TS 23.040 §9.2.3.24) when the lock's SIM sends it by SMS.)
"""

from __future__ import annotations

from card import tlv

__all__ = [
    "ALL_SIM_IDS",
    "CHALLENGE_SIZE",
    "COMBINATIONS",
    "DEVICE_TAGS",
    "DIR_KEY",
    "DIR_LOCK",
    "ID_ICCID",
    "ID_IMEI",
    "ID_IMSI",
    "ID_MAC",
    "ID_MSISDN",
    "METHOD_CERTIFICATE",
    "METHOD_SHARED_KEY",
    "METHODS",
    "ROLE_KEY",
    "ROLE_LOCK",
    "SIM_TAGS",
    "auth_input",
    "check_identifiers",
    "combination_tags",
    "select_identifiers",
    "request_signed_part",
]

ROLE_LOCK = 0x01
ROLE_KEY = 0x02

METHOD_SHARED_KEY = 0x01
METHOD_CERTIFICATE = 0x02
METHODS = (METHOD_SHARED_KEY, METHOD_CERTIFICATE)

CHALLENGE_SIZE = 16
DIR_KEY = 0x4B  # 'K': the key (phone) answers the lock
DIR_LOCK = 0x4C  # 'L': the lock answers the key

ID_MAC, ID_IMEI, ID_ICCID, ID_IMSI, ID_MSISDN = 0x80, 0x81, 0x82, 0x83, 0x84
DEVICE_TAGS = {"lock": (ID_MAC,), "phone": (ID_IMEI,)}
SIM_TAGS = (ID_ICCID, ID_IMSI, ID_MSISDN)

#: combination -> (the lock's identifier tags, the phone's identifier tags)
COMBINATIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "A": ((ID_MAC,), (ID_IMEI,)),
    "B": ((ID_MAC,), SIM_TAGS),
    "C": (SIM_TAGS, (ID_IMEI,)),
    "D": (SIM_TAGS, SIM_TAGS),
}

#: The policy value naming a SIM by all its identifiers.
ALL_SIM_IDS = 0xFF

_LABEL = b"DOORLOCK"
_MAX_ID = 32


def combination_tags(combination: str, sim_ids: int = ID_ICCID) -> tuple[tuple[int, ...], ...]:
    """(the lock's tags, the phone's tags) of a combination, a SIM named as `sim_ids` says."""
    sides = COMBINATIONS[combination]
    chosen = SIM_TAGS if sim_ids == ALL_SIM_IDS else (sim_ids,)
    return tuple(chosen if side == SIM_TAGS else side for side in sides)


def auth_input(
    method: int, direction: int, first: bytes, second: bytes, first_id: bytes, second_id: bytes
) -> bytes:
    """The bytes a CMAC or a signature covers (see the module docstring).

    Raises:
        ValueError: a challenge that is not 16 bytes, an identity over 32 bytes.
    """
    if len(first) != CHALLENGE_SIZE or len(second) != CHALLENGE_SIZE:
        raise ValueError("challenges are 16 bytes")
    if not 0 < len(first_id) <= _MAX_ID or not 0 < len(second_id) <= _MAX_ID:
        raise ValueError("identities are 1..32 bytes")
    return (
        _LABEL
        + bytes((method, direction))
        + first
        + second
        + bytes((len(first_id),))
        + first_id
        + bytes((len(second_id),))
        + second_id
    )


def check_identifiers(objects: list[tlv.Tlv]) -> dict[int, bytes]:
    """Identifier TLVs as {tag: value}, checked.

    Raises:
        ValueError: an unknown tag, a tag twice, a MAC that is not 6 bytes, a
            number that is not digits (an MSISDN may start with '+'), over 20 bytes.
    """
    out: dict[int, bytes] = {}
    for obj in objects:
        tag, value = obj.tag, obj.value
        if tag not in (ID_MAC, ID_IMEI, *SIM_TAGS) or tag in out:
            raise ValueError(f"identifier tag {tag:02X} unknown or repeated")
        if tag == ID_MAC:
            if len(value) != 6:
                raise ValueError("a MAC address is 6 bytes")
        else:
            digits = value[1:] if tag == ID_MSISDN and value[:1] == b"+" else value
            if not 0 < len(value) <= 20 or not digits.isdigit() or not digits.isascii():
                raise ValueError(f"identifier {tag:02X}: 1..20 ASCII digits")
        out[tag] = value
    return out


def select_identifiers(ids: dict[int, bytes], tags: tuple[int, ...]) -> bytes:
    """The TLVs of `ids` a combination names, in tag order.

    Raises:
        ValueError: none of them is there (a device identifier must be; of the
            SIM's, at least one).
    """
    chosen = [(t, ids[t]) for t in tags if t in ids]
    if not chosen:
        raise ValueError("the combination names identifiers this side does not have")
    return b"".join(tlv.build(t, v) for t, v in chosen)


def request_signed_part(
    combination: bytes, lock_ids: bytes, phone_ids: bytes, lock_identity: bytes, counter: int
) -> bytes:
    """The download request's TLVs before its signature (what the lock's chip signs).

    `80 combination, A1 lock identifiers, A2 phone identifiers, 5F20 lock
    identity, 85 request counter (4 bytes)`.
    """
    return (
        tlv.build(0x80, combination)
        + tlv.build(0xA1, lock_ids)
        + tlv.build(0xA2, phone_ids)
        + tlv.build(0x5F20, lock_identity)
        + tlv.build(0x85, counter.to_bytes(4, "big"))
    )
