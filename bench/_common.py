"""Rigs the benches share (imported as `_common`: a bench runs as a script from this folder).

RingSource: sim parts rendered up front and replayed, so a sort bench measures the sort loop and
the PLC link, not the simulator's rendering. add_tiles: 224 px bsdata tiles (NG centred on a
pitting pixel of the mask, OK anywhere) for the training benches.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TILE = 224


class RingSource:
    """`n` captures of an opened source, replayed in a ring (frames already in the camera buffers
    at trigger time, as with hardware-triggered cameras)."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner = inner
        self.caps = [inner.capture(timeout=60.0) for _ in range(n)]
        self.k = 0

    def open(self) -> None:
        pass

    def capture(self, timeout: float = 1.0) -> Any:
        cap = self.caps[self.k % len(self.caps)]
        self.k += 1
        return cap

    def close(self) -> None:
        self.inner.close()

    def info(self) -> Any:
        info = self.inner.info()
        info.name = "sim-ring"
        return info


def add_tiles(proj: Any, data: Path, order: Sequence[tuple[str, dict[str, str]]], rng: np.random.Generator,
              tile: int = TILE) -> None:
    """One part per (verdict, labels.csv row): a tile x tile crop, NG centred on a random defect pixel."""
    import cv2

    from labeling.types import Label, PartSource, Verdict
    for verdict, r in order:
        img = cv2.cvtColor(cv2.imread(str(data / r["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        if verdict == "NG":
            m = cv2.imread(str(data / r["mask"]), cv2.IMREAD_GRAYSCALE)
            ys, xs = np.nonzero(m)
            k = int(rng.integers(0, len(ys)))
            cy, cx = int(ys[k]), int(xs[k])
        else:
            cy, cx = int(rng.integers(tile // 2, h - tile // 2)), int(rng.integers(tile // 2, w - tile // 2))
        y0 = int(np.clip(cy - tile // 2, 0, h - tile))
        x0 = int(np.clip(cx - tile // 2, 0, w - tile))
        proj.add_part([np.ascontiguousarray(img[y0:y0 + tile, x0:x0 + tile])], cameras=["cam0"],
                      name=Path(r["image"]).stem, source=PartSource.IMPORT, label=Label(Verdict.parse(verdict)))
