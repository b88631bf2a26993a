"""The PC <-> PLC register map (docs/plc-register-map.md), as types and pure encode/decode.

Addresses are 0-based protocol addresses of holding registers. The PLC block (PLC writes,
PC reads with ONE FC3) starts at `plc_base`; the PC block (PC writes; offsets 1-6 with ONE
FC16) at `pc_base`. Bases, unit id and the word order of the u32 PART_ID are settings because
every PLC maps Modbus areas onto its own memory.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from hardware.errors import PlcError

U16 = 0xFFFF
U32 = 0xFFFFFFFF

# PLC block offsets (PLC writes, PC reads).
PLC_HEARTBEAT = 0
TRIG_SEQ = 1
PART_ID = 2          # 2 registers (u32)
PLC_STATUS = 4
PLC_BLOCK_LEN = 5

# PC block offsets (PC writes, PLC reads).
PC_HEARTBEAT = 0
RESULT_SEQ = 1
PART_ID_ECHO = 2     # 2 registers (u32)
VERDICT = 4
CONFIDENCE = 5
DEFECT_CLASS = 6
PC_STATUS = 7
PC_BLOCK_LEN = 8
RESULT_OFFSET = RESULT_SEQ   # offsets 1-6 are written together in one FC16
RESULT_LEN = 6

WORD_ORDERS = ("big", "little")   # big = high word first (the contract's default)


class PlcVerdict(IntEnum):
    """VERDICT register: 0 none, 1 OK, 2 NG, 3 ERROR (could not inspect)."""
    NONE = 0
    OK = 1
    NG = 2
    ERROR = 3


class PlcStatus(IntFlag):
    """PLC_STATUS bits."""
    AUTO = 1
    GATE_READY = 2
    REJECT_BIN_FULL = 4


class PcStatus(IntFlag):
    """PC_STATUS bits."""
    READY = 1
    MODEL_LOADED = 2
    CAMERAS_OK = 4
    SORT_MODE_ON = 8


def seq_delta(new: int, old: int) -> int:
    """How far a u16 sequence moved from `old` to `new`, wrap-aware (0..65535)."""
    return (int(new) - int(old)) & U16


def seq_add(seq: int, n: int) -> int:
    """`seq + n` on the u16 ring."""
    return (int(seq) + int(n)) & U16


def _check_range(name: str, value: int, hi: int) -> int:
    value = int(value)
    if not 0 <= value <= hi:
        raise ValueError(f"{name} must be in 0..{hi}, got {value}")
    return value


@dataclass(frozen=True)
class PlcBlock:
    """What the PC reads: the PLC block decoded."""
    heartbeat: int
    trig_seq: int
    part_id: int
    status: PlcStatus = PlcStatus(0)


@dataclass(frozen=True)
class PcResult:
    """One answer to one trigger: PC block offsets 1-6."""
    result_seq: int
    part_id: int
    verdict: PlcVerdict
    confidence: float = 0.0       # 0..1, sent as x1000 clamped to 0..1000
    defect_class: int = 0         # 0 none, else 1-based index into the project's classes

    def __post_init__(self) -> None:
        _check_range("result_seq", self.result_seq, U16)
        _check_range("part_id", self.part_id, U32)
        _check_range("defect_class", self.defect_class, U16)
        object.__setattr__(self, "verdict", PlcVerdict(int(self.verdict)))

    @property
    def confidence_x1000(self) -> int:
        """CONFIDENCE register value: clamp to 0..1, x1000, rounded; NaN counts as 0."""
        c = float(self.confidence)
        if math.isnan(c):
            return 0
        return int(min(1.0, max(0.0, c)) * 1000 + 0.5)   # half up: 0.8765 -> 877


@dataclass(frozen=True)
class PcBlock:
    """The whole PC block decoded (what the PLC, or the simulator, reads)."""
    heartbeat: int
    result: PcResult
    status: PcStatus = PcStatus(0)


@dataclass(frozen=True)
class RegisterMap:
    """Base addresses, unit id and u32 word order: the PLC-side settings of the contract."""
    plc_base: int = 0
    pc_base: int = 10
    unit_id: int = 1
    word_order: str = "big"     # "big": high word first; "little": low word first

    def __post_init__(self) -> None:
        if self.word_order not in WORD_ORDERS:
            raise PlcError(f"word_order must be one of {WORD_ORDERS}, got {self.word_order!r}")
        if not 0 <= int(self.unit_id) <= 255:
            raise PlcError(f"unit_id must be in 0..255, got {self.unit_id}")
        for name, base, n in (("plc_base", self.plc_base, PLC_BLOCK_LEN),
                              ("pc_base", self.pc_base, PC_BLOCK_LEN)):
            if not 0 <= int(base) <= 0x10000 - n:
                raise PlcError(f"{name} must be in 0..{0x10000 - n}, got {base}")
        plc = range(self.plc_base, self.plc_base + PLC_BLOCK_LEN)
        pc = range(self.pc_base, self.pc_base + PC_BLOCK_LEN)
        if plc.start < pc.stop and pc.start < plc.stop:
            raise PlcError(f"PLC block {plc.start}-{plc.stop - 1} and PC block "
                           f"{pc.start}-{pc.stop - 1} overlap")

    # --- settings ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict for settings files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RegisterMap:
        """Build from a settings dict; unknown keys are an error, missing keys take defaults."""
        data = dict(data or {})
        known = {"plc_base", "pc_base", "unit_id", "word_order"}
        unknown = set(data) - known
        if unknown:
            raise PlcError(f"unknown register map settings: {sorted(unknown)}")
        kw: dict[str, Any] = {k: int(v) for k, v in data.items() if k != "word_order"}
        if "word_order" in data:
            kw["word_order"] = str(data["word_order"])
        return cls(**kw)

    # --- absolute addresses -----------------------------------------------------------
    def plc(self, offset: int) -> int:
        """Absolute address of a PLC block offset."""
        return self.plc_base + offset

    def pc(self, offset: int) -> int:
        """Absolute address of a PC block offset."""
        return self.pc_base + offset

    @property
    def register_span(self) -> int:
        """Registers a server must hold (address 0 up to the end of the higher block)."""
        return max(self.plc_base + PLC_BLOCK_LEN, self.pc_base + PC_BLOCK_LEN)

    # --- u32 --------------------------------------------------------------------------
    def encode_u32(self, value: int) -> list[int]:
        """Two registers in the configured word order."""
        value = _check_range("u32", value, U32)
        hi, lo = value >> 16, value & U16
        return [hi, lo] if self.word_order == "big" else [lo, hi]

    def decode_u32(self, regs: Sequence[int]) -> int:
        """Inverse of encode_u32 (takes exactly two registers)."""
        a, b = (int(r) & U16 for r in regs)
        hi, lo = (a, b) if self.word_order == "big" else (b, a)
        return (hi << 16) | lo

    # --- PLC block --------------------------------------------------------------------
    def encode_plc_block(self, block: PlcBlock) -> list[int]:
        """The 5 PLC registers (used by the simulator and by tests playing the PLC)."""
        return [int(block.heartbeat) & U16, int(block.trig_seq) & U16,
                *self.encode_u32(block.part_id), int(block.status) & U16]

    def decode_plc_block(self, regs: Sequence[int]) -> PlcBlock:
        """The 5 registers read by one FC3 -> PlcBlock."""
        if len(regs) < PLC_BLOCK_LEN:
            raise PlcError(f"PLC block needs {PLC_BLOCK_LEN} registers, got {len(regs)}")
        status = PlcStatus(int(regs[PLC_STATUS]) & int(PlcStatus.AUTO | PlcStatus.GATE_READY
                                                         | PlcStatus.REJECT_BIN_FULL))
        return PlcBlock(heartbeat=int(regs[PLC_HEARTBEAT]) & U16,
                        trig_seq=int(regs[TRIG_SEQ]) & U16,
                        part_id=self.decode_u32(regs[PART_ID:PART_ID + 2]),
                        status=status)

    # --- PC block ---------------------------------------------------------------------
    def encode_result(self, result: PcResult) -> list[int]:
        """The 6 registers of PC offsets 1-6, written by ONE FC16 at pc(RESULT_OFFSET)."""
        return [result.result_seq, *self.encode_u32(result.part_id), int(result.verdict),
                result.confidence_x1000, result.defect_class]

    def decode_result(self, regs: Sequence[int]) -> PcResult:
        """Inverse of encode_result (6 registers). An unknown VERDICT code reads as ERROR."""
        if len(regs) < RESULT_LEN:
            raise PlcError(f"result needs {RESULT_LEN} registers, got {len(regs)}")
        code = int(regs[VERDICT - RESULT_OFFSET])
        verdict = PlcVerdict(code) if code in PlcVerdict._value2member_map_ else PlcVerdict.ERROR
        return PcResult(result_seq=int(regs[0]) & U16, part_id=self.decode_u32(regs[1:3]),
                        verdict=verdict,
                        confidence=min(1000, int(regs[CONFIDENCE - RESULT_OFFSET])) / 1000.0,
                        defect_class=int(regs[DEFECT_CLASS - RESULT_OFFSET]) & U16)

    def decode_pc_block(self, regs: Sequence[int]) -> PcBlock:
        """All 8 PC registers -> PcBlock (what the PLC side reads)."""
        if len(regs) < PC_BLOCK_LEN:
            raise PlcError(f"PC block needs {PC_BLOCK_LEN} registers, got {len(regs)}")
        return PcBlock(heartbeat=int(regs[PC_HEARTBEAT]) & U16,
                       result=self.decode_result(regs[RESULT_OFFSET:RESULT_OFFSET + RESULT_LEN]),
                       status=PcStatus(int(regs[PC_STATUS]) & 0xF))


DEFAULT_MAP = RegisterMap()   # the contract's defaults (bases 0/10, unit 1, high word first)


@dataclass(frozen=True)
class Trigger:
    """A part that reached the inspection station (or one whose trigger was skipped)."""
    seq: int
    part_id: int | None          # None when skipped: the PLC block only shows the latest part
    skipped: bool = False
    t_seen: float = field(default=0.0, compare=False)   # time.monotonic() of the poll that saw it

    def error_result(self) -> PcResult:
        """The ERROR answer for this trigger (skipped parts echo part id 0: it is unknown)."""
        return PcResult(result_seq=self.seq, part_id=self.part_id or 0, verdict=PlcVerdict.ERROR)

    def result(self, verdict: PlcVerdict, confidence: float = 0.0, defect_class: int = 0) -> PcResult:
        """The answer for this trigger with the given verdict."""
        return PcResult(result_seq=self.seq, part_id=self.part_id or 0, verdict=verdict,
                        confidence=confidence, defect_class=defect_class)
