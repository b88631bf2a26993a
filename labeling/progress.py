"""The one progress record every long job reports, in every room and across processes.

A long job in okng is a plain function ``fn(spec, progress, should_stop) -> result``
(architecture practice 4). Whatever the job — training, scoring, pre-labeling, explaining,
importing, live sort — it reports ``Progress``: a stage name, how far it is, a line for a person,
and an optional typed payload (an epoch's metrics, a sort snapshot). The Worker, the child-process
relay, the CLI's progress bar and the views all read this one shape; none of them guesses.

It lives in labeling/ because that is the bottom room: every other room may import it, and it
imports nothing but the standard library (it crosses process boundaries by pickling).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    """How far a job is. ``total`` is None while unknown (a live sort run has no end)."""

    stage: str
    done: int = 0
    total: int | None = None
    message: str = ""
    payload: Any = None

    @property
    def fraction(self) -> float | None:
        """done / total in [0, 1], or None when the total is unknown or zero."""
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


def no_progress(_: Progress) -> None:
    """The default callback for callers that do not watch progress."""


def never_stop() -> bool:
    """The default stop flag for callers that never cancel."""
    return False
