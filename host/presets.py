"""Built-in cards: what `cardemu send`, `cardemu card new --preset` and the benchmark start from."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from applets.sample import (
    COUNTER_CLIENT_AID,
    COUNTER_SERVER_AID,
    ECHO_AID,
    PURSE_AID,
    CounterClient,
    CounterServer,
    EchoApplet,
    PurseApplet,
)
from card.atr import build_atr
from card.nvm import new_aside_image, remove_image_files
from card.runtime import CardRuntime

if TYPE_CHECKING:
    from card.ota.scp80 import OtaKeyset
    from host.pki import TestPki


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: Callable[[CardRuntime], None]


def _demo(rt: CardRuntime) -> None:
    from applets.iso7816 import FS_APPLET_AID, FileSystemApplet

    rt.install(FileSystemApplet, FS_APPLET_AID, default=True)
    rt.install(PurseApplet, PURSE_AID, b"1234")
    rt.install(EchoApplet, ECHO_AID)
    rt.install(CounterServer, COUNTER_SERVER_AID, COUNTER_CLIENT_AID)
    rt.install(CounterClient, COUNTER_CLIENT_AID, COUNTER_SERVER_AID)


def _gp(rt: CardRuntime) -> None:
    from card.gp.isd import ISD_AID, IssuerSecurityDomain
    from card.gp.loadfile import build_load_file

    isd = rt.install(IssuerSecurityDomain, ISD_AID, default=True)
    # The sample applets' package is on the card from manufacture, as a ROM load file.
    isd.register_load_file(build_load_file("applets.sample"))
    rt.install(PurseApplet, PURSE_AID, b"1234")
    rt.install(EchoApplet, ECHO_AID)
    rt.install(CounterServer, COUNTER_SERVER_AID, COUNTER_CLIENT_AID)
    rt.install(CounterClient, COUNTER_CLIENT_AID, COUNTER_SERVER_AID)


# Like most SIMs: T=0 only (SIM tools such as pySim insist on T=0 when it is offered),
# a T=15 class indicator (classes A, B and C, ISO 7816-3 §8.3), card capabilities.
UICC_ATR = build_atr((0,), class_indicator=0x07, extended_length=False, max_channels=4).to_bytes()


@lru_cache(maxsize=1)
def _sample_profile_bytes() -> bytes:
    """The encoded test profile, built once per process.

    Bytes only are cached (immutable): each card decodes its own Profile from them,
    so no mutable object is ever shared between cards.
    """
    from card.uicc.builder import sample_profile

    return sample_profile().to_bytes()


def install_uicc_isd(rt: CardRuntime) -> None:
    """Install the UICC's GlobalPlatform ISD at `card.gp.isd.UICC_ISD_AID` (not default-selected).

    A real UICC carries its card manager there (GPC v2.3.1 §7.2; the AID of Open
    Platform 2.0.1 that SIM vendors kept), so tools that manage a UICC's applets
    (pySim-shell's ADF.ISD, GlobalPlatformPro) find it; the GP test key set 40..4F
    (key version 30) opens SCP03, and GET STATUS lists the UICC platform beside it.
    It takes no OTA (no SCP80 key sets): the "usim-ota" preset's ISD (same AID) does.
    """
    from card.gp.isd import UICC_ISD_AID, IssuerSecurityDomain

    rt.install(IssuerSecurityDomain, UICC_ISD_AID)


def _usim(rt: CardRuntime) -> None:
    from applets.usim import UICC_AID, UiccApplet

    # One profile from the builder, enabled: see card.uicc.builder TEST_* for its values.
    rt.install(UiccApplet, UICC_AID, _sample_profile_bytes(), default=True)
    install_uicc_isd(rt)
    rt.set_atr(UICC_ATR)


def ota_test_keysets() -> tuple[OtaKeyset, ...]:
    """The SCP80 key sets of the "usim-ota" preset: test values, never a real card's.

    Version 1 AES-128 (KIc 01..10, KID 11..20, DEK 21..30), version 2 two-key
    3DES (KIc, KID, DEK 16 bytes each of 40.., 50.., 60..).
    """
    from card.ota.scp80 import OtaKeyset

    def seq(start: int, n: int = 16) -> bytes:
        return bytes(range(start, start + n))

    return (
        OtaKeyset(1, seq(0x01), seq(0x11), seq(0x21), aes=True),
        OtaKeyset(2, seq(0x40), seq(0x50), seq(0x60), aes=False),
    )


def install_uicc_ota(
    rt: CardRuntime, keysets: tuple[OtaKeyset, ...] | None = None, *, profile: bytes | None = None
) -> None:
    """Make `rt` a SIM that takes remote management: the UICC with a USIM and an ISD.

    The UICC platform is default-selected; the ISD (GlobalPlatform, not default)
    holds SCP80 key sets (`ota_test_keysets()` unless given) for TAR 000000
    (RAM) and the RFM TARs, and knows the sample applets' load file. It sits at
    `card.gp.isd.UICC_ISD_AID`, as the "usim" preset's does: A000000151000000 stays
    free for the MNO-SD of a profile installed later (GSMA TS.48), and the UICC
    routes RAM/RFM secured packets there (`applets.usim`).
    """
    from applets.usim import UICC_AID, UiccApplet
    from card.gp.isd import UICC_ISD_AID, IssuerSecurityDomain
    from card.gp.loadfile import build_load_file

    rt.install(UiccApplet, UICC_AID, profile or _sample_profile_bytes(), default=True)
    isd = rt.install(IssuerSecurityDomain, UICC_ISD_AID)
    isd.set_ota_keysets(keysets if keysets is not None else ota_test_keysets())
    isd.register_load_file(build_load_file("applets.sample"))
    rt.set_atr(UICC_ATR)


def _usim_ota(rt: CardRuntime) -> None:
    install_uicc_ota(rt)


#: TS 33.501 Annex C.4.3 / C.4.4: the home network public keys of the "usim-5g" preset
#: (their private keys are published there too: the SIDF of a test network).
HN_PUBLIC_KEY_A = bytes.fromhex("5a8d38864820197c3394b92613b20b91633cbd897119273bf8e4a6f4eec0a650")
HN_PUBLIC_KEY_B = bytes.fromhex(
    "0272DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1"
)


def _usim_5g(rt: CardRuntime) -> None:
    from applets.usim import UICC_AID, UiccApplet
    from card.uicc import ts_31_102 as u
    from card.uicc.builder import TEST_IMSI, IsimSetup, SuciSetup, sample_profile

    # The "usim" subscription with SUCI calculation by the USIM (Profile A first, key 1;
    # then Profile B, key 2; then the null scheme), routing indicator 0, and an ISIM.
    info = u.SuciCalcInfo(((1, 1), (2, 2), (0, 0)), ((1, HN_PUBLIC_KEY_A), (2, HN_PUBLIC_KEY_B)))
    profile = sample_profile(suci=SuciSetup(info), isim=IsimSetup.for_imsi(TEST_IMSI))
    rt.install(UiccApplet, UICC_AID, profile.to_bytes(), default=True)
    install_uicc_isd(rt)
    rt.set_atr(UICC_ATR)


def _euicc_empty(rt: CardRuntime) -> None:
    from applets.usim import UICC_AID, UiccApplet

    rt.install(UiccApplet, UICC_AID, default=True)
    # The same UICC ATR as "usim" and "euicc" (TS 102 221 §6.3: T=0, UICC class indicator).
    rt.set_atr(UICC_ATR)


def install_euicc(
    rt: CardRuntime,
    *,
    pki: TestPki | None = None,
    eid: str | None = None,
    default_dp_address: str | None = None,
    extra_ci_certificates: tuple[bytes, ...] = (),
    root_ds_address: str | None = None,
    profile: bytes = b"",
) -> None:
    """Make `rt` an eUICC (GSMA SGP.22): the UICC/profile store, the ECASD, the ISD-R, and
    beside them the local-authentication applet of seed 000 (`applets.localauth`).

    Args:
        pki: a host.pki.TestPki (default: `host.pki.default_pki()`, NIST P-256); its
            eUICC credential for `eid` goes into the ECASD with CERT.EUM, and its CI
            is the one trusted for verification.
        eid: which of the PKI's eUICCs this card is (default: its first).
        default_dp_address: the default SM-DP+ address (ES10a).
        extra_ci_certificates: more CI certificates (DER) to trust, e.g. the CI an
            external SM-DP+ was issued by.
        root_ds_address: the root SM-DS address (ES10a; default: the GSMA's).
        profile: a profile (card.uicc.profile bytes) installed and enabled at
            manufacture, as the UICC applet's install parameter (default: none).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from applets.isdr import ECASD_AID, ISD_R_AID, Ecasd, IsdR
    from applets.localauth import LOCAL_AUTH_AID, LocalAuthApplet
    from applets.usim import UICC_AID, UiccApplet
    from card.sgp22.certs import TrustedCi, subject_key_id
    from card.sgp22.params import EcasdParams, IsdrParams
    from host.pki import default_pki

    test_pki = pki if pki is not None else default_pki()
    euiccs = test_pki.euiccs
    cred = euiccs[eid] if eid is not None else next(iter(euiccs.values()))
    the_eid = eid if eid is not None else next(iter(euiccs))

    def trusted(der: bytes) -> TrustedCi:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("a CI certificate without an EC public key")
        point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return TrustedCi(subject_key_id(cert) or b"", key.curve.name, point)

    cis = (trusted(test_pki.ci.der),) + tuple(trusted(d) for d in extra_ci_certificates)
    params = EcasdParams(
        bytes.fromhex(the_eid),
        cred.private_scalar,
        cred.der,
        test_pki.eum.der,
        cis,
    )
    rt.install(UiccApplet, UICC_AID, profile, default=True)
    rt.install(Ecasd, ECASD_AID, params.to_bytes())
    isdr = (
        IsdrParams(default_dp_address)
        if root_ds_address is None
        else IsdrParams(default_dp_address, root_ds_address)
    )
    rt.install(IsdR, ISD_R_AID, isdr.to_bytes())
    rt.install(LocalAuthApplet, LOCAL_AUTH_AID)
    rt.set_atr(UICC_ATR)


def _euicc(rt: CardRuntime) -> None:
    # The built-in test PKI (host.pki.default_pki): the same CI the built-in SM-DP+ uses.
    install_euicc(rt)


def _bio(rt: CardRuntime) -> None:
    from applets.biometric import BIO_AID, BiometricApplet

    # Seed 002's sensor card: match-on-card, default-selected, no finger enrolled yet.
    rt.install(BiometricApplet, BIO_AID, default=True)


def _keypair(rt: CardRuntime) -> None:
    from applets.biometric import BIO_AID, BiometricApplet
    from applets.keypair import KEYPAIR_AID, KeyPairApplet

    # Key pairs (PIN 123456), default-selected; the match-on-card applet beside it can
    # stand in for the PIN (through SharedBioTemplate) once a finger is enrolled.
    rt.install(KeyPairApplet, KEYPAIR_AID, default=True)
    rt.install(BiometricApplet, BIO_AID)


#: T=1 only, as PIV cards and tokens answer: response data comes back without 61xx.
PIV_ATR = build_atr((1,), ifsc=254, extended_length=True, max_channels=4).to_bytes()


def _piv(rt: CardRuntime) -> None:
    from applets.piv import PIV_AID, PivApplet

    # A PIV card (SP 800-73-4), default-selected: PIN 123456, PUK 12345678, management
    # key 3DES 0102..08 x3; CHUID, CCC and discovery object written, no key yet.
    rt.install(PivApplet, PIV_AID, default=True)
    rt.set_atr(PIV_ATR)


def _repository(rt: CardRuntime) -> None:
    from host.bio.synthetic import make_dataset
    from host.systems.repository.applet_ids import CARD_REF
    from host.systems.repository.card import personalise_card
    from host.systems.repository.demo import demo_pki

    # Seed 002's fingerprint card as its scenario makes it, not yet issued: the demo PKI of
    # seed 0 (`cardemu server registration|repository --demo-seed 0` trust it) and the demo
    # holder's finger (the first impression of `make_dataset(1, 3, seed=2)`).
    holder = make_dataset(1, 3, seed=2).impressions[0]
    personalise_card(rt, demo_pki(0).root, holder[0], card_ref=CARD_REF)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "demo",
            "ISO 7816-4 file system (default-selected), PIN purse, echo, Shareable counter",
            _demo,
        ),
        Preset(
            "gp",
            "GlobalPlatform ISD (default-selected, SCP03, test keys 40..4F kvn 30), sample applets",
            _gp,
        ),
        Preset(
            "usim",
            "UICC with one USIM profile (IMSI 001010000000001, Milenage K=OPc=000102..0F), ISD",
            _usim,
        ),
        Preset(
            "usim-5g",
            "the usim preset's subscription with SUCI by the USIM (TS 33.501 C.4 keys) and an ISIM",
            _usim_5g,
        ),
        Preset(
            "usim-ota",
            "the usim preset plus an ISD taking OTA (SCP80 test key sets 1 AES, 2 3DES; RAM, RFM)",
            _usim_ota,
        ),
        Preset(
            "euicc-empty", "UICC platform holding no profile yet (profile store only)", _euicc_empty
        ),
        Preset(
            "euicc",
            "eUICC (SGP.22): ISD-R + ECASD (test PKI, EID 89049032...) + empty profile store"
            " + local authentication",
            _euicc,
        ),
        Preset(
            "bio",
            "fingerprint match-on-card (ISO 7816-11 VERIFY, BIT group; admin key 40..4F)",
            _bio,
        ),
        Preset(
            "keypair",
            "ISO 7816-8 key pairs (RSA, P-256/384, brainpool; PIN 123456), SM, match-on-card",
            _keypair,
        ),
        Preset(
            "piv",
            "PIV card (SP 800-73-4; PIN 123456, PUK 12345678, 3DES management key 0102..08)",
            _piv,
        ),
        Preset(
            "repository",
            "seed 002's fingerprint card, personalised, not issued (demo PKI seed 0, demo finger)",
            _repository,
        ),
    ]
}

DEFAULT_PRESET = "demo"


def new_card(
    preset: str = DEFAULT_PRESET,
    image: str | os.PathLike[str] | None = None,
    *,
    rng_seed: bytes | int | None = None,
    build: Callable[[CardRuntime], None] | None = None,
) -> CardRuntime:
    """A new card built from a preset (in memory, or as a new card image file).

    `build`, when given, installs the card's applets instead of the preset's
    (e.g. an eUICC of another PKI: `install_euicc` with its arguments).

    A new image is built under a temporary name beside `image` and linked into
    place only when complete, so a process killed at any moment leaves either no
    `image` or the whole card (and at worst a hidden `.NAME.PID.*.tmp` file, removed
    by the next build of that name). The
    card comes back open on `image`, and locked.

    Raises:
        KeyError: no such preset.
        FileExistsError: `image` exists (it is never replaced).
        OSError, NvmError: the image cannot be written there.
    """
    try:
        spec = PRESETS[preset]
    except KeyError:
        raise KeyError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}") from None
    if image is None:
        rt = CardRuntime(None, rng_seed=rng_seed)
        (build or spec.build)(rt)
        return rt
    if os.path.lexists(image):
        raise FileExistsError(f"{os.fspath(image)} already exists")
    tmp = new_aside_image(image)
    try:
        rt = CardRuntime(tmp, rng_seed=rng_seed, create=False)
        try:
            (build or spec.build)(rt)
            rt.nvm.publish(image)
        except BaseException:
            rt.close()
            raise
    finally:
        remove_image_files(tmp)
    return rt
