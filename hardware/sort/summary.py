"""What the sort engine reports: per-trigger progress and the run's summary."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SortProgress:
    """Reported after each trigger: parts done (of total when known) and a snapshot."""

    done: int
    total: int | None
    message: str
    snapshot: dict[str, Any] = field(default_factory=dict)


@dataclass
class SortSummary:
    """What a run did: counts, latency percentiles (ms), rate, log and PLC link figures."""

    triggers: int = 0
    answered: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: {"OK": 0, "NG": 0, "ERROR": 0})
    errors: int = 0
    missed: int = 0
    capture_errors: int = 0
    inference_errors: int = 0
    write_failures: int = 0
    unanswered: int = 0  # decided while the PLC was unreachable (logged locally)
    shadow: bool = False
    duration_s: float = 0.0
    parts_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    plc: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""
    truth: dict[str, int] = field(default_factory=dict)  # agreement with the source's ground truth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
