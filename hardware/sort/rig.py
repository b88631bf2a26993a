"""Run the engine against the built-in PLC/conveyor simulator (demo, benchmark, tests).

The simulator starts with its conveyor idle; a pacer thread puts parts at the station at the
wanted rate only once the PC is READY (its heartbeat moves and the engine has resynced), the
way a line is started after the inspection station reports ready. Otherwise the first parts
would be condemned by the PLC's watchdog before the PC ever had a chance.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hardware.errors import HardwareError
from hardware.sort.config import SortConfig
from hardware.sort.engine import SortEngine, SortSummary, SortTick
from labeling.progress import Progress, ProgressFn


@dataclass
class RigResult:
    summary: SortSummary
    simulator: dict[str, Any]
    history: list[dict] = field(default_factory=list)
    rate: float = 0.0
    produced: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = self.summary.to_dict()
        out["simulator"] = self.simulator
        out["line_rate"] = self.rate
        return out


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise HardwareError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


def run_on_simulator(project: Any, classifier: Any, source: Any, parts: int, rate: float = 5.0,
                     travel_s: float = 0.4, config: SortConfig | None = None,
                     progress: ProgressFn | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     on_part: Callable[[int, Any, SortEngine], None] | None = None) -> RigResult:
    """Sort `parts` parts coming at `rate` parts/s from a PlcSimulator on a free loopback port.

    on_part(k, simulator, engine) runs in the pacer thread after part k was triggered (tests use
    it to cut the network mid-run).
    """
    from hardware.plc.simulator import PlcSimulator
    if parts <= 0 or rate <= 0:
        raise ValueError("parts and rate must be positive")
    sim = PlcSimulator(host="127.0.0.1", port=0, rate=0.0, travel_s=travel_s)
    sim.start()
    try:
        cfg = config or SortConfig()
        cfg.plc_host, cfg.plc_port = "127.0.0.1", sim.port
        if cfg.line_rate is None:
            cfg.line_rate = rate  # the capacity check speaks before the first trigger
        engine = SortEngine(project, classifier, source, cfg)
        engine.start()  # stopped once the belt is empty: stopping earlier condemns parts in flight
        wait_until(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1 or not engine.running, 30,
                   "the sort engine to connect")
        wait_until(lambda: sim.counters()["alarm"] == 0 or not engine.running, 30,
                   "the PC heartbeat to reach the PLC")
        produced = 0
        period = 1.0 / rate
        t0 = time.monotonic()
        for k in range(parts):
            if not engine.running or (should_stop is not None and should_stop()):
                break
            delay = t0 + k * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sim.trigger()
            produced += 1
            if progress is not None:
                snap = engine.snapshot()
                progress(Progress("sort", snap["triggers"], parts, f"{snap['verdicts']}", SortTick(snap)))
            if on_part is not None:
                on_part(k, sim, engine)
        elapsed = time.monotonic() - t0
        # Every part must reach the gate before the counters mean anything.
        # Every part must reach the gate before the counters mean anything; by then any answer
        # still missing would be late anyway, so the engine can stop.
        wait_until(lambda: sim.counters()["in_flight"] == 0, travel_s + 10, "the belt to empty")
        summary = engine.stop()
        line_rate = round((produced - 1) / elapsed, 3) if produced > 1 and elapsed > 0 else 0.0
        return RigResult(summary, sim.counters(), sim.history(), line_rate, produced)
    finally:
        sim.stop()
