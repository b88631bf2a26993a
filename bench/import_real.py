"""Import the three dev sets (bsdata, kolektorsdd, neu_det) through the masks format, as their
labels.csv describe them, and check that every row came in.

Per set: rows in labels.csv, parts/views imported, OK/NG, masks, classes, errors, warnings,
seconds, parts/s; asserts nothing was lost (parts + duplicates == rows, NG/masks as the CSV says
for the rows that are not duplicates; a duplicate is a picture identical to an earlier row's).
Prints one JSON line. Usage: .venv/bin/python bench/import_real.py [DATA_DIR]
"""
from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labeling.formats import import_into
from labeling.store import Project

SETS = ("bsdata", "kolektorsdd", "neu_det")


def _expected(csv_path: Path, skip: set[str] = frozenset()) -> dict:
    """Rows, NG rows and masks the CSV describes (leaving out the rows whose image is in `skip`)."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.DictReader(f) if Path(r["image"]).as_posix() not in skip]
    return {"rows": len(rows), "NG": sum(r["label"] == "NG" for r in rows),
            "masks": sum(bool(r.get("mask")) for r in rows)}


def run(data: Path, tmp: Path, name: str) -> dict:
    src = data / name / "labels.csv"
    want = _expected(src)
    p = Project.create(tmp / f"{name}.h5")
    t = time.perf_counter()
    r = import_into(p, src, "masks")
    seconds = time.perf_counter() - t
    st = Project.open(p.path).stats()
    got = {"rows": want["rows"], "parts": st["parts"], "views": st["views"], "OK": st["labels"]["OK"],
           "NG": st["labels"]["NG"], "masks": st["masks"], "classes": st["defect_classes"],
           "fields": sorted({k for x in p.parts() for k in x.fields}), "errors": len(r.errors),
           "error_groups": [(g["kind"], g["count"]) for g in r.error_groups()],
           "warnings": {k: w["count"] for k, w in r.warnings.items()},
           "seconds": round(seconds, 1), "parts_per_s": round(st["parts"] / seconds, 1)}
    # A row whose picture is byte- or pixel-identical to an earlier row's is a duplicate, not lost:
    # KolektorSDD holds 16 (kos01 = kos26, kos27 = kos34 part for part), NEU-DET one pair.
    dups = {f for f, m in r.errors if m.startswith("duplicate:")}
    kept = _expected(src, dups)
    got["duplicates"] = len(dups)
    assert (got["parts"] + len(dups), got["NG"], got["masks"], got["errors"] - len(dups)) == (
        want["rows"], kept["NG"], kept["masks"], 0), (name, got, want, kept)
    return got


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    with tempfile.TemporaryDirectory() as d:
        out = {name: run(data, Path(d), name) for name in SETS if (data / name / "labels.csv").is_file()}
    print(json.dumps({"bench": "import_real", "format": "masks", "sets": out,
                      "complete": all(v["parts"] + v["duplicates"] == v["rows"] for v in out.values())}))


if __name__ == "__main__":
    main()
