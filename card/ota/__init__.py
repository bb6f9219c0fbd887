"""Over-the-air remote management of a UICC: the card-side libraries (and the codecs hosts share).

- `scp80`: ETSI TS 102 225 secured packets (command and response packets,
  ciphering, cryptographic checksums, counters, proofs of receipt).
- `keys`: the Security Domain's SCP80 key sets (KIc/KID/DEK, key versions 01-0F).
- `sms`: 3GPP TS 23.040 SMS-DELIVER / SMS-SUBMIT TPDUs, the user data header
  with the TS 31.115 command/response packet identifiers, concatenation.
- `cat`: ETSI TS 102 223 COMPREHENSION-TLVs, the SMS-PP download ENVELOPE,
  proactive commands and TERMINAL RESPONSE.
- `ram`: ETSI TS 102 226 command scripts (compact and expanded formats).
- `remote`: the receiving entity on the card: TAR, minimum security level,
  keys, counter, script, proof of receipt.
- `toolkit`: the card's proactive session (FETCH, TERMINAL RESPONSE, 91xx) and
  the Shareable interfaces between the UICC platform, the ISD and applets.
"""
