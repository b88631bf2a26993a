"""Soak: live sort against the built-in PLC simulator with random PLC kills and pauses.

The PLC simulator runs in a child process (a real PLC is another box). Every 10-60 s (seeded)
the soak either kills the PLC's Modbus side (listener and every connection closed for 0.5-5 s,
the conveyor keeps producing parts: a comms module restart or a pulled cable) or pauses the
whole PLC process with SIGSTOP for 0.2-3 s (a frozen controller: requests sit unanswered in
its socket buffers, then are all served at SIGCONT). The sort engine runs in this process with
a tiny torch model, no part logging.

At the end the line stops, the belt empties and okng's accounting is compared with the
simulator's counters: triggers (okng counts the parts it saw, the ones it saw skipped and the
ones that went by during outages) and answers the PLC accepted. Memory is this process's RSS,
sampled every 30 s after the first minute (warm-up excluded).

    nice -n 15 .venv/bin/python bench/soak.py [--minutes 30] [--rate 5] [--seed 0] [--out F]

Prints ONE JSON line (and writes it to --out when given).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import RingSource


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    return 0.0


# ------------------------------------------------------------------ child: the PLC
def serve_plc(rate: float, travel: float) -> int:
    """Commands on stdin, one per line: go, down, up, finish (-> counters as one JSON line)."""
    from hardware.plc.simulator import PlcSimulator
    sim = PlcSimulator(rate=0.0, travel_s=travel)
    sim.start()
    print(json.dumps({"port": sim.port}), flush=True)
    pacing = threading.Event()
    stop = threading.Event()

    def pacer() -> None:
        # Sleep-paced, not scheduled: after a SIGSTOP the line does not burst to catch up.
        while not stop.is_set():
            if pacing.is_set():
                sim.trigger()
            time.sleep(1.0 / rate)

    threading.Thread(target=pacer, daemon=True).start()
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "go":
            pacing.set()
        elif cmd == "down":
            sim.stop_server()
        elif cmd == "up":
            sim.start_server()
        elif cmd == "finish":
            pacing.clear()
            end = time.monotonic() + travel + 10
            while sim.counters()["in_flight"] and time.monotonic() < end:
                time.sleep(0.01)
            print(json.dumps({"counters": sim.counters()}), flush=True)
            break
        print(json.dumps({"ok": cmd}), flush=True)
    stop.set()
    sim.stop()
    return 0


# ------------------------------------------------------------------ parent: okng
def tiny_classifier():
    import torch
    from torch import nn

    from hardware.sort.classifier import TorchViewClassifier

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(x).mean(dim=(2, 3)))

    torch.manual_seed(0)
    return TorchViewClassifier(Tiny().eval(), input_size=(48, 64), model_id="soak-tiny")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=5.0, help="parts per second")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-gap", type=float, default=10.0, help="s between faults (from)")
    ap.add_argument("--max-gap", type=float, default=60.0, help="s between faults (to)")
    ap.add_argument("--travel", type=float, default=0.4)
    ap.add_argument("--out", help="also write the JSON line to this file")
    ap.add_argument("--serve-plc", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_plc:
        return serve_plc(args.rate, args.travel)

    import torch

    from hardware.sort.config import SortConfig
    from hardware.sort.engine import SortEngine
    from hardware.sort.rig import wait_until
    from hardware.sources import make_source

    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    child = subprocess.Popen([sys.executable, __file__, "--serve-plc", "--rate", str(args.rate),
                              "--travel", str(args.travel)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def cmd(c: str) -> dict:
        child.stdin.write(c + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    faults = {"kills": 0, "pauses": 0, "down_s": 0.0, "paused_s": 0.0}
    rss: list[tuple[float, float]] = []
    t_start = time.monotonic()
    try:
        port = json.loads(child.stdout.readline())["port"]
        sim = make_source("sim:320x240", seed=0)
        sim.open()
        source = RingSource(sim, 6)
        cfg = SortConfig(plc_port=port, poll_period=0.003, log_parts=False, threads=1)
        engine = SortEngine(None, tiny_classifier(), source, cfg)
        engine.start()
        wait_until(lambda: engine.snapshot()["plc"].get("heartbeat", {}).get("ticks", 0) >= 5, 60,
                   "the PC heartbeat")
        cmd("go")
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        next_fault = t0 + rng.uniform(args.min_gap, args.max_gap)
        next_rss = t0 + 60.0
        while time.monotonic() < end and engine.running:
            now = time.monotonic()
            if now >= next_rss:
                rss.append((round(now - t0, 1), rss_mb()))
                next_rss = now + 30.0
            if now >= next_fault:
                if rng.random() < 0.5:
                    d = rng.uniform(0.5, 5.0)
                    cmd("down")
                    time.sleep(d)
                    cmd("up")
                    faults["kills"] += 1
                    faults["down_s"] += d
                else:
                    d = rng.uniform(0.2, 3.0)
                    os.kill(child.pid, signal.SIGSTOP)
                    time.sleep(d)
                    os.kill(child.pid, signal.SIGCONT)
                    faults["pauses"] += 1
                    faults["paused_s"] += d
                next_fault = time.monotonic() + rng.uniform(args.min_gap, args.max_gap)
            time.sleep(0.2)
        # Let the link settle after the last fault, then stop the line and empty the belt.
        time.sleep(3.0)
        counters = cmd("finish")["counters"]
        summary = engine.stop()
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.stdin.close()
            child.wait(15)
    s = summary
    okng = {"triggers": s.triggers, "answered": s.answered, "missed": s.missed,
            "missed_in_outages": s.missed_in_outages, "missed_written": s.missed_written,
            "unanswered": s.unanswered,
            "verdicts": s.verdicts, "write_failures": s.write_failures,
            "modbus_exceptions": s.modbus_exceptions,
            "disconnects": s.plc.get("disconnects"), "reconnects": s.plc.get("reconnects"),
            "in_doubt_landed": s.plc.get("in_doubt_landed")}
    plc = {k: counters[k] for k in ("triggers", "answered", "missed", "passed", "rejected",
                                    "rejected_by_watchdog", "answered_late", "unmatched",
                                    "mismatched", "ok", "ng", "errors", "in_flight")}
    # okng cannot see the gate: an answer written after its part went through (the loop starved
    # past the belt's travel time) is `answered` for okng and `answered_late` for the PLC. So the
    # exact equation is on answers that reached the PLC; late ones are reported on their own.
    match = {"triggers": s.triggers == counters["triggers"],
             "answered": s.answered == counters["answered"] + counters["answered_late"],
             # the only results the PLC could not match are skipped parts' ERROR writes
             "unmatched": s.missed_written == counters["unmatched"] + counters["mismatched"]}
    growth = round(rss[-1][1] - rss[0][1], 1) if len(rss) >= 2 else None
    out = {"bench": "soak", "minutes": args.minutes, "rate": args.rate, "seed": args.seed,
           "wall_s": round(time.monotonic() - t_start, 1), "faults": {k: round(v, 1) for k, v in faults.items()},
           "okng": okng, "plc": plc, "match": match, "accounting_equal": all(match.values()),
           "rss_mb": {"first": rss[0][1] if rss else None, "last": rss[-1][1] if rss else None,
                      "max": max(v for _, v in rss) if rss else None, "growth": growth,
                      "samples": len(rss)},
           "late_answers": counters["answered_late"], "latency_ms": s.latency_ms,
           "travel_ms": round(args.travel * 1000), "load_avg": os.getloadavg()}
    line = json.dumps(out)
    print(line, flush=True)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
