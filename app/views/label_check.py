"""The Label view's "Find likely label errors": `okng label-issues` from a button.

The button runs training.label_check.run_label_check (the CLI's job, folds trained as `okng train`
trains them) in a niced child process, relayed by the one Worker; a second press stops it and
nothing is recorded. When it ends the project is re-read (the child wrote the findings), the
part list switches to the "Likely label errors" filter (least believed first) and the status bar
says how many it found, how it trained (from scratch, grouped by item...) and how long it took.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QPushButton

from app.child import TRAIN_NICE, in_child
from app.worker import Worker
from labeling.progress import Progress, ProgressFn, StopFn
from training.label_check import LabelCheckResult, LabelCheckSpec, run_label_check

IDLE_TEXT = "Find likely label errors"
FILTER = "Likely label errors"  # labeling.queue.FILTERS: the parts a check flagged, relabelled ones drop out
FOLDS = 5


def label_check_in_process(spec: LabelCheckSpec, progress: ProgressFn | None = None,
                           should_stop: StopFn | None = None) -> LabelCheckResult:
    """run_label_check in a niced child process (no Qt imported there)."""
    return in_child(run_label_check, spec, nice=TRAIN_NICE, progress=progress, should_stop=should_stop)


def summary(res: LabelCheckResult) -> str:
    """The status line after a check that ran to the end."""
    grouped = f", the pictures of one {res.group_by} in one fold" if res.group_by else ""
    said = " ".join(f"⚠ {w}" for w in res.warnings)
    found = (f"the '{FILTER}' filter lists them, least believed first" if res.issues
             else "every label agrees with the other folds' models")
    return (f"Label check: {len(res.issues)} likely label errors in {res.parts} parts ({res.folds} folds"
            f"{grouped}, {res.seconds / 60:.1f} min); {found}. {said}").strip()


class LabelCheckRunner(QObject):
    """Binds the button to the job: start, stop on a second press, report, show the findings."""

    finished = pyqtSignal(object)  # the LabelCheckResult, or None when stopped or failed

    def __init__(self, ctx: Any, button: QPushButton, show_filter: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.button = button
        self.show_filter = show_filter  # PartList.set_filter
        # okng label-issues' defaults (tests: tiny sizes)
        self.values: dict[str, Any] = {"task": "verdict", "patience": 0, "group_by": "auto"}
        self.use_process = True  # tests may run the job in the Worker's thread
        self.worker: Worker | None = None
        self.last_error = ""
        button.setText(IDLE_TEXT)
        button.setToolTip(f"Out-of-fold label check (okng label-issues): {FOLDS} models, each part judged by "
                          "the one that never saw it; the labels they confidently reject are listed under "
                          f"the '{FILTER}' filter. Trains in the background (from scratch: 10 minutes); "
                          "press again to stop (nothing is recorded).")
        button.clicked.connect(self.toggle)

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def toggle(self) -> bool:
        """Start a check, or stop the running one. True when a check started."""
        proj = self.ctx.project
        if proj is None:
            return False
        if self.is_running():
            assert self.worker is not None
            self.worker.cancel()
            self.button.setText("Stopping the label check…")
            return False
        spec = LabelCheckSpec(str(proj.path), dict(self.values), FOLDS, record=True, user=self.ctx.user.name)
        fn = label_check_in_process if self.use_process else run_label_check
        self.last_error = ""
        self.worker = Worker(fn, spec)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._done)
        self.worker.cancelled.connect(lambda _r: self._end(None, "Label check stopped: nothing was recorded."))
        self.worker.failed.connect(self._failed)
        self.button.setText("Checking labels… (press to stop)")
        self.ctx.status.emit(f"Label check: training {FOLDS} models on {proj.path.name} in the background…")
        self.worker.start()
        return True

    def _progress(self, p: Progress) -> None:
        # "label check fold 2/5: epoch 3/10" -> "fold 2/5"; the button keeps its stop hint
        where = p.message.split(":")[0].removeprefix("label check ") if p.message.startswith("label check") else p.stage
        self.button.setText(f"Checking labels… {where} (press to stop)")

    def _done(self, res: LabelCheckResult) -> None:
        if res.stopped:
            self._end(None, "Label check stopped: nothing was recorded.")
            return
        self.ctx.reload_project()  # the child process wrote the findings
        if res.issues:
            self.show_filter(FILTER)
        self._end(res, summary(res))

    def _failed(self, msg: str) -> None:
        self.last_error = msg
        self._end(None, f"Label check failed: {msg}")

    def _end(self, res: LabelCheckResult | None, text: str) -> None:
        self.button.setText(IDLE_TEXT)
        self.ctx.status.emit(text)
        self.finished.emit(res)

    def shutdown(self) -> None:
        if self.is_running():
            assert self.worker is not None
            self.worker.cancel()
            self.worker.wait(15000)
