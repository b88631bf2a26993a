"""The engine thread's side of the PLC: its own PlcClient, the trigger tracker, the heartbeat.

PlcLink hides connection trouble from the sort loop: `poll()` returns the triggers to answer
(none while the PLC is unreachable), reconnects with the client's backoff (capped at 2 s), and
after every new connection re-reads the block and resyncs the tracker, so a TRIG_SEQ that
was current before or during the outage is never answered. `write()` reports failure instead
of raising: a part decided while the link was down is still logged, just not answered.
PC_STATUS is written by the Heartbeat thread only (one writer per register).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hardware.errors import PlcError
from hardware.plc.client import PlcClient
from hardware.plc.handshake import TriggerTracker
from hardware.plc.heartbeat import Heartbeat
from hardware.plc.registers import PcResult, PcStatus, PlcBlock, Trigger
from hardware.sort.config import SortConfig


class PlcLink:
    """Polling, answering and status for the engine thread (use it from that thread only)."""

    def __init__(self, config: SortConfig, health: Callable[[], bool]) -> None:
        self.config = config
        regmap = config.register_map()
        self.client = PlcClient(config.plc_host, config.plc_port, regmap, timeout=config.plc_timeout,
                                backoff_max=config.backoff_max)
        self.tracker = TriggerTracker()
        self.heartbeat: Heartbeat | None = None
        if config.heartbeat:
            self.heartbeat = Heartbeat(config.plc_host, config.plc_port, regmap, health=health,
                                       plc_timeout=config.plc_watchdog, timeout=config.plc_timeout)
        self._lock = threading.Lock()
        self._connects_seen = 0
        self._down_since: float | None = None
        self._status: PcStatus | None = None  # last written by this client (no-heartbeat mode)
        self._wanted = PcStatus(0)
        self.last_block: PlcBlock | None = None
        self.disconnects = 0
        self.reconnects = 0
        self.outages_s: list[float] = []  # from losing the link to the resync after reconnecting
        self.reconnected_at: list[float] = []  # time.monotonic() of each resync after an outage
        self.resync_seqs: list[int] = []  # TRIG_SEQ taken as reference (never answered) per connect
        self.write_failures = 0
        self.writes = 0
        self.last_error = ""

    # ------------------------------------------------------------------ lifecycle
    def open(self, status: PcStatus) -> None:
        """Connect (a PLC that is down now is retried by poll) and start the heartbeat."""
        self.set_status(status)
        if not self.client.connect():
            self._lost(self.client.last_error or "cannot connect")
        if self.heartbeat is not None:
            self.heartbeat.start()

    def close(self) -> None:
        """Clear SORT_MODE_ON and READY first, stop the heartbeat, then close the socket."""
        cleared = self._wanted & ~(PcStatus.READY | PcStatus.SORT_MODE_ON)
        self._wanted = cleared
        if self.heartbeat is not None:
            self.heartbeat.stop()  # its last write is PC_STATUS without READY/SORT_MODE_ON
        if self.client.connected:
            try:
                # Also from this client: the heartbeat's socket may be the one that was down.
                self.client.write_status(cleared)
            except PlcError as exc:
                self.last_error = str(exc)
        self.client.close()

    # ------------------------------------------------------------------ the loop's calls
    def poll(self) -> list[Trigger]:
        """ONE FC3 read; the triggers it reveals (none while disconnected or just resynced)."""
        try:
            block = self.client.read_plc_block()
        except PlcError as exc:
            self._lost(str(exc))
            return []
        self.last_block = block
        if self.client.connects != self._connects_seen:
            # A new connection: whatever TRIG_SEQ shows now may be long gone: reference only.
            self._connects_seen = self.client.connects
            self.tracker.resync(block)
            self.resync_seqs.append(block.trig_seq)
            if self._down_since is not None:
                now = time.monotonic()
                with self._lock:
                    self.reconnects += 1
                    self.outages_s.append(round(now - self._down_since, 3))
                    self.reconnected_at.append(now)
                self._down_since = None
            if self.heartbeat is None:
                self._status = None  # rewrite the status on the new connection
            return []
        if self.heartbeat is None:
            self._write_status_direct()
        return self.tracker.observe(block)

    def write(self, result: PcResult) -> bool:
        """ONE FC16 write of a result; False (and counted) when the PLC is unreachable."""
        try:
            self.client.write_result(result)
            self.writes += 1
            return True
        except PlcError as exc:
            self.write_failures += 1
            self._lost(str(exc))
            return False

    def set_status(self, status: PcStatus) -> None:
        """The PC_STATUS bits wanted (READY is masked by the heartbeat's watchdogs)."""
        self._wanted = PcStatus(status) | PcStatus.READY
        if self.heartbeat is not None:
            self.heartbeat.set_status(self._wanted)

    def _write_status_direct(self) -> None:
        # Without a heartbeat thread this client is PC_STATUS's only writer.
        if self._wanted != self._status and self.client.connected:
            try:
                self.client.write_status(self._wanted)
                self._status = self._wanted
            except PlcError as exc:
                self._lost(str(exc))

    def _lost(self, error: str) -> None:
        self.last_error = error
        if self._down_since is None:
            self._down_since = time.monotonic()
            with self._lock:
                self.disconnects += 1

    # ------------------------------------------------------------------ reporting
    @property
    def connected(self) -> bool:
        return self.client.connected and self._down_since is None

    def info(self) -> dict[str, Any]:
        hb = self.heartbeat
        with self._lock:
            out: dict[str, Any] = {
                "host": self.config.plc_host, "port": self.config.plc_port,
                "connected": self.connected, "disconnects": self.disconnects,
                "reconnects": self.reconnects, "outages_s": list(self.outages_s),
                "resync_seqs": list(self.resync_seqs),
                "writes": self.writes, "write_failures": self.write_failures,
                "missed": self.tracker.missed, "resyncs": self.tracker.resyncs,
                "last_error": self.last_error or None,
            }
        if hb is not None:
            out["heartbeat"] = {"ticks": hb.ticks, "plc_alive": hb.plc_alive, "healthy": hb.healthy,
                                "status": int(hb.written_status) if hb.written_status is not None else None}
        return out
