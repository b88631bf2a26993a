"""Helpers of the PLC tests: a PC-side answer loop run in a thread, and wait helpers.

Everything runs against real Modbus TCP servers on 127.0.0.1 with ports picked at runtime.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from hardware.errors import PlcError
from hardware.plc.client import PlcClient, TriggerTracker
from hardware.plc.registers import (
    DEFAULT_MAP,
    PcResult,
    PlcVerdict,
    RegisterMap,
    Trigger,
)


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll `cond` until true or `timeout` (a bound on the test, not a speed assertion)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PcLoop(threading.Thread):
    """The PC side in its simplest form: poll, track, answer every trigger, in its own thread
    with its own PlcClient; skipped sequences answered ERROR; resync on every new connection."""

    def __init__(self, port: int, regmap: RegisterMap = DEFAULT_MAP,
                 decide: Callable[[Trigger], PcResult | None] | None = None, poll_s: float = 0.004) -> None:
        super().__init__(daemon=True, name="pc-loop")
        self.port, self.regmap, self.poll_s = port, regmap, poll_s
        self.decide = decide or (lambda t: t.result(PlcVerdict.OK, 0.95))
        self.tracker = TriggerTracker()
        self.written: list[PcResult] = []
        self.failed_writes: list[PcResult] = []
        self.seen: list[Trigger] = []
        self.errors = 0
        self.connects_at: list[float] = []      # monotonic time of every new connection
        self.resync_seq: list[int] = []         # TRIG_SEQ taken as reference at each connect
        self.client: PlcClient | None = None
        self._halt = threading.Event()

    @property
    def synced(self) -> bool:
        return bool(self.connects_at)

    def run(self) -> None:
        self.client = client = PlcClient("127.0.0.1", self.port, self.regmap)
        connects = 0
        try:
            while not self._halt.is_set():
                try:
                    block = client.read_plc_block()
                    if client.connects != connects:
                        # A new connection: never answer what happened before it.
                        connects = client.connects
                        self.tracker.resync(block)
                        self.resync_seq.append(block.trig_seq)
                        self.connects_at.append(time.monotonic())
                        continue
                    for trig in self.tracker.observe(block):
                        self.seen.append(trig)
                        res = trig.error_result() if trig.skipped else self.decide(trig)
                        if res is None:                # the test wants this part unanswered
                            continue
                        try:
                            client.write_result(res)
                            self.written.append(res)
                        except PlcError:
                            self.failed_writes.append(res)   # never retried: it would be stale
                            raise
                except PlcError:
                    self.errors += 1
                self._halt.wait(self.poll_s)
        finally:
            client.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
