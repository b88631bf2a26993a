"""What an import or export tells the user: counts, warnings once with a count, errors by kind.

A real data set can fail by the thousand for one reason; a person needs "1,283 files: mask is
WxH but the image is WxH" with three examples, not 1,283 lines. The full list goes to a report
file (write_json) next to the project or where the user asked.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = 3  # examples kept per error kind and per warning in the summary


def error_kind(file: str, message: str) -> str:
    """The message with what varies per file (names, paths, numbers, quoted values) taken out."""
    m = message.replace(file, "FILE") if file else message
    m = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", m)
    m = re.sub(r"[^\s:,()]*[/\\][^\s:,()]*|[^\s:,()]+\.(?:png|jpe?g|bmp|tiff?|json|csv)\b", "FILE", m,
               flags=re.IGNORECASE)
    m = re.sub(r"\d+", "N", m)
    return re.sub(r"^(FILE(?: line N)?: )+", "", m)


@dataclass
class ImportReport:
    imported: int = 0  # parts (imported, or that would be with dry_run)
    skipped: int = 0  # source files not imported
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message)
    counts: dict[str, Any] = field(default_factory=dict)  # verdicts, classes, masks, views, cameras
    added_classes: list[str] = field(default_factory=list)
    added_cameras: list[str] = field(default_factory=list)
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)  # what -> count, examples
    stopped: bool = False
    dry_run: bool = False

    def warn(self, what: str, file: str) -> None:
        """Count one occurrence of a warning (reported once, with its count and a few files)."""
        w = self.warnings.setdefault(what, {"count": 0, "examples": []})
        w["count"] += 1
        if len(w["examples"]) < EXAMPLES:
            w["examples"].append(file)

    def error_groups(self) -> list[dict[str, Any]]:
        """Errors by kind, most frequent first: kind, count, a few (file, message) examples."""
        return group_errors(self.errors)

    def to_dict(self, full: bool = True, groups: bool = False) -> dict[str, Any]:
        """full: every error (else their number); groups: add error_groups."""
        d = asdict(self)
        d["errors"] = [{"file": f, "message": m} for f, m in self.errors] if full else len(self.errors)
        if groups:
            d["error_groups"] = self.error_groups()
        return d

    def write_json(self, path: Path, **extra: Any) -> Path:
        """The whole report (every error) as JSON; returns the path written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**extra, **self.to_dict(groups=True)}, indent=1, default=str), encoding="utf-8")
        return path

    def summary_lines(self) -> list[str]:
        """A short human summary: counts, warnings once each, errors grouped by kind."""
        verb = "would import" if self.dry_run else "imported"
        lines = [(f"{verb} {self.imported} parts ({self.counts.get('views', 0)} views), "
                 f"skipped {self.skipped} files, {len(self.errors)} errors")]
        for key in ("verdicts", "classes", "masks", "cameras"):
            if key in self.counts:
                lines.append(f"  {key}: {self.counts[key]}")
        if self.added_classes:
            lines.append(f"  new defect classes: {', '.join(self.added_classes)}")
        if self.added_cameras:
            lines.append(f"  new cameras: {', '.join(self.added_cameras)}")
        for what, w in self.warnings.items():
            lines.append(f"  warning: {w['count']} x {what} (e.g. {', '.join(w['examples'])})")
        for g in self.error_groups():
            lines.append(f"  error: {g['count']} x {g['kind']}")
            lines += [f"      {f}: {m}" for f, m in g["examples"]]
        return lines


def group_errors(errors: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for f, m in errors:
        g = groups.setdefault(error_kind(f, m), {"count": 0, "examples": []})
        g["count"] += 1
        if len(g["examples"]) < EXAMPLES:
            g["examples"].append((f, m))
    return [{"kind": k, **g} for k, g in sorted(groups.items(), key=lambda kv: -kv[1]["count"])]


@dataclass
class ExportReport:
    exported: int
    files: int
    dest: str
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
