"""`sim`: the simulated four-camera rig, rendering the demo bolt generator's parts.

Part k (the k-th trigger since open) is `render_part(k, seed)`, so a run is reproducible and
each capture carries its ground truth. Fault injection (fail_every, corrupt_every) lets tests and
demos exercise the per-part ERROR path through the same validation a real camera frame gets.
"""
from __future__ import annotations

import enum
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from hardware.errors import CaptureError
from hardware.sources.base import (
    Capture,
    RateLimiter,
    SourceInfo,
    parse_resolution,
    validate_views,
)

CAMERAS = ["cam0", "cam1", "cam2", "cam3"]
DEFAULT_RESOLUTION = (1280, 960)


def plain(value: Any) -> Any:
    """Enum/numpy values -> JSON-friendly plain values (Verdict.NG -> 'NG')."""
    if isinstance(value, enum.Enum):  # before int: Verdict is an IntEnum
        return value.name
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


class SimSource:
    """Four simulated cameras; options: seed, resolution, max_fps, ng_rate, fail_every, corrupt_every, prefetch."""

    def __init__(self, resolution: tuple[int, int] = DEFAULT_RESOLUTION, seed: int = 0,
                 max_fps: float | None = None, ng_rate: float = 0.5, fail_every: int = 0,
                 corrupt_every: int = 0, start_index: int = 0, prefetch: bool = True) -> None:
        self.resolution = resolution
        self.seed = seed
        self.ng_rate = ng_rate
        self.fail_every = int(fail_every)
        self.corrupt_every = int(corrupt_every)
        self.start_index = start_index
        self._limiter = RateLimiter(max_fps)
        self._render = None
        self.count = 0  # triggers answered so far (failed ones included: trigger k -> part k)
        # A camera has its frame at the trigger; rendering part k+1 while part k is inspected
        # keeps the renderer's time out of the trigger-to-result latency, as with real cameras.
        self.prefetch = prefetch
        self._pool: ThreadPoolExecutor | None = None
        self._next: tuple[int, Future] | None = None

    def open(self) -> None:
        """Load the demo generator (fails clearly if the labeling demo is missing)."""
        from labeling.demo.bolts import render_part
        self._render = render_part
        self.count = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="okng-sim") if self.prefetch else None
        self._next = None
        self._schedule(0)

    def _schedule(self, k: int) -> None:
        if self._pool is not None:
            self._next = (k, self._pool.submit(self._render_part, k))

    def _render_part(self, k: int) -> Any:
        return self._render(self.start_index + k, seed=self.seed, size=self.resolution, ng_rate=self.ng_rate)

    def _part(self, k: int, timeout: float) -> Any:
        nxt, self._next = self._next, None
        self._schedule(k + 1)
        if nxt is None or nxt[0] != k:
            return self._render_part(k)
        try:
            return nxt[1].result(timeout=max(timeout, 0.001))
        except FutureTimeout:
            raise CaptureError(f"sim: frames of part {k} not ready within {timeout:.2f} s") from None

    def _faulty(self, k: int, every: int) -> bool:
        return every > 0 and (k + 1) % every == 0

    def capture(self, timeout: float = 1.0) -> Capture:
        """Render the next part; raises CaptureError for an injected timeout or corrupt frame."""
        if self._render is None:
            raise CaptureError("sim source is not open")
        self._limiter.wait()
        k = self.count
        self.count += 1
        if self._faulty(k, self.fail_every):
            nxt, self._next = self._next, None
            self._schedule(k + 1)
            if nxt is not None:
                nxt[1].cancel()
            raise CaptureError(f"sim: camera {CAMERAS[k % 4]} timed out after {timeout:.2f} s (part {k})")
        part = self._part(k, timeout)
        views = [np.ascontiguousarray(v) for v in part.views]
        if self._faulty(k, self.corrupt_every):
            # what a broken transfer looks like: a frame cut short
            views[k % len(views)] = views[k % len(views)][: max(1, views[0].shape[0] // 3)]
        validate_views(views, CAMERAS, self.resolution)
        truth = {"verdict": plain(part.verdict), "defect_class": plain(part.defect_class),
                 "part": self.start_index + k, "seed": self.seed}
        truth.update({k2: plain(v) for k2, v in (getattr(part, "truth", None) or {}).items()
                      if k2 not in truth})
        return Capture(views=views, cameras=list(CAMERAS), timestamp=time.time(), index=k, truth=truth)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._next, self._render = None, None, None

    def info(self) -> SourceInfo:
        return SourceInfo(name="sim", kind="multi-camera", cameras=list(CAMERAS),
                          resolution=self.resolution,
                          details={"seed": self.seed, "ng_rate": self.ng_rate,
                                   "max_fps": (1 / self._limiter.period) if self._limiter.period else None,
                                   "fail_every": self.fail_every, "corrupt_every": self.corrupt_every})


def create(arg: str, options: dict) -> SimSource:
    """'sim' or 'sim:WxH' plus options (seed, max_fps, ng_rate, fail_every, corrupt_every)."""
    res = options.pop("resolution", None)
    if isinstance(res, str):
        res = parse_resolution(res)
    resolution = parse_resolution(arg) if arg else tuple(res or DEFAULT_RESOLUTION)
    allowed = {"seed", "max_fps", "ng_rate", "fail_every", "corrupt_every", "start_index", "prefetch"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"sim: unknown option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return SimSource(resolution=resolution, **options)
