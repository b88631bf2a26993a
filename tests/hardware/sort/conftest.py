"""Fixtures of the sort engine tests (helpers live in sortkit.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sortkit import PlcPeer, brightness_classifier

from labeling.store import Project
from labeling.types import BOLT_CLASSES, Settings


@pytest.fixture
def classifier():
    return brightness_classifier()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "sort.okng", Settings(name="sort", classes=list(BOLT_CLASSES)))


@pytest.fixture
def peer():
    p = PlcPeer()
    yield p
    p.close()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models on a busy 2-core box: a second intra-op thread only adds wake-up stalls."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
