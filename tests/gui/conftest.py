"""Fixtures the views' tests share (Train, Prune, Explain; Live sort and the Station dialog: `plc`)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.context import AppContext
from labeling.demo import make_demo_project


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Two OpenMP threads on two cores shared with other jobs spin against each other (a tiny
    step takes seconds instead of 0.3 s); one thread keeps the tests fast and steady."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def demo_context(tmp_path: Path, qtbot) -> Iterator[Callable[..., AppContext]]:
    """Make an AppContext on a fresh bolts demo project (64x48 views): `demo_context(name, parts,
    prepare=None)`; `prepare(path)` runs on the project file before the context opens it and may
    return a model id to select. Every context made is shut down after the test."""
    made: list[AppContext] = []

    def make(name: str, parts: int, prepare: Callable[[Path], str | None] | None = None) -> AppContext:
        path = tmp_path / name
        project = make_demo_project(path, "bolts", parts=parts, size=(64, 48))
        c = AppContext()
        made.append(c)
        if prepare is None:
            c.set_project(project)
        else:
            model_id = prepare(path)
            c.open_project(path)
            c.model_id = model_id
        return c

    yield make
    for c in made:
        c.shutdown()


@pytest.fixture
def plc():
    """The built-in PLC/conveyor simulator on a free loopback port, 6 parts/s."""
    from hardware.plc.simulator import PlcSimulator
    sim = PlcSimulator(host="127.0.0.1", port=0, rate=6.0)
    sim.start()
    yield sim
    sim.stop()
