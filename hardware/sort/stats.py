"""Per-stage timings and trigger-to-write latency percentiles of the sort loop."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable

import numpy as np

# "overhead": total minus the forward, per part (poll, capture, preprocessing, decide, write)
STAGES = ("poll", "capture", "preprocess", "forward", "decide", "infer", "write", "total", "overhead")


def percentiles(values: Iterable[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """{'p50': ms, ...} of values given in seconds; empty dict when there are none."""
    arr = np.fromiter(values, dtype=np.float64)
    if arr.size == 0:
        return {}
    return {f"p{int(q)}": round(float(np.percentile(arr, q)) * 1000.0, 3) for q in qs}


class LatencyStats:
    """Thread-safe rolling record of stage timings (seconds) of answered parts."""

    def __init__(self, window: int = 20000) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self._done: deque[float] = deque(maxlen=window)  # monotonic time of each finished part
        self._seen: deque[float] = deque(maxlen=window)  # ... of each trigger, missed ones too

    def add(self, timings: dict[str, float]) -> None:
        with self._lock:
            for name, value in timings.items():
                if name in self._stages:
                    self._stages[name].append(float(value))
            self._done.append(time.monotonic())

    def seen(self, n: int = 1) -> None:
        """n triggers arrived now (decided or missed): the line's rate, not the PC's."""
        now = time.monotonic()
        with self._lock:
            self._seen.extend([now] * n)

    def latency_ms(self) -> dict[str, float]:
        """Trigger-to-write p50/p95/p99 (+ max, mean) in milliseconds."""
        with self._lock:
            total = list(self._stages["total"])
        out = percentiles(total)
        if total:
            out["max"] = round(max(total) * 1000.0, 3)
            out["mean"] = round(sum(total) / len(total) * 1000.0, 3)
            out["n"] = len(total)
        return out

    def p50_ms(self, stage: str) -> float | None:
        """One stage's p50 in milliseconds (None before it was measured): one deque copied, not
        all of them, since the reporting thread asks five times a second beside the engine."""
        with self._lock:
            values = list(self._stages[stage])
        return percentiles(values, (50,)).get("p50")

    def stages_ms(self) -> dict[str, dict[str, float]]:
        """p50/p99 per stage in milliseconds (stages that were measured)."""
        with self._lock:
            items = {k: list(v) for k, v in self._stages.items() if v}
        return {k: percentiles(v, (50, 99)) for k, v in items.items()}

    def rate(self, window_s: float = 5.0) -> float:
        """Parts decided per second over the last window_s seconds."""
        return self._rate(self._done, window_s)

    def trigger_rate(self, window_s: float | None = 5.0) -> float:
        """Triggers per second over the last window_s seconds, missed ones included: when the
        PC falls behind, this is the line's rate while `rate` is the PC's. window_s None: from
        the first trigger to the last (a whole run's rate, pauses before and after left out)."""
        if window_s is None:
            with self._lock:
                n, first, last = len(self._seen), (self._seen[0] if self._seen else 0.0), (self._seen[-1] if self._seen else 0.0)
            return round((n - 1) / (last - first), 3) if n >= 2 and last > first else 0.0
        return self._rate(self._seen, window_s)

    def _rate(self, times: deque[float], window_s: float) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in times if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], 1e-6)
        return round(len(recent) / span, 3)
