"""PIV secure messaging (NIST SP 800-73-4 Part 2 §4): key establishment, the CVC, the session.

The client (h) and the PIV Card Application (ICC) establish session keys with
the one-pass key agreement C(1e, 1s) of SP 800-56A: the client's ephemeral key
against the card's static secure-messaging key (key reference `04`), whose
public half the card presents in a card-verifiable certificate (CVC, §4.1.5)
signed by the issuer's secure-messaging certificate signer (the X.509
certificate in the data object `5FC122`).

Cipher suites (Part 2 Table 14; SP 800-78-4 Table 6-2 identifiers):

- CS2 (`27`): P-256, SHA-256 KDF, AES-128, a 16-byte card nonce;
- CS7 (`2E`): P-384, SHA-384 KDF, AES-256, a 24-byte card nonce.

The exchange (§4.1.6-4.1.7): GENERAL AUTHENTICATE `00 87 <cs> 04 7C { 81
CB_H || ID_sH || Q_eH, 82 (empty) }`; the card answers `7C { 82 CB_ICC || N_ICC ||
AuthCryptogram_ICC || C_ICC }`. Both derive SK_CFRM, SK_MAC, SK_ENC, SK_RMAC with
the single-step KDF (SP 800-56A §5.8.1: hash(counter || Z || OtherInfo)) over
OtherInfo = len‖AlgorithmID (04 09090909 for CS2, 04 0D0D0D0D for CS7) ‖
len‖ID_sH ‖ len‖CB_H ‖ len‖T16(Q_eH) ‖ len‖ID_sICC ‖ len‖N_ICC ‖ len‖CB_ICC,
where ID_sICC is the leftmost 8 bytes of SHA-256 of the CVC and T16(Q_eH) the
first 16 bytes of x‖y. The key confirmation AuthCryptogram_ICC is
CMAC(SK_CFRM, "KC_1_V" ‖ ID_sICC ‖ ID_sH ‖ x‖y of Q_eH); SK_CFRM is then
discarded.

The session (§4.3): every command is `0C INS P1 P2` with `87 01‖E(data)`,
`97 Le` and `8E` the first 8 bytes of C_MCV = CMAC(SK_MAC, C_MCV ‖ 0C INS P1 P2
80 00.. (16 bytes) ‖ 87 ‖ 97); every response `87 01‖E(data)`, `99 SW1 SW2`, `8E`
the first 8 bytes of R_MCV = CMAC(SK_RMAC, R_MCV ‖ 87 ‖ 99). Data is padded
with 80 00.. (1 to 16 bytes) and encrypted with AES-CBC under SK_ENC with
IV = AES(SK_ENC, counter): the command counter counts from 1, the response
counter is the same count with its first byte 80. Both MAC chaining values
start at zero. The PIV card protects error answers too (99 carries the status);
only a failed check of the secure messaging itself (6987, 6988) goes back in
clear, and ends the session.

These byte formats were checked against OpenSC's PIV driver (0.24 and later,
built with PIV SM), an independent client (tests/interop).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from card import tlv
from card.apdu import CommandApdu
from card.crypto.cmac import aes_cbc_decrypt, aes_cbc_encrypt, aes_cmac, aes_ecb_encrypt
from card.crypto.keys import P256, P384, Curve, EcKeyPair, EcPublicKey
from card.sm.codec import SmError
from card.sw import SW

__all__ = [
    "CS2",
    "CS7",
    "SUITES",
    "KEY_SM",
    "CipherSuite",
    "PivCvc",
    "SessionKeys",
    "PivSmSession",
    "build_cvc",
    "parse_cvc",
    "id_icc",
    "derive_keys",
    "auth_cryptogram",
    "other_info",
    "check_point",
    "signer_certificate",
]

#: The PIV Secure Messaging key's reference (Part 1 Table 4b).
KEY_SM = 0x04
KC_1_V = b"KC_1_V"
CB_ZERO = 0x00  # control byte: no persistent binding (§4.1.2)
ID_SIZE = 8
CVC_PROFILE = 0x80
ROLE_CARD = 0x00  # the card's own CVC (0x12: an intermediate CVC)


@dataclass(frozen=True)
class CipherSuite:
    """One of Part 2 Table 14's cipher suites."""

    ident: int
    name: str
    curve: Curve
    key_size: int  # AES key bytes
    nonce_size: int  # N_ICC bytes
    algorithm_id: int  # the repeated byte of OtherInfo's AlgorithmID
    curve_oid: bytes  # DER content of the curve's OID
    signature_oid: bytes  # ECDSA with this suite's hash

    def hash(self) -> hashes.SHA256 | hashes.SHA384:
        return hashes.SHA256() if self.ident == 0x27 else hashes.SHA384()

    def digest(self, data: bytes) -> bytes:
        return (hashlib.sha256 if self.ident == 0x27 else hashlib.sha384)(data).digest()

    @property
    def coordinate(self) -> int:
        return self.curve.size


CS2 = CipherSuite(
    0x27,
    "CS2",
    P256,
    16,
    16,
    0x09,
    bytes.fromhex("2A8648CE3D030107"),  # prime256v1
    bytes.fromhex("2A8648CE3D040302"),  # ecdsa-with-SHA256
)
CS7 = CipherSuite(
    0x2E,
    "CS7",
    P384,
    32,
    24,
    0x0D,
    bytes.fromhex("2B81040022"),  # secp384r1
    bytes.fromhex("2A8648CE3D040303"),  # ecdsa-with-SHA384
)
SUITES = {s.ident: s for s in (CS2, CS7)}


# -- the card-verifiable certificate (§4.1.5, Table 15) ------------------------------------


@dataclass(frozen=True)
class PivCvc:
    """A parsed CVC: what the client checks and uses."""

    der: bytes
    issuer_id: bytes
    subject_id: bytes
    curve_oid: bytes
    point: bytes
    role: int
    body: bytes  # the signed part: 5F29 .. 5F4C
    signature_oid: bytes
    signature: bytes  # DER ECDSA

    def verify(self, signer: ec.EllipticCurvePublicKey, suite: CipherSuite) -> bool:
        """The issuer's signature over the body, with the suite's hash."""
        from cryptography.exceptions import InvalidSignature

        try:
            signer.verify(self.signature, self.body, ec.ECDSA(suite.hash()))
        except InvalidSignature:
            return False
        return True


def build_cvc(
    suite: CipherSuite,
    public: EcPublicKey,
    signer: EcKeyPair,
    *,
    issuer_id: bytes,
    subject_id: bytes,
    role: int = ROLE_CARD,
) -> bytes:
    """The CVC of `public`, signed by `signer` with the suite's ECDSA (Part 2 Table 15).

    `7F21 { 5F29 80, 42 issuer ID, 5F20 subject ID, 7F49 { 06 curve, 86 point },
    5F4C role, 5F37 { 30 { 30 { 06 signature algorithm }, 03 signature } } }`.
    """
    items: list[tuple[int, tlv.ValueOrChildren]] = [
        (0x5F29, bytes((CVC_PROFILE,))),
        (0x42, issuer_id),
        (0x5F20, subject_id),
        (0x7F49, [(0x06, suite.curve_oid), (0x86, public.to_point())]),
        (0x5F4C, bytes((role,))),
    ]
    body = b"".join(tlv.build(tag, value) for tag, value in items)
    det = signer.deterministic
    der = signer.cryptography_key.sign(body, ec.ECDSA(suite.hash(), deterministic_signing=det))
    algorithm = tlv.build(0x30, [(0x06, suite.signature_oid)])
    value = tlv.build(0x30, algorithm + tlv.build(0x03, b"\x00" + der))
    return tlv.build(0x7F21, body + tlv.build(0x5F37, value))


def parse_cvc(der: bytes) -> PivCvc:
    """Parse a CVC (Table 15).

    Raises:
        ValueError: not a CVC of that shape.
    """
    try:
        outer, end = tlv.parse_one(der, allow_padding=False)
    except (tlv.TlvError, ValueError) as e:
        raise ValueError(f"CVC: {e}") from None
    if outer.tag != 0x7F21 or end != len(der):
        raise ValueError("CVC: not one 7F21")
    items = outer.children
    tags = [i.tag for i in items]
    if tags != [0x5F29, 0x42, 0x5F20, 0x7F49, 0x5F4C, 0x5F37]:
        raise ValueError(f"CVC: objects {[f'{t:X}' for t in tags]}")
    profile, issuer, subject, key, role, sig = items
    if profile.value != bytes((CVC_PROFILE,)) or len(role.value) != 1:
        raise ValueError("CVC: profile or role")
    key_items = {k.tag: k.value for k in key.children}
    if set(key_items) != {0x06, 0x86}:
        raise ValueError("CVC: public key template")
    seq = tlv.Tlv.from_bytes(sig.value, allow_padding=False)
    if seq.tag != 0x30 or len(seq.children) != 2:
        raise ValueError("CVC: signature object")
    alg, bits = seq.children
    alg_oid = alg.children[0].value if alg.tag == 0x30 and alg.children else b""
    if bits.tag != 0x03 or not bits.value or bits.value[0] != 0:
        raise ValueError("CVC: signature value")
    body = b"".join(i.to_bytes() for i in items[:5])
    return PivCvc(
        der,
        issuer.value,
        subject.value,
        key_items[0x06],
        key_items[0x86],
        role.value[0],
        body,
        alg_oid,
        bits.value[1:],
    )


def id_icc(cvc_der: bytes) -> bytes:
    """ID_sICC: the leftmost 8 bytes of SHA-256 of the card's CVC (§4.1.6, step H6)."""
    return hashlib.sha256(cvc_der).digest()[:ID_SIZE]


# -- key derivation and confirmation (§4.1.6) ---------------------------------------------


@dataclass(frozen=True)
class SessionKeys:
    """The four session keys, in the KDF's order. `repr` shows none of them."""

    cfrm: bytes
    mac: bytes
    enc: bytes
    rmac: bytes

    def __repr__(self) -> str:
        return f"SessionKeys({len(self.enc) * 8}-bit AES)"


def _xy(suite: CipherSuite, point: bytes) -> bytes:
    if len(point) != 1 + 2 * suite.coordinate or point[0] != 0x04:
        raise ValueError("an uncompressed point of the suite's curve")
    return point[1:]


def other_info(
    suite: CipherSuite,
    id_h: bytes,
    cb_h: int,
    q_eh: bytes,
    id_sicc: bytes,
    n_icc: bytes,
    cb_icc: int,
) -> bytes:
    """SP 800-56A OtherInfo as PIV fixes it (Part 2 §4.1.6): each field with its length."""
    t16 = _xy(suite, q_eh)[:16]
    fields = (
        bytes((suite.algorithm_id,)) * 4,
        id_h,
        bytes((cb_h,)),
        t16,
        id_sicc,
        n_icc,
        bytes((cb_icc,)),
    )
    return b"".join(bytes((len(f),)) + f for f in fields)


def derive_keys(suite: CipherSuite, z: bytes, info: bytes) -> SessionKeys:
    """The single-step KDF of SP 800-56A §5.8.1: hash(counter || Z || OtherInfo), 4 keys."""
    size = suite.key_size
    out = b""
    counter = 1
    while len(out) < 4 * size:
        out += suite.digest(counter.to_bytes(4, "big") + z + info)
        counter += 1
    k = [out[i * size : (i + 1) * size] for i in range(4)]
    return SessionKeys(k[0], k[1], k[2], k[3])


def auth_cryptogram(
    keys: SessionKeys, suite: CipherSuite, id_sicc: bytes, id_h: bytes, q_eh: bytes
) -> bytes:
    """AuthCryptogram_ICC = CMAC(SK_CFRM, "KC_1_V" ‖ ID_sICC ‖ ID_sH ‖ x‖y of Q_eH)."""
    return aes_cmac(keys.cfrm, KC_1_V + id_sicc + id_h + _xy(suite, q_eh))


# -- the session (§4.3) ---------------------------------------------------------------------

TAG_CRYPTOGRAM = 0x87
TAG_LE = 0x97
TAG_STATUS = 0x99
TAG_MAC = 0x8E
_RESPONSE_FLAG = 0x80 << 120


def _pad(data: bytes) -> bytes:
    """80 then zeros to the next block: always 1 to 16 bytes (Part 2 §4.3)."""
    return data + b"\x80" + b"\x00" * (15 - len(data) % 16)


def _unpad(data: bytes) -> bytes:
    i = len(data) - 1
    while i >= 0 and data[i] == 0x00 and len(data) - i <= 16:
        i -= 1
    if i < 0 or data[i] != 0x80 or len(data) - i > 16:
        raise SmError(reason="bad padding")
    return data[:i]


def _split(data: bytes, allowed: tuple[int, ...]) -> tuple[dict[int, bytes], bytes, bytes]:
    """The data objects in order, what the MAC covers, and the MAC (8E, last)."""
    try:
        objs = tlv.parse(data, allow_padding=False)
    except (tlv.TlvError, ValueError):
        raise SmError(reason="SM data objects do not parse") from None
    if not objs or objs[-1].tag != TAG_MAC:
        raise SmError(SW.SM_DATA_OBJECTS_MISSING, "no cryptographic checksum (8E)")
    mac = objs[-1]
    if len(mac.value) != 8:
        raise SmError(reason="8E is not 8 bytes")
    found: dict[int, bytes] = {}
    last = -1
    for o in objs[:-1]:
        if o.tag not in allowed or o.tag in found or allowed.index(o.tag) < last:
            raise SmError(reason=f"unexpected data object {o.tag:02X}")
        last = allowed.index(o.tag)
        found[o.tag] = o.value
    covered = b"".join(o.to_bytes() for o in objs[:-1])
    return found, covered, mac.value


class PivSmSession:
    """One PIV SM session: the keys, the two counters and the two MAC chaining values.

    Direction-neutral like `card.sm.codec.SmSession`: a client calls
    `wrap_command` and `unwrap_response`, the card `unwrap_command` and
    `protect_response`. Any check that fails raises `SmError` and the caller
    ends the session.
    """

    __slots__ = ("_keys", "_count", "_c_mcv", "_r_mcv", "_open")

    #: The card protects error status words too (DO 99), not only 9000 and warnings.
    protects_errors = True
    #: A plain command is answered in plain and leaves the session running: over the
    #: contact interface PIV mixes both (the client reads 5FC122 in clear after the
    #: key establishment, §4.1.6 step H5); access rules then decide per object.
    allows_plain = True

    def __init__(self, keys: SessionKeys) -> None:
        self._keys = keys
        self._count = 1
        self._c_mcv = bytes(16)
        self._r_mcv = bytes(16)
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise SmError(SW.CONDITIONS_NOT_SATISFIED, "the SM session is closed")

    def _iv(self, counter: int) -> bytes:
        return aes_ecb_encrypt(self._keys.enc, counter.to_bytes(16, "big"))

    @staticmethod
    def _header(cla: int, ins: int, p1: int, p2: int) -> bytes:
        return bytes((cla, ins, p1, p2, 0x80)) + bytes(11)

    def _c_mac(self, header: bytes, covered: bytes) -> bytes:
        self._c_mcv = aes_cmac(self._keys.mac, self._c_mcv + header + covered)
        return self._c_mcv[:8]

    def _r_mac(self, covered: bytes) -> bytes:
        self._r_mcv = aes_cmac(self._keys.rmac, self._r_mcv + covered)
        return self._r_mcv[:8]

    # -- the client's side ---------------------------------------------------------------

    def wrap_command(self, apdu: bytes | CommandApdu) -> bytes:
        """Protect a plain command: `0C INS P1 P2 Lc 87 97 8E 00` (Part 2 §4.3)."""
        self._check_open()
        cmd = apdu if isinstance(apdu, CommandApdu) else CommandApdu.from_bytes(bytes(apdu))
        if cmd.cla & 0x80:
            raise ValueError(f"CLA {cmd.cla:02X} is proprietary: no secure messaging")
        cla = 0x0C | (cmd.cla & 0x03)
        body = b""
        if cmd.data:
            enc = aes_cbc_encrypt(self._keys.enc, self._iv(self._count), _pad(cmd.data))
            body += tlv.build(TAG_CRYPTOGRAM, b"\x01" + enc)
        if cmd.le is not None:
            le = cmd.le
            body += tlv.build(TAG_LE, bytes((le & 0xFF,)) if le <= 256 else le.to_bytes(2, "big"))
        mac = self._c_mac(self._header(cla, cmd.ins, cmd.p1, cmd.p2), body)
        body += tlv.build(TAG_MAC, mac)
        extended = len(body) > 255
        le_out = 65536 if extended else 256
        return CommandApdu(cla, cmd.ins, cmd.p1, cmd.p2, body, le_out, extended).to_bytes()

    def unwrap_response(self, response: bytes) -> bytes:
        """Check and decrypt a protected response: the plain data || SW1 SW2.

        An SM error in clear (6987, 6988) ends the session and comes back as it is.

        Raises:
            SmError: a missing or wrong object or MAC, a closed session.
        """
        self._check_open()
        if len(response) < 2:
            raise SmError(reason="response shorter than a status word")
        data, sw = response[:-2], response[-2:]
        if not data:
            self.close()
            if sw in (b"\x69\x87", b"\x69\x88"):
                return bytes(sw)
            raise SmError(SW.SM_DATA_OBJECTS_MISSING, f"unprotected {sw.hex().upper()}")
        found, covered, mac = _split(data, (TAG_CRYPTOGRAM, TAG_STATUS))
        status = found.get(TAG_STATUS)
        if status is None or len(status) != 2:
            raise SmError(SW.SM_DATA_OBJECTS_MISSING, "no processing status (99)")
        if not hmac.compare_digest(self._r_mac(covered), mac):
            raise SmError(reason="response MAC mismatch")
        plain = b""
        cryptogram = found.get(TAG_CRYPTOGRAM)
        if cryptogram is not None:
            plain = self._decrypt(cryptogram, self._count | _RESPONSE_FLAG)
        self._count += 1
        return plain + status

    # -- the card's side -------------------------------------------------------------------

    def _decrypt(self, value: bytes, counter: int) -> bytes:
        if len(value) < 17 or value[0] != 0x01 or (len(value) - 1) % 16:
            raise SmError(reason="cryptogram: indicator or length")
        return _unpad(aes_cbc_decrypt(self._keys.enc, self._iv(counter), value[1:]))

    def unwrap_command(self, cmd: CommandApdu) -> CommandApdu:
        """Check and decrypt a protected command: the plain command the applet runs.

        Raises:
            SmError: 6987 when 8E is missing; 6988 for a wrong MAC (a replay shows as
                one: the chaining value moved on), cryptogram or object.
        """
        self._check_open()
        if (cmd.cla & 0x0C) != 0x0C:
            raise SmError(SW.SM_DATA_OBJECTS_MISSING, "CLA announces no secure messaging")
        found, covered, mac = _split(cmd.data, (TAG_CRYPTOGRAM, TAG_LE))
        expected = aes_cmac(
            self._keys.mac, self._c_mcv + self._header(cmd.cla, cmd.ins, cmd.p1, cmd.p2) + covered
        )
        if not hmac.compare_digest(expected[:8], mac):
            raise SmError(reason="command MAC mismatch")
        self._c_mcv = expected
        data = b""
        if TAG_CRYPTOGRAM in found:
            data = self._decrypt(found[TAG_CRYPTOGRAM], self._count)
        le: int | None = None
        if TAG_LE in found:
            raw = found[TAG_LE]
            if len(raw) not in (1, 2):
                raise SmError(reason="97 is not 1 or 2 bytes")
            le = int.from_bytes(raw, "big") or (256 if len(raw) == 1 else 65536)
        try:
            return CommandApdu(cmd.cla & 0xF3, cmd.ins, cmd.p1, cmd.p2, data, le)
        except ValueError as e:
            raise SmError(reason=str(e)) from None

    def protect_response(self, data: bytes, sw: int, *, odd_ins: bool = False) -> bytes:
        """The data field of a protected response: [87] 99 8E. The SW goes out as `sw`."""
        self._check_open()
        body = b""
        if data:
            iv = self._iv(self._count | _RESPONSE_FLAG)
            enc = aes_cbc_encrypt(self._keys.enc, iv, _pad(bytes(data)))
            body += tlv.build(TAG_CRYPTOGRAM, b"\x01" + enc)
        body += tlv.build(TAG_STATUS, (sw & 0xFFFF).to_bytes(2, "big"))
        body += tlv.build(TAG_MAC, self._r_mac(body))
        self._count += 1
        return body

    def skip_response(self) -> None:
        """A response that went out in clear: the count moves on as the client's will not.

        (PIV protects every answer but an SM error, which ends the session.)
        """
        self._count += 1

    def __repr__(self) -> str:
        return f"PivSmSession({'open' if self._open else 'closed'})"


def check_point(suite: CipherSuite, point: bytes) -> EcPublicKey:
    """The client's ephemeral key, validated on the suite's curve (SP 800-56A §5.6.2.3).

    Raises:
        ValueError: not an uncompressed point of the curve.
    """
    _xy(suite, point)
    return EcPublicKey.from_point(suite.curve, point)


def signer_certificate(signer: EcKeyPair, suite: CipherSuite, serial: int, name: str) -> bytes:
    """A self-signed X.509 certificate of the SM certificate signer's key (object 5FC122).

    A real issuer keeps this key in its HSM and certifies it under its PKI; an
    emulated card is its own issuer, so the certificate is self-signed (the
    client pins it, as it would pin the issuer's root). Valid 2024-2049.
    """
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardemu"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    key = signer.cryptography_key
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2049, 12, 31, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False),
            critical=True,
        )
        .sign(key, suite.hash())
    )
    return cert.public_bytes(serialization.Encoding.DER)
