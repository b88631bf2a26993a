"""User-facing errors of the training room."""
from __future__ import annotations


class TrainingError(Exception):
    """A clear, user-facing problem: bad config, no labelled parts, tampered checkpoint..."""
