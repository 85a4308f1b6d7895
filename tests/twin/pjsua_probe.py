"""Place a few PJSUA2 calls and print what happened, as JSON (run as a subprocess).

    python pjsua_probe.py SIP_URI [SIP_URI ...] --hold 0.3

One call per URI, one after the other (PJSUA2 holds at most 4 calls per process). For
each: the final INVITE status, whether the call was confirmed, and the X-Twin-Trunk
header of the final response. Transports are bound to 127.0.0.1 (DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import re
import time

import pjsua2 as pj


class Probe(pj.Call):
    def __init__(self, acc):
        super().__init__(acc)
        self.code, self.confirmed, self.trunk, self.done = None, False, None, False

    def onCallState(self, prm):
        info = self.getInfo()
        try:
            if prm.e.type == pj.PJSIP_EVENT_TSX_STATE:
                msg = prm.e.body.tsxState.src.rdata.wholeMsg
                m = re.search(r"^X-Twin-Trunk:\s*(\S+)", msg or "", re.M | re.I)
                if m:
                    self.trunk = m.group(1)
        except Exception:  # noqa: BLE001 - not every event carries a message
            pass
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed, self.code = True, 200
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if self.code is None:
                self.code = info.lastStatusCode
            self.done = True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("uris", nargs="+")
    ap.add_argument("--hold", type=float, default=0.3)
    args = ap.parse_args()
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:probe@127.0.0.1"
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
    acc = pj.Account()
    acc.create(acfg)
    results = []
    for uri in args.uris:
        call = Probe(acc)
        prm = pj.CallOpParam(True)
        h = pj.SipHeader()
        h.hName, h.hValue = "X-Chaos-Test", "pjsua-probe"
        prm.txOption.headers.append(h)
        call.makeCall(uri, prm)
        deadline = time.time() + 10
        hung = False
        answered_at = None
        while not call.done and time.time() < deadline:
            ep.libHandleEvents(10)
            if call.confirmed and answered_at is None:
                answered_at = time.time()
            if answered_at and not hung and time.time() - answered_at >= args.hold:
                hung = True
                call.hangup(pj.CallOpParam(True))
        if not call.done:
            call.hangup(pj.CallOpParam(True))
            for _ in range(50):
                ep.libHandleEvents(10)
        results.append({"uri": uri, "code": call.code, "confirmed": call.confirmed, "trunk": call.trunk})
        del call
    print(json.dumps(results), flush=True)
    acc.shutdown()
    ep.libDestroy()


if __name__ == "__main__":
    main()
