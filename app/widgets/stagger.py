"""Spreading a burst of redraws over several event-loop passes.

Qt paints every widget made dirty in one event-loop pass together, in one paint pass. A view
that updates four pyqtgraph plots and two tables at once (the end of a training run, the first
snapshot of a sort run) thus freezes the window for the sum of their paints: 70-110 ms measured
on a 2-core station, where one plot repaints in 9-13 ms. ``Stagger`` queues such updates and
runs them one at a time, `gap_ms` apart, so the paint of each lands in its own pass.

    stagger = Stagger(self)
    stagger.add("roc", lambda: plot.show(...))   # a newer "roc" replaces a pending one
"""
from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QObject, QTimer


class Stagger(QObject):
    """Runs queued callables one per `gap_ms`, oldest first; one pending callable per key."""

    def __init__(self, parent: QObject | None = None, gap_ms: int = 30) -> None:
        super().__init__(parent)
        self._queue: dict[str, Callable[[], None]] = {}
        self.gap_ms = gap_ms
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._run_one)
        self._idle = True  # nothing ran during the last gap: the next one may run at once

    def add(self, key: str, fn: Callable[[], None]) -> None:
        """Queue fn under key (replacing a pending one with the same key, keeping its place)."""
        self._queue[key] = fn
        if self._idle and not self._timer.isActive():
            self._idle = False
            self._timer.start(0)
        elif not self._timer.isActive():
            self._timer.start(self.gap_ms)

    def pending(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        self._queue.clear()

    def flush(self) -> None:
        """Run everything pending now (closing, tests that read the widgets)."""
        self._timer.stop()
        while self._queue:
            self._run_one()

    def _run_one(self) -> None:
        if not self._queue:
            self._idle = True
            return
        key = next(iter(self._queue))
        fn = self._queue.pop(key)
        self._timer.start(self.gap_ms)  # the next one (or going idle) after a gap for this one's paint
        fn()
