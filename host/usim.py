"""A USIM session: read the standard files decoded, verify PINs, run and check AUTHENTICATE.

The recipe a terminal (or a test) uses on any reader, emulated or PC/SC:

    session = UsimSession(reader)
    info = session.read()                         # ICCID, IMSI, UST, SPN, MSISDN ...
    result = session.authenticate(rand, autn)     # TS 31.102 §7.1.2
    check_auth(result, Milenage(k, opc), rand)    # the AuC's view of the answer

T=0 conventions are handled by the `GetResponseReader` every session stacks on its
reader: 61xx (9Fxx) is followed by GET RESPONSE, 6Cxx by the command again with the
exact Le, and a card that never stops announcing data ends in a ReaderError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from card.crypto.milenage import AkaAlgorithm, c2, c3, parse_auts
from card.crypto.suci import Suci, SuciError, decode_msin, deconceal, kausf, res_star
from card.sw import SW, retries_left
from card.uicc import ts_31_102 as u
from card.uicc.ts_102_221 import (
    USIM_AID_PREFIX,
    ApplicationTemplate,
    decode_dir_record,
    decode_iccid,
    pad_pin,
)
from host.errors import ApduError
from host.readers.base import Reader
from host.session import ApduSession

__all__ = [
    "AuthCheck",
    "AuthResult",
    "PinError",
    "UsimInfo",
    "UsimSession",
    "check_auth",
]

PIN1, PIN2, ADM1 = 0x01, 0x81, 0x0A
EF_DIR, EF_ICCID = 0x2F00, 0x2FE2


class PinError(ApduError):
    """A PIN was refused: `tries_left` is the counter the card reported (0 when blocked)."""

    def __init__(self, sw: int, tries_left: int, command: str = "") -> None:
        super().__init__(sw, b"", command)
        self.tries_left = tries_left


@dataclass(frozen=True)
class AuthResult:
    """The answer to AUTHENTICATE: RES/CK/IK (and Kc), or AUTS on a synchronisation failure."""

    res: bytes | None = None
    ck: bytes | None = None
    ik: bytes | None = None
    kc: bytes | None = None
    auts: bytes | None = None
    sres: bytes | None = None

    @property
    def sync_failure(self) -> bool:
        return self.auts is not None

    def to_json(self) -> dict[str, Any]:
        return {k: (v.hex().upper() if v is not None else None) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class AuthCheck:
    """What the network concludes from an answer (TS 33.102 §6.3.3, §6.3.5)."""

    ok: bool
    detail: str
    sqn_ms: int | None = None


@dataclass
class UsimInfo:
    """The standard files of a USIM, decoded (absent or unreadable files are None)."""

    atr: bytes = b""
    iccid: str | None = None
    applications: list[ApplicationTemplate] = field(default_factory=list)
    aid: bytes | None = None
    imsi: str | None = None
    ad: u.AdministrativeData | None = None
    services: frozenset[int] | None = None
    est: frozenset[int] | None = None
    acc: frozenset[int] | None = None
    spn: u.Spn | None = None
    msisdn: str | None = None
    hpplmn: int | None = None
    fplmn: tuple[u.Plmn, ...] | None = None
    loci: u.Loci | None = None
    psloci: u.PsLoci | None = None
    ecc: list[u.EmergencyCallCode] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def plmn(self) -> u.Plmn | None:
        if self.imsi is None:
            return None
        return u.Plmn.from_imsi(self.imsi, self.ad.mnc_length if self.ad else 2)

    def to_json(self) -> dict[str, Any]:
        """Stable keys, hex strings for bytes."""
        return {
            "atr": self.atr.hex().upper(),
            "iccid": self.iccid,
            "applications": [
                {"aid": a.aid.hex().upper(), "label": a.label} for a in self.applications
            ],
            "usim_aid": self.aid.hex().upper() if self.aid else None,
            "imsi": self.imsi,
            "plmn": str(self.plmn) if self.plmn else None,
            "mnc_length": self.ad.mnc_length if self.ad else None,
            "ue_operation_mode": self.ad.ue_operation_mode if self.ad else None,
            "services": sorted(self.services) if self.services is not None else None,
            "services_named": [
                u.UST_SERVICES.get(n, f"service {n}") for n in sorted(self.services or ())
            ],
            "est": sorted(self.est) if self.est is not None else None,
            "access_classes": sorted(self.acc) if self.acc is not None else None,
            "spn": self.spn.name if self.spn else None,
            "msisdn": self.msisdn,
            "hpplmn": self.hpplmn,
            "fplmn": [str(p) for p in self.fplmn] if self.fplmn is not None else None,
            "loci": None
            if self.loci is None
            else {
                "tmsi": self.loci.tmsi.hex().upper(),
                "lai": self.loci.plmn.hex().upper() + f"{self.loci.lac:04X}",
                "status": self.loci.status,
            },
            "ecc": [e.code for e in self.ecc],
            "errors": dict(self.errors),
        }


class UsimSession(ApduSession):
    """USIM operations over any reader (ETSI TS 102 221, 3GPP TS 31.102).

    Commands go through `ApduSession.send` (GET RESPONSE and 6Cxx handled there,
    any SW but 9000 an `ApduError`).

    Args:
        reader: a connected reader.
        channel: the logical channel to use (0-3).
    """

    def __init__(self, reader: Reader, channel: int = 0) -> None:
        super().__init__(reader)
        self.cla = channel & 0x03
        self.aid: bytes | None = None

    # -- files ---------------------------------------------------------------------------

    def select_mf(self) -> bytes:
        """SELECT the MF, returning its FCP (TS 102 221 §11.1.1)."""
        return self.send(self.cla, 0xA4, 0x00, 0x04, b"\x3f\x00", 0, what="SELECT MF")

    def select_aid(self, aid: bytes) -> bytes:
        return self.send(self.cla, 0xA4, 0x04, 0x04, aid, 0, what=f"SELECT {aid.hex().upper()}")

    def select_file(self, fid: int) -> None:
        """SELECT a file of the current DF by its identifier, no response data (§11.1.1)."""
        self.send(self.cla, 0xA4, 0x00, 0x0C, fid.to_bytes(2, "big"), what=f"SELECT {fid:04X}")

    def read_binary(self, fid: int) -> bytes:
        """The whole content of a transparent EF of the current DF.

        READ BINARY (TS 102 221 §11.1.3) in 256-byte steps until a short part,
        6282 (end of file reached before Le bytes) or 6B00 past the end.
        """
        self.select_file(fid)
        out = b""
        while True:
            try:
                chunk = self.send(
                    self.cla, 0xB0, len(out) >> 8, len(out) & 0xFF, le=0,
                    what=f"READ BINARY {fid:04X}",
                )  # fmt: skip
            except ApduError as e:
                if e.sw == SW.WRONG_P1P2 and out:
                    return out  # offset past the end: done
                if e.sw != SW.END_OF_FILE:
                    raise
                return out + e.data
            out += chunk
            if len(chunk) < 256:
                return out

    def read_records(self, fid: int) -> list[bytes]:
        """Every record of a record EF of the current DF (record numbers 1..n)."""
        self.select_file(fid)
        records = []
        for n in range(1, 255):
            try:
                rec = self.send(self.cla, 0xB2, n, 0x04, le=0, what=f"READ RECORD {fid:04X} #{n}")
            except ApduError as e:
                if e.sw == SW.RECORD_NOT_FOUND:
                    break
                raise
            records.append(rec)
        return records

    def applications(self) -> list[ApplicationTemplate]:
        """The application templates of EF.DIR (TS 102 221 §13.1)."""
        self.select_mf()
        out = []
        for rec in self.read_records(EF_DIR):
            try:
                t = decode_dir_record(rec)
            except ValueError:
                continue
            if t is not None:
                out.append(t)
        return out

    def iccid(self) -> str:
        self.select_mf()
        return decode_iccid(self.read_binary(EF_ICCID))

    def select_usim(self) -> bytes:
        """Select the USIM named in EF.DIR (else by the partial AID); returns its AID."""
        apps = [a.aid for a in self.applications() if a.aid.startswith(USIM_AID_PREFIX)]
        aid = apps[0] if apps else USIM_AID_PREFIX
        self.select_aid(aid)
        self.aid = aid
        return aid

    # -- PINs (TS 102 221 §11.1.9) ----------------------------------------------------------

    def verify_pin(self, pin: str | bytes, ref: int = PIN1) -> None:
        """VERIFY a PIN (key reference 01 PIN1, 81 PIN2, 0A ADM1).

        Raises:
            PinError: 63Cx (a wrong PIN, x tries left) or 6983 (blocked).
        """
        try:
            self.send(self.cla, 0x20, 0x00, ref, pad_pin(pin), what=f"VERIFY {ref:02X}")
        except ApduError as e:
            left = retries_left(e.sw)
            if left is not None or e.sw == SW.AUTH_METHOD_BLOCKED:
                raise PinError(e.sw, left or 0, e.command) from None
            raise

    def pin_tries(self, ref: int = PIN1) -> int | None:
        """Tries left for a PIN (None when it is verified or disabled)."""
        try:
            self.send(self.cla, 0x20, 0x00, ref, what=f"VERIFY {ref:02X}")
        except ApduError as e:
            if e.sw == SW.AUTH_METHOD_BLOCKED:
                return 0
            left = retries_left(e.sw)
            if left is None:
                raise
            return left
        return None

    # -- reading the USIM ---------------------------------------------------------------------

    def read(self, atr: bytes = b"") -> UsimInfo:
        """ICCID, EF.DIR, then the ADF.USIM files decoded (TS 31.102 §4.2).

        A file that cannot be read (absent, or a PIN needed) is left None and its
        status word noted in `errors`.
        """
        info = UsimInfo(atr=atr)
        info.iccid = self.iccid()
        info.applications = self.applications()
        info.aid = self.select_usim()

        def get(name: str, fid: int, decode: Any, records: bool = False) -> Any:
            try:
                raw = self.read_records(fid) if records else self.read_binary(fid)
                return decode(raw)
            except ApduError as e:
                info.errors[name] = f"{e.sw:04X}"
            except ValueError as e:
                info.errors[name] = f"undecodable: {e}"
            return None

        info.imsi = get("imsi", 0x6F07, u.decode_imsi)
        info.ad = get("ad", 0x6FAD, u.decode_ad)
        info.services = get("ust", 0x6F38, u.decode_service_table)
        info.est = get("est", 0x6F56, u.decode_service_table)
        info.acc = get("acc", 0x6F78, u.decode_acc)
        info.spn = get("spn", 0x6F46, u.decode_spn)
        info.hpplmn = get("hpplmn", 0x6F31, lambda b: b[0])
        info.fplmn = get("fplmn", 0x6F7B, u.decode_plmn_list)
        info.loci = get("loci", 0x6F7E, u.decode_loci)
        info.psloci = get("psloci", 0x6F73, u.decode_psloci)
        msisdn = get("msisdn", 0x6F40, lambda rs: [u.decode_dialling_number(r) for r in rs], True)
        if msisdn:
            info.msisdn = next((e.number for e in msisdn if e is not None), None)
        ecc = get("ecc", 0x6FB7, lambda rs: [u.decode_ecc(r) for r in rs], True)
        info.ecc = [e for e in ecc or [] if e is not None]
        return info

    # -- AUTHENTICATE (TS 31.102 §7.1.2) --------------------------------------------------------

    def authenticate(self, rand: bytes, autn: bytes) -> AuthResult:
        """AUTHENTICATE in the 3G context on the selected USIM.

        Raises:
            ApduError: 9862 (wrong MAC), 6982 (PIN1 needed) or any other refusal.
        """
        if len(rand) != 16 or len(autn) != 16:
            raise ValueError("RAND and AUTN are 16 bytes")
        data = bytes((16,)) + rand + bytes((16,)) + autn
        out = self.send(self.cla, 0x88, 0x00, 0x81, data, 0, what="AUTHENTICATE")
        return _parse_3g(out)

    def authenticate_gsm(self, rand: bytes) -> AuthResult:
        """AUTHENTICATE in the GSM context: SRES and Kc."""
        if len(rand) != 16:
            raise ValueError("RAND is 16 bytes")
        out = self.send(self.cla, 0x88, 0x00, 0x80, bytes((16,)) + rand, 0, what="AUTHENTICATE")
        if len(out) != 14 or out[0] != 4 or out[5] != 8:
            raise ApduError(0x9000, out, "AUTHENTICATE (GSM): malformed response")
        return AuthResult(sres=out[1:5], kc=out[6:14])

    # -- 5G ------------------------------------------------------------------------------

    def get_suci(self) -> Suci:
        """GET IDENTITY in the SUCI context (TS 31.102 §7.5) on the selected USIM.

        Raises:
            ApduError: 6A81 (the USIM does not calculate the SUCI), or any refusal;
                status 9000 with a malformed answer.
        """
        out = self.send(0x80 | self.cla, 0x78, 0x00, 0x01, le=0, what="GET IDENTITY")
        if len(out) < 2 or out[0] != 0xA1:
            raise ApduError(0x9000, out, "GET IDENTITY: no SUCI data object")
        n, pos = out[1], 2
        if n == 0x81 and len(out) > 2:
            n, pos = out[2], 3
        try:
            return Suci.from_bytes(out[pos : pos + n])
        except SuciError as e:
            raise ApduError(0x9000, out, f"GET IDENTITY: {e}") from None

    def authenticate_5g(self, rand: bytes, autn: bytes, sn_name: bytes) -> FiveGAka:
        """AUTHENTICATE (3G context, as the ME uses it for 5G AKA) and the ME's
        derivations: RES* (TS 33.501 Annex A.4) and K_AUSF (Annex A.2, from SQN xor AK,
        the first 6 bytes of AUTN)."""
        result = self.authenticate(rand, autn)
        if result.res is None or result.ck is None or result.ik is None:
            return FiveGAka(result)
        return FiveGAka(
            result,
            res_star(result.ck, result.ik, sn_name, rand, result.res),
            kausf(result.ck, result.ik, sn_name, autn[:6]),
        )


@dataclass(frozen=True)
class FiveGAka:
    """AUTHENTICATE's answer with the ME's 5G AKA values (None on a sync failure)."""

    result: AuthResult
    res_star: bytes | None = None
    kausf: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "res_star": None if self.res_star is None else self.res_star.hex().upper(),
            "kausf": None if self.kausf is None else self.kausf.hex().upper(),
        }


def supi_from_suci(suci: Suci, hn_private: bytes) -> str:
    """The SIDF: de-conceal a SUCI of an IMSI with the home network private key
    (TS 33.501 §6.12.2, Annex C.3.3); "imsi-" followed by the IMSI digits.

    Raises:
        SuciError: the MAC tag does not verify, or the output is malformed.
    """
    msin = decode_msin(deconceal(suci.scheme, suci.output, hn_private))
    return f"imsi-{suci.mcc}{suci.mnc}{msin}"


def _parse_3g(out: bytes) -> AuthResult:
    def lv(pos: int) -> tuple[bytes, int]:
        n = out[pos]
        if pos + 1 + n > len(out):
            raise ApduError(0x9000, out, "AUTHENTICATE: malformed response")
        return out[pos + 1 : pos + 1 + n], pos + 1 + n

    if not out:
        raise ApduError(0x9000, out, "AUTHENTICATE: no response data")
    try:
        if out[0] == 0xDC:
            auts, _ = lv(1)
            return AuthResult(auts=auts)
        if out[0] == 0xDB:
            res, p = lv(1)
            ck, p = lv(p)
            ik, p = lv(p)
            kc = lv(p)[0] if p < len(out) else None
            return AuthResult(res=res, ck=ck, ik=ik, kc=kc)
    except IndexError:
        pass
    raise ApduError(0x9000, out, "AUTHENTICATE: malformed response")


def check_auth(result: AuthResult, alg: AkaAlgorithm, rand: bytes) -> AuthCheck:
    """Check an AUTHENTICATE answer the way the network does.

    A success must carry the expected RES, CK, IK (and Kc = c3(CK, IK)); a
    synchronisation failure must carry a MAC-S that verifies, and gives SQN_MS.
    """
    if result.auts is not None:
        if len(result.auts) != 14:
            return AuthCheck(False, "AUTS is not 14 bytes")
        sqn_ms, xmac_s = parse_auts(alg, rand, result.auts)
        if xmac_s != result.auts[6:]:
            return AuthCheck(False, "synchronisation failure with a wrong MAC-S")
        return AuthCheck(
            True, "synchronisation failure (AUTS verified)", int.from_bytes(sqn_ms, "big")
        )
    if result.sres is not None:
        res, ck, ik, _ = alg.f2345(rand)
        ok = result.sres == c2(res) and result.kc == c3(ck, ik)
        return AuthCheck(ok, "SRES and Kc match" if ok else "SRES or Kc differ")
    xres, ck, ik, _ = alg.f2345(rand)
    problems = [
        name
        for name, got, want in (
            ("RES", result.res, xres),
            ("CK", result.ck, ck),
            ("IK", result.ik, ik),
        )
        if got != want
    ]
    if result.kc is not None and result.kc != c3(ck, ik):
        problems.append("Kc")
    if problems:
        return AuthCheck(False, f"{', '.join(problems)} differ from the expected values")
    return AuthCheck(True, "RES, CK and IK match" + (" (and Kc)" if result.kc is not None else ""))


def card_profiles(card: Any) -> list[dict[str, Any]]:
    """The profiles of a card (its UICC applets' profile stores), described without secrets.

    A profile whose stored records fail their integrity check is described only as
    {"iccid", "enabled", "damaged": True} (iccid None when its record names none).

    Args:
        card: a `CardRuntime`, outside any command.
    """
    from applets.usim import UiccApplet
    from card.profiles import ProfileStoreError, ProfileStoreReason
    from card.uicc.profile import Profile

    out: list[dict[str, Any]] = []
    for aid, *_ in card.applets():
        applet = card.applet(aid)
        if not isinstance(applet, UiccApplet):
            continue
        for summary in applet.list_profiles():
            try:
                if summary.damaged:  # its metadata record: not even found by ICCID
                    raise ProfileStoreError(ProfileStoreReason.DAMAGED)
                data = applet.export_profile(summary.iccid, with_secrets=False)
            except ProfileStoreError:
                # A damaged profile (its seal or a record fails) is listed, not read:
                # one bad slot must not hide the others.
                iccid = summary.iccid or None  # None: the record names no ICCID any more
                out.append({"iccid": iccid, "enabled": summary.enabled, "damaged": True})
                continue
            desc = Profile.from_bytes(data).describe()
            desc["enabled"] = summary.enabled
            out.append(desc)
    return out
