"""Fixtures of the PLC tests (helpers live in plc_helpers.py, importable by name)."""
from __future__ import annotations

import pytest
from plc_helpers import PcLoop


@pytest.fixture
def pc_loop_factory():
    """Start PcLoop threads; all are stopped at the end of the test."""
    loops: list[PcLoop] = []

    def make(port: int, **kw) -> PcLoop:
        loop = PcLoop(port, **kw)
        loop.start()
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.stop()


@pytest.fixture
def sim_factory():
    """Start PlcSimulators on 127.0.0.1 with free ports; all are stopped at the end."""
    from hardware.plc.simulator import PlcSimulator
    sims: list[PlcSimulator] = []

    def make(**kw) -> PlcSimulator:
        kw.setdefault("port", 0)
        sim = PlcSimulator(**kw)
        sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()
