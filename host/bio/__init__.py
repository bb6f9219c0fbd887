"""Biometric host tools: synthetic minutiae, the accuracy harness, Bozorth3, DET plots."""
