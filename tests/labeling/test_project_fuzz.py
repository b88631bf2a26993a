"""A fast, seeded subset of bench/fuzz_project.py: damaged project files, every kind twice.

Each case runs in a forked child (a crash is counted, not fatal to the test run) and must end
in a clear one-line ProjectError naming the file, or in a recovery that reads exactly what was
written. The bench runs the full set and reports timings; here the timeout is a guard only.
"""
from __future__ import annotations

import importlib.util
import logging
import random
import sys
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_project.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_project", _BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_project"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def base(fuzz, tmp_path_factory):
    return fuzz.make_base(tmp_path_factory.mktemp("fuzzbase"), seed=3)


@pytest.mark.parametrize("i", range(20))
def test_damaged_file_gives_a_clear_line_or_recovers(fuzz, base, tmp_path, i, caplog):
    caplog.set_level(logging.ERROR)
    kind, seed = fuzz.generate(3, 20)[i]
    path = tmp_path / "p.h5"
    case = fuzz.damage(base, kind, random.Random(seed), path)
    res = fuzz.run_case(base, case, path, timeout=60.0)
    assert res["outcome"] in ("clear", "recovered"), (kind, case, res)
    if kind.startswith("journal"):
        assert res["outcome"] == "recovered", res  # a bad journal never stops the project
