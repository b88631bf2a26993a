"""StoreWriter: every store write of the window goes through one background queue, in order.

Labels, masks, reviews and captured parts are written by one long-running Worker, so an HDF5
transaction + fsync never runs in a slot, and writes keep the order the user made them in.
Mask saves for the same (part, view) coalesce: while one is waiting, a newer one replaces it
(the store only needs the latest mask; undo history lives in the canvas).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from .worker import Worker


class StoreWriter(QObject):
    """A serial write queue in a background thread."""

    failed = pyqtSignal(str)  # a write failed: the message to show (nothing else is lost)
    written = pyqtSignal(str)  # the name of a completed write

    def __init__(self) -> None:
        super().__init__()
        self._jobs: OrderedDict[Hashable, tuple[str, Callable[[], Any]]] = OrderedDict()
        self._cv = threading.Condition()
        self._busy = False
        self._seq = 0
        self._worker = Worker(self._loop)
        self._worker.min_progress_interval_s = 0.0
        self._worker.progress.connect(self._on_progress)
        self._worker.start()

    def submit(self, name: str, fn: Callable[..., Any], *args: Any, key: Hashable | None = None,
               **kwargs: Any) -> None:
        """Queue fn(*args, **kwargs); a job with the same key still waiting is replaced."""
        with self._cv:
            if key is None:
                self._seq += 1
                key = ("job", self._seq)
            elif key in self._jobs:
                del self._jobs[key]  # the newer one takes its place, at the end
            self._jobs[key] = (name, lambda: fn(*args, **kwargs))
            self._cv.notify_all()

    def pending(self) -> int:
        with self._cv:
            return len(self._jobs) + (1 if self._busy else 0)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued write is done (closing the window, tests); True if done."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._worker.cancel()
        with self._cv:
            self._cv.notify_all()
        self._worker.wait(int(timeout_s * 1000))

    def _loop(self, progress: Callable[[Any], None], should_stop: Callable[[], bool]) -> None:
        while True:
            with self._cv:
                while not self._jobs and not should_stop():
                    self._cv.wait(0.2)
                if not self._jobs and should_stop():
                    return
                _, (name, job) = self._jobs.popitem(last=False)
                self._busy = True
            try:
                job()
                progress(("ok", name))
            except Exception as exc:  # noqa: BLE001 - one failed write must not stop the queue
                from .worker import _message
                progress(("error", f"{name}: {_message(exc)}"))
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _on_progress(self, item: tuple[str, str]) -> None:
        kind, text = item
        (self.written if kind == "ok" else self.failed).emit(text)
