"""GlobalPlatform card manager (GPC v2.3.1 with Amendment D, SCP03).

Modules, one concern each:

- `isd`       the Issuer Security Domain applet: dispatch, SCP03 sessions, SELECT, GET DATA
- `content`   GET/SET STATUS, INSTALL, LOAD, DELETE, PUT KEY, STORE DATA
- `channel`   per-logical-channel state (session, load in progress, personalization target)
- `scp03`     the SCP03 session maths, shared with the host side
- `lifecycle` card, load file, application and SD life cycles (§5)
- `registry`  load file and application records, privileges (§6)
- `loadfile`  the safe load-file descriptor, its code hash, the LOAD stream
- `status`    GET STATUS encoding (§11.4)
- `install`   INSTALL data fields (§11.5)
- `keys`      key sets, PUT KEY, Key Information Template (§11.8, §11.3)
- `carddata`  FCI, Card Data, Card Capabilities, CPLC (§11.9, Annex H)

Nothing is imported here, so `card.gp.scp03` stays usable without the ISD.
"""
