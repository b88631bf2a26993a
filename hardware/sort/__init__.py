"""Headless live sorting: PLC trigger -> capture -> one batched forward -> one Modbus write.

`SortEngine(project, classifier, source, SortConfig(...)).run(parts=N)` returns a SortSummary;
`start()/stop()/snapshot()` run it in a thread for a UI. See engine.py for the fail-safe rules.

    engine.py      the loop (engine thread): poll, capture, decide, answer, hand off to the logger
    link.py        the engine thread's PlcClient, TriggerTracker and the Heartbeat thread
    classifier.py  the Classifier protocol, TorchViewClassifier, tiny_net (decide: training.inference)
    models.py      load_classifier (trained model, timed), the untrained demo classifier
    partlog.py     logging parts into the project off the critical path (writer process)
    explain.py     Grad-CAM for NG parts (logger thread)
    stats.py       per-stage timings, p50/p95/p99, parts/s;  summary.py  SortSummary, SortTick
    rig.py         run against the built-in PLC simulator (demo, tests)
"""
from __future__ import annotations

from hardware.sort.classifier import (
           Classifier,
           Decision,
           TorchViewClassifier,
           tiny_net,
)
from hardware.sort.config import SortConfig, parse_host_port
from hardware.sort.engine import SortEngine, SortSummary, SortTick
from hardware.sort.partlog import PartLogger, PartRecord

__all__ = [
           "Classifier",
           "Decision",
           "PartLogger",
           "PartRecord",
           "SortConfig",
           "SortEngine",
           "SortSummary",
           "SortTick",
           "TorchViewClassifier",
           "parse_host_port",
           "tiny_net",
]
