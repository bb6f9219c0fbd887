"""Fingerprint match-on-card (ISO/IEC 7816-11, ISO/IEC 19794-2 compact card format).

- `applet`: `BiometricApplet` — VERIFY with a biometric data template, the BIT
  group by GET DATA, enrolment under an administrative key or GP personalisation.
- `matcher`: the on-card minutiae matcher, a pure function (`extract`, `compare`).
- `iso19794`: the compact-size minutiae encoding and the 7F2E data object.
- `bit`: biometric information templates (7F60) and their group (7F61).
"""

from applets.biometric.applet import BIO_AID, BiometricApplet

__all__ = ["BIO_AID", "BiometricApplet"]
