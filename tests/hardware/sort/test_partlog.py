"""The part writer process gets the views through shared-memory slots: what it stores is exactly
what the engine handed over, a bigger part than the slots still goes (pickled), the slots are
removed at close."""
from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np
import pytest
from sortkit import wait_for

from hardware.sort.partlog import SLOTS, PartLogger, PartRecord
from labeling.types import PartSource


def test_logged_views_are_the_submitted_ones_and_the_slots_go_away(project):
    rng = np.random.default_rng(3)
    cams = ["cam0", "cam1", "cam2", "cam3"]
    parts = [[rng.integers(0, 255, (30, 40, 3), dtype=np.uint8) for _ in cams] for _ in range(SLOTS * 2 + 1)]
    parts.append([rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in cams])  # bigger than a slot
    logger = PartLogger(project.path, "m1", maxsize=64)
    logger.start()
    for k, views in enumerate(parts):
        assert logger.submit(PartRecord(views, cams, k + 1, 700 + k, "NG" if k % 3 else "OK", 0.9, 0,
                                        [0.1] * len(cams)))
    wait_for(lambda: len(logger._slots.shms) == SLOTS, 60, "the shared-memory slots")
    names = [s.name for s in logger._slots.shms]
    logger.close()
    c = logger.counters()
    assert c["logged"] == len(parts) and c["log_failed"] == 0 and c["log_dropped"] == 0, (c, logger.last_error)
    project.reload()
    logged = sorted((p for p in project.parts() if p.source == PartSource.SORT), key=lambda p: p.meta["part_id"])
    assert [p.meta["part_id"] for p in logged] == [700 + k for k in range(len(parts))]
    for part, views in zip(logged, parts):
        got = project.read_views(part.id)
        assert len(got) == len(views) and all(np.array_equal(a, b) for a, b in zip(got, views))
    assert len(names) == SLOTS
    for name in names:
        with pytest.raises(FileNotFoundError):
            shared_memory.SharedMemory(name=name)
