"""The SM-DP+ role (GSMA SGP.22 v2.x): ES9+ over HTTPS/JSON, profile orders, BPP binding."""
