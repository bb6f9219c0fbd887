"""The demo file tree of the ISO 7816-4 file-system card (built at install time).

    3F00 MF                          8B 2F06 01, PIN status: 01 PIN1, 81 PIN2, 0A ADM1
    ├── 2F06 EF.ARR     linear fixed  the access rules below (TS 102 221 §9.2.7)
    ├── 2F00 EF.DIR     linear fixed  SFI 1E, one application template (DF.DEMO)
    ├── 2FE2 EF.ICCID   transparent   SFI 02, 10 bytes
    ├── 2F10 EF.DATA    transparent   SFI 10, 512 bytes i mod 256  (the benchmark EF)
    ├── 2F20 EF.NOTES   linear fixed  SFI 14, 5 records of 16 bytes
    ├── 2F30 EF.COUNTER cyclic        SFI 15, 4 records of 3 bytes, INCREASE allowed
    └── 7F10 DF.DEMO    DF name F043415244454D55781601, PIN status: 01, 81
        ├── 6F01 EF.SECRET   transparent   read/update PIN1
        ├── 6F02 EF.CONTACTS linear fixed  read PIN1, update PIN2
        └── 6F03 EF.PIN2     transparent   read/update PIN2

Every file refers to a record of EF.ARR ('8B'), as TS 102 221 cards do.
"""

from __future__ import annotations

from card.fs import ADM1, ALW, NEV, PIN1, PIN2, FileSystem, Referenced, Structure
from card.fs.security import encode_rules

DEMO_DF_NAME = bytes.fromhex("F043415244454D55781601")
DATA_EF_FID = 0x2F10
DATA_EF_SIZE = 512
ICCID = "8949000000000000017"  # 19 digits, a check digit included

# EF.ARR records (TS 102 221 Annex G style): the record numbers the files refer to.
ARR_ADMIN = 1  # read ALW, update/activate/deactivate ADM1
ARR_USER_WRITES = 2  # read ALW, update PIN1
ARR_PIN1 = 3  # read/update PIN1
ARR_PIN1_READ_PIN2_UPDATE = 4  # read PIN1, update PIN2
ARR_COUNTER = 5  # read ALW, update ADM1, increase PIN1
ARR_PIN2 = 6  # read/update PIN2
ARR_DF = 7  # DFs: activate/deactivate ADM1, no creation or deletion

ARR_RECORDS = [
    encode_rules(read=ALW, update=ADM1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=ALW, update=PIN1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=PIN1, update=PIN1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=PIN1, update=PIN2, activate=ADM1, deactivate=ADM1),
    encode_rules(read=ALW, update=ADM1, increase=PIN1, activate=ADM1, deactivate=ADM1),
    encode_rules(read=PIN2, update=PIN2, activate=ADM1, deactivate=ADM1),
    encode_rules(activate=ADM1, deactivate=ADM1, delete=NEV, terminate=NEV),
]
ARR_RECORD_LENGTH = 40


def iccid_bytes(digits: str) -> bytes:
    """EF.ICCID coding: BCD, nibbles swapped, padded with F (TS 102 221 §13.2)."""
    digits = digits + "F" * (20 - len(digits))
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, 20, 2)))


def data_ef_content() -> bytes:
    return bytes(i & 0xFF for i in range(DATA_EF_SIZE))


def build_demo_tree(fs: FileSystem) -> None:
    """Create the demo tree in an empty file system."""

    def arr(n: int) -> Referenced:
        return Referenced(0x2F06, n)

    fs.create_mf(
        security=arr(ARR_DF),
        pins=(PIN1, PIN2, ADM1),
        # TS 102 221 §11.1.1.4.6.1: UICC characteristics (clock stop allowed, 3 V / 1.8 V)
        proprietary=bytes.fromhex("800171"),
    )
    fs.create_ef(
        "3F00",
        0x2F06,
        Structure.LINEAR_FIXED,
        record_length=ARR_RECORD_LENGTH,
        data=ARR_RECORDS,
        sfi=6,
        security=arr(ARR_ADMIN),
    )
    # EF.DIR (TS 102 221 §13.1): an application template 61 { 4F AID, 50 label }
    label = b"DEMO"
    template = (
        bytes((0x61, 4 + len(DEMO_DF_NAME) + len(label), 0x4F, len(DEMO_DF_NAME)))
        + DEMO_DF_NAME
        + bytes((0x50, len(label)))
        + label
    )
    fs.create_ef(
        "3F00",
        0x2F00,
        Structure.LINEAR_FIXED,
        record_length=32,
        records=2,
        data=[template],
        sfi=30,
        security=arr(ARR_ADMIN),
    )
    fs.create_ef("3F00", 0x2FE2, data=iccid_bytes(ICCID), sfi=2, security=arr(ARR_ADMIN))
    fs.create_ef(
        "3F00",
        DATA_EF_FID,
        size=DATA_EF_SIZE,
        data=data_ef_content(),
        sfi=0x10,
        security=arr(ARR_USER_WRITES),
    )
    fs.create_ef(
        "3F00",
        0x2F20,
        Structure.LINEAR_FIXED,
        record_length=16,
        records=5,
        data=[b"first note", b"second note"],
        sfi=0x14,
        security=arr(ARR_USER_WRITES),
    )
    fs.create_ef(
        "3F00",
        0x2F30,
        Structure.CYCLIC,
        record_length=3,
        records=4,
        data=[b"\x00\x00\x00"] * 4,
        sfi=0x15,
        increase=True,
        security=arr(ARR_COUNTER),
    )
    df = fs.create_df("3F00", 0x7F10, name=DEMO_DF_NAME, security=arr(ARR_DF), pins=(PIN1, PIN2))
    fs.create_ef(df, 0x6F01, data=b"secret for PIN1!", security=arr(ARR_PIN1))
    fs.create_ef(
        df,
        0x6F02,
        Structure.LINEAR_FIXED,
        record_length=20,
        records=3,
        data=[b"Alice +15550100"],
        security=arr(ARR_PIN1_READ_PIN2_UPDATE),
    )
    fs.create_ef(df, 0x6F03, data=b"PIN2 only", size=16, security=arr(ARR_PIN2))
