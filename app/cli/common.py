"""Helpers shared by the CLI modules: progress bar on stderr, JSON on stdout, error types."""
from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from labeling.progress import Progress


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'bad input', reported as one clear line instead of a traceback."""
    from hardware.errors import HardwareError
    from labeling.h5io import ProjectLocked
    from labeling.store import ProjectError
    from training.errors import TrainingError
    return (ProjectError, ProjectLocked, TrainingError, HardwareError, FileNotFoundError, ValueError, KeyError)


def error_message(exc: BaseException) -> str:
    """User errors (ProjectError, HardwareError, ...) read as they are; others with their type."""
    return str(exc) if isinstance(exc, user_error_types()) else f"{type(exc).__name__}: {exc}"


def print_json(obj: Any) -> None:
    """One JSON object on stdout (the --json contract)."""
    sys.stdout.write(json.dumps(obj, default=_default, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "value"):
        return o.value
    if hasattr(o, "__dict__"):
        return o.__dict__
    return str(o)


class ProgressBar:
    """A small text progress bar on stderr; silent when quiet (e.g. with --json)."""

    def __init__(self, label: str, total: int | None = None, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.quiet = label, total, quiet
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        if self.quiet:
            return
        total = total if total is not None else self.total
        now = time.monotonic()
        if now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        el = now - self.start
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            eta = el / frac - el if frac > 0 else 0.0
            line = f"\r{self.label} [{bar:<30}] {done}/{total} {el:5.1f}s eta {eta:5.1f}s {note}"
        else:
            line = f"\r{self.label} {done} {el:5.1f}s {note}"
        self.stream.write(line[:160].ljust(100))
        self.stream.flush()

    def report(self, p: Progress) -> None:
        """The progress callback of a long job: its stage, done/total and message on the bar."""
        self.label = p.stage
        self.update(p.done, p.total, p.message)

    def close(self) -> None:
        if not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
