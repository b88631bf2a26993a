"""Import the whole bsdata set twice (labelme polygons, labels.csv + PNG masks) and compare.

Asserts both give the same 394 NG / 710 OK parts with pixel-identical masks, equal to the
provided PNG masks. Prints one JSON line: parts, NG, OK, seconds per format, masks identical.
Usage: .venv/bin/python bench/import_bsdata.py [BSDATA_DIR]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labeling.formats import import_into
from labeling.formats.base import read_mask_png
from labeling.store import Project
from labeling.types import Verdict


def _import(tmp: Path, src: Path, fmt: str) -> tuple[Project, float]:
    p = Project.create(tmp / f"{fmt}.h5")
    t = time.perf_counter()
    r = import_into(p, src, fmt)
    seconds = time.perf_counter() - t
    assert not r.errors, r.errors[:5]
    return p, seconds


def main() -> None:
    bs = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "bsdata"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        a, t_labelme = _import(tmp, bs, "labelme")
        b, t_masks = _import(tmp, bs / "labels.csv", "masks")
        pa = {x.meta["file"]: x for x in a.parts()}
        pb = {x.meta["file"]: x for x in b.parts()}
        assert pa.keys() == pb.keys()
        identical, equal_to_png = True, True
        for f, x in pa.items():
            y = pb[f]
            assert (x.verdict, x.label.defect_class) == (y.verdict, y.label.defect_class), f
            ma, mb = a.read_mask(x.id), b.read_mask(y.id)
            if (ma is None) != (mb is None) or (ma is not None and not np.array_equal(ma, mb)):
                identical = False
            if ma is not None:
                given = read_mask_png(bs / "masks" / f"{Path(f).stem}_mask.png", f)
                equal_to_png &= bool(np.array_equal(ma, (given == 255).astype(np.uint8)))
        ng = sum(x.verdict == Verdict.NG for x in pa.values())
        ok = sum(x.verdict == Verdict.OK for x in pa.values())
        assert identical and equal_to_png and (ng, ok) == (394, 710), (identical, equal_to_png, ng, ok)
        print(json.dumps({"parts": len(pa), "NG": ng, "OK": ok,
                          "seconds": {"labelme": round(t_labelme, 1), "masks": round(t_masks, 1)},
                          "parts_per_s": {"labelme": round(len(pa) / t_labelme, 1),
                                          "masks": round(len(pb) / t_masks, 1)},
                          "masks_identical": identical, "masks_equal_provided_png": equal_to_png,
                          "classes": {"labelme": [c.name for c in a.settings.classes],
                                      "masks": [c.name for c in b.settings.classes]}}))


if __name__ == "__main__":
    main()
