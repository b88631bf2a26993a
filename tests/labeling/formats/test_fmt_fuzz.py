"""A seeded subset of the import fuzz (bench/fuzz_import.py runs the full set in child processes).

Every hostile source must end in a report: no exception, nothing on stderr, error lines in
words, hostile inputs refused rather than imported, and the project holding exactly the parts the
report counts."""
from __future__ import annotations

import pytest
from fuzzkit import FORMATS, make_case, run_case

SEEDS = range(14)  # 70 cases, a few seconds


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_sources_end_in_an_honest_report(tmp_path, fmt):
    bad = []
    for seed in SEEDS:
        case = make_case(tmp_path / "src", fmt, seed)
        out = run_case(case, tmp_path)
        if out["outcome"] != "ok":
            bad.append(out)
    assert bad == []
