"""The one worker class: runs a plain long function off the GUI thread.

Long work in okng is a plain function ``fn(*args, progress=..., should_stop=..., **kwargs)``
(architecture practice 4). ``Worker`` runs it in a QThread and turns its callbacks into Qt
signals, which reach slots in the GUI thread as queued calls. Nothing slow ever runs in a slot:
a view creates a Worker, connects ``finished``/``failed`` and calls ``start()``.

Exactly one of ``finished(result)``, ``failed(message)`` or ``cancelled(result)`` is emitted per
run. A run whose ``cancel()`` was requested ends with ``cancelled``, carrying what the function
returned for the work it finished (None when it raised): a view never mistakes it for a finished
run, and still gets e.g. a live-sort run's summary or a training run's finished epochs.

Progress is the one record labeling.progress.Progress; the Worker passes it on as it is.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal

from app.cli.common import error_message
from labeling.progress import Progress

log = logging.getLogger(__name__)

# Workers that are running are kept alive here: a view may drop its reference (or be closed)
# while the thread still runs, and a QThread destroyed while running aborts the process.
_ALIVE: set[Worker] = set()


def stop_all_workers(wait_ms: int) -> bool:
    """Cancel every running worker and wait up to wait_ms for each (at exit); True if all ended."""
    ended = True
    for w in list(_ALIVE):
        w.cancel()
    for w in list(_ALIVE):
        ended = w.wait(wait_ms) and ended
    return ended


class _Thread(QThread):
    def __init__(self, body: Callable[[], None]) -> None:
        super().__init__()
        self._body = body

    def run(self) -> None:
        self._body()


class Worker(QObject):
    """Run ``fn(*args, progress=emit, should_stop=flag, **kwargs)`` in a background thread."""

    progress = pyqtSignal(object)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal(object)  # what the function returned for the work it finished, or None

    #: Progress callbacks of one stage closer together than this are dropped (the last one is
    #: always sent), so a function reporting per frame cannot flood the GUI's event queue.
    min_progress_interval_s: float = 0.03

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = getattr(fn, "__name__", "work")
        self._stop = threading.Event()
        self._thread: _Thread | None = None
        self._last_progress = 0.0
        self._last_stage: str | None = None  # the stage of the last report emitted
        # Set by the thread just before its last signal: the run has ended for the views although
        # the QThread may still be winding down when the signal's slot runs in the GUI thread.
        self._ended = False
        self.result: Any = None
        self.error: str | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        """Start the function in a new thread (a Worker runs once)."""
        if self._thread is not None:
            raise RuntimeError(f"worker {self.name!r} was already started")
        self._thread = _Thread(self._run)
        _ALIVE.add(self)
        self._thread.finished.connect(self._release)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the function to stop (it sees should_stop() become True)."""
        self._stop.set()

    def is_running(self) -> bool:
        """True from start() until the run's one final signal is emitted. A view that offers
        Start again once that signal arrives must get False here, or a click made while the
        thread still winds down is ignored (seen as a Tune panel that never resumed)."""
        return self._thread is not None and not self._ended and self._thread.isRunning()

    def wait(self, ms: int) -> bool:
        """Block up to ms milliseconds for the thread to end; True if it has ended."""
        return True if self._thread is None else bool(self._thread.wait(int(ms)))

    def should_stop(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ thread side
    def _emit_progress(self, value: Progress) -> None:
        """Reports of one stage closer than min_progress_interval_s are coalesced (the newest
        wins); a new stage passes at once, after the last report of the stage before it, so a
        stage's one report (a run's start, an epoch's end) is never coalesced away: the Train
        view lost "this run starts from scratch" to the step reports that followed it."""
        now = time.monotonic()
        stage = getattr(value, "stage", None)  # the rig reports frames, not Progress
        pending, self._pending = self._pending, None
        if pending is not None and getattr(pending, "stage", None) != stage:
            self.progress.emit(pending)
        if stage == self._last_stage and now - self._last_progress < self.min_progress_interval_s:
            self._pending = value
            return
        self._last_progress, self._last_stage = now, stage
        self.progress.emit(value)

    def _run(self) -> None:
        self._pending: Progress | None = None
        try:
            result = self.fn(*self.args, progress=self._emit_progress, should_stop=self.should_stop,
                             **self.kwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI as a clear message
            self.error = error_message(exc)
            self._ended = True
            if self._stop.is_set():
                self.cancelled.emit(None)  # a view may still read .error (why nothing came back)
                return
            log.warning("worker %s failed:\n%s", self.name, traceback.format_exc())
            self.failed.emit(self.error)
            return
        if self._pending is not None:
            self.progress.emit(self._pending)
        self.result = result
        self._ended = True
        if self._stop.is_set():
            self.cancelled.emit(result)
            return
        self.finished.emit(result)

    def _release(self) -> None:
        _ALIVE.discard(self)

