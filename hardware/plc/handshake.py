"""Pure rules of the contract, testable without a network: triggers and watchdogs."""
from __future__ import annotations

import time

from hardware.plc.registers import PlcBlock, Trigger, seq_add, seq_delta

# A jump of more than half the u16 ring is a counter going backwards (PLC restart or reset),
# not 30000 skipped parts.
BACKWARDS = 0x8000


class TriggerTracker:
    """Turns successive PLC blocks into the triggers to answer.

    The first block seen (and the block after a resync) only sets the reference: its
    TRIG_SEQ belongs to a part that reached the station before we were watching, so
    answering it would be stale. When TRIG_SEQ moved by more than one, the parts in
    between come back with skipped=True (answer them ERROR); they count as missed.
    """

    def __init__(self, max_skipped: int = 64) -> None:
        self.max_skipped = int(max_skipped)
        self.last_seq: int | None = None
        self.triggers = 0      # real triggers returned
        self.missed = 0        # skipped sequence numbers (answered ERROR when returned)
        self.resyncs = 0

    def resync(self, block: PlcBlock) -> None:
        """Take `block` as the new reference (after connecting or reconnecting)."""
        self.last_seq = block.trig_seq
        self.resyncs += 1

    def observe(self, block: PlcBlock, now: float | None = None) -> list[Trigger]:
        """New triggers since the last poll, oldest first; skipped ones marked skipped=True."""
        if self.last_seq is None:
            self.resync(block)
            return []
        d = seq_delta(block.trig_seq, self.last_seq)
        if d == 0:
            return []
        if d >= BACKWARDS:
            self.resync(block)
            return []
        t = time.monotonic() if now is None else now
        n_skipped = d - 1
        self.missed += n_skipped
        # Beyond max_skipped the oldest parts are long past the gate: counting them is enough.
        first = max(1, d - self.max_skipped) if n_skipped > self.max_skipped else 1
        out = [Trigger(seq=seq_add(self.last_seq, i), part_id=None, skipped=True, t_seen=t)
               for i in range(first, d)]
        out.append(Trigger(seq=block.trig_seq, part_id=block.part_id, skipped=False, t_seen=t))
        self.last_seq = block.trig_seq
        self.triggers += 1
        return out


class Watchdog:
    """'Alive while the watched counter changed within `timeout_s`' (both directions of
    the contract: the PLC on PC_HEARTBEAT, the PC on PLC_HEARTBEAT). Not alive until the
    counter has been seen to change at least once."""

    def __init__(self, timeout_s: float = 0.5) -> None:
        self.timeout_s = float(timeout_s)
        self.value: int | None = None
        self.changed_at: float | None = None

    def feed(self, value: int, now: float | None = None) -> None:
        """Record the counter's current value; a change re-arms the watchdog."""
        t = time.monotonic() if now is None else now
        if self.value is None:
            self.value = value          # a first sighting is not a tick
        elif value != self.value:
            self.value, self.changed_at = value, t

    def alive(self, now: float | None = None) -> bool:
        """True when the counter changed within timeout_s (False before any change)."""
        if self.changed_at is None:
            return False
        t = time.monotonic() if now is None else now
        return t - self.changed_at < self.timeout_s

    def reset(self) -> None:
        """Forget the counter (e.g. after a reconnect), so it reads not-alive until it moves."""
        self.value = self.changed_at = None
