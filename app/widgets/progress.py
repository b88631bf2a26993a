"""Run a long function in the Worker with a progress dialog (cancel stops it cleanly)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from app.worker import Worker


def _fraction(value: Any) -> tuple[int, int] | None:
    """(done, total) from the shapes progress takes: (i, n), a Progress with done/total, a float."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return int(value[0]), int(value[1])
    done, total = getattr(value, "done", None), getattr(value, "total", None)
    if isinstance(done, (int, float)) and isinstance(total, (int, float)):
        return int(done), int(total)
    if isinstance(value, float) and 0 <= value <= 1:
        return int(value * 1000), 1000
    return None


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

    def progress(value: Any) -> None:
        f = _fraction(value)
        if f is not None:
            dlg.setMaximum(max(1, f[1]))
            dlg.setValue(min(f[0], f[1]))
            dlg.setLabelText(f"{title}  {f[0]}/{f[1]}")

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
