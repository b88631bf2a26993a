"""Heartbeat: PC_HEARTBEAT ticks only while the pipeline is healthy; PLC_HEARTBEAT watchdog.

It runs in its own thread with its own PlcClient (one client per thread), so a slow forward
pass in the sort loop can never make the PLC think the PC is alive, or dead, by accident:
the health callback decides (capture and inference alive), not the timing of the sort loop.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hardware.errors import PlcError
from hardware.plc.client import PlcClient
from hardware.plc.handshake import Watchdog
from hardware.plc.registers import DEFAULT_MAP, U16, PcStatus, PlcBlock, RegisterMap

log = logging.getLogger(__name__)

STATUS_REFRESH_S = 1.0   # rewrite PC_STATUS now and then: a restarted PLC may have lost it


class Heartbeat:
    """Writes PC_HEARTBEAT every `period` while `health()` is True and keeps PC_STATUS.

    READY is only sent while the PLC's heartbeat moved within `plc_timeout`, health() is True
    and link_ready() is True; `set_status` gives the wanted bits. link_ready is the sort
    loop's own link: this thread's connection can come back seconds before the loop's
    (its backoff runs apart), and READY then would invite triggers nobody answers. `stop()` clears READY and SORT_MODE_ON first.
    """

    def __init__(self, host: str, port: int, regmap: RegisterMap = DEFAULT_MAP,
                 health: Callable[[], bool] = lambda: True, period: float = 0.1,
                 plc_timeout: float = 0.5, timeout: float = 0.3,
                 link_ready: Callable[[], bool] = lambda: True) -> None:
        self.regmap, self.health, self.period = regmap, health, float(period)
        self.link_ready = link_ready
        self._endpoint = (host, int(port), float(timeout))
        self.client = PlcClient(host, port, regmap, timeout=timeout)
        self.watchdog = Watchdog(plc_timeout)
        self._wanted = PcStatus(0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.value = 0                      # last PC_HEARTBEAT written
        self.ticks = 0
        self.healthy = False
        self.plc_alive = False
        self.written_status: PcStatus | None = None
        self.last_block: PlcBlock | None = None
        self.last_error: str | None = None

    # --- control ----------------------------------------------------------------------
    def set_status(self, status: PcStatus) -> None:
        """The bits the PC wants to show; READY is masked while the PLC or the pipeline is down."""
        with self._lock:
            self._wanted = PcStatus(status)

    @property
    def wanted_status(self) -> PcStatus:
        with self._lock:
            return self._wanted

    def effective_status(self) -> PcStatus:
        """What goes to PC_STATUS now."""
        st = self.wanted_status
        try:
            link_up = bool(self.link_ready())
        except Exception:  # noqa: BLE001 - a crashing probe means not ready
            link_up = False
        if not (self.plc_alive and self.healthy and link_up):
            st &= ~PcStatus.READY
        return st

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        host, port, timeout = self._endpoint
        self.client = PlcClient(host, port, self.regmap, timeout=timeout)   # owned by the new thread
        self._thread = threading.Thread(target=self._run, name="plc-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Clear READY and SORT_MODE_ON on the PLC, stop ticking, close the connection."""
        with self._lock:
            self._wanted &= ~(PcStatus.READY | PcStatus.SORT_MODE_ON)
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    # --- thread -----------------------------------------------------------------------
    def _run(self) -> None:
        connects = -1
        next_refresh = 0.0
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                try:
                    self.healthy = bool(self.health())
                except Exception as exc:  # noqa: BLE001 - a crashing probe means unhealthy
                    log.warning("health probe failed: %s", exc)
                    self.healthy = False
                try:
                    block = self.client.read_plc_block()
                    if self.client.connects != connects:
                        # New connection: the counter's history is unknown, wait for a move.
                        connects = self.client.connects
                        self.watchdog.reset()
                        self.written_status = None
                    self.last_block = block
                    self.watchdog.feed(block.heartbeat, now)
                    self.plc_alive = self.watchdog.alive(now)
                    if self.healthy:
                        self.value = (self.value + 1) & U16
                        self.client.write_heartbeat(self.value)
                        self.ticks += 1
                    st = self.effective_status()
                    if st != self.written_status or now >= next_refresh:
                        self.client.write_status(st)
                        self.written_status = st
                        next_refresh = now + STATUS_REFRESH_S
                    self.last_error = None
                except PlcError as exc:
                    self.last_error = str(exc)
                    self.plc_alive = self.watchdog.alive(now)
                next_t += self.period
                delay = next_t - time.monotonic()
                if delay < 0:            # fell behind (e.g. a timeout): do not burst
                    next_t, delay = time.monotonic(), 0.0
                self._stop.wait(delay)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        st = self.effective_status() & ~(PcStatus.READY | PcStatus.SORT_MODE_ON)
        try:
            if self.client.connected:
                self.client.write_status(st)
                self.written_status = st
        except PlcError as exc:
            self.last_error = str(exc)
        self.client.close()
