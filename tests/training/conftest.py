"""Fixtures of the training tests (the toy project itself lives in toykit.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from toykit import make_toy_project


@pytest.fixture
def toy_project(tmp_path) -> Path:
    return make_toy_project(tmp_path / "toy.okng")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The shared 2-core test machine is oversubscribed: one intra-op thread is several times
    faster than two spinning ones there (measured), and results do not depend on it."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
