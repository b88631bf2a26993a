"""Settings of a live sort run (PLC address, register map, timing, what runs off the critical path)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def parse_host_port(spec: str, default_port: int = 502) -> tuple[str, int]:
    """'HOST:PORT' (or 'HOST') -> (host, port), with a clear error for bad input."""
    text = (spec or "").strip()
    if not text:
        raise ValueError("empty PLC address (expected HOST:PORT, e.g. 192.168.0.10:502)")
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not host:
        raise ValueError(f"PLC address {spec!r} has no host (expected HOST:PORT)")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"PLC address {spec!r}: port {port!r} is not a number") from None
    if not 0 < number < 65536:
        raise ValueError(f"PLC address {spec!r}: port {number} out of range 1..65535")
    return host, number


@dataclass
class SortConfig:
    """How the engine talks to the PLC and what it does besides answering triggers."""

    plc_host: str = "127.0.0.1"
    plc_port: int = 502
    regmap: Any = None  # hardware.plc.registers.RegisterMap; None -> the contract's defaults
    plc_timeout: float = 0.5  # s per Modbus request
    poll_period: float = 0.003  # s between FC3 polls (1 ms of belt per ms at 1 m/s)
    capture_timeout: float = 1.0
    shadow: bool = False  # decide and log, but never answer (VERDICT stays 0)
    log_parts: bool = True  # store every inspected part in the project (background thread)
    gradcam_ng: bool = False  # Grad-CAM for NG parts (background thread)
    log_queue: int = 64  # parts waiting to be logged; beyond this they are dropped, never waited on
    heartbeat: bool = True
    health_max_age: float = 0.3  # s without loop progress before the heartbeat stops
    max_failures: int = 3  # consecutive capture/inference failures that count as a stall
    plc_watchdog: float = 0.5  # s of unchanged PLC_HEARTBEAT before READY is cleared
    backoff_max: float = 2.0  # s, cap of the reconnect backoff (contract)
    model_id: str = ""
    # Parts/s the line is planned to trigger (the built-in simulator's conveyor): the capacity
    # check's rate until triggers show the real one. None: known only once triggers come.
    line_rate: float | None = None
    # torch/OpenCV threads for the run (None: leave the process setting). On a small, shared
    # CPU one intra-op thread is both faster and far steadier than two (no wake-up stalls).
    threads: int | None = None
    # Thread layout of the sort process (hardware.sort.threads): "auto" pins the engine to its own
    # CPU and the log/writer/heartbeat/simulator beside it when there are >= 2; "off" leaves it
    # to the scheduler; "2,3" names the engine's CPUs. Safe on one CPU (nothing is pinned).
    pin: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.poll_period <= 0 or self.poll_period > 0.1:
            raise ValueError(f"poll period {self.poll_period} s out of range (0, 0.1]")
        if self.capture_timeout <= 0:
            raise ValueError("capture timeout must be positive")
        if not 0 < self.plc_timeout <= 10:
            raise ValueError(f"PLC timeout {self.plc_timeout} s out of range (0, 10]")

    @classmethod
    def for_plc(cls, spec: str, **kw: Any) -> SortConfig:
        """A config for 'HOST:PORT'."""
        host, port = parse_host_port(spec)
        return cls(plc_host=host, plc_port=port, **kw)

    def register_map(self) -> Any:
        """The register map in use (the contract's defaults unless set)."""
        if self.regmap is None:
            from hardware.plc.registers import RegisterMap
            self.regmap = RegisterMap()
        return self.regmap
