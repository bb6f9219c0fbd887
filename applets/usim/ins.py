"""The instructions of the UICC and the SIM, by name (ETSI TS 102 221 §10.1.2, TS 51.011 §9.2).

One `IntEnum`, as yubikit names its INS values: the applet's dispatch reads as
the tables of the specifications, and a member compares equal to its byte.
"""

from __future__ import annotations

from enum import IntEnum


class Ins(IntEnum):
    """TS 102 221 Table 10.5 (coding of the instruction byte), TS 31.102 §7.5, TS 51.011 §9.2."""

    SELECT = 0xA4
    STATUS = 0xF2
    READ_BINARY = 0xB0
    UPDATE_BINARY = 0xD6
    READ_RECORD = 0xB2
    UPDATE_RECORD = 0xDC
    SEARCH_RECORD = 0xA2
    INCREASE = 0x32
    #: RETRIEVE DATA / SET DATA on BER-TLV EFs (TS 102 221 §11.3)
    RETRIEVE_DATA = 0xCB
    SET_DATA = 0xDB
    DEACTIVATE_FILE = 0x04
    ACTIVATE_FILE = 0x44
    VERIFY_PIN = 0x20
    CHANGE_PIN = 0x24
    DISABLE_PIN = 0x26
    ENABLE_PIN = 0x28
    UNBLOCK_PIN = 0x2C
    #: AUTHENTICATE (TS 102 221 §11.1.16); RUN GSM ALGORITHM in the GSM class A0
    AUTHENTICATE = 0x88
    GET_RESPONSE = 0xC0
    TERMINAL_PROFILE = 0x10
    TERMINAL_CAPABILITY = 0xAA
    #: the toolkit (TS 102 221 §10.1.2, TS 102 223): a proactive command, its result,
    #: and a download to the card (SMS-PP, events)
    FETCH = 0x12
    TERMINAL_RESPONSE = 0x14
    ENVELOPE = 0xC2
    #: GET IDENTITY (TS 31.102 §7.5): the SUCI
    GET_IDENTITY = 0x78
