"""HDF5 filters for image datasets on a real import: file size, import time, read time per view.

Imports one real set (default bsdata) once per filter, with the store's chunking and fletcher32
kept, then reads every view back. Prints one JSON line per filter.
Usage: .venv/bin/python bench/compress_real.py [DATA_DIR/SET] [none lzf gzip1 gzip4 ...]
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labeling import store
from labeling.formats import import_into
from labeling.store import Project


def _filter(name: str) -> tuple[str | None, int | None]:
    if name == "none":
        return None, None
    if name == "lzf":
        return "lzf", None
    return "gzip", int(name.removeprefix("gzip"))


def run(src: Path, tmp: Path, name: str) -> dict:
    chosen = _filter(name)
    # The bench swaps the store's choice for every image, whatever its pixel type.
    store._image_compression = lambda img: chosen
    path = tmp / f"{name}.h5"
    p = Project.create(path)
    t = time.perf_counter()
    r = import_into(p, src / "labels.csv", "masks")
    seconds = time.perf_counter() - t
    size = path.stat().st_size
    q = Project.open(path)
    ids = q.part_ids()
    read_ms, raw = [], 0
    for pid in ids:
        t0 = time.perf_counter()
        img = q.read_image(pid, 0)
        read_ms.append((time.perf_counter() - t0) * 1e3)
        raw += img.nbytes
    path.unlink()
    return {"bench": "compress_real", "set": src.name, "filter": name, "parts": len(ids),
            "errors": len(r.errors), "size_mb": round(size / 1e6, 1),
            "import_s": round(seconds, 1), "read_ms_median": round(statistics.median(read_ms), 2),
            "read_ms_p95": round(float(np.percentile(read_ms, 95)), 2), "raw_pixels_mb": round(raw / 1e6, 1)}


def main() -> None:
    args = sys.argv[1:]
    src = Path(args.pop(0)) if args and "/" in args[0] else ROOT.parent / "shared" / "data" / "bsdata"
    names = args or ["none", "lzf", "gzip1", "gzip2", "gzip3", "gzip4"]
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            print(json.dumps(run(src, Path(d), name)), flush=True)


if __name__ == "__main__":
    main()
