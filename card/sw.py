"""Status words: ISO/IEC 7816-4 §5.1.3 (Tables 5 and 6), plus GlobalPlatform and 3GPP ones.

`SW` is an IntEnum whose members carry a description; values that are not members
(`61xx`, `6Cxx`, `63Cx`, unknown proprietary words) still convert, through
`SW(value)`, to a pseudo-member with a generated name and a description, so that
no caller ever crashes on a status word it did not expect.
"""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """A status word SW1-SW2 as a 16-bit integer, with a description."""

    description: str

    def __new__(cls, value: int, description: str = "") -> SW:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj

    # -- Normal processing (ISO 7816-4 Table 5)
    SUCCESS = 0x9000, "Normal processing: no further qualification"
    # -- Warnings, NVM unchanged (62xx)
    WARNING_NO_INFO = 0x6200, "Warning, state of non-volatile memory unchanged"
    TRIGGERING_BY_CARD = 0x6202, "Warning: triggering by the card"
    DATA_CORRUPTED = 0x6281, "Warning: part of returned data may be corrupted"
    END_OF_FILE = 0x6282, "Warning: end of file or record reached before reading Ne bytes"
    FILE_DEACTIVATED = 0x6283, "Warning: selected file deactivated"
    FCI_FORMAT = 0x6284, "Warning: file control information not formatted per 7816-4"
    FILE_TERMINATED = 0x6285, "Warning: selected file in termination state"
    NO_SENSOR_DATA = 0x6286, "Warning: no input data available from a sensor"
    # -- Warnings, NVM changed (63xx)
    WARNING_NVM_CHANGED = 0x6300, "Warning, state of non-volatile memory changed"
    GP_MORE_DATA = 0x6310, "Warning: more data available (GET STATUS continuation)"
    FILE_FILLED = 0x6381, "Warning: file filled up by the last write"
    # -- Execution errors (64xx NVM unchanged, 65xx NVM changed, 66xx security)
    EXECUTION_ERROR = 0x6400, "Execution error, state of non-volatile memory unchanged"
    IMMEDIATE_RESPONSE_REQUIRED = 0x6401, "Execution error: immediate response required"
    MEMORY_FAILURE_NVM_CHANGED = 0x6500, "Execution error, state of non-volatile memory changed"
    MEMORY_FAILURE = 0x6581, "Execution error: memory failure"
    SECURITY_ISSUE = 0x6600, "Security-related issue"
    # -- Checking errors
    WRONG_LENGTH = 0x6700, "Wrong length"
    CLA_FUNCTION_NOT_SUPPORTED = 0x6800, "Functions in CLA not supported"
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881, "Logical channel not supported"
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882, "Secure messaging not supported"
    LAST_COMMAND_OF_CHAIN_EXPECTED = 0x6883, "Last command of the chain expected"
    CHAINING_NOT_SUPPORTED = 0x6884, "Command chaining not supported"
    COMMAND_NOT_ALLOWED = 0x6900, "Command not allowed"
    COMMAND_INCOMPATIBLE_WITH_FILE = 0x6981, "Command incompatible with file structure"
    SECURITY_STATUS_NOT_SATISFIED = 0x6982, "Security status not satisfied"
    AUTH_METHOD_BLOCKED = 0x6983, "Authentication method blocked"
    REFERENCE_DATA_NOT_USABLE = 0x6984, "Reference data not usable"
    CONDITIONS_NOT_SATISFIED = 0x6985, "Conditions of use not satisfied"
    COMMAND_NOT_ALLOWED_NO_EF = 0x6986, "Command not allowed (no current EF)"
    SM_DATA_OBJECTS_MISSING = 0x6987, "Expected secure messaging data objects missing"
    SM_DATA_OBJECTS_INCORRECT = 0x6988, "Incorrect secure messaging data objects"
    APPLET_SELECTION_FAILED = 0x6999, "Applet selection failed"
    WRONG_PARAMETERS = 0x6A00, "Wrong parameters P1-P2"
    WRONG_DATA = 0x6A80, "Incorrect parameters in the command data field"
    FUNCTION_NOT_SUPPORTED = 0x6A81, "Function not supported"
    FILE_NOT_FOUND = 0x6A82, "File or application not found"
    RECORD_NOT_FOUND = 0x6A83, "Record not found"
    NOT_ENOUGH_MEMORY = 0x6A84, "Not enough memory space in the file"
    NC_INCONSISTENT_WITH_TLV = 0x6A85, "Nc inconsistent with TLV structure"
    INCORRECT_P1P2 = 0x6A86, "Incorrect parameters P1-P2"
    NC_INCONSISTENT_WITH_P1P2 = 0x6A87, "Nc inconsistent with parameters P1-P2"
    REFERENCED_DATA_NOT_FOUND = 0x6A88, "Referenced data or reference data not found"
    FILE_ALREADY_EXISTS = 0x6A89, "File already exists"
    DF_NAME_ALREADY_EXISTS = 0x6A8A, "DF name already exists"
    WRONG_P1P2 = 0x6B00, "Wrong parameters P1-P2"
    WRONG_LE = 0x6C00, "Wrong Le field"
    INS_NOT_SUPPORTED = 0x6D00, "Instruction code not supported or invalid"
    CLA_NOT_SUPPORTED = 0x6E00, "Class not supported"
    UNKNOWN = 0x6F00, "No precise diagnosis"
    # -- 3GPP TS 31.102 / ETSI TS 102 221
    AUTH_MAC_FAILURE = 0x9862, "Authentication error, incorrect MAC"
    AUTH_CONTEXT_UNSUPPORTED = 0x9864, "Authentication error, security context not supported"
    AUTH_KEY_FRESHNESS_FAILURE = 0x9865, "Authentication error, key freshness failure"

    @classmethod
    def _missing_(cls, value: object) -> SW | None:
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            return None
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj._name_ = f"SW_{value:04X}"
        obj.description = describe(value)
        return obj

    @property
    def sw1(self) -> int:
        return self >> 8

    @property
    def sw2(self) -> int:
        return self & 0xFF

    # SW1 SW2, so no length/byteorder arguments: narrower than int.to_bytes on purpose.
    def to_bytes(self) -> bytes:  # type: ignore[override]
        return int(self).to_bytes(2, "big")

    def __str__(self) -> str:
        return f"{int(self):04X} ({self.description})"


_KNOWN: dict[int, str] = {int(m): m.description for m in SW.__members__.values()}


# GSM 11.11 / 3GPP TS 51.011 §9.4 and ETSI TS 102 221 §10.2.1 status words that
# are not ISO 7816-4 ones (the SIM class A0 answers with them).
_GSM: dict[int, str] = {
    0x9240: "Memory problem",
    0x9300: "SIM Application Toolkit busy",
    0x9400: "No EF selected",
    0x9402: "Out of range (invalid address)",
    0x9404: "File ID not found, or pattern not found",
    0x9408: "File is inconsistent with the command",
    0x9802: "No CHV initialised",
    0x9804: "Access condition not fulfilled, or CHV verification failed",
    0x9808: "In contradiction with CHV status",
    0x9810: "In contradiction with invalidation status",
    0x9840: "CHV verification failed, no attempt left (blocked)",
    0x9850: "Increase cannot be performed, maximum value reached",
    0x9863: "Authentication error, security context not supported",
}


def describe(sw: int) -> str:
    """Describe any status word, including the parameterised ranges of ISO 7816-4."""
    if sw in _KNOWN:
        return _KNOWN[sw]
    if sw in _GSM:
        return _GSM[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} response bytes still available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"Wrong Le field: exact length is {sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"Verification failed, {sw2 & 0x0F} tries left"
    if sw1 == 0x9F:
        return f"{sw2 or 256} response bytes available (GSM class)"
    if sw1 == 0x91:
        return f"Normal ending, proactive command of {sw2} bytes pending"
    if sw1 == 0x92 and sw2 & 0xF0 == 0:
        return f"Command successful after {sw2} internal retries"
    if sw1 == 0x9E:
        return f"{sw2 or 256} response bytes available (SIM data download error)"
    if sw1 == 0x62 and 0x02 <= sw2 <= 0x80:
        return "Warning: triggering by the card"
    if sw1 in (0x62, 0x63):
        return "Warning"
    if sw1 in (0x64, 0x65, 0x66):
        return "Execution error"
    if 0x67 <= sw1 <= 0x6F:
        return "Checking error"
    return "Unknown status word"


def is_success(sw: int) -> bool:
    """True for 9000, 61xx and (GSM class) 9Fxx: success, perhaps with more data to fetch."""
    return sw == 0x9000 or sw >> 8 in (0x61, 0x9F)


# 3GPP TS 51.011 §9.4 (security management): CHV check failed, attempts left / none left.
_GSM_COUNTER_WORDS = frozenset({0x9804, 0x9840})


def nvm_may_change(sw: int) -> bool:
    """Whether ISO 7816-4 §5.1.3 allows this status word after a change of persistent state.

    9000/61xx/9Fxx (success), 63xx (warning, NVM changed) and 65xx (execution error,
    NVM changed) may follow a persistent write; every other error or warning says
    the card's non-volatile memory is unchanged. Two GSM class words are the
    analogue of 63Cx and of the last 63C0: 9804 and 9840 of 3GPP TS 51.011 §9.4
    answer a failed VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK CHV, after the
    card has written its retry counter down (so 9804 is allowed a write even
    when, as "access condition not fulfilled", it follows none).
    """
    sw1 = sw >> 8
    return sw in _GSM_COUNTER_WORDS or sw == 0x9000 or sw1 in (0x61, 0x63, 0x65, 0x91, 0x92, 0x9F)


def bytes_available(sw: int) -> int | None:
    """For 61xx, the number of bytes GET RESPONSE can fetch (00 means 256); else None."""
    if sw >> 8 == 0x61:
        return (sw & 0xFF) or 256
    return None


def exact_length(sw: int) -> int | None:
    """For 6Cxx, the exact Le the card wants (00 means 256); else None."""
    if sw >> 8 == 0x6C:
        return (sw & 0xFF) or 256
    return None


def retries_left(sw: int) -> int | None:
    """For 63Cx, the retry counter x; else None."""
    if sw >> 4 == 0x63C:
        return sw & 0x0F
    return None


def sw_retries(n: int) -> int:
    """The 63Cx status word for n tries left (n is clamped to 0..15)."""
    return 0x63C0 | max(0, min(n, 15))


class CardError(Exception):
    """Raised by an applet to end a command with a status word (Java Card's ISOException).

    `data` is allowed only with warnings (62xx/63xx), as ISO 7816-4 allows; the
    runtime drops it for errors.
    """

    __slots__ = ("sw", "data")

    def __init__(self, sw: int, data: bytes = b"") -> None:
        super().__init__(sw, data)
        self.sw = int(sw)
        self.data = data

    def __str__(self) -> str:
        return f"{self.sw:04X} ({describe(self.sw)})"
