"""Build a complete profile from a few fields, with valid defaults everywhere else.

`build_profile(iccid, imsi, k, opc=..., msisdn=..., spn=...)` returns a `Profile`
with this tree (access rules are records of EF.ARR, see ts_102_221.ARR_RECORDS):

    3F00 MF                         PIN status 01 PIN1, 81 PIN2, 0A ADM1
    ├── 2F06 EF.ARR     SFI 06       the access rules
    ├── 2F00 EF.DIR     SFI 1E       one application template: the USIM
    ├── 2FE2 EF.ICCID   SFI 02
    ├── 2F05 EF.PL      SFI 05       "en"
    ├── 7F10 DF.TELECOM
    │   ├── 6F3A EF.ADN     6F3C EF.SMS     6F40 EF.MSISDN   6F42 EF.SMSP
    │   └── 6F43 EF.SMSS    6F4A EF.EXT1    (TS 51.011 §10.5)
    └── 7F20 DF.GSM                  (df_gsm=True; TS 51.011 §10.7)
        ├── 6F07 EF.IMSI    6F20 EF.Kc     6F30 EF.PLMNsel  6F31 EF.HPPLMN
        ├── 6F38 EF.SST     6F46 EF.SPN    6F74 EF.BCCH     6F78 EF.ACC
        └── 6F7B EF.FPLMN   6F7E EF.LOCI   6FAD EF.AD       6FAE EF.PHASE
    ADF.USIM (A0000000871002FFFFFFFF8907090000 by default)
    ├── 6F06 EF.ARR     SFI 17       6F05 EF.LI     SFI 02     6F07 EF.IMSI   SFI 07
    ├── 6F08 EF.KEYS    SFI 08       6F09 EF.KEYSPS SFI 09     6F60 EF.PLMNwAcT SFI 0A
    ├── 6F31 EF.HPPLMN  SFI 12       6F38 EF.UST    SFI 04     6F56 EF.EST    SFI 05
    ├── 6F78 EF.ACC     SFI 06       6F7B EF.FPLMN  SFI 0D     6F7E EF.LOCI   SFI 0B
    ├── 6FAD EF.AD      SFI 03       6F73 EF.PSLOCI SFI 0C     6F46 EF.SPN
    ├── 6F40 EF.MSISDN               6F3C EF.SMS    6F43 EF.SMSS  6F42 EF.SMSP
    ├── 6FB7 EF.ECC     SFI 01       6F5B EF.START-HFN SFI 0F  6F5C EF.THRESHOLD SFI 10
    ├── 6F61 EF.OPLMNwAcT SFI 11     6F62 EF.HPLMNwAcT SFI 13
    └── 5FC0 DF.5GS (the EFs of the 5G services on: 5GS3GPPLOCI, 5GSN3GPPLOCI,
        5GS3GPPNSC, 5GSN3GPPNSC, 5GAUTHKEYS, UAC_AIC, OPL5G; Routing_Indicator and
        SUCI_Calc_Info with `suci`)

File identifiers and SFIs are those of TS 31.102 §4.2 / Annex H and TS 102 221 §13.
DF.GSM's EF.IMSI, HPPLMN, SPN, ACC, FPLMN, LOCI and AD start with the content of
their ADF.USIM namesakes, which the card then keeps equal
(ts_51_011.SHARED_WITH_USIM); its EF.SST lists what the SIM view offers: CHV1
disable, ADN (DF.TELECOM), PLMN selector, SPN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from card.fs import FileSystem, Referenced, Structure
from card.uicc import ts_31_102 as u
from card.uicc import ts_31_103 as i
from card.uicc import ts_51_011 as g
from card.uicc.auth import DEFAULT_DELTA, DEFAULT_IND_BITS
from card.uicc.profile import AppSpec, AuthSpec, DictStore, PinSpec, Profile, files_from_fs
from card.uicc.ts_102_221 import (
    ADM1,
    ARR_ADM,
    ARR_ADM_ONLY,
    ARR_DF,
    ARR_PIN1,
    ARR_PIN1_READ_ADM_UPDATE,
    ARR_PIN1_READ_PIN2_UPDATE,
    ARR_READ_ALW_PIN1_UPDATE,
    ARR_READ_ALW_UPDATE_NEV,
    ARR_RECORD_LENGTH,
    ARR_RECORDS,
    PIN1,
    PIN2,
    ApplicationTemplate,
    encode_dir_record,
    encode_iccid,
    encode_languages,
)

#: A USIM AID as many commercial cards carry it: RID 3GPP, USIM, country/provider FF.
DEFAULT_USIM_AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")

#: Services marked available in EF.UST by default (TS 31.102 §4.2.8): SMS, SMSP, SPN,
#: user/operator/HPLMN selectors with access technology, MSISDN, GSM access, n°33,
#: EST, GSM security context; and 5G: mobility management information (n°122), security
#: parameters (123), UAC access identities (126), the 5GS operator PLMN list (129). SUCI
#: privacy (124/125) comes with `suci=`.
DEFAULT_SERVICES = frozenset({10, 12, 19, 20, 21, 27, 33, 34, 38, 42, 43, 122, 123, 126, 129})

DF_TELECOM = 0x7F10
UICC_CHARACTERISTICS = bytes.fromhex("800171")  # TS 102 221 §11.1.1.4.6.1, in 'A5'
ALPHA_SIZE = 14
UST_SIZE = 12
SST_SIZE = 5  # TS 51.011 §10.3.7: services 1-20
#: Services EF.SST of DF.GSM offers (TS 51.011 §10.3.7).
GSM_SERVICES = frozenset(
    {
        g.SST_CHV1_DISABLE,
        g.SST_ADN,
        g.SST_SMS,
        g.SST_PLMN_SELECTOR,
        g.SST_MSISDN,
        g.SST_EXT1,
        g.SST_SMSP,
        g.SST_SPN,
    }
)
#: DF.TELECOM's EF.EXT1 (TS 51.011 §10.5.10): 13-byte records, this many.
EXT_RECORD_LENGTH = 13
EXT1_RECORDS = 10
SMS_RECORDS = 10
ADN_RECORDS = 10


def _arr(fid: int, record: int) -> Referenced:
    return Referenced(fid, record)


@dataclass(frozen=True)
class SuciSetup:
    """What a profile needs for SUCI (TS 31.102 §4.4.11.8, §4.4.11.11; TS 33.501 §6.12)."""

    calc_info: u.SuciCalcInfo
    routing_indicator: str = "0"
    by_usim: bool = True


@dataclass(frozen=True)
class IsimSetup:
    """The ISIM's identities (TS 31.103 §4.2; TS 23.003 §13) and, rarely, its own keys.

    `auth` None (the usual case: TS.48 and operator profiles carry one set of AKA
    parameters) makes the ISIM run the USIM's K, algorithm and SQN state; an
    `AuthSpec` gives it keys and an SQN state of its own (Profile.app_auth).
    """

    impi: str
    impu: tuple[str, ...]
    domain: str
    pcscf: tuple[i.PcscfAddress, ...] = ()
    aid: bytes = i.DEFAULT_ISIM_AID
    auth: AuthSpec | None = None

    @classmethod
    def for_imsi(cls, imsi: str, mnc_length: int = 2) -> IsimSetup:
        """The identities TS 23.003 §13.3-13.4B derives from an IMSI (no ISIM values given)."""
        mcc, mnc = imsi[:3], imsi[3 : 3 + mnc_length].zfill(3)
        domain = f"ims.mnc{mnc}.mcc{mcc}.3gppnetwork.org"
        return cls(
            f"{imsi}@{domain}",
            (f"sip:{imsi}@{domain}",),
            domain,
            (i.PcscfAddress(f"pcscf.{domain}"),),
        )


ISIM_URI_SIZE = 64
ISIM_IMPU_RECORDS = 3
ISIM_PCSCF_RECORDS = 2


def _isim_files(fs: FileSystem, isim: IsimSetup) -> None:
    """ADF.ISIM and its mandatory EFs (TS 31.103 §4.2), P-CSCF with service n°1."""
    arr = i.EF_ARR
    adf = fs.create_adf(
        isim.aid,
        security=_arr(arr, ARR_DF),
        pins=(PIN1, PIN2, ADM1),
        proprietary=UICC_CHARACTERISTICS,
    )

    def rec(fid: int, records: list[bytes], length: int, count: int, rule: int) -> None:
        fs.create_ef(
            adf,
            fid,
            Structure.LINEAR_FIXED,
            record_length=length,
            records=count,
            data=records,
            security=_arr(arr, rule),
        )

    rec(arr, list(ARR_RECORDS), ARR_RECORD_LENGTH, len(ARR_RECORDS), ARR_ADM)
    for fid, text in ((i.EF_IMPI, isim.impi), (i.EF_DOMAIN, isim.domain)):
        fs.create_ef(
            adf,
            fid,
            data=i.encode_uri(text, ISIM_URI_SIZE),
            security=_arr(arr, ARR_PIN1_READ_ADM_UPDATE),
        )
    if not 1 <= len(isim.impu) <= ISIM_IMPU_RECORDS:
        raise ValueError(f"1..{ISIM_IMPU_RECORDS} public user identities")
    rec(
        i.EF_IMPU,
        [i.encode_uri(x, ISIM_URI_SIZE) for x in isim.impu],
        ISIM_URI_SIZE,
        ISIM_IMPU_RECORDS,
        ARR_PIN1_READ_ADM_UPDATE,
    )
    fs.create_ef(adf, i.EF_AD, data=i.encode_isim_ad(), security=_arr(arr, ARR_ADM))
    services = {i.SERVICE_PCSCF} if isim.pcscf else set()
    fs.create_ef(
        adf,
        i.EF_IST,
        data=u.encode_service_table(services, 1),
        security=_arr(arr, ARR_PIN1_READ_ADM_UPDATE),
    )
    if isim.pcscf:
        if len(isim.pcscf) > ISIM_PCSCF_RECORDS:
            raise ValueError(f"at most {ISIM_PCSCF_RECORDS} P-CSCF addresses")
        rec(
            i.EF_PCSCF,
            [i.encode_pcscf(p, ISIM_URI_SIZE) for p in isim.pcscf],
            ISIM_URI_SIZE,
            ISIM_PCSCF_RECORDS,
            ARR_PIN1_READ_ADM_UPDATE,
        )


def _telecom_files(
    fs: FileSystem, telecom: str, mf_arr: int, msisdn: str | None, smsc: str | None
) -> None:
    """DF.TELECOM's phonebook and SMS files (TS 51.011 §10.5; TS 31.102 §4.4.2 keeps them
    under the MF for the UICC): EF.ADN, EF.SMS, EF.MSISDN, EF.SMSP, EF.SMSS, EF.EXT1."""

    def rec(fid: int, records: list[bytes], length: int, count: int) -> None:
        fs.create_ef(
            telecom,
            fid,
            Structure.LINEAR_FIXED,
            record_length=length,
            records=count,
            data=records,
            security=_arr(mf_arr, ARR_PIN1),
        )

    dn_len = u.dialling_record_length(ALPHA_SIZE)
    rec(g.EF_ADN, [], dn_len, ADN_RECORDS)
    rec(g.EF_SMS, [u.encode_sms(u.SmsRecord())] * SMS_RECORDS, u.SMS_RECORD_LENGTH, SMS_RECORDS)
    entry = u.DiallingNumber("", msisdn) if msisdn else None
    rec(g.EF_MSISDN, [u.encode_dialling_number(entry, dn_len)], dn_len, 2)
    smsp_len = u.SMSP_FIXED + ALPHA_SIZE
    params = u.SmsParameters(service_centre=smsc, protocol_id=0, coding_scheme=0)
    rec(g.EF_SMSP, [u.encode_smsp(params, smsp_len)], smsp_len, 1)
    # §10.5.7: last used TP-MR 'FF' (none yet), memory capacity available (b1 = 1).
    fs.create_ef(telecom, g.EF_SMSS, data=b"\xff\xff", security=_arr(mf_arr, ARR_PIN1))
    # §10.5.10: record type '00' (no data), the rest unused.
    rec(g.EF_EXT1, [b"\x00" + b"\xff" * 12] * EXT1_RECORDS, EXT_RECORD_LENGTH, EXT1_RECORDS)


def _df_5gs(
    fs: FileSystem,
    adf: str,
    adf_arr: int,
    services: frozenset[int],
    home: bytes,
    suci: SuciSetup | None,
) -> str | None:
    """DF.5GS (TS 31.102 §4.4.11) with the EFs of the 5G services that are on."""
    wanted = {
        u.SERVICE_5GS_MM,
        u.SERVICE_5G_SECURITY,
        u.SERVICE_SUPI_PRIVACY,
        u.SERVICE_UAC,
        u.SERVICE_OPL5G,
    }
    if not services & wanted and suci is None:
        return None
    df5gs = fs.create_df(adf, u.DF_5GS, security=_arr(adf_arr, ARR_DF), pins=(PIN1, PIN2, ADM1))

    def ef(fid: int, data: bytes, rule: int) -> None:
        fs.create_ef(df5gs, fid, data=data, sfi=fid & 0x1F, security=_arr(adf_arr, rule))

    if u.SERVICE_5GS_MM in services:
        ef(u.EF_5GS3GPPLOCI, u.encode_5gs_loci(home), ARR_PIN1)
        ef(u.EF_5GSN3GPPLOCI, u.encode_5gs_loci(home), ARR_PIN1)
        for fid in (u.EF_5GS3GPPNSC, u.EF_5GSN3GPPNSC):
            fs.create_ef(
                df5gs,
                fid,
                Structure.LINEAR_FIXED,
                record_length=u.NSC_RECORD_LENGTH,
                records=1,
                data=[u.encode_5gs_nsc()],
                sfi=fid & 0x1F,
                security=_arr(adf_arr, ARR_PIN1),
            )
    if u.SERVICE_5G_SECURITY in services:
        ef(u.EF_5GAUTHKEYS, u.encode_5g_auth_keys(), ARR_PIN1)
    if u.SERVICE_UAC in services:
        ef(u.EF_UAC_AIC, u.encode_uac_aic(), ARR_PIN1_READ_ADM_UPDATE)
    if u.SERVICE_OPL5G in services:
        fs.create_ef(
            df5gs,
            u.EF_OPL5G,
            Structure.LINEAR_FIXED,
            record_length=u.OPL5G_RECORD_LENGTH,
            records=4,
            sfi=u.EF_OPL5G & 0x1F,
            security=_arr(adf_arr, ARR_PIN1_READ_ADM_UPDATE),
        )
    return df5gs


def _suci_files(fs: FileSystem, adf: str, adf_arr: int, df5gs: str, suci: SuciSetup) -> None:
    """In DF.5GS, EF.Routing_Indicator and (the ME calculates) EF.SUCI_Calc_Info; when the
    USIM calculates, DF.SAIP/EF.SUCI_Calc_Info_USIM (TCA PE-DF-SAIP), ADM-only."""
    info = u.encode_suci_calc_info(suci.calc_info)
    fs.create_ef(
        df5gs,
        u.EF_ROUTING_INDICATOR,
        data=u.encode_routing_indicator(suci.routing_indicator),
        security=_arr(adf_arr, ARR_PIN1_READ_ADM_UPDATE),
    )
    if not suci.by_usim:
        fs.create_ef(
            df5gs, u.EF_SUCI_CALC_INFO, data=info, security=_arr(adf_arr, ARR_PIN1_READ_ADM_UPDATE)
        )
        return
    saip = fs.create_df(adf, u.DF_SAIP, security=_arr(adf_arr, ARR_DF), pins=(PIN1, PIN2, ADM1))
    fs.create_ef(saip, u.EF_SUCI_CALC_INFO_USIM, data=info, security=_arr(adf_arr, ARR_ADM_ONLY))


#: EF.ARR of the MF and of ADF.USIM (TS 102 221 §13.4; TS 31.102 §4.2.47).
MF_ARR, ADF_ARR = 0x2F06, 0x6F06


def _services(services: Iterable[int], suci: SuciSetup | None) -> frozenset[int]:
    """The UST's services, with those SUCI needs (n°124, n°125 when the USIM calculates)."""
    out = frozenset(services)
    if suci is not None:
        out |= {u.SERVICE_SUPI_PRIVACY}
        out |= {u.SERVICE_SUCI_BY_USIM} if suci.by_usim else frozenset()
    return out


def _shared_files(imsi: str, plmn: u.Plmn, spn: str, mnc_length: int) -> dict[int, bytes]:
    """The files DF.GSM shares with ADF.USIM (ts_51_011.SHARED_WITH_USIM): they start equal."""
    return {
        g.EF_IMSI: u.encode_imsi(imsi),
        g.EF_HPPLMN: b"\x05",
        g.EF_SPN: u.encode_spn(u.Spn(spn)),
        g.EF_ACC: u.encode_acc(u.acc_for_imsi(imsi)),
        g.EF_FPLMN: u.encode_plmn_list((), 12),
        g.EF_LOCI: u.encode_loci(u.Loci(plmn=u.encode_plmn(plmn))),
        g.EF_AD: u.encode_ad(u.AdministrativeData(mnc_length=mnc_length)),
    }


def _mf_files(fs: FileSystem, iccid: str, usim_aid: bytes, isim: IsimSetup | None) -> str:
    """The MF with EF.ARR, EF.DIR, EF.ICCID and EF.PL (TS 102 221 §13); its path."""
    mf = fs.create_mf(
        security=_arr(MF_ARR, ARR_DF), pins=(PIN1, PIN2, ADM1), proprietary=UICC_CHARACTERISTICS
    )
    fs.create_ef(
        mf,
        MF_ARR,
        Structure.LINEAR_FIXED,
        record_length=ARR_RECORD_LENGTH,
        data=list(ARR_RECORDS),
        sfi=0x06,
        security=_arr(MF_ARR, ARR_ADM),
    )
    dir_len = 4 + max(len(usim_aid), len(isim.aid) if isim else 0) + 2 + 16
    fs.create_ef(
        mf,
        0x2F00,
        Structure.LINEAR_FIXED,
        record_length=dir_len,
        records=2,
        data=[encode_dir_record(ApplicationTemplate(usim_aid, "USIM"), dir_len)]
        + ([encode_dir_record(ApplicationTemplate(isim.aid, "ISIM"), dir_len)] if isim else []),
        sfi=0x1E,
        security=_arr(MF_ARR, ARR_ADM),
    )
    fs.create_ef(
        mf,
        0x2FE2,
        data=encode_iccid(iccid),
        sfi=0x02,
        security=_arr(MF_ARR, ARR_READ_ALW_UPDATE_NEV),
    )
    fs.create_ef(
        mf,
        0x2F05,
        data=encode_languages(["en"], 10),
        sfi=0x05,
        security=_arr(MF_ARR, ARR_READ_ALW_PIN1_UPDATE),
    )
    return mf


def _df_gsm_files(fs: FileSystem, mf: str, plmn: u.Plmn, shared: dict[int, bytes]) -> None:
    """DF.GSM (7F20), the SIM view 2G tools use through CLA A0 (TS 51.011 §10)."""
    gsm = fs.create_df(mf, g.DF_GSM, security=_arr(MF_ARR, ARR_DF), pins=(PIN1, PIN2, ADM1))
    # TS 51.011 §10.3: READ/UPDATE access conditions of each EF, as EF.ARR records.
    for fid, data, rule in (
        (g.EF_IMSI, shared[g.EF_IMSI], ARR_PIN1_READ_ADM_UPDATE),
        (g.EF_KC, g.encode_kc(), ARR_PIN1),
        (g.EF_PLMNSEL, u.encode_plmn_list([plmn], g.PLMNSEL_SIZE), ARR_PIN1),
        (g.EF_HPPLMN, shared[g.EF_HPPLMN], ARR_PIN1_READ_ADM_UPDATE),
        (g.EF_SST, g.encode_sst(GSM_SERVICES, SST_SIZE), ARR_PIN1_READ_ADM_UPDATE),
        (g.EF_SPN, shared[g.EF_SPN], ARR_ADM),
        (g.EF_BCCH, bytes(g.BCCH_SIZE), ARR_PIN1),
        (g.EF_ACC, shared[g.EF_ACC], ARR_PIN1_READ_ADM_UPDATE),
        (g.EF_FPLMN, shared[g.EF_FPLMN], ARR_PIN1),
        (g.EF_LOCI, shared[g.EF_LOCI], ARR_PIN1),
        (g.EF_AD, shared[g.EF_AD], ARR_ADM),
        (g.EF_PHASE, bytes((g.PHASE_2,)), ARR_ADM),
    ):
        fs.create_ef(gsm, fid, data=data, security=_arr(MF_ARR, rule))


@dataclass(frozen=True)
class _AdfUsim:
    """ADF.USIM being filled: its EFs, access rules by ADF_ARR record (TS 31.102 §4.2)."""

    fs: FileSystem
    path: str

    def ef(self, fid: int, data: bytes, arr: int, sfi: int | None = None) -> None:
        """A transparent EF."""
        self.fs.create_ef(self.path, fid, data=data, sfi=sfi, security=_arr(ADF_ARR, arr))

    def rec(
        self,
        fid: int,
        records: list[bytes],
        length: int,
        count: int,
        arr: int,
        sfi: int | None = None,
    ) -> None:
        """A linear fixed EF of `count` records of `length` bytes."""
        self.fs.create_ef(
            self.path,
            fid,
            Structure.LINEAR_FIXED,
            record_length=length,
            records=count,
            data=records,
            sfi=sfi,
            security=_arr(ADF_ARR, arr),
        )


def _usim_files(
    adf: _AdfUsim, services: frozenset[int], shared: dict[int, bytes], plmn: u.Plmn
) -> None:
    """EF.ARR, the identity, keys, service tables and location files (TS 31.102 §4.2)."""
    ust_size = max(UST_SIZE, (max(services, default=0) + 7) // 8)
    adf.rec(ADF_ARR, list(ARR_RECORDS), ARR_RECORD_LENGTH, len(ARR_RECORDS), ARR_ADM, 0x17)
    adf.ef(0x6F05, encode_languages(["en"], 10), ARR_READ_ALW_PIN1_UPDATE, 0x02)
    adf.ef(0x6F07, shared[g.EF_IMSI], ARR_PIN1_READ_ADM_UPDATE, 0x07)
    adf.ef(0x6F08, u.encode_keys(u.Keys()), ARR_PIN1, 0x08)
    adf.ef(0x6F09, u.encode_keys(u.Keys()), ARR_PIN1, 0x09)
    if 20 in services:
        adf.ef(0x6F60, u.encode_plmn_act_list([(plmn, u.ACT_ALL)], 40), ARR_PIN1, 0x0A)
    adf.ef(0x6F31, shared[g.EF_HPPLMN], ARR_PIN1_READ_ADM_UPDATE, 0x12)
    adf.ef(0x6F38, u.encode_service_table(services, ust_size), ARR_PIN1_READ_ADM_UPDATE, 0x04)
    if 34 in services:
        adf.ef(0x6F56, u.encode_service_table((), 1), ARR_PIN1_READ_PIN2_UPDATE, 0x05)
    adf.ef(0x6F78, shared[g.EF_ACC], ARR_PIN1_READ_ADM_UPDATE, 0x06)
    adf.ef(0x6F7B, shared[g.EF_FPLMN], ARR_PIN1, 0x0D)
    adf.ef(0x6F7E, shared[g.EF_LOCI], ARR_PIN1, 0x0B)
    adf.ef(0x6FAD, shared[g.EF_AD], ARR_ADM, 0x03)
    adf.ef(0x6F73, u.encode_psloci(u.PsLoci(plmn=u.encode_plmn(plmn))), ARR_PIN1, 0x0C)
    if 19 in services:
        adf.ef(0x6F46, shared[g.EF_SPN], ARR_ADM)


def _usim_messaging_files(
    adf: _AdfUsim, services: frozenset[int], msisdn: str | None, smsc: str | None
) -> None:
    """EF.MSISDN (n°21), EF.SMS and EF.SMSS (n°10), EF.SMSP (n°12) (TS 31.102 §4.2)."""
    msisdn_len = u.dialling_record_length(ALPHA_SIZE)
    if 21 in services:
        number = u.DiallingNumber("", msisdn) if msisdn else None
        adf.rec(0x6F40, [u.encode_dialling_number(number, msisdn_len)], msisdn_len, 2, ARR_PIN1)
    if 10 in services:
        sms = [u.encode_sms(u.SmsRecord())] * SMS_RECORDS
        adf.rec(0x6F3C, sms, u.SMS_RECORD_LENGTH, SMS_RECORDS, ARR_PIN1)
        # §4.2.28 EF.SMSS: last used TP-MR 'FF', memory capacity available.
        adf.ef(0x6F43, b"\xff\xff", ARR_PIN1)
    smsp_len = u.SMSP_FIXED + ALPHA_SIZE
    if 12 in services:
        params = u.SmsParameters(service_centre=smsc, protocol_id=0, coding_scheme=0)
        adf.rec(0x6F42, [u.encode_smsp(params, smsp_len)], smsp_len, 1, ARR_PIN1)


def _usim_network_files(adf: _AdfUsim, services: frozenset[int], plmn: u.Plmn) -> None:
    """EF.ECC, EF.START-HFN, EF.THRESHOLD, the PLMN selectors (n°42, n°43) and
    DF.GSM-ACCESS (n°27) (TS 31.102 §4.2, §4.4.5)."""
    ecc_len = 4 + 10
    ecc = [
        u.encode_ecc(u.EmergencyCallCode("112", "Emergency"), ecc_len),
        u.encode_ecc(u.EmergencyCallCode("911"), ecc_len),
    ]
    adf.rec(0x6FB7, ecc, ecc_len, 3, ARR_ADM, 0x01)
    adf.ef(0x6F5B, bytes.fromhex("F00000F00000"), ARR_PIN1, 0x0F)
    adf.ef(0x6F5C, b"\xff\xff\xff", ARR_PIN1_READ_ADM_UPDATE, 0x10)
    if 42 in services:
        oplmn = u.encode_plmn_act_list([(plmn, u.ACT_ALL)], 40)
        adf.ef(0x6F61, oplmn, ARR_PIN1_READ_ADM_UPDATE, 0x11)
    if 43 in services:
        hplmn = u.encode_plmn_act_list([(plmn, u.ACT_ALL)], 10)
        adf.ef(0x6F62, hplmn, ARR_PIN1_READ_ADM_UPDATE, 0x13)
    if u.SERVICE_GSM_ACCESS in services:
        # TS 31.102 §4.4.5: DF.GSM-ACCESS with EF.Kc and EF.KcGPRS (KSI 07: no key yet).
        gsm_access = adf.fs.create_df(
            adf.path, 0x5F3B, security=_arr(ADF_ARR, ARR_DF), pins=(PIN1, PIN2, ADM1)
        )
        for fid, sfi in ((0x4F20, 0x01), (0x4F52, 0x02)):
            adf.fs.create_ef(
                gsm_access,
                fid,
                data=bytes(8) + b"\x07",
                sfi=sfi,
                security=_arr(ADF_ARR, ARR_PIN1),
            )


def build_profile(
    iccid: str,
    imsi: str,
    k: bytes,
    opc: bytes | None = None,
    *,
    op: bytes | None = None,
    msisdn: str | None = None,
    spn: str = "cardemu",
    algorithm: str = "milenage",
    res_len: int = 8,
    keccak_iterations: int = 1,
    ck_len: int = 16,
    ik_len: int = 16,
    mnc_length: int = 2,
    usim_aid: bytes = DEFAULT_USIM_AID,
    services: Iterable[int] = DEFAULT_SERVICES,
    pin1: str = "1234",
    puk1: str = "11111111",
    pin2: str = "5678",
    puk2: str = "22222222",
    adm1: str = "12345678",
    pin1_enabled: bool = False,
    df_gsm: bool = True,
    ind_bits: int = DEFAULT_IND_BITS,
    delta: int | None = DEFAULT_DELTA,
    age_limit: int | None = None,
    sqn_ms: int = 0,
    smsc: str | None = None,
    name: str = "",
    provider: str = "",
    apps: Iterable[AppSpec] = (),
    metadata: Iterable[tuple[str, str]] = (),
    suci: SuciSetup | None = None,
    isim: IsimSetup | None = None,
) -> Profile:
    """A profile for one subscription (see the module docstring for the tree).

    Args:
        iccid: up to 20 digits, stored as given (`ts_102_221.luhn_digit` makes the
            check digit ISO/IEC 7812-1 ends an ICCID with).
        imsi: 6-15 digits; MCC and MNC are its first 3 and `mnc_length` digits.
        k: the subscriber key (TUAK: 16 or 32 bytes).
        opc / op: exactly one of them for Milenage, or TUAK's TOPc / TOP (32 bytes);
            neither for the XOR algorithm.
        keccak_iterations, ck_len, ik_len: TUAK's options (TS 35.231 §6).
        pin1_enabled: PIN1 verification required (test cards usually ship without).
        df_gsm: give the card DF.GSM (7F20), the SIM view 2G tools use through CLA A0.
        suci: 5G subscription identifier privacy (services n°124, and n°125 when the USIM
            calculates the SUCI): DF.5GS with EF.Routing_Indicator, and the SUCI
            calculation information in DF.SAIP/EF.SUCI_Calc_Info_USIM (calculation by the
            USIM, readable with ADM only) or DF.5GS/EF.SUCI_Calc_Info (by the ME).
        isim: an ISIM (TS 31.103) beside the USIM: ADF.ISIM registered in EF.DIR with
            EF.IMPI, EF.DOMAIN, EF.IMPU, EF.AD, EF.ARR, EF.IST and EF.P-CSCF. It runs
            the profile's AKA algorithm and SQN state (IMS AKA, TS 33.203) unless
            `isim.auth` gives it its own.

    Raises:
        ValueError: a field the files cannot hold.
    """
    plmn = u.Plmn.from_imsi(imsi, mnc_length)
    services = _services(services, suci)
    shared = _shared_files(imsi, plmn, spn, mnc_length)
    fs = FileSystem(DictStore())
    mf = _mf_files(fs, iccid, usim_aid, isim)
    telecom = fs.create_df(mf, DF_TELECOM, security=_arr(MF_ARR, ARR_DF), pins=(PIN1, PIN2, ADM1))
    _telecom_files(fs, telecom, MF_ARR, msisdn, smsc)
    if df_gsm:
        _df_gsm_files(fs, mf, plmn, shared)
    adf = _AdfUsim(
        fs,
        fs.create_adf(
            usim_aid,
            security=_arr(ADF_ARR, ARR_DF),
            pins=(PIN1, PIN2, ADM1),
            proprietary=UICC_CHARACTERISTICS,
        ),
    )
    _usim_files(adf, services, shared, plmn)
    _usim_messaging_files(adf, services, msisdn, smsc)
    _usim_network_files(adf, services, plmn)
    df5gs = _df_5gs(fs, adf.path, ADF_ARR, services, u.encode_plmn(plmn), suci)
    if suci is not None and df5gs is not None:
        _suci_files(fs, adf.path, ADF_ARR, df5gs, suci)
    if isim is not None:
        _isim_files(fs, isim)

    auth = AuthSpec(
        k=bytes(k),
        opc=None if opc is None else bytes(opc),
        op=None if op is None else bytes(op),
        algorithm=algorithm,
        res_len=res_len,
        keccak_iterations=keccak_iterations,
        ck_len=ck_len,
        ik_len=ik_len,
        ind_bits=ind_bits,
        delta=delta,
        age_limit=age_limit,
        sqn_ms=sqn_ms,
    )
    pins = (
        PinSpec(PIN1, pin1.encode(), 3, enabled=pin1_enabled, puk=puk1.encode()),
        PinSpec(PIN2, pin2.encode(), 3, puk=puk2.encode()),
        PinSpec(ADM1, adm1.encode(), 10),
    )
    return Profile(
        iccid=iccid,
        auth=auth,
        files=files_from_fs(fs),
        pins=pins,
        name=name or spn,
        provider=provider,
        apps=tuple(apps),
        metadata=tuple(metadata),
        app_auth=((isim.aid, isim.auth),) if isim is not None and isim.auth else (),
    )


# -- The documented test subscription (the "usim" preset) -------------------------------------
#
# K and OPc are those of the osmocom Milenage test (libosmocore tests/auth/milenage_test.c),
# so that test's published AUTN/RES/CK/IK example runs on this card as it is.
# MCC 001 / MNC 01 is the test network of ITU-T E.212.
TEST_IMSI = "001010000000001"
TEST_ICCID_BODY = "898821000000000001"
TEST_K = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
TEST_OPC = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
TEST_MSISDN = "+0010100001"
TEST_SPN = "cardemu"
TEST_PINS = {
    "pin1": "1234",
    "puk1": "11111111",
    "pin2": "5678",
    "puk2": "22222222",
    "adm1": "12345678",
}


def sample_iccid() -> str:
    """The test ICCID: its 18 digits and the Luhn check digit."""
    from card.uicc.ts_102_221 import luhn_digit

    return TEST_ICCID_BODY + luhn_digit(TEST_ICCID_BODY)


def sample_profile(**overrides: Any) -> Profile:
    """The documented test subscription: `build_profile` with the TEST_* values above."""
    fields: dict[str, Any] = {
        "iccid": sample_iccid(),
        "imsi": TEST_IMSI,
        "k": TEST_K,
        "opc": TEST_OPC,
        "msisdn": TEST_MSISDN,
        "spn": TEST_SPN,
        "name": "cardemu test",
        "provider": "cardemu",
    }
    fields.update(overrides)
    return build_profile(**fields)
