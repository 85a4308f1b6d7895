"""A bare PJSUA2 call loop: the floor ccharness's engine is compared against.

    .venv/bin/python -m benchmarks.load_bare_loop URI CALLS HOLD_SECONDS

One Endpoint, null audio, transports on 127.0.0.1, 4 calls at a time, each held
HOLD seconds then hung up; main thread polls libHandleEvents(10). Prints one JSON
line: calls done and the CPU seconds (all threads) the loop itself used.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import pjsua2 as pj


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Call(pj.Call):
    def __init__(self, acc):
        super().__init__(acc)
        self.answered_at = None
        self.done = False

    def onCallState(self, prm):
        st = self.getInfo().state
        if st == pj.PJSIP_INV_STATE_CONFIRMED and self.answered_at is None:
            self.answered_at = time.time()
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.done = True


def main(uri: str, calls: int, hold: float) -> None:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = cfg.logConfig.consoleLevel = 0
    cfg.medConfig.threadCnt = 0
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:bare@127.0.0.1"
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
    acc = pj.Account()
    acc.create(acfg, True)
    c0, placed, finished, live, graveyard = cpu(), 0, 0, [], []
    while finished < calls:
        while placed < calls and len(live) < 4:
            c = Call(acc)
            try:
                c.makeCall(uri, pj.CallOpParam(True))
            except pj.Error:          # slot still in PJSUA's reset window: try again
                graveyard.append(c)   # destroying a failed Call can abort the process
                break
            live.append(c)
            placed += 1
        ep.libHandleEvents(10)
        now = time.time()
        for c in list(live):
            if c.done:
                if pj.Call.lookup(c.getId()) is None:   # PJSUA has freed the slot
                    live.remove(c)
                    finished += 1
                    del c
            elif c.answered_at and now - c.answered_at >= hold:
                c.answered_at = float("inf")
                c.hangup(pj.CallOpParam(True))
    used = cpu() - c0
    print(json.dumps({"calls": finished, "cpu_s": used, "retries": len(graveyard)}), flush=True)
    os._exit(0)   # no destructors at exit (see graveyard)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
