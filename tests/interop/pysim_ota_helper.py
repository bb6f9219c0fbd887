"""Run under pySim's interpreter: osmocom pySim's OTA code (pySim/ota.py) as an independent peer.

Reads one JSON request on stdin, writes one JSON answer on stdout. Nothing of
pySim is copied into cardemu: this script only calls it.

- {"op": "encode", keyset, spi, tar, apdu, cntr} -> {"packet"}: OtaDialectSms.encode_cmd
- {"op": "decode_cmd", keyset, packet} -> {"tar", "apdu"}: OtaDialectSms.decode_cmd
- {"op": "decode_resp", keyset, spi, por} -> {"status", "commands", "sw", "data"}
"""

import json
import sys

from pySim.ota import OtaDialectSms, OtaKeyset


def keyset(k):
    return OtaKeyset(
        algo_crypt=k["crypt"],
        kic_idx=k["kvn"],
        kic=bytes.fromhex(k["kic"]),
        algo_auth=k["auth"],
        kid_idx=k["kvn"],
        kid=bytes.fromhex(k["kid"]),
        cntr=k.get("cntr", 0),
    )


def main():
    req = json.load(sys.stdin)
    dialect = OtaDialectSms()
    ks = keyset(req["keyset"])
    if req["op"] == "encode":
        packet = dialect.encode_cmd(
            ks, bytes.fromhex(req["tar"]), req["spi"], bytes.fromhex(req["apdu"])
        )
        out = {"packet": packet.hex()}
    elif req["op"] == "decode_cmd":
        tar, _spi, apdu = dialect.decode_cmd(ks, bytes.fromhex(req["packet"]))
        out = {"tar": bytes(tar).hex(), "apdu": bytes(apdu).hex()}
    else:
        res, dec = dialect.decode_resp(ks, req["spi"], req["por"])
        out = {"status": str(res["response_status"])}
        if dec is not None:
            out.update(
                commands=dec["number_of_commands"],
                sw=str(dec["last_status_word"]),
                data=str(dec["last_response_data"]),
            )
    json.dump(out, sys.stdout)


main()
