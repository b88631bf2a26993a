"""Can this PC's model keep up with the line? Said before and while parts flow, in one sentence.

The engine decides one part at a time, so a part that triggers while the previous one is still
being decided waits, and one that triggers while two are waiting is missed: it reaches the gate
without a verdict and is rejected (fail-safe, but a good part thrown away). A supervisor must know
that in shadow mode, not after switching the gate over.

The load is the share of each trigger period a part takes: line rate x time per part. Before
parts flow the time per part is the warm-up's forward (the engine's blank-view forwards, timed:
a lower bound, capture and the Modbus write come on top); once parts flow it is the measured
trigger-to-write p50. Measured on the demo model (resnet18, 224 px, 135 ms bare forward, p50
172 ms) at 5 parts/s, a forward load of 0.68 missed 3 parts of 34: jitter (p99 273-394 ms) eats
the rest of the period, hence "tight" from 0.6. At 0.9 of the period a backlog builds up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TIGHT = 0.6  # load from which the period's slack is within one part's jitter
OVER = 0.9  # load from which triggers come faster than parts are decided, on average


@dataclass(frozen=True)
class Capacity:
    """How long one part takes against how often the line triggers."""

    part_ms: float  # ms per part (0: not measured yet)
    line_rate: float | None  # parts/s the line triggers (None: not known yet)
    basis: str  # "warm-up forward" (before parts) or "measured p50" (parts flowing)
    capture_ms: float | None = None  # p50 of the capture stage, once parts flow

    @property
    def capture_bound(self) -> bool:
        """Most of a part's time is the capture (an X-ray product still being scanned, a slow
        camera): a lighter model would not help."""
        return self.capture_ms is not None and self.part_ms > 0 and self.capture_ms >= 0.5 * self.part_ms

    @property
    def max_rate(self) -> float | None:
        """Parts/s this PC decides back to back (None before anything was timed)."""
        return 1000.0 / self.part_ms if self.part_ms > 0 else None

    @property
    def load(self) -> float | None:
        if self.max_rate is None or not self.line_rate:
            return None
        return self.line_rate / self.max_rate

    @property
    def level(self) -> str:
        load = self.load
        if load is None:
            return "unknown"
        return "over" if load >= OVER else "tight" if load >= TIGHT else "ok"

    def text(self) -> str:
        """One sentence for the Live-sort panel and `okng sort`."""
        if self.max_rate is None:
            return "Speed: not measured yet."
        of = f", capture {self.capture_ms:.0f} ms of it" if self.capture_bound else ""
        head = f"{self.part_ms:.0f} ms a part ({self.basis}{of}): at most {self.max_rate:.1f} parts/s on this PC"
        if self.line_rate is None or self.line_rate <= 0:
            return head + "; the line's rate shows once triggers come."
        head += f"; the line triggers {self.line_rate:.1f} parts/s"
        level = self.level
        if level == "over":
            fix = ("Most of it is the capture: a faster source (exposure, transfer, scan length) or a slower "
                   "line fixes it, not a lighter model." if self.capture_bound else
                   "Use a lighter or pruned model, ONNX Runtime, a smaller input, or slow the line before going live.")
            return "⚠ Cannot keep up: " + head + ". Parts will be missed and rejected (fail-safe). " + fix
        if level == "tight":
            return ("⚠ Little headroom: " + head + f" (load {self.load:.0%}). A slow forward will miss a part; "
                    "watch the missed count in shadow mode before going live.")
        return head + f" (load {self.load:.0%})."

    def to_dict(self) -> dict[str, Any]:
        load = self.load
        return {"part_ms": round(self.part_ms, 1), "max_rate": None if self.max_rate is None else round(self.max_rate, 2),
                "line_rate": self.line_rate, "load": None if load is None else round(load, 3),
                "basis": self.basis, "capture_ms": self.capture_ms, "capture_bound": self.capture_bound,
                "level": self.level, "text": self.text()}


def assess(forward_ms: float, latency_ms: dict[str, float] | None, trigger_rate: float,
           planned_rate: float | None = None, capture_p50_ms: float | None = None) -> Capacity:
    """The capacity from what the engine knows now: its warm-up forward, the parts' latency so
    far (p50, once there are a few; with the capture stage's share) and the rate triggers came
    at; a planned rate (the built-in simulator's conveyor) stands for the line until triggers
    show the real one."""
    lat = latency_ms or {}
    capture = None
    if lat.get("p50") and lat.get("n", 0) >= 3:
        part_ms, basis = float(lat["p50"]), "measured p50"
        capture = capture_p50_ms
    else:
        part_ms, basis = float(forward_ms or 0.0), "warm-up forward"
    rate = trigger_rate if trigger_rate and trigger_rate > 0 else planned_rate
    return Capacity(part_ms, round(float(rate), 2) if rate else None, basis,
                    None if capture is None else round(float(capture), 1))
