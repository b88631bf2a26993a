"""Headless live sorting: PLC trigger -> capture -> one batched forward -> one Modbus write.

`SortEngine(project, classifier, source, SortConfig(...)).run(parts=N)` returns a SortSummary;
`start()/stop()/snapshot()` run it in a thread for a UI. See engine.py for the fail-safe rules.
"""
from __future__ import annotations

from hardware.sort.classifier import (
           Classifier,
           Decision,
           SortDecision,
           TorchViewClassifier,
           decide,
           tiny_net,
)
from hardware.sort.config import SortConfig, parse_host_port
from hardware.sort.engine import SortEngine, SortProgress, SortSummary
from hardware.sort.partlog import PartLogger, PartRecord

__all__ = [
           "Classifier",
           "Decision",
           "PartLogger",
           "PartRecord",
           "SortConfig",
           "SortDecision",
           "SortEngine",
           "SortProgress",
           "SortSummary",
           "TorchViewClassifier",
           "decide",
           "parse_host_port",
           "tiny_net",
]
