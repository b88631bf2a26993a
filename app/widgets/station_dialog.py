"""Station → Cameras and PLC: where the window captures and sorts from, tested before it is saved.

Before this dialog the cameras and the PLC could only be set by editing station.json, and Live
sort always sorted the simulated cameras. The Test buttons open the source (one part grabbed) and
read the PLC block twice (is PLC_HEARTBEAT moving?) in a Worker (hardware.station_check), so a
GenICam producer or a PLC across the network never freezes the window. Save stores the settings
and restarts the rig with them (the Capture view's preview, the status bar, Live sort). Only a
supervisor changes the line's hardware.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from app.worker import Worker
from hardware.station_check import check_plc, check_source

SOURCE_HELP = ("sim (simulated cameras) · folder:DIR (one sub-folder per camera, replayed in name order) · "
               "opencv:0,1,2,3 (USB/RTSP) · genicam:/path/producer.cti (GenTL: GigE Vision, USB3 Vision)")
PLC_HELP = "sim (the built-in PLC simulator) or HOST:PORT of the PLC's Modbus TCP server (docs/plc-register-map.md)"


class StationDialog(QDialog):
    """Camera source and PLC address with a Test button each; Save applies them."""

    def __init__(self, ctx: Any, parent: Any = None, on_saved: Callable[[], None] | None = None,
                 busy: Callable[[], str | None] | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.on_saved = on_saved
        self.busy = busy  # why saving must wait now (a live sort holds the cameras), else None
        self.setWindowTitle("Cameras and PLC")
        self.setMinimumWidth(640)
        self.source = QLineEdit(str(ctx.station.source or "sim"))
        self.source.setToolTip(SOURCE_HELP)
        self.plc = QLineEdit(str(ctx.station.plc or "sim"))
        self.plc.setToolTip(PLC_HELP)
        self.test_source_btn = QPushButton("Test cameras")
        self.test_plc_btn = QPushButton("Test PLC")
        self.source_result = QLabel("")
        self.plc_result = QLabel("")
        self.message = QLabel("")
        self.message.setObjectName("pillBad")
        for label in (self.source_result, self.plc_result, self.message):
            label.setWordWrap(True)
        grid = QGridLayout()
        grid.addWidget(QLabel("Cameras"), 0, 0)
        grid.addWidget(self.source, 0, 1)
        grid.addWidget(self.test_source_btn, 0, 2)
        grid.addWidget(self.source_result, 1, 1, 1, 2)
        grid.addWidget(QLabel("PLC"), 2, 0)
        grid.addWidget(self.plc, 2, 1)
        grid.addWidget(self.test_plc_btn, 2, 2)
        grid.addWidget(self.plc_result, 3, 1, 1, 2)
        hint = QLabel(f"Cameras: {SOURCE_HELP}.\nPLC: {PLC_HELP}.")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(hint)
        lay.addWidget(self.message)
        lay.addWidget(buttons)
        self.test_source_btn.clicked.connect(lambda: self._test(check_source, self.source, self.source_result,
                                                                self.test_source_btn))
        self.test_plc_btn.clicked.connect(lambda: self._test(check_plc, self.plc, self.plc_result, self.test_plc_btn))
        self._tests: list[Worker] = []  # kept until they end (a dropped Worker takes its thread)
        self.results: dict[str, dict[str, Any]] = {}  # the last check of each ("source", "plc")

    def _test(self, fn: Callable[..., dict[str, Any]], field: QLineEdit, out: QLabel, button: QPushButton) -> None:
        spec = field.text().strip()
        button.setEnabled(False)
        out.setText(f"Testing {spec}…")
        out.setStyleSheet("")
        w = Worker(fn, spec)
        key = "source" if fn is check_source else "plc"

        def show(res: dict[str, Any]) -> None:
            self.results[key] = res
            out.setText(res["text"])
            out.setStyleSheet("color:#2ecc71;" if res["ok"] else "color:#ff4d4d; font-weight:bold;")
            button.setEnabled(True)
            self.adjustSize()  # a two-line answer gets its room

        w.finished.connect(show)
        w.failed.connect(lambda msg: show({"ok": False, "text": msg}))
        self._tests.append(w)
        w.start()

    def save(self) -> None:
        """Store both settings and restart the rig with them (supervisor only)."""
        from labeling.types import Role
        if not self.ctx.require_role(Role.SUPERVISOR):
            return
        why = self.busy() if self.busy is not None else None
        if why:  # the sort process holds the cameras and talks to the PLC: nothing changes under it
            self.message.setText(why)
            return
        source, plc = self.source.text().strip() or "sim", self.plc.text().strip() or "sim"
        changed = (source, plc) != (self.ctx.station.source, self.ctx.station.plc)
        self.ctx.station.source, self.ctx.station.plc = source, plc
        self.ctx.station.save()
        if changed and self.on_saved is not None:
            self.on_saved()
        self.accept()

    def wait_tests(self, ms: int = 10000) -> None:
        for w in self._tests:
            w.wait(ms)

    def done(self, result: int) -> None:  # QDialog.done: the tests end before the dialog goes
        self.wait_tests()
        super().done(result)
