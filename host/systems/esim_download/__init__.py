"""The eSIM profile download (GSMA SGP.22 §3.1.3): `cardemu scenario esim-download`."""
