"""What the sort engine reports: the payloads of its Progress and the run's summary.

A sort run reports labeling.progress.Progress: stage "started" with a SortStarted payload once
the engine runs, then stage "sort" with a SortTick (the engine's snapshot, and the newest decided
part with thumbnails of its own views when there is a new one) after each trigger or every period.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SortStarted:
    """The run is sorting: the model it uses, the PLC it talks to, shadow or live."""

    info: dict[str, Any]
    plc: list[Any]
    shadow: bool
    pid: int


@dataclass(frozen=True)
class SortTick:
    """The engine's snapshot (counters, last decision, rate, latency, PLC link); ``part``: a newly
    decided part, {"part": its record, "views": thumbnails of its own views, "cameras": names}
    (hardware.sort.session.part_view), else None."""

    snapshot: dict[str, Any]
    part: dict[str, Any] | None = None


@dataclass
class SortSummary:
    """What a run did: counts, latency percentiles (ms), rate, log and PLC link figures."""

    triggers: int = 0
    answered: int = 0  # results written for triggers seen (each one the PLC can match)
    verdicts: dict[str, int] = field(default_factory=lambda: {"OK": 0, "NG": 0, "ERROR": 0})
    errors: int = 0
    missed: int = 0
    capture_errors: int = 0
    inference_errors: int = 0
    write_failures: int = 0
    unanswered: int = 0  # decided while the PLC was unreachable (logged locally)
    missed_in_outages: int = 0  # of `missed`: parts that went by while the link was down
    missed_written: int = 0  # of `missed`: skipped parts given an ERROR write (PLC cannot match it)
    modbus_exceptions: int = 0  # exception responses and short blocks, both connections
    shadow: bool = False
    duration_s: float = 0.0
    parts_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    plc: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    runtime: str = ""  # torch | onnxruntime: what ran the forwards
    threads: dict[str, Any] = field(default_factory=dict)  # the thread layout (hardware.sort.threads)
    source: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""
    forward_ms: float = 0.0  # the warm-up's timed forward on blank views (before any trigger)
    capacity: dict[str, Any] = field(default_factory=dict)  # hardware.sort.capacity: can it keep up
    # agreement with the source's ground truth: verdicts (agree/disagree) and, for NG parts
    # called NG, the defect class written as DEFECT_CLASS (class_agree/class_disagree)
    truth: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
