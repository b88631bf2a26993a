"""User-facing errors of the training room."""
from __future__ import annotations


class TrainingError(Exception):
    """A clear, user-facing problem: bad config, no labelled parts, tampered checkpoint..."""


class Cancelled(Exception):
    """A stop request seen mid-run; args[0] (when given) is the history finished so far (the
    classifier's and the segmenter's loops both raise it; their callers store nothing)."""

    @property
    def history(self) -> list:
        return list(self.args[0]) if self.args else []
