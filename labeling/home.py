"""$OKNG_HOME: the station's own folder (station settings, demo projects, ImageNet weights).

In labeling/, the lowest room, so the window, the CLI and the training room share one definition.
"""
from __future__ import annotations

import os
from pathlib import Path


def okng_home() -> Path:
    """$OKNG_HOME, default ~/.okng (created on demand)."""
    home = Path(os.environ.get("OKNG_HOME") or Path.home() / ".okng").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home
