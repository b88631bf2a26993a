"""X-ray line scan: detector (simulated or replayed), calibration, acquisition, strip splitting."""
from __future__ import annotations

from hardware.linescan.acquisition import Acquisition, AcquisitionStats
from hardware.linescan.assembly import Product, ProductSplitter, StripAssembler
from hardware.linescan.calibration import (
    Calibration,
    calibrate,
    calibrate_detector,
    find_dead_pixels,
)
from hardware.linescan.detector import (
    DEFAULT_RATE,
    DetectorSimulator,
    LineBlock,
    LineDetector,
    StripReplay,
    load_strip,
    save_strip,
)
from hardware.linescan.pipeline import LineScanPipeline

__all__ = [
    "DEFAULT_RATE",
    "Acquisition",
    "AcquisitionStats",
    "Calibration",
    "DetectorSimulator",
    "LineBlock",
    "LineDetector",
    "LineScanPipeline",
    "Product",
    "ProductSplitter",
    "StripAssembler",
    "StripReplay",
    "calibrate",
    "calibrate_detector",
    "find_dead_pixels",
    "load_strip",
    "save_strip",
]
