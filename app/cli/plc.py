"""`okng plc-sim`: the built-in PLC and conveyor simulator as a standalone Modbus TCP server."""
from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the plc-sim command."""
    p = subparsers.add_parser(
        "plc-sim", help="run the PLC/conveyor simulator (Modbus TCP server)",
        description="Plays the PLC side of the PC<->PLC contract (docs/plc-register-map.md): "
                    "a conveyor with parts at RATE parts/s, TRIG_SEQ/PART_ID per part, positive "
                    "release at the gate and the 500 ms watchdog on PC_HEARTBEAT. Runs until "
                    "Ctrl-C / SIGTERM / N parts / the duration, then prints its counters as one "
                    "JSON line.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else is reachable from the network)")
    p.add_argument("--port", type=int, default=5020, help="TCP port (0 picks a free one; default 5020)")
    p.add_argument("--rate", type=float, default=5.0, help="parts per second (0: no parts)")
    p.add_argument("--parts", type=int, default=None, help="stop after N parts went through the gate")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--travel", type=float, default=0.4, help="seconds from inspection to the gate")
    p.add_argument("--plc-base", type=int, default=0, help="PLC block base address")
    p.add_argument("--pc-base", type=int, default=10, help="PC block base address")
    p.add_argument("--unit-id", type=int, default=1, help="Modbus unit id")
    p.add_argument("--word-order", choices=("big", "little"), default="big",
                   help="u32 word order (big: high word first)")
    p.set_defaults(func=run_plc_sim)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_plc_sim(args: argparse.Namespace) -> int:
    """Run the simulator until a stop condition, then print the counters as JSON."""
    from app.cli.common import print_json
    from hardware.plc.registers import RegisterMap
    from hardware.plc.simulator import PlcSimulator

    if args.parts is not None and args.parts < 0:
        raise ValueError("--parts must be >= 0")
    if args.duration is not None and args.duration < 0:
        raise ValueError("--duration must be >= 0")
    if not 0 <= args.port < 65536:
        raise ValueError("--port must be in 0..65535")
    if not _is_loopback(args.host):
        print(f"okng plc-sim: warning: binding {args.host}: the simulator is reachable from the "
              "network, and anyone there can write its registers", file=sys.stderr)
    regmap = RegisterMap(plc_base=args.plc_base, pc_base=args.pc_base, unit_id=args.unit_id,
                         word_order=args.word_order)
    sim = PlcSimulator(host=args.host, port=args.port, rate=args.rate, travel_s=args.travel,
                       regmap=regmap, parts=args.parts)
    stop = threading.Event()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        sim.start()
        print(f"okng plc-sim: listening on {args.host}:{sim.port} (unit {regmap.unit_id}, "
              f"PLC block at {regmap.plc_base}, PC block at {regmap.pc_base}, "
              f"{args.rate:g} parts/s)", file=sys.stderr, flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set():
            if sim.done.is_set() or (deadline is not None and time.monotonic() >= deadline):
                break
            stop.wait(0.05)
        counters = sim.stop()
    finally:
        if sim.running:
            sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print_json({"port": sim.port, **counters})
    return 0
