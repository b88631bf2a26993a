"""Keeping Python's garbage collector from freezing the window.

A full (generation 2) collection walks every tracked object: with torch, torchvision, PyQt6 and
pyqtgraph imported that is ~370,000 objects and ~200 ms, all of it holding the GIL, so the
window froze for 140-200 ms whenever some allocation-heavy step (parsing the project index after
a sort run, building plot items) happened to trigger one. Objects alive once the window is built
(modules, classes, the views) live as long as the process: ``freeze_heap`` moves them into the
permanent generation, which collections skip; what is allocated later is collected as usual.
"""
from __future__ import annotations

import gc
import time


def freeze_heap() -> float:
    """Collect once, then freeze every object alive now; returns the ms it took."""
    t0 = time.perf_counter()
    gc.collect()
    gc.freeze()
    return (time.perf_counter() - t0) * 1000
