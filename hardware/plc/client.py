"""PlcClient: the PC side of the contract over Modbus TCP (pymodbus 3.x sync client).

One client per thread: a Modbus TCP connection carries one transaction at a time, and the
sort loop must never wait behind the heartbeat thread. Every failure raises PlcError; the
socket is dropped and reconnected with a backoff capped at 2 s (`ensure_connected`).
After each new connection (`connects` grows) the caller re-reads the PLC block and calls
TriggerTracker.resync so nothing stale is answered.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from hardware.errors import PlcError
from hardware.plc.handshake import TriggerTracker, Watchdog
from hardware.plc.registers import (
    DEFAULT_MAP,
    PC_BLOCK_LEN,
    PC_HEARTBEAT,
    PC_STATUS,
    PLC_BLOCK_LEN,
    RESULT_OFFSET,
    U16,
    PcBlock,
    PcResult,
    PcStatus,
    PlcBlock,
    PlcStatus,
    PlcVerdict,
    RegisterMap,
    Trigger,
    seq_delta,
)

# Callers may take the whole PC-side API from this module.
__all__ = ["BACKOFF_MAX_S", "PcBlock", "PcResult", "PcStatus", "PlcBlock", "PlcClient", "PlcError",
           "PlcStatus", "PlcVerdict", "RegisterMap", "Trigger", "TriggerTracker", "Watchdog",
           "parse_endpoint", "seq_delta"]

# pymodbus logs every refused connect at ERROR; without an application handler that would
# spam stderr during an outage. A NullHandler keeps it quiet unless the app configures logging.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0


class PlcClient:
    """Reads the PLC block and writes the PC block of one PLC; use it from one thread only."""

    def __init__(self, host: str, port: int, regmap: RegisterMap = DEFAULT_MAP,
                 timeout: float = 0.3, backoff_max: float = BACKOFF_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.port, self.regmap, self.timeout = host, int(port), regmap, timeout
        self.backoff_max = float(backoff_max)
        self._clock = clock
        # retries=0: a lost answer is reported at once; the caller's next poll is the retry,
        # and the sequence numbers make a repeated write harmless.
        self._mb = ModbusTcpClient(host, port=self.port, timeout=timeout, retries=0,
                                   reconnect_delay=BACKOFF_START_S,
                                   reconnect_delay_max=self.backoff_max)
        self._delay = BACKOFF_START_S
        self._next_try = 0.0
        self._owner: int | None = None
        self.attempts = 0            # connection attempts (tests check the backoff with these)
        self.connects = 0            # grows on every new connection: callers resync on change
        self.failures = 0
        # Exception responses by code (e.g. {"2": 3}): the PLC answered but refused. Counted
        # apart from lost connections, because the socket stays usable after one.
        self.exceptions: dict[str, int] = {}
        self.last_ok = False         # the last exchange got a usable answer
        self.last_error: str | None = None

    # --- connection -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while a socket to the PLC is open."""
        return bool(self._mb.connected)

    @property
    def exception_count(self) -> int:
        return sum(self.exceptions.values())

    def connect(self) -> bool:
        """Try to connect now, ignoring the backoff; True when connected."""
        self._next_try = 0.0
        return self.ensure_connected()

    def ensure_connected(self) -> bool:
        """Connect if the backoff allows it (0.1 s doubling, capped at `backoff_max`)."""
        if self._mb.connected:
            return True
        now = self._clock()
        if now < self._next_try:
            return False
        self.attempts += 1
        if self._mb.connect():
            self._delay = BACKOFF_START_S
            self.connects += 1
            return True
        self.last_error = f"cannot connect to PLC at {self.host}:{self.port}"
        self._next_try = now + self._delay
        self._delay = min(self._delay * 2, self.backoff_max)
        return False

    def close(self) -> None:
        """Close the socket (any thread)."""
        self._mb.close()

    def __enter__(self) -> PlcClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- I/O --------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise PlcError("a PlcClient is used from two threads; create one client per thread")
        if not self.ensure_connected():
            raise PlcError(self.last_error or f"not connected to PLC at {self.host}:{self.port}")
        self.last_ok = False
        try:
            rr = fn(*args, device_id=self.regmap.unit_id, **kw)
        except (ModbusException, OSError) as exc:
            self._fail()
            raise PlcError(f"PLC {self.host}:{self.port}: {what} failed: {exc}") from exc
        if rr is None or rr.isError():
            # An exception response is the PLC refusing (bad address/unit id): the link is fine.
            self.failures += 1
            code = str(getattr(rr, "exception_code", "none"))
            self.exceptions[code] = self.exceptions.get(code, 0) + 1
            self.last_error = f"PLC {self.host}:{self.port}: {what} refused: {rr}"
            raise PlcError(self.last_error)
        return rr

    def _fail(self) -> None:
        # Drop the socket so a late answer cannot be mistaken for the next request's.
        self.failures += 1
        self._mb.close()
        self._next_try = self._clock() + self._delay
        self._delay = min(self._delay * 2, self.backoff_max)
        self.last_error = f"lost connection to PLC at {self.host}:{self.port}"

    def read_plc_block(self) -> PlcBlock:
        """ONE FC3 read of the 5 PLC registers."""
        rr = self._call("read PLC block", self._mb.read_holding_registers,
                        self.regmap.plc_base, count=PLC_BLOCK_LEN)
        try:
            block = self.regmap.decode_plc_block(rr.registers)
        except PlcError:
            # A short register block: the PLC answered, but not with the contract's block.
            self.exceptions["short"] = self.exceptions.get("short", 0) + 1
            self.last_error = f"PLC {self.host}:{self.port}: short PLC block ({len(rr.registers)} registers)"
            raise PlcError(self.last_error) from None
        self.last_ok = True
        return block

    def read_pc_block(self) -> PcBlock:
        """FC3 read of the PC block as the PLC sees it (diagnostics, tests)."""
        rr = self._call("read PC block", self._mb.read_holding_registers,
                        self.regmap.pc_base, count=PC_BLOCK_LEN)
        block = self.regmap.decode_pc_block(rr.registers)
        self.last_ok = True
        return block

    def write_result(self, result: PcResult) -> None:
        """ONE FC16 write of PC offsets 1-6, so the PLC never sees half a result."""
        self._call("write result", self._mb.write_registers,
                   self.regmap.pc(RESULT_OFFSET), self.regmap.encode_result(result))
        self.last_ok = True

    def write_heartbeat(self, value: int) -> None:
        """PC_HEARTBEAT alone (FC6)."""
        self._call("write heartbeat", self._mb.write_register,
                   self.regmap.pc(PC_HEARTBEAT), int(value) & U16)
        self.last_ok = True

    def write_status(self, status: PcStatus) -> None:
        """PC_STATUS alone (FC6)."""
        self._call("write status", self._mb.write_register,
                   self.regmap.pc(PC_STATUS), int(status) & 0xF)
        self.last_ok = True


def parse_endpoint(spec: str, default_port: int = 502) -> tuple[str, int]:
    """'HOST:PORT' or 'HOST' -> (host, port), with a clear error for bad input."""
    host, _, port = str(spec).strip().rpartition(":")
    if not host:
        host, port = port, str(default_port)
    try:
        p = int(port)
    except ValueError:
        raise PlcError(f"bad PLC address {spec!r}: expected HOST:PORT") from None
    if not host or not 0 < p < 65536:
        raise PlcError(f"bad PLC address {spec!r}: expected HOST:PORT with port 1-65535")
    return host, p
