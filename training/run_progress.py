"""Where a training run stands, for its Progress lines: seconds of a time budget, or units of
work (views) of a fixed epoch count with an ETA from the pace so far."""
from __future__ import annotations

import time

from .recipe import RunClock


class EtaClock:
    """ETA from measured seconds per unit of work (cache rows and train/eval views)."""

    def __init__(self, total_units: float) -> None:
        self.total, self.done, self.t0 = max(total_units, 1.0), 0.0, time.monotonic()

    def eta(self, done: float) -> float:
        self.done = done
        el = time.monotonic() - self.t0
        return el / self.done * (self.total - self.done) if self.done > 0 else 0.0


def epoch_suffix(epochs: int | None, clock: RunClock) -> str:
    if clock.budget_s:
        left = max(0, int(clock.budget_s - clock.elapsed()))
        return f" ({left // 60}:{left % 60:02d} left)"
    return f"/{epochs}"


def progress_position(clock: RunClock, done_units: float, per_epoch: int, eta: EtaClock) -> tuple[int, int, float]:
    """(done, total, ETA s) for a Progress: seconds of the budget, or views of the epochs."""
    if clock.budget_s:
        el = clock.elapsed()
        return int(min(el, clock.budget_s)), int(clock.budget_s), max(0.0, clock.budget_s - el)
    total = (clock.epochs or 1) * per_epoch
    return int(done_units), int(total), eta.eta(done_units)
