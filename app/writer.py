"""StoreWriter: every store write of the window goes through one background queue, in order.

Labels, masks, reviews and captured parts are written by one background thread, so an HDF5
transaction + fsync never runs in a slot, and writes keep the order the user made them in.
Mask saves for the same (part, view) coalesce: while one is waiting, a newer one replaces it
(the store only needs the latest mask; undo history lives in the canvas).

The thread is a daemon started on the first write, and pending writes are flushed at
interpreter exit (atexit), so a context that is never shut down neither loses a write nor
keeps the process alive. Results reach the GUI thread as queued Qt signals.
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from .cli.common import error_message

_WRITERS: weakref.WeakSet[StoreWriter] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for w in list(_WRITERS):
        w.flush(10.0)


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
        self._stop = False
        self._thread: threading.Thread | None = None
        _WRITERS.add(self)

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
            if self._thread is None or not self._thread.is_alive():
                self._stop = False
                self._thread = threading.Thread(target=self._loop, name="okng-store-writer", daemon=True)
                self._thread.start()
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
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return not (self._jobs or self._busy)
                self._cv.wait(min(left, 0.05))
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Flush, then end the thread."""
        self.flush(timeout_s)
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._stop:
                    self._cv.wait(0.5)
                if not self._jobs:
                    return
                _, (name, job) = self._jobs.popitem(last=False)
                self._busy = True
            try:
                job()
                self.written.emit(name)
            except Exception as exc:  # noqa: BLE001 - one failed write must not stop the queue
                self.failed.emit(f"{name}: {error_message(exc)}")
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
