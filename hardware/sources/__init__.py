"""Image sources by name: `make_source("sim")`, `"folder:DIR"`, `"opencv:0,1"`, `"genicam:CTI"`.

SOURCES maps a scheme to a factory `(argument, options) -> Source`. Factories import their module
lazily so that, e.g., harvesters is loaded only when a GenICam source is asked for.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from hardware.sources.base import (
    Capture,
    CaptureError,
    RateLimiter,
    Source,
    SourceExhausted,
    SourceInfo,
    validate_views,
)

__all__ = [
    "SOURCES",
    "Capture",
    "CaptureError",
    "RateLimiter",
    "Source",
    "SourceExhausted",
    "SourceInfo",
    "make_source",
    "register_source",
    "validate_views",
]


def _lazy(module: str, attr: str = "create") -> Callable[[str, dict], Source]:
    def factory(arg: str, options: dict) -> Source:
        return getattr(importlib.import_module(module), attr)(arg, options)
    factory.__name__ = f"{module}.{attr}"
    return factory


SOURCES: dict[str, Callable[[str, dict], Source]] = {
    "sim": _lazy("hardware.sources.sim"),
    "folder": _lazy("hardware.sources.folder"),
    "opencv": _lazy("hardware.sources.opencv"),
    "genicam": _lazy("hardware.sources.genicam"),
    "xray": _lazy("hardware.linescan.source"),
}


def register_source(scheme: str, factory: Callable[[str, dict], Source]) -> None:
    """Add a source kind (one entry, no if/elif chain)."""
    SOURCES[scheme] = factory


def make_source(spec: str, **options) -> Source:
    """Build a (not yet opened) source from 'scheme[:argument]' plus keyword options.

    Examples: "sim", "sim:1280x960", "folder:/data/run1", "opencv:0,1,2,3",
    "opencv:rtsp://cam1/stream,rtsp://cam2/stream", "genicam:/opt/producer.cti", "xray".
    """
    scheme, _, arg = spec.strip().partition(":")
    scheme = scheme.lower()
    if scheme not in SOURCES:
        raise ValueError(f"unknown source {scheme!r} in {spec!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[scheme](arg, dict(options))
