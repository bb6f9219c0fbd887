"""Seed 001: a door that opens offline between two SIMs, and gets its missing applet (DESIGN §4.B).

- `card`: the SIMs (UICC + ISD), the host's session with the door-lock applet
  (`applets.doorlock`), its install script and personalisation.
- `delivery`: how the server's install scripts reach a SIM (`AppletDelivery`), and the
  SCP03 path (`DirectGpDelivery`).
- `ota`: the over-the-air path, the default (`OtaDelivery`: RAM over SMS-PP through
  the SMS centre), and the server's SMS inbox.
- `ams`: the application management server (registry, download requests,
  pre-provisioning, the download log), logic and HTTP routes.
- `terminal`: the door-lock controller and the phone, and their short-range link.
- `scenario`: `cardemu scenario doorlock`.
"""
