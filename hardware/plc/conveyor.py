"""The PLC's side of the rules as pure logic (time injected): tracking queue, positive
release at the gate, the PC_HEARTBEAT watchdog and the counters. PlcSimulator wires it to a
Modbus server; tests can drive it directly.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from hardware.plc.handshake import Watchdog
from hardware.plc.registers import U32, PcResult, PlcVerdict, seq_add

COUNTER_NAMES = ("triggers", "passed", "rejected", "rejected_by_watchdog", "missed",
                 "answered", "answered_late", "ok", "ng", "errors", "mismatched", "unmatched",
                 "conflicting", "none_writes", "partial_writes", "result_writes",
                 "watchdog_trips")


@dataclass
class TrackedPart:
    """One part on the belt between the inspection station and the gate."""
    seq: int
    part_id: int
    t_station: float
    verdict: PlcVerdict | None = None     # the accepted answer (first accepted one wins)
    answered_at: float | None = None
    condemned: bool = False                # the PC watchdog was down while it was in flight
    outcome: str = ""                      # passed | rejected, set at the gate
    reason: str = ""
    defect_class: int = 0                  # DEFECT_CLASS of the accepted answer (0 = none)

    def record(self) -> dict:
        """Plain dict for history / JSON."""
        latency = None if self.answered_at is None else round((self.answered_at - self.t_station) * 1000, 2)
        return {"seq": self.seq, "part_id": self.part_id, "verdict": None if self.verdict is None
                else self.verdict.name, "outcome": self.outcome, "reason": self.reason,
                "defect_class": self.defect_class, "latency_ms": latency}


@dataclass
class Conveyor:
    """Parts at the station get TRIG_SEQ/PART_ID, travel `travel_s` to the gate, and pass only
    with an accepted OK (matching RESULT_SEQ and PART_ID_ECHO) and a live PC heartbeat."""
    travel_s: float = 0.4
    watchdog_s: float = 0.5
    part_id_start: int = 1000
    history_len: int = 10000
    trig_seq: int = 0
    next_part_id: int = field(init=False)
    queue: OrderedDict[int, TrackedPart] = field(default_factory=OrderedDict)
    gone: OrderedDict[int, TrackedPart] = field(default_factory=OrderedDict)
    history: deque = field(init=False)
    counts: dict = field(default_factory=lambda: dict.fromkeys(COUNTER_NAMES, 0))
    alarm: bool = True                     # PC watchdog alarm: true until the PC heartbeat moves
    # NG rejects per DEFECT_CLASS (0: NG without a class): which defect the line is making
    rejected_by_class: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.next_part_id = int(self.part_id_start) & U32
        self.history = deque(maxlen=self.history_len)
        self.pc_watchdog = Watchdog(self.watchdog_s)

    # --- station ----------------------------------------------------------------------
    def new_part(self, now: float) -> TrackedPart:
        """A part reaches the inspection station: TRIG_SEQ += 1, a new PART_ID."""
        self.trig_seq = seq_add(self.trig_seq, 1)
        part = TrackedPart(self.trig_seq, self.next_part_id, now, condemned=self.alarm)
        self.next_part_id = (self.next_part_id + 1) & U32
        self.queue.pop(part.seq, None)     # after 65536 parts a seq is reused: drop the old one
        self.queue[part.seq] = part
        self.counts["triggers"] += 1
        return part

    # --- PC block ---------------------------------------------------------------------
    def on_pc_heartbeat(self, value: int, now: float) -> None:
        """Feed the 500 ms watchdog; while it is down every part in flight is condemned."""
        self.pc_watchdog.feed(value, now)
        alive = self.pc_watchdog.alive(now)
        if not alive and not self.alarm:
            self.counts["watchdog_trips"] += 1
        self.alarm = not alive
        if self.alarm:
            for part in self.queue.values():
                part.condemned = True

    def on_result(self, result: PcResult, now: float) -> str:
        """A result write from the PC; returns what the PLC made of it (for logs/tests)."""
        self.counts["result_writes"] += 1
        if result.verdict == PlcVerdict.NONE:
            self.counts["none_writes"] += 1
            return "none"
        part = self.queue.get(result.result_seq)
        if part is None:
            old = self.gone.get(result.result_seq)
            if old is not None and old.part_id == result.part_id and old.verdict is None:
                self.counts["answered_late"] += 1
                return "late"
            self.counts["unmatched"] += 1          # stale or unknown sequence: ignored
            return "unmatched"
        if part.part_id != result.part_id:
            self.counts["mismatched"] += 1
            return "mismatched"
        if part.verdict is not None:
            if part.verdict != result.verdict:
                self.counts["conflicting"] += 1
                return "conflicting"
            return "repeat"
        part.verdict, part.answered_at = result.verdict, now
        part.defect_class = int(result.defect_class) if result.verdict == PlcVerdict.NG else 0
        self.counts["answered"] += 1
        key = {PlcVerdict.OK: "ok", PlcVerdict.NG: "ng", PlcVerdict.ERROR: "errors"}[result.verdict]
        self.counts[key] += 1
        return "accepted"

    # --- gate -------------------------------------------------------------------------
    def advance(self, now: float) -> list[TrackedPart]:
        """Move parts whose travel time is over through the gate; returns them."""
        out = []
        while self.queue:
            part = next(iter(self.queue.values()))
            if now - part.t_station < self.travel_s:
                break
            self.queue.popitem(last=False)
            self._gate(part)
            out.append(part)
        return out

    def flush(self) -> list[TrackedPart]:
        """Send every part still on the belt through the gate now (shutdown)."""
        out = []
        while self.queue:
            _, part = self.queue.popitem(last=False)
            self._gate(part)
            out.append(part)
        return out

    def _gate(self, part: TrackedPart) -> None:
        if part.condemned:
            part.outcome, part.reason = "rejected", "watchdog"
            self.counts["rejected_by_watchdog"] += 1
        elif part.verdict == PlcVerdict.OK:
            part.outcome, part.reason = "passed", "ok"
        else:
            part.outcome = "rejected"
            part.reason = "no answer" if part.verdict is None else part.verdict.name.lower()
        if part.verdict is None:
            self.counts["missed"] += 1
        elif part.outcome == "rejected" and part.verdict == PlcVerdict.NG:
            self.rejected_by_class[part.defect_class] = self.rejected_by_class.get(part.defect_class, 0) + 1
        self.counts["passed" if part.outcome == "passed" else "rejected"] += 1
        self.gone[part.seq] = part
        while len(self.gone) > 256:       # remember recent parts only, to spot late answers
            self.gone.popitem(last=False)
        self.history.append(part.record())

    @property
    def in_flight(self) -> int:
        return len(self.queue)

    def counters(self) -> dict:
        """A copy of the counters plus the parts still on the belt and the NG rejects per class
        ({"2": 5}: five parts rejected as NG with DEFECT_CLASS 2; JSON keys are strings)."""
        return {**self.counts, "in_flight": self.in_flight, "alarm": int(self.alarm),
                "rejected_by_class": {str(k): v for k, v in sorted(self.rejected_by_class.items())}}
