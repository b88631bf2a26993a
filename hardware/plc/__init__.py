"""The PC side of the PLC contract (docs/plc-register-map.md) and a PLC/conveyor simulator.

registers: the register map, enums and encode/decode; client: PlcClient (pymodbus, sync),
TriggerTracker and Heartbeat; simulator: PlcSimulator, a Modbus TCP server playing the PLC.
"""
from __future__ import annotations
