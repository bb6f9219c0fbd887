"""The UICC's file codecs and profile format, shared by the card and the host.

A card-side library (ARCHITECTURE.md): the UICC applet (applets.usim) builds and
serves profiles with it, and host tools (the SM-DP+, the USIM session, the
presets) read and make the same bytes with it without importing the applet.
One module per document:

- `ts_102_221` (ETSI TS 102 221): EF.ICCID, EF.DIR, EF.PL, EF.ARR, PIN coding;
- `ts_31_102` (3GPP TS 31.102): EF.IMSI, EF.UST, PLMN lists, dialling numbers,
  DF.5GS, SUCI_Calc_Info, ...;
- `ts_31_103` (3GPP TS 31.103): the ISIM's files;
- `ts_51_011` (3GPP TS 51.011): the GSM-class SELECT response, CHV coding;
- `auth`: AKA on the card side (TS 33.102 §6.3 on Milenage TS 35.206 or TUAK
  TS 35.231, SQN checks of TS 33.102 Annex C);
- `profile`: the internal profile format with its export and import;
  `builder` makes one from a few fields;
- `saip` (TCA eUICC Profile Package) with its file templates `saip_templates`;
- `fsstore`: how a profile's file tree is kept compactly in persistent memory;
- `filedef`: the record each codec module declares per EF (`FILE_DEFS`: name, FID,
  DF, clause, codec, vectors, malformed inputs) and `registry()` over all of them,
  walked by one generic test (tests/unit/test_uicc_filedefs.py).
"""
