"""okng label-issues on a real set with labels flipped on purpose: does the check find them?

The set is imported as a user would (`okng import --format masks`), then `--ng-to-ok` NG parts
are relabelled OK (their masks cleared, as an inspector who missed the defect leaves them) and
`--ok-to-ng` OK parts NG, drawn with --seed. The check runs with `okng label-issues`' defaults
(5 folds, the verdict task, --group-by auto, from scratch: 10 minutes for the whole check) and
the flagged parts are scored against the flips: precision and recall over all of them and in the
top 15 (the least believed first: what an inspector reviews first).

    nice -n 15 .venv/bin/python bench/label_check.py kolektorsdd [--budget 600] [--seed 0]

One JSON line. KolektorSDD's published labels are not perfect either: a flagged part that was not
flipped is not always a false alarm (the record lists them by name to look at).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" if (ROOT.parent / "shared" / "data").exists() else Path("/work/shared/data")
TOP = 15


def flip(path: Path, ng_to_ok: int, ok_to_ng: int, seed: int) -> tuple[set[int], set[int]]:
    """Relabel seeded parts the wrong way; returns (NG made OK, OK made NG) part ids."""
    from labeling.store import Project
    from labeling.types import Verdict
    proj = Project.open(path)
    parts = proj.parts()
    rng = np.random.default_rng(seed)
    ng = [p.id for p in parts if p.verdict == Verdict.NG]
    ok = [p.id for p in parts if p.verdict == Verdict.OK]
    made_ok = {int(i) for i in rng.choice(ng, ng_to_ok, replace=False)}
    made_ng = {int(i) for i in rng.choice(ok, ok_to_ng, replace=False)}
    for pid in sorted(made_ok):
        for v in range(len(proj.part(pid).views)):
            proj.set_mask(pid, v, None)
        proj.set_label(pid, "OK")
    for pid in sorted(made_ng):
        proj.set_label(pid, "NG")
    return made_ok, made_ng


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="a set under ../shared/data with a masks-format labels.csv (kolektorsdd, bsdata)")
    ap.add_argument("--ng-to-ok", type=int, default=5)
    ap.add_argument("--ok-to-ng", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default: okng's)")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    from labeling.formats import import_into
    from labeling.store import Project
    from training.label_check import LabelCheckSpec, run_label_check
    with tempfile.TemporaryDirectory(prefix="okng-labelcheck-") as tmp:
        path = Path(tmp) / f"{args.data}.okng"
        report = import_into(Project.create(path), DATA / args.data / "labels.csv", "masks")
        made_ok, made_ng = flip(path, args.ng_to_ok, args.ok_to_ng, args.seed)
        flips = made_ok | made_ng
        values = {"task": "verdict", "patience": 0, "group_by": "auto", "seed": args.seed, "budget_s": args.budget}
        t = time.monotonic()
        res = run_label_check(LabelCheckSpec(str(path), values, args.folds, record=False))
        seconds = time.monotonic() - t
    found = [r.part_id for r in res.issues]
    hits = [p for p in found if p in flips]
    top = found[:TOP]
    out = {"bench": "label_check", "data": args.data, "parts": res.parts, "imported_errors": len(report.errors),
           "flipped": {"ng_to_ok": sorted(made_ok), "ok_to_ng": sorted(made_ng)}, "folds": res.folds,
           "group_by": res.group_by, "fold_parts": res.fold_parts, "flagged": len(found), "found": len(hits),
           "precision": round(len(hits) / len(found), 3) if found else None,
           "recall": round(len(hits) / len(flips), 3),
           "found_ng_to_ok": len(made_ok & set(found)), "found_ok_to_ng": len(made_ng & set(found)),
           f"top{TOP}_found": sum(p in flips for p in top),
           "flagged_not_flipped": [r.name for r in res.issues if r.part_id not in flips],
           "seconds": round(seconds, 1), "warnings": res.warnings}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
