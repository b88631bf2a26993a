"""Run a long function in the Worker with a progress dialog (cancel stops it cleanly).

The function reports labeling.progress.Progress; the dialog shows done/total when the total is
known (a busy indicator otherwise)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from app.worker import Worker
from labeling.progress import Progress


def run_with_progress(parent: QWidget | None, title: str, fn: Callable[..., Any], *args: Any,
                      on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[str], None] | None = None, **kwargs: Any) -> Worker:
    """Start fn in a Worker behind a window-modal progress dialog; returns the Worker."""
    dlg = QProgressDialog(title, "Cancel", 0, 0, parent)
    dlg.setWindowTitle("okng")
    dlg.setWindowModality(Qt.WindowModality.WindowModal)
    dlg.setMinimumDuration(300)
    dlg.setAutoClose(False)
    dlg.setAutoReset(False)
    w = Worker(fn, *args, **kwargs)

    def progress(p: Progress) -> None:
        if p.total:
            dlg.setMaximum(max(1, p.total))
            dlg.setValue(min(p.done, p.total))
            dlg.setLabelText(f"{title}  {p.done}/{p.total}")

    def done(result: Any) -> None:
        dlg.close()
        if on_done is not None:
            on_done(result)

    def failed(msg: str) -> None:
        dlg.close()
        if on_error is not None:
            on_error(msg)
        else:
            QMessageBox.warning(parent, "okng", f"{title} failed:\n{msg}")

    w.progress.connect(progress)
    w.finished.connect(done)
    w.failed.connect(failed)
    w.cancelled.connect(dlg.close)
    dlg.canceled.connect(w.cancel)
    w.dialog = dlg  # type: ignore[attr-defined]  # kept alive with the worker
    w.start()
    return w
