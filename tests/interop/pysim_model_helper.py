"""Run under pySim's interpreter: the files pySim's model expects, with their services.

Prints one JSON list of [path, service] for ADF.USIM (TS 31.102), ADF.ISIM
(TS 31.103) and DF.TELECOM (TS 51.011 / 31.102), path as pySim-shell's export
names it below MF ("ADF.USIM/DF.5GS/EF.OPL5G"). service is pySim's own: null (no
service decides), a number, ["any", n...] (any of them on) or ["all", n...].
Nothing of pySim is copied into cardemu: this script only reads its model.
"""

import json
import sys

from pySim.filesystem import CardDF
from pySim.ts_31_102 import ADF_USIM
from pySim.ts_31_103 import ADF_ISIM
from pySim.ts_51_011 import DF_TELECOM


def service(s):
    if s is None or isinstance(s, int):
        return s
    return ["all" if isinstance(s, tuple) else "any", *s]


def walk(node, path, out):
    for child in node.children.values():
        p = f"{path}/{child.name}"
        out.append([p, service(child.service)])
        if isinstance(child, CardDF):
            walk(child, p, out)


def main():
    out = []
    for root in (ADF_USIM(), ADF_ISIM(), DF_TELECOM()):
        walk(root, root.name, out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
