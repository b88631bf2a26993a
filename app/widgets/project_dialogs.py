"""Project dialogs: new project (multi-camera | line-scan), import and export with a report."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labeling.types import BOLT_CLASSES, XRAY_CLASSES, ProjectKind, Settings

# class presets by name (one entry each, no if/elif)
CLASS_PRESETS = {"Coated bolts (4 defects)": BOLT_CLASSES, "X-ray mineral wool (D1 D2 D3 D6)": XRAY_CLASSES,
                 "None (add on import)": []}


def _path_row(edit: QLineEdit, pick: Any) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    b = QPushButton("Browse…")
    b.clicked.connect(pick)
    lay.addWidget(edit, 1)
    lay.addWidget(b)
    return w


class NewProjectDialog(QDialog):
    """Name, file, kind and defect classes of a new project; settings() gives the result."""

    def __init__(self, parent: Any = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.name = QLineEdit("inspection")
        self.path = QLineEdit(str((folder or Path.home()) / "inspection.h5"))
        self.kind = QComboBox()
        self.kind.addItem("Multi-camera (4 cameras)", ProjectKind.MULTI_CAMERA)
        self.kind.addItem("Line scan (X-ray detector)", ProjectKind.LINE_SCAN)
        self.classes = QComboBox()
        self.classes.addItems(list(CLASS_PRESETS))
        self.kind.currentIndexChanged.connect(
            lambda i: self.classes.setCurrentIndex(1 if self.kind.currentData() == ProjectKind.LINE_SCAN else 0))
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("File", _path_row(self.path, self._pick))
        form.addRow("Kind", self.kind)
        form.addRow("Defect classes", self.classes)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _pick(self) -> None:
        p, _ = QFileDialog.getSaveFileName(self, "Project file", self.path.text(), "okng project (*.h5)")
        if p:
            self.path.setText(p if p.endswith(".h5") else p + ".h5")

    def settings(self) -> tuple[Path, Settings]:
        kind = self.kind.currentData()
        cams = ["xray"] if kind == ProjectKind.LINE_SCAN else ["cam0", "cam1", "cam2", "cam3"]
        return Path(self.path.text()).expanduser(), Settings(
            name=self.name.text().strip() or "project", kind=kind, cameras=cams,
            classes=list(CLASS_PRESETS[self.classes.currentText()]))


class TransferDialog(QDialog):
    """Import from / export to a folder or file in one of the store's formats."""

    def __init__(self, formats: dict[str, Any], export: bool, parent: Any = None) -> None:
        super().__init__(parent)
        self.export = export
        self.setWindowTitle("Export project" if export else "Import into project")
        self.fmt = QComboBox()
        for name, f in formats.items():
            self.fmt.addItem(f"{name} — {getattr(f, 'description', '')}".strip(" —"), name)
        self.path = QLineEdit()
        self.path.setPlaceholderText("destination folder" if export else "folder or file to import")
        form = QFormLayout()
        form.addRow("Format", self.fmt)
        form.addRow("Folder" if export else "Source", _path_row(self.path, self._pick))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _pick(self) -> None:
        p = QFileDialog.getExistingDirectory(self, "Folder", self.path.text())
        if p:
            self.path.setText(p)

    def values(self) -> tuple[str, Path]:
        return self.fmt.currentData(), Path(self.path.text()).expanduser()


def report_text(report: Any) -> str:
    """A readable report of an import/export (counts first, then one line per problem file)."""
    d = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    lines = [f"{k}: {v}" for k, v in d.items() if k != "errors"]
    errs = d.get("errors") or []
    if errs:
        lines.append(f"\n{len(errs)} file(s) with problems:")
        lines += [f"  {e['file']}: {e['message']}" for e in errs[:500]]
    return "\n".join(lines)


class ReportDialog(QDialog):
    def __init__(self, title: str, text: str, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(640, 420)
        box = QPlainTextEdit(text)
        box.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.accept)
        buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(title))
        lay.addWidget(box, 1)
        lay.addWidget(buttons)
