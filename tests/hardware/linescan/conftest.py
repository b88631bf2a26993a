"""Shared line-scan fixtures: demo wool belts rendered once per session (rendering is the slow part)."""
from __future__ import annotations

import pytest

from hardware.linescan.scene import WoolBelt


@pytest.fixture(scope="session")
def belt_factory():
    """A warm WoolBelt per seed (its strips cached), so real-time tests never wait on the renderer."""
    belts: dict[int, WoolBelt] = {}

    def make(seed: int = 0, strips: int = 3) -> WoolBelt:
        if seed not in belts:
            belt = WoolBelt(seed=seed, cache=strips + 2)
            belt._locate(0)
            while len(belt._starts) <= strips:
                belt._strip(len(belt._starts) - 1)
            belts[seed] = belt
        return belts[seed]

    return make
