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
    """Progress of a long command on stderr, never on stdout (stdout is the --json contract).

    On a terminal: one bar redrawn in place. With --json (quiet) or when stderr is a file or a
    pipe: plain lines, so a run of many minutes is never silent and a log stays readable — a line
    when the stage changes, at each epoch's end (stage "eval", with its validation figures), when
    a stage completes, and otherwise at most every LINE_EVERY_S seconds.
    """

    LINE_EVERY_S = 5.0
    ALWAYS = ("eval", "test", "save")  # stages whose every report is worth a line

    def __init__(self, label: str, total: int | None = None, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.quiet = label, total, quiet
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.lines = quiet or not (isatty is not None and isatty())
        self.command = label.split()[0]
        self.start = time.monotonic()
        self._last = 0.0
        self._stage: str | None = None
        self._printed = False

    def update(self, done: int, total: int | None = None, note: str = "", force: bool = False) -> None:
        total = total if total is not None else self.total
        now = time.monotonic()
        el = now - self.start
        frac = min(1.0, done / total) if total else None
        eta = el / frac - el if frac else 0.0
        if self.lines:
            finished = total is not None and done >= total
            if not (force or finished or now - self._last >= self.LINE_EVERY_S):
                return
            self._last = now
            count = f"{done}/{total} ({100 * frac:.0f} %)" if total else f"{done}"
            tail = f" eta {eta:.0f}s" if frac and not finished else ""
            self.stream.write(f"okng {self.command}: {self.label} {count} {el:.1f}s{tail} {note}".rstrip() + "\n")
            self.stream.flush()
            self._printed = True
            return
        if now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        if total:
            bar = "#" * int((frac or 0.0) * 30)
            line = f"\r{self.label} [{bar:<30}] {done}/{total} {el:5.1f}s eta {eta:5.1f}s {note}"
        else:
            line = f"\r{self.label} {done} {el:5.1f}s {note}"
        self.stream.write(line[:160].ljust(100))
        self.stream.flush()

    def report(self, p: Progress) -> None:
        """The progress callback of a long job: its stage, done/total and message (and an
        epoch's figures) on the bar or as a line."""
        changed = p.stage != self._stage
        self._stage = p.stage
        self.label = p.stage
        note = p.message + _payload_note(p.payload)
        self.update(p.done, p.total, note, force=changed or p.stage in self.ALWAYS)

    def close(self) -> None:
        if self.lines:
            if self._printed:
                self.stream.write(f"okng {self.command}: done in {time.monotonic() - self.start:.1f}s\n")
                self.stream.flush()
            return
        self.stream.write("\n")
        self.stream.flush()


def _payload_note(payload: Any) -> str:
    """An epoch's figures (training.card.EpochMetrics) for a progress line; '' otherwise."""
    bal = getattr(payload, "val_balanced_accuracy", None)
    loss = getattr(payload, "loss", None)
    if bal is None or loss is None:
        return ""
    return f": loss {loss:.4f}, val loss {payload.val_loss:.4f}, val balanced accuracy {bal:.3f}"
