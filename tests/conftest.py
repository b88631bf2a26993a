"""Test-wide setup: Qt runs offscreen; torch on one thread (tests run beside subprocesses and
servers on 2 cores, where OpenMP threads spinning against each other made them ~10x slower)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OKNG_HOME", str(Path(__file__).parent / ".okng-home-unused"))

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BSDATA = SHARED / "data" / "bsdata"


@pytest.fixture(autouse=True)
def _okng_home(tmp_path_factory, monkeypatch):
    """Station settings, recent files and weights go to a temp dir, never the user's home; the
    test's training runs (and its subprocesses') share the cores only among themselves: a bench
    or another suite on the machine changed a seeded run's thread count mid-run (training.core_share),
    and with it the run's floating-point sums."""
    home = tmp_path_factory.mktemp("okng-home")
    monkeypatch.setenv("OKNG_HOME", str(home))
    monkeypatch.setenv("OKNG_RUNS_DIR", str(home / "runs"))
    yield home


@pytest.fixture
def bsdata() -> Path:
    if not (BSDATA / "labels.csv").exists():
        pytest.skip("../shared/data/bsdata not present")
    return BSDATA


@pytest.fixture
def items_project():
    """make(path, flipped=()): 12 items of 4 pictures (field `item`), the second of each NG, as
    KolektorSDD is shaped; the parts at the positions in `flipped` labelled the wrong way."""
    import numpy as np

    from labeling.store import Project
    from labeling.types import Label, Settings, Verdict

    def make(path: Path, flipped: tuple[int, ...] = ()) -> Path:
        proj = Project.create(path, Settings(name="items", cameras=["cam0"]))
        rng = np.random.default_rng(4)
        for i in range(48):
            ng = i % 4 == 1
            img = rng.normal(70, 10, (32, 32)).clip(0, 255).astype(np.uint8)
            if ng:
                img[8:20, 8:20] = 250
            proj.add_part([img], meta={"fields": {"item": f"item{i // 4}"}}, name=f"p{i}",
                          label=Label(Verdict.NG, 1) if ng != (i in flipped) else Label(Verdict.OK))
        return path
    return make


def pytest_configure(config):
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))


def pytest_sessionfinish(session, exitstatus):
    # app.main.build freezes the heap (app.heap) as the window does; frozen objects are never
    # freed, and torch's extension modules then report them as leaks at interpreter exit.
    import gc
    gc.unfreeze()
