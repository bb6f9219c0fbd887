"""Key pairs generated and used on the card (ISO/IEC 7816-8), with secure messaging."""

from applets.keypair.applet import DEFAULT_PIN, KEYPAIR_AID, KeyPairApplet

__all__ = ["DEFAULT_PIN", "KEYPAIR_AID", "KeyPairApplet"]
