"""Seed 002's repository card: the HSM-signed repository URL, key pairs, one-time tokens."""

from applets.repository.applet import REPOSITORY_AID, RepositoryCardApplet

__all__ = ["REPOSITORY_AID", "RepositoryCardApplet"]
