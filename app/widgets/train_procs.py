"""ProcsSpin: the Train form's "Processes" choice (data-parallel training on this PC).

N > 1 runs the training session in N torchrun ranks (app.cli.train_ranks, the launcher of
`okng train --nproc N`). Segmentation trains in one process (training.session.DATA_PARALLEL),
so the choice is held at 1 and disabled for it, and given back when another task is chosen.
"""
from __future__ import annotations

import os

from PyQt6.QtWidgets import QSpinBox, QWidget

from training.session import DATA_PARALLEL

TOOLTIP = ("Data-parallel training in N processes on this PC via torchrun (okng train --nproc N); "
           "Batch size is the global batch, split across the processes. Segmentation trains in one process.")


class ProcsSpin(QSpinBox):
    """1..cpu_count processes, 1 by default; held at 1 for a task trained in one process."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, minimum=1, maximum=max(1, os.cpu_count() or 1), value=1)
        self.setToolTip(TOOLTIP)
        self._task_ok, self._elsewhere = True, False
        self._wanted = 1  # the user's choice, given back when a data-parallel task is chosen again

    def set_task(self, task: str) -> None:
        ok = task in DATA_PARALLEL
        if ok != self._task_ok:
            self._task_ok = ok
            if ok:
                self.setValue(self._wanted)
            else:
                self._wanted = self.value()
                self.setValue(1)
        self.setEnabled(self._task_ok and not self._elsewhere)

    def set_elsewhere(self, elsewhere: bool) -> None:
        """The run goes to another machine (a Ray cluster decides its own processes)."""
        self._elsewhere = elsewhere
        self.setEnabled(self._task_ok and not elsewhere)

    def processes(self, task: str | None = None) -> int:
        """The processes a run (of `task`, when the form's is overridden) takes: 1 whenever the
        choice is off or the task trains in one process."""
        if task is not None and task not in DATA_PARALLEL:
            return 1
        return int(self.value()) if self.isEnabled() else 1
