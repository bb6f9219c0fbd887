"""The "ISO 7816-4 file-system card" applet: card.fs with PINs, default-selected on the demo card.

See `applets.iso7816.applet` for the commands and `applets.iso7816.demo` for the file tree.
"""

from applets.iso7816.applet import FileSystemApplet, pad_pin
from applets.iso7816.demo import DATA_EF_FID, DEMO_DF_NAME, build_demo_tree

#: Proprietary AID: the "CARDEMU" RID family of applets.sample, PIX 78 16.
FS_APPLET_AID = bytes.fromhex("F043415244454D557816")

#: The transparent EF of 512 bytes (i mod 256) the card benchmark reads, as FID bytes.
BENCH_EF_FID = DATA_EF_FID.to_bytes(2, "big")

__all__ = [
    "BENCH_EF_FID",
    "DATA_EF_FID",
    "DEMO_DF_NAME",
    "FS_APPLET_AID",
    "FileSystemApplet",
    "build_demo_tree",
    "pad_pin",
]
