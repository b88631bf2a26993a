"""PlcSimulator: a Modbus TCP server that plays the PLC side of the contract.

A pymodbus server runs in its own thread with its own asyncio loop; the conveyor task runs
in the same loop, so register updates and request handling never interleave mid-update.
Result writes are caught exactly as they arrive (a SimDevice action), so the simulator can
check that offsets 1-6 came in ONE request. Binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hardware.errors import HardwareError
from hardware.plc.conveyor import Conveyor
from hardware.plc.registers import (
    DEFAULT_MAP,
    PC_BLOCK_LEN,
    PC_HEARTBEAT,
    PLC_BLOCK_LEN,
    RESULT_LEN,
    RESULT_OFFSET,
    PcBlock,
    PlcBlock,
    PlcStatus,
    RegisterMap,
)

logging.getLogger("pymodbus").addHandler(logging.NullHandler())
WRITE_FCS = (6, 16)


class PlcSimulator:
    """The PLC and its conveyor: heartbeat, triggers, tracking queue, gate, watchdog."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, rate: float = 5.0,
                 travel_s: float = 0.4, regmap: RegisterMap = DEFAULT_MAP,
                 heartbeat_period: float = 0.05, parts: int | None = None,
                 watchdog_s: float = 0.5, tick_s: float = 0.005, part_id_start: int = 1000) -> None:
        if rate < 0 or travel_s < 0 or heartbeat_period <= 0 or tick_s <= 0:
            raise HardwareError("PLC simulator: rate and travel_s must be >= 0, periods > 0")
        self.host, self.port, self.rate, self.regmap = host, int(port), float(rate), regmap
        self.heartbeat_period, self.parts, self.tick_s = heartbeat_period, parts, tick_s
        self.conveyor = Conveyor(travel_s=travel_s, watchdog_s=watchdog_s,
                                 part_id_start=part_id_start)
        self.heartbeat_frozen = False           # tests: simulate a stalled PLC
        self.reject_bin_full = False
        self.done = threading.Event()           # `parts` produced and all through the gate
        self._plc_hb = 0
        self._mem: list[int] = [0] * regmap.register_span
        self._internal = False
        self._server: ModbusTcpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()           # guards the conveyor against reader threads

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Listen and start the conveyor; raises HardwareError when the port is unusable."""
        if self._thread is not None:
            return
        ready = threading.Event()
        box: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._thread_main, args=(ready, box),
                                        name="plc-sim", daemon=True)
        self._thread.start()
        if not ready.wait(10) or "error" in box:
            self._thread.join(2)
            self._thread = None
            raise HardwareError(f"PLC simulator cannot listen on {self.host}:{self.port}: "
                                f"{box.get('error', 'timeout')}")

    def stop(self) -> dict:
        """Stop the conveyor and the server; parts still on the belt stay `in_flight`."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(5)
            self._thread = None
        return self.counters()

    def __enter__(self) -> PlcSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop_server(self) -> None:
        """Network outage: close the listener and every connection; the conveyor keeps going."""
        self._call(self._stop_server())

    def start_server(self) -> None:
        """End of the outage: listen again on the same port with the same register contents."""
        self._call(self._start_server())

    # --- views and controls (any thread) ----------------------------------------------
    def counters(self) -> dict:
        """passed, rejected, rejected_by_watchdog, answered_late, missed, errors, answered,
        triggers, ... and in_flight / alarm."""
        with self._lock:
            return self.conveyor.counters()

    def history(self) -> list[dict]:
        """One record per part that went through the gate, oldest first."""
        with self._lock:
            return list(self.conveyor.history)

    def trigger(self) -> tuple[int, int]:
        """Put one part at the station now; returns (TRIG_SEQ, PART_ID)."""
        part = self._call(self._new_part())
        return part.seq, part.part_id

    def plc_block(self) -> PlcBlock:
        """The PLC block as the simulator last wrote it."""
        base = self.regmap.plc_base
        return self.regmap.decode_plc_block(self._mem[base:base + PLC_BLOCK_LEN])

    def pc_block(self) -> PcBlock:
        """The PC block as the PC last wrote it."""
        base = self.regmap.pc_base
        return self.regmap.decode_pc_block(self._mem[base:base + PC_BLOCK_LEN])

    def wait_done(self, timeout: float) -> bool:
        """Wait until `parts` parts went through the gate."""
        return self.done.wait(timeout)

    def _call(self, coro: Any, timeout: float = 5.0) -> Any:
        if self._loop is None or not self.running:
            coro.close()
            raise HardwareError("PLC simulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- loop thread ------------------------------------------------------------------
    def _thread_main(self, ready: threading.Event, box: dict) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main(ready, box))
        finally:
            # Requests still in progress on closed connections: finish them quietly.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _main(self, ready: threading.Event, box: dict) -> None:
        self._stopping = asyncio.Event()
        try:
            await self._start_server()
        except Exception as exc:  # noqa: BLE001 - reported to start() as a HardwareError
            box["error"] = exc
            ready.set()
            return
        ready.set()
        task = asyncio.create_task(self._conveyor_task())
        await self._stopping.wait()
        task.cancel()
        await self._stop_server()

    async def _start_server(self) -> None:
        if self._server is not None:
            return
        device = SimDevice(id=self.regmap.unit_id, action=self._on_access, simdata=[
            SimData(0, count=self.regmap.register_span, values=0, datatype=DataType.REGISTERS)])
        server = ModbusTcpServer(device, address=(self.host, self.port))
        await server.serve_forever(background=True)
        if server.transport is None:
            raise OSError("listen failed")
        self.port = server.transport.sockets[0].getsockname()[1]   # port=0 picked a free one
        self._server = server
        await self._write(0, list(self._mem))                       # memory survives an outage

    async def _stop_server(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()

    async def _write(self, address: int, values: list[int]) -> None:
        self._mem[address:address + len(values)] = values
        if self._server is not None:
            self._internal = True      # no await inside: the flag cannot leak to a request
            try:
                await self._server.async_setValues(self.regmap.unit_id, 16, address, values)
            finally:
                self._internal = False

    async def _write_plc_block(self) -> None:
        status = PlcStatus.GATE_READY
        with self._lock:
            more = self.parts is None or self.conveyor.counts["triggers"] < self.parts
            if more:
                status |= PlcStatus.AUTO
            if self.reject_bin_full:
                status |= PlcStatus.REJECT_BIN_FULL
            block = PlcBlock(self._plc_hb, self.conveyor.trig_seq,
                             (self.conveyor.next_part_id - 1) & 0xFFFFFFFF, status)
        await self._write(self.regmap.plc_base, self.regmap.encode_plc_block(block))

    async def _new_part(self):
        with self._lock:
            part = self.conveyor.new_part(time.monotonic())
        await self._write_plc_block()          # TRIG_SEQ and PART_ID change in one update
        return part

    def set_rate(self, rate: float) -> None:
        """Change the conveyor speed (parts/s; 0 stops new parts) while running."""
        if rate < 0:
            raise HardwareError("PLC simulator: rate must be >= 0")
        self.rate = float(rate)

    async def _conveyor_task(self) -> None:
        next_hb = time.monotonic()
        next_part: float | None = None
        while True:
            now = time.monotonic()
            if now >= next_hb:
                next_hb += self.heartbeat_period
                if not self.heartbeat_frozen:
                    self._plc_hb = (self._plc_hb + 1) & 0xFFFF
                await self._write_plc_block()
            rate = self.rate
            if rate > 0 and (self.parts is None or self.conveyor.counts["triggers"] < self.parts):
                if next_part is None:
                    next_part = now + 1.0 / rate
                elif now >= next_part:
                    next_part += 1.0 / rate
                    await self._new_part()
            else:
                next_part = None
            with self._lock:
                self.conveyor.on_pc_heartbeat(self._mem[self.regmap.pc(PC_HEARTBEAT)], now)
                self.conveyor.advance(now)
                finished = (self.parts is not None and self.conveyor.counts["triggers"]
                            >= self.parts and not self.conveyor.queue)
            if finished:
                self.done.set()
            await asyncio.sleep(self.tick_s)

    async def _on_access(self, fc: int, start: int, address: int, count: int,
                         registers: list[int], values: Any) -> ExcCodes | None:
        """Every request passes here before it touches the registers."""
        if fc not in WRITE_FCS or values is None or self._internal:
            return None
        m = self.regmap
        lo, hi = address, address + count
        if lo < m.plc_base + PLC_BLOCK_LEN and m.plc_base < hi:
            return ExcCodes.ILLEGAL_ADDRESS        # each register has exactly one writer
        vals = [int(v) for v in values]
        self._mem[lo:hi] = vals
        r0, r1 = m.pc(RESULT_OFFSET), m.pc(RESULT_OFFSET) + RESULT_LEN
        if lo < r1 and r0 < hi:                    # touches the result registers
            with self._lock:
                if fc == 16 and lo <= r0 and hi >= r1:
                    result = m.decode_result(vals[r0 - lo:r1 - lo])
                    self.conveyor.on_result(result, time.monotonic())
                else:                              # the PLC could read half a result
                    self.conveyor.counts["partial_writes"] += 1
        return None
