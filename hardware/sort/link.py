"""The engine thread's side of the PLC: its own PlcClient, the trigger tracker, the heartbeat.

PlcLink hides connection trouble from the sort loop: `poll()` returns the triggers to answer
(none while the PLC is unreachable), reconnects with the client's backoff (capped at 2 s), and
after every new connection re-reads the block and resyncs the tracker, so a TRIG_SEQ that
was current before or during the outage is never answered. `write()` reports failure instead
of raising: a part decided while the link was down is still logged, just not answered.
PC_STATUS is written by the Heartbeat thread only (one writer per register).

Accounting that matches the PLC's: READY goes out only while this link is up and polling
(`polling`), parts whose TRIG_SEQ went by during an outage are counted missed from the jump
seen at the resync (never answered: stale), and a result write that timed out (in doubt: the
PLC may have taken it) is read back from the PC block after the reconnect.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hardware.errors import PlcError
from hardware.plc.client import PlcClient
from hardware.plc.handshake import BACKWARDS, TriggerTracker
from hardware.plc.heartbeat import Heartbeat
from hardware.plc.registers import PcResult, PcStatus, PlcBlock, Trigger, seq_delta
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
                                       plc_timeout=config.plc_watchdog, timeout=config.plc_timeout,
                                       link_ready=lambda: self.polling)
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
        self._last_poll_ok: float | None = None  # monotonic time of the last good poll (synced)
        self.missed_in_outages = 0    # TRIG_SEQ moves seen only at a resync: never answered
        self._missed_pending = 0      # of those, not yet taken by the engine
        self._in_doubt: PcResult | None = None  # a result write that timed out
        self.in_doubt_landed = 0      # ... and was found in the PC block after the reconnect
        self._landed_pending = 0
        self.recoveries = 0           # errors that passed without losing the socket

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
            self._count_outage_misses(block)
            self.tracker.resync(block)
            self.resync_seqs.append(block.trig_seq)
            if not self._check_in_doubt():
                return []  # lost again at once: the next connection resyncs once more
            self._last_poll_ok = time.monotonic()
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
        if self._in_doubt is not None and not self._check_in_doubt():
            return []
        self._last_poll_ok = time.monotonic()
        if self._down_since is not None:
            # An exception response or a short block, socket kept: the link works again.
            with self._lock:
                self.recoveries += 1
            self._down_since = None
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
            if not self.client.connected and self.client.connects == self._connects_seen \
                    and self._down_since is None:
                # Timed out on an open socket: the request may have reached the PLC.
                self._in_doubt = result
            self._lost(str(exc))
            return False

    def take_missed_in_outages(self) -> int:
        """Parts that went by during an outage since the last call (the engine counts them)."""
        n, self._missed_pending = self._missed_pending, 0
        return n

    def take_landed(self) -> int:
        """In-doubt result writes found in the PLC since the last call (0 or 1 per outage)."""
        n, self._landed_pending = self._landed_pending, 0
        return n

    @property
    def polling(self) -> bool:
        """This link's socket is up, synced, and its last poll is recent: READY may go out."""
        t = self._last_poll_ok
        return (t is not None and self._down_since is None and self.client.connected
                and self._connects_seen == self.client.connects
                and time.monotonic() - t < self.config.plc_watchdog)

    def _count_outage_misses(self, block: PlcBlock) -> None:
        last = self.tracker.last_seq
        if last is None:
            return
        d = seq_delta(block.trig_seq, last)
        if 0 < d < BACKWARDS:
            # Every part from last_seq+1 up to the one at the station now reached the station
            # while we were not polling; the current one is taken as reference, not answered.
            with self._lock:
                self.missed_in_outages += d
                self._missed_pending += d

    def _check_in_doubt(self) -> bool:
        """Read back a timed-out result write; False when the link failed again meanwhile."""
        doubt, self._in_doubt = self._in_doubt, None
        if doubt is None:
            return True
        try:
            seen = self.client.read_pc_block().result
        except PlcError as exc:
            self._in_doubt = doubt  # still undecided: read it back on the next connection
            self._lost(str(exc))
            return False
        if (seen.result_seq, seen.part_id, int(seen.verdict)) == \
                (doubt.result_seq, doubt.part_id, int(doubt.verdict)):
            with self._lock:
                self.in_doubt_landed += 1
                self._landed_pending += 1
        return True

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
        """True to the socket and to the last exchange (an exception response makes it False
        until the next good answer, which makes it True again without a reconnect)."""
        return self.client.connected and self.client.last_ok and self._down_since is None

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
                "missed_in_outages": self.missed_in_outages, "in_doubt_landed": self.in_doubt_landed,
                "recoveries": self.recoveries, "polling": self.polling,
                "modbus_exceptions": self.client.exception_count,
                "modbus_exceptions_by_code": dict(self.client.exceptions),
                "last_error": self.last_error or None,
            }
        if hb is not None:
            out["modbus_exceptions"] += hb.client.exception_count
            out["heartbeat"] = {"modbus_exceptions": hb.client.exception_count, "ticks": hb.ticks, "plc_alive": hb.plc_alive, "healthy": hb.healthy,
                                "status": int(hb.written_status) if hb.written_status is not None else None}
        return out
