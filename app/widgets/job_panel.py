"""What the Train view's job panels (Prune, Tune) share: Start / Cancel, a state line, a table,
and one long job run by the one Worker (in a child process, app.child.in_child).

A panel subclasses JobPanel, builds its own form, calls ``job_controls`` for the shared widgets,
starts its job with ``run_job`` and words its end in ``finished_text``. Exactly one
``run_finished`` ("done", "cancelled" or "failed") follows each run, as the Worker promises.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
)

from app.worker import Worker
from labeling.progress import Progress


class JobPanel(QGroupBox):
    """A group box that runs one long job at a time (see the module's docstring)."""

    run_finished = pyqtSignal(str)  # "done", "cancelled" or "failed"

    def __init__(self, title: str, doing: str, parent: Any = None) -> None:
        super().__init__(title, parent)
        self.doing = doing  # "Pruning", "Tuning": how the state line names the job
        self.cancel_text = ""  # the state line while a cancelled job winds down ("": unchanged)
        self.use_process = True  # run the job in a child process (tests may run it in the thread)
        self.num_threads: int | None = None  # torch threads of the job (None: the child's default)
        self.worker: Worker | None = None
        self.last_result: Any = None
        self.last_error = ""

    def job_controls(self, start_text: str, state_text: str, headers: list[str]) -> QHBoxLayout:
        """Create start_btn, cancel_btn, state and table; return the buttons' row."""
        self.start_btn = QPushButton(start_text)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.state = QLabel(state_text)
        self.state.setWordWrap(True)
        self.table = QTableWidget(0, len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(120)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_btn, 2)
        buttons.addWidget(self.cancel_btn, 1)
        return buttons

    # ------------------------------------------------------------------ subclasses
    def start(self) -> None:
        raise NotImplementedError

    def finished_text(self, result: Any, how: str) -> str:
        """The state line after a run that returned (how: "done" or "cancelled")."""
        raise NotImplementedError

    def show_result(self, result: Any) -> None:
        """Draw what a finished or cancelled run returned (default: nothing more to draw)."""

    # ------------------------------------------------------------------ the job
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def run_job(self, in_process: Callable[..., Any], in_thread: Callable[..., Any], spec: Any,
                state_text: str) -> None:
        """Start the job on spec (in_process in a child process, in_thread when use_process is off)."""
        self.last_result, self.last_error = None, ""
        self.worker = Worker(in_process if self.use_process else in_thread, spec)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.state.setText(state_text)
        self.worker.start()

    def cancel(self) -> None:
        if self.is_running():
            assert self.worker is not None
            self.worker.cancel()
            self.cancel_btn.setEnabled(False)
            if self.cancel_text:
                self.state.setText(self.cancel_text)

    def _on_progress(self, p: Progress) -> None:
        self.state.setText(f"{p.stage} · {p.message}" if p.message else p.stage)

    def _finish(self, result: Any, how: str) -> None:
        self.last_result = result
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        if result is not None:
            self.show_result(result)
        self.state.setText(self.finished_text(result, how))
        self.run_finished.emit(how)

    def _on_done(self, result: Any) -> None:
        self._finish(result, "cancelled" if getattr(result, "cancelled", False) else "done")

    def _on_cancelled(self, result: Any) -> None:
        self._finish(result, "cancelled")

    def _on_failed(self, msg: str) -> None:
        self.last_error = msg
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self.state.setText(f"{self.doing} failed: {msg}")
        self.run_finished.emit("failed")

    def shutdown(self) -> None:
        if self.is_running():
            assert self.worker is not None
            self.worker.cancel()
            self.worker.wait(10000)
