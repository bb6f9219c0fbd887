"""GlobalPlatform from the host: SCP03 as a reader wrapper, and content-management recipes."""

from host.gp.client import GpClient, IsdInfo, Registry
from host.gp.data import Privilege, RegistryEntry, StatusScope
from host.gp.secure_channel import DEFAULT_LEVEL, Scp03Reader

__all__ = [
    "DEFAULT_LEVEL",
    "GpClient",
    "IsdInfo",
    "Privilege",
    "Registry",
    "RegistryEntry",
    "Scp03Reader",
    "StatusScope",
]
