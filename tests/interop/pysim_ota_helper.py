"""Run under pySim's interpreter: osmocom pySim's OTA code (pySim/ota.py) as an independent peer.

Reads one JSON request on stdin, writes one JSON answer on stdout. Nothing of
pySim is copied into cardemu: this script only calls it.

- {"op": "encode", keyset, spi, tar, apdu, cntr} -> {"packet"}: OtaDialectSms.encode_cmd
- {"op": "decode_cmd", keyset, packet} -> {"tar", "apdu"}: OtaDialectSms.decode_cmd
- {"op": "decode_resp", keyset, spi, por} -> {"status", "commands", "sw", "data"}
- {"op": "cat", "envelope", "proactive"} -> what pySim.cat and pySim.sms make of them
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


def cat(req):
    from pySim.cat import ProactiveCommand, SMSPPDownload
    from pySim.sms import SMS_DELIVER

    env = SMSPPDownload()
    env.from_tlv(bytes.fromhex(req["envelope"]))
    items = env.to_dict()["smspp_download"]
    tpdu = next(i["sms_tpdu"]["tpdu"] for i in items if "sms_tpdu" in i)
    deliver = SMS_DELIVER.from_bytes(tpdu)
    pc = ProactiveCommand()
    pc.from_tlv(bytes.fromhex(req["proactive"]))
    ((name, pitems),) = pc.to_dict().items()
    return {
        "devices": [i for i in items if "device_identities" in i][0]["device_identities"],
        "pid": deliver.tp_pid,
        "dcs": deliver.tp_dcs,
        "udhi": bool(deliver.tp_udhi),
        "ud": bytes(deliver.tp_ud).hex(),
        "proactive": name,
        "details": pitems[0]["command_details"],
    }


def main():
    req = json.load(sys.stdin)
    if req["op"] == "cat":
        json.dump(cat(req), sys.stdout)
        return
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
